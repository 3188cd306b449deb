/*
 * http_driver.c - a keep-alive HTTP/1.1 load generator for nudged's API.
 *
 *   http_driver --port P --requests N [--connections C] [--path /v1/events]
 *       [--token T] [--body-file F] [--batch B [--batch-key events]]
 *       [--first K] [--rate R] [--method POST] [--name NAME]
 *
 * C connections to 127.0.0.1:P (TCP_NODELAY), each with one request in
 * flight (no pipelining), on one libevent loop whose base has precise
 * timers. A body is the template file F with every "{{n}}" replaced by a
 * number that is different for every event: K, K+1, ... With --batch B,
 * each body is {"events":[T,T,...]} with B events (B numbers); the path
 * may hold {{n}} too. Requests, 2xx and other answers are counted, each
 * latency is kept (one preallocated array, sorted at the end), and the
 * driver reports whether it used most of a core itself, which would make
 * its figures a floor rather than nudged's speed.
 *
 * Nothing is allocated per request: each connection owns one request
 * buffer and one input buffer sized at start. Output: a table, then one
 * "BENCH name=NAME.FIGURE value=V unit=U" line per figure. Exit status 0
 * when every request got a 2xx, 3 when some got another answer or failed,
 * 1 when the run could not be made.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench.h"

#define PLACEHOLDER        "{{n}}"
#define PLACEHOLDER_LENGTH (sizeof(PLACEHOLDER) - 1)
#define DECIMAL_MAX        20 /* digits of the largest uint64_t */
#define INPUT_SIZE         (64 * 1024)
#define BODY_FILE_MAX      (1024 * 1024)
#define SATURATED_PERCENT  90.0
#define EXIT_NOT_ALL_2XX   3

/* A text with "{{n}}" placeholders, cut into the literals between them. */
struct text_template {
	char *text;
	size_t length;
	size_t *piece_offsets; /* literal i is text[offset, offset+length) */
	size_t *piece_lengths;
	size_t piece_count;    /* placeholders + 1 */
	size_t literal_length; /* sum of the piece lengths */
};

struct options {
	const char *host;
	unsigned int port;
	unsigned int connections;
	uint64_t requests;
	const char *path;
	const char *token;
	const char *body_file;
	const char *method;
	const char *name;
	const char *batch_key;
	unsigned int batch; /* 0: the template is the whole body */
	uint64_t first;
	double rate; /* requests per second, 0: as fast as possible */
	double timeout_seconds;
	unsigned int max_errors;
};

enum connection_state {
	CONNECTION_IDLE,    /* nothing to send, or waiting for its pace */
	CONNECTION_SENDING, /* request partly written */
	CONNECTION_HEAD,    /* waiting for the response head */
	CONNECTION_BODY,    /* skipping the response body */
	CONNECTION_CLOSED,
};

struct driver;

struct connection {
	struct driver *driver;
	int fd;
	enum connection_state state;
	struct event *read_event;
	struct event *write_event;
	struct event *pace_event;
	char *request; /* head then body, built in place */
	size_t request_length;
	size_t request_sent;
	uint64_t started_ns; /* sent, or due when paced */
	int status;
	int close_after; /* the server said Connection: close */
	size_t body_remaining;
	size_t input_length;
	char input[INPUT_SIZE];
};

struct driver {
	struct options options;
	struct event_base *base;
	struct sockaddr_in address;
	struct text_template body;
	struct text_template path;
	char *head_middle; /* " HTTP/1.1\r\nHost: ..." up to the length */
	size_t head_middle_length;
	size_t request_capacity;
	struct connection *connections;
	uint64_t issued;    /* requests handed to a connection */
	uint64_t completed; /* answered or failed */
	uint64_t answered_2xx;
	uint64_t answered_other;
	uint64_t failed; /* connection lost, malformed answer */
	unsigned int consecutive_errors;
	struct bench_latencies latencies; /* request sent -> answer read */
	uint64_t start_ns;
	uint64_t pace_interval_ns;
	int aborted;
	const char *abort_reason;
};

static size_t
decimal_length(uint64_t value)
{
	size_t digits = 1;

	while (value >= 10) {
		value /= 10;
		digits++;
	}
	return digits;
}

/* Writes value in decimal, without a NUL; returns the digits written. */
static size_t
format_decimal(char *out, uint64_t value)
{
	size_t digits = decimal_length(value), i;

	for (i = digits; i > 0; i--) {
		out[i - 1] = (char)('0' + value % 10);
		value /= 10;
	}
	return digits;
}

/* Cuts text (owned by the template from now on) at each placeholder. */
static int
template_compile(struct text_template *pattern, char *text, size_t length)
{
	const char *at, *cursor = text, *end = text + length;
	size_t count = 1, i = 0;

	memset(pattern, 0, sizeof(*pattern));
	pattern->text = text;
	pattern->length = length;
	for (at = text; (at = memmem(at, (size_t)(end - at), PLACEHOLDER,
			     PLACEHOLDER_LENGTH)) != NULL;
	     at += PLACEHOLDER_LENGTH)
		count++;
	pattern->piece_offsets = calloc(count, sizeof(size_t));
	pattern->piece_lengths = calloc(count, sizeof(size_t));
	if (pattern->piece_offsets == NULL || pattern->piece_lengths == NULL)
		return -1;
	pattern->piece_count = count;
	for (i = 0; i < count; i++) {
		at = memmem(cursor, (size_t)(end - cursor), PLACEHOLDER,
		    PLACEHOLDER_LENGTH);
		if (at == NULL)
			at = end;
		pattern->piece_offsets[i] = (size_t)(cursor - text);
		pattern->piece_lengths[i] = (size_t)(at - cursor);
		pattern->literal_length += (size_t)(at - cursor);
		cursor = at + PLACEHOLDER_LENGTH;
	}
	return 0;
}

static void
template_free(struct text_template *pattern)
{
	free(pattern->text);
	free(pattern->piece_offsets);
	free(pattern->piece_lengths);
	memset(pattern, 0, sizeof(*pattern));
}

/* Length of the template rendered with n, so a head can precede it. */
static size_t
template_rendered_length(const struct text_template *pattern, uint64_t n)
{
	return pattern->literal_length +
	       (pattern->piece_count - 1) * decimal_length(n);
}

/* The longest rendering: every placeholder a 20-digit number. */
static size_t
template_capacity(const struct text_template *pattern)
{
	return pattern->literal_length +
	       (pattern->piece_count - 1) * DECIMAL_MAX;
}

static size_t
template_render(const struct text_template *pattern, uint64_t n, char *out)
{
	size_t i, written = 0;

	for (i = 0; i < pattern->piece_count; i++) {
		memcpy(out + written, pattern->text + pattern->piece_offsets[i],
		    pattern->piece_lengths[i]);
		written += pattern->piece_lengths[i];
		if (i + 1 < pattern->piece_count)
			written += format_decimal(out + written, n);
	}
	return written;
}

/* Reads the body template; a trailing newline is not part of it. */
static int
read_body_file(const char *path, struct text_template *pattern)
{
	struct stat status;
	size_t length = 0;
	ssize_t got;
	char *text;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "http_driver: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &status) == -1 || status.st_size > BODY_FILE_MAX) {
		fprintf(stderr,
		    "http_driver: %s: unreadable or over %d bytes\n", path,
		    BODY_FILE_MAX);
		close(fd);
		return -1;
	}
	if ((text = malloc((size_t)status.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while ((got = read(
		    fd, text + length, (size_t)status.st_size - length)) > 0)
		length += (size_t)got;
	close(fd);
	while (length > 0 &&
	       (text[length - 1] == '\n' || text[length - 1] == '\r'))
		length--;
	text[length] = '\0';
	if (template_compile(pattern, text, length) == -1) {
		free(text);
		return -1;
	}
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

/* Bytes of the body of request index (0 when there is no body). */
static size_t
body_length(const struct driver *driver, uint64_t first_n)
{
	const struct options *options = &driver->options;
	size_t length = 0, i;

	if (driver->body.text == NULL)
		return 0;
	if (options->batch == 0)
		return template_rendered_length(&driver->body, first_n);
	/* {"KEY":[ e , e , ... ]} */
	length = strlen("{\"\":[]}") + strlen(options->batch_key) +
		 (options->batch - 1);
	for (i = 0; i < options->batch; i++)
		length += template_rendered_length(&driver->body, first_n + i);
	return length;
}

static size_t
append(char *out, size_t at, const char *text, size_t length)
{
	memcpy(out + at, text, length);
	return at + length;
}

/* Builds request index into the connection's buffer: head, then body. */
static void
request_build(struct connection *connection, uint64_t index)
{
	struct driver *driver = connection->driver;
	const struct options *options = &driver->options;
	uint64_t first_n =
	    options->first + index * (options->batch > 0 ? options->batch : 1);
	size_t at = 0, length = body_length(driver, first_n), i;
	char *out = connection->request;

	at = append(out, at, options->method, strlen(options->method));
	out[at++] = ' ';
	at += template_render(&driver->path, first_n, out + at);
	at = append(out, at, driver->head_middle, driver->head_middle_length);
	if (driver->body.text != NULL) {
		at = append(out, at, "Content-Length: ", 16);
		at += format_decimal(out + at, length);
		at = append(out, at, "\r\n", 2);
	}
	at = append(out, at, "\r\n", 2);
	if (driver->body.text != NULL && options->batch == 0)
		at += template_render(&driver->body, first_n, out + at);
	else if (driver->body.text != NULL) {
		at = append(out, at, "{\"", 2);
		at = append(
		    out, at, options->batch_key, strlen(options->batch_key));
		at = append(out, at, "\":[", 3);
		for (i = 0; i < options->batch; i++) {
			if (i > 0)
				out[at++] = ',';
			at += template_render(
			    &driver->body, first_n + i, out + at);
		}
		at = append(out, at, "]}", 2);
	}
	connection->request_length = at;
	connection->request_sent = 0;
}

/* ---- connections -------------------------------------------------------- */

static void connection_read(evutil_socket_t, short, void *);
static void connection_writable(evutil_socket_t, short, void *);
static void connection_pace(evutil_socket_t, short, void *);
static void connection_next(struct connection *);

static void
driver_abort(struct driver *driver, const char *reason)
{
	if (!driver->aborted) {
		driver->aborted = 1;
		driver->abort_reason = reason;
	}
	event_base_loopbreak(driver->base);
}

static void
driver_count_completion(struct driver *driver)
{
	driver->completed++;
	if (driver->completed >= driver->options.requests)
		event_base_loopbreak(driver->base);
}

/* A blocking connect on loopback, then non-blocking I/O with no Nagle. */
static int
connection_open(struct connection *connection)
{
	struct driver *driver = connection->driver;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (const struct sockaddr *)&driver->address,
		sizeof(driver->address)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
		close(fd);
		return -1;
	}
	connection->fd = fd;
	connection->read_event = event_new(driver->base, fd,
	    EV_READ | EV_PERSIST, connection_read, connection);
	connection->write_event = event_new(driver->base, fd,
	    EV_WRITE | EV_PERSIST, connection_writable, connection);
	if (connection->read_event == NULL || connection->write_event == NULL ||
	    event_add(connection->read_event, NULL) == -1) {
		close(fd);
		connection->fd = -1;
		return -1;
	}
	connection->state = CONNECTION_IDLE;
	connection->input_length = 0;
	connection->close_after = 0;
	return 0;
}

static void
connection_close(struct connection *connection)
{
	if (connection->read_event != NULL)
		event_free(connection->read_event);
	if (connection->write_event != NULL)
		event_free(connection->write_event);
	connection->read_event = connection->write_event = NULL;
	if (connection->fd != -1)
		close(connection->fd);
	connection->fd = -1;
	connection->input_length = 0;
	connection->state = CONNECTION_CLOSED;
}

/*
 * The connection broke or answered nonsense: its request counts as
 * failed, and a fresh connection takes over (unless errors pile up).
 */
static void
connection_fail(struct connection *connection, const char *reason)
{
	struct driver *driver = connection->driver;
	int had_request = connection->state == CONNECTION_SENDING ||
			  connection->state == CONNECTION_HEAD ||
			  connection->state == CONNECTION_BODY;

	connection_close(connection);
	if (had_request) {
		driver->failed++;
		driver_count_completion(driver);
	}
	if (++driver->consecutive_errors > driver->options.max_errors) {
		driver_abort(driver, reason);
		return;
	}
	if (driver->issued >= driver->options.requests)
		return;
	if (connection_open(connection) == -1) {
		driver_abort(driver, "reconnect failed");
		return;
	}
	connection_next(connection);
}

/* Writes what is left of the request; waits for EV_WRITE if it must. */
static void
connection_write(struct connection *connection)
{
	ssize_t written;

	while (connection->request_sent < connection->request_length) {
		written = send(connection->fd,
		    connection->request + connection->request_sent,
		    connection->request_length - connection->request_sent,
		    MSG_NOSIGNAL);
		if (written > 0) {
			connection->request_sent += (size_t)written;
			continue;
		}
		if (written == -1 && (errno == EAGAIN || errno == EINTR)) {
			if (errno == EAGAIN) {
				event_add(connection->write_event, NULL);
				return;
			}
			continue;
		}
		connection_fail(connection, "send failed");
		return;
	}
	event_del(connection->write_event);
	if (connection->state == CONNECTION_SENDING)
		connection->state = CONNECTION_HEAD;
}

static void
connection_writable(evutil_socket_t fd, short what, void *arg)
{
	connection_write(arg);
}

/* Hands the connection the next request, now or when its pace allows. */
static void
connection_next(struct connection *connection)
{
	struct driver *driver = connection->driver;
	uint64_t index, due_ns = 0, now;
	struct timeval wait;

	connection->state = CONNECTION_IDLE;
	if (driver->issued >= driver->options.requests || driver->aborted)
		return;
	now = bench_now_ns();
	if (driver->pace_interval_ns > 0) {
		due_ns = driver->start_ns +
			 driver->issued * driver->pace_interval_ns;
		if (due_ns > now) {
			wait.tv_sec = (time_t)((due_ns - now) / 1000000000u);
			wait.tv_usec =
			    (suseconds_t)((due_ns - now) % 1000000000u / 1000);
			evtimer_add(connection->pace_event, &wait);
			return;
		}
	}
	index = driver->issued++;
	request_build(connection, index);
	/* Paced: from when it was due, so a late send is not hidden. */
	connection->started_ns = due_ns > 0 ? due_ns : now;
	connection->state = CONNECTION_SENDING;
	connection->body_remaining = 0;
	connection_write(connection);
}

static void
connection_pace(evutil_socket_t fd, short what, void *arg)
{
	connection_next(arg);
}

/* A whole response arrived: count it, then send the next request. */
static void
connection_answered(struct connection *connection)
{
	struct driver *driver = connection->driver;

	if (connection->status >= 200 && connection->status <= 299)
		driver->answered_2xx++;
	else
		driver->answered_other++;
	bench_latencies_add(
	    &driver->latencies, bench_now_ns() - connection->started_ns);
	driver->consecutive_errors = 0;
	driver_count_completion(driver);
	if (connection->request_sent < connection->request_length ||
	    connection->input_length > 0 || connection->close_after) {
		/* Answered early, pipelined bytes, or closing: start over. */
		connection->state = CONNECTION_IDLE;
		connection_close(connection);
		if (driver->issued < driver->options.requests &&
		    connection_open(connection) == -1) {
			driver_abort(driver, "reconnect failed");
			return;
		}
	}
	connection_next(connection);
}

/* The value of header name in head (NUL-terminated copy), or NULL. */
static const char *
head_field(const char *head, const char *name, char *value, size_t size)
{
	const char *line = strstr(head, "\r\n"), *end;
	size_t name_length = strlen(name), length;

	while (line != NULL && line[2] != '\0') {
		line += 2;
		end = strstr(line, "\r\n");
		if (end == NULL)
			break;
		if ((size_t)(end - line) > name_length &&
		    line[name_length] == ':' &&
		    strncasecmp(line, name, name_length) == 0) {
			line += name_length + 1;
			while (*line == ' ' || *line == '\t')
				line++;
			length = (size_t)(end - line);
			if (length >= size)
				length = size - 1;
			memcpy(value, line, length);
			value[length] = '\0';
			return value;
		}
		line = end;
	}
	return NULL;
}

/* Parses a complete response head of head_length bytes; -1 if malformed. */
static int
connection_parse_head(struct connection *connection, size_t head_length)
{
	char value[64], *end, saved;
	const char *head = connection->input;
	unsigned long long length;

	if (head_length < 12 || strncmp(head, "HTTP/1.", 7) != 0 ||
	    head[8] != ' ')
		return -1;
	connection->status =
	    (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
	if (connection->status < 100 || connection->status > 599)
		return -1;
	/* The blank line's first CRLF ends the last field; NUL after it. */
	saved = connection->input[head_length - 2];
	connection->input[head_length - 2] = '\0';
	connection->body_remaining = 0;
	connection->close_after = 0;
	if (head_field(head, "Transfer-Encoding", value, sizeof(value)) !=
	    NULL) {
		connection->input[head_length - 2] = saved;
		return -1; /* chunked bodies: nudged never sends them */
	}
	if (head_field(head, "Content-Length", value, sizeof(value)) != NULL) {
		errno = 0;
		length = strtoull(value, &end, 10);
		if (errno != 0 || *end != '\0' || end == value) {
			connection->input[head_length - 2] = saved;
			return -1;
		}
		connection->body_remaining = (size_t)length;
	}
	if (head_field(head, "Connection", value, sizeof(value)) != NULL &&
	    strcasecmp(value, "close") == 0)
		connection->close_after = 1;
	if (strncmp(head, "HTTP/1.0", 8) == 0 &&
	    (head_field(head, "Connection", value, sizeof(value)) == NULL ||
		strcasecmp(value, "keep-alive") != 0))
		connection->close_after = 1;
	connection->input[head_length - 2] = saved;
	return 0;
}

/* Drops the first count bytes of the input buffer. */
static void
input_consume(struct connection *connection, size_t count)
{
	memmove(connection->input, connection->input + count,
	    connection->input_length - count);
	connection->input_length -= count;
}

/* Consumes what arrived: 0 to go on reading, -1 if malformed. */
static int
connection_parse(struct connection *connection)
{
	const char *end;
	size_t head_length, take;

	for (;;) {
		if (connection->state == CONNECTION_SENDING ||
		    connection->state == CONNECTION_HEAD) {
			end = memmem(connection->input,
			    connection->input_length, "\r\n\r\n", 4);
			if (end == NULL)
				return connection->input_length ==
					       sizeof(connection->input)
					   ? -1
					   : 0;
			head_length = (size_t)(end - connection->input) + 4;
			if (connection_parse_head(connection, head_length) ==
			    -1)
				return -1;
			input_consume(connection, head_length);
			connection->state = CONNECTION_BODY;
		}
		if (connection->state != CONNECTION_BODY)
			return connection->input_length > 0 ? -1 : 0;
		take = connection->body_remaining < connection->input_length
			   ? connection->body_remaining
			   : connection->input_length;
		input_consume(connection, take);
		connection->body_remaining -= take;
		if (connection->body_remaining > 0)
			return 0;
		connection_answered(connection);
		/* A closed or idle connection has nothing left to parse. */
		if (connection->state == CONNECTION_CLOSED ||
		    connection->input_length == 0)
			return 0;
	}
}

static void
connection_read(evutil_socket_t fd, short what, void *arg)
{
	struct connection *connection = arg;
	ssize_t got;

	got = read(fd, connection->input + connection->input_length,
	    sizeof(connection->input) - connection->input_length);
	if (got == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got <= 0) {
		connection_fail(
		    connection, got == 0 ? "server closed" : "read failed");
		return;
	}
	connection->input_length += (size_t)got;
	if (connection_parse(connection) == -1)
		connection_fail(connection, "malformed response");
}

/* ---- the run ------------------------------------------------------------ */

/* Builds what every request head shares after the method and path. */
static int
driver_prepare(struct driver *driver)
{
	const struct options *options = &driver->options;
	size_t capacity, body_capacity = 0;
	char *path_text;
	int length;

	if ((path_text = strdup(options->path)) == NULL ||
	    template_compile(&driver->path, path_text, strlen(path_text)) == -1)
		return -1;
	capacity = 256 + strlen(options->host) + strlen(options->token);
	if ((driver->head_middle = malloc(capacity)) == NULL)
		return -1;
	length = snprintf(driver->head_middle, capacity,
	    " HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: nudge-http-driver\r\n"
	    "%s%s%s%s",
	    options->host, options->port,
	    options->token[0] != '\0' ? "Authorization: Bearer " : "",
	    options->token, options->token[0] != '\0' ? "\r\n" : "",
	    driver->body.text != NULL ? "Content-Type: application/json\r\n"
				      : "");
	if (length < 0 || (size_t)length >= capacity)
		return -1;
	driver->head_middle_length = (size_t)length;
	if (driver->body.text != NULL)
		body_capacity = (options->batch > 0 ? options->batch : 1) *
				    (template_capacity(&driver->body) + 1) +
				strlen(options->batch_key) + 16;
	driver->request_capacity =
	    strlen(options->method) + 1 + template_capacity(&driver->path) +
	    driver->head_middle_length + 64 + body_capacity;
	return 0;
}

static void
driver_report(struct driver *driver, double wall_seconds, double cpu)
{
	const struct options *options = &driver->options;
	uint64_t events_each = options->batch > 0 ? options->batch : 1;
	double requests_per_second, events_per_second, cpu_percent;

	requests_per_second =
	    wall_seconds > 0 ? (double)driver->answered_2xx / wall_seconds : 0;
	events_per_second = requests_per_second * (double)events_each;
	cpu_percent = wall_seconds > 0 ? 100.0 * cpu / wall_seconds : 0;
	printf("%s: %s %s on %u connection%s to %s:%u\n", options->name,
	    options->method, options->path, options->connections,
	    options->connections == 1 ? "" : "s", options->host, options->port);
	printf("  %-14s %" PRIu64 " (2xx %" PRIu64 ", other %" PRIu64
	       ", failed %" PRIu64 ")\n",
	    "requests", driver->completed, driver->answered_2xx,
	    driver->answered_other, driver->failed);
	if (options->batch > 0)
		printf("  %-14s %" PRIu64 " (%u per request)\n", "events",
		    driver->answered_2xx * events_each, options->batch);
	printf("  %-14s %.3f s\n", "wall", wall_seconds);
	printf("  %-14s %.0f\n", "requests/s", requests_per_second);
	if (options->batch > 0)
		printf("  %-14s %.0f\n", "events/s", events_per_second);
	bench_latencies_print(&driver->latencies);
	printf("  %-14s %.0f%% of one core%s\n", "driver cpu", cpu_percent,
	    cpu_percent >= SATURATED_PERCENT
		? " (SATURATED: the driver may be the bottleneck)"
		: "");
	if (driver->aborted)
		printf("  %-14s %s\n", "aborted", driver->abort_reason);
	bench_line(options->name, "requests_per_second", 0, requests_per_second,
	    "req/s");
	bench_line(options->name, "events_per_second", 0, events_per_second,
	    "events/s");
	bench_latencies_bench_lines(&driver->latencies, options->name);
	bench_line(options->name, "answered_2xx", 0,
	    (double)driver->answered_2xx, "requests");
	bench_line(options->name, "answered_other", 0,
	    (double)(driver->answered_other + driver->failed), "requests");
	bench_line(options->name, "driver_cpu", 0, cpu_percent, "percent");
	bench_line(options->name, "driver_saturated", 0,
	    cpu_percent >= SATURATED_PERCENT ? 1 : 0, "bool");
}

static void
driver_timeout(evutil_socket_t fd, short what, void *arg)
{
	driver_abort(arg, "timeout");
}

/* SIGINT / SIGTERM: stop, and still report what was measured. */
static void
driver_interrupted(evutil_socket_t signal_number, short what, void *arg)
{
	driver_abort(arg, signal_number == SIGINT ? "interrupted (SIGINT)"
						  : "interrupted (SIGTERM)");
}

static void
usage(FILE *out)
{
	fputs(
	    "usage: http_driver --port P --requests N [--connections C]\n"
	    "    [--host 127.0.0.1] [--path /] [--method GET|POST|PUT]\n"
	    "    [--token T] [--body-file F] [--batch B] [--batch-key events]\n"
	    "    [--first K] [--rate R] [--name NAME] [--timeout SECONDS]\n"
	    "    [--max-errors E]\n"
	    "{{n}} in the body file and the path becomes K, K+1, ... (one\n"
	    "number per event); --batch B sends {\"events\":[...]} of B.\n",
	    out);
}

static int
parse_options(int argc, char **argv, struct options *options)
{
	static const struct option long_options[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"connections", required_argument, NULL, 'c'},
	    {"requests", required_argument, NULL, 'n'},
	    {"path", required_argument, NULL, 'u'},
	    {"method", required_argument, NULL, 'm'},
	    {"token", required_argument, NULL, 't'},
	    {"body-file", required_argument, NULL, 'b'},
	    {"batch", required_argument, NULL, 'B'},
	    {"batch-key", required_argument, NULL, 'k'},
	    {"first", required_argument, NULL, 'f'},
	    {"rate", required_argument, NULL, 'r'},
	    {"name", required_argument, NULL, 'N'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"max-errors", required_argument, NULL, 'E'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	double value;
	int option, index = 0;

	memset(options, 0, sizeof(*options));
	options->host = "127.0.0.1";
	options->connections = 8;
	options->path = "/";
	options->token = "";
	options->name = "http";
	options->batch_key = "events";
	options->first = 1;
	options->timeout_seconds = 600;
	options->max_errors = 100;
	while ((option = getopt_long(argc, argv, "", long_options, &index)) !=
	       -1) {
		switch (option) {
		case 'H':
			options->host = optarg;
			break;
		case 'p':
			if (bench_parse_number(optarg, 1, 65535, &value) == -1)
				goto bad;
			options->port = (unsigned int)value;
			break;
		case 'c':
			if (bench_parse_number(optarg, 1, 10000, &value) == -1)
				goto bad;
			options->connections = (unsigned int)value;
			break;
		case 'n':
			if (bench_parse_number(optarg, 1, 1e9, &value) == -1)
				goto bad;
			options->requests = (uint64_t)value;
			break;
		case 'u':
			options->path = optarg;
			break;
		case 'm':
			options->method = optarg;
			break;
		case 't':
			options->token = optarg;
			break;
		case 'b':
			options->body_file = optarg;
			break;
		case 'B':
			if (bench_parse_number(optarg, 1, 100000, &value) == -1)
				goto bad;
			options->batch = (unsigned int)value;
			break;
		case 'k':
			options->batch_key = optarg;
			break;
		case 'f':
			if (bench_parse_number(optarg, 0, 1e18, &value) == -1)
				goto bad;
			options->first = (uint64_t)value;
			break;
		case 'r':
			if (bench_parse_number(optarg, 0, 1e9, &value) == -1)
				goto bad;
			options->rate = value;
			break;
		case 'N':
			options->name = optarg;
			break;
		case 'T':
			if (bench_parse_number(optarg, 0.001, 86400, &value) ==
			    -1)
				goto bad;
			options->timeout_seconds = value;
			break;
		case 'E':
			if (bench_parse_number(optarg, 0, 1e6, &value) == -1)
				goto bad;
			options->max_errors = (unsigned int)value;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || options->port == 0 || options->requests == 0) {
		usage(stderr);
		return -1;
	}
	if (options->batch > 0 && options->body_file == NULL) {
		fprintf(stderr, "http_driver: --batch needs --body-file\n");
		return -1;
	}
	if (options->method == NULL)
		options->method = options->body_file != NULL ? "POST" : "GET";
	return 0;
bad:
	fprintf(stderr, "http_driver: bad value for --%s: %s\n",
	    long_options[index].name, optarg);
	return -1;
}

int
main(int argc, char **argv)
{
	struct driver driver;
	struct event_config *event_config;
	struct event *timeout_event = NULL;
	struct event *signal_events[2] = {NULL, NULL};
	struct timeval timeout;
	double cpu_before, wall_seconds;
	uint64_t finished_ns;
	unsigned int i;
	int status = 1;

	memset(&driver, 0, sizeof(driver));
	if (parse_options(argc, argv, &driver.options) == -1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	/* Lines reach a file as they are printed, even if killed later. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	driver.address.sin_family = AF_INET;
	driver.address.sin_port = htons((uint16_t)driver.options.port);
	if (inet_pton(AF_INET, driver.options.host, &driver.address.sin_addr) !=
	    1) {
		fprintf(stderr, "http_driver: --host wants an IPv4 address\n");
		return 1;
	}
	if (driver.options.body_file != NULL &&
	    read_body_file(driver.options.body_file, &driver.body) == -1)
		return 1;
	if (driver_prepare(&driver) == -1) {
		fprintf(stderr, "http_driver: out of memory\n");
		goto done;
	}
	/* Precise timers: the coarse clock steps in 4 ms on this kernel. */
	if ((event_config = event_config_new()) == NULL)
		goto done;
	event_config_set_flag(event_config, EVENT_BASE_FLAG_PRECISE_TIMER);
	driver.base = event_base_new_with_config(event_config);
	event_config_free(event_config);
	driver.connections =
	    calloc(driver.options.connections, sizeof(*driver.connections));
	if (driver.base == NULL ||
	    bench_latencies_init(&driver.latencies, driver.options.requests) ==
		-1 ||
	    driver.connections == NULL) {
		fprintf(stderr, "http_driver: out of memory\n");
		goto done;
	}
	for (i = 0; i < driver.options.connections; i++) {
		struct connection *connection = &driver.connections[i];

		connection->driver = &driver;
		connection->fd = -1;
		connection->request = malloc(driver.request_capacity);
		connection->pace_event =
		    evtimer_new(driver.base, connection_pace, connection);
		if (connection->request == NULL ||
		    connection->pace_event == NULL) {
			fprintf(stderr, "http_driver: out of memory\n");
			goto done;
		}
		if (connection_open(connection) == -1) {
			fprintf(stderr, "http_driver: connect %s:%u: %s\n",
			    driver.options.host, driver.options.port,
			    strerror(errno));
			goto done;
		}
	}
	timeout.tv_sec = (time_t)driver.options.timeout_seconds;
	timeout.tv_usec = (suseconds_t)((driver.options.timeout_seconds -
					    (double)timeout.tv_sec) *
					1e6);
	timeout_event = evtimer_new(driver.base, driver_timeout, &driver);
	if (timeout_event == NULL || evtimer_add(timeout_event, &timeout) == -1)
		goto done;
	signal_events[0] =
	    evsignal_new(driver.base, SIGINT, driver_interrupted, &driver);
	signal_events[1] =
	    evsignal_new(driver.base, SIGTERM, driver_interrupted, &driver);
	if (signal_events[0] == NULL || signal_events[1] == NULL ||
	    evsignal_add(signal_events[0], NULL) == -1 ||
	    evsignal_add(signal_events[1], NULL) == -1)
		goto done;
	if (driver.options.rate > 0)
		driver.pace_interval_ns = (uint64_t)(1e9 / driver.options.rate);
	cpu_before = bench_cpu_seconds();
	driver.start_ns = bench_now_ns();
	for (i = 0; i < driver.options.connections; i++)
		connection_next(&driver.connections[i]);
	if (driver.completed < driver.options.requests && !driver.aborted)
		event_base_dispatch(driver.base);
	finished_ns = bench_now_ns();
	wall_seconds = (double)(finished_ns - driver.start_ns) / 1e9;
	driver_report(&driver, wall_seconds, bench_cpu_seconds() - cpu_before);
	if (driver.aborted)
		fprintf(stderr, "http_driver: %s: aborted: %s\n",
		    driver.options.name, driver.abort_reason);
	status = driver.aborted ? 1
		 : driver.answered_2xx == driver.options.requests
		     ? 0
		     : EXIT_NOT_ALL_2XX;
done:
	if (driver.connections != NULL)
		for (i = 0; i < driver.options.connections; i++) {
			connection_close(&driver.connections[i]);
			if (driver.connections[i].pace_event != NULL)
				event_free(driver.connections[i].pace_event);
			free(driver.connections[i].request);
		}
	if (timeout_event != NULL)
		event_free(timeout_event);
	for (i = 0; i < 2; i++)
		if (signal_events[i] != NULL)
			event_free(signal_events[i]);
	if (driver.base != NULL)
		event_base_free(driver.base);
	free(driver.connections);
	bench_latencies_free(&driver.latencies);
	free(driver.head_middle);
	template_free(&driver.body);
	template_free(&driver.path);
	return status;
}
