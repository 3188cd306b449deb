/*
 * config.c - nudged.conf: INI read by libinih, interpreted through one key
 * table {section, key, type, range, default, help}. Unknown sections and
 * keys, malformed and out-of-range values are all errors naming file:line;
 * every error in the file is reported, not just the first. The same table
 * prints the configuration reference (nudged -K).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "nudged.h"

#define KEY(section, name, type, field, minimum, maximum, choices, def, help) \
	{                                                                     \
		section, name, type, offsetof(struct config, field), minimum, \
		    maximum, choices, def, help                               \
	}

#define LINK_KEY(name, type, field, minimum, maximum, choices, def, help) \
	{                                                                 \
		"link", name, type, offsetof(struct config_link, field),  \
		    minimum, maximum, choices, def, help                  \
	}

#define ACCOUNT_KEY(name, type, field, minimum, maximum, choices, def, help)   \
	{                                                                      \
		"account", name, type, offsetof(struct config_account, field), \
		    minimum, maximum, choices, def, help                       \
	}

#define LANGUAGE_KEY(name, field, maximum, help)                               \
	{                                                                      \
		"language", name, CONFIG_STRING,                               \
		    offsetof(struct config_language, field), 0, maximum, NULL, \
		    "", help                                                   \
	}

#define QUIET_KEY(name, field, maximum, help)                               \
	{                                                                   \
		"quiet", name, CONFIG_STRING,                               \
		    offsetof(struct config_quiet, field), 0, maximum, NULL, \
		    "", help                                                \
	}

#define DURATION_SECOND INT64_C(1000000)
#define SIZE_KIB        INT64_C(1024)
#define SIZE_MIB        (SIZE_KIB * 1024)
#define SIZE_GIB        (SIZE_MIB * 1024)

static const struct config_key config_key_table[] = {
    KEY("nudged", "data_dir", CONFIG_STRING, data_dir, 1, 4096, NULL, "var",
	"Directory holding the LMDB environment and the lock."),
    KEY("nudged", "pid_file", CONFIG_STRING, pid_file, 0, 4096, NULL, "",
	"Pid file; empty means DATA_DIR/nudged.pid."),
    KEY("nudged", "log_level", CONFIG_ENUM, log_level, 0, 0, "warn|info|debug",
	"info", "Least severe level that is logged."),
    KEY("nudged", "shutdown_timeout", CONFIG_DURATION, shutdown_timeout_us,
	DURATION_SECOND, 120 * DURATION_SECOND, NULL, "5s",
	"How long SIGTERM waits for unbinds and the last commit."),
    KEY("nudged", "test_clock", CONFIG_BOOLEAN, test_clock, 0, 1, NULL, "no",
	"Allow POST /v1/test/clock to move time forward (tests only)."),
    KEY("nudged", "default_country", CONFIG_STRING, default_country, 0, 2, NULL,
	"",
	"ISO 3166 code (IT, DE, US, ...) of national numbers "
	"that come without '+' and a country code."),
    KEY("nudged", "rules_dir", CONFIG_STRING, rules_dir, 0, 4096, NULL, "rules",
	"Folder of flow rule files, watched for changes; "
	"empty: no flows."),
    KEY("nudged", "organization_name", CONFIG_STRING, organization_name, 0, 100,
	NULL, "", "{{ organization.name }} in SMS templates."),
    KEY("nudged", "organization_url", CONFIG_STRING, organization_url, 0, 190,
	NULL, "", "{{ organization.url }} in SMS templates."),
    KEY("nudged", "quiet_hours", CONFIG_BOOLEAN, quiet_enabled, 0, 1, NULL,
	"yes",
	"Defer marketing SMS that fall outside the recipient's local "
	"window (profile zone, else every zone of the number's prefix)."),
    KEY("nudged", "quiet_window", CONFIG_STRING, quiet_window, 9, 11, NULL,
	"08:00-21:00",
	"Default local window [start, end) (US TCPA); [quiet CC] "
	"sections override it per country."),
    KEY("nudged", "quiet_days", CONFIG_STRING, quiet_days, 3, 40, NULL,
	"mon-sun",
	"Days the default window applies (\"mon-sat\", "
	"\"mon-fri,sun\")."),
    KEY("nudged", "quiet_fallback_zone", CONFIG_STRING, quiet_fallback_zone, 1,
	64, NULL, "UTC",
	"Zone of numbers no prefix maps to a place (+800, +870, "
	"+881 ...: satellite, non-geographic)."),
    KEY("store", "map_size", CONFIG_SIZE, store_map_size, SIZE_MIB,
	INT64_C(1) << 40, NULL, "64M",
	"Initial LMDB map size; it grows by doubling when full."),
    KEY("store", "map_resident", CONFIG_SIZE, store_map_resident, 0,
	INT64_C(1) << 40, NULL, "32M",
	"How much of the LMDB map nudged keeps mapped before it lets go of "
	"it (checked each second). Pages stay in the page cache; 0 keeps "
	"every page read mapped, so RSS grows with the store."),
    KEY("store", "max_readers", CONFIG_INTEGER, store_max_readers, 8, 4096,
	NULL, "126", "LMDB reader slots (nudged plus nudgectl processes)."),
    KEY("store", "sync", CONFIG_BOOLEAN, store_sync, 0, 1, NULL, "yes",
	"fsync every commit. 'no' loses the last commits on power loss: "
	"benchmarks only."),
    KEY("http", "listen", CONFIG_LISTEN, http_listen, 0, 0, NULL,
	"127.0.0.1:8470", "Address and port of the HTTP API."),
    KEY("http", "api_token", CONFIG_STRING, http_api_token, 0, 256, NULL, "",
	"Bearer token required on /v1/ routes; empty allows loopback only."),
    KEY("http", "max_body_size", CONFIG_SIZE, http_max_body_size, SIZE_KIB,
	64 * SIZE_MIB, NULL, "1M", "Largest request body accepted."),
    KEY("http", "timeout", CONFIG_DURATION, http_timeout_us, DURATION_SECOND,
	600 * DURATION_SECOND, NULL, "30s",
	"Idle timeout of an HTTP connection."),
    KEY("smpp", "listen", CONFIG_LISTEN, smpp_listen, 0, 0, NULL,
	"127.0.0.1:2775", "Address and port where ESMEs bind to nudged."),
    KEY("smpp", "max_pdu_length", CONFIG_SIZE, smpp_max_pdu_length, 256,
	SIZE_MIB, NULL, "64K",
	"Largest command_length accepted before the body is read."),
    KEY("smpp", "system_id", CONFIG_STRING, smpp_system_id, 1, 15, NULL,
	"nudge", "system_id nudged gives in its bind responses."),
    KEY("smpp", "bind_timeout", CONFIG_DURATION, smpp_bind_timeout_us, 100000,
	600 * DURATION_SECOND, NULL, "10s",
	"A connection that has not bound by then is closed."),
    KEY("smpp", "idle_timeout", CONFIG_DURATION, smpp_idle_timeout_us, 0,
	86400 * DURATION_SECOND, NULL, "0s",
	"Unbind a session with no traffic but enquire_link (0: never)."),
    KEY("smpp", "enquire_link", CONFIG_DURATION, smpp_enquire_link_us,
	DURATION_SECOND, 3600 * DURATION_SECOND, NULL, "30s",
	"enquire_link to an ESME after this much silence."),
    KEY("smpp", "response_timeout", CONFIG_DURATION, smpp_response_timeout_us,
	100000, 600 * DURATION_SECOND, NULL, "30s",
	"A deliver_sm or enquire_link unanswered by then fails."),
    KEY("smpp", "auth_fail_delay_after", CONFIG_INTEGER,
	smpp_auth_fail_delay_after, 1, 1000, NULL, "3",
	"Failed binds from one address before answers are delayed."),
    KEY("smpp", "auth_fail_block_after", CONFIG_INTEGER,
	smpp_auth_fail_block_after, 1, 10000, NULL, "10",
	"Failed binds from one address before it is refused outright."),
    KEY("smpp", "auth_fail_delay", CONFIG_DURATION, smpp_auth_fail_delay_us, 0,
	60 * DURATION_SECOND, NULL, "1s",
	"Delay of a bind answer to an address that keeps failing."),
    KEY("smpp", "auth_block", CONFIG_DURATION, smpp_auth_block_us,
	DURATION_SECOND, 86400 * DURATION_SECOND, NULL, "5m",
	"How long a blocked address is refused."),
    KEY("smpp", "tls_listen", CONFIG_STRING, smpp_tls_listen, 0, 80, NULL, "",
	"host:port of an SMPP-over-TLS listener; empty: none."),
    KEY("smpp", "tls_certificate", CONFIG_STRING, smpp_tls_certificate, 0, 4096,
	NULL, "", "PEM certificate chain of the TLS listener."),
    KEY("smpp", "tls_key", CONFIG_STRING, smpp_tls_key, 0, 4096, NULL, "",
	"PEM private key of the TLS listener."),
    KEY("policy", "smart_sending_window", CONFIG_DURATION,
	policy_smart_window_us, 0, 30 * 86400 * DURATION_SECOND, NULL, "24h",
	"Skip a marketing SMS to a number that got one this recently "
	"(0: off); flows may turn it off per step."),
    KEY("policy", "frequency_cap", CONFIG_INTEGER, policy_cap_count, 0,
	POLICY_SENDS_KEPT, NULL, "0",
	"At most this many marketing SMS per number per frequency_period "
	"(0: no cap)."),
    KEY("policy", "frequency_period", CONFIG_DURATION, policy_cap_period_us,
	60 * DURATION_SECOND, 30 * 86400 * DURATION_SECOND, NULL, "24h",
	"The period of frequency_cap."),
    KEY("outbox", "default_validity", CONFIG_DURATION, outbox_validity_us,
	60 * DURATION_SECOND, 7 * 86400 * DURATION_SECOND, NULL, "24h",
	"How long a message may wait to be sent when the request names "
	"no validity; then it EXPIRES unsent."),
    KEY("outbox", "max_parts", CONFIG_INTEGER, outbox_max_parts, 1, 255, NULL,
	"10", "Longest message accepted, in SMS parts."),
    KEY("outbox", "receipt_hold", CONFIG_DURATION, outbox_receipt_hold_us,
	DURATION_SECOND, 86400 * DURATION_SECOND, NULL, "10m",
	"How long a receipt that came before its submit_sm_resp waits "
	"to be matched before it counts as unmatched."),
    KEY("outbox", "mo_reassembly_timeout", CONFIG_DURATION,
	outbox_mo_timeout_us, DURATION_SECOND, 86400 * DURATION_SECOND, NULL,
	"5m", "How long the parts of a long inbound SMS wait for the rest."),
    KEY("compliance", "program_name", CONFIG_STRING, compliance_program_name, 0,
	40, NULL, "",
	"{program} in compliance texts; empty: nudged.organization_name."),
    KEY("compliance", "contact", CONFIG_STRING, compliance_contact, 0, 80, NULL,
	"", "{contact} in the HELP answer (a phone, a mail, a URL)."),
    KEY("compliance", "frequency", CONFIG_STRING, compliance_frequency, 0, 60,
	NULL, "Msg frequency varies",
	"{frequency} in the HELP and opt-in texts."),
    KEY("compliance", "from", CONFIG_STRING, compliance_from, 0, 20, NULL, "",
	"Sender of compliance replies; empty: the link's source_addr."),
    KEY("compliance", "default_language", CONFIG_STRING,
	compliance_default_language, 2, 8, NULL, "en",
	"Language of replies when neither profile nor keyword tells."),
    KEY("compliance", "wording", CONFIG_STRING, compliance_wording, 0, 31, NULL,
	"v1", "Consent wording version recorded for keyword opt-ins."),
    KEY("compliance", "code_expiry", CONFIG_DURATION, compliance_code_expiry_us,
	60 * DURATION_SECOND, 86400 * DURATION_SECOND, NULL, "10m",
	"How long a smart opt-in code may be confirmed."),
    KEY("compliance", "code_attempts", CONFIG_INTEGER, compliance_code_attempts,
	1, 20, NULL, "5", "Wrong smart opt-in codes before the code is void."),
    KEY("compliance", "stop_to_esme", CONFIG_BOOLEAN, compliance_stop_to_esme,
	0, 1, NULL, "yes",
	"Opt-out keywords still reach the ESME owning the destination."),
    LINK_KEY("host", CONFIG_STRING, host, 0, 255, NULL, "",
	"SMSC host name or address (required)."),
    LINK_KEY(
	"port", CONFIG_INTEGER, port, 1, 65535, NULL, "2775", "SMSC port."),
    LINK_KEY("system_id", CONFIG_STRING, system_id, 0, 15, NULL, "",
	"SMPP system_id (required)."),
    LINK_KEY(
	"password", CONFIG_STRING, password, 0, 8, NULL, "", "SMPP password."),
    LINK_KEY("system_type", CONFIG_STRING, system_type, 0, 12, NULL, "",
	"SMPP system_type, if the SMSC expects one."),
    LINK_KEY("bind", CONFIG_ENUM, bind, 0, 0, "transceiver|pair", "transceiver",
	"One transceiver bind, or a transmitter and a receiver."),
    LINK_KEY("tls", CONFIG_BOOLEAN, tls, 0, 1, NULL, "no",
	"Wrap the connection in TLS."),
    LINK_KEY("tls_verify", CONFIG_BOOLEAN, tls_verify, 0, 1, NULL, "yes",
	"Verify the SMSC's certificate and host name."),
    LINK_KEY("tps", CONFIG_INTEGER, tps, 0, 1000000, NULL, "0",
	"Cap in message parts per second; 0 means no cap."),
    LINK_KEY("window", CONFIG_INTEGER, window, 1, 1024, NULL, "64",
	"Submits outstanding without a response."),
    LINK_KEY("enquire_link", CONFIG_DURATION, enquire_link_us, DURATION_SECOND,
	3600 * DURATION_SECOND, NULL, "30s",
	"enquire_link after this much silence."),
    LINK_KEY("response_timeout", CONFIG_DURATION, response_timeout_us, 100000,
	600 * DURATION_SECOND, NULL, "30s",
	"A request without a response by then: the peer is dead, the "
	"message UNKNOWN."),
    LINK_KEY("bind_timeout", CONFIG_DURATION, bind_timeout_us, 100000,
	600 * DURATION_SECOND, NULL, "10s",
	"How long a bind may take before the connection is dropped."),
    LINK_KEY("reconnect_min", CONFIG_DURATION, reconnect_min_us, 10000,
	3600 * DURATION_SECOND, NULL, "1s",
	"First reconnect delay; doubles with jitter after each failure."),
    LINK_KEY("reconnect_max", CONFIG_DURATION, reconnect_max_us, 10000,
	3600 * DURATION_SECOND, NULL, "60s", "Longest reconnect delay."),
    LINK_KEY("source_addr", CONFIG_STRING, source_addr, 0, 20, NULL, "",
	"Sender used when a message names none."),
    LINK_KEY("source_ton", CONFIG_INTEGER, source_ton, 0, 6, NULL, "1",
	"source_addr_ton for numeric senders (alphanumeric ones use 5)."),
    LINK_KEY("source_npi", CONFIG_INTEGER, source_npi, 0, 18, NULL, "1",
	"source_addr_npi for numeric senders."),
    LINK_KEY("dest_ton", CONFIG_INTEGER, dest_ton, 0, 6, NULL, "1",
	"dest_addr_ton."),
    LINK_KEY("dest_npi", CONFIG_INTEGER, dest_npi, 0, 18, NULL, "1",
	"dest_addr_npi."),
    LINK_KEY("response_id_base", CONFIG_ENUM, response_id_base, 0, 0,
	"text|hex|decimal", "text",
	"How submit_sm_resp message ids are spelt."),
    LINK_KEY("receipt_id_base", CONFIG_ENUM, receipt_id_base, 0, 0,
	"text|hex|decimal", "text",
	"How receipts spell the same ids (some SMSCs answer in hex and "
	"report in decimal)."),
    LINK_KEY("split", CONFIG_ENUM, split, 0, 0, "udh|udh16|sar|payload", "udh",
	"How long messages travel: UDH parts (8- or 16-bit "
	"reference), SAR TLVs, or one message_payload."),
    LINK_KEY("routes", CONFIG_STRING, routes, 0, 190, NULL, "",
	"Destination prefixes this link serves (\"39 4915\"); empty "
	"serves any."),
    LINK_KEY("priority", CONFIG_INTEGER, priority, 0, 1000, NULL, "100",
	"Failover order among links serving a number: lowest first."),
    ACCOUNT_KEY("system_id", CONFIG_STRING, system_id, 0, 15, NULL, "",
	"The system_id this ESME binds with (required)."),
    ACCOUNT_KEY("password", CONFIG_STRING, password, 0, 8, NULL, "",
	"Its password (checked in constant time)."),
    ACCOUNT_KEY("allowed_addresses", CONFIG_STRING, allowed_addresses, 0, 190,
	NULL, "127.0.0.1/32",
	"IPv4 CIDR blocks it may bind from, space-separated."),
    ACCOUNT_KEY("max_transmitters", CONFIG_INTEGER, max_transmitters, 0, 64,
	NULL, "4", "Concurrent transmitter binds."),
    ACCOUNT_KEY("max_receivers", CONFIG_INTEGER, max_receivers, 0, 64, NULL,
	"4", "Concurrent receiver binds."),
    ACCOUNT_KEY("max_transceivers", CONFIG_INTEGER, max_transceivers, 0, 64,
	NULL, "4", "Concurrent transceiver binds."),
    ACCOUNT_KEY("tps", CONFIG_INTEGER, tps, 0, 1000000, NULL, "0",
	"Submits per second across its binds; excess gets ESME_RTHROTTLED "
	"(0: no cap)."),
    ACCOUNT_KEY("window", CONFIG_INTEGER, window, 1, 1024, NULL, "64",
	"deliver_sm sent to it without a response."),
    ACCOUNT_KEY("traffic_class", CONFIG_ENUM, traffic_class, 0, 0,
	"transactional|marketing", "transactional",
	"Class of its traffic: marketing passes the opt-out list."),
    ACCOUNT_KEY("allowed_senders", CONFIG_STRING, allowed_senders, 0, 190, NULL,
	"", "source_addr values it may use; empty allows any."),
    ACCOUNT_KEY("route", CONFIG_STRING, route, 0, 31, NULL, "",
	"Send its traffic over this link only; empty routes by "
	"destination."),
    ACCOUNT_KEY("mo_destinations", CONFIG_STRING, mo_destinations, 0, 190, NULL,
	"",
	"Short codes and long numbers whose inbound SMS go to "
	"it."),
    ACCOUNT_KEY("mo_keywords", CONFIG_STRING, mo_keywords, 0, 190, NULL, "",
	"First words of inbound SMS that go to it."),
    ACCOUNT_KEY("deliver_queue_max", CONFIG_INTEGER, deliver_queue_max, 1,
	100000000, NULL, "100000",
	"Receipts and MO kept for it while no receiver is bound."),
    ACCOUNT_KEY("deliver_expiry", CONFIG_DURATION, deliver_expiry_us,
	60 * DURATION_SECOND, 30 * 86400 * DURATION_SECOND, NULL, "72h",
	"How long a kept receipt or MO waits for a receiver."),
    ACCOUNT_KEY("deliver_retry_min", CONFIG_DURATION, deliver_retry_min_us,
	10000, 3600 * DURATION_SECOND, NULL, "1s",
	"First retry after a deliver_sm_resp error; doubles each time."),
    ACCOUNT_KEY("deliver_retry_max", CONFIG_DURATION, deliver_retry_max_us,
	10000, 86400 * DURATION_SECOND, NULL, "5m",
	"Longest retry delay of a deliver_sm."),
    LANGUAGE_KEY("opt_out_words", opt_out_words, 190,
	"Comma-separated words that opt out (STOP, ...)."),
    LANGUAGE_KEY("opt_in_words", opt_in_words, 190,
	"Words that subscribe again (START, UNSTOP, ...)."),
    LANGUAGE_KEY("help_words", help_words, 190,
	"Words answered with help_reply (HELP, INFO)."),
    LANGUAGE_KEY("confirm_words", confirm_words, 190,
	"Words that confirm a pending double opt-in (Y, YES)."),
    LANGUAGE_KEY(
	"stop_reply", stop_reply, 180, "The one confirmation of an opt-out."),
    LANGUAGE_KEY("start_reply", start_reply, 180,
	"The confirmation of a (re)subscription."),
    LANGUAGE_KEY("help_reply", help_reply, 180,
	"The answer to HELP: program, contact, frequency, rates, STOP."),
    LANGUAGE_KEY("confirm_request", confirm_request, 180,
	"Double opt-in request (\"Reply Y to confirm\")."),
    LANGUAGE_KEY("code_text", code_text, 180,
	"Smart opt-in SMS; {code} is the 6-digit code."),
    QUIET_KEY("window", window, 11,
	"This country's local window, \"08:00-22:00\"; empty: "
	"nudged.quiet_window. The section's name is an ISO 3166 code "
	"(FR): it applies to numbers with that calling code."),
    QUIET_KEY("days", days, 40,
	"Days it applies, \"mon-sat\" (no Sundays); empty: "
	"nudged.quiet_days."),
};

#define CONFIG_KEY_COUNT \
	(sizeof(config_key_table) / sizeof(config_key_table[0]))

/* Sections written [kind NAME] that may appear many times. */
struct config_section_kind {
	const char *name;
	size_t instance_size;
	size_t name_offset;  /* char * in the instance */
	size_t line_offset;  /* int in the instance */
	size_t array_offset; /* void ** in struct config */
	size_t count_offset; /* size_t in struct config */
};

static const struct config_section_kind config_named_sections[] = {
    {"link", sizeof(struct config_link), offsetof(struct config_link, name),
	offsetof(struct config_link, line), offsetof(struct config, links),
	offsetof(struct config, link_count)},
    {"account", sizeof(struct config_account),
	offsetof(struct config_account, name),
	offsetof(struct config_account, line),
	offsetof(struct config, accounts),
	offsetof(struct config, account_count)},
    {"language", sizeof(struct config_language),
	offsetof(struct config_language, name),
	offsetof(struct config_language, line),
	offsetof(struct config, languages),
	offsetof(struct config, language_count)},
    {"quiet", sizeof(struct config_quiet), offsetof(struct config_quiet, name),
	offsetof(struct config_quiet, line), offsetof(struct config, quiets),
	offsetof(struct config, quiet_count)},
};

#define CONFIG_NAMED_COUNT \
	(sizeof(config_named_sections) / sizeof(config_named_sections[0]))

/* State of one parse: the file being read, its line, and what went wrong. */
struct config_parse {
	struct config *config;
	FILE *file;
	int line;
	int errors;
	bool seen[CONFIG_KEY_COUNT]; /* in the current section */
	char current_section[128];
	void *current_instance; /* NULL: struct config */
};

static void config_error(struct config_parse *, int, const char *, ...)
    PRINTF_LIKE(3, 4);
static const struct config_section_kind *config_named_kind(
    const char *, size_t);

const struct config_key *
config_keys(size_t *count)
{
	*count = CONFIG_KEY_COUNT;
	return config_key_table;
}

static void
config_error(struct config_parse *parse, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", parse->config->path, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	parse->errors++;
}

/* Parses a number with an optional unit suffix from units[] into *result. */
static int
config_parse_scaled(const char *text, const char *const *unit_names,
    const int64_t *unit_values, int64_t *result)
{
	char *end;
	long long number;
	size_t i;

	errno = 0;
	if (!isdigit((unsigned char)*text))
		return -1;
	number = strtoll(text, &end, 10);
	if (errno != 0)
		return -1;
	for (i = 0; unit_names[i] != NULL; i++) {
		if (strcasecmp(end, unit_names[i]) == 0) {
			if (unit_values[i] != 0 &&
			    number > INT64_MAX / unit_values[i])
				return -1;
			*result = number * unit_values[i];
			return 0;
		}
	}
	return -1;
}

static int
config_parse_boolean(const char *text, int *result)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*result = 1;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*result = 0;
			return 0;
		}
	}
	return -1;
}

/* Finds text among "a|b|c"; returns its index or -1. */
static int
config_parse_enum(const char *text, const char *choices)
{
	const char *start = choices, *bar;
	size_t length;
	int index = 0;

	for (;;) {
		bar = strchr(start, '|');
		length = bar != NULL ? (size_t)(bar - start) : strlen(start);
		if (strlen(text) == length &&
		    strncasecmp(text, start, length) == 0)
			return index;
		if (bar == NULL)
			return -1;
		start = bar + 1;
		index++;
	}
}

static int
config_parse_listen(const char *text, struct config_listen *listen)
{
	const char *colon = strrchr(text, ':');
	char *end;
	long port;
	size_t host_length;

	if (colon == NULL)
		return -1;
	host_length = (size_t)(colon - text);
	if (host_length == 0 || host_length >= sizeof(listen->host))
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 ||
	    port > 65535)
		return -1;
	memcpy(listen->host, text, host_length);
	listen->host[host_length] = '\0';
	listen->port = (uint16_t)port;
	return 0;
}

/* Stores text as the value of key in base; returns an error text or NULL. */
static const char *
config_set(const struct config_key *key, void *base, const char *text)
{
	static const char *const duration_units[] = {
	    "us", "ms", "s", "m", "h", "d", NULL};
	static const int64_t duration_values[] = {1, 1000, 1000000, 60000000,
	    INT64_C(3600000000), INT64_C(86400000000)};
	static const char *const size_units[] = {"", "K", "M", "G", "T", NULL};
	static const int64_t size_values[] = {
	    1, SIZE_KIB, SIZE_MIB, SIZE_GIB, SIZE_GIB * 1024};
	char *field = (char *)base + key->offset;
	char *end;
	int64_t number;
	long long parsed;
	int flag, index;
	size_t length;

	switch (key->type) {
	case CONFIG_STRING:
		length = strlen(text);
		if ((int64_t)length < key->minimum)
			return "must not be empty";
		if ((int64_t)length > key->maximum)
			return "is too long";
		free(*(char **)field);
		if ((*(char **)field = strdup(text)) == NULL)
			fatal("config", "out-of-memory", NULL);
		return NULL;
	case CONFIG_INTEGER:
		errno = 0;
		parsed = strtoll(text, &end, 10);
		if (errno != 0 || *end != '\0' || end == text)
			return "is not an integer";
		if (parsed < key->minimum || parsed > key->maximum)
			return "is out of range";
		*(int64_t *)field = parsed;
		return NULL;
	case CONFIG_BOOLEAN:
		if (config_parse_boolean(text, &flag) == -1)
			return "is not yes or no";
		*(int *)field = flag;
		return NULL;
	case CONFIG_DURATION:
		if (config_parse_scaled(
			text, duration_units, duration_values, &number) == -1)
			return "is not a duration (like 250ms, 30s, 5m, 2h, "
			       "1d)";
		if (number < key->minimum || number > key->maximum)
			return "is out of range";
		*(uint64_t *)field = (uint64_t)number;
		return NULL;
	case CONFIG_SIZE:
		if (config_parse_scaled(
			text, size_units, size_values, &number) == -1)
			return "is not a size (like 512, 64K, 64M, 1G)";
		if (number < key->minimum || number > key->maximum)
			return "is out of range";
		*(uint64_t *)field = (uint64_t)number;
		return NULL;
	case CONFIG_ENUM:
		if ((index = config_parse_enum(text, key->choices)) == -1)
			return "is not one of the allowed words";
		*(int *)field = index;
		return NULL;
	case CONFIG_LISTEN:
		if (config_parse_listen(text, (struct config_listen *)field) ==
		    -1)
			return "is not host:port with a port from 1 to 65535";
		return NULL;
	}
	return "has an unknown type";
}

static void
config_print_range(FILE *out, const struct config_key *key)
{
	const char *choice;

	switch (key->type) {
	case CONFIG_INTEGER:
		fprintf(
		    out, "%" PRId64 " to %" PRId64, key->minimum, key->maximum);
		break;
	case CONFIG_DURATION:
		fprintf(out, "%gs to %gs", (double)key->minimum / 1e6,
		    (double)key->maximum / 1e6);
		break;
	case CONFIG_SIZE:
		fprintf(out, "%" PRId64 " to %" PRId64 " bytes", key->minimum,
		    key->maximum);
		break;
	case CONFIG_ENUM:
		/* A bare '|' would split the markdown table cell. */
		for (choice = key->choices; *choice != '\0'; choice++)
			if (*choice == '|')
				fputs(" \\| ", out);
			else
				fputc(*choice, out);
		break;
	case CONFIG_BOOLEAN:
		fprintf(out, "yes / no");
		break;
	case CONFIG_STRING:
		fprintf(out, "up to %" PRId64 " characters", key->maximum);
		break;
	case CONFIG_LISTEN:
		fprintf(out, "host:port");
		break;
	}
}

void
config_print_reference(FILE *out)
{
	const char *section = "";
	size_t i;

	fprintf(out,
	    "# nudged.conf reference\n\n"
	    "Generated from the key table in src/config.c by `nudged -K`.\n"
	    "Syntax: INI; `;` starts a comment; lines up to 199 characters.\n");
	for (i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_key_table[i];

		if (strcmp(section, key->section) != 0) {
			section = key->section;
			fprintf(out, "\n## [%s%s]\n\n", section,
			    config_named_kind(section, strlen(section)) != NULL
				? " NAME"
				: "");
			fprintf(out, "| key | default | range | meaning |\n");
			fprintf(out, "| --- | --- | --- | --- |\n");
		}
		if (key->default_value[0] != '\0')
			fprintf(out, "| `%s` | `%s` | ", key->name,
			    key->default_value);
		else
			fprintf(out, "| `%s` | (empty) | ", key->name);
		config_print_range(out, key);
		fprintf(out, " | %s |\n", key->help);
	}
}

/* Returns the named-section kind called name, or NULL. */
static const struct config_section_kind *
config_named_kind(const char *name, size_t length)
{
	size_t i;

	for (i = 0; i < CONFIG_NAMED_COUNT; i++)
		if (strlen(config_named_sections[i].name) == length &&
		    strncmp(config_named_sections[i].name, name, length) == 0)
			return &config_named_sections[i];
	return NULL;
}

static int
config_section_has_keys(const char *section)
{
	size_t i;

	for (i = 0; i < CONFIG_KEY_COUNT; i++)
		if (strcmp(config_key_table[i].section, section) == 0)
			return 1;
	return 0;
}

/* Applies the defaults of every key of section to base. */
static void
config_apply_defaults(const char *section, void *base)
{
	const char *problem;
	size_t i;

	for (i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (strcmp(config_key_table[i].section, section) != 0)
			continue;
		problem = config_set(&config_key_table[i], base,
		    config_key_table[i].default_value);
		if (problem != NULL)
			fatalx("config", "bad-default",
			    "key=%s.%s problem=\"%s\"", section,
			    config_key_table[i].name, problem);
	}
}

/* Finds the instance called name of kind, or NULL. */
static void *
config_find_instance(struct config *config,
    const struct config_section_kind *kind, const char *name)
{
	void **items = *(void ***)((char *)config + kind->array_offset);
	size_t count = *(size_t *)((char *)config + kind->count_offset), i;

	for (i = 0; i < count; i++)
		if (strcmp(*(char **)((char *)items[i] + kind->name_offset),
			name) == 0)
			return items[i];
	return NULL;
}

/* [kind NAME]: a new instance with its defaults, appended to the config. */
static void *
config_new_instance(struct config_parse *parse,
    const struct config_section_kind *kind, const char *name)
{
	void ***items = (void ***)((char *)parse->config + kind->array_offset);
	size_t *count = (size_t *)((char *)parse->config + kind->count_offset);
	void *instance;

	if ((instance = calloc(1, kind->instance_size)) == NULL)
		fatal("config", "out-of-memory", NULL);
	config_apply_defaults(kind->name, instance);
	if ((*(char **)((char *)instance + kind->name_offset) = strdup(name)) ==
	    NULL)
		fatal("config", "out-of-memory", NULL);
	*(int *)((char *)instance + kind->line_offset) = parse->line;
	*items = reallocarray(*items, *count + 1, sizeof(**items));
	if (*items == NULL)
		fatal("config", "out-of-memory", NULL);
	(*items)[(*count)++] = instance;
	return instance;
}

/* A section header: known, named when its kind wants a name, unique. */
static void
config_check_section(struct config_parse *parse, const char *section)
{
	const struct config_section_kind *kind;
	const char *space = strchr(section, ' ');
	const char *name;

	memset(parse->seen, 0, sizeof(parse->seen));
	parse->current_instance = NULL;
	snprintf(parse->current_section, sizeof(parse->current_section), "%s",
	    section);
	kind = config_named_kind(section,
	    space != NULL ? (size_t)(space - section) : strlen(section));
	if (kind == NULL) {
		if (!config_section_has_keys(section))
			config_error(parse, parse->line, "unknown section [%s]",
			    section);
		return;
	}
	if (space == NULL) {
		config_error(parse, parse->line,
		    "[%s] needs a name, as in [%s NAME]", section, section);
		return;
	}
	name = space + 1;
	if (*name == '\0' || strchr(name, ' ') != NULL) {
		config_error(parse, parse->line,
		    "[%s] needs one name without spaces", section);
		return;
	}
	if (config_find_instance(parse->config, kind, name) != NULL) {
		config_error(
		    parse, parse->line, "[%s] is defined twice", section);
		return;
	}
	parse->current_instance = config_new_instance(parse, kind, name);
}

/*
 * Syntax is checked here, line by line, because libinih reports only the
 * first malformed line: a section header must be known, and anything else
 * that is not blank or a comment must be "key = value".
 */
static void
config_check_line(struct config_parse *parse, const char *line)
{
	char section[128];
	const char *p = line, *close;
	size_t length;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '\n' || *p == '\r' || *p == ';' || *p == '#')
		return;
	if (*p == '[') {
		close = strchr(p, ']');
		length = close != NULL ? (size_t)(close - p - 1) : 0;
		if (close == NULL || length == 0 || length >= sizeof(section)) {
			config_error(
			    parse, parse->line, "malformed section header");
			snprintf(parse->current_section,
			    sizeof(parse->current_section), "-");
			return;
		}
		memcpy(section, p + 1, length);
		section[length] = '\0';
		config_check_section(parse, section);
		return;
	}
	if (strchr(p, '=') == NULL)
		config_error(parse, parse->line,
		    "expected 'key = value', '[section]' or a comment");
	else if (*p == '=')
		config_error(parse, parse->line, "missing key before '='");
}

/*
 * libinih asks us for each line; counting lines here is how every error can
 * name its line (Debian's libinih passes no line number to the handler).
 * Lines longer than the buffer are refused whole instead of being split.
 */
static char *
config_read_line(char *buffer, int size, void *stream)
{
	struct config_parse *parse = stream;
	size_t length;
	int c;

	if (fgets(buffer, size, parse->file) == NULL)
		return NULL;
	parse->line++;
	length = strlen(buffer);
	if (length > 0 && buffer[length - 1] != '\n' && !feof(parse->file)) {
		while ((c = fgetc(parse->file)) != EOF && c != '\n')
			;
		config_error(parse, parse->line,
		    "line is longer than %d characters", size - 2);
		snprintf(buffer, size, ";\n");
		return buffer;
	}
	config_check_line(parse, buffer);
	return buffer;
}

static int
config_handle(
    void *user, const char *section, const char *name, const char *value)
{
	struct config_parse *parse = user;
	const char *problem, *kind_name = section, *space;
	char kind_buffer[64];
	void *base = parse->config;
	size_t i;

	if (section[0] == '\0') {
		config_error(parse, parse->line,
		    "key '%s' outside of any [section]", name);
		return 1;
	}
	/* Keys of a section whose header was refused were reported there. */
	if (strcmp(section, parse->current_section) != 0)
		return 1;
	if ((space = strchr(section, ' ')) != NULL) {
		if (parse->current_instance == NULL)
			return 1;
		snprintf(kind_buffer, sizeof(kind_buffer), "%.*s",
		    (int)(space - section), section);
		kind_name = kind_buffer;
		base = parse->current_instance;
	} else if (!config_section_has_keys(section))
		return 1;
	for (i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_key_table[i];

		if (strcmp(key->section, kind_name) != 0 ||
		    strcmp(key->name, name) != 0)
			continue;
		if (parse->seen[i])
			config_error(parse, parse->line, "%s.%s is set twice",
			    section, name);
		parse->seen[i] = true;
		if ((problem = config_set(key, base, value)) != NULL)
			config_error(parse, parse->line, "%s.%s: '%s' %s%s%s",
			    section, name, value, problem,
			    key->choices != NULL ? ": " : "",
			    key->choices != NULL ? key->choices : "");
		return 1;
	}
	config_error(
	    parse, parse->line, "unknown key '%s' in [%s]", name, section);
	/* Returning 1 keeps inih going, so every error gets reported. */
	return 1;
}

/* Checks of a link that need more than one key. */
static void
config_check_link(struct config_parse *parse, const struct config_link *link)
{
	if (link->host[0] == '\0')
		config_error(
		    parse, link->line, "[link %s] needs a host", link->name);
	if (link->system_id[0] == '\0')
		config_error(parse, link->line, "[link %s] needs a system_id",
		    link->name);
	if (link->reconnect_min_us > link->reconnect_max_us)
		config_error(parse, link->line,
		    "[link %s] reconnect_min is above reconnect_max",
		    link->name);
}

/* 1 if every word of a CIDR list is a.b.c.d/n (or a.b.c.d). */
static int
config_valid_cidr_list(const char *list)
{
	const char *p = list;
	unsigned int a, b, c, d, bits;
	int used;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		bits = 32;
		used = 0;
		if (sscanf(p, "%u.%u.%u.%u/%u%n", &a, &b, &c, &d, &bits,
			&used) != 5 &&
		    sscanf(p, "%u.%u.%u.%u%n", &a, &b, &c, &d, &used) != 4)
			return 0;
		if (a > 255 || b > 255 || c > 255 || d > 255 || bits > 32 ||
		    (p[used] != ' ' && p[used] != '\0'))
			return 0;
		p += used;
	}
	return 1;
}

/* Checks of an account that need more than one key. */
static void
config_check_account(
    struct config_parse *parse, const struct config_account *account)
{
	struct config *config = parse->config;
	size_t i;

	if (account->system_id[0] == '\0')
		config_error(parse, account->line,
		    "[account %s] needs a system_id", account->name);
	if (!config_valid_cidr_list(account->allowed_addresses))
		config_error(parse, account->line,
		    "[account %s] allowed_addresses is not a list of "
		    "a.b.c.d/n blocks",
		    account->name);
	if (account->deliver_retry_min_us > account->deliver_retry_max_us)
		config_error(parse, account->line,
		    "[account %s] deliver_retry_min is above deliver_retry_max",
		    account->name);
	for (i = 0; account->route[0] != '\0' && i < config->link_count; i++)
		if (strcmp(config->links[i]->name, account->route) == 0)
			break;
	if (account->route[0] != '\0' && i == config->link_count)
		config_error(parse, account->line,
		    "[account %s] route names no [link %s]", account->name,
		    account->route);
	for (i = 0; i < config->account_count; i++)
		if (config->accounts[i] != account &&
		    strcmp(config->accounts[i]->system_id,
			account->system_id) == 0 &&
		    account->system_id[0] != '\0' &&
		    config->accounts[i]->line < account->line)
			config_error(parse, account->line,
			    "[account %s] system_id '%s' is already used by "
			    "[account %s]",
			    account->name, account->system_id,
			    config->accounts[i]->name);
}

/* Quiet hours: windows and days parse, [quiet CC] names a country. */
static void
config_check_quiet(struct config_parse *parse)
{
	const struct config *config = parse->config;
	const struct config_quiet *quiet;
	unsigned int start, end, days;
	size_t i;

	if (quiet_parse_window(config->quiet_window, &start, &end) == -1)
		config_error(parse, parse->line,
		    "nudged.quiet_window '%s' is not HH:MM-HH:MM with start "
		    "before end",
		    config->quiet_window);
	if (quiet_parse_days(config->quiet_days, &days) == -1)
		config_error(parse, parse->line,
		    "nudged.quiet_days '%s' is not a list of days or ranges "
		    "such as mon-sat",
		    config->quiet_days);
	for (i = 0; i < config->quiet_count; i++) {
		quiet = config->quiets[i];
		if (phone_calling_code(quiet->name) == NULL)
			config_error(parse, quiet->line,
			    "[quiet %s] is not a country nudged knows (ISO "
			    "3166 code such as FR, US)",
			    quiet->name);
		if (quiet->window[0] != '\0' &&
		    quiet_parse_window(quiet->window, &start, &end) == -1)
			config_error(parse, quiet->line,
			    "[quiet %s] window '%s' is not HH:MM-HH:MM with "
			    "start before end",
			    quiet->name, quiet->window);
		if (quiet->days[0] != '\0' &&
		    quiet_parse_days(quiet->days, &days) == -1)
			config_error(parse, quiet->line,
			    "[quiet %s] days '%s' is not a list of days or "
			    "ranges such as mon-sat",
			    quiet->name, quiet->days);
	}
}

/* Checks that need more than one key, reported at the section's line. */
static void
config_check(struct config_parse *parse)
{
	struct config *config = parse->config;
	size_t i;

	if (config->http_listen.port == config->smpp_listen.port &&
	    strcmp(config->http_listen.host, config->smpp_listen.host) == 0)
		config_error(parse, parse->line,
		    "http.listen and smpp.listen are the same address");
	if (config->http_api_token[0] == '\0' &&
	    strcmp(config->http_listen.host, "127.0.0.1") != 0 &&
	    strcmp(config->http_listen.host, "localhost") != 0 &&
	    strcmp(config->http_listen.host, "::1") != 0)
		config_error(parse, parse->line,
		    "http.api_token must be set when http.listen is not "
		    "loopback");
	if (config->default_country[0] != '\0' &&
	    phone_calling_code(config->default_country) == NULL)
		config_error(parse, parse->line,
		    "nudged.default_country '%s' "
		    "is not a country nudged knows (ISO 3166 code such as IT, "
		    "DE, US)",
		    config->default_country);
	for (i = 0; i < config->link_count; i++)
		config_check_link(parse, config->links[i]);
	for (i = 0; i < config->account_count; i++)
		config_check_account(parse, config->accounts[i]);
	config_check_quiet(parse);
	if ((config->smpp_tls_listen[0] != '\0') !=
	    (config->smpp_tls_certificate[0] != '\0' &&
		config->smpp_tls_key[0] != '\0'))
		config_error(parse, parse->line,
		    "smpp.tls_listen needs "
		    "smpp.tls_certificate and smpp.tls_key, and they need it");
}

struct config *
config_load(const char *path, int *error_count)
{
	struct config_parse parse;
	struct config *config;
	size_t i;
	int rc;

	memset(&parse, 0, sizeof(parse));
	if ((config = calloc(1, sizeof(*config))) == NULL)
		fatal("config", "out-of-memory", NULL);
	if ((config->path = strdup(path)) == NULL)
		fatal("config", "out-of-memory", NULL);
	parse.config = config;
	for (i = 0; i < CONFIG_KEY_COUNT; i++)
		if (config_named_kind(config_key_table[i].section,
			strlen(config_key_table[i].section)) == NULL &&
		    (i == 0 || strcmp(config_key_table[i].section,
				   config_key_table[i - 1].section) != 0))
			config_apply_defaults(
			    config_key_table[i].section, config);
	if ((parse.file = fopen(path, "r")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		parse.errors++;
		goto fail;
	}
	/* Debian's inih joins indented lines to the previous value; we don't. */
	ini_allow_multiline = false;
	rc = ini_parse_stream(config_read_line, &parse, config_handle, &parse);
	fclose(parse.file);
	/* rc > 0 is a malformed line config_check_line() already named. */
	if (rc < 0)
		config_error(&parse, 0, "cannot be read");
	config_check(&parse);
	if (parse.errors > 0)
		goto fail;
	*error_count = 0;
	return config;
fail:
	*error_count = parse.errors;
	config_free(config);
	return NULL;
}

/* Frees the string values of section's keys held in base. */
static void
config_free_strings(const char *section, void *base)
{
	size_t i;

	for (i = 0; i < CONFIG_KEY_COUNT; i++)
		if (config_key_table[i].type == CONFIG_STRING &&
		    strcmp(config_key_table[i].section, section) == 0)
			free(*(char **)((char *)base +
					config_key_table[i].offset));
}

void
config_free(struct config *config)
{
	const struct config_section_kind *kind;
	void **items;
	size_t i, j, count;

	if (config == NULL)
		return;
	for (i = 0; i < CONFIG_KEY_COUNT; i++)
		if (config_named_kind(config_key_table[i].section,
			strlen(config_key_table[i].section)) == NULL &&
		    config_key_table[i].type == CONFIG_STRING)
			free(*(char **)((char *)config +
					config_key_table[i].offset));
	for (i = 0; i < CONFIG_NAMED_COUNT; i++) {
		kind = &config_named_sections[i];
		items = *(void ***)((char *)config + kind->array_offset);
		count = *(size_t *)((char *)config + kind->count_offset);
		for (j = 0; j < count; j++) {
			config_free_strings(kind->name, items[j]);
			free(*(char **)((char *)items[j] + kind->name_offset));
			free(items[j]);
		}
		free(items);
	}
	free(config->path);
	free(config);
}
