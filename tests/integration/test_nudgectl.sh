#!/bin/sh
# test_nudgectl.sh - nudgectl reads a running nudged's store from another
# process: `dlr tail -f --json` started before any traffic prints the 20
# receipts of 20 messages as they arrive, flushed per line, in sequence
# order, each message once, DELIVERED; `dlr tail -n 5` prints exactly the
# last 5; the filters filter; `stats` shows the link BOUND; `message ID`
# shows a delivered message with its part and history; `mo tail` shows an
# injected MO. No output anywhere holds a whole phone number. Usage errors
# exit 2, a missing data directory exits 1 with a clear message.
. tests/integration/lib.sh
NUDGECTL=${NUDGECTL:-$BUILD/nudgectl}
[ -x "$NUDGECTL" ] || fail "$NUDGECTL is not built (make all)"
[ -x "$BUILD/smsc-sim" ] || fail "$BUILD/smsc-sim is not built (make all)"

# ctl ARGS...: nudgectl on the scratch store.
ctl() {
	"$NUDGECTL" -D "$SCRATCH/var" "$@"
}

# stop_int PID SECONDS: SIGINT, bounded wait; STOP_STATUS as in stop_pid.
stop_int() {
	kill -INT "$1"
	waited=0
	while running "$1"; do
		sleep 0.05
		waited=$((waited + 1))
		if [ "$waited" -gt $(($2 * 20)) ]; then
			STOP_STATUS=timeout
			return 0
		fi
	done
	STOP_STATUS=0
	wait "$1" 2>/dev/null || STOP_STATUS=$?
}

# ---- usage and a missing store --------------------------------------------
"$NUDGECTL" -h >"$SCRATCH/usage.out" 2>&1 || fail "-h exited non-zero"
grep -q '^  dlr tail \[-f\]' "$SCRATCH/usage.out" || fail "-h: $(cat "$SCRATCH/usage.out")"
status=0
"$NUDGECTL" -D "$SCRATCH" frobnicate >"$SCRATCH/unknown.out" 2>"$SCRATCH/unknown.err" || status=$?
[ "$status" = 2 ] || fail "unknown command: exit $status, expected 2"
[ -s "$SCRATCH/unknown.out" ] && fail "unknown command: usage went to stdout"
grep -q '^usage: nudgectl' "$SCRATCH/unknown.err" || fail "unknown command: no usage on stderr"
status=0
"$NUDGECTL" -D "$SCRATCH" dlr >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "dlr without tail: exit $status, expected 2"
status=0
"$NUDGECTL" -D "$SCRATCH" dlr tail --bogus >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "unknown option: exit $status, expected 2"
pass "-h prints usage; an unknown command or option exits 2 with usage on stderr"

status=0
"$NUDGECTL" -D "$SCRATCH/nowhere" dlr tail >"$SCRATCH/missing.out" 2>&1 || status=$?
[ "$status" = 1 ] || fail "missing data dir: exit $status, expected 1"
grep -q "data directory $SCRATCH/nowhere: No such file or directory" "$SCRATCH/missing.out" ||
    fail "missing data dir: $(cat "$SCRATCH/missing.out")"
mkdir "$SCRATCH/empty"
status=0
"$NUDGECTL" -D "$SCRATCH/empty" stats >"$SCRATCH/empty.out" 2>&1 || status=$?
[ "$status" = 1 ] || fail "empty data dir: exit $status, expected 1"
grep -q "data.mdb: No such file or directory (has nudged run" "$SCRATCH/empty.out" ||
    fail "empty data dir: $(cat "$SCRATCH/empty.out")"
printf '[nudged]\ndata_dir = %s/gone\n' "$SCRATCH" >"$SCRATCH/gone.conf"
status=0
"$NUDGECTL" -c "$SCRATCH/gone.conf" message 1 >"$SCRATCH/gone.out" 2>&1 || status=$?
[ "$status" = 1 ] || fail "config's missing data dir: exit $status, expected 1"
grep -q "data directory $SCRATCH/gone:" "$SCRATCH/gone.out" || fail "config's data dir not used: $(cat "$SCRATCH/gone.out")"
pass "a missing data directory or store exits 1 and says which"

# ---- nudged with one link to smsc-sim ---------------------------------------
SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"

# The follower starts on an empty receipt log, before any message.
# (Not through ctl: a background function is a subshell, not nudgectl.)
"$NUDGECTL" -D "$SCRATCH/var" dlr tail -f --json >"$SCRATCH/follow.jsonl" \
    2>"$SCRATCH/follow.log" &
FOLLOW_PID=$!
PIDS="$PIDS $FOLLOW_PID"
sleep 0.5
running "$FOLLOW_PID" || fail "dlr tail -f exited: $(cat "$SCRATCH/follow.log")"
[ -s "$SCRATCH/follow.jsonl" ] && fail "dlr tail -f printed receipts before any message"

: >"$SCRATCH/ids"
n=0
while [ "$n" -lt 20 ]; do
	api_post /v1/messages "{\"to\": \"+3934012345$((n / 10))$((n % 10))\", \"text\": \"nudgectl test $n\"}"
	[ "$HTTP_CODE" = 202 ] || fail "POST $n: $HTTP_CODE $(cat "$SCRATCH/reply.json")"
	reply .id >>"$SCRATCH/ids"
	n=$((n + 1))
done
pass "20 messages accepted"

wait_for 30 sh -c "[ \$(wc -l <\"$SCRATCH/follow.jsonl\") -ge 20 ]" ||
    fail "dlr tail -f: $(wc -l <"$SCRATCH/follow.jsonl") of 20 receipts in 30 s"
# Still running: the lines reached the file because each one was flushed.
running "$FOLLOW_PID" || fail "dlr tail -f exited early"
sleep 0.5
perl -MJSON::PP -e '
	my ($file, $ids) = @ARGV;
	open my $in, "<", $file or die "$file: $!\n";
	my @lines = <$in>;
	open my $want, "<", $ids or die "$ids: $!\n";
	my %wanted = map { chomp; ($_ => 0) } <$want>;
	die scalar(@lines) . " lines, expected 20\n" unless @lines == 20;
	my $previous = 0;
	for my $line (@lines) {
		my $r = decode_json($line);
		die "out of order: $r->{sequence} after $previous\n"
		    unless $r->{sequence} > $previous;
		$previous = $r->{sequence};
		die "not DELIVERED: $line" unless $r->{status} eq "DELIVERED";
		die "unmatched: $line" unless $r->{matched} && defined $r->{message_id};
		die "unknown message: $line" unless exists $wanted{$r->{message_id}};
		die "twice: $line" if $wanted{$r->{message_id}}++;
		die "link: $line" unless $r->{link} eq "sim";
		die "number not masked: $line"
		    unless $r->{to} =~ /^\+3934(\x{2022})+\d\d$/;
		die "latency: $line" unless defined $r->{latency_s} && $r->{latency_s} >= 0;
	}
	my @missing = grep { !$wanted{$_} } keys %wanted;
	die "no receipt for @missing\n" if @missing;
' "$SCRATCH/follow.jsonl" "$SCRATCH/ids" 2>"$SCRATCH/check.err" ||
    fail "dlr tail -f --json: $(cat "$SCRATCH/check.err")"
pass "dlr tail -f --json: 20 receipts as they came, in sequence order, each message once, DELIVERED, masked"

stop_int "$FOLLOW_PID" 3
[ "$STOP_STATUS" = 0 ] || fail "dlr tail -f on SIGINT: $STOP_STATUS"
"$NUDGECTL" -D "$SCRATCH/var" dlr tail -f >/dev/null 2>&1 &
pid=$!
PIDS="$PIDS $pid"
sleep 0.3
stop_pid "$pid" 3
[ "$STOP_STATUS" = 0 ] || fail "dlr tail -f on SIGTERM: $STOP_STATUS"
pass "dlr tail -f exits 0 on SIGINT and SIGTERM"

# ---- the last N, and the filters --------------------------------------------
ctl dlr tail -n 5 >"$SCRATCH/last5.txt" 2>"$SCRATCH/last5.err" || fail "dlr tail -n 5: $(cat "$SCRATCH/last5.err")"
[ "$(wc -l <"$SCRATCH/last5.txt")" = 5 ] || fail "dlr tail -n 5 printed $(wc -l <"$SCRATCH/last5.txt") lines"
grep -Evq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z \+3934(•)+[0-9]{2} msg=[0-9]+ part=1 link=sim status=DELIVERED err=0 latency=[0-9]+\.[0-9]{3}s$' \
    "$SCRATCH/last5.txt" && fail "dlr tail line format: $(cat "$SCRATCH/last5.txt")"
tail -n 5 "$SCRATCH/follow.jsonl" | sed 's/.*"message_id":\([0-9]*\).*/\1/' >"$SCRATCH/last5.want"
sed 's/.* msg=\([0-9]*\) .*/\1/' "$SCRATCH/last5.txt" >"$SCRATCH/last5.got"
cmp -s "$SCRATCH/last5.want" "$SCRATCH/last5.got" ||
    fail "dlr tail -n 5 is not the last 5: $(tr '\n' ' ' <"$SCRATCH/last5.got") vs $(tr '\n' ' ' <"$SCRATCH/last5.want")"
[ "$(ctl dlr tail | wc -l)" = 10 ] || fail "dlr tail: not 10 lines by default"
[ "$(ctl dlr tail -n 100 | wc -l)" = 20 ] || fail "dlr tail -n 100: not all 20"
[ "$(ctl dlr tail -n 0 | wc -l)" = 0 ] || fail "dlr tail -n 0 printed lines"
pass "dlr tail -n 5: exactly the last 5, oldest first, in the documented format"

[ "$(ctl dlr tail -n 3 --status delivered | wc -l)" = 3 ] || fail "--status delivered"
[ "$(ctl dlr tail -n 50 --status UNDELIVERABLE | wc -l)" = 0 ] || fail "--status UNDELIVERABLE matched"
[ "$(ctl dlr tail -n 50 --link sim | wc -l)" = 20 ] || fail "--link sim"
[ "$(ctl dlr tail -n 50 --link other | wc -l)" = 0 ] || fail "--link other matched"
status=0
ctl dlr tail --status NOPE >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "--status NOPE: exit $status, expected 2"
pass "--status and --link filter; an unknown status is refused"

# ---- stats and message ------------------------------------------------------
# nudged writes the link status once a second: wait for the last counts.
wait_for 5 sh -c "\"$NUDGECTL\" -D \"$SCRATCH/var\" stats --interval 0 | grep -q ' deliver_sm=20 '" ||
    fail "stats never showed 20 deliver_sm: $(ctl stats --interval 0 2>&1)"
ctl stats --interval 0 >"$SCRATCH/stats.txt" 2>&1 || fail "stats: $(cat "$SCRATCH/stats.txt")"
grep -Eq '^queue_depth=[0-9]+ links=1$' "$SCRATCH/stats.txt" || fail "stats queue: $(cat "$SCRATCH/stats.txt")"
grep -Eq '^link=sim state=BOUND age=-?[0-9.]+s binds=1 .* submitted=20 acknowledged=20 .* deliver_sm=20 window=' \
    "$SCRATCH/stats.txt" || fail "stats link: $(cat "$SCRATCH/stats.txt")"
ctl stats --json --interval 2 >"$SCRATCH/stats.json" 2>&1 || fail "stats --json: $(cat "$SCRATCH/stats.json")"
[ "$(perl tests/integration/jsonq.pl .links[0].state "$SCRATCH/stats.json")" = BOUND ] ||
    fail "stats --json: $(cat "$SCRATCH/stats.json")"
[ "$(perl tests/integration/jsonq.pl .links[0].rates_per_s.submitted "$SCRATCH/stats.json")" = 0 ] ||
    fail "stats --json rate while idle: $(cat "$SCRATCH/stats.json")"
pass "stats: link sim BOUND with its counters; rates over 2 s"

id=$(head -n 1 "$SCRATCH/ids")
ctl message "$id" >"$SCRATCH/message.txt" 2>&1 || fail "message $id: $(cat "$SCRATCH/message.txt")"
grep -Eq "^message=$id state=DELIVERED class=transactional to=\\+3934(•)+00 " "$SCRATCH/message.txt" ||
    fail "message $id: $(cat "$SCRATCH/message.txt")"
grep -Eq '^part=1 state=DELIVERED link=sim smsc_id=[0-9A-F]+ submit_status=0x00000000 .* receipt=DELIVERED ' \
    "$SCRATCH/message.txt" || fail "message $id part: $(cat "$SCRATCH/message.txt")"
grep -Eq '^  [0-9T:.Z-]+ DELIVERED part=1 reason=receipt ' "$SCRATCH/message.txt" ||
    fail "message $id history: $(cat "$SCRATCH/message.txt")"
ctl message "$id" --json >"$SCRATCH/message.json" 2>&1 || fail "message --json: $(cat "$SCRATCH/message.json")"
[ "$(perl tests/integration/jsonq.pl .parts[0].receipt "$SCRATCH/message.json")" = DELIVERED ] ||
    fail "message --json: $(cat "$SCRATCH/message.json")"
status=0
ctl message 999999 >"$SCRATCH/nomessage.out" 2>&1 || status=$?
[ "$status" = 1 ] && grep -q 'no message 999999' "$SCRATCH/nomessage.out" ||
    fail "message 999999: exit $status, $(cat "$SCRATCH/nomessage.out")"
pass "message $id: DELIVERED, its part and history; an unknown id exits 1"

# ---- mo tail ------------------------------------------------------------------
sim_command "mo +393409876543 12345 Hello from the phone"
wait_for 10 sh -c "\"$NUDGECTL\" -D \"$SCRATCH/var\" mo tail | grep -q 'Hello from the phone'" ||
    fail "mo tail: no MO in 10 s: $(ctl mo tail 2>&1)"
ctl mo tail >"$SCRATCH/mo.txt" 2>&1
grep -Eq '^[0-9T:.Z-]+ from=\+?3934(•)+43 to=12345 link=sim parts=1 complete=yes text="Hello from the phone"$' \
    "$SCRATCH/mo.txt" || fail "mo tail: $(cat "$SCRATCH/mo.txt")"
ctl mo tail --json >"$SCRATCH/mo.json" 2>&1
[ "$(perl tests/integration/jsonq.pl .text "$SCRATCH/mo.json")" = "Hello from the phone" ] ||
    fail "mo tail --json: $(cat "$SCRATCH/mo.json")"
pass "mo tail: the injected MO, sender masked"

# ---- no whole number in any output -------------------------------------------
for out in follow.jsonl last5.txt stats.txt stats.json message.txt message.json mo.txt mo.json; do
	if grep -Eq '4012345|409876' "$SCRATCH/$out"; then
		fail "$out holds a whole number: $(grep -E '4012345|409876' "$SCRATCH/$out" | head -n 1)"
	fi
done
pass "numbers are masked in every output"

stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stopped with $STOP_STATUS"
[ "$(ctl dlr tail -n 100 | wc -l)" = 20 ] || fail "dlr tail after nudged stopped"
pass "dlr tail reads the store with nudged stopped"
