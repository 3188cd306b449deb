/*
 * test_link.c - upstream links against a tiny SMSC written here with smpp/
 * and libevent, over real sockets on 127.0.0.1, with a real event loop and
 * a real store in a mkdtemp() directory (so deliver_sm answers really wait
 * for the commit). Every loop run is bounded by a deadline timer.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

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
#include <event2/listener.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smpp.h"
#include "nudged.h"

#define SMSC_MAX_CLIENTS 8
#define SMSC_MAX_SUBMITS 64
#define RECORDED_MAX     64

/* How the test SMSC answers submit_sm. */
enum smsc_submit_mode {
	SMSC_ANSWER = 0, /* ESME_ROK with "msg-N" */
	SMSC_THROTTLE,   /* ESME_RTHROTTLED */
	SMSC_SILENT,     /* no answer at all */
	SMSC_NACK,       /* generic_nack ESME_RSYSERR */
};

struct smsc;

struct smsc_client {
	struct smsc *smsc;
	struct bufferevent *bufferevent;
	uint32_t bound_as; /* bind command id once bound */
};

struct smsc_submit {
	uint32_t sequence_number;
	uint32_t bound_as; /* of the connection it came on */
	char source[32];
	uint8_t source_ton;
	uint8_t source_npi;
	char destination[32];
	uint8_t registered_delivery;
	uint8_t short_message[256];
	size_t short_message_length;
	int answered;
	struct smsc_client *client;
};

struct smsc {
	struct event_base *base;
	struct store *store;
	struct evconnlistener *listener;
	SSL_CTX *tls; /* non-NULL: clients speak TLS */
	uint16_t port;
	uint32_t bind_status;
	enum smsc_submit_mode submit_mode;
	int answer_enquire_link;
	struct smsc_client *clients[SMSC_MAX_CLIENTS];
	int accepted;
	int bind_attempts;
	int binds_transceiver;
	int binds_transmitter;
	int binds_receiver;
	uint64_t bind_times_us[8];
	char system_id[32];
	char password[16];
	uint8_t interface_version;
	int submits;
	struct smsc_submit submit[SMSC_MAX_SUBMITS];
	int next_message_id;
	int deliver_responses;
	uint32_t deliver_response_status;
	uint32_t deliver_response_sequence;
	uint32_t deliver_response_bound_as;
	uint64_t commits_at_deliver_response;
	int generic_nacks;
	uint32_t generic_nack_status;
	uint32_t generic_nack_sequence;
	int unbinds;
	int unbind_responses;
	uint32_t unbind_response_status;
	int enquire_links;
	int closed_by_peer;
	int deliver_sequence;
};

struct recorded_response {
	uint64_t cookie;
	uint32_t status;
	int has_id;
	char message_id[72];
};

struct recorded_lost {
	uint64_t cookie;
	char reason[32];
};

struct fixture {
	char path[64];
	struct event_base *base;
	struct store *store;
	struct smsc smsc;
	/* configuration the link reads */
	struct config config;
	struct config_link link_config;
	struct config_link *links[1];
	char name[32];
	char host[32];
	char system_id[16];
	char password[16];
	char system_type[16];
	char source_addr[24];
	char routes[8];
	/* what the link reported */
	int available;
	int responses;
	struct recorded_response response[RECORDED_MAX];
	int lost;
	struct recorded_lost lost_list[RECORDED_MAX];
	int delivers;
	uint32_t deliver_status; /* what the handler answers */
	char deliver_source[32];
	char deliver_text[32];
	uint64_t commits_at_deliver;
};

/* ---- bounded loop runs -------------------------------------------------- */

static void
deadline_expired(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/*
 * Runs the loop until condition holds or milliseconds pass; the deadline
 * timer wakes EVLOOP_ONCE, so a bug cannot hang the suite.
 */
#define RUN_UNTIL(fixture, condition, milliseconds)                         \
	do {                                                                \
		struct timeval run_tv_ = {                                  \
		    (milliseconds) / 1000, ((milliseconds) % 1000) * 1000}; \
		int run_expired_ = 0;                                       \
		struct event *run_timer_ = evtimer_new(                     \
		    (fixture)->base, deadline_expired, &run_expired_);      \
		assert_non_null(run_timer_);                                \
		evtimer_add(run_timer_, &run_tv_);                          \
		while (!(condition) && !run_expired_)                       \
			event_base_loop((fixture)->base, EVLOOP_ONCE);      \
		event_free(run_timer_);                                     \
	} while (0)

/* ---- the test SMSC ------------------------------------------------------ */

static void
smsc_send_pdu(struct smsc_client *client, const struct smpp_pdu *pdu)
{
	uint8_t buffer[1024];
	int length;

	length = smpp_pdu_encode(pdu, buffer, sizeof(buffer));
	assert_true(length > 0);
	bufferevent_write(client->bufferevent, buffer, (size_t)length);
}

static void
smsc_send_header(struct smsc_client *client, uint32_t command_id,
    uint32_t status, uint32_t sequence_number)
{
	uint8_t header[SMPP_HEADER_LENGTH];

	smpp_pdu_encode_header_only(
	    header, sizeof(header), command_id, status, sequence_number);
	bufferevent_write(client->bufferevent, header, sizeof(header));
}

static void
smsc_client_free(struct smsc_client *client)
{
	struct smsc *smsc = client->smsc;
	int i;

	for (i = 0; i < SMSC_MAX_CLIENTS; i++)
		if (smsc->clients[i] == client)
			smsc->clients[i] = NULL;
	for (i = 0; i < smsc->submits && i < SMSC_MAX_SUBMITS; i++)
		if (smsc->submit[i].client == client)
			smsc->submit[i].client = NULL;
	bufferevent_free(client->bufferevent);
	free(client);
}

static void
smsc_answer_submit(struct smsc *smsc, struct smsc_submit *submit)
{
	char message_id[32];
	struct smpp_pdu response;

	if (submit->client == NULL || submit->answered)
		return;
	submit->answered = 1;
	memset(&response, 0, sizeof(response));
	response.command_id = SMPP_SUBMIT_SM_RESP;
	response.sequence_number = submit->sequence_number;
	snprintf(
	    message_id, sizeof(message_id), "msg-%d", ++smsc->next_message_id);
	response.message_id = message_id;
	smsc_send_pdu(submit->client, &response);
}

static void
smsc_handle_bind(struct smsc_client *client, const struct smpp_pdu *pdu)
{
	struct smsc *smsc = client->smsc;
	struct smpp_pdu response;

	if (smsc->bind_attempts < 8)
		smsc->bind_times_us[smsc->bind_attempts] = clock_monotonic_us();
	smsc->bind_attempts++;
	snprintf(smsc->system_id, sizeof(smsc->system_id), "%s",
	    pdu->system_id != NULL ? pdu->system_id : "");
	snprintf(smsc->password, sizeof(smsc->password), "%s",
	    pdu->password != NULL ? pdu->password : "");
	smsc->interface_version = pdu->interface_version;
	memset(&response, 0, sizeof(response));
	response.command_id = pdu->command_id | SMPP_RESPONSE_BIT;
	response.command_status = smsc->bind_status;
	response.sequence_number = pdu->sequence_number;
	response.system_id =
	    smsc->bind_status == SMPP_ESME_ROK ? "testsmsc" : NULL;
	smsc_send_pdu(client, &response);
	if (smsc->bind_status != SMPP_ESME_ROK)
		return;
	client->bound_as = pdu->command_id;
	if (pdu->command_id == SMPP_BIND_TRANSCEIVER)
		smsc->binds_transceiver++;
	else if (pdu->command_id == SMPP_BIND_TRANSMITTER)
		smsc->binds_transmitter++;
	else
		smsc->binds_receiver++;
}

static void
smsc_handle_submit(struct smsc_client *client, const struct smpp_pdu *pdu)
{
	struct smsc *smsc = client->smsc;
	struct smsc_submit *submit;

	assert_true(smsc->submits < SMSC_MAX_SUBMITS);
	submit = &smsc->submit[smsc->submits++];
	submit->sequence_number = pdu->sequence_number;
	submit->bound_as = client->bound_as;
	submit->client = client;
	snprintf(
	    submit->source, sizeof(submit->source), "%s", pdu->source_addr);
	submit->source_ton = pdu->source_addr_ton;
	submit->source_npi = pdu->source_addr_npi;
	snprintf(submit->destination, sizeof(submit->destination), "%s",
	    pdu->destination_addr);
	submit->registered_delivery = pdu->registered_delivery;
	memcpy(submit->short_message, pdu->short_message, pdu->sm_length);
	submit->short_message_length = pdu->sm_length;
	switch (smsc->submit_mode) {
	case SMSC_ANSWER:
		smsc_answer_submit(smsc, submit);
		break;
	case SMSC_THROTTLE:
		submit->answered = 1;
		smsc_send_header(client, SMPP_SUBMIT_SM_RESP,
		    SMPP_ESME_RTHROTTLED, pdu->sequence_number);
		break;
	case SMSC_NACK:
		submit->answered = 1;
		smsc_send_header(client, SMPP_GENERIC_NACK, SMPP_ESME_RSYSERR,
		    pdu->sequence_number);
		break;
	case SMSC_SILENT:
		break;
	}
}

static void
smsc_handle(struct smsc_client *client, const struct smpp_pdu *pdu)
{
	struct smsc *smsc = client->smsc;
	struct store_stats stats;

	switch (pdu->command_id) {
	case SMPP_BIND_TRANSCEIVER:
	case SMPP_BIND_TRANSMITTER:
	case SMPP_BIND_RECEIVER:
		smsc_handle_bind(client, pdu);
		break;
	case SMPP_SUBMIT_SM:
		smsc_handle_submit(client, pdu);
		break;
	case SMPP_DELIVER_SM_RESP:
	case SMPP_DATA_SM_RESP:
		smsc->deliver_responses++;
		smsc->deliver_response_status = pdu->command_status;
		smsc->deliver_response_sequence = pdu->sequence_number;
		smsc->deliver_response_bound_as = client->bound_as;
		store_get_stats(smsc->store, &stats);
		smsc->commits_at_deliver_response = stats.commits;
		break;
	case SMPP_ENQUIRE_LINK:
		smsc->enquire_links++;
		if (smsc->answer_enquire_link)
			smsc_send_header(client, SMPP_ENQUIRE_LINK_RESP,
			    SMPP_ESME_ROK, pdu->sequence_number);
		break;
	case SMPP_UNBIND:
		smsc->unbinds++;
		smsc_send_header(client, SMPP_UNBIND_RESP, SMPP_ESME_ROK,
		    pdu->sequence_number);
		break;
	case SMPP_UNBIND_RESP:
		smsc->unbind_responses++;
		smsc->unbind_response_status = pdu->command_status;
		break;
	case SMPP_GENERIC_NACK:
		smsc->generic_nacks++;
		smsc->generic_nack_status = pdu->command_status;
		smsc->generic_nack_sequence = pdu->sequence_number;
		break;
	default:
		break;
	}
}

static void
smsc_read(struct bufferevent *bufferevent, void *arg)
{
	struct smsc_client *client = arg;
	struct evbuffer *input = bufferevent_get_input(bufferevent);
	struct smpp_pdu pdu;
	uint8_t head[4], *data;
	uint32_t length;

	while (evbuffer_get_length(input) >= sizeof(head)) {
		evbuffer_copyout(input, head, sizeof(head));
		length = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
			 (uint32_t)head[2] << 8 | head[3];
		assert_true(length >= SMPP_HEADER_LENGTH);
		if (evbuffer_get_length(input) < length)
			break;
		data = evbuffer_pullup(input, length);
		assert_int_equal(
		    smpp_pdu_decode(data, length, &pdu), SMPP_ESME_ROK);
		smsc_handle(client, &pdu);
		evbuffer_drain(input, length);
	}
}

static void
smsc_event(struct bufferevent *bufferevent, short what, void *arg)
{
	struct smsc_client *client = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		client->smsc->closed_by_peer++;
		smsc_client_free(client);
	}
}

static void
smsc_accept(struct evconnlistener *listener, evutil_socket_t fd,
    struct sockaddr *address, int length, void *arg)
{
	struct smsc *smsc = arg;
	struct smsc_client *client;
	int i, on = 1;

	smsc->accepted++;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	client = calloc(1, sizeof(*client));
	assert_non_null(client);
	client->smsc = smsc;
	if (smsc->tls != NULL)
		client->bufferevent = bufferevent_openssl_socket_new(smsc->base,
		    fd, SSL_new(smsc->tls), BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
	else
		client->bufferevent = bufferevent_socket_new(
		    smsc->base, fd, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(client->bufferevent);
	for (i = 0; i < SMSC_MAX_CLIENTS; i++)
		if (smsc->clients[i] == NULL)
			break;
	assert_true(i < SMSC_MAX_CLIENTS);
	smsc->clients[i] = client;
	bufferevent_setcb(
	    client->bufferevent, smsc_read, NULL, smsc_event, client);
	bufferevent_enable(client->bufferevent, EV_READ | EV_WRITE);
}

static void
smsc_start(struct smsc *smsc, struct event_base *base, struct store *store)
{
	struct sockaddr_in address;
	socklen_t length = sizeof(address);

	memset(smsc, 0, sizeof(*smsc));
	smsc->base = base;
	smsc->store = store;
	smsc->answer_enquire_link = 1;
	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	smsc->listener = evconnlistener_new_bind(base, smsc_accept, smsc,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&address, sizeof(address));
	assert_non_null(smsc->listener);
	assert_int_equal(getsockname(evconnlistener_get_fd(smsc->listener),
			     (struct sockaddr *)&address, &length),
	    0);
	smsc->port = ntohs(address.sin_port);
}

static void
smsc_drop_all(struct smsc *smsc)
{
	int i;

	for (i = 0; i < SMSC_MAX_CLIENTS; i++)
		if (smsc->clients[i] != NULL)
			smsc_client_free(smsc->clients[i]);
}

static void
smsc_stop(struct smsc *smsc)
{
	smsc_drop_all(smsc);
	evconnlistener_free(smsc->listener);
	if (smsc->tls != NULL)
		SSL_CTX_free(smsc->tls);
}

/* The first client bound for receiving (transceiver or receiver). */
static struct smsc_client *
smsc_receiving_client(struct smsc *smsc)
{
	int i;

	for (i = 0; i < SMSC_MAX_CLIENTS; i++)
		if (smsc->clients[i] != NULL &&
		    (smsc->clients[i]->bound_as == SMPP_BIND_TRANSCEIVER ||
			smsc->clients[i]->bound_as == SMPP_BIND_RECEIVER))
			return smsc->clients[i];
	return NULL;
}

static int
smsc_bound_clients(struct smsc *smsc)
{
	int i, count = 0;

	for (i = 0; i < SMSC_MAX_CLIENTS; i++)
		if (smsc->clients[i] != NULL && smsc->clients[i]->bound_as != 0)
			count++;
	return count;
}

/* An MO deliver_sm; returns its sequence number. */
static uint32_t
smsc_send_deliver(struct smsc *smsc, const char *text)
{
	struct smsc_client *client = smsc_receiving_client(smsc);
	struct smpp_pdu pdu;

	assert_non_null(client);
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_DELIVER_SM;
	pdu.sequence_number = (uint32_t)(1000 + ++smsc->deliver_sequence);
	pdu.source_addr = "+393401234567";
	pdu.source_addr_ton = 1;
	pdu.source_addr_npi = 1;
	pdu.destination_addr = "12345";
	pdu.short_message = (const uint8_t *)text;
	pdu.sm_length = (uint8_t)strlen(text);
	smsc_send_pdu(client, &pdu);
	return pdu.sequence_number;
}

/* A self-signed certificate, made here so no key file ships with tests. */
static SSL_CTX *
smsc_tls_context(void)
{
	EVP_PKEY *key;
	X509 *certificate;
	X509_NAME *name;
	SSL_CTX *context;

	key = EVP_RSA_gen(2048);
	assert_non_null(key);
	certificate = X509_new();
	assert_non_null(certificate);
	X509_set_version(certificate, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
	X509_gmtime_adj(X509_getm_notBefore(certificate), -60);
	X509_gmtime_adj(X509_getm_notAfter(certificate), 3600);
	X509_set_pubkey(certificate, key);
	name = X509_get_subject_name(certificate);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"smsc.test", -1, -1, 0);
	X509_set_issuer_name(certificate, name);
	assert_true(X509_sign(certificate, key, EVP_sha256()) > 0);
	context = SSL_CTX_new(TLS_server_method());
	assert_non_null(context);
	assert_int_equal(SSL_CTX_use_certificate(context, certificate), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(context, key), 1);
	X509_free(certificate);
	EVP_PKEY_free(key);
	return context;
}

/* ---- what the link reports ---------------------------------------------- */

static void
on_available(void *arg, struct link *link)
{
	struct fixture *fixture = arg;

	fixture->available++;
}

static void
on_response(void *arg, struct link *link, uint64_t cookie, uint32_t status,
    const char *message_id)
{
	struct fixture *fixture = arg;
	struct recorded_response *response;

	assert_true(fixture->responses < RECORDED_MAX);
	response = &fixture->response[fixture->responses++];
	response->cookie = cookie;
	response->status = status;
	response->has_id = message_id != NULL;
	snprintf(response->message_id, sizeof(response->message_id), "%s",
	    message_id != NULL ? message_id : "");
}

static void
on_lost(void *arg, struct link *link, uint64_t cookie, const char *reason)
{
	struct fixture *fixture = arg;
	struct recorded_lost *lost;

	assert_true(fixture->lost < RECORDED_MAX);
	lost = &fixture->lost_list[fixture->lost++];
	lost->cookie = cookie;
	snprintf(lost->reason, sizeof(lost->reason), "%s", reason);
}

/* Writes what arrived to the store, like the outbox would. */
static uint32_t
on_deliver(void *arg, struct link *link, const struct smpp_pdu *pdu)
{
	struct fixture *fixture = arg;
	struct store_stats stats;
	char key[32];

	fixture->delivers++;
	snprintf(fixture->deliver_source, sizeof(fixture->deliver_source), "%s",
	    pdu->source_addr);
	snprintf(fixture->deliver_text, sizeof(fixture->deliver_text), "%.*s",
	    (int)pdu->sm_length, (const char *)pdu->short_message);
	snprintf(key, sizeof(key), "test-deliver-%d", fixture->delivers);
	assert_int_equal(
	    store_put(fixture->store, STORE_DB_META, key, strlen(key),
		pdu->short_message, pdu->sm_length, 0),
	    STORE_OK);
	store_get_stats(fixture->store, &stats);
	fixture->commits_at_deliver = stats.commits;
	return fixture->deliver_status;
}

static const struct link_events test_events = {
    .available = on_available,
    .response = on_response,
    .lost = on_lost,
    .deliver = on_deliver,
};

/* ---- fixture ------------------------------------------------------------ */

static int
setup(void **state)
{
	struct fixture *fixture;
	struct store_options options;
	struct event_config *event_config;
	struct config_link *link;

	fixture = calloc(1, sizeof(*fixture));
	assert_non_null(fixture);
	strcpy(fixture->path, "/tmp/nudge-test-link-XXXXXX");
	assert_non_null(mkdtemp(fixture->path));
	event_config = event_config_new();
	assert_non_null(event_config);
	event_config_set_flag(event_config, EVENT_BASE_FLAG_PRECISE_TIMER);
	fixture->base = event_base_new_with_config(event_config);
	event_config_free(event_config);
	assert_non_null(fixture->base);
	memset(&options, 0, sizeof(options));
	options.path = fixture->path;
	fixture->store = store_open(&options);
	assert_non_null(fixture->store);
	store_attach(fixture->store, fixture->base);
	gateway->store = fixture->store;
	smsc_start(&fixture->smsc, fixture->base, fixture->store);

	strcpy(fixture->name, "carrier-a");
	strcpy(fixture->host, "127.0.0.1");
	strcpy(fixture->system_id, "nudge");
	strcpy(fixture->password, "secret");
	strcpy(fixture->source_addr, "NUDGE");
	link = &fixture->link_config;
	link->name = fixture->name;
	link->host = fixture->host;
	link->port = fixture->smsc.port;
	link->system_id = fixture->system_id;
	link->password = fixture->password;
	link->system_type = fixture->system_type;
	link->bind = CONFIG_LINK_BIND_TRANSCEIVER;
	link->tls_verify = 1;
	link->tps = 0;
	link->window = 8;
	link->enquire_link_us = 30000000;
	link->response_timeout_us = 5000000;
	link->bind_timeout_us = 2000000;
	link->reconnect_min_us = 20000;
	link->reconnect_max_us = 200000;
	link->source_addr = fixture->source_addr;
	link->source_ton = 1;
	link->source_npi = 1;
	link->dest_ton = 1;
	link->dest_npi = 1;
	link->routes = fixture->routes;
	link->priority = 100;
	fixture->links[0] = link;
	fixture->config.links = fixture->links;
	fixture->config.link_count = 1;
	fixture->config.smpp_max_pdu_length = 65536;
	*state = fixture;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fixture = *state;
	char file[128];

	link_free_all();
	smsc_stop(&fixture->smsc);
	store_close(fixture->store);
	gateway->store = NULL;
	event_base_free(fixture->base);
	metrics_reset();
	snprintf(file, sizeof(file), "%s/data.mdb", fixture->path);
	unlink(file);
	snprintf(file, sizeof(file), "%s/lock.mdb", fixture->path);
	unlink(file);
	rmdir(fixture->path);
	free(fixture);
	return 0;
}

static void
start_links(struct fixture *fixture)
{
	struct link_events events = test_events;

	events.arg = fixture;
	link_start_all(fixture->base, &fixture->config, &events);
}

static struct link *
start_and_bind(struct fixture *fixture)
{
	struct link *link;

	start_links(fixture);
	link = link_find("carrier-a");
	assert_non_null(link);
	RUN_UNTIL(fixture, link_get_state(link) == LINK_BOUND, 3000);
	assert_int_equal(link_get_state(link), LINK_BOUND);
	return link;
}

/* A submit of text to +393401234567 with the link's sender. */
static struct link_submit
make_submit(const char *text)
{
	struct link_submit submit;

	memset(&submit, 0, sizeof(submit));
	submit.destination_addr = "+393401234567";
	submit.dest_addr_ton = 1;
	submit.dest_addr_npi = 1;
	submit.registered_delivery = 1;
	submit.short_message = (const uint8_t *)text;
	submit.short_message_length = strlen(text);
	return submit;
}

static int
metrics_contain(const char *needle)
{
	struct evbuffer *out = evbuffer_new();
	size_t length;
	char *text;
	int found;

	assert_non_null(out);
	metrics_render(out);
	length = evbuffer_get_length(out);
	text = malloc(length + 1);
	assert_non_null(text);
	evbuffer_remove(out, text, length);
	text[length] = '\0';
	found = strstr(text, needle) != NULL;
	free(text);
	evbuffer_free(out);
	return found;
}

static double
current_rate_limit(const struct link *link)
{
	struct link_stats stats;

	link_get_stats(link, &stats);
	return stats.rate_limit;
}

/* ---- tests -------------------------------------------------------------- */

static void
test_transceiver_binds(void **state)
{
	struct fixture *fixture = *state;
	struct link_stats stats;
	struct link *link;

	link = start_and_bind(fixture);
	assert_int_equal(link_count(), 1);
	assert_ptr_equal(link_get(0), link);
	assert_null(link_get(1));
	assert_null(link_find("carrier-b"));
	assert_string_equal(link_name(link), "carrier-a");
	assert_ptr_equal(link_config(link), &fixture->link_config);
	assert_string_equal(link_strstate(LINK_BOUND), "BOUND");
	assert_string_equal(link_strstate(LINK_BACKOFF), "BACKOFF");
	assert_int_equal(fixture->smsc.binds_transceiver, 1);
	assert_int_equal(fixture->smsc.binds_transmitter, 0);
	assert_int_equal(fixture->smsc.binds_receiver, 0);
	assert_string_equal(fixture->smsc.system_id, "nudge");
	assert_string_equal(fixture->smsc.password, "secret");
	assert_int_equal(fixture->smsc.interface_version, 0x34);
	assert_int_equal(fixture->available, 1);
	assert_int_equal(link_capacity(link), 8);
	link_get_stats(link, &stats);
	assert_int_equal(stats.state, LINK_BOUND);
	assert_int_equal(stats.binds, 1);
	assert_int_equal(stats.reconnects, 0);
	assert_int_equal(stats.window_size, 8);
	assert_int_equal(stats.window_used, 0);
	assert_true(stats.rate_limit == 0);
	assert_true(
	    metrics_contain("nudge_link_state{link=\"carrier-a\"} 3\n"));
	assert_true(
	    metrics_contain("nudge_link_binds_total{link=\"carrier-a\"} 1\n"));
}

static void
test_pair_binds_transmitter_and_receiver(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("pair");
	struct link *link;
	uint32_t sequence;

	fixture->link_config.bind = CONFIG_LINK_BIND_PAIR;
	link = start_and_bind(fixture);
	RUN_UNTIL(fixture, smsc_bound_clients(&fixture->smsc) == 2, 3000);
	assert_int_equal(fixture->smsc.binds_transmitter, 1);
	assert_int_equal(fixture->smsc.binds_receiver, 1);
	assert_int_equal(fixture->smsc.binds_transceiver, 0);

	/* Submits go to the transmitter. */
	assert_int_equal(link_submit(link, &submit, 11), 0);
	RUN_UNTIL(fixture, fixture->responses == 1, 3000);
	assert_int_equal(fixture->responses, 1);
	assert_int_equal(
	    fixture->smsc.submit[0].bound_as, SMPP_BIND_TRANSMITTER);
	assert_int_equal(fixture->response[0].cookie, 11);
	assert_int_equal(fixture->response[0].status, SMPP_ESME_ROK);
	assert_string_equal(fixture->response[0].message_id, "msg-1");

	/* deliver_sm comes on the receiver and is answered there. */
	sequence = smsc_send_deliver(&fixture->smsc, "hello pair");
	RUN_UNTIL(fixture, fixture->smsc.deliver_responses == 1, 3000);
	assert_int_equal(fixture->smsc.deliver_responses, 1);
	assert_int_equal(
	    fixture->smsc.deliver_response_bound_as, SMPP_BIND_RECEIVER);
	assert_int_equal(fixture->smsc.deliver_response_sequence, sequence);
	assert_int_equal(fixture->delivers, 1);
	assert_string_equal(fixture->deliver_text, "hello pair");

	/* Stopping unbinds both. */
	link_stop_all();
	RUN_UNTIL(fixture, link_all_idle(), 3000);
	assert_true(link_all_idle());
	assert_int_equal(fixture->smsc.unbinds, 2);
}

static void
test_submit_gets_response_with_id(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("hi there");
	char long_destination[40];
	uint8_t too_long[300];
	struct smsc_submit *sent = fixture->smsc.submit;
	struct link_stats stats;
	struct link *link;

	fixture->link_config.source_ton = 2;
	link = start_and_bind(fixture);
	assert_int_equal(link_submit(link, &submit, 42), 0);
	link_get_stats(link, &stats);
	assert_int_equal(stats.submitted, 1);
	assert_int_equal(stats.window_used, 1);
	RUN_UNTIL(fixture, fixture->responses == 1, 3000);
	assert_int_equal(fixture->responses, 1);
	assert_int_equal(fixture->response[0].cookie, 42);
	assert_int_equal(fixture->response[0].status, SMPP_ESME_ROK);
	assert_true(fixture->response[0].has_id);
	assert_string_equal(fixture->response[0].message_id, "msg-1");
	/* An alphanumeric link sender goes with TON 5, NPI 0. */
	assert_string_equal(sent[0].source, "NUDGE");
	assert_int_equal(sent[0].source_ton, 5);
	assert_int_equal(sent[0].source_npi, 0);
	assert_string_equal(sent[0].destination, "+393401234567");
	assert_int_equal(sent[0].registered_delivery, 1);
	assert_int_equal(sent[0].short_message_length, 8);
	assert_memory_equal(sent[0].short_message, "hi there", 8);

	/* A sender given by the caller goes as given. */
	submit.source_addr = "4915112345678";
	submit.source_addr_ton = 1;
	submit.source_addr_npi = 1;
	assert_int_equal(link_submit(link, &submit, 43), 0);
	/* A numeric link sender takes the configured TON/NPI. */
	strcpy(fixture->source_addr, "4930123456");
	submit.source_addr = NULL;
	assert_int_equal(link_submit(link, &submit, 44), 0);
	RUN_UNTIL(fixture, fixture->responses == 3, 3000);
	assert_int_equal(fixture->responses, 3);
	assert_string_equal(sent[1].source, "4915112345678");
	assert_int_equal(sent[1].source_ton, 1);
	assert_string_equal(sent[2].source, "4930123456");
	assert_int_equal(sent[2].source_ton, 2);
	assert_int_equal(sent[2].source_npi, 1);
	assert_int_equal(fixture->response[1].cookie, 43);
	assert_string_equal(fixture->response[1].message_id, "msg-2");
	assert_int_equal(fixture->response[2].cookie, 44);
	assert_string_equal(fixture->response[2].message_id, "msg-3");
	/* One for the bind, one per response that freed a slot. */
	assert_int_equal(fixture->available, 4);

	link_get_stats(link, &stats);
	assert_int_equal(stats.submitted, 3);
	assert_int_equal(stats.acknowledged, 3);
	assert_int_equal(stats.rejected, 0);
	assert_int_equal(stats.window_used, 0);
	assert_true(metrics_contain("nudge_link_submit_response_seconds_count"
				    "{link=\"carrier-a\"} 3\n"));
	assert_true(metrics_contain(
	    "nudge_link_acknowledged_total{link=\"carrier-a\"} 3\n"));

	/* What can never be encoded is refused, taking no window slot. */
	memset(too_long, 'x', sizeof(too_long));
	submit.short_message = too_long;
	submit.short_message_length = sizeof(too_long);
	assert_int_equal(link_submit(link, &submit, 45), -2);
	submit = make_submit("ok");
	memset(long_destination, '1', sizeof(long_destination) - 1);
	long_destination[sizeof(long_destination) - 1] = '\0';
	submit.destination_addr = long_destination;
	assert_int_equal(link_submit(link, &submit, 46), -2);
	link_get_stats(link, &stats);
	assert_int_equal(stats.submitted, 3);
	assert_int_equal(stats.window_used, 0);
}

static void
test_window_full_refuses(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("window");
	struct link_stats stats;
	struct link *link;
	int available;

	fixture->link_config.window = 2;
	fixture->smsc.submit_mode = SMSC_SILENT;
	link = start_and_bind(fixture);
	assert_int_equal(link_capacity(link), 2);
	assert_int_equal(link_submit(link, &submit, 1), 0);
	assert_int_equal(link_submit(link, &submit, 2), 0);
	assert_int_equal(link_capacity(link), 0);
	assert_int_equal(link_submit(link, &submit, 3), -1);
	link_get_stats(link, &stats);
	assert_int_equal(stats.window_used, 2);
	assert_int_equal(stats.submitted, 2);

	/* A response frees a slot and says so. */
	RUN_UNTIL(fixture, fixture->smsc.submits == 2, 3000);
	assert_int_equal(fixture->smsc.submits, 2);
	available = fixture->available;
	smsc_answer_submit(&fixture->smsc, &fixture->smsc.submit[0]);
	RUN_UNTIL(fixture, fixture->responses == 1, 3000);
	assert_int_equal(fixture->responses, 1);
	assert_int_equal(fixture->response[0].cookie, 1);
	assert_int_equal(fixture->available, available + 1);
	assert_int_equal(link_capacity(link), 1);
	assert_int_equal(link_submit(link, &submit, 3), 0);
	assert_int_equal(link_capacity(link), 0);
}

static void
test_rate_cap_blocks_then_refills(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("paced");
	struct link *link;
	int available;

	/* 10/s: a bucket one part deep; no responses to muddle events. */
	fixture->link_config.tps = 10;
	fixture->smsc.submit_mode = SMSC_SILENT;
	link = start_and_bind(fixture);
	assert_true(current_rate_limit(link) == 10.0);
	assert_int_equal(link_capacity(link), 1);
	assert_int_equal(link_submit(link, &submit, 1), 0);
	assert_int_equal(link_submit(link, &submit, 2), -1);
	available = fixture->available;
	RUN_UNTIL(fixture, fixture->available > available, 3000);
	assert_int_equal(fixture->available, available + 1);
	assert_int_equal(link_capacity(link), 1);
	assert_int_equal(link_submit(link, &submit, 2), 0);
}

static void
test_throttled_response_halves_rate(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("slow down");
	struct link_stats stats;
	struct link *link;

	fixture->link_config.tps = 100;
	fixture->link_config.window = 64;
	fixture->smsc.submit_mode = SMSC_THROTTLE;
	link = start_and_bind(fixture);
	assert_true(current_rate_limit(link) == 100.0);
	/* The bucket holds a tenth of a second: 10 parts. */
	assert_int_equal(link_capacity(link), 10);
	assert_int_equal(link_submit(link, &submit, 5), 0);
	RUN_UNTIL(fixture, fixture->responses == 1, 3000);
	/* The response still reaches the outbox, which requeues the part. */
	assert_int_equal(fixture->responses, 1);
	assert_int_equal(fixture->response[0].cookie, 5);
	assert_int_equal(fixture->response[0].status, SMPP_ESME_RTHROTTLED);
	assert_false(fixture->response[0].has_id);
	link_get_stats(link, &stats);
	assert_int_equal(stats.throttled, 1);
	assert_int_equal(stats.rejected, 0);
	assert_int_equal(stats.acknowledged, 0);
	assert_true(stats.rate_limit == 50.0);
	/* Paused for a moment. */
	assert_int_equal(link_capacity(link), 0);
	assert_int_equal(link_submit(link, &submit, 6), -1);

	/* After the pause, throttled again: halved again. */
	RUN_UNTIL(fixture, link_capacity(link) > 0, 3000);
	assert_true(link_capacity(link) > 0);
	assert_int_equal(link_submit(link, &submit, 6), 0);
	RUN_UNTIL(fixture, fixture->responses == 2, 3000);
	assert_int_equal(fixture->responses, 2);
	link_get_stats(link, &stats);
	assert_int_equal(stats.throttled, 2);
	assert_true(stats.rate_limit == 25.0);
	assert_true(metrics_contain(
	    "nudge_link_throttled_total{link=\"carrier-a\"} 2\n"));
}

static void
test_throttled_uncapped_link_gets_a_cap(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("uncapped");
	struct link *link;
	double rate;

	fixture->smsc.submit_mode = SMSC_THROTTLE;
	link = start_and_bind(fixture);
	assert_true(current_rate_limit(link) == 0);
	assert_int_equal(link_submit(link, &submit, 1), 0);
	RUN_UNTIL(fixture, fixture->responses == 1, 3000);
	assert_int_equal(fixture->responses, 1);
	/* One part measured: half of at most 10/s, never below 1/s. */
	rate = current_rate_limit(link);
	assert_true(rate >= 1.0 && rate <= 5.0);
}

static void
test_rate_grows_back_after_quiet_period(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("recover");
	struct link *link;
	double rate;

	fixture->link_config.tps = 100;
	fixture->smsc.submit_mode = SMSC_THROTTLE;
	link = start_and_bind(fixture);
	assert_int_equal(link_submit(link, &submit, 1), 0);
	RUN_UNTIL(fixture, fixture->responses == 1, 3000);
	assert_true(current_rate_limit(link) == 50.0);
	/* Two quiet seconds, then +10% of tps per second. */
	RUN_UNTIL(fixture, current_rate_limit(link) > 50.0, 5000);
	rate = current_rate_limit(link);
	assert_true(rate > 50.0 && rate <= 100.0);
}

static void
test_deliver_answered_after_commit(void **state)
{
	struct fixture *fixture = *state;
	struct link_stats stats;
	struct link *link;
	const void *value;
	size_t length;
	uint32_t sequence;

	link = start_and_bind(fixture);
	fixture->deliver_status = SMPP_ESME_ROK;
	sequence = smsc_send_deliver(&fixture->smsc, "hello");
	RUN_UNTIL(fixture, fixture->smsc.deliver_responses == 1, 3000);
	assert_int_equal(fixture->delivers, 1);
	assert_string_equal(fixture->deliver_source, "+393401234567");
	assert_string_equal(fixture->deliver_text, "hello");
	assert_int_equal(fixture->smsc.deliver_responses, 1);
	assert_int_equal(fixture->smsc.deliver_response_status, SMPP_ESME_ROK);
	assert_int_equal(fixture->smsc.deliver_response_sequence, sequence);
	/* The answer left only after the commit holding the handler's write. */
	assert_true(fixture->smsc.commits_at_deliver_response >
		    fixture->commits_at_deliver);
	assert_int_equal(store_get(fixture->store, STORE_DB_META,
			     "test-deliver-1", 14, &value, &length),
	    STORE_OK);
	assert_int_equal(length, 5);
	assert_memory_equal(value, "hello", 5);

	/* The handler's status goes back as given. */
	fixture->deliver_status = SMPP_ESME_RX_P_APPN;
	sequence = smsc_send_deliver(&fixture->smsc, "again");
	RUN_UNTIL(fixture, fixture->smsc.deliver_responses == 2, 3000);
	assert_int_equal(fixture->smsc.deliver_responses, 2);
	assert_int_equal(
	    fixture->smsc.deliver_response_status, SMPP_ESME_RX_P_APPN);
	assert_int_equal(fixture->smsc.deliver_response_sequence, sequence);
	link_get_stats(link, &stats);
	assert_int_equal(stats.delivered_in, 2);
}

/*
 * A deliver_sm followed, in the same segment, by a header whose
 * command_length is impossible: the link answers generic_nack
 * ESME_RINVCMDLEN and closes; the commit lands after the close, and the
 * deliver_sm_resp is dropped rather than sent on the next connection.
 */
static void
test_invalid_length_closes_and_drops_pending_answer(void **state)
{
	struct fixture *fixture = *state;
	struct smsc_client *client;
	struct smpp_pdu pdu;
	uint8_t bytes[256];
	struct link *link;
	int length;

	link = start_and_bind(fixture);
	client = smsc_receiving_client(&fixture->smsc);
	assert_non_null(client);
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_DELIVER_SM;
	pdu.sequence_number = 76;
	pdu.source_addr = "+393401234567";
	pdu.destination_addr = "12345";
	pdu.short_message = (const uint8_t *)"lost";
	pdu.sm_length = 4;
	length = smpp_pdu_encode(&pdu, bytes, sizeof(bytes));
	assert_true(length > 0);
	smpp_pdu_encode_header_only(
	    bytes + length, sizeof(bytes) - length, SMPP_ENQUIRE_LINK, 0, 77);
	bytes[length + 3] = 8; /* command_length 8: below the header */
	bufferevent_write(
	    client->bufferevent, bytes, (size_t)length + SMPP_HEADER_LENGTH);

	RUN_UNTIL(fixture,
	    fixture->smsc.generic_nacks == 1 &&
		fixture->smsc.closed_by_peer == 1,
	    3000);
	assert_int_equal(fixture->smsc.generic_nacks, 1);
	assert_int_equal(
	    fixture->smsc.generic_nack_status, SMPP_ESME_RINVCMDLEN);
	assert_int_equal(fixture->smsc.generic_nack_sequence, 77);
	assert_int_equal(fixture->smsc.closed_by_peer, 1);
	assert_int_equal(fixture->delivers, 1);

	RUN_UNTIL(fixture,
	    link_get_state(link) == LINK_BOUND &&
		fixture->smsc.binds_transceiver == 2,
	    3000);
	assert_int_equal(fixture->smsc.binds_transceiver, 2);
	assert_int_equal(fixture->smsc.deliver_responses, 0);
}

static void
test_refused_requests_keep_session(void **state)
{
	struct fixture *fixture = *state;
	struct smsc_client *client;
	struct smpp_pdu pdu;
	uint8_t bytes[256];
	struct link *link;
	int length;

	link = start_and_bind(fixture);
	client = smsc_receiving_client(&fixture->smsc);
	assert_non_null(client);

	/* An unknown command: generic_nack ESME_RINVCMDID. */
	smsc_send_header(client, 0x00000099, 0, 301);
	RUN_UNTIL(fixture, fixture->smsc.generic_nacks == 1, 3000);
	assert_int_equal(fixture->smsc.generic_nacks, 1);
	assert_int_equal(
	    fixture->smsc.generic_nack_status, SMPP_ESME_RINVCMDID);
	assert_int_equal(fixture->smsc.generic_nack_sequence, 301);

	/* A deliver_sm whose short message runs past its end. */
	memset(&pdu, 0, sizeof(pdu));
	pdu.command_id = SMPP_DELIVER_SM;
	pdu.sequence_number = 302;
	pdu.source_addr = "+393401234567";
	pdu.destination_addr = "12345";
	pdu.short_message = (const uint8_t *)"abc";
	pdu.sm_length = 3;
	length = smpp_pdu_encode(&pdu, bytes, sizeof(bytes));
	assert_true(length > 0);
	length--;
	bytes[3] = (uint8_t)length;
	bufferevent_write(client->bufferevent, bytes, (size_t)length);
	RUN_UNTIL(fixture, fixture->smsc.deliver_responses == 1, 3000);
	assert_int_equal(fixture->smsc.deliver_responses, 1);
	assert_int_equal(
	    fixture->smsc.deliver_response_status, SMPP_ESME_RINVMSGLEN);
	assert_int_equal(fixture->smsc.deliver_response_sequence, 302);
	assert_int_equal(fixture->delivers, 0);

	assert_int_equal(link_get_state(link), LINK_BOUND);
	assert_int_equal(fixture->smsc.closed_by_peer, 0);
	assert_int_equal(fixture->smsc.accepted, 1);
}

static void
test_generic_nack_answers_submit(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("nack me");
	struct link_stats stats;
	struct link *link;

	fixture->smsc.submit_mode = SMSC_NACK;
	link = start_and_bind(fixture);
	assert_int_equal(link_submit(link, &submit, 9), 0);
	RUN_UNTIL(fixture, fixture->responses == 1, 3000);
	assert_int_equal(fixture->responses, 1);
	assert_int_equal(fixture->response[0].cookie, 9);
	assert_int_equal(fixture->response[0].status, SMPP_ESME_RSYSERR);
	assert_false(fixture->response[0].has_id);
	link_get_stats(link, &stats);
	assert_int_equal(stats.rejected, 1);
	assert_int_equal(stats.window_used, 0);
}

static void
test_silent_peer_times_out(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("anyone?");
	struct link_stats stats;
	struct link *link;

	fixture->link_config.response_timeout_us = 200000;
	fixture->smsc.submit_mode = SMSC_SILENT;
	link = start_and_bind(fixture);
	assert_int_equal(link_submit(link, &submit, 7), 0);
	RUN_UNTIL(fixture, fixture->lost == 1, 3000);
	assert_int_equal(fixture->lost, 1);
	assert_int_equal(fixture->lost_list[0].cookie, 7);
	assert_string_equal(fixture->lost_list[0].reason, "response-timeout");
	assert_int_equal(fixture->responses, 0);
	link_get_stats(link, &stats);
	assert_int_equal(stats.timeouts, 1);
	assert_int_equal(stats.window_used, 0);
	assert_int_equal(stats.state, LINK_BOUND);

	/* A late answer is logged and dropped, not reported twice. */
	smsc_answer_submit(&fixture->smsc, &fixture->smsc.submit[0]);
	RUN_UNTIL(fixture, fixture->responses > 0, 300);
	assert_int_equal(fixture->responses, 0);
	assert_int_equal(link_get_state(link), LINK_BOUND);
}

static void
test_enquire_link_and_dead_peer(void **state)
{
	struct fixture *fixture = *state;
	struct link_stats stats;
	struct link *link;

	fixture->link_config.enquire_link_us = 100000;
	fixture->link_config.response_timeout_us = 300000;
	link = start_and_bind(fixture);
	RUN_UNTIL(fixture, fixture->smsc.enquire_links >= 2, 3000);
	assert_true(fixture->smsc.enquire_links >= 2);
	assert_int_equal(link_get_state(link), LINK_BOUND);
	assert_int_equal(fixture->smsc.closed_by_peer, 0);

	/* Unanswered, the link gives the peer up and binds again. */
	fixture->smsc.answer_enquire_link = 0;
	RUN_UNTIL(fixture, fixture->smsc.closed_by_peer == 1, 3000);
	assert_int_equal(fixture->smsc.closed_by_peer, 1);
	RUN_UNTIL(fixture,
	    link_get_state(link) == LINK_BOUND &&
		fixture->smsc.binds_transceiver == 2,
	    3000);
	assert_int_equal(fixture->smsc.binds_transceiver, 2);
	link_get_stats(link, &stats);
	assert_int_equal(stats.binds, 2);
	assert_int_equal(stats.reconnects, 1);
}

static void
test_dropped_connection_loses_outstanding(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("in flight");
	struct link_stats stats;
	struct link *link;
	int i;

	fixture->smsc.submit_mode = SMSC_SILENT;
	link = start_and_bind(fixture);
	for (i = 1; i <= 3; i++)
		assert_int_equal(link_submit(link, &submit, (uint64_t)i), 0);
	RUN_UNTIL(fixture, fixture->smsc.submits == 3, 3000);
	assert_int_equal(fixture->smsc.submits, 3);
	smsc_drop_all(&fixture->smsc);
	RUN_UNTIL(fixture, fixture->lost == 3, 3000);
	assert_int_equal(fixture->lost, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(fixture->lost_list[i].cookie, i + 1);
		assert_string_equal(
		    fixture->lost_list[i].reason, "connection-lost");
	}
	assert_int_equal(link_get_state(link), LINK_BACKOFF);
	assert_int_equal(link_submit(link, &submit, 4), -1);
	assert_int_equal(link_capacity(link), 0);

	RUN_UNTIL(fixture,
	    link_get_state(link) == LINK_BOUND &&
		fixture->smsc.binds_transceiver == 2,
	    3000);
	assert_int_equal(link_get_state(link), LINK_BOUND);
	link_get_stats(link, &stats);
	assert_int_equal(stats.binds, 2);
	assert_int_equal(stats.reconnects, 1);
	assert_int_equal(stats.window_used, 0);
	assert_int_equal(fixture->responses, 0);
}

static void
test_wrong_password_backs_off(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("never");
	struct link_stats stats;
	struct link *link;

	fixture->smsc.bind_status = SMPP_ESME_RINVPASWD;
	fixture->link_config.reconnect_min_us = 20000;
	fixture->link_config.reconnect_max_us = 400000;
	start_links(fixture);
	link = link_find("carrier-a");
	assert_non_null(link);
	RUN_UNTIL(fixture, fixture->smsc.bind_attempts >= 2, 3000);
	assert_true(fixture->smsc.bind_attempts >= 2);
	/*
	 * Credentials refused: the retry waits reconnect_max (400 ms +-20%),
	 * not reconnect_min (20 ms). Only a lower bound, with a wide margin.
	 */
	assert_true(
	    fixture->smsc.bind_times_us[1] - fixture->smsc.bind_times_us[0] >=
	    200000);
	assert_int_equal(fixture->smsc.binds_transceiver, 0);
	assert_int_equal(fixture->available, 0);
	assert_int_not_equal(link_get_state(link), LINK_BOUND);
	assert_int_equal(link_submit(link, &submit, 1), -1);
	assert_int_equal(link_capacity(link), 0);
	link_get_stats(link, &stats);
	assert_int_equal(stats.binds, 0);
}

static void
test_stop_unbinds_and_goes_idle(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("too late");
	struct link *link;

	link = start_and_bind(fixture);
	assert_false(link_all_idle());
	link_stop_all();
	assert_int_equal(link_get_state(link), LINK_UNBINDING);
	assert_false(link_all_idle());
	assert_int_equal(link_capacity(link), 0);
	assert_int_equal(link_submit(link, &submit, 1), -1);
	RUN_UNTIL(fixture, link_all_idle(), 3000);
	assert_true(link_all_idle());
	assert_int_equal(fixture->smsc.unbinds, 1);
	assert_int_equal(link_get_state(link), LINK_IDLE);
	/* And no reconnect afterwards. */
	RUN_UNTIL(fixture, fixture->smsc.accepted > 1, 200);
	assert_int_equal(fixture->smsc.accepted, 1);
}

static void
test_unbind_from_smsc_answered_then_rebinds(void **state)
{
	struct fixture *fixture = *state;
	struct smsc_client *client;
	struct link *link;

	link = start_and_bind(fixture);
	client = smsc_receiving_client(&fixture->smsc);
	assert_non_null(client);
	smsc_send_header(client, SMPP_UNBIND, 0, 555);
	RUN_UNTIL(fixture, fixture->smsc.unbind_responses == 1, 3000);
	assert_int_equal(fixture->smsc.unbind_responses, 1);
	assert_int_equal(fixture->smsc.unbind_response_status, SMPP_ESME_ROK);
	RUN_UNTIL(fixture,
	    link_get_state(link) == LINK_BOUND &&
		fixture->smsc.binds_transceiver == 2,
	    3000);
	assert_int_equal(fixture->smsc.binds_transceiver, 2);
}

static void
test_tls_binds_and_submits(void **state)
{
	struct fixture *fixture = *state;
	struct link_submit submit = make_submit("over tls");
	struct link *link;

	fixture->smsc.tls = smsc_tls_context();
	fixture->link_config.tls = 1;
	fixture->link_config.tls_verify = 0;
	link = start_and_bind(fixture);
	assert_int_equal(fixture->smsc.binds_transceiver, 1);
	assert_int_equal(link_submit(link, &submit, 1), 0);
	RUN_UNTIL(fixture, fixture->responses == 1, 3000);
	assert_int_equal(fixture->responses, 1);
	assert_string_equal(fixture->response[0].message_id, "msg-1");
}

static void
test_tls_verify_refuses_unknown_certificate(void **state)
{
	struct fixture *fixture = *state;
	struct link *link;

	fixture->smsc.tls = smsc_tls_context();
	fixture->link_config.tls = 1;
	fixture->link_config.tls_verify = 1;
	start_links(fixture);
	link = link_find("carrier-a");
	assert_non_null(link);
	RUN_UNTIL(fixture,
	    fixture->smsc.accepted >= 1 && link_get_state(link) == LINK_BACKOFF,
	    3000);
	assert_int_equal(link_get_state(link), LINK_BACKOFF);
	assert_int_equal(fixture->smsc.bind_attempts, 0);
	assert_int_equal(fixture->available, 0);
}

#define LINK_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    LINK_TEST(test_transceiver_binds),
	    LINK_TEST(test_pair_binds_transmitter_and_receiver),
	    LINK_TEST(test_submit_gets_response_with_id),
	    LINK_TEST(test_window_full_refuses),
	    LINK_TEST(test_rate_cap_blocks_then_refills),
	    LINK_TEST(test_throttled_response_halves_rate),
	    LINK_TEST(test_throttled_uncapped_link_gets_a_cap),
	    LINK_TEST(test_rate_grows_back_after_quiet_period),
	    LINK_TEST(test_deliver_answered_after_commit),
	    LINK_TEST(test_invalid_length_closes_and_drops_pending_answer),
	    LINK_TEST(test_refused_requests_keep_session),
	    LINK_TEST(test_generic_nack_answers_submit),
	    LINK_TEST(test_silent_peer_times_out),
	    LINK_TEST(test_enquire_link_and_dead_peer),
	    LINK_TEST(test_dropped_connection_loses_outstanding),
	    LINK_TEST(test_wrong_password_backs_off),
	    LINK_TEST(test_stop_unbinds_and_goes_idle),
	    LINK_TEST(test_unbind_from_smsc_answered_then_rebinds),
	    LINK_TEST(test_tls_binds_and_submits),
	    LINK_TEST(test_tls_verify_refuses_unknown_certificate),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init(1, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
