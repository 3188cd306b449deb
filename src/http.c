/*
 * http.c - the HTTP API on evhttp: a route table {method, path, flags,
 * handler}, bearer-token authentication for the /v1/ routes, JSON bodies in and out,
 * and JSON errors {"error": ..., "detail": ...} for every refusal.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "nudged.h"

struct http_route_entry {
	enum evhttp_cmd_type method;
	char *path;
	size_t path_length;
	int flags;
	http_handler_fn fn;
	void *arg;
};

static struct evhttp *http_server;
static struct evhttp_bound_socket *http_listener;
static struct http_route_entry *http_routes;
static size_t http_route_count;
static char *http_token;
static size_t http_max_body;
static struct metric *http_requests_metric;
static struct metric *http_refused_metric;

static const struct {
	const char *name;
	enum evhttp_cmd_type method;
} http_methods[] = {
    {"GET", EVHTTP_REQ_GET},
    {"POST", EVHTTP_REQ_POST},
    {"PUT", EVHTTP_REQ_PUT},
    {"DELETE", EVHTTP_REQ_DELETE},
    {"PATCH", EVHTTP_REQ_PATCH},
    {"HEAD", EVHTTP_REQ_HEAD},
};

void
http_route(const char *method, const char *path, int flags, http_handler_fn fn,
    void *arg)
{
	struct http_route_entry *route;
	size_t i;

	http_routes = reallocarray(
	    http_routes, http_route_count + 1, sizeof(*http_routes));
	if (http_routes == NULL)
		fatal("http", "out-of-memory", NULL);
	route = &http_routes[http_route_count];
	memset(route, 0, sizeof(*route));
	for (i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
		if (strcmp(http_methods[i].name, method) == 0)
			route->method = http_methods[i].method;
	if (route->method == 0)
		fatalx("http", "bad-route", "method=%s", method);
	if ((route->path = strdup(path)) == NULL)
		fatal("http", "out-of-memory", NULL);
	route->path_length = strlen(path);
	route->flags = flags;
	route->fn = fn;
	route->arg = arg;
	http_route_count++;
}

void
http_set_token(const char *token)
{
	free(http_token);
	if ((http_token = strdup(token != NULL ? token : "")) == NULL)
		fatal("http", "out-of-memory", NULL);
}

void
http_reply_json(struct evhttp_request *request, int status, json_t *body)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(request);
	char *text;

	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL) {
		evhttp_send_error(request, 500, "JSON encoding failed");
		return;
	}
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(request),
	    "Content-Type", "application/json");
	evhttp_send_reply(request, status, NULL, NULL);
}

void
http_reply_error(struct evhttp_request *request, int status, const char *error,
    const char *detail_fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, detail_fmt);
	vsnprintf(detail, sizeof(detail), detail_fmt, ap);
	va_end(ap);
	metrics_add(http_refused_metric, 1);
	http_reply_json(request, status,
	    json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

const char *
http_request_path(struct evhttp_request *request, char *buffer, size_t size)
{
	const char *uri = evhttp_request_get_uri(request);
	size_t length = strcspn(uri, "?#");

	if (length >= size)
		length = size - 1;
	memcpy(buffer, uri, length);
	buffer[length] = '\0';
	return buffer;
}

json_t *
http_read_json(struct evhttp_request *request)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(request);
	size_t length = evbuffer_get_length(in);
	json_error_t error;
	json_t *body;
	char *text;

	if (length == 0) {
		http_reply_error(
		    request, 400, "empty_body", "a JSON object is required");
		return NULL;
	}
	if (length > http_max_body) {
		http_reply_error(request, 413, "body_too_large",
		    "body is %zu bytes, the limit is %zu", length,
		    http_max_body);
		return NULL;
	}
	text = (char *)evbuffer_pullup(in, -1);
	body = json_loadb(text, length, JSON_REJECT_DUPLICATES, &error);
	if (body == NULL) {
		http_reply_error(request, 400, "invalid_json",
		    "line %d column %d: %s", error.line, error.column,
		    error.text);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		http_reply_error(request, 400, "invalid_json",
		    "the body must be a JSON object");
		return NULL;
	}
	return body;
}

/* Compares without an early exit, so timing does not reveal the token. */
static int
http_token_matches(const char *given, size_t given_length)
{
	size_t expected_length = strlen(http_token), i;
	unsigned char difference = given_length != expected_length;

	for (i = 0; i < given_length; i++)
		difference |=
		    (unsigned char)given[i] ^
		    (unsigned char)http_token[i % (expected_length + 1)];
	return difference == 0;
}

static int
http_peer_is_loopback(struct evhttp_request *request)
{
	struct evhttp_connection *connection;
	char *address;
	uint16_t port;

	connection = evhttp_request_get_connection(request);
	if (connection == NULL)
		return 0;
	evhttp_connection_get_peer(connection, &address, &port);
	return strncmp(address, "127.", 4) == 0 || strcmp(address, "::1") == 0;
}

/* Empty token: loopback only (config refuses an empty token elsewhere). */
static int
http_authorized(struct evhttp_request *request)
{
	const char *header;

	if (http_token[0] == '\0')
		return http_peer_is_loopback(request);
	header = evhttp_find_header(
	    evhttp_request_get_input_headers(request), "Authorization");
	if (header == NULL || strncmp(header, "Bearer ", 7) != 0)
		return 0;
	return http_token_matches(header + 7, strlen(header + 7));
}

/* Looks the request up in the route table: exact paths, then prefixes. */
static void
http_dispatch(struct evhttp_request *request, void *arg)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(request);
	struct http_route_entry *route, *found = NULL;
	char path[1024];
	int path_known = 0;
	size_t i;

	metrics_add(http_requests_metric, 1);
	http_request_path(request, path, sizeof(path));
	for (i = 0; i < http_route_count && found == NULL; i++) {
		route = &http_routes[i];
		if (route->flags & HTTP_ROUTE_PREFIX) {
			if (strncmp(path, route->path, route->path_length) != 0)
				continue;
		} else if (strcmp(path, route->path) != 0)
			continue;
		path_known = 1;
		if (route->method == method)
			found = route;
	}
	if (found == NULL) {
		if (path_known)
			http_reply_error(request, 405, "method_not_allowed",
			    "%s does not take this method", path);
		else
			http_reply_error(request, 404, "not_found",
			    "no such resource: %s", path);
		return;
	}
	if ((found->flags & HTTP_ROUTE_AUTH) && !http_authorized(request)) {
		evhttp_add_header(evhttp_request_get_output_headers(request),
		    "WWW-Authenticate", "Bearer");
		http_reply_error(request, 401, "unauthorized",
		    "a valid 'Authorization: Bearer' token is required");
		return;
	}
	found->fn(request, found->arg);
}

int
http_start(struct event_base *base, const struct config *config)
{
	struct evhttp_bound_socket *bound;

	http_set_token(config->http_api_token);
	http_max_body = config->http_max_body_size;
	http_requests_metric = metrics_counter(
	    "nudge_http_requests_total", NULL, "HTTP requests received.");
	http_refused_metric = metrics_counter("nudge_http_errors_total", NULL,
	    "HTTP requests answered with an error.");
	if ((http_server = evhttp_new(base)) == NULL)
		return -1;
	evhttp_set_allowed_methods(http_server,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
		EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD);
	/* evhttp refuses larger bodies itself; ours gets the JSON error. */
	evhttp_set_max_body_size(http_server, (ev_ssize_t)http_max_body * 2);
	evhttp_set_timeout(
	    http_server, (int)(config->http_timeout_us / 1000000));
	evhttp_set_gencb(http_server, http_dispatch, NULL);
	bound = evhttp_bind_socket_with_handle(
	    http_server, config->http_listen.host, config->http_listen.port);
	if (bound == NULL) {
		log_warn(0, "http", "listen-failed", "address=%s:%u",
		    config->http_listen.host, config->http_listen.port);
		evhttp_free(http_server);
		http_server = NULL;
		return -1;
	}
	http_listener = bound;
	log_info(0, "http", "listening", "address=%s:%u",
	    config->http_listen.host, config->http_listen.port);
	return 0;
}

void
http_stop_listening(void)
{
	if (http_server != NULL && http_listener != NULL)
		evhttp_del_accept_socket(http_server, http_listener);
	http_listener = NULL;
}

void
http_stop(void)
{
	size_t i;

	if (http_server != NULL)
		evhttp_free(http_server);
	http_server = NULL;
	http_listener = NULL;
	for (i = 0; i < http_route_count; i++)
		free(http_routes[i].path);
	free(http_routes);
	http_routes = NULL;
	http_route_count = 0;
	free(http_token);
	http_token = NULL;
}
