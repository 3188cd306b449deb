#!/bin/sh
# test_flows.sh - the shipped rule files through the real daemon: a
# browse-abandonment and a cart-abandonment story posted as events, time
# moved by the test clock (never by sleeping), and the exact SMS that reach
# the upstream SMSC checked: which, with what text, in what order. An order
# ends the cart journey; re-entry rules hold; a restart (kill -9) in the
# middle of a delay resumes the journey once.
. tests/integration/lib.sh

event() {
	api_post /v1/events "$1"
	[ "$HTTP_CODE" = 202 ] || fail "event: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
}

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
sed -i 's/^\[nudged\]$/[nudged]\norganization_name = Aria Shop\norganization_url = https:\/\/shop.example\nrules_dir = rules/' "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"
grep -q "flow loaded file=rules/browse-abandonment.xml" "$SCRATCH/nudged.log" || fail "shipped rules not loaded"
# Both subscribers signed up for SMS (marketing needs consent).
subscribe +393401110001
subscribe +393401110002

# Browse abandonment: an Italian subscriber looks at shoes.
event '{"metric":"Viewed Product","profile":{"phone_number":"+393401110001","first_name":"giulia","language":"it"},"properties":{"ProductID":"p-42","ProductName":"Sneakers Aria","Categories":["Shoes"],"URL":"https://shop.example/p/42"}}'
reply .journeys | grep -q '"flow":"browse-abandonment"' || fail "no browse journey: $(cat "$SCRATCH/reply.json")"
advance 3600
sleep 0.5
[ "$(count_texts 393401110001)" = 0 ] || fail "an SMS before the 2 h delay: $(texts 393401110001)"
advance 3660
wait_for 10 sh -c "[ \$(perl tests/integration/sink_texts.pl $SCRATCH/sink.rec 393401110001 | wc -l) -ge 1 ]" ||
    fail "no browse SMS after 2 h"
got=$(texts 393401110001)
expected="$(printf '393401110001\tCiao giulia! Le Sneakers Aria ci sono ancora nella tua taglia. Dai un'"'"'altra occhiata: https://shop.example/p/42\\nSTOP per non ricevere più SMS')"
[ "$got" = "$expected" ] || fail "browse SMS text:
got:      $got
expected: $expected"
pass "browse abandonment: after the 2 h delay, one SMS in Italian, rendered exactly"

# The same product again within 30 days: no second journey.
event '{"metric":"Viewed Product","profile":{"phone_number":"+393401110001"},"properties":{"ProductID":"p-42","ProductName":"Sneakers Aria","Categories":["Shoes"],"URL":"https://shop.example/p/42"}}'
reply .journeys | grep -q browse-abandonment && fail "re-entry within 30 days started a journey"
pass "re-entry once per product: the second view started nothing"

# Cart abandonment: a reminder after 1 h, then an order ends the journey.
event '{"metric":"Started Checkout","profile":{"phone_number":"+393401110002","first_name":"marco"},"properties":{"CheckoutID":"c-1","ItemCount":1,"ItemNames":["Linen shirt"],"CheckoutURL":"https://shop.example/c/1"}}'
reply .journeys | grep -q '"flow":"abandoned-cart"' || fail "no cart journey: $(cat "$SCRATCH/reply.json")"
journey=$(reply '.journeys[0].id')
# kill -9 in the middle of the delay: the journey must resume once.
kill -KILL "$NUDGED_PID"
wait "$NUDGED_PID" 2>/dev/null || true
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link did not bind after the restart"
advance 7260
wait_for 10 sh -c "[ \$(perl tests/integration/sink_texts.pl $SCRATCH/sink.rec 393401110002 | wc -l) -ge 1 ]" ||
    fail "no cart reminder after 1 h (journey $journey)"
sleep 0.5
[ "$(count_texts 393401110002)" = 1 ] || fail "cart reminder sent $(count_texts 393401110002) times"
got=$(texts 393401110002)
expected="$(printf '393401110002\tmarco, you left something behind: Linen shirt is still in your cart. Finish checking out: https://shop.example/c/1\\nSTOP to opt out')"
[ "$got" = "$expected" ] || fail "cart SMS text:
got:      $got
expected: $expected"
pass "abandoned cart: the 1 h reminder survived kill -9 mid-delay and went out exactly once"

event '{"metric":"Placed Order","profile":{"phone_number":"+393401110002"},"properties":{"value":59.0,"OrderId":"o-1","ItemNames":["Linen shirt"],"ReviewURL":"https://shop.example/r/o-1"}}'
grep -q "journey-exited flow=abandoned-cart" "$SCRATCH/nudged.log" || fail "the order did not end the cart journey"
advance 864000
sleep 1
texts 393401110002 >"$SCRATCH/texts.2"
grep -q "Your cart at\|CART10\|Questions about your order" "$SCRATCH/texts.2" &&
    fail "cart reminders after the order: $(cat "$SCRATCH/texts.2")"
sed -n 2p "$SCRATCH/texts.2" | grep -q "Thanks marco! Order o-1 is confirmed" ||
    fail "post-purchase thank-you missing or out of order: $(cat "$SCRATCH/texts.2")"
pass "Placed Order ended the cart journey (no reminder in ten days) and started post-purchase"
echo "--- every SMS the SMSC received, in order:"
texts | cat
