#!/bin/sh
# test_server_kannel.sh - Kannel's bearerbox binds to nudged's SMPP server as
# an ESME (first as a transceiver, then as a transmitter + receiver pair) and
# nudged relays to a Net::SMPP SMSC upstream. MTs injected with smsbox's
# sendsms reach the SMSC with the right bytes (GSM with escapes, UCS-2, a
# 200-character message in two UDH parts); each receipt comes back to
# Kannel's dlr-url as delivered with the id nudged answered; an MO from the
# SMSC to nudged's short code reaches Kannel's get-url. A first phase checks
# the Kannel harness itself against tools/smsc-sim.
. tests/integration/lib.sh
. tests/integration/kannel.sh

CAPTURE_PORT=$(free_port)
start_capture "$CAPTURE_PORT"
LONG_TEXT="$(printf 'Cart reminder %.0s' $(seq 1 14))end!"
[ ${#LONG_TEXT} = 200 ] || fail "the long text has ${#LONG_TEXT} characters"

# submits_to NUMBER: accepted submit_sm lines the Net::SMPP SMSC recorded.
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

# dlr_field TAG TYPE FIELD: FIELD of the first delivery report of TYPE (%d)
# for the message sent to TAG.
dlr_field() {
	kannel_callbacks /dlr tag type "$3" |
	    awk -F '\t' -v tag="$1" -v type="$2" \
	    '$1 == tag && $2 == type { print $3; exit }'
}

# has_dlr TAG TYPE: true once a report of TYPE came for TAG.
has_dlr() {
	[ "$(kannel_callbacks /dlr tag type | grep -Fxc "$(printf '%s\t%s' "$1" "$2")")" -ge 1 ]
}

# send NAME FROM TO TEXT [EXTRA]: sendsms, failing the test if refused.
send() {
	kannel_sendsms "$2" "$3" "$4" "${5:-}" ||
	    fail "$1: sendsms answered $SENDSMS_CODE $(cat "$KANNEL_DIR/sendsms.reply")"
}

# ---- Phase 0: the harness itself, Kannel against smsc-sim ----------------
SIM_PORT=$(free_port)
start_sim "$SIM_PORT" -u kannel -P secret12
start_kannel "$SCRATCH" "$SIM_PORT" transceiver
send harness 4930123 393401234500 "Harness check"
wait_for 10 grep -q " 393401234500 .* $(hex 'Harness check')\$" "$SCRATCH/sink.rec" ||
    fail "harness: sendsms never reached smsc-sim: $(cat "$SCRATCH/sink.rec")"
wait_for 10 has_dlr 393401234500 1 || fail "harness: no delivered report from smsc-sim"
sim_command "mo +393409876500 4930123 Harness MO"
wait_for 10 sh -c "grep -q '/mo' '$SCRATCH/capture.jsonl'" ||
    fail "harness: the MO from smsc-sim never reached the get-url"
stop_kannel
stop_pid "$SIM_PID" 5
pass "harness: Kannel binds to smsc-sim, sendsms, delivery report and MO work"

# run_phase NAME MODE N: nudged between Kannel (MODE) and the Net::SMPP SMSC;
# N keeps the numbers of each phase apart.
run_phase() {
	phase=$1
	mode=$2
	n=$3
	rm -f "$SCRATCH/netsmpp.jsonl"
	UP_PORT=$(free_port)
	start_netsmpp "$UP_PORT"
	write_config "$SCRATCH/nudged.conf"
	add_link "$SCRATCH/nudged.conf" up "$UP_PORT" "bind = transceiver"
	cat >>"$SCRATCH/nudged.conf" <<CONF
[account kannel]
system_id = kannel
password = secret12
allowed_addresses = 127.0.0.1/32
mo_destinations = 12345
CONF
	start_nudged "$SCRATCH/nudged.conf"
	wait_for 10 link_bound up || fail "$phase: link up never bound"
	start_kannel "$SCRATCH" "$SMPP_PORT" "$mode"
	pass "$phase: bearerbox bound to nudged ($mode)"

	gsm=3934012345${n}1
	uni=3934012345${n}2
	long=3934012345${n}3
	send "$phase" 4930123 "$gsm" "Hi @home: 10€ off [x]"
	send "$phase" 4930123 "$uni" "Привет 👋" "coding=2&charset=UTF-8"
	send "$phase" NUDGE "$long" "$LONG_TEXT"
	wait_for 15 sh -c "[ \$(grep -c '\"command\":\"submit_sm\"' '$SCRATCH/netsmpp.jsonl' 2>/dev/null) -ge 4 ]" ||
	    fail "$phase: the SMSC did not get 4 submits: $(cat "$SCRATCH/netsmpp.jsonl" 2>/dev/null)"

	# GSM 03.38: '@' is 00, '€' 1B 65, '[' 1B 3C, ']' 1B 3E.
	[ "$(submits_to "$gsm")" = 1 ] || fail "$phase: GSM message reached the SMSC $(submits_to "$gsm") times"
	[ "$(record_field "$gsm" 1 data_coding)" = 0 ] || fail "$phase: GSM data_coding"
	expect=48692000686f6d653a2031301b65206f6666201b3c781b3e
	[ "$(record_field "$gsm" 1 short_message_hex)" = "$expect" ] ||
	    fail "$phase: GSM bytes $(record_field "$gsm" 1 short_message_hex) != $expect"
	[ "$(record_field "$gsm" 1 source_addr)" = 4930123 ] || fail "$phase: source_addr"
	[ "$(submits_to "$uni")" = 1 ] || fail "$phase: Unicode message reached the SMSC $(submits_to "$uni") times"
	[ "$(record_field "$uni" 1 data_coding)" = 8 ] || fail "$phase: Unicode data_coding $(record_field "$uni" 1 data_coding)"
	expect=041f044004380432043504420020d83ddc4b
	[ "$(record_field "$uni" 1 short_message_hex)" = "$expect" ] ||
	    fail "$phase: UCS-2 bytes $(record_field "$uni" 1 short_message_hex)"
	[ "$(submits_to "$long")" = 2 ] || fail "$phase: long message in $(submits_to "$long") parts, expected 2"
	p1=$(record_field "$long" 1 short_message_hex)
	p2=$(record_field "$long" 2 short_message_hex)
	[ "$(record_field "$long" 1 esm_class)" = 67 ] || fail "$phase: part 1 esm_class $(record_field "$long" 1 esm_class), not 0x43"
	[ "$(record_field "$long" 2 esm_class)" = 67 ] || fail "$phase: part 2 esm_class"
	case "$p1" in 050003??0201*) ;; *) fail "$phase: part 1 UDH: $p1" ;; esac
	case "$p2" in 050003??0202*) ;; *) fail "$phase: part 2 UDH: $p2" ;; esac
	[ "$(echo "$p1" | cut -c7-8)" = "$(echo "$p2" | cut -c7-8)" ] || fail "$phase: parts carry different references"
	whole="$(echo "$p1" | cut -c13-)$(echo "$p2" | cut -c13-)"
	[ "$whole" = "$(hex "$LONG_TEXT")" ] || fail "$phase: the two parts do not make the 200-character text"
	pass "$phase: bytes at the SMSC: GSM with @ and escapes, UCS-2 (data_coding 8), 2 UDH parts making 200 characters"

	# Receipts: Kannel reports %d = 1 with the id nudged gave it (%F), the
	# one the SMSC ack (%d = 8) carried too, and the receipt text says so.
	# Kannel asks a receipt for the first part of a long message only.
	for number in $gsm $uni $long; do
		wait_for 15 has_dlr "$number" 1 ||
		    fail "$phase: no delivered report for $number: $(kannel_callbacks /dlr tag type smscid reply)"
		id=$(dlr_field "$number" 1 smscid)
		[ -n "$id" ] || fail "$phase: the delivered report for $number has no %F"
		[ "$(dlr_field "$number" 8 smscid)" = "$id" ] ||
		    fail "$phase: $number: submit_sm_resp id $(dlr_field "$number" 8 smscid) but receipt id $id"
		case "$(dlr_field "$number" 1 reply)" in
		"id:$id "*stat:DELIVRD*) ;;
		*) fail "$phase: $number: receipt text '$(dlr_field "$number" 1 reply)'" ;;
		esac
		api_get "/v1/messages/$id"
		[ "$HTTP_CODE" = 200 ] || fail "$phase: GET /v1/messages/$id: HTTP $HTTP_CODE"
		[ "$(reply .to | tr -d +)" = "$number" ] || fail "$phase: message $id is to $(reply .to), not $number"
		[ "$(reply .state)" = DELIVERED ] || fail "$phase: message $id is $(reply .state)"
		[ "$(reply .origin)" = esme:kannel ] || fail "$phase: message $id origin $(reply .origin)"
	done
	[ "$(kannel_callbacks /dlr tag type | grep -Fxc "$(printf '%s\t1' "$gsm")")" = 1 ] ||
	    fail "$phase: more than one delivered report for $gsm"
	pass "$phase: delivery reports %d=1 with the id of the submit_sm_resp, messages DELIVERED in nudged"

	# MO from the SMSC to the short code of account kannel.
	mo_from=393409876${n}01
	mo_text="Hello back, STOP? No: INFO"
	echo "deliver $mo_from 12345 0 0 $(hex "$mo_text")" >>"$SCRATCH/netsmpp.control"
	wait_for 15 sh -c "grep -q '$mo_from' '$SCRATCH/capture.jsonl'" ||
	    fail "$phase: the MO never reached Kannel's get-url: $(kannel_callbacks /mo from to text)"
	line=$(kannel_callbacks /mo from to binary smsc | grep "$mo_from")
	from=$(echo "$line" | cut -f1)
	to=$(echo "$line" | cut -f2)
	text=$(echo "$line" | cut -f3)
	case "$from" in "$mo_from" | "+$mo_from") ;; *) fail "$phase: MO from '$from'" ;; esac
	case "$to" in 12345 | +12345) ;; *) fail "$phase: MO to '$to'" ;; esac
	[ "$text" = "$mo_text" ] || fail "$phase: MO text '$text'"
	pass "$phase: MO from $from to $to reached the get-url with its text"

	stop_kannel
	stop_pid "$NUDGED_PID" 10
	[ "$STOP_STATUS" = 0 ] || fail "$phase: nudged stopped with $STOP_STATUS"
	kill "$NETSMPP_PID" 2>/dev/null || true
	wait "$NETSMPP_PID" 2>/dev/null || true
	rm -rf "$SCRATCH/var"
}

run_phase transceiver transceiver 1
run_phase pair pair 2
