/*
 * optout.c - the opt-out list: numbers that must get no marketing SMS from
 * any producer (flows, the HTTP API, relayed ESME traffic). One lookup
 * function, so the list can later live in a replicated store without its
 * callers changing. PUT/GET/DELETE /v1/optout/{number} manage it; the
 * compliance work adds keywords (STOP), consent history and imports.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "nudged.h"

#define OPTOUT_KEY_MAX 24

static struct metric *metric_refused_lookups;

/* The store key of a number: its digits, without "+"; 0 if not a number. */
static size_t
optout_key(const char *number, char *key)
{
	size_t length, i;
	const char *p = phone_digits(number, &length);

	if (length < 1 || length >= OPTOUT_KEY_MAX)
		return 0;
	for (i = 0; i < length; i++)
		if (!isdigit((unsigned char)p[i]))
			return 0;
	memcpy(key, p, length + 1);
	return length;
}

int
optout_is_opted_out(const char *number)
{
	char key[OPTOUT_KEY_MAX];
	const void *value;
	size_t key_length, value_length;
	enum store_result result;

	if ((key_length = optout_key(number, key)) == 0)
		return 0;
	result = store_get(gateway->store, STORE_DB_OPTOUT, key, key_length,
	    &value, &value_length);
	if (result == STORE_ERROR) {
		/* Unsure is not "yes, send": a store error refuses marketing. */
		metrics_add(metric_refused_lookups, 1);
		return 1;
	}
	return result == STORE_OK;
}

enum store_result
optout_set(const char *number, const char *source)
{
	struct optout_record record;
	char key[OPTOUT_KEY_MAX];
	size_t key_length;

	if ((key_length = optout_key(number, key)) == 0)
		return STORE_ERROR;
	memset(&record, 0, sizeof(record));
	record.version = 1;
	record.time_us = clock_now_us();
	snprintf(record.source, sizeof(record.source), "%s", source);
	return store_put(gateway->store, STORE_DB_OPTOUT, key, key_length,
	    &record, sizeof(record), 0);
}

enum store_result
optout_clear(const char *number)
{
	char key[OPTOUT_KEY_MAX];
	size_t key_length;

	if ((key_length = optout_key(number, key)) == 0)
		return STORE_ERROR;
	return store_delete(gateway->store, STORE_DB_OPTOUT, key, key_length);
}

/* The reply waits for the commit that makes the change true. */
static void
optout_committed(void *arg, enum store_result result)
{
	struct evhttp_request *request = arg;

	if (result == STORE_OK)
		evhttp_send_reply(request, 204, "No Content", NULL);
	else
		http_reply_error(request, 503, "store_unavailable",
		    "the change could not be stored");
}

/* PUT, GET and DELETE /v1/optout/{number}. */
static void
optout_handle(struct evhttp_request *request, void *arg)
{
	char path[128], key[OPTOUT_KEY_MAX], masked[LOG_MASKED_NUMBER_SIZE];
	struct optout_record record;
	const char *number;
	const void *value;
	size_t value_length;
	enum store_result result;

	http_request_path(request, path, sizeof(path));
	number = path + strlen("/v1/optout/");
	if (optout_key(number, key) == 0) {
		http_reply_error(request, 400, "invalid_field",
		    "number: digits, optionally after '+'");
		return;
	}
	switch (evhttp_request_get_command(request)) {
	case EVHTTP_REQ_GET:
		result = store_get(gateway->store, STORE_DB_OPTOUT, key,
		    strlen(key), &value, &value_length);
		if (result == STORE_NOT_FOUND) {
			http_reply_json(request, 200,
			    json_pack("{s:s, s:b}", "number", number,
				"opted_out", 0));
			return;
		}
		if (result != STORE_OK || value_length != sizeof(record)) {
			http_reply_error(request, 503, "store_unavailable",
			    "the list could not be read");
			return;
		}
		memcpy(&record, value, sizeof(record));
		http_reply_json(request, 200,
		    json_pack("{s:s, s:b, s:s, s:I}", "number", number,
			"opted_out", 1, "source", record.source, "since_us",
			(json_int_t)record.time_us));
		return;
	case EVHTTP_REQ_PUT:
		result = optout_set(number, "api");
		break;
	default:
		result = optout_clear(number);
		if (result == STORE_NOT_FOUND)
			result = STORE_OK;
		break;
	}
	if (result != STORE_OK) {
		http_reply_error(request, 503, "store_unavailable",
		    "the change could not be stored");
		return;
	}
	log_info(0, "optout",
	    evhttp_request_get_command(request) == EVHTTP_REQ_PUT ? "added"
								  : "removed",
	    "number=%s source=api",
	    log_mask_number(number, masked, sizeof(masked)));
	store_after_commit(gateway->store, optout_committed, request);
}

void
optout_init(void)
{
	metric_refused_lookups =
	    metrics_counter("nudge_optout_lookup_errors_total", NULL,
		"Opt-out lookups that failed and so refused marketing.");
	http_route("GET", "/v1/optout/", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH,
	    optout_handle, NULL);
	http_route("PUT", "/v1/optout/", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH,
	    optout_handle, NULL);
	http_route("DELETE", "/v1/optout/", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH,
	    optout_handle, NULL);
}
