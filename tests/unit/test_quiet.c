/*
 * test_quiet.c - quiet hours: the prefix table, window and day parsing,
 * and quiet_check checked against GLib's own GDateTime arithmetic over
 * random instants of two years in many countries (multi-zone prefixes,
 * half-hour and 45-minute offsets), DST gaps and repeats in the US and
 * the EU, the French Sunday rule, profile zones and unplaced numbers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "nudged.h"

#define SECOND     INT64_C(1000000)
#define MINUTE     (60 * SECOND)
#define ALL_DAYS   0xfeu
#define MON_TO_SAT 0x7eu

/* The window a test expects for a number, checked independently. */
struct expected_window {
	int start_minute;
	int end_minute;
	unsigned int day_mask;
};

static struct config_quiet france = {
    .name = "FR", .line = 1, .window = "08:00-22:00", .days = "mon-sat"};
static struct config_quiet *quiet_sections[] = {&france};

/* Configures quiet.c as nudged.conf would, without a file. */
static void
configure(int enabled, const char *window, const char *days,
    const char *fallback_zone, int with_france)
{
	struct config config;

	memset(&config, 0, sizeof(config));
	config.quiet_enabled = enabled;
	config.quiet_window = (char *)(uintptr_t)window;
	config.quiet_days = (char *)(uintptr_t)days;
	config.quiet_fallback_zone = (char *)(uintptr_t)fallback_zone;
	config.quiets = with_france ? quiet_sections : NULL;
	config.quiet_count = with_france ? 1 : 0;
	quiet_init(&config);
}

static int
teardown(void **state)
{
	quiet_free();
	return 0;
}

/* Microseconds of a UTC civil time. */
static uint64_t
utc(int year, int month, int day, int hour, int minute)
{
	GDateTime *time =
	    g_date_time_new_utc(year, month, day, hour, minute, 0);
	uint64_t us = (uint64_t)g_date_time_to_unix(time) * SECOND;

	g_date_time_unref(time);
	return us;
}

/* Inside the window at this instant in zone, by GDateTime alone. */
static int
inside(const char *zone, uint64_t when_us, const struct expected_window *w)
{
	GTimeZone *tz = g_time_zone_new_identifier(zone);
	GDateTime *universal, *local;
	int minute, day, result;

	assert_non_null(tz);
	universal = g_date_time_new_from_unix_utc((gint64)(when_us / SECOND));
	local = g_date_time_to_timezone(universal, tz);
	minute =
	    g_date_time_get_hour(local) * 60 + g_date_time_get_minute(local);
	day = g_date_time_get_day_of_week(local);
	result = (w->day_mask & (1u << day)) != 0 &&
		 minute >= w->start_minute && minute < w->end_minute;
	g_date_time_unref(local);
	g_date_time_unref(universal);
	g_time_zone_unref(tz);
	return result;
}

/* The zones a number's prefix names, or the fallback. */
static size_t
zones_of(const char *number, const char **names, const char *fallback)
{
	const uint16_t *zones;
	size_t count, i;

	count = prefix_zones_lookup(number, &zones, NULL);
	for (i = 0; i < count; i++)
		names[i] = prefix_zones_name(zones[i]);
	if (count == 0)
		names[count++] = fallback;
	return count;
}

static int
inside_all(const char **names, size_t count, uint64_t when_us,
    const struct expected_window *w)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (!inside(names[i], when_us, w))
			return 0;
	return 1;
}

/* A small deterministic generator, so a failure replays. */
static uint64_t
next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static void
test_prefix_table(void **state)
{
	const uint16_t *zones;
	size_t count, length, i;
	int found_hawaii = 0, found_new_york = 0;

	assert_true(prefix_zones_row_count() > 3000);
	count = prefix_zones_lookup("+12125551234", &zones, &length);
	assert_int_equal(count, 1);
	assert_int_equal(length, 4);
	assert_string_equal(prefix_zones_name(zones[0]), "America/New_York");
	/* No '+' works too; the legacy name is replaced by the current. */
	count = prefix_zones_lookup("919812345678", &zones, &length);
	assert_int_equal(count, 1);
	assert_int_equal(length, 2);
	assert_string_equal(prefix_zones_name(zones[0]), "Asia/Kolkata");
	count = prefix_zones_lookup("+9779812345678", &zones, &length);
	assert_int_equal(count, 1);
	assert_string_equal(prefix_zones_name(zones[0]), "Asia/Kathmandu");
	/* An area code NANP does not list: every +1 zone. */
	count = prefix_zones_lookup("+15555551234", &zones, &length);
	assert_int_equal(length, 1);
	assert_true(count > 30);
	for (i = 0; i < count; i++) {
		found_hawaii |= strcmp(prefix_zones_name(zones[i]),
				    "Pacific/Honolulu") == 0;
		found_new_york |= strcmp(prefix_zones_name(zones[i]),
				      "America/New_York") == 0;
	}
	assert_true(found_hawaii && found_new_york);
	assert_int_equal(prefix_zones_lookup("+73001234567", &zones, NULL), 16);
	assert_int_equal(
	    prefix_zones_lookup("+5509912345678", &zones, NULL), 4);
	/* Non-geographic: no zone. */
	assert_int_equal(
	    prefix_zones_lookup("+80012345678", &zones, &length), 0);
	assert_null(zones);
	assert_int_equal(length, 0);
	assert_int_equal(prefix_zones_lookup("", &zones, NULL), 0);
	assert_int_equal(prefix_zones_lookup("+", &zones, NULL), 0);
	assert_null(prefix_zones_name(65535));
}

static void
test_parse(void **state)
{
	unsigned int start, end, days;

	assert_int_equal(quiet_parse_window("08:00-21:00", &start, &end), 0);
	assert_int_equal(start, 480);
	assert_int_equal(end, 1260);
	assert_int_equal(quiet_parse_window("8:30-24:00", &start, &end), 0);
	assert_int_equal(start, 510);
	assert_int_equal(end, 1440);
	assert_int_equal(quiet_parse_window("21:00-08:00", &start, &end), -1);
	assert_int_equal(quiet_parse_window("08:00-08:00", &start, &end), -1);
	assert_int_equal(quiet_parse_window("08:60-09:00", &start, &end), -1);
	assert_int_equal(quiet_parse_window("25:00-26:00", &start, &end), -1);
	assert_int_equal(quiet_parse_window("08:00-24:01", &start, &end), -1);
	assert_int_equal(quiet_parse_window("08:00", &start, &end), -1);
	assert_int_equal(quiet_parse_window("08:00-21:00x", &start, &end), -1);
	assert_int_equal(quiet_parse_window("", &start, &end), -1);

	assert_int_equal(quiet_parse_days("mon-sun", &days), 0);
	assert_int_equal(days, ALL_DAYS);
	assert_int_equal(quiet_parse_days("mon-sat", &days), 0);
	assert_int_equal(days, MON_TO_SAT);
	assert_int_equal(quiet_parse_days("Mon-Fri, sun", &days), 0);
	assert_int_equal(days, 0x3eu | 0x80u);
	assert_int_equal(quiet_parse_days("fri-mon", &days), 0);
	assert_int_equal(days, 0x20u | 0x40u | 0x80u | 0x02u);
	assert_int_equal(quiet_parse_days("wed", &days), 0);
	assert_int_equal(days, 0x08u);
	assert_int_equal(quiet_parse_days("monday", &days), -1);
	assert_int_equal(quiet_parse_days("mon-", &days), -1);
	assert_int_equal(quiet_parse_days("", &days), -1);
	assert_int_equal(quiet_parse_days("mon,,tue", &days), -1);
}

/* The property: quiet_check agrees with GDateTime in every zone. */
static void
check_property(const char *number, const char *fallback,
    const struct expected_window *w, uint64_t *random_state, int samples)
{
	const char *names[80];
	uint64_t from = utc(2025, 1, 1, 0, 0), span, when, allowed, minute;
	size_t count;
	int i;

	count = zones_of(number, names, fallback);
	span = utc(2027, 1, 1, 0, 0) - from;
	for (i = 0; i < samples; i++) {
		when = from + next_random(random_state) % span;
		allowed = 0;
		if (quiet_check(number, NULL, when, &allowed) == 0) {
			if (!inside_all(names, count, when, w))
				fail_msg("%s at %" PRIu64 " allowed outside",
				    number, when / SECOND);
			continue;
		}
		assert_false(inside_all(names, count, when, w));
		assert_true(allowed > when);
		assert_int_equal(allowed % MINUTE, 0);
		if (!inside_all(names, count, allowed, w))
			fail_msg("%s: %" PRIu64 " -> %" PRIu64 " not inside",
			    number, when / SECOND, allowed / SECOND);
		/* No earlier minute is allowed. */
		for (minute = (when / MINUTE + 1) * MINUTE; minute < allowed;
		     minute += MINUTE)
			if (inside_all(names, count, minute, w))
				fail_msg("%s: %" PRIu64 " -> %" PRIu64
					 " but %" PRIu64 " was allowed",
				    number, when / SECOND, allowed / SECOND,
				    minute / SECOND);
	}
}

static void
test_property_many_countries(void **state)
{
	static const char *const numbers[] = {
	    "+12125551234",   /* New York */
	    "+18085551234",   /* Honolulu */
	    "+19075551234",   /* Adak and Anchorage */
	    "+17095551234",   /* Newfoundland -3:30 and Puerto Rico */
	    "+14165551234",   /* Toronto */
	    "+919812345678",  /* India +5:30 */
	    "+9779812345678", /* Nepal +5:45 */
	    "+61881234567",   /* Adelaide +9:30/+10:30 and Perth */
	    "+61412345678",   /* Sydney */
	    "+4915112345678", /* Germany */
	    "+73001234567",   /* Russia: 16 zones */
	    "+5509912345678", /* Brazil: 4 zones */
	    "+5215512345678", /* Mexico City */
	    "+819012345678",  /* Tokyo */
	    "+64211234567",   /* Auckland */
	    "+80012345678",   /* non-geographic: the fallback, UTC */
	};
	struct expected_window standard = {480, 1260, ALL_DAYS};
	uint64_t random_state = 0x9e3779b97f4a7c15u;
	size_t i;

	configure(1, "08:00-21:00", "mon-sun", "UTC", 1);
	for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		check_property(
		    numbers[i], "UTC", &standard, &random_state, 150);
}

static void
test_property_all_of_nanp(void **state)
{
	struct expected_window standard = {480, 1260, ALL_DAYS};
	uint64_t random_state = 12345;

	/* 42 zones from Guam to Newfoundland: a narrow common window. */
	configure(1, "08:00-21:00", "mon-sun", "UTC", 0);
	check_property("+15555551234", "UTC", &standard, &random_state, 150);
}

static void
test_property_france_no_sunday(void **state)
{
	struct expected_window france_window = {480, 1320, MON_TO_SAT};
	struct expected_window short_window = {570, 1020, 0x3eu};
	uint64_t random_state = 777;

	configure(1, "08:00-21:00", "mon-sun", "UTC", 1);
	check_property(
	    "+33612345678", "UTC", &france_window, &random_state, 300);
	/* A short weekday-only default applies to everyone else. */
	configure(1, "09:30-17:00", "mon-fri", "UTC", 1);
	check_property(
	    "+4915112345678", "UTC", &short_window, &random_state, 200);
	check_property(
	    "+19075551234", "UTC", &short_window, &random_state, 200);
}

static void
test_france_sunday(void **state)
{
	uint64_t allowed = 0;

	configure(1, "08:00-21:00", "mon-sun", "UTC", 1);
	/* Saturday 21 November 2026, 21:30 in Paris (UTC+1): FR runs to
	 * 22:00, where the default window would have closed. */
	assert_int_equal(quiet_check("+33612345678", NULL,
			     utc(2026, 11, 21, 20, 30), &allowed),
	    0);
	/* 22:30 Saturday: not Sunday, Monday 08:00 Paris. */
	assert_int_equal(quiet_check("+33612345678", NULL,
			     utc(2026, 11, 21, 21, 30), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 11, 23, 7, 0));
	/* Sunday noon. */
	assert_int_equal(quiet_check("+33612345678", NULL,
			     utc(2026, 11, 22, 11, 0), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 11, 23, 7, 0));
	/* A German number at the same Sunday noon is fine. */
	assert_int_equal(quiet_check("+4915112345678", NULL,
			     utc(2026, 11, 22, 11, 0), &allowed),
	    0);
	/* And at Saturday 21:30 Berlin it is not: the default 21:00. */
	assert_int_equal(quiet_check("+4915112345678", NULL,
			     utc(2026, 11, 21, 20, 30), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 11, 22, 7, 0));
}

static void
test_us_spring_forward(void **state)
{
	uint64_t allowed = 0;

	configure(1, "08:00-21:00", "mon-sun", "UTC", 0);
	/* Sunday 8 March 2026: New York goes 02:00 EST -> 03:00 EDT. At
	 * 00:00 EST, 08:00 EDT is 12:00 UTC, not 13:00. */
	assert_int_equal(
	    quiet_check("+12125551234", NULL, utc(2026, 3, 8, 5, 0), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 3, 8, 12, 0));
	/* A window that opens inside the gap opens at the jump. */
	configure(1, "02:30-21:00", "mon-sun", "UTC", 0);
	assert_int_equal(
	    quiet_check("+12125551234", NULL, utc(2026, 3, 8, 6, 50), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 3, 8, 7, 0));
	/* The day after, 02:30 EDT exists. */
	assert_int_equal(
	    quiet_check("+12125551234", NULL, utc(2026, 3, 9, 5, 50), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 3, 9, 6, 30));
	/* A window wholly inside the gap is skipped that day. */
	configure(1, "02:10-02:50", "mon-sun", "UTC", 0);
	assert_int_equal(
	    quiet_check("+12125551234", NULL, utc(2026, 3, 8, 6, 0), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 3, 9, 6, 10));
}

static void
test_eu_fall_back(void **state)
{
	uint64_t allowed = 0;

	/* Sunday 25 October 2026: Paris goes 03:00 CEST -> 02:00 CET, so
	 * 02:00-03:00 happens twice (00:00-01:00 and 01:00-02:00 UTC). A
	 * profile zone, on a US number, also shows the profile wins. */
	configure(1, "02:30-21:00", "mon-sun", "UTC", 0);
	assert_int_equal(quiet_check("+12125551234", "Europe/Paris",
			     utc(2026, 10, 25, 0, 30), &allowed),
	    0);
	/* 02:00 CET, the second 02:00: out again until the second 02:30. */
	assert_int_equal(quiet_check("+12125551234", "Europe/Paris",
			     utc(2026, 10, 25, 1, 0), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 10, 25, 1, 30));
	/* A window that closed at 02:15 CEST opens again at the repeat. */
	configure(1, "00:00-02:15", "mon-sun", "UTC", 0);
	assert_int_equal(quiet_check("+12125551234", "Europe/Paris",
			     utc(2026, 10, 25, 0, 20), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 10, 25, 1, 0));
	/* Default window, the evening before: 21:00 CEST -> 08:00 CET. */
	configure(1, "08:00-21:00", "mon-sun", "UTC", 0);
	assert_int_equal(quiet_check("+4915112345678", NULL,
			     utc(2026, 10, 24, 19, 0), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 10, 25, 7, 0));
	/* New York falls back on 1 November 2026: 21:00 EDT -> 08:00 EST. */
	assert_int_equal(
	    quiet_check("+12125551234", NULL, utc(2026, 11, 1, 1, 0), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 11, 1, 13, 0));
}

static void
test_fractional_offsets(void **state)
{
	uint64_t allowed = 0;

	configure(1, "08:00-21:00", "mon-sun", "UTC", 0);
	/* India +5:30: 07:59 IST. */
	assert_int_equal(quiet_check("+919812345678", NULL,
			     utc(2026, 6, 1, 2, 29), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 6, 1, 2, 30));
	assert_int_equal(quiet_check("+919812345678", NULL,
			     utc(2026, 6, 1, 2, 30), &allowed),
	    0);
	/* Nepal +5:45. */
	assert_int_equal(quiet_check("+9779812345678", NULL,
			     utc(2026, 6, 1, 2, 14), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 6, 1, 2, 15));
	/* Newfoundland -3:30 in winter (with Puerto Rico -4, both). */
	assert_int_equal(quiet_check("+17095551234", NULL,
			     utc(2026, 1, 15, 11, 29), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 1, 15, 12, 0));
	/* Adelaide +10:30 in January (summer), from the profile. */
	assert_int_equal(quiet_check("+61412345678", "Australia/Adelaide",
			     utc(2026, 1, 14, 21, 29), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 1, 14, 21, 30));
}

static void
test_profile_zone(void **state)
{
	uint64_t allowed = 0, noon_tokyo = utc(2026, 6, 1, 3, 0);

	configure(1, "08:00-21:00", "mon-sun", "UTC", 0);
	/* 23:00 in New York, noon in Tokyo. */
	assert_int_equal(
	    quiet_check("+12125551234", NULL, noon_tokyo, &allowed), 1);
	assert_int_equal(allowed, utc(2026, 6, 1, 12, 0));
	assert_int_equal(
	    quiet_check("+12125551234", "Asia/Tokyo", noon_tokyo, &allowed), 0);
	/* Again from the cache. */
	assert_int_equal(
	    quiet_check("+12125551234", "Asia/Tokyo", noon_tokyo, &allowed), 0);
	/* A name that is no zone: the prefix decides. */
	assert_int_equal(quiet_check("+12125551234", "Mars/Olympus_Mons",
			     noon_tokyo, &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 6, 1, 12, 0));
	assert_int_equal(
	    quiet_check("+12125551234", "", noon_tokyo, &allowed), 1);
}

static void
test_profile_cache_is_bounded(void **state)
{
	char zone[32];
	uint64_t allowed = 0, when = utc(2026, 6, 1, 12, 0);
	int i, hours;

	configure(1, "08:00-21:00", "mon-sun", "UTC", 0);
	/* Far more distinct names than cache slots; each still right. */
	for (i = 0; i < 300; i++) {
		hours = i % 25 - 12;
		snprintf(zone, sizeof(zone), "Etc/GMT%+d", -hours);
		if (hours == 0)
			snprintf(zone, sizeof(zone), "Etc/UTC");
		assert_int_equal(
		    quiet_check("+12125551234", zone, when, &allowed),
		    12 + hours >= 8 && 12 + hours < 21 ? 0 : 1);
	}
}

static void
test_unplaced_number_uses_fallback(void **state)
{
	uint64_t allowed = 0;

	configure(1, "08:00-21:00", "mon-sun", "UTC", 0);
	assert_int_equal(
	    quiet_check("+80012345678", NULL, utc(2026, 6, 1, 7, 59), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 6, 1, 8, 0));
	configure(1, "08:00-21:00", "mon-sun", "Asia/Tokyo", 0);
	assert_int_equal(
	    quiet_check("+80012345678", NULL, utc(2026, 6, 1, 7, 59), &allowed),
	    0);
	/* An unknown fallback name keeps UTC. */
	configure(1, "08:00-21:00", "mon-sun", "Nowhere/Zone", 0);
	assert_int_equal(
	    quiet_check("+80012345678", NULL, utc(2026, 6, 1, 7, 59), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 6, 1, 8, 0));
}

static void
test_disabled_and_seconds(void **state)
{
	uint64_t allowed = 0;

	configure(0, "08:00-21:00", "mon-sun", "UTC", 0);
	assert_int_equal(
	    quiet_check("+12125551234", NULL, utc(2026, 6, 1, 3, 0), &allowed),
	    0);
	/* Mid-minute: the next whole minute the window opens. */
	configure(1, "08:00-21:00", "mon-sun", "UTC", 0);
	assert_int_equal(
	    quiet_check("+80012345678", NULL,
		utc(2026, 6, 1, 7, 59) + 30 * SECOND + 17, &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 6, 1, 8, 0));
	/* The last second of the window is inside, its end is not. */
	assert_int_equal(quiet_check("+80012345678", NULL,
			     utc(2026, 6, 1, 21, 0) - SECOND, &allowed),
	    0);
	assert_int_equal(
	    quiet_check("+80012345678", NULL, utc(2026, 6, 1, 21, 0), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 6, 2, 8, 0));
}

static void
test_windows_that_never_meet(void **state)
{
	uint64_t allowed = 0, when = utc(2026, 1, 15, 12, 0);

	/* One hour a day in 42 zones 21 hours apart: never all at once. */
	configure(1, "10:00-11:00", "mon-sun", "UTC", 0);
	assert_int_equal(quiet_check("+15555551234", NULL, when, &allowed), 1);
	assert_int_equal(allowed, when + 8 * 86400 * SECOND);
}

/* Loads text as nudged.conf with stderr silenced; the error count. */
static int
load_config(const char *text, struct config **out)
{
	char path[] = "/tmp/nudge-test-quiet-XXXXXX";
	int fd, saved, errors = 0;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	fflush(stderr);
	saved = dup(2);
	fd = open("/dev/null", O_WRONLY);
	dup2(fd, 2);
	close(fd);
	*out = config_load(path, &errors);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	unlink(path);
	return errors;
}

static void
test_config_keys(void **state)
{
	struct config *config;
	uint64_t allowed = 0;

	assert_int_equal(load_config("[nudged]\n"
				     "quiet_window = 09:00-20:00\n"
				     "quiet_days = mon-fri\n"
				     "[quiet FR]\n"
				     "window = 08:00-22:00\n"
				     "days = mon-sat\n"
				     "[quiet US]\n"
				     "days = mon-sun\n",
			     &config),
	    0);
	assert_non_null(config);
	assert_true(config->quiet_enabled);
	assert_string_equal(config->quiet_window, "09:00-20:00");
	assert_string_equal(config->quiet_fallback_zone, "UTC");
	assert_int_equal(config->quiet_count, 2);
	assert_string_equal(config->quiets[0]->name, "FR");
	assert_string_equal(config->quiets[0]->window, "08:00-22:00");
	assert_string_equal(config->quiets[1]->window, "");
	quiet_init(config);
	/* Saturday 21 November 2026 at noon UTC. */
	assert_int_equal(quiet_check("+33612345678", NULL,
			     utc(2026, 11, 21, 12, 0), &allowed),
	    0);
	assert_int_equal(quiet_check("+4915112345678", NULL,
			     utc(2026, 11, 21, 12, 0), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 11, 23, 8, 0));
	/* US: the default 09:00-20:00, but on Saturdays too. */
	assert_int_equal(quiet_check("+12125551234", NULL,
			     utc(2026, 11, 21, 14, 0), &allowed),
	    0);
	assert_int_equal(quiet_check("+12125551234", NULL,
			     utc(2026, 11, 21, 13, 59), &allowed),
	    1);
	assert_int_equal(allowed, utc(2026, 11, 21, 14, 0));
	config_free(config);

	assert_int_equal(load_config("[nudged]\n"
				     "quiet_window = 21:00-08:00\n"
				     "quiet_days = someday\n"
				     "[quiet XX]\n"
				     "[quiet DE]\n"
				     "window = 8-22\n"
				     "days = sun-\n",
			     &config),
	    5);
	assert_null(config);
	assert_int_equal(
	    load_config("[nudged]\nquiet_hours = no\n", &config), 0);
	assert_false(config->quiet_enabled);
	config_free(config);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_table),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test_teardown(test_property_many_countries, teardown),
	    cmocka_unit_test_teardown(test_property_all_of_nanp, teardown),
	    cmocka_unit_test_teardown(test_property_france_no_sunday, teardown),
	    cmocka_unit_test_teardown(test_france_sunday, teardown),
	    cmocka_unit_test_teardown(test_us_spring_forward, teardown),
	    cmocka_unit_test_teardown(test_eu_fall_back, teardown),
	    cmocka_unit_test_teardown(test_fractional_offsets, teardown),
	    cmocka_unit_test_teardown(test_profile_zone, teardown),
	    cmocka_unit_test_teardown(test_profile_cache_is_bounded, teardown),
	    cmocka_unit_test_teardown(
		test_unplaced_number_uses_fallback, teardown),
	    cmocka_unit_test_teardown(test_disabled_and_seconds, teardown),
	    cmocka_unit_test_teardown(test_windows_that_never_meet, teardown),
	    cmocka_unit_test_teardown(test_config_keys, teardown),
	};

	log_init(1, LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
