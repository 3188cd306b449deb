/*
 * callback.c - delivery status callbacks. When a message that names a
 * callback_url reaches its final state, its status is POSTed there as JSON
 * through the durable webhook queue (webhook.c): queued in the same store
 * turn as the final state, sent after the commit, retried with back-off,
 * resent after a crash, with an Idempotency-Key the receiver can rely on.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nudged.h"

#define CALLBACK_URL_MAX 1025

static struct metric *metric_queued;

/* The JSON a callback carries: the message's id, state and times. */
static json_t *
callback_body(uint64_t id, const struct outbox_message_record *message)
{
	char id_text[24];

	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);
	return json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}", "id", id_text,
	    "state", outbox_strstate((enum outbox_state)message->state), "to",
	    message->to, "parts", (int)message->part_count, "created_us",
	    (json_int_t)message->created_us, "updated_us",
	    (json_int_t)message->updated_us);
}

/*
 * Runs inside the turn that made the message final, with the record as
 * the outbox holds it now (it is written by the caller in this turn).
 */
void
callback_message_final(uint64_t id, const struct outbox_message_record *message)
{
	char url[CALLBACK_URL_MAX];
	json_t *body;

	if (outbox_read_callback_url(id, url, sizeof(url)) != STORE_OK)
		return;
	if ((body = callback_body(id, message)) == NULL)
		return;
	if (webhook_post_json(url, body, id) == 0)
		metrics_add(metric_queued, 1);
	else
		log_warnx(id, "callback", "refused",
		    "reason=\"see the webhook "
		    "line above\"");
	json_decref(body);
}

void
callback_init(struct event_base *base)
{
	metric_queued = metrics_counter("nudge_callbacks_queued_total", NULL,
	    "Status callbacks handed to the webhook queue.");
}
