/*
 * test_smpp_crosscheck.c - the smpp/ codec against an independent one,
 * libsmpp34 (Debian's libsmpp34-dev). Each PDU goes both ways: encoded by
 * smpp/ and unpacked by libsmpp34, packed by libsmpp34 and decoded by
 * smpp/, compared field by field; and both encoders must produce the same
 * bytes for the same values.
 *
 * libsmpp34 quirks handled here: it keeps its errors in global strings
 * (smpp34_strerror), it builds TLV and destination lists by prepending (the
 * unpacked lists come out in reverse wire order) and allocates them (freed
 * with destroy_tlv / destroy_dad / destroy_udad), it refuses a sequence
 * number of 0 and unlisted TON/NPI values, it wants a buffer strictly larger
 * than the PDU when packing, and its deliver_sm only takes empty
 * schedule_delivery_time and validity_period.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <libsmpp34/smpp34.h>
#include <libsmpp34/smpp34_structs.h>
#include <libsmpp34/smpp34_params.h>

#include "smpp.h"

#define BUFFER_SIZE 2048
#define MAX_LIST    16

/* One PDU type: how to build it on each side, compare, free. */
struct crosscheck {
	const char *name;
	size_t their_size;
	void (*build_ours)(struct smpp_pdu *pdu);
	void (*build_theirs)(void *theirs);
	void (*compare)(const struct smpp_pdu *ours, const void *theirs);
	void (*release)(void *theirs);
};

/* ---- comparison helpers ------------------------------------------------- */

#define ASSERT_HEADER(ours, theirs)                                         \
	do {                                                                \
		assert_int_equal((ours)->command_id, (theirs)->command_id); \
		assert_int_equal(                                           \
		    (ours)->command_status, (theirs)->command_status);      \
		assert_int_equal(                                           \
		    (ours)->sequence_number, (theirs)->sequence_number);    \
	} while (0)

static void
assert_text(const char *ours, const uint8_t *theirs)
{
	assert_string_equal(ours != NULL ? ours : "", (const char *)theirs);
}

static void
assert_short_message(
    const struct smpp_pdu *ours, uint8_t their_length, const uint8_t *theirs)
{
	assert_int_equal(ours->sm_length, their_length);
	if (their_length > 0)
		assert_memory_equal(ours->short_message, theirs, their_length);
}

/* Their list is in reverse wire order: turn it back. */
static size_t
their_tlvs_in_wire_order(tlv_t *head, tlv_t **out)
{
	size_t count = 0, i;

	for (; head != NULL; head = head->next) {
		assert_true(count < MAX_LIST);
		out[count++] = head;
	}
	for (i = 0; i < count / 2; i++) {
		tlv_t *swap = out[i];

		out[i] = out[count - 1 - i];
		out[count - 1 - i] = swap;
	}
	return count;
}

/*
 * Their list must be in wire order when it was built for packing, reverse
 * when it came from unpacking; reverse_their_list says which.
 */
static void
assert_tlvs(const struct smpp_pdu *ours, tlv_t *theirs, int reversed)
{
	tlv_t *their_list[MAX_LIST];
	struct smpp_tlv tlv;
	size_t count = 0, i = 0, cursor = 0;

	if (reversed)
		count = their_tlvs_in_wire_order(theirs, their_list);
	else
		for (; theirs != NULL; theirs = theirs->next)
			their_list[count++] = theirs;
	while (smpp_pdu_next_tlv(ours, &cursor, &tlv)) {
		const struct smpp_tlv_descriptor *descriptor;
		tlv_t *their = their_list[i];

		assert_true(i < count);
		assert_int_equal(tlv.tag, their->tag);
		assert_int_equal(tlv.length, their->length);
		descriptor = smpp_tlv_describe(tlv.tag);
		if (descriptor != NULL &&
		    descriptor->type == SMPP_TLV_TYPE_INTEGER) {
			if (tlv.length == 1)
				assert_int_equal(
				    tlv.integer, their->value.val08);
			else if (tlv.length == 2)
				assert_int_equal(
				    tlv.integer, their->value.val16);
			else
				assert_int_equal(
				    tlv.integer, their->value.val32);
		} else if (tlv.length > 0) {
			assert_memory_equal(
			    tlv.value, their->value.octet, tlv.length);
		}
		i++;
	}
	assert_int_equal(i, count);
}

/* ---- the PDUs ----------------------------------------------------------- */

static void
ours_generic_nack(struct smpp_pdu *p)
{
	p->command_id = SMPP_GENERIC_NACK;
	p->command_status = SMPP_ESME_RINVCMDID;
	p->sequence_number = 11;
}

static void
theirs_generic_nack(void *v)
{
	generic_nack_t *t = v;

	t->command_id = GENERIC_NACK;
	t->command_status = ESME_RINVCMDID;
	t->sequence_number = 11;
}

static void
compare_generic_nack(const struct smpp_pdu *ours, const void *v)
{
	const generic_nack_t *t = v;

	ASSERT_HEADER(ours, t);
}

static void
ours_enquire_link(struct smpp_pdu *p)
{
	p->command_id = SMPP_ENQUIRE_LINK;
	p->sequence_number = 0x7FFFFFFF;
}

static void
theirs_enquire_link(void *v)
{
	enquire_link_t *t = v;

	t->command_id = ENQUIRE_LINK;
	t->sequence_number = 0x7FFFFFFF;
}

static void
compare_enquire_link(const struct smpp_pdu *ours, const void *v)
{
	const enquire_link_t *t = v;

	ASSERT_HEADER(ours, t);
}

static void
ours_enquire_link_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_ENQUIRE_LINK_RESP;
	p->sequence_number = 12;
}

static void
theirs_enquire_link_resp(void *v)
{
	enquire_link_resp_t *t = v;

	t->command_id = ENQUIRE_LINK_RESP;
	t->sequence_number = 12;
}

static void
compare_enquire_link_resp(const struct smpp_pdu *ours, const void *v)
{
	const enquire_link_resp_t *t = v;

	ASSERT_HEADER(ours, t);
}

static void
ours_unbind(struct smpp_pdu *p)
{
	p->command_id = SMPP_UNBIND;
	p->sequence_number = 13;
}

static void
theirs_unbind(void *v)
{
	unbind_t *t = v;

	t->command_id = UNBIND;
	t->sequence_number = 13;
}

static void
compare_unbind(const struct smpp_pdu *ours, const void *v)
{
	const unbind_t *t = v;

	ASSERT_HEADER(ours, t);
}

static void
ours_unbind_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_UNBIND_RESP;
	p->sequence_number = 13;
}

static void
theirs_unbind_resp(void *v)
{
	unbind_resp_t *t = v;

	t->command_id = UNBIND_RESP;
	t->sequence_number = 13;
}

static void
compare_unbind_resp(const struct smpp_pdu *ours, const void *v)
{
	const unbind_resp_t *t = v;

	ASSERT_HEADER(ours, t);
}

static void
ours_bind_transceiver(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_TRANSCEIVER;
	p->sequence_number = 1;
	p->system_id = "nudge-esme";
	p->password = "s3cret";
	p->system_type = "SMPP";
	p->interface_version = SMPP_INTERFACE_VERSION;
	p->addr_ton = 1;
	p->addr_npi = 1;
	p->address_range = "^44";
}

static void
theirs_bind_transceiver(void *v)
{
	bind_transceiver_t *t = v;

	t->command_id = BIND_TRANSCEIVER;
	t->sequence_number = 1;
	strcpy((char *)t->system_id, "nudge-esme");
	strcpy((char *)t->password, "s3cret");
	strcpy((char *)t->system_type, "SMPP");
	t->interface_version = SMPP_VERSION;
	t->addr_ton = TON_International;
	t->addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)t->address_range, "^44");
}

static void
compare_bind_transceiver(const struct smpp_pdu *ours, const void *v)
{
	const bind_transceiver_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->system_id, t->system_id);
	assert_text(ours->password, t->password);
	assert_text(ours->system_type, t->system_type);
	assert_int_equal(ours->interface_version, t->interface_version);
	assert_int_equal(ours->addr_ton, t->addr_ton);
	assert_int_equal(ours->addr_npi, t->addr_npi);
	assert_text(ours->address_range, t->address_range);
}

static void
ours_bind_transmitter(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_TRANSMITTER;
	p->sequence_number = 2;
	p->system_id = "smppclient1";
	p->password = "password";
	p->interface_version = SMPP_INTERFACE_VERSION;
}

static void
theirs_bind_transmitter(void *v)
{
	bind_transmitter_t *t = v;

	t->command_id = BIND_TRANSMITTER;
	t->sequence_number = 2;
	strcpy((char *)t->system_id, "smppclient1");
	strcpy((char *)t->password, "password");
	t->interface_version = SMPP_VERSION;
}

static void
compare_bind_transmitter(const struct smpp_pdu *ours, const void *v)
{
	const bind_transmitter_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->system_id, t->system_id);
	assert_text(ours->password, t->password);
	assert_text(ours->system_type, t->system_type);
	assert_int_equal(ours->interface_version, t->interface_version);
	assert_text(ours->address_range, t->address_range);
}

static const struct smpp_tlv our_bind_resp_tlvs[] = {
    {SMPP_TLV_SC_INTERFACE_VERSION, 1, 0x34, NULL},
};

static tlv_t their_bind_resp_tlv = {
    .tag = TLVID_sc_interface_version,
    .length = 1,
    .value.val08 = 0x34,
};

static void
ours_bind_transceiver_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_BIND_TRANSCEIVER_RESP;
	p->sequence_number = 1;
	p->system_id = "nudged";
	p->tlvs = our_bind_resp_tlvs;
	p->tlv_count = 1;
}

static void
theirs_bind_transceiver_resp(void *v)
{
	bind_transceiver_resp_t *t = v;

	t->command_id = BIND_TRANSCEIVER_RESP;
	t->sequence_number = 1;
	strcpy((char *)t->system_id, "nudged");
	t->tlv = &their_bind_resp_tlv;
}

static void
compare_bind_transceiver_resp(const struct smpp_pdu *ours, const void *v)
{
	const bind_transceiver_resp_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->system_id, t->system_id);
	assert_tlvs(ours, t->tlv, t->tlv != &their_bind_resp_tlv);
}

static void
release_bind_transceiver_resp(void *v)
{
	destroy_tlv(((bind_transceiver_resp_t *)v)->tlv);
}

static void
ours_outbind(struct smpp_pdu *p)
{
	p->command_id = SMPP_OUTBIND;
	p->sequence_number = 3;
	p->system_id = "smsc";
	p->password = "pw";
}

static void
theirs_outbind(void *v)
{
	outbind_t *t = v;

	t->command_id = OUTBIND;
	t->sequence_number = 3;
	strcpy((char *)t->system_id, "smsc");
	strcpy((char *)t->password, "pw");
}

static void
compare_outbind(const struct smpp_pdu *ours, const void *v)
{
	const outbind_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->system_id, t->system_id);
	assert_text(ours->password, t->password);
}

/* 160 GSM characters, the common single-part marketing SMS. */
static const char long_text[] =
    "Your cart is waiting! Complete your order today and get 10% off "
    "with code SAVE10. Free shipping over 50 EUR. Reply STOP to opt out "
    "of marketing texts. T&C app";

static const uint8_t callback_number[] = {0x01, 0x01, '4', '4', '7', '7'};

static const struct smpp_tlv our_submit_sm_tlvs[] = {
    {SMPP_TLV_USER_MESSAGE_REFERENCE, 2, 0x0102, NULL},
    {SMPP_TLV_SAR_MSG_REF_NUM, 2, 0xBEEF, NULL},
    {SMPP_TLV_SAR_TOTAL_SEGMENTS, 1, 2, NULL},
    {SMPP_TLV_SAR_SEGMENT_SEQNUM, 1, 1, NULL},
    {SMPP_TLV_CALLBACK_NUM, sizeof(callback_number), 0, callback_number},
};

static tlv_t their_submit_sm_tlvs[5];

/* Their list for packing, in wire order, rebuilt for every use. */
static tlv_t *
their_submit_sm_tlv_list(void)
{
	tlv_t *t = their_submit_sm_tlvs;

	memset(their_submit_sm_tlvs, 0, sizeof(their_submit_sm_tlvs));
	t[0].tag = TLVID_user_message_reference;
	t[0].length = 2;
	t[0].value.val16 = 0x0102;
	t[1].tag = TLVID_sar_msg_ref_num;
	t[1].length = 2;
	t[1].value.val16 = 0xBEEF;
	t[2].tag = TLVID_sar_total_segments;
	t[2].length = 1;
	t[2].value.val08 = 2;
	t[3].tag = TLVID_sar_segment_seqnum;
	t[3].length = 1;
	t[3].value.val08 = 1;
	t[4].tag = TLVID_callback_num;
	t[4].length = sizeof(callback_number);
	memcpy(t[4].value.octet, callback_number, sizeof(callback_number));
	t[0].next = &t[1];
	t[1].next = &t[2];
	t[2].next = &t[3];
	t[3].next = &t[4];
	return t;
}

static void
ours_submit_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_SM;
	p->sequence_number = 0x100;
	p->service_type = "CMT";
	p->source_addr_ton = 5;
	p->source_addr_npi = 0;
	p->source_addr = "NudgeShop";
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	p->destination_addr = "447700900123";
	p->esm_class = 0;
	p->protocol_id = 0;
	p->priority_flag = 1;
	p->schedule_delivery_time = "240102030405000+";
	p->validity_period = "000002000000000R";
	p->registered_delivery = 1;
	p->data_coding = 0;
	p->sm_length = sizeof(long_text) - 1;
	p->short_message = (const uint8_t *)long_text;
	p->tlvs = our_submit_sm_tlvs;
	p->tlv_count = 5;
}

static void
theirs_submit_sm(void *v)
{
	submit_sm_t *t = v;

	t->command_id = SUBMIT_SM;
	t->sequence_number = 0x100;
	strcpy((char *)t->service_type, "CMT");
	t->source_addr_ton = TON_Alphanumeric;
	t->source_addr_npi = NPI_Unknown;
	strcpy((char *)t->source_addr, "NudgeShop");
	t->dest_addr_ton = TON_International;
	t->dest_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)t->destination_addr, "447700900123");
	t->priority_flag = 1;
	strcpy((char *)t->schedule_delivery_time, "240102030405000+");
	strcpy((char *)t->validity_period, "000002000000000R");
	t->registered_delivery = 1;
	t->sm_length = sizeof(long_text) - 1;
	memcpy(t->short_message, long_text, sizeof(long_text) - 1);
	t->tlv = their_submit_sm_tlv_list();
}

static void
compare_submit_sm(const struct smpp_pdu *ours, const void *v)
{
	const submit_sm_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->service_type, t->service_type);
	assert_int_equal(ours->source_addr_ton, t->source_addr_ton);
	assert_int_equal(ours->source_addr_npi, t->source_addr_npi);
	assert_text(ours->source_addr, t->source_addr);
	assert_int_equal(ours->dest_addr_ton, t->dest_addr_ton);
	assert_int_equal(ours->dest_addr_npi, t->dest_addr_npi);
	assert_text(ours->destination_addr, t->destination_addr);
	assert_int_equal(ours->esm_class, t->esm_class);
	assert_int_equal(ours->protocol_id, t->protocol_id);
	assert_int_equal(ours->priority_flag, t->priority_flag);
	assert_text(ours->schedule_delivery_time, t->schedule_delivery_time);
	assert_text(ours->validity_period, t->validity_period);
	assert_int_equal(ours->registered_delivery, t->registered_delivery);
	assert_int_equal(
	    ours->replace_if_present_flag, t->replace_if_present_flag);
	assert_int_equal(ours->data_coding, t->data_coding);
	assert_int_equal(ours->sm_default_msg_id, t->sm_default_msg_id);
	assert_short_message(ours, t->sm_length, t->short_message);
	assert_tlvs(ours, t->tlv, t->tlv != their_submit_sm_tlvs);
}

static void
release_submit_sm(void *v)
{
	destroy_tlv(((submit_sm_t *)v)->tlv);
}

static void
ours_submit_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_SM_RESP;
	p->sequence_number = 0x100;
	p->message_id = "5f3a9c21-0001";
}

static void
theirs_submit_sm_resp(void *v)
{
	submit_sm_resp_t *t = v;

	t->command_id = SUBMIT_SM_RESP;
	t->sequence_number = 0x100;
	strcpy((char *)t->message_id, "5f3a9c21-0001");
}

static void
compare_submit_sm_resp(const struct smpp_pdu *ours, const void *v)
{
	const submit_sm_resp_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->message_id, t->message_id);
}

/* An error response goes without body, on both sides. */
static void
ours_submit_sm_resp_throttled(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_SM_RESP;
	p->command_status = SMPP_ESME_RTHROTTLED;
	p->sequence_number = 0x101;
}

static void
theirs_submit_sm_resp_throttled(void *v)
{
	submit_sm_resp_t *t = v;

	t->command_id = SUBMIT_SM_RESP;
	t->command_status = ESME_RTHROTTLED;
	t->sequence_number = 0x101;
}

static void
compare_submit_sm_resp_throttled(const struct smpp_pdu *ours, const void *v)
{
	const submit_sm_resp_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_null(ours->message_id);
	assert_string_equal((const char *)t->message_id, "");
}

static const char receipt_text[] =
    "id:5f3a9c21-0001 sub:001 dlvrd:001 submit date:2401020304 "
    "done date:2401020305 stat:DELIVRD err:000 text:Your cart is wai";
static const uint8_t receipted[] = "5f3a9c21-0001";
static const uint8_t network_error[] = {0x03, 0x00, 0x00};
static const uint8_t vendor_bytes[] = {0xDE, 0xAD};

static const struct smpp_tlv our_deliver_sm_tlvs[] = {
    {SMPP_TLV_RECEIPTED_MESSAGE_ID, sizeof(receipted), 0, receipted},
    {SMPP_TLV_MESSAGE_STATE, 1, 2, NULL},
    {SMPP_TLV_NETWORK_ERROR_CODE, 3, 0, network_error},
    {0x1401, 2, 0, vendor_bytes},
};

static tlv_t their_deliver_sm_tlvs[4];

static tlv_t *
their_deliver_sm_tlv_list(void)
{
	tlv_t *t = their_deliver_sm_tlvs;

	memset(their_deliver_sm_tlvs, 0, sizeof(their_deliver_sm_tlvs));
	t[0].tag = TLVID_receipted_message_id;
	t[0].length = sizeof(receipted);
	memcpy(t[0].value.octet, receipted, sizeof(receipted));
	t[1].tag = TLVID_message_state;
	t[1].length = 1;
	t[1].value.val08 = 2;
	t[2].tag = TLVID_network_error_code;
	t[2].length = 3;
	memcpy(t[2].value.octet, network_error, 3);
	t[3].tag = 0x1401;
	t[3].length = 2;
	memcpy(t[3].value.octet, vendor_bytes, 2);
	t[0].next = &t[1];
	t[1].next = &t[2];
	t[2].next = &t[3];
	return t;
}

static void
ours_deliver_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_DELIVER_SM;
	p->sequence_number = 0x200;
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "447700900123";
	p->dest_addr_ton = 5;
	p->destination_addr = "NudgeShop";
	p->esm_class = SMPP_ESM_CLASS_DELIVERY_RECEIPT;
	p->sm_length = sizeof(receipt_text) - 1;
	p->short_message = (const uint8_t *)receipt_text;
	p->tlvs = our_deliver_sm_tlvs;
	p->tlv_count = 4;
}

static void
theirs_deliver_sm(void *v)
{
	deliver_sm_t *t = v;

	t->command_id = DELIVER_SM;
	t->sequence_number = 0x200;
	t->source_addr_ton = TON_International;
	t->source_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)t->source_addr, "447700900123");
	t->dest_addr_ton = TON_Alphanumeric;
	strcpy((char *)t->destination_addr, "NudgeShop");
	t->esm_class = SMPP34_DELIVERY_RECEIPT;
	t->sm_length = sizeof(receipt_text) - 1;
	memcpy(t->short_message, receipt_text, sizeof(receipt_text) - 1);
	t->tlv = their_deliver_sm_tlv_list();
}

static void
compare_deliver_sm(const struct smpp_pdu *ours, const void *v)
{
	const deliver_sm_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->service_type, t->service_type);
	assert_int_equal(ours->source_addr_ton, t->source_addr_ton);
	assert_int_equal(ours->source_addr_npi, t->source_addr_npi);
	assert_text(ours->source_addr, t->source_addr);
	assert_int_equal(ours->dest_addr_ton, t->dest_addr_ton);
	assert_int_equal(ours->dest_addr_npi, t->dest_addr_npi);
	assert_text(ours->destination_addr, t->destination_addr);
	assert_int_equal(ours->esm_class, t->esm_class);
	assert_text(ours->schedule_delivery_time, t->schedule_delivery_time);
	assert_text(ours->validity_period, t->validity_period);
	assert_int_equal(ours->data_coding, t->data_coding);
	assert_short_message(ours, t->sm_length, t->short_message);
	assert_tlvs(ours, t->tlv, t->tlv != their_deliver_sm_tlvs);
}

static void
release_deliver_sm(void *v)
{
	destroy_tlv(((deliver_sm_t *)v)->tlv);
}

static void
ours_deliver_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_DELIVER_SM_RESP;
	p->sequence_number = 0x200;
	p->message_id = "";
}

static void
theirs_deliver_sm_resp(void *v)
{
	deliver_sm_resp_t *t = v;

	t->command_id = DELIVER_SM_RESP;
	t->sequence_number = 0x200;
}

static void
compare_deliver_sm_resp(const struct smpp_pdu *ours, const void *v)
{
	const deliver_sm_resp_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->message_id, t->message_id);
}

static void
ours_query_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_QUERY_SM;
	p->sequence_number = 0x300;
	p->message_id = "5f3a9c21-0001";
	p->source_addr_ton = 5;
	p->source_addr = "NudgeShop";
}

static void
theirs_query_sm(void *v)
{
	query_sm_t *t = v;

	t->command_id = QUERY_SM;
	t->sequence_number = 0x300;
	strcpy((char *)t->message_id, "5f3a9c21-0001");
	t->source_addr_ton = TON_Alphanumeric;
	strcpy((char *)t->source_addr, "NudgeShop");
}

static void
compare_query_sm(const struct smpp_pdu *ours, const void *v)
{
	const query_sm_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->message_id, t->message_id);
	assert_int_equal(ours->source_addr_ton, t->source_addr_ton);
	assert_int_equal(ours->source_addr_npi, t->source_addr_npi);
	assert_text(ours->source_addr, t->source_addr);
}

static void
ours_query_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_QUERY_SM_RESP;
	p->sequence_number = 0x300;
	p->message_id = "5f3a9c21-0001";
	p->final_date = "240102030506000+";
	p->message_state = 2;
	p->error_code = 0;
}

static void
theirs_query_sm_resp(void *v)
{
	query_sm_resp_t *t = v;

	t->command_id = QUERY_SM_RESP;
	t->sequence_number = 0x300;
	strcpy((char *)t->message_id, "5f3a9c21-0001");
	strcpy((char *)t->final_date, "240102030506000+");
	t->message_state = 2;
}

static void
compare_query_sm_resp(const struct smpp_pdu *ours, const void *v)
{
	const query_sm_resp_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->message_id, t->message_id);
	assert_text(ours->final_date, t->final_date);
	assert_int_equal(ours->message_state, t->message_state);
	assert_int_equal(ours->error_code, t->error_code);
}

static void
ours_cancel_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_CANCEL_SM;
	p->sequence_number = 0x400;
	p->message_id = "5f3a9c21-0001";
	p->source_addr_ton = 5;
	p->source_addr = "NudgeShop";
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	p->destination_addr = "447700900123";
}

static void
theirs_cancel_sm(void *v)
{
	cancel_sm_t *t = v;

	t->command_id = CANCEL_SM;
	t->sequence_number = 0x400;
	strcpy((char *)t->message_id, "5f3a9c21-0001");
	t->source_addr_ton = TON_Alphanumeric;
	strcpy((char *)t->source_addr, "NudgeShop");
	t->dest_addr_ton = TON_International;
	t->dest_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)t->destination_addr, "447700900123");
}

static void
compare_cancel_sm(const struct smpp_pdu *ours, const void *v)
{
	const cancel_sm_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->service_type, t->service_type);
	assert_text(ours->message_id, t->message_id);
	assert_int_equal(ours->source_addr_ton, t->source_addr_ton);
	assert_int_equal(ours->source_addr_npi, t->source_addr_npi);
	assert_text(ours->source_addr, t->source_addr);
	assert_int_equal(ours->dest_addr_ton, t->dest_addr_ton);
	assert_int_equal(ours->dest_addr_npi, t->dest_addr_npi);
	assert_text(ours->destination_addr, t->destination_addr);
}

static void
ours_replace_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_REPLACE_SM;
	p->sequence_number = 0x500;
	p->message_id = "5f3a9c21-0001";
	p->source_addr_ton = 5;
	p->source_addr = "NudgeShop";
	p->validity_period = "240103000000000+";
	p->registered_delivery = 1;
	p->sm_length = 11;
	p->short_message = (const uint8_t *)"New text!!!";
}

static void
theirs_replace_sm(void *v)
{
	replace_sm_t *t = v;

	t->command_id = REPLACE_SM;
	t->sequence_number = 0x500;
	strcpy((char *)t->message_id, "5f3a9c21-0001");
	t->source_addr_ton = TON_Alphanumeric;
	strcpy((char *)t->source_addr, "NudgeShop");
	strcpy((char *)t->validity_period, "240103000000000+");
	t->registered_delivery = 1;
	t->sm_length = 11;
	memcpy(t->short_message, "New text!!!", 11);
}

static void
compare_replace_sm(const struct smpp_pdu *ours, const void *v)
{
	const replace_sm_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->message_id, t->message_id);
	assert_int_equal(ours->source_addr_ton, t->source_addr_ton);
	assert_text(ours->source_addr, t->source_addr);
	assert_text(ours->schedule_delivery_time, t->schedule_delivery_time);
	assert_text(ours->validity_period, t->validity_period);
	assert_int_equal(ours->registered_delivery, t->registered_delivery);
	assert_int_equal(ours->sm_default_msg_id, t->sm_default_msg_id);
	assert_short_message(ours, t->sm_length, t->short_message);
}

static const uint8_t payload_text[] = "A message_payload longer than one "
				      "short message could ever carry, "
				      "sent as data_sm over SMPP 3.4 ...";

static const struct smpp_tlv our_data_sm_tlvs[] = {
    {SMPP_TLV_SOURCE_PORT, 2, 9200, NULL},
    {SMPP_TLV_QOS_TIME_TO_LIVE, 4, 86400, NULL},
    {SMPP_TLV_MESSAGE_PAYLOAD, sizeof(payload_text) - 1, 0, payload_text},
};

static tlv_t their_data_sm_tlvs[3];

static tlv_t *
their_data_sm_tlv_list(void)
{
	tlv_t *t = their_data_sm_tlvs;

	memset(their_data_sm_tlvs, 0, sizeof(their_data_sm_tlvs));
	t[0].tag = TLVID_source_port;
	t[0].length = 2;
	t[0].value.val16 = 9200;
	t[1].tag = TLVID_qos_time_to_live;
	t[1].length = 4;
	t[1].value.val32 = 86400;
	t[2].tag = TLVID_message_payload;
	t[2].length = sizeof(payload_text) - 1;
	memcpy(t[2].value.octet, payload_text, sizeof(payload_text) - 1);
	t[0].next = &t[1];
	t[1].next = &t[2];
	return t;
}

static void
ours_data_sm(struct smpp_pdu *p)
{
	p->command_id = SMPP_DATA_SM;
	p->sequence_number = 0x600;
	p->service_type = "WAP";
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "447700900999";
	p->dest_addr_ton = 1;
	p->dest_addr_npi = 1;
	p->destination_addr = "447700900123";
	p->esm_class = 0;
	p->registered_delivery = 1;
	p->data_coding = SMPP_CODING_BINARY_8BIT;
	p->tlvs = our_data_sm_tlvs;
	p->tlv_count = 3;
}

static void
theirs_data_sm(void *v)
{
	data_sm_t *t = v;

	t->command_id = DATA_SM;
	t->sequence_number = 0x600;
	strcpy((char *)t->service_type, "WAP");
	t->source_addr_ton = TON_International;
	t->source_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)t->source_addr, "447700900999");
	t->dest_addr_ton = TON_International;
	t->dest_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)t->destination_addr, "447700900123");
	t->registered_delivery = 1;
	t->data_coding = 2;
	t->tlv = their_data_sm_tlv_list();
}

static void
compare_data_sm(const struct smpp_pdu *ours, const void *v)
{
	const data_sm_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->service_type, t->service_type);
	assert_int_equal(ours->source_addr_ton, t->source_addr_ton);
	assert_int_equal(ours->source_addr_npi, t->source_addr_npi);
	assert_text(ours->source_addr, t->source_addr);
	assert_int_equal(ours->dest_addr_ton, t->dest_addr_ton);
	assert_int_equal(ours->dest_addr_npi, t->dest_addr_npi);
	assert_text(ours->destination_addr, t->destination_addr);
	assert_int_equal(ours->esm_class, t->esm_class);
	assert_int_equal(ours->registered_delivery, t->registered_delivery);
	assert_int_equal(ours->data_coding, t->data_coding);
	assert_tlvs(ours, t->tlv, t->tlv != their_data_sm_tlvs);
}

static void
release_data_sm(void *v)
{
	destroy_tlv(((data_sm_t *)v)->tlv);
}

static void
ours_data_sm_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_DATA_SM_RESP;
	p->sequence_number = 0x600;
	p->message_id = "77";
}

static void
theirs_data_sm_resp(void *v)
{
	data_sm_resp_t *t = v;

	t->command_id = DATA_SM_RESP;
	t->sequence_number = 0x600;
	strcpy((char *)t->message_id, "77");
}

static void
compare_data_sm_resp(const struct smpp_pdu *ours, const void *v)
{
	const data_sm_resp_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_text(ours->message_id, t->message_id);
}

static const struct smpp_destination our_destinations[] = {
    {SMPP_DEST_FLAG_SME_ADDRESS, 1, 1, "447700900123", 0},
    {SMPP_DEST_FLAG_DISTRIBUTION_LIST, 0, 0, "vip-customers", 0},
    {SMPP_DEST_FLAG_SME_ADDRESS, 2, 8, "0612345678", 0},
};

static dad_t their_destinations[3];

static dad_t *
their_destination_list(void)
{
	dad_t *d = their_destinations;

	memset(their_destinations, 0, sizeof(their_destinations));
	d[0].dest_flag = DFID_SME_Address;
	d[0].value.sme.dest_addr_ton = TON_International;
	d[0].value.sme.dest_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)d[0].value.sme.destination_addr, "447700900123");
	d[1].dest_flag = DFID_Distribution_List_Name;
	strcpy((char *)d[1].value.dl_name, "vip-customers");
	d[2].dest_flag = DFID_SME_Address;
	d[2].value.sme.dest_addr_ton = TON_National;
	d[2].value.sme.dest_addr_npi = NPI_National;
	strcpy((char *)d[2].value.sme.destination_addr, "0612345678");
	d[0].next = &d[1];
	d[1].next = &d[2];
	return d;
}

static void
ours_submit_multi(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_MULTI;
	p->sequence_number = 0x700;
	p->source_addr_ton = 5;
	p->source_addr = "NudgeShop";
	p->number_of_destinations = 3;
	p->destination_list = our_destinations;
	p->registered_delivery = 1;
	p->sm_length = 12;
	p->short_message = (const uint8_t *)"Flash sale!!";
}

static void
theirs_submit_multi(void *v)
{
	submit_multi_t *t = v;

	t->command_id = SUBMIT_MULTI;
	t->sequence_number = 0x700;
	t->source_addr_ton = TON_Alphanumeric;
	strcpy((char *)t->source_addr, "NudgeShop");
	t->number_of_dests = 3;
	t->dest_addr_def = their_destination_list();
	t->registered_delivery = 1;
	t->sm_length = 12;
	memcpy(t->short_message, "Flash sale!!", 12);
}

static void
compare_submit_multi(const struct smpp_pdu *ours, const void *v)
{
	const submit_multi_t *t = v;
	struct smpp_destination destination;
	dad_t *list[MAX_LIST];
	size_t count = 0, i, cursor = 0;
	dad_t *d;

	ASSERT_HEADER(ours, t);
	assert_text(ours->source_addr, t->source_addr);
	assert_int_equal(ours->source_addr_ton, t->source_addr_ton);
	assert_int_equal(ours->number_of_destinations, t->number_of_dests);
	for (d = t->dest_addr_def; d != NULL; d = d->next)
		list[count++] = d;
	assert_int_equal(count, t->number_of_dests);
	for (i = 0; i < count; i++) {
		/* Unpacked lists come reversed; packed ones are in order. */
		dad_t *their = t->dest_addr_def == their_destinations
				   ? list[i]
				   : list[count - 1 - i];

		assert_true(
		    smpp_pdu_next_destination(ours, &cursor, &destination));
		assert_int_equal(destination.dest_flag, their->dest_flag);
		if (their->dest_flag == DFID_SME_Address) {
			assert_int_equal(destination.dest_addr_ton,
			    their->value.sme.dest_addr_ton);
			assert_int_equal(destination.dest_addr_npi,
			    their->value.sme.dest_addr_npi);
			assert_text(destination.address,
			    their->value.sme.destination_addr);
		} else {
			assert_text(destination.address, their->value.dl_name);
		}
	}
	assert_false(smpp_pdu_next_destination(ours, &cursor, &destination));
	assert_int_equal(ours->registered_delivery, t->registered_delivery);
	assert_short_message(ours, t->sm_length, t->short_message);
}

static void
release_submit_multi(void *v)
{
	destroy_dad(((submit_multi_t *)v)->dest_addr_def);
	destroy_tlv(((submit_multi_t *)v)->tlv);
}

static const struct smpp_destination our_unsuccessful[] = {
    {SMPP_DEST_FLAG_SME_ADDRESS, 1, 1, "447700900124", SMPP_ESME_RINVDSTADR},
    {SMPP_DEST_FLAG_SME_ADDRESS, 2, 8, "0612345679", SMPP_ESME_RX_P_APPN},
};

static udad_t their_unsuccessful[2];

static udad_t *
their_unsuccessful_list(void)
{
	udad_t *u = their_unsuccessful;

	memset(their_unsuccessful, 0, sizeof(their_unsuccessful));
	u[0].dest_addr_ton = TON_International;
	u[0].dest_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)u[0].destination_addr, "447700900124");
	u[0].error_status_code = ESME_RINVDSTADR;
	u[1].dest_addr_ton = TON_National;
	u[1].dest_addr_npi = NPI_National;
	strcpy((char *)u[1].destination_addr, "0612345679");
	u[1].error_status_code = ESME_RX_P_APPN;
	u[0].next = &u[1];
	return u;
}

static void
ours_submit_multi_resp(struct smpp_pdu *p)
{
	p->command_id = SMPP_SUBMIT_MULTI_RESP;
	p->sequence_number = 0x700;
	p->message_id = "multi-1";
	p->number_of_destinations = 2;
	p->destination_list = our_unsuccessful;
}

static void
theirs_submit_multi_resp(void *v)
{
	submit_multi_resp_t *t = v;

	t->command_id = SUBMIT_MULTI_RESP;
	t->sequence_number = 0x700;
	strcpy((char *)t->message_id, "multi-1");
	t->no_unsuccess = 2;
	t->unsuccess_smes = their_unsuccessful_list();
}

static void
compare_submit_multi_resp(const struct smpp_pdu *ours, const void *v)
{
	const submit_multi_resp_t *t = v;
	struct smpp_destination destination;
	udad_t *list[MAX_LIST];
	size_t count = 0, i, cursor = 0;
	udad_t *u;

	ASSERT_HEADER(ours, t);
	assert_text(ours->message_id, t->message_id);
	assert_int_equal(ours->number_of_destinations, t->no_unsuccess);
	for (u = t->unsuccess_smes; u != NULL; u = u->next)
		list[count++] = u;
	assert_int_equal(count, t->no_unsuccess);
	for (i = 0; i < count; i++) {
		udad_t *their = t->unsuccess_smes == their_unsuccessful
				    ? list[i]
				    : list[count - 1 - i];

		assert_true(
		    smpp_pdu_next_destination(ours, &cursor, &destination));
		assert_int_equal(
		    destination.dest_addr_ton, their->dest_addr_ton);
		assert_int_equal(
		    destination.dest_addr_npi, their->dest_addr_npi);
		assert_text(destination.address, their->destination_addr);
		assert_int_equal(
		    destination.error_status_code, their->error_status_code);
	}
	assert_false(smpp_pdu_next_destination(ours, &cursor, &destination));
}

static void
release_submit_multi_resp(void *v)
{
	destroy_udad(((submit_multi_resp_t *)v)->unsuccess_smes);
}

static const struct smpp_tlv our_alert_tlvs[] = {
    {SMPP_TLV_MS_AVAILABILITY_STATUS, 1, 0, NULL},
};

static tlv_t their_alert_tlv = {
    .tag = TLVID_ms_availability_status,
    .length = 1,
    .value.val08 = 0,
};

static void
ours_alert_notification(struct smpp_pdu *p)
{
	p->command_id = SMPP_ALERT_NOTIFICATION;
	p->sequence_number = 0x800;
	p->source_addr_ton = 1;
	p->source_addr_npi = 1;
	p->source_addr = "447700900123";
	p->esme_addr_ton = 1;
	p->esme_addr_npi = 1;
	p->esme_addr = "447700900000";
	p->tlvs = our_alert_tlvs;
	p->tlv_count = 1;
}

static void
theirs_alert_notification(void *v)
{
	alert_notification_t *t = v;

	t->command_id = ALERT_NOTIFICATION;
	t->sequence_number = 0x800;
	t->source_addr_ton = TON_International;
	t->source_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)t->source_addr, "447700900123");
	t->esme_addr_ton = TON_International;
	t->esme_addr_npi = NPI_ISDN_E163_E164;
	strcpy((char *)t->esme_addr, "447700900000");
	t->tlv = &their_alert_tlv;
}

static void
compare_alert_notification(const struct smpp_pdu *ours, const void *v)
{
	const alert_notification_t *t = v;

	ASSERT_HEADER(ours, t);
	assert_int_equal(ours->source_addr_ton, t->source_addr_ton);
	assert_int_equal(ours->source_addr_npi, t->source_addr_npi);
	assert_text(ours->source_addr, t->source_addr);
	assert_int_equal(ours->esme_addr_ton, t->esme_addr_ton);
	assert_int_equal(ours->esme_addr_npi, t->esme_addr_npi);
	assert_text(ours->esme_addr, t->esme_addr);
	assert_tlvs(ours, t->tlv, t->tlv != &their_alert_tlv);
}

static void
release_alert_notification(void *v)
{
	destroy_tlv(((alert_notification_t *)v)->tlv);
}

/* clang-format off */
#define CHECK(type, name, release) \
	{ #name, sizeof(type), ours_##name, theirs_##name, compare_##name, \
	    release }
/* clang-format on */

static const struct crosscheck checks[] = {
    CHECK(generic_nack_t, generic_nack, NULL),
    CHECK(enquire_link_t, enquire_link, NULL),
    CHECK(enquire_link_resp_t, enquire_link_resp, NULL),
    CHECK(unbind_t, unbind, NULL),
    CHECK(unbind_resp_t, unbind_resp, NULL),
    CHECK(bind_transceiver_t, bind_transceiver, NULL),
    CHECK(bind_transmitter_t, bind_transmitter, NULL),
    CHECK(bind_transceiver_resp_t, bind_transceiver_resp,
	release_bind_transceiver_resp),
    CHECK(outbind_t, outbind, NULL),
    CHECK(submit_sm_t, submit_sm, release_submit_sm),
    CHECK(submit_sm_resp_t, submit_sm_resp, NULL),
    CHECK(submit_sm_resp_t, submit_sm_resp_throttled, NULL),
    CHECK(deliver_sm_t, deliver_sm, release_deliver_sm),
    CHECK(deliver_sm_resp_t, deliver_sm_resp, NULL),
    CHECK(query_sm_t, query_sm, NULL),
    CHECK(query_sm_resp_t, query_sm_resp, NULL),
    CHECK(cancel_sm_t, cancel_sm, NULL),
    CHECK(replace_sm_t, replace_sm, NULL),
    CHECK(data_sm_t, data_sm, release_data_sm),
    CHECK(data_sm_resp_t, data_sm_resp, NULL),
    CHECK(submit_multi_t, submit_multi, release_submit_multi),
    CHECK(submit_multi_resp_t, submit_multi_resp, release_submit_multi_resp),
    CHECK(alert_notification_t, alert_notification, release_alert_notification),
};

#define CHECK_COUNT (sizeof(checks) / sizeof(checks[0]))

/* smpp/ encodes, libsmpp34 unpacks, fields compared. */
static void
test_ours_to_libsmpp34(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < CHECK_COUNT; i++) {
		const struct crosscheck *check = &checks[i];
		struct smpp_pdu ours;
		uint8_t wire[BUFFER_SIZE];
		void *theirs;
		int length;

		print_message("smpp/ -> libsmpp34: %s\n", check->name);
		memset(&ours, 0, sizeof(ours));
		check->build_ours(&ours);
		length = smpp_pdu_encode(&ours, wire, sizeof(wire));
		assert_true(length >= SMPP_HEADER_LENGTH);

		theirs = calloc(1, check->their_size);
		assert_non_null(theirs);
		if (smpp34_unpack2(theirs, wire, length) != 0)
			fail_msg("libsmpp34 refused %s: %s", check->name,
			    smpp34_strerror);
		check->compare(&ours, theirs);
		assert_int_equal(*(const uint32_t *)theirs, (uint32_t)length);
		if (check->release != NULL)
			check->release(theirs);
		free(theirs);
	}
}

/*
 * libsmpp34 packs, smpp/ decodes, fields compared; and smpp/ encoding the
 * same values gives the very same bytes.
 */
static void
test_libsmpp34_to_ours(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < CHECK_COUNT; i++) {
		const struct crosscheck *check = &checks[i];
		struct smpp_pdu decoded, ours;
		uint8_t wire[BUFFER_SIZE], mine[BUFFER_SIZE];
		void *theirs;
		int length = 0, my_length;

		print_message("libsmpp34 -> smpp/: %s\n", check->name);
		theirs = calloc(1, check->their_size);
		assert_non_null(theirs);
		check->build_theirs(theirs);
		if (smpp34_pack2(wire, sizeof(wire), &length, theirs) != 0)
			fail_msg("libsmpp34 cannot pack %s: %s", check->name,
			    smpp34_strerror);
		assert_int_equal(
		    smpp_pdu_decode(wire, (size_t)length, &decoded),
		    SMPP_ESME_ROK);
		check->compare(&decoded, theirs);

		memset(&ours, 0, sizeof(ours));
		check->build_ours(&ours);
		my_length = smpp_pdu_encode(&ours, mine, sizeof(mine));
		assert_int_equal(my_length, length);
		assert_memory_equal(mine, wire, (size_t)length);
		free(theirs);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ours_to_libsmpp34),
	    cmocka_unit_test(test_libsmpp34_to_ours),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
