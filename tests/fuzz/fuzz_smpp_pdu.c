/*
 * fuzz_smpp_pdu.c - libFuzzer target for the PDU codec. The input is a
 * byte stream: each PDU smpp_pdu_frame() finds is decoded; one that decodes
 * must re-encode to the very same bytes (also when its TLVs and
 * destinations are handed to the encoder as arrays instead of raw bytes)
 * and decode again to an equal PDU. Any disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smpp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TLVS 512

static uint8_t encoded[SMPP_DEFAULT_MAX_PDU_LENGTH];
static struct smpp_tlv tlv_list[MAX_TLVS];
static struct smpp_destination destination_list[SMPP_MAX_DESTINATIONS + 1];

/* Re-encodes with TLVs and destinations as caller arrays: same bytes. */
static void
check_arrays(const struct smpp_pdu *decoded, const uint8_t *wire, size_t length)
{
	struct smpp_pdu copy = *decoded;
	size_t cursor = 0, count = 0;
	int written;

	while (count < MAX_TLVS &&
	       smpp_pdu_next_tlv(decoded, &cursor, &tlv_list[count]))
		count++;
	if (count == MAX_TLVS)
		return;
	copy.tlv_bytes = NULL;
	copy.tlv_bytes_length = 0;
	copy.tlvs = tlv_list;
	copy.tlv_count = count;

	cursor = 0;
	count = 0;
	while (count <= SMPP_MAX_DESTINATIONS &&
	       smpp_pdu_next_destination(
		   decoded, &cursor, &destination_list[count]))
		count++;
	if (count != decoded->number_of_destinations)
		abort();
	if (decoded->destinations != NULL) {
		copy.destinations = NULL;
		copy.destinations_length = 0;
		copy.destination_list = destination_list;
	}

	written = smpp_pdu_encode(&copy, encoded, sizeof(encoded));
	if (written < 0 || (size_t)written != length ||
	    memcmp(encoded, wire, length) != 0)
		abort();
}

/* The properties every PDU that decodes must have. */
static void
check_pdu(const uint8_t *wire, size_t length)
{
	struct smpp_pdu first, second;
	struct smpp_tlv tlv;
	uint32_t status;
	int written;

	status = smpp_pdu_decode(wire, length, &first);
	(void)smpp_status_name(status);
	(void)smpp_command_name(first.command_id);
	if (status != SMPP_ESME_ROK) {
		/* The header is there for the response, whatever failed. */
		if (first.command_length != length)
			abort();
		return;
	}
	written = smpp_pdu_encode(&first, encoded, sizeof(encoded));
	if (written < 0 || (size_t)written != length ||
	    memcmp(encoded, wire, length) != 0)
		abort();
	status = smpp_pdu_decode(encoded, (size_t)written, &second);
	if (status != SMPP_ESME_ROK || !smpp_pdu_equal(&first, &second))
		abort();
	(void)smpp_pdu_find_tlv(&first, SMPP_TLV_RECEIPTED_MESSAGE_ID, &tlv);
	check_arrays(&first, wire, length);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t offset = 0;

	while (offset < size) {
		uint32_t length;
		enum smpp_frame_result result;

		result =
		    smpp_pdu_frame(data + offset, size - offset, 0, &length);
		if (result != SMPP_FRAME_COMPLETE)
			break;
		check_pdu(data + offset, length);
		offset += length;
	}
	return 0;
}
