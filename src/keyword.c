/*
 * keyword.c - compliance keywords, the first step of the inbound chain.
 *
 * Every inbound text is normalised before matching: ASCII upper case,
 * Latin accents folded (ARRÊT -> ARRET), apostrophes dropped (DON'T ->
 * DONT), every other non-letter a word break; then polite filler (PLEASE,
 * ME, NOW, THANKS, PER FAVORE, MERCI, ...) is set aside. What is left is
 *
 *   - one or more words of ONE list, nothing else ("STOP", "Stop!!!",
 *     "please unsubscribe me", "opt-out", "HELP"): that list's action;
 *   - a clear opt-out sentence: an opt-out word followed by what it stops
 *     ("stop texting me", "STOP all messages"), or an unambiguous opt-out
 *     word anywhere (UNSUBSCRIBE, STOPALL, OPT OUT, DESABONNER, ...); in
 *     both cases only when no negation (DONT, NOT, NEVER, NON, PAS) comes
 *     before it, so "don't stop" is not an opt-out.
 *
 * Everything else is not a keyword and goes down the chain. In particular
 * a word that is also ordinary speech (STOP, END, QUIT, CANCEL, BASTA)
 * inside a sentence without a messaging object is NOT an opt-out: "stop
 * by the shop", "cancel my order", "end of season?" reach conversations and
 * ESMEs. The person's unambiguous way out, STOP alone, always works.
 *
 * Actions: an opt-out unsubscribes at once (consent source keyword) and
 * gets ONE transactional confirmation. START/UNSTOP subscribe again; YES
 * does when the number is unsubscribed; Y/YES confirm a pending double
 * opt-in; otherwise Y and YES pass on (they may answer a flow's question).
 * HELP/INFO get the help text. Replies come from the number the person
 * wrote to (or compliance.from), in the profile's language, else the
 * language of the word's list, else compliance.default_language.
 *
 * ESMEs: when compliance.stop_to_esme is on (default) and an ESME account
 * owns the destination (its mo_destinations / mo_keywords), the opt-out is
 * recorded here AND relayed to that ESME, because carriers and aggregators
 * keep their own lists in step with STOP; the confirmation is then left to
 * the ESME's program, so the person still gets one confirmation, not two.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nudged.h"

#define KEYWORD_LANGUAGES_MAX 16
#define KEYWORD_WORDS_MAX     32 /* per list */
#define KEYWORD_WORD_SIZE     40
#define KEYWORD_TEXT_SIZE     512 /* normalised inbound text */
#define KEYWORD_TOKENS_MAX    24
#define KEYWORD_REPLY_SIZE    640

enum keyword_list {
	LIST_OPT_OUT = 0,
	LIST_HELP,
	LIST_CONFIRM,
	LIST_OPT_IN,
	LIST_COUNT
};

/* What a whole-message match of each list means, in priority order. */
static const enum keyword_action keyword_list_actions[LIST_COUNT] = {
    [LIST_OPT_OUT] = KEYWORD_OPT_OUT,
    [LIST_HELP] = KEYWORD_HELP,
    [LIST_CONFIRM] = KEYWORD_CONFIRM,
    [LIST_OPT_IN] = KEYWORD_OPT_IN,
};

/* The shipped defaults of one language; a [language CODE] overrides. */
struct keyword_defaults {
	const char *name;
	const char *lists[LIST_COUNT]; /* comma-separated */
	const char *texts[KEYWORD_TEXT_COUNT];
};

static const struct keyword_defaults keyword_shipped[] = {
    {"en",
	{"STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPT OUT, "
	 "OPTOUT",
	    "HELP, INFO", "Y, YES", "START, UNSTOP, YES"},
	{"{program}: You are unsubscribed and will receive no more "
	 "messages. Reply START to resubscribe.",
	    "{program}: You are subscribed. {frequency}. Msg&data rates "
	    "may apply. Reply HELP for help, STOP to cancel.",
	    "{program}: Help at {contact}. {frequency}. Msg&data rates may "
	    "apply. Reply STOP to cancel.",
	    "{program}: Reply Y to confirm your subscription. {frequency}. "
	    "Msg&data rates may apply. Reply STOP to cancel.",
	    "{program}: your code is {code}. Enter it to confirm your "
	    "subscription."}},
    {"it",
	{"STOP, BASTA, CANCELLA, CANCELLAMI, DISISCRIVI, DISISCRIVIMI, "
	 "ANNULLA",
	    "AIUTO, INFO", "SI", "START, ISCRIVIMI"},
	{"{program}: non riceverai piu messaggi. Rispondi START per "
	 "iscriverti di nuovo.",
	    "{program}: iscrizione attiva. {frequency}. Costi di messaggi e "
	    "dati possibili. Rispondi AIUTO per aiuto, STOP per annullare.",
	    "{program}: assistenza {contact}. {frequency}. Costi di "
	    "messaggi e dati possibili. Rispondi STOP per annullare.",
	    "{program}: rispondi SI per confermare l'iscrizione. "
	    "{frequency}. Rispondi STOP per annullare.",
	    "{program}: il tuo codice e {code}. Inseriscilo per confermare "
	    "l'iscrizione."}},
    {"fr",
	{"STOP, ARRET, ARRÊT, DESABONNER, DÉSABONNER, DESINSCRIRE, "
	 "DÉSINSCRIRE",
	    "AIDE, INFO", "OUI", "START, REPRENDRE"},
	{"{program} : vous etes desinscrit et ne recevrez plus de "
	 "messages. Repondez START pour vous reinscrire.",
	    "{program} : inscription confirmee. {frequency}. Cout d'un SMS "
	    "possible. Repondez AIDE pour aide, STOP pour arreter.",
	    "{program} : aide {contact}. {frequency}. Cout d'un SMS "
	    "possible. Repondez STOP pour arreter.",
	    "{program} : repondez OUI pour confirmer votre inscription. "
	    "{frequency}. Repondez STOP pour arreter.",
	    "{program} : votre code est {code}. Saisissez-le pour "
	    "confirmer votre inscription."}},
};

#define KEYWORD_SHIPPED_COUNT \
	(sizeof(keyword_shipped) / sizeof(keyword_shipped[0]))

/* Polite words that do not change what a keyword message says. */
static const char *const keyword_filler[] = {
    "PLEASE",
    "PLS",
    "PLZ",
    "ME",
    "NOW",
    "THANKS",
    "THANK",
    "YOU",
    "THX",
    "ASAP",
    "JUST",
    "OK",
    "OKAY",
    "IT",
    "THIS",
    "THAT",
    "THESE",
    "HI",
    "HELLO",
    "IMMEDIATELY",
    "PER",
    "FAVORE",
    "GRAZIE",
    "MERCI",
    "SVP",
    "SIL",
    "VOUS",
    "PLAIT",
    "ORA",
    "SUBITO",
};

/* After an opt-out word, these make a sentence a clear opt-out. */
static const char *const keyword_messaging[] = {
    "TEXTING",
    "TEXT",
    "TEXTS",
    "MESSAGING",
    "MESSAGE",
    "MESSAGES",
    "MSG",
    "MSGS",
    "SENDING",
    "SEND",
    "SMS",
    "SMSES",
    "CONTACTING",
    "ALL",
    "SPAM",
    "SPAMMING",
    "MESSAGGI",
    "SCRIVERMI",
    "INVIARMI",
    "ENVOYER",
    "ENVOIS",
    "NOTIFICATIONS",
    "ALERTS",
    "PROMOTIONS",
    "MARKETING",
};

/* Opt-out words that mean nothing else, so they count anywhere. */
static const char *const keyword_unambiguous[] = {
    "UNSUBSCRIBE",
    "STOPALL",
    "OPT OUT",
    "OPTOUT",
    "DESABONNER",
    "DESINSCRIRE",
    "DISISCRIVI",
    "DISISCRIVIMI",
    "CANCELLAMI",
};

/* Before a keyword, these turn it around. */
static const char *const keyword_negations[] = {
    "DONT",
    "NOT",
    "NEVER",
    "CANT",
    "CANNOT",
    "WONT",
    "DIDNT",
    "NON",
    "NE",
    "PAS",
};

/* One language at run time: normalised word lists and its texts. */
struct keyword_language {
	char name[KEYWORD_LANGUAGE_SIZE];
	char words[LIST_COUNT][KEYWORD_WORDS_MAX][KEYWORD_WORD_SIZE];
	size_t word_count[LIST_COUNT];
	const char *texts[KEYWORD_TEXT_COUNT];
};

/* A text cut into words: offsets into the normalised buffer. */
struct keyword_tokens {
	char text[KEYWORD_TEXT_SIZE];
	const char *words[KEYWORD_TOKENS_MAX];
	size_t count;
};

static const struct config *keyword_config;
static struct keyword_language keyword_languages[KEYWORD_LANGUAGES_MAX];
static size_t keyword_language_count;
static struct metric *metric_actions[KEYWORD_OPT_IN + 1];

/* The ASCII letter a Latin-1 supplement letter (after 0xC3) folds to. */
static char
keyword_fold_latin1(unsigned char second)
{
	static const char upper[] = "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYTs";
	unsigned char c = (unsigned char)(second + 0x40); /* U+00C0.. */

	if (c >= 0xC0 && c <= 0xDF)
		return upper[c - 0xC0];
	if (c >= 0xE0)
		return upper[c - 0xE0];
	return 0;
}

/*
 * Normalises text into tokens: upper-case ASCII words with accents folded
 * and apostrophes dropped; returns -1 if it is too long to be a keyword.
 */
static int
keyword_tokenize(const char *text, size_t length, struct keyword_tokens *out)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i, at = 0;
	char letter;
	int in_word = 0;

	out->count = 0;
	for (i = 0; i < length; i++) {
		letter = 0;
		if (isalnum(p[i]))
			letter = (char)toupper(p[i]);
		else if (p[i] == 0xC3 && i + 1 < length) {
			letter = keyword_fold_latin1(p[++i]);
			if (letter == 'x' || letter == 's')
				letter = 0;
		} else if (p[i] == '\'' || p[i] == '`')
			continue;
		else if (p[i] == 0xE2 && i + 2 < length && p[i + 1] == 0x80 &&
			 (p[i + 2] == 0x98 || p[i + 2] == 0x99)) {
			i += 2; /* ' and ' join, as the ASCII one does */
			continue;
		} else if (p[i] >= 0x80) {
			/* Other scripts: a word of its own we never match. */
			letter = '?';
		}
		if (letter == 0) {
			in_word = 0;
			continue;
		}
		if (!in_word) {
			if (out->count == KEYWORD_TOKENS_MAX ||
			    at + 2 >= sizeof(out->text))
				return -1;
			if (out->count > 0)
				out->text[at++] = '\0';
			out->words[out->count++] = out->text + at;
			in_word = 1;
		}
		if (at + 2 >= sizeof(out->text))
			return -1;
		out->text[at++] = letter;
	}
	out->text[at] = '\0';
	return 0;
}

/* 1 if word is in a table of words. */
static int
keyword_in(const char *const *table, size_t count, const char *word)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (strcmp(table[i], word) == 0)
			return 1;
	return 0;
}

#define KEYWORD_IN(table, word) \
	keyword_in(table, sizeof(table) / sizeof(table[0]), word)

/*
 * How many tokens from `at` the list word (one or more words separated by
 * single spaces) matches; 0 if it does not.
 */
static size_t
keyword_word_matches(
    const char *word, const char *const *tokens, size_t count, size_t at)
{
	size_t used = 0, length;
	const char *space;

	while (at + used < count) {
		space = strchr(word, ' ');
		length = space != NULL ? (size_t)(space - word) : strlen(word);
		if (strlen(tokens[at + used]) != length ||
		    memcmp(tokens[at + used], word, length) != 0)
			return 0;
		used++;
		if (space == NULL)
			return used;
		word = space + 1;
	}
	return 0;
}

/* The longest word of a list matching at `at`; its token count or 0. */
static size_t
keyword_list_matches(const struct keyword_language *language,
    enum keyword_list list, const char *const *tokens, size_t count, size_t at)
{
	size_t i, used, best = 0;

	for (i = 0; i < language->word_count[list]; i++) {
		used = keyword_word_matches(
		    language->words[list][i], tokens, count, at);
		if (used > best)
			best = used;
	}
	return best;
}

/* 1 if the tokens are wholly words of one list of one language. */
static int
keyword_all_of(const struct keyword_language *language, enum keyword_list list,
    const char *const *tokens, size_t count)
{
	size_t at = 0, used;

	while (at < count) {
		if ((used = keyword_list_matches(
			 language, list, tokens, count, at)) == 0)
			return 0;
		at += used;
	}
	return count > 0;
}

/* 1 if a negation comes before token `at`. */
static int
keyword_negated(const char *const *tokens, size_t at)
{
	size_t i;

	for (i = 0; i < at; i++)
		if (KEYWORD_IN(keyword_negations, tokens[i]) ||
		    (strcmp(tokens[i], "DO") == 0 && i + 1 < at &&
			strcmp(tokens[i + 1], "NOT") == 0))
			return 1;
	return 0;
}

/* A clear opt-out sentence (see atop); sets language on a match. */
static int
keyword_opt_out_sentence(
    const char *const *tokens, size_t count, struct keyword_match *match)
{
	const struct keyword_language *language;
	size_t l, at, used;

	for (at = 0; at < count; at++) {
		for (l = 0; l < keyword_language_count; l++) {
			language = &keyword_languages[l];
			used = keyword_list_matches(
			    language, LIST_OPT_OUT, tokens, count, at);
			if (used == 0)
				continue;
			if (keyword_negated(tokens, at))
				return 0;
			if ((used == 2 && strcmp(tokens[at], "OPT") == 0) ||
			    (used == 1 &&
				KEYWORD_IN(keyword_unambiguous, tokens[at])) ||
			    (at + used < count && KEYWORD_IN(keyword_messaging,
						      tokens[at + used]))) {
				text_copy(match->language,
				    sizeof(match->language), language->name);
				return 1;
			}
			break;
		}
	}
	return 0;
}

void
keyword_classify(const char *text, size_t length, struct keyword_match *match)
{
	struct keyword_tokens tokens;
	const char *core[KEYWORD_TOKENS_MAX];
	size_t i, count = 0, l;
	int list;

	memset(match, 0, sizeof(*match));
	if (keyword_tokenize(text, length, &tokens) == -1)
		return;
	for (i = 0; i < tokens.count; i++)
		if (!KEYWORD_IN(keyword_filler, tokens.words[i]))
			core[count++] = tokens.words[i];
	if (count == 0)
		return;
	for (list = 0; list < LIST_COUNT; list++)
		for (l = 0; l < keyword_language_count; l++)
			if (keyword_all_of(&keyword_languages[l],
				(enum keyword_list)list, core, count)) {
				match->action = keyword_list_actions[list];
				text_copy(match->language,
				    sizeof(match->language),
				    keyword_languages[l].name);
				goto found;
			}
	if (keyword_opt_out_sentence(core, count, match))
		match->action = KEYWORD_OPT_OUT;
	return;
found:
	if (match->action != KEYWORD_OPT_IN && match->action != KEYWORD_CONFIRM)
		return;
	/* YES is on both lists: it confirms, and it opts in again. */
	for (l = 0; l < keyword_language_count; l++) {
		if (keyword_all_of(
			&keyword_languages[l], LIST_CONFIRM, core, count))
			match->confirms = 1;
		if (keyword_all_of(
			&keyword_languages[l], LIST_OPT_IN, core, count))
			match->action = KEYWORD_OPT_IN;
	}
}

/* The run-time language called name, or NULL. */
static struct keyword_language *
keyword_find_language(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < keyword_language_count; i++)
		if (strcasecmp(keyword_languages[i].name, name) == 0)
			return &keyword_languages[i];
	return NULL;
}

void
keyword_language_for(
    const char *number, const char *fallback, char *out, size_t out_size)
{
	struct profile profile;
	json_t *value;
	char primary[KEYWORD_LANGUAGE_SIZE];
	const char *name = NULL;

	text_copy(out, out_size, keyword_config->compliance_default_language);
	if (profile_load(number, &profile) == STORE_OK) {
		value = json_object_get(profile.attributes, "language");
		if (json_is_string(value)) {
			/* "pt-BR" falls back to "pt". */
			snprintf(primary, sizeof(primary), "%.*s",
			    (int)strcspn(json_string_value(value), "-_"),
			    json_string_value(value));
			if (keyword_find_language(primary) != NULL)
				name = primary;
		}
		if (name != NULL)
			text_copy(out, out_size, name);
		profile_release(&profile);
		if (name != NULL)
			return;
	}
	if (keyword_find_language(fallback) != NULL)
		text_copy(out, out_size, fallback);
}

int
keyword_render(enum keyword_text which, const char *language_name,
    const char *code, char *out, size_t out_size)
{
	const struct keyword_language *language;
	const char *text, *p, *value;
	size_t at = 0, length;

	if ((unsigned int)which >= KEYWORD_TEXT_COUNT || out_size == 0)
		return -1;
	if ((language = keyword_find_language(language_name)) == NULL &&
	    (language = keyword_find_language(
		 keyword_config->compliance_default_language)) == NULL)
		language = &keyword_languages[0];
	text = language->texts[which];
	for (p = text; *p != '\0'; p++) {
		value = NULL;
		if (*p == '{') {
			length = strcspn(p + 1, "}");
			if (length == 7 && strncmp(p + 1, "program", 7) == 0)
				value =
				    keyword_config
						->compliance_program_name[0] !=
					    '\0'
					? keyword_config
					      ->compliance_program_name
				    : keyword_config->organization_name[0] !=
					    '\0'
					? keyword_config->organization_name
					: "nudge";
			else if (length == 7 &&
				 strncmp(p + 1, "contact", 7) == 0)
				value = keyword_config->compliance_contact;
			else if (length == 9 &&
				 strncmp(p + 1, "frequency", 9) == 0)
				value = keyword_config->compliance_frequency;
			else if (length == 4 && strncmp(p + 1, "code", 4) == 0)
				value = code != NULL ? code : "";
			if (value != NULL) {
				if (at + strlen(value) >= out_size)
					return -1;
				memcpy(out + at, value, strlen(value));
				at += strlen(value);
				p += length + 1;
				continue;
			}
		}
		if (at + 1 >= out_size)
			return -1;
		out[at++] = *p;
	}
	out[at] = '\0';
	return 0;
}

int
keyword_send(const char *number, const char *from, enum keyword_text which,
    const char *language, const char *code)
{
	struct outbox_request request;
	struct outbox_accepted accepted;
	char text[KEYWORD_REPLY_SIZE], reason[128];
	char masked[LOG_MASKED_NUMBER_SIZE];
	const char *field;

	if (keyword_render(which, language, code, text, sizeof(text)) == -1)
		return -1;
	memset(&request, 0, sizeof(request));
	request.to = number;
	request.from = keyword_config->compliance_from[0] != '\0'
			   ? keyword_config->compliance_from
			   : (from != NULL && from[0] != '\0' ? from : NULL);
	request.text = text;
	request.text_length = strlen(text);
	/* Why: a confirmation must reach opted-out numbers; it is not
	 * marketing, and the outbox refuses only marketing to them. */
	request.message_class = OUTBOX_CLASS_TRANSACTIONAL;
	request.origin = "keyword";
	if (outbox_submit(
		&request, &accepted, &field, reason, sizeof(reason)) == -1) {
		log_warnx(0, "keyword", "reply-refused",
		    "number=%s field=%s reason=\"%s\"",
		    log_mask_number(number, masked, sizeof(masked)), field,
		    reason);
		return -1;
	}
	return 0;
}

/* Adds the comma-separated words of list to a language (normalised). */
static void
keyword_add_words(struct keyword_language *language, enum keyword_list list,
    const char *words)
{
	struct keyword_tokens tokens;
	const char *p = words, *comma;
	size_t length, i, at;
	char *word;

	while (*p != '\0') {
		comma = strchr(p, ',');
		length = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (keyword_tokenize(p, length, &tokens) == 0 &&
		    tokens.count > 0 &&
		    language->word_count[list] < KEYWORD_WORDS_MAX) {
			word =
			    language->words[list][language->word_count[list]];
			for (i = 0, at = 0; i < tokens.count; i++) {
				if (at + strlen(tokens.words[i]) + 2 >=
				    KEYWORD_WORD_SIZE)
					break;
				if (i > 0)
					word[at++] = ' ';
				memcpy(word + at, tokens.words[i],
				    strlen(tokens.words[i]));
				at += strlen(tokens.words[i]);
			}
			word[at] = '\0';
			if (i == tokens.count)
				language->word_count[list]++;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
}

/* The run-time language called name, added if new. */
static struct keyword_language *
keyword_language_slot(const char *name)
{
	struct keyword_language *language;

	if ((language = keyword_find_language(name)) != NULL)
		return language;
	if (keyword_language_count == KEYWORD_LANGUAGES_MAX)
		return NULL;
	language = &keyword_languages[keyword_language_count++];
	memset(language, 0, sizeof(*language));
	text_copy(language->name, sizeof(language->name), name);
	return language;
}

/* Builds the languages: shipped defaults, then the config's overrides. */
static void
keyword_load_languages(const struct config *config)
{
	const struct config_language *configured;
	const struct keyword_defaults *shipped;
	struct keyword_language *language;
	const char *lists[LIST_COUNT], *texts[KEYWORD_TEXT_COUNT];
	size_t i, j, k;

	keyword_language_count = 0;
	/* The default language first: its word list wins a tie (STOP). */
	for (k = 0; k < 2; k++)
		for (i = 0; i < KEYWORD_SHIPPED_COUNT; i++) {
			shipped = &keyword_shipped[i];
			if ((strcmp(shipped->name,
				 config->compliance_default_language) == 0) !=
			    (k == 0))
				continue;
			language = keyword_language_slot(shipped->name);
			for (j = 0; j < KEYWORD_TEXT_COUNT; j++)
				language->texts[j] = shipped->texts[j];
		}
	for (i = 0; i < config->language_count; i++) {
		configured = config->languages[i];
		if ((language = keyword_language_slot(configured->name)) ==
		    NULL) {
			log_warnx(0, "keyword", "too-many-languages",
			    "language=%s", configured->name);
			continue;
		}
		lists[LIST_OPT_OUT] = configured->opt_out_words;
		lists[LIST_HELP] = configured->help_words;
		lists[LIST_CONFIRM] = configured->confirm_words;
		lists[LIST_OPT_IN] = configured->opt_in_words;
		for (j = 0; j < LIST_COUNT; j++)
			if (lists[j][0] != '\0')
				keyword_add_words(
				    language, (enum keyword_list)j, lists[j]);
		texts[KEYWORD_TEXT_STOP] = configured->stop_reply;
		texts[KEYWORD_TEXT_START] = configured->start_reply;
		texts[KEYWORD_TEXT_HELP] = configured->help_reply;
		texts[KEYWORD_TEXT_CONFIRM_REQUEST] =
		    configured->confirm_request;
		texts[KEYWORD_TEXT_CODE] = configured->code_text;
		for (j = 0; j < KEYWORD_TEXT_COUNT; j++)
			if (texts[j][0] != '\0')
				language->texts[j] = texts[j];
	}
	/* Shipped lists fill what the config left empty. */
	for (i = 0; i < keyword_language_count; i++) {
		language = &keyword_languages[i];
		for (k = 0; k < KEYWORD_SHIPPED_COUNT; k++)
			if (strcmp(keyword_shipped[k].name, language->name) ==
			    0)
				break;
		for (j = 0; j < KEYWORD_TEXT_COUNT; j++)
			if (language->texts[j] == NULL)
				language->texts[j] =
				    k < KEYWORD_SHIPPED_COUNT
					? keyword_shipped[k].texts[j]
					: keyword_shipped[0].texts[j];
		for (j = 0; j < LIST_COUNT; j++)
			if (language->word_count[j] == 0 &&
			    k < KEYWORD_SHIPPED_COUNT)
				keyword_add_words(language,
				    (enum keyword_list)j,
				    keyword_shipped[k].lists[j]);
	}
	/* The law's English words are always understood. */
	language = keyword_language_slot("en");
	if (language != NULL && language->word_count[LIST_OPT_OUT] == 0)
		keyword_add_words(language, LIST_OPT_OUT,
		    keyword_shipped[0].lists[LIST_OPT_OUT]);
}

int
keyword_route(uint64_t mo_id, const struct mo_record *mo, const char *text)
{
	struct keyword_match match;
	char number[PROFILE_NUMBER_SIZE], language[KEYWORD_LANGUAGE_SIZE];
	const char *error;
	enum consent_state state;
	int relayed = 0;

	keyword_classify(text, mo->text_length, &match);
	if (match.action == KEYWORD_NONE)
		return 0;
	if (phone_normalize(mo->from, keyword_config->default_country, number,
		sizeof(number), &error) == -1) {
		log_info(
		    mo_id, "keyword", "bad-sender", "reason=\"%s\"", error);
		return 0;
	}
	state = consent_get(number);
	keyword_language_for(
	    number, match.language, language, sizeof(language));
	switch (match.action) {
	case KEYWORD_OPT_OUT:
		if (consent_set(number, CONSENT_UNSUBSCRIBED,
			CONSENT_SOURCE_KEYWORD,
			keyword_config->compliance_wording) != STORE_OK)
			log_warnx(mo_id, "keyword", "opt-out-not-stored", NULL);
		if (keyword_config->compliance_stop_to_esme)
			relayed = server_route_mo(mo_id, mo, text);
		if (!relayed)
			keyword_send(
			    number, mo->to, KEYWORD_TEXT_STOP, language, NULL);
		break;
	case KEYWORD_HELP:
		keyword_send(number, mo->to, KEYWORD_TEXT_HELP, language, NULL);
		break;
	case KEYWORD_CONFIRM:
	case KEYWORD_OPT_IN:
		if (match.confirms && state == CONSENT_PENDING &&
		    consent_confirm_reply(number)) {
			keyword_send(
			    number, mo->to, KEYWORD_TEXT_START, language, NULL);
			break;
		}
		/* Y, or YES from a number not unsubscribed: an answer to
		 * something else, for the rest of the chain. */
		if (match.action == KEYWORD_CONFIRM ||
		    (match.confirms && state != CONSENT_UNSUBSCRIBED))
			return 0;
		if (consent_set(number, CONSENT_SUBSCRIBED,
			CONSENT_SOURCE_KEYWORD,
			keyword_config->compliance_wording) != STORE_OK)
			log_warnx(mo_id, "keyword", "opt-in-not-stored", NULL);
		keyword_send(
		    number, mo->to, KEYWORD_TEXT_START, language, NULL);
		break;
	default:
		return 0;
	}
	metrics_add(metric_actions[match.action], 1);
	log_info(mo_id, "keyword", "claimed",
	    "action=%d language=%s relayed=%d", (int)match.action, language,
	    relayed);
	return 1;
}

void
keyword_init(const struct config *config)
{
	static const char *const names[] = {
	    "none", "opt_out", "help", "confirm", "opt_in"};
	char labels[48];
	size_t i;

	keyword_config = config;
	keyword_load_languages(config);
	for (i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(labels, sizeof(labels), "action=\"%s\"", names[i]);
		metric_actions[i] = metrics_counter("nudge_keywords_total",
		    labels, "Inbound SMS claimed as compliance keywords.");
	}
}
