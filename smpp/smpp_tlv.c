/*
 * smpp_tlv.c - SMPP 3.4 optional parameters (TLVs): the table of every tag
 * section 5.3.2 defines with its type and length bounds, validation of a
 * received TLV stream, iteration over it, and encoding of single TLVs.
 *
 * Tags outside the table are legal (vendor ranges, later versions): they are
 * checked only for a whole header and a value inside the PDU, and are kept.
 */
#include <string.h>

#include "smpp.h"

#define TLV_HEADER_LENGTH 4

/*
 * Every received TLV is looked up, so the table is indexed by a hash of the
 * tag, (low octet + high octet * 84) mod 128, which gives each SMPP 3.4 tag
 * its own slot. Two tags in one slot would initialise one element twice,
 * which the compilers refuse (-Woverride-init with -Werror).
 */
#define TLV_TABLE_SIZE 128
#define TLV_SLOT(tag)  ((((tag)&0xFF) + ((tag) >> 8) * 84) % TLV_TABLE_SIZE)

/* Shorthands for the table below. */
/* clang-format off */
#define INTEGER(tag, length, name) \
	[TLV_SLOT(tag)] = { tag, SMPP_TLV_TYPE_INTEGER, length, length, name }
#define C_STRING(tag, max, name) \
	[TLV_SLOT(tag)] = { tag, SMPP_TLV_TYPE_C_STRING, 1, max, name }
#define OCTETS(tag, min, max, name) \
	[TLV_SLOT(tag)] = { tag, SMPP_TLV_TYPE_OCTETS, min, max, name }
/* clang-format on */

/*
 * SMPP 3.4 section 5.3.2, in tag order. Bit mask parameters are one-octet
 * integers. The lengths of C-Octet strings include their NUL; a value
 * without it is accepted (some SMSCs omit it).
 */
static const struct smpp_tlv_descriptor tlv_table[TLV_TABLE_SIZE] = {
    INTEGER(SMPP_TLV_DEST_ADDR_SUBUNIT, 1, "dest_addr_subunit"),
    INTEGER(SMPP_TLV_DEST_NETWORK_TYPE, 1, "dest_network_type"),
    INTEGER(SMPP_TLV_DEST_BEARER_TYPE, 1, "dest_bearer_type"),
    INTEGER(SMPP_TLV_DEST_TELEMATICS_ID, 2, "dest_telematics_id"),
    INTEGER(SMPP_TLV_SOURCE_ADDR_SUBUNIT, 1, "source_addr_subunit"),
    INTEGER(SMPP_TLV_SOURCE_NETWORK_TYPE, 1, "source_network_type"),
    INTEGER(SMPP_TLV_SOURCE_BEARER_TYPE, 1, "source_bearer_type"),
    INTEGER(SMPP_TLV_SOURCE_TELEMATICS_ID, 1, "source_telematics_id"),
    INTEGER(SMPP_TLV_QOS_TIME_TO_LIVE, 4, "qos_time_to_live"),
    INTEGER(SMPP_TLV_PAYLOAD_TYPE, 1, "payload_type"),
    C_STRING(SMPP_TLV_ADDITIONAL_STATUS_INFO_TEXT, 256,
	"additional_status_info_text"),
    C_STRING(SMPP_TLV_RECEIPTED_MESSAGE_ID, 65, "receipted_message_id"),
    INTEGER(SMPP_TLV_MS_MSG_WAIT_FACILITIES, 1, "ms_msg_wait_facilities"),
    INTEGER(SMPP_TLV_PRIVACY_INDICATOR, 1, "privacy_indicator"),
    OCTETS(SMPP_TLV_SOURCE_SUBADDRESS, 2, 23, "source_subaddress"),
    OCTETS(SMPP_TLV_DEST_SUBADDRESS, 2, 23, "dest_subaddress"),
    INTEGER(SMPP_TLV_USER_MESSAGE_REFERENCE, 2, "user_message_reference"),
    INTEGER(SMPP_TLV_USER_RESPONSE_CODE, 1, "user_response_code"),
    INTEGER(SMPP_TLV_SOURCE_PORT, 2, "source_port"),
    INTEGER(SMPP_TLV_DESTINATION_PORT, 2, "destination_port"),
    INTEGER(SMPP_TLV_SAR_MSG_REF_NUM, 2, "sar_msg_ref_num"),
    INTEGER(SMPP_TLV_LANGUAGE_INDICATOR, 1, "language_indicator"),
    INTEGER(SMPP_TLV_SAR_TOTAL_SEGMENTS, 1, "sar_total_segments"),
    INTEGER(SMPP_TLV_SAR_SEGMENT_SEQNUM, 1, "sar_segment_seqnum"),
    INTEGER(SMPP_TLV_SC_INTERFACE_VERSION, 1, "sc_interface_version"),
    INTEGER(SMPP_TLV_CALLBACK_NUM_PRES_IND, 1, "callback_num_pres_ind"),
    OCTETS(SMPP_TLV_CALLBACK_NUM_ATAG, 1, 65, "callback_num_atag"),
    INTEGER(SMPP_TLV_NUMBER_OF_MESSAGES, 1, "number_of_messages"),
    OCTETS(SMPP_TLV_CALLBACK_NUM, 4, 19, "callback_num"),
    INTEGER(SMPP_TLV_DPF_RESULT, 1, "dpf_result"),
    INTEGER(SMPP_TLV_SET_DPF, 1, "set_dpf"),
    INTEGER(SMPP_TLV_MS_AVAILABILITY_STATUS, 1, "ms_availability_status"),
    OCTETS(SMPP_TLV_NETWORK_ERROR_CODE, 3, 3, "network_error_code"),
    OCTETS(SMPP_TLV_MESSAGE_PAYLOAD, 0, 65535, "message_payload"),
    INTEGER(SMPP_TLV_DELIVERY_FAILURE_REASON, 1, "delivery_failure_reason"),
    INTEGER(SMPP_TLV_MORE_MESSAGES_TO_SEND, 1, "more_messages_to_send"),
    INTEGER(SMPP_TLV_MESSAGE_STATE, 1, "message_state"),
    OCTETS(SMPP_TLV_USSD_SERVICE_OP, 1, 1, "ussd_service_op"),
    INTEGER(SMPP_TLV_DISPLAY_TIME, 1, "display_time"),
    INTEGER(SMPP_TLV_SMS_SIGNAL, 2, "sms_signal"),
    INTEGER(SMPP_TLV_MS_VALIDITY, 1, "ms_validity"),
    /* 3.4 sends no value; 5.0 added one optional octet: accept both. */
    [TLV_SLOT(SMPP_TLV_ALERT_ON_MESSAGE_DELIVERY)] =
	{SMPP_TLV_ALERT_ON_MESSAGE_DELIVERY, SMPP_TLV_TYPE_NO_VALUE, 0, 1,
	    "alert_on_message_delivery"},
    INTEGER(SMPP_TLV_ITS_REPLY_TYPE, 1, "its_reply_type"),
    OCTETS(SMPP_TLV_ITS_SESSION_INFO, 2, 2, "its_session_info"),
};

/* Bits for the sar_* presence check in smpp_tlv_validate(). */
#define SAR_REF_NUM 0x1
#define SAR_TOTAL   0x2
#define SAR_SEQNUM  0x4
#define SAR_ALL     (SAR_REF_NUM | SAR_TOTAL | SAR_SEQNUM)

static uint16_t
load16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Big-endian integer of 0..4 octets. */
static uint32_t
load_integer(const uint8_t *p, size_t length)
{
	uint32_t value = 0;
	size_t i;

	for (i = 0; i < length && i < 4; i++)
		value = value << 8 | p[i];
	return value;
}

/* One slot, one comparison; empty slots have no name. */
const struct smpp_tlv_descriptor *
smpp_tlv_describe(uint16_t tag)
{
	const struct smpp_tlv_descriptor *descriptor;

	descriptor = &tlv_table[TLV_SLOT(tag)];
	return descriptor->name != NULL && descriptor->tag == tag ? descriptor
								  : NULL;
}

const char *
smpp_tlv_name(uint16_t tag)
{
	const struct smpp_tlv_descriptor *descriptor = smpp_tlv_describe(tag);

	return descriptor != NULL ? descriptor->name : "unknown";
}

uint32_t
smpp_tlv_check_length(uint16_t tag, size_t length)
{
	const struct smpp_tlv_descriptor *descriptor = smpp_tlv_describe(tag);

	if (length > 0xFFFF)
		return SMPP_ESME_RINVPARLEN;
	if (descriptor == NULL)
		return SMPP_ESME_ROK;
	if (length < descriptor->min_length || length > descriptor->max_length)
		return SMPP_ESME_RINVPARLEN;
	return SMPP_ESME_ROK;
}

/*
 * One pass over the stream. The sar_* values are collected on the way and
 * judged at the end, since the three may come in any order.
 */
uint32_t
smpp_tlv_validate(const uint8_t *stream, size_t length)
{
	size_t offset = 0;
	unsigned sar_seen = 0;
	uint32_t sar_total = 0, sar_seqnum = 0;

	while (offset < length) {
		uint16_t tag, value_length;
		uint32_t status;

		if (length - offset < TLV_HEADER_LENGTH)
			return SMPP_ESME_RINVOPTPARSTREAM;
		tag = load16(stream + offset);
		value_length = load16(stream + offset + 2);
		offset += TLV_HEADER_LENGTH;
		if (value_length > length - offset)
			return SMPP_ESME_RINVOPTPARSTREAM;
		status = smpp_tlv_check_length(tag, value_length);
		if (status != SMPP_ESME_ROK)
			return status;
		switch (tag) {
		case SMPP_TLV_SAR_MSG_REF_NUM:
			sar_seen |= SAR_REF_NUM;
			break;
		case SMPP_TLV_SAR_TOTAL_SEGMENTS:
			sar_seen |= SAR_TOTAL;
			sar_total = stream[offset];
			break;
		case SMPP_TLV_SAR_SEGMENT_SEQNUM:
			sar_seen |= SAR_SEQNUM;
			sar_seqnum = stream[offset];
			break;
		default:
			break;
		}
		offset += value_length;
	}
	if (sar_seen != 0 && sar_seen != SAR_ALL)
		return SMPP_ESME_RMISSINGOPTPARAM;
	if (sar_seen == SAR_ALL &&
	    (sar_total == 0 || sar_seqnum == 0 || sar_seqnum > sar_total))
		return SMPP_ESME_RINVOPTPARAMVAL;
	return SMPP_ESME_ROK;
}

/* Reads the TLV at *offset; Integer values are loaded into tlv->integer. */
int
smpp_tlv_next(
    const uint8_t *stream, size_t length, size_t *offset, struct smpp_tlv *tlv)
{
	const struct smpp_tlv_descriptor *descriptor;
	size_t at = *offset;

	if (at >= length || length - at < TLV_HEADER_LENGTH)
		return 0;
	tlv->tag = load16(stream + at);
	tlv->length = load16(stream + at + 2);
	if (tlv->length > length - at - TLV_HEADER_LENGTH)
		return 0;
	tlv->value = stream + at + TLV_HEADER_LENGTH;
	tlv->integer = 0;
	descriptor = smpp_tlv_describe(tlv->tag);
	if (descriptor != NULL && descriptor->type == SMPP_TLV_TYPE_INTEGER)
		tlv->integer = load_integer(tlv->value, tlv->length);
	*offset = at + TLV_HEADER_LENGTH + tlv->length;
	return 1;
}

int
smpp_tlv_encode(const struct smpp_tlv *tlv, uint8_t *out, size_t capacity)
{
	size_t total = TLV_HEADER_LENGTH + (size_t)tlv->length;
	uint16_t i;

	if (smpp_tlv_check_length(tlv->tag, tlv->length) != SMPP_ESME_ROK)
		return SMPP_PDU_ENCODE_INVALID_TLV;
	/* Without a value pointer only an integer of 0..4 octets is known. */
	if (tlv->value == NULL && tlv->length > 4)
		return SMPP_PDU_ENCODE_INVALID_TLV;
	if (total > capacity)
		return SMPP_PDU_ENCODE_NO_SPACE;
	out[0] = (uint8_t)(tlv->tag >> 8);
	out[1] = (uint8_t)tlv->tag;
	out[2] = (uint8_t)(tlv->length >> 8);
	out[3] = (uint8_t)tlv->length;
	if (tlv->value != NULL) {
		if (tlv->length > 0)
			memcpy(
			    out + TLV_HEADER_LENGTH, tlv->value, tlv->length);
	} else {
		for (i = 0; i < tlv->length; i++)
			out[TLV_HEADER_LENGTH + i] =
			    (uint8_t)(tlv->integer >>
				      (8 * (tlv->length - 1 - i)));
	}
	return (int)total;
}

struct smpp_tlv
smpp_tlv_integer(uint16_t tag, uint32_t value)
{
	const struct smpp_tlv_descriptor *descriptor = smpp_tlv_describe(tag);
	struct smpp_tlv tlv = {tag, 4, value, NULL};

	if (descriptor != NULL && descriptor->type == SMPP_TLV_TYPE_INTEGER)
		tlv.length = descriptor->max_length;
	return tlv;
}

struct smpp_tlv
smpp_tlv_octets(uint16_t tag, const void *value, uint16_t length)
{
	struct smpp_tlv tlv = {tag, length, 0, value};

	return tlv;
}

struct smpp_tlv
smpp_tlv_c_string(uint16_t tag, const char *text)
{
	size_t length = strlen(text) + 1;
	struct smpp_tlv tlv = {tag, 0, 0, (const uint8_t *)text};

	/* Too long for a TLV: no value, which smpp_tlv_encode() refuses. */
	if (length > 0xFFFF) {
		tlv.value = NULL;
		tlv.length = 0xFFFF;
	} else
		tlv.length = (uint16_t)length;
	return tlv;
}

size_t
smpp_tlv_text_length(const struct smpp_tlv *tlv)
{
	const uint8_t *nul;

	if (tlv->value == NULL)
		return 0;
	nul = memchr(tlv->value, '\0', tlv->length);
	return nul != NULL ? (size_t)(nul - tlv->value) : tlv->length;
}
