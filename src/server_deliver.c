/*
 * server_deliver.c - what nudged delivers to the ESMEs bound to it: delivery
 * receipts for the messages they submitted and the MO routed to them, each
 * a deliver_sm kept durably per account until the ESME acknowledges it.
 *
 * Every deliver_sm is first a row of STORE_DB_ESME_QUEUE, written in the
 * turn that produced it (the receipt or the MO commits with it), keyed by
 * "system_id NUL 8-octet big-endian sequence" so that the account's rows
 * sort oldest first. Only after that commit may it be sent; it is deleted
 * in the turn its deliver_sm_resp ESME_ROK arrives. A deliver_sm that was
 * sent but not answered when the session dropped is sent again (at least
 * once, as SMSCs do).
 *
 * The schedule lives in memory, rebuilt from the rows at start: a small
 * item per row (about 64 octets; the PDU stays in LMDB). Why not durable
 * timer rows for the retries: the row is the promise, the back-off only
 * manners. After a restart every kept item is due at once, which at worst
 * sends one retry early, and no retry costs a second write.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "smpp.h"
#include "nudged.h"

#define DELIVER_RECORD_VERSION 1
#define DELIVER_PDU_MAX        (SMPP_MESSAGE_PAYLOAD_MAX + 1024)
#define DELIVER_KEY_MAX        (16 + 8)          /* system_id, NUL, sequence */
#define DELIVER_SWEEP_US       (60 * 1000000ULL) /* expiry of idle rows */
#define DELIVER_ORIGIN_PREFIX  "esme:"
#define DELIVER_ID_SIZE        24
#define DELIVER_GSM_OCTETS     160 /* unpacked septets in short_message */

/* What a kept deliver_sm carries. */
enum deliver_kind {
	DELIVER_KIND_RECEIPT = 1,
	DELIVER_KIND_MO = 2,
};

static const char *const deliver_kind_names[] = {
    [DELIVER_KIND_RECEIPT] = "receipt",
    [DELIVER_KIND_MO] = "mo",
};

/* STORE_DB_ESME_QUEUE value; the encoded deliver_sm follows. */
struct deliver_record {
	uint8_t version;
	uint8_t kind; /* enum deliver_kind */
	uint8_t unused[6];
	uint64_t created_us; /* wall clock */
	uint64_t expires_us;
	uint64_t reference; /* gateway message id or MO id */
	uint32_t pdu_length;
	uint32_t unused2;
};

enum item_state {
	ITEM_READY,    /* on ready, in sequence order */
	ITEM_WAITING,  /* on waiting: back-off after an error */
	ITEM_INFLIGHT, /* sent, on inflight */
};

/* One kept deliver_sm, in memory: where it is in the schedule. */
struct deliver_item {
	TAILQ_ENTRY(deliver_item) entry;
	uint64_t sequence;   /* key suffix, and the window cookie */
	uint64_t expires_us; /* wall clock */
	uint64_t due_us;     /* monotonic: when a retry may go */
	uint64_t turn;       /* sendable once this turn committed */
	unsigned int attempts;
	enum item_state state;
	uint8_t kind;
};
TAILQ_HEAD(deliver_list, deliver_item);

struct deliver_metrics {
	struct metric *queued;
	struct metric *sent;
	struct metric *acknowledged;
	struct metric *retried;
	struct metric *expired;
	struct metric *dropped;
	struct metric *depth;
};

struct deliver_account {
	const struct config_account *config;
	size_t index;
	uint64_t log_id;
	struct deliver_list ready;
	struct deliver_list waiting;
	struct deliver_list inflight;
	size_t depth; /* rows: ready + waiting + inflight */
	struct deliver_metrics metrics;
};

/* The module; one event loop, so module state is fine in src/. */
static struct {
	struct event_base *base;
	const struct config *config;
	struct deliver_account *accounts;
	size_t count;
	struct event *retry_timer;
	uint64_t retry_due_us;
	struct event *sweep_timer;
	uint64_t turn;           /* what items enqueued now are tagged */
	uint64_t committed_turn; /* items up to it are durable */
	int commit_waiting;      /* an after-commit hook is queued */
	uint8_t pdu[DELIVER_PDU_MAX];
	uint8_t user_data[SMPP_MESSAGE_PAYLOAD_MAX];
} deliver;

/* Which turn an after-commit hook closes, of which start of the module. */
struct commit_mark {
	uint64_t epoch;
	uint64_t turn;
};

/* outbox has no way to take an observer back: it is added once. */
static int observer_added;
/* Bumped by every server_deliver_init(): hooks of an earlier one are void. */
static uint64_t epoch;

static void deliver_dispatch(struct deliver_account *account);

static const int final_states[OUTBOX_STATE_COUNT] = {
    [OUTBOX_DELIVERED] = 1,
    [OUTBOX_UNDELIVERABLE] = 1,
    [OUTBOX_EXPIRED] = 1,
    [OUTBOX_REJECTED] = 1,
    [OUTBOX_FAILED] = 1,
    [OUTBOX_UNKNOWN] = 1,
};

/* Outbox state -> what an ESME is told (query_sm and receipts alike). */
static const uint8_t smpp_states[OUTBOX_STATE_COUNT] = {
    [OUTBOX_STATE_NONE] = SMPP_MESSAGE_STATE_UNKNOWN,
    [OUTBOX_QUEUED] = SMPP_MESSAGE_STATE_ENROUTE,
    [OUTBOX_SUBMITTING] = SMPP_MESSAGE_STATE_ENROUTE,
    [OUTBOX_SUBMITTED] = SMPP_MESSAGE_STATE_ENROUTE,
    [OUTBOX_DELIVERED] = SMPP_MESSAGE_STATE_DELIVERED,
    [OUTBOX_UNDELIVERABLE] = SMPP_MESSAGE_STATE_UNDELIVERABLE,
    [OUTBOX_EXPIRED] = SMPP_MESSAGE_STATE_EXPIRED,
    [OUTBOX_REJECTED] = SMPP_MESSAGE_STATE_REJECTED,
    [OUTBOX_FAILED] = SMPP_MESSAGE_STATE_UNDELIVERABLE,
    [OUTBOX_UNKNOWN] = SMPP_MESSAGE_STATE_UNKNOWN,
};

int
server_deliver_message_state(enum outbox_state state, enum outbox_reason reason)
{
	if (reason == OUTBOX_REASON_CANCELLED)
		return SMPP_MESSAGE_STATE_DELETED;
	if ((unsigned int)state >= OUTBOX_STATE_COUNT)
		return SMPP_MESSAGE_STATE_UNKNOWN;
	return smpp_states[state];
}

enum outbox_reason
server_deliver_last_reason(
    const struct outbox_message_record *message, unsigned int part)
{
	const struct outbox_history_entry *entry;
	size_t i;

	for (i = message->history_count; i > 0; i--) {
		entry = &message->history[i - 1];
		if (part == 0 ? entry->state == message->state
			      : entry->part == part)
			return (enum outbox_reason)entry->reason;
	}
	return OUTBOX_REASON_NONE;
}

static uint64_t
monotonic_now(void)
{
	return clock_monotonic_us();
}

/* A stable log id per account name (FNV-1a). */
static uint64_t
account_log_id(const char *name)
{
	uint64_t hash = 0xcbf29ce484222325ULL;

	for (; *name != '\0'; name++) {
		hash ^= (unsigned char)*name;
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

/* "system_id NUL sequence"; returns the key length. */
static size_t
deliver_key(const struct deliver_account *account, uint64_t sequence,
    uint8_t key[DELIVER_KEY_MAX])
{
	size_t length = strlen(account->config->system_id);

	memcpy(key, account->config->system_id, length + 1);
	store_encode_u64(key + length + 1, sequence);
	return length + 1 + 8;
}

static struct deliver_account *
account_by_system_id(const char *system_id)
{
	size_t i;

	for (i = 0; i < deliver.count; i++)
		if (strcmp(deliver.accounts[i].config->system_id, system_id) ==
		    0)
			return &deliver.accounts[i];
	return NULL;
}

static struct deliver_list *
item_list(struct deliver_account *account, enum item_state state)
{
	switch (state) {
	case ITEM_READY:
		return &account->ready;
	case ITEM_WAITING:
		return &account->waiting;
	default:
		return &account->inflight;
	}
}

/* Puts an item on ready, in sequence order (returned ones are older). */
static void
ready_insert(struct deliver_account *account, struct deliver_item *item)
{
	struct deliver_item *after;

	item->state = ITEM_READY;
	TAILQ_FOREACH_REVERSE(after, &account->ready, deliver_list, entry)
	if (after->sequence < item->sequence)
		break;
	if (after == NULL)
		TAILQ_INSERT_HEAD(&account->ready, item, entry);
	else
		TAILQ_INSERT_AFTER(&account->ready, after, item, entry);
}

static void
update_depth(struct deliver_account *account)
{
	metrics_set(account->metrics.depth, (double)account->depth);
}

/*
 * Forgets an item: its row is deleted in this turn's transaction, the
 * memory at once. why names the counter it goes to (NULL: none).
 */
static void
item_remove(struct deliver_account *account, struct deliver_item *item,
    struct metric *why)
{
	uint8_t key[DELIVER_KEY_MAX];
	size_t key_length;

	key_length = deliver_key(account, item->sequence, key);
	store_delete(gateway->store, STORE_DB_ESME_QUEUE, key, key_length);
	TAILQ_REMOVE(item_list(account, item->state), item, entry);
	free(item);
	if (account->depth > 0)
		account->depth--;
	if (why != NULL)
		metrics_add(why, 1);
	update_depth(account);
}

/* Drops items whose deliver_expiry passed (not those on the wire). */
static void
account_expire(struct deliver_account *account, uint64_t now_us)
{
	struct deliver_item *item, *next;
	size_t expired = 0;

	/* One expiry for the whole account: ready is oldest first. */
	while ((item = TAILQ_FIRST(&account->ready)) != NULL &&
	       item->expires_us <= now_us) {
		item_remove(account, item, account->metrics.expired);
		expired++;
	}
	for (item = TAILQ_FIRST(&account->waiting); item != NULL; item = next) {
		next = TAILQ_NEXT(item, entry);
		if (item->expires_us <= now_us) {
			item_remove(account, item, account->metrics.expired);
			expired++;
		}
	}
	if (expired > 0)
		log_info(account->log_id, "server", "deliver-expired",
		    "account=%s count=%zu kept=%zu", account->config->name,
		    expired, account->depth);
}

/* ---- retries ------------------------------------------------------------ */

static void
retry_arm(uint64_t due_us)
{
	struct timeval delay;
	uint64_t now = monotonic_now(), wait;

	if (deliver.retry_timer == NULL)
		return;
	if (evtimer_pending(deliver.retry_timer, NULL) &&
	    deliver.retry_due_us <= due_us)
		return;
	wait = due_us > now ? due_us - now : 0;
	delay.tv_sec = (time_t)(wait / 1000000);
	delay.tv_usec = (suseconds_t)(wait % 1000000);
	deliver.retry_due_us = due_us;
	evtimer_add(deliver.retry_timer, &delay);
}

/* Back-off items whose time came go back to ready; then send. */
static void
retry_fired(evutil_socket_t fd, short what, void *arg)
{
	struct deliver_account *account;
	struct deliver_item *item, *next;
	uint64_t now = monotonic_now(), earliest = UINT64_MAX;
	size_t i;

	for (i = 0; i < deliver.count; i++) {
		account = &deliver.accounts[i];
		for (item = TAILQ_FIRST(&account->waiting); item != NULL;
		     item = next) {
			next = TAILQ_NEXT(item, entry);
			if (item->due_us <= now) {
				TAILQ_REMOVE(&account->waiting, item, entry);
				ready_insert(account, item);
			} else if (item->due_us < earliest)
				earliest = item->due_us;
		}
		deliver_dispatch(account);
	}
	if (earliest != UINT64_MAX)
		retry_arm(earliest);
}

/* An error or a timeout: the item waits deliver_retry_min doubling. */
static void
item_retry_later(
    struct deliver_account *account, struct deliver_item *item, uint32_t status)
{
	uint64_t delay = account->config->deliver_retry_min_us;
	unsigned int i;

	item->attempts++;
	for (i = 1; i < item->attempts &&
		    delay < account->config->deliver_retry_max_us;
	     i++)
		delay *= 2;
	if (delay > account->config->deliver_retry_max_us)
		delay = account->config->deliver_retry_max_us;
	TAILQ_REMOVE(item_list(account, item->state), item, entry);
	item->state = ITEM_WAITING;
	item->due_us = monotonic_now() + delay;
	TAILQ_INSERT_TAIL(&account->waiting, item, entry);
	metrics_add(account->metrics.retried, 1);
	log_info(account->log_id, "server", "deliver-retry",
	    "account=%s kind=%s sequence=%llu status=%s attempts=%u "
	    "delay_ms=%llu",
	    account->config->name, deliver_kind_names[item->kind],
	    (unsigned long long)item->sequence, smpp_status_name(status),
	    item->attempts, (unsigned long long)(delay / 1000));
	retry_arm(item->due_us);
}

static void
sweep_fired(evutil_socket_t fd, short what, void *arg)
{
	struct timeval period = {DELIVER_SWEEP_US / 1000000, 0};
	uint64_t now = clock_now_us();
	size_t i;

	for (i = 0; i < deliver.count; i++)
		account_expire(&deliver.accounts[i], now);
	evtimer_add(deliver.sweep_timer, &period);
}

/* ---- sending ------------------------------------------------------------ */

/*
 * Sends what is ready, oldest first, while a receiver has window room.
 * Items of a turn not yet committed wait: the deliver_sm must never get
 * ahead of the commit that holds its row.
 */
static void
deliver_dispatch(struct deliver_account *account)
{
	struct deliver_record record;
	struct deliver_item *item;
	uint8_t key[DELIVER_KEY_MAX];
	const void *value;
	size_t key_length, value_length;
	uint64_t now = clock_now_us();
	enum store_result result;

	while ((item = TAILQ_FIRST(&account->ready)) != NULL &&
	       item->turn <= deliver.committed_turn) {
		if (item->expires_us <= now) {
			account_expire(account, now);
			continue;
		}
		key_length = deliver_key(account, item->sequence, key);
		result = store_get(gateway->store, STORE_DB_ESME_QUEUE, key,
		    key_length, &value, &value_length);
		if (result == STORE_ERROR)
			return;
		if (result == STORE_NOT_FOUND ||
		    value_length < sizeof(record)) {
			log_warnx(account->log_id, "server",
			    "deliver-row-missing", "account=%s sequence=%llu",
			    account->config->name,
			    (unsigned long long)item->sequence);
			item_remove(account, item, NULL);
			continue;
		}
		memcpy(&record, value, sizeof(record));
		if (record.pdu_length < SMPP_HEADER_LENGTH ||
		    record.pdu_length > sizeof(deliver.pdu) ||
		    sizeof(record) + record.pdu_length > value_length) {
			log_warnx(account->log_id, "server",
			    "deliver-row-corrupt", "account=%s sequence=%llu",
			    account->config->name,
			    (unsigned long long)item->sequence);
			item_remove(account, item, NULL);
			continue;
		}
		/* A copy: the sequence number is patched in, per send. */
		memcpy(deliver.pdu, (const uint8_t *)value + sizeof(record),
		    record.pdu_length);
		if (server_send_deliver(account->index, deliver.pdu,
			record.pdu_length, item->sequence) != 0)
			return;
		TAILQ_REMOVE(&account->ready, item, entry);
		item->state = ITEM_INFLIGHT;
		TAILQ_INSERT_TAIL(&account->inflight, item, entry);
		metrics_add(account->metrics.sent, 1);
	}
}

void
server_deliver_ready(size_t index)
{
	if (index < deliver.count)
		deliver_dispatch(&deliver.accounts[index]);
}

/* In-flight items answer mostly in order: the search starts at the oldest. */
static struct deliver_item *
inflight_find(struct deliver_account *account, uint64_t sequence)
{
	struct deliver_item *item;

	TAILQ_FOREACH(item, &account->inflight, entry)
	if (item->sequence == sequence)
		return item;
	return NULL;
}

void
server_deliver_answered(size_t index, uint64_t cookie, uint32_t status)
{
	struct deliver_account *account;
	struct deliver_item *item;

	if (index >= deliver.count)
		return;
	account = &deliver.accounts[index];
	if ((item = inflight_find(account, cookie)) == NULL) {
		log_info(account->log_id, "server", "deliver-answer-unknown",
		    "account=%s sequence=%llu status=%s", account->config->name,
		    (unsigned long long)cookie, smpp_status_name(status));
		return;
	}
	if (status == SMPP_ESME_ROK) {
		/* The deletion commits with this turn: it is theirs now. */
		log_debug(account->log_id, "server", "deliver-acknowledged",
		    "account=%s kind=%s sequence=%llu", account->config->name,
		    deliver_kind_names[item->kind],
		    (unsigned long long)item->sequence);
		item_remove(account, item, account->metrics.acknowledged);
	} else
		item_retry_later(account, item, status);
	deliver_dispatch(account);
}

void
server_deliver_unanswered(size_t index, uint64_t cookie, int timed_out)
{
	struct deliver_account *account;
	struct deliver_item *item;

	if (index >= deliver.count)
		return;
	account = &deliver.accounts[index];
	if ((item = inflight_find(account, cookie)) == NULL)
		return;
	if (timed_out) {
		item_retry_later(account, item, SMPP_ESME_RUNKNOWNERR);
		deliver_dispatch(account);
		return;
	}
	/* The session dropped: it goes again, in its place, on any receiver. */
	TAILQ_REMOVE(&account->inflight, item, entry);
	ready_insert(account, item);
}

size_t
server_deliver_queue_depth(size_t index)
{
	return index < deliver.count ? deliver.accounts[index].depth : 0;
}

/* ---- enqueuing ---------------------------------------------------------- */

/* The commit holding a turn's rows is done: those items may go now. */
static void
deliver_committed(void *arg, enum store_result result)
{
	struct commit_mark *mark = arg;
	struct deliver_account *account;
	struct deliver_item *item;
	uint64_t turn = mark->turn;
	size_t i, lost = 0;

	if (mark->epoch != epoch || deliver.accounts == NULL) {
		free(mark); /* the module was freed (or restarted) meanwhile */
		return;
	}
	free(mark);
	deliver.commit_waiting = 0;
	deliver.turn = turn + 1;
	if (result != STORE_OK) {
		/* The rows are gone with the failed commit: so are the items. */
		for (i = 0; i < deliver.count; i++) {
			account = &deliver.accounts[i];
			while ((item = TAILQ_LAST(
				    &account->ready, deliver_list)) != NULL &&
			       item->turn == turn) {
				TAILQ_REMOVE(&account->ready, item, entry);
				free(item);
				account->depth--;
				lost++;
			}
			update_depth(account);
		}
		log_warnx(0, "server", "deliver-not-stored", "items=%zu", lost);
		return;
	}
	deliver.committed_turn = turn;
	for (i = 0; i < deliver.count; i++)
		deliver_dispatch(&deliver.accounts[i]);
}

/* The oldest item not on the wire, to make room; NULL if none. */
static struct deliver_item *
oldest_droppable(struct deliver_account *account)
{
	struct deliver_item *item, *oldest = TAILQ_FIRST(&account->ready);

	TAILQ_FOREACH(item, &account->waiting, entry)
	if (oldest == NULL || item->sequence < oldest->sequence)
		oldest = item;
	return oldest;
}

/*
 * Keeps one deliver_sm for the account: its row joins this turn's
 * transaction, its item waits for that commit. Beyond deliver_queue_max
 * the oldest one is dropped (counted and logged).
 */
static void
deliver_enqueue(struct deliver_account *account, enum deliver_kind kind,
    uint64_t reference, const uint8_t *pdu, size_t pdu_length)
{
	struct deliver_record record;
	struct deliver_item *item, *oldest;
	struct commit_mark *mark;
	uint8_t key[DELIVER_KEY_MAX], *value;
	uint64_t sequence, now = clock_now_us();
	size_t key_length;

	while (account->depth >= (size_t)account->config->deliver_queue_max &&
	       (oldest = oldest_droppable(account)) != NULL) {
		log_warnx(account->log_id, "server", "deliver-dropped",
		    "account=%s kind=%s sequence=%llu reason=queue-full "
		    "max=%lld",
		    account->config->name, deliver_kind_names[oldest->kind],
		    (unsigned long long)oldest->sequence,
		    (long long)account->config->deliver_queue_max);
		item_remove(account, oldest, account->metrics.dropped);
	}
	sequence =
	    store_sequence_next(gateway->store, STORE_SEQUENCE_ESME_QUEUE);
	if (sequence == 0)
		return;
	memset(&record, 0, sizeof(record));
	record.version = DELIVER_RECORD_VERSION;
	record.kind = (uint8_t)kind;
	record.created_us = now;
	record.expires_us = now + account->config->deliver_expiry_us;
	record.reference = reference;
	record.pdu_length = (uint32_t)pdu_length;
	if ((value = malloc(sizeof(record) + pdu_length)) == NULL ||
	    (item = calloc(1, sizeof(*item))) == NULL)
		fatal("server", "out-of-memory", NULL);
	memcpy(value, &record, sizeof(record));
	memcpy(value + sizeof(record), pdu, pdu_length);
	key_length = deliver_key(account, sequence, key);
	if (store_put(gateway->store, STORE_DB_ESME_QUEUE, key, key_length,
		value, sizeof(record) + pdu_length, 0) != STORE_OK) {
		free(value);
		free(item);
		log_warnx(account->log_id, "server", "deliver-not-kept",
		    "account=%s kind=%s reference=%llu", account->config->name,
		    deliver_kind_names[kind], (unsigned long long)reference);
		return;
	}
	free(value);
	item->sequence = sequence;
	item->expires_us = record.expires_us;
	item->turn = deliver.turn;
	item->kind = (uint8_t)kind;
	item->state = ITEM_READY;
	TAILQ_INSERT_TAIL(&account->ready, item, entry);
	account->depth++;
	metrics_add(account->metrics.queued, 1);
	update_depth(account);
	if (!deliver.commit_waiting) {
		if ((mark = malloc(sizeof(*mark))) == NULL)
			fatal("server", "out-of-memory", NULL);
		mark->epoch = epoch;
		mark->turn = deliver.turn;
		deliver.commit_waiting = 1;
		store_after_commit(gateway->store, deliver_committed, mark);
	}
}

/* An address as the ESME gets it: "+" dropped, international TON then. */
static const char *
address_for_esme(const char *address, uint8_t *ton, uint8_t *npi)
{
	const char *p;

	if (address[0] == '+') {
		*ton = 1;
		*npi = 1;
		return address + 1;
	}
	for (p = address; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p)) {
			*ton = 5; /* alphanumeric */
			*npi = 0;
			return address;
		}
	return address;
}

/* Encodes a deliver_sm into deliver.pdu; returns its length or 0. */
static size_t
encode_deliver(struct smpp_pdu *pdu, uint64_t log_id)
{
	int length;

	pdu->command_id = SMPP_DELIVER_SM;
	pdu->sequence_number = 1; /* replaced on every send */
	length = smpp_pdu_encode(pdu, deliver.pdu, sizeof(deliver.pdu));
	if (length < 0) {
		log_warnx(log_id, "server", "deliver-unencodable", "error=%s",
		    smpp_pdu_encode_error_name(length));
		return 0;
	}
	return (size_t)length;
}

/* ---- receipts ----------------------------------------------------------- */

/* registered_delivery bits 0-1: 1 any final state, 2 failures only. */
static int
receipt_wanted(uint8_t registered_delivery, enum outbox_state state)
{
	switch (registered_delivery & 0x03) {
	case 1:
	case 3: /* reserved: read as "any" */
		return 1;
	case 2:
		return state != OUTBOX_DELIVERED;
	default:
		return 0;
	}
}

/*
 * Whether the part became final just now. A receipt for a part that was
 * final already (a duplicate from the SMSC) adds a second final history
 * entry for the part; the ESME got its receipt the first time.
 */
static int
first_final(const struct outbox_message_record *message, unsigned int part)
{
	unsigned int finals = 0;
	size_t i;

	for (i = 0; i < message->history_count; i++)
		if (message->history[i].part == part &&
		    message->history[i].state < OUTBOX_STATE_COUNT &&
		    final_states[message->history[i].state])
			finals++;
	return finals <= 1;
}

/* The first octets of the part, printable, for the receipt's "text:". */
static size_t
receipt_text(uint64_t id, unsigned int part,
    const struct outbox_part_record *record, char *out, size_t size)
{
	enum smpp_data_coding alphabet;
	const uint8_t *octets;
	const void *value;
	uint8_t key[9];
	size_t value_length, length, i;

	alphabet = smpp_charset_alphabet(record->data_coding);
	if ((record->esm_class & SMPP_ESM_CLASS_UDHI) ||
	    (alphabet != SMPP_CODING_DEFAULT && alphabet != SMPP_CODING_IA5 &&
		alphabet != SMPP_CODING_LATIN1))
		return 0;
	outbox_key(id, part, key);
	if (store_get(gateway->store, STORE_DB_PARTS, key, sizeof(key), &value,
		&value_length) != STORE_OK ||
	    value_length < sizeof(*record) + record->short_message_length)
		return 0;
	octets = (const uint8_t *)value + sizeof(*record);
	length = record->short_message_length;
	if (length > SMPP_RECEIPT_TEXT_LENGTH)
		length = SMPP_RECEIPT_TEXT_LENGTH;
	if (length >= size)
		length = size - 1;
	for (i = 0; i < length; i++)
		out[i] = octets[i] >= 0x20 && octets[i] < 0x7f ? (char)octets[i]
							       : '?';
	out[length] = '\0';
	return length;
}

/*
 * The outbox tells of every part that got a receipt or reached a final
 * state; this runs inside that turn, so only the row is written here.
 */
static void
receipt_observed(void *arg, uint64_t id,
    const struct outbox_message_record *message, unsigned int part,
    const struct outbox_part_record *record)
{
	struct deliver_account *account;
	struct smpp_receipt receipt;
	struct smpp_tlv tlvs[2];
	struct smpp_pdu pdu;
	enum outbox_state state = (enum outbox_state)record->state;
	char text[SMPP_RECEIPT_MAX_LENGTH], body[SMPP_RECEIPT_TEXT_LENGTH + 1];
	char id_text[DELIVER_ID_SIZE], number[LOG_MASKED_NUMBER_SIZE];
	const char *source, *destination;
	int message_state, length;
	size_t pdu_length, body_length;

	if (deliver.accounts == NULL ||
	    strncmp(message->origin, DELIVER_ORIGIN_PREFIX,
		sizeof(DELIVER_ORIGIN_PREFIX) - 1) != 0 ||
	    (account = account_by_system_id(
		 message->origin + sizeof(DELIVER_ORIGIN_PREFIX) - 1)) == NULL)
		return;
	if ((unsigned int)state >= OUTBOX_STATE_COUNT || !final_states[state] ||
	    !receipt_wanted(record->registered_delivery, state) ||
	    !first_final(message, part))
		return;
	message_state = server_deliver_message_state(
	    state, server_deliver_last_reason(message, part));
	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);

	memset(&receipt, 0, sizeof(receipt));
	receipt.fields = SMPP_RECEIPT_ID | SMPP_RECEIPT_SUBMITTED |
			 SMPP_RECEIPT_DELIVERED | SMPP_RECEIPT_SUBMIT_TIME |
			 SMPP_RECEIPT_DONE_TIME | SMPP_RECEIPT_STAT |
			 SMPP_RECEIPT_ERROR_CODE;
	snprintf(receipt.id, sizeof(receipt.id), "%s", id_text);
	receipt.submitted = 1;
	receipt.delivered = state == OUTBOX_DELIVERED;
	receipt.submit_time = (int64_t)(message->created_us / 1000000);
	receipt.done_time = (int64_t)(clock_now_us() / 1000000);
	receipt.state = (enum smpp_message_state)message_state;
	/* The upstream receipt's error; without one, the SMSC's refusal. */
	receipt.error_code = record->receipt_us != 0 ? record->receipt_error
						     : record->submit_status;
	body_length = receipt_text(id, part, record, body, sizeof(body));
	if (body_length > 0) {
		receipt.fields |= SMPP_RECEIPT_TEXT;
		receipt.text = (const uint8_t *)body;
		receipt.text_length = body_length;
	}
	if ((length = smpp_receipt_format(&receipt, text, sizeof(text))) < 0)
		return;

	memset(&pdu, 0, sizeof(pdu));
	/* It comes from the handset the message went to. */
	pdu.source_addr_ton = record->dest_addr_ton;
	pdu.source_addr_npi = record->dest_addr_npi;
	source = address_for_esme(
	    message->to, &pdu.source_addr_ton, &pdu.source_addr_npi);
	pdu.dest_addr_ton = record->source_addr_ton;
	pdu.dest_addr_npi = record->source_addr_npi;
	destination = address_for_esme(
	    message->from, &pdu.dest_addr_ton, &pdu.dest_addr_npi);
	pdu.source_addr = source;
	pdu.destination_addr = destination;
	pdu.esm_class = SMPP_ESM_CLASS_DELIVERY_RECEIPT;
	pdu.data_coding = SMPP_CODING_DEFAULT;
	pdu.short_message = (const uint8_t *)text;
	pdu.sm_length = (uint8_t)length;
	tlvs[0] = smpp_tlv_c_string(SMPP_TLV_RECEIPTED_MESSAGE_ID, id_text);
	tlvs[1] =
	    smpp_tlv_integer(SMPP_TLV_MESSAGE_STATE, (uint32_t)message_state);
	pdu.tlvs = tlvs;
	pdu.tlv_count = 2;
	if ((pdu_length = encode_deliver(&pdu, id)) == 0)
		return;
	log_info(id, "server", "receipt-kept",
	    "account=%s to=%s stat=%s kept=%zu", account->config->name,
	    log_mask_number(message->to, number, sizeof(number)),
	    smpp_receipt_stat_word(receipt.state), account->depth + 1);
	deliver_enqueue(
	    account, DELIVER_KIND_RECEIPT, id, deliver.pdu, pdu_length);
}

/* ---- MO ----------------------------------------------------------------- */

/* 1 if the space- or comma-separated list holds word (optionally caseless). */
static int
list_contains(const char *list, const char *word, size_t length,
    int ignore_case, int ignore_plus)
{
	const char *p = list, *start;
	size_t item_length, i;

	if (ignore_plus && length > 0 && word[0] == '+') {
		word++;
		length--;
	}
	while (*p != '\0') {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		start = p;
		while (*p != '\0' && *p != ' ' && *p != ',' && *p != '\t')
			p++;
		item_length = (size_t)(p - start);
		if (ignore_plus && item_length > 0 && start[0] == '+') {
			start++;
			item_length--;
		}
		if (item_length == 0 || item_length != length)
			continue;
		for (i = 0; i < length; i++)
			if (ignore_case ? tolower((unsigned char)start[i]) !=
					      tolower((unsigned char)word[i])
					: start[i] != word[i])
				break;
		if (i == length)
			return 1;
	}
	return 0;
}

/* mo_destinations first (exact, "+" aside), then the first word. */
static struct deliver_account *
mo_account(const struct mo_record *mo, const char *text)
{
	const char *word = text, *end;
	size_t i;

	for (i = 0; i < deliver.count; i++)
		if (list_contains(deliver.accounts[i].config->mo_destinations,
			mo->to, strlen(mo->to), 0, 1))
			return &deliver.accounts[i];
	while (*word == ' ' || *word == '\t' || *word == '\n' || *word == '\r')
		word++;
	for (end = word; *end != '\0' && *end != ' ' && *end != '\t' &&
			 *end != '\n' && *end != '\r';
	     end++)
		;
	if (end == word)
		return NULL;
	for (i = 0; i < deliver.count; i++)
		if (list_contains(deliver.accounts[i].config->mo_keywords, word,
			(size_t)(end - word), 1, 0))
			return &deliver.accounts[i];
	return NULL;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The MO's user data for the ESME: binary MO (kept as hex in the log) goes
 * back to octets in its own coding; text is encoded GSM when it can be,
 * else UCS-2. Returns the octets written to out; *data_coding is set.
 */
static size_t
mo_user_data(const struct mo_record *mo, const char *text, uint8_t *out,
    size_t capacity, uint8_t *data_coding)
{
	struct smpp_charset_choice choice;
	enum smpp_data_coding alphabet;
	size_t length = strlen(text), written = 0, offset = 0, i;
	int high, low;

	alphabet = smpp_charset_alphabet(mo->data_coding);
	if (alphabet == SMPP_CODING_BINARY ||
	    alphabet == SMPP_CODING_BINARY_8BIT) {
		*data_coding = mo->data_coding;
		for (i = 0; i + 1 < length && written < capacity; i += 2) {
			if ((high = hex_value(text[i])) < 0 ||
			    (low = hex_value(text[i + 1])) < 0)
				break;
			out[written++] = (uint8_t)(high << 4 | low);
		}
		return written;
	}
	if (smpp_charset_choose(text, length, 0, 0, &choice) != SMPP_CHARSET_OK)
		choice.coding = SMPP_CODING_UCS2;
	*data_coding = (uint8_t)choice.coding;
	/* Whole characters only, as many as a message_payload holds. */
	if (smpp_charset_encode_prefix(choice.coding, text, length, &offset,
		capacity, out, capacity, &written) != SMPP_CHARSET_OK &&
	    written == 0)
		return 0;
	return written;
}

/*
 * The inbound router (inbound.c) offers a whole inbound SMS, stored in the
 * MO log, that nothing before it claimed. Returns 1 if an account's
 * destinations or keywords took it (queued for that ESME), 0 otherwise.
 */
int
server_route_mo(uint64_t mo_id, const struct mo_record *mo, const char *text)
{
	uint8_t *user_data = deliver.user_data;
	struct deliver_account *account;
	struct smpp_tlv payload;
	struct smpp_pdu pdu;
	char number[LOG_MASKED_NUMBER_SIZE];
	size_t length, limit, pdu_length;
	uint8_t data_coding;

	if (deliver.accounts == NULL ||
	    (account = mo_account(mo, text)) == NULL)
		return 0;
	length = mo_user_data(
	    mo, text, user_data, sizeof(deliver.user_data), &data_coding);
	memset(&pdu, 0, sizeof(pdu));
	pdu.source_addr = address_for_esme(
	    mo->from, &pdu.source_addr_ton, &pdu.source_addr_npi);
	pdu.destination_addr =
	    address_for_esme(mo->to, &pdu.dest_addr_ton, &pdu.dest_addr_npi);
	pdu.data_coding = data_coding;
	limit = smpp_charset_alphabet(data_coding) == SMPP_CODING_DEFAULT
		    ? DELIVER_GSM_OCTETS
		    : SMPP_SMS_OCTETS;
	if (length <= limit) {
		pdu.short_message = user_data;
		pdu.sm_length = (uint8_t)length;
	} else {
		/* Longer than one SMS: one message_payload, never split. */
		payload = smpp_tlv_octets(
		    SMPP_TLV_MESSAGE_PAYLOAD, user_data, (uint16_t)length);
		pdu.tlvs = &payload;
		pdu.tlv_count = 1;
	}
	if ((pdu_length = encode_deliver(&pdu, mo_id)) == 0)
		return 0;
	log_info(mo_id, "server", "mo-kept",
	    "account=%s from=%s length=%zu "
	    "kept=%zu",
	    account->config->name,
	    log_mask_number(mo->from, number, sizeof(number)), length,
	    account->depth + 1);
	deliver_enqueue(
	    account, DELIVER_KIND_MO, mo_id, deliver.pdu, pdu_length);
	return 1;
}

/* ---- start and stop ----------------------------------------------------- */

static void
account_register_metrics(struct deliver_account *account)
{
	struct deliver_metrics *metrics = &account->metrics;
	char labels[96], name[64];
	size_t i;

	snprintf(name, sizeof(name), "%s", account->config->name);
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] == '"' || name[i] == '\\' || name[i] == '\n')
			name[i] = '_';
	snprintf(labels, sizeof(labels), "account=\"%s\"", name);
	metrics->queued = metrics_counter("nudge_server_deliver_queued_total",
	    labels, "deliver_sm (receipts, MO) kept for an ESME.");
	metrics->sent = metrics_counter("nudge_server_deliver_sent_total",
	    labels, "deliver_sm sent to an ESME (retries included).");
	metrics->acknowledged =
	    metrics_counter("nudge_server_deliver_acknowledged_total", labels,
		"deliver_sm answered ESME_ROK, then deleted.");
	metrics->retried = metrics_counter("nudge_server_deliver_retried_total",
	    labels, "deliver_sm answered with an error or not in time.");
	metrics->expired = metrics_counter("nudge_server_deliver_expired_total",
	    labels, "deliver_sm dropped after deliver_expiry.");
	metrics->dropped = metrics_counter("nudge_server_deliver_dropped_total",
	    labels, "Oldest deliver_sm dropped beyond deliver_queue_max.");
	metrics->depth = metrics_gauge("nudge_server_deliver_queue_depth",
	    labels, "deliver_sm kept for an ESME, sent ones included.");
}

/* Rebuilds the schedule from the rows: every account's, oldest first. */
static void
deliver_recover(void)
{
	struct deliver_record record;
	struct deliver_account *account;
	struct deliver_item *item;
	struct store_cursor *cursor;
	const void *key, *value;
	const uint8_t *bytes;
	size_t key_length, value_length, name_length, orphans = 0, kept = 0;
	size_t i;
	enum store_result result;

	if (store_cursor_open(gateway->store, STORE_DB_ESME_QUEUE, &cursor) !=
	    STORE_OK)
		return;
	for (result = store_cursor_seek(
		 cursor, NULL, 0, &key, &key_length, &value, &value_length);
	     result == STORE_OK; result = store_cursor_next(cursor, &key,
				     &key_length, &value, &value_length)) {
		bytes = key;
		name_length = strnlen(key, key_length);
		if (name_length + 1 + 8 != key_length ||
		    value_length < sizeof(record))
			continue;
		/* Rows of an account no longer configured stay untouched. */
		if ((account = account_by_system_id(key)) == NULL) {
			orphans++;
			continue;
		}
		memcpy(&record, value, sizeof(record));
		if ((item = calloc(1, sizeof(*item))) == NULL)
			fatal("server", "out-of-memory", NULL);
		item->sequence = store_decode_u64(bytes + name_length + 1);
		item->expires_us = record.expires_us;
		item->kind = record.kind == DELIVER_KIND_MO
				 ? DELIVER_KIND_MO
				 : DELIVER_KIND_RECEIPT;
		item->state = ITEM_READY;
		TAILQ_INSERT_TAIL(&account->ready, item, entry);
		account->depth++;
		kept++;
	}
	store_cursor_close(cursor);
	for (i = 0; i < deliver.count; i++)
		update_depth(&deliver.accounts[i]);
	if (kept > 0 || orphans > 0)
		log_info(0, "server", "deliver-recovered",
		    "items=%zu orphans=%zu", kept, orphans);
}

void
server_deliver_init(struct event_base *base, const struct config *config)
{
	struct timeval period = {DELIVER_SWEEP_US / 1000000, 0};
	struct deliver_account *account;
	size_t i;

	memset(&deliver, 0, sizeof(deliver));
	epoch++;
	deliver.base = base;
	deliver.config = config;
	deliver.turn = 1;
	deliver.count = config->account_count;
	if (deliver.count > 0 && (deliver.accounts = calloc(
				      deliver.count, sizeof(*account))) == NULL)
		fatal("server", "out-of-memory", NULL);
	for (i = 0; i < deliver.count; i++) {
		account = &deliver.accounts[i];
		account->config = config->accounts[i];
		account->index = i;
		account->log_id = account_log_id(account->config->name);
		TAILQ_INIT(&account->ready);
		TAILQ_INIT(&account->waiting);
		TAILQ_INIT(&account->inflight);
		account_register_metrics(account);
	}
	deliver.retry_timer = evtimer_new(base, retry_fired, NULL);
	deliver.sweep_timer = evtimer_new(base, sweep_fired, NULL);
	if (deliver.retry_timer == NULL || deliver.sweep_timer == NULL)
		fatal("server", "out-of-memory", NULL);
	evtimer_add(deliver.sweep_timer, &period);
	deliver_recover();
	if (!observer_added) {
		outbox_add_observer(receipt_observed, NULL);
		observer_added = 1;
	}
	/* nudged's ESMEs become THE route of MO; unmatched ones stay logged. */
}

static void
list_free(struct deliver_list *list)
{
	struct deliver_item *item;

	while ((item = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, item, entry);
		free(item);
	}
}

void
server_deliver_free(void)
{
	size_t i;

	for (i = 0; i < deliver.count; i++) {
		list_free(&deliver.accounts[i].ready);
		list_free(&deliver.accounts[i].waiting);
		list_free(&deliver.accounts[i].inflight);
	}
	free(deliver.accounts);
	deliver.accounts = NULL;
	deliver.count = 0;
	if (deliver.retry_timer != NULL)
		event_free(deliver.retry_timer);
	if (deliver.sweep_timer != NULL)
		event_free(deliver.sweep_timer);
	deliver.retry_timer = deliver.sweep_timer = NULL;
}
