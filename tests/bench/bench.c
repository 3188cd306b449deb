/*
 * bench.c - clocks, option numbers, latency percentiles and BENCH lines for
 * the load drivers (see bench.h). The BENCH lines are what run.sh and
 * report.pl read: "BENCH name=NAME.FIGURE value=V unit=U".
 */
#include <sys/resource.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

/* Monotonic nanoseconds. */
uint64_t
bench_now_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * UINT64_C(1000000000) +
	       (uint64_t)now.tv_nsec;
}

/* User + system CPU seconds of this process. */
double
bench_cpu_seconds(void)
{
	struct rusage usage;

	getrusage(RUSAGE_SELF, &usage);
	return (double)usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
	       (double)usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

/* An option's number within [minimum, maximum]; -1 if it is not one. */
int
bench_parse_number(
    const char *text, double minimum, double maximum, double *value)
{
	char *end;

	errno = 0;
	*value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || *value < minimum ||
	    *value > maximum)
		return -1;
	return 0;
}

void
bench_line(const char *name, const char *figure, int decimals, double value,
    const char *unit)
{
	printf("BENCH name=%s.%s value=%.*f unit=%s\n", name, figure, decimals,
	    value, unit);
}

int
bench_latencies_init(struct bench_latencies *latencies, uint64_t capacity)
{
	latencies->count = 0;
	latencies->capacity = capacity;
	latencies->nanoseconds =
	    calloc(capacity > 0 ? capacity : 1, sizeof(uint64_t));
	return latencies->nanoseconds != NULL ? 0 : -1;
}

void
bench_latencies_add(struct bench_latencies *latencies, uint64_t ns)
{
	if (latencies->count < latencies->capacity)
		latencies->nanoseconds[latencies->count++] = ns;
}

static int
compare_u64(const void *a, const void *b)
{
	uint64_t left = *(const uint64_t *)a, right = *(const uint64_t *)b;

	return left < right ? -1 : left > right;
}

/* Nearest-rank percentile of the sorted latencies, in milliseconds. */
static double
percentile_ms(const struct bench_latencies *latencies, double percent)
{
	uint64_t rank;

	if (latencies->count == 0)
		return 0;
	rank =
	    (uint64_t)((percent / 100.0) * (double)latencies->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > latencies->count)
		rank = latencies->count;
	return (double)latencies->nanoseconds[rank - 1] / 1e6;
}

/* Sorts the latencies and prints the table's "latency" line. */
void
bench_latencies_print(struct bench_latencies *latencies)
{
	double sum = 0;
	uint64_t i;

	qsort(latencies->nanoseconds, latencies->count, sizeof(uint64_t),
	    compare_u64);
	for (i = 0; i < latencies->count; i++)
		sum += (double)latencies->nanoseconds[i];
	printf("  %-14s p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean "
	       "%.3f ms\n",
	    "latency", percentile_ms(latencies, 50),
	    percentile_ms(latencies, 99), percentile_ms(latencies, 99.9),
	    percentile_ms(latencies, 100),
	    latencies->count > 0 ? sum / (double)latencies->count / 1e6 : 0);
}

/* The percentiles' BENCH lines (after bench_latencies_print()). */
void
bench_latencies_bench_lines(
    const struct bench_latencies *latencies, const char *name)
{
	bench_line(name, "latency_p50", 3, percentile_ms(latencies, 50), "ms");
	bench_line(name, "latency_p99", 3, percentile_ms(latencies, 99), "ms");
	bench_line(
	    name, "latency_p999", 3, percentile_ms(latencies, 99.9), "ms");
}

void
bench_latencies_free(struct bench_latencies *latencies)
{
	free(latencies->nanoseconds);
	latencies->nanoseconds = NULL;
}
