/*
 * smpp_receipt.c - delivery receipt text, SMPP 3.4 Appendix B:
 *
 *   id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm
 *   done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
 *
 * Parses the variants real SMSCs send (fields missing or reordered, keys in
 * any case, "submit_date", 10/12/14-digit dates, extra spaces, misspelled
 * stat words), formats the canonical form for receipts nudged sends, and
 * normalises message ids so hex and decimal spellings of one id match.
 * No allocation; every read is bounded by the length the caller passes.
 */
#include <stdio.h>
#include <string.h>

#include "smpp.h"

/* The longest id, in characters (SMPP message_id is a 65-octet C string). */
#define ID_MAX_LENGTH (SMPP_RECEIPT_ID_SIZE - 1)

/*
 * Receipt keys; a space in a key matches any run of ' ' or '_', or none.
 * Each key is named by the bit that says its value parsed: the first valid
 * value of a key wins and later repeats are skipped.
 */
static const struct receipt_key {
	const char *key;
	unsigned int field;
} receipt_keys[] = {
    {"id", SMPP_RECEIPT_ID},
    {"sub", SMPP_RECEIPT_SUBMITTED},
    {"dlvrd", SMPP_RECEIPT_DELIVERED},
    {"submit date", SMPP_RECEIPT_SUBMIT_TIME},
    {"done date", SMPP_RECEIPT_DONE_TIME},
    {"stat", SMPP_RECEIPT_STAT},
    {"err", SMPP_RECEIPT_ERROR_CODE},
    {"text", SMPP_RECEIPT_TEXT},
};

/* Stat words as SMSCs send them; Appendix B's own spellings come first. */
static const struct stat_word {
	const char *word;
	enum smpp_message_state state;
} stat_words[] = {
    {"ENROUTE", SMPP_MESSAGE_STATE_ENROUTE},
    {"DELIVRD", SMPP_MESSAGE_STATE_DELIVERED},
    {"EXPIRED", SMPP_MESSAGE_STATE_EXPIRED},
    {"DELETED", SMPP_MESSAGE_STATE_DELETED},
    {"UNDELIV", SMPP_MESSAGE_STATE_UNDELIVERABLE},
    {"ACCEPTD", SMPP_MESSAGE_STATE_ACCEPTED},
    {"UNKNOWN", SMPP_MESSAGE_STATE_UNKNOWN},
    {"REJECTD", SMPP_MESSAGE_STATE_REJECTED},
    {"EN_ROUTE", SMPP_MESSAGE_STATE_ENROUTE},
    {"DELIVERED", SMPP_MESSAGE_STATE_DELIVERED},
    {"DELIVRED", SMPP_MESSAGE_STATE_DELIVERED},
    {"EXPIRD", SMPP_MESSAGE_STATE_EXPIRED},
    {"DELETD", SMPP_MESSAGE_STATE_DELETED},
    {"UNDELIVERABLE", SMPP_MESSAGE_STATE_UNDELIVERABLE},
    {"UNDELIVERED", SMPP_MESSAGE_STATE_UNDELIVERABLE},
    {"UNDELIVRD", SMPP_MESSAGE_STATE_UNDELIVERABLE},
    {"ACCEPTED", SMPP_MESSAGE_STATE_ACCEPTED},
    {"REJECTED", SMPP_MESSAGE_STATE_REJECTED},
};

/* Names for logs, indexed by enum smpp_message_state. */
static const char *const state_names[] = {
    [SMPP_MESSAGE_STATE_NONE] = "NONE",
    [SMPP_MESSAGE_STATE_ENROUTE] = "ENROUTE",
    [SMPP_MESSAGE_STATE_DELIVERED] = "DELIVERED",
    [SMPP_MESSAGE_STATE_EXPIRED] = "EXPIRED",
    [SMPP_MESSAGE_STATE_DELETED] = "DELETED",
    [SMPP_MESSAGE_STATE_UNDELIVERABLE] = "UNDELIVERABLE",
    [SMPP_MESSAGE_STATE_ACCEPTED] = "ACCEPTED",
    [SMPP_MESSAGE_STATE_UNKNOWN] = "UNKNOWN",
    [SMPP_MESSAGE_STATE_REJECTED] = "REJECTED",
};

static int
is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static uint8_t
to_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

/* Value of a hex digit, or -1. */
static int
hex_value(uint8_t c)
{
	if (is_digit(c))
		return c - '0';
	c = to_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * If a key of the table starts at text[at], returns the octets it spans up
 * to and including its ':' and sets *field; otherwise returns 0.
 */
static size_t
match_key(const uint8_t *text, size_t at, size_t end, unsigned int *field)
{
	size_t i, position;
	const char *key;

	for (i = 0; i < sizeof(receipt_keys) / sizeof(receipt_keys[0]); i++) {
		key = receipt_keys[i].key;
		position = at;
		for (; *key != '\0'; key++) {
			if (*key == ' ') {
				while (position < end &&
				       (text[position] == ' ' ||
					   text[position] == '_'))
					position++;
				continue;
			}
			if (position >= end ||
			    to_lower(text[position]) != (uint8_t)*key)
				break;
			position++;
		}
		if (*key != '\0')
			continue;
		while (position < end &&
		       (text[position] == ' ' || text[position] == '\t'))
			position++;
		if (position < end && text[position] == ':') {
			*field = receipt_keys[i].field;
			return position + 1 - at;
		}
	}
	return 0;
}

/* Copies a word into a NUL-terminated buffer, cutting what does not fit. */
static void
copy_word(char *out, size_t out_size, const uint8_t *word, size_t length)
{
	if (length >= out_size)
		length = out_size - 1;
	memcpy(out, word, length);
	out[length] = '\0';
}

/* Parses 1..n decimal digits into a uint32_t; -1 on anything else. */
static int
parse_decimal(const uint8_t *word, size_t length, uint32_t *value)
{
	uint64_t result = 0;
	size_t i;

	if (length == 0)
		return -1;
	for (i = 0; i < length; i++) {
		if (!is_digit(word[i]))
			return -1;
		result = result * 10 + (uint64_t)(word[i] - '0');
		if (result > UINT32_MAX)
			return -1;
	}
	*value = (uint32_t)result;
	return 0;
}

/* Parses hex digits, with an optional 0x, into a uint32_t; -1 otherwise. */
static int
parse_hex(const uint8_t *word, size_t length, uint32_t *value)
{
	uint64_t result = 0;
	size_t i;
	int digit;

	if (length > 2 && word[0] == '0' && to_lower(word[1]) == 'x') {
		word += 2;
		length -= 2;
	}
	if (length == 0)
		return -1;
	for (i = 0; i < length; i++) {
		if ((digit = hex_value(word[i])) < 0)
			return -1;
		result = result * 16 + (uint64_t)digit;
		if (result > UINT32_MAX)
			return -1;
	}
	*value = (uint32_t)result;
	return 0;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (month 1..12). */
static int64_t
days_from_civil(int64_t year, unsigned int month, unsigned int day)
{
	int64_t era, year_of_era, day_of_year, day_of_era;

	/* Count years from March so the leap day is the era's last. */
	year -= month <= 2;
	era = (year >= 0 ? year : year - 399) / 400;
	year_of_era = year - era * 400;
	day_of_year =
	    (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
	day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 +
		     day_of_year;
	return era * 146097 + day_of_era - 719468;
}

/* The Gregorian date of a day count from 1970-01-01. */
static void
civil_from_days(
    int64_t days, int64_t *year, unsigned int *month, unsigned int *day)
{
	int64_t era, day_of_era, year_of_era, day_of_year, month_index;

	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	day_of_era = days - era * 146097;
	year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 -
			  day_of_era / 146096) /
		      365;
	day_of_year = day_of_era -
		      (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	month_index = (5 * day_of_year + 2) / 153;
	*day = (unsigned int)(day_of_year - (153 * month_index + 2) / 5 + 1);
	*month = (unsigned int)(month_index < 10 ? month_index + 3
						 : month_index - 9);
	*year = year_of_era + era * 400 + (*month <= 2);
}

/* Two decimal digits as a number. */
static unsigned int
two_digits(const uint8_t *word)
{
	return (unsigned int)(word[0] - '0') * 10 +
	       (unsigned int)(word[1] - '0');
}

/*
 * Parses YYMMDDhhmm, YYMMDDhhmmss or YYYYMMDDhhmmss (two-digit years are
 * 20YY) into UTC epoch seconds; -1 if the form or any value is invalid.
 * Years outside 2000-2099 are refused so every valid time can be written
 * back in the two-digit form.
 */
static int
parse_date(const uint8_t *word, size_t length, int64_t *epoch)
{
	static const unsigned int month_days[] = {
	    31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned int month, day, hour, minute, second = 0;
	int64_t year;
	size_t i;

	if (length != 10 && length != 12 && length != 14)
		return -1;
	for (i = 0; i < length; i++)
		if (!is_digit(word[i]))
			return -1;
	if (length == 14) {
		year = two_digits(word) * 100 + two_digits(word + 2);
		word += 2;
	} else
		year = 2000 + two_digits(word);
	if (year < 2000 || year > 2099)
		return -1;
	month = two_digits(word + 2);
	day = two_digits(word + 4);
	hour = two_digits(word + 6);
	minute = two_digits(word + 8);
	if (length >= 12)
		second = two_digits(word + 10);
	if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] ||
	    hour > 23 || minute > 59 || second > 59)
		return -1;
	if (month == 2 && day == 29 &&
	    !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return -1;
	*epoch = days_from_civil(year, month, day) * 86400 + hour * 3600 +
		 minute * 60 + second;
	return 0;
}

/*
 * Stores the value of one field other than text, setting its bit only if
 * the value is valid (raw words are kept either way). -1 on a bad id.
 */
static int
store_field(struct smpp_receipt *receipt, unsigned int field,
    const uint8_t *value, size_t length)
{
	switch (field) {
	case SMPP_RECEIPT_ID:
		if (length == 0 || length > ID_MAX_LENGTH)
			return -1;
		copy_word(receipt->id, sizeof(receipt->id), value, length);
		receipt->fields |= SMPP_RECEIPT_ID;
		break;
	case SMPP_RECEIPT_SUBMITTED:
		if (parse_decimal(value, length, &receipt->submitted) == 0)
			receipt->fields |= SMPP_RECEIPT_SUBMITTED;
		break;
	case SMPP_RECEIPT_DELIVERED:
		if (parse_decimal(value, length, &receipt->delivered) == 0)
			receipt->fields |= SMPP_RECEIPT_DELIVERED;
		break;
	case SMPP_RECEIPT_SUBMIT_TIME:
		copy_word(receipt->submit_date, sizeof(receipt->submit_date),
		    value, length);
		receipt->fields |= SMPP_RECEIPT_SUBMIT_DATE;
		if (parse_date(value, length, &receipt->submit_time) == 0)
			receipt->fields |= SMPP_RECEIPT_SUBMIT_TIME;
		break;
	case SMPP_RECEIPT_DONE_TIME:
		copy_word(receipt->done_date, sizeof(receipt->done_date), value,
		    length);
		receipt->fields |= SMPP_RECEIPT_DONE_DATE;
		if (parse_date(value, length, &receipt->done_time) == 0)
			receipt->fields |= SMPP_RECEIPT_DONE_TIME;
		break;
	case SMPP_RECEIPT_STAT:
		if (length == 0)
			break;
		copy_word(receipt->stat, sizeof(receipt->stat), value, length);
		receipt->state =
		    smpp_receipt_state_from_stat((const char *)value, length);
		if (receipt->state == SMPP_MESSAGE_STATE_NONE)
			receipt->state = SMPP_MESSAGE_STATE_UNKNOWN;
		receipt->fields |= SMPP_RECEIPT_STAT;
		break;
	case SMPP_RECEIPT_ERROR_CODE:
		copy_word(receipt->err, sizeof(receipt->err), value, length);
		receipt->fields |= SMPP_RECEIPT_ERR;
		/* Appendix B says digits; a few SMSCs send hex. */
		if (parse_decimal(value, length, &receipt->error_code) == 0 ||
		    parse_hex(value, length, &receipt->error_code) == 0)
			receipt->fields |= SMPP_RECEIPT_ERROR_CODE;
		break;
	}
	return 0;
}

/*
 * Where the text field starting at start ends. Appendix B puts text last,
 * so once stat has been seen text runs to the end even if it holds "stat:"
 * or colons. If text comes before stat the SMSC reordered the fields; then
 * text ends before the next key that has no valid value yet.
 */
static size_t
text_end(const uint8_t *text, size_t start, size_t end, unsigned int parsed)
{
	unsigned int field;
	size_t position, stop;

	if (parsed & SMPP_RECEIPT_STAT)
		return end;
	for (position = start + 1; position < end; position++) {
		if (!is_space(text[position - 1]) || is_space(text[position]))
			continue;
		if (match_key(text, position, end, &field) == 0 ||
		    field == SMPP_RECEIPT_TEXT || (parsed & field))
			continue;
		stop = position;
		while (stop > start && is_space(text[stop - 1]))
			stop--;
		return stop;
	}
	return end;
}

int
smpp_receipt_parse(
    const uint8_t *text, size_t length, struct smpp_receipt *receipt)
{
	unsigned int field, ignored;
	size_t position = 0, end, key_length, value_start;
	const uint8_t *nul;

	memset(receipt, 0, sizeof(*receipt));
	nul = memchr(text, '\0', length);
	end = nul != NULL ? (size_t)(nul - text) : length;

	while (position < end) {
		while (position < end && is_space(text[position]))
			position++;
		if (position >= end)
			break;
		key_length = match_key(text, position, end, &field);
		if (key_length == 0 || (receipt->fields & field)) {
			/* An unknown word or a repeated key: skip it. */
			while (position < end && !is_space(text[position]))
				position++;
			continue;
		}
		position += key_length;
		if (field == SMPP_RECEIPT_TEXT) {
			value_start = position;
			position =
			    text_end(text, position, end, receipt->fields);
			receipt->text = text + value_start;
			receipt->text_length = position - value_start;
			receipt->fields |= SMPP_RECEIPT_TEXT;
			continue;
		}
		/* "id: 123" has an extra space; "sub: dlvrd:1" an empty sub. */
		value_start = position;
		while (value_start < end &&
		       (text[value_start] == ' ' || text[value_start] == '\t'))
			value_start++;
		if (value_start < end &&
		    match_key(text, value_start, end, &ignored) == 0)
			position = value_start;
		value_start = position;
		while (position < end && !is_space(text[position]))
			position++;
		if (store_field(receipt, field, text + value_start,
			position - value_start) == -1)
			return -1;
	}
	return (receipt->fields & SMPP_RECEIPT_ID) ? 0 : -1;
}

/* Bounded append for smpp_receipt_format(); sets *failed when out is short. */
static void
append(char *out, size_t out_size, size_t *used, int *failed, const char *data,
    size_t length)
{
	if (*failed || *used + length >= out_size) {
		*failed = 1;
		return;
	}
	memcpy(out + *used, data, length);
	*used += length;
	out[*used] = '\0';
}

/* 2000-01-01 and 2100-01-01 UTC: the years that two digits can name. */
#define FIRST_TWO_DIGIT_YEAR  INT64_C(946684800)
#define AFTER_TWO_DIGIT_YEARS INT64_C(4102444800)

/*
 * Appends " key:YYMMDDhhmm" for an epoch time. A time outside 2000-2099
 * is left out: a wrong date would be worse than none.
 */
static void
append_date(char *out, size_t out_size, size_t *used, int *failed,
    const char *key, int64_t epoch)
{
	char date[32];
	int64_t days, seconds, year;
	unsigned int month, day;
	int length;

	if (epoch < FIRST_TWO_DIGIT_YEAR || epoch >= AFTER_TWO_DIGIT_YEARS)
		return;
	days = epoch / 86400;
	seconds = epoch % 86400;
	civil_from_days(days, &year, &month, &day);
	length = snprintf(date, sizeof(date), " %s:%02u%02u%02u%02u%02u", key,
	    (unsigned int)(year % 100), month, day,
	    (unsigned int)(seconds / 3600), (unsigned int)(seconds / 60 % 60));
	append(out, out_size, used, failed, date, (size_t)length);
}

int
smpp_receipt_format(
    const struct smpp_receipt *receipt, char *out, size_t out_size)
{
	char number[32];
	size_t used = 0, text_length;
	int failed = 0, length;

	if (!(receipt->fields & SMPP_RECEIPT_ID) || out_size == 0)
		return -1;
	out[0] = '\0';
	append(out, out_size, &used, &failed, "id:", 3);
	append(out, out_size, &used, &failed, receipt->id,
	    strnlen(receipt->id, sizeof(receipt->id)));
	if (receipt->fields & SMPP_RECEIPT_SUBMITTED) {
		length = snprintf(number, sizeof(number), " sub:%03u",
		    (unsigned int)receipt->submitted);
		append(out, out_size, &used, &failed, number, (size_t)length);
	}
	if (receipt->fields & SMPP_RECEIPT_DELIVERED) {
		length = snprintf(number, sizeof(number), " dlvrd:%03u",
		    (unsigned int)receipt->delivered);
		append(out, out_size, &used, &failed, number, (size_t)length);
	}
	if (receipt->fields & SMPP_RECEIPT_SUBMIT_TIME)
		append_date(out, out_size, &used, &failed, "submit date",
		    receipt->submit_time);
	if (receipt->fields & SMPP_RECEIPT_DONE_TIME)
		append_date(out, out_size, &used, &failed, "done date",
		    receipt->done_time);
	if (receipt->fields & SMPP_RECEIPT_STAT) {
		append(out, out_size, &used, &failed, " stat:", 6);
		append(out, out_size, &used, &failed,
		    smpp_receipt_stat_word(receipt->state), 7);
	}
	if (receipt->fields & SMPP_RECEIPT_ERROR_CODE) {
		length = snprintf(number, sizeof(number), " err:%03u",
		    (unsigned int)receipt->error_code);
		append(out, out_size, &used, &failed, number, (size_t)length);
	}
	if (receipt->fields & SMPP_RECEIPT_TEXT) {
		append(out, out_size, &used, &failed, " text:", 6);
		text_length = receipt->text_length;
		if (text_length > SMPP_RECEIPT_TEXT_LENGTH)
			text_length = SMPP_RECEIPT_TEXT_LENGTH;
		if (text_length > 0)
			append(out, out_size, &used, &failed,
			    (const char *)receipt->text, text_length);
	}
	if (failed) {
		out[0] = '\0';
		return -1;
	}
	return (int)used;
}

enum smpp_message_state
smpp_receipt_state_from_stat(const char *word, size_t length)
{
	size_t i, j;

	for (i = 0; i < sizeof(stat_words) / sizeof(stat_words[0]); i++) {
		if (strlen(stat_words[i].word) != length)
			continue;
		for (j = 0; j < length; j++)
			if (to_lower((uint8_t)word[j]) !=
			    to_lower((uint8_t)stat_words[i].word[j]))
				break;
		if (j == length)
			return stat_words[i].state;
	}
	return SMPP_MESSAGE_STATE_NONE;
}

const char *
smpp_receipt_stat_word(enum smpp_message_state state)
{
	size_t i;

	/* The first entry for a state is its Appendix B spelling. */
	for (i = 0; i < sizeof(stat_words) / sizeof(stat_words[0]); i++)
		if (stat_words[i].state == state)
			return stat_words[i].word;
	return "UNKNOWN";
}

const char *
smpp_receipt_state_name(enum smpp_message_state state)
{
	if ((unsigned int)state >= sizeof(state_names) / sizeof(state_names[0]))
		return "INVALID";
	return state_names[state];
}

/*
 * Decimal digits to lowercase hex without leading zeros. 64 decimal digits
 * are below 2^213, so 64 nibbles always hold the value.
 */
static size_t
decimal_to_hex(const char *digits, size_t length, char *out)
{
	static const char hex_digits[] = "0123456789abcdef";
	uint8_t nibbles[ID_MAX_LENGTH]; /* least significant first */
	size_t used = 0, i, j, written = 0;
	unsigned int carry;

	for (i = 0; i < length; i++) {
		carry = (unsigned int)(digits[i] - '0');
		for (j = 0; j < used; j++) {
			carry += nibbles[j] * 10u;
			nibbles[j] = (uint8_t)(carry & 0x0f);
			carry >>= 4;
		}
		while (carry != 0) {
			nibbles[used++] = (uint8_t)(carry & 0x0f);
			carry >>= 4;
		}
	}
	if (used == 0)
		out[written++] = '0';
	while (used > 0)
		out[written++] = hex_digits[nibbles[--used]];
	out[written] = '\0';
	return written;
}

int
smpp_receipt_normalize_id(const char *id, size_t length, enum smpp_id_base base,
    char *out, size_t out_size)
{
	size_t i, first, written;
	int all_decimal = 1;

	if (length == 0 || length > ID_MAX_LENGTH)
		return -1;
	for (i = 0; i < length; i++) {
		if (!is_digit((uint8_t)id[i]))
			all_decimal = 0;
	}
	/* Every form below is at most as long as the id itself. */
	if (out_size < length + 1)
		return -1;
	if (base == SMPP_ID_BASE_DECIMAL && all_decimal)
		return (int)decimal_to_hex(id, length, out);
	/* Hex, and opaque ids alike: lowercase, leading zeros dropped. */
	for (first = 0; first + 1 < length && id[first] == '0'; first++)
		;
	written = 0;
	for (i = first; i < length; i++)
		out[written++] = (char)to_lower((uint8_t)id[i]);
	out[written] = '\0';
	return (int)written;
}
