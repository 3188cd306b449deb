/*
 * api_event.c - shop events in, profiles in and out. POST /v1/events takes
 * {metric, profile:{phone_number, external_id, ...}, properties, time,
 * unique_id} (or {"events": [...]}, up to 1000): the profile is created or
 * updated, Placed Order counts as an order, the event is stored and handed
 * to the flow engine, and the 202 (with the journeys it started) leaves only
 * after the commit. A unique_id seen before is answered again without
 * doing anything twice. GET/PUT /v1/profiles/{number} read and update a
 * profile.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <jansson.h>

#include "nudged.h"

#define API_EVENT_BATCH_MAX     1000
#define API_EVENT_METRIC_MAX    64
#define API_EVENT_UNIQUE_ID_MAX 128

/* A 202 waiting for the commit that makes it true. */
struct api_event_reply {
	struct evhttp_request *request;
	json_t *body;
	int status; /* 202 for events, 200 for PUT */
};

static const struct config *api_event_config;
static api_event_handler_fn event_handler;
static void *event_handler_arg;
static struct metric *metric_accepted, *metric_duplicates, *metric_refused;

void
api_event_set_handler(api_event_handler_fn fn, void *arg)
{
	event_handler = fn;
	event_handler_arg = arg;
}

static void
api_event_committed(void *arg, enum store_result result)
{
	struct api_event_reply *reply = arg;

	if (result == STORE_OK)
		http_reply_json(reply->request, reply->status, reply->body);
	else {
		json_decref(reply->body);
		http_reply_error(reply->request, 503, "store_unavailable",
		    "the event could not be stored; nothing was accepted");
	}
	free(reply);
}

/* Answers after the commit of this turn (see api_event_committed). */
static void
api_event_reply_after_commit(
    struct evhttp_request *request, int status, json_t *body)
{
	struct api_event_reply *reply;

	if ((reply = malloc(sizeof(*reply))) == NULL)
		fatal("api", "out-of-memory", NULL);
	reply->request = request;
	reply->body = body;
	reply->status = status;
	/* Why: a 202 is a promise; it waits for the commit that keeps it. */
	store_after_commit(gateway->store, api_event_committed, reply);
}

/* "2026-11-23T10:00:00Z" / "...+01:00" / epoch seconds -> microseconds. */
static int
api_event_parse_time(json_t *value, uint64_t *time_us)
{
	struct tm tm;
	const char *text, *rest;
	int offset_hours, offset_minutes, sign;
	time_t seconds;

	if (value == NULL || json_is_null(value)) {
		*time_us = clock_now_us();
		return 0;
	}
	if (json_is_number(value)) {
		if (json_number_value(value) < 0 ||
		    json_number_value(value) > 4102444800.0)
			return -1;
		*time_us = (uint64_t)(json_number_value(value) * 1e6);
		return 0;
	}
	if ((text = json_string_value(value)) == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if ((rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*rest == '.')
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			;
	seconds = timegm(&tm);
	if (*rest == 'Z' && rest[1] == '\0') {
		*time_us = (uint64_t)seconds * 1000000;
		return 0;
	}
	if ((*rest == '+' || *rest == '-') &&
	    sscanf(rest + 1, "%2d:%2d", &offset_hours, &offset_minutes) == 2 &&
	    strlen(rest) == 6) {
		sign = *rest == '+' ? 1 : -1;
		seconds -= sign * (offset_hours * 3600 + offset_minutes * 60);
		*time_us = (uint64_t)seconds * 1000000;
		return 0;
	}
	return -1;
}

/* The order value of a Placed Order: $value, value or OrderValue. */
static double
api_event_order_value(json_t *properties)
{
	static const char *const names[] = {"$value", "value", "OrderValue"};
	json_t *value;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		value = json_object_get(properties, names[i]);
		if (json_is_number(value))
			return json_number_value(value);
	}
	return 0;
}

/* A refusal for one event: {"error": "invalid_field", "field", "detail"}. */
static json_t *
api_event_refusal(const char *field, const char *reason)
{
	metrics_add(metric_refused, 1);
	return json_pack("{s:s, s:s, s:s++}", "error", "invalid_field", "field",
	    field, "detail", field, ": ", reason);
}

/* Resolves the event's subscriber: phone_number, else a known external_id. */
static int
api_event_number(json_t *profile_object, char *number, size_t size,
    const char **field, char *reason, size_t reason_size)
{
	const char *phone =
	    json_string_value(json_object_get(profile_object, "phone_number"));
	const char *external =
	    json_string_value(json_object_get(profile_object, "external_id"));
	const char *error;

	*field = "profile.phone_number";
	if (phone != NULL) {
		if (phone_normalize(phone, api_event_config->default_country,
			number, size, &error) == -1) {
			snprintf(reason, reason_size, "%s", error);
			return -1;
		}
		return 0;
	}
	if (external != NULL &&
	    profile_find_external(external, number, size) == STORE_OK)
		return 0;
	snprintf(reason, reason_size,
	    "required (or an external_id of a known "
	    "profile)");
	return -1;
}

/* Stores one event and runs it through the flows; returns its result. */
static json_t *
api_event_accept_one(json_t *event, int *accepted)
{
	struct profile profile;
	json_t *value, *properties, *profile_object, *journeys, *stored;
	const char *metric, *unique_id = NULL, *field;
	char number[PROFILE_NUMBER_SIZE], reason[256], id_text[24];
	uint8_t key[8];
	const void *found;
	size_t found_length;
	uint64_t time_us, event_id;
	char *text;

	*accepted = 0;
	if (!json_is_object(event))
		return api_event_refusal("events", "each event is an object");
	metric = json_string_value(json_object_get(event, "metric"));
	if (metric == NULL || metric[0] == '\0' ||
	    strlen(metric) > API_EVENT_METRIC_MAX)
		return api_event_refusal("metric", "a non-empty string of at "
						   "most 64 characters");
	properties = json_object_get(event, "properties");
	if (properties != NULL && !json_is_null(properties) &&
	    !json_is_object(properties))
		return api_event_refusal("properties", "must be an object");
	if (api_event_parse_time(json_object_get(event, "time"), &time_us) ==
	    -1)
		return api_event_refusal("time",
		    "ISO 8601 with a zone "
		    "(2026-11-23T10:00:00Z) or epoch seconds");
	value = json_object_get(event, "unique_id");
	if (value != NULL && !json_is_null(value)) {
		unique_id = json_string_value(value);
		if (unique_id == NULL || unique_id[0] == '\0' ||
		    strlen(unique_id) > API_EVENT_UNIQUE_ID_MAX)
			return api_event_refusal("unique_id",
			    "a non-empty "
			    "string of at most 128 characters");
		if (store_get(gateway->store, STORE_DB_EVENT_IDS, unique_id,
			strlen(unique_id), &found, &found_length) == STORE_OK &&
		    found_length == 8) {
			/* Seen before: same answer, nothing done twice. */
			metrics_add(metric_duplicates, 1);
			*accepted = 1;
			snprintf(id_text, sizeof(id_text), "%llu",
			    (unsigned long long)store_decode_u64(found));
			return json_pack("{s:s, s:b, s:[]}", "id", id_text,
			    "duplicate", 1, "journeys");
		}
	}
	profile_object = json_object_get(event, "profile");
	if (!json_is_object(profile_object))
		return api_event_refusal("profile", "required, an object with "
						    "phone_number");
	if (api_event_number(profile_object, number, sizeof(number), &field,
		reason, sizeof(reason)) == -1)
		return api_event_refusal(field, reason);
	if (profile_load(number, &profile) != STORE_OK)
		return json_pack("{s:s, s:s}", "error", "store_unavailable",
		    "detail", "the profile could not be read");
	if (profile_merge(&profile, profile_object, &field, reason,
		sizeof(reason)) == -1) {
		profile_release(&profile);
		return api_event_refusal(field, reason);
	}
	if (strcmp(metric, "Placed Order") == 0)
		profile_record_order(
		    &profile, api_event_order_value(properties), time_us);
	if (profile_save(&profile) != STORE_OK ||
	    (event_id = store_sequence_next(
		 gateway->store, STORE_SEQUENCE_EVENT)) == 0) {
		profile_release(&profile);
		return json_pack("{s:s, s:s}", "error", "store_unavailable",
		    "detail", "the event could not be stored");
	}
	stored = json_pack("{s:s, s:s, s:O, s:I}", "metric", metric, "number",
	    number, "properties", properties != NULL ? properties : json_null(),
	    "time_us", (json_int_t)time_us);
	text = json_dumps(stored, JSON_COMPACT);
	json_decref(stored);
	store_encode_u64(key, event_id);
	if (text == NULL ||
	    store_put(gateway->store, STORE_DB_EVENTS, key, sizeof(key), text,
		strlen(text), STORE_PUT_APPEND) != STORE_OK ||
	    (unique_id != NULL &&
		store_put(gateway->store, STORE_DB_EVENT_IDS, unique_id,
		    strlen(unique_id), key, sizeof(key), 0) != STORE_OK)) {
		free(text);
		profile_release(&profile);
		return json_pack("{s:s, s:s}", "error", "store_unavailable",
		    "detail", "the event could not be stored");
	}
	free(text);
	journeys = json_array();
	if (event_handler != NULL)
		event_handler(event_handler_arg, event_id, metric, &profile,
		    properties, time_us, journeys);
	profile_release(&profile);
	metrics_add(metric_accepted, 1);
	*accepted = 1;
	snprintf(
	    id_text, sizeof(id_text), "%llu", (unsigned long long)event_id);
	return json_pack("{s:s, s:o}", "id", id_text, "journeys", journeys);
}

static void
api_event_post(struct evhttp_request *request, void *arg)
{
	json_t *body, *list, *results, *result, *event;
	size_t index;
	int accepted, accepted_count = 0;

	if ((body = http_read_json(request)) == NULL)
		return;
	list = json_object_get(body, "events");
	if (list == NULL) {
		result = api_event_accept_one(body, &accepted);
		json_decref(body);
		if (!accepted) {
			http_reply_json(request,
			    json_object_get(result, "field") != NULL ? 400
								     : 503,
			    result);
			return;
		}
		api_event_reply_after_commit(request, 202, result);
		return;
	}
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > API_EVENT_BATCH_MAX) {
		json_decref(body);
		http_reply_error(request, 400, "invalid_field",
		    "events: an array of 1 to %d events", API_EVENT_BATCH_MAX);
		return;
	}
	results = json_array();
	json_array_foreach(list, index, event)
	{
		json_array_append_new(
		    results, api_event_accept_one(event, &accepted));
		accepted_count += accepted;
	}
	json_decref(body);
	api_event_reply_after_commit(request, 202,
	    json_pack("{s:i, s:i, s:o}", "accepted", accepted_count, "refused",
		(int)json_array_size(results) - accepted_count, "results",
		results));
}

/* GET and PUT /v1/profiles/{number}. */
static void
api_event_profile(struct evhttp_request *request, void *arg)
{
	struct profile profile;
	json_t *body;
	const char *error, *field;
	char path[160], number[PROFILE_NUMBER_SIZE], reason[256];
	char *decoded;

	http_request_path(request, path, sizeof(path));
	/* The /consent sub-resource belongs to consent.c. */
	if (consent_http_profile(request, path))
		return;
	decoded = evhttp_uridecode(path + strlen("/v1/profiles/"), 0, NULL);
	if (decoded == NULL ||
	    phone_normalize(decoded, api_event_config->default_country, number,
		sizeof(number), &error) == -1) {
		free(decoded);
		http_reply_error(request, 400, "invalid_field", "number: %s",
		    decoded == NULL ? "not decodable" : error);
		return;
	}
	free(decoded);
	if (profile_load(number, &profile) != STORE_OK) {
		http_reply_error(request, 503, "store_unavailable",
		    "the profile could not be read");
		return;
	}
	if (evhttp_request_get_command(request) == EVHTTP_REQ_GET) {
		if (!profile.exists) {
			profile_release(&profile);
			http_reply_error(request, 404, "not_found",
			    "no profile for that number");
			return;
		}
		http_reply_json(request, 200, profile_to_json(&profile));
		profile_release(&profile);
		return;
	}
	if ((body = http_read_json(request)) == NULL) {
		profile_release(&profile);
		return;
	}
	if (profile_merge(&profile, body, &field, reason, sizeof(reason)) ==
	    -1) {
		json_decref(body);
		profile_release(&profile);
		http_reply_error(
		    request, 400, "invalid_field", "%s: %s", field, reason);
		return;
	}
	json_decref(body);
	if (profile_save(&profile) != STORE_OK) {
		profile_release(&profile);
		http_reply_error(request, 503, "store_unavailable",
		    "the profile could not be stored");
		return;
	}
	api_event_reply_after_commit(request, 200, profile_to_json(&profile));
	profile_release(&profile);
}

void
api_event_init(const struct config *config)
{
	api_event_config = config;
	metric_accepted = metrics_counter(
	    "nudge_events_total", NULL, "Events accepted by POST /v1/events.");
	metric_duplicates = metrics_counter("nudge_events_duplicate_total",
	    NULL, "Events whose unique_id was seen before.");
	metric_refused = metrics_counter("nudge_events_refused_total", NULL,
	    "Events refused for bad input.");
	profile_init(config);
	http_route("POST", "/v1/events", HTTP_ROUTE_EXACT | HTTP_ROUTE_AUTH,
	    api_event_post, NULL);
	http_route("GET", "/v1/profiles/", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH,
	    api_event_profile, NULL);
	http_route("PUT", "/v1/profiles/", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH,
	    api_event_profile, NULL);
}
