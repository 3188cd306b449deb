#!/bin/sh
# test_upstream_netsmpp.sh - nudged binds as an ESME to a Net::SMPP SMSC
# (third-party code on the other end of the wire): GSM, Unicode and long
# messages arrive with the right bytes; receipts in hex and decimal id bases,
# by TLV and by text, before and after the response, are matched; a
# throttled submit is retried without duplicates; MO (also multi-part, out of
# order) is stored. Run for a transceiver bind, then a transmitter+receiver.
. tests/integration/lib.sh
NUDGECTL=${NUDGECTL:-$BUILD/nudgectl}

# submits_to NUMBER: accepted submit_sm lines the SMSC recorded for NUMBER.
submits_to() {
	grep '"command":"submit_sm"' "$SCRATCH/netsmpp.jsonl" 2>/dev/null |
	    grep -c "\"destination_addr\":\"$1\"" || true
}

# record_field NUMBER INDEX FIELD: a field of the INDEX-th submit to NUMBER.
record_field() {
	grep '"command":"submit_sm"' "$SCRATCH/netsmpp.jsonl" |
	    grep "\"destination_addr\":\"$1\"" | sed -n "$2p" |
	    perl tests/integration/jsonq.pl ".$3"
}

post_ok() {
	api_post /v1/messages "$1"
	[ "$HTTP_CODE" = 202 ] || fail "POST $1: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
	reply .id
}

# run_phase NAME BIND NETSMPP-OPTIONS...: one nudged + SMSC pair and the checks.
run_phase() {
	phase=$1
	bind=$2
	shift 2
	rm -f "$SCRATCH/netsmpp.jsonl"
	UP_PORT=$(free_port)
	start_netsmpp "$UP_PORT" "$@"
	write_config "$SCRATCH/nudged.conf"
	add_link "$SCRATCH/nudged.conf" up "$UP_PORT" "bind = $bind" \
	    "source_addr = NUDGE" "response_id_base = $RESPONSE_BASE" \
	    "receipt_id_base = $RECEIPT_BASE"
	start_nudged "$SCRATCH/nudged.conf"
	wait_for 10 link_bound up || fail "$phase: link up never bound"
	pass "$phase: bound as $bind"

	n=$PHASE_NUMBER
	gsm=$(post_ok "{\"to\":\"+3934012345${n}1\",\"text\":\"Hello from nudge {1}\"}")
	uni=$(post_ok "{\"to\":\"+3934012345${n}2\",\"text\":\"Привет 👋\"}")
	long_text=$(printf 'Cart reminder %.0s' $(seq 1 14))
	long_text="${long_text}end"
	long=$(post_ok "{\"to\":\"+3934012345${n}3\",\"text\":\"$long_text\",\"class\":\"marketing\"}")
	for id in $gsm $uni $long; do
		wait_state "$id" DELIVERED 15 || fail "$phase: message $id is $(message_state "$id"), not DELIVERED"
	done
	pass "$phase: GSM, Unicode and long messages DELIVERED, receipts matched"

	# What reached the SMSC, byte for byte.
	[ "$(submits_to "3934012345${n}1")" = 1 ] || fail "$phase: GSM message reached the SMSC $(submits_to "3934012345${n}1") times"
	[ "$(record_field "3934012345${n}1" 1 data_coding)" = 0 ] || fail "$phase: GSM data_coding"
	# GSM 03.38: '{' and '}' are escape pairs 1B 28 / 1B 29; the rest maps to ASCII.
	expect="$(hex 'Hello from nudge ')1b28311b29"
	[ "$(record_field "3934012345${n}1" 1 short_message_hex)" = "$expect" ] ||
	    fail "$phase: GSM bytes $(record_field "3934012345${n}1" 1 short_message_hex) != $expect"
	[ "$(record_field "3934012345${n}1" 1 source_addr)" = NUDGE ] || fail "$phase: source_addr"
	[ "$(record_field "3934012345${n}1" 1 source_addr_ton)" = 5 ] || fail "$phase: alphanumeric sender needs TON 5"
	[ "$(record_field "3934012345${n}1" 1 registered_delivery)" = 1 ] || fail "$phase: registered_delivery"
	[ "$(record_field "3934012345${n}2" 1 data_coding)" = 8 ] || fail "$phase: Unicode data_coding"
	expect="041f044004380432043504420020d83ddc4b"
	[ "$(record_field "3934012345${n}2" 1 short_message_hex)" = "$expect" ] ||
	    fail "$phase: UCS-2 bytes $(record_field "3934012345${n}2" 1 short_message_hex)"
	[ "$(submits_to "3934012345${n}3")" = 2 ] || fail "$phase: long message in $(submits_to "3934012345${n}3") parts, expected 2"
	p1=$(record_field "3934012345${n}3" 1 short_message_hex)
	p2=$(record_field "3934012345${n}3" 2 short_message_hex)
	[ "$(record_field "3934012345${n}3" 1 esm_class)" = 64 ] || fail "$phase: part 1 lacks UDHI"
	case "$p1" in 050003??0201*) ;; *) fail "$phase: part 1 UDH: $p1" ;; esac
	case "$p2" in 050003??0202*) ;; *) fail "$phase: part 2 UDH: $p2" ;; esac
	[ "$(echo "$p1" | cut -c7-8)" = "$(echo "$p2" | cut -c7-8)" ] || fail "$phase: parts carry different references"
	whole="$(echo "$p1" | cut -c13-)$(echo "$p2" | cut -c13-)"
	[ "$whole" = "$(hex "$long_text")" ] || fail "$phase: long message text differs after reassembly of the parts"
	pass "$phase: bytes on the wire: GSM with escapes, UCS-2 with a surrogate pair, 2 UDH parts"

	api_get "/v1/messages/$long"
	[ "$(reply .part_count)" = 2 ] || fail "$phase: GET part_count"
	[ "$(reply '.parts[1].state')" = DELIVERED ] || fail "$phase: GET part 2 state"
	[ -n "$(reply '.parts[0].smsc_id')" ] || fail "$phase: GET part 1 smsc_id"
	[ "$(reply '.parts[0].receipt.state')" = DELIVERED ] || fail "$phase: GET part 1 receipt"
	pass "$phase: GET /v1/messages/$long shows parts, SMSC ids and receipts"

	# MO: one GSM message, and a long one whose parts arrive out of order.
	mo_text="Hi, STOP please"
	echo "deliver 393409999${n}01 12345 0 0 $(hex "$mo_text")" >>"$SCRATCH/netsmpp.control"
	part1="Part one of a long reply, "
	part2="and part two."
	echo "deliver 393409999${n}02 12345 64 0 050003770202$(hex "$part2")" >>"$SCRATCH/netsmpp.control"
	echo "deliver 393409999${n}02 12345 64 0 050003770201$(hex "$part1")" >>"$SCRATCH/netsmpp.control"
	wait_for 10 sh -c "\"$NUDGECTL\" -D \"$SCRATCH/var\" mo tail -n 50 --json | grep -q 'and part two'" ||
	    fail "$phase: the long MO never appeared in nudgectl mo tail"
	"$NUDGECTL" -D "$SCRATCH/var" mo tail -n 50 --json >"$SCRATCH/mo.jsonl"
	grep -q "Hi, STOP please" "$SCRATCH/mo.jsonl" || fail "$phase: single MO missing: $(cat "$SCRATCH/mo.jsonl")"
	grep -q "$part1$part2" "$SCRATCH/mo.jsonl" || fail "$phase: long MO not reassembled in order: $(cat "$SCRATCH/mo.jsonl")"
	pass "$phase: MO stored, the long one reassembled from parts sent out of order"

	stop_pid "$NUDGED_PID" 10
	[ "$STOP_STATUS" = 0 ] || fail "$phase: nudged stopped with $STOP_STATUS"
	kill "$NETSMPP_PID" 2>/dev/null || true
	rm -rf "$SCRATCH/var"
}

# Phase 1: transceiver; responses in hex, receipt text in decimal, TLVs on.
PHASE_NUMBER=1 RESPONSE_BASE=hex RECEIPT_BASE=decimal
run_phase "trx/hex+dec" transceiver --id-base hex --receipt-id-base dec

# Phase 2: a transmitter and a receiver; receipts before the response, by
# text only (no TLVs), ids in decimal; the first 2 submits throttled.
PHASE_NUMBER=2 RESPONSE_BASE=decimal RECEIPT_BASE=decimal
run_phase "pair/dec/early/throttled" pair --id-base dec --receipt-before-response \
    --no-receipt-tlvs --throttle-first 2
grep -q '"command":"submit_sm_throttled"' "$SCRATCH/netsmpp.jsonl" || fail "phase 2 saw no throttling"
pass "throttled submits were retried and each message reached the SMSC exactly once"
grep -q "receipt held-matched" "$SCRATCH/nudged.log" || fail "no receipt was held before its response in phase 2"
pass "receipts that came before their submit_sm_resp were held and matched"
