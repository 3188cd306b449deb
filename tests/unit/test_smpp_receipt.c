/*
 * test_smpp_receipt.c - delivery receipt parsing, formatting, stat words and
 * message id normalisation, against receipts written the way real SMSCs
 * write them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smpp.h"

/* Parses a C string receipt and asserts it parsed. */
static void
parse_ok(const char *text, struct smpp_receipt *receipt)
{
	assert_int_equal(
	    smpp_receipt_parse((const uint8_t *)text, strlen(text), receipt),
	    0);
}

/* Asserts the receipt's text field is exactly expected. */
static void
assert_text(const struct smpp_receipt *receipt, const char *expected)
{
	assert_true(receipt->fields & SMPP_RECEIPT_TEXT);
	assert_int_equal(receipt->text_length, strlen(expected));
	assert_memory_equal(receipt->text, expected, strlen(expected));
}

/* SMPP 3.4 Appendix B as written, every field present. */
static void
test_canonical_appendix_b(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("id:0123456789 sub:001 dlvrd:001 submit date:2403151230 "
		 "done date:2403151231 stat:DELIVRD err:000 "
		 "text:Your code is 4821",
	    &receipt);
	assert_string_equal(receipt.id, "0123456789");
	assert_int_equal(receipt.submitted, 1);
	assert_int_equal(receipt.delivered, 1);
	assert_string_equal(receipt.submit_date, "2403151230");
	assert_int_equal(receipt.submit_time, 1710505800);
	assert_string_equal(receipt.done_date, "2403151231");
	assert_int_equal(receipt.done_time, 1710505860);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_DELIVERED);
	assert_string_equal(receipt.stat, "DELIVRD");
	assert_int_equal(receipt.error_code, 0);
	assert_string_equal(receipt.err, "000");
	assert_text(&receipt, "Your code is 4821");
	assert_int_equal(receipt.fields,
	    SMPP_RECEIPT_ID | SMPP_RECEIPT_SUBMITTED | SMPP_RECEIPT_DELIVERED |
		SMPP_RECEIPT_SUBMIT_DATE | SMPP_RECEIPT_SUBMIT_TIME |
		SMPP_RECEIPT_DONE_DATE | SMPP_RECEIPT_DONE_TIME |
		SMPP_RECEIPT_STAT | SMPP_RECEIPT_ERR | SMPP_RECEIPT_ERROR_CODE |
		SMPP_RECEIPT_TEXT);
}

/* Kannel / opensmppbox style: decimal id, "Text:" capitalised, err 001. */
static void
test_kannel_style(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("id:1627394 sub:001 dlvrd:000 submit date:2403151230 "
		 "done date:2403151245 stat:UNDELIV err:001 "
		 "Text:Hello from Kann",
	    &receipt);
	assert_string_equal(receipt.id, "1627394");
	assert_int_equal(receipt.delivered, 0);
	assert_true(receipt.fields & SMPP_RECEIPT_DELIVERED);
	assert_int_equal(receipt.done_time, 1710506700);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_UNDELIVERABLE);
	assert_int_equal(receipt.error_code, 1);
	assert_text(&receipt, "Hello from Kann");
}

/* An SMSC that hands out hex ids, with an empty text field. */
static void
test_hex_id_style(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("id:5E3A1F0B sub:001 dlvrd:001 submit date:2403151230 "
		 "done date:2403151231 stat:DELIVRD err:000 text:",
	    &receipt);
	assert_string_equal(receipt.id, "5E3A1F0B");
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_DELIVERED);
	assert_text(&receipt, "");
}

/* Upper-case keys and 12-digit dates with seconds. */
static void
test_upper_case_keys_and_seconds(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("ID:7c1b39a0 SUB:001 DLVRD:001 SUBMIT DATE:240315123005 "
		 "DONE DATE:240315123107 STAT:DELIVRD ERR:000 "
		 "TEXT:Flash sale ends",
	    &receipt);
	assert_string_equal(receipt.id, "7c1b39a0");
	assert_int_equal(receipt.submit_time, 1710505805);
	assert_int_equal(receipt.done_time, 1710505867);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_DELIVERED);
	assert_text(&receipt, "Flash sale ends");
}

/* No sub/dlvrd/text, "submit_date" with an underscore, err as one digit. */
static void
test_missing_fields_and_underscore(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("id:88412367 submit_date:2403151230 done_date:2403151232 "
		 "stat:EXPIRED err:0",
	    &receipt);
	assert_string_equal(receipt.id, "88412367");
	assert_false(receipt.fields & SMPP_RECEIPT_SUBMITTED);
	assert_false(receipt.fields & SMPP_RECEIPT_DELIVERED);
	assert_false(receipt.fields & SMPP_RECEIPT_TEXT);
	assert_int_equal(receipt.submit_time, 1710505800);
	assert_int_equal(receipt.done_time, 1710505920);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_EXPIRED);
	assert_true(receipt.fields & SMPP_RECEIPT_ERROR_CODE);
	assert_int_equal(receipt.error_code, 0);
}

/* Text last holds colons and a fake "stat:": stat stays the real one. */
static void
test_text_with_colons_and_stat(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("id:42 sub:001 dlvrd:001 submit date:2403151230 "
		 "done date:2403151231 stat:REJECTD err:011 "
		 "text:Time: 12:30 stat:DELIVRD id:9",
	    &receipt);
	assert_string_equal(receipt.id, "42");
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_REJECTED);
	assert_int_equal(receipt.error_code, 11);
	assert_text(&receipt, "Time: 12:30 stat:DELIVRD id:9");
}

/* All lowercase, including the stat word, with a misspelled word. */
static void
test_lowercase_and_misspelling(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("id:a1b2 sub:1 dlvrd:1 submit date:2403151230 "
		 "done date:2403151231 stat:delivered err:000 text:hi",
	    &receipt);
	assert_string_equal(receipt.id, "a1b2");
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_DELIVERED);
	assert_string_equal(receipt.stat, "delivered");

	parse_ok("id:a1b3 stat:UNDELIVERABLE err:005", &receipt);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_UNDELIVERABLE);
	assert_int_equal(receipt.error_code, 5);
}

/* Text cut at 20 octets, and a receipt cut off in the middle of a date. */
static void
test_truncated(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("id:31337 sub:001 dlvrd:001 submit date:2403151230 "
		 "done date:2403151231 stat:DELIVRD err:000 "
		 "text:Your order #A1B2C3 h",
	    &receipt);
	assert_text(&receipt, "Your order #A1B2C3 h");

	parse_ok("id:99 sub:001 dlvrd:001 submit date:2403151230 "
		 "done date:24031512",
	    &receipt);
	assert_string_equal(receipt.id, "99");
	assert_true(receipt.fields & SMPP_RECEIPT_SUBMIT_TIME);
	assert_true(receipt.fields & SMPP_RECEIPT_DONE_DATE);
	assert_false(receipt.fields & SMPP_RECEIPT_DONE_TIME);
	assert_string_equal(receipt.done_date, "24031512");
	assert_false(receipt.fields & SMPP_RECEIPT_STAT);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_NONE);
}

/* Fields in another order, text before stat, extra spaces, unknown keys. */
static void
test_reordered_and_spaced(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("stat:ACCEPTD  err:000   id:  555  mcc:222 mnc:10 "
		 "dlvrd:000 sub:001",
	    &receipt);
	assert_string_equal(receipt.id, "555");
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_ACCEPTED);
	assert_int_equal(receipt.submitted, 1);
	assert_int_equal(receipt.delivered, 0);

	/* Text before stat ends at the next key not seen yet. */
	parse_ok("id:77 text:Hello there:)  stat:ENROUTE err:034", &receipt);
	assert_text(&receipt, "Hello there:)");
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_ENROUTE);
	assert_int_equal(receipt.error_code, 34);

	/* An empty value does not swallow the next key. */
	parse_ok("id:78 sub: dlvrd:001 stat:DELETED", &receipt);
	assert_false(receipt.fields & SMPP_RECEIPT_SUBMITTED);
	assert_int_equal(receipt.delivered, 1);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_DELETED);

	/* A repeated key: the first valid value wins. */
	parse_ok("id:79 stat:DELIVRD stat:REJECTD", &receipt);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_DELIVERED);
}

/* Date forms: 14 digits, leap day, invalid days and hours. */
static void
test_dates(void **state)
{
	struct smpp_receipt receipt;

	parse_ok(
	    "id:1 submit date:20231231235959 done date:2402292359", &receipt);
	assert_int_equal(receipt.submit_time, 1704067199);
	assert_int_equal(receipt.done_time, 1709251140);

	parse_ok("id:1 submit date:2302291200 done date:2403152460", &receipt);
	assert_true(receipt.fields & SMPP_RECEIPT_SUBMIT_DATE);
	assert_false(receipt.fields & SMPP_RECEIPT_SUBMIT_TIME);
	assert_false(receipt.fields & SMPP_RECEIPT_DONE_TIME);

	parse_ok("id:1 submit date:2413151230 done date:24031512a0", &receipt);
	assert_false(receipt.fields & SMPP_RECEIPT_SUBMIT_TIME);
	assert_false(receipt.fields & SMPP_RECEIPT_DONE_TIME);

	/* Four-digit years that two digits could not write back. */
	parse_ok("id:1 submit date:19991231235959 done date:21000101000000",
	    &receipt);
	assert_false(receipt.fields & SMPP_RECEIPT_SUBMIT_TIME);
	assert_false(receipt.fields & SMPP_RECEIPT_DONE_TIME);
}

/* err as digits, hex with 0x, hex letters, or garbage kept raw only. */
static void
test_error_codes(void **state)
{
	struct smpp_receipt receipt;

	parse_ok("id:1 stat:UNDELIV err:0x1F", &receipt);
	assert_int_equal(receipt.error_code, 31);
	parse_ok("id:1 stat:UNDELIV err:00B", &receipt);
	assert_int_equal(receipt.error_code, 11);
	parse_ok("id:1 stat:UNDELIV err:??", &receipt);
	assert_true(receipt.fields & SMPP_RECEIPT_ERR);
	assert_false(receipt.fields & SMPP_RECEIPT_ERROR_CODE);
	assert_string_equal(receipt.err, "??");
	parse_ok("id:1 stat:UNDELIV err:99999999999", &receipt);
	assert_false(receipt.fields & SMPP_RECEIPT_ERROR_CODE);
}

/* What is not a receipt, or has an unusable id, is refused. */
static void
test_rejects(void **state)
{
	static const uint8_t with_nul[] = "stat:DELIVRD\0id:12";
	struct smpp_receipt receipt;
	char long_id[100];

	assert_int_equal(
	    smpp_receipt_parse((const uint8_t *)"hello world", 11, &receipt),
	    -1);
	assert_int_equal(
	    smpp_receipt_parse((const uint8_t *)"", 0, &receipt), -1);
	assert_int_equal(smpp_receipt_parse(
			     (const uint8_t *)"id: stat:DELIVRD", 16, &receipt),
	    -1);
	/* Parsing stops at a NUL. */
	assert_int_equal(
	    smpp_receipt_parse(with_nul, sizeof(with_nul) - 1, &receipt), -1);
	/* 64 characters are the most an id may have. */
	memcpy(long_id, "id:", 3);
	memset(long_id + 3, '7', 64);
	assert_int_equal(
	    smpp_receipt_parse((const uint8_t *)long_id, 67, &receipt), 0);
	assert_int_equal(strlen(receipt.id), 64);
	memset(long_id + 3, '7', 65);
	assert_int_equal(
	    smpp_receipt_parse((const uint8_t *)long_id, 68, &receipt), -1);
	/* The length bounds the read: "id:12" cut to "id:1". */
	assert_int_equal(
	    smpp_receipt_parse((const uint8_t *)"id:12", 4, &receipt), 0);
	assert_string_equal(receipt.id, "1");
}

/* Formatting nudged's own receipts, byte for byte, and back. */
static void
test_format_round_trip(void **state)
{
	static const char text[] = "Your parcel is on its way, track it";
	struct smpp_receipt receipt, parsed;
	char out[SMPP_RECEIPT_MAX_LENGTH];
	int length;

	memset(&receipt, 0, sizeof(receipt));
	strcpy(receipt.id, "4f2a9c");
	receipt.submitted = 1;
	receipt.delivered = 1;
	receipt.submit_time = 1710505800;
	receipt.done_time = 1710505867;
	receipt.state = SMPP_MESSAGE_STATE_DELIVERED;
	receipt.error_code = 0;
	receipt.text = (const uint8_t *)text;
	receipt.text_length = strlen(text);
	receipt.fields = SMPP_RECEIPT_ID | SMPP_RECEIPT_SUBMITTED |
			 SMPP_RECEIPT_DELIVERED | SMPP_RECEIPT_SUBMIT_TIME |
			 SMPP_RECEIPT_DONE_TIME | SMPP_RECEIPT_STAT |
			 SMPP_RECEIPT_ERROR_CODE | SMPP_RECEIPT_TEXT;
	length = smpp_receipt_format(&receipt, out, sizeof(out));
	assert_string_equal(out,
	    "id:4f2a9c sub:001 dlvrd:001 submit date:2403151230 "
	    "done date:2403151231 stat:DELIVRD err:000 "
	    "text:Your parcel is on it");
	assert_int_equal(length, strlen(out));

	parse_ok(out, &parsed);
	assert_string_equal(parsed.id, "4f2a9c");
	assert_int_equal(parsed.submit_time, 1710505800);
	/* The canonical form has minutes only. */
	assert_int_equal(parsed.done_time, 1710505860);
	assert_int_equal(parsed.state, SMPP_MESSAGE_STATE_DELIVERED);
	assert_int_equal(parsed.error_code, 0);
	assert_text(&parsed, "Your parcel is on it");

	/* Too small a buffer: -1 and an empty string, never a cut receipt. */
	assert_int_equal(smpp_receipt_format(&receipt, out, 40), -1);
	assert_string_equal(out, "");
	assert_int_equal(
	    smpp_receipt_format(&receipt, out, (size_t)length), -1);
	assert_int_equal(
	    smpp_receipt_format(&receipt, out, (size_t)length + 1), length);

	/* Only the fields present, and no id is an error. */
	receipt.fields =
	    SMPP_RECEIPT_ID | SMPP_RECEIPT_STAT | SMPP_RECEIPT_ERROR_CODE;
	receipt.state = SMPP_MESSAGE_STATE_UNDELIVERABLE;
	receipt.error_code = 1234;
	assert_int_equal(smpp_receipt_format(&receipt, out, sizeof(out)), 31);
	assert_string_equal(out, "id:4f2a9c stat:UNDELIV err:1234");
	receipt.fields = SMPP_RECEIPT_STAT;
	assert_int_equal(smpp_receipt_format(&receipt, out, sizeof(out)), -1);

	/* A caller's time outside 2000-2099 is left out, not written wrong. */
	receipt.fields =
	    SMPP_RECEIPT_ID | SMPP_RECEIPT_SUBMIT_TIME | SMPP_RECEIPT_DONE_TIME;
	receipt.submit_time = 946684799; /* 1999-12-31 23:59:59 */
	receipt.done_time = 946684800;   /* 2000-01-01 00:00:00 */
	assert_int_equal(smpp_receipt_format(&receipt, out, sizeof(out)), 30);
	assert_string_equal(out, "id:4f2a9c done date:0001010000");
}

/* Every stat word both ways, and the names for logs. */
static void
test_stat_words(void **state)
{
	static const struct {
		const char *word;
		enum smpp_message_state state;
	} cases[] = {
	    {"ENROUTE", SMPP_MESSAGE_STATE_ENROUTE},
	    {"DELIVRD", SMPP_MESSAGE_STATE_DELIVERED},
	    {"EXPIRED", SMPP_MESSAGE_STATE_EXPIRED},
	    {"DELETED", SMPP_MESSAGE_STATE_DELETED},
	    {"UNDELIV", SMPP_MESSAGE_STATE_UNDELIVERABLE},
	    {"ACCEPTD", SMPP_MESSAGE_STATE_ACCEPTED},
	    {"UNKNOWN", SMPP_MESSAGE_STATE_UNKNOWN},
	    {"REJECTD", SMPP_MESSAGE_STATE_REJECTED},
	    {"DELIVERED", SMPP_MESSAGE_STATE_DELIVERED},
	    {"undeliverable", SMPP_MESSAGE_STATE_UNDELIVERABLE},
	    {"Undelivered", SMPP_MESSAGE_STATE_UNDELIVERABLE},
	    {"accepted", SMPP_MESSAGE_STATE_ACCEPTED},
	    {"REJECTED", SMPP_MESSAGE_STATE_REJECTED},
	    {"DELIV", SMPP_MESSAGE_STATE_NONE},
	    {"DELIVRDX", SMPP_MESSAGE_STATE_NONE},
	    {"", SMPP_MESSAGE_STATE_NONE},
	};
	struct smpp_receipt receipt;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(smpp_receipt_state_from_stat(
				     cases[i].word, strlen(cases[i].word)),
		    cases[i].state);
	for (i = 0; i < 8; i++)
		assert_int_equal(smpp_receipt_state_from_stat(
				     smpp_receipt_stat_word(cases[i].state), 7),
		    cases[i].state);
	assert_string_equal(
	    smpp_receipt_stat_word(SMPP_MESSAGE_STATE_NONE), "UNKNOWN");
	assert_string_equal(
	    smpp_receipt_stat_word(SMPP_MESSAGE_STATE_UNDELIVERABLE),
	    "UNDELIV");
	assert_string_equal(
	    smpp_receipt_state_name(SMPP_MESSAGE_STATE_UNDELIVERABLE),
	    "UNDELIVERABLE");
	assert_string_equal(
	    smpp_receipt_state_name(SMPP_MESSAGE_STATE_ACCEPTED), "ACCEPTED");
	assert_string_equal(
	    smpp_receipt_state_name((enum smpp_message_state)42), "INVALID");

	/* An unrecognised word in a receipt is UNKNOWN, kept raw for logs. */
	parse_ok("id:5 stat:FAILED", &receipt);
	assert_int_equal(receipt.state, SMPP_MESSAGE_STATE_UNKNOWN);
	assert_string_equal(receipt.stat, "FAILED");
}

/* Normalises id in base and asserts the canonical form. */
static void
assert_normalized(const char *id, enum smpp_id_base base, const char *expected)
{
	char out[SMPP_RECEIPT_ID_SIZE];

	assert_int_equal(
	    smpp_receipt_normalize_id(id, strlen(id), base, out, sizeof(out)),
	    strlen(expected));
	assert_string_equal(out, expected);
}

/* Hex and decimal spellings of one id meet in one canonical form. */
static void
test_normalize_id(void **state)
{
	char out[SMPP_RECEIPT_ID_SIZE], other[SMPP_RECEIPT_ID_SIZE];

	assert_normalized("0001A32B", SMPP_ID_BASE_HEX, "1a32b");
	assert_normalized("107307", SMPP_ID_BASE_DECIMAL, "1a32b");
	/* 0x1A2B is 6699, not 107307: those two must not match. */
	assert_normalized("0001A2B", SMPP_ID_BASE_HEX, "1a2b");
	assert_normalized("6699", SMPP_ID_BASE_DECIMAL, "1a2b");
	smpp_receipt_normalize_id(
	    "0001A2B", 7, SMPP_ID_BASE_HEX, out, sizeof(out));
	smpp_receipt_normalize_id(
	    "107307", 6, SMPP_ID_BASE_DECIMAL, other, sizeof(other));
	assert_string_not_equal(out, other);

	assert_normalized("0", SMPP_ID_BASE_DECIMAL, "0");
	assert_normalized("0000", SMPP_ID_BASE_HEX, "0");
	assert_normalized("00042", SMPP_ID_BASE_DECIMAL, "2a");
	assert_normalized("4294967295", SMPP_ID_BASE_DECIMAL, "ffffffff");
	assert_normalized(
	    "18446744073709551616", SMPP_ID_BASE_DECIMAL, "10000000000000000");
	/* Longer than 64 bits: exact, in both bases. */
	assert_normalized("1208925819614629174706175", SMPP_ID_BASE_DECIMAL,
	    "ffffffffffffffffffff");
	assert_normalized(
	    "00FFFFFFFFFFFFFFFFFFFF", SMPP_ID_BASE_HEX, "ffffffffffffffffffff");
	assert_normalized(
	    "9999999999999999999999999999999999999999999999999999999999999999",
	    SMPP_ID_BASE_DECIMAL,
	    "184f03e93ff9f4daa797ed6e38ed64bf6a1f00ffffffffffffffff");

	/* Opaque ids: lowercase, leading zeros dropped, nothing else. */
	assert_normalized("00Ab-42_X", SMPP_ID_BASE_AS_GIVEN, "ab-42_x");
	assert_normalized("6699", SMPP_ID_BASE_AS_GIVEN, "6699");
	/* Not numeric in the stated base: treated as opaque. */
	assert_normalized("0x-17", SMPP_ID_BASE_DECIMAL, "x-17");
	assert_normalized("00G1", SMPP_ID_BASE_HEX, "g1");

	/* Empty, too long, or no room. */
	assert_int_equal(smpp_receipt_normalize_id(
			     "", 0, SMPP_ID_BASE_HEX, out, sizeof(out)),
	    -1);
	assert_int_equal(
	    smpp_receipt_normalize_id("11111111111111111111111111111111"
				      "111111111111111111111111111111111",
		65, SMPP_ID_BASE_HEX, out, sizeof(out)),
	    -1);
	assert_int_equal(
	    smpp_receipt_normalize_id("12345", 5, SMPP_ID_BASE_HEX, out, 5),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_canonical_appendix_b),
	    cmocka_unit_test(test_kannel_style),
	    cmocka_unit_test(test_hex_id_style),
	    cmocka_unit_test(test_upper_case_keys_and_seconds),
	    cmocka_unit_test(test_missing_fields_and_underscore),
	    cmocka_unit_test(test_text_with_colons_and_stat),
	    cmocka_unit_test(test_lowercase_and_misspelling),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_reordered_and_spaced),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_error_codes),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_format_round_trip),
	    cmocka_unit_test(test_stat_words),
	    cmocka_unit_test(test_normalize_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
