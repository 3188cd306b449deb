/*
 * template.c - the SMS template engine: Django/Klaviyo-style texts such as
 * "Hi {{ first_name|title|default:'there' }}, your cart: {{ event.URL }}".
 *
 * template_compile() parses a template once, when a rule file loads, into a
 * compact program (literal chunks and variables: a path and a chain of
 * filters) held in one allocation. template_render() runs on the flow
 * engine's hot path: it looks values up in a jansson context, writes into
 * the caller's buffer and allocates nothing.
 *
 * The contract marketers write against:
 *
 *  Paths. `person.X`, `event.X`, `organization.X` and `journey.X` look in
 *  the context object of that name; dotted paths go deeper and a number
 *  indexes an array (`event.Items.0.Name`). `person.X` falls back to
 *  person.properties.X (custom properties). A bare name (`first_name`,
 *  `loyalty_tier`) looks in person, then person.properties, then the top
 *  level of the context.
 *
 *  Values. Strings as they are; numbers without trailing zeros (12.5, 3,
 *  1e6 -> 1000000; beyond 1e21 in exponent form); booleans "true" and
 *  "false"; null, missing values, objects and arrays render as nothing.
 *  Malformed UTF-8 in a value becomes U+FFFD.
 *
 *  Filters, applied left to right:
 *   default:'x'   x when the value renders as nothing (missing, null, "");
 *                 0 and false are values.
 *   title         each word capitalised, the rest lowercased, as Django:
 *                 "o'neil" -> "O'Neil", "they're" -> "They're", "1st".
 *   upper, lower  Unicode simple case mapping for Latin (Extended-A/B,
 *                 Vietnamese), Greek (final sigma when lowercasing),
 *                 Cyrillic, Armenian and full-width forms; upper ß is SS.
 *   capfirst      the first character upper case, the rest untouched.
 *   truncate:N    at most N characters, the "…" counted in N when cut
 *                 (Django's truncatechars); a character is what a reader
 *                 sees: combining marks, variation selectors, skin tones,
 *                 ZWJ sequences and flag pairs stay with their base.
 *   money[:'€']   a number or numeric string with 2 decimals, rounded half
 *                 away from zero on its shortest decimal form: "12.50".
 *                 An argument of three capital letters is a code put after
 *                 a space ("12.50 EUR"); any other is a symbol put before
 *                 ("€12.50", "-€3.00"). Anything else passes unchanged.
 *   date[:'%d/%m'] an ISO 8601 string (a date, or date and time with
 *                 optional fraction and Z / +hh:mm / +hhmm / +hh offset) or
 *                 epoch seconds (number or numeric string), shown in UTC
 *                 (per-recipient zones from person.timezone come later).
 *                 Conversions %Y %y %m %d %e %j %H %I %M %S %p %a %A %b %B
 *                 %F %T %%, English names; "-" drops the padding (%-d).
 *                 Default "%Y-%m-%d"; a value that is no date gives "".
 *   urlencode[:'safe'] percent-encodes the UTF-8 bytes but A-Z a-z 0-9
 *                 - . _ ~ and the safe characters ("/" unless given).
 *
 *  Syntax. Whitespace inside {{ }} and around | and : is forgiven.
 *  Arguments are 'single' or "double" quoted (a backslash escapes the quote
 *  and itself) or bare numbers. {% tags %} are refused (no loops or
 *  conditions); {# #} and a lone }} are plain text; "{{" cannot be written
 *  as text.
 *
 *  Output is UTF-8 and NUL-terminated; it is never cut: a buffer too small
 *  is TEMPLATE_ERR_SPACE.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nudged.h"
#include "smpp.h"

#define PATH_SEGMENTS_MAX   16
#define TRUNCATE_MAX        100000
#define UNICODE_ELLIPSIS    0x2026
#define UNICODE_ZWJ         0x200D
#define DEFAULT_DATE_FORMAT "%Y-%m-%d"
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define EPOCH_MIN (-62135596800LL)
#define EPOCH_MAX 253402300799LL

enum node_kind {
	NODE_LITERAL,
	NODE_VARIABLE,
};

/* Where a path starts looking. */
enum path_root {
	ROOT_BARE,
	ROOT_PERSON,
	ROOT_EVENT,
	ROOT_ORGANIZATION,
	ROOT_JOURNEY,
	ROOT_COUNT,
};

static const char *const root_names[] = {
    [ROOT_BARE] = NULL,
    [ROOT_PERSON] = "person",
    [ROOT_EVENT] = "event",
    [ROOT_ORGANIZATION] = "organization",
    [ROOT_JOURNEY] = "journey",
};

struct template_node {
	uint8_t kind;
	uint8_t root;
	uint8_t segment_count; /* path names after the root */
	uint8_t filter_count;
	uint32_t text;   /* in strings: the literal or the first name */
	uint32_t length; /* literal bytes */
	uint32_t first_filter;
};

struct template_filter_call {
	uint8_t filter; /* index in filter_table */
	uint8_t has_argument;
	uint32_t argument; /* in strings, NUL-terminated */
	uint32_t argument_length;
	uint32_t number; /* truncate's N */
};

/* One allocation: this header, then nodes, filters and strings. */
struct template
{
	struct template_node *nodes;
	struct template_filter_call *filters;
	char *strings;
	size_t node_count;
	size_t filter_count;
	size_t strings_length;
};

/* ---- output into bounded buffers ---------------------------------------- */

struct sink {
	char *data;
	size_t capacity; /* bytes, the terminating NUL excluded */
	size_t length;
	int full;
};

static void
sink_init(struct sink *sink, char *data, size_t size)
{
	sink->data = data;
	sink->capacity = size - 1;
	sink->length = 0;
	sink->full = 0;
}

static void
sink_put_bytes(struct sink *sink, const char *bytes, size_t length)
{
	if (sink->full || length > sink->capacity - sink->length) {
		sink->full = 1;
		return;
	}
	memcpy(sink->data + sink->length, bytes, length);
	sink->length += length;
}

static void
sink_put_byte(struct sink *sink, char byte)
{
	sink_put_bytes(sink, &byte, 1);
}

static void
sink_put_string(struct sink *sink, const char *string)
{
	sink_put_bytes(sink, string, strlen(string));
}

static void
sink_put_codepoint(struct sink *sink, uint32_t codepoint)
{
	char bytes[4];

	if (codepoint < 0x80) {
		sink_put_byte(sink, (char)codepoint);
	} else if (codepoint < 0x800) {
		bytes[0] = (char)(0xC0 | (codepoint >> 6));
		bytes[1] = (char)(0x80 | (codepoint & 0x3F));
		sink_put_bytes(sink, bytes, 2);
	} else if (codepoint < 0x10000) {
		bytes[0] = (char)(0xE0 | (codepoint >> 12));
		bytes[1] = (char)(0x80 | ((codepoint >> 6) & 0x3F));
		bytes[2] = (char)(0x80 | (codepoint & 0x3F));
		sink_put_bytes(sink, bytes, 3);
	} else {
		bytes[0] = (char)(0xF0 | (codepoint >> 18));
		bytes[1] = (char)(0x80 | ((codepoint >> 12) & 0x3F));
		bytes[2] = (char)(0x80 | ((codepoint >> 6) & 0x3F));
		bytes[3] = (char)(0x80 | (codepoint & 0x3F));
		sink_put_bytes(sink, bytes, 4);
	}
}

/* Copies text, each malformed UTF-8 byte replaced by U+FFFD. */
static void
sink_put_text(struct sink *sink, const char *text, size_t length)
{
	size_t position = 0, span = 0, start;
	uint32_t codepoint;

	while (position < length) {
		if ((unsigned char)text[position] < 0x80) {
			position++;
			continue;
		}
		start = position;
		if (smpp_charset_utf8_next(
			text, length, &position, &codepoint) == SMPP_CHARSET_OK)
			continue;
		sink_put_bytes(sink, text + span, start - span);
		sink_put_codepoint(sink, SMPP_UNICODE_REPLACEMENT);
		position = span = start + 1;
	}
	sink_put_bytes(sink, text + span, length - span);
}

static void
sink_finish(struct sink *sink)
{
	sink->data[sink->length] = '\0';
}

/* The code point at *position, advancing; U+FFFD for a malformed byte. */
static uint32_t
next_codepoint(const char *text, size_t length, size_t *position)
{
	uint32_t codepoint;

	if ((unsigned char)text[*position] < 0x80)
		return (unsigned char)text[(*position)++];
	if (smpp_charset_utf8_next(text, length, position, &codepoint) !=
	    SMPP_CHARSET_OK) {
		(*position)++;
		return SMPP_UNICODE_REPLACEMENT;
	}
	return codepoint;
}

/* ---- case tables -------------------------------------------------------- */

/*
 * Upper-case letters and their lower case: every code point of
 * [upper_first, upper_last] (step 1) or every other one starting at
 * upper_first (step 2, the lower case right after each) maps to itself
 * plus delta. From the Unicode simple case mappings.
 */
struct case_range {
	uint32_t upper_first;
	uint32_t upper_last;
	int32_t delta;
	uint8_t step;
};

static const struct case_range case_ranges[] = {
    {0x0041, 0x005A, 32, 1},                         /* Basic Latin */
    {0x00C0, 0x00D6, 32, 1},                         /* Latin-1 */
    {0x00D8, 0x00DE, 32, 1}, {0x0100, 0x012F, 1, 2}, /* Latin Extended-A */
    {0x0132, 0x0137, 1, 2}, {0x0139, 0x0148, 1, 2}, {0x014A, 0x0177, 1, 2},
    {0x0178, 0x0178, -121, 1},                        /* Ÿ ÿ */
    {0x0179, 0x017E, 1, 2}, {0x0181, 0x0181, 210, 1}, /* Latin Extended-B */
    {0x0182, 0x0185, 1, 2}, {0x0186, 0x0186, 206, 1}, {0x0187, 0x0188, 1, 2},
    {0x0189, 0x018A, 205, 1}, {0x018B, 0x018C, 1, 2}, {0x018E, 0x018E, 79, 1},
    {0x018F, 0x018F, 202, 1}, /* Ə ə (Azerbaijani) */
    {0x0190, 0x0190, 203, 1}, {0x0191, 0x0192, 1, 2}, {0x0193, 0x0193, 205, 1},
    {0x0194, 0x0194, 207, 1}, {0x0196, 0x0196, 211, 1},
    {0x0197, 0x0197, 209, 1}, {0x0198, 0x0199, 1, 2}, {0x019C, 0x019C, 211, 1},
    {0x019D, 0x019D, 213, 1}, {0x019F, 0x019F, 214, 1}, {0x01A0, 0x01A5, 1, 2},
    {0x01A7, 0x01A8, 1, 2}, {0x01A9, 0x01A9, 218, 1}, {0x01AC, 0x01AD, 1, 2},
    {0x01AE, 0x01AE, 218, 1}, {0x01AF, 0x01B0, 1, 2}, {0x01B1, 0x01B2, 217, 1},
    {0x01B3, 0x01B6, 1, 2}, {0x01B7, 0x01B7, 219, 1}, {0x01B8, 0x01B9, 1, 2},
    {0x01BC, 0x01BD, 1, 2}, {0x01CD, 0x01DC, 1, 2}, {0x01DE, 0x01EF, 1, 2},
    {0x01F4, 0x01F5, 1, 2},
    {0x01F8, 0x021F, 1, 2}, /* Romanian Ș ș Ț ț among them */
    {0x0222, 0x0233, 1, 2}, {0x0246, 0x024F, 1, 2},
    {0x0386, 0x0386, 38, 1}, /* Greek */
    {0x0388, 0x038A, 37, 1}, {0x038C, 0x038C, 64, 1}, {0x038E, 0x038F, 63, 1},
    {0x0391, 0x03A1, 32, 1}, {0x03A3, 0x03AB, 32, 1}, {0x03D8, 0x03EF, 1, 2},
    {0x0400, 0x040F, 80, 1}, /* Cyrillic */
    {0x0410, 0x042F, 32, 1}, {0x0460, 0x0481, 1, 2}, {0x048A, 0x04BF, 1, 2},
    {0x04C0, 0x04C0, 15, 1}, {0x04C1, 0x04CE, 1, 2}, {0x04D0, 0x052F, 1, 2},
    {0x0531, 0x0556, 48, 1}, /* Armenian */
    {0x1E00, 0x1E95, 1, 2},  /* Latin Extended Additional */
    {0x1EA0, 0x1EFF, 1, 2},  /* Vietnamese */
    {0xA640, 0xA66D, 1, 2},  /* Cyrillic Extended-B */
    {0xFF21, 0xFF3A, 32, 1}, /* full-width */
};

/* Mappings with no way back: the other direction is another letter. */
struct case_single {
	uint32_t from;
	uint32_t to;
};

static const struct case_single upper_singles[] = {
    {0x00B5, 0x039C}, /* micro sign -> Μ */
    {0x0131, 0x0049}, /* dotless ı -> I */
    {0x017F, 0x0053}, /* long s -> S */
    {0x03C2, 0x03A3}, /* final ς -> Σ */
};

static const struct case_single lower_singles[] = {
    {0x0130, 0x0069}, /* İ -> i */
    {0x1E9E, 0x00DF}, /* ẞ -> ß */
};

/* Lower-case letters that have no simple upper case. */
static int
is_lonely_lowercase(uint32_t codepoint)
{
	return codepoint == 0x00DF || codepoint == 0x0138 ||
	       codepoint == 0x0149 || codepoint == 0x0390 ||
	       codepoint == 0x03B0;
}

/* DŽ Dž dž, LJ Lj lj, NJ Nj nj, DZ Dz dz: 0 upper, 1 title, 2 lower. */
static int
digraph_form(uint32_t codepoint, uint32_t *base)
{
	if (codepoint >= 0x01C4 && codepoint <= 0x01CC) {
		*base = 0x01C4 + (codepoint - 0x01C4) / 3 * 3;
		return (int)(codepoint - *base);
	}
	if (codepoint >= 0x01F1 && codepoint <= 0x01F3) {
		*base = 0x01F1;
		return (int)(codepoint - *base);
	}
	return -1;
}

static uint32_t
to_lower(uint32_t codepoint)
{
	const struct case_range *range;
	uint32_t base;
	size_t i;

	if (codepoint < 0x80)
		return codepoint >= 'A' && codepoint <= 'Z' ? codepoint + 32
							    : codepoint;
	for (i = 0; i < sizeof(case_ranges) / sizeof(case_ranges[0]); i++) {
		range = &case_ranges[i];
		if (codepoint >= range->upper_first &&
		    codepoint <= range->upper_last &&
		    (range->step == 1 ||
			(codepoint - range->upper_first) % 2 == 0))
			return (uint32_t)((int32_t)codepoint + range->delta);
	}
	for (i = 0; i < sizeof(lower_singles) / sizeof(lower_singles[0]); i++)
		if (lower_singles[i].from == codepoint)
			return lower_singles[i].to;
	if (digraph_form(codepoint, &base) >= 0)
		return base + 2;
	return codepoint;
}

static uint32_t
to_upper(uint32_t codepoint)
{
	const struct case_range *range;
	uint32_t base, lower_first, lower_last;
	size_t i;

	if (codepoint < 0x80)
		return codepoint >= 'a' && codepoint <= 'z' ? codepoint - 32
							    : codepoint;
	for (i = 0; i < sizeof(case_ranges) / sizeof(case_ranges[0]); i++) {
		range = &case_ranges[i];
		lower_first =
		    (uint32_t)((int32_t)range->upper_first + range->delta);
		lower_last =
		    (uint32_t)((int32_t)range->upper_last + range->delta);
		if (codepoint >= lower_first && codepoint <= lower_last &&
		    (range->step == 1 || (codepoint - lower_first) % 2 == 0))
			return (uint32_t)((int32_t)codepoint - range->delta);
	}
	for (i = 0; i < sizeof(upper_singles) / sizeof(upper_singles[0]); i++)
		if (upper_singles[i].from == codepoint)
			return upper_singles[i].to;
	if (digraph_form(codepoint, &base) >= 0)
		return base;
	return codepoint;
}

/* The form that starts a capitalised word (Dž for the digraphs). */
static uint32_t
to_title(uint32_t codepoint)
{
	uint32_t base;

	if (digraph_form(codepoint, &base) >= 0)
		return base + 1;
	return to_upper(codepoint);
}

static int
is_cased(uint32_t codepoint)
{
	return to_upper(codepoint) != codepoint ||
	       to_lower(codepoint) != codepoint ||
	       is_lonely_lowercase(codepoint);
}

static int
is_lowercase(uint32_t codepoint)
{
	uint32_t base;

	if (digraph_form(codepoint, &base) >= 0)
		return codepoint == base + 2;
	return to_upper(codepoint) != codepoint ||
	       is_lonely_lowercase(codepoint);
}

/* Marks that belong to the character before them: never counted alone. */
static int
is_extending(uint32_t codepoint)
{
	return (codepoint >= 0x0300 && codepoint <= 0x036F) ||
	       (codepoint >= 0x0483 && codepoint <= 0x0489) ||
	       (codepoint >= 0x1AB0 && codepoint <= 0x1AFF) ||
	       (codepoint >= 0x1DC0 && codepoint <= 0x1DFF) ||
	       codepoint == UNICODE_ZWJ ||
	       (codepoint >= 0x20D0 && codepoint <= 0x20FF) ||
	       (codepoint >= 0xFE00 && codepoint <= 0xFE0F) ||
	       (codepoint >= 0xFE20 && codepoint <= 0xFE2F) ||
	       (codepoint >= 0x1F3FB && codepoint <= 0x1F3FF) ||
	       (codepoint >= 0xE0020 && codepoint <= 0xE007F) ||
	       (codepoint >= 0xE0100 && codepoint <= 0xE01EF);
}

static int
is_regional_indicator(uint32_t codepoint)
{
	return codepoint >= 0x1F1E6 && codepoint <= 0x1F1FF;
}

/* Lower case of a letter; Σ becomes ς at the end of a word. */
static uint32_t
lower_letter(uint32_t codepoint, int previous_cased, const char *text,
    size_t length, size_t position)
{
	uint32_t next;

	if (codepoint != 0x03A3)
		return to_lower(codepoint);
	if (!previous_cased)
		return 0x03C3;
	while (position < length) {
		next = next_codepoint(text, length, &position);
		if (!is_extending(next))
			return is_cased(next) ? 0x03C3 : 0x03C2;
	}
	return 0x03C2;
}

/* ---- values while filters run ------------------------------------------- */

enum value_kind {
	VALUE_MISSING,
	VALUE_JSON,
	VALUE_TEXT,
};

struct value {
	enum value_kind kind;
	const json_t *json;
	const char *text;
	size_t length;
};

/*
 * A filter reads its input from one buffer (or the context, or the template)
 * and writes into the other, so a chain needs two; nothing is allocated.
 */
struct render_scratch {
	char buffer[2][TEMPLATE_VALUE_MAX];
	int free_buffer;
	char number[64];
};

/* A decimal number: 0.digits times 10^point, no zeros at either end. */
struct decimal {
	char digits[24];
	int count;
	int point;
	int negative;
};

static void
decimal_from_integer(json_int_t integer, struct decimal *decimal)
{
	char buffer[32];
	const char *digits = buffer;
	int length;

	length =
	    snprintf(buffer, sizeof(buffer), "%" JSON_INTEGER_FORMAT, integer);
	decimal->negative = buffer[0] == '-';
	if (decimal->negative) {
		digits++;
		length--;
	}
	decimal->point = length;
	while (length > 0 && digits[length - 1] == '0')
		length--;
	if (digits[0] == '0')
		length = 0;
	memcpy(decimal->digits, digits, (size_t)length);
	decimal->count = length;
}

/* The shortest digits that read back as the same double. */
static void
decimal_from_double(double number, struct decimal *decimal)
{
	char buffer[40], *p;
	int precision, exponent;

	decimal->negative = signbit(number) != 0;
	decimal->count = 0;
	decimal->point = 1;
	if (number == 0 || !isfinite(number))
		return;
	for (precision = 1; precision <= 17; precision++) {
		snprintf(buffer, sizeof(buffer), "%.*e", precision - 1,
		    fabs(number));
		if (strtod(buffer, NULL) == fabs(number))
			break;
	}
	for (p = buffer; *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			decimal->digits[decimal->count++] = *p;
	exponent = atoi(p + 1);
	decimal->point = exponent + 1;
	while (decimal->count > 0 && decimal->digits[decimal->count - 1] == '0')
		decimal->count--;
}

/* Writes a decimal as JSON-ish text: 12.5, 1000000, 0.001, 1.5e+21. */
static void
decimal_format(const struct decimal *decimal, char *out, size_t size)
{
	struct sink sink;
	int exponent = decimal->point - 1, i;

	sink_init(&sink, out, size);
	if (decimal->count == 0) {
		sink_put_byte(&sink, '0');
		sink_finish(&sink);
		return;
	}
	if (decimal->negative)
		sink_put_byte(&sink, '-');
	if (exponent < -7 || exponent >= 21) {
		sink_put_byte(&sink, decimal->digits[0]);
		if (decimal->count > 1) {
			sink_put_byte(&sink, '.');
			sink_put_bytes(&sink, decimal->digits + 1,
			    (size_t)decimal->count - 1);
		}
		snprintf(
		    out + sink.length, size - sink.length, "e%+d", exponent);
		return;
	}
	if (decimal->point <= 0) {
		sink_put_string(&sink, "0.");
		for (i = decimal->point; i < 0; i++)
			sink_put_byte(&sink, '0');
		sink_put_bytes(&sink, decimal->digits, (size_t)decimal->count);
	} else if (decimal->point >= decimal->count) {
		sink_put_bytes(&sink, decimal->digits, (size_t)decimal->count);
		for (i = decimal->count; i < decimal->point; i++)
			sink_put_byte(&sink, '0');
	} else {
		sink_put_bytes(&sink, decimal->digits, (size_t)decimal->point);
		sink_put_byte(&sink, '.');
		sink_put_bytes(&sink, decimal->digits + decimal->point,
		    (size_t)(decimal->count - decimal->point));
	}
	sink_finish(&sink);
}

/* A whole numeric string ("12.5", " -3 ", "1e3") as a double. */
static int
parse_number_text(const char *text, size_t length, double *number)
{
	char buffer[64], *end;
	size_t i;

	while (length > 0 && text[0] == ' ') {
		text++;
		length--;
	}
	while (length > 0 && text[length - 1] == ' ')
		length--;
	if (length == 0 || length >= sizeof(buffer))
		return -1;
	for (i = 0; i < length; i++)
		if (!((text[i] >= '0' && text[i] <= '9') || text[i] == '.' ||
			text[i] == '+' || text[i] == '-' || text[i] == 'e' ||
			text[i] == 'E'))
			return -1;
	memcpy(buffer, text, length);
	buffer[length] = '\0';
	*number = strtod(buffer, &end);
	if (end != buffer + length || !isfinite(*number))
		return -1;
	return 0;
}

/* The text a value renders as. */
static void
value_text(const struct value *value, struct render_scratch *scratch,
    const char **text, size_t *length)
{
	struct decimal decimal;

	*text = "";
	*length = 0;
	if (value->kind == VALUE_TEXT) {
		*text = value->text;
		*length = value->length;
		return;
	}
	if (value->kind == VALUE_MISSING)
		return;
	switch (json_typeof(value->json)) {
	case JSON_STRING:
		*text = json_string_value(value->json);
		*length = json_string_length(value->json);
		break;
	case JSON_INTEGER:
		*length = (size_t)snprintf(scratch->number,
		    sizeof(scratch->number), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(value->json));
		*text = scratch->number;
		break;
	case JSON_REAL:
		decimal_from_double(json_real_value(value->json), &decimal);
		decimal_format(
		    &decimal, scratch->number, sizeof(scratch->number));
		*text = scratch->number;
		*length = strlen(scratch->number);
		break;
	case JSON_TRUE:
		*text = "true";
		*length = 4;
		break;
	case JSON_FALSE:
		*text = "false";
		*length = 5;
		break;
	default:
		break;
	}
}

/* A number value (JSON number or numeric text) as a decimal; -1 if none. */
static int
value_decimal(const struct value *value, struct render_scratch *scratch,
    struct decimal *decimal)
{
	const char *text;
	size_t length;
	double number;

	if (value->kind == VALUE_MISSING)
		return -1;
	if (value->kind == VALUE_JSON && json_is_integer(value->json)) {
		decimal_from_integer(json_integer_value(value->json), decimal);
		return 0;
	}
	if (value->kind == VALUE_JSON && json_is_real(value->json)) {
		decimal_from_double(json_real_value(value->json), decimal);
		return 0;
	}
	if (value->kind == VALUE_JSON && !json_is_string(value->json))
		return -1;
	value_text(value, scratch, &text, &length);
	if (parse_number_text(text, length, &number) != 0)
		return -1;
	decimal_from_double(number, decimal);
	return 0;
}

static void
scratch_sink(struct render_scratch *scratch, struct sink *sink)
{
	sink_init(
	    sink, scratch->buffer[scratch->free_buffer], TEMPLATE_VALUE_MAX);
}

/* Makes what a filter wrote the value; the other buffer is free next. */
static int
value_take_sink(
    struct value *value, struct render_scratch *scratch, struct sink *sink)
{
	if (sink->full)
		return TEMPLATE_ERR_VALUE;
	sink_finish(sink);
	value->kind = VALUE_TEXT;
	value->text = sink->data;
	value->length = sink->length;
	scratch->free_buffer ^= 1;
	return TEMPLATE_OK;
}

/* ---- dates -------------------------------------------------------------- */

struct civil_time {
	int64_t year;
	int month, day, hour, minute, second;
	int weekday;  /* 0 Sunday */
	int year_day; /* 1..366 */
};

static const char *const month_names[12] = {"January", "February", "March",
    "April", "May", "June", "July", "August", "September", "October",
    "November", "December"};
static const char *const weekday_names[7] = {"Sunday", "Monday", "Tuesday",
    "Wednesday", "Thursday", "Friday", "Saturday"};

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t year, int month, int day)
{
	int64_t era, year_of_era, day_of_year, day_of_era;

	year -= month <= 2;
	era = (year >= 0 ? year : year - 399) / 400;
	year_of_era = year - era * 400;
	day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 +
		     day_of_year;
	return era * 146097 + day_of_era - 719468;
}

/* The date of a day count since 1970-01-01 (inverse of the above). */
static void
civil_from_days(int64_t days, struct civil_time *civil)
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
	civil->day = (int)(day_of_year - (153 * month_index + 2) / 5 + 1);
	civil->month =
	    (int)(month_index < 10 ? month_index + 3 : month_index - 9);
	civil->year = year_of_era + era * 400 + (civil->month <= 2);
}

static int
is_leap_year(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int
days_in_month(int64_t year, int month)
{
	static const int days[12] = {
	    31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

static void
civil_from_epoch(int64_t epoch, struct civil_time *civil)
{
	int64_t days = epoch / 86400, seconds = epoch % 86400;

	if (seconds < 0) {
		seconds += 86400;
		days--;
	}
	civil_from_days(days, civil);
	civil->hour = (int)(seconds / 3600);
	civil->minute = (int)(seconds / 60 % 60);
	civil->second = (int)(seconds % 60);
	civil->weekday = (int)((days % 7 + 11) % 7);
	civil->year_day = (int)(days - days_from_civil(civil->year, 1, 1) + 1);
}

/* Reads exactly count digits; -1 if they are not there. */
static int
parse_digits(
    const char *text, size_t length, size_t *position, int count, int *number)
{
	int i;

	*number = 0;
	for (i = 0; i < count; i++, (*position)++) {
		if (*position >= length || text[*position] < '0' ||
		    text[*position] > '9')
			return -1;
		*number = *number * 10 + (text[*position] - '0');
	}
	return 0;
}

/* YYYY-MM-DD[(T| )hh:mm[:ss[.fff]][Z|±hh[[:]mm]]] to epoch seconds. */
static int
parse_iso8601(const char *text, size_t length, int64_t *epoch)
{
	size_t position = 0;
	int year, month, day, hour = 0, minute = 0, second = 0;
	int offset_hours, offset_minutes = 0, offset = 0, sign;

	if (parse_digits(text, length, &position, 4, &year) != 0 ||
	    position >= length || text[position++] != '-' ||
	    parse_digits(text, length, &position, 2, &month) != 0 ||
	    position >= length || text[position++] != '-' ||
	    parse_digits(text, length, &position, 2, &day) != 0)
		return -1;
	if (year < 1 || month < 1 || month > 12 || day < 1 ||
	    day > days_in_month(year, month))
		return -1;
	if (position < length) {
		if (text[position] != 'T' && text[position] != 't' &&
		    text[position] != ' ')
			return -1;
		position++;
		if (parse_digits(text, length, &position, 2, &hour) != 0 ||
		    position >= length || text[position++] != ':' ||
		    parse_digits(text, length, &position, 2, &minute) != 0)
			return -1;
		if (position < length && text[position] == ':') {
			position++;
			if (parse_digits(text, length, &position, 2, &second) !=
			    0)
				return -1;
			if (position < length &&
			    (text[position] == '.' || text[position] == ',')) {
				position++;
				if (position >= length ||
				    text[position] < '0' ||
				    text[position] > '9')
					return -1;
				while (position < length &&
				       text[position] >= '0' &&
				       text[position] <= '9')
					position++;
			}
		}
		if (hour > 23 || minute > 59 || second > 60)
			return -1;
		if (second == 60)
			second = 59; /* a leap second shows as :59 */
		if (position < length &&
		    (text[position] == 'Z' || text[position] == 'z')) {
			position++;
		} else if (position < length &&
			   (text[position] == '+' || text[position] == '-')) {
			sign = text[position++] == '-' ? -1 : 1;
			if (parse_digits(
				text, length, &position, 2, &offset_hours) != 0)
				return -1;
			if (position < length && text[position] == ':')
				position++;
			if (position < length &&
			    parse_digits(text, length, &position, 2,
				&offset_minutes) != 0)
				return -1;
			if (offset_hours > 23 || offset_minutes > 59)
				return -1;
			offset =
			    sign * (offset_hours * 3600 + offset_minutes * 60);
		}
	}
	if (position != length)
		return -1;
	*epoch = days_from_civil(year, month, day) * 86400 + hour * 3600 +
		 minute * 60 + second - offset;
	return 0;
}

/* A date value as epoch seconds: number, numeric text or ISO 8601 text. */
static int
value_epoch(
    const struct value *value, struct render_scratch *scratch, int64_t *epoch)
{
	const char *text;
	size_t length;
	double number;

	if (value->kind == VALUE_MISSING)
		return -1;
	if (value->kind == VALUE_JSON && json_is_integer(value->json)) {
		*epoch = json_integer_value(value->json);
		return *epoch >= EPOCH_MIN && *epoch <= EPOCH_MAX ? 0 : -1;
	}
	if (value->kind == VALUE_JSON && json_is_real(value->json))
		number = json_real_value(value->json);
	else if (value->kind == VALUE_JSON && !json_is_string(value->json))
		return -1;
	else {
		value_text(value, scratch, &text, &length);
		if (parse_number_text(text, length, &number) != 0)
			return parse_iso8601(text, length, epoch);
	}
	if (!(number >= (double)EPOCH_MIN && number <= (double)EPOCH_MAX))
		return -1;
	*epoch = (int64_t)floor(number);
	return 0;
}

static void
put_padded(struct sink *sink, int64_t number, int width, char pad)
{
	char buffer[24];
	int length, i;

	length = snprintf(buffer, sizeof(buffer), "%lld", (long long)number);
	for (i = length; pad != '\0' && i < width; i++)
		sink_put_byte(sink, pad);
	sink_put_bytes(sink, buffer, (size_t)length);
}

/* The conversions date knows; an unknown one is a compile error. */
static int
is_date_conversion(char conversion)
{
	return conversion != '\0' && strchr("YymdejHIMSpaAbBFT%", conversion);
}

static void
format_date(struct sink *sink, const char *format, const struct civil_time *t)
{
	char pad;

	for (; *format != '\0'; format++) {
		if (*format != '%') {
			sink_put_byte(sink, *format);
			continue;
		}
		format++;
		pad = '0';
		if (*format == '-') {
			pad = '\0';
			format++;
		}
		switch (*format) {
		case 'Y':
			put_padded(sink, t->year, 4, pad);
			break;
		case 'y':
			put_padded(sink, t->year % 100, 2, pad);
			break;
		case 'm':
			put_padded(sink, t->month, 2, pad);
			break;
		case 'd':
			put_padded(sink, t->day, 2, pad);
			break;
		case 'e':
			put_padded(sink, t->day, 2, pad == '0' ? ' ' : pad);
			break;
		case 'j':
			put_padded(sink, t->year_day, 3, pad);
			break;
		case 'H':
			put_padded(sink, t->hour, 2, pad);
			break;
		case 'I':
			put_padded(sink, (t->hour + 11) % 12 + 1, 2, pad);
			break;
		case 'M':
			put_padded(sink, t->minute, 2, pad);
			break;
		case 'S':
			put_padded(sink, t->second, 2, pad);
			break;
		case 'p':
			sink_put_string(sink, t->hour < 12 ? "AM" : "PM");
			break;
		case 'a':
			sink_put_bytes(sink, weekday_names[t->weekday], 3);
			break;
		case 'A':
			sink_put_string(sink, weekday_names[t->weekday]);
			break;
		case 'b':
			sink_put_bytes(sink, month_names[t->month - 1], 3);
			break;
		case 'B':
			sink_put_string(sink, month_names[t->month - 1]);
			break;
		case 'F':
			format_date(sink, "%Y-%m-%d", t);
			break;
		case 'T':
			format_date(sink, "%H:%M:%S", t);
			break;
		case '%':
			sink_put_byte(sink, '%');
			break;
		default:
			/* Refused at compile time. */
			return;
		}
	}
}

/* ---- filters ------------------------------------------------------------ */

typedef int (*filter_apply_fn)(const struct template_filter_call *call,
    const char *argument, struct value *value, struct render_scratch *scratch);

static int
filter_default(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	const char *text;
	size_t length;

	value_text(value, scratch, &text, &length);
	if (length == 0) {
		value->kind = VALUE_TEXT;
		value->text = argument;
		value->length = call->argument_length;
	}
	return TEMPLATE_OK;
}

enum case_mode {
	CASE_UPPER,
	CASE_LOWER,
	CASE_TITLE,
	CASE_FIRST,
};

/* upper, lower, title and capfirst: one walk over the code points. */
static int
convert_case(
    struct value *value, struct render_scratch *scratch, enum case_mode mode)
{
	const char *text;
	size_t length, position = 0;
	struct sink sink;
	uint32_t codepoint, converted;
	int in_word = 0, previous_lower = 0, previous_cased = 0;

	value_text(value, scratch, &text, &length);
	scratch_sink(scratch, &sink);
	while (position < length && !sink.full) {
		codepoint = next_codepoint(text, length, &position);
		if (mode == CASE_FIRST) {
			sink_put_codepoint(&sink, to_title(codepoint));
			sink_put_text(
			    &sink, text + position, length - position);
			break;
		}
		if (mode == CASE_UPPER) {
			if (codepoint == 0x00DF)
				sink_put_string(&sink, "SS");
			else
				sink_put_codepoint(&sink, to_upper(codepoint));
			continue;
		}
		if (is_extending(codepoint)) {
			/* A mark leaves the word as it was. */
			sink_put_codepoint(&sink, codepoint);
			continue;
		}
		if (mode == CASE_LOWER) {
			sink_put_codepoint(
			    &sink, lower_letter(codepoint, previous_cased, text,
				       length, position));
			previous_cased = is_cased(codepoint);
			continue;
		}
		if (is_cased(codepoint)) {
			converted =
			    in_word ? lower_letter(codepoint, previous_cased,
					  text, length, position)
				    : to_title(codepoint);
			previous_lower = is_lowercase(converted);
			previous_cased = 1;
			in_word = 1;
		} else {
			converted = codepoint;
			/* Django: "1st", "they're", but "O'Neil". */
			if (codepoint >= '0' && codepoint <= '9')
				in_word = 1;
			else if (codepoint == '\'' || codepoint == 0x2019)
				in_word = previous_lower;
			else
				in_word = 0;
			previous_lower = previous_cased = 0;
		}
		sink_put_codepoint(&sink, converted);
	}
	return value_take_sink(value, scratch, &sink);
}

static int
filter_upper(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	return convert_case(value, scratch, CASE_UPPER);
}

static int
filter_lower(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	return convert_case(value, scratch, CASE_LOWER);
}

static int
filter_title(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	return convert_case(value, scratch, CASE_TITLE);
}

static int
filter_capfirst(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	return convert_case(value, scratch, CASE_FIRST);
}

/* Django's truncatechars, counting what a reader sees as characters. */
static int
filter_truncate(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	const char *text;
	size_t length, position = 0, start, cut = 0, characters = 0;
	struct sink sink;
	uint32_t codepoint;
	int after_zwj = 0, open_flag = 0, starts;

	value_text(value, scratch, &text, &length);
	while (position < length) {
		start = position;
		codepoint = next_codepoint(text, length, &position);
		if (is_regional_indicator(codepoint)) {
			/* Two regional indicators make one flag. */
			starts = !open_flag && !after_zwj;
			open_flag = starts;
		} else {
			starts = !is_extending(codepoint) && !after_zwj;
			if (starts)
				open_flag = 0;
		}
		after_zwj = codepoint == UNICODE_ZWJ;
		if (!starts)
			continue;
		characters++;
		if (characters == call->number)
			cut = start;
		if (characters > call->number)
			break;
	}
	if (characters <= call->number)
		return TEMPLATE_OK;
	scratch_sink(scratch, &sink);
	if (call->number > 0) {
		sink_put_text(&sink, text, cut);
		sink_put_codepoint(&sink, UNICODE_ELLIPSIS);
	}
	return value_take_sink(value, scratch, &sink);
}

/* Is the money argument an ISO 4217-like code (goes after the amount)? */
static int
is_currency_code(const char *argument, size_t length)
{
	size_t i;

	if (length != 3)
		return 0;
	for (i = 0; i < 3; i++)
		if (argument[i] < 'A' || argument[i] > 'Z')
			return 0;
	return 1;
}

static int
filter_money(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	struct decimal decimal;
	struct sink sink;
	char cents[340];
	int keep, i, zero = 1, whole;

	if (value_decimal(value, scratch, &decimal) != 0)
		return TEMPLATE_OK;
	/* Cents: the digits down to 10^-2, rounded half away from zero. */
	keep = decimal.count == 0 ? 0 : decimal.point + 2;
	if (keep < 0)
		keep = 0;
	if (keep > (int)sizeof(cents) - 2)
		return TEMPLATE_OK;
	cents[0] = '0';
	for (i = 0; i < keep; i++)
		cents[i + 1] = i < decimal.count ? decimal.digits[i] : '0';
	if (keep < decimal.count && decimal.digits[keep] >= '5') {
		for (i = keep; cents[i] == '9'; i--)
			cents[i] = '0';
		cents[i]++;
	}
	/* cents[0] is a spare leading digit for the carry. */
	keep++;
	for (i = 0; i < keep; i++)
		zero &= cents[i] == '0';
	while (keep < 3) {
		memmove(cents + 1, cents, (size_t)keep);
		cents[0] = '0';
		keep++;
	}
	for (i = 0; i < keep - 3 && cents[i] == '0'; i++)
		;
	whole = keep - 2 - i;

	scratch_sink(scratch, &sink);
	if (decimal.negative && !zero)
		sink_put_byte(&sink, '-');
	if (argument != NULL &&
	    !is_currency_code(argument, call->argument_length))
		sink_put_bytes(&sink, argument, call->argument_length);
	sink_put_bytes(&sink, cents + i, (size_t)whole);
	sink_put_byte(&sink, '.');
	sink_put_bytes(&sink, cents + keep - 2, 2);
	if (argument != NULL &&
	    is_currency_code(argument, call->argument_length)) {
		sink_put_byte(&sink, ' ');
		sink_put_bytes(&sink, argument, 3);
	}
	return value_take_sink(value, scratch, &sink);
}

static int
filter_date(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	struct civil_time civil;
	struct sink sink;
	int64_t epoch;

	if (value->kind == VALUE_MISSING)
		return TEMPLATE_OK;
	scratch_sink(scratch, &sink);
	if (value_epoch(value, scratch, &epoch) == 0) {
		civil_from_epoch(epoch, &civil);
		format_date(&sink,
		    argument != NULL ? argument : DEFAULT_DATE_FORMAT, &civil);
	}
	return value_take_sink(value, scratch, &sink);
}

static int
filter_urlencode(const struct template_filter_call *call, const char *argument,
    struct value *value, struct render_scratch *scratch)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *text, *safe = argument != NULL ? argument : "/";
	size_t length, safe_length, i;
	struct sink sink;
	unsigned char byte;
	char escape[3];

	safe_length = argument != NULL ? call->argument_length : 1;
	value_text(value, scratch, &text, &length);
	scratch_sink(scratch, &sink);
	for (i = 0; i < length && !sink.full; i++) {
		byte = (unsigned char)text[i];
		if ((byte >= 'A' && byte <= 'Z') ||
		    (byte >= 'a' && byte <= 'z') ||
		    (byte >= '0' && byte <= '9') || byte == '-' ||
		    byte == '.' || byte == '_' || byte == '~' ||
		    (byte < 0x80 && byte != '\0' &&
			memchr(safe, byte, safe_length) != NULL)) {
			sink_put_byte(&sink, (char)byte);
			continue;
		}
		escape[0] = '%';
		escape[1] = hex[byte >> 4];
		escape[2] = hex[byte & 0x0F];
		sink_put_bytes(&sink, escape, 3);
	}
	return value_take_sink(value, scratch, &sink);
}

enum argument_kind {
	ARGUMENT_NONE,
	ARGUMENT_OPTIONAL,
	ARGUMENT_REQUIRED,
	ARGUMENT_NUMBER, /* required, a whole number */
};

struct compiler;
typedef int (*filter_check_fn)(struct compiler *compiler, size_t position,
    const char *argument, size_t length);

static int check_date_format(struct compiler *, size_t, const char *, size_t);

struct filter_descriptor {
	const char *name;
	enum argument_kind argument;
	filter_apply_fn apply;
	filter_check_fn check; /* the argument, at compile time */
};

static const struct filter_descriptor filter_table[] = {
    {"default", ARGUMENT_REQUIRED, filter_default, NULL},
    {"title", ARGUMENT_NONE, filter_title, NULL},
    {"upper", ARGUMENT_NONE, filter_upper, NULL},
    {"lower", ARGUMENT_NONE, filter_lower, NULL},
    {"capfirst", ARGUMENT_NONE, filter_capfirst, NULL},
    {"truncate", ARGUMENT_NUMBER, filter_truncate, NULL},
    {"money", ARGUMENT_OPTIONAL, filter_money, NULL},
    {"date", ARGUMENT_OPTIONAL, filter_date, check_date_format},
    {"urlencode", ARGUMENT_OPTIONAL, filter_urlencode, NULL},
};

/* ---- compiling ---------------------------------------------------------- */

struct compiler {
	const char *text;
	size_t length;
	size_t position;
	struct template work; /* arrays sized for the worst case */
	size_t node_capacity;
	size_t filter_capacity;
	size_t strings_capacity;
	char *error;
	size_t error_size;
	size_t error_position;
};

static int compile_fail(struct compiler *compiler, size_t position,
    const char *format, ...) PRINTF_LIKE(3, 4);

/* Records the first error and where it is; always -1. */
static int
compile_fail(
    struct compiler *compiler, size_t position, const char *format, ...)
{
	va_list arguments;

	compiler->error_position = position;
	if (compiler->error != NULL && compiler->error_size > 0) {
		va_start(arguments, format);
		vsnprintf(
		    compiler->error, compiler->error_size, format, arguments);
		va_end(arguments);
	}
	return -1;
}

static int
check_date_format(struct compiler *compiler, size_t position,
    const char *format, size_t length)
{
	size_t i;

	for (i = 0; i < length; i++) {
		if (format[i] != '%')
			continue;
		if (++i < length && format[i] == '-')
			i++;
		if (i >= length)
			return compile_fail(compiler, position,
			    "filter 'date': format ends with '%%'");
		if (!is_date_conversion(format[i])) {
			if (format[i] > ' ' && format[i] < 0x7F)
				return compile_fail(compiler, position,
				    "filter 'date': unsupported conversion "
				    "'%%%c'",
				    format[i]);
			return compile_fail(compiler, position,
			    "filter 'date': unsupported conversion after '%%'");
		}
	}
	return 0;
}

/* Copies bytes into the strings area; returns their offset. */
static uint32_t
strings_add(
    struct compiler *compiler, const char *bytes, size_t length, int terminate)
{
	struct template *work = &compiler->work;
	size_t offset = work->strings_length;

	memcpy(work->strings + offset, bytes, length);
	work->strings_length += length;
	if (terminate)
		work->strings[work->strings_length++] = '\0';
	return (uint32_t)offset;
}

static struct template_node *
node_add(struct compiler *compiler, enum node_kind kind)
{
	struct template_node *node;

	node = &compiler->work.nodes[compiler->work.node_count++];
	memset(node, 0, sizeof(*node));
	node->kind = (uint8_t)kind;
	return node;
}

static void
literal_add(struct compiler *compiler, size_t start, size_t end)
{
	struct template_node *node;

	if (end == start)
		return;
	node = node_add(compiler, NODE_LITERAL);
	node->text =
	    strings_add(compiler, compiler->text + start, end - start, 0);
	node->length = (uint32_t)(end - start);
}

static int
is_space(char byte)
{
	return byte == ' ' || byte == '\t' || byte == '\n' || byte == '\r';
}

static void
skip_space(struct compiler *compiler)
{
	while (compiler->position < compiler->length &&
	       is_space(compiler->text[compiler->position]))
		compiler->position++;
}

/* Letters, digits, _ - $ and any non-ASCII (validated UTF-8) byte. */
static int
is_name_byte(char byte)
{
	unsigned char b = (unsigned char)byte;

	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
	       (b >= '0' && b <= '9') || b == '_' || b == '-' || b == '$' ||
	       b >= 0x80;
}

static int
at_end(const struct compiler *compiler)
{
	return compiler->position >= compiler->length;
}

static char
current(const struct compiler *compiler)
{
	return compiler->text[compiler->position];
}

static int
unexpected(struct compiler *compiler, const char *where)
{
	char byte = current(compiler);

	if (byte > ' ' && byte < 0x7F)
		return compile_fail(compiler, compiler->position,
		    "unexpected '%c' %s", byte, where);
	return compile_fail(compiler, compiler->position,
	    "unexpected byte 0x%02x %s", (unsigned char)byte, where);
}

/* The path of a variable: names separated by dots, the root recognised. */
static int
compile_path(struct compiler *compiler, struct template_node *node, size_t open)
{
	size_t start, length, root = 0;
	int first = 1;

	node->text = (uint32_t)compiler->work.strings_length;
	for (;; first = 0) {
		start = compiler->position;
		while (!at_end(compiler) && is_name_byte(current(compiler)))
			compiler->position++;
		length = compiler->position - start;
		if (length == 0) {
			if (at_end(compiler))
				return compile_fail(
				    compiler, open, "unclosed '{{'");
			if (!first)
				return compile_fail(compiler, start,
				    "expected a name after '.'");
			if (current(compiler) == '}' ||
			    current(compiler) == '|')
				return compile_fail(
				    compiler, start, "empty variable");
			return unexpected(compiler, "in variable");
		}
		for (root = first ? 1 : ROOT_COUNT; root < ROOT_COUNT; root++)
			if (strlen(root_names[root]) == length &&
			    memcmp(root_names[root], compiler->text + start,
				length) == 0)
				break;
		if (root < ROOT_COUNT) {
			node->root = (uint8_t)root;
		} else {
			if (node->segment_count == PATH_SEGMENTS_MAX)
				return compile_fail(compiler, start,
				    "path too deep (at most %d names)",
				    PATH_SEGMENTS_MAX);
			strings_add(
			    compiler, compiler->text + start, length, 1);
			node->segment_count++;
		}
		if (at_end(compiler) || current(compiler) != '.')
			return 0;
		compiler->position++;
	}
}

/* A filter argument: a quoted string or a bare number. */
static int
compile_argument(struct compiler *compiler, struct template_filter_call *call,
    int *is_whole_number)
{
	size_t start = compiler->position, i;
	struct template *work = &compiler->work;
	char quote = current(compiler), byte;

	call->has_argument = 1;
	call->argument = (uint32_t)work->strings_length;
	if (quote == '\'' || quote == '"') {
		compiler->position++;
		for (;;) {
			if (at_end(compiler))
				return compile_fail(
				    compiler, start, "unterminated string");
			byte = current(compiler);
			compiler->position++;
			if (byte == quote)
				break;
			if (byte == '\\' && !at_end(compiler) &&
			    (current(compiler) == quote ||
				current(compiler) == '\\'))
				byte = compiler->text[compiler->position++];
			work->strings[work->strings_length++] = byte;
		}
	} else {
		if (quote == '+' || quote == '-')
			compiler->position++;
		while (!at_end(compiler) && current(compiler) >= '0' &&
		       current(compiler) <= '9')
			compiler->position++;
		if (!at_end(compiler) && current(compiler) == '.') {
			compiler->position++;
			while (!at_end(compiler) && current(compiler) >= '0' &&
			       current(compiler) <= '9')
				compiler->position++;
		}
		if (compiler->position == start ||
		    compiler->text[compiler->position - 1] < '0' ||
		    compiler->text[compiler->position - 1] > '9' ||
		    (!at_end(compiler) && is_name_byte(current(compiler)))) {
			compiler->position = start;
			return -2;
		}
		strings_add(compiler, compiler->text + start,
		    compiler->position - start, 0);
	}
	call->argument_length =
	    (uint32_t)(work->strings_length - call->argument);
	work->strings[work->strings_length++] = '\0';
	/* truncate:'30' is as good as truncate:30. */
	*is_whole_number =
	    call->argument_length > 0 && call->argument_length <= 6;
	for (i = 0; i < call->argument_length; i++)
		if (work->strings[call->argument + i] < '0' ||
		    work->strings[call->argument + i] > '9')
			*is_whole_number = 0;
	if (*is_whole_number)
		call->number =
		    (uint32_t)strtoul(work->strings + call->argument, NULL, 10);
	return 0;
}

/* One "|name[:argument]" of a filter chain. */
static int
compile_filter(
    struct compiler *compiler, struct template_node *node, size_t open)
{
	const struct filter_descriptor *descriptor = NULL;
	struct template_filter_call *call;
	size_t start, length, i;
	int is_whole_number = 0, status;

	compiler->position++; /* the '|' */
	skip_space(compiler);
	start = compiler->position;
	while (!at_end(compiler) && is_name_byte(current(compiler)))
		compiler->position++;
	length = compiler->position - start;
	if (length == 0) {
		if (at_end(compiler))
			return compile_fail(compiler, open, "unclosed '{{'");
		return compile_fail(
		    compiler, start, "expected a filter name after '|'");
	}
	for (i = 0; i < sizeof(filter_table) / sizeof(filter_table[0]); i++)
		if (strlen(filter_table[i].name) == length &&
		    memcmp(filter_table[i].name, compiler->text + start,
			length) == 0)
			descriptor = &filter_table[i];
	if (descriptor == NULL)
		return compile_fail(compiler, start, "unknown filter '%.*s'",
		    length > 40 ? 40 : (int)length, compiler->text + start);
	if (node->filter_count == TEMPLATE_FILTERS_MAX)
		return compile_fail(compiler, start,
		    "too many filters (at most %d)", TEMPLATE_FILTERS_MAX);

	call = &compiler->work.filters[compiler->work.filter_count++];
	memset(call, 0, sizeof(*call));
	call->filter = (uint8_t)(descriptor - filter_table);
	node->filter_count++;

	skip_space(compiler);
	if (!at_end(compiler) && current(compiler) == ':') {
		compiler->position++;
		skip_space(compiler);
		if (at_end(compiler))
			return compile_fail(compiler, open, "unclosed '{{'");
		if (descriptor->argument == ARGUMENT_NONE)
			return compile_fail(compiler, start,
			    "filter '%s' takes no argument", descriptor->name);
		status = compile_argument(compiler, call, &is_whole_number);
		if (status == -2)
			return compile_fail(compiler, compiler->position,
			    "filter '%s': the argument must be a quoted "
			    "string or a number",
			    descriptor->name);
		if (status != 0)
			return -1;
		skip_space(compiler);
	}
	if (descriptor->argument == ARGUMENT_REQUIRED && !call->has_argument)
		return compile_fail(compiler, start,
		    "filter '%s' needs an argument", descriptor->name);
	if (descriptor->argument == ARGUMENT_NUMBER &&
	    (!is_whole_number || call->number > TRUNCATE_MAX))
		return compile_fail(compiler, start,
		    "filter '%s' needs a number (0 to %d)", descriptor->name,
		    TRUNCATE_MAX);
	if (descriptor->check != NULL && call->has_argument &&
	    descriptor->check(compiler, start,
		compiler->work.strings + call->argument,
		call->argument_length) != 0)
		return -1;
	return 0;
}

/* "{{ path|filter:argument|... }}", the position just after "{{". */
static int
compile_variable(struct compiler *compiler, size_t open)
{
	struct template_node *node;

	node = node_add(compiler, NODE_VARIABLE);
	node->first_filter = (uint32_t)compiler->work.filter_count;
	skip_space(compiler);
	if (compile_path(compiler, node, open) != 0)
		return -1;
	for (;;) {
		skip_space(compiler);
		if (at_end(compiler))
			return compile_fail(compiler, open, "unclosed '{{'");
		if (current(compiler) == '}' &&
		    compiler->position + 1 < compiler->length &&
		    compiler->text[compiler->position + 1] == '}') {
			compiler->position += 2;
			return 0;
		}
		if (current(compiler) != '|')
			return unexpected(
			    compiler, "in variable (expected '|' or '}}')");
		if (compile_filter(compiler, node, open) != 0)
			return -1;
	}
}

static int
compile_text(struct compiler *compiler)
{
	const char *text = compiler->text;
	size_t literal = 0, open, position = 0;
	uint32_t codepoint;

	/* Literals are copied as they are: the whole text must be UTF-8. */
	while (position < compiler->length) {
		open = position;
		if (smpp_charset_utf8_next(text, compiler->length, &position,
			&codepoint) != SMPP_CHARSET_OK)
			return compile_fail(compiler, open, "invalid UTF-8");
	}
	while (compiler->position + 1 < compiler->length) {
		open = compiler->position;
		if (text[open] != '{' ||
		    (text[open + 1] != '{' && text[open + 1] != '%')) {
			compiler->position++;
			continue;
		}
		if (text[open + 1] == '%')
			return compile_fail(compiler, open,
			    "tags ('{%%') are not supported: only {{ "
			    "variables }} with filters");
		literal_add(compiler, literal, open);
		compiler->position += 2;
		if (compile_variable(compiler, open) != 0)
			return -1;
		literal = compiler->position;
	}
	literal_add(compiler, literal, compiler->length);
	return 0;
}

struct template *
template_compile(const char *text, size_t length, int first_line, char *error,
    size_t error_size, int *error_line)
{
	struct compiler compiler;
	struct template *template = NULL;
	size_t i, nodes_size, filters_size;
	char *block;

	memset(&compiler, 0, sizeof(compiler));
	compiler.text = text;
	compiler.length = length;
	compiler.error = error;
	compiler.error_size = error_size;
	if (error != NULL && error_size > 0)
		error[0] = '\0';
	if (text == NULL && length > 0) {
		compile_fail(&compiler, 0, "no template text");
		goto fail;
	}
	if (length > TEMPLATE_TEXT_MAX) {
		compile_fail(&compiler, 0, "template longer than %d bytes",
		    TEMPLATE_TEXT_MAX);
		goto fail;
	}
	/*
	 * Worst cases: a variable takes 5 bytes ("{{x}}") and a filter 5
	 * ("|date"); names and arguments are never longer than their source.
	 */
	compiler.node_capacity = length / 2 + 2;
	compiler.filter_capacity = length / 2 + 1;
	compiler.strings_capacity = length + 16;
	compiler.work.nodes =
	    calloc(compiler.node_capacity, sizeof(*compiler.work.nodes));
	compiler.work.filters =
	    calloc(compiler.filter_capacity, sizeof(*compiler.work.filters));
	compiler.work.strings = malloc(compiler.strings_capacity);
	if (compiler.work.nodes == NULL || compiler.work.filters == NULL ||
	    compiler.work.strings == NULL) {
		compile_fail(&compiler, 0, "out of memory");
		goto fail;
	}
	if (compile_text(&compiler) != 0)
		goto fail;

	/* Everything the renderer reads, in one block. */
	nodes_size = compiler.work.node_count * sizeof(struct template_node);
	filters_size =
	    compiler.work.filter_count * sizeof(struct template_filter_call);
	block = malloc(sizeof(*template) + nodes_size + filters_size +
		       compiler.work.strings_length + 1);
	if (block == NULL) {
		compile_fail(&compiler, 0, "out of memory");
		goto fail;
	}
	template = (struct template *)(void *)block;
	template->nodes =
	    (struct template_node *)(void *)(block + sizeof(*template));
	template->filters =
	    (struct template_filter_call *)(void *)(block + sizeof(*template) +
						    nodes_size);
	template->strings =
	    block + sizeof(*template) + nodes_size + filters_size;
	template->node_count = compiler.work.node_count;
	template->filter_count = compiler.work.filter_count;
	template->strings_length = compiler.work.strings_length;
	memcpy(template->nodes, compiler.work.nodes, nodes_size);
	memcpy(template->filters, compiler.work.filters, filters_size);
	memcpy(template->strings, compiler.work.strings,
	    compiler.work.strings_length);
	template->strings[template->strings_length] = '\0';
	free(compiler.work.nodes);
	free(compiler.work.filters);
	free(compiler.work.strings);
	return template;

fail:
	if (error_line != NULL) {
		*error_line = first_line;
		for (i = 0; i < compiler.error_position && i < length; i++)
			*error_line += text[i] == '\n';
	}
	free(compiler.work.nodes);
	free(compiler.work.filters);
	free(compiler.work.strings);
	return NULL;
}

void
template_free(struct template *template)
{
	free(template);
}

/* ---- rendering ---------------------------------------------------------- */

/* Follows count NUL-separated names from value; NULL if one is missing. */
static const json_t *
lookup_path(const json_t *value, const char *name, size_t count)
{
	size_t i, length, index;

	for (i = 0; i < count && value != NULL; i++) {
		length = strlen(name);
		if (json_is_object(value)) {
			value = json_object_get(value, name);
		} else if (json_is_array(value) && length > 0 && length <= 9 &&
			   strspn(name, "0123456789") == length) {
			index = (size_t)strtoul(name, NULL, 10);
			value = json_array_get(value, index);
		} else {
			return NULL;
		}
		name += length + 1;
	}
	return value;
}

static const json_t *
resolve(const struct template *template, const struct template_node *node,
    const json_t *context)
{
	const char *names = template->strings + node->text;
	const json_t *person, *found;

	if (node->root != ROOT_BARE && node->root != ROOT_PERSON)
		return lookup_path(
		    json_object_get(context, root_names[node->root]), names,
		    node->segment_count);
	person = json_object_get(context, "person");
	found = lookup_path(person, names, node->segment_count);
	if (found == NULL && node->segment_count > 0)
		found = lookup_path(json_object_get(person, "properties"),
		    names, node->segment_count);
	if (found == NULL && node->root == ROOT_BARE)
		found = lookup_path(context, names, node->segment_count);
	return found;
}

static int
render_variable(const struct template *template,
    const struct template_node *node, const json_t *context,
    struct render_scratch *scratch, struct sink *sink)
{
	const struct template_filter_call *call;
	const struct filter_descriptor *descriptor;
	const char *text;
	struct value value;
	size_t i, length;
	int status;

	value.json = resolve(template, node, context);
	value.kind = value.json == NULL || json_is_null(value.json)
			 ? VALUE_MISSING
			 : VALUE_JSON;
	value.text = NULL;
	value.length = 0;
	scratch->free_buffer = 0;
	for (i = 0; i < node->filter_count; i++) {
		call = &template->filters[node->first_filter + i];
		descriptor = &filter_table[call->filter];
		status = descriptor->apply(call,
		    call->has_argument ? template->strings + call->argument
				       : NULL,
		    &value, scratch);
		if (status != TEMPLATE_OK)
			return status;
	}
	value_text(&value, scratch, &text, &length);
	sink_put_text(sink, text, length);
	return TEMPLATE_OK;
}

int
template_render(const struct template *template, const json_t *context,
    char *out, size_t out_size, size_t *out_length)
{
	struct render_scratch scratch;
	const struct template_node *node;
	struct sink sink;
	size_t i;
	int status = TEMPLATE_OK;

	if (out_length != NULL)
		*out_length = 0;
	if (template == NULL || out == NULL || out_size == 0)
		return TEMPLATE_ERR_ARGUMENT;
	sink_init(&sink, out, out_size);
	for (i = 0; i < template->node_count && status == TEMPLATE_OK; i++) {
		node = &template->nodes[i];
		if (node->kind == NODE_LITERAL)
			sink_put_bytes(&sink, template->strings + node->text,
			    node->length);
		else
			status = render_variable(
			    template, node, context, &scratch, &sink);
		if (sink.full)
			status = TEMPLATE_ERR_SPACE;
	}
	if (status != TEMPLATE_OK) {
		out[0] = '\0';
		return status;
	}
	sink_finish(&sink);
	if (out_length != NULL)
		*out_length = sink.length;
	return TEMPLATE_OK;
}

int
template_measure(
    const char *utf8, size_t length, struct template_measure *measure)
{
	struct smpp_charset_choice choice;

	/* GSM-7 or UCS-2 only: handsets render Latin-1 (dcs 3) unreliably. */
	if (smpp_charset_choose(utf8, length, 0, SMPP_UDH_CONCAT_8BIT_LENGTH,
		&choice) != SMPP_CHARSET_OK)
		return TEMPLATE_ERR_ARGUMENT;
	measure->data_coding = (uint8_t)choice.coding;
	measure->characters = choice.characters;
	measure->units = choice.units;
	measure->parts = choice.parts;
	return TEMPLATE_OK;
}
