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

#define NUDGE_VERSION	"0.1.0"

#ifndef __dead
#define __dead		__attribute__((__noreturn__))
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
void	log_init(int to_stderr, enum log_level level);
void	log_set_level(enum log_level level);
enum log_level log_get_level(void);
void	log_warn(uint64_t id, const char *subsystem, const char *event,
	    const char *fmt, ...) PRINTF_LIKE(4, 5);
void	log_warnx(uint64_t id, const char *subsystem, const char *event,
	    const char *fmt, ...) PRINTF_LIKE(4, 5);
void	log_info(uint64_t id, const char *subsystem, const char *event,
	    const char *fmt, ...) PRINTF_LIKE(4, 5);
void	log_debug(uint64_t id, const char *subsystem, const char *event,
	    const char *fmt, ...) PRINTF_LIKE(4, 5);
__dead void fatal(const char *subsystem, const char *event,
	    const char *fmt, ...) PRINTF_LIKE(3, 4);
__dead void fatalx(const char *subsystem, const char *event,
	    const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Masks a phone number for logs: +393401234512 -> +3934•••••12. */
const char *log_mask_number(const char *number, char *buffer, size_t size);
#define LOG_MASKED_NUMBER_SIZE	64

/* ===== clock.c ===== */

/*
 * Wall-clock time in microseconds since the epoch, plus an offset that only
 * a test build of the configuration may move (the test clock), so flows and
 * quiet hours can be driven forward without sleeping.
 */
uint64_t clock_now_us(void);
uint64_t clock_monotonic_us(void);
void	clock_advance_us(uint64_t delta_us);
uint64_t clock_offset_us(void);

/* ===== config.c ===== */

/* Value types a configuration key may have; each has its own parser. */
enum config_type {
	CONFIG_STRING,
	CONFIG_INTEGER,
	CONFIG_BOOLEAN,
	CONFIG_DURATION,	/* "250ms", "30s", "5m", "2h", "1d" -> microseconds */
	CONFIG_SIZE,		/* "512", "64K", "64M", "1G" -> bytes */
	CONFIG_ENUM,		/* one of the words in choices ("a|b|c") -> index */
	CONFIG_LISTEN,		/* "host:port" */
};

struct config_listen {
	char		 host[64];
	uint16_t	 port;
};

/* One row of the key table: where the value lives and what it may be. */
struct config_key {
	const char	*section;	/* "http", or "link" for [link NAME] */
	const char	*name;
	enum config_type type;
	size_t		 offset;	/* into struct config, or the instance */
	int64_t		 minimum;	/* integers, durations, sizes */
	int64_t		 maximum;
	const char	*choices;	/* CONFIG_ENUM: "warn|info|debug" */
	const char	*default_value;	/* text, parsed like a file value */
	const char	*help;
};

/* An upstream SMSC link: [link NAME]. */
enum config_link_bind {
	CONFIG_LINK_BIND_TRANSCEIVER = 0,
	CONFIG_LINK_BIND_PAIR,		/* a transmitter and a receiver */
};

enum config_link_split {
	CONFIG_LINK_SPLIT_UDH = 0,	/* 8-bit reference */
	CONFIG_LINK_SPLIT_UDH16,	/* 16-bit reference */
	CONFIG_LINK_SPLIT_SAR,
	CONFIG_LINK_SPLIT_PAYLOAD,	/* one submit_sm with message_payload */
};

struct config_link {
	char		*name;
	int		 line;		/* of its [link NAME] header */
	char		*host;
	int64_t		 port;
	char		*system_id;
	char		*password;
	char		*system_type;
	int		 bind;		/* enum config_link_bind */
	int		 tls;
	int		 tls_verify;
	int64_t		 tps;		/* parts per second; 0: no cap */
	int64_t		 window;
	uint64_t	 enquire_link_us;
	uint64_t	 response_timeout_us;
	uint64_t	 bind_timeout_us;
	uint64_t	 reconnect_min_us;
	uint64_t	 reconnect_max_us;
	char		*source_addr;
	int64_t		 source_ton;
	int64_t		 source_npi;
	int64_t		 dest_ton;
	int64_t		 dest_npi;
	int		 response_id_base;	/* enum smpp_id_base */
	int		 receipt_id_base;	/* enum smpp_id_base */
	int		 split;		/* enum config_link_split */
	char		*routes;	/* destination prefixes; empty: any */
	int64_t		 priority;	/* failover order, lowest first */
};

/* An ESME account that binds to nudged: [account NAME]. */
struct config_account {
	char		*name;
	int		 line;
	char		*system_id;
	char		*password;
	char		*allowed_addresses;	/* CIDR list */
	int64_t		 max_transmitters;
	int64_t		 max_receivers;
	int64_t		 max_transceivers;
	int64_t		 tps;		/* submits per second; 0: no cap */
	int64_t		 window;	/* deliver_sm outstanding to it */
	int		 traffic_class;	/* enum outbox_class */
	char		*allowed_senders;	/* empty: any */
	char		*route;		/* link name; empty: by destination */
	char		*mo_destinations;	/* short codes, long numbers */
	char		*mo_keywords;	/* first words of an MO */
	int64_t		 deliver_queue_max;
	uint64_t	 deliver_expiry_us;
	uint64_t	 deliver_retry_min_us;
	uint64_t	 deliver_retry_max_us;
};

struct config {
	char		*path;
	/* [nudged] */
	char		*data_dir;
	char		*pid_file;
	int		 log_level;
	uint64_t	 shutdown_timeout_us;
	int		 test_clock;
	/* [store] */
	uint64_t	 store_map_size;
	int64_t		 store_max_readers;
	int		 store_sync;
	/* [http] */
	struct config_listen http_listen;
	char		*http_api_token;
	uint64_t	 http_max_body_size;
	uint64_t	 http_timeout_us;
	/* [smpp] */
	struct config_listen smpp_listen;
	uint64_t	 smpp_max_pdu_length;
	char		*smpp_system_id;
	uint64_t	 smpp_bind_timeout_us;
	uint64_t	 smpp_idle_timeout_us;
	uint64_t	 smpp_enquire_link_us;
	uint64_t	 smpp_response_timeout_us;
	int64_t		 smpp_auth_fail_delay_after;
	int64_t		 smpp_auth_fail_block_after;
	uint64_t	 smpp_auth_fail_delay_us;
	uint64_t	 smpp_auth_block_us;
	char		*smpp_tls_listen;	/* host:port, empty: off */
	char		*smpp_tls_certificate;
	char		*smpp_tls_key;
	/* [outbox] */
	uint64_t	 outbox_validity_us;
	int64_t		 outbox_max_parts;
	uint64_t	 outbox_receipt_hold_us;
	uint64_t	 outbox_mo_timeout_us;
	/* [link NAME] ... */
	struct config_link **links;
	size_t		 link_count;
	/* [account NAME] ... */
	struct config_account **accounts;
	size_t		 account_count;
};

/* Parses path; on failure every error was printed as "file:line: reason". */
struct config	*config_load(const char *path, int *error_count);
void		 config_free(struct config *config);
/* Writes the key reference (markdown) generated from the table. */
void		 config_print_reference(FILE *out);
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
struct metric	*metrics_counter(const char *name, const char *labels,
		    const char *help);
struct metric	*metrics_gauge(const char *name, const char *labels,
		    const char *help);
/* bounds: ascending upper bounds of the buckets (+Inf is implied). */
struct metric	*metrics_histogram(const char *name, const char *labels,
		    const char *help, const double *bounds, size_t bound_count);
void		 metrics_add(struct metric *metric, double amount);
void		 metrics_set(struct metric *metric, double value);
void		 metrics_observe(struct metric *metric, double value);
double		 metrics_value(const struct metric *metric);
/* Runs before every rendering, to refresh gauges computed on demand. */
void		 metrics_add_collector(metrics_collector_fn fn, void *arg);
void		 metrics_render(struct evbuffer *out);
void		 metrics_reset(void);

/* ===== http.c ===== */

struct evhttp;
struct json_t;
typedef void (*http_handler_fn)(struct evhttp_request *request, void *arg);

#define HTTP_ROUTE_EXACT	0x0
#define HTTP_ROUTE_PREFIX	0x1	/* path is a prefix ending in '/' */
#define HTTP_ROUTE_AUTH		0x2	/* needs the bearer token */

int		 http_start(struct event_base *base, const struct config *config);
/* Closes the listener; requests in flight still get their answers. */
void		 http_stop_listening(void);
void		 http_stop(void);
/* Re-reads the bearer token after SIGHUP. */
void		 http_set_token(const char *token);
void		 http_route(const char *method, const char *path, int flags,
		    http_handler_fn fn, void *arg);
/* Sends body (its reference is taken) with status. */
void		 http_reply_json(struct evhttp_request *request, int status,
		    struct json_t *body);
/* {"error": error, "detail": "..."} with a 4xx or 5xx status. */
void		 http_reply_error(struct evhttp_request *request, int status,
		    const char *error, const char *detail_fmt, ...)
		    PRINTF_LIKE(4, 5);
/* Parses the body as a JSON object; on failure replies 400/413 and
 * returns NULL. */
struct json_t	*http_read_json(struct evhttp_request *request);
/* The path of the request without the query string, for prefix routes. */
const char	*http_request_path(struct evhttp_request *request, char *buffer,
		    size_t size);

/* ===== store.c ===== */

/*
 * The only module that calls LMDB. All writes of one event-loop turn join one
 * write transaction, committed once at the end of the turn (group commit);
 * work that promises durability (a submit_sm_resp, an HTTP 202) is queued
 * with store_after_commit() and runs only once that commit is on disk.
 */
enum store_result {
	STORE_OK = 0,
	STORE_NOT_FOUND,	/* the key is absent */
	STORE_EXISTS,		/* STORE_PUT_NO_OVERWRITE and the key exists */
	STORE_ERROR,		/* anything else; already logged */
};

/* Named databases; later subsystems append theirs before STORE_DB_COUNT. */
enum store_db {
	STORE_DB_META = 0,	/* schema version, id sequences */
	STORE_DB_TIMERS,	/* due time + timer id -> kind + payload */
	STORE_DB_MESSAGES,	/* message id -> outbox_message_record */
	STORE_DB_PARTS,		/* message id + part -> outbox_part_record */
	STORE_DB_QUEUE,		/* message id -> (nothing): parts waiting */
	STORE_DB_INFLIGHT,	/* message id + part -> (nothing): SUBMITTING */
	STORE_DB_SMSC_IDS,	/* link NUL normalised id -> message id + part */
	STORE_DB_HELD_RECEIPTS,	/* link NUL normalised id -> receipt_record */
	STORE_DB_RECEIPTS,	/* sequence -> receipt_record: the receipt log */
	STORE_DB_MO_PARTS,	/* reassembly key + part -> mo_part_record */
	STORE_DB_MO,		/* sequence -> mo_record: the MO log */
	STORE_DB_OPTOUT,	/* E.164 number -> optout_record */
	STORE_DB_ESME_QUEUE,	/* account NUL sequence -> queued deliver_sm */
	STORE_DB_COUNT
};

enum store_sequence {
	STORE_SEQUENCE_TIMER = 0,
	STORE_SEQUENCE_MESSAGE,
	STORE_SEQUENCE_RECEIPT,
	STORE_SEQUENCE_MO,
	STORE_SEQUENCE_ESME_QUEUE,
	STORE_SEQUENCE_COUNT
};

#define STORE_PUT_NO_OVERWRITE	0x1
#define STORE_PUT_APPEND	0x2	/* key sorts after every existing key */

struct store_options {
	const char	*path;		/* directory holding data.mdb */
	size_t		 initial_map_size; /* bytes; grows on demand */
	unsigned int	 max_readers;
	int		 no_sync;	/* MDB_NOSYNC: benchmarks of durability cost only */
	int		 read_only;	/* nudgectl beside a running daemon */
};

struct store;
struct store_cursor;
typedef void (*store_after_commit_fn)(void *arg, enum store_result result);

struct store	*store_open(const struct store_options *options);
void		 store_close(struct store *store);
/* Commits at the end of every loop turn that wrote something. */
void		 store_attach(struct store *store, struct event_base *base);
enum store_result store_put(struct store *store, enum store_db db,
		    const void *key, size_t key_length, const void *value,
		    size_t value_length, unsigned int flags);
/* *value stays valid until the next write or commit. */
enum store_result store_get(struct store *store, enum store_db db,
		    const void *key, size_t key_length, const void **value,
		    size_t *value_length);
enum store_result store_delete(struct store *store, enum store_db db,
		    const void *key, size_t key_length);
/* A durable, strictly increasing id; reserved in blocks, never reused. */
uint64_t	 store_sequence_next(struct store *store,
		    enum store_sequence sequence);
void		 store_after_commit(struct store *store,
		    store_after_commit_fn fn, void *arg);
/* Commits now and runs the after-commit work; normally the loop does it. */
enum store_result store_commit(struct store *store);
int		 store_has_pending(const struct store *store);
/* Ordered iteration: seek to the first key >= key, then next. */
enum store_result store_cursor_open(struct store *store, enum store_db db,
		    struct store_cursor **cursor);
enum store_result store_cursor_seek(struct store_cursor *cursor,
		    const void *key, size_t key_length, const void **found_key,
		    size_t *found_key_length, const void **value,
		    size_t *value_length);
enum store_result store_cursor_next(struct store_cursor *cursor,
		    const void **found_key, size_t *found_key_length,
		    const void **value, size_t *value_length);
void		 store_cursor_close(struct store_cursor *cursor);
/* Big-endian 8-byte keys sort in numeric order: ids, sequences, times. */
void		 store_encode_u64(uint8_t out[8], uint64_t value);
uint64_t	 store_decode_u64(const uint8_t in[8]);
/* For /healthz and /metrics. */
struct store_stats {
	size_t		 map_size;
	size_t		 used_bytes;
	uint64_t	 commits;
	uint64_t	 records_committed;
	uint64_t	 map_resizes;
	uint64_t	 commit_failures;
};
void		 store_get_stats(const struct store *store, struct store_stats *stats);

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
enum store_result store_timer_cancel(struct store *store, uint64_t due_us,
		    uint64_t timer_id);
enum store_result store_timer_earliest(struct store *store, uint64_t *due_us);
/* Hands every row due at or before now_us to fn (oldest first, at most max)
 * and deletes it in the same write transaction; returns how many. */
size_t		 store_timer_drain(struct store *store, uint64_t now_us,
		    size_t max, store_timer_fn fn, void *arg);

/* ===== timer.c ===== */

/* Kinds of durable timer; each subsystem appends its own. */
enum timer_kind {
	TIMER_KIND_NONE = 0,
	TIMER_KIND_TEST,	/* unit tests */
	TIMER_KIND_OUTBOX_EXPIRY,	/* message id: validity ran out */
	TIMER_KIND_RECEIPT_HOLD,	/* held receipt key: give up matching */
	TIMER_KIND_MO_REASSEMBLY,	/* reassembly key: parts still missing */
	TIMER_KIND_CALLBACK,		/* message id + attempt: POST its status */
	TIMER_KIND_ESME_DELIVER,	/* server.c: retry or expire a deliver_sm */
	TIMER_KIND_COUNT
};

typedef void (*timer_handler_fn)(void *arg, uint64_t timer_id,
		    const void *payload, size_t payload_length);

/* One libevent timer armed for the earliest row of the timer table. */
void		 timer_init(struct event_base *base, struct store *store);
void		 timer_shutdown(void);
void		 timer_register(enum timer_kind kind, timer_handler_fn fn, void *arg);
enum store_result timer_schedule(uint64_t due_us, enum timer_kind kind,
		    const void *payload, size_t payload_length, uint64_t *timer_id);
enum store_result timer_cancel(uint64_t due_us, uint64_t timer_id);
/* Re-reads the earliest row and re-arms (after the test clock moved). */
void		 timer_rearm(void);

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
	LINK_IDLE = 0,		/* not started, or stopped */
	LINK_CONNECTING,
	LINK_BINDING,
	LINK_BOUND,		/* can submit (transmitter side bound) */
	LINK_UNBINDING,
	LINK_BACKOFF,		/* waiting to reconnect */
};

struct link;
struct smpp_pdu;
struct smpp_tlv;

/* One submit_sm to send; strings must live until link_submit() returns. */
struct link_submit {
	const char	*source_addr;	/* NULL: the link's source_addr */
	uint8_t		 source_addr_ton;
	uint8_t		 source_addr_npi;
	const char	*destination_addr;
	uint8_t		 dest_addr_ton;
	uint8_t		 dest_addr_npi;
	uint8_t		 esm_class;
	uint8_t		 protocol_id;
	uint8_t		 priority_flag;
	uint8_t		 registered_delivery;
	uint8_t		 data_coding;
	const char	*validity_period;	/* SMPP time, or NULL */
	const uint8_t	*short_message;
	size_t		 short_message_length;
	const struct smpp_tlv *tlvs;
	size_t		 tlv_count;
};

/* What a link tells the rest of the gateway. */
struct link_events {
	/* Bound, a response freed the window, or the rate cap refilled. */
	void	(*available)(void *arg, struct link *link);
	/* submit_sm_resp for cookie; message_id is NULL unless status is 0. */
	void	(*response)(void *arg, struct link *link, uint64_t cookie,
		    uint32_t status, const char *message_id);
	/* Sent, but no response will come (timeout, connection lost). */
	void	(*lost)(void *arg, struct link *link, uint64_t cookie,
		    const char *reason);
	/*
	 * A deliver_sm or data_sm from the SMSC (receipt or MO). Returns the
	 * status to answer with; the link sends the response only after the
	 * store commit that holds what the handler wrote.
	 */
	uint32_t (*deliver)(void *arg, struct link *link,
		    const struct smpp_pdu *pdu);
	void	*arg;
};

struct link_stats {
	enum link_state	 state;
	uint64_t	 binds;
	uint64_t	 reconnects;
	uint64_t	 submitted;	/* submit_sm sent */
	uint64_t	 acknowledged;	/* submit_sm_resp with status 0 */
	uint64_t	 throttled;	/* 0x58 and 0x14 */
	uint64_t	 rejected;	/* other error statuses */
	uint64_t	 timeouts;
	uint64_t	 delivered_in;	/* deliver_sm received */
	size_t		 window_used;
	size_t		 window_size;
	double		 rate_limit;	/* current parts/s cap, 0: none */
};

/* Creates every [link] of config and starts connecting. */
void		 link_start_all(struct event_base *base,
		    const struct config *config, const struct link_events *events);
/* Shutdown: unbind every session; link_all_idle() says when done. */
void		 link_stop_all(void);
int		 link_all_idle(void);
/* Frees everything (after the loop ended, before the event base is
 * freed); requests still outstanding are not reported. */
void		 link_free_all(void);
size_t		 link_count(void);
struct link	*link_get(size_t index);
struct link	*link_find(const char *name);
const char	*link_name(const struct link *link);
const struct config_link *link_config(const struct link *link);
enum link_state	 link_get_state(const struct link *link);
const char	*link_strstate(enum link_state state);
/* Submits that can go out now: 0 unless bound, within window and cap. */
size_t		 link_capacity(struct link *link);
/*
 * Sends one submit_sm; 0 when sent, -1 when it cannot go now (not bound,
 * window full, rate cap; `available` follows), -2 when it can never go
 * (the PDU cannot be encoded: a field too long, a bad TLV).
 */
int		 link_submit(struct link *link, const struct link_submit *submit,
		    uint64_t cookie);
void		 link_get_stats(const struct link *link, struct link_stats *stats);

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
	OUTBOX_REASON_ACKNOWLEDGED,	/* submit_sm_resp OK */
	OUTBOX_REASON_THROTTLED,	/* 0x58 / 0x14: requeued */
	OUTBOX_REASON_SMSC_REJECTED,	/* permanent submit_sm_resp error */
	OUTBOX_REASON_RESPONSE_TIMEOUT,
	OUTBOX_REASON_CONNECTION_LOST,
	OUTBOX_REASON_CRASH_RECOVERY,	/* SUBMITTING at start-up */
	OUTBOX_REASON_VALIDITY_EXPIRED,	/* never left the queue in time */
	OUTBOX_REASON_RECEIPT,
	OUTBOX_REASON_NOT_SENT,		/* the link went away before sending */
	OUTBOX_REASON_SIBLING_REJECTED,	/* another part was refused */
	OUTBOX_REASON_CANCELLED,	/* cancel_sm before it was sent */
	OUTBOX_REASON_NOT_ENCODABLE,	/* the link can never send it */
	OUTBOX_REASON_COUNT
};

#define OUTBOX_ADDRESS_SIZE	24
#define OUTBOX_LINK_NAME_SIZE	32
#define OUTBOX_ORIGIN_SIZE	32
#define OUTBOX_SMSC_ID_SIZE	65
#define OUTBOX_HISTORY_MAX	48
#define OUTBOX_RECORD_VERSION	1
#define OUTBOX_TEXT_MAX		65535	/* bytes of UTF-8 */
#define OUTBOX_TEXT_BUFFER	(OUTBOX_TEXT_MAX + 1)

struct outbox_history_entry {
	uint64_t	 time_us;
	uint32_t	 status;	/* SMPP status or receipt error */
	uint8_t		 state;		/* enum outbox_state */
	uint8_t		 part;		/* 0: the message; else part number */
	uint8_t		 reason;	/* enum outbox_reason */
	uint8_t		 unused;
};

#define OUTBOX_MESSAGE_FIXED_ROUTE 0x01	/* only over the link named in link */

/* STORE_DB_MESSAGES value; the UTF-8 text and the callback URL follow. */
struct outbox_message_record {
	uint8_t		 version;
	uint8_t		 state;		/* enum outbox_state */
	uint8_t		 message_class;	/* enum outbox_class */
	uint8_t		 data_coding;
	uint8_t		 part_count;
	uint8_t		 history_count;
	uint8_t		 flags;		/* OUTBOX_MESSAGE_* */
	uint8_t		 unused;
	uint8_t		 part_states[OUTBOX_STATE_COUNT]; /* parts per state */
	uint8_t		 unused2[6];
	uint64_t	 created_us;
	uint64_t	 updated_us;
	uint64_t	 expires_us;
	char		 to[OUTBOX_ADDRESS_SIZE];
	char		 from[OUTBOX_ADDRESS_SIZE];
	char		 link[OUTBOX_LINK_NAME_SIZE];
	char		 origin[OUTBOX_ORIGIN_SIZE];
	uint16_t	 text_length;
	uint16_t	 callback_length;
	uint32_t	 history_dropped;
	struct outbox_history_entry history[OUTBOX_HISTORY_MAX];
};

/* STORE_DB_PARTS value; the short_message octets, then TLV octets follow. */
#define OUTBOX_PART_EXPLICIT_ADDRESSING 0x01 /* TON/NPI below, not the link's */

struct outbox_part_record {
	uint8_t		 version;
	uint8_t		 state;		/* enum outbox_state */
	uint8_t		 esm_class;
	uint8_t		 data_coding;
	uint8_t		 receipt_state;	/* enum smpp_message_state */
	uint8_t		 registered_delivery;	/* what the producer asked */
	uint8_t		 flags;		/* OUTBOX_PART_* */
	uint8_t		 protocol_id;
	uint8_t		 priority_flag;
	uint8_t		 source_addr_ton;
	uint8_t		 source_addr_npi;
	uint8_t		 dest_addr_ton;
	uint8_t		 dest_addr_npi;
	uint8_t		 unused[3];
	uint16_t	 short_message_length;
	uint16_t	 tlv_length;
	uint32_t	 submit_status;
	uint32_t	 receipt_error;
	uint64_t	 submitted_us;
	uint64_t	 responded_us;
	uint64_t	 receipt_us;
	char		 link[OUTBOX_LINK_NAME_SIZE];
	char		 smsc_id[OUTBOX_SMSC_ID_SIZE];
};

/* What a producer (HTTP, flows, the SMPP server) asks the outbox to send. */
struct outbox_request {
	const char	*to;		/* E.164, "+" optional */
	const char	*from;		/* NULL: the link's source_addr */
	const char	*text;		/* UTF-8 */
	size_t		 text_length;
	enum outbox_class message_class;
	uint64_t	 validity_us;	/* 0: the configured default */
	const char	*callback_url;	/* NULL: none */
	const char	*origin;	/* "http", "flow:ID", "esme:SYSTEM_ID" */
};

/* What outbox_submit() decided about a request it accepted. */
struct outbox_accepted {
	uint64_t	 id;
	unsigned int	 parts;
	uint8_t		 data_coding;
};

/* One submit_sm from an ESME: one message of one part, kept as given. */
struct outbox_part_request {
	const char	*to;
	uint8_t		 dest_addr_ton;
	uint8_t		 dest_addr_npi;
	const char	*from;
	uint8_t		 source_addr_ton;
	uint8_t		 source_addr_npi;
	uint8_t		 esm_class;
	uint8_t		 data_coding;
	uint8_t		 protocol_id;
	uint8_t		 priority_flag;
	uint8_t		 registered_delivery;
	const uint8_t	*short_message;
	size_t		 short_message_length;
	const uint8_t	*tlv_bytes;	/* sar_*, message_payload: re-sent */
	size_t		 tlv_length;
	enum outbox_class message_class;
	uint64_t	 validity_us;	/* 0: the configured default */
	const char	*origin;	/* "esme:SYSTEM_ID" */
	const char	*link;		/* NULL or "": route by destination */
};

/* Told of every part that got a receipt or reached a final state. */
typedef void (*outbox_observer_fn)(void *arg, uint64_t id,
		    const struct outbox_message_record *message,
		    unsigned int part, const struct outbox_part_record *record);

void		 outbox_init(struct event_base *base, const struct config *config);
/*
 * Stores an ESME's submit in the current turn's transaction; returns
 * SMPP_ESME_ROK and the id, or the SMPP status to answer with. Answer only
 * from store_after_commit().
 */
uint32_t	 outbox_submit_part(const struct outbox_part_request *request,
		    uint64_t *id);
/* cancel_sm: parts not yet sent end REJECTED (cancelled); SMPP status. */
uint32_t	 outbox_cancel(uint64_t id, const char *origin);
/* replace_sm: new octets for a message still wholly QUEUED; SMPP status. */
uint32_t	 outbox_replace(uint64_t id, const char *origin,
		    const uint8_t *short_message, size_t length,
		    uint8_t registered_delivery);
void		 outbox_add_observer(outbox_observer_fn fn, void *arg);
/* Frees the links and what the outbox holds in memory (after the loop). */
void		 outbox_free(void);
/* Shutdown hooks: stop sending and unbind; done when links are idle. */
void		 outbox_shutdown_begin(void *arg);
int		 outbox_shutdown_done(void *arg);
/*
 * Validates, splits and stores a message in the current turn's
 * transaction. 0 on success; otherwise -1 with field and reason set for a
 * 4xx answer (field may be "" for a storage failure). Answer the producer
 * only from store_after_commit().
 */
int		 outbox_submit(const struct outbox_request *request,
		    struct outbox_accepted *accepted, const char **field,
		    char *reason, size_t reason_size);
const char	*outbox_strstate(enum outbox_state state);
const char	*outbox_strreason(enum outbox_reason reason);
const char	*outbox_strclass(enum outbox_class message_class);
/* Reads a message and its parts into caller memory; STORE_NOT_FOUND if none. */
enum store_result outbox_read_message(uint64_t id,
		    struct outbox_message_record *message, char *text,
		    size_t text_size);
enum store_result outbox_read_part(uint64_t id, unsigned int part,
		    struct outbox_part_record *record);
enum store_result outbox_read_callback_url(uint64_t id, char *url,
		    size_t url_size);
/* Queue depth (messages with parts waiting) for stats. */
size_t		 outbox_queue_depth(void);
/* Applies a matched receipt to a part (receipt.c calls it). */
void		 outbox_apply_receipt(uint64_t id, unsigned int part,
		    int message_state, uint32_t error_code, uint64_t now_us);
/* A submit_sm_resp gave part its SMSC id (receipt.c matches held ones). */
void		 outbox_key(uint64_t id, unsigned int part, uint8_t key[9]);

/*
 * STORE_DB_META "link-status/NAME": a link's state and counters, written
 * every second by nudged so that nudgectl can show them from the store.
 */
#define OUTBOX_LINK_STATUS_PREFIX "link-status/"
struct outbox_link_status_record {
	uint8_t		 version;
	uint8_t		 state;		/* enum link_state */
	uint8_t		 unused[6];
	uint64_t	 updated_us;
	uint64_t	 binds;
	uint64_t	 reconnects;
	uint64_t	 submitted;
	uint64_t	 acknowledged;
	uint64_t	 throttled;
	uint64_t	 rejected;
	uint64_t	 timeouts;
	uint64_t	 delivered_in;
	uint64_t	 window_used;
	uint64_t	 window_size;
	double		 rate_limit;
	uint64_t	 queue_depth;	/* whole outbox, same for every link */
};

/* ===== callback.c ===== */

/*
 * Status callbacks: when a message with a callback URL reaches a final
 * state, its status is POSTed there as JSON. The attempt is a timer row, so
 * it survives a restart; failures retry with back-off, six times at most.
 */
void		 callback_init(struct event_base *base);
/* Schedules the callback of a message that just became final. */
void		 callback_message_final(uint64_t id);

/* ===== receipt.c ===== */

/* STORE_DB_RECEIPTS (the receipt log) and STORE_DB_HELD_RECEIPTS value. */
struct receipt_record {
	uint8_t		 version;
	uint8_t		 receipt_state;	/* enum smpp_message_state */
	uint8_t		 part;
	uint8_t		 matched;	/* 0: no message had that SMSC id */
	uint8_t		 part_state;	/* enum outbox_state after it */
	uint8_t		 unused[3];
	uint32_t	 error_code;
	uint32_t	 unused2;
	uint64_t	 time_us;
	uint64_t	 message_id;
	uint64_t	 submitted_us;
	char		 link[OUTBOX_LINK_NAME_SIZE];
	char		 smsc_id[OUTBOX_SMSC_ID_SIZE];
	char		 to[OUTBOX_ADDRESS_SIZE];
	char		 stat[16];
};

void		 receipt_init(const struct config *config);
/* 1 if a deliver_sm/data_sm from an SMSC is a delivery receipt. */
int		 receipt_is_receipt(const struct smpp_pdu *pdu);
/* Stores and matches one receipt; returns the status to answer with. */
uint32_t	 receipt_handle(struct link *link, const struct smpp_pdu *pdu);
/* The part now has smsc_id: index it and apply a receipt held for it. */
void		 receipt_index_part(const char *link_name, const char *smsc_id,
		    uint64_t message_id, unsigned int part);
/* Canonical key "link NUL normalised-id"; returns its length, 0 if bad. */
size_t		 receipt_key(const char *link_name, const char *id,
		    size_t id_length, int base, uint8_t *key, size_t key_size);

/* ===== mo.c ===== */

/* STORE_DB_MO value (the MO log); the UTF-8 text follows. */
struct mo_record {
	uint8_t		 version;
	uint8_t		 data_coding;
	uint8_t		 parts;
	uint8_t		 complete;	/* 0: reassembly timed out */
	uint16_t	 text_length;
	uint16_t	 unused;
	uint64_t	 time_us;
	char		 link[OUTBOX_LINK_NAME_SIZE];
	char		 from[OUTBOX_ADDRESS_SIZE];
	char		 to[OUTBOX_ADDRESS_SIZE];
};

/* The one place inbound SMS go after they are whole and stored. */
typedef void (*mo_route_fn)(void *arg, uint64_t mo_id,
		    const struct mo_record *mo, const char *text);

void		 mo_init(const struct config *config);
void		 mo_set_route(mo_route_fn fn, void *arg);
/* Stores one MO PDU (or part); returns the status to answer with. */
uint32_t	 mo_handle(struct link *link, const struct smpp_pdu *pdu);

/* ===== api_message.c ===== */

/* POST /v1/messages (single and batch), GET /v1/messages/{id}. */
void		 api_message_init(void);

/* ===== optout.c ===== */

/*
 * The opt-out list: numbers that must get no marketing SMS, from any
 * producer (flows, HTTP, relayed ESME traffic). The compliance work builds
 * consent on top; the lookup is one function so that it can later be backed
 * by a replicated store without touching its callers.
 */
struct optout_record {
	uint8_t		 version;
	uint8_t		 unused[7];
	uint64_t	 time_us;
	char		 source[32];	/* "api", "keyword", "import", ... */
};

void		 optout_init(void);
/* 1 if number (E.164, "+" optional) opted out of marketing. */
int		 optout_is_opted_out(const char *number);
enum store_result optout_set(const char *number, const char *source);
enum store_result optout_clear(const char *number);

/* ===== server.c ===== */

/*
 * The SMPP server side: ESMEs (aggregators, Kannel) bind to nudged, submit
 * traffic that goes through the outbox, and receive receipts and MO as
 * deliver_sm, queued durably per account while no receiver is bound.
 */
void		 server_init(struct event_base *base, const struct config *config);
void		 server_shutdown_begin(void *arg);
int		 server_shutdown_done(void *arg);
void		 server_free(void);
/* Sessions open now (bound or not), for stats and tests. */
size_t		 server_session_count(void);
/*
 * Between server.c (sessions) and server_deliver.c (the per-account queue
 * of deliver_sm), not for other modules. Accounts are named by their index
 * in config->accounts; cookie is the queue sequence of an item.
 *
 * Sends one encoded deliver_sm (its sequence number is patched in) on a
 * receiver of the account with window room: 0 if sent, -1 if none has room.
 */
int		 server_send_deliver(size_t account, uint8_t *pdu, size_t length,
		    uint64_t cookie);
void		 server_deliver_init(struct event_base *base,
		    const struct config *config);
void		 server_deliver_free(void);
/* A receiver bound or got window room: send what is due. */
void		 server_deliver_ready(size_t account);
/* deliver_sm_resp (or a generic_nack answering it) arrived. */
void		 server_deliver_answered(size_t account, uint64_t cookie,
		    uint32_t status);
/* No answer will come: timed_out (retry later) or the session closed. */
void		 server_deliver_unanswered(size_t account, uint64_t cookie,
		    int timed_out);
/* Items kept for an account (sent and unanswered ones included). */
size_t		 server_deliver_queue_depth(size_t account);
/* The SMPP message_state (enum smpp_message_state) an ESME is told. */
int		 server_deliver_message_state(enum outbox_state state,
		    enum outbox_reason reason);
/* Why a message (part 0) or a part last changed, from its history. */
enum outbox_reason server_deliver_last_reason(
		    const struct outbox_message_record *message,
		    unsigned int part);

/* ===== daemon.c ===== */

/* The running gateway: what every subsystem reaches through `gateway`. */
struct gateway {
	struct config	*config;
	struct event_base *base;
	struct store	*store;
	uint64_t	 started_us;	/* monotonic */
	int		 lock_fd;
	int		 shutting_down;
};

extern struct gateway *gateway;

/* A subsystem's part in a graceful stop: begin (send unbinds, stop
 * accepting) and is_done (nothing left in flight), polled until the bound. */
typedef void (*daemon_shutdown_begin_fn)(void *arg);
typedef int (*daemon_shutdown_done_fn)(void *arg);
/* Applies a freshly parsed configuration after SIGHUP; 0 if it took. */
typedef int (*daemon_reload_fn)(const struct config *config, void *arg);

void		 daemon_start(struct config *config, int foreground);
int		 daemon_run(void);
void		 daemon_on_shutdown(daemon_shutdown_begin_fn begin,
		    daemon_shutdown_done_fn is_done, void *arg);
void		 daemon_on_reload(daemon_reload_fn fn, void *arg);
void		 daemon_request_stop(void);

#endif /* NUDGED_H */
