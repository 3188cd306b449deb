/*
 * test_template.c - the SMS template engine: paths into the context, every
 * filter (Unicode case mapping, truncation by what a reader counts as a
 * character, money rounding, dates against gmtime), every compile error
 * with its file line, output bounds, the GSM-7 / UCS-2 part boundaries and
 * a realistic abandoned-cart message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "nudged.h"
#include "smpp.h"

static const char context_json[] =
    "{"
    "\"person\": {\"first_name\": \"józef\", \"last_name\": \"o'neil\","
    "  \"email\": \"jozef@example.com\", \"phone_number\": \"+48601234567\","
    "  \"language\": \"pl\","
    "  \"properties\": {\"loyalty_tier\": \"gold\", \"points\": 1250,"
    "    \"ratio\": 12.5, \"big\": 1e6, \"vip\": true, \"optin\": false,"
    "    \"nothing\": null, \"empty\": \"\", \"zero\": 0,"
    "    \"first_name\": \"shadowed\"}},"
    "\"event\": {\"URL\": \"https://shop.example/cart?id=42\","
    "  \"ProductName\": \"Organic cotton t-shirt with a very long name\","
    "  \"Value\": 59.9, \"ItemCount\": 3,"
    "  \"Items\": [{\"Name\": \"Socks\", \"Price\": 4.5},"
    "            {\"Name\": \"Hat\", \"Price\": 19}],"
    "  \"PlacedAt\": \"2024-03-05T14:07:09Z\", \"Epoch\": 1709647629,"
    "  \"Nested\": {\"Deep\": {\"Er\": \"yes\"}}, \"$value\": 7},"
    "\"organization\": {\"name\": \"Acme & Co\"},"
    "\"journey\": {\"name\": \"abandoned cart\"},"
    "\"coupon\": \"SAVE10\""
    "}";

static json_t *context;
static char rendered[8192];

static int
setup(void **state)
{
	json_error_t error;

	context = json_loads(context_json, 0, &error);
	if (context == NULL)
		fprintf(stderr, "context: %s\n", error.text);
	return context == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	json_decref(context);
	return 0;
}

/* 1 if text is well-formed UTF-8 (strict, as smpp/ checks it). */
static int
valid_utf8(const char *text, size_t length)
{
	size_t position = 0;
	uint32_t codepoint;

	while (position < length)
		if (smpp_charset_utf8_next(
			text, length, &position, &codepoint) != SMPP_CHARSET_OK)
			return 0;
	return 1;
}

/* Compiles and renders with a context; the template must compile. */
static const char *
render_with(const char *text, const json_t *with)
{
	struct template *template;
	char error[128];
	size_t length;
	int line, status;

	template = template_compile(
	    text, strlen(text), 1, error, sizeof(error), &line);
	if (template == NULL)
		fail_msg("'%s' does not compile: %d: %s", text, line, error);
	status = template_render(
	    template, with, rendered, sizeof(rendered), &length);
	template_free(template);
	assert_int_equal(status, TEMPLATE_OK);
	assert_int_equal(length, strlen(rendered));
	assert_true(valid_utf8(rendered, length));
	return rendered;
}

static const char *
render(const char *text)
{
	return render_with(text, context);
}

/* Renders text with {"event": {"v": <value_json>}}. */
static const char *
render_value(const char *text, const char *value_json)
{
	char json[256];
	json_t *with;

	snprintf(json, sizeof(json), "{\"event\": {\"v\": %s}}", value_json);
	with = json_loads(json, JSON_DECODE_ANY, NULL);
	assert_non_null(with);
	render_with(text, with);
	json_decref(with);
	return rendered;
}

static void
test_literals(void **state)
{
	assert_string_equal(render(""), "");
	assert_string_equal(render("Hello"), "Hello");
	assert_string_equal(render("{# not a comment #} }} { } {x"),
	    "{# not a comment #} }} { } {x");
	assert_string_equal(render("{{ coupon }}{{ coupon }}"), "SAVE10SAVE10");
	assert_string_equal(render("ż{{ coupon }}ż"), "żSAVE10ż");
	assert_string_equal(render("trailing {"), "trailing {");
}

static void
test_paths(void **state)
{
	assert_string_equal(render("{{ first_name }}"), "józef");
	assert_string_equal(render("{{ person.first_name }}"), "józef");
	assert_string_equal(render("{{ person.email }}"), "jozef@example.com");
	assert_string_equal(render("{{ phone_number }}"), "+48601234567");
	/* Custom properties: bare, and under person. */
	assert_string_equal(render("{{ loyalty_tier }}"), "gold");
	assert_string_equal(render("{{ person.loyalty_tier }}"), "gold");
	assert_string_equal(
	    render("{{ person.properties.loyalty_tier }}"), "gold");
	assert_string_equal(
	    render("{{ event.URL }}"), "https://shop.example/cart?id=42");
	assert_string_equal(render("{{ event.Items.0.Name }}"), "Socks");
	assert_string_equal(render("{{ event.Items.1.Price }}"), "19");
	assert_string_equal(render("{{ event.Nested.Deep.Er }}"), "yes");
	assert_string_equal(render("{{ event.$value }}"), "7");
	assert_string_equal(render("{{ organization.name }}"), "Acme & Co");
	assert_string_equal(render("{{ journey.name }}"), "abandoned cart");
	/* A bare name not in person falls back to the top level. */
	assert_string_equal(render("{{ coupon }}"), "SAVE10");
	/* Roots are only roots in first place. */
	assert_string_equal(render("{{ event.person }}"), "");
	/* Missing: past the end, wrong type, absent names and roots. */
	assert_string_equal(render("[{{ event.Items.2.Name }}]"), "[]");
	assert_string_equal(render("[{{ event.Items.x }}]"), "[]");
	assert_string_equal(render("[{{ event.ProductName.0 }}]"), "[]");
	assert_string_equal(render("[{{ event.Nope.Deeper }}]"), "[]");
	assert_string_equal(render("[{{ journey.coupon }}]"), "[]");
	assert_string_equal(render("[{{ organization.coupon }}]"), "[]");
	assert_string_equal(render("[{{ no_such_thing }}]"), "[]");
	assert_string_equal(render_with("[{{ first_name }}]", NULL), "[]");
}

static void
test_values(void **state)
{
	assert_string_equal(render("{{ points }}"), "1250");
	assert_string_equal(render("{{ ratio }}"), "12.5");
	assert_string_equal(render("{{ big }}"), "1000000");
	assert_string_equal(render("{{ vip }}/{{ optin }}"), "true/false");
	assert_string_equal(render("[{{ nothing }}]"), "[]");
	assert_string_equal(
	    render("[{{ event.Nested }}{{ event.Items }}]"), "[]");
	assert_string_equal(render("[{{ person }}]"), "[]");
	assert_string_equal(render_value("{{ event.v }}", "0.1"), "0.1");
	assert_string_equal(render_value("{{ event.v }}", "3.0"), "3");
	assert_string_equal(render_value("{{ event.v }}", "-0.0"), "0");
	assert_string_equal(render_value("{{ event.v }}", "-2.25"), "-2.25");
	assert_string_equal(
	    render_value("{{ event.v }}", "123456.789"), "123456.789");
	assert_string_equal(
	    render_value("{{ event.v }}", "0.000001"), "0.000001");
	assert_string_equal(render_value("{{ event.v }}", "1.5e-8"), "1.5e-8");
	assert_string_equal(render_value("{{ event.v }}", "1e21"), "1e+21");
	assert_string_equal(
	    render_value("{{ event.v }}", "1e20"), "100000000000000000000");
	assert_string_equal(
	    render_value("{{ event.v }}", "-9223372036854775807"),
	    "-9223372036854775807");
}

static void
test_default(void **state)
{
	assert_string_equal(render("{{ missing|default:'there' }}"), "there");
	assert_string_equal(render("{{ nothing|default:'null' }}"), "null");
	assert_string_equal(render("{{ empty|default:\"empty\" }}"), "empty");
	assert_string_equal(render("{{ zero|default:'x' }}"), "0");
	assert_string_equal(render("{{ optin|default:'x' }}"), "false");
	assert_string_equal(render("{{ first_name|default:'x' }}"), "józef");
	assert_string_equal(render("{{ missing|default:0 }}"), "0");
	assert_string_equal(render("{{ missing|default:-1.5 }}"), "-1.5");
	assert_string_equal(render("{{ missing|default:'' }}"), "");
	/* Filters before default see "" and pass it on. */
	assert_string_equal(render("{{ missing|upper|default:'y' }}"), "y");
	assert_string_equal(render("{{ missing|default:'ann'|title }}"), "Ann");
	assert_string_equal(
	    render("{{ event.Items.5.Name|default:'?' }}"), "?");
}

static void
test_title(void **state)
{
	assert_string_equal(render("{{ first_name|title }}"), "Józef");
	assert_string_equal(render("{{ last_name|title }}"), "O'Neil");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"they're here\""),
	    "They're Here");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"ÉMILE ZOLA\""),
	    "Émile Zola");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"jean-luc picard\""),
	    "Jean-Luc Picard");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"1st place, a1b\""),
	    "1st Place, A1b");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"анна каренина\""),
	    "Анна Каренина");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"ŁUKASZ ŻÓŁW\""),
	    "Łukasz Żółw");
	/* Final sigma at the end of a word. */
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"ΟΔΥΣΣΕΑΣ ΣΟΦΙΑ\""),
	    "Οδυσσεας Σοφια");
	/* Digraph title case, a decomposed accent, a typographic quote. */
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"ǆemal\""), "ǅemal");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"jo\\u0301zef\""),
	    "Jo\xcc\x81zef");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"d’artagnan\""),
	    "D’Artagnan");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"nguyễn văn an\""),
	    "Nguyễn Văn An");
	assert_string_equal(
	    render_value("{{ event.v|title }}", "\"東京 tokyo\""),
	    "東京 Tokyo");
}

static void
test_upper_lower_capfirst(void **state)
{
	assert_string_equal(render("{{ first_name|upper }}"), "JÓZEF");
	assert_string_equal(
	    render_value("{{ event.v|upper }}", "\"straße\""), "STRASSE");
	assert_string_equal(
	    render_value("{{ event.v|upper }}", "\"Ελληνικά\""), "ΕΛΛΗΝΙΚΆ");
	assert_string_equal(
	    render_value("{{ event.v|upper }}", "\"Việt Nam\""), "VIỆT NAM");
	assert_string_equal(
	    render_value("{{ event.v|upper }}", "\"ёлка ıi\""), "ЁЛКА II");
	assert_string_equal(
	    render_value("{{ event.v|upper }}", "\"şţ ăîâ ə\""), "ŞŢ ĂÎÂ Ə");
	assert_string_equal(
	    render_value("{{ event.v|lower }}", "\"ŁÓDŹ\""), "łódź");
	assert_string_equal(
	    render_value("{{ event.v|lower }}", "\"ΟΔΟΣ ΣΟΦΙΑ Σ\""),
	    "οδος σοφια σ");
	assert_string_equal(
	    render_value("{{ event.v|lower }}", "\"İSTANBUL\""), "istanbul");
	assert_string_equal(
	    render_value("{{ event.v|lower }}", "\"ＡＢＣ Ǆ\""), "ａｂｃ ǆ");
	assert_string_equal(render("{{ points|upper }}"), "1250");
	assert_string_equal(
	    render_value("{{ event.v|capfirst }}", "\"émile zola\""),
	    "Émile zola");
	assert_string_equal(
	    render_value("{{ event.v|capfirst }}", "\"hELLO\""), "HELLO");
	assert_string_equal(
	    render_value("[{{ event.v|capfirst }}]", "\"\""), "[]");
}

static void
test_truncate(void **state)
{
	assert_string_equal(render("{{ event.ProductName|truncate:30 }}"),
	    "Organic cotton t-shirt with a…");
	assert_string_equal(
	    render_value("{{ event.v|truncate:5 }}", "\"Hello world\""),
	    "Hell…");
	assert_string_equal(
	    render_value("{{ event.v|truncate:'5' }}", "\"Hello world\""),
	    "Hell…");
	assert_string_equal(
	    render_value("{{ event.v|truncate:11 }}", "\"Hello world\""),
	    "Hello world");
	assert_string_equal(
	    render_value("{{ event.v|truncate:1 }}", "\"ab\""), "…");
	assert_string_equal(
	    render_value("[{{ event.v|truncate:0 }}]", "\"ab\""), "[]");
	assert_string_equal(
	    render_value("{{ event.v|truncate:1 }}", "\"a\""), "a");
	/* Characters, not bytes: Cyrillic, emoji. */
	assert_string_equal(
	    render_value("{{ event.v|truncate:7 }}", "\"Привет, мир\""),
	    "Привет…");
	assert_string_equal(
	    render_value("{{ event.v|truncate:3 }}", "\"👍👍👍👍\""), "👍👍…");
	assert_string_equal(
	    render_value("{{ event.v|truncate:4 }}", "\"👍👍👍👍\""), "👍👍👍👍");
	/* What a reader sees as one character stays whole. */
	assert_string_equal(render_value("{{ event.v|truncate:2 }}",
				"\"👨‍👩‍👧👨‍👩‍👧x\""),
	    "👨‍👩‍👧…");
	assert_string_equal(render_value("{{ event.v|truncate:3 }}",
				"\"👨‍👩‍👧👨‍👩‍👧x\""),
	    "👨‍👩‍👧👨‍👩‍👧x");
	assert_string_equal(
	    render_value("{{ event.v|truncate:2 }}", "\"🇫🇷🇩🇪🇵🇱\""), "🇫🇷…");
	assert_string_equal(render_value("{{ event.v|truncate:2 }}",
				"\"e\\u0301e\\u0301e\\u0301\""),
	    "e\xcc\x81…");
	assert_string_equal(
	    render_value("{{ event.v|truncate:2 }}", "\"👍🏽👍🏽\""),
	    "👍🏽👍🏽");
	assert_string_equal(render_value("{{ event.v|truncate:2 }}",
				"\"👍🏽👍🏽👍🏽\""),
	    "👍🏽…");
	assert_string_equal(render("{{ points|truncate:3 }}"), "12…");
	assert_string_equal(render("[{{ missing|truncate:3 }}]"), "[]");
}

static void
test_money(void **state)
{
	assert_string_equal(render("{{ ratio|money }}"), "12.50");
	assert_string_equal(render("{{ ratio|money:'€' }}"), "€12.50");
	assert_string_equal(render("{{ ratio|money:'EUR' }}"), "12.50 EUR");
	assert_string_equal(render("{{ ratio|money:'zł ' }}"), "zł 12.50");
	assert_string_equal(render("{{ points|money }}"), "1250.00");
	assert_string_equal(render("{{ big|money }}"), "1000000.00");
	assert_string_equal(render("{{ zero|money }}"), "0.00");
	assert_string_equal(
	    render_value("{{ event.v|money:'$' }}", "-3"), "-$3.00");
	/* Half away from zero on the shortest decimal form. */
	assert_string_equal(
	    render_value("{{ event.v|money }}", "2.675"), "2.68");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "1.005"), "1.01");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "-1.005"), "-1.01");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "0.005"), "0.01");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "0.004"), "0.00");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "-0.004"), "0.00");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "9.995"), "10.00");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "999.999"), "1000.00");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "1e-9"), "0.00");
	assert_string_equal(render_value("{{ event.v|money }}", "0.1"), "0.10");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "12345678901234"),
	    "12345678901234.00");
	/* Numeric text is a number; other text passes unchanged. */
	assert_string_equal(
	    render_value("{{ event.v|money }}", "\" 4.5 \""), "4.50");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "\"N/A\""), "N/A");
	assert_string_equal(
	    render_value("{{ event.v|money }}", "true"), "true");
	assert_string_equal(render("{{ missing|money|default:'?' }}"), "?");
}

static void
test_date(void **state)
{
	assert_string_equal(
	    render("{{ event.PlacedAt|date:'%d/%m' }}"), "05/03");
	assert_string_equal(render("{{ event.PlacedAt|date }}"), "2024-03-05");
	assert_string_equal(
	    render("{{ event.Epoch|date:'%F %T' }}"), "2024-03-05 14:07:09");
	assert_string_equal(
	    render("{{ event.PlacedAt|date:'%A %-d %B %Y, %a %b %e' }}"),
	    "Tuesday 5 March 2024, Tue Mar  5");
	assert_string_equal(
	    render("{{ event.PlacedAt|date:'%I:%M %p|%-I|%j|%y|100%%' }}"),
	    "02:07 PM|2|065|24|100%");
	assert_string_equal(render_value("{{ event.v|date:'%F %T' }}",
				"\"2024-03-05T23:30:00-02:00\""),
	    "2024-03-06 01:30:00");
	assert_string_equal(render_value("{{ event.v|date:'%F %T' }}",
				"\"2024-03-05 14:07:09.123+0100\""),
	    "2024-03-05 13:07:09");
	assert_string_equal(render_value("{{ event.v|date:'%F %T' }}",
				"\"2024-03-05t14:07+05\""),
	    "2024-03-05 09:07:00");
	assert_string_equal(render_value("{{ event.v|date:'%F %T' }}",
				"\"2016-12-31T23:59:60Z\""),
	    "2016-12-31 23:59:59");
	assert_string_equal(
	    render_value("{{ event.v|date }}", "\"2024-02-29\""), "2024-02-29");
	assert_string_equal(
	    render_value("{{ event.v|date:'%F %T' }}", "1709647629.9"),
	    "2024-03-05 14:07:09");
	assert_string_equal(
	    render_value("{{ event.v|date }}", "\"0\""), "1970-01-01");
	assert_string_equal(render_value("{{ event.v|date:'%F %T' }}", "-1"),
	    "1969-12-31 23:59:59");
	assert_string_equal(
	    render_value("{{ event.v|date }}", "\"0001-01-01\""), "0001-01-01");
	assert_string_equal(render_value("{{ event.v|date:'%F %T %A' }}",
				"\"9999-12-31T23:59:59Z\""),
	    "9999-12-31 23:59:59 Friday");
	/* Not dates: nothing. */
	assert_string_equal(
	    render_value("[{{ event.v|date }}]", "\"2023-02-29\""), "[]");
	assert_string_equal(
	    render_value("[{{ event.v|date }}]", "\"2024-03-05T24:00Z\""),
	    "[]");
	assert_string_equal(
	    render_value("[{{ event.v|date }}]", "\"next tuesday\""), "[]");
	assert_string_equal(
	    render_value("[{{ event.v|date }}]", "\"2024-03-05T10:00Zjunk\""),
	    "[]");
	assert_string_equal(render_value("[{{ event.v|date }}]", "1e15"), "[]");
	assert_string_equal(render_value("[{{ event.v|date }}]", "true"), "[]");
	assert_string_equal(
	    render("{{ missing|date|default:'soon' }}"), "soon");
}

/* The date filter agrees with gmtime_r/strftime over six centuries. */
static void
test_date_against_gmtime(void **state)
{
	struct template *template;
	const char *format = "%Y-%m-%d %H:%M:%S %j %a %A %b %B %I %p";
	char text[128], expected[128], number[32];
	json_t *with;
	struct tm tm;
	time_t epoch;
	size_t length;
	long long step;

	snprintf(text, sizeof(text), "{{ event.v|date:'%s' }}", format);
	template = template_compile(text, strlen(text), 1, NULL, 0, NULL);
	assert_non_null(template);
	for (step = -11000000000LL; step < 20000000000LL;
	     step += 86399LL * 53 + 3607) {
		epoch = (time_t)step;
		assert_non_null(gmtime_r(&epoch, &tm));
		strftime(expected, sizeof(expected),
		    "%Y-%m-%d %H:%M:%S %j %a %A %b %B %I %p", &tm);
		snprintf(number, sizeof(number), "%lld", step);
		with = json_pack("{s:{s:I}}", "event", "v", (json_int_t)step);
		assert_int_equal(template_render(template, with, rendered,
				     sizeof(rendered), &length),
		    TEMPLATE_OK);
		json_decref(with);
		if (strcmp(rendered, expected) != 0)
			fail_msg("epoch %s: %s, gmtime says %s", number,
			    rendered, expected);
	}
	template_free(template);
}

static void
test_urlencode(void **state)
{
	assert_string_equal(
	    render_value("{{ event.v|urlencode }}", "\"a b&c/d?é\""),
	    "a%20b%26c/d%3F%C3%A9");
	assert_string_equal(
	    render_value("{{ event.v|urlencode:'' }}", "\"a/b\""), "a%2Fb");
	assert_string_equal(
	    render_value("{{ event.v|urlencode:'/&=' }}", "\"x=1&y=2 3\""),
	    "x=1&y=2%203");
	assert_string_equal(
	    render_value("{{ event.v|urlencode }}", "\"françois & jill\""),
	    "fran%C3%A7ois%20%26%20jill");
	assert_string_equal(
	    render("{{ first_name|title|urlencode }}"), "J%C3%B3zef");
	assert_string_equal(
	    render_value("{{ event.v|urlencode }}", "\"-._~\""), "-._~");
}

static void
test_syntax(void **state)
{
	assert_string_equal(render("{{first_name}}"), "józef");
	assert_string_equal(
	    render("{{   first_name   |  title  |  default : 'x'  }}"),
	    "Józef");
	assert_string_equal(render("{{\n\tfirst_name\n\t|title\n}}"), "Józef");
	assert_string_equal(
	    render("{{ missing|default:\"say \\\"hi\\\"\" }}"), "say \"hi\"");
	assert_string_equal(render("{{ missing|default:'it\\'s' }}"), "it's");
	assert_string_equal(
	    render("{{ missing|default:'a\\\\b\\n' }}"), "a\\b\\n");
	/* Quotes protect }} and |. */
	assert_string_equal(render("{{ missing|default:'a}}|b' }}!"), "a}}|b!");
	assert_string_equal(
	    render("{{ missing|default:'{{ x }}' }}"), "{{ x }}");
	assert_string_equal(
	    render("{{ first_name|lower|upper|lower|upper|lower|title }}"),
	    "Józef");
}

struct compile_error_case {
	const char *text;
	int first_line;
	const char *error;
	int line;
};

static void
test_compile_errors(void **state)
{
	static const struct compile_error_case cases[] = {
	    {"Hi {{ first_name", 10, "unclosed '{{'", 10},
	    {"a\nb\n{{ x|default:'there'", 1, "unclosed '{{'", 3},
	    {"{{ x|title", 1, "unclosed '{{'", 1},
	    {"{{ x|", 1, "unclosed '{{'", 1},
	    {"{{ x|default:", 1, "unclosed '{{'", 1},
	    {"{{ x }", 1, "unexpected '}' in variable (expected '|' or '}}')",
		1},
	    {"line1\nline2 {{ first_name|titel }}", 5, "unknown filter 'titel'",
		6},
	    {"{{ x|truncate }}", 1,
		"filter 'truncate' needs a number (0 to "
		"100000)",
		1},
	    {"{{ x|truncate:'abc' }}", 1,
		"filter 'truncate' needs a number (0 to 100000)", 1},
	    {"{{ x|truncate:-1 }}", 1,
		"filter 'truncate' needs a number (0 to 100000)", 1},
	    {"{{ x|truncate:2.5 }}", 1,
		"filter 'truncate' needs a number (0 to 100000)", 1},
	    {"{{ x|truncate:100001 }}", 1,
		"filter 'truncate' needs a number (0 to 100000)", 1},
	    {"{{ }}", 1, "empty variable", 1},
	    {"\n{{|upper}}", 7, "empty variable", 8},
	    {"\n\n{{ x|default:'abc }}", 1, "unterminated string", 3},
	    {"{{ x|default:\"a\n\nb }}", 4, "unterminated string", 4},
	    {"Hi {% if first_name %}", 2,
		"tags ('{%') are not supported: only {{ variables }} with "
		"filters",
		2},
	    {"{{ x|upper:'a' }}", 1, "filter 'upper' takes no argument", 1},
	    {"{{ x|title:1 }}", 1, "filter 'title' takes no argument", 1},
	    {"{{ x|default }}", 1, "filter 'default' needs an argument", 1},
	    {"{{ x|default:there }}", 1,
		"filter 'default': the argument must be a quoted string or a "
		"number",
		1},
	    {"{{ x|default:12ab }}", 1,
		"filter 'default': the argument must be a quoted string or a "
		"number",
		1},
	    {"{{ first name }}", 1,
		"unexpected 'n' in variable (expected '|' or '}}')", 1},
	    {"{{ x 'a' }}", 1,
		"unexpected ''' in variable (expected '|' or '}}')", 1},
	    {"{{ {{ x }}", 1, "unexpected '{' in variable", 1},
	    {"{{ event. }}", 1, "expected a name after '.'", 1},
	    {"{{ event..x }}", 1, "expected a name after '.'", 1},
	    {"{{ x| }}", 1, "expected a filter name after '|'", 1},
	    {"{{ x|'a' }}", 1, "expected a filter name after '|'", 1},
	    {"{{ x|date:'%Q' }}", 1,
		"filter 'date': unsupported conversion "
		"'%Q'",
		1},
	    {"{{ x|date:'%-' }}", 1, "filter 'date': format ends with '%'", 1},
	    {"{{ x|date:'%d/%' }}", 1, "filter 'date': format ends with '%'",
		1},
	    {"ok\n\xff", 1, "invalid UTF-8", 2},
	    {"{{ x|default:'\xc3' }}", 1, "invalid UTF-8", 1},
	    {"{{ x\x01 }}", 1,
		"unexpected byte 0x01 in variable (expected '|' or '}}')", 1},
	};
	struct template *template;
	char error[160];
	size_t i;
	int line;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		line = -1;
		template =
		    template_compile(cases[i].text, strlen(cases[i].text),
			cases[i].first_line, error, sizeof(error), &line);
		if (template != NULL)
			fail_msg("'%s' compiled", cases[i].text);
		if (strcmp(error, cases[i].error) != 0 || line != cases[i].line)
			fail_msg("'%s': got %d: %s; want %d: %s", cases[i].text,
			    line, error, cases[i].line, cases[i].error);
	}
}

static void
test_compile_limits(void **state)
{
	char text[TEMPLATE_TEXT_MAX + 64], error[64];
	struct template *template;
	size_t length;
	int line, i;

	/* 32 filters are fine, 33 are not. */
	length = (size_t)snprintf(text, sizeof(text), "{{ first_name");
	for (i = 0; i < TEMPLATE_FILTERS_MAX; i++)
		length += (size_t)snprintf(
		    text + length, sizeof(text) - length, "|lower");
	snprintf(text + length, sizeof(text) - length, " }}");
	assert_string_equal(render(text), "józef");
	snprintf(text + length, sizeof(text) - length, "|upper }}");
	assert_null(template_compile(
	    text, strlen(text), 1, error, sizeof(error), &line));
	assert_string_equal(error, "too many filters (at most 32)");

	/* 16 names in a path, not 17. */
	strcpy(text, "{{ a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p }}");
	assert_string_equal(render(text), "");
	strcpy(text, "{{ a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q }}");
	assert_null(template_compile(
	    text, strlen(text), 1, error, sizeof(error), &line));
	assert_string_equal(error, "path too deep (at most 16 names)");

	/* 4096 bytes of source at most; the most nodes and filters fit. */
	for (i = 0; i + 5 <= TEMPLATE_TEXT_MAX; i += 5)
		memcpy(text + i, "{{x}}", 5);
	memset(text + i, 'y', TEMPLATE_TEXT_MAX - (size_t)i);
	template = template_compile(
	    text, TEMPLATE_TEXT_MAX, 1, error, sizeof(error), &line);
	assert_non_null(template);
	template_free(template);
	memcpy(text, "{{x", 3);
	for (i = 3; i + 5 <= TEMPLATE_TEXT_MAX - 2; i += 5)
		memcpy(text + i, "|date", 5);
	memset(text + i, ' ', TEMPLATE_TEXT_MAX - 2 - (size_t)i);
	memcpy(text + TEMPLATE_TEXT_MAX - 2, "}}", 2);
	assert_null(template_compile(
	    text, TEMPLATE_TEXT_MAX, 1, error, sizeof(error), &line));
	assert_string_equal(error, "too many filters (at most 32)");
	memset(text, 'z', TEMPLATE_TEXT_MAX + 1);
	assert_null(template_compile(
	    text, TEMPLATE_TEXT_MAX + 1, 3, error, sizeof(error), &line));
	assert_string_equal(error, "template longer than 4096 bytes");
	assert_int_equal(line, 3);

	/* A short error buffer is cut safely; NULL error and line are fine. */
	assert_null(template_compile("{{ x|titel }}", 13, 1, error, 8, &line));
	assert_string_equal(error, "unknown");
	assert_null(template_compile("{{ x|titel }}", 13, 1, NULL, 0, NULL));
	assert_null(template_compile(NULL, 3, 1, error, sizeof(error), &line));
	template = template_compile(NULL, 0, 1, error, sizeof(error), &line);
	assert_non_null(template);
	template_free(template);
	template_free(NULL);
}

static void
test_render_bounds(void **state)
{
	struct template *template;
	char out[16], big_value[TEMPLATE_VALUE_MAX + 100];
	static char big_out[3 * TEMPLATE_VALUE_MAX];
	size_t length = 99;
	json_t *with;

	template =
	    template_compile("Hi {{ first_name }}", 19, 1, NULL, 0, NULL);
	assert_non_null(template);
	/* "Hi józef" is 9 bytes: 10 with the NUL fit, 9 do not. */
	assert_int_equal(
	    template_render(template, context, out, 10, &length), TEMPLATE_OK);
	assert_int_equal(length, 9);
	assert_string_equal(out, "Hi józef");
	memset(out, 'x', sizeof(out));
	assert_int_equal(template_render(template, context, out, 9, &length),
	    TEMPLATE_ERR_SPACE);
	assert_int_equal(length, 0);
	assert_int_equal(out[0], '\0');
	/* Never half a character: "ó" does not squeeze into the end. */
	assert_int_equal(template_render(template, context, out, 6, &length),
	    TEMPLATE_ERR_SPACE);
	assert_int_equal(template_render(template, context, out, 0, &length),
	    TEMPLATE_ERR_ARGUMENT);
	assert_int_equal(template_render(NULL, context, out, 10, &length),
	    TEMPLATE_ERR_ARGUMENT);
	assert_int_equal(template_render(template, context, NULL, 10, &length),
	    TEMPLATE_ERR_ARGUMENT);
	assert_int_equal(
	    template_render(template, context, out, 10, NULL), TEMPLATE_OK);
	template_free(template);

	/* A value over TEMPLATE_VALUE_MAX: fine as is, not through a filter. */
	memset(big_value, 'a', sizeof(big_value) - 1);
	big_value[sizeof(big_value) - 1] = '\0';
	with = json_pack("{s:{s:s}}", "event", "v", big_value);
	assert_string_equal(render_with("{{ event.v }}", with), big_value);
	template =
	    template_compile("{{ event.v|upper }}", 19, 1, NULL, 0, NULL);
	assert_int_equal(
	    template_render(template, with, big_out, sizeof(big_out), &length),
	    TEMPLATE_ERR_VALUE);
	template_free(template);
	/* Truncated first, it fits. */
	template = template_compile(
	    "{{ event.v|truncate:10|upper }}", 31, 1, NULL, 0, NULL);
	assert_int_equal(
	    template_render(template, with, big_out, sizeof(big_out), &length),
	    TEMPLATE_OK);
	assert_string_equal(big_out, "AAAAAAAAA…");
	template_free(template);
	json_decref(with);
}

/* Bad UTF-8 smuggled into the context comes out as U+FFFD. */
static void
test_invalid_utf8_value(void **state)
{
	json_t *with = json_pack("{s:{s:o}}", "event", "v",
	    json_stringn_nocheck("a\xff"
				 "b\xc3",
		4));

	assert_string_equal(render_with("{{ event.v }}", with),
	    "a\xef\xbf\xbd"
	    "b\xef\xbf\xbd");
	assert_string_equal(render_with("{{ event.v|upper }}", with),
	    "A\xef\xbf\xbd"
	    "B\xef\xbf\xbd");
	assert_string_equal(
	    render_with("{{ event.v|truncate:2 }}", with), "a…");
	json_decref(with);
}

static void
test_measure(void **state)
{
	struct template_measure measure;
	char text[400];

	memset(text, 'a', 161);
	assert_int_equal(template_measure(text, 160, &measure), TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_DEFAULT);
	assert_int_equal(measure.characters, 160);
	assert_int_equal(measure.units, 160);
	assert_int_equal(measure.parts, 1);
	assert_int_equal(template_measure(text, 161, &measure), TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_DEFAULT);
	assert_int_equal(measure.parts, 2);
	/* 153 septets per part with a 6-octet UDH. */
	memset(text, 'a', 307);
	assert_int_equal(template_measure(text, 306, &measure), TEMPLATE_OK);
	assert_int_equal(measure.parts, 2);
	assert_int_equal(template_measure(text, 307, &measure), TEMPLATE_OK);
	assert_int_equal(measure.parts, 3);
	/* "€" is an escape pair: 159 + 2 septets need two parts. */
	memset(text, 'a', 159);
	memcpy(text + 159, "€", 3);
	assert_int_equal(template_measure(text, 162, &measure), TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_DEFAULT);
	assert_int_equal(measure.characters, 160);
	assert_int_equal(measure.units, 161);
	assert_int_equal(measure.parts, 2);
	/* One character outside GSM flips the whole text to UCS-2. */
	memset(text, 'a', 69);
	memcpy(text + 69, "ł", 2);
	assert_int_equal(template_measure(text, 71, &measure), TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_UCS2);
	assert_int_equal(measure.characters, 70);
	assert_int_equal(measure.parts, 1);
	memcpy(text + 69, "ał", 3);
	assert_int_equal(template_measure(text, 72, &measure), TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_UCS2);
	assert_int_equal(measure.parts, 2);
	/* An emoji is two UTF-16 units. */
	assert_int_equal(template_measure("👍", 4, &measure), TEMPLATE_OK);
	assert_int_equal(measure.units, 2);
	assert_int_equal(
	    template_measure("\xff", 1, &measure), TEMPLATE_ERR_ARGUMENT);
	/* A rendered accented name flips the message to UCS-2. */
	render("Hi {{ first_name|title }}!");
	assert_int_equal(template_measure(rendered, strlen(rendered), &measure),
	    TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_UCS2);
	render("Hi {{ first_name|title|truncate:2 }}!");
	assert_string_equal(rendered, "Hi J…!");
	assert_int_equal(template_measure(rendered, strlen(rendered), &measure),
	    TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_UCS2);
}

static const char abandoned_cart[] =
    "Hi {{ first_name|title|default:'there' }}, you left "
    "{{ event.ItemCount }} items at {{ organization.name }}:\n"
    "{{ event.Items.0.Name }}, {{ event.Items.1.Name|lower }} and more, "
    "{{ event.Value|money:'€' }} in total.\n"
    "{% if vip %}";

/* A realistic message, from compile to the parts it goes out in. */
static void
test_abandoned_cart(void **state)
{
	char text[512], error[128];
	struct template *template;
	struct template_measure measure;
	json_t *anonymous;
	size_t length;
	int line;

	/* As the rule parser sees it: starting on line 12 of the file. */
	assert_null(template_compile(abandoned_cart, strlen(abandoned_cart), 12,
	    error, sizeof(error), &line));
	assert_int_equal(line, 14);
	assert_non_null(strstr(error, "not supported"));

	snprintf(text, sizeof(text), "%.*s%s",
	    (int)(strlen(abandoned_cart) - strlen("{% if vip %}")),
	    abandoned_cart,
	    "Finish your order: {{ event.URL }}\nReply STOP to opt out");
	template = template_compile(
	    text, strlen(text), 12, error, sizeof(error), &line);
	assert_non_null(template);
	assert_int_equal(template_render(template, context, rendered,
			     sizeof(rendered), &length),
	    TEMPLATE_OK);
	assert_string_equal(rendered,
	    "Hi Józef, you left 3 items at Acme & Co:\n"
	    "Socks, hat and more, €59.90 in total.\n"
	    "Finish your order: https://shop.example/cart?id=42\n"
	    "Reply STOP to opt out");
	assert_int_equal(
	    template_measure(rendered, length, &measure), TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_UCS2);
	assert_int_equal(measure.characters, 151);
	assert_int_equal(measure.parts, 3); /* 67 UTF-16 units a part */

	/* Someone without a name or accents: GSM-7, "€" costs two septets. */
	anonymous = json_deep_copy(context);
	json_object_del(json_object_get(anonymous, "person"), "first_name");
	json_object_del(
	    json_object_get(json_object_get(anonymous, "person"), "properties"),
	    "first_name");
	assert_int_equal(template_render(template, anonymous, rendered,
			     sizeof(rendered), &length),
	    TEMPLATE_OK);
	assert_string_equal(rendered,
	    "Hi there, you left 3 items at Acme & Co:\n"
	    "Socks, hat and more, €59.90 in total.\n"
	    "Finish your order: https://shop.example/cart?id=42\n"
	    "Reply STOP to opt out");
	assert_int_equal(
	    template_measure(rendered, length, &measure), TEMPLATE_OK);
	assert_int_equal(measure.data_coding, SMPP_CODING_DEFAULT);
	assert_int_equal(measure.characters, 151);
	assert_int_equal(measure.units, 152);
	assert_int_equal(measure.parts, 1);
	json_decref(anonymous);
	template_free(template);
}

/* Rendering does not change the template: contexts can take turns. */
static void
test_template_reused(void **state)
{
	struct template *template;
	json_t *a = json_pack("{s:{s:s}}", "person", "first_name", "ann");
	json_t *b = json_pack("{s:{s:s}}", "person", "first_name", "BOB");
	size_t length;
	int i;

	template = template_compile(
	    "{{ first_name|title|default:'x' }}", 34, 1, NULL, 0, NULL);
	assert_non_null(template);
	for (i = 0; i < 3; i++) {
		template_render(
		    template, a, rendered, sizeof(rendered), &length);
		assert_string_equal(rendered, "Ann");
		template_render(
		    template, b, rendered, sizeof(rendered), &length);
		assert_string_equal(rendered, "Bob");
		template_render(
		    template, NULL, rendered, sizeof(rendered), &length);
		assert_string_equal(rendered, "x");
	}
	template_free(template);
	json_decref(a);
	json_decref(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literals),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_default),
	    cmocka_unit_test(test_title),
	    cmocka_unit_test(test_upper_lower_capfirst),
	    cmocka_unit_test(test_truncate),
	    cmocka_unit_test(test_money),
	    cmocka_unit_test(test_date),
	    cmocka_unit_test(test_date_against_gmtime),
	    cmocka_unit_test(test_urlencode),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_compile_errors),
	    cmocka_unit_test(test_compile_limits),
	    cmocka_unit_test(test_render_bounds),
	    cmocka_unit_test(test_invalid_utf8_value),
	    cmocka_unit_test(test_measure),
	    cmocka_unit_test(test_abandoned_cart),
	    cmocka_unit_test(test_template_reused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
