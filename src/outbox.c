/*
 * outbox.c - the durable outbox: accepting messages (validated, split into
 * parts, stored), scheduling their parts fairly over the upstream links
 * within each link's window and rate, and moving every part through
 * QUEUED -> SUBMITTING -> SUBMITTED -> final, each step committed. A part is
 * committed SUBMITTING before its submit_sm is written, so a crash can only
 * leave it UNKNOWN, never send it twice.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "smpp.h"
#include "nudged.h"

#define OUTBOX_MAX_LINKS       64
#define OUTBOX_HASH_INITIAL    1024
#define OUTBOX_KEY_LENGTH      8
#define OUTBOX_PART_KEY_LENGTH 9
#define OUTBOX_PART_BYTES_MAX  (SMPP_MESSAGE_PAYLOAD_MAX + 64)

/* The ordered links that may carry a number: one queue per such set. */
struct outbox_route {
	uint64_t link_mask;
	struct link *links[OUTBOX_MAX_LINKS];
	size_t link_count;
	TAILQ_HEAD(, outbox_pending) queue;
	size_t queued;
};

/* A message with parts still waiting to be sent or waiting for a response. */
struct outbox_pending {
	TAILQ_ENTRY(outbox_pending) entry;
	struct outbox_pending *hash_next;
	uint64_t id;
	uint64_t expires_us;
	uint64_t not_before_us; /* deferred: not queued before then */
	struct outbox_route *route;
	struct link *link; /* sticky once a part left */
	unsigned int part_count;
	unsigned int waiting_count;
	unsigned int inflight; /* sent, no response yet */
	uint8_t waiting[32];   /* bit (part - 1) */
	int queued;            /* on route->queue */
};

/* One submit_sm to write once the commit marking it SUBMITTING is done. */
struct outbox_send {
	struct link *link;
	uint64_t id;
	unsigned int part;
	char to[OUTBOX_ADDRESS_SIZE];
	char from[OUTBOX_ADDRESS_SIZE];
	char validity[24]; /* 16 used */
	uint8_t esm_class;
	uint8_t data_coding;
	uint8_t flags; /* OUTBOX_PART_* */
	uint8_t protocol_id;
	uint8_t priority_flag;
	uint8_t source_addr_ton;
	uint8_t source_addr_npi;
	uint8_t dest_addr_ton;
	uint8_t dest_addr_npi;
	size_t short_message_length;
	size_t tlv_length;
	uint8_t bytes[]; /* short_message, then TLVs */
};

struct outbox_batch {
	struct outbox_send **sends;
	size_t count;
	size_t capacity;
};

static const struct config *outbox_config;
static struct outbox_route *routes[OUTBOX_MAX_LINKS * 4];
static size_t route_count, route_cursor;
static struct outbox_pending **pending_table;
static size_t pending_buckets, pending_count;
static size_t reserved[OUTBOX_MAX_LINKS];
static struct outbox_batch *current_batch;
struct outbox_observer {
	outbox_observer_fn fn;
	void *arg;
};

static struct outbox_observer *observers;
static size_t observer_count;
static int scheduling, stopping;
static struct event *status_event;
static size_t queue_depth;
static struct metric *metric_accepted, *metric_final[OUTBOX_STATE_COUNT];
static struct metric *metric_requeued, *metric_queue_depth;
static struct metric *metric_optout_refused;

static const char *const state_names[OUTBOX_STATE_COUNT] = {
    [OUTBOX_STATE_NONE] = "NONE",
    [OUTBOX_QUEUED] = "QUEUED",
    [OUTBOX_SUBMITTING] = "SUBMITTING",
    [OUTBOX_SUBMITTED] = "SUBMITTED",
    [OUTBOX_DELIVERED] = "DELIVERED",
    [OUTBOX_UNDELIVERABLE] = "UNDELIVERABLE",
    [OUTBOX_EXPIRED] = "EXPIRED",
    [OUTBOX_REJECTED] = "REJECTED",
    [OUTBOX_FAILED] = "FAILED",
    [OUTBOX_UNKNOWN] = "UNKNOWN",
};

static const char *const reason_names[OUTBOX_REASON_COUNT] = {
    [OUTBOX_REASON_NONE] = "none",
    [OUTBOX_REASON_ACCEPTED] = "accepted",
    [OUTBOX_REASON_SENDING] = "sending",
    [OUTBOX_REASON_ACKNOWLEDGED] = "acknowledged",
    [OUTBOX_REASON_THROTTLED] = "throttled",
    [OUTBOX_REASON_SMSC_REJECTED] = "smsc-rejected",
    [OUTBOX_REASON_RESPONSE_TIMEOUT] = "response-timeout",
    [OUTBOX_REASON_CONNECTION_LOST] = "connection-lost",
    [OUTBOX_REASON_CRASH_RECOVERY] = "crash-recovery",
    [OUTBOX_REASON_VALIDITY_EXPIRED] = "validity-expired",
    [OUTBOX_REASON_RECEIPT] = "receipt",
    [OUTBOX_REASON_NOT_SENT] = "not-sent",
    [OUTBOX_REASON_SIBLING_REJECTED] = "sibling-rejected",
    [OUTBOX_REASON_CANCELLED] = "cancelled",
    [OUTBOX_REASON_NOT_ENCODABLE] = "not-encodable",
    [OUTBOX_REASON_DEFERRED] = "deferred-quiet-hours",
};

/* Final states: nothing more will happen to a part in one of them. */
static const int state_is_final[OUTBOX_STATE_COUNT] = {
    [OUTBOX_DELIVERED] = 1,
    [OUTBOX_UNDELIVERABLE] = 1,
    [OUTBOX_EXPIRED] = 1,
    [OUTBOX_REJECTED] = 1,
    [OUTBOX_FAILED] = 1,
    [OUTBOX_UNKNOWN] = 1,
};

/* Which final state wins for a message whose parts ended differently. */
static const enum outbox_state final_precedence[] = {
    OUTBOX_REJECTED,
    OUTBOX_UNDELIVERABLE,
    OUTBOX_EXPIRED,
    OUTBOX_UNKNOWN,
    OUTBOX_FAILED,
    OUTBOX_DELIVERED,
};

static void outbox_schedule(void);
static void outbox_pending_settle(struct outbox_pending *);
static void outbox_end_waiting_parts(struct outbox_pending *,
    struct outbox_message_record *, enum outbox_state, enum outbox_reason,
    uint64_t);

/*
 * An accepted marketing message counts for smart sending and the caps
 * from now, and a quiet-hours deferral is put on the number's record.
 */
static void
outbox_note_marketing(const char *number,
    const struct outbox_message_record *message, uint64_t id, uint64_t now_us)
{
	policy_record_send(number, now_us);
	if (message->not_before_us != 0)
		policy_record_decision(number, POLICY_DEFER,
		    POLICY_REASON_QUIET_HOURS, message->not_before_us, 0, id,
		    message->origin, NULL);
}

const char *
outbox_strstate(enum outbox_state state)
{
	if ((unsigned int)state >= OUTBOX_STATE_COUNT)
		return "INVALID";
	return state_names[state];
}

const char *
outbox_strreason(enum outbox_reason reason)
{
	if ((unsigned int)reason >= OUTBOX_REASON_COUNT)
		return "invalid";
	return reason_names[reason];
}

const char *
outbox_strclass(enum outbox_class message_class)
{
	return message_class == OUTBOX_CLASS_MARKETING ? "marketing"
						       : "transactional";
}

size_t
outbox_queue_depth(void)
{
	return queue_depth;
}

void
outbox_add_observer(outbox_observer_fn fn, void *arg)
{
	observers =
	    reallocarray(observers, observer_count + 1, sizeof(*observers));
	if (observers == NULL)
		fatal("outbox", "out-of-memory", NULL);
	observers[observer_count].fn = fn;
	observers[observer_count].arg = arg;
	observer_count++;
}

/* Tells observers about a part; they run inside the turn that changed it. */
static void
outbox_notify(uint64_t id, const struct outbox_message_record *message,
    unsigned int part, const struct outbox_part_record *record)
{
	size_t i;

	for (i = 0; i < observer_count; i++)
		observers[i].fn(observers[i].arg, id, message, part, record);
}

void
outbox_key(uint64_t id, unsigned int part, uint8_t key[9])
{
	store_encode_u64(key, id);
	key[8] = (uint8_t)part;
}

/* ---- pending messages: a hash by id ------------------------------------ */

static size_t
outbox_hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (pending_buckets - 1);
}

static struct outbox_pending *
outbox_pending_find(uint64_t id)
{
	struct outbox_pending *pending;

	if (pending_buckets == 0)
		return NULL;
	for (pending = pending_table[outbox_hash(id)]; pending != NULL;
	     pending = pending->hash_next)
		if (pending->id == id)
			return pending;
	return NULL;
}

static void
outbox_pending_grow(void)
{
	struct outbox_pending **old = pending_table, *pending, *next;
	size_t old_buckets = pending_buckets, i, bucket;

	pending_buckets = old_buckets ? old_buckets * 2 : OUTBOX_HASH_INITIAL;
	pending_table = calloc(pending_buckets, sizeof(*pending_table));
	if (pending_table == NULL)
		fatal("outbox", "out-of-memory", NULL);
	for (i = 0; i < old_buckets; i++) {
		for (pending = old[i]; pending != NULL; pending = next) {
			next = pending->hash_next;
			bucket = outbox_hash(pending->id);
			pending->hash_next = pending_table[bucket];
			pending_table[bucket] = pending;
		}
	}
	free(old);
}

static struct outbox_pending *
outbox_pending_add(uint64_t id)
{
	struct outbox_pending *pending;
	size_t bucket;

	if (pending_count >= pending_buckets)
		outbox_pending_grow();
	if ((pending = calloc(1, sizeof(*pending))) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	pending->id = id;
	bucket = outbox_hash(id);
	pending->hash_next = pending_table[bucket];
	pending_table[bucket] = pending;
	pending_count++;
	return pending;
}

static void
outbox_dequeue(struct outbox_pending *pending)
{
	if (!pending->queued)
		return;
	TAILQ_REMOVE(&pending->route->queue, pending, entry);
	pending->route->queued--;
	pending->queued = 0;
	queue_depth--;
}

/* Queues at the tail (new) or the head (a part came back: keep order). */
static void
outbox_enqueue(struct outbox_pending *pending, int at_head)
{
	if (pending->queued)
		return;
	if (at_head)
		TAILQ_INSERT_HEAD(&pending->route->queue, pending, entry);
	else
		TAILQ_INSERT_TAIL(&pending->route->queue, pending, entry);
	pending->route->queued++;
	pending->queued = 1;
	queue_depth++;
}

static void
outbox_pending_remove(struct outbox_pending *pending)
{
	struct outbox_pending **slot;

	outbox_dequeue(pending);
	for (slot = &pending_table[outbox_hash(pending->id)]; *slot != NULL;
	     slot = &(*slot)->hash_next) {
		if (*slot == pending) {
			*slot = pending->hash_next;
			break;
		}
	}
	pending_count--;
	free(pending);
}

static int
outbox_waiting_test(const struct outbox_pending *pending, unsigned int part)
{
	return (pending->waiting[(part - 1) / 8] >> ((part - 1) % 8)) & 1;
}

static void
outbox_waiting_set(struct outbox_pending *pending, unsigned int part, int on)
{
	uint8_t bit = (uint8_t)(1u << ((part - 1) % 8));

	if (on && !outbox_waiting_test(pending, part)) {
		pending->waiting[(part - 1) / 8] |= bit;
		pending->waiting_count++;
	} else if (!on && outbox_waiting_test(pending, part)) {
		pending->waiting[(part - 1) / 8] &= (uint8_t)~bit;
		pending->waiting_count--;
	}
}

/* ---- routes: which links may carry a number, in failover order -------- */

static size_t
outbox_link_index(const struct link *link)
{
	size_t i;

	for (i = 0; i < link_count() && i < OUTBOX_MAX_LINKS; i++)
		if (link_get(i) == link)
			return i;
	fatalx("outbox", "unknown-link", NULL);
}

/* 1 if one of the space-separated prefixes starts digits ("" serves any). */
static int
outbox_route_matches(const char *prefixes, const char *digits)
{
	const char *p = prefixes;
	size_t length;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return 1;
	while (*p != '\0') {
		if (*p == '+')
			p++;
		length = strcspn(p, " ");
		if (length > 0 && strncmp(p, digits, length) == 0)
			return 1;
		p += length;
		while (*p == ' ')
			p++;
	}
	return 0;
}

/* The route for a number (interned by link set); NULL if no link serves it. */
static struct outbox_route *
outbox_route_for(const char *number)
{
	const char *digits = number[0] == '+' ? number + 1 : number;
	struct outbox_route *route;
	uint64_t mask = 0;
	size_t i, j, count = link_count();

	for (i = 0; i < count && i < OUTBOX_MAX_LINKS; i++)
		if (outbox_route_matches(
			link_config(link_get(i))->routes, digits))
			mask |= UINT64_C(1) << i;
	if (mask == 0)
		return NULL;
	for (i = 0; i < route_count; i++)
		if (routes[i]->link_mask == mask)
			return routes[i];
	if (route_count == sizeof(routes) / sizeof(routes[0]))
		fatalx("outbox", "too-many-routes", NULL);
	if ((route = calloc(1, sizeof(*route))) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	route->link_mask = mask;
	TAILQ_INIT(&route->queue);
	for (i = 0; i < count && i < OUTBOX_MAX_LINKS; i++)
		if (mask & (UINT64_C(1) << i))
			route->links[route->link_count++] = link_get(i);
	/* Failover order: lowest priority first, then configuration order. */
	for (i = 1; i < route->link_count; i++) {
		struct link *link = route->links[i];

		for (j = i;
		     j > 0 && link_config(route->links[j - 1])->priority >
				  link_config(link)->priority;
		     j--)
			route->links[j] = route->links[j - 1];
		route->links[j] = link;
	}
	routes[route_count++] = route;
	return route;
}

/* The route that is one named link only (an account's fixed route). */
static struct outbox_route *
outbox_route_for_link(const char *name)
{
	struct outbox_route *route;
	struct link *link = link_find(name);
	uint64_t mask;
	size_t i;

	if (link == NULL)
		return NULL;
	mask = UINT64_C(1) << outbox_link_index(link);
	for (i = 0; i < route_count; i++)
		if (routes[i]->link_mask == mask)
			return routes[i];
	if (route_count == sizeof(routes) / sizeof(routes[0]))
		fatalx("outbox", "too-many-routes", NULL);
	if ((route = calloc(1, sizeof(*route))) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	route->link_mask = mask;
	TAILQ_INIT(&route->queue);
	route->links[route->link_count++] = link;
	routes[route_count++] = route;
	return route;
}

/* ---- records ------------------------------------------------------------ */

/* Loads a message; text (may be NULL) gets its UTF-8 text. */
enum store_result
outbox_read_message(uint64_t id, struct outbox_message_record *message,
    char *text, size_t text_size)
{
	uint8_t key[OUTBOX_KEY_LENGTH];
	const void *value;
	size_t length, text_length;
	enum store_result result;

	store_encode_u64(key, id);
	result = store_get(gateway->store, STORE_DB_MESSAGES, key, sizeof(key),
	    &value, &length);
	if (result != STORE_OK)
		return result;
	if (length < sizeof(*message)) {
		log_warnx(id, "outbox", "record-corrupt",
		    "db=messages length=%zu", length);
		return STORE_ERROR;
	}
	memcpy(message, value, sizeof(*message));
	if (text != NULL && text_size > 0) {
		text_length = message->text_length;
		if (text_length > length - sizeof(*message))
			text_length = length - sizeof(*message);
		if (text_length >= text_size)
			text_length = text_size - 1;
		memcpy(text, (const uint8_t *)value + sizeof(*message),
		    text_length);
		text[text_length] = '\0';
	}
	return STORE_OK;
}

/* Copies a message's callback URL (stored after its text) into url. */
enum store_result
outbox_read_callback_url(uint64_t id, char *url, size_t url_size)
{
	struct outbox_message_record message;
	uint8_t key[OUTBOX_KEY_LENGTH];
	const void *value;
	size_t length, start;
	enum store_result result;

	store_encode_u64(key, id);
	result = store_get(gateway->store, STORE_DB_MESSAGES, key, sizeof(key),
	    &value, &length);
	if (result != STORE_OK)
		return result;
	if (length < sizeof(message))
		return STORE_ERROR;
	memcpy(&message, value, sizeof(message));
	start = sizeof(message) + message.text_length;
	if (message.callback_length == 0 ||
	    start + message.callback_length > length ||
	    message.callback_length >= url_size)
		return STORE_NOT_FOUND;
	memcpy(url, (const uint8_t *)value + start, message.callback_length);
	url[message.callback_length] = '\0';
	return STORE_OK;
}

/*
 * Rewrites the message record, keeping the text and callback that follow
 * the fixed part (they are copied out first: the store's pointer dies with
 * the next write).
 */
static enum store_result
outbox_write_message(uint64_t id, const struct outbox_message_record *message)
{
	uint8_t key[OUTBOX_KEY_LENGTH], *buffer;
	const void *value;
	size_t length, tail;
	enum store_result result;

	store_encode_u64(key, id);
	result = store_get(gateway->store, STORE_DB_MESSAGES, key, sizeof(key),
	    &value, &length);
	if (result != STORE_OK)
		return result;
	tail = length > sizeof(*message) ? length - sizeof(*message) : 0;
	if ((buffer = malloc(sizeof(*message) + tail)) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	memcpy(buffer, message, sizeof(*message));
	memcpy(buffer + sizeof(*message),
	    (const uint8_t *)value + sizeof(*message), tail);
	result = store_put(gateway->store, STORE_DB_MESSAGES, key, sizeof(key),
	    buffer, sizeof(*message) + tail, 0);
	free(buffer);
	return result;
}

enum store_result
outbox_read_part(
    uint64_t id, unsigned int part, struct outbox_part_record *record)
{
	uint8_t key[OUTBOX_PART_KEY_LENGTH];
	const void *value;
	size_t length;
	enum store_result result;

	outbox_key(id, part, key);
	result = store_get(
	    gateway->store, STORE_DB_PARTS, key, sizeof(key), &value, &length);
	if (result != STORE_OK)
		return result;
	if (length < sizeof(*record)) {
		log_warnx(id, "outbox", "record-corrupt", "db=parts length=%zu",
		    length);
		return STORE_ERROR;
	}
	memcpy(record, value, sizeof(*record));
	return STORE_OK;
}

/* Rewrites the fixed part of a part record, keeping its octets. */
static enum store_result
outbox_write_part(
    uint64_t id, unsigned int part, const struct outbox_part_record *record)
{
	uint8_t key[OUTBOX_PART_KEY_LENGTH], *buffer;
	const void *value;
	size_t length, tail;
	enum store_result result;

	outbox_key(id, part, key);
	result = store_get(
	    gateway->store, STORE_DB_PARTS, key, sizeof(key), &value, &length);
	if (result != STORE_OK)
		return result;
	tail = length > sizeof(*record) ? length - sizeof(*record) : 0;
	if ((buffer = malloc(sizeof(*record) + tail)) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	memcpy(buffer, record, sizeof(*record));
	memcpy(buffer + sizeof(*record),
	    (const uint8_t *)value + sizeof(*record), tail);
	result = store_put(gateway->store, STORE_DB_PARTS, key, sizeof(key),
	    buffer, sizeof(*record) + tail, 0);
	free(buffer);
	return result;
}

/*
 * A message and one of its parts read whole for a change: the fixed
 * records to edit and every octet as stored, so writing them back takes no
 * second lookup for the text and octets that follow (outbox_write_message
 * and _part look again: six of the dozen lookups of every relayed part).
 */
struct outbox_edit {
	struct outbox_message_record message;
	struct outbox_part_record part;
	uint8_t *message_bytes;
	uint8_t *part_bytes;
	size_t message_length;
	size_t part_length;
	uint8_t message_key[OUTBOX_KEY_LENGTH];
	uint8_t part_key[OUTBOX_PART_KEY_LENGTH];
};

static void
outbox_edit_free(struct outbox_edit *edit)
{
	free(edit->message_bytes);
	free(edit->part_bytes);
	edit->message_bytes = edit->part_bytes = NULL;
}

/* Copies one stored record out whole; its fixed part goes to fixed. */
static enum store_result
outbox_edit_copy(enum store_db db, const uint8_t *key, size_t key_length,
    void *fixed, size_t fixed_size, uint8_t **bytes, size_t *bytes_length)
{
	const void *value;
	size_t length;
	enum store_result result;

	result =
	    store_get(gateway->store, db, key, key_length, &value, &length);
	if (result != STORE_OK)
		return result;
	if (length < fixed_size)
		return STORE_ERROR;
	if ((*bytes = malloc(length)) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	memcpy(*bytes, value, length);
	*bytes_length = length;
	memcpy(fixed, value, fixed_size);
	return STORE_OK;
}

/* Reads a message and one part for a change; -1 (nothing held) if absent. */
static int
outbox_edit_load(struct outbox_edit *edit, uint64_t id, unsigned int number)
{
	memset(edit, 0, sizeof(*edit));
	store_encode_u64(edit->message_key, id);
	outbox_key(id, number, edit->part_key);
	if (outbox_edit_copy(STORE_DB_MESSAGES, edit->message_key,
		sizeof(edit->message_key), &edit->message,
		sizeof(edit->message), &edit->message_bytes,
		&edit->message_length) != STORE_OK ||
	    outbox_edit_copy(STORE_DB_PARTS, edit->part_key,
		sizeof(edit->part_key), &edit->part, sizeof(edit->part),
		&edit->part_bytes, &edit->part_length) != STORE_OK) {
		outbox_edit_free(edit);
		return -1;
	}
	return 0;
}

/* Writes the part, then the message, back changed, and lets go of both. */
static enum store_result
outbox_edit_save(struct outbox_edit *edit)
{
	enum store_result result;

	memcpy(edit->part_bytes, &edit->part, sizeof(edit->part));
	result = store_put(gateway->store, STORE_DB_PARTS, edit->part_key,
	    sizeof(edit->part_key), edit->part_bytes, edit->part_length, 0);
	if (result == STORE_OK) {
		memcpy(
		    edit->message_bytes, &edit->message, sizeof(edit->message));
		result = store_put(gateway->store, STORE_DB_MESSAGES,
		    edit->message_key, sizeof(edit->message_key),
		    edit->message_bytes, edit->message_length, 0);
	}
	outbox_edit_free(edit);
	return result;
}

static void
outbox_history_add(struct outbox_message_record *message, uint64_t now_us,
    enum outbox_state state, unsigned int part, enum outbox_reason reason,
    uint32_t status)
{
	struct outbox_history_entry *entry;

	if (message->history_count >= OUTBOX_HISTORY_MAX) {
		message->history_dropped++;
		return;
	}
	entry = &message->history[message->history_count++];
	memset(entry, 0, sizeof(*entry));
	entry->time_us = now_us;
	entry->state = (uint8_t)state;
	entry->part = (uint8_t)part;
	entry->reason = (uint8_t)reason;
	entry->status = status;
}

/* The message's state follows from how many parts are in each state. */
static enum outbox_state
outbox_message_state(const struct outbox_message_record *message)
{
	unsigned int finals = 0, i;

	for (i = 0; i < OUTBOX_STATE_COUNT; i++)
		if (state_is_final[i])
			finals += message->part_states[i];
	if (finals == message->part_count) {
		for (i = 0;
		     i < sizeof(final_precedence) / sizeof(final_precedence[0]);
		     i++)
			if (message->part_states[final_precedence[i]] > 0)
				return final_precedence[i];
		return OUTBOX_FAILED;
	}
	if (message->part_states[OUTBOX_SUBMITTING] > 0)
		return OUTBOX_SUBMITTING;
	if (message->part_states[OUTBOX_QUEUED] == message->part_count)
		return OUTBOX_QUEUED;
	if (message->part_states[OUTBOX_QUEUED] > 0)
		return OUTBOX_SUBMITTING;
	return OUTBOX_SUBMITTED;
}

/*
 * Moves one part to state, counting it in the message and recording the
 * step; the message's own state follows and gets a history line when it
 * changes. Both records are written by the caller's turn.
 */
static void
outbox_part_transition(uint64_t id, struct outbox_message_record *message,
    struct outbox_part_record *part_record, unsigned int part,
    enum outbox_state state, enum outbox_reason reason, uint32_t status,
    uint64_t now_us)
{
	enum outbox_state before = (enum outbox_state)message->state, after;
	int notify;

	if (part_record->state < OUTBOX_STATE_COUNT &&
	    message->part_states[part_record->state] > 0)
		message->part_states[part_record->state]--;
	part_record->state = (uint8_t)state;
	message->part_states[state]++;
	notify = state_is_final[state] && reason != OUTBOX_REASON_RECEIPT;
	outbox_history_add(message, now_us, state, part, reason, status);
	after = outbox_message_state(message);
	message->state = (uint8_t)after;
	message->updated_us = now_us;
	if (after != before && message->part_count > 1)
		outbox_history_add(message, now_us, after, 0, reason, status);
	/* Receipts notify from outbox_apply_receipt(), with the error set. */
	if (notify)
		outbox_notify(id, message, part, part_record);
	if (after != before && state_is_final[after]) {
		metrics_add(metric_final[after], 1);
		if (message->callback_length > 0)
			callback_message_final(id, message);
		log_info(id, "outbox", "final", "state=%s reason=%s status=%u",
		    outbox_strstate(after), outbox_strreason(reason), status);
	}
}

/*
 * Queues a new message, or, when it is deferred, leaves it out of its
 * route's queue (so it blocks nobody) until a wake-up row fires.
 */
static void
outbox_admit(struct outbox_pending *pending, uint64_t now_us)
{
	uint8_t key[OUTBOX_KEY_LENGTH];

	if (pending->not_before_us <= now_us) {
		outbox_enqueue(pending, 0);
		return;
	}
	store_encode_u64(key, pending->id);
	timer_schedule(pending->not_before_us, TIMER_KIND_OUTBOX_WAKE, key,
	    sizeof(key), NULL);
}

/* A deferral is over: the message joins its route's queue. */
static void
outbox_wake_timer(
    void *arg, uint64_t timer_id, const void *payload, size_t payload_length)
{
	struct outbox_pending *pending;

	if (payload_length != OUTBOX_KEY_LENGTH ||
	    (pending = outbox_pending_find(store_decode_u64(payload))) ==
		NULL ||
	    pending->waiting_count == 0)
		return;
	pending->not_before_us = 0;
	outbox_enqueue(pending, 0);
	outbox_schedule();
}

/*
 * The outbox's own part of the policies for marketing (the producer may
 * have done more): quiet hours defer it, unless the producer deferred it
 * already or said quiet hours do not apply. Returns the not-before time.
 */
static uint64_t
outbox_marketing_deferral(const char *to, const char *zone,
    uint64_t producer_not_before_us, unsigned int policy_flags, uint64_t now_us)
{
	uint64_t allowed_us = 0;

	if (producer_not_before_us > now_us)
		return producer_not_before_us;
	if ((policy_flags & POLICY_SKIP_QUIET_HOURS) ||
	    quiet_check(to, zone, now_us, &allowed_us) == 0)
		return 0;
	return allowed_us > now_us ? allowed_us : 0;
}

/* Indexes a message under its destination: digits NUL id, for nudgectl. */
static enum store_result
outbox_index_number(const char *to, uint64_t id)
{
	const char *digits = to[0] == '+' ? to + 1 : to;
	uint8_t key[OUTBOX_ADDRESS_SIZE + 9];
	size_t length = strlen(digits);

	if (length + 9 > sizeof(key))
		return STORE_ERROR;
	memcpy(key, digits, length);
	key[length] = '\0';
	store_encode_u64(key + length + 1, id);
	return store_put(gateway->store, STORE_DB_MESSAGES_BY_NUMBER, key,
	    length + 9, "", 0, 0);
}

/* ---- accepting --------------------------------------------------------- */

/* "+" and 7 to 15 digits (E.164); writes the "+digits" form. */
static int
outbox_normalize_number(const char *text, char *out, size_t out_size)
{
	const char *p = text[0] == '+' ? text + 1 : text;
	size_t digits = strlen(p), i;

	if (digits < 7 || digits > 15 || p[0] == '0' || digits + 2 > out_size)
		return -1;
	for (i = 0; i < digits; i++)
		if (!isdigit((unsigned char)p[i]))
			return -1;
	snprintf(out, out_size, "+%s", p);
	return 0;
}

/* A sender: up to 15 digits (optional +), or 1 to 11 GSM-safe characters. */
static int
outbox_valid_sender(const char *from)
{
	size_t length = strlen(from), i, digits = 0;

	for (i = 0; i < length; i++)
		if (isdigit((unsigned char)from[i]))
			digits++;
	if (length > 0 &&
	    (digits == length || (from[0] == '+' && digits == length - 1)))
		return digits >= 1 && digits <= 15;
	if (length < 1 || length > 11)
		return 0;
	for (i = 0; i < length; i++)
		if (!isalnum((unsigned char)from[i]) &&
		    strchr(" .-_&", from[i]) == NULL)
			return 0;
	return 1;
}

static enum smpp_concat
outbox_concat_for(const struct config_link *link)
{
	static const enum smpp_concat concat[] = {
	    [CONFIG_LINK_SPLIT_UDH] = SMPP_CONCAT_UDH_8BIT,
	    [CONFIG_LINK_SPLIT_UDH16] = SMPP_CONCAT_UDH_16BIT,
	    [CONFIG_LINK_SPLIT_SAR] = SMPP_CONCAT_SAR,
	    [CONFIG_LINK_SPLIT_PAYLOAD] = SMPP_CONCAT_PAYLOAD,
	};

	return concat[link->split];
}

/* Encodes the SAR TLVs of a part into out; returns the octets written. */
static size_t
outbox_sar_tlvs(
    const struct smpp_split_part *part, uint8_t *out, size_t capacity)
{
	struct smpp_tlv tlvs[3];
	size_t used = 0, i;
	int written;

	tlvs[0] =
	    smpp_tlv_integer(SMPP_TLV_SAR_MSG_REF_NUM, part->sar_msg_ref_num);
	tlvs[1] = smpp_tlv_integer(
	    SMPP_TLV_SAR_TOTAL_SEGMENTS, part->sar_total_segments);
	tlvs[2] = smpp_tlv_integer(
	    SMPP_TLV_SAR_SEGMENT_SEQNUM, part->sar_segment_seqnum);
	for (i = 0; i < 3; i++) {
		written =
		    smpp_tlv_encode(&tlvs[i], out + used, capacity - used);
		if (written < 0)
			return 0;
		used += (size_t)written;
	}
	return used;
}

/* Writes one part record (from a template) with its octets; QUEUED. */
static enum store_result
outbox_store_part(uint64_t id, unsigned int number,
    const struct outbox_part_record *template, const uint8_t *octets,
    size_t octets_length, const uint8_t *tlvs, size_t tlv_length)
{
	uint8_t key[OUTBOX_PART_KEY_LENGTH], *buffer;
	struct outbox_part_record record;
	enum store_result result;

	record = *template;
	record.version = OUTBOX_RECORD_VERSION;
	record.state = OUTBOX_QUEUED;
	record.short_message_length = (uint16_t)octets_length;
	record.tlv_length = (uint16_t)tlv_length;
	buffer = malloc(sizeof(record) + octets_length + tlv_length);
	if (buffer == NULL)
		fatal("outbox", "out-of-memory", NULL);
	memcpy(buffer, &record, sizeof(record));
	if (octets_length > 0)
		memcpy(buffer + sizeof(record), octets, octets_length);
	if (tlv_length > 0)
		memcpy(
		    buffer + sizeof(record) + octets_length, tlvs, tlv_length);
	outbox_key(id, number, key);
	result =
	    store_put(gateway->store, STORE_DB_PARTS, key, sizeof(key), buffer,
		sizeof(record) + octets_length + tlv_length, STORE_PUT_APPEND);
	free(buffer);
	return result;
}

int
outbox_submit(const struct outbox_request *request,
    struct outbox_accepted *accepted, const char **field, char *reason,
    size_t reason_size)
{
	struct smpp_split_part parts[SMPP_SPLIT_MAX_PARTS];
	struct smpp_split_options options;
	struct smpp_split split;
	struct outbox_message_record message;
	struct outbox_part_record template;
	struct outbox_route *route;
	struct outbox_pending *pending;
	uint8_t key[OUTBOX_KEY_LENGTH], tlvs[32], *octets = NULL;
	uint8_t *record = NULL;
	uint64_t id, now_us = clock_now_us();
	size_t i, tlv_length, callback_length;
	char to[OUTBOX_ADDRESS_SIZE];
	int rc;

	*field = "";
	if (request->to == NULL ||
	    outbox_normalize_number(request->to, to, sizeof(to)) == -1) {
		*field = "to";
		snprintf(reason, reason_size,
		    "not an international number "
		    "(E.164: '+' and 7 to 15 digits)");
		return -1;
	}
	if (request->from != NULL && request->from[0] != '\0' &&
	    !outbox_valid_sender(request->from)) {
		*field = "from";
		snprintf(reason, reason_size,
		    "a sender is up to 15 digits or "
		    "1 to 11 letters, digits, spaces or . - _ &");
		return -1;
	}
	if (request->text == NULL || request->text_length == 0) {
		*field = "text";
		snprintf(reason, reason_size, "must not be empty");
		return -1;
	}
	if (request->text_length > OUTBOX_TEXT_MAX) {
		*field = "text";
		snprintf(reason, reason_size, "longer than %d bytes",
		    OUTBOX_TEXT_MAX);
		return -1;
	}
	callback_length =
	    request->callback_url != NULL ? strlen(request->callback_url) : 0;
	if (callback_length > 1024) {
		*field = "callback_url";
		snprintf(reason, reason_size, "longer than 1024 characters");
		return -1;
	}
	if ((route = outbox_route_for(to)) == NULL) {
		*field = "to";
		snprintf(reason, reason_size, "no link serves this number");
		return -1;
	}
	if (request->message_class == OUTBOX_CLASS_MARKETING &&
	    optout_is_opted_out(to)) {
		metrics_add(metric_optout_refused, 1);
		*field = "to";
		snprintf(reason, reason_size, "opted out of marketing SMS");
		return -1;
	}

	memset(&options, 0, sizeof(options));
	options.concat = outbox_concat_for(link_config(route->links[0]));
	options.flags = SMPP_SPLIT_CHOOSE_CODING;
	memset(&split, 0, sizeof(split));
	split.parts = parts;
	split.max_parts = (size_t)outbox_config->outbox_max_parts;
	split.capacity = OUTBOX_PART_BYTES_MAX;
	if ((octets = malloc(split.capacity)) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	split.buffer = octets;
	/* The reference only has to differ between a sender's messages. */
	id = store_sequence_next(gateway->store, STORE_SEQUENCE_MESSAGE);
	if (id == 0) {
		snprintf(reason, reason_size, "the store refused the message");
		goto fail;
	}
	options.reference = (uint16_t)id;
	rc = smpp_split_text(
	    request->text, request->text_length, &options, &split);
	if (rc != SMPP_SPLIT_OK) {
		*field = "text";
		if (rc == SMPP_SPLIT_ERR_TOO_MANY_PARTS)
			snprintf(reason, reason_size,
			    "needs more than %lld "
			    "SMS parts (outbox.max_parts)",
			    (long long)outbox_config->outbox_max_parts);
		else if (rc == SMPP_SPLIT_ERR_UTF8)
			snprintf(reason, reason_size, "is not valid UTF-8");
		else
			snprintf(reason, reason_size,
			    "cannot be encoded "
			    "(error %d)",
			    rc);
		goto fail;
	}

	memset(&message, 0, sizeof(message));
	if (request->message_class == OUTBOX_CLASS_MARKETING)
		message.not_before_us =
		    outbox_marketing_deferral(to, request->zone,
			request->not_before_us, request->policy_flags, now_us);
	message.version = OUTBOX_RECORD_VERSION;
	message.state = OUTBOX_QUEUED;
	message.message_class = (uint8_t)request->message_class;
	message.data_coding = (uint8_t)split.coding;
	message.part_count = (uint8_t)split.count;
	message.part_states[OUTBOX_QUEUED] = (uint8_t)split.count;
	message.created_us = message.updated_us = now_us;
	/* Validity counts from when it may go: a deferral does not eat it. */
	message.expires_us =
	    (message.not_before_us > now_us ? message.not_before_us : now_us) +
	    (request->validity_us != 0 ? request->validity_us
				       : outbox_config->outbox_validity_us);
	snprintf(message.to, sizeof(message.to), "%s", to);
	if (request->from != NULL)
		snprintf(
		    message.from, sizeof(message.from), "%s", request->from);
	snprintf(message.origin, sizeof(message.origin), "%s",
	    request->origin != NULL ? request->origin : "");
	message.text_length = (uint16_t)request->text_length;
	message.callback_length = (uint16_t)callback_length;
	outbox_history_add(
	    &message, now_us, OUTBOX_QUEUED, 0, OUTBOX_REASON_ACCEPTED, 0);
	if (message.not_before_us != 0)
		outbox_history_add(&message, now_us, OUTBOX_QUEUED, 0,
		    OUTBOX_REASON_DEFERRED, 0);

	record =
	    malloc(sizeof(message) + request->text_length + callback_length);
	if (record == NULL)
		fatal("outbox", "out-of-memory", NULL);
	memcpy(record, &message, sizeof(message));
	memcpy(record + sizeof(message), request->text, request->text_length);
	if (callback_length > 0)
		memcpy(record + sizeof(message) + request->text_length,
		    request->callback_url, callback_length);
	store_encode_u64(key, id);
	if (store_put(gateway->store, STORE_DB_MESSAGES, key, sizeof(key),
		record,
		sizeof(message) + request->text_length + callback_length,
		STORE_PUT_APPEND) != STORE_OK)
		goto store_failed;
	memset(&template, 0, sizeof(template));
	template.data_coding = (uint8_t)split.coding;
	template.registered_delivery = 1;
	for (i = 0; i < split.count; i++) {
		tlv_length = 0;
		if (options.concat == SMPP_CONCAT_SAR && split.count > 1)
			tlv_length =
			    outbox_sar_tlvs(&parts[i], tlvs, sizeof(tlvs));
		template.esm_class = parts[i].esm_class;
		if (outbox_store_part(id, (unsigned int)i + 1, &template,
			parts[i].short_message, parts[i].length, tlvs,
			tlv_length) != STORE_OK)
			goto store_failed;
	}
	if (store_put(gateway->store, STORE_DB_QUEUE, key, sizeof(key), "", 0,
		STORE_PUT_APPEND) != STORE_OK ||
	    outbox_index_number(message.to, id) != STORE_OK)
		goto store_failed;
	if (timer_schedule(message.expires_us, TIMER_KIND_OUTBOX_EXPIRY, key,
		sizeof(key), NULL) != STORE_OK)
		goto store_failed;

	pending = outbox_pending_add(id);
	pending->expires_us = message.expires_us;
	pending->not_before_us = message.not_before_us;
	pending->route = route;
	pending->part_count = (unsigned int)split.count;
	for (i = 1; i <= split.count; i++)
		outbox_waiting_set(pending, (unsigned int)i, 1);
	outbox_admit(pending, now_us);
	if (request->message_class == OUTBOX_CLASS_MARKETING)
		outbox_note_marketing(to, &message, id, now_us);
	metrics_add(metric_accepted, 1);
	accepted->id = id;
	accepted->parts = (unsigned int)split.count;
	accepted->data_coding = (uint8_t)split.coding;
	free(octets);
	free(record);
	/* Parts leave only after this turn's commit: see outbox_schedule(). */
	outbox_schedule();
	return 0;
store_failed:
	snprintf(reason, reason_size, "the store refused the message");
fail:
	free(octets);
	free(record);
	return -1;
}

/* An ESME's destination: 1 to 20 digits, "+" allowed in front. */
static int
outbox_valid_esme_destination(const char *to)
{
	const char *p = to[0] == '+' ? to + 1 : to;
	size_t length = strlen(p), i;

	if (length < 1 || length > 20)
		return 0;
	for (i = 0; i < length; i++)
		if (!isdigit((unsigned char)p[i]))
			return 0;
	return 1;
}

/* The text of an ESME's part for display: UDH skipped, decoded to UTF-8. */
static size_t
outbox_display_text(
    const struct outbox_part_request *request, char *out, size_t capacity)
{
	const uint8_t *octets = request->short_message;
	size_t length = request->short_message_length, written = 0;
	enum smpp_data_coding alphabet;

	if ((request->esm_class & SMPP_ESM_CLASS_UDHI) && length > 0) {
		if ((size_t)octets[0] + 1 > length)
			return 0;
		length -= (size_t)octets[0] + 1;
		octets += (size_t)octets[0] + 1;
	}
	alphabet = smpp_charset_alphabet(request->data_coding);
	if (alphabet == SMPP_CODING_BINARY ||
	    alphabet == SMPP_CODING_BINARY_8BIT)
		return (size_t)snprintf(
		    out, capacity, "(%zu octets of binary)", length);
	if (smpp_charset_decode(alphabet, octets, length, out, capacity - 1,
		&written) != SMPP_CHARSET_OK)
		written = 0;
	out[written] = '\0';
	return written;
}

uint32_t
outbox_submit_part(const struct outbox_part_request *request, uint64_t *id_out)
{
	struct outbox_message_record message;
	struct outbox_part_record template;
	struct outbox_route *route;
	struct outbox_pending *pending;
	uint8_t key[OUTBOX_KEY_LENGTH], *record = NULL;
	const char *digits;
	char text[SMPP_MAX_SHORT_MESSAGE_LENGTH * 4 + 64];
	size_t text_length;
	uint64_t id, now_us = clock_now_us();

	if (request->to == NULL || !outbox_valid_esme_destination(request->to))
		return SMPP_ESME_RINVDSTADR;
	if (request->from != NULL &&
	    strlen(request->from) >= OUTBOX_ADDRESS_SIZE)
		return SMPP_ESME_RINVSRCADR;
	digits = request->to[0] == '+' ? request->to + 1 : request->to;
	route = request->link != NULL && request->link[0] != '\0'
		    ? outbox_route_for_link(request->link)
		    : outbox_route_for(digits);
	if (route == NULL)
		return SMPP_ESME_RINVDSTADR;
	/* Documented: marketing to an opted-out number gets ESME_RX_R_APPN. */
	if (request->message_class == OUTBOX_CLASS_MARKETING &&
	    optout_is_opted_out(digits)) {
		metrics_add(metric_optout_refused, 1);
		return SMPP_ESME_RX_R_APPN;
	}
	id = store_sequence_next(gateway->store, STORE_SEQUENCE_MESSAGE);
	if (id == 0)
		return SMPP_ESME_RSYSERR;
	text_length = outbox_display_text(request, text, sizeof(text));

	memset(&message, 0, sizeof(message));
	if (request->message_class == OUTBOX_CLASS_MARKETING)
		message.not_before_us =
		    outbox_marketing_deferral(digits, NULL, 0, 0, now_us);
	message.version = OUTBOX_RECORD_VERSION;
	message.state = OUTBOX_QUEUED;
	message.message_class = (uint8_t)request->message_class;
	message.data_coding = request->data_coding;
	message.part_count = 1;
	message.part_states[OUTBOX_QUEUED] = 1;
	message.created_us = message.updated_us = now_us;
	message.expires_us =
	    (message.not_before_us > now_us ? message.not_before_us : now_us) +
	    (request->validity_us != 0 ? request->validity_us
				       : outbox_config->outbox_validity_us);
	text_copy(message.to, sizeof(message.to), request->to);
	text_copy(message.from, sizeof(message.from),
	    request->from != NULL ? request->from : "");
	text_copy(message.origin, sizeof(message.origin),
	    request->origin != NULL ? request->origin : "");
	if (request->link != NULL && request->link[0] != '\0') {
		message.flags |= OUTBOX_MESSAGE_FIXED_ROUTE;
		text_copy(message.link, sizeof(message.link), request->link);
	}
	message.text_length = (uint16_t)text_length;
	outbox_history_add(
	    &message, now_us, OUTBOX_QUEUED, 0, OUTBOX_REASON_ACCEPTED, 0);
	if ((record = malloc(sizeof(message) + text_length)) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	memcpy(record, &message, sizeof(message));
	memcpy(record + sizeof(message), text, text_length);
	store_encode_u64(key, id);

	memset(&template, 0, sizeof(template));
	template.esm_class = request->esm_class;
	template.data_coding = request->data_coding;
	template.registered_delivery = request->registered_delivery;
	template.protocol_id = request->protocol_id;
	template.priority_flag = request->priority_flag;
	template.flags = OUTBOX_PART_EXPLICIT_ADDRESSING;
	template.source_addr_ton = request->source_addr_ton;
	template.source_addr_npi = request->source_addr_npi;
	template.dest_addr_ton = request->dest_addr_ton;
	template.dest_addr_npi = request->dest_addr_npi;
	if (store_put(gateway->store, STORE_DB_MESSAGES, key, sizeof(key),
		record, sizeof(message) + text_length,
		STORE_PUT_APPEND) != STORE_OK ||
	    outbox_store_part(id, 1, &template, request->short_message,
		request->short_message_length, request->tlv_bytes,
		request->tlv_length) != STORE_OK ||
	    store_put(gateway->store, STORE_DB_QUEUE, key, sizeof(key), "", 0,
		STORE_PUT_APPEND) != STORE_OK ||
	    outbox_index_number(message.to, id) != STORE_OK ||
	    timer_schedule(message.expires_us, TIMER_KIND_OUTBOX_EXPIRY, key,
		sizeof(key), NULL) != STORE_OK) {
		free(record);
		return SMPP_ESME_RSYSERR;
	}
	free(record);
	pending = outbox_pending_add(id);
	pending->expires_us = message.expires_us;
	pending->route = route;
	pending->part_count = 1;
	pending->not_before_us = message.not_before_us;
	outbox_waiting_set(pending, 1, 1);
	outbox_admit(pending, now_us);
	if (request->message_class == OUTBOX_CLASS_MARKETING)
		outbox_note_marketing(digits, &message, id, now_us);
	metrics_add(metric_accepted, 1);
	*id_out = id;
	outbox_schedule();
	return SMPP_ESME_ROK;
}

/* Reads a message and checks that origin owns it. */
static uint32_t
outbox_owned_message(
    uint64_t id, const char *origin, struct outbox_message_record *message)
{
	if (outbox_read_message(id, message, NULL, 0) != STORE_OK)
		return SMPP_ESME_RINVMSGID;
	if (origin != NULL && strcmp(message->origin, origin) != 0)
		return SMPP_ESME_RINVMSGID;
	return SMPP_ESME_ROK;
}

uint32_t
outbox_cancel(uint64_t id, const char *origin)
{
	struct outbox_message_record message;
	struct outbox_pending *pending;
	uint32_t status;

	if ((status = outbox_owned_message(id, origin, &message)) !=
	    SMPP_ESME_ROK)
		return status;
	pending = outbox_pending_find(id);
	/* Only what never left can be taken back. */
	if (pending == NULL || pending->waiting_count != pending->part_count ||
	    pending->inflight > 0)
		return SMPP_ESME_RCANCELFAIL;
	outbox_end_waiting_parts(pending, &message, OUTBOX_REJECTED,
	    OUTBOX_REASON_CANCELLED, clock_now_us());
	if (outbox_write_message(id, &message) != STORE_OK)
		return SMPP_ESME_RSYSERR;
	log_info(id, "outbox", "cancelled", "origin=%s", message.origin);
	outbox_pending_settle(pending);
	return SMPP_ESME_ROK;
}

uint32_t
outbox_replace(uint64_t id, const char *origin, const uint8_t *short_message,
    size_t length, uint8_t registered_delivery)
{
	struct outbox_message_record message;
	struct outbox_part_record part;
	struct outbox_pending *pending;
	uint8_t key[OUTBOX_PART_KEY_LENGTH], *buffer;
	const void *value;
	size_t value_length;
	uint32_t status;

	if ((status = outbox_owned_message(id, origin, &message)) !=
	    SMPP_ESME_ROK)
		return status;
	pending = outbox_pending_find(id);
	if (pending == NULL || message.part_count != 1 ||
	    pending->waiting_count != 1 || pending->inflight > 0 ||
	    length > SMPP_MAX_SHORT_MESSAGE_LENGTH)
		return SMPP_ESME_RREPLACEFAIL;
	outbox_key(id, 1, key);
	if (store_get(gateway->store, STORE_DB_PARTS, key, sizeof(key), &value,
		&value_length) != STORE_OK ||
	    value_length < sizeof(part))
		return SMPP_ESME_RSYSERR;
	memcpy(&part, value, sizeof(part));
	if (sizeof(part) + part.short_message_length + part.tlv_length >
	    value_length)
		return SMPP_ESME_RSYSERR;
	if ((buffer = malloc(sizeof(part) + length + part.tlv_length)) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	/* The TLVs stay; only the short_message octets change. */
	memcpy(buffer + sizeof(part) + length,
	    (const uint8_t *)value + sizeof(part) + part.short_message_length,
	    part.tlv_length);
	part.short_message_length = (uint16_t)length;
	part.registered_delivery = registered_delivery;
	memcpy(buffer, &part, sizeof(part));
	if (length > 0)
		memcpy(buffer + sizeof(part), short_message, length);
	if (store_put(gateway->store, STORE_DB_PARTS, key, sizeof(key), buffer,
		sizeof(part) + length + part.tlv_length, 0) != STORE_OK) {
		free(buffer);
		return SMPP_ESME_RSYSERR;
	}
	free(buffer);
	log_info(id, "outbox", "replaced", "origin=%s length=%zu",
	    message.origin, length);
	return SMPP_ESME_ROK;
}

/* ---- sending ----------------------------------------------------------- */

/* A relative SMPP validity period ("YYMMDDhhmmss000R") for the time left. */
static void
outbox_validity_period(
    uint64_t expires_us, uint64_t now_us, char *out, size_t size)
{
	uint64_t left =
	    expires_us > now_us ? (expires_us - now_us) / 1000000 : 60;
	unsigned int days, hours, minutes, seconds;

	if (left < 60)
		left = 60;
	days = (unsigned int)(left / 86400);
	if (days > 99)
		days = 99;
	hours = (unsigned int)(left % 86400 / 3600);
	minutes = (unsigned int)(left % 3600 / 60);
	seconds = (unsigned int)(left % 60);
	if (size < 17) {
		if (size > 0)
			out[0] = '\0';
		return;
	}
	/* Digits by hand: this runs for every part sent. */
	memcpy(out, "0000", 4);
	out[4] = (char)('0' + days / 10);
	out[5] = (char)('0' + days % 10);
	out[6] = (char)('0' + hours / 10);
	out[7] = (char)('0' + hours % 10);
	out[8] = (char)('0' + minutes / 10);
	out[9] = (char)('0' + minutes % 10);
	out[10] = (char)('0' + seconds / 10);
	out[11] = (char)('0' + seconds % 10);
	memcpy(out + 12, "000R", 5);
}

/* A part committed SUBMITTING never left (its link went): QUEUED again. */
static void
outbox_unsend(struct outbox_pending *pending, const struct outbox_send *send)
{
	struct outbox_message_record message;
	struct outbox_part_record part;
	uint8_t key[OUTBOX_PART_KEY_LENGTH];

	log_info(send->id, "outbox", "not-sent", "link=%s part=%u",
	    link_name(send->link), send->part);
	pending->inflight--;
	outbox_waiting_set(pending, send->part, 1);
	outbox_enqueue(pending, 1);
	if (outbox_read_message(send->id, &message, NULL, 0) != STORE_OK ||
	    outbox_read_part(send->id, send->part, &part) != STORE_OK)
		return;
	outbox_part_transition(send->id, &message, &part, send->part,
	    OUTBOX_QUEUED, OUTBOX_REASON_NOT_SENT, 0, clock_now_us());
	outbox_write_part(send->id, send->part, &part);
	outbox_write_message(send->id, &message);
	outbox_key(send->id, send->part, key);
	store_delete(gateway->store, STORE_DB_INFLIGHT, key, sizeof(key));
}

/* A part the link can never encode (too long, bad field): it fails now. */
static void
outbox_unsendable(
    struct outbox_pending *pending, const struct outbox_send *send)
{
	struct outbox_message_record message;
	struct outbox_part_record part;
	uint8_t key[OUTBOX_PART_KEY_LENGTH];

	log_warnx(send->id, "outbox", "not-encodable", "link=%s part=%u",
	    link_name(send->link), send->part);
	pending->inflight--;
	if (outbox_read_message(send->id, &message, NULL, 0) == STORE_OK &&
	    outbox_read_part(send->id, send->part, &part) == STORE_OK) {
		outbox_part_transition(send->id, &message, &part, send->part,
		    OUTBOX_FAILED, OUTBOX_REASON_NOT_ENCODABLE, 0,
		    clock_now_us());
		outbox_end_waiting_parts(pending, &message, OUTBOX_FAILED,
		    OUTBOX_REASON_SIBLING_REJECTED, clock_now_us());
		outbox_write_part(send->id, send->part, &part);
		outbox_write_message(send->id, &message);
	}
	outbox_key(send->id, send->part, key);
	store_delete(gateway->store, STORE_DB_INFLIGHT, key, sizeof(key));
	outbox_pending_settle(pending);
}

/* Sends a committed batch: every part in it is durably SUBMITTING now. */
static void
outbox_send_batch(void *arg, enum store_result result)
{
	struct outbox_batch *batch = arg;
	struct outbox_send *send;
	struct outbox_pending *pending;
	struct link_submit submit;
	struct smpp_tlv tlvs[8];
	size_t i, tlv_count, offset;
	uint64_t cookie;

	if (current_batch == batch)
		current_batch = NULL;
	for (i = 0; i < batch->count; i++) {
		send = batch->sends[i];
		reserved[outbox_link_index(send->link)]--;
		pending = outbox_pending_find(send->id);
		if (result != STORE_OK || pending == NULL) {
			/* Not durable, so not sent: the part still waits. */
			if (pending != NULL) {
				pending->inflight--;
				outbox_waiting_set(pending, send->part, 1);
				outbox_enqueue(pending, 1);
			}
			free(send);
			continue;
		}
		memset(&submit, 0, sizeof(submit));
		submit.source_addr = send->from[0] != '\0' ? send->from : NULL;
		submit.destination_addr =
		    send->to[0] == '+' ? send->to + 1 : send->to;
		if (send->flags & OUTBOX_PART_EXPLICIT_ADDRESSING) {
			/* An ESME's own addressing goes on as it was given. */
			submit.source_addr_ton = send->source_addr_ton;
			submit.source_addr_npi = send->source_addr_npi;
			submit.dest_addr_ton = send->dest_addr_ton;
			submit.dest_addr_npi = send->dest_addr_npi;
		} else {
			submit.dest_addr_ton =
			    (uint8_t)link_config(send->link)->dest_ton;
			submit.dest_addr_npi =
			    (uint8_t)link_config(send->link)->dest_npi;
		}
		submit.protocol_id = send->protocol_id;
		submit.priority_flag = send->priority_flag;
		submit.esm_class = send->esm_class;
		submit.data_coding = send->data_coding;
		submit.registered_delivery = 1;
		submit.validity_period = send->validity;
		submit.short_message = send->bytes;
		submit.short_message_length = send->short_message_length;
		tlv_count = 0;
		offset = 0;
		while (tlv_count < sizeof(tlvs) / sizeof(tlvs[0]) &&
		       smpp_tlv_next(send->bytes + send->short_message_length,
			   send->tlv_length, &offset, &tlvs[tlv_count]) == 1)
			tlv_count++;
		submit.tlvs = tlvs;
		submit.tlv_count = tlv_count;
		cookie = send->id << 8 | send->part;
		switch (link_submit(send->link, &submit, cookie)) {
		case 0:
			break;
		case -1:
			outbox_unsend(pending, send);
			break;
		default:
			outbox_unsendable(pending, send);
			break;
		}
		free(send);
	}
	free(batch->sends);
	free(batch);
	outbox_schedule();
}

/* Adds a part to the batch that goes out after this turn's commit. */
static void
outbox_batch_add(struct outbox_send *send)
{
	struct outbox_batch *batch = current_batch;

	if (batch == NULL) {
		if ((batch = calloc(1, sizeof(*batch))) == NULL)
			fatal("outbox", "out-of-memory", NULL);
		current_batch = batch;
		/* Why: a submit_sm may leave only once SUBMITTING is on disk. */
		store_after_commit(gateway->store, outbox_send_batch, batch);
	}
	if (batch->count == batch->capacity) {
		batch->capacity = batch->capacity ? batch->capacity * 2 : 64;
		batch->sends = reallocarray(
		    batch->sends, batch->capacity, sizeof(*batch->sends));
		if (batch->sends == NULL)
			fatal("outbox", "out-of-memory", NULL);
	}
	batch->sends[batch->count++] = send;
}

/* Marks one part SUBMITTING and queues its submit_sm for after the commit. */
static int
outbox_prepare_send(struct outbox_pending *pending, unsigned int number,
    struct link *link, uint64_t now_us)
{
	struct outbox_edit edit;
	struct outbox_message_record *message = &edit.message;
	struct outbox_part_record *part = &edit.part;
	struct outbox_send *send;
	size_t octets;

	if (outbox_edit_load(&edit, pending->id, number) == -1)
		return -1;
	octets = (size_t)part->short_message_length + part->tlv_length;
	if (octets > edit.part_length - sizeof(*part)) {
		outbox_edit_free(&edit);
		return -1;
	}
	if ((send = malloc(sizeof(*send) + octets)) == NULL)
		fatal("outbox", "out-of-memory", NULL);
	memset(send, 0, sizeof(*send));
	memcpy(send->bytes, edit.part_bytes + sizeof(*part), octets);
	send->link = link;
	send->id = pending->id;
	send->part = number;
	send->esm_class = part->esm_class;
	send->data_coding = part->data_coding;
	send->flags = part->flags;
	send->protocol_id = part->protocol_id;
	send->priority_flag = part->priority_flag;
	send->source_addr_ton = part->source_addr_ton;
	send->source_addr_npi = part->source_addr_npi;
	send->dest_addr_ton = part->dest_addr_ton;
	send->dest_addr_npi = part->dest_addr_npi;
	send->short_message_length = part->short_message_length;
	send->tlv_length = part->tlv_length;
	text_copy(send->to, sizeof(send->to), message->to);
	text_copy(send->from, sizeof(send->from), message->from);
	outbox_validity_period(message->expires_us, now_us, send->validity,
	    sizeof(send->validity));

	text_copy(part->link, sizeof(part->link), link_name(link));
	part->submitted_us = now_us;
	text_copy(message->link, sizeof(message->link), link_name(link));
	outbox_part_transition(pending->id, message, part, number,
	    OUTBOX_SUBMITTING, OUTBOX_REASON_SENDING, 0, now_us);
	if (outbox_edit_save(&edit) != STORE_OK ||
	    store_put(gateway->store, STORE_DB_INFLIGHT, edit.part_key,
		sizeof(edit.part_key), "", 0, 0) != STORE_OK) {
		free(send);
		return -1;
	}
	reserved[outbox_link_index(link)]++;
	pending->inflight++;
	outbox_waiting_set(pending, number, 0);
	outbox_batch_add(send);
	return 0;
}

/* Room on a link now, less what this turn already promised it. */
static size_t
outbox_link_room(struct link *link)
{
	size_t capacity = link_capacity(link);
	size_t promised = reserved[outbox_link_index(link)];

	return capacity > promised ? capacity - promised : 0;
}

/* The link a message's next part goes to: its sticky one, or failover. */
static struct link *
outbox_pick_link(struct outbox_pending *pending)
{
	size_t i;

	if (pending->link != NULL)
		return outbox_link_room(pending->link) > 0 ? pending->link
							   : NULL;
	for (i = 0; i < pending->route->link_count; i++)
		if (outbox_link_room(pending->route->links[i]) > 0)
			return pending->route->links[i];
	return NULL;
}

static void outbox_expire_message(uint64_t id, uint64_t now_us);
static void outbox_write_link_status(evutil_socket_t, short, void *);

/*
 * Hands waiting parts to links with room: round-robin over routes, one
 * message per route per round, so one busy destination cannot starve the
 * others; within a route, first come first served.
 */
static void
outbox_schedule(void)
{
	struct outbox_pending *pending;
	struct outbox_route *route;
	struct link *link;
	uint64_t now_us = clock_now_us();
	unsigned int part;
	size_t i, room;
	int progress;

	if (scheduling || stopping || route_count == 0)
		return;
	scheduling = 1;
	do {
		progress = 0;
		for (i = 0; i < route_count; i++) {
			route = routes[(route_cursor + i) % route_count];
			if ((pending = TAILQ_FIRST(&route->queue)) == NULL)
				continue;
			if (pending->expires_us <= now_us) {
				outbox_expire_message(pending->id, now_us);
				progress = 1;
				continue;
			}
			if ((link = outbox_pick_link(pending)) == NULL)
				continue;
			pending->link = link;
			room = outbox_link_room(link);
			for (part = 1; part <= pending->part_count && room > 0;
			     part++) {
				if (!outbox_waiting_test(pending, part))
					continue;
				if (outbox_prepare_send(
					pending, part, link, now_us) == -1) {
					log_warnx(pending->id, "outbox",
					    "prepare-failed", "part=%u", part);
					room = 0;
					break;
				}
				room--;
				progress = 1;
			}
			if (pending->waiting_count == 0) {
				uint8_t key[OUTBOX_KEY_LENGTH];

				outbox_dequeue(pending);
				store_encode_u64(key, pending->id);
				store_delete(gateway->store, STORE_DB_QUEUE,
				    key, sizeof(key));
			}
		}
		route_cursor++;
	} while (progress);
	scheduling = 0;
	metrics_set(metric_queue_depth, (double)queue_depth);
}

/* Forgets a message in memory once nothing of it waits or flies. */
static void
outbox_pending_settle(struct outbox_pending *pending)
{
	uint8_t key[OUTBOX_KEY_LENGTH];

	if (pending->waiting_count == 0 && pending->queued) {
		outbox_dequeue(pending);
		store_encode_u64(key, pending->id);
		store_delete(gateway->store, STORE_DB_QUEUE, key, sizeof(key));
	}
	if (pending->waiting_count == 0 && pending->inflight == 0)
		outbox_pending_remove(pending);
}

/* Every part of a message still waiting ends in state for reason. */
static void
outbox_end_waiting_parts(struct outbox_pending *pending,
    struct outbox_message_record *message, enum outbox_state state,
    enum outbox_reason reason, uint64_t now_us)
{
	struct outbox_part_record part;
	unsigned int number;

	for (number = 1; number <= pending->part_count; number++) {
		if (!outbox_waiting_test(pending, number))
			continue;
		if (outbox_read_part(pending->id, number, &part) != STORE_OK)
			continue;
		outbox_part_transition(pending->id, message, &part, number,
		    state, reason, 0, now_us);
		outbox_write_part(pending->id, number, &part);
		outbox_waiting_set(pending, number, 0);
	}
}

/* Validity ran out: parts never sent EXPIRE; parts in flight go on. */
static void
outbox_expire_message(uint64_t id, uint64_t now_us)
{
	struct outbox_pending *pending = outbox_pending_find(id);
	struct outbox_message_record message;

	if (pending == NULL || pending->waiting_count == 0)
		return;
	if (outbox_read_message(id, &message, NULL, 0) != STORE_OK)
		return;
	outbox_end_waiting_parts(pending, &message, OUTBOX_EXPIRED,
	    OUTBOX_REASON_VALIDITY_EXPIRED, now_us);
	outbox_write_message(id, &message);
	outbox_pending_settle(pending);
}

static void
outbox_expiry_timer(
    void *arg, uint64_t timer_id, const void *payload, size_t payload_length)
{
	if (payload_length != OUTBOX_KEY_LENGTH)
		return;
	outbox_expire_message(store_decode_u64(payload), clock_now_us());
}

/* ---- what links report ------------------------------------------------- */

static void
outbox_on_available(void *arg, struct link *link)
{
	outbox_schedule();
}

/* Loads what a response or a loss is about; -1 if it is not ours. */
static int
outbox_load_cookie(
    uint64_t cookie, struct outbox_pending **pending, struct outbox_edit *edit)
{
	uint64_t id = cookie >> 8;
	unsigned int number = (unsigned int)(cookie & 0xff);

	*pending = outbox_pending_find(id);
	if (outbox_edit_load(edit, id, number) == -1) {
		log_warnx(
		    id, "outbox", "response-for-unknown", "part=%u", number);
		return -1;
	}
	if (edit->part.state != OUTBOX_SUBMITTING) {
		log_warnx(id, "outbox", "response-out-of-state",
		    "part=%u state=%s", number,
		    outbox_strstate((enum outbox_state)edit->part.state));
		outbox_edit_free(edit);
		return -1;
	}
	return 0;
}

static void
outbox_on_response(void *arg, struct link *link, uint64_t cookie,
    uint32_t status, const char *message_id)
{
	struct outbox_pending *pending;
	struct outbox_edit edit;
	struct outbox_message_record *message = &edit.message;
	struct outbox_part_record *part = &edit.part;
	uint64_t id = cookie >> 8, now_us = clock_now_us();
	unsigned int number = (unsigned int)(cookie & 0xff);

	if (outbox_load_cookie(cookie, &pending, &edit) == -1)
		return;
	store_delete(gateway->store, STORE_DB_INFLIGHT, edit.part_key,
	    sizeof(edit.part_key));
	if (pending != NULL && pending->inflight > 0)
		pending->inflight--;
	part->responded_us = now_us;
	part->submit_status = status;
	if (status == SMPP_ESME_ROK) {
		text_copy(part->smsc_id, sizeof(part->smsc_id),
		    message_id != NULL ? message_id : "");
		outbox_part_transition(id, message, part, number,
		    OUTBOX_SUBMITTED, OUTBOX_REASON_ACKNOWLEDGED, 0, now_us);
	} else if (smpp_status_is_temporary(status) && pending != NULL &&
		   message->expires_us > now_us) {
		metrics_add(metric_requeued, 1);
		outbox_part_transition(id, message, part, number, OUTBOX_QUEUED,
		    OUTBOX_REASON_THROTTLED, status, now_us);
		outbox_waiting_set(pending, number, 1);
		store_put(gateway->store, STORE_DB_QUEUE, edit.message_key,
		    sizeof(edit.message_key), "", 0, 0);
		outbox_enqueue(pending, 1);
	} else {
		outbox_part_transition(id, message, part, number,
		    OUTBOX_REJECTED, OUTBOX_REASON_SMSC_REJECTED, status,
		    now_us);
		log_info(id, "outbox", "rejected", "link=%s part=%u status=%s",
		    link_name(link), number, smpp_status_name(status));
		/* Half a message is worse than none: stop the other parts. */
		if (pending != NULL)
			outbox_end_waiting_parts(pending, message,
			    OUTBOX_REJECTED, OUTBOX_REASON_SIBLING_REJECTED,
			    now_us);
	}
	outbox_edit_save(&edit);
	if (status == SMPP_ESME_ROK && part->smsc_id[0] != '\0')
		receipt_index_part(link_name(link), part->smsc_id, id, number);
	if (pending != NULL)
		outbox_pending_settle(pending);
}

static void
outbox_on_lost(void *arg, struct link *link, uint64_t cookie, const char *why)
{
	struct outbox_pending *pending;
	struct outbox_edit edit;
	struct outbox_message_record *message = &edit.message;
	struct outbox_part_record *part = &edit.part;
	uint64_t id = cookie >> 8, now_us = clock_now_us();
	unsigned int number = (unsigned int)(cookie & 0xff);
	enum outbox_reason reason = strcmp(why, "response-timeout") == 0
					? OUTBOX_REASON_RESPONSE_TIMEOUT
					: OUTBOX_REASON_CONNECTION_LOST;

	if (outbox_load_cookie(cookie, &pending, &edit) == -1)
		return;
	store_delete(gateway->store, STORE_DB_INFLIGHT, edit.part_key,
	    sizeof(edit.part_key));
	if (pending != NULL && pending->inflight > 0)
		pending->inflight--;
	/* Sent and unanswered: it may have reached the phone. Never resend. */
	outbox_part_transition(
	    id, message, part, number, OUTBOX_UNKNOWN, reason, 0, now_us);
	log_info(id, "outbox", "unknown", "link=%s part=%u reason=%s",
	    link_name(link), number, why);
	outbox_edit_save(&edit);
	if (pending != NULL)
		outbox_pending_settle(pending);
}

static uint32_t
outbox_on_deliver(void *arg, struct link *link, const struct smpp_pdu *pdu)
{
	if (receipt_is_receipt(pdu))
		return receipt_handle(link, pdu);
	return mo_handle(link, pdu);
}

/* A receipt was matched to a part (receipt.c found it). */
void
outbox_apply_receipt(uint64_t id, unsigned int number, int message_state,
    uint32_t error_code, uint64_t now_us)
{
	struct outbox_message_record message;
	struct outbox_part_record part;

	outbox_receipt_apply(
	    id, number, message_state, error_code, now_us, &message, &part);
}

int
outbox_receipt_apply(uint64_t id, unsigned int number, int message_state,
    uint32_t error_code, uint64_t now_us,
    struct outbox_message_record *message_out,
    struct outbox_part_record *part_out)
{
	static const enum outbox_state by_receipt[] = {
	    [SMPP_MESSAGE_STATE_DELIVERED] = OUTBOX_DELIVERED,
	    [SMPP_MESSAGE_STATE_EXPIRED] = OUTBOX_EXPIRED,
	    [SMPP_MESSAGE_STATE_DELETED] = OUTBOX_FAILED,
	    [SMPP_MESSAGE_STATE_UNDELIVERABLE] = OUTBOX_UNDELIVERABLE,
	    [SMPP_MESSAGE_STATE_UNKNOWN] = OUTBOX_UNKNOWN,
	    [SMPP_MESSAGE_STATE_REJECTED] = OUTBOX_REJECTED,
	};
	struct outbox_edit edit;
	struct outbox_message_record *message = &edit.message;
	struct outbox_part_record *part = &edit.part;
	enum outbox_state state = OUTBOX_STATE_NONE;

	if (outbox_edit_load(&edit, id, number) == -1)
		return -1;
	if (message_state > 0 &&
	    (size_t)message_state < sizeof(by_receipt) / sizeof(by_receipt[0]))
		state = by_receipt[message_state];
	part->receipt_state = (uint8_t)message_state;
	part->receipt_error = error_code;
	part->receipt_us = now_us;
	/* ENROUTE and ACCEPTED are news, not an end: the part stays put. */
	if (state != OUTBOX_STATE_NONE && !state_is_final[part->state])
		outbox_part_transition(id, message, part, number, state,
		    OUTBOX_REASON_RECEIPT, error_code, now_us);
	else
		outbox_history_add(message, now_us,
		    (enum outbox_state)part->state, number,
		    OUTBOX_REASON_RECEIPT, error_code);
	outbox_edit_save(&edit);
	outbox_notify(id, message, number, part);
	*message_out = *message;
	*part_out = *part;
	return 0;
}

/* ---- start-up and stop ------------------------------------------------- */

/* Every key of db (of key_length bytes), in a 9-byte-per-key array. */
static uint8_t (*outbox_collect_keys(
    enum store_db db, size_t key_length, size_t *count))[OUTBOX_PART_KEY_LENGTH]
{
	struct store_cursor *cursor;
	uint8_t(*keys)[OUTBOX_PART_KEY_LENGTH] = NULL;
	const void *key, *value;
	size_t found_length, value_length, capacity = 0;
	enum store_result result;

	*count = 0;
	if (store_cursor_open(gateway->store, db, &cursor) != STORE_OK)
		return NULL;
	for (result = store_cursor_seek(
		 cursor, NULL, 0, &key, &found_length, &value, &value_length);
	     result == STORE_OK; result = store_cursor_next(cursor, &key,
				     &found_length, &value, &value_length)) {
		if (found_length != key_length)
			continue;
		if (*count == capacity) {
			capacity = capacity ? capacity * 2 : 256;
			keys = reallocarray(keys, capacity, sizeof(*keys));
			if (keys == NULL)
				fatal("outbox", "out-of-memory", NULL);
		}
		memcpy(keys[(*count)++], key, key_length);
	}
	store_cursor_close(cursor);
	return keys;
}

/*
 * After a crash: parts left SUBMITTING were maybe sent and become UNKNOWN
 * (never resent); messages in the queue index wait again in memory.
 */
static void
outbox_recover(void)
{
	struct outbox_message_record message;
	struct outbox_part_record part;
	struct outbox_pending *pending;
	size_t keys_count, i;
	uint8_t(*keys)[OUTBOX_PART_KEY_LENGTH], part_key[9];
	uint64_t id, now_us = clock_now_us(), unknown = 0, requeued = 0;
	unsigned int number;

	/* Collect first: the writes below would move a live cursor. */
	keys = outbox_collect_keys(
	    STORE_DB_INFLIGHT, OUTBOX_PART_KEY_LENGTH, &keys_count);
	for (i = 0; i < keys_count; i++) {
		id = store_decode_u64(keys[i]);
		number = keys[i][8];
		store_delete(gateway->store, STORE_DB_INFLIGHT, keys[i],
		    OUTBOX_PART_KEY_LENGTH);
		if (outbox_read_message(id, &message, NULL, 0) != STORE_OK ||
		    outbox_read_part(id, number, &part) != STORE_OK ||
		    part.state != OUTBOX_SUBMITTING)
			continue;
		outbox_part_transition(id, &message, &part, number,
		    OUTBOX_UNKNOWN, OUTBOX_REASON_CRASH_RECOVERY, 0, now_us);
		outbox_write_part(id, number, &part);
		outbox_write_message(id, &message);
		unknown++;
	}

	free(keys);
	keys =
	    outbox_collect_keys(STORE_DB_QUEUE, OUTBOX_KEY_LENGTH, &keys_count);
	for (i = 0; i < keys_count; i++) {
		id = store_decode_u64(keys[i]);
		if (outbox_read_message(id, &message, NULL, 0) != STORE_OK)
			continue;
		pending = outbox_pending_add(id);
		pending->expires_us = message.expires_us;
		pending->part_count = message.part_count;
		pending->route =
		    (message.flags & OUTBOX_MESSAGE_FIXED_ROUTE)
			? outbox_route_for_link(message.link)
			: outbox_route_for(message.to[0] == '+' ? message.to + 1
								: message.to);
		for (number = 1; number <= message.part_count; number++) {
			outbox_key(id, number, part_key);
			if (outbox_read_part(id, number, &part) == STORE_OK &&
			    part.state == OUTBOX_QUEUED)
				outbox_waiting_set(pending, number, 1);
		}
		if (pending->route == NULL) {
			/* Its links are gone from the config: it cannot go. */
			outbox_end_waiting_parts(pending, &message,
			    OUTBOX_FAILED, OUTBOX_REASON_NOT_SENT, now_us);
			outbox_write_message(id, &message);
			pending->route = NULL;
			store_delete(gateway->store, STORE_DB_QUEUE, keys[i],
			    OUTBOX_KEY_LENGTH);
			outbox_pending_remove(pending);
			continue;
		}
		if (message.link[0] != '\0' &&
		    message.part_states[OUTBOX_SUBMITTED] +
			    message.part_states[OUTBOX_UNKNOWN] >
			0)
			pending->link = link_find(message.link);
		if (pending->waiting_count == 0) {
			store_delete(gateway->store, STORE_DB_QUEUE, keys[i],
			    OUTBOX_KEY_LENGTH);
			outbox_pending_remove(pending);
			continue;
		}
		/* A deferred message waits for its wake-up row (still there). */
		pending->not_before_us = message.not_before_us;
		if (message.not_before_us <= now_us)
			outbox_enqueue(pending, 0);
		requeued++;
	}
	free(keys);
	log_info(0, "outbox", "recovered", "unknown=%llu queued=%llu",
	    (unsigned long long)unknown, (unsigned long long)requeued);
	metrics_add(
	    metrics_counter("nudge_outbox_recovered_unknown_total", NULL,
		"Parts found SUBMITTING at start-up, now UNKNOWN."),
	    (double)unknown);
}

void
outbox_init(struct event_base *base, const struct config *config)
{
	static const struct link_events events = {
	    .available = outbox_on_available,
	    .response = outbox_on_response,
	    .lost = outbox_on_lost,
	    .deliver = outbox_on_deliver,
	};
	char labels[64];
	size_t i;

	outbox_config = config;
	if (config->link_count > OUTBOX_MAX_LINKS)
		fatalx("outbox", "too-many-links", "count=%zu max=%d",
		    config->link_count, OUTBOX_MAX_LINKS);
	metric_accepted = metrics_counter("nudge_outbox_accepted_total", NULL,
	    "Messages accepted into the outbox.");
	metric_requeued = metrics_counter("nudge_outbox_requeued_total", NULL,
	    "Parts put back in the queue after a temporary refusal.");
	metric_queue_depth = metrics_gauge("nudge_outbox_queue_depth", NULL,
	    "Messages with parts waiting to be sent.");
	metric_optout_refused =
	    metrics_counter("nudge_outbox_optout_refused_total", NULL,
		"Marketing messages refused because the number opted out.");
	for (i = OUTBOX_DELIVERED; i < OUTBOX_STATE_COUNT; i++) {
		snprintf(
		    labels, sizeof(labels), "state=\"%s\"", state_names[i]);
		metric_final[i] = metrics_counter("nudge_outbox_final_total",
		    labels, "Messages that reached a final state.");
	}
	for (i = 0; i < OUTBOX_STATE_COUNT; i++)
		if (metric_final[i] == NULL)
			metric_final[i] =
			    metrics_counter("nudge_outbox_other_total", NULL,
				"Transitions counted nowhere else.");
	timer_register(TIMER_KIND_OUTBOX_EXPIRY, outbox_expiry_timer, NULL);
	timer_register(TIMER_KIND_OUTBOX_WAKE, outbox_wake_timer, NULL);
	receipt_init(config);
	mo_init(config);
	callback_init(base);
	link_start_all(base, config, &events);
	if ((status_event =
		    evtimer_new(base, outbox_write_link_status, NULL)) == NULL)
		fatal("outbox", "out-of-memory", NULL);
}

/*
 * Recovery runs once every observer is registered (the server side wants
 * to hear of parts that became UNKNOWN in the crash), then sending starts.
 */
void
outbox_start(void)
{
	outbox_recover();
	outbox_schedule();
	outbox_write_link_status(-1, 0, NULL);
}

/* Every second: link states and counters into the store for nudgectl. */
static void
outbox_write_link_status(evutil_socket_t fd, short events, void *arg)
{
	struct timeval second = {1, 0};
	struct outbox_link_status_record record;
	struct link_stats stats;
	char key[OUTBOX_LINK_NAME_SIZE + sizeof(OUTBOX_LINK_STATUS_PREFIX)];
	size_t i;

	for (i = 0; i < link_count(); i++) {
		link_get_stats(link_get(i), &stats);
		memset(&record, 0, sizeof(record));
		record.version = OUTBOX_RECORD_VERSION;
		record.state = (uint8_t)stats.state;
		record.updated_us = clock_now_us();
		record.binds = stats.binds;
		record.reconnects = stats.reconnects;
		record.submitted = stats.submitted;
		record.acknowledged = stats.acknowledged;
		record.throttled = stats.throttled;
		record.rejected = stats.rejected;
		record.timeouts = stats.timeouts;
		record.delivered_in = stats.delivered_in;
		record.window_used = stats.window_used;
		record.window_size = stats.window_size;
		record.rate_limit = stats.rate_limit;
		record.queue_depth = queue_depth;
		snprintf(key, sizeof(key), "%s%s", OUTBOX_LINK_STATUS_PREFIX,
		    link_name(link_get(i)));
		store_put(gateway->store, STORE_DB_META, key, strlen(key),
		    &record, sizeof(record), 0);
	}
	if (status_event != NULL)
		evtimer_add(status_event, &second);
}

void
outbox_free(void)
{
	size_t i;
	struct outbox_pending *pending;

	if (status_event != NULL)
		event_free(status_event);
	status_event = NULL;
	link_free_all();
	mo_free();
	for (i = 0; i < route_count; i++) {
		while ((pending = TAILQ_FIRST(&routes[i]->queue)) != NULL)
			outbox_pending_remove(pending);
		free(routes[i]);
	}
	route_count = 0;
	for (i = 0; i < pending_buckets; i++)
		while (pending_table[i] != NULL)
			outbox_pending_remove(pending_table[i]);
	free(pending_table);
	pending_table = NULL;
	pending_buckets = pending_count = 0;
	queue_depth = 0;
}

void
outbox_shutdown_begin(void *arg)
{
	stopping = 1;
	link_stop_all();
}

int
outbox_shutdown_done(void *arg)
{
	return link_all_idle();
}
