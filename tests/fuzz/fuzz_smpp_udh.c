/*
 * fuzz_smpp_udh.c - libFuzzer target for UDH parsing and MO reassembly.
 * The input is a sequence of records, each one part as it could arrive:
 *
 *	control octet	bits 0-1 sender, bits 2-4 clock step (2^n us x 97),
 *			bit 5 SAR (no UDH: reference, total, seqnum lead),
 *			bit 6 run expiry, bit 7 other destination
 *	length octet	then that many octets of short_message
 *
 * Each short_message goes through smpp_udh_parse(); a concatenation
 * element (or the SAR values) feeds a small reassembly so that limits,
 * eviction and timeouts are hit often. The deliver callback and the
 * end-of-input flush check what every message handed out claims.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smpp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int condition)
{
	if (!condition)
		abort();
}

static const char *const senders[] = {
    "+33600000001", "+33600000002", "447700900123", ""};

struct tally {
	size_t delivered;
	size_t parts_in;  /* parts stored, not refused or duplicate */
	size_t parts_out; /* parts handed back in messages */
};

/* Checks one delivered message against what it claims. */
static void
deliver(void *arg, const struct smpp_reassembly_message *message)
{
	struct tally *tally = arg;
	unsigned seen = 0, bit;

	tally->delivered++;
	tally->parts_out += message->received;
	check(message->total >= 1);
	check(message->received >= 1 && message->received <= message->total);
	for (bit = 0; bit < 256; bit++)
		seen += (message->present[bit / 8] >> (bit % 8)) & 1;
	check(seen == message->received);
	check(message->reason != SMPP_REASSEMBLY_COMPLETE ||
	      message->received == message->total);
	check(message->length == 0 || message->payload != NULL);
	if (message->length > 0) {
		/* Touch every octet so ASan sees any bad bounds. */
		volatile uint8_t sum = 0;
		size_t i;

		for (i = 0; i < message->length; i++)
			sum += message->payload[i];
		(void)sum;
	}
	check(strlen(message->source) <= SMPP_REASSEMBLY_ADDRESS_MAX);
}

/* Checks a parsed UDH against the bytes it came from. */
static void
check_udh(const struct smpp_udh *udh, const uint8_t *bytes, size_t length)
{
	size_t i;

	check(udh->header_length >= 1 && udh->header_length <= length);
	check(udh->element_count <= SMPP_UDH_MAX_ELEMENTS);
	check(udh->element_count <= udh->elements_seen);
	for (i = 0; i < udh->element_count; i++) {
		check(udh->element[i].data >= bytes + 3);
		check(udh->element[i].data + udh->element[i].length <=
		      bytes + udh->header_length);
	}
	if (udh->has_concat) {
		check(udh->concat_total >= 1);
		check(udh->concat_seqnum >= 1 &&
		      udh->concat_seqnum <= udh->concat_total);
		check(udh->concat_reference_bits == 8 ||
		      udh->concat_reference_bits == 16);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smpp_reassembly_limits limits = {4, 3000, 2000};
	struct smpp_reassembly *reassembly;
	struct smpp_reassembly_part part;
	struct smpp_reassembly_stats stats;
	struct smpp_udh udh;
	struct tally tally = {0, 0, 0};
	uint64_t now = 1;
	size_t position = 0, length;
	uint8_t control;
	int status;

	reassembly = smpp_reassembly_new(&limits, deliver, &tally);
	check(reassembly != NULL);
	while (size - position >= 2) {
		control = data[position];
		length = data[position + 1];
		position += 2;
		if (length > size - position)
			length = size - position;

		now += (uint64_t)97 << ((control >> 2) & 0x07);
		memset(&part, 0, sizeof(part));
		part.source = senders[control & 0x03];
		part.destination = control & 0x80 ? "36000" : "36001";
		part.data_coding = SMPP_CODING_DEFAULT;
		if (control & 0x20) {
			/* SAR: the values travel as TLVs, taken raw here. */
			if (length < 3)
				goto next;
			part.reference = data[position];
			part.total = data[position + 1];
			part.seqnum = data[position + 2];
			part.payload = data + position + 3;
			part.length = length - 3;
		} else {
			status = smpp_udh_parse(data + position, length, &udh);
			if (status != SMPP_UDH_OK) {
				check(status == SMPP_UDH_ERR_TRUNCATED ||
				      status == SMPP_UDH_ERR_MALFORMED);
				goto next;
			}
			check_udh(&udh, data + position, length);
			if (!udh.has_concat)
				goto next;
			part.reference = udh.concat_reference;
			part.total = udh.concat_total;
			part.seqnum = udh.concat_seqnum;
			part.payload = data + position + udh.header_length;
			part.length = length - udh.header_length;
		}
		status = smpp_reassembly_add(reassembly, &part, now);
		check(status >= SMPP_REASSEMBLY_ERR_TOO_LARGE &&
		      status <= SMPP_REASSEMBLY_DUPLICATE);
		if (status == SMPP_REASSEMBLY_STORED ||
		    status == SMPP_REASSEMBLY_COMPLETED)
			tally.parts_in++;
		smpp_reassembly_get_stats(reassembly, &stats);
		check(stats.pending <= limits.max_messages);
		check(stats.bytes <= limits.max_bytes);
		if (control & 0x40)
			smpp_reassembly_expire(reassembly, now);
	next:
		position += length;
	}
	smpp_reassembly_flush(reassembly);
	smpp_reassembly_get_stats(reassembly, &stats);
	check(stats.pending == 0 && stats.bytes == 0);
	/* Every stored part came back out in exactly one message. */
	check(tally.parts_in == tally.parts_out);
	smpp_reassembly_free(reassembly);
	return 0;
}
