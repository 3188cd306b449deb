/*
 * fuzz_rule.c - libFuzzer target for flow rule files: arbitrary bytes are
 * loaded as a rule file from memory. No crash and no leak, whatever the
 * input; a load either fails with at least one error or yields a flow
 * whose model holds every promise nudged.h makes to the runtime:
 *
 *  - steps[0] exists and every edge goes to a higher index, in range;
 *  - splits have conditions, A/B weights sum to 100, SMS have compiled
 *    texts and a fallback among them, question words find their answer;
 *  - written step ids find their step.
 *
 * A flow that loads is linted and previewed too (both must not crash).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nudged.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int condition)
{
	if (!condition)
		abort();
}

/* An edge from step index to target: forward, or the journey ends. */
static void
check_edge(const struct flow *flow, size_t index, uint32_t target)
{
	check(target == FLOW_STEP_NONE ||
	      (target > index && target < flow->step_count));
}

static void
check_sms(const struct flow_sms *sms)
{
	const struct flow_question *question = sms->question;
	const struct flow_answer *answer;
	size_t i, j;

	check(sms->text_count >= 1 && sms->fallback < sms->text_count);
	for (i = 0; i < sms->text_count; i++)
		check(sms->texts[i].compiled != NULL &&
		      sms->texts[i].source[0] != '\0');
	check(rule_sms_text(sms, "") == &sms->texts[sms->fallback]);
	if (question == NULL)
		return;
	check(question->reply_window_us > 0);
	for (i = 0; i < question->answer_count; i++) {
		answer = &question->answers[i];
		check(answer->flow_id != NULL);
		for (j = 0; j < answer->word_count; j++)
			check(rule_question_answer(question, answer->words[j],
				  strlen(answer->words[j])) == answer);
	}
}

static void
check_flow(const struct flow *flow)
{
	const struct flow_step *step;
	unsigned int sum;
	size_t i, j;

	check(flow->id != NULL && flow->name != NULL && flow->step_count >= 1);
	check(flow->refcount == 1);
	for (i = 0; i < flow->step_count; i++) {
		step = &flow->steps[i];
		check(step->id != NULL);
		if (strchr(step->id, '@') == NULL)
			check(rule_step_index(flow, step->id) == i);
		check_edge(flow, i, step->next);
		switch (step->type) {
		case FLOW_STEP_CONDITIONAL_SPLIT:
		case FLOW_STEP_TRIGGER_SPLIT:
			check(step->next == FLOW_STEP_NONE);
			check(step->split.condition_count >= 1);
			check_edge(flow, i, step->split.yes);
			check_edge(flow, i, step->split.no);
			break;
		case FLOW_STEP_AB_SPLIT:
			check(step->ab.branch_count >= 2);
			for (j = 0, sum = 0; j < step->ab.branch_count; j++) {
				check_edge(flow, i, step->ab.branches[j].step);
				sum += step->ab.branches[j].weight;
			}
			check(sum == 100);
			check(rule_ab_branch(&step->ab, 99) != NULL);
			break;
		case FLOW_STEP_SMS:
			check_sms(&step->sms);
			break;
		case FLOW_STEP_DELAY:
			check(step->delay.duration_us > 0 ||
			      step->delay.has_until);
			check(step->delay.duration_us <= FLOW_MAX_DELAY_US);
			break;
		case FLOW_STEP_UPDATE:
			check(step->update.value != NULL);
			break;
		case FLOW_STEP_END:
			check(step->next == FLOW_STEP_NONE);
			break;
		default:
			break;
		}
	}
	if (flow->reentry.mode == FLOW_REENTRY_KEY)
		check(flow->reentry.key != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *preview;
	struct rule_lint_options options = {
	    RULE_LINT_MAX_PARTS, RULE_LINT_ABANDONMENT_WINDOW_US, NULL};
	struct rule_report report;
	struct flow *flow;
	size_t i;

	if (preview == NULL)
		preview = fopen("/dev/null", "w");
	options.preview = preview;
	rule_report_init(&report);
	flow = rule_load_memory("fuzz.xml", (const char *)data, size, &report);
	check(flow != NULL ? report.error_count == 0 : report.error_count > 0);
	for (i = 0; i < report.count; i++)
		check(report.messages[i].text != NULL &&
		      report.messages[i].line >= 0);
	if (flow != NULL) {
		check_flow(flow);
		rule_lint_with(flow, &options, &report);
		rule_hold(flow);
		rule_free(flow);
		rule_free(flow);
	}
	rule_report_free(&report);
	return 0;
}
