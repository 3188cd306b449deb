#!/bin/sh
# test_upstream_faults.sh - the upstream SMSC misbehaves while messages flow:
# it drops the connection mid-window, stops answering, answers 0x58 for a
# while, sends receipts before responses, sends a malformed PDU. Every
# accepted message must end in a final state, none may reach the SMSC twice,
# and nudged must keep serving.
. tests/integration/lib.sh

metric() {
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep "^$1 " | awk '{print $2}'
}

# fault NAME COUNT COMMAND: posts COUNT messages, applies COMMAND to the
# simulator while they flow, then holds nudged to every 202.
fault() {
	name=$1
	: >"$SCRATCH/accepted.$name"
	perl tests/integration/post_messages.pl "$HTTP_PORT" "$TOKEN" "$2" \
	    "fault-$name" "$SCRATCH/accepted.$name" 10 >"$SCRATCH/poster.$name" 2>&1 &
	poster=$!
	sleep 0.3
	sim_command "$3"
	wait "$poster" || fail "$name: poster failed"
	perl tests/integration/check_outbox.pl "$HTTP_PORT" "$TOKEN" \
	    "$SCRATCH/accepted.$name" "$SCRATCH/sink.rec" "fault-$name" 60 \
	    >"$SCRATCH/check.$name" 2>&1 || fail "$name: $(cat "$SCRATCH/check.$name")"
	curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || fail "$name: nudged stopped serving"
	pass "$name: $(head -n 1 "$SCRATCH/check.$name")"
}

SIM_PORT=$(free_port)
# Responses 100 ms late keep a window of submits in flight; a tenth of the
# receipts overtake their response.
start_sim "$SIM_PORT" --latency-ms 100 --receipt-before-response-rate 0.1
write_config "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT" "window = 64" \
    "response_timeout = 1s" "enquire_link = 1s"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"

fault drop 1500 drop
grep -q 'reason=connection-lost' "$SCRATCH/nudged.log" || fail "drop: no part was in flight at the drop"
wait_for 10 link_bound sim || fail "drop: link did not rebind"
fault stall 800 "stall 3000"
grep -q 'reason=response-timeout' "$SCRATCH/nudged.log" || fail "stall: no response timeout was seen"
wait_for 15 link_bound sim || fail "stall: link did not rebind"
fault throttle 1500 "throttle 1500"
[ "$(metric 'nudge_link_throttled_total{link="sim"}')" -gt 0 ] || fail "throttle: nudged never saw 0x58"
[ "$(metric nudge_outbox_requeued_total)" -gt 0 ] || fail "throttle: nothing was requeued"
pass "throttle: $(metric 'nudge_link_throttled_total{link="sim"}') throttled responses, $(metric nudge_outbox_requeued_total) parts requeued and sent later"
held=$(metric nudge_receipts_held_total)
[ "$held" -gt 0 ] || fail "no receipt came before its response"
[ "$(metric nudge_receipts_unmatched_total)" = 0 ] || fail "receipts left unmatched: $(metric nudge_receipts_unmatched_total)"
pass "$held receipts overtook their submit_sm_resp and were matched when it came"
stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stopped with $STOP_STATUS"

# A malformed PDU from the SMSC (message_state TLV two octets long): nudged
# answers with ESME_RINVPARLEN and the session goes on.
UP_PORT=$(free_port)
start_netsmpp "$UP_PORT"
write_config "$SCRATCH/nudged2.conf"
add_link "$SCRATCH/nudged2.conf" up "$UP_PORT"
rm -rf "$SCRATCH/var"
start_nudged "$SCRATCH/nudged2.conf"
wait_for 10 link_bound up || fail "link up never bound"
echo "deliver 393401111111 12345 4 0 $(hex 'id:77 stat:DELIVRD err:000') message_state=0202" >>"$SCRATCH/netsmpp.control"
wait_for 10 grep -q '"command":"deliver_sm_resp".*"status":194' "$SCRATCH/netsmpp.jsonl" ||
    fail "malformed deliver_sm not answered with ESME_RINVPARLEN (0xC2): $(grep deliver_sm_resp "$SCRATCH/netsmpp.jsonl")"
api_post /v1/messages '{"to":"+393401234599","text":"after the bad PDU"}'
[ "$HTTP_CODE" = 202 ] || fail "POST after the bad PDU: $HTTP_CODE"
wait_state "$(reply .id)" DELIVERED 10 || fail "the session did not survive the malformed PDU"
pass "a malformed PDU got ESME_RINVPARLEN; the same session delivered the next message"
