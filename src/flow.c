/*
 * flow.c - the flow runtime. It loads the rules folder (a file that fails
 * keeps its last good version running; inotify reloads changed files),
 * starts journeys from events whose metric triggers a live flow, ends them
 * when an exit metric arrives, and walks each journey through its flow's
 * steps. Everything a journey is lives in the store: a journey waiting in
 * a delay is a timer row, so after kill -9 every journey resumes where it
 * was, none twice. A journey runs on the flow version (file hash) it
 * started with; every version's bytes are kept in the store by hash.
 */
#include <sys/inotify.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <glib.h>
#include <jansson.h>

#include "smpp.h"
#include "nudged.h"

#define FLOW_RECORD_VERSION        1
#define FLOW_TEXT_MAX              (10 * 160 * 4)
#define FLOW_RELOAD_DELAY_US       200000
#define FLOW_ENTRY_KEY_MAX         (FLOW_ID_SIZE + PROFILE_NUMBER_SIZE + 256)
#define FLOW_ABANDONMENT_WINDOW_US (48ULL * 3600 * 1000000)

/* One rule file of the folder and the version of it that runs. */
struct flow_file {
	char *path;
	struct flow *flow;  /* last good version, or NULL */
	uint64_t hash_seen; /* of the bytes last read */
	int failing;        /* the bytes last read did not load */
};

static const struct config *flow_config;
static struct flow_file *files;
static size_t file_count;
static struct flow **versions; /* every version loaded in this process */
static size_t version_count;
static struct event *inotify_event, *reload_event;
static int inotify_fd = -1;
static struct metric *metric_started, *metric_exited, *metric_sms;
static struct metric *metric_skipped, *metric_rule_errors, *metric_loaded;

static const char *const journey_state_names[FLOW_JOURNEY_STATE_COUNT] = {
    [FLOW_JOURNEY_RUNNING] = "RUNNING",
    [FLOW_JOURNEY_WAITING] = "WAITING",
    [FLOW_JOURNEY_DONE] = "DONE",
    [FLOW_JOURNEY_EXITED] = "EXITED",
    [FLOW_JOURNEY_FAILED] = "FAILED",
};

const char *
flow_journey_strstate(enum flow_journey_state state)
{
	if ((unsigned int)state >= FLOW_JOURNEY_STATE_COUNT)
		return "INVALID";
	return journey_state_names[state];
}

/* ---- versions and the folder ------------------------------------------- */

static void
flow_remember_version(struct flow *flow)
{
	versions = reallocarray(versions, version_count + 1, sizeof(*versions));
	if (versions == NULL)
		fatal("flow", "out-of-memory", NULL);
	versions[version_count++] = rule_hold(flow);
}

/*
 * The flow version a journey started on: in memory, or rebuilt from the
 * bytes the store kept under its hash (after a restart or a reload).
 */
static struct flow *
flow_version(uint64_t hash, const char *flow_id)
{
	struct rule_report report;
	struct flow *flow;
	const void *value;
	size_t length, i;
	uint8_t key[8];
	char *copy;

	for (i = 0; i < version_count; i++)
		if (versions[i]->hash == hash &&
		    strcmp(versions[i]->id, flow_id) == 0)
			return versions[i];
	store_encode_u64(key, hash);
	if (store_get(gateway->store, STORE_DB_FLOW_VERSIONS, key, sizeof(key),
		&value, &length) != STORE_OK)
		return NULL;
	if ((copy = malloc(length)) == NULL)
		fatal("flow", "out-of-memory", NULL);
	memcpy(copy, value, length);
	rule_report_init(&report);
	flow = rule_load_memory(flow_id, copy, length, &report);
	free(copy);
	rule_report_free(&report);
	if (flow == NULL)
		return NULL;
	flow_remember_version(flow);
	rule_free(flow);
	return versions[version_count - 1];
}

/* Reads a whole file; NULL with errno set on failure or when too large. */
static char *
flow_read_file(const char *path, size_t *length)
{
	char *data;
	ssize_t got;
	size_t size = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if ((data = malloc(RULE_MAX_FILE_SIZE + 1)) == NULL)
		fatal("flow", "out-of-memory", NULL);
	while ((got = read(fd, data + size, RULE_MAX_FILE_SIZE + 1 - size)) > 0)
		size += (size_t)got;
	close(fd);
	if (got < 0) {
		free(data);
		return NULL;
	}
	*length = size;
	return data;
}

/* FNV-1a 64, the hash rule.c gives flow->hash, so the two agree. */
static uint64_t
flow_hash_bytes(const char *data, size_t length)
{
	uint64_t hash = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < length; i++) {
		hash ^= (uint8_t)data[i];
		hash *= 0x100000001b3ULL;
	}
	return hash;
}

static struct flow_file *
flow_file_for(const char *path)
{
	size_t i;

	for (i = 0; i < file_count; i++)
		if (strcmp(files[i].path, path) == 0)
			return &files[i];
	files = reallocarray(files, file_count + 1, sizeof(*files));
	if (files == NULL)
		fatal("flow", "out-of-memory", NULL);
	memset(&files[file_count], 0, sizeof(files[file_count]));
	if ((files[file_count].path = strdup(path)) == NULL)
		fatal("flow", "out-of-memory", NULL);
	return &files[file_count++];
}

/*
 * Loads one file if its bytes changed. A file with errors leaves the last
 * good version running; its errors go to the log as file:line: reason.
 */
static size_t
flow_load_file(const char *path)
{
	struct flow_file *file = flow_file_for(path);
	struct rule_report report;
	struct flow *flow;
	uint64_t hash;
	uint8_t key[8];
	size_t length, i, errors;
	char *data;

	if ((data = flow_read_file(path, &length)) == NULL) {
		log_warn(0, "flow", "read-failed", "file=%s", path);
		return 1;
	}
	hash = flow_hash_bytes(data, length);
	if (hash == file->hash_seen) {
		free(data);
		return file->failing ? 1 : 0;
	}
	file->hash_seen = hash;
	rule_report_init(&report);
	flow = rule_load_memory(path, data, length, &report);
	if (flow != NULL)
		rule_lint(flow, &report);
	for (i = 0; i < report.count; i++) {
		const struct rule_message *message = &report.messages[i];

		if (message->severity == RULE_ERROR)
			log_warnx(0, "flow", "rule-error",
			    "file=%s line=%d "
			    "reason=\"%s\"",
			    message->file, message->line, message->text);
		else
			log_info(0, "flow", "rule-warning",
			    "file=%s line=%d "
			    "reason=\"%s\"",
			    message->file, message->line, message->text);
	}
	errors = report.error_count;
	rule_report_free(&report);
	if (flow == NULL) {
		file->failing = 1;
		metrics_add(metric_rule_errors, (double)errors);
		log_warnx(0, "flow", "load-failed",
		    "file=%s errors=%zu kept=%s", path, errors,
		    file->flow != NULL ? "previous" : "none");
		free(data);
		return errors > 0 ? errors : 1;
	}
	/* The bytes by hash: journeys find their version after a restart. */
	store_encode_u64(key, flow->hash);
	store_put(gateway->store, STORE_DB_FLOW_VERSIONS, key, sizeof(key),
	    data, length, 0);
	free(data);
	file->failing = 0;
	flow_remember_version(flow);
	if (file->flow != NULL)
		rule_free(file->flow);
	file->flow = flow;
	metrics_add(metric_loaded, 1);
	log_info(0, "flow", "loaded",
	    "file=%s flow=%s status=%d steps=%zu "
	    "hash=%016llx",
	    path, flow->id, flow->status, flow->step_count,
	    (unsigned long long)flow->hash);
	return 0;
}

size_t
flow_reload(void)
{
	struct dirent **entries;
	char path[4096];
	size_t errors = 0, i, j;
	int count, n, found;

	if (flow_config->rules_dir[0] == '\0')
		return 0;
	count = scandir(flow_config->rules_dir, &entries, NULL, alphasort);
	if (count < 0) {
		log_warn(
		    0, "flow", "rules-dir", "path=%s", flow_config->rules_dir);
		return 1;
	}
	for (n = 0; n < count; n++) {
		const char *name = entries[n]->d_name;
		size_t length = strlen(name);

		if (length > 4 && strcmp(name + length - 4, ".xml") == 0 &&
		    name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s",
			    flow_config->rules_dir, name);
			errors += flow_load_file(path);
		}
	}
	/* A file that went away stops starting journeys; they finish. */
	for (i = 0; i < file_count; i++) {
		found = 0;
		for (n = 0; n < count && !found; n++) {
			snprintf(path, sizeof(path), "%s/%s",
			    flow_config->rules_dir, entries[n]->d_name);
			found = strcmp(path, files[i].path) == 0;
		}
		if (!found && files[i].flow != NULL) {
			log_info(0, "flow", "removed", "file=%s flow=%s",
			    files[i].path, files[i].flow->id);
			rule_free(files[i].flow);
			files[i].flow = NULL;
			files[i].hash_seen = 0;
		}
	}
	for (n = 0; n < count; n++)
		free(entries[n]);
	free(entries);
	for (i = 0, j = 0; i < file_count; i++)
		j += files[i].failing;
	metrics_set(metrics_gauge("nudge_rule_files_failing", NULL,
			"Rule files whose last version did not load."),
	    (double)j);
	return errors;
}

/* inotify saw a change: reload shortly (editors write in several steps). */
static void
flow_inotify_read(evutil_socket_t fd, short events, void *arg)
{
	char buffer[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	struct timeval delay = {0, FLOW_RELOAD_DELAY_US};

	while (read(fd, buffer, sizeof(buffer)) > 0)
		;
	evtimer_add(reload_event, &delay);
}

static void
flow_reload_timer(evutil_socket_t fd, short events, void *arg)
{
	flow_reload();
}

/* ---- evaluating conditions --------------------------------------------- */

/* Follows "a.b.0.c" in a JSON value. */
static json_t *
flow_json_path(json_t *value, const char *path)
{
	char part[128];
	const char *dot;
	size_t length;
	char *end;
	long index;

	while (value != NULL && path != NULL && *path != '\0') {
		dot = strchr(path, '.');
		length = dot != NULL ? (size_t)(dot - path) : strlen(path);
		if (length >= sizeof(part))
			return NULL;
		memcpy(part, path, length);
		part[length] = '\0';
		if (json_is_array(value)) {
			index = strtol(part, &end, 10);
			value = *end == '\0' && index >= 0
				    ? json_array_get(value, (size_t)index)
				    : NULL;
		} else
			value = json_object_get(value, part);
		path = dot != NULL ? dot + 1 : NULL;
	}
	return value;
}

static int
flow_value_matches(json_t *value, const struct flow_condition *condition)
{
	json_t *element;
	const char *text;
	size_t index;
	int is_set;

	is_set = value != NULL && !json_is_null(value) &&
		 !(json_is_string(value) && json_string_length(value) == 0);
	switch (condition->operator) {
	case FLOW_OPERATOR_IS_SET:
		return is_set;
	case FLOW_OPERATOR_IS_NOT_SET:
		return !is_set;
	case FLOW_OPERATOR_GREATER_THAN:
		return json_is_number(value) && condition->has_number &&
		       json_number_value(value) > condition->number;
	case FLOW_OPERATOR_LESS_THAN:
		return json_is_number(value) && condition->has_number &&
		       json_number_value(value) < condition->number;
	case FLOW_OPERATOR_CONTAINS:
		if (json_is_array(value)) {
			json_array_foreach(value, index,
			    element) if (json_is_string(element) &&
					 strcasecmp(json_string_value(element),
					     condition->value) == 0) return 1;
			return 0;
		}
		text = json_string_value(value);
		return text != NULL &&
		       strcasestr(text, condition->value) != NULL;
	case FLOW_OPERATOR_EQUALS:
	case FLOW_OPERATOR_NOT_EQUALS:
		if (json_is_number(value) && condition->has_number)
			is_set = json_number_value(value) == condition->number;
		else if (json_is_boolean(value))
			is_set =
			    strcmp(condition->value,
				json_is_true(value) ? "true" : "false") == 0;
		else
			is_set = json_is_string(value) &&
				 strcmp(json_string_value(value),
				     condition->value) == 0;
		return condition->operator== FLOW_OPERATOR_EQUALS ? is_set
								  : !is_set;
	}
	return 0;
}

/* One condition against the profile and the trigger event. */
static int
flow_condition_holds(const struct flow_condition *condition,
    const struct profile *profile, json_t *event, uint64_t now_us)
{
	json_t *value, *properties;
	int result;

	switch (condition->subject) {
	case FLOW_SUBJECT_EVENT_PROPERTY:
		return flow_value_matches(
		    flow_json_path(event, condition->path), condition);
	case FLOW_SUBJECT_PROFILE_PROPERTY:
		properties = json_object_get(profile->attributes, "properties");
		value = flow_json_path(properties, condition->path);
		if (value == NULL)
			value = flow_json_path(
			    profile->attributes, condition->path);
		return flow_value_matches(value, condition);
	case FLOW_SUBJECT_LANGUAGE:
		return flow_value_matches(
		    json_object_get(profile->attributes, "language"),
		    condition);
	case FLOW_SUBJECT_CONSENT:
		value =
		    json_string(consent_strstate(consent_get(profile->number)));
		result = flow_value_matches(value, condition);
		json_decref(value);
		return result;
	case FLOW_SUBJECT_ORDER_COUNT:
		value = json_integer(profile_orders_since(profile,
		    condition->period_us != 0 && now_us > condition->period_us
			? now_us - condition->period_us
			: 0));
		result = flow_value_matches(value, condition);
		json_decref(value);
		return result;
	case FLOW_SUBJECT_TOTAL_SPENT:
		value = json_real(profile->record.total_spent);
		result = flow_value_matches(value, condition);
		json_decref(value);
		return result;
	}
	return 0;
}

static int
flow_conditions_hold(const struct flow_condition *conditions, size_t count,
    int match_any, const struct profile *profile, json_t *event,
    uint64_t now_us)
{
	size_t i;
	int holds;

	for (i = 0; i < count; i++) {
		holds = flow_condition_holds(
		    &conditions[i], profile, event, now_us);
		if (match_any && holds)
			return 1;
		if (!match_any && !holds)
			return 0;
	}
	return !match_any || count == 0;
}

/* ---- journeys ---------------------------------------------------------- */

static void
flow_journey_key(uint64_t id, uint8_t key[8])
{
	store_encode_u64(key, id);
}

/* digits NUL journey id: the index that finds a subscriber's journeys. */
static size_t
flow_number_key(const char *number, uint64_t id, uint8_t *key, size_t size)
{
	size_t length;
	const char *digits = phone_digits(number, &length);

	if (length + 9 > size)
		return 0;
	memcpy(key, digits, length);
	key[length] = '\0';
	store_encode_u64(key + length + 1, id);
	return length + 9;
}

static enum store_result
flow_journey_load(
    uint64_t id, struct flow_journey_record *record, json_t **context)
{
	uint8_t key[8];
	const void *value;
	size_t length;
	enum store_result result;

	flow_journey_key(id, key);
	result = store_get(gateway->store, STORE_DB_JOURNEYS, key, sizeof(key),
	    &value, &length);
	if (result != STORE_OK)
		return result;
	if (length < sizeof(*record))
		return STORE_ERROR;
	memcpy(record, value, sizeof(*record));
	if (context != NULL) {
		*context =
		    record->context_length > 0 &&
			    record->context_length <= length - sizeof(*record)
			? json_loadb((const char *)value + sizeof(*record),
			      record->context_length, 0, NULL)
			: NULL;
		if (*context == NULL)
			*context = json_object();
	}
	return STORE_OK;
}

/* Writes the journey; keeps the by-number index only while it is alive. */
static enum store_result
flow_journey_save(
    uint64_t id, struct flow_journey_record *record, json_t *event)
{
	uint8_t key[8], number_key[PROFILE_NUMBER_SIZE + 9], *buffer;
	size_t number_key_length, length;
	enum store_result result;
	char *text;

	if ((text = json_dumps(event, JSON_COMPACT)) == NULL)
		return STORE_ERROR;
	length = strlen(text);
	record->context_length = (uint32_t)length;
	record->updated_us = clock_now_us();
	if ((buffer = malloc(sizeof(*record) + length)) == NULL)
		fatal("flow", "out-of-memory", NULL);
	memcpy(buffer, record, sizeof(*record));
	memcpy(buffer + sizeof(*record), text, length);
	free(text);
	flow_journey_key(id, key);
	result = store_put(gateway->store, STORE_DB_JOURNEYS, key, sizeof(key),
	    buffer, sizeof(*record) + length, 0);
	free(buffer);
	if (result != STORE_OK)
		return result;
	number_key_length =
	    flow_number_key(record->number, id, number_key, sizeof(number_key));
	if (record->state == FLOW_JOURNEY_RUNNING ||
	    record->state == FLOW_JOURNEY_WAITING)
		return store_put(gateway->store, STORE_DB_JOURNEYS_BY_NUMBER,
		    number_key, number_key_length, "", 0, 0);
	result = store_delete(gateway->store, STORE_DB_JOURNEYS_BY_NUMBER,
	    number_key, number_key_length);
	return result == STORE_NOT_FOUND ? STORE_OK : result;
}

/* The context templates see: person, event, journey, organization. */
static json_t *
flow_context(const struct profile *profile, json_t *event, uint64_t id,
    const struct flow *flow)
{
	char id_text[24];

	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);
	return json_pack("{s:o, s:O, s:{s:s, s:s}, s:{s:s, s:s}}", "person",
	    profile_to_json(profile), "event", event, "journey", "id", id_text,
	    "flow", flow->id, "organization", "name",
	    flow_config->organization_name, "url",
	    flow_config->organization_url);
}

/*
 * Due time of a delay: the duration, then (if asked) the next hh:mm in the
 * subscriber's zone (profile timezone through GLib, else UTC).
 */
static uint64_t
flow_delay_due(const struct flow_delay *delay, const struct profile *profile,
    uint64_t now_us)
{
	const char *zone_name;
	GTimeZone *zone = NULL;
	GDateTime *at, *target;
	uint64_t due = now_us + delay->duration_us;
	int64_t target_us;

	if (!delay->has_until)
		return due;
	zone_name =
	    json_string_value(json_object_get(profile->attributes, "timezone"));
	if (zone_name != NULL)
		zone = g_time_zone_new_identifier(zone_name);
	if (zone == NULL)
		zone = g_time_zone_new_utc();
	at = g_date_time_new_from_unix_utc((gint64)(due / 1000000));
	if (at == NULL) {
		g_time_zone_unref(zone);
		return due;
	}
	target = g_date_time_to_timezone(at, zone);
	g_date_time_unref(at);
	at = target;
	target = g_date_time_new(zone, g_date_time_get_year(at),
	    g_date_time_get_month(at), g_date_time_get_day_of_month(at),
	    delay->until_hour, delay->until_minute, 0);
	if (target != NULL &&
	    g_date_time_to_unix(target) < (gint64)(due / 1000000)) {
		GDateTime *next = g_date_time_add_days(target, 1);

		g_date_time_unref(target);
		target = next;
	}
	target_us = target != NULL ? g_date_time_to_unix(target) * 1000000
				   : (int64_t)due;
	if (target != NULL)
		g_date_time_unref(target);
	g_date_time_unref(at);
	g_time_zone_unref(zone);
	return (uint64_t)target_us;
}

/* Bucket 0..99 for an A/B split: the same subscriber always lands alike. */
static unsigned int
flow_ab_bucket(const char *number, const char *flow_id)
{
	uint64_t hash = 0xcbf29ce484222325ULL;
	const char *p;

	for (p = number; *p != '\0'; p++)
		hash = (hash ^ (uint8_t)*p) * 0x100000001b3ULL;
	hash = (hash ^ 0xff) * 0x100000001b3ULL;
	for (p = flow_id; *p != '\0'; p++)
		hash = (hash ^ (uint8_t)*p) * 0x100000001b3ULL;
	return (unsigned int)(hash % 100);
}

/* Counts an SMS step that sent nothing, per flow, step and reason. */
static void
flow_count_skip(const struct flow *flow, const struct flow_step *step,
    enum policy_reason reason)
{
	char labels[FLOW_ID_SIZE + 128];

	metrics_add(metric_skipped, 1);
	snprintf(labels, sizeof(labels),
	    "flow=\"%s\",step=\"%s\",reason=\"%s\"", flow->id, step->id,
	    policy_strreason(reason));
	metrics_add(
	    metrics_counter("nudge_flow_step_skipped_total", labels,
		"SMS steps that sent nothing, by flow, step and reason."),
	    1);
}

/* Sends a journey's SMS step through the outbox (abandonment limits). */
static void
flow_step_sms(uint64_t id, struct flow_journey_record *record,
    const struct flow *flow, const struct flow_step *step,
    const struct profile *profile, json_t *context, uint64_t now_us)
{
	const struct flow_text *text;
	struct outbox_request request;
	struct outbox_accepted accepted;
	char *rendered, origin[OUTBOX_ORIGIN_SIZE], reason[256];
	const char *field, *language, *zone;
	size_t length;
	enum policy_verdict verdict = POLICY_SEND;
	enum policy_reason policy_reason = POLICY_REASON_NONE;
	uint64_t not_before_us = 0;
	unsigned int flags = 0;

	snprintf(origin, sizeof(origin), "flow:%s", flow->id);
	/* One SMS per abandonment episode, within 48 h of the trigger. */
	if (flow->kind == FLOW_KIND_ABANDONMENT &&
	    (record->sms_sent > 0 || now_us > record->trigger_time_us +
						  FLOW_ABANDONMENT_WINDOW_US)) {
		flow_count_skip(flow, step,
		    record->sms_sent > 0 ? POLICY_REASON_ABANDONMENT_LIMIT
					 : POLICY_REASON_ABANDONMENT_48H);
		policy_record_decision(profile->number, POLICY_SKIP,
		    record->sms_sent > 0 ? POLICY_REASON_ABANDONMENT_LIMIT
					 : POLICY_REASON_ABANDONMENT_48H,
		    0, id, 0, origin, step->id);
		return;
	}
	/* Marketing passes consent, smart sending, caps and quiet hours. */
	zone =
	    json_string_value(json_object_get(profile->attributes, "timezone"));
	if (step->sms.message_class == OUTBOX_CLASS_MARKETING) {
		if (!step->sms.quiet_hours)
			flags |= POLICY_SKIP_QUIET_HOURS;
		if (!step->sms.smart_sending)
			flags |= POLICY_SKIP_SMART_SENDING;
		verdict = policy_check(profile->number, zone, flags, 0, now_us,
		    &not_before_us, &policy_reason);
		if (verdict == POLICY_SKIP) {
			flow_count_skip(flow, step, policy_reason);
			policy_record_decision(profile->number, POLICY_SKIP,
			    policy_reason, 0, id, 0, origin, step->id);
			return;
		}
	}
	language =
	    json_string_value(json_object_get(profile->attributes, "language"));
	if ((text = rule_sms_text(&step->sms, language)) == NULL)
		return;
	if ((rendered = malloc(FLOW_TEXT_MAX)) == NULL)
		fatal("flow", "out-of-memory", NULL);
	if (template_render(text->compiled, context, rendered, FLOW_TEXT_MAX,
		&length) != TEMPLATE_OK) {
		log_warnx(id, "flow", "render-failed", "flow=%s step=%s",
		    flow->id, step->id);
		free(rendered);
		return;
	}
	memset(&request, 0, sizeof(request));
	request.to = profile->number;
	request.zone = zone;
	/* Checked above; a deferral travels as not_before. */
	request.policy_flags = flags | POLICY_SKIP_QUIET_HOURS;
	request.not_before_us = verdict == POLICY_DEFER ? not_before_us : 0;
	request.text = rendered;
	request.text_length = length;
	request.message_class = (enum outbox_class)step->sms.message_class;
	request.origin = origin;
	if (outbox_submit(
		&request, &accepted, &field, reason, sizeof(reason)) == 0) {
		record->sms_sent++;
		metrics_add(metric_sms, 1);
		log_info(id, "flow", "sms",
		    "flow=%s step=%s message=%llu "
		    "parts=%u",
		    flow->id, step->id, (unsigned long long)accepted.id,
		    accepted.parts);
		/* In the same turn as the SMS: a reply finds it after a crash. */
		if (step->sms.question != NULL)
			conversation_open(profile->number, flow->id, flow->hash,
			    record->step, id, step->sms.question->conversation,
			    step->sms.question->reply_window_us);
	} else {
		metrics_add(metric_skipped, 1);
		log_info(id, "flow", "sms-refused",
		    "flow=%s step=%s field=%s "
		    "reason=\"%s\"",
		    flow->id, step->id, field, reason);
	}
	free(rendered);
}

/* Sets a profile property from an update step. */
static void
flow_step_update(
    const struct flow_step *step, struct profile *profile, json_t *context)
{
	json_t *properties, *inner;
	const char *path = step->update.property, *dot;
	char value[1024], part[128];
	size_t length;

	if (template_render(step->update.value, context, value, sizeof(value),
		&length) != TEMPLATE_OK)
		return;
	properties = json_object_get(profile->attributes, "properties");
	if (!json_is_object(properties)) {
		properties = json_object();
		json_object_set_new(
		    profile->attributes, "properties", properties);
	}
	/* "address.city" is nested, where conditions and templates look. */
	while ((dot = strchr(path, '.')) != NULL &&
	       (size_t)(dot - path) < sizeof(part)) {
		memcpy(part, path, (size_t)(dot - path));
		part[dot - path] = '\0';
		inner = json_object_get(properties, part);
		if (!json_is_object(inner)) {
			inner = json_object();
			json_object_set_new(properties, part, inner);
		}
		properties = inner;
		path = dot + 1;
	}
	json_object_set_new(properties, path, json_stringn(value, length));
	profile_save(profile);
	/* Later steps of this run see the new value, as after a delay. */
	json_object_set_new(context, "person", profile_to_json(profile));
}

/*
 * Runs a journey from record->step until it waits, ends or runs out of
 * steps. Every edge goes forward, so this ends within step_count steps.
 */
static void
flow_journey_run(uint64_t id, struct flow_journey_record *record,
    const struct flow *flow, struct profile *profile, json_t *event)
{
	const struct flow_step *step;
	const struct flow_ab_branch *branch;
	/*
	 * Built on the first step that renders or posts it: most journeys
	 * start with a delay and would build it only to drop it.
	 */
	json_t *context = NULL;
	uint64_t now_us = clock_now_us();
	uint32_t next;
	int holds;

	record->state = FLOW_JOURNEY_RUNNING;
	while (
	    record->step != FLOW_STEP_NONE && record->step < flow->step_count) {
		step = &flow->steps[record->step];
		next = step->next;
		record->steps_taken++;
		if (context == NULL && (step->type == FLOW_STEP_SMS ||
					   step->type == FLOW_STEP_UPDATE ||
					   step->type == FLOW_STEP_WEBHOOK))
			context = flow_context(profile, event, id, flow);
		switch (step->type) {
		case FLOW_STEP_DELAY:
			record->state = FLOW_JOURNEY_WAITING;
			record->due_us =
			    flow_delay_due(&step->delay, profile, now_us);
			record->step = next;
			{
				uint8_t key[8];

				flow_journey_key(id, key);
				timer_schedule(record->due_us,
				    TIMER_KIND_JOURNEY, key, sizeof(key),
				    &record->timer_id);
			}
			flow_journey_save(id, record, event);
			if (context != NULL)
				json_decref(context);
			return;
		case FLOW_STEP_CONDITIONAL_SPLIT:
		case FLOW_STEP_TRIGGER_SPLIT:
			holds = flow_conditions_hold(step->split.conditions,
			    step->split.condition_count, step->split.match_any,
			    profile, event, now_us);
			next = holds ? step->split.yes : step->split.no;
			break;
		case FLOW_STEP_AB_SPLIT:
			branch = rule_ab_branch(&step->ab,
			    flow_ab_bucket(profile->number, flow->id));
			next = branch != NULL ? branch->step : FLOW_STEP_NONE;
			break;
		case FLOW_STEP_SMS:
			flow_step_sms(
			    id, record, flow, step, profile, context, now_us);
			break;
		case FLOW_STEP_UPDATE:
			flow_step_update(step, profile, context);
			break;
		case FLOW_STEP_WEBHOOK: {
			char masked[LOG_MASKED_NUMBER_SIZE];

			/* The receiver learns which flow and step sent it. */
			json_object_set_new(context, "flow",
			    json_pack("{s:s, s:s}", "id", flow->id, "name",
				flow->name));
			json_object_set_new(context, "step",
			    json_pack("{s:s}", "id", step->id));
			log_info(id, "flow", "webhook",
			    "flow=%s step=%s "
			    "number=%s",
			    flow->id, step->id,
			    log_mask_number(
				profile->number, masked, sizeof(masked)));
			webhook_post_json(step->webhook.url, context, id);
			json_object_del(context, "flow");
			json_object_del(context, "step");
			break;
		}
		case FLOW_STEP_END:
		default:
			next = FLOW_STEP_NONE;
			break;
		}
		record->step = next;
	}
	record->state = FLOW_JOURNEY_DONE;
	flow_journey_save(id, record, event);
	log_info(id, "flow", "journey-done", "flow=%s steps=%u sms=%u",
	    flow->id, record->steps_taken, record->sms_sent);
	if (context != NULL)
		json_decref(context);
}

/* A journey's delay is over: load it, its flow version and profile, go on. */
static void
flow_journey_timer(
    void *arg, uint64_t timer_id, const void *payload, size_t payload_length)
{
	struct flow_journey_record record;
	struct profile profile;
	const struct flow *flow;
	json_t *event;
	uint64_t id;

	if (payload_length != 8)
		return;
	id = store_decode_u64(payload);
	if (flow_journey_load(id, &record, &event) != STORE_OK)
		return;
	if (record.state != FLOW_JOURNEY_WAITING ||
	    record.timer_id != timer_id) {
		json_decref(event);
		return;
	}
	if ((flow = flow_version(record.flow_hash, record.flow_id)) == NULL) {
		record.state = FLOW_JOURNEY_FAILED;
		flow_journey_save(id, &record, event);
		log_warnx(id, "flow", "version-missing", "flow=%s hash=%016llx",
		    record.flow_id, (unsigned long long)record.flow_hash);
		json_decref(event);
		return;
	}
	if (profile_load(record.number, &profile) == STORE_OK) {
		flow_journey_run(id, &record, flow, &profile, event);
		profile_release(&profile);
	}
	json_decref(event);
}

/* Ends the subscriber's journeys whose flow exits on metric. */
static void
flow_exit_journeys(
    const struct profile *profile, const char *metric, uint64_t time_us)
{
	struct flow_journey_record record;
	struct store_cursor *cursor;
	const struct flow *flow;
	const void *key, *value;
	const char *digits = profile->number + 1;
	size_t key_length, value_length, digits_length = strlen(digits);
	size_t count = 0, i, j;
	uint64_t ids[256];
	char origin[OUTBOX_ORIGIN_SIZE];
	json_t *event;
	enum store_result result;

	if (store_cursor_open(gateway->store, STORE_DB_JOURNEYS_BY_NUMBER,
		&cursor) != STORE_OK)
		return;
	for (result = store_cursor_seek(cursor, digits, digits_length + 1, &key,
		 &key_length, &value, &value_length);
	     result == STORE_OK && count < sizeof(ids) / sizeof(ids[0]);
	     result = store_cursor_next(
		 cursor, &key, &key_length, &value, &value_length)) {
		if (key_length != digits_length + 9 ||
		    memcmp(key, digits, digits_length + 1) != 0)
			break;
		ids[count++] =
		    store_decode_u64((const uint8_t *)key + digits_length + 1);
	}
	store_cursor_close(cursor);
	for (i = 0; i < count; i++) {
		if (flow_journey_load(ids[i], &record, &event) != STORE_OK)
			continue;
		flow = flow_version(record.flow_hash, record.flow_id);
		for (j = 0; flow != NULL && j < flow->exit_metric_count; j++) {
			if (strcmp(flow->exit_metrics[j], metric) != 0 ||
			    time_us < record.trigger_time_us)
				continue;
			record.state = FLOW_JOURNEY_EXITED;
			if (record.timer_id != 0)
				timer_cancel(record.due_us, record.timer_id);
			flow_journey_save(ids[i], &record, event);
			metrics_add(metric_exited, 1);
			log_info(ids[i], "flow", "journey-exited",
			    "flow=%s metric=\"%s\"", flow->id, metric);
			snprintf(origin, sizeof(origin), "flow:%s", flow->id);
			policy_record_decision(profile->number, POLICY_SKIP,
			    POLICY_REASON_EXITED, 0, ids[i], 0, origin, metric);
			break;
		}
		json_decref(event);
	}
}

/* Whether re-entry allows a new journey now (records the entry if so);
 * context is read only by FLOW_REENTRY_KEY and may be NULL otherwise. */
static int

flow_may_enter(const struct flow *flow, const struct profile *profile,
    json_t *context, uint64_t now_us)
{
	uint8_t key[FLOW_ENTRY_KEY_MAX];
	char rendered[256];
	const void *value;
	size_t length, rendered_length = 0, value_length;
	uint8_t stamp[8];

	if (flow->reentry.mode == FLOW_REENTRY_ALWAYS)
		return 1;
	if (flow->reentry.mode == FLOW_REENTRY_KEY &&
	    (flow->reentry.key == NULL ||
		template_render(flow->reentry.key, context, rendered,
		    sizeof(rendered), &rendered_length) != TEMPLATE_OK ||
		rendered_length == 0))
		return 0;
	length = (size_t)snprintf((char *)key, sizeof(key), "%s%c%s%c%.*s",
	    flow->id, '\0', profile->number + 1, '\0', (int)rendered_length,
	    rendered);
	if (length >= sizeof(key))
		return 0;
	if (store_get(gateway->store, STORE_DB_FLOW_ENTRIES, key, length,
		&value, &value_length) == STORE_OK &&
	    value_length == 8) {
		uint64_t last = store_decode_u64(value);

		if (flow->reentry.mode == FLOW_REENTRY_ONCE ||
		    flow->reentry.period_us == 0 ||
		    now_us < last + flow->reentry.period_us)
			return 0;
	}
	store_encode_u64(stamp, now_us);
	store_put(gateway->store, STORE_DB_FLOW_ENTRIES, key, length, stamp,
	    sizeof(stamp), 0);
	return 1;
}

/* Starts a journey of flow for the profile, and runs it. */
static uint64_t
flow_start(const struct flow *flow, struct profile *profile, json_t *event,
    uint64_t event_id, uint64_t time_us)
{
	struct flow_journey_record record;
	uint64_t id, now_us = clock_now_us();
	json_t *context = NULL;
	int allowed;

	/* Only a re-entry key renders on the context: build it just then. */
	if (flow->reentry.mode == FLOW_REENTRY_KEY)
		context = flow_context(profile, event, 0, flow);
	allowed = flow_may_enter(flow, profile, context, now_us);
	if (context != NULL)
		json_decref(context);
	if (!allowed)
		return 0;
	if ((id = store_sequence_next(
		 gateway->store, STORE_SEQUENCE_JOURNEY)) == 0)
		return 0;
	memset(&record, 0, sizeof(record));
	record.version = FLOW_RECORD_VERSION;
	record.step = 0;
	record.flow_hash = flow->hash;
	record.started_us = now_us;
	record.trigger_time_us = time_us;
	record.trigger_event_id = event_id;
	snprintf(record.flow_id, sizeof(record.flow_id), "%s", flow->id);
	snprintf(record.number, sizeof(record.number), "%s", profile->number);
	metrics_add(metric_started, 1);
	log_info(id, "flow", "journey-started", "flow=%s event=%llu", flow->id,
	    (unsigned long long)event_id);
	flow_journey_run(id, &record, flow, profile, event);
	return id;
}

/* Ends the journeys an event exits and starts those it triggers. */
static void
flow_run_event(uint64_t event_id, const char *metric, struct profile *profile,
    json_t *properties, uint64_t time_us, json_t *journeys)
{
	const struct flow *flow;
	json_t *event = properties != NULL ? properties : json_object();
	uint64_t id;
	char id_text[24];
	size_t i;

	flow_exit_journeys(profile, metric, time_us);
	for (i = 0; i < file_count; i++) {
		flow = files[i].flow;
		if (flow == NULL || flow->status != FLOW_STATUS_LIVE ||
		    flow->trigger.type != FLOW_TRIGGER_METRIC ||
		    strcmp(flow->trigger.metric, metric) != 0)
			continue;
		if (!flow_conditions_hold(flow->trigger.filters,
			flow->trigger.filter_count, 0, profile, event,
			clock_now_us()))
			continue;
		if ((id = flow_start(
			 flow, profile, event, event_id, time_us)) == 0)
			continue;
		snprintf(
		    id_text, sizeof(id_text), "%llu", (unsigned long long)id);
		json_array_append_new(journeys,
		    json_pack("{s:s, s:s}", "id", id_text, "flow", flow->id));
	}
	if (properties == NULL)
		json_decref(event);
}

/* The events API hands every stored event here. */
static void
flow_handle_event(void *arg, uint64_t event_id, const char *metric,
    struct profile *profile, json_t *properties, uint64_t time_us,
    json_t *journeys)
{
	flow_run_event(
	    event_id, metric, profile, properties, time_us, journeys);
}

void
flow_event(const char *metric, struct profile *profile, json_t *properties,
    uint64_t time_us, json_t *journeys)
{
	flow_run_event(0, metric, profile, properties, time_us, journeys);
}

json_t *
flow_health(void)
{
	json_t *failing = json_array();
	size_t i, loaded = 0;

	for (i = 0; i < file_count; i++) {
		if (files[i].flow != NULL)
			loaded++;
		if (files[i].failing)
			json_array_append_new(failing,
			    json_pack("{s:s, s:b}", "file", files[i].path,
				"running_previous", files[i].flow != NULL));
	}
	return json_pack("{s:I, s:o}", "flows_loaded", (json_int_t)loaded,
	    "failing", failing);
}

/* ---- replies and keywords ------------------------------------------------- */

const struct flow_question *
flow_question(const char *flow_id, uint64_t flow_hash, uint32_t step)
{
	const struct flow *flow = flow_version(flow_hash, flow_id);

	if (flow == NULL || step >= flow->step_count ||
	    flow->steps[step].type != FLOW_STEP_SMS)
		return NULL;
	return flow->steps[step].sms.question;
}

/* The live flow of the folder with this id, or NULL. */
static const struct flow *
flow_live(const char *flow_id)
{
	size_t i;

	for (i = 0; i < file_count; i++)
		if (files[i].flow != NULL &&
		    files[i].flow->status == FLOW_STATUS_LIVE &&
		    strcmp(files[i].flow->id, flow_id) == 0)
			return files[i].flow;
	return NULL;
}

/* Loads the number's profile and starts flow on properties. */
static uint64_t
flow_start_for_number(
    const struct flow *flow, const char *number, json_t *properties)
{
	struct profile profile;
	uint64_t id, now_us = clock_now_us();

	if (profile_load(number, &profile) != STORE_OK)
		return 0;
	/* A person who only ever texted us gets a profile now. */
	if (!profile.exists)
		profile_save(&profile);
	id = flow_start(flow, &profile, properties, 0, now_us);
	profile_release(&profile);
	return id;
}

uint64_t
flow_start_reply(const char *flow_id, const char *number, json_t *properties)
{
	const struct flow *flow = flow_live(flow_id);

	if (flow == NULL || flow->trigger.type != FLOW_TRIGGER_REPLY) {
		log_warnx(0, "flow", "reply-flow-missing", "flow=%s", flow_id);
		return 0;
	}
	return flow_start_for_number(flow, number, properties);
}

const struct flow *
flow_keyword_flow(const char *text, size_t length)
{
	const struct flow *flow;
	size_t i, keyword_length;

	while (length > 0 && (*text == ' ' || *text == '\t' || *text == '\n' ||
				 *text == '\r')) {
		text++;
		length--;
	}
	for (i = 0; i < file_count; i++) {
		flow = files[i].flow;
		if (flow == NULL || flow->status != FLOW_STATUS_LIVE ||
		    flow->trigger.type != FLOW_TRIGGER_KEYWORD ||
		    flow->trigger.keyword == NULL)
			continue;
		keyword_length = strlen(flow->trigger.keyword);
		if (keyword_length == 0 || keyword_length > length ||
		    strncasecmp(text, flow->trigger.keyword, keyword_length) !=
			0)
			continue;
		/* "JOIN" and "join now", never "JOINT". */
		if (keyword_length == length || text[keyword_length] == ' ' ||
		    text[keyword_length] == '\t' ||
		    text[keyword_length] == '\n' ||
		    text[keyword_length] == '\r')
			return flow;
	}
	return NULL;
}

uint64_t
flow_start_keyword(
    const struct flow *flow, const char *number, json_t *properties)
{
	return flow_start_for_number(flow, number, properties);
}

/* ---- start and stop ------------------------------------------------------ */

void
flow_init(struct event_base *base, const struct config *config)
{
	flow_config = config;
	metric_started = metrics_counter("nudge_journeys_started_total", NULL,
	    "Journeys started by events.");
	metric_exited = metrics_counter("nudge_journeys_exited_total", NULL,
	    "Journeys ended by an exit metric.");
	metric_sms = metrics_counter("nudge_flow_sms_total", NULL,
	    "SMS handed to the outbox by flow steps.");
	metric_skipped = metrics_counter("nudge_flow_sms_skipped_total", NULL,
	    "SMS steps that sent nothing (limits, refusals).");
	metric_rule_errors = metrics_counter("nudge_rule_errors_total", NULL,
	    "Errors found in rule files as they were loaded.");
	metric_loaded = metrics_counter(
	    "nudge_rule_loads_total", NULL, "Rule file versions loaded.");
	timer_register(TIMER_KIND_JOURNEY, flow_journey_timer, NULL);
	api_event_set_handler(flow_handle_event, NULL);
	if (config->rules_dir[0] == '\0')
		return;
	flow_reload();
	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (inotify_fd == -1 ||
	    inotify_add_watch(inotify_fd, config->rules_dir,
		IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
		    IN_CREATE) == -1) {
		log_warn(0, "flow", "inotify",
		    "path=%s reason=\"changes need "
		    "SIGHUP\"",
		    config->rules_dir);
		return;
	}
	inotify_event = event_new(
	    base, inotify_fd, EV_READ | EV_PERSIST, flow_inotify_read, NULL);
	reload_event = evtimer_new(base, flow_reload_timer, NULL);
	if (inotify_event == NULL || reload_event == NULL)
		fatal("flow", "out-of-memory", NULL);
	event_add(inotify_event, NULL);
}

void
flow_free(void)
{
	size_t i;

	if (inotify_event != NULL)
		event_free(inotify_event);
	if (reload_event != NULL)
		event_free(reload_event);
	inotify_event = reload_event = NULL;
	if (inotify_fd != -1)
		close(inotify_fd);
	inotify_fd = -1;
	for (i = 0; i < file_count; i++) {
		if (files[i].flow != NULL)
			rule_free(files[i].flow);
		free(files[i].path);
	}
	free(files);
	files = NULL;
	file_count = 0;
	for (i = 0; i < version_count; i++)
		rule_free(versions[i]);
	free(versions);
	versions = NULL;
	version_count = 0;
}
