/*
 * smpp.h - the SMPP 3.4 library: PDU codec, TLVs, character sets, long
 * message splitting and reassembly, delivery receipts and the session state
 * machine. No libevent, no LMDB, no globals: bytes in, PDUs and events out.
 *
 * One header for the whole folder; prototypes are grouped by the file that
 * defines them.
 */
#ifndef SMPP_H
#define SMPP_H

#include <stddef.h>
#include <stdint.h>

#define SMPP_HEADER_LENGTH          16
#define SMPP_DEFAULT_MAX_PDU_LENGTH 65536
#define SMPP_INTERFACE_VERSION      0x34

/* Command ids, SMPP 3.4 section 5.1.2.1. */
enum smpp_command_id {
	SMPP_GENERIC_NACK = 0x80000000,
	SMPP_BIND_RECEIVER = 0x00000001,
	SMPP_BIND_RECEIVER_RESP = 0x80000001,
	SMPP_BIND_TRANSMITTER = 0x00000002,
	SMPP_BIND_TRANSMITTER_RESP = 0x80000002,
	SMPP_QUERY_SM = 0x00000003,
	SMPP_QUERY_SM_RESP = 0x80000003,
	SMPP_SUBMIT_SM = 0x00000004,
	SMPP_SUBMIT_SM_RESP = 0x80000004,
	SMPP_DELIVER_SM = 0x00000005,
	SMPP_DELIVER_SM_RESP = 0x80000005,
	SMPP_UNBIND = 0x00000006,
	SMPP_UNBIND_RESP = 0x80000006,
	SMPP_REPLACE_SM = 0x00000007,
	SMPP_REPLACE_SM_RESP = 0x80000007,
	SMPP_CANCEL_SM = 0x00000008,
	SMPP_CANCEL_SM_RESP = 0x80000008,
	SMPP_BIND_TRANSCEIVER = 0x00000009,
	SMPP_BIND_TRANSCEIVER_RESP = 0x80000009,
	SMPP_OUTBIND = 0x0000000B,
	SMPP_ENQUIRE_LINK = 0x00000015,
	SMPP_ENQUIRE_LINK_RESP = 0x80000015,
	SMPP_SUBMIT_MULTI = 0x00000021,
	SMPP_SUBMIT_MULTI_RESP = 0x80000021,
	SMPP_ALERT_NOTIFICATION = 0x00000102,
	SMPP_DATA_SM = 0x00000103,
	SMPP_DATA_SM_RESP = 0x80000103,
};

#define SMPP_RESPONSE_BIT 0x80000000u

/* Command status values, SMPP 3.4 section 5.1.3. */
enum smpp_status {
	SMPP_ESME_ROK = 0x00000000,
	SMPP_ESME_RINVMSGLEN = 0x00000001,
	SMPP_ESME_RINVCMDLEN = 0x00000002,
	SMPP_ESME_RINVCMDID = 0x00000003,
	SMPP_ESME_RINVBNDSTS = 0x00000004,
	SMPP_ESME_RALYBND = 0x00000005,
	SMPP_ESME_RINVPRTFLG = 0x00000006,
	SMPP_ESME_RINVREGDLVFLG = 0x00000007,
	SMPP_ESME_RSYSERR = 0x00000008,
	SMPP_ESME_RINVSRCADR = 0x0000000A,
	SMPP_ESME_RINVDSTADR = 0x0000000B,
	SMPP_ESME_RINVMSGID = 0x0000000C,
	SMPP_ESME_RBINDFAIL = 0x0000000D,
	SMPP_ESME_RINVPASWD = 0x0000000E,
	SMPP_ESME_RINVSYSID = 0x0000000F,
	SMPP_ESME_RCANCELFAIL = 0x00000011,
	SMPP_ESME_RREPLACEFAIL = 0x00000013,
	SMPP_ESME_RMSGQFUL = 0x00000014,
	SMPP_ESME_RINVSERTYP = 0x00000015,
	SMPP_ESME_RINVNUMDESTS = 0x00000033,
	SMPP_ESME_RINVDLNAME = 0x00000034,
	SMPP_ESME_RINVDESTFLAG = 0x00000040,
	SMPP_ESME_RINVSUBREP = 0x00000042,
	SMPP_ESME_RINVESMCLASS = 0x00000043,
	SMPP_ESME_RCNTSUBDL = 0x00000044,
	SMPP_ESME_RSUBMITFAIL = 0x00000045,
	SMPP_ESME_RINVSRCTON = 0x00000048,
	SMPP_ESME_RINVSRCNPI = 0x00000049,
	SMPP_ESME_RINVDSTTON = 0x00000050,
	SMPP_ESME_RINVDSTNPI = 0x00000051,
	SMPP_ESME_RINVSYSTYP = 0x00000053,
	SMPP_ESME_RINVREPFLAG = 0x00000054,
	SMPP_ESME_RINVNUMMSGS = 0x00000055,
	SMPP_ESME_RTHROTTLED = 0x00000058,
	SMPP_ESME_RINVSCHED = 0x00000061,
	SMPP_ESME_RINVEXPIRY = 0x00000062,
	SMPP_ESME_RINVDFTMSGID = 0x00000063,
	SMPP_ESME_RX_T_APPN = 0x00000064,
	SMPP_ESME_RX_P_APPN = 0x00000065,
	SMPP_ESME_RX_R_APPN = 0x00000066,
	SMPP_ESME_RQUERYFAIL = 0x00000067,
	SMPP_ESME_RINVOPTPARSTREAM = 0x000000C0,
	SMPP_ESME_ROPTPARNOTALLWD = 0x000000C1,
	SMPP_ESME_RINVPARLEN = 0x000000C2,
	SMPP_ESME_RMISSINGOPTPARAM = 0x000000C3,
	SMPP_ESME_RINVOPTPARAMVAL = 0x000000C4,
	SMPP_ESME_RDELIVERYFAILURE = 0x000000FE,
	SMPP_ESME_RUNKNOWNERR = 0x000000FF,
};

/* data_coding values the library converts, SMPP 3.4 section 5.2.19. */
enum smpp_data_coding {
	SMPP_CODING_DEFAULT = 0x00, /* SMSC default: GSM 03.38 */
	SMPP_CODING_IA5 = 0x01,
	SMPP_CODING_BINARY_8BIT = 0x02,
	SMPP_CODING_LATIN1 = 0x03,
	SMPP_CODING_BINARY = 0x04,
	SMPP_CODING_UCS2 = 0x08,
};

/* esm_class bits, SMPP 3.4 section 5.2.12. */
#define SMPP_ESM_CLASS_MODE_MASK        0x03
#define SMPP_ESM_CLASS_TYPE_MASK        0x3C
#define SMPP_ESM_CLASS_DELIVERY_RECEIPT 0x04
#define SMPP_ESM_CLASS_UDHI             0x40
#define SMPP_ESM_CLASS_REPLY_PATH       0x80

/* ===== PDU codec: smpp_pdu.c, smpp_tlv.c, smpp_status.c ===== */

/*
 * Zero-copy PDU codec. smpp_pdu_frame() looks at the first bytes of a
 * stream and says whether a whole PDU is there; smpp_pdu_decode() turns one
 * framed PDU into a struct smpp_pdu whose strings and byte ranges point into
 * the caller's buffer (C-Octet strings are NUL-terminated there, since their
 * terminator is part of the wire format): the decoded PDU is valid as long as
 * that buffer is, and decoding never allocates or copies. Decoding returns
 * the command_status the caller should answer with (SMPP_ESME_ROK when the
 * PDU is sound), and fills the header even on error so a response can carry
 * the sequence number.
 *
 * One flat struct serves every command: fields a command lacks stay zero.
 * A NULL string encodes as the empty string, except that a response whose
 * first string (system_id, message_id) is NULL and that carries no TLV
 * encodes as a bare header, as SMPP allows after an error; decoding such a
 * response gives a NULL there.
 *
 * Lists (submit_multi destinations, submit_multi_resp unsuccess_sme entries)
 * and TLVs exist twice: as the raw bytes of a decoded PDU (validated, walked
 * with smpp_pdu_next_destination() / smpp_pdu_next_tlv(), re-encoded byte for
 * byte, unknown TLVs included, in order) and as caller arrays for encoding
 * (destination_list, tlvs). The encoder writes the raw TLV bytes first, then
 * the array.
 */

#define SMPP_MAX_SHORT_MESSAGE_LENGTH 254
#define SMPP_MAX_DESTINATIONS         254

/* submit_multi dest_flag, SMPP 3.4 section 5.2.25. */
#define SMPP_DEST_FLAG_SME_ADDRESS       1
#define SMPP_DEST_FLAG_DISTRIBUTION_LIST 2

/* Optional parameter tags, SMPP 3.4 section 5.3.2. */
enum smpp_tlv_tag {
	SMPP_TLV_DEST_ADDR_SUBUNIT = 0x0005,
	SMPP_TLV_DEST_NETWORK_TYPE = 0x0006,
	SMPP_TLV_DEST_BEARER_TYPE = 0x0007,
	SMPP_TLV_DEST_TELEMATICS_ID = 0x0008,
	SMPP_TLV_SOURCE_ADDR_SUBUNIT = 0x000D,
	SMPP_TLV_SOURCE_NETWORK_TYPE = 0x000E,
	SMPP_TLV_SOURCE_BEARER_TYPE = 0x000F,
	SMPP_TLV_SOURCE_TELEMATICS_ID = 0x0010,
	SMPP_TLV_QOS_TIME_TO_LIVE = 0x0017,
	SMPP_TLV_PAYLOAD_TYPE = 0x0019,
	SMPP_TLV_ADDITIONAL_STATUS_INFO_TEXT = 0x001D,
	SMPP_TLV_RECEIPTED_MESSAGE_ID = 0x001E,
	SMPP_TLV_MS_MSG_WAIT_FACILITIES = 0x0030,
	SMPP_TLV_PRIVACY_INDICATOR = 0x0201,
	SMPP_TLV_SOURCE_SUBADDRESS = 0x0202,
	SMPP_TLV_DEST_SUBADDRESS = 0x0203,
	SMPP_TLV_USER_MESSAGE_REFERENCE = 0x0204,
	SMPP_TLV_USER_RESPONSE_CODE = 0x0205,
	SMPP_TLV_SOURCE_PORT = 0x020A,
	SMPP_TLV_DESTINATION_PORT = 0x020B,
	SMPP_TLV_SAR_MSG_REF_NUM = 0x020C,
	SMPP_TLV_LANGUAGE_INDICATOR = 0x020D,
	SMPP_TLV_SAR_TOTAL_SEGMENTS = 0x020E,
	SMPP_TLV_SAR_SEGMENT_SEQNUM = 0x020F,
	SMPP_TLV_SC_INTERFACE_VERSION = 0x0210,
	SMPP_TLV_CALLBACK_NUM_PRES_IND = 0x0302,
	SMPP_TLV_CALLBACK_NUM_ATAG = 0x0303,
	SMPP_TLV_NUMBER_OF_MESSAGES = 0x0304,
	SMPP_TLV_CALLBACK_NUM = 0x0381,
	SMPP_TLV_DPF_RESULT = 0x0420,
	SMPP_TLV_SET_DPF = 0x0421,
	SMPP_TLV_MS_AVAILABILITY_STATUS = 0x0422,
	SMPP_TLV_NETWORK_ERROR_CODE = 0x0423,
	SMPP_TLV_MESSAGE_PAYLOAD = 0x0424,
	SMPP_TLV_DELIVERY_FAILURE_REASON = 0x0425,
	SMPP_TLV_MORE_MESSAGES_TO_SEND = 0x0426,
	SMPP_TLV_MESSAGE_STATE = 0x0427,
	SMPP_TLV_USSD_SERVICE_OP = 0x0501,
	SMPP_TLV_DISPLAY_TIME = 0x1201,
	SMPP_TLV_SMS_SIGNAL = 0x1203,
	SMPP_TLV_MS_VALIDITY = 0x1204,
	SMPP_TLV_ALERT_ON_MESSAGE_DELIVERY = 0x130C,
	SMPP_TLV_ITS_REPLY_TYPE = 0x1380,
	SMPP_TLV_ITS_SESSION_INFO = 0x1383,
};

/* How a known TLV's value is typed. */
enum smpp_tlv_type {
	SMPP_TLV_TYPE_INTEGER = 1, /* big-endian, 1, 2 or 4 octets */
	SMPP_TLV_TYPE_C_STRING,    /* text; the NUL is usually sent */
	SMPP_TLV_TYPE_OCTETS,      /* opaque octets */
	SMPP_TLV_TYPE_NO_VALUE,    /* presence is the information */
};

/* One row of the TLV table: tag -> name, type, length bounds. */
struct smpp_tlv_descriptor {
	uint16_t tag;
	uint8_t type; /* enum smpp_tlv_type */
	uint16_t min_length;
	uint16_t max_length;
	const char *name; /* "receipted_message_id" */
};

/*
 * One TLV. Decoded: value points into the PDU and integer holds the value
 * of an Integer TLV. To encode: value (length octets) is written when set,
 * otherwise integer, big-endian on length octets.
 */
struct smpp_tlv {
	uint16_t tag;
	uint16_t length;
	uint32_t integer;
	const uint8_t *value;
};

/*
 * One submit_multi dest_address (SME address or distribution list name) or
 * one submit_multi_resp unsuccess_sme (dest_flag is then SME address).
 */
struct smpp_destination {
	uint8_t dest_flag; /* SMPP_DEST_FLAG_* */
	uint8_t dest_addr_ton;
	uint8_t dest_addr_npi;
	const char *address;        /* destination_addr, dl_name */
	uint32_t error_status_code; /* unsuccess_sme only */
};

/* Every SMPP 3.4 PDU; each command uses the fields its section names. */
struct smpp_pdu {
	uint32_t command_length; /* set by decode only */
	uint32_t command_id;
	uint32_t command_status;
	uint32_t sequence_number;

	/* bind_*, outbind, bind_*_resp */
	const char *system_id;
	const char *password;
	const char *system_type;
	uint8_t interface_version;
	uint8_t addr_ton;
	uint8_t addr_npi;
	const char *address_range;

	/* messages and their responses */
	const char *service_type;
	const char *message_id;
	uint8_t source_addr_ton;
	uint8_t source_addr_npi;
	uint8_t dest_addr_ton;
	uint8_t dest_addr_npi;
	const char *source_addr;
	const char *destination_addr;
	uint8_t esm_class;
	uint8_t protocol_id;
	uint8_t priority_flag;
	uint8_t registered_delivery;
	uint8_t replace_if_present_flag;
	uint8_t data_coding;
	uint8_t sm_default_msg_id;
	uint8_t sm_length;
	const char *schedule_delivery_time;
	const char *validity_period;
	const uint8_t *short_message; /* sm_length octets */

	/* query_sm_resp */
	const char *final_date;
	uint8_t message_state;
	uint8_t error_code;

	/* alert_notification */
	uint8_t esme_addr_ton;
	uint8_t esme_addr_npi;
	const char *esme_addr;

	/* submit_multi number_of_dests, submit_multi_resp no_unsuccess */
	uint8_t number_of_destinations;
	const uint8_t *destinations; /* decoded: raw list */
	size_t destinations_length;
	const struct smpp_destination *destination_list; /* to encode */

	/* optional parameters */
	const uint8_t *tlv_bytes; /* decoded: raw TLVs */
	size_t tlv_bytes_length;
	const struct smpp_tlv *tlvs; /* to encode, after */
	size_t tlv_count;
};

/* What smpp_pdu_frame() found at the head of a stream. */
enum smpp_frame_result {
	SMPP_FRAME_NEED_MORE = 0, /* read more bytes, then call again */
	SMPP_FRAME_COMPLETE,      /* a whole PDU of *pdu_length bytes */
	SMPP_FRAME_INVALID,       /* command_length refused: RINVCMDLEN */
};

/* Encoder errors (negative returns of smpp_pdu_encode*, smpp_tlv_encode). */
enum smpp_pdu_encode_error {
	SMPP_PDU_ENCODE_NO_SPACE = -1,       /* capacity too small */
	SMPP_PDU_ENCODE_FIELD_TOO_LONG = -2, /* string or message too long */
	SMPP_PDU_ENCODE_INVALID_FIELD = -3,  /* time, dest_flag, count... */
	SMPP_PDU_ENCODE_INVALID_TLV = -4,    /* length wrong for the tag */
	SMPP_PDU_ENCODE_UNKNOWN_COMMAND = -5,
};

/* Whether a status calls for a retry later (retry decisions). */
enum smpp_status_class {
	SMPP_STATUS_CLASS_OK = 0,
	SMPP_STATUS_CLASS_TEMPORARY,
	SMPP_STATUS_CLASS_PERMANENT,
};

/* smpp_pdu.c */
/*
 * Framing, before any body is read: command_length below 16 or above
 * max_pdu_length (0: SMPP_DEFAULT_MAX_PDU_LENGTH) is INVALID as soon as its
 * 4 octets are there; *pdu_length gets command_length in every case.
 */
enum smpp_frame_result smpp_pdu_frame(const uint8_t *data, size_t available,
    uint32_t max_pdu_length, uint32_t *pdu_length);
/* Reads the 16-octet header alone; -1 if fewer bytes. */
int smpp_pdu_decode_header(
    const uint8_t *data, size_t length, struct smpp_pdu *pdu);
/* Decodes one framed PDU; returns SMPP_ESME_ROK or the status to answer. */
uint32_t smpp_pdu_decode(
    const uint8_t *data, size_t length, struct smpp_pdu *pdu);
/* Encodes; returns the PDU length or an enum smpp_pdu_encode_error. */
int smpp_pdu_encode(const struct smpp_pdu *pdu, uint8_t *out, size_t capacity);
int smpp_pdu_encode_header_only(uint8_t *out, size_t capacity,
    uint32_t command_id, uint32_t command_status, uint32_t sequence_number);
int smpp_pdu_encode_generic_nack(uint8_t *out, size_t capacity,
    uint32_t sequence_number, uint32_t command_status);
int smpp_pdu_encode_enquire_link(
    uint8_t *out, size_t capacity, uint32_t sequence_number);
int smpp_pdu_encode_enquire_link_resp(
    uint8_t *out, size_t capacity, uint32_t sequence_number);
int smpp_pdu_encode_unbind(
    uint8_t *out, size_t capacity, uint32_t sequence_number);
int smpp_pdu_encode_unbind_resp(uint8_t *out, size_t capacity,
    uint32_t sequence_number, uint32_t command_status);
/* message_id NULL (or a non-zero status) sends no body. */
int smpp_pdu_encode_submit_sm_resp(uint8_t *out, size_t capacity,
    uint32_t sequence_number, uint32_t command_status, const char *message_id);
int smpp_pdu_encode_deliver_sm_resp(uint8_t *out, size_t capacity,
    uint32_t sequence_number, uint32_t command_status);
const char *smpp_pdu_encode_error_name(int error);
/* 1 if the codec knows command_id (request or response). */
int smpp_pdu_is_known_command(uint32_t command_id);
/* The response to a request: its _resp, or generic_nack when unknown. */
uint32_t smpp_pdu_response_id(uint32_t command_id);
/* Walks destinations (raw or destination_list); 1 per entry, 0 at end. */
int smpp_pdu_next_destination(const struct smpp_pdu *pdu, size_t *cursor,
    struct smpp_destination *destination);
/* Walks the TLVs (raw, then tlvs); 1 per TLV, 0 at end. */
int smpp_pdu_next_tlv(
    const struct smpp_pdu *pdu, size_t *cursor, struct smpp_tlv *tlv);
/* Finds the first TLV with tag; 1 if found. */
int smpp_pdu_find_tlv(
    const struct smpp_pdu *pdu, uint16_t tag, struct smpp_tlv *tlv);
/* 1 if two PDUs carry the same header, fields, destinations and TLVs. */
int smpp_pdu_equal(const struct smpp_pdu *a, const struct smpp_pdu *b);

/* smpp_tlv.c */
/* The table row for a tag, NULL for one SMPP 3.4 does not define. */
const struct smpp_tlv_descriptor *smpp_tlv_describe(uint16_t tag);
/* "message_payload"; "unknown" for tags outside the table. */
const char *smpp_tlv_name(uint16_t tag);
/* SMPP_ESME_ROK or SMPP_ESME_RINVPARLEN for a value length of a tag. */
uint32_t smpp_tlv_check_length(uint16_t tag, size_t length);
/*
 * Validates a TLV stream: headers whole (RINVOPTPARSTREAM), values inside
 * (RINVOPTPARSTREAM), lengths per tag (RINVPARLEN), sar_* all or none
 * (RMISSINGOPTPARAM) and coherent (RINVOPTPARAMVAL).
 */
uint32_t smpp_tlv_validate(const uint8_t *stream, size_t length);
/* Steps through a validated stream from *offset; 1 per TLV, 0 at end. */
int smpp_tlv_next(
    const uint8_t *stream, size_t length, size_t *offset, struct smpp_tlv *tlv);
/* Writes one TLV; returns octets written or an smpp_pdu_encode_error. */
int smpp_tlv_encode(const struct smpp_tlv *tlv, uint8_t *out, size_t capacity);
/* An Integer TLV sized by the table (4 octets for an unknown tag). */
struct smpp_tlv smpp_tlv_integer(uint16_t tag, uint32_t value);
struct smpp_tlv smpp_tlv_octets(
    uint16_t tag, const void *value, uint16_t length);
/* A C-Octet string TLV, terminating NUL included. */
struct smpp_tlv smpp_tlv_c_string(uint16_t tag, const char *text);
/* Length of a text TLV's value up to its first NUL. */
size_t smpp_tlv_text_length(const struct smpp_tlv *tlv);

/* smpp_status.c */
const char *smpp_status_name(uint32_t status);     /* "ESME_RTHROTTLED" */
const char *smpp_status_describe(uint32_t status); /* "Throttling error" */
enum smpp_status_class smpp_status_classify(uint32_t status);
/* 1 if a message refused with status is worth retrying later. */
int smpp_status_is_temporary(uint32_t status);
const char *smpp_command_name(uint32_t command_id); /* "submit_sm" */

/* ===== Character sets: smpp_charset.c ===== */

/*
 * Conversions between UTF-8 and the codings a short message travels in:
 * GSM 03.38 default alphabet with its extension table (unpacked: one septet
 * per octet; packed: 7 bits each, with fill bits after a UDH), Latin-1, IA5
 * and UCS-2 (UTF-16BE, surrogate pairs included). All bounded, no allocation.
 *
 * Encoders (UTF-8 in) are strict: malformed UTF-8 (overlong forms, encoded
 * surrogates, truncated sequences, > U+10FFFF) is SMPP_CHARSET_ERR_UTF8 and a
 * character the coding lacks is SMPP_CHARSET_ERR_UNREPRESENTABLE; nothing is
 * substituted. Decoders (network bytes in) never fail on content: a byte or
 * unit that is not valid in the coding becomes U+FFFD, an unknown GSM
 * extension shows its default-alphabet character, escape-escape shows a space
 * (23.038), a lone escape at the end is dropped.
 */
enum smpp_charset_status {
	SMPP_CHARSET_OK = 0,
	SMPP_CHARSET_ERR_UTF8 = -1, /* input is not valid UTF-8 */
	SMPP_CHARSET_ERR_UNREPRESENTABLE =
	    -2,                         /* a character the coding lacks */
	SMPP_CHARSET_ERR_SPACE = -3,    /* output capacity too small */
	SMPP_CHARSET_ERR_ARGUMENT = -4, /* unsupported coding, bad bits */
};

#define SMPP_GSM_ESCAPE          0x1B
#define SMPP_UNICODE_REPLACEMENT 0xFFFD

/* Single-part limits, in each coding's units (140 octets on the air). */
#define SMPP_SMS_OCTETS      140
#define SMPP_SMS_GSM_SEPTETS 160
#define SMPP_SMS_UCS2_UNITS  70

/* smpp_charset_choose() flags. */
#define SMPP_CHARSET_ALLOW_LATIN1 0x01 /* consider data_coding 3 */

/* What smpp_charset_choose() found for a text. */
struct smpp_charset_choice {
	enum smpp_data_coding coding; /* DEFAULT (GSM), LATIN1 or UCS2 */
	size_t characters;            /* Unicode code points */
	size_t units;                 /* septets, octets or UTF-16 units */
	size_t parts;                 /* SMS parts needed, >= 1 */
};

/* Decodes one code point at *offset, advancing it; strict UTF-8. */
int smpp_charset_utf8_next(
    const char *utf8, size_t length, size_t *offset, uint32_t *codepoint);

/*
 * Picks the cheapest coding for a UTF-8 text: the one needing the fewest
 * parts, GSM before Latin-1 before UCS-2 on a tie; UCS-2 whenever a
 * character is outside the others. Parts are counted exactly as
 * smpp_split_text() cuts them, each part of a long message carrying a UDH of
 * udh_length octets (6: 8-bit reference, 7: 16-bit reference).
 */
int smpp_charset_choose(const char *utf8, size_t length, unsigned flags,
    size_t udh_length, struct smpp_charset_choice *choice);

/*
 * Encodes whole characters of utf8 from *offset into out (GSM unpacked,
 * Latin-1, IA5 or UCS-2) while they fit in unit_limit units (septets,
 * octets, UTF-16 units) and capacity octets; never splits an escape pair or
 * a surrogate pair. Advances *offset past what was encoded.
 */
int smpp_charset_encode_prefix(enum smpp_data_coding coding, const char *utf8,
    size_t length, size_t *offset, size_t unit_limit, uint8_t *out,
    size_t capacity, size_t *out_length);

/* Encodes a whole UTF-8 text; GSM output is unpacked septets. */
int smpp_charset_encode(enum smpp_data_coding coding, const char *utf8,
    size_t length, uint8_t *out, size_t capacity, size_t *out_length);

/* Decodes bytes in a coding (GSM unpacked) to UTF-8; see above. */
int smpp_charset_decode(enum smpp_data_coding coding, const uint8_t *in,
    size_t length, char *utf8, size_t capacity, size_t *utf8_length);

/*
 * Maps any data_coding octet (SMPP values and the GSM 03.38 coding groups)
 * to the alphabet it carries: DEFAULT, IA5, LATIN1, UCS2 or BINARY_8BIT.
 */
enum smpp_data_coding smpp_charset_alphabet(uint8_t data_coding);

/* Octets needed to pack septet_count septets after fill_bits (0..6). */
size_t smpp_charset_gsm_packed_length(size_t septet_count, unsigned fill_bits);

/* Packs septets 7 bits each, LSB first, after fill_bits zero bits. */
int smpp_charset_gsm_pack(const uint8_t *septets, size_t septet_count,
    unsigned fill_bits, uint8_t *out, size_t capacity, size_t *out_length);

/* Unpacks septet_count septets that start after fill_bits bits. */
int smpp_charset_gsm_unpack(const uint8_t *packed, size_t packed_length,
    unsigned fill_bits, size_t septet_count, uint8_t *septets, size_t capacity);

/* ===== UDH, splitting and reassembly: smpp_udh.c, smpp_split.c, smpp_reassembly.c ===== */

/* User data header information elements, 3GPP TS 23.040 section 9.2.3.24. */
#define SMPP_UDH_IE_CONCAT_8BIT  0x00
#define SMPP_UDH_IE_PORT_8BIT    0x04
#define SMPP_UDH_IE_PORT_16BIT   0x05
#define SMPP_UDH_IE_CONCAT_16BIT 0x08

/* Whole UDH (length octet included) of a concatenated part. */
#define SMPP_UDH_CONCAT_8BIT_LENGTH  6
#define SMPP_UDH_CONCAT_16BIT_LENGTH 7
#define SMPP_UDH_MAX_ELEMENTS        16

enum smpp_udh_status {
	SMPP_UDH_OK = 0,
	SMPP_UDH_ERR_TRUNCATED = -1, /* header longer than the data */
	SMPP_UDH_ERR_MALFORMED = -2, /* an element overruns the header */
};

struct smpp_udh_element {
	uint8_t id;
	uint8_t length;
	const uint8_t *data; /* points into the parsed bytes */
};

/*
 * A parsed UDH. Concatenation and port elements with a wrong length or
 * impossible values (total 0, sequence 0 or above total) are ignored, as
 * 23.040 asks; when one repeats, the last occurrence counts.
 */
struct smpp_udh {
	size_t header_length; /* octets, length octet included */
	size_t element_count; /* stored in element[] */
	size_t elements_seen; /* may exceed element_count */
	struct smpp_udh_element element[SMPP_UDH_MAX_ELEMENTS];
	int has_concat;
	unsigned concat_reference_bits; /* 8 or 16 */
	uint16_t concat_reference;
	uint8_t concat_total;
	uint8_t concat_seqnum;
	int has_ports;
	unsigned port_bits; /* 8 or 16 */
	uint16_t destination_port;
	uint16_t source_port;
};

/* Parses the UDH that leads user_data (short_message with UDHI set). */
int smpp_udh_parse(
    const uint8_t *user_data, size_t length, struct smpp_udh *udh);

/* Writes a concatenation UDH (8 or 16 reference bits); returns octets or 0. */
size_t smpp_udh_write_concat(uint8_t *out, size_t capacity,
    unsigned reference_bits, uint16_t reference, uint8_t total, uint8_t seqnum);

/* Fill bits that align GSM septets after a UDH of header_length octets. */
unsigned smpp_udh_fill_bits(size_t header_length);

/* How the parts of a long message are tied together. */
enum smpp_concat {
	SMPP_CONCAT_UDH_8BIT = 0, /* UDH element 0x00, 6-octet UDH */
	SMPP_CONCAT_UDH_16BIT,    /* UDH element 0x08, 7-octet UDH */
	SMPP_CONCAT_SAR,          /* sar_* TLVs, no UDH (sized as 8-bit) */
	SMPP_CONCAT_PAYLOAD,      /* one message_payload, never split */
};

enum smpp_split_status {
	SMPP_SPLIT_OK = 0,
	SMPP_SPLIT_ERR_UTF8 = SMPP_CHARSET_ERR_UTF8,
	SMPP_SPLIT_ERR_UNREPRESENTABLE = SMPP_CHARSET_ERR_UNREPRESENTABLE,
	SMPP_SPLIT_ERR_SPACE = SMPP_CHARSET_ERR_SPACE,
	SMPP_SPLIT_ERR_ARGUMENT = SMPP_CHARSET_ERR_ARGUMENT,
	SMPP_SPLIT_ERR_TOO_MANY_PARTS = -5, /* above max_parts or 255 */
};

#define SMPP_SPLIT_MAX_PARTS 255
/* Largest part: 7-octet UDH + 153 unpacked septets, or 160 septets alone. */
#define SMPP_SPLIT_PART_MAX_OCTETS 160
#define SMPP_MESSAGE_PAYLOAD_MAX   65535

/* smpp_split_options.flags */
#define SMPP_SPLIT_CHOOSE_CODING 0x01 /* ignore .coding, choose */
#define SMPP_SPLIT_ALLOW_LATIN1  0x02 /* the chooser may pick Latin-1 */
/* Pack GSM septets (fill bits after a UDH; 7 spare end bits carry a CR). */
#define SMPP_SPLIT_GSM_PACKED 0x04

struct smpp_split_options {
	enum smpp_data_coding coding; /* DEFAULT, IA5, LATIN1 or UCS2 */
	enum smpp_concat concat;
	uint16_t reference; /* low 8 bits for 8-bit UDH */
	unsigned flags;
};

/*
 * One part, ready for a submit_sm: short_message (or message_payload)
 * bytes, the esm_class bits to OR in, and, with SAR, the three TLV values
 * (sar_total_segments is 0 when the message is not split).
 */
struct smpp_split_part {
	const uint8_t *short_message; /* inside the caller's buffer */
	size_t length;
	uint8_t esm_class; /* SMPP_ESM_CLASS_UDHI or 0 */
	uint16_t sar_msg_ref_num;
	uint8_t sar_total_segments;
	uint8_t sar_segment_seqnum;
};

/*
 * Caller-owned storage for a split, and what was written there. A buffer
 * of max_parts * SMPP_SPLIT_PART_MAX_OCTETS always suffices (unpacked
 * septets are encoded before packing); for SMPP_CONCAT_PAYLOAD, the
 * encoded length (GSM: up to 2 octets a character, UCS-2: up to 4).
 */
struct smpp_split {
	struct smpp_split_part *parts; /* in: array of max_parts */
	size_t max_parts;
	uint8_t *buffer; /* in: storage for the bytes */
	size_t capacity;
	size_t count;                 /* out: parts written */
	size_t used;                  /* out: buffer octets used */
	enum smpp_data_coding coding; /* out: data_coding to send */
};

/*
 * Encodes a UTF-8 text and cuts it into parts; a text that fits one SMS
 * gets one part without UDH or SAR values.
 */
int smpp_split_text(const char *utf8, size_t length,
    const struct smpp_split_options *options, struct smpp_split *split);

/*
 * Cuts binary data, 140 / 134 / 133 octets a part; split->coding keeps a
 * binary options->coding (0x02, 0x04, 0xF5...), else becomes 0x02.
 */
int smpp_split_binary(const uint8_t *data, size_t length,
    const struct smpp_split_options *options, struct smpp_split *split);

/*
 * Reassembly of long MO messages, parts in any order and interleaved across
 * senders, keyed by source, destination, reference and total. The caller
 * owns the struct, passes the clock (monotonic microseconds) and receives
 * every message exactly once through its deliver callback: complete, timed
 * out (from the first part), evicted (a bound was reached) or flushed. The
 * callback must not call back into the same reassembly.
 */
#define SMPP_REASSEMBLY_ADDRESS_MAX 65

enum smpp_reassembly_status {
	SMPP_REASSEMBLY_STORED = 0,         /* part kept, message pending */
	SMPP_REASSEMBLY_COMPLETED = 1,      /* delivered as complete */
	SMPP_REASSEMBLY_DUPLICATE = 2,      /* part already held: ignored */
	SMPP_REASSEMBLY_ERR_INVALID = -1,   /* seqnum/total/address bad */
	SMPP_REASSEMBLY_ERR_TOO_LARGE = -2, /* part alone exceeds max_bytes */
	SMPP_REASSEMBLY_ERR_NO_MEMORY = -3,
};

enum smpp_reassembly_reason {
	SMPP_REASSEMBLY_COMPLETE = 0,
	SMPP_REASSEMBLY_TIMED_OUT,
	SMPP_REASSEMBLY_EVICTED,
	SMPP_REASSEMBLY_FLUSHED,
};

struct smpp_reassembly_limits {
	size_t max_messages; /* pending messages, >= 1 */
	size_t max_bytes;    /* payload + bookkeeping held */
	uint64_t timeout_us; /* from a message's first part */
};

/* One received part; payload is what follows the UDH (or the SAR body). */
struct smpp_reassembly_part {
	const char *source;
	const char *destination;
	uint16_t reference;
	uint8_t total;
	uint8_t seqnum;
	uint8_t data_coding;
	const uint8_t *payload;
	size_t length;
};

/* A message handed to the callback; valid only during the call. */
struct smpp_reassembly_message {
	enum smpp_reassembly_reason reason;
	const char *source;
	const char *destination;
	uint16_t reference;
	uint8_t total;
	uint8_t received;    /* parts present */
	uint8_t data_coding; /* of the first part received */
	uint8_t present[32]; /* bit (seqnum - 1) set if held */
	uint64_t first_seen_us;
	const uint8_t *payload; /* present parts, in order */
	size_t length;
};

struct smpp_reassembly_stats {
	size_t pending;
	size_t bytes;
	uint64_t completed;
	uint64_t timed_out;
	uint64_t evicted;
	uint64_t duplicates;
};

typedef void smpp_reassembly_deliver_fn(
    void *arg, const struct smpp_reassembly_message *message);

struct smpp_reassembly;

/* Creates an empty reassembly; NULL on bad limits or no memory. */
struct smpp_reassembly *smpp_reassembly_new(
    const struct smpp_reassembly_limits *limits,
    smpp_reassembly_deliver_fn *deliver, void *arg);

/* Drops everything still pending (call _flush first to see it). */
void smpp_reassembly_free(struct smpp_reassembly *reassembly);

/* Adds one part (after expiring what is due at now_us). */
int smpp_reassembly_add(struct smpp_reassembly *reassembly,
    const struct smpp_reassembly_part *part, uint64_t now_us);

/* Delivers as timed out every message due at now_us; returns how many. */
size_t smpp_reassembly_expire(
    struct smpp_reassembly *reassembly, uint64_t now_us);

/* Delivers every pending message as flushed; returns how many. */
size_t smpp_reassembly_flush(struct smpp_reassembly *reassembly);

/* Sets *deadline_us to the earliest timeout and returns 1; 0 if none. */
int smpp_reassembly_next_deadline(
    const struct smpp_reassembly *reassembly, uint64_t *deadline_us);

void smpp_reassembly_get_stats(const struct smpp_reassembly *reassembly,
    struct smpp_reassembly_stats *stats);

/* ===== Delivery receipts: smpp_receipt.c ===== */

/* message_state TLV values, SMPP 3.4 section 5.3.2.35. */
enum smpp_message_state {
	SMPP_MESSAGE_STATE_NONE = 0, /* absent */
	SMPP_MESSAGE_STATE_ENROUTE = 1,
	SMPP_MESSAGE_STATE_DELIVERED = 2,
	SMPP_MESSAGE_STATE_EXPIRED = 3,
	SMPP_MESSAGE_STATE_DELETED = 4,
	SMPP_MESSAGE_STATE_UNDELIVERABLE = 5,
	SMPP_MESSAGE_STATE_ACCEPTED = 6,
	SMPP_MESSAGE_STATE_UNKNOWN = 7,
	SMPP_MESSAGE_STATE_REJECTED = 8,
};

/* Bits of struct smpp_receipt.fields: which values the receipt carries. */
#define SMPP_RECEIPT_ID          0x0001
#define SMPP_RECEIPT_SUBMITTED   0x0002 /* "sub:" parsed */
#define SMPP_RECEIPT_DELIVERED   0x0004 /* "dlvrd:" parsed */
#define SMPP_RECEIPT_SUBMIT_DATE 0x0008 /* raw submit_date present */
#define SMPP_RECEIPT_SUBMIT_TIME 0x0010 /* submit_time is valid */
#define SMPP_RECEIPT_DONE_DATE   0x0020 /* raw done_date present */
#define SMPP_RECEIPT_DONE_TIME   0x0040 /* done_time is valid */
#define SMPP_RECEIPT_STAT        0x0080 /* state (and raw stat) set */
#define SMPP_RECEIPT_ERR         0x0100 /* raw err present */
#define SMPP_RECEIPT_ERROR_CODE  0x0200 /* error_code is valid */
#define SMPP_RECEIPT_TEXT        0x0400

#define SMPP_RECEIPT_ID_SIZE     65  /* 64 characters and a NUL */
#define SMPP_RECEIPT_DATE_SIZE   15  /* up to YYYYMMDDhhmmss + NUL */
#define SMPP_RECEIPT_WORD_SIZE   16  /* raw stat and err, for logs */
#define SMPP_RECEIPT_TEXT_LENGTH 20  /* Appendix B: first 20 octets */
#define SMPP_RECEIPT_MAX_LENGTH  256 /* room for any formatted one */

/*
 * A delivery receipt, SMPP 3.4 Appendix B. Strings are NUL-terminated; raw
 * words longer than their buffer are cut (they are only for logs). text
 * points into the buffer that was parsed and is not NUL-terminated.
 */
struct smpp_receipt {
	unsigned int fields;
	char id[SMPP_RECEIPT_ID_SIZE];
	uint32_t submitted;  /* sub: messages submitted */
	uint32_t delivered;  /* dlvrd: messages delivered */
	int64_t submit_time; /* UTC epoch seconds */
	int64_t done_time;   /* UTC epoch seconds */
	char submit_date[SMPP_RECEIPT_DATE_SIZE];
	char done_date[SMPP_RECEIPT_DATE_SIZE];
	enum smpp_message_state state;
	char stat[SMPP_RECEIPT_WORD_SIZE];
	uint32_t error_code;
	char err[SMPP_RECEIPT_WORD_SIZE];
	const uint8_t *text;
	size_t text_length;
};

/* How an upstream link spells the message ids of one kind of PDU. */
enum smpp_id_base {
	SMPP_ID_BASE_AS_GIVEN = 0, /* opaque text */
	SMPP_ID_BASE_HEX,
	SMPP_ID_BASE_DECIMAL,
};

/*
 * Parses receipt text. Returns 0 when an id of 1..64 characters was found,
 * -1 otherwise. Parsing stops at the first NUL byte.
 */
int smpp_receipt_parse(
    const uint8_t *text, size_t length, struct smpp_receipt *receipt);
/*
 * Writes the Appendix B text for the fields set in receipt (absent ones are
 * left out, and so are times outside 2000-2099; dates are YYMMDDhhmm; text
 * is cut to SMPP_RECEIPT_TEXT_LENGTH octets). Returns the length written
 * (a NUL follows), or -1 without an id or if out is short.
 */
int smpp_receipt_format(
    const struct smpp_receipt *receipt, char *out, size_t out_size);
/* Stat word ("DELIVRD", "delivered", ...) -> state; NONE if unrecognised. */
enum smpp_message_state smpp_receipt_state_from_stat(
    const char *word, size_t length);
/* The seven-letter Appendix B stat word for a state ("UNKNOWN" if none). */
const char *smpp_receipt_stat_word(enum smpp_message_state state);
/* A state's name for logs: "DELIVERED", "UNDELIVERABLE", ... */
const char *smpp_receipt_state_name(enum smpp_message_state state);
/*
 * Canonical form of a message id so that spellings of one id in different
 * bases compare equal with strcmp(): numeric ids (in the stated base)
 * become lowercase hex without leading zeros, of any length; other ids are
 * lowercased with leading zeros dropped. Returns the length written (a NUL
 * follows) or -1 if the id is empty, longer than 64 or out is too small.
 */
int smpp_receipt_normalize_id(const char *id, size_t length,
    enum smpp_id_base base, char *out, size_t out_size);

/* ===== Session state machine: smpp_session.c ===== */

/*
 * The session as data: bind states, sequence numbers, the window of
 * outstanding requests and every timer, all driven by the caller's clock
 * (microseconds, never decreasing). The caller owns the socket and the
 * codec; it tells the session what it sent and received and asks
 * smpp_session_poll() what to do next.
 */

#define SMPP_SESSION_WINDOW_MAX   1024
#define SMPP_SESSION_MAX_SEQUENCE 0x7FFFFFFFu
#define SMPP_SESSION_NEVER        UINT64_MAX /* no deadline */

enum smpp_session_role {
	SMPP_SESSION_ESME, /* we bind to an SMSC */
	SMPP_SESSION_SMSC, /* peers bind to us */
};

enum smpp_session_state {
	SMPP_SESSION_OPEN, /* connected, not bound */
	SMPP_SESSION_BOUND_TX,
	SMPP_SESSION_BOUND_RX,
	SMPP_SESSION_BOUND_TRX,
	SMPP_SESSION_UNBOUND, /* unbind sent or received, waiting */
	SMPP_SESSION_CLOSED,
};
#define SMPP_SESSION_STATE_COUNT 6

/* Durations in microseconds; 0 turns a timer off. */
struct smpp_session_config {
	unsigned int window_size;       /* 1..SMPP_SESSION_WINDOW_MAX */
	uint64_t enquire_link_interval; /* after the last PDU received */
	uint64_t response_timeout;      /* requests and enquire_link */
	uint64_t bind_timeout;          /* from open to bound */
	uint64_t idle_timeout;          /* no traffic but enquire_link */
	uint64_t unbind_timeout;        /* from unbind to unbind_resp */
};

/* Why a session closed or unbound on its own. */
enum smpp_session_reason {
	SMPP_SESSION_REASON_NONE,
	SMPP_SESSION_REASON_BIND_TIMEOUT,
	SMPP_SESSION_REASON_ENQUIRE_LINK_TIMEOUT, /* dead peer */
	SMPP_SESSION_REASON_IDLE_TIMEOUT,
	SMPP_SESSION_REASON_UNBIND_TIMEOUT,
	SMPP_SESSION_REASON_BIND_REJECTED,
	SMPP_SESSION_REASON_UNBOUND,
};

/* What smpp_session_poll() asks the caller to do now. */
enum smpp_session_action_type {
	SMPP_SESSION_ACTION_NONE,              /* wait for next_wakeup */
	SMPP_SESSION_ACTION_SEND_ENQUIRE_LINK, /* with sequence_number */
	SMPP_SESSION_ACTION_SEND_UNBIND,       /* with sequence_number */
	SMPP_SESSION_ACTION_CLOSE,             /* state is now CLOSED */
	SMPP_SESSION_ACTION_REQUEST_EXPIRED,   /* no response in time */
	SMPP_SESSION_ACTION_REQUEST_FAILED,    /* session closed under it */
};

struct smpp_session_action {
	enum smpp_session_action_type type;
	enum smpp_session_reason reason;
	uint32_t sequence_number;
	uint32_t command_id; /* of the request */
	uint64_t cookie;
};

/* What a received PDU was, as smpp_session_receive() sees it. */
enum smpp_session_event_type {
	SMPP_SESSION_EVENT_REQUEST,  /* answer response_command_id+status */
	SMPP_SESSION_EVENT_RESPONSE, /* to a window request: cookie */
	SMPP_SESSION_EVENT_BOUND,    /* bind accepted: state is bound */
	SMPP_SESSION_EVENT_BIND_REJECTED, /* state is now CLOSED */
	SMPP_SESSION_EVENT_UNBIND_DONE,   /* unbind_resp: state is CLOSED */
	SMPP_SESSION_EVENT_ENQUIRE_LINK_ANSWERED,
	SMPP_SESSION_EVENT_RESPONSE_MISMATCH, /* known sequence, wrong id */
	SMPP_SESSION_EVENT_RESPONSE_UNKNOWN,  /* no such request (expired?) */
	SMPP_SESSION_EVENT_IGNORED,           /* session is CLOSED */
};

struct smpp_session_event {
	enum smpp_session_event_type type;
	/*
	 * REQUEST: the status to answer with, and the response's command id
	 * (generic_nack for unknown commands, 0 when none is due).
	 * RESPONSE and BIND_REJECTED: the peer's command_status.
	 */
	uint32_t status;
	uint32_t response_command_id;
	uint32_t request_command_id; /* RESPONSE */
	uint64_t cookie;             /* RESPONSE */
};

struct smpp_session;
typedef void smpp_session_log_hook(void *argument,
    const struct smpp_session *session, enum smpp_session_state from,
    enum smpp_session_state to);

/* One request awaiting its response; slots are linked in deadline order. */
struct smpp_session_request {
	uint32_t sequence_number;
	uint32_t command_id;
	uint64_t deadline;
	uint64_t cookie;
	uint16_t previous; /* slot index + 1, 0 = none */
	uint16_t next;
};

/* A control request (bind, unbind, enquire_link) tracked outside the window. */
struct smpp_session_pending {
	uint32_t sequence_number; /* 0 = none outstanding */
	uint32_t command_id;
	uint64_t deadline;
};

/* The caller allocates it (about 40 KB); no field is for the caller. */
struct smpp_session {
	enum smpp_session_role role;
	enum smpp_session_state state;
	enum smpp_session_reason close_reason;
	struct smpp_session_config config;
	smpp_session_log_hook *log_hook;
	void *log_argument;
	uint32_t next_sequence;
	uint64_t bind_deadline;
	uint64_t unbind_deadline;
	uint64_t last_received; /* any PDU */
	uint64_t last_traffic;  /* not enquire_link */
	struct smpp_session_pending bind;
	struct smpp_session_pending unbind;
	struct smpp_session_pending enquire_link;
	/* The window: a slot table, a free list, a sequence hash. */
	unsigned int outstanding;
	uint16_t oldest; /* slot index + 1 */
	uint16_t newest;
	uint16_t free_slots; /* slot index + 1 */
	struct smpp_session_request slots[SMPP_SESSION_WINDOW_MAX];
	uint16_t hash[2 * SMPP_SESSION_WINDOW_MAX];
};

/* Starts a session in OPEN at now. -1 if the configuration is invalid. */
int smpp_session_init(struct smpp_session *session, enum smpp_session_role role,
    const struct smpp_session_config *config, uint64_t now);
/* The hook is called on every state change with "from -> to". */
void smpp_session_set_log_hook(
    struct smpp_session *session, smpp_session_log_hook *hook, void *argument);
/*
 * Moves to state, logs it and runs its entry action: bound states schedule
 * the first enquire_link, UNBOUND arms the unbind deadline, CLOSED fails
 * every outstanding request (reported by smpp_session_poll()). CLOSED is
 * final: a new connection gets a new smpp_session_init().
 */
void smpp_session_enter_state(
    struct smpp_session *session, enum smpp_session_state state, uint64_t now);
const char *smpp_session_strstate(enum smpp_session_state state);
const char *smpp_session_strreason(enum smpp_session_reason reason);

/*
 * The status a request received in state answers with: ROK, RINVBNDSTS
 * (wrong state), RALYBND (bind while bound) or RINVCMDID (unknown, or never
 * sent to this role). Responses are ROK when the id is known.
 */
uint32_t smpp_session_check_receive(enum smpp_session_role role,
    enum smpp_session_state state, uint32_t command_id);
/* ROK if a request may be sent in state; RINVBNDSTS or RINVCMDID if not. */
uint32_t smpp_session_check_send(enum smpp_session_role role,
    enum smpp_session_state state, uint32_t command_id);

/* The next sequence number: 1..0x7FFFFFFF, wrapping, never 0. */
uint32_t smpp_session_next_sequence(struct smpp_session *session);

/* Tells the session about a PDU received; fills event. */
void smpp_session_receive(struct smpp_session *session, uint32_t command_id,
    uint32_t command_status, uint32_t sequence_number, uint64_t now,
    struct smpp_session_event *event);
/*
 * Before sending a request: checks the state, takes a window slot (for
 * requests other than bind, unbind, enquire_link, outbind and
 * alert_notification) and a sequence number. Returns ROK, RINVBNDSTS,
 * RINVCMDID or RMSGQFUL (window full); nothing is recorded unless ROK.
 */
uint32_t smpp_session_send_request(struct smpp_session *session,
    uint32_t command_id, uint64_t cookie, uint64_t now,
    uint32_t *sequence_number);
/* After sending a response: a bind_resp with ROK binds, unbind_resp closes. */
void smpp_session_send_response(struct smpp_session *session,
    uint32_t command_id, uint32_t command_status, uint64_t now);

/*
 * What to do now: call until it returns SMPP_SESSION_ACTION_NONE, then arm
 * one timer for smpp_session_next_wakeup().
 */
enum smpp_session_action_type smpp_session_poll(struct smpp_session *session,
    uint64_t now, struct smpp_session_action *action);
/* When poll next has something to do; SMPP_SESSION_NEVER if nothing. */
uint64_t smpp_session_next_wakeup(const struct smpp_session *session);
/* Requests in the window, and free window slots. */
unsigned int smpp_session_outstanding(const struct smpp_session *session);
unsigned int smpp_session_window_available(const struct smpp_session *session);

#endif /* SMPP_H */
