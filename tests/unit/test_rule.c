/*
 * test_rule.c - flow rule files: every step and trigger type compiled into
 * the model, branch rejoin and goto as step indexes, schema errors with
 * their lines (several per file), semantic errors, DOCTYPE/XXE refusal, the
 * size cap, lint warnings, checks across a folder, and every shipped file
 * in rules/ loading without an error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nudged.h"

#define HOUR_US   (UINT64_C(3600) * 1000000)
#define MINUTE_US (UINT64_C(60) * 1000000)

/* Lines 1-3 of most fixtures; their steps start on line 4. */
#define HEAD                                                 \
	"<flow id=\"test\" name=\"Test\" status=\"live\">\n" \
	"<trigger><metric name=\"Test\"/></trigger>\n"       \
	"<steps>\n"
#define TAIL "</steps>\n</flow>\n"

static struct rule_report report;

static int
setup(void **state)
{
	rule_report_init(&report);
	return 0;
}

static int
teardown(void **state)
{
	rule_report_free(&report);
	return 0;
}

static int
cleanup_group(void **state)
{
	rule_cleanup();
	return 0;
}

static struct flow *
load(const char *text)
{
	return rule_load_memory("test.xml", text, strlen(text), &report);
}

/* Prints the report when a test is about to fail on it. */
static void
show_report(void)
{
	rule_report_print(&report, stderr);
}

/* 1 if some message of this severity is at line and contains text. */
static int
has_message(enum rule_severity severity, int line, const char *text)
{
	size_t i;

	for (i = 0; i < report.count; i++)
		if (report.messages[i].severity == severity &&
		    report.messages[i].line == line &&
		    strstr(report.messages[i].text, text) != NULL)
			return 1;
	return 0;
}

/* has_message() that shows the whole report when it fails. */
#define assert_message(severity, line, text)                    \
	do {                                                    \
		if (!has_message(severity, line, text))         \
			show_report();                          \
		assert_true(has_message(severity, line, text)); \
	} while (0)

static struct flow *
load_clean(const char *text)
{
	struct flow *flow = load(text);

	if (flow == NULL || report.error_count != 0)
		show_report();
	assert_non_null(flow);
	assert_int_equal(report.error_count, 0);
	return flow;
}

/* ---- the model ---------------------------------------------------------- */

static const char every_step[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                      /* 1 */
    "<flow id=\"every-step\" name=\" Every step \" status=\"draft\">\n" /* 2 */
    "<description> Tests  the\n"                                        /* 3 */
    "  model. </description>\n"                                         /* 4 */
    "<trigger>\n"                                                       /* 5 */
    "  <metric name=\"Placed Order\">\n"                                /* 6 */
    "    <event-property path=\"value\" operator=\"greater-than\" "
    "value=\"50\"/>\n"                                                /* 7 */
    "    <event-property path=\"Coupon\" operator=\"is-not-set\"/>\n" /* 8 */
    "  </metric>\n"                                                   /* 9 */
    "</trigger>\n"                                                    /* 10 */
    "<reentry mode=\"once-per-key\" key=\"event.OrderId\" "
    "period=\"7d\"/>\n" /* 11 */
    "<exit><metric name=\"Refunded\"/><metric name=\"Cancelled\"/></exit>\n"
    "<steps>\n"                                                   /* 13 */
    "  <delay id=\"wait\" duration=\"90m\"/>\n"                   /* 14 */
    "  <delay id=\"morning\" duration=\"1d\" until=\"09:30\"/>\n" /* 15 */
    "  <conditional-split id=\"who\" match=\"any\">\n"            /* 16 */
    "    <consent operator=\"equals\" value=\"subscribed\"/>\n"   /* 17 */
    "    <order-count operator=\"equals\" value=\"0\" over=\"all-time\"/>\n"
    "    <order-count operator=\"less-than\" value=\"3\" over=\"90d\"/>\n"
    "    <total-spent operator=\"greater-than\" value=\"99.5\"/>\n" /* 20 */
    "    <language operator=\"equals\" value=\"it\"/>\n"            /* 21 */
    "    <property path=\"tier\" operator=\"contains\" value=\"Gold\"/>\n"
    "    <property path=\"vip\" operator=\"is-set\"/>\n" /* 23 */
    "    <yes>\n"                                        /* 24 */
    "      <sms id=\"hello\" class=\"transactional\" quiet-hours=\"off\" "
    "smart-sending=\"off\" fallback=\"it\">\n"                      /* 25 */
    "        <text lang=\"en\">Hi {{ first_name }}</text>\n"        /* 26 */
    "        <text lang=\"it\">Ciao {{ first_name }}</text>\n"      /* 27 */
    "        <question conversation=\"why\" reply-window=\"2d\">\n" /* 28 */
    "          <answer flow=\"price\"><word>1</word><word> Too  "
    "expensive </word></answer>\n"                               /* 29 */
    "          <answer flow=\"later\"><word>2</word></answer>\n" /* 30 */
    "        </question>\n"                                      /* 31 */
    "      </sms>\n"                                             /* 32 */
    "    </yes>\n"                                               /* 33 */
    "    <no>\n"                                                 /* 34 */
    "      <trigger-split id=\"big\">\n"                         /* 35 */
    "        <event-property path=\"Categories\" operator=\"contains\" "
    "value=\"Shoes\"/>\n"                        /* 36 */
    "        <yes><goto step=\"post\"/></yes>\n" /* 37 */
    "        <no><end id=\"stop\"/></no>\n"      /* 38 */
    "      </trigger-split>\n"                   /* 39 */
    "    </no>\n"                                /* 40 */
    "  </conditional-split>\n"                   /* 41 */
    "  <ab-split id=\"test\">\n"                 /* 42 */
    "    <branch weight=\"20\" name=\"a\"><update property=\"ab\" "
    "value=\"a\"/></branch>\n"      /* 43 */
    "    <branch weight=\"30\"/>\n" /* 44 */
    "    <branch weight=\"50\" name=\"c\"><goto step=\"post\"/></branch>\n"
    "  </ab-split>\n" /* 46 */
    "  <update property=\"last_order\" value=\"{{ event.OrderId }}\"/>\n"
    "  <webhook id=\"post\" url=\"https://mail.example.com/x\"/>\n" /* 48 */
    "</steps>\n"
    "</flow>\n";

enum {
	WAIT,
	MORNING,
	WHO,
	HELLO,
	BIG,
	STOP,
	TEST,
	AB_UPDATE,
	UPDATE,
	POST,
	STEP_COUNT
};

static void
test_every_step_type(void **state)
{
	struct flow *flow = load_clean(every_step);
	const struct flow_step *step;
	const struct flow_condition *condition;
	const struct flow_question *question;

	assert_string_equal(flow->id, "every-step");
	assert_string_equal(flow->name, "Every step");
	assert_string_equal(flow->description, "Tests  the model.");
	assert_string_equal(flow->file, "test.xml");
	assert_int_equal(flow->line, 2);
	assert_int_equal(flow->status, FLOW_STATUS_DRAFT);
	assert_int_equal(flow->kind, FLOW_KIND_STANDARD);
	assert_int_equal(flow->refcount, 1);
	assert_int_equal(flow->exit_metric_count, 2);
	assert_string_equal(flow->exit_metrics[0], "Refunded");
	assert_string_equal(flow->exit_metrics[1], "Cancelled");
	assert_int_equal(flow->step_count, STEP_COUNT);

	/* Trigger with filters. */
	assert_int_equal(flow->trigger.type, FLOW_TRIGGER_METRIC);
	assert_string_equal(flow->trigger.metric, "Placed Order");
	assert_int_equal(flow->trigger.line, 6);
	assert_int_equal(flow->trigger.filter_count, 2);
	condition = &flow->trigger.filters[0];
	assert_int_equal(condition->subject, FLOW_SUBJECT_EVENT_PROPERTY);
	assert_int_equal(condition->operator, FLOW_OPERATOR_GREATER_THAN);
	assert_string_equal(condition->path, "value");
	assert_true(condition->has_number);
	assert_true(condition->number == 50.0);
	assert_int_equal(condition->line, 7);
	condition = &flow->trigger.filters[1];
	assert_int_equal(condition->operator, FLOW_OPERATOR_IS_NOT_SET);
	assert_null(condition->value);

	/* Re-entry: a bare path became the template that prints it. */
	assert_int_equal(flow->reentry.mode, FLOW_REENTRY_KEY);
	assert_int_equal(flow->reentry.period_us, 7 * 24 * HOUR_US);
	assert_string_equal(flow->reentry.key_source, "{{ event.OrderId }}");
	assert_non_null(flow->reentry.key);

	step = &flow->steps[WAIT];
	assert_int_equal(step->type, FLOW_STEP_DELAY);
	assert_string_equal(step->id, "wait");
	assert_int_equal(step->line, 14);
	assert_int_equal(step->delay.duration_us, 90 * MINUTE_US);
	assert_false(step->delay.has_until);
	assert_int_equal(step->next, MORNING);

	step = &flow->steps[MORNING];
	assert_int_equal(step->delay.duration_us, 24 * HOUR_US);
	assert_true(step->delay.has_until);
	assert_int_equal(step->delay.until_hour, 9);
	assert_int_equal(step->delay.until_minute, 30);
	assert_int_equal(step->next, WHO);

	step = &flow->steps[WHO];
	assert_int_equal(step->type, FLOW_STEP_CONDITIONAL_SPLIT);
	assert_int_equal(step->next, FLOW_STEP_NONE);
	assert_true(step->split.match_any);
	assert_int_equal(step->split.yes, HELLO);
	assert_int_equal(step->split.no, BIG);
	assert_int_equal(step->split.condition_count, 7);
	condition = step->split.conditions;
	assert_int_equal(condition[0].subject, FLOW_SUBJECT_CONSENT);
	assert_int_equal(condition[0].operator, FLOW_OPERATOR_EQUALS);
	assert_string_equal(condition[0].value, "subscribed");
	assert_false(condition[0].has_number);
	assert_int_equal(condition[1].subject, FLOW_SUBJECT_ORDER_COUNT);
	assert_int_equal(condition[1].period_us, 0);
	assert_true(condition[1].has_number);
	assert_true(condition[1].number == 0.0);
	assert_int_equal(condition[2].operator, FLOW_OPERATOR_LESS_THAN);
	assert_int_equal(condition[2].period_us, 90 * 24 * HOUR_US);
	assert_int_equal(condition[3].subject, FLOW_SUBJECT_TOTAL_SPENT);
	assert_true(condition[3].number == 99.5);
	assert_int_equal(condition[4].subject, FLOW_SUBJECT_LANGUAGE);
	assert_string_equal(condition[4].value, "it");
	assert_int_equal(condition[5].subject, FLOW_SUBJECT_PROFILE_PROPERTY);
	assert_int_equal(condition[5].operator, FLOW_OPERATOR_CONTAINS);
	assert_string_equal(condition[5].path, "tier");
	assert_int_equal(condition[6].operator, FLOW_OPERATOR_IS_SET);
	assert_int_equal(condition[6].line, 23);

	step = &flow->steps[HELLO];
	assert_int_equal(step->type, FLOW_STEP_SMS);
	assert_int_equal(step->line, 25);
	assert_int_equal(step->sms.message_class, OUTBOX_CLASS_TRANSACTIONAL);
	assert_false(step->sms.quiet_hours);
	assert_false(step->sms.smart_sending);
	assert_int_equal(step->sms.text_count, 2);
	assert_string_equal(step->sms.texts[0].language, "en");
	assert_string_equal(step->sms.texts[0].source, "Hi {{ first_name }}");
	assert_non_null(step->sms.texts[0].compiled);
	assert_int_equal(step->sms.texts[1].line, 27);
	assert_int_equal(step->sms.fallback, 1);
	/* The yes branch runs out: it rejoins after the split. */
	assert_int_equal(step->next, TEST);
	question = step->sms.question;
	assert_non_null(question);
	assert_string_equal(question->conversation, "why");
	assert_int_equal(question->reply_window_us, 48 * HOUR_US);
	assert_int_equal(question->answer_count, 2);
	assert_string_equal(question->answers[0].flow_id, "price");
	assert_int_equal(question->answers[0].word_count, 2);
	assert_string_equal(question->answers[0].words[0], "1");
	assert_string_equal(question->answers[0].words[1], "Too  expensive");
	assert_int_equal(question->answers[1].line, 30);

	step = &flow->steps[BIG];
	assert_int_equal(step->type, FLOW_STEP_TRIGGER_SPLIT);
	assert_false(step->split.match_any);
	assert_int_equal(step->split.condition_count, 1);
	assert_int_equal(step->split.yes, POST); /* the goto */
	assert_int_equal(step->split.no, STOP);

	step = &flow->steps[STOP];
	assert_int_equal(step->type, FLOW_STEP_END);
	assert_string_equal(step->id, "stop");
	assert_int_equal(step->next, FLOW_STEP_NONE);

	step = &flow->steps[TEST];
	assert_int_equal(step->type, FLOW_STEP_AB_SPLIT);
	assert_int_equal(step->ab.branch_count, 3);
	assert_int_equal(step->ab.branches[0].weight, 20);
	assert_string_equal(step->ab.branches[0].name, "a");
	assert_int_equal(step->ab.branches[0].step, AB_UPDATE);
	assert_null(step->ab.branches[1].name);
	assert_int_equal(step->ab.branches[1].step, UPDATE); /* empty */
	assert_int_equal(step->ab.branches[2].step, POST);

	step = &flow->steps[AB_UPDATE];
	assert_int_equal(step->type, FLOW_STEP_UPDATE);
	assert_string_equal(step->id, "update@43");
	assert_int_equal(step->next, UPDATE);

	step = &flow->steps[UPDATE];
	assert_string_equal(step->update.property, "last_order");
	assert_string_equal(step->update.value_source, "{{ event.OrderId }}");
	assert_non_null(step->update.value);
	assert_int_equal(step->next, POST);

	step = &flow->steps[POST];
	assert_int_equal(step->type, FLOW_STEP_WEBHOOK);
	assert_string_equal(step->webhook.url, "https://mail.example.com/x");
	assert_int_equal(step->next, FLOW_STEP_NONE);

	assert_int_equal(rule_step_index(flow, "post"), POST);
	assert_int_equal(rule_step_index(flow, "nope"), FLOW_STEP_NONE);
	rule_free(flow);
}

static void
test_keyword_and_reply_triggers(void **state)
{
	struct flow *flow;

	flow = load_clean("<flow id=\"k\" name=\"K\" status=\"manual\">"
			  "<trigger><keyword word=\" JOIN \"/></trigger>"
			  "<reentry mode=\"once\"/>"
			  "<steps><end/></steps></flow>");
	assert_int_equal(flow->status, FLOW_STATUS_MANUAL);
	assert_int_equal(flow->trigger.type, FLOW_TRIGGER_KEYWORD);
	assert_string_equal(flow->trigger.keyword, "JOIN");
	assert_null(flow->trigger.metric);
	assert_int_equal(flow->reentry.mode, FLOW_REENTRY_ONCE);
	assert_int_equal(flow->step_count, 1);
	assert_string_equal(flow->steps[0].id, "end@1");
	rule_free(flow);

	flow = load_clean("<flow id=\"r\" name=\"R\" status=\"live\">"
			  "<trigger><reply conversation=\"why\"/></trigger>"
			  "<reentry mode=\"once-per-period\" period=\"12h\"/>"
			  "<steps><end/></steps></flow>");
	assert_int_equal(flow->trigger.type, FLOW_TRIGGER_REPLY);
	assert_string_equal(flow->trigger.conversation, "why");
	assert_int_equal(flow->reentry.mode, FLOW_REENTRY_PERIOD);
	assert_int_equal(flow->reentry.period_us, 12 * HOUR_US);
	rule_free(flow);

	/* Defaults: re-entry always, kind from the metric. */
	flow = load_clean("<flow id=\"a\" name=\"A\" status=\"live\">"
			  "<trigger><metric name=\"Added to Cart\"/></trigger>"
			  "<steps><end/></steps></flow>");
	assert_int_equal(flow->reentry.mode, FLOW_REENTRY_ALWAYS);
	assert_int_equal(flow->kind, FLOW_KIND_ABANDONMENT);
	assert_int_equal(flow->exit_metric_count, 0);
	rule_free(flow);

	flow = load_clean("<flow id=\"b\" name=\"B\" status=\"live\" "
			  "kind=\"abandonment\">"
			  "<trigger><metric name=\"Left Site\"/></trigger>"
			  "<steps><end/></steps></flow>");
	assert_int_equal(flow->kind, FLOW_KIND_ABANDONMENT);
	rule_free(flow);
}

/* Nested splits: each exhausted branch continues after its own split. */
static void
test_rejoin_after_nested_splits(void **state)
{
	struct flow *flow = load_clean(HEAD
	    "<conditional-split id=\"outer\">\n"
	    "  <consent operator=\"equals\" value=\"subscribed\"/>\n"
	    "  <yes>\n"
	    "    <trigger-split id=\"inner\">\n"
	    "      <event-property path=\"x\" operator=\"equals\" "
	    "value=\"1\"/>\n"
	    "      <yes><sms id=\"a\"><text lang=\"en\">A</text></sms></yes>\n"
	    "    </trigger-split>\n"
	    "    <sms id=\"b\"><text lang=\"en\">B</text></sms>\n"
	    "  </yes>\n"
	    "</conditional-split>\n"
	    "<webhook id=\"after\" url=\"http://x.example/\"/>\n" TAIL);

	/* outer 0, inner 1, a 2, b 3, after 4 */
	assert_int_equal(flow->step_count, 5);
	assert_int_equal(flow->steps[0].split.yes, 1);
	assert_int_equal(flow->steps[0].split.no, 4);
	assert_int_equal(flow->steps[1].split.yes, 2);
	assert_int_equal(flow->steps[1].split.no, 3);
	assert_int_equal(flow->steps[2].next, 3);
	assert_int_equal(flow->steps[3].next, 4);
	assert_int_equal(flow->steps[4].next, FLOW_STEP_NONE);
	rule_free(flow);
}

/* Lines break as paragraphs; template lines stay the file's lines. */
static void
test_text_layout(void **state)
{
	struct flow *flow = load_clean(HEAD "<sms>\n"
					    "  <text lang=\"en\">\n"
					    "\n"
					    "     Hello there,\n"
					    "     dear reader.\n"
					    "\n"
					    "     STOP to opt out\n"
					    "\n"
					    "\n"
					    "     Bye\n"
					    "  </text>\n"
					    "</sms>\n" TAIL);

	assert_string_equal(flow->steps[0].sms.texts[0].source,
	    "Hello there, dear reader.\nSTOP to opt out\n\nBye");
	assert_int_equal(flow->steps[0].sms.texts[0].line, 7);
	assert_string_equal(flow->steps[0].id, "sms@4");
	rule_free(flow);
}

static void
test_helpers(void **state)
{
	struct flow *flow = load_clean(every_step);
	const struct flow_sms *sms = &flow->steps[HELLO].sms;
	const struct flow_question *question = sms->question;
	const struct flow_ab *ab = &flow->steps[TEST].ab;
	uint64_t us;

	assert_string_equal(rule_sms_text(sms, "en")->language, "en");
	assert_string_equal(rule_sms_text(sms, "EN-gb")->language, "en");
	assert_string_equal(rule_sms_text(sms, "de")->language, "it");
	assert_string_equal(rule_sms_text(sms, NULL)->language, "it");

	assert_ptr_equal(
	    rule_question_answer(question, " too  EXPENSIVE\n", 16),
	    &question->answers[0]);
	assert_ptr_equal(
	    rule_question_answer(question, "2", 1), &question->answers[1]);
	assert_null(rule_question_answer(question, "too", 3));
	assert_null(rule_question_answer(question, "", 0));

	assert_ptr_equal(rule_ab_branch(ab, 0), &ab->branches[0]);
	assert_ptr_equal(rule_ab_branch(ab, 19), &ab->branches[0]);
	assert_ptr_equal(rule_ab_branch(ab, 20), &ab->branches[1]);
	assert_ptr_equal(rule_ab_branch(ab, 49), &ab->branches[1]);
	assert_ptr_equal(rule_ab_branch(ab, 50), &ab->branches[2]);
	assert_ptr_equal(rule_ab_branch(ab, 99), &ab->branches[2]);

	assert_int_equal(rule_parse_duration("45s", &us), 0);
	assert_int_equal(us, 45 * UINT64_C(1000000));
	assert_int_equal(rule_parse_duration("2w", &us), 0);
	assert_int_equal(us, 14 * 24 * HOUR_US);
	assert_int_equal(rule_parse_duration("365d", &us), 0);
	assert_int_equal(rule_parse_duration("366d", &us), -1);
	assert_int_equal(rule_parse_duration("0m", &us), -1);
	assert_int_equal(rule_parse_duration("05m", &us), -1);
	assert_int_equal(rule_parse_duration("5", &us), -1);
	assert_int_equal(rule_parse_duration("5mm", &us), -1);
	assert_int_equal(rule_parse_duration("5y", &us), -1);
	assert_int_equal(rule_parse_duration("1234567s", &us), -1);

	assert_string_equal(
	    rule_step_type_name(FLOW_STEP_AB_SPLIT), "ab-split");
	assert_string_equal(
	    rule_step_type_name(FLOW_STEP_TYPE_COUNT), "unknown");

	/* A journey's reference keeps the flow after the loader drops it. */
	assert_ptr_equal(rule_hold(flow), flow);
	assert_int_equal(flow->refcount, 2);
	rule_free(flow);
	assert_int_equal(flow->refcount, 1);
	assert_string_equal(flow->steps[POST].id, "post");
	rule_free(flow);
}

static void
test_hash_follows_content(void **state)
{
	static const char text[] = "<flow id=\"h\" name=\"H\" status=\"live\">"
				   "<trigger><keyword word=\"A\"/></trigger>"
				   "<steps><end/></steps></flow>";
	struct flow *first = load_clean(text), *second = load_clean(text);
	struct flow *third =
	    load_clean("<flow id=\"h\" name=\"H\" "
		       "status=\"draft\">"
		       "<trigger><keyword word=\"A\"/></trigger>"
		       "<steps><end/></steps></flow>");

	assert_true(first->hash == second->hash);
	assert_true(first->hash != third->hash);
	/* FNV-1a 64 of the bytes, which the runtime recomputes. */
	assert_true(first->hash != 0xcbf29ce484222325ULL);
	rule_free(first);
	rule_free(second);
	rule_free(third);
}

/* ---- errors ------------------------------------------------------------- */

static void
test_schema_errors_with_lines(void **state)
{
	struct flow *flow = load(
	    "<flow id=\"s\" name=\"S\" status=\"paused\">\n" /* 1 */
	    "<trigger><metric name=\"X\"/></trigger>\n"      /* 2 */
	    "<steps>\n"                                      /* 3 */
	    "<delay id=\"a\" duration=\"2x\"/>\n"            /* 4 */
	    "<sms id=\"b\" class=\"promo\"><text lang=\"en\">Hi</text></sms>\n"
	    "<ab-split id=\"c\"><branch weight=\"0\"/><branch "
	    "weight=\"100\"/></ab-split>\n"         /* 6 */
	    "<webhook id=\"d\" url=\"ftp://x\"/>\n" /* 7 */
	    "</steps>\n"
	    "</flow>\n");

	assert_null(flow);
	assert_message(RULE_ERROR, 1, "status=\"paused\"");
	assert_message(RULE_ERROR, 4, "duration");
	assert_message(RULE_ERROR, 5, "class");
	assert_message(RULE_ERROR, 6, "weight");
	assert_message(RULE_ERROR, 7, "url");
	assert_message(RULE_ERROR, 1, "schema: ");
	assert_int_equal(report.error_count, 5);
	assert_string_equal(report.messages[0].file, "test.xml");
}

static void
test_schema_structure_errors(void **state)
{
	/* No trigger, and a step after <end>. */
	assert_null(load("<flow id=\"s\" name=\"S\" status=\"live\">\n"
			 "<steps>\n"
			 "<end/>\n"
			 "<delay duration=\"1h\"/>\n"
			 "</steps>\n"
			 "</flow>\n"));
	assert_true(report.error_count >= 1);
	assert_true(strstr(report.messages[0].text, "schema: ") != NULL);
	assert_true(report.messages[0].line >= 1);
	rule_report_free(&report);

	/* A lone goto has nowhere to go. */
	assert_null(load("<flow id=\"g\" name=\"G\" status=\"live\">\n"
			 "<trigger><keyword word=\"A\"/></trigger>\n"
			 "<steps><goto step=\"g\"/></steps>\n"
			 "</flow>\n"));
	assert_message(RULE_ERROR, 3, "goto");
	rule_report_free(&report);

	/* A question outside an SMS, an unknown element. */
	assert_null(load(HEAD "<question/>\n<bogus/>\n" TAIL));
	assert_message(RULE_ERROR, 4, "question");
}

/* Schema errors come first; the semantic pass still reports the rest. */
static void
test_schema_then_semantic(void **state)
{
	assert_null(load(
	    HEAD "<delay id=\"a\" duration=\"1h\" colour=\"red\"/>\n" /* 4 */
		 "<delay id=\"a\" duration=\"400d\"/>\n"              /* 5 */
	    TAIL));
	assert_message(RULE_ERROR, 4, "schema: ");
	assert_message(RULE_ERROR, 5, "already used at line 4");
	assert_message(RULE_ERROR, 5, "longer than a year");
	assert_int_equal(report.error_count, 3);
	assert_true(strncmp(report.messages[0].text, "schema: ", 8) == 0);
	assert_int_equal(report.messages[0].line, 4);
}

static void
test_semantic_errors(void **state)
{
	struct flow *flow = load(
	    "<flow id=\"e\" name=\" \" status=\"live\">\n"       /* 1 */
	    "<trigger><metric name=\"  \"/></trigger>\n"         /* 2 */
	    "<exit><metric name=\"\"/></exit>\n"                 /* 3 */
	    "<steps>\n"                                          /* 4 */
	    "<delay id=\"x\" duration=\"53w\"/>\n"               /* 5 */
	    "<ab-split id=\"ab\">\n"                             /* 6 */
	    "  <branch weight=\"50\"/><branch weight=\"40\"/>\n" /* 7 */
	    "</ab-split>\n"                                      /* 8 */
	    "<ab-split id=\"one\"><branch weight=\"100\"/></ab-split>\n"
	    "<sms id=\"x\" fallback=\"de\">\n"                      /* 10 */
	    "  <text lang=\"en\">Hi</text>\n"                       /* 11 */
	    "  <text lang=\"en\">Hey</text>\n"                      /* 12 */
	    "  <text lang=\"it\">\n"                                /* 13 */
	    "    Ciao,\n"                                           /* 14 */
	    "    {{ first_name|nope }}\n"                           /* 15 */
	    "  </text>\n"                                           /* 16 */
	    "  <question conversation=\"q\" reply-window=\"1d\">\n" /* 17 */
	    "    <answer flow=\"f\"><word>1</word><word>yes</word></answer>\n"
	    "    <answer flow=\"g\"><word>YES</word><word> </word></answer>\n"
	    "  </question>\n"       /* 20 */
	    "</sms>\n"              /* 21 */
	    "<conditional-split>\n" /* 22 */
	    "  <property path=\"age\" operator=\"greater-than\" "
	    "value=\"old\"/>\n"                            /* 23 */
	    "</conditional-split>\n"                       /* 24 */
	    "<update property=\"p\" value=\"{{ oops\"/>\n" /* 25 */
	    "<goto step=\"nowhere\"/>\n"                   /* 26 */
	    "</steps>\n"
	    "</flow>\n");

	assert_null(flow);
	assert_message(RULE_ERROR, 1, "flow name is empty");
	assert_message(RULE_ERROR, 2, "trigger metric name is empty");
	assert_message(RULE_ERROR, 3, "exit metric name is empty");
	assert_message(RULE_ERROR, 5, "longer than a year");
	assert_message(RULE_ERROR, 6, "weights sum to 90, not 100");
	assert_message(RULE_ERROR, 9, "one branch");
	assert_message(RULE_ERROR, 10, "already used at line 5");
	assert_message(RULE_ERROR, 12, "two texts for language");
	assert_message(RULE_ERROR, 15, "template: ");
	assert_message(RULE_ERROR, 10, "fallback \"de\"");
	assert_message(RULE_ERROR, 19, "\"YES\" is used twice");
	assert_message(RULE_ERROR, 19, "answer word is empty");
	assert_message(RULE_ERROR, 23, "\"old\" is not a number");
	assert_message(RULE_ERROR, 25,
	    "update \"update@25\": "
	    "template: ");
	assert_message(RULE_ERROR, 26, "no step has id \"nowhere\"");
	assert_int_equal(report.error_count, 15);
}

/*
 * Weights in every form the schema's xsd:integer takes ("+021", "079")
 * read as the schema reads them; the fuzzer found "01" passed the schema
 * but not the loader, which then loaded a split whose weights summed to 80.
 */
static void
test_weights_read_as_the_schema_reads_them(void **state)
{
	struct flow *flow;

	flow = load_clean(HEAD "<ab-split id=\"ab\"><branch weight=\"+021\"/>"
			       "<branch weight=\" 079 \"/></ab-split>\n" TAIL);
	assert_non_null(flow);
	assert_int_equal(flow->steps[0].ab.branches[0].weight, 21);
	assert_int_equal(flow->steps[0].ab.branches[1].weight, 79);
	rule_free(flow);

	rule_report_free(&report);
	rule_report_init(&report);
	assert_null(
	    load(HEAD "<ab-split id=\"ab\"><branch weight=\"01\"/>" /* 4 */
		      "<branch weight=\"80\"/></ab-split>\n" TAIL));
	assert_message(RULE_ERROR, 4, "weights sum to 81, not 100");
	assert_int_equal(report.error_count, 1);
}

static void
test_goto_must_go_forward(void **state)
{
	assert_null(load(
	    HEAD "<delay id=\"top\" duration=\"1h\"/>\n"                /* 4 */
		 "<conditional-split id=\"s\">\n"                       /* 5 */
		 "  <consent operator=\"equals\" value=\"pending\"/>\n" /* 6 */
		 "  <yes><goto step=\"top\"/></yes>\n"                  /* 7 */
		 "  <no><goto step=\"s\"/></no>\n"                      /* 8 */
		 "</conditional-split>\n" TAIL));
	assert_message(RULE_ERROR, 7, "jumps back to line 4");
	assert_message(RULE_ERROR, 8, "jumps back to line 5");
	assert_int_equal(report.error_count, 2);
}

static void
test_keyword_reserved(void **state)
{
	assert_null(load("<flow id=\"k\" name=\"K\" status=\"live\">\n"
			 "<trigger><keyword word=\"stop\"/></trigger>\n"
			 "<steps><end/></steps></flow>\n"));
	assert_message(RULE_ERROR, 2, "reserved");
}

/* A template error names the template's own line in the file. */
static void
test_template_error_line(void **state)
{
	assert_null(load(HEAD "<sms id=\"m\">\n"             /* 4 */
			      "  <text lang=\"en\">\n"       /* 5 */
			      "    First line,\n"            /* 6 */
			      "    second line,\n"           /* 7 */
			      "    {{ first_name|titel }}\n" /* 8 */
			      "  </text>\n"                  /* 9 */
			      "</sms>\n" TAIL));
	assert_message(RULE_ERROR, 8, "SMS \"m\" (en): template: ");
	assert_message(RULE_ERROR, 8, "titel");
}

static void
test_too_many_steps(void **state)
{
	char *text;
	size_t i, used;

	text = malloc(64 * 1024);
	assert_non_null(text);
	used = (size_t)sprintf(text, HEAD);
	for (i = 0; i <= FLOW_MAX_STEPS; i++)
		used +=
		    (size_t)sprintf(text + used, "<delay duration=\"1m\"/>\n");
	sprintf(text + used, TAIL);
	assert_null(load(text));
	assert_message(RULE_ERROR, 4 + FLOW_MAX_STEPS, "more than");
	free(text);
}

/* ---- hostile input ------------------------------------------------------ */

static void
test_doctype_refused(void **state)
{
	static const char xxe[] =
	    "<?xml version=\"1.0\"?>\n"
	    "<!DOCTYPE flow [ <!ENTITY x SYSTEM \"file:///etc/passwd\"> ]>\n"
	    "<flow id=\"x\" name=\"&x;\" status=\"live\"><trigger><keyword "
	    "word=\"A\"/></trigger><steps><end/></steps></flow>\n";
	static const char laughs[] =
	    "<?xml version=\"1.0\"?>\n"
	    "\n"
	    "<!DOCTYPE flow [\n"
	    " <!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">\n"
	    " <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
	    " <!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n"
	    " <!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">\n"
	    "]>\n"
	    "<flow id=\"x\" name=\"&d;\" status=\"live\"><trigger><keyword "
	    "word=\"A\"/></trigger><steps><end/></steps></flow>\n";
	static const char external[] =
	    "<!DOCTYPE flow SYSTEM \"http://127.0.0.1:9/flow.dtd\">\n"
	    "<flow id=\"x\" name=\"X\" status=\"live\"><trigger><keyword "
	    "word=\"A\"/></trigger><steps><end/></steps></flow>\n";

	assert_null(load(xxe));
	assert_message(RULE_ERROR, 2, "DOCTYPE is not allowed");
	assert_int_equal(report.error_count, 1);
	rule_report_free(&report);

	assert_null(load(laughs));
	assert_message(RULE_ERROR, 3, "DOCTYPE is not allowed");
	assert_int_equal(report.error_count, 1);
	rule_report_free(&report);

	assert_null(load(external));
	assert_message(RULE_ERROR, 1, "DOCTYPE is not allowed");
	assert_int_equal(report.error_count, 1);
	rule_report_free(&report);

	/* Without a DOCTYPE no entity but the five XML ones exists. */
	assert_null(load("<flow id=\"x\" name=\"&x;\" status=\"live\"/>"));
	assert_message(RULE_ERROR, 1, "not well-formed XML");
	rule_report_free(&report);

	assert_null(load(""));
	assert_message(RULE_ERROR, 1, "not well-formed XML");
	rule_report_free(&report);

	assert_null(load("<flow id=\"x\">\n<trigger>\n</flow>\n"));
	assert_message(RULE_ERROR, 3, "tag mismatch");
}

static void
test_size_cap(void **state)
{
	char path[] = "/tmp/nudge-test-rule-XXXXXX";
	size_t length = RULE_MAX_FILE_SIZE + 1;
	char *text = malloc(length);
	FILE *file;
	int fd;

	assert_non_null(text);
	memset(text, ' ', length);
	memcpy(text, "<flow", 5);
	assert_null(rule_load_memory("big.xml", text, length, &report));
	assert_message(RULE_ERROR, 0, "limited to 256 KiB");
	rule_report_free(&report);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	file = fdopen(fd, "w");
	assert_non_null(file);
	assert_int_equal(fwrite(text, 1, length, file), length);
	fclose(file);
	assert_null(rule_load_file(path, &report));
	assert_int_equal(report.error_count, 1);
	assert_string_equal(report.messages[0].file, path);
	assert_true(strstr(report.messages[0].text, "limited to 256 KiB"));
	rule_report_free(&report);
	unlink(path);
	free(text);

	assert_null(rule_load_file("/nonexistent/rule.xml", &report));
	assert_int_equal(report.error_count, 1);
	rule_report_free(&report);
	assert_null(rule_load_file("/tmp", &report));
	assert_message(RULE_ERROR, 0, "not a regular file");
}

/* ---- lint --------------------------------------------------------------- */

static void
lint_text(const char *text)
{
	struct flow *flow = load_clean(text);

	rule_lint(flow, &report);
	rule_free(flow);
}

static void
test_lint_abandonment(void **state)
{
	lint_text("<flow id=\"test\" name=\"T\" status=\"live\">\n"
		  "<trigger><metric name=\"Viewed Product\"/></trigger>\n"
		  "<steps>\n"
		  "<delay duration=\"1d\"/>\n"                         /* 4 */
		  "<sms id=\"one\"><text lang=\"en\">A</text></sms>\n" /* 5 */
		  "<delay duration=\"1d\" until=\"10:00\"/>\n"         /* 6 */
		  "<sms id=\"two\" class=\"transactional\">"
		  "<text lang=\"en\">B</text></sms>\n" /* 7 */
	    TAIL);
	assert_false(has_message(RULE_WARNING, 5, "may come"));
	assert_false(has_message(RULE_WARNING, 5, "SMS number"));
	assert_message(RULE_WARNING, 7,
	    "may come 3d after the "
	    "trigger");
	assert_message(RULE_WARNING, 7, "within 48h");
	assert_message(RULE_WARNING, 7, "SMS number 2");
	assert_message(RULE_WARNING, 7, "marked transactional");
	assert_int_equal(report.warning_count, 3);
	assert_int_equal(report.error_count, 0);
}

/* Two SMS on different branches are not two SMS on one path. */
static void
test_lint_abandonment_branches(void **state)
{
	lint_text("<flow id=\"test\" name=\"T\" status=\"live\" "
		  "kind=\"abandonment\">\n"
		  "<trigger><keyword word=\"CART\"/></trigger>\n"
		  "<steps>\n"
		  "<delay duration=\"47h\"/>\n"
		  "<ab-split>\n"
		  "<branch weight=\"50\"><sms><text lang=\"en\">A</text></sms>"
		  "</branch>\n"
		  "<branch weight=\"50\"><sms><text lang=\"en\">B</text></sms>"
		  "</branch>\n"
		  "</ab-split>\n"
		  "<delay duration=\"2h\"/>\n"
		  "<webhook url=\"https://x.example/\"/>\n" TAIL);
	assert_int_equal(report.warning_count, 0);
}

static void
test_lint_parts(void **state)
{
	char text[4096];
	struct rule_lint_options options = {
	    3, RULE_LINT_ABANDONMENT_WINDOW_US, NULL};
	struct flow *flow;
	int used;

	used = snprintf(
	    text, sizeof(text), HEAD "<sms id=\"long\"><text lang=\"en\">");
	/* 320 GSM characters: 3 parts of 153. */
	for (int i = 0; i < 32; i++)
		used += snprintf(
		    text + used, sizeof(text) - (size_t)used, "0123456789");
	used += snprintf(text + used, sizeof(text) - (size_t)used,
	    "</text><text lang=\"ru\">{{ first_name }} Привет</text>"
	    "</sms>\n" TAIL);
	flow = load_clean(text);
	rule_lint(flow, &report);
	assert_message(RULE_WARNING, 4,
	    "SMS \"long\" (en): 320 "
	    "characters in GSM-7 need 3 "
	    "SMS parts");
	assert_int_equal(report.warning_count, 1);
	rule_report_free(&report);

	/* A higher limit silences it. */
	rule_lint_with(flow, &options, &report);
	assert_int_equal(report.warning_count, 0);
	rule_free(flow);
}

static void
test_lint_dead_splits_and_unreachable(void **state)
{
	lint_text(
	    HEAD "<conditional-split id=\"dead\">\n"                    /* 4 */
		 "  <language operator=\"is-set\"/>\n"                  /* 5 */
		 "  <yes><delay duration=\"1h\"/><end/></yes>\n"        /* 6 */
		 "  <no><end/></no>\n"                                  /* 7 */
		 "</conditional-split>\n"                               /* 8 */
		 "<sms id=\"never\"><text lang=\"en\">A</text></sms>\n" /* 9 */
	    TAIL);
	assert_message(RULE_WARNING, 4,
	    "split \"dead\": no branch "
	    "leads");
	assert_message(RULE_WARNING, 9,
	    "sms \"never\" can never be "
	    "reached");
	assert_int_equal(report.warning_count, 2);
	rule_report_free(&report);

	lint_text(
	    HEAD "<ab-split id=\"same\">\n"                           /* 4 */
		 "  <branch weight=\"60\"/><branch weight=\"40\"/>\n" /* 5 */
		 "</ab-split>\n"                                      /* 6 */
		 "<sms><text lang=\"en\">A</text></sms>\n" TAIL);
	assert_message(RULE_WARNING, 4,
	    "every branch continues at "
	    "the same step");
	assert_int_equal(report.warning_count, 1);
}

static void
test_lint_quiet_hours_and_file_name(void **state)
{
	static const char text[] =
	    HEAD "<delay duration=\"1d\"/>\n"
		 "<sms quiet-hours=\"off\"><text lang=\"en\">A</text></sms>\n"
		 "<sms quiet-hours=\"off\" class=\"transactional\">"
		 "<text lang=\"en\">B</text></sms>\n" TAIL;
	struct flow *flow =
	    rule_load_memory("rules/other.xml", text, strlen(text), &report);

	assert_non_null(flow);
	rule_lint(flow, &report);
	assert_message(RULE_WARNING, 1, "differs from the file name");
	assert_message(RULE_WARNING, 5, "turns quiet hours off");
	assert_int_equal(report.warning_count, 2);
	rule_free(flow);
}

/* ---- sets and the shipped files ----------------------------------------- */

static void
test_check_set(void **state)
{
	struct flow *flows[4];

	flows[0] =
	    load_clean("<flow id=\"ask\" name=\"A\" status=\"live\">"
		       "<trigger><keyword word=\"ASK\"/></trigger>"
		       "<steps><sms><text lang=\"en\">Why?</text>"
		       "<question conversation=\"why\" reply-window=\"1h\">"
		       "<answer flow=\"price\"><word>1</word></answer>"
		       "<answer flow=\"gone\"><word>2</word></answer>"
		       "<answer flow=\"other\"><word>3</word></answer>"
		       "</question></sms></steps></flow>");
	flows[1] = load_clean("<flow id=\"price\" name=\"P\" status=\"live\">"
			      "<trigger><reply conversation=\"why\"/></trigger>"
			      "<steps><end/></steps></flow>");
	flows[2] = load_clean("<flow id=\"other\" name=\"O\" status=\"live\">\n"
			      "<trigger><keyword word=\"ask\"/></trigger>"
			      "<steps><end/></steps></flow>");
	flows[3] = load_clean("<flow id=\"price\" name=\"Q\" status=\"live\">\n"
			      "<trigger><reply conversation=\"who\"/></trigger>"
			      "<steps><end/></steps></flow>");
	rule_check_set(flows, 4, &report);
	assert_message(RULE_ERROR, 1,
	    "flow id \"price\" is also "
	    "used");
	assert_message(RULE_ERROR, 2, "keyword \"ask\" also starts");
	assert_message(RULE_WARNING, 1,
	    "answer starts flow \"gone\", "
	    "which is not among");
	assert_message(RULE_WARNING, 1,
	    "answer starts flow "
	    "\"other\", whose trigger");
	assert_message(RULE_WARNING, 2, "conversation \"who\"");
	assert_int_equal(report.error_count, 2);
	assert_int_equal(report.warning_count, 3);
	for (int i = 0; i < 4; i++)
		rule_free(flows[i]);
}

/* Every shipped flow loads; the only warnings are the cart's, on
 * purpose (its comment explains them). */
static void
test_shipped_rules(void **state)
{
	static const char *const paths[] = {"rules"};
	struct rule_lint_options options = {
	    RULE_LINT_MAX_PARTS, RULE_LINT_ABANDONMENT_WINDOW_US, NULL};
	char **files;
	size_t count, i, checked;

	assert_int_equal(rule_folder_files("rules", &files, &count), 0);
	assert_true(count >= 10);
	for (i = 0; i < count; i++)
		assert_true(strstr(files[i], ".xml") != NULL);
	checked = rule_check_paths(paths, 1, &options, &report);
	assert_int_equal(checked, count);
	if (report.error_count != 0)
		show_report();
	assert_int_equal(report.error_count, 0);
	assert_int_equal(report.warning_count, 6);
	for (i = 0; i < report.count; i++)
		assert_string_equal(
		    report.messages[i].file, "rules/abandoned-cart.xml");
	rule_paths_free(files, count);
}

/* The built-in schema is the shipped file (a stale build fails here). */
static void
test_schema_is_shipped_file(void **state)
{
	FILE *file = fopen("rules/flow.rng", "rb");
	char *disk = malloc(RULE_MAX_FILE_SIZE);
	size_t length, built_length;
	const char *built = rule_schema(&built_length);

	assert_non_null(file);
	assert_non_null(disk);
	length = fread(disk, 1, RULE_MAX_FILE_SIZE, file);
	fclose(file);
	assert_int_equal(built_length, length);
	assert_memory_equal(built, disk, length);
	assert_int_equal(built[built_length], '\0');
	free(disk);
}

static void
test_report_format(void **state)
{
	char buffer[512];
	FILE *out = fmemopen(buffer, sizeof(buffer), "w");

	assert_non_null(out);
	rule_report_add(&report, RULE_ERROR, "a.xml", 3, "bad %s", "thing");
	rule_report_add(&report, RULE_WARNING, "b.xml", 7, "look");
	rule_report_print(&report, out);
	fclose(out);
	assert_string_equal(buffer, "a.xml:3: bad thing\n"
				    "b.xml:7: warning: look\n");
	assert_int_equal(report.error_count, 1);
	assert_int_equal(report.warning_count, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_every_step_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_keyword_and_reply_triggers, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_rejoin_after_nested_splits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_text_layout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_helpers, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_hash_follows_content, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_schema_errors_with_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_schema_structure_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_schema_then_semantic, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_semantic_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_goto_must_go_forward, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_keyword_reserved, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_template_error_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_too_many_steps, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_doctype_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_weights_read_as_the_schema_reads_them, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_lint_abandonment, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_lint_abandonment_branches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lint_parts, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_lint_dead_splits_and_unreachable, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_lint_quiet_hours_and_file_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_shipped_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_schema_is_shipped_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_report_format, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, cleanup_group);
}
