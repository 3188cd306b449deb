/*
 * metrics.c - counters, gauges and histograms registered by name from any
 * module, rendered in the Prometheus text exposition format for /metrics.
 * Series of one name share one HELP/TYPE header; a name keeps one type.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nudged.h"

#define METRICS_MAX_BOUNDS 32

struct metric {
	char *name;
	char *labels; /* inside of {}, or empty */
	char *help;
	enum metric_type type;
	double value;   /* counter, gauge; histogram sum */
	uint64_t count; /* histogram observations */
	size_t bound_count;
	double bounds[METRICS_MAX_BOUNDS];
	uint64_t buckets[METRICS_MAX_BOUNDS]; /* per bucket, not cumulative */
};

struct metrics_collector {
	metrics_collector_fn fn;
	void *arg;
};

static struct metric **metrics;
static size_t metrics_count, metrics_capacity;
static struct metrics_collector *collectors;
static size_t collectors_count;

static const char *const metric_type_names[] = {
    [METRIC_COUNTER] = "counter",
    [METRIC_GAUGE] = "gauge",
    [METRIC_HISTOGRAM] = "histogram",
};

static char *
metrics_strdup(const char *text)
{
	char *copy;

	if ((copy = strdup(text != NULL ? text : "")) == NULL)
		fatal("metrics", "out-of-memory", NULL);
	return copy;
}

/* Finds or creates name{labels}; a name reused with another type is a bug. */
static struct metric *
metrics_find_or_create(enum metric_type type, const char *name,
    const char *labels, const char *help)
{
	struct metric *metric;
	size_t i;

	if (labels == NULL)
		labels = "";
	for (i = 0; i < metrics_count; i++) {
		metric = metrics[i];
		if (strcmp(metric->name, name) != 0)
			continue;
		if (metric->type != type)
			fatalx("metrics", "type-conflict", "name=%s", name);
		if (strcmp(metric->labels, labels) == 0)
			return metric;
	}
	if (metrics_count == metrics_capacity) {
		metrics_capacity = metrics_capacity ? metrics_capacity * 2 : 64;
		metrics =
		    reallocarray(metrics, metrics_capacity, sizeof(*metrics));
		if (metrics == NULL)
			fatal("metrics", "out-of-memory", NULL);
	}
	if ((metric = calloc(1, sizeof(*metric))) == NULL)
		fatal("metrics", "out-of-memory", NULL);
	metric->name = metrics_strdup(name);
	metric->labels = metrics_strdup(labels);
	metric->help = metrics_strdup(help);
	metric->type = type;
	metrics[metrics_count++] = metric;
	return metric;
}

struct metric *
metrics_counter(const char *name, const char *labels, const char *help)
{
	return metrics_find_or_create(METRIC_COUNTER, name, labels, help);
}

struct metric *
metrics_gauge(const char *name, const char *labels, const char *help)
{
	return metrics_find_or_create(METRIC_GAUGE, name, labels, help);
}

struct metric *
metrics_histogram(const char *name, const char *labels, const char *help,
    const double *bounds, size_t bound_count)
{
	struct metric *metric;
	size_t i;

	if (bound_count > METRICS_MAX_BOUNDS)
		fatalx("metrics", "too-many-buckets", "name=%s", name);
	metric = metrics_find_or_create(METRIC_HISTOGRAM, name, labels, help);
	if (metric->bound_count == 0) {
		for (i = 0; i < bound_count; i++)
			metric->bounds[i] = bounds[i];
		metric->bound_count = bound_count;
	}
	return metric;
}

void
metrics_add(struct metric *metric, double amount)
{
	/* A module used before its init (unit tests) counts nothing. */
	if (metric == NULL)
		return;
	metric->value += amount;
}

void
metrics_set(struct metric *metric, double value)
{
	/* A module used before its init (unit tests) counts nothing. */
	if (metric == NULL)
		return;
	metric->value = value;
}

void
metrics_observe(struct metric *metric, double value)
{
	size_t i;
	if (metric == NULL)
		return;

	metric->value += value;
	metric->count++;
	for (i = 0; i < metric->bound_count; i++) {
		if (value <= metric->bounds[i]) {
			metric->buckets[i]++;
			return;
		}
	}
}

double
metrics_value(const struct metric *metric)
{
	return metric->value;
}

void
metrics_add_collector(metrics_collector_fn fn, void *arg)
{
	collectors =
	    reallocarray(collectors, collectors_count + 1, sizeof(*collectors));
	if (collectors == NULL)
		fatal("metrics", "out-of-memory", NULL);
	collectors[collectors_count].fn = fn;
	collectors[collectors_count].arg = arg;
	collectors_count++;
}

/* Prometheus wants integers without an exponent where possible. */
static void
metrics_render_value(struct evbuffer *out, double value)
{
	if (isfinite(value) && value == floor(value) && fabs(value) < 1e15)
		evbuffer_add_printf(out, "%.0f\n", value);
	else
		evbuffer_add_printf(out, "%.9g\n", value);
}

static void
metrics_render_histogram(struct evbuffer *out, const struct metric *metric)
{
	const char *comma = metric->labels[0] != '\0' ? "," : "";
	uint64_t cumulative = 0;
	size_t i;

	for (i = 0; i < metric->bound_count; i++) {
		cumulative += metric->buckets[i];
		evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n",
		    metric->name, metric->labels, comma, metric->bounds[i],
		    (unsigned long long)cumulative);
	}
	evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n",
	    metric->name, metric->labels, comma,
	    (unsigned long long)metric->count);
	if (metric->labels[0] != '\0') {
		evbuffer_add_printf(
		    out, "%s_sum{%s} ", metric->name, metric->labels);
		metrics_render_value(out, metric->value);
		evbuffer_add_printf(out, "%s_count{%s} %llu\n", metric->name,
		    metric->labels, (unsigned long long)metric->count);
	} else {
		evbuffer_add_printf(out, "%s_sum ", metric->name);
		metrics_render_value(out, metric->value);
		evbuffer_add_printf(out, "%s_count %llu\n", metric->name,
		    (unsigned long long)metric->count);
	}
}

/* Renders every family once, its series in registration order. */
void
metrics_render(struct evbuffer *out)
{
	struct metric *metric, *other;
	size_t i, j;
	int rendered_before;

	for (i = 0; i < collectors_count; i++)
		collectors[i].fn(collectors[i].arg);
	for (i = 0; i < metrics_count; i++) {
		metric = metrics[i];
		rendered_before = 0;
		for (j = 0; j < i && !rendered_before; j++)
			rendered_before =
			    strcmp(metrics[j]->name, metric->name) == 0;
		if (rendered_before)
			continue;
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
		    metric->name, metric->help, metric->name,
		    metric_type_names[metric->type]);
		for (j = i; j < metrics_count; j++) {
			other = metrics[j];
			if (strcmp(other->name, metric->name) != 0)
				continue;
			if (other->type == METRIC_HISTOGRAM) {
				metrics_render_histogram(out, other);
				continue;
			}
			if (other->labels[0] != '\0')
				evbuffer_add_printf(
				    out, "%s{%s} ", other->name, other->labels);
			else
				evbuffer_add_printf(out, "%s ", other->name);
			metrics_render_value(out, other->value);
		}
	}
}

/* Forgets every metric and collector (tests, and the end of the daemon). */
void
metrics_reset(void)
{
	size_t i;

	for (i = 0; i < metrics_count; i++) {
		free(metrics[i]->name);
		free(metrics[i]->labels);
		free(metrics[i]->help);
		free(metrics[i]);
	}
	free(metrics);
	metrics = NULL;
	metrics_count = metrics_capacity = 0;
	free(collectors);
	collectors = NULL;
	collectors_count = 0;
}
