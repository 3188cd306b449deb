/*
 * test_consent.c - the consent lifecycle and compliance keywords on a real
 * store and outbox: transitions and history, the opt-out list kept in
 * step, every keyword of every shipped language, free-text opt-outs (and
 * what is not one), STOP/START/HELP/Y through keyword_route with the
 * replies read back from the outbox, double and smart opt-in with expiry
 * and attempt limits on the test clock, and CSV imports all or nothing.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <jansson.h>

#include "nudged.h"

#define SMS_MAX   16
#define SMS_TEXT  1024
#define MINUTE_US (60ULL * 1000000)

static struct {
	char path[64];
	char config_path[96];
	struct config *config;
	struct event_base *base;
	struct store *store;
} world;

/* The SMS the outbox holds for one number, oldest first. */
static struct {
	size_t count;
	struct outbox_message_record records[SMS_MAX];
	char texts[SMS_MAX][SMS_TEXT];
} sms;

/* Reads back every SMS the outbox holds for number into `sms`. */
static size_t
collect_sms(const char *number)
{
	struct store_cursor *cursor;
	const void *key, *value;
	size_t key_length, value_length;
	enum store_result result;
	uint64_t ids[SMS_MAX];
	uint8_t start[8];
	size_t i;

	memset(&sms, 0, sizeof(sms));
	assert_int_equal(store_commit(world.store), STORE_OK);
	result = store_cursor_open(world.store, STORE_DB_MESSAGES, &cursor);
	if (result == STORE_NOT_FOUND)
		return 0;
	assert_int_equal(result, STORE_OK);
	store_encode_u64(start, 0);
	for (result = store_cursor_seek(cursor, start, sizeof(start), &key,
		 &key_length, &value, &value_length);
	     result == STORE_OK; result = store_cursor_next(cursor, &key,
				     &key_length, &value, &value_length)) {
		struct outbox_message_record record;

		assert_true(value_length >= sizeof(record));
		memcpy(&record, value, sizeof(record));
		if (strcmp(record.to, number) != 0)
			continue;
		assert_true(sms.count < SMS_MAX);
		ids[sms.count++] = store_decode_u64(key);
	}
	store_cursor_close(cursor);
	for (i = 0; i < sms.count; i++)
		assert_int_equal(outbox_read_message(ids[i], &sms.records[i],
				     sms.texts[i], SMS_TEXT),
		    STORE_OK);
	return sms.count;
}

/* An inbound SMS from `from` to the short code, through the keywords. */
static int
inbound(const char *from, const char *text)
{
	struct mo_record mo;
	int claimed;

	memset(&mo, 0, sizeof(mo));
	mo.version = 1;
	mo.text_length = (uint16_t)strlen(text);
	mo.time_us = clock_now_us();
	snprintf(mo.from, sizeof(mo.from), "%s", from);
	snprintf(mo.to, sizeof(mo.to), "%s", "4545");
	claimed = keyword_route(1, &mo, text);
	assert_int_equal(store_commit(world.store), STORE_OK);
	return claimed;
}

/*
 * 0 if marketing may go to number, else -1: the opt-out lookup every
 * producer's marketing passes (the outbox, relayed ESME traffic). The
 * refusal by the outbox itself is shown end to end in
 * tests/integration/test_consent.sh, with the daemon's policies running.
 */
static int
send_marketing(const char *number)
{
	return optout_is_opted_out(number) ? -1 : 0;
}

/* A TCP port on 127.0.0.1 that nothing listens on. */
static uint16_t
free_port(void)
{
	struct sockaddr_in address;
	socklen_t length = sizeof(address);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&address, 0, sizeof(address));
	address.sin_family = AF_INET;
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(
	    bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	assert_int_equal(
	    getsockname(fd, (struct sockaddr *)&address, &length), 0);
	close(fd);
	return ntohs(address.sin_port);
}

const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:mo_init\n";
}

static int
group_setup(void **state)
{
	struct store_options options;
	FILE *file;
	int errors = 0;

	(void)state;
	strcpy(world.path, "/tmp/nudge-test-consent-XXXXXX");
	assert_non_null(mkdtemp(world.path));
	snprintf(world.config_path, sizeof(world.config_path), "%s/nudged.conf",
	    world.path);
	file = fopen(world.config_path, "w");
	assert_non_null(file);
	fprintf(file,
	    "[nudged]\n"
	    "data_dir = %s\n"
	    "rules_dir =\n"
	    "organization_name = Nudge Shoes\n"
	    "default_country = IT\n"
	    "[compliance]\n"
	    "contact = help@shoes.example\n"
	    "frequency = Up to 4 msgs/month\n"
	    "code_expiry = 10m\n"
	    "code_attempts = 5\n"
	    "[language de]\n"
	    "opt_out_words = STOPP, ABMELDEN\n"
	    "help_words = HILFE\n"
	    "stop_reply = {program}: Abgemeldet.\n"
	    "[language it]\n"
	    "opt_out_words = STOP, BASTA, CANCELLA, FINE\n"
	    "[link up]\n"
	    "host = 127.0.0.1\n"
	    "port = %u\n"
	    "system_id = up\n"
	    "reconnect_min = 10s\n"
	    "reconnect_max = 60s\n",
	    world.path, free_port());
	fclose(file);
	world.config = config_load(world.config_path, &errors);
	assert_int_equal(errors, 0);
	assert_non_null(world.config);
	world.base = event_base_new();
	assert_non_null(world.base);
	gateway->base = world.base;
	gateway->config = world.config;
	memset(&options, 0, sizeof(options));
	options.path = world.path;
	world.store = store_open(&options);
	assert_non_null(world.store);
	store_attach(world.store, world.base);
	gateway->store = world.store;
	timer_init(world.base, world.store);
	outbox_init(world.base, world.config);
	outbox_start();
	optout_init();
	profile_init(world.config);
	consent_init(world.config);
	keyword_init(world.config);
	assert_int_equal(store_commit(world.store), STORE_OK);
	return 0;
}

static int
group_teardown(void **state)
{
	char file[160];

	(void)state;
	outbox_free();
	timer_shutdown();
	store_close(world.store);
	gateway->store = NULL;
	gateway->base = NULL;
	gateway->config = NULL;
	event_base_free(world.base);
	config_free(world.config);
	http_stop();
	metrics_reset();
	snprintf(file, sizeof(file), "%s/data.mdb", world.path);
	unlink(file);
	snprintf(file, sizeof(file), "%s/lock.mdb", world.path);
	unlink(file);
	unlink(world.config_path);
	rmdir(world.path);
	return 0;
}

/* The history rows of number as (state, source, wording) in order. */
static json_t *
history_of(const char *number)
{
	json_t *body = consent_to_json(number);

	assert_non_null(body);
	return body;
}

static void
assert_history_row(json_t *body, size_t index, const char *state,
    const char *source, const char *wording)
{
	json_t *row = json_array_get(json_object_get(body, "history"), index);

	assert_non_null(row);
	assert_string_equal(
	    json_string_value(json_object_get(row, "state")), state);
	assert_string_equal(
	    json_string_value(json_object_get(row, "source")), source);
	assert_string_equal(
	    json_string_value(json_object_get(row, "wording")), wording);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void
test_transitions_and_history(void **state)
{
	const char *number = "+393400001001";
	struct consent_record record;
	json_t *body;

	(void)state;
	assert_int_equal(consent_get(number), CONSENT_NEVER);
	assert_int_equal(consent_get_record(number, &record), STORE_NOT_FOUND);
	assert_int_equal(
	    consent_set(number, CONSENT_SUBSCRIBED, CONSENT_SOURCE_FORM, "v1"),
	    STORE_OK);
	assert_int_equal(consent_get(number), CONSENT_SUBSCRIBED);
	assert_false(optout_is_opted_out(number));
	clock_advance_us(MINUTE_US);
	assert_int_equal(consent_set(number, CONSENT_UNSUBSCRIBED,
			     CONSENT_SOURCE_CARRIER, "v1"),
	    STORE_OK);
	assert_int_equal(consent_get(number), CONSENT_UNSUBSCRIBED);
	assert_true(optout_is_opted_out(number));
	clock_advance_us(MINUTE_US);
	/* Two changes in the same microsecond both stay in the history. */
	assert_int_equal(consent_set(number, CONSENT_SUBSCRIBED,
			     CONSENT_SOURCE_CHECKOUT, "v2"),
	    STORE_OK);
	assert_int_equal(
	    consent_set(number, CONSENT_SUBSCRIBED, CONSENT_SOURCE_API, "v3"),
	    STORE_OK);
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_false(optout_is_opted_out(number));
	assert_int_equal(consent_get_record(number, &record), STORE_OK);
	assert_int_equal(record.source, CONSENT_SOURCE_API);
	assert_string_equal(record.wording, "v3");

	body = history_of(number);
	assert_string_equal(
	    json_string_value(json_object_get(body, "state")), "subscribed");
	assert_int_equal(json_array_size(json_object_get(body, "history")), 4);
	assert_history_row(body, 0, "subscribed", "form", "v1");
	assert_history_row(body, 1, "unsubscribed", "carrier", "v1");
	assert_history_row(body, 2, "subscribed", "checkout", "v2");
	assert_history_row(body, 3, "subscribed", "api", "v3");
	json_decref(body);

	/* Names both ways. */
	assert_int_equal(consent_parse_state("pending"), CONSENT_PENDING);
	assert_int_equal(consent_parse_state("maybe"), -1);
	assert_int_equal(
	    consent_parse_source("carrier"), CONSENT_SOURCE_CARRIER);
	assert_string_equal(consent_strsource(CONSENT_SOURCE_IMPORT), "import");
	assert_string_equal(consent_strstate(CONSENT_NEVER), "never");
	/* Another number's history is its own. */
	body = history_of("+393400001002");
	assert_string_equal(
	    json_string_value(json_object_get(body, "state")), "never");
	assert_int_equal(json_array_size(json_object_get(body, "history")), 0);
	json_decref(body);
}

/* ---- classification ----------------------------------------------------- */

static void
expect_action(
    const char *text, enum keyword_action action, const char *language)
{
	struct keyword_match match;

	keyword_classify(text, strlen(text), &match);
	if (match.action != action)
		fail_msg("\"%s\": action %d, not %d", text, (int)match.action,
		    (int)action);
	if (language != NULL && strcmp(match.language, language) != 0)
		fail_msg("\"%s\": language %s, not %s", text, match.language,
		    language);
}

/* Every shipped and configured keyword, alone and roughed up. */
static void
test_every_keyword(void **state)
{
	static const struct {
		const char *word;
		enum keyword_action action;
		const char *language; /* NULL: several lists have it */
	} words[] = {
	    {"STOP", KEYWORD_OPT_OUT, "en"},
	    {"STOPALL", KEYWORD_OPT_OUT, "en"},
	    {"UNSUBSCRIBE", KEYWORD_OPT_OUT, "en"},
	    {"CANCEL", KEYWORD_OPT_OUT, "en"},
	    {"END", KEYWORD_OPT_OUT, "en"},
	    {"QUIT", KEYWORD_OPT_OUT, "en"},
	    {"REVOKE", KEYWORD_OPT_OUT, "en"},
	    {"OPT OUT", KEYWORD_OPT_OUT, "en"},
	    {"OPTOUT", KEYWORD_OPT_OUT, "en"},
	    {"BASTA", KEYWORD_OPT_OUT, "it"},
	    {"CANCELLA", KEYWORD_OPT_OUT, "it"},
	    {"FINE", KEYWORD_OPT_OUT, "it"}, /* from the config */
	    {"ARRET", KEYWORD_OPT_OUT, "fr"},
	    {"ARRÊT", KEYWORD_OPT_OUT, "fr"},
	    {"DESABONNER", KEYWORD_OPT_OUT, "fr"},
	    {"DÉSABONNER", KEYWORD_OPT_OUT, "fr"},
	    {"STOPP", KEYWORD_OPT_OUT, "de"},
	    {"ABMELDEN", KEYWORD_OPT_OUT, "de"},
	    {"HELP", KEYWORD_HELP, "en"},
	    {"INFO", KEYWORD_HELP, NULL},
	    {"AIUTO", KEYWORD_HELP, "it"},
	    {"AIDE", KEYWORD_HELP, "fr"},
	    {"HILFE", KEYWORD_HELP, "de"},
	    {"START", KEYWORD_OPT_IN, NULL},
	    {"UNSTOP", KEYWORD_OPT_IN, "en"},
	    {"YES", KEYWORD_OPT_IN, "en"},
	    {"Y", KEYWORD_CONFIRM, "en"},
	    {"SI", KEYWORD_CONFIRM, "it"},
	    {"OUI", KEYWORD_CONFIRM, "fr"},
	};
	static const char *const dressings[][2] = {
	    {"", ""},
	    {"  ", "  "},
	    {"", "!!!"},
	    {"", "."},
	    {"\"", "\""},
	    {"", " please"},
	    {"Please ", ""},
	};
	char text[128], lower[128];
	size_t i, j, k;

	(void)state;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		for (j = 0; j < sizeof(dressings) / sizeof(dressings[0]); j++) {
			snprintf(text, sizeof(text), "%s%s%s", dressings[j][0],
			    words[i].word, dressings[j][1]);
			expect_action(text, words[i].action, words[i].language);
			for (k = 0; text[k] != '\0'; k++)
				lower[k] =
				    (char)((unsigned char)text[k] < 0x80
					       ? tolower((unsigned char)text[k])
					       : text[k]);
			lower[k] = '\0';
			expect_action(
			    lower, words[i].action, words[i].language);
		}
	/* The accented lower case of ARRÊT and SÌ. */
	expect_action("arrêt", KEYWORD_OPT_OUT, "fr");
	expect_action("Sì", KEYWORD_CONFIRM, "it");
	expect_action("opt-out", KEYWORD_OPT_OUT, "en");
	expect_action("Opt Out", KEYWORD_OPT_OUT, "en");
	expect_action("STOP STOP", KEYWORD_OPT_OUT, "en");
	/* YES confirms too; Y only confirms. */
	{
		struct keyword_match match;

		keyword_classify("yes", 3, &match);
		assert_int_equal(match.confirms, 1);
		keyword_classify("START", 5, &match);
		assert_int_equal(match.confirms, 0);
		keyword_classify("y", 1, &match);
		assert_int_equal(match.confirms, 1);
	}
}

/* Sentences: the clear opt-outs, and what only looks like one. */
static void
test_free_text(void **state)
{
	static const struct {
		const char *text;
		enum keyword_action action;
	} texts[] = {
	    {"Stop texting me", KEYWORD_OPT_OUT},
	    {"please unsubscribe me", KEYWORD_OPT_OUT},
	    {"STOP!!!", KEYWORD_OPT_OUT},
	    {"Stop, stop!", KEYWORD_OPT_OUT},
	    {"stop sending me messages", KEYWORD_OPT_OUT},
	    {"Please STOP all messages", KEYWORD_OPT_OUT},
	    {"how do I unsubscribe?", KEYWORD_OPT_OUT},
	    {"I want to opt out", KEYWORD_OPT_OUT},
	    {"Basta messaggi per favore", KEYWORD_OPT_OUT},
	    {"stop it now", KEYWORD_OPT_OUT},
	    {"thanks, stop", KEYWORD_OPT_OUT},
	    /* Not opt-outs. */
	    {"don't stop", KEYWORD_NONE},
	    {"Don’t stop texting me, I love it", KEYWORD_NONE},
	    {"please do not unsubscribe me", KEYWORD_NONE},
	    {"I will stop by the shop", KEYWORD_NONE},
	    {"stop by the shop tomorrow", KEYWORD_NONE},
	    {"cancel my order 1234", KEYWORD_NONE},
	    {"end of season sale?", KEYWORD_NONE},
	    {"I need help with my order", KEYWORD_NONE},
	    {"yes please, size 42", KEYWORD_NONE},
	    {"Love the new boots", KEYWORD_NONE},
	    {"", KEYWORD_NONE},
	    {"!!!", KEYWORD_NONE},
	    {"стоп", KEYWORD_NONE},
	};
	char long_text[900];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		expect_action(texts[i].text, texts[i].action, NULL);
	/* A long message is never a keyword. */
	memset(long_text, 'a', sizeof(long_text) - 6);
	memcpy(long_text + sizeof(long_text) - 6, " STOP", 6);
	expect_action(long_text, KEYWORD_NONE, NULL);
}

/* ---- through keyword_route --------------------------------------------- */

static void
test_stop_start_help(void **state)
{
	const char *number = "+393400002001";
	struct consent_record record;

	(void)state;
	assert_int_equal(
	    consent_set(number, CONSENT_SUBSCRIBED, CONSENT_SOURCE_FORM, "v2"),
	    STORE_OK);
	assert_int_equal(send_marketing(number), 0);

	assert_int_equal(inbound(number, "Stop texting me"), 1);
	assert_int_equal(consent_get_record(number, &record), STORE_OK);
	assert_int_equal(record.state, CONSENT_UNSUBSCRIBED);
	assert_int_equal(record.source, CONSENT_SOURCE_KEYWORD);
	assert_true(optout_is_opted_out(number));
	/* One confirmation, transactional, from the short code. */
	assert_int_equal(collect_sms(number), 1);
	assert_int_equal(
	    sms.records[0].message_class, OUTBOX_CLASS_TRANSACTIONAL);
	assert_string_equal(sms.records[0].from, "4545");
	assert_string_equal(sms.texts[0],
	    "Nudge Shoes: You are unsubscribed and will receive no more "
	    "messages. Reply START to resubscribe.");
	/* No marketing after. */
	assert_int_equal(send_marketing(number), -1);
	assert_int_equal(collect_sms(number), 1);

	/* YES from an unsubscribed number opts in again. */
	assert_int_equal(inbound(number, "yes"), 1);
	assert_int_equal(consent_get(number), CONSENT_SUBSCRIBED);
	assert_false(optout_is_opted_out(number));
	assert_int_equal(collect_sms(number), 2);
	assert_string_equal(sms.texts[1],
	    "Nudge Shoes: You are subscribed. Up to 4 msgs/month. Msg&data "
	    "rates may apply. Reply HELP for help, STOP to cancel.");
	/* YES and Y from a subscriber are for the rest of the chain. */
	assert_int_equal(inbound(number, "YES"), 0);
	assert_int_equal(inbound(number, "Y"), 0);
	assert_int_equal(collect_sms(number), 2);

	assert_int_equal(inbound(number, "STOP"), 1);
	assert_int_equal(inbound(number, "start"), 1);
	assert_int_equal(consent_get(number), CONSENT_SUBSCRIBED);
	assert_int_equal(inbound(number, "help"), 1);
	assert_int_equal(collect_sms(number), 5);
	assert_string_equal(sms.texts[4],
	    "Nudge Shoes: Help at help@shoes.example. Up to 4 msgs/month. "
	    "Msg&data rates may apply. Reply STOP to cancel.");
	/* HELP changes nothing; an ordinary message is not claimed. */
	assert_int_equal(consent_get(number), CONSENT_SUBSCRIBED);
	assert_int_equal(inbound(number, "stop by the shop"), 0);
	assert_int_equal(consent_get(number), CONSENT_SUBSCRIBED);
}

/* Even a number that never subscribed gets its one confirmation. */
static void
test_stop_from_stranger_and_languages(void **state)
{
	const char *italian = "+393400002101", *french = "+33612345678";
	const char *german = "+4915112345678";
	struct profile profile;
	json_t *attributes;
	const char *field;
	char reason[64];

	(void)state;
	/* The profile's language wins over the word's list (STOP is en). */
	assert_int_equal(profile_load(italian, &profile), STORE_OK);
	attributes = json_pack("{s:s}", "language", "it");
	assert_int_equal(
	    profile_merge(&profile, attributes, &field, reason, sizeof(reason)),
	    0);
	json_decref(attributes);
	assert_int_equal(profile_save(&profile), STORE_OK);
	profile_release(&profile);
	assert_int_equal(inbound(italian, "STOP"), 1);
	assert_int_equal(collect_sms(italian), 1);
	assert_string_equal(sms.texts[0],
	    "Nudge Shoes: non riceverai piu messaggi. Rispondi START per "
	    "iscriverti di nuovo.");
	assert_int_equal(consent_get(italian), CONSENT_UNSUBSCRIBED);

	/* No profile: the language of the word's list. */
	assert_int_equal(inbound(french, "Arrêt"), 1);
	assert_int_equal(collect_sms(french), 1);
	assert_true(strncmp(sms.texts[0], "Nudge Shoes : vous etes desinscrit",
			34) == 0);
	assert_int_equal(inbound(german, "stopp"), 1);
	assert_int_equal(collect_sms(german), 1);
	assert_string_equal(sms.texts[0], "Nudge Shoes: Abgemeldet.");
	/* A configured language without its own HELP text: English. */
	assert_int_equal(inbound(german, "Hilfe"), 1);
	assert_int_equal(collect_sms(german), 2);
	assert_true(strncmp(sms.texts[1], "Nudge Shoes: Help at", 20) == 0);
}

/* ---- double opt-in ------------------------------------------------------ */

static void
test_double_opt_in(void **state)
{
	const char *number = "+393400003001";
	struct consent_record record;

	(void)state;
	/* Y with nothing pending is not ours. */
	assert_int_equal(inbound(number, "Y"), 0);
	assert_int_equal(consent_request_double_opt_in(
			     number, CONSENT_SOURCE_FORM, "v7", NULL),
	    0);
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_int_equal(consent_get(number), CONSENT_PENDING);
	/* Until the Y, no marketing. */
	assert_int_equal(send_marketing(number), -1);
	assert_int_equal(collect_sms(number), 1);
	assert_int_equal(
	    sms.records[0].message_class, OUTBOX_CLASS_TRANSACTIONAL);
	assert_string_equal(sms.texts[0],
	    "Nudge Shoes: Reply Y to confirm your subscription. Up to 4 "
	    "msgs/month. Msg&data rates may apply. Reply STOP to cancel.");

	assert_int_equal(inbound(number, " y! "), 1);
	assert_int_equal(consent_get_record(number, &record), STORE_OK);
	assert_int_equal(record.state, CONSENT_SUBSCRIBED);
	assert_int_equal(record.source, CONSENT_SOURCE_KEYWORD);
	assert_string_equal(record.wording, "v7");
	assert_int_equal(collect_sms(number), 2);
	assert_true(
	    strncmp(sms.texts[1], "Nudge Shoes: You are subscribed", 31) == 0);
	assert_int_equal(send_marketing(number), 0);
	/* A second request to a subscriber sends nothing. */
	assert_int_equal(consent_request_double_opt_in(
			     number, CONSENT_SOURCE_FORM, "v8", NULL),
	    0);
	assert_int_equal(collect_sms(number), 2);
	assert_int_equal(consent_get(number), CONSENT_SUBSCRIBED);
}

/* ---- smart opt-in ------------------------------------------------------- */

/* 1 if the META row of number holds the code's digits in clear. */
static int
code_in_store(const char *number, const char *code)
{
	char key[64];
	const void *value;
	size_t length;

	snprintf(key, sizeof(key), "consent-code/%s", number + 1);
	if (store_get(world.store, STORE_DB_META, key, strlen(key), &value,
		&length) != STORE_OK)
		return 0;
	return memmem(value, length, code, 6) != NULL;
}

static void
test_smart_opt_in(void **state)
{
	const char *number = "+393400004001";
	char code[7], wrong[16];
	int left, i;

	(void)state;
	assert_int_equal(
	    consent_confirm_code(number, "123456", &left), CONSENT_CODE_NONE);
	assert_int_equal(consent_request_smart_opt_in(
			     number, CONSENT_SOURCE_CHECKOUT, "v4", NULL, code),
	    0);
	assert_int_equal(strlen(code), 6);
	assert_int_equal(strspn(code, "0123456789"), 6);
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_int_equal(consent_get(number), CONSENT_PENDING);
	assert_false(code_in_store(number, code));
	assert_int_equal(collect_sms(number), 1);
	assert_non_null(strstr(sms.texts[0], code));
	/* Y does not confirm a smart opt-in. */
	assert_int_equal(inbound(number, "Y"), 0);
	assert_int_equal(consent_get(number), CONSENT_PENDING);

	snprintf(wrong, sizeof(wrong), "%06d", (atoi(code) + 1) % 1000000);
	assert_int_equal(
	    consent_confirm_code(number, wrong, &left), CONSENT_CODE_WRONG);
	assert_int_equal(left, 4);
	assert_int_equal(
	    consent_confirm_code(number, "12a456", &left), CONSENT_CODE_WRONG);
	assert_int_equal(left, 3);
	assert_int_equal(
	    consent_confirm_code(number, code, &left), CONSENT_CODE_CONFIRMED);
	assert_int_equal(consent_get(number), CONSENT_SUBSCRIBED);
	/* Used once. */
	assert_int_equal(
	    consent_confirm_code(number, code, &left), CONSENT_CODE_NONE);

	/* Five wrong codes void it; the right one then comes too late. */
	assert_int_equal(consent_set(number, CONSENT_UNSUBSCRIBED,
			     CONSENT_SOURCE_KEYWORD, "v4"),
	    STORE_OK);
	assert_int_equal(consent_request_smart_opt_in(
			     number, CONSENT_SOURCE_FORM, "v5", NULL, code),
	    0);
	snprintf(wrong, sizeof(wrong), "%06d", (atoi(code) + 7) % 1000000);
	for (i = 0; i < 4; i++) {
		assert_int_equal(consent_confirm_code(number, wrong, &left),
		    CONSENT_CODE_WRONG);
		assert_int_equal(left, 4 - i);
	}
	assert_int_equal(
	    consent_confirm_code(number, wrong, &left), CONSENT_CODE_LOCKED);
	assert_int_equal(
	    consent_confirm_code(number, code, &left), CONSENT_CODE_NONE);
	assert_int_equal(consent_get(number), CONSENT_PENDING);
	assert_true(optout_is_opted_out(number));

	/* Expiry: 10 minutes on the test clock. */
	assert_int_equal(consent_request_smart_opt_in(
			     number, CONSENT_SOURCE_FORM, "v5", NULL, code),
	    0);
	clock_advance_us(9 * MINUTE_US);
	assert_int_equal(
	    consent_confirm_code(number, wrong, &left), CONSENT_CODE_WRONG);
	clock_advance_us(MINUTE_US);
	assert_int_equal(
	    consent_confirm_code(number, code, &left), CONSENT_CODE_EXPIRED);
	assert_int_equal(
	    consent_confirm_code(number, code, &left), CONSENT_CODE_NONE);
	assert_int_equal(consent_get(number), CONSENT_PENDING);
	assert_int_equal(store_commit(world.store), STORE_OK);
}

/* ---- CSV import --------------------------------------------------------- */

static void
test_import(void **state)
{
	static const char bad[] =
	    "phone_number,state,source,wording,time\n"
	    "+393400005001,subscribed,form,v1,2026-01-02T10:00:00Z\n"
	    "+393400005002,maybe,form,v1,2026-01-02T10:00:00Z\n"
	    "not-a-number,unsubscribed,,v1,\n"
	    "+393400005003,unsubscribed,carrier,v1,2999-01-01T00:00:00Z\n";
	static const char good[] =
	    "phone_number,state,source,wording,time\n"
	    "+393400005001,subscribed,form,v1,2026-01-02T10:00:00Z\n"
	    "3400005002,unsubscribed,,v2,1767348000\n"
	    "\"+393400005003\",subscribed,checkout,\"v3\",\n";
	static const char header[] = "number,state\n+393400005004,subscribed\n";
	json_t *report, *errors, *body;

	(void)state;
	assert_int_equal(consent_import_csv(bad, strlen(bad), &report), -1);
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_int_equal(
	    json_integer_value(json_object_get(report, "accepted")), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(report, "rejected")), 3);
	assert_false(json_is_true(json_object_get(report, "applied")));
	errors = json_object_get(report, "errors");
	assert_int_equal(json_array_size(errors), 3);
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(errors, 0), "line")),
	    3);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(errors, 0), "field")),
	    "state");
	assert_int_equal(json_integer_value(json_object_get(
			     json_array_get(errors, 1), "line")),
	    4);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(errors, 1), "field")),
	    "phone_number");
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(errors, 2), "field")),
	    "time");
	json_decref(report);
	/* Nothing half-imported: the good first row is not there. */
	assert_int_equal(consent_get("+393400005001"), CONSENT_NEVER);

	assert_int_equal(consent_import_csv(good, strlen(good), &report), 3);
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_true(json_is_true(json_object_get(report, "applied")));
	assert_int_equal(
	    json_integer_value(json_object_get(report, "rejected")), 0);
	json_decref(report);
	assert_int_equal(consent_get("+393400005001"), CONSENT_SUBSCRIBED);
	assert_int_equal(consent_get("+393400005002"), CONSENT_UNSUBSCRIBED);
	assert_true(optout_is_opted_out("+393400005002"));
	assert_int_equal(consent_get("+393400005003"), CONSENT_SUBSCRIBED);
	body = consent_to_json("+393400005001");
	assert_string_equal(json_string_value(json_object_get(body, "time")),
	    "2026-01-02T10:00:00Z");
	assert_history_row(body, 0, "subscribed", "form", "v1");
	json_decref(body);
	body = consent_to_json("+393400005002");
	assert_history_row(body, 0, "unsubscribed", "import", "v2");
	json_decref(body);

	/* An older imported change joins the history, not the present. */
	assert_int_equal(
	    consent_import_csv("phone_number,state,source,wording,time\n"
			       "+393400005003,unsubscribed,form,v0,"
			       "2020-01-01T00:00:00Z\n",
		strlen("phone_number,state,source,wording,time\n"
		       "+393400005003,unsubscribed,form,v0,"
		       "2020-01-01T00:00:00Z\n"),
		&report),
	    1);
	json_decref(report);
	assert_int_equal(consent_get("+393400005003"), CONSENT_SUBSCRIBED);
	body = consent_to_json("+393400005003");
	assert_int_equal(json_array_size(json_object_get(body, "history")), 2);
	assert_history_row(body, 0, "unsubscribed", "form", "v0");
	json_decref(body);

	/* A wrong header refuses the file. */
	assert_int_equal(
	    consent_import_csv(header, strlen(header), &report), -1);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_array_get(json_object_get(report, "errors"), 0), "field")),
	    "header");
	json_decref(report);
	assert_int_equal(consent_get("+393400005004"), CONSENT_NEVER);
	assert_int_equal(consent_import_csv("", 0, &report), -1);
	json_decref(report);
}

/* A row repeating a number and time is refused by line, the file whole. */
static void
test_import_refuses_same_number_and_time(void **state)
{
	char csv[16384];
	json_t *report, *error;
	size_t length;
	int i;

	(void)state;
	/*
	 * 100 rows of one number at one instant: before, the 65th made the
	 * history write fail half-way through the apply, with no error said.
	 */
	length = (size_t)snprintf(
	    csv, sizeof(csv), "phone_number,state,source,wording,time\n");
	length += (size_t)snprintf(csv + length, sizeof(csv) - length,
	    "+393400006001,subscribed,form,v1,\n");
	for (i = 0; i < 100; i++)
		length += (size_t)snprintf(csv + length, sizeof(csv) - length,
		    "+393400006002,subscribed,form,v1,2026-01-02T10:00:00Z\n");
	assert_int_equal(consent_import_csv(csv, length, &report), -1);
	assert_int_equal(store_commit(world.store), STORE_OK);
	assert_int_equal(
	    json_integer_value(json_object_get(report, "rejected")), 99);
	error = json_array_get(json_object_get(report, "errors"), 0);
	assert_int_equal(json_integer_value(json_object_get(error, "line")), 4);
	assert_string_equal(json_string_value(json_object_get(error, "reason")),
	    "same number and time as line 3");
	json_decref(report);
	assert_int_equal(consent_get("+393400006001"), CONSENT_NEVER);
	assert_int_equal(consent_get("+393400006002"), CONSENT_NEVER);

	/* The same number at two instants is history, and is taken. */
	length = (size_t)snprintf(csv, sizeof(csv),
	    "phone_number,state,source,wording,time\n"
	    "+393400006002,unsubscribed,form,v1,2026-01-03T10:00:00Z\n"
	    "+393400006002,subscribed,form,v1,2026-01-02T10:00:00Z\n");
	assert_int_equal(consent_import_csv(csv, length, &report), 2);
	assert_int_equal(store_commit(world.store), STORE_OK);
	json_decref(report);
	assert_int_equal(consent_get("+393400006002"), CONSENT_UNSUBSCRIBED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transitions_and_history),
	    cmocka_unit_test(test_every_keyword),
	    cmocka_unit_test(test_free_text),
	    cmocka_unit_test(test_stop_start_help),
	    cmocka_unit_test(test_stop_from_stranger_and_languages),
	    cmocka_unit_test(test_double_opt_in),
	    cmocka_unit_test(test_smart_opt_in),
	    cmocka_unit_test(test_import),
	    cmocka_unit_test(test_import_refuses_same_number_and_time),
	};

	log_init(1, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
