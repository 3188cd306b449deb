#!/bin/sh
# test_subscriber.sh - `nudgectl subscriber NUMBER` beside a running nudged
# with the shipped rules: a Placed Order, then a Viewed Product with a first
# name, e-mail and properties, then a message over POST /v1/messages. The
# text and --json outputs show the masked number, the profile, order count
# and total spent, the browse-abandonment journey WAITING on its delay, the
# post-purchase and HTTP messages; -n keeps the newest; an opt-out shows as
# consent; digits without '+' and a national number (default_country) find
# the same subscriber. No output holds the whole number or e-mail address.
# An unknown number exits 1.
. tests/integration/lib.sh
NUDGECTL=${NUDGECTL:-$BUILD/nudgectl}
[ -x "$NUDGECTL" ] || fail "$NUDGECTL is not built (make all)"
[ -x "$BUILD/smsc-sim" ] || fail "$BUILD/smsc-sim is not built (make all)"

NUMBER=393401234567
# log_mask_number(): four digits, a bullet for each hidden one, the last two.
MASKED='+3934••••••67'
EMAIL=giulia.rossi@example.com

# ctl ARGS...: nudgectl on the scratch store; stdout and stderr in $OUT.
ctl() {
	OUT=$SCRATCH/ctl.out
	CTL_STATUS=0
	"$NUDGECTL" -D "$SCRATCH/var" "$@" >"$OUT" 2>&1 || CTL_STATUS=$?
	# Every output of every call, for the privacy check at the end.
	cat "$OUT" >>"$SCRATCH/all-output.txt"
}

# has TEXT: the last ctl output contains TEXT (fixed string).
has() {
	grep -qF -- "$1" "$OUT" || fail "no '$1' in: $(cat "$OUT")"
}

event() {
	api_post /v1/events "$1"
	[ "$HTTP_CODE" = 202 ] || fail "event: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
}

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
sed -i 's/^\[nudged\]$/[nudged]\norganization_name = Aria Shop\ndefault_country = IT/' "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
# rules_dir is "rules" by default: the shipped set, from the repository root.
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"
grep -q "flow loaded file=rules/browse-abandonment.xml" "$SCRATCH/nudged.log" || fail "shipped rules not loaded"

# The order first: an order after the view would end the browse journey.
event "{\"metric\":\"Placed Order\",\"profile\":{\"phone_number\":\"+$NUMBER\"},\"properties\":{\"\$value\":120.5,\"OrderId\":\"o-7\",\"ItemNames\":[\"Linen shirt\"]}}"
event "{\"metric\":\"Viewed Product\",\"profile\":{\"phone_number\":\"+$NUMBER\",\"first_name\":\"giulia\",\"email\":\"$EMAIL\",\"external_id\":\"cust-7\",\"language\":\"it\",\"properties\":{\"tier\":\"gold\"}},\"properties\":{\"ProductID\":\"p-42\",\"ProductName\":\"Sneakers Aria\",\"Categories\":[\"Shoes\"],\"URL\":\"https://shop.example/p/42\"}}"
reply .journeys | grep -q '"flow":"browse-abandonment"' || fail "no browse journey: $(cat "$SCRATCH/reply.json")"
browse=$(perl -MJSON::PP -0e 'my $r = decode_json(<>); print map { "$_->{id}\n" } grep { $_->{flow} eq "browse-abandonment" } @{$r->{journeys}}' "$SCRATCH/reply.json")
TEXT="Your parcel o-7 left our warehouse today and should reach you by Friday. Track it: https://shop.example/t/o-7"
api_post /v1/messages "{\"to\":\"+$NUMBER\",\"text\":\"$TEXT\"}"
[ "$HTTP_CODE" = 202 ] || fail "POST /v1/messages: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
message=$(reply .id)
[ -n "$message" ] || fail "no message id: $(cat "$SCRATCH/reply.json")"

# ---- the text output ---------------------------------------------------------
ctl subscriber "+$NUMBER"
[ "$CTL_STATUS" = 0 ] || fail "subscriber: exit $CTL_STATUS: $(cat "$OUT")"
has "subscriber $MASKED"
has "external_id=cust-7 email=g•••@example.com first_name=giulia language=it timezone=-"
has "order_count=1 total_spent=120.50 last_order=20"
grep -q '^  properties={.*"tier":"gold"' "$OUT" || fail "properties: $(cat "$OUT")"
has "consent: opted_out=no"
grep -q "^  journey=$browse flow=browse-abandonment state=WAITING next_step=1 due=20[0-9-]*T[0-9:.]*Z sms_sent=0 " "$OUT" ||
    fail "no WAITING browse journey $browse: $(cat "$OUT")"
has "messages: 2"
grep -q 'origin=flow:post-purchase parts=1 text="Thanks .*Order o-7 is confirmed' "$OUT" ||
    fail "the post-purchase SMS is missing: $(cat "$OUT")"
# The text is cut to 60 characters, an ellipsis after.
has "  message=$message time=20"
has "class=transactional origin=http parts=1 text=\"Your parcel o-7 left our warehouse today and should reach yo…\""
grep -q "compliance work" "$OUT" && fail "the output speaks of the compliance work"
pass "text: masked number, profile, order count and total, the WAITING browse journey, both messages"

# ---- --json ------------------------------------------------------------------
ctl subscriber "+$NUMBER" --json
[ "$CTL_STATUS" = 0 ] || fail "subscriber --json: exit $CTL_STATUS: $(cat "$OUT")"
[ "$(wc -l <"$OUT")" = 1 ] || fail "--json: more than one line: $(cat "$OUT")"
perl -MJSON::PP -e '
	my ($browse, $message, $text) = @ARGV;
	local $/;
	open my $in, "<", "'"$OUT"'" or die;
	my $s = JSON::PP->new->utf8->decode(<$in>);
	my $p = $s->{profile};
	my @errors;
	push @errors, "number $s->{number}" unless $s->{number} eq "+3934" . ("\x{2022}" x 6) . "67";
	push @errors, "first_name" unless $p->{first_name} eq "giulia";
	push @errors, "email $p->{email}" unless $p->{email} eq "g\x{2022}\x{2022}\x{2022}\@example.com";
	push @errors, "external_id" unless $p->{external_id} eq "cust-7";
	push @errors, "order_count" unless $p->{order_count} == 1;
	push @errors, "total_spent" unless $p->{total_spent} == 120.5;
	push @errors, "last_order" unless $p->{last_order} =~ /^20\d\d-\d\d-\d\dT/;
	push @errors, "properties" unless $p->{properties}{tier} eq "gold";
	push @errors, "consent" unless !$s->{consent}{opted_out} && !defined $s->{consent}{since};
	my ($j) = grep { $_->{flow} eq "browse-abandonment" } @{$s->{journeys}};
	push @errors, "journey" unless $j && $j->{id} == $browse && $j->{state} eq "WAITING" &&
	    $j->{next_step} == 1 && $j->{sms_sent} == 0 && $j->{due} =~ /Z$/;
	push @errors, "journeys_active" unless $s->{journeys_active} == @{$s->{journeys}};
	my @m = @{$s->{messages}};
	push @errors, "messages_total" unless $s->{messages_total} == 2 && @m == 2;
	push @errors, "message order" unless $m[0]{origin} eq "flow:post-purchase" && $m[1]{id} == $message;
	push @errors, "message" unless $m[1]{origin} eq "http" && $m[1]{class} eq "transactional" &&
	    $m[1]{parts} == 1 && $m[1]{text} eq substr($text, 0, 60) . "\x{2026}";
	die join(", ", @errors) . "\n" if @errors;
' "$browse" "$message" "$TEXT" || fail "--json: $(cat "$OUT")"
pass "--json: one object with the same facts"

# ---- -n, digits, a national number ------------------------------------------
api_post /v1/messages "{\"to\":\"+$NUMBER\",\"text\":\"Delivered. Enjoy!\"}"
[ "$HTTP_CODE" = 202 ] || fail "POST /v1/messages: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
third=$(reply .id)
ctl subscriber "+$NUMBER" -n 1
has "messages: 3 (the last 1 shown)"
[ "$(grep -c '^  message=' "$OUT")" = 1 ] || fail "-n 1: $(cat "$OUT")"
has "  message=$third "
has 'text="Delivered. Enjoy!"'
ctl subscriber "+$NUMBER" -n 2 --json
[ "$(perl tests/integration/jsonq.pl .messages "$OUT" | perl -MJSON::PP -0ne 'print join(",", map { $_->{id} } @{decode_json($_)})')" = "$message,$third" ] ||
    fail "-n 2: not the two newest, oldest first: $(cat "$OUT")"
ctl subscriber "+$NUMBER" -n 0 --json
[ "$(perl tests/integration/jsonq.pl .messages.length "$OUT")" = 0 ] &&
    [ "$(perl tests/integration/jsonq.pl .messages_total "$OUT")" = 3 ] || fail "-n 0: $(cat "$OUT")"
pass "-n keeps the newest messages and counts them all"

ctl subscriber "$NUMBER"
[ "$CTL_STATUS" = 0 ] || fail "digits without '+': exit $CTL_STATUS"
has "subscriber $MASKED"
has "first_name=giulia"
OUT=$SCRATCH/ctl.out
CTL_STATUS=0
"$NUDGECTL" -c "$SCRATCH/nudged.conf" subscriber "340 123 4567" >"$OUT" 2>&1 || CTL_STATUS=$?
cat "$OUT" >>"$SCRATCH/all-output.txt"
[ "$CTL_STATUS" = 0 ] || fail "national number: exit $CTL_STATUS: $(cat "$OUT")"
has "subscriber $MASKED"
has "first_name=giulia"
pass "digits without '+' and a national number of default_country find the subscriber"

# ---- consent ---------------------------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$HTTP_PORT/v1/optout/+$NUMBER")
[ "$code" = 204 ] || fail "PUT optout: $code"
ctl subscriber "+$NUMBER"
grep -q "^consent: opted_out=yes since=20[0-9-]*T[0-9:.]*Z source=api$" "$OUT" || fail "opt-out: $(cat "$OUT")"
ctl subscriber "+$NUMBER" --json
[ "$(perl tests/integration/jsonq.pl .consent.opted_out "$OUT")" = true ] &&
    [ "$(perl tests/integration/jsonq.pl .consent.source "$OUT")" = api ] || fail "opt-out --json: $(cat "$OUT")"
# A number that is only on the opt-out list is still someone.
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$HTTP_PORT/v1/optout/+393409876543")
[ "$code" = 204 ] || fail "PUT optout: $code"
ctl subscriber +393409876543
[ "$CTL_STATUS" = 0 ] || fail "opted-out number without a profile: exit $CTL_STATUS: $(cat "$OUT")"
has "profile: none"
has "journeys: 0 active"
has "messages: 0"
pass "an opt-out shows as consent, since when and from where"

# ---- unknown numbers, usage --------------------------------------------------
ctl subscriber +393401234599
[ "$CTL_STATUS" = 1 ] || fail "unknown number: exit $CTL_STATUS, expected 1"
has "no subscriber +3934••••••99"
ctl subscriber +393401234599 --json
[ "$CTL_STATUS" = 1 ] || fail "unknown number --json: exit $CTL_STATUS, expected 1"
# A neighbour's prefix must not match: 39340123456 is a prefix of the number.
ctl subscriber +39340123456
[ "$CTL_STATUS" = 1 ] || fail "a prefix of a known number: exit $CTL_STATUS: $(cat "$OUT")"
ctl subscriber 12ab
[ "$CTL_STATUS" = 2 ] || fail "not a number: exit $CTL_STATUS, expected 2"
has "not a phone number"
ctl subscriber "+$NUMBER" -n x
[ "$CTL_STATUS" = 2 ] || fail "-n x: exit $CTL_STATUS, expected 2"
ctl subscriber
[ "$CTL_STATUS" = 2 ] || fail "no number: exit $CTL_STATUS, expected 2"
ctl subscriber --help
[ "$CTL_STATUS" = 0 ] || fail "--help: exit $CTL_STATUS"
has "consent history arrives with the"
has "compliance work"
"$NUDGECTL" -h | grep -q '^  subscriber number \[--json\] \[-n count\]$' || fail "-h does not list subscriber"
pass "an unknown number exits 1 (masked), bad input exits 2, --help explains"

# ---- privacy: nothing printed holds the whole number or address --------------
grep -q "$NUMBER\|3401234567\|393409876543\|39340123459\|$EMAIL\|giulia\.rossi" "$SCRATCH/all-output.txt" &&
    fail "a whole number or e-mail address in the output: $(grep "$NUMBER\|$EMAIL" "$SCRATCH/all-output.txt" | head -3)"
pass "no output holds a whole phone number or e-mail address"
