#!/bin/sh
# test_crash_outbox.sh - kill -9 nudged while messages stream in over HTTP,
# restart it, and hold it to every 202 it gave: each such message is in the
# store and reaches the SMSC exactly once, or is UNKNOWN (sent before the
# crash, never resent). Prints the counts.
. tests/integration/lib.sh

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT" "window = 128"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"

for round in 1 2; do
	: >"$SCRATCH/accepted.$round"
	perl tests/integration/post_messages.pl "$HTTP_PORT" "$TOKEN" 200000 \
	    "crash-$round" "$SCRATCH/accepted.$round" $((round == 2 ? 50 : 1)) \
	    >"$SCRATCH/poster.$round.out" 2>&1 &
	poster=$!
	PIDS="$PIDS $poster"
	wait_for 30 sh -c "[ \$(wc -l <\"$SCRATCH/accepted.$round\") -ge 1500 ]" ||
	    fail "round $round: fewer than 1500 messages accepted in 30 s"
	kill -KILL "$NUDGED_PID"
	wait "$NUDGED_PID" 2>/dev/null || true
	wait "$poster" 2>/dev/null || true
	pass "round $round: killed nudged (-9) after $(wc -l <"$SCRATCH/accepted.$round") accepted messages; $(cat "$SCRATCH/poster.$round.out")"
	restart_nudged "$SCRATCH/nudged.conf"
	wait_for 10 link_bound sim || fail "round $round: link did not bind after restart"
	grep "outbox recovered" "$SCRATCH/nudged.log" | tail -n 1
	perl tests/integration/check_outbox.pl "$HTTP_PORT" "$TOKEN" \
	    "$SCRATCH/accepted.$round" "$SCRATCH/sink.rec" "crash-$round" 60 \
	    >"$SCRATCH/check.$round" 2>&1 || fail "round $round: $(cat "$SCRATCH/check.$round")"
	pass "round $round: $(tr '\n' ' ' <"$SCRATCH/check.$round")"
done
# Round 3: the SMSC stalls, so the window fills and messages wait in the
# queue when nudged dies; after the restart the queued ones must go out.
sim_command "stall 3000"
: >"$SCRATCH/accepted.3"
perl tests/integration/post_messages.pl "$HTTP_PORT" "$TOKEN" 600 crash-3 \
    "$SCRATCH/accepted.3" 20 >"$SCRATCH/poster.3.out" 2>&1 ||
    fail "round 3: posting failed"
kill -KILL "$NUDGED_PID"
wait "$NUDGED_PID" 2>/dev/null || true
pass "round 3: killed nudged (-9) with the SMSC stalled; $(cat "$SCRATCH/poster.3.out")"
restart_nudged "$SCRATCH/nudged.conf"
recovered=$(grep "outbox recovered" "$SCRATCH/nudged.log" | tail -n 1)
echo "$recovered"
queued=$(echo "$recovered" | sed 's/.*queued=\([0-9]*\).*/\1/')
[ "$queued" -gt 0 ] || fail "round 3: nothing was waiting in the queue at the crash"
perl tests/integration/check_outbox.pl "$HTTP_PORT" "$TOKEN" \
    "$SCRATCH/accepted.3" "$SCRATCH/sink.rec" crash-3 60 \
    >"$SCRATCH/check.3" 2>&1 || fail "round 3: $(cat "$SCRATCH/check.3")"
pass "round 3: $queued messages waited in the queue across the crash; $(tr '\n' ' ' <"$SCRATCH/check.3")"

stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stopped with $STOP_STATUS"
