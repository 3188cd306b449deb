/*
 * test_config.c - the key table: defaults, every value type, and errors that
 * name file:line for every problem in a file, not just the first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nudged.h"

static char directory[] = "/tmp/nudge-test-config-XXXXXX";
static char config_path[256];
static char errors_path[256];
static char errors_text[4096];

static int
setup(void **state)
{
	if (mkdtemp(directory) == NULL)
		return -1;
	snprintf(config_path, sizeof(config_path), "%s/nudged.conf", directory);
	snprintf(errors_path, sizeof(errors_path), "%s/errors", directory);
	return 0;
}

static int
teardown(void **state)
{
	unlink(config_path);
	unlink(errors_path);
	rmdir(directory);
	return 0;
}

/* Writes text as the config file, loads it with stderr captured. */
static struct config *
load(const char *text, int *errors)
{
	struct config *config;
	FILE *file;
	int saved, fd;
	ssize_t length;

	file = fopen(config_path, "w");
	assert_non_null(file);
	fputs(text, file);
	fclose(file);
	fflush(stderr);
	saved = dup(2);
	fd = open(errors_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	config = config_load(config_path, errors);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fd = open(errors_path, O_RDONLY);
	length = read(fd, errors_text, sizeof(errors_text) - 1);
	close(fd);
	errors_text[length > 0 ? length : 0] = '\0';
	return config;
}

static int
contains(const char *needle)
{
	char line[512];

	snprintf(line, sizeof(line), "%s:%s", config_path, needle);
	return strstr(errors_text, line) != NULL;
}

static void
test_defaults(void **state)
{
	struct config *config;
	int errors = -1;

	config = load("; nothing set\n", &errors);
	assert_non_null(config);
	assert_int_equal(errors, 0);
	assert_string_equal(config->data_dir, "var");
	assert_string_equal(config->http_listen.host, "127.0.0.1");
	assert_int_equal(config->http_listen.port, 8470);
	assert_int_equal(config->smpp_listen.port, 2775);
	assert_int_equal(config->store_sync, 1);
	assert_int_equal(config->store_map_size, 64 * 1024 * 1024);
	assert_int_equal(config->smpp_max_pdu_length, 65536);
	assert_int_equal(config->shutdown_timeout_us, 5000000);
	assert_int_equal(config->log_level, LOG_LEVEL_INFO);
	config_free(config);
}

static void
test_every_type(void **state)
{
	struct config *config;
	int errors = -1;

	config = load("[nudged]\n"
		      "data_dir = /tmp/x ; trailing comment\n"
		      "log_level = DEBUG\n"
		      "shutdown_timeout = 1500ms\n"
		      "test_clock = on\n"
		      "[store]\n"
		      "map_size = 2G\n"
		      "max_readers = 300\n"
		      "sync = no\n"
		      "[http]\n"
		      "listen = 0.0.0.0:9000\n"
		      "api_token = secret\n"
		      "timeout = 2m\n",
	    &errors);
	assert_non_null(config);
	assert_int_equal(errors, 0);
	assert_string_equal(config->data_dir, "/tmp/x");
	assert_int_equal(config->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(config->shutdown_timeout_us, 1500000);
	assert_int_equal(config->test_clock, 1);
	assert_int_equal(config->store_map_size, 2ULL << 30);
	assert_int_equal(config->store_max_readers, 300);
	assert_int_equal(config->store_sync, 0);
	assert_string_equal(config->http_listen.host, "0.0.0.0");
	assert_int_equal(config->http_listen.port, 9000);
	assert_string_equal(config->http_api_token, "secret");
	assert_int_equal(config->http_timeout_us, 120000000);
	config_free(config);
}

static void
test_two_errors_named_by_line(void **state)
{
	struct config *config;
	int errors = 0;

	config = load("[nudged]\n"
		      "log_level = loud\n"
		      "\n"
		      "[store]\n"
		      "map_size = 12parsecs\n",
	    &errors);
	assert_null(config);
	assert_int_equal(errors, 2);
	assert_true(contains("2: nudged.log_level: 'loud'"));
	assert_true(contains("5: store.map_size: '12parsecs'"));
}

static void
test_unknown_keys_sections_and_syntax(void **state)
{
	struct config *config;
	int errors = 0;

	config = load("[nudged]\n"
		      "colour = blue\n"
		      "[nowhere]\n"
		      "key = value\n"
		      "[http]\n"
		      "just some words\n"
		      "listen = 127.0.0.1:99999\n"
		      "listen = 127.0.0.1:8000\n",
	    &errors);
	assert_null(config);
	assert_int_equal(errors, 5);
	assert_true(contains("2: unknown key 'colour' in [nudged]"));
	assert_true(contains("3: unknown section [nowhere]"));
	assert_true(contains("6: expected 'key = value'"));
	assert_true(contains("7: http.listen: '127.0.0.1:99999'"));
	assert_true(contains("8: http.listen is set twice"));
}

static void
test_ranges_and_cross_checks(void **state)
{
	struct config *config;
	int errors = 0;

	config = load("[store]\n"
		      "max_readers = 2\n"
		      "[http]\n"
		      "listen = 0.0.0.0:2775\n"
		      "[smpp]\n"
		      "listen = 0.0.0.0:2775\n",
	    &errors);
	assert_null(config);
	assert_int_equal(errors, 3);
	assert_true(contains("2: store.max_readers: '2' is out of range"));
	assert_non_null(strstr(errors_text, "are the same address"));
	assert_non_null(strstr(errors_text, "api_token must be set"));
}

static void
test_overlong_line(void **state)
{
	char text[400];
	struct config *config;
	int errors = 0;

	snprintf(text, sizeof(text), "[nudged]\ndata_dir = %0300d\n", 7);
	config = load(text, &errors);
	assert_null(config);
	assert_int_equal(errors, 1);
	assert_true(contains("2: line is longer than"));
}

static void
test_missing_file(void **state)
{
	struct config *config;
	int errors = 0;

	config = config_load("/nonexistent/nudged.conf", &errors);
	assert_null(config);
	assert_int_equal(errors, 1);
}

static void
test_shipped_config_is_valid(void **state)
{
	struct config *config;
	int errors = -1;

	config = config_load("conf/nudged.conf", &errors);
	assert_non_null(config);
	assert_int_equal(errors, 0);
	assert_string_equal(config->http_api_token, "demo-token-change-me");
	config_free(config);
}

static void
test_named_link_sections(void **state)
{
	struct config *config;
	int errors = -1;

	config = load("[link carrier-a]\n"
		      "host = 127.0.0.1\n"
		      "port = 2776\n"
		      "system_id = nudge\n"
		      "password = secret\n"
		      "bind = pair\n"
		      "split = sar\n"
		      "receipt_id_base = decimal\n"
		      "response_id_base = hex\n"
		      "routes = 39 4915\n"
		      "[link carrier-b]\n"
		      "host = smsc.example\n"
		      "system_id = other\n",
	    &errors);
	assert_non_null(config);
	assert_int_equal(errors, 0);
	assert_int_equal(config->link_count, 2);
	assert_string_equal(config->links[0]->name, "carrier-a");
	assert_int_equal(config->links[0]->line, 1);
	assert_int_equal(config->links[0]->port, 2776);
	assert_int_equal(config->links[0]->bind, CONFIG_LINK_BIND_PAIR);
	assert_int_equal(config->links[0]->split, CONFIG_LINK_SPLIT_SAR);
	assert_int_equal(config->links[0]->receipt_id_base, 2);
	assert_int_equal(config->links[0]->response_id_base, 1);
	assert_string_equal(config->links[0]->routes, "39 4915");
	/* defaults apply to every instance */
	assert_string_equal(config->links[1]->name, "carrier-b");
	assert_int_equal(config->links[1]->port, 2775);
	assert_int_equal(config->links[1]->window, 64);
	assert_int_equal(config->links[1]->enquire_link_us, 30000000);
	assert_int_equal(config->links[1]->bind, CONFIG_LINK_BIND_TRANSCEIVER);
	assert_string_equal(config->links[1]->password, "");
	config_free(config);
}

static void
test_named_section_errors(void **state)
{
	struct config *config;
	int errors = 0;

	config = load("[link]\n"
		      "host = ignored\n"
		      "[link a]\n"
		      "port = 0\n"
		      "[link a]\n"
		      "[link b]\n"
		      "host = h\n"
		      "system_id = b\n"
		      "colour = red\n"
		      "reconnect_min = 5m\n"
		      "reconnect_max = 1m\n",
	    &errors);
	assert_null(config);
	assert_int_equal(errors, 7);
	assert_true(contains("1: [link] needs a name"));
	assert_true(contains("4: link a.port: '0' is out of range"));
	assert_true(contains("5: [link a] is defined twice"));
	assert_true(contains("3: [link a] needs a host"));
	assert_true(contains("3: [link a] needs a system_id"));
	assert_true(contains("9: unknown key 'colour' in [link b]"));
	assert_true(contains("6: [link b] reconnect_min is above"));
}

static void
test_accounts(void **state)
{
	struct config *config;
	int errors = 0;

	config = load("[link up]\nhost = h\nsystem_id = u\n"
		      "[account shop]\n"
		      "system_id = shop\n"
		      "password = pw\n"
		      "allowed_addresses = 127.0.0.1/32 10.0.0.0/8\n"
		      "traffic_class = marketing\n"
		      "route = up\n"
		      "mo_keywords = SHOP DEALS\n",
	    &errors);
	assert_non_null(config);
	assert_int_equal(config->account_count, 1);
	assert_string_equal(config->accounts[0]->system_id, "shop");
	assert_int_equal(
	    config->accounts[0]->traffic_class, OUTBOX_CLASS_MARKETING);
	assert_int_equal(config->accounts[0]->window, 64);
	assert_int_equal(
	    config->accounts[0]->deliver_expiry_us, 72ULL * 3600 * 1000000);
	config_free(config);

	config = load("[account a]\n"
		      "system_id = same\n"
		      "allowed_addresses = 10.0.0.0/33\n"
		      "route = nowhere\n"
		      "[account b]\n"
		      "system_id = same\n"
		      "[smpp]\n"
		      "tls_listen = 127.0.0.1:2776\n",
	    &errors);
	assert_null(config);
	assert_int_equal(errors, 4);
	assert_true(contains("1: [account a] allowed_addresses is not"));
	assert_true(contains("1: [account a] route names no [link nowhere]"));
	assert_true(
	    contains("5: [account b] system_id 'same' is already used"));
	assert_non_null(strstr(errors_text, "smpp.tls_listen needs"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_type),
	    cmocka_unit_test(test_two_errors_named_by_line),
	    cmocka_unit_test(test_unknown_keys_sections_and_syntax),
	    cmocka_unit_test(test_ranges_and_cross_checks),
	    cmocka_unit_test(test_overlong_line),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_shipped_config_is_valid),
	    cmocka_unit_test(test_named_link_sections),
	    cmocka_unit_test(test_named_section_errors),
	    cmocka_unit_test(test_accounts),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
