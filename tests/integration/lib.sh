# lib.sh - shared helpers for the integration scripts: a scratch directory,
# free loopback ports, starting nudged and stopping everything by PID.
# Sourced by tests/integration/test_*.sh; every wait is bounded.
set -eu
BUILD=${BUILD:-build}
NUDGED=${NUDGED:-$BUILD/nudged}
SCRATCH=$(mktemp -d /tmp/nudge-it-XXXXXX)
PIDS=""

cleanup() {
	for pid in $PIDS; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	sleep 0.2
	for pid in $PIDS; do
		kill -KILL "$pid" 2>/dev/null || true
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
free_port() {
	perl -MIO::Socket::INET -e \
	    'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die; print $s->sockport, "\n";'
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
