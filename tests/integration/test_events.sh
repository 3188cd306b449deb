#!/bin/sh
# test_events.sh - POST /v1/events: national numbers become E.164 through
# the default country, profiles are created and merged, Placed Order counts
# orders and revenue, a repeated unique_id changes nothing, bad input names
# its field; GET/PUT /v1/profiles/{number}; the batch form.
. tests/integration/lib.sh

write_config "$SCRATCH/nudged.conf"
sed -i 's/^\[nudged\]$/[nudged]\ndefault_country = IT/' "$SCRATCH/nudged.conf"
start_nudged "$SCRATCH/nudged.conf"

api_post /v1/events '{"metric":"Viewed Product","profile":{"phone_number":"340 123 4567","first_name":"giulia","external_id":"cust-7","properties":{"tier":"gold"}},"properties":{"ProductName":"Linen shirt","Categories":["Shirts"]}}'
[ "$HTTP_CODE" = 202 ] || fail "event: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
[ -n "$(reply .id)" ] || fail "event without id"
api_get "/v1/profiles/+393401234567"
[ "$HTTP_CODE" = 200 ] || fail "GET profile: HTTP $HTTP_CODE"
[ "$(reply .first_name)" = giulia ] && [ "$(reply .properties.tier)" = gold ] || fail "profile: $(cat "$SCRATCH/reply.json")"
pass "a national number became +393401234567 and its profile was created"

order='{"metric":"Placed Order","unique_id":"order-1001","time":"2026-11-20T10:00:00+01:00","profile":{"external_id":"cust-7"},"properties":{"$value":120.5}}'
api_post /v1/events "$order"
[ "$HTTP_CODE" = 202 ] || fail "order: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
first=$(reply .id)
api_post /v1/events "$order"
[ "$HTTP_CODE" = 202 ] && [ "$(reply .duplicate)" = true ] && [ "$(reply .id)" = "$first" ] ||
    fail "repeated unique_id: $(cat "$SCRATCH/reply.json")"
api_get "/v1/profiles/+393401234567"
[ "$(reply .order_count)" = 1 ] || fail "order counted $(reply .order_count) times"
[ "$(reply .total_spent)" = 120.5 ] || fail "total_spent $(reply .total_spent)"
[ "$(reply .last_order_us)" = 1795165200000000 ] || fail "order time $(reply .last_order_us)"
pass "Placed Order (found by external_id) counted once; the repeat was answered, not redone"

check_refused() {
	api_post /v1/events "$1"
	[ "$HTTP_CODE" = 400 ] || fail "$3: HTTP $HTTP_CODE"
	[ "$(reply .field)" = "$2" ] || fail "$3: field $(reply .field), expected $2"
}
check_refused '{"profile":{"phone_number":"+393401234567"}}' metric "no metric"
check_refused '{"metric":"x","profile":{"phone_number":"12ab"}}' profile.phone_number "a bad number"
check_refused '{"metric":"x","profile":{"phone_number":"12"}}' profile.phone_number "a short number"
check_refused '{"metric":"x","profile":{"external_id":"nobody"}}' profile.phone_number "an unknown external_id"
check_refused '{"metric":"x","time":"yesterday","profile":{"phone_number":"+393401234567"}}' time "a bad time"
check_refused '{"metric":"x","properties":[1],"profile":{"phone_number":"+393401234567"}}' properties "properties not an object"
check_refused '{"metric":"x","profile":{"phone_number":"+393401234567","email":7}}' email "a non-string email"
pass "bad events refused with 400 naming the field"

api_post /v1/events '{"events":[{"metric":"Added to Cart","profile":{"phone_number":"+4915112345678"}},{"metric":""}]}'
[ "$HTTP_CODE" = 202 ] && [ "$(reply .accepted)" = 1 ] && [ "$(reply .refused)" = 1 ] || fail "batch: $(cat "$SCRATCH/reply.json")"
HTTP_CODE=$(curl -s -o "$SCRATCH/reply.json" -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
    --data-binary '{"language":"de","properties":{"vip":true}}' "http://127.0.0.1:$HTTP_PORT/v1/profiles/%2B4915112345678")
[ "$HTTP_CODE" = 200 ] && [ "$(reply .language)" = de ] && [ "$(reply .properties.vip)" = true ] || fail "PUT profile: $HTTP_CODE $(cat "$SCRATCH/reply.json")"
api_get /v1/profiles/+12025550100
[ "$HTTP_CODE" = 404 ] || fail "unknown profile: $HTTP_CODE"
pass "batch events, PUT merges a profile, an unknown profile is a 404"
