#!/bin/sh
# test_smsc_sim.sh - the SMSC simulator (tools/smsc-sim.c) itself, driven by
# a Net::SMPP client (peers/smsc_sim_client.pl): binds and bad credentials,
# hex and decimal ids, receipts with their text and TLVs, MO from stdin and
# HTTP (GSM, UCS-2, long with UDH), the record file, throttling, stall,
# drop, malformed PDUs, GET /stats, STATS on SIGTERM and --quit-after.
. tests/integration/lib.sh
SIM=${SMSC_SIM:-$BUILD/smsc-sim}
CLIENT=tests/integration/peers/smsc_sim_client.pl
[ -x "$SIM" ] || fail "$SIM is not built (make all)"

# launch_sim NAME ARGS...: smsc-sim on a free port (-p 0 and its READY
# line), stdin from a FIFO held open on fd 3; sets SIM_PID and PORT.
# (lib.sh's start_sim serves the nudged tests: fixed port, one instance.)
launch_sim() {
	name=$1
	shift
	mkfifo "$SCRATCH/$name.in"
	"$SIM" -p 0 "$@" <"$SCRATCH/$name.in" >"$SCRATCH/$name.out" \
	    2>"$SCRATCH/$name.log" &
	SIM_PID=$!
	PIDS="$PIDS $SIM_PID"
	exec 3>"$SCRATCH/$name.in"
	wait_for 5 grep -q '^READY ' "$SCRATCH/$name.out" ||
	    fail "$name: no READY line"
	PORT=$(sed -n 's/^READY //p' "$SCRATCH/$name.out")
}

# stop_sim NAME: SIGTERM, bounded wait, stdin closed.
stop_sim() {
	stop_pid "$SIM_PID" 5
	[ "$STOP_STATUS" = 0 ] || fail "$1: SIGTERM gave $STOP_STATUS"
	exec 3>&-
}

# client OUT STEP...: runs the Net::SMPP client; its lines go to OUT.
client() {
	out=$1
	shift
	perl "$CLIENT" "$PORT" "$@" >"$out" 2>&1 || true
}

# expect FILE REGEX WHAT: FILE has a line matching REGEX (extended).
expect() {
	grep -Eq -- "$2" "$1" || fail "$3: no line like '$2' in: $(cat "$1")"
}

DATE='[0-9]{10}'
TEXT='Hello from the test'

# ---- A: hex ids, receipts, record, HTTP and stdin control ----------------
HTTP_PORT=$(free_port)
launch_sim a -u nudge -P secret --first-id 1000 --http-port "$HTTP_PORT" \
    --record "$SCRATCH/a.record"
expect "$SCRATCH/a.out" "^HTTP $HTTP_PORT\$" "HTTP line"

client "$SCRATCH/c1" bind transceiver nudge secret \
    submit NudgeTest 4915550001 1 "$TEXT" deliver 5 enquire
expect "$SCRATCH/c1" '^bind_resp status=0x00000000$' "bind_transceiver"
expect "$SCRATCH/c1" '^submit_resp seq=2 status=0x00000000 id=3E8 .* arrival=2$' \
    "submit_sm answered with hex id 3E8"
expect "$SCRATCH/c1" '^deliver .* arrival=3 ' "receipt after the response"
expect "$SCRATCH/c1" "^deliver .*esm_class=4 data_coding=0 source=4915550001 source_ton=1 dest=NudgeTest dest_ton=5 receipted_message_id=3E8 message_state=2 " \
    "receipt PDU fields and TLVs"
expect "$SCRATCH/c1" "text=id:3E8 sub:001 dlvrd:001 submit date:$DATE done date:$DATE stat:DELIVRD err:000 text:$TEXT\$" \
    "receipt text"
expect "$SCRATCH/c1" '^enquire_link_resp status=0x00000000$' "enquire_link"
pass "bind, submit_sm -> id 3E8, receipt DELIVRD with matching id and TLVs"

expect "$SCRATCH/a.record" "^3E8 2 NudgeTest 4915550001 0 0 1 19 $(hex "$TEXT")\$" \
    "record line"
pass "record line: id, seq, addresses, esm_class, coding, rd, length, hex"

# UDH + UCS-2 with SAR TLVs is recorded byte for byte; no receipt asked.
client "$SCRATCH/c2" bind transmitter nudge secret \
    submit_hex Shop 4915550009 64 8 0 050003070201041f0440 \
    data_sm Shop 4915550010 0 "payload text"
expect "$SCRATCH/c2" '^submit_resp seq=2 status=0x00000000 id=3E9 ' "UDH submit"
expect "$SCRATCH/c2" '^data_sm_resp seq=3 status=0x00000000 id=3EA ' "data_sm"
expect "$SCRATCH/a.record" '^3E9 2 Shop 4915550009 64 8 0 10 050003070201041f0440$' \
    "UDH record line"
expect "$SCRATCH/a.record" "^3EA 3 Shop 4915550010 0 0 0 12 $(hex 'payload text')\$" \
    "data_sm record line"
pass "UDH/UCS-2 submit_sm and data_sm recorded byte for byte"

client "$SCRATCH/c3" bind transceiver nudge wrong
expect "$SCRATCH/c3" '^bind_resp status=0x0000000E$' "wrong password"
client "$SCRATCH/c3" bind receiver intruder secret
expect "$SCRATCH/c3" '^bind_resp status=0x0000000F$' "wrong system_id"
pass "wrong password -> 0x0E, wrong system_id -> 0x0F"

# MO: stdin (GSM), POST /mo JSON (UCS-2), POST /mo form (two parts).
LONG='This MO text is long enough to need two parts: one hundred and sixty GSM characters fit in a single message, and this one goes well beyond that limit, so UDH it is.'
client "$SCRATCH/c4" bind receiver nudge secret touch "$SCRATCH/bound4" \
    deliver 5 deliver 5 deliver 5 deliver 5 &
CLIENT_PID=$!
wait_for 5 test -e "$SCRATCH/bound4" || fail "MO client did not bind"
echo "mo +4915550002 12345 Hi there, MO" >&3
curl -fsS -o "$SCRATCH/mo1.json" -d '{"from":"4915550003","to":"12345","text":"Привет"}' \
    "http://127.0.0.1:$HTTP_PORT/mo" || fail "POST /mo JSON"
curl -fsS -o "$SCRATCH/mo2.json" --data-urlencode from=4915550004 \
    --data-urlencode to=Shop --data-urlencode "text=$LONG" \
    "http://127.0.0.1:$HTTP_PORT/mo" || fail "POST /mo form"
wait "$CLIENT_PID" || true
expect "$SCRATCH/mo1.json" '"parts":1' "POST /mo JSON reply"
expect "$SCRATCH/mo2.json" '"parts":2' "POST /mo form reply"
expect "$SCRATCH/c4" "^deliver .*esm_class=0 data_coding=0 source=4915550002 source_ton=1 dest=12345 .* hex=$(hex 'Hi there, MO') text=Hi there, MO\$" \
    "stdin MO"
expect "$SCRATCH/c4" '^deliver .*esm_class=0 data_coding=8 source=4915550003 .*hex=041f04400438043204350442 ' \
    "UCS-2 MO"
expect "$SCRATCH/c4" '^deliver .*esm_class=64 data_coding=0 source=4915550004 source_ton=1 dest=Shop dest_ton=5 .*hex=050003[0-9a-f]{2}0201' \
    "long MO part 1"
expect "$SCRATCH/c4" '^deliver .*esm_class=64 .*hex=050003[0-9a-f]{2}0202' \
    "long MO part 2"
pass "MO from stdin (GSM) and POST /mo (UCS-2, two parts with UDH) arrive"

# throttle and stall, over HTTP and stdin.
curl -fsS -o /dev/null -d ms=3000 "http://127.0.0.1:$HTTP_PORT/throttle" ||
    fail "POST /throttle"
client "$SCRATCH/c5" bind transmitter nudge secret submit A 1 0 x
expect "$SCRATCH/c5" '^submit_resp seq=2 status=0x00000058 ' "throttle command"
pass "POST /throttle -> 0x58"
echo "throttle 0" >&3
client "$SCRATCH/c6" bind transmitter nudge secret touch "$SCRATCH/bound6" \
    wait_file "$SCRATCH/stalled6" 5 submit A 1 0 x &
CLIENT_PID=$!
wait_for 5 test -e "$SCRATCH/bound6" || fail "stall client did not bind"
echo "stall 800" >&3
sleep 0.1
touch "$SCRATCH/stalled6"
wait "$CLIENT_PID" || true
expect "$SCRATCH/c6" '^submit_resp seq=2 status=0x00000000 id=[0-9A-F]+ ms=([6-9][0-9]{2}|[0-9]{4}) ' \
    "stall holds the answer"
pass "stall: the answer waits until the stall is over"

# drop closes every session without unbind.
client "$SCRATCH/c7" bind transceiver nudge secret touch "$SCRATCH/bound7" eof 5 &
CLIENT_PID=$!
wait_for 5 test -e "$SCRATCH/bound7" || fail "drop client did not bind"
echo drop >&3
wait "$CLIENT_PID" || true
expect "$SCRATCH/c7" '^eof$' "drop"
pass "drop closes the session"

# Malformed PDUs: unknown command -> generic_nack 0x03 (stays open);
# command_length 8 -> generic_nack 0x02 and close.
client "$SCRATCH/c8" submit A 1 0 x \
    raw 0000001000000099000000000000000b expect 80000000 5 \
    enquire raw 00000008000000040000000000000007 expect 80000000 5 eof 5
expect "$SCRATCH/c8" '^submit_resp seq=1 status=0x00000004 ' \
    "submit_sm before bind"
expect "$SCRATCH/c8" '^pdu cmd=0x80000000 status=0x00000003 seq=11$' \
    "unknown command_id"
expect "$SCRATCH/c8" '^enquire_link_resp status=0x00000000$' \
    "session open after an unknown command"
expect "$SCRATCH/c8" '^pdu cmd=0x80000000 status=0x00000002 seq=7$' \
    "bad command_length"
expect "$SCRATCH/c8" '^eof$' "close after a bad command_length"
pass "0x04 before bind; generic_nack 0x03 for an unknown command, 0x02 + close for a bad length"

curl -fsS -o "$SCRATCH/stats.json" "http://127.0.0.1:$HTTP_PORT/stats" ||
    fail "GET /stats"
expect "$SCRATCH/stats.json" '"submits":5,"acked":4,"throttled":1,.*"malformed":2,' \
    "GET /stats"
pass "GET /stats: $(cut -c1-80 "$SCRATCH/stats.json")"

stop_sim a
expect "$SCRATCH/a.log" '^STATS submits=5 acked=4 throttled=1 queue_full=0 rejected=0 receipts=1 receipts_acked=1 mo=4 binds=6$' \
    "STATS line at exit"
pass "SIGTERM: exits 0 with the STATS line"

# ---- B: decimal ids, receipt before response, SIGUSR1 -------------------
launch_sim b --id-base dec --first-id 1000 --receipt-before-response-rate 1
client "$SCRATCH/d1" bind transceiver nudge secret \
    submit NudgeTest 4915550001 1 "$TEXT" deliver 5
expect "$SCRATCH/d1" '^submit_resp seq=2 status=0x00000000 id=1000 ' \
    "decimal id"
expect "$SCRATCH/d1" "receipted_message_id=1000 message_state=2 .*text=id:1000 sub:001 dlvrd:001 .*stat:DELIVRD err:000 text:$TEXT\$" \
    "decimal receipt"
# Arrival numbers: bind_resp 1, then the receipt 2 before the response 3.
expect "$SCRATCH/d1" '^submit_resp .* arrival=3$' "response after the receipt"
expect "$SCRATCH/d1" '^deliver .* arrival=2 ' "receipt before the response"
kill -USR1 "$SIM_PID"
wait_for 5 grep -q '^STATS submits=1 acked=1 ' "$SCRATCH/b.log" ||
    fail "SIGUSR1 printed no STATS"
pass "--id-base dec: id 1000 in response and receipt; SIGUSR1 prints STATS"
stop_sim b

# ---- D: latency, receipt delay and outcome, redelivery after a close ---
launch_sim d --latency-ms 300 --receipt-delay-ms 100 --outcomes UNDELIV:1
client "$SCRATCH/f1" bind transmitter nudge secret \
    submit NudgeTest 4915550001 1 "$TEXT" submit NudgeTest 4915550001 0 none
expect "$SCRATCH/f1" '^submit_resp seq=2 status=0x00000000 id=1 ms=([3-9][0-9]{2}|[0-9]{4}) ' \
    "--latency-ms 300"
expect "$SCRATCH/f1" '^submit_resp seq=3 status=0x00000000 id=2 ' "second submit"
# The receipt waits for a receiver; one that never answers it and closes
# hands it back, and the next receiver gets it again.
client "$SCRATCH/f2" bind receiver nudge secret hold 5
expect "$SCRATCH/f2" "^deliver .*receipted_message_id=1 message_state=5 .*text=id:1 sub:001 dlvrd:000 .*stat:UNDELIV err:001 text:$TEXT\$" \
    "queued UNDELIV receipt"
client "$SCRATCH/f3" bind receiver nudge secret deliver 5 quiet 0.5
expect "$SCRATCH/f3" '^deliver .*receipted_message_id=1 message_state=5 ' \
    "receipt redelivered"
expect "$SCRATCH/f3" '^quiet$' "no receipt for registered_delivery 0"
stop_sim d
expect "$SCRATCH/d.log" '^STATS submits=2 acked=2 .* receipts=2 receipts_acked=1 ' \
    "STATS after redelivery"
pass "latency, UNDELIV outcome, receipt queued then redelivered after a close"

# ---- C: --throttle-rate 1, --quit-after ---------------------------------
launch_sim c --throttle-rate 1 --quit-after 2
client "$SCRATCH/e1" bind transceiver nudge secret submit A 1 1 x
expect "$SCRATCH/e1" '^submit_resp seq=2 status=0x00000058 ' "throttle rate 1"
pass "--throttle-rate 1 -> 0x58"
waited=0
while running "$SIM_PID"; do
	sleep 0.1
	waited=$((waited + 1))
	[ "$waited" -lt 80 ] || fail "--quit-after 2 did not exit"
done
wait "$SIM_PID" || fail "--quit-after: non-zero exit"
exec 3>&-
expect "$SCRATCH/c.log" '^STATS submits=1 acked=0 throttled=1 ' \
    "STATS after --quit-after"
pass "--quit-after exits by itself with STATS"
