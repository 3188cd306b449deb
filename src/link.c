/*
 * link.c - upstream SMPP links: nudged binds to carrier SMSCs as an ESME.
 *
 * A link owns one transceiver connection, or a transmitter and a receiver
 * (bind = pair). Each connection is a bufferevent (plain or TLS) carrying
 * the bytes and an smpp/ session carrying the protocol: bind state,
 * sequence numbers, the window and every timer. The link adds what the
 * session leaves to its caller: the parts-per-second cap (a token bucket
 * with adaptive slow-down when the SMSC throttles), reconnects with
 * jittered exponential back-off, and answering deliver_sm only after the
 * store commit that holds what it brought. What messages mean is the
 * outbox's business: the link reports through struct link_events.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "smpp.h"
#include "nudged.h"

#define LINK_NITEMS(array) (sizeof(array) / sizeof((array)[0]))

#define LINK_SUBMIT_BUFFER_SIZE  4096 /* on the stack; covers short_message */
#define LINK_SUBMIT_MAX_SIZE     (70 * 1024) /* a 64 KB message_payload */
#define LINK_CONTROL_BUFFER_SIZE 256         /* bind, responses */
#define LINK_QUIET_PERIOD_US     2000000 /* no throttle that long: grow back */
#define LINK_PAUSE_MIN_US        100000  /* first pause after a throttle */
#define LINK_PAUSE_MAX_US        5000000
#define LINK_GROWTH_PER_SECOND   0.10     /* of the target rate, per second */
#define LINK_BURST_SECONDS       0.1      /* bucket depth: 100 ms of sending */
#define LINK_STABLE_BIND_US      10000000 /* a bind this long resets back-off */
#define LINK_UNBIND_TIMEOUT_US   5000000  /* at most; else response_timeout */
#define LINK_LINGER_US           1000000  /* to flush a last response */
#define LINK_JITTER_PERCENT      20
#define LINK_SENT_TIMES          1024 /* submit send times, by sequence */
#define LINK_READ_CHUNK          (64 * 1024)  /* one recv(), at most */
#define LINK_READ_BUDGET         (512 * 1024) /* one read callback, at most */
#define LINK_WRITE_MAX           (512 * 1024) /* one write, at most */

/* Which bind a connection makes. */
enum connection_kind {
	CONNECTION_TRANSCEIVER,
	CONNECTION_TRANSMITTER,
	CONNECTION_RECEIVER,
};

static const struct connection_kind_info {
	const char *name;
	uint32_t bind_command_id;
} connection_kinds[] = {
    [CONNECTION_TRANSCEIVER] = {"trx", SMPP_BIND_TRANSCEIVER},
    [CONNECTION_TRANSMITTER] = {"tx", SMPP_BIND_TRANSMITTER},
    [CONNECTION_RECEIVER] = {"rx", SMPP_BIND_RECEIVER},
};

static const char *const link_state_names[] = {
    [LINK_IDLE] = "IDLE",
    [LINK_CONNECTING] = "CONNECTING",
    [LINK_BINDING] = "BINDING",
    [LINK_BOUND] = "BOUND",
    [LINK_UNBINDING] = "UNBINDING",
    [LINK_BACKOFF] = "BACKOFF",
};

/* When a submit_sm left, to time its response. */
struct sent_time {
	uint32_t sequence_number;
	uint64_t sent_us;
};

/* Allocated once per connection: the session is about 40 KB. */
struct connection_memory {
	struct smpp_session session;
	struct sent_time sent[LINK_SENT_TIMES];
};

struct link_connection;

/*
 * A deliver_sm_resp waiting for the store commit. Why a list on the
 * connection: when the connection closes it detaches its waiters, so a
 * commit that lands later neither answers on a new connection (the SMSC
 * would see a sequence number it never sent there) nor touches freed memory.
 */
struct delivery_ack {
	TAILQ_ENTRY(delivery_ack) entry;
	struct link_connection *connection; /* NULL once it closed */
	uint64_t log_id;
	uint32_t response_command_id;
	uint32_t sequence_number;
	uint32_t status;
};
TAILQ_HEAD(delivery_ack_list, delivery_ack);

/* A closed connection still flushing its last response. */
struct lingering {
	TAILQ_ENTRY(lingering) entry;
	struct bufferevent *bufferevent;
	struct event *timer;
};
TAILQ_HEAD(lingering_list, lingering);

struct link_connection {
	struct link *link;
	enum connection_kind kind;
	enum link_state state;
	struct bufferevent *bufferevent; /* NULL when closed */
	struct connection_memory *memory;
	struct evbuffer *input; /* received, not yet framed; see _read */
	struct event *session_timer;
	uint64_t session_timer_due; /* SMPP_SESSION_NEVER: unarmed */
	struct event *reconnect_timer;
	uint64_t reconnect_delay_us; /* the next back-off */
	uint64_t generation;         /* bumped on open and close */
	uint64_t attempts;
	uint64_t bound_at_us;
	struct delivery_ack_list acks;
};

/* The parts-per-second cap and its adaptive slow-down. */
struct link_rate {
	double configured; /* tps; 0: no cap */
	double limit;      /* current cap; 0: none */
	double target;     /* what recovery grows back to */
	double tokens;
	uint64_t refilled_us;
	uint64_t grown_us;
	uint64_t last_throttle_us;
	uint64_t paused_until_us;
	uint64_t pause_us;
	uint64_t window_start_us; /* measured send rate */
	uint64_t window_sent;
	double previous_rate;
	struct event *timer;
	uint64_t timer_due;
};

struct link_metrics {
	struct metric *state;
	struct metric *binds;
	struct metric *reconnects;
	struct metric *submitted;
	struct metric *acknowledged;
	struct metric *throttled;
	struct metric *rejected;
	struct metric *timeouts;
	struct metric *delivered_in;
	struct metric *window_used;
	struct metric *rate_limit;
	struct metric *response_seconds;
};

struct link {
	const struct config_link *config;
	uint64_t log_id;
	enum link_state state; /* the transmitting connection's */
	size_t connection_count;
	struct link_connection connections[2];
	struct link_connection *transmit;
	struct link_connection *receive;
	struct link_rate rate;
	struct link_stats counters;
	struct link_metrics metrics;
};

/* Every link of the daemon; one event loop, so module state is fine. */
static struct {
	struct event_base *base;
	const struct config *config;
	struct link_events events;
	struct link **links;
	size_t count;
	struct evdns_base *dns;
	SSL_CTX *tls;
	int stopping;
	struct lingering_list lingering;
} links_module;

/* What one received PDU is, as the handlers see it. */
struct received {
	struct smpp_pdu pdu;
	uint32_t decode_status;
	struct smpp_session_event event;
};

typedef void received_handler_fn(
    struct link_connection *connection, const struct received *received);

static void connection_open(struct link_connection *connection);
static void connection_close(
    struct link_connection *connection, const char *reason, int flush);
static void connection_arm_timer(struct link_connection *connection);
static void connection_event(
    struct bufferevent *bufferevent, short what, void *arg);

/* submit -> response latency buckets, seconds. */
static const double response_seconds_bounds[] = {0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static uint64_t
now_us(void)
{
	return clock_monotonic_us();
}

static struct timeval
timeval_of(uint64_t microseconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(microseconds / 1000000);
	tv.tv_usec = (suseconds_t)(microseconds % 1000000);
	return tv;
}

/* A stable log id per link name (FNV-1a), the same across restarts. */
static uint64_t
link_log_id(const char *name)
{
	uint64_t hash = 0xcbf29ce484222325ULL;

	for (; *name != '\0'; name++) {
		hash ^= (unsigned char)*name;
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

static const char *
connection_name(const struct link_connection *connection)
{
	return connection_kinds[connection->kind].name;
}

static struct smpp_session *
connection_session(struct link_connection *connection)
{
	return &connection->memory->session;
}

static uint32_t
max_pdu_length(void)
{
	uint64_t length = links_module.config->smpp_max_pdu_length;

	return length > UINT32_MAX ? UINT32_MAX : (uint32_t)length;
}

static void
put_be32(uint8_t *out, uint32_t value)
{
	out[0] = (uint8_t)(value >> 24);
	out[1] = (uint8_t)(value >> 16);
	out[2] = (uint8_t)(value >> 8);
	out[3] = (uint8_t)value;
}

static uint32_t
get_be32(const uint8_t *in)
{
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
	       (uint32_t)in[2] << 8 | in[3];
}

const char *
link_strstate(enum link_state state)
{
	if ((unsigned int)state >= LINK_NITEMS(link_state_names))
		return "INVALID";
	return link_state_names[state];
}

/* Moves the link to state and logs "from -> to". */
static void
link_enter_state(struct link *link, enum link_state state)
{
	if (link->state == state)
		return;
	log_info(link->log_id, "link", "state", "name=%s from=%s to=%s",
	    link->config->name, link_strstate(link->state),
	    link_strstate(state));
	link->state = state;
	metrics_set(link->metrics.state, (double)state);
}

/* The transmitting connection drives the link's state; a receiver logs. */
static void
connection_enter_state(
    struct link_connection *connection, enum link_state state)
{
	struct link *link = connection->link;
	enum link_state from = connection->state;

	connection->state = state;
	if (connection == link->transmit)
		link_enter_state(link, state);
	else if (from != state)
		log_info(link->log_id, "link", "receiver-state",
		    "name=%s conn=%s from=%s to=%s", link->config->name,
		    connection_name(connection), link_strstate(from),
		    link_strstate(state));
}

/* smpp/ reports its own transitions; they are detail next to ours. */
static void
session_log_hook(void *argument, const struct smpp_session *session,
    enum smpp_session_state from, enum smpp_session_state to)
{
	struct link_connection *connection = argument;

	log_debug(connection->link->log_id, "link", "session-state",
	    "name=%s conn=%s from=%s to=%s", connection->link->config->name,
	    connection_name(connection), smpp_session_strstate(from),
	    smpp_session_strstate(to));
}

static void
link_update_window_gauge(struct link *link)
{
	metrics_set(
	    link->metrics.window_used, (double)smpp_session_outstanding(
					   connection_session(link->transmit)));
}

static void
link_notify_available(struct link *link)
{
	if (link->state != LINK_BOUND || links_module.stopping)
		return;
	if (links_module.events.available != NULL)
		links_module.events.available(links_module.events.arg, link);
}

/* ---- rate cap ----------------------------------------------------------- */

/* Depth of the token bucket: a tenth of a second of sending, at least 1. */
static double
rate_burst(double limit)
{
	double burst = limit * LINK_BURST_SECONDS;

	return burst < 1.0 ? 1.0 : burst;
}

/*
 * The cap at now: after a quiet period without throttling it grows back
 * additively towards the target, and an uncapped link becomes uncapped
 * again once there. Pure, so the stats can ask too.
 */
static double
rate_limit_at(const struct link_rate *rate, uint64_t now)
{
	uint64_t from;
	double limit = rate->limit;

	if (limit <= 0 || rate->last_throttle_us == 0)
		return limit;
	from = rate->last_throttle_us + LINK_QUIET_PERIOD_US;
	if (rate->grown_us > from)
		from = rate->grown_us;
	if (now <= from)
		return limit;
	if (limit < rate->target)
		limit += rate->target * LINK_GROWTH_PER_SECOND *
			 (double)(now - from) / 1e6;
	if (limit < rate->target)
		return limit;
	return rate->configured > 0 ? rate->target : 0;
}

/* Brings the cap and the bucket up to now. */
static void
rate_refill(struct link *link, uint64_t now)
{
	struct link_rate *rate = &link->rate;
	double limit;

	limit = rate_limit_at(rate, now);
	if (limit != rate->limit) {
		rate->limit = limit;
		rate->grown_us = now;
		metrics_set(link->metrics.rate_limit, limit);
		if (limit == 0 || limit >= rate->target)
			log_info(link->log_id, "link", "rate-recovered",
			    "name=%s rate=%.1f", link->config->name, limit);
	}
	if (rate->limit <= 0)
		return;
	/* refilled_us may lie ahead: a pause starts the bucket empty. */
	if (now > rate->refilled_us) {
		rate->tokens +=
		    (double)(now - rate->refilled_us) * rate->limit / 1e6;
		rate->refilled_us = now;
	}
	if (rate->tokens > rate_burst(rate->limit))
		rate->tokens = rate_burst(rate->limit);
}

/* How many parts the cap lets go now (SIZE_MAX: no cap). */
static size_t
rate_allowance(struct link *link, uint64_t now)
{
	struct link_rate *rate = &link->rate;

	if (now < rate->paused_until_us)
		return 0;
	rate_refill(link, now);
	if (rate->limit <= 0)
		return SIZE_MAX;
	return rate->tokens >= 1.0 ? (size_t)rate->tokens : 0;
}

/* The recent send rate, parts per second, for slowing an uncapped link. */
static double
rate_measured(const struct link_rate *rate, uint64_t now)
{
	uint64_t elapsed = now - rate->window_start_us;
	double current = 0, previous = rate->previous_rate;

	if (elapsed >= 100000)
		current = (double)rate->window_sent * 1e6 / (double)elapsed;
	if (elapsed > 2000000)
		previous = 0;
	return current > previous ? current : previous;
}

/* One part went out. */
static void
rate_consume(struct link *link, uint64_t now)
{
	struct link_rate *rate = &link->rate;

	if (rate->limit > 0)
		rate->tokens -= 1.0;
	if (now - rate->window_start_us >= 1000000) {
		rate->previous_rate = (double)rate->window_sent * 1e6 /
				      (double)(now - rate->window_start_us);
		rate->window_start_us = now;
		rate->window_sent = 0;
	}
	rate->window_sent++;
}

/* The cap said no: wake the outbox when the next part may go. */
static void
rate_wait(struct link *link, uint64_t now)
{
	struct link_rate *rate = &link->rate;
	struct timeval delay;
	uint64_t due;
	double tokens;

	due = now < rate->paused_until_us ? rate->paused_until_us : now;
	if (rate->limit > 0) {
		/* The bucket as it will be at due, then the time to one. */
		tokens = rate->tokens;
		if (due > rate->refilled_us)
			tokens += (double)(due - rate->refilled_us) *
				  rate->limit / 1e6;
		if (tokens < 1.0)
			due +=
			    (uint64_t)ceil((1.0 - tokens) * 1e6 / rate->limit);
	}
	if (due <= now)
		return;
	if (evtimer_pending(rate->timer, NULL) && rate->timer_due <= due)
		return;
	rate->timer_due = due;
	delay = timeval_of(due - now);
	evtimer_add(rate->timer, &delay);
}

static void
rate_timer_expired(evutil_socket_t fd, short what, void *arg)
{
	struct link *link = arg;

	link->rate.timer_due = 0;
	link_notify_available(link);
}

/* A fresh bind: the bucket starts full, any pause is over. */
static void
rate_reset(struct link *link, uint64_t now)
{
	struct link_rate *rate = &link->rate;

	rate->paused_until_us = 0;
	rate->refilled_us = now;
	rate->tokens = rate->limit > 0 ? rate_burst(rate->limit) : 0;
	rate->window_start_us = now;
	rate->window_sent = 0;
	rate->previous_rate = 0;
}

/*
 * The SMSC said ESME_RTHROTTLED or ESME_RMSGQFUL: halve the cap (from the
 * measured rate when uncapped, never below 1/s) and pause, 100 ms doubling
 * to 5 s while throttling continues. Answers to parts sent before the pause
 * began are counted but do not halve again.
 */
static void
link_slow_down(struct link *link, uint64_t now, uint32_t status)
{
	struct link_rate *rate = &link->rate;
	double base;
	int continuing;

	link->counters.throttled++;
	metrics_add(link->metrics.throttled, 1);
	rate_refill(link, now);
	continuing = rate->last_throttle_us != 0 &&
		     now - rate->last_throttle_us < LINK_QUIET_PERIOD_US;
	rate->last_throttle_us = now;
	if (now < rate->paused_until_us)
		return;
	if (rate->limit > 0)
		base = rate->limit;
	else {
		base = rate_measured(rate, now);
		if (base < 1.0)
			base = 1.0;
		rate->target = base;
	}
	if (rate->configured > 0)
		rate->target = rate->configured;
	rate->limit = base / 2 < 1.0 ? 1.0 : base / 2;
	rate->grown_us = now;
	if (continuing && rate->pause_us > 0)
		rate->pause_us = rate->pause_us * 2 > LINK_PAUSE_MAX_US
				     ? LINK_PAUSE_MAX_US
				     : rate->pause_us * 2;
	else
		rate->pause_us = LINK_PAUSE_MIN_US;
	rate->paused_until_us = now + rate->pause_us;
	rate->tokens = 0;
	rate->refilled_us = rate->paused_until_us;
	metrics_set(link->metrics.rate_limit, rate->limit);
	log_info(link->log_id, "link", "throttled",
	    "name=%s status=%s rate=%.1f pause_ms=%llu", link->config->name,
	    smpp_status_name(status), rate->limit,
	    (unsigned long long)(rate->pause_us / 1000));
}

/* ---- writing ------------------------------------------------------------ */

static void
connection_write(
    struct link_connection *connection, const uint8_t *bytes, size_t length)
{
	if (connection->bufferevent == NULL)
		return;
	if (bufferevent_write(connection->bufferevent, bytes, length) != 0)
		log_warnx(connection->link->log_id, "link", "write-failed",
		    "name=%s conn=%s length=%zu",
		    connection->link->config->name, connection_name(connection),
		    length);
}

/* Bodiless PDUs: enquire_link, unbind, their responses, generic_nack. */
static void
connection_send_header(struct link_connection *connection, uint32_t command_id,
    uint32_t status, uint32_t sequence_number)
{
	uint8_t header[SMPP_HEADER_LENGTH];

	smpp_pdu_encode_header_only(
	    header, sizeof(header), command_id, status, sequence_number);
	connection_write(connection, header, sizeof(header));
}

/*
 * Answers a request with its response command and status, and tells the
 * session (an unbind_resp closes it). deliver_sm_resp and data_sm_resp
 * carry their empty message_id, which peers expect.
 */
static void
connection_answer(struct link_connection *connection,
    uint32_t response_command_id, uint32_t status, uint32_t sequence_number)
{
	uint8_t buffer[LINK_CONTROL_BUFFER_SIZE];
	struct smpp_pdu pdu;
	int length;

	if (response_command_id == SMPP_DELIVER_SM_RESP ||
	    response_command_id == SMPP_DATA_SM_RESP) {
		memset(&pdu, 0, sizeof(pdu));
		pdu.command_id = response_command_id;
		pdu.command_status = status;
		pdu.sequence_number = sequence_number;
		pdu.message_id = "";
		length = smpp_pdu_encode(&pdu, buffer, sizeof(buffer));
	} else
		length = smpp_pdu_encode_header_only(buffer, sizeof(buffer),
		    response_command_id, status, sequence_number);
	if (length < 0) {
		log_warnx(connection->link->log_id, "link", "encode-failed",
		    "command=%s error=%s",
		    smpp_command_name(response_command_id),
		    smpp_pdu_encode_error_name(length));
		return;
	}
	connection_write(connection, buffer, (size_t)length);
	smpp_session_send_response(connection_session(connection),
	    response_command_id, status, now_us());
}

/* ---- deliver_sm responses after the commit ------------------------------ */

static void
delivery_ack_committed(void *arg, enum store_result result)
{
	struct delivery_ack *ack = arg;
	struct link_connection *connection = ack->connection;
	uint32_t status = ack->status;

	if (connection == NULL) {
		/* Unanswered, the SMSC delivers it again on a new bind. */
		log_info(ack->log_id, "link", "deliver-response-dropped",
		    "sequence=%u reason=connection-closed",
		    ack->sequence_number);
		free(ack);
		return;
	}
	TAILQ_REMOVE(&connection->acks, ack, entry);
	if (result != STORE_OK && status == SMPP_ESME_ROK) {
		log_warnx(ack->log_id, "link", "deliver-not-stored",
		    "name=%s sequence=%u answer=ESME_RX_T_APPN",
		    connection->link->config->name, ack->sequence_number);
		status = SMPP_ESME_RX_T_APPN;
	}
	connection_answer(
	    connection, ack->response_command_id, status, ack->sequence_number);
	free(ack);
}

/* Queues the answer to a deliver_sm / data_sm behind the store commit. */
static void
connection_answer_after_commit(struct link_connection *connection,
    uint32_t response_command_id, uint32_t status, uint32_t sequence_number)
{
	struct delivery_ack *ack;

	if (gateway == NULL || gateway->store == NULL) {
		/* No store (tools, tests): nothing to wait for. */
		connection_answer(
		    connection, response_command_id, status, sequence_number);
		return;
	}
	if ((ack = calloc(1, sizeof(*ack))) == NULL) {
		log_warn(connection->link->log_id, "link", "out-of-memory",
		    "name=%s", connection->link->config->name);
		connection_answer(connection, response_command_id,
		    SMPP_ESME_RX_T_APPN, sequence_number);
		return;
	}
	ack->connection = connection;
	ack->log_id = connection->link->log_id;
	ack->response_command_id = response_command_id;
	ack->sequence_number = sequence_number;
	ack->status = status;
	TAILQ_INSERT_TAIL(&connection->acks, ack, entry);
	store_after_commit(gateway->store, delivery_ack_committed, ack);
}

/* ---- handlers of what the SMSC sends ------------------------------------ */

/* submit_sm_resp, data_sm_resp or a generic_nack answering one of them. */
static void
handle_window_response(
    struct link_connection *connection, const struct received *received)
{
	struct link *link = connection->link;
	const struct smpp_pdu *pdu = &received->pdu;
	struct sent_time *sent;
	const char *message_id = NULL;
	uint32_t status = pdu->command_status;
	uint64_t now = now_us();

	sent =
	    &connection->memory->sent[pdu->sequence_number % LINK_SENT_TIMES];
	if (sent->sequence_number == pdu->sequence_number &&
	    sent->sent_us != 0) {
		metrics_observe(link->metrics.response_seconds,
		    (double)(now - sent->sent_us) / 1e6);
		sent->sent_us = 0;
	}
	if (pdu->command_id == SMPP_GENERIC_NACK && status == SMPP_ESME_ROK)
		status = SMPP_ESME_RUNKNOWNERR; /* a nack refuses, always */
	if (status == SMPP_ESME_ROK) {
		/*
		 * Accepted: the SMSC has it. An id we cannot read still
		 * means accepted; receipts just cannot be matched.
		 */
		message_id = pdu->message_id;
		if (received->decode_status != SMPP_ESME_ROK ||
		    message_id == NULL || message_id[0] == '\0') {
			log_warnx(link->log_id, "link", "response-without-id",
			    "name=%s sequence=%u decode=%s", link->config->name,
			    pdu->sequence_number,
			    smpp_status_name(received->decode_status));
			message_id = "";
		}
		link->counters.acknowledged++;
		metrics_add(link->metrics.acknowledged, 1);
	} else if (status == SMPP_ESME_RTHROTTLED ||
		   status == SMPP_ESME_RMSGQFUL)
		link_slow_down(link, now, status);
	else {
		link->counters.rejected++;
		metrics_add(link->metrics.rejected, 1);
	}
	link_update_window_gauge(link);
	if (links_module.events.response != NULL)
		links_module.events.response(links_module.events.arg, link,
		    received->event.cookie, status, message_id);
	if (connection == link->transmit)
		link_notify_available(link);
}

static void
handle_bound(
    struct link_connection *connection, const struct received *received)
{
	struct link *link = connection->link;
	uint64_t now = now_us();

	connection->bound_at_us = now;
	link->counters.binds++;
	metrics_add(link->metrics.binds, 1);
	log_info(link->log_id, "link", "bound",
	    "name=%s conn=%s smsc_system_id=%s", link->config->name,
	    connection_name(connection),
	    received->pdu.system_id != NULL ? received->pdu.system_id : "-");
	connection_enter_state(connection, LINK_BOUND);
	if (connection == link->transmit) {
		rate_reset(link, now);
		link_notify_available(link);
	}
}

/* Wrong credentials will not fix themselves: wait the longest back-off. */
static void
handle_bind_rejected(
    struct link_connection *connection, const struct received *received)
{
	struct link *link = connection->link;
	uint32_t status = received->pdu.command_status;

	if (status == SMPP_ESME_RINVPASWD || status == SMPP_ESME_RINVSYSID) {
		log_warnx(link->log_id, "link", "bind-refused-credentials",
		    "name=%s conn=%s system_id=%s status=%s "
		    "action=\"check system_id and password\" retry_ms=%llu",
		    link->config->name, connection_name(connection),
		    link->config->system_id, smpp_status_name(status),
		    (unsigned long long)(link->config->reconnect_max_us /
					 1000));
		connection->reconnect_delay_us = link->config->reconnect_max_us;
	} else
		log_warnx(link->log_id, "link", "bind-rejected",
		    "name=%s conn=%s status=%s", link->config->name,
		    connection_name(connection), smpp_status_name(status));
	connection_close(connection, "bind-rejected", 0);
}

static void
handle_unbind_done(
    struct link_connection *connection, const struct received *received)
{
	connection_close(connection, "unbound", 0);
}

static void
handle_enquire_link_answered(
    struct link_connection *connection, const struct received *received)
{
}

static void
handle_response_mismatch(
    struct link_connection *connection, const struct received *received)
{
	log_warnx(connection->link->log_id, "link", "response-mismatch",
	    "name=%s conn=%s command=%s sequence=%u",
	    connection->link->config->name, connection_name(connection),
	    smpp_command_name(received->pdu.command_id),
	    received->pdu.sequence_number);
}

/* Typically the answer to a request that already timed out. */
static void
handle_response_unknown(
    struct link_connection *connection, const struct received *received)
{
	log_info(connection->link->log_id, "link", "response-unknown",
	    "name=%s conn=%s command=%s sequence=%u status=%s",
	    connection->link->config->name, connection_name(connection),
	    smpp_command_name(received->pdu.command_id),
	    received->pdu.sequence_number,
	    smpp_status_name(received->pdu.command_status));
}

/* What a response means depends on what the session matched it to. */
static received_handler_fn *const response_handlers[] = {
    [SMPP_SESSION_EVENT_RESPONSE] = handle_window_response,
    [SMPP_SESSION_EVENT_BOUND] = handle_bound,
    [SMPP_SESSION_EVENT_BIND_REJECTED] = handle_bind_rejected,
    [SMPP_SESSION_EVENT_UNBIND_DONE] = handle_unbind_done,
    [SMPP_SESSION_EVENT_ENQUIRE_LINK_ANSWERED] = handle_enquire_link_answered,
    [SMPP_SESSION_EVENT_RESPONSE_MISMATCH] = handle_response_mismatch,
    [SMPP_SESSION_EVENT_RESPONSE_UNKNOWN] = handle_response_unknown,
};

static void
handle_response(
    struct link_connection *connection, const struct received *received)
{
	unsigned int type = received->event.type;

	if (type < LINK_NITEMS(response_handlers) &&
	    response_handlers[type] != NULL)
		response_handlers[type](connection, received);
}

/* A receipt or an MO: the outbox stores it; the answer waits for that. */
static void
handle_deliver(
    struct link_connection *connection, const struct received *received)
{
	struct link *link = connection->link;
	const struct smpp_pdu *pdu = &received->pdu;
	char source[LOG_MASKED_NUMBER_SIZE];
	uint64_t generation = connection->generation;
	uint32_t status = SMPP_ESME_RX_T_APPN;

	link->counters.delivered_in++;
	metrics_add(link->metrics.delivered_in, 1);
	/* Why the test: the arguments cost even when the line is not kept. */
	if (log_get_level() >= LOG_LEVEL_DEBUG)
		log_debug(link->log_id, "link", "deliver",
		    "name=%s conn=%s command=%s sequence=%u source=%s "
		    "esm_class=0x%02x",
		    link->config->name, connection_name(connection),
		    smpp_command_name(pdu->command_id), pdu->sequence_number,
		    log_mask_number(pdu->source_addr, source, sizeof(source)),
		    pdu->esm_class);
	if (links_module.events.deliver != NULL)
		status = links_module.events.deliver(
		    links_module.events.arg, link, pdu);
	if (connection->generation != generation)
		return; /* closed meanwhile: the SMSC will deliver it again */
	connection_answer_after_commit(connection,
	    received->event.response_command_id, status, pdu->sequence_number);
}

static void
handle_enquire_link(
    struct link_connection *connection, const struct received *received)
{
	connection_answer(connection, SMPP_ENQUIRE_LINK_RESP, SMPP_ESME_ROK,
	    received->pdu.sequence_number);
}

/* The SMSC leaves: answer, flush, and come back after the back-off. */
static void
handle_unbind(
    struct link_connection *connection, const struct received *received)
{
	log_info(connection->link->log_id, "link", "unbind-received",
	    "name=%s conn=%s", connection->link->config->name,
	    connection_name(connection));
	connection_answer(connection, SMPP_UNBIND_RESP, SMPP_ESME_ROK,
	    received->pdu.sequence_number);
	connection_close(connection, "peer-unbound", 1);
}

static void
handle_alert_notification(
    struct link_connection *connection, const struct received *received)
{
	char source[LOG_MASKED_NUMBER_SIZE];

	log_info(connection->link->log_id, "link", "alert-notification",
	    "name=%s conn=%s source=%s", connection->link->config->name,
	    connection_name(connection),
	    log_mask_number(received->pdu.source_addr, source, sizeof(source)));
}

static void
handle_outbind(
    struct link_connection *connection, const struct received *received)
{
	log_info(connection->link->log_id, "link", "outbind-ignored",
	    "name=%s conn=%s", connection->link->config->name,
	    connection_name(connection));
}

/* command_id -> handler for everything an SMSC may send an ESME. */
static const struct pdu_handler {
	uint32_t command_id;
	received_handler_fn *handle;
} pdu_handlers[] = {
    {SMPP_SUBMIT_SM_RESP, handle_response},
    {SMPP_DATA_SM_RESP, handle_response},
    {SMPP_GENERIC_NACK, handle_response},
    {SMPP_BIND_TRANSCEIVER_RESP, handle_response},
    {SMPP_BIND_TRANSMITTER_RESP, handle_response},
    {SMPP_BIND_RECEIVER_RESP, handle_response},
    {SMPP_ENQUIRE_LINK_RESP, handle_response},
    {SMPP_UNBIND_RESP, handle_response},
    {SMPP_DELIVER_SM, handle_deliver},
    {SMPP_DATA_SM, handle_deliver},
    {SMPP_ENQUIRE_LINK, handle_enquire_link},
    {SMPP_UNBIND, handle_unbind},
    {SMPP_ALERT_NOTIFICATION, handle_alert_notification},
    {SMPP_OUTBIND, handle_outbind},
};

static received_handler_fn *
find_handler(uint32_t command_id)
{
	size_t i;

	for (i = 0; i < LINK_NITEMS(pdu_handlers); i++)
		if (pdu_handlers[i].command_id == command_id)
			return pdu_handlers[i].handle;
	return NULL;
}

/*
 * One framed PDU: decode, let the session judge it, then either refuse a
 * request with the status found (keeping the session) or hand it to its
 * handler.
 */
static void
connection_receive(
    struct link_connection *connection, const uint8_t *data, size_t length)
{
	struct received received;
	received_handler_fn *handle;
	uint32_t status;

	received.decode_status = smpp_pdu_decode(data, length, &received.pdu);
	smpp_session_receive(connection_session(connection),
	    received.pdu.command_id, received.pdu.command_status,
	    received.pdu.sequence_number, now_us(), &received.event);
	if (received.event.type == SMPP_SESSION_EVENT_IGNORED)
		return;
	handle = find_handler(received.pdu.command_id);
	if (received.pdu.command_id & SMPP_RESPONSE_BIT) {
		handle_response(connection, &received);
		return;
	}
	status = received.event.status;
	if (status == SMPP_ESME_ROK)
		status = received.decode_status;
	if (status == SMPP_ESME_ROK && handle == NULL)
		status = SMPP_ESME_RINVCMDID;
	if (status != SMPP_ESME_ROK) {
		log_info(connection->link->log_id, "link", "request-refused",
		    "name=%s conn=%s command=%s sequence=%u status=%s",
		    connection->link->config->name, connection_name(connection),
		    smpp_command_name(received.pdu.command_id),
		    received.pdu.sequence_number, smpp_status_name(status));
		if (received.event.response_command_id != 0)
			connection_answer(connection,
			    received.event.response_command_id, status,
			    received.pdu.sequence_number);
		else if (status == SMPP_ESME_RINVCMDID)
			connection_answer(connection, SMPP_GENERIC_NACK, status,
			    received.pdu.sequence_number);
		return;
	}
	handle(connection, &received);
}

/*
 * A command_length outside bounds: the stream cannot be re-synchronised,
 * so answer generic_nack ESME_RINVCMDLEN and close.
 */
static void
connection_reject_stream(struct link_connection *connection,
    struct evbuffer *input, uint32_t command_length)
{
	uint8_t header[SMPP_HEADER_LENGTH];
	uint32_t sequence_number = 0;

	if (evbuffer_copyout(input, header, sizeof(header)) ==
	    (ev_ssize_t)sizeof(header))
		sequence_number = get_be32(header + 12);
	log_warnx(connection->link->log_id, "link", "invalid-command-length",
	    "name=%s conn=%s command_length=%u", connection->link->config->name,
	    connection_name(connection), command_length);
	connection_send_header(connection, SMPP_GENERIC_NACK,
	    SMPP_ESME_RINVCMDLEN, sequence_number);
	connection_close(connection, "invalid-command-length", 1);
}

/* Handles every whole PDU in input; -1 once the connection closed. */
static int
connection_receive_all(
    struct link_connection *connection, struct evbuffer *input)
{
	uint64_t generation = connection->generation;
	const uint8_t *data;
	uint8_t head[4];
	uint32_t pdu_length;
	size_t available;

	while ((available = evbuffer_get_length(input)) >= sizeof(head)) {
		evbuffer_copyout(input, head, sizeof(head));
		/* Four octets are enough to judge the length. */
		if (smpp_pdu_frame(head, sizeof(head), max_pdu_length(),
			&pdu_length) == SMPP_FRAME_INVALID) {
			connection_reject_stream(connection, input, pdu_length);
			return -1;
		}
		if (available < pdu_length)
			break;
		if ((data = evbuffer_pullup(input, pdu_length)) == NULL) {
			connection_close(connection, "out-of-memory", 0);
			return -1;
		}
		connection_receive(connection, data, pdu_length);
		/* A handler may have closed it: stop reading then. */
		if (connection->generation != generation)
			return -1;
		evbuffer_drain(input, pdu_length);
	}
	return 0;
}

/*
 * Up to most more octets from a plain socket: how many, 0 if it would
 * block, -1 once the connection closed (end of stream or an error).
 */
static ssize_t
connection_read_more(struct link_connection *connection,
    struct bufferevent *bufferevent, evutil_socket_t fd, size_t most)
{
	struct evbuffer_iovec space;
	ssize_t got;

	if (evbuffer_reserve_space(
		connection->input, (ev_ssize_t)most, &space, 1) != 1)
		return 0;
	got = recv(fd, space.iov_base, most, 0);
	if (got > 0) {
		space.iov_len = (size_t)got;
		evbuffer_commit_space(connection->input, &space, 1);
		return got;
	}
	if (got == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	/* What the bufferevent would have reported on its next read. */
	connection_event(bufferevent,
	    BEV_EVENT_READING | (got == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR),
	    connection);
	return -1;
}

/*
 * Reads every whole PDU there is. Why not only what the bufferevent read:
 * libevent 2.1 reads a socket 4 KB at a time, once per loop turn, and a
 * turn here ends in a store commit (an fsync), so responses and receipts
 * came in at 4 KB per commit, about 17 messages, and the window sat full
 * of answered submits. A plain socket is read on until it would block (at
 * most LINK_READ_BUDGET a call), so a whole window shares one commit. The
 * bytes live in the connection's own buffer (the bufferevent's input
 * accepts no data from outside its own reads); TLS is left to the
 * bufferevent.
 */
static void
connection_read(struct bufferevent *bufferevent, void *arg)
{
	struct link_connection *connection = arg;
	struct evbuffer *input = connection->input;
	evutil_socket_t fd = -1;
	size_t budget = LINK_READ_BUDGET;
	ssize_t got;

	evbuffer_add_buffer(input, bufferevent_get_input(bufferevent));
	if (!connection->link->config->tls)
		fd = bufferevent_getfd(bufferevent);
	for (;;) {
		if (connection_receive_all(connection, input) == -1)
			return;
		if (fd < 0 || budget == 0)
			break;
		got = connection_read_more(connection, bufferevent, fd,
		    budget < LINK_READ_CHUNK ? budget : LINK_READ_CHUNK);
		if (got == -1)
			return;
		if (got == 0)
			break;
		budget -= (size_t)got;
	}
	connection_arm_timer(connection);
}

/* ---- connections -------------------------------------------------------- */

/* Arms the session timer if next_wakeup is earlier than what is armed. */
static void
connection_arm_timer(struct link_connection *connection)
{
	struct timeval delay;
	uint64_t wakeup, now;

	if (connection->bufferevent == NULL)
		return;
	wakeup = smpp_session_next_wakeup(connection_session(connection));
	if (wakeup == SMPP_SESSION_NEVER)
		return;
	if (evtimer_pending(connection->session_timer, NULL) &&
	    connection->session_timer_due <= wakeup)
		return; /* fires early at worst, polls, re-arms */
	now = now_us();
	delay = timeval_of(wakeup > now ? wakeup - now : 0);
	evtimer_add(connection->session_timer, &delay);
	connection->session_timer_due = wakeup;
}

/* Does what the session says is due: enquire_link, expiries, closing. */
static void
connection_session_timer(evutil_socket_t fd, short what, void *arg)
{
	struct link_connection *connection = arg;
	struct link *link = connection->link;
	struct smpp_session *session = connection_session(connection);
	struct smpp_session_action action;
	uint64_t generation = connection->generation, now = now_us();
	int expired = 0;

	connection->session_timer_due = SMPP_SESSION_NEVER;
	while (smpp_session_poll(session, now, &action) !=
	       SMPP_SESSION_ACTION_NONE) {
		switch (action.type) {
		case SMPP_SESSION_ACTION_SEND_ENQUIRE_LINK:
			connection_send_header(connection, SMPP_ENQUIRE_LINK,
			    SMPP_ESME_ROK, action.sequence_number);
			break;
		case SMPP_SESSION_ACTION_SEND_UNBIND:
			connection_send_header(connection, SMPP_UNBIND,
			    SMPP_ESME_ROK, action.sequence_number);
			connection_enter_state(connection, LINK_UNBINDING);
			break;
		case SMPP_SESSION_ACTION_REQUEST_EXPIRED:
			expired++;
			link->counters.timeouts++;
			metrics_add(link->metrics.timeouts, 1);
			log_info(link->log_id, "link", "response-timeout",
			    "name=%s conn=%s command=%s sequence=%u",
			    link->config->name, connection_name(connection),
			    smpp_command_name(action.command_id),
			    action.sequence_number);
			link_update_window_gauge(link);
			if (links_module.events.lost != NULL)
				links_module.events.lost(
				    links_module.events.arg, link,
				    action.cookie, "response-timeout");
			break;
		case SMPP_SESSION_ACTION_CLOSE:
		case SMPP_SESSION_ACTION_REQUEST_FAILED:
		default:
			connection_close(connection,
			    smpp_session_strreason(action.reason), 0);
			return;
		}
		if (connection->generation != generation)
			return;
	}
	/* Expired requests free their window slots. */
	if (expired > 0 && connection == link->transmit)
		link_notify_available(link);
	if (connection->generation == generation)
		connection_arm_timer(connection);
}

/* The back-off from reconnect_min doubling to reconnect_max, +-20%. */
static uint64_t
jittered(uint64_t delay_us)
{
	uint64_t span = delay_us * LINK_JITTER_PERCENT / 100;

	if (span == 0 || span > UINT32_MAX / 2)
		return delay_us;
	return delay_us - span + arc4random_uniform((uint32_t)(2 * span + 1));
}

static void
connection_schedule_reconnect(struct link_connection *connection)
{
	const struct config_link *config = connection->link->config;
	struct timeval tv;
	uint64_t delay;

	delay = jittered(connection->reconnect_delay_us);
	connection->reconnect_delay_us =
	    connection->reconnect_delay_us * 2 > config->reconnect_max_us
		? config->reconnect_max_us
		: connection->reconnect_delay_us * 2;
	connection_enter_state(connection, LINK_BACKOFF);
	log_info(connection->link->log_id, "link", "reconnect-scheduled",
	    "name=%s conn=%s delay_ms=%llu", config->name,
	    connection_name(connection), (unsigned long long)(delay / 1000));
	tv = timeval_of(delay);
	evtimer_add(connection->reconnect_timer, &tv);
}

static void
connection_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
	struct link_connection *connection = arg;

	if (!links_module.stopping)
		connection_open(connection);
}

static void
lingering_free(struct lingering *lingering)
{
	TAILQ_REMOVE(&links_module.lingering, lingering, entry);
	bufferevent_free(lingering->bufferevent);
	event_free(lingering->timer);
	free(lingering);
}

static void
lingering_written(struct bufferevent *bufferevent, void *arg)
{
	lingering_free(arg);
}

static void
lingering_event(struct bufferevent *bufferevent, short what, void *arg)
{
	lingering_free(arg);
}

static void
lingering_expired(evutil_socket_t fd, short what, void *arg)
{
	lingering_free(arg);
}

/*
 * Lets go of the bufferevent. With flush, a last response still in the
 * output buffer (unbind_resp, generic_nack) gets up to a second to leave.
 */
static void
connection_release_bufferevent(struct link_connection *connection, int flush)
{
	struct bufferevent *bufferevent = connection->bufferevent;
	struct lingering *lingering;
	struct timeval tv;

	connection->bufferevent = NULL;
	if (!flush ||
	    evbuffer_get_length(bufferevent_get_output(bufferevent)) == 0 ||
	    (lingering = calloc(1, sizeof(*lingering))) == NULL) {
		bufferevent_free(bufferevent);
		return;
	}
	lingering->timer =
	    evtimer_new(links_module.base, lingering_expired, lingering);
	if (lingering->timer == NULL) {
		free(lingering);
		bufferevent_free(bufferevent);
		return;
	}
	lingering->bufferevent = bufferevent;
	TAILQ_INSERT_TAIL(&links_module.lingering, lingering, entry);
	bufferevent_disable(bufferevent, EV_READ);
	bufferevent_setwatermark(bufferevent, EV_WRITE, 0, 0);
	bufferevent_setcb(
	    bufferevent, NULL, lingering_written, lingering_event, lingering);
	tv = timeval_of(LINK_LINGER_US);
	evtimer_add(lingering->timer, &tv);
}

/* Detaches the deliver_sm answers still waiting for a commit. */
static void
connection_detach_acks(struct link_connection *connection)
{
	struct delivery_ack *ack;

	while ((ack = TAILQ_FIRST(&connection->acks)) != NULL) {
		TAILQ_REMOVE(&connection->acks, ack, entry);
		ack->connection = NULL;
	}
}

/*
 * Closes the connection and schedules the reconnect (unless stopping).
 * Every request still in the window was sent and will get no response:
 * each is reported lost, after the state changed, so the outbox sees a
 * link that is no longer bound.
 */
static void
connection_close(
    struct link_connection *connection, const char *reason, int flush)
{
	struct link *link = connection->link;
	struct smpp_session *session = connection_session(connection);
	struct smpp_session_action action;
	uint64_t now = now_us(), bound_for_us = 0;

	if (connection->bufferevent == NULL)
		return;
	connection->generation++;
	connection_detach_acks(connection);
	connection_release_bufferevent(connection, flush);
	evtimer_del(connection->session_timer);
	connection->session_timer_due = SMPP_SESSION_NEVER;
	if ((connection->state == LINK_BOUND ||
		connection->state == LINK_UNBINDING) &&
	    connection->bound_at_us != 0)
		bound_for_us = now - connection->bound_at_us;
	connection->bound_at_us = 0;
	smpp_session_enter_state(session, SMPP_SESSION_CLOSED, now);
	log_info(link->log_id, "link", "disconnected",
	    "name=%s conn=%s reason=\"%s\" outstanding=%u bound_ms=%llu",
	    link->config->name, connection_name(connection), reason,
	    smpp_session_outstanding(session),
	    (unsigned long long)(bound_for_us / 1000));
	if (bound_for_us >= LINK_STABLE_BIND_US)
		connection->reconnect_delay_us = link->config->reconnect_min_us;
	if (links_module.stopping)
		connection_enter_state(connection, LINK_IDLE);
	else
		connection_schedule_reconnect(connection);
	while (smpp_session_poll(session, now, &action) ==
	       SMPP_SESSION_ACTION_REQUEST_FAILED) {
		if (links_module.events.lost != NULL)
			links_module.events.lost(links_module.events.arg, link,
			    action.cookie, "connection-lost");
	}
	link_update_window_gauge(link);
}

/* TLS context shared by every link: system roots, TLS 1.2 at least. */
static SSL_CTX *
tls_context(void)
{
	if (links_module.tls != NULL)
		return links_module.tls;
	if ((links_module.tls = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(links_module.tls, TLS1_2_VERSION);
	if (SSL_CTX_set_default_verify_paths(links_module.tls) != 1)
		log_warnx(0, "link", "tls-roots-missing", NULL);
	return links_module.tls;
}

static int
is_ip_literal(const char *host)
{
	struct in6_addr address;

	return inet_pton(AF_INET, host, &address) == 1 ||
	       inet_pton(AF_INET6, host, &address) == 1;
}

/* A plain socket bufferevent, or one wrapped in TLS (verifying the peer). */
static struct bufferevent *
connection_new_bufferevent(struct link_connection *connection)
{
	const struct config_link *config = connection->link->config;
	struct bufferevent *bufferevent;
	SSL_CTX *context;
	SSL *ssl;

	if (!config->tls)
		return bufferevent_socket_new(
		    links_module.base, -1, BEV_OPT_CLOSE_ON_FREE);
	if ((context = tls_context()) == NULL ||
	    (ssl = SSL_new(context)) == NULL) {
		log_warnx(connection->link->log_id, "link", "tls-failed",
		    "name=%s error=\"%s\"", config->name,
		    ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	/* RFC 6066: no IP literal in SNI. */
	if (!is_ip_literal(config->host))
		SSL_set_tlsext_host_name(ssl, config->host);
	if (config->tls_verify) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (is_ip_literal(config->host))
			X509_VERIFY_PARAM_set1_ip_asc(
			    SSL_get0_param(ssl), config->host);
		else
			SSL_set1_host(ssl, config->host);
	} else
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	/* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl. */
	bufferevent = bufferevent_openssl_socket_new(links_module.base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bufferevent != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bufferevent, 1);
	return bufferevent;
}

/* TCP (and TLS) is up: bind. */
static void
connection_connected(struct link_connection *connection)
{
	const struct config_link *config = connection->link->config;
	uint8_t buffer[LINK_CONTROL_BUFFER_SIZE];
	struct smpp_pdu pdu;
	evutil_socket_t fd;
	uint32_t status;
	int length, on = 1;

	fd = bufferevent_getfd(connection->bufferevent);
	/* Responses are small and latency-bound: no Nagle. */
	if (fd >= 0 &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		log_warn(connection->link->log_id, "link", "nodelay-failed",
		    "name=%s", config->name);
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = connection_kinds[connection->kind].bind_command_id;
	pdu.system_id = config->system_id;
	pdu.password = config->password;
	pdu.system_type = config->system_type;
	pdu.interface_version = SMPP_INTERFACE_VERSION;
	status = smpp_session_send_request(connection_session(connection),
	    pdu.command_id, 0, now_us(), &pdu.sequence_number);
	length = status == SMPP_ESME_ROK
		     ? smpp_pdu_encode(&pdu, buffer, sizeof(buffer))
		     : SMPP_PDU_ENCODE_INVALID_FIELD;
	if (length < 0) {
		log_warnx(connection->link->log_id, "link", "bind-not-sent",
		    "name=%s status=%s error=%s", config->name,
		    smpp_status_name(status),
		    smpp_pdu_encode_error_name(length));
		connection_close(connection, "bind-not-sent", 0);
		return;
	}
	log_info(connection->link->log_id, "link", "connected",
	    "name=%s conn=%s host=%s port=%lld tls=%s", config->name,
	    connection_name(connection), config->host, (long long)config->port,
	    config->tls ? "yes" : "no");
	connection_write(connection, buffer, (size_t)length);
	connection_enter_state(connection, LINK_BINDING);
	connection_arm_timer(connection);
}

/* Connected, or the peer went away, or the connect / TLS / DNS failed. */
static void
connection_event(struct bufferevent *bufferevent, short what, void *arg)
{
	struct link_connection *connection = arg;
	char error[160];
	int socket_error = EVUTIL_SOCKET_ERROR(), dns_error;
	unsigned long tls_error;

	if (what & BEV_EVENT_CONNECTED) {
		connection_connected(connection);
		return;
	}
	error[0] = '\0';
	if ((dns_error = bufferevent_socket_get_dns_error(bufferevent)) != 0)
		snprintf(
		    error, sizeof(error), "%s", evutil_gai_strerror(dns_error));
	else if (connection->link->config->tls &&
		 (tls_error = bufferevent_get_openssl_error(bufferevent)) != 0)
		ERR_error_string_n(tls_error, error, sizeof(error));
	else if (what & BEV_EVENT_ERROR)
		snprintf(error, sizeof(error), "%s",
		    evutil_socket_error_to_string(socket_error));
	log_info(connection->link->log_id, "link", "connection-event",
	    "name=%s conn=%s state=%s event=%s error=\"%s\"",
	    connection->link->config->name, connection_name(connection),
	    link_strstate(connection->state),
	    (what & BEV_EVENT_EOF) ? "eof" : "error", error);
	connection_close(connection,
	    (what & BEV_EVENT_EOF) ? "peer-closed" : "connection-error", 0);
}

/*
 * Starts a connection: a fresh session (its bind timeout also bounds the
 * TCP connect and the TLS handshake), a bufferevent, a non-blocking
 * connect through the DNS base.
 */
static void
connection_open(struct link_connection *connection)
{
	struct link *link = connection->link;
	const struct config_link *config = link->config;
	struct smpp_session_config session_config;
	struct bufferevent *bufferevent;
	uint64_t generation;

	memset(&session_config, 0, sizeof(session_config));
	session_config.window_size = (unsigned int)config->window;
	session_config.enquire_link_interval = config->enquire_link_us;
	session_config.response_timeout = config->response_timeout_us;
	session_config.bind_timeout = config->bind_timeout_us;
	session_config.unbind_timeout =
	    config->response_timeout_us < LINK_UNBIND_TIMEOUT_US
		? config->response_timeout_us
		: LINK_UNBIND_TIMEOUT_US;
	if (smpp_session_init(connection_session(connection), SMPP_SESSION_ESME,
		&session_config, now_us()) != 0) {
		log_warnx(link->log_id, "link", "bad-session-config",
		    "name=%s window=%lld", config->name,
		    (long long)config->window);
		connection_enter_state(connection, LINK_IDLE);
		return;
	}
	smpp_session_set_log_hook(
	    connection_session(connection), session_log_hook, connection);
	memset(connection->memory->sent, 0, sizeof(connection->memory->sent));
	if ((bufferevent = connection_new_bufferevent(connection)) == NULL) {
		connection_schedule_reconnect(connection);
		return;
	}
	connection->bufferevent = bufferevent;
	connection->generation++;
	/* What the last connection left unframed is not this one's. */
	evbuffer_drain(
	    connection->input, evbuffer_get_length(connection->input));
	/* A window of submits leaves in one write, not 16 KB a turn. */
	bufferevent_set_max_single_write(bufferevent, LINK_WRITE_MAX);
	if (connection->attempts++ > 0) {
		link->counters.reconnects++;
		metrics_add(link->metrics.reconnects, 1);
	}
	bufferevent_setcb(
	    bufferevent, connection_read, NULL, connection_event, connection);
	bufferevent_enable(bufferevent, EV_READ | EV_WRITE);
	connection_enter_state(connection, LINK_CONNECTING);
	log_debug(link->log_id, "link", "connecting",
	    "name=%s conn=%s host=%s port=%lld", config->name,
	    connection_name(connection), config->host, (long long)config->port);
	generation = connection->generation;
	if (bufferevent_socket_connect_hostname(bufferevent, links_module.dns,
		AF_UNSPEC, config->host, (int)config->port) != 0) {
		if (connection->generation == generation)
			connection_close(connection, "connect-failed", 0);
		return;
	}
	/* A numeric host may fail at once, inside the call. */
	if (connection->generation == generation)
		connection_arm_timer(connection);
}

/* Sends unbind on a bound connection, or just closes one that is not. */
static void
connection_stop(struct link_connection *connection)
{
	uint32_t sequence_number;

	switch (connection->state) {
	case LINK_BACKOFF:
		evtimer_del(connection->reconnect_timer);
		connection_enter_state(connection, LINK_IDLE);
		break;
	case LINK_CONNECTING:
	case LINK_BINDING:
		connection_close(connection, "stopping", 0);
		break;
	case LINK_BOUND:
		if (smpp_session_send_request(connection_session(connection),
			SMPP_UNBIND, 0, now_us(),
			&sequence_number) != SMPP_ESME_ROK) {
			connection_close(connection, "stopping", 0);
			break;
		}
		connection_send_header(
		    connection, SMPP_UNBIND, SMPP_ESME_ROK, sequence_number);
		connection_enter_state(connection, LINK_UNBINDING);
		connection_arm_timer(connection);
		break;
	case LINK_IDLE:
	case LINK_UNBINDING:
		break;
	}
}

/* ---- links -------------------------------------------------------------- */

/* Registers the link's Prometheus series, label link="NAME". */
static void
link_register_metrics(struct link *link)
{
	struct link_metrics *metrics = &link->metrics;
	char labels[160], name[128];
	size_t i;

	snprintf(name, sizeof(name), "%s", link->config->name);
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] == '"' || name[i] == '\\' || name[i] == '\n')
			name[i] = '_';
	snprintf(labels, sizeof(labels), "link=\"%s\"", name);
	metrics->state = metrics_gauge("nudge_link_state", labels,
	    "Link state: 0 idle, 1 connecting, 2 binding, 3 bound, "
	    "4 unbinding, 5 backoff.");
	metrics->binds = metrics_counter(
	    "nudge_link_binds_total", labels, "Successful binds.");
	metrics->reconnects = metrics_counter("nudge_link_reconnects_total",
	    labels, "Connection attempts after the first.");
	metrics->submitted = metrics_counter(
	    "nudge_link_submitted_total", labels, "submit_sm sent.");
	metrics->acknowledged = metrics_counter("nudge_link_acknowledged_total",
	    labels, "submit_sm_resp with status 0.");
	metrics->throttled = metrics_counter("nudge_link_throttled_total",
	    labels, "Responses ESME_RTHROTTLED or ESME_RMSGQFUL.");
	metrics->rejected = metrics_counter("nudge_link_rejected_total", labels,
	    "Responses with other error statuses.");
	metrics->timeouts = metrics_counter("nudge_link_timeouts_total", labels,
	    "Requests without a response in time.");
	metrics->delivered_in = metrics_counter("nudge_link_deliver_total",
	    labels, "deliver_sm and data_sm received.");
	metrics->window_used = metrics_gauge("nudge_link_window_used", labels,
	    "Submits awaiting their response.");
	metrics->rate_limit = metrics_gauge("nudge_link_rate_limit", labels,
	    "Current cap in parts per second; 0: none.");
	metrics->response_seconds =
	    metrics_histogram("nudge_link_submit_response_seconds", labels,
		"Time from submit_sm to its response.", response_seconds_bounds,
		LINK_NITEMS(response_seconds_bounds));
	metrics_set(metrics->state, (double)LINK_IDLE);
	metrics_set(metrics->rate_limit, link->rate.limit);
}

static void
connection_init(struct link *link, struct link_connection *connection,
    enum connection_kind kind)
{
	connection->link = link;
	connection->kind = kind;
	connection->state = LINK_IDLE;
	connection->session_timer_due = SMPP_SESSION_NEVER;
	connection->reconnect_delay_us = link->config->reconnect_min_us;
	TAILQ_INIT(&connection->acks);
	connection->memory = calloc(1, sizeof(*connection->memory));
	connection->input = evbuffer_new();
	connection->session_timer = evtimer_new(
	    links_module.base, connection_session_timer, connection);
	connection->reconnect_timer = evtimer_new(
	    links_module.base, connection_reconnect_timer, connection);
	if (connection->memory == NULL || connection->input == NULL ||
	    connection->session_timer == NULL ||
	    connection->reconnect_timer == NULL)
		fatal("link", "out-of-memory", "name=%s", link->config->name);
	/* A session that never opened reports CLOSED with nothing in it. */
	connection->memory->session.state = SMPP_SESSION_CLOSED;
}

static struct link *
link_new(const struct config_link *config)
{
	struct link *link;

	if ((link = calloc(1, sizeof(*link))) == NULL)
		fatal("link", "out-of-memory", "name=%s", config->name);
	link->config = config;
	link->log_id = link_log_id(config->name);
	link->state = LINK_IDLE;
	if (config->bind == CONFIG_LINK_BIND_PAIR) {
		link->connection_count = 2;
		connection_init(
		    link, &link->connections[0], CONNECTION_TRANSMITTER);
		connection_init(
		    link, &link->connections[1], CONNECTION_RECEIVER);
		link->transmit = &link->connections[0];
		link->receive = &link->connections[1];
	} else {
		link->connection_count = 1;
		connection_init(
		    link, &link->connections[0], CONNECTION_TRANSCEIVER);
		link->transmit = link->receive = &link->connections[0];
	}
	link->rate.configured = (double)config->tps;
	link->rate.limit = link->rate.target = (double)config->tps;
	link->rate.timer =
	    evtimer_new(links_module.base, rate_timer_expired, link);
	if (link->rate.timer == NULL)
		fatal("link", "out-of-memory", "name=%s", config->name);
	link_register_metrics(link);
	return link;
}

/* Frees a connection without reporting anything (the loop is over). */
static void
connection_free(struct link_connection *connection)
{
	connection_detach_acks(connection);
	if (connection->bufferevent != NULL)
		bufferevent_free(connection->bufferevent);
	connection->bufferevent = NULL;
	if (connection->session_timer != NULL)
		event_free(connection->session_timer);
	if (connection->reconnect_timer != NULL)
		event_free(connection->reconnect_timer);
	if (connection->input != NULL)
		evbuffer_free(connection->input);
	free(connection->memory);
}

void
link_start_all(struct event_base *base, const struct config *config,
    const struct link_events *events)
{
	size_t i, j;

	if (links_module.links != NULL) {
		log_warnx(0, "link", "restarted-without-free", NULL);
		link_free_all();
	}
	memset(&links_module, 0, sizeof(links_module));
	TAILQ_INIT(&links_module.lingering);
	links_module.base = base;
	links_module.config = config;
	if (events != NULL)
		links_module.events = *events;
	if (config->link_count == 0)
		return;
	/* Names resolve without blocking; idle, the base adds no event. */
	links_module.dns =
	    evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
				     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (links_module.dns == NULL)
		log_warnx(0, "link", "dns-unavailable",
		    "effect=\"host names resolve blocking\"");
	links_module.links = calloc(config->link_count, sizeof(struct link *));
	if (links_module.links == NULL)
		fatal("link", "out-of-memory", NULL);
	for (i = 0; i < config->link_count; i++)
		links_module.links[links_module.count++] =
		    link_new(config->links[i]);
	for (i = 0; i < links_module.count; i++)
		for (j = 0; j < links_module.links[i]->connection_count; j++)
			connection_open(&links_module.links[i]->connections[j]);
}

void
link_stop_all(void)
{
	size_t i, j;

	links_module.stopping = 1;
	for (i = 0; i < links_module.count; i++)
		for (j = 0; j < links_module.links[i]->connection_count; j++)
			connection_stop(&links_module.links[i]->connections[j]);
}

int
link_all_idle(void)
{
	size_t i, j;

	for (i = 0; i < links_module.count; i++)
		for (j = 0; j < links_module.links[i]->connection_count; j++)
			if (links_module.links[i]->connections[j].state !=
			    LINK_IDLE)
				return 0;
	return 1;
}

void
link_free_all(void)
{
	struct lingering *lingering;
	struct link *link;
	size_t i, j;

	for (i = 0; i < links_module.count; i++) {
		link = links_module.links[i];
		for (j = 0; j < link->connection_count; j++)
			connection_free(&link->connections[j]);
		if (link->rate.timer != NULL)
			event_free(link->rate.timer);
		free(link);
	}
	free(links_module.links);
	links_module.links = NULL;
	links_module.count = 0;
	if (links_module.base != NULL)
		while (
		    (lingering = TAILQ_FIRST(&links_module.lingering)) != NULL)
			lingering_free(lingering);
	if (links_module.dns != NULL)
		evdns_base_free(links_module.dns, 0);
	links_module.dns = NULL;
	if (links_module.tls != NULL)
		SSL_CTX_free(links_module.tls);
	links_module.tls = NULL;
}

size_t
link_count(void)
{
	return links_module.count;
}

struct link *
link_get(size_t index)
{
	return index < links_module.count ? links_module.links[index] : NULL;
}

struct link *
link_find(const char *name)
{
	size_t i;

	for (i = 0; i < links_module.count; i++)
		if (strcmp(links_module.links[i]->config->name, name) == 0)
			return links_module.links[i];
	return NULL;
}

const char *
link_name(const struct link *link)
{
	return link->config->name;
}

const struct config_link *
link_config(const struct link *link)
{
	return link->config;
}

enum link_state
link_get_state(const struct link *link)
{
	return link->state;
}

size_t
link_capacity(struct link *link)
{
	size_t window, allowed;
	uint64_t now;

	if (link->state != LINK_BOUND || links_module.stopping)
		return 0;
	window =
	    smpp_session_window_available(connection_session(link->transmit));
	if (window == 0)
		return 0;
	now = now_us();
	if ((allowed = rate_allowance(link, now)) == 0) {
		rate_wait(link, now);
		return 0;
	}
	return allowed < window ? allowed : window;
}

/* Numeric senders are digits with an optional '+'; anything else is a name. */
static int
is_alphanumeric_sender(const char *address)
{
	const char *p = address;

	if (*p == '+')
		p++;
	for (; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return 1;
	return 0;
}

/* The submit_sm for a request; the sequence number comes later. */
static void
submit_fill_pdu(const struct link *link, const struct link_submit *submit,
    struct smpp_pdu *pdu)
{
	const struct config_link *config = link->config;

	memset(pdu, 0, sizeof(*pdu));
	pdu->command_id = SMPP_SUBMIT_SM;
	if (submit->source_addr != NULL) {
		pdu->source_addr = submit->source_addr;
		pdu->source_addr_ton = submit->source_addr_ton;
		pdu->source_addr_npi = submit->source_addr_npi;
	} else if (is_alphanumeric_sender(config->source_addr)) {
		pdu->source_addr = config->source_addr;
		pdu->source_addr_ton = 5; /* alphanumeric */
		pdu->source_addr_npi = 0;
	} else {
		pdu->source_addr = config->source_addr;
		pdu->source_addr_ton = (uint8_t)config->source_ton;
		pdu->source_addr_npi = (uint8_t)config->source_npi;
	}
	pdu->destination_addr = submit->destination_addr;
	pdu->dest_addr_ton = submit->dest_addr_ton;
	pdu->dest_addr_npi = submit->dest_addr_npi;
	pdu->esm_class = submit->esm_class;
	pdu->protocol_id = submit->protocol_id;
	pdu->priority_flag = submit->priority_flag;
	pdu->registered_delivery = submit->registered_delivery;
	pdu->data_coding = submit->data_coding;
	pdu->validity_period = submit->validity_period;
	pdu->short_message = submit->short_message;
	pdu->sm_length = (uint8_t)submit->short_message_length;
	pdu->tlvs = submit->tlvs;
	pdu->tlv_count = submit->tlv_count;
}

int
link_submit(
    struct link *link, const struct link_submit *submit, uint64_t cookie)
{
	struct link_connection *connection = link->transmit;
	struct smpp_session *session = connection_session(connection);
	uint8_t stack_buffer[LINK_SUBMIT_BUFFER_SIZE], *buffer = stack_buffer;
	uint8_t *heap_buffer = NULL;
	char destination[LOG_MASKED_NUMBER_SIZE];
	struct sent_time *sent;
	struct smpp_pdu pdu;
	uint32_t sequence_number;
	uint64_t now;
	int length;

	if (link->state != LINK_BOUND || links_module.stopping ||
	    connection->bufferevent == NULL ||
	    smpp_session_window_available(session) == 0)
		return -1;
	now = now_us();
	if (rate_allowance(link, now) == 0) {
		rate_wait(link, now);
		return -1;
	}
	submit_fill_pdu(link, submit, &pdu);
	if (submit->short_message_length > SMPP_MAX_SHORT_MESSAGE_LENGTH)
		length = SMPP_PDU_ENCODE_FIELD_TOO_LONG;
	else
		length = smpp_pdu_encode(&pdu, buffer, sizeof(stack_buffer));
	if (length == SMPP_PDU_ENCODE_NO_SPACE &&
	    (heap_buffer = malloc(LINK_SUBMIT_MAX_SIZE)) != NULL) {
		buffer = heap_buffer;
		length = smpp_pdu_encode(&pdu, buffer, LINK_SUBMIT_MAX_SIZE);
	}
	if (length < 0) {
		log_warnx(link->log_id, "link", "submit-unencodable",
		    "name=%s destination=%s error=%s", link->config->name,
		    log_mask_number(submit->destination_addr, destination,
			sizeof(destination)),
		    smpp_pdu_encode_error_name(length));
		free(heap_buffer);
		return -2;
	}
	/* Encoded first, so a message that cannot be takes no window slot. */
	if (smpp_session_send_request(session, SMPP_SUBMIT_SM, cookie, now,
		&sequence_number) != SMPP_ESME_ROK) {
		free(heap_buffer);
		return -1;
	}
	put_be32(buffer + 12, sequence_number);
	connection_write(connection, buffer, (size_t)length);
	free(heap_buffer);
	rate_consume(link, now);
	sent = &connection->memory->sent[sequence_number % LINK_SENT_TIMES];
	sent->sequence_number = sequence_number;
	sent->sent_us = now;
	link->counters.submitted++;
	metrics_add(link->metrics.submitted, 1);
	link_update_window_gauge(link);
	connection_arm_timer(connection);
	return 0;
}

void
link_get_stats(const struct link *link, struct link_stats *stats)
{
	const struct smpp_session *session = &link->transmit->memory->session;

	*stats = link->counters;
	stats->state = link->state;
	stats->window_used = smpp_session_outstanding(session);
	stats->window_size = (size_t)link->config->window;
	stats->rate_limit = rate_limit_at(&link->rate, now_us());
}
