/*
 * test_smpp_charset.c - GSM 03.38 against the 3GPP TS 23.038 tables (every
 * default-alphabet position and every extension character, both ways),
 * septet packing vectors, UCS-2 with surrogate pairs, Latin-1, strict UTF-8
 * validation and the coding chooser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smpp.h"

/* 23.038 section 6.2.1, typed from the standard; NULL at the escape. */
static const char *const etsi_default_alphabet[128] = {
    "@",
    "£",
    "$",
    "¥",
    "è",
    "é",
    "ù",
    "ì",
    "ò",
    "Ç",
    "\n",
    "Ø",
    "ø",
    "\r",
    "Å",
    "å",
    "Δ",
    "_",
    "Φ",
    "Γ",
    "Λ",
    "Ω",
    "Π",
    "Ψ",
    "Σ",
    "Θ",
    "Ξ",
    NULL,
    "Æ",
    "æ",
    "ß",
    "É",
    " ",
    "!",
    "\"",
    "#",
    "¤",
    "%",
    "&",
    "'",
    "(",
    ")",
    "*",
    "+",
    ",",
    "-",
    ".",
    "/",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    ":",
    ";",
    "<",
    "=",
    ">",
    "?",
    "¡",
    "A",
    "B",
    "C",
    "D",
    "E",
    "F",
    "G",
    "H",
    "I",
    "J",
    "K",
    "L",
    "M",
    "N",
    "O",
    "P",
    "Q",
    "R",
    "S",
    "T",
    "U",
    "V",
    "W",
    "X",
    "Y",
    "Z",
    "Ä",
    "Ö",
    "Ñ",
    "Ü",
    "§",
    "¿",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "k",
    "l",
    "m",
    "n",
    "o",
    "p",
    "q",
    "r",
    "s",
    "t",
    "u",
    "v",
    "w",
    "x",
    "y",
    "z",
    "ä",
    "ö",
    "ñ",
    "ü",
    "à",
};

/* 23.038 section 6.2.1.1, the extension table reached through 0x1B. */
static const struct {
	uint8_t septet;
	const char *utf8;
} etsi_extension[] = {
    {0x0A, "\f"},
    {0x14, "^"},
    {0x28, "{"},
    {0x29, "}"},
    {0x2F, "\\"},
    {0x3C, "["},
    {0x3D, "~"},
    {0x3E, "]"},
    {0x40, "|"},
    {0x65, "€"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void
assert_encodes(enum smpp_data_coding coding, const char *utf8,
    const uint8_t *expected, size_t expected_length)
{
	uint8_t out[512];
	size_t length = 0;

	assert_int_equal(smpp_charset_encode(coding, utf8, strlen(utf8), out,
			     sizeof(out), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(length, expected_length);
	assert_memory_equal(out, expected, expected_length);
}

static void
assert_decodes(enum smpp_data_coding coding, const uint8_t *in,
    size_t in_length, const char *expected)
{
	char out[512];
	size_t length = 0;

	assert_int_equal(smpp_charset_decode(
			     coding, in, in_length, out, sizeof(out), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(length, strlen(expected));
	assert_memory_equal(out, expected, length);
}

static void
test_gsm_default_alphabet_both_ways(void **state)
{
	uint8_t septet;

	for (septet = 0; septet < 128; septet++) {
		if (etsi_default_alphabet[septet] == NULL)
			continue;
		assert_encodes(SMPP_CODING_DEFAULT,
		    etsi_default_alphabet[septet], &septet, 1);
		assert_decodes(SMPP_CODING_DEFAULT, &septet, 1,
		    etsi_default_alphabet[septet]);
	}
}

static void
test_gsm_extension_both_ways(void **state)
{
	uint8_t pair[2];
	size_t i;

	for (i = 0; i < NELEM(etsi_extension); i++) {
		pair[0] = 0x1B;
		pair[1] = etsi_extension[i].septet;
		assert_encodes(
		    SMPP_CODING_DEFAULT, etsi_extension[i].utf8, pair, 2);
		assert_decodes(
		    SMPP_CODING_DEFAULT, pair, 2, etsi_extension[i].utf8);
	}
}

static void
test_gsm_nothing_else_encodes(void **state)
{
	/* Look-alikes and neighbours that must not be taken for GSM. */
	static const char *const outside[] = {"`", "ç", "\t", "\x1b", "Ā", "α",
	    "Β", "’", "😀", "¢", "\x7f", "ÿ", "¨"};
	uint8_t out[8];
	size_t length, i;

	for (i = 0; i < NELEM(outside); i++)
		assert_int_equal(
		    smpp_charset_encode(SMPP_CODING_DEFAULT, outside[i],
			strlen(outside[i]), out, sizeof(out), &length),
		    SMPP_CHARSET_ERR_UNREPRESENTABLE);
}

static void
test_gsm_decode_lenient(void **state)
{
	/* Unknown extension shows the default character (23.038). */
	assert_decodes(
	    SMPP_CODING_DEFAULT, (const uint8_t *)"\x1b\x41", 2, "A");
	/* Escape escape is reserved: a space. */
	assert_decodes(SMPP_CODING_DEFAULT,
	    (const uint8_t *)"a\x1b\x1b"
			     "b",
	    4, "a b");
	/* A lone escape at the end shows nothing. */
	assert_decodes(SMPP_CODING_DEFAULT, (const uint8_t *)"a\x1b", 2, "a");
	/* An octet with the top bit set is no septet. */
	assert_decodes(SMPP_CODING_DEFAULT, (const uint8_t *)"a\x80\xff", 3,
	    "a\xef\xbf\xbd\xef\xbf\xbd");
	assert_decodes(SMPP_CODING_DEFAULT, (const uint8_t *)"\x1b\xc1", 2,
	    "\xef\xbf\xbd");
}

static void
test_gsm_text_round_trip(void **state)
{
	const char *text = "Hi Zoé! 50% off {today} only: 10€ ~ [x] \\o/ ^_^";
	uint8_t septets[128];
	char back[256];
	size_t septet_count, back_length;

	assert_int_equal(
	    smpp_charset_encode(SMPP_CODING_DEFAULT, text, strlen(text),
		septets, sizeof(septets), &septet_count),
	    SMPP_CHARSET_OK);
	/* 47 characters, 9 of them from the extension table (2 each). */
	assert_int_equal(septet_count, 56);
	assert_int_equal(smpp_charset_decode(SMPP_CODING_DEFAULT, septets,
			     septet_count, back, sizeof(back), &back_length),
	    SMPP_CHARSET_OK);
	assert_int_equal(back_length, strlen(text));
	assert_memory_equal(back, text, back_length);
}

static void
test_pack_vectors(void **state)
{
	static const uint8_t hellohello[] = {
	    0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37};
	static const uint8_t hello[] = {0xE8, 0x32, 0x9B, 0xFD, 0x06};
	static const uint8_t digits[] = {
	    0x31, 0xD9, 0x8C, 0x56, 0xB3, 0xDD, 0x70};
	uint8_t packed[16], septets[16];
	size_t length;

	assert_int_equal(smpp_charset_gsm_pack((const uint8_t *)"hellohello",
			     10, 0, packed, sizeof(packed), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(length, sizeof(hellohello));
	assert_memory_equal(packed, hellohello, sizeof(hellohello));
	assert_int_equal(smpp_charset_gsm_unpack(hellohello, sizeof(hellohello),
			     0, 10, septets, sizeof(septets)),
	    SMPP_CHARSET_OK);
	assert_memory_equal(septets, "hellohello", 10);

	assert_int_equal(smpp_charset_gsm_pack((const uint8_t *)"hello", 5, 0,
			     packed, sizeof(packed), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(length, sizeof(hello));
	assert_memory_equal(packed, hello, sizeof(hello));

	/* Eight septets fill seven octets exactly. */
	assert_int_equal(smpp_charset_gsm_pack((const uint8_t *)"12345678", 8,
			     0, packed, sizeof(packed), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(length, 7);
	assert_memory_equal(packed, digits, sizeof(digits));
	assert_int_equal(smpp_charset_gsm_packed_length(8, 0), 7);
	assert_int_equal(smpp_charset_gsm_packed_length(153, 1), 134);
	assert_int_equal(smpp_charset_gsm_packed_length(160, 0), 140);
}

static void
test_pack_fill_bits(void **state)
{
	uint8_t packed[8], septets[8];
	size_t length;

	/* One fill bit (after a 6-octet UDH): 'H' shifted up by one. */
	assert_int_equal(smpp_charset_gsm_pack((const uint8_t *)"Hi", 2, 1,
			     packed, sizeof(packed), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(length, 2);
	assert_int_equal(packed[0], 0x90);
	assert_int_equal(packed[1], 0x69);
	assert_int_equal(
	    smpp_charset_gsm_unpack(packed, 2, 1, 2, septets, sizeof(septets)),
	    SMPP_CHARSET_OK);
	assert_memory_equal(septets, "Hi", 2);

	/* Six fill bits: 'A' straddles the first two octets. */
	assert_int_equal(smpp_charset_gsm_pack((const uint8_t *)"A", 1, 6,
			     packed, sizeof(packed), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(length, 2);
	assert_int_equal(packed[0], 0x40); /* low bit of 0x41 at bit 6 */
	assert_int_equal(packed[1], 0x10); /* 0x41 >> 2 */

	assert_int_equal(smpp_charset_gsm_pack((const uint8_t *)"A", 1, 7,
			     packed, sizeof(packed), &length),
	    SMPP_CHARSET_ERR_ARGUMENT);
	assert_int_equal(smpp_charset_gsm_pack((const uint8_t *)"hellohello",
			     10, 0, packed, 8, &length),
	    SMPP_CHARSET_ERR_SPACE);
	/* More septets than the octets can hold. */
	assert_int_equal(
	    smpp_charset_gsm_unpack(packed, 2, 1, 3, septets, sizeof(septets)),
	    SMPP_CHARSET_ERR_ARGUMENT);
}

static void
test_ucs2_surrogate_pair(void **state)
{
	static const uint8_t expected[] = {
	    0x00, 0x41, 0xD8, 0x3D, 0xDE, 0x00, 0x04, 0x36, 0x20, 0xAC};
	uint8_t out[4];
	size_t length, offset;

	assert_encodes(SMPP_CODING_UCS2, "A😀ж€", expected, sizeof(expected));
	assert_decodes(SMPP_CODING_UCS2, expected, sizeof(expected), "A😀ж€");

	/* A prefix of three units stops before the pair, not inside it. */
	offset = 1;
	assert_int_equal(smpp_charset_encode_prefix(SMPP_CODING_UCS2, "A😀", 5,
			     &offset, 1, out, sizeof(out), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(offset, 1);
	assert_int_equal(length, 0);
}

static void
test_ucs2_decode_lenient(void **state)
{
	/* Lone high, lone low, reversed pair, odd trailing octet. */
	assert_decodes(SMPP_CODING_UCS2, (const uint8_t *)"\xd8\x3d\x00\x41", 4,
	    "\xef\xbf\xbd"
	    "A");
	assert_decodes(
	    SMPP_CODING_UCS2, (const uint8_t *)"\xde\x00", 2, "\xef\xbf\xbd");
	assert_decodes(SMPP_CODING_UCS2, (const uint8_t *)"\xde\x00\xd8\x3d", 4,
	    "\xef\xbf\xbd\xef\xbf\xbd");
	assert_decodes(SMPP_CODING_UCS2, (const uint8_t *)"\x00\x41\x00", 3,
	    "A\xef\xbf\xbd");
	assert_decodes(
	    SMPP_CODING_UCS2, (const uint8_t *)"\xd8\x3d", 2, "\xef\xbf\xbd");
}

static void
test_latin1(void **state)
{
	static const uint8_t expected[] = {
	    'c', 'a', 'f', 0xE9, ' ', 0xFF, 0xA0, 0x80};
	uint8_t out[8];
	size_t length;

	assert_encodes(SMPP_CODING_LATIN1, "café ÿ\xc2\xa0\xc2\x80", expected,
	    sizeof(expected));
	assert_decodes(SMPP_CODING_LATIN1, expected, sizeof(expected),
	    "café ÿ\xc2\xa0\xc2\x80");
	assert_int_equal(smpp_charset_encode(SMPP_CODING_LATIN1, "10€", 5, out,
			     sizeof(out), &length),
	    SMPP_CHARSET_ERR_UNREPRESENTABLE);
	/* IA5 is 7-bit ASCII. */
	assert_encodes(SMPP_CODING_IA5, "a{~", (const uint8_t *)"a{~", 3);
	assert_int_equal(smpp_charset_encode(SMPP_CODING_IA5, "é", 2, out,
			     sizeof(out), &length),
	    SMPP_CHARSET_ERR_UNREPRESENTABLE);
	assert_decodes(
	    SMPP_CODING_IA5, (const uint8_t *)"a\xe9", 2, "a\xef\xbf\xbd");
}

static void
test_invalid_utf8_rejected(void **state)
{
	static const char *const invalid[] = {
	    "\xc0\x80",         /* overlong NUL */
	    "\xc1\xbf",         /* overlong */
	    "\xe0\x80\xaf",     /* overlong '/' */
	    "\xed\xa0\x80",     /* encoded high surrogate */
	    "\xed\xbf\xbf",     /* encoded low surrogate */
	    "\xf0\x80\x80\xaf", /* overlong */
	    "\xf4\x90\x80\x80", /* above U+10FFFF */
	    "\xf5\x80\x80\x80", /* lead never valid */
	    "\xe2\x82",         /* truncated euro */
	    "\x80",             /* stray continuation */
	    "a\xe2\x28\xa1",    /* bad continuation */
	    "\xff",
	};
	struct smpp_charset_choice choice;
	uint8_t out[16];
	size_t length, i;

	for (i = 0; i < NELEM(invalid); i++) {
		size_t n = strlen(invalid[i]);

		assert_int_equal(smpp_charset_encode(SMPP_CODING_DEFAULT,
				     invalid[i], n, out, sizeof(out), &length),
		    SMPP_CHARSET_ERR_UTF8);
		assert_int_equal(smpp_charset_encode(SMPP_CODING_UCS2,
				     invalid[i], n, out, sizeof(out), &length),
		    SMPP_CHARSET_ERR_UTF8);
		assert_int_equal(
		    smpp_charset_choose(invalid[i], n, 0, 6, &choice),
		    SMPP_CHARSET_ERR_UTF8);
	}
	/* The edges that are valid. */
	assert_encodes(
	    SMPP_CODING_UCS2, "\xef\xbf\xbf", (const uint8_t *)"\xff\xff", 2);
	assert_encodes(SMPP_CODING_UCS2, "\xf4\x8f\xbf\xbf",
	    (const uint8_t *)"\xdb\xff\xdf\xff", 4);
	assert_encodes(
	    SMPP_CODING_UCS2, "\xed\x9f\xbf", (const uint8_t *)"\xd7\xff", 2);
}

static void
test_utf8_next(void **state)
{
	const char *text = "a€😀";
	size_t offset = 0;
	uint32_t codepoint;

	assert_int_equal(smpp_charset_utf8_next(text, 8, &offset, &codepoint),
	    SMPP_CHARSET_OK);
	assert_int_equal(codepoint, 'a');
	assert_int_equal(smpp_charset_utf8_next(text, 8, &offset, &codepoint),
	    SMPP_CHARSET_OK);
	assert_int_equal(codepoint, 0x20AC);
	assert_int_equal(smpp_charset_utf8_next(text, 8, &offset, &codepoint),
	    SMPP_CHARSET_OK);
	assert_int_equal(codepoint, 0x1F600);
	assert_int_equal(offset, 8);
	assert_int_equal(smpp_charset_utf8_next(text, 8, &offset, &codepoint),
	    SMPP_CHARSET_ERR_ARGUMENT);
}

static void
test_capacity(void **state)
{
	uint8_t out[4];
	char utf8[4];
	size_t length;

	assert_int_equal(smpp_charset_encode(
			     SMPP_CODING_DEFAULT, "hello", 5, out, 4, &length),
	    SMPP_CHARSET_ERR_SPACE);
	/* The escape pair does not fit in the last free septet. */
	assert_int_equal(smpp_charset_encode(
			     SMPP_CODING_DEFAULT, "abc€", 6, out, 4, &length),
	    SMPP_CHARSET_ERR_SPACE);
	assert_int_equal(length, 3);
	assert_int_equal(
	    smpp_charset_encode(SMPP_CODING_UCS2, "abc", 3, out, 4, &length),
	    SMPP_CHARSET_ERR_SPACE);
	/* "é" needs two octets of UTF-8; only one is left after 'a','b','c'. */
	assert_int_equal(smpp_charset_decode(SMPP_CODING_DEFAULT,
			     (const uint8_t *)"abc\x05", 4, utf8, 4, &length),
	    SMPP_CHARSET_ERR_SPACE);
	assert_int_equal(smpp_charset_decode(SMPP_CODING_BINARY_8BIT,
			     (const uint8_t *)"a", 1, utf8, 4, &length),
	    SMPP_CHARSET_ERR_ARGUMENT);
}

static void
test_encode_prefix_keeps_escape_pairs(void **state)
{
	uint8_t out[8];
	size_t length, offset = 0;

	assert_int_equal(smpp_charset_encode_prefix(SMPP_CODING_DEFAULT, "ab€c",
			     6, &offset, 3, out, sizeof(out), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(offset, 2);
	assert_int_equal(length, 2);
	assert_int_equal(smpp_charset_encode_prefix(SMPP_CODING_DEFAULT, "ab€c",
			     6, &offset, 3, out, sizeof(out), &length),
	    SMPP_CHARSET_OK);
	assert_int_equal(offset, 6);
	assert_int_equal(length, 3);
	assert_memory_equal(out,
	    "\x1b\x65"
	    "c",
	    3);
}

static void
assert_choice(const char *text, unsigned flags, size_t udh_length,
    enum smpp_data_coding coding, size_t units, size_t parts)
{
	struct smpp_charset_choice choice;

	assert_int_equal(
	    smpp_charset_choose(text, strlen(text), flags, udh_length, &choice),
	    SMPP_CHARSET_OK);
	assert_int_equal(choice.coding, coding);
	assert_int_equal(choice.units, units);
	assert_int_equal(choice.parts, parts);
}

static void
test_choose(void **state)
{
	char text[400];

	assert_choice("", 0, 6, SMPP_CODING_DEFAULT, 0, 1);
	assert_choice("hello", 0, 6, SMPP_CODING_DEFAULT, 5, 1);
	assert_choice("Grüße aus Köln", 0, 6, SMPP_CODING_DEFAULT, 14, 1);
	assert_choice("10€ {x}", 0, 6, SMPP_CODING_DEFAULT, 10, 1);
	/* ç is not GSM: UCS-2 unless Latin-1 is allowed. */
	assert_choice("ça va", 0, 6, SMPP_CODING_UCS2, 5, 1);
	assert_choice(
	    "ça va", SMPP_CHARSET_ALLOW_LATIN1, 6, SMPP_CODING_LATIN1, 5, 1);
	/* GSM wins a tie with Latin-1. */
	assert_choice(
	    "café", SMPP_CHARSET_ALLOW_LATIN1, 6, SMPP_CODING_DEFAULT, 4, 1);
	/* The euro is GSM (escaped) but not Latin-1. */
	assert_choice(
	    "ç€", SMPP_CHARSET_ALLOW_LATIN1, 6, SMPP_CODING_UCS2, 2, 1);
	assert_choice("hi 😀", 0, 6, SMPP_CODING_UCS2, 5, 1);

	/* 100 braces: 200 septets in 2 parts, Latin-1 fits 1. */
	memset(text, '{', 100);
	text[100] = '\0';
	assert_choice(text, 0, 6, SMPP_CODING_DEFAULT, 200, 2);
	assert_choice(
	    text, SMPP_CHARSET_ALLOW_LATIN1, 6, SMPP_CODING_LATIN1, 100, 1);
	/* 16-bit reference UDH: 152 septets a part. */
	memset(text, 'a', 305);
	text[305] = '\0';
	assert_choice(text, 0, 6, SMPP_CODING_DEFAULT, 305, 2);
	assert_choice(text, 0, 7, SMPP_CODING_DEFAULT, 305, 3);
}

static void
test_alphabet_of_data_coding(void **state)
{
	assert_int_equal(smpp_charset_alphabet(0x00), SMPP_CODING_DEFAULT);
	assert_int_equal(smpp_charset_alphabet(0x01), SMPP_CODING_IA5);
	assert_int_equal(smpp_charset_alphabet(0x02), SMPP_CODING_BINARY_8BIT);
	assert_int_equal(smpp_charset_alphabet(0x03), SMPP_CODING_LATIN1);
	assert_int_equal(smpp_charset_alphabet(0x04), SMPP_CODING_BINARY_8BIT);
	assert_int_equal(smpp_charset_alphabet(0x08), SMPP_CODING_UCS2);
	assert_int_equal(smpp_charset_alphabet(0x06), SMPP_CODING_BINARY_8BIT);
	/* 23.038 general group with message class. */
	assert_int_equal(smpp_charset_alphabet(0x11), SMPP_CODING_DEFAULT);
	assert_int_equal(smpp_charset_alphabet(0x15), SMPP_CODING_BINARY_8BIT);
	assert_int_equal(smpp_charset_alphabet(0x18), SMPP_CODING_UCS2);
	assert_int_equal(smpp_charset_alphabet(0x48), SMPP_CODING_UCS2);
	assert_int_equal(smpp_charset_alphabet(0x30), SMPP_CODING_BINARY_8BIT);
	/* Message waiting groups and the data coding / class group. */
	assert_int_equal(smpp_charset_alphabet(0xC8), SMPP_CODING_DEFAULT);
	assert_int_equal(smpp_charset_alphabet(0xD0), SMPP_CODING_DEFAULT);
	assert_int_equal(smpp_charset_alphabet(0xE0), SMPP_CODING_UCS2);
	assert_int_equal(smpp_charset_alphabet(0xF0), SMPP_CODING_DEFAULT);
	assert_int_equal(smpp_charset_alphabet(0xF1), SMPP_CODING_DEFAULT);
	assert_int_equal(smpp_charset_alphabet(0xF5), SMPP_CODING_BINARY_8BIT);
	assert_int_equal(smpp_charset_alphabet(0x80), SMPP_CODING_BINARY_8BIT);
	/* Decoding follows the same mapping: 0xF0 is GSM. */
	assert_decodes(
	    (enum smpp_data_coding)0xF0, (const uint8_t *)"\x00\x01", 2, "@£");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gsm_default_alphabet_both_ways),
	    cmocka_unit_test(test_gsm_extension_both_ways),
	    cmocka_unit_test(test_gsm_nothing_else_encodes),
	    cmocka_unit_test(test_gsm_decode_lenient),
	    cmocka_unit_test(test_gsm_text_round_trip),
	    cmocka_unit_test(test_pack_vectors),
	    cmocka_unit_test(test_pack_fill_bits),
	    cmocka_unit_test(test_ucs2_surrogate_pair),
	    cmocka_unit_test(test_ucs2_decode_lenient),
	    cmocka_unit_test(test_latin1),
	    cmocka_unit_test(test_invalid_utf8_rejected),
	    cmocka_unit_test(test_utf8_next),
	    cmocka_unit_test(test_capacity),
	    cmocka_unit_test(test_encode_prefix_keeps_escape_pairs),
	    cmocka_unit_test(test_choose),
	    cmocka_unit_test(test_alphabet_of_data_coding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
