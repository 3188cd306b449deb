/*
 * test_server.c - nudged's SMPP server side against a small ESME written
 * here with smpp/, over real sockets on 127.0.0.1, with a real event loop,
 * a real store in a mkdtemp() directory, the real outbox (its one link
 * points at a port nobody listens on, so accepted messages stay QUEUED)
 * and a configuration read by config_load(). Every loop run is bounded.
 *
 * The outbox, the store and the configuration are set up once for the
 * group (the outbox cannot be started twice in a process); each test
 * starts and frees the server, and uses its own accounts where rows kept
 * for an account would otherwise leak from one test into the next.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smpp.h"
#include "nudged.h"

#define CLIENT_BUFFER    (70 * 1024)
#define WAIT_MS          5000
#define AUTH_DELAY_US    100000 /* auth_fail_delay in these tests */
#define ACCOUNT_ESME     0      /* indexes in the [account] order below */
#define ACCOUNT_RECEIPTS 5
#define ACCOUNT_RESTART  6
#define ACCOUNT_MO       7
#define ACCOUNT_SMALL    8
#define ACCOUNT_STALE    9

/* What the whole group shares. */
static struct {
	char path[64];
	char config_path[96];
	struct event_base *base;
	struct store *store;
	struct config *config;
	uint16_t port;
} world;

/* The in-test ESME: a socket whose bytes the loop collects. */
struct client {
	int fd;
	struct event *event;
	uint8_t buffer[CLIENT_BUFFER];
	size_t length;
	int closed;
	int count_only; /* enquire_link_resp counted, then discarded */
	uint64_t counted;
	uint32_t next_sequence;
	uint8_t pdu_bytes[CLIENT_BUFFER]; /* the PDU last taken */
};

/* ---- bounded loop runs -------------------------------------------------- */

static void
deadline_expired(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Runs the loop until condition holds or milliseconds pass. */
#define RUN_UNTIL(condition, milliseconds)                                    \
	do {                                                                  \
		struct timeval run_tv_ = {                                    \
		    (milliseconds) / 1000, ((milliseconds) % 1000) * 1000};   \
		int run_expired_ = 0;                                         \
		struct event *run_timer_ =                                    \
		    evtimer_new(world.base, deadline_expired, &run_expired_); \
		assert_non_null(run_timer_);                                  \
		evtimer_add(run_timer_, &run_tv_);                            \
		while (!(condition) && !run_expired_)                         \
			event_base_loop(world.base, EVLOOP_ONCE);             \
		event_free(run_timer_);                                       \
	} while (0)

/* Lets the loop run for a while (commits, timers), whatever happens. */
static void
run_for(int milliseconds)
{
	RUN_UNTIL(0, milliseconds);
}

/* ---- the ESME ----------------------------------------------------------- */

static void
client_readable(evutil_socket_t fd, short what, void *arg)
{
	struct client *client = arg;
	ssize_t got;

	if (client->length == sizeof(client->buffer))
		return; /* the test takes PDUs out; until then, wait */
	got = recv(fd, client->buffer + client->length,
	    sizeof(client->buffer) - client->length, 0);
	if (got > 0)
		client->length += (size_t)got;
	else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
		client->closed = 1;
		event_del(client->event);
	}
	while (client->count_only && client->length >= SMPP_HEADER_LENGTH) {
		/* Only bodiless enquire_link_resp are expected here. */
		assert_int_equal(client->buffer[3], SMPP_HEADER_LENGTH);
		assert_int_equal(client->buffer[4], 0x80);
		client->counted++;
		memmove(client->buffer, client->buffer + SMPP_HEADER_LENGTH,
		    client->length - SMPP_HEADER_LENGTH);
		client->length -= SMPP_HEADER_LENGTH;
	}
}

static struct client *
client_connect(void)
{
	struct sockaddr_in address;
	struct client *client;

	client = calloc(1, sizeof(*client));
	assert_non_null(client);
	client->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(client->fd >= 0);
	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_port = htons(world.port);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(
	    connect(client->fd, (struct sockaddr *)&address, sizeof(address)),
	    0);
	assert_int_equal(fcntl(client->fd, F_SETFL, O_NONBLOCK), 0);
	client->event = event_new(world.base, client->fd, EV_READ | EV_PERSIST,
	    client_readable, client);
	assert_non_null(client->event);
	event_add(client->event, NULL);
	client->next_sequence = 1;
	return client;
}

static void
client_free(struct client *client)
{
	event_free(client->event);
	close(client->fd);
	free(client);
}

static void
client_send_raw(struct client *client, const void *bytes, size_t length)
{
	const uint8_t *p = bytes;
	ssize_t sent;

	while (length > 0) {
		sent = send(client->fd, p, length, MSG_NOSIGNAL);
		if (sent < 0 && errno == EAGAIN) {
			run_for(10);
			continue;
		}
		assert_true(sent > 0);
		p += sent;
		length -= (size_t)sent;
	}
}

/* Sends a PDU with the next sequence number; returns that number. */
static uint32_t
client_send(struct client *client, struct smpp_pdu *pdu)
{
	uint8_t buffer[4096];
	int length;

	pdu->sequence_number = client->next_sequence++;
	length = smpp_pdu_encode(pdu, buffer, sizeof(buffer));
	assert_true(length > 0);
	client_send_raw(client, buffer, (size_t)length);
	return pdu->sequence_number;
}

static int
client_has_pdu(const struct client *client)
{
	uint32_t length;

	if (client->length < 4)
		return 0;
	length = (uint32_t)client->buffer[0] << 24 |
		 (uint32_t)client->buffer[1] << 16 |
		 (uint32_t)client->buffer[2] << 8 | client->buffer[3];
	return client->length >= length;
}

/* Waits for the next PDU and decodes it (valid until the next call). */
static int
client_receive(struct client *client, struct smpp_pdu *pdu)
{
	uint32_t length;

	RUN_UNTIL(client_has_pdu(client) || client->closed, WAIT_MS);
	if (!client_has_pdu(client))
		return 0;
	length = (uint32_t)client->buffer[0] << 24 |
		 (uint32_t)client->buffer[1] << 16 |
		 (uint32_t)client->buffer[2] << 8 | client->buffer[3];
	memcpy(client->pdu_bytes, client->buffer, length);
	memmove(
	    client->buffer, client->buffer + length, client->length - length);
	client->length -= length;
	assert_int_equal(
	    smpp_pdu_decode(client->pdu_bytes, length, pdu), SMPP_ESME_ROK);
	return 1;
}

/* Receives the response to sequence_number (asserting it is next). */
static void
client_expect(struct client *client, uint32_t command_id,
    uint32_t sequence_number, struct smpp_pdu *pdu)
{
	assert_true(client_receive(client, pdu));
	assert_int_equal(pdu->command_id, command_id);
	assert_int_equal(pdu->sequence_number, sequence_number);
}

static uint32_t
client_bind(struct client *client, uint32_t command_id, const char *system_id,
    const char *password)
{
	struct smpp_pdu pdu;
	uint32_t sequence;

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = command_id;
	pdu.system_id = system_id;
	pdu.password = password;
	pdu.interface_version = SMPP_INTERFACE_VERSION;
	sequence = client_send(client, &pdu);
	client_expect(client, command_id | SMPP_RESPONSE_BIT, sequence, &pdu);
	return pdu.command_status;
}

/* A client bound as command_id to an account (asserted). */
static struct client *
bound_client(uint32_t command_id, const char *system_id, const char *password)
{
	struct client *client = client_connect();

	assert_int_equal(client_bind(client, command_id, system_id, password),
	    SMPP_ESME_ROK);
	return client;
}

static void
fill_submit(struct smpp_pdu *pdu, const char *to, const char *text)
{
	memset(pdu, 0, sizeof(*pdu));
	pdu->command_id = SMPP_SUBMIT_SM;
	pdu->source_addr = "NUDGE";
	pdu->source_addr_ton = 5;
	pdu->destination_addr = to;
	pdu->dest_addr_ton = 1;
	pdu->dest_addr_npi = 1;
	pdu->short_message = (const uint8_t *)text;
	pdu->sm_length = (uint8_t)strlen(text);
}

/* Submits and returns the response's status; *id gets its message id. */
static uint32_t
client_submit(struct client *client, struct smpp_pdu *submit, uint64_t *id)
{
	struct smpp_pdu response;
	uint32_t sequence;

	sequence = client_send(client, submit);
	client_expect(client, submit->command_id | SMPP_RESPONSE_BIT, sequence,
	    &response);
	if (id != NULL)
		*id = response.message_id != NULL
			  ? strtoull(response.message_id, NULL, 10)
			  : 0;
	return response.command_status;
}

static uint32_t
submit_text(struct client *client, const char *to, const char *text,
    uint8_t registered_delivery, uint64_t *id)
{
	struct smpp_pdu pdu;

	fill_submit(&pdu, to, text);
	pdu.registered_delivery = registered_delivery;
	return client_submit(client, &pdu, id);
}

static double
metric(const char *name, const char *labels)
{
	return metrics_value(metrics_counter(name, labels, "test"));
}

/* ---- fixture ------------------------------------------------------------ */

static uint16_t
free_port(void)
{
	struct sockaddr_in address;
	socklen_t length = sizeof(address);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(
	    bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	assert_int_equal(
	    getsockname(fd, (struct sockaddr *)&address, &length), 0);
	close(fd);
	return ntohs(address.sin_port);
}

static int
group_setup(void **state)
{
	struct store_options options;
	struct event_config *event_config;
	FILE *file;
	int errors = 0;

	strcpy(world.path, "/tmp/nudge-test-server-XXXXXX");
	assert_non_null(mkdtemp(world.path));
	snprintf(world.config_path, sizeof(world.config_path), "%s/nudged.conf",
	    world.path);
	world.port = free_port();
	file = fopen(world.config_path, "w");
	assert_non_null(file);
	fprintf(file,
	    "[nudged]\n"
	    "data_dir = %s\n"
	    "[smpp]\n"
	    "listen = 127.0.0.1:%u\n"
	    "bind_timeout = 60s\n"
	    "response_timeout = 2s\n"
	    "auth_fail_delay_after = 3\n"
	    "auth_fail_block_after = 10\n"
	    "auth_fail_delay = 100ms\n"
	    "auth_block = 5m\n"
	    "[link up]\n"
	    "host = 127.0.0.1\n"
	    "port = %u\n"
	    "system_id = up\n"
	    "reconnect_min = 10s\n"
	    "reconnect_max = 60s\n"
	    "[account esme]\n"
	    "system_id = esme\n"
	    "password = secret\n"
	    "max_transmitters = 1\n"
	    "[account slow]\n"
	    "system_id = slow\n"
	    "password = slowpw\n"
	    "tps = 2\n"
	    "[account market]\n"
	    "system_id = market\n"
	    "password = mktpw\n"
	    "traffic_class = marketing\n"
	    "allowed_senders = NUDGE +4930123\n"
	    "[account remote]\n"
	    "system_id = remote\n"
	    "password = rempw\n"
	    "allowed_addresses = 10.0.0.0/8\n"
	    "[account other]\n"
	    "system_id = other\n"
	    "password = otherpw\n"
	    "[account receipts]\n"
	    "system_id = receipts\n"
	    "password = rcptpw\n"
	    "window = 2\n"
	    "deliver_retry_min = 50ms\n"
	    "deliver_retry_max = 200ms\n"
	    "[account restart]\n"
	    "system_id = restart\n"
	    "password = restpw\n"
	    "[account inbound]\n"
	    "system_id = inbound\n"
	    "password = inpw\n"
	    "mo_destinations = +12345\n"
	    "mo_keywords = pizza\n"
	    "[account small]\n"
	    "system_id = small\n"
	    "password = smallpw\n"
	    "deliver_queue_max = 2\n"
	    "[account stale]\n"
	    "system_id = stale\n"
	    "password = stalepw\n"
	    "deliver_expiry = 60s\n",
	    world.path, world.port, free_port());
	fclose(file);
	world.config = config_load(world.config_path, &errors);
	assert_non_null(world.config);
	assert_int_equal(errors, 0);

	event_config = event_config_new();
	assert_non_null(event_config);
	event_config_set_flag(event_config, EVENT_BASE_FLAG_PRECISE_TIMER);
	world.base = event_base_new_with_config(event_config);
	event_config_free(event_config);
	assert_non_null(world.base);
	memset(&options, 0, sizeof(options));
	options.path = world.path;
	world.store = store_open(&options);
	assert_non_null(world.store);
	store_attach(world.store, world.base);
	gateway->store = world.store;
	gateway->base = world.base;
	gateway->config = world.config;
	timer_init(world.base, world.store);
	outbox_init(world.base, world.config);
	outbox_start();
	optout_init();
	/* Inbound SMS reach accounts through the daemon's inbound chain. */
	consent_init(world.config);
	keyword_init(world.config);
	conversation_init(world.config);
	inbound_init(world.config);
	*state = NULL;
	return 0;
}

static int
group_teardown(void **state)
{
	char file[128];

	outbox_free();
	timer_shutdown();
	store_close(world.store);
	gateway->store = NULL;
	gateway->base = NULL;
	gateway->config = NULL;
	event_base_free(world.base);
	config_free(world.config);
	http_stop();
	metrics_reset();
	snprintf(file, sizeof(file), "%s/data.mdb", world.path);
	unlink(file);
	snprintf(file, sizeof(file), "%s/lock.mdb", world.path);
	unlink(file);
	unlink(world.config_path);
	rmdir(world.path);
	return 0;
}

static int
setup(void **state)
{
	world.config->smpp_auth_fail_delay_after = 3;
	world.config->smpp_auth_fail_block_after = 10;
	world.config->smpp_auth_fail_delay_us = AUTH_DELAY_US;
	world.config->smpp_bind_timeout_us = 60000000;
	world.config->smpp_enquire_link_us = 30000000;
	world.config->smpp_response_timeout_us = 2000000;
	world.config->smpp_idle_timeout_us = 0;
	server_init(world.base, world.config);
	return 0;
}

static int
teardown(void **state)
{
	server_free();
	/* Whatever the test wrote commits before the next one starts. */
	store_commit(world.store);
	return 0;
}

/* ---- binds -------------------------------------------------------------- */

static void
test_bind_kinds_accepted(void **state)
{
	static const uint32_t kinds[] = {
	    SMPP_BIND_TRANSCEIVER, SMPP_BIND_TRANSMITTER, SMPP_BIND_RECEIVER};
	struct smpp_pdu pdu;
	struct smpp_tlv tlv;
	struct client *client;
	uint32_t sequence;
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		client = client_connect();
		memset(&pdu, 0, sizeof(pdu));
		pdu.command_id = kinds[i];
		pdu.system_id = "other";
		pdu.password = "otherpw";
		pdu.interface_version = SMPP_INTERFACE_VERSION;
		sequence = client_send(client, &pdu);
		client_expect(
		    client, kinds[i] | SMPP_RESPONSE_BIT, sequence, &pdu);
		assert_int_equal(pdu.command_status, SMPP_ESME_ROK);
		assert_string_equal(pdu.system_id, "nudge");
		assert_true(smpp_pdu_find_tlv(
		    &pdu, SMPP_TLV_SC_INTERFACE_VERSION, &tlv));
		assert_int_equal(tlv.integer, SMPP_INTERFACE_VERSION);
		client_free(client);
	}
	RUN_UNTIL(server_session_count() == 0, WAIT_MS);
	assert_int_equal(server_session_count(), 0);
}

static void
test_bind_failures(void **state)
{
	struct client *client = client_connect(), *second;
	double before = metric(
	    "nudge_server_bind_failures_total", "status=\"ESME_RINVPASWD\"");

	assert_int_equal(
	    client_bind(client, SMPP_BIND_TRANSCEIVER, "nobody", "secret"),
	    SMPP_ESME_RINVSYSID);
	assert_int_equal(
	    client_bind(client, SMPP_BIND_TRANSCEIVER, "esme", "wrong"),
	    SMPP_ESME_RINVPASWD);
	/* A prefix of the password is as wrong as any other. */
	assert_int_equal(
	    client_bind(client, SMPP_BIND_TRANSCEIVER, "esme", "secre"),
	    SMPP_ESME_RINVPASWD);
	assert_int_equal(metric("nudge_server_bind_failures_total",
			     "status=\"ESME_RINVPASWD\""),
	    before + 2);
	/* 127.0.0.1 is outside 10.0.0.0/8. */
	assert_int_equal(
	    client_bind(client, SMPP_BIND_TRANSCEIVER, "remote", "rempw"),
	    SMPP_ESME_RBINDFAIL);
	/* The session stays open for another try, which may succeed. */
	assert_int_equal(
	    client_bind(client, SMPP_BIND_TRANSMITTER, "esme", "secret"),
	    SMPP_ESME_ROK);
	assert_int_equal(
	    client_bind(client, SMPP_BIND_TRANSCEIVER, "esme", "secret"),
	    SMPP_ESME_RALYBND);
	/* max_transmitters = 1. */
	second = client_connect();
	assert_int_equal(
	    client_bind(second, SMPP_BIND_TRANSMITTER, "esme", "secret"),
	    SMPP_ESME_RBINDFAIL);
	/* Other kinds have their own limits. */
	assert_int_equal(
	    client_bind(second, SMPP_BIND_RECEIVER, "esme", "secret"),
	    SMPP_ESME_ROK);
	client_free(second);
	client_free(client);
}

static void
test_submit_before_bind_refused(void **state)
{
	struct client *client = client_connect();
	struct smpp_pdu pdu;

	fill_submit(&pdu, "+4915100000001", "too early");
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVBNDSTS);
	/* A receiver may not submit either. */
	assert_int_equal(
	    client_bind(client, SMPP_BIND_RECEIVER, "other", "otherpw"),
	    SMPP_ESME_ROK);
	fill_submit(&pdu, "+4915100000001", "receivers do not submit");
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVBNDSTS);
	client_free(client);
}

/*
 * 100 wrong passwords sent at once from one address: three answered at
 * once, seven answered auth_fail_delay late each (in order, the session
 * reading nothing meanwhile), then refused with ESME_RBINDFAIL, even the
 * right password.
 */
static void
test_wrong_passwords_delayed_then_blocked(void **state)
{
	struct client *client = client_connect();
	struct smpp_pdu pdu;
	uint32_t first = 0, sequence;
	uint64_t started;
	double delayed, blocked, addresses;
	int i;

	delayed = metric("nudge_server_bind_delayed_total", NULL);
	blocked = metric("nudge_server_bind_blocked_total", NULL);
	addresses = metric("nudge_server_addresses_blocked_total", NULL);
	started = clock_monotonic_us();
	for (i = 0; i < 100; i++) {
		memset(&pdu, 0, sizeof(pdu));
		pdu.command_id = SMPP_BIND_TRANSMITTER;
		pdu.system_id = "esme";
		pdu.password = "guess";
		sequence = client_send(client, &pdu);
		if (i == 0)
			first = sequence;
	}
	for (i = 0; i < 100; i++) {
		client_expect(client, SMPP_BIND_TRANSMITTER_RESP,
		    first + (uint32_t)i, &pdu);
		assert_int_equal(pdu.command_status,
		    i < 10 ? SMPP_ESME_RINVPASWD : SMPP_ESME_RBINDFAIL);
	}
	/* A lower bound only: seven answers each waited the delay. */
	assert_true(clock_monotonic_us() - started >= 7 * AUTH_DELAY_US);
	assert_int_equal(
	    metric("nudge_server_bind_delayed_total", NULL), delayed + 7);
	assert_int_equal(
	    metric("nudge_server_bind_blocked_total", NULL), blocked + 90);
	assert_int_equal(metric("nudge_server_addresses_blocked_total", NULL),
	    addresses + 1);
	assert_int_equal(
	    client_bind(client, SMPP_BIND_TRANSMITTER, "esme", "secret"),
	    SMPP_ESME_RBINDFAIL);
	client_free(client);
}

/* ---- submits ------------------------------------------------------------ */

static void
test_submit_answered_after_commit(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSMITTER, "esme", "secret");
	struct outbox_message_record message;
	struct outbox_part_record part;
	struct store_stats before, after;
	struct smpp_pdu pdu, response;
	uint32_t sequence;
	uint64_t id;
	char text[64];

	run_for(20); /* nothing of the bind left to commit */
	store_get_stats(world.store, &before);
	fill_submit(&pdu, "+4915100000010", "hello world");
	pdu.registered_delivery = 1;
	pdu.esm_class = 0x03;
	pdu.data_coding = SMPP_CODING_DEFAULT;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_SUBMIT_SM_RESP, sequence, &response);
	/* By the time the response is there, a commit has happened. */
	store_get_stats(world.store, &after);
	assert_true(after.commits > before.commits);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	assert_non_null(response.message_id);
	id = strtoull(response.message_id, NULL, 10);
	assert_true(id > 0);
	snprintf(text, sizeof(text), "%llu", (unsigned long long)id);
	assert_string_equal(response.message_id, text);

	assert_int_equal(
	    outbox_read_message(id, &message, text, sizeof(text)), STORE_OK);
	assert_string_equal(message.origin, "esme:esme");
	assert_string_equal(message.to, "+4915100000010");
	assert_string_equal(message.from, "NUDGE");
	assert_int_equal(message.message_class, OUTBOX_CLASS_TRANSACTIONAL);
	assert_int_equal(message.part_count, 1);
	assert_int_equal(message.state, OUTBOX_QUEUED);
	assert_string_equal(text, "hello world");
	assert_int_equal(outbox_read_part(id, 1, &part), STORE_OK);
	assert_int_equal(part.registered_delivery, 1);
	assert_int_equal(part.esm_class, 0x03);
	assert_int_equal(part.short_message_length, 11);
	assert_int_equal(part.source_addr_ton, 5);
	client_free(client);
}

/* A long message's parts (UDH and SAR) are kept as given, TLVs too. */
static void
test_long_message_parts_kept(void **state)
{
	static const uint8_t udh_part[] = {
	    0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 'h', 'e', 'l', 'l', 'o'};
	struct client *client =
	    bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	struct outbox_part_record part;
	struct smpp_tlv tlvs[3];
	struct smpp_pdu pdu;
	const void *value;
	const uint8_t *bytes;
	size_t length;
	uint8_t key[9];
	uint64_t id;

	fill_submit(&pdu, "4915100000011", "");
	pdu.esm_class = SMPP_ESM_CLASS_UDHI;
	pdu.short_message = udh_part;
	pdu.sm_length = sizeof(udh_part);
	assert_int_equal(client_submit(client, &pdu, &id), SMPP_ESME_ROK);
	assert_int_equal(outbox_read_part(id, 1, &part), STORE_OK);
	assert_int_equal(part.esm_class, SMPP_ESM_CLASS_UDHI);
	assert_int_equal(part.short_message_length, sizeof(udh_part));

	fill_submit(&pdu, "4915100000011", "part two");
	tlvs[0] = smpp_tlv_integer(SMPP_TLV_SAR_MSG_REF_NUM, 7);
	tlvs[1] = smpp_tlv_integer(SMPP_TLV_SAR_TOTAL_SEGMENTS, 2);
	tlvs[2] = smpp_tlv_integer(SMPP_TLV_SAR_SEGMENT_SEQNUM, 2);
	pdu.tlvs = tlvs;
	pdu.tlv_count = 3;
	assert_int_equal(client_submit(client, &pdu, &id), SMPP_ESME_ROK);
	outbox_key(id, 1, key);
	assert_int_equal(store_get(world.store, STORE_DB_PARTS, key,
			     sizeof(key), &value, &length),
	    STORE_OK);
	memcpy(&part, value, sizeof(part));
	assert_int_equal(part.short_message_length, 8);
	/* sar_msg_ref_num (2 octets), total and seqnum (1 octet each). */
	assert_int_equal(part.tlv_length, 6 + 5 + 5);
	bytes = (const uint8_t *)value + sizeof(part) + 8;
	assert_int_equal(bytes[0], 0x02);
	assert_int_equal(bytes[1], 0x0c);
	assert_int_equal(bytes[5], 7);
	assert_int_equal(bytes[7], 0x0e);
	assert_int_equal(bytes[10], 2);
	client_free(client);
}

static void
test_submit_validation(void **state)
{
	static const uint8_t bad_udh[] = {0x09, 0x00, 0x03, 0x01};
	struct client *client =
	    bound_client(SMPP_BIND_TRANSMITTER, "market", "mktpw");
	struct smpp_pdu pdu;
	uint8_t long_ucs2[200];
	double refused =
	    metric("nudge_server_submits_refused_total", "account=\"market\"");

	fill_submit(&pdu, "49abc", "letters");
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVDSTADR);
	fill_submit(&pdu, "", "empty");
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVDSTADR);
	/* data_sm carries longer addresses than submit_sm can. */
	fill_submit(&pdu, "123456789012345678901", "");
	pdu.command_id = SMPP_DATA_SM;
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVDSTADR);
	fill_submit(&pdu, "+4915100000020", "");
	pdu.esm_class = SMPP_ESM_CLASS_UDHI;
	pdu.short_message = bad_udh;
	pdu.sm_length = sizeof(bad_udh);
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVESMCLASS);
	fill_submit(&pdu, "+4915100000020", "reserved coding");
	pdu.data_coding = 0x50;
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RSUBMITFAIL);
	memset(long_ucs2, 0x41, sizeof(long_ucs2));
	fill_submit(&pdu, "+4915100000020", "");
	pdu.data_coding = SMPP_CODING_UCS2;
	pdu.short_message = long_ucs2;
	pdu.sm_length = sizeof(long_ucs2);
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVMSGLEN);
	fill_submit(&pdu, "+4915100000020", "later");
	pdu.schedule_delivery_time = "000000010000000R";
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVSCHED);
	fill_submit(&pdu, "+4915100000020", "not our sender");
	pdu.source_addr = "SPAMMER";
	assert_int_equal(
	    client_submit(client, &pdu, NULL), SMPP_ESME_RINVSRCADR);
	assert_int_equal(
	    metric("nudge_server_submits_refused_total", "account=\"market\""),
	    refused + 8);
	/* A listed numeric sender, with or without its "+". */
	fill_submit(&pdu, "+4915100000020", "fine");
	pdu.source_addr = "4930123";
	pdu.validity_period = "000001000000000R";
	assert_int_equal(client_submit(client, &pdu, NULL), SMPP_ESME_ROK);
	client_free(client);
}

static void
test_throttled_above_tps(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSMITTER, "slow", "slowpw");
	struct smpp_pdu pdu, response;
	uint32_t first = 0, sequence;
	int i, accepted = 0, throttled = 0;
	double counted =
	    metric("nudge_server_throttled_total", "account=\"slow\"");

	/* Six at once: the bucket holds one second at tps = 2. */
	for (i = 0; i < 6; i++) {
		fill_submit(&pdu, "+4915100000030", "burst");
		sequence = client_send(client, &pdu);
		if (i == 0)
			first = sequence;
	}
	for (i = 0; i < 6; i++) {
		assert_true(client_receive(client, &response));
		assert_int_equal(response.command_id, SMPP_SUBMIT_SM_RESP);
		if (response.command_status == SMPP_ESME_ROK) {
			accepted++;
			assert_true(response.sequence_number < first + 2);
		} else {
			assert_int_equal(
			    response.command_status, SMPP_ESME_RTHROTTLED);
			throttled++;
		}
	}
	assert_int_equal(accepted, 2);
	assert_int_equal(throttled, 4);
	assert_int_equal(
	    metric("nudge_server_throttled_total", "account=\"slow\""),
	    counted + 4);
	client_free(client);
}

static void
test_marketing_to_opted_out_refused(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSMITTER, "market", "mktpw");
	uint64_t id;
	double refused =
	    metric("nudge_server_optout_refused_total", "account=\"market\"");

	assert_int_equal(optout_set("+4915100000040", "test"), STORE_OK);
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_int_equal(
	    submit_text(client, "+4915100000040", "sale!", 0, NULL),
	    SMPP_ESME_RX_R_APPN);
	assert_int_equal(
	    submit_text(client, "4915100000040", "sale again", 0, NULL),
	    SMPP_ESME_RX_R_APPN);
	assert_int_equal(
	    metric("nudge_server_optout_refused_total", "account=\"market\""),
	    refused + 2);
	assert_int_equal(submit_text(client, "+4915100000041", "sale!", 0, &id),
	    SMPP_ESME_ROK);
	client_free(client);
	/* Transactional traffic is not marketing: it goes. */
	client = bound_client(SMPP_BIND_TRANSMITTER, "other", "otherpw");
	assert_int_equal(
	    submit_text(client, "+4915100000040", "your code", 0, NULL),
	    SMPP_ESME_ROK);
	client_free(client);
}

static void
test_submit_multi_per_destination(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSMITTER, "other", "otherpw");
	struct smpp_destination destinations[3], refused;
	struct outbox_message_record message;
	struct smpp_pdu pdu, response;
	size_t cursor = 0;
	uint32_t sequence;
	uint64_t id;

	memset(destinations, 0, sizeof(destinations));
	destinations[0].dest_flag = SMPP_DEST_FLAG_SME_ADDRESS;
	destinations[0].address = "+4915100000050";
	destinations[1].dest_flag = SMPP_DEST_FLAG_SME_ADDRESS;
	destinations[1].address = "nope";
	destinations[2].dest_flag = SMPP_DEST_FLAG_DISTRIBUTION_LIST;
	destinations[2].address = "friends";
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_SUBMIT_MULTI;
	pdu.source_addr = "NUDGE";
	pdu.destination_list = destinations;
	pdu.number_of_destinations = 3;
	pdu.short_message = (const uint8_t *)"to many";
	pdu.sm_length = 7;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_SUBMIT_MULTI_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	id = strtoull(response.message_id, NULL, 10);
	assert_int_equal(outbox_read_message(id, &message, NULL, 0), STORE_OK);
	assert_string_equal(message.to, "+4915100000050");
	assert_int_equal(response.number_of_destinations, 2);
	assert_true(smpp_pdu_next_destination(&response, &cursor, &refused));
	assert_string_equal(refused.address, "nope");
	assert_int_equal(refused.error_status_code, SMPP_ESME_RINVDSTADR);
	assert_true(smpp_pdu_next_destination(&response, &cursor, &refused));
	assert_string_equal(refused.address, "friends");
	assert_int_equal(refused.error_status_code, SMPP_ESME_RINVDLNAME);
	client_free(client);
}

static void
test_query_replace_cancel(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	struct client *stranger;
	struct outbox_part_record part;
	struct smpp_pdu pdu, response;
	uint32_t sequence;
	uint64_t id;
	char id_text[24];

	assert_int_equal(
	    submit_text(client, "+4915100000060", "first text", 0, &id),
	    SMPP_ESME_ROK);
	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_QUERY_SM;
	pdu.message_id = id_text;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_QUERY_SM_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	assert_string_equal(response.message_id, id_text);
	assert_int_equal(response.message_state, SMPP_MESSAGE_STATE_ENROUTE);
	assert_true(
	    response.final_date == NULL || response.final_date[0] == '\0');

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_REPLACE_SM;
	pdu.message_id = id_text;
	pdu.short_message = (const uint8_t *)"second";
	pdu.sm_length = 6;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_REPLACE_SM_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	assert_int_equal(outbox_read_part(id, 1, &part), STORE_OK);
	assert_int_equal(part.short_message_length, 6);

	/* Another account's id is unknown to this one. */
	stranger = bound_client(SMPP_BIND_TRANSCEIVER, "esme", "secret");
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_QUERY_SM;
	pdu.message_id = id_text;
	sequence = client_send(stranger, &pdu);
	client_expect(stranger, SMPP_QUERY_SM_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_RQUERYFAIL);
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_CANCEL_SM;
	pdu.message_id = id_text;
	sequence = client_send(stranger, &pdu);
	client_expect(stranger, SMPP_CANCEL_SM_RESP, sequence, &response);
	assert_int_not_equal(response.command_status, SMPP_ESME_ROK);
	client_free(stranger);

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_CANCEL_SM;
	pdu.message_id = id_text;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_CANCEL_SM_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_CANCEL_SM_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_RCANCELFAIL);

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_QUERY_SM;
	pdu.message_id = id_text;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_QUERY_SM_RESP, sequence, &response);
	assert_int_equal(response.message_state, SMPP_MESSAGE_STATE_DELETED);
	assert_int_equal(strlen(response.final_date), 16);

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_REPLACE_SM;
	pdu.message_id = id_text;
	pdu.short_message = (const uint8_t *)"third";
	pdu.sm_length = 5;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_REPLACE_SM_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_RREPLACEFAIL);

	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_QUERY_SM;
	pdu.message_id = "12x";
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_QUERY_SM_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_RINVMSGID);
	client_free(client);
}

/* data_sm: the text in message_payload, answered with data_sm_resp. */
static void
test_data_sm_accepted(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	struct outbox_part_record part;
	struct smpp_tlv payload;
	struct smpp_pdu pdu;
	char text[400];
	uint64_t id;

	memset(text, 'a', sizeof(text));
	fill_submit(&pdu, "+4915100000012", "");
	pdu.command_id = SMPP_DATA_SM;
	payload = smpp_tlv_octets(SMPP_TLV_MESSAGE_PAYLOAD, text, sizeof(text));
	pdu.tlvs = &payload;
	pdu.tlv_count = 1;
	assert_int_equal(client_submit(client, &pdu, &id), SMPP_ESME_ROK);
	assert_int_equal(outbox_read_part(id, 1, &part), STORE_OK);
	assert_int_equal(part.short_message_length, 0);
	assert_int_equal(part.tlv_length, 4 + sizeof(text));
	client_free(client);
}

/* ---- the stream --------------------------------------------------------- */

static void
test_unknown_command_gets_generic_nack(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	uint8_t header[SMPP_HEADER_LENGTH];
	struct smpp_pdu pdu;
	uint32_t sequence;

	smpp_pdu_encode_header_only(header, sizeof(header), 0x00000099, 0, 77);
	client_send_raw(client, header, sizeof(header));
	client_expect(client, SMPP_GENERIC_NACK, 77, &pdu);
	assert_int_equal(pdu.command_status, SMPP_ESME_RINVCMDID);
	/* deliver_sm is the SMSC's to send, not the ESME's. */
	fill_submit(&pdu, "+4915100000070", "wrong way");
	pdu.command_id = SMPP_DELIVER_SM;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_GENERIC_NACK, sequence, &pdu);
	assert_int_equal(pdu.command_status, SMPP_ESME_RINVCMDID);
	/* The session goes on. */
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_ENQUIRE_LINK;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_ENQUIRE_LINK_RESP, sequence, &pdu);
	assert_int_equal(pdu.command_status, SMPP_ESME_ROK);
	client_free(client);
}

/* A request that does not decode gets its own response with the status. */
static void
test_undecodable_request_answered(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	uint8_t bytes[SMPP_HEADER_LENGTH + 2];
	struct smpp_pdu pdu;

	/* A submit_sm whose body stops inside service_type. */
	smpp_pdu_encode_header_only(
	    bytes, sizeof(bytes), SMPP_SUBMIT_SM, 0, 31);
	bytes[3] = sizeof(bytes);
	bytes[16] = 'x';
	bytes[17] = 'y';
	client_send_raw(client, bytes, sizeof(bytes));
	client_expect(client, SMPP_SUBMIT_SM_RESP, 31, &pdu);
	assert_int_not_equal(pdu.command_status, SMPP_ESME_ROK);
	client_free(client);
}

/* Sends bytes on a fresh connection: generic_nack RINVCMDLEN, then closed. */
static void
expect_stream_rejected(const void *bytes, size_t length)
{
	struct client *client = client_connect();
	struct smpp_pdu pdu;

	client_send_raw(client, bytes, length);
	assert_true(client_receive(client, &pdu));
	assert_int_equal(pdu.command_id, SMPP_GENERIC_NACK);
	assert_int_equal(pdu.command_status, SMPP_ESME_RINVCMDLEN);
	RUN_UNTIL(client->closed, WAIT_MS);
	assert_true(client->closed);
	client_free(client);
}

static void
test_bad_lengths_close_only_their_session(void **state)
{
	static const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const uint8_t zero[SMPP_HEADER_LENGTH] = {
	    0, 0, 0, 0, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 9};
	static const uint8_t huge[SMPP_HEADER_LENGTH] = {
	    0x80, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 10};
	struct client *client =
	    bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	struct smpp_pdu pdu;
	uint32_t sequence;
	double errors = metric("nudge_server_framing_errors_total", NULL);

	expect_stream_rejected(garbage, sizeof(garbage) - 1);
	expect_stream_rejected(zero, sizeof(zero));
	expect_stream_rejected(huge, sizeof(huge));
	assert_int_equal(
	    metric("nudge_server_framing_errors_total", NULL), errors + 3);
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_ENQUIRE_LINK;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_ENQUIRE_LINK_RESP, sequence, &pdu);
	assert_int_equal(
	    submit_text(client, "+4915100000080", "still here", 0, NULL),
	    SMPP_ESME_ROK);
	client_free(client);
}

/*
 * A peer that sends without reading: once 1 MB of its responses waits,
 * nothing more is read from it; when it reads again, every request sent
 * meanwhile is answered.
 */
static void
test_peer_not_reading_is_paused(void **state)
{
	struct client *client = client_connect();
	uint8_t chunk[64 * 1024];
	uint32_t sequence = 1;
	uint64_t sent = 0;
	size_t i, offset;
	ssize_t written;
	int stalls = 0;
	double paused = metric("nudge_server_reading_paused_total", NULL);

	event_del(client->event); /* the client reads nothing for now */
	while (metric("nudge_server_reading_paused_total", NULL) == paused &&
	       stalls < 500) {
		for (i = 0; i < sizeof(chunk); i += SMPP_HEADER_LENGTH)
			smpp_pdu_encode_enquire_link(
			    chunk + i, SMPP_HEADER_LENGTH, sequence++);
		for (offset = 0; offset < sizeof(chunk);) {
			written = send(client->fd, chunk + offset,
			    sizeof(chunk) - offset,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
			if (written > 0) {
				offset += (size_t)written;
				continue;
			}
			assert_true(errno == EAGAIN);
			run_for(5);
			if (metric("nudge_server_reading_paused_total", NULL) !=
				paused ||
			    ++stalls >= 500)
				break;
		}
		sent += offset / SMPP_HEADER_LENGTH;
		run_for(1);
	}
	assert_int_equal(
	    metric("nudge_server_reading_paused_total", NULL), paused + 1);
	assert_true(sent * SMPP_HEADER_LENGTH > 1024 * 1024);
	/* Reading again: everything whole that was sent is answered. */
	client->count_only = 1;
	event_add(client->event, NULL);
	RUN_UNTIL(client->counted == sent, 20000);
	assert_int_equal(client->counted, sent);
	client_free(client);
}

/* Silence: our enquire_link; no answer to it: the session is closed. */
static void
test_enquire_link_and_dead_peer(void **state)
{
	struct client *client;
	struct smpp_pdu pdu;
	uint8_t header[SMPP_HEADER_LENGTH];

	world.config->smpp_enquire_link_us = 100000;
	world.config->smpp_response_timeout_us = 300000;
	client = bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	assert_true(client_receive(client, &pdu));
	assert_int_equal(pdu.command_id, SMPP_ENQUIRE_LINK);
	smpp_pdu_encode_header_only(header, sizeof(header),
	    SMPP_ENQUIRE_LINK_RESP, 0, pdu.sequence_number);
	client_send_raw(client, header, sizeof(header));
	assert_true(client_receive(client, &pdu));
	assert_int_equal(pdu.command_id, SMPP_ENQUIRE_LINK);
	/* This one is not answered. */
	RUN_UNTIL(client->closed, WAIT_MS);
	assert_true(client->closed);
	RUN_UNTIL(server_session_count() == 0, WAIT_MS);
	assert_int_equal(server_session_count(), 0);
	client_free(client);
}

/* Idle (enquire_link aside): unbound by us. Never bound: closed. */
static void
test_idle_and_bind_timeouts(void **state)
{
	struct client *client, *silent;
	struct smpp_pdu pdu;
	uint8_t header[SMPP_HEADER_LENGTH];

	world.config->smpp_idle_timeout_us = 200000;
	world.config->smpp_bind_timeout_us = 200000;
	client = bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	silent = client_connect();
	assert_true(client_receive(client, &pdu));
	assert_int_equal(pdu.command_id, SMPP_UNBIND);
	smpp_pdu_encode_header_only(
	    header, sizeof(header), SMPP_UNBIND_RESP, 0, pdu.sequence_number);
	client_send_raw(client, header, sizeof(header));
	RUN_UNTIL(client->closed && silent->closed, WAIT_MS);
	assert_true(client->closed);
	assert_true(silent->closed);
	assert_int_equal(silent->length, 0);
	client_free(silent);
	client_free(client);
}

static void
test_unbind_answered_and_closed(void **state)
{
	struct client *client =
	    bound_client(SMPP_BIND_TRANSMITTER, "other", "otherpw");
	struct smpp_pdu pdu, response;
	uint32_t submit_sequence, sequence;

	/* A submit then an unbind in one write: the submit is answered first. */
	fill_submit(&pdu, "+4915100000090", "last words");
	submit_sequence = client_send(client, &pdu);
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_UNBIND;
	sequence = client_send(client, &pdu);
	client_expect(client, SMPP_SUBMIT_SM_RESP, submit_sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	client_expect(client, SMPP_UNBIND_RESP, sequence, &response);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	RUN_UNTIL(client->closed, WAIT_MS);
	assert_true(client->closed);
	client_free(client);
}

static void
test_shutdown_unbinds_every_session(void **state)
{
	struct client *bound =
	    bound_client(SMPP_BIND_TRANSCEIVER, "other", "otherpw");
	struct client *idle = client_connect();
	uint8_t header[SMPP_HEADER_LENGTH];
	struct smpp_pdu pdu;
	uint32_t sequence;

	RUN_UNTIL(server_session_count() == 2, WAIT_MS);
	assert_int_equal(server_session_count(), 2);
	server_shutdown_begin(NULL);
	assert_false(server_shutdown_done(NULL));
	assert_true(client_receive(bound, &pdu));
	assert_int_equal(pdu.command_id, SMPP_UNBIND);
	sequence = pdu.sequence_number;
	RUN_UNTIL(idle->closed, WAIT_MS);
	assert_true(idle->closed);
	smpp_pdu_encode_header_only(
	    header, sizeof(header), SMPP_UNBIND_RESP, 0, sequence);
	client_send_raw(bound, header, sizeof(header));
	RUN_UNTIL(server_shutdown_done(NULL), WAIT_MS);
	assert_true(server_shutdown_done(NULL));
	client_free(bound);
	client_free(idle);
}

/* ---- deliver_sm to the ESME --------------------------------------------- */

/* Answers a deliver_sm with status. */
static void
answer_deliver(struct client *client, uint32_t sequence, uint32_t status)
{
	uint8_t buffer[64];
	int length;

	length = smpp_pdu_encode_deliver_sm_resp(
	    buffer, sizeof(buffer), sequence, status);
	assert_true(length > 0);
	client_send_raw(client, buffer, (size_t)length);
}

/* Receives a receipt and checks it names id; returns its sequence. */
static uint32_t
expect_receipt(struct client *client, uint64_t id, uint8_t state)
{
	struct smpp_receipt receipt;
	struct smpp_pdu pdu;
	struct smpp_tlv tlv;
	char id_text[24];

	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);
	assert_true(client_receive(client, &pdu));
	assert_int_equal(pdu.command_id, SMPP_DELIVER_SM);
	assert_int_equal(pdu.esm_class, SMPP_ESM_CLASS_DELIVERY_RECEIPT);
	assert_true(
	    smpp_pdu_find_tlv(&pdu, SMPP_TLV_RECEIPTED_MESSAGE_ID, &tlv));
	assert_string_equal((const char *)tlv.value, id_text);
	assert_true(smpp_pdu_find_tlv(&pdu, SMPP_TLV_MESSAGE_STATE, &tlv));
	assert_int_equal(tlv.integer, state);
	assert_int_equal(
	    smpp_receipt_parse(pdu.short_message, pdu.sm_length, &receipt), 0);
	assert_string_equal(receipt.id, id_text);
	assert_int_equal(receipt.state, state);
	/* From the handset the message went to, to its sender. */
	assert_string_equal(pdu.source_addr, "4915100000100");
	assert_int_equal(pdu.source_addr_ton, 1);
	assert_string_equal(pdu.destination_addr, "NUDGE");
	return pdu.sequence_number;
}

/*
 * Receipts come while no receiver is bound: they wait in the store, and
 * the receiver that binds gets them oldest first, within the window (2),
 * each deleted only when its deliver_sm_resp ROK arrives. An error answer
 * brings the deliver_sm back after the back-off.
 */
static void
test_receipts_wait_for_a_receiver(void **state)
{
	struct client *sender =
	    bound_client(SMPP_BIND_TRANSMITTER, "receipts", "rcptpw");
	struct client *receiver;
	uint64_t ids[3], unwanted;
	uint32_t sequences[3];
	int i;
	double retried = metric(
	    "nudge_server_deliver_retried_total", "account=\"receipts\"");

	for (i = 0; i < 3; i++)
		assert_int_equal(submit_text(sender, "+4915100000100",
				     "with receipt", 1, &ids[i]),
		    SMPP_ESME_ROK);
	/* registered_delivery 2: failures only, and this one is delivered. */
	assert_int_equal(submit_text(sender, "+4915100000100", "failures only",
			     2, &unwanted),
	    SMPP_ESME_ROK);
	for (i = 0; i < 3; i++)
		outbox_apply_receipt(
		    ids[i], 1, SMPP_MESSAGE_STATE_DELIVERED, 0, clock_now_us());
	outbox_apply_receipt(
	    unwanted, 1, SMPP_MESSAGE_STATE_DELIVERED, 0, clock_now_us());
	/* A duplicate receipt from the SMSC makes no second deliver_sm. */
	outbox_apply_receipt(
	    ids[1], 1, SMPP_MESSAGE_STATE_DELIVERED, 0, clock_now_us());
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_RECEIPTS), 3);
	/* The transmitter receives nothing. */
	run_for(50);
	assert_int_equal(sender->length, 0);

	receiver = bound_client(SMPP_BIND_RECEIVER, "receipts", "rcptpw");
	sequences[0] =
	    expect_receipt(receiver, ids[0], SMPP_MESSAGE_STATE_DELIVERED);
	sequences[1] =
	    expect_receipt(receiver, ids[1], SMPP_MESSAGE_STATE_DELIVERED);
	/* The window is 2: the third waits for an answer. */
	run_for(50);
	assert_false(client_has_pdu(receiver));
	answer_deliver(receiver, sequences[0], SMPP_ESME_ROK);
	sequences[2] =
	    expect_receipt(receiver, ids[2], SMPP_MESSAGE_STATE_DELIVERED);
	RUN_UNTIL(server_deliver_queue_depth(ACCOUNT_RECEIPTS) == 2, WAIT_MS);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_RECEIPTS), 2);
	/* An error: the same receipt comes again after the back-off. */
	answer_deliver(receiver, sequences[1], SMPP_ESME_RX_T_APPN);
	answer_deliver(receiver, sequences[2], SMPP_ESME_ROK);
	expect_receipt(receiver, ids[1], SMPP_MESSAGE_STATE_DELIVERED);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_RECEIPTS), 1);
	assert_int_equal(metric("nudge_server_deliver_retried_total",
			     "account=\"receipts\""),
	    retried + 1);
	/* Unanswered when the receiver leaves: sent again on the next bind. */
	client_free(receiver);
	RUN_UNTIL(server_session_count() == 1, WAIT_MS);
	receiver = bound_client(SMPP_BIND_TRANSCEIVER, "receipts", "rcptpw");
	sequences[1] =
	    expect_receipt(receiver, ids[1], SMPP_MESSAGE_STATE_DELIVERED);
	answer_deliver(receiver, sequences[1], SMPP_ESME_ROK);
	RUN_UNTIL(server_deliver_queue_depth(ACCOUNT_RECEIPTS) == 0, WAIT_MS);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_RECEIPTS), 0);
	run_for(100);
	assert_false(client_has_pdu(receiver));
	client_free(receiver);
	client_free(sender);
}

/* What waits for an ESME survives a restart of the server. */
static void
test_queue_survives_restart(void **state)
{
	struct client *sender =
	    bound_client(SMPP_BIND_TRANSMITTER, "restart", "restpw");
	struct client *receiver;
	uint64_t ids[2];
	uint32_t sequence;
	int i;

	for (i = 0; i < 2; i++)
		assert_int_equal(
		    submit_text(sender, "+4915100000100", "kept", 1, &ids[i]),
		    SMPP_ESME_ROK);
	client_free(sender);
	outbox_apply_receipt(
	    ids[0], 1, SMPP_MESSAGE_STATE_UNDELIVERABLE, 5, clock_now_us());
	outbox_apply_receipt(
	    ids[1], 1, SMPP_MESSAGE_STATE_EXPIRED, 0, clock_now_us());
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_RESTART), 2);

	server_free();
	server_init(world.base, world.config);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_RESTART), 2);
	receiver = bound_client(SMPP_BIND_RECEIVER, "restart", "restpw");
	sequence =
	    expect_receipt(receiver, ids[0], SMPP_MESSAGE_STATE_UNDELIVERABLE);
	answer_deliver(receiver, sequence, SMPP_ESME_ROK);
	sequence = expect_receipt(receiver, ids[1], SMPP_MESSAGE_STATE_EXPIRED);
	answer_deliver(receiver, sequence, SMPP_ESME_ROK);
	RUN_UNTIL(server_deliver_queue_depth(ACCOUNT_RESTART) == 0, WAIT_MS);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_RESTART), 0);
	client_free(receiver);
}

/* An MO for the account's number (or keyword) is delivered to it. */
static void
test_mo_routed_to_account(void **state)
{
	struct client *receiver =
	    bound_client(SMPP_BIND_TRANSCEIVER, "inbound", "inpw");
	struct smpp_pdu mo, pdu;
	uint32_t status;

	memset(&mo, 0, sizeof(mo));
	mo.command_id = SMPP_DELIVER_SM;
	mo.source_addr = "+4915100000200";
	mo.source_addr_ton = 1;
	mo.destination_addr = "12345";
	mo.short_message = (const uint8_t *)"Hello there";
	mo.sm_length = 11;
	status = mo_handle(link_find("up"), &mo);
	assert_int_equal(status, SMPP_ESME_ROK);
	mo.destination_addr = "99999";
	mo.short_message = (const uint8_t *)"PIZZA tonight";
	mo.sm_length = 13;
	assert_int_equal(mo_handle(link_find("up"), &mo), SMPP_ESME_ROK);
	/* Neither number nor keyword: stays in the MO log only. */
	mo.short_message = (const uint8_t *)"burger";
	mo.sm_length = 6;
	assert_int_equal(mo_handle(link_find("up"), &mo), SMPP_ESME_ROK);

	assert_true(client_receive(receiver, &pdu));
	assert_int_equal(pdu.command_id, SMPP_DELIVER_SM);
	assert_int_equal(pdu.esm_class, 0);
	assert_string_equal(pdu.source_addr, "4915100000200");
	assert_int_equal(pdu.source_addr_ton, 1);
	assert_string_equal(pdu.destination_addr, "12345");
	assert_int_equal(pdu.data_coding, SMPP_CODING_DEFAULT);
	assert_int_equal(pdu.sm_length, 11);
	assert_memory_equal(pdu.short_message, "Hello there", 11);
	answer_deliver(receiver, pdu.sequence_number, SMPP_ESME_ROK);
	assert_true(client_receive(receiver, &pdu));
	assert_int_equal(pdu.sm_length, 13);
	assert_memory_equal(pdu.short_message, "PIZZA tonight", 13);
	answer_deliver(receiver, pdu.sequence_number, SMPP_ESME_ROK);
	RUN_UNTIL(server_deliver_queue_depth(ACCOUNT_MO) == 0, WAIT_MS);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_MO), 0);
	run_for(50);
	assert_false(client_has_pdu(receiver));
	client_free(receiver);
}

/* Submits with receipts wanted and makes each DELIVERED; returns ids. */
static void
delivered_receipts(
    const char *system_id, const char *password, uint64_t *ids, int count)
{
	struct client *sender =
	    bound_client(SMPP_BIND_TRANSMITTER, system_id, password);
	int i;

	for (i = 0; i < count; i++)
		assert_int_equal(submit_text(sender, "+4915100000100",
				     "receipt", 1, &ids[i]),
		    SMPP_ESME_ROK);
	client_free(sender);
	for (i = 0; i < count; i++)
		outbox_apply_receipt(
		    ids[i], 1, SMPP_MESSAGE_STATE_DELIVERED, 0, clock_now_us());
	assert_int_equal(store_commit(world.store), STORE_OK);
}

/* Beyond deliver_queue_max (2) the oldest kept deliver_sm is dropped. */
static void
test_queue_bound_drops_oldest(void **state)
{
	struct client *receiver;
	uint64_t ids[3];
	uint32_t sequence;
	double dropped =
	    metric("nudge_server_deliver_dropped_total", "account=\"small\"");

	delivered_receipts("small", "smallpw", ids, 3);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_SMALL), 2);
	assert_int_equal(
	    metric("nudge_server_deliver_dropped_total", "account=\"small\""),
	    dropped + 1);
	receiver = bound_client(SMPP_BIND_RECEIVER, "small", "smallpw");
	sequence =
	    expect_receipt(receiver, ids[1], SMPP_MESSAGE_STATE_DELIVERED);
	answer_deliver(receiver, sequence, SMPP_ESME_ROK);
	sequence =
	    expect_receipt(receiver, ids[2], SMPP_MESSAGE_STATE_DELIVERED);
	answer_deliver(receiver, sequence, SMPP_ESME_ROK);
	RUN_UNTIL(server_deliver_queue_depth(ACCOUNT_SMALL) == 0, WAIT_MS);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_SMALL), 0);
	client_free(receiver);
}

/* Kept longer than deliver_expiry (60 s, by the test clock): dropped. */
static void
test_expired_deliveries_dropped(void **state)
{
	struct client *receiver;
	uint64_t ids[1];
	double expired =
	    metric("nudge_server_deliver_expired_total", "account=\"stale\"");

	delivered_receipts("stale", "stalepw", ids, 1);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_STALE), 1);
	clock_advance_us(61 * 1000000ULL);
	receiver = bound_client(SMPP_BIND_RECEIVER, "stale", "stalepw");
	RUN_UNTIL(server_deliver_queue_depth(ACCOUNT_STALE) == 0, WAIT_MS);
	assert_int_equal(server_deliver_queue_depth(ACCOUNT_STALE), 0);
	assert_int_equal(
	    metric("nudge_server_deliver_expired_total", "account=\"stale\""),
	    expired + 1);
	run_for(50);
	assert_false(client_has_pdu(receiver));
	client_free(receiver);
}

/* ---- TLS ---------------------------------------------------------------- */

static uint16_t tls_port;

/* Writes a fresh self-signed P-256 certificate and its key as PEM. */
static void
write_certificate(const char *certificate_path, const char *key_path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *certificate = X509_new();
	X509_NAME *name;
	FILE *file;

	assert_non_null(key);
	assert_non_null(certificate);
	X509_set_version(certificate, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
	X509_gmtime_adj(X509_getm_notBefore(certificate), 0);
	X509_gmtime_adj(X509_getm_notAfter(certificate), 3600);
	X509_set_pubkey(certificate, key);
	name = X509_get_subject_name(certificate);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(certificate, name);
	assert_true(X509_sign(certificate, key, EVP_sha256()) > 0);
	assert_non_null(file = fopen(certificate_path, "w"));
	assert_int_equal(PEM_write_X509(file, certificate), 1);
	fclose(file);
	assert_non_null(file = fopen(key_path, "w"));
	assert_int_equal(
	    PEM_write_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(file);
	X509_free(certificate);
	EVP_PKEY_free(key);
}

static void
replace_string(char **field, const char *value)
{
	free(*field);
	*field = strdup(value);
	assert_non_null(*field);
}

static int
setup_tls(void **state)
{
	char path[128], listen[64];

	tls_port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", tls_port);
	replace_string(&world.config->smpp_tls_listen, listen);
	snprintf(path, sizeof(path), "%s/server.crt", world.path);
	replace_string(&world.config->smpp_tls_certificate, path);
	snprintf(path, sizeof(path), "%s/server.key", world.path);
	replace_string(&world.config->smpp_tls_key, path);
	write_certificate(
	    world.config->smpp_tls_certificate, world.config->smpp_tls_key);
	return setup(state);
}

static int
teardown_tls(void **state)
{
	teardown(state);
	unlink(world.config->smpp_tls_certificate);
	unlink(world.config->smpp_tls_key);
	replace_string(&world.config->smpp_tls_listen, "");
	replace_string(&world.config->smpp_tls_certificate, "");
	replace_string(&world.config->smpp_tls_key, "");
	return 0;
}

/* The TLS ESME: a bufferevent_openssl client in the same loop. */
struct tls_client {
	struct bufferevent *bufferevent;
	uint8_t buffer[4096];
	size_t length;
	int connected;
	int failed;
};

static void
tls_client_read(struct bufferevent *bufferevent, void *arg)
{
	struct tls_client *client = arg;
	int got;

	got = evbuffer_remove(bufferevent_get_input(bufferevent),
	    client->buffer + client->length,
	    sizeof(client->buffer) - client->length);
	if (got > 0)
		client->length += (size_t)got;
}

static void
tls_client_event(struct bufferevent *bufferevent, short what, void *arg)
{
	struct tls_client *client = arg;

	if (what & BEV_EVENT_CONNECTED)
		client->connected = 1;
	else
		client->failed = 1;
}

static int
tls_has_pdu(const struct tls_client *client)
{
	return client->length >= 4 && client->length >= client->buffer[3];
}

/* Sends a request and decodes its (short) response into pdu. */
static void
tls_exchange(struct tls_client *client, struct smpp_pdu *request,
    struct smpp_pdu *pdu, uint8_t *bytes)
{
	uint8_t buffer[512];
	int length;

	length = smpp_pdu_encode(request, buffer, sizeof(buffer));
	assert_true(length > 0);
	bufferevent_write(client->bufferevent, buffer, (size_t)length);
	RUN_UNTIL(tls_has_pdu(client) || client->failed, WAIT_MS);
	assert_true(tls_has_pdu(client));
	length = client->buffer[3];
	memcpy(bytes, client->buffer, (size_t)length);
	memmove(client->buffer, client->buffer + length,
	    client->length - (size_t)length);
	client->length -= (size_t)length;
	assert_int_equal(
	    smpp_pdu_decode(bytes, (size_t)length, pdu), SMPP_ESME_ROK);
	assert_int_equal(
	    pdu->command_id, request->command_id | SMPP_RESPONSE_BIT);
	assert_int_equal(pdu->sequence_number, request->sequence_number);
}

static void
test_tls_listener_binds_and_submits(void **state)
{
	struct tls_client client;
	struct sockaddr_in address;
	struct smpp_pdu request, response;
	uint8_t bytes[512];
	SSL_CTX *context;
	SSL *ssl;

	memset(&client, 0, sizeof(client));
	context = SSL_CTX_new(TLS_client_method());
	assert_non_null(context);
	SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
	ssl = SSL_new(context);
	assert_non_null(ssl);
	client.bufferevent = bufferevent_openssl_socket_new(world.base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(client.bufferevent);
	bufferevent_setcb(client.bufferevent, tls_client_read, NULL,
	    tls_client_event, &client);
	bufferevent_enable(client.bufferevent, EV_READ | EV_WRITE);
	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_port = htons(tls_port);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bufferevent_socket_connect(client.bufferevent,
			     (struct sockaddr *)&address, sizeof(address)),
	    0);
	RUN_UNTIL(client.connected || client.failed, WAIT_MS);
	assert_true(client.connected);

	memset(&request, 0, sizeof(request));
	request.command_id = SMPP_BIND_TRANSCEIVER;
	request.sequence_number = 1;
	request.system_id = "other";
	request.password = "otherpw";
	request.interface_version = SMPP_INTERFACE_VERSION;
	tls_exchange(&client, &request, &response, bytes);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	fill_submit(&request, "+4915100000300", "over tls");
	request.sequence_number = 2;
	tls_exchange(&client, &request, &response, bytes);
	assert_int_equal(response.command_status, SMPP_ESME_ROK);
	assert_true(strtoull(response.message_id, NULL, 10) > 0);
	bufferevent_free(client.bufferevent);
	SSL_CTX_free(context);
}

#define SERVER_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    SERVER_TEST(test_bind_kinds_accepted),
	    SERVER_TEST(test_bind_failures),
	    SERVER_TEST(test_submit_before_bind_refused),
	    SERVER_TEST(test_wrong_passwords_delayed_then_blocked),
	    SERVER_TEST(test_submit_answered_after_commit),
	    SERVER_TEST(test_long_message_parts_kept),
	    SERVER_TEST(test_submit_validation),
	    SERVER_TEST(test_data_sm_accepted),
	    SERVER_TEST(test_throttled_above_tps),
	    SERVER_TEST(test_marketing_to_opted_out_refused),
	    SERVER_TEST(test_submit_multi_per_destination),
	    SERVER_TEST(test_query_replace_cancel),
	    SERVER_TEST(test_unknown_command_gets_generic_nack),
	    SERVER_TEST(test_undecodable_request_answered),
	    SERVER_TEST(test_bad_lengths_close_only_their_session),
	    SERVER_TEST(test_peer_not_reading_is_paused),
	    SERVER_TEST(test_enquire_link_and_dead_peer),
	    SERVER_TEST(test_idle_and_bind_timeouts),
	    SERVER_TEST(test_unbind_answered_and_closed),
	    SERVER_TEST(test_shutdown_unbinds_every_session),
	    SERVER_TEST(test_receipts_wait_for_a_receiver),
	    SERVER_TEST(test_queue_survives_restart),
	    SERVER_TEST(test_mo_routed_to_account),
	    SERVER_TEST(test_queue_bound_drops_oldest),
	    cmocka_unit_test_setup_teardown(
		test_tls_listener_binds_and_submits, setup_tls, teardown_tls),
	    /* Last: it moves the test clock forward. */
	    SERVER_TEST(test_expired_deliveries_dropped),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init(1, getenv("TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
