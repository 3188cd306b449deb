/*
 * smpp_charset.c - character sets of short messages: GSM 03.38 (3GPP TS
 * 23.038) default alphabet and extension table, packed and unpacked, Latin-1,
 * IA5 and UCS-2 / UTF-16BE, each to and from UTF-8, and the chooser that
 * picks the cheapest coding for a text and counts its parts.
 *
 * Everything is table-driven and bounded: the caller passes buffers with
 * their capacity, nothing is allocated, no state is kept between calls.
 */
#include <stddef.h>
#include <stdint.h>

#include "smpp.h"

/* Codes in the Unicode -> GSM tables: a septet, or an extension septet. */
#define GSM_NONE      0xFF
#define GSM_EXTENSION 0x80

/* GSM 7-bit default alphabet -> Unicode (23.038 section 6.2.1). */
/* clang-format off */
static const uint16_t gsm_default_to_unicode[128] = {
	0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC,
	0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5,
	0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,
	0x03A3, 0x0398, 0x039E, 0x0000, 0x00C6, 0x00E6, 0x00DF, 0x00C9,
	0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027,
	0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F,
	0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,
	0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F,
	0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047,
	0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F,
	0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057,
	0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
	0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067,
	0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F,
	0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077,
	0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};
/* clang-format on */

/* Extension table (after 0x1B) -> Unicode; 0 where nothing is defined. */
static const uint16_t gsm_extension_to_unicode[128] = {
    [0x0A] = 0x000C, /* form feed (page break) */
    [0x14] = 0x005E, /* ^ */
    [0x28] = 0x007B, /* { */
    [0x29] = 0x007D, /* } */
    [0x2F] = 0x005C, /* \ */
    [0x3C] = 0x005B, /* [ */
    [0x3D] = 0x007E, /* ~ */
    [0x3E] = 0x005D, /* ] */
    [0x40] = 0x007C, /* | */
    [0x65] = 0x20AC, /* euro sign */
};

/*
 * U+0000..U+00FF -> GSM: a default-alphabet septet, GSM_EXTENSION | the
 * septet that follows the escape, or GSM_NONE. The inverse of the two tables
 * above (generated from them, then checked both ways by the unit test).
 */
/* clang-format off */
static const uint8_t gsm_from_unicode_latin[256] = {
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0x0A, 0xFF, 0x8A, 0x0D, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0x20, 0x21, 0x22, 0x23, 0x02, 0x25, 0x26, 0x27,
	0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F,
	0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
	0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
	0x00, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
	0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
	0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
	0x58, 0x59, 0x5A, 0xBC, 0xAF, 0xBE, 0x94, 0x11,
	0xFF, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
	0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F,
	0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
	0x78, 0x79, 0x7A, 0xA8, 0xC0, 0xA9, 0xBD, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0x40, 0xFF, 0x01, 0x24, 0x03, 0xFF, 0x5F,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x60,
	0xFF, 0xFF, 0xFF, 0xFF, 0x5B, 0x0E, 0x1C, 0x09,
	0xFF, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0x5D, 0xFF, 0xFF, 0xFF, 0xFF, 0x5C, 0xFF,
	0x0B, 0xFF, 0xFF, 0xFF, 0x5E, 0xFF, 0xFF, 0x1E,
	0x7F, 0xFF, 0xFF, 0xFF, 0x7B, 0x0F, 0x1D, 0xFF,
	0x04, 0x05, 0xFF, 0xFF, 0x07, 0xFF, 0xFF, 0xFF,
	0xFF, 0x7D, 0x08, 0xFF, 0xFF, 0xFF, 0x7C, 0xFF,
	0x0C, 0x06, 0xFF, 0xFF, 0x7E, 0xFF, 0xFF, 0xFF,
};
/* clang-format on */

/* U+0390..U+03AF -> GSM: the Greek capitals of the default alphabet. */
#define GSM_GREEK_FIRST 0x0390
/* clang-format off */
static const uint8_t gsm_from_unicode_greek[32] = {
	0xFF, 0xFF, 0xFF, 0x13, 0x10, 0xFF, 0xFF, 0xFF,
	0x19, 0xFF, 0xFF, 0x14, 0xFF, 0xFF, 0x1A, 0xFF,
	0x16, 0xFF, 0xFF, 0x18, 0xFF, 0xFF, 0x12, 0xFF,
	0x17, 0x15, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
};
/* clang-format on */

#define UNICODE_EURO       0x20AC
#define GSM_EXTENSION_EURO 0x65

/* SMPP data_coding 0x00..0x0F -> alphabet (SMPP 3.4 section 5.2.19). */
static const uint8_t smpp_coding_alphabet[16] = {
    [0x00] = SMPP_CODING_DEFAULT,
    [0x01] = SMPP_CODING_IA5,
    [0x02] = SMPP_CODING_BINARY_8BIT,
    [0x03] = SMPP_CODING_LATIN1,
    [0x04] = SMPP_CODING_BINARY_8BIT,
    [0x05] = SMPP_CODING_BINARY_8BIT, /* JIS: not converted */
    [0x06] = SMPP_CODING_BINARY_8BIT, /* ISO-8859-5: not converted */
    [0x07] = SMPP_CODING_BINARY_8BIT, /* ISO-8859-8: not converted */
    [0x08] = SMPP_CODING_UCS2,
    [0x09] = SMPP_CODING_BINARY_8BIT, /* pictogram */
    [0x0A] = SMPP_CODING_BINARY_8BIT, /* ISO-2022-JP */
    [0x0B] = SMPP_CODING_BINARY_8BIT, /* reserved */
    [0x0C] = SMPP_CODING_BINARY_8BIT, /* reserved */
    [0x0D] = SMPP_CODING_BINARY_8BIT, /* extended kanji */
    [0x0E] = SMPP_CODING_BINARY_8BIT, /* KS C 5601 */
    [0x0F] = SMPP_CODING_BINARY_8BIT, /* reserved */
};

/* 23.038 general coding groups: bits 3..2 of the DCS -> alphabet. */
static const uint8_t dcs_general_alphabet[4] = {
    SMPP_CODING_DEFAULT, SMPP_CODING_BINARY_8BIT, SMPP_CODING_UCS2,
    SMPP_CODING_BINARY_8BIT, /* reserved */
};

/* Looks a code point up in the Unicode -> GSM tables. */
static inline unsigned
gsm_lookup(uint32_t codepoint)
{
	if (codepoint < 0x100)
		return gsm_from_unicode_latin[codepoint];
	if (codepoint - GSM_GREEK_FIRST < sizeof(gsm_from_unicode_greek))
		return gsm_from_unicode_greek[codepoint - GSM_GREEK_FIRST];
	if (codepoint == UNICODE_EURO)
		return GSM_EXTENSION | GSM_EXTENSION_EURO;
	return GSM_NONE;
}

/*
 * Decodes the multi-octet sequence at s[*position] (lead >= 0x80), per the
 * well-formed table of Unicode section 3.9: no overlong forms, no encoded
 * surrogates, nothing above U+10FFFF, no truncation.
 */
static inline int
utf8_decode_multibyte(
    const uint8_t *s, size_t length, size_t *position, uint32_t *codepoint)
{
	size_t i = *position, count, k;
	uint8_t lead = s[i], second_min = 0x80, second_max = 0xBF;
	uint32_t value;

	if (lead >= 0xC2 && lead <= 0xDF) {
		count = 2;
		value = lead & 0x1F;
	} else if (lead >= 0xE0 && lead <= 0xEF) {
		count = 3;
		value = lead & 0x0F;
		if (lead == 0xE0)
			second_min = 0xA0;
		else if (lead == 0xED)
			second_max = 0x9F;
	} else if (lead >= 0xF0 && lead <= 0xF4) {
		count = 4;
		value = lead & 0x07;
		if (lead == 0xF0)
			second_min = 0x90;
		else if (lead == 0xF4)
			second_max = 0x8F;
	} else
		return SMPP_CHARSET_ERR_UTF8;
	if (length - i < count)
		return SMPP_CHARSET_ERR_UTF8;
	if (s[i + 1] < second_min || s[i + 1] > second_max)
		return SMPP_CHARSET_ERR_UTF8;
	value = (value << 6) | (s[i + 1] & 0x3F);
	for (k = 2; k < count; k++) {
		if ((s[i + k] & 0xC0) != 0x80)
			return SMPP_CHARSET_ERR_UTF8;
		value = (value << 6) | (s[i + k] & 0x3F);
	}
	*position = i + count;
	*codepoint = value;
	return SMPP_CHARSET_OK;
}

/* Decodes one code point, ASCII inline. */
static inline int
utf8_decode(
    const uint8_t *s, size_t length, size_t *position, uint32_t *codepoint)
{
	if (s[*position] < 0x80) {
		*codepoint = s[(*position)++];
		return SMPP_CHARSET_OK;
	}
	return utf8_decode_multibyte(s, length, position, codepoint);
}

/* Appends a code point as UTF-8; SMPP_CHARSET_ERR_SPACE if it won't fit. */
static inline int
utf8_put(char *out, size_t capacity, size_t *used, uint32_t codepoint)
{
	uint8_t *o = (uint8_t *)out + *used;
	size_t room = capacity - *used;

	if (codepoint < 0x80) {
		if (room < 1)
			return SMPP_CHARSET_ERR_SPACE;
		o[0] = (uint8_t)codepoint;
		*used += 1;
	} else if (codepoint < 0x800) {
		if (room < 2)
			return SMPP_CHARSET_ERR_SPACE;
		o[0] = (uint8_t)(0xC0 | (codepoint >> 6));
		o[1] = (uint8_t)(0x80 | (codepoint & 0x3F));
		*used += 2;
	} else if (codepoint < 0x10000) {
		if (room < 3)
			return SMPP_CHARSET_ERR_SPACE;
		o[0] = (uint8_t)(0xE0 | (codepoint >> 12));
		o[1] = (uint8_t)(0x80 | ((codepoint >> 6) & 0x3F));
		o[2] = (uint8_t)(0x80 | (codepoint & 0x3F));
		*used += 3;
	} else {
		if (room < 4)
			return SMPP_CHARSET_ERR_SPACE;
		o[0] = (uint8_t)(0xF0 | (codepoint >> 18));
		o[1] = (uint8_t)(0x80 | ((codepoint >> 12) & 0x3F));
		o[2] = (uint8_t)(0x80 | ((codepoint >> 6) & 0x3F));
		o[3] = (uint8_t)(0x80 | (codepoint & 0x3F));
		*used += 4;
	}
	return SMPP_CHARSET_OK;
}

/* Septets a GSM table code costs: 1, or 2 with the escape. */
static inline size_t
gsm_cost(unsigned code)
{
	return 1 + ((code & GSM_EXTENSION) >> 7);
}

/*
 * Counts parts the way smpp_split_text() cuts them: greedily, a character
 * that does not fit whole opens the next part. Only needed when a text is
 * long and has 2-unit characters; the text is already known to be valid
 * and representable.
 */
static size_t
greedy_parts(const uint8_t *s, size_t length, int gsm, size_t part_limit)
{
	size_t position = 0, parts = 1, fill = 0, cost;
	uint32_t codepoint = 0;

	while (position < length) {
		(void)utf8_decode(s, length, &position, &codepoint);
		cost = gsm ? gsm_cost(gsm_lookup(codepoint))
			   : 1 + (codepoint > 0xFFFF);
		if (fill + cost > part_limit) {
			parts++;
			fill = 0;
		}
		fill += cost;
	}
	return parts;
}

/* Parts for a coding, from its totals; walks the text only if it must. */
static size_t
count_parts(const uint8_t *s, size_t length, int gsm, size_t units,
    size_t characters, size_t single_limit, size_t part_limit)
{
	if (units <= single_limit)
		return 1;
	if (units == characters) /* every character costs 1 */
		return (units + part_limit - 1) / part_limit;
	return greedy_parts(s, length, gsm, part_limit);
}

int
smpp_charset_utf8_next(
    const char *utf8, size_t length, size_t *offset, uint32_t *codepoint)
{
	if (*offset >= length)
		return SMPP_CHARSET_ERR_ARGUMENT;
	return utf8_decode((const uint8_t *)utf8, length, offset, codepoint);
}

/*
 * One tight pass totals the text in each coding (ASCII straight from the
 * table); part counts follow from the totals, and only a long text with
 * escapes or surrogate pairs is walked again to place the cuts.
 */
int
smpp_charset_choose(const char *utf8, size_t length, unsigned flags,
    size_t udh_length, struct smpp_charset_choice *choice)
{
	const uint8_t *s = (const uint8_t *)utf8;
	size_t gsm_limit, octet_limit, ucs2_limit, position = 0, parts;
	size_t characters = 0, gsm_units = 0, ucs2_units = 0;
	unsigned code, gsm_missing = 0, latin_missing = 0;
	uint32_t codepoint;

	/* A part must hold at least one escape pair or surrogate pair. */
	if (udh_length > SMPP_SMS_OCTETS - 4)
		return SMPP_CHARSET_ERR_ARGUMENT;
	octet_limit = SMPP_SMS_OCTETS - udh_length;
	gsm_limit = octet_limit * 8 / 7;
	ucs2_limit = octet_limit / 2;

	while (position < length) {
		if (s[position] < 0x80) {
			codepoint = s[position++];
			code = gsm_from_unicode_latin[codepoint];
		} else {
			if (utf8_decode_multibyte(
				s, length, &position, &codepoint) != 0)
				return SMPP_CHARSET_ERR_UTF8;
			code = gsm_lookup(codepoint);
			latin_missing |= codepoint > 0xFF;
			ucs2_units += codepoint > 0xFFFF;
		}
		gsm_missing |= code == GSM_NONE;
		gsm_units += gsm_cost(code);
		characters++;
	}
	ucs2_units += characters;
	if (!(flags & SMPP_CHARSET_ALLOW_LATIN1))
		latin_missing = 1;

	choice->characters = characters;
	choice->coding = SMPP_CODING_UCS2;
	choice->units = ucs2_units;
	choice->parts = count_parts(s, length, 0, ucs2_units, characters,
	    SMPP_SMS_UCS2_UNITS, ucs2_limit);
	if (!latin_missing) {
		parts = count_parts(s, length, 0, characters, characters,
		    SMPP_SMS_OCTETS, octet_limit);
		if (parts <= choice->parts) {
			choice->coding = SMPP_CODING_LATIN1;
			choice->units = characters;
			choice->parts = parts;
		}
	}
	if (!gsm_missing) {
		parts = count_parts(s, length, 1, gsm_units, characters,
		    SMPP_SMS_GSM_SEPTETS, gsm_limit);
		if (parts <= choice->parts) {
			choice->coding = SMPP_CODING_DEFAULT;
			choice->units = gsm_units;
			choice->parts = parts;
		}
	}
	return SMPP_CHARSET_OK;
}

/* Encodes whole characters into unpacked GSM septets, up to limit. */
static int
gsm_encode_prefix(const uint8_t *s, size_t length, size_t *offset, size_t limit,
    uint8_t *out, size_t *out_length)
{
	size_t position = *offset, next, used = 0;
	uint32_t codepoint;
	unsigned code;
	int status = SMPP_CHARSET_OK;

	while (position < length) {
		next = position;
		if (utf8_decode(s, length, &next, &codepoint) != 0) {
			status = SMPP_CHARSET_ERR_UTF8;
			break;
		}
		code = gsm_lookup(codepoint);
		if (code == GSM_NONE) {
			status = SMPP_CHARSET_ERR_UNREPRESENTABLE;
			break;
		}
		if (code & GSM_EXTENSION) {
			/* The escape and its septet always travel together. */
			if (limit - used < 2)
				break;
			out[used++] = SMPP_GSM_ESCAPE;
			out[used++] = (uint8_t)(code & 0x7F);
		} else {
			if (limit - used < 1)
				break;
			out[used++] = (uint8_t)code;
		}
		position = next;
	}
	*offset = position;
	*out_length = used;
	return status;
}

/* Encodes whole characters as single octets up to highest (Latin-1/IA5). */
static int
octet_encode_prefix(const uint8_t *s, size_t length, size_t *offset,
    size_t limit, uint32_t highest, uint8_t *out, size_t *out_length)
{
	size_t position = *offset, next, used = 0;
	uint32_t codepoint;
	int status = SMPP_CHARSET_OK;

	while (position < length && used < limit) {
		next = position;
		if (utf8_decode(s, length, &next, &codepoint) != 0) {
			status = SMPP_CHARSET_ERR_UTF8;
			break;
		}
		if (codepoint > highest) {
			status = SMPP_CHARSET_ERR_UNREPRESENTABLE;
			break;
		}
		out[used++] = (uint8_t)codepoint;
		position = next;
	}
	*offset = position;
	*out_length = used;
	return status;
}

/* Encodes whole characters as UTF-16BE, up to limit 16-bit units. */
static int
ucs2_encode_prefix(const uint8_t *s, size_t length, size_t *offset,
    size_t limit, uint8_t *out, size_t *out_length)
{
	size_t position = *offset, next, units = 0;
	uint32_t codepoint, high, low;
	int status = SMPP_CHARSET_OK;

	while (position < length) {
		next = position;
		if (utf8_decode(s, length, &next, &codepoint) != 0) {
			status = SMPP_CHARSET_ERR_UTF8;
			break;
		}
		if (codepoint > 0xFFFF) {
			/* A surrogate pair is never cut between parts. */
			if (limit - units < 2)
				break;
			high = 0xD800 + ((codepoint - 0x10000) >> 10);
			low = 0xDC00 + ((codepoint - 0x10000) & 0x3FF);
			out[2 * units] = (uint8_t)(high >> 8);
			out[2 * units + 1] = (uint8_t)high;
			out[2 * units + 2] = (uint8_t)(low >> 8);
			out[2 * units + 3] = (uint8_t)low;
			units += 2;
		} else {
			if (limit - units < 1)
				break;
			out[2 * units] = (uint8_t)(codepoint >> 8);
			out[2 * units + 1] = (uint8_t)codepoint;
			units += 1;
		}
		position = next;
	}
	*offset = position;
	*out_length = 2 * units;
	return status;
}

int
smpp_charset_encode_prefix(enum smpp_data_coding coding, const char *utf8,
    size_t length, size_t *offset, size_t unit_limit, uint8_t *out,
    size_t capacity, size_t *out_length)
{
	const uint8_t *s = (const uint8_t *)utf8;

	*out_length = 0;
	if (*offset > length)
		return SMPP_CHARSET_ERR_ARGUMENT;
	switch (smpp_charset_alphabet((uint8_t)coding)) {
	case SMPP_CODING_DEFAULT:
		if (unit_limit > capacity)
			unit_limit = capacity;
		return gsm_encode_prefix(
		    s, length, offset, unit_limit, out, out_length);
	case SMPP_CODING_LATIN1:
		if (unit_limit > capacity)
			unit_limit = capacity;
		return octet_encode_prefix(
		    s, length, offset, unit_limit, 0xFF, out, out_length);
	case SMPP_CODING_IA5:
		if (unit_limit > capacity)
			unit_limit = capacity;
		return octet_encode_prefix(
		    s, length, offset, unit_limit, 0x7F, out, out_length);
	case SMPP_CODING_UCS2:
		if (unit_limit > capacity / 2)
			unit_limit = capacity / 2;
		return ucs2_encode_prefix(
		    s, length, offset, unit_limit, out, out_length);
	default:
		return SMPP_CHARSET_ERR_ARGUMENT;
	}
}

int
smpp_charset_encode(enum smpp_data_coding coding, const char *utf8,
    size_t length, uint8_t *out, size_t capacity, size_t *out_length)
{
	size_t offset = 0;
	int status;

	status = smpp_charset_encode_prefix(
	    coding, utf8, length, &offset, SIZE_MAX, out, capacity, out_length);
	if (status == SMPP_CHARSET_OK && offset != length)
		status = SMPP_CHARSET_ERR_SPACE;
	return status;
}

/* GSM unpacked septets -> UTF-8, with the lenient rules of 23.038. */
static int
gsm_decode(
    const uint8_t *in, size_t length, char *utf8, size_t capacity, size_t *used)
{
	size_t i;
	uint32_t codepoint;
	uint8_t septet;
	int status;

	for (i = 0; i < length; i++) {
		septet = in[i];
		if (septet == SMPP_GSM_ESCAPE) {
			if (++i == length)
				break; /* a lone escape at the end shows nothing */
			septet = in[i];
			if (septet >= 0x80)
				codepoint = SMPP_UNICODE_REPLACEMENT;
			else if (septet == SMPP_GSM_ESCAPE)
				codepoint = ' '; /* reserved: a space */
			else if (gsm_extension_to_unicode[septet] != 0)
				codepoint = gsm_extension_to_unicode[septet];
			else
				codepoint = gsm_default_to_unicode[septet];
		} else if (septet >= 0x80)
			codepoint = SMPP_UNICODE_REPLACEMENT;
		else
			codepoint = gsm_default_to_unicode[septet];
		if ((status = utf8_put(utf8, capacity, used, codepoint)) != 0)
			return status;
	}
	return SMPP_CHARSET_OK;
}

/* Single octets -> UTF-8; above highest becomes U+FFFD. */
static int
octet_decode(const uint8_t *in, size_t length, uint32_t highest, char *utf8,
    size_t capacity, size_t *used)
{
	size_t i;
	int status;

	for (i = 0; i < length; i++) {
		status = utf8_put(utf8, capacity, used,
		    in[i] <= highest ? in[i] : SMPP_UNICODE_REPLACEMENT);
		if (status != 0)
			return status;
	}
	return SMPP_CHARSET_OK;
}

/* UTF-16BE -> UTF-8; lone surrogates and an odd last octet -> U+FFFD. */
static int
ucs2_decode(
    const uint8_t *in, size_t length, char *utf8, size_t capacity, size_t *used)
{
	size_t i = 0;
	uint32_t unit, low;
	int status;

	while (i + 1 < length) {
		unit = (uint32_t)in[i] << 8 | in[i + 1];
		i += 2;
		if (unit >= 0xD800 && unit <= 0xDBFF && i + 1 < length) {
			low = (uint32_t)in[i] << 8 | in[i + 1];
			if (low >= 0xDC00 && low <= 0xDFFF) {
				unit = 0x10000 + ((unit - 0xD800) << 10) +
				       (low - 0xDC00);
				i += 2;
			}
		}
		if (unit >= 0xD800 && unit <= 0xDFFF)
			unit = SMPP_UNICODE_REPLACEMENT;
		if ((status = utf8_put(utf8, capacity, used, unit)) != 0)
			return status;
	}
	if (i < length)
		return utf8_put(utf8, capacity, used, SMPP_UNICODE_REPLACEMENT);
	return SMPP_CHARSET_OK;
}

int
smpp_charset_decode(enum smpp_data_coding coding, const uint8_t *in,
    size_t length, char *utf8, size_t capacity, size_t *utf8_length)
{
	*utf8_length = 0;
	switch (smpp_charset_alphabet((uint8_t)coding)) {
	case SMPP_CODING_DEFAULT:
		return gsm_decode(in, length, utf8, capacity, utf8_length);
	case SMPP_CODING_LATIN1:
		return octet_decode(
		    in, length, 0xFF, utf8, capacity, utf8_length);
	case SMPP_CODING_IA5:
		return octet_decode(
		    in, length, 0x7F, utf8, capacity, utf8_length);
	case SMPP_CODING_UCS2:
		return ucs2_decode(in, length, utf8, capacity, utf8_length);
	default:
		return SMPP_CHARSET_ERR_ARGUMENT;
	}
}

/*
 * SMPP defines 0x00..0x0F itself; above, data_coding follows the 23.038
 * coding groups: 00xx/01xx general (bit 5 compressed, bits 3..2 alphabet),
 * 1100/1101 message waiting with GSM, 1110 message waiting with UCS-2,
 * 1111 data coding / message class (bit 2: 8-bit data).
 */
enum smpp_data_coding
smpp_charset_alphabet(uint8_t data_coding)
{
	if (data_coding < 0x10)
		return (enum smpp_data_coding)smpp_coding_alphabet[data_coding];
	switch (data_coding >> 4) {
	case 0x1:
	case 0x2:
	case 0x3:
	case 0x4:
	case 0x5:
	case 0x6:
	case 0x7:
		if (data_coding & 0x20)
			return SMPP_CODING_BINARY_8BIT; /* compressed */
		return (enum smpp_data_coding)
		    dcs_general_alphabet[(data_coding >> 2) & 0x03];
	case 0xC:
	case 0xD:
		return SMPP_CODING_DEFAULT;
	case 0xE:
		return SMPP_CODING_UCS2;
	case 0xF:
		return data_coding & 0x04 ? SMPP_CODING_BINARY_8BIT
					  : SMPP_CODING_DEFAULT;
	default:
		return SMPP_CODING_BINARY_8BIT; /* reserved groups */
	}
}

size_t
smpp_charset_gsm_packed_length(size_t septet_count, unsigned fill_bits)
{
	return (fill_bits + 7 * septet_count + 7) / 8;
}

/*
 * 23.038 section 6.1.2.1: septets are laid LSB first into consecutive
 * octets; fill_bits zero bits come first so that, after a UDH, the text
 * starts on a septet boundary of the whole user data.
 */
int
smpp_charset_gsm_pack(const uint8_t *septets, size_t septet_count,
    unsigned fill_bits, uint8_t *out, size_t capacity, size_t *out_length)
{
	uint32_t accumulator = 0;
	unsigned bits = fill_bits;
	size_t i, used = 0;

	*out_length = 0;
	if (fill_bits > 6)
		return SMPP_CHARSET_ERR_ARGUMENT;
	if (smpp_charset_gsm_packed_length(septet_count, fill_bits) > capacity)
		return SMPP_CHARSET_ERR_SPACE;
	for (i = 0; i < septet_count; i++) {
		accumulator |= (uint32_t)(septets[i] & 0x7F) << bits;
		bits += 7;
		if (bits >= 8) {
			out[used++] = (uint8_t)accumulator;
			accumulator >>= 8;
			bits -= 8;
		}
	}
	if (bits > 0)
		out[used++] = (uint8_t)accumulator;
	*out_length = used;
	return SMPP_CHARSET_OK;
}

int
smpp_charset_gsm_unpack(const uint8_t *packed, size_t packed_length,
    unsigned fill_bits, size_t septet_count, uint8_t *septets, size_t capacity)
{
	size_t i, bit;
	uint32_t pair;

	if (fill_bits > 6)
		return SMPP_CHARSET_ERR_ARGUMENT;
	if (septet_count > capacity)
		return SMPP_CHARSET_ERR_SPACE;
	if (septet_count > packed_length * 8 / 7 ||
	    fill_bits + 7 * septet_count > 8 * packed_length)
		return SMPP_CHARSET_ERR_ARGUMENT;
	for (i = 0; i < septet_count; i++) {
		bit = fill_bits + 7 * i;
		/* A septet spans at most two octets. */
		pair = packed[bit / 8];
		if (bit / 8 + 1 < packed_length)
			pair |= (uint32_t)packed[bit / 8 + 1] << 8;
		septets[i] = (uint8_t)((pair >> (bit % 8)) & 0x7F);
	}
	return SMPP_CHARSET_OK;
}
