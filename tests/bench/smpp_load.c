/*
 * smpp_load.c - an SMPP load client (ESME) for nudged's SMPP server.
 *
 *   smpp_load --port P --system-id ID --password PW [--binds K]
 *       [--window W] [--messages N] [--rate R] [--record FILE]
 *       [--mode transmitter|transceiver] [--prefix TEXT] [--first K]
 *       [--name NAME] [--timeout SECONDS] [--host 127.0.0.1]
 *
 * K binds to 127.0.0.1:P (TCP_NODELAY), each keeping up to W submit_sm
 * outstanding, N in total. Message k goes to +3934xxxxxxxx (3934000000000
 * plus k) with the GSM text "PREFIX k" (about 60 characters with the
 * default prefix), so tests/integration/check_outbox.pl can find each one
 * at the SMSC. Every submit -> submit_sm_resp latency is kept; with --rate
 * the offered load is paced on a 1 ms precise timer and latency counts
 * from when a submit was due, not when a window slot freed up, so a slow
 * server cannot hide its queueing (coordinated omission). --record writes
 * "k message_id" for every ESME_ROK: the promises nudged made.
 *
 * One libevent loop (EVENT_BASE_FLAG_PRECISE_TIMER); each session owns one
 * input and one output buffer and a slot table sized at start, so nothing
 * is allocated per PDU. PDUs are built and read with the project's smpp/
 * library. Output: a table, then "BENCH name=NAME.FIGURE value=V unit=U"
 * lines. Exit status 0 when all N got ESME_ROK, 3 when some got another
 * status or no answer, 1 when the run could not be made. SIGINT/SIGTERM
 * end the run early with a report (and a flushed record).
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench.h"
#include "smpp.h"

#define INPUT_CAPACITY    (256 * 1024)
#define SUBMIT_MAX_LENGTH 512 /* one encoded submit_sm, generously */
#define STATUS_KINDS      16
#define TICK_MICROSECONDS 1000
#define FLUSH_EVERY_NS    UINT64_C(1000000000)
#define UNBIND_GRACE_SEC  2
#define SATURATED_PERCENT 85
#define FIRST_DESTINATION UINT64_C(393400000000)
#define DEFAULT_PREFIX    "nudge relay load test, a GSM 7-bit text of sixty chars"
#define TEXT_CAPACITY     161

enum session_state {
	SESSION_BINDING = 0,
	SESSION_BOUND,
	SESSION_UNBINDING,
	SESSION_CLOSED,
};

/* One submit_sm in flight. */
struct slot {
	int busy;
	uint32_t sequence;
	uint64_t k;
	uint64_t due_ns; /* latency counts from here */
};

struct load;

/* One bind to the server. */
struct session {
	struct load *load;
	unsigned index;
	int fd;
	enum session_state state;
	struct event *read_event;
	struct event *write_event;
	uint32_t next_sequence;
	unsigned outstanding;
	struct slot *slots; /* slot_count entries, by sequence */
	uint8_t *input;
	size_t input_length;
	uint8_t *output;
	size_t output_capacity;
	size_t output_length;
	size_t output_sent;
};

struct options {
	const char *host;
	unsigned port;
	const char *system_id;
	const char *password;
	const char *record_path;
	const char *prefix;
	const char *name;
	unsigned binds;
	unsigned window;
	uint64_t messages;
	uint64_t first;
	double rate; /* submits/s over all binds; 0: as fast as windows allow */
	unsigned timeout_seconds;
	int transceiver;
};

/* A command_status seen in submit_sm_resp, and how often. */
struct status_count {
	uint32_t status;
	uint64_t count;
};

struct load {
	struct options options;
	struct event_base *base;
	struct event *tick_event;
	struct event *finish_event;
	struct event *timeout_event;
	struct event *signal_events[2];
	struct session *sessions;
	unsigned slot_count; /* power of two, >= 2 * window */
	unsigned bound;
	unsigned closed;
	unsigned next_session; /* round robin of paced submits */
	FILE *record;
	uint64_t last_flush_ns;

	uint64_t issued;
	uint64_t answered_ok;
	uint64_t answered_other;
	uint64_t unanswered; /* in flight when a session closed */
	uint64_t undecodable;
	uint64_t delivers; /* deliver_sm answered (transceiver) */
	uint64_t behind;   /* paced submits held back by full windows */
	struct status_count statuses[STATUS_KINDS];
	uint64_t status_overflow;

	struct bench_latencies latencies; /* of ROK answers, from due time */

	uint64_t start_ns;
	uint64_t end_ns;
	double cpu_start;
	int finishing;
	const char *abort_reason;
};

static void session_read(evutil_socket_t, short, void *);
static void session_write(evutil_socket_t, short, void *);
static void load_fill(struct load *);
static void load_check_done(struct load *);
static void load_finish(struct load *);

/* Sends what the output buffer holds; arms the write event for the rest. */
static void
session_flush(struct session *session)
{
	ssize_t sent;

	while (session->output_sent < session->output_length) {
		sent = send(session->fd, session->output + session->output_sent,
		    session->output_length - session->output_sent,
		    MSG_NOSIGNAL);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return; /* the read side sees the close */
		}
		session->output_sent += (size_t)sent;
	}
	if (session->output_sent == session->output_length) {
		session->output_sent = 0;
		session->output_length = 0;
		event_del(session->write_event);
	} else
		event_add(session->write_event, NULL);
}

/* Room for one more PDU at the end of the output buffer (compacting). */
static int
session_output_room(struct session *session, size_t need)
{
	if (session->output_capacity - session->output_length >= need)
		return 1;
	if (session->output_sent > 0) {
		memmove(session->output, session->output + session->output_sent,
		    session->output_length - session->output_sent);
		session->output_length -= session->output_sent;
		session->output_sent = 0;
	}
	return session->output_capacity - session->output_length >= need;
}

/* Queues a header-only or prepared PDU of length bytes (already encoded). */
static void
session_queue_header_only(struct session *session, uint32_t command_id,
    uint32_t status, uint32_t sequence)
{
	int length;

	if (!session_output_room(session, SMPP_HEADER_LENGTH))
		return;
	length = smpp_pdu_encode_header_only(
	    session->output + session->output_length,
	    session->output_capacity - session->output_length, command_id,
	    status, sequence);
	if (length > 0)
		session->output_length += (size_t)length;
}

/* Closes a session: what was in flight stays unanswered. */
static void
session_close(struct session *session, const char *why)
{
	struct load *load = session->load;

	if (session->state == SESSION_CLOSED)
		return;
	if (session->state != SESSION_UNBINDING && !load->finishing)
		fprintf(stderr, "smpp_load: session %u closed: %s\n",
		    session->index, why);
	load->unanswered += session->outstanding;
	session->outstanding = 0;
	session->state = SESSION_CLOSED;
	event_del(session->read_event);
	event_del(session->write_event);
	close(session->fd);
	session->fd = -1;
	load->closed++;
	load_check_done(load);
}

/* A free slot for a new sequence number, or NULL when the window is full. */
static struct slot *
session_take_slot(struct session *session)
{
	struct load *load = session->load;
	struct slot *slot;

	if (session->state != SESSION_BOUND ||
	    session->outstanding >= load->options.window)
		return NULL;
	slot = &session->slots[session->next_sequence & (load->slot_count - 1)];
	if (slot->busy)
		return NULL; /* a very late answer still holds it */
	return slot;
}

/* Encodes submit_sm for message k into the output buffer; 0 on success. */
static int
session_submit(
    struct session *session, struct slot *slot, uint64_t k, uint64_t due_ns)
{
	struct load *load = session->load;
	struct smpp_pdu pdu;
	char destination[24], text[TEXT_CAPACITY];
	int length, text_length;

	if (!session_output_room(session, SUBMIT_MAX_LENGTH))
		return -1;
	snprintf(destination, sizeof(destination), "%" PRIu64,
	    FIRST_DESTINATION + k);
	text_length = snprintf(
	    text, sizeof(text), "%s %" PRIu64, load->options.prefix, k);
	if (text_length < 0 || text_length >= (int)sizeof(text))
		return -1;
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_SUBMIT_SM;
	pdu.sequence_number = session->next_sequence;
	pdu.service_type = "";
	pdu.source_addr_ton = 1;
	pdu.source_addr_npi = 1;
	pdu.source_addr = "4930123";
	pdu.dest_addr_ton = 1;
	pdu.dest_addr_npi = 1;
	pdu.destination_addr = destination;
	pdu.schedule_delivery_time = "";
	pdu.validity_period = "";
	pdu.data_coding = 0;
	pdu.sm_length = (uint8_t)text_length;
	pdu.short_message = (const uint8_t *)text;
	length = smpp_pdu_encode(&pdu, session->output + session->output_length,
	    session->output_capacity - session->output_length);
	if (length < 0) {
		fprintf(stderr, "smpp_load: submit_sm: %s\n",
		    smpp_pdu_encode_error_name(length));
		return -1;
	}
	session->output_length += (size_t)length;
	slot->busy = 1;
	slot->sequence = session->next_sequence;
	slot->k = k;
	slot->due_ns = due_ns;
	session->next_sequence++;
	if (session->next_sequence == 0 || session->next_sequence > 0x7FFFFFFF)
		session->next_sequence = 1;
	session->outstanding++;
	load->issued++;
	return 0;
}

/* Counts a submit_sm_resp status other than ESME_ROK. */
static void
load_count_status(struct load *load, uint32_t status)
{
	unsigned i;

	load->answered_other++;
	for (i = 0; i < STATUS_KINDS; i++) {
		if (load->statuses[i].count == 0)
			load->statuses[i].status = status;
		if (load->statuses[i].status == status) {
			load->statuses[i].count++;
			return;
		}
	}
	load->status_overflow++;
}

/* A submit_sm_resp (or generic_nack) for sequence: frees its slot. */
static void
session_answered(struct session *session, uint32_t sequence, uint32_t status,
    const char *message_id)
{
	struct load *load = session->load;
	struct slot *slot = &session->slots[sequence & (load->slot_count - 1)];
	uint64_t now = bench_now_ns();

	if (!slot->busy || slot->sequence != sequence) {
		load->undecodable++;
		return;
	}
	slot->busy = 0;
	session->outstanding--;
	if (status == SMPP_ESME_ROK) {
		load->answered_ok++;
		bench_latencies_add(&load->latencies,
		    now > slot->due_ns ? now - slot->due_ns : 0);
		if (load->record != NULL)
			fprintf(load->record, "%" PRIu64 " %s\n", slot->k,
			    message_id != NULL ? message_id : "-");
	} else
		load_count_status(load, status);
	load->end_ns = now;
}

/* One whole PDU from the server. */
static void
session_handle(struct session *session, const uint8_t *data, size_t length)
{
	struct load *load = session->load;
	struct smpp_pdu pdu;
	uint32_t status;

	memset(&pdu, 0, sizeof(pdu));
	status = smpp_pdu_decode(data, length, &pdu);
	if (status != SMPP_ESME_ROK) {
		/* The header alone still frees the slot it answers. */
		if (smpp_pdu_decode_header(data, length, &pdu) < 0)
			return;
		if (pdu.command_id == SMPP_SUBMIT_SM_RESP)
			session_answered(session, pdu.sequence_number,
			    pdu.command_status, NULL);
		else
			load->undecodable++;
		return;
	}
	switch (pdu.command_id) {
	case SMPP_BIND_TRANSMITTER_RESP:
	case SMPP_BIND_TRANSCEIVER_RESP:
		if (pdu.command_status != SMPP_ESME_ROK) {
			fprintf(stderr,
			    "smpp_load: session %u: bind refused: 0x%08" PRIX32
			    "\n",
			    session->index, pdu.command_status);
			load->abort_reason = "bind refused";
			session_close(session, "bind refused");
			load_finish(load);
			return;
		}
		session->state = SESSION_BOUND;
		if (++load->bound == load->options.binds) {
			/* The clock starts once every bind is up. */
			load->start_ns = bench_now_ns();
			load->end_ns = load->start_ns;
			load->cpu_start = bench_cpu_seconds();
		}
		break;
	case SMPP_SUBMIT_SM_RESP:
		session_answered(session, pdu.sequence_number,
		    pdu.command_status, pdu.message_id);
		break;
	case SMPP_GENERIC_NACK:
		session_answered(session, pdu.sequence_number,
		    pdu.command_status != SMPP_ESME_ROK ? pdu.command_status
							: SMPP_ESME_RINVCMDID,
		    NULL);
		break;
	case SMPP_ENQUIRE_LINK:
		session_queue_header_only(session, SMPP_ENQUIRE_LINK_RESP,
		    SMPP_ESME_ROK, pdu.sequence_number);
		break;
	case SMPP_DELIVER_SM:
		load->delivers++;
		session_queue_header_only(session, SMPP_DELIVER_SM_RESP,
		    SMPP_ESME_ROK, pdu.sequence_number);
		break;
	case SMPP_UNBIND:
		session_queue_header_only(session, SMPP_UNBIND_RESP,
		    SMPP_ESME_ROK, pdu.sequence_number);
		session_flush(session);
		session_close(session, "the server unbound");
		break;
	case SMPP_UNBIND_RESP:
		session_close(session, "unbound");
		break;
	default:
		break;
	}
}

/* Reads, frames and handles what arrived; then tops windows up. */
static void
session_read(evutil_socket_t fd, short what, void *arg)
{
	struct session *session = arg;
	struct load *load = session->load;
	size_t position = 0;
	uint32_t pdu_length;
	enum smpp_frame_result framed;
	ssize_t got;

	got = recv(fd, session->input + session->input_length,
	    INPUT_CAPACITY - session->input_length, 0);
	if (got == 0) {
		session_close(session, "connection closed by the server");
		return;
	}
	if (got < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			session_close(session, strerror(errno));
		return;
	}
	session->input_length += (size_t)got;
	for (;;) {
		framed = smpp_pdu_frame(session->input + position,
		    session->input_length - position, 0, &pdu_length);
		if (framed == SMPP_FRAME_NEED_MORE)
			break;
		if (framed == SMPP_FRAME_INVALID) {
			session_close(session, "invalid command_length");
			return;
		}
		session_handle(session, session->input + position, pdu_length);
		position += pdu_length;
		if (session->state == SESSION_CLOSED)
			return;
	}
	if (position > 0) {
		memmove(session->input, session->input + position,
		    session->input_length - position);
		session->input_length -= position;
	}
	if (load->options.rate <= 0)
		load_fill(load);
	session_flush(session);
	load_check_done(load);
}

/* The socket can take more output. */
static void
session_write(evutil_socket_t fd, short what, void *arg)
{
	session_flush(arg);
}

/* Unpaced: every bound session fills its window while messages remain. */
static void
load_fill(struct load *load)
{
	struct session *session;
	struct slot *slot;
	unsigned i;
	uint64_t now;

	if (load->bound < load->options.binds || load->finishing)
		return;
	now = bench_now_ns();
	for (i = 0; i < load->options.binds; i++) {
		session = &load->sessions[i];
		while (load->issued < load->options.messages &&
		       (slot = session_take_slot(session)) != NULL &&
		       session_submit(session, slot,
			   load->options.first + load->issued, now) == 0)
			;
		if (session->state == SESSION_BOUND)
			session_flush(session);
	}
}

/* Paced: every 1 ms, send each submit whose due time has come. */
static void
load_tick(evutil_socket_t fd, short what, void *arg)
{
	struct load *load = arg;
	struct session *session;
	struct slot *slot = NULL;
	uint64_t now, due;
	unsigned tries, i;

	if (load->bound < load->options.binds || load->finishing)
		return;
	now = bench_now_ns();
	while (load->issued < load->options.messages) {
		due = load->start_ns + (uint64_t)((double)load->issued * 1e9 /
						  load->options.rate);
		if (due > now)
			break;
		for (tries = 0; tries < load->options.binds; tries++) {
			session = &load->sessions[load->next_session];
			load->next_session =
			    (load->next_session + 1) % load->options.binds;
			if ((slot = session_take_slot(session)) != NULL)
				break;
		}
		if (slot == NULL) {
			load->behind++;
			break;
		}
		if (session_submit(session, slot,
			load->options.first + load->issued, due) != 0)
			break;
		slot = NULL;
	}
	for (i = 0; i < load->options.binds; i++)
		if (load->sessions[i].state == SESSION_BOUND &&
		    load->sessions[i].output_length > 0)
			session_flush(&load->sessions[i]);
	if (load->record != NULL &&
	    now - load->last_flush_ns > FLUSH_EVERY_NS) {
		fflush(load->record);
		load->last_flush_ns = now;
	}
}

/* Unbinds every open session; the finish timer caps the wait. */
static void
load_finish(struct load *load)
{
	struct timeval grace = {UNBIND_GRACE_SEC, 0};
	struct session *session;
	unsigned i;

	if (load->finishing)
		return;
	load->finishing = 1;
	if (load->end_ns == 0)
		load->end_ns = bench_now_ns();
	for (i = 0; i < load->options.binds; i++) {
		session = &load->sessions[i];
		if (session->state == SESSION_CLOSED)
			continue;
		session->state = SESSION_UNBINDING;
		session_queue_header_only(session, SMPP_UNBIND, SMPP_ESME_ROK,
		    session->next_sequence);
		session_flush(session);
	}
	if (load->closed == load->options.binds)
		event_base_loopexit(load->base, NULL);
	else
		event_add(load->finish_event, &grace);
}

/* Done when every message has an answer or every session is gone. */
static void
load_check_done(struct load *load)
{
	uint64_t settled =
	    load->answered_ok + load->answered_other + load->unanswered;

	if (load->finishing) {
		if (load->closed == load->options.binds)
			event_base_loopexit(load->base, NULL);
		return;
	}
	if (settled >= load->options.messages ||
	    load->closed == load->options.binds)
		load_finish(load);
}

static void
load_finish_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct load *load = arg;
	unsigned i;

	for (i = 0; i < load->options.binds; i++)
		session_close(&load->sessions[i], "unbind timed out");
	event_base_loopexit(load->base, NULL);
}

static void
load_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct load *load = arg;

	load->abort_reason = "--timeout reached";
	load_finish(load);
}

static void
load_signal(evutil_socket_t signal_number, short what, void *arg)
{
	struct load *load = arg;

	load->abort_reason = "interrupted";
	load_finish(load);
}

/* The table and the BENCH lines. */
static void
load_report(struct load *load, double wall, double cpu)
{
	const struct options *options = &load->options;
	double accepted_per_second, cpu_percent;
	unsigned s;

	accepted_per_second = wall > 0 ? (double)load->answered_ok / wall : 0;
	cpu_percent = wall > 0 ? 100.0 * cpu / wall : 0;
	printf("%s: %u %s bind%s x window %u to %s:%u, %" PRIu64 " messages, ",
	    options->name, options->binds,
	    options->transceiver ? "transceiver" : "transmitter",
	    options->binds == 1 ? "" : "s", options->window, options->host,
	    options->port, options->messages);
	if (options->rate > 0)
		printf("offered %.0f/s\n", options->rate);
	else
		printf("unpaced\n");
	printf("  %-14s %" PRIu64 " (ROK %" PRIu64 ", other %" PRIu64
	       ", unanswered %" PRIu64 ")\n",
	    "submits", load->issued, load->answered_ok, load->answered_other,
	    load->unanswered);
	for (s = 0; s < STATUS_KINDS && load->statuses[s].count > 0; s++)
		printf("  %-14s 0x%08" PRIX32 " x %" PRIu64 "\n", "status",
		    load->statuses[s].status, load->statuses[s].count);
	if (load->status_overflow > 0 || load->undecodable > 0)
		printf("  %-14s %" PRIu64 " other statuses, %" PRIu64
		       " unmatched or undecodable PDUs\n",
		    "odd", load->status_overflow, load->undecodable);
	if (load->delivers > 0)
		printf("  %-14s %" PRIu64 "\n", "deliver_sm", load->delivers);
	printf("  %-14s %.3f s\n", "wall", wall);
	printf("  %-14s %.0f\n", "accepted/s", accepted_per_second);
	bench_latencies_print(&load->latencies);
	if (options->rate > 0)
		printf("  %-14s %" PRIu64 " ticks found every window full\n",
		    "behind", load->behind);
	printf("  %-14s %.0f%% of one core%s\n", "client cpu", cpu_percent,
	    cpu_percent >= SATURATED_PERCENT
		? " (SATURATED: the client may be the bottleneck)"
		: "");
	if (load->abort_reason != NULL)
		printf("  %-14s %s\n", "aborted", load->abort_reason);
	bench_line(options->name, "submits_per_second", 0, accepted_per_second,
	    "submit/s");
	bench_latencies_bench_lines(&load->latencies, options->name);
	bench_line(
	    options->name, "accepted", 0, (double)load->answered_ok, "submits");
	bench_line(options->name, "not_accepted", 0,
	    (double)(load->answered_other + load->unanswered), "submits");
	bench_line(options->name, "client_cpu", 0, cpu_percent, "percent");
	fflush(stdout);
}

/* Connects (blocking, loopback) and sends the bind; 0 on success. */
static int
session_open(struct load *load, struct session *session, unsigned index)
{
	const struct options *options = &load->options;
	struct sockaddr_in address;
	struct smpp_pdu bind;
	int one = 1, length;

	session->load = load;
	session->index = index;
	session->next_sequence = 1;
	session->output_capacity =
	    (size_t)options->window * SUBMIT_MAX_LENGTH + 4096;
	session->slots = calloc(load->slot_count, sizeof(*session->slots));
	session->input = malloc(INPUT_CAPACITY);
	session->output = malloc(session->output_capacity);
	session->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (session->slots == NULL || session->input == NULL ||
	    session->output == NULL || session->fd < 0)
		return -1;
	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_port = htons((uint16_t)options->port);
	if (inet_pton(AF_INET, options->host, &address.sin_addr) != 1)
		return -1;
	if (connect(session->fd, (struct sockaddr *)&address, sizeof(address)) <
	    0) {
		fprintf(stderr, "smpp_load: connect %s:%u: %s\n", options->host,
		    options->port, strerror(errno));
		return -1;
	}
	setsockopt(session->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(session->fd);
	session->read_event = event_new(load->base, session->fd,
	    EV_READ | EV_PERSIST, session_read, session);
	session->write_event = event_new(load->base, session->fd,
	    EV_WRITE | EV_PERSIST, session_write, session);
	if (session->read_event == NULL || session->write_event == NULL)
		return -1;
	memset(&bind, 0, sizeof(bind));
	bind.command_id = options->transceiver ? SMPP_BIND_TRANSCEIVER
					       : SMPP_BIND_TRANSMITTER;
	bind.sequence_number = session->next_sequence++;
	bind.system_id = options->system_id;
	bind.password = options->password;
	bind.system_type = "";
	bind.interface_version = SMPP_INTERFACE_VERSION;
	bind.address_range = "";
	length =
	    smpp_pdu_encode(&bind, session->output, session->output_capacity);
	if (length < 0) {
		fprintf(stderr, "smpp_load: bind: %s\n",
		    smpp_pdu_encode_error_name(length));
		return -1;
	}
	session->output_length = (size_t)length;
	session->state = SESSION_BINDING;
	event_add(session->read_event, NULL);
	session_flush(session);
	return 0;
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: smpp_load --port P --system-id ID --password PW\n"
	    "    [--binds K (4)] [--window W (64)] [--messages N (100000)]\n"
	    "    [--rate R (0: unpaced)] [--record FILE] [--mode "
	    "transmitter|transceiver]\n"
	    "    [--prefix TEXT] [--first K (0)] [--name NAME (relay)]\n"
	    "    [--timeout SECONDS (600)] [--host 127.0.0.1]\n");
}

static int
parse_options(int argc, char **argv, struct options *options)
{
	static const struct option long_options[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"system-id", required_argument, NULL, 's'},
	    {"password", required_argument, NULL, 'P'},
	    {"binds", required_argument, NULL, 'k'},
	    {"window", required_argument, NULL, 'w'},
	    {"messages", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"record", required_argument, NULL, 'R'},
	    {"mode", required_argument, NULL, 'm'},
	    {"prefix", required_argument, NULL, 'x'},
	    {"first", required_argument, NULL, 'f'},
	    {"name", required_argument, NULL, 'N'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	double value = 0;
	int c, bad = 0;

	options->host = "127.0.0.1";
	options->binds = 4;
	options->window = 64;
	options->messages = 100000;
	options->prefix = DEFAULT_PREFIX;
	options->name = "relay";
	options->timeout_seconds = 600;
	while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (c) {
		case 'H':
			options->host = optarg;
			break;
		case 'p':
			bad |= bench_parse_number(optarg, 1, 65535, &value);
			options->port = (unsigned)value;
			break;
		case 's':
			options->system_id = optarg;
			break;
		case 'P':
			options->password = optarg;
			break;
		case 'k':
			bad |= bench_parse_number(optarg, 1, 64, &value);
			options->binds = (unsigned)value;
			break;
		case 'w':
			bad |= bench_parse_number(optarg, 1, 4096, &value);
			options->window = (unsigned)value;
			break;
		case 'n':
			bad |= bench_parse_number(optarg, 1, 1e9, &value);
			options->messages = (uint64_t)value;
			break;
		case 'r':
			bad |= bench_parse_number(optarg, 0, 1e8, &value);
			options->rate = value;
			break;
		case 'R':
			options->record_path = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "transceiver") == 0)
				options->transceiver = 1;
			else if (strcmp(optarg, "transmitter") != 0)
				bad = -1;
			break;
		case 'x':
			options->prefix = optarg;
			break;
		case 'f':
			bad |= bench_parse_number(optarg, 0, 1e11, &value);
			options->first = (uint64_t)value;
			break;
		case 'N':
			options->name = optarg;
			break;
		case 'T':
			bad |= bench_parse_number(optarg, 1, 86400, &value);
			options->timeout_seconds = (unsigned)value;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
		if (bad) {
			fprintf(stderr, "smpp_load: bad value for --%s\n",
			    argv[optind - 1] + 2);
			return -1;
		}
	}
	if (options->port == 0 || options->system_id == NULL ||
	    options->password == NULL || optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct load load;
	struct event_config *config = NULL;
	struct timeval tick = {0, TICK_MICROSECONDS};
	struct timeval timeout;
	double wall, cpu;
	unsigned i;
	int status = 1;

	memset(&load, 0, sizeof(load));
	if (parse_options(argc, argv, &load.options) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	for (load.slot_count = 1; load.slot_count < 2 * load.options.window;)
		load.slot_count <<= 1;
	load.sessions = calloc(load.options.binds, sizeof(*load.sessions));
	config = event_config_new();
	if (bench_latencies_init(&load.latencies, load.options.messages) ==
		-1 ||
	    load.sessions == NULL || config == NULL) {
		fprintf(stderr, "smpp_load: out of memory\n");
		goto fail;
	}
	/* libevent's default clock moves in 4 ms steps here. */
	event_config_set_flag(config, EVENT_BASE_FLAG_PRECISE_TIMER);
	load.base = event_base_new_with_config(config);
	if (load.base == NULL)
		goto fail;
	if (load.options.record_path != NULL) {
		load.record = fopen(load.options.record_path, "a");
		if (load.record == NULL) {
			fprintf(stderr, "smpp_load: %s: %s\n",
			    load.options.record_path, strerror(errno));
			goto fail;
		}
	}
	load.finish_event = evtimer_new(load.base, load_finish_timeout, &load);
	load.timeout_event = evtimer_new(load.base, load_timeout, &load);
	load.tick_event =
	    event_new(load.base, -1, EV_PERSIST, load_tick, &load);
	load.signal_events[0] =
	    evsignal_new(load.base, SIGINT, load_signal, &load);
	load.signal_events[1] =
	    evsignal_new(load.base, SIGTERM, load_signal, &load);
	if (load.finish_event == NULL || load.timeout_event == NULL ||
	    load.tick_event == NULL || load.signal_events[0] == NULL ||
	    load.signal_events[1] == NULL)
		goto fail;
	evsignal_add(load.signal_events[0], NULL);
	evsignal_add(load.signal_events[1], NULL);
	timeout.tv_sec = load.options.timeout_seconds;
	timeout.tv_usec = 0;
	evtimer_add(load.timeout_event, &timeout);
	/* The tick paces --rate and flushes the record either way. */
	event_add(load.tick_event, &tick);
	for (i = 0; i < load.options.binds; i++)
		if (session_open(&load, &load.sessions[i], i) < 0) {
			fprintf(
			    stderr, "smpp_load: session %u: setup failed\n", i);
			goto fail;
		}
	event_base_dispatch(load.base);
	if (load.bound < load.options.binds && load.start_ns == 0) {
		fprintf(stderr, "smpp_load: only %u of %u binds succeeded\n",
		    load.bound, load.options.binds);
		goto fail;
	}
	wall = (double)(load.end_ns - load.start_ns) / 1e9;
	cpu = bench_cpu_seconds() - load.cpu_start;
	if (load.record != NULL && fflush(load.record) != 0) {
		fprintf(stderr, "smpp_load: %s: %s\n", load.options.record_path,
		    strerror(errno));
		goto fail;
	}
	load_report(&load, wall, cpu);
	status = load.answered_ok == load.options.messages ? 0 : 3;
fail:
	if (load.record != NULL)
		fclose(load.record);
	for (i = 0; load.sessions != NULL && i < load.options.binds; i++) {
		struct session *session = &load.sessions[i];

		if (session->read_event != NULL)
			event_free(session->read_event);
		if (session->write_event != NULL)
			event_free(session->write_event);
		if (session->fd > 0)
			close(session->fd);
		free(session->slots);
		free(session->input);
		free(session->output);
	}
	for (i = 0; i < 2; i++)
		if (load.signal_events[i] != NULL)
			event_free(load.signal_events[i]);
	if (load.tick_event != NULL)
		event_free(load.tick_event);
	if (load.timeout_event != NULL)
		event_free(load.timeout_event);
	if (load.finish_event != NULL)
		event_free(load.finish_event);
	if (load.base != NULL)
		event_base_free(load.base);
	if (config != NULL)
		event_config_free(config);
	free(load.sessions);
	bench_latencies_free(&load.latencies);
	return status;
}
