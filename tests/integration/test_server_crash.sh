#!/bin/sh
# test_server_crash.sh - kill -9 nudged while scripted ESMEs submit over
# SMPP at full speed (window 10), restart it, and hold it to every
# submit_sm_resp it gave: each such message is in the store and reaches the
# SMSC (smsc-sim) exactly once, or is UNKNOWN (sent before the crash, never
# resent). A last round crashes with the SMSC stalled, so accepted messages
# wait in the queue and must go out after the restart. Prints the counts.
. tests/integration/lib.sh
CLIENT=tests/integration/peers/esme_client.pl

# flood ROUND NAME PREFIX: a scripted ESME submitting "PREFIX k" with a
# window of 10; every ROK goes to $SCRATCH/accepted.NAME as "k id".
flood() {
	: >"$SCRATCH/accepted.$2"
	perl "$CLIENT" --limit 120 "$SMPP_PORT" bind transmitter esme esmepw1 \
	    flood 200000 10 4930123 0 "$3" "$SCRATCH/accepted.$2" \
	    >"$SCRATCH/flood.$2.out" 2>&1 &
	FLOOD_PID=$!
	PIDS="$PIDS $FLOOD_PID"
}

# accepted_at_least NAME N: true once N submits of flood NAME were answered.
accepted_at_least() {
	[ "$(wc -l <"$SCRATCH/accepted.$1")" -ge "$2" ]
}

# check NAME PREFIX: check_outbox.pl over flood NAME's promises.
check() {
	perl tests/integration/check_outbox.pl "$HTTP_PORT" "$TOKEN" \
	    "$SCRATCH/accepted.$1" "$SCRATCH/sink.rec" "$2" 60 \
	    >"$SCRATCH/check.$1" 2>&1 || fail "$1: $(cat "$SCRATCH/check.$1")"
}

# crash: kill -9 nudged, let the ESMEs see the close, restart it.
crash() {
	kill -KILL "$NUDGED_PID"
	wait "$NUDGED_PID" 2>/dev/null || true
	for pid in $FLOODS; do
		wait "$pid" 2>/dev/null || true
	done
}

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT" "window = 128"
cat >>"$SCRATCH/nudged.conf" <<CONF
[account esme]
system_id = esme
password = esmepw1
CONF
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"

# Rounds 1 and 2: one ESME, then two at once, killed mid-stream.
for round in 1 2; do
	FLOODS=""
	names=""
	sessions=$round
	for session in $(seq 1 "$sessions"); do
		name=$round.$session
		flood "$round" "$name" "crash-$name"
		FLOODS="$FLOODS $FLOOD_PID"
		names="$names $name"
	done
	for name in $names; do
		wait_for 30 accepted_at_least "$name" 1500 ||
		    fail "round $round: ESME $name got fewer than 1500 responses in 30 s: $(cat "$SCRATCH/flood.$name.out")"
	done
	crash
	for name in $names; do
		pass "round $round: killed nudged (-9) after $(wc -l <"$SCRATCH/accepted.$name") submit_sm_resp to ESME $name; $(grep "^flood" "$SCRATCH/flood.$name.out")"
		grep -q '^flood .* eof=1$' "$SCRATCH/flood.$name.out" ||
		    fail "round $round: ESME $name did not see the connection close"
	done
	restart_nudged "$SCRATCH/nudged.conf"
	wait_for 10 link_bound sim || fail "round $round: link did not bind after restart"
	grep "outbox recovered" "$SCRATCH/nudged.log" | tail -n 1
	for name in $names; do
		check "$name" "crash-$name"
		pass "round $round, ESME $name: $(tr '\n' ' ' <"$SCRATCH/check.$name")"
	done
done

# Round 3: the SMSC stalls, so accepted submits wait in the queue when
# nudged dies; after the restart the queued ones must go out.
sim_command "stall 10000"
FLOODS=""
flood 3 3 crash-3
FLOODS=$FLOOD_PID
wait_for 30 accepted_at_least 3 1000 ||
    fail "round 3: fewer than 1000 responses with the SMSC stalled: $(cat "$SCRATCH/flood.3.out")"
crash
pass "round 3: killed nudged (-9) with the SMSC stalled after $(wc -l <"$SCRATCH/accepted.3") submit_sm_resp; $(grep "^flood" "$SCRATCH/flood.3.out")"
restart_nudged "$SCRATCH/nudged.conf"
recovered=$(grep "outbox recovered" "$SCRATCH/nudged.log" | tail -n 1)
echo "$recovered"
queued=$(echo "$recovered" | sed -n 's/.*queued=\([0-9]*\).*/\1/p')
[ "${queued:-0}" -gt 0 ] || fail "round 3: nothing was waiting in the queue at the crash: $recovered"
check 3 crash-3
pass "round 3: $queued messages waited in the queue across the crash; $(tr '\n' ' ' <"$SCRATCH/check.3")"

stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stopped with $STOP_STATUS"
