#!/bin/sh
# test_server_esme.sh - nudged's SMPP server side driven by a scripted
# Net::SMPP ESME (peers/esme_client.pl), with a Net::SMPP SMSC upstream:
# every bind failure status (0x0F, 0x0E, 0x05, 0x0D for a disallowed address
# and for too many binds), submit before bind (0x04), an unknown command
# (generic_nack 0x03), throttling at the account's cap (0x58), query_sm of a
# delivered message, cancel_sm of a queued one, opt-out for a marketing
# account (0x66), and receipts kept while the ESME is away, delivered in
# submit order when it binds again.
. tests/integration/lib.sh
CLIENT=tests/integration/peers/esme_client.pl

# client OUT [--local ADDR] STEP...: runs the scripted ESME against nudged.
client() {
	out=$1
	shift
	local_addr=""
	if [ "$1" = --local ]; then
		local_addr="--local $2"
		shift 2
	fi
	# shellcheck disable=SC2086
	perl "$CLIENT" $local_addr "$SMPP_PORT" "$@" >"$out" 2>&1 || true
}

# expect FILE REGEX WHAT: FILE has a line matching REGEX (extended).
expect() {
	grep -Eq -- "$2" "$1" || fail "$3: no line like '$2' in: $(cat "$1")"
}

# submit_id FILE [INDEX]: the message id of the INDEX-th (1st) accepted submit.
submit_id() {
	sed -n 's/^submit_resp seq=[0-9]* status=0x00000000 id=\([0-9][0-9]*\)$/\1/p' "$1" |
	    sed -n "${2:-1}p"
}

# upstream_submits NUMBER: submit_sm the Net::SMPP SMSC accepted for NUMBER.
upstream_submits() {
	grep '"command":"submit_sm"' "$SCRATCH/netsmpp.jsonl" 2>/dev/null |
	    grep -c "\"destination_addr\":\"$1\"" || true
}

UP_PORT=$(free_port)
start_netsmpp "$UP_PORT"
write_config "$SCRATCH/nudged.conf"
# Failed binds come from 127.0.0.1 here: keep them below the delay and block.
sed -i 's/^\[smpp\]$/[smpp]\nauth_fail_delay_after = 500\nauth_fail_block_after = 1000/' \
    "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" up "$UP_PORT" "bind = transceiver"
# A link that never binds (nobody listens): what is routed to it stays queued.
add_link "$SCRATCH/nudged.conf" dead "$(free_port)" "bind = transceiver" \
    "routes = 999" "priority = 900"
cat >>"$SCRATCH/nudged.conf" <<CONF
[account esme]
system_id = esme
password = esmepw1
max_transmitters = 1
mo_destinations = 12345
[account slow]
system_id = slow
password = slowpw
tps = 5
[account market]
system_id = market
password = mktpw
traffic_class = marketing
[account remote]
system_id = remote
password = rempw
allowed_addresses = 127.0.0.2/32
[account parked]
system_id = parked
password = parkpw
route = dead
CONF
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound up || fail "link up never bound"

# ---- binds ---------------------------------------------------------------
client "$SCRATCH/b1" bind transceiver nobody esmepw1
expect "$SCRATCH/b1" '^bind_resp status=0x0000000F' "unknown system_id"
client "$SCRATCH/b2" bind transceiver esme wrongpw
expect "$SCRATCH/b2" '^bind_resp status=0x0000000E' "wrong password"
client "$SCRATCH/b3" bind transceiver esme esmepw1 bind transceiver esme esmepw1 enquire
expect "$SCRATCH/b3" '^bind_resp status=0x00000000' "good bind"
expect "$SCRATCH/b3" '^bind_resp status=0x00000005' "second bind on a bound session"
expect "$SCRATCH/b3" '^enquire_link_resp status=0x00000000$' "session after ALYBND"
pass "bind: unknown system_id 0x0F, wrong password 0x0E, already bound 0x05"

client "$SCRATCH/b4" bind transceiver remote rempw
expect "$SCRATCH/b4" '^bind_resp status=0x0000000D' "address not allowed"
client "$SCRATCH/b5" --local 127.0.0.2 bind transceiver remote rempw unbind
expect "$SCRATCH/b5" '^bind_resp status=0x00000000' "bind from the allowed 127.0.0.2"
pass "bind: account allowed from 127.0.0.2 only: 0x0D from 127.0.0.1, ROK from 127.0.0.2"

client "$SCRATCH/b6" bind transmitter esme esmepw1 touch "$SCRATCH/bound6" \
    wait_file "$SCRATCH/done6" 10 unbind &
holder=$!
wait_for 10 test -e "$SCRATCH/bound6" || fail "first transmitter did not bind"
client "$SCRATCH/b7" bind transmitter esme esmepw1
client "$SCRATCH/b8" bind receiver esme esmepw1 unbind
touch "$SCRATCH/done6"
wait "$holder" || true
expect "$SCRATCH/b6" '^bind_resp status=0x00000000' "first transmitter"
expect "$SCRATCH/b6" '^unbind_resp status=0x00000000' "first transmitter stayed bound"
expect "$SCRATCH/b7" '^bind_resp status=0x0000000D' "second transmitter over max_transmitters = 1"
expect "$SCRATCH/b8" '^bind_resp status=0x00000000' "a receiver next to the transmitter"
pass "bind: a second transmitter over max_transmitters = 1 gets 0x0D; a receiver still binds"

# ---- requests out of state, unknown commands -----------------------------
client "$SCRATCH/s1" submit NUDGE 393401230001 0 early \
    raw 0000001000000099000000000000002a expect 80000000 5 enquire
expect "$SCRATCH/s1" '^submit_resp seq=1 status=0x00000004 ' "submit_sm before bind"
expect "$SCRATCH/s1" '^pdu cmd=0x80000000 status=0x00000003 seq=42$' "unknown command_id"
expect "$SCRATCH/s1" '^enquire_link_resp status=0x00000000$' "session open after generic_nack"
[ "$(upstream_submits 393401230001)" = 0 ] || fail "a submit before bind reached the SMSC"
pass "submit before bind 0x04; unknown command generic_nack 0x03 with its sequence number, session stays"

# ---- submit, receipt on the transceiver, query_sm ------------------------
client "$SCRATCH/q1" bind transceiver esme esmepw1 \
    submit 4930123 393401230002 1 "Query me" deliver 15
id=$(submit_id "$SCRATCH/q1")
[ -n "$id" ] || fail "submit_sm: $(cat "$SCRATCH/q1")"
expect "$SCRATCH/q1" "^deliver .*esm_class=4 .*source=393401230002 dest=4930123 receipted_message_id=$id message_state=2 .*text=id:$id .*stat:DELIVRD" \
    "receipt on the transceiver"
[ "$(upstream_submits 393401230002)" = 1 ] || fail "the message reached the SMSC $(upstream_submits 393401230002) times"
grep '"destination_addr":"393401230002"' "$SCRATCH/netsmpp.jsonl" |
    grep -q "\"short_message_hex\":\"$(hex 'Query me')\"" || fail "the SMSC got other bytes"
wait_state "$id" DELIVERED 10 || fail "message $id is $(message_state "$id")"
client "$SCRATCH/q2" bind transceiver esme esmepw1 query "$id" 4930123 query 99999999 4930123
expect "$SCRATCH/q2" "^query_resp status=0x00000000 id=$id state=2 " "query_sm of a delivered message"
expect "$SCRATCH/q2" '^query_resp status=0x00000067' "query_sm of an unknown id"
pass "submit_sm -> id $id, receipt deliver_sm with that id, query_sm state 2 (DELIVERED); unknown id 0x67"

# ---- cancel_sm of a message still queued ---------------------------------
client "$SCRATCH/c1" bind transceiver parked parkpw submit 4930123 393401230003 0 "Cancel me"
id=$(submit_id "$SCRATCH/c1")
[ -n "$id" ] || fail "parked submit: $(cat "$SCRATCH/c1")"
[ "$(message_state "$id")" = QUEUED ] || fail "parked message $id is $(message_state "$id"), not QUEUED"
client "$SCRATCH/c2" bind transceiver parked parkpw cancel "$id" 4930123 393401230003 \
    query "$id" 4930123 cancel "$id" 4930123 393401230003
expect "$SCRATCH/c2" '^cancel_resp status=0x00000000$' "cancel_sm of a queued message"
expect "$SCRATCH/c2" "^query_resp status=0x00000000 id=$id state=4 " "query_sm after cancel: DELETED"
expect "$SCRATCH/c2" '^cancel_resp status=0x00000011$' "second cancel_sm"
[ "$(grep -c '^cancel_resp' "$SCRATCH/c2")" = 2 ] || fail "cancel answers: $(cat "$SCRATCH/c2")"
state=$(message_state "$id")
case "$state" in QUEUED | SUBMITTING | SUBMITTED | DELIVERED) fail "cancelled message $id is $state" ;; esac
[ "$(upstream_submits 393401230003)" = 0 ] || fail "a cancelled message reached the SMSC"
pass "cancel_sm of a queued message ROK, query_sm then DELETED (4), a second cancel 0x11; API state $state"

# ---- throttling at tps = 5 -----------------------------------------------
client "$SCRATCH/t1" bind transmitter slow slowpw burst 20 4930123 393401230004 0 Burst
line=$(grep '^burst' "$SCRATCH/t1") || fail "burst: $(cat "$SCRATCH/t1")"
ok=$(echo "$line" | sed 's/.* ok=\([0-9]*\) .*/\1/')
throttled=$(echo "$line" | sed 's/.* throttled=\([0-9]*\) .*/\1/')
expect "$SCRATCH/t1" '^burst sent=20 .* other=0 missing=0 ' "every submit of the burst answered"
if [ "$ok" -lt 1 ] || [ "$throttled" -lt 1 ] || [ $((ok + throttled)) != 20 ]; then
	fail "burst at tps 5: $line"
fi
[ "$ok" -le 10 ] || fail "tps 5 let $ok of 20 back-to-back submits through"
pass "tps = 5: a burst of 20 submits: $ok accepted, $throttled ESME_RTHROTTLED (0x58)"

# ---- marketing account and the opt-out list ------------------------------
code=$(curl -s -o "$SCRATCH/optout.json" -w '%{http_code}' -X PUT \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT/v1/optout/+393401234567")
case "$code" in 2??) ;; *) fail "PUT /v1/optout: HTTP $code $(cat "$SCRATCH/optout.json")" ;; esac
client "$SCRATCH/m1" bind transmitter market mktpw \
    submit 4930123 393401234567 0 "Sale today" submit 4930123 393401234568 0 "Sale today"
expect "$SCRATCH/m1" '^submit_resp seq=2 status=0x00000066 ' "marketing to an opted-out number"
expect "$SCRATCH/m1" '^submit_resp seq=3 status=0x00000000 id=[0-9]+$' "marketing to a number not opted out"
client "$SCRATCH/m2" bind transmitter esme esmepw1 submit 4930123 393401234567 0 "Your code is 1234"
expect "$SCRATCH/m2" '^submit_resp seq=2 status=0x00000000 id=[0-9]+$' "transactional to an opted-out number"
wait_for 10 sh -c "grep -q '$(hex 'Your code is 1234')' '$SCRATCH/netsmpp.jsonl'" ||
    fail "the transactional message never reached the SMSC"
wait_for 10 sh -c "grep -q '\"destination_addr\":\"393401234568\"' '$SCRATCH/netsmpp.jsonl'" ||
    fail "the marketing message to a number not opted out never reached the SMSC"
[ "$(grep '"destination_addr":"393401234567"' "$SCRATCH/netsmpp.jsonl" | grep -c "$(hex 'Sale today')")" = 0 ] ||
    fail "the marketing message reached the opted-out number"
pass "marketing account: opted-out number 0x66, other number ROK; transactional account unaffected"

# ---- receipts kept while the ESME is away --------------------------------
client "$SCRATCH/r1" bind transmitter esme esmepw1 \
    submit 4930123 393401230011 1 "Away 1" submit 4930123 393401230012 1 "Away 2" \
    submit 4930123 393401230013 1 "Away 3" submit 4930123 393401230014 1 "Away 4" \
    submit 4930123 393401230015 1 "Away 5" unbind
expect "$SCRATCH/r1" '^unbind_resp status=0x00000000$' "unbind of the transmitter"
ids=""
for k in 1 2 3 4 5; do
	id=$(submit_id "$SCRATCH/r1" "$k")
	[ -n "$id" ] || fail "submit $k: $(cat "$SCRATCH/r1")"
	ids="$ids $id"
done
for id in $ids; do
	wait_state "$id" DELIVERED 15 || fail "message $id is $(message_state "$id")"
done
pass "5 messages DELIVERED upstream while no receiver of the account is bound"
client "$SCRATCH/r2" bind receiver esme esmepw1 deliver 10 deliver 10 deliver 10 \
    deliver 10 deliver 10 quiet 1
got=$(sed -n 's/^deliver .*esm_class=4 .*receipted_message_id=\([0-9]*\) message_state=2 .*/\1/p' "$SCRATCH/r2" | tr '\n' ' ')
# shellcheck disable=SC2086
want=$(printf '%s ' $ids)
[ "$got" = "$want" ] || fail "receipts after the bind: '$got', expected '$ids' in that order: $(cat "$SCRATCH/r2")"
expect "$SCRATCH/r2" '^quiet$' "no receipt twice"
pass "receipts kept while away arrive on the next bind, oldest first:$ids"

stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stopped with $STOP_STATUS"
