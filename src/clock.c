/*
 * clock.c - the daemon's notion of now. Wall-clock microseconds plus an
 * offset that only the test clock moves, so timers, flow delays and quiet
 * hours can be driven forward in integration tests without sleeping.
 */
#include <time.h>

#include "nudged.h"

static uint64_t clock_offset;

uint64_t
clock_now_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000 +
	       clock_offset;
}

uint64_t
clock_monotonic_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
}

void
clock_advance_us(uint64_t delta_us)
{
	clock_offset += delta_us;
}

uint64_t
clock_offset_us(void)
{
	return clock_offset;
}
