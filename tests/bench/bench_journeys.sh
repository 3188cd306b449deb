#!/bin/sh
# bench_journeys.sh - journeys waiting in a delay: nudged's resident memory
# while BENCH_JOURNEYS of them wait, and how fast their timers fire.
#
# The journeys are browse-abandonment ones (shipped rules), created fast
# with batches of 1000 "Viewed Product" events, each of a subscriber of its
# own. Each waits 2 h in a durable timer row. Then POST /v1/test/clock moves
# time 2 h 1 min on, and the script watches /metrics until every journey
# has reached its SMS step (nudge_flow_sms_total + nudge_flow_sms_skipped_
# total): timers/s is journeys over that time. A fired journey renders its
# SMS, updates the profile and waits again (1 d), all in the timer's commit.
#
# Every subscriber first gets SMS consent through POST /v1/consent/import
# (CSV, 10,000 rows a request; awk prints the numbers with %.0f, as
# mawk's %d stops at 2^31): without it the browse-abandonment flow
# takes its e-mail (webhook) branch and no SMS step is ever reached.
# Quiet hours are off so the clock jump never lands in a quiet window.
#
# No SMS leaves: the config has no upstream link, so the outbox refuses
# each SMS ("no link serves this number") and the flow counts it skipped;
# the figure is the timer and journey machinery, not an SMSC's speed.
# Durable store (sync = yes). BENCH_JOURNEYS=1000000 by default.
. tests/bench/bench_lib.sh

JOURNEYS=${BENCH_JOURNEYS:-1000000}
BATCH=1000
CONNECTIONS=4
RSS_GOAL_MB=100
FIRST=3400000000 # numbers +3934xxxxxxxx (Italian mobile)
DRAIN_STALL_SECONDS=60

cat >"$SCRATCH/event.json" <<'EVENT'
{"metric":"Viewed Product","profile":{"phone_number":"+39{{n}}"},"properties":{"ProductID":"p-{{n}}","ProductName":"Sneakers Aria","Categories":["Shoes"],"URL":"https://shop.example/p/{{n}}"}}
EVENT

# memory LABEL: VmRSS and its anonymous / file-backed (LMDB map) parts.
memory() {
	rss=$(status_kb "$NUDGED_PID" VmRSS)
	anon=$(status_kb "$NUDGED_PID" RssAnon)
	file=$(status_kb "$NUDGED_PID" RssFile)
	printf '  %-22s VmRSS %.1f MB (anonymous %.1f MB, file-backed %.1f MB)\n' \
	    "memory $1" "$(calc "$rss / 1024")" "$(calc "$anon / 1024")" \
	    "$(calc "$file / 1024")"
	bench "journeys.rss_$1" "$(printf '%.1f' "$(calc "$rss / 1024")")" MB
	bench "journeys.rss_anon_$1" "$(printf '%.1f' "$(calc "$anon / 1024")")" MB
	bench "journeys.rss_file_$1" "$(printf '%.1f' "$(calc "$file / 1024")")" MB
}

fired() {
	echo $(($(metric nudge_flow_sms_total) + $(metric nudge_flow_sms_skipped_total)))
}

requests=$(((JOURNEYS + BATCH - 1) / BATCH))
JOURNEYS=$((requests * BATCH))
echo "journeys: $JOURNEYS browse-abandonment journeys, durable store," \
    "no upstream link; $(load_note)"
bench_config "$SCRATCH/nudged.conf" yes "test_clock = yes" "quiet_hours = no"
start_nudged "$SCRATCH/nudged.conf"
memory empty

# 0. SMS consent for every number the events will carry.
CONSENT_ROWS=10000
start=$(now)
offset=0
while [ "$offset" -lt "$JOURNEYS" ]; do
	awk -v first="$((FIRST + offset))" -v count="$CONSENT_ROWS" \
	    -v limit="$((JOURNEYS - offset))" 'BEGIN {
		print "phone_number,state,source,wording,time"
		if (count > limit) count = limit
		for (i = 0; i < count; i++)
			printf "+39%.0f,subscribed,form,bench-v1,\n", first + i
	}' >"$SCRATCH/consent.csv"
	code=$(curl -s -o "$SCRATCH/consent.out" -w '%{http_code}' \
	    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' \
	    --data-binary @"$SCRATCH/consent.csv" \
	    "http://127.0.0.1:$HTTP_PORT/v1/consent/import")
	case "$code" in
	2??) ;;
	*) fail "consent import at $offset: HTTP $code $(cat "$SCRATCH/consent.out")" ;;
	esac
	offset=$((offset + CONSENT_ROWS))
done
printf '  %-22s %d numbers in %.1f s\n' "consent imported" "$JOURNEYS" \
    "$(calc "$(now) - $start")"
bench journeys.consent_import_per_second \
    "$(printf '%.0f' "$(calc "$JOURNEYS / ($(now) - $start)")")" rows/s

# 1. Create the journeys: they all wait in the 2 h delay.
"$DRIVER" --port "$HTTP_PORT" --connections "$CONNECTIONS" \
    --requests "$requests" --batch "$BATCH" --path /v1/events \
    --token "$TOKEN" --body-file "$SCRATCH/event.json" --first "$FIRST" \
    --name journeys.create >"$SCRATCH/create.out" 2>&1 ||
    fail "driver: exit $?: $(cat "$SCRATCH/create.out")"
cat "$SCRATCH/create.out"
started=$(metric nudge_journeys_started_total)
[ "$started" = "$JOURNEYS" ] ||
    fail "$JOURNEYS events started $started journeys"
[ "$(fired)" = 0 ] || fail "journeys reached their SMS before the delay"
bench journeys.waiting "$JOURNEYS" journeys
sleep 1
printf "  %-22s %d, store %.0f MB used\n" "journeys waiting" "$started" \
    "$(calc "$(metric nudge_store_used_bytes) / 1048576")"
memory waiting
rss_waiting=$(status_kb "$NUDGED_PID" VmRSS)
anon_waiting=$(status_kb "$NUDGED_PID" RssAnon)

# 2. Move time past the delay and time the drain of the timer rows.
ticks_before=$(cpu_ticks "$NUDGED_PID")
commits_before=$(metric nudge_store_commits_total)
start=$(now)
curl -fsS -H "Authorization: Bearer $TOKEN" -d '{"advance_seconds": 7260}' \
    "http://127.0.0.1:$HTTP_PORT/v1/test/clock" >/dev/null ||
    fail "POST /v1/test/clock"
last=0
last_progress=$(now)
while :; do
	count=$(fired)
	stamp=$(now)
	[ "$count" -ge "$JOURNEYS" ] && break
	if [ "$count" -gt "$last" ]; then
		last=$count
		last_progress=$stamp
	elif [ "$(calc "$stamp - $last_progress > $DRAIN_STALL_SECONDS")" = 1 ]; then
		fail "the drain stalled at $count of $JOURNEYS"
	fi
	sleep 0.1
done
elapsed=$(calc "$stamp - $start")
ticks_after=$(cpu_ticks "$NUDGED_PID")
commits=$(($(metric nudge_store_commits_total) - commits_before))
rate=$(calc "$JOURNEYS / $elapsed")
cpu_us=$(calc "($ticks_after - $ticks_before) / $TICKS_PER_SECOND * 1e6 / $JOURNEYS")
printf '  %-22s %d in %.2f s: %.0f timers/s (%d commits)\n' "timers fired" \
    "$count" "$elapsed" "$rate" "$commits"
printf '  %-22s %.1f us per timer, %.0f%% of one core\n' "nudged cpu" \
    "$cpu_us" "$(calc "($ticks_after - $ticks_before) / $TICKS_PER_SECOND / $elapsed * 100")"
bench journeys.timers_per_second "$(printf '%.0f' "$rate")" timers/s
bench journeys.nudged_cpu_per_timer "$(printf '%.1f' "$cpu_us")" us
memory drained
peak=$(status_kb "$NUDGED_PID" VmHWM)
printf '  %-22s %.1f MB\n' "memory peak (VmHWM)" "$(calc "$peak / 1024")"
bench journeys.rss_peak "$(printf '%.1f' "$(calc "$peak / 1024")")" MB
stop_nudged

# VmRSS counts the LMDB pages mapped into nudged: each read through the map
# also maps the cached pages around it (fault-around), so nudged lets go of
# them once they pass [store] map_resident (32M by default; store_trim_map).
# RssAnon is what nudged itself holds.
for kind in vmrss anon; do
	if [ $kind = vmrss ]; then
		kb=$rss_waiting
		what="VmRSS"
	else
		kb=$anon_waiting
		what="private memory (RssAnon)"
	fi
	mb=$(printf '%.1f' "$(calc "$kb / 1024")")
	if [ "$(calc "$kb / 1024 < $RSS_GOAL_MB")" = 1 ]; then
		echo "goal: $JOURNEYS waiting journeys under $RSS_GOAL_MB MB," \
		    "$what: met ($mb MB)"
		bench "journeys.goal_met_$kind" 1 bool
	else
		echo "goal: $JOURNEYS waiting journeys under $RSS_GOAL_MB MB," \
		    "$what: NOT met ($mb MB)"
		bench "journeys.goal_met_$kind" 0 bool
	fi
done
load_note
