/*
 * smpp_pdu.c - the SMPP 3.4 PDU codec: framing of a byte stream, zero-copy
 * decoding of every PDU into struct smpp_pdu, and encoding back to bytes.
 *
 * Each command is a row of a table that lists its mandatory fields in wire
 * order (section 4 of the spec); one decoder and one encoder walk the rows.
 * Decoding validates every field against its maximum size and maps each
 * violation to the command_status the peer should be answered with.
 * Strings and byte ranges of a decoded PDU point into the input buffer; the
 * decoder never allocates and never copies.
 */
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "smpp.h"

/* Sizes of C-Octet strings, NUL included, SMPP 3.4 section 4. */
#define SYSTEM_ID_SIZE         16
#define PASSWORD_SIZE          9
#define SYSTEM_TYPE_SIZE       13
#define ADDRESS_RANGE_SIZE     41
#define SERVICE_TYPE_SIZE      6
#define ADDRESS_SIZE           21
#define LONG_ADDRESS_SIZE      65 /* data_sm, alert_notification */
#define MESSAGE_ID_SIZE        65
#define TIME_SIZE              17 /* "YYMMDDhhmmsstnnp" and NUL */
#define TIME_LENGTH            16
#define ERROR_STATUS_CODE_SIZE 4

enum field_kind {
	FIELD_INTEGER8 = 1,  /* one octet */
	FIELD_C_STRING,      /* up to size octets, NUL included */
	FIELD_TIME,          /* empty or an absolute / relative time */
	FIELD_SHORT_MESSAGE, /* sm_length, then that many octets */
	FIELD_DESTINATIONS,  /* number_of_dests, then dest_address list */
	FIELD_UNSUCCESSFUL,  /* no_unsuccess, then unsuccess_sme list */
};

/* One mandatory field: how to read it, where it goes, what to answer. */
struct field {
	uint8_t kind;    /* enum field_kind */
	uint8_t size;    /* C-Octet string maximum, NUL included */
	uint16_t offset; /* of its member in struct smpp_pdu */
	uint32_t status; /* command_status when it is invalid */
};

/* clang-format off */
#define MEMBER(name) ((uint16_t)offsetof(struct smpp_pdu, name))
#define INTEGER8(name) { FIELD_INTEGER8, 0, MEMBER(name), 0 }
#define C_STRING(name, size, status) \
	{ FIELD_C_STRING, size, MEMBER(name), status }
#define TIME(name, status) { FIELD_TIME, TIME_SIZE, MEMBER(name), status }
#define SHORT_MESSAGE \
	{ FIELD_SHORT_MESSAGE, 0, MEMBER(sm_length), SMPP_ESME_RINVMSGLEN }
#define DESTINATIONS \
	{ FIELD_DESTINATIONS, ADDRESS_SIZE, MEMBER(number_of_destinations), \
	    SMPP_ESME_RINVNUMDESTS }
#define UNSUCCESSFUL \
	{ FIELD_UNSUCCESSFUL, ADDRESS_SIZE, MEMBER(number_of_destinations), \
	    SMPP_ESME_RINVDSTADR }
/* clang-format on */

/* bind_transmitter, bind_receiver, bind_transceiver: section 4.1. */
static const struct field bind_fields[] = {
    C_STRING(system_id, SYSTEM_ID_SIZE, SMPP_ESME_RINVSYSID),
    C_STRING(password, PASSWORD_SIZE, SMPP_ESME_RINVPASWD),
    C_STRING(system_type, SYSTEM_TYPE_SIZE, SMPP_ESME_RINVSYSTYP),
    INTEGER8(interface_version),
    INTEGER8(addr_ton),
    INTEGER8(addr_npi),
    /* No status names address_range; the bind fails as a whole. */
    C_STRING(address_range, ADDRESS_RANGE_SIZE, SMPP_ESME_RBINDFAIL),
};

static const struct field bind_resp_fields[] = {
    C_STRING(system_id, SYSTEM_ID_SIZE, SMPP_ESME_RINVSYSID),
};

static const struct field outbind_fields[] = {
    C_STRING(system_id, SYSTEM_ID_SIZE, SMPP_ESME_RINVSYSID),
    C_STRING(password, PASSWORD_SIZE, SMPP_ESME_RINVPASWD),
};

/* submit_sm (4.4.1) and deliver_sm (4.6.1) share one layout. */
static const struct field submit_sm_fields[] = {
    C_STRING(service_type, SERVICE_TYPE_SIZE, SMPP_ESME_RINVSERTYP),
    INTEGER8(source_addr_ton),
    INTEGER8(source_addr_npi),
    C_STRING(source_addr, ADDRESS_SIZE, SMPP_ESME_RINVSRCADR),
    INTEGER8(dest_addr_ton),
    INTEGER8(dest_addr_npi),
    C_STRING(destination_addr, ADDRESS_SIZE, SMPP_ESME_RINVDSTADR),
    INTEGER8(esm_class),
    INTEGER8(protocol_id),
    INTEGER8(priority_flag),
    TIME(schedule_delivery_time, SMPP_ESME_RINVSCHED),
    TIME(validity_period, SMPP_ESME_RINVEXPIRY),
    INTEGER8(registered_delivery),
    INTEGER8(replace_if_present_flag),
    INTEGER8(data_coding),
    INTEGER8(sm_default_msg_id),
    SHORT_MESSAGE,
};

/* submit_sm_resp, deliver_sm_resp, data_sm_resp. */
static const struct field message_id_fields[] = {
    C_STRING(message_id, MESSAGE_ID_SIZE, SMPP_ESME_RINVMSGID),
};

static const struct field submit_multi_fields[] = {
    C_STRING(service_type, SERVICE_TYPE_SIZE, SMPP_ESME_RINVSERTYP),
    INTEGER8(source_addr_ton),
    INTEGER8(source_addr_npi),
    C_STRING(source_addr, ADDRESS_SIZE, SMPP_ESME_RINVSRCADR),
    DESTINATIONS,
    INTEGER8(esm_class),
    INTEGER8(protocol_id),
    INTEGER8(priority_flag),
    TIME(schedule_delivery_time, SMPP_ESME_RINVSCHED),
    TIME(validity_period, SMPP_ESME_RINVEXPIRY),
    INTEGER8(registered_delivery),
    INTEGER8(replace_if_present_flag),
    INTEGER8(data_coding),
    INTEGER8(sm_default_msg_id),
    SHORT_MESSAGE,
};

static const struct field submit_multi_resp_fields[] = {
    C_STRING(message_id, MESSAGE_ID_SIZE, SMPP_ESME_RINVMSGID),
    UNSUCCESSFUL,
};

static const struct field data_sm_fields[] = {
    C_STRING(service_type, SERVICE_TYPE_SIZE, SMPP_ESME_RINVSERTYP),
    INTEGER8(source_addr_ton),
    INTEGER8(source_addr_npi),
    C_STRING(source_addr, LONG_ADDRESS_SIZE, SMPP_ESME_RINVSRCADR),
    INTEGER8(dest_addr_ton),
    INTEGER8(dest_addr_npi),
    C_STRING(destination_addr, LONG_ADDRESS_SIZE, SMPP_ESME_RINVDSTADR),
    INTEGER8(esm_class),
    INTEGER8(registered_delivery),
    INTEGER8(data_coding),
};

static const struct field query_sm_fields[] = {
    C_STRING(message_id, MESSAGE_ID_SIZE, SMPP_ESME_RINVMSGID),
    INTEGER8(source_addr_ton),
    INTEGER8(source_addr_npi),
    C_STRING(source_addr, ADDRESS_SIZE, SMPP_ESME_RINVSRCADR),
};

static const struct field query_sm_resp_fields[] = {
    C_STRING(message_id, MESSAGE_ID_SIZE, SMPP_ESME_RINVMSGID),
    /* No status names final_date; responses are never answered anyway. */
    TIME(final_date, SMPP_ESME_RUNKNOWNERR),
    INTEGER8(message_state),
    INTEGER8(error_code),
};

static const struct field cancel_sm_fields[] = {
    C_STRING(service_type, SERVICE_TYPE_SIZE, SMPP_ESME_RINVSERTYP),
    C_STRING(message_id, MESSAGE_ID_SIZE, SMPP_ESME_RINVMSGID),
    INTEGER8(source_addr_ton),
    INTEGER8(source_addr_npi),
    C_STRING(source_addr, ADDRESS_SIZE, SMPP_ESME_RINVSRCADR),
    INTEGER8(dest_addr_ton),
    INTEGER8(dest_addr_npi),
    C_STRING(destination_addr, ADDRESS_SIZE, SMPP_ESME_RINVDSTADR),
};

static const struct field replace_sm_fields[] = {
    C_STRING(message_id, MESSAGE_ID_SIZE, SMPP_ESME_RINVMSGID),
    INTEGER8(source_addr_ton),
    INTEGER8(source_addr_npi),
    C_STRING(source_addr, ADDRESS_SIZE, SMPP_ESME_RINVSRCADR),
    TIME(schedule_delivery_time, SMPP_ESME_RINVSCHED),
    TIME(validity_period, SMPP_ESME_RINVEXPIRY),
    INTEGER8(registered_delivery),
    INTEGER8(sm_default_msg_id),
    SHORT_MESSAGE,
};

static const struct field alert_notification_fields[] = {
    INTEGER8(source_addr_ton),
    INTEGER8(source_addr_npi),
    C_STRING(source_addr, LONG_ADDRESS_SIZE, SMPP_ESME_RINVSRCADR),
    INTEGER8(esme_addr_ton),
    INTEGER8(esme_addr_npi),
    C_STRING(esme_addr, LONG_ADDRESS_SIZE, SMPP_ESME_RINVDSTADR),
};

/* A command's row: its fields; known tells a bodiless command from none. */
struct command {
	const struct field *fields;
	uint8_t field_count;
	uint8_t known;
};

/* clang-format off */
#define COMMAND(list) { list, sizeof(list) / sizeof(list[0]), 1 }
#define COMMAND_WITHOUT_BODY { NULL, 0, 1 }
/* clang-format on */

/*
 * Command ids up to submit_multi (0x21) index the table directly, request
 * or response by the top bit; the two higher ones get the next slots.
 */
enum {
	SLOT_LAST_DIRECT = 0x21,
	SLOT_ALERT_NOTIFICATION,
	SLOT_DATA_SM,
	SLOT_COUNT,
};

#define SLOT(command_id) ((command_id) & ~SMPP_RESPONSE_BIT)

static const struct command command_table[2][SLOT_COUNT] = {
    {
	/* requests */
	[SLOT(SMPP_BIND_RECEIVER)] = COMMAND(bind_fields),
	[SLOT(SMPP_BIND_TRANSMITTER)] = COMMAND(bind_fields),
	[SLOT(SMPP_QUERY_SM)] = COMMAND(query_sm_fields),
	[SLOT(SMPP_SUBMIT_SM)] = COMMAND(submit_sm_fields),
	[SLOT(SMPP_DELIVER_SM)] = COMMAND(submit_sm_fields),
	[SLOT(SMPP_UNBIND)] = COMMAND_WITHOUT_BODY,
	[SLOT(SMPP_REPLACE_SM)] = COMMAND(replace_sm_fields),
	[SLOT(SMPP_CANCEL_SM)] = COMMAND(cancel_sm_fields),
	[SLOT(SMPP_BIND_TRANSCEIVER)] = COMMAND(bind_fields),
	[SLOT(SMPP_OUTBIND)] = COMMAND(outbind_fields),
	[SLOT(SMPP_ENQUIRE_LINK)] = COMMAND_WITHOUT_BODY,
	[SLOT(SMPP_SUBMIT_MULTI)] = COMMAND(submit_multi_fields),
	[SLOT_ALERT_NOTIFICATION] = COMMAND(alert_notification_fields),
	[SLOT_DATA_SM] = COMMAND(data_sm_fields),
    },
    {
	/* responses */
	[SLOT(SMPP_GENERIC_NACK)] = COMMAND_WITHOUT_BODY,
	[SLOT(SMPP_BIND_RECEIVER_RESP)] = COMMAND(bind_resp_fields),
	[SLOT(SMPP_BIND_TRANSMITTER_RESP)] = COMMAND(bind_resp_fields),
	[SLOT(SMPP_QUERY_SM_RESP)] = COMMAND(query_sm_resp_fields),
	[SLOT(SMPP_SUBMIT_SM_RESP)] = COMMAND(message_id_fields),
	[SLOT(SMPP_DELIVER_SM_RESP)] = COMMAND(message_id_fields),
	[SLOT(SMPP_UNBIND_RESP)] = COMMAND_WITHOUT_BODY,
	[SLOT(SMPP_REPLACE_SM_RESP)] = COMMAND_WITHOUT_BODY,
	[SLOT(SMPP_CANCEL_SM_RESP)] = COMMAND_WITHOUT_BODY,
	[SLOT(SMPP_BIND_TRANSCEIVER_RESP)] = COMMAND(bind_resp_fields),
	[SLOT(SMPP_ENQUIRE_LINK_RESP)] = COMMAND_WITHOUT_BODY,
	[SLOT(SMPP_SUBMIT_MULTI_RESP)] = COMMAND(submit_multi_resp_fields),
	[SLOT_DATA_SM] = COMMAND(message_id_fields),
    },
};

static uint32_t
load32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void
store32(uint8_t *p, uint32_t value)
{
	p[0] = (uint8_t)(value >> 24);
	p[1] = (uint8_t)(value >> 16);
	p[2] = (uint8_t)(value >> 8);
	p[3] = (uint8_t)value;
}

/* The table row of a command id, NULL for ids SMPP 3.4 does not define. */
static const struct command *
command_lookup(uint32_t command_id)
{
	const struct command *command;
	uint32_t base = SLOT(command_id);
	unsigned slot;

	if (base <= SLOT_LAST_DIRECT)
		slot = base;
	else if (base == SLOT(SMPP_ALERT_NOTIFICATION))
		slot = SLOT_ALERT_NOTIFICATION;
	else if (base == SLOT(SMPP_DATA_SM))
		slot = SLOT_DATA_SM;
	else
		return NULL;
	command = &command_table[command_id >> 31][slot];
	return command->known ? command : NULL;
}

static const char **
string_member(struct smpp_pdu *pdu, const struct field *field)
{
	return (const char **)(void *)((unsigned char *)pdu + field->offset);
}

static const char *
string_value(const struct smpp_pdu *pdu, const struct field *field)
{
	const unsigned char *base = (const unsigned char *)pdu;

	return *(const char *const *)(const void *)(base + field->offset);
}

static uint8_t *
integer8_member(struct smpp_pdu *pdu, const struct field *field)
{
	return (uint8_t *)pdu + field->offset;
}

static uint8_t
integer8_value(const struct smpp_pdu *pdu, const struct field *field)
{
	return ((const uint8_t *)pdu)[field->offset];
}

/*
 * Reads a C-Octet string of at most size octets (NUL included) and gives
 * its length. No NUL within size octets is the field's own error; a PDU
 * that ends first is a truncated body, RINVCMDLEN. A plain loop: the
 * strings are short and a memchr() call costs more than the scan.
 */
static uint32_t
decode_c_string(const uint8_t **cursor, const uint8_t *end, size_t size,
    uint32_t status, const char **text, size_t *length)
{
	const uint8_t *start = *cursor;
	size_t available = (size_t)(end - start);
	size_t limit = available < size ? available : size;
	size_t i;

	for (i = 0; i < limit; i++) {
		if (start[i] == '\0') {
			*text = (const char *)start;
			*length = i;
			*cursor = start + i + 1;
			return SMPP_ESME_ROK;
		}
	}
	return available < size ? SMPP_ESME_RINVCMDLEN : status;
}

/* "YYMMDDhhmmsstnnp": twelve digits, tenths, quarter hours, + - or R. */
static int
time_is_valid(const char *text, size_t length)
{
	size_t i;

	if (length == 0)
		return 1;
	if (length != TIME_LENGTH)
		return 0;
	for (i = 0; i < TIME_LENGTH - 1; i++)
		if (text[i] < '0' || text[i] > '9')
			return 0;
	return text[15] == '+' || text[15] == '-' || text[15] == 'R';
}

/* submit_multi: number_of_dests and the dest_address list, kept raw. */
static uint32_t
decode_destinations(
    const uint8_t **cursor, const uint8_t *end, struct smpp_pdu *pdu)
{
	const uint8_t *p = *cursor;
	const char *ignored;
	size_t ignored_length;
	unsigned count, i;
	uint32_t status;

	if (p >= end)
		return SMPP_ESME_RINVCMDLEN;
	count = *p++;
	if (count == 0 || count > SMPP_MAX_DESTINATIONS)
		return SMPP_ESME_RINVNUMDESTS;
	pdu->number_of_destinations = (uint8_t)count;
	pdu->destinations = p;
	for (i = 0; i < count; i++) {
		if (p >= end)
			return SMPP_ESME_RINVCMDLEN;
		switch (*p++) {
		case SMPP_DEST_FLAG_SME_ADDRESS:
			if (end - p < 2)
				return SMPP_ESME_RINVCMDLEN;
			p += 2;
			status = decode_c_string(&p, end, ADDRESS_SIZE,
			    SMPP_ESME_RINVDSTADR, &ignored, &ignored_length);
			break;
		case SMPP_DEST_FLAG_DISTRIBUTION_LIST:
			status = decode_c_string(&p, end, ADDRESS_SIZE,
			    SMPP_ESME_RINVDLNAME, &ignored, &ignored_length);
			break;
		default:
			return SMPP_ESME_RINVDESTFLAG;
		}
		if (status != SMPP_ESME_ROK)
			return status;
	}
	pdu->destinations_length = (size_t)(p - pdu->destinations);
	*cursor = p;
	return SMPP_ESME_ROK;
}

/* submit_multi_resp: no_unsuccess and the unsuccess_sme list, kept raw. */
static uint32_t
decode_unsuccessful(
    const uint8_t **cursor, const uint8_t *end, struct smpp_pdu *pdu)
{
	const uint8_t *p = *cursor;
	const char *ignored;
	size_t ignored_length;
	unsigned count, i;
	uint32_t status;

	if (p >= end)
		return SMPP_ESME_RINVCMDLEN;
	count = *p++;
	pdu->number_of_destinations = (uint8_t)count;
	pdu->destinations = p;
	for (i = 0; i < count; i++) {
		if (end - p < 2)
			return SMPP_ESME_RINVCMDLEN;
		p += 2;
		status = decode_c_string(&p, end, ADDRESS_SIZE,
		    SMPP_ESME_RINVDSTADR, &ignored, &ignored_length);
		if (status != SMPP_ESME_ROK)
			return status;
		if (end - p < ERROR_STATUS_CODE_SIZE)
			return SMPP_ESME_RINVCMDLEN;
		p += ERROR_STATUS_CODE_SIZE;
	}
	pdu->destinations_length = (size_t)(p - pdu->destinations);
	*cursor = p;
	return SMPP_ESME_ROK;
}

/* Walks a command's mandatory fields in wire order. */
static uint32_t
decode_fields(const struct command *command, const uint8_t **cursor,
    const uint8_t *end, struct smpp_pdu *pdu)
{
	const uint8_t *p = *cursor;
	uint32_t status = SMPP_ESME_ROK;
	unsigned i;

	for (i = 0; i < command->field_count; i++) {
		const struct field *field = &command->fields[i];
		const char **text;
		size_t length = 0;

		switch (field->kind) {
		case FIELD_INTEGER8:
			if (p >= end)
				return SMPP_ESME_RINVCMDLEN;
			*integer8_member(pdu, field) = *p++;
			break;
		case FIELD_C_STRING:
			status = decode_c_string(&p, end, field->size,
			    field->status, string_member(pdu, field), &length);
			break;
		case FIELD_TIME:
			text = string_member(pdu, field);
			status = decode_c_string(
			    &p, end, field->size, field->status, text, &length);
			if (status == SMPP_ESME_ROK &&
			    !time_is_valid(*text, length))
				status = field->status;
			break;
		case FIELD_SHORT_MESSAGE:
			if (p >= end)
				return SMPP_ESME_RINVCMDLEN;
			pdu->sm_length = *p++;
			if (pdu->sm_length > SMPP_MAX_SHORT_MESSAGE_LENGTH ||
			    pdu->sm_length > end - p)
				return SMPP_ESME_RINVMSGLEN;
			pdu->short_message = p;
			p += pdu->sm_length;
			break;
		case FIELD_DESTINATIONS:
			status = decode_destinations(&p, end, pdu);
			break;
		case FIELD_UNSUCCESSFUL:
			status = decode_unsuccessful(&p, end, pdu);
			break;
		default:
			return SMPP_ESME_RSYSERR;
		}
		if (status != SMPP_ESME_ROK)
			return status;
	}
	*cursor = p;
	return SMPP_ESME_ROK;
}

enum smpp_frame_result
smpp_pdu_frame(const uint8_t *data, size_t available, uint32_t max_pdu_length,
    uint32_t *pdu_length)
{
	uint32_t length;

	*pdu_length = 0;
	if (max_pdu_length == 0)
		max_pdu_length = SMPP_DEFAULT_MAX_PDU_LENGTH;
	if (available < 4)
		return SMPP_FRAME_NEED_MORE;
	length = load32(data);
	*pdu_length = length;
	/* Judged before any body byte is awaited: a huge length is refused. */
	if (length < SMPP_HEADER_LENGTH || length > max_pdu_length)
		return SMPP_FRAME_INVALID;
	if (available < length)
		return SMPP_FRAME_NEED_MORE;
	return SMPP_FRAME_COMPLETE;
}

int
smpp_pdu_decode_header(const uint8_t *data, size_t length, struct smpp_pdu *pdu)
{
	if (length < SMPP_HEADER_LENGTH)
		return -1;
	pdu->command_length = load32(data);
	pdu->command_id = load32(data + 4);
	pdu->command_status = load32(data + 8);
	pdu->sequence_number = load32(data + 12);
	return 0;
}

uint32_t
smpp_pdu_decode(const uint8_t *data, size_t length, struct smpp_pdu *pdu)
{
	/*
	 * Zeroed by copy: memset() of this size becomes "rep stos", whose
	 * start-up alone took a third of a submit_sm decode here; a copy
	 * from a constant compiles to plain vector moves.
	 */
	static const struct smpp_pdu empty;
	const struct command *command;
	const uint8_t *cursor, *end;
	uint32_t status;

	*pdu = empty;
	if (smpp_pdu_decode_header(data, length, pdu) != 0)
		return SMPP_ESME_RINVCMDLEN;
	if (pdu->command_length != length)
		return SMPP_ESME_RINVCMDLEN;
	command = command_lookup(pdu->command_id);
	if (command == NULL)
		return SMPP_ESME_RINVCMDID;
	cursor = data + SMPP_HEADER_LENGTH;
	end = data + length;
	/*
	 * After an error a response may come bare (section 4: "the body is
	 * not returned"); some peers send deliver_sm_resp bare even on
	 * success. The first string stays NULL to tell it apart.
	 */
	if ((pdu->command_id & SMPP_RESPONSE_BIT) && cursor == end)
		return SMPP_ESME_ROK;
	status = decode_fields(command, &cursor, end, pdu);
	if (status != SMPP_ESME_ROK)
		return status;
	if (cursor == end)
		return SMPP_ESME_ROK;
	pdu->tlv_bytes = cursor;
	pdu->tlv_bytes_length = (size_t)(end - cursor);
	return smpp_tlv_validate(pdu->tlv_bytes, pdu->tlv_bytes_length);
}

/*
 * Writes text (NULL: empty) as a C-Octet string of at most size octets,
 * copying and looking for the NUL in one pass (the strings are short).
 */
static int
encode_c_string(
    uint8_t **cursor, const uint8_t *end, const char *text, size_t size)
{
	size_t room = (size_t)(end - *cursor), i;
	uint8_t *out = *cursor;

	if (text == NULL)
		text = "";
	for (i = 0; i < size; i++) {
		if (i == room)
			return SMPP_PDU_ENCODE_NO_SPACE;
		out[i] = (uint8_t)text[i];
		if (text[i] == '\0') {
			*cursor = out + i + 1;
			return 0;
		}
	}
	return SMPP_PDU_ENCODE_FIELD_TOO_LONG;
}

static int
encode_integer8(uint8_t **cursor, const uint8_t *end, uint8_t value)
{
	if (*cursor >= end)
		return SMPP_PDU_ENCODE_NO_SPACE;
	*(*cursor)++ = value;
	return 0;
}

/* One dest_address or unsuccess_sme from a caller's destination_list. */
static int
encode_destination(uint8_t **cursor, const uint8_t *end,
    const struct smpp_destination *destination, int unsuccessful)
{
	int has_ton_npi = 1;
	int result;

	if (!unsuccessful) {
		if (destination->dest_flag != SMPP_DEST_FLAG_SME_ADDRESS &&
		    destination->dest_flag != SMPP_DEST_FLAG_DISTRIBUTION_LIST)
			return SMPP_PDU_ENCODE_INVALID_FIELD;
		if (encode_integer8(cursor, end, destination->dest_flag) < 0)
			return SMPP_PDU_ENCODE_NO_SPACE;
		has_ton_npi =
		    destination->dest_flag == SMPP_DEST_FLAG_SME_ADDRESS;
	}
	if (has_ton_npi &&
	    (encode_integer8(cursor, end, destination->dest_addr_ton) < 0 ||
		encode_integer8(cursor, end, destination->dest_addr_npi) < 0))
		return SMPP_PDU_ENCODE_NO_SPACE;
	result =
	    encode_c_string(cursor, end, destination->address, ADDRESS_SIZE);
	if (result < 0 || !unsuccessful)
		return result;
	if (end - *cursor < ERROR_STATUS_CODE_SIZE)
		return SMPP_PDU_ENCODE_NO_SPACE;
	store32(*cursor, destination->error_status_code);
	*cursor += ERROR_STATUS_CODE_SIZE;
	return 0;
}

/* The count, then destination_list if given, else the decoded raw list. */
static int
encode_destination_list(uint8_t **cursor, const uint8_t *end,
    const struct smpp_pdu *pdu, int unsuccessful)
{
	unsigned count = pdu->number_of_destinations, i;
	int result;

	if (!unsuccessful && (count == 0 || count > SMPP_MAX_DESTINATIONS))
		return SMPP_PDU_ENCODE_INVALID_FIELD;
	if (encode_integer8(cursor, end, (uint8_t)count) < 0)
		return SMPP_PDU_ENCODE_NO_SPACE;
	if (pdu->destination_list != NULL) {
		for (i = 0; i < count; i++) {
			result = encode_destination(cursor, end,
			    &pdu->destination_list[i], unsuccessful);
			if (result < 0)
				return result;
		}
		return 0;
	}
	if (count > 0 && pdu->destinations == NULL)
		return SMPP_PDU_ENCODE_INVALID_FIELD;
	if ((size_t)(end - *cursor) < pdu->destinations_length)
		return SMPP_PDU_ENCODE_NO_SPACE;
	if (pdu->destinations_length > 0)
		memcpy(*cursor, pdu->destinations, pdu->destinations_length);
	*cursor += pdu->destinations_length;
	return 0;
}

static int
encode_fields(const struct command *command, const struct smpp_pdu *pdu,
    uint8_t **cursor, const uint8_t *end)
{
	unsigned i;
	int result = 0;

	for (i = 0; i < command->field_count; i++) {
		const struct field *field = &command->fields[i];
		const char *text;

		switch (field->kind) {
		case FIELD_INTEGER8:
			result = encode_integer8(
			    cursor, end, integer8_value(pdu, field));
			break;
		case FIELD_C_STRING:
			result = encode_c_string(
			    cursor, end, string_value(pdu, field), field->size);
			break;
		case FIELD_TIME:
			text = string_value(pdu, field);
			if (text != NULL &&
			    strnlen(text, TIME_SIZE) < TIME_SIZE &&
			    !time_is_valid(text, strlen(text)))
				return SMPP_PDU_ENCODE_INVALID_FIELD;
			result =
			    encode_c_string(cursor, end, text, field->size);
			break;
		case FIELD_SHORT_MESSAGE:
			if (pdu->sm_length > SMPP_MAX_SHORT_MESSAGE_LENGTH)
				return SMPP_PDU_ENCODE_FIELD_TOO_LONG;
			if (pdu->sm_length > 0 && pdu->short_message == NULL)
				return SMPP_PDU_ENCODE_INVALID_FIELD;
			if (end - *cursor < 1 + pdu->sm_length)
				return SMPP_PDU_ENCODE_NO_SPACE;
			*(*cursor)++ = pdu->sm_length;
			if (pdu->sm_length > 0)
				memcpy(*cursor, pdu->short_message,
				    pdu->sm_length);
			*cursor += pdu->sm_length;
			break;
		case FIELD_DESTINATIONS:
			result = encode_destination_list(cursor, end, pdu, 0);
			break;
		case FIELD_UNSUCCESSFUL:
			result = encode_destination_list(cursor, end, pdu, 1);
			break;
		default:
			return SMPP_PDU_ENCODE_UNKNOWN_COMMAND;
		}
		if (result < 0)
			return result;
	}
	return 0;
}

/* A response with a NULL first string and no TLV goes as a bare header. */
static int
response_without_body(const struct command *command, const struct smpp_pdu *pdu)
{
	if (!(pdu->command_id & SMPP_RESPONSE_BIT) || command->field_count == 0)
		return 0;
	return command->fields[0].kind == FIELD_C_STRING &&
	       string_value(pdu, &command->fields[0]) == NULL &&
	       pdu->tlv_bytes_length == 0 && pdu->tlv_count == 0;
}

int
smpp_pdu_encode(const struct smpp_pdu *pdu, uint8_t *out, size_t capacity)
{
	const struct command *command = command_lookup(pdu->command_id);
	uint8_t *cursor = out + SMPP_HEADER_LENGTH;
	const uint8_t *end;
	size_t i;
	int result;

	if (command == NULL)
		return SMPP_PDU_ENCODE_UNKNOWN_COMMAND;
	if (capacity > INT_MAX)
		capacity = INT_MAX;
	if (capacity < SMPP_HEADER_LENGTH)
		return SMPP_PDU_ENCODE_NO_SPACE;
	end = out + capacity;
	if (!response_without_body(command, pdu)) {
		result = encode_fields(command, pdu, &cursor, end);
		if (result < 0)
			return result;
		/* Decoded TLVs first, byte for byte, then the caller's. */
		if ((size_t)(end - cursor) < pdu->tlv_bytes_length)
			return SMPP_PDU_ENCODE_NO_SPACE;
		if (pdu->tlv_bytes_length > 0)
			memcpy(cursor, pdu->tlv_bytes, pdu->tlv_bytes_length);
		cursor += pdu->tlv_bytes_length;
		for (i = 0; i < pdu->tlv_count; i++) {
			result = smpp_tlv_encode(
			    &pdu->tlvs[i], cursor, (size_t)(end - cursor));
			if (result < 0)
				return result;
			cursor += result;
		}
	}
	store32(out, (uint32_t)(cursor - out));
	store32(out + 4, pdu->command_id);
	store32(out + 8, pdu->command_status);
	store32(out + 12, pdu->sequence_number);
	return (int)(cursor - out);
}

int
smpp_pdu_encode_header_only(uint8_t *out, size_t capacity, uint32_t command_id,
    uint32_t command_status, uint32_t sequence_number)
{
	if (capacity < SMPP_HEADER_LENGTH)
		return SMPP_PDU_ENCODE_NO_SPACE;
	store32(out, SMPP_HEADER_LENGTH);
	store32(out + 4, command_id);
	store32(out + 8, command_status);
	store32(out + 12, sequence_number);
	return SMPP_HEADER_LENGTH;
}

int
smpp_pdu_encode_generic_nack(uint8_t *out, size_t capacity,
    uint32_t sequence_number, uint32_t command_status)
{
	return smpp_pdu_encode_header_only(
	    out, capacity, SMPP_GENERIC_NACK, command_status, sequence_number);
}

int
smpp_pdu_encode_enquire_link(
    uint8_t *out, size_t capacity, uint32_t sequence_number)
{
	return smpp_pdu_encode_header_only(
	    out, capacity, SMPP_ENQUIRE_LINK, SMPP_ESME_ROK, sequence_number);
}

int
smpp_pdu_encode_enquire_link_resp(
    uint8_t *out, size_t capacity, uint32_t sequence_number)
{
	return smpp_pdu_encode_header_only(out, capacity,
	    SMPP_ENQUIRE_LINK_RESP, SMPP_ESME_ROK, sequence_number);
}

int
smpp_pdu_encode_unbind(uint8_t *out, size_t capacity, uint32_t sequence_number)
{
	return smpp_pdu_encode_header_only(
	    out, capacity, SMPP_UNBIND, SMPP_ESME_ROK, sequence_number);
}

int
smpp_pdu_encode_unbind_resp(uint8_t *out, size_t capacity,
    uint32_t sequence_number, uint32_t command_status)
{
	return smpp_pdu_encode_header_only(
	    out, capacity, SMPP_UNBIND_RESP, command_status, sequence_number);
}

/* Section 4.4.2: the body is not returned with a non-zero status. */
int
smpp_pdu_encode_submit_sm_resp(uint8_t *out, size_t capacity,
    uint32_t sequence_number, uint32_t command_status, const char *message_id)
{
	struct smpp_pdu pdu;

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_SUBMIT_SM_RESP;
	pdu.command_status = command_status;
	pdu.sequence_number = sequence_number;
	pdu.message_id = command_status == SMPP_ESME_ROK ? message_id : NULL;
	return smpp_pdu_encode(&pdu, out, capacity);
}

/* Always with its (unused, empty) message_id, which peers expect. */
int
smpp_pdu_encode_deliver_sm_resp(uint8_t *out, size_t capacity,
    uint32_t sequence_number, uint32_t command_status)
{
	struct smpp_pdu pdu;

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_DELIVER_SM_RESP;
	pdu.command_status = command_status;
	pdu.sequence_number = sequence_number;
	pdu.message_id = "";
	return smpp_pdu_encode(&pdu, out, capacity);
}

const char *
smpp_pdu_encode_error_name(int error)
{
	static const char *const names[] = {
	    [-SMPP_PDU_ENCODE_NO_SPACE] = "no space in the output buffer",
	    [-SMPP_PDU_ENCODE_FIELD_TOO_LONG] = "field too long",
	    [-SMPP_PDU_ENCODE_INVALID_FIELD] = "invalid field",
	    [-SMPP_PDU_ENCODE_INVALID_TLV] = "invalid TLV length",
	    [-SMPP_PDU_ENCODE_UNKNOWN_COMMAND] = "unknown command id",
	};

	if (error >= 0)
		return "no error";
	if ((size_t)-error >= sizeof(names) / sizeof(names[0]))
		return "unknown encode error";
	return names[-error];
}

int
smpp_pdu_is_known_command(uint32_t command_id)
{
	return command_lookup(command_id) != NULL;
}

/* outbind and alert_notification take no response: 0, as for responses. */
uint32_t
smpp_pdu_response_id(uint32_t command_id)
{
	if (command_lookup(command_id) == NULL)
		return SMPP_GENERIC_NACK;
	if (command_id & SMPP_RESPONSE_BIT)
		return 0;
	if (command_lookup(command_id | SMPP_RESPONSE_BIT) == NULL)
		return 0;
	return command_id | SMPP_RESPONSE_BIT;
}

/* Reads one entry of a raw list; bounded even if the list was not decoded. */
static int
read_raw_destination(const struct smpp_pdu *pdu, size_t *cursor,
    struct smpp_destination *destination, int unsuccessful)
{
	const uint8_t *p = pdu->destinations + *cursor;
	const uint8_t *end = pdu->destinations + pdu->destinations_length;
	const uint8_t *nul;

	destination->dest_flag = SMPP_DEST_FLAG_SME_ADDRESS;
	if (!unsuccessful)
		destination->dest_flag = *p++;
	if (destination->dest_flag == SMPP_DEST_FLAG_SME_ADDRESS) {
		if (end - p < 2)
			return 0;
		destination->dest_addr_ton = p[0];
		destination->dest_addr_npi = p[1];
		p += 2;
	}
	nul = memchr(p, '\0', (size_t)(end - p));
	if (nul == NULL)
		return 0;
	destination->address = (const char *)p;
	p = nul + 1;
	if (unsuccessful) {
		if (end - p < ERROR_STATUS_CODE_SIZE)
			return 0;
		destination->error_status_code = load32(p);
		p += ERROR_STATUS_CODE_SIZE;
	}
	*cursor = (size_t)(p - pdu->destinations);
	return 1;
}

int
smpp_pdu_next_destination(const struct smpp_pdu *pdu, size_t *cursor,
    struct smpp_destination *destination)
{
	int unsuccessful = pdu->command_id == SMPP_SUBMIT_MULTI_RESP;

	memset(destination, 0, sizeof(*destination));
	if (pdu->destination_list != NULL) {
		if (*cursor >= pdu->number_of_destinations)
			return 0;
		*destination = pdu->destination_list[(*cursor)++];
		if (unsuccessful)
			destination->dest_flag = SMPP_DEST_FLAG_SME_ADDRESS;
		return 1;
	}
	if (pdu->destinations == NULL || *cursor >= pdu->destinations_length)
		return 0;
	if (!read_raw_destination(pdu, cursor, destination, unsuccessful)) {
		*cursor = pdu->destinations_length;
		return 0;
	}
	return 1;
}

int
smpp_pdu_next_tlv(
    const struct smpp_pdu *pdu, size_t *cursor, struct smpp_tlv *tlv)
{
	const struct smpp_tlv_descriptor *descriptor;
	size_t index;

	if (*cursor < pdu->tlv_bytes_length) {
		if (smpp_tlv_next(
			pdu->tlv_bytes, pdu->tlv_bytes_length, cursor, tlv))
			return 1;
		*cursor = pdu->tlv_bytes_length;
	}
	index = *cursor - pdu->tlv_bytes_length;
	if (pdu->tlvs == NULL || index >= pdu->tlv_count)
		return 0;
	*tlv = pdu->tlvs[index];
	(*cursor)++;
	/* Give a caller's Integer TLV given as bytes its integer too. */
	descriptor = smpp_tlv_describe(tlv->tag);
	if (tlv->value != NULL && descriptor != NULL &&
	    descriptor->type == SMPP_TLV_TYPE_INTEGER) {
		uint16_t i;

		tlv->integer = 0;
		for (i = 0; i < tlv->length && i < 4; i++)
			tlv->integer = tlv->integer << 8 | tlv->value[i];
	}
	return 1;
}

int
smpp_pdu_find_tlv(
    const struct smpp_pdu *pdu, uint16_t tag, struct smpp_tlv *tlv)
{
	size_t cursor = 0;

	while (smpp_pdu_next_tlv(pdu, &cursor, tlv))
		if (tlv->tag == tag)
			return 1;
	return 0;
}

/* NULL and "" encode alike. */
static int
text_equal(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* Octet i of a TLV value, whether given as bytes or as an integer. */
static uint8_t
tlv_octet(const struct smpp_tlv *tlv, uint16_t i)
{
	if (tlv->value != NULL)
		return tlv->value[i];
	if (tlv->length > 4)
		return 0;
	return (uint8_t)(tlv->integer >> (8 * (tlv->length - 1 - i)));
}

static int
tlvs_equal(const struct smpp_pdu *a, const struct smpp_pdu *b)
{
	struct smpp_tlv tlv_a, tlv_b;
	size_t cursor_a = 0, cursor_b = 0;
	uint16_t i;

	for (;;) {
		int more_a = smpp_pdu_next_tlv(a, &cursor_a, &tlv_a);
		int more_b = smpp_pdu_next_tlv(b, &cursor_b, &tlv_b);

		if (more_a != more_b)
			return 0;
		if (!more_a)
			return 1;
		if (tlv_a.tag != tlv_b.tag || tlv_a.length != tlv_b.length)
			return 0;
		for (i = 0; i < tlv_a.length; i++)
			if (tlv_octet(&tlv_a, i) != tlv_octet(&tlv_b, i))
				return 0;
	}
}

static int
destinations_equal(const struct smpp_pdu *a, const struct smpp_pdu *b)
{
	struct smpp_destination da, db;
	size_t cursor_a = 0, cursor_b = 0;

	if (a->number_of_destinations != b->number_of_destinations)
		return 0;
	for (;;) {
		int more_a = smpp_pdu_next_destination(a, &cursor_a, &da);
		int more_b = smpp_pdu_next_destination(b, &cursor_b, &db);

		if (more_a != more_b)
			return 0;
		if (!more_a)
			return 1;
		if (da.dest_flag != db.dest_flag ||
		    da.dest_addr_ton != db.dest_addr_ton ||
		    da.dest_addr_npi != db.dest_addr_npi ||
		    da.error_status_code != db.error_status_code ||
		    !text_equal(da.address, db.address))
			return 0;
	}
}

/* Compares what the command carries; command_length is not compared. */
int
smpp_pdu_equal(const struct smpp_pdu *a, const struct smpp_pdu *b)
{
	const struct command *command;
	unsigned i;

	if (a->command_id != b->command_id ||
	    a->command_status != b->command_status ||
	    a->sequence_number != b->sequence_number)
		return 0;
	command = command_lookup(a->command_id);
	for (i = 0; command != NULL && i < command->field_count; i++) {
		const struct field *field = &command->fields[i];

		switch (field->kind) {
		case FIELD_INTEGER8:
			if (integer8_value(a, field) !=
			    integer8_value(b, field))
				return 0;
			break;
		case FIELD_C_STRING:
		case FIELD_TIME:
			if (!text_equal(
				string_value(a, field), string_value(b, field)))
				return 0;
			break;
		case FIELD_SHORT_MESSAGE:
			if (a->sm_length != b->sm_length ||
			    (a->sm_length > 0 &&
				memcmp(a->short_message, b->short_message,
				    a->sm_length) != 0))
				return 0;
			break;
		default:
			if (!destinations_equal(a, b))
				return 0;
			break;
		}
	}
	return tlvs_equal(a, b);
}
