/*
 * test_flow.c - the flow runtime (src/flow.c) on a real store in a
 * mkdtemp() directory, a real event loop and the real outbox, whose one
 * link points at a port nobody listens on, so every SMS a flow sends stays
 * in the outbox where the test reads it back. Rule files are written into
 * a temporary rules folder and loaded with flow_reload(); events go in
 * through flow_event(), the way the events API hands them over; delays are
 * crossed by moving the test clock and letting the durable timers fire in
 * a bounded loop run.
 *
 * The test clock only moves forward and the first test sets it to dates
 * in 2036 (daylight saving changes), so every other test computes its
 * times from clock_now_us(). Each test uses its own numbers and metrics,
 * and its rule files are removed afterwards.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <jansson.h>

#include "smpp.h"
#include "nudged.h"

#define SECOND_US 1000000ULL
#define MINUTE_US (60 * SECOND_US)
#define HOUR_US   (60 * MINUTE_US)
#define DAY_US    (24 * HOUR_US)
#define SMS_MAX   16
#define SMS_TEXT  1024
#define LOOP_MS   50

/* A whole rule file: a live flow with a metric trigger. */
#define FLOW_XML(id, attributes, metric, rules, steps)                         \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                         \
	"<flow id=\"" id "\" name=\"" id "\" status=\"live\"" attributes ">\n" \
	"  <trigger><metric name=\"" metric "\"/></trigger>\n" rules           \
	"  <steps>\n" steps "  </steps>\n"                                     \
	"</flow>\n"

/* What the whole group shares. */
static struct {
	char path[64];
	char rules[96];
	char config_path[96];
	struct event_base *base;
	struct store *store;
	struct config *config;
} world;

/* The SMS the outbox holds for one number, oldest first (collect_sms). */
static struct {
	size_t count;
	uint64_t ids[SMS_MAX];
	struct outbox_message_record records[SMS_MAX];
	char texts[SMS_MAX][SMS_TEXT];
} sms;

/* ---- the loop and the clock -------------------------------------------- */

/* Runs the loop for a bounded while: due timers fire, the turn commits. */
static void
run_loop(void)
{
	struct timeval bound = {0, LOOP_MS * 1000};

	assert_int_equal(event_base_loopexit(world.base, &bound), 0);
	assert_true(event_base_loop(world.base, 0) >= 0);
	assert_int_equal(store_commit(world.store), STORE_OK);
}

/* Moves the test clock forward and lets every timer due by then fire. */
static void
advance(uint64_t delta_us)
{
	clock_advance_us(delta_us);
	timer_rearm();
	run_loop();
}

/* Moves the test clock forward to at_us (it never goes back). */
static void
set_clock(uint64_t at_us)
{
	uint64_t now_us = clock_now_us();

	assert_true(now_us < at_us);
	advance(at_us - now_us);
	assert_true(clock_now_us() - at_us < SECOND_US);
}

/* Microseconds since the epoch of a UTC date and time. */
static uint64_t
utc(int year, int month, int day, int hour, int minute)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = month - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = minute;
	return (uint64_t)timegm(&tm) * SECOND_US;
}

/* ---- rule files -------------------------------------------------------- */

static void
write_rule_file(const char *id, const char *xml)
{
	char path[192];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s.xml", world.rules, id);
	file = fopen(path, "w");
	assert_non_null(file);
	assert_true(fputs(xml, file) >= 0);
	assert_int_equal(fclose(file), 0);
}

/* Writes a rule file and loads the folder: it must load clean. */
static void
install_rule_file(const char *id, const char *xml)
{
	write_rule_file(id, xml);
	assert_int_equal(flow_reload(), 0);
	assert_int_equal(store_commit(world.store), STORE_OK);
}

/* Installs a live flow built from its parts; trigger is the XML inside
 * <trigger>. */
static void
install_flow_trigger(const char *id, const char *attributes,
    const char *trigger, const char *rules, const char *steps)
{
	static char xml[16384];
	int length;

	length = snprintf(xml, sizeof(xml),
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<flow id=\"%s\" name=\"%s\" status=\"live\"%s>\n"
	    "  <trigger>%s</trigger>\n"
	    "%s  <steps>\n%s  </steps>\n</flow>\n",
	    id, id, attributes, trigger, rules, steps);
	assert_true(length > 0 && (size_t)length < sizeof(xml));
	install_rule_file(id, xml);
}

/* The same, triggered by the event named metric. */
static void
install_flow(const char *id, const char *attributes, const char *metric,
    const char *rules, const char *steps)
{
	char trigger[256];

	snprintf(trigger, sizeof(trigger), "<metric name=\"%s\"/>", metric);
	install_flow_trigger(id, attributes, trigger, rules, steps);
}

/* Appends a split whose branches note its answer: property=yes or no. */
static void
note_split(char *steps, size_t size, const char *element,
    const char *attributes, const char *property, const char *conditions)
{
	size_t length = strlen(steps);
	int written;

	written = snprintf(steps + length, size - length,
	    "<%s%s>%s\n"
	    "  <yes><update property=\"%s\" value=\"yes\"/></yes>\n"
	    "  <no><update property=\"%s\" value=\"no\"/></no>\n"
	    "</%s>\n",
	    element, attributes, conditions, property, property, element);
	assert_true(written > 0 && (size_t)written < size - length);
}

/* Removes every rule file; their flows stop starting journeys. */
static void
clear_rules(void)
{
	struct dirent *entry;
	char path[512];
	DIR *folder;

	folder = opendir(world.rules);
	assert_non_null(folder);
	while ((entry = readdir(folder)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		snprintf(
		    path, sizeof(path), "%s/%s", world.rules, entry->d_name);
		assert_int_equal(unlink(path), 0);
	}
	closedir(folder);
	assert_int_equal(flow_reload(), 0);
}

/* ---- profiles and events ----------------------------------------------- */

/* Merges an API profile object into number's profile and saves it. */
static void
given_profile(const char *number, const char *json)
{
	struct profile profile;
	const char *field = NULL;
	char reason[256];
	json_t *object;

	object = json_loads(json, 0, NULL);
	assert_non_null(object);
	assert_int_equal(profile_load(number, &profile), STORE_OK);
	assert_int_equal(
	    profile_merge(&profile, object, &field, reason, sizeof(reason)), 0);
	assert_int_equal(profile_save(&profile), STORE_OK);
	profile_release(&profile);
	json_decref(object);
	/* Marketing flows need SMS consent, as from a signed-up form. */
	if (consent_get(number) == CONSENT_NEVER)
		assert_int_equal(consent_set(number, CONSENT_SUBSCRIBED,
				     CONSENT_SOURCE_FORM, "test-v1"),
		    STORE_OK);
	assert_int_equal(store_commit(world.store), STORE_OK);
}

/* Records an order placed at time_us, as a Placed Order event does. */
static void
given_order(const char *number, double value, uint64_t time_us)
{
	struct profile profile;

	assert_int_equal(profile_load(number, &profile), STORE_OK);
	profile_record_order(&profile, value, time_us);
	assert_int_equal(profile_save(&profile), STORE_OK);
	profile_release(&profile);
	assert_int_equal(store_commit(world.store), STORE_OK);
}

/* A profile property as text, or NULL when it is absent. */
static const char *
property_of(const char *number, const char *name)
{
	static char value[256];
	struct profile profile;
	const char *text;

	assert_int_equal(profile_load(number, &profile), STORE_OK);
	text = json_string_value(json_object_get(
	    json_object_get(profile.attributes, "properties"), name));
	if (text != NULL)
		snprintf(value, sizeof(value), "%s", text);
	profile_release(&profile);
	return text != NULL ? value : NULL;
}

/* The nested profile property address.city, or NULL. */
static const char *
city_of(const char *number)
{
	static char value[256];
	struct profile profile;
	const char *text;

	assert_int_equal(profile_load(number, &profile), STORE_OK);
	text = json_string_value(json_object_get(
	    json_object_get(
		json_object_get(profile.attributes, "properties"), "address"),
	    "city"));
	if (text != NULL)
		snprintf(value, sizeof(value), "%s", text);
	profile_release(&profile);
	return text != NULL ? value : NULL;
}

/*
 * Hands one event (properties: JSON text or NULL) to the flows, as the
 * events API does once it stored it; returns how many journeys it started
 * and the first one's id in *journey.
 */
static size_t
send_event_at(const char *number, const char *metric, const char *properties,
    uint64_t time_us, uint64_t *journey)
{
	struct profile profile;
	json_t *object = NULL, *journeys, *first;
	size_t count;

	/* As a signed-up form would: marketing flows need SMS consent. */
	if (consent_get(number) == CONSENT_NEVER)
		assert_int_equal(consent_set(number, CONSENT_SUBSCRIBED,
				     CONSENT_SOURCE_FORM, "test-v1"),
		    STORE_OK);
	if (properties != NULL) {
		object = json_loads(properties, 0, NULL);
		assert_non_null(object);
	}
	assert_int_equal(profile_load(number, &profile), STORE_OK);
	if (strcmp(metric, "Placed Order") == 0)
		profile_record_order(&profile,
		    json_number_value(json_object_get(object, "value")),
		    time_us);
	assert_int_equal(profile_save(&profile), STORE_OK);
	journeys = json_array();
	flow_event(metric, &profile, object, time_us, journeys);
	count = json_array_size(journeys);
	if (journey != NULL) {
		*journey = 0;
		first = json_array_get(journeys, 0);
		if (first != NULL)
			*journey = strtoull(
			    json_string_value(json_object_get(first, "id")),
			    NULL, 10);
	}
	json_decref(journeys);
	json_decref(object);
	profile_release(&profile);
	assert_int_equal(store_commit(world.store), STORE_OK);
	return count;
}

static size_t
send_event(const char *number, const char *metric, const char *properties,
    uint64_t *journey)
{
	return send_event_at(
	    number, metric, properties, clock_now_us(), journey);
}

/* ---- what the runtime left in the store -------------------------------- */

static void
read_journey(uint64_t id, struct flow_journey_record *record)
{
	const void *value;
	size_t length;
	uint8_t key[8];

	assert_true(id != 0);
	store_encode_u64(key, id);
	assert_int_equal(store_get(world.store, STORE_DB_JOURNEYS, key,
			     sizeof(key), &value, &length),
	    STORE_OK);
	assert_true(length >= sizeof(*record));
	memcpy(record, value, sizeof(*record));
}

/* 1 if the timer row (due, id) exists and wakes journey; else 0. */
static int
timer_row_for(uint64_t due_us, uint64_t timer_id, uint64_t journey)
{
	const uint8_t *value;
	const void *found;
	uint8_t key[16];
	size_t length;

	store_encode_u64(key, due_us);
	store_encode_u64(key + 8, timer_id);
	if (store_get(world.store, STORE_DB_TIMERS, key, sizeof(key), &found,
		&length) != STORE_OK)
		return 0;
	value = found;
	assert_int_equal(length, 2 + 8);
	assert_int_equal((value[0] << 8) | value[1], TIMER_KIND_JOURNEY);
	assert_int_equal(store_decode_u64(value + 2), journey);
	return 1;
}

/* Reads back every SMS the outbox holds for number into `sms`. */
static size_t
collect_sms(const char *number)
{
	struct outbox_message_record record;
	struct store_cursor *cursor;
	const void *key, *value;
	size_t key_length, value_length, i;
	enum store_result result;
	uint8_t start[8];

	memset(&sms, 0, sizeof(sms));
	assert_int_equal(store_commit(world.store), STORE_OK);
	result = store_cursor_open(world.store, STORE_DB_MESSAGES, &cursor);
	if (result == STORE_NOT_FOUND)
		return 0;
	assert_int_equal(result, STORE_OK);
	store_encode_u64(start, 0);
	for (result = store_cursor_seek(cursor, start, sizeof(start), &key,
		 &key_length, &value, &value_length);
	     result == STORE_OK; result = store_cursor_next(cursor, &key,
				     &key_length, &value, &value_length)) {
		assert_int_equal(key_length, 8);
		assert_true(value_length >= sizeof(record));
		memcpy(&record, value, sizeof(record));
		if (strcmp(record.to, number) != 0)
			continue;
		assert_true(sms.count < SMS_MAX);
		sms.ids[sms.count++] = store_decode_u64(key);
	}
	store_cursor_close(cursor);
	for (i = 0; i < sms.count; i++)
		assert_int_equal(outbox_read_message(sms.ids[i],
				     &sms.records[i], sms.texts[i], SMS_TEXT),
		    STORE_OK);
	return sms.count;
}

/* ---- setup -------------------------------------------------------------- */

/* A TCP port on 127.0.0.1 that nothing listens on. */
static uint16_t
free_port(void)
{
	struct sockaddr_in address;
	socklen_t length = sizeof(address);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(
	    bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	assert_int_equal(
	    getsockname(fd, (struct sockaddr *)&address, &length), 0);
	close(fd);
	return ntohs(address.sin_port);
}

static void
start_gateway(void)
{
	struct store_options options;

	memset(&options, 0, sizeof(options));
	options.path = world.path;
	world.store = store_open(&options);
	assert_non_null(world.store);
	store_attach(world.store, world.base);
	gateway->store = world.store;
	timer_init(world.base, world.store);
	outbox_init(world.base, world.config);
	outbox_start();
	consent_init(world.config);
	quiet_init(world.config);
	policy_init(world.config);
	flow_init(world.base, world.config);
	assert_int_equal(store_commit(world.store), STORE_OK);
}

static void
stop_gateway(void)
{
	flow_free();
	outbox_free();
	timer_shutdown();
	store_close(world.store);
	gateway->store = NULL;
	world.store = NULL;
}

/*
 * outbox_init() makes mo.c allocate its reassembly table, and nothing
 * frees it (the daemon starts the outbox once); the simulated restarts
 * below start it again, so LeakSanitizer is told about that one table.
 */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:mo_init\n";
}

/* A restart as after kill -9 between two loop turns: nothing in memory. */
static void
restart(void)
{
	stop_gateway();
	start_gateway();
}

static int
group_setup(void **state)
{
	struct event_config *event_config;
	FILE *file;
	int errors = 0;

	strcpy(world.path, "/tmp/nudge-test-flow-XXXXXX");
	assert_non_null(mkdtemp(world.path));
	snprintf(world.rules, sizeof(world.rules), "%s/rules", world.path);
	assert_int_equal(mkdir(world.rules, 0700), 0);
	snprintf(world.config_path, sizeof(world.config_path), "%s/nudged.conf",
	    world.path);
	file = fopen(world.config_path, "w");
	assert_non_null(file);
	fprintf(file,
	    "[nudged]\n"
	    "data_dir = %s\n"
	    "rules_dir = %s\n"
	    "organization_name = Nudge Shoes\n"
	    "organization_url = https://shop.example\n"
	    "[link up]\n"
	    "host = 127.0.0.1\n"
	    "port = %u\n"
	    "system_id = up\n"
	    "reconnect_min = 10s\n"
	    "reconnect_max = 60s\n",
	    world.path, world.rules, free_port());
	fclose(file);
	world.config = config_load(world.config_path, &errors);
	assert_non_null(world.config);
	assert_int_equal(errors, 0);

	event_config = event_config_new();
	assert_non_null(event_config);
	event_config_set_flag(event_config, EVENT_BASE_FLAG_PRECISE_TIMER);
	world.base = event_base_new_with_config(event_config);
	event_config_free(event_config);
	assert_non_null(world.base);
	gateway->base = world.base;
	gateway->config = world.config;
	optout_init();
	profile_init(world.config);
	start_gateway();
	*state = NULL;
	return 0;
}

static int
group_teardown(void **state)
{
	char file[160];

	stop_gateway();
	gateway->base = NULL;
	gateway->config = NULL;
	event_base_free(world.base);
	config_free(world.config);
	http_stop();
	metrics_reset();
	rule_cleanup();
	snprintf(file, sizeof(file), "%s/data.mdb", world.path);
	unlink(file);
	snprintf(file, sizeof(file), "%s/lock.mdb", world.path);
	unlink(file);
	unlink(world.config_path);
	rmdir(world.rules);
	rmdir(world.path);
	return 0;
}

static int
teardown(void **state)
{
	clear_rules();
	assert_int_equal(store_commit(world.store), STORE_OK);
	return 0;
}

/* ---- delay -------------------------------------------------------------- */

/* A delay is a timer row due after the duration; its firing goes on. */
static void
test_delay_waits_then_continues(void **state)
{
	const char *number = "+393400000001";
	struct flow_journey_record record;
	uint64_t id, before, after, due;

	install_flow("t-delay", "", "Delay Test", "",
	    "<delay id=\"wait\" duration=\"2h\"/>\n"
	    "<sms id=\"after\"><text lang=\"en\">"
	    "Still there, {{ first_name|default:'friend' }}?"
	    "</text></sms>\n");
	given_profile(number, "{\"first_name\": \"Anna\"}");

	before = clock_now_us();
	assert_int_equal(send_event(number, "Delay Test", NULL, &id), 1);
	after = clock_now_us();
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_WAITING);
	assert_int_equal(record.step, 1);
	assert_int_equal(record.steps_taken, 1);
	assert_int_equal(record.sms_sent, 0);
	assert_string_equal(record.flow_id, "t-delay");
	assert_string_equal(record.number, number);
	assert_int_equal(record.trigger_event_id, 0);
	assert_true(record.trigger_time_us >= before &&
		    record.trigger_time_us <= after);
	due = record.due_us;
	assert_true(due >= before + 2 * HOUR_US && due <= after + 2 * HOUR_US);
	assert_true(timer_row_for(due, record.timer_id, id));
	assert_int_equal(collect_sms(number), 0);

	/* Half-way: nothing happens. */
	advance(HOUR_US);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_WAITING);
	assert_true(timer_row_for(due, record.timer_id, id));
	assert_int_equal(collect_sms(number), 0);

	advance(HOUR_US);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(record.step, FLOW_STEP_NONE);
	assert_int_equal(record.steps_taken, 2);
	assert_int_equal(record.sms_sent, 1);
	assert_false(timer_row_for(due, record.timer_id, id));
	assert_int_equal(collect_sms(number), 1);
	assert_string_equal(sms.texts[0], "Still there, Anna?");
	assert_string_equal(sms.records[0].origin, "flow:t-delay");
	assert_int_equal(sms.records[0].message_class, OUTBOX_CLASS_MARKETING);
	assert_int_equal(sms.records[0].state, OUTBOX_QUEUED);
	assert_int_equal(sms.records[0].part_count, 1);
	assert_int_equal(sms.records[0].data_coding, SMPP_CODING_DEFAULT);

	/* Its timer row is gone: later firings send nothing more. */
	advance(DAY_US);
	assert_int_equal(collect_sms(number), 1);
}

/* The due time of a fresh journey of metric for number. */
static uint64_t
due_of(const char *number, const char *metric)
{
	struct flow_journey_record record;
	uint64_t id;

	assert_int_equal(send_event(number, metric, NULL, &id), 1);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_WAITING);
	return record.due_us;
}

/*
 * "until" is the next hh:mm on the subscriber's wall clock, also on the
 * days the clocks change (2036: US on 9 March and 2 November, Europe on
 * 30 March and 26 October); without a zone it is UTC.
 */
static void
test_delay_until_local_time(void **state)
{
	const char *new_york = "+12125550100", *rome = "+393400000002";
	const char *nowhere = "+447700900003";

	install_flow("t-nine", "", "Until Nine", "",
	    "<delay until=\"09:00\"/>\n"
	    "<sms><text lang=\"en\">Good morning</text>"
	    "</sms>\n");
	install_flow("t-six", "", "Until Six", "",
	    "<delay until=\"18:00\"/>\n"
	    "<update property=\"evening\" value=\"yes\"/>\n");
	install_flow("t-ten", "", "Until Ten", "",
	    "<delay until=\"10:00\"/>\n"
	    "<update property=\"ten\" value=\"yes\"/>\n");
	install_flow("t-day", "", "Day Then Nine", "",
	    "<delay duration=\"1d\" until=\"09:00\"/>\n"
	    "<update property=\"day\" value=\"yes\"/>\n");
	given_profile(new_york, "{\"timezone\": \"America/New_York\"}");
	given_profile(rome, "{\"timezone\": \"Europe/Rome\"}");
	given_profile(nowhere, "{\"first_name\": \"Sam\"}");

	/* Saturday 15:00 EST; the clocks go forward that night. */
	set_clock(utc(2036, 3, 8, 20, 0));
	assert_int_equal(
	    due_of(new_york, "Until Nine"), utc(2036, 3, 9, 13, 0));
	assert_int_equal(due_of(new_york, "Until Six"), utc(2036, 3, 8, 23, 0));
	assert_int_equal(due_of(nowhere, "Until Nine"), utc(2036, 3, 9, 9, 0));
	/* It goes on when the hour comes, not before. */
	set_clock(utc(2036, 3, 9, 12, 59));
	assert_int_equal(collect_sms(new_york), 0);
	assert_int_equal(collect_sms(nowhere), 1);
	assert_string_equal(property_of(new_york, "evening"), "yes");
	set_clock(utc(2036, 3, 9, 13, 0));
	assert_int_equal(collect_sms(new_york), 1);
	assert_string_equal(sms.texts[0], "Good morning");

	/* Saturday 21:00 CET in Rome; CEST from 02:00 that night. */
	set_clock(utc(2036, 3, 29, 20, 0));
	assert_int_equal(due_of(rome, "Until Ten"), utc(2036, 3, 30, 8, 0));
	/* Saturday 22:00 CEST; CET from 03:00 that night. */
	set_clock(utc(2036, 10, 25, 20, 0));
	assert_int_equal(due_of(rome, "Until Ten"), utc(2036, 10, 26, 9, 0));
	/* Saturday 16:00 EDT; EST from 02:00 that night. */
	set_clock(utc(2036, 11, 1, 20, 0));
	assert_int_equal(
	    due_of(new_york, "Until Nine"), utc(2036, 11, 2, 14, 0));
	/* One day first (Sunday 15:00 EST), then the next 09:00. */
	assert_int_equal(
	    due_of(new_york, "Day Then Nine"), utc(2036, 11, 3, 14, 0));
	/* An unknown zone counts as UTC. */
	given_profile(nowhere, "{\"timezone\": \"Mars/Olympus_Mons\"}");
	assert_int_equal(due_of(nowhere, "Until Nine"), utc(2036, 11, 2, 9, 0));
}

/* ---- splits ------------------------------------------------------------- */

/* Every profile condition, answered yes by one profile and no by another. */
static void
test_conditional_splits(void **state)
{
	static const struct {
		const char *attributes;
		const char *property;
		const char *condition;
		const char *answers; /* of the three profiles, y or n */
	} splits[] = {
	    {"", "r_consent",
		"<consent operator=\"equals\" "
		"value=\"subscribed\"/>",
		"yny"},
	    {"", "r_orders",
		"<order-count operator=\"greater-than\" "
		"value=\"1\" over=\"30d\"/>",
		"ynn"},
	    {"", "r_never", "<order-count operator=\"equals\" value=\"0\"/>",
		"nyn"},
	    {"", "r_all_time",
		"<order-count operator=\"equals\" value=\"3\" "
		"over=\"all-time\"/>",
		"yny"},
	    {"", "r_spent",
		"<total-spent operator=\"greater-than\" "
		"value=\"100\"/>",
		"ynn"},
	    {"", "r_italian", "<language operator=\"equals\" value=\"it\"/>",
		"ynn"},
	    {"", "r_language", "<language operator=\"is-set\"/>", "yyn"},
	    {"", "r_gold",
		"<property path=\"tier\" operator=\"equals\" "
		"value=\"Gold\"/>",
		"ynn"},
	    {"", "r_not_gold",
		"<property path=\"tier\" "
		"operator=\"not-equals\" value=\"Gold\"/>",
		"nyy"},
	    {"", "r_shoes",
		"<property path=\"interests\" "
		"operator=\"contains\" value=\"shoes\"/>",
		"yny"},
	    {"", "r_points",
		"<property path=\"points\" "
		"operator=\"greater-than\" value=\"100\"/>",
		"ynn"},
	    {"", "r_nickname",
		"<property path=\"nickname\" "
		"operator=\"is-set\"/>",
		"ynn"},
	    {"", "r_city",
		"<property path=\"address.city\" "
		"operator=\"equals\" value=\"Milano\"/>",
		"ynn"},
	    {" match=\"any\"", "r_any",
		"<property path=\"tier\" operator=\"equals\" "
		"value=\"Silver\"/>"
		"<total-spent operator=\"greater-than\" value=\"100\"/>",
		"yyn"},
	    {" match=\"all\"", "r_all",
		"<property path=\"tier\" operator=\"equals\" "
		"value=\"Gold\"/>"
		"<total-spent operator=\"less-than\" value=\"100\"/>",
		"nnn"},
	};
	static const char *const numbers[] = {
	    "+393400000201", "+393400000202", "+393400000203"};
	static char steps[8192];
	uint64_t now_us = clock_now_us();
	const char *answer, *expected;
	size_t i, j;

	steps[0] = '\0';
	for (i = 0; i < sizeof(splits) / sizeof(splits[0]); i++)
		note_split(steps, sizeof(steps), "conditional-split",
		    splits[i].attributes, splits[i].property,
		    splits[i].condition);
	install_flow("t-cond", "", "Cond Test", "", steps);

	/* Gold, Italian, two orders in 30 days of three, 110 spent. */
	given_profile(numbers[0],
	    "{\"language\": \"it\", \"properties\": {\"tier\": \"Gold\", "
	    "\"interests\": [\"Boots\", \"Shoes\"], \"points\": 150, "
	    "\"nickname\": \"Annie\", \"address\": {\"city\": \"Milano\"}}}");
	given_order(numbers[0], 60, now_us - 40 * DAY_US);
	given_order(numbers[0], 30, now_us - 10 * DAY_US);
	given_order(numbers[0], 20, now_us - DAY_US);
	/* Opted out, Silver, never ordered, 100 points, an empty nickname. */
	given_profile(numbers[1],
	    "{\"language\": \"en\", \"properties\": {\"tier\": \"Silver\", "
	    "\"interests\": \"hats and scarves\", \"points\": 100, "
	    "\"nickname\": \"\", \"address\": \"Milano\"}}");
	assert_int_equal(optout_set(numbers[1], "test"), STORE_OK);
	/* No language, no tier; one order of three in 30 days; 30 spent. */
	given_profile(numbers[2],
	    "{\"properties\": {\"interests\": \"Running SHOES\", "
	    "\"points\": \"150\", \"nickname\": null}}");
	given_order(numbers[2], 10, now_us - 40 * DAY_US);
	given_order(numbers[2], 10, now_us - 35 * DAY_US);
	given_order(numbers[2], 10, now_us - 2 * DAY_US);

	for (j = 0; j < 3; j++)
		assert_int_equal(
		    send_event(numbers[j], "Cond Test", NULL, NULL), 1);
	for (i = 0; i < sizeof(splits) / sizeof(splits[0]); i++)
		for (j = 0; j < 3; j++) {
			expected = splits[i].answers[j] == 'y' ? "yes" : "no";
			answer = property_of(numbers[j], splits[i].property);
			if (answer == NULL || strcmp(answer, expected) != 0)
				fail_msg("%s of profile %zu: %s, not %s",
				    splits[i].property, j,
				    answer != NULL ? answer : "(none)",
				    expected);
		}
}

/* Trigger splits and trigger filters look at the event's properties. */
static void
test_trigger_splits_and_filters(void **state)
{
	const char *number = "+393400000301";
	static char steps[4096];

	steps[0] = '\0';
	note_split(steps, sizeof(steps), "trigger-split", "", "r_shoes",
	    "<event-property path=\"Categories\" operator=\"contains\" "
	    "value=\"Shoes\"/>");
	note_split(steps, sizeof(steps), "trigger-split", "", "r_big",
	    "<event-property path=\"value\" operator=\"greater-than\" "
	    "value=\"100\"/>");
	note_split(steps, sizeof(steps), "trigger-split", "", "r_acme",
	    "<event-property path=\"Item.Brand\" operator=\"equals\" "
	    "value=\"Acme\"/>");
	note_split(steps, sizeof(steps), "trigger-split", "", "r_first",
	    "<event-property path=\"Items.0\" operator=\"equals\" "
	    "value=\"Boots\"/>");
	note_split(steps, sizeof(steps), "trigger-split", "", "r_coupon",
	    "<event-property path=\"Coupon\" operator=\"is-not-set\"/>");
	install_flow_trigger("t-trig", "",
	    "<metric name=\"Stock Test\">"
	    "<event-property path=\"Inventory\" operator=\"greater-than\" "
	    "value=\"0\"/></metric>",
	    "", steps);
	assert_int_equal(send_event(number, "Stock Test",
			     "{\"Inventory\": 3, \"Categories\": [\"Boots\", "
			     "\"shoes\"], \"value\": 150, \"Item\": "
			     "{\"Brand\": \"Acme\"}, \"Items\": [\"Boots\"]}",
			     NULL),
	    1);
	assert_string_equal(property_of(number, "r_shoes"), "yes");
	assert_string_equal(property_of(number, "r_big"), "yes");
	assert_string_equal(property_of(number, "r_acme"), "yes");
	assert_string_equal(property_of(number, "r_first"), "yes");
	assert_string_equal(property_of(number, "r_coupon"), "yes");

	/* 100 is not over 100; equals is exact (case too). */
	assert_int_equal(send_event(number, "Stock Test",
			     "{\"Inventory\": 1, \"Categories\": [\"Hats\"], "
			     "\"value\": 100, \"Item\": {\"Brand\": "
			     "\"acme\"}, \"Items\": [\"Hat\", \"Boots\"], "
			     "\"Coupon\": \"SAVE10\"}",
			     NULL),
	    1);
	assert_string_equal(property_of(number, "r_shoes"), "no");
	assert_string_equal(property_of(number, "r_big"), "no");
	assert_string_equal(property_of(number, "r_acme"), "no");
	assert_string_equal(property_of(number, "r_first"), "no");
	assert_string_equal(property_of(number, "r_coupon"), "no");

	/* contains finds text in text; a number as text is not a number. */
	assert_int_equal(send_event(number, "Stock Test",
			     "{\"Inventory\": 1, \"Categories\": \"Women's "
			     "Shoes\", \"value\": \"150\", \"Coupon\": \"\"}",
			     NULL),
	    1);
	assert_string_equal(property_of(number, "r_shoes"), "yes");
	assert_string_equal(property_of(number, "r_big"), "no");
	assert_string_equal(property_of(number, "r_acme"), "no");
	assert_string_equal(property_of(number, "r_coupon"), "yes");

	/* The filter: no inventory, no journey. */
	assert_int_equal(
	    send_event(number, "Stock Test", "{\"Inventory\": 0}", NULL), 0);
	assert_int_equal(send_event(number, "Stock Test", "{}", NULL), 0);
	assert_int_equal(send_event(number, "Stock Test", NULL, NULL), 0);
	assert_int_equal(
	    send_event(number, "Stock test", "{\"Inventory\": 5}", NULL), 0);
}

/* A/B: one subscriber always lands alike; shares follow the weights. */
static void
test_ab_split(void **state)
{
	char number[24], branches[1000];
	size_t i, in_a = 0;
	const char *branch;

	install_flow("t-ab", "", "AB Test", "",
	    "<ab-split id=\"offer\">\n"
	    "  <branch name=\"ten-percent\" weight=\"30\">"
	    "<update property=\"r_ab\" value=\"a\"/></branch>\n"
	    "  <branch name=\"free-shipping\" weight=\"70\">"
	    "<update property=\"r_ab\" value=\"b\"/></branch>\n"
	    "</ab-split>\n");
	for (i = 0; i < 1000; i++) {
		snprintf(number, sizeof(number), "+3934100%05zu", i);
		assert_int_equal(send_event(number, "AB Test", NULL, NULL), 1);
		branch = property_of(number, "r_ab");
		assert_non_null(branch);
		branches[i] = branch[0];
		assert_true(branches[i] == 'a' || branches[i] == 'b');
		in_a += branches[i] == 'a';
	}
	/* 300 expected; the binomial spread is about 15. */
	print_message("A/B: %zu of 1000 in the 30%% branch\n", in_a);
	assert_true(in_a >= 240 && in_a <= 360);
	/* Again, with another event: the same branch for every number. */
	for (i = 0; i < 200; i++) {
		snprintf(number, sizeof(number), "+3934100%05zu", i);
		assert_int_equal(send_event(number, "AB Test",
				     "{\"ProductID\": \"other\"}", NULL),
		    1);
		assert_int_equal(property_of(number, "r_ab")[0], branches[i]);
	}
}

/* ---- sms, update, end, rejoin ------------------------------------------ */

/* The text in the subscriber's language, its main subtag, or the fallback. */
static void
test_sms_language_and_fallback(void **state)
{
	static const struct {
		const char *number;
		const char *profile;
		const char *text;
		uint8_t coding;
	} cases[] = {
	    {"+393400000401",
		"{\"first_name\": \"Anna\", \"language\": \"it\"}",
		"Ciao Anna, Stivali ti aspetta.", SMPP_CODING_DEFAULT},
	    {"+41790000402",
		"{\"first_name\": \"Luca\", \"language\": \"it-CH\"}",
		"Ciao Luca, Stivali ti aspetta.", SMPP_CODING_DEFAULT},
	    {"+5511900000403",
		"{\"first_name\": \"Joana\", \"language\": \"pt-BR\"}",
		"Oi Joana, Stivali está esperando.", SMPP_CODING_UCS2},
	    {"+4915100000404",
		"{\"first_name\": \"Hans\", \"language\": \"de\"}",
		"Hi Hans, Stivali is waiting.\nSTOP to opt out",
		SMPP_CODING_DEFAULT},
	    {"+447700900405", "{}",
		"Hi there, Stivali is waiting.\nSTOP to opt out",
		SMPP_CODING_DEFAULT},
	};
	size_t i;

	install_flow("t-sms", "", "Sms Test", "",
	    "<sms id=\"hello\" fallback=\"en\">\n"
	    "  <text lang=\"it\">\n"
	    "    Ciao {{ first_name|default:'' }},\n"
	    "    {{ event.ProductName }} ti aspetta.\n"
	    "  </text>\n"
	    "  <text lang=\"en\">\n"
	    "    Hi {{ first_name|default:'there' }},\n"
	    "    {{ event.ProductName }} is waiting.\n"
	    "\n"
	    "    STOP to opt out\n"
	    "  </text>\n"
	    "  <text lang=\"pt-BR\">Oi {{ first_name }}, "
	    "{{ event.ProductName }} está esperando.</text>\n"
	    "</sms>\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		given_profile(cases[i].number, cases[i].profile);
		assert_int_equal(send_event(cases[i].number, "Sms Test",
				     "{\"ProductName\": \"Stivali\"}", NULL),
		    1);
		assert_int_equal(collect_sms(cases[i].number), 1);
		assert_string_equal(sms.texts[0], cases[i].text);
		assert_int_equal(
		    sms.records[0].text_length, strlen(cases[i].text));
		assert_string_equal(sms.records[0].to, cases[i].number);
		assert_string_equal(sms.records[0].origin, "flow:t-sms");
		assert_int_equal(sms.records[0].data_coding, cases[i].coding);
		assert_int_equal(sms.records[0].state, OUTBOX_QUEUED);
	}
}

/* Marketing needs a number that did not opt out; transactional does not. */
static void
test_sms_class_and_opt_out(void **state)
{
	const char *subscribed = "+393400000501", *opted_out = "+393400000502";
	struct flow_journey_record record;
	uint64_t id;

	install_flow("t-class", "", "Class Test", "",
	    "<sms id=\"deal\"><text lang=\"en\">A deal for "
	    "{{ organization.name }}</text></sms>\n"
	    "<sms id=\"receipt\" class=\"transactional\"><text lang=\"en\">"
	    "Order {{ event.OrderId }} confirmed</text></sms>\n");
	assert_int_equal(optout_set(opted_out, "test"), STORE_OK);

	/* A standard flow sends every SMS of its path. */
	assert_int_equal(
	    send_event(subscribed, "Class Test", "{\"OrderId\": \"A1\"}", &id),
	    1);
	assert_int_equal(collect_sms(subscribed), 2);
	assert_string_equal(sms.texts[0], "A deal for Nudge Shoes");
	assert_int_equal(sms.records[0].message_class, OUTBOX_CLASS_MARKETING);
	assert_string_equal(sms.texts[1], "Order A1 confirmed");
	assert_int_equal(
	    sms.records[1].message_class, OUTBOX_CLASS_TRANSACTIONAL);
	read_journey(id, &record);
	assert_int_equal(record.sms_sent, 2);

	assert_int_equal(
	    send_event(opted_out, "Class Test", "{\"OrderId\": \"B2\"}", &id),
	    1);
	assert_int_equal(collect_sms(opted_out), 1);
	assert_string_equal(sms.texts[0], "Order B2 confirmed");
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(record.sms_sent, 1);
}

/*
 * Update steps, a branch that rejoins after its split, one that jumps
 * ahead with goto and one that ends the journey.
 */
static void
test_update_end_goto_rejoin(void **state)
{
	const char *gold = "+393400000601", *silver = "+393400000602";
	const char *plain = "+393400000603";
	struct flow_journey_record record;
	uint64_t id;

	install_flow("t-paths", "", "Path Test", "",
	    "<update id=\"note\" property=\"last_product\"\n"
	    "    value=\"{{ event.ProductName|upper }}\"/>\n"
	    "<update id=\"city\" property=\"address.city\"\n"
	    "    value=\"{{ event.City|default:'Roma' }}\"/>\n"
	    "<conditional-split id=\"milano\">\n"
	    "  <property path=\"address.city\" operator=\"equals\""
	    " value=\"Milano\"/>\n"
	    "  <yes><update property=\"r_milano\" value=\"yes\"/></yes>\n"
	    "</conditional-split>\n"
	    "<conditional-split id=\"gold\">\n"
	    "  <property path=\"tier\" operator=\"equals\" value=\"Gold\"/>\n"
	    "  <yes><update property=\"path\" value=\"gold\"/></yes>\n"
	    "  <no>\n"
	    "    <conditional-split id=\"silver\">\n"
	    "      <property path=\"tier\" operator=\"equals\""
	    " value=\"Silver\"/>\n"
	    "      <yes><update property=\"path\" value=\"silver\"/>"
	    "<goto step=\"final\"/></yes>\n"
	    "      <no><update property=\"path\" value=\"plain\"/>"
	    "<end id=\"stop\"/></no>\n"
	    "    </conditional-split>\n"
	    "  </no>\n"
	    "</conditional-split>\n"
	    "<update id=\"after\" property=\"rejoined\" value=\"yes\"/>\n"
	    "<sms id=\"final\"><text lang=\"en\">Thanks "
	    "{{ first_name }} ({{ path }})</text></sms>\n");
	given_profile(gold, "{\"first_name\": \"Gia\", \"properties\": "
			    "{\"tier\": \"Gold\"}}");
	given_profile(silver, "{\"first_name\": \"Sil\", \"properties\": "
			      "{\"tier\": \"Silver\"}}");
	given_profile(plain, "{\"first_name\": \"Pat\"}");

	/* note, city, milano, its yes, gold, update, after (the rejoin),
	 * final; the SMS sees what the updates wrote. */
	assert_int_equal(send_event(gold, "Path Test",
			     "{\"ProductName\": \"Red boots\", "
			     "\"City\": \"Milano\"}",
			     &id),
	    1);
	assert_string_equal(property_of(gold, "last_product"), "RED BOOTS");
	assert_string_equal(city_of(gold), "Milano");
	assert_string_equal(property_of(gold, "r_milano"), "yes");
	assert_string_equal(property_of(gold, "path"), "gold");
	assert_string_equal(property_of(gold, "rejoined"), "yes");
	assert_int_equal(collect_sms(gold), 1);
	assert_string_equal(sms.texts[0], "Thanks Gia (gold)");
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(record.steps_taken, 8);

	/* note, city, milano, gold, silver, update, final: goto skipped
	 * "after"; an empty branch went straight on. */
	assert_int_equal(
	    send_event(silver, "Path Test", "{\"ProductName\": \"Hat\"}", &id),
	    1);
	assert_string_equal(property_of(silver, "last_product"), "HAT");
	assert_string_equal(city_of(silver), "Roma");
	assert_null(property_of(silver, "r_milano"));
	assert_string_equal(property_of(silver, "path"), "silver");
	assert_null(property_of(silver, "rejoined"));
	assert_int_equal(collect_sms(silver), 1);
	assert_string_equal(sms.texts[0], "Thanks Sil (silver)");
	read_journey(id, &record);
	assert_int_equal(record.steps_taken, 7);

	/* note, city, milano, gold, silver, update, end: nothing after. */
	assert_int_equal(send_event(plain, "Path Test", NULL, &id), 1);
	assert_string_equal(property_of(plain, "last_product"), "");
	assert_string_equal(property_of(plain, "path"), "plain");
	assert_null(property_of(plain, "rejoined"));
	assert_int_equal(collect_sms(plain), 0);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(record.steps_taken, 7);
	assert_int_equal(record.step, FLOW_STEP_NONE);
}

/* ---- re-entry ----------------------------------------------------------- */

#define NOTE_STEP "<update property=\"seen\" value=\"yes\"/>\n"

static void
test_reentry_modes(void **state)
{
	const char *number = "+393400000701", *other = "+393400000702";

	install_flow("t-always", "", "Again Always",
	    "  <reentry mode=\"always\"/>\n", NOTE_STEP);
	install_flow("t-once", "", "Again Once", "  <reentry mode=\"once\"/>\n",
	    NOTE_STEP);
	install_flow("t-period", "", "Again Period",
	    "  <reentry mode=\"once-per-period\" period=\"1d\"/>\n", NOTE_STEP);
	install_flow("t-key", "", "Again Key",
	    "  <reentry mode=\"once-per-key\" key=\"event.CartID\"/>\n",
	    NOTE_STEP);
	install_flow("t-keyperiod", "", "Again Key Period",
	    "  <reentry mode=\"once-per-key\" period=\"2d\"\n"
	    "      key=\"{{ event.CartID }}-{{ event.Size }}\"/>\n",
	    NOTE_STEP);

	assert_int_equal(send_event(number, "Again Always", NULL, NULL), 1);
	assert_int_equal(send_event(number, "Again Always", NULL, NULL), 1);

	assert_int_equal(send_event(number, "Again Once", NULL, NULL), 1);
	assert_int_equal(send_event(number, "Again Once", NULL, NULL), 0);
	assert_int_equal(send_event(other, "Again Once", NULL, NULL), 1);

	assert_int_equal(send_event(number, "Again Period", NULL, NULL), 1);
	assert_int_equal(send_event(number, "Again Period", NULL, NULL), 0);
	advance(DAY_US - MINUTE_US);
	assert_int_equal(send_event(number, "Again Period", NULL, NULL), 0);
	advance(2 * MINUTE_US);
	assert_int_equal(send_event(number, "Again Period", NULL, NULL), 1);
	assert_int_equal(send_event(number, "Again Period", NULL, NULL), 0);

	/* The same cart twice: one journey; another cart: a second one. */
	assert_int_equal(
	    send_event(number, "Again Key", "{\"CartID\": \"c1\"}", NULL), 1);
	assert_int_equal(
	    send_event(number, "Again Key", "{\"CartID\": \"c1\"}", NULL), 0);
	assert_int_equal(
	    send_event(number, "Again Key", "{\"CartID\": \"c2\"}", NULL), 1);
	assert_int_equal(
	    send_event(other, "Again Key", "{\"CartID\": \"c1\"}", NULL), 1);
	/* No key, no journey. */
	assert_int_equal(send_event(number, "Again Key", "{}", NULL), 0);
	/* Without a period a key never comes back. */
	advance(30 * DAY_US);
	assert_int_equal(
	    send_event(number, "Again Key", "{\"CartID\": \"c1\"}", NULL), 0);

	/* A key template, and a period after which a key may return. */
	assert_int_equal(send_event(number, "Again Key Period",
			     "{\"CartID\": \"c1\", \"Size\": 42}", NULL),
	    1);
	assert_int_equal(send_event(number, "Again Key Period",
			     "{\"CartID\": \"c1\", \"Size\": 42}", NULL),
	    0);
	assert_int_equal(send_event(number, "Again Key Period",
			     "{\"CartID\": \"c1\", \"Size\": 43}", NULL),
	    1);
	advance(2 * DAY_US + MINUTE_US);
	assert_int_equal(send_event(number, "Again Key Period",
			     "{\"CartID\": \"c1\", \"Size\": 42}", NULL),
	    1);
}

/* ---- exit --------------------------------------------------------------- */

/* An exit metric after the trigger ends the journey; one before does not. */
static void
test_exit_metric(void **state)
{
	const char *buyer = "+393400000801", *early = "+393400000802";
	struct flow_journey_record record;
	uint64_t id, trigger_us, stray;
	uint8_t payload[8];

	install_flow("t-exit", "", "Checkout Test",
	    "  <exit><metric name=\"Order Test\"/></exit>\n",
	    "<delay id=\"wait\" duration=\"1h\"/>\n"
	    "<sms id=\"nudge\"><text lang=\"en\">Come back</text></sms>\n");

	trigger_us = clock_now_us();
	assert_int_equal(
	    send_event_at(buyer, "Checkout Test", NULL, trigger_us, &id), 1);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_WAITING);
	assert_true(timer_row_for(record.due_us, record.timer_id, id));
	assert_int_equal(send_event_at(buyer, "Order Test", NULL,
			     trigger_us + SECOND_US, NULL),
	    0);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_EXITED);
	assert_false(timer_row_for(record.due_us, record.timer_id, id));
	/* Even a stray timer row for it, firing, does nothing. */
	store_encode_u64(payload, id);
	assert_int_equal(timer_schedule(record.due_us, TIMER_KIND_JOURNEY,
			     payload, sizeof(payload), &stray),
	    STORE_OK);
	assert_int_equal(store_commit(world.store), STORE_OK);
	advance(2 * HOUR_US);
	assert_false(timer_row_for(record.due_us, stray, id));
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_EXITED);
	assert_int_equal(record.sms_sent, 0);
	assert_int_equal(collect_sms(buyer), 0);

	/* An order timed before the trigger is not an exit. */
	trigger_us = clock_now_us();
	assert_int_equal(
	    send_event_at(early, "Checkout Test", NULL, trigger_us, &id), 1);
	assert_int_equal(send_event_at(early, "Order Test", NULL,
			     trigger_us - MINUTE_US, NULL),
	    0);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_WAITING);
	/* A row that is not the journey's own timer does not wake it. */
	store_encode_u64(payload, id);
	assert_int_equal(
	    timer_schedule(clock_now_us() + MINUTE_US, TIMER_KIND_JOURNEY,
		payload, sizeof(payload), &stray),
	    STORE_OK);
	assert_int_equal(store_commit(world.store), STORE_OK);
	advance(2 * MINUTE_US);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_WAITING);
	assert_int_equal(collect_sms(early), 0);
	advance(HOUR_US);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(collect_sms(early), 1);
	assert_string_equal(sms.texts[0], "Come back");
	/* A finished journey is not exited by a later order. */
	assert_int_equal(send_event(early, "Order Test", NULL, NULL), 0);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
}

/* ---- abandonment policy ------------------------------------------------- */

/* At most one SMS per abandonment journey, none 48 h after the trigger. */
static void
test_abandonment_policy(void **state)
{
	const char *cart = "+393400000901", *late = "+393400000902";
	const char *old = "+393400000903", *fresh = "+393400000904";
	struct flow_journey_record record;
	uint64_t id;

	/* Added to Cart makes an abandonment flow without kind=. */
	install_flow("t-cart", "", "Added to Cart", "",
	    "<sms id=\"first\"><text lang=\"en\">First</text></sms>\n"
	    "<delay id=\"wait\" duration=\"1h\"/>\n"
	    "<sms id=\"second\"><text lang=\"en\">Second</text></sms>\n");
	install_flow("t-late", " kind=\"abandonment\"", "Late Test", "",
	    "<delay id=\"wait\" duration=\"49h\"/>\n"
	    "<sms id=\"too-late\"><text lang=\"en\">Too late</text>"
	    "</sms>\n");
	install_flow("t-timely", " kind=\"abandonment\"", "Timely Test", "",
	    "<delay id=\"wait\" duration=\"2h\"/>\n"
	    "<sms id=\"in-time\"><text lang=\"en\">In time</text>"
	    "</sms>\n");

	assert_int_equal(send_event(cart, "Added to Cart", NULL, &id), 1);
	assert_int_equal(collect_sms(cart), 1);
	assert_string_equal(sms.texts[0], "First");
	advance(HOUR_US + SECOND_US);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(record.sms_sent, 1);
	assert_int_equal(collect_sms(cart), 1);

	assert_int_equal(send_event(late, "Late Test", NULL, &id), 1);
	advance(49 * HOUR_US + SECOND_US);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(record.sms_sent, 0);
	assert_int_equal(collect_sms(late), 0);

	/* The 48 h count from the event's time, not from the journey's. */
	assert_int_equal(send_event_at(old, "Timely Test", NULL,
			     clock_now_us() - 47 * HOUR_US, NULL),
	    1);
	assert_int_equal(send_event(fresh, "Timely Test", NULL, NULL), 1);
	advance(2 * HOUR_US + SECOND_US);
	assert_int_equal(collect_sms(old), 0);
	assert_int_equal(collect_sms(fresh), 1);
	assert_string_equal(sms.texts[0], "In time");
}

/* ---- restarts and versions ---------------------------------------------- */

/* A waiting journey survives restarts and resumes once, never twice. */
static void
test_journey_survives_restart(void **state)
{
	const char *number = "+393400001001", *done = "+393400001002";
	struct flow_journey_record record;
	uint64_t id, finished;

	install_flow("t-restart", "", "Restart Test", "",
	    "<delay id=\"wait\" duration=\"1h\"/>\n"
	    "<sms id=\"back\"><text lang=\"en\">Welcome back</text>"
	    "</sms>\n");
	assert_int_equal(send_event(done, "Restart Test", NULL, &finished), 1);
	advance(30 * MINUTE_US);
	assert_int_equal(send_event(number, "Restart Test", NULL, &id), 1);
	advance(31 * MINUTE_US);
	/* The first journey went on before the restart. */
	assert_int_equal(collect_sms(done), 1);
	assert_int_equal(collect_sms(number), 0);

	restart();
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_WAITING);
	assert_true(timer_row_for(record.due_us, record.timer_id, id));
	advance(MINUTE_US);
	assert_int_equal(collect_sms(number), 0);
	restart();
	advance(30 * MINUTE_US);
	read_journey(id, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(collect_sms(number), 1);
	assert_string_equal(sms.texts[0], "Welcome back");

	restart();
	advance(2 * HOUR_US);
	assert_int_equal(collect_sms(number), 1);
	assert_int_equal(collect_sms(done), 1);
	read_journey(finished, &record);
	assert_int_equal(record.state, FLOW_JOURNEY_DONE);
	assert_int_equal(record.sms_sent, 1);
}

#define VERSION_XML(text)                             \
	FLOW_XML("t-version", "", "Version Test", "", \
	    "<delay id=\"wait\" duration=\"1h\"/>\n"  \
	    "<sms id=\"text\"><text lang=\"en\">" text "</text></sms>\n")

/*
 * A journey finishes on the version it started with, even when that
 * version is only in the store (after a restart); new journeys take the
 * new version; a broken rewrite keeps the last good one.
 */
static void
test_version_change_while_waiting(void **state)
{
	const char *first = "+393400001101", *second = "+393400001102";
	const char *third = "+393400001103", *fourth = "+393400001104";
	const char *fifth = "+393400001105";
	struct flow_journey_record one, two;
	uint64_t first_id, second_id, id;

	install_rule_file("t-version", VERSION_XML("Version one"));
	assert_int_equal(send_event(first, "Version Test", NULL, &first_id), 1);
	install_rule_file("t-version", VERSION_XML("Version two"));
	assert_int_equal(
	    send_event(second, "Version Test", NULL, &second_id), 1);
	read_journey(first_id, &one);
	read_journey(second_id, &two);
	assert_true(one.flow_hash != two.flow_hash);
	advance(HOUR_US + SECOND_US);
	assert_int_equal(collect_sms(first), 1);
	assert_string_equal(sms.texts[0], "Version one");
	assert_int_equal(collect_sms(second), 1);
	assert_string_equal(sms.texts[0], "Version two");

	/* The old version must come back from the store's bytes. */
	assert_int_equal(send_event(third, "Version Test", NULL, &id), 1);
	write_rule_file("t-version", VERSION_XML("Version three"));
	restart();
	assert_int_equal(send_event(fourth, "Version Test", NULL, NULL), 1);
	advance(HOUR_US + SECOND_US);
	assert_int_equal(collect_sms(third), 1);
	assert_string_equal(sms.texts[0], "Version two");
	assert_int_equal(collect_sms(fourth), 1);
	assert_string_equal(sms.texts[0], "Version three");
	read_journey(id, &one);
	assert_int_equal(one.state, FLOW_JOURNEY_DONE);

	/* A rewrite with an error: the last good version keeps running. */
	write_rule_file("t-version", "<flow id=\"t-version\">\n");
	assert_true(flow_reload() > 0);
	assert_int_equal(send_event(fifth, "Version Test", NULL, NULL), 1);
	advance(HOUR_US + SECOND_US);
	assert_int_equal(collect_sms(fifth), 1);
	assert_string_equal(sms.texts[0], "Version three");
}

#define FLOW_TEST(name) cmocka_unit_test_teardown(name, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    /* First: it sets the clock to 2036; the rest are relative. */
	    FLOW_TEST(test_delay_until_local_time),
	    FLOW_TEST(test_delay_waits_then_continues),
	    FLOW_TEST(test_conditional_splits),
	    FLOW_TEST(test_trigger_splits_and_filters),
	    FLOW_TEST(test_ab_split),
	    FLOW_TEST(test_sms_language_and_fallback),
	    FLOW_TEST(test_sms_class_and_opt_out),
	    FLOW_TEST(test_update_end_goto_rejoin),
	    FLOW_TEST(test_reentry_modes),
	    FLOW_TEST(test_exit_metric),
	    FLOW_TEST(test_abandonment_policy),
	    FLOW_TEST(test_journey_survives_restart),
	    FLOW_TEST(test_version_change_while_waiting),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init(1, getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
