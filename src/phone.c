/*
 * phone.c - phone numbers to E.164. International input ("+39 340 123
 * 4567", "0039...") keeps its country code; a national number takes the
 * configured default country's calling code, dropping the national trunk
 * prefix where that country dials one (0 in most of Europe, 1 in NANP).
 * Punctuation people type (spaces, dashes, dots, brackets) is ignored;
 * letters are not. The table holds the countries a shop is likely to ship
 * to; the numbers' own validity (which ranges exist) is the carrier's call.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "nudged.h"

/* One country: ISO code, calling code, trunk prefix, national lengths. */
struct phone_country {
	const char *iso;
	const char *calling_code;
	const char *trunk_prefix;    /* dropped from national numbers */
	unsigned int minimum_digits; /* national significant number */
	unsigned int maximum_digits;
};

static const struct phone_country phone_countries[] = {
    {"AT", "43", "0", 4, 13},
    {"AU", "61", "0", 8, 9},
    {"BE", "32", "0", 8, 9},
    {"BG", "359", "0", 7, 9},
    {"BR", "55", "0", 10, 11},
    {"CA", "1", "1", 10, 10},
    {"CH", "41", "0", 9, 9},
    {"CZ", "420", "", 9, 9},
    {"DE", "49", "0", 6, 13},
    {"DK", "45", "", 8, 8},
    {"EE", "372", "", 7, 8},
    {"ES", "34", "", 9, 9},
    {"FI", "358", "0", 5, 12},
    {"FR", "33", "0", 9, 9},
    {"GB", "44", "0", 9, 10},
    {"GR", "30", "", 10, 10},
    {"HR", "385", "0", 8, 9},
    {"HU", "36", "06", 8, 9},
    {"IE", "353", "0", 7, 9},
    {"IN", "91", "0", 10, 10},
    {"IT", "39", "", 6, 11},
    {"LT", "370", "8", 8, 8},
    {"LU", "352", "", 4, 11},
    {"LV", "371", "", 8, 8},
    {"MX", "52", "", 10, 10},
    {"NL", "31", "0", 9, 9},
    {"NO", "47", "", 8, 8},
    {"NZ", "64", "0", 8, 10},
    {"PL", "48", "", 9, 9},
    {"PT", "351", "", 9, 9},
    {"RO", "40", "0", 9, 9},
    {"SE", "46", "0", 7, 9},
    {"SI", "386", "0", 8, 8},
    {"SK", "421", "0", 9, 9},
    {"TR", "90", "0", 10, 10},
    {"UA", "380", "0", 9, 9},
    {"US", "1", "1", 10, 10},
    {"ZA", "27", "0", 9, 9},
};

const char *
phone_calling_code(const char *iso)
{
	size_t i;

	for (i = 0; i < sizeof(phone_countries) / sizeof(phone_countries[0]);
	     i++)
		if (strcasecmp(phone_countries[i].iso, iso) == 0)
			return phone_countries[i].calling_code;
	return NULL;
}

static const struct phone_country *
phone_country(const char *iso)
{
	size_t i;

	for (i = 0; i < sizeof(phone_countries) / sizeof(phone_countries[0]);
	     i++)
		if (strcasecmp(phone_countries[i].iso, iso) == 0)
			return &phone_countries[i];
	return NULL;
}

int
phone_normalize(const char *input, const char *default_country, char *out,
    size_t out_size, const char **error)
{
	const struct phone_country *country;
	char digits[32];
	const char *p, *national;
	size_t count = 0, trunk_length, national_length;
	int international = 0;

	*error = NULL;
	for (p = input; *p == ' '; p++)
		;
	if (*p == '+') {
		international = 1;
		p++;
	}
	for (; *p != '\0'; p++) {
		if (isdigit((unsigned char)*p)) {
			if (count + 1 >= sizeof(digits)) {
				*error = "too many digits";
				return -1;
			}
			digits[count++] = *p;
		} else if (strchr(" -.()/", *p) == NULL) {
			*error = "only digits, '+' and spaces, dashes, dots or "
				 "brackets";
			return -1;
		}
	}
	digits[count] = '\0';
	if (!international && count > 2 && digits[0] == '0' &&
	    digits[1] == '0') {
		/* 00 is the international prefix in most of the world. */
		memmove(digits, digits + 2, count - 1);
		count -= 2;
		international = 1;
	}
	if (international) {
		if (count < 8 || count > 15 || digits[0] == '0') {
			*error = "an international number has 8 to 15 digits "
				 "after '+' and no leading 0";
			return -1;
		}
		if (count + 2 > out_size) {
			*error = "too long";
			return -1;
		}
		snprintf(out, out_size, "+%s", digits);
		return 0;
	}
	if (default_country == NULL || default_country[0] == '\0' ||
	    (country = phone_country(default_country)) == NULL) {
		*error = "not international ('+' and the country code) and no "
			 "default country is configured";
		return -1;
	}
	national = digits;
	trunk_length = strlen(country->trunk_prefix);
	if (trunk_length > 0 &&
	    strncmp(digits, country->trunk_prefix, trunk_length) == 0 &&
	    count - trunk_length >= country->minimum_digits)
		national += trunk_length;
	national_length = strlen(national);
	if (national_length < country->minimum_digits ||
	    national_length > country->maximum_digits) {
		*error = "wrong number of digits for the default country";
		return -1;
	}
	if (strlen(country->calling_code) + national_length + 2 > out_size ||
	    strlen(country->calling_code) + national_length > 15) {
		*error = "too long for E.164";
		return -1;
	}
	snprintf(out, out_size, "+%s%s", country->calling_code, national);
	return 0;
}

const char *
phone_digits(const char *number, size_t *length)
{
	const char *digits = number[0] == '+' ? number + 1 : number;

	*length = strlen(digits);
	return digits;
}
