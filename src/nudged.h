/*
 * nudged.h - the daemon's one header: logging, configuration, the clock,
 * the LMDB store, durable timers, metrics and the HTTP API. Prototypes are
 * grouped by the file that defines them.
 */
#ifndef NUDGED_H
#define NUDGED_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define NUDGE_VERSION "0.1.0"

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif
#define PRINTF_LIKE(f, a) __attribute__((__format__(__printf__, f, a)))

struct event_base;
struct evbuffer;
struct evhttp_request;

/* ===== log.c ===== */

enum log_level {
	LOG_LEVEL_WARN = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_DEBUG = 2,
};

/*
 * Every log line is "<16-hex id> <subsystem> <event> key=value ...": the id
 * names the session, message or journey the line is about (0 for the daemon
 * itself). fmt produces the key=value part and may be NULL.
 */
void log_init(int to_stderr, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_warn(uint64_t id, const char *subsystem, const char *event,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
void log_warnx(uint64_t id, const char *subsystem, const char *event,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
void log_info(uint64_t id, const char *subsystem, const char *event,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
void log_debug(uint64_t id, const char *subsystem, const char *event,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
__dead void fatal(const char *subsystem, const char *event, const char *fmt,
    ...) PRINTF_LIKE(3, 4);
__dead void fatalx(const char *subsystem, const char *event, const char *fmt,
    ...) PRINTF_LIKE(3, 4);
/* Masks a phone number for logs: +393401234512 -> +3934•••••12. */
const char *log_mask_number(const char *number, char *buffer, size_t size);
#define LOG_MASKED_NUMBER_SIZE 64

/* ===== text.c ===== */

/* Copies text into out (size > 0), cut to fit, always terminated. */
void text_copy(char *out, size_t size, const char *text);
/* The same for length octets of text that need not be terminated. */
void text_copy_length(char *out, size_t size, const char *text, size_t length);

/* ===== clock.c ===== */

/*
 * Wall-clock time in microseconds since the epoch, plus an offset that only
 * a test build of the configuration may move (the test clock), so flows and
 * quiet hours can be driven forward without sleeping.
 */
uint64_t clock_now_us(void);
uint64_t clock_monotonic_us(void);
void clock_advance_us(uint64_t delta_us);
uint64_t clock_offset_us(void);

/* ===== config.c ===== */

/* Value types a configuration key may have; each has its own parser. */
enum config_type {
	CONFIG_STRING,
	CONFIG_INTEGER,
	CONFIG_BOOLEAN,
	CONFIG_DURATION, /* "250ms", "30s", "5m", "2h", "1d" -> microseconds */
	CONFIG_SIZE,     /* "512", "64K", "64M", "1G" -> bytes */
	CONFIG_ENUM,     /* one of the words in choices ("a|b|c") -> index */
	CONFIG_LISTEN,   /* "host:port" */
};

struct config_listen {
	char host[64];
	uint16_t port;
};

/* One row of the key table: where the value lives and what it may be. */
struct config_key {
	const char *section; /* "http", or "link" for [link NAME] */
	const char *name;
	enum config_type type;
	size_t offset;   /* into struct config, or the instance */
	int64_t minimum; /* integers, durations, sizes */
	int64_t maximum;
	const char *choices;       /* CONFIG_ENUM: "warn|info|debug" */
	const char *default_value; /* text, parsed like a file value */
	const char *help;
};

/* An upstream SMSC link: [link NAME]. */
enum config_link_bind {
	CONFIG_LINK_BIND_TRANSCEIVER = 0,
	CONFIG_LINK_BIND_PAIR, /* a transmitter and a receiver */
};

enum config_link_split {
	CONFIG_LINK_SPLIT_UDH = 0, /* 8-bit reference */
	CONFIG_LINK_SPLIT_UDH16,   /* 16-bit reference */
	CONFIG_LINK_SPLIT_SAR,
	CONFIG_LINK_SPLIT_PAYLOAD, /* one submit_sm with message_payload */
};

struct config_link {
	char *name;
	int line; /* of its [link NAME] header */
	char *host;
	int64_t port;
	char *system_id;
	char *password;
	char *system_type;
	int bind; /* enum config_link_bind */
	int tls;
	int tls_verify;
	int64_t tps; /* parts per second; 0: no cap */
	int64_t window;
	uint64_t enquire_link_us;
	uint64_t response_timeout_us;
	uint64_t bind_timeout_us;
	uint64_t reconnect_min_us;
	uint64_t reconnect_max_us;
	char *source_addr;
	int64_t source_ton;
	int64_t source_npi;
	int64_t dest_ton;
	int64_t dest_npi;
	int response_id_base; /* enum smpp_id_base */
	int receipt_id_base;  /* enum smpp_id_base */
	int split;            /* enum config_link_split */
	char *routes;         /* destination prefixes; empty: any */
	int64_t priority;     /* failover order, lowest first */
};

/* An ESME account that binds to nudged: [account NAME]. */
struct config_account {
	char *name;
	int line;
	char *system_id;
	char *password;
	char *allowed_addresses; /* CIDR list */
	int64_t max_transmitters;
	int64_t max_receivers;
	int64_t max_transceivers;
	int64_t tps;           /* submits per second; 0: no cap */
	int64_t window;        /* deliver_sm outstanding to it */
	int traffic_class;     /* enum outbox_class */
	char *allowed_senders; /* empty: any */
	char *route;           /* link name; empty: by destination */
	char *mo_destinations; /* short codes, long numbers */
	char *mo_keywords;     /* first words of an MO */
	int64_t deliver_queue_max;
	uint64_t deliver_expiry_us;
	uint64_t deliver_retry_min_us;
	uint64_t deliver_retry_max_us;
};

/*
 * Compliance texts and keywords of one language: [language CODE]. Empty
 * values fall back to keyword.c's shipped defaults for that language, then
 * to English. Word lists are comma-separated; texts may use {program},
 * {contact}, {frequency} and {code}.
 */
struct config_language {
	char *name; /* "en", "it", "fr", ... */
	int line;
	char *opt_out_words; /* STOP, ... */
	char *opt_in_words;  /* START, UNSTOP, ... */
	char *help_words;    /* HELP, INFO, ... */
	char *confirm_words; /* Y, YES: confirm double opt-in */
	char *stop_reply;    /* sent once after an opt-out */
	char *start_reply;   /* after START / a confirmed opt-in */
	char *help_reply;
	char *confirm_request; /* "Reply Y to confirm ..." */
	char *code_text;       /* smart opt-in: "... code {code}" */
};

struct config {
	char *path;
	/* [nudged] */
	char *data_dir;
	char *pid_file;
	int log_level;
	uint64_t shutdown_timeout_us;
	int test_clock;
	char *default_country;
	char *rules_dir;
	char *organization_name;
	char *organization_url;
	/* [store] */
	uint64_t store_map_size;
	uint64_t store_map_resident;
	int64_t store_max_readers;
	int store_sync;
	/* [http] */
	struct config_listen http_listen;
	char *http_api_token;
	uint64_t http_max_body_size;
	uint64_t http_timeout_us;
	/* [smpp] */
	struct config_listen smpp_listen;
	uint64_t smpp_max_pdu_length;
	char *smpp_system_id;
	uint64_t smpp_bind_timeout_us;
	uint64_t smpp_idle_timeout_us;
	uint64_t smpp_enquire_link_us;
	uint64_t smpp_response_timeout_us;
	int64_t smpp_auth_fail_delay_after;
	int64_t smpp_auth_fail_block_after;
	uint64_t smpp_auth_fail_delay_us;
	uint64_t smpp_auth_block_us;
	char *smpp_tls_listen; /* host:port, empty: off */
	char *smpp_tls_certificate;
	char *smpp_tls_key;
	/* [outbox] */
	uint64_t outbox_validity_us;
	int64_t outbox_max_parts;
	uint64_t outbox_receipt_hold_us;
	uint64_t outbox_mo_timeout_us;
	/* [compliance] (consent.c, keyword.c) */
	char *compliance_program_name;
	char *compliance_contact;
	char *compliance_frequency;
	char *compliance_from;
	char *compliance_default_language;
	char *compliance_wording;
	uint64_t compliance_code_expiry_us;
	int64_t compliance_code_attempts;
	int compliance_stop_to_esme;
	uint64_t policy_smart_window_us;
	int64_t policy_cap_count;
	uint64_t policy_cap_period_us;
	/* quiet hours (quiet.c): [nudged] quiet_* */
	int quiet_enabled;
	char *quiet_window;
	char *quiet_days;
	char *quiet_fallback_zone;
	/* [link NAME] ... */
	struct config_link **links;
	size_t link_count;
	/* [account NAME] ... */
	struct config_account **accounts;
	size_t account_count;
	/* [language CODE] ... */
	struct config_language **languages;
	size_t language_count;
	/* [quiet CC] ... */
	struct config_quiet **quiets;
	size_t quiet_count;
};

/* Parses path; on failure every error was printed as "file:line: reason". */
struct config *config_load(const char *path, int *error_count);
void config_free(struct config *config);
/* Writes the key reference (markdown) generated from the table. */
void config_print_reference(FILE *out);
const struct config_key *config_keys(size_t *count);

/* ===== metrics.c ===== */

/* Prometheus metrics registered by name (and a label set) from any module. */
enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

struct metric;
typedef void (*metrics_collector_fn)(void *arg);

/* Returns the metric with this name and labels, creating it on first use.
 * labels is the inside of the braces, e.g. link="carrier-a", or NULL. */
struct metric *metrics_counter(
    const char *name, const char *labels, const char *help);
struct metric *metrics_gauge(
    const char *name, const char *labels, const char *help);
/* bounds: ascending upper bounds of the buckets (+Inf is implied). */
struct metric *metrics_histogram(const char *name, const char *labels,
    const char *help, const double *bounds, size_t bound_count);
void metrics_add(struct metric *metric, double amount);
void metrics_set(struct metric *metric, double value);
void metrics_observe(struct metric *metric, double value);
double metrics_value(const struct metric *metric);
/* Runs before every rendering, to refresh gauges computed on demand. */
void metrics_add_collector(metrics_collector_fn fn, void *arg);
void metrics_render(struct evbuffer *out);
void metrics_reset(void);

/* ===== http.c ===== */

struct evhttp;
struct json_t;
typedef void (*http_handler_fn)(struct evhttp_request *request, void *arg);

#define HTTP_ROUTE_EXACT  0x0
#define HTTP_ROUTE_PREFIX 0x1 /* path is a prefix ending in '/' */
#define HTTP_ROUTE_AUTH   0x2 /* needs the bearer token */

int http_start(struct event_base *base, const struct config *config);
/* Closes the listener; requests in flight still get their answers. */
void http_stop_listening(void);
void http_stop(void);
/* Re-reads the bearer token after SIGHUP. */
void http_set_token(const char *token);
void http_route(const char *method, const char *path, int flags,
    http_handler_fn fn, void *arg);
/* Sends body (its reference is taken) with status. */
void http_reply_json(
    struct evhttp_request *request, int status, struct json_t *body);
/* {"error": error, "detail": "..."} with a 4xx or 5xx status. */
void http_reply_error(struct evhttp_request *request, int status,
    const char *error, const char *detail_fmt, ...) PRINTF_LIKE(4, 5);
/* Parses the body as a JSON object; on failure replies 400/413 and
 * returns NULL. */
struct json_t *http_read_json(struct evhttp_request *request);
/* The path of the request without the query string, for prefix routes. */
const char *http_request_path(
    struct evhttp_request *request, char *buffer, size_t size);

/* ===== store.c ===== */

/*
 * The only module that calls LMDB. All writes of one event-loop turn join one
 * write transaction, committed once at the end of the turn (group commit);
 * work that promises durability (a submit_sm_resp, an HTTP 202) is queued
 * with store_after_commit() and runs only once that commit is on disk.
 */
enum store_result {
	STORE_OK = 0,
	STORE_NOT_FOUND, /* the key is absent */
	STORE_EXISTS,    /* STORE_PUT_NO_OVERWRITE and the key exists */
	STORE_ERROR,     /* anything else; already logged */
};

/* Named databases; later subsystems append theirs before STORE_DB_COUNT. */
enum store_db {
	STORE_DB_META = 0, /* schema version, id sequences */
	STORE_DB_TIMERS,   /* due time + timer id -> kind + payload */
	STORE_DB_MESSAGES, /* message id -> outbox_message_record */
	STORE_DB_PARTS,    /* message id + part -> outbox_part_record */
	STORE_DB_QUEUE,    /* message id -> (nothing): parts waiting */
	STORE_DB_INFLIGHT, /* message id + part -> (nothing): SUBMITTING */
	STORE_DB_SMSC_IDS, /* link NUL normalised id -> message id + part */
	STORE_DB_HELD_RECEIPTS, /* link NUL normalised id -> receipt_record */
	STORE_DB_RECEIPTS,     /* sequence -> receipt_record: the receipt log */
	STORE_DB_MO_PARTS,     /* reassembly key + part -> mo_part_record */
	STORE_DB_MO,           /* sequence -> mo_record: the MO log */
	STORE_DB_OPTOUT,       /* E.164 number -> optout_record */
	STORE_DB_ESME_QUEUE,   /* account NUL sequence -> queued deliver_sm */
	STORE_DB_PROFILES,     /* E.164 digits -> profile_record + JSON */
	STORE_DB_EXTERNAL_IDS, /* external id -> E.164 digits */
	STORE_DB_EVENTS,       /* sequence -> event JSON */
	STORE_DB_EVENT_IDS,    /* unique_id -> event sequence (idempotency) */
	STORE_DB_JOURNEYS,     /* journey id -> flow_journey_record + JSON */
	STORE_DB_JOURNEYS_BY_NUMBER, /* digits NUL journey id -> (nothing) */
	STORE_DB_FLOW_ENTRIES,  /* flow NUL digits NUL key -> last entry us */
	STORE_DB_FLOW_VERSIONS, /* flow file hash -> the file's bytes */
	STORE_DB_MESSAGES_BY_NUMBER, /* digits NUL message id -> (nothing) */
	STORE_DB_CONSENT,            /* digits -> consent_record (current) */
	STORE_DB_CONSENT_HISTORY, /* digits NUL time(8 BE) -> consent_record */
	STORE_DB_CONVERSATIONS,   /* digits -> an open conversation */
	STORE_DB_SENDS,           /* digits -> policy_sends_record */
	STORE_DB_DECISIONS, /* digits NUL time(8 BE) -> policy_decision_record */
	STORE_DB_COUNT
};

enum store_sequence {
	STORE_SEQUENCE_TIMER = 0,
	STORE_SEQUENCE_MESSAGE,
	STORE_SEQUENCE_RECEIPT,
	STORE_SEQUENCE_MO,
	STORE_SEQUENCE_ESME_QUEUE,
	STORE_SEQUENCE_EVENT,
	STORE_SEQUENCE_JOURNEY,
	STORE_SEQUENCE_COUNT
};

#define STORE_PUT_NO_OVERWRITE 0x1
#define STORE_PUT_APPEND       0x2 /* key sorts after every existing key */

struct store_options {
	const char *path;        /* directory holding data.mdb */
	size_t initial_map_size; /* bytes; grows on demand */
	unsigned int max_readers;
	int no_sync; /* MDB_NOSYNC: benchmarks of durability cost only */
	size_t map_resident_limit; /* bytes of the map kept mapped; 0 = all */
	int read_only;             /* nudgectl beside a running daemon */
};

struct store;
struct store_cursor;
typedef void (*store_after_commit_fn)(void *arg, enum store_result result);

struct store *store_open(const struct store_options *options);
void store_close(struct store *store);
/* Commits at the end of every loop turn that wrote something. */
void store_attach(struct store *store, struct event_base *base);
/* Drops this process's mapping of the map's pages (they stay cached). */
int store_trim_map(struct store *store);
enum store_result store_put(struct store *store, enum store_db db,
    const void *key, size_t key_length, const void *value, size_t value_length,
    unsigned int flags);
/* *value stays valid until the next write or commit. */
enum store_result store_get(struct store *store, enum store_db db,
    const void *key, size_t key_length, const void **value,
    size_t *value_length);
enum store_result store_delete(
    struct store *store, enum store_db db, const void *key, size_t key_length);
/* A durable, strictly increasing id; reserved in blocks, never reused. */
uint64_t store_sequence_next(struct store *store, enum store_sequence sequence);
void store_after_commit(
    struct store *store, store_after_commit_fn fn, void *arg);
/*
 * Drops every write of this turn (its waiters learn STORE_ERROR): for work
 * that must be all or nothing and failed half-way.
 */
void store_fail_turn(struct store *store, const char *reason);
/* Commits now and runs the after-commit work; normally the loop does it. */
enum store_result store_commit(struct store *store);
int store_has_pending(const struct store *store);
/* Ordered iteration: seek to the first key >= key, then next. */
enum store_result store_cursor_open(
    struct store *store, enum store_db db, struct store_cursor **cursor);
enum store_result store_cursor_seek(struct store_cursor *cursor,
    const void *key, size_t key_length, const void **found_key,
    size_t *found_key_length, const void **value, size_t *value_length);
enum store_result store_cursor_next(struct store_cursor *cursor,
    const void **found_key, size_t *found_key_length, const void **value,
    size_t *value_length);
void store_cursor_close(struct store_cursor *cursor);
/* Big-endian 8-byte keys sort in numeric order: ids, sequences, times. */
void store_encode_u64(uint8_t out[8], uint64_t value);
uint64_t store_decode_u64(const uint8_t in[8]);
/* For /healthz and /metrics. */
struct store_stats {
	size_t map_size;
	size_t used_bytes;
	uint64_t commits;
	uint64_t records_committed;
	uint64_t map_resizes;
	uint64_t commit_failures;
	size_t map_resident; /* the map's share of RSS at the last check */
	uint64_t map_trims;
};
void store_get_stats(const struct store *store, struct store_stats *stats);

/* ===== store_timer.c ===== */

/*
 * Durable timers: rows keyed by (due time, timer id) in STORE_DB_TIMERS, so
 * the earliest is the first key. Nothing pending lives only in memory.
 */
typedef void (*store_timer_fn)(void *arg, uint64_t timer_id, uint64_t due_us,
    uint16_t kind, const void *payload, size_t payload_length);

enum store_result store_timer_add(struct store *store, uint64_t due_us,
    uint16_t kind, const void *payload, size_t payload_length,
    uint64_t *timer_id);
enum store_result store_timer_cancel(
    struct store *store, uint64_t due_us, uint64_t timer_id);
enum store_result store_timer_earliest(struct store *store, uint64_t *due_us);
/* Hands every row due at or before now_us to fn (oldest first, at most max)
 * and deletes it in the same write transaction; returns how many. */
size_t store_timer_drain(struct store *store, uint64_t now_us, size_t max,
    store_timer_fn fn, void *arg);

/* ===== timer.c ===== */

/* Kinds of durable timer; each subsystem appends its own. */
enum timer_kind {
	TIMER_KIND_NONE = 0,
	TIMER_KIND_TEST,          /* unit tests */
	TIMER_KIND_OUTBOX_EXPIRY, /* message id: validity ran out */
	TIMER_KIND_RECEIPT_HOLD,  /* held receipt key: give up matching */
	TIMER_KIND_MO_REASSEMBLY, /* reassembly key: parts still missing */
	TIMER_KIND_ESME_DELIVER,  /* server.c: retry or expire a deliver_sm */
	TIMER_KIND_JOURNEY,       /* journey id: its delay is over */
	TIMER_KIND_OUTBOX_WAKE,   /* message id: its deferral is over */
	TIMER_KIND_WEBHOOK,       /* webhook.c: URL + body + attempt */
	TIMER_KIND_COUNT
};

typedef void (*timer_handler_fn)(
    void *arg, uint64_t timer_id, const void *payload, size_t payload_length);

/* One libevent timer armed for the earliest row of the timer table. */
void timer_init(struct event_base *base, struct store *store);
void timer_shutdown(void);
void timer_register(enum timer_kind kind, timer_handler_fn fn, void *arg);
enum store_result timer_schedule(uint64_t due_us, enum timer_kind kind,
    const void *payload, size_t payload_length, uint64_t *timer_id);
enum store_result timer_cancel(uint64_t due_us, uint64_t timer_id);
/* Re-reads the earliest row and re-arms (after the test clock moved). */
void timer_rearm(void);

/* ===== link.c ===== */

/*
 * Upstream links: nudged binds to carrier SMSCs as an ESME. A link owns its
 * connection(s) (one transceiver, or a transmitter and a receiver), the
 * smpp/ session state machine, the window, the parts-per-second cap with
 * adaptive slow-down on throttling, enquire_link and reconnects with
 * back-off. What the messages mean is the outbox's business: the link
 * reports through struct link_events.
 */
enum link_state {
	LINK_IDLE = 0, /* not started, or stopped */
	LINK_CONNECTING,
	LINK_BINDING,
	LINK_BOUND, /* can submit (transmitter side bound) */
	LINK_UNBINDING,
	LINK_BACKOFF, /* waiting to reconnect */
};

struct link;
struct smpp_pdu;
struct smpp_tlv;

/* One submit_sm to send; strings must live until link_submit() returns. */
struct link_submit {
	const char *source_addr; /* NULL: the link's source_addr */
	uint8_t source_addr_ton;
	uint8_t source_addr_npi;
	const char *destination_addr;
	uint8_t dest_addr_ton;
	uint8_t dest_addr_npi;
	uint8_t esm_class;
	uint8_t protocol_id;
	uint8_t priority_flag;
	uint8_t registered_delivery;
	uint8_t data_coding;
	const char *validity_period; /* SMPP time, or NULL */
	const uint8_t *short_message;
	size_t short_message_length;
	const struct smpp_tlv *tlvs;
	size_t tlv_count;
};

/* What a link tells the rest of the gateway. */
struct link_events {
	/* Bound, a response freed the window, or the rate cap refilled. */
	void (*available)(void *arg, struct link *link);
	/* submit_sm_resp for cookie; message_id is NULL unless status is 0. */
	void (*response)(void *arg, struct link *link, uint64_t cookie,
	    uint32_t status, const char *message_id);
	/* Sent, but no response will come (timeout, connection lost). */
	void (*lost)(
	    void *arg, struct link *link, uint64_t cookie, const char *reason);
	/*
	 * A deliver_sm or data_sm from the SMSC (receipt or MO). Returns the
	 * status to answer with; the link sends the response only after the
	 * store commit that holds what the handler wrote.
	 */
	uint32_t (*deliver)(
	    void *arg, struct link *link, const struct smpp_pdu *pdu);
	void *arg;
};

struct link_stats {
	enum link_state state;
	uint64_t binds;
	uint64_t reconnects;
	uint64_t submitted;    /* submit_sm sent */
	uint64_t acknowledged; /* submit_sm_resp with status 0 */
	uint64_t throttled;    /* 0x58 and 0x14 */
	uint64_t rejected;     /* other error statuses */
	uint64_t timeouts;
	uint64_t delivered_in; /* deliver_sm received */
	size_t window_used;
	size_t window_size;
	double rate_limit; /* current parts/s cap, 0: none */
};

/* Creates every [link] of config and starts connecting. */
void link_start_all(struct event_base *base, const struct config *config,
    const struct link_events *events);
/* Shutdown: unbind every session; link_all_idle() says when done. */
void link_stop_all(void);
int link_all_idle(void);
/* Frees everything (after the loop ended, before the event base is
 * freed); requests still outstanding are not reported. */
void link_free_all(void);
size_t link_count(void);
struct link *link_get(size_t index);
struct link *link_find(const char *name);
const char *link_name(const struct link *link);
const struct config_link *link_config(const struct link *link);
enum link_state link_get_state(const struct link *link);
const char *link_strstate(enum link_state state);
/* Submits that can go out now: 0 unless bound, within window and cap. */
size_t link_capacity(struct link *link);
/*
 * Sends one submit_sm; 0 when sent, -1 when it cannot go now (not bound,
 * window full, rate cap; `available` follows), -2 when it can never go
 * (the PDU cannot be encoded: a field too long, a bad TLV).
 */
int link_submit(
    struct link *link, const struct link_submit *submit, uint64_t cookie);
void link_get_stats(const struct link *link, struct link_stats *stats);

/* ===== outbox.c ===== */

/*
 * The durable outbox. A message moves QUEUED -> SUBMITTING -> SUBMITTED ->
 * DELIVERED / UNDELIVERABLE / EXPIRED / REJECTED / FAILED / UNKNOWN, each
 * step committed with its time. SUBMITTING is committed before the
 * submit_sm leaves, so after a crash a part left SUBMITTING becomes UNKNOWN
 * and is never sent twice.
 */
enum outbox_state {
	OUTBOX_STATE_NONE = 0,
	OUTBOX_QUEUED,
	OUTBOX_SUBMITTING,
	OUTBOX_SUBMITTED,
	OUTBOX_DELIVERED,
	OUTBOX_UNDELIVERABLE,
	OUTBOX_EXPIRED,
	OUTBOX_REJECTED,
	OUTBOX_FAILED,
	OUTBOX_UNKNOWN,
	OUTBOX_STATE_COUNT
};

enum outbox_class {
	OUTBOX_CLASS_TRANSACTIONAL = 0,
	OUTBOX_CLASS_MARKETING,
};

/* Why a state changed, kept in the message's history. */
enum outbox_reason {
	OUTBOX_REASON_NONE = 0,
	OUTBOX_REASON_ACCEPTED,
	OUTBOX_REASON_SENDING,
	OUTBOX_REASON_ACKNOWLEDGED,  /* submit_sm_resp OK */
	OUTBOX_REASON_THROTTLED,     /* 0x58 / 0x14: requeued */
	OUTBOX_REASON_SMSC_REJECTED, /* permanent submit_sm_resp error */
	OUTBOX_REASON_RESPONSE_TIMEOUT,
	OUTBOX_REASON_CONNECTION_LOST,
	OUTBOX_REASON_CRASH_RECOVERY,   /* SUBMITTING at start-up */
	OUTBOX_REASON_VALIDITY_EXPIRED, /* never left the queue in time */
	OUTBOX_REASON_RECEIPT,
	OUTBOX_REASON_NOT_SENT,         /* the link went away before sending */
	OUTBOX_REASON_SIBLING_REJECTED, /* another part was refused */
	OUTBOX_REASON_CANCELLED,        /* cancel_sm before it was sent */
	OUTBOX_REASON_NOT_ENCODABLE,    /* the link can never send it */
	OUTBOX_REASON_DEFERRED, /* quiet hours: waits until not_before */
	OUTBOX_REASON_COUNT
};

#define OUTBOX_ADDRESS_SIZE   24
#define OUTBOX_LINK_NAME_SIZE 32
#define OUTBOX_ORIGIN_SIZE    32
#define OUTBOX_SMSC_ID_SIZE   65
#define OUTBOX_HISTORY_MAX    48
#define OUTBOX_RECORD_VERSION 1
#define OUTBOX_TEXT_MAX       65535 /* bytes of UTF-8 */
#define OUTBOX_TEXT_BUFFER    (OUTBOX_TEXT_MAX + 1)

struct outbox_history_entry {
	uint64_t time_us;
	uint32_t status; /* SMPP status or receipt error */
	uint8_t state;   /* enum outbox_state */
	uint8_t part;    /* 0: the message; else part number */
	uint8_t reason;  /* enum outbox_reason */
	uint8_t unused;
};

#define OUTBOX_MESSAGE_FIXED_ROUTE 0x01 /* only over the link named in link */

/* STORE_DB_MESSAGES value; the UTF-8 text and the callback URL follow. */
struct outbox_message_record {
	uint8_t version;
	uint8_t state;         /* enum outbox_state */
	uint8_t message_class; /* enum outbox_class */
	uint8_t data_coding;
	uint8_t part_count;
	uint8_t history_count;
	uint8_t flags; /* OUTBOX_MESSAGE_* */
	uint8_t unused;
	uint8_t part_states[OUTBOX_STATE_COUNT]; /* parts per state */
	uint8_t unused2[6];
	uint64_t created_us;
	uint64_t updated_us;
	uint64_t expires_us;
	uint64_t not_before_us; /* deferred (quiet hours) until then */
	char to[OUTBOX_ADDRESS_SIZE];
	char from[OUTBOX_ADDRESS_SIZE];
	char link[OUTBOX_LINK_NAME_SIZE];
	char origin[OUTBOX_ORIGIN_SIZE];
	uint16_t text_length;
	uint16_t callback_length;
	uint32_t history_dropped;
	struct outbox_history_entry history[OUTBOX_HISTORY_MAX];
};

/* STORE_DB_PARTS value; the short_message octets, then TLV octets follow. */
#define OUTBOX_PART_EXPLICIT_ADDRESSING 0x01 /* TON/NPI below, not the link's */

struct outbox_part_record {
	uint8_t version;
	uint8_t state; /* enum outbox_state */
	uint8_t esm_class;
	uint8_t data_coding;
	uint8_t receipt_state;       /* enum smpp_message_state */
	uint8_t registered_delivery; /* what the producer asked */
	uint8_t flags;               /* OUTBOX_PART_* */
	uint8_t protocol_id;
	uint8_t priority_flag;
	uint8_t source_addr_ton;
	uint8_t source_addr_npi;
	uint8_t dest_addr_ton;
	uint8_t dest_addr_npi;
	uint8_t unused[3];
	uint16_t short_message_length;
	uint16_t tlv_length;
	uint32_t submit_status;
	uint32_t receipt_error;
	uint64_t submitted_us;
	uint64_t responded_us;
	uint64_t receipt_us;
	char link[OUTBOX_LINK_NAME_SIZE];
	char smsc_id[OUTBOX_SMSC_ID_SIZE];
};

/* What a producer (HTTP, flows, the SMPP server) asks the outbox to send. */
struct outbox_request {
	const char *to;   /* E.164, "+" optional */
	const char *from; /* NULL: the link's source_addr */
	const char *text; /* UTF-8 */
	size_t text_length;
	enum outbox_class message_class;
	uint64_t validity_us;      /* 0: the configured default */
	const char *callback_url;  /* NULL: none */
	const char *origin;        /* "http", "flow:ID", "esme:SYSTEM_ID" */
	uint64_t not_before_us;    /* the producer deferred it (0: no) */
	const char *zone;          /* the profile's IANA zone, or NULL */
	unsigned int policy_flags; /* POLICY_SKIP_*: producer's checks */
};

/* What outbox_submit() decided about a request it accepted. */
struct outbox_accepted {
	uint64_t id;
	unsigned int parts;
	uint8_t data_coding;
};

/* One submit_sm from an ESME: one message of one part, kept as given. */
struct outbox_part_request {
	const char *to;
	uint8_t dest_addr_ton;
	uint8_t dest_addr_npi;
	const char *from;
	uint8_t source_addr_ton;
	uint8_t source_addr_npi;
	uint8_t esm_class;
	uint8_t data_coding;
	uint8_t protocol_id;
	uint8_t priority_flag;
	uint8_t registered_delivery;
	const uint8_t *short_message;
	size_t short_message_length;
	const uint8_t *tlv_bytes; /* sar_*, message_payload: re-sent */
	size_t tlv_length;
	enum outbox_class message_class;
	uint64_t validity_us; /* 0: the configured default */
	const char *origin;   /* "esme:SYSTEM_ID" */
	const char *link;     /* NULL or "": route by destination */
};

/* Told of every part that got a receipt or reached a final state. */
typedef void (*outbox_observer_fn)(void *arg, uint64_t id,
    const struct outbox_message_record *message, unsigned int part,
    const struct outbox_part_record *record);

void outbox_init(struct event_base *base, const struct config *config);
/*
 * Stores an ESME's submit in the current turn's transaction; returns
 * SMPP_ESME_ROK and the id, or the SMPP status to answer with. Answer only
 * from store_after_commit().
 */
uint32_t outbox_submit_part(
    const struct outbox_part_request *request, uint64_t *id);
/* cancel_sm: parts not yet sent end REJECTED (cancelled); SMPP status. */
uint32_t outbox_cancel(uint64_t id, const char *origin);
/* replace_sm: new octets for a message still wholly QUEUED; SMPP status. */
uint32_t outbox_replace(uint64_t id, const char *origin,
    const uint8_t *short_message, size_t length, uint8_t registered_delivery);
void outbox_add_observer(outbox_observer_fn fn, void *arg);
/* After every module registered its observers: recover, start sending. */
void outbox_start(void);
/* Frees the links and what the outbox holds in memory (after the loop). */
void outbox_free(void);
/* Shutdown hooks: stop sending and unbind; done when links are idle. */
void outbox_shutdown_begin(void *arg);
int outbox_shutdown_done(void *arg);
/*
 * Validates, splits and stores a message in the current turn's
 * transaction. 0 on success; otherwise -1 with field and reason set for a
 * 4xx answer (field may be "" for a storage failure). Answer the producer
 * only from store_after_commit().
 */
int outbox_submit(const struct outbox_request *request,
    struct outbox_accepted *accepted, const char **field, char *reason,
    size_t reason_size);
const char *outbox_strstate(enum outbox_state state);
const char *outbox_strreason(enum outbox_reason reason);
const char *outbox_strclass(enum outbox_class message_class);
/* Reads a message and its parts into caller memory; STORE_NOT_FOUND if none. */
enum store_result outbox_read_message(uint64_t id,
    struct outbox_message_record *message, char *text, size_t text_size);
enum store_result outbox_read_part(
    uint64_t id, unsigned int part, struct outbox_part_record *record);
enum store_result outbox_read_callback_url(
    uint64_t id, char *url, size_t url_size);
/* Queue depth (messages with parts waiting) for stats. */
size_t outbox_queue_depth(void);
/* Applies a matched receipt to a part (receipt.c calls it). */
void outbox_apply_receipt(uint64_t id, unsigned int part, int message_state,
    uint32_t error_code, uint64_t now_us);
/* The same; 0 and both records as they are now, -1 if the part is gone. */
int outbox_receipt_apply(uint64_t id, unsigned int part, int message_state,
    uint32_t error_code, uint64_t now_us, struct outbox_message_record *message,
    struct outbox_part_record *part_record);
/* A submit_sm_resp gave part its SMSC id (receipt.c matches held ones). */
void outbox_key(uint64_t id, unsigned int part, uint8_t key[9]);

/*
 * STORE_DB_META "link-status/NAME": a link's state and counters, written
 * every second by nudged so that nudgectl can show them from the store.
 */
#define OUTBOX_LINK_STATUS_PREFIX "link-status/"
struct outbox_link_status_record {
	uint8_t version;
	uint8_t state; /* enum link_state */
	uint8_t unused[6];
	uint64_t updated_us;
	uint64_t binds;
	uint64_t reconnects;
	uint64_t submitted;
	uint64_t acknowledged;
	uint64_t throttled;
	uint64_t rejected;
	uint64_t timeouts;
	uint64_t delivered_in;
	uint64_t window_used;
	uint64_t window_size;
	double rate_limit;
	uint64_t queue_depth; /* whole outbox, same for every link */
};

/* ===== callback.c ===== */

/*
 * Status callbacks: when a message with a callback URL reaches a final
 * state, its status is POSTed there as JSON through the durable webhook
 * queue (retries, crash-safe, Idempotency-Key).
 */
void callback_init(struct event_base *base);
/* Queues the callback of a message that just became final (this turn). */
void callback_message_final(
    uint64_t id, const struct outbox_message_record *message);

/* ===== receipt.c ===== */

/* STORE_DB_RECEIPTS (the receipt log) and STORE_DB_HELD_RECEIPTS value. */
struct receipt_record {
	uint8_t version;
	uint8_t receipt_state; /* enum smpp_message_state */
	uint8_t part;
	uint8_t matched;    /* 0: no message had that SMSC id */
	uint8_t part_state; /* enum outbox_state after it */
	uint8_t unused[3];
	uint32_t error_code;
	uint32_t unused2;
	uint64_t time_us;
	uint64_t message_id;
	uint64_t submitted_us;
	char link[OUTBOX_LINK_NAME_SIZE];
	char smsc_id[OUTBOX_SMSC_ID_SIZE];
	char to[OUTBOX_ADDRESS_SIZE];
	char stat[16];
};

void receipt_init(const struct config *config);
/* 1 if a deliver_sm/data_sm from an SMSC is a delivery receipt. */
int receipt_is_receipt(const struct smpp_pdu *pdu);
/* Stores and matches one receipt; returns the status to answer with. */
uint32_t receipt_handle(struct link *link, const struct smpp_pdu *pdu);
/* The part now has smsc_id: index it and apply a receipt held for it. */
void receipt_index_part(const char *link_name, const char *smsc_id,
    uint64_t message_id, unsigned int part);
/* Canonical key "link NUL normalised-id"; returns its length, 0 if bad. */
size_t receipt_key(const char *link_name, const char *id, size_t id_length,
    int base, uint8_t *key, size_t key_size);

/* ===== mo.c ===== */

/* STORE_DB_MO value (the MO log); the UTF-8 text follows. */
struct mo_record {
	uint8_t version;
	uint8_t data_coding;
	uint8_t parts;
	uint8_t complete; /* 0: reassembly timed out */
	uint16_t text_length;
	uint16_t unused;
	uint64_t time_us;
	char link[OUTBOX_LINK_NAME_SIZE];
	char from[OUTBOX_ADDRESS_SIZE];
	char to[OUTBOX_ADDRESS_SIZE];
};

/* The one place inbound SMS go after they are whole and stored. */
typedef void (*mo_route_fn)(
    void *arg, uint64_t mo_id, const struct mo_record *mo, const char *text);

void mo_init(const struct config *config);
void mo_free(void);
void mo_set_route(mo_route_fn fn, void *arg);
/* Stores one MO PDU (or part); returns the status to answer with. */
uint32_t mo_handle(struct link *link, const struct smpp_pdu *pdu);

/* ===== api_message.c ===== */

/* POST /v1/messages (single and batch), GET /v1/messages/{id}. */
void api_message_init(void);

/* ===== optout.c ===== */

/*
 * The opt-out list: numbers that must get no marketing SMS, from any
 * producer (flows, HTTP, relayed ESME traffic). The compliance work builds
 * consent on top; the lookup is one function so that it can later be backed
 * by a replicated store without touching its callers.
 */
struct optout_record {
	uint8_t version;
	uint8_t unused[7];
	uint64_t time_us;
	char source[32]; /* "api", "keyword", "import", ... */
};

void optout_init(void);
/* 1 if number (E.164, "+" optional) opted out of marketing. */
int optout_is_opted_out(const char *number);
enum store_result optout_set(const char *number, const char *source);
enum store_result optout_clear(const char *number);

/* ===== server.c ===== */

/*
 * The SMPP server side: ESMEs (aggregators, Kannel) bind to nudged, submit
 * traffic that goes through the outbox, and receive receipts and MO as
 * deliver_sm, queued durably per account while no receiver is bound.
 */
void server_init(struct event_base *base, const struct config *config);
void server_shutdown_begin(void *arg);
int server_shutdown_done(void *arg);
void server_free(void);
/* An inbound SMS nothing else claimed: 1 if an account's routes took it. */
int server_route_mo(
    uint64_t mo_id, const struct mo_record *mo, const char *text);
/* Sessions open now (bound or not), for stats and tests. */
size_t server_session_count(void);
/*
 * Between server.c (sessions) and server_deliver.c (the per-account queue
 * of deliver_sm), not for other modules. Accounts are named by their index
 * in config->accounts; cookie is the queue sequence of an item.
 *
 * Sends one encoded deliver_sm (its sequence number is patched in) on a
 * receiver of the account with window room: 0 if sent, -1 if none has room.
 */
int server_send_deliver(
    size_t account, uint8_t *pdu, size_t length, uint64_t cookie);
void server_deliver_init(struct event_base *base, const struct config *config);
void server_deliver_free(void);
/* A receiver bound or got window room: send what is due. */
void server_deliver_ready(size_t account);
/* deliver_sm_resp (or a generic_nack answering it) arrived. */
void server_deliver_answered(size_t account, uint64_t cookie, uint32_t status);
/* No answer will come: timed_out (retry later) or the session closed. */
void server_deliver_unanswered(size_t account, uint64_t cookie, int timed_out);
/* Items kept for an account (sent and unanswered ones included). */
size_t server_deliver_queue_depth(size_t account);
/* The SMPP message_state (enum smpp_message_state) an ESME is told. */
int server_deliver_message_state(
    enum outbox_state state, enum outbox_reason reason);
/* Why a message (part 0) or a part last changed, from its history. */
enum outbox_reason server_deliver_last_reason(
    const struct outbox_message_record *message, unsigned int part);

/* ===== phone.c ===== */

/* To E.164 ("+39340..."); national numbers take default_country's code. */
int phone_normalize(const char *input, const char *default_country, char *out,
    size_t out_size, const char **error);
/* "39" for "IT"; NULL for a country outside the table. */
const char *phone_calling_code(const char *iso);
/* The digits of "+39340..." (the store's keys by number) and their count. */
const char *phone_digits(const char *number, size_t *length);

/* ===== profile.c ===== */

/*
 * Subscriber profiles, keyed by E.164 number, with an index by the shop's
 * external id. Order count and total spent follow Placed Order events; the
 * times of the latest orders answer "ordered N times in the last D days".
 */
#define PROFILE_ORDER_TIMES 32
#define PROFILE_NUMBER_SIZE 24

struct profile_record {
	uint8_t version;
	uint8_t consent; /* reserved for the consent lifecycle */
	uint8_t order_times_count;
	uint8_t unused[5];
	uint64_t created_us;
	uint64_t updated_us;
	uint64_t last_order_us;
	double total_spent;
	uint32_t order_count;
	uint32_t attributes_length; /* JSON text that follows */
	uint64_t order_times_us[PROFILE_ORDER_TIMES]; /* newest last */
};

struct profile {
	char number[PROFILE_NUMBER_SIZE]; /* "+39..." */
	struct profile_record record;
	struct json_t *attributes; /* external_id, email, first_name, ... */
	int exists;                /* 0: new, not yet saved */
};

void profile_init(const struct config *config);
/* Loads number's profile (an empty new one if absent); release after. */
enum store_result profile_load(const char *number, struct profile *profile);
void profile_release(struct profile *profile);
enum store_result profile_save(struct profile *profile);
/*
 * Merges the attributes of an API profile object into profile; returns -1
 * with the bad field named. Keys: external_id, email, first_name,
 * last_name, language, timezone, properties (merged one level deep).
 */
int profile_merge(struct profile *profile, struct json_t *object,
    const char **field, char *reason, size_t reason_size);
void profile_record_order(
    struct profile *profile, double value, uint64_t time_us);
/* Orders placed at or after since_us (0: all time). */
unsigned int profile_orders_since(
    const struct profile *profile, uint64_t since_us);
/* The profile as the API and templates see it ("person"). */
struct json_t *profile_to_json(const struct profile *profile);
/* The number of the profile with this external id, if any. */
enum store_result profile_find_external(
    const char *external_id, char *number, size_t number_size);

/* ===== api_event.c ===== */

/* What happens to an event once it is stored; fills journeys (an array). */
typedef void (*api_event_handler_fn)(void *arg, uint64_t event_id,
    const char *metric, struct profile *profile, struct json_t *properties,
    uint64_t time_us, struct json_t *journeys);

/* POST /v1/events (single and batch), GET/PUT /v1/profiles/{number}. */
void api_event_init(const struct config *config);
void api_event_set_handler(api_event_handler_fn fn, void *arg);

/* ===== rule.c ===== */

/*
 * Flow rule files (the .xml files of rules/, format in rules/README.md)
 * compile to the model below, which the flow runtime executes. A flow is immutable once
 * loaded: the reloader swaps whole flows, and a journey keeps a reference
 * (refcount) to the version it started on.
 *
 * Steps form a graph over flow->steps[]: a journey starts at steps[0] and
 * moves along next (or a split's branch indexes) until FLOW_STEP_NONE, which
 * ends it. Every edge goes to a higher index, so a path has no loops and at
 * most step_count steps. Branches of splits that run out of steps continue
 * at the step after the split (they rejoin); <goto> and <end> were resolved
 * by the loader into these indexes.
 */
struct template;

#define FLOW_STEP_NONE        UINT32_MAX /* no step: the journey ends */
#define FLOW_MAX_STEPS        256
#define FLOW_MAX_CONDITIONS   32 /* per split, and trigger filters */
#define FLOW_MAX_AB_BRANCHES  10
#define FLOW_MAX_TEXTS        32 /* languages of one SMS */
#define FLOW_MAX_ANSWERS      16 /* answers of one question */
#define FLOW_MAX_WORDS        16 /* words of one answer */
#define FLOW_MAX_EXIT_METRICS 16
#define FLOW_MAX_DELAY_US     (365ULL * 86400 * 1000000) /* one year */
#define RULE_MAX_FILE_SIZE    (256 * 1024) /* larger files are refused */

enum flow_status {
	FLOW_STATUS_LIVE = 0, /* triggers start journeys */
	FLOW_STATUS_DRAFT,    /* loaded and checked, never started */
	FLOW_STATUS_MANUAL,   /* started only by an operator or the API */
};

enum flow_kind {
	FLOW_KIND_STANDARD = 0,
	/* kind="abandonment", or triggered by Viewed Product, Added to Cart or
	 * Started Checkout: the abandonment policy applies (one SMS per
	 * episode, within 48 h of the trigger). */
	FLOW_KIND_ABANDONMENT,
};

enum flow_trigger_type {
	FLOW_TRIGGER_METRIC = 0, /* an event named metric (+ filters) */
	FLOW_TRIGGER_KEYWORD,    /* an inbound SMS starting with keyword */
	FLOW_TRIGGER_REPLY,      /* an answer in a conversation */
};

/* What a condition looks at. */
enum flow_subject {
	FLOW_SUBJECT_PROFILE_PROPERTY = 0, /* profile property at path */
	FLOW_SUBJECT_EVENT_PROPERTY,       /* trigger event property at path */
	FLOW_SUBJECT_CONSENT,     /* SMS consent state (value: a word) */
	FLOW_SUBJECT_ORDER_COUNT, /* Placed Order events over period_us */
	FLOW_SUBJECT_TOTAL_SPENT, /* sum of Placed Order values, all time */
	FLOW_SUBJECT_LANGUAGE,    /* the profile's language tag */
};

enum flow_operator {
	FLOW_OPERATOR_EQUALS = 0, /* numbers as numbers, text exactly */
	FLOW_OPERATOR_NOT_EQUALS,
	FLOW_OPERATOR_CONTAINS,     /* caseless: substring, list element */
	FLOW_OPERATOR_GREATER_THAN, /* numbers only */
	FLOW_OPERATOR_LESS_THAN,    /* numbers only */
	FLOW_OPERATOR_IS_SET,       /* present, not null, not "" */
	FLOW_OPERATOR_IS_NOT_SET,
};

/* One test of a split or of a trigger filter. */
struct flow_condition {
	enum flow_subject subject;
	enum flow_operator operator;
	char *path;    /* property subjects: "a.b.c"; else NULL */
	char *value;   /* as written; NULL for is-set/is-not-set */
	double number; /* value as a number, when has_number */
	int has_number;
	uint64_t period_us; /* order count: the last period; 0: ever */
	int line;
};

struct flow_trigger {
	enum flow_trigger_type type;
	char *metric;                   /* METRIC: "Added to Cart" */
	struct flow_condition *filters; /* METRIC: event properties, all */
	size_t filter_count;            /* must hold for the event to count */
	char *keyword;      /* KEYWORD: as written, matched caseless */
	char *conversation; /* REPLY: the question's conversation */
	int line;
};

enum flow_reentry_mode {
	FLOW_REENTRY_ALWAYS = 0, /* every trigger starts a journey */
	FLOW_REENTRY_ONCE,       /* once per subscriber, ever */
	FLOW_REENTRY_PERIOD,     /* at most once per period_us */
	FLOW_REENTRY_KEY,        /* once per rendered key (per period_us
					 * if not 0): one cart, one product */
};

struct flow_reentry {
	enum flow_reentry_mode mode;
	uint64_t period_us;
	char *key_source;     /* KEY: template text ("{{ event.X }}") */
	struct template *key; /* KEY: compiled; render on the event */
};

enum flow_step_type {
	FLOW_STEP_DELAY = 0,
	FLOW_STEP_CONDITIONAL_SPLIT, /* on the profile */
	FLOW_STEP_TRIGGER_SPLIT,     /* on the trigger event */
	FLOW_STEP_AB_SPLIT,
	FLOW_STEP_SMS,
	FLOW_STEP_UPDATE,  /* set a profile property */
	FLOW_STEP_WEBHOOK, /* POST the journey context */
	FLOW_STEP_END,
	FLOW_STEP_TYPE_COUNT
};

/* Wait duration_us, then (has_until) until the next until_hour:minute in
 * the subscriber's zone; either part may be absent, not both. */
struct flow_delay {
	uint64_t duration_us;
	int has_until;
	uint8_t until_hour;
	uint8_t until_minute;
};

/* Conditional and trigger splits: yes when all (match_any: any) hold. */
struct flow_split {
	struct flow_condition *conditions;
	size_t condition_count;
	int match_any;
	uint32_t yes; /* step index or FLOW_STEP_NONE */
	uint32_t no;
};

struct flow_ab_branch {
	unsigned int weight; /* percent; a split's weights sum to 100 */
	char *name;          /* label for reports, or NULL */
	uint32_t step;       /* step index or FLOW_STEP_NONE */
};

/* The runtime hashes (subscriber, flow id) to a bucket in 0..99 and takes
 * the branch whose cumulative weight first exceeds it: rule_ab_branch(). */
struct flow_ab {
	struct flow_ab_branch *branches;
	size_t branch_count;
};

/* One language of an SMS. */
struct flow_text {
	char language[24]; /* "en", "it", "pt-BR" */
	char *source;      /* the template text, lines trimmed */
	struct template *compiled;
	int line; /* of the template's first line */
};

/* Replies that match one of words (whole reply, caseless, trimmed) start
 * the flow flow_id, whose trigger is <reply conversation=.../>. */
struct flow_answer {
	char **words;
	size_t word_count;
	char *flow_id;
	int line;
};

/* The SMS asks a question: replies within reply_window_us are answers. */
struct flow_question {
	char *conversation;
	uint64_t reply_window_us;
	struct flow_answer *answers;
	size_t answer_count;
};

struct flow_sms {
	struct flow_text *texts; /* one per language, >= 1 */
	size_t text_count;
	size_t fallback;   /* index in texts: no language matched */
	int message_class; /* enum outbox_class */
	int quiet_hours;   /* 1: defer out of quiet hours */
	int smart_sending; /* 1: skip if one went out lately */
	struct flow_question *question; /* NULL: none */
};

struct flow_update {
	char *property; /* profile property path */
	char *value_source;
	struct template *value; /* rendered on the journey context */
};

struct flow_webhook {
	char *url; /* http:// or https:// */
};

struct flow_step {
	enum flow_step_type type;
	char *id; /* as written, or "TYPE@LINE" if none */
	int line;
	/* The step after this one; FLOW_STEP_NONE for splits (their branches
	 * say where to go), END, and the last step of a path. */
	uint32_t next;
	union {
		struct flow_delay delay;
		struct flow_split split; /* both split types */
		struct flow_ab ab;
		struct flow_sms sms;
		struct flow_update update;
		struct flow_webhook webhook;
	};
};

struct rule_memory;

struct flow {
	char *id;
	char *name;
	char *description; /* or NULL */
	char *file;        /* the path it was loaded from */
	int line;          /* of <flow> */
	enum flow_status status;
	enum flow_kind kind;
	struct flow_trigger trigger;
	struct flow_reentry reentry;
	char **exit_metrics;      /* any of these since the trigger */
	size_t exit_metric_count; /* ends the journey */
	struct flow_step *steps;  /* steps[0] runs first */
	size_t step_count;
	uint64_t hash;              /* FNV-1a 64 of the file's bytes */
	unsigned int refcount;      /* 1 from the loader; see rule_hold() */
	struct rule_memory *memory; /* owns every string and array above */
};

/* Everything a load or a lint found, in order. */
enum rule_severity {
	RULE_ERROR = 0, /* the file is refused */
	RULE_WARNING,   /* loads; a marketer should look */
};

struct rule_message {
	enum rule_severity severity;
	char *file;
	int line; /* 0: the file as a whole */
	char *text;
};

#define RULE_REPORT_MAX_MESSAGES 500 /* then one "too many" line */

struct rule_report {
	struct rule_message *messages;
	size_t count;
	size_t capacity;
	size_t error_count;
	size_t warning_count;
	size_t dropped; /* past RULE_REPORT_MAX_MESSAGES */
};

/* What rule_lint_with() warns about. */
struct rule_lint_options {
	size_t max_parts;               /* SMS parts for the sample profile */
	uint64_t abandonment_window_us; /* delay before an SMS */
	FILE *preview;                  /* non-NULL: every SMS text rendered for
					 * the sample profile is printed here */
};
#define RULE_LINT_MAX_PARTS             2
#define RULE_LINT_ABANDONMENT_WINDOW_US (48ULL * 3600 * 1000000)

void rule_report_init(struct rule_report *report);
void rule_report_free(struct rule_report *report);
void rule_report_add(struct rule_report *report, enum rule_severity severity,
    const char *file, int line, const char *fmt, ...) PRINTF_LIKE(5, 6);
/* "file:line: reason" for errors, "file:line: warning: reason". */
void rule_report_print(const struct rule_report *report, FILE *out);

/*
 * Reads, validates (schema, then meaning) and compiles one rule file; NULL
 * if it has errors, all of which are in report. Files over
 * RULE_MAX_FILE_SIZE and files with a DOCTYPE are refused; no network, no
 * entity expansion. name is used in messages and as flow->file.
 */
struct flow *rule_load_file(const char *path, struct rule_report *report);
struct flow *rule_load_memory(const char *name, const char *data, size_t length,
    struct rule_report *report);
/* Takes one more reference; rule_free() drops one, the last frees. */
struct flow *rule_hold(struct flow *flow);
void rule_free(struct flow *flow);
/* The built-in schema (rules/flow.rng as built), and its cached compiled
 * form's release at exit. */
const char *rule_schema(size_t *length);
void rule_cleanup(void);

/* Parses "45s", "30m", "2h", "1d", "2w"; -1 if not one, or over a year. */
int rule_parse_duration(const char *text, uint64_t *duration_us);
const char *rule_step_type_name(enum flow_step_type type);
/* Index of the step with this id, or FLOW_STEP_NONE. */
uint32_t rule_step_index(const struct flow *flow, const char *id);
/* The text for a language: exact tag, then its primary subtag ("pt" for
 * "pt-BR"), then the fallback. language may be NULL. */
const struct flow_text *rule_sms_text(
    const struct flow_sms *sms, const char *language);
/* The answer a reply matches (caseless, spaces trimmed), or NULL. */
const struct flow_answer *rule_question_answer(
    const struct flow_question *question, const char *reply, size_t length);
/* The branch of an A/B split for a bucket in 0..99. */
const struct flow_ab_branch *rule_ab_branch(
    const struct flow_ab *ab, unsigned int bucket);

/* rule_lint.c: warnings a marketer needs (abandonment timing and count,
 * long texts, dead splits, unreachable steps), with default options. */
void rule_lint(const struct flow *flow, struct rule_report *report);
void rule_lint_with(const struct flow *flow,
    const struct rule_lint_options *options, struct rule_report *report);
/* Checks across the files of one folder: duplicate flow ids and keywords,
 * answers naming flows that are absent or not reply-triggered. */
void rule_check_set(
    struct flow *const *flows, size_t count, struct rule_report *report);
/* `nudgectl rules check`: loads each file (a folder: its .xml files),
 * lints every flow that loads, checks them as a set; returns the number of
 * files checked. */
size_t rule_check_paths(const char *const *paths, size_t count,
    const struct rule_lint_options *options, struct rule_report *report);
/* rule.c: the .xml files of a folder, hidden ones left out, sorted by
 * name; 0, or -1 with errno. Free with rule_paths_free(). */
int rule_folder_files(const char *folder, char ***paths, size_t *count);
void rule_paths_free(char **paths, size_t count);

/* ===== template.c ===== */

/*
 * SMS templates, Django/Klaviyo style: "Hi {{ first_name|title|default:
 * 'there' }}". Compiled once when a rule file loads; rendered on the flow
 * engine's hot path into the caller's buffer with no allocation. The context
 * is a JSON object {"person": {..., "properties": {...}}, "event": {...},
 * "organization": {...}, "journey": {...}}; paths, filters and what they
 * do are documented atop src/template.c.
 */
#define TEMPLATE_TEXT_MAX    4096 /* bytes of template source */
#define TEMPLATE_FILTERS_MAX 32   /* filters on one variable */
#define TEMPLATE_VALUE_MAX   4096 /* bytes of one value between filters */

enum template_status {
	TEMPLATE_OK = 0,
	TEMPLATE_ERR_SPACE = -1,    /* out too small; nothing is cut */
	TEMPLATE_ERR_VALUE = -2,    /* a filtered value over VALUE_MAX */
	TEMPLATE_ERR_ARGUMENT = -3, /* NULL template or out, bad UTF-8 */
};

struct template;

/* How a rendered text travels: GSM-7 or UCS-2, and in how many parts. */
struct template_measure {
	uint8_t data_coding; /* SMPP_CODING_DEFAULT or _UCS2 */
	size_t characters;   /* code points */
	size_t units;        /* septets or UTF-16 units */
	size_t parts;        /* long: 6-octet UDH in each part */
};

/*
 * Parses text (length bytes, up to TEMPLATE_TEXT_MAX) that starts on
 * first_line of its file. NULL on error, with a reason in error ("unknown
 * filter 'titel'") and the file line in *error_line. Free with
 * template_free().
 */
struct template *template_compile(const char *text, size_t length,
    int first_line, char *error, size_t error_size, int *error_line);
void template_free(struct template *template);
/*
 * Renders into out (NUL-terminated, *out_length bytes before the NUL):
 * TEMPLATE_OK, or TEMPLATE_ERR_SPACE when out_size is too small (out is
 * then ""). context may be NULL: every value is missing.
 */
int template_render(const struct template *template,
    const struct json_t *context, char *out, size_t out_size,
    size_t *out_length);
/* Coding and part count of a rendered UTF-8 text (smpp_charset_choose). */
int template_measure(
    const char *utf8, size_t length, struct template_measure *measure);

/* ===== flow.c ===== */

/*
 * The flow runtime: loads the rules folder (keeping the last good version
 * of a file that fails, reloading on change), starts journeys from events,
 * ends them on exit metrics, and walks each journey through its flow's
 * steps durably: a waiting journey is a timer row, so it survives a crash.
 * A journey runs on the flow version it started with; versions are kept in
 * the store by hash.
 */
enum flow_journey_state {
	FLOW_JOURNEY_RUNNING = 0,
	FLOW_JOURNEY_WAITING, /* a delay: a timer row holds it */
	FLOW_JOURNEY_DONE,
	FLOW_JOURNEY_EXITED, /* an exit metric ended it */
	FLOW_JOURNEY_FAILED, /* its flow version could not be loaded */
	FLOW_JOURNEY_STATE_COUNT
};

#define FLOW_ID_SIZE 64

/* STORE_DB_JOURNEYS value; the trigger event's properties (JSON) follow. */
struct flow_journey_record {
	uint8_t version;
	uint8_t state; /* enum flow_journey_state */
	uint8_t sms_sent;
	uint8_t unused[5];
	uint32_t step; /* the next step to run */
	uint32_t steps_taken;
	uint64_t flow_hash;
	uint64_t started_us;
	uint64_t trigger_time_us;
	uint64_t updated_us;
	uint64_t due_us; /* WAITING: when it goes on */
	uint64_t timer_id;
	uint64_t trigger_event_id;
	char flow_id[FLOW_ID_SIZE];
	char number[PROFILE_NUMBER_SIZE];
	uint32_t context_length;
	uint32_t unused2;
};

void flow_init(struct event_base *base, const struct config *config);
void flow_free(void);
/* Loads or reloads every rule file of the folder; returns errors found. */
size_t flow_reload(void);
/*
 * Runs one event through the flows as the events API does (exits first,
 * then triggers), outside HTTP: tests and operators. It has no stored event
 * behind it (trigger_event_id 0); journeys gets {id, flow} per journey.
 */
void flow_event(const char *metric, struct profile *profile,
    struct json_t *properties, uint64_t time_us, struct json_t *journeys);
const char *flow_journey_strstate(enum flow_journey_state state);
/* {"flows_loaded": N, "failing": [{"file", "running_previous"}]}. */
struct json_t *flow_health(void);
/*
 * For conversations: the question asked by step of the flow version
 * (flow_id, flow_hash), or NULL if that version or step is gone.
 */
const struct flow_question *flow_question(
    const char *flow_id, uint64_t flow_hash, uint32_t step);
/*
 * Starts the live reply-triggered flow flow_id for number with properties
 * as its trigger event; the journey id, or 0 if none started (no such
 * flow, re-entry, a store failure).
 */
uint64_t flow_start_reply(
    const char *flow_id, const char *number, struct json_t *properties);
/* The live keyword flow text starts with (its first word(s), caseless,
 * then a space or the end), or NULL. */
const struct flow *flow_keyword_flow(const char *text, size_t length);
/* Starts a keyword flow for number; the journey id or 0 (re-entry). */
uint64_t flow_start_keyword(
    const struct flow *flow, const char *number, struct json_t *properties);

/* ===== webhook.c ===== */

/*
 * Durable webhooks: a JSON POST kept in a timer row from the store turn
 * that asks for it until a 2xx answer, retried with back-off (1 s, 5 s,
 * 30 s, 2 min, 10 min) across restarts, then given up. At least once: the
 * Idempotency-Key header is the same on every attempt. http:// and
 * https:// (the system's roots, host name checked).
 */
void webhook_init(struct event_base *base);
/*
 * Queues a POST of body (length bytes of JSON) to url in the current turn's
 * transaction; the first attempt starts after the commit. log_id names the
 * journey (or 0) in log lines. 0, or -1 (bad URL, body over 1 MB, store
 * failure), logged.
 */
int webhook_post(
    const char *url, const char *body, size_t length, uint64_t log_id);
/* The same with a JSON value, dumped compactly. */
int webhook_post_json(
    const char *url, const struct json_t *value, uint64_t log_id);

/* ===== consent.c ===== */

/*
 * SMS consent per number: the current state and every change with its
 * source, wording version and time (history is appended, never
 * overwritten). Marketing goes only to SUBSCRIBED numbers; UNSUBSCRIBED
 * ones are also on the opt-out list (optout.c), which consent.c keeps in
 * step, so relayed ESME traffic is refused for them too.
 */
enum consent_state {
	CONSENT_NEVER = 0, /* never asked or never answered */
	CONSENT_PENDING,   /* double opt-in sent, waiting for Y */
	CONSENT_SUBSCRIBED,
	CONSENT_UNSUBSCRIBED,
	CONSENT_STATE_COUNT
};

enum consent_source {
	CONSENT_SOURCE_FORM = 0,
	CONSENT_SOURCE_CHECKOUT,
	CONSENT_SOURCE_KEYWORD, /* STOP, START, Y sent by the person */
	CONSENT_SOURCE_API,
	CONSENT_SOURCE_IMPORT,
	CONSENT_SOURCE_CARRIER, /* carrier deactivation */
	CONSENT_SOURCE_COUNT
};

#define CONSENT_WORDING_SIZE 32

/* STORE_DB_CONSENT value (current) and STORE_DB_CONSENT_HISTORY values. */
struct consent_record {
	uint8_t version;
	uint8_t state;  /* enum consent_state */
	uint8_t source; /* enum consent_source */
	uint8_t unused[5];
	uint64_t time_us;
	char wording[CONSENT_WORDING_SIZE]; /* consent text version */
};

void consent_init(const struct config *config);
enum consent_state consent_get(const char *number);
/* Records a change (history + current + opt-out list) in this turn. */
enum store_result consent_set(const char *number, enum consent_state state,
    enum consent_source source, const char *wording);
const char *consent_strstate(enum consent_state state);
const char *consent_strsource(enum consent_source source);
/* Starts double opt-in: PENDING, and the "Reply Y to confirm" SMS. */
int consent_request_double_opt_in(const char *number,
    enum consent_source source, const char *wording, const char *language);
/* A Y/YES reply: PENDING becomes SUBSCRIBED; 1 if it did. */
int consent_confirm_reply(const char *number);
/* The current record; STORE_NOT_FOUND (state NEVER) if none. */
enum store_result consent_get_record(
    const char *number, struct consent_record *record);
/* "subscribed" -> CONSENT_SUBSCRIBED, ...; -1 if unknown. */
int consent_parse_state(const char *name);
int consent_parse_source(const char *name);
/*
 * Smart opt-in: PENDING, a fresh 6-digit code (kept only as a salted
 * SHA-256, never logged) and the SMS that carries it. code_out (7 bytes)
 * may be NULL; tests read the code there. 0, or -1 (store/outbox).
 */
int consent_request_smart_opt_in(const char *number, enum consent_source source,
    const char *wording, const char *language, char *code_out);
enum consent_code_result {
	CONSENT_CODE_CONFIRMED = 0, /* now SUBSCRIBED */
	CONSENT_CODE_WRONG,         /* attempts left */
	CONSENT_CODE_LOCKED,        /* too many wrong codes: void */
	CONSENT_CODE_EXPIRED,
	CONSENT_CODE_NONE,  /* no code pending */
	CONSENT_CODE_ERROR, /* store failure */
};
enum consent_code_result consent_confirm_code(
    const char *number, const char *code, int *attempts_left);
/* {"number", "state", "source", "wording", "time", "history": [...]}. */
struct json_t *consent_to_json(const char *number);
/*
 * A CSV import (phone_number,state,source,wording,time with a header row):
 * every row is validated first; only if none is rejected are all applied
 * in this store turn. Rows repeating a number and time are rejected.
 * Returns the rows applied, -1 (rejected rows, nothing applied) or -2 (the
 * store failed; the turn is dropped, nothing applied); *report gets {"accepted", "rejected", "applied", "errors": [{"line",
 * "field", "reason"}]}.
 */
long consent_import_csv(
    const char *data, size_t length, struct json_t **report);
/* The /consent sub-resource of /v1/profiles/{number}: 1 if path is one
 * (and the request was answered), 0 to let api_event.c serve it. */
int consent_http_profile(struct evhttp_request *request, const char *path);

/* ===== quiet.c ===== */

/*
 * Quiet hours in the recipient's local time. The zone comes from the
 * profile, else from the number's prefix (a table generated from
 * python3-phonenumbers); where a prefix spans several zones, a time is
 * allowed only when it is inside the window in every one of them. Default
 * window 08:00-21:00, per-country windows and days from config. Zone
 * arithmetic through GLib's GTimeZone, never by switching TZ.
 */
void quiet_init(const struct config *config);
/*
 * 0 if a marketing SMS may go to number at when_us; otherwise 1 and
 * *allowed_us is the next minute when it may (for a deferral).
 * profile_zone (IANA name) may be NULL.
 */
int quiet_check(const char *number, const char *profile_zone, uint64_t when_us,
    uint64_t *allowed_us);
/* Frees the zone cache and the windows (shutdown, tests). */
void quiet_free(void);
/*
 * "08:00-21:00" -> minutes of the day [start, end); start before end,
 * "24:00" allowed as an end. 0, or -1 if malformed.
 */
int quiet_parse_window(
    const char *text, unsigned int *start_minute, unsigned int *end_minute);
/* "mon-sat", "mon-fri,sun" -> bit 1 (Monday) .. bit 7 (Sunday); -1 if bad. */
int quiet_parse_days(const char *text, unsigned int *day_mask);

/* A per-country window: [quiet CC], CC an ISO 3166 code (FR, US). */
struct config_quiet {
	char *name;
	int line;
	char *window; /* "08:00-22:00" */
	char *days;   /* "mon-sat" */
};

/* ===== prefix_zones.c (generated by tools/gen_prefix_zones.py) ===== */

/*
 * The candidate zones of a number (E.164, '+' optional) by its longest
 * prefix phonenumbers knows: their count (0 if none) and *zones, indexes
 * for prefix_zones_name(). *prefix_length (may be NULL) gets the digits
 * matched.
 */
size_t prefix_zones_lookup(
    const char *number, const uint16_t **zones, size_t *prefix_length);
const char *prefix_zones_name(uint16_t zone);
size_t prefix_zones_zone_count(void);
size_t prefix_zones_row_count(void);

/* ===== keyword.c ===== */

/*
 * Compliance keywords in inbound SMS, before anything else: opt-out words
 * (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPT OUT and each
 * configured language's words) unsubscribe at once and get one
 * confirmation; START, UNSTOP, YES resubscribe; HELP, INFO get the program
 * text; Y confirms a pending double opt-in. The inbound chain's first step.
 */
void keyword_init(const struct config *config);
int keyword_route(uint64_t mo_id, const struct mo_record *mo, const char *text);

enum keyword_action {
	KEYWORD_NONE = 0,
	KEYWORD_OPT_OUT,
	KEYWORD_HELP,
	KEYWORD_CONFIRM, /* Y: confirms a pending double opt-in only */
	KEYWORD_OPT_IN,  /* START, UNSTOP, YES */
};

#define KEYWORD_LANGUAGE_SIZE 9

/* What an inbound text says, from the words alone (no store). */
struct keyword_match {
	enum keyword_action action;
	int confirms;                         /* the word also confirms (YES) */
	char language[KEYWORD_LANGUAGE_SIZE]; /* of its list */
};

/*
 * Classifies text: a keyword alone (case, spacing, punctuation, accents
 * and polite filler forgiven), or a clear opt-out sentence ("stop texting
 * me", "please unsubscribe me"); see the rule atop keyword.c.
 */
void keyword_classify(
    const char *text, size_t length, struct keyword_match *match);

enum keyword_text {
	KEYWORD_TEXT_STOP = 0,
	KEYWORD_TEXT_START,
	KEYWORD_TEXT_HELP,
	KEYWORD_TEXT_CONFIRM_REQUEST,
	KEYWORD_TEXT_CODE,
	KEYWORD_TEXT_COUNT
};

/* Renders a compliance text ({program}, {contact}, {frequency}, {code})
 * for language (NULL or unknown: the default); -1 if out is too small. */
int keyword_render(enum keyword_text which, const char *language,
    const char *code, char *out, size_t out_size);
/* Sends it to number as a transactional SMS (so even to opted-out
 * numbers) in this turn; from NULL: compliance.from or the link's. */
int keyword_send(const char *number, const char *from, enum keyword_text which,
    const char *language, const char *code);
/* The language replies to number use: its profile's if known, else
 * fallback (a keyword's list) if known, else compliance.default_language. */
void keyword_language_for(
    const char *number, const char *fallback, char *out, size_t out_size);

/* ===== conversation.c ===== */

/*
 * Conversations: an SMS step with a question opens one for the number with
 * a reply window. A reply inside it is matched against the answers (words,
 * case and spacing forgiven, per language) and starts the answer's
 * follow-up flow with the reply in its context; an unmatched reply gets one
 * re-prompt, then goes on down the inbound chain.
 */
#define CONVERSATION_NAME_SIZE      64
#define CONVERSATION_RECORD_VERSION 1

/*
 * STORE_DB_CONVERSATIONS value, keyed by the number's digits (no "+"). One
 * open conversation per number: a newer question replaces the older one,
 * whose answers then start nothing. Rows past expires_us are dropped when
 * the next SMS from the number arrives (logged decision=expired).
 */
struct conversation_record {
	uint8_t version;
	uint8_t reprompted; /* 1: the one re-prompt went out */
	uint8_t unused[2];
	uint32_t step;      /* the SMS step that asked */
	uint64_t flow_hash; /* the version of the asking flow */
	uint64_t journey_id;
	uint64_t opened_us;
	uint64_t expires_us; /* opened_us + the reply window */
	char flow_id[FLOW_ID_SIZE];
	char conversation[CONVERSATION_NAME_SIZE];
	char number[PROFILE_NUMBER_SIZE]; /* "+39..." */
};

void conversation_init(const struct config *config);
/* Opens (or replaces) the number's conversation for a flow's question. */
enum store_result conversation_open(const char *number, const char *flow_id,
    uint64_t flow_hash, uint32_t step, uint64_t journey_id,
    const char *conversation, uint64_t reply_window_us);
/*
 * The inbound step: a reply to the number's open conversation that matches
 * an answer starts the answer's flow and closes it (returns 1); the first
 * unmatched reply gets the one re-prompt (returns 1); any other reply
 * returns 0 and goes on down the chain.
 */
int conversation_route(
    uint64_t mo_id, const struct mo_record *mo, const char *text);
/* The inbound step after it: keyword-triggered flows; 1 if one matched. */
int conversation_route_keyword(
    uint64_t mo_id, const struct mo_record *mo, const char *text);
/* The re-prompt for an unmatched reply ("Please reply 1, 2 or 3.") in
 * language (NULL: English); the number of bytes, as snprintf. */
int conversation_reprompt_text(const struct flow_question *question,
    const char *language, char *out, size_t size);

/* ===== policy.c ===== */

/*
 * The policies a marketing SMS passes before it is sent (DESIGN "Policies"):
 * consent, smart sending, frequency caps, quiet hours. One function decides
 * send, defer (to a time) or skip (with a reason); every decision not to
 * send now is recorded durably per number, counted, and logged.
 */
enum policy_verdict {
	POLICY_SEND = 0,
	POLICY_DEFER, /* quiet hours: send at *until_us */
	POLICY_SKIP,  /* not sent at all; reason says why */
};

enum policy_reason {
	POLICY_REASON_NONE = 0,
	POLICY_REASON_NO_CONSENT,
	POLICY_REASON_OPTED_OUT,
	POLICY_REASON_QUIET_HOURS, /* deferred */
	POLICY_REASON_SMART_SENDING,
	POLICY_REASON_FREQUENCY_CAP,
	POLICY_REASON_ABANDONMENT_LIMIT,
	POLICY_REASON_ABANDONMENT_48H,
	POLICY_REASON_EXITED,
	POLICY_REASON_COUNT
};

#define POLICY_SKIP_CONSENT       0x01 /* consent is not asked */
#define POLICY_SKIP_QUIET_HOURS   0x02 /* welcome first messages */
#define POLICY_SKIP_SMART_SENDING 0x04
#define POLICY_SKIP_FREQUENCY_CAP 0x08
/* What the outbox checks itself for API and ESME marketing: opt-out and
 * quiet hours; consent, smart sending and caps are the flows' business. */
#define POLICY_OUTBOX_FLAGS                                \
	(POLICY_SKIP_CONSENT | POLICY_SKIP_SMART_SENDING | \
	    POLICY_SKIP_FREQUENCY_CAP)
#define POLICY_SENDS_KEPT 16

/* STORE_DB_SENDS: when the number last got marketing SMS (newest last). */
struct policy_sends_record {
	uint8_t version;
	uint8_t count;
	uint8_t unused[6];
	uint64_t times_us[POLICY_SENDS_KEPT];
};

/* STORE_DB_DECISIONS: one decision not to send now. */
struct policy_decision_record {
	uint8_t version;
	uint8_t verdict; /* enum policy_verdict */
	uint8_t reason;  /* enum policy_reason */
	uint8_t unused[5];
	uint64_t time_us;
	uint64_t until_us;               /* DEFER: when it goes */
	uint64_t journey_id;             /* 0: not from a journey */
	uint64_t message_id;             /* 0: no message was made */
	char origin[OUTBOX_ORIGIN_SIZE]; /* "flow:ID", ... */
	char step[32];                   /* flow step id, or "" */
};

void policy_init(const struct config *config);
/*
 * What happens to a marketing SMS for number now. flags: POLICY_SKIP_*.
 * smart_window_us 0 takes the configured default. zone: the profile's
 * IANA zone or NULL.
 */
enum policy_verdict policy_check(const char *number, const char *zone,
    unsigned int flags, uint64_t smart_window_us, uint64_t now_us,
    uint64_t *until_us, enum policy_reason *reason);
/* Counts a marketing SMS the number was sent (smart sending, caps). */
void policy_record_send(const char *number, uint64_t now_us);
/* Records a decision not to send now (skip or defer), in this turn. */
void policy_record_decision(const char *number, enum policy_verdict verdict,
    enum policy_reason reason, uint64_t until_us, uint64_t journey_id,
    uint64_t message_id, const char *origin, const char *step);
const char *policy_strverdict(enum policy_verdict verdict);
const char *policy_strreason(enum policy_reason reason);

/* ===== inbound.c ===== */

/*
 * Every inbound SMS, once whole and stored, goes through one chain, in
 * order: compliance keywords (STOP, START, HELP, Y for double opt-in),
 * open conversations (answers to a flow's question), keyword flows, then
 * the ESME accounts' routes. The first step that claims it ends the chain.
 */
void inbound_init(const struct config *config);

/* ===== daemon.c ===== */

/* The running gateway: what every subsystem reaches through `gateway`. */
struct gateway {
	struct config *config;
	struct event_base *base;
	struct store *store;
	uint64_t started_us; /* monotonic */
	int lock_fd;
	int shutting_down;
};

extern struct gateway *gateway;

/* A subsystem's part in a graceful stop: begin (send unbinds, stop
 * accepting) and is_done (nothing left in flight), polled until the bound. */
typedef void (*daemon_shutdown_begin_fn)(void *arg);
typedef int (*daemon_shutdown_done_fn)(void *arg);
/* Applies a freshly parsed configuration after SIGHUP; 0 if it took. */
typedef int (*daemon_reload_fn)(const struct config *config, void *arg);

void daemon_start(struct config *config, int foreground);
int daemon_run(void);
void daemon_on_shutdown(
    daemon_shutdown_begin_fn begin, daemon_shutdown_done_fn is_done, void *arg);
void daemon_on_reload(daemon_reload_fn fn, void *arg);
void daemon_request_stop(void);

#endif /* NUDGED_H */
