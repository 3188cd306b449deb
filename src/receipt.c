/*
 * receipt.c - delivery receipts from upstream SMSCs. A receipt finds its
 * part through (link, normalised SMSC message id), from receipted_message_id
 * or from the Appendix B text. One that arrives before its submit_sm_resp is
 * held and matched when the response comes; one that never matches is kept
 * in the receipt log as unmatched, counted and logged. Every receipt is
 * appended to the durable receipt log that `nudgectl dlr tail` reads.
 */
#include <string.h>

#include "smpp.h"
#include "nudged.h"

#define RECEIPT_KEY_MAX (OUTBOX_LINK_NAME_SIZE + SMPP_RECEIPT_ID_SIZE + 2)

#define RECEIPT_LATENCY_CACHE 64 /* links whose histogram is at hand */

static const struct config *receipt_config;
static struct metric *metric_received, *metric_matched, *metric_held;
static struct metric *metric_unmatched;

/* Why: finding a histogram by name and labels is a linear search. */
static struct {
	char link[OUTBOX_LINK_NAME_SIZE];
	struct metric *metric;
} latency_cache[RECEIPT_LATENCY_CACHE];
static size_t latency_cached;

int
receipt_is_receipt(const struct smpp_pdu *pdu)
{
	struct smpp_tlv tlv;
	uint8_t type = pdu->esm_class & SMPP_ESM_CLASS_TYPE_MASK;

	/* 0x04 SMSC delivery receipt, 0x20 intermediate notification. */
	if (type == SMPP_ESM_CLASS_DELIVERY_RECEIPT || type == 0x20)
		return 1;
	return smpp_pdu_find_tlv(pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, &tlv);
}

size_t
receipt_key(const char *link_name, const char *id, size_t id_length, int base,
    uint8_t *key, size_t key_size)
{
	char normalized[SMPP_RECEIPT_ID_SIZE];
	size_t name_length = strlen(link_name), id_out;

	if (smpp_receipt_normalize_id(id, id_length, (enum smpp_id_base)base,
		normalized, sizeof(normalized)) < 0 ||
	    normalized[0] == '\0')
		return 0;
	id_out = strlen(normalized);
	if (name_length + 1 + id_out > key_size)
		return 0;
	memcpy(key, link_name, name_length);
	key[name_length] = '\0';
	memcpy(key + name_length + 1, normalized, id_out);
	return name_length + 1 + id_out;
}

/* Appends one receipt to the durable log that nudgectl tails. */
static void
receipt_log_append(const struct receipt_record *record)
{
	uint8_t key[8];
	uint64_t sequence;

	sequence = store_sequence_next(gateway->store, STORE_SEQUENCE_RECEIPT);
	if (sequence == 0)
		return;
	store_encode_u64(key, sequence);
	store_put(gateway->store, STORE_DB_RECEIPTS, key, sizeof(key), record,
	    sizeof(*record), STORE_PUT_APPEND);
}

/* The submit -> receipt latency histogram of a link. */
static struct metric *
receipt_latency_metric(const char *link_name)
{
	static const double bounds[] = {
	    0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
	char labels[OUTBOX_LINK_NAME_SIZE + 16];
	struct metric *metric;
	size_t i;

	for (i = 0; i < latency_cached; i++)
		if (strcmp(latency_cache[i].link, link_name) == 0)
			return latency_cache[i].metric;
	snprintf(labels, sizeof(labels), "link=\"%s\"", link_name);
	metric = metrics_histogram("nudge_receipt_latency_seconds", labels,
	    "From submit_sm to its delivery receipt.", bounds,
	    sizeof(bounds) / sizeof(bounds[0]));
	if (metric != NULL && latency_cached < RECEIPT_LATENCY_CACHE &&
	    strlen(link_name) < OUTBOX_LINK_NAME_SIZE) {
		text_copy_length(latency_cache[latency_cached].link,
		    OUTBOX_LINK_NAME_SIZE, link_name, strlen(link_name));
		latency_cache[latency_cached++].metric = metric;
	}
	return metric;
}

/* Applies a receipt to the part it matched, and logs it. */
static void
receipt_apply(
    struct receipt_record *record, uint64_t message_id, unsigned int part)
{
	struct outbox_message_record message;
	struct outbox_part_record part_record;
	char masked[LOG_MASKED_NUMBER_SIZE];

	record->matched = 1;
	record->message_id = message_id;
	record->part = (uint8_t)part;
	if (outbox_receipt_apply(message_id, part, record->receipt_state,
		record->error_code, record->time_us, &message,
		&part_record) == 0) {
		text_copy_length(record->to, sizeof(record->to), message.to,
		    strnlen(message.to, sizeof(message.to)));
		record->submitted_us = part_record.submitted_us;
		record->part_state = part_record.state;
	}
	metrics_add(metric_matched, 1);
	if (record->submitted_us != 0 && record->time_us > record->submitted_us)
		metrics_observe(receipt_latency_metric(record->link),
		    (double)(record->time_us - record->submitted_us) / 1e6);
	receipt_log_append(record);
	if (log_get_level() >= LOG_LEVEL_INFO)
		log_info(message_id, "receipt", "matched",
		    "link=%s part=%u to=%s stat=%s err=%u", record->link, part,
		    log_mask_number(record->to, masked, sizeof(masked)),
		    smpp_receipt_state_name(
			(enum smpp_message_state)record->receipt_state),
		    record->error_code);
}

/* Looks a key up in the SMSC id index. */
static int
receipt_lookup(const uint8_t *key, size_t key_length, uint64_t *message_id,
    unsigned int *part)
{
	const void *value;
	size_t length;

	if (key_length == 0 ||
	    store_get(gateway->store, STORE_DB_SMSC_IDS, key, key_length,
		&value, &length) != STORE_OK ||
	    length != 9)
		return 0;
	*message_id = store_decode_u64(value);
	*part = ((const uint8_t *)value)[8];
	return 1;
}

uint32_t
receipt_handle(struct link *link, const struct smpp_pdu *pdu)
{
	const struct config_link *config = link_config(link);
	struct smpp_receipt parsed;
	struct receipt_record record;
	struct smpp_tlv tlv;
	const uint8_t *text = pdu->short_message;
	size_t text_length = pdu->sm_length, key_tlv_length = 0;
	size_t key_text_length = 0;
	uint8_t key_tlv[RECEIPT_KEY_MAX], key_text[RECEIPT_KEY_MAX];
	const uint8_t *hold_key;
	size_t hold_key_length;
	uint64_t message_id;
	unsigned int part;
	int have_text;

	metrics_add(metric_received, 1);
	if (text_length == 0 &&
	    smpp_pdu_find_tlv(pdu, SMPP_TLV_MESSAGE_PAYLOAD, &tlv)) {
		text = tlv.value;
		text_length = tlv.length;
	}
	memset(&parsed, 0, sizeof(parsed));
	have_text = text_length > 0 &&
		    smpp_receipt_parse(text, text_length, &parsed) == 0;

	memset(&record, 0, sizeof(record));
	record.version = OUTBOX_RECORD_VERSION;
	record.time_us = clock_now_us();
	text_copy_length(record.link, sizeof(record.link), link_name(link),
	    strlen(link_name(link)));
	if (have_text && (parsed.fields & SMPP_RECEIPT_STAT)) {
		record.receipt_state = (uint8_t)parsed.state;
		text_copy_length(record.stat, sizeof(record.stat), parsed.stat,
		    strnlen(parsed.stat, sizeof(parsed.stat)));
	}
	if (have_text && (parsed.fields & SMPP_RECEIPT_ERROR_CODE))
		record.error_code = parsed.error_code;
	if (smpp_pdu_find_tlv(pdu, SMPP_TLV_MESSAGE_STATE, &tlv) &&
	    tlv.integer != 0) {
		record.receipt_state = (uint8_t)tlv.integer;
		if (record.stat[0] == '\0')
			snprintf(record.stat, sizeof(record.stat), "%s",
			    smpp_receipt_stat_word(
				(enum smpp_message_state)tlv.integer));
	}
	/* The TLV carries the id as the response did; the text may not. */
	if (smpp_pdu_find_tlv(pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, &tlv)) {
		key_tlv_length = receipt_key(record.link,
		    (const char *)tlv.value, smpp_tlv_text_length(&tlv),
		    config->response_id_base, key_tlv, sizeof(key_tlv));
		text_copy_length(record.smsc_id, sizeof(record.smsc_id),
		    (const char *)tlv.value, smpp_tlv_text_length(&tlv));
	}
	if (have_text && (parsed.fields & SMPP_RECEIPT_ID)) {
		key_text_length =
		    receipt_key(record.link, parsed.id, strlen(parsed.id),
			config->receipt_id_base, key_text, sizeof(key_text));
		if (record.smsc_id[0] == '\0')
			text_copy_length(record.smsc_id, sizeof(record.smsc_id),
			    parsed.id, strnlen(parsed.id, sizeof(parsed.id)));
	}
	if (key_tlv_length == 0 && key_text_length == 0) {
		log_warnx(0, "receipt", "no-id", "link=%s length=%zu",
		    record.link, text_length);
		metrics_add(metric_unmatched, 1);
		receipt_log_append(&record);
		return SMPP_ESME_ROK;
	}
	if (receipt_lookup(key_tlv, key_tlv_length, &message_id, &part) ||
	    receipt_lookup(key_text, key_text_length, &message_id, &part)) {
		receipt_apply(&record, message_id, part);
		return SMPP_ESME_ROK;
	}
	/*
	 * No part has this id yet: the receipt may have overtaken its
	 * submit_sm_resp. Hold it, durably, until the response or the hold
	 * timer decides.
	 */
	hold_key = key_tlv_length > 0 ? key_tlv : key_text;
	hold_key_length = key_tlv_length > 0 ? key_tlv_length : key_text_length;
	if (store_put(gateway->store, STORE_DB_HELD_RECEIPTS, hold_key,
		hold_key_length, &record, sizeof(record), 0) != STORE_OK ||
	    timer_schedule(
		record.time_us + receipt_config->outbox_receipt_hold_us,
		TIMER_KIND_RECEIPT_HOLD, hold_key, hold_key_length,
		NULL) != STORE_OK)
		return SMPP_ESME_RSYSERR;
	metrics_add(metric_held, 1);
	log_info(0, "receipt", "held", "link=%s smsc_id=%s", record.link,
	    record.smsc_id);
	return SMPP_ESME_ROK;
}

void
receipt_index_part(const char *link_name, const char *smsc_id,
    uint64_t message_id, unsigned int part)
{
	const struct config_link *config;
	struct receipt_record held;
	struct link *link = link_find(link_name);
	uint8_t key[RECEIPT_KEY_MAX], value[9];
	const void *found;
	size_t key_length, found_length;

	if (link == NULL)
		return;
	config = link_config(link);
	key_length = receipt_key(link_name, smsc_id, strlen(smsc_id),
	    config->response_id_base, key, sizeof(key));
	if (key_length == 0) {
		log_warnx(message_id, "receipt", "bad-smsc-id",
		    "link=%s part=%u", link_name, part);
		return;
	}
	outbox_key(message_id, part, value);
	store_put(gateway->store, STORE_DB_SMSC_IDS, key, key_length, value,
	    sizeof(value), 0);
	if (store_get(gateway->store, STORE_DB_HELD_RECEIPTS, key, key_length,
		&found, &found_length) != STORE_OK ||
	    found_length != sizeof(held))
		return;
	memcpy(&held, found, sizeof(held));
	store_delete(gateway->store, STORE_DB_HELD_RECEIPTS, key, key_length);
	log_info(message_id, "receipt", "held-matched", "link=%s part=%u",
	    link_name, part);
	receipt_apply(&held, message_id, part);
}

/* A held receipt's time is up: nothing claimed it, so it is unmatched. */
static void
receipt_hold_expired(
    void *arg, uint64_t timer_id, const void *payload, size_t payload_length)
{
	struct receipt_record held;
	const void *found;
	size_t found_length;

	if (store_get(gateway->store, STORE_DB_HELD_RECEIPTS, payload,
		payload_length, &found, &found_length) != STORE_OK ||
	    found_length != sizeof(held))
		return;
	memcpy(&held, found, sizeof(held));
	store_delete(
	    gateway->store, STORE_DB_HELD_RECEIPTS, payload, payload_length);
	metrics_add(metric_unmatched, 1);
	receipt_log_append(&held);
	log_warnx(0, "receipt", "unmatched", "link=%s smsc_id=%s stat=%s",
	    held.link, held.smsc_id, held.stat);
}

void
receipt_init(const struct config *config)
{
	receipt_config = config;
	/* Metrics made before (a metrics_reset() freed them) are gone. */
	latency_cached = 0;
	metric_received = metrics_counter("nudge_receipts_total", NULL,
	    "Delivery receipts received from upstream links.");
	metric_matched = metrics_counter("nudge_receipts_matched_total", NULL,
	    "Receipts matched to a message part.");
	metric_held = metrics_counter("nudge_receipts_held_total", NULL,
	    "Receipts that came before their submit_sm_resp and waited.");
	metric_unmatched = metrics_counter("nudge_receipts_unmatched_total",
	    NULL, "Receipts that matched no message.");
	timer_register(TIMER_KIND_RECEIPT_HOLD, receipt_hold_expired, NULL);
}
