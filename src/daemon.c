/*
 * daemon.c - the gateway's life: the data directory and its exclusive lock,
 * the pid file, the event base, the store, signals, /healthz and /metrics,
 * SIGHUP reloads and a graceful, bounded stop on SIGTERM/SIGINT.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "nudged.h"

#define DAEMON_SHUTDOWN_POLL_US 20000
#define DAEMON_TEST_CLOCK_KEY   "test-clock/offset"

struct daemon_shutdown_hook {
	daemon_shutdown_begin_fn begin;
	daemon_shutdown_done_fn is_done;
	void *arg;
};

struct daemon_reload_hook {
	daemon_reload_fn fn;
	void *arg;
};

static struct gateway gateway_state;
struct gateway *gateway = &gateway_state;

static struct daemon_shutdown_hook *shutdown_hooks;
static size_t shutdown_hook_count;
static struct daemon_reload_hook *reload_hooks;
static size_t reload_hook_count;
static struct event *signal_events[3];
static struct event *shutdown_poll_event;
static uint64_t shutdown_deadline_us;
static char *pid_file_path;
static struct config **retired_configs;
static size_t retired_config_count;
static int exit_status;

void
daemon_on_shutdown(
    daemon_shutdown_begin_fn begin, daemon_shutdown_done_fn is_done, void *arg)
{
	shutdown_hooks = reallocarray(
	    shutdown_hooks, shutdown_hook_count + 1, sizeof(*shutdown_hooks));
	if (shutdown_hooks == NULL)
		fatal("daemon", "out-of-memory", NULL);
	shutdown_hooks[shutdown_hook_count].begin = begin;
	shutdown_hooks[shutdown_hook_count].is_done = is_done;
	shutdown_hooks[shutdown_hook_count].arg = arg;
	shutdown_hook_count++;
}

void
daemon_on_reload(daemon_reload_fn fn, void *arg)
{
	reload_hooks = reallocarray(
	    reload_hooks, reload_hook_count + 1, sizeof(*reload_hooks));
	if (reload_hooks == NULL)
		fatal("daemon", "out-of-memory", NULL);
	reload_hooks[reload_hook_count].fn = fn;
	reload_hooks[reload_hook_count].arg = arg;
	reload_hook_count++;
}

/* Takes the data directory's lock so two daemons never share one store. */
static void
daemon_lock_data_dir(const char *data_dir)
{
	char path[4096];

	if (mkdir(data_dir, 0700) == -1 && errno != EEXIST)
		fatal("daemon", "data-dir", "path=%s", data_dir);
	snprintf(path, sizeof(path), "%s/nudged.lock", data_dir);
	gateway->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (gateway->lock_fd == -1)
		fatal("daemon", "lock-open", "path=%s", path);
	if (flock(gateway->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			fatalx("daemon", "data-dir-in-use",
			    "path=%s reason=\"another nudged holds the lock\"",
			    data_dir);
		fatal("daemon", "lock", "path=%s", path);
	}
}

static void
daemon_write_pid_file(const struct config *config)
{
	char path[4096];
	FILE *file;

	if (config->pid_file[0] != '\0')
		snprintf(path, sizeof(path), "%s", config->pid_file);
	else
		snprintf(path, sizeof(path), "%s/nudged.pid", config->data_dir);
	if ((pid_file_path = strdup(path)) == NULL)
		fatal("daemon", "out-of-memory", NULL);
	if ((file = fopen(path, "w")) == NULL)
		fatal("daemon", "pid-file", "path=%s", path);
	fprintf(file, "%ld\n", (long)getpid());
	if (fclose(file) == EOF)
		fatal("daemon", "pid-file", "path=%s", path);
}

/* Refreshes the store and uptime gauges just before /metrics renders. */
static void
daemon_collect_metrics(void *arg)
{
	struct store_stats stats;

	metrics_set(metrics_gauge("nudge_uptime_seconds", NULL,
			"Seconds since nudged started."),
	    (double)(clock_monotonic_us() - gateway->started_us) / 1e6);
	if (gateway->store == NULL)
		return;
	store_get_stats(gateway->store, &stats);
	metrics_set(metrics_gauge("nudge_store_map_size_bytes", NULL,
			"Size of the LMDB map."),
	    (double)stats.map_size);
	metrics_set(metrics_gauge("nudge_store_used_bytes", NULL,
			"Bytes of the LMDB map in use."),
	    (double)stats.used_bytes);
	metrics_set(metrics_counter("nudge_store_commits_total", NULL,
			"Write transactions committed."),
	    (double)stats.commits);
	metrics_set(metrics_counter("nudge_store_records_committed_total", NULL,
			"Records written by committed transactions."),
	    (double)stats.records_committed);
	metrics_set(metrics_counter("nudge_store_map_resizes_total", NULL,
			"Times the LMDB map grew."),
	    (double)stats.map_resizes);
	metrics_set(metrics_counter("nudge_store_commit_failures_total", NULL,
			"Write transactions that failed to commit."),
	    (double)stats.commit_failures);
	metrics_set(metrics_gauge("nudge_store_map_resident_bytes", NULL,
			"Bytes of the LMDB map mapped into nudged (RSS), "
			"at the last check."),
	    (double)stats.map_resident);
	metrics_set(metrics_counter("nudge_store_map_trims_total", NULL,
			"Times nudged let go of its mapped LMDB pages."),
	    (double)stats.map_trims);
}

static void
daemon_handle_metrics(struct evhttp_request *request, void *arg)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(request);

	metrics_render(out);
	evhttp_add_header(evhttp_request_get_output_headers(request),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(request, 200, "OK", NULL);
}

/* 200 when the store answers a read, 503 otherwise. */
static void
daemon_handle_healthz(struct evhttp_request *request, void *arg)
{
	static const char probe_key[] = "healthz-probe";
	struct store_stats stats;
	const void *value;
	size_t value_length;
	enum store_result result;
	int store_ok;

	result = store_get(gateway->store, STORE_DB_META, probe_key,
	    sizeof(probe_key) - 1, &value, &value_length);
	store_ok = result == STORE_OK || result == STORE_NOT_FOUND;
	store_get_stats(gateway->store, &stats);
	/* A failing rule file is reported, not fatal: its last good runs. */
	http_reply_json(request, store_ok ? 200 : 503,
	    json_pack("{s:s, s:s, s:f, s:{s:b, s:I, s:I, s:I}, s:o}", "status",
		store_ok ? "ok" : "degraded", "version", NUDGE_VERSION,
		"uptime_seconds",
		(double)(clock_monotonic_us() - gateway->started_us) / 1e6,
		"store", "ok", store_ok, "map_size_bytes",
		(json_int_t)stats.map_size, "used_bytes",
		(json_int_t)stats.used_bytes, "commit_failures",
		(json_int_t)stats.commit_failures, "rules", flow_health()));
}

/* Test clock: moves "now" forward so timers due by then fire. */
static void
daemon_handle_test_clock(struct evhttp_request *request, void *arg)
{
	json_t *body, *advance;
	double seconds;
	uint8_t offset[8];

	if (evhttp_request_get_command(request) == EVHTTP_REQ_POST) {
		if ((body = http_read_json(request)) == NULL)
			return;
		advance = json_object_get(body, "advance_seconds");
		if (!json_is_number(advance) ||
		    (seconds = json_number_value(advance)) < 0 ||
		    seconds > 366.0 * 86400) {
			json_decref(body);
			http_reply_error(request, 400, "invalid_field",
			    "advance_seconds must be a number from 0 to "
			    "31622400");
			return;
		}
		json_decref(body);
		clock_advance_us((uint64_t)(seconds * 1e6));
		/* Kept, so a restart does not move time backwards. */
		store_encode_u64(offset, clock_offset_us());
		store_put(gateway->store, STORE_DB_META, DAEMON_TEST_CLOCK_KEY,
		    sizeof(DAEMON_TEST_CLOCK_KEY) - 1, offset, sizeof(offset),
		    0);
		log_info(0, "daemon", "test-clock-advanced",
		    "seconds=%.3f offset_us=%llu", seconds,
		    (unsigned long long)clock_offset_us());
		timer_rearm();
	}
	http_reply_json(request, 200,
	    json_pack("{s:I, s:I}", "now_us", (json_int_t)clock_now_us(),
		"offset_us", (json_int_t)clock_offset_us()));
}

/* The test clock's offset survives restarts: time never runs backwards. */
static void
daemon_restore_test_clock(void)
{
	const void *value;
	size_t length;

	if (store_get(gateway->store, STORE_DB_META, DAEMON_TEST_CLOCK_KEY,
		sizeof(DAEMON_TEST_CLOCK_KEY) - 1, &value,
		&length) == STORE_OK &&
	    length == 8)
		clock_advance_us(store_decode_u64(value) - clock_offset_us());
}

/* The last step of a stop: flush, close, remove the pid file, leave. */
static void
daemon_finish(void)
{
	size_t i;

	/* Commit first: after-commit work still answers requests in flight. */
	if (gateway->store != NULL && store_commit(gateway->store) != STORE_OK)
		exit_status = 1;
	http_stop();
	flow_free();
	quiet_free();
	server_free();
	outbox_free();
	timer_shutdown();
	if (gateway->store != NULL)
		store_close(gateway->store);
	gateway->store = NULL;
	for (i = 0; i < sizeof(signal_events) / sizeof(signal_events[0]); i++)
		if (signal_events[i] != NULL)
			event_free(signal_events[i]);
	if (shutdown_poll_event != NULL)
		event_free(shutdown_poll_event);
	if (pid_file_path != NULL)
		unlink(pid_file_path);
	log_info(0, "daemon", "stopped", "status=%d", exit_status);
	event_base_loopbreak(gateway->base);
}

/* Polled until every subsystem is idle or the shutdown bound has passed. */
static void
daemon_shutdown_poll(evutil_socket_t fd, short events, void *arg)
{
	struct timeval again = {0, DAEMON_SHUTDOWN_POLL_US};
	size_t i, busy = 0;

	for (i = 0; i < shutdown_hook_count; i++)
		if (shutdown_hooks[i].is_done != NULL &&
		    !shutdown_hooks[i].is_done(shutdown_hooks[i].arg))
			busy++;
	if (busy == 0) {
		daemon_finish();
		return;
	}
	if (clock_monotonic_us() >= shutdown_deadline_us) {
		log_warnx(0, "daemon", "shutdown-timeout", "busy=%zu", busy);
		daemon_finish();
		return;
	}
	evtimer_add(shutdown_poll_event, &again);
}

void
daemon_request_stop(void)
{
	struct timeval now = {0, 0};
	size_t i;

	if (gateway->shutting_down)
		return;
	gateway->shutting_down = 1;
	log_info(0, "daemon", "stopping", "timeout_ms=%llu",
	    (unsigned long long)gateway->config->shutdown_timeout_us / 1000);
	shutdown_deadline_us =
	    clock_monotonic_us() + gateway->config->shutdown_timeout_us;
	http_stop_listening();
	for (i = 0; i < shutdown_hook_count; i++)
		if (shutdown_hooks[i].begin != NULL)
			shutdown_hooks[i].begin(shutdown_hooks[i].arg);
	shutdown_poll_event =
	    evtimer_new(gateway->base, daemon_shutdown_poll, NULL);
	if (shutdown_poll_event == NULL)
		fatal("daemon", "out-of-memory", NULL);
	evtimer_add(shutdown_poll_event, &now);
}

/* SIGHUP also rereads the rules folder (inotify does it on change). */
static int
daemon_reload_rules(const struct config *config, void *arg)
{
	return flow_reload() == 0 ? 0 : -1;
}

/* SIGHUP: a config that fails to parse changes nothing. */
static void
daemon_reload(void)
{
	struct config *fresh, *old = gateway->config;
	int errors;
	size_t i;

	fresh = config_load(old->path, &errors);
	if (fresh == NULL) {
		log_warnx(0, "daemon", "reload-failed",
		    "path=%s errors=%d kept=previous", old->path, errors);
		return;
	}
	if (strcmp(fresh->data_dir, old->data_dir) != 0 ||
	    fresh->http_listen.port != old->http_listen.port ||
	    strcmp(fresh->http_listen.host, old->http_listen.host) != 0 ||
	    fresh->smpp_listen.port != old->smpp_listen.port ||
	    strcmp(fresh->smpp_listen.host, old->smpp_listen.host) != 0)
		log_warnx(0, "daemon", "reload-needs-restart",
		    "keys=\"data_dir or listen addresses\"");
	log_set_level((enum log_level)fresh->log_level);
	http_set_token(fresh->http_api_token);
	for (i = 0; i < reload_hook_count; i++)
		if (reload_hooks[i].fn(fresh, reload_hooks[i].arg) != 0)
			log_warnx(0, "daemon", "reload-partial", "hook=%zu", i);
	gateway->config = fresh;
	/*
	 * Links, accounts and the outbox keep pointers into the configuration
	 * they started with; the old one lives until exit.
	 */
	retired_configs = reallocarray(retired_configs,
	    retired_config_count + 1, sizeof(*retired_configs));
	if (retired_configs == NULL)
		fatal("daemon", "out-of-memory", NULL);
	retired_configs[retired_config_count++] = old;
	log_info(0, "daemon", "reloaded", "path=%s", fresh->path);
}

static void
daemon_handle_signal(evutil_socket_t signal_number, short events, void *arg)
{
	switch (signal_number) {
	case SIGHUP:
		daemon_reload();
		break;
	case SIGTERM:
	case SIGINT:
		log_info(0, "daemon", "signal", "name=%s",
		    signal_number == SIGTERM ? "TERM" : "INT");
		daemon_request_stop();
		break;
	}
}

void
daemon_start(struct config *config, int foreground)
{
	static const int signals[] = {SIGTERM, SIGINT, SIGHUP};
	struct store_options options;
	struct event_config *event_config;
	size_t i;

	gateway->config = config;
	gateway->lock_fd = -1;
	if (!foreground && daemon(1, 0) == -1)
		fatal("daemon", "daemonize", NULL);
	gateway->started_us = clock_monotonic_us();
	daemon_lock_data_dir(config->data_dir);
	daemon_write_pid_file(config);
	signal(SIGPIPE, SIG_IGN);

	/* Precise timers: libevent's coarse clock steps in 4 ms here. */
	if ((event_config = event_config_new()) == NULL)
		fatal("daemon", "out-of-memory", NULL);
	event_config_set_flag(event_config, EVENT_BASE_FLAG_PRECISE_TIMER);
	gateway->base = event_base_new_with_config(event_config);
	event_config_free(event_config);
	if (gateway->base == NULL)
		fatalx("daemon", "event-base", NULL);

	memset(&options, 0, sizeof(options));
	options.path = config->data_dir;
	options.initial_map_size = config->store_map_size;
	options.max_readers = (unsigned int)config->store_max_readers;
	options.no_sync = !config->store_sync;
	options.map_resident_limit = (size_t)config->store_map_resident;
	if ((gateway->store = store_open(&options)) == NULL)
		fatalx("daemon", "store-open", "path=%s", config->data_dir);
	if (options.no_sync)
		log_warnx(0, "daemon", "store-sync-off",
		    "reason=\"commits are not fsynced: benchmarks only\"");
	store_attach(gateway->store, gateway->base);
	if (config->test_clock)
		daemon_restore_test_clock();
	timer_init(gateway->base, gateway->store);
	outbox_init(gateway->base, config);
	daemon_on_shutdown(outbox_shutdown_begin, outbox_shutdown_done, NULL);
	api_message_init();
	webhook_init(gateway->base);
	optout_init();
	server_init(gateway->base, config);
	daemon_on_shutdown(server_shutdown_begin, server_shutdown_done, NULL);
	api_event_init(config);
	flow_init(gateway->base, config);
	quiet_init(config);
	policy_init(config);
	conversation_init(config);
	consent_init(config);
	keyword_init(config);
	inbound_init(config);
	daemon_on_reload(daemon_reload_rules, NULL);
	outbox_start();

	metrics_add_collector(daemon_collect_metrics, NULL);
	http_route(
	    "GET", "/healthz", HTTP_ROUTE_EXACT, daemon_handle_healthz, NULL);
	http_route(
	    "GET", "/metrics", HTTP_ROUTE_EXACT, daemon_handle_metrics, NULL);
	if (config->test_clock) {
		log_warnx(0, "daemon", "test-clock-enabled",
		    "reason=\"POST /v1/test/clock moves time\" offset_us=%llu",
		    (unsigned long long)clock_offset_us());
		http_route("GET", "/v1/test/clock", HTTP_ROUTE_AUTH,
		    daemon_handle_test_clock, NULL);
		http_route("POST", "/v1/test/clock", HTTP_ROUTE_AUTH,
		    daemon_handle_test_clock, NULL);
	}
	if (http_start(gateway->base, config) == -1)
		fatalx("daemon", "http-start", "address=%s:%u",
		    config->http_listen.host, config->http_listen.port);

	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		signal_events[i] = evsignal_new(
		    gateway->base, signals[i], daemon_handle_signal, NULL);
		if (signal_events[i] == NULL ||
		    evsignal_add(signal_events[i], NULL) == -1)
			fatalx(
			    "daemon", "signal-setup", "signal=%d", signals[i]);
	}
	log_info(0, "daemon", "started", "version=%s pid=%ld data_dir=%s",
	    NUDGE_VERSION, (long)getpid(), config->data_dir);
}

/* Runs the loop until a stop finishes; returns the exit status. */
int
daemon_run(void)
{
	if (event_base_dispatch(gateway->base) == -1)
		fatalx("daemon", "event-loop", NULL);
	event_base_free(gateway->base);
	gateway->base = NULL;
	config_free(gateway->config);
	gateway->config = NULL;
	while (retired_config_count > 0)
		config_free(retired_configs[--retired_config_count]);
	free(retired_configs);
	retired_configs = NULL;
	metrics_reset();
	return exit_status;
}
