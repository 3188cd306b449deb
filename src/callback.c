/*
 * callback.c - delivery status callbacks. A message that names a
 * callback_url gets its final state POSTed there as JSON. Each attempt is a
 * durable timer row (message id + attempt number), so a pending callback
 * survives a crash; a failed POST is retried with back-off (1 s, 5 s, 30 s,
 * 2 min, 10 min), then given up and logged. Plain http:// only.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "nudged.h"

#define CALLBACK_ATTEMPTS	6
#define CALLBACK_TIMEOUT_S	10
#define CALLBACK_URL_MAX	1025

/* One POST in flight. */
struct callback_attempt {
	struct evhttp_connection *connection;
	uint64_t		 id;
	unsigned int		 attempt;
};

static struct event_base *callback_base;
static struct metric *metric_sent, *metric_failed, *metric_given_up;
static const uint64_t retry_delays_us[CALLBACK_ATTEMPTS] = {
	0, 1000000, 5000000, 30000000, 120000000, 600000000,
};

static void
callback_schedule(uint64_t id, unsigned int attempt, uint64_t due_us)
{
	uint8_t payload[9];

	outbox_key(id, attempt, payload);
	timer_schedule(due_us, TIMER_KIND_CALLBACK, payload, sizeof(payload),
	    NULL);
}

void
callback_message_final(uint64_t id)
{
	callback_schedule(id, 0, clock_now_us());
}

/* The POST finished: 2xx is done, anything else tries again later. */
static void
callback_done(struct evhttp_request *request, void *arg)
{
	struct callback_attempt *attempt = arg;
	int status = request != NULL ? evhttp_request_get_response_code(request) :
	    0;

	if (status >= 200 && status < 300) {
		metrics_add(metric_sent, 1);
		log_info(attempt->id, "callback", "sent", "status=%d attempt=%u",
		    status, attempt->attempt + 1);
	} else if (attempt->attempt + 1 < CALLBACK_ATTEMPTS) {
		metrics_add(metric_failed, 1);
		log_info(attempt->id, "callback", "retry", "status=%d "
		    "attempt=%u next_in_s=%llu", status, attempt->attempt + 1,
		    (unsigned long long)(retry_delays_us[attempt->attempt + 1] /
		    1000000));
		callback_schedule(attempt->id, attempt->attempt + 1,
		    clock_now_us() + retry_delays_us[attempt->attempt + 1]);
	} else {
		metrics_add(metric_given_up, 1);
		log_warnx(attempt->id, "callback", "given-up", "status=%d "
		    "attempts=%d", status, CALLBACK_ATTEMPTS);
	}
	/* The connection is freed by libevent after this callback returns. */
	evhttp_connection_free_on_completion(attempt->connection);
	free(attempt);
}

/* Builds the JSON a callback carries. */
static char *
callback_body(uint64_t id, const struct outbox_message_record *message)
{
	char id_text[24];
	json_t *body;
	char *text;

	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);
	body = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}", "id", id_text,
	    "state", outbox_strstate((enum outbox_state)message->state), "to",
	    message->to, "parts", (int)message->part_count, "created_us",
	    (json_int_t)message->created_us, "updated_us",
	    (json_int_t)message->updated_us);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return text;
}

/* A callback timer row is due: POST the message's state. */
static void
callback_fire(void *arg, uint64_t timer_id, const void *payload,
    size_t payload_length)
{
	struct outbox_message_record message;
	struct callback_attempt *attempt;
	struct evhttp_request *request;
	struct evhttp_uri *uri = NULL;
	const uint8_t *bytes = payload;
	char *url = NULL, *body = NULL;
	const char *host, *path;
	uint64_t id;
	int port;

	if (payload_length != 9)
		return;
	id = store_decode_u64(bytes);
	if ((url = malloc(CALLBACK_URL_MAX)) == NULL)
		fatal("callback", "out-of-memory", NULL);
	if (outbox_read_message(id, &message, NULL, 0) != STORE_OK ||
	    outbox_read_callback_url(id, url, CALLBACK_URL_MAX) != STORE_OK)
		goto done;
	if ((uri = evhttp_uri_parse(url)) == NULL ||
	    (host = evhttp_uri_get_host(uri)) == NULL ||
	    evhttp_uri_get_scheme(uri) == NULL ||
	    strcmp(evhttp_uri_get_scheme(uri), "http") != 0) {
		log_warnx(id, "callback", "bad-url", "reason=\"only http:// "
		    "URLs with a host are supported\"");
		goto done;
	}
	port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : 80;
	path = evhttp_uri_get_path(uri) != NULL &&
	    evhttp_uri_get_path(uri)[0] != '\0' ? evhttp_uri_get_path(uri) : "/";
	if ((body = callback_body(id, &message)) == NULL ||
	    (attempt = calloc(1, sizeof(*attempt))) == NULL)
		goto done;
	attempt->id = id;
	attempt->attempt = bytes[8];
	attempt->connection = evhttp_connection_base_new(callback_base, NULL,
	    host, (unsigned short)port);
	if (attempt->connection == NULL) {
		free(attempt);
		goto done;
	}
	evhttp_connection_set_timeout(attempt->connection, CALLBACK_TIMEOUT_S);
	request = evhttp_request_new(callback_done, attempt);
	evhttp_add_header(evhttp_request_get_output_headers(request), "Host",
	    host);
	evhttp_add_header(evhttp_request_get_output_headers(request),
	    "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(request), body,
	    strlen(body));
	if (evhttp_make_request(attempt->connection, request, EVHTTP_REQ_POST,
	    path) == -1) {
		evhttp_connection_free(attempt->connection);
		free(attempt);
	}
done:
	free(body);
	free(url);
	if (uri != NULL)
		evhttp_uri_free(uri);
}

void
callback_init(struct event_base *base)
{
	callback_base = base;
	metric_sent = metrics_counter("nudge_callbacks_sent_total", NULL,
	    "Status callbacks answered with 2xx.");
	metric_failed = metrics_counter("nudge_callbacks_failed_total", NULL,
	    "Status callback attempts that failed and were retried.");
	metric_given_up = metrics_counter("nudge_callbacks_given_up_total",
	    NULL, "Status callbacks abandoned after every attempt failed.");
	timer_register(TIMER_KIND_CALLBACK, callback_fire, NULL);
}
