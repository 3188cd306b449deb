/*
 * smsc-sim.c - a fast SMSC simulator for tests and benchmarks, on the smpp/
 * library and one libevent loop.
 *
 * ESMEs bind on 127.0.0.1 with one account; submit_sm and data_sm are
 * answered with ids from a 64-bit counter, at once or after a fixed latency,
 * with a seeded mix of throttling, queue-full and permanent errors.
 * Delivery receipts and injected MO messages go out as deliver_sm to bound
 * receivers, through each session's window, and wait in a queue while no
 * receiver is bound. Control comes from stdin lines and a small HTTP API.
 *
 * Built to be the sink of throughput benchmarks: PDUs are decoded in place
 * in the bufferevent's input, every response of one read callback is
 * encoded into one batch that reaches the output buffer at once, and
 * nothing is allocated per PDU (pools grow by doubling).
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "smpp.h"

#define LISTEN_ADDRESS      "127.0.0.1"
#define DEFAULT_PORT        2776
#define DEFAULT_WINDOW      1024
#define DEFAULT_MAX_PENDING 1000000
#define BIND_SYSTEM_ID      "smsc-sim"
#define BATCH_CAPACITY      (256 * 1024)
#define PDU_BUFFER_SIZE     1024 /* the largest PDU we encode */
#define MAX_SINGLE_IO       (256 * 1024)
#define OUTPUT_HIGH_WATER   (8 * 1024 * 1024)
#define OUTPUT_LOW_WATER    (1024 * 1024)
#define MAX_OUTCOMES        8
#define MESSAGE_ID_SIZE     24 /* 20 decimal digits and a NUL */
#define ADDRESS_SIZE        21 /* submit_sm/deliver_sm addresses */
#define REDELIVER_DELAY_US  1000000
#define HTTP_MAX_BODY       65536
#define STDIN_LINE_MAX      16384
#define HTTP_QUIT_DELAY_US  50000

struct simulator;

/* One receipt stat of the --outcomes mix. */
struct outcome {
	enum smpp_message_state state;
	unsigned int weight;
};

struct options {
	unsigned int port;
	int http_port; /* -1: no HTTP server */
	const char *system_id;
	const char *password;
	enum smpp_id_base id_base;
	enum smpp_id_base receipt_id_base;
	int receipt_id_base_given;
	uint64_t first_id;
	uint64_t latency_us;
	uint64_t receipt_delay_us;
	double throttle_rate;
	double queue_full_rate;
	double reject_rate;
	uint64_t seed;
	uint64_t throttle_window_start_us;
	uint64_t throttle_window_length_us;
	struct outcome outcomes[MAX_OUTCOMES];
	size_t outcome_count;
	unsigned int outcome_total;
	double receipt_first_rate;
	const char *record_path;
	uint64_t quit_after_us;
	unsigned int window;
	size_t max_pending;
	int verbose;
};

struct counters {
	uint64_t submits;
	uint64_t acked;
	uint64_t throttled;
	uint64_t queue_full;
	uint64_t rejected;
	uint64_t receipts;
	uint64_t receipts_acked;
	uint64_t mo;
	uint64_t binds;
	uint64_t mo_acked;
	uint64_t bind_failures;
	uint64_t deliver_errors;
	uint64_t receipts_dropped;
	uint64_t malformed;
	uint64_t connections;
};

/* Every counter by name; the first ones make up the STATS line. */
static const struct counter_field {
	const char *name;
	size_t offset;
	int in_stats_line;
} counter_fields[] = {
    {"submits", offsetof(struct counters, submits), 1},
    {"acked", offsetof(struct counters, acked), 1},
    {"throttled", offsetof(struct counters, throttled), 1},
    {"queue_full", offsetof(struct counters, queue_full), 1},
    {"rejected", offsetof(struct counters, rejected), 1},
    {"receipts", offsetof(struct counters, receipts), 1},
    {"receipts_acked", offsetof(struct counters, receipts_acked), 1},
    {"mo", offsetof(struct counters, mo), 1},
    {"binds", offsetof(struct counters, binds), 1},
    {"mo_acked", offsetof(struct counters, mo_acked), 0},
    {"bind_failures", offsetof(struct counters, bind_failures), 0},
    {"deliver_errors", offsetof(struct counters, deliver_errors), 0},
    {"receipts_dropped", offsetof(struct counters, receipts_dropped), 0},
    {"malformed", offsetof(struct counters, malformed), 0},
    {"connections", offsetof(struct counters, connections), 0},
};

enum outbound_kind {
	OUTBOUND_RECEIPT = 1,
	OUTBOUND_MO,
};

/*
 * A deliver_sm to send: a receipt or one MO part. It lives in the pool from
 * creation until the ESME acknowledges it; the index is the window cookie.
 */
struct outbound {
	uint64_t due;             /* monotonic us, while scheduled */
	uint64_t order;           /* ties on due keep creation order */
	uint64_t message_id;      /* receipts */
	int64_t submit_time;      /* receipts: epoch seconds */
	uint64_t origin_serial;   /* the submitting connection */
	uint64_t response_serial; /* owed a response after us; 0: none */
	uint32_t origin_slot;
	uint32_t response_slot;
	uint32_t response_sequence;
	uint32_t response_command;
	uint32_t next; /* waiting queue or free list: index+1 */
	uint8_t kind;
	uint8_t state; /* receipts: enum smpp_message_state */
	uint8_t source_ton;
	uint8_t source_npi;
	uint8_t dest_ton;
	uint8_t dest_npi;
	uint8_t esm_class;
	uint8_t data_coding;
	uint8_t length; /* of bytes */
	char source[ADDRESS_SIZE];
	char destination[ADDRESS_SIZE];
	uint8_t bytes[SMPP_SPLIT_PART_MAX_OCTETS]; /* MO part, or */
	/* the receipt's 20 octets of text */
};

/* A submit_sm_resp / data_sm_resp held back by --latency-ms. */
struct delayed_response {
	uint64_t due;
	uint64_t message_id;
	uint32_t sequence;
	uint32_t command_id;
};

struct connection {
	struct simulator *sim;
	struct bufferevent *bev;
	struct connection *previous;
	struct connection *next;
	uint64_t serial;
	uint32_t slot;
	int closing; /* close once output drained */
	int blocked; /* output full: reading paused */
	struct event *response_timer;
	struct delayed_response *responses; /* a ring */
	size_t response_head;
	size_t response_count;
	size_t response_capacity;
	struct smpp_session session;
};

struct simulator {
	struct options options;
	struct counters counters;
	struct event_base *base;
	struct evconnlistener *listener;
	struct evhttp *http;
	struct event *stdin_event;
	struct evbuffer *stdin_buffer;
	struct event *outbound_timer;
	struct event *stall_timer;
	struct event *quit_timer;
	struct event *signal_events[3];
	FILE *record;
	int record_dirty;
	uint64_t started;
	uint64_t next_message_id;
	uint64_t random_state;
	uint64_t next_serial;
	uint64_t next_order;
	uint64_t stalled_until; /* 0: not stalled */
	uint64_t throttled_until;
	uint16_t mo_reference;

	/* Connections: a list in accept order, and slots for handles. */
	struct connection *connections;
	struct connection *connections_tail;
	struct connection **slots;
	size_t slot_count;

	/* The outbound pool, its waiting queue and the schedule (a heap). */
	struct outbound *items;
	size_t item_capacity;
	size_t item_high; /* slots ever handed out */
	size_t item_live;
	uint32_t free_items;
	uint32_t waiting_head;
	uint32_t waiting_tail;
	size_t waiting_count;
	uint32_t *heap;
	size_t heap_count;

	/* Responses to the connection being read, written at once. */
	struct connection *batch_owner;
	size_t batch_used;
	uint8_t batch[BATCH_CAPACITY];

	/* Scratch for splitting one MO text. */
	struct smpp_split_part split_parts[SMPP_SPLIT_MAX_PARTS];
	uint8_t split_buffer[SMPP_SPLIT_MAX_PARTS * SMPP_SPLIT_PART_MAX_OCTETS];
};

static void connection_free(struct connection *);
static void connection_read_cb(struct bufferevent *, void *);
static void connection_flush_responses(struct connection *, uint64_t);
static void outbound_dispatch(struct simulator *, uint64_t);
static void outbound_run_schedule(struct simulator *, uint64_t);

/* ---- clock, randomness, formatting ------------------------------------ */

static uint64_t
monotonic_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

/* splitmix64: small, seedable, good enough for error mixes. */
static uint64_t
random_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double
random_unit(uint64_t *state)
{
	return (double)(random_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Writes id in base (hex uppercase, or decimal); returns its length. */
static size_t
format_id(uint64_t id, enum smpp_id_base base, char *out)
{
	static const char digits[] = "0123456789ABCDEF";
	char reversed[MESSAGE_ID_SIZE];
	size_t length = 0, i;

	do {
		if (base == SMPP_ID_BASE_HEX) {
			reversed[length++] = digits[id & 15];
			id >>= 4;
		} else {
			reversed[length++] = digits[id % 10];
			id /= 10;
		}
	} while (id != 0);
	for (i = 0; i < length; i++)
		out[i] = reversed[length - 1 - i];
	out[length] = '\0';
	return length;
}

/* Arms a timer for a monotonic due time (at once if it has passed). */
static void
timer_arm_at(struct event *timer, uint64_t due, uint64_t now)
{
	uint64_t delay = due > now ? due - now : 0;
	struct timeval tv;

	tv.tv_sec = (time_t)(delay / 1000000u);
	tv.tv_usec = (suseconds_t)(delay % 1000000u);
	evtimer_add(timer, &tv);
}

static void verbose(const struct simulator *sim, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* One diagnostic line on stderr with -v. */
static void
verbose(const struct simulator *sim, const char *format, ...)
{
	va_list arguments;

	if (!sim->options.verbose)
		return;
	fputs("smsc-sim: ", stderr);
	va_start(arguments, format);
	vfprintf(stderr, format, arguments);
	va_end(arguments);
	fputc('\n', stderr);
}

static uint64_t
counter_value(const struct counters *counters, const struct counter_field *f)
{
	const uint64_t *value;

	value = (const uint64_t *)(const void *)((const char *)counters +
						 f->offset);
	return *value;
}

/* The STATS line, on stderr. */
static void
stats_print(const struct simulator *sim)
{
	size_t i;

	fputs("STATS", stderr);
	for (i = 0; i < sizeof(counter_fields) / sizeof(counter_fields[0]); i++)
		if (counter_fields[i].in_stats_line)
			fprintf(stderr, " %s=%" PRIu64, counter_fields[i].name,
			    counter_value(&sim->counters, &counter_fields[i]));
	fputc('\n', stderr);
	fflush(stderr);
}

/* ---- the record file (--record) ---------------------------------------- */

/* An address as one field: "-" if empty, odd bytes as %XX. */
static void
record_address(FILE *record, const char *address)
{
	const unsigned char *p = (const unsigned char *)address;

	if (p == NULL || *p == '\0') {
		fputc('-', record);
		return;
	}
	for (; *p != '\0'; p++) {
		if (*p <= 0x20 || *p >= 0x7F || *p == '%')
			fprintf(record, "%%%02X", *p);
		else
			fputc(*p, record);
	}
}

/* One line per accepted submit_sm / data_sm. */
static void
record_submit(struct simulator *sim, const struct smpp_pdu *pdu,
    const char *message_id, const uint8_t *message, size_t length)
{
	static const char hex[] = "0123456789abcdef";
	struct smpp_tlv reference, total, sequence;
	FILE *record = sim->record;
	size_t i;

	fprintf(record, "%s %" PRIu32 " ", message_id, pdu->sequence_number);
	record_address(record, pdu->source_addr);
	fputc(' ', record);
	record_address(record, pdu->destination_addr);
	fprintf(record, " %u %u %u %zu ", pdu->esm_class, pdu->data_coding,
	    pdu->registered_delivery, length);
	if (length == 0)
		fputc('-', record);
	for (i = 0; i < length; i++) {
		fputc(hex[message[i] >> 4], record);
		fputc(hex[message[i] & 15], record);
	}
	if (smpp_pdu_find_tlv(pdu, SMPP_TLV_SAR_MSG_REF_NUM, &reference) &&
	    smpp_pdu_find_tlv(pdu, SMPP_TLV_SAR_TOTAL_SEGMENTS, &total) &&
	    smpp_pdu_find_tlv(pdu, SMPP_TLV_SAR_SEGMENT_SEQNUM, &sequence))
		fprintf(record,
		    " sar_msg_ref_num=%" PRIu32 " sar_total_segments=%" PRIu32
		    " sar_segment_seqnum=%" PRIu32,
		    reference.integer, total.integer, sequence.integer);
	fputc('\n', record);
	sim->record_dirty = 1;
}

/* Why before the batch goes out: a line is on disk before its response. */
static void
record_flush(struct simulator *sim)
{
	if (sim->record != NULL && sim->record_dirty) {
		fflush(sim->record);
		sim->record_dirty = 0;
	}
}

/* ---- connections: lookup, output, closing ----------------------------- */

static struct connection *
connection_lookup(const struct simulator *sim, uint32_t slot, uint64_t serial)
{
	struct connection *conn;

	if (serial == 0 || slot >= sim->slot_count)
		return NULL;
	conn = sim->slots[slot];
	return conn != NULL && conn->serial == serial ? conn : NULL;
}

/* Pauses reading while the peer leaves too much output unread. */
static void
connection_check_output(struct connection *conn)
{
	struct evbuffer *output = bufferevent_get_output(conn->bev);

	if (!conn->blocked && evbuffer_get_length(output) > OUTPUT_HIGH_WATER) {
		conn->blocked = 1;
		bufferevent_disable(conn->bev, EV_READ);
	}
}

/* Moves the batch into its connection's output buffer. */
static void
batch_flush(struct simulator *sim)
{
	struct connection *conn = sim->batch_owner;

	record_flush(sim);
	if (conn == NULL || sim->batch_used == 0)
		return;
	evbuffer_add(
	    bufferevent_get_output(conn->bev), sim->batch, sim->batch_used);
	sim->batch_used = 0;
	connection_check_output(conn);
}

static void
batch_begin(struct simulator *sim, struct connection *conn)
{
	sim->batch_owner = conn;
	sim->batch_used = 0;
}

static void
batch_end(struct simulator *sim)
{
	batch_flush(sim);
	sim->batch_owner = NULL;
}

/* Queues bytes for a connection: into the batch if it owns it. */
static void
connection_send(struct connection *conn, const uint8_t *bytes, int length)
{
	struct simulator *sim = conn->sim;

	if (length <= 0)
		return;
	if (sim->batch_owner == conn) {
		if (sim->batch_used + (size_t)length > sizeof(sim->batch))
			batch_flush(sim);
		memcpy(sim->batch + sim->batch_used, bytes, (size_t)length);
		sim->batch_used += (size_t)length;
		return;
	}
	evbuffer_add(bufferevent_get_output(conn->bev), bytes, (size_t)length);
	connection_check_output(conn);
}

static void
send_generic_nack(struct connection *conn, uint32_t sequence, uint32_t status)
{
	uint8_t out[SMPP_HEADER_LENGTH];

	connection_send(conn, out,
	    smpp_pdu_encode_generic_nack(out, sizeof(out), sequence, status));
}

/* Stops reading; the connection closes once its output is written. */
static void
connection_close_soon(struct connection *conn)
{
	conn->closing = 1;
	bufferevent_disable(conn->bev, EV_READ);
}

/* Frees a closing connection whose output has drained. */
static void
connection_settle(struct connection *conn)
{
	struct simulator *sim = conn->sim;

	if (conn->closing &&
	    evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0) {
		connection_free(conn);
		outbound_dispatch(sim, monotonic_us());
	}
}

/* ---- the outbound pool: receipts and MO parts ------------------------- */

/* Takes a zeroed item from the pool; 0 when --max-pending is reached. */
static uint32_t
outbound_new(struct simulator *sim)
{
	struct outbound *items;
	uint32_t *heap;
	size_t capacity;
	uint32_t index;

	if (sim->free_items != 0) {
		index = sim->free_items - 1;
		sim->free_items = sim->items[index].next;
	} else {
		if (sim->item_high == sim->item_capacity) {
			if (sim->item_capacity >= sim->options.max_pending)
				return 0;
			capacity =
			    sim->item_capacity ? 2 * sim->item_capacity : 1024;
			if (capacity > sim->options.max_pending)
				capacity = sim->options.max_pending;
			/* Indices stay valid across the move; pointers not. */
			items = realloc(sim->items, capacity * sizeof(*items));
			if (items == NULL)
				return 0;
			sim->items = items;
			heap = realloc(sim->heap, capacity * sizeof(*heap));
			if (heap == NULL)
				return 0;
			sim->heap = heap;
			sim->item_capacity = capacity;
		}
		index = (uint32_t)sim->item_high++;
	}
	memset(&sim->items[index], 0, sizeof(sim->items[index]));
	sim->items[index].order = sim->next_order++;
	sim->item_live++;
	return index + 1;
}

static void
outbound_release(struct simulator *sim, uint32_t index)
{
	sim->items[index].next = sim->free_items;
	sim->free_items = index + 1;
	sim->item_live--;
}

static void
waiting_append(struct simulator *sim, uint32_t index)
{
	sim->items[index].next = 0;
	if (sim->waiting_tail != 0)
		sim->items[sim->waiting_tail - 1].next = index + 1;
	else
		sim->waiting_head = index + 1;
	sim->waiting_tail = index + 1;
	sim->waiting_count++;
}

static void
waiting_prepend(struct simulator *sim, uint32_t index)
{
	sim->items[index].next = sim->waiting_head;
	sim->waiting_head = index + 1;
	if (sim->waiting_tail == 0)
		sim->waiting_tail = index + 1;
	sim->waiting_count++;
}

static uint32_t
waiting_pop(struct simulator *sim)
{
	uint32_t index = sim->waiting_head - 1;

	sim->waiting_head = sim->items[index].next;
	if (sim->waiting_head == 0)
		sim->waiting_tail = 0;
	sim->waiting_count--;
	return index;
}

static int
heap_before(const struct simulator *sim, uint32_t a, uint32_t b)
{
	const struct outbound *x = &sim->items[a], *y = &sim->items[b];

	return x->due < y->due || (x->due == y->due && x->order < y->order);
}

/* Schedules an item at its due time (a binary min-heap of indices). */
static void
heap_push(struct simulator *sim, uint32_t index, uint64_t now)
{
	size_t at = sim->heap_count++, parent;

	while (at > 0) {
		parent = (at - 1) / 2;
		if (!heap_before(sim, index, sim->heap[parent]))
			break;
		sim->heap[at] = sim->heap[parent];
		at = parent;
	}
	sim->heap[at] = index;
	if (at == 0 && sim->stalled_until == 0)
		timer_arm_at(sim->outbound_timer, sim->items[index].due, now);
}

static uint32_t
heap_pop(struct simulator *sim)
{
	uint32_t top = sim->heap[0], last = sim->heap[--sim->heap_count];
	size_t at = 0, child;

	while ((child = 2 * at + 1) < sim->heap_count) {
		if (child + 1 < sim->heap_count &&
		    heap_before(sim, sim->heap[child + 1], sim->heap[child]))
			child++;
		if (!heap_before(sim, sim->heap[child], last))
			break;
		sim->heap[at] = sim->heap[child];
		at = child;
	}
	if (sim->heap_count > 0)
		sim->heap[at] = last;
	return top;
}

static int
connection_can_deliver(const struct connection *conn)
{
	return !conn->closing && !conn->blocked &&
	       (conn->session.state == SMPP_SESSION_BOUND_RX ||
		   conn->session.state == SMPP_SESSION_BOUND_TRX) &&
	       smpp_session_window_available(&conn->session) > 0;
}

/* The session for an item: where its submit came from, else the oldest. */
static struct connection *
outbound_receiver(struct simulator *sim, const struct outbound *item)
{
	struct connection *conn;

	conn = connection_lookup(sim, item->origin_slot, item->origin_serial);
	if (conn != NULL && connection_can_deliver(conn))
		return conn;
	for (conn = sim->connections; conn != NULL; conn = conn->next)
		if (connection_can_deliver(conn))
			return conn;
	return NULL;
}

static void
send_message_response(struct connection *conn, uint32_t command_id,
    uint32_t sequence, uint32_t status, uint64_t message_id)
{
	struct simulator *sim = conn->sim;
	char id[MESSAGE_ID_SIZE];
	uint8_t out[PDU_BUFFER_SIZE];
	struct smpp_pdu pdu;

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = command_id;
	pdu.command_status = status;
	pdu.sequence_number = sequence;
	if (status == SMPP_ESME_ROK) {
		format_id(message_id, sim->options.id_base, id);
		pdu.message_id = id;
		sim->counters.acked++;
	}
	connection_send(conn, out, smpp_pdu_encode(&pdu, out, sizeof(out)));
}

/* Sends the response an item owes (receipt before response), if any. */
static void
outbound_send_owed_response(struct simulator *sim, struct outbound *item)
{
	struct connection *conn;

	if (item->response_serial == 0)
		return;
	conn =
	    connection_lookup(sim, item->response_slot, item->response_serial);
	if (conn != NULL && !conn->closing)
		send_message_response(conn, item->response_command,
		    item->response_sequence, SMPP_ESME_ROK, item->message_id);
	item->response_serial = 0;
}

/* Encodes an item as deliver_sm; returns the length or a negative error. */
static int
outbound_encode(struct simulator *sim, const struct outbound *item,
    uint32_t sequence, uint8_t *out, size_t capacity)
{
	char text[SMPP_RECEIPT_MAX_LENGTH], response_id[MESSAGE_ID_SIZE];
	struct smpp_receipt receipt;
	struct smpp_tlv tlvs[2];
	struct smpp_pdu pdu;
	int length;

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_DELIVER_SM;
	pdu.sequence_number = sequence;
	pdu.source_addr_ton = item->source_ton;
	pdu.source_addr_npi = item->source_npi;
	pdu.source_addr = item->source;
	pdu.dest_addr_ton = item->dest_ton;
	pdu.dest_addr_npi = item->dest_npi;
	pdu.destination_addr = item->destination;
	pdu.esm_class = item->esm_class;
	pdu.data_coding = item->data_coding;
	if (item->kind == OUTBOUND_MO) {
		pdu.short_message = item->bytes;
		pdu.sm_length = item->length;
		return smpp_pdu_encode(&pdu, out, capacity);
	}

	memset(&receipt, 0, sizeof(receipt));
	receipt.fields = SMPP_RECEIPT_ID | SMPP_RECEIPT_SUBMITTED |
			 SMPP_RECEIPT_DELIVERED | SMPP_RECEIPT_SUBMIT_TIME |
			 SMPP_RECEIPT_DONE_TIME | SMPP_RECEIPT_STAT |
			 SMPP_RECEIPT_ERROR_CODE | SMPP_RECEIPT_TEXT;
	format_id(item->message_id, sim->options.receipt_id_base, receipt.id);
	receipt.submitted = 1;
	receipt.delivered = item->state == SMPP_MESSAGE_STATE_DELIVERED;
	receipt.submit_time = item->submit_time;
	receipt.done_time = (int64_t)time(NULL);
	receipt.state = (enum smpp_message_state)item->state;
	receipt.error_code =
	    item->state == SMPP_MESSAGE_STATE_DELIVERED ? 0 : 1;
	receipt.text = item->bytes;
	receipt.text_length = item->length;
	length = smpp_receipt_format(&receipt, text, sizeof(text));
	if (length < 0)
		return SMPP_PDU_ENCODE_FIELD_TOO_LONG;
	format_id(item->message_id, sim->options.id_base, response_id);
	tlvs[0] = smpp_tlv_c_string(SMPP_TLV_RECEIPTED_MESSAGE_ID, response_id);
	tlvs[1] = smpp_tlv_integer(SMPP_TLV_MESSAGE_STATE, item->state);
	pdu.short_message = (const uint8_t *)text;
	pdu.sm_length = (uint8_t)length;
	pdu.tlvs = tlvs;
	pdu.tlv_count = 2;
	return smpp_pdu_encode(&pdu, out, capacity);
}

/* Sends one item on conn (which has window room), then what it owes. */
static void
outbound_send(struct simulator *sim, struct connection *conn, uint32_t index,
    uint64_t now)
{
	struct outbound *item = &sim->items[index];
	uint8_t out[PDU_BUFFER_SIZE];
	uint32_t sequence;
	int length;

	if (smpp_session_send_request(&conn->session, SMPP_DELIVER_SM, index,
		now, &sequence) != SMPP_ESME_ROK) {
		waiting_prepend(sim, index);
		return;
	}
	length = outbound_encode(sim, item, sequence, out, sizeof(out));
	if (length < 0) {
		/* Cannot happen with the sizes we store; never loop on it. */
		fprintf(stderr, "smsc-sim: deliver_sm not encoded: %s\n",
		    smpp_pdu_encode_error_name(length));
		outbound_send_owed_response(sim, item);
		return;
	}
	connection_send(conn, out, length);
	if (item->kind == OUTBOUND_RECEIPT)
		sim->counters.receipts++;
	else
		sim->counters.mo++;
	outbound_send_owed_response(sim, item);
}

/* Sends waiting items while some receiver has window room. */
static void
outbound_dispatch(struct simulator *sim, uint64_t now)
{
	struct connection *conn;

	while (sim->waiting_head != 0 && sim->stalled_until == 0) {
		conn =
		    outbound_receiver(sim, &sim->items[sim->waiting_head - 1]);
		if (conn == NULL)
			break;
		outbound_send(sim, conn, waiting_pop(sim), now);
	}
}

/*
 * An item is due. One that owes a response goes out at once if a receiver
 * can take it; otherwise the response is not held hostage: it is sent now
 * and the item waits its turn.
 */
static void
outbound_ready(struct simulator *sim, uint32_t index, uint64_t now)
{
	struct outbound *item = &sim->items[index];
	struct connection *conn;

	if (item->response_serial != 0) {
		conn = sim->stalled_until == 0 ? outbound_receiver(sim, item)
					       : NULL;
		if (conn != NULL) {
			outbound_send(sim, conn, index, now);
			return;
		}
		outbound_send_owed_response(sim, item);
	}
	waiting_append(sim, index);
}

/* What the ESME answered to a deliver_sm. */
static void
outbound_acknowledged(
    struct simulator *sim, uint32_t index, uint32_t status, uint64_t now)
{
	struct outbound *item = &sim->items[index];

	if (status == SMPP_ESME_ROK) {
		if (item->kind == OUTBOUND_RECEIPT)
			sim->counters.receipts_acked++;
		else
			sim->counters.mo_acked++;
		outbound_release(sim, index);
		return;
	}
	sim->counters.deliver_errors++;
	/* As real SMSCs do: a temporary refusal is retried later. */
	if (smpp_status_is_temporary(status)) {
		item->due = now + REDELIVER_DELAY_US;
		heap_push(sim, index, now);
	} else
		outbound_release(sim, index);
}

/* Moves every scheduled item that is due to the waiting queue. */
static void
outbound_run_schedule(struct simulator *sim, uint64_t now)
{
	if (sim->stalled_until != 0)
		return;
	while (sim->heap_count > 0 && sim->items[sim->heap[0]].due <= now)
		outbound_ready(sim, heap_pop(sim), now);
	outbound_dispatch(sim, now);
	if (sim->heap_count > 0)
		timer_arm_at(
		    sim->outbound_timer, sim->items[sim->heap[0]].due, now);
}

static void
outbound_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	outbound_run_schedule(arg, monotonic_us());
}

/* ---- requests ----------------------------------------------------------- */

static void
handle_bind(struct connection *conn, const struct smpp_pdu *pdu, uint64_t now)
{
	struct simulator *sim = conn->sim;
	uint32_t status = SMPP_ESME_ROK, response_id;
	uint8_t out[PDU_BUFFER_SIZE];
	struct smpp_pdu response;

	if (pdu->system_id == NULL ||
	    strcmp(pdu->system_id, sim->options.system_id) != 0)
		status = SMPP_ESME_RINVSYSID;
	else if (pdu->password == NULL ||
		 strcmp(pdu->password, sim->options.password) != 0)
		status = SMPP_ESME_RINVPASWD;
	response_id = pdu->command_id | SMPP_RESPONSE_BIT;
	memset(&response, 0, sizeof(response));
	response.command_id = response_id;
	response.command_status = status;
	response.sequence_number = pdu->sequence_number;
	response.system_id = BIND_SYSTEM_ID;
	connection_send(
	    conn, out, smpp_pdu_encode(&response, out, sizeof(out)));
	smpp_session_send_response(&conn->session, response_id, status, now);
	if (status != SMPP_ESME_ROK) {
		sim->counters.bind_failures++;
		verbose(sim, "connection %" PRIu64 ": %s as %s refused: %s",
		    conn->serial, smpp_command_name(pdu->command_id),
		    pdu->system_id, smpp_status_name(status));
		return;
	}
	sim->counters.binds++;
	verbose(sim, "connection %" PRIu64 ": %s as %s", conn->serial,
	    smpp_command_name(pdu->command_id), pdu->system_id);
}

/* The status a submit gets: throttle periods first, then the error mix. */
static uint32_t
choose_status(struct simulator *sim, uint64_t now)
{
	const struct options *options = &sim->options;
	uint64_t elapsed = now - sim->started;
	double draw;

	if (now < sim->throttled_until)
		return SMPP_ESME_RTHROTTLED;
	if (options->throttle_window_length_us != 0 &&
	    elapsed >= options->throttle_window_start_us &&
	    elapsed - options->throttle_window_start_us <
		options->throttle_window_length_us)
		return SMPP_ESME_RTHROTTLED;
	if (options->throttle_rate + options->queue_full_rate +
		options->reject_rate <=
	    0)
		return SMPP_ESME_ROK;
	draw = random_unit(&sim->random_state);
	if (draw < options->throttle_rate)
		return SMPP_ESME_RTHROTTLED;
	draw -= options->throttle_rate;
	if (draw < options->queue_full_rate)
		return SMPP_ESME_RMSGQFUL;
	draw -= options->queue_full_rate;
	if (draw < options->reject_rate)
		return SMPP_ESME_RSUBMITFAIL;
	return SMPP_ESME_ROK;
}

/* The receipt's final state, from the --outcomes weights. */
static enum smpp_message_state
choose_outcome(struct simulator *sim)
{
	const struct options *options = &sim->options;
	unsigned int draw;
	size_t i;

	if (options->outcome_count == 1)
		return options->outcomes[0].state;
	draw = (unsigned int)(random_next(&sim->random_state) %
			      options->outcome_total);
	for (i = 0; i < options->outcome_count - 1; i++) {
		if (draw < options->outcomes[i].weight)
			break;
		draw -= options->outcomes[i].weight;
	}
	return options->outcomes[i].state;
}

static void
copy_address(char *out, const char *address)
{
	size_t length =
	    address != NULL ? strnlen(address, ADDRESS_SIZE - 1) : 0;

	if (length > 0)
		memcpy(out, address, length);
	out[length] = '\0';
}

/* Schedules the receipt of an accepted submit. */
static void
schedule_receipt(struct connection *conn, const struct smpp_pdu *pdu,
    const uint8_t *message, size_t length, uint64_t message_id,
    enum smpp_message_state state, int receipt_first, uint64_t now)
{
	struct simulator *sim = conn->sim;
	enum smpp_data_coding alphabet;
	struct outbound *item;
	uint64_t due;
	uint32_t index;

	if ((index = outbound_new(sim)) == 0) {
		sim->counters.receipts_dropped++;
		if (receipt_first)
			send_message_response(conn,
			    pdu->command_id | SMPP_RESPONSE_BIT,
			    pdu->sequence_number, SMPP_ESME_ROK, message_id);
		return;
	}
	item = &sim->items[--index];
	item->kind = OUTBOUND_RECEIPT;
	item->state = (uint8_t)state;
	item->message_id = message_id;
	item->submit_time = (int64_t)time(NULL);
	item->origin_slot = conn->slot;
	item->origin_serial = conn->serial;
	/* The receipt travels back: the handset is its source. */
	item->source_ton = pdu->dest_addr_ton;
	item->source_npi = pdu->dest_addr_npi;
	copy_address(item->source, pdu->destination_addr);
	item->dest_ton = pdu->source_addr_ton;
	item->dest_npi = pdu->source_addr_npi;
	copy_address(item->destination, pdu->source_addr);
	item->esm_class = SMPP_ESM_CLASS_DELIVERY_RECEIPT;
	/* Appendix B text: the first 20 octets, for text alphabets only. */
	if ((pdu->esm_class & SMPP_ESM_CLASS_UDHI) && length > 0) {
		if ((size_t)message[0] + 1 >= length)
			length = 0;
		else {
			length -= (size_t)message[0] + 1;
			message += message[0] + 1;
		}
	}
	alphabet = smpp_charset_alphabet(pdu->data_coding);
	if (alphabet != SMPP_CODING_DEFAULT && alphabet != SMPP_CODING_IA5 &&
	    alphabet != SMPP_CODING_LATIN1)
		length = 0;
	if (length > SMPP_RECEIPT_TEXT_LENGTH)
		length = SMPP_RECEIPT_TEXT_LENGTH;
	if (length > 0)
		memcpy(item->bytes, message, length);
	item->length = (uint8_t)length;

	due = now + sim->options.receipt_delay_us;
	if (receipt_first) {
		item->response_slot = conn->slot;
		item->response_serial = conn->serial;
		item->response_sequence = pdu->sequence_number;
		item->response_command = pdu->command_id | SMPP_RESPONSE_BIT;
		if (due < now + sim->options.latency_us)
			due = now + sim->options.latency_us;
	}
	if (due <= now && sim->stalled_until == 0) {
		outbound_ready(sim, index, now);
		return;
	}
	item->due = due;
	heap_push(sim, index, now);
}

/* Holds a response back for --latency-ms (the ring grows by doubling). */
static void
connection_delay_response(struct connection *conn, uint32_t command_id,
    uint32_t sequence, uint64_t message_id, uint64_t now)
{
	struct delayed_response *ring, *slot;
	size_t capacity, i;

	if (conn->response_count == conn->response_capacity) {
		capacity =
		    conn->response_capacity ? 2 * conn->response_capacity : 256;
		ring = malloc(capacity * sizeof(*ring));
		if (ring == NULL) {
			send_message_response(conn, command_id, sequence,
			    SMPP_ESME_ROK, message_id);
			return;
		}
		for (i = 0; i < conn->response_count; i++)
			ring[i] = conn->responses[(conn->response_head + i) %
						  conn->response_capacity];
		free(conn->responses);
		conn->responses = ring;
		conn->response_capacity = capacity;
		conn->response_head = 0;
	}
	slot = &conn->responses[(conn->response_head + conn->response_count) %
				conn->response_capacity];
	slot->due = now + conn->sim->options.latency_us;
	slot->message_id = message_id;
	slot->sequence = sequence;
	slot->command_id = command_id;
	if (conn->response_count++ == 0 && conn->sim->stalled_until == 0)
		timer_arm_at(conn->response_timer, slot->due, now);
}

/* submit_sm and data_sm. */
static void
handle_submit(struct connection *conn, const struct smpp_pdu *pdu, uint64_t now)
{
	struct simulator *sim = conn->sim;
	const struct options *options = &sim->options;
	enum smpp_message_state state = SMPP_MESSAGE_STATE_DELIVERED;
	uint32_t response_id = pdu->command_id | SMPP_RESPONSE_BIT, status;
	const uint8_t *message = pdu->short_message;
	size_t length = pdu->sm_length;
	char id[MESSAGE_ID_SIZE];
	int receipt = 0, receipt_first = 0;
	struct smpp_tlv payload;
	uint64_t message_id;

	sim->counters.submits++;
	status = choose_status(sim, now);
	if (status != SMPP_ESME_ROK) {
		if (status == SMPP_ESME_RTHROTTLED)
			sim->counters.throttled++;
		else if (status == SMPP_ESME_RMSGQFUL)
			sim->counters.queue_full++;
		else
			sim->counters.rejected++;
		send_message_response(
		    conn, response_id, pdu->sequence_number, status, 0);
		return;
	}
	message_id = sim->next_message_id++;
	if (length == 0 &&
	    smpp_pdu_find_tlv(pdu, SMPP_TLV_MESSAGE_PAYLOAD, &payload)) {
		message = payload.value;
		length = payload.length;
	}
	if (sim->record != NULL) {
		format_id(message_id, options->id_base, id);
		record_submit(sim, pdu, id, message, length);
	}
	/* registered_delivery bits 0-1: 1 (or 3) always, 2 on failure. */
	switch (pdu->registered_delivery & 3) {
	case 1:
	case 3:
		state = choose_outcome(sim);
		receipt = 1;
		break;
	case 2:
		state = choose_outcome(sim);
		receipt = state != SMPP_MESSAGE_STATE_DELIVERED;
		break;
	}
	if (receipt && options->receipt_first_rate > 0)
		receipt_first = random_unit(&sim->random_state) <
				options->receipt_first_rate;
	if (!receipt_first) {
		if (options->latency_us == 0)
			send_message_response(conn, response_id,
			    pdu->sequence_number, SMPP_ESME_ROK, message_id);
		else
			connection_delay_response(conn, response_id,
			    pdu->sequence_number, message_id, now);
	}
	if (receipt)
		schedule_receipt(conn, pdu, message, length, message_id, state,
		    receipt_first, now);
}

static void
handle_enquire_link(
    struct connection *conn, const struct smpp_pdu *pdu, uint64_t now)
{
	uint8_t out[SMPP_HEADER_LENGTH];

	connection_send(conn, out,
	    smpp_pdu_encode_enquire_link_resp(
		out, sizeof(out), pdu->sequence_number));
}

static void
handle_unbind(struct connection *conn, const struct smpp_pdu *pdu, uint64_t now)
{
	uint8_t out[SMPP_HEADER_LENGTH];

	/* Responses still held back go first, then unbind_resp. */
	connection_flush_responses(conn, UINT64_MAX);
	connection_send(conn, out,
	    smpp_pdu_encode_unbind_resp(
		out, sizeof(out), pdu->sequence_number, SMPP_ESME_ROK));
	smpp_session_send_response(
	    &conn->session, SMPP_UNBIND_RESP, SMPP_ESME_ROK, now);
	verbose(conn->sim, "connection %" PRIu64 ": unbind", conn->serial);
	connection_close_soon(conn);
}

typedef void request_handler_fn(
    struct connection *, const struct smpp_pdu *, uint64_t);

/* Requests the simulator serves; others get generic_nack RINVCMDID. */
static const struct request_handler {
	uint32_t command_id;
	request_handler_fn *handle;
} request_handlers[] = {
    {SMPP_SUBMIT_SM, handle_submit},
    {SMPP_DATA_SM, handle_submit},
    {SMPP_ENQUIRE_LINK, handle_enquire_link},
    {SMPP_BIND_TRANSCEIVER, handle_bind},
    {SMPP_BIND_TRANSMITTER, handle_bind},
    {SMPP_BIND_RECEIVER, handle_bind},
    {SMPP_UNBIND, handle_unbind},
};

static request_handler_fn *
find_request_handler(uint32_t command_id)
{
	size_t i;

	for (i = 0; i < sizeof(request_handlers) / sizeof(request_handlers[0]);
	     i++)
		if (request_handlers[i].command_id == command_id)
			return request_handlers[i].handle;
	return NULL;
}

/* One framed PDU, decoded in place. */
static void
connection_handle_pdu(
    struct connection *conn, const uint8_t *data, size_t length, uint64_t now)
{
	struct simulator *sim = conn->sim;
	struct smpp_session_event event;
	request_handler_fn *handle;
	struct smpp_pdu pdu;
	uint8_t out[SMPP_HEADER_LENGTH];
	uint32_t status;

	status = smpp_pdu_decode(data, length, &pdu);
	/* A response with a broken body still settles its request. */
	if (status != SMPP_ESME_ROK &&
	    !((pdu.command_id & SMPP_RESPONSE_BIT) &&
		smpp_pdu_is_known_command(pdu.command_id))) {
		sim->counters.malformed++;
		send_generic_nack(conn, pdu.sequence_number, status);
		return;
	}
	smpp_session_receive(&conn->session, pdu.command_id, pdu.command_status,
	    pdu.sequence_number, now, &event);
	switch (event.type) {
	case SMPP_SESSION_EVENT_REQUEST:
		if (event.status != SMPP_ESME_ROK) {
			if (event.response_command_id != 0)
				connection_send(conn, out,
				    smpp_pdu_encode_header_only(out,
					sizeof(out), event.response_command_id,
					event.status, pdu.sequence_number));
			return;
		}
		if ((handle = find_request_handler(pdu.command_id)) != NULL)
			handle(conn, &pdu, now);
		else if (event.response_command_id != 0)
			send_generic_nack(
			    conn, pdu.sequence_number, SMPP_ESME_RINVCMDID);
		break;
	case SMPP_SESSION_EVENT_RESPONSE:
		if (event.request_command_id == SMPP_DELIVER_SM)
			outbound_acknowledged(
			    sim, (uint32_t)event.cookie, event.status, now);
		break;
	default:
		break;
	}
}

/* command_length out of bounds: generic_nack RINVCMDLEN, then close. */
static void
connection_refuse_length(struct connection *conn, struct evbuffer *input)
{
	size_t available = evbuffer_get_length(input);
	uint8_t header[SMPP_HEADER_LENGTH];
	uint32_t sequence = 0;

	if (available >= SMPP_HEADER_LENGTH) {
		evbuffer_copyout(input, header, sizeof(header));
		sequence = (uint32_t)header[12] << 24 |
			   (uint32_t)header[13] << 16 |
			   (uint32_t)header[14] << 8 | header[15];
	}
	conn->sim->counters.malformed++;
	send_generic_nack(conn, sequence, SMPP_ESME_RINVCMDLEN);
	evbuffer_drain(input, available);
	verbose(conn->sim, "connection %" PRIu64 ": invalid command_length",
	    conn->serial);
	connection_close_soon(conn);
}

/*
 * Handles every whole PDU in the input. PDUs inside the first chunk are
 * decoded where they lie and drained together; only one that straddles
 * two chunks is pulled up into one piece first.
 */
static void
connection_process_input(
    struct connection *conn, struct evbuffer *input, uint64_t now)
{
	struct evbuffer_iovec chunk;
	enum smpp_frame_result result;
	const uint8_t *data;
	uint8_t head[4];
	uint32_t pdu_length;
	size_t available, offset;

	while (
	    !conn->closing && (available = evbuffer_get_length(input)) >= 4) {
		if (evbuffer_peek(input, -1, NULL, &chunk, 1) < 1)
			break;
		data = chunk.iov_base;
		offset = 0;
		while (!conn->closing && chunk.iov_len - offset >= 4 &&
		       smpp_pdu_frame(data + offset, chunk.iov_len - offset, 0,
			   &pdu_length) == SMPP_FRAME_COMPLETE) {
			connection_handle_pdu(
			    conn, data + offset, pdu_length, now);
			offset += pdu_length;
		}
		if (offset > 0) {
			evbuffer_drain(input, offset);
			continue;
		}
		evbuffer_copyout(input, head, sizeof(head));
		result = smpp_pdu_frame(head, available, 0, &pdu_length);
		if (result == SMPP_FRAME_INVALID) {
			connection_refuse_length(conn, input);
			break;
		}
		if (result == SMPP_FRAME_NEED_MORE)
			break;
		data = evbuffer_pullup(input, pdu_length);
		if (data == NULL)
			break;
		connection_handle_pdu(conn, data, pdu_length, now);
		evbuffer_drain(input, pdu_length);
	}
}

static void
connection_read_cb(struct bufferevent *bev, void *arg)
{
	struct connection *conn = arg;
	struct simulator *sim = conn->sim;
	uint64_t now;

	if (conn->closing || conn->blocked || sim->stalled_until != 0)
		return;
	now = monotonic_us();
	batch_begin(sim, conn);
	connection_process_input(conn, bufferevent_get_input(bev), now);
	/* Window room freed by this batch's acks goes to waiting items. */
	if (sim->waiting_head != 0)
		outbound_dispatch(sim, now);
	batch_end(sim);
	connection_settle(conn);
}

/* Sends the held-back responses due by now, then re-arms the timer. */
static void
connection_flush_responses(struct connection *conn, uint64_t now)
{
	struct delayed_response *head;
	struct simulator *sim = conn->sim;
	int owns_batch = sim->batch_owner == NULL;

	if (owns_batch)
		batch_begin(sim, conn);
	while (conn->response_count > 0) {
		head = &conn->responses[conn->response_head];
		if (head->due > now)
			break;
		if (!conn->closing)
			send_message_response(conn, head->command_id,
			    head->sequence, SMPP_ESME_ROK, head->message_id);
		conn->response_head =
		    (conn->response_head + 1) % conn->response_capacity;
		conn->response_count--;
	}
	if (owns_batch)
		batch_end(sim);
	if (conn->response_count > 0 && now != UINT64_MAX)
		timer_arm_at(conn->response_timer,
		    conn->responses[conn->response_head].due, now);
}

static void
connection_response_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct connection *conn = arg;

	if (conn->sim->stalled_until != 0)
		return;
	connection_flush_responses(conn, monotonic_us());
}

/* Output drained: resume a blocked reader, or finish closing. */
static void
connection_write_cb(struct bufferevent *bev, void *arg)
{
	struct connection *conn = arg;

	if (conn->closing) {
		connection_settle(conn);
		return;
	}
	if (conn->blocked) {
		conn->blocked = 0;
		if (conn->sim->stalled_until == 0) {
			bufferevent_enable(bev, EV_READ);
			connection_read_cb(bev, conn);
		}
	}
}

static void
connection_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct connection *conn = arg;
	struct simulator *sim = conn->sim;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		verbose(sim, "connection %" PRIu64 ": closed by peer%s",
		    conn->serial, what & BEV_EVENT_ERROR ? " (error)" : "");
		connection_free(conn);
		outbound_dispatch(sim, monotonic_us());
	}
}

/*
 * Closes and frees a connection. Why the poll loop: deliver_sm it sent
 * and never saw acknowledged go back, oldest first, to the head of the
 * waiting queue, to reach the next receiver (callers dispatch them).
 */
static void
connection_free(struct connection *conn)
{
	struct simulator *sim = conn->sim;
	struct smpp_session_action action;
	uint32_t head = 0, tail = 0;
	uint64_t now = monotonic_us();

	smpp_session_enter_state(&conn->session, SMPP_SESSION_CLOSED, now);
	while (smpp_session_poll(&conn->session, now, &action) !=
	       SMPP_SESSION_ACTION_NONE) {
		if (action.type != SMPP_SESSION_ACTION_REQUEST_FAILED)
			continue;
		sim->items[action.cookie].next = 0;
		if (tail != 0)
			sim->items[tail - 1].next = (uint32_t)action.cookie + 1;
		else
			head = (uint32_t)action.cookie + 1;
		tail = (uint32_t)action.cookie + 1;
		sim->waiting_count++;
	}
	if (tail != 0) {
		sim->items[tail - 1].next = sim->waiting_head;
		if (sim->waiting_head == 0)
			sim->waiting_tail = tail;
		sim->waiting_head = head;
	}
	if (sim->batch_owner == conn) {
		sim->batch_owner = NULL;
		sim->batch_used = 0;
	}
	if (conn->previous != NULL)
		conn->previous->next = conn->next;
	else
		sim->connections = conn->next;
	if (conn->next != NULL)
		conn->next->previous = conn->previous;
	else
		sim->connections_tail = conn->previous;
	sim->slots[conn->slot] = NULL;
	event_free(conn->response_timer);
	bufferevent_free(conn->bev);
	free(conn->responses);
	free(conn);
}

/* A free slot index for a new connection, growing the table. */
static int
connection_slot(struct simulator *sim, uint32_t *slot)
{
	struct connection **slots;
	size_t i, count;

	for (i = 0; i < sim->slot_count; i++)
		if (sim->slots[i] == NULL) {
			*slot = (uint32_t)i;
			return 0;
		}
	count = sim->slot_count ? 2 * sim->slot_count : 16;
	if ((slots = realloc(sim->slots, count * sizeof(*slots))) == NULL)
		return -1;
	for (i = sim->slot_count; i < count; i++)
		slots[i] = NULL;
	*slot = (uint32_t)sim->slot_count;
	sim->slots = slots;
	sim->slot_count = count;
	return 0;
}

static void
listener_accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
    struct sockaddr *address, int address_length, void *arg)
{
	struct simulator *sim = arg;
	struct smpp_session_config config;
	struct connection *conn;
	int one = 1;

	/* Responses and receipts must not wait ~40 ms for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&config, 0, sizeof(config));
	config.window_size = sim->options.window;
	if ((conn = calloc(1, sizeof(*conn))) == NULL)
		goto fail;
	conn->sim = sim;
	if (smpp_session_init(&conn->session, SMPP_SESSION_SMSC, &config,
		monotonic_us()) != 0 ||
	    connection_slot(sim, &conn->slot) != 0)
		goto fail;
	conn->response_timer =
	    evtimer_new(sim->base, connection_response_timer_cb, conn);
	conn->bev =
	    bufferevent_socket_new(sim->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (conn->response_timer == NULL || conn->bev == NULL)
		goto fail;
	fd = -1;
	bufferevent_set_max_single_read(conn->bev, MAX_SINGLE_IO);
	bufferevent_set_max_single_write(conn->bev, MAX_SINGLE_IO);
	bufferevent_setcb(conn->bev, connection_read_cb, connection_write_cb,
	    connection_event_cb, conn);
	bufferevent_setwatermark(conn->bev, EV_WRITE, OUTPUT_LOW_WATER, 0);
	conn->serial = ++sim->next_serial;
	sim->slots[conn->slot] = conn;
	conn->previous = sim->connections_tail;
	if (sim->connections_tail != NULL)
		sim->connections_tail->next = conn;
	else
		sim->connections = conn;
	sim->connections_tail = conn;
	sim->counters.connections++;
	if (sim->stalled_until == 0)
		bufferevent_enable(conn->bev, EV_READ);
	verbose(sim, "connection %" PRIu64 ": accepted", conn->serial);
	return;
fail:
	fprintf(
	    stderr, "smsc-sim: cannot accept a connection: out of memory\n");
	if (conn != NULL) {
		if (conn->bev != NULL)
			bufferevent_free(conn->bev);
		if (conn->response_timer != NULL)
			event_free(conn->response_timer);
		free(conn);
	}
	if (fd >= 0)
		close(fd);
}

static void
listener_error_cb(struct evconnlistener *listener, void *arg)
{
	fprintf(stderr, "smsc-sim: accept: %s\n", strerror(errno));
}

/* ---- control: MO injection, drop, stall, throttle, quit ---------------- */

/* "+4915..." and digits are international ISDN; the rest alphanumeric. */
static int
parse_mo_address(const char *text, char *out, uint8_t *ton, uint8_t *npi)
{
	size_t length, i;
	int digits = 1;

	if (*text == '+')
		text++;
	length = strlen(text);
	if (length == 0 || length >= ADDRESS_SIZE)
		return -1;
	for (i = 0; i < length; i++)
		if (text[i] < '0' || text[i] > '9')
			digits = 0;
	*ton = digits ? 1 : 5;
	*npi = digits ? 1 : 0;
	memcpy(out, text, length + 1);
	return 0;
}

/*
 * Queues an MO text as deliver_sm: GSM if it can, UCS-2 otherwise, long
 * texts in parts with an 8-bit concatenation UDH. Returns the part count,
 * or -1 with a reason in error.
 */
static int
mo_inject(struct simulator *sim, const char *from, const char *to,
    const char *text, size_t length, const char **error)
{
	struct smpp_split_options options;
	struct smpp_split split;
	struct outbound *item;
	uint8_t source_ton, source_npi, dest_ton, dest_npi;
	char source[ADDRESS_SIZE], destination[ADDRESS_SIZE];
	uint32_t index;
	size_t i;

	if (parse_mo_address(from, source, &source_ton, &source_npi) != 0 ||
	    parse_mo_address(to, destination, &dest_ton, &dest_npi) != 0) {
		*error = "addresses must be 1 to 20 characters";
		return -1;
	}
	memset(&options, 0, sizeof(options));
	options.coding = SMPP_CODING_DEFAULT;
	options.concat = SMPP_CONCAT_UDH_8BIT;
	options.reference = ++sim->mo_reference;
	options.flags = SMPP_SPLIT_CHOOSE_CODING;
	memset(&split, 0, sizeof(split));
	split.parts = sim->split_parts;
	split.max_parts = SMPP_SPLIT_MAX_PARTS;
	split.buffer = sim->split_buffer;
	split.capacity = sizeof(sim->split_buffer);
	if (smpp_split_text(text, length, &options, &split) != SMPP_SPLIT_OK) {
		*error = "text is not valid UTF-8 or too long";
		return -1;
	}
	if (sim->options.max_pending - sim->item_live < split.count) {
		*error = "outbound queue full";
		return -1;
	}
	for (i = 0; i < split.count; i++) {
		if ((index = outbound_new(sim)) == 0) {
			*error = "out of memory";
			return -1;
		}
		item = &sim->items[--index];
		item->kind = OUTBOUND_MO;
		item->source_ton = source_ton;
		item->source_npi = source_npi;
		memcpy(item->source, source, sizeof(source));
		item->dest_ton = dest_ton;
		item->dest_npi = dest_npi;
		memcpy(item->destination, destination, sizeof(destination));
		item->esm_class = split.parts[i].esm_class;
		item->data_coding = (uint8_t)split.coding;
		item->length = (uint8_t)split.parts[i].length;
		memcpy(item->bytes, split.parts[i].short_message,
		    split.parts[i].length);
		waiting_append(sim, index);
	}
	outbound_dispatch(sim, monotonic_us());
	verbose(
	    sim, "mo %s -> %s: %zu part(s)", source, destination, split.count);
	return (int)split.count;
}

/* Parses a millisecond count; -1 if it is not one. */
static int
parse_milliseconds(const char *text, uint64_t *us)
{
	unsigned long long value;
	char *end;

	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || value > 86400000ull)
		return -1;
	*us = (uint64_t)value * 1000u;
	return 0;
}

static int
command_drop(struct simulator *sim, const char *argument, const char **error)
{
	verbose(sim, "drop: closing every connection");
	while (sim->connections != NULL)
		connection_free(sim->connections);
	return 0;
}

static void
stall_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct simulator *sim = arg;
	struct connection *conn, *next;
	uint64_t now = monotonic_us();

	sim->stalled_until = 0;
	verbose(sim, "stall over");
	for (conn = sim->connections; conn != NULL; conn = next) {
		next = conn->next;
		connection_flush_responses(conn, now);
	}
	outbound_run_schedule(sim, now);
	/* Reading last: PDUs that arrived meanwhile are served in order. */
	for (conn = sim->connections; conn != NULL; conn = next) {
		next = conn->next;
		if (conn->closing || conn->blocked)
			continue;
		bufferevent_enable(conn->bev, EV_READ);
		connection_read_cb(conn->bev, conn);
	}
}

static int
command_stall(struct simulator *sim, const char *argument, const char **error)
{
	struct connection *conn;
	uint64_t duration, now = monotonic_us();

	if (parse_milliseconds(argument, &duration) != 0) {
		*error = "stall needs milliseconds";
		return -1;
	}
	verbose(sim, "stall for %" PRIu64 " ms", duration / 1000);
	sim->stalled_until = now + duration;
	if (sim->stalled_until == 0)
		sim->stalled_until = 1;
	for (conn = sim->connections; conn != NULL; conn = conn->next)
		bufferevent_disable(conn->bev, EV_READ);
	timer_arm_at(sim->stall_timer, now + duration, now);
	return 0;
}

static int
command_throttle(
    struct simulator *sim, const char *argument, const char **error)
{
	uint64_t duration;

	if (parse_milliseconds(argument, &duration) != 0) {
		*error = "throttle needs milliseconds";
		return -1;
	}
	verbose(sim, "throttle for %" PRIu64 " ms", duration / 1000);
	sim->throttled_until = monotonic_us() + duration;
	return 0;
}

static int
command_quit(struct simulator *sim, const char *argument, const char **error)
{
	verbose(sim, "quit");
	event_base_loopbreak(sim->base);
	return 0;
}

static int
command_stats(struct simulator *sim, const char *argument, const char **error)
{
	stats_print(sim);
	return 0;
}

/* "mo <from> <to> <text...>": the text runs to the end of the line. */
static int
command_mo(struct simulator *sim, const char *argument, const char **error)
{
	char from[64], to[64];
	int consumed = 0;

	if (argument == NULL ||
	    sscanf(argument, "%63s %63s %n", from, to, &consumed) < 2 ||
	    consumed == 0) {
		*error = "usage: mo <from> <to> <text...>";
		return -1;
	}
	return mo_inject(sim, from, to, argument + consumed,
		   strlen(argument + consumed), error) < 0
		   ? -1
		   : 0;
}

typedef int command_fn(struct simulator *, const char *, const char **);

/* Control commands, shared by stdin and the HTTP API. */
static const struct command {
	const char *name;
	command_fn *run;
} commands[] = {
    {"mo", command_mo},
    {"drop", command_drop},
    {"stall", command_stall},
    {"throttle", command_throttle},
    {"quit", command_quit},
    {"stats", command_stats},
};

static const struct command *
find_command(const char *name, size_t length)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].name) == length &&
		    memcmp(commands[i].name, name, length) == 0)
			return &commands[i];
	return NULL;
}

/* One stdin line: "<command> [argument]". */
static void
stdin_line(struct simulator *sim, const char *line)
{
	const struct command *command;
	const char *error = "unknown command", *argument;
	size_t length;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '#')
		return;
	length = strcspn(line, " \t");
	argument = line + length;
	while (*argument == ' ' || *argument == '\t')
		argument++;
	command = find_command(line, length);
	if (command == NULL ||
	    command->run(sim, *argument ? argument : NULL, &error) != 0)
		fprintf(
		    stderr, "smsc-sim: %.*s: %s\n", (int)length, line, error);
}

static void
stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct simulator *sim = arg;
	char *line;
	size_t length;
	int n;

	n = evbuffer_read(sim->stdin_buffer, fd, 4096);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* End of stdin is not a quit: tests may close it early. */
		event_del(sim->stdin_event);
	}
	while ((line = evbuffer_readln(
		    sim->stdin_buffer, &length, EVBUFFER_EOL_CRLF)) != NULL) {
		stdin_line(sim, line);
		free(line);
	}
	if (evbuffer_get_length(sim->stdin_buffer) > STDIN_LINE_MAX) {
		fprintf(stderr, "smsc-sim: stdin line too long, dropped\n");
		evbuffer_drain(
		    sim->stdin_buffer, evbuffer_get_length(sim->stdin_buffer));
	}
}

/* ---- HTTP: POST /mo, control routes, GET /stats ----------------------- */

/* The fields of a request: JSON body, form body, or query string. */
struct http_fields {
	json_t *json;
	struct evkeyvalq form;
	struct evkeyvalq query;
	char number[32];
};

static void
http_fields_load(struct http_fields *fields, struct evhttp_request *request)
{
	struct evbuffer *body = evhttp_request_get_input_buffer(request);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(request);
	size_t length = evbuffer_get_length(body);
	const char *query;
	char *text;

	memset(fields, 0, sizeof(*fields));
	TAILQ_INIT(&fields->form);
	TAILQ_INIT(&fields->query);
	if (uri != NULL && (query = evhttp_uri_get_query(uri)) != NULL)
		evhttp_parse_query_str(query, &fields->query);
	if (length == 0 || (text = malloc(length + 1)) == NULL)
		return;
	evbuffer_copyout(body, text, length);
	text[length] = '\0';
	if (text[strspn(text, " \t\r\n")] == '{')
		fields->json = json_loadb(text, length, 0, NULL);
	else
		evhttp_parse_query_str(text, &fields->form);
	free(text);
}

static void
http_fields_free(struct http_fields *fields)
{
	if (fields->json != NULL)
		json_decref(fields->json);
	evhttp_clear_headers(&fields->form);
	evhttp_clear_headers(&fields->query);
}

/* A field as text (JSON integers printed); NULL if absent. */
static const char *
http_field(struct http_fields *fields, const char *name)
{
	const char *value;
	json_t *member;

	if (fields->json != NULL &&
	    (member = json_object_get(fields->json, name)) != NULL) {
		if (json_is_string(member))
			return json_string_value(member);
		if (json_is_integer(member)) {
			snprintf(fields->number, sizeof(fields->number),
			    "%" JSON_INTEGER_FORMAT,
			    json_integer_value(member));
			return fields->number;
		}
		return NULL;
	}
	if ((value = evhttp_find_header(&fields->form, name)) != NULL)
		return value;
	return evhttp_find_header(&fields->query, name);
}

static void http_reply(struct evhttp_request *request, int code,
    const char *reason, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends a JSON body with a status code. */
static void
http_reply(struct evhttp_request *request, int code, const char *reason,
    const char *format, ...)
{
	struct evbuffer *body = evbuffer_new();
	va_list arguments;

	if (body == NULL) {
		evhttp_send_error(request, HTTP_INTERNAL, NULL);
		return;
	}
	va_start(arguments, format);
	evbuffer_add_vprintf(body, format, arguments);
	va_end(arguments);
	evhttp_add_header(evhttp_request_get_output_headers(request),
	    "Content-Type", "application/json");
	evhttp_send_reply(request, code, reason, body);
	evbuffer_free(body);
}

static void
http_mo(struct simulator *sim, struct evhttp_request *request,
    struct http_fields *fields, const char *path)
{
	const char *from = http_field(fields, "from");
	const char *to = http_field(fields, "to");
	const char *text = http_field(fields, "text");
	const char *error = NULL;
	int parts;

	if (from == NULL || to == NULL || text == NULL) {
		http_reply(request, 400, "Bad Request",
		    "{\"error\":\"from, to and text are required\"}\n");
		return;
	}
	parts = mo_inject(sim, from, to, text, strlen(text), &error);
	if (parts < 0)
		http_reply(
		    request, 400, "Bad Request", "{\"error\":\"%s\"}\n", error);
	else
		http_reply(request, 200, "OK", "{\"parts\":%d}\n", parts);
}

/* POST /drop, /stall, /throttle (field ms), /quit. */
static void
http_control(struct simulator *sim, struct evhttp_request *request,
    struct http_fields *fields, const char *path)
{
	const struct command *command =
	    find_command(path + 1, strlen(path + 1));
	const char *error = NULL;
	struct timeval delay = {0, HTTP_QUIT_DELAY_US};

	if (command->run == command_quit) {
		/* Let the reply reach the client before the loop ends. */
		http_reply(request, 200, "OK", "{\"ok\":true}\n");
		event_base_loopexit(sim->base, &delay);
		return;
	}
	if (command->run(sim, http_field(fields, "ms"), &error) != 0)
		http_reply(
		    request, 400, "Bad Request", "{\"error\":\"%s\"}\n", error);
	else
		http_reply(request, 200, "OK", "{\"ok\":true}\n");
}

static void
http_stats(struct simulator *sim, struct evhttp_request *request,
    struct http_fields *fields, const char *path)
{
	struct evbuffer *body = evbuffer_new();
	struct connection *conn;
	size_t i, connections = 0;

	if (body == NULL) {
		evhttp_send_error(request, HTTP_INTERNAL, NULL);
		return;
	}
	for (conn = sim->connections; conn != NULL; conn = conn->next)
		connections++;
	evbuffer_add_printf(body, "{");
	for (i = 0; i < sizeof(counter_fields) / sizeof(counter_fields[0]); i++)
		evbuffer_add_printf(body, "\"%s\":%" PRIu64 ",",
		    counter_fields[i].name,
		    counter_value(&sim->counters, &counter_fields[i]));
	evbuffer_add_printf(body,
	    "\"open_connections\":%zu,\"pending\":%zu,\"waiting\":%zu,"
	    "\"scheduled\":%zu,\"next_message_id\":%" PRIu64 "}\n",
	    connections, sim->item_live, sim->waiting_count, sim->heap_count,
	    sim->next_message_id);
	evhttp_add_header(evhttp_request_get_output_headers(request),
	    "Content-Type", "application/json");
	evhttp_send_reply(request, 200, "OK", body);
	evbuffer_free(body);
}

typedef void http_handler_fn(struct simulator *, struct evhttp_request *,
    struct http_fields *, const char *);

static const struct http_route {
	enum evhttp_cmd_type method;
	const char *path;
	http_handler_fn *handle;
} http_routes[] = {
    {EVHTTP_REQ_POST, "/mo", http_mo},
    {EVHTTP_REQ_POST, "/drop", http_control},
    {EVHTTP_REQ_POST, "/stall", http_control},
    {EVHTTP_REQ_POST, "/throttle", http_control},
    {EVHTTP_REQ_POST, "/quit", http_control},
    {EVHTTP_REQ_GET, "/stats", http_stats},
};

static void
http_request_cb(struct evhttp_request *request, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(request);
	enum evhttp_cmd_type method = evhttp_request_get_command(request);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct http_fields fields;
	int path_known = 0;
	size_t i;

	if (path == NULL)
		path = "/";
	for (i = 0; i < sizeof(http_routes) / sizeof(http_routes[0]); i++) {
		if (strcmp(http_routes[i].path, path) != 0)
			continue;
		path_known = 1;
		if (http_routes[i].method != method)
			continue;
		http_fields_load(&fields, request);
		http_routes[i].handle(arg, request, &fields, path);
		http_fields_free(&fields);
		return;
	}
	if (path_known)
		http_reply(request, 405, "Method Not Allowed",
		    "{\"error\":\"method not allowed\"}\n");
	else
		http_reply(
		    request, 404, "Not Found", "{\"error\":\"not found\"}\n");
}

/* ---- options ------------------------------------------------------------ */

static const char usage_text[] =
    "usage: smsc-sim [options]\n"
    "A fast SMSC simulator on 127.0.0.1. Prints \"READY <port>\" once\n"
    "listening (and \"HTTP <port>\" before it with --http-port).\n"
    "\n"
    "  -p, --port PORT                 SMPP port (2776; 0 picks a free one)\n"
    "  -u, --system-id ID              the account's system_id (nudge)\n"
    "  -P, --password PW               its password (secret); a wrong one\n"
    "                                  gets 0x0E, a wrong system_id 0x0F\n"
    "      --http-port PORT            HTTP API (off; 0 picks a free port)\n"
    "      --id-base hex|dec           message ids in responses (hex, upper)\n"
    "      --receipt-id-base hex|dec   the id in receipt text (= --id-base)\n"
    "      --first-id N                first message id (1)\n"
    "      --latency-ms N              delay of submit_sm_resp (0: at once)\n"
    "      --receipt-delay-ms N        delay of receipts after submit (0)\n"
    "      --throttle-rate R           fraction answered 0x58 (0)\n"
    "      --queue-full-rate R         fraction answered 0x14 (0)\n"
    "      --reject-rate R             fraction answered 0x45 (0)\n"
    "      --seed N                    seed of the error and outcome mix (1)\n"
    "      --throttle-window S:D       answer 0x58 from S s after start, D s\n"
    "      --outcomes LIST             receipt stats, e.g.\n"
    "                                  DELIVRD:98,UNDELIV:1,EXPIRED:1\n"
    "                                  (DELIVRD:100)\n"
    "      --receipt-before-response-rate R\n"
    "                                  fraction of receipts sent before the\n"
    "                                  submit_sm_resp (0)\n"
    "      --record FILE               append one line per accepted submit\n"
    "      --window N                  unacknowledged deliver_sm per session\n"
    "                                  (1024, at most 1024)\n"
    "      --max-pending N             receipts and MO parts held (1000000)\n"
    "      --quit-after SECONDS        exit by itself (0: never)\n"
    "  -v, --verbose                   log connections and commands\n"
    "  -h, --help                      this text\n"
    "\n"
    "Receipts (registered_delivery 1 or 3; 2: failures only) are deliver_sm\n"
    "with esm_class 0x04 to the submitting session if it receives, else the\n"
    "oldest bound receiver; they wait while none is bound.\n"
    "\n"
    "stdin lines and HTTP (127.0.0.1):\n"
    "  mo <from> <to> <text...>        POST /mo  from, to, text (JSON/form)\n"
    "  drop                            POST /drop     close every session\n"
    "  stall <ms>                      POST /stall    ms: read/answer nothing\n"
    "  throttle <ms>                   POST /throttle ms: answer 0x58\n"
    "  quit                            POST /quit\n"
    "  stats                           GET /stats     counters as JSON\n"
    "\n"
    "SIGUSR1 and exit print to stderr:\n"
    "  STATS submits=N acked=N throttled=N queue_full=N rejected=N\n"
    "        receipts=N receipts_acked=N mo=N binds=N\n"
    "Record line: <message_id> <seq> <source> <dest> <esm_class>\n"
    "  <data_coding> <registered_delivery> <sm_length> <short_message_hex>\n"
    "  [sar_msg_ref_num=N sar_total_segments=N sar_segment_seqnum=N]\n";

enum long_option {
	OPTION_HTTP_PORT = 256,
	OPTION_ID_BASE,
	OPTION_RECEIPT_ID_BASE,
	OPTION_FIRST_ID,
	OPTION_LATENCY,
	OPTION_RECEIPT_DELAY,
	OPTION_THROTTLE_RATE,
	OPTION_QUEUE_FULL_RATE,
	OPTION_REJECT_RATE,
	OPTION_SEED,
	OPTION_THROTTLE_WINDOW,
	OPTION_OUTCOMES,
	OPTION_RECEIPT_FIRST_RATE,
	OPTION_RECORD,
	OPTION_WINDOW,
	OPTION_MAX_PENDING,
	OPTION_QUIT_AFTER,
};

static const struct option long_options[] = {
    {"port", required_argument, NULL, 'p'},
    {"system-id", required_argument, NULL, 'u'},
    {"password", required_argument, NULL, 'P'},
    {"http-port", required_argument, NULL, OPTION_HTTP_PORT},
    {"id-base", required_argument, NULL, OPTION_ID_BASE},
    {"receipt-id-base", required_argument, NULL, OPTION_RECEIPT_ID_BASE},
    {"first-id", required_argument, NULL, OPTION_FIRST_ID},
    {"latency-ms", required_argument, NULL, OPTION_LATENCY},
    {"receipt-delay-ms", required_argument, NULL, OPTION_RECEIPT_DELAY},
    {"throttle-rate", required_argument, NULL, OPTION_THROTTLE_RATE},
    {"queue-full-rate", required_argument, NULL, OPTION_QUEUE_FULL_RATE},
    {"reject-rate", required_argument, NULL, OPTION_REJECT_RATE},
    {"seed", required_argument, NULL, OPTION_SEED},
    {"throttle-window", required_argument, NULL, OPTION_THROTTLE_WINDOW},
    {"outcomes", required_argument, NULL, OPTION_OUTCOMES},
    {"receipt-before-response-rate", required_argument, NULL,
	OPTION_RECEIPT_FIRST_RATE},
    {"record", required_argument, NULL, OPTION_RECORD},
    {"window", required_argument, NULL, OPTION_WINDOW},
    {"max-pending", required_argument, NULL, OPTION_MAX_PENDING},
    {"quit-after", required_argument, NULL, OPTION_QUIT_AFTER},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int
parse_unsigned(const char *text, uint64_t maximum, uint64_t *value)
{
	unsigned long long parsed;
	char *end;

	if (*text < '0' || *text > '9')
		return -1;
	errno = 0;
	parsed = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || parsed > maximum)
		return -1;
	*value = parsed;
	return 0;
}

/* A non-negative number of seconds, or a rate when maximum is 1. */
static int
parse_real(const char *text, double maximum, double *value)
{
	char *end;

	errno = 0;
	*value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(*value >= 0) ||
	    *value > maximum)
		return -1;
	return 0;
}

static int
parse_id_base(const char *text, enum smpp_id_base *base)
{
	if (strcmp(text, "hex") == 0)
		*base = SMPP_ID_BASE_HEX;
	else if (strcmp(text, "dec") == 0)
		*base = SMPP_ID_BASE_DECIMAL;
	else
		return -1;
	return 0;
}

/* "DELIVRD:98,UNDELIV:1,EXPIRED:1". */
static int
parse_outcomes(const char *text, struct options *options)
{
	const char *cursor = text, *colon, *end;
	struct outcome *outcome;
	uint64_t weight;
	char number[16];
	size_t length;

	options->outcome_count = 0;
	options->outcome_total = 0;
	while (*cursor != '\0') {
		if (options->outcome_count == MAX_OUTCOMES)
			return -1;
		end = cursor + strcspn(cursor, ",");
		colon = memchr(cursor, ':', (size_t)(end - cursor));
		if (colon == NULL)
			return -1;
		outcome = &options->outcomes[options->outcome_count];
		outcome->state = smpp_receipt_state_from_stat(
		    cursor, (size_t)(colon - cursor));
		length = (size_t)(end - colon - 1);
		if (outcome->state == SMPP_MESSAGE_STATE_NONE || length == 0 ||
		    length >= sizeof(number))
			return -1;
		memcpy(number, colon + 1, length);
		number[length] = '\0';
		if (parse_unsigned(number, 1000000, &weight) != 0)
			return -1;
		outcome->weight = (unsigned int)weight;
		options->outcome_total += outcome->weight;
		options->outcome_count++;
		cursor = *end == ',' ? end + 1 : end;
	}
	return options->outcome_total > 0 ? 0 : -1;
}

static uint64_t
seconds_to_us(double seconds)
{
	return (uint64_t)(seconds * 1e6 + 0.5);
}

/* Fills options from argv; -1 after printing what is wrong. */
static int
parse_options(int argc, char **argv, struct options *options)
{
	double real, start;
	uint64_t value;
	char *colon;
	int c;

	memset(options, 0, sizeof(*options));
	options->port = DEFAULT_PORT;
	options->http_port = -1;
	options->system_id = "nudge";
	options->password = "secret";
	options->id_base = SMPP_ID_BASE_HEX;
	options->first_id = 1;
	options->seed = 1;
	options->outcomes[0].state = SMPP_MESSAGE_STATE_DELIVERED;
	options->outcomes[0].weight = 100;
	options->outcome_count = 1;
	options->outcome_total = 100;
	options->window = DEFAULT_WINDOW;
	options->max_pending = DEFAULT_MAX_PENDING;

	while ((c = getopt_long(argc, argv, "p:u:P:vh", long_options, NULL)) !=
	       -1) {
		switch (c) {
		case 'p':
			if (parse_unsigned(optarg, 65535, &value) != 0)
				goto bad;
			options->port = (unsigned int)value;
			break;
		case 'u':
			if (strlen(optarg) > 15)
				goto bad;
			options->system_id = optarg;
			break;
		case 'P':
			if (strlen(optarg) > 8)
				goto bad;
			options->password = optarg;
			break;
		case 'v':
			options->verbose = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case OPTION_HTTP_PORT:
			if (parse_unsigned(optarg, 65535, &value) != 0)
				goto bad;
			options->http_port = (int)value;
			break;
		case OPTION_ID_BASE:
			if (parse_id_base(optarg, &options->id_base) != 0)
				goto bad;
			break;
		case OPTION_RECEIPT_ID_BASE:
			if (parse_id_base(optarg, &options->receipt_id_base) !=
			    0)
				goto bad;
			options->receipt_id_base_given = 1;
			break;
		case OPTION_FIRST_ID:
			if (parse_unsigned(optarg, UINT64_MAX, &value) != 0)
				goto bad;
			options->first_id = value;
			break;
		case OPTION_LATENCY:
		case OPTION_RECEIPT_DELAY:
			if (parse_unsigned(optarg, 86400000, &value) != 0)
				goto bad;
			if (c == OPTION_LATENCY)
				options->latency_us = value * 1000;
			else
				options->receipt_delay_us = value * 1000;
			break;
		case OPTION_THROTTLE_RATE:
		case OPTION_QUEUE_FULL_RATE:
		case OPTION_REJECT_RATE:
		case OPTION_RECEIPT_FIRST_RATE:
			if (parse_real(optarg, 1, &real) != 0)
				goto bad;
			if (c == OPTION_THROTTLE_RATE)
				options->throttle_rate = real;
			else if (c == OPTION_QUEUE_FULL_RATE)
				options->queue_full_rate = real;
			else if (c == OPTION_REJECT_RATE)
				options->reject_rate = real;
			else
				options->receipt_first_rate = real;
			break;
		case OPTION_SEED:
			if (parse_unsigned(optarg, UINT64_MAX, &value) != 0)
				goto bad;
			options->seed = value;
			break;
		case OPTION_THROTTLE_WINDOW:
			if ((colon = strchr(optarg, ':')) == NULL)
				goto bad;
			*colon = '\0';
			if (parse_real(optarg, 1e9, &start) != 0 ||
			    parse_real(colon + 1, 1e9, &real) != 0)
				goto bad;
			*colon = ':';
			options->throttle_window_start_us =
			    seconds_to_us(start);
			options->throttle_window_length_us =
			    seconds_to_us(real);
			break;
		case OPTION_OUTCOMES:
			if (parse_outcomes(optarg, options) != 0)
				goto bad;
			break;
		case OPTION_RECORD:
			options->record_path = optarg;
			break;
		case OPTION_WINDOW:
			if (parse_unsigned(
				optarg, SMPP_SESSION_WINDOW_MAX, &value) != 0 ||
			    value == 0)
				goto bad;
			options->window = (unsigned int)value;
			break;
		case OPTION_MAX_PENDING:
			if (parse_unsigned(optarg, UINT32_MAX - 1, &value) !=
				0 ||
			    value == 0)
				goto bad;
			options->max_pending = (size_t)value;
			break;
		case OPTION_QUIT_AFTER:
			if (parse_real(optarg, 1e9, &real) != 0)
				goto bad;
			options->quit_after_us = seconds_to_us(real);
			break;
		default:
			fputs(usage_text, stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(
		    stderr, "smsc-sim: unexpected argument %s\n", argv[optind]);
		return -1;
	}
	if (options->throttle_rate + options->queue_full_rate +
		options->reject_rate >
	    1) {
		fprintf(
		    stderr, "smsc-sim: error rates add up to more than 1\n");
		return -1;
	}
	if (!options->receipt_id_base_given)
		options->receipt_id_base = options->id_base;
	return 0;
bad:
	fprintf(
	    stderr, "smsc-sim: invalid option value '%s' (see -h)\n", optarg);
	return -1;
}

/* ---- setup and main loop ------------------------------------------------ */

static void
signal_cb(evutil_socket_t signal_number, short what, void *arg)
{
	struct simulator *sim = arg;

	if (signal_number == SIGUSR1)
		stats_print(sim);
	else
		event_base_loopbreak(sim->base);
}

static void
quit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct simulator *sim = arg;

	verbose(sim, "--quit-after reached");
	event_base_loopbreak(sim->base);
}

/* The port a listening socket got (for port 0). */
static unsigned int
bound_port(evutil_socket_t fd)
{
	struct sockaddr_in address;
	socklen_t length = sizeof(address);

	if (getsockname(fd, (struct sockaddr *)&address, &length) != 0)
		return 0;
	return ntohs(address.sin_port);
}

static int
start_listener(struct simulator *sim)
{
	struct sockaddr_in address;

	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_port = htons((uint16_t)sim->options.port);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sim->listener = evconnlistener_new_bind(sim->base, listener_accept_cb,
	    sim, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
	    (struct sockaddr *)&address, sizeof(address));
	if (sim->listener == NULL) {
		fprintf(stderr, "smsc-sim: cannot listen on %s:%u: %s\n",
		    LISTEN_ADDRESS, sim->options.port, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(sim->listener, listener_error_cb);
	return 0;
}

/* The HTTP API on 127.0.0.1; returns the port, 0 on failure. */
static unsigned int
start_http(struct simulator *sim)
{
	struct evhttp_bound_socket *handle;

	if ((sim->http = evhttp_new(sim->base)) == NULL)
		return 0;
	evhttp_set_allowed_methods(sim->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_max_body_size(sim->http, HTTP_MAX_BODY);
	evhttp_set_gencb(sim->http, http_request_cb, sim);
	handle = evhttp_bind_socket_with_handle(
	    sim->http, LISTEN_ADDRESS, (uint16_t)sim->options.http_port);
	if (handle == NULL) {
		fprintf(stderr, "smsc-sim: cannot listen on %s:%d (HTTP)\n",
		    LISTEN_ADDRESS, sim->options.http_port);
		return 0;
	}
	return bound_port(evhttp_bound_socket_get_fd(handle));
}

/* Events for stdin, timers and signals. */
static int
start_events(struct simulator *sim)
{
	static const int signals[] = {SIGTERM, SIGINT, SIGUSR1};
	struct stat stdin_status;
	struct timeval quit_after;
	size_t i;

	sim->outbound_timer = evtimer_new(sim->base, outbound_timer_cb, sim);
	sim->stall_timer = evtimer_new(sim->base, stall_end_cb, sim);
	sim->quit_timer = evtimer_new(sim->base, quit_timer_cb, sim);
	sim->stdin_buffer = evbuffer_new();
	if (sim->outbound_timer == NULL || sim->stall_timer == NULL ||
	    sim->quit_timer == NULL || sim->stdin_buffer == NULL)
		return -1;
	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		sim->signal_events[i] =
		    evsignal_new(sim->base, signals[i], signal_cb, sim);
		if (sim->signal_events[i] == NULL ||
		    evsignal_add(sim->signal_events[i], NULL) != 0)
			return -1;
	}
	if (sim->options.quit_after_us != 0) {
		quit_after.tv_sec =
		    (time_t)(sim->options.quit_after_us / 1000000u);
		quit_after.tv_usec =
		    (suseconds_t)(sim->options.quit_after_us % 1000000u);
		evtimer_add(sim->quit_timer, &quit_after);
	}
	/* Files and /dev/null cannot be polled: then no stdin commands. */
	if (fstat(STDIN_FILENO, &stdin_status) != 0 ||
	    S_ISREG(stdin_status.st_mode) ||
	    (S_ISCHR(stdin_status.st_mode) && !isatty(STDIN_FILENO)))
		return 0;
	sim->stdin_event = event_new(
	    sim->base, STDIN_FILENO, EV_READ | EV_PERSIST, stdin_cb, sim);
	if (sim->stdin_event == NULL || event_add(sim->stdin_event, NULL) != 0)
		return -1;
	return 0;
}

static void
simulator_free(struct simulator *sim)
{
	size_t i;

	while (sim->connections != NULL)
		connection_free(sim->connections);
	if (sim->record != NULL)
		fclose(sim->record);
	if (sim->listener != NULL)
		evconnlistener_free(sim->listener);
	if (sim->http != NULL)
		evhttp_free(sim->http);
	if (sim->stdin_event != NULL)
		event_free(sim->stdin_event);
	if (sim->stdin_buffer != NULL)
		evbuffer_free(sim->stdin_buffer);
	if (sim->outbound_timer != NULL)
		event_free(sim->outbound_timer);
	if (sim->stall_timer != NULL)
		event_free(sim->stall_timer);
	if (sim->quit_timer != NULL)
		event_free(sim->quit_timer);
	for (i = 0;
	     i < sizeof(sim->signal_events) / sizeof(sim->signal_events[0]);
	     i++)
		if (sim->signal_events[i] != NULL)
			event_free(sim->signal_events[i]);
	if (sim->base != NULL)
		event_base_free(sim->base);
	free(sim->slots);
	free(sim->items);
	free(sim->heap);
	free(sim);
}

int
main(int argc, char **argv)
{
	struct event_config *config = NULL;
	struct simulator *sim;
	unsigned int port, http_port = 0;
	int status = 1;

	if ((sim = calloc(1, sizeof(*sim))) == NULL) {
		fprintf(stderr, "smsc-sim: out of memory\n");
		return 1;
	}
	if (parse_options(argc, argv, &sim->options) != 0) {
		free(sim);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sim->next_message_id = sim->options.first_id;
	sim->random_state = sim->options.seed;
	sim->started = monotonic_us();
	/* libevent's coarse clock steps by 4 ms; latencies need better. */
	if ((config = event_config_new()) == NULL)
		goto fail;
	event_config_set_flag(config, EVENT_BASE_FLAG_PRECISE_TIMER);
	sim->base = event_base_new_with_config(config);
	event_config_free(config);
	if (sim->base == NULL)
		goto fail;
	if (sim->options.record_path != NULL) {
		sim->record = fopen(sim->options.record_path, "a");
		if (sim->record == NULL) {
			fprintf(stderr, "smsc-sim: %s: %s\n",
			    sim->options.record_path, strerror(errno));
			goto fail;
		}
		setvbuf(sim->record, NULL, _IOFBF, 1 << 20);
	}
	if (start_listener(sim) != 0 || start_events(sim) != 0)
		goto fail;
	if (sim->options.http_port >= 0 && (http_port = start_http(sim)) == 0)
		goto fail;
	port = bound_port(evconnlistener_get_fd(sim->listener));
	if (http_port != 0)
		printf("HTTP %u\n", http_port);
	printf("READY %u\n", port);
	fflush(stdout);

	event_base_dispatch(sim->base);
	stats_print(sim);
	status = 0;
fail:
	simulator_free(sim);
	return status;
}
