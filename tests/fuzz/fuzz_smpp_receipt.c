/*
 * fuzz_smpp_receipt.c - libFuzzer target for delivery receipt text: parse
 * arbitrary bytes; when they parse, format the receipt and parse that again:
 * both parses must agree on every valid field (id, stat, err, counts, text,
 * dates to the minute). Message id normalisation is checked to be a fixed
 * point of itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smpp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every bit that says a value is valid (raw-only bits left out). */
#define VALID_FIELDS                                                         \
	(SMPP_RECEIPT_ID | SMPP_RECEIPT_SUBMITTED | SMPP_RECEIPT_DELIVERED | \
	    SMPP_RECEIPT_SUBMIT_TIME | SMPP_RECEIPT_DONE_TIME |              \
	    SMPP_RECEIPT_STAT | SMPP_RECEIPT_ERROR_CODE | SMPP_RECEIPT_TEXT)

/* 2000-01-01 and 2100-01-01: the years two digits can say. */
#define FIRST_TWO_DIGIT_YEAR  946684800
#define AFTER_TWO_DIGIT_YEARS 4102444800

static void
check(int condition)
{
	if (!condition)
		abort();
}

/* A parsed time as formatting writes it: two-digit year, no seconds. */
static int64_t
to_the_minute(int64_t epoch)
{
	check(epoch >= FIRST_TWO_DIGIT_YEAR && epoch < AFTER_TWO_DIGIT_YEARS);
	return epoch - epoch % 60;
}

/* The canonical form of an id must normalise to itself in every base. */
static void
check_normalized_id(const char *id)
{
	char once[SMPP_RECEIPT_ID_SIZE], twice[SMPP_RECEIPT_ID_SIZE];
	int base, length;

	for (base = SMPP_ID_BASE_AS_GIVEN; base <= SMPP_ID_BASE_DECIMAL;
	     base++) {
		length = smpp_receipt_normalize_id(id, strlen(id),
		    (enum smpp_id_base)base, once, sizeof(once));
		check(length > 0 && (size_t)length == strlen(once) &&
		      (size_t)length <= strlen(id));
		check(smpp_receipt_normalize_id(once, (size_t)length,
			  SMPP_ID_BASE_HEX, twice, sizeof(twice)) == length);
		check(strcmp(once, twice) == 0);
		check(
		    smpp_receipt_normalize_id(once, (size_t)length,
			SMPP_ID_BASE_AS_GIVEN, twice, sizeof(twice)) == length);
		check(strcmp(once, twice) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smpp_receipt first, second;
	char text[SMPP_RECEIPT_MAX_LENGTH];
	unsigned int expected;
	size_t text_length;
	int length;

	if (smpp_receipt_parse(data, size, &first) != 0)
		return 0;
	check(first.id[0] != '\0' && strlen(first.id) < SMPP_RECEIPT_ID_SIZE);
	check(first.text == NULL ||
	      (first.text >= data &&
		  first.text + first.text_length <= data + size));
	check_normalized_id(first.id);

	length = smpp_receipt_format(&first, text, sizeof(text));
	check(length > 0 && (size_t)length == strlen(text));
	check(smpp_receipt_parse(
		  (const uint8_t *)text, (size_t)length, &second) == 0);

	expected = first.fields & VALID_FIELDS;
	check((second.fields & VALID_FIELDS) == expected);

	check(strcmp(first.id, second.id) == 0);
	if (expected & SMPP_RECEIPT_STAT)
		check(first.state == second.state);
	if (expected & SMPP_RECEIPT_ERROR_CODE)
		check(first.error_code == second.error_code);
	if (expected & SMPP_RECEIPT_SUBMITTED)
		check(first.submitted == second.submitted);
	if (expected & SMPP_RECEIPT_DELIVERED)
		check(first.delivered == second.delivered);
	if (expected & SMPP_RECEIPT_SUBMIT_TIME)
		check(to_the_minute(first.submit_time) == second.submit_time);
	if (expected & SMPP_RECEIPT_DONE_TIME)
		check(to_the_minute(first.done_time) == second.done_time);
	if (expected & SMPP_RECEIPT_TEXT) {
		text_length = first.text_length < SMPP_RECEIPT_TEXT_LENGTH
				  ? first.text_length
				  : SMPP_RECEIPT_TEXT_LENGTH;
		check(second.text_length == text_length);
		check(text_length == 0 ||
		      memcmp(first.text, second.text, text_length) == 0);
	}
	return 0;
}
