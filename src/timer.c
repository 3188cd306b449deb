/*
 * timer.c - libevent glue for the durable timers of store_timer.c.
 *
 * One evtimer is armed for the earliest row of the timer table. When it
 * fires, the rows due by clock_now_us() are drained in batches and handed
 * to the handler registered for their kind; the handlers' writes join the
 * same loop turn's transaction as the deletion of their rows, so "timer
 * fired" and its effects commit together. Then the evtimer is armed for
 * the new earliest row (at once if more are due). Pending timers live only
 * in LMDB; this file merely remembers what it armed.
 */
#include <inttypes.h>
#include <string.h>

#include <event2/event.h>

#include "nudged.h"

#define DRAIN_BATCH      1024 /* rows per loop turn, so one commit each */
#define RETRY_DELAY_US   (1000 * 1000) /* after the store failed a drain */
#define LONGEST_SLEEP_US ((uint64_t)3600 * 1000 * 1000)

struct timer_handler {
	timer_handler_fn fn;
	void *arg;
};

static struct {
	struct store *store;
	struct event *event;
	int armed;
	uint64_t armed_due_us;
	struct timer_handler handlers[TIMER_KIND_COUNT];
} timers;

/* Arms the evtimer to fire at due_us on the (test-shiftable) wall clock. */
static void
timer_arm(uint64_t due_us)
{
	struct timeval delay;
	uint64_t now_us, delay_us;

	now_us = clock_now_us();
	delay_us = due_us > now_us ? due_us - now_us : 0;
	/* A far timer is re-checked hourly, which also absorbs clock steps. */
	if (delay_us > LONGEST_SLEEP_US)
		delay_us = LONGEST_SLEEP_US;
	delay.tv_sec = (time_t)(delay_us / 1000000);
	delay.tv_usec = (suseconds_t)(delay_us % 1000000);
	if (evtimer_add(timers.event, &delay) == -1) {
		log_warnx(0, "timer", "arm-failed", "due_us=%" PRIu64, due_us);
		return;
	}
	timers.armed = 1;
	timers.armed_due_us = due_us;
}

/* Hands one drained row to the handler of its kind. */
static void
timer_dispatch(void *arg, uint64_t timer_id, uint64_t due_us, uint16_t kind,
    const void *payload, size_t payload_length)
{
	const struct timer_handler *handler;

	if (kind >= TIMER_KIND_COUNT || timers.handlers[kind].fn == NULL) {
		/* Its row is already deleted: dropped, not retried forever. */
		log_warnx(timer_id, "timer", "unknown-kind",
		    "kind=%u due_us=%" PRIu64, (unsigned int)kind, due_us);
		return;
	}
	handler = &timers.handlers[kind];
	log_debug(timer_id, "timer", "fired", "kind=%u due_us=%" PRIu64,
	    (unsigned int)kind, due_us);
	handler->fn(handler->arg, timer_id, payload, payload_length);
}

/* The evtimer callback: drain one batch, then arm for what is left. */
static void
timer_fire(evutil_socket_t fd, short what, void *arg)
{
	enum store_result result;
	uint64_t now_us, due_us;
	size_t drained;

	timers.armed = 0;
	now_us = clock_now_us();
	drained = store_timer_drain(
	    timers.store, now_us, DRAIN_BATCH, timer_dispatch, NULL);
	result = store_timer_earliest(timers.store, &due_us);
	if (result == STORE_NOT_FOUND)
		return;
	if (result != STORE_OK) {
		timer_arm(now_us + RETRY_DELAY_US);
		return;
	}
	/*
	 * A due row left behind by a short batch means the store refused
	 * the drain; retrying at once would spin the loop.
	 */
	if (due_us <= now_us && drained < DRAIN_BATCH) {
		log_warnx(0, "timer", "drain-stalled", "drained=%zu", drained);
		timer_arm(now_us + RETRY_DELAY_US);
		return;
	}
	timer_arm(due_us);
}

void
timer_init(struct event_base *base, struct store *store)
{
	if (timers.event != NULL)
		event_free(timers.event);
	timers.store = store;
	timers.armed = 0;
	timers.event = evtimer_new(base, timer_fire, NULL);
	if (timers.event == NULL)
		fatalx("timer", "init-failed", "error=evtimer_new");
	/* Timers written before a restart are due as they were. */
	timer_rearm();
}

void
timer_shutdown(void)
{
	if (timers.event != NULL)
		event_free(timers.event);
	memset(&timers, 0, sizeof(timers));
}

void
timer_register(enum timer_kind kind, timer_handler_fn fn, void *arg)
{
	if ((unsigned int)kind >= TIMER_KIND_COUNT) {
		log_warnx(0, "timer", "register-failed", "kind=%u",
		    (unsigned int)kind);
		return;
	}
	timers.handlers[kind].fn = fn;
	timers.handlers[kind].arg = arg;
}

enum store_result
timer_schedule(uint64_t due_us, enum timer_kind kind, const void *payload,
    size_t payload_length, uint64_t *timer_id)
{
	enum store_result result;

	if (timers.store == NULL) {
		log_warnx(
		    0, "timer", "schedule-failed", "error=not-initialized");
		return STORE_ERROR;
	}
	result = store_timer_add(timers.store, due_us, (uint16_t)kind, payload,
	    payload_length, timer_id);
	if (result == STORE_OK &&
	    (!timers.armed || due_us < timers.armed_due_us))
		timer_arm(due_us);
	return result;
}

enum store_result
timer_cancel(uint64_t due_us, uint64_t timer_id)
{
	if (timers.store == NULL) {
		log_warnx(0, "timer", "cancel-failed", "error=not-initialized");
		return STORE_ERROR;
	}
	/* The evtimer may stay armed for it; firing early is harmless. */
	return store_timer_cancel(timers.store, due_us, timer_id);
}

void
timer_rearm(void)
{
	enum store_result result;
	uint64_t due_us;

	if (timers.event == NULL)
		return;
	result = store_timer_earliest(timers.store, &due_us);
	if (result == STORE_OK)
		timer_arm(due_us);
	else if (result == STORE_NOT_FOUND) {
		evtimer_del(timers.event);
		timers.armed = 0;
	} else
		timer_arm(clock_now_us() + RETRY_DELAY_US);
}
