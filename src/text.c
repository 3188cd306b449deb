/*
 * text.c - bounded copies of text into the fixed-size fields of records.
 *
 * Why not snprintf("%s"): these copies run for every part sent and every
 * receipt, and snprintf's format machinery was a tenth of the relay's
 * instructions. Cutting to fit is right for what goes through here (names,
 * numbers, ids and codes, each field sized for the longest valid value).
 */
#include <string.h>

#include "nudged.h"

void
text_copy(char *out, size_t size, const char *text)
{
	text_copy_length(out, size, text, strnlen(text, size - 1));
}

void
text_copy_length(char *out, size_t size, const char *text, size_t length)
{
	if (length > size - 1)
		length = size - 1;
	memcpy(out, text, length);
	out[length] = '\0';
}
