#!/bin/sh
# test_outbox_edges.sh - bad input is refused naming the field; a message
# that cannot leave within its validity EXPIRES (time moved by the test
# clock, not by sleeping); a receipt that matches nothing is held, then
# logged as unmatched and counted, never dropped silently.
. tests/integration/lib.sh

metric() {
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep "^$1 " | awk '{print $2}'
}

UP_PORT=$(free_port)
DEAD_PORT=$(free_port)
start_netsmpp "$UP_PORT"
write_config "$SCRATCH/nudged.conf"
printf '[outbox]\nreceipt_hold = 1m\nmax_parts = 3\n' >>"$SCRATCH/nudged.conf"
# Numbers starting 4477 go to a link whose SMSC is not there.
add_link "$SCRATCH/nudged.conf" up "$UP_PORT" "routes = 39"
add_link "$SCRATCH/nudged.conf" dead "$DEAD_PORT" "routes = 4477"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound up || fail "link up never bound"

check_refused() {
	api_post /v1/messages "$1"
	[ "$HTTP_CODE" = 400 ] || fail "$3: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
	[ "$(reply .field)" = "$2" ] || fail "$3: field $(reply .field), expected $2"
}
check_refused '{"to":"12ab","text":"x"}' to "a malformed number"
check_refused '{"to":"+393401234567","text":""}' text "an empty text"
check_refused "{\"to\":\"+393401234567\",\"text\":\"$(printf 'x%.0s' $(seq 1 470))\"}" text "a text of 4 parts (max_parts 3)"
check_refused '{"to":"+12025550100","text":"x"}' to "a number no link serves"
check_refused '{"to":"+393401234567","text":"x","class":"loud"}' class "an unknown class"
check_refused '{"to":"+393401234567","text":"x","validity":5}' validity "a validity under 60 s"
check_refused '{"text":"x"}' to "a missing number"
api_post /v1/messages '{"to": "+393401234567", "text": '
[ "$HTTP_CODE" = 400 ] && [ "$(reply .error)" = invalid_json ] || fail "broken JSON: $HTTP_CODE"
api_post /v1/messages '{"messages": [{"to":"+393401234567","text":"ok"},{"to":"bad","text":"x"}]}'
[ "$HTTP_CODE" = 202 ] || fail "batch: HTTP $HTTP_CODE"
[ "$(reply .accepted)" = 1 ] && [ "$(reply .refused)" = 1 ] || fail "batch counts: $(cat "$SCRATCH/reply.json")"
[ "$(reply '.results[1].field')" = to ] || fail "batch refusal does not name the field"
pass "bad input refused with 4xx JSON naming the field (single and batch)"

api_post /v1/messages '{"to":"+447700900123","text":"stuck behind a dead link","validity":120}'
[ "$HTTP_CODE" = 202 ] || fail "POST to the dead link: $HTTP_CODE"
stuck=$(reply .id)
[ "$(message_state "$stuck")" = QUEUED ] || fail "message should wait QUEUED"
advance 121
wait_state "$stuck" EXPIRED 5 || fail "message is $(message_state "$stuck") after its validity"
api_get "/v1/messages/$stuck"
grep -q '"reason":"validity-expired"' "$SCRATCH/reply.json" || fail "no validity-expired in history"
pass "a message that could not leave within its validity EXPIRED, with the reason"

echo "deliver 393401234567 NUDGE 4 0 $(hex 'id:DEADBEEF sub:001 dlvrd:001 submit date:2611230000 done date:2611230001 stat:DELIVRD err:000 text:') receipted_message_id=$(hex DEADBEEF)00 message_state=02" >>"$SCRATCH/netsmpp.control"
wait_for 10 sh -c "curl -fsS http://127.0.0.1:$HTTP_PORT/metrics | grep -q '^nudge_receipts_held_total 1'" || fail "receipt not held"
[ "$(metric nudge_receipts_unmatched_total)" = 0 ] || fail "unmatched before the hold ran out"
advance 61
wait_for 10 sh -c "curl -fsS http://127.0.0.1:$HTTP_PORT/metrics | grep -q '^nudge_receipts_unmatched_total 1'" || fail "held receipt never became unmatched"
grep -q "receipt unmatched link=up smsc_id=DEADBEEF" "$SCRATCH/nudged.log" || fail "unmatched receipt not logged"
"$BUILD/nudgectl" -D "$SCRATCH/var" dlr tail -n 5 | grep -q "msg=- .*smsc_id=DEADBEEF" || fail "unmatched receipt not in the receipt log"
pass "an unmatched receipt was held, then logged, counted and kept in the receipt log"
