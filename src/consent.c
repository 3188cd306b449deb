/*
 * consent.c - SMS consent per number. STORE_DB_CONSENT holds the current
 * record (state, source, wording version, time); STORE_DB_CONSENT_HISTORY
 * gets one row per change, keyed digits NUL time, never overwritten. The
 * opt-out list (optout.c) is kept in step: UNSUBSCRIBED and PENDING numbers
 * are on it (no marketing until a double opt-in is confirmed), SUBSCRIBED
 * ones are not, so every producer - relayed ESME traffic too - obeys it.
 *
 * Double opt-in sends "Reply Y to confirm" (keyword.c answers the Y).
 * Smart opt-in sends a 6-digit code confirmed through the API; only a salted
 * SHA-256 of the code is stored (STORE_DB_META "consent-code/DIGITS"), with
 * its expiry and a count of wrong attempts.
 *
 * HTTP: GET/PUT /v1/profiles/{number}/consent, POST .../consent/confirm
 * (reached through api_event.c, which owns the /v1/profiles/ prefix and
 * hands the /consent sub-resource here), POST /v1/consent/import (CSV).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <csv.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "nudged.h"

#define CONSENT_KEY_MAX           24
#define CONSENT_RECORD_VERSION    1
#define CONSENT_CODE_PREFIX       "consent-code/"
#define CONSENT_HISTORY_MAX       1000 /* rows returned by GET */
#define CONSENT_IMPORT_ERRORS_MAX 100  /* errors listed in a report */
#define CONSENT_FIELD_MAX         64

/* STORE_DB_META "consent-code/DIGITS": a pending smart opt-in code. */
struct consent_code_record {
	uint8_t version;
	uint8_t attempts; /* wrong codes so far */
	uint8_t source;   /* enum consent_source */
	uint8_t unused[5];
	uint64_t expires_us;
	uint8_t salt[16];
	uint8_t hash[32]; /* SHA-256(salt || code) */
	char wording[CONSENT_WORDING_SIZE];
};

/* An HTTP answer waiting for the commit that makes it true. */
struct consent_reply {
	struct evhttp_request *request;
	json_t *body;
	int status;
};

static const char *const consent_state_names[CONSENT_STATE_COUNT] = {
    [CONSENT_NEVER] = "never",
    [CONSENT_PENDING] = "pending",
    [CONSENT_SUBSCRIBED] = "subscribed",
    [CONSENT_UNSUBSCRIBED] = "unsubscribed",
};

static const char *const consent_source_names[CONSENT_SOURCE_COUNT] = {
    [CONSENT_SOURCE_FORM] = "form",
    [CONSENT_SOURCE_CHECKOUT] = "checkout",
    [CONSENT_SOURCE_KEYWORD] = "keyword",
    [CONSENT_SOURCE_API] = "api",
    [CONSENT_SOURCE_IMPORT] = "import",
    [CONSENT_SOURCE_CARRIER] = "carrier",
};

static const struct config *consent_config;
static struct metric *metric_changes[CONSENT_STATE_COUNT];
static struct metric *metric_codes_wrong, *metric_imports_rejected;

const char *
consent_strstate(enum consent_state state)
{
	return (unsigned int)state < CONSENT_STATE_COUNT
		   ? consent_state_names[state]
		   : "unknown";
}

const char *
consent_strsource(enum consent_source source)
{
	return (unsigned int)source < CONSENT_SOURCE_COUNT
		   ? consent_source_names[source]
		   : "unknown";
}

/* Index of name in a table of names, or -1. */
static int
consent_lookup(const char *const *names, int count, const char *name)
{
	int i;

	for (i = 0; i < count; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

int
consent_parse_state(const char *name)
{
	return consent_lookup(consent_state_names, CONSENT_STATE_COUNT, name);
}

int
consent_parse_source(const char *name)
{
	return consent_lookup(consent_source_names, CONSENT_SOURCE_COUNT, name);
}

/* The store key of a number: its digits without "+"; 0 if not a number. */
static size_t
consent_key(const char *number, char *key)
{
	size_t length, i;
	const char *p = phone_digits(number, &length);

	if (length < 1 || length >= CONSENT_KEY_MAX)
		return 0;
	for (i = 0; i < length; i++)
		if (!isdigit((unsigned char)p[i]))
			return 0;
	memcpy(key, p, length + 1);
	return length;
}

enum store_result
consent_get_record(const char *number, struct consent_record *record)
{
	char key[CONSENT_KEY_MAX];
	const void *value;
	size_t key_length, value_length;
	enum store_result result;

	memset(record, 0, sizeof(*record));
	record->state = CONSENT_NEVER;
	if ((key_length = consent_key(number, key)) == 0)
		return STORE_NOT_FOUND;
	result = store_get(gateway->store, STORE_DB_CONSENT, key, key_length,
	    &value, &value_length);
	if (result != STORE_OK)
		return result;
	if (value_length != sizeof(*record))
		return STORE_ERROR;
	memcpy(record, value, sizeof(*record));
	return STORE_OK;
}

enum consent_state
consent_get(const char *number)
{
	struct consent_record record;

	/*
	 * The opt-out list is the authority for "no marketing" (it may be
	 * set by the API, or later replicated from another node): a listed
	 * number reads as UNSUBSCRIBED whatever its consent record says. A
	 * store error reads as NEVER, and the list treats an unsure lookup
	 * as opted out, so marketing is refused either way.
	 */
	if (optout_is_opted_out(number))
		return consent_get_record(number, &record) == STORE_OK &&
			       record.state == CONSENT_PENDING
			   ? CONSENT_PENDING
			   : CONSENT_UNSUBSCRIBED;
	consent_get_record(number, &record);
	return (enum consent_state)record.state;
}

/*
 * Writes one change: a history row (never overwritten: a key taken by a
 * change of the same microsecond moves on by one), then the current record
 * and the opt-out list, unless a newer change is current already (an
 * imported row from the past only joins the history).
 */
static enum store_result
consent_apply(const char *digits, size_t digits_length,
    const struct consent_record *record)
{
	struct consent_record current;
	uint8_t key[CONSENT_KEY_MAX + 1 + 8];
	enum store_result result;
	uint64_t time_us = record->time_us;
	int tries;

	memcpy(key, digits, digits_length);
	key[digits_length] = '\0';
	for (tries = 0; tries < 64; tries++, time_us++) {
		store_encode_u64(key + digits_length + 1, time_us);
		result = store_put(gateway->store, STORE_DB_CONSENT_HISTORY,
		    key, digits_length + 1 + 8, record, sizeof(*record),
		    STORE_PUT_NO_OVERWRITE);
		if (result != STORE_EXISTS)
			break;
	}
	if (result != STORE_OK)
		return result == STORE_EXISTS ? STORE_ERROR : result;
	result = consent_get_record(digits, &current);
	if (result == STORE_ERROR)
		return result;
	if (result == STORE_OK && current.time_us > record->time_us)
		return STORE_OK;
	result = store_put(gateway->store, STORE_DB_CONSENT, digits,
	    digits_length, record, sizeof(*record), 0);
	if (result != STORE_OK)
		return result;
	switch (record->state) {
	case CONSENT_UNSUBSCRIBED:
		return optout_set(digits, consent_strsource(record->source));
	case CONSENT_PENDING:
		/* Why: no marketing until the opt-in is confirmed. */
		return optout_set(digits, "pending");
	case CONSENT_SUBSCRIBED:
		result = optout_clear(digits);
		return result == STORE_NOT_FOUND ? STORE_OK : result;
	default:
		return STORE_OK;
	}
}

/* consent_set() with an explicit time (imports keep the file's). */
static enum store_result
consent_set_at(const char *number, enum consent_state state,
    enum consent_source source, const char *wording, uint64_t time_us)
{
	struct consent_record record;
	char key[CONSENT_KEY_MAX], masked[LOG_MASKED_NUMBER_SIZE];
	size_t key_length;
	enum store_result result;

	if ((key_length = consent_key(number, key)) == 0 ||
	    (unsigned int)state >= CONSENT_STATE_COUNT ||
	    (unsigned int)source >= CONSENT_SOURCE_COUNT)
		return STORE_ERROR;
	memset(&record, 0, sizeof(record));
	record.version = CONSENT_RECORD_VERSION;
	record.state = (uint8_t)state;
	record.source = (uint8_t)source;
	record.time_us = time_us;
	text_copy(record.wording, sizeof(record.wording),
	    wording != NULL ? wording : "");
	if ((result = consent_apply(key, key_length, &record)) != STORE_OK)
		return result;
	metrics_add(metric_changes[state], 1);
	log_info(0, "consent", "changed",
	    "number=%s state=%s source=%s "
	    "wording=%s",
	    log_mask_number(number, masked, sizeof(masked)),
	    consent_strstate(state), consent_strsource(source), record.wording);
	return STORE_OK;
}

enum store_result
consent_set(const char *number, enum consent_state state,
    enum consent_source source, const char *wording)
{
	return consent_set_at(number, state, source, wording, clock_now_us());
}

/* The language of compliance texts for number, without a keyword. */
static void
consent_language(
    const char *number, const char *language, char *out, size_t out_size)
{
	if (language != NULL && language[0] != '\0')
		text_copy(out, out_size, language);
	else
		keyword_language_for(number, NULL, out, out_size);
}

int
consent_request_double_opt_in(const char *number, enum consent_source source,
    const char *wording, const char *language)
{
	char chosen[KEYWORD_LANGUAGE_SIZE];

	if (consent_get(number) == CONSENT_SUBSCRIBED)
		return 0; /* nothing to confirm; no second request */
	if (consent_set(number, CONSENT_PENDING, source, wording) != STORE_OK)
		return -1;
	consent_language(number, language, chosen, sizeof(chosen));
	return keyword_send(
	    number, NULL, KEYWORD_TEXT_CONFIRM_REQUEST, chosen, NULL);
}

/* The META key of number's pending code; its length, 0 if not a number. */
static size_t
consent_code_key(const char *number, char *key, size_t key_size)
{
	char digits[CONSENT_KEY_MAX];

	if (consent_key(number, digits) == 0)
		return 0;
	return (size_t)snprintf(
	    key, key_size, "%s%s", CONSENT_CODE_PREFIX, digits);
}

/* SHA-256(salt || code) into hash; 0, or -1. */
static int
consent_code_hash(const uint8_t salt[16], const char *code, uint8_t hash[32])
{
	uint8_t input[16 + 6];
	unsigned int length = 32;

	memcpy(input, salt, 16);
	memcpy(input + 16, code, 6);
	return EVP_Digest(input, sizeof(input), hash, &length, EVP_sha256(),
		   NULL) == 1 &&
		       length == 32
		   ? 0
		   : -1;
}

/* A uniform code "000000".."999999" from the system's CSPRNG. */
static int
consent_new_code(char code[7])
{
	uint32_t value;

	do {
		if (RAND_bytes((unsigned char *)&value, sizeof(value)) != 1)
			return -1;
	} while (value >= 4294000000u); /* a multiple of 10^6: no bias */
	snprintf(code, 7, "%06u", (unsigned int)(value % 1000000u));
	return 0;
}

int
consent_request_smart_opt_in(const char *number, enum consent_source source,
    const char *wording, const char *language, char *code_out)
{
	struct consent_code_record record;
	char key[64], code[7], chosen[KEYWORD_LANGUAGE_SIZE];
	size_t key_length;
	int rc;

	if ((key_length = consent_code_key(number, key, sizeof(key))) == 0)
		return -1;
	memset(&record, 0, sizeof(record));
	record.version = CONSENT_RECORD_VERSION;
	record.source = (uint8_t)source;
	record.expires_us =
	    clock_now_us() + consent_config->compliance_code_expiry_us;
	text_copy(record.wording, sizeof(record.wording),
	    wording != NULL ? wording : "");
	if (consent_new_code(code) == -1 ||
	    RAND_bytes(record.salt, sizeof(record.salt)) != 1 ||
	    consent_code_hash(record.salt, code, record.hash) == -1)
		return -1;
	if (store_put(gateway->store, STORE_DB_META, key, key_length, &record,
		sizeof(record), 0) != STORE_OK)
		return -1;
	if (consent_get(number) != CONSENT_SUBSCRIBED &&
	    consent_set(number, CONSENT_PENDING, source, wording) != STORE_OK)
		return -1;
	consent_language(number, language, chosen, sizeof(chosen));
	rc = keyword_send(number, NULL, KEYWORD_TEXT_CODE, chosen, code);
	if (code_out != NULL)
		memcpy(code_out, code, sizeof(code));
	OPENSSL_cleanse(code, sizeof(code));
	return rc;
}

enum consent_code_result
consent_confirm_code(const char *number, const char *code, int *attempts_left)
{
	struct consent_code_record record;
	uint8_t hash[32];
	char key[64];
	const void *value;
	size_t key_length, value_length, i;
	int limit = (int)consent_config->compliance_code_attempts;
	enum store_result result;

	*attempts_left = 0;
	if ((key_length = consent_code_key(number, key, sizeof(key))) == 0)
		return CONSENT_CODE_NONE;
	result = store_get(gateway->store, STORE_DB_META, key, key_length,
	    &value, &value_length);
	if (result == STORE_NOT_FOUND)
		return CONSENT_CODE_NONE;
	if (result != STORE_OK || value_length != sizeof(record))
		return CONSENT_CODE_ERROR;
	memcpy(&record, value, sizeof(record));
	if (clock_now_us() >= record.expires_us) {
		store_delete(gateway->store, STORE_DB_META, key, key_length);
		return CONSENT_CODE_EXPIRED;
	}
	for (i = 0; i < 6 && isdigit((unsigned char)code[i]); i++)
		;
	if (i != 6 || code[6] != '\0' ||
	    consent_code_hash(record.salt, code, hash) == -1 ||
	    CRYPTO_memcmp(hash, record.hash, sizeof(hash)) != 0) {
		metrics_add(metric_codes_wrong, 1);
		record.attempts++;
		if (record.attempts >= limit) {
			/* Why: a void code cannot be guessed any further. */
			store_delete(
			    gateway->store, STORE_DB_META, key, key_length);
			return CONSENT_CODE_LOCKED;
		}
		if (store_put(gateway->store, STORE_DB_META, key, key_length,
			&record, sizeof(record), 0) != STORE_OK)
			return CONSENT_CODE_ERROR;
		*attempts_left = limit - record.attempts;
		return CONSENT_CODE_WRONG;
	}
	if (store_delete(gateway->store, STORE_DB_META, key, key_length) ==
		STORE_ERROR ||
	    consent_set(number, CONSENT_SUBSCRIBED,
		(enum consent_source)record.source, record.wording) != STORE_OK)
		return CONSENT_CODE_ERROR;
	return CONSENT_CODE_CONFIRMED;
}

int
consent_confirm_reply(const char *number)
{
	struct consent_record record;
	char key[64];
	size_t key_length;

	if (consent_get_record(number, &record) != STORE_OK ||
	    record.state != CONSENT_PENDING)
		return 0;
	/* A smart opt-in is confirmed by its code, not by a Y. */
	if ((key_length = consent_code_key(number, key, sizeof(key))) == 0 ||
	    store_get(gateway->store, STORE_DB_META, key, key_length, NULL,
		NULL) != STORE_NOT_FOUND)
		return 0;
	/* The wording is the one the person was asked to confirm. */
	return consent_set(number, CONSENT_SUBSCRIBED, CONSENT_SOURCE_KEYWORD,
		   record.wording) == STORE_OK;
}

/* "2026-11-23T10:00:00Z" (UTC) for a time in microseconds. */
static void
consent_time_text(uint64_t time_us, char *out, size_t out_size)
{
	time_t seconds = (time_t)(time_us / 1000000);
	struct tm tm;

	gmtime_r(&seconds, &tm);
	strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One record as JSON. */
static json_t *
consent_record_json(const struct consent_record *record)
{
	char time_text[32];

	consent_time_text(record->time_us, time_text, sizeof(time_text));
	return json_pack("{s:s, s:s, s:s, s:s, s:I}", "state",
	    consent_strstate((enum consent_state)record->state), "source",
	    consent_strsource((enum consent_source)record->source), "wording",
	    record->wording, "time", time_text, "time_us",
	    (json_int_t)record->time_us);
}

json_t *
consent_to_json(const char *number)
{
	struct consent_record record;
	struct store_cursor *cursor;
	char key[CONSENT_KEY_MAX];
	uint8_t seek[CONSENT_KEY_MAX + 1];
	const void *found, *value;
	size_t key_length, found_length, value_length, rows = 0;
	enum store_result result;
	json_t *body, *history;

	if ((key_length = consent_key(number, key)) == 0)
		return NULL;
	result = consent_get_record(number, &record);
	if (result == STORE_ERROR)
		return NULL;
	if (result == STORE_NOT_FOUND)
		body = json_pack("{s:s, s:s, s:n, s:n, s:n}", "number", number,
		    "state", "never", "source", "wording", "time");
	else {
		body = consent_record_json(&record);
		json_object_set_new(body, "number", json_string(number));
	}
	history = json_array();
	json_object_set_new(body, "history", history);
	memcpy(seek, key, key_length);
	seek[key_length] = '\0';
	if (store_cursor_open(
		gateway->store, STORE_DB_CONSENT_HISTORY, &cursor) != STORE_OK)
		return body;
	for (result = store_cursor_seek(cursor, seek, key_length + 1, &found,
		 &found_length, &value, &value_length);
	     result == STORE_OK && rows < CONSENT_HISTORY_MAX;
	     result = store_cursor_next(
		 cursor, &found, &found_length, &value, &value_length)) {
		if (found_length != key_length + 1 + 8 ||
		    memcmp(found, seek, key_length + 1) != 0)
			break;
		if (value_length != sizeof(record))
			continue;
		memcpy(&record, value, sizeof(record));
		json_array_append_new(history, consent_record_json(&record));
		rows++;
	}
	store_cursor_close(cursor);
	return body;
}

/* ---- CSV import ---------------------------------------------------------- */

enum consent_column {
	COLUMN_NUMBER = 0,
	COLUMN_STATE,
	COLUMN_SOURCE,
	COLUMN_WORDING,
	COLUMN_TIME,
	COLUMN_COUNT
};

static const char *const consent_column_names[COLUMN_COUNT] = {
    "phone_number",
    "state",
    "source",
    "wording",
    "time",
};

/* One validated row, kept until every row is known good. */
struct consent_import_row {
	long line;
	char number[PROFILE_NUMBER_SIZE];
	uint8_t state;
	uint8_t source;
	uint64_t time_us;
	char wording[CONSENT_WORDING_SIZE];
};

/* The state of one parse, fed by libcsv's callbacks. */
struct consent_import {
	char fields[COLUMN_COUNT][CONSENT_FIELD_MAX];
	size_t field_count;
	int field_too_long;
	long line; /* of the record being read */
	struct consent_import_row *rows;
	size_t row_count, row_capacity;
	size_t rejected;
	json_t *errors;
	uint64_t now_us;
};

/* Notes a rejected row in the report. */
static void
consent_import_reject(
    struct consent_import *import, const char *field, const char *reason)
{
	import->rejected++;
	if (json_array_size(import->errors) < CONSENT_IMPORT_ERRORS_MAX)
		json_array_append_new(
		    import->errors, json_pack("{s:I, s:s, s:s}", "line",
					(json_int_t)import->line, "field",
					field, "reason", reason));
}

/* Orders rows by number, then time, then line: duplicates end up adjacent. */
static int
consent_import_row_compare(const void *a, const void *b)
{
	const struct consent_import_row *left = a, *right = b;
	int order = strcmp(left->number, right->number);

	if (order != 0)
		return order;
	if (left->time_us != right->time_us)
		return left->time_us < right->time_us ? -1 : 1;
	return left->line < right->line ? -1 : left->line > right->line;
}

/*
 * Rejects every row that repeats an earlier row's number and time: the
 * history keeps one change per number and instant, and which of two
 * same-instant rows wins would be a guess. Sorts the rows.
 */
static void
consent_import_reject_duplicates(struct consent_import *import)
{
	struct consent_import_row *rows = import->rows;
	char reason[64];
	size_t i;

	if (import->row_count < 2)
		return;
	qsort(
	    rows, import->row_count, sizeof(*rows), consent_import_row_compare);
	for (i = 1; i < import->row_count; i++) {
		if (strcmp(rows[i].number, rows[i - 1].number) != 0 ||
		    rows[i].time_us != rows[i - 1].time_us)
			continue;
		snprintf(reason, sizeof(reason),
		    "same number and time as line %ld", rows[i - 1].line);
		import->line = rows[i].line;
		consent_import_reject(import, "phone_number", reason);
	}
}

/* "2026-11-23T10:00:00Z", "2026-11-23 10:00:00", epoch seconds, or "". */
static int
consent_parse_time(const char *text, uint64_t now_us, uint64_t *time_us)
{
	struct tm tm;
	const char *end;
	char *number_end;
	long long seconds;
	time_t parsed;

	if (text[0] == '\0') {
		*time_us = now_us;
		return 0;
	}
	if (strspn(text, "0123456789") == strlen(text)) {
		seconds = strtoll(text, &number_end, 10);
		if (seconds <= 0 || seconds > 4102444800LL)
			return -1;
		*time_us = (uint64_t)seconds * 1000000;
		return *time_us > now_us ? -1 : 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL &&
	    (end = strptime(text, "%Y-%m-%d %H:%M:%S", &tm)) == NULL)
		return -1;
	if (strcmp(end, "Z") != 0 && end[0] != '\0')
		return -1;
	if ((parsed = timegm(&tm)) <= 0)
		return -1;
	*time_us = (uint64_t)parsed * 1000000;
	/* A consent from the future is a mistake in the file. */
	return *time_us > now_us ? -1 : 0;
}

/* Validates the record just read (the header row is checked by name). */
static void
consent_import_record(struct consent_import *import)
{
	struct consent_import_row row;
	const char *error;
	int state, source;
	size_t i;

	if (import->line == 1) {
		for (i = 0; i < COLUMN_COUNT; i++)
			if (import->field_count != COLUMN_COUNT ||
			    strcmp(import->fields[i],
				consent_column_names[i]) != 0) {
				consent_import_reject(import, "header",
				    "expected phone_number,state,source,"
				    "wording,time");
				return;
			}
		return;
	}
	if (import->field_count == 1 && import->fields[0][0] == '\0')
		return; /* a blank line */
	if (import->field_count != COLUMN_COUNT) {
		consent_import_reject(import, "row", "expected 5 columns");
		return;
	}
	if (import->field_too_long) {
		consent_import_reject(import, "row", "a field is too long");
		return;
	}
	memset(&row, 0, sizeof(row));
	if (phone_normalize(import->fields[COLUMN_NUMBER],
		consent_config->default_country, row.number, sizeof(row.number),
		&error) == -1) {
		consent_import_reject(import, "phone_number", error);
		return;
	}
	state = consent_parse_state(import->fields[COLUMN_STATE]);
	if (state != CONSENT_SUBSCRIBED && state != CONSENT_UNSUBSCRIBED) {
		consent_import_reject(
		    import, "state", "must be subscribed or unsubscribed");
		return;
	}
	source = import->fields[COLUMN_SOURCE][0] == '\0'
		     ? CONSENT_SOURCE_IMPORT
		     : consent_parse_source(import->fields[COLUMN_SOURCE]);
	if (source < 0) {
		consent_import_reject(import, "source",
		    "must be form, checkout, keyword, api, import or carrier");
		return;
	}
	if (strlen(import->fields[COLUMN_WORDING]) >= CONSENT_WORDING_SIZE) {
		consent_import_reject(import, "wording", "over 31 characters");
		return;
	}
	if (consent_parse_time(import->fields[COLUMN_TIME], import->now_us,
		&row.time_us) == -1) {
		consent_import_reject(import, "time",
		    "expected YYYY-MM-DDTHH:MM:SSZ or epoch seconds, "
		    "not in the future");
		return;
	}
	row.line = import->line;
	row.state = (uint8_t)state;
	row.source = (uint8_t)source;
	text_copy(
	    row.wording, sizeof(row.wording), import->fields[COLUMN_WORDING]);
	if (import->row_count == import->row_capacity) {
		import->row_capacity = import->row_capacity * 2 + 64;
		import->rows = reallocarray(
		    import->rows, import->row_capacity, sizeof(*import->rows));
		if (import->rows == NULL)
			fatal("consent", "out-of-memory", NULL);
	}
	import->rows[import->row_count++] = row;
}

/* libcsv: one field of the current record. */
static void
consent_import_field(void *data, size_t length, void *arg)
{
	struct consent_import *import = arg;
	size_t at = import->field_count++;

	if (at >= COLUMN_COUNT)
		return;
	if (length >= CONSENT_FIELD_MAX) {
		import->field_too_long = 1;
		length = CONSENT_FIELD_MAX - 1;
	}
	memcpy(import->fields[at], data, length);
	import->fields[at][length] = '\0';
}

/* libcsv: the end of a record. */
static void
consent_import_end_record(int terminator, void *arg)
{
	struct consent_import *import = arg;

	(void)terminator;
	import->line++;
	consent_import_record(import);
	import->field_count = 0;
	import->field_too_long = 0;
	memset(import->fields, 0, sizeof(import->fields));
}

long
consent_import_csv(const char *data, size_t length, json_t **report)
{
	struct consent_import import;
	struct csv_parser parser;
	long applied = -1;
	size_t i;
	int parse_failed = 0;

	memset(&import, 0, sizeof(import));
	import.errors = json_array();
	import.now_us = clock_now_us();
	if (csv_init(&parser, CSV_STRICT | CSV_APPEND_NULL) != 0)
		fatalx("consent", "csv-init", NULL);
	if (csv_parse(&parser, data, length, consent_import_field,
		consent_import_end_record, &import) != length ||
	    csv_fini(&parser, consent_import_field, consent_import_end_record,
		&import) != 0)
		parse_failed = 1;
	if (parse_failed) {
		import.line++;
		consent_import_reject(
		    &import, "row", csv_strerror(csv_error(&parser)));
	}
	csv_free(&parser);
	if (import.line == 0)
		consent_import_reject(&import, "header", "the file is empty");
	if (import.rejected == 0)
		consent_import_reject_duplicates(&import);
	/*
	 * Why: all or nothing - rows go to the store only if none failed.
	 * Past the checks only the store can fail; that fails the whole turn
	 * (the caller answers 503), so no half of the file is committed.
	 */
	if (import.rejected == 0) {
		for (i = 0; i < import.row_count; i++)
			if (consent_set_at(import.rows[i].number,
				(enum consent_state)import.rows[i].state,
				(enum consent_source)import.rows[i].source,
				import.rows[i].wording,
				import.rows[i].time_us) != STORE_OK) {
				store_fail_turn(
				    gateway->store, "consent-import");
				applied = -2;
				break;
			}
		if (i == import.row_count)
			applied = (long)import.row_count;
	}
	if (applied < 0)
		metrics_add(metric_imports_rejected, 1);
	*report = json_pack("{s:I, s:I, s:b, s:o}", "accepted",
	    (json_int_t)import.row_count, "rejected",
	    (json_int_t)import.rejected, "applied", applied >= 0, "errors",
	    import.errors);
	free(import.rows);
	log_info(0, "consent", "import", "rows=%zu rejected=%zu applied=%s",
	    import.row_count, import.rejected, applied >= 0 ? "yes" : "no");
	return applied;
}

/* ---- HTTP ---------------------------------------------------------------- */

static void
consent_committed(void *arg, enum store_result result)
{
	struct consent_reply *reply = arg;

	if (result == STORE_OK)
		http_reply_json(reply->request, reply->status, reply->body);
	else {
		json_decref(reply->body);
		http_reply_error(reply->request, 503, "store_unavailable",
		    "the change could not be stored");
	}
	free(reply);
}

/* Answers after the commit of this turn: the answer is a promise. */
static void
consent_reply_after_commit(
    struct evhttp_request *request, int status, json_t *body)
{
	struct consent_reply *reply;

	if ((reply = malloc(sizeof(*reply))) == NULL)
		fatal("consent", "out-of-memory", NULL);
	reply->request = request;
	reply->body = body;
	reply->status = status;
	store_after_commit(gateway->store, consent_committed, reply);
}

/* A string member of body: *out is NULL if absent; -1 if not a string. */
static int
consent_body_string(json_t *body, const char *name, const char **out)
{
	json_t *value = json_object_get(body, name);

	*out = NULL;
	if (value == NULL || json_is_null(value))
		return 0;
	if (!json_is_string(value))
		return -1;
	*out = json_string_value(value);
	return 0;
}

/* PUT /v1/profiles/{number}/consent. */
static void
consent_http_put(struct evhttp_request *request, const char *number)
{
	const char *state_name, *source_name, *wording, *method, *language;
	json_t *body;
	int state, source, rc;

	if ((body = http_read_json(request)) == NULL)
		return;
	if (consent_body_string(body, "state", &state_name) == -1 ||
	    state_name == NULL ||
	    ((state = consent_parse_state(state_name)) != CONSENT_SUBSCRIBED &&
		state != CONSENT_UNSUBSCRIBED)) {
		http_reply_error(request, 400, "invalid_field",
		    "state: must be \"subscribed\" or \"unsubscribed\"");
		goto done;
	}
	if (consent_body_string(body, "source", &source_name) == -1 ||
	    (source = source_name == NULL
			  ? CONSENT_SOURCE_API
			  : consent_parse_source(source_name)) < 0) {
		http_reply_error(request, 400, "invalid_field",
		    "source: must be form, checkout, keyword, api, import or "
		    "carrier");
		goto done;
	}
	if (consent_body_string(body, "wording", &wording) == -1 ||
	    (wording != NULL && strlen(wording) >= CONSENT_WORDING_SIZE)) {
		http_reply_error(request, 400, "invalid_field",
		    "wording: a string of at most 31 characters");
		goto done;
	}
	if (wording == NULL)
		wording = consent_config->compliance_wording;
	if (consent_body_string(body, "method", &method) == -1 ||
	    (method != NULL && strcmp(method, "direct") != 0 &&
		strcmp(method, "double_opt_in") != 0 &&
		strcmp(method, "smart_opt_in") != 0) ||
	    (method != NULL && state == CONSENT_UNSUBSCRIBED &&
		strcmp(method, "direct") != 0)) {
		http_reply_error(request, 400, "invalid_field",
		    "method: \"direct\", \"double_opt_in\" or \"smart_opt_in\" "
		    "(opt-in methods only with state \"subscribed\")");
		goto done;
	}
	if (consent_body_string(body, "language", &language) == -1 ||
	    (language != NULL && strlen(language) >= KEYWORD_LANGUAGE_SIZE)) {
		http_reply_error(request, 400, "invalid_field",
		    "language: a language code such as \"en\" or \"it\"");
		goto done;
	}
	if (method == NULL || strcmp(method, "direct") == 0)
		rc = consent_set(number, (enum consent_state)state,
			 (enum consent_source)source, wording) == STORE_OK
			 ? 0
			 : -1;
	else if (strcmp(method, "double_opt_in") == 0)
		rc = consent_request_double_opt_in(
		    number, (enum consent_source)source, wording, language);
	else
		rc = consent_request_smart_opt_in(number,
		    (enum consent_source)source, wording, language, NULL);
	if (rc == -1)
		http_reply_error(request, 503, "store_unavailable",
		    "the change could not be stored");
	else
		consent_reply_after_commit(
		    request, 200, consent_to_json(number));
done:
	json_decref(body);
}

/* POST /v1/profiles/{number}/consent/confirm {"code": "123456"}. */
static void
consent_http_confirm(struct evhttp_request *request, const char *number)
{
	const char *code;
	json_t *body;
	int left;

	if ((body = http_read_json(request)) == NULL)
		return;
	if (consent_body_string(body, "code", &code) == -1 || code == NULL ||
	    strlen(code) != 6 || strspn(code, "0123456789") != 6) {
		http_reply_error(request, 400, "invalid_field",
		    "code: the 6 digits of the SMS");
		json_decref(body);
		return;
	}
	switch (consent_confirm_code(number, code, &left)) {
	case CONSENT_CODE_CONFIRMED:
		consent_reply_after_commit(
		    request, 200, consent_to_json(number));
		break;
	case CONSENT_CODE_WRONG:
		/* The attempt count must outlive a crash too. */
		consent_reply_after_commit(request, 422,
		    json_pack("{s:s, s:s, s:i}", "error", "wrong_code",
			"detail", "code: does not match", "attempts_left",
			left));
		break;
	case CONSENT_CODE_LOCKED:
		consent_reply_after_commit(request, 429,
		    json_pack("{s:s, s:s}", "error", "too_many_attempts",
			"detail",
			"code: too many wrong codes; ask for a "
			"new one"));
		break;
	case CONSENT_CODE_EXPIRED:
		consent_reply_after_commit(request, 410,
		    json_pack("{s:s, s:s}", "error", "code_expired", "detail",
			"code: expired; ask for a new one"));
		break;
	case CONSENT_CODE_NONE:
		http_reply_error(request, 404, "not_found",
		    "code: no smart opt-in is pending for this number");
		break;
	default:
		http_reply_error(request, 503, "store_unavailable",
		    "the code could not be checked");
		break;
	}
	json_decref(body);
}

int
consent_http_profile(struct evhttp_request *request, const char *path)
{
	static const char prefix[] = "/v1/profiles/";
	enum evhttp_cmd_type method = evhttp_request_get_command(request);
	const char *start, *slash, *error;
	char *decoded, number[PROFILE_NUMBER_SIZE];
	int confirm;
	json_t *body;

	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	start = path + sizeof(prefix) - 1;
	if ((slash = strchr(start, '/')) == NULL)
		return 0;
	if (strcmp(slash, "/consent") == 0)
		confirm = 0;
	else if (strcmp(slash, "/consent/confirm") == 0)
		confirm = 1;
	else
		return 0;
	decoded = evhttp_uridecode(start, 0, NULL);
	if (decoded != NULL)
		decoded[slash - start] = '\0';
	if (decoded == NULL ||
	    phone_normalize(decoded, consent_config->default_country, number,
		sizeof(number), &error) == -1) {
		http_reply_error(request, 400, "invalid_field", "number: %s",
		    decoded == NULL ? "not decodable" : error);
		free(decoded);
		return 1;
	}
	free(decoded);
	if (confirm && method == EVHTTP_REQ_POST)
		consent_http_confirm(request, number);
	else if (!confirm && method == EVHTTP_REQ_PUT)
		consent_http_put(request, number);
	else if (!confirm && method == EVHTTP_REQ_GET) {
		if ((body = consent_to_json(number)) == NULL)
			http_reply_error(request, 503, "store_unavailable",
			    "consent could not be read");
		else
			http_reply_json(request, 200, body);
	} else
		http_reply_error(request, 405, "method_not_allowed",
		    "%s does not take this method", path);
	return 1;
}

/* POST /v1/profiles/... : only the consent confirmation takes POST. */
static void
consent_http_post_profile(struct evhttp_request *request, void *arg)
{
	char path[256];

	(void)arg;
	http_request_path(request, path, sizeof(path));
	if (!consent_http_profile(request, path))
		http_reply_error(request, 405, "method_not_allowed",
		    "%s does not take this method", path);
}

/* POST /v1/consent/import: a CSV body, all rows or none. */
static void
consent_http_import(struct evhttp_request *request, void *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(request);
	size_t length = evbuffer_get_length(in);
	json_t *report;
	const char *data;

	(void)arg;
	data = length > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
	switch (consent_import_csv(data, length, &report)) {
	case -2:
		json_decref(report);
		http_reply_error(request, 503, "store_unavailable",
		    "the import could not be stored; nothing was applied");
		return;
	case -1:
		http_reply_json(request, 422, report);
		return;
	default:
		break;
	}
	consent_reply_after_commit(request, 200, report);
}

void
consent_init(const struct config *config)
{
	int i;

	consent_config = config;
	for (i = 0; i < CONSENT_STATE_COUNT; i++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "state=\"%s\"",
		    consent_state_names[i]);
		metric_changes[i] =
		    metrics_counter("nudge_consent_changes_total", labels,
			"Consent changes recorded, by new state.");
	}
	metric_codes_wrong = metrics_counter("nudge_consent_codes_wrong_total",
	    NULL, "Smart opt-in codes that did not match.");
	metric_imports_rejected =
	    metrics_counter("nudge_consent_imports_rejected_total", NULL,
		"Consent CSV imports refused whole for a bad row.");
	http_route("POST", "/v1/profiles/", HTTP_ROUTE_PREFIX | HTTP_ROUTE_AUTH,
	    consent_http_post_profile, NULL);
	http_route("POST", "/v1/consent/import",
	    HTTP_ROUTE_EXACT | HTTP_ROUTE_AUTH, consent_http_import, NULL);
}
