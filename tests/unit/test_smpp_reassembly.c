/*
 * test_smpp_reassembly.c - long MO reassembly: parts out of order,
 * interleaved senders, duplicates, timeouts (with the caller's clock), the
 * bounds on pending messages and bytes with eviction of the oldest, and a
 * full round trip split -> UDH parse -> reassembly -> decode.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smpp.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* What the deliver callback saw, copied out of the borrowed message. */
struct delivered {
	enum smpp_reassembly_reason reason;
	char source[SMPP_REASSEMBLY_ADDRESS_MAX + 1];
	char destination[SMPP_REASSEMBLY_ADDRESS_MAX + 1];
	uint16_t reference;
	uint8_t total;
	uint8_t received;
	uint8_t data_coding;
	uint8_t present[32];
	uint64_t first_seen_us;
	uint8_t payload[4096];
	size_t length;
};

struct recorder {
	size_t count;
	struct delivered message[16];
};

static void
record(void *arg, const struct smpp_reassembly_message *message)
{
	struct recorder *recorder = arg;
	struct delivered *d;

	assert_true(recorder->count < NELEM(recorder->message));
	d = &recorder->message[recorder->count++];
	d->reason = message->reason;
	snprintf(d->source, sizeof(d->source), "%s", message->source);
	snprintf(
	    d->destination, sizeof(d->destination), "%s", message->destination);
	d->reference = message->reference;
	d->total = message->total;
	d->received = message->received;
	d->data_coding = message->data_coding;
	memcpy(d->present, message->present, sizeof(d->present));
	d->first_seen_us = message->first_seen_us;
	assert_true(message->length <= sizeof(d->payload));
	if (message->length > 0)
		memcpy(d->payload, message->payload, message->length);
	d->length = message->length;
}

static struct recorder recorder;

static struct smpp_reassembly *
make(size_t max_messages, size_t max_bytes, uint64_t timeout_us)
{
	struct smpp_reassembly_limits limits = {
	    max_messages, max_bytes, timeout_us};
	struct smpp_reassembly *reassembly;

	memset(&recorder, 0, sizeof(recorder));
	reassembly = smpp_reassembly_new(&limits, record, &recorder);
	assert_non_null(reassembly);
	return reassembly;
}

static int
add(struct smpp_reassembly *reassembly, const char *source, uint16_t reference,
    uint8_t total, uint8_t seqnum, const char *payload, uint64_t now_us)
{
	struct smpp_reassembly_part part = {source, "4000", reference, total,
	    seqnum, SMPP_CODING_DEFAULT, (const uint8_t *)payload,
	    strlen(payload)};

	return smpp_reassembly_add(reassembly, &part, now_us);
}

static void
assert_delivered(size_t index, enum smpp_reassembly_reason reason,
    const char *source, const char *payload)
{
	const struct delivered *d = &recorder.message[index];

	assert_true(index < recorder.count);
	assert_int_equal(d->reason, reason);
	assert_string_equal(d->source, source);
	assert_int_equal(d->length, strlen(payload));
	assert_memory_equal(d->payload, payload, d->length);
}

static void
test_out_of_order(void **state)
{
	struct smpp_reassembly *r = make(16, 65536, 1000000);

	assert_int_equal(
	    add(r, "+331", 7, 3, 3, "ccc", 10), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+331", 7, 3, 1, "aaa", 20), SMPP_REASSEMBLY_STORED);
	assert_int_equal(recorder.count, 0);
	assert_int_equal(
	    add(r, "+331", 7, 3, 2, "bb", 30), SMPP_REASSEMBLY_COMPLETED);
	assert_int_equal(recorder.count, 1);
	assert_delivered(0, SMPP_REASSEMBLY_COMPLETE, "+331", "aaabbccc");
	assert_string_equal(recorder.message[0].destination, "4000");
	assert_int_equal(recorder.message[0].reference, 7);
	assert_int_equal(recorder.message[0].total, 3);
	assert_int_equal(recorder.message[0].received, 3);
	assert_int_equal(recorder.message[0].present[0], 0x07);
	assert_int_equal(recorder.message[0].first_seen_us, 10);

	/* Nothing remains: the same key starts afresh. */
	assert_int_equal(
	    add(r, "+331", 7, 3, 1, "x", 40), SMPP_REASSEMBLY_STORED);
	smpp_reassembly_free(r);
}

static void
test_interleaved_senders(void **state)
{
	struct smpp_reassembly *r = make(16, 65536, 1000000);
	struct smpp_reassembly_part part = {
	    "+331", "5000", 7, 2, 1, SMPP_CODING_UCS2, (const uint8_t *)"Z", 1};
	struct smpp_reassembly_stats stats;

	/* Same reference and total from two senders, and to two numbers. */
	assert_int_equal(
	    add(r, "+331", 7, 2, 2, "-one", 1), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+332", 7, 2, 2, "-two", 2), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    smpp_reassembly_add(r, &part, 3), SMPP_REASSEMBLY_STORED);
	/* Same sender, same reference, other total: another message. */
	assert_int_equal(
	    add(r, "+331", 7, 3, 1, "T", 4), SMPP_REASSEMBLY_STORED);
	smpp_reassembly_get_stats(r, &stats);
	assert_int_equal(stats.pending, 4);

	assert_int_equal(
	    add(r, "+332", 7, 2, 1, "two", 5), SMPP_REASSEMBLY_COMPLETED);
	assert_int_equal(
	    add(r, "+331", 7, 2, 1, "one", 6), SMPP_REASSEMBLY_COMPLETED);
	assert_int_equal(recorder.count, 2);
	assert_delivered(0, SMPP_REASSEMBLY_COMPLETE, "+332", "two-two");
	assert_delivered(1, SMPP_REASSEMBLY_COMPLETE, "+331", "one-one");
	smpp_reassembly_get_stats(r, &stats);
	assert_int_equal(stats.pending, 2);
	assert_int_equal(stats.completed, 2);

	/* The flush hands back what is left, oldest first. */
	assert_int_equal(smpp_reassembly_flush(r), 2);
	assert_delivered(2, SMPP_REASSEMBLY_FLUSHED, "+331", "Z");
	assert_string_equal(recorder.message[2].destination, "5000");
	assert_int_equal(recorder.message[2].data_coding, SMPP_CODING_UCS2);
	assert_delivered(3, SMPP_REASSEMBLY_FLUSHED, "+331", "T");
	smpp_reassembly_get_stats(r, &stats);
	assert_int_equal(stats.pending, 0);
	assert_int_equal(stats.bytes, 0);
	smpp_reassembly_free(r);
}

static void
test_duplicates(void **state)
{
	struct smpp_reassembly *r = make(16, 65536, 1000000);
	struct smpp_reassembly_stats stats;

	assert_int_equal(
	    add(r, "+331", 1, 2, 1, "first", 1), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+331", 1, 2, 1, "again", 2), SMPP_REASSEMBLY_DUPLICATE);
	assert_int_equal(
	    add(r, "+331", 1, 2, 1, "first", 3), SMPP_REASSEMBLY_DUPLICATE);
	assert_int_equal(
	    add(r, "+331", 1, 2, 2, "+second", 4), SMPP_REASSEMBLY_COMPLETED);
	assert_delivered(0, SMPP_REASSEMBLY_COMPLETE, "+331", "first+second");
	smpp_reassembly_get_stats(r, &stats);
	assert_int_equal(stats.duplicates, 2);
	smpp_reassembly_free(r);
}

static void
test_timeout(void **state)
{
	struct smpp_reassembly *r = make(16, 65536, 1000);
	uint64_t deadline = 0;

	assert_int_equal(smpp_reassembly_next_deadline(r, &deadline), 0);
	assert_int_equal(
	    add(r, "+331", 1, 3, 2, "middle", 500), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+332", 1, 2, 1, "other", 800), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+331", 1, 3, 1, "start ", 900), SMPP_REASSEMBLY_STORED);
	assert_int_equal(smpp_reassembly_next_deadline(r, &deadline), 1);
	assert_int_equal(deadline, 1500);

	assert_int_equal(smpp_reassembly_expire(r, 1499), 0);
	assert_int_equal(recorder.count, 0);
	assert_int_equal(smpp_reassembly_expire(r, 1500), 1);
	assert_int_equal(recorder.count, 1);
	/* Incomplete: parts 1 and 2 of 3, in order, part 3 missing. */
	assert_delivered(0, SMPP_REASSEMBLY_TIMED_OUT, "+331", "start middle");
	assert_int_equal(recorder.message[0].received, 2);
	assert_int_equal(recorder.message[0].total, 3);
	assert_int_equal(recorder.message[0].present[0], 0x03);
	assert_int_equal(smpp_reassembly_next_deadline(r, &deadline), 1);
	assert_int_equal(deadline, 1800);

	/* A late part expires the rest first, then starts a new message. */
	assert_int_equal(
	    add(r, "+331", 1, 3, 3, "end", 2000), SMPP_REASSEMBLY_STORED);
	assert_int_equal(recorder.count, 2);
	assert_delivered(1, SMPP_REASSEMBLY_TIMED_OUT, "+332", "other");
	assert_int_equal(smpp_reassembly_next_deadline(r, &deadline), 1);
	assert_int_equal(deadline, 3000);
	smpp_reassembly_free(r);
}

static void
test_max_messages_evicts_oldest(void **state)
{
	struct smpp_reassembly *r = make(2, 65536, 1000000);
	struct smpp_reassembly_stats stats;

	assert_int_equal(
	    add(r, "+331", 1, 2, 1, "one", 1), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+332", 1, 2, 1, "two", 2), SMPP_REASSEMBLY_STORED);
	/* A third message pushes the oldest out. */
	assert_int_equal(
	    add(r, "+331", 9, 2, 2, "x", 3), SMPP_REASSEMBLY_STORED);
	assert_int_equal(recorder.count, 1);
	assert_delivered(0, SMPP_REASSEMBLY_EVICTED, "+331", "one");
	assert_int_equal(
	    add(r, "+332", 1, 2, 2, "!", 4), SMPP_REASSEMBLY_COMPLETED);
	assert_delivered(1, SMPP_REASSEMBLY_COMPLETE, "+332", "two!");
	smpp_reassembly_get_stats(r, &stats);
	assert_int_equal(stats.evicted, 1);
	assert_int_equal(stats.pending, 1);
	smpp_reassembly_free(r);
}

static void
test_max_bytes_evicts_oldest(void **state)
{
	struct smpp_reassembly *r;
	struct smpp_reassembly_stats stats;
	char payload[101];
	size_t one_message;

	/* Measure what one message with one 100-octet part costs. */
	r = make(100, 1 << 20, 1000000);
	memset(payload, 'p', 100);
	payload[100] = '\0';
	assert_int_equal(
	    add(r, "+331", 1, 4, 1, payload, 1), SMPP_REASSEMBLY_STORED);
	smpp_reassembly_get_stats(r, &stats);
	one_message = stats.bytes;
	assert_true(one_message > 100);
	smpp_reassembly_free(r);

	/* Room for two such messages and a little more. */
	r = make(100, 2 * one_message + 50, 1000000);
	assert_int_equal(
	    add(r, "+331", 1, 4, 1, payload, 1), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+332", 1, 4, 1, payload, 2), SMPP_REASSEMBLY_STORED);
	assert_int_equal(recorder.count, 0);
	/* 100 more octets for +332 push the oldest (+331) out. */
	assert_int_equal(
	    add(r, "+332", 1, 4, 2, payload, 3), SMPP_REASSEMBLY_STORED);
	assert_int_equal(recorder.count, 1);
	assert_int_equal(recorder.message[0].reason, SMPP_REASSEMBLY_EVICTED);
	assert_string_equal(recorder.message[0].source, "+331");
	assert_int_equal(recorder.message[0].length, 100);
	smpp_reassembly_get_stats(r, &stats);
	assert_true(stats.bytes <= 2 * one_message + 50);
	assert_int_equal(stats.pending, 1);

	smpp_reassembly_free(r);

	/* Alone and still too big: the message itself goes, then restarts. */
	r = make(100, one_message + 150, 1000000);
	assert_int_equal(
	    add(r, "+332", 1, 4, 1, payload, 1), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+332", 1, 4, 2, payload, 2), SMPP_REASSEMBLY_STORED);
	assert_int_equal(recorder.count, 0);
	assert_int_equal(
	    add(r, "+332", 1, 4, 3, payload, 3), SMPP_REASSEMBLY_STORED);
	assert_int_equal(recorder.count, 1);
	assert_int_equal(recorder.message[0].reason, SMPP_REASSEMBLY_EVICTED);
	assert_int_equal(recorder.message[0].received, 2);
	assert_int_equal(recorder.message[0].length, 200);
	smpp_reassembly_get_stats(r, &stats);
	assert_int_equal(stats.pending, 1);
	assert_int_equal(stats.bytes, one_message);
	assert_int_equal(stats.evicted, 1);
	/* The restarted message holds part 3 only: 1 and 2 are new again. */
	assert_int_equal(
	    add(r, "+332", 1, 4, 1, payload, 4), SMPP_REASSEMBLY_STORED);
	smpp_reassembly_free(r);

	/* A part that could never fit is refused outright. */
	r = make(100, 64, 1000000);
	assert_int_equal(
	    add(r, "+331", 1, 2, 1, payload, 1), SMPP_REASSEMBLY_ERR_TOO_LARGE);
	assert_int_equal(recorder.count, 0);
	smpp_reassembly_free(r);
}

static void
test_single_part_and_invalid(void **state)
{
	struct smpp_reassembly *r = make(4, 65536, 1000000);
	struct smpp_reassembly_part part = {
	    "+331", "4000", 1, 2, 1, 0, NULL, 3};
	char long_address[80];

	assert_int_equal(
	    add(r, "+331", 1, 1, 1, "alone", 1), SMPP_REASSEMBLY_COMPLETED);
	assert_delivered(0, SMPP_REASSEMBLY_COMPLETE, "+331", "alone");
	/* Empty parts are parts. */
	assert_int_equal(
	    add(r, "+331", 2, 2, 2, "", 1), SMPP_REASSEMBLY_STORED);
	assert_int_equal(
	    add(r, "+331", 2, 2, 1, "", 1), SMPP_REASSEMBLY_COMPLETED);
	assert_delivered(1, SMPP_REASSEMBLY_COMPLETE, "+331", "");

	assert_int_equal(
	    add(r, "+331", 1, 2, 0, "x", 1), SMPP_REASSEMBLY_ERR_INVALID);
	assert_int_equal(
	    add(r, "+331", 1, 2, 3, "x", 1), SMPP_REASSEMBLY_ERR_INVALID);
	assert_int_equal(
	    add(r, "+331", 1, 0, 0, "x", 1), SMPP_REASSEMBLY_ERR_INVALID);
	assert_int_equal(
	    smpp_reassembly_add(r, &part, 1), SMPP_REASSEMBLY_ERR_INVALID);
	memset(long_address, '1', sizeof(long_address) - 1);
	long_address[sizeof(long_address) - 1] = '\0';
	assert_int_equal(
	    add(r, long_address, 1, 2, 1, "x", 1), SMPP_REASSEMBLY_ERR_INVALID);
	long_address[SMPP_REASSEMBLY_ADDRESS_MAX] = '\0';
	assert_int_equal(
	    add(r, long_address, 1, 2, 1, "x", 1), SMPP_REASSEMBLY_STORED);
	assert_int_equal(recorder.count, 2);
	smpp_reassembly_free(r);

	{
		struct smpp_reassembly_limits zero = {0, 100, 1};

		assert_null(smpp_reassembly_new(&zero, record, &recorder));
	}
}

/* A text split with UDH, parts parsed and fed back in reverse. */
static void
test_round_trip_through_split(void **state)
{
	static struct smpp_split_part parts[8];
	static uint8_t buffer[8 * SMPP_SPLIT_PART_MAX_OCTETS];
	struct smpp_split_options options = {SMPP_CODING_DEFAULT,
	    SMPP_CONCAT_UDH_16BIT, 0x4242, SMPP_SPLIT_CHOOSE_CODING};
	struct smpp_split split = {parts, NELEM(parts), buffer, sizeof(buffer),
	    0, 0, SMPP_CODING_DEFAULT};
	struct smpp_reassembly *r = make(4, 65536, 1000000);
	struct smpp_reassembly_part part;
	struct smpp_udh udh;
	char text[1024], decoded[2048];
	size_t length = 0, decoded_length, i;

	while (length + 20 < 600)
		length += (size_t)snprintf(text + length, sizeof(text) - length,
		    "Grüße {%zu} 😀 ", length);
	assert_int_equal(
	    smpp_split_text(text, length, &options, &split), SMPP_SPLIT_OK);
	assert_int_equal(split.coding, SMPP_CODING_UCS2);
	assert_true(split.count > 2);

	for (i = split.count; i-- > 0;) {
		assert_int_equal(smpp_udh_parse(split.parts[i].short_message,
				     split.parts[i].length, &udh),
		    SMPP_UDH_OK);
		assert_true(udh.has_concat);
		memset(&part, 0, sizeof(part));
		part.source = "+33600000000";
		part.destination = "36000";
		part.reference = udh.concat_reference;
		part.total = udh.concat_total;
		part.seqnum = udh.concat_seqnum;
		part.data_coding = (uint8_t)split.coding;
		part.payload = split.parts[i].short_message + udh.header_length;
		part.length = split.parts[i].length - udh.header_length;
		assert_int_equal(smpp_reassembly_add(r, &part, 1),
		    i == 0 ? SMPP_REASSEMBLY_COMPLETED
			   : SMPP_REASSEMBLY_STORED);
	}
	assert_int_equal(recorder.count, 1);
	assert_int_equal(recorder.message[0].reference, 0x4242);
	assert_int_equal(
	    smpp_charset_decode(recorder.message[0].data_coding,
		recorder.message[0].payload, recorder.message[0].length,
		decoded, sizeof(decoded), &decoded_length),
	    SMPP_CHARSET_OK);
	assert_int_equal(decoded_length, length);
	assert_memory_equal(decoded, text, length);
	smpp_reassembly_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_out_of_order),
	    cmocka_unit_test(test_interleaved_senders),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_max_messages_evicts_oldest),
	    cmocka_unit_test(test_max_bytes_evicts_oldest),
	    cmocka_unit_test(test_single_part_and_invalid),
	    cmocka_unit_test(test_round_trip_through_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
