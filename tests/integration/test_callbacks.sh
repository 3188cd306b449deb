#!/bin/sh
# test_callbacks.sh - a message with a callback_url gets its final state
# POSTed there; a failed POST is retried; a bad callback_url is refused.
. tests/integration/lib.sh

SIM_PORT=$(free_port)
CAPTURE_PORT=$(free_port)
start_sim "$SIM_PORT"
start_capture "$CAPTURE_PORT" --fail-first 1
write_config "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"

api_post /v1/messages "{\"to\":\"+393401230001\",\"text\":\"with a callback\",\"callback_url\":\"http://127.0.0.1:$CAPTURE_PORT/status?shop=1\"}"
[ "$HTTP_CODE" = 202 ] || fail "POST: $HTTP_CODE $(cat "$SCRATCH/reply.json")"
id=$(reply .id)
wait_for 10 sh -c "[ \$(wc -l <\"$SCRATCH/capture.jsonl\") -ge 2 ]" ||
    fail "callback not retried after a 503: $(cat "$SCRATCH/capture.jsonl" 2>/dev/null)"
line=$(sed -n 2p "$SCRATCH/capture.jsonl")
body=$(echo "$line" | perl tests/integration/jsonq.pl .body)
[ "$(echo "$line" | perl tests/integration/jsonq.pl .path)" = /status ] || fail "callback path: $line"
[ "$(echo "$line" | perl tests/integration/jsonq.pl .query)" = shop=1 ] || fail "callback query string lost: $line"
[ "$(echo "$body" | perl tests/integration/jsonq.pl .id)" = "$id" ] || fail "callback id: $body"
[ "$(echo "$body" | perl tests/integration/jsonq.pl .state)" = DELIVERED ] || fail "callback state: $body"
wait_for 5 grep -q "webhook sent id=[0-9]* status=200 attempt=2" "$SCRATCH/nudged.log" || fail "second attempt not logged"
pass "final state POSTed to the callback URL, retried after a 503: $body"

api_post /v1/messages '{"to":"+393401230002","text":"x","callback_url":"ftp://example"}'
[ "$HTTP_CODE" = 400 ] || fail "bad callback_url: HTTP $HTTP_CODE"
[ "$(reply .field)" = callback_url ] || fail "bad callback_url not named: $(cat "$SCRATCH/reply.json")"
pass "a bad callback_url is refused naming the field"
