/*
 * fuzz_template.c - libFuzzer target for the template engine. The input is
 * a template source:
 *
 *  - if it does not compile, there is a reason and a line within the text;
 *  - if it compiles, rendering with a fixed context (every JSON type, Greek,
 *    Cyrillic, emoji sequences, dates, a value with malformed UTF-8) gives
 *    valid UTF-8 that smpp/ can measure, the same bytes every time, and
 *    fits a buffer of exactly its size but not one byte less (heap buffers,
 *    so AddressSanitizer sees any write past the end).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nudged.h"
#include "smpp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char context_json[] =
    "{\"person\": {\"first_name\": \"józef\", \"last_name\": \"O'NEIL\","
    " \"email\": \"a@b.example\", \"language\": \"el\","
    " \"properties\": {\"tier\": \"ΟΔΥΣΣΕΑΣ\", \"points\": 1250,"
    "  \"ratio\": 12.5, \"tiny\": 1.5e-8, \"huge\": 1e300, \"neg\": -0.005,"
    "  \"yes\": true, \"no\": false, \"nothing\": null, \"empty\": \"\"}},"
    " \"event\": {\"URL\": \"https://shop.example/c?id=1&x=é\","
    "  \"Name\": \"Привет, мир 👨‍👩‍👧 🇫🇷 "
    "e\\u0301 👍🏽 ǆ straße İı\","
    "  \"Items\": [{\"Name\": \"Socks\", \"Price\": 4.5}, [1, 2], null],"
    "  \"When\": \"2024-03-05T23:30:00.5-02:00\", \"Epoch\": 1709647629,"
    "  \"Old\": -62135596800, \"Price\": \"19.999\","
    "  \"Long\": \"" /* long, in four scripts */
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "ąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąąą"
    "€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€"
    "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"
    "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"},"
    " \"organization\": {\"name\": \"Acme & Co\"},"
    " \"journey\": {\"name\": \"cart\", \"step\": 2},"
    " \"coupon\": \"SAVE10\"}";

static json_t *context;
static char out[1 << 20];

/* Crashes the fuzzer on a broken invariant, with a findable frame. */
static void
check(int condition)
{
	if (!condition)
		abort();
}

static void
context_build(void)
{
	context = json_loads(context_json, 0, NULL);
	check(context != NULL);
	/* jansson would refuse it; a careless producer might not. */
	json_object_set_new(json_object_get(context, "event"), "Bad",
	    json_stringn_nocheck("x\xff\xc3y\xed\xa0\x80", 7));
}

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct template_measure measure;
	struct template *template;
	char error[128], *exact;
	size_t length, again, i;
	int line = -1, newlines = 0, status;

	if (context == NULL)
		context_build();
	for (i = 0; i < size; i++)
		newlines += text[i] == '\n';

	template = template_compile(text, size, 1, error, sizeof(error), &line);
	if (template == NULL) {
		check(error[0] != '\0');
		check(line >= 1 && line <= 1 + newlines);
		return 0;
	}
	check(size <= TEMPLATE_TEXT_MAX);

	status = template_render(template, context, out, sizeof(out), &length);
	check(status == TEMPLATE_OK || status == TEMPLATE_ERR_VALUE);
	if (status != TEMPLATE_OK) {
		check(out[0] == '\0');
		template_free(template);
		return 0;
	}
	check(length < sizeof(out) && out[length] == '\0');
	check(valid_utf8(out, length));
	check(template_measure(out, length, &measure) == TEMPLATE_OK);
	check(measure.parts >= 1);
	check(measure.data_coding == SMPP_CODING_DEFAULT ||
	      measure.data_coding == SMPP_CODING_UCS2);

	/* Exactly its size fits and is the same text; one byte less not. */
	exact = malloc(length + 1);
	check(exact != NULL);
	check(template_render(template, context, exact, length + 1, &again) ==
	      TEMPLATE_OK);
	check(again == length && memcmp(exact, out, length + 1) == 0);
	if (length > 0) {
		check(template_render(template, context, exact, length,
			  &again) == TEMPLATE_ERR_SPACE);
		check(exact[0] == '\0' && again == 0);
	}
	free(exact);

	/* Without a context every value is missing; still valid output. */
	check(template_render(template, NULL, out, sizeof(out), &length) ==
		  TEMPLATE_OK ||
	      out[0] == '\0');
	check(valid_utf8(out, length));
	template_free(template);
	return 0;
}
