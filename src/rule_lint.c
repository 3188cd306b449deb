/*
 * rule_lint.c - warnings a marketer needs about a flow that loads fine:
 * abandonment SMS sent too late or more than once on a path, texts that
 * need too many SMS parts for a typical profile, splits whose branches all
 * lead nowhere or to the same place, steps that can never run. And checks
 * across the files of one folder: duplicate flow ids and keywords, and
 * question answers naming flows that are missing or not reply-triggered.
 *
 * Paths are walked once over the step array: every edge goes to a higher
 * index (rule.c guarantees it), so index order is a topological order and
 * "the worst path to this step" is a single forward pass.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "nudged.h"
#include "smpp.h"

#define nitems(array) (sizeof(array) / sizeof((array)[0]))

#define RENDER_SIZE    16384
#define HOUR_US        (UINT64_C(3600) * 1000000)
#define DAY_US         (24 * HOUR_US)
#define DURATION_TEXT  32
#define MAX_SUCCESSORS (FLOW_MAX_AB_BRANCHES + 1)

/*
 * The typical profile texts are measured with. Links are as long as the
 * short links that replace them on the way out (https://nud.ge/xxxxx);
 * names and products are of ordinary length, with no accents, so that a
 * text which needs UCS-2 does so because of its own characters.
 */
static const char sample_context[] =
    "{\"person\": {\"first_name\": \"Alessandra\", \"last_name\": \"Rossi\","
    " \"phone_number\": \"+393401234567\", \"email\": "
    "\"alessandra@example.com\","
    " \"language\": \"en\", \"timezone\": \"Europe/Rome\", \"city\": "
    "\"Milano\","
    " \"country\": \"IT\", \"order_count\": 3, \"total_spent\": 412.5,"
    " \"properties\": {\"loyalty_tier\": \"Gold\", \"favorite_category\":"
    " \"Shoes\", \"size\": \"38\"}},"
    " \"event\": {\"ProductName\": \"Leather ankle boots\", \"ProductID\":"
    " \"SKU-10422\", \"Brand\": \"Calzoleria\", \"Categories\": [\"Shoes\","
    " \"Women\"], \"Price\": 129.9, \"CompareAtPrice\": 159.9, \"value\": "
    "129.9,"
    " \"URL\": \"https://nud.ge/p7Kq2\", \"ImageURL\": "
    "\"https://nud.ge/i7Kq2\","
    " \"CheckoutURL\": \"https://nud.ge/c9Pz1\", \"ReviewURL\":"
    " \"https://nud.ge/r4Tn8\", \"ItemNames\": [\"Leather ankle boots\","
    " \"Wool socks\"], \"ItemCount\": 2, \"OrderId\": \"100482\"},"
    " \"organization\": {\"name\": \"Bottega Nudge\", \"url\":"
    " \"https://nud.ge/shop\", \"phone\": \"+390212345678\"},"
    " \"journey\": {\"flow\": \"sample\", \"step\": \"sample\"}}";

/* What the forward pass knows about a step. */
struct step_facts {
	int reachable;
	uint64_t delay_before_us; /* worst case since the trigger */
	unsigned int sms_before;  /* most SMS on a path before it */
	int leads_to_action;      /* an SMS, update or webhook follows */
};

/* The steps a journey may go to from step, FLOW_STEP_NONE left out. */
static size_t
successors(const struct flow_step *step, uint32_t *out)
{
	size_t count = 0, i;

	switch (step->type) {
	case FLOW_STEP_CONDITIONAL_SPLIT:
	case FLOW_STEP_TRIGGER_SPLIT:
		out[count++] = step->split.yes;
		out[count++] = step->split.no;
		break;
	case FLOW_STEP_AB_SPLIT:
		for (i = 0; i < step->ab.branch_count && count < MAX_SUCCESSORS;
		     i++)
			out[count++] = step->ab.branches[i].step;
		break;
	default:
		out[count++] = step->next;
		break;
	}
	for (i = 0; i < count;)
		if (out[i] == FLOW_STEP_NONE)
			out[i] = out[--count];
		else
			i++;
	return count;
}

/* The longest a delay step can wait: "until" adds up to a day. */
static uint64_t
worst_delay(const struct flow_step *step)
{
	if (step->type != FLOW_STEP_DELAY)
		return 0;
	return step->delay.duration_us + (step->delay.has_until ? DAY_US : 0);
}

static int
is_action(const struct flow_step *step)
{
	return step->type == FLOW_STEP_SMS || step->type == FLOW_STEP_UPDATE ||
	       step->type == FLOW_STEP_WEBHOOK;
}

/* "3d 4h", "49h", "45m" for messages: hours up to three days. */
static const char *
duration_text(uint64_t us, char *out, size_t size)
{
	uint64_t days = us / DAY_US, hours = us % DAY_US / HOUR_US;
	uint64_t minutes = us % HOUR_US / (60 * UINT64_C(1000000));

	if (days < 3) {
		hours += days * 24;
		days = 0;
	}
	if (hours > 0 && minutes > 0)
		snprintf(
		    out, size, "%" PRIu64 "h %" PRIu64 "m", hours, minutes);
	else if (days > 0 && hours > 0)
		snprintf(out, size, "%" PRIu64 "d %" PRIu64 "h", days, hours);
	else if (days > 0)
		snprintf(out, size, "%" PRIu64 "d", days);
	else if (hours > 0)
		snprintf(out, size, "%" PRIu64 "h", hours);
	else
		snprintf(out, size, "%" PRIu64 "m", minutes);
	return out;
}

/* Fills facts[] for every step; 0, or -1 if an edge goes backwards. */
static int
walk_paths(const struct flow *flow, struct step_facts *facts)
{
	const struct flow_step *step;
	uint32_t next[MAX_SUCCESSORS];
	uint64_t delay_after;
	unsigned int sms_after;
	size_t i, j, count;

	if (flow->step_count == 0)
		return 0;
	facts[0].reachable = 1;
	for (i = 0; i < flow->step_count; i++) {
		step = &flow->steps[i];
		count = successors(step, next);
		for (j = 0; j < count; j++)
			if (next[j] <= i || next[j] >= flow->step_count)
				return -1;
		if (!facts[i].reachable)
			continue;
		delay_after = facts[i].delay_before_us + worst_delay(step);
		sms_after = facts[i].sms_before + (step->type == FLOW_STEP_SMS);
		for (j = 0; j < count; j++) {
			struct step_facts *to = &facts[next[j]];

			to->reachable = 1;
			if (delay_after > to->delay_before_us)
				to->delay_before_us = delay_after;
			if (sms_after > to->sms_before)
				to->sms_before = sms_after;
		}
	}
	/* Backwards: does anything useful follow? */
	for (i = flow->step_count; i-- > 0;) {
		step = &flow->steps[i];
		facts[i].leads_to_action = is_action(step);
		count = successors(step, next);
		for (j = 0; j < count; j++)
			if (facts[next[j]].leads_to_action)
				facts[i].leads_to_action = 1;
	}
	return 0;
}

/* Splits that change nothing: every branch leads nowhere, or to one step. */
static void
lint_split(const struct flow *flow, const struct flow_step *step,
    const struct step_facts *facts, struct rule_report *report)
{
	uint32_t next[MAX_SUCCESSORS], targets[MAX_SUCCESSORS];
	size_t count, i, target_count = 0;
	int useful = 0, same = 1;

	if (step->type == FLOW_STEP_AB_SPLIT) {
		for (i = 0; i < step->ab.branch_count && i < MAX_SUCCESSORS;
		     i++)
			targets[target_count++] = step->ab.branches[i].step;
	} else {
		targets[target_count++] = step->split.yes;
		targets[target_count++] = step->split.no;
	}
	count = successors(step, next);
	for (i = 0; i < count; i++)
		if (facts[next[i]].leads_to_action)
			useful = 1;
	for (i = 1; i < target_count; i++)
		if (targets[i] != targets[0])
			same = 0;
	if (!useful)
		rule_report_add(report, RULE_WARNING, flow->file, step->line,
		    "%s \"%s\": no branch leads to an SMS, update or webhook",
		    rule_step_type_name(step->type), step->id);
	else if (same && target_count > 1)
		rule_report_add(report, RULE_WARNING, flow->file, step->line,
		    "%s \"%s\": every branch continues at the same step; the "
		    "split changes nothing",
		    rule_step_type_name(step->type), step->id);
}

/* Renders every language of an SMS for the sample profile and counts its
 * parts. */
static void
lint_texts(const struct flow *flow, const struct flow_step *step,
    const json_t *context, const struct rule_lint_options *options,
    struct rule_report *report, char *rendered)
{
	FILE *preview = options->preview;
	size_t max_parts = options->max_parts;
	const struct flow_text *text;
	struct template_measure measure;
	size_t i, length;
	int result;

	for (i = 0; i < step->sms.text_count; i++) {
		text = &step->sms.texts[i];
		if (text->compiled == NULL)
			continue;
		result = template_render(
		    text->compiled, context, rendered, RENDER_SIZE, &length);
		if (result != TEMPLATE_OK) {
			rule_report_add(report, RULE_WARNING, flow->file,
			    text->line,
			    "SMS \"%s\" (%s): does not render for the sample "
			    "profile (%s)",
			    step->id, text->language,
			    result == TEMPLATE_ERR_SPACE ? "too long"
							 : "bad value");
			continue;
		}
		if (template_measure(rendered, length, &measure) != 0)
			continue;
		if (preview != NULL)
			fprintf(preview,
			    "%s:%d: SMS \"%s\" (%s): %zu part%s, %s, %zu "
			    "characters\n%s\n\n",
			    flow->file, text->line, step->id, text->language,
			    measure.parts, measure.parts == 1 ? "" : "s",
			    measure.data_coding == SMPP_CODING_UCS2 ? "UCS-2"
								    : "GSM-7",
			    measure.characters, rendered);
		if (length == 0)
			rule_report_add(report, RULE_WARNING, flow->file,
			    text->line,
			    "SMS \"%s\" (%s): renders empty for the sample "
			    "profile",
			    step->id, text->language);
		else if (measure.parts > max_parts)
			rule_report_add(report, RULE_WARNING, flow->file,
			    text->line,
			    "SMS \"%s\" (%s): %zu characters in %s need %zu "
			    "SMS parts for the sample profile; keep it to %zu",
			    step->id, text->language, measure.characters,
			    measure.data_coding == SMPP_CODING_UCS2 ? "UCS-2"
								    : "GSM-7",
			    measure.parts, max_parts);
	}
}

/* The checks of one SMS step given how it is reached. */
static void
lint_sms(const struct flow *flow, const struct flow_step *step,
    const struct step_facts *facts, const struct rule_lint_options *options,
    struct rule_report *report)
{
	char text[DURATION_TEXT];

	if (flow->kind == FLOW_KIND_ABANDONMENT) {
		if (facts->delay_before_us > options->abandonment_window_us)
			rule_report_add(report, RULE_WARNING, flow->file,
			    step->line,
			    "SMS \"%s\" in an abandonment flow may come %s "
			    "after the trigger; the abandonment policy only "
			    "sends within %s",
			    step->id,
			    duration_text(
				facts->delay_before_us, text, sizeof(text)),
			    duration_text(options->abandonment_window_us,
				text + DURATION_TEXT / 2, DURATION_TEXT / 2));
		if (facts->sms_before >= 1)
			rule_report_add(report, RULE_WARNING, flow->file,
			    step->line,
			    "SMS \"%s\" can be SMS number %u on one path of an "
			    "abandonment flow; the abandonment policy sends "
			    "one per episode",
			    step->id, facts->sms_before + 1);
		if (step->sms.message_class == OUTBOX_CLASS_TRANSACTIONAL)
			rule_report_add(report, RULE_WARNING, flow->file,
			    step->line,
			    "SMS \"%s\" in an abandonment flow is marked "
			    "transactional; abandonment reminders are "
			    "marketing",
			    step->id);
	}
	if (step->sms.message_class == OUTBOX_CLASS_MARKETING &&
	    !step->sms.quiet_hours && facts->delay_before_us > 0)
		rule_report_add(report, RULE_WARNING, flow->file, step->line,
		    "SMS \"%s\" turns quiet hours off but is not sent right "
		    "after the trigger; it may reach people at night",
		    step->id);
}

/* "rules/cart.xml" names flow "cart": the reloader maps files to flows. */
static void
lint_file_name(const struct flow *flow, struct rule_report *report)
{
	const char *base = strrchr(flow->file, '/');
	size_t length;

	base = base != NULL ? base + 1 : flow->file;
	length = strlen(base);
	if (length > 4 && strcmp(base + length - 4, ".xml") == 0)
		length -= 4;
	if (flow->id != NULL && (strlen(flow->id) != length ||
				    strncmp(base, flow->id, length) != 0))
		rule_report_add(report, RULE_WARNING, flow->file, flow->line,
		    "flow id \"%s\" differs from the file name; name the file "
		    "%s.xml",
		    flow->id, flow->id);
}

void
rule_lint_with(const struct flow *flow, const struct rule_lint_options *options,
    struct rule_report *report)
{
	const struct flow_step *step;
	struct step_facts *facts = NULL;
	json_t *context = NULL;
	char *rendered = NULL;
	size_t i;

	lint_file_name(flow, report);
	if (flow->step_count == 0)
		return;
	facts = calloc(flow->step_count, sizeof(*facts));
	rendered = malloc(RENDER_SIZE);
	context = json_loads(sample_context, 0, NULL);
	if (facts == NULL || rendered == NULL || context == NULL) {
		rule_report_add(report, RULE_WARNING, flow->file, 0,
		    "lint skipped: out of memory");
		goto done;
	}
	if (walk_paths(flow, facts) == -1) {
		rule_report_add(report, RULE_WARNING, flow->file, 0,
		    "lint skipped: a step leads backwards");
		goto done;
	}
	for (i = 0; i < flow->step_count; i++) {
		step = &flow->steps[i];
		if (!facts[i].reachable) {
			rule_report_add(report, RULE_WARNING, flow->file,
			    step->line, "%s \"%s\" can never be reached",
			    rule_step_type_name(step->type), step->id);
			continue;
		}
		switch (step->type) {
		case FLOW_STEP_CONDITIONAL_SPLIT:
		case FLOW_STEP_TRIGGER_SPLIT:
		case FLOW_STEP_AB_SPLIT:
			lint_split(flow, step, facts, report);
			break;
		case FLOW_STEP_SMS:
			lint_sms(flow, step, &facts[i], options, report);
			lint_texts(
			    flow, step, context, options, report, rendered);
			break;
		default:
			break;
		}
	}
done:
	json_decref(context);
	free(rendered);
	free(facts);
}

void
rule_lint(const struct flow *flow, struct rule_report *report)
{
	struct rule_lint_options options = {
	    RULE_LINT_MAX_PARTS, RULE_LINT_ABANDONMENT_WINDOW_US, NULL};

	rule_lint_with(flow, &options, report);
}

/* The loaded flow with this id, or NULL. */
static const struct flow *
find_flow(struct flow *const *flows, size_t count, const char *id)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (flows[i]->id != NULL && strcmp(flows[i]->id, id) == 0)
			return flows[i];
	return NULL;
}

/* Answers must start reply-triggered flows of the same conversation. */
static void
check_answers(struct flow *const *flows, size_t count, const struct flow *flow,
    struct rule_report *report)
{
	const struct flow_question *question;
	const struct flow_answer *answer;
	const struct flow *target;
	size_t i, j;

	for (i = 0; i < flow->step_count; i++) {
		if (flow->steps[i].type != FLOW_STEP_SMS ||
		    (question = flow->steps[i].sms.question) == NULL)
			continue;
		for (j = 0; j < question->answer_count; j++) {
			answer = &question->answers[j];
			if (answer->flow_id == NULL)
				continue;
			target = find_flow(flows, count, answer->flow_id);
			if (target == NULL)
				rule_report_add(report, RULE_WARNING,
				    flow->file, answer->line,
				    "answer starts flow \"%s\", which is not "
				    "among the checked files",
				    answer->flow_id);
			else if (target->trigger.type != FLOW_TRIGGER_REPLY ||
				 target->trigger.conversation == NULL ||
				 question->conversation == NULL ||
				 strcmp(target->trigger.conversation,
				     question->conversation) != 0)
				rule_report_add(report, RULE_WARNING,
				    flow->file, answer->line,
				    "answer starts flow \"%s\", whose trigger "
				    "is not <reply conversation=\"%s\"/>",
				    answer->flow_id,
				    question->conversation != NULL
					? question->conversation
					: "");
		}
	}
}

/* 1 if some question of the set opens this conversation. */
static int
conversation_opened(
    struct flow *const *flows, size_t count, const char *conversation)
{
	const struct flow_question *question;
	size_t i, j;

	for (i = 0; i < count; i++)
		for (j = 0; j < flows[i]->step_count; j++) {
			if (flows[i]->steps[j].type != FLOW_STEP_SMS)
				continue;
			question = flows[i]->steps[j].sms.question;
			if (question != NULL &&
			    question->conversation != NULL &&
			    strcmp(question->conversation, conversation) == 0)
				return 1;
		}
	return 0;
}

void
rule_check_set(
    struct flow *const *flows, size_t count, struct rule_report *report)
{
	const struct flow *flow, *other;
	size_t i, j;

	for (i = 0; i < count; i++) {
		flow = flows[i];
		for (j = 0; j < i; j++) {
			other = flows[j];
			if (flow->id != NULL && other->id != NULL &&
			    strcmp(flow->id, other->id) == 0)
				rule_report_add(report, RULE_ERROR, flow->file,
				    flow->line,
				    "flow id \"%s\" is also used by %s",
				    flow->id, other->file);
			if (flow->status == FLOW_STATUS_LIVE &&
			    other->status == FLOW_STATUS_LIVE &&
			    flow->trigger.type == FLOW_TRIGGER_KEYWORD &&
			    other->trigger.type == FLOW_TRIGGER_KEYWORD &&
			    flow->trigger.keyword != NULL &&
			    other->trigger.keyword != NULL &&
			    strcasecmp(flow->trigger.keyword,
				other->trigger.keyword) == 0)
				rule_report_add(report, RULE_ERROR, flow->file,
				    flow->trigger.line,
				    "keyword \"%s\" also starts live flow %s",
				    flow->trigger.keyword, other->file);
		}
		check_answers(flows, count, flow, report);
		if (flow->trigger.type == FLOW_TRIGGER_REPLY &&
		    flow->trigger.conversation != NULL &&
		    !conversation_opened(
			flows, count, flow->trigger.conversation))
			rule_report_add(report, RULE_WARNING, flow->file,
			    flow->trigger.line,
			    "no SMS of the checked files asks a question in "
			    "conversation \"%s\"",
			    flow->trigger.conversation);
	}
}

/* Loads and lints one file; a flow that loads joins *flows. */
static void
check_file(const char *path, const struct rule_lint_options *options,
    struct rule_report *report, struct flow ***flows, size_t *flow_count)
{
	struct flow *flow, **grown;

	if ((flow = rule_load_file(path, report)) == NULL)
		return;
	rule_lint_with(flow, options, report);
	grown = reallocarray(*flows, *flow_count + 1, sizeof(*grown));
	if (grown == NULL) {
		rule_free(flow);
		return;
	}
	*flows = grown;
	(*flows)[(*flow_count)++] = flow;
}

size_t
rule_check_paths(const char *const *paths, size_t count,
    const struct rule_lint_options *options, struct rule_report *report)
{
	struct flow **flows = NULL;
	struct stat st;
	char **files;
	size_t i, j, file_count, checked = 0, flow_count = 0;

	for (i = 0; i < count; i++) {
		if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			if (rule_folder_files(paths[i], &files, &file_count) ==
			    -1) {
				rule_report_add(report, RULE_ERROR, paths[i], 0,
				    "%s", strerror(errno));
				continue;
			}
			if (file_count == 0)
				rule_report_add(report, RULE_WARNING, paths[i],
				    0, "no .xml rule files in this folder");
			for (j = 0; j < file_count; j++)
				check_file(files[j], options, report, &flows,
				    &flow_count);
			checked += file_count;
			rule_paths_free(files, file_count);
			continue;
		}
		check_file(paths[i], options, report, &flows, &flow_count);
		checked++;
	}
	rule_check_set(flows, flow_count, report);
	for (i = 0; i < flow_count; i++)
		rule_free(flows[i]);
	free(flows);
	return checked;
}
