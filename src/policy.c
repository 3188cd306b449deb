/*
 * policy.c - the policies every marketing SMS passes (DESIGN "Policies"):
 * 1 consent (only SUBSCRIBED numbers), 2 the opt-out list, 4 smart sending
 * and frequency caps (skip, not defer), 3 quiet hours (defer to the next
 * allowed minute). The order matters: a number that may not get marketing
 * at all is skipped before anything is deferred. Each decision not to send
 * now is stored per number, counted by reason and logged.
 */
#include <string.h>

#include "nudged.h"

#define POLICY_RECORD_VERSION 1

static const struct config *policy_config;
static struct metric *metric_decisions[POLICY_REASON_COUNT];

static const char *const reason_names[POLICY_REASON_COUNT] = {
    [POLICY_REASON_NONE] = "none",
    [POLICY_REASON_NO_CONSENT] = "no-consent",
    [POLICY_REASON_OPTED_OUT] = "opted-out",
    [POLICY_REASON_QUIET_HOURS] = "quiet-hours",
    [POLICY_REASON_SMART_SENDING] = "smart-sending",
    [POLICY_REASON_FREQUENCY_CAP] = "frequency-cap",
    [POLICY_REASON_ABANDONMENT_LIMIT] = "abandonment-limit",
    [POLICY_REASON_ABANDONMENT_48H] = "abandonment-48h-passed",
    [POLICY_REASON_EXITED] = "exited",
};

static const char *const verdict_names[] = {
    [POLICY_SEND] = "send",
    [POLICY_DEFER] = "deferred",
    [POLICY_SKIP] = "skipped",
};

const char *
policy_strverdict(enum policy_verdict verdict)
{
	if ((unsigned int)verdict >=
	    sizeof(verdict_names) / sizeof(verdict_names[0]))
		return "invalid";
	return verdict_names[verdict];
}

const char *
policy_strreason(enum policy_reason reason)
{
	if ((unsigned int)reason >= POLICY_REASON_COUNT)
		return "invalid";
	return reason_names[reason];
}

/* The number's recent marketing sends (an empty record if none). */
static void
policy_load_sends(const char *number, struct policy_sends_record *record)
{
	const void *value;
	size_t key_length, value_length;
	const char *key = phone_digits(number, &key_length);

	memset(record, 0, sizeof(*record));
	if (store_get(gateway->store, STORE_DB_SENDS, key, key_length, &value,
		&value_length) == STORE_OK &&
	    value_length == sizeof(*record))
		memcpy(record, value, sizeof(*record));
}

void
policy_record_send(const char *number, uint64_t now_us)
{
	struct policy_sends_record record;
	size_t key_length;
	const char *key = phone_digits(number, &key_length);

	policy_load_sends(number, &record);
	record.version = POLICY_RECORD_VERSION;
	if (record.count == POLICY_SENDS_KEPT) {
		memmove(record.times_us, record.times_us + 1,
		    (POLICY_SENDS_KEPT - 1) * sizeof(uint64_t));
		record.count--;
	}
	record.times_us[record.count++] = now_us;
	store_put(gateway->store, STORE_DB_SENDS, key, key_length, &record,
	    sizeof(record), 0);
}

/* Sends at or after since_us. */
static unsigned int
policy_sends_since(const struct policy_sends_record *record, uint64_t since_us)
{
	unsigned int count = 0, i;

	for (i = 0; i < record->count; i++)
		if (record->times_us[i] >= since_us)
			count++;
	return count;
}

enum policy_verdict
policy_check(const char *number, const char *zone, unsigned int flags,
    uint64_t smart_window_us, uint64_t now_us, uint64_t *until_us,
    enum policy_reason *reason)
{
	struct policy_sends_record sends;
	uint64_t window;

	*until_us = 0;
	*reason = POLICY_REASON_NONE;
	if (optout_is_opted_out(number)) {
		*reason = POLICY_REASON_OPTED_OUT;
		return POLICY_SKIP;
	}
	if (!(flags & POLICY_SKIP_CONSENT) &&
	    consent_get(number) != CONSENT_SUBSCRIBED) {
		*reason = POLICY_REASON_NO_CONSENT;
		return POLICY_SKIP;
	}
	policy_load_sends(number, &sends);
	window = smart_window_us != 0 ? smart_window_us
				      : policy_config->policy_smart_window_us;
	if (!(flags & POLICY_SKIP_SMART_SENDING) && window != 0 &&
	    policy_sends_since(&sends, now_us > window ? now_us - window : 0) >
		0) {
		*reason = POLICY_REASON_SMART_SENDING;
		return POLICY_SKIP;
	}
	if (!(flags & POLICY_SKIP_FREQUENCY_CAP) &&
	    policy_config->policy_cap_count > 0 &&
	    policy_sends_since(&sends,
		now_us > policy_config->policy_cap_period_us
		    ? now_us - policy_config->policy_cap_period_us
		    : 0) >= (unsigned int)policy_config->policy_cap_count) {
		*reason = POLICY_REASON_FREQUENCY_CAP;
		return POLICY_SKIP;
	}
	if (!(flags & POLICY_SKIP_QUIET_HOURS) &&
	    quiet_check(number, zone, now_us, until_us) != 0) {
		*reason = POLICY_REASON_QUIET_HOURS;
		return POLICY_DEFER;
	}
	return POLICY_SEND;
}

void
policy_record_decision(const char *number, enum policy_verdict verdict,
    enum policy_reason reason, uint64_t until_us, uint64_t journey_id,
    uint64_t message_id, const char *origin, const char *step)
{
	struct policy_decision_record record;
	char masked[LOG_MASKED_NUMBER_SIZE];
	uint8_t key[PROFILE_NUMBER_SIZE + 9];
	size_t length;
	const char *digits = phone_digits(number, &length);

	memset(&record, 0, sizeof(record));
	record.version = POLICY_RECORD_VERSION;
	record.verdict = (uint8_t)verdict;
	record.reason = (uint8_t)reason;
	record.time_us = clock_now_us();
	record.until_us = until_us;
	record.journey_id = journey_id;
	record.message_id = message_id;
	snprintf(record.origin, sizeof(record.origin), "%s",
	    origin != NULL ? origin : "");
	snprintf(
	    record.step, sizeof(record.step), "%s", step != NULL ? step : "");
	if ((unsigned int)reason < POLICY_REASON_COUNT &&
	    metric_decisions[reason] != NULL)
		metrics_add(metric_decisions[reason], 1);
	log_info(message_id != 0 ? message_id : journey_id, "policy",
	    policy_strverdict(verdict),
	    "number=%s reason=%s origin=%s step=%s until_us=%llu",
	    log_mask_number(number, masked, sizeof(masked)),
	    policy_strreason(reason), record.origin, record.step,
	    (unsigned long long)until_us);
	if (length + 9 > sizeof(key))
		return;
	memcpy(key, digits, length);
	key[length] = '\0';
	store_encode_u64(key + length + 1, record.time_us);
	store_put(gateway->store, STORE_DB_DECISIONS, key, length + 9, &record,
	    sizeof(record), 0);
}

void
policy_init(const struct config *config)
{
	char labels[64];
	size_t i;

	policy_config = config;
	for (i = 1; i < POLICY_REASON_COUNT; i++) {
		snprintf(
		    labels, sizeof(labels), "reason=\"%s\"", reason_names[i]);
		metric_decisions[i] =
		    metrics_counter("nudge_policy_decisions_total", labels,
			"Marketing SMS not sent now, by reason.");
	}
	metric_decisions[0] = metric_decisions[1];
}
