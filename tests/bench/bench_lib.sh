# bench_lib.sh - helpers shared by the scripted benchmarks (bench_*.sh):
# the integration helpers (scratch directory, free ports, start and stop by
# PID), a benchmark config for nudged, /metrics and /proc readings, and
# BENCH lines. Sourced from the repository root; every wait is bounded.
. tests/integration/lib.sh

DRIVER=${HTTP_DRIVER:-$BUILD/bench/http_driver}
# shellcheck disable=SC2034 # used by the bench_*.sh that source this
TICKS_PER_SECOND=$(getconf CLK_TCK)

[ -x "$DRIVER" ] || fail "$DRIVER is missing (make $DRIVER)"
[ -x "$NUDGED" ] || fail "$NUDGED is missing (make $NUDGED)"

# bench_config FILE SYNC [LINE...]: nudged with the shipped rules, quiet
# logs, a fresh store whose map is big enough not to grow mid-run, and no
# upstream link. Extra lines go into [nudged].
bench_config() {
	file=$1
	sync=$2
	shift 2
	HTTP_PORT=$(free_port)
	SMPP_PORT=$(free_port)
	TOKEN=bench-token
	DATA_DIR="$SCRATCH/var.$(date +%s%N)"
	{
		echo "[nudged]"
		echo "data_dir = $DATA_DIR"
		echo "log_level = warn"
		echo "shutdown_timeout = 30s"
		echo "rules_dir = rules"
		echo "organization_name = Bench Shop"
		echo "organization_url = https://shop.example"
		for line in "$@"; do
			echo "$line"
		done
		echo "[store]"
		echo "sync = $sync"
		echo "map_size = ${BENCH_MAP_SIZE:-4G}"
		echo "[http]"
		echo "listen = 127.0.0.1:$HTTP_PORT"
		echo "api_token = $TOKEN"
		echo "[smpp]"
		echo "listen = 127.0.0.1:$SMPP_PORT"
	} >"$file"
}

# stop_nudged: SIGTERM and wait (the last commit can take a while). The
# PID leaves PIDS: pids wrap in minutes here, and the exit cleanup must not
# signal whoever gets this number next.
stop_nudged() {
	stop_pid "$NUDGED_PID" 60
	[ "$STOP_STATUS" = 0 ] || fail "nudged did not stop cleanly ($STOP_STATUS)"
	PIDS=$(echo " $PIDS " | sed "s/ $NUDGED_PID / /g")
	rm -rf "$DATA_DIR"
}

# metric NAME: the value of an unlabelled metric in nudged's /metrics.
metric() {
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" |
	    awk -v name="$1" '$1 == name { print $2; found = 1 }
	        END { if (!found) print 0 }'
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# status_kb PID FIELD: a kB field of /proc/PID/status (VmRSS, RssAnon...).
status_kb() {
	awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status"
}

# now: monotonic-enough seconds with nanoseconds, for durations.
now() {
	date +%s.%N
}

# calc EXPRESSION: floating point arithmetic (awk), printed with %s.
calc() {
	awk "BEGIN { print ($1) }"
}

# bench NAME VALUE UNIT: one machine-readable result line.
bench() {
	echo "BENCH name=$1 value=$2 unit=$3"
}

# load_note: what else ran on the machine (figures are shared-CPU ones).
load_note() {
	echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
