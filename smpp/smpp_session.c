/*
 * smpp_session.c - the SMPP session state machine as data: which command
 * may be sent and received in which bind state for each role (SMPP 3.4
 * sections 2.3 and 2.4), sequence numbers, the window of outstanding
 * requests and every timer (enquire_link, bind, idle, response, unbind).
 *
 * No socket and no clock: the caller reports what it sent and received
 * with its own "now" in microseconds, and smpp_session_poll() tells it
 * what is due. Fixed storage, no allocation.
 */
#include <string.h>

#include "smpp.h"

#define HASH_SIZE (2 * SMPP_SESSION_WINDOW_MAX) /* a power of two */
#define HASH_MASK (HASH_SIZE - 1)

/* State sets for the command table. */
#define IN(state)    (1u << SMPP_SESSION_##state)
#define BOUND        (IN(BOUND_TX) | IN(BOUND_RX) | IN(BOUND_TRX))
#define TRANSMITTING (IN(BOUND_TX) | IN(BOUND_TRX)) /* ESME -> SMSC */
#define RECEIVING    (IN(BOUND_RX) | IN(BOUND_TRX)) /* SMSC -> ESME */

/* How the session tracks a request once it is sent. */
enum request_kind {
	KIND_WINDOW, /* in the window until its response */
	KIND_BIND,
	KIND_UNBIND,
	KIND_ENQUIRE_LINK,
	KIND_NO_RESPONSE, /* outbind, alert_notification */
};

/*
 * Which requests each role may send and receive in which state. An unbind
 * may still arrive in UNBOUND when both sides unbind at once, and an
 * enquire_link from a peer that has not seen our unbind yet is answered.
 */
static const struct command_rule {
	uint32_t command_id;
	uint8_t esme_sends;
	uint8_t esme_receives;
	uint8_t smsc_sends;
	uint8_t smsc_receives;
	uint8_t kind;
} command_rules[] = {
    {SMPP_BIND_RECEIVER, IN(OPEN), 0, 0, IN(OPEN), KIND_BIND},
    {SMPP_BIND_TRANSMITTER, IN(OPEN), 0, 0, IN(OPEN), KIND_BIND},
    {SMPP_BIND_TRANSCEIVER, IN(OPEN), 0, 0, IN(OPEN), KIND_BIND},
    {SMPP_OUTBIND, 0, IN(OPEN), IN(OPEN), 0, KIND_NO_RESPONSE},
    {SMPP_SUBMIT_SM, TRANSMITTING, 0, 0, TRANSMITTING, KIND_WINDOW},
    {SMPP_SUBMIT_MULTI, TRANSMITTING, 0, 0, TRANSMITTING, KIND_WINDOW},
    {SMPP_QUERY_SM, TRANSMITTING, 0, 0, TRANSMITTING, KIND_WINDOW},
    {SMPP_CANCEL_SM, TRANSMITTING, 0, 0, TRANSMITTING, KIND_WINDOW},
    {SMPP_REPLACE_SM, TRANSMITTING, 0, 0, TRANSMITTING, KIND_WINDOW},
    {SMPP_DATA_SM, TRANSMITTING, RECEIVING, RECEIVING, TRANSMITTING,
	KIND_WINDOW},
    {SMPP_DELIVER_SM, 0, RECEIVING, RECEIVING, 0, KIND_WINDOW},
    {SMPP_ALERT_NOTIFICATION, 0, RECEIVING, RECEIVING, 0, KIND_NO_RESPONSE},
    {SMPP_UNBIND, BOUND, BOUND | IN(UNBOUND), BOUND, BOUND | IN(UNBOUND),
	KIND_UNBIND},
    {SMPP_ENQUIRE_LINK, IN(OPEN) | BOUND, IN(OPEN) | BOUND | IN(UNBOUND),
	IN(OPEN) | BOUND, IN(OPEN) | BOUND | IN(UNBOUND), KIND_ENQUIRE_LINK},
};

static const char *const state_names[SMPP_SESSION_STATE_COUNT] = {
    [SMPP_SESSION_OPEN] = "OPEN",
    [SMPP_SESSION_BOUND_TX] = "BOUND_TX",
    [SMPP_SESSION_BOUND_RX] = "BOUND_RX",
    [SMPP_SESSION_BOUND_TRX] = "BOUND_TRX",
    [SMPP_SESSION_UNBOUND] = "UNBOUND",
    [SMPP_SESSION_CLOSED] = "CLOSED",
};

static const char *const reason_names[] = {
    [SMPP_SESSION_REASON_NONE] = "none",
    [SMPP_SESSION_REASON_BIND_TIMEOUT] = "bind timeout",
    [SMPP_SESSION_REASON_ENQUIRE_LINK_TIMEOUT] = "enquire_link timeout",
    [SMPP_SESSION_REASON_IDLE_TIMEOUT] = "idle timeout",
    [SMPP_SESSION_REASON_UNBIND_TIMEOUT] = "unbind timeout",
    [SMPP_SESSION_REASON_BIND_REJECTED] = "bind rejected",
    [SMPP_SESSION_REASON_UNBOUND] = "unbound",
};

/* The table row of a request command id, or NULL. */
static const struct command_rule *
find_rule(uint32_t command_id)
{
	size_t i;

	for (i = 0; i < sizeof(command_rules) / sizeof(command_rules[0]); i++)
		if (command_rules[i].command_id == command_id)
			return &command_rules[i];
	return NULL;
}

/* Whether command_id is the response to a request that has one. */
static int
is_known_response(uint32_t command_id)
{
	const struct command_rule *rule;

	if (command_id == SMPP_GENERIC_NACK)
		return 1;
	if (!(command_id & SMPP_RESPONSE_BIT))
		return 0;
	rule = find_rule(command_id & ~SMPP_RESPONSE_BIT);
	return rule != NULL && rule->kind != KIND_NO_RESPONSE;
}

static int
is_bound(enum smpp_session_state state)
{
	return state == SMPP_SESSION_BOUND_TX ||
	       state == SMPP_SESSION_BOUND_RX ||
	       state == SMPP_SESSION_BOUND_TRX;
}

/* The bound state a bind request (or its response) leads to. */
static enum smpp_session_state
bound_state_of(uint32_t command_id)
{
	switch (command_id & ~SMPP_RESPONSE_BIT) {
	case SMPP_BIND_TRANSMITTER:
		return SMPP_SESSION_BOUND_TX;
	case SMPP_BIND_RECEIVER:
		return SMPP_SESSION_BOUND_RX;
	default:
		return SMPP_SESSION_BOUND_TRX;
	}
}

/* now + duration; a zero duration (timer off) or overflow is never. */
static uint64_t
deadline_after(uint64_t now, uint64_t duration)
{
	if (duration == 0 || now > SMPP_SESSION_NEVER - duration)
		return SMPP_SESSION_NEVER;
	return now + duration;
}

static uint64_t
earliest(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Home bucket of a sequence number (Fibonacci hashing). */
static unsigned int
hash_home(uint32_t sequence_number)
{
	return (unsigned int)((sequence_number * 2654435761u) >> 21) &
	       HASH_MASK;
}

/* The hash bucket holding sequence_number, or -1. */
static int
hash_find(const struct smpp_session *session, uint32_t sequence_number)
{
	unsigned int bucket = hash_home(sequence_number);

	while (session->hash[bucket] != 0) {
		if (session->slots[session->hash[bucket] - 1].sequence_number ==
		    sequence_number)
			return (int)bucket;
		bucket = (bucket + 1) & HASH_MASK;
	}
	return -1;
}

static void
hash_insert(struct smpp_session *session, unsigned int slot)
{
	unsigned int bucket;

	bucket = hash_home(session->slots[slot].sequence_number);
	while (session->hash[bucket] != 0)
		bucket = (bucket + 1) & HASH_MASK;
	session->hash[bucket] = (uint16_t)(slot + 1);
}

/*
 * Empties a bucket. Why the shifting: with linear probing, later entries
 * of the same probe run must move back so lookups never stop at a hole.
 */
static void
hash_remove(struct smpp_session *session, unsigned int bucket)
{
	unsigned int next = bucket, home;

	for (;;) {
		next = (next + 1) & HASH_MASK;
		if (session->hash[next] == 0)
			break;
		home = hash_home(
		    session->slots[session->hash[next] - 1].sequence_number);
		/* Leave it if its home lies cyclically in (bucket, next]. */
		if (bucket <= next ? (bucket < home && home <= next)
				   : (bucket < home || home <= next))
			continue;
		session->hash[bucket] = session->hash[next];
		bucket = next;
	}
	session->hash[bucket] = 0;
}

/* Whether a sequence number is awaiting its response. */
static int
sequence_in_use(const struct smpp_session *session, uint32_t sequence_number)
{
	return session->bind.sequence_number == sequence_number ||
	       session->unbind.sequence_number == sequence_number ||
	       session->enquire_link.sequence_number == sequence_number ||
	       hash_find(session, sequence_number) >= 0;
}

/*
 * Puts a request in the window. The list stays in deadline order; with
 * one response timeout that is send order, so the walk back is one step.
 */
static void
window_add(struct smpp_session *session, uint32_t sequence_number,
    uint32_t command_id, uint64_t deadline, uint64_t cookie)
{
	struct smpp_session_request *request;
	unsigned int slot, after;

	slot = session->free_slots - 1u;
	request = &session->slots[slot];
	session->free_slots = request->next;
	request->sequence_number = sequence_number;
	request->command_id = command_id;
	request->deadline = deadline;
	request->cookie = cookie;

	after = session->newest;
	while (after != 0 && session->slots[after - 1].deadline > deadline)
		after = session->slots[after - 1].previous;
	request->previous = (uint16_t)after;
	if (after == 0) {
		request->next = session->oldest;
		session->oldest = (uint16_t)(slot + 1);
	} else {
		request->next = session->slots[after - 1].next;
		session->slots[after - 1].next = (uint16_t)(slot + 1);
	}
	if (request->next == 0)
		session->newest = (uint16_t)(slot + 1);
	else
		session->slots[request->next - 1].previous =
		    (uint16_t)(slot + 1);
	hash_insert(session, slot);
	session->outstanding++;
}

/* Takes a request out of the window and returns its slot to the free list. */
static void
window_remove(
    struct smpp_session *session, unsigned int slot, unsigned int bucket)
{
	struct smpp_session_request *request = &session->slots[slot];

	hash_remove(session, bucket);
	if (request->previous == 0)
		session->oldest = request->next;
	else
		session->slots[request->previous - 1].next = request->next;
	if (request->next == 0)
		session->newest = request->previous;
	else
		session->slots[request->next - 1].previous = request->previous;
	request->previous = 0;
	request->next = session->free_slots;
	session->free_slots = (uint16_t)(slot + 1);
	session->outstanding--;
}

/* Pops the oldest request into action as type. */
static enum smpp_session_action_type
pop_oldest(struct smpp_session *session, enum smpp_session_action_type type,
    struct smpp_session_action *action)
{
	unsigned int slot = session->oldest - 1u;
	const struct smpp_session_request *request = &session->slots[slot];

	action->type = type;
	action->sequence_number = request->sequence_number;
	action->command_id = request->command_id;
	action->cookie = request->cookie;
	window_remove(session, slot,
	    (unsigned int)hash_find(session, request->sequence_number));
	return type;
}

int
smpp_session_init(struct smpp_session *session, enum smpp_session_role role,
    const struct smpp_session_config *config, uint64_t now)
{
	unsigned int slot;

	if (config->window_size == 0 ||
	    config->window_size > SMPP_SESSION_WINDOW_MAX ||
	    (role != SMPP_SESSION_ESME && role != SMPP_SESSION_SMSC))
		return -1;
	memset(session, 0, sizeof(*session));
	session->role = role;
	session->state = SMPP_SESSION_OPEN;
	session->config = *config;
	session->next_sequence = 1;
	session->bind_deadline = deadline_after(now, config->bind_timeout);
	session->unbind_deadline = SMPP_SESSION_NEVER;
	session->last_received = now;
	session->last_traffic = now;
	for (slot = 0; slot < SMPP_SESSION_WINDOW_MAX; slot++)
		session->slots[slot].next =
		    (uint16_t)(slot + 2 <= SMPP_SESSION_WINDOW_MAX ? slot + 2
								   : 0);
	session->free_slots = 1;
	return 0;
}

void
smpp_session_set_log_hook(
    struct smpp_session *session, smpp_session_log_hook *hook, void *argument)
{
	session->log_hook = hook;
	session->log_argument = argument;
}

void
smpp_session_enter_state(
    struct smpp_session *session, enum smpp_session_state state, uint64_t now)
{
	enum smpp_session_state from = session->state;

	if (state == from || from == SMPP_SESSION_CLOSED)
		return;
	session->state = state;
	if (session->log_hook != NULL)
		session->log_hook(session->log_argument, session, from, state);

	switch (state) {
	case SMPP_SESSION_OPEN:
		session->bind_deadline =
		    deadline_after(now, session->config.bind_timeout);
		break;
	case SMPP_SESSION_BOUND_TX:
	case SMPP_SESSION_BOUND_RX:
	case SMPP_SESSION_BOUND_TRX:
		/* The first enquire_link falls due one interval from now. */
		session->bind.sequence_number = 0;
		session->last_received = now;
		session->last_traffic = now;
		break;
	case SMPP_SESSION_UNBOUND:
		session->unbind_deadline =
		    deadline_after(now, session->config.unbind_timeout);
		session->enquire_link.sequence_number = 0;
		break;
	case SMPP_SESSION_CLOSED:
		/* Outstanding requests stay for poll() to report as failed. */
		session->bind.sequence_number = 0;
		session->unbind.sequence_number = 0;
		session->enquire_link.sequence_number = 0;
		break;
	}
}

const char *
smpp_session_strstate(enum smpp_session_state state)
{
	if ((unsigned int)state >= SMPP_SESSION_STATE_COUNT)
		return "INVALID";
	return state_names[state];
}

const char *
smpp_session_strreason(enum smpp_session_reason reason)
{
	if ((unsigned int)reason >=
	    sizeof(reason_names) / sizeof(reason_names[0]))
		return "invalid";
	return reason_names[reason];
}

uint32_t
smpp_session_check_receive(enum smpp_session_role role,
    enum smpp_session_state state, uint32_t command_id)
{
	const struct command_rule *rule;
	unsigned int allowed;

	if (command_id & SMPP_RESPONSE_BIT)
		return is_known_response(command_id) ? SMPP_ESME_ROK
						     : SMPP_ESME_RINVCMDID;
	if ((rule = find_rule(command_id)) == NULL)
		return SMPP_ESME_RINVCMDID;
	allowed = role == SMPP_SESSION_ESME ? rule->esme_receives
					    : rule->smsc_receives;
	if (allowed == 0)
		return SMPP_ESME_RINVCMDID;
	if (allowed & (1u << state))
		return SMPP_ESME_ROK;
	if (rule->kind == KIND_BIND && is_bound(state))
		return SMPP_ESME_RALYBND;
	return SMPP_ESME_RINVBNDSTS;
}

uint32_t
smpp_session_check_send(enum smpp_session_role role,
    enum smpp_session_state state, uint32_t command_id)
{
	const struct command_rule *rule;
	unsigned int allowed;

	if (command_id & SMPP_RESPONSE_BIT)
		return is_known_response(command_id) ? SMPP_ESME_ROK
						     : SMPP_ESME_RINVCMDID;
	if ((rule = find_rule(command_id)) == NULL)
		return SMPP_ESME_RINVCMDID;
	allowed =
	    role == SMPP_SESSION_ESME ? rule->esme_sends : rule->smsc_sends;
	if (allowed == 0)
		return SMPP_ESME_RINVCMDID;
	if (allowed & (1u << state))
		return SMPP_ESME_ROK;
	return SMPP_ESME_RINVBNDSTS;
}

uint32_t
smpp_session_next_sequence(struct smpp_session *session)
{
	uint32_t sequence_number;

	/* At most window + 3 numbers are in use, so this ends quickly. */
	do {
		sequence_number = session->next_sequence;
		session->next_sequence =
		    sequence_number >= SMPP_SESSION_MAX_SEQUENCE
			? 1
			: sequence_number + 1;
	} while (sequence_in_use(session, sequence_number));
	return sequence_number;
}

/* Whether a response command id answers a request with command_id. */
static int
answers(uint32_t response_id, uint32_t command_id)
{
	return response_id == SMPP_GENERIC_NACK ||
	       response_id == (command_id | SMPP_RESPONSE_BIT);
}

/* Moves to CLOSED for a reason. */
static void
close_session(
    struct smpp_session *session, enum smpp_session_reason reason, uint64_t now)
{
	session->close_reason = reason;
	smpp_session_enter_state(session, SMPP_SESSION_CLOSED, now);
}

/* Matches a received response against what is outstanding. */
static void
receive_response(struct smpp_session *session, uint32_t command_id,
    uint32_t command_status, uint32_t sequence_number, uint64_t now,
    struct smpp_session_event *event)
{
	const struct smpp_session_request *request;
	int bucket;

	event->status = command_status;
	if (sequence_number == 0) {
		event->type = SMPP_SESSION_EVENT_RESPONSE_UNKNOWN;
		return;
	}
	if (sequence_number == session->bind.sequence_number) {
		event->request_command_id = session->bind.command_id;
		if (!answers(command_id, session->bind.command_id)) {
			event->type = SMPP_SESSION_EVENT_RESPONSE_MISMATCH;
		} else if (command_id != SMPP_GENERIC_NACK &&
			   command_status == SMPP_ESME_ROK) {
			event->type = SMPP_SESSION_EVENT_BOUND;
			smpp_session_enter_state(session,
			    bound_state_of(session->bind.command_id), now);
		} else {
			event->type = SMPP_SESSION_EVENT_BIND_REJECTED;
			close_session(
			    session, SMPP_SESSION_REASON_BIND_REJECTED, now);
		}
		return;
	}
	if (sequence_number == session->unbind.sequence_number) {
		event->request_command_id = SMPP_UNBIND;
		if (!answers(command_id, SMPP_UNBIND)) {
			event->type = SMPP_SESSION_EVENT_RESPONSE_MISMATCH;
			return;
		}
		event->type = SMPP_SESSION_EVENT_UNBIND_DONE;
		close_session(session, SMPP_SESSION_REASON_UNBOUND, now);
		return;
	}
	if (sequence_number == session->enquire_link.sequence_number) {
		event->request_command_id = SMPP_ENQUIRE_LINK;
		if (!answers(command_id, SMPP_ENQUIRE_LINK)) {
			event->type = SMPP_SESSION_EVENT_RESPONSE_MISMATCH;
			return;
		}
		event->type = SMPP_SESSION_EVENT_ENQUIRE_LINK_ANSWERED;
		session->enquire_link.sequence_number = 0;
		return;
	}
	if ((bucket = hash_find(session, sequence_number)) < 0) {
		event->type = SMPP_SESSION_EVENT_RESPONSE_UNKNOWN;
		return;
	}
	request = &session->slots[session->hash[bucket] - 1];
	event->request_command_id = request->command_id;
	event->cookie = request->cookie;
	if (!answers(command_id, request->command_id)) {
		/* Leave the request to its own response or its deadline. */
		event->type = SMPP_SESSION_EVENT_RESPONSE_MISMATCH;
		return;
	}
	event->type = SMPP_SESSION_EVENT_RESPONSE;
	window_remove(
	    session, session->hash[bucket] - 1u, (unsigned int)bucket);
}

void
smpp_session_receive(struct smpp_session *session, uint32_t command_id,
    uint32_t command_status, uint32_t sequence_number, uint64_t now,
    struct smpp_session_event *event)
{
	const struct command_rule *rule;

	memset(event, 0, sizeof(*event));
	if (session->state == SMPP_SESSION_CLOSED) {
		event->type = SMPP_SESSION_EVENT_IGNORED;
		return;
	}
	/* Anything from the peer proves it alive; only traffic is not idle. */
	session->last_received = now;
	if (command_id != SMPP_ENQUIRE_LINK &&
	    command_id != SMPP_ENQUIRE_LINK_RESP)
		session->last_traffic = now;

	if (command_id & SMPP_RESPONSE_BIT) {
		receive_response(session, command_id, command_status,
		    sequence_number, now, event);
		return;
	}
	event->type = SMPP_SESSION_EVENT_REQUEST;
	event->status = smpp_session_check_receive(
	    session->role, session->state, command_id);
	rule = find_rule(command_id);
	if (rule != NULL && rule->kind == KIND_NO_RESPONSE)
		event->response_command_id = 0;
	else if (rule == NULL || event->status == SMPP_ESME_RINVCMDID)
		event->response_command_id = SMPP_GENERIC_NACK;
	else
		event->response_command_id = command_id | SMPP_RESPONSE_BIT;
	if (event->status == SMPP_ESME_ROK && rule != NULL &&
	    rule->kind == KIND_UNBIND)
		smpp_session_enter_state(session, SMPP_SESSION_UNBOUND, now);
}

uint32_t
smpp_session_send_request(struct smpp_session *session, uint32_t command_id,
    uint64_t cookie, uint64_t now, uint32_t *sequence_number)
{
	const struct command_rule *rule;
	struct smpp_session_pending *pending = NULL;
	uint32_t status, sequence;

	if (command_id & SMPP_RESPONSE_BIT)
		return SMPP_ESME_RINVCMDID;
	status =
	    smpp_session_check_send(session->role, session->state, command_id);
	if (status != SMPP_ESME_ROK)
		return status;
	rule = find_rule(command_id);
	switch (rule->kind) {
	case KIND_WINDOW:
		if (session->outstanding >= session->config.window_size)
			return SMPP_ESME_RMSGQFUL;
		break;
	case KIND_BIND:
		if (session->bind.sequence_number != 0)
			return SMPP_ESME_RINVBNDSTS;
		pending = &session->bind;
		break;
	case KIND_UNBIND:
		pending = &session->unbind;
		break;
	case KIND_ENQUIRE_LINK:
		/* Keep tracking an older one: its deadline is the stricter. */
		if (session->enquire_link.sequence_number == 0)
			pending = &session->enquire_link;
		break;
	default:
		break;
	}

	sequence = smpp_session_next_sequence(session);
	if (rule->kind == KIND_WINDOW)
		window_add(session, sequence, command_id,
		    deadline_after(now, session->config.response_timeout),
		    cookie);
	if (pending != NULL) {
		pending->sequence_number = sequence;
		pending->command_id = command_id;
		pending->deadline =
		    deadline_after(now, session->config.response_timeout);
	}
	if (command_id != SMPP_ENQUIRE_LINK)
		session->last_traffic = now;
	if (rule->kind == KIND_UNBIND)
		smpp_session_enter_state(session, SMPP_SESSION_UNBOUND, now);
	*sequence_number = sequence;
	return SMPP_ESME_ROK;
}

void
smpp_session_send_response(struct smpp_session *session, uint32_t command_id,
    uint32_t command_status, uint64_t now)
{
	if (session->state == SMPP_SESSION_CLOSED)
		return;
	if (command_id != SMPP_ENQUIRE_LINK_RESP)
		session->last_traffic = now;
	switch (command_id) {
	case SMPP_BIND_TRANSMITTER_RESP:
	case SMPP_BIND_RECEIVER_RESP:
	case SMPP_BIND_TRANSCEIVER_RESP:
		/* A rejected bind leaves the peer in OPEN to try again. */
		if (session->role == SMPP_SESSION_SMSC &&
		    session->state == SMPP_SESSION_OPEN &&
		    command_status == SMPP_ESME_ROK)
			smpp_session_enter_state(
			    session, bound_state_of(command_id), now);
		break;
	case SMPP_UNBIND_RESP:
		if (session->state == SMPP_SESSION_UNBOUND)
			close_session(
			    session, SMPP_SESSION_REASON_UNBOUND, now);
		break;
	}
}

/* Fills a CLOSE action after moving to CLOSED. */
static enum smpp_session_action_type
close_action(struct smpp_session *session, enum smpp_session_reason reason,
    uint64_t now, struct smpp_session_action *action)
{
	close_session(session, reason, now);
	action->type = SMPP_SESSION_ACTION_CLOSE;
	action->reason = reason;
	return action->type;
}

enum smpp_session_action_type
smpp_session_poll(struct smpp_session *session, uint64_t now,
    struct smpp_session_action *action)
{
	const struct smpp_session_config *config = &session->config;
	struct smpp_session_pending *pending;

	memset(action, 0, sizeof(*action));
	if (session->state == SMPP_SESSION_CLOSED) {
		if (session->outstanding > 0)
			return pop_oldest(session,
			    SMPP_SESSION_ACTION_REQUEST_FAILED, action);
		return SMPP_SESSION_ACTION_NONE;
	}
	if (session->state == SMPP_SESSION_OPEN &&
	    now >= session->bind_deadline)
		return close_action(
		    session, SMPP_SESSION_REASON_BIND_TIMEOUT, now, action);
	if (session->state == SMPP_SESSION_UNBOUND &&
	    now >= session->unbind_deadline)
		return close_action(
		    session, SMPP_SESSION_REASON_UNBIND_TIMEOUT, now, action);
	if (session->enquire_link.sequence_number != 0 &&
	    now >= session->enquire_link.deadline)
		return close_action(session,
		    SMPP_SESSION_REASON_ENQUIRE_LINK_TIMEOUT, now, action);
	if (session->outstanding > 0 &&
	    now >= session->slots[session->oldest - 1].deadline)
		return pop_oldest(
		    session, SMPP_SESSION_ACTION_REQUEST_EXPIRED, action);
	if (!is_bound(session->state))
		return SMPP_SESSION_ACTION_NONE;

	if (now >=
	    deadline_after(session->last_traffic, config->idle_timeout)) {
		/* Idle: leave politely; the unbind deadline bounds the wait. */
		pending = &session->unbind;
		action->type = SMPP_SESSION_ACTION_SEND_UNBIND;
		action->command_id = SMPP_UNBIND;
		action->reason = SMPP_SESSION_REASON_IDLE_TIMEOUT;
	} else if (session->enquire_link.sequence_number == 0 &&
		   now >= deadline_after(session->last_received,
			      config->enquire_link_interval)) {
		pending = &session->enquire_link;
		action->type = SMPP_SESSION_ACTION_SEND_ENQUIRE_LINK;
		action->command_id = SMPP_ENQUIRE_LINK;
	} else
		return SMPP_SESSION_ACTION_NONE;

	action->sequence_number = smpp_session_next_sequence(session);
	pending->sequence_number = action->sequence_number;
	pending->command_id = action->command_id;
	pending->deadline = deadline_after(now, config->response_timeout);
	if (action->type == SMPP_SESSION_ACTION_SEND_UNBIND)
		smpp_session_enter_state(session, SMPP_SESSION_UNBOUND, now);
	return action->type;
}

uint64_t
smpp_session_next_wakeup(const struct smpp_session *session)
{
	const struct smpp_session_config *config = &session->config;
	uint64_t wakeup = SMPP_SESSION_NEVER;

	if (session->state == SMPP_SESSION_CLOSED)
		return session->outstanding > 0 ? 0 : SMPP_SESSION_NEVER;
	if (session->state == SMPP_SESSION_OPEN)
		wakeup = session->bind_deadline;
	if (session->state == SMPP_SESSION_UNBOUND)
		wakeup = session->unbind_deadline;
	if (session->enquire_link.sequence_number != 0)
		wakeup = earliest(wakeup, session->enquire_link.deadline);
	if (session->outstanding > 0)
		wakeup = earliest(
		    wakeup, session->slots[session->oldest - 1].deadline);
	if (is_bound(session->state)) {
		wakeup = earliest(wakeup, deadline_after(session->last_traffic,
					      config->idle_timeout));
		if (session->enquire_link.sequence_number == 0)
			wakeup = earliest(
			    wakeup, deadline_after(session->last_received,
					config->enquire_link_interval));
	}
	return wakeup;
}

unsigned int
smpp_session_outstanding(const struct smpp_session *session)
{
	return session->outstanding;
}

unsigned int
smpp_session_window_available(const struct smpp_session *session)
{
	if (session->outstanding >= session->config.window_size)
		return 0;
	return session->config.window_size - session->outstanding;
}
