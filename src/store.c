/*
 * store.c - the LMDB store, and the only file that calls LMDB.
 *
 * One environment per data directory, one named database per enum store_db.
 * Every write of one event-loop turn joins ONE write transaction, opened by
 * the first write of the turn and committed once at the end of the turn
 * (group commit); work that promises durability waits in the after-commit
 * queue and learns the commit's result. Each write is also kept in an
 * in-memory op log so that, when the map fills up mid-turn, the dead
 * transaction can be aborted, the map doubled and the turn replayed. Once
 * a second the map's share of RSS is checked and, past [store]
 * map_resident, this process's mapping of its pages is dropped.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <lmdb.h>

#include "nudged.h"

#define DEFAULT_MAP_SIZE     ((size_t)64 * 1024 * 1024)
#define MINIMUM_MAP_SIZE     ((size_t)64 * 1024) /* room for the databases */
#define DEFAULT_MAX_READERS  126
#define SEQUENCE_BLOCK       4096 /* ids reserved per META write */
#define KEY_LIMIT            511  /* LMDB's default maximum key size */
#define GROWTH_ATTEMPTS      32   /* map doublings tried for one turn */
#define OP_LOG_KEPT_CAPACITY ((size_t)16 * 1024 * 1024) /* bytes */
#define SCHEMA_VERSION       1
#define FILE_MODE            0640
#define MAP_CHECK_INTERVAL   1 /* seconds between looks at the map's RSS */

#define nitems(array) (sizeof(array) / sizeof((array)[0]))

/* enum store_db -> LMDB database name; later issues append theirs. */
static const char *const db_names[STORE_DB_COUNT] = {
    [STORE_DB_META] = "meta",
    [STORE_DB_TIMERS] = "timers",
    [STORE_DB_MESSAGES] = "messages",
    [STORE_DB_PARTS] = "parts",
    [STORE_DB_QUEUE] = "queue",
    [STORE_DB_INFLIGHT] = "inflight",
    [STORE_DB_SMSC_IDS] = "smsc-ids",
    [STORE_DB_HELD_RECEIPTS] = "held-receipts",
    [STORE_DB_RECEIPTS] = "receipts",
    [STORE_DB_MO_PARTS] = "mo-parts",
    [STORE_DB_MO] = "mo",
    [STORE_DB_OPTOUT] = "optout",
    [STORE_DB_ESME_QUEUE] = "esme-queue",
    [STORE_DB_PROFILES] = "profiles",
    [STORE_DB_EXTERNAL_IDS] = "external-ids",
    [STORE_DB_EVENTS] = "events",
    [STORE_DB_EVENT_IDS] = "event-ids",
    [STORE_DB_JOURNEYS] = "journeys",
    [STORE_DB_JOURNEYS_BY_NUMBER] = "journeys-by-number",
    [STORE_DB_FLOW_ENTRIES] = "flow-entries",
    [STORE_DB_FLOW_VERSIONS] = "flow-versions",
    [STORE_DB_MESSAGES_BY_NUMBER] = "messages-by-number",
    [STORE_DB_CONSENT] = "consent",
    [STORE_DB_CONSENT_HISTORY] = "consent-history",
    [STORE_DB_CONVERSATIONS] = "conversations",
    [STORE_DB_SENDS] = "sends",
    [STORE_DB_DECISIONS] = "decisions",
};

/* enum store_sequence -> META key holding the end of its reserved block. */
static const char *const sequence_keys[STORE_SEQUENCE_COUNT] = {
    [STORE_SEQUENCE_TIMER] = "sequence/timer",
    [STORE_SEQUENCE_MESSAGE] = "sequence/message",
    [STORE_SEQUENCE_RECEIPT] = "sequence/receipt",
    [STORE_SEQUENCE_MO] = "sequence/mo",
    [STORE_SEQUENCE_ESME_QUEUE] = "sequence/esme-queue",
    [STORE_SEQUENCE_EVENT] = "sequence/event",
    [STORE_SEQUENCE_JOURNEY] = "sequence/journey",
};

static const char schema_key[] = "schema-version";

/* store_put() flags -> LMDB put flags. */
static const struct {
	unsigned int store_flag;
	unsigned int mdb_flag;
} put_flags[] = {
    {STORE_PUT_NO_OVERWRITE, MDB_NOOVERWRITE},
    {STORE_PUT_APPEND, MDB_APPEND},
};

/* LMDB results that are answers, not failures: mapped without a log line. */
static const struct {
	int rc;
	enum store_result result;
} quiet_results[] = {
    {MDB_SUCCESS, STORE_OK},
    {MDB_NOTFOUND, STORE_NOT_FOUND},
    {MDB_KEYEXIST, STORE_EXISTS},
};

enum op_kind {
	OP_PUT = 0,
	OP_DELETE,
};

/* One write of the open transaction, followed by its key and value bytes. */
struct op_record {
	uint32_t key_length;
	uint32_t value_length;
	uint32_t mdb_flags;
	uint8_t db;
	uint8_t kind;
	uint16_t unused;
};

struct after_commit {
	store_after_commit_fn fn;
	void *arg;
	int sealed; /* its commit happened; result is final */
	enum store_result result;
};

struct sequence_state {
	int loaded;
	uint64_t next;
	uint64_t reserved_end; /* durable (or joining this turn) */
};

struct store {
	MDB_env *env;
	MDB_dbi dbis[STORE_DB_COUNT];
	int db_present[STORE_DB_COUNT];
	int read_only;
	unsigned int page_size;
	size_t key_limit;

	MDB_txn *write_txn;
	MDB_txn *read_txn; /* kept between turns, reset and renewed */
	int read_active;
	int turn_failed; /* a write of this turn was lost */
	/* Bumped whenever the transaction reads go through changes. */
	uint64_t view_generation;

	unsigned char *op_log;
	size_t op_log_length;
	size_t op_log_capacity;
	size_t op_count;

	struct after_commit *after_commits;
	size_t after_commit_head;
	size_t after_commit_count;
	size_t after_commit_capacity;
	int running_after_commits;

	struct sequence_state sequences[STORE_SEQUENCE_COUNT];

	struct event *end_of_turn;
	int end_of_turn_scheduled;

	/* The map's share of RSS: see store_trim_map(). */
	char data_file[PATH_MAX];  /* data.mdb, as /proc/self/maps names it */
	size_t map_resident_limit; /* bytes; 0 = never trim */
	size_t file_resident_baseline; /* file-backed RSS at attach */
	size_t map_resident;           /* at the last check */
	struct event *map_check;
	int statm_fd;
	uint64_t map_trims;

	size_t open_cursors;
	uint64_t commits;
	uint64_t records_committed;
	uint64_t map_resizes;
	uint64_t commit_failures;
};

struct store_cursor {
	struct store *store;
	MDB_cursor *cursor;
	enum store_db db;
	uint64_t generation;
	int on_write_txn;
	int positioned; /* key[] holds the key last returned */
	int exhausted;  /* ran past the last key */
	size_t key_length;
	unsigned char key[KEY_LIMIT];
};

static void store_end_of_turn(evutil_socket_t, short, void *);

/* The one mapping from LMDB codes to store results; logs real failures. */
static enum store_result
store_error(int rc, const char *event)
{
	size_t i;

	for (i = 0; i < nitems(quiet_results); i++)
		if (quiet_results[i].rc == rc)
			return quiet_results[i].result;
	log_warnx(0, "store", event, "error=%s", mdb_strerror(rc));
	return STORE_ERROR;
}

/* An MDB_val over caller bytes; LMDB never writes through key or data. */
static MDB_val
make_val(const void *data, size_t length)
{
	MDB_val val;

	val.mv_size = length;
	val.mv_data = (void *)(uintptr_t)data;
	return val;
}

void
store_encode_u64(uint8_t out[8], uint64_t value)
{
	int i;

	for (i = 7; i >= 0; i--) {
		out[i] = (uint8_t)(value & 0xff);
		value >>= 8;
	}
}

uint64_t
store_decode_u64(const uint8_t in[8])
{
	uint64_t value = 0;
	int i;

	for (i = 0; i < 8; i++)
		value = (value << 8) | in[i];
	return value;
}

static int
valid_db(enum store_db db)
{
	if ((unsigned int)db < STORE_DB_COUNT)
		return 1;
	log_warnx(0, "store", "bad-db", "db=%u", (unsigned int)db);
	return 0;
}

static int
valid_key(const struct store *store, enum store_db db, size_t key_length)
{
	if (key_length > 0 && key_length <= store->key_limit)
		return 1;
	log_warnx(0, "store", "bad-key", "db=%s length=%zu limit=%zu",
	    db_names[db], key_length, store->key_limit);
	return 0;
}

/*
 * Why an event with no fd, activated by hand: libevent 2.1 appends an
 * activated event to the TAIL of the active queue of its priority, and the
 * loop keeps taking the queue's head until it is empty. So when the first
 * write of a turn activates this event, it runs after every callback that
 * was already active in this loop iteration (and after any activated later
 * in it): the commit closes the turn. This holds only while every event
 * has the same priority, so nothing here sets one.
 */
static void
schedule_end_of_turn(struct store *store)
{
	if (store->end_of_turn == NULL || store->end_of_turn_scheduled)
		return;
	store->end_of_turn_scheduled = 1;
	event_active(store->end_of_turn, 0, 0);
}

/* The event_active() callback: commit the turn, run its waiters. */
static void
store_end_of_turn(evutil_socket_t fd, short what, void *arg)
{
	struct store *store = arg;

	store->end_of_turn_scheduled = 0;
	store_commit(store);
}

/*
 * Begins (or renews, for the kept read transaction) a transaction, adopting
 * a map another process grew and clearing stale reader slots once each.
 */
static int
txn_start(struct store *store, unsigned int flags, MDB_txn **txn)
{
	int adopted_map = 0, checked_readers = 0, dead, rc;

	for (;;) {
		if (*txn != NULL)
			rc = mdb_txn_renew(*txn);
		else
			rc = mdb_txn_begin(store->env, NULL, flags, txn);
		if (rc == MDB_MAP_RESIZED && !adopted_map) {
			adopted_map = 1;
			rc = mdb_env_set_mapsize(store->env, 0);
			if (rc != 0)
				return rc;
			log_info(0, "store", "map-adopted", NULL);
			continue;
		}
		if (rc == MDB_READERS_FULL && !checked_readers) {
			checked_readers = 1;
			dead = 0;
			rc = mdb_reader_check(store->env, &dead);
			if (rc != 0)
				return rc;
			log_info(
			    0, "store", "readers-checked", "dead=%d", dead);
			continue;
		}
		return rc;
	}
}

/* Ends the read snapshot so the writer can reuse the pages it pins. */
static void
reset_read_view(struct store *store)
{
	if (!store->read_active)
		return;
	mdb_txn_reset(store->read_txn);
	store->read_active = 0;
	store->view_generation++;
}

/* The transaction reads go through: the turn's write txn, else a snapshot. */
static enum store_result
read_view(struct store *store, MDB_txn **txn)
{
	int rc;

	if (store->write_txn != NULL) {
		*txn = store->write_txn;
		return STORE_OK;
	}
	if (!store->read_active) {
		rc = txn_start(store, MDB_RDONLY, &store->read_txn);
		if (rc != 0)
			return store_error(rc, "read-begin-failed");
		store->read_active = 1;
		/* Why: the snapshot must not outlive the turn. */
		schedule_end_of_turn(store);
	}
	*txn = store->read_txn;
	return STORE_OK;
}

/* Doubles the map; only between write transactions, with no snapshot. */
static enum store_result
grow_map(struct store *store)
{
	MDB_envinfo info;
	size_t new_size;
	int rc;

	reset_read_view(store);
	if ((rc = mdb_env_info(store->env, &info)) != 0)
		return store_error(rc, "env-info-failed");
	if (info.me_mapsize > SIZE_MAX / 2) {
		log_warnx(0, "store", "map-grow-failed", "size=%zu",
		    (size_t)info.me_mapsize);
		return STORE_ERROR;
	}
	new_size = info.me_mapsize * 2;
	if ((rc = mdb_env_set_mapsize(store->env, new_size)) != 0)
		return store_error(rc, "map-grow-failed");
	store->map_resizes++;
	store->view_generation++;
	log_info(0, "store", "map-grown", "from=%zu to=%zu",
	    (size_t)info.me_mapsize, new_size);
	return STORE_OK;
}

/* True when the pages in use exceed three quarters of the map. */
static int
map_nearly_full(struct store *store)
{
	MDB_envinfo info;
	size_t used;
	int rc;

	if ((rc = mdb_env_info(store->env, &info)) != 0) {
		store_error(rc, "env-info-failed");
		return 0;
	}
	used = ((size_t)info.me_last_pgno + 1) * store->page_size;
	return used > info.me_mapsize / 4 * 3;
}

/* Opens the turn's write transaction on its first write. */
static enum store_result
begin_write(struct store *store)
{
	MDB_txn *txn = NULL;
	int rc;

	if (store->write_txn != NULL)
		return STORE_OK;
	/* Why: one txn per thread at a time, and growth needs no snapshot. */
	reset_read_view(store);
	if (map_nearly_full(store))
		grow_map(store); /* a failure shows up as MDB_MAP_FULL */
	if ((rc = txn_start(store, 0, &txn)) != 0)
		return store_error(rc, "write-begin-failed");
	store->write_txn = txn;
	store->view_generation++;
	schedule_end_of_turn(store);
	return STORE_OK;
}

static struct op_record *
record_at(struct store *store, size_t offset)
{
	return (struct op_record *)(void *)(store->op_log + offset);
}

static size_t
record_size(const struct op_record *record)
{
	size_t size;

	size = sizeof(*record) + record->key_length + record->value_length;
	return (size + 7) & ~(size_t)7;
}

/* Copies a write into the op log; returns its offset, or SIZE_MAX. */
static size_t
append_record(struct store *store, enum op_kind kind, enum store_db db,
    const void *key, size_t key_length, const void *value, size_t value_length,
    unsigned int mdb_flags)
{
	struct op_record *record;
	unsigned char *grown;
	size_t offset, size, capacity;

	if (value_length > UINT32_MAX - KEY_LIMIT - 64) {
		log_warnx(
		    0, "store", "value-too-large", "length=%zu", value_length);
		return SIZE_MAX;
	}
	size = (sizeof(*record) + key_length + value_length + 7) & ~(size_t)7;
	offset = store->op_log_length;
	if (size > store->op_log_capacity - offset) {
		capacity =
		    store->op_log_capacity ? store->op_log_capacity : 64 * 1024;
		while (capacity - offset < size)
			capacity *= 2;
		if ((grown = realloc(store->op_log, capacity)) == NULL) {
			log_warnx(0, "store", "op-log-failed", "error=%s",
			    strerror(errno));
			return SIZE_MAX;
		}
		store->op_log = grown;
		store->op_log_capacity = capacity;
	}
	record = record_at(store, offset);
	record->key_length = (uint32_t)key_length;
	record->value_length = (uint32_t)value_length;
	record->mdb_flags = mdb_flags;
	record->db = (uint8_t)db;
	record->kind = (uint8_t)kind;
	record->unused = 0;
	memcpy(record + 1, key, key_length);
	if (value_length > 0)
		memcpy((unsigned char *)(record + 1) + key_length, value,
		    value_length);
	store->op_log_length = offset + size;
	return offset;
}

/* Applies one logged write to the open write transaction. */
static int
apply_record(struct store *store, size_t offset)
{
	struct op_record *record = record_at(store, offset);
	unsigned char *bytes = (unsigned char *)(record + 1);
	MDB_val key, value;

	key.mv_size = record->key_length;
	key.mv_data = bytes;
	if (record->kind == OP_DELETE)
		return mdb_del(
		    store->write_txn, store->dbis[record->db], &key, NULL);
	value.mv_size = record->value_length;
	value.mv_data = bytes + record->key_length;
	return mdb_put(store->write_txn, store->dbis[record->db], &key, &value,
	    record->mdb_flags);
}

/* Closes the write transaction without committing it. */
static void
abort_write(struct store *store)
{
	if (store->write_txn == NULL)
		return;
	mdb_txn_abort(store->write_txn);
	store->write_txn = NULL;
	store->view_generation++;
}

/*
 * The open transaction hit MDB_MAP_FULL and is dead: abort it, double the
 * map and replay the turn's writes before `end` into a new transaction.
 */
static enum store_result
grow_and_replay(struct store *store, size_t end)
{
	size_t offset;
	int attempt, rc = 0;

	for (attempt = 0; attempt < GROWTH_ATTEMPTS; attempt++) {
		abort_write(store);
		if (grow_map(store) != STORE_OK)
			return STORE_ERROR;
		if ((rc = txn_start(store, 0, &store->write_txn)) != 0) {
			store->write_txn = NULL;
			return store_error(rc, "write-begin-failed");
		}
		store->view_generation++;
		for (offset = 0; offset < end;
		     offset += record_size(record_at(store, offset)))
			if ((rc = apply_record(store, offset)) != 0)
				break;
		if (rc != MDB_MAP_FULL)
			break;
	}
	if (rc == MDB_MAP_FULL) {
		log_warnx(0, "store", "map-full", "attempts=%d", attempt);
		return STORE_ERROR;
	}
	if (rc != 0)
		return store_error(rc, "replay-failed");
	return STORE_OK;
}

/*
 * Forgets reservations that may not reach the disk, so the next id of each
 * sequence reserves (and writes) a block again: a later commit must never
 * carry ids beyond the durable reserved end.
 */
static void
forget_reservations(struct store *store)
{
	size_t i;

	for (i = 0; i < nitems(store->sequences); i++)
		if (store->sequences[i].loaded)
			store->sequences[i].reserved_end =
			    store->sequences[i].next - 1;
}

/* A write of this turn was lost: the rest of the turn must not commit. */
static void
fail_turn(struct store *store)
{
	abort_write(store);
	store->turn_failed = 1;
	store->op_log_length = 0;
	store->op_count = 0;
	forget_reservations(store);
}

void
store_fail_turn(struct store *store, const char *reason)
{
	log_warnx(0, "store", "turn-failed", "reason=%s", reason);
	fail_turn(store);
}

/* The single write path of store_put() and store_delete(). */
static enum store_result
write_op(struct store *store, enum op_kind kind, enum store_db db,
    const void *key, size_t key_length, const void *value, size_t value_length,
    unsigned int mdb_flags)
{
	enum store_result result;
	size_t offset;
	int rc;

	if (!valid_db(db) || !valid_key(store, db, key_length))
		return STORE_ERROR;
	if (store->read_only) {
		log_warnx(0, "store", "write-refused", "db=%s reason=read-only",
		    db_names[db]);
		return STORE_ERROR;
	}
	if (store->turn_failed) {
		log_debug(0, "store", "write-dropped", "db=%s", db_names[db]);
		return STORE_ERROR;
	}
	/*
	 * Why copy first, even before the transaction begins: the op log is
	 * what a replay after map growth re-applies, and the caller's bytes
	 * may point into the map (a value from store_get()) that a growth,
	 * proactive in begin_write() or forced by MDB_MAP_FULL, unmaps.
	 */
	offset = append_record(
	    store, kind, db, key, key_length, value, value_length, mdb_flags);
	if (offset == SIZE_MAX)
		return STORE_ERROR;
	if ((result = begin_write(store)) != STORE_OK) {
		store->op_log_length = offset;
		return result;
	}
	while ((rc = apply_record(store, offset)) == MDB_MAP_FULL) {
		if (grow_and_replay(store, offset) != STORE_OK) {
			fail_turn(store);
			return STORE_ERROR;
		}
	}
	if (rc == 0) {
		store->op_count++;
		return STORE_OK;
	}
	store->op_log_length = offset; /* not applied: not to be replayed */
	if (rc == MDB_KEYEXIST && (mdb_flags & MDB_APPEND) &&
	    !(mdb_flags & MDB_NOOVERWRITE)) {
		log_warnx(
		    0, "store", "append-out-of-order", "db=%s", db_names[db]);
		return STORE_ERROR;
	}
	if (rc == MDB_NOTFOUND || rc == MDB_KEYEXIST)
		return store_error(rc, "write-failed");
	fail_turn(store);
	return store_error(rc, kind == OP_PUT ? "put-failed" : "delete-failed");
}

/* Commits the turn's transaction, growing the map and replaying if needed. */
static enum store_result
commit_write(struct store *store)
{
	enum store_result result = STORE_OK;
	int attempt, rc = 0;

	if (store->turn_failed) {
		result = STORE_ERROR;
		goto done;
	}
	if (store->write_txn == NULL)
		return STORE_OK;
	for (attempt = 0; attempt < GROWTH_ATTEMPTS; attempt++) {
		rc = mdb_txn_commit(store->write_txn);
		/* A failed commit frees the transaction too. */
		store->write_txn = NULL;
		store->view_generation++;
		if (rc != MDB_MAP_FULL)
			break;
		if (grow_and_replay(store, store->op_log_length) != STORE_OK) {
			abort_write(store);
			result = STORE_ERROR;
			goto done;
		}
	}
	if (rc != 0) {
		abort_write(store);
		result = store_error(rc, "commit-failed");
		goto done;
	}
	store->commits++;
	store->records_committed += store->op_count;
done:
	if (result != STORE_OK) {
		store->commit_failures++;
		forget_reservations(store);
	}
	store->turn_failed = 0;
	store->op_log_length = 0;
	store->op_count = 0;
	/* The log is reused across turns, but not kept at a giant's size. */
	if (store->op_log_capacity > OP_LOG_KEPT_CAPACITY) {
		free(store->op_log);
		store->op_log = NULL;
		store->op_log_capacity = 0;
	}
	return result;
}

/* Gives every waiter queued so far the result of the commit just made. */
static void
seal_after_commits(struct store *store, enum store_result result)
{
	size_t i;

	for (i = store->after_commit_head; i < store->after_commit_count; i++) {
		if (store->after_commits[i].sealed)
			continue;
		store->after_commits[i].sealed = 1;
		store->after_commits[i].result = result;
	}
}

/*
 * Runs sealed waiters in queue order. A waiter may queue more work or even
 * commit again; the outermost call keeps draining, so order holds.
 */
static void
run_after_commits(struct store *store)
{
	struct after_commit entry;
	size_t remaining;

	if (store->running_after_commits)
		return;
	store->running_after_commits = 1;
	while (store->after_commit_head < store->after_commit_count &&
	       store->after_commits[store->after_commit_head].sealed) {
		entry = store->after_commits[store->after_commit_head++];
		entry.fn(entry.arg, entry.result);
	}
	remaining = store->after_commit_count - store->after_commit_head;
	if (remaining > 0 && store->after_commit_head > 0)
		memmove(store->after_commits,
		    store->after_commits + store->after_commit_head,
		    remaining * sizeof(*store->after_commits));
	store->after_commit_head = 0;
	store->after_commit_count = remaining;
	store->running_after_commits = 0;
}

/* Creates (or, read-only, finds) the named databases; checks the schema. */
static enum store_result
open_databases(struct store *store)
{
	unsigned char version[8];
	MDB_txn *txn = NULL;
	MDB_val key, value;
	unsigned int flags;
	size_t db;
	int rc;

	flags = store->read_only ? MDB_RDONLY : 0;
	if ((rc = txn_start(store, flags, &txn)) != 0)
		return store_error(rc, "open-begin-failed");
	for (db = 0; db < STORE_DB_COUNT; db++) {
		if (db_names[db] == NULL) {
			log_warnx(0, "store", "db-unnamed", "db=%zu", db);
			goto fail;
		}
		rc = mdb_dbi_open(txn, db_names[db],
		    store->read_only ? 0 : MDB_CREATE, &store->dbis[db]);
		if (rc == MDB_NOTFOUND && store->read_only)
			continue; /* not created yet by this version */
		if (store_error(rc, "db-open-failed") != STORE_OK)
			goto fail;
		store->db_present[db] = 1;
	}
	if (!store->db_present[STORE_DB_META])
		goto done;
	key = make_val(schema_key, sizeof(schema_key) - 1);
	rc = mdb_get(txn, store->dbis[STORE_DB_META], &key, &value);
	if (rc == MDB_NOTFOUND && !store->read_only) {
		store_encode_u64(version, SCHEMA_VERSION);
		value = make_val(version, sizeof(version));
		rc = mdb_put(txn, store->dbis[STORE_DB_META], &key, &value, 0);
		if (store_error(rc, "schema-write-failed") != STORE_OK)
			goto fail;
	} else if (rc == 0) {
		if (value.mv_size != 8 ||
		    store_decode_u64(value.mv_data) > SCHEMA_VERSION) {
			log_warnx(0, "store", "schema-unsupported",
			    "supported=%d", SCHEMA_VERSION);
			goto fail;
		}
	} else if (rc != MDB_NOTFOUND) {
		store_error(rc, "schema-read-failed");
		goto fail;
	}
done:
	/* Committing keeps the database handles (also for read-only). */
	rc = mdb_txn_commit(txn);
	return store_error(rc, "open-commit-failed");
fail:
	mdb_txn_abort(txn);
	return STORE_ERROR;
}

/* Sizes the map: a fresh environment takes the configured size exactly,
 * an existing one keeps the larger of its stored and the configured size. */
static enum store_result
size_map(struct store *store, size_t initial_map_size)
{
	MDB_envinfo info;
	size_t target;
	int rc;

	if ((rc = mdb_env_info(store->env, &info)) != 0)
		return store_error(rc, "env-info-failed");
	target = initial_map_size > MINIMUM_MAP_SIZE ? initial_map_size
						     : MINIMUM_MAP_SIZE;
	if (info.me_last_txnid != 0 && info.me_mapsize > target)
		target = info.me_mapsize;
	if (target == info.me_mapsize)
		return STORE_OK;
	rc = mdb_env_set_mapsize(store->env, target);
	return store_error(rc, "map-size-failed");
}

struct store *
store_open(const struct store_options *options)
{
	struct store *store = NULL;
	struct stat st;
	MDB_stat env_stat;
	unsigned int flags;
	int dead, rc, max_key;

	if (options == NULL || options->path == NULL) {
		log_warnx(0, "store", "open-failed", "error=no-path");
		return NULL;
	}
	if (stat(options->path, &st) == -1) {
		log_warnx(0, "store", "open-failed",
		    "path=%s error=\"data directory: %s\"", options->path,
		    strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_warnx(0, "store", "open-failed",
		    "path=%s error=\"data directory: not a directory\"",
		    options->path);
		return NULL;
	}
	if ((store = calloc(1, sizeof(*store))) == NULL) {
		log_warnx(
		    0, "store", "open-failed", "error=%s", strerror(errno));
		return NULL;
	}
	store->read_only = options->read_only != 0;
	store->map_resident_limit = options->map_resident_limit;
	if (realpath(options->path, store->data_file) == NULL ||
	    strlen(store->data_file) + sizeof("/data.mdb") >
		sizeof(store->data_file)) {
		log_warnx(0, "store", "open-failed", "path=%s error=realpath",
		    options->path);
		goto fail;
	}
	strcat(store->data_file, "/data.mdb");
	store->statm_fd = -1;
	if ((rc = mdb_env_create(&store->env)) != 0) {
		store_error(rc, "env-create-failed");
		goto fail;
	}
	rc = mdb_env_set_maxdbs(store->env, STORE_DB_COUNT);
	if (store_error(rc, "env-maxdbs-failed") != STORE_OK)
		goto fail;
	rc = mdb_env_set_maxreaders(store->env,
	    options->max_readers ? options->max_readers : DEFAULT_MAX_READERS);
	if (store_error(rc, "env-maxreaders-failed") != STORE_OK)
		goto fail;
	flags = (store->read_only ? MDB_RDONLY : 0) |
		(options->no_sync ? MDB_NOSYNC : 0);
	rc = mdb_env_open(store->env, options->path, flags, FILE_MODE);
	if (rc != 0) {
		log_warnx(0, "store", "open-failed", "path=%s error=%s",
		    options->path, mdb_strerror(rc));
		goto fail;
	}
	if (!store->read_only) {
		/* Slots left by a crashed nudged would pin old pages. */
		rc = mdb_reader_check(store->env, &dead);
		if (store_error(rc, "reader-check-failed") != STORE_OK)
			goto fail;
		if (size_map(store, options->initial_map_size
					? options->initial_map_size
					: DEFAULT_MAP_SIZE) != STORE_OK)
			goto fail;
	}
	rc = mdb_env_stat(store->env, &env_stat);
	if (store_error(rc, "env-stat-failed") != STORE_OK)
		goto fail;
	store->page_size = env_stat.ms_psize;
	max_key = mdb_env_get_maxkeysize(store->env);
	store->key_limit =
	    max_key > 0 && max_key < KEY_LIMIT ? (size_t)max_key : KEY_LIMIT;
	if (open_databases(store) != STORE_OK)
		goto fail;
	log_info(0, "store", "opened", "path=%s read_only=%d", options->path,
	    store->read_only);
	return store;
fail:
	if (store->env != NULL)
		mdb_env_close(store->env);
	free(store);
	return NULL;
}

void
store_close(struct store *store)
{
	if (store == NULL)
		return;
	/* Pending writes and their waiters are settled, not dropped. */
	if (store_has_pending(store))
		store_commit(store);
	if (store->open_cursors > 0)
		log_warnx(0, "store", "cursors-left-open", "count=%zu",
		    store->open_cursors);
	if (store->end_of_turn != NULL)
		event_free(store->end_of_turn);
	if (store->map_check != NULL)
		event_free(store->map_check);
	if (store->statm_fd != -1)
		close(store->statm_fd);
	if (store->read_txn != NULL)
		mdb_txn_abort(store->read_txn);
	mdb_env_close(store->env);
	free(store->op_log);
	free(store->after_commits);
	free(store);
}

/* This process's file-backed resident bytes (RssFile + RssShmem), or 0. */
static size_t
file_resident_bytes(struct store *store)
{
	char text[128];
	unsigned long long size, resident, shared;
	ssize_t length;

	if (store->statm_fd == -1 && (store->statm_fd = open("/proc/self/statm",
					  O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	length = pread(store->statm_fd, text, sizeof(text) - 1, 0);
	if (length <= 0)
		return 0;
	text[length] = '\0';
	if (sscanf(text, "%llu %llu %llu", &size, &resident, &shared) != 3)
		return 0;
	return (size_t)shared * (size_t)sysconf(_SC_PAGESIZE);
}

/* The map's share of RSS: file-backed RSS beyond the binary's and libs'. */
static size_t
map_resident_bytes(struct store *store)
{
	size_t file_resident = file_resident_bytes(store);

	return file_resident > store->file_resident_baseline
		   ? file_resident - store->file_resident_baseline
		   : 0;
}

/*
 * Lets go of the pages of the LMDB map this process has mapped. Why: a
 * read through the map maps not one page but the pages around it that are
 * in the page cache (the kernel's fault-around, 16 pages, and MADV_RANDOM
 * does not stop it), and LMDB writes every page it commits into the page
 * cache. So each commit's first read of a table maps a run of pages written
 * moments before, and the map's share of RSS grows with the store's
 * history, not with what nudged reads: with 200,000 journeys created, 756
 * page faults had mapped 11,015 pages (240 MB at a million). MADV_DONTNEED
 * on a shared, read-only file map only drops this process's page-table
 * entries: the data stays in the file and the page cache, pointers into
 * the map stay valid, and the next read of a page is a minor fault. LMDB
 * never writes through this map (no MDB_WRITEMAP), so nothing is lost.
 */
int
store_trim_map(struct store *store)
{
	char line[PATH_MAX + 128];
	FILE *maps;
	unsigned long start, end;
	size_t length, file_length = strlen(store->data_file);
	int trimmed = 0, failed = 0;

	/* LMDB does not tell where it mapped the file (me_mapaddr is only
	 * MDB_FIXEDMAP's address): the kernel does. */
	if ((maps = fopen("/proc/self/maps", "re")) == NULL) {
		log_warnx(
		    0, "store", "map-trim-failed", "error=%s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), maps) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		length = strlen(line);
		if (length <= file_length ||
		    strcmp(line + length - file_length, store->data_file) !=
			0 ||
		    line[length - file_length - 1] != ' ' ||
		    sscanf(line, "%lx-%lx", &start, &end) != 2)
			continue;
		if (madvise((void *)start, end - start, MADV_DONTNEED) == -1) {
			log_warnx(0, "store", "map-trim-failed", "error=%s",
			    strerror(errno));
			failed = 1;
			continue;
		}
		trimmed = 1;
	}
	fclose(maps);
	if (failed || !trimmed)
		return -1;
	store->map_trims++;
	return 0;
}

/* Once a second: trims the map when its share of RSS passed the limit. */
static void
store_map_check(evutil_socket_t fd, short what, void *arg)
{
	struct store *store = arg;
	size_t before;

	(void)fd;
	(void)what;
	store->map_resident = map_resident_bytes(store);
	if (store->map_resident <= store->map_resident_limit)
		return;
	before = store->map_resident;
	if (store_trim_map(store) == -1)
		return;
	store->map_resident = map_resident_bytes(store);
	log_info(0, "store", "map-trimmed",
	    "resident_before=%zu resident_after=%zu limit=%zu", before,
	    store->map_resident, store->map_resident_limit);
}

void
store_attach(struct store *store, struct event_base *base)
{
	struct timeval interval = {MAP_CHECK_INTERVAL, 0};

	if (store->end_of_turn != NULL) {
		event_free(store->end_of_turn);
		store->end_of_turn = NULL;
		store->end_of_turn_scheduled = 0;
	}
	if (store->map_check != NULL) {
		event_free(store->map_check);
		store->map_check = NULL;
	}
	if (base == NULL)
		return;
	if (!store->read_only && store->map_resident_limit > 0) {
		/* The binary and libraries: file-backed, but not the map. */
		store->file_resident_baseline = file_resident_bytes(store);
		store->map_check =
		    event_new(base, -1, EV_PERSIST, store_map_check, store);
		if (store->map_check == NULL ||
		    event_add(store->map_check, &interval) == -1)
			fatalx("store", "attach-failed", "error=map_check");
	}
	/* Default priority, like every other event of the loop (see above). */
	store->end_of_turn = event_new(base, -1, 0, store_end_of_turn, store);
	if (store->end_of_turn == NULL)
		fatalx("store", "attach-failed", "error=event_new");
	if (store_has_pending(store) || store->read_active)
		schedule_end_of_turn(store);
}

enum store_result
store_put(struct store *store, enum store_db db, const void *key,
    size_t key_length, const void *value, size_t value_length,
    unsigned int flags)
{
	unsigned int mdb_flags = 0;
	size_t i;

	for (i = 0; i < nitems(put_flags); i++)
		if (flags & put_flags[i].store_flag)
			mdb_flags |= put_flags[i].mdb_flag;
	return write_op(
	    store, OP_PUT, db, key, key_length, value, value_length, mdb_flags);
}

enum store_result
store_delete(
    struct store *store, enum store_db db, const void *key, size_t key_length)
{
	return write_op(store, OP_DELETE, db, key, key_length, NULL, 0, 0);
}

enum store_result
store_get(struct store *store, enum store_db db, const void *key,
    size_t key_length, const void **value, size_t *value_length)
{
	enum store_result result;
	MDB_txn *txn;
	MDB_val k, v;

	if (!valid_db(db) || !valid_key(store, db, key_length))
		return STORE_ERROR;
	if (!store->db_present[db])
		return STORE_NOT_FOUND;
	if ((result = read_view(store, &txn)) != STORE_OK)
		return result;
	k = make_val(key, key_length);
	result =
	    store_error(mdb_get(txn, store->dbis[db], &k, &v), "get-failed");
	if (result != STORE_OK)
		return result;
	if (value != NULL)
		*value = v.mv_data;
	if (value_length != NULL)
		*value_length = v.mv_size;
	return STORE_OK;
}

/* Reads a sequence's durable reserved end; ids after a restart follow it. */
static enum store_result
load_sequence(struct store *store, enum store_sequence sequence)
{
	struct sequence_state *state = &store->sequences[sequence];
	const char *key = sequence_keys[sequence];
	enum store_result result;
	const void *value;
	size_t length;
	uint64_t end = 0;

	result =
	    store_get(store, STORE_DB_META, key, strlen(key), &value, &length);
	if (result == STORE_OK) {
		if (length != 8) {
			log_warnx(0, "store", "sequence-corrupt",
			    "sequence=%s length=%zu", key, length);
			return STORE_ERROR;
		}
		end = store_decode_u64(value);
	} else if (result != STORE_NOT_FOUND)
		return result;
	state->next = end + 1;
	state->reserved_end = end;
	state->loaded = 1;
	return STORE_OK;
}

uint64_t
store_sequence_next(struct store *store, enum store_sequence sequence)
{
	struct sequence_state *state;
	unsigned char encoded[8];
	const char *key;
	uint64_t end;

	if ((unsigned int)sequence >= STORE_SEQUENCE_COUNT) {
		log_warnx(0, "store", "bad-sequence", "sequence=%u",
		    (unsigned int)sequence);
		return 0;
	}
	state = &store->sequences[sequence];
	if (!state->loaded && load_sequence(store, sequence) != STORE_OK)
		return 0;
	if (state->next > state->reserved_end) {
		/*
		 * Why reserve ahead: the block's end joins this turn's
		 * transaction, so any commit carrying one of these ids also
		 * carries the reservation, and a restart resumes after it.
		 */
		key = sequence_keys[sequence];
		end = state->next + SEQUENCE_BLOCK - 1;
		store_encode_u64(encoded, end);
		if (store_put(store, STORE_DB_META, key, strlen(key), encoded,
			sizeof(encoded), 0) != STORE_OK)
			return 0;
		state->reserved_end = end;
	}
	return state->next++;
}

void
store_after_commit(struct store *store, store_after_commit_fn fn, void *arg)
{
	struct after_commit *grown;
	size_t capacity;

	if (store->after_commit_count == store->after_commit_capacity) {
		capacity = store->after_commit_capacity
			       ? store->after_commit_capacity * 2
			       : 64;
		grown = reallocarray(
		    store->after_commits, capacity, sizeof(*grown));
		if (grown == NULL) {
			/* Refuse honestly rather than promise. */
			log_warnx(0, "store", "after-commit-failed", "error=%s",
			    strerror(errno));
			fn(arg, STORE_ERROR);
			return;
		}
		store->after_commits = grown;
		store->after_commit_capacity = capacity;
	}
	store->after_commits[store->after_commit_count++] =
	    (struct after_commit){fn, arg, 0, STORE_OK};
	schedule_end_of_turn(store);
}

enum store_result
store_commit(struct store *store)
{
	enum store_result result;

	result = commit_write(store);
	reset_read_view(store);
	seal_after_commits(store, result);
	run_after_commits(store);
	return result;
}

int
store_has_pending(const struct store *store)
{
	return store->write_txn != NULL || store->turn_failed ||
	       store->after_commit_count > store->after_commit_head;
}

/* (Re)binds a cursor to the store's current view; a cursor survives a
 * commit, a snapshot reset or a replay by seeking back to its key. */
static enum store_result
cursor_bind(struct store_cursor *cursor, int *rebound)
{
	struct store *store = cursor->store;
	enum store_result result;
	MDB_txn *txn;
	int rc;

	*rebound = 0;
	if (cursor->cursor != NULL &&
	    cursor->generation == store->view_generation)
		return STORE_OK;
	if (cursor->cursor != NULL && !cursor->on_write_txn)
		mdb_cursor_close(cursor->cursor);
	/* A write transaction's cursors were freed when it ended. */
	cursor->cursor = NULL;
	if ((result = read_view(store, &txn)) != STORE_OK)
		return result;
	rc = mdb_cursor_open(txn, store->dbis[cursor->db], &cursor->cursor);
	if (rc != 0) {
		cursor->cursor = NULL;
		return store_error(rc, "cursor-open-failed");
	}
	cursor->on_write_txn = txn == store->write_txn;
	cursor->generation = store->view_generation;
	*rebound = 1;
	return STORE_OK;
}

/* Remembers the key found (to re-seek after a rebind) and hands it out. */
static enum store_result
cursor_found(struct store_cursor *cursor, const MDB_val *key,
    const MDB_val *value, const void **found_key, size_t *found_key_length,
    const void **found_value, size_t *value_length)
{
	memmove(cursor->key, key->mv_data, key->mv_size);
	cursor->key_length = key->mv_size;
	cursor->positioned = 1;
	cursor->exhausted = 0;
	if (found_key != NULL)
		*found_key = key->mv_data;
	if (found_key_length != NULL)
		*found_key_length = key->mv_size;
	if (found_value != NULL)
		*found_value = value->mv_data;
	if (value_length != NULL)
		*value_length = value->mv_size;
	return STORE_OK;
}

/* No key there (the end) or a failure: the cursor stays unpositioned. */
static enum store_result
cursor_missed(struct store_cursor *cursor, int rc)
{
	cursor->positioned = 0;
	cursor->exhausted = rc == MDB_NOTFOUND;
	return store_error(rc, "cursor-get-failed");
}

enum store_result
store_cursor_open(
    struct store *store, enum store_db db, struct store_cursor **cursor)
{
	struct store_cursor *opened;
	enum store_result result;
	int rebound;

	*cursor = NULL;
	if (!valid_db(db))
		return STORE_ERROR;
	if (!store->db_present[db])
		return STORE_NOT_FOUND;
	if ((opened = calloc(1, sizeof(*opened))) == NULL) {
		log_warnx(0, "store", "cursor-open-failed", "error=%s",
		    strerror(errno));
		return STORE_ERROR;
	}
	opened->store = store;
	opened->db = db;
	if ((result = cursor_bind(opened, &rebound)) != STORE_OK) {
		free(opened);
		return result;
	}
	store->open_cursors++;
	*cursor = opened;
	return STORE_OK;
}

enum store_result
store_cursor_seek(struct store_cursor *cursor, const void *key,
    size_t key_length, const void **found_key, size_t *found_key_length,
    const void **value, size_t *value_length)
{
	enum store_result result;
	MDB_val k, v;
	int rc, rebound;

	/* An empty key sorts before every key: seek to the first. */
	if (key_length != 0 &&
	    !valid_key(cursor->store, cursor->db, key_length))
		return STORE_ERROR;
	if ((result = cursor_bind(cursor, &rebound)) != STORE_OK)
		return result;
	k = make_val(key, key_length);
	rc = mdb_cursor_get(cursor->cursor, &k, &v,
	    key_length == 0 ? MDB_FIRST : MDB_SET_RANGE);
	if (rc != 0)
		return cursor_missed(cursor, rc);
	return cursor_found(
	    cursor, &k, &v, found_key, found_key_length, value, value_length);
}

enum store_result
store_cursor_next(struct store_cursor *cursor, const void **found_key,
    size_t *found_key_length, const void **value, size_t *value_length)
{
	enum store_result result;
	MDB_val k, v;
	int rc, rebound;

	if (cursor->exhausted)
		return STORE_NOT_FOUND;
	if ((result = cursor_bind(cursor, &rebound)) != STORE_OK)
		return result;
	if (rebound && cursor->positioned) {
		/* Back to the last key returned, or past it if it is gone. */
		k.mv_size = cursor->key_length;
		k.mv_data = cursor->key;
		rc = mdb_cursor_get(cursor->cursor, &k, &v, MDB_SET_RANGE);
		if (rc == 0 &&
		    (k.mv_size != cursor->key_length ||
			memcmp(k.mv_data, cursor->key, k.mv_size) != 0))
			return cursor_found(cursor, &k, &v, found_key,
			    found_key_length, value, value_length);
		if (rc != 0)
			return cursor_missed(cursor, rc);
	}
	rc = mdb_cursor_get(cursor->cursor, &k, &v, MDB_NEXT);
	if (rc != 0)
		return cursor_missed(cursor, rc);
	return cursor_found(
	    cursor, &k, &v, found_key, found_key_length, value, value_length);
}

void
store_cursor_close(struct store_cursor *cursor)
{
	struct store *store;

	if (cursor == NULL)
		return;
	store = cursor->store;
	/* Only a cursor of a live transaction is still LMDB's to close. */
	if (cursor->cursor != NULL &&
	    (!cursor->on_write_txn ||
		cursor->generation == store->view_generation))
		mdb_cursor_close(cursor->cursor);
	store->open_cursors--;
	free(cursor);
}

void
store_get_stats(const struct store *store, struct store_stats *stats)
{
	MDB_envinfo info;
	int rc;

	memset(stats, 0, sizeof(*stats));
	if ((rc = mdb_env_info(store->env, &info)) == 0) {
		stats->map_size = info.me_mapsize;
		stats->used_bytes =
		    ((size_t)info.me_last_pgno + 1) * store->page_size;
	} else
		store_error(rc, "env-info-failed");
	stats->commits = store->commits;
	stats->records_committed = store->records_committed;
	stats->map_resizes = store->map_resizes;
	stats->commit_failures = store->commit_failures;
	stats->map_resident = store->map_resident;
	stats->map_trims = store->map_trims;
}
