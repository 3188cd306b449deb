/*
 * test_smpp_split.c - long-message splitting at the exact boundaries (GSM
 * 160/161, 153 a part, 306/307; UCS-2 70/71, 67 a part; 16-bit reference
 * 152/66; binary 140/134/133), escape and surrogate pairs at a part
 * boundary, SAR and message_payload modes, packed GSM with fill bits,
 * overflow errors; the chooser's part count against the split's; and UDH
 * parsing (concatenation, ports, malformed headers).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smpp.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct smpp_split_part parts[300];
static uint8_t buffer[300 * SMPP_SPLIT_PART_MAX_OCTETS];
static char text[64 * 1024];
static struct smpp_split split;

/* Fills text with count copies of unit; returns its length. */
static size_t
repeat(size_t at, const char *unit, size_t count)
{
	size_t i, n = strlen(unit);

	for (i = 0; i < count; i++)
		memcpy(text + at + i * n, unit, n);
	text[at + count * n] = '\0';
	return at + count * n;
}

static int
run_split(size_t length, enum smpp_data_coding coding, enum smpp_concat concat,
    uint16_t reference, unsigned flags)
{
	struct smpp_split_options options = {coding, concat, reference, flags};

	memset(&split, 0, sizeof(split));
	split.parts = parts;
	split.max_parts = NELEM(parts);
	split.buffer = buffer;
	split.capacity = sizeof(buffer);
	return smpp_split_text(text, length, &options, &split);
}

/* Checks one part: its UDH (or none) and that its text is count units. */
static void
assert_part(
    size_t index, const uint8_t *udh, size_t udh_length, size_t text_length)
{
	const struct smpp_split_part *part = &split.parts[index];

	assert_int_equal(part->length, udh_length + text_length);
	assert_int_equal(
	    part->esm_class, udh_length > 0 ? SMPP_ESM_CLASS_UDHI : 0);
	if (udh_length > 0)
		assert_memory_equal(part->short_message, udh, udh_length);
}

static void
test_gsm_160_161(void **state)
{
	static const uint8_t udh1[] = {0x05, 0x00, 0x03, 0x2A, 0x02, 0x01};
	static const uint8_t udh2[] = {0x05, 0x00, 0x03, 0x2A, 0x02, 0x02};
	size_t length;

	length = repeat(0, "a", 160);
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_8BIT, 0x2A, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_part(0, NULL, 0, 160);
	assert_memory_equal(split.parts[0].short_message, text, 160);
	assert_int_equal(split.parts[0].sar_total_segments, 0);
	assert_int_equal(split.coding, SMPP_CODING_DEFAULT);

	length = repeat(0, "a", 161);
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_8BIT, 0x2A, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_part(0, udh1, 6, 153);
	assert_part(1, udh2, 6, 8);
	assert_memory_equal(split.parts[0].short_message + 6, text, 153);
	assert_memory_equal(split.parts[1].short_message + 6, text, 8);
	assert_int_equal(split.used, 159 + 14);
}

static void
test_gsm_306_307(void **state)
{
	size_t length;

	length = repeat(0, "a", 306);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 7, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_int_equal(split.parts[0].length, 6 + 153);
	assert_int_equal(split.parts[1].length, 6 + 153);

	length = repeat(0, "a", 307);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 7, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 3);
	assert_int_equal(split.parts[2].length, 6 + 1);
	assert_int_equal(split.parts[2].short_message[4], 3); /* total */
	assert_int_equal(split.parts[2].short_message[5], 3); /* seqnum */
}

static void
test_ucs2_70_71_and_134_135(void **state)
{
	static const uint8_t udh1[] = {0x05, 0x00, 0x03, 0x01, 0x02, 0x01};
	size_t length;

	length = repeat(0, "ж", 70);
	assert_int_equal(
	    run_split(length, SMPP_CODING_UCS2, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_part(0, NULL, 0, 140);
	assert_memory_equal(
	    split.parts[0].short_message, "\x04\x36\x04\x36", 4);

	length = repeat(0, "ж", 71);
	assert_int_equal(
	    run_split(length, SMPP_CODING_UCS2, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_part(0, udh1, 6, 134);
	assert_int_equal(split.parts[1].length, 6 + 8);
	assert_int_equal(split.coding, SMPP_CODING_UCS2);

	length = repeat(0, "ж", 134);
	assert_int_equal(
	    run_split(length, SMPP_CODING_UCS2, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	length = repeat(0, "ж", 135);
	assert_int_equal(
	    run_split(length, SMPP_CODING_UCS2, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 3);
	assert_int_equal(split.parts[2].length, 6 + 2);
}

static void
test_16bit_reference(void **state)
{
	static const uint8_t udh1[] = {
	    0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01};
	static const uint8_t udh2[] = {
	    0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02};
	size_t length;

	length = repeat(0, "a", 161);
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_16BIT, 0x1234, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_part(0, udh1, 7, 152);
	assert_part(1, udh2, 7, 9);

	length = repeat(0, "ж", 71);
	assert_int_equal(run_split(length, SMPP_CODING_UCS2,
			     SMPP_CONCAT_UDH_16BIT, 0x1234, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_part(0, udh1, 7, 132);
	assert_part(1, udh2, 7, 10);
}

static void
test_escape_at_part_boundary(void **state)
{
	struct smpp_charset_choice choice;
	size_t length;

	/* 158 + escape pair = 160 septets: still one SMS. */
	length = repeat(repeat(0, "a", 158), "€", 1);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 9, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_memory_equal(split.parts[0].short_message + 158, "\x1b\x65", 2);
	/* 159 + pair = 161 septets: two parts. */
	length = repeat(repeat(0, "a", 159), "€", 1);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 9, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);

	/* The pair would take septets 153 and 154: it moves whole. */
	length = repeat(repeat(repeat(0, "a", 152), "€", 1), "b", 10);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 9, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_int_equal(split.parts[0].length, 6 + 152);
	assert_int_equal(split.parts[0].short_message[6 + 151], 'a');
	assert_int_equal(split.parts[1].length, 6 + 12);
	assert_memory_equal(split.parts[1].short_message + 6,
	    "\x1b\x65"
	    "bbbbbbbbbb",
	    12);
	assert_int_equal(
	    smpp_charset_choose(text, length, 0, 6, &choice), SMPP_CHARSET_OK);
	assert_int_equal(choice.parts, 2);
	assert_int_equal(choice.units, 164);

	/* One septet earlier it fits exactly. */
	length = repeat(repeat(repeat(0, "a", 151), "€", 1), "b", 10);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 9, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.parts[0].length, 6 + 153);
	assert_memory_equal(
	    split.parts[0].short_message + 6 + 151, "\x1b\x65", 2);
	assert_int_equal(split.parts[1].length, 6 + 10);

	/* 306 septets where the pair straddles: a third part is needed. */
	length = repeat(repeat(repeat(0, "a", 152), "€", 1), "b", 152);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 9, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 3);
	assert_int_equal(
	    smpp_charset_choose(text, length, 0, 6, &choice), SMPP_CHARSET_OK);
	assert_int_equal(choice.units, 306);
	assert_int_equal(choice.parts, 3);
}

static void
test_emoji_at_part_boundary(void **state)
{
	struct smpp_charset_choice choice;
	size_t length;

	/* 68 + a pair = 70 units: one SMS. */
	length = repeat(repeat(0, "ж", 68), "😀", 1);
	assert_int_equal(
	    run_split(length, SMPP_CODING_UCS2, SMPP_CONCAT_UDH_8BIT, 3, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_memory_equal(
	    split.parts[0].short_message + 136, "\xd8\x3d\xde\x00", 4);

	/* The pair would take units 67 and 68: it moves whole. */
	length = repeat(repeat(repeat(0, "ж", 66), "😀", 1), "ж", 5);
	assert_int_equal(
	    run_split(length, SMPP_CODING_UCS2, SMPP_CONCAT_UDH_8BIT, 3, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_int_equal(split.parts[0].length, 6 + 132);
	assert_int_equal(split.parts[1].length, 6 + 14);
	assert_memory_equal(
	    split.parts[1].short_message + 6, "\xd8\x3d\xde\x00\x04\x36", 6);
	assert_int_equal(
	    smpp_charset_choose(text, length, 0, 6, &choice), SMPP_CHARSET_OK);
	assert_int_equal(choice.coding, SMPP_CODING_UCS2);
	assert_int_equal(choice.units, 73);
	assert_int_equal(choice.parts, 2);
}

static void
test_sar(void **state)
{
	size_t length;

	length = repeat(0, "a", 161);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_SAR, 0xBEEF, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_part(0, NULL, 0, 153);
	assert_part(1, NULL, 0, 8);
	assert_memory_equal(split.parts[0].short_message, text, 153);
	assert_int_equal(split.parts[0].sar_msg_ref_num, 0xBEEF);
	assert_int_equal(split.parts[0].sar_total_segments, 2);
	assert_int_equal(split.parts[0].sar_segment_seqnum, 1);
	assert_int_equal(split.parts[1].sar_msg_ref_num, 0xBEEF);
	assert_int_equal(split.parts[1].sar_total_segments, 2);
	assert_int_equal(split.parts[1].sar_segment_seqnum, 2);

	length = repeat(0, "a", 10);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_SAR, 0xBEEF, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_int_equal(split.parts[0].sar_total_segments, 0);
	assert_int_equal(split.parts[0].sar_msg_ref_num, 0);
}

static void
test_message_payload(void **state)
{
	size_t length;

	length = repeat(0, "a€", 500);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_PAYLOAD, 0, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_part(0, NULL, 0, 1500);
	assert_memory_equal(split.parts[0].short_message,
	    "a\x1b\x65"
	    "a",
	    4);

	length = repeat(0, "😀", 300);
	assert_int_equal(
	    run_split(length, SMPP_CODING_UCS2, SMPP_CONCAT_PAYLOAD, 0, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_int_equal(split.parts[0].length, 1200);
}

static void
test_gsm_packed(void **state)
{
	static const uint8_t hellohello[] = {
	    0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37};
	uint8_t septets[160];
	size_t length;

	length = repeat(0, "hello", 2);
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_8BIT, 5, SMPP_SPLIT_GSM_PACKED),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_int_equal(split.parts[0].length, sizeof(hellohello));
	assert_memory_equal(
	    split.parts[0].short_message, hellohello, sizeof(hellohello));

	/* 161 septets: 6 + 134 octets (one fill bit), then 6 + 8. */
	length = repeat(0, "a", 161);
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_8BIT, 5, SMPP_SPLIT_GSM_PACKED),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_int_equal(split.parts[0].length, 140);
	assert_int_equal(split.parts[1].length, 14);
	assert_int_equal(split.parts[0].short_message[6], 0x61 << 1);
	assert_int_equal(
	    smpp_charset_gsm_unpack(split.parts[0].short_message + 6, 134, 1,
		153, septets, sizeof(septets)),
	    SMPP_CHARSET_OK);
	assert_memory_equal(septets, text, 153);

	/* Part 2: 8 septets after 1 fill bit leave 7 spare bits: a CR. */
	assert_int_equal(
	    smpp_charset_gsm_unpack(split.parts[1].short_message + 6, 8, 1, 9,
		septets, sizeof(septets)),
	    SMPP_CHARSET_OK);
	assert_memory_equal(septets, "aaaaaaaa\r", 9);

	/* Seven septets alone: 49 bits in 7 octets, CR in the spare bits. */
	length = repeat(0, "a", 7);
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_8BIT, 5, SMPP_SPLIT_GSM_PACKED),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.parts[0].length, 7);
	assert_int_equal(split.parts[0].short_message[6], 0x01 | 0x0D << 1);
	length = repeat(0, "a", 161);

	/* 16-bit reference: 7 + 133 octets, no fill bits. */
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_16BIT, 5, SMPP_SPLIT_GSM_PACKED),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.parts[0].length, 140);
	assert_int_equal(split.parts[0].short_message[7], 0x61 | 0x80);
	assert_int_equal(
	    smpp_charset_gsm_unpack(split.parts[0].short_message + 7, 133, 0,
		152, septets, sizeof(septets)),
	    SMPP_CHARSET_OK);
	assert_memory_equal(septets, text, 152);
}

static void
test_too_many_parts(void **state)
{
	struct smpp_split_options options = {
	    SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 1, 0};
	size_t length;

	length = repeat(0, "a", 307);
	memset(&split, 0, sizeof(split));
	split.parts = parts;
	split.max_parts = 2;
	split.buffer = buffer;
	split.capacity = sizeof(buffer);
	assert_int_equal(smpp_split_text(text, length, &options, &split),
	    SMPP_SPLIT_ERR_TOO_MANY_PARTS);

	length = repeat(0, "a", 255 * 153);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 255);
	assert_int_equal(split.parts[254].short_message[4], 255);
	assert_int_equal(split.parts[254].short_message[5], 255);
	length = repeat(0, "a", 255 * 153 + 1);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_ERR_TOO_MANY_PARTS);
}

static void
test_buffer_too_small(void **state)
{
	struct smpp_split_options options = {
	    SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 1, 0};
	size_t length;

	length = repeat(0, "a", 161);
	memset(&split, 0, sizeof(split));
	split.parts = parts;
	split.max_parts = NELEM(parts);
	split.buffer = buffer;
	split.capacity = 170;
	assert_int_equal(smpp_split_text(text, length, &options, &split),
	    SMPP_SPLIT_ERR_SPACE);
	/* Exactly enough: 159 + 14. */
	split.capacity = 173;
	assert_int_equal(
	    smpp_split_text(text, length, &options, &split), SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
}

static void
test_choose_coding(void **state)
{
	size_t length;

	length = repeat(0, "Привет", 1);
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_8BIT, 1, SMPP_SPLIT_CHOOSE_CODING),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.coding, SMPP_CODING_UCS2);
	assert_int_equal(split.parts[0].length, 12);

	/* ç x 141: Latin-1 in 2 parts (134 + 7) rather than UCS-2 in 3. */
	length = repeat(0, "ç", 141);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 1,
		SMPP_SPLIT_CHOOSE_CODING | SMPP_SPLIT_ALLOW_LATIN1),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.coding, SMPP_CODING_LATIN1);
	assert_int_equal(split.count, 2);
	assert_int_equal(split.parts[0].length, 140);
	assert_int_equal(split.parts[0].short_message[6], 0xE7);
	assert_int_equal(split.parts[1].length, 6 + 7);
	assert_int_equal(run_split(length, SMPP_CODING_DEFAULT,
			     SMPP_CONCAT_UDH_8BIT, 1, SMPP_SPLIT_CHOOSE_CODING),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.coding, SMPP_CODING_UCS2);
	assert_int_equal(split.count, 3);
}

static void
test_errors(void **state)
{
	size_t length;

	length = repeat(0, "Привет", 1);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_ERR_UNREPRESENTABLE);
	memcpy(text, "ab\xc3", 3);
	assert_int_equal(
	    run_split(3, SMPP_CODING_UCS2, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_ERR_UTF8);
	assert_int_equal(run_split(3, SMPP_CODING_UCS2, SMPP_CONCAT_UDH_8BIT, 1,
			     SMPP_SPLIT_CHOOSE_CODING),
	    SMPP_SPLIT_ERR_UTF8);
	/* Invalid UTF-8 far beyond the first part is still found. */
	length = repeat(0, "a", 400);
	text[399] = (char)0xff;
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_ERR_UTF8);
	length = repeat(0, "a", 4);
	assert_int_equal(
	    run_split(length, SMPP_CODING_IA5, SMPP_CONCAT_UDH_8BIT, 1, 0),
	    SMPP_SPLIT_ERR_ARGUMENT);
	assert_int_equal(
	    run_split(length, SMPP_CODING_DEFAULT, (enum smpp_concat)9, 1, 0),
	    SMPP_SPLIT_ERR_ARGUMENT);
}

static void
test_empty_text(void **state)
{
	assert_int_equal(run_split(0, SMPP_CODING_DEFAULT, SMPP_CONCAT_UDH_8BIT,
			     1, SMPP_SPLIT_CHOOSE_CODING),
	    SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_int_equal(split.parts[0].length, 0);
	assert_int_equal(split.parts[0].esm_class, 0);
}

static void
test_binary(void **state)
{
	struct smpp_split_options options = {
	    SMPP_CODING_BINARY, SMPP_CONCAT_UDH_8BIT, 0x77, 0};
	uint8_t data[300];
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	memset(&split, 0, sizeof(split));
	split.parts = parts;
	split.max_parts = NELEM(parts);
	split.buffer = buffer;
	split.capacity = sizeof(buffer);

	assert_int_equal(
	    smpp_split_binary(data, 140, &options, &split), SMPP_SPLIT_OK);
	assert_int_equal(split.count, 1);
	assert_int_equal(split.parts[0].length, 140);
	assert_int_equal(split.coding, SMPP_CODING_BINARY);

	assert_int_equal(
	    smpp_split_binary(data, 141, &options, &split), SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_int_equal(split.parts[0].length, 140);
	assert_memory_equal(split.parts[0].short_message + 6, data, 134);
	assert_int_equal(split.parts[1].length, 6 + 7);
	assert_memory_equal(split.parts[1].short_message + 6, data + 134, 7);

	options.concat = SMPP_CONCAT_UDH_16BIT;
	options.coding = SMPP_CODING_DEFAULT;
	assert_int_equal(
	    smpp_split_binary(data, 141, &options, &split), SMPP_SPLIT_OK);
	assert_int_equal(split.count, 2);
	assert_int_equal(split.parts[0].length, 140);
	assert_int_equal(split.parts[1].length, 7 + 8);
	assert_int_equal(split.coding, SMPP_CODING_BINARY_8BIT);
}

/*
 * For many texts and every concatenation method: the chooser's part count
 * is the split's, and the parts' text decoded one by one and joined gives
 * the original back (so no pair was ever cut).
 */
static void
test_choose_agrees_with_split(void **state)
{
	static const char *const units[] = {
	    "a", "€", "ж", "😀", "a€", "😀ж", "ab{", "ç"};
	static const enum smpp_concat concats[] = {
	    SMPP_CONCAT_UDH_8BIT, SMPP_CONCAT_UDH_16BIT, SMPP_CONCAT_SAR};
	static const size_t udh_lengths[] = {6, 7, 6};
	static char joined[8192];
	struct smpp_charset_choice choice;
	size_t u, c, n, i, length, joined_length, piece, header;
	unsigned flags = SMPP_SPLIT_CHOOSE_CODING | SMPP_SPLIT_ALLOW_LATIN1;

	for (u = 0; u < NELEM(units); u++)
		for (c = 0; c < NELEM(concats); c++)
			for (n = 0; n < 400; n += 1 + n / 40) {
				length = repeat(0, units[u], n);
				assert_int_equal(
				    smpp_charset_choose(text, length,
					SMPP_CHARSET_ALLOW_LATIN1,
					udh_lengths[c], &choice),
				    SMPP_CHARSET_OK);
				assert_int_equal(
				    run_split(length, SMPP_CODING_DEFAULT,
					concats[c], 1, flags),
				    SMPP_SPLIT_OK);
				assert_int_equal(split.count, choice.parts);
				assert_int_equal(split.coding, choice.coding);
				joined_length = 0;
				for (i = 0; i < split.count; i++) {
					header = split.parts[i].esm_class
						     ? 1 + split.parts[i]
							       .short_message[0]
						     : 0;
					assert_int_equal(
					    smpp_charset_decode(split.coding,
						split.parts[i].short_message +
						    header,
						split.parts[i].length - header,
						joined + joined_length,
						sizeof(joined) - joined_length,
						&piece),
					    SMPP_CHARSET_OK);
					joined_length += piece;
				}
				assert_int_equal(joined_length, length);
				assert_memory_equal(joined, text, length);
			}
}

static void
test_udh_parse_concat(void **state)
{
	static const uint8_t eight[] = {
	    0x05, 0x00, 0x03, 0xAB, 0x03, 0x02, 'h', 'i'};
	static const uint8_t sixteen[] = {
	    0x06, 0x08, 0x04, 0xBE, 0xEF, 0x04, 0x04};
	struct smpp_udh udh;

	assert_int_equal(
	    smpp_udh_parse(eight, sizeof(eight), &udh), SMPP_UDH_OK);
	assert_int_equal(udh.header_length, 6);
	assert_int_equal(udh.element_count, 1);
	assert_int_equal(udh.element[0].id, SMPP_UDH_IE_CONCAT_8BIT);
	assert_int_equal(udh.element[0].length, 3);
	assert_ptr_equal(udh.element[0].data, eight + 3);
	assert_true(udh.has_concat);
	assert_int_equal(udh.concat_reference_bits, 8);
	assert_int_equal(udh.concat_reference, 0xAB);
	assert_int_equal(udh.concat_total, 3);
	assert_int_equal(udh.concat_seqnum, 2);
	assert_false(udh.has_ports);

	assert_int_equal(
	    smpp_udh_parse(sixteen, sizeof(sixteen), &udh), SMPP_UDH_OK);
	assert_int_equal(udh.header_length, 7);
	assert_true(udh.has_concat);
	assert_int_equal(udh.concat_reference_bits, 16);
	assert_int_equal(udh.concat_reference, 0xBEEF);
	assert_int_equal(udh.concat_total, 4);
	assert_int_equal(udh.concat_seqnum, 4);
}

static void
test_udh_parse_ports(void **state)
{
	/* WAP push: ports 2948 <- 9200, with an 8-bit concatenation. */
	static const uint8_t wap[] = {0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0,
	    0x00, 0x03, 0x11, 0x02, 0x01};
	static const uint8_t small[] = {0x04, 0x04, 0x02, 0x10, 0x20};
	struct smpp_udh udh;

	assert_int_equal(smpp_udh_parse(wap, sizeof(wap), &udh), SMPP_UDH_OK);
	assert_int_equal(udh.header_length, 12);
	assert_int_equal(udh.element_count, 2);
	assert_true(udh.has_ports);
	assert_int_equal(udh.port_bits, 16);
	assert_int_equal(udh.destination_port, 2948);
	assert_int_equal(udh.source_port, 9200);
	assert_true(udh.has_concat);
	assert_int_equal(udh.concat_reference, 0x11);

	assert_int_equal(
	    smpp_udh_parse(small, sizeof(small), &udh), SMPP_UDH_OK);
	assert_true(udh.has_ports);
	assert_int_equal(udh.port_bits, 8);
	assert_int_equal(udh.destination_port, 0x10);
	assert_int_equal(udh.source_port, 0x20);
	assert_false(udh.has_concat);
}

static void
test_udh_parse_malformed(void **state)
{
	static const struct {
		const char *bytes;
		size_t length;
		int status;
	} cases[] = {
	    {"", 0, SMPP_UDH_ERR_TRUNCATED},
	    {"\x05\x00\x03\x01", 4, SMPP_UDH_ERR_TRUNCATED},
	    {"\xff", 1, SMPP_UDH_ERR_TRUNCATED},
	    {"\x03\x00\x03\x01", 4, SMPP_UDH_ERR_MALFORMED},
	    {"\x01\x00", 2, SMPP_UDH_ERR_MALFORMED},
	    {"\x05\x00\x03\x01\x02\x01\x00\x05", 8, SMPP_UDH_OK},
	    {"\x04\x00\x00\x24\x05", 5, SMPP_UDH_ERR_MALFORMED},
	};
	struct smpp_udh udh;
	size_t i;

	for (i = 0; i < NELEM(cases); i++)
		assert_int_equal(smpp_udh_parse((const uint8_t *)cases[i].bytes,
				     cases[i].length, &udh),
		    cases[i].status);
}

static void
test_udh_parse_ignored_elements(void **state)
{
	static const char *const ignored[] = {
	    "\x05\x00\x03\x01\x02\x00", /* seqnum 0 */
	    "\x05\x00\x03\x01\x02\x03", /* seqnum above total */
	    "\x05\x00\x03\x01\x00\x00", /* total 0 */
	    "\x04\x00\x02\x01\x02",     /* wrong length */
	    "\x05\x08\x03\x01\x02\x01", /* wrong length, 16-bit */
	    "\x05\x24\x03\x01\x02\x01", /* unknown element */
	};
	/* Two concatenation elements: the last counts. */
	static const uint8_t repeated[] = {
	    0x0A, 0x00, 0x03, 0x01, 0x02, 0x01, 0x00, 0x03, 0x09, 0x05, 0x04};
	/* A later invalid element leaves the earlier valid one. */
	static const uint8_t then_invalid[] = {
	    0x0A, 0x00, 0x03, 0x01, 0x02, 0x01, 0x00, 0x03, 0x09, 0x00, 0x04};
	uint8_t many[1 + 80];
	struct smpp_udh udh;
	size_t i;

	for (i = 0; i < NELEM(ignored); i++) {
		assert_int_equal(smpp_udh_parse((const uint8_t *)ignored[i],
				     1 + (size_t)ignored[i][0], &udh),
		    SMPP_UDH_OK);
		assert_false(udh.has_concat);
		assert_int_equal(udh.element_count, 1);
	}
	assert_int_equal(
	    smpp_udh_parse(repeated, sizeof(repeated), &udh), SMPP_UDH_OK);
	assert_int_equal(udh.concat_reference, 0x09);
	assert_int_equal(udh.concat_total, 5);
	assert_int_equal(udh.concat_seqnum, 4);
	assert_int_equal(
	    smpp_udh_parse(then_invalid, sizeof(then_invalid), &udh),
	    SMPP_UDH_OK);
	assert_int_equal(udh.concat_reference, 0x01);

	/* An empty UDH. */
	assert_int_equal(smpp_udh_parse((const uint8_t *)"\x00"
							 "abc",
			     4, &udh),
	    SMPP_UDH_OK);
	assert_int_equal(udh.header_length, 1);
	assert_int_equal(udh.element_count, 0);

	/* 40 empty elements: the first 16 are kept, all are counted. */
	many[0] = 80;
	for (i = 0; i < 40; i++) {
		many[1 + 2 * i] = 0x70;
		many[2 + 2 * i] = 0;
	}
	assert_int_equal(smpp_udh_parse(many, sizeof(many), &udh), SMPP_UDH_OK);
	assert_int_equal(udh.element_count, SMPP_UDH_MAX_ELEMENTS);
	assert_int_equal(udh.elements_seen, 40);
}

static void
test_udh_write_and_fill(void **state)
{
	uint8_t out[8];

	assert_int_equal(
	    smpp_udh_write_concat(out, sizeof(out), 8, 0x1FF, 3, 1), 6);
	assert_memory_equal(out, "\x05\x00\x03\xff\x03\x01", 6);
	assert_int_equal(smpp_udh_write_concat(out, 5, 8, 1, 3, 1), 0);
	assert_int_equal(smpp_udh_write_concat(out, 6, 16, 1, 3, 1), 0);
	assert_int_equal(
	    smpp_udh_write_concat(out, sizeof(out), 12, 1, 3, 1), 0);
	assert_int_equal(smpp_udh_fill_bits(0), 0);
	assert_int_equal(smpp_udh_fill_bits(1), 6);
	assert_int_equal(smpp_udh_fill_bits(6), 1);
	assert_int_equal(smpp_udh_fill_bits(7), 0);
	assert_int_equal(smpp_udh_fill_bits(12), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gsm_160_161),
	    cmocka_unit_test(test_gsm_306_307),
	    cmocka_unit_test(test_ucs2_70_71_and_134_135),
	    cmocka_unit_test(test_16bit_reference),
	    cmocka_unit_test(test_escape_at_part_boundary),
	    cmocka_unit_test(test_emoji_at_part_boundary),
	    cmocka_unit_test(test_sar),
	    cmocka_unit_test(test_message_payload),
	    cmocka_unit_test(test_gsm_packed),
	    cmocka_unit_test(test_too_many_parts),
	    cmocka_unit_test(test_buffer_too_small),
	    cmocka_unit_test(test_choose_coding),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_empty_text),
	    cmocka_unit_test(test_binary),
	    cmocka_unit_test(test_choose_agrees_with_split),
	    cmocka_unit_test(test_udh_parse_concat),
	    cmocka_unit_test(test_udh_parse_ports),
	    cmocka_unit_test(test_udh_parse_malformed),
	    cmocka_unit_test(test_udh_parse_ignored_elements),
	    cmocka_unit_test(test_udh_write_and_fill),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
