/*
 * nudgectl.c - the ops tool. Opens nudged's LMDB store read-only from
 * another process, beside a running daemon, and shows what is in it: the
 * delivery-receipt and MO logs (the last N entries, then new ones as they
 * appear, like tail -f), link states and counters with rates, and one
 * message with its parts and history.
 *
 * The records are decoded here from their layouts in nudged.h: the outbox
 * and link modules need the running daemon and are never called. Phone
 * numbers are masked in every output, text and JSON alike.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "nudged.h"
#include "smpp.h"

#define DEFAULT_CONFIG        "/etc/nudge/nudged.conf"
#define DEFAULT_TAIL_COUNT    10
#define MAXIMUM_TAIL_COUNT    10000000
#define POLL_INTERVAL_US      200000 /* -f: how often the log is re-read */
#define DEFAULT_STATS_SECONDS 1
#define MAXIMUM_STATS_SECONDS 3600
#define SEQUENCE_KEY_SIZE     8
#define MESSAGE_KEY_SIZE      8
#define PART_KEY_SIZE         9
#define TIME_TEXT_SIZE        32

#define nitems(array) (sizeof(array) / sizeof((array)[0]))

/* Long options without a short letter. */
enum long_option {
	OPTION_JSON = 0x100,
	OPTION_STATUS,
	OPTION_LINK,
	OPTION_INTERVAL,
};

/* Where the store is: -D, else data_dir of the configuration file. */
struct target {
	const char *config_path;
	const char *data_dir; /* -D, or NULL */
};

/* A command of the table: `name [subcommand] options...`. */
struct command {
	const char *name;
	const char *subcommand; /* NULL: none */
	const char *synopsis;   /* options, for the usage text */
	int (*run)(const struct target *target, int argc, char **argv);
};

/* How one log (receipts or MO) is filtered and printed. */
struct tail_options;
struct log_kind {
	const char *name;
	enum store_db db;
	size_t record_size; /* the fixed part of a value */
	/* 1 if the value is sound and passes the filters. */
	int (*matches)(const struct tail_options *options, const void *value,
	    size_t length);
	void (*print)(const struct tail_options *options, uint64_t sequence,
	    const void *value, size_t length);
};

struct tail_options {
	const struct log_kind *kind;
	uint64_t count;
	int follow;
	int json;
	const char *status; /* receipt state name, or NULL */
	const char *link;   /* link name, or NULL */
};

/* One link's status record as read from STORE_DB_META. */
struct link_snapshot {
	char name[OUTBOX_LINK_NAME_SIZE];
	struct outbox_link_status_record record;
};

struct stats_snapshot {
	uint64_t queue_depth;
	struct link_snapshot *links;
	size_t link_count;
};

/* A counter of the link-status record; rated ones get a per-second rate. */
struct link_counter {
	const char *name;
	size_t offset;
	int rated;
};

static int run_dlr_tail(const struct target *, int, char **);
static int run_mo_tail(const struct target *, int, char **);
static int run_stats(const struct target *, int, char **);
static int run_message(const struct target *, int, char **);
static int run_subscriber(const struct target *, int, char **);
static int run_rules_check(const struct target *, int, char **);
static int run_consent_import(const struct target *, int, char **);
static int run_conversations(const struct target *, int, char **);
static int receipt_matches(const struct tail_options *, const void *, size_t);
static void receipt_print(
    const struct tail_options *, uint64_t, const void *, size_t);
static int mo_matches(const struct tail_options *, const void *, size_t);
static void mo_print(
    const struct tail_options *, uint64_t, const void *, size_t);

static const struct command commands[] = {
    {"dlr", "tail", "[-f] [-n count] [--json] [--status state] [--link name]",
	run_dlr_tail},
    {"mo", "tail", "[-f] [-n count] [--json]", run_mo_tail},
    {"stats", NULL, "[--json] [--interval seconds]", run_stats},
    {"message", NULL, "id [--json]", run_message},
    {"subscriber", NULL, "number [--json] [-n count]", run_subscriber},
    {"conversations", NULL, "[--json] [--all]", run_conversations},
    {"consent", "import", "[--json] file.csv", run_consent_import},
    {"rules", "check", "[--max-parts n] [--preview] [path ...]",
	run_rules_check},
};

static const struct log_kind receipt_log = {"receipt", STORE_DB_RECEIPTS,
    sizeof(struct receipt_record), receipt_matches, receipt_print};

static const struct log_kind mo_log = {
    "MO", STORE_DB_MO, sizeof(struct mo_record), mo_matches, mo_print};

#define COUNTER(field, label, rated)                                      \
	{                                                                 \
		label, offsetof(struct outbox_link_status_record, field), \
		    rated                                                 \
	}
static const struct link_counter link_counters[] = {
    COUNTER(binds, "binds", 0),
    COUNTER(reconnects, "reconnects", 0),
    COUNTER(submitted, "submitted", 1),
    COUNTER(acknowledged, "acknowledged", 1),
    COUNTER(throttled, "throttled", 1),
    COUNTER(rejected, "rejected", 1),
    COUNTER(timeouts, "timeouts", 1),
    COUNTER(delivered_in, "deliver_sm", 1),
};
#undef COUNTER

static volatile sig_atomic_t stop_requested;

/* Prints the usage text, generated from the command table. */
static void
usage(FILE *out)
{
	size_t i;

	fprintf(out,
	    "usage: nudgectl [-c config | -D data_dir] command "
	    "[options]\n"
	    "  -c config    nudged's configuration (default " DEFAULT_CONFIG
	    ")\n"
	    "  -D data_dir  the store's directory (wins over -c)\n"
	    "commands:\n");
	for (i = 0; i < nitems(commands); i++)
		fprintf(out, "  %s%s%s %s\n", commands[i].name,
		    commands[i].subcommand != NULL ? " " : "",
		    commands[i].subcommand != NULL ? commands[i].subcommand
						   : "",
		    commands[i].synopsis);
}

static __dead void
usage_error(void)
{
	usage(stderr);
	exit(2);
}

static void
on_stop_signal(int signal_number)
{
	(void)signal_number;
	stop_requested = 1;
}

/* SIGINT and SIGTERM end a -f loop or a stats interval cleanly. */
static void
catch_stop_signals(void)
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	action.sa_handler = on_stop_signal;
	sigemptyset(&action.sa_mask);
	/* No SA_RESTART: a signal must cut the sleep short. */
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
}

/* Sleeps up to microseconds; returns early once a stop was asked for. */
static void
pause_microseconds(uint64_t microseconds)
{
	struct timespec wanted, left;

	wanted.tv_sec = (time_t)(microseconds / 1000000);
	wanted.tv_nsec = (long)(microseconds % 1000000) * 1000;
	while (!stop_requested && nanosleep(&wanted, &left) == -1 &&
	       errno == EINTR)
		wanted = left;
}

/* Parses a decimal number within [minimum, maximum]; 0 on success. */
static int
parse_number(
    const char *text, uint64_t minimum, uint64_t maximum, uint64_t *value)
{
	unsigned long long parsed;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	parsed = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || parsed < minimum || parsed > maximum)
		return -1;
	*value = parsed;
	return 0;
}

/* "2026-11-23T02:31:07.123Z" for a time in microseconds; "-" for 0. */
static const char *
time_text(uint64_t microseconds, char *buffer, size_t size)
{
	time_t seconds = (time_t)(microseconds / 1000000);
	struct tm tm;
	char stamp[24];

	if (microseconds == 0 || gmtime_r(&seconds, &tm) == NULL) {
		snprintf(buffer, size, "-");
		return buffer;
	}
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buffer, size, "%s.%03uZ", stamp,
	    (unsigned int)(microseconds / 1000 % 1000));
	return buffer;
}

/* A masked number, or "-" when the field is empty. */
static const char *
masked_text(const char *number, char *buffer, size_t size)
{
	if (number[0] == '\0') {
		snprintf(buffer, size, "-");
		return buffer;
	}
	return log_mask_number(number, buffer, size);
}

/* A fixed-size text field of a record, or "-" when empty. */
static const char *
field_text(const char *field)
{
	return field[0] != '\0' ? field : "-";
}

/* Writes text quoted, with quotes, backslashes and controls escaped. */
static void
print_quoted(const char *text, size_t length)
{
	const unsigned char *bytes = (const unsigned char *)text;
	static const struct {
		unsigned char byte;
		char escape;
	} escapes[] = {
	    {'"', '"'},
	    {'\\', '\\'},
	    {'\n', 'n'},
	    {'\r', 'r'},
	    {'\t', 't'},
	};
	size_t i, j;

	putchar('"');
	for (i = 0; i < length; i++) {
		for (j = 0; j < nitems(escapes); j++)
			if (bytes[i] == escapes[j].byte)
				break;
		if (j < nitems(escapes))
			printf("\\%c", escapes[j].escape);
		else if (bytes[i] < 0x20 || bytes[i] == 0x7f)
			printf("\\x%02x", bytes[i]);
		else
			putchar(bytes[i]);
	}
	putchar('"');
}

/* A JSON string of bytes that may not be UTF-8 ('?' replaces such bytes). */
static json_t *
json_text(const char *text, size_t length)
{
	json_t *value;
	char *copy;
	size_t i;

	if ((value = json_stringn(text, length)) != NULL)
		return value;
	if ((copy = malloc(length + 1)) == NULL)
		return json_null();
	for (i = 0; i < length; i++)
		copy[i] = (unsigned char)text[i] < 0x80 && text[i] != '\0'
			      ? text[i]
			      : '?';
	copy[length] = '\0';
	value = json_stringn(copy, length);
	free(copy);
	return value != NULL ? value : json_null();
}

/* A NUL-terminated field of a record as a JSON string, null when empty. */
static json_t *
json_field(const char *field)
{
	if (field[0] == '\0')
		return json_null();
	return json_text(field, strlen(field));
}

static json_t *
json_masked(const char *number)
{
	char masked[LOG_MASKED_NUMBER_SIZE];

	if (number[0] == '\0')
		return json_null();
	log_mask_number(number, masked, sizeof(masked));
	return json_text(masked, strlen(masked));
}

static json_t *
json_time(uint64_t microseconds)
{
	char text[TIME_TEXT_SIZE];

	if (microseconds == 0)
		return json_null();
	time_text(microseconds, text, sizeof(text));
	return json_string(text);
}

static json_t *
json_uint(uint64_t value)
{
	return json_integer((json_int_t)value);
}

/* Prints one JSON object on its own line and releases it. */
static void
print_json_line(json_t *object)
{
	if (object == NULL)
		return;
	json_dumpf(object, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
	putchar('\n');
	json_decref(object);
}

/* Ends a line of -f output: it must reach a pipe at once. */
static int
flush_line(int follow)
{
	if (follow && fflush(stdout) == EOF)
		return -1;
	return ferror(stdout) ? -1 : 0;
}

/* -D, else data_dir of the configuration file; NULL on failure. */
static char *
resolve_data_dir(const char *config_path, const char *data_dir)
{
	struct config *config;
	char *resolved;
	int errors = 0;

	if (data_dir != NULL)
		return strdup(data_dir);
	if ((config = config_load(config_path, &errors)) == NULL) {
		fprintf(stderr, "nudgectl: %s: %d error%s\n", config_path,
		    errors, errors == 1 ? "" : "s");
		return NULL;
	}
	resolved = strdup(config->data_dir);
	config_free(config);
	return resolved;
}

/* Opens the store read-only, with a clear message when it is not there. */
static struct store *
open_store(const struct target *target)
{
	struct store_options options;
	struct store *store = NULL;
	struct stat st;
	char *data_dir, *path = NULL;

	if ((data_dir = resolve_data_dir(
		 target->config_path, target->data_dir)) == NULL)
		return NULL;
	if (stat(data_dir, &st) == -1) {
		fprintf(stderr, "nudgectl: data directory %s: %s\n", data_dir,
		    strerror(errno));
		goto done;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr,
		    "nudgectl: data directory %s: not a directory\n", data_dir);
		goto done;
	}
	if (asprintf(&path, "%s/data.mdb", data_dir) == -1) {
		path = NULL;
		fprintf(stderr, "nudgectl: out of memory\n");
		goto done;
	}
	if (stat(path, &st) == -1) {
		fprintf(stderr,
		    "nudgectl: %s: %s (has nudged run with this data "
		    "directory?)\n",
		    path, strerror(errno));
		goto done;
	}
	memset(&options, 0, sizeof(options));
	options.path = data_dir;
	options.read_only = 1;
	if ((store = store_open(&options)) == NULL)
		fprintf(stderr, "nudgectl: cannot open the store in %s\n",
		    data_dir);
done:
	free(path);
	free(data_dir);
	return store;
}

/* ---- the logs: receipts and MO ------------------------------------------- */

/* A receipt passes --link and --status (its state's name, any case). */
static int
receipt_matches(
    const struct tail_options *options, const void *value, size_t length)
{
	struct receipt_record record;

	if (length < sizeof(record))
		return 0;
	memcpy(&record, value, sizeof(record));
	record.link[sizeof(record.link) - 1] = '\0';
	if (options->link != NULL && strcmp(record.link, options->link) != 0)
		return 0;
	if (options->status != NULL &&
	    strcasecmp(smpp_receipt_state_name(
			   (enum smpp_message_state)record.receipt_state),
		options->status) != 0)
		return 0;
	return 1;
}

/* Terminates every text field of a receipt copied from the store. */
static void
receipt_terminate(struct receipt_record *record)
{
	record->link[sizeof(record->link) - 1] = '\0';
	record->smsc_id[sizeof(record->smsc_id) - 1] = '\0';
	record->to[sizeof(record->to) - 1] = '\0';
	record->stat[sizeof(record->stat) - 1] = '\0';
}

/* Seconds from submit_sm to the receipt, or -1 when either is unknown. */
static double
receipt_latency(const struct receipt_record *record)
{
	if (record->submitted_us == 0 || record->time_us < record->submitted_us)
		return -1;
	return (double)(record->time_us - record->submitted_us) / 1e6;
}

/* One receipt as a JSON object on its own line. */
static void
receipt_print_json(uint64_t sequence, const struct receipt_record *record)
{
	json_t *object;
	double latency = receipt_latency(record);

	object = json_object();
	json_object_set_new(object, "sequence", json_uint(sequence));
	json_object_set_new(object, "time", json_time(record->time_us));
	json_object_set_new(object, "time_us", json_uint(record->time_us));
	json_object_set_new(object, "to", json_masked(record->to));
	json_object_set_new(object, "matched", json_boolean(record->matched));
	json_object_set_new(object, "message_id",
	    record->matched ? json_uint(record->message_id) : json_null());
	json_object_set_new(object, "part",
	    record->matched ? json_uint(record->part) : json_null());
	json_object_set_new(object, "link", json_field(record->link));
	json_object_set_new(object, "status",
	    json_string(smpp_receipt_state_name(
		(enum smpp_message_state)record->receipt_state)));
	json_object_set_new(object, "stat", json_field(record->stat));
	json_object_set_new(object, "error", json_uint(record->error_code));
	json_object_set_new(object, "latency_s",
	    latency < 0 ? json_null() : json_real(latency));
	json_object_set_new(object, "smsc_id", json_field(record->smsc_id));
	json_object_set_new(object, "part_state",
	    record->matched ? json_string(outbox_strstate(record->part_state))
			    : json_null());
	print_json_line(object);
}

/* One receipt: "TIME NUMBER msg=ID part=N link=L status=S err=E latency=Ls". */
static void
receipt_print(const struct tail_options *options, uint64_t sequence,
    const void *value, size_t length)
{
	struct receipt_record record;
	char when[TIME_TEXT_SIZE], masked[LOG_MASKED_NUMBER_SIZE];
	double latency;

	memcpy(&record, value, sizeof(record));
	receipt_terminate(&record);
	if (options->json) {
		receipt_print_json(sequence, &record);
		return;
	}
	printf("%s %s", time_text(record.time_us, when, sizeof(when)),
	    masked_text(record.to, masked, sizeof(masked)));
	if (record.matched)
		printf(" msg=%" PRIu64 " part=%u", record.message_id,
		    (unsigned int)record.part);
	else
		printf(" msg=- smsc_id=%s", field_text(record.smsc_id));
	printf(" link=%s status=%s err=%" PRIu32, field_text(record.link),
	    smpp_receipt_state_name(
		(enum smpp_message_state)record.receipt_state),
	    record.error_code);
	if ((latency = receipt_latency(&record)) < 0)
		printf(" latency=-\n");
	else
		printf(" latency=%.3fs\n", latency);
}

/* An MO passes --link (no filter is offered for mo tail yet). */
static int
mo_matches(const struct tail_options *options, const void *value, size_t length)
{
	struct mo_record record;

	if (length < sizeof(record))
		return 0;
	memcpy(&record, value, sizeof(record));
	record.link[sizeof(record.link) - 1] = '\0';
	if (options->link != NULL && strcmp(record.link, options->link) != 0)
		return 0;
	return 1;
}

/* One MO: time, masked numbers, link, parts, completeness and its text. */
static void
mo_print(const struct tail_options *options, uint64_t sequence,
    const void *value, size_t length)
{
	struct mo_record record;
	const char *text = (const char *)value + sizeof(record);
	char when[TIME_TEXT_SIZE], from[LOG_MASKED_NUMBER_SIZE];
	char to[LOG_MASKED_NUMBER_SIZE];
	size_t text_length;
	json_t *object;

	memcpy(&record, value, sizeof(record));
	record.link[sizeof(record.link) - 1] = '\0';
	record.from[sizeof(record.from) - 1] = '\0';
	record.to[sizeof(record.to) - 1] = '\0';
	text_length = record.text_length;
	if (text_length > length - sizeof(record))
		text_length = length - sizeof(record);
	if (options->json) {
		object = json_object();
		json_object_set_new(object, "sequence", json_uint(sequence));
		json_object_set_new(object, "time", json_time(record.time_us));
		json_object_set_new(
		    object, "time_us", json_uint(record.time_us));
		json_object_set_new(object, "from", json_masked(record.from));
		json_object_set_new(object, "to", json_masked(record.to));
		json_object_set_new(object, "link", json_field(record.link));
		json_object_set_new(object, "parts", json_uint(record.parts));
		json_object_set_new(
		    object, "complete", json_boolean(record.complete));
		json_object_set_new(
		    object, "data_coding", json_uint(record.data_coding));
		json_object_set_new(
		    object, "text", json_text(text, text_length));
		print_json_line(object);
		return;
	}
	printf("%s from=%s to=%s link=%s parts=%u complete=%s text=",
	    time_text(record.time_us, when, sizeof(when)),
	    masked_text(record.from, from, sizeof(from)),
	    masked_text(record.to, to, sizeof(to)), field_text(record.link),
	    (unsigned int)record.parts, record.complete ? "yes" : "no");
	print_quoted(text, text_length);
	putchar('\n');
}

/* Decodes a log key (8-byte big-endian sequence); 0 if it is not one. */
static int
sequence_of(const void *key, size_t key_length, uint64_t *sequence)
{
	if (key_length != SEQUENCE_KEY_SIZE)
		return 0;
	*sequence = store_decode_u64(key);
	return 1;
}

/* Seeks to the first key >= sequence; STORE_NOT_FOUND past the end. */
static enum store_result
seek_sequence(struct store_cursor *cursor, uint64_t sequence, uint64_t *found,
    const void **value, size_t *value_length)
{
	uint8_t key[SEQUENCE_KEY_SIZE];
	const void *found_key;
	size_t found_key_length;
	enum store_result result;

	store_encode_u64(key, sequence);
	result = store_cursor_seek(cursor, key, sizeof(key), &found_key,
	    &found_key_length, value, value_length);
	if (result != STORE_OK)
		return result;
	if (!sequence_of(found_key, found_key_length, found)) {
		fprintf(stderr, "nudgectl: a log key of %zu bytes, not 8\n",
		    found_key_length);
		return STORE_ERROR;
	}
	return STORE_OK;
}

/*
 * The first and last sequence of a log. There is no "last key" in the
 * store's API, so the last one is found by bisection over the key space
 * with seeks: about 64 of them, whatever the size of the log.
 */
static enum store_result
log_bounds(
    struct store *store, enum store_db db, uint64_t *first, uint64_t *last)
{
	struct store_cursor *cursor;
	enum store_result result;
	uint64_t low, high, middle, found;

	if ((result = store_cursor_open(store, db, &cursor)) != STORE_OK)
		return result;
	if ((result = seek_sequence(cursor, 0, first, NULL, NULL)) != STORE_OK)
		goto done;
	/* Invariant: a key >= low exists, and none above high. */
	low = *first;
	high = UINT64_MAX;
	while (low < high) {
		middle = low + (high - low) / 2 + 1;
		result = seek_sequence(cursor, middle, &found, NULL, NULL);
		if (result == STORE_OK)
			low = found;
		else if (result == STORE_NOT_FOUND)
			high = middle - 1;
		else
			goto done;
	}
	*last = low;
	result = STORE_OK;
done:
	store_cursor_close(cursor);
	return result;
}

/*
 * Walks the log from sequence `from` to `to` (inclusive): counts entries
 * that pass the filters and prints those after the first `skip` of them
 * when print is set. *last_seen is the last sequence walked over.
 */
static enum store_result
walk_log(struct store *store, const struct tail_options *options, uint64_t from,
    uint64_t to, int print, uint64_t skip, uint64_t *matched,
    uint64_t *last_seen)
{
	const struct log_kind *kind = options->kind;
	struct store_cursor *cursor;
	enum store_result result;
	const void *key, *value;
	size_t key_length, value_length;
	uint64_t sequence;

	*matched = 0;
	result = store_cursor_open(store, kind->db, &cursor);
	if (result != STORE_OK)
		return result == STORE_NOT_FOUND ? STORE_OK : result;
	result = seek_sequence(cursor, from, &sequence, &value, &value_length);
	while (result == STORE_OK && sequence <= to) {
		if (last_seen != NULL)
			*last_seen = sequence;
		if (value_length < kind->record_size)
			fprintf(stderr,
			    "nudgectl: %s %" PRIu64 ": %zu bytes, expected "
			    "%zu; skipped\n",
			    kind->name, sequence, value_length,
			    kind->record_size);
		else if (kind->matches(options, value, value_length)) {
			if (print && *matched >= skip) {
				kind->print(
				    options, sequence, value, value_length);
				if (flush_line(options->follow) == -1) {
					result = STORE_ERROR;
					break;
				}
			}
			(*matched)++;
		}
		result = store_cursor_next(
		    cursor, &key, &key_length, &value, &value_length);
		if (result == STORE_OK &&
		    !sequence_of(key, key_length, &sequence))
			result = STORE_ERROR;
	}
	store_cursor_close(cursor);
	return result == STORE_NOT_FOUND || result == STORE_OK ? STORE_OK
							       : result;
}

/*
 * Prints the last `count` entries that pass the filters, oldest first.
 * Reads backwards in doubling spans of sequences from the end, so a tail
 * of a long log costs about what it prints (more when filters are picky).
 */
static enum store_result
tail_last(struct store *store, const struct tail_options *options,
    uint64_t *last_seen)
{
	enum store_result result;
	uint64_t first, last, span, start, matched;

	*last_seen = 0;
	result = log_bounds(store, options->kind->db, &first, &last);
	if (result == STORE_NOT_FOUND)
		return STORE_OK;
	if (result != STORE_OK)
		return result;
	*last_seen = last;
	if (options->count == 0)
		return STORE_OK;
	for (span = options->count;;
	     span = span > UINT64_MAX / 2 ? UINT64_MAX : span * 2) {
		start = last - first < span ? first : last - span + 1;
		result =
		    walk_log(store, options, start, last, 0, 0, &matched, NULL);
		if (result != STORE_OK)
			return result;
		if (matched >= options->count || start == first)
			break;
	}
	return walk_log(store, options, start, last, 1,
	    matched > options->count ? matched - options->count : 0, &matched,
	    NULL);
}

/*
 * -f: every POLL_INTERVAL_US, ends the read snapshot (store_commit) so the
 * daemon's new commits become visible, and prints what follows the last
 * sequence seen, in sequence order, until SIGINT or SIGTERM.
 */
static enum store_result
tail_follow(
    struct store *store, const struct tail_options *options, uint64_t last_seen)
{
	enum store_result result = STORE_OK;
	uint64_t matched;

	catch_stop_signals();
	while (!stop_requested) {
		/* Why: a reader's snapshot pins pages the writer needs. */
		store_commit(store);
		pause_microseconds(POLL_INTERVAL_US);
		if (stop_requested || last_seen == UINT64_MAX)
			break;
		result = walk_log(store, options, last_seen + 1, UINT64_MAX, 1,
		    0, &matched, &last_seen);
		if (result != STORE_OK)
			break;
	}
	store_commit(store);
	return result;
}

/* Shared by dlr tail and mo tail once their options are parsed. */
static int
tail_run(const struct target *target, const struct tail_options *options)
{
	struct store *store;
	enum store_result result;
	uint64_t last_seen;

	if ((store = open_store(target)) == NULL)
		return 1;
	result = tail_last(store, options, &last_seen);
	if (result == STORE_OK && flush_line(1) == -1)
		result = STORE_ERROR;
	if (result == STORE_OK && options->follow)
		result = tail_follow(store, options, last_seen);
	store_close(store);
	if (result != STORE_OK && ferror(stdout))
		fprintf(stderr, "nudgectl: writing the output failed\n");
	else if (result != STORE_OK)
		fprintf(stderr, "nudgectl: reading the %s log failed\n",
		    options->kind->name);
	return result == STORE_OK ? 0 : 1;
}

/* 1 if name is a receipt state (any case): NONE ... REJECTED. */
static int
receipt_state_known(const char *name)
{
	int state;

	for (state = SMPP_MESSAGE_STATE_NONE;
	     state <= SMPP_MESSAGE_STATE_REJECTED; state++)
		if (strcasecmp(
			smpp_receipt_state_name((enum smpp_message_state)state),
			name) == 0)
			return 1;
	return 0;
}

/* Options common to both tails; extra long options for dlr tail. */
static int
tail_parse(
    int argc, char **argv, struct tail_options *options, int with_filters)
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, OPTION_JSON},
	    {"status", required_argument, NULL, OPTION_STATUS},
	    {"link", required_argument, NULL, OPTION_LINK},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int option;

	options->count = DEFAULT_TAIL_COUNT;
	optind = 0;
	while ((option = getopt_long(argc, argv, "fn:h", long_options, NULL)) !=
	       -1) {
		switch (option) {
		case 'f':
			options->follow = 1;
			break;
		case 'n':
			if (parse_number(optarg, 0, MAXIMUM_TAIL_COUNT,
				&options->count) == -1) {
				fprintf(stderr,
				    "nudgectl: -n %s: not a count "
				    "from 0 to %d\n",
				    optarg, MAXIMUM_TAIL_COUNT);
				return 2;
			}
			break;
		case OPTION_JSON:
			options->json = 1;
			break;
		case OPTION_STATUS:
		case OPTION_LINK:
			if (!with_filters)
				usage_error();
			if (option == OPTION_LINK) {
				options->link = optarg;
				break;
			}
			if (!receipt_state_known(optarg)) {
				fprintf(stderr,
				    "nudgectl: --status %s: not a "
				    "receipt state (DELIVERED, "
				    "UNDELIVERABLE, EXPIRED, ...)\n",
				    optarg);
				return 2;
			}
			options->status = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage_error();
		}
	}
	if (optind != argc)
		usage_error();
	return 0;
}

/* dlr tail: the receipt log. */
static int
run_dlr_tail(const struct target *target, int argc, char **argv)
{
	struct tail_options options;
	int rc;

	memset(&options, 0, sizeof(options));
	options.kind = &receipt_log;
	if ((rc = tail_parse(argc, argv, &options, 1)) != 0)
		return rc;
	return tail_run(target, &options);
}

/* mo tail: the MO log. */
static int
run_mo_tail(const struct target *target, int argc, char **argv)
{
	struct tail_options options;
	int rc;

	memset(&options, 0, sizeof(options));
	options.kind = &mo_log;
	if ((rc = tail_parse(argc, argv, &options, 0)) != 0)
		return rc;
	return tail_run(target, &options);
}

/* ---- stats --------------------------------------------------------------- */

/* Entries in STORE_DB_QUEUE: messages with parts waiting to be sent. */
static enum store_result
count_queue(struct store *store, uint64_t *depth)
{
	struct store_cursor *cursor;
	enum store_result result;

	*depth = 0;
	result = store_cursor_open(store, STORE_DB_QUEUE, &cursor);
	if (result != STORE_OK)
		return result == STORE_NOT_FOUND ? STORE_OK : result;
	result = store_cursor_seek(cursor, NULL, 0, NULL, NULL, NULL, NULL);
	while (result == STORE_OK) {
		(*depth)++;
		result = store_cursor_next(cursor, NULL, NULL, NULL, NULL);
	}
	store_cursor_close(cursor);
	return result == STORE_NOT_FOUND ? STORE_OK : result;
}

/* Appends one link's record to the snapshot. */
static int
snapshot_add_link(struct stats_snapshot *snapshot, const char *name,
    size_t name_length, const void *value)
{
	struct link_snapshot *grown, *link;

	grown = reallocarray(
	    snapshot->links, snapshot->link_count + 1, sizeof(*grown));
	if (grown == NULL)
		return -1;
	snapshot->links = grown;
	link = &grown[snapshot->link_count++];
	memset(link, 0, sizeof(*link));
	if (name_length >= sizeof(link->name))
		name_length = sizeof(link->name) - 1;
	memcpy(link->name, name, name_length);
	memcpy(&link->record, value, sizeof(link->record));
	return 0;
}

/* Reads the queue depth and every "link-status/NAME" record. */
static enum store_result
read_snapshot(struct store *store, struct stats_snapshot *snapshot)
{
	static const char prefix[] = OUTBOX_LINK_STATUS_PREFIX;
	const size_t prefix_length = sizeof(prefix) - 1;
	struct store_cursor *cursor;
	enum store_result result;
	const void *key, *value;
	size_t key_length, value_length;

	memset(snapshot, 0, sizeof(*snapshot));
	if ((result = count_queue(store, &snapshot->queue_depth)) != STORE_OK)
		return result;
	result = store_cursor_open(store, STORE_DB_META, &cursor);
	if (result != STORE_OK)
		return result == STORE_NOT_FOUND ? STORE_OK : result;
	result = store_cursor_seek(cursor, prefix, prefix_length, &key,
	    &key_length, &value, &value_length);
	while (result == STORE_OK && key_length > prefix_length &&
	       memcmp(key, prefix, prefix_length) == 0) {
		if (value_length < sizeof(struct outbox_link_status_record))
			fprintf(stderr, "nudgectl: %.*s: %zu bytes; skipped\n",
			    (int)key_length, (const char *)key, value_length);
		else if (snapshot_add_link(snapshot,
			     (const char *)key + prefix_length,
			     key_length - prefix_length, value) == -1) {
			result = STORE_ERROR;
			break;
		}
		result = store_cursor_next(
		    cursor, &key, &key_length, &value, &value_length);
	}
	store_cursor_close(cursor);
	return result == STORE_NOT_FOUND || result == STORE_OK ? STORE_OK
							       : result;
}

/* A counter of a link-status record, by its offset in the table. */
static uint64_t
counter_value(const struct outbox_link_status_record *record,
    const struct link_counter *counter)
{
	uint64_t value;

	memcpy(
	    &value, (const uint8_t *)record + counter->offset, sizeof(value));
	return value;
}

/* The same link in another snapshot (NULL: none, or no snapshot). */
static const struct link_snapshot *
snapshot_find(const struct stats_snapshot *snapshot, const char *name)
{
	size_t i;

	for (i = 0; snapshot != NULL && i < snapshot->link_count; i++)
		if (strcmp(snapshot->links[i].name, name) == 0)
			return &snapshot->links[i];
	return NULL;
}

/*
 * Per-second rate of a counter between two records of one link, or -1.
 * Why the records' own times and not the reading times: nudged writes the
 * record once a second, so the counters move in steps at those times.
 */
static double
counter_rate(const struct link_snapshot *before,
    const struct link_snapshot *after, const struct link_counter *counter)
{
	uint64_t old_value, new_value;

	if (before == NULL ||
	    after->record.updated_us <= before->record.updated_us)
		return -1;
	old_value = counter_value(&before->record, counter);
	new_value = counter_value(&after->record, counter);
	if (new_value < old_value) /* nudged restarted in between */
		return -1;
	return (double)(new_value - old_value) * 1e6 /
	       (double)(after->record.updated_us - before->record.updated_us);
}

/* Seconds since the record was written (negative if the clocks differ). */
static double
record_age(const struct outbox_link_status_record *record, uint64_t now)
{
	return ((double)now - (double)record->updated_us) / 1e6;
}

/* "queue_depth=N links=N", then one key=value line per link. */
static void
print_stats_text(const struct stats_snapshot *before,
    const struct stats_snapshot *after, uint64_t now)
{
	const struct link_snapshot *link, *old;
	const struct link_counter *counter;
	size_t i, j;
	double rate;

	printf("queue_depth=%" PRIu64 " links=%zu\n", after->queue_depth,
	    after->link_count);
	for (i = 0; i < after->link_count; i++) {
		link = &after->links[i];
		old = snapshot_find(before, link->name);
		printf("link=%s state=%s age=%.1fs", link->name,
		    link_strstate(link->record.state),
		    record_age(&link->record, now));
		for (j = 0; j < nitems(link_counters); j++)
			printf(" %s=%" PRIu64, link_counters[j].name,
			    counter_value(&link->record, &link_counters[j]));
		printf(" window=%" PRIu64 "/%" PRIu64, link->record.window_used,
		    link->record.window_size);
		if (link->record.rate_limit > 0)
			printf(" rate_limit=%.1f/s", link->record.rate_limit);
		else
			printf(" rate_limit=none");
		for (j = 0; before != NULL && j < nitems(link_counters); j++) {
			counter = &link_counters[j];
			if (!counter->rated)
				continue;
			if ((rate = counter_rate(old, link, counter)) < 0)
				printf(" %s/s=-", counter->name);
			else
				printf(" %s/s=%.1f", counter->name, rate);
		}
		putchar('\n');
	}
}

/* {"queue_depth": N, "links": [...]} on one line. */
static void
print_stats_json(const struct stats_snapshot *before,
    const struct stats_snapshot *after, uint64_t now)
{
	const struct link_snapshot *link, *old;
	const struct link_counter *counter;
	json_t *root, *links, *object, *rates;
	size_t i, j;
	double rate;

	root = json_object();
	links = json_array();
	json_object_set_new(root, "queue_depth", json_uint(after->queue_depth));
	for (i = 0; i < after->link_count; i++) {
		link = &after->links[i];
		old = snapshot_find(before, link->name);
		object = json_object();
		json_object_set_new(object, "name", json_field(link->name));
		json_object_set_new(object, "state",
		    json_string(link_strstate(link->record.state)));
		json_object_set_new(
		    object, "updated", json_time(link->record.updated_us));
		json_object_set_new(
		    object, "age_s", json_real(record_age(&link->record, now)));
		for (j = 0; j < nitems(link_counters); j++)
			json_object_set_new(object, link_counters[j].name,
			    json_uint(counter_value(
				&link->record, &link_counters[j])));
		json_object_set_new(
		    object, "window_used", json_uint(link->record.window_used));
		json_object_set_new(
		    object, "window_size", json_uint(link->record.window_size));
		json_object_set_new(object, "rate_limit",
		    link->record.rate_limit > 0
			? json_real(link->record.rate_limit)
			: json_null());
		rates = before != NULL ? json_object() : json_null();
		for (j = 0; before != NULL && j < nitems(link_counters); j++) {
			counter = &link_counters[j];
			if (!counter->rated)
				continue;
			rate = counter_rate(old, link, counter);
			json_object_set_new(rates, counter->name,
			    rate < 0 ? json_null() : json_real(rate));
		}
		json_object_set_new(object, "rates_per_s", rates);
		json_array_append_new(links, object);
	}
	json_object_set_new(root, "links", links);
	print_json_line(root);
}

/* stats: queue depth and links; rates from two reads `interval` apart. */
static int
run_stats(const struct target *target, int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, OPTION_JSON},
	    {"interval", required_argument, NULL, OPTION_INTERVAL},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct stats_snapshot first, second;
	struct store *store;
	uint64_t interval = DEFAULT_STATS_SECONDS;
	int option, json = 0, status = 1;

	optind = 0;
	while (
	    (option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (option) {
		case OPTION_JSON:
			json = 1;
			break;
		case OPTION_INTERVAL:
			if (parse_number(optarg, 0, MAXIMUM_STATS_SECONDS,
				&interval) == -1) {
				fprintf(stderr,
				    "nudgectl: --interval %s: not "
				    "0 to %d seconds\n",
				    optarg, MAXIMUM_STATS_SECONDS);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage_error();
		}
	}
	if (optind != argc)
		usage_error();
	if ((store = open_store(target)) == NULL)
		return 1;
	memset(&first, 0, sizeof(first));
	memset(&second, 0, sizeof(second));
	if (interval > 0) {
		if (read_snapshot(store, &first) != STORE_OK)
			goto fail;
		/* Why: the second read must see commits made meanwhile. */
		store_commit(store);
		catch_stop_signals();
		pause_microseconds(interval * 1000000);
		if (stop_requested) {
			status = 0;
			goto done;
		}
	}
	if (read_snapshot(store, &second) != STORE_OK)
		goto fail;
	if (json)
		print_stats_json(
		    interval > 0 ? &first : NULL, &second, clock_now_us());
	else
		print_stats_text(
		    interval > 0 ? &first : NULL, &second, clock_now_us());
	status = flush_line(1) == -1 ? 1 : 0;
	goto done;
fail:
	fprintf(stderr, "nudgectl: reading the link status failed\n");
done:
	free(first.links);
	free(second.links);
	store_close(store);
	return status;
}

/* ---- message ID ---------------------------------------------------------- */

/* Reads part `number` of a message; STORE_NOT_FOUND if it is absent. */
static enum store_result
read_part(struct store *store, uint64_t id, unsigned int number,
    struct outbox_part_record *part)
{
	uint8_t key[PART_KEY_SIZE];
	enum store_result result;
	const void *value;
	size_t length;

	store_encode_u64(key, id);
	key[MESSAGE_KEY_SIZE] = (uint8_t)number;
	result =
	    store_get(store, STORE_DB_PARTS, key, sizeof(key), &value, &length);
	if (result != STORE_OK)
		return result;
	if (length < sizeof(*part))
		return STORE_ERROR;
	memcpy(part, value, sizeof(*part));
	part->link[sizeof(part->link) - 1] = '\0';
	part->smsc_id[sizeof(part->smsc_id) - 1] = '\0';
	return STORE_OK;
}

/* One part as a JSON object: state, link, SMSC id, response, receipt. */
static json_t *
part_json(unsigned int number, const struct outbox_part_record *part)
{
	json_t *object = json_object();

	json_object_set_new(object, "part", json_uint(number));
	json_object_set_new(
	    object, "state", json_string(outbox_strstate(part->state)));
	json_object_set_new(object, "link", json_field(part->link));
	json_object_set_new(object, "smsc_id", json_field(part->smsc_id));
	json_object_set_new(
	    object, "submit_status", json_uint(part->submit_status));
	json_object_set_new(object, "submitted", json_time(part->submitted_us));
	json_object_set_new(object, "responded", json_time(part->responded_us));
	json_object_set_new(object, "receipt",
	    part->receipt_us != 0
		? json_string(smpp_receipt_state_name(
		      (enum smpp_message_state)part->receipt_state))
		: json_null());
	json_object_set_new(
	    object, "receipt_error", json_uint(part->receipt_error));
	json_object_set_new(
	    object, "receipt_time", json_time(part->receipt_us));
	json_object_set_new(
	    object, "data_coding", json_uint(part->data_coding));
	json_object_set_new(
	    object, "length", json_uint(part->short_message_length));
	return object;
}

/* One part on one key=value line. */
static void
part_print(unsigned int number, const struct outbox_part_record *part)
{
	char submitted[TIME_TEXT_SIZE], responded[TIME_TEXT_SIZE];
	char receipt_time[TIME_TEXT_SIZE];

	printf("part=%u state=%s link=%s smsc_id=%s submit_status=0x%08" PRIx32
	       " submitted=%s responded=%s receipt=%s receipt_error=%" PRIu32
	       " receipt_time=%s\n",
	    number, outbox_strstate(part->state), field_text(part->link),
	    field_text(part->smsc_id), part->submit_status,
	    time_text(part->submitted_us, submitted, sizeof(submitted)),
	    time_text(part->responded_us, responded, sizeof(responded)),
	    part->receipt_us != 0
		? smpp_receipt_state_name(
		      (enum smpp_message_state)part->receipt_state)
		: "-",
	    part->receipt_error,
	    time_text(part->receipt_us, receipt_time, sizeof(receipt_time)));
}

/* One history entry as a JSON object. */
static json_t *
history_json(const struct outbox_history_entry *entry)
{
	json_t *object = json_object();

	json_object_set_new(object, "time", json_time(entry->time_us));
	json_object_set_new(
	    object, "state", json_string(outbox_strstate(entry->state)));
	json_object_set_new(object, "part",
	    entry->part != 0 ? json_uint(entry->part) : json_null());
	json_object_set_new(
	    object, "reason", json_string(outbox_strreason(entry->reason)));
	json_object_set_new(object, "status", json_uint(entry->status));
	return object;
}

/* One history entry: "  TIME STATE part=N reason=R status=0x...". */
static void
history_print(const struct outbox_history_entry *entry)
{
	char when[TIME_TEXT_SIZE];

	printf("  %s %s", time_text(entry->time_us, when, sizeof(when)),
	    outbox_strstate(entry->state));
	if (entry->part != 0)
		printf(" part=%u", (unsigned int)entry->part);
	else
		printf(" part=-");
	printf(" reason=%s status=0x%08" PRIx32 "\n",
	    outbox_strreason(entry->reason), entry->status);
}

/* The message header: the fixed record, its text and callback URL. */
static void
message_print(uint64_t id, const struct outbox_message_record *message,
    const char *text, size_t text_length, const char *callback,
    size_t callback_length, int json, json_t *object)
{
	char to[LOG_MASKED_NUMBER_SIZE], from[LOG_MASKED_NUMBER_SIZE];
	char created[TIME_TEXT_SIZE], updated[TIME_TEXT_SIZE];
	char expires[TIME_TEXT_SIZE];
	const char *state, *class_name;

	state = outbox_strstate(message->state);
	class_name = outbox_strclass(message->message_class);
	if (json) {
		json_object_set_new(object, "id", json_uint(id));
		json_object_set_new(object, "state", json_string(state));
		json_object_set_new(object, "class", json_string(class_name));
		json_object_set_new(object, "to", json_masked(message->to));
		json_object_set_new(object, "from", json_masked(message->from));
		json_object_set_new(object, "link", json_field(message->link));
		json_object_set_new(
		    object, "origin", json_field(message->origin));
		json_object_set_new(
		    object, "data_coding", json_uint(message->data_coding));
		json_object_set_new(
		    object, "created", json_time(message->created_us));
		json_object_set_new(
		    object, "updated", json_time(message->updated_us));
		json_object_set_new(
		    object, "expires", json_time(message->expires_us));
		json_object_set_new(
		    object, "text", json_text(text, text_length));
		json_object_set_new(object, "callback_url",
		    callback_length > 0 ? json_text(callback, callback_length)
					: json_null());
		json_object_set_new(
		    object, "part_count", json_uint(message->part_count));
		return;
	}
	printf("message=%" PRIu64 " state=%s class=%s to=%s from=%s link=%s "
	       "origin=%s parts=%u data_coding=%u\n",
	    id, state, class_name, masked_text(message->to, to, sizeof(to)),
	    masked_text(message->from, from, sizeof(from)),
	    field_text(message->link), field_text(message->origin),
	    (unsigned int)message->part_count,
	    (unsigned int)message->data_coding);
	printf("created=%s updated=%s expires=%s\n",
	    time_text(message->created_us, created, sizeof(created)),
	    time_text(message->updated_us, updated, sizeof(updated)),
	    time_text(message->expires_us, expires, sizeof(expires)));
	printf("text=");
	print_quoted(text, text_length);
	putchar('\n');
	if (callback_length > 0) {
		printf("callback_url=");
		print_quoted(callback, callback_length);
		putchar('\n');
	}
}

/* Copies the message record out and bounds its trailing text fields. */
static int
message_decode(const void *value, size_t length,
    struct outbox_message_record *message, const char **text,
    size_t *text_length, const char **callback, size_t *callback_length)
{
	size_t rest;

	if (length < sizeof(*message))
		return -1;
	memcpy(message, value, sizeof(*message));
	message->to[sizeof(message->to) - 1] = '\0';
	message->from[sizeof(message->from) - 1] = '\0';
	message->link[sizeof(message->link) - 1] = '\0';
	message->origin[sizeof(message->origin) - 1] = '\0';
	if (message->history_count > OUTBOX_HISTORY_MAX)
		message->history_count = OUTBOX_HISTORY_MAX;
	rest = length - sizeof(*message);
	*text = (const char *)value + sizeof(*message);
	*text_length =
	    message->text_length < rest ? message->text_length : rest;
	rest -= *text_length;
	*callback = *text + *text_length;
	*callback_length =
	    message->callback_length < rest ? message->callback_length : rest;
	return 0;
}

/* message ID: one message, its parts and its history. */
static int
run_message(const struct target *target, int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, OPTION_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct outbox_message_record message;
	struct outbox_part_record part;
	struct store *store;
	enum store_result result;
	uint8_t key[MESSAGE_KEY_SIZE];
	const void *value;
	const char *text, *callback;
	size_t length, text_length, callback_length;
	json_t *object = NULL, *parts = NULL, *history = NULL;
	uint64_t id;
	unsigned int number;
	int option, json = 0, status = 1;

	optind = 0;
	while (
	    (option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (option) {
		case OPTION_JSON:
			json = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage_error();
		}
	}
	if (optind != argc - 1)
		usage_error();
	if (parse_number(argv[optind], 1, UINT64_MAX, &id) == -1) {
		fprintf(
		    stderr, "nudgectl: %s: not a message id\n", argv[optind]);
		return 2;
	}
	if ((store = open_store(target)) == NULL)
		return 1;
	store_encode_u64(key, id);
	result = store_get(
	    store, STORE_DB_MESSAGES, key, sizeof(key), &value, &length);
	if (result == STORE_NOT_FOUND) {
		fprintf(stderr, "nudgectl: no message %" PRIu64 "\n", id);
		goto done;
	}
	if (result != STORE_OK ||
	    message_decode(value, length, &message, &text, &text_length,
		&callback, &callback_length) == -1) {
		fprintf(
		    stderr, "nudgectl: message %" PRIu64 ": unreadable\n", id);
		goto done;
	}
	if (json) {
		object = json_object();
		parts = json_array();
		history = json_array();
	}
	/* text points into the snapshot, valid until the next commit. */
	message_print(id, &message, text, text_length, callback,
	    callback_length, json, object);
	for (number = 1; number <= message.part_count; number++) {
		result = read_part(store, id, number, &part);
		if (result != STORE_OK) {
			fprintf(stderr,
			    "nudgectl: message %" PRIu64 " part %u: %s\n", id,
			    number,
			    result == STORE_NOT_FOUND ? "missing"
						      : "unreadable");
			continue;
		}
		if (json)
			json_array_append_new(parts, part_json(number, &part));
		else
			part_print(number, &part);
	}
	if (!json)
		printf("history:\n");
	for (number = 0; number < message.history_count; number++) {
		if (json)
			json_array_append_new(
			    history, history_json(&message.history[number]));
		else
			history_print(&message.history[number]);
	}
	if (json) {
		json_object_set_new(object, "parts", parts);
		json_object_set_new(object, "history", history);
		json_object_set_new(object, "history_dropped",
		    json_uint(message.history_dropped));
		print_json_line(object);
	} else if (message.history_dropped > 0)
		printf("  (%" PRIu32 " later entries not kept)\n",
		    message.history_dropped);
	status = flush_line(1) == -1 ? 1 : 0;
done:
	store_close(store);
	return status;
}

/* ---- subscriber NUMBER --------------------------------------------------- */

#define DEFAULT_SUBSCRIBER_MESSAGES 10
#define MAXIMUM_SUBSCRIBER_MESSAGES 10000
#define MAXIMUM_SUBSCRIBER_JOURNEYS 256
#define SUBSCRIBER_TEXT_CHARACTERS  60
#define SUBSCRIBER_TEXT_SIZE        (SUBSCRIBER_TEXT_CHARACTERS * 4 + 4)
#define MASKED_EMAIL_SIZE           320
#define NUMBER_CANDIDATES           2

/* The newest ids of one number in a "digits NUL id" index: a ring. */
struct id_window {
	uint64_t *ids;
	size_t capacity;
	uint64_t total; /* ids the index holds for the number */
};

/* What the store holds about one number. */
struct subscriber {
	char number[PROFILE_NUMBER_SIZE]; /* "+39..." */
	int has_profile;
	struct profile_record profile;
	json_t *attributes; /* NULL when there is no profile */
	int opted_out;
	struct optout_record optout;
	struct id_window journeys; /* active ones only: the index drops ended */
	struct id_window messages;
};

/* Profile attributes shown, in order; masked ones are personal data. */
static const struct {
	const char *name;
	int masked;
} subscriber_attributes[] = {
    {"external_id", 0},
    {"email", 1},
    {"first_name", 0},
    {"language", 0},
    {"timezone", 0},
};

/* subscriber --help: the command's own page. */
static void
subscriber_usage(FILE *out)
{
	fprintf(out,
	    "usage: nudgectl [-c config | -D data_dir] subscriber number "
	    "[--json] [-n count]\n"
	    "  One subscriber as the store holds it: the profile, consent, "
	    "the active\n"
	    "  journeys and the last messages to the number.\n"
	    "  number     E.164 (+39...), the same digits without '+', or "
	    "a\n"
	    "             national number of the configuration's "
	    "default_country\n"
	    "  -n count   messages to show, newest last (default %d)\n"
	    "  --json     one JSON object\n"
	    "  Consent is the opt-out list for now; consent history arrives "
	    "with the\n"
	    "  compliance work. Numbers and e-mail addresses are masked.\n"
	    "  Exit status: 0 shown, 1 no subscriber or a store error, 2 "
	    "usage.\n",
	    DEFAULT_SUBSCRIBER_MESSAGES);
}

/* The byte length of the first `characters` UTF-8 characters of text. */
static size_t
utf8_prefix_length(const char *text, size_t length, size_t characters)
{
	size_t i, seen = 0;

	for (i = 0; i < length; i++) {
		/* A byte that is not a continuation (10xxxxxx) starts one. */
		if (((unsigned char)text[i] & 0xc0) != 0x80) {
			if (seen == characters)
				return i;
			seen++;
		}
	}
	return length;
}

/* text cut to SUBSCRIBER_TEXT_CHARACTERS characters, "…" if it was cut. */
static size_t
cut_text(const char *text, size_t length, char *buffer)
{
	static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
	size_t kept;

	kept = utf8_prefix_length(text, length, SUBSCRIBER_TEXT_CHARACTERS);
	memcpy(buffer, text, kept);
	if (kept == length)
		return kept;
	memcpy(buffer + kept, ellipsis, sizeof(ellipsis) - 1);
	return kept + sizeof(ellipsis) - 1;
}

/* "j•••@example.com": the mailbox's first character, then the domain. */
static const char *
masked_email(const char *email, char *buffer, size_t size)
{
	const char *at = strrchr(email, '@');
	size_t first;

	if (at == NULL || at == email) {
		snprintf(buffer, size, "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2");
		return buffer;
	}
	first = utf8_prefix_length(email, (size_t)(at - email), 1);
	snprintf(buffer, size, "%.*s\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2%s",
	    (int)first, email, at);
	return buffer;
}

/* Attribute `index` as shown, masked if it must be; NULL if it is absent. */
static const char *
attribute_text(const struct subscriber *subscriber, size_t index, char *buffer,
    size_t size)
{
	const char *value;

	value = json_string_value(json_object_get(
	    subscriber->attributes, subscriber_attributes[index].name));
	if (value == NULL || value[0] == '\0')
		return NULL;
	if (subscriber_attributes[index].masked)
		return masked_email(value, buffer, size);
	return value;
}

/* Prints " key=value": bare when value is one plain word, else quoted. */
static void
print_word(const char *key, const char *value)
{
	size_t i, length;

	printf(" %s=", key);
	if (value == NULL || value[0] == '\0') {
		putchar('-');
		return;
	}
	length = strlen(value);
	for (i = 0; i < length; i++)
		if ((unsigned char)value[i] <= ' ' || value[i] == '"' ||
		    value[i] == '\\' || value[i] == '=' || value[i] == 0x7f)
			break;
	if (i == length)
		fputs(value, stdout);
	else
		print_quoted(value, length);
}

static size_t
id_window_kept(const struct id_window *window)
{
	return window->total < window->capacity ? (size_t)window->total
						: window->capacity;
}

/* The i-th kept id, oldest first. */
static uint64_t
id_window_get(const struct id_window *window, size_t i)
{
	size_t start = 0;

	if (window->total > window->capacity)
		start = (size_t)(window->total % window->capacity);
	return window->ids[(start + i) % window->capacity];
}

/*
 * Fills window from db's keys "digits NUL id(8 BE)". Ids grow with time, so
 * the ring ends up with the newest. An index this store does not have yet
 * is empty.
 */
static enum store_result
collect_ids(struct store *store, enum store_db db, const char *digits,
    struct id_window *window)
{
	struct store_cursor *cursor;
	const void *key, *value;
	size_t key_length, value_length, prefix_length = strlen(digits) + 1;
	enum store_result result;

	window->total = 0;
	result = store_cursor_open(store, db, &cursor);
	if (result == STORE_NOT_FOUND)
		return STORE_OK;
	if (result != STORE_OK)
		return result;
	/* Why the NUL in the prefix: "3934" must not find "39345"'s keys. */
	for (result = store_cursor_seek(cursor, digits, prefix_length, &key,
		 &key_length, &value, &value_length);
	     result == STORE_OK; result = store_cursor_next(cursor, &key,
				     &key_length, &value, &value_length)) {
		if (key_length < prefix_length ||
		    memcmp(key, digits, prefix_length) != 0)
			break;
		if (key_length != prefix_length + MESSAGE_KEY_SIZE)
			continue;
		if (window->capacity > 0)
			window->ids[window->total % window->capacity] =
			    store_decode_u64(
				(const uint8_t *)key + prefix_length);
		window->total++;
	}
	store_cursor_close(cursor);
	return result == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

static void
subscriber_free(struct subscriber *subscriber)
{
	if (subscriber->attributes != NULL)
		json_decref(subscriber->attributes);
	free(subscriber->journeys.ids);
	free(subscriber->messages.ids);
	memset(subscriber, 0, sizeof(*subscriber));
}

/* The profile record and its JSON attributes; -1 if unreadable. */
static int
subscriber_load_profile(struct store *store, struct subscriber *subscriber)
{
	const char *digits = subscriber->number + 1;
	const void *value;
	size_t length;
	enum store_result result;

	result = store_get(
	    store, STORE_DB_PROFILES, digits, strlen(digits), &value, &length);
	if (result == STORE_NOT_FOUND)
		return 0;
	if (result != STORE_OK || length < sizeof(subscriber->profile))
		return -1;
	memcpy(&subscriber->profile, value, sizeof(subscriber->profile));
	subscriber->has_profile = 1;
	if (subscriber->profile.attributes_length <=
	    length - sizeof(subscriber->profile))
		subscriber->attributes = json_loadb(
		    (const char *)value + sizeof(subscriber->profile),
		    subscriber->profile.attributes_length, 0, NULL);
	if (subscriber->attributes == NULL) {
		fprintf(stderr,
		    "nudgectl: the profile's attributes are unreadable\n");
		subscriber->attributes = json_object();
	}
	return 0;
}

/* The opt-out record, if the number is on the list; -1 if unreadable. */
static int
subscriber_load_optout(struct store *store, struct subscriber *subscriber)
{
	const char *digits = subscriber->number + 1;
	const void *value;
	size_t length;
	enum store_result result;

	result = store_get(
	    store, STORE_DB_OPTOUT, digits, strlen(digits), &value, &length);
	if (result == STORE_NOT_FOUND)
		return 0;
	if (result != STORE_OK)
		return -1;
	subscriber->opted_out = 1;
	/* Older or shorter records still mean "opted out", time unknown. */
	if (length >= sizeof(subscriber->optout))
		memcpy(&subscriber->optout, value, sizeof(subscriber->optout));
	subscriber->optout.source[sizeof(subscriber->optout.source) - 1] = '\0';
	return 0;
}

/* Everything about number ("+digits"); -1 on a store error. */
static int
subscriber_load(struct store *store, const char *number, uint64_t message_count,
    struct subscriber *subscriber)
{
	size_t length = strlen(number);

	memset(subscriber, 0, sizeof(*subscriber));
	if (length >= sizeof(subscriber->number))
		return -1;
	memcpy(subscriber->number, number, length + 1);
	subscriber->journeys.capacity = MAXIMUM_SUBSCRIBER_JOURNEYS;
	subscriber->messages.capacity = (size_t)message_count;
	subscriber->journeys.ids =
	    calloc(subscriber->journeys.capacity, sizeof(uint64_t));
	/* One more than asked, so that -n 0 still gets a valid pointer. */
	subscriber->messages.ids =
	    calloc(subscriber->messages.capacity + 1, sizeof(uint64_t));
	if (subscriber->journeys.ids == NULL ||
	    subscriber->messages.ids == NULL) {
		fprintf(stderr, "nudgectl: out of memory\n");
		goto fail;
	}
	if (subscriber_load_profile(store, subscriber) == -1 ||
	    subscriber_load_optout(store, subscriber) == -1 ||
	    collect_ids(store, STORE_DB_JOURNEYS_BY_NUMBER,
		subscriber->number + 1, &subscriber->journeys) != STORE_OK ||
	    collect_ids(store, STORE_DB_MESSAGES_BY_NUMBER,
		subscriber->number + 1, &subscriber->messages) != STORE_OK) {
		fprintf(stderr, "nudgectl: reading the subscriber failed\n");
		goto fail;
	}
	return 0;
fail:
	subscriber_free(subscriber);
	return -1;
}

/* Whether the store knows the number at all. */
static int
subscriber_found(const struct subscriber *subscriber)
{
	return subscriber->has_profile || subscriber->opted_out ||
	       subscriber->journeys.total > 0 || subscriber->messages.total > 0;
}

/*
 * The numbers NUMBER may name, the likelier first. "+..." and "00..." are
 * international. Bare digits are a national number of the configuration's
 * default_country (when a readable configuration has one), else E.164
 * digits without '+'. The input is never echoed: it is a phone number.
 */
static int
subscriber_candidates(const struct target *target, const char *input,
    char candidates[NUMBER_CANDIDATES][PROFILE_NUMBER_SIZE], size_t *count,
    const char **error)
{
	struct config *config = NULL;
	const char *p = input;
	char prefixed[64];
	int errors = 0;

	*count = 0;
	while (*p == ' ')
		p++;
	if (*p == '+' || strncmp(p, "00", 2) == 0) {
		if (phone_normalize(p, NULL, candidates[0], PROFILE_NUMBER_SIZE,
			error) == 0)
			*count = 1;
		return *count > 0 ? 0 : -1;
	}
	if (access(target->config_path, R_OK) == 0 &&
	    (config = config_load(target->config_path, &errors)) != NULL &&
	    phone_normalize(p, config->default_country, candidates[0],
		PROFILE_NUMBER_SIZE, error) == 0)
		(*count)++;
	config_free(config);
	snprintf(prefixed, sizeof(prefixed), "+%s", p);
	if (phone_normalize(prefixed, NULL, candidates[*count],
		PROFILE_NUMBER_SIZE, error) == 0 &&
	    (*count == 0 || strcmp(candidates[0], candidates[1]) != 0))
		(*count)++;
	return *count > 0 ? 0 : -1;
}

/* Copies a journey out of the store and terminates its text fields. */
static int
journey_decode(
    const void *value, size_t length, struct flow_journey_record *journey)
{
	if (length < sizeof(*journey))
		return -1;
	memcpy(journey, value, sizeof(*journey));
	journey->flow_id[sizeof(journey->flow_id) - 1] = '\0';
	journey->number[sizeof(journey->number) - 1] = '\0';
	return 0;
}

/* Reads journey `id`; -1 (and says why) if it is missing or unreadable. */
static int
read_journey(
    struct store *store, uint64_t id, struct flow_journey_record *journey)
{
	uint8_t key[MESSAGE_KEY_SIZE];
	const void *value;
	size_t length;
	enum store_result result;

	store_encode_u64(key, id);
	result = store_get(
	    store, STORE_DB_JOURNEYS, key, sizeof(key), &value, &length);
	if (result == STORE_OK && journey_decode(value, length, journey) == 0)
		return 0;
	fprintf(stderr, "nudgectl: journey %" PRIu64 ": %s\n", id,
	    result == STORE_NOT_FOUND ? "missing" : "unreadable");
	return -1;
}

/* Reads message `id` and its text cut short; -1 (and says why) if not. */
static int
read_message_summary(struct store *store, uint64_t id,
    struct outbox_message_record *message, char *text, size_t *text_length)
{
	uint8_t key[MESSAGE_KEY_SIZE];
	const void *value;
	const char *full_text, *callback;
	size_t length, full_length, callback_length;
	enum store_result result;

	store_encode_u64(key, id);
	result = store_get(
	    store, STORE_DB_MESSAGES, key, sizeof(key), &value, &length);
	if (result == STORE_OK &&
	    message_decode(value, length, message, &full_text, &full_length,
		&callback, &callback_length) == 0) {
		*text_length = cut_text(full_text, full_length, text);
		return 0;
	}
	fprintf(stderr, "nudgectl: message %" PRIu64 ": %s\n", id,
	    result == STORE_NOT_FOUND ? "missing" : "unreadable");
	return -1;
}

/* The profile section of the text output. */
static void
subscriber_print_profile(const struct subscriber *subscriber)
{
	const struct profile_record *record = &subscriber->profile;
	char created[TIME_TEXT_SIZE], updated[TIME_TEXT_SIZE];
	char last_order[TIME_TEXT_SIZE], masked[MASKED_EMAIL_SIZE];
	json_t *properties;
	char *properties_text;
	size_t i;

	if (!subscriber->has_profile) {
		printf("profile: none\n");
		return;
	}
	printf("profile: created=%s updated=%s\n",
	    time_text(record->created_us, created, sizeof(created)),
	    time_text(record->updated_us, updated, sizeof(updated)));
	printf(" ");
	for (i = 0; i < nitems(subscriber_attributes); i++)
		print_word(subscriber_attributes[i].name,
		    attribute_text(subscriber, i, masked, sizeof(masked)));
	printf("\n  order_count=%" PRIu32 " total_spent=%.2f last_order=%s\n",
	    record->order_count, record->total_spent,
	    time_text(record->last_order_us, last_order, sizeof(last_order)));
	properties = json_object_get(subscriber->attributes, "properties");
	if (json_is_object(properties) && json_object_size(properties) > 0 &&
	    (properties_text = json_dumps(properties, JSON_COMPACT)) != NULL) {
		printf("  properties=%s\n", properties_text);
		free(properties_text);
	}
}

#define SUBSCRIBER_HISTORY_MAX 20

/*
 * The newest (at most SUBSCRIBER_HISTORY_MAX) records of db filed under
 * "digits NUL time": consent changes and policy decisions. Returns how
 * many were copied into records (size bytes each), oldest first.
 */
static size_t
subscriber_history(struct store *store, enum store_db db, const char *number,
    void *records, size_t size)
{
	struct store_cursor *cursor;
	const void *key, *value;
	const char *digits = number[0] == '+' ? number + 1 : number;
	size_t key_length, value_length, length = strlen(digits), count = 0;
	size_t total = 0, first;
	uint8_t *ring = records;
	enum store_result result;

	if (store_cursor_open(store, db, &cursor) != STORE_OK)
		return 0;
	for (result = store_cursor_seek(cursor, digits, length + 1, &key,
		 &key_length, &value, &value_length);
	     result == STORE_OK; result = store_cursor_next(cursor, &key,
				     &key_length, &value, &value_length)) {
		if (key_length != length + 9 ||
		    memcmp(key, digits, length) != 0 ||
		    ((const uint8_t *)key)[length] != 0)
			break;
		if (value_length != size)
			continue;
		/* A ring of the newest; the cursor only goes forward. */
		memcpy(ring + (total % SUBSCRIBER_HISTORY_MAX) * size, value,
		    size);
		total++;
	}
	store_cursor_close(cursor);
	count = total < SUBSCRIBER_HISTORY_MAX ? total : SUBSCRIBER_HISTORY_MAX;
	if (total > SUBSCRIBER_HISTORY_MAX) {
		/* Rotate so the oldest kept comes first. */
		uint8_t *ordered = malloc(count * size);

		if (ordered == NULL)
			return 0;
		first = total % SUBSCRIBER_HISTORY_MAX;
		memcpy(ordered, ring + first * size, (count - first) * size);
		memcpy(ordered + (count - first) * size, ring, first * size);
		memcpy(ring, ordered, count * size);
		free(ordered);
	}
	return count;
}

/* Consent changes and decisions not to send, as text. */
static void
subscriber_print_history(struct store *store, const char *number)
{
	struct consent_record changes[SUBSCRIBER_HISTORY_MAX];
	struct policy_decision_record decisions[SUBSCRIBER_HISTORY_MAX];
	char when[TIME_TEXT_SIZE], until[TIME_TEXT_SIZE];
	size_t count, i;

	count = subscriber_history(store, STORE_DB_CONSENT_HISTORY, number,
	    changes, sizeof(changes[0]));
	printf("consent history: %zu\n", count);
	for (i = 0; i < count; i++)
		printf("  time=%s state=%s source=%s wording=%s\n",
		    time_text(changes[i].time_us, when, sizeof(when)),
		    consent_strstate(changes[i].state),
		    consent_strsource(changes[i].source),
		    field_text(changes[i].wording));
	count = subscriber_history(
	    store, STORE_DB_DECISIONS, number, decisions, sizeof(decisions[0]));
	printf("decisions: %zu\n", count);
	for (i = 0; i < count; i++)
		printf("  time=%s %s reason=%s until=%s origin=%s step=%s "
		       "journey=%" PRIu64 " message=%" PRIu64 "\n",
		    time_text(decisions[i].time_us, when, sizeof(when)),
		    policy_strverdict(decisions[i].verdict),
		    policy_strreason(decisions[i].reason),
		    time_text(decisions[i].until_us, until, sizeof(until)),
		    field_text(decisions[i].origin),
		    field_text(decisions[i].step), decisions[i].journey_id,
		    decisions[i].message_id);
}

/* The same two lists as JSON arrays in object. */
static void
subscriber_history_json(struct store *store, const char *number, json_t *object)
{
	struct consent_record changes[SUBSCRIBER_HISTORY_MAX];
	struct policy_decision_record decisions[SUBSCRIBER_HISTORY_MAX];
	json_t *list;
	size_t count, i;

	count = subscriber_history(store, STORE_DB_CONSENT_HISTORY, number,
	    changes, sizeof(changes[0]));
	list = json_array();
	for (i = 0; i < count; i++)
		json_array_append_new(
		    list, json_pack("{s:o, s:s, s:s, s:o}", "time",
			      json_time(changes[i].time_us), "state",
			      consent_strstate(changes[i].state), "source",
			      consent_strsource(changes[i].source), "wording",
			      json_field(changes[i].wording)));
	json_object_set_new(object, "consent_history", list);
	count = subscriber_history(
	    store, STORE_DB_DECISIONS, number, decisions, sizeof(decisions[0]));
	list = json_array();
	for (i = 0; i < count; i++)
		json_array_append_new(list,
		    json_pack("{s:o, s:s, s:s, s:o, s:o, s:o, s:I, s:I}",
			"time", json_time(decisions[i].time_us), "verdict",
			policy_strverdict(decisions[i].verdict), "reason",
			policy_strreason(decisions[i].reason), "until",
			json_time(decisions[i].until_us), "origin",
			json_field(decisions[i].origin), "step",
			json_field(decisions[i].step), "journey",
			(json_int_t)decisions[i].journey_id, "message",
			(json_int_t)decisions[i].message_id));
	json_object_set_new(object, "decisions", list);
}

/* The whole subscriber as text: profile, consent, journeys, messages. */
static void
subscriber_print_text(struct store *store, const struct subscriber *subscriber)
{
	struct flow_journey_record journey;
	struct outbox_message_record message;
	char masked[LOG_MASKED_NUMBER_SIZE], when[TIME_TEXT_SIZE];
	char due[TIME_TEXT_SIZE], text[SUBSCRIBER_TEXT_SIZE];
	size_t i, kept, text_length;
	uint64_t id;

	printf("subscriber %s\n",
	    log_mask_number(subscriber->number, masked, sizeof(masked)));
	subscriber_print_profile(subscriber);
	if (subscriber->opted_out)
		printf("consent: opted_out=yes since=%s source=%s\n",
		    time_text(subscriber->optout.time_us, when, sizeof(when)),
		    field_text(subscriber->optout.source));
	else
		printf("consent: opted_out=no\n");
	subscriber_print_history(store, subscriber->number);
	kept = id_window_kept(&subscriber->journeys);
	printf("journeys: %" PRIu64 " active", subscriber->journeys.total);
	if (kept < subscriber->journeys.total)
		printf(" (the last %zu shown)", kept);
	putchar('\n');
	for (i = 0; i < kept; i++) {
		id = id_window_get(&subscriber->journeys, i);
		if (read_journey(store, id, &journey) == -1)
			continue;
		printf("  journey=%" PRIu64
		       " flow=%s state=%s next_step=%" PRIu32
		       " due=%s sms_sent=%u started=%s\n",
		    id, field_text(journey.flow_id),
		    flow_journey_strstate(journey.state), journey.step,
		    time_text(journey.state == FLOW_JOURNEY_WAITING
				  ? journey.due_us
				  : 0,
			due, sizeof(due)),
		    (unsigned int)journey.sms_sent,
		    time_text(journey.started_us, when, sizeof(when)));
	}
	kept = id_window_kept(&subscriber->messages);
	printf("messages: %" PRIu64, subscriber->messages.total);
	if (kept < subscriber->messages.total)
		printf(" (the last %zu shown)", kept);
	putchar('\n');
	for (i = 0; i < kept; i++) {
		id = id_window_get(&subscriber->messages, i);
		if (read_message_summary(
			store, id, &message, text, &text_length) == -1)
			continue;
		printf("  message=%" PRIu64 " time=%s state=%s class=%s "
		       "origin=%s parts=%u text=",
		    id, time_text(message.created_us, when, sizeof(when)),
		    outbox_strstate(message.state),
		    outbox_strclass(message.message_class),
		    field_text(message.origin),
		    (unsigned int)message.part_count);
		print_quoted(text, text_length);
		putchar('\n');
	}
}

/* The profile as a JSON object, or null without one. */
static json_t *
subscriber_profile_json(const struct subscriber *subscriber)
{
	const struct profile_record *record = &subscriber->profile;
	char masked[MASKED_EMAIL_SIZE];
	const char *value;
	json_t *object, *properties;
	size_t i;

	if (!subscriber->has_profile)
		return json_null();
	object = json_object();
	for (i = 0; i < nitems(subscriber_attributes); i++) {
		value = attribute_text(subscriber, i, masked, sizeof(masked));
		json_object_set_new(object, subscriber_attributes[i].name,
		    value != NULL ? json_text(value, strlen(value))
				  : json_null());
	}
	properties = json_object_get(subscriber->attributes, "properties");
	json_object_set_new(object, "properties",
	    json_is_object(properties) ? json_deep_copy(properties)
				       : json_object());
	json_object_set_new(
	    object, "order_count", json_uint(record->order_count));
	json_object_set_new(
	    object, "total_spent", json_real(record->total_spent));
	json_object_set_new(
	    object, "last_order", json_time(record->last_order_us));
	json_object_set_new(object, "created", json_time(record->created_us));
	json_object_set_new(object, "updated", json_time(record->updated_us));
	return object;
}

/* The active journeys as a JSON array. */
static json_t *
subscriber_journeys_json(
    struct store *store, const struct subscriber *subscriber)
{
	struct flow_journey_record journey;
	json_t *array = json_array(), *object;
	size_t i;
	uint64_t id;

	for (i = 0; i < id_window_kept(&subscriber->journeys); i++) {
		id = id_window_get(&subscriber->journeys, i);
		if (read_journey(store, id, &journey) == -1)
			continue;
		object = json_object();
		json_object_set_new(object, "id", json_uint(id));
		json_object_set_new(
		    object, "flow", json_field(journey.flow_id));
		json_object_set_new(object, "state",
		    json_string(flow_journey_strstate(journey.state)));
		json_object_set_new(
		    object, "next_step", json_uint(journey.step));
		json_object_set_new(object, "due",
		    json_time(journey.state == FLOW_JOURNEY_WAITING
				  ? journey.due_us
				  : 0));
		json_object_set_new(
		    object, "sms_sent", json_uint(journey.sms_sent));
		json_object_set_new(
		    object, "started", json_time(journey.started_us));
		json_array_append_new(array, object);
	}
	return array;
}

/* The last messages as a JSON array, oldest first. */
static json_t *
subscriber_messages_json(
    struct store *store, const struct subscriber *subscriber)
{
	struct outbox_message_record message;
	char text[SUBSCRIBER_TEXT_SIZE];
	json_t *array = json_array(), *object;
	size_t i, text_length;
	uint64_t id;

	for (i = 0; i < id_window_kept(&subscriber->messages); i++) {
		id = id_window_get(&subscriber->messages, i);
		if (read_message_summary(
			store, id, &message, text, &text_length) == -1)
			continue;
		object = json_object();
		json_object_set_new(object, "id", json_uint(id));
		json_object_set_new(
		    object, "time", json_time(message.created_us));
		json_object_set_new(object, "state",
		    json_string(outbox_strstate(message.state)));
		json_object_set_new(object, "class",
		    json_string(outbox_strclass(message.message_class)));
		json_object_set_new(
		    object, "origin", json_field(message.origin));
		json_object_set_new(
		    object, "text", json_text(text, text_length));
		json_object_set_new(
		    object, "parts", json_uint(message.part_count));
		json_array_append_new(array, object);
	}
	return array;
}

/* The whole subscriber as one JSON object on one line. */
static void
subscriber_print_json(struct store *store, const struct subscriber *subscriber)
{
	json_t *object = json_object(), *consent = json_object();

	json_object_set_new(object, "number", json_masked(subscriber->number));
	json_object_set_new(
	    object, "profile", subscriber_profile_json(subscriber));
	json_object_set_new(
	    consent, "opted_out", json_boolean(subscriber->opted_out));
	json_object_set_new(consent, "since",
	    subscriber->opted_out ? json_time(subscriber->optout.time_us)
				  : json_null());
	json_object_set_new(consent, "source",
	    subscriber->opted_out ? json_field(subscriber->optout.source)
				  : json_null());
	json_object_set_new(object, "consent", consent);
	subscriber_history_json(store, subscriber->number, object);
	json_object_set_new(
	    object, "journeys", subscriber_journeys_json(store, subscriber));
	json_object_set_new(
	    object, "journeys_active", json_uint(subscriber->journeys.total));
	json_object_set_new(
	    object, "messages", subscriber_messages_json(store, subscriber));
	json_object_set_new(
	    object, "messages_total", json_uint(subscriber->messages.total));
	print_json_line(object);
}

/*
 * subscriber NUMBER: the profile, consent, active journeys and last
 * messages of one number. Exit 1 if the store knows nothing about it.
 */
static int
run_subscriber(const struct target *target, int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, OPTION_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char candidates[NUMBER_CANDIDATES][PROFILE_NUMBER_SIZE];
	char masked[LOG_MASKED_NUMBER_SIZE];
	struct subscriber subscriber;
	struct store *store;
	const char *error = NULL;
	uint64_t message_count = DEFAULT_SUBSCRIBER_MESSAGES;
	size_t count, i;
	int option, json = 0, status = 1, found = 0;

	optind = 0;
	while ((option = getopt_long(argc, argv, "hn:", long_options, NULL)) !=
	       -1) {
		switch (option) {
		case OPTION_JSON:
			json = 1;
			break;
		case 'n':
			if (parse_number(optarg, 0, MAXIMUM_SUBSCRIBER_MESSAGES,
				&message_count) == -1) {
				fprintf(stderr,
				    "nudgectl: -n %s: not a number from 0 to "
				    "%d\n",
				    optarg, MAXIMUM_SUBSCRIBER_MESSAGES);
				return 2;
			}
			break;
		case 'h':
			subscriber_usage(stdout);
			exit(0);
		default:
			subscriber_usage(stderr);
			exit(2);
		}
	}
	if (optind != argc - 1) {
		subscriber_usage(stderr);
		return 2;
	}
	if (subscriber_candidates(
		target, argv[optind], candidates, &count, &error) == -1) {
		fprintf(stderr,
		    "nudgectl: subscriber: not a phone number: %s\n",
		    error != NULL ? error : "unreadable");
		return 2;
	}
	if ((store = open_store(target)) == NULL)
		return 1;
	/* The first candidate the store knows; else "no subscriber". */
	for (i = 0; i < count && !found; i++) {
		if (subscriber_load(
			store, candidates[i], message_count, &subscriber) == -1)
			goto done;
		if (!(found = subscriber_found(&subscriber)))
			subscriber_free(&subscriber);
	}
	if (!found) {
		fprintf(stderr, "nudgectl: no subscriber %s\n",
		    log_mask_number(candidates[0], masked, sizeof(masked)));
		goto done;
	}
	if (json)
		subscriber_print_json(store, &subscriber);
	else
		subscriber_print_text(store, &subscriber);
	subscriber_free(&subscriber);
	status = flush_line(1) == -1 ? 1 : 0;
done:
	store_close(store);
	return status;
}

/* ---- conversations ------------------------------------------------------- */

#define TEST_CLOCK_KEY "test-clock/offset" /* daemon.c keeps it in META */

/* Now as nudged sees it: the wall clock plus a kept test-clock offset. */
static uint64_t
daemon_now(struct store *store)
{
	struct timespec now;
	const void *value;
	size_t length;
	uint64_t now_us;

	clock_gettime(CLOCK_REALTIME, &now);
	now_us = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
	if (store_get(store, STORE_DB_META, TEST_CLOCK_KEY,
		sizeof(TEST_CLOCK_KEY) - 1, &value, &length) == STORE_OK &&
	    length == 8)
		now_us += store_decode_u64(value);
	return now_us;
}

/* One conversation row, as text or a JSON line. */
static void
conversation_print(
    const struct conversation_record *record, int expired, int json)
{
	char masked[LOG_MASKED_NUMBER_SIZE], opened[TIME_TEXT_SIZE];
	char expires[TIME_TEXT_SIZE];

	if (json) {
		print_json_line(
		    json_pack("{s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:b}",
			"number", json_masked(record->number), "conversation",
			record->conversation, "flow", record->flow_id, "step",
			json_uint(record->step), "journey",
			json_uint(record->journey_id), "opened",
			json_time(record->opened_us), "expires",
			json_time(record->expires_us), "reprompted",
			record->reprompted != 0, "expired", expired));
		return;
	}
	printf("%-16s %-20s %-24s %-8s %-24s %-24s %s\n",
	    log_mask_number(record->number, masked, sizeof(masked)),
	    record->conversation, record->flow_id, expired ? "expired" : "open",
	    time_text(record->opened_us, opened, sizeof(opened)),
	    time_text(record->expires_us, expires, sizeof(expires)),
	    record->reprompted ? "yes" : "no");
}

/*
 * conversations [--json] [--all]: the numbers with an open question, from
 * STORE_DB_CONVERSATIONS; rows whose window has passed (nudged drops them
 * on the next SMS) only with --all, marked expired.
 */
static int
run_conversations(const struct target *target, int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, OPTION_JSON},
	    {"all", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct conversation_record record;
	struct store_cursor *cursor;
	struct store *store;
	const void *key, *value;
	size_t key_length, value_length, shown = 0;
	uint64_t now_us;
	enum store_result result;
	int option, json = 0, all = 0, expired;

	optind = 0;
	while ((option = getopt_long(argc, argv, "ah", long_options, NULL)) !=
	       -1) {
		switch (option) {
		case OPTION_JSON:
			json = 1;
			break;
		case 'a':
			all = 1;
			break;
		case 'h':
			printf("usage: nudgectl conversations [--json] "
			       "[--all]\n");
			return 0;
		default:
			fprintf(stderr, "usage: nudgectl conversations "
					"[--json] [--all]\n");
			return 2;
		}
	}
	if (optind != argc)
		return 2;
	if ((store = open_store(target)) == NULL)
		return 1;
	now_us = daemon_now(store);
	result = store_cursor_open(store, STORE_DB_CONVERSATIONS, &cursor);
	if (result == STORE_OK) {
		if (!json)
			printf("%-16s %-20s %-24s %-8s %-24s %-24s %s\n",
			    "NUMBER", "CONVERSATION", "FLOW", "STATE", "OPENED",
			    "EXPIRES", "REPROMPTED");
		for (result = store_cursor_seek(cursor, "", 0, &key,
			 &key_length, &value, &value_length);
		     result == STORE_OK;
		     result = store_cursor_next(
			 cursor, &key, &key_length, &value, &value_length)) {
			if (value_length != sizeof(record))
				continue;
			memcpy(&record, value, sizeof(record));
			record.number[sizeof(record.number) - 1] = '\0';
			record.flow_id[sizeof(record.flow_id) - 1] = '\0';
			record.conversation[sizeof(record.conversation) - 1] =
			    '\0';
			expired = now_us >= record.expires_us;
			if (expired && !all)
				continue;
			conversation_print(&record, expired, json);
			shown++;
		}
		store_cursor_close(cursor);
	}
	if (!json)
		printf("%zu conversation%s\n", shown, shown == 1 ? "" : "s");
	store_close(store);
	if (result == STORE_ERROR)
		return 1;
	return flush_line(1) == -1 ? 1 : 0;
}

/* ---- rules --------------------------------------------------------------- */

/*
 * rules check [PATH...]: every rule file (a folder: its .xml files; default
 * rules_dir of a readable configuration, else ./rules) through the
 * loader's schema and semantic checks, then the lint
 * warnings; --preview prints each SMS as the sample profile would get it.
 * Offline: no store, no daemon. Exit 1 if any file has errors.
 */
static int
run_rules_check(const struct target *target, int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"max-parts", required_argument, NULL, 'p'},
	    {"preview", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct rule_lint_options options = {
	    RULE_LINT_MAX_PARTS, RULE_LINT_ABANDONMENT_WINDOW_US, NULL};
	struct rule_report report;
	struct config *config = NULL;
	const char *default_path = "rules";
	const char *const *paths = &default_path;
	uint64_t max_parts;
	size_t count = 1, files;
	int option, status, errors = 0;

	optind = 0;
	while ((option = getopt_long(argc, argv, "hp:P", long_options, NULL)) !=
	       -1) {
		switch (option) {
		case 'p':
			if (parse_number(optarg, 1, 255, &max_parts) == -1) {
				fprintf(stderr,
				    "nudgectl: --max-parts %s: not a number "
				    "from 1 to 255\n",
				    optarg);
				return 2;
			}
			options.max_parts = (size_t)max_parts;
			break;
		case 'P':
			options.preview = stdout;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage_error();
		}
	}
	if (optind < argc) {
		paths = (const char *const *)(argv + optind);
		count = (size_t)(argc - optind);
	} else if (access(target->config_path, R_OK) == 0) {
		if ((config = config_load(target->config_path, &errors)) ==
		    NULL)
			return 1;
		if (config->rules_dir != NULL && config->rules_dir[0] != '\0')
			default_path = config->rules_dir;
	}
	rule_report_init(&report);
	files = rule_check_paths(paths, count, &options, &report);
	rule_report_print(&report, stdout);
	printf("rules: %zu file%s checked, %zu error%s, %zu warning%s\n", files,
	    files == 1 ? "" : "s", report.error_count,
	    report.error_count == 1 ? "" : "s", report.warning_count,
	    report.warning_count == 1 ? "" : "s");
	status = report.error_count > 0 ? 1 : 0;
	rule_report_free(&report);
	rule_cleanup();
	config_free(config);
	if (fflush(stdout) == EOF || ferror(stdout))
		return 1;
	return status;
}

/* ---- consent import ------------------------------------------------------ */

#define CONSENT_IMPORT_MAX_FILE (64 * 1024 * 1024)

/* Reads a whole file into memory; NULL on failure (said on stderr). */
static char *
read_whole_file(const char *path, size_t *length)
{
	FILE *file;
	char *data = NULL;
	long size;

	if ((file = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "nudgectl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fseek(file, 0, SEEK_END) == -1 || (size = ftell(file)) < 0 ||
	    size > CONSENT_IMPORT_MAX_FILE || fseek(file, 0, SEEK_SET) == -1) {
		fprintf(
		    stderr, "nudgectl: %s: unreadable or over 64 MB\n", path);
		goto done;
	}
	if ((data = malloc((size_t)size + 1)) == NULL ||
	    fread(data, 1, (size_t)size, file) != (size_t)size) {
		fprintf(stderr, "nudgectl: %s: read failed\n", path);
		free(data);
		data = NULL;
		goto done;
	}
	data[size] = '\0';
	*length = (size_t)size;
done:
	fclose(file);
	return data;
}

/*
 * POSTs body to nudged's HTTP API (HTTP/1.0, one request per connection)
 * and returns the status; *reply gets the response body (free it). -1 if
 * nudged could not be reached.
 */
static int
http_post(const struct config *config, const char *path,
    const char *content_type, const char *body, size_t length, char **reply)
{
	struct addrinfo hints, *addresses = NULL, *address;
	char port[8], *head = NULL, *response = NULL, *grown, *separator;
	size_t used = 0, capacity = 0;
	ssize_t n;
	int fd = -1, status = -1, head_length;

	*reply = NULL;
	snprintf(
	    port, sizeof(port), "%u", (unsigned int)config->http_listen.port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(config->http_listen.host, port, &hints, &addresses) !=
	    0)
		goto done;
	for (address = addresses; address != NULL; address = address->ai_next) {
		if ((fd = socket(address->ai_family, address->ai_socktype,
			 address->ai_protocol)) == -1)
			continue;
		if (connect(fd, address->ai_addr, address->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd == -1)
		goto done;
	head_length = asprintf(&head,
	    "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%s%s%s\r\n",
	    path, config->http_listen.host, content_type, length,
	    config->http_api_token[0] != '\0' ? "Authorization: Bearer " : "",
	    config->http_api_token,
	    config->http_api_token[0] != '\0' ? "\r\n" : "");
	if (head_length < 0) {
		head = NULL;
		goto done;
	}
	if (write(fd, head, (size_t)head_length) != head_length ||
	    write(fd, body, length) != (ssize_t)length)
		goto done;
	for (;;) {
		if (capacity - used < 4096) {
			capacity = capacity * 2 + 8192;
			if ((grown = realloc(response, capacity + 1)) == NULL)
				goto done;
			response = grown;
		}
		if ((n = read(fd, response + used, capacity - used)) <= 0)
			break;
		used += (size_t)n;
	}
	if (response == NULL)
		goto done;
	response[used] = '\0';
	if (sscanf(response, "HTTP/%*d.%*d %d", &status) != 1 ||
	    (separator = strstr(response, "\r\n\r\n")) == NULL) {
		status = -1;
		goto done;
	}
	*reply = strdup(separator + 4);
done:
	if (fd != -1)
		close(fd);
	if (addresses != NULL)
		freeaddrinfo(addresses);
	free(head);
	free(response);
	return status;
}

/*
 * consent import FILE: the daemon holds the store for writing, so the CSV
 * goes to POST /v1/consent/import; it checks every row and applies all of
 * them in one commit or none. Prints the report; 0 if applied, else 1.
 */
static int
run_consent_import(const struct target *target, int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, OPTION_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct config *config = NULL;
	json_t *report = NULL, *error;
	char *data = NULL, *reply = NULL;
	size_t length = 0, i;
	int option, json = 0, errors = 0, status, result = 1;

	optind = 0;
	while (
	    (option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (option) {
		case OPTION_JSON:
			json = 1;
			break;
		case 'h':
			printf("usage: nudgectl consent import [--json] "
			       "file.csv\n");
			return 0;
		default:
			fprintf(stderr, "usage: nudgectl consent import "
					"[--json] file.csv\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr,
		    "usage: nudgectl consent import [--json] file.csv\n");
		return 2;
	}
	if ((config = config_load(target->config_path, &errors)) == NULL) {
		fprintf(stderr, "nudgectl: %s: %d error%s\n",
		    target->config_path, errors, errors == 1 ? "" : "s");
		return 1;
	}
	if ((data = read_whole_file(argv[optind], &length)) == NULL)
		goto done;
	status = http_post(
	    config, "/v1/consent/import", "text/csv", data, length, &reply);
	if (status == -1) {
		fprintf(stderr, "nudgectl: nudged at %s:%u did not answer\n",
		    config->http_listen.host,
		    (unsigned int)config->http_listen.port);
		goto done;
	}
	if (json) {
		printf("%s\n", reply != NULL ? reply : "");
		result = status == 200 ? 0 : 1;
		goto done;
	}
	report = reply != NULL ? json_loads(reply, 0, NULL) : NULL;
	if (report == NULL || json_object_get(report, "accepted") == NULL) {
		fprintf(stderr, "nudgectl: HTTP %d: %s\n", status,
		    reply != NULL ? reply : "");
		goto done;
	}
	json_array_foreach(json_object_get(report, "errors"), i, error)
	    printf("line %" JSON_INTEGER_FORMAT ": %s: %s\n",
		json_integer_value(json_object_get(error, "line")),
		json_string_value(json_object_get(error, "field")),
		json_string_value(json_object_get(error, "reason")));
	printf("%" JSON_INTEGER_FORMAT " rows accepted, %" JSON_INTEGER_FORMAT
	       " rejected: %s\n",
	    json_integer_value(json_object_get(report, "accepted")),
	    json_integer_value(json_object_get(report, "rejected")),
	    json_is_true(json_object_get(report, "applied"))
		? "all applied"
		: "nothing applied");
	result = status == 200 ? 0 : 1;
done:
	json_decref(report);
	free(reply);
	free(data);
	config_free(config);
	if (fflush(stdout) == EOF || ferror(stdout))
		return 1;
	return result;
}

/* ---- main ---------------------------------------------------------------- */

/* The command named by argv[0] (and argv[1]), or NULL. */
static const struct command *
find_command(int argc, char **argv)
{
	size_t i;

	for (i = 0; i < nitems(commands); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		if (commands[i].subcommand == NULL)
			return &commands[i];
		if (argc > 1 && strcmp(argv[1], commands[i].subcommand) == 0)
			return &commands[i];
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	const struct command *command;
	struct target target = {DEFAULT_CONFIG, NULL};
	int option, skip;

	/* '+': options end at the command; its own options follow it. */
	while ((option = getopt(argc, argv, "+c:D:h")) != -1) {
		switch (option) {
		case 'c':
			target.config_path = optarg;
			break;
		case 'D':
			target.data_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage_error();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0 || (command = find_command(argc, argv)) == NULL)
		usage_error();
	/* The handler's argv[0] is its last word: "tail" of "dlr tail". */
	skip = command->subcommand != NULL ? 1 : 0;
	log_init(1, LOG_LEVEL_WARN);
	return command->run(&target, argc - skip, argv + skip);
}
