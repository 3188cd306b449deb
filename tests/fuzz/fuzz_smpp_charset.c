/*
 * fuzz_smpp_charset.c - libFuzzer target for the character sets and the
 * splitter. The input is taken both as UTF-8 text and as network bytes:
 *
 *  - valid UTF-8: every coding that accepts the text must give it back
 *    unchanged (UTF-8 -> GSM / Latin-1 / UCS-2 -> UTF-8 is the identity),
 *    packing must round-trip, the chooser's part count must be the
 *    splitter's, and the parts decoded one by one must join to the text;
 *  - any bytes: decoding in every coding, packed or not, must not crash
 *    and must produce valid UTF-8 within the documented growth.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smpp.h"

#define MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Crashes the fuzzer on a broken invariant, with a findable frame. */
static void
check(int condition)
{
	if (!condition)
		abort();
}

static uint8_t encoded[4 * MAX_INPUT];
static uint8_t septets[2 * MAX_INPUT];
static char decoded[4 * MAX_INPUT + 16];
static char joined[4 * MAX_INPUT + 16];
static struct smpp_split_part parts[SMPP_SPLIT_MAX_PARTS];
static uint8_t part_buffer[SMPP_SPLIT_MAX_PARTS * SMPP_SPLIT_PART_MAX_OCTETS];

/* Encodes in one coding; when accepted, decoding gives the text back. */
static void
round_trip(enum smpp_data_coding coding, const char *text, size_t size)
{
	size_t length, decoded_length, packed_length;
	unsigned fill = (unsigned)(size % 7);

	if (smpp_charset_encode(coding, text, size, encoded, sizeof(encoded),
		&length) != SMPP_CHARSET_OK)
		return;
	check(smpp_charset_decode(coding, encoded, length, decoded,
		  sizeof(decoded), &decoded_length) == SMPP_CHARSET_OK);
	check(decoded_length == size && memcmp(decoded, text, size) == 0);
	if (coding != SMPP_CODING_DEFAULT)
		return;
	check(smpp_charset_gsm_pack(encoded, length, fill, septets,
		  sizeof(septets), &packed_length) == SMPP_CHARSET_OK);
	check(packed_length == smpp_charset_gsm_packed_length(length, fill));
	check(smpp_charset_gsm_unpack(septets, packed_length, fill, length,
		  septets + packed_length,
		  sizeof(septets) - packed_length) == SMPP_CHARSET_OK);
	check(memcmp(septets + packed_length, encoded, length) == 0);
}

/* Septets in each part of the last unpacked split, for unpacking. */
static size_t septet_counts[SMPP_SPLIT_MAX_PARTS];

/*
 * Splits with the chooser, checks the count and joins the parts back.
 * Unpacked GSM parts record their septet counts; packed ones are unpacked
 * with them (sm_length alone cannot say whether 7 spare bits hold one).
 */
static void
split_and_join(const char *text, size_t size,
    const struct smpp_charset_choice *choice, enum smpp_concat concat,
    unsigned flags)
{
	struct smpp_split_options options = {SMPP_CODING_DEFAULT, concat,
	    (uint16_t)size, SMPP_SPLIT_CHOOSE_CODING | flags};
	struct smpp_split split = {parts, SMPP_SPLIT_MAX_PARTS, part_buffer,
	    sizeof(part_buffer), 0, 0, SMPP_CODING_DEFAULT};
	size_t i, header, body, joined_length = 0, piece;
	int packed = (flags & SMPP_SPLIT_GSM_PACKED) != 0;
	const uint8_t *bytes;
	int status;

	status = smpp_split_text(text, size, &options, &split);
	if (choice->parts > SMPP_SPLIT_MAX_PARTS) {
		check(status == SMPP_SPLIT_ERR_TOO_MANY_PARTS);
		return;
	}
	check(status == SMPP_SPLIT_OK);
	check(split.count == choice->parts);
	check(split.coding == choice->coding);
	packed = packed && split.coding == SMPP_CODING_DEFAULT;
	for (i = 0; i < split.count; i++) {
		check(split.parts[i].length <= SMPP_SPLIT_PART_MAX_OCTETS);
		header = split.parts[i].esm_class & SMPP_ESM_CLASS_UDHI
			     ? 1 + (size_t)split.parts[i].short_message[0]
			     : 0;
		bytes = split.parts[i].short_message + header;
		body = split.parts[i].length - header;
		if (packed) {
			check(split.parts[i].length <= SMPP_SMS_OCTETS);
			check(smpp_charset_gsm_unpack(bytes, body,
				  smpp_udh_fill_bits(header), septet_counts[i],
				  septets, sizeof(septets)) == SMPP_CHARSET_OK);
			bytes = septets;
			body = septet_counts[i];
		} else
			septet_counts[i] = body;
		check(
		    smpp_charset_decode(split.coding, bytes, body,
			joined + joined_length, sizeof(joined) - joined_length,
			&piece) == SMPP_CHARSET_OK);
		joined_length += piece;
	}
	check(joined_length == size && memcmp(joined, text, size) == 0);
}

/* Decodes arbitrary bytes; the output must itself be valid UTF-8. */
static void
decode_any(enum smpp_data_coding coding, const uint8_t *data, size_t size)
{
	struct smpp_charset_choice choice;
	size_t length;

	check(smpp_charset_decode(coding, data, size, decoded, sizeof(decoded),
		  &length) == SMPP_CHARSET_OK);
	check(length <= 3 * size + 3);
	check(smpp_charset_choose(decoded, length, 0, 6, &choice) ==
	      SMPP_CHARSET_OK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct smpp_charset_choice choice;
	size_t count;

	if (size > MAX_INPUT)
		return 0;

	decode_any(SMPP_CODING_DEFAULT, data, size);
	decode_any(SMPP_CODING_LATIN1, data, size);
	decode_any(SMPP_CODING_IA5, data, size);
	decode_any(SMPP_CODING_UCS2, data, size);
	if (size > 0) {
		count = (8 * size - data[0] % 7) / 7;
		check(smpp_charset_gsm_unpack(data, size, data[0] % 7, count,
			  septets, sizeof(septets)) == SMPP_CHARSET_OK);
		decode_any(SMPP_CODING_DEFAULT, septets, count);
	}

	if (smpp_charset_choose(text, size, SMPP_CHARSET_ALLOW_LATIN1, 6,
		&choice) != SMPP_CHARSET_OK)
		return 0;
	round_trip(SMPP_CODING_DEFAULT, text, size);
	round_trip(SMPP_CODING_LATIN1, text, size);
	round_trip(SMPP_CODING_UCS2, text, size);
	/* Each packed split follows the unpacked one it takes counts from. */
	split_and_join(
	    text, size, &choice, SMPP_CONCAT_UDH_8BIT, SMPP_SPLIT_ALLOW_LATIN1);
	split_and_join(text, size, &choice, SMPP_CONCAT_UDH_8BIT,
	    SMPP_SPLIT_ALLOW_LATIN1 | SMPP_SPLIT_GSM_PACKED);
	split_and_join(
	    text, size, &choice, SMPP_CONCAT_SAR, SMPP_SPLIT_ALLOW_LATIN1);
	check(
	    smpp_charset_choose(text, size, 0, 7, &choice) == SMPP_CHARSET_OK);
	split_and_join(text, size, &choice, SMPP_CONCAT_UDH_16BIT, 0);
	split_and_join(
	    text, size, &choice, SMPP_CONCAT_UDH_16BIT, SMPP_SPLIT_GSM_PACKED);
	return 0;
}
