/*
 * server.c - the SMPP server side of nudged (the SMSC role): ESMEs, Kannel
 * and aggregators bind here with the accounts of the configuration, submit
 * traffic that goes through the outbox, and get receipts and MO back as
 * deliver_sm (kept and sent by server_deliver.c).
 *
 * Each connection is a bufferevent (plain or TLS) carrying bytes and an
 * smpp/ session (role SMPP_SESSION_SMSC) carrying the protocol: bind state,
 * sequence numbers, the window of our deliver_sm and every timer. This file
 * adds what a server owes its peers: accounts and their limits, a
 * constant-time password check, delays and blocks for addresses that keep
 * failing, the account's submit rate, validation of what is submitted, and
 * the rule that a submit_sm_resp carrying an id is written only after the
 * store commit holding that message.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "smpp.h"
#include "nudged.h"

#define SERVER_NITEMS(array) (sizeof(array) / sizeof((array)[0]))

#define SERVER_MAX_SESSIONS      1024 /* each holds a 40 KB smpp_session */
#define SERVER_LISTEN_BACKLOG    128
#define SERVER_CONTROL_BUFFER    512     /* responses, bind_resp */
#define SERVER_UNBIND_TIMEOUT_US 5000000 /* at most; else response_timeout */
#define SERVER_LINGER_US         1000000 /* to flush a last response */
#define SERVER_AUTH_TABLE_MAX    4096    /* addresses remembered for failures */
#define SERVER_PASSWORD_BUFFER   16      /* compared whole: SMPP allows 8 */
#define SERVER_ADDRESS_MAX       20      /* destination digits, "+" aside */
#define SERVER_ID_SIZE           24      /* a 64-bit id in decimal, NUL */
#define SERVER_LOG_TEXT          48      /* peer-supplied text in logs */
#define SERVER_TLV_BUFFER        (SMPP_MESSAGE_PAYLOAD_MAX + 64)
#define SERVER_GSM_OCTETS        160 /* unpacked septets in short_message */
#define SERVER_ORIGIN_PREFIX     "esme:"
#define SERVER_OUTPUT_HIGH       (1024 * 1024) /* unread responses: stop */
#define SERVER_OUTPUT_LOW        (256 * 1024)  /* ... and read again */

/* What a bind asks for. */
enum bind_kind {
	BIND_TRANSMITTER,
	BIND_RECEIVER,
	BIND_TRANSCEIVER,
	BIND_KIND_COUNT
};

static const struct bind_kind_info {
	const char *name;
	uint32_t command_id;
	size_t maximum_offset; /* of the account's max_* */
} bind_kinds[BIND_KIND_COUNT] = {
    [BIND_TRANSMITTER] = {"tx", SMPP_BIND_TRANSMITTER,
	offsetof(struct config_account, max_transmitters)},
    [BIND_RECEIVER] = {"rx", SMPP_BIND_RECEIVER,
	offsetof(struct config_account, max_receivers)},
    [BIND_TRANSCEIVER] = {"trx", SMPP_BIND_TRANSCEIVER,
	offsetof(struct config_account, max_transceivers)},
};

/* TLVs of a submit that travel on to the upstream link, as given. */
static const uint16_t passed_tlvs[] = {
    SMPP_TLV_SAR_MSG_REF_NUM,
    SMPP_TLV_SAR_TOTAL_SEGMENTS,
    SMPP_TLV_SAR_SEGMENT_SEQNUM,
    SMPP_TLV_MESSAGE_PAYLOAD,
};

/* One allowed_addresses block. */
struct cidr {
	uint32_t network;
	uint32_t mask;
};

struct account_metrics {
	struct metric *binds;
	struct metric *sessions_bound;
	struct metric *accepted;
	struct metric *refused;
	struct metric *throttled;
	struct metric *optout_refused;
	struct metric *response_seconds;
};

struct server_session;
TAILQ_HEAD(session_list, server_session);

struct server_account {
	const struct config_account *config;
	size_t index; /* in config->accounts, and server_deliver's */
	uint64_t log_id;
	char origin[OUTBOX_ORIGIN_SIZE];
	unsigned int bound[BIND_KIND_COUNT];
	struct cidr *cidrs;
	size_t cidr_count;
	double tokens; /* submits per second: a one-second bucket */
	uint64_t refilled_us;
	struct session_list receivers; /* rx and trx, round robin */
	struct account_metrics metrics;
};

/* A bind answer held back for an address that keeps failing. */
struct delayed_bind {
	int pending;
	uint32_t command_id; /* of the response */
	uint32_t status;
	uint32_t sequence_number;
};

/*
 * One connection. Sessions are pooled and never freed before
 * server_free(), and generation changes on every open and close, so an
 * answer that waited for a commit can tell whether its session is still
 * the one it belongs to without touching freed memory.
 */
struct server_session {
	TAILQ_ENTRY(server_session) entry;          /* sessions or pool */
	TAILQ_ENTRY(server_session) receiver_entry; /* account receivers */
	uint64_t generation;
	uint64_t log_id;
	struct bufferevent *bufferevent; /* NULL when closed */
	struct smpp_session *smpp;
	struct server_account *account; /* once bound */
	enum bind_kind kind;
	int receiving; /* on account->receivers */
	int tls;
	char peer[INET6_ADDRSTRLEN];
	int peer_has_ipv4;
	uint32_t peer_ipv4;
	struct event *session_timer;
	uint64_t session_timer_due;
	struct event *bind_timer; /* the delayed bind answer */
	struct delayed_bind delayed;
	int paused;        /* reading stopped while a bind answer waits */
	int write_blocked; /* ... or while the peer does not read */
	unsigned int pending_answers;
	int unbind_requested; /* unbind_resp waits for pending answers */
	uint32_t unbind_sequence;
	uint64_t opened_us;
	uint64_t bound_us;
};

/* Failures to bind from one address. */
struct auth_record {
	char address[INET6_ADDRSTRLEN];
	unsigned int failures;
	uint64_t last_failure_us;
	uint64_t blocked_until_us;
};

/* One unsuccess_sme of a submit_multi_resp. */
struct refusal {
	char address[SERVER_ADDRESS_MAX + 2];
	uint8_t ton;
	uint8_t npi;
	uint32_t status;
};

/* A response written once the turn's commit is done. */
struct answer {
	struct server_session *session;
	uint64_t generation;
	uint64_t received_us;
	uint64_t message_id; /* 0: none */
	uint32_t command_id; /* of the response */
	uint32_t sequence_number;
	struct refusal *refusals; /* submit_multi_resp only */
	size_t refusal_count;
};

/* The answers of one loop turn, behind one after-commit hook. */
struct answer_batch {
	uint64_t epoch;
	struct answer *answers;
	size_t count;
	size_t capacity;
};

/* A closed connection still flushing its last response. */
struct lingering {
	TAILQ_ENTRY(lingering) entry;
	struct bufferevent *bufferevent;
	struct event *timer;
};
TAILQ_HEAD(lingering_list, lingering);

/* What one received PDU is, as the handlers see it. */
struct received {
	struct smpp_pdu pdu;
	uint32_t decode_status;
	struct smpp_session_event event;
	uint64_t received_us;
};

typedef void request_handler_fn(
    struct server_session *session, const struct received *received);

/* The module; one event loop, so module state is fine in src/. */
static struct {
	struct event_base *base;
	const struct config *config;
	struct evconnlistener *listener;
	struct evconnlistener *tls_listener;
	SSL_CTX *tls;
	struct server_account *accounts;
	size_t account_count;
	struct session_list sessions;
	struct session_list pool;
	size_t session_count;
	struct lingering_list lingering;
	struct auth_record *auth;
	size_t auth_count;
	struct answer_batch *batch; /* this turn's, until its commit */
	uint64_t generation;
	uint64_t log_id_base;
	uint64_t serial;
	int stopping;
	struct metric *connections;
	struct metric *sessions_open;
	struct metric *framing_errors;
	struct metric *bind_delayed;
	struct metric *bind_blocked;
	struct metric *addresses_blocked;
	struct metric *reading_paused;
	uint8_t tlv_buffer[SERVER_TLV_BUFFER];
} server;

/* What an empty short_message points at. */
static const uint8_t empty_octets[1];

/* Bumped by every server_init(): after-commit work of an earlier is void. */
static uint64_t server_epoch;

/* receive -> submit_sm_resp written, seconds. */
static const double response_seconds_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

static void session_close(
    struct server_session *session, const char *reason, int flush);
static void session_arm_timer(struct server_session *session);
static void session_process_input(struct server_session *session);

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

/* A stable log id per account name (FNV-1a), the same across restarts. */
static uint64_t
name_log_id(const char *name)
{
	uint64_t hash = 0xcbf29ce484222325ULL;

	for (; *name != '\0'; name++) {
		hash ^= (unsigned char)*name;
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

/* Peer-supplied text made safe for a key=value log line. */
static const char *
log_text(const char *text, char *out, size_t size)
{
	size_t i;

	if (text == NULL || text[0] == '\0')
		return "-";
	for (i = 0; text[i] != '\0' && i + 1 < size; i++)
		out[i] = isgraph((unsigned char)text[i]) && text[i] != '"' &&
				 text[i] != '\\' && text[i] != '='
			     ? text[i]
			     : '_';
	out[i] = '\0';
	return out;
}

static uint32_t
max_pdu_length(void)
{
	uint64_t length = server.config->smpp_max_pdu_length;

	return length > UINT32_MAX ? UINT32_MAX : (uint32_t)length;
}

static int
is_bound_state(enum smpp_session_state state)
{
	return state == SMPP_SESSION_BOUND_TX ||
	       state == SMPP_SESSION_BOUND_RX ||
	       state == SMPP_SESSION_BOUND_TRX;
}

/* ---- accounts ----------------------------------------------------------- */

static struct server_account *
account_by_system_id(const char *system_id)
{
	size_t i;

	if (system_id == NULL)
		return NULL;
	for (i = 0; i < server.account_count; i++)
		if (strcmp(server.accounts[i].config->system_id, system_id) ==
		    0)
			return &server.accounts[i];
	return NULL;
}

/* Parses allowed_addresses ("a.b.c.d/n ..."; config.c checked it). */
static void
account_parse_cidrs(struct server_account *account)
{
	const char *p = account->config->allowed_addresses;
	unsigned int a, b, c, d, bits;
	struct cidr *cidr;
	int used;

	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		bits = 32;
		used = 0;
		if (sscanf(p, "%u.%u.%u.%u/%u%n", &a, &b, &c, &d, &bits,
			&used) != 5 &&
		    sscanf(p, "%u.%u.%u.%u%n", &a, &b, &c, &d, &used) != 4)
			break;
		account->cidrs = reallocarray(account->cidrs,
		    account->cidr_count + 1, sizeof(*account->cidrs));
		if (account->cidrs == NULL)
			fatal("server", "out-of-memory", NULL);
		cidr = &account->cidrs[account->cidr_count++];
		cidr->mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
		cidr->network = (a << 24 | b << 16 | c << 8 | d) & cidr->mask;
		p += used;
	}
}

/* IPv4 peers only (IPv4-mapped IPv6 included): the list is IPv4. */
static int
account_allows_peer(
    const struct server_account *account, const struct server_session *session)
{
	size_t i;

	if (!session->peer_has_ipv4)
		return 0;
	for (i = 0; i < account->cidr_count; i++)
		if ((session->peer_ipv4 & account->cidrs[i].mask) ==
		    account->cidrs[i].network)
			return 1;
	return 0;
}

/*
 * Compares fixed-size buffers, every byte, no early exit: the time taken
 * says nothing about how much of the password was right.
 */
static int
password_matches(const char *given, const char *expected)
{
	volatile unsigned char difference = 0;
	char a[SERVER_PASSWORD_BUFFER], b[SERVER_PASSWORD_BUFFER];
	size_t i;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	for (i = 0; given != NULL && given[i] != '\0' && i + 1 < sizeof(a); i++)
		a[i] = given[i];
	for (i = 0; expected[i] != '\0' && i + 1 < sizeof(b); i++)
		b[i] = expected[i];
	for (i = 0; i < sizeof(a); i++)
		difference |= (unsigned char)(a[i] ^ b[i]);
	return difference == 0;
}

/* The account's submit rate: a bucket of one second, refilled at tps. */
static int
account_take_token(struct server_account *account, uint64_t now)
{
	double rate = (double)account->config->tps;

	if (rate <= 0)
		return 1;
	if (now > account->refilled_us) {
		account->tokens +=
		    (double)(now - account->refilled_us) * rate / 1e6;
		account->refilled_us = now;
	}
	if (account->tokens > rate)
		account->tokens = rate;
	if (account->tokens < 1.0)
		return 0;
	account->tokens -= 1.0;
	return 1;
}

static void
account_update_bound_gauge(struct server_account *account)
{
	metrics_set(account->metrics.sessions_bound,
	    (double)(account->bound[BIND_TRANSMITTER] +
		     account->bound[BIND_RECEIVER] +
		     account->bound[BIND_TRANSCEIVER]));
}

static void
account_register_metrics(struct server_account *account)
{
	struct account_metrics *metrics = &account->metrics;
	char labels[96], name[64];
	size_t i;

	snprintf(name, sizeof(name), "%s", account->config->name);
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] == '"' || name[i] == '\\' || name[i] == '\n')
			name[i] = '_';
	snprintf(labels, sizeof(labels), "account=\"%s\"", name);
	metrics->binds = metrics_counter(
	    "nudge_server_binds_total", labels, "Binds accepted.");
	metrics->sessions_bound = metrics_gauge("nudge_server_sessions_bound",
	    labels, "Sessions bound now (tx, rx and trx).");
	metrics->accepted =
	    metrics_counter("nudge_server_submits_accepted_total", labels,
		"Messages accepted into the outbox (per destination).");
	metrics->refused = metrics_counter("nudge_server_submits_refused_total",
	    labels, "Submits refused (throttled and opted-out included).");
	metrics->throttled =
	    metrics_counter("nudge_server_throttled_total", labels,
		"Submits answered ESME_RTHROTTLED (above the account tps).");
	metrics->optout_refused =
	    metrics_counter("nudge_server_optout_refused_total", labels,
		"Marketing submits to opted-out numbers (ESME_RX_R_APPN).");
	metrics->response_seconds = metrics_histogram(
	    "nudge_server_submit_response_seconds", labels,
	    "From a submit received to its response written.",
	    response_seconds_bounds, SERVER_NITEMS(response_seconds_bounds));
}

/* ---- failed binds by address -------------------------------------------- */

/* The record of an address, or NULL; one quiet for auth_block is forgotten. */
static struct auth_record *
auth_find(const char *address, uint64_t now)
{
	struct auth_record *record;
	size_t i;

	for (i = 0; i < server.auth_count; i++) {
		record = &server.auth[i];
		if (strcmp(record->address, address) != 0)
			continue;
		if (record->blocked_until_us <= now &&
		    now - record->last_failure_us >=
			server.config->smpp_auth_block_us) {
			record->failures = 0;
			record->blocked_until_us = 0;
		}
		return record;
	}
	return NULL;
}

/* A table slot for an address: a new one, or the stalest when full. */
static struct auth_record *
auth_slot(const char *address, uint64_t now)
{
	struct auth_record *record, *stalest = NULL;
	size_t i;

	if (server.auth_count < SERVER_AUTH_TABLE_MAX) {
		server.auth = reallocarray(
		    server.auth, server.auth_count + 1, sizeof(*server.auth));
		if (server.auth == NULL)
			fatal("server", "out-of-memory", NULL);
		record = &server.auth[server.auth_count++];
	} else {
		/* Blocked addresses stay blocked: evict the others first. */
		for (i = 0; i < server.auth_count; i++) {
			record = &server.auth[i];
			if (stalest == NULL ||
			    (record->blocked_until_us <= now) >
				(stalest->blocked_until_us <= now) ||
			    ((record->blocked_until_us <= now) ==
				    (stalest->blocked_until_us <= now) &&
				record->last_failure_us <
				    stalest->last_failure_us))
				stalest = record;
		}
		record = stalest;
	}
	memset(record, 0, sizeof(*record));
	snprintf(record->address, sizeof(record->address), "%s", address);
	return record;
}

/* Counts a failure; returns how many in a row, and blocks when too many. */
static unsigned int
auth_fail(struct server_session *session, uint64_t now)
{
	const struct config *config = server.config;
	struct auth_record *record;

	if ((record = auth_find(session->peer, now)) == NULL)
		record = auth_slot(session->peer, now);
	record->failures++;
	record->last_failure_us = now;
	if (record->failures >=
		(unsigned int)config->smpp_auth_fail_block_after &&
	    record->blocked_until_us <= now) {
		record->blocked_until_us = now + config->smpp_auth_block_us;
		metrics_add(server.addresses_blocked, 1);
		log_warnx(session->log_id, "server", "address-blocked",
		    "peer=%s failures=%u block_ms=%llu", session->peer,
		    record->failures,
		    (unsigned long long)(config->smpp_auth_block_us / 1000));
	}
	return record->failures;
}

/* A good bind clears the address's record. */
static void
auth_forget(const char *address)
{
	size_t i;

	for (i = 0; i < server.auth_count; i++)
		if (strcmp(server.auth[i].address, address) == 0) {
			server.auth[i] = server.auth[--server.auth_count];
			return;
		}
}

static int
auth_blocked(const char *address, uint64_t now)
{
	struct auth_record *record = auth_find(address, now);

	return record != NULL && record->blocked_until_us > now;
}

/* ---- writing ------------------------------------------------------------ */

static void
session_write(
    struct server_session *session, const uint8_t *bytes, size_t length)
{
	if (session->bufferevent == NULL)
		return;
	if (bufferevent_write(session->bufferevent, bytes, length) != 0)
		log_warnx(session->log_id, "server", "write-failed",
		    "length=%zu", length);
}

/* Bodiless PDUs: enquire_link, unbind, generic_nack. */
static void
session_send_header(struct server_session *session, uint32_t command_id,
    uint32_t status, uint32_t sequence_number)
{
	uint8_t header[SMPP_HEADER_LENGTH];

	smpp_pdu_encode_header_only(
	    header, sizeof(header), command_id, status, sequence_number);
	session_write(session, header, sizeof(header));
}

/* Writes an encoded response and tells the session it went. */
static void
session_send_response(
    struct server_session *session, const struct smpp_pdu *pdu)
{
	uint8_t buffer[SERVER_CONTROL_BUFFER], *bytes = buffer;
	uint8_t *heap = NULL;
	int length;

	length = smpp_pdu_encode(pdu, buffer, sizeof(buffer));
	if (length == SMPP_PDU_ENCODE_NO_SPACE) {
		/* A submit_multi_resp listing many refused destinations. */
		if ((heap = malloc(SMPP_DEFAULT_MAX_PDU_LENGTH)) == NULL)
			fatal("server", "out-of-memory", NULL);
		bytes = heap;
		length =
		    smpp_pdu_encode(pdu, heap, SMPP_DEFAULT_MAX_PDU_LENGTH);
	}
	if (length < 0) {
		log_warnx(session->log_id, "server", "encode-failed",
		    "command=%s error=%s", smpp_command_name(pdu->command_id),
		    smpp_pdu_encode_error_name(length));
		free(heap);
		return;
	}
	session_write(session, bytes, (size_t)length);
	free(heap);
	smpp_session_send_response(
	    session->smpp, pdu->command_id, pdu->command_status, now_us());
}

/* A response without a body (errors, and the commands that have none). */
static void
session_answer(struct server_session *session, uint32_t response_command_id,
    uint32_t status, uint32_t sequence_number)
{
	struct smpp_pdu pdu;

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = response_command_id;
	pdu.command_status = status;
	pdu.sequence_number = sequence_number;
	session_send_response(session, &pdu);
}

/* ---- answers after the commit ------------------------------------------- */

static void session_finish_unbind(struct server_session *session);

/* Writes one answer whose commit is done (result says how it went). */
static void
answer_write(const struct answer *answer, enum store_result result)
{
	struct server_session *session = answer->session;
	struct smpp_destination *unsuccessful = NULL;
	struct smpp_pdu pdu;
	char id[SERVER_ID_SIZE];
	size_t i;

	if (session->generation != answer->generation) {
		/* The session is gone; the ESME resubmits what it missed. */
		log_info(0, "server", "answer-dropped",
		    "command=%s sequence=%u reason=session-closed",
		    smpp_command_name(answer->command_id),
		    answer->sequence_number);
		return;
	}
	session->pending_answers--;
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = answer->command_id;
	pdu.sequence_number = answer->sequence_number;
	if (result != STORE_OK) {
		pdu.command_status = SMPP_ESME_RSYSERR;
		log_warnx(session->log_id, "server", "not-stored",
		    "command=%s sequence=%u answer=ESME_RSYSERR",
		    smpp_command_name(answer->command_id),
		    answer->sequence_number);
	} else if (answer->message_id != 0) {
		snprintf(id, sizeof(id), "%llu",
		    (unsigned long long)answer->message_id);
		pdu.message_id = id;
	}
	if (result == STORE_OK && answer->refusal_count > 0) {
		unsuccessful =
		    calloc(answer->refusal_count, sizeof(*unsuccessful));
		if (unsuccessful == NULL)
			fatal("server", "out-of-memory", NULL);
		for (i = 0; i < answer->refusal_count; i++) {
			unsuccessful[i].dest_flag = SMPP_DEST_FLAG_SME_ADDRESS;
			unsuccessful[i].dest_addr_ton = answer->refusals[i].ton;
			unsuccessful[i].dest_addr_npi = answer->refusals[i].npi;
			unsuccessful[i].address = answer->refusals[i].address;
			unsuccessful[i].error_status_code =
			    answer->refusals[i].status;
		}
		pdu.destination_list = unsuccessful;
		pdu.number_of_destinations = (uint8_t)answer->refusal_count;
	}
	session_send_response(session, &pdu);
	free(unsuccessful);
	if (answer->received_us != 0 && session->account != NULL)
		metrics_observe(session->account->metrics.response_seconds,
		    (double)(now_us() - answer->received_us) / 1e6);
	if (session->unbind_requested && session->pending_answers == 0)
		session_finish_unbind(session);
}

/* The commit of a turn is done: its answers go out, in order. */
static void
answers_committed(void *arg, enum store_result result)
{
	struct answer_batch *batch = arg;
	size_t i;

	if (server.batch == batch)
		server.batch = NULL;
	for (i = 0; i < batch->count; i++) {
		/* Sessions of an earlier server_init() are freed memory. */
		if (batch->epoch == server_epoch && server.base != NULL)
			answer_write(&batch->answers[i], result);
		free(batch->answers[i].refusals);
	}
	free(batch->answers);
	free(batch);
}

/*
 * Queues a response behind this turn's commit. Why one hook per turn and
 * not per PDU: a turn commits once, so its answers all wait for the same
 * commit; one hook keeps them in order and costs one call.
 */
static struct answer *
answer_after_commit(struct server_session *session, uint32_t command_id,
    uint32_t sequence_number, uint64_t received_us)
{
	struct answer_batch *batch = server.batch;
	struct answer *answer;

	if (batch == NULL) {
		if ((batch = calloc(1, sizeof(*batch))) == NULL)
			fatal("server", "out-of-memory", NULL);
		batch->epoch = server_epoch;
		server.batch = batch;
		store_after_commit(gateway->store, answers_committed, batch);
	}
	if (batch->count == batch->capacity) {
		batch->capacity = batch->capacity ? batch->capacity * 2 : 16;
		batch->answers = reallocarray(
		    batch->answers, batch->capacity, sizeof(*batch->answers));
		if (batch->answers == NULL)
			fatal("server", "out-of-memory", NULL);
	}
	answer = &batch->answers[batch->count++];
	memset(answer, 0, sizeof(*answer));
	answer->session = session;
	answer->generation = session->generation;
	answer->command_id = command_id;
	answer->sequence_number = sequence_number;
	answer->received_us = received_us;
	session->pending_answers++;
	return answer;
}

/* ---- binds -------------------------------------------------------------- */

static void
bind_answer(struct server_session *session, uint32_t response_command_id,
    uint32_t status, uint32_t sequence_number, int version_tlv)
{
	struct smpp_tlv tlv;
	struct smpp_pdu pdu;

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = response_command_id;
	pdu.command_status = status;
	pdu.sequence_number = sequence_number;
	if (status == SMPP_ESME_ROK) {
		pdu.system_id = server.config->smpp_system_id;
		/* SMPP 3.4 peers are told we speak 3.4 too. */
		if (version_tlv) {
			tlv = smpp_tlv_integer(SMPP_TLV_SC_INTERFACE_VERSION,
			    SMPP_INTERFACE_VERSION);
			pdu.tlvs = &tlv;
			pdu.tlv_count = 1;
		}
	}
	session_send_response(session, &pdu);
}

/* The delayed answer to a failed bind is due: send it, read again. */
static void
bind_timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct server_session *session = arg;
	uint64_t generation = session->generation;

	if (!session->delayed.pending || session->bufferevent == NULL)
		return;
	session->delayed.pending = 0;
	bind_answer(session, session->delayed.command_id,
	    session->delayed.status, session->delayed.sequence_number, 0);
	session->paused = 0;
	if (!session->write_blocked)
		bufferevent_enable(session->bufferevent, EV_READ);
	/* PDUs that arrived meanwhile wait in the buffer: no event for them. */
	if (session->generation == generation)
		session_process_input(session);
}

/*
 * Refuses a bind. Credential failures count against the address: after
 * auth_fail_delay_after in a row the answer leaves auth_fail_delay late
 * (a timer; the session reads nothing meanwhile), and at
 * auth_fail_block_after the address is refused outright for auth_block.
 */
static void
bind_refuse(struct server_session *session, const struct received *received,
    uint32_t status, int counts)
{
	const struct config *config = server.config;
	const struct smpp_pdu *pdu = &received->pdu;
	char system_id[SERVER_LOG_TEXT], labels[64];
	struct timeval delay;
	unsigned int failures = 0;

	snprintf(
	    labels, sizeof(labels), "status=\"%s\"", smpp_status_name(status));
	metrics_add(metrics_counter("nudge_server_bind_failures_total", labels,
			"Binds refused, by status."),
	    1);
	if (counts)
		failures = auth_fail(session, now_us());
	log_info(session->log_id, "server", "bind-refused",
	    "system_id=%s bind=%s peer=%s status=%s failures=%u",
	    log_text(pdu->system_id, system_id, sizeof(system_id)),
	    bind_kinds[session->kind].name, session->peer,
	    smpp_status_name(status), failures);
	if (!counts ||
	    failures <= (unsigned int)config->smpp_auth_fail_delay_after ||
	    config->smpp_auth_fail_delay_us == 0) {
		bind_answer(session, received->event.response_command_id,
		    status, pdu->sequence_number, 0);
		return;
	}
	metrics_add(server.bind_delayed, 1);
	session->delayed.pending = 1;
	session->delayed.command_id = received->event.response_command_id;
	session->delayed.status = status;
	session->delayed.sequence_number = pdu->sequence_number;
	session->paused = 1;
	bufferevent_disable(session->bufferevent, EV_READ);
	delay = timeval_of(config->smpp_auth_fail_delay_us);
	evtimer_add(session->bind_timer, &delay);
}

static enum bind_kind
bind_kind_of(uint32_t command_id)
{
	size_t i;

	for (i = 0; i < BIND_KIND_COUNT; i++)
		if (bind_kinds[i].command_id == command_id)
			return (enum bind_kind)i;
	return BIND_TRANSCEIVER;
}

/* bind_transmitter, bind_receiver, bind_transceiver in OPEN. */
static void
handle_bind(struct server_session *session, const struct received *received)
{
	const struct smpp_pdu *pdu = &received->pdu;
	struct server_account *account;
	char system_id[SERVER_LOG_TEXT];
	int64_t maximum;
	uint64_t now = now_us();

	session->kind = bind_kind_of(pdu->command_id);
	if (server.stopping) {
		bind_refuse(session, received, SMPP_ESME_RBINDFAIL, 0);
		return;
	}
	if (auth_blocked(session->peer, now)) {
		metrics_add(server.bind_blocked, 1);
		bind_refuse(session, received, SMPP_ESME_RBINDFAIL, 0);
		return;
	}
	if ((account = account_by_system_id(pdu->system_id)) == NULL) {
		bind_refuse(session, received, SMPP_ESME_RINVSYSID, 1);
		return;
	}
	/* Before the password: from elsewhere, no guess is ever judged. */
	if (!account_allows_peer(account, session)) {
		bind_refuse(session, received, SMPP_ESME_RBINDFAIL, 1);
		return;
	}
	if (!password_matches(pdu->password, account->config->password)) {
		bind_refuse(session, received, SMPP_ESME_RINVPASWD, 1);
		return;
	}
	memcpy(&maximum,
	    (const uint8_t *)account->config +
		bind_kinds[session->kind].maximum_offset,
	    sizeof(maximum));
	if ((int64_t)account->bound[session->kind] >= maximum) {
		bind_refuse(session, received, SMPP_ESME_RBINDFAIL, 0);
		return;
	}

	auth_forget(session->peer);
	session->account = account;
	account->bound[session->kind]++;
	session->bound_us = now;
	bind_answer(session, received->event.response_command_id, SMPP_ESME_ROK,
	    pdu->sequence_number,
	    pdu->interface_version >= SMPP_INTERFACE_VERSION);
	metrics_add(account->metrics.binds, 1);
	account_update_bound_gauge(account);
	log_info(session->log_id, "server", "bound",
	    "account=%s system_id=%s bind=%s peer=%s tls=%s version=0x%02x",
	    account->config->name,
	    log_text(pdu->system_id, system_id, sizeof(system_id)),
	    bind_kinds[session->kind].name, session->peer,
	    session->tls ? "yes" : "no", pdu->interface_version);
	if (session->kind != BIND_TRANSMITTER) {
		session->receiving = 1;
		TAILQ_INSERT_TAIL(&account->receivers, session, receiver_entry);
		/* What waited for a receiver goes now, oldest first. */
		server_deliver_ready(account->index);
	}
}

/* ---- what is submitted -------------------------------------------------- */

/* One message as submitted, whatever the destinations. */
struct submission {
	const char *source;
	uint8_t source_ton;
	uint8_t source_npi;
	uint8_t esm_class;
	uint8_t protocol_id;
	uint8_t priority_flag;
	uint8_t registered_delivery;
	uint8_t data_coding;
	const uint8_t *short_message;
	size_t short_message_length;
	const uint8_t *tlv_bytes; /* the TLVs passed on, encoded */
	size_t tlv_length;
	uint64_t validity_us;
};

/* data_coding values SMPP 3.4 (5.2.19) and GSM 03.38 groups define. */
static int
data_coding_known(uint8_t data_coding)
{
	if (data_coding <= 0x0E)
		return data_coding != 0x0B && data_coding != 0x0C;
	return data_coding >= 0xC0;
}

/* Two decimal digits at text; -1 if they are not. */
static int
two_digits(const char *text)
{
	if (!isdigit((unsigned char)text[0]) ||
	    !isdigit((unsigned char)text[1]))
		return -1;
	return (text[0] - '0') * 10 + (text[1] - '0');
}

/*
 * An SMPP time (section 7.1.1), absolute "YYMMDDhhmmsstnnp" or relative
 * "YYMMDDhhmmss000R", as microseconds from now; 0 for none, -1 if bad or
 * already past.
 */
static int
validity_from_smpp_time(const char *text, uint64_t *validity_us)
{
	int fields[6], i;
	int64_t seconds, wall = (int64_t)(clock_now_us() / 1000000);
	struct tm tm;

	*validity_us = 0;
	if (text == NULL || text[0] == '\0')
		return 0;
	if (strlen(text) != 16 || !isdigit((unsigned char)text[12]))
		return -1;
	for (i = 0; i < 6; i++)
		if ((fields[i] = two_digits(text + 2 * i)) < 0)
			return -1;
	/* Then "t" (tenths, ignored), "nn" quarter hours and "p". */
	if (text[15] == 'R') {
		seconds =
		    ((((int64_t)fields[0] * 365 + fields[1] * 30 + fields[2]) *
			     24 +
			 fields[3]) *
			    60 +
			fields[4]) *
			60 +
		    fields[5];
	} else if (text[15] == '+' || text[15] == '-') {
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = 100 + fields[0];
		tm.tm_mon = fields[1] - 1;
		tm.tm_mday = fields[2];
		tm.tm_hour = fields[3];
		tm.tm_min = fields[4];
		tm.tm_sec = fields[5];
		if ((i = two_digits(text + 13)) < 0)
			return -1;
		/* Local time ahead of UTC ('+') is later than UTC. */
		seconds = (int64_t)timegm(&tm) +
			  (text[15] == '+' ? -1 : 1) * (int64_t)i * 15 * 60 -
			  wall;
	} else
		return -1;
	if (seconds <= 0)
		return -1;
	*validity_us = (uint64_t)seconds * 1000000;
	return 0;
}

/* The time an ESME is told in query_sm_resp: "YYMMDDhhmmss000+" (UTC). */
static void
smpp_time_of(uint64_t wall_us, char out[17])
{
	time_t seconds = (time_t)(wall_us / 1000000);
	struct tm tm;
	char text[64];

	gmtime_r(&seconds, &tm);
	snprintf(text, sizeof(text), "%02u%02u%02u%02u%02u%02u000+",
	    (unsigned int)tm.tm_year % 100, (unsigned int)tm.tm_mon + 1,
	    (unsigned int)tm.tm_mday, (unsigned int)tm.tm_hour,
	    (unsigned int)tm.tm_min, (unsigned int)tm.tm_sec);
	memcpy(out, text, 16);
	out[16] = '\0';
}

/* A destination: 1 to 20 digits, an optional "+" before them. */
static int
destination_valid(const char *destination)
{
	const char *p;
	size_t length;

	if (destination == NULL)
		return 0;
	p = destination[0] == '+' ? destination + 1 : destination;
	length = strlen(p);
	if (length < 1 || length > SERVER_ADDRESS_MAX)
		return 0;
	for (; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	return 1;
}

/* allowed_senders: a space-separated list; "+" does not matter. */
static int
sender_allowed(const struct server_account *account, const char *source)
{
	const char *list = account->config->allowed_senders, *start;
	size_t length;

	if (list[0] == '\0')
		return 1;
	if (source == NULL || source[0] == '\0')
		return 0;
	if (source[0] == '+')
		source++;
	length = strlen(source);
	while (*list != '\0') {
		while (*list == ' ' || *list == ',')
			list++;
		start = list;
		while (*list != '\0' && *list != ' ' && *list != ',')
			list++;
		if (*start == '+')
			start++;
		if ((size_t)(list - start) == length &&
		    memcmp(start, source, length) == 0)
			return 1;
	}
	return 0;
}

/* Copies the TLVs that travel on (sar_*, message_payload), encoded. */
static uint32_t
collect_tlvs(const struct smpp_pdu *pdu, struct submission *submission,
    struct smpp_tlv *payload)
{
	struct smpp_tlv tlv;
	size_t cursor = 0, used = 0, i;
	int written;

	memset(payload, 0, sizeof(*payload));
	while (smpp_pdu_next_tlv(pdu, &cursor, &tlv)) {
		for (i = 0; i < SERVER_NITEMS(passed_tlvs); i++)
			if (passed_tlvs[i] == tlv.tag)
				break;
		if (i == SERVER_NITEMS(passed_tlvs))
			continue;
		if (tlv.tag == SMPP_TLV_MESSAGE_PAYLOAD)
			*payload = tlv;
		written = smpp_tlv_encode(&tlv, server.tlv_buffer + used,
		    sizeof(server.tlv_buffer) - used);
		if (written < 0)
			return SMPP_ESME_RINVOPTPARSTREAM;
		used += (size_t)written;
	}
	submission->tlv_bytes = used > 0 ? server.tlv_buffer : NULL;
	submission->tlv_length = used;
	return SMPP_ESME_ROK;
}

/*
 * Checks what does not depend on the destination and fills submission:
 * times, data_coding, lengths, the UDH, the sender. Returns the status to
 * refuse with, or ROK.
 */
static uint32_t
submission_prepare(struct server_session *session, const struct smpp_pdu *pdu,
    struct submission *submission)
{
	struct smpp_tlv payload;
	struct smpp_udh udh;
	const uint8_t *user_data;
	size_t user_data_length, limit;
	uint32_t status;

	memset(submission, 0, sizeof(*submission));
	if (pdu->schedule_delivery_time != NULL &&
	    pdu->schedule_delivery_time[0] != '\0')
		return SMPP_ESME_RINVSCHED; /* scheduled delivery: not offered */
	if (validity_from_smpp_time(
		pdu->validity_period, &submission->validity_us) != 0)
		return SMPP_ESME_RINVEXPIRY;
	if (!data_coding_known(pdu->data_coding))
		return SMPP_ESME_RSUBMITFAIL;
	if ((status = collect_tlvs(pdu, submission, &payload)) != SMPP_ESME_ROK)
		return status;
	if (pdu->sm_length > 0 && payload.value != NULL)
		return SMPP_ESME_ROPTPARNOTALLWD; /* one or the other */
	limit =
	    smpp_charset_alphabet(pdu->data_coding) == SMPP_CODING_DEFAULT ||
		    smpp_charset_alphabet(pdu->data_coding) == SMPP_CODING_IA5
		? SERVER_GSM_OCTETS
		: SMPP_SMS_OCTETS;
	if (pdu->sm_length > limit)
		return SMPP_ESME_RINVMSGLEN;
	user_data = pdu->sm_length > 0 ? pdu->short_message : payload.value;
	user_data_length = pdu->sm_length > 0 ? pdu->sm_length : payload.length;
	if ((pdu->esm_class & SMPP_ESM_CLASS_UDHI) &&
	    (user_data_length == 0 ||
		smpp_udh_parse(user_data, user_data_length, &udh) !=
		    SMPP_UDH_OK))
		return SMPP_ESME_RINVESMCLASS;
	if (!sender_allowed(session->account, pdu->source_addr))
		return SMPP_ESME_RINVSRCADR;
	submission->source = pdu->source_addr;
	submission->source_ton = pdu->source_addr_ton;
	submission->source_npi = pdu->source_addr_npi;
	submission->esm_class = pdu->esm_class;
	submission->protocol_id = pdu->protocol_id;
	submission->priority_flag = pdu->priority_flag;
	submission->registered_delivery = pdu->registered_delivery;
	submission->data_coding = pdu->data_coding;
	submission->short_message = pdu->short_message;
	submission->short_message_length = pdu->sm_length;
	return SMPP_ESME_ROK;
}

/*
 * One destination of a submission: checked, opt-out, the account's rate,
 * then into the outbox in this turn's transaction. ROK and *id, or the
 * status to refuse with.
 */
static uint32_t
submit_to(struct server_session *session, const struct submission *submission,
    const char *destination, uint8_t ton, uint8_t npi, uint64_t *id)
{
	struct server_account *account = session->account;
	struct outbox_part_request request;
	char masked[LOG_MASKED_NUMBER_SIZE];
	uint32_t status;

	if (!destination_valid(destination))
		return SMPP_ESME_RINVDSTADR;
	/* Documented choice: marketing to an opted-out number is 0x66. */
	if (account->config->traffic_class == OUTBOX_CLASS_MARKETING &&
	    optout_is_opted_out(destination)) {
		metrics_add(account->metrics.optout_refused, 1);
		log_info(session->log_id, "server", "optout-refused",
		    "account=%s to=%s status=ESME_RX_R_APPN",
		    account->config->name,
		    log_mask_number(destination, masked, sizeof(masked)));
		return SMPP_ESME_RX_R_APPN;
	}
	if (!account_take_token(account, now_us())) {
		metrics_add(account->metrics.throttled, 1);
		return SMPP_ESME_RTHROTTLED;
	}
	memset(&request, 0, sizeof(request));
	request.to = destination;
	request.dest_addr_ton = ton;
	request.dest_addr_npi = npi;
	request.from =
	    submission->source != NULL && submission->source[0] != '\0'
		? submission->source
		: NULL;
	request.source_addr_ton = submission->source_ton;
	request.source_addr_npi = submission->source_npi;
	request.esm_class = submission->esm_class;
	request.data_coding = submission->data_coding;
	request.protocol_id = submission->protocol_id;
	request.priority_flag = submission->priority_flag;
	request.registered_delivery = submission->registered_delivery;
	/* Never NULL, even empty: it is copied with memcpy(). */
	request.short_message = submission->short_message != NULL
				    ? submission->short_message
				    : empty_octets;
	request.short_message_length = submission->short_message_length;
	request.tlv_bytes = submission->tlv_bytes;
	request.tlv_length = submission->tlv_length;
	request.message_class =
	    (enum outbox_class)account->config->traffic_class;
	request.validity_us = submission->validity_us;
	request.origin = account->origin;
	request.link = account->config->route;
	status = outbox_submit_part(&request, id);
	if (status == SMPP_ESME_ROK)
		metrics_add(account->metrics.accepted, 1);
	return status;
}

/* A refused submit: counted, logged, answered at once (nothing stored). */
static void
submit_refused(struct server_session *session, const struct received *received,
    uint32_t status, const char *destination)
{
	struct server_account *account = session->account;
	char masked[LOG_MASKED_NUMBER_SIZE];
	struct smpp_pdu pdu;

	metrics_add(account->metrics.refused, 1);
	if (status != SMPP_ESME_RTHROTTLED)
		log_info(session->log_id, "server", "submit-refused",
		    "account=%s command=%s sequence=%u to=%s status=%s",
		    account->config->name,
		    smpp_command_name(received->pdu.command_id),
		    received->pdu.sequence_number,
		    log_mask_number(destination != NULL ? destination : "",
			masked, sizeof(masked)),
		    smpp_status_name(status));
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = received->event.response_command_id;
	pdu.command_status = status;
	pdu.sequence_number = received->pdu.sequence_number;
	session_send_response(session, &pdu);
	metrics_observe(account->metrics.response_seconds,
	    (double)(now_us() - received->received_us) / 1e6);
}

/* submit_sm and data_sm: one destination, answered after the commit. */
static void
handle_submit(struct server_session *session, const struct received *received)
{
	const struct smpp_pdu *pdu = &received->pdu;
	struct submission submission;
	struct answer *answer;
	uint64_t id = 0;
	uint32_t status;

	status = submission_prepare(session, pdu, &submission);
	if (status == SMPP_ESME_ROK)
		status = submit_to(session, &submission, pdu->destination_addr,
		    pdu->dest_addr_ton, pdu->dest_addr_npi, &id);
	if (status != SMPP_ESME_ROK) {
		submit_refused(
		    session, received, status, pdu->destination_addr);
		return;
	}
	answer =
	    answer_after_commit(session, received->event.response_command_id,
		pdu->sequence_number, received->received_us);
	answer->message_id = id;
}

/*
 * submit_multi: each SME destination becomes its own outbox message; the
 * response's message_id is the id of the first one accepted, and every
 * refused destination is listed with its status (distribution lists are
 * not offered: ESME_RINVDLNAME). If none is accepted, the response carries
 * the first refusal's status and no body.
 */
static void
handle_submit_multi(
    struct server_session *session, const struct received *received)
{
	const struct smpp_pdu *pdu = &received->pdu;
	struct smpp_destination destination;
	struct submission submission;
	struct refusal *refusals = NULL, *refusal;
	struct answer *answer;
	size_t cursor = 0, refusal_count = 0;
	uint64_t id, first_id = 0;
	uint32_t status, first_status = SMPP_ESME_ROK;

	status = submission_prepare(session, pdu, &submission);
	if (status != SMPP_ESME_ROK) {
		submit_refused(session, received, status, NULL);
		return;
	}
	if ((refusals = calloc(SMPP_MAX_DESTINATIONS, sizeof(*refusals))) ==
	    NULL)
		fatal("server", "out-of-memory", NULL);
	while (smpp_pdu_next_destination(pdu, &cursor, &destination)) {
		if (destination.dest_flag == SMPP_DEST_FLAG_DISTRIBUTION_LIST)
			status = SMPP_ESME_RINVDLNAME;
		else
			status = submit_to(session, &submission,
			    destination.address, destination.dest_addr_ton,
			    destination.dest_addr_npi, &id);
		if (status == SMPP_ESME_ROK) {
			if (first_id == 0)
				first_id = id;
			continue;
		}
		if (first_status == SMPP_ESME_ROK)
			first_status = status;
		if (refusal_count == SMPP_MAX_DESTINATIONS)
			continue;
		refusal = &refusals[refusal_count++];
		snprintf(refusal->address, sizeof(refusal->address), "%s",
		    destination.address != NULL ? destination.address : "");
		refusal->ton = destination.dest_addr_ton;
		refusal->npi = destination.dest_addr_npi;
		refusal->status = status;
	}
	if (first_id == 0) {
		free(refusals);
		submit_refused(session, received,
		    first_status != SMPP_ESME_ROK ? first_status
						  : SMPP_ESME_RINVNUMDESTS,
		    NULL);
		return;
	}
	if (refusal_count > 0)
		metrics_add(
		    session->account->metrics.refused, (double)refusal_count);
	answer =
	    answer_after_commit(session, received->event.response_command_id,
		pdu->sequence_number, received->received_us);
	answer->message_id = first_id;
	if (refusal_count > 0) {
		answer->refusals = refusals;
		answer->refusal_count = refusal_count;
	} else
		free(refusals);
}

/* A gateway id as an ESME spells it: decimal, 1 to 20 digits. */
static int
parse_message_id(const char *text, uint64_t *id)
{
	uint64_t value = 0;
	size_t i;

	if (text == NULL || text[0] == '\0' || strlen(text) > 20)
		return -1;
	for (i = 0; text[i] != '\0'; i++) {
		if (!isdigit((unsigned char)text[i]) ||
		    value > (UINT64_MAX - (uint64_t)(text[i] - '0')) / 10)
			return -1;
		value = value * 10 + (uint64_t)(text[i] - '0');
	}
	if (value == 0)
		return -1;
	*id = value;
	return 0;
}

/*
 * query_sm: the state of one of this account's messages. An id that is not
 * ours reads as unknown (ESME_RQUERYFAIL), so accounts learn nothing of
 * each other's traffic.
 */
static void
handle_query(struct server_session *session, const struct received *received)
{
	const struct smpp_pdu *request = &received->pdu;
	struct outbox_message_record message;
	struct outbox_part_record part;
	struct smpp_pdu pdu;
	enum store_result result;
	enum outbox_state state;
	char final_date[17];
	uint64_t id;

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_QUERY_SM_RESP;
	pdu.sequence_number = request->sequence_number;
	if (parse_message_id(request->message_id, &id) != 0) {
		pdu.command_status = SMPP_ESME_RINVMSGID;
		session_send_response(session, &pdu);
		return;
	}
	result = outbox_read_message(id, &message, NULL, 0);
	if (result == STORE_OK &&
	    strcmp(message.origin, session->account->origin) != 0)
		result = STORE_NOT_FOUND;
	if (result != STORE_OK) {
		pdu.command_status = result == STORE_NOT_FOUND
					 ? SMPP_ESME_RQUERYFAIL
					 : SMPP_ESME_RSYSERR;
		session_send_response(session, &pdu);
		return;
	}
	state = (enum outbox_state)message.state;
	pdu.message_id = request->message_id;
	pdu.message_state = (uint8_t)server_deliver_message_state(
	    state, server_deliver_last_reason(&message, 0));
	pdu.final_date = "";
	if (pdu.message_state != SMPP_MESSAGE_STATE_ENROUTE) {
		smpp_time_of(message.updated_us, final_date);
		pdu.final_date = final_date;
	}
	if (outbox_read_part(id, 1, &part) == STORE_OK &&
	    part.receipt_error != 0)
		pdu.error_code = part.receipt_error > 0xff
				     ? 0xff
				     : (uint8_t)part.receipt_error;
	session_send_response(session, &pdu);
}

/* cancel_sm by message_id (mass cancel by addresses is not offered). */
static void
handle_cancel(struct server_session *session, const struct received *received)
{
	const struct smpp_pdu *pdu = &received->pdu;
	uint64_t id;
	uint32_t status;

	if (pdu->message_id == NULL || pdu->message_id[0] == '\0')
		status = SMPP_ESME_RCANCELFAIL;
	else if (parse_message_id(pdu->message_id, &id) != 0)
		status = SMPP_ESME_RINVMSGID;
	else
		status = outbox_cancel(id, session->account->origin);
	log_info(session->log_id, "server", "cancel",
	    "account=%s sequence=%u status=%s", session->account->config->name,
	    pdu->sequence_number, smpp_status_name(status));
	if (status != SMPP_ESME_ROK) {
		session_answer(
		    session, SMPP_CANCEL_SM_RESP, status, pdu->sequence_number);
		return;
	}
	answer_after_commit(
	    session, SMPP_CANCEL_SM_RESP, pdu->sequence_number, 0);
}

/* replace_sm: new octets for a message still wholly QUEUED. */
static void
handle_replace(struct server_session *session, const struct received *received)
{
	const struct smpp_pdu *pdu = &received->pdu;
	uint64_t id;
	uint32_t status;

	if (parse_message_id(pdu->message_id, &id) != 0)
		status = SMPP_ESME_RINVMSGID;
	else
		status = outbox_replace(id, session->account->origin,
		    pdu->short_message != NULL ? pdu->short_message
					       : empty_octets,
		    pdu->sm_length, pdu->registered_delivery);
	log_info(session->log_id, "server", "replace",
	    "account=%s sequence=%u status=%s", session->account->config->name,
	    pdu->sequence_number, smpp_status_name(status));
	if (status != SMPP_ESME_ROK) {
		session_answer(session, SMPP_REPLACE_SM_RESP, status,
		    pdu->sequence_number);
		return;
	}
	answer_after_commit(
	    session, SMPP_REPLACE_SM_RESP, pdu->sequence_number, 0);
}

static void
handle_enquire_link(
    struct server_session *session, const struct received *received)
{
	session_answer(session, SMPP_ENQUIRE_LINK_RESP, SMPP_ESME_ROK,
	    received->pdu.sequence_number);
}

/* Answers the unbind and closes, once no answer waits for a commit. */
static void
session_finish_unbind(struct server_session *session)
{
	session->unbind_requested = 0;
	session_answer(
	    session, SMPP_UNBIND_RESP, SMPP_ESME_ROK, session->unbind_sequence);
	session_close(session, "peer-unbound", 1);
}

/*
 * The ESME leaves. Why the unbind_resp may wait: submits of this turn are
 * answered after the commit, and they must reach the ESME before the
 * unbind_resp that ends the session.
 */
static void
handle_unbind(struct server_session *session, const struct received *received)
{
	log_info(session->log_id, "server", "unbind-received",
	    "account=%s pending=%u",
	    session->account != NULL ? session->account->config->name : "-",
	    session->pending_answers);
	session->unbind_requested = 1;
	session->unbind_sequence = received->pdu.sequence_number;
	if (session->pending_answers == 0)
		session_finish_unbind(session);
}

/* command_id -> handler for every request an ESME may send the SMSC. */
static const struct request_handler {
	uint32_t command_id;
	request_handler_fn *handle;
} request_handlers[] = {
    {SMPP_BIND_TRANSMITTER, handle_bind},
    {SMPP_BIND_RECEIVER, handle_bind},
    {SMPP_BIND_TRANSCEIVER, handle_bind},
    {SMPP_SUBMIT_SM, handle_submit},
    {SMPP_DATA_SM, handle_submit},
    {SMPP_SUBMIT_MULTI, handle_submit_multi},
    {SMPP_QUERY_SM, handle_query},
    {SMPP_CANCEL_SM, handle_cancel},
    {SMPP_REPLACE_SM, handle_replace},
    {SMPP_ENQUIRE_LINK, handle_enquire_link},
    {SMPP_UNBIND, handle_unbind},
};

static request_handler_fn *
find_handler(uint32_t command_id)
{
	size_t i;

	for (i = 0; i < SERVER_NITEMS(request_handlers); i++)
		if (request_handlers[i].command_id == command_id)
			return request_handlers[i].handle;
	return NULL;
}

/* ---- responses from the ESME -------------------------------------------- */

static void
handle_response(struct server_session *session, const struct received *received)
{
	const struct smpp_pdu *pdu = &received->pdu;
	uint32_t status = pdu->command_status;

	switch (received->event.type) {
	case SMPP_SESSION_EVENT_RESPONSE:
		if (pdu->command_id == SMPP_GENERIC_NACK &&
		    status == SMPP_ESME_ROK)
			status = SMPP_ESME_RUNKNOWNERR; /* a nack refuses */
		if (received->event.request_command_id == SMPP_DELIVER_SM &&
		    session->account != NULL)
			server_deliver_answered(session->account->index,
			    received->event.cookie, status);
		break;
	case SMPP_SESSION_EVENT_UNBIND_DONE:
		session_close(session, "unbound", 0);
		break;
	case SMPP_SESSION_EVENT_ENQUIRE_LINK_ANSWERED:
		break;
	default:
		log_info(session->log_id, "server", "response-unexpected",
		    "command=%s sequence=%u status=%s event=%d",
		    smpp_command_name(pdu->command_id), pdu->sequence_number,
		    smpp_status_name(status), (int)received->event.type);
		break;
	}
}

/* ---- reading ------------------------------------------------------------ */

/*
 * One framed PDU: decode, let the session judge it, then refuse a request
 * with the status found (the session goes on) or hand it to its handler.
 */
static void
session_receive(
    struct server_session *session, const uint8_t *data, size_t length)
{
	struct received received;
	request_handler_fn *handle;
	uint32_t status;

	received.received_us = now_us();
	received.decode_status = smpp_pdu_decode(data, length, &received.pdu);
	smpp_session_receive(session->smpp, received.pdu.command_id,
	    received.pdu.command_status, received.pdu.sequence_number,
	    received.received_us, &received.event);
	if (received.event.type == SMPP_SESSION_EVENT_IGNORED)
		return;
	if (received.pdu.command_id & SMPP_RESPONSE_BIT) {
		handle_response(session, &received);
		return;
	}
	handle = find_handler(received.pdu.command_id);
	status = received.event.status;
	if (status == SMPP_ESME_ROK)
		status = received.decode_status;
	if (status == SMPP_ESME_ROK && handle == NULL)
		status = SMPP_ESME_RINVCMDID;
	if (status == SMPP_ESME_ROK) {
		handle(session, &received);
		return;
	}
	log_info(session->log_id, "server", "request-refused",
	    "account=%s command=%s sequence=%u status=%s",
	    session->account != NULL ? session->account->config->name : "-",
	    smpp_command_name(received.pdu.command_id),
	    received.pdu.sequence_number, smpp_status_name(status));
	if (received.event.response_command_id == 0)
		return; /* alert_notification, outbind: nothing to answer */
	if (received.event.response_command_id == SMPP_GENERIC_NACK)
		session_answer(session, SMPP_GENERIC_NACK, status,
		    received.pdu.sequence_number);
	else
		session_answer(session, received.event.response_command_id,
		    status, received.pdu.sequence_number);
}

/*
 * A command_length outside bounds: the stream cannot be re-synchronised,
 * so answer generic_nack ESME_RINVCMDLEN and close.
 */
static void
session_reject_stream(struct server_session *session, struct evbuffer *input,
    uint32_t command_length)
{
	uint8_t header[SMPP_HEADER_LENGTH];
	uint32_t sequence_number = 0;

	if (evbuffer_copyout(input, header, sizeof(header)) ==
	    (ev_ssize_t)sizeof(header))
		sequence_number = get_be32(header + 12);
	metrics_add(server.framing_errors, 1);
	log_warnx(session->log_id, "server", "invalid-command-length",
	    "peer=%s command_length=%u", session->peer, command_length);
	session_send_header(
	    session, SMPP_GENERIC_NACK, SMPP_ESME_RINVCMDLEN, sequence_number);
	session_close(session, "invalid-command-length", 1);
}

/* Handles every whole PDU in the input buffer (unless paused). */
static void
session_process_input(struct server_session *session)
{
	struct evbuffer *input, *output;
	uint64_t generation = session->generation;
	const uint8_t *data;
	uint8_t head[4];
	uint32_t pdu_length;
	size_t available;

	if (session->bufferevent == NULL)
		return;
	input = bufferevent_get_input(session->bufferevent);
	output = bufferevent_get_output(session->bufferevent);
	while (!session->paused && !session->write_blocked &&
	       (available = evbuffer_get_length(input)) >= sizeof(head)) {
		evbuffer_copyout(input, head, sizeof(head));
		/* Four octets are enough to judge the length. */
		if (smpp_pdu_frame(head, sizeof(head), max_pdu_length(),
			&pdu_length) == SMPP_FRAME_INVALID) {
			session_reject_stream(session, input, pdu_length);
			return;
		}
		if (available < pdu_length)
			break;
		if ((data = evbuffer_pullup(input, pdu_length)) == NULL) {
			session_close(session, "out-of-memory", 0);
			return;
		}
		session_receive(session, data, pdu_length);
		/* A handler may have closed it: the buffer is gone then. */
		if (session->generation != generation)
			return;
		evbuffer_drain(input, pdu_length);
		/*
		 * Why stop here: a peer that sends without reading its
		 * responses would make the output grow without bound.
		 */
		if (evbuffer_get_length(output) > SERVER_OUTPUT_HIGH) {
			session->write_blocked = 1;
			bufferevent_disable(session->bufferevent, EV_READ);
			bufferevent_setwatermark(session->bufferevent, EV_WRITE,
			    SERVER_OUTPUT_LOW, 0);
			metrics_add(server.reading_paused, 1);
			log_info(session->log_id, "server", "reading-paused",
			    "peer=%s unread=%zu", session->peer,
			    evbuffer_get_length(output));
		}
	}
	session_arm_timer(session);
}

static void
session_read(struct bufferevent *bufferevent, void *arg)
{
	session_process_input(arg);
}

/* The output drained to the low mark: a blocked peer is read again. */
static void
session_written(struct bufferevent *bufferevent, void *arg)
{
	struct server_session *session = arg;

	if (!session->write_blocked)
		return;
	session->write_blocked = 0;
	bufferevent_setwatermark(bufferevent, EV_WRITE, 0, 0);
	if (!session->paused)
		bufferevent_enable(bufferevent, EV_READ);
	session_process_input(session);
}

/* The peer went away, or the socket / TLS failed. */
static void
session_event(struct bufferevent *bufferevent, short what, void *arg)
{
	struct server_session *session = arg;
	char error[160];
	unsigned long tls_error;

	if (what & BEV_EVENT_CONNECTED)
		return;
	error[0] = '\0';
	if (session->tls &&
	    (tls_error = bufferevent_get_openssl_error(bufferevent)) != 0)
		ERR_error_string_n(tls_error, error, sizeof(error));
	else if (what & BEV_EVENT_ERROR)
		snprintf(error, sizeof(error), "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (error[0] != '\0')
		log_info(session->log_id, "server", "connection-error",
		    "peer=%s error=\"%s\"", session->peer, error);
	session_close(session,
	    (what & BEV_EVENT_EOF) ? "peer-closed" : "connection-error", 0);
}

/* ---- timers ------------------------------------------------------------- */

/* Arms the session timer if next_wakeup is earlier than what is armed. */
static void
session_arm_timer(struct server_session *session)
{
	struct timeval delay;
	uint64_t wakeup, now;

	if (session->bufferevent == NULL)
		return;
	wakeup = smpp_session_next_wakeup(session->smpp);
	if (wakeup == SMPP_SESSION_NEVER)
		return;
	if (evtimer_pending(session->session_timer, NULL) &&
	    session->session_timer_due <= wakeup)
		return; /* fires early at worst, polls, re-arms */
	now = now_us();
	delay = timeval_of(wakeup > now ? wakeup - now : 0);
	evtimer_add(session->session_timer, &delay);
	session->session_timer_due = wakeup;
}

/* Does what the session says is due: enquire_link, expiries, closing. */
static void
session_timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct server_session *session = arg;
	struct smpp_session_action action;
	uint64_t generation = session->generation, now = now_us();

	session->session_timer_due = SMPP_SESSION_NEVER;
	while (smpp_session_poll(session->smpp, now, &action) !=
	       SMPP_SESSION_ACTION_NONE) {
		switch (action.type) {
		case SMPP_SESSION_ACTION_SEND_ENQUIRE_LINK:
			session_send_header(session, SMPP_ENQUIRE_LINK,
			    SMPP_ESME_ROK, action.sequence_number);
			break;
		case SMPP_SESSION_ACTION_SEND_UNBIND:
			log_info(session->log_id, "server", "unbinding",
			    "reason=\"%s\"",
			    smpp_session_strreason(action.reason));
			session_send_header(session, SMPP_UNBIND, SMPP_ESME_ROK,
			    action.sequence_number);
			break;
		case SMPP_SESSION_ACTION_REQUEST_EXPIRED:
			log_info(session->log_id, "server", "response-timeout",
			    "command=%s sequence=%u",
			    smpp_command_name(action.command_id),
			    action.sequence_number);
			if (action.command_id == SMPP_DELIVER_SM &&
			    session->account != NULL)
				server_deliver_unanswered(
				    session->account->index, action.cookie, 1);
			break;
		case SMPP_SESSION_ACTION_CLOSE:
		case SMPP_SESSION_ACTION_REQUEST_FAILED:
		default:
			session_close(
			    session, smpp_session_strreason(action.reason), 0);
			return;
		}
		if (session->generation != generation)
			return;
	}
	session_arm_timer(session);
}

/* ---- closing ------------------------------------------------------------ */

static void
lingering_free(struct lingering *lingering)
{
	TAILQ_REMOVE(&server.lingering, lingering, entry);
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
session_release_bufferevent(struct server_session *session, int flush)
{
	struct bufferevent *bufferevent = session->bufferevent;
	struct lingering *lingering;
	struct timeval tv;

	session->bufferevent = NULL;
	if (!flush ||
	    evbuffer_get_length(bufferevent_get_output(bufferevent)) == 0 ||
	    (lingering = calloc(1, sizeof(*lingering))) == NULL) {
		bufferevent_free(bufferevent);
		return;
	}
	lingering->timer =
	    evtimer_new(server.base, lingering_expired, lingering);
	if (lingering->timer == NULL) {
		free(lingering);
		bufferevent_free(bufferevent);
		return;
	}
	lingering->bufferevent = bufferevent;
	TAILQ_INSERT_TAIL(&server.lingering, lingering, entry);
	bufferevent_disable(bufferevent, EV_READ);
	bufferevent_setwatermark(bufferevent, EV_WRITE, 0, 0);
	bufferevent_setcb(
	    bufferevent, NULL, lingering_written, lingering_event, lingering);
	tv = timeval_of(SERVER_LINGER_US);
	evtimer_add(lingering->timer, &tv);
}

/*
 * Closes a session and returns it to the pool. The deliver_sm it had on
 * the wire go back to their queue, in their place, after it left the
 * account's receivers, so another receiver may take them at once.
 */
static void
session_close(struct server_session *session, const char *reason, int flush)
{
	struct server_account *account = session->account;
	struct smpp_session_action action;
	uint64_t now = now_us();
	unsigned int outstanding;

	if (session->bufferevent == NULL)
		return;
	session->generation = ++server.generation;
	session_release_bufferevent(session, flush);
	evtimer_del(session->session_timer);
	evtimer_del(session->bind_timer);
	session->session_timer_due = SMPP_SESSION_NEVER;
	session->delayed.pending = 0;
	outstanding = smpp_session_outstanding(session->smpp);
	smpp_session_enter_state(session->smpp, SMPP_SESSION_CLOSED, now);
	log_info(session->log_id, "server", "disconnected",
	    "account=%s peer=%s reason=\"%s\" outstanding=%u bound_ms=%llu",
	    account != NULL ? account->config->name : "-", session->peer,
	    reason, outstanding,
	    (unsigned long long)(account != NULL
				     ? (now - session->bound_us) / 1000
				     : 0));
	if (account != NULL) {
		account->bound[session->kind]--;
		account_update_bound_gauge(account);
		if (session->receiving)
			TAILQ_REMOVE(
			    &account->receivers, session, receiver_entry);
	}
	session->receiving = 0;
	session->account = NULL;
	TAILQ_REMOVE(&server.sessions, session, entry);
	TAILQ_INSERT_HEAD(&server.pool, session, entry);
	server.session_count--;
	metrics_set(server.sessions_open, (double)server.session_count);
	while (smpp_session_poll(session->smpp, now, &action) ==
	       SMPP_SESSION_ACTION_REQUEST_FAILED)
		if (account != NULL && action.command_id == SMPP_DELIVER_SM)
			server_deliver_unanswered(
			    account->index, action.cookie, 0);
	if (account != NULL && outstanding > 0)
		server_deliver_ready(account->index);
}

/* ---- accepting ---------------------------------------------------------- */

/* A pooled session, or a new one with its timers. */
static struct server_session *
session_alloc(void)
{
	struct server_session *session;

	if ((session = TAILQ_FIRST(&server.pool)) != NULL) {
		TAILQ_REMOVE(&server.pool, session, entry);
		return session;
	}
	if ((session = calloc(1, sizeof(*session))) == NULL ||
	    (session->smpp = calloc(1, sizeof(*session->smpp))) == NULL)
		fatal("server", "out-of-memory", NULL);
	session->session_timer =
	    evtimer_new(server.base, session_timer_fired, session);
	session->bind_timer =
	    evtimer_new(server.base, bind_timer_fired, session);
	if (session->session_timer == NULL || session->bind_timer == NULL)
		fatal("server", "out-of-memory", NULL);
	return session;
}

/* The peer's address for logs, the auth table and allowed_addresses. */
static void
session_set_peer(
    struct server_session *session, const struct sockaddr *address, int length)
{
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
	const uint8_t *bytes;

	session->peer_has_ipv4 = 0;
	snprintf(session->peer, sizeof(session->peer), "unknown");
	if (address->sa_family == AF_INET && (size_t)length >= sizeof(*v4)) {
		inet_ntop(AF_INET, &v4->sin_addr, session->peer,
		    sizeof(session->peer));
		session->peer_has_ipv4 = 1;
		session->peer_ipv4 = ntohl(v4->sin_addr.s_addr);
	} else if (address->sa_family == AF_INET6 &&
		   (size_t)length >= sizeof(*v6)) {
		inet_ntop(AF_INET6, &v6->sin6_addr, session->peer,
		    sizeof(session->peer));
		if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
			bytes = v6->sin6_addr.s6_addr + 12;
			session->peer_has_ipv4 = 1;
			session->peer_ipv4 = (uint32_t)bytes[0] << 24 |
					     (uint32_t)bytes[1] << 16 |
					     (uint32_t)bytes[2] << 8 | bytes[3];
		}
	}
}

static void
listener_accept(struct evconnlistener *listener, evutil_socket_t fd,
    struct sockaddr *address, int length, void *arg)
{
	const struct config *config = server.config;
	struct smpp_session_config session_config;
	struct server_session *session;
	struct bufferevent *bufferevent;
	SSL *ssl;
	int tls = arg != NULL, on = 1;

	if (server.stopping || server.session_count >= SERVER_MAX_SESSIONS) {
		log_warnx(0, "server", "connection-refused", "reason=%s",
		    server.stopping ? "stopping" : "too-many-sessions");
		evutil_closesocket(fd);
		return;
	}
	/* Responses are small and latency-bound: no Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (tls) {
		if ((ssl = SSL_new(server.tls)) == NULL) {
			evutil_closesocket(fd);
			return;
		}
		/* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl. */
		bufferevent = bufferevent_openssl_socket_new(server.base, fd,
		    ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (bufferevent != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(
			    bufferevent, 1);
	} else
		bufferevent = bufferevent_socket_new(
		    server.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bufferevent == NULL) {
		log_warnx(0, "server", "accept-failed", "tls=%d", tls);
		evutil_closesocket(fd);
		return;
	}
	session = session_alloc();
	memset(&session_config, 0, sizeof(session_config));
	/* Our deliver_sm window is the account's, checked when sending. */
	session_config.window_size = SMPP_SESSION_WINDOW_MAX;
	session_config.enquire_link_interval = config->smpp_enquire_link_us;
	session_config.response_timeout = config->smpp_response_timeout_us;
	session_config.bind_timeout = config->smpp_bind_timeout_us;
	session_config.idle_timeout = config->smpp_idle_timeout_us;
	session_config.unbind_timeout =
	    config->smpp_response_timeout_us < SERVER_UNBIND_TIMEOUT_US
		? config->smpp_response_timeout_us
		: SERVER_UNBIND_TIMEOUT_US;
	smpp_session_init(
	    session->smpp, SMPP_SESSION_SMSC, &session_config, now_us());
	session->generation = ++server.generation;
	session->log_id = server.log_id_base | (++server.serial & 0xffffffffu);
	session->bufferevent = bufferevent;
	session->account = NULL;
	session->receiving = 0;
	session->tls = tls;
	session->paused = 0;
	session->write_blocked = 0;
	session->pending_answers = 0;
	session->unbind_requested = 0;
	session->session_timer_due = SMPP_SESSION_NEVER;
	memset(&session->delayed, 0, sizeof(session->delayed));
	session->opened_us = now_us();
	session->bound_us = 0;
	session_set_peer(session, address, length);
	TAILQ_INSERT_TAIL(&server.sessions, session, entry);
	server.session_count++;
	metrics_add(server.connections, 1);
	metrics_set(server.sessions_open, (double)server.session_count);
	bufferevent_setcb(
	    bufferevent, session_read, session_written, session_event, session);
	bufferevent_enable(bufferevent, EV_READ | EV_WRITE);
	log_info(session->log_id, "server", "connected", "peer=%s tls=%s",
	    session->peer, tls ? "yes" : "no");
	session_arm_timer(session);
}

static void
listener_error(struct evconnlistener *listener, void *arg)
{
	int error = EVUTIL_SOCKET_ERROR();

	/* Out of descriptors and the like: the listener keeps going. */
	log_warnx(0, "server", "accept-error", "error=\"%s\"",
	    evutil_socket_error_to_string(error));
}

/* Listens on host:port; fatal if it cannot (nudged cannot serve then). */
static struct evconnlistener *
listen_on(const char *host, const char *port, int tls)
{
	struct evconnlistener *listener;
	struct addrinfo hints, *result;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &result)) != 0)
		fatalx("server", "listen-address", "address=%s:%s error=\"%s\"",
		    host, port, gai_strerror(rc));
	listener = evconnlistener_new_bind(server.base, listener_accept,
	    tls ? (void *)&server.tls : NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    SERVER_LISTEN_BACKLOG, result->ai_addr, (int)result->ai_addrlen);
	freeaddrinfo(result);
	if (listener == NULL)
		fatal("server", "listen-failed", "address=%s:%s tls=%d", host,
		    port, tls);
	evconnlistener_set_error_cb(listener, listener_error);
	log_info(0, "server", "listening", "address=%s:%s tls=%s", host, port,
	    tls ? "yes" : "no");
	return listener;
}

/* The TLS listener: "host:port" (IPv6 as "[addr]:port"), a key and chain. */
static void
tls_start(const struct config *config)
{
	char host[128], *colon;
	const char *port;

	snprintf(host, sizeof(host), "%s", config->smpp_tls_listen);
	if ((colon = strrchr(host, ':')) == NULL)
		fatalx("server", "tls-listen", "value=%s reason=\"no port\"",
		    config->smpp_tls_listen);
	*colon = '\0';
	port = colon + 1;
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host + 1) + 1);
	}
	if ((server.tls = SSL_CTX_new(TLS_server_method())) == NULL)
		fatalx("server", "tls-context", NULL);
	SSL_CTX_set_min_proto_version(server.tls, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(
		server.tls, config->smpp_tls_certificate) != 1 ||
	    SSL_CTX_use_PrivateKey_file(
		server.tls, config->smpp_tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(server.tls) != 1)
		fatalx("server", "tls-credentials",
		    "certificate=%s key=%s error=\"%s\"",
		    config->smpp_tls_certificate, config->smpp_tls_key,
		    ERR_reason_error_string(ERR_get_error()));
	server.tls_listener = listen_on(host, port, 1);
}

/* ---- deliver_sm, for server_deliver.c ----------------------------------- */

int
server_send_deliver(size_t index, uint8_t *pdu, size_t length, uint64_t cookie)
{
	struct server_account *account;
	struct server_session *session;
	uint32_t sequence_number;
	unsigned int window;

	if (index >= server.account_count || length < SMPP_HEADER_LENGTH ||
	    server.stopping)
		return -1;
	account = &server.accounts[index];
	window = (unsigned int)account->config->window;
	TAILQ_FOREACH(session, &account->receivers, receiver_entry)
	if (session->bufferevent != NULL &&
	    is_bound_state(session->smpp->state) &&
	    smpp_session_outstanding(session->smpp) < window)
		break;
	if (session == NULL)
		return -1;
	if (smpp_session_send_request(session->smpp, SMPP_DELIVER_SM, cookie,
		now_us(), &sequence_number) != SMPP_ESME_ROK)
		return -1;
	put_be32(pdu + 12, sequence_number);
	session_write(session, pdu, length);
	/* Round robin: the next one goes to another receiver, if any. */
	TAILQ_REMOVE(&account->receivers, session, receiver_entry);
	TAILQ_INSERT_TAIL(&account->receivers, session, receiver_entry);
	session_arm_timer(session);
	return 0;
}

/* ---- start and stop ----------------------------------------------------- */

void
server_init(struct event_base *base, const struct config *config)
{
	struct server_account *account;
	char port[8];
	size_t i;

	if (server.base != NULL) {
		log_warnx(0, "server", "restarted-without-free", NULL);
		server_free();
	}
	memset(&server, 0, sizeof(server));
	server_epoch++;
	server.base = base;
	server.config = config;
	server.log_id_base = (uint64_t)(clock_now_us() / 1000000) << 32;
	TAILQ_INIT(&server.sessions);
	TAILQ_INIT(&server.pool);
	TAILQ_INIT(&server.lingering);
	server.connections = metrics_counter("nudge_server_connections_total",
	    NULL, "Connections accepted by the SMPP server.");
	server.sessions_open = metrics_gauge("nudge_server_sessions_open", NULL,
	    "SMPP server connections open now (bound or not).");
	server.framing_errors =
	    metrics_counter("nudge_server_framing_errors_total", NULL,
		"Connections closed for an invalid command_length.");
	server.bind_delayed = metrics_counter("nudge_server_bind_delayed_total",
	    NULL, "Failed binds answered auth_fail_delay late.");
	server.bind_blocked = metrics_counter("nudge_server_bind_blocked_total",
	    NULL, "Binds refused because their address is blocked.");
	server.addresses_blocked =
	    metrics_counter("nudge_server_addresses_blocked_total", NULL,
		"Times an address reached auth_fail_block_after.");
	server.reading_paused =
	    metrics_counter("nudge_server_reading_paused_total", NULL,
		"Times a peer's unread responses passed 1 MB: reading paused.");
	server.account_count = config->account_count;
	if (server.account_count > 0 &&
	    (server.accounts = calloc(
		 server.account_count, sizeof(*server.accounts))) == NULL)
		fatal("server", "out-of-memory", NULL);
	for (i = 0; i < server.account_count; i++) {
		account = &server.accounts[i];
		account->config = config->accounts[i];
		account->index = i;
		account->log_id = name_log_id(account->config->name);
		snprintf(account->origin, sizeof(account->origin), "%s%s",
		    SERVER_ORIGIN_PREFIX, account->config->system_id);
		account->tokens = (double)account->config->tps;
		account->refilled_us = now_us();
		TAILQ_INIT(&account->receivers);
		account_parse_cidrs(account);
		account_register_metrics(account);
	}
	server_deliver_init(base, config);
	snprintf(
	    port, sizeof(port), "%u", (unsigned int)config->smpp_listen.port);
	server.listener = listen_on(config->smpp_listen.host, port, 0);
	if (config->smpp_tls_listen[0] != '\0')
		tls_start(config);
}

/*
 * Stop accepting; unbind every bound session (its unbind_resp, or the
 * unbind timeout, closes it) and close the others.
 */
void
server_shutdown_begin(void *arg)
{
	struct server_session *session, *next;
	uint32_t sequence_number;

	server.stopping = 1;
	if (server.listener != NULL)
		evconnlistener_free(server.listener);
	if (server.tls_listener != NULL)
		evconnlistener_free(server.tls_listener);
	server.listener = server.tls_listener = NULL;
	for (session = TAILQ_FIRST(&server.sessions); session != NULL;
	     session = next) {
		next = TAILQ_NEXT(session, entry);
		if (!is_bound_state(session->smpp->state)) {
			if (session->smpp->state != SMPP_SESSION_UNBOUND)
				session_close(session, "stopping", 0);
			continue;
		}
		if (smpp_session_send_request(session->smpp, SMPP_UNBIND, 0,
			now_us(), &sequence_number) != SMPP_ESME_ROK) {
			session_close(session, "stopping", 0);
			continue;
		}
		log_info(
		    session->log_id, "server", "unbinding", "reason=shutdown");
		session_send_header(
		    session, SMPP_UNBIND, SMPP_ESME_ROK, sequence_number);
		session_arm_timer(session);
	}
}

int
server_shutdown_done(void *arg)
{
	return TAILQ_EMPTY(&server.sessions);
}

size_t
server_session_count(void)
{
	return server.session_count;
}

/* Frees everything (after the loop); nothing is answered any more. */
void
server_free(void)
{
	struct server_session *session;
	struct lingering *lingering;
	size_t i;

	if (server.base == NULL)
		return;
	server.stopping = 1;
	while ((session = TAILQ_FIRST(&server.sessions)) != NULL)
		session_close(session, "server-stopped", 0);
	while ((session = TAILQ_FIRST(&server.pool)) != NULL) {
		TAILQ_REMOVE(&server.pool, session, entry);
		event_free(session->session_timer);
		event_free(session->bind_timer);
		free(session->smpp);
		free(session);
	}
	while ((lingering = TAILQ_FIRST(&server.lingering)) != NULL)
		lingering_free(lingering);
	if (server.listener != NULL)
		evconnlistener_free(server.listener);
	if (server.tls_listener != NULL)
		evconnlistener_free(server.tls_listener);
	if (server.tls != NULL)
		SSL_CTX_free(server.tls);
	server_deliver_free();
	for (i = 0; i < server.account_count; i++)
		free(server.accounts[i].cidrs);
	free(server.accounts);
	free(server.auth);
	/* A batch still waiting for its commit frees itself (epoch is old). */
	server_epoch++;
	memset(&server, 0, sizeof(server));
}
