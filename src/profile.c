/*
 * profile.c - subscriber profiles in LMDB, keyed by the E.164 number's
 * digits: a fixed record (times, order count, total spent, the latest order
 * times) followed by the attributes as JSON (external_id, email, names,
 * language, timezone, free properties). An index maps the shop's external id
 * to the number. Order figures follow Placed Order events.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nudged.h"

#define PROFILE_RECORD_VERSION  1
#define PROFILE_ATTRIBUTES_MAX  (32 * 1024)
#define PROFILE_EXTERNAL_ID_MAX 128

/* Profile attributes the API knows, with their length limits. */
static const struct {
	const char *name;
	size_t maximum;
} profile_fields[] = {
    {"external_id", PROFILE_EXTERNAL_ID_MAX},
    {"email", 254},
    {"first_name", 100},
    {"last_name", 100},
    {"language", 16},
    {"timezone", 64},
};

static struct metric *metric_created;

void
profile_init(const struct config *config)
{
	metric_created = metrics_counter("nudge_profiles_created_total", NULL,
	    "Subscriber profiles created.");
}

enum store_result
profile_load(const char *number, struct profile *profile)
{
	const void *value;
	size_t value_length, key_length;
	const char *key = phone_digits(number, &key_length);
	enum store_result result;
	json_error_t error;

	memset(profile, 0, sizeof(*profile));
	snprintf(profile->number, sizeof(profile->number), "+%s", key);
	result = store_get(gateway->store, STORE_DB_PROFILES, key, key_length,
	    &value, &value_length);
	if (result == STORE_NOT_FOUND) {
		profile->record.version = PROFILE_RECORD_VERSION;
		profile->attributes = json_object();
		return STORE_OK;
	}
	if (result != STORE_OK)
		return result;
	if (value_length < sizeof(profile->record)) {
		log_warnx(
		    0, "profile", "record-corrupt", "length=%zu", value_length);
		return STORE_ERROR;
	}
	memcpy(&profile->record, value, sizeof(profile->record));
	if (profile->record.attributes_length >
	    value_length - sizeof(profile->record))
		return STORE_ERROR;
	profile->attributes =
	    json_loadb((const char *)value + sizeof(profile->record),
		profile->record.attributes_length, 0, &error);
	if (profile->attributes == NULL)
		profile->attributes = json_object();
	profile->exists = 1;
	return STORE_OK;
}

void
profile_release(struct profile *profile)
{
	if (profile->attributes != NULL)
		json_decref(profile->attributes);
	profile->attributes = NULL;
}

enum store_result
profile_save(struct profile *profile)
{
	const char *external_id, *key;
	size_t key_length, text_length;
	enum store_result result;
	uint8_t *buffer;
	char *text;

	key = phone_digits(profile->number, &key_length);
	if ((text = json_dumps(profile->attributes, JSON_COMPACT)) == NULL)
		return STORE_ERROR;
	text_length = strlen(text);
	if (!profile->exists) {
		profile->record.created_us = clock_now_us();
		metrics_add(metric_created, 1);
	}
	profile->record.updated_us = clock_now_us();
	profile->record.attributes_length = (uint32_t)text_length;
	if ((buffer = malloc(sizeof(profile->record) + text_length)) == NULL)
		fatal("profile", "out-of-memory", NULL);
	memcpy(buffer, &profile->record, sizeof(profile->record));
	memcpy(buffer + sizeof(profile->record), text, text_length);
	result = store_put(gateway->store, STORE_DB_PROFILES, key, key_length,
	    buffer, sizeof(profile->record) + text_length, 0);
	free(buffer);
	free(text);
	if (result != STORE_OK)
		return result;
	profile->exists = 1;
	external_id = json_string_value(
	    json_object_get(profile->attributes, "external_id"));
	if (external_id != NULL && external_id[0] != '\0')
		result = store_put(gateway->store, STORE_DB_EXTERNAL_IDS,
		    external_id, strlen(external_id), key, key_length, 0);
	return result;
}

int
profile_merge(struct profile *profile, json_t *object, const char **field,
    char *reason, size_t reason_size)
{
	json_t *value, *properties, *current;
	const char *name;
	char *text;
	size_t i, length;

	if (!json_is_object(object)) {
		*field = "profile";
		snprintf(reason, reason_size, "must be an object");
		return -1;
	}
	for (i = 0; i < sizeof(profile_fields) / sizeof(profile_fields[0]);
	     i++) {
		value = json_object_get(object, profile_fields[i].name);
		if (value == NULL || json_is_null(value))
			continue;
		if (!json_is_string(value) ||
		    json_string_length(value) > profile_fields[i].maximum) {
			*field = profile_fields[i].name;
			snprintf(reason, reason_size,
			    "a string of at most %zu "
			    "characters",
			    profile_fields[i].maximum);
			return -1;
		}
		json_object_set(
		    profile->attributes, profile_fields[i].name, value);
	}
	properties = json_object_get(object, "properties");
	if (properties != NULL && !json_is_null(properties)) {
		if (!json_is_object(properties)) {
			*field = "properties";
			snprintf(reason, reason_size, "must be an object");
			return -1;
		}
		current = json_object_get(profile->attributes, "properties");
		if (!json_is_object(current)) {
			current = json_object();
			json_object_set_new(
			    profile->attributes, "properties", current);
		}
		json_object_foreach(properties, name, value)
		    json_object_set(current, name, value);
	}
	if ((text = json_dumps(profile->attributes, JSON_COMPACT)) == NULL)
		fatal("profile", "out-of-memory", NULL);
	length = strlen(text);
	free(text);
	if (length > PROFILE_ATTRIBUTES_MAX) {
		*field = "properties";
		snprintf(reason, reason_size,
		    "the profile would exceed %d bytes",
		    PROFILE_ATTRIBUTES_MAX);
		return -1;
	}
	return 0;
}

void
profile_record_order(struct profile *profile, double value, uint64_t time_us)
{
	struct profile_record *record = &profile->record;

	record->order_count++;
	if (value > 0)
		record->total_spent += value;
	if (time_us > record->last_order_us)
		record->last_order_us = time_us;
	if (record->order_times_count == PROFILE_ORDER_TIMES) {
		memmove(record->order_times_us, record->order_times_us + 1,
		    (PROFILE_ORDER_TIMES - 1) * sizeof(uint64_t));
		record->order_times_count--;
	}
	record->order_times_us[record->order_times_count++] = time_us;
}

unsigned int
profile_orders_since(const struct profile *profile, uint64_t since_us)
{
	unsigned int count = 0, i;

	if (since_us == 0)
		return profile->record.order_count;
	for (i = 0; i < profile->record.order_times_count; i++)
		if (profile->record.order_times_us[i] >= since_us)
			count++;
	return count;
}

json_t *
profile_to_json(const struct profile *profile)
{
	json_t *person = json_deep_copy(profile->attributes);

	json_object_set_new(
	    person, "phone_number", json_string(profile->number));
	json_object_set_new(
	    person, "order_count", json_integer(profile->record.order_count));
	json_object_set_new(
	    person, "total_spent", json_real(profile->record.total_spent));
	json_object_set_new(person, "created_us",
	    json_integer((json_int_t)profile->record.created_us));
	if (profile->record.last_order_us != 0)
		json_object_set_new(person, "last_order_us",
		    json_integer((json_int_t)profile->record.last_order_us));
	return person;
}

enum store_result
profile_find_external(const char *external_id, char *number, size_t number_size)
{
	const void *value;
	size_t length;
	enum store_result result;

	result = store_get(gateway->store, STORE_DB_EXTERNAL_IDS, external_id,
	    strlen(external_id), &value, &length);
	if (result != STORE_OK)
		return result;
	if (length + 2 > number_size)
		return STORE_ERROR;
	number[0] = '+';
	memcpy(number + 1, value, length);
	number[length + 1] = '\0';
	return STORE_OK;
}
