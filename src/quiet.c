/*
 * quiet.c - quiet hours in the recipient's local time. A marketing SMS may
 * go only while the local time is inside the window (default 08:00-21:00,
 * every day; [quiet CC] sections set a country's window and days) in the
 * recipient's zone: the profile's IANA zone, else EVERY zone the number's
 * longest known prefix spans (prefix_zones.c, generated from
 * python3-phonenumbers). Numbers no prefix places (+800, +870, +881: satellite
 * and other non-geographic ranges) have no local time at all; they use
 * nudged.quiet_fallback_zone (UTC unless configured).
 *
 * Offsets come from GLib's GTimeZone (the system's tzdata), never from
 * switching TZ, which is process-wide. GTimeZone objects are cached: one slot
 * per zone of the prefix table, and a small LRU cache for profile zones.
 *
 * The next allowed time is found by leapfrogging: every (zone, window) pair
 * that is outside its window at instant u gives a lower bound on when it can
 * be inside again (the next local window start, assuming the zone's offset
 * does not change meanwhile, or the offset change itself if one comes
 * first); u jumps to the largest bound, and the pairs are checked again.
 * Each jump is at most a day, so a zone changes offset at most once in a
 * jump; the search gives up after QUIET_HORIZON_SECONDS.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "nudged.h"

#define QUIET_MAX_ZONES       64 /* gen_prefix_zones.py checks */
#define QUIET_MAX_WINDOWS     8  /* [quiet CC] sharing a calling code */
#define QUIET_PROFILE_CACHE   64
#define QUIET_ZONE_NAME_SIZE  64
#define QUIET_HORIZON_SECONDS (8 * 86400)
#define QUIET_MAX_JUMP        86400
#define QUIET_MAX_STEPS       100000
#define SECONDS_PER_DAY       86400
#define ALL_DAYS              0xfe /* bits 1 (Monday) .. 7 (Sunday) */

/* A window of local time on some days of the week. */
struct quiet_window {
	unsigned int start_second; /* of the local day */
	unsigned int end_second;
	unsigned int day_mask; /* bit 1 Monday .. bit 7 Sunday */
};

/* A [quiet CC] section, by the calling code of its country. */
struct quiet_country {
	char calling_code[8];
	struct quiet_window window;
};

/* A profile zone's slot in the LRU cache; tz NULL: not a known zone. */
struct quiet_cached_zone {
	char name[QUIET_ZONE_NAME_SIZE];
	GTimeZone *tz;
	uint64_t last_used;
};

enum quiet_slot_state {
	QUIET_SLOT_UNRESOLVED = 0,
	QUIET_SLOT_KNOWN,
	QUIET_SLOT_MISSING, /* the system's tzdata lacks it */
};

static struct {
	int initialized;
	int enabled;
	struct quiet_window default_window;
	struct quiet_country *countries;
	size_t country_count;
	GTimeZone *fallback;
	GTimeZone **table_zones; /* one per prefix table zone */
	uint8_t *table_states;   /* enum quiet_slot_state */
	struct quiet_cached_zone profile_zones[QUIET_PROFILE_CACHE];
	uint64_t use_counter;
} quiet;

static const char *const quiet_day_names[] = {
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
};

/* Parses "HH:MM" or "H:MM" at text; the characters used, or 0. */
static size_t
quiet_parse_time(const char *text, unsigned int *minute)
{
	unsigned int hours = 0, minutes;
	size_t digits = 0;

	while (digits < 2 && text[digits] >= '0' && text[digits] <= '9') {
		hours = hours * 10 + (unsigned int)(text[digits] - '0');
		digits++;
	}
	text += digits;
	if (digits == 0 || text[0] != ':' || text[1] < '0' || text[1] > '5' ||
	    text[2] < '0' || text[2] > '9')
		return 0;
	minutes =
	    (unsigned int)(text[1] - '0') * 10 + (unsigned int)(text[2] - '0');
	if (hours > 24 || (hours == 24 && minutes != 0))
		return 0;
	*minute = hours * 60 + minutes;
	return digits + 3;
}

int
quiet_parse_window(
    const char *text, unsigned int *start_minute, unsigned int *end_minute)
{
	unsigned int start, end;
	size_t used;

	if ((used = quiet_parse_time(text, &start)) == 0 || text[used] != '-')
		return -1;
	text += used + 1;
	if ((used = quiet_parse_time(text, &end)) == 0 || text[used] != '\0')
		return -1;
	if (start >= end || start >= 24 * 60)
		return -1;
	*start_minute = start;
	*end_minute = end;
	return 0;
}

/* "mon" .. "sun" at text -> 1 .. 7, or 0. */
static unsigned int
quiet_parse_day(const char *text)
{
	size_t i;

	for (i = 0; i < sizeof(quiet_day_names) / sizeof(quiet_day_names[0]);
	     i++)
		if (strncasecmp(text, quiet_day_names[i], 3) == 0)
			return (unsigned int)i + 1;
	return 0;
}

int
quiet_parse_days(const char *text, unsigned int *day_mask)
{
	unsigned int mask = 0, first, last, day;

	for (;;) {
		if ((first = quiet_parse_day(text)) == 0)
			return -1;
		text += 3;
		last = first;
		if (text[0] == '-') {
			if ((last = quiet_parse_day(text + 1)) == 0)
				return -1;
			text += 4;
		}
		/* A range may wrap the week: fri-mon. */
		for (day = first;; day = day % 7 + 1) {
			mask |= 1u << day;
			if (day == last)
				break;
		}
		if (text[0] == '\0')
			break;
		if (text[0] != ',')
			return -1;
		text++;
		while (text[0] == ' ')
			text++;
	}
	*day_mask = mask;
	return 0;
}

/* Builds a window from config text; fallback where the text is empty. */
static int
quiet_window_from_text(const char *window_text, const char *days_text,
    const struct quiet_window *fallback, struct quiet_window *window)
{
	unsigned int start, end, days;

	*window = *fallback;
	if (window_text != NULL && window_text[0] != '\0') {
		if (quiet_parse_window(window_text, &start, &end) == -1)
			return -1;
		window->start_second = start * 60;
		window->end_second = end * 60;
	}
	if (days_text != NULL && days_text[0] != '\0') {
		if (quiet_parse_days(days_text, &days) == -1)
			return -1;
		window->day_mask = days;
	}
	return 0;
}

/* The defaults, so quiet_check works before quiet_init (tests, tools). */
static void
quiet_defaults(void)
{
	if (quiet.initialized)
		return;
	quiet.initialized = 1;
	quiet.enabled = 1;
	quiet.default_window.start_second = 8 * 3600;
	quiet.default_window.end_second = 21 * 3600;
	quiet.default_window.day_mask = ALL_DAYS;
	quiet.fallback = g_time_zone_new_utc();
}

void
quiet_init(const struct config *config)
{
	struct quiet_window window;
	const struct config_quiet *section;
	const char *code;
	GTimeZone *fallback;
	size_t i;

	quiet_free();
	quiet_defaults();
	quiet.enabled = config->quiet_enabled;
	if (quiet_window_from_text(config->quiet_window, config->quiet_days,
		&quiet.default_window, &window) == 0)
		quiet.default_window = window;
	else
		log_warnx(0, "quiet", "bad-default-window",
		    "window=\"%s\" days=\"%s\" using=08:00-21:00",
		    config->quiet_window, config->quiet_days);
	if (config->quiet_fallback_zone != NULL &&
	    config->quiet_fallback_zone[0] != '\0') {
		fallback =
		    g_time_zone_new_identifier(config->quiet_fallback_zone);
		if (fallback != NULL) {
			g_time_zone_unref(quiet.fallback);
			quiet.fallback = fallback;
		} else
			log_warnx(0, "quiet", "unknown-fallback-zone",
			    "zone=\"%s\" using=UTC",
			    config->quiet_fallback_zone);
	}
	if (config->quiet_count == 0)
		return;
	quiet.countries = calloc(config->quiet_count, sizeof(*quiet.countries));
	if (quiet.countries == NULL)
		fatal("quiet", "out-of-memory", NULL);
	for (i = 0; i < config->quiet_count; i++) {
		section = config->quiets[i];
		code = phone_calling_code(section->name);
		if (code == NULL ||
		    quiet_window_from_text(section->window, section->days,
			&quiet.default_window, &window) == -1) {
			log_warnx(0, "quiet", "bad-country-window",
			    "country=%s", section->name);
			continue;
		}
		snprintf(quiet.countries[quiet.country_count].calling_code,
		    sizeof(quiet.countries[0].calling_code), "%s", code);
		quiet.countries[quiet.country_count].window = window;
		quiet.country_count++;
	}
}

void
quiet_free(void)
{
	size_t i, count;

	if (!quiet.initialized)
		return;
	count = prefix_zones_zone_count();
	for (i = 0; quiet.table_zones != NULL && i < count; i++)
		if (quiet.table_zones[i] != NULL)
			g_time_zone_unref(quiet.table_zones[i]);
	free(quiet.table_zones);
	free(quiet.table_states);
	for (i = 0; i < QUIET_PROFILE_CACHE; i++)
		if (quiet.profile_zones[i].tz != NULL)
			g_time_zone_unref(quiet.profile_zones[i].tz);
	if (quiet.fallback != NULL)
		g_time_zone_unref(quiet.fallback);
	free(quiet.countries);
	memset(&quiet, 0, sizeof(quiet));
}

/* The GTimeZone of the prefix table's zone index, created once. */
static GTimeZone *
quiet_table_zone(uint16_t zone)
{
	size_t count = prefix_zones_zone_count();

	if (quiet.table_zones == NULL) {
		quiet.table_zones = calloc(count, sizeof(*quiet.table_zones));
		quiet.table_states = calloc(count, sizeof(*quiet.table_states));
		if (quiet.table_zones == NULL || quiet.table_states == NULL)
			fatal("quiet", "out-of-memory", NULL);
	}
	if (zone >= count)
		return NULL;
	if (quiet.table_states[zone] == QUIET_SLOT_UNRESOLVED) {
		quiet.table_zones[zone] =
		    g_time_zone_new_identifier(prefix_zones_name(zone));
		quiet.table_states[zone] = quiet.table_zones[zone] != NULL
					       ? QUIET_SLOT_KNOWN
					       : QUIET_SLOT_MISSING;
		if (quiet.table_zones[zone] == NULL)
			log_warnx(0, "quiet", "zone-missing",
			    "zone=%s using=fallback", prefix_zones_name(zone));
	}
	return quiet.table_zones[zone];
}

/* A profile's zone through the LRU cache; NULL if it names no zone. */
static GTimeZone *
quiet_profile_zone(const char *name)
{
	struct quiet_cached_zone *slot, *oldest = &quiet.profile_zones[0];
	size_t i;

	if (strlen(name) >= QUIET_ZONE_NAME_SIZE)
		return NULL;
	for (i = 0; i < QUIET_PROFILE_CACHE; i++) {
		slot = &quiet.profile_zones[i];
		if (slot->last_used != 0 && strcmp(slot->name, name) == 0) {
			slot->last_used = ++quiet.use_counter;
			return slot->tz;
		}
		if (slot->last_used < oldest->last_used)
			oldest = slot;
	}
	if (oldest->tz != NULL)
		g_time_zone_unref(oldest->tz);
	snprintf(oldest->name, sizeof(oldest->name), "%s", name);
	/* Unknown names are cached too (tz NULL): no retry per message. */
	oldest->tz = g_time_zone_new_identifier(name);
	oldest->last_used = ++quiet.use_counter;
	return oldest->tz;
}

/* The candidate zones of a recipient; returns how many (at least 1). */
static size_t
quiet_candidate_zones(
    const char *number, const char *profile_zone, GTimeZone **zones)
{
	const uint16_t *table;
	size_t count, used = 0, i;
	GTimeZone *tz;

	if (profile_zone != NULL && profile_zone[0] != '\0' &&
	    (tz = quiet_profile_zone(profile_zone)) != NULL) {
		zones[0] = tz;
		return 1;
	}
	count = prefix_zones_lookup(number, &table, NULL);
	if (count > QUIET_MAX_ZONES)
		count = QUIET_MAX_ZONES;
	for (i = 0; i < count; i++)
		if ((tz = quiet_table_zone(table[i])) != NULL)
			zones[used++] = tz;
	if (used < count || used == 0)
		zones[used++] = quiet.fallback;
	return used;
}

/* The windows that apply to number: its country's, else the default. */
static size_t
quiet_windows_for(const char *number, const struct quiet_window **windows)
{
	size_t i, count = 0;

	if (number[0] == '+')
		number++;
	for (i = 0; i < quiet.country_count && count < QUIET_MAX_WINDOWS; i++)
		if (strncmp(number, quiet.countries[i].calling_code,
			strlen(quiet.countries[i].calling_code)) == 0)
			windows[count++] = &quiet.countries[i].window;
	if (count == 0)
		windows[count++] = &quiet.default_window;
	return count;
}

/* UTC offset of tz at an instant, in seconds. */
static int64_t
quiet_offset(GTimeZone *tz, int64_t unix_seconds)
{
	return g_time_zone_get_offset(tz,
	    g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, unix_seconds));
}

/* Floor division, for days before 1970 too. */
static int64_t
quiet_floor_divide(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* ISO weekday (1 Monday .. 7 Sunday) of a day count since 1970-01-01. */
static unsigned int
quiet_weekday(int64_t day)
{
	/* 1970-01-01 was a Thursday. */
	return (unsigned int)(((day % 7) + 7 + 3) % 7) + 1;
}

/*
 * Seconds from local wall time `local` (seconds since the epoch as if
 * UTC) until the next start of window, assuming no offset change; 0 if
 * local is inside it, INT64_MAX if it never opens.
 */
static int64_t
quiet_seconds_to_window(const struct quiet_window *window, int64_t local)
{
	int64_t day = quiet_floor_divide(local, SECONDS_PER_DAY);
	int64_t second = local - day * SECONDS_PER_DAY;
	int64_t k;

	if ((window->day_mask & (1u << quiet_weekday(day))) != 0) {
		if (second >= window->start_second &&
		    second < window->end_second)
			return 0;
		if (second < window->start_second)
			return window->start_second - second;
	}
	for (k = 1; k <= 7; k++)
		if ((window->day_mask & (1u << quiet_weekday(day + k))) != 0)
			return k * SECONDS_PER_DAY + window->start_second -
			       second;
	return INT64_MAX;
}

/* The first second in (low, high] where tz's offset is not offset. */
static int64_t
quiet_find_transition(GTimeZone *tz, int64_t low, int64_t high, int64_t offset)
{
	int64_t middle;

	while (high - low > 1) {
		middle = low + (high - low) / 2;
		if (quiet_offset(tz, middle) == offset)
			low = middle;
		else
			high = middle;
	}
	return high;
}

int
quiet_check(const char *number, const char *profile_zone, uint64_t when_us,
    uint64_t *allowed_us)
{
	GTimeZone *zones[QUIET_MAX_ZONES + 1];
	const struct quiet_window *windows[QUIET_MAX_WINDOWS];
	size_t zone_count, window_count, z, w, steps;
	int64_t when = (int64_t)(when_us / 1000000), now, next, bound;
	int64_t offset, skip;
	int inside;
	char masked[LOG_MASKED_NUMBER_SIZE];

	quiet_defaults();
	if (!quiet.enabled)
		return 0;
	zone_count = quiet_candidate_zones(number, profile_zone, zones);
	window_count = quiet_windows_for(number, windows);
	now = when;
	for (steps = 0; steps < QUIET_MAX_STEPS; steps++) {
		if (now - when > QUIET_HORIZON_SECONDS)
			break;
		inside = 1;
		next = now;
		for (z = 0; z < zone_count; z++) {
			offset = quiet_offset(zones[z], now);
			for (w = 0; w < window_count; w++) {
				skip = quiet_seconds_to_window(
				    windows[w], now + offset);
				if (skip == 0)
					continue;
				inside = 0;
				if (skip > QUIET_MAX_JUMP)
					skip = QUIET_MAX_JUMP;
				bound = now + skip;
				/* An offset change before the window opens
				 * moves the local clock: stop there. */
				if (quiet_offset(zones[z], bound - 1) != offset)
					bound = quiet_find_transition(
					    zones[z], now, bound - 1, offset);
				if (bound > next)
					next = bound;
			}
		}
		if (inside) {
			if (now == when)
				return 0;
			*allowed_us = (uint64_t)now * 1000000;
			return 1;
		}
		now = next;
	}
	/* Windows that never meet in all the zones: try again later. */
	log_warnx(0, "quiet", "no-window", "number=%s zones=%zu",
	    log_mask_number(number, masked, sizeof(masked)), zone_count);
	*allowed_us = (uint64_t)(when + QUIET_HORIZON_SECONDS) * 1000000;
	return 1;
}
