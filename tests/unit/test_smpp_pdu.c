/*
 * test_smpp_pdu.c - the SMPP 3.4 PDU codec: a hand-assembled byte vector for
 * every PDU type (fields in the spec's order), decode and encode against
 * each, round trips, framing limits, every decode error path with the
 * status it maps to, TLV table and status names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smpp.h"

/* ---- helpers ------------------------------------------------------------ */

/* Hex text (spaces allowed) to bytes; returns the byte count. */
static size_t
hex_to_bytes(const char *hex, uint8_t *out, size_t capacity)
{
	size_t length = 0;
	int high = -1;

	for (; *hex != '\0'; hex++) {
		int nibble = 0;

		if (*hex == ' ')
			continue;
		if (*hex >= '0' && *hex <= '9')
			nibble = *hex - '0';
		else if (*hex >= 'A' && *hex <= 'F')
			nibble = *hex - 'A' + 10;
		else if (*hex >= 'a' && *hex <= 'f')
			nibble = *hex - 'a' + 10;
		else
			fail_msg("bad hex character '%c'", *hex);
		if (high < 0) {
			high = nibble;
			continue;
		}
		assert_true(length < capacity);
		out[length++] = (uint8_t)(high << 4 | nibble);
		high = -1;
	}
	assert_int_equal(high, -1);
	return length;
}

/* Builds PDUs byte by byte for the error paths. */
struct builder {
	uint8_t data[4096];
	size_t length;
};

static void
put8(struct builder *b, uint8_t value)
{
	assert_true(b->length < sizeof(b->data));
	b->data[b->length++] = value;
}

static void
put32(struct builder *b, uint32_t value)
{
	put8(b, (uint8_t)(value >> 24));
	put8(b, (uint8_t)(value >> 16));
	put8(b, (uint8_t)(value >> 8));
	put8(b, (uint8_t)value);
}

static void
put_bytes(struct builder *b, const void *bytes, size_t length)
{
	assert_true(b->length + length <= sizeof(b->data));
	memcpy(b->data + b->length, bytes, length);
	b->length += length;
}

/* A C-Octet string with its NUL. */
static void
put_string(struct builder *b, const char *text)
{
	put_bytes(b, text, strlen(text) + 1);
}

static void
put_tlv(struct builder *b, uint16_t tag, uint16_t length, const void *value)
{
	put8(b, (uint8_t)(tag >> 8));
	put8(b, (uint8_t)tag);
	put8(b, (uint8_t)(length >> 8));
	put8(b, (uint8_t)length);
	put_bytes(b, value, length);
}

static void
begin(struct builder *b, uint32_t command_id, uint32_t sequence_number)
{
	b->length = 0;
	put32(b, 0);
	put32(b, command_id);
	put32(b, 0);
	put32(b, sequence_number);
}

/* Patches command_length to the bytes written. */
static void
finish(struct builder *b)
{
	b->data[0] = (uint8_t)(b->length >> 24);
	b->data[1] = (uint8_t)(b->length >> 16);
	b->data[2] = (uint8_t)(b->length >> 8);
	b->data[3] = (uint8_t)b->length;
}

/* submit_sm mandatory part with the given addresses, message "Hi". */
static void
put_submit_sm_body(
    struct builder *b, const char *source, const char *destination)
{
	put_string(b, "");
	put8(b, 1);
	put8(b, 1);
	put_string(b, source);
	put8(b, 1);
	put8(b, 1);
	put_string(b, destination);
	put8(b, 0);
	put8(b, 0);
	put8(b, 0);
	put_string(b, "");
	put_string(b, "");
	put8(b, 1);
	put8(b, 0);
	put8(b, 0);
	put8(b, 0);
	put8(b, 2);
	put_bytes(b, "Hi", 2);
}

static uint32_t
decode_builder(const struct builder *b, struct smpp_pdu *pdu)
{
	return smpp_pdu_decode(b->data, b->length, pdu);
}

/* ---- one vector per PDU type -------------------------------------------- */

struct vector {
	const char *name;
	const char *hex;
	void (*build)(struct smpp_pdu *pdu);
};

static void
build_generic_nack(struct smpp_pdu *p)
{
	p->command_id = SMPP_GENERIC_NACK;
	p->command_status = SMPP_ESME_RINVCMDID;
	p->sequence_number = 7;
}

static void
build_bind_receiver(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_RECEIVER;
	p->sequence_number = 1;
	p->system_id = "sys";
	p->password = "pw";
	p->system_type = "";
	p->interface_version = 0x34;
	p->address_range = "";
}

static const struct smpp_tlv sc_interface_version_tlv[] = {
    {SMPP_TLV_SC_INTERFACE_VERSION, 1, 0x34, NULL},
};

static void
build_bind_receiver_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_RECEIVER_RESP;
	p->sequence_number = 1;
	p->system_id = "SMSC";
	p->tlvs = sc_interface_version_tlv;
	p->tlv_count = 1;
}

static void
build_bind_transmitter(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_TRANSMITTER;
	p->sequence_number = 1;
	p->system_id = "smppclient1";
	p->password = "password";
	p->interface_version = 0x34;
	p->addr_ton = 1;
	p->addr_npi = 1;
}

static void
build_bind_transmitter_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_TRANSMITTER_RESP;
	p->sequence_number = 2;
	p->system_id = "SMSC";
}

static void
build_bind_transceiver(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_TRANSCEIVER;
	p->sequence_number = 3;
	p->system_id = "esme";
	p->password = "secret";
	p->system_type = "VMA";
	p->interface_version = 0x34;
	p->addr_ton = 1;
	p->addr_npi = 1;
	p->address_range = "";
}

static void
build_bind_transceiver_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_TRANSCEIVER_RESP;
	p->command_status = SMPP_ESME_RINVPASWD;
	p->sequence_number = 6;
}

static void
build_outbind(struct smpp_pdu *p)
{
	p->command_id = SMPP_OUTBIND;
	p->sequence_number = 4;
	p->system_id = "smsc";
	p->password = "pw";
}

static void
build_unbind(struct smpp_pdu *p)
{
	p->command_id = SMPP_UNBIND;
	p->sequence_number = 9;
}

static void
build_unbind_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_UNBIND_RESP;
	p->sequence_number = 9;
}

static void
build_enquire_link(struct smpp_pdu *p)
{
	p->command_id = SMPP_ENQUIRE_LINK;
	p->sequence_number = 0x0A0B0C0D;
}

static void
build_enquire_link_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_ENQUIRE_LINK_RESP;
	p->sequence_number = 0x0A0B0C0D;
}

static const uint8_t vendor_value[] = {0xAA, 0xBB, 0xCC};

static const struct smpp_tlv submit_sm_tlvs[] = {
    {SMPP_TLV_USER_MESSAGE_REFERENCE, 2, 0x1234, NULL},
    {0x1400, 3, 0, vendor_value},
};

static void
build_submit_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_SM;
	p->sequence_number = 0x10;
	p->service_type = "";
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "1234";
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	p->destination_addr = "5678";
	p->validity_period = "000001000000000R";
	p->registered_delivery = 1;
	p->sm_length = 5;
	p->short_message = (const uint8_t *)"Hello";
	p->tlvs = submit_sm_tlvs;
	p->tlv_count = 2;
}

static void
build_submit_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_SM_RESP;
	p->sequence_number = 0x10;
	p->message_id = "abc123";
}

static const uint8_t receipted_id[] = "abc123";

static const struct smpp_tlv receipt_tlvs[] = {
    {SMPP_TLV_RECEIPTED_MESSAGE_ID, 7, 0, receipted_id},
    {SMPP_TLV_MESSAGE_STATE, 1, 2, NULL},
};

static void
build_deliver_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_DELIVER_SM;
	p->sequence_number = 0x20;
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "5678";
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	p->destination_addr = "1234";
	p->esm_class = SMPP_ESM_CLASS_DELIVERY_RECEIPT;
	p->sm_length = 9;
	p->short_message = (const uint8_t *)"id:abc123";
	p->tlvs = receipt_tlvs;
	p->tlv_count = 2;
}

static void
build_deliver_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_DELIVER_SM_RESP;
	p->sequence_number = 0x20;
	p->message_id = "";
}

static void
build_query_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_QUERY_SM;
	p->sequence_number = 0x30;
	p->message_id = "abc123";
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "1234";
}

static void
build_query_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_QUERY_SM_RESP;
	p->sequence_number = 0x30;
	p->message_id = "abc123";
	p->final_date = "240102030405000+";
	p->message_state = 2;
	p->error_code = 0;
}

static void
build_replace_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_REPLACE_SM;
	p->sequence_number = 0x40;
	p->message_id = "abc123";
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "1234";
	p->registered_delivery = 1;
	p->sm_length = 3;
	p->short_message = (const uint8_t *)"Bye";
}

static void
build_replace_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_REPLACE_SM_RESP;
	p->sequence_number = 0x40;
}

static void
build_cancel_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_CANCEL_SM;
	p->sequence_number = 0x50;
	p->message_id = "abc123";
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "1234";
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	p->destination_addr = "5678";
}

static void
build_cancel_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_CANCEL_SM_RESP;
	p->sequence_number = 0x50;
}

static const struct smpp_destination multi_destinations[] = {
    {SMPP_DEST_FLAG_SME_ADDRESS, 1, 1, "5678", 0},
    {SMPP_DEST_FLAG_DISTRIBUTION_LIST, 0, 0, "list", 0},
};

static void
build_submit_multi(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_MULTI;
	p->sequence_number = 0x60;
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "1234";
	p->number_of_destinations = 2;
	p->destination_list = multi_destinations;
	p->sm_length = 2;
	p->short_message = (const uint8_t *)"Hi";
}

static const struct smpp_destination multi_unsuccessful[] = {
    {SMPP_DEST_FLAG_SME_ADDRESS, 1, 1, "5678", SMPP_ESME_RINVDSTADR},
};

static void
build_submit_multi_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_MULTI_RESP;
	p->sequence_number = 0x60;
	p->message_id = "abc123";
	p->number_of_destinations = 1;
	p->destination_list = multi_unsuccessful;
}

static const struct smpp_tlv availability_tlv[] = {
    {SMPP_TLV_MS_AVAILABILITY_STATUS, 1, 0, NULL},
};

static void
build_alert_notification(struct smpp_pdu *p)
{
	p->command_id = SMPP_ALERT_NOTIFICATION;
	p->sequence_number = 0x70;
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "5678";
	p->esme_addr_ton = 1;
	p->esme_addr_npi = 1;
	p->esme_addr = "1234";
	p->tlvs = availability_tlv;
	p->tlv_count = 1;
}

static const struct smpp_tlv payload_tlv[] = {
    {SMPP_TLV_MESSAGE_PAYLOAD, 5, 0, (const uint8_t *)"Hello"},
};

static void
build_data_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_DATA_SM;
	p->sequence_number = 0x80;
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "1234";
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	p->destination_addr = "5678";
	p->registered_delivery = 1;
	p->tlvs = payload_tlv;
	p->tlv_count = 1;
}

static const struct smpp_tlv failure_reason_tlv[] = {
    {SMPP_TLV_DELIVERY_FAILURE_REASON, 1, 0, NULL},
};

static void
build_data_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_DATA_SM_RESP;
	p->command_status = SMPP_ESME_RDELIVERYFAILURE;
	p->sequence_number = 0x80;
	p->message_id = "abc123";
	p->tlvs = failure_reason_tlv;
	p->tlv_count = 1;
}

/*
 * Header: command_length, command_id, command_status, sequence_number.
 * Strings: "sys" 737973, "pw" 7077, "SMSC" 534D5343, "1234" 31323334,
 * "5678" 35363738, "abc123" 616263313233.
 */
static const struct vector vectors[] = {
    {"generic_nack", "00000010 80000000 00000003 00000007", build_generic_nack},
    {"bind_receiver",
	"0000001C 00000001 00000000 00000001"
	"73797300 707700 00 34 00 00 00",
	build_bind_receiver},
    {"bind_receiver_resp",
	"0000001A 80000001 00000000 00000001"
	"534D534300"
	"0210 0001 34", /* sc_interface_version */
	build_bind_receiver_resp},
    {"bind_transmitter",
	"0000002A 00000002 00000000 00000001"
	"736D7070636C69656E743100" /* "smppclient1" */
	"70617373776F726400"       /* "password" */
	"00 34 01 01 00",
	build_bind_transmitter},
    {"bind_transmitter_resp", "00000015 80000002 00000000 00000002 534D534300",
	build_bind_transmitter_resp},
    {"bind_transceiver",
	"00000024 00000009 00000000 00000003"
	"65736D6500"     /* "esme" */
	"73656372657400" /* "secret" */
	"564D4100"       /* "VMA" */
	"34 01 01 00",
	build_bind_transceiver},
    {"bind_transceiver_resp (error, no body)",
	"00000010 80000009 0000000E 00000006", build_bind_transceiver_resp},
    {"outbind", "00000018 0000000B 00000000 00000004 736D736300 707700",
	build_outbind},
    {"unbind", "00000010 00000006 00000000 00000009", build_unbind},
    {"unbind_resp", "00000010 80000006 00000000 00000009", build_unbind_resp},
    {"enquire_link", "00000010 00000015 00000000 0A0B0C0D", build_enquire_link},
    {"enquire_link_resp", "00000010 80000015 00000000 0A0B0C0D",
	build_enquire_link_resp},
    {"submit_sm",
	"0000004B 00000004 00000000 00000010"
	"00"                                  /* service_type */
	"01 01 3132333400"                    /* source */
	"01 01 3536373800"                    /* destination */
	"00 00 00"                            /* esm, protocol, priority */
	"00"                                  /* schedule_delivery_time */
	"30303030303130303030303030303052 00" /* 000001000000000R */
	"01 00 00 00"                         /* registered .. default id */
	"05 48656C6C6F"                       /* "Hello" */
	"0204 0002 1234"                      /* user_message_reference */
	"1400 0003 AABBCC",                   /* vendor TLV, unknown */
	build_submit_sm},
    {"submit_sm_resp", "00000017 80000004 00000000 00000010 61626331323300",
	build_submit_sm_resp},
    {"deliver_sm",
	"00000042 00000005 00000000 00000020"
	"00 01 01 3536373800 01 01 3132333400"
	"04 00 00 00 00 00 00 00 00"
	"09 69643A616263313233"    /* "id:abc123" */
	"001E 0007 61626331323300" /* receipted_message_id */
	"0427 0001 02",            /* message_state DELIVERED */
	build_deliver_sm},
    {"deliver_sm_resp", "00000011 80000005 00000000 00000020 00",
	build_deliver_sm_resp},
    {"query_sm",
	"0000001E 00000003 00000000 00000030"
	"61626331323300 01 01 3132333400",
	build_query_sm},
    {"query_sm_resp",
	"0000002A 80000003 00000000 00000030"
	"61626331323300"
	"3234303130323033303430353030302B 00" /* 240102030405000+ */
	"02 00",
	build_query_sm_resp},
    {"replace_sm",
	"00000026 00000007 00000000 00000040"
	"61626331323300 01 01 3132333400 00 00 01 00 03 427965",
	build_replace_sm},
    {"replace_sm_resp", "00000010 80000007 00000000 00000040",
	build_replace_sm_resp},
    {"cancel_sm",
	"00000026 00000008 00000000 00000050"
	"00 61626331323300 01 01 3132333400 01 01 3536373800",
	build_cancel_sm},
    {"cancel_sm_resp", "00000010 80000008 00000000 00000050",
	build_cancel_sm_resp},
    {"submit_multi",
	"00000033 00000021 00000000 00000060"
	"00 01 01 3132333400"
	"02"                  /* number_of_dests */
	"01 01 01 3536373800" /* SME address */
	"02 6C69737400"       /* distribution list "list" */
	"00 00 00 00 00 00 00 00 00"
	"02 4869", /* "Hi" */
	build_submit_multi},
    {"submit_multi_resp",
	"00000023 80000021 00000000 00000060"
	"61626331323300"
	"01 01 01 3536373800 0000000B", /* one unsuccess_sme */
	build_submit_multi_resp},
    {"alert_notification",
	"00000023 00000102 00000000 00000070"
	"01 01 3536373800 01 01 3132333400"
	"0422 0001 00", /* ms_availability_status */
	build_alert_notification},
    {"data_sm",
	"0000002B 00000103 00000000 00000080"
	"00 01 01 3132333400 01 01 3536373800 00 01 00"
	"0424 0005 48656C6C6F", /* message_payload */
	build_data_sm},
    {"data_sm_resp (error with body)",
	"0000001C 80000103 000000FE 00000080"
	"61626331323300"
	"0425 0001 00", /* delivery_failure_reason */
	build_data_sm_resp},
};

#define VECTOR_COUNT (sizeof(vectors) / sizeof(vectors[0]))

/* The wire bytes of the vector called name. */
static size_t
vector_bytes(const char *name, uint8_t *out, size_t capacity)
{
	size_t i;

	for (i = 0; i < VECTOR_COUNT; i++)
		if (strcmp(vectors[i].name, name) == 0)
			return hex_to_bytes(vectors[i].hex, out, capacity);
	fail_msg("no vector %s", name);
	return 0;
}

/*
 * Each vector both ways: the bytes decode to the hand-built struct, the
 * struct encodes to the bytes, and the decoded PDU re-encodes to them.
 */
static void
test_vectors_every_pdu(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < VECTOR_COUNT; i++) {
		uint8_t wire[256], out[256];
		struct smpp_pdu expected, decoded;
		size_t length;
		int written;

		memset(&expected, 0, sizeof(expected));
		vectors[i].build(&expected);
		length = hex_to_bytes(vectors[i].hex, wire, sizeof(wire));

		print_message("vector %s\n", vectors[i].name);
		assert_int_equal(
		    smpp_pdu_decode(wire, length, &decoded), SMPP_ESME_ROK);
		assert_int_equal(decoded.command_length, length);
		assert_true(smpp_pdu_equal(&decoded, &expected));

		written = smpp_pdu_encode(&expected, out, sizeof(out));
		assert_int_equal(written, (int)length);
		assert_memory_equal(out, wire, length);

		written = smpp_pdu_encode(&decoded, out, sizeof(out));
		assert_int_equal(written, (int)length);
		assert_memory_equal(out, wire, length);
	}
}

/* Every command SMPP 3.4 defines has a vector. */
static void
test_vectors_cover_all_commands(void **state)
{
	static const uint32_t commands[] = {
	    SMPP_GENERIC_NACK,
	    SMPP_BIND_RECEIVER,
	    SMPP_BIND_RECEIVER_RESP,
	    SMPP_BIND_TRANSMITTER,
	    SMPP_BIND_TRANSMITTER_RESP,
	    SMPP_QUERY_SM,
	    SMPP_QUERY_SM_RESP,
	    SMPP_SUBMIT_SM,
	    SMPP_SUBMIT_SM_RESP,
	    SMPP_DELIVER_SM,
	    SMPP_DELIVER_SM_RESP,
	    SMPP_UNBIND,
	    SMPP_UNBIND_RESP,
	    SMPP_REPLACE_SM,
	    SMPP_REPLACE_SM_RESP,
	    SMPP_CANCEL_SM,
	    SMPP_CANCEL_SM_RESP,
	    SMPP_BIND_TRANSCEIVER,
	    SMPP_BIND_TRANSCEIVER_RESP,
	    SMPP_OUTBIND,
	    SMPP_ENQUIRE_LINK,
	    SMPP_ENQUIRE_LINK_RESP,
	    SMPP_SUBMIT_MULTI,
	    SMPP_SUBMIT_MULTI_RESP,
	    SMPP_ALERT_NOTIFICATION,
	    SMPP_DATA_SM,
	    SMPP_DATA_SM_RESP,
	};
	size_t c, v;

	(void)state;
	assert_int_equal(VECTOR_COUNT, sizeof(commands) / sizeof(commands[0]));
	for (c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		int found = 0;

		assert_true(smpp_pdu_is_known_command(commands[c]));
		for (v = 0; v < VECTOR_COUNT; v++) {
			struct smpp_pdu pdu;

			memset(&pdu, 0, sizeof(pdu));
			vectors[v].build(&pdu);
			found |= pdu.command_id == commands[c];
		}
		assert_true(found);
	}
}

/* Spot checks of decoded values, and that nothing was copied. */
static void
test_decode_submit_sm_fields(void **state)
{
	uint8_t wire[256];
	struct smpp_pdu pdu;
	struct smpp_tlv tlv;
	size_t length;
	size_t cursor = 0;

	(void)state;
	length = vector_bytes("submit_sm", wire, sizeof(wire));
	assert_int_equal(smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_ROK);
	assert_int_equal(pdu.command_id, SMPP_SUBMIT_SM);
	assert_int_equal(pdu.sequence_number, 0x10);
	assert_string_equal(pdu.source_addr, "1234");
	assert_string_equal(pdu.destination_addr, "5678");
	assert_string_equal(pdu.schedule_delivery_time, "");
	assert_string_equal(pdu.validity_period, "000001000000000R");
	assert_int_equal(pdu.registered_delivery, 1);
	assert_int_equal(pdu.sm_length, 5);
	assert_memory_equal(pdu.short_message, "Hello", 5);
	/* Zero copy: strings and message point into the input. */
	assert_ptr_equal(pdu.source_addr, (const char *)wire + 19);
	assert_ptr_equal(pdu.short_message, wire + 16 + 41);
	assert_ptr_equal(pdu.tlv_bytes, wire + 62);
	assert_int_equal(pdu.tlv_bytes_length, 13);

	assert_true(smpp_pdu_next_tlv(&pdu, &cursor, &tlv));
	assert_int_equal(tlv.tag, SMPP_TLV_USER_MESSAGE_REFERENCE);
	assert_int_equal(tlv.length, 2);
	assert_int_equal(tlv.integer, 0x1234);
	assert_true(smpp_pdu_next_tlv(&pdu, &cursor, &tlv));
	assert_int_equal(tlv.tag, 0x1400);
	assert_int_equal(tlv.length, 3);
	assert_memory_equal(tlv.value, vendor_value, 3);
	assert_false(smpp_pdu_next_tlv(&pdu, &cursor, &tlv));
}

static void
test_decode_receipt_tlvs(void **state)
{
	uint8_t wire[256];
	struct smpp_pdu pdu;
	struct smpp_tlv tlv;
	size_t length;

	(void)state;
	length = vector_bytes("deliver_sm", wire, sizeof(wire));
	assert_int_equal(smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_ROK);
	assert_int_equal(pdu.esm_class, SMPP_ESM_CLASS_DELIVERY_RECEIPT);
	assert_true(
	    smpp_pdu_find_tlv(&pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, &tlv));
	assert_int_equal(tlv.length, 7);
	assert_int_equal(smpp_tlv_text_length(&tlv), 6);
	assert_memory_equal(tlv.value, "abc123", 6);
	assert_true(smpp_pdu_find_tlv(&pdu, SMPP_TLV_MESSAGE_STATE, &tlv));
	assert_int_equal(tlv.integer, 2);
	assert_false(smpp_pdu_find_tlv(&pdu, SMPP_TLV_MESSAGE_PAYLOAD, &tlv));
}

static void
test_destinations_iterate(void **state)
{
	uint8_t wire[256];
	struct smpp_pdu pdu;
	struct smpp_destination destination;
	size_t length, cursor = 0;

	(void)state;
	length = vector_bytes("submit_multi", wire, sizeof(wire));
	assert_int_equal(smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_ROK);
	assert_int_equal(pdu.number_of_destinations, 2);
	assert_int_equal(pdu.destinations_length, 14);
	assert_true(smpp_pdu_next_destination(&pdu, &cursor, &destination));
	assert_int_equal(destination.dest_flag, SMPP_DEST_FLAG_SME_ADDRESS);
	assert_int_equal(destination.dest_addr_ton, 1);
	assert_int_equal(destination.dest_addr_npi, 1);
	assert_string_equal(destination.address, "5678");
	assert_true(smpp_pdu_next_destination(&pdu, &cursor, &destination));
	assert_int_equal(
	    destination.dest_flag, SMPP_DEST_FLAG_DISTRIBUTION_LIST);
	assert_string_equal(destination.address, "list");
	assert_false(smpp_pdu_next_destination(&pdu, &cursor, &destination));

	length = vector_bytes("submit_multi_resp", wire, sizeof(wire));
	assert_int_equal(smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_ROK);
	assert_int_equal(pdu.number_of_destinations, 1);
	cursor = 0;
	assert_true(smpp_pdu_next_destination(&pdu, &cursor, &destination));
	assert_string_equal(destination.address, "5678");
	assert_int_equal(destination.error_status_code, SMPP_ESME_RINVDSTADR);
	assert_false(smpp_pdu_next_destination(&pdu, &cursor, &destination));
}

/* 254 destinations: the most submit_multi allows; 255 is refused. */
static void
test_submit_multi_limits(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;
	struct smpp_destination destination;
	size_t cursor = 0;
	unsigned i, seen = 0;

	(void)state;
	begin(&b, SMPP_SUBMIT_MULTI, 1);
	put_string(&b, "");
	put8(&b, 1);
	put8(&b, 1);
	put_string(&b, "1234");
	put8(&b, 254);
	for (i = 0; i < 254; i++) {
		put8(&b, SMPP_DEST_FLAG_SME_ADDRESS);
		put8(&b, 1);
		put8(&b, 1);
		put_string(&b, "5678");
	}
	put_bytes(&b, "\0\0\0\0\0\0\0\0\0", 9);
	put8(&b, 0);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_ROK);
	while (smpp_pdu_next_destination(&pdu, &cursor, &destination))
		seen++;
	assert_int_equal(seen, 254);

	b.data[16 + 1 + 2 + 5] = 255;
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVNUMDESTS);
	b.data[16 + 1 + 2 + 5] = 0;
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVNUMDESTS);
}

/* ---- framing ------------------------------------------------------------ */

static void
test_frame_limits(void **state)
{
	uint8_t data[32];
	uint32_t length;

	(void)state;
	memset(data, 0, sizeof(data));
	assert_int_equal(
	    smpp_pdu_frame(data, 3, 0, &length), SMPP_FRAME_NEED_MORE);

	/* command_length 0 and 15: refused on the first four octets. */
	assert_int_equal(
	    smpp_pdu_frame(data, 4, 0, &length), SMPP_FRAME_INVALID);
	assert_int_equal(length, 0);
	data[3] = 15;
	assert_int_equal(
	    smpp_pdu_frame(data, 4, 0, &length), SMPP_FRAME_INVALID);
	assert_int_equal(length, 15);

	data[3] = 16;
	assert_int_equal(
	    smpp_pdu_frame(data, 4, 0, &length), SMPP_FRAME_NEED_MORE);
	assert_int_equal(
	    smpp_pdu_frame(data, 16, 0, &length), SMPP_FRAME_COMPLETE);
	assert_int_equal(length, 16);
	assert_int_equal(
	    smpp_pdu_frame(data, 32, 0, &length), SMPP_FRAME_COMPLETE);
	assert_int_equal(length, 16);

	/* 2^31: refused at once, no body awaited. */
	data[0] = 0x80;
	data[3] = 0;
	assert_int_equal(
	    smpp_pdu_frame(data, 4, 0, &length), SMPP_FRAME_INVALID);
	assert_int_equal(length, 0x80000000u);

	/* The default cap and one past it. */
	data[0] = 0;
	data[1] = (uint8_t)(SMPP_DEFAULT_MAX_PDU_LENGTH >> 16);
	data[2] = (uint8_t)(SMPP_DEFAULT_MAX_PDU_LENGTH >> 8);
	data[3] = (uint8_t)SMPP_DEFAULT_MAX_PDU_LENGTH;
	assert_int_equal(
	    smpp_pdu_frame(data, 4, 0, &length), SMPP_FRAME_NEED_MORE);
	data[3] = (uint8_t)(SMPP_DEFAULT_MAX_PDU_LENGTH + 1);
	assert_int_equal(
	    smpp_pdu_frame(data, 4, 0, &length), SMPP_FRAME_INVALID);
	assert_int_equal(length, SMPP_DEFAULT_MAX_PDU_LENGTH + 1);

	/* A configured cap. */
	data[1] = 0;
	data[2] = 0x04;
	data[3] = 0x00;
	assert_int_equal(
	    smpp_pdu_frame(data, 4, 1024, &length), SMPP_FRAME_NEED_MORE);
	data[3] = 0x01;
	assert_int_equal(
	    smpp_pdu_frame(data, 4, 1024, &length), SMPP_FRAME_INVALID);
}

/* decode refuses lengths that disagree, and fills the header it has. */
static void
test_decode_command_length(void **state)
{
	uint8_t wire[64];
	struct smpp_pdu pdu;
	size_t length;

	(void)state;
	length = hex_to_bytes(
	    "00000010 00000015 00000000 00000042", wire, sizeof(wire));
	assert_int_equal(smpp_pdu_decode(wire, 15, &pdu), SMPP_ESME_RINVCMDLEN);
	wire[3] = 0;
	assert_int_equal(
	    smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_RINVCMDLEN);
	assert_int_equal(pdu.command_id, SMPP_ENQUIRE_LINK);
	assert_int_equal(pdu.sequence_number, 0x42);
	wire[3] = 15;
	assert_int_equal(
	    smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_RINVCMDLEN);
	wire[3] = 17;
	assert_int_equal(
	    smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_RINVCMDLEN);
	wire[0] = 0x80;
	wire[3] = 0x00;
	assert_int_equal(
	    smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_RINVCMDLEN);
}

/* ---- decode errors ------------------------------------------------------ */

/*
 * Every cut of the submit_sm vector: inside the mandatory part the body is
 * truncated (RINVCMDLEN; RINVMSGLEN once sm_length is read), right after
 * it the PDU is whole, inside the TLVs the stream is broken.
 */
static void
test_decode_truncated_everywhere(void **state)
{
	uint8_t wire[256];
	struct smpp_pdu pdu;
	size_t length, cut;

	(void)state;
	length = vector_bytes("submit_sm", wire, sizeof(wire));
	for (cut = SMPP_HEADER_LENGTH; cut < length; cut++) {
		uint32_t status, expected;

		wire[2] = (uint8_t)(cut >> 8);
		wire[3] = (uint8_t)cut;
		status = smpp_pdu_decode(wire, cut, &pdu);
		if (cut < 57)
			expected = SMPP_ESME_RINVCMDLEN;
		else if (cut < 62)
			expected = SMPP_ESME_RINVMSGLEN;
		else if (cut == 62 || cut == 68)
			expected = SMPP_ESME_ROK;
		else
			expected = SMPP_ESME_RINVOPTPARSTREAM;
		print_message("cut at %zu\n", cut);
		assert_int_equal(status, expected);
		assert_int_equal(pdu.command_id, SMPP_SUBMIT_SM);
		assert_int_equal(pdu.sequence_number, 0x10);
	}
}

static void
test_decode_missing_terminator(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;

	(void)state;
	/* system_id runs to the end of the PDU without its NUL. */
	begin(&b, SMPP_BIND_TRANSMITTER, 5);
	put_bytes(&b, "abcdefghij", 10);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVCMDLEN);
	assert_int_equal(pdu.sequence_number, 5);

	/* The last string of a submit_sm cut before its NUL. */
	begin(&b, SMPP_QUERY_SM, 6);
	put_string(&b, "abc");
	put8(&b, 1);
	put8(&b, 1);
	put_bytes(&b, "1234", 4);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVCMDLEN);
}

static void
test_decode_overlong_bind_strings(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;

	(void)state;
	begin(&b, SMPP_BIND_TRANSCEIVER, 1);
	put_string(&b, "0123456789abcdef"); /* 16 + NUL: one too many */
	put_string(&b, "pw");
	put_string(&b, "");
	put_bytes(&b, "\x34\x01\x01", 3);
	put_string(&b, "");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVSYSID);
	assert_int_equal(pdu.command_id, SMPP_BIND_TRANSCEIVER);

	begin(&b, SMPP_BIND_TRANSCEIVER, 1);
	put_string(&b, "0123456789abcde"); /* 15: the maximum */
	put_string(&b, "123456789");       /* 9 + NUL: one too many */
	put_string(&b, "");
	put_bytes(&b, "\x34\x01\x01", 3);
	put_string(&b, "");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVPASWD);

	begin(&b, SMPP_BIND_TRANSCEIVER, 1);
	put_string(&b, "0123456789abcde");
	put_string(&b, "12345678");
	put_string(&b, "0123456789abc"); /* 13 + NUL */
	put_bytes(&b, "\x34\x01\x01", 3);
	put_string(&b, "");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVSYSTYP);

	begin(&b, SMPP_BIND_TRANSCEIVER, 1);
	put_string(&b, "0123456789abcde");
	put_string(&b, "12345678");
	put_string(&b, "0123456789ab");
	put_bytes(&b, "\x34\x01\x01", 3);
	put_string(&b, "");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_ROK);
	assert_string_equal(pdu.system_id, "0123456789abcde");
	assert_string_equal(pdu.password, "12345678");
	assert_string_equal(pdu.system_type, "0123456789ab");
}

static void
test_decode_overlong_addresses(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;

	(void)state;
	begin(&b, SMPP_SUBMIT_SM, 1);
	put_submit_sm_body(&b, "123456789012345678901", "5678");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVSRCADR);

	begin(&b, SMPP_SUBMIT_SM, 1);
	put_submit_sm_body(&b, "1234", "123456789012345678901");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVDSTADR);

	/* 20 characters: the maximum. */
	begin(&b, SMPP_SUBMIT_SM, 1);
	put_submit_sm_body(&b, "12345678901234567890", "12345678901234567890");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_ROK);
	assert_string_equal(pdu.source_addr, "12345678901234567890");

	/* service_type of 6 characters. */
	begin(&b, SMPP_CANCEL_SM, 1);
	put_string(&b, "ABCDEF");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVSERTYP);

	/* message_id of 65 characters. */
	begin(&b, SMPP_QUERY_SM, 1);
	put_string(&b, "0123456789012345678901234567890123456789"
		       "0123456789012345678901234");
	put_bytes(&b, "\x01\x01", 2);
	put_string(&b, "1234");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVMSGID);
}

static void
test_decode_short_message_length(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;
	uint8_t message[255];

	(void)state;
	memset(message, 'x', sizeof(message));
	begin(&b, SMPP_SUBMIT_SM, 1);
	put_submit_sm_body(&b, "1234", "5678");
	b.data[b.length - 3] = 3; /* sm_length 3, two octets follow */
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVMSGLEN);

	/* 254 is the maximum; 255 is refused though the octets are there. */
	begin(&b, SMPP_SUBMIT_SM, 1);
	put_submit_sm_body(&b, "1234", "5678");
	b.length -= 3;
	put8(&b, 254);
	put_bytes(&b, message, 254);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_ROK);
	assert_int_equal(pdu.sm_length, 254);

	b.length -= 255;
	put8(&b, 255);
	put_bytes(&b, message, 255);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVMSGLEN);
}

static void
test_decode_bad_times(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;
	size_t schedule_at;

	(void)state;
	begin(&b, SMPP_SUBMIT_SM, 1);
	put_submit_sm_body(&b, "1234", "5678");
	finish(&b);
	schedule_at = 16 + 1 + 2 + 5 + 2 + 5 + 3;
	assert_int_equal(b.data[schedule_at], 0);

	/* Rebuild with a five-character schedule_delivery_time. */
	b.length = schedule_at;
	put_string(&b, "12345");
	put_string(&b, "");
	put_bytes(&b, "\x01\0\0\0\x02Hi", 7);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVSCHED);

	b.length = schedule_at;
	put_string(&b, "");
	put_string(&b, "24010203040500X+"); /* a letter among the digits */
	put_bytes(&b, "\x01\0\0\0\x02Hi", 7);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVEXPIRY);

	b.length = schedule_at;
	put_string(&b, "");
	put_string(&b, "2401020304050001"); /* no +, - or R at the end */
	put_bytes(&b, "\x01\0\0\0\x02Hi", 7);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVEXPIRY);

	b.length = schedule_at;
	put_string(&b, "240102030405004-");
	put_string(&b, "240102030405000+");
	put_bytes(&b, "\x01\0\0\0\x02Hi", 7);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_ROK);
	assert_string_equal(pdu.schedule_delivery_time, "240102030405004-");
}

static void
test_decode_submit_multi_errors(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;

	(void)state;
	begin(&b, SMPP_SUBMIT_MULTI, 1);
	put_string(&b, "");
	put_bytes(&b, "\x01\x01", 2);
	put_string(&b, "1234");
	put8(&b, 1);
	put8(&b, 3); /* dest_flag 3 does not exist */
	put_string(&b, "5678");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVDESTFLAG);

	begin(&b, SMPP_SUBMIT_MULTI, 1);
	put_string(&b, "");
	put_bytes(&b, "\x01\x01", 2);
	put_string(&b, "1234");
	put8(&b, 1);
	put8(&b, SMPP_DEST_FLAG_DISTRIBUTION_LIST);
	put_string(&b, "list-name-of-21-chars");
	put_bytes(&b, "\0\0\0\0\0\0\0\0\0\0", 10);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVDLNAME);

	begin(&b, SMPP_SUBMIT_MULTI, 1);
	put_string(&b, "");
	put_bytes(&b, "\x01\x01", 2);
	put_string(&b, "1234");
	put8(&b, 2);
	put8(&b, SMPP_DEST_FLAG_SME_ADDRESS);
	put_bytes(&b, "\x01\x01", 2);
	put_string(&b, "5678");
	finish(&b); /* the second destination is missing */
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVCMDLEN);
}

static void
test_decode_tlv_errors(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;
	size_t body;

	(void)state;
	begin(&b, SMPP_SUBMIT_SM, 1);
	put_submit_sm_body(&b, "1234", "5678");
	body = b.length;

	/* TLV header truncated: three octets left. */
	put_bytes(&b, "\x02\x04\x00", 3);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVOPTPARSTREAM);
	assert_int_equal(pdu.sequence_number, 1);

	/* Value runs past the end of the PDU. */
	b.length = body;
	put_bytes(&b, "\x02\x04\x00\x05\x12", 5);
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVOPTPARSTREAM);

	/* Fixed-size TLVs with a wrong length. */
	b.length = body;
	put_tlv(&b, SMPP_TLV_USER_MESSAGE_REFERENCE, 1, "\x12");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVPARLEN);

	b.length = body;
	put_tlv(&b, SMPP_TLV_MESSAGE_STATE, 2, "\x00\x02");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVPARLEN);

	b.length = body;
	put_tlv(&b, SMPP_TLV_QOS_TIME_TO_LIVE, 2, "\x00\x02");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVPARLEN);

	b.length = body;
	put_tlv(&b, SMPP_TLV_NETWORK_ERROR_CODE, 2, "\x03\x00");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVPARLEN);

	/* Variable-size TLVs outside their bounds. */
	b.length = body;
	put_tlv(&b, SMPP_TLV_CALLBACK_NUM, 3, "\x00\x01\x31");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVPARLEN);

	b.length = body;
	put_tlv(&b, SMPP_TLV_RECEIPTED_MESSAGE_ID, 0, "");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVPARLEN);

	/* One sar_* without the others. */
	b.length = body;
	put_tlv(&b, SMPP_TLV_SAR_MSG_REF_NUM, 2, "\x00\x07");
	put_tlv(&b, SMPP_TLV_SAR_TOTAL_SEGMENTS, 1, "\x02");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RMISSINGOPTPARAM);

	/* All three, but segment 3 of 2. */
	put_tlv(&b, SMPP_TLV_SAR_SEGMENT_SEQNUM, 1, "\x03");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_RINVOPTPARAMVAL);

	/* Segment 2 of 2, in another order: fine. */
	b.length = body;
	put_tlv(&b, SMPP_TLV_SAR_SEGMENT_SEQNUM, 1, "\x02");
	put_tlv(&b, SMPP_TLV_SAR_MSG_REF_NUM, 2, "\x00\x07");
	put_tlv(&b, SMPP_TLV_SAR_TOTAL_SEGMENTS, 1, "\x02");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_ROK);
}

/* Unknown TLVs survive decode and encode byte for byte, in order. */
static void
test_unknown_tlvs_preserved(void **state)
{
	struct builder b;
	struct smpp_pdu pdu;
	struct smpp_tlv tlv;
	uint8_t out[512];
	size_t cursor = 0;
	int written;

	(void)state;
	begin(&b, SMPP_DELIVER_SM, 77);
	put_submit_sm_body(&b, "1234", "5678");
	put_tlv(&b, 0x3FFF, 2, "\x01\x02");
	put_tlv(&b, SMPP_TLV_MESSAGE_STATE, 1, "\x05");
	put_tlv(&b, 0x1401, 0, "");
	put_tlv(&b, 0xFFFF, 5, "\x00\xFF\x00\xFF\x00");
	finish(&b);
	assert_int_equal(decode_builder(&b, &pdu), SMPP_ESME_ROK);

	written = smpp_pdu_encode(&pdu, out, sizeof(out));
	assert_int_equal(written, (int)b.length);
	assert_memory_equal(out, b.data, b.length);

	assert_true(smpp_pdu_next_tlv(&pdu, &cursor, &tlv));
	assert_int_equal(tlv.tag, 0x3FFF);
	assert_true(smpp_pdu_next_tlv(&pdu, &cursor, &tlv));
	assert_int_equal(tlv.tag, SMPP_TLV_MESSAGE_STATE);
	assert_int_equal(tlv.integer, 5);
	assert_true(smpp_pdu_next_tlv(&pdu, &cursor, &tlv));
	assert_int_equal(tlv.tag, 0x1401);
	assert_int_equal(tlv.length, 0);
	assert_true(smpp_pdu_next_tlv(&pdu, &cursor, &tlv));
	assert_int_equal(tlv.tag, 0xFFFF);
	assert_memory_equal(tlv.value, "\x00\xFF\x00\xFF\x00", 5);
	assert_false(smpp_pdu_next_tlv(&pdu, &cursor, &tlv));
}

/* An unknown command id: RINVCMDID, header kept, answered by generic_nack. */
static void
test_unknown_command(void **state)
{
	uint8_t wire[64], out[64], expected[64];
	struct smpp_pdu pdu;
	size_t length;
	int written;

	(void)state;
	length = hex_to_bytes(
	    "00000014 00000099 00000000 0000ABCD DEADBEEF", wire, sizeof(wire));
	assert_int_equal(
	    smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_RINVCMDID);
	assert_int_equal(pdu.command_id, 0x99);
	assert_int_equal(pdu.sequence_number, 0xABCD);
	assert_false(smpp_pdu_is_known_command(0x99));
	assert_int_equal(
	    smpp_pdu_response_id(pdu.command_id), SMPP_GENERIC_NACK);

	written = smpp_pdu_encode_generic_nack(
	    out, sizeof(out), pdu.sequence_number, SMPP_ESME_RINVCMDID);
	length = hex_to_bytes(
	    "00000010 80000000 00000003 0000ABCD", expected, sizeof(expected));
	assert_int_equal(written, (int)length);
	assert_memory_equal(out, expected, length);

	/* Reserved ids, also with the response bit, and between tables. */
	assert_false(smpp_pdu_is_known_command(0x0000000A));
	assert_false(smpp_pdu_is_known_command(0x80000102));
	assert_false(smpp_pdu_is_known_command(0x80000021u | 0x100));
	assert_false(smpp_pdu_is_known_command(0x00000104));
	assert_false(smpp_pdu_is_known_command(0xFFFFFFFFu));
	pdu.command_id = 0x99;
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_UNKNOWN_COMMAND);
}

static void
test_response_ids(void **state)
{
	(void)state;
	assert_int_equal(
	    smpp_pdu_response_id(SMPP_SUBMIT_SM), SMPP_SUBMIT_SM_RESP);
	assert_int_equal(smpp_pdu_response_id(SMPP_BIND_TRANSCEIVER),
	    SMPP_BIND_TRANSCEIVER_RESP);
	assert_int_equal(smpp_pdu_response_id(SMPP_DATA_SM), SMPP_DATA_SM_RESP);
	assert_int_equal(
	    smpp_pdu_response_id(SMPP_ENQUIRE_LINK), SMPP_ENQUIRE_LINK_RESP);
	assert_int_equal(smpp_pdu_response_id(SMPP_OUTBIND), 0);
	assert_int_equal(smpp_pdu_response_id(SMPP_ALERT_NOTIFICATION), 0);
	assert_int_equal(smpp_pdu_response_id(SMPP_SUBMIT_SM_RESP), 0);
	assert_int_equal(smpp_pdu_response_id(0x80000050), SMPP_GENERIC_NACK);
}

/* Bare responses: accepted, NULL first string; a bare request is not. */
static void
test_bare_responses(void **state)
{
	uint8_t wire[64];
	struct smpp_pdu pdu;
	size_t length;

	(void)state;
	length = hex_to_bytes(
	    "00000010 80000004 00000058 00000003", wire, sizeof(wire));
	assert_int_equal(smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_ROK);
	assert_int_equal(pdu.command_status, SMPP_ESME_RTHROTTLED);
	assert_null(pdu.message_id);

	length = hex_to_bytes(
	    "00000010 80000005 00000000 00000003", wire, sizeof(wire));
	assert_int_equal(smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_ROK);
	assert_null(pdu.message_id);

	length = hex_to_bytes(
	    "00000010 00000004 00000000 00000003", wire, sizeof(wire));
	assert_int_equal(
	    smpp_pdu_decode(wire, length, &pdu), SMPP_ESME_RINVCMDLEN);
}

/* ---- encode ------------------------------------------------------------- */

static void
test_encode_convenience(void **state)
{
	uint8_t out[64], expected[64], wide[128];
	size_t length;

	(void)state;
	length = hex_to_bytes(
	    "00000010 00000015 00000000 00000001", expected, sizeof(expected));
	assert_int_equal(
	    smpp_pdu_encode_enquire_link(out, sizeof(out), 1), (int)length);
	assert_memory_equal(out, expected, length);

	length = hex_to_bytes(
	    "00000010 80000015 00000000 00000002", expected, sizeof(expected));
	assert_int_equal(smpp_pdu_encode_enquire_link_resp(out, sizeof(out), 2),
	    (int)length);
	assert_memory_equal(out, expected, length);

	length = hex_to_bytes(
	    "00000010 00000006 00000000 00000003", expected, sizeof(expected));
	assert_int_equal(
	    smpp_pdu_encode_unbind(out, sizeof(out), 3), (int)length);
	assert_memory_equal(out, expected, length);

	length = hex_to_bytes(
	    "00000010 80000006 00000000 00000004", expected, sizeof(expected));
	assert_int_equal(
	    smpp_pdu_encode_unbind_resp(out, sizeof(out), 4, 0), (int)length);
	assert_memory_equal(out, expected, length);

	length = hex_to_bytes("00000017 80000004 00000000 00000005"
			      "61626331323300",
	    expected, sizeof(expected));
	assert_int_equal(smpp_pdu_encode_submit_sm_resp(
			     out, sizeof(out), 5, SMPP_ESME_ROK, "abc123"),
	    (int)length);
	assert_memory_equal(out, expected, length);

	/* With an error the body is not returned (section 4.4.2). */
	length = hex_to_bytes(
	    "00000010 80000004 00000014 00000006", expected, sizeof(expected));
	assert_int_equal(smpp_pdu_encode_submit_sm_resp(
			     out, sizeof(out), 6, SMPP_ESME_RMSGQFUL, "abc123"),
	    (int)length);
	assert_memory_equal(out, expected, length);

	length = hex_to_bytes("00000011 80000005 00000000 00000007 00",
	    expected, sizeof(expected));
	assert_int_equal(
	    smpp_pdu_encode_deliver_sm_resp(out, sizeof(out), 7, SMPP_ESME_ROK),
	    (int)length);
	assert_memory_equal(out, expected, length);

	length = hex_to_bytes("00000011 80000005 00000064 00000008 00",
	    expected, sizeof(expected));
	assert_int_equal(smpp_pdu_encode_deliver_sm_resp(
			     out, sizeof(out), 8, SMPP_ESME_RX_T_APPN),
	    (int)length);
	assert_memory_equal(out, expected, length);

	assert_int_equal(smpp_pdu_encode_generic_nack(out, 15, 1, 0),
	    SMPP_PDU_ENCODE_NO_SPACE);
	/* 64 characters fit a message_id, 65 do not. */
	assert_int_equal(
	    smpp_pdu_encode_submit_sm_resp(wide, sizeof(wide), 1, 0,
		"0123456789012345678901234567890123456789"
		"012345678901234567890123"),
	    16 + 65);
	assert_int_equal(
	    smpp_pdu_encode_submit_sm_resp(wide, sizeof(wide), 1, 0,
		"0123456789012345678901234567890123456789"
		"0123456789012345678901234"),
	    SMPP_PDU_ENCODE_FIELD_TOO_LONG);
}

static void
test_encode_capacity(void **state)
{
	struct smpp_pdu pdu;
	uint8_t out[256];
	int length, capacity;

	(void)state;
	memset(&pdu, 0, sizeof(pdu));
	build_submit_sm(&pdu);
	length = smpp_pdu_encode(&pdu, out, sizeof(out));
	assert_int_equal(length, 0x4B);
	for (capacity = 0; capacity < length; capacity++)
		assert_int_equal(smpp_pdu_encode(&pdu, out, (size_t)capacity),
		    SMPP_PDU_ENCODE_NO_SPACE);
	assert_int_equal(smpp_pdu_encode(&pdu, out, (size_t)length), length);
}

static void
test_encode_errors(void **state)
{
	struct smpp_pdu pdu;
	struct smpp_tlv tlv;
	struct smpp_destination destination = {3, 1, 1, "5678", 0};
	uint8_t out[512];

	(void)state;
	memset(&pdu, 0, sizeof(pdu));
	build_submit_sm(&pdu);
	pdu.source_addr = "123456789012345678901";
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_FIELD_TOO_LONG);

	build_submit_sm(&pdu);
	pdu.short_message = NULL;
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_INVALID_FIELD);

	build_submit_sm(&pdu);
	pdu.sm_length = 255;
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_FIELD_TOO_LONG);

	build_submit_sm(&pdu);
	pdu.validity_period = "1 day";
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_INVALID_FIELD);

	build_submit_sm(&pdu);
	tlv = smpp_tlv_octets(SMPP_TLV_MESSAGE_STATE, "\x00\x02", 2);
	pdu.tlvs = &tlv;
	pdu.tlv_count = 1;
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_INVALID_TLV);

	memset(&pdu, 0, sizeof(pdu));
	build_submit_multi(&pdu);
	pdu.destination_list = &destination;
	pdu.number_of_destinations = 1;
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_INVALID_FIELD);
	pdu.number_of_destinations = 0;
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_INVALID_FIELD);

	memset(&pdu, 0, sizeof(pdu));
	build_bind_transmitter(&pdu);
	pdu.password = "123456789";
	assert_int_equal(smpp_pdu_encode(&pdu, out, sizeof(out)),
	    SMPP_PDU_ENCODE_FIELD_TOO_LONG);

	assert_string_equal(
	    smpp_pdu_encode_error_name(SMPP_PDU_ENCODE_NO_SPACE),
	    "no space in the output buffer");
	assert_string_equal(
	    smpp_pdu_encode_error_name(-99), "unknown encode error");
}

/* decode(encode(x)) == x for built PDUs with TLVs built by the helpers. */
static void
test_round_trip_built(void **state)
{
	struct smpp_tlv tlvs[6];
	struct smpp_pdu pdu, decoded;
	uint8_t out[512];
	int length;

	(void)state;
	tlvs[0] = smpp_tlv_integer(SMPP_TLV_SAR_MSG_REF_NUM, 0xBEEF);
	tlvs[1] = smpp_tlv_integer(SMPP_TLV_SAR_TOTAL_SEGMENTS, 3);
	tlvs[2] = smpp_tlv_integer(SMPP_TLV_SAR_SEGMENT_SEQNUM, 1);
	tlvs[3] = smpp_tlv_integer(SMPP_TLV_QOS_TIME_TO_LIVE, 0x01020304);
	tlvs[4] = smpp_tlv_c_string(SMPP_TLV_RECEIPTED_MESSAGE_ID, "0A1B");
	tlvs[5] = smpp_tlv_octets(SMPP_TLV_CALLBACK_NUM, "\x01\x01+15", 5);
	assert_int_equal(tlvs[0].length, 2);
	assert_int_equal(tlvs[1].length, 1);
	assert_int_equal(tlvs[3].length, 4);
	assert_int_equal(tlvs[4].length, 5);

	memset(&pdu, 0, sizeof(pdu));
	build_submit_sm(&pdu);
	pdu.tlvs = tlvs;
	pdu.tlv_count = 6;
	length = smpp_pdu_encode(&pdu, out, sizeof(out));
	assert_true(length > 0);
	assert_int_equal(
	    smpp_pdu_decode(out, (size_t)length, &decoded), SMPP_ESME_ROK);
	assert_true(smpp_pdu_equal(&pdu, &decoded));
	/* qos_time_to_live on the wire: 0017 0004 01020304. */
	assert_memory_equal(
	    out + 62 + 6 + 5 + 5, "\x00\x17\x00\x04\x01\x02\x03\x04", 8);

	/* A difference anywhere is seen. */
	decoded.esm_class = 1;
	assert_false(smpp_pdu_equal(&pdu, &decoded));
	decoded.esm_class = 0;
	decoded.source_addr = "1235";
	assert_false(smpp_pdu_equal(&pdu, &decoded));
	decoded.source_addr = "1234";
	pdu.tlv_count = 5;
	assert_false(smpp_pdu_equal(&pdu, &decoded));
	pdu.tlv_count = 6;
	assert_true(smpp_pdu_equal(&pdu, &decoded));
}

/* ---- TLV table, status names -------------------------------------------- */

static void
test_tlv_table(void **state)
{
	const struct smpp_tlv_descriptor *descriptor;

	uint32_t tag;
	unsigned known = 0;

	(void)state;
	/* Every tag: exactly the 44 of section 5.3.2 are known, each as itself. */
	for (tag = 0; tag <= 0xFFFF; tag++) {
		descriptor = smpp_tlv_describe((uint16_t)tag);
		if (descriptor == NULL)
			continue;
		known++;
		assert_int_equal(descriptor->tag, tag);
		assert_true(descriptor->min_length <= descriptor->max_length);
		assert_string_not_equal(descriptor->name, "unknown");
	}
	assert_int_equal(known, 44);

	descriptor = smpp_tlv_describe(SMPP_TLV_RECEIPTED_MESSAGE_ID);
	assert_non_null(descriptor);
	assert_string_equal(descriptor->name, "receipted_message_id");
	assert_int_equal(descriptor->type, SMPP_TLV_TYPE_C_STRING);
	assert_int_equal(descriptor->max_length, 65);
	descriptor = smpp_tlv_describe(SMPP_TLV_DEST_TELEMATICS_ID);
	assert_int_equal(descriptor->min_length, 2);
	assert_int_equal(descriptor->max_length, 2);
	assert_string_equal(
	    smpp_tlv_name(SMPP_TLV_ITS_SESSION_INFO), "its_session_info");
	assert_string_equal(
	    smpp_tlv_name(SMPP_TLV_DEST_ADDR_SUBUNIT), "dest_addr_subunit");
	assert_string_equal(smpp_tlv_name(0x1400), "unknown");
	assert_null(smpp_tlv_describe(0x0000));
	assert_int_equal(
	    smpp_tlv_check_length(SMPP_TLV_MESSAGE_PAYLOAD, 0), SMPP_ESME_ROK);
	assert_int_equal(smpp_tlv_check_length(SMPP_TLV_MESSAGE_PAYLOAD, 65535),
	    SMPP_ESME_ROK);
	assert_int_equal(smpp_tlv_check_length(SMPP_TLV_SOURCE_PORT, 4),
	    SMPP_ESME_RINVPARLEN);
	assert_int_equal(
	    smpp_tlv_check_length(SMPP_TLV_ALERT_ON_MESSAGE_DELIVERY, 0),
	    SMPP_ESME_ROK);
	assert_int_equal(smpp_tlv_check_length(0x1400, 1000), SMPP_ESME_ROK);
}

static void
test_status_names(void **state)
{
	(void)state;
	assert_string_equal(
	    smpp_status_name(SMPP_ESME_RTHROTTLED), "ESME_RTHROTTLED");
	assert_string_equal(smpp_status_name(SMPP_ESME_ROK), "ESME_ROK");
	assert_string_equal(
	    smpp_status_name(SMPP_ESME_RUNKNOWNERR), "ESME_RUNKNOWNERR");
	assert_string_equal(smpp_status_name(0x400), "ESME_VENDOR_SPECIFIC");
	assert_string_equal(smpp_status_name(0x09), "ESME_UNKNOWN_STATUS");
	assert_string_equal(
	    smpp_status_describe(SMPP_ESME_RMSGQFUL), "Message queue full");
	assert_string_equal(smpp_status_describe(SMPP_ESME_RINVDSTADR),
	    "Invalid destination address");

	assert_true(smpp_status_is_temporary(SMPP_ESME_RTHROTTLED));
	assert_true(smpp_status_is_temporary(SMPP_ESME_RMSGQFUL));
	assert_true(smpp_status_is_temporary(SMPP_ESME_RSYSERR));
	assert_true(smpp_status_is_temporary(SMPP_ESME_RX_T_APPN));
	assert_false(smpp_status_is_temporary(SMPP_ESME_RX_P_APPN));
	assert_false(smpp_status_is_temporary(SMPP_ESME_RINVDSTADR));
	assert_false(smpp_status_is_temporary(SMPP_ESME_ROK));
	assert_false(smpp_status_is_temporary(0x450));
	assert_int_equal(
	    smpp_status_classify(SMPP_ESME_ROK), SMPP_STATUS_CLASS_OK);
	assert_int_equal(smpp_status_classify(SMPP_ESME_RINVMSGLEN),
	    SMPP_STATUS_CLASS_PERMANENT);

	assert_string_equal(smpp_command_name(SMPP_SUBMIT_SM), "submit_sm");
	assert_string_equal(
	    smpp_command_name(SMPP_DATA_SM_RESP), "data_sm_resp");
	assert_string_equal(
	    smpp_command_name(SMPP_GENERIC_NACK), "generic_nack");
	assert_string_equal(smpp_command_name(0x99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors_every_pdu),
	    cmocka_unit_test(test_vectors_cover_all_commands),
	    cmocka_unit_test(test_decode_submit_sm_fields),
	    cmocka_unit_test(test_decode_receipt_tlvs),
	    cmocka_unit_test(test_destinations_iterate),
	    cmocka_unit_test(test_submit_multi_limits),
	    cmocka_unit_test(test_frame_limits),
	    cmocka_unit_test(test_decode_command_length),
	    cmocka_unit_test(test_decode_truncated_everywhere),
	    cmocka_unit_test(test_decode_missing_terminator),
	    cmocka_unit_test(test_decode_overlong_bind_strings),
	    cmocka_unit_test(test_decode_overlong_addresses),
	    cmocka_unit_test(test_decode_short_message_length),
	    cmocka_unit_test(test_decode_bad_times),
	    cmocka_unit_test(test_decode_submit_multi_errors),
	    cmocka_unit_test(test_decode_tlv_errors),
	    cmocka_unit_test(test_unknown_tlvs_preserved),
	    cmocka_unit_test(test_unknown_command),
	    cmocka_unit_test(test_response_ids),
	    cmocka_unit_test(test_bare_responses),
	    cmocka_unit_test(test_encode_convenience),
	    cmocka_unit_test(test_encode_capacity),
	    cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_round_trip_built),
	    cmocka_unit_test(test_tlv_table),
	    cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
