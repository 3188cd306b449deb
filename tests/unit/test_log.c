/*
 * test_log.c - phone numbers never reach a log whole: masking rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "nudged.h"

static void
test_mask_international(void **state)
{
	char buffer[LOG_MASKED_NUMBER_SIZE];

	assert_string_equal(
	    log_mask_number("+393401234512", buffer, sizeof(buffer)),
	    "+3934\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2"
	    "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2"
	    "12");
	assert_string_equal(
	    log_mask_number("4915112345678", buffer, sizeof(buffer)),
	    "4915\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2"
	    "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2"
	    "78");
}

static void
test_mask_leaves_short_codes_and_names(void **state)
{
	char buffer[LOG_MASKED_NUMBER_SIZE];

	assert_string_equal(
	    log_mask_number("12345", buffer, sizeof(buffer)), "12345");
	assert_string_equal(
	    log_mask_number("NUDGE", buffer, sizeof(buffer)), "NUDGE");
	assert_string_equal(log_mask_number(NULL, buffer, sizeof(buffer)), "-");
}

static void
test_mask_never_overflows(void **state)
{
	char buffer[12];

	log_mask_number("+393401234512345", buffer, sizeof(buffer));
	assert_true(strlen(buffer) < sizeof(buffer));
	assert_memory_equal(buffer, "+3934", 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mask_international),
	    cmocka_unit_test(test_mask_leaves_short_codes_and_names),
	    cmocka_unit_test(test_mask_never_overflows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
