/*
 * smpp_reassembly.c - puts long MO messages back together. Parts arrive in
 * any order, interleaved across senders; a pending message is keyed by
 * source, destination, reference and total, found through a hash table and
 * kept on a list in arrival order of its first part, which is also timeout
 * order and eviction order.
 *
 * Memory is bounded: at most max_messages pending and max_bytes held
 * (payload plus per-message bookkeeping); when a new part would exceed a
 * bound the oldest messages are handed to the caller as evicted. Every
 * message leaves exactly once through the deliver callback: complete, timed
 * out, evicted or flushed, never silently dropped (except by _free()).
 * The concatenation buffer handed to the callback is grown when parts are
 * stored, so delivering never allocates and never fails.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smpp.h"

#define BUCKETS_MIN 16
#define BUCKETS_MAX (1u << 20)

struct stored_part {
	uint8_t *data; /* NULL when the part is empty or missing */
	size_t length;
};

struct pending_message {
	struct pending_message *hash_next;
	struct pending_message *older;
	struct pending_message *newer;
	uint32_t hash;
	uint64_t first_seen_us;
	size_t charge; /* octets counted in bytes */
	size_t payload_length;
	uint16_t reference;
	uint8_t total;
	uint8_t received;
	uint8_t data_coding;
	uint8_t present[32];
	char source[SMPP_REASSEMBLY_ADDRESS_MAX + 1];
	char destination[SMPP_REASSEMBLY_ADDRESS_MAX + 1];
	struct stored_part part[]; /* total entries */
};

struct smpp_reassembly {
	struct smpp_reassembly_limits limits;
	smpp_reassembly_deliver_fn *deliver;
	void *arg;
	struct pending_message **buckets;
	size_t bucket_mask;
	struct pending_message *oldest;
	struct pending_message *newest;
	size_t pending;
	size_t bytes;
	uint8_t *scratch; /* concatenation buffer */
	size_t scratch_capacity;
	uint64_t completed;
	uint64_t timed_out;
	uint64_t evicted;
	uint64_t duplicates;
};

/* Bookkeeping octets a message of total parts is charged on creation. */
static size_t
message_overhead(uint8_t total)
{
	return sizeof(struct pending_message) +
	       (size_t)total * sizeof(struct stored_part);
}

/* FNV-1a over the key: both addresses, reference and total. */
static uint32_t
key_hash(const char *source, const char *destination, uint16_t reference,
    uint8_t total)
{
	uint32_t hash = 2166136261u;
	const unsigned char *p;
	uint8_t tail[3] = {
	    (uint8_t)(reference >> 8), (uint8_t)reference, total};
	size_t i;

	for (p = (const unsigned char *)source; *p != '\0'; p++)
		hash = (hash ^ *p) * 16777619u;
	hash = (hash ^ 0xFF) * 16777619u; /* separates the addresses */
	for (p = (const unsigned char *)destination; *p != '\0'; p++)
		hash = (hash ^ *p) * 16777619u;
	for (i = 0; i < sizeof(tail); i++)
		hash = (hash ^ tail[i]) * 16777619u;
	return hash;
}

/* Finds the pending message a part belongs to, or NULL. */
static struct pending_message *
message_find(const struct smpp_reassembly *reassembly, uint32_t hash,
    const struct smpp_reassembly_part *part)
{
	struct pending_message *message;

	message = reassembly->buckets[hash & reassembly->bucket_mask];
	for (; message != NULL; message = message->hash_next) {
		if (message->hash == hash &&
		    message->reference == part->reference &&
		    message->total == part->total &&
		    strcmp(message->source, part->source) == 0 &&
		    strcmp(message->destination, part->destination) == 0)
			return message;
	}
	return NULL;
}

static int
part_present(const struct pending_message *message, uint8_t seqnum)
{
	return (message->present[(seqnum - 1) / 8] >> ((seqnum - 1) % 8)) & 1;
}

/* Unlinks a message from the table and the age list, and frees it. */
static void
message_remove(
    struct smpp_reassembly *reassembly, struct pending_message *message)
{
	struct pending_message **link;
	unsigned i;

	link = &reassembly->buckets[message->hash & reassembly->bucket_mask];
	while (*link != message)
		link = &(*link)->hash_next;
	*link = message->hash_next;

	if (message->older != NULL)
		message->older->newer = message->newer;
	else
		reassembly->oldest = message->newer;
	if (message->newer != NULL)
		message->newer->older = message->older;
	else
		reassembly->newest = message->older;

	for (i = 0; i < message->total; i++)
		free(message->part[i].data);
	reassembly->bytes -= message->charge;
	reassembly->pending--;
	free(message);
}

/*
 * Hands a message to the caller, its present parts concatenated in order,
 * then forgets it. The scratch buffer already has room (see part_store).
 */
static void
message_deliver(struct smpp_reassembly *reassembly,
    struct pending_message *message, enum smpp_reassembly_reason reason)
{
	struct smpp_reassembly_message out;
	size_t i, length = 0;

	for (i = 0; i < message->total; i++) {
		if (message->part[i].length == 0)
			continue;
		memcpy(reassembly->scratch + length, message->part[i].data,
		    message->part[i].length);
		length += message->part[i].length;
	}
	memset(&out, 0, sizeof(out));
	out.reason = reason;
	out.source = message->source;
	out.destination = message->destination;
	out.reference = message->reference;
	out.total = message->total;
	out.received = message->received;
	out.data_coding = message->data_coding;
	memcpy(out.present, message->present, sizeof(out.present));
	out.first_seen_us = message->first_seen_us;
	out.payload = length > 0 ? reassembly->scratch : NULL;
	out.length = length;
	reassembly->deliver(reassembly->arg, &out);
	message_remove(reassembly, message);
}

/* Evicts the oldest message other than keep; 0 if there is none. */
static int
evict_oldest(
    struct smpp_reassembly *reassembly, const struct pending_message *keep)
{
	struct pending_message *victim = reassembly->oldest;

	if (victim != NULL && victim == keep)
		victim = victim->newer;
	if (victim == NULL)
		return 0;
	reassembly->evicted++;
	message_deliver(reassembly, victim, SMPP_REASSEMBLY_EVICTED);
	return 1;
}

/* Evicts old messages (never keep) until need more octets fit. */
static int
make_room(struct smpp_reassembly *reassembly, size_t need,
    const struct pending_message *keep)
{
	while (reassembly->bytes + need > reassembly->limits.max_bytes)
		if (!evict_oldest(reassembly, keep))
			return 0;
	return 1;
}

/* Grows the concatenation buffer to at least length octets. */
static int
scratch_reserve(struct smpp_reassembly *reassembly, size_t length)
{
	uint8_t *grown;
	size_t capacity = reassembly->scratch_capacity;

	if (length <= capacity)
		return 1;
	if (capacity == 0)
		capacity = 256;
	while (capacity < length)
		capacity *= 2;
	if (capacity > reassembly->limits.max_bytes)
		capacity = length > reassembly->limits.max_bytes
			       ? length
			       : reassembly->limits.max_bytes;
	if ((grown = realloc(reassembly->scratch, capacity)) == NULL)
		return 0;
	reassembly->scratch = grown;
	reassembly->scratch_capacity = capacity;
	return 1;
}

/* Creates an empty pending message, newest in the age list. */
static struct pending_message *
message_create(struct smpp_reassembly *reassembly, uint32_t hash,
    const struct smpp_reassembly_part *part, uint64_t now_us)
{
	struct pending_message *message;
	size_t bucket = hash & reassembly->bucket_mask;

	message = calloc(1, message_overhead(part->total));
	if (message == NULL)
		return NULL;
	message->hash = hash;
	message->first_seen_us = now_us;
	message->charge = message_overhead(part->total);
	message->reference = part->reference;
	message->total = part->total;
	message->data_coding = part->data_coding;
	strcpy(message->source, part->source);
	strcpy(message->destination, part->destination);

	message->hash_next = reassembly->buckets[bucket];
	reassembly->buckets[bucket] = message;
	message->older = reassembly->newest;
	if (reassembly->newest != NULL)
		reassembly->newest->newer = message;
	else
		reassembly->oldest = message;
	reassembly->newest = message;
	reassembly->pending++;
	reassembly->bytes += message->charge;
	return message;
}

/* Rejects parts that cannot belong to any message. */
static int
part_valid(const struct smpp_reassembly_part *part)
{
	if (part->source == NULL || part->destination == NULL)
		return 0;
	if (strnlen(part->source, SMPP_REASSEMBLY_ADDRESS_MAX + 1) >
		SMPP_REASSEMBLY_ADDRESS_MAX ||
	    strnlen(part->destination, SMPP_REASSEMBLY_ADDRESS_MAX + 1) >
		SMPP_REASSEMBLY_ADDRESS_MAX)
		return 0;
	if (part->total == 0 || part->seqnum == 0 || part->seqnum > part->total)
		return 0;
	return part->payload != NULL || part->length == 0;
}

struct smpp_reassembly *
smpp_reassembly_new(const struct smpp_reassembly_limits *limits,
    smpp_reassembly_deliver_fn *deliver, void *arg)
{
	struct smpp_reassembly *reassembly;
	size_t buckets = BUCKETS_MIN;

	if (limits == NULL || deliver == NULL || limits->max_messages == 0 ||
	    limits->max_bytes == 0)
		return NULL;
	while (buckets < limits->max_messages && buckets < BUCKETS_MAX)
		buckets *= 2;
	if ((reassembly = calloc(1, sizeof(*reassembly))) == NULL)
		return NULL;
	reassembly->buckets = calloc(buckets, sizeof(*reassembly->buckets));
	if (reassembly->buckets == NULL) {
		free(reassembly);
		return NULL;
	}
	reassembly->bucket_mask = buckets - 1;
	reassembly->limits = *limits;
	reassembly->deliver = deliver;
	reassembly->arg = arg;
	return reassembly;
}

void
smpp_reassembly_free(struct smpp_reassembly *reassembly)
{
	if (reassembly == NULL)
		return;
	while (reassembly->oldest != NULL)
		message_remove(reassembly, reassembly->oldest);
	free(reassembly->buckets);
	free(reassembly->scratch);
	free(reassembly);
}

/*
 * Order matters: expire first, so a late part of a timed-out message starts
 * a new one; make room before allocating, so the bounds hold at every
 * return; reserve the concatenation buffer before the part counts as
 * stored, so a completed message can always be delivered.
 */
int
smpp_reassembly_add(struct smpp_reassembly *reassembly,
    const struct smpp_reassembly_part *part, uint64_t now_us)
{
	struct pending_message *message;
	struct stored_part *slot;
	uint8_t *data = NULL;
	uint32_t hash;

	if (!part_valid(part))
		return SMPP_REASSEMBLY_ERR_INVALID;
	if (part->length > reassembly->limits.max_bytes ||
	    message_overhead(part->total) + part->length >
		reassembly->limits.max_bytes)
		return SMPP_REASSEMBLY_ERR_TOO_LARGE;
	smpp_reassembly_expire(reassembly, now_us);

	hash = key_hash(
	    part->source, part->destination, part->reference, part->total);
	message = message_find(reassembly, hash, part);
	if (message != NULL && part_present(message, part->seqnum)) {
		reassembly->duplicates++;
		return SMPP_REASSEMBLY_DUPLICATE;
	}
	if (message != NULL && !make_room(reassembly, part->length, message)) {
		/* Only this message stands in the way: it goes, we restart. */
		reassembly->evicted++;
		message_deliver(reassembly, message, SMPP_REASSEMBLY_EVICTED);
		message = NULL;
	}
	if (message == NULL) {
		while (reassembly->pending >= reassembly->limits.max_messages)
			evict_oldest(reassembly, NULL);
		make_room(reassembly,
		    message_overhead(part->total) + part->length, NULL);
	}

	if (part->length > 0) {
		if ((data = malloc(part->length)) == NULL)
			return SMPP_REASSEMBLY_ERR_NO_MEMORY;
		memcpy(data, part->payload, part->length);
	}
	if (message == NULL && (message = message_create(
				    reassembly, hash, part, now_us)) == NULL) {
		free(data);
		return SMPP_REASSEMBLY_ERR_NO_MEMORY;
	}
	if (!scratch_reserve(
		reassembly, message->payload_length + part->length)) {
		free(data);
		if (message->received == 0)
			message_remove(reassembly, message);
		return SMPP_REASSEMBLY_ERR_NO_MEMORY;
	}

	slot = &message->part[part->seqnum - 1];
	slot->data = data;
	slot->length = part->length;
	message->present[(part->seqnum - 1) / 8] |=
	    (uint8_t)(1u << ((part->seqnum - 1) % 8));
	message->received++;
	message->payload_length += part->length;
	message->charge += part->length;
	reassembly->bytes += part->length;

	if (message->received < message->total)
		return SMPP_REASSEMBLY_STORED;
	reassembly->completed++;
	message_deliver(reassembly, message, SMPP_REASSEMBLY_COMPLETE);
	return SMPP_REASSEMBLY_COMPLETED;
}

size_t
smpp_reassembly_expire(struct smpp_reassembly *reassembly, uint64_t now_us)
{
	struct pending_message *oldest;
	size_t count = 0;

	while (
	    (oldest = reassembly->oldest) != NULL &&
	    now_us >= oldest->first_seen_us &&
	    now_us - oldest->first_seen_us >= reassembly->limits.timeout_us) {
		reassembly->timed_out++;
		message_deliver(reassembly, oldest, SMPP_REASSEMBLY_TIMED_OUT);
		count++;
	}
	return count;
}

size_t
smpp_reassembly_flush(struct smpp_reassembly *reassembly)
{
	size_t count = 0;

	while (reassembly->oldest != NULL) {
		message_deliver(
		    reassembly, reassembly->oldest, SMPP_REASSEMBLY_FLUSHED);
		count++;
	}
	return count;
}

int
smpp_reassembly_next_deadline(
    const struct smpp_reassembly *reassembly, uint64_t *deadline_us)
{
	uint64_t first;

	if (reassembly->oldest == NULL)
		return 0;
	first = reassembly->oldest->first_seen_us;
	if (reassembly->limits.timeout_us > UINT64_MAX - first)
		*deadline_us = UINT64_MAX;
	else
		*deadline_us = first + reassembly->limits.timeout_us;
	return 1;
}

void
smpp_reassembly_get_stats(const struct smpp_reassembly *reassembly,
    struct smpp_reassembly_stats *stats)
{
	stats->pending = reassembly->pending;
	stats->bytes = reassembly->bytes;
	stats->completed = reassembly->completed;
	stats->timed_out = reassembly->timed_out;
	stats->evicted = reassembly->evicted;
	stats->duplicates = reassembly->duplicates;
}
