/*
 * test_smpp_session.c - the SMPP session state machine: the command table
 * per role and state, every transition, the window of outstanding
 * requests, sequence numbers and the timers, driven by a fake clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smpp.h"

#define SECOND 1000000ull
#define T0     (1700000000ull * SECOND) /* an arbitrary start */

/* Transitions seen by the log hook, as "FROM -> TO". */
struct transitions {
	int count;
	char lines[16][40];
};

static void
record_transition(void *argument, const struct smpp_session *session,
    enum smpp_session_state from, enum smpp_session_state to)
{
	struct transitions *transitions = argument;

	assert_int_equal(session->state, to);
	if (transitions->count < 16)
		snprintf(transitions->lines[transitions->count++],
		    sizeof(transitions->lines[0]), "%s -> %s",
		    smpp_session_strstate(from), smpp_session_strstate(to));
}

static const struct smpp_session_config default_config = {
    .window_size = 10,
    .enquire_link_interval = 30 * SECOND,
    .response_timeout = 10 * SECOND,
    .bind_timeout = 20 * SECOND,
    .idle_timeout = 0,
    .unbind_timeout = 5 * SECOND,
};

/* One session for each test, too big for cmocka's default stack use. */
static struct smpp_session session;
static struct transitions transitions;

static void
start(enum smpp_session_role role, const struct smpp_session_config *config,
    uint64_t now)
{
	assert_int_equal(smpp_session_init(&session, role, config, now), 0);
	memset(&transitions, 0, sizeof(transitions));
	smpp_session_set_log_hook(&session, record_transition, &transitions);
	assert_int_equal(session.state, SMPP_SESSION_OPEN);
}

/* Brings a fresh session to a bound state the way the role gets there. */
static void
start_bound(enum smpp_session_role role, uint32_t bind_id,
    const struct smpp_session_config *config, uint64_t now)
{
	struct smpp_session_event event;
	uint32_t sequence;

	start(role, config, now);
	if (role == SMPP_SESSION_ESME) {
		assert_int_equal(smpp_session_send_request(
				     &session, bind_id, 0, now, &sequence),
		    SMPP_ESME_ROK);
		smpp_session_receive(&session, bind_id | SMPP_RESPONSE_BIT,
		    SMPP_ESME_ROK, sequence, now, &event);
		assert_int_equal(event.type, SMPP_SESSION_EVENT_BOUND);
	} else {
		smpp_session_receive(&session, bind_id, 0, 1, now, &event);
		assert_int_equal(event.type, SMPP_SESSION_EVENT_REQUEST);
		assert_int_equal(event.status, SMPP_ESME_ROK);
		smpp_session_send_response(
		    &session, bind_id | SMPP_RESPONSE_BIT, SMPP_ESME_ROK, now);
	}
}

/* Sends one submit_sm and returns its sequence number. */
static uint32_t
submit(uint64_t cookie, uint64_t now)
{
	uint32_t sequence = 0;

	assert_int_equal(smpp_session_send_request(
			     &session, SMPP_SUBMIT_SM, cookie, now, &sequence),
	    SMPP_ESME_ROK);
	assert_int_not_equal(sequence, 0);
	return sequence;
}

static void
test_init_and_names(void **state)
{
	struct smpp_session_config config = default_config;

	config.window_size = 0;
	assert_int_equal(
	    smpp_session_init(&session, SMPP_SESSION_ESME, &config, T0), -1);
	config.window_size = SMPP_SESSION_WINDOW_MAX + 1;
	assert_int_equal(
	    smpp_session_init(&session, SMPP_SESSION_ESME, &config, T0), -1);
	config.window_size = SMPP_SESSION_WINDOW_MAX;
	assert_int_equal(
	    smpp_session_init(&session, SMPP_SESSION_SMSC, &config, T0), 0);
	assert_int_equal(
	    smpp_session_window_available(&session), SMPP_SESSION_WINDOW_MAX);
	assert_int_equal(smpp_session_outstanding(&session), 0);

	assert_string_equal(smpp_session_strstate(SMPP_SESSION_OPEN), "OPEN");
	assert_string_equal(
	    smpp_session_strstate(SMPP_SESSION_BOUND_TX), "BOUND_TX");
	assert_string_equal(
	    smpp_session_strstate(SMPP_SESSION_BOUND_RX), "BOUND_RX");
	assert_string_equal(
	    smpp_session_strstate(SMPP_SESSION_BOUND_TRX), "BOUND_TRX");
	assert_string_equal(
	    smpp_session_strstate(SMPP_SESSION_UNBOUND), "UNBOUND");
	assert_string_equal(
	    smpp_session_strstate(SMPP_SESSION_CLOSED), "CLOSED");
	assert_string_equal(
	    smpp_session_strstate((enum smpp_session_state)77), "INVALID");
	assert_string_equal(
	    smpp_session_strreason(SMPP_SESSION_REASON_ENQUIRE_LINK_TIMEOUT),
	    "enquire_link timeout");
}

/* Status per state: OPEN, BOUND_TX, BOUND_RX, BOUND_TRX, UNBOUND, CLOSED. */
#define OK SMPP_ESME_ROK
#define BS SMPP_ESME_RINVBNDSTS
#define AB SMPP_ESME_RALYBND
#define IC SMPP_ESME_RINVCMDID

struct table_case {
	uint32_t command_id;
	uint32_t esme[SMPP_SESSION_STATE_COUNT];
	uint32_t smsc[SMPP_SESSION_STATE_COUNT];
};

/* What each role may RECEIVE, SMPP 3.4 sections 2.3 and 2.4. */
static const struct table_case receive_cases[] = {
    {SMPP_BIND_TRANSMITTER, {IC, IC, IC, IC, IC, IC}, {OK, AB, AB, AB, BS, BS}},
    {SMPP_BIND_RECEIVER, {IC, IC, IC, IC, IC, IC}, {OK, AB, AB, AB, BS, BS}},
    {SMPP_BIND_TRANSCEIVER, {IC, IC, IC, IC, IC, IC}, {OK, AB, AB, AB, BS, BS}},
    {SMPP_OUTBIND, {OK, BS, BS, BS, BS, BS}, {IC, IC, IC, IC, IC, IC}},
    {SMPP_SUBMIT_SM, {IC, IC, IC, IC, IC, IC}, {BS, OK, BS, OK, BS, BS}},
    {SMPP_SUBMIT_MULTI, {IC, IC, IC, IC, IC, IC}, {BS, OK, BS, OK, BS, BS}},
    {SMPP_QUERY_SM, {IC, IC, IC, IC, IC, IC}, {BS, OK, BS, OK, BS, BS}},
    {SMPP_CANCEL_SM, {IC, IC, IC, IC, IC, IC}, {BS, OK, BS, OK, BS, BS}},
    {SMPP_REPLACE_SM, {IC, IC, IC, IC, IC, IC}, {BS, OK, BS, OK, BS, BS}},
    {SMPP_DATA_SM, {BS, BS, OK, OK, BS, BS}, {BS, OK, BS, OK, BS, BS}},
    {SMPP_DELIVER_SM, {BS, BS, OK, OK, BS, BS}, {IC, IC, IC, IC, IC, IC}},
    {SMPP_ALERT_NOTIFICATION, {BS, BS, OK, OK, BS, BS},
	{IC, IC, IC, IC, IC, IC}},
    {SMPP_UNBIND, {BS, OK, OK, OK, OK, BS}, {BS, OK, OK, OK, OK, BS}},
    {SMPP_ENQUIRE_LINK, {OK, OK, OK, OK, OK, BS}, {OK, OK, OK, OK, OK, BS}},
    {0x00000099, {IC, IC, IC, IC, IC, IC}, {IC, IC, IC, IC, IC, IC}},
    {0x0000000A, {IC, IC, IC, IC, IC, IC}, {IC, IC, IC, IC, IC, IC}},
    {SMPP_SUBMIT_SM_RESP, {OK, OK, OK, OK, OK, OK}, {OK, OK, OK, OK, OK, OK}},
    {SMPP_GENERIC_NACK, {OK, OK, OK, OK, OK, OK}, {OK, OK, OK, OK, OK, OK}},
    {0x8000000B, {IC, IC, IC, IC, IC, IC}, /* outbind has none */
	{IC, IC, IC, IC, IC, IC}},
    {0x80000099, {IC, IC, IC, IC, IC, IC}, {IC, IC, IC, IC, IC, IC}},
};

/* What each role may SEND. */
static const struct table_case send_cases[] = {
    {SMPP_BIND_TRANSMITTER, {OK, BS, BS, BS, BS, BS}, {IC, IC, IC, IC, IC, IC}},
    {SMPP_BIND_RECEIVER, {OK, BS, BS, BS, BS, BS}, {IC, IC, IC, IC, IC, IC}},
    {SMPP_BIND_TRANSCEIVER, {OK, BS, BS, BS, BS, BS}, {IC, IC, IC, IC, IC, IC}},
    {SMPP_OUTBIND, {IC, IC, IC, IC, IC, IC}, {OK, BS, BS, BS, BS, BS}},
    {SMPP_SUBMIT_SM, {BS, OK, BS, OK, BS, BS}, {IC, IC, IC, IC, IC, IC}},
    {SMPP_QUERY_SM, {BS, OK, BS, OK, BS, BS}, {IC, IC, IC, IC, IC, IC}},
    {SMPP_DATA_SM, {BS, OK, BS, OK, BS, BS}, {BS, BS, OK, OK, BS, BS}},
    {SMPP_DELIVER_SM, {IC, IC, IC, IC, IC, IC}, {BS, BS, OK, OK, BS, BS}},
    {SMPP_ALERT_NOTIFICATION, {IC, IC, IC, IC, IC, IC},
	{BS, BS, OK, OK, BS, BS}},
    {SMPP_UNBIND, {BS, OK, OK, OK, BS, BS}, {BS, OK, OK, OK, BS, BS}},
    {SMPP_ENQUIRE_LINK, {OK, OK, OK, OK, BS, BS}, {OK, OK, OK, OK, BS, BS}},
    {0x00000099, {IC, IC, IC, IC, IC, IC}, {IC, IC, IC, IC, IC, IC}},
};

static void
test_receive_table(void **state)
{
	size_t i;
	unsigned int s;

	for (i = 0; i < sizeof(receive_cases) / sizeof(receive_cases[0]); i++)
		for (s = 0; s < SMPP_SESSION_STATE_COUNT; s++) {
			assert_int_equal(
			    smpp_session_check_receive(SMPP_SESSION_ESME,
				(enum smpp_session_state)s,
				receive_cases[i].command_id),
			    receive_cases[i].esme[s]);
			assert_int_equal(
			    smpp_session_check_receive(SMPP_SESSION_SMSC,
				(enum smpp_session_state)s,
				receive_cases[i].command_id),
			    receive_cases[i].smsc[s]);
		}
}

static void
test_send_table(void **state)
{
	size_t i;
	unsigned int s;

	for (i = 0; i < sizeof(send_cases) / sizeof(send_cases[0]); i++)
		for (s = 0; s < SMPP_SESSION_STATE_COUNT; s++) {
			assert_int_equal(
			    smpp_session_check_send(SMPP_SESSION_ESME,
				(enum smpp_session_state)s,
				send_cases[i].command_id),
			    send_cases[i].esme[s]);
			assert_int_equal(
			    smpp_session_check_send(SMPP_SESSION_SMSC,
				(enum smpp_session_state)s,
				send_cases[i].command_id),
			    send_cases[i].smsc[s]);
		}
}

/* What the session tells the caller to answer, for a live session. */
static void
test_receive_answers(void **state)
{
	struct smpp_session_event event;
	uint32_t sequence;

	start_bound(
	    SMPP_SESSION_SMSC, SMPP_BIND_TRANSMITTER, &default_config, T0);
	smpp_session_receive(&session, SMPP_SUBMIT_SM, 0, 7, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_REQUEST);
	assert_int_equal(event.status, SMPP_ESME_ROK);
	assert_int_equal(event.response_command_id, SMPP_SUBMIT_SM_RESP);
	smpp_session_receive(&session, SMPP_BIND_TRANSCEIVER, 0, 8, T0, &event);
	assert_int_equal(event.status, SMPP_ESME_RALYBND);
	assert_int_equal(event.response_command_id, SMPP_BIND_TRANSCEIVER_RESP);
	/* A bound transmitter cannot be sent deliver_sm. */
	assert_int_equal(smpp_session_send_request(
			     &session, SMPP_DELIVER_SM, 0, T0, &sequence),
	    SMPP_ESME_RINVBNDSTS);
	smpp_session_receive(&session, 0x00001234, 0, 9, T0, &event);
	assert_int_equal(event.status, SMPP_ESME_RINVCMDID);
	assert_int_equal(event.response_command_id, SMPP_GENERIC_NACK);
	/* deliver_sm is never for an SMSC: generic_nack. */
	smpp_session_receive(&session, SMPP_DELIVER_SM, 0, 10, T0, &event);
	assert_int_equal(event.status, SMPP_ESME_RINVCMDID);
	assert_int_equal(event.response_command_id, SMPP_GENERIC_NACK);
	assert_int_equal(session.state, SMPP_SESSION_BOUND_TX);

	/* An ESME: outbind in OPEN has no response; deliver_sm too early. */
	start(SMPP_SESSION_ESME, &default_config, T0);
	smpp_session_receive(&session, SMPP_OUTBIND, 0, 1, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_REQUEST);
	assert_int_equal(event.status, SMPP_ESME_ROK);
	assert_int_equal(event.response_command_id, 0);
	smpp_session_receive(&session, SMPP_DELIVER_SM, 0, 2, T0, &event);
	assert_int_equal(event.status, SMPP_ESME_RINVBNDSTS);
	assert_int_equal(event.response_command_id, SMPP_DELIVER_SM_RESP);
}

/* ESME: bind in all three modes, then unbind from our side. */
static void
test_esme_transitions(void **state)
{
	static const struct {
		uint32_t bind_id;
		enum smpp_session_state bound;
		const char *line;
	} binds[] = {
	    {SMPP_BIND_TRANSMITTER, SMPP_SESSION_BOUND_TX, "OPEN -> BOUND_TX"},
	    {SMPP_BIND_RECEIVER, SMPP_SESSION_BOUND_RX, "OPEN -> BOUND_RX"},
	    {SMPP_BIND_TRANSCEIVER, SMPP_SESSION_BOUND_TRX,
		"OPEN -> BOUND_TRX"},
	};
	struct smpp_session_event event;
	uint32_t bind_sequence, unbind_sequence;
	size_t i;

	for (i = 0; i < 3; i++) {
		start(SMPP_SESSION_ESME, &default_config, T0);
		assert_int_equal(smpp_session_send_request(&session,
				     binds[i].bind_id, 0, T0, &bind_sequence),
		    SMPP_ESME_ROK);
		assert_int_equal(bind_sequence, 1);
		/* A second bind while one is pending is refused. */
		assert_int_equal(smpp_session_send_request(&session,
				     binds[i].bind_id, 0, T0, &unbind_sequence),
		    SMPP_ESME_RINVBNDSTS);
		smpp_session_receive(&session,
		    binds[i].bind_id | SMPP_RESPONSE_BIT, SMPP_ESME_ROK,
		    bind_sequence, T0 + SECOND, &event);
		assert_int_equal(event.type, SMPP_SESSION_EVENT_BOUND);
		assert_int_equal(event.request_command_id, binds[i].bind_id);
		assert_int_equal(session.state, binds[i].bound);

		assert_int_equal(
		    smpp_session_send_request(&session, SMPP_UNBIND, 0,
			T0 + 2 * SECOND, &unbind_sequence),
		    SMPP_ESME_ROK);
		assert_int_equal(unbind_sequence, 2);
		assert_int_equal(session.state, SMPP_SESSION_UNBOUND);
		smpp_session_receive(&session, SMPP_UNBIND_RESP, SMPP_ESME_ROK,
		    unbind_sequence, T0 + 3 * SECOND, &event);
		assert_int_equal(event.type, SMPP_SESSION_EVENT_UNBIND_DONE);
		assert_int_equal(session.state, SMPP_SESSION_CLOSED);
		assert_int_equal(
		    session.close_reason, SMPP_SESSION_REASON_UNBOUND);

		assert_int_equal(transitions.count, 3);
		assert_string_equal(transitions.lines[0], binds[i].line);
		assert_string_equal(transitions.lines[2], "UNBOUND -> CLOSED");
	}
	assert_string_equal(transitions.lines[1], "BOUND_TRX -> UNBOUND");
}

/* ESME: a bind answered with an error, a generic_nack, a wrong response. */
static void
test_esme_bind_rejected(void **state)
{
	struct smpp_session_event event;
	uint32_t sequence;

	start(SMPP_SESSION_ESME, &default_config, T0);
	smpp_session_send_request(
	    &session, SMPP_BIND_TRANSCEIVER, 0, T0, &sequence);
	/* A response for another bind type does not bind. */
	smpp_session_receive(&session, SMPP_BIND_TRANSMITTER_RESP,
	    SMPP_ESME_ROK, sequence, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE_MISMATCH);
	assert_int_equal(session.state, SMPP_SESSION_OPEN);
	smpp_session_receive(&session, SMPP_BIND_TRANSCEIVER_RESP,
	    SMPP_ESME_RINVPASWD, sequence, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_BIND_REJECTED);
	assert_int_equal(event.status, SMPP_ESME_RINVPASWD);
	assert_int_equal(session.state, SMPP_SESSION_CLOSED);
	assert_int_equal(
	    session.close_reason, SMPP_SESSION_REASON_BIND_REJECTED);
	assert_string_equal(transitions.lines[0], "OPEN -> CLOSED");

	start(SMPP_SESSION_ESME, &default_config, T0);
	smpp_session_send_request(
	    &session, SMPP_BIND_TRANSMITTER, 0, T0, &sequence);
	smpp_session_receive(&session, SMPP_GENERIC_NACK, SMPP_ESME_RINVCMDID,
	    sequence, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_BIND_REJECTED);
	assert_int_equal(session.state, SMPP_SESSION_CLOSED);
}

/* SMSC: peers bind to us; rejected binds stay OPEN; peer unbinds. */
static void
test_smsc_transitions(void **state)
{
	static const struct {
		uint32_t bind_id;
		enum smpp_session_state bound;
	} binds[] = {
	    {SMPP_BIND_TRANSMITTER, SMPP_SESSION_BOUND_TX},
	    {SMPP_BIND_RECEIVER, SMPP_SESSION_BOUND_RX},
	    {SMPP_BIND_TRANSCEIVER, SMPP_SESSION_BOUND_TRX},
	};
	struct smpp_session_event event;
	size_t i;

	for (i = 0; i < 3; i++) {
		start(SMPP_SESSION_SMSC, &default_config, T0);
		smpp_session_receive(
		    &session, binds[i].bind_id, 0, 1, T0, &event);
		assert_int_equal(event.status, SMPP_ESME_ROK);
		/* Wrong password: the peer may try again. */
		smpp_session_send_response(&session,
		    binds[i].bind_id | SMPP_RESPONSE_BIT, SMPP_ESME_RINVPASWD,
		    T0);
		assert_int_equal(session.state, SMPP_SESSION_OPEN);
		smpp_session_receive(
		    &session, binds[i].bind_id, 0, 2, T0, &event);
		smpp_session_send_response(&session,
		    binds[i].bind_id | SMPP_RESPONSE_BIT, SMPP_ESME_ROK, T0);
		assert_int_equal(session.state, binds[i].bound);

		smpp_session_receive(&session, SMPP_UNBIND, 0, 3, T0, &event);
		assert_int_equal(event.type, SMPP_SESSION_EVENT_REQUEST);
		assert_int_equal(event.status, SMPP_ESME_ROK);
		assert_int_equal(event.response_command_id, SMPP_UNBIND_RESP);
		assert_int_equal(session.state, SMPP_SESSION_UNBOUND);
		smpp_session_send_response(
		    &session, SMPP_UNBIND_RESP, SMPP_ESME_ROK, T0);
		assert_int_equal(session.state, SMPP_SESSION_CLOSED);
		assert_int_equal(transitions.count, 3);
		assert_string_equal(
		    transitions.lines[1], i == 0   ? "BOUND_TX -> UNBOUND"
					  : i == 1 ? "BOUND_RX -> UNBOUND"
						   : "BOUND_TRX -> UNBOUND");
	}
}

/* Both sides unbind at once; and CLOSED is final. */
static void
test_crossed_unbind_and_closed(void **state)
{
	struct smpp_session_event event;
	uint32_t sequence;

	start_bound(
	    SMPP_SESSION_SMSC, SMPP_BIND_TRANSCEIVER, &default_config, T0);
	assert_int_equal(
	    smpp_session_send_request(&session, SMPP_UNBIND, 0, T0, &sequence),
	    SMPP_ESME_ROK);
	/* Not twice. */
	assert_int_equal(
	    smpp_session_send_request(&session, SMPP_UNBIND, 0, T0, &sequence),
	    SMPP_ESME_RINVBNDSTS);
	smpp_session_receive(&session, SMPP_UNBIND, 0, 40, T0, &event);
	assert_int_equal(event.status, SMPP_ESME_ROK);
	assert_int_equal(session.state, SMPP_SESSION_UNBOUND);
	/* Traffic that crossed the unbind is refused. */
	smpp_session_receive(&session, SMPP_SUBMIT_SM, 0, 41, T0, &event);
	assert_int_equal(event.status, SMPP_ESME_RINVBNDSTS);
	smpp_session_send_response(
	    &session, SMPP_UNBIND_RESP, SMPP_ESME_ROK, T0);
	assert_int_equal(session.state, SMPP_SESSION_CLOSED);

	smpp_session_enter_state(&session, SMPP_SESSION_OPEN, T0);
	assert_int_equal(session.state, SMPP_SESSION_CLOSED);
	smpp_session_receive(
	    &session, SMPP_UNBIND_RESP, 0, sequence, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_IGNORED);
	assert_int_equal(transitions.count, 3);
}

/* Entry actions when the caller moves the state itself. */
static void
test_enter_state_actions(void **state)
{
	struct smpp_session_config config = default_config;

	config.enquire_link_interval = 0;
	start(SMPP_SESSION_ESME, &config, T0);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 20 * SECOND);
	smpp_session_enter_state(&session, SMPP_SESSION_BOUND_TRX, T0);
	assert_int_equal(
	    smpp_session_next_wakeup(&session), SMPP_SESSION_NEVER);
	smpp_session_enter_state(&session, SMPP_SESSION_BOUND_TRX, T0);
	assert_int_equal(transitions.count, 1);
	smpp_session_enter_state(
	    &session, SMPP_SESSION_UNBOUND, T0 + 7 * SECOND);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 12 * SECOND);
	smpp_session_enter_state(
	    &session, SMPP_SESSION_CLOSED, T0 + 8 * SECOND);
	assert_int_equal(
	    smpp_session_next_wakeup(&session), SMPP_SESSION_NEVER);
	assert_string_equal(transitions.lines[0], "OPEN -> BOUND_TRX");
	assert_string_equal(transitions.lines[1], "BOUND_TRX -> UNBOUND");
	assert_string_equal(transitions.lines[2], "UNBOUND -> CLOSED");
}

/* Full window, matching, mismatches, unknown sequence numbers. */
static void
test_window_full_and_match(void **state)
{
	struct smpp_session_config config = default_config;
	struct smpp_session_event event;
	uint32_t first, second, third, sequence = 0;

	config.window_size = 3;
	start_bound(SMPP_SESSION_ESME, SMPP_BIND_TRANSMITTER, &config, T0);
	first = submit(100, T0);
	second = submit(101, T0);
	third = submit(102, T0);
	assert_int_equal(smpp_session_window_available(&session), 0);
	assert_int_equal(smpp_session_send_request(
			     &session, SMPP_SUBMIT_SM, 103, T0, &sequence),
	    SMPP_ESME_RMSGQFUL);
	assert_int_equal(sequence, 0);
	assert_int_equal(smpp_session_outstanding(&session), 3);
	/* Housekeeping does not need a window slot. */
	assert_int_equal(smpp_session_send_request(
			     &session, SMPP_ENQUIRE_LINK, 0, T0, &sequence),
	    SMPP_ESME_ROK);

	smpp_session_receive(&session, SMPP_SUBMIT_SM_RESP,
	    SMPP_ESME_RTHROTTLED, second, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE);
	assert_int_equal(event.cookie, 101);
	assert_int_equal(event.status, SMPP_ESME_RTHROTTLED);
	assert_int_equal(event.request_command_id, SMPP_SUBMIT_SM);
	assert_int_equal(smpp_session_window_available(&session), 1);

	/* The right sequence number with the wrong response id. */
	smpp_session_receive(
	    &session, SMPP_DELIVER_SM_RESP, 0, first, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE_MISMATCH);
	assert_int_equal(event.cookie, 100);
	assert_int_equal(smpp_session_outstanding(&session), 2);
	/* Answered twice: the second is unknown. */
	smpp_session_receive(
	    &session, SMPP_SUBMIT_SM_RESP, 0, second, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE_UNKNOWN);
	smpp_session_receive(&session, SMPP_SUBMIT_SM_RESP, 0, 0, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE_UNKNOWN);
	/* generic_nack answers any request. */
	smpp_session_receive(
	    &session, SMPP_GENERIC_NACK, SMPP_ESME_RSYSERR, third, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE);
	assert_int_equal(event.cookie, 102);
	smpp_session_receive(
	    &session, SMPP_SUBMIT_SM_RESP, 0, first, T0, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE);
	assert_int_equal(event.cookie, 100);
	assert_int_equal(smpp_session_outstanding(&session), 0);
	assert_int_equal(smpp_session_window_available(&session), 3);
}

/* Overdue requests come out one by one, oldest first. */
static void
test_window_expiry_order(void **state)
{
	struct smpp_session_config config = default_config;
	struct smpp_session_action action;
	struct smpp_session_event event;
	uint32_t sequences[4];

	config.enquire_link_interval = 0;
	start_bound(SMPP_SESSION_ESME, SMPP_BIND_TRANSCEIVER, &config, T0);
	sequences[0] = submit(1, T0);
	sequences[1] = submit(2, T0 + SECOND);
	sequences[2] = submit(3, T0 + 2 * SECOND);
	sequences[3] = submit(4, T0 + 3 * SECOND);
	smpp_session_receive(&session, SMPP_SUBMIT_SM_RESP, 0, sequences[1],
	    T0 + 4 * SECOND, &event);
	assert_int_equal(event.cookie, 2);

	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 10 * SECOND);
	assert_int_equal(
	    smpp_session_poll(&session, T0 + 10 * SECOND - 1, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(
	    smpp_session_poll(&session, T0 + 12 * SECOND + 500, &action),
	    SMPP_SESSION_ACTION_REQUEST_EXPIRED);
	assert_int_equal(action.cookie, 1);
	assert_int_equal(action.sequence_number, sequences[0]);
	assert_int_equal(action.command_id, SMPP_SUBMIT_SM);
	assert_int_equal(
	    smpp_session_poll(&session, T0 + 12 * SECOND + 500, &action),
	    SMPP_SESSION_ACTION_REQUEST_EXPIRED);
	assert_int_equal(action.cookie, 3);
	assert_int_equal(
	    smpp_session_poll(&session, T0 + 12 * SECOND + 500, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 13 * SECOND);
	/* A late response to an expired request matches nothing. */
	smpp_session_receive(&session, SMPP_SUBMIT_SM_RESP, 0, sequences[0],
	    T0 + 12 * SECOND, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE_UNKNOWN);
	assert_int_equal(smpp_session_outstanding(&session), 1);

	/* A caller clock stepped back still expires by deadline. */
	submit(5, T0 + 20 * SECOND);
	submit(6, T0 + 15 * SECOND);
	assert_int_equal(smpp_session_poll(&session, T0 + 40 * SECOND, &action),
	    SMPP_SESSION_ACTION_REQUEST_EXPIRED);
	assert_int_equal(action.cookie, 4);
	assert_int_equal(smpp_session_poll(&session, T0 + 40 * SECOND, &action),
	    SMPP_SESSION_ACTION_REQUEST_EXPIRED);
	assert_int_equal(action.cookie, 6);
	assert_int_equal(smpp_session_poll(&session, T0 + 40 * SECOND, &action),
	    SMPP_SESSION_ACTION_REQUEST_EXPIRED);
	assert_int_equal(action.cookie, 5);
}

/* Entering CLOSED fails every outstanding request, oldest first. */
static void
test_closed_fails_outstanding(void **state)
{
	struct smpp_session_action action;
	uint64_t cookie;

	start_bound(
	    SMPP_SESSION_ESME, SMPP_BIND_TRANSMITTER, &default_config, T0);
	for (cookie = 10; cookie < 15; cookie++)
		submit(cookie, T0 + cookie);
	smpp_session_enter_state(&session, SMPP_SESSION_CLOSED, T0 + SECOND);
	assert_int_equal(smpp_session_next_wakeup(&session), 0);
	for (cookie = 10; cookie < 15; cookie++) {
		assert_int_equal(
		    smpp_session_poll(&session, T0 + SECOND, &action),
		    SMPP_SESSION_ACTION_REQUEST_FAILED);
		assert_int_equal(action.cookie, cookie);
	}
	assert_int_equal(smpp_session_poll(&session, T0 + SECOND, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(
	    smpp_session_next_wakeup(&session), SMPP_SESSION_NEVER);
}

/* A pseudo-random 32-bit sequence (xorshift), reproducible. */
static uint32_t
next_random(uint32_t *seed)
{
	*seed ^= *seed << 13;
	*seed ^= *seed >> 17;
	*seed ^= *seed << 5;
	return *seed;
}

/*
 * A full window of 1024 answered in random order for many rounds, across a
 * sequence wrap: every response must find its own request's cookie.
 */
static void
test_window_random_against_model(void **state)
{
	static uint32_t sequence_of[SMPP_SESSION_WINDOW_MAX];
	static uint64_t cookie_of[SMPP_SESSION_WINDOW_MAX];
	struct smpp_session_config config = default_config;
	struct smpp_session_event event;
	uint32_t seed = 2463534242u, index;
	uint64_t cookie = 1;
	unsigned int live = 0, round;

	config.window_size = SMPP_SESSION_WINDOW_MAX;
	config.response_timeout = 0;
	config.enquire_link_interval = 0;
	start_bound(SMPP_SESSION_ESME, SMPP_BIND_TRANSCEIVER, &config, T0);
	session.next_sequence = SMPP_SESSION_MAX_SEQUENCE - 5000;
	for (round = 0; round < 20000; round++) {
		while (live < SMPP_SESSION_WINDOW_MAX &&
		       (next_random(&seed) & 3) != 0) {
			sequence_of[live] = submit(cookie, T0);
			cookie_of[live++] = cookie++;
		}
		if (live == 0)
			continue;
		index = next_random(&seed) % live;
		smpp_session_receive(&session, SMPP_SUBMIT_SM_RESP, 0,
		    sequence_of[index], T0, &event);
		assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE);
		assert_int_equal(event.cookie, cookie_of[index]);
		live--;
		sequence_of[index] = sequence_of[live];
		cookie_of[index] = cookie_of[live];
		assert_int_equal(smpp_session_outstanding(&session), live);
	}
	assert_true(cookie > 10000);
	assert_true(session.next_sequence < 100000);
}

/* 1..0x7FFFFFFF, wrapping to 1, skipping numbers still outstanding. */
static void
test_sequence_wrap(void **state)
{
	uint32_t held;

	start_bound(
	    SMPP_SESSION_ESME, SMPP_BIND_TRANSMITTER, &default_config, T0);
	session.next_sequence = 0x7FFFFFFE;
	assert_int_equal(smpp_session_next_sequence(&session), 0x7FFFFFFE);
	assert_int_equal(smpp_session_next_sequence(&session), 0x7FFFFFFF);
	assert_int_equal(smpp_session_next_sequence(&session), 1);
	assert_int_equal(smpp_session_next_sequence(&session), 2);

	held = submit(5, T0);
	assert_int_equal(held, 3);
	session.next_sequence = 0x7FFFFFFF;
	assert_int_equal(smpp_session_next_sequence(&session), 0x7FFFFFFF);
	assert_int_equal(smpp_session_next_sequence(&session), 1);
	assert_int_equal(smpp_session_next_sequence(&session), 2);
	assert_int_equal(smpp_session_next_sequence(&session), 4);
}

/* enquire_link falls due an interval after the last PDU received. */
static void
test_enquire_link_schedule(void **state)
{
	struct smpp_session_action action;
	struct smpp_session_event event;
	uint32_t sequence;

	start_bound(
	    SMPP_SESSION_SMSC, SMPP_BIND_TRANSCEIVER, &default_config, T0);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 30 * SECOND);
	assert_int_equal(
	    smpp_session_poll(&session, T0 + 30 * SECOND - 1, &action),
	    SMPP_SESSION_ACTION_NONE);
	/* Traffic from the peer pushes it back. */
	smpp_session_receive(
	    &session, SMPP_SUBMIT_SM, 0, 2, T0 + 20 * SECOND, &event);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 50 * SECOND);
	assert_int_equal(smpp_session_poll(&session, T0 + 30 * SECOND, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(smpp_session_poll(&session, T0 + 50 * SECOND, &action),
	    SMPP_SESSION_ACTION_SEND_ENQUIRE_LINK);
	sequence = action.sequence_number;
	assert_int_not_equal(sequence, 0);
	assert_int_equal(action.command_id, SMPP_ENQUIRE_LINK);
	/* One at a time; now the response deadline is what is next. */
	assert_int_equal(smpp_session_poll(&session, T0 + 51 * SECOND, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 60 * SECOND);
	smpp_session_receive(&session, SMPP_ENQUIRE_LINK_RESP, 0, sequence,
	    T0 + 55 * SECOND, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_ENQUIRE_LINK_ANSWERED);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 85 * SECOND);
	assert_int_equal(smpp_session_poll(&session, T0 + 85 * SECOND, &action),
	    SMPP_SESSION_ACTION_SEND_ENQUIRE_LINK);
	assert_int_not_equal(action.sequence_number, sequence);
	assert_int_equal(session.state, SMPP_SESSION_BOUND_TRX);
}

/* A peer that stops answering enquire_link is closed as dead. */
static void
test_dead_peer(void **state)
{
	struct smpp_session_action action;
	struct smpp_session_event event;
	uint32_t sequence;

	start_bound(SMPP_SESSION_ESME, SMPP_BIND_RECEIVER, &default_config, T0);
	assert_int_equal(smpp_session_poll(&session, T0 + 30 * SECOND, &action),
	    SMPP_SESSION_ACTION_SEND_ENQUIRE_LINK);
	sequence = action.sequence_number;
	/* A response with another sequence number does not count. */
	smpp_session_receive(&session, SMPP_ENQUIRE_LINK_RESP, 0, sequence + 1,
	    T0 + 31 * SECOND, &event);
	assert_int_equal(event.type, SMPP_SESSION_EVENT_RESPONSE_UNKNOWN);
	assert_int_equal(
	    smpp_session_poll(&session, T0 + 40 * SECOND - 1, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(smpp_session_poll(&session, T0 + 40 * SECOND, &action),
	    SMPP_SESSION_ACTION_CLOSE);
	assert_int_equal(
	    action.reason, SMPP_SESSION_REASON_ENQUIRE_LINK_TIMEOUT);
	assert_int_equal(session.state, SMPP_SESSION_CLOSED);
	assert_string_equal(transitions.lines[1], "BOUND_RX -> CLOSED");
	assert_int_equal(smpp_session_poll(&session, T0 + 41 * SECOND, &action),
	    SMPP_SESSION_ACTION_NONE);
}

/* No traffic but enquire_link for the idle timeout: unbind, then close. */
static void
test_idle_timeout(void **state)
{
	struct smpp_session_config config = default_config;
	struct smpp_session_action action;
	struct smpp_session_event event;

	config.enquire_link_interval = 0;
	config.idle_timeout = 60 * SECOND;
	start_bound(SMPP_SESSION_SMSC, SMPP_BIND_TRANSMITTER, &config, T0);
	smpp_session_receive(
	    &session, SMPP_SUBMIT_SM, 0, 2, T0 + 30 * SECOND, &event);
	smpp_session_send_response(
	    &session, SMPP_SUBMIT_SM_RESP, 0, T0 + 30 * SECOND);
	/* enquire_link keeps the link alive but is not traffic. */
	smpp_session_receive(
	    &session, SMPP_ENQUIRE_LINK, 0, 3, T0 + 80 * SECOND, &event);
	smpp_session_send_response(
	    &session, SMPP_ENQUIRE_LINK_RESP, 0, T0 + 80 * SECOND);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 90 * SECOND);
	assert_int_equal(
	    smpp_session_poll(&session, T0 + 90 * SECOND - 1, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(smpp_session_poll(&session, T0 + 90 * SECOND, &action),
	    SMPP_SESSION_ACTION_SEND_UNBIND);
	assert_int_equal(action.reason, SMPP_SESSION_REASON_IDLE_TIMEOUT);
	assert_int_equal(action.command_id, SMPP_UNBIND);
	assert_int_equal(session.state, SMPP_SESSION_UNBOUND);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 95 * SECOND);
	assert_int_equal(smpp_session_poll(&session, T0 + 95 * SECOND, &action),
	    SMPP_SESSION_ACTION_CLOSE);
	assert_int_equal(action.reason, SMPP_SESSION_REASON_UNBIND_TIMEOUT);
	assert_int_equal(session.state, SMPP_SESSION_CLOSED);
	assert_int_equal(transitions.count, 3);
}

/* A connection that does not bind in time is closed. */
static void
test_bind_timeout(void **state)
{
	struct smpp_session_action action;

	start(SMPP_SESSION_SMSC, &default_config, T0);
	assert_int_equal(smpp_session_next_wakeup(&session), T0 + 20 * SECOND);
	assert_int_equal(
	    smpp_session_poll(&session, T0 + 20 * SECOND - 1, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(smpp_session_poll(&session, T0 + 20 * SECOND, &action),
	    SMPP_SESSION_ACTION_CLOSE);
	assert_int_equal(action.reason, SMPP_SESSION_REASON_BIND_TIMEOUT);
	assert_string_equal(transitions.lines[0], "OPEN -> CLOSED");

	/* Once bound the bind timeout no longer applies. */
	start_bound(SMPP_SESSION_ESME, SMPP_BIND_TRANSCEIVER, &default_config,
	    T0 + 19 * SECOND);
	assert_int_equal(smpp_session_poll(&session, T0 + 25 * SECOND, &action),
	    SMPP_SESSION_ACTION_NONE);
	assert_int_equal(session.state, SMPP_SESSION_BOUND_TRX);
}

/* With every timer off nothing is ever due. */
static void
test_timers_off(void **state)
{
	static const struct smpp_session_config config = {.window_size = 1};
	struct smpp_session_action action;

	start(SMPP_SESSION_ESME, &config, T0);
	assert_int_equal(
	    smpp_session_next_wakeup(&session), SMPP_SESSION_NEVER);
	start_bound(SMPP_SESSION_ESME, SMPP_BIND_TRANSMITTER, &config, T0);
	submit(1, T0);
	assert_int_equal(
	    smpp_session_next_wakeup(&session), SMPP_SESSION_NEVER);
	assert_int_equal(smpp_session_poll(&session, UINT64_MAX - 1, &action),
	    SMPP_SESSION_ACTION_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_and_names),
	    cmocka_unit_test(test_receive_table),
	    cmocka_unit_test(test_send_table),
	    cmocka_unit_test(test_receive_answers),
	    cmocka_unit_test(test_esme_transitions),
	    cmocka_unit_test(test_esme_bind_rejected),
	    cmocka_unit_test(test_smsc_transitions),
	    cmocka_unit_test(test_crossed_unbind_and_closed),
	    cmocka_unit_test(test_enter_state_actions),
	    cmocka_unit_test(test_window_full_and_match),
	    cmocka_unit_test(test_window_expiry_order),
	    cmocka_unit_test(test_closed_fails_outstanding),
	    cmocka_unit_test(test_window_random_against_model),
	    cmocka_unit_test(test_sequence_wrap),
	    cmocka_unit_test(test_enquire_link_schedule),
	    cmocka_unit_test(test_dead_peer),
	    cmocka_unit_test(test_idle_timeout),
	    cmocka_unit_test(test_bind_timeout),
	    cmocka_unit_test(test_timers_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
