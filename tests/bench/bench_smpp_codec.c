/*
 * bench_smpp_codec.c - decode and encode speed of the smpp/ PDU codec on
 * the two PDUs the gateway handles most: a submit_sm carrying a 160
 * character GSM text and two TLVs, and a deliver_sm delivery receipt with
 * receipted_message_id and message_state. libsmpp34 unpacks and packs the
 * same bytes in the same run for comparison.
 *
 * One thread, CLOCK_MONOTONIC. Each side of a row is timed in 7 runs of
 * about 0.2 s; the median run is reported, and ours' best run too (the
 * machine is shared: the best shows the code, the median the conditions).
 * Results feed a volatile sink so the compiler cannot drop the work.
 * Output: a table, then one "BENCH name=... ours_ns=... peer_ns=...
 * ratio=..." line per row.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libsmpp34/smpp34.h>
#include <libsmpp34/smpp34_structs.h>
#include <libsmpp34/smpp34_params.h>

#include "smpp.h"

#define RUNS        7
#define RUN_SECONDS 0.2
#define BUFFER_SIZE 1024

/* One timed operation: does the work iterations times. */
typedef void bench_fn(uint64_t iterations);

static volatile uint64_t sink;

static uint8_t submit_sm_wire[BUFFER_SIZE];
static int submit_sm_length;
static uint8_t receipt_wire[BUFFER_SIZE];
static int receipt_length;

static struct smpp_pdu submit_sm_pdu;
static struct smpp_pdu receipt_pdu;
static submit_sm_t their_submit_sm;
static deliver_sm_t their_receipt;
static tlv_t their_submit_tlvs[2];
static tlv_t their_receipt_tlvs[2];

static const char gsm_text[] =
    "Your cart is waiting! Complete your order today and get 10% off "
    "with code SAVE10. Free shipping over 50 EUR. Reply STOP to opt "
    "out. T&C apply, see nudge.shop/tc";

static const char receipt_text[] =
    "id:5f3a9c21000a sub:001 dlvrd:001 submit date:2401020304 "
    "done date:2401020305 stat:DELIVRD err:000 text:Your cart is wai";

static const uint8_t receipted_id[] = "5f3a9c21000a";

static const struct smpp_tlv submit_sm_tlvs[] = {
    {SMPP_TLV_USER_MESSAGE_REFERENCE, 2, 0x0102, NULL},
    {SMPP_TLV_SOURCE_PORT, 2, 9200, NULL},
};

static const struct smpp_tlv receipt_tlvs[] = {
    {SMPP_TLV_RECEIPTED_MESSAGE_ID, sizeof(receipted_id), 0, receipted_id},
    {SMPP_TLV_MESSAGE_STATE, 1, 2, NULL},
};

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the operations ----------------------------------------------------- */

static void
ours_decode_submit_sm(uint64_t iterations)
{
	struct smpp_pdu pdu;
	uint64_t i, total = 0;

	for (i = 0; i < iterations; i++) {
		total += smpp_pdu_decode(
		    submit_sm_wire, (size_t)submit_sm_length, &pdu);
		total += pdu.sm_length + (uint8_t)pdu.destination_addr[0];
	}
	sink += total;
}

static void
ours_decode_receipt(uint64_t iterations)
{
	struct smpp_pdu pdu;
	struct smpp_tlv tlv;
	uint64_t i, total = 0;

	for (i = 0; i < iterations; i++) {
		total +=
		    smpp_pdu_decode(receipt_wire, (size_t)receipt_length, &pdu);
		total += pdu.sm_length + pdu.esm_class;
		/* A receipt is useless until its TLVs are read. */
		if (smpp_pdu_find_tlv(
			&pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, &tlv))
			total += tlv.length;
		if (smpp_pdu_find_tlv(&pdu, SMPP_TLV_MESSAGE_STATE, &tlv))
			total += tlv.integer;
	}
	sink += total;
}

static void
ours_encode_submit_sm(uint64_t iterations)
{
	uint8_t out[BUFFER_SIZE];
	uint64_t i, total = 0;

	for (i = 0; i < iterations; i++) {
		int length = smpp_pdu_encode(&submit_sm_pdu, out, sizeof(out));

		total += (uint64_t)length + out[length - 1];
	}
	sink += total;
}

static void
ours_encode_receipt(uint64_t iterations)
{
	uint8_t out[BUFFER_SIZE];
	uint64_t i, total = 0;

	for (i = 0; i < iterations; i++) {
		int length = smpp_pdu_encode(&receipt_pdu, out, sizeof(out));

		total += (uint64_t)length + out[length - 1];
	}
	sink += total;
}

/* libsmpp34 wants a zeroed struct and frees its TLV list afterwards. */
static void
peer_decode_submit_sm(uint64_t iterations)
{
	submit_sm_t pdu;
	uint64_t i, total = 0;

	for (i = 0; i < iterations; i++) {
		memset(&pdu, 0, sizeof(pdu));
		total += (uint64_t)smpp34_unpack2(
		    &pdu, submit_sm_wire, submit_sm_length);
		total += pdu.sm_length + pdu.destination_addr[0];
		destroy_tlv(pdu.tlv);
	}
	sink += total;
}

static void
peer_decode_receipt(uint64_t iterations)
{
	deliver_sm_t pdu;
	uint64_t i, total = 0;
	tlv_t *tlv;

	for (i = 0; i < iterations; i++) {
		memset(&pdu, 0, sizeof(pdu));
		total += (uint64_t)smpp34_unpack2(
		    &pdu, receipt_wire, receipt_length);
		total += pdu.sm_length + pdu.esm_class;
		for (tlv = pdu.tlv; tlv != NULL; tlv = tlv->next)
			total += tlv->length;
		destroy_tlv(pdu.tlv);
	}
	sink += total;
}

static void
peer_encode_submit_sm(uint64_t iterations)
{
	uint8_t out[BUFFER_SIZE];
	uint64_t i, total = 0;
	int length = 0;

	for (i = 0; i < iterations; i++) {
		total += (uint64_t)smpp34_pack2(
		    out, sizeof(out), &length, &their_submit_sm);
		total += (uint64_t)length + out[length - 1];
	}
	sink += total;
}

static void
peer_encode_receipt(uint64_t iterations)
{
	uint8_t out[BUFFER_SIZE];
	uint64_t i, total = 0;
	int length = 0;

	for (i = 0; i < iterations; i++) {
		total += (uint64_t)smpp34_pack2(
		    out, sizeof(out), &length, &their_receipt);
		total += (uint64_t)length + out[length - 1];
	}
	sink += total;
}

/* ---- the PDUs, built once on both sides --------------------------------- */

static void
setup_ours(void)
{
	struct smpp_pdu *p = &submit_sm_pdu;

	p->command_id = SMPP_SUBMIT_SM;
	p->sequence_number = 0x1234;
	p->service_type = "";
	p->source_addr_ton = 5;
	p->source_addr = "NudgeShop";
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	p->destination_addr = "447700900123";
	p->registered_delivery = 1;
	p->sm_length = (uint8_t)(sizeof(gsm_text) - 1);
	p->short_message = (const uint8_t *)gsm_text;
	p->tlvs = submit_sm_tlvs;
	p->tlv_count = 2;

	p = &receipt_pdu;
	p->command_id = SMPP_DELIVER_SM;
	p->sequence_number = 0x5678;
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "447700900123";
	p->dest_addr_ton = 5;
	p->destination_addr = "NudgeShop";
	p->esm_class = SMPP_ESM_CLASS_DELIVERY_RECEIPT;
	p->sm_length = (uint8_t)(sizeof(receipt_text) - 1);
	p->short_message = (const uint8_t *)receipt_text;
	p->tlvs = receipt_tlvs;
	p->tlv_count = 2;

	submit_sm_length = smpp_pdu_encode(
	    &submit_sm_pdu, submit_sm_wire, sizeof(submit_sm_wire));
	receipt_length =
	    smpp_pdu_encode(&receipt_pdu, receipt_wire, sizeof(receipt_wire));
	if (submit_sm_length < 0 || receipt_length < 0) {
		fprintf(stderr, "bench: cannot encode the sample PDUs\n");
		exit(1);
	}
}

/* libsmpp34's structs for the same values; its bytes must equal ours. */
static void
setup_peer(void)
{
	uint8_t out[BUFFER_SIZE];
	int length = 0;

	their_submit_sm.command_id = SUBMIT_SM;
	their_submit_sm.sequence_number = 0x1234;
	their_submit_sm.source_addr_ton = TON_Alphanumeric;
	strcpy((char *)their_submit_sm.source_addr, "NudgeShop");
	their_submit_sm.dest_addr_ton = TON_International;
	their_submit_sm.dest_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)their_submit_sm.destination_addr, "447700900123");
	their_submit_sm.registered_delivery = 1;
	their_submit_sm.sm_length = sizeof(gsm_text) - 1;
	memcpy(their_submit_sm.short_message, gsm_text, sizeof(gsm_text) - 1);
	their_submit_tlvs[0].tag = TLVID_user_message_reference;
	their_submit_tlvs[0].length = 2;
	their_submit_tlvs[0].value.val16 = 0x0102;
	their_submit_tlvs[0].next = &their_submit_tlvs[1];
	their_submit_tlvs[1].tag = TLVID_source_port;
	their_submit_tlvs[1].length = 2;
	their_submit_tlvs[1].value.val16 = 9200;
	their_submit_sm.tlv = &their_submit_tlvs[0];

	their_receipt.command_id = DELIVER_SM;
	their_receipt.sequence_number = 0x5678;
	their_receipt.source_addr_ton = TON_International;
	their_receipt.source_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)their_receipt.source_addr, "447700900123");
	their_receipt.dest_addr_ton = TON_Alphanumeric;
	strcpy((char *)their_receipt.destination_addr, "NudgeShop");
	their_receipt.esm_class = SMPP34_DELIVERY_RECEIPT;
	their_receipt.sm_length = sizeof(receipt_text) - 1;
	memcpy(their_receipt.short_message, receipt_text,
	    sizeof(receipt_text) - 1);
	their_receipt_tlvs[0].tag = TLVID_receipted_message_id;
	their_receipt_tlvs[0].length = sizeof(receipted_id);
	memcpy(their_receipt_tlvs[0].value.octet, receipted_id,
	    sizeof(receipted_id));
	their_receipt_tlvs[0].next = &their_receipt_tlvs[1];
	their_receipt_tlvs[1].tag = TLVID_message_state;
	their_receipt_tlvs[1].length = 1;
	their_receipt_tlvs[1].value.val08 = 2;
	their_receipt.tlv = &their_receipt_tlvs[0];

	if (smpp34_pack2(out, sizeof(out), &length, &their_submit_sm) != 0 ||
	    length != submit_sm_length ||
	    memcmp(out, submit_sm_wire, (size_t)length) != 0) {
		fprintf(stderr, "bench: libsmpp34 submit_sm differs: %s\n",
		    smpp34_strerror);
		exit(1);
	}
	if (smpp34_pack2(out, sizeof(out), &length, &their_receipt) != 0 ||
	    length != receipt_length ||
	    memcmp(out, receipt_wire, (size_t)length) != 0) {
		fprintf(stderr, "bench: libsmpp34 deliver_sm differs: %s\n",
		    smpp34_strerror);
		exit(1);
	}
}

/* ---- timing ------------------------------------------------------------- */

static int
compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nanoseconds per operation over RUNS runs of about RUN_SECONDS. */
struct timing {
	double median;
	double best;
};

static struct timing
measure(bench_fn *fn)
{
	double samples[RUNS], start, elapsed = 0;
	uint64_t iterations = 1000;
	struct timing timing;
	int run;

	/* Grow the batch until one takes a tenth of a run. */
	for (;;) {
		start = now_seconds();
		fn(iterations);
		elapsed = now_seconds() - start;
		if (elapsed >= RUN_SECONDS / 10)
			break;
		iterations *= 4;
	}
	iterations = (uint64_t)((double)iterations * RUN_SECONDS / elapsed);
	for (run = 0; run < RUNS; run++) {
		start = now_seconds();
		fn(iterations);
		samples[run] =
		    (now_seconds() - start) * 1e9 / (double)iterations;
	}
	qsort(samples, RUNS, sizeof(samples[0]), compare_doubles);
	timing.median = samples[RUNS / 2];
	timing.best = samples[0];
	return timing;
}

struct row {
	const char *name;
	const char *what;
	bench_fn *ours;
	bench_fn *peer;
};

static const struct row rows[] = {
    {"submit_sm_decode", "decode submit_sm, 160 chars + 2 TLVs",
	ours_decode_submit_sm, peer_decode_submit_sm},
    {"submit_sm_encode", "encode submit_sm, 160 chars + 2 TLVs",
	ours_encode_submit_sm, peer_encode_submit_sm},
    {"receipt_decode", "decode deliver_sm receipt + 2 TLVs",
	ours_decode_receipt, peer_decode_receipt},
    {"receipt_encode", "encode deliver_sm receipt + 2 TLVs",
	ours_encode_receipt, peer_encode_receipt},
};

int
main(void)
{
	struct timing ours[4], peer[4];
	size_t i, count = sizeof(rows) / sizeof(rows[0]);

	setup_ours();
	setup_peer();
	printf("smpp/ codec vs libsmpp34, one thread; median (and best) of %d "
	       "runs\n",
	    RUNS);
	printf("submit_sm %d octets, deliver_sm receipt %d octets\n\n",
	    submit_sm_length, receipt_length);
	printf("%-38s %8s %8s %11s %13s %7s\n", "operation", "ours ns", "best",
	    "ours PDU/s", "libsmpp34 ns", "ratio");
	for (i = 0; i < count; i++) {
		ours[i] = measure(rows[i].ours);
		peer[i] = measure(rows[i].peer);
		printf("%-38s %8.1f %8.1f %11.0f %13.1f %6.1fx\n", rows[i].what,
		    ours[i].median, ours[i].best, 1e9 / ours[i].median,
		    peer[i].median, peer[i].median / ours[i].median);
	}
	printf("\n");
	for (i = 0; i < count; i++)
		printf("BENCH name=%s ours_ns=%.1f peer_ns=%.1f ratio=%.2f "
		       "ours_best_ns=%.1f ours_pdus_per_s=%.0f\n",
		    rows[i].name, ours[i].median, peer[i].median,
		    peer[i].median / ours[i].median, ours[i].best,
		    1e9 / ours[i].median);
	return sink == 0 ? 1 : 0;
}
