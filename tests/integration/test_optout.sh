#!/bin/sh
# test_optout.sh - the opt-out list: a number put on it gets no marketing
# SMS through the HTTP API (refused, naming the field), still gets
# transactional ones, and gets marketing again once taken off.
. tests/integration/lib.sh

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"
base="http://127.0.0.1:$HTTP_PORT"
auth="Authorization: Bearer $TOKEN"

code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$auth" "$base/v1/optout/+393401234567")
[ "$code" = 204 ] || fail "PUT optout: $code"
curl -fsS -H "$auth" "$base/v1/optout/+393401234567" | grep -q '"opted_out":true' || fail "GET optout does not show it"
api_post /v1/messages '{"to":"+393401234567","text":"20% off today","class":"marketing"}'
[ "$HTTP_CODE" = 400 ] || fail "marketing to an opted-out number: HTTP $HTTP_CODE"
[ "$(reply .field)" = to ] || fail "refusal does not name the field: $(cat "$SCRATCH/reply.json")"
reply .detail | grep -q "opted out" || fail "refusal does not say why: $(cat "$SCRATCH/reply.json")"
api_post /v1/messages '{"to":"+393401234567","text":"Your code is 123456","class":"transactional"}'
[ "$HTTP_CODE" = 202 ] || fail "transactional to an opted-out number: HTTP $HTTP_CODE"
pass "opted out: marketing refused naming 'to', transactional still accepted"

code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "$auth" "$base/v1/optout/393401234567")
[ "$code" = 204 ] || fail "DELETE optout: $code"
api_post /v1/messages '{"to":"+393401234567","text":"welcome back","class":"marketing"}'
[ "$HTTP_CODE" = 202 ] || fail "marketing after opting back in: HTTP $HTTP_CODE"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$auth" "$base/v1/optout/12ab")
[ "$code" = 400 ] || fail "bad number: $code"
pass "taken off the list, marketing flows again; a bad number is a 400"
