/*
 * mo.c - inbound SMS (MO) from upstream links. Single messages are stored
 * at once; parts of a long message (UDH or SAR) are stored durably, fed to
 * smpp/'s reassembly and, once whole (or timed out), stored as one message
 * in the MO log. Then one routing hook takes it: the flow engine and the
 * SMPP server side plug in there; until then the MO log is where it lives
 * (`nudgectl mo tail`). Nothing is acknowledged before it is stored.
 */
#include <string.h>
#include <stdlib.h>

#include "smpp.h"
#include "nudged.h"

#define MO_TEXT_MAX         (SMPP_SPLIT_MAX_PARTS * 160 * 4)
#define MO_PART_KEY_MAX     (OUTBOX_LINK_NAME_SIZE + 2 * 24 + 8)
#define MO_SOURCE_SEPARATOR 0x1f

/* STORE_DB_MO_PARTS value: the part's payload follows. */
struct mo_part_record {
	uint8_t version;
	uint8_t data_coding;
	uint8_t total;
	uint8_t seqnum;
	uint16_t reference;
	uint16_t length;
	uint64_t time_us;
};

static const struct config *mo_config;
static struct smpp_reassembly *reassembly;
static mo_route_fn route_fn;
static void *route_arg;
static struct metric *metric_received, *metric_parts, *metric_incomplete;

void
mo_set_route(mo_route_fn fn, void *arg)
{
	route_fn = fn;
	route_arg = arg;
}

/* "link NUL from NUL to NUL" + reference + total: one long message. */
static size_t
mo_message_key(const char *link, const char *from, const char *to,
    uint16_t reference, uint8_t total, uint8_t *key, size_t size)
{
	size_t link_length = strlen(link), from_length = strlen(from);
	size_t to_length = strlen(to), length;

	length = link_length + from_length + to_length + 3 + 3;
	if (length + 1 > size)
		return 0;
	memcpy(key, link, link_length + 1);
	memcpy(key + link_length + 1, from, from_length + 1);
	memcpy(key + link_length + from_length + 2, to, to_length + 1);
	key[length - 3] = (uint8_t)(reference >> 8);
	key[length - 2] = (uint8_t)reference;
	key[length - 1] = total;
	return length;
}

/* Decodes an SMS payload in data_coding to UTF-8 (binary as hex). */
static size_t
mo_decode_text(uint8_t data_coding, const uint8_t *payload, size_t length,
    char *out, size_t capacity)
{
	static const char hex[] = "0123456789abcdef";
	size_t written = 0, i;
	uint8_t alphabet = (uint8_t)smpp_charset_alphabet(data_coding);

	if (alphabet == SMPP_CODING_BINARY ||
	    alphabet == SMPP_CODING_BINARY_8BIT) {
		for (i = 0; i < length && written + 3 <= capacity; i++) {
			out[written++] = hex[payload[i] >> 4];
			out[written++] = hex[payload[i] & 0xf];
		}
		out[written] = '\0';
		return written;
	}
	if (smpp_charset_decode((enum smpp_data_coding)alphabet, payload,
		length, out, capacity - 1, &written) != SMPP_CHARSET_OK &&
	    written == 0)
		written = 0;
	out[written] = '\0';
	return written;
}

/* Writes one whole (or given-up) MO to the log and routes it. */
static void
mo_store(const char *link, const char *from, const char *to,
    uint8_t data_coding, unsigned int parts, int complete, const char *text,
    size_t text_length)
{
	struct mo_record record;
	uint8_t key[8], *value;
	uint64_t id;
	char masked[LOG_MASKED_NUMBER_SIZE];

	memset(&record, 0, sizeof(record));
	record.version = OUTBOX_RECORD_VERSION;
	record.data_coding = data_coding;
	record.parts = (uint8_t)parts;
	record.complete = (uint8_t)complete;
	record.text_length = (uint16_t)text_length;
	record.time_us = clock_now_us();
	snprintf(record.link, sizeof(record.link), "%s", link);
	snprintf(record.from, sizeof(record.from), "%s", from);
	snprintf(record.to, sizeof(record.to), "%s", to);
	if ((id = store_sequence_next(gateway->store, STORE_SEQUENCE_MO)) == 0)
		return;
	store_encode_u64(key, id);
	if ((value = malloc(sizeof(record) + text_length)) == NULL)
		fatal("mo", "out-of-memory", NULL);
	memcpy(value, &record, sizeof(record));
	memcpy(value + sizeof(record), text, text_length);
	store_put(gateway->store, STORE_DB_MO, key, sizeof(key), value,
	    sizeof(record) + text_length, STORE_PUT_APPEND);
	free(value);
	metrics_add(metric_received, 1);
	if (!complete)
		metrics_add(metric_incomplete, 1);
	log_info(id, "mo", "stored",
	    "link=%s from=%s parts=%u complete=%d "
	    "length=%zu",
	    link, log_mask_number(from, masked, sizeof(masked)), parts,
	    complete, text_length);
	if (route_fn != NULL)
		route_fn(route_arg, id, &record, text);
}

/* Deletes the stored parts of one long message. */
static void
mo_forget_parts(const uint8_t *message_key, size_t key_length, uint8_t total)
{
	uint8_t key[MO_PART_KEY_MAX + 1];
	unsigned int seqnum;

	memcpy(key, message_key, key_length);
	for (seqnum = 1; seqnum <= total; seqnum++) {
		key[key_length] = (uint8_t)seqnum;
		store_delete(
		    gateway->store, STORE_DB_MO_PARTS, key, key_length + 1);
	}
}

/* smpp_reassembly hands back a message: whole, timed out or evicted. */
static void
mo_reassembled(void *arg, const struct smpp_reassembly_message *message)
{
	uint8_t key[MO_PART_KEY_MAX];
	char link[OUTBOX_LINK_NAME_SIZE], *text;
	const char *separator = strchr(message->source, MO_SOURCE_SEPARATOR);
	const char *from;
	size_t key_length, text_length, link_length;

	/* We passed "link US from" as the source: split it back. */
	if (separator == NULL)
		return;
	link_length = (size_t)(separator - message->source);
	if (link_length >= sizeof(link))
		return;
	memcpy(link, message->source, link_length);
	link[link_length] = '\0';
	from = separator + 1;
	key_length = mo_message_key(link, from, message->destination,
	    message->reference, message->total, key, sizeof(key));
	if ((text = malloc(MO_TEXT_MAX)) == NULL)
		fatal("mo", "out-of-memory", NULL);
	text_length = mo_decode_text(message->data_coding, message->payload,
	    message->length, text, MO_TEXT_MAX);
	mo_store(link, from, message->destination, message->data_coding,
	    message->received, message->reason == SMPP_REASSEMBLY_COMPLETE,
	    text, text_length);
	if (key_length > 0)
		mo_forget_parts(key, key_length, message->total);
	free(text);
}

/*
 * Adds one part to the reassembly. The source given to smpp/ is "link US
 * from" (US: the ASCII unit separator) so parts from different links never
 * mix and the callback can tell where the message came from.
 */
static int
mo_add_part(const char *link, const char *from, const char *to,
    const struct mo_part_record *part, const uint8_t *payload)
{
	struct smpp_reassembly_part piece;
	char source[OUTBOX_LINK_NAME_SIZE + 24 + 2];

	if ((size_t)snprintf(source, sizeof(source), "%s%c%s", link,
		MO_SOURCE_SEPARATOR, from) >= sizeof(source))
		return -1;
	memset(&piece, 0, sizeof(piece));
	piece.source = source;
	piece.destination = to;
	piece.reference = part->reference;
	piece.total = part->total;
	piece.seqnum = part->seqnum;
	piece.data_coding = part->data_coding;
	piece.payload = payload;
	piece.length = part->length;
	return smpp_reassembly_add(reassembly, &piece, clock_now_us());
}

uint32_t
mo_handle(struct link *link, const struct smpp_pdu *pdu)
{
	struct smpp_udh udh;
	struct smpp_tlv tlv, sar_reference, sar_total, sar_seqnum;
	struct mo_part_record part;
	const uint8_t *payload = pdu->short_message;
	size_t length = pdu->sm_length, key_length;
	uint8_t key[MO_PART_KEY_MAX + 1], *value;
	const char *name = link_name(link);
	const char *from = pdu->source_addr != NULL ? pdu->source_addr : "";
	char international[OUTBOX_ADDRESS_SIZE];
	const char *to =
	    pdu->destination_addr != NULL ? pdu->destination_addr : "";
	char *text;
	size_t text_length;
	int rc;

	if (length == 0 &&
	    smpp_pdu_find_tlv(pdu, SMPP_TLV_MESSAGE_PAYLOAD, &tlv)) {
		payload = tlv.value;
		length = tlv.length;
	}
	/* An international sender is kept as E.164, so profiles match it. */
	if (pdu->source_addr_ton == 1 && from[0] != '+' && from[0] != '\0' &&
	    strspn(from, "0123456789") == strlen(from) &&
	    strlen(from) + 2 <= sizeof(international)) {
		snprintf(international, sizeof(international), "+%s", from);
		from = international;
	}
	memset(&part, 0, sizeof(part));
	part.version = OUTBOX_RECORD_VERSION;
	part.data_coding = pdu->data_coding;
	part.time_us = clock_now_us();
	if ((pdu->esm_class & SMPP_ESM_CLASS_UDHI) && length > 0) {
		if (smpp_udh_parse(payload, length, &udh) != SMPP_UDH_OK) {
			log_warnx(0, "mo", "bad-udh", "link=%s", name);
			return SMPP_ESME_RINVESMCLASS;
		}
		payload += udh.header_length;
		length -= udh.header_length;
		if (udh.has_concat && udh.concat_total > 1) {
			part.reference = udh.concat_reference;
			part.total = udh.concat_total;
			part.seqnum = udh.concat_seqnum;
		}
	} else if (smpp_pdu_find_tlv(
		       pdu, SMPP_TLV_SAR_MSG_REF_NUM, &sar_reference) &&
		   smpp_pdu_find_tlv(
		       pdu, SMPP_TLV_SAR_TOTAL_SEGMENTS, &sar_total) &&
		   smpp_pdu_find_tlv(
		       pdu, SMPP_TLV_SAR_SEGMENT_SEQNUM, &sar_seqnum) &&
		   sar_total.integer > 1) {
		part.reference = (uint16_t)sar_reference.integer;
		part.total = (uint8_t)sar_total.integer;
		part.seqnum = (uint8_t)sar_seqnum.integer;
	}
	if (part.total == 0) {
		if ((text = malloc(MO_TEXT_MAX)) == NULL)
			fatal("mo", "out-of-memory", NULL);
		text_length = mo_decode_text(
		    pdu->data_coding, payload, length, text, MO_TEXT_MAX);
		mo_store(
		    name, from, to, pdu->data_coding, 1, 1, text, text_length);
		free(text);
		return SMPP_ESME_ROK;
	}
	if (part.seqnum == 0 || part.seqnum > part.total) {
		log_warnx(0, "mo", "bad-part", "link=%s seqnum=%u total=%u",
		    name, part.seqnum, part.total);
		return SMPP_ESME_RINVOPTPARAMVAL;
	}

	/* Stored before anything else: the deliver_sm_resp promises it. */
	part.length = (uint16_t)length;
	key_length = mo_message_key(
	    name, from, to, part.reference, part.total, key, sizeof(key) - 1);
	if (key_length == 0)
		return SMPP_ESME_RINVSRCADR;
	key[key_length] = part.seqnum;
	if ((value = malloc(sizeof(part) + length)) == NULL)
		fatal("mo", "out-of-memory", NULL);
	memcpy(value, &part, sizeof(part));
	memcpy(value + sizeof(part), payload, length);
	if (store_put(gateway->store, STORE_DB_MO_PARTS, key, key_length + 1,
		value, sizeof(part) + length, 0) != STORE_OK) {
		free(value);
		return SMPP_ESME_RSYSERR;
	}
	free(value);
	metrics_add(metric_parts, 1);
	rc = mo_add_part(name, from, to, &part, payload);
	if (rc == SMPP_REASSEMBLY_STORED)
		timer_schedule(
		    part.time_us + mo_config->outbox_mo_timeout_us + 1000,
		    TIMER_KIND_MO_REASSEMBLY, key, key_length, NULL);
	else if (rc < 0)
		log_warnx(0, "mo", "reassembly-refused", "link=%s status=%d",
		    name, rc);
	return SMPP_ESME_ROK;
}

/* A long message's time is up: whatever smpp/ holds that is due goes. */
static void
mo_reassembly_timer(
    void *arg, uint64_t timer_id, const void *payload, size_t payload_length)
{
	smpp_reassembly_expire(reassembly, clock_now_us());
}

/* After a restart, parts stored but not yet whole go back into smpp/. */
static void
mo_recover(void)
{
	struct store_cursor *cursor;
	struct mo_part_record part;
	const void *key, *value;
	size_t key_length, value_length, restored = 0;
	const char *link, *from, *to;
	enum store_result result;

	if (store_cursor_open(gateway->store, STORE_DB_MO_PARTS, &cursor) !=
	    STORE_OK)
		return;
	for (result = store_cursor_seek(
		 cursor, NULL, 0, &key, &key_length, &value, &value_length);
	     result == STORE_OK; result = store_cursor_next(cursor, &key,
				     &key_length, &value, &value_length)) {
		if (value_length < sizeof(part) || key_length < 8)
			continue;
		memcpy(&part, value, sizeof(part));
		link = key;
		from = link + strlen(link) + 1;
		to = from + strlen(from) + 1;
		if ((const uint8_t *)to + strlen(to) + 4 >
		    (const uint8_t *)key + key_length)
			continue;
		/* Completion here writes; the cursor re-seeks after writes. */
		mo_add_part(link, from, to, &part,
		    (const uint8_t *)value + sizeof(part));
		restored++;
	}
	store_cursor_close(cursor);
	if (restored > 0)
		log_info(0, "mo", "recovered", "parts=%zu", restored);
}

void
mo_free(void)
{
	if (reassembly != NULL)
		smpp_reassembly_free(reassembly);
	reassembly = NULL;
}

void
mo_init(const struct config *config)
{
	struct smpp_reassembly_limits limits;

	mo_config = config;
	memset(&limits, 0, sizeof(limits));
	limits.max_messages = 100000;
	limits.max_bytes = 64 * 1024 * 1024;
	limits.timeout_us = config->outbox_mo_timeout_us;
	reassembly = smpp_reassembly_new(&limits, mo_reassembled, NULL);
	if (reassembly == NULL)
		fatalx("mo", "reassembly-init", NULL);
	metric_received = metrics_counter(
	    "nudge_mo_total", NULL, "Inbound SMS stored (long ones once).");
	metric_parts = metrics_counter("nudge_mo_parts_total", NULL,
	    "Parts of long inbound SMS received.");
	metric_incomplete = metrics_counter("nudge_mo_incomplete_total", NULL,
	    "Long inbound SMS given up with parts missing.");
	timer_register(TIMER_KIND_MO_REASSEMBLY, mo_reassembly_timer, NULL);
	mo_recover();
}
