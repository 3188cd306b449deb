#!/bin/sh
# bench_events.sh - events per second through POST /v1/events with the
# shipped rules loaded. Every event is a "Viewed Product" of a subscriber
# of its own (a distinct phone number, product and unique_id), so each one
# creates a profile and starts a browse-abandonment journey that waits 2 h.
#
# Cases, each on a fresh nudged and an empty store:
#   single8, single32     one event per request, 8 / 32 connections, durable
#   batch100              {"events":[...]} of 100, 8 connections, durable
#   batch1000             of 1000 (the API's largest), 4 connections, durable
#   *_nosync              the same with [store] sync = no: the durability cost
# Reports events/s (from the driver), journeys started (from /metrics), and
# nudged's CPU per event (from /proc), then compares with the goal.
#
# BENCH_N=100000 events per case (rounded to whole batches). Run by
# `make bench` through tests/bench/run.sh, never by `make test`.
. tests/bench/bench_lib.sh

N=${BENCH_N:-100000}
BATCH=100
GOAL=20000
FIRST=3400000000 # numbers +3934xxxxxxxx (Italian mobile)

cat >"$SCRATCH/event.json" <<'EVENT'
{"metric":"Viewed Product","unique_id":"view-{{n}}","profile":{"phone_number":"+39{{n}}","first_name":"Giulia"},"properties":{"ProductID":"p-{{n}}","ProductName":"Sneakers Aria","Categories":["Shoes"],"URL":"https://shop.example/p/{{n}}","Price":59.0}}
EVENT

# run_case NAME SYNC CONNECTIONS BATCH: one driver run on a fresh nudged;
# sets CASE_RATE (events/s).
run_case() {
	name=$1
	sync=$2
	connections=$3
	batch=$4
	bench_config "$SCRATCH/nudged.conf" "$sync"
	start_nudged "$SCRATCH/nudged.conf"
	if [ "$batch" -gt 0 ]; then
		requests=$(((N + batch - 1) / batch))
		events=$((requests * batch))
		batch_option="--batch $batch"
	else
		requests=$N
		events=$N
		batch_option=""
	fi
	started_before=$(metric nudge_journeys_started_total)
	ticks_before=$(cpu_ticks "$NUDGED_PID")
	# shellcheck disable=SC2086 # batch_option is empty or two words
	"$DRIVER" --port "$HTTP_PORT" --connections "$connections" \
	    --requests "$requests" $batch_option --path /v1/events \
	    --token "$TOKEN" --body-file "$SCRATCH/event.json" \
	    --first "$FIRST" --name "events.$name" \
	    >"$SCRATCH/$name.out" 2>&1 ||
	    fail "driver: $name: exit $?: $(cat "$SCRATCH/$name.out")"
	ticks_after=$(cpu_ticks "$NUDGED_PID")
	started=$(($(metric nudge_journeys_started_total) - started_before))
	stop_nudged
	cat "$SCRATCH/$name.out"
	CASE_RATE=$(awk '/^BENCH .*\.events_per_second / { print $3 }' \
	    "$SCRATCH/$name.out" | sed 's/^value=//')
	wall=$(awk '$1 == "wall" { print $2 }' "$SCRATCH/$name.out")
	cpu_us=$(calc "($ticks_after - $ticks_before) / $TICKS_PER_SECOND * 1e6 / $events")
	cpu_percent=$(calc "($ticks_after - $ticks_before) / $TICKS_PER_SECOND / $wall * 100")
	printf '  %-14s %s of %s\n' "journeys" "$started" "$events"
	printf '  %-14s %.1f us per event, %.0f%% of one core\n' "nudged cpu" \
	    "$cpu_us" "$cpu_percent"
	bench "events.$name.events" "$events" events
	bench "events.$name.connections" "$connections" connections
	bench "events.$name.journeys_started" "$started" journeys
	bench "events.$name.nudged_cpu_per_event" "$(printf '%.1f' "$cpu_us")" us
	bench "events.$name.nudged_cpu" "$(printf '%.0f' "$cpu_percent")" percent
	[ "$started" = "$events" ] ||
	    echo "  warning: $events events started $started journeys"
	echo
}

echo "events: $N per case, shipped rules, no upstream link; $(load_note)"
echo
run_case single8 yes 8 0
single8=$CASE_RATE
run_case single32 yes 32 0
single32=$CASE_RATE
run_case batch100 yes 8 $BATCH
batch100=$CASE_RATE
run_case batch1000 yes 4 1000
batch1000=$CASE_RATE
run_case single32_nosync no 32 0
single32_nosync=$CASE_RATE
run_case batch100_nosync no 8 $BATCH
batch100_nosync=$CASE_RATE

single_ratio=$(calc "$single32_nosync / $single32")
batch_ratio=$(calc "$batch100_nosync / $batch100")
best=$single8
best_case=single8
for pair in single32:$single32 batch100:$batch100 batch1000:$batch1000; do
	if [ "$(calc "${pair#*:} > $best")" = 1 ]; then
		best=${pair#*:}
		best_case=${pair%%:*}
	fi
done
echo "durability cost: sync = no is $(printf '%.2f' "$single_ratio")x faster" \
    "for single events (32 connections), $(printf '%.2f' "$batch_ratio")x" \
    "for batches of $BATCH"
bench events.durability_cost_single32 "$(printf '%.2f' "$single_ratio")" ratio
bench events.durability_cost_batch100 "$(printf '%.2f' "$batch_ratio")" ratio
bench events.best_durable "$best" events/s
if [ "$(calc "$best >= $GOAL")" = 1 ]; then
	echo "goal: at least $GOAL durable events/s: met by $best_case ($best)"
	bench events.goal_met 1 bool
else
	echo "goal: at least $GOAL durable events/s: NOT met (best" \
	    "$best_case, $best)"
	bench events.goal_met 0 bool
fi
echo "single events, durable: $single8/s on 8 connections, $single32/s on 32"
load_note
