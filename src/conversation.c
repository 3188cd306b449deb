/*
 * conversation.c - questions asked by SMS and the replies to them. An SMS
 * step with a <question> opens a conversation for the number (flow.c calls
 * conversation_open() in the turn that queues the SMS), kept in
 * STORE_DB_CONVERSATIONS under the number's digits until its reply window
 * ends. One per number: a newer question replaces an older one, so a reply
 * always answers the last thing we asked.
 *
 * In the inbound chain (after the compliance keywords) a reply from that
 * number inside the window is matched against the question's answers
 * (rule_question_answer: whole reply, caseless, spaces trimmed). A match
 * closes the conversation and starts the answer's flow with the event
 * {"reply", "answer", "conversation", "question_flow"}. The first reply
 * that matches nothing gets one short re-prompt built from the answers'
 * first words ("Please reply 1, 2 or 3.", in the profile's language) and
 * is claimed by it; later unmatched replies, and replies that start with a
 * keyword flow's keyword, go on down the chain. After the window the row
 * is dropped when the next SMS comes and that SMS goes on as if none were
 * open. Then the chain's next step: flows triggered by a keyword.
 *
 * Every decision is one log line (decision=matched / unmatched /
 * reprompted / expired / gone) and a labelled counter in /metrics.
 */
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "nudged.h"

#define CONVERSATION_REPROMPT_MAX 480 /* three SMS parts of GSM-7 */

/* Why a reply to an open conversation went where it went. */
enum conversation_decision {
	CONVERSATION_MATCHED = 0, /* an answer: its flow started */
	CONVERSATION_UNMATCHED,   /* no answer; passed down the chain */
	CONVERSATION_REPROMPTED,  /* no answer; the one re-prompt sent */
	CONVERSATION_EXPIRED,     /* after the window: row dropped */
	CONVERSATION_GONE,        /* the asking flow version is gone */
	CONVERSATION_DECISION_COUNT
};

static const char *const decision_names[CONVERSATION_DECISION_COUNT] = {
    [CONVERSATION_MATCHED] = "matched",
    [CONVERSATION_UNMATCHED] = "unmatched",
    [CONVERSATION_REPROMPTED] = "reprompted",
    [CONVERSATION_EXPIRED] = "expired",
    [CONVERSATION_GONE] = "gone",
};

/* The re-prompt per language: the sentence around the list of words. */
static const struct {
	const char *language;
	const char *before;
	const char *or_word;
	const char *after;
} reprompts[] = {
    {"en", "Sorry, we did not get that. Please reply ", " or ", "."},
    {"it", "Scusa, non abbiamo capito. Rispondi ", " o ", "."},
    {"fr", "Désolé, nous n'avons pas compris. Répondez ", " ou ", "."},
    {"de",
	"Entschuldigung, das haben wir nicht verstanden. "
	"Bitte antworte ",
	" oder ", "."},
    {"es", "Perdona, no lo hemos entendido. Responde ", " o ", "."},
    {"pt", "Desculpe, não entendemos. Responda ", " ou ", "."},
};

static struct metric *metric_decisions[CONVERSATION_DECISION_COUNT];
static struct metric *metric_opened, *metric_replaced;
static struct metric *metric_keyword_started, *metric_keyword_refused;

/* The number's digits as the key ("+393401234567" -> "393401234567"). */
static size_t
conversation_key(const char *number, char *key, size_t size)
{
	size_t length;
	const char *digits = phone_digits(number, &length);

	if (length == 0 || length >= size)
		return 0;
	memcpy(key, digits, length + 1);
	return length;
}

/* Reads the number's conversation; STORE_NOT_FOUND if none is stored. */
static enum store_result
conversation_load(
    const char *key, size_t key_length, struct conversation_record *record)
{
	const void *value;
	size_t length;
	enum store_result result;

	result = store_get(gateway->store, STORE_DB_CONVERSATIONS, key,
	    key_length, &value, &length);
	if (result != STORE_OK)
		return result;
	if (length != sizeof(*record)) {
		log_warnx(
		    0, "conversation", "record-corrupt", "length=%zu", length);
		return STORE_ERROR;
	}
	memcpy(record, value, sizeof(*record));
	return STORE_OK;
}

static void
conversation_close(const char *key, size_t key_length)
{
	store_delete(gateway->store, STORE_DB_CONVERSATIONS, key, key_length);
}

/* One log line and one count per decision about a reply. */
static void
conversation_decide(uint64_t mo_id, enum conversation_decision decision,
    const struct conversation_record *record, const char *detail)
{
	char masked[LOG_MASKED_NUMBER_SIZE];

	metrics_add(metric_decisions[decision], 1);
	log_info(mo_id, "conversation", "reply",
	    "decision=%s number=%s "
	    "conversation=%s flow=%s journey=%llu%s%s",
	    decision_names[decision],
	    log_mask_number(record->number, masked, sizeof(masked)),
	    record->conversation, record->flow_id,
	    (unsigned long long)record->journey_id,
	    detail[0] != '\0' ? " " : "", detail);
}

enum store_result
conversation_open(const char *number, const char *flow_id, uint64_t flow_hash,
    uint32_t step, uint64_t journey_id, const char *conversation,
    uint64_t reply_window_us)
{
	struct conversation_record record, previous;
	char key[PROFILE_NUMBER_SIZE - 1], masked[LOG_MASKED_NUMBER_SIZE];
	size_t key_length;
	enum store_result result;
	int replaced;

	if ((key_length = conversation_key(number, key, sizeof(key))) == 0)
		return STORE_ERROR;
	replaced = conversation_load(key, key_length, &previous) == STORE_OK;
	memset(&record, 0, sizeof(record));
	record.version = CONVERSATION_RECORD_VERSION;
	record.step = step;
	record.flow_hash = flow_hash;
	record.journey_id = journey_id;
	record.opened_us = clock_now_us();
	record.expires_us = record.opened_us + reply_window_us;
	snprintf(record.flow_id, sizeof(record.flow_id), "%s", flow_id);
	snprintf(record.conversation, sizeof(record.conversation), "%s",
	    conversation);
	snprintf(record.number, sizeof(record.number), "+%s", key);
	result = store_put(gateway->store, STORE_DB_CONVERSATIONS, key,
	    key_length, &record, sizeof(record), 0);
	if (result != STORE_OK)
		return result;
	metrics_add(metric_opened, 1);
	if (replaced)
		metrics_add(metric_replaced, 1);
	log_info(journey_id, "conversation", "opened",
	    "number=%s "
	    "conversation=%s flow=%s step=%u window_s=%llu replaced=%s",
	    log_mask_number(record.number, masked, sizeof(masked)),
	    conversation, flow_id, step,
	    (unsigned long long)(reply_window_us / 1000000),
	    replaced ? previous.conversation : "none");
	return STORE_OK;
}

int
conversation_reprompt_text(const struct flow_question *question,
    const char *language, char *out, size_t size)
{
	size_t i, chosen = 0, used, primary;
	int written;

	/* The exact tag, else its primary subtag ("pt" of "pt-BR"). */
	if (language != NULL) {
		primary = strcspn(language, "-_");
		for (i = 0; i < sizeof(reprompts) / sizeof(reprompts[0]); i++)
			if (strlen(reprompts[i].language) == primary &&
			    strncasecmp(reprompts[i].language, language,
				primary) == 0) {
				chosen = i;
				break;
			}
	}
	if (size == 0)
		return -1;
	written = snprintf(out, size, "%s", reprompts[chosen].before);
	for (i = 0; written >= 0 && i < question->answer_count; i++) {
		if (question->answers[i].word_count == 0)
			continue;
		used = (size_t)written < size ? (size_t)written : size - 1;
		written += snprintf(out + used, size - used, "%s%s",
		    i == 0 ? ""
		    : i + 1 == question->answer_count
			? reprompts[chosen].or_word
			: ", ",
		    question->answers[i].words[0]);
	}
	used = (size_t)written < size ? (size_t)written : size - 1;
	written +=
	    snprintf(out + used, size - used, "%s", reprompts[chosen].after);
	return written;
}

/* The word of answer that reply is (trimmed, caseless), for the event. */
static const char *
conversation_matched_word(
    const struct flow_answer *answer, const char *reply, size_t length)
{
	size_t i;

	while (length > 0 && (*reply == ' ' || *reply == '\t' ||
				 *reply == '\n' || *reply == '\r')) {
		reply++;
		length--;
	}
	while (length > 0 &&
	       (reply[length - 1] == ' ' || reply[length - 1] == '\t' ||
		   reply[length - 1] == '\n' || reply[length - 1] == '\r'))
		length--;
	for (i = 0; i < answer->word_count; i++)
		if (strlen(answer->words[i]) == length &&
		    strncasecmp(answer->words[i], reply, length) == 0)
			return answer->words[i];
	return answer->word_count > 0 ? answer->words[0] : "";
}

/* Sends the one re-prompt, in the profile's language (transactional). */
static int
conversation_reprompt(uint64_t mo_id, const struct conversation_record *record,
    const struct flow_question *question)
{
	struct outbox_request request;
	struct outbox_accepted accepted;
	struct profile profile;
	const char *language = NULL, *field;
	char text[CONVERSATION_REPROMPT_MAX], reason[256];
	int length, result;

	if (profile_load(record->number, &profile) == STORE_OK)
		language = json_string_value(
		    json_object_get(profile.attributes, "language"));
	else
		memset(&profile, 0, sizeof(profile));
	length =
	    conversation_reprompt_text(question, language, text, sizeof(text));
	profile_release(&profile);
	if (length < 0 || (size_t)length >= sizeof(text))
		return -1;
	memset(&request, 0, sizeof(request));
	request.to = record->number;
	request.text = text;
	request.text_length = (size_t)length;
	request.message_class = OUTBOX_CLASS_TRANSACTIONAL;
	request.origin = "conversation";
	result =
	    outbox_submit(&request, &accepted, &field, reason, sizeof(reason));
	if (result != 0)
		log_info(mo_id, "conversation", "reprompt-refused",
		    "field=%s "
		    "reason=\"%s\"",
		    field, reason);
	return result;
}

int
conversation_route(uint64_t mo_id, const struct mo_record *mo, const char *text)
{
	struct conversation_record record;
	const struct flow_question *question;
	const struct flow_answer *answer;
	char key[PROFILE_NUMBER_SIZE - 1], detail[256];
	const char *word;
	size_t key_length, length = mo->text_length;
	uint64_t journey;
	json_t *properties, *reply;

	if ((key_length = conversation_key(mo->from, key, sizeof(key))) == 0 ||
	    conversation_load(key, key_length, &record) != STORE_OK)
		return 0;
	if (clock_now_us() >= record.expires_us) {
		conversation_close(key, key_length);
		conversation_decide(mo_id, CONVERSATION_EXPIRED, &record, "");
		return 0;
	}
	question = flow_question(record.flow_id, record.flow_hash, record.step);
	if (question == NULL) {
		conversation_close(key, key_length);
		conversation_decide(mo_id, CONVERSATION_GONE, &record, "");
		return 0;
	}
	if ((answer = rule_question_answer(question, text, length)) != NULL) {
		word = conversation_matched_word(answer, text, length);
		if ((reply = json_stringn(text, length)) == NULL)
			reply = json_string("");
		properties = json_pack("{s:o, s:s, s:s, s:s}", "reply", reply,
		    "answer", word, "conversation", record.conversation,
		    "question_flow", record.flow_id);
		/* Closed first: the answer's flow may ask the next question. */
		conversation_close(key, key_length);
		journey = properties != NULL ? flow_start_reply(answer->flow_id,
						   record.number, properties)
					     : 0;
		json_decref(properties);
		snprintf(detail, sizeof(detail),
		    "answer=\"%s\" next_flow=%s "
		    "next_journey=%llu",
		    word, answer->flow_id, (unsigned long long)journey);
		conversation_decide(
		    mo_id, CONVERSATION_MATCHED, &record, detail);
		return 1;
	}
	/* "JOIN" mid-conversation is for the keyword flow, not an answer. */
	if (flow_keyword_flow(text, length) != NULL) {
		conversation_decide(
		    mo_id, CONVERSATION_UNMATCHED, &record, "reason=keyword");
		return 0;
	}
	if (record.reprompted) {
		conversation_decide(mo_id, CONVERSATION_UNMATCHED, &record,
		    "reason=reprompted-before");
		return 0;
	}
	if (conversation_reprompt(mo_id, &record, question) != 0) {
		conversation_decide(mo_id, CONVERSATION_UNMATCHED, &record,
		    "reason=reprompt-refused");
		return 0;
	}
	record.reprompted = 1;
	store_put(gateway->store, STORE_DB_CONVERSATIONS, key, key_length,
	    &record, sizeof(record), 0);
	conversation_decide(mo_id, CONVERSATION_REPROMPTED, &record, "");
	return 1;
}

int
conversation_route_keyword(
    uint64_t mo_id, const struct mo_record *mo, const char *text)
{
	const struct flow *flow;
	char masked[LOG_MASKED_NUMBER_SIZE];
	uint64_t journey;
	json_t *properties, *whole;

	if ((flow = flow_keyword_flow(text, mo->text_length)) == NULL)
		return 0;
	if ((whole = json_stringn(text, mo->text_length)) == NULL)
		whole = json_string("");
	properties = json_pack("{s:s, s:o, s:s}", "keyword",
	    flow->trigger.keyword, "text", whole, "to", mo->to);
	journey = properties != NULL
		      ? flow_start_keyword(flow, mo->from, properties)
		      : 0;
	json_decref(properties);
	metrics_add(
	    journey != 0 ? metric_keyword_started : metric_keyword_refused, 1);
	/* Claimed either way: the keyword is ours, not an ESME's. */
	log_info(mo_id, "conversation", "keyword",
	    "decision=%s number=%s "
	    "keyword=%s flow=%s journey=%llu",
	    journey != 0 ? "started" : "not-entered",
	    log_mask_number(mo->from, masked, sizeof(masked)),
	    flow->trigger.keyword, flow->id, (unsigned long long)journey);
	return 1;
}

void
conversation_init(const struct config *config)
{
	char labels[64];
	size_t i;

	(void)config;
	for (i = 0; i < CONVERSATION_DECISION_COUNT; i++) {
		snprintf(labels, sizeof(labels), "decision=\"%s\"",
		    decision_names[i]);
		metric_decisions[i] =
		    metrics_counter("nudge_conversation_replies_total", labels,
			"Replies from numbers with an open conversation, by "
			"decision.");
	}
	metric_opened = metrics_counter("nudge_conversations_opened_total",
	    NULL, "Conversations opened by SMS questions.");
	metric_replaced = metrics_counter("nudge_conversations_replaced_total",
	    NULL, "Conversations a newer question replaced.");
	metric_keyword_started = metrics_counter("nudge_keyword_flows_total",
	    "decision=\"started\"", "Inbound SMS that matched a keyword flow.");
	metric_keyword_refused = metrics_counter("nudge_keyword_flows_total",
	    "decision=\"not-entered\"",
	    "Inbound SMS that matched a keyword flow.");
}
