#!/bin/sh
# bench_kannel.sh - HTTP -> SMPP head to head with Kannel 1.4.5 (issue 8,
# row 2). The same upstream sink (tools/smsc-sim: acks at once, one
# receipt per message, a fresh instance per case), N messages injected over
# keep-alive HTTP by the same C driver with the same concurrency:
#
#   nudged   POST /v1/messages {"to","from","text"}, durable ([store]
#            sync = yes), one upstream link with the default window (64)
#   Kannel   smsbox GET /cgi-bin/sendsms with dlr-mask=3 and no dlr-url
#            (a dlr-url callback per message halves Kannel's rate: see
#            /work/shared/PEERS.md), bearerbox bound to the sink as a
#            transceiver, max-pending-submits 1000, no store file
#            (Kannel's queue lives in memory: not durable)
#
# Why 1000 and not Kannel's default of 10: Kannel does not set TCP_NODELAY
# on its SMPP socket, so with a receipt per message its next submit_sm
# waits for the sink's delayed ACK (~40 ms); measured here with mtbatch and
# receipts: 10 pending -> ~460/s, 100 -> ~2,100/s, 1000 -> ~3,700/s. The
# benchmark gives Kannel its best of those (KANNEL_MAX_PENDING overrides).
#
# Cases: single8 and single32 (one message per request on 8 / 32
# connections) and bulk: nudged's {"messages":[...100]} on 8 connections
# against Kannel's mtbatch (kannel-extras) feeding bearerbox directly.
# Figures per side: messages/s from the first request to the last submit at
# the sink, messages/s to the last receipt the gateway took (the sink's
# receipts_acked; nudged's nudge_receipts_matched_total is checked too),
# the gateway's CPU per message (nudged; bearerbox + smsbox) and peak RSS.
# One table row per case and BENCH lines (each side's figures, the message
# count, the ratios), which tests/bench/run.sh turns into `make bench`'s
# table and build/bench/results.json. BENCH_N=100000 (BENCH_N32 for the 32
# connection rows, default BENCH_N / 2). Run by `make bench`.
. tests/bench/bench_lib.sh
. tests/integration/kannel.sh

N=${BENCH_N:-100000}
N32=${BENCH_N32:-$((N / 2))}
BATCH=100
FIRST=3400000000 # numbers +393400000000... (Italian mobile, 10 digits)
SENDER=4930123
TEXT="Your order {{n}} has shipped: track it at shop.example"
QUERY_TEXT=$(echo "$TEXT" | sed 's/ /+/g; s/:/%3A/g')
MTBATCH=${MTBATCH:-/usr/bin/mtbatch}
KANNEL_MAX_PENDING=${KANNEL_MAX_PENDING:-1000}
STALL_SECONDS=20 # no progress at the sink for this long: give up the case

printf '{"to":"+39{{n}}","from":"%s","text":"%s"}\n' "$SENDER" "$TEXT" \
    >"$SCRATCH/message.json"

# ---- the sink ------------------------------------------------------------

# start_sink SYSTEM_ID PASSWORD: a fresh smsc-sim with its HTTP API; sets
# SINK_PORT, SINK_HTTP_PORT and SINK_PID. stdin is a FIFO held open (EOF
# would end it).
start_sink() {
	SINK_PORT=$(free_port)
	rm -f "$SCRATCH/sink.in"
	mkfifo "$SCRATCH/sink.in"
	"$BUILD/smsc-sim" -p "$SINK_PORT" -u "$1" -P "$2" --http-port 0 \
	    --receipt-delay-ms 0 --quit-after 600 <"$SCRATCH/sink.in" \
	    >"$SCRATCH/sink.out" 2>"$SCRATCH/sink.log" &
	SINK_PID=$!
	PIDS="$PIDS $SINK_PID"
	exec 8>"$SCRATCH/sink.in"
	wait_for 10 grep -q READY "$SCRATCH/sink.out" ||
	    fail "smsc-sim did not start"
	SINK_HTTP_PORT=$(awk '$1 == "HTTP" { print $2 }' "$SCRATCH/sink.out")
}

# stop_sink: the sink leaves PIDS once it is gone (pids wrap quickly).
stop_sink() {
	exec 8>&-
	stop_pid "$SINK_PID" 10
	PIDS=$(echo " $PIDS " | sed "s/ $SINK_PID / /g")
}

# sink_counter NAME: a counter of the sink's GET /stats (flat JSON of
# integers; sed rather than perl: this runs every 50 ms next to the
# gateway being measured, on the same cores).
sink_counter() {
	curl -fsS --max-time 2 "http://127.0.0.1:$SINK_HTTP_PORT/stats" |
	    sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}

# wait_sink NAME COUNT: polls the counter every 50 ms until it reaches
# COUNT; WAIT_AT is the time it did (or the time of the last progress when
# it stalled for STALL_SECONDS), WAIT_COUNT the last value read.
wait_sink() {
	last=-1
	WAIT_AT=$(now)
	while :; do
		WAIT_COUNT=$(sink_counter "$1")
		[ -n "$WAIT_COUNT" ] || WAIT_COUNT=$last
		if [ "$WAIT_COUNT" != "$last" ]; then
			WAIT_AT=$(now)
			last=$WAIT_COUNT
		fi
		[ "$WAIT_COUNT" -ge "$2" ] && return 0
		[ "$(calc "$(now) - $WAIT_AT > $STALL_SECONDS")" = 1 ] &&
		    return 1
		sleep 0.05
	done
}

# ---- Kannel for benchmarks -----------------------------------------------

# kannel_bench_config DIR SINK_PORT: kannel.conf like the integration
# harness's, but quiet (log-level 4, no access logs) and with no get-url
# service: only MT and receipts run.
kannel_bench_config() {
	{
		kannel_core_group "$1" 4
		kannel_smsc_group port "$2" true "$KANNEL_MAX_PENDING"
		cat <<CONF

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $KANNEL_BOX_PORT
sendsms-port = $KANNEL_SENDSMS_PORT
sendsms-interface = 127.0.0.1
log-file = "$1/smsbox.log"
log-level = 4

group = sendsms-user
username = $KANNEL_SENDSMS_USER
password = $KANNEL_SENDSMS_PASSWORD
user-allow-ip = "127.0.0.1"
default-smsc = $KANNEL_SMSC_ID
max-messages = 1
CONF
	} >"$1/kannel.conf"
}

# start_kannel_bench DIR SINK_PORT WITH_SMSBOX: bearerbox bound to the sink,
# then smsbox unless WITH_SMSBOX is 0 (mtbatch takes smsbox's place).
start_kannel_bench() {
	KANNEL_DIR=$1
	mkdir -p "$KANNEL_DIR"
	kannel_bench_config "$KANNEL_DIR" "$2"
	"$BEARERBOX" -v 4 "$KANNEL_DIR/kannel.conf" \
	    >"$KANNEL_DIR/bearerbox.out" 2>&1 &
	BEARERBOX_PID=$!
	PIDS="$PIDS $BEARERBOX_PID"
	# smsbox started before bearerbox listens panics: wait for the bind.
	wait_for 15 kannel_online 1 || fail "bearerbox did not bind to the sink"
	SMSBOX_PID=""
	[ "$3" = 0 ] && return 0
	"$SMSBOX" -v 4 "$KANNEL_DIR/kannel.conf" >"$KANNEL_DIR/smsbox.out" 2>&1 &
	SMSBOX_PID=$!
	PIDS="$PIDS $SMSBOX_PID"
	wait_for 10 sh -c "curl -fsS --max-time 1 'http://127.0.0.1:$KANNEL_ADMIN_PORT/status.txt?password=$KANNEL_PASSWORD' | grep -q 'smsbox:'" ||
	    fail "smsbox did not connect to bearerbox within 10 s"
	wait_for 10 curl -s --max-time 1 -o /dev/null \
	    "http://127.0.0.1:$KANNEL_SENDSMS_PORT/" ||
	    fail "smsbox's sendsms port did not answer within 10 s"
}

# stop_kannel_bench: stop_kannel, then the boxes leave PIDS.
stop_kannel_bench() {
	for pid in $BEARERBOX_PID $SMSBOX_PID; do
		PIDS=$(echo " $PIDS " | sed "s/ $pid / /g")
	done
	stop_kannel
}

# ---- measuring -------------------------------------------------------------

# gateway_ticks PID...: CPU clock ticks of the processes together.
gateway_ticks() {
	ticks=0
	for pid in "$@"; do
		ticks=$((ticks + $(cpu_ticks "$pid")))
	done
	echo "$ticks"
}

# gateway_kb FIELD PID...: the sum of a /proc/PID/status field, kB.
gateway_kb() {
	field=$1
	shift
	kb=0
	for pid in "$@"; do
		kb=$((kb + $(status_kb "$pid" "$field")))
	done
	echo "$kb"
}

# measure LABEL COUNT PID...: after the injector was started at START_AT,
# waits for COUNT submits and COUNT receipts at the sink and sets
# SUBMIT_RATE, RECEIPT_RATE, CPU_US, RSS_MB (peak RSS; for nudged it counts
# the LMDB file pages it touched, hence also ANON_MB: the anonymous,
# private memory at the end).
measure() {
	label=$1
	count=$2
	shift 2
	if wait_sink acked "$count"; then
		submit_rate=$(calc "$count / ($WAIT_AT - $START_AT)")
	else
		echo "  $label: only $WAIT_COUNT of $count submits reached the sink"
		submit_rate=0
	fi
	if wait_sink receipts_acked "$count"; then
		receipt_rate=$(calc "$count / ($WAIT_AT - $START_AT)")
	else
		echo "  $label: only $WAIT_COUNT of $count receipts were acked"
		receipt_rate=0
	fi
	ticks_after=$(gateway_ticks "$@")
	cpu_us=$(calc "($ticks_after - $TICKS_BEFORE) / $TICKS_PER_SECOND * 1e6 / $count")
	rss_mb=$(calc "$(gateway_kb VmHWM "$@") / 1024")
	anon_mb=$(calc "$(gateway_kb RssAnon "$@") / 1024")
	SUBMIT_RATE=$(printf '%.0f' "$submit_rate")
	RECEIPT_RATE=$(printf '%.0f' "$receipt_rate")
	CPU_US=$(printf '%.1f' "$cpu_us")
	RSS_MB=$(printf '%.1f' "$rss_mb")
	ANON_MB=$(printf '%.1f' "$anon_mb")
}

# keep_nudged, keep_kannel: the figures of measure for one side.
keep_nudged() {
	NUDGED_SUBMIT_RATE=$SUBMIT_RATE NUDGED_RECEIPT_RATE=$RECEIPT_RATE
	NUDGED_CPU_US=$CPU_US NUDGED_RSS_MB=$RSS_MB NUDGED_ANON_MB=$ANON_MB
}

keep_kannel() {
	KANNEL_SUBMIT_RATE=$SUBMIT_RATE KANNEL_RECEIPT_RATE=$RECEIPT_RATE
	KANNEL_CPU_US=$CPU_US KANNEL_RSS_MB=$RSS_MB KANNEL_ANON_MB=$ANON_MB
}

# driver_line FILE: the driver's wall time and requests/s, on one line.
driver_line() {
	awk '$1 == "wall" { wall = $2 } $1 == "requests/s" { rate = $2 }
	    $1 == "requests" { sub(/^[^(]*/, ""); answers = $0 }
	    END { printf "driver %s s, %s requests/s %s", wall, rate, answers }' \
	    "$1"
}

# driver_lines: the driver's BENCH lines (its own figures, and whether it
# hit its CPU ceiling: kannel.CASE.SIDE.driver_saturated) with the others.
driver_lines() {
	grep '^BENCH ' "$SCRATCH/driver.out" >>"$SCRATCH/bench.lines" || true
}

# nudged_case NAME CONNECTIONS COUNT BATCH: COUNT messages into a fresh
# nudged (BATCH per request, 0 for single ones) bound to a fresh sink.
nudged_case() {
	case_name=$1 # not name: add_link sets that
	connections=$2
	count=$3
	batch=$4
	start_sink nudge secret
	bench_config "$SCRATCH/nudged.conf" yes "quiet_hours = no"
	add_link "$SCRATCH/nudged.conf" sink "$SINK_PORT"
	start_nudged "$SCRATCH/nudged.conf"
	wait_for 10 link_bound sink || fail "nudged's link did not bind"
	if [ "$batch" -gt 0 ]; then
		requests=$((count / batch))
		batch_option="--batch $batch --batch-key messages"
	else
		requests=$count
		batch_option=""
	fi
	TICKS_BEFORE=$(gateway_ticks "$NUDGED_PID")
	START_AT=$(now)
	# shellcheck disable=SC2086 # batch_option is empty or four words
	"$DRIVER" --port "$HTTP_PORT" --connections "$connections" \
	    --requests "$requests" $batch_option --path /v1/messages \
	    --token "$TOKEN" --body-file "$SCRATCH/message.json" \
	    --first "$FIRST" --name "kannel.$case_name.nudged" \
	    >"$SCRATCH/driver.out" 2>&1 ||
	    fail "driver: nudged $case_name: exit $?: $(cat "$SCRATCH/driver.out")"
	measure nudged "$count" "$NUDGED_PID"
	keep_nudged
	driver_lines
	matched=$(metric nudge_receipts_matched_total)
	echo "  nudged: $(driver_line "$SCRATCH/driver.out"), receipts" \
	    "matched $matched"
	[ "$matched" -ge "$count" ] ||
	    echo "  warning: nudged matched $matched receipts of $count"
	stop_nudged
	stop_sink
}

# kannel_case NAME CONNECTIONS COUNT: COUNT sendsms requests into a fresh
# Kannel bound to a fresh sink.
kannel_case() {
	name=$1
	connections=$2
	count=$3
	start_sink "$KANNEL_SMSC_USERNAME" "$KANNEL_SMSC_PASSWORD"
	start_kannel_bench "$SCRATCH/kannel.$name" "$SINK_PORT" 1
	path="/cgi-bin/sendsms?username=$KANNEL_SENDSMS_USER&password=$KANNEL_SENDSMS_PASSWORD&from=$SENDER&to=%2B39{{n}}&text=$QUERY_TEXT&dlr-mask=3"
	TICKS_BEFORE=$(gateway_ticks "$BEARERBOX_PID" "$SMSBOX_PID")
	START_AT=$(now)
	"$DRIVER" --port "$KANNEL_SENDSMS_PORT" --connections "$connections" \
	    --requests "$count" --method GET --path "$path" \
	    --first "$FIRST" --name "kannel.$name.kannel" \
	    >"$SCRATCH/driver.out" 2>&1 ||
	    fail "driver: Kannel $name: exit $?: $(cat "$SCRATCH/driver.out")"
	measure kannel "$count" "$BEARERBOX_PID" "$SMSBOX_PID"
	keep_kannel
	driver_lines
	echo "  kannel: $(driver_line "$SCRATCH/driver.out")"
	stop_kannel_bench
	stop_sink
}

# mtbatch_case NAME COUNT: COUNT messages through mtbatch into bearerbox
# (no smsbox), one receiver per line (digits only: mtbatch refuses a "+").
# mtbatch insists on a dlr-url with a dlr-mask; it plays smsbox, gets the
# reports itself and drops them, so the URL is never fetched.
mtbatch_case() {
	name=$1
	count=$2
	start_sink "$KANNEL_SMSC_USERNAME" "$KANNEL_SMSC_PASSWORD"
	start_kannel_bench "$SCRATCH/kannel.$name" "$SINK_PORT" 0
	echo "$TEXT" | sed 's/{{n}}/batch/' >"$SCRATCH/mtbatch.content"
	awk -v first="$FIRST" -v count="$count" \
	    'BEGIN { for (i = 0; i < count; i++) printf "39%.0f\n", first + i }' \
	    >"$SCRATCH/mtbatch.receivers"
	TICKS_BEFORE=$(gateway_ticks "$BEARERBOX_PID")
	START_AT=$(now)
	"$MTBATCH" -v 2 -b 127.0.0.1 -p "$KANNEL_BOX_PORT" -f "$SENDER" \
	    -D 3 -u http://127.0.0.1:9/dlr -r "$KANNEL_SMSC_ID" "$SCRATCH/mtbatch.content" \
	    "$SCRATCH/mtbatch.receivers" >"$SCRATCH/mtbatch.out" 2>&1 &
	mtbatch_pid=$!
	PIDS="$PIDS $mtbatch_pid"
	measure kannel "$count" "$BEARERBOX_PID"
	keep_kannel
	# mtbatch waits for bearerbox's acks; give it a bounded while.
	waited=0
	while running "$mtbatch_pid" && [ "$waited" -lt 100 ]; do
		sleep 0.1
		waited=$((waited + 1))
	done
	running "$mtbatch_pid" && kill -TERM "$mtbatch_pid"
	mtbatch_status=0
	wait "$mtbatch_pid" || mtbatch_status=$?
	PIDS=$(echo " $PIDS " | sed "s/ $mtbatch_pid / /g")
	echo "  kannel: mtbatch exit $mtbatch_status"
	stop_kannel_bench
	stop_sink
}

# ---- reporting -------------------------------------------------------------

# report NAME COUNT NOTE: the table rows of a case (printed and kept for the
# summary) and its BENCH lines; the Kannel side's only if KANNEL_RAN is 1.
report() {
	row=kannel.$1
	submit_ratio=$(calc "$KANNEL_SUBMIT_RATE > 0 ? $NUDGED_SUBMIT_RATE / $KANNEL_SUBMIT_RATE : 0")
	receipt_ratio=$(calc "$KANNEL_RECEIPT_RATE > 0 ? $NUDGED_RECEIPT_RATE / $KANNEL_RECEIPT_RATE : 0")
	cpu_ratio=$(calc "$KANNEL_CPU_US > 0 ? $NUDGED_CPU_US / $KANNEL_CPU_US : 0")
	rss_ratio=$(calc "$KANNEL_RSS_MB > 0 ? $NUDGED_RSS_MB / $KANNEL_RSS_MB : 0")
	anon_ratio=$(calc "$KANNEL_ANON_MB > 0 ? $NUDGED_ANON_MB / $KANNEL_ANON_MB : 0")
	{
		printf '%-9s %7s %-18s %8s %8s %6.2f\n' "$1" "$2" \
		    "submits/s at sink" "$NUDGED_SUBMIT_RATE" \
		    "$KANNEL_SUBMIT_RATE" "$submit_ratio"
		printf '%-9s %7s %-18s %8s %8s %6.2f\n' "" "" "receipts/s" \
		    "$NUDGED_RECEIPT_RATE" "$KANNEL_RECEIPT_RATE" \
		    "$receipt_ratio"
		printf '%-9s %7s %-18s %8s %8s %6.2f\n' "" "" "cpu us/message" \
		    "$NUDGED_CPU_US" "$KANNEL_CPU_US" "$cpu_ratio"
		printf '%-9s %7s %-18s %8s %8s %6.2f\n' "" "" "peak RSS MB" \
		    "$NUDGED_RSS_MB" "$KANNEL_RSS_MB" "$rss_ratio"
		printf '%-9s %7s %-18s %8s %8s %6.2f\n' "" "" "anon RSS MB at end" \
		    "$NUDGED_ANON_MB" "$KANNEL_ANON_MB" "$anon_ratio"
		echo "          ($3)"
	} | tee -a "$SCRATCH/table"
	bench "$row.messages" "$2" messages >>"$SCRATCH/bench.lines"
	side_lines "$row" nudged "$NUDGED_SUBMIT_RATE" \
	    "$NUDGED_RECEIPT_RATE" "$NUDGED_CPU_US" "$NUDGED_RSS_MB" \
	    "$NUDGED_ANON_MB"
	[ "$KANNEL_RAN" = 1 ] || return 0
	side_lines "$row" kannel "$KANNEL_SUBMIT_RATE" \
	    "$KANNEL_RECEIPT_RATE" "$KANNEL_CPU_US" "$KANNEL_RSS_MB" \
	    "$KANNEL_ANON_MB"
	{
		bench "$row.ratio_submits" "$(printf '%.2f' "$submit_ratio")" \
		    ratio
		bench "$row.ratio_receipts" \
		    "$(printf '%.2f' "$receipt_ratio")" ratio
	} >>"$SCRATCH/bench.lines"
}

# side_lines ROW SIDE SUBMIT RECEIPT CPU RSS ANON: one side's BENCH lines.
side_lines() {
	{
		bench "$1.$2.submits_per_second" "$3" messages/s
		bench "$1.$2.receipts_per_second" "$4" messages/s
		bench "$1.$2.cpu_per_message" "$5" us
		bench "$1.$2.peak_rss" "$6" MB
		bench "$1.$2.anon_rss" "$7" MB
	} >>"$SCRATCH/bench.lines"
}

# ---- the cases -------------------------------------------------------------

if [ ! -x "$BEARERBOX" ] || [ ! -x "$SMSBOX" ]; then
	fail "Kannel is not installed ($BEARERBOX, $SMSBOX): apt-get install kannel"
fi
[ -x "$BUILD/smsc-sim" ] || fail "$BUILD/smsc-sim is missing (make $BUILD/smsc-sim)"
mkdir -p "$BUILD/bench"
: >"$SCRATCH/bench.lines"
: >"$SCRATCH/table"

echo "kannel: HTTP -> SMPP into smsc-sim (acks at once, one receipt each);"
echo "  N=$N (32-connection rows N=$N32); nudged durable, window 64;"
echo "  Kannel in memory (no store file), max-pending-submits $KANNEL_MAX_PENDING,"
echo "  no dlr-url (dlr-mask=3: receipts requested and matched, no callback)"
echo "  $(load_note)"
echo

KANNEL_RAN=1
echo "== single8: one message per request, 8 connections"
nudged_case single8 8 "$N" 0
kannel_case single8 8 "$N"
report single8 "$N" "sendsms GET vs POST /v1/messages, 8 connections"
echo "== single32: one message per request, 32 connections"
nudged_case single32 32 "$N32" 0
kannel_case single32 32 "$N32"
report single32 "$N32" "sendsms GET vs POST /v1/messages, 32 connections"
bulk=$(((N / BATCH) * BATCH))
echo "== bulk: batches of $BATCH vs mtbatch"
nudged_case bulk 8 "$bulk" "$BATCH"
if [ -x "$MTBATCH" ]; then
	mtbatch_case bulk "$bulk"
	report bulk "$bulk" "nudged {\"messages\":[$BATCH]} on 8 connections vs mtbatch into bearerbox (no smsbox; Kannel cpu is bearerbox only)"
else
	echo "  mtbatch is not installed ($MTBATCH; Debian kannel-extras): no Kannel figure"
	KANNEL_SUBMIT_RATE=0 KANNEL_RECEIPT_RATE=0 KANNEL_CPU_US=0
	KANNEL_RSS_MB=0 KANNEL_ANON_MB=0 KANNEL_RAN=0
	report bulk "$bulk" "mtbatch not installed: Kannel side empty"
fi

echo
printf '%-9s %7s %-18s %8s %8s %6s\n' case messages figure nudged kannel ratio
cat "$SCRATCH/table"
cat "$SCRATCH/bench.lines"
load_note
