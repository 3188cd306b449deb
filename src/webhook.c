/*
 * webhook.c - durable webhooks: a JSON POST that survives crashes and
 * restarts. The flow engine's webhook step hands a journey to an e-mail
 * service with it.
 *
 * A webhook lives in one timer row (TIMER_KIND_WEBHOOK) whose payload holds
 * the URL, the body and the attempt it stands for; nothing pending lives only
 * in memory. webhook_post() writes that row in the current store turn and
 * starts the POST only after the commit. Before every attempt, a row for the
 * next attempt is written as a safety net, due after the request timeout plus
 * the back-off: if nudged dies with the POST in flight, the row fires after
 * the restart and the POST is made again. An answer settles the attempt: 2xx
 * deletes the row (done), anything else moves it to now + back-off (1 s, 5 s,
 * 30 s, 2 min, 10 min), and after the sixth failure the webhook is given up,
 * logged and counted. Delivery is at least once: a receiver that must not
 * act twice keys on the Idempotency-Key header, the same on every attempt.
 *
 * http:// and https:// (OpenSSL through bufferevent_openssl, the system's
 * trust store, the certificate checked against the URL's host name or IP
 * address). Names resolve through evdns, so the loop never blocks on DNS.
 * Logs name the host and path, never the query (it may hold a token) and
 * never the body (personal data).
 */
#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "nudged.h"

#define WEBHOOK_ROW_VERSION        1
#define WEBHOOK_HEADER_SIZE        32 /* fixed part of a row's payload */
#define WEBHOOK_URL_MAX            2048
#define WEBHOOK_BODY_MAX           (1024 * 1024)
#define WEBHOOK_ATTEMPTS           6
#define WEBHOOK_TIMEOUT_S          10 /* connect, TLS, each read and write */
#define WEBHOOK_TIMEOUT_US         ((uint64_t)WEBHOOK_TIMEOUT_S * 1000000)
#define WEBHOOK_MAX_IN_FLIGHT      64 /* more wait their turn in memory */
#define WEBHOOK_RESPONSE_MAX       (64 * 1024) /* headers, and body */
#define WEBHOOK_SHUTDOWN_MARGIN_US 200000

/* Wait before attempt n (n >= 1); attempt 0 goes right after the commit. */
static const uint64_t retry_delays_us[WEBHOOK_ATTEMPTS] = {
    0, 1000000, 5000000, 30000000, 120000000, 600000000};

/* libevent's request errors, for logs. */
static const char *const request_error_names[] = {
    [EVREQ_HTTP_TIMEOUT] = "timeout",
    [EVREQ_HTTP_EOF] = "connection-closed",
    [EVREQ_HTTP_INVALID_HEADER] = "invalid-response",
    [EVREQ_HTTP_BUFFER_ERROR] = "buffer-error",
    [EVREQ_HTTP_REQUEST_CANCEL] = "cancelled",
    [EVREQ_HTTP_DATA_TOO_LONG] = "response-too-long",
};

/* The fixed part of a row's payload, decoded. */
struct webhook_header {
	unsigned int attempt; /* the attempt this row stands for */
	size_t url_length;
	size_t body_length;
	uint64_t id;     /* same on every attempt */
	uint64_t log_id; /* the journey (or 0) for log lines */
	uint64_t created_us;
};

/* Where a URL points, split for the connection and the request line. */
struct webhook_target {
	int tls;
	char host[256];        /* to connect to; no IPv6 brackets */
	char host_header[272]; /* "host" or "host:port" */
	uint16_t port;
	char *request_path; /* path and query, never empty */
	char *log_path;     /* path only: the query may be secret */
};

enum webhook_attempt_state {
	WEBHOOK_COMMITTING = 0, /* its row is in the open transaction */
	WEBHOOK_WAITING,        /* committed; too many in flight already */
	WEBHOOK_RUNNING,        /* the POST is out */
	WEBHOOK_FINISHING,      /* answered; settled on the next loop pass */
};

/* One attempt, from the turn that wrote its safety-net row to its answer. */
struct webhook_attempt {
	TAILQ_ENTRY(webhook_attempt) entry;       /* webhooks.attempts */
	TAILQ_ENTRY(webhook_attempt) queue_entry; /* webhooks.waiting */
	enum webhook_attempt_state state;
	struct webhook_header header; /* header.attempt: the one running */
	uint8_t *payload;             /* the row, attempt byte = next one */
	size_t payload_length;
	uint64_t net_due_us; /* the safety-net row */
	uint64_t net_timer_id;
	uint64_t started_us; /* monotonic */
	struct evhttp_connection *connection;
	SSL *ssl; /* owned by the connection */
	struct event *finish_event;
	int status; /* HTTP status; 0: no answer */
	char error[160];
};

TAILQ_HEAD(webhook_attempt_list, webhook_attempt);

static struct {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *tls;
	struct webhook_attempt_list attempts; /* every one in memory */
	struct webhook_attempt_list waiting;
	size_t running; /* RUNNING and FINISHING */
	int stopping;
	int released;
	uint64_t abort_at_us; /* monotonic: give up waiting then */
	struct metric *sent;
	struct metric *failed;
	struct metric *given_up;
} webhooks;

static void webhook_start_waiting(void);

/* ---- the row's payload -------------------------------------------------- */

static void
encode_u32(uint8_t *out, uint32_t value)
{
	out[0] = (uint8_t)(value >> 24);
	out[1] = (uint8_t)(value >> 16);
	out[2] = (uint8_t)(value >> 8);
	out[3] = (uint8_t)value;
}

static uint32_t
decode_u32(const uint8_t *in)
{
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
	       (uint32_t)in[2] << 8 | (uint32_t)in[3];
}

/*
 * Payload: version, attempt, 2-byte URL length, 4-byte body length, then
 * 8-byte id, log id and creation time (all big-endian), the URL, the body.
 * Returns a malloc'd buffer.
 */
static uint8_t *
webhook_encode(const struct webhook_header *header, const char *url,
    const char *body, size_t *length)
{
	uint8_t *payload;

	*length =
	    WEBHOOK_HEADER_SIZE + header->url_length + header->body_length;
	if ((payload = malloc(*length)) == NULL)
		fatal("webhook", "out-of-memory", NULL);
	payload[0] = WEBHOOK_ROW_VERSION;
	payload[1] = (uint8_t)header->attempt;
	payload[2] = (uint8_t)(header->url_length >> 8);
	payload[3] = (uint8_t)header->url_length;
	encode_u32(payload + 4, (uint32_t)header->body_length);
	store_encode_u64(payload + 8, header->id);
	store_encode_u64(payload + 16, header->log_id);
	store_encode_u64(payload + 24, header->created_us);
	memcpy(payload + WEBHOOK_HEADER_SIZE, url, header->url_length);
	if (header->body_length > 0)
		memcpy(payload + WEBHOOK_HEADER_SIZE + header->url_length, body,
		    header->body_length);
	return payload;
}

/* Checks and decodes a row's payload; -1 if it is not one of ours. */
static int
webhook_decode(
    const uint8_t *payload, size_t length, struct webhook_header *header)
{
	if (length < WEBHOOK_HEADER_SIZE || payload[0] != WEBHOOK_ROW_VERSION)
		return -1;
	header->attempt = payload[1];
	header->url_length = (size_t)payload[2] << 8 | payload[3];
	header->body_length = decode_u32(payload + 4);
	header->id = store_decode_u64(payload + 8);
	header->log_id = store_decode_u64(payload + 16);
	header->created_us = store_decode_u64(payload + 24);
	if (header->url_length == 0 || header->url_length > WEBHOOK_URL_MAX ||
	    header->body_length > WEBHOOK_BODY_MAX ||
	    length !=
		WEBHOOK_HEADER_SIZE + header->url_length + header->body_length)
		return -1;
	return 0;
}

/* ---- URLs --------------------------------------------------------------- */

static void
webhook_target_free(struct webhook_target *target)
{
	free(target->request_path);
	free(target->log_path);
	target->request_path = target->log_path = NULL;
}

/* Splits an http:// or https:// URL; -1 with a reason if it cannot go. */
static int
webhook_target_parse(const char *url, size_t url_length,
    struct webhook_target *target, const char **reason)
{
	struct evhttp_uri *uri = NULL;
	const char *scheme, *host, *path, *query;
	char *text;
	size_t host_length;
	int port;

	memset(target, 0, sizeof(*target));
	*reason = "not a URL";
	if ((text = strndup(url, url_length)) == NULL)
		fatal("webhook", "out-of-memory", NULL);
	if (strlen(text) != url_length ||
	    (uri = evhttp_uri_parse(text)) == NULL)
		goto fail;
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	*reason = "only http:// and https:// URLs";
	if (scheme == NULL || (strcasecmp(scheme, "http") != 0 &&
				  strcasecmp(scheme, "https") != 0))
		goto fail;
	*reason = "the URL has no host";
	if (host == NULL || (host_length = strlen(host)) == 0)
		goto fail;
	*reason = "user:password in the URL is not supported";
	if (evhttp_uri_get_userinfo(uri) != NULL)
		goto fail;
	target->tls = strcasecmp(scheme, "https") == 0;
	port = evhttp_uri_get_port(uri);
	*reason = "bad port";
	if (port == 0 || port > 65535)
		goto fail;
	target->port = port > 0 ? (uint16_t)port : (target->tls ? 443 : 80);
	*reason = "host name too long";
	if (host_length + 1 > sizeof(target->host))
		goto fail;
	/* evhttp keeps an IPv6 literal's brackets; connecting needs none. */
	if (host[0] == '[' && host_length > 2 && host[host_length - 1] == ']')
		snprintf(target->host, sizeof(target->host), "%.*s",
		    (int)(host_length - 2), host + 1);
	else
		snprintf(target->host, sizeof(target->host), "%s", host);
	if (port > 0)
		snprintf(target->host_header, sizeof(target->host_header),
		    "%s:%d", host, port);
	else
		snprintf(target->host_header, sizeof(target->host_header), "%s",
		    host);
	path = evhttp_uri_get_path(uri);
	if (path == NULL || path[0] == '\0')
		path = "/";
	query = evhttp_uri_get_query(uri);
	if (asprintf(&target->request_path, "%s%s%s", path,
		query != NULL ? "?" : "", query != NULL ? query : "") == -1 ||
	    (target->log_path = strdup(path)) == NULL)
		fatal("webhook", "out-of-memory", NULL);
	evhttp_uri_free(uri);
	free(text);
	return 0;
fail:
	if (uri != NULL)
		evhttp_uri_free(uri);
	free(text);
	webhook_target_free(target);
	return -1;
}

static int
is_ip_literal(const char *host)
{
	struct in6_addr address;

	return inet_pton(AF_INET, host, &address) == 1 ||
	       inet_pton(AF_INET6, host, &address) == 1;
}

/* The client TLS context: system roots, TLS 1.2 or later. */
static SSL_CTX *
webhook_tls_context(void)
{
	if (webhooks.tls != NULL)
		return webhooks.tls;
	if ((webhooks.tls = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(webhooks.tls, TLS1_2_VERSION);
	/* SSL_CERT_FILE and SSL_CERT_DIR move the roots, as for curl. */
	if (SSL_CTX_set_default_verify_paths(webhooks.tls) != 1)
		log_warnx(0, "webhook", "tls-roots-missing", NULL);
	return webhooks.tls;
}

/* ---- one attempt -------------------------------------------------------- */

static struct webhook_attempt *
webhook_find(uint64_t id)
{
	struct webhook_attempt *attempt;

	for (attempt = TAILQ_FIRST(&webhooks.attempts); attempt != NULL;
	     attempt = TAILQ_NEXT(attempt, entry))
		if (attempt->header.id == id)
			return attempt;
	return NULL;
}

/* Forgets an attempt; its connection, if any, is closed unanswered. */
static void
webhook_attempt_free(struct webhook_attempt *attempt)
{
	TAILQ_REMOVE(&webhooks.attempts, attempt, entry);
	if (attempt->state == WEBHOOK_WAITING)
		TAILQ_REMOVE(&webhooks.waiting, attempt, queue_entry);
	if (attempt->state == WEBHOOK_RUNNING ||
	    attempt->state == WEBHOOK_FINISHING)
		webhooks.running--;
	if (attempt->connection != NULL)
		evhttp_connection_free(attempt->connection);
	if (attempt->finish_event != NULL)
		event_free(attempt->finish_event);
	free(attempt->payload);
	free(attempt);
}

/* Settles an answered attempt: done, retry later, or give up. */
static void
webhook_settle(struct webhook_attempt *attempt)
{
	const struct webhook_header *header = &attempt->header;
	unsigned int next = header->attempt + 1;
	uint64_t elapsed_ms, due_us;

	elapsed_ms = (clock_monotonic_us() - attempt->started_us) / 1000;
	if (timer_cancel(attempt->net_due_us, attempt->net_timer_id) ==
	    STORE_ERROR)
		log_warnx(header->log_id, "webhook", "cancel-failed",
		    "id=%" PRIu64, header->id);
	if (attempt->status >= 200 && attempt->status < 300) {
		metrics_add(webhooks.sent, 1);
		log_info(header->log_id, "webhook", "sent",
		    "id=%" PRIu64 " status=%d attempt=%u ms=%" PRIu64,
		    header->id, attempt->status, next, elapsed_ms);
	} else if (next < WEBHOOK_ATTEMPTS) {
		metrics_add(webhooks.failed, 1);
		/* The row carries attempt `next` already (the net's). */
		due_us = clock_now_us() + retry_delays_us[next];
		if (timer_schedule(due_us, TIMER_KIND_WEBHOOK, attempt->payload,
			attempt->payload_length, NULL) != STORE_OK)
			log_warnx(header->log_id, "webhook", "store-failed",
			    "id=%" PRIu64 " attempt=%u", header->id, next + 1);
		log_info(header->log_id, "webhook", "retry",
		    "id=%" PRIu64 " status=%d error=\"%s\" attempt=%u "
		    "next_in_s=%" PRIu64,
		    header->id, attempt->status, attempt->error, next,
		    retry_delays_us[next] / 1000000);
	} else {
		metrics_add(webhooks.given_up, 1);
		log_warnx(header->log_id, "webhook", "given-up",
		    "id=%" PRIu64 " status=%d error=\"%s\" attempts=%d",
		    header->id, attempt->status, attempt->error,
		    WEBHOOK_ATTEMPTS);
	}
	webhook_attempt_free(attempt);
}

/* Next loop pass after the answer: libevent is done with the connection. */
static void
webhook_finish_event(evutil_socket_t fd, short what, void *arg)
{
	webhook_settle(arg);
	webhook_start_waiting();
}

/* Why a TLS connection failed, when OpenSSL knows. */
static void
webhook_tls_reason(struct webhook_attempt *attempt)
{
	struct bufferevent *bufferevent;
	unsigned long error;
	long verify;

	if (attempt->ssl != NULL &&
	    (verify = SSL_get_verify_result(attempt->ssl)) != X509_V_OK) {
		snprintf(attempt->error, sizeof(attempt->error),
		    "certificate: %s", X509_verify_cert_error_string(verify));
		return;
	}
	bufferevent = evhttp_connection_get_bufferevent(attempt->connection);
	if (bufferevent != NULL &&
	    (error = bufferevent_get_openssl_error(bufferevent)) != 0)
		ERR_error_string_n(
		    error, attempt->error, sizeof(attempt->error));
}

/* libevent reports a failed request here first, then to webhook_done. */
static void
webhook_error(enum evhttp_request_error error, void *arg)
{
	struct webhook_attempt *attempt = arg;

	if ((size_t)error <
		sizeof(request_error_names) / sizeof(request_error_names[0]) &&
	    request_error_names[error] != NULL)
		snprintf(attempt->error, sizeof(attempt->error), "%s",
		    request_error_names[error]);
	if (attempt->ssl != NULL)
		webhook_tls_reason(attempt);
}

/*
 * The request ended (request is NULL, or has no status, if it failed).
 * libevent still holds the connection here, so it is freed, and the store
 * written, on the next loop pass.
 */
static void
webhook_done(struct evhttp_request *request, void *arg)
{
	struct webhook_attempt *attempt = arg;
	static const struct timeval now = {0, 0};

	attempt->status =
	    request != NULL ? evhttp_request_get_response_code(request) : 0;
	if (attempt->status == 0 && attempt->error[0] == '\0') {
		snprintf(attempt->error, sizeof(attempt->error), "%s",
		    "connection-failed");
		if (attempt->ssl != NULL)
			webhook_tls_reason(attempt);
	}
	attempt->state = WEBHOOK_FINISHING;
	evtimer_add(attempt->finish_event, &now);
}

/* A plain or TLS connection to target; -1 with attempt->error set. */
static int
webhook_connect(
    struct webhook_attempt *attempt, const struct webhook_target *target)
{
	struct bufferevent *bufferevent;
	SSL_CTX *context;

	if (!target->tls) {
		attempt->connection = evhttp_connection_base_new(
		    webhooks.base, webhooks.dns, target->host, target->port);
		goto done;
	}
	if ((context = webhook_tls_context()) == NULL ||
	    (attempt->ssl = SSL_new(context)) == NULL) {
		snprintf(attempt->error, sizeof(attempt->error), "tls: %s",
		    ERR_reason_error_string(ERR_get_error()));
		return -1;
	}
	/* The certificate must name the URL's host; no IP literal in SNI. */
	SSL_set_verify(attempt->ssl, SSL_VERIFY_PEER, NULL);
	if (is_ip_literal(target->host))
		X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(attempt->ssl), target->host);
	else {
		SSL_set_tlsext_host_name(attempt->ssl, target->host);
		SSL_set1_host(attempt->ssl, target->host);
	}
	/* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns the SSL. */
	bufferevent = bufferevent_openssl_socket_new(webhooks.base, -1,
	    attempt->ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bufferevent == NULL) {
		SSL_free(attempt->ssl);
		attempt->ssl = NULL;
		snprintf(attempt->error, sizeof(attempt->error), "%s",
		    "tls: no bufferevent");
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bufferevent, 1);
	attempt->connection =
	    evhttp_connection_base_bufferevent_new(webhooks.base, webhooks.dns,
		bufferevent, target->host, target->port);
	if (attempt->connection == NULL) {
		bufferevent_free(bufferevent);
		attempt->ssl = NULL;
	}
done:
	if (attempt->connection == NULL) {
		snprintf(attempt->error, sizeof(attempt->error), "%s",
		    "no connection");
		return -1;
	}
	evhttp_connection_set_timeout(attempt->connection, WEBHOOK_TIMEOUT_S);
	evhttp_connection_set_retries(attempt->connection, 0);
	evhttp_connection_set_max_headers_size(
	    attempt->connection, WEBHOOK_RESPONSE_MAX);
	evhttp_connection_set_max_body_size(
	    attempt->connection, WEBHOOK_RESPONSE_MAX);
	return 0;
}

/* Sends the POST of a committed attempt. */
static void
webhook_send(struct webhook_attempt *attempt)
{
	static const struct timeval now = {0, 0};
	const struct webhook_header *header = &attempt->header;
	const char *url = (const char *)attempt->payload + WEBHOOK_HEADER_SIZE;
	struct evhttp_request *request = NULL;
	struct evkeyvalq *headers;
	struct webhook_target target;
	const char *reason;
	char key[40];

	attempt->state = WEBHOOK_RUNNING;
	webhooks.running++;
	attempt->started_us = clock_monotonic_us();
	attempt->finish_event =
	    evtimer_new(webhooks.base, webhook_finish_event, attempt);
	if (attempt->finish_event == NULL)
		fatal("webhook", "out-of-memory", NULL);
	if (webhook_target_parse(url, header->url_length, &target, &reason) ==
	    -1) {
		/* Only a row written by another version could get here. */
		snprintf(attempt->error, sizeof(attempt->error), "%s", reason);
		goto failed;
	}
	log_debug(header->log_id, "webhook", "posting",
	    "id=%" PRIu64 " attempt=%u host=%s port=%u path=%s tls=%d",
	    header->id, header->attempt + 1, target.host,
	    (unsigned int)target.port, target.log_path, target.tls);
	if (webhook_connect(attempt, &target) == -1)
		goto failed;
	if ((request = evhttp_request_new(webhook_done, attempt)) == NULL)
		fatal("webhook", "out-of-memory", NULL);
	evhttp_request_set_error_cb(request, webhook_error);
	headers = evhttp_request_get_output_headers(request);
	snprintf(key, sizeof(key), "nudge-%" PRIu64, header->id);
	evhttp_add_header(headers, "Host", target.host_header);
	evhttp_add_header(headers, "Content-Type", "application/json");
	evhttp_add_header(headers, "User-Agent", "nudged/" NUDGE_VERSION);
	evhttp_add_header(headers, "Idempotency-Key", key);
	evhttp_add_header(headers, "Connection", "close");
	evbuffer_add(evhttp_request_get_output_buffer(request),
	    attempt->payload + WEBHOOK_HEADER_SIZE + header->url_length,
	    header->body_length);
	/* -1 needs a bound local address, which is never set: a failure. */
	if (evhttp_make_request(attempt->connection, request, EVHTTP_REQ_POST,
		target.request_path) == -1) {
		snprintf(attempt->error, sizeof(attempt->error), "%s",
		    "request not sent");
		goto failed;
	}
	webhook_target_free(&target);
	return;
failed:
	webhook_target_free(&target);
	attempt->status = 0;
	attempt->state = WEBHOOK_FINISHING;
	evtimer_add(attempt->finish_event, &now);
}

/* Starts waiting attempts while fewer than the cap are out. */
static void
webhook_start_waiting(void)
{
	struct webhook_attempt *attempt;

	while (!webhooks.stopping && webhooks.running < WEBHOOK_MAX_IN_FLIGHT &&
	       (attempt = TAILQ_FIRST(&webhooks.waiting)) != NULL) {
		TAILQ_REMOVE(&webhooks.waiting, attempt, queue_entry);
		webhook_send(attempt);
	}
}

/*
 * The turn that wrote the attempt's safety-net row committed: the POST may
 * go. If the commit failed, nothing was promised (a timer row that fired
 * is still there and fires again), so the attempt is only forgotten.
 */
static void
webhook_committed(void *arg, enum store_result result)
{
	struct webhook_attempt *attempt = arg;

	if (result != STORE_OK || webhooks.stopping) {
		log_debug(attempt->header.log_id, "webhook", "not-started",
		    "id=%" PRIu64 " reason=%s", attempt->header.id,
		    result != STORE_OK ? "commit-failed" : "stopping");
		webhook_attempt_free(attempt);
		return;
	}
	attempt->state = WEBHOOK_WAITING;
	TAILQ_INSERT_TAIL(&webhooks.waiting, attempt, queue_entry);
	webhook_start_waiting();
}

/*
 * Writes the safety-net row for the attempt after this one, then queues
 * the POST for after the commit. payload is taken over.
 */
static int
webhook_begin(const struct webhook_header *header, uint8_t *payload,
    size_t payload_length, uint64_t now_us)
{
	struct webhook_attempt *attempt;
	unsigned int next = header->attempt + 1;

	if ((attempt = calloc(1, sizeof(*attempt))) == NULL)
		fatal("webhook", "out-of-memory", NULL);
	attempt->header = *header;
	attempt->payload = payload;
	attempt->payload_length = payload_length;
	/* If this attempt never answers (a crash), the net row retries it. */
	payload[1] = (uint8_t)next;
	attempt->net_due_us =
	    now_us + WEBHOOK_TIMEOUT_US +
	    (next < WEBHOOK_ATTEMPTS ? retry_delays_us[next] : 0);
	if (timer_schedule(attempt->net_due_us, TIMER_KIND_WEBHOOK, payload,
		payload_length, &attempt->net_timer_id) != STORE_OK) {
		log_warnx(header->log_id, "webhook", "store-failed",
		    "id=%" PRIu64 " attempt=%u", header->id, next);
		free(payload);
		free(attempt);
		return -1;
	}
	attempt->state = WEBHOOK_COMMITTING;
	TAILQ_INSERT_TAIL(&webhooks.attempts, attempt, entry);
	store_after_commit(gateway->store, webhook_committed, attempt);
	return 0;
}

/* ---- the timer row ------------------------------------------------------ */

/* A webhook row is due: a retry, or the net of an attempt that died. */
static void
webhook_fire(
    void *arg, uint64_t timer_id, const void *payload, size_t payload_length)
{
	struct webhook_attempt *running;
	struct webhook_header header;
	uint8_t *copy;
	uint64_t now_us = clock_now_us();

	if (webhook_decode(payload, payload_length, &header) == -1) {
		log_warnx(timer_id, "webhook", "row-corrupt", "length=%zu",
		    payload_length);
		return;
	}
	/*
	 * Its attempt is still out (the test clock jumped, or a server is
	 * slow): the row was just deleted, so put it back for later.
	 */
	if ((running = webhook_find(header.id)) != NULL) {
		running->net_due_us = now_us + WEBHOOK_TIMEOUT_US;
		if (timer_schedule(running->net_due_us, TIMER_KIND_WEBHOOK,
			payload, payload_length,
			&running->net_timer_id) != STORE_OK)
			log_warnx(header.log_id, "webhook", "store-failed",
			    "id=%" PRIu64, header.id);
		log_debug(header.log_id, "webhook", "still-in-flight",
		    "id=%" PRIu64 " net_due_us=%" PRIu64, header.id,
		    running->net_due_us);
		return;
	}
	if (header.attempt >= WEBHOOK_ATTEMPTS) {
		/* nudged died during the last attempt: its outcome is unknown. */
		metrics_add(webhooks.given_up, 1);
		log_warnx(header.log_id, "webhook", "given-up",
		    "id=%" PRIu64
		    " status=0 error=\"last attempt interrupted\" "
		    "attempts=%d",
		    header.id, WEBHOOK_ATTEMPTS);
		return;
	}
	if ((copy = malloc(payload_length)) == NULL)
		fatal("webhook", "out-of-memory", NULL);
	memcpy(copy, payload, payload_length);
	webhook_begin(&header, copy, payload_length, now_us);
}

/* ---- the public side ---------------------------------------------------- */

int
webhook_post(const char *url, const char *body, size_t length, uint64_t log_id)
{
	struct webhook_header header;
	struct webhook_target target;
	const char *reason;
	uint8_t *payload;
	size_t url_length, payload_length;
	uint64_t now_us = clock_now_us();

	url_length = url != NULL ? strlen(url) : 0;
	if (url_length == 0 || url_length > WEBHOOK_URL_MAX ||
	    webhook_target_parse(url, url_length, &target, &reason) == -1) {
		metrics_add(webhooks.given_up, 1);
		log_warnx(log_id, "webhook", "bad-url", "reason=\"%s\"",
		    url_length > WEBHOOK_URL_MAX ? "URL too long"
		    : url_length == 0            ? "no URL"
						 : reason);
		return -1;
	}
	if (length > WEBHOOK_BODY_MAX) {
		metrics_add(webhooks.given_up, 1);
		log_warnx(log_id, "webhook", "too-large",
		    "host=%s bytes=%zu max=%d", target.host, length,
		    WEBHOOK_BODY_MAX);
		webhook_target_free(&target);
		return -1;
	}
	memset(&header, 0, sizeof(header));
	/* Timer ids are never reused, so one serves as the webhook's id. */
	if ((header.id = store_sequence_next(
		 gateway->store, STORE_SEQUENCE_TIMER)) == 0) {
		webhook_target_free(&target);
		return -1;
	}
	header.url_length = url_length;
	header.body_length = length;
	header.log_id = log_id;
	header.created_us = now_us;
	payload = webhook_encode(&header, url, body, &payload_length);
	log_info(log_id, "webhook", "queued",
	    "id=%" PRIu64 " host=%s path=%s tls=%d bytes=%zu", header.id,
	    target.host, target.log_path, target.tls, length);
	webhook_target_free(&target);
	return webhook_begin(&header, payload, payload_length, now_us);
}

int
webhook_post_json(const char *url, const struct json_t *value, uint64_t log_id)
{
	char *body;
	int result;

	if ((body = json_dumps(value, JSON_COMPACT)) == NULL) {
		log_warnx(log_id, "webhook", "encode-failed", NULL);
		return -1;
	}
	result = webhook_post(url, body, strlen(body), log_id);
	free(body);
	return result;
}

/* Shutdown: start nothing new; queued attempts keep their rows. */
static void
webhook_shutdown_begin(void *arg)
{
	struct webhook_attempt *attempt, *next;
	uint64_t bound = gateway->config->shutdown_timeout_us;

	webhooks.stopping = 1;
	webhooks.abort_at_us =
	    clock_monotonic_us() + (bound > 2 * WEBHOOK_SHUTDOWN_MARGIN_US
					   ? bound - WEBHOOK_SHUTDOWN_MARGIN_US
					   : bound / 2);
	for (attempt = TAILQ_FIRST(&webhooks.attempts); attempt != NULL;
	     attempt = next) {
		next = TAILQ_NEXT(attempt, entry);
		if (attempt->state == WEBHOOK_WAITING)
			webhook_attempt_free(attempt);
	}
}

/*
 * Done when no POST is out. Just before the daemon's bound, the ones still
 * out are dropped: their net rows send them again after the restart.
 */
static int
webhook_shutdown_done(void *arg)
{
	struct webhook_attempt *attempt, *next;
	size_t dropped = 0;

	if (webhooks.running > 0 && clock_monotonic_us() < webhooks.abort_at_us)
		return 0;
	for (attempt = TAILQ_FIRST(&webhooks.attempts); attempt != NULL;
	     attempt = next) {
		next = TAILQ_NEXT(attempt, entry);
		if (attempt->state == WEBHOOK_RUNNING ||
		    attempt->state == WEBHOOK_FINISHING) {
			webhook_attempt_free(attempt);
			dropped++;
		}
	}
	if (dropped > 0)
		log_info(
		    0, "webhook", "left-for-restart", "in_flight=%zu", dropped);
	if (!webhooks.released) {
		webhooks.released = 1;
		if (webhooks.dns != NULL)
			evdns_base_free(webhooks.dns, 0);
		webhooks.dns = NULL;
		if (webhooks.tls != NULL)
			SSL_CTX_free(webhooks.tls);
		webhooks.tls = NULL;
	}
	return 1;
}

void
webhook_init(struct event_base *base)
{
	webhooks.base = base;
	TAILQ_INIT(&webhooks.attempts);
	TAILQ_INIT(&webhooks.waiting);
	webhooks.running = 0;
	webhooks.stopping = webhooks.released = 0;
	webhooks.dns =
	    evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
				     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (webhooks.dns == NULL)
		log_warnx(0, "webhook", "dns-unavailable",
		    "reason=\"no resolver configuration; names resolve "
		    "blocking\"");
	webhooks.sent = metrics_counter("nudge_webhooks_sent_total", NULL,
	    "Webhook POSTs answered with 2xx.");
	webhooks.failed = metrics_counter("nudge_webhooks_failed_total", NULL,
	    "Webhook attempts that failed and were retried.");
	webhooks.given_up = metrics_counter("nudge_webhooks_given_up_total",
	    NULL, "Webhooks abandoned after every attempt failed, or refused.");
	timer_register(TIMER_KIND_WEBHOOK, webhook_fire, NULL);
	daemon_on_shutdown(webhook_shutdown_begin, webhook_shutdown_done, NULL);
}
