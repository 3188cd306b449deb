# lib.sh - shared helpers for the integration scripts: a scratch directory,
# free loopback ports, starting nudged and stopping everything by PID.
# Sourced by tests/integration/test_*.sh; every wait is bounded.
set -eu
BUILD=${BUILD:-build}
NUDGED=${NUDGED:-$BUILD/nudged}
SCRATCH=$(mktemp -d /tmp/nudge-it-XXXXXX)
PIDS=""

# ours PID: true while PID is still a child of this shell (a PID that
# exited may have been reused by a stranger: never signal that one).
ours() {
	[ -r "/proc/$1/stat" ] || return 1
	[ "$(sed 's/^.*) . \([0-9]*\) .*/\1/' "/proc/$1/stat" 2>/dev/null)" = "$$" ]
}

cleanup() {
	for pid in $PIDS; do
		ours "$pid" && kill -TERM "$pid" 2>/dev/null || true
	done
	sleep 0.2
	for pid in $PIDS; do
		ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
	done
	if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
		echo "scratch kept: $SCRATCH"
	else
		rm -rf "$SCRATCH"
	fi
}
trap cleanup EXIT INT TERM

fail() {
	echo "FAIL: $*" >&2
	for log in "$SCRATCH"/*.log; do
		[ -f "$log" ] || continue
		echo "--- $log (last 20 lines)" >&2
		tail -n 20 "$log" >&2
	done
	exit 1
}

pass() {
	echo "ok: $*"
}

# A loopback port nobody listens on now.
# Why below the kernel's ephemeral range (32768-60999): a port the kernel
# handed out here could be taken again, before the test binds it, as the
# local port of some outgoing connection (a soak or bench running beside).
free_port() {
	perl -MIO::Socket::INET -e '
	    for (1 .. 200) {
		my $port = 10000 + int(rand(22000));
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
		    LocalPort => $port, Listen => 1, ReuseAddr => 1) or next;
		print "$port\n";
		exit 0;
	    }
	    die "no free port\n";'
}

# wait_for SECONDS COMMAND...: retries COMMAND every 50 ms until it succeeds.
wait_for() {
	limit=$1
	shift
	tries=$((limit * 20))
	while [ "$tries" -gt 0 ]; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	return 1
}

# write_config FILE: a loopback config with fresh ports and a scratch store.
write_config() {
	HTTP_PORT=$(free_port)
	SMPP_PORT=$(free_port)
	TOKEN=test-token
	cat >"$1" <<CONF
[nudged]
data_dir = $SCRATCH/var
log_level = debug
; Tests about other things must not depend on the hour they run at; the
; compliance tests turn quiet hours back on.
quiet_hours = no
shutdown_timeout = 3s
test_clock = yes
[http]
listen = 127.0.0.1:$HTTP_PORT
api_token = $TOKEN
[smpp]
listen = 127.0.0.1:$SMPP_PORT
CONF
}

# start_nudged CONFIG: runs nudged in the foreground, waits for /healthz.
start_nudged() {
	"$NUDGED" -f -c "$1" >>"$SCRATCH/nudged.log" 2>&1 &
	NUDGED_PID=$!
	PIDS="$PIDS $NUDGED_PID"
	wait_for 10 curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" ||
	    fail "nudged did not answer /healthz within 10 s"
}

# running PID: true while PID lives (an exited child not yet reaped is a
# zombie, which kill -0 still finds).
running() {
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$state" != Z ]
}

# stop_pid PID SECONDS: SIGTERM, then wait up to SECONDS; sets STOP_STATUS
# to the exit status or "timeout". Not in $(...): a subshell cannot reap.
stop_pid() {
	kill -TERM "$1"
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

# api_post PATH JSON: POST to nudged's API; body in $SCRATCH/reply.json,
# status in HTTP_CODE.
api_post() {
	HTTP_CODE=$(curl -s -o "$SCRATCH/reply.json" -w '%{http_code}' \
	    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
	    --data-binary "$2" "http://127.0.0.1:$HTTP_PORT$1")
}

# api_get PATH: GET from nudged's API, same outputs as api_post.
api_get() {
	HTTP_CODE=$(curl -s -o "$SCRATCH/reply.json" -w '%{http_code}' \
	    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT$1")
}

# reply PATH: a value of the last reply (see jsonq.pl).
reply() {
	perl tests/integration/jsonq.pl "$1" "$SCRATCH/reply.json"
}

# add_link CONFIG NAME PORT [LINE...]: appends a [link NAME] to CONFIG.
add_link() {
	config=$1
	name=$2
	port=$3
	shift 3
	{
		echo "[link $name]"
		echo "host = 127.0.0.1"
		echo "port = $port"
		echo "system_id = nudge"
		echo "password = secret"
		echo "reconnect_min = 100ms"
		echo "reconnect_max = 1s"
		for line in "$@"; do
			echo "$line"
		done
	} >>"$config"
}

# start_netsmpp PORT [OPTION...]: the Net::SMPP upstream SMSC, recording to
# $SCRATCH/netsmpp.jsonl and taking commands from $SCRATCH/netsmpp.control.
start_netsmpp() {
	port=$1
	shift
	: >"$SCRATCH/netsmpp.control"
	perl tests/integration/peers/netsmpp_smsc.pl --port "$port" \
	    --record "$SCRATCH/netsmpp.jsonl" --control "$SCRATCH/netsmpp.control" \
	    --log "$SCRATCH/netsmpp.log" --quit-after 300 "$@" \
	    >"$SCRATCH/netsmpp.out" 2>&1 &
	NETSMPP_PID=$!
	PIDS="$PIDS $NETSMPP_PID"
	wait_for 10 grep -q READY "$SCRATCH/netsmpp.out" ||
	    fail "the Net::SMPP SMSC did not start"
}

# link_bound NAME: true once nudged reports the link BOUND in /metrics.
link_bound() {
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" |
	    grep -q "^nudge_link_state{link=\"$1\"} 3$"
}

# count_lines PATTERN FILE: how many lines of FILE match (0 if none).
count_lines() {
	grep -c "$1" "$2" 2>/dev/null || true
}

# message_state ID: the state GET /v1/messages/ID reports.
message_state() {
	api_get "/v1/messages/$1"
	reply .state
}

# wait_state ID STATE SECONDS: waits for a message to reach STATE.
wait_state() {
	tries=$(($3 * 10))
	while [ "$tries" -gt 0 ]; do
		[ "$(message_state "$1")" = "$2" ] && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

# hex TEXT: the bytes of TEXT in lowercase hex.
hex() {
	printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}

# start_sim PORT [OPTION...]: tools/smsc-sim as the upstream SMSC, recording
# accepted submits to $SCRATCH/sink.rec; stdin is a FIFO for commands.
start_sim() {
	port=$1
	shift
	rm -f "$SCRATCH/sim.in"
	mkfifo "$SCRATCH/sim.in"
	"$BUILD/smsc-sim" -p "$port" -u nudge -P secret \
	    --record "$SCRATCH/sink.rec" --quit-after 600 "$@" \
	    <"$SCRATCH/sim.in" >"$SCRATCH/sim.out" 2>"$SCRATCH/sim.log" &
	SIM_PID=$!
	PIDS="$PIDS $SIM_PID"
	# Hold the FIFO open so the simulator's stdin never sees EOF.
	exec 7>"$SCRATCH/sim.in"
	wait_for 10 grep -q READY "$SCRATCH/sim.out" || fail "smsc-sim did not start"
}

# sim_command LINE: a command on the simulator's stdin (drop, stall N, ...).
sim_command() {
	echo "$1" >&7
}

# restart_nudged CONFIG: kill -9 is done by the caller; start it again.
restart_nudged() {
	start_nudged "$1"
}

# start_capture PORT [OPTION...]: an HTTP server recording requests as JSON
# lines in $SCRATCH/capture.jsonl.
start_capture() {
	port=$1
	shift
	perl tests/integration/capture_http.pl --port "$port" \
	    --out "$SCRATCH/capture.jsonl" "$@" >"$SCRATCH/capture.out" 2>&1 &
	CAPTURE_PID=$!
	PIDS="$PIDS $CAPTURE_PID"
	wait_for 10 grep -q READY "$SCRATCH/capture.out" ||
	    fail "capture server did not start: $(cat "$SCRATCH/capture.out")"
}

# subscribe NUMBER: records SMS consent (as a signed-up form would), so
# marketing flows may text the number.
subscribe() {
	case "$1" in +*) subscribe_number=$1 ;; *) subscribe_number=+$1 ;; esac
	code=$(curl -s -o "$SCRATCH/consent.json" -w '%{http_code}' -X PUT \
	    -H "Authorization: Bearer $TOKEN" \
	    --data-binary '{"state":"subscribed","source":"form","wording":"test-v1","method":"direct"}' \
	    "http://127.0.0.1:$HTTP_PORT/v1/profiles/$subscribe_number/consent")
	case "$code" in 2??) ;; *) fail "consent for $1: HTTP $code $(cat "$SCRATCH/consent.json")" ;; esac
}

# advance SECONDS: moves nudged's test clock (test_clock = yes) on.
advance() {
	curl -fsS -H "Authorization: Bearer $TOKEN" -d "{\"advance_seconds\": $1}" \
	    "http://127.0.0.1:$HTTP_PORT/v1/test/clock" >/dev/null || fail "test clock"
}

# texts [DESTINATION]: the texts smsc-sim recorded (start_sim), one a line.
texts() {
	perl tests/integration/sink_texts.pl "$SCRATCH/sink.rec" ${1:+"$1"} 2>/dev/null
}

# count_texts DESTINATION: how many texts reached DESTINATION.
count_texts() {
	texts "$1" | wc -l
}
