/*
 * api_message.c - the messages API. POST /v1/messages takes one message
 * (or {"messages": [...]} for up to 1000) and answers 202 with the gateway's
 * ids only after the commit that holds them; GET /v1/messages/{id} shows a
 * message's state, parts, SMSC ids, receipts and history.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "smpp.h"
#include "nudged.h"

#define API_MESSAGE_BATCH_MAX 1000

/* A 202 waiting for the commit that makes it true. */
struct api_message_reply {
	struct evhttp_request *request;
	json_t *body;
};

static struct metric *metric_refused;

static const char *
api_message_coding_name(uint8_t data_coding)
{
	switch (data_coding) {
	case SMPP_CODING_DEFAULT:
		return "GSM-7";
	case SMPP_CODING_LATIN1:
		return "Latin-1";
	case SMPP_CODING_UCS2:
		return "UCS-2";
	default:
		return "other";
	}
}

static json_t *
api_message_time(uint64_t time_us)
{
	char text[40];
	time_t seconds = (time_t)(time_us / 1000000);
	struct tm tm;

	if (time_us == 0)
		return json_null();
	gmtime_r(&seconds, &tm);
	strftime(text, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(text + strlen(text), sizeof(text) - strlen(text), ".%03uZ",
	    (unsigned int)(time_us / 1000 % 1000));
	return json_string(text);
}

/* Runs after the commit: the promise is kept, or it was never made. */
static void
api_message_committed(void *arg, enum store_result result)
{
	struct api_message_reply *reply = arg;

	if (result == STORE_OK)
		http_reply_json(reply->request, 202, reply->body);
	else {
		json_decref(reply->body);
		http_reply_error(reply->request, 503, "store_unavailable",
		    "the message could not be stored; nothing was accepted");
	}
	free(reply);
}

/* Reads one message object into a request; returns the bad field or NULL. */
static const char *
api_message_parse(json_t *object, struct outbox_request *request, char *reason,
    size_t reason_size)
{
	json_t *value;
	const char *class_name;
	double validity;

	memset(request, 0, sizeof(*request));
	request->origin = "http";
	if (!json_is_object(object)) {
		snprintf(reason, reason_size, "each message is a JSON object");
		return "messages";
	}
	value = json_object_get(object, "to");
	if (!json_is_string(value)) {
		snprintf(reason, reason_size, "required, a string");
		return "to";
	}
	request->to = json_string_value(value);
	value = json_object_get(object, "from");
	if (value != NULL && !json_is_null(value)) {
		if (!json_is_string(value)) {
			snprintf(reason, reason_size, "must be a string");
			return "from";
		}
		request->from = json_string_value(value);
	}
	value = json_object_get(object, "text");
	if (!json_is_string(value)) {
		snprintf(reason, reason_size, "required, a string");
		return "text";
	}
	request->text = json_string_value(value);
	request->text_length = json_string_length(value);
	if (strlen(request->text) != request->text_length) {
		snprintf(reason, reason_size, "must not contain NUL");
		return "text";
	}
	request->message_class = OUTBOX_CLASS_TRANSACTIONAL;
	value = json_object_get(object, "class");
	if (value != NULL) {
		class_name = json_string_value(value);
		if (class_name != NULL && strcmp(class_name, "marketing") == 0)
			request->message_class = OUTBOX_CLASS_MARKETING;
		else if (class_name == NULL ||
			 strcmp(class_name, "transactional") != 0) {
			snprintf(reason, reason_size,
			    "'transactional' or 'marketing'");
			return "class";
		}
	}
	value = json_object_get(object, "validity");
	if (value != NULL) {
		validity = json_number_value(value);
		if (!json_is_number(value) || validity < 60 ||
		    validity > 7 * 86400) {
			snprintf(
			    reason, reason_size, "seconds, from 60 to 604800");
			return "validity";
		}
		request->validity_us = (uint64_t)(validity * 1e6);
	}
	value = json_object_get(object, "callback_url");
	if (value != NULL && !json_is_null(value)) {
		request->callback_url = json_string_value(value);
		if (request->callback_url == NULL ||
		    strncmp(request->callback_url, "http://", 7) != 0) {
			snprintf(reason, reason_size,
			    "an http:// URL (https callbacks are not "
			    "supported)");
			return "callback_url";
		}
	}
	return NULL;
}

/* Parses and submits one message; returns its result object. */
static json_t *
api_message_submit_one(json_t *object, int *accepted)
{
	struct outbox_request request;
	struct outbox_accepted result;
	const char *field;
	char reason[256], id[24];

	*accepted = 0;
	field = api_message_parse(object, &request, reason, sizeof(reason));
	if (field == NULL && outbox_submit(&request, &result, &field, reason,
				 sizeof(reason)) == 0) {
		*accepted = 1;
		snprintf(id, sizeof(id), "%" PRIu64, result.id);
		return json_pack("{s:s, s:s, s:i, s:s}", "id", id, "state",
		    "QUEUED", "parts", (int)result.parts, "coding",
		    api_message_coding_name(result.data_coding));
	}
	metrics_add(metric_refused, 1);
	if (field[0] == '\0')
		return json_pack("{s:s, s:s}", "error", "store_unavailable",
		    "detail", reason);
	return json_pack("{s:s, s:s, s:s++}", "error", "invalid_field", "field",
	    field, "detail", field, ": ", reason);
}

static void
api_message_post(struct evhttp_request *request, void *arg)
{
	struct api_message_reply *reply;
	json_t *body, *list, *results, *result, *first_error = NULL;
	size_t index;
	int accepted, accepted_count = 0;

	if ((body = http_read_json(request)) == NULL)
		return;
	list = json_object_get(body, "messages");
	if (list != NULL) {
		if (!json_is_array(list) || json_array_size(list) == 0 ||
		    json_array_size(list) > API_MESSAGE_BATCH_MAX) {
			json_decref(body);
			http_reply_error(request, 400, "invalid_field",
			    "messages: an array of 1 to %d messages",
			    API_MESSAGE_BATCH_MAX);
			return;
		}
		results = json_array();
		json_array_foreach(list, index, result)
		{
			json_array_append_new(
			    results, api_message_submit_one(result, &accepted));
			accepted_count += accepted;
		}
		json_decref(body);
		body = json_pack("{s:i, s:i, s:o}", "accepted", accepted_count,
		    "refused", (int)json_array_size(results) - accepted_count,
		    "results", results);
	} else {
		result = api_message_submit_one(body, &accepted);
		json_decref(body);
		if (!accepted) {
			first_error = result;
			http_reply_json(request,
			    json_object_get(first_error, "field") != NULL ? 400
									  : 503,
			    first_error);
			return;
		}
		body = result;
	}
	if ((reply = malloc(sizeof(*reply))) == NULL)
		fatal("api", "out-of-memory", NULL);
	reply->request = request;
	reply->body = body;
	/* Why: a 202 is a promise; it waits for the commit that keeps it. */
	store_after_commit(gateway->store, api_message_committed, reply);
}

static json_t *
api_message_part_json(uint64_t id, unsigned int number)
{
	struct outbox_part_record part;
	json_t *object, *receipt;

	if (outbox_read_part(id, number, &part) != STORE_OK)
		return json_null();
	object =
	    json_pack("{s:i, s:s, s:s, s:s, s:o, s:o}", "number", (int)number,
		"state", outbox_strstate((enum outbox_state)part.state), "link",
		part.link, "smsc_id", part.smsc_id, "submitted_at",
		api_message_time(part.submitted_us), "responded_at",
		api_message_time(part.responded_us));
	if (part.responded_us != 0)
		json_object_set_new(object, "submit_status",
		    json_string(smpp_status_name(part.submit_status)));
	if (part.receipt_us != 0) {
		receipt = json_pack("{s:s, s:i, s:o}", "state",
		    smpp_receipt_state_name(
			(enum smpp_message_state)part.receipt_state),
		    "error", (int)part.receipt_error, "at",
		    api_message_time(part.receipt_us));
		json_object_set_new(object, "receipt", receipt);
	}
	return object;
}

static void
api_message_get(struct evhttp_request *request, void *arg)
{
	struct outbox_message_record message;
	const struct outbox_history_entry *entry;
	json_t *body, *parts, *history;
	char path[256], *end, *text;
	const char *id_text;
	uint64_t id;
	unsigned int number;

	http_request_path(request, path, sizeof(path));
	id_text = path + strlen("/v1/messages/");
	id = strtoull(id_text, &end, 10);
	if (*id_text == '\0' || *end != '\0' || id == 0) {
		http_reply_error(request, 400, "invalid_id",
		    "a message id is a positive decimal number");
		return;
	}
	if ((text = malloc(OUTBOX_TEXT_BUFFER)) == NULL)
		fatal("api", "out-of-memory", NULL);
	switch (outbox_read_message(id, &message, text, OUTBOX_TEXT_BUFFER)) {
	case STORE_OK:
		break;
	case STORE_NOT_FOUND:
		free(text);
		http_reply_error(request, 404, "not_found",
		    "no message with id %" PRIu64, id);
		return;
	default:
		free(text);
		http_reply_error(request, 503, "store_unavailable",
		    "the store could not be read");
		return;
	}
	parts = json_array();
	for (number = 1; number <= message.part_count; number++)
		json_array_append_new(parts, api_message_part_json(id, number));
	history = json_array();
	for (number = 0;
	     number < message.history_count && number < OUTBOX_HISTORY_MAX;
	     number++) {
		entry = &message.history[number];
		json_array_append_new(history,
		    json_pack("{s:o, s:s, s:i, s:s, "
			      "s:I}",
			"at", api_message_time(entry->time_us), "state",
			outbox_strstate((enum outbox_state)entry->state),
			"part", entry->part, "reason",
			outbox_strreason((enum outbox_reason)entry->reason),
			"status", (json_int_t)entry->status));
	}
	body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, "
			 "s:o, s:o, s:o, s:o, s:o}",
	    "id", id_text, "state",
	    outbox_strstate((enum outbox_state)message.state), "to", message.to,
	    "from", message.from, "class",
	    outbox_strclass((enum outbox_class)message.message_class), "origin",
	    message.origin, "link", message.link, "part_count",
	    (int)message.part_count, "coding",
	    api_message_coding_name(message.data_coding), "text",
	    json_string(text), "created_at",
	    api_message_time(message.created_us), "expires_at",
	    api_message_time(message.expires_us), "parts", parts, "history",
	    history);
	free(text);
	if (body != NULL && message.not_before_us != 0)
		json_object_set_new(body, "not_before",
		    api_message_time(message.not_before_us));
	if (body == NULL) {
		http_reply_error(request, 500, "encoding_failed",
		    "the message could not be shown as JSON");
		return;
	}
	http_reply_json(request, 200, body);
}

void
api_message_init(void)
{
	metric_refused = metrics_counter("nudge_api_messages_refused_total",
	    NULL, "Messages refused by POST /v1/messages.");
	http_route("POST", "/v1/messages", HTTP_ROUTE_EXACT | HTTP_ROUTE_AUTH,
	    api_message_post, NULL);
	http_route("GET", "/v1/messages/", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH,
	    api_message_get, NULL);
}
