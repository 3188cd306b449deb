/*
 * test_store.c - the LMDB store against real LMDB in a mkdtemp() directory:
 * put/get/delete, cursor order, group commit, read-your-writes, after-commit
 * order and results (also of a failed commit), the end-of-turn commit in a
 * real event loop, map growth with replay, a read-only reader in another
 * process, and durable sequences across reopen and crash.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>

#include "nudged.h"

struct fixture {
	char path[64];
	struct store *store;
};

static struct store *
open_store(const char *path, size_t initial_map_size, int read_only)
{
	struct store_options options;

	memset(&options, 0, sizeof(options));
	options.path = path;
	options.initial_map_size = initial_map_size;
	options.read_only = read_only;
	return store_open(&options);
}

static int
setup(void **state)
{
	struct fixture *fixture;

	fixture = calloc(1, sizeof(*fixture));
	assert_non_null(fixture);
	strcpy(fixture->path, "/tmp/nudge-test-store-XXXXXX");
	assert_non_null(mkdtemp(fixture->path));
	fixture->store = open_store(fixture->path, 0, 0);
	assert_non_null(fixture->store);
	*state = fixture;
	return 0;
}

static void
remove_files(const char *path)
{
	char file[128];

	snprintf(file, sizeof(file), "%s/data.mdb", path);
	unlink(file);
	snprintf(file, sizeof(file), "%s/lock.mdb", path);
	unlink(file);
}

static int
teardown(void **state)
{
	struct fixture *fixture = *state;

	store_close(fixture->store);
	remove_files(fixture->path);
	assert_int_equal(rmdir(fixture->path), 0);
	free(fixture);
	return 0;
}

static void
reopen(struct fixture *fixture, size_t initial_map_size)
{
	store_close(fixture->store);
	fixture->store = open_store(fixture->path, initial_map_size, 0);
	assert_non_null(fixture->store);
}

static void
put_string_in(
    struct store *store, enum store_db db, const char *key, const char *value)
{
	assert_int_equal(
	    store_put(store, db, key, strlen(key), value, strlen(value), 0),
	    STORE_OK);
}

static void
put_string(struct store *store, const char *key, const char *value)
{
	put_string_in(store, STORE_DB_META, key, value);
}

/* Asserts key holds exactly value. */
static void
assert_value(struct store *store, const char *key, const char *expected)
{
	const void *value;
	size_t length;

	assert_int_equal(
	    store_get(store, STORE_DB_META, key, strlen(key), &value, &length),
	    STORE_OK);
	assert_int_equal(length, strlen(expected));
	assert_memory_equal(value, expected, length);
}

static void
assert_absent(struct store *store, const char *key)
{
	const void *value;
	size_t length;

	assert_int_equal(
	    store_get(store, STORE_DB_META, key, strlen(key), &value, &length),
	    STORE_NOT_FOUND);
}

static void
test_put_get_delete(void **state)
{
	struct fixture *fixture = *state;
	struct store *store = fixture->store;
	const unsigned char binary[] = {0x00, 0xff, 0x00, 0x7f};
	const void *value;
	size_t length;

	put_string(store, "alpha", "one");
	assert_int_equal(store_put(store, STORE_DB_TIMERS, binary,
			     sizeof(binary), binary, sizeof(binary), 0),
	    STORE_OK);
	assert_int_equal(store_commit(store), STORE_OK);
	assert_value(store, "alpha", "one");
	assert_int_equal(store_get(store, STORE_DB_TIMERS, binary,
			     sizeof(binary), &value, &length),
	    STORE_OK);
	assert_int_equal(length, 4);
	assert_memory_equal(value, binary, 4);
	/* Databases are separate namespaces. */
	assert_int_equal(store_get(store, STORE_DB_META, binary, sizeof(binary),
			     &value, &length),
	    STORE_NOT_FOUND);

	assert_int_equal(store_put(store, STORE_DB_META, "alpha", 5, "two", 3,
			     STORE_PUT_NO_OVERWRITE),
	    STORE_EXISTS);
	assert_value(store, "alpha", "one");
	put_string(store, "alpha", "three");
	assert_value(store, "alpha", "three");

	assert_int_equal(
	    store_delete(store, STORE_DB_META, "alpha", 5), STORE_OK);
	assert_absent(store, "alpha");
	assert_int_equal(
	    store_delete(store, STORE_DB_META, "alpha", 5), STORE_NOT_FOUND);
	assert_int_equal(store_commit(store), STORE_OK);
	assert_absent(store, "alpha");

	/* An empty value is a value. */
	assert_int_equal(
	    store_put(store, STORE_DB_META, "empty", 5, "", 0, 0), STORE_OK);
	assert_int_equal(
	    store_get(store, STORE_DB_META, "empty", 5, &value, &length),
	    STORE_OK);
	assert_int_equal(length, 0);

	/* Keys LMDB cannot hold are refused before reaching it. */
	assert_int_equal(
	    store_put(store, STORE_DB_META, "", 0, "x", 1, 0), STORE_ERROR);
	{
		char long_key[600];

		memset(long_key, 'k', sizeof(long_key));
		assert_int_equal(store_put(store, STORE_DB_META, long_key,
				     sizeof(long_key), "x", 1, 0),
		    STORE_ERROR);
	}
	/* ...and refusing them did not poison the turn. */
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(
	    store_get(store, STORE_DB_META, "empty", 5, &value, &length),
	    STORE_OK);
}

static void
test_append_flag(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;

	assert_int_equal(
	    store_put(store, STORE_DB_TIMERS, "a", 1, "1", 1, STORE_PUT_APPEND),
	    STORE_OK);
	assert_int_equal(
	    store_put(store, STORE_DB_TIMERS, "b", 1, "2", 1, STORE_PUT_APPEND),
	    STORE_OK);
	/* Out of order is a caller bug, reported as an error. */
	assert_int_equal(
	    store_put(store, STORE_DB_TIMERS, "a", 1, "3", 1, STORE_PUT_APPEND),
	    STORE_ERROR);
	assert_int_equal(store_commit(store), STORE_OK);
}

/* Walks a database (TIMERS as a plain namespace here) from the first key,
 * expecting exactly `expected` in order. */
static void
assert_order(struct store *store, const char *const *expected, size_t count)
{
	struct store_cursor *cursor;
	const void *key, *value;
	size_t i, key_length, value_length;
	enum store_result result;

	assert_int_equal(
	    store_cursor_open(store, STORE_DB_TIMERS, &cursor), STORE_OK);
	result = store_cursor_seek(
	    cursor, NULL, 0, &key, &key_length, &value, &value_length);
	for (i = 0; i < count; i++) {
		assert_int_equal(result, STORE_OK);
		assert_int_equal(key_length, strlen(expected[i]));
		assert_memory_equal(key, expected[i], key_length);
		/* Every value is its key upper-cased first letter. */
		assert_int_equal(value_length, 1);
		assert_int_equal(*(const char *)value, expected[i][0] - 32);
		result = store_cursor_next(
		    cursor, &key, &key_length, &value, &value_length);
	}
	assert_int_equal(result, STORE_NOT_FOUND);
	assert_int_equal(
	    store_cursor_next(cursor, &key, &key_length, &value, &value_length),
	    STORE_NOT_FOUND);
	store_cursor_close(cursor);
}

static void
test_cursor_order(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	static const char *const inserted[] = {
	    "delta", "alpha", "charlie", "bravo", "alphabet", "echo"};
	static const char *const sorted[] = {
	    "alpha", "alphabet", "bravo", "charlie", "delta", "echo"};
	struct store_cursor *cursor;
	const void *key, *value;
	size_t i, key_length, value_length;
	char upper[2] = {0, 0};

	for (i = 0; i < 6; i++) {
		upper[0] = (char)(inserted[i][0] - 32);
		put_string_in(store, STORE_DB_TIMERS, inserted[i], upper);
	}
	/* Inside the turn (write transaction) and after the commit. */
	assert_order(store, sorted, 6);
	assert_int_equal(store_commit(store), STORE_OK);
	assert_order(store, sorted, 6);

	assert_int_equal(
	    store_cursor_open(store, STORE_DB_TIMERS, &cursor), STORE_OK);
	assert_int_equal(store_cursor_seek(cursor, "b", 1, &key, &key_length,
			     &value, &value_length),
	    STORE_OK);
	assert_int_equal(key_length, 5);
	assert_memory_equal(key, "bravo", 5);
	assert_int_equal(store_cursor_seek(cursor, "charlie", 7, &key,
			     &key_length, &value, &value_length),
	    STORE_OK);
	assert_memory_equal(key, "charlie", 7);
	assert_int_equal(
	    store_cursor_next(cursor, &key, &key_length, NULL, NULL), STORE_OK);
	assert_memory_equal(key, "delta", 5);
	assert_int_equal(store_cursor_seek(cursor, "zulu", 4, &key, &key_length,
			     &value, &value_length),
	    STORE_NOT_FOUND);
	assert_int_equal(
	    store_cursor_next(cursor, &key, &key_length, NULL, NULL),
	    STORE_NOT_FOUND);

	/* A cursor survives a commit: it continues after its last key. */
	assert_int_equal(store_cursor_seek(
			     cursor, "bravo", 5, &key, &key_length, NULL, NULL),
	    STORE_OK);
	assert_int_equal(
	    store_delete(store, STORE_DB_TIMERS, "charlie", 7), STORE_OK);
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(
	    store_cursor_next(cursor, &key, &key_length, NULL, NULL), STORE_OK);
	assert_int_equal(key_length, 5);
	assert_memory_equal(key, "delta", 5);
	store_cursor_close(cursor);
}

static void
test_group_commit_and_reopen(void **state)
{
	struct fixture *fixture = *state;
	struct store_stats stats;
	char key[32], value[64];
	int i;

	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "record-%04d", i);
		snprintf(value, sizeof(value), "value of record %d", i);
		put_string(fixture->store, key, value);
	}
	assert_true(store_has_pending(fixture->store));
	store_get_stats(fixture->store, &stats);
	assert_int_equal(stats.commits, 0);
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	assert_false(store_has_pending(fixture->store));
	store_get_stats(fixture->store, &stats);
	assert_int_equal(stats.commits, 1);
	assert_int_equal(stats.records_committed, 1000);
	assert_int_equal(stats.commit_failures, 0);
	assert_true(stats.used_bytes > 1000 * 20);
	assert_true(stats.map_size >= stats.used_bytes);

	/* A commit with nothing written is no commit. */
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	store_get_stats(fixture->store, &stats);
	assert_int_equal(stats.commits, 1);

	reopen(fixture, 0);
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "record-%04d", i);
		snprintf(value, sizeof(value), "value of record %d", i);
		assert_value(fixture->store, key, value);
	}
	store_get_stats(fixture->store, &stats);
	assert_int_equal(stats.commits, 0);
	assert_int_equal(stats.map_size, 64 * 1024 * 1024);
}

static void
test_read_your_writes(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;

	put_string(store, "balance", "10");
	assert_int_equal(store_commit(store), STORE_OK);
	assert_value(store, "balance", "10");
	/* A snapshot read first, then a write in the same turn. */
	put_string(store, "balance", "20");
	put_string(store, "fresh", "yes");
	assert_value(store, "balance", "20");
	assert_value(store, "fresh", "yes");
	assert_int_equal(
	    store_delete(store, STORE_DB_META, "fresh", 5), STORE_OK);
	assert_absent(store, "fresh");
	assert_int_equal(store_commit(store), STORE_OK);
	assert_value(store, "balance", "20");
	assert_absent(store, "fresh");
}

struct waiter_log {
	int calls;
	int order[8];
	enum store_result results[8];
};

struct waiter {
	struct waiter_log *log;
	int number;
};

static void
record_waiter(void *arg, enum store_result result)
{
	struct waiter *waiter = arg;
	struct waiter_log *log = waiter->log;

	assert_true(log->calls < 8);
	log->order[log->calls] = waiter->number;
	log->results[log->calls] = result;
	log->calls++;
}

static void
test_after_commit_order(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct waiter_log log;
	struct waiter waiters[3];
	struct store_stats stats;
	int i;

	memset(&log, 0, sizeof(log));
	for (i = 0; i < 3; i++) {
		waiters[i].log = &log;
		waiters[i].number = i + 1;
	}
	put_string(store, "a", "1");
	store_after_commit(store, record_waiter, &waiters[0]);
	put_string(store, "b", "2");
	store_after_commit(store, record_waiter, &waiters[1]);
	store_after_commit(store, record_waiter, &waiters[2]);
	/* Nothing runs before the commit. */
	assert_int_equal(log.calls, 0);
	assert_true(store_has_pending(store));
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(log.calls, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(log.order[i], i + 1);
		assert_int_equal(log.results[i], STORE_OK);
	}

	/* With nothing written, the waiter still waits for the commit. */
	memset(&log, 0, sizeof(log));
	store_after_commit(store, record_waiter, &waiters[0]);
	assert_int_equal(log.calls, 0);
	assert_true(store_has_pending(store));
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(log.calls, 1);
	assert_int_equal(log.results[0], STORE_OK);
	store_get_stats(store, &stats);
	assert_int_equal(stats.commits, 1);
}

/* A waiter that writes and queues another waiter from inside the run. */
struct chained {
	struct store *store;
	struct waiter_log *log;
	struct waiter next;
};

static void
chaining_waiter(void *arg, enum store_result result)
{
	struct chained *chained = arg;

	chained->log->order[chained->log->calls] = 100;
	chained->log->results[chained->log->calls++] = result;
	put_string(chained->store, "chained", "later");
	store_after_commit(chained->store, record_waiter, &chained->next);
}

static void
test_after_commit_queued_by_waiter(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct waiter_log log;
	struct chained chained;

	memset(&log, 0, sizeof(log));
	chained.store = store;
	chained.log = &log;
	chained.next.log = &log;
	chained.next.number = 7;
	put_string(store, "first", "1");
	store_after_commit(store, chaining_waiter, &chained);
	assert_int_equal(store_commit(store), STORE_OK);
	/* The waiter it queued belongs to the next commit. */
	assert_int_equal(log.calls, 1);
	assert_true(store_has_pending(store));
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(log.calls, 2);
	assert_int_equal(log.order[1], 7);
	assert_value(store, "chained", "later");
}

/*
 * A commit that cannot write its pages (the file-size limit makes pwrite
 * fail with EFBIG) must tell every waiter STORE_ERROR, count a failure,
 * leave none of the turn's writes behind, and never let a sequence id be
 * handed out again.
 */
static void
test_failed_commit_tells_waiters(void **state)
{
	struct fixture *fixture = *state;
	struct store *store = fixture->store;
	struct rlimit saved, limited;
	struct waiter_log log;
	struct waiter waiters[2];
	struct store_stats stats;
	char key[32], value[1000];
	uint64_t first_id, second_id;
	void (*saved_handler)(int);
	int i;

	memset(&log, 0, sizeof(log));
	waiters[0] = (struct waiter){&log, 1};
	waiters[1] = (struct waiter){&log, 2};
	put_string(store, "settled", "yes");
	assert_int_equal(store_commit(store), STORE_OK);

	first_id = store_sequence_next(store, STORE_SEQUENCE_MESSAGE);
	assert_int_equal(first_id, 1);
	memset(value, 'v', sizeof(value));
	for (i = 0; i < 400; i++) {
		snprintf(key, sizeof(key), "big-%03d", i);
		assert_int_equal(store_put(store, STORE_DB_META, key,
				     strlen(key), value, sizeof(value), 0),
		    STORE_OK);
	}
	store_after_commit(store, record_waiter, &waiters[0]);
	store_after_commit(store, record_waiter, &waiters[1]);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	limited = saved;
	limited.rlim_cur = 64 * 1024;
	saved_handler = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &limited), 0);
	assert_int_equal(store_commit(store), STORE_ERROR);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	signal(SIGXFSZ, saved_handler);

	assert_int_equal(log.calls, 2);
	assert_int_equal(log.order[0], 1);
	assert_int_equal(log.order[1], 2);
	assert_int_equal(log.results[0], STORE_ERROR);
	assert_int_equal(log.results[1], STORE_ERROR);
	store_get_stats(store, &stats);
	assert_int_equal(stats.commits, 1);
	assert_int_equal(stats.commit_failures, 1);
	assert_absent(store, "big-000");
	assert_value(store, "settled", "yes");

	/* The store works again, and the lost id is not handed out twice. */
	second_id = store_sequence_next(store, STORE_SEQUENCE_MESSAGE);
	assert_true(second_id > first_id);
	put_string(store, "after", "ok");
	assert_int_equal(store_commit(store), STORE_OK);
	reopen(fixture, 0);
	assert_value(fixture->store, "after", "ok");
	assert_true(store_sequence_next(
			fixture->store, STORE_SEQUENCE_MESSAGE) > second_id);
}

struct loop_put {
	struct store *store;
	const char *key;
	struct waiter waiter;
	int calls_before_turn;
};

static void
put_in_callback(evutil_socket_t fd, short what, void *arg)
{
	struct loop_put *put = arg;

	put_string(put->store, put->key, "from the loop");
	store_after_commit(put->store, record_waiter, &put->waiter);
	/* Not committed while the turn runs. */
	assert_int_equal(put->waiter.log->calls, put->calls_before_turn);
}

static void
test_event_loop_turn_commits_once(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct event_base *base;
	struct event *first, *second, *third;
	struct loop_put puts[3];
	struct waiter_log log;
	struct store_stats stats;

	memset(&log, 0, sizeof(log));
	base = event_base_new();
	assert_non_null(base);
	store_attach(store, base);
	puts[0] = (struct loop_put){store, "turn-one-a", {&log, 1}, 0};
	puts[1] = (struct loop_put){store, "turn-one-b", {&log, 2}, 0};
	puts[2] = (struct loop_put){store, "turn-two", {&log, 3}, 2};
	first = event_new(base, -1, 0, put_in_callback, &puts[0]);
	second = event_new(base, -1, 0, put_in_callback, &puts[1]);
	third = event_new(base, -1, 0, put_in_callback, &puts[2]);
	assert_non_null(first);
	assert_non_null(second);
	assert_non_null(third);

	/* Two callbacks of one loop iteration: one transaction. */
	event_active(first, 0, 0);
	event_active(second, 0, 0);
	assert_int_not_equal(event_base_loop(base, EVLOOP_NONBLOCK), -1);
	store_get_stats(store, &stats);
	assert_int_equal(stats.commits, 1);
	assert_int_equal(stats.records_committed, 2);
	assert_int_equal(log.calls, 2);
	assert_int_equal(log.order[0], 1);
	assert_int_equal(log.order[1], 2);
	assert_int_equal(log.results[0], STORE_OK);
	assert_int_equal(log.results[1], STORE_OK);
	assert_false(store_has_pending(store));

	/* The next iteration is the next turn: its own commit. */
	event_active(third, 0, 0);
	assert_int_not_equal(event_base_loop(base, EVLOOP_NONBLOCK), -1);
	store_get_stats(store, &stats);
	assert_int_equal(stats.commits, 2);
	assert_int_equal(log.calls, 3);
	assert_value(store, "turn-one-a", "from the loop");
	assert_value(store, "turn-two", "from the loop");

	event_free(first);
	event_free(second);
	event_free(third);
	store_attach(store, NULL);
	event_base_free(base);
}

static void
test_map_growth_replays_turn(void **state)
{
	struct fixture *fixture = *state;
	struct store_cursor *cursor;
	struct store_stats stats;
	char key[32], value[1024];
	const void *found;
	size_t found_length;
	int i;

	/* A fresh environment takes the configured size exactly. */
	store_close(fixture->store);
	remove_files(fixture->path);
	fixture->store = open_store(fixture->path, 64 * 1024, 0);
	assert_non_null(fixture->store);
	store_get_stats(fixture->store, &stats);
	assert_int_equal(stats.map_size, 64 * 1024);
	assert_int_equal(stats.map_resizes, 0);

	put_string(fixture->store, "aa-first", "A");
	put_string(fixture->store, "aa-second", "B");
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	/* A cursor open across the growth must carry on where it was. */
	assert_int_equal(
	    store_cursor_open(fixture->store, STORE_DB_META, &cursor),
	    STORE_OK);
	assert_int_equal(store_cursor_seek(cursor, "aa-first", 8, &found,
			     &found_length, NULL, NULL),
	    STORE_OK);

	/* About 3 MiB in one turn, fifty times the initial map. */
	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "grow-%05d", i);
		memset(value, 'a' + i % 26, sizeof(value));
		memcpy(value, key, strlen(key));
		assert_int_equal(store_put(fixture->store, STORE_DB_META, key,
				     strlen(key), value, sizeof(value), 0),
		    STORE_OK);
	}
	store_get_stats(fixture->store, &stats);
	assert_true(stats.map_resizes > 0);
	assert_int_equal(
	    store_cursor_next(cursor, &found, &found_length, NULL, NULL),
	    STORE_OK);
	assert_int_equal(found_length, 9);
	assert_memory_equal(found, "aa-second", 9);
	store_cursor_close(cursor);

	assert_int_equal(store_commit(fixture->store), STORE_OK);
	store_get_stats(fixture->store, &stats);
	/* The two small records' commit, then the whole grown turn. */
	assert_int_equal(stats.commits, 2);
	assert_int_equal(stats.records_committed, 2 + 3000);
	assert_int_equal(stats.commit_failures, 0);
	assert_true(stats.map_size > 3000 * 1024);
	assert_true(stats.map_size >= stats.used_bytes);

	reopen(fixture, 64 * 1024);
	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "grow-%05d", i);
		memset(value, 'a' + i % 26, sizeof(value));
		memcpy(value, key, strlen(key));
		assert_int_equal(store_get(fixture->store, STORE_DB_META, key,
				     strlen(key), &found, &found_length),
		    STORE_OK);
		assert_int_equal(found_length, sizeof(value));
		assert_memory_equal(found, value, sizeof(value));
	}
	/* A reopen keeps the grown map, not the configured small one. */
	store_get_stats(fixture->store, &stats);
	assert_true(stats.map_size > 3000 * 1024);
}

/*
 * Past three quarters of the map, the first write of a turn grows it
 * before the transaction begins. That write's value may point into the
 * old mapping (it came from store_get()): it must be copied first.
 */
static void
test_proactive_growth_keeps_caller_bytes(void **state)
{
	struct fixture *fixture = *state;
	struct store_stats stats;
	const void *value;
	size_t length;
	char key[32], filler[1024];
	int i, turns = 0;
	uint64_t resizes;

	store_close(fixture->store);
	remove_files(fixture->path);
	fixture->store = open_store(fixture->path, 256 * 1024, 0);
	assert_non_null(fixture->store);
	memset(filler, 'f', sizeof(filler));
	put_string(fixture->store, "source", "bytes that must survive");
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	for (;;) {
		store_get_stats(fixture->store, &stats);
		if (stats.used_bytes > stats.map_size / 4 * 3)
			break;
		/* Small turns: the map crosses 3/4 before it is full. */
		for (i = 0; i < 4; i++) {
			snprintf(key, sizeof(key), "fill-%03d-%d", turns, i);
			assert_int_equal(
			    store_put(fixture->store, STORE_DB_META, key,
				strlen(key), filler, sizeof(filler), 0),
			    STORE_OK);
		}
		assert_int_equal(store_commit(fixture->store), STORE_OK);
		assert_true(++turns < 1000);
	}
	resizes = stats.map_resizes;
	assert_int_equal(store_get(fixture->store, STORE_DB_META, "source", 6,
			     &value, &length),
	    STORE_OK);
	assert_int_equal(store_put(fixture->store, STORE_DB_META, "copy", 4,
			     value, length, 0),
	    STORE_OK);
	store_get_stats(fixture->store, &stats);
	assert_int_equal(stats.map_resizes, resizes + 1);
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	assert_value(fixture->store, "copy", "bytes that must survive");
}

/* In a child process: a read-only handle beside the writer (nudgectl). */
static int
read_only_child(const char *path)
{
	struct store *reader;
	const void *value;
	size_t length;
	int status = 0;

	if ((reader = open_store(path, 0, 1)) == NULL)
		return 10;
	if (store_get(reader, STORE_DB_META, "shared", 6, &value, &length) !=
		STORE_OK ||
	    length != 9 || memcmp(value, "committed", 9) != 0)
		status = 11;
	else if (store_get(reader, STORE_DB_META, "pending", 7, &value,
		     &length) != STORE_NOT_FOUND)
		status = 12;
	else if (store_put(reader, STORE_DB_META, "x", 1, "y", 1, 0) !=
		 STORE_ERROR)
		status = 13;
	store_close(reader);
	return status;
}

static void
test_read_only_reader_beside_writer(void **state)
{
	struct fixture *fixture = *state;
	pid_t child;
	int status;

	put_string(fixture->store, "shared", "committed");
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	/* The writer holds an open write transaction meanwhile. */
	put_string(fixture->store, "pending", "not yet");

	/*
	 * Another process, as nudgectl is: LMDB forbids opening one
	 * environment twice in the same process (its POSIX locks are
	 * per process).
	 */
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(read_only_child(fixture->path));
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(store_commit(fixture->store), STORE_OK);
}

/* In a child: read, let the writer grow the map, read past the old map. */
static int
growth_reader_child(const char *path, int to_parent, int from_parent)
{
	struct store *reader;
	const void *value;
	size_t length;
	char signal_byte = 'r';
	int status = 0;

	if ((reader = open_store(path, 0, 1)) == NULL)
		return 30;
	if (store_get(reader, STORE_DB_META, "before", 6, &value, &length) !=
	    STORE_OK)
		status = 31;
	/* End the snapshot, as the loop does at the end of a turn. */
	store_commit(reader);
	if (write(to_parent, &signal_byte, 1) != 1 ||
	    read(from_parent, &signal_byte, 1) != 1)
		status = 32;
	else if (store_get(reader, STORE_DB_META, "grow-02999", 10, &value,
		     &length) != STORE_OK ||
		 length != 1024 || memcmp(value, "grow-02999", 10) != 0)
		status = 33;
	store_close(reader);
	return status;
}

static void
test_read_only_adopts_grown_map(void **state)
{
	struct fixture *fixture = *state;
	struct store_stats stats;
	int to_parent[2], to_child[2], status, i;
	char key[32], value[1024], signal_byte;
	pid_t child;

	store_close(fixture->store);
	remove_files(fixture->path);
	fixture->store = open_store(fixture->path, 64 * 1024, 0);
	assert_non_null(fixture->store);
	put_string(fixture->store, "before", "growth");
	assert_int_equal(store_commit(fixture->store), STORE_OK);

	assert_int_equal(pipe(to_parent), 0);
	assert_int_equal(pipe(to_child), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(growth_reader_child(
		    fixture->path, to_parent[1], to_child[0]));
	assert_int_equal(read(to_parent[0], &signal_byte, 1), 1);
	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "grow-%05d", i);
		memset(value, 'g', sizeof(value));
		memcpy(value, key, strlen(key));
		assert_int_equal(store_put(fixture->store, STORE_DB_META, key,
				     strlen(key), value, sizeof(value), 0),
		    STORE_OK);
	}
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	store_get_stats(fixture->store, &stats);
	assert_true(stats.map_resizes > 0);
	assert_int_equal(write(to_child[1], "g", 1), 1);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(to_parent[0]);
	close(to_parent[1]);
	close(to_child[0]);
	close(to_child[1]);
}

static void
test_read_only_refuses_writes(void **state)
{
	struct fixture *fixture = *state;
	struct waiter_log log;
	struct waiter waiter = {&log, 1};

	memset(&log, 0, sizeof(log));
	put_string(fixture->store, "kept", "value");
	store_close(fixture->store);
	fixture->store = open_store(fixture->path, 0, 1);
	assert_non_null(fixture->store);
	assert_value(fixture->store, "kept", "value");
	assert_int_equal(
	    store_put(fixture->store, STORE_DB_META, "new", 3, "x", 1, 0),
	    STORE_ERROR);
	assert_int_equal(store_delete(fixture->store, STORE_DB_META, "kept", 4),
	    STORE_ERROR);
	assert_int_equal(
	    store_sequence_next(fixture->store, STORE_SEQUENCE_TIMER), 0);
	store_after_commit(fixture->store, record_waiter, &waiter);
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	assert_int_equal(log.calls, 1);
	assert_value(fixture->store, "kept", "value");
}

static void
test_sequence_across_reopen(void **state)
{
	struct fixture *fixture = *state;
	uint64_t id, previous = 0, message;
	int i;

	for (i = 0; i < 5000; i++) {
		id = store_sequence_next(fixture->store, STORE_SEQUENCE_TIMER);
		assert_int_equal(id, previous + 1);
		previous = id;
	}
	/* Sequences are independent. */
	message = store_sequence_next(fixture->store, STORE_SEQUENCE_MESSAGE);
	assert_int_equal(message, 1);
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	reopen(fixture, 0);
	id = store_sequence_next(fixture->store, STORE_SEQUENCE_TIMER);
	assert_true(id > previous);
	previous = id;
	id = store_sequence_next(fixture->store, STORE_SEQUENCE_TIMER);
	assert_int_equal(id, previous + 1);
	assert_true(store_sequence_next(
			fixture->store, STORE_SEQUENCE_MESSAGE) > message);
	assert_int_equal(store_sequence_next(fixture->store,
			     (enum store_sequence)STORE_SEQUENCE_COUNT),
	    0);
}

/* A child takes ids, commits some work, and dies without closing. */
static void
crashing_child(const char *path, int report_fd)
{
	struct store *store;
	uint64_t id = 0;
	char key[32];
	int i;

	if ((store = open_store(path, 0, 0)) == NULL)
		_exit(20);
	for (i = 0; i < 10; i++) {
		id = store_sequence_next(store, STORE_SEQUENCE_MESSAGE);
		snprintf(
		    key, sizeof(key), "message-%llu", (unsigned long long)id);
		if (store_put(store, STORE_DB_META, key, strlen(key), "m", 1,
			0) != STORE_OK)
			_exit(21);
	}
	if (store_commit(store) != STORE_OK)
		_exit(22);
	/* More ids handed out after the commit, then the crash. */
	for (i = 0; i < 3; i++)
		id = store_sequence_next(store, STORE_SEQUENCE_MESSAGE);
	if (write(report_fd, &id, sizeof(id)) != sizeof(id))
		_exit(23);
	_exit(0);
}

static void
test_sequence_after_crash(void **state)
{
	struct fixture *fixture = *state;
	uint64_t highest = 0, id;
	int pipe_fds[2], status;
	pid_t child;

	store_close(fixture->store);
	fixture->store = NULL;
	assert_int_equal(pipe(pipe_fds), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(pipe_fds[0]);
		crashing_child(fixture->path, pipe_fds[1]);
	}
	close(pipe_fds[1]);
	assert_int_equal(
	    read(pipe_fds[0], &highest, sizeof(highest)), sizeof(highest));
	close(pipe_fds[0]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(highest, 13);

	fixture->store = open_store(fixture->path, 0, 0);
	assert_non_null(fixture->store);
	assert_value(fixture->store, "message-10", "m");
	id = store_sequence_next(fixture->store, STORE_SEQUENCE_MESSAGE);
	assert_true(id > highest);
}

/* Rss in kB of this process's mapping of PATH/data.mdb, from smaps. */
static long
map_rss_kb(const char *path)
{
	char line[512], file[128];
	FILE *smaps = fopen("/proc/self/smaps", "r");
	long rss = -1, kb;
	int in_map = 0;

	assert_non_null(smaps);
	snprintf(file, sizeof(file), "%s/data.mdb", path);
	while (fgets(line, sizeof(line), smaps) != NULL) {
		if (strchr(line, '-') != NULL && strchr(line, ':') != NULL &&
		    line[0] != ' ' && strncmp(line, "Rss:", 4) != 0 &&
		    strstr(line, " kB") == NULL) {
			line[strcspn(line, "\n")] = '\0';
			in_map = strlen(line) >= strlen(file) &&
				 strcmp(line + strlen(line) - strlen(file),
				     file) == 0;
			continue;
		}
		if (in_map && sscanf(line, "Rss: %ld kB", &kb) == 1)
			rss = kb;
	}
	fclose(smaps);
	return rss;
}

#define TRIM_RECORDS     20000
#define TRIM_VALUE_BYTES 400

/* Writes TRIM_RECORDS events, or reads each back and checks its bytes. */
static void
trim_records(struct store *store, int write)
{
	unsigned char key[8], value[TRIM_VALUE_BYTES];
	const void *stored;
	size_t length;
	uint64_t i;
	int b;

	for (i = 0; i < TRIM_RECORDS; i++) {
		for (b = 0; b < 8; b++)
			key[b] = (unsigned char)(i >> (56 - 8 * b));
		memset(value, (int)(i % 251), sizeof(value));
		if (write) {
			assert_int_equal(
			    store_put(store, STORE_DB_EVENTS, key, sizeof(key),
				value, sizeof(value), STORE_PUT_APPEND),
			    STORE_OK);
			continue;
		}
		assert_int_equal(store_get(store, STORE_DB_EVENTS, key,
				     sizeof(key), &stored, &length),
		    STORE_OK);
		assert_int_equal(length, sizeof(value));
		assert_memory_equal(stored, value, sizeof(value));
	}
	if (write)
		assert_int_equal(store_commit(store), STORE_OK);
}

static void
stop_loop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/*
 * Reading the map maps its pages into RSS; store_trim_map() lets go of
 * them and every record reads back the same. With a limit, the loop's
 * once-a-second check trims by itself.
 */
static void
test_trim_map(void **state)
{
	struct fixture *fixture = *state;
	struct store_options options;
	struct store_stats stats;
	struct event_base *base;
	struct event *stop;
	struct timeval wait = {2, 500000};
	long before, after;

	trim_records(fixture->store, 1);
	trim_records(fixture->store, 0);
	before = map_rss_kb(fixture->path);
	/* 8 MB of values, read once: most of them are mapped now. */
	assert_true(before > 4000);
	assert_int_equal(store_trim_map(fixture->store), 0);
	after = map_rss_kb(fixture->path);
	assert_true(after >= 0 && after < before / 10);
	trim_records(fixture->store, 0);
	assert_true(map_rss_kb(fixture->path) > 4000);
	store_get_stats(fixture->store, &stats);
	assert_int_equal(stats.map_trims, 1);

	/* The same store with a 1 MB limit, in a loop. */
	store_close(fixture->store);
	memset(&options, 0, sizeof(options));
	options.path = fixture->path;
	options.map_resident_limit = 1024 * 1024;
	fixture->store = store_open(&options);
	assert_non_null(fixture->store);
	base = event_base_new();
	assert_non_null(base);
	store_attach(fixture->store, base);
	trim_records(fixture->store, 0);
	assert_true(map_rss_kb(fixture->path) > 4000);
	stop = evtimer_new(base, stop_loop, base);
	assert_non_null(stop);
	assert_int_equal(evtimer_add(stop, &wait), 0);
	assert_int_not_equal(event_base_dispatch(base), -1);
	store_get_stats(fixture->store, &stats);
	assert_true(stats.map_trims >= 1);
	assert_true(stats.map_resident <= options.map_resident_limit);
	assert_true(map_rss_kb(fixture->path) < 1024);
	event_free(stop);
	store_attach(fixture->store, NULL);
	event_base_free(base);
}

static void
test_missing_directory(void **state)
{
	struct fixture *fixture = *state;
	char path[128];

	snprintf(path, sizeof(path), "%s/does-not-exist", fixture->path);
	assert_null(open_store(path, 0, 0));
	assert_null(open_store(path, 0, 1));
}

#define STORE_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    STORE_TEST(test_put_get_delete),
	    STORE_TEST(test_append_flag),
	    STORE_TEST(test_cursor_order),
	    STORE_TEST(test_group_commit_and_reopen),
	    STORE_TEST(test_read_your_writes),
	    STORE_TEST(test_after_commit_order),
	    STORE_TEST(test_after_commit_queued_by_waiter),
	    STORE_TEST(test_failed_commit_tells_waiters),
	    STORE_TEST(test_event_loop_turn_commits_once),
	    STORE_TEST(test_map_growth_replays_turn),
	    STORE_TEST(test_proactive_growth_keeps_caller_bytes),
	    STORE_TEST(test_read_only_reader_beside_writer),
	    STORE_TEST(test_read_only_adopts_grown_map),
	    STORE_TEST(test_read_only_refuses_writes),
	    STORE_TEST(test_sequence_across_reopen),
	    STORE_TEST(test_sequence_after_crash),
	    STORE_TEST(test_missing_directory),
	    STORE_TEST(test_trim_map),
	};

	log_init(1, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
