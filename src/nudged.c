/*
 * nudged.c - the gateway daemon's entry point: command-line flags, the
 * configuration check (-n), the key reference (-K), then the event loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nudged.h"

#define NUDGED_DEFAULT_CONF "/etc/nudge/nudged.conf"

static __dead void
usage(void)
{
	fprintf(stderr,
	    "usage: nudged [-dfnKV] [-c file]\n"
	    "  -c file  configuration (default " NUDGED_DEFAULT_CONF ")\n"
	    "  -d       debug: stay in the foreground, log everything\n"
	    "  -f       stay in the foreground, log to stderr\n"
	    "  -n       check the configuration and exit\n"
	    "  -K       print the configuration reference and exit\n"
	    "  -V       print the version and exit\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *path = NUDGED_DEFAULT_CONF;
	struct config *config;
	int option, check_only = 0, foreground = 0, debug = 0, errors;

	while ((option = getopt(argc, argv, "c:dfnKV")) != -1) {
		switch (option) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			debug = 1;
			foreground = 1;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'K':
			config_print_reference(stdout);
			return 0;
		case 'V':
			printf("nudged %s\n", NUDGE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	log_init(1, LOG_LEVEL_INFO);
	if ((config = config_load(path, &errors)) == NULL) {
		fprintf(stderr, "%s: %d error%s\n", path, errors,
		    errors == 1 ? "" : "s");
		return 1;
	}
	if (check_only) {
		printf("%s: configuration OK\n", path);
		config_free(config);
		return 0;
	}
	log_init(foreground,
	    debug ? LOG_LEVEL_DEBUG : (enum log_level)config->log_level);
	daemon_start(config, foreground);
	return daemon_run();
}
