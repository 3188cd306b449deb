/*
 * smpp_status.c - names of SMPP 3.4 command_status values and command ids
 * for logs, short English descriptions, and which statuses are temporary
 * (worth a retry later) as opposed to permanent, for retry decisions.
 */
#include "smpp.h"

struct status_entry {
	uint32_t status;
	uint8_t status_class; /* enum smpp_status_class */
	const char *name;
	const char *description;
};

#define OK        SMPP_STATUS_CLASS_OK
#define TEMPORARY SMPP_STATUS_CLASS_TEMPORARY
#define PERMANENT SMPP_STATUS_CLASS_PERMANENT

/*
 * SMPP 3.4 section 5.1.3, sorted by value. Temporary: the peer is busy,
 * throttling, failing for now or wants a re-bind; the same message may
 * succeed later. Everything else, unknown values included, is permanent:
 * resending a message the peer judged wrong only repeats the refusal.
 * RDELIVERYFAILURE is refined by data_sm_resp's delivery_failure_reason.
 */
static const struct status_entry status_table[] = {
    {SMPP_ESME_ROK, OK, "ESME_ROK", "No error"},
    {SMPP_ESME_RINVMSGLEN, PERMANENT, "ESME_RINVMSGLEN",
	"Message length is invalid"},
    {SMPP_ESME_RINVCMDLEN, PERMANENT, "ESME_RINVCMDLEN",
	"Command length is invalid"},
    {SMPP_ESME_RINVCMDID, PERMANENT, "ESME_RINVCMDID", "Invalid command id"},
    {SMPP_ESME_RINVBNDSTS, TEMPORARY, "ESME_RINVBNDSTS",
	"Incorrect bind status for the command"},
    {SMPP_ESME_RALYBND, PERMANENT, "ESME_RALYBND",
	"ESME already in bound state"},
    {SMPP_ESME_RINVPRTFLG, PERMANENT, "ESME_RINVPRTFLG",
	"Invalid priority flag"},
    {SMPP_ESME_RINVREGDLVFLG, PERMANENT, "ESME_RINVREGDLVFLG",
	"Invalid registered delivery flag"},
    {SMPP_ESME_RSYSERR, TEMPORARY, "ESME_RSYSERR", "System error"},
    {SMPP_ESME_RINVSRCADR, PERMANENT, "ESME_RINVSRCADR",
	"Invalid source address"},
    {SMPP_ESME_RINVDSTADR, PERMANENT, "ESME_RINVDSTADR",
	"Invalid destination address"},
    {SMPP_ESME_RINVMSGID, PERMANENT, "ESME_RINVMSGID", "Message id is invalid"},
    {SMPP_ESME_RBINDFAIL, PERMANENT, "ESME_RBINDFAIL", "Bind failed"},
    {SMPP_ESME_RINVPASWD, PERMANENT, "ESME_RINVPASWD", "Invalid password"},
    {SMPP_ESME_RINVSYSID, PERMANENT, "ESME_RINVSYSID", "Invalid system id"},
    {SMPP_ESME_RCANCELFAIL, PERMANENT, "ESME_RCANCELFAIL", "cancel_sm failed"},
    {SMPP_ESME_RREPLACEFAIL, PERMANENT, "ESME_RREPLACEFAIL",
	"replace_sm failed"},
    {SMPP_ESME_RMSGQFUL, TEMPORARY, "ESME_RMSGQFUL", "Message queue full"},
    {SMPP_ESME_RINVSERTYP, PERMANENT, "ESME_RINVSERTYP",
	"Invalid service type"},
    {SMPP_ESME_RINVNUMDESTS, PERMANENT, "ESME_RINVNUMDESTS",
	"Invalid number of destinations"},
    {SMPP_ESME_RINVDLNAME, PERMANENT, "ESME_RINVDLNAME",
	"Invalid distribution list name"},
    {SMPP_ESME_RINVDESTFLAG, PERMANENT, "ESME_RINVDESTFLAG",
	"Invalid destination flag"},
    {SMPP_ESME_RINVSUBREP, PERMANENT, "ESME_RINVSUBREP",
	"Invalid submit with replace request"},
    {SMPP_ESME_RINVESMCLASS, PERMANENT, "ESME_RINVESMCLASS",
	"Invalid esm_class"},
    {SMPP_ESME_RCNTSUBDL, PERMANENT, "ESME_RCNTSUBDL",
	"Cannot submit to a distribution list"},
    {SMPP_ESME_RSUBMITFAIL, PERMANENT, "ESME_RSUBMITFAIL",
	"submit_sm or submit_multi failed"},
    {SMPP_ESME_RINVSRCTON, PERMANENT, "ESME_RINVSRCTON",
	"Invalid source address TON"},
    {SMPP_ESME_RINVSRCNPI, PERMANENT, "ESME_RINVSRCNPI",
	"Invalid source address NPI"},
    {SMPP_ESME_RINVDSTTON, PERMANENT, "ESME_RINVDSTTON",
	"Invalid destination address TON"},
    {SMPP_ESME_RINVDSTNPI, PERMANENT, "ESME_RINVDSTNPI",
	"Invalid destination address NPI"},
    {SMPP_ESME_RINVSYSTYP, PERMANENT, "ESME_RINVSYSTYP", "Invalid system type"},
    {SMPP_ESME_RINVREPFLAG, PERMANENT, "ESME_RINVREPFLAG",
	"Invalid replace_if_present flag"},
    {SMPP_ESME_RINVNUMMSGS, PERMANENT, "ESME_RINVNUMMSGS",
	"Invalid number of messages"},
    {SMPP_ESME_RTHROTTLED, TEMPORARY, "ESME_RTHROTTLED",
	"Throttling error: message rate exceeded"},
    {SMPP_ESME_RINVSCHED, PERMANENT, "ESME_RINVSCHED",
	"Invalid scheduled delivery time"},
    {SMPP_ESME_RINVEXPIRY, PERMANENT, "ESME_RINVEXPIRY",
	"Invalid validity period"},
    {SMPP_ESME_RINVDFTMSGID, PERMANENT, "ESME_RINVDFTMSGID",
	"Predefined message invalid or not found"},
    {SMPP_ESME_RX_T_APPN, TEMPORARY, "ESME_RX_T_APPN",
	"Receiver temporary application error"},
    {SMPP_ESME_RX_P_APPN, PERMANENT, "ESME_RX_P_APPN",
	"Receiver permanent application error"},
    {SMPP_ESME_RX_R_APPN, PERMANENT, "ESME_RX_R_APPN",
	"Receiver rejected the message"},
    {SMPP_ESME_RQUERYFAIL, PERMANENT, "ESME_RQUERYFAIL", "query_sm failed"},
    {SMPP_ESME_RINVOPTPARSTREAM, PERMANENT, "ESME_RINVOPTPARSTREAM",
	"Error in the optional part of the PDU body"},
    {SMPP_ESME_ROPTPARNOTALLWD, PERMANENT, "ESME_ROPTPARNOTALLWD",
	"Optional parameter not allowed"},
    {SMPP_ESME_RINVPARLEN, PERMANENT, "ESME_RINVPARLEN",
	"Invalid parameter length"},
    {SMPP_ESME_RMISSINGOPTPARAM, PERMANENT, "ESME_RMISSINGOPTPARAM",
	"Expected optional parameter missing"},
    {SMPP_ESME_RINVOPTPARAMVAL, PERMANENT, "ESME_RINVOPTPARAMVAL",
	"Invalid optional parameter value"},
    {SMPP_ESME_RDELIVERYFAILURE, PERMANENT, "ESME_RDELIVERYFAILURE",
	"Delivery failure"},
    {SMPP_ESME_RUNKNOWNERR, PERMANENT, "ESME_RUNKNOWNERR", "Unknown error"},
};

#define STATUS_TABLE_SIZE (sizeof(status_table) / sizeof(status_table[0]))

/* Section 5.1.3 reserves this range for SMSC vendor-specific errors. */
#define VENDOR_STATUS_FIRST 0x00000400
#define VENDOR_STATUS_LAST  0x000004FF

struct command_entry {
	uint32_t command_id;
	const char *name;
};

/* SMPP 3.4 section 5.1.2.1. */
static const struct command_entry command_table[] = {
    {SMPP_GENERIC_NACK, "generic_nack"},
    {SMPP_BIND_RECEIVER, "bind_receiver"},
    {SMPP_BIND_RECEIVER_RESP, "bind_receiver_resp"},
    {SMPP_BIND_TRANSMITTER, "bind_transmitter"},
    {SMPP_BIND_TRANSMITTER_RESP, "bind_transmitter_resp"},
    {SMPP_QUERY_SM, "query_sm"},
    {SMPP_QUERY_SM_RESP, "query_sm_resp"},
    {SMPP_SUBMIT_SM, "submit_sm"},
    {SMPP_SUBMIT_SM_RESP, "submit_sm_resp"},
    {SMPP_DELIVER_SM, "deliver_sm"},
    {SMPP_DELIVER_SM_RESP, "deliver_sm_resp"},
    {SMPP_UNBIND, "unbind"},
    {SMPP_UNBIND_RESP, "unbind_resp"},
    {SMPP_REPLACE_SM, "replace_sm"},
    {SMPP_REPLACE_SM_RESP, "replace_sm_resp"},
    {SMPP_CANCEL_SM, "cancel_sm"},
    {SMPP_CANCEL_SM_RESP, "cancel_sm_resp"},
    {SMPP_BIND_TRANSCEIVER, "bind_transceiver"},
    {SMPP_BIND_TRANSCEIVER_RESP, "bind_transceiver_resp"},
    {SMPP_OUTBIND, "outbind"},
    {SMPP_ENQUIRE_LINK, "enquire_link"},
    {SMPP_ENQUIRE_LINK_RESP, "enquire_link_resp"},
    {SMPP_SUBMIT_MULTI, "submit_multi"},
    {SMPP_SUBMIT_MULTI_RESP, "submit_multi_resp"},
    {SMPP_ALERT_NOTIFICATION, "alert_notification"},
    {SMPP_DATA_SM, "data_sm"},
    {SMPP_DATA_SM_RESP, "data_sm_resp"},
};

#define COMMAND_TABLE_SIZE (sizeof(command_table) / sizeof(command_table[0]))

/* Binary search of the sorted status table; NULL when not listed. */
static const struct status_entry *
status_lookup(uint32_t status)
{
	size_t low = 0, high = STATUS_TABLE_SIZE;

	while (low < high) {
		size_t middle = (low + high) / 2;

		if (status_table[middle].status == status)
			return &status_table[middle];
		if (status_table[middle].status < status)
			low = middle + 1;
		else
			high = middle;
	}
	return NULL;
}

const char *
smpp_status_name(uint32_t status)
{
	const struct status_entry *entry = status_lookup(status);

	if (entry != NULL)
		return entry->name;
	if (status >= VENDOR_STATUS_FIRST && status <= VENDOR_STATUS_LAST)
		return "ESME_VENDOR_SPECIFIC";
	return "ESME_UNKNOWN_STATUS";
}

const char *
smpp_status_describe(uint32_t status)
{
	const struct status_entry *entry = status_lookup(status);

	if (entry != NULL)
		return entry->description;
	if (status >= VENDOR_STATUS_FIRST && status <= VENDOR_STATUS_LAST)
		return "SMSC vendor-specific error";
	return "Reserved or unknown status";
}

enum smpp_status_class
smpp_status_classify(uint32_t status)
{
	const struct status_entry *entry = status_lookup(status);

	if (entry != NULL)
		return (enum smpp_status_class)entry->status_class;
	return SMPP_STATUS_CLASS_PERMANENT;
}

int
smpp_status_is_temporary(uint32_t status)
{
	return smpp_status_classify(status) == SMPP_STATUS_CLASS_TEMPORARY;
}

/* Linear: 27 rows, used for logs only. */
const char *
smpp_command_name(uint32_t command_id)
{
	size_t i;

	for (i = 0; i < COMMAND_TABLE_SIZE; i++)
		if (command_table[i].command_id == command_id)
			return command_table[i].name;
	return "unknown";
}
