/*
 * store_timer.c - durable timers as rows of STORE_DB_TIMERS.
 *
 * Key: 16 bytes, big-endian due time (microseconds since the epoch) then
 * big-endian timer id, so LMDB's default byte order is due order and the
 * first key is the earliest timer. Value: 2-byte big-endian kind, then the
 * payload. A timer fires by being deleted in the same write transaction
 * as whatever its handler writes, so both commit together or not at all.
 */
#include <stdlib.h>
#include <string.h>

#include "nudged.h"

#define TIMER_KEY_SIZE    16
#define TIMER_KIND_SIZE   2
#define INLINE_VALUE_SIZE 256 /* payloads this small need no allocation */

static void
encode_key(
    unsigned char key[TIMER_KEY_SIZE], uint64_t due_us, uint64_t timer_id)
{
	store_encode_u64(key, due_us);
	store_encode_u64(key + 8, timer_id);
}

/* Checks a row's shape; a malformed row is logged and reported as 0. */
static int
valid_row(const void *key, size_t key_length, size_t value_length)
{
	if (key_length == TIMER_KEY_SIZE && value_length >= TIMER_KIND_SIZE)
		return 1;
	log_warnx(0, "timer", "row-corrupt", "key_length=%zu value_length=%zu",
	    key_length, value_length);
	return 0;
}

enum store_result
store_timer_add(struct store *store, uint64_t due_us, uint16_t kind,
    const void *payload, size_t payload_length, uint64_t *timer_id)
{
	unsigned char key[TIMER_KEY_SIZE], inline_value[INLINE_VALUE_SIZE];
	unsigned char *value = inline_value;
	enum store_result result = STORE_ERROR;
	size_t value_length;
	uint64_t id;

	if (payload_length > SIZE_MAX - TIMER_KIND_SIZE)
		return STORE_ERROR;
	value_length = TIMER_KIND_SIZE + payload_length;
	if (value_length > sizeof(inline_value) &&
	    (value = malloc(value_length)) == NULL) {
		log_warnx(0, "timer", "add-failed", "error=out-of-memory");
		return STORE_ERROR;
	}
	if ((id = store_sequence_next(store, STORE_SEQUENCE_TIMER)) == 0)
		goto done;
	encode_key(key, due_us, id);
	value[0] = (unsigned char)(kind >> 8);
	value[1] = (unsigned char)(kind & 0xff);
	if (payload_length > 0)
		memcpy(value + TIMER_KIND_SIZE, payload, payload_length);
	/* Ids never repeat, so an existing row would be a bug, not a race. */
	result = store_put(store, STORE_DB_TIMERS, key, sizeof(key), value,
	    value_length, STORE_PUT_NO_OVERWRITE);
	if (result == STORE_OK && timer_id != NULL)
		*timer_id = id;
done:
	if (value != inline_value)
		free(value);
	return result;
}

enum store_result
store_timer_cancel(struct store *store, uint64_t due_us, uint64_t timer_id)
{
	unsigned char key[TIMER_KEY_SIZE];

	encode_key(key, due_us, timer_id);
	return store_delete(store, STORE_DB_TIMERS, key, sizeof(key));
}

enum store_result
store_timer_earliest(struct store *store, uint64_t *due_us)
{
	struct store_cursor *cursor;
	enum store_result result;
	const void *key;
	size_t key_length, value_length;

	if ((result = store_cursor_open(store, STORE_DB_TIMERS, &cursor)) !=
	    STORE_OK)
		return result;
	result = store_cursor_seek(
	    cursor, NULL, 0, &key, &key_length, NULL, &value_length);
	if (result == STORE_OK) {
		if (valid_row(key, key_length, value_length))
			*due_us = store_decode_u64(key);
		else
			result = STORE_ERROR;
	}
	store_cursor_close(cursor);
	return result;
}

size_t
store_timer_drain(struct store *store, uint64_t now_us, size_t max,
    store_timer_fn fn, void *arg)
{
	unsigned char key[TIMER_KEY_SIZE], *payload = NULL, *grown;
	struct store_cursor *cursor = NULL;
	const void *found_key, *value;
	size_t drained = 0, key_length, value_length, payload_length;
	size_t capacity = 0;
	uint64_t due_us, timer_id;
	uint16_t kind;

	if (store_cursor_open(store, STORE_DB_TIMERS, &cursor) != STORE_OK)
		return 0;
	while (drained < max) {
		/*
		 * Always from the first row again: the row just handed out
		 * is gone, and the handler may have added an earlier one.
		 */
		if (store_cursor_seek(cursor, NULL, 0, &found_key, &key_length,
			&value, &value_length) != STORE_OK)
			break;
		if (!valid_row(found_key, key_length, value_length))
			break;
		memcpy(key, found_key, sizeof(key));
		due_us = store_decode_u64(key);
		if (due_us > now_us)
			break;
		timer_id = store_decode_u64(key + 8);
		kind = (uint16_t)(((const unsigned char *)value)[0] << 8 |
				  ((const unsigned char *)value)[1]);
		/* Why copy: the handler's writes may move or reuse the page. */
		payload_length = value_length - TIMER_KIND_SIZE;
		if (payload_length > capacity) {
			if ((grown = realloc(payload, payload_length)) ==
			    NULL) {
				log_warnx(timer_id, "timer", "drain-failed",
				    "error=out-of-memory");
				break;
			}
			payload = grown;
			capacity = payload_length;
		}
		if (payload_length > 0)
			memcpy(payload,
			    (const unsigned char *)value + TIMER_KIND_SIZE,
			    payload_length);
		/* Deleted before handled: a failed delete fires nothing. */
		if (store_delete(store, STORE_DB_TIMERS, key, sizeof(key)) !=
		    STORE_OK)
			break;
		drained++;
		fn(arg, timer_id, due_us, kind, payload, payload_length);
	}
	store_cursor_close(cursor);
	free(payload);
	return drained;
}
