#!/bin/sh
# test_compliance_story.sh - the compliance story through the real daemon,
# smsc-sim and the shipped rules, with time moved by the test clock:
# a New York subscriber gets the "not interested?" question at an allowed
# local hour, replies 2, gets the "not my style" follow-up, replies STOP,
# gets one confirmation and nothing more; a Rome number without consent
# gets nothing (and the decision is recorded); a Rome subscriber whose SMS
# falls in quiet hours gets it at 08:00 Rome time, not before.
. tests/integration/lib.sh

clock_now() {
	curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT/v1/test/clock" |
	    perl tests/integration/jsonq.pl .now_us
}

wait_count() {
	wait_for 10 sh -c "[ \$(perl tests/integration/sink_texts.pl $SCRATCH/sink.rec $1 | wc -l) -ge $2 ]"
}

cart_removed() {
	api_post /v1/events "{\"metric\":\"Removed from Cart\",\"profile\":{\"phone_number\":\"$1\",\"first_name\":\"sam\",\"language\":\"en\"},\"properties\":{\"ProductName\":\"Linen shirt\",\"URL\":\"https://shop.example/p/7\"}}"
	[ "$HTTP_CODE" = 202 ] || fail "event for $1: $HTTP_CODE $(cat "$SCRATCH/reply.json")"
}

NY=+12125550123
ROME_NO_CONSENT=+393401130002
ROME_QUIET=+393401130003

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
sed -i 's/^quiet_hours = no$/quiet_hours = yes\norganization_name = Aria Shop/' "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"

# Move to the next 21:30 in Rome (15:30 in New York).
now=$(($(clock_now) / 1000000))
day=$(TZ=Europe/Rome date -d "@$now" +%F)
target=$(TZ=Europe/Rome date -d "$day 21:30" +%s)
[ "$target" -gt "$now" ] || target=$(TZ=Europe/Rome date -d "$day 21:30 tomorrow" +%s)
advance $((target - now))
pass "clock at $(TZ=Europe/Rome date -d "@$target" '+%F %H:%M') Rome, $(TZ=America/New_York date -d "@$target" '+%H:%M') New York"

subscribe "$NY"
subscribe "$ROME_QUIET"
cart_removed "$NY"
cart_removed "$ROME_NO_CONSENT"
cart_removed "$ROME_QUIET"
advance 3660	# past the flow's 1 h delay: 16:31 New York, 22:31 Rome

# New York: the question now, at 16:31 local.
wait_count 12125550123 1 || fail "no question to New York"
texts 12125550123 | grep -q "Not interested in Linen shirt?" || fail "question text: $(texts 12125550123)"
pass "New York got the question at an allowed local hour"

# Rome without consent: nothing, and the decision is on record.
sleep 0.5
[ "$(count_texts 393401130002)" = 0 ] || fail "a number without consent got: $(texts 393401130002)"
grep -q "policy skipped number=+3934••••••02 reason=no-consent origin=flow:not-interested" "$SCRATCH/nudged.log" ||
    fail "the no-consent decision was not recorded"
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep -q '^nudge_policy_decisions_total{reason="no-consent"} [1-9]' ||
    fail "no-consent decisions not counted"
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" |
    grep -q '^nudge_flow_step_skipped_total{flow="not-interested",step="ask-why",reason="no-consent"} 1$' ||
    fail "the skip is not counted per flow step"
pass "Rome without consent got nothing; the skip is logged and counted"

# Rome in quiet hours: deferred to 08:00 Rome, durably, visible on the message.
[ "$(count_texts 393401130003)" = 0 ] || fail "an SMS during quiet hours: $(texts 393401130003)"
"$BUILD/nudgectl" -D "$SCRATCH/var" subscriber "$ROME_QUIET" --json >"$SCRATCH/rome.json" ||
    fail "nudgectl subscriber"
message=$(perl tests/integration/jsonq.pl '.messages[0].id' "$SCRATCH/rome.json") ||
    fail "no message for the Rome subscriber: $(cat "$SCRATCH/rome.json")"
api_get "/v1/messages/$message"
not_before=$(reply .not_before) || fail "the deferral is not visible on the message: $(cat "$SCRATCH/reply.json")"
local_time=$(TZ=Europe/Rome date -d "$not_before" +%H:%M)
[ "$local_time" = 08:00 ] || fail "deferred to $local_time Rome time, not 08:00"
grep -q '"reason":"deferred-quiet-hours"' "$SCRATCH/reply.json" || fail "no deferral in the history"
"$BUILD/nudgectl" -D "$SCRATCH/var" message "$message" >"$SCRATCH/message.txt" ||
    fail "nudgectl message $message"
grep -q "reason=deferred-quiet-hours" "$SCRATCH/message.txt" ||
    fail "nudgectl message does not name the deferral: $(cat "$SCRATCH/message.txt")"
deferred=$(date -d "$not_before" +%s)
now=$(($(clock_now) / 1000000))
advance $((deferred - now - 60))	# 07:59 Rome
sleep 0.5
[ "$(count_texts 393401130003)" = 0 ] || fail "sent before 08:00 Rome: $(texts 393401130003)"
advance 120			# 08:01 Rome
wait_count 393401130003 1 || fail "no SMS at 08:00 Rome"
pass "Rome in quiet hours: deferred to 08:00 local ($not_before), sent then and not before"

# New York answers 2 (now 02:01 next day there: quiet hours!), and the
# follow-up waits for the morning; then STOP.
sim_command "mo 12125550123 12345 2"
wait_for 10 grep -q "conversation reply decision=matched" "$SCRATCH/nudged.log" || fail "the reply 2 did not match"
now=$(($(clock_now) / 1000000))
day=$(TZ=America/New_York date -d "@$now" +%F)
morning=$(TZ=America/New_York date -d "$day 08:01" +%s)
[ "$morning" -gt "$now" ] || morning=$(TZ=America/New_York date -d "$day 08:01 tomorrow" +%s)
advance $((morning - now))
wait_count 12125550123 2 || fail "no 'not my style' follow-up"
texts 12125550123 | sed -n 2p | grep -q "Our stylists will e-mail you" || fail "follow-up text: $(texts 12125550123)"
pass "reply 2 started the 'not my style' follow-up, sent in New York's morning"

sim_command "mo 12125550123 12345 STOP"
wait_count 12125550123 3 || fail "no STOP confirmation"
texts 12125550123 | sed -n 3p | grep -qi "stop\|unsubscribed\|no more" || fail "confirmation: $(texts 12125550123)"
cart_removed "$NY"
advance 7200
sleep 1
[ "$(count_texts 12125550123)" = 3 ] || fail "texts after STOP: $(texts 12125550123)"
pass "STOP: one confirmation, then nothing more even when a flow triggers again"

# Every decision is visible per subscriber, with the consent history.
"$BUILD/nudgectl" -D "$SCRATCH/var" subscriber "$ROME_NO_CONSENT" >"$SCRATCH/no-consent.txt"
grep -q "skipped reason=no-consent .*origin=flow:not-interested step=ask-why" "$SCRATCH/no-consent.txt" ||
    fail "nudgectl subscriber does not show the no-consent decision: $(cat "$SCRATCH/no-consent.txt")"
"$BUILD/nudgectl" -D "$SCRATCH/var" subscriber "$ROME_QUIET" >"$SCRATCH/quiet.txt"
grep -q "deferred reason=quiet-hours until=" "$SCRATCH/quiet.txt" || fail "no deferral shown: $(cat "$SCRATCH/quiet.txt")"
"$BUILD/nudgectl" -D "$SCRATCH/var" subscriber "$NY" --json >"$SCRATCH/ny.json"
[ "$(perl tests/integration/jsonq.pl '.consent_history[0].state' "$SCRATCH/ny.json")" = subscribed ] ||
    fail "consent history: $(cat "$SCRATCH/ny.json")"
last=$(($(perl tests/integration/jsonq.pl '.consent_history.length' "$SCRATCH/ny.json") - 1))
[ "$(perl tests/integration/jsonq.pl ".consent_history[$last].state" "$SCRATCH/ny.json")" = unsubscribed ] &&
    [ "$(perl tests/integration/jsonq.pl ".consent_history[$last].source" "$SCRATCH/ny.json")" = keyword ] ||
    fail "STOP not in the consent history: $(cat "$SCRATCH/ny.json")"
pass "nudgectl subscriber shows the consent history (form, then STOP) and every decision not to send"
echo "--- what the SMSC received:"
texts | cat
