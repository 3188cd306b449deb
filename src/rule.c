/*
 * rule.c - flow rule files: reads one XML file (refusing DOCTYPEs, network
 * access and oversized files), validates it against the built-in RelaxNG
 * schema (rules/flow.rng), then checks its meaning and compiles it into the
 * flow model of nudged.h: steps in document order, every branch, rejoin,
 * goto and end resolved into step indexes, templates compiled.
 *
 * Every problem becomes one "file:line: reason" message in a rule_report:
 * schema errors first, then the semantic ones. A file with any error
 * yields no flow. Lint warnings live in rule_lint.c.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "nudged.h"

#define nitems(array) (sizeof(array) / sizeof((array)[0]))

#define MEMORY_BLOCK_SIZE   16384
#define MEMORY_ALIGNMENT    16
#define MESSAGE_SIZE        512
#define TEMPLATE_ERROR_SIZE 256
#define ATTRIBUTE_SHOWN     40 /* characters of a value quoted in a message */
#define FNV_OFFSET_BASIS    UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME           UINT64_C(0x100000001b3)

/*
 * The schema, built in from rules/flow.rng: nudged and nudgectl validate
 * with the copy they were built with, wherever they run from. The path is
 * from the top of the tree, where make runs the compiler; the trailing NUL
 * lets it be handed around as a string.
 */
__asm__(".pushsection .rodata\n"
	"rule_schema_start:\n"
	".incbin \"rules/flow.rng\"\n"
	"rule_schema_end:\n"
	".byte 0\n"
	".popsection\n");
extern const char rule_schema_start[] __attribute__((visibility("hidden")));
extern const char rule_schema_end[] __attribute__((visibility("hidden")));

/* Compiled once, on first use; rule_cleanup() releases it. */
static xmlRelaxNGPtr compiled_schema;

/* Every string and array of one flow, freed at once by rule_free(). */
struct rule_memory {
	struct rule_memory *next;
	size_t used;
	size_t size;
	_Alignas(MEMORY_ALIGNMENT) unsigned char data[];
};

/* The state of one load. */
struct loader {
	const char *name; /* the file, for messages */
	struct rule_report *report;
	struct flow *flow;
	size_t errors_at_start;
	int schema_valid;
	size_t schema_errors;         /* reported with a line */
	char unlocated[MESSAGE_SIZE]; /* the first one without */
	int doctype_seen;
	int doctype_line;
	xmlNodePtr step_nodes[FLOW_MAX_STEPS];
	size_t step_count;
	int too_many_steps;
};

/* A step element: its type and how its own attributes are read. */
struct step_kind {
	const char *element;
	enum flow_step_type type;
	void (*parse)(struct loader *, xmlNodePtr, struct flow_step *);
};

/* A condition element: what it looks at. */
struct condition_kind {
	const char *element;
	enum flow_subject subject;
	int has_path;
};

static void parse_delay(struct loader *, xmlNodePtr, struct flow_step *);
static void parse_split(struct loader *, xmlNodePtr, struct flow_step *);
static void parse_ab(struct loader *, xmlNodePtr, struct flow_step *);
static void parse_sms(struct loader *, xmlNodePtr, struct flow_step *);
static void parse_update(struct loader *, xmlNodePtr, struct flow_step *);
static void parse_webhook(struct loader *, xmlNodePtr, struct flow_step *);
static void parse_end(struct loader *, xmlNodePtr, struct flow_step *);

static const struct step_kind step_kinds[] = {
    {"delay", FLOW_STEP_DELAY, parse_delay},
    {"conditional-split", FLOW_STEP_CONDITIONAL_SPLIT, parse_split},
    {"trigger-split", FLOW_STEP_TRIGGER_SPLIT, parse_split},
    {"ab-split", FLOW_STEP_AB_SPLIT, parse_ab},
    {"sms", FLOW_STEP_SMS, parse_sms},
    {"update", FLOW_STEP_UPDATE, parse_update},
    {"webhook", FLOW_STEP_WEBHOOK, parse_webhook},
    {"end", FLOW_STEP_END, parse_end},
};

static const struct condition_kind condition_kinds[] = {
    {"property", FLOW_SUBJECT_PROFILE_PROPERTY, 1},
    {"event-property", FLOW_SUBJECT_EVENT_PROPERTY, 1},
    {"consent", FLOW_SUBJECT_CONSENT, 0},
    {"order-count", FLOW_SUBJECT_ORDER_COUNT, 0},
    {"total-spent", FLOW_SUBJECT_TOTAL_SPENT, 0},
    {"language", FLOW_SUBJECT_LANGUAGE, 0},
};

static const char *const operator_names[] = {
    [FLOW_OPERATOR_EQUALS] = "equals",
    [FLOW_OPERATOR_NOT_EQUALS] = "not-equals",
    [FLOW_OPERATOR_CONTAINS] = "contains",
    [FLOW_OPERATOR_GREATER_THAN] = "greater-than",
    [FLOW_OPERATOR_LESS_THAN] = "less-than",
    [FLOW_OPERATOR_IS_SET] = "is-set",
    [FLOW_OPERATOR_IS_NOT_SET] = "is-not-set",
};

static const char *const status_names[] = {
    [FLOW_STATUS_LIVE] = "live",
    [FLOW_STATUS_DRAFT] = "draft",
    [FLOW_STATUS_MANUAL] = "manual",
};

static const char *const reentry_names[] = {
    [FLOW_REENTRY_ALWAYS] = "always",
    [FLOW_REENTRY_ONCE] = "once",
    [FLOW_REENTRY_PERIOD] = "once-per-period",
    [FLOW_REENTRY_KEY] = "once-per-key",
};

/* Metrics whose flows are abandonment flows whatever their kind says. */
static const char *const abandonment_metrics[] = {
    "Viewed Product",
    "Added to Cart",
    "Started Checkout",
};

/* Inbound words the opt-out and help handling owns (policy 2). */
static const char *const reserved_keywords[] = {
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPT OUT",
    "START",
    "UNSTOP",
    "YES",
    "HELP",
    "INFO",
};

/* Duration units: the suffix letter and its length in microseconds. */
static const struct {
	char unit;
	uint64_t microseconds;
} duration_units[] = {
    {'s', UINT64_C(1000000)},
    {'m', UINT64_C(60000000)},
    {'h', UINT64_C(3600000000)},
    {'d', UINT64_C(86400000000)},
    {'w', UINT64_C(604800000000)},
};

static const char *const step_type_names[FLOW_STEP_TYPE_COUNT] = {
    [FLOW_STEP_DELAY] = "delay",
    [FLOW_STEP_CONDITIONAL_SPLIT] = "conditional-split",
    [FLOW_STEP_TRIGGER_SPLIT] = "trigger-split",
    [FLOW_STEP_AB_SPLIT] = "ab-split",
    [FLOW_STEP_SMS] = "sms",
    [FLOW_STEP_UPDATE] = "update",
    [FLOW_STEP_WEBHOOK] = "webhook",
    [FLOW_STEP_END] = "end",
};

/* ---- reports ------------------------------------------------------------ */

void
rule_report_init(struct rule_report *report)
{
	memset(report, 0, sizeof(*report));
}

void
rule_report_free(struct rule_report *report)
{
	size_t i;

	for (i = 0; i < report->count; i++) {
		free(report->messages[i].file);
		free(report->messages[i].text);
	}
	free(report->messages);
	rule_report_init(report);
}

/* Adds one message; past the cap it is only counted. */
static void
report_add_text(struct rule_report *report, enum rule_severity severity,
    const char *file, int line, const char *text)
{
	struct rule_message *message, *grown;
	size_t capacity;

	if (severity == RULE_ERROR)
		report->error_count++;
	else
		report->warning_count++;
	if (report->count >= RULE_REPORT_MAX_MESSAGES) {
		report->dropped++;
		return;
	}
	if (report->count == report->capacity) {
		capacity = report->capacity == 0 ? 16 : report->capacity * 2;
		grown =
		    reallocarray(report->messages, capacity, sizeof(*grown));
		if (grown == NULL) {
			report->dropped++;
			return;
		}
		report->messages = grown;
		report->capacity = capacity;
	}
	message = &report->messages[report->count];
	message->severity = severity;
	message->line = line;
	message->file = strdup(file != NULL ? file : "-");
	message->text = strdup(text);
	if (message->file == NULL || message->text == NULL) {
		free(message->file);
		free(message->text);
		report->dropped++;
		return;
	}
	report->count++;
}

void
rule_report_add(struct rule_report *report, enum rule_severity severity,
    const char *file, int line, const char *fmt, ...)
{
	char text[MESSAGE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	report_add_text(report, severity, file, line, text);
}

void
rule_report_print(const struct rule_report *report, FILE *out)
{
	const struct rule_message *message;
	size_t i;

	for (i = 0; i < report->count; i++) {
		message = &report->messages[i];
		fprintf(out, "%s:%d: %s%s\n", message->file, message->line,
		    message->severity == RULE_WARNING ? "warning: " : "",
		    message->text);
	}
	if (report->dropped > 0)
		fprintf(
		    out, "(%zu more messages not shown)\n", report->dropped);
}

static void loader_error(struct loader *, int, const char *, ...)
    PRINTF_LIKE(3, 4);

/* A semantic error at line of the file being loaded. */
static void
loader_error(struct loader *loader, int line, const char *fmt, ...)
{
	char text[MESSAGE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	report_add_text(loader->report, RULE_ERROR, loader->name, line, text);
}

static int
loader_failed(const struct loader *loader)
{
	return loader->report->error_count > loader->errors_at_start;
}

/* ---- memory ------------------------------------------------------------- */

/* Zeroed memory owned by the flow; NULL only when malloc fails. */
static void *
memory_allocate(struct rule_memory **memory, size_t size)
{
	struct rule_memory *block = *memory;
	size_t rounded, block_size;
	void *pointer;

	rounded =
	    (size + MEMORY_ALIGNMENT - 1) & ~(size_t)(MEMORY_ALIGNMENT - 1);
	if (rounded < size)
		return NULL;
	if (block == NULL || block->size - block->used < rounded) {
		block_size =
		    rounded > MEMORY_BLOCK_SIZE ? rounded : MEMORY_BLOCK_SIZE;
		if ((block = calloc(1, sizeof(*block) + block_size)) == NULL)
			return NULL;
		block->size = block_size;
		block->next = *memory;
		*memory = block;
	}
	pointer = block->data + block->used;
	block->used += rounded;
	return pointer;
}

static void
memory_free(struct rule_memory *memory)
{
	struct rule_memory *next;

	for (; memory != NULL; memory = next) {
		next = memory->next;
		free(memory);
	}
}

/* Allocation that cannot fail quietly: out of memory is an error. */
static void *
loader_allocate(struct loader *loader, size_t count, size_t size)
{
	void *pointer = NULL;

	if (size == 0 || count <= SIZE_MAX / size)
		pointer = memory_allocate(&loader->flow->memory, count * size);
	if (pointer == NULL && count > 0)
		loader_error(loader, 0, "out of memory");
	return pointer;
}

static char *
loader_strndup(struct loader *loader, const char *text, size_t length)
{
	char *copy;

	if ((copy = loader_allocate(loader, length + 1, 1)) == NULL)
		return NULL;
	memcpy(copy, text, length);
	copy[length] = '\0';
	return copy;
}

/* ---- small parsers ------------------------------------------------------ */

/* The form the schema allows: 1-6 digits, no leading zero, a unit. */
static int
parse_duration_form(const char *text, uint64_t *duration_us)
{
	uint64_t number = 0;
	size_t i, digits = 0;

	if (text == NULL || text[0] == '0')
		return -1;
	while (isdigit((unsigned char)text[digits])) {
		if (digits == 6)
			return -1;
		number = number * 10 + (uint64_t)(text[digits] - '0');
		digits++;
	}
	if (digits == 0 || text[digits] == '\0' || text[digits + 1] != '\0')
		return -1;
	for (i = 0; i < nitems(duration_units); i++) {
		if (duration_units[i].unit != text[digits])
			continue;
		/* Six digits of weeks cannot overflow 64 bits. */
		*duration_us = number * duration_units[i].microseconds;
		return 0;
	}
	return -1;
}

int
rule_parse_duration(const char *text, uint64_t *duration_us)
{
	uint64_t parsed;

	if (parse_duration_form(text, &parsed) == -1 ||
	    parsed > FLOW_MAX_DELAY_US)
		return -1;
	*duration_us = parsed;
	return 0;
}

/*
 * An A/B weight as the schema's xsd:integer 1..100 reads it: an optional
 * "+", leading zeros allowed ("01" is 1). Any other form is -1, so the
 * loader and the schema can never disagree on a weight.
 */
static int
parse_weight(const char *text, unsigned int *weight)
{
	unsigned int value = 0;
	size_t i = 0;

	if (text == NULL)
		return -1;
	if (text[0] == '+')
		i++;
	if (text[i] == '\0')
		return -1;
	for (; text[i] != '\0'; i++) {
		if (!isdigit((unsigned char)text[i]))
			return -1;
		value = value * 10 + (unsigned int)(text[i] - '0');
		if (value > 100)
			return -1;
	}
	if (value == 0)
		return -1;
	*weight = value;
	return 0;
}

/* "HH:MM", 24-hour clock. */
static int
parse_time_of_day(const char *text, uint8_t *hour, uint8_t *minute)
{
	if (strlen(text) != 5 || !isdigit((unsigned char)text[0]) ||
	    !isdigit((unsigned char)text[1]) || text[2] != ':' ||
	    !isdigit((unsigned char)text[3]) ||
	    !isdigit((unsigned char)text[4]))
		return -1;
	*hour = (uint8_t)((text[0] - '0') * 10 + (text[1] - '0'));
	*minute = (uint8_t)((text[3] - '0') * 10 + (text[4] - '0'));
	return *hour < 24 && *minute < 60 ? 0 : -1;
}

/* A whole decimal number (no hex, no inf/nan); -1 if text is not one. */
static int
parse_number(const char *text, double *number)
{
	const char *p;
	char *end;

	for (p = text; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p) && *p != '.' && *p != '-' &&
		    *p != '+')
			return -1;
	if (*text == '\0')
		return -1;
	errno = 0;
	*number = strtod(text, &end);
	return *end == '\0' && errno == 0 ? 0 : -1;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The attribute trimmed of surrounding blanks, in flow memory; NULL if
 * absent. */
static char *
attribute(struct loader *loader, xmlNodePtr node, const char *name)
{
	xmlChar *value;
	const char *start;
	size_t length;
	char *copy;

	if ((value = xmlGetNoNsProp(node, (const xmlChar *)name)) == NULL)
		return NULL;
	start = (const char *)value;
	while (is_blank(*start))
		start++;
	length = strlen(start);
	while (length > 0 && is_blank(start[length - 1]))
		length--;
	copy = loader_strndup(loader, start, length);
	xmlFree(value);
	return copy;
}

/* Duration attribute: absent or unreadable leaves *duration_us alone;
 * the schema reports the form, this the range. */
static void
duration_attribute(struct loader *loader, xmlNodePtr node, const char *name,
    uint64_t *duration_us)
{
	const char *text;
	uint64_t parsed;

	if ((text = attribute(loader, node, name)) == NULL)
		return;
	if (parse_duration_form(text, &parsed) == -1) {
		/* The schema has refused this form already. */
		if (loader->schema_valid)
			loader_error(loader, xmlGetLineNo(node),
			    "%s=\"%s\" is not a duration (45s, 30m, 2h, 1d, "
			    "2w)",
			    name, text);
		return;
	}
	if (parsed > FLOW_MAX_DELAY_US) {
		loader_error(loader, xmlGetLineNo(node),
		    "%s=\"%s\" is longer than a year", name, text);
		return;
	}
	*duration_us = parsed;
}

/* "on" or "off"; absent keeps the default. */
static void
switch_attribute(
    struct loader *loader, xmlNodePtr node, const char *name, int *value)
{
	const char *text;

	if ((text = attribute(loader, node, name)) != NULL)
		*value = strcmp(text, "on") == 0;
}

static int
element_is(xmlNodePtr node, const char *name)
{
	return node != NULL && node->type == XML_ELEMENT_NODE &&
	       xmlStrEqual(node->name, (const xmlChar *)name);
}

/* The first child element with this name, or NULL. */
static xmlNodePtr
child_element(xmlNodePtr parent, const char *name)
{
	xmlNodePtr child;

	for (child = parent->children; child != NULL; child = child->next)
		if (element_is(child, name))
			return child;
	return NULL;
}

static size_t
count_children(xmlNodePtr parent, const char *name)
{
	xmlNodePtr child;
	size_t count = 0;

	for (child = parent->children; child != NULL; child = child->next)
		if (element_is(child, name))
			count++;
	return count;
}

static const struct step_kind *
step_kind_of(xmlNodePtr node)
{
	size_t i;

	if (node == NULL || node->type != XML_ELEMENT_NODE)
		return NULL;
	for (i = 0; i < nitems(step_kinds); i++)
		if (xmlStrEqual(
			node->name, (const xmlChar *)step_kinds[i].element))
			return &step_kinds[i];
	return NULL;
}

static const struct condition_kind *
condition_kind_of(xmlNodePtr node)
{
	size_t i;

	if (node == NULL || node->type != XML_ELEMENT_NODE)
		return NULL;
	for (i = 0; i < nitems(condition_kinds); i++)
		if (xmlStrEqual(node->name,
			(const xmlChar *)condition_kinds[i].element))
			return &condition_kinds[i];
	return NULL;
}

/* Index of name in a table of words, or -1. */
static int
word_index(const char *const *words, size_t count, const char *name)
{
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < count; i++)
		if (words[i] != NULL && strcmp(words[i], name) == 0)
			return (int)i;
	return -1;
}

/* The step index the first pass stored in a node, or FLOW_STEP_NONE. */
static uint32_t
node_step(xmlNodePtr node)
{
	uintptr_t stored = (uintptr_t)node->_private;

	return stored == 0 ? FLOW_STEP_NONE : (uint32_t)(stored - 1);
}

/*
 * The text of an element, each line trimmed and blank lines at both ends
 * dropped, lines joined by '\n': the file's line structure, indentation
 * gone. *first_line is moved to the line the kept text starts on.
 */
static char *
element_lines(struct loader *loader, xmlNodePtr node, int *first_line)
{
	xmlChar *content;
	const char *raw, *line, *end, *start, *stop;
	char *out, *p;
	size_t pending_blank = 0;
	int started = 0;

	if ((content = xmlNodeGetContent(node)) == NULL)
		return NULL;
	raw = (const char *)content;
	if ((out = loader_allocate(loader, strlen(raw) + 1, 1)) == NULL) {
		xmlFree(content);
		return NULL;
	}
	p = out;
	for (line = raw; line != NULL; line = *end == '\n' ? end + 1 : NULL) {
		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		start = line;
		stop = end;
		while (start < stop && is_blank(*start))
			start++;
		while (stop > start && is_blank(stop[-1]))
			stop--;
		if (start == stop) {
			if (started)
				pending_blank++;
			else if (*end == '\n')
				(*first_line)++;
			continue;
		}
		if (started)
			for (pending_blank++; pending_blank > 0;
			     pending_blank--)
				*p++ = '\n';
		memcpy(p, start, (size_t)(stop - start));
		p += stop - start;
		started = 1;
	}
	*p = '\0';
	xmlFree(content);
	return out;
}

/*
 * From element_lines() to what is sent, as a paragraph: a line break of
 * the file is a space, and each blank line is a line break of the SMS, so
 * marketers wrap long texts freely and still choose where lines break.
 */
static char *
paragraph_text(struct loader *loader, const char *lines)
{
	char *out, *p;
	size_t run;

	if ((out = loader_allocate(loader, strlen(lines) + 1, 1)) == NULL)
		return NULL;
	for (p = out; *lines != '\0';) {
		if (*lines != '\n') {
			*p++ = *lines++;
			continue;
		}
		for (run = 0; *lines == '\n'; lines++)
			run++;
		if (run == 1)
			*p++ = ' ';
		else
			for (; run > 1; run--)
				*p++ = '\n';
	}
	*p = '\0';
	return out;
}

/* An element's text as a paragraph (see paragraph_text()). */
static char *
element_text(struct loader *loader, xmlNodePtr node, int *first_line)
{
	char *lines = element_lines(loader, node, first_line);

	return lines != NULL ? paragraph_text(loader, lines) : NULL;
}

/*
 * Compiles a template; errors name the template's own line. When source
 * is a paragraph, lines is the same text with the file's line breaks:
 * compiled only to find the line of an error.
 */
static struct template *
compile_template(struct loader *loader, const char *what, const char *source,
    const char *lines, int first_line)
{
	struct template *compiled;
	char error[TEMPLATE_ERROR_SIZE], lines_error[TEMPLATE_ERROR_SIZE];
	int error_line = first_line, lines_error_line = first_line;

	error[0] = '\0';
	compiled = template_compile(source, strlen(source), first_line, error,
	    sizeof(error), &error_line);
	if (compiled != NULL)
		return compiled;
	if (lines != NULL) {
		lines_error[0] = '\0';
		compiled = template_compile(lines, strlen(lines), first_line,
		    lines_error, sizeof(lines_error), &lines_error_line);
		if (compiled == NULL) {
			memcpy(error, lines_error, sizeof(error));
			error_line = lines_error_line;
		}
		template_free(compiled);
	}
	loader_error(loader, error_line > 0 ? error_line : first_line,
	    "%s: template: %s", what,
	    error[0] != '\0' ? error : "does not compile");
	return NULL;
}

/* ---- conditions --------------------------------------------------------- */

/* One condition element into *condition. */
static void
parse_condition(struct loader *loader, xmlNodePtr node,
    const struct condition_kind *kind, struct flow_condition *condition)
{
	const char *operator, * over;
	int index;

	condition->subject = kind->subject;
	condition->line = xmlGetLineNo(node);
	if (kind->has_path)
		condition->path = attribute(loader, node, "path");
	operator= attribute(loader, node, "operator");
	index = word_index(operator_names, nitems(operator_names), operator);
	condition->operator= index >= 0 ? (enum flow_operator)index
					: FLOW_OPERATOR_EQUALS;
	if (condition->operator== FLOW_OPERATOR_IS_SET || condition->operator==
	    FLOW_OPERATOR_IS_NOT_SET)
		return;
	condition->value = attribute(loader, node, "value");
	if (condition->value != NULL &&
	    parse_number(condition->value, &condition->number) == 0)
		condition->has_number = 1;
	if ((condition->operator== FLOW_OPERATOR_GREATER_THAN || condition->
		operator== FLOW_OPERATOR_LESS_THAN) &&
	    condition->value != NULL && !condition->has_number)
		loader_error(loader, condition->line,
		    "<%s>: %s compares numbers; \"%s\" is not a number",
		    kind->element, operator, condition->value);
	if (kind->subject == FLOW_SUBJECT_ORDER_COUNT &&
	    (over = attribute(loader, node, "over")) != NULL &&
	    strcmp(over, "all-time") != 0)
		duration_attribute(loader, node, "over", &condition->period_us);
}

/* The condition children of a split or metric, in order. */
static void
parse_conditions(struct loader *loader, xmlNodePtr parent,
    struct flow_condition **conditions, size_t *count)
{
	const struct condition_kind *kind;
	xmlNodePtr child;
	size_t total = 0;

	for (child = parent->children; child != NULL; child = child->next)
		if (condition_kind_of(child) != NULL)
			total++;
	if (total == 0)
		return;
	if (total > FLOW_MAX_CONDITIONS) {
		loader_error(loader, xmlGetLineNo(parent),
		    "<%s> has %zu conditions; at most %d", parent->name, total,
		    FLOW_MAX_CONDITIONS);
		return;
	}
	if ((*conditions = loader_allocate(
		 loader, total, sizeof(**conditions))) == NULL)
		return;
	for (child = parent->children; child != NULL; child = child->next)
		if ((kind = condition_kind_of(child)) != NULL)
			parse_condition(
			    loader, child, kind, &(*conditions)[(*count)++]);
}

/* ---- steps -------------------------------------------------------------- */

static void
parse_delay(struct loader *loader, xmlNodePtr node, struct flow_step *step)
{
	const char *until;

	duration_attribute(loader, node, "duration", &step->delay.duration_us);
	if ((until = attribute(loader, node, "until")) != NULL &&
	    parse_time_of_day(
		until, &step->delay.until_hour, &step->delay.until_minute) == 0)
		step->delay.has_until = 1;
}

static void
parse_split(struct loader *loader, xmlNodePtr node, struct flow_step *step)
{
	const char *match = attribute(loader, node, "match");

	step->split.match_any = match != NULL && strcmp(match, "any") == 0;
	parse_conditions(loader, node, &step->split.conditions,
	    &step->split.condition_count);
	step->split.yes = FLOW_STEP_NONE;
	step->split.no = FLOW_STEP_NONE;
}

static void
parse_ab(struct loader *loader, xmlNodePtr node, struct flow_step *step)
{
	struct flow_ab_branch *branch;
	xmlNodePtr child;
	const char *weight;
	size_t count = count_children(node, "branch");
	unsigned int sum = 0;
	int all_read = 1;

	if (count > FLOW_MAX_AB_BRANCHES) {
		loader_error(loader, step->line,
		    "A/B split \"%s\" has %zu branches; at most %d", step->id,
		    count, FLOW_MAX_AB_BRANCHES);
		return;
	}
	if (count == 0)
		return;
	if (count == 1)
		loader_error(loader, step->line,
		    "A/B split \"%s\" has one branch; it needs two or more",
		    step->id);
	if ((step->ab.branches = loader_allocate(
		 loader, count, sizeof(*step->ab.branches))) == NULL)
		return;
	for (child = node->children; child != NULL; child = child->next) {
		if (!element_is(child, "branch"))
			continue;
		branch = &step->ab.branches[step->ab.branch_count++];
		branch->name = attribute(loader, child, "name");
		branch->step = FLOW_STEP_NONE;
		weight = attribute(loader, child, "weight");
		if (parse_weight(weight, &branch->weight) == -1) {
			all_read = 0;
			/* The schema has refused this form already. */
			if (loader->schema_valid)
				loader_error(loader, xmlGetLineNo(child),
				    "weight=\"%s\" is not a whole number from "
				    "1 to 100",
				    weight != NULL ? weight : "");
		}
		sum += branch->weight;
	}
	if (sum != 100 && all_read)
		loader_error(loader, step->line,
		    "A/B split \"%s\": weights sum to %u, not 100", step->id,
		    sum);
}

/* 1 if word j of answer i already appeared earlier in the question. */
static int
word_used_before(const struct flow_question *question, size_t i, size_t j)
{
	const char *word = question->answers[i].words[j];
	size_t a, w, words;

	for (a = 0; a <= i; a++) {
		words = a == i ? j : question->answers[a].word_count;
		for (w = 0; w < words; w++)
			if (strcasecmp(question->answers[a].words[w], word) ==
			    0)
				return 1;
	}
	return 0;
}

/* The <question> of an SMS: conversation, reply window, answers. */
static void
parse_question(struct loader *loader, xmlNodePtr node, struct flow_sms *sms)
{
	struct flow_question *question;
	struct flow_answer *answer;
	xmlNodePtr child, word;
	size_t answers = count_children(node, "answer"), i, j;
	int line;

	if ((question = loader_allocate(loader, 1, sizeof(*question))) == NULL)
		return;
	sms->question = question;
	question->conversation = attribute(loader, node, "conversation");
	duration_attribute(
	    loader, node, "reply-window", &question->reply_window_us);
	if (answers > FLOW_MAX_ANSWERS) {
		loader_error(loader, xmlGetLineNo(node),
		    "question has %zu answers; at most %d", answers,
		    FLOW_MAX_ANSWERS);
		return;
	}
	if (answers == 0 || (question->answers = loader_allocate(loader,
				 answers, sizeof(*question->answers))) == NULL)
		return;
	for (child = node->children; child != NULL; child = child->next) {
		if (!element_is(child, "answer"))
			continue;
		answer = &question->answers[question->answer_count++];
		answer->line = xmlGetLineNo(child);
		answer->flow_id = attribute(loader, child, "flow");
		if (count_children(child, "word") > FLOW_MAX_WORDS) {
			loader_error(loader, answer->line,
			    "answer has more than %d words", FLOW_MAX_WORDS);
			continue;
		}
		if ((answer->words = loader_allocate(loader,
			 count_children(child, "word"), sizeof(char *))) ==
		    NULL)
			continue;
		for (word = child->children; word != NULL; word = word->next) {
			if (!element_is(word, "word"))
				continue;
			line = xmlGetLineNo(word);
			answer->words[answer->word_count] =
			    element_text(loader, word, &line);
			if (answer->words[answer->word_count] == NULL)
				continue;
			if (answer->words[answer->word_count][0] == '\0') {
				loader_error(loader, xmlGetLineNo(word),
				    "answer word is empty");
				continue;
			}
			answer->word_count++;
		}
	}
	/* A reply must pick one answer: words are unique, caseless. */
	for (i = 0; i < question->answer_count; i++)
		for (j = 0; j < question->answers[i].word_count; j++)
			if (word_used_before(question, i, j))
				loader_error(loader, question->answers[i].line,
				    "answer word \"%s\" is used twice in this "
				    "question",
				    question->answers[i].words[j]);
}

static void
parse_sms(struct loader *loader, xmlNodePtr node, struct flow_step *step)
{
	struct flow_sms *sms = &step->sms;
	struct flow_text *text;
	xmlNodePtr child;
	const char *class, *language, *fallback;
	char what[128], *lines;
	size_t count = count_children(node, "text"), i;

	class = attribute(loader, node, "class");
	sms->message_class =
	    class != NULL && strcmp(class, "transactional") == 0
		? OUTBOX_CLASS_TRANSACTIONAL
		: OUTBOX_CLASS_MARKETING;
	sms->quiet_hours = 1;
	sms->smart_sending = 1;
	switch_attribute(loader, node, "quiet-hours", &sms->quiet_hours);
	switch_attribute(loader, node, "smart-sending", &sms->smart_sending);
	if (count > FLOW_MAX_TEXTS) {
		loader_error(loader, step->line,
		    "SMS \"%s\" has %zu texts; at most %d", step->id, count,
		    FLOW_MAX_TEXTS);
		return;
	}
	if (count == 0 || (sms->texts = loader_allocate(
			       loader, count, sizeof(*sms->texts))) == NULL)
		return;
	for (child = node->children; child != NULL; child = child->next) {
		if (!element_is(child, "text"))
			continue;
		text = &sms->texts[sms->text_count];
		text->line = xmlGetLineNo(child);
		language = attribute(loader, child, "lang");
		if (language == NULL ||
		    strlen(language) >= sizeof(text->language))
			language = "";
		for (i = 0; i < sms->text_count; i++)
			if (strcasecmp(sms->texts[i].language, language) == 0)
				loader_error(loader, text->line,
				    "SMS \"%s\" has two texts for language "
				    "\"%s\"",
				    step->id, language);
		snprintf(
		    text->language, sizeof(text->language), "%s", language);
		if ((lines = element_lines(loader, child, &text->line)) ==
			NULL ||
		    (text->source = paragraph_text(loader, lines)) == NULL)
			continue;
		sms->text_count++;
		if (text->source[0] == '\0') {
			loader_error(loader, text->line,
			    "SMS \"%s\": the %s text is empty", step->id,
			    language);
			continue;
		}
		snprintf(
		    what, sizeof(what), "SMS \"%s\" (%s)", step->id, language);
		text->compiled = compile_template(
		    loader, what, text->source, lines, text->line);
	}
	if ((fallback = attribute(loader, node, "fallback")) != NULL) {
		for (i = 0; i < sms->text_count; i++)
			if (strcasecmp(sms->texts[i].language, fallback) == 0)
				break;
		if (i == sms->text_count)
			loader_error(loader, step->line,
			    "SMS \"%s\": fallback \"%s\" has no <text "
			    "lang=\"%s\">",
			    step->id, fallback, fallback);
		else
			sms->fallback = i;
	}
	if ((child = child_element(node, "question")) != NULL)
		parse_question(loader, child, sms);
}

static void
parse_update(struct loader *loader, xmlNodePtr node, struct flow_step *step)
{
	char what[128];

	step->update.property = attribute(loader, node, "property");
	step->update.value_source = attribute(loader, node, "value");
	if (step->update.value_source == NULL)
		return;
	snprintf(what, sizeof(what), "update \"%s\"", step->id);
	step->update.value = compile_template(
	    loader, what, step->update.value_source, NULL, step->line);
}

static void
parse_webhook(struct loader *loader, xmlNodePtr node, struct flow_step *step)
{
	step->webhook.url = attribute(loader, node, "url");
}

static void
parse_end(struct loader *loader, xmlNodePtr node, struct flow_step *step)
{
}

/*
 * First pass over a block (<steps>, <yes>, <no>, <branch>): numbers its
 * steps in document order, nested branches included, and notes in each
 * <goto> how many steps precede it, so the jump can be checked to go
 * forward.
 */
static void
number_block(struct loader *loader, xmlNodePtr block)
{
	xmlNodePtr child, inner;

	for (child = block->children; child != NULL; child = child->next) {
		if (element_is(child, "goto")) {
			child->_private =
			    (void *)(uintptr_t)(loader->step_count + 1);
			continue;
		}
		if (step_kind_of(child) == NULL)
			continue;
		if (loader->step_count == FLOW_MAX_STEPS) {
			if (!loader->too_many_steps)
				loader_error(loader, xmlGetLineNo(child),
				    "more than %d steps in one flow",
				    FLOW_MAX_STEPS);
			loader->too_many_steps = 1;
			return;
		}
		loader->step_nodes[loader->step_count] = child;
		child->_private = (void *)(uintptr_t)(++loader->step_count);
		for (inner = child->children; inner != NULL;
		     inner = inner->next)
			if (element_is(inner, "yes") ||
			    element_is(inner, "no") ||
			    element_is(inner, "branch"))
				number_block(loader, inner);
	}
}

/* The step a <goto> jumps to, checked to exist and to lie ahead. */
static uint32_t
resolve_goto(struct loader *loader, xmlNodePtr node)
{
	const char *target = attribute(loader, node, "step");
	uint32_t index, position = node_step(node);

	if (target == NULL)
		return FLOW_STEP_NONE;
	if ((index = rule_step_index(loader->flow, target)) == FLOW_STEP_NONE) {
		loader_error(loader, xmlGetLineNo(node),
		    "goto: no step has id \"%s\"", target);
		return FLOW_STEP_NONE;
	}
	/* Forward only: no loops, every journey ends. */
	if (position == FLOW_STEP_NONE || index < position) {
		loader_error(loader, xmlGetLineNo(node),
		    "goto \"%s\" jumps back to line %d; a goto may only jump "
		    "to a step further down",
		    target, loader->flow->steps[index].line);
		return FLOW_STEP_NONE;
	}
	return index;
}

/*
 * Second pass: links a block's steps, last to first. continuation is where
 * the block goes when it runs out (the step after the enclosing split: the
 * rejoin); returns the block's entry.
 */
static uint32_t
link_block(struct loader *loader, xmlNodePtr block, uint32_t continuation)
{
	struct flow_step *step;
	xmlNodePtr child, inner, yes, no;
	uint32_t next = continuation, index;
	size_t branch;

	if (block == NULL)
		return continuation;
	for (child = block->last; child != NULL; child = child->prev) {
		if (element_is(child, "goto")) {
			next = resolve_goto(loader, child);
			continue;
		}
		if (step_kind_of(child) == NULL ||
		    (index = node_step(child)) == FLOW_STEP_NONE)
			continue;
		step = &loader->flow->steps[index];
		switch (step->type) {
		case FLOW_STEP_CONDITIONAL_SPLIT:
		case FLOW_STEP_TRIGGER_SPLIT:
			yes = child_element(child, "yes");
			no = child_element(child, "no");
			step->split.yes = link_block(loader, yes, next);
			step->split.no = link_block(loader, no, next);
			break;
		case FLOW_STEP_AB_SPLIT:
			branch = 0;
			for (inner = child->children; inner != NULL;
			     inner = inner->next)
				if (element_is(inner, "branch") &&
				    branch < step->ab.branch_count)
					step->ab.branches[branch++].step =
					    link_block(loader, inner, next);
			break;
		case FLOW_STEP_END:
			step->next = FLOW_STEP_NONE;
			break;
		default:
			step->next = next;
			break;
		}
		next = index;
	}
	return next;
}

/* Numbers, reads and links every step under <steps>. */
static void
compile_steps(struct loader *loader, xmlNodePtr steps)
{
	const struct step_kind *kind;
	struct flow *flow = loader->flow;
	struct flow_step *step;
	xmlNodePtr node;
	char *id, generated[64];
	size_t i, j;
	int written;

	number_block(loader, steps);
	if (loader->too_many_steps)
		return;
	if (loader->step_count == 0) {
		if (loader->schema_valid)
			loader_error(loader, xmlGetLineNo(steps),
			    "<steps> has no step; a flow needs one at least");
		return;
	}
	if ((flow->steps = loader_allocate(
		 loader, loader->step_count, sizeof(*flow->steps))) == NULL)
		return;
	flow->step_count = loader->step_count;
	for (i = 0; i < flow->step_count; i++) {
		node = loader->step_nodes[i];
		kind = step_kind_of(node);
		step = &flow->steps[i];
		step->type = kind->type;
		step->line = xmlGetLineNo(node);
		step->next = FLOW_STEP_NONE;
		written = (id = attribute(loader, node, "id")) != NULL;
		if (!written) {
			/* '@' is not allowed in written ids: no clash; the
			 * index tells steps on one line apart. */
			snprintf(generated, sizeof(generated), "%s@%d",
			    kind->element, step->line);
			if (rule_step_index(flow, generated) != FLOW_STEP_NONE)
				snprintf(generated, sizeof(generated),
				    "%s@%d.%zu", kind->element, step->line, i);
			id = loader_strndup(
			    loader, generated, strlen(generated));
		}
		step->id = id;
		for (j = 0; written && j < i; j++)
			if (flow->steps[j].id != NULL &&
			    strcmp(flow->steps[j].id, id) == 0)
				loader_error(loader, step->line,
				    "step id \"%s\" is already used at line "
				    "%d",
				    id, flow->steps[j].line);
	}
	for (i = 0; i < flow->step_count; i++) {
		if (flow->steps[i].id == NULL)
			return; /* out of memory, reported */
		step_kind_of(loader->step_nodes[i])
		    ->parse(loader, loader->step_nodes[i], &flow->steps[i]);
	}
	link_block(loader, steps, FLOW_STEP_NONE);
}

/* ---- flow --------------------------------------------------------------- */

static int
is_abandonment_metric(const char *metric)
{
	size_t i;

	for (i = 0; i < nitems(abandonment_metrics); i++)
		if (strcasecmp(metric, abandonment_metrics[i]) == 0)
			return 1;
	return 0;
}

static void
compile_trigger(struct loader *loader, xmlNodePtr node)
{
	struct flow_trigger *trigger = &loader->flow->trigger;
	xmlNodePtr child;
	size_t i;

	for (child = node->children; child != NULL; child = child->next)
		if (child->type == XML_ELEMENT_NODE)
			break;
	if (child == NULL)
		return;
	trigger->line = xmlGetLineNo(child);
	if (element_is(child, "metric")) {
		trigger->type = FLOW_TRIGGER_METRIC;
		if ((trigger->metric = attribute(loader, child, "name")) ==
		    NULL)
			return;
		if (trigger->metric[0] == '\0')
			loader_error(loader, trigger->line,
			    "the trigger metric name is empty");
		if (is_abandonment_metric(trigger->metric))
			loader->flow->kind = FLOW_KIND_ABANDONMENT;
		parse_conditions(
		    loader, child, &trigger->filters, &trigger->filter_count);
	} else if (element_is(child, "keyword")) {
		trigger->type = FLOW_TRIGGER_KEYWORD;
		if ((trigger->keyword = attribute(loader, child, "word")) ==
		    NULL)
			return;
		if (trigger->keyword[0] == '\0')
			loader_error(loader, trigger->line,
			    "the trigger keyword is empty");
		for (i = 0; i < nitems(reserved_keywords); i++)
			if (strcasecmp(
				trigger->keyword, reserved_keywords[i]) == 0)
				loader_error(loader, trigger->line,
				    "keyword \"%s\" is reserved for opt-out, "
				    "opt-in and help",
				    trigger->keyword);
	} else if (element_is(child, "reply")) {
		trigger->type = FLOW_TRIGGER_REPLY;
		trigger->conversation =
		    attribute(loader, child, "conversation");
	}
}

static void
compile_reentry(struct loader *loader, xmlNodePtr node)
{
	struct flow_reentry *reentry = &loader->flow->reentry;
	char *key, *wrapped;
	size_t length;
	int index;

	index = word_index(reentry_names, nitems(reentry_names),
	    attribute(loader, node, "mode"));
	reentry->mode =
	    index >= 0 ? (enum flow_reentry_mode)index : FLOW_REENTRY_ALWAYS;
	duration_attribute(loader, node, "period", &reentry->period_us);
	if (reentry->mode != FLOW_REENTRY_KEY ||
	    (key = attribute(loader, node, "key")) == NULL)
		return;
	if (key[0] == '\0') {
		loader_error(
		    loader, xmlGetLineNo(node), "reentry: the key is empty");
		return;
	}
	/* A bare property path stands for the template that prints it. */
	if (strstr(key, "{{") == NULL) {
		length = strlen(key) + 7;
		if ((wrapped = loader_allocate(loader, length, 1)) == NULL)
			return;
		snprintf(wrapped, length, "{{ %s }}", key);
		key = wrapped;
	}
	reentry->key_source = key;
	reentry->key = compile_template(
	    loader, "reentry key", key, NULL, xmlGetLineNo(node));
}

static void
compile_exit(struct loader *loader, xmlNodePtr node)
{
	struct flow *flow = loader->flow;
	xmlNodePtr child;
	size_t count = count_children(node, "metric");
	char *metric;

	if (count > FLOW_MAX_EXIT_METRICS) {
		loader_error(loader, xmlGetLineNo(node),
		    "more than %d exit metrics", FLOW_MAX_EXIT_METRICS);
		return;
	}
	if (count == 0 || (flow->exit_metrics = loader_allocate(
			       loader, count, sizeof(char *))) == NULL)
		return;
	for (child = node->children; child != NULL; child = child->next) {
		if (!element_is(child, "metric") ||
		    (metric = attribute(loader, child, "name")) == NULL)
			continue;
		if (metric[0] == '\0')
			loader_error(loader, xmlGetLineNo(child),
			    "the exit metric name is empty");
		flow->exit_metrics[flow->exit_metric_count++] = metric;
	}
}

/* The semantic pass over a parsed document: fills loader->flow. */
static void
compile_flow(struct loader *loader, xmlNodePtr root)
{
	struct flow *flow = loader->flow;
	xmlNodePtr node;
	const char *kind;
	int index;

	if (!element_is(root, "flow"))
		return; /* the schema said so */
	flow->line = xmlGetLineNo(root);
	flow->id = attribute(loader, root, "id");
	flow->name = attribute(loader, root, "name");
	if (flow->name != NULL && flow->name[0] == '\0')
		loader_error(
		    loader, xmlGetLineNo(root), "the flow name is empty");
	index = word_index(status_names, nitems(status_names),
	    attribute(loader, root, "status"));
	flow->status = index >= 0 ? (enum flow_status)index : FLOW_STATUS_DRAFT;
	kind = attribute(loader, root, "kind");
	if (kind != NULL && strcmp(kind, "abandonment") == 0)
		flow->kind = FLOW_KIND_ABANDONMENT;
	if ((node = child_element(root, "description")) != NULL) {
		index = xmlGetLineNo(node);
		flow->description = element_text(loader, node, &index);
	}
	if ((node = child_element(root, "trigger")) != NULL)
		compile_trigger(loader, node);
	if ((node = child_element(root, "reentry")) != NULL)
		compile_reentry(loader, node);
	if ((node = child_element(root, "exit")) != NULL)
		compile_exit(loader, node);
	if ((node = child_element(root, "steps")) != NULL)
		compile_steps(loader, node);
}

/* ---- libxml2 ------------------------------------------------------------ */

/* A message from libxml2 without its trailing newline. */
static void
trimmed_message(const char *message, char *out, size_t size)
{
	size_t length;

	snprintf(out, size, "%s", message != NULL ? message : "error");
	length = strlen(out);
	while (length > 0 && is_blank(out[length - 1]))
		out[--length] = '\0';
}

/* Parser (well-formedness) errors: one message each. */
static void
on_parser_error(void *user, xmlErrorPtr error)
{
	xmlParserCtxtPtr context = user;
	struct loader *loader = context->_private;
	char text[MESSAGE_SIZE];

	if (loader->doctype_seen || error->level == XML_ERR_WARNING)
		return;
	trimmed_message(error->message, text, sizeof(text));
	rule_report_add(loader->report, RULE_ERROR, loader->name, error->line,
	    "not well-formed XML: %s", text);
}

/* A DOCTYPE stops the parser before its internal subset is read: no
 * entity declarations, no external DTD, no entity expansion at all. */
static void
on_doctype(void *user, const xmlChar *name, const xmlChar *external_id,
    const xmlChar *system_id)
{
	xmlParserCtxtPtr context = user;
	struct loader *loader = context->_private;

	if (loader->doctype_seen)
		return;
	loader->doctype_seen = 1;
	loader->doctype_line = xmlSAX2GetLineNumber(context);
	xmlStopParser(context);
}

/* "<sms id="x" class="y">": how an element was written, for messages. */
static void
describe_element(xmlNodePtr node, char *out, size_t size)
{
	xmlAttrPtr property;
	xmlChar *value;
	size_t used;

	used = (size_t)snprintf(out, size, "<%s", node->name);
	for (property = node->properties; property != NULL && used < size;
	     property = property->next) {
		value = xmlNodeListGetString(node->doc, property->children, 1);
		used += (size_t)snprintf(out + used, size - used,
		    " %s=\"%.*s%s\"", property->name, ATTRIBUTE_SHOWN,
		    value != NULL ? (const char *)value : "",
		    value != NULL && xmlStrlen(value) > ATTRIBUTE_SHOWN ? "..."
									: "");
		xmlFree(value);
	}
	if (used < size)
		snprintf(out + used, size - used, ">");
}

/* Schema validation errors, with the element's line. */
static void
on_schema_error(void *user, xmlErrorPtr error)
{
	struct loader *loader = user;
	xmlNodePtr node = error->node;
	char text[MESSAGE_SIZE], element[MESSAGE_SIZE / 2];
	int line = error->line;

	if (error->level == XML_ERR_WARNING)
		return;
	if (node != NULL && node->type == XML_ELEMENT_NODE)
		line = xmlGetLineNo(node);
	trimmed_message(error->message, text, sizeof(text));
	/* Without a place it repeats a located one; kept for if not. */
	if (line <= 0) {
		if (loader->unlocated[0] == '\0')
			snprintf(loader->unlocated, sizeof(loader->unlocated),
			    "%s", text);
		return;
	}
	loader->schema_errors++;
	/* libxml2 does not say which attribute: show what was written. */
	if (node != NULL && node->type == XML_ELEMENT_NODE &&
	    strstr(text, "failed to validate attributes") != NULL) {
		describe_element(node, element, sizeof(element));
		rule_report_add(loader->report, RULE_ERROR, loader->name, line,
		    "schema: %s: an attribute is missing, unknown, or has a "
		    "value the schema does not allow (rules/README.md)",
		    element);
		return;
	}
	rule_report_add(
	    loader->report, RULE_ERROR, loader->name, line, "schema: %s", text);
}

/* The built-in schema's own compile errors (a broken build). */
static void
on_schema_compile_error(void *user, xmlErrorPtr error)
{
	struct loader *loader = user;
	char text[MESSAGE_SIZE];

	trimmed_message(error->message, text, sizeof(text));
	rule_report_add(loader->report, RULE_ERROR, "rules/flow.rng",
	    error->line, "built-in schema: %s", text);
}

/* Swallows what libxml2 would print on stderr outside the handlers. */
static void
on_generic_error(void *user, const char *fmt, ...)
{
}

const char *
rule_schema(size_t *length)
{
	if (length != NULL)
		*length = (size_t)(rule_schema_end - rule_schema_start);
	return rule_schema_start;
}

void
rule_cleanup(void)
{
	if (compiled_schema != NULL)
		xmlRelaxNGFree(compiled_schema);
	compiled_schema = NULL;
}

/* The compiled schema, built on first use. */
static xmlRelaxNGPtr
schema_get(struct loader *loader)
{
	xmlRelaxNGParserCtxtPtr parser;
	size_t length;
	const char *text = rule_schema(&length);

	if (compiled_schema != NULL)
		return compiled_schema;
	if ((parser = xmlRelaxNGNewMemParserCtxt(text, (int)length)) == NULL)
		return NULL;
	xmlRelaxNGSetParserStructuredErrors(
	    parser, on_schema_compile_error, loader);
	compiled_schema = xmlRelaxNGParse(parser);
	xmlRelaxNGFreeParserCtxt(parser);
	return compiled_schema;
}

/* Parses the bytes; NULL (reported) unless well-formed and DOCTYPE-free. */
static xmlDocPtr
read_document(struct loader *loader, const char *data, size_t length)
{
	xmlParserCtxtPtr context;
	xmlDocPtr document;

	if ((context = xmlNewParserCtxt()) == NULL) {
		loader_error(loader, 0, "out of memory");
		return NULL;
	}
	context->_private = loader;
	context->sax->serror = on_parser_error;
	context->sax->internalSubset = on_doctype;
	/* No NOENT (entities stay unexpanded), no DTDLOAD, no XINCLUDE. */
	document =
	    xmlCtxtReadMemory(context, data, (int)length, loader->name, NULL,
		XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES |
		    XML_PARSE_NOWARNING);
	if (loader->doctype_seen) {
		loader_error(loader, loader->doctype_line,
		    "a DOCTYPE is not allowed in rule files");
		xmlFreeDoc(document);
		document = NULL;
	} else if (document != NULL && !context->wellFormed) {
		xmlFreeDoc(document);
		document = NULL;
	}
	if (document == NULL && !loader_failed(loader))
		loader_error(loader, 0, "not well-formed XML");
	xmlFreeParserCtxt(context);
	return document;
}

/* Validates against the schema; 1 if valid. */
static int
validate_document(struct loader *loader, xmlDocPtr document)
{
	xmlRelaxNGPtr schema;
	xmlRelaxNGValidCtxtPtr validator;
	int result;

	if ((schema = schema_get(loader)) == NULL) {
		loader_error(loader, 0, "the built-in schema does not compile");
		return 0;
	}
	if ((validator = xmlRelaxNGNewValidCtxt(schema)) == NULL) {
		loader_error(loader, 0, "out of memory");
		return 0;
	}
	xmlRelaxNGSetValidStructuredErrors(validator, on_schema_error, loader);
	result = xmlRelaxNGValidateDoc(validator, document);
	xmlRelaxNGFreeValidCtxt(validator);
	if (result != 0 && loader->schema_errors == 0)
		loader_error(loader, 0, "schema: %s",
		    loader->unlocated[0] != '\0'
			? loader->unlocated
			: "the file does not validate");
	return result == 0;
}

static uint64_t
content_hash(const char *data, size_t length)
{
	uint64_t hash = FNV_OFFSET_BASIS;
	size_t i;

	for (i = 0; i < length; i++) {
		hash ^= (unsigned char)data[i];
		hash *= FNV_PRIME;
	}
	return hash;
}

/* ---- the API ------------------------------------------------------------ */

struct flow *
rule_load_memory(const char *name, const char *data, size_t length,
    struct rule_report *report)
{
	struct loader loader;
	struct rule_memory *memory = NULL;
	struct flow *flow = NULL;
	xmlDocPtr document = NULL;
	xmlGenericErrorFunc saved_function = xmlGenericError;
	void *saved_context = xmlGenericErrorContext;

	memset(&loader, 0, sizeof(loader));
	loader.name = name != NULL ? name : "-";
	loader.report = report;
	loader.errors_at_start = report->error_count;
	xmlSetGenericErrorFunc(NULL, on_generic_error);
	if (length > RULE_MAX_FILE_SIZE) {
		loader_error(&loader, 0,
		    "the file has %zu bytes; rule files are limited to %d KiB",
		    length, RULE_MAX_FILE_SIZE / 1024);
		goto fail;
	}
	if ((flow = memory_allocate(&memory, sizeof(*flow))) == NULL) {
		loader_error(&loader, 0, "out of memory");
		goto fail;
	}
	flow->memory = memory;
	flow->refcount = 1;
	flow->hash = content_hash(data, length);
	loader.flow = flow;
	flow->file = loader_strndup(&loader, loader.name, strlen(loader.name));
	if ((document = read_document(&loader, data, length)) == NULL)
		goto fail;
	/* Schema errors first; the semantic pass still runs for the rest. */
	loader.schema_valid = validate_document(&loader, document);
	compile_flow(&loader, xmlDocGetRootElement(document));
	if (loader_failed(&loader))
		goto fail;
	xmlFreeDoc(document);
	xmlSetGenericErrorFunc(saved_context, saved_function);
	return flow;
fail:
	xmlFreeDoc(document);
	xmlSetGenericErrorFunc(saved_context, saved_function);
	if (flow != NULL)
		rule_free(flow);
	else
		memory_free(memory);
	return NULL;
}

struct flow *
rule_load_file(const char *path, struct rule_report *report)
{
	struct flow *flow = NULL;
	struct stat st;
	char *data = NULL;
	size_t length = 0;
	ssize_t got;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rule_report_add(
		    report, RULE_ERROR, path, 0, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		rule_report_add(
		    report, RULE_ERROR, path, 0, "not a regular file");
		goto done;
	}
	if (st.st_size > RULE_MAX_FILE_SIZE) {
		rule_report_add(report, RULE_ERROR, path, 0,
		    "the file has %jd bytes; rule files are limited to %d KiB",
		    (intmax_t)st.st_size, RULE_MAX_FILE_SIZE / 1024);
		goto done;
	}
	/* One byte more than allowed: a file that grew is still caught. */
	if ((data = malloc(RULE_MAX_FILE_SIZE + 1)) == NULL) {
		rule_report_add(report, RULE_ERROR, path, 0, "out of memory");
		goto done;
	}
	while (length <= RULE_MAX_FILE_SIZE) {
		got = read(fd, data + length, RULE_MAX_FILE_SIZE + 1 - length);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			rule_report_add(
			    report, RULE_ERROR, path, 0, "%s", strerror(errno));
			goto done;
		}
		if (got == 0)
			break;
		length += (size_t)got;
	}
	flow = rule_load_memory(path, data, length, report);
done:
	free(data);
	close(fd);
	return flow;
}

struct flow *
rule_hold(struct flow *flow)
{
	flow->refcount++;
	return flow;
}

void
rule_free(struct flow *flow)
{
	struct flow_step *step;
	size_t i, j;

	if (flow == NULL || --flow->refcount > 0)
		return;
	/* Arrays are zeroed when allocated: a half-built flow frees too. */
	if (flow->reentry.key != NULL)
		template_free(flow->reentry.key);
	for (i = 0; i < flow->step_count; i++) {
		step = &flow->steps[i];
		if (step->type == FLOW_STEP_SMS) {
			for (j = 0; j < step->sms.text_count; j++)
				if (step->sms.texts[j].compiled != NULL)
					template_free(
					    step->sms.texts[j].compiled);
		} else if (step->type == FLOW_STEP_UPDATE &&
			   step->update.value != NULL)
			template_free(step->update.value);
	}
	memory_free(flow->memory);
}

const char *
rule_step_type_name(enum flow_step_type type)
{
	if ((unsigned int)type >= FLOW_STEP_TYPE_COUNT)
		return "unknown";
	return step_type_names[type];
}

uint32_t
rule_step_index(const struct flow *flow, const char *id)
{
	size_t i;

	for (i = 0; i < flow->step_count; i++)
		if (flow->steps[i].id != NULL &&
		    strcmp(flow->steps[i].id, id) == 0)
			return (uint32_t)i;
	return FLOW_STEP_NONE;
}

const struct flow_text *
rule_sms_text(const struct flow_sms *sms, const char *language)
{
	size_t i, primary;

	if (sms->text_count == 0)
		return NULL;
	if (language != NULL && language[0] != '\0') {
		for (i = 0; i < sms->text_count; i++)
			if (strcasecmp(sms->texts[i].language, language) == 0)
				return &sms->texts[i];
		primary = strcspn(language, "-_");
		for (i = 0; i < sms->text_count; i++)
			if (strlen(sms->texts[i].language) == primary &&
			    strncasecmp(
				sms->texts[i].language, language, primary) == 0)
				return &sms->texts[i];
	}
	return &sms->texts[sms->fallback];
}

const struct flow_answer *
rule_question_answer(
    const struct flow_question *question, const char *reply, size_t length)
{
	size_t i, j;

	while (length > 0 && is_blank(*reply)) {
		reply++;
		length--;
	}
	while (length > 0 && is_blank(reply[length - 1]))
		length--;
	for (i = 0; i < question->answer_count; i++)
		for (j = 0; j < question->answers[i].word_count; j++)
			if (strlen(question->answers[i].words[j]) == length &&
			    strncasecmp(question->answers[i].words[j], reply,
				length) == 0)
				return &question->answers[i];
	return NULL;
}

const struct flow_ab_branch *
rule_ab_branch(const struct flow_ab *ab, unsigned int bucket)
{
	unsigned int cumulative = 0;
	size_t i;

	if (ab->branch_count == 0)
		return NULL;
	for (i = 0; i < ab->branch_count; i++) {
		cumulative += ab->branches[i].weight;
		if (bucket < cumulative)
			return &ab->branches[i];
	}
	return &ab->branches[ab->branch_count - 1];
}

/* scandir() filter: visible files ending in ".xml". */
static int
is_rule_file_name(const struct dirent *entry)
{
	size_t length = strlen(entry->d_name);

	return entry->d_name[0] != '.' && length > 4 &&
	       strcmp(entry->d_name + length - 4, ".xml") == 0;
}

int
rule_folder_files(const char *folder, char ***paths, size_t *count)
{
	struct dirent **entries;
	char **list;
	int found, i;

	*paths = NULL;
	*count = 0;
	if ((found = scandir(folder, &entries, is_rule_file_name, alphasort)) ==
	    -1)
		return -1;
	list = calloc(found > 0 ? (size_t)found : 1, sizeof(*list));
	for (i = 0; list != NULL && i < found; i++)
		if (asprintf(&list[i], "%s/%s", folder, entries[i]->d_name) ==
		    -1) {
			rule_paths_free(list, (size_t)i); /* the ones made */
			list = NULL;
		}
	for (i = 0; i < found; i++)
		free(entries[i]);
	free(entries);
	if (list == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*paths = list;
	*count = (size_t)found;
	return 0;
}

void
rule_paths_free(char **paths, size_t count)
{
	size_t i;

	for (i = 0; i < count && paths != NULL; i++)
		free(paths[i]);
	free(paths);
}
