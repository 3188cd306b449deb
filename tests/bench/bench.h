/*
 * bench.h - what the load drivers of the benchmarks share (http_driver.c,
 * smpp_load.c): clocks, option numbers, latencies and BENCH lines, so that
 * every driver reads time, CPU and percentiles the same way.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdint.h>

/* Latencies of one run, in nanoseconds; at most capacity are kept. */
struct bench_latencies {
	uint64_t *nanoseconds;
	uint64_t count;
	uint64_t capacity;
};

/* bench.c */
uint64_t bench_now_ns(void);
double bench_cpu_seconds(void);
int bench_parse_number(
    const char *text, double minimum, double maximum, double *value);
void bench_line(const char *name, const char *figure, int decimals,
    double value, const char *unit);
int bench_latencies_init(struct bench_latencies *latencies, uint64_t capacity);
void bench_latencies_add(struct bench_latencies *latencies, uint64_t ns);
void bench_latencies_print(struct bench_latencies *latencies);
void bench_latencies_bench_lines(
    const struct bench_latencies *latencies, const char *name);
void bench_latencies_free(struct bench_latencies *latencies);

#endif
