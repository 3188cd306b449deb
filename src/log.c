/*
 * log.c - one line per event: "<16-hex id> <subsystem> <event> key=value ...",
 * to stderr (with a UTC timestamp and level) or to syslog. Phone numbers are
 * never logged whole: callers pass them through log_mask_number().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "nudged.h"

static int log_to_stderr = 1;
static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

static const int log_syslog_priorities[] = {
    [LOG_LEVEL_WARN] = LOG_WARNING,
    [LOG_LEVEL_INFO] = LOG_INFO,
    [LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

void
log_init(int to_stderr, enum log_level level)
{
	log_to_stderr = to_stderr;
	log_level = level;
	if (!to_stderr)
		openlog("nudged", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

/* Formats and emits one line; error_text, when set, is appended as error=. */
static void
log_emit(enum log_level level, uint64_t id, const char *subsystem,
    const char *event, const char *error_text, const char *fmt, va_list ap)
{
	char body[1024];
	char stamp[40];
	struct timespec now;
	struct tm tm;
	int length = 0;

	if (level > log_level)
		return;
	body[0] = '\0';
	if (fmt != NULL) {
		length = vsnprintf(body, sizeof(body), fmt, ap);
		if (length < 0)
			length = 0;
		if ((size_t)length >= sizeof(body))
			length = sizeof(body) - 1;
	}
	if (error_text != NULL)
		snprintf(body + length, sizeof(body) - length, "%serror=\"%s\"",
		    length > 0 ? " " : "", error_text);

	if (!log_to_stderr) {
		syslog(log_syslog_priorities[level], "%016llx %s %s%s%s",
		    (unsigned long long)id, subsystem, event,
		    body[0] != '\0' ? " " : "", body);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %-5s %016llx %s %s%s%s\n", stamp,
	    now.tv_nsec / 1000000, log_level_names[level],
	    (unsigned long long)id, subsystem, event,
	    body[0] != '\0' ? " " : "", body);
}

void
log_warn(
    uint64_t id, const char *subsystem, const char *event, const char *fmt, ...)
{
	va_list ap;
	char error_text[128];

	snprintf(error_text, sizeof(error_text), "%s", strerror(errno));
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_WARN, id, subsystem, event, error_text, fmt, ap);
	va_end(ap);
}

void
log_warnx(
    uint64_t id, const char *subsystem, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_WARN, id, subsystem, event, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(
    uint64_t id, const char *subsystem, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_INFO, id, subsystem, event, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(
    uint64_t id, const char *subsystem, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_DEBUG, id, subsystem, event, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *subsystem, const char *event, const char *fmt, ...)
{
	va_list ap;
	char error_text[128];

	snprintf(error_text, sizeof(error_text), "%s", strerror(errno));
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_WARN, 0, subsystem, event, error_text, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *subsystem, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_WARN, 0, subsystem, event, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * Keeps a leading '+', the first four digits and the last two; every other
 * digit becomes a bullet. Short codes (six digits or fewer) and alphanumeric
 * sender ids are not personal numbers and pass unchanged.
 */
const char *
log_mask_number(const char *number, char *buffer, size_t size)
{
	static const char bullet[] = "\xe2\x80\xa2"; /* U+2022 */
	size_t digits = 0, seen = 0, out = 0;
	const char *p;

	if (size == 0)
		return "";
	if (number == NULL) {
		snprintf(buffer, size, "-");
		return buffer;
	}
	for (p = number; *p != '\0'; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (!(p == number && *p == '+'))
			break;
	}
	if (*p != '\0' || digits <= 6) {
		snprintf(buffer, size, "%s", number);
		return buffer;
	}
	for (p = number; *p != '\0' && out + 4 < size; p++) {
		if (*p == '+') {
			buffer[out++] = '+';
			continue;
		}
		seen++;
		if (seen <= 4 || seen > digits - 2)
			buffer[out++] = *p;
		else {
			memcpy(buffer + out, bullet, 3);
			out += 3;
		}
	}
	buffer[out] = '\0';
	return buffer;
}
