#!/bin/sh
# soak.sh - SOAK_SECONDS (600) of steady load under faults, then every
# promise nudged made is checked. `make soak`; never in CI.
#
# Load, restarted whenever it stops (nudged died) and nudged is up again:
#   events     http_driver POSTs /v1/events (one per request, 4
#              connections) at SOAK_EVENT_RATE (200/s), each a new
#              subscriber whose browse-abandonment journey waits 2 h
#   submits    smpp_load relays submit_sm over 2 transmitter binds at
#              SOAK_SUBMIT_RATE (300/s) to smsc-sim; every submit_sm_resp
#              with ESME_ROK is recorded as "k message_id"
# Faults, one every SOAK_FAULT_EVERY (12) seconds, in turn: kill -9 and
# restart nudged; throttle the sink (0x58) for 3 s; kill -9 and restart the
# sink; kill nudged again; stall the sink for 3 s; restart the sink. Kills of nudged happen in the first half
# only: the second half, on one nudged, measures memory and file
# descriptors (baseline SOAK_WARM_UP (30) s into it, a reading every 10 s,
# then at the end).
#
# At the end: every accepted submit in a final state and at the sink
# exactly once, or UNKNOWN (check_outbox.pl); no text twice at the sink;
# every 202 for an event found again by its unique_id (re-posted: nudged
# answers "duplicate" for what it stored; a count check, since the driver
# counts 2xx but does not say which); anonymous memory (RssAnon, the heap)
# within 10 % or 1 MB (VmRSS and Private_* of smaps_rollup printed too: LMDB pages
# read through the map count in both); no fd growth.
# Exit 1 on any broken promise.
. tests/bench/bench_lib.sh

LOAD=${SMPP_LOAD:-$BUILD/bench/smpp_load}
SIM=$BUILD/smsc-sim
TOTAL=${SOAK_SECONDS:-600}
EVENT_RATE=${SOAK_EVENT_RATE:-200}
SUBMIT_RATE=${SOAK_SUBMIT_RATE:-300}
FAULT_EVERY=${SOAK_FAULT_EVERY:-12}
WARM_UP=${SOAK_WARM_UP:-30}
TRACE_EVERY=10
EVENT_CONNECTIONS=4
FIRST_EVENT=3400000000 # event numbers +3934xxxxxxxx

[ -x "$LOAD" ] || fail "$LOAD is missing (make $LOAD)"
[ -x "$SIM" ] || fail "$SIM is missing (make $SIM)"

cat >"$SCRATCH/event.json" <<'EVENT'
{"metric":"Viewed Product","unique_id":"soak-{{n}}","profile":{"phone_number":"+39{{n}}","first_name":"Giulia"},"properties":{"ProductID":"p-{{n}}","ProductName":"Sneakers Aria","Categories":["Shoes"],"URL":"https://shop.example/p/{{n}}","Price":59.0}}
EVENT

# The event check: re-posts each event of the ranges given as FROM:TO and
# counts the ones nudged already held (reply "duplicate": true).
cat >"$SCRATCH/events_found.pl" <<'PERL'
use strict;
use warnings;
use lib 'tests/integration';
use JSON::PP;
use NudgeHTTP;
my ($port, $token, $template_file, @ranges) = @ARGV;
open(my $fh, '<', $template_file) or die "$template_file: $!\n";
my $template = do { local $/; <$fh> };
close $fh;
my $http = NudgeHTTP->new($port, $token);
my ($found, $new, $errors) = (0, 0, 0);
for my $range (@ranges) {
	my ($from, $to) = split /:/, $range;
	for my $n ($from .. $to - 1) {
		(my $body = $template) =~ s/\{\{n\}\}/$n/g;
		my ($status, $content) = $http->request('POST', '/v1/events', $body);
		if ($status < 200 || $status > 299) {
			$errors++;
			next;
		}
		my $reply = eval { decode_json($content) } || {};
		if ($reply->{duplicate}) { $found++ } else { $new++ }
	}
}
print "found=$found new=$new errors=$errors\n";
PERL

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
bench_config "$SCRATCH/nudged.conf" yes "quiet_hours = no"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT" "window = 256"
cat >>"$SCRATCH/nudged.conf" <<CONF
[account load]
system_id = load
password = loadpw1
max_transmitters = 4
CONF
# bench_config names a fresh data_dir per call; the soak keeps one.
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "the link to smsc-sim never bound"

EVENT_RUNS=0
EVENT_PID=""
SUBMIT_RUNS=0
SUBMIT_PID=""
NEXT_EVENT=$FIRST_EVENT
NEXT_SUBMIT=0
KILLS=0
SINK_RESTARTS=0
THROTTLES=0
STALLS=0
FAULT=0
START=$(date +%s)

# forget PID: drops an ended child from PIDS (pids wrap in minutes here).
forget() {
	PIDS=$(echo " $PIDS " | sed "s/ $1 / /g")
}

# event_run_settle: reads the last driver run's counts into the ledger
# (range issued, 2xx) once it has exited.
event_run_settle() {
	[ -n "$EVENT_PID" ] || return 0
	wait "$EVENT_PID" 2>/dev/null || true
	forget "$EVENT_PID"
	EVENT_PID=""
	out="$SCRATCH/events.$EVENT_RUNS.out"
	line=$(grep '^  requests ' "$out" || echo "requests 0 (2xx 0, other 0, failed 0)")
	completed=$(echo "$line" | sed 's/.*requests *\([0-9]*\) .*/\1/')
	ok=$(echo "$line" | sed 's/.*2xx \([0-9]*\),.*/\1/')
	to=$((EVENT_FIRST + completed + EVENT_CONNECTIONS + 1))
	echo "$EVENT_FIRST:$to $ok" >>"$SCRATCH/events.ledger"
	NEXT_EVENT=$to
}

# start_events: a new driver run on numbers nobody used yet.
start_events() {
	EVENT_RUNS=$((EVENT_RUNS + 1))
	EVENT_FIRST=$NEXT_EVENT
	"$DRIVER" --port "$HTTP_PORT" --connections "$EVENT_CONNECTIONS" \
	    --requests $((EVENT_RATE * (TOTAL + 60))) --rate "$EVENT_RATE" \
	    --path /v1/events --token "$TOKEN" \
	    --body-file "$SCRATCH/event.json" --first "$EVENT_FIRST" \
	    --max-errors 20 --name "soak.events.$EVENT_RUNS" \
	    >"$SCRATCH/events.$EVENT_RUNS.out" 2>&1 &
	EVENT_PID=$!
	PIDS="$PIDS $EVENT_PID"
}

# submit_run_settle: the last smpp_load run has exited; move k on.
submit_run_settle() {
	[ -n "$SUBMIT_PID" ] || return 0
	wait "$SUBMIT_PID" 2>/dev/null || true
	forget "$SUBMIT_PID"
	SUBMIT_PID=""
	issued=$(sed -n 's/^  submits *\([0-9]*\) .*/\1/p' \
	    "$SCRATCH/submits.$SUBMIT_RUNS.out")
	NEXT_SUBMIT=$((NEXT_SUBMIT + ${issued:-0} + 1000))
}

# start_submits: a new smpp_load run with a prefix of its own.
start_submits() {
	SUBMIT_RUNS=$((SUBMIT_RUNS + 1))
	: >"$SCRATCH/accepted.$SUBMIT_RUNS"
	"$LOAD" --port "$SMPP_PORT" --system-id load --password loadpw1 \
	    --binds 2 --window 32 --messages $((SUBMIT_RATE * (TOTAL + 60))) \
	    --rate "$SUBMIT_RATE" --first "$NEXT_SUBMIT" \
	    --prefix "soak-$SUBMIT_RUNS nudge load test, a GSM 7-bit text of 60" \
	    --record "$SCRATCH/accepted.$SUBMIT_RUNS" \
	    --timeout $((TOTAL + 120)) --name "soak.submits.$SUBMIT_RUNS" \
	    >"$SCRATCH/submits.$SUBMIT_RUNS.out" 2>&1 &
	SUBMIT_PID=$!
	PIDS="$PIDS $SUBMIT_PID"
}

# kill_nudged: kill -9 by PID, then start it again on the same store.
kill_nudged() {
	kill -KILL "$NUDGED_PID"
	wait "$NUDGED_PID" 2>/dev/null || true
	forget "$NUDGED_PID"
	KILLS=$((KILLS + 1))
	sleep 0.5
	start_nudged "$SCRATCH/nudged.conf"
}

# restart_sink: kill -9 smsc-sim (its record is flushed before each batch
# of responses, so nothing it acked is missing) and start it again.
restart_sink() {
	kill -KILL "$SIM_PID"
	wait "$SIM_PID" 2>/dev/null || true
	forget "$SIM_PID"
	exec 7>&-
	SINK_RESTARTS=$((SINK_RESTARTS + 1))
	sleep 0.5
	start_sim "$SIM_PORT"
}

# memory_reading: VmRSS, private (anonymous + dirty) kB and open fds of
# the running nudged, as "rss private fds".
memory_reading() {
	rss=$(status_kb "$NUDGED_PID" VmRSS)
	private=$(awk '$1 == "Private_Clean:" || $1 == "Private_Dirty:" \
	    { sum += $2 } END { print sum + 0 }' \
	    "/proc/$NUDGED_PID/smaps_rollup")
	anon=$(status_kb "$NUDGED_PID" RssAnon)
	fds=$(find "/proc/$NUDGED_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
	echo "$rss $private $anon $fds"
}

echo "soak: ${TOTAL}s, events at $EVENT_RATE/s, submits at $SUBMIT_RATE/s," \
    "a fault every ${FAULT_EVERY}s; $(load_note)"
KILL_UNTIL=$((TOTAL / 2))
BASELINE_AT=$((KILL_UNTIL + WARM_UP))
BASELINE=""
next_fault=$FAULT_EVERY
while :; do
	elapsed=$(($(date +%s) - START))
	[ "$elapsed" -lt "$TOTAL" ] || break
	if [ -n "$EVENT_PID" ] && ! running "$EVENT_PID"; then
		event_run_settle
	fi
	if [ -n "$SUBMIT_PID" ] && ! running "$SUBMIT_PID"; then
		submit_run_settle
	fi
	[ -n "$EVENT_PID" ] || start_events
	[ -n "$SUBMIT_PID" ] || start_submits
	if [ "$elapsed" -ge "$next_fault" ]; then
		next_fault=$((next_fault + FAULT_EVERY))
		kind=$(echo 0 1 2 0 3 2 | cut -d' ' -f$((FAULT % 6 + 1)))
		FAULT=$((FAULT + 1))
		if [ "$kind" = 0 ] && [ "$elapsed" -ge "$KILL_UNTIL" ]; then
			kind=1 # the second half keeps one nudged
		fi
		case $kind in
		0)
			kill_nudged
			echo "  ${elapsed}s: killed nudged (-9), restarted as $NUDGED_PID"
			;;
		1)
			sim_command "throttle 3000"
			THROTTLES=$((THROTTLES + 1))
			echo "  ${elapsed}s: sink answers 0x58 for 3 s"
			;;
		2)
			restart_sink
			echo "  ${elapsed}s: killed the sink (-9), restarted"
			;;
		3)
			sim_command "stall 3000"
			STALLS=$((STALLS + 1))
			echo "  ${elapsed}s: sink stalls for 3 s"
			;;
		esac
	fi
	if [ -z "$BASELINE" ] && [ "$elapsed" -ge "$BASELINE_AT" ]; then
		BASELINE=$(memory_reading)
		BASELINE_PID=$NUDGED_PID
		echo "  ${elapsed}s: baseline (VmRSS private RssAnon fds): $BASELINE"
		next_trace=$((elapsed + TRACE_EVERY))
	elif [ -n "$BASELINE" ] && [ "$elapsed" -ge "$next_trace" ]; then
		echo "  ${elapsed}s: memory (VmRSS private RssAnon fds): $(memory_reading)"
		next_trace=$((elapsed + TRACE_EVERY))
	fi
	sleep 1
done

# The end: one reading under load, then the load stops and is settled.
END_READING=$(memory_reading)
END_PID=$NUDGED_PID
for pid in $EVENT_PID $SUBMIT_PID; do
	kill -TERM "$pid" 2>/dev/null || true
done
event_run_settle
submit_run_settle
link_ok=0
wait_for 20 link_bound sim && link_ok=1
[ "$link_ok" = 1 ] || echo "  warning: the link was not bound at the end"

failures=0
echo
echo "faults: $KILLS kills of nudged, $SINK_RESTARTS sink restarts," \
    "$THROTTLES throttles, $STALLS stalls"
echo "load: $EVENT_RUNS event driver runs, $SUBMIT_RUNS smpp_load runs"

# Relayed submits: each run's promises against the sink.
for run in $(seq 1 "$SUBMIT_RUNS"); do
	prefix="soak-$run nudge load test, a GSM 7-bit text of 60"
	perl tests/integration/check_outbox.pl "$HTTP_PORT" "$TOKEN" \
	    "$SCRATCH/accepted.$run" "$SCRATCH/sink.rec" "$prefix" 120 \
	    >"$SCRATCH/check.$run" 2>&1 || failures=$((failures + 1))
	echo "submits run $run: $(grep '^  submits' "$SCRATCH/submits.$run.out" |
	    sed 's/^ *//')"
	echo "  $(tr '\n' ' ' <"$SCRATCH/check.$run")"
done
totals=$(cat "$SCRATCH"/check.* | awk '
	/accepted=/ { for (i = 1; i <= NF; i++) { split($i, kv, "=");
		sum[kv[1]] += kv[2] } }
	END { printf "accepted=%d at_sink_once=%d unknown=%d duplicates=%d lost=%d stuck=%d missing=%d",
		sum["accepted"], sum["at_sink_once"], sum["unknown"],
		sum["duplicates"], sum["lost"], sum["stuck"], sum["missing"] }')
echo "submits: $totals"
# Any text twice at the sink, promised or not.
sink_total=$(wc -l <"$SCRATCH/sink.rec")
sink_duplicates=$(awk 'NF >= 9 { seen[$9]++ } END { n = 0;
	for (t in seen) if (seen[t] > 1) n++; print n }' "$SCRATCH/sink.rec")
echo "sink: $sink_total submits recorded, $sink_duplicates texts more than once"
[ "$sink_duplicates" = 0 ] || failures=$((failures + 1))

# Events: every 202 found again by its unique_id.
promised=$(awk '{ sum += $2 } END { print sum + 0 }' "$SCRATCH/events.ledger")
ranges=$(awk '{ printf "%s ", $1 }' "$SCRATCH/events.ledger")
# shellcheck disable=SC2086 # one argument per range
found_line=$(perl "$SCRATCH/events_found.pl" "$HTTP_PORT" "$TOKEN" \
    "$SCRATCH/event.json" $ranges)
found=$(echo "$found_line" | sed 's/.*found=\([0-9]*\).*/\1/')
events_lost=$((promised > found ? promised - found : 0))
echo "events: $promised answered 202; re-posted, $found_line;" \
    "lost $events_lost"
[ "$events_lost" = 0 ] || failures=$((failures + 1))

# Memory and descriptors of the last nudged, under the same load.
if [ -n "$BASELINE" ] && [ "$BASELINE_PID" = "$END_PID" ]; then
	set -- $BASELINE
	rss0=$1 private0=$2 anon0=$3 fds0=$4
	set -- $END_READING
	rss1=$1 private1=$2 anon1=$3 fds1=$4
	echo "memory: VmRSS $rss0 -> $rss1 kB ($(calc "int(($rss1 - $rss0) * 1000 / $rss0) / 10")%)," \
	    "private $private0 -> $private1 kB ($(calc "int(($private1 - $private0) * 1000 / $private0) / 10")%)," \
	    "RssAnon $anon0 -> $anon1 kB; fds $fds0 -> $fds1"
	# Private_* counts map pages only nudged touched (read-only MAP_SHARED
	# LMDB pages are "private" while no other process maps them), so the
	# heap is judged by RssAnon; the others grow with the store. A heap of
	# 3 MB moves by hundreds of kB with buffer high-water marks (a sink
	# restart queues a backlog), hence 10 % or 1 MB, whichever is larger.
	if [ "$(calc "$anon1 > $anon0 * 1.10 && $anon1 > $anon0 + 1024")" = 1 ]; then
		echo "  FAIL: anonymous memory (heap) grew more than 10%"
		failures=$((failures + 1))
	fi
	[ "$(calc "$rss1 > $rss0 * 1.10 || $private1 > $private0 * 1.10")" = 1 ] &&
	    echo "  note: VmRSS or private grew more than 10%: LMDB pages read" \
	        "through the map count in both (RssAnon is the heap)"
	# Connections may be mid-reconnect at either reading: 2 of slack.
	if [ "$fds1" -gt $((fds0 + 2)) ]; then
		echo "  FAIL: file descriptors grew"
		failures=$((failures + 1))
	fi
	bench soak.vmrss_growth "$(calc "($rss1 - $rss0) * 100 / $rss0")" percent
	bench soak.private_growth "$(calc "($private1 - $private0) * 100 / $private0")" percent
	bench soak.anon_growth "$(calc "($anon1 - $anon0) * 100 / $anon0")" percent
	bench soak.fd_growth "$((fds1 - fds0))" fds
else
	echo "memory: no baseline on the last nudged (SOAK_SECONDS too short?)"
fi
bench soak.kills "$KILLS" kills
bench soak.submits_accepted "$(echo "$totals" | sed 's/accepted=\([0-9]*\).*/\1/')" submits
bench soak.events_accepted "$promised" events
bench soak.sink_duplicates "$sink_duplicates" texts
bench soak.events_lost "$events_lost" events

stop_nudged
if [ "$failures" -gt 0 ]; then
	echo "soak: FAILED ($failures checks)"
	exit 1
fi
echo "soak: every promise kept"
