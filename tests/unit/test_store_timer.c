/*
 * test_store_timer.c - durable timers: rows drain in due order, only the
 * due ones, at most max at a time, cancel works, rows survive a reopen; and
 * timer.c in a real event loop fires a row once, with its payload, deletes
 * it in the same commit as the handler's own write, drops unknown kinds and
 * follows the test clock after timer_rearm().
 */
#include <sys/stat.h>

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
open_store(const char *path)
{
	struct store_options options;

	memset(&options, 0, sizeof(options));
	options.path = path;
	return store_open(&options);
}

static int
setup(void **state)
{
	struct fixture *fixture;

	fixture = calloc(1, sizeof(*fixture));
	assert_non_null(fixture);
	strcpy(fixture->path, "/tmp/nudge-test-timer-XXXXXX");
	assert_non_null(mkdtemp(fixture->path));
	fixture->store = open_store(fixture->path);
	assert_non_null(fixture->store);
	*state = fixture;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fixture = *state;
	char file[128];

	timer_shutdown();
	store_close(fixture->store);
	snprintf(file, sizeof(file), "%s/data.mdb", fixture->path);
	unlink(file);
	snprintf(file, sizeof(file), "%s/lock.mdb", fixture->path);
	unlink(file);
	assert_int_equal(rmdir(fixture->path), 0);
	free(fixture);
	return 0;
}

#define MAX_FIRED 16

/* What store_timer_drain() handed out, in order. */
struct fired {
	size_t count;
	uint64_t ids[MAX_FIRED];
	uint64_t due[MAX_FIRED];
	uint16_t kinds[MAX_FIRED];
	char payloads[MAX_FIRED][32];
	size_t payload_lengths[MAX_FIRED];
};

static void
record_fired(void *arg, uint64_t timer_id, uint64_t due_us, uint16_t kind,
    const void *payload, size_t payload_length)
{
	struct fired *fired = arg;
	size_t i = fired->count;

	assert_true(i < MAX_FIRED);
	assert_true(payload_length < sizeof(fired->payloads[i]));
	fired->ids[i] = timer_id;
	fired->due[i] = due_us;
	fired->kinds[i] = kind;
	memcpy(fired->payloads[i], payload, payload_length);
	fired->payloads[i][payload_length] = '\0';
	fired->payload_lengths[i] = payload_length;
	fired->count++;
}

static uint64_t
add(struct store *store, uint64_t due_us, uint16_t kind, const char *payload)
{
	uint64_t id = 0;

	assert_int_equal(
	    store_timer_add(store, due_us, kind, payload, strlen(payload), &id),
	    STORE_OK);
	assert_true(id > 0);
	return id;
}

static void
test_drain_in_due_order(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct fired fired;
	uint64_t late, early, middle, due;

	memset(&fired, 0, sizeof(fired));
	late = add(store, 3000, 7, "late");
	early = add(store, 1000, 8, "early");
	middle = add(store, 2000, 9, "middle");
	/* Ids come from the timer sequence, in allocation order. */
	assert_true(late < early && early < middle);
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(store_timer_earliest(store, &due), STORE_OK);
	assert_int_equal(due, 1000);

	assert_int_equal(
	    store_timer_drain(store, 5000, 10, record_fired, &fired), 3);
	assert_int_equal(fired.count, 3);
	assert_int_equal(fired.ids[0], early);
	assert_int_equal(fired.ids[1], middle);
	assert_int_equal(fired.ids[2], late);
	assert_int_equal(fired.due[0], 1000);
	assert_int_equal(fired.due[1], 2000);
	assert_int_equal(fired.due[2], 3000);
	assert_int_equal(fired.kinds[0], 8);
	assert_int_equal(fired.kinds[1], 9);
	assert_int_equal(fired.kinds[2], 7);
	assert_string_equal(fired.payloads[0], "early");
	assert_string_equal(fired.payloads[1], "middle");
	assert_string_equal(fired.payloads[2], "late");
	assert_int_equal(store_timer_earliest(store, &due), STORE_NOT_FOUND);
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(store_timer_earliest(store, &due), STORE_NOT_FOUND);
}

static void
test_same_due_time_by_id(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct fired fired;
	uint64_t first, second;

	memset(&fired, 0, sizeof(fired));
	first = add(store, 500, 1, "first");
	second = add(store, 500, 1, "second");
	/* Big-endian keys: a due time past 2^32 still sorts right. */
	add(store, (uint64_t)1 << 40, 1, "far");
	assert_int_equal(
	    store_timer_drain(store, 500, 10, record_fired, &fired), 2);
	assert_int_equal(fired.ids[0], first);
	assert_int_equal(fired.ids[1], second);
}

static void
test_only_due_rows_drain(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct fired fired;
	uint64_t due;

	memset(&fired, 0, sizeof(fired));
	add(store, 100, 1, "a");
	add(store, 200, 1, "b");
	add(store, 300, 1, "c");
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(
	    store_timer_drain(store, 99, 10, record_fired, &fired), 0);
	assert_int_equal(fired.count, 0);
	/* Due at or before now: 200 itself is due at 200. */
	assert_int_equal(
	    store_timer_drain(store, 200, 10, record_fired, &fired), 2);
	assert_string_equal(fired.payloads[0], "a");
	assert_string_equal(fired.payloads[1], "b");
	assert_int_equal(store_timer_earliest(store, &due), STORE_OK);
	assert_int_equal(due, 300);
}

static void
test_cancel(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct fired fired;
	uint64_t kept, cancelled;

	memset(&fired, 0, sizeof(fired));
	cancelled = add(store, 100, 1, "cancelled");
	kept = add(store, 200, 1, "kept");
	assert_int_equal(store_commit(store), STORE_OK);
	/* The key is (due, id): a wrong due time finds nothing. */
	assert_int_equal(
	    store_timer_cancel(store, 101, cancelled), STORE_NOT_FOUND);
	assert_int_equal(store_timer_cancel(store, 100, cancelled), STORE_OK);
	assert_int_equal(
	    store_timer_cancel(store, 100, cancelled), STORE_NOT_FOUND);
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(
	    store_timer_drain(store, 1000, 10, record_fired, &fired), 1);
	assert_int_equal(fired.ids[0], kept);
	assert_string_equal(fired.payloads[0], "kept");
}

static void
test_drain_max(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct fired fired;
	char payload[16];
	int i;

	memset(&fired, 0, sizeof(fired));
	for (i = 0; i < 10; i++) {
		snprintf(payload, sizeof(payload), "t%d", i);
		add(store, 100 + (uint64_t)i, 1, payload);
	}
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(
	    store_timer_drain(store, 1000, 3, record_fired, &fired), 3);
	assert_int_equal(fired.count, 3);
	assert_string_equal(fired.payloads[2], "t2");
	assert_int_equal(store_commit(store), STORE_OK);
	assert_int_equal(
	    store_timer_drain(store, 1000, 100, record_fired, &fired), 7);
	assert_int_equal(fired.count, 10);
	for (i = 0; i < 10; i++)
		assert_int_equal(fired.due[i], 100 + (uint64_t)i);
	assert_int_equal(
	    store_timer_drain(store, 1000, 100, record_fired, &fired), 0);
}

static void
test_timers_survive_reopen(void **state)
{
	struct fixture *fixture = *state;
	struct fired fired;
	uint64_t ids[3], id;
	const unsigned char binary[] = {0x00, 0x01, 0xff, 0x00};

	memset(&fired, 0, sizeof(fired));
	ids[0] = add(fixture->store, 30, 2, "thirty");
	ids[1] = add(fixture->store, 10, 2, "ten");
	assert_int_equal(store_timer_add(fixture->store, 20, 3, binary,
			     sizeof(binary), &ids[2]),
	    STORE_OK);
	/* store_close() commits what the turn wrote. */
	store_close(fixture->store);
	fixture->store = open_store(fixture->path);
	assert_non_null(fixture->store);

	assert_int_equal(
	    store_timer_drain(fixture->store, 100, 10, record_fired, &fired),
	    3);
	assert_int_equal(fired.ids[0], ids[1]);
	assert_int_equal(fired.ids[1], ids[2]);
	assert_int_equal(fired.ids[2], ids[0]);
	assert_int_equal(fired.kinds[1], 3);
	assert_int_equal(fired.payload_lengths[1], sizeof(binary));
	assert_memory_equal(fired.payloads[1], binary, sizeof(binary));
	/* A new id after the reopen never repeats an old one. */
	id = add(fixture->store, 40, 2, "new");
	assert_true(id > ids[0] && id > ids[1] && id > ids[2]);
}

/* A drain handler that writes: its write joins the drain's transaction. */
static void
writing_handler(void *arg, uint64_t timer_id, uint64_t due_us, uint16_t kind,
    const void *payload, size_t payload_length)
{
	struct store *store = arg;

	assert_int_equal(store_put(store, STORE_DB_META, "effect", 6, payload,
			     payload_length, 0),
	    STORE_OK);
}

static void
test_drain_and_effect_commit_together(void **state)
{
	struct store *store = ((struct fixture *)*state)->store;
	struct store_stats before, after;
	const void *value;
	size_t length;

	add(store, 10, 1, "done");
	assert_int_equal(store_commit(store), STORE_OK);
	store_get_stats(store, &before);
	assert_int_equal(
	    store_timer_drain(store, 10, 10, writing_handler, store), 1);
	assert_int_equal(store_commit(store), STORE_OK);
	store_get_stats(store, &after);
	/* One commit: the row's deletion and the handler's write. */
	assert_int_equal(after.commits, before.commits + 1);
	assert_int_equal(after.records_committed, before.records_committed + 2);
	assert_int_equal(
	    store_get(store, STORE_DB_META, "effect", 6, &value, &length),
	    STORE_OK);
	assert_int_equal(length, 4);
	assert_memory_equal(value, "done", 4);
}

/* timer.c in a real loop. */
struct loop_state {
	struct event_base *base;
	struct store *store;
	int handler_calls;
	uint64_t timer_id;
	char payload[32];
	size_t payload_length;
	int commit_calls;
	enum store_result commit_result;
	int row_gone_at_commit;
};

static void
stop_after_commit(void *arg, enum store_result result)
{
	struct loop_state *loop = arg;
	uint64_t due;

	loop->commit_calls++;
	loop->commit_result = result;
	loop->row_gone_at_commit =
	    store_timer_earliest(loop->store, &due) == STORE_NOT_FOUND;
	event_base_loopbreak(loop->base);
}

static void
test_handler(
    void *arg, uint64_t timer_id, const void *payload, size_t payload_length)
{
	struct loop_state *loop = arg;

	loop->handler_calls++;
	loop->timer_id = timer_id;
	assert_true(payload_length < sizeof(loop->payload));
	memcpy(loop->payload, payload, payload_length);
	loop->payload_length = payload_length;
	store_after_commit(loop->store, stop_after_commit, loop);
}

/* Runs the loop until a handler's commit breaks it, at most two seconds. */
static void
run_loop(struct loop_state *loop)
{
	struct timeval bound = {2, 0};

	assert_int_equal(event_base_loopexit(loop->base, &bound), 0);
	assert_int_not_equal(event_base_dispatch(loop->base), -1);
}

static void
start_loop(struct fixture *fixture, struct loop_state *loop)
{
	memset(loop, 0, sizeof(*loop));
	loop->base = event_base_new();
	assert_non_null(loop->base);
	loop->store = fixture->store;
	store_attach(fixture->store, loop->base);
	timer_init(loop->base, fixture->store);
	timer_register(TIMER_KIND_TEST, test_handler, loop);
}

static void
stop_loop(struct fixture *fixture, struct loop_state *loop)
{
	timer_shutdown();
	store_attach(fixture->store, NULL);
	event_base_free(loop->base);
}

static void
test_timer_fires_in_loop(void **state)
{
	struct fixture *fixture = *state;
	struct loop_state loop;
	uint64_t id = 0, due;

	start_loop(fixture, &loop);
	assert_int_equal(timer_schedule(clock_now_us() + 20000, TIMER_KIND_TEST,
			     "hello", 5, &id),
	    STORE_OK);
	assert_true(id > 0);
	/* Not fired on scheduling. */
	assert_int_equal(loop.handler_calls, 0);
	run_loop(&loop);

	assert_int_equal(loop.handler_calls, 1);
	assert_int_equal(loop.timer_id, id);
	assert_int_equal(loop.payload_length, 5);
	assert_memory_equal(loop.payload, "hello", 5);
	assert_int_equal(loop.commit_calls, 1);
	assert_int_equal(loop.commit_result, STORE_OK);
	assert_true(loop.row_gone_at_commit);
	assert_int_equal(
	    store_timer_earliest(fixture->store, &due), STORE_NOT_FOUND);
	stop_loop(fixture, &loop);
}

static void
test_timer_earlier_schedule_rearms(void **state)
{
	struct fixture *fixture = *state;
	struct loop_state loop;
	uint64_t late_id = 0, early_id = 0, due, late_due;

	start_loop(fixture, &loop);
	late_due = clock_now_us() + 3600 * 1000000ULL;
	assert_int_equal(
	    timer_schedule(late_due, TIMER_KIND_TEST, "late", 4, &late_id),
	    STORE_OK);
	assert_int_equal(timer_schedule(clock_now_us() + 10000, TIMER_KIND_TEST,
			     "early", 5, &early_id),
	    STORE_OK);
	run_loop(&loop);
	assert_int_equal(loop.handler_calls, 1);
	assert_int_equal(loop.timer_id, early_id);
	assert_int_equal(store_timer_earliest(fixture->store, &due), STORE_OK);
	assert_int_equal(due, late_due);
	/* Cancelled, the late one never fires. */
	assert_int_equal(timer_cancel(late_due, late_id), STORE_OK);
	stop_loop(fixture, &loop);
}

static void
test_timer_unknown_kind_dropped(void **state)
{
	struct fixture *fixture = *state;
	struct loop_state loop;
	uint64_t now, due, id = 0;

	/* Rows written before timer_init (as after a restart) are found. */
	now = clock_now_us();
	add(fixture->store, now - 2000, 999, "stray");
	add(fixture->store, now - 1000, TIMER_KIND_NONE, "unhandled");
	assert_int_equal(store_timer_add(fixture->store, now, TIMER_KIND_TEST,
			     "known", 5, &id),
	    STORE_OK);
	assert_int_equal(store_commit(fixture->store), STORE_OK);
	start_loop(fixture, &loop);
	run_loop(&loop);
	assert_int_equal(loop.handler_calls, 1);
	assert_int_equal(loop.timer_id, id);
	assert_int_equal(loop.commit_result, STORE_OK);
	assert_int_equal(
	    store_timer_earliest(fixture->store, &due), STORE_NOT_FOUND);
	stop_loop(fixture, &loop);
}

static void
test_timer_follows_test_clock(void **state)
{
	struct fixture *fixture = *state;
	struct loop_state loop;
	uint64_t id = 0;

	start_loop(fixture, &loop);
	/* Due in a day; the test clock jumps there instead of sleeping. */
	assert_int_equal(timer_schedule(clock_now_us() + 86400 * 1000000ULL,
			     TIMER_KIND_TEST, "tomorrow", 8, &id),
	    STORE_OK);
	clock_advance_us(86400 * 1000000ULL);
	timer_rearm();
	run_loop(&loop);
	assert_int_equal(loop.handler_calls, 1);
	assert_int_equal(loop.timer_id, id);
	assert_memory_equal(loop.payload, "tomorrow", 8);
	stop_loop(fixture, &loop);
}

#define TIMER_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    TIMER_TEST(test_drain_in_due_order),
	    TIMER_TEST(test_same_due_time_by_id),
	    TIMER_TEST(test_only_due_rows_drain),
	    TIMER_TEST(test_cancel),
	    TIMER_TEST(test_drain_max),
	    TIMER_TEST(test_timers_survive_reopen),
	    TIMER_TEST(test_drain_and_effect_commit_together),
	    TIMER_TEST(test_timer_fires_in_loop),
	    TIMER_TEST(test_timer_earlier_schedule_rearms),
	    TIMER_TEST(test_timer_unknown_kind_dropped),
	    TIMER_TEST(test_timer_follows_test_clock),
	};

	log_init(1, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
