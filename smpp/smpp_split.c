/*
 * smpp_split.c - cuts an outgoing text (or binary data) into the
 * short_message values of a long message: each part UDH + encoded text
 * (concatenation element 0x00 or 0x08), or bare text with the SAR TLV
 * values, or the whole message as one message_payload.
 *
 * The cut is greedy and never separates a GSM escape from its septet nor
 * the two halves of a UTF-16 surrogate pair, so a part may carry one unit
 * less than the limit; smpp_charset_choose() counts parts the same way.
 * Part bytes go to the caller's buffer; nothing is allocated.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smpp.h"

#define GSM_CR 0x0D /* padding for 7 spare bits, see pack_in_place */

/* Size of the units an alphabet is counted in, and its single-SMS limit. */
struct alphabet_units {
	size_t single_units;
	unsigned unit_bits; /* on the air */
	size_t unit_octets; /* in the buffer before packing */
};

static const struct alphabet_units gsm_units = {SMPP_SMS_GSM_SEPTETS, 7, 1};
static const struct alphabet_units octet_units = {SMPP_SMS_OCTETS, 8, 1};
static const struct alphabet_units ucs2_units = {SMPP_SMS_UCS2_UNITS, 16, 2};

/* What each concatenation method puts in, and sizes, every part. */
static const struct concat_layout {
	size_t udh_length;        /* UDH octets written in each part */
	size_t sizing_udh_length; /* UDH the air will carry */
	unsigned reference_bits;
	int sar;
} concat_layouts[] = {
    [SMPP_CONCAT_UDH_8BIT] = {SMPP_UDH_CONCAT_8BIT_LENGTH,
	SMPP_UDH_CONCAT_8BIT_LENGTH, 8, 0},
    [SMPP_CONCAT_UDH_16BIT] = {SMPP_UDH_CONCAT_16BIT_LENGTH,
	SMPP_UDH_CONCAT_16BIT_LENGTH, 16, 0},
    /*
	 * SAR parts carry no UDH, but the SMSC adds one on the air interface,
	 * so they are sized like 8-bit UDH parts.
	 */
    [SMPP_CONCAT_SAR] = {0, SMPP_UDH_CONCAT_8BIT_LENGTH, 0, 1},
    [SMPP_CONCAT_PAYLOAD] = {0, 0, 0, 0},
};

/* Where part contents come from: a UTF-8 text or binary data. */
struct split_source {
	const void *data;
	size_t length;
	enum smpp_data_coding alphabet; /* text only */
	int binary;
	int packed; /* pack GSM septets */
	const struct alphabet_units *units;
};

/* Moves the next units of the source into out, up to unit_limit. */
static int
source_take(const struct split_source *source, size_t *offset,
    size_t unit_limit, uint8_t *out, size_t capacity, size_t *out_length)
{
	size_t count;

	if (!source->binary)
		return smpp_charset_encode_prefix(source->alphabet,
		    source->data, source->length, offset, unit_limit, out,
		    capacity, out_length);
	count = source->length - *offset;
	if (count > unit_limit)
		count = unit_limit;
	if (count > capacity)
		count = capacity;
	memcpy(out, (const uint8_t *)source->data + *offset, count);
	*offset += count;
	*out_length = count;
	return SMPP_SPLIT_OK;
}

/*
 * Packs the septets at text in place (packing never writes ahead of what
 * it reads). When 7 bits are left over at the end, a receiver that counts
 * septets from octets (sm_length) would read them as '@', so they carry a
 * CR instead, as 23.038 section 6.1.2.3.1 does for the same ambiguity.
 */
static int
pack_in_place(
    uint8_t *text, size_t capacity, unsigned fill_bits, size_t *length)
{
	size_t septet_count = *length;
	int status;

	status = smpp_charset_gsm_pack(
	    text, septet_count, fill_bits, text, capacity, length);
	if (status == SMPP_CHARSET_OK &&
	    8 * *length - fill_bits - 7 * septet_count == 7)
		text[*length - 1] |= GSM_CR << 1;
	return status;
}

/*
 * Appends one part: its UDH (total left 0, patched once known), then as
 * much of the source as unit_limit allows, packed if asked.
 */
static int
write_part(struct smpp_split *split, const struct split_source *source,
    size_t *offset, size_t unit_limit, const struct concat_layout *layout,
    uint16_t reference, uint8_t seqnum)
{
	uint8_t *start = split->buffer + split->used;
	size_t room = split->capacity - split->used, header = 0;
	size_t text_length, unit_room, before = *offset;
	struct smpp_split_part *part;
	int status;

	if (split->count >= split->max_parts)
		return SMPP_SPLIT_ERR_TOO_MANY_PARTS;
	if (layout != NULL && layout->udh_length > 0) {
		header = smpp_udh_write_concat(
		    start, room, layout->reference_bits, reference, 0, seqnum);
		if (header == 0)
			return SMPP_SPLIT_ERR_SPACE;
	}
	status = source_take(source, offset, unit_limit, start + header,
	    room - header, &text_length);
	if (status != SMPP_SPLIT_OK)
		return status;
	/* Cut short by the buffer, not by the limit: the cut would differ. */
	unit_room = (room - header) / source->units->unit_octets;
	if (unit_room < unit_limit && *offset < source->length)
		return SMPP_SPLIT_ERR_SPACE;
	if (*offset == before && *offset < source->length)
		return SMPP_SPLIT_ERR_ARGUMENT;
	if (source->packed) {
		status = pack_in_place(start + header, room - header,
		    smpp_udh_fill_bits(header), &text_length);
		if (status != SMPP_CHARSET_OK)
			return status;
	}

	part = &split->parts[split->count++];
	memset(part, 0, sizeof(*part));
	part->short_message = start;
	part->length = header + text_length;
	part->esm_class = header > 0 ? SMPP_ESM_CLASS_UDHI : 0;
	if (layout != NULL && layout->sar) {
		part->sar_msg_ref_num = reference;
		part->sar_segment_seqnum = seqnum;
	}
	split->used += part->length;
	return SMPP_SPLIT_OK;
}

/* Writes the part count into every part's UDH or SAR values. */
static void
patch_totals(struct smpp_split *split, const struct concat_layout *layout)
{
	uint8_t total = (uint8_t)split->count;
	size_t i, position;

	for (i = 0; i < split->count; i++) {
		if (layout->sar)
			split->parts[i].sar_total_segments = total;
		if (layout->udh_length > 0) {
			/* The total is the next to last octet of both UDHs. */
			position = (size_t)(split->parts[i].short_message -
					    split->buffer) +
				   layout->udh_length - 2;
			split->buffer[position] = total;
		}
	}
}

/*
 * Tries the source as one SMS (no UDH), unless the caller knows it needs
 * more; otherwise cuts it into parts of the multi-part limit.
 */
static int
split_source(const struct split_source *source,
    const struct smpp_split_options *options, int known_multipart,
    struct smpp_split *split)
{
	const struct concat_layout *layout;
	size_t offset = 0, multi_limit;
	int status;

	split->count = 0;
	split->used = 0;
	if ((unsigned)options->concat >=
	    sizeof(concat_layouts) / sizeof(concat_layouts[0]))
		return SMPP_SPLIT_ERR_ARGUMENT;
	layout = &concat_layouts[options->concat];

	if (options->concat == SMPP_CONCAT_PAYLOAD) {
		status =
		    write_part(split, source, &offset, SIZE_MAX, NULL, 0, 0);
		if (status != SMPP_SPLIT_OK)
			return status;
		if (offset < source->length ||
		    split->parts[0].length > SMPP_MESSAGE_PAYLOAD_MAX)
			return SMPP_SPLIT_ERR_SPACE;
		return SMPP_SPLIT_OK;
	}

	if (!known_multipart) {
		status = write_part(split, source, &offset,
		    source->units->single_units, NULL, 0, 0);
		if (status != SMPP_SPLIT_OK || offset == source->length)
			return status;
		split->count = 0;
		split->used = 0;
		offset = 0;
	}

	multi_limit = (SMPP_SMS_OCTETS - layout->sizing_udh_length) * 8 /
		      source->units->unit_bits;
	while (offset < source->length) {
		if (split->count == SMPP_SPLIT_MAX_PARTS)
			return SMPP_SPLIT_ERR_TOO_MANY_PARTS;
		status = write_part(split, source, &offset, multi_limit, layout,
		    options->reference, (uint8_t)(split->count + 1));
		if (status != SMPP_SPLIT_OK)
			return status;
	}
	patch_totals(split, layout);
	return SMPP_SPLIT_OK;
}

int
smpp_split_text(const char *utf8, size_t length,
    const struct smpp_split_options *options, struct smpp_split *split)
{
	struct split_source source;
	struct smpp_charset_choice choice;
	size_t sizing_udh_length;
	int status, known_multipart = 0;

	split->count = 0;
	split->used = 0;
	if ((unsigned)options->concat >=
	    sizeof(concat_layouts) / sizeof(concat_layouts[0]))
		return SMPP_SPLIT_ERR_ARGUMENT;
	memset(&source, 0, sizeof(source));
	source.data = utf8;
	source.length = length;
	split->coding = options->coding;
	if (options->flags & SMPP_SPLIT_CHOOSE_CODING) {
		sizing_udh_length =
		    concat_layouts[options->concat].sizing_udh_length;
		status = smpp_charset_choose(utf8, length,
		    options->flags & SMPP_SPLIT_ALLOW_LATIN1
			? SMPP_CHARSET_ALLOW_LATIN1
			: 0,
		    sizing_udh_length, &choice);
		if (status != SMPP_CHARSET_OK)
			return status;
		split->coding = choice.coding;
		known_multipart = choice.parts > 1;
	}

	source.alphabet = smpp_charset_alphabet((uint8_t)split->coding);
	switch (source.alphabet) {
	case SMPP_CODING_DEFAULT:
		source.units = &gsm_units;
		source.packed = (options->flags & SMPP_SPLIT_GSM_PACKED) != 0;
		break;
	case SMPP_CODING_LATIN1:
		source.units = &octet_units;
		break;
	case SMPP_CODING_UCS2:
		source.units = &ucs2_units;
		break;
	default:
		return SMPP_SPLIT_ERR_ARGUMENT; /* IA5, binary, unknown */
	}
	return split_source(&source, options, known_multipart, split);
}

int
smpp_split_binary(const uint8_t *data, size_t length,
    const struct smpp_split_options *options, struct smpp_split *split)
{
	struct split_source source;

	memset(&source, 0, sizeof(source));
	source.data = data;
	source.length = length;
	source.binary = 1;
	source.units = &octet_units;
	split->coding = options->coding;
	if (smpp_charset_alphabet((uint8_t)options->coding) !=
	    SMPP_CODING_BINARY_8BIT)
		split->coding = SMPP_CODING_BINARY_8BIT;
	return split_source(&source, options, 0, split);
}
