/*
 * test_metrics.c - registration by name, label sets, and the exact
 * Prometheus text that /metrics serves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "nudged.h"

static char *
render(void)
{
	struct evbuffer *out = evbuffer_new();
	size_t length;
	char *text;

	metrics_render(out);
	length = evbuffer_get_length(out);
	text = calloc(1, length + 1);
	evbuffer_remove(out, text, length);
	evbuffer_free(out);
	return text;
}

static int
teardown(void **state)
{
	metrics_reset();
	return 0;
}

static void
test_counter_and_labels(void **state)
{
	struct metric *a, *b, *again;
	char *text;

	a = metrics_counter("nudge_sent_total", "link=\"a\"", "Sent.");
	b = metrics_counter("nudge_sent_total", "link=\"b\"", "Sent.");
	again = metrics_counter("nudge_sent_total", "link=\"a\"", "Sent.");
	assert_ptr_equal(a, again);
	assert_ptr_not_equal(a, b);
	metrics_add(a, 3);
	metrics_add(again, 2);
	metrics_add(b, 1);
	assert_true(metrics_value(a) == 5);
	text = render();
	assert_string_equal(text, "# HELP nudge_sent_total Sent.\n"
				  "# TYPE nudge_sent_total counter\n"
				  "nudge_sent_total{link=\"a\"} 5\n"
				  "nudge_sent_total{link=\"b\"} 1\n");
	free(text);
}

static void
test_histogram_buckets_are_cumulative(void **state)
{
	static const double bounds[] = {0.001, 0.01, 0.1};
	struct metric *latency;
	char *text;

	latency = metrics_histogram(
	    "nudge_latency_seconds", NULL, "Latency.", bounds, 3);
	metrics_observe(latency, 0.0005);
	metrics_observe(latency, 0.005);
	metrics_observe(latency, 0.006);
	metrics_observe(latency, 5);
	text = render();
	assert_non_null(
	    strstr(text, "# TYPE nudge_latency_seconds histogram\n"));
	assert_non_null(
	    strstr(text, "nudge_latency_seconds_bucket{le=\"0.001\"} 1\n"));
	assert_non_null(
	    strstr(text, "nudge_latency_seconds_bucket{le=\"0.01\"} 3\n"));
	assert_non_null(
	    strstr(text, "nudge_latency_seconds_bucket{le=\"0.1\"} 3\n"));
	assert_non_null(
	    strstr(text, "nudge_latency_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(text, "nudge_latency_seconds_count 4\n"));
	assert_non_null(strstr(text, "nudge_latency_seconds_sum 5.0115\n"));
	free(text);
}

static int collector_calls;

static void
collector(void *arg)
{
	collector_calls++;
	metrics_set(metrics_gauge("nudge_queue_depth", NULL, "Queued."),
	    (double)(intptr_t)arg);
}

static void
test_collector_refreshes_gauges(void **state)
{
	char *text;

	collector_calls = 0;
	metrics_add_collector(collector, (void *)(intptr_t)42);
	text = render();
	assert_int_equal(collector_calls, 1);
	assert_non_null(strstr(text, "# TYPE nudge_queue_depth gauge\n"
				     "nudge_queue_depth 42\n"));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_counter_and_labels, teardown),
	    cmocka_unit_test_teardown(
		test_histogram_buckets_are_cumulative, teardown),
	    cmocka_unit_test_teardown(
		test_collector_refreshes_gauges, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
