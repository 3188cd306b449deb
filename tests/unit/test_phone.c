/*
 * test_phone.c - numbers to E.164: international forms, national numbers
 * with and without trunk prefixes, punctuation, and every refusal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nudged.h"

static const char *
normalized(const char *input, const char *country)
{
	static char out[32];
	const char *error;

	if (phone_normalize(input, country, out, sizeof(out), &error) == -1)
		return error != NULL ? "ERROR" : "ERROR-NO-TEXT";
	return out;
}

static void
test_international(void **state)
{
	assert_string_equal(
	    normalized("+39 340 123 4567", NULL), "+393401234567");
	assert_string_equal(
	    normalized("0039 340-123-4567", "DE"), "+393401234567");
	assert_string_equal(
	    normalized("+1 (202) 555-0100", "IT"), "+12025550100");
	assert_string_equal(
	    normalized("+44 20 7946 0958", ""), "+442079460958");
}

static void
test_national_with_default_country(void **state)
{
	/* Italy dials no trunk prefix: the leading 0 of landlines stays. */
	assert_string_equal(normalized("340 123 4567", "IT"), "+393401234567");
	assert_string_equal(normalized("06 1234 5678", "it"), "+390612345678");
	/* Germany, France, the UK drop their trunk 0. */
	assert_string_equal(
	    normalized("0151 12345678", "DE"), "+4915112345678");
	assert_string_equal(normalized("06.12.34.56.78", "FR"), "+33612345678");
	assert_string_equal(normalized("07700 900123", "GB"), "+447700900123");
	/* NANP: ten digits, or a leading 1. */
	assert_string_equal(normalized("(202) 555-0100", "US"), "+12025550100");
	assert_string_equal(normalized("1 202 555 0100", "US"), "+12025550100");
	/* Hungary's two-digit trunk prefix. */
	assert_string_equal(normalized("06 30 123 4567", "HU"), "+36301234567");
}

static void
test_refusals(void **state)
{
	assert_string_equal(normalized("340 123 4567", NULL), "ERROR");
	assert_string_equal(normalized("340 123 4567", "XX"), "ERROR");
	assert_string_equal(normalized("+0039340", NULL), "ERROR");
	assert_string_equal(normalized("+1234567", NULL), "ERROR");
	assert_string_equal(normalized("+1234567890123456", NULL), "ERROR");
	assert_string_equal(normalized("340 12A 4567", "IT"), "ERROR");
	assert_string_equal(normalized("12", "IT"), "ERROR");
	assert_string_equal(normalized("202 555 010", "US"), "ERROR");
	assert_string_equal(normalized("", "IT"), "ERROR");
	assert_null(phone_calling_code("XX"));
	assert_string_equal(phone_calling_code("fr"), "33");
}

/* The store's key by number: the digits, with or without the "+". */
static void
test_digits(void **state)
{
	size_t length = 0;

	assert_string_equal(
	    phone_digits("+393401234567", &length), "393401234567");
	assert_int_equal(length, 12);
	assert_string_equal(
	    phone_digits("12125550123", &length), "12125550123");
	assert_int_equal(length, 11);
	assert_string_equal(phone_digits("+", &length), "");
	assert_int_equal(length, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_international),
	    cmocka_unit_test(test_national_with_default_country),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_digits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
