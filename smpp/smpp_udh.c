/*
 * smpp_udh.c - the user data header that leads short_message when esm_class
 * has UDHI set (3GPP TS 23.040 section 9.2.3.24): a length octet, then
 * information elements (id, length, data). Parsing is bounds-checked against
 * both the header and the data; the elements the gateway acts on,
 * concatenation (0x00, 0x08) and application ports (0x04, 0x05), are
 * decoded into struct smpp_udh. Also writes the concatenation UDH.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smpp.h"

/* Decodes a known element's data (its length already checked). */
typedef void udh_apply_fn(struct smpp_udh *udh, const uint8_t *data);

static udh_apply_fn apply_concat_8bit, apply_concat_16bit;
static udh_apply_fn apply_port_8bit, apply_port_16bit;

/* Elements the parser decodes: id, the only valid length, decoder. */
static const struct udh_known_element {
	uint8_t id;
	uint8_t length;
	udh_apply_fn *apply;
} udh_known_elements[] = {
    {SMPP_UDH_IE_CONCAT_8BIT, 3, apply_concat_8bit},
    {SMPP_UDH_IE_PORT_8BIT, 2, apply_port_8bit},
    {SMPP_UDH_IE_PORT_16BIT, 4, apply_port_16bit},
    {SMPP_UDH_IE_CONCAT_16BIT, 4, apply_concat_16bit},
};

/* Keeps a concatenation element unless its numbers are impossible. */
static void
apply_concat(struct smpp_udh *udh, unsigned bits, uint16_t reference,
    uint8_t total, uint8_t seqnum)
{
	/* 23.040 9.2.3.24.1: such an element is ignored, not an error. */
	if (total == 0 || seqnum == 0 || seqnum > total)
		return;
	udh->has_concat = 1;
	udh->concat_reference_bits = bits;
	udh->concat_reference = reference;
	udh->concat_total = total;
	udh->concat_seqnum = seqnum;
}

/* 0x00: reference, total, sequence number, one octet each. */
static void
apply_concat_8bit(struct smpp_udh *udh, const uint8_t *data)
{
	apply_concat(udh, 8, data[0], data[1], data[2]);
}

/* 0x08: 16-bit reference (big-endian), total, sequence number. */
static void
apply_concat_16bit(struct smpp_udh *udh, const uint8_t *data)
{
	apply_concat(
	    udh, 16, (uint16_t)(data[0] << 8 | data[1]), data[2], data[3]);
}

/* 0x04: destination port, source port, one octet each. */
static void
apply_port_8bit(struct smpp_udh *udh, const uint8_t *data)
{
	udh->has_ports = 1;
	udh->port_bits = 8;
	udh->destination_port = data[0];
	udh->source_port = data[1];
}

/* 0x05: destination port, source port, 16 bits each, big-endian. */
static void
apply_port_16bit(struct smpp_udh *udh, const uint8_t *data)
{
	udh->has_ports = 1;
	udh->port_bits = 16;
	udh->destination_port = (uint16_t)(data[0] << 8 | data[1]);
	udh->source_port = (uint16_t)(data[2] << 8 | data[3]);
}

/* Hands an element to its decoder when it is a known one. */
static void
apply_element(
    struct smpp_udh *udh, uint8_t id, uint8_t length, const uint8_t *data)
{
	size_t i;

	for (i = 0;
	     i < sizeof(udh_known_elements) / sizeof(udh_known_elements[0]);
	     i++) {
		if (udh_known_elements[i].id != id)
			continue;
		if (udh_known_elements[i].length == length)
			udh_known_elements[i].apply(udh, data);
		return;
	}
}

int
smpp_udh_parse(const uint8_t *user_data, size_t length, struct smpp_udh *udh)
{
	size_t header_length, position;
	uint8_t id, element_length;

	memset(udh, 0, sizeof(*udh));
	if (length < 1)
		return SMPP_UDH_ERR_TRUNCATED;
	header_length = 1 + (size_t)user_data[0];
	if (header_length > length)
		return SMPP_UDH_ERR_TRUNCATED;

	position = 1;
	while (position < header_length) {
		if (header_length - position < 2)
			return SMPP_UDH_ERR_MALFORMED;
		id = user_data[position];
		element_length = user_data[position + 1];
		if (element_length > header_length - position - 2)
			return SMPP_UDH_ERR_MALFORMED;
		if (udh->element_count < SMPP_UDH_MAX_ELEMENTS) {
			udh->element[udh->element_count].id = id;
			udh->element[udh->element_count].length =
			    element_length;
			udh->element[udh->element_count].data =
			    user_data + position + 2;
			udh->element_count++;
		}
		udh->elements_seen++;
		apply_element(
		    udh, id, element_length, user_data + position + 2);
		position += 2 + (size_t)element_length;
	}
	udh->header_length = header_length;
	return SMPP_UDH_OK;
}

size_t
smpp_udh_write_concat(uint8_t *out, size_t capacity, unsigned reference_bits,
    uint16_t reference, uint8_t total, uint8_t seqnum)
{
	if (reference_bits == 8) {
		if (capacity < SMPP_UDH_CONCAT_8BIT_LENGTH)
			return 0;
		out[0] = SMPP_UDH_CONCAT_8BIT_LENGTH - 1;
		out[1] = SMPP_UDH_IE_CONCAT_8BIT;
		out[2] = 3;
		out[3] = (uint8_t)reference;
		out[4] = total;
		out[5] = seqnum;
		return SMPP_UDH_CONCAT_8BIT_LENGTH;
	}
	if (reference_bits == 16) {
		if (capacity < SMPP_UDH_CONCAT_16BIT_LENGTH)
			return 0;
		out[0] = SMPP_UDH_CONCAT_16BIT_LENGTH - 1;
		out[1] = SMPP_UDH_IE_CONCAT_16BIT;
		out[2] = 4;
		out[3] = (uint8_t)(reference >> 8);
		out[4] = (uint8_t)reference;
		out[5] = total;
		out[6] = seqnum;
		return SMPP_UDH_CONCAT_16BIT_LENGTH;
	}
	return 0;
}

/*
 * GSM text after a UDH starts on a septet boundary of the whole user data
 * (23.040 9.2.3.24), so header_length * 8 bits are padded up to a multiple
 * of 7.
 */
unsigned
smpp_udh_fill_bits(size_t header_length)
{
	return (unsigned)((7 - (header_length * 8) % 7) % 7);
}
