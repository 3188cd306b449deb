#!/bin/sh
# test_consent.sh - consent and compliance keywords through the real daemon
# and smsc-sim: STOP from a subscriber gets one confirmation at the sink,
# the consent reads unsubscribed (source keyword) and marketing is refused;
# START resubscribes; HELP answers; double opt-in by PUT then Y by SMS;
# smart opt-in with a wrong then the right code; bad input names the field;
# nudgectl consent import refuses a file with one bad row whole, then takes
# a clean one.
. tests/integration/lib.sh

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
cat >>"$SCRATCH/nudged.conf" <<CONF
[compliance]
program_name = Nudge Shoes
contact = help@shoes.example
frequency = Up to 4 msgs/month
CONF
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"
base="http://127.0.0.1:$HTTP_PORT"

# api_put PATH JSON: like api_post, with PUT.
api_put() {
	HTTP_CODE=$(curl -s -o "$SCRATCH/reply.json" -w '%{http_code}' -X PUT \
	    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	    --data-binary "$2" "$base$1")
}

# sink_has NUMBER TEXT: the sink got an SMS to NUMBER containing TEXT.
sink_has() {
	[ -f "$SCRATCH/sink.rec" ] &&
	    perl tests/integration/sink_texts.pl "$SCRATCH/sink.rec" |
	    grep -F "$2" | grep -qF "${1#+}"
}

# sink_count NUMBER TEXT: how many SMS to NUMBER contain TEXT.
sink_count() {
	perl tests/integration/sink_texts.pl "$SCRATCH/sink.rec" |
	    grep -F "${1#+}" | grep -cF "$2" || true
}

# consent_is NUMBER STATE: GET .../consent says STATE.
consent_is() {
	api_get "/v1/profiles/$1/consent"
	[ "$HTTP_CODE" = 200 ] && [ "$(reply .state)" = "$2" ]
}

subscriber=+393401110001
api_put "/v1/profiles/$subscriber/consent" \
    '{"state":"subscribed","source":"form","wording":"v3"}'
[ "$HTTP_CODE" = 200 ] || fail "PUT consent: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
[ "$(reply .state)" = subscribed ] || fail "PUT consent: $(cat "$SCRATCH/reply.json")"
[ "$(reply .wording)" = v3 ] || fail "wording not kept: $(cat "$SCRATCH/reply.json")"

sim_command "mo $subscriber 4545 Stop texting me!"
wait_for 10 sink_has "$subscriber" "You are unsubscribed" ||
    fail "no STOP confirmation at the sink"
consent_is "$subscriber" unsubscribed || fail "after STOP: $(cat "$SCRATCH/reply.json")"
[ "$(reply .source)" = keyword ] || fail "STOP source: $(cat "$SCRATCH/reply.json")"
[ "$(reply .history.1.state)" = unsubscribed ] ||
    fail "history: $(cat "$SCRATCH/reply.json")"
[ "$(reply .history.0.source)" = form ] ||
    fail "history lost the form: $(cat "$SCRATCH/reply.json")"
api_post /v1/messages "{\"to\":\"$subscriber\",\"text\":\"20% off\",\"class\":\"marketing\"}"
[ "$HTTP_CODE" = 400 ] || fail "marketing after STOP: HTTP $HTTP_CODE"
[ "$(reply .field)" = to ] || fail "refusal: $(cat "$SCRATCH/reply.json")"
sleep 0.5
[ "$(sink_count "$subscriber" "")" = 1 ] || fail "more than one SMS after STOP"
pass "STOP: one confirmation at the sink, consent unsubscribed (keyword), marketing refused"

sim_command "mo $subscriber 4545 START"
wait_for 10 sink_has "$subscriber" "You are subscribed" ||
    fail "no START confirmation"
consent_is "$subscriber" subscribed || fail "after START: $(cat "$SCRATCH/reply.json")"
api_post /v1/messages "{\"to\":\"$subscriber\",\"text\":\"20% off\",\"class\":\"marketing\"}"
[ "$HTTP_CODE" = 202 ] || fail "marketing after START: HTTP $HTTP_CODE"
sim_command "mo $subscriber 4545 help"
wait_for 10 sink_has "$subscriber" "Msg&data rates may apply. Reply STOP to cancel." ||
    fail "no HELP answer"
sink_has "$subscriber" "Help at help@shoes.example" || fail "HELP lacks the contact"
pass "START resubscribes, HELP answers with program, contact and rates"

pending=+393401110002
api_put "/v1/profiles/$pending/consent" \
    '{"state":"subscribed","method":"double_opt_in","source":"checkout","wording":"v4"}'
[ "$HTTP_CODE" = 200 ] || fail "double opt-in PUT: HTTP $HTTP_CODE"
[ "$(reply .state)" = pending ] || fail "double opt-in: $(cat "$SCRATCH/reply.json")"
wait_for 10 sink_has "$pending" "Reply Y to confirm" || fail "no Reply Y request"
api_post /v1/messages "{\"to\":\"$pending\",\"text\":\"20% off\",\"class\":\"marketing\"}"
[ "$HTTP_CODE" = 400 ] || fail "marketing while pending: HTTP $HTTP_CODE"
sim_command "mo $pending 4545 y"
wait_for 10 consent_is "$pending" subscribed || fail "Y did not confirm"
[ "$(reply .wording)" = v4 ] || fail "confirmed wording: $(cat "$SCRATCH/reply.json")"
wait_for 10 sink_has "$pending" "You are subscribed" || fail "no confirmation of Y"
pass "double opt-in: pending, no marketing, Y by SMS subscribes with the wording asked"

smart=+393401110003
api_put "/v1/profiles/$smart/consent" '{"state":"subscribed","method":"smart_opt_in"}'
[ "$HTTP_CODE" = 200 ] || fail "smart opt-in PUT: HTTP $HTTP_CODE"
wait_for 10 sink_has "$smart" "your code is" || fail "no code SMS"
code=$(perl tests/integration/sink_texts.pl "$SCRATCH/sink.rec" |
    grep -F "${smart#+}" | sed -n 's/.*your code is \([0-9]\{6\}\).*/\1/p' | tail -n 1)
[ -n "$code" ] || fail "no code in the SMS"
grep -q "$code" "$SCRATCH/nudged.log" && fail "the code is in the log"
wrong=$(perl -e 'printf "%06d", ($ARGV[0] + 1) % 1000000' "$code")
api_post "/v1/profiles/$smart/consent/confirm" "{\"code\":\"$wrong\"}"
[ "$HTTP_CODE" = 422 ] || fail "wrong code: HTTP $HTTP_CODE"
[ "$(reply .attempts_left)" = 4 ] || fail "attempts: $(cat "$SCRATCH/reply.json")"
api_post "/v1/profiles/$smart/consent/confirm" "{\"code\":\"$code\"}"
[ "$HTTP_CODE" = 200 ] || fail "right code: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
[ "$(reply .state)" = subscribed ] || fail "after code: $(cat "$SCRATCH/reply.json")"
pass "smart opt-in: code by SMS (not logged), a wrong one counted, the right one subscribes"

api_put "/v1/profiles/$smart/consent" '{"state":"maybe"}'
[ "$HTTP_CODE" = 400 ] || fail "bad state: HTTP $HTTP_CODE"
reply .detail | grep -q '^state:' || fail "bad state detail: $(cat "$SCRATCH/reply.json")"
api_put "/v1/profiles/$smart/consent" '{"state":"subscribed","source":"fax"}'
reply .detail | grep -q '^source:' || fail "bad source detail: $(cat "$SCRATCH/reply.json")"
api_post "/v1/profiles/$smart/consent/confirm" '{"code":"12"}'
[ "$HTTP_CODE" = 400 ] || fail "short code: HTTP $HTTP_CODE"
api_get "/v1/profiles/$smart"
[ "$HTTP_CODE" != 500 ] || fail "the profile route broke"
pass "bad input is a 400 naming the field; /v1/profiles/{n} still served"

cat >"$SCRATCH/bad.csv" <<CSV
phone_number,state,source,wording,time
+393401110010,subscribed,form,v1,2026-01-02T10:00:00Z
+393401110011,perhaps,form,v1,2026-01-02T10:00:00Z
+393401110012,unsubscribed,carrier,v1,
CSV
cat >"$SCRATCH/good.csv" <<CSV
phone_number,state,source,wording,time
+393401110010,subscribed,form,v1,2026-01-02T10:00:00Z
+393401110011,unsubscribed,,v2,
+393401110012,unsubscribed,carrier,v1,
CSV
status=0
$BUILD/nudgectl -c "$SCRATCH/nudged.conf" consent import "$SCRATCH/bad.csv" \
    >"$SCRATCH/import.out" 2>&1 || status=$?
[ "$status" = 1 ] || fail "bad import exit $status: $(cat "$SCRATCH/import.out")"
grep -q "^line 3: state: " "$SCRATCH/import.out" ||
    fail "report lacks the bad line: $(cat "$SCRATCH/import.out")"
grep -q "nothing applied" "$SCRATCH/import.out" ||
    fail "report: $(cat "$SCRATCH/import.out")"
consent_is +393401110010 never || fail "half-imported: $(cat "$SCRATCH/reply.json")"
$BUILD/nudgectl -c "$SCRATCH/nudged.conf" consent import "$SCRATCH/good.csv" \
    >"$SCRATCH/import.out" 2>&1 || fail "clean import: $(cat "$SCRATCH/import.out")"
grep -q "3 rows accepted, 0 rejected: all applied" "$SCRATCH/import.out" ||
    fail "report: $(cat "$SCRATCH/import.out")"
consent_is +393401110010 subscribed || fail "import 10: $(cat "$SCRATCH/reply.json")"
consent_is +393401110011 unsubscribed || fail "import 11: $(cat "$SCRATCH/reply.json")"
[ "$(reply .source)" = import ] || fail "import source: $(cat "$SCRATCH/reply.json")"
api_post /v1/messages '{"to":"+393401110012","text":"20% off","class":"marketing"}'
[ "$HTTP_CODE" = 400 ] || fail "marketing to an imported opt-out: HTTP $HTTP_CODE"
pass "consent import: a bad row refuses the file whole (line named), a clean one applies"
