#!/bin/sh
# bench_relay.sh - submit_sm relayed through nudged: ESMEs (smpp_load) bind
# to nudged's SMPP server as one [account], nudged keeps every submit in
# LMDB and answers submit_sm_resp only after the commit that holds it, then
# relays it over a [link] to smsc-sim, which acks at once.
#
# Cases, each on a fresh nudged, store and SMSC:
#   max             K=4 binds x W=64 window, BENCH_N submits as fast as
#                   the windows allow: accepted submits/s, latency
#   paced           the same at an offered 10,000/s (BENCH_RELAY_RATE):
#                   latency from when each submit was due
#   *_nosync        both again with [store] sync = no: the durability cost
# Also nudged's CPU per submit, and how many reached the SMSC.
# Goals (issue 8): >= 50,000 submit_sm/s durable; p99 < 5 ms at 10,000/s.
#
# Run by `make bench` through tests/bench/run.sh, never by `make test`.
. tests/bench/bench_lib.sh

LOAD=${SMPP_LOAD:-$BUILD/bench/smpp_load}
SIM=$BUILD/smsc-sim
N=${BENCH_N:-100000}
RATE=${BENCH_RELAY_RATE:-10000}
BINDS=4
WINDOW=64
GOAL_RATE=50000
GOAL_P99_MS=5
SATURATED_PERCENT=85 # smpp_load.c's: its "(SATURATED ...)" threshold

[ -x "$LOAD" ] || fail "$LOAD is missing (make $LOAD)"
[ -x "$SIM" ] || fail "$SIM is missing (make $SIM)"

# sink_lines: submits the SMSC recorded so far.
sink_lines() {
	if [ -f "$SCRATCH/sink.rec" ]; then
		wc -l <"$SCRATCH/sink.rec"
	else
		echo 0
	fi
}

# sink_reached COUNT: true once the SMSC holds COUNT submits.
sink_reached() {
	[ "$(sink_lines)" -ge "$1" ]
}

# run_case CASE SYNC RATE: one smpp_load run on a fresh nudged and SMSC;
# sets CASE_RATE (accepted/s) and CASE_P99 (ms).
run_case() {
	case_name=$1
	sync=$2
	rate=$3
	rm -f "$SCRATCH/sink.rec"
	SIM_PORT=$(free_port)
	start_sim "$SIM_PORT"
	bench_config "$SCRATCH/nudged.conf" "$sync" "quiet_hours = no"
	add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT" "window = 1024"
	cat >>"$SCRATCH/nudged.conf" <<CONF
[account load]
system_id = load
password = loadpw1
max_transmitters = $BINDS
CONF
	start_nudged "$SCRATCH/nudged.conf"
	wait_for 10 link_bound sim || fail "$case_name: the link to smsc-sim never bound"
	ticks_before=$(cpu_ticks "$NUDGED_PID")
	started=$(now)
	status=0
	"$LOAD" --port "$SMPP_PORT" --system-id load --password loadpw1 \
	    --binds "$BINDS" --window "$WINDOW" --messages "$N" \
	    --rate "$rate" --name "relay.$case_name" \
	    --prefix "relay-$case_name nudge load test, a GSM 7-bit text of 60 ch" \
	    >"$SCRATCH/$case_name.out" 2>&1 || status=$?
	[ "$status" = 0 ] || [ "$status" = 3 ] ||
	    fail "smpp_load: $case_name: exit $status: $(cat "$SCRATCH/$case_name.out")"
	ticks_after=$(cpu_ticks "$NUDGED_PID")
	accepted=$(awk '/^BENCH .*\.accepted / { sub("value=", "", $3); print $3 }' \
	    "$SCRATCH/$case_name.out")
	# Relaying goes on after the last response; give it a bounded while.
	wait_for 60 sink_reached "$accepted" || true
	relay_seconds=$(calc "$(now) - $started")
	at_sink=$(sink_lines)
	stop_nudged
	stop_pid "$SIM_PID" 10
	PIDS=$(echo " $PIDS " | sed "s/ $SIM_PID / /g")
	exec 7>&-
	cat "$SCRATCH/$case_name.out"
	CASE_RATE=$(awk '/^BENCH .*\.submits_per_second / { sub("value=", "", $3); print $3 }' \
	    "$SCRATCH/$case_name.out")
	CASE_P99=$(awk '/^BENCH .*\.latency_p99 / { sub("value=", "", $3); print $3 }' \
	    "$SCRATCH/$case_name.out")
	cpu_us=$(calc "($ticks_after - $ticks_before) / $TICKS_PER_SECOND * 1e6 / ($accepted + 0.000001)")
	printf '  %-14s %s of %s accepted (%.1f s until the last)\n' \
	    "at smsc" "$at_sink" "$accepted" "$relay_seconds"
	printf '  %-14s %.1f us per accepted submit\n' "nudged cpu" "$cpu_us"
	client_cpu=$(awk '/^BENCH .*\.client_cpu / { sub("value=", "", $3); print $3 }' \
	    "$SCRATCH/$case_name.out")
	bench "relay.$case_name.offered_rate" "$rate" submit/s
	bench "relay.$case_name.driver_saturated" \
	    "$(calc "${client_cpu:-0} >= $SATURATED_PERCENT")" bool
	bench "relay.$case_name.at_sink" "$at_sink" submits
	bench "relay.$case_name.nudged_cpu_per_submit" "$(printf '%.1f' "$cpu_us")" us
	[ "$status" = 0 ] || echo "  warning: not every submit got ESME_ROK"
	[ "$at_sink" -ge "$accepted" ] ||
	    echo "  warning: only $at_sink of $accepted reached the SMSC in time"
	echo
}

echo "relay: $N submit_sm per case, $BINDS binds x window $WINDOW," \
    "smsc-sim acking at once; $(load_note)"
echo
run_case max yes 0
max=$CASE_RATE
run_case paced yes "$RATE"
paced_p99=$CASE_P99
run_case max_nosync no 0
max_nosync=$CASE_RATE
run_case paced_nosync no "$RATE"
paced_nosync_p99=$CASE_P99

ratio=$(calc "$max_nosync / ($max + 0.000001)")
echo "durability cost: sync = no accepts $(printf '%.2f' "$ratio")x the" \
    "submits/s ($max_nosync vs $max); p99 at $RATE/s: $paced_p99 ms durable," \
    "$paced_nosync_p99 ms with sync = no"
bench relay.durability_cost "$(printf '%.2f' "$ratio")" ratio
if [ "$(calc "$max >= $GOAL_RATE")" = 1 ]; then
	echo "goal: at least $GOAL_RATE durable submit_sm/s: met ($max)"
	bench relay.goal_rate_met 1 bool
else
	echo "goal: at least $GOAL_RATE durable submit_sm/s: NOT met ($max)"
	bench relay.goal_rate_met 0 bool
fi
if [ "$(calc "$paced_p99 < $GOAL_P99_MS")" = 1 ]; then
	echo "goal: p99 under $GOAL_P99_MS ms at $RATE/s durable: met" \
	    "($paced_p99 ms)"
	bench relay.goal_p99_met 1 bool
else
	echo "goal: p99 under $GOAL_P99_MS ms at $RATE/s durable: NOT met" \
	    "($paced_p99 ms)"
	bench relay.goal_p99_met 0 bool
fi
load_note
