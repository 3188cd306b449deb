#!/bin/sh
# run.sh NAME... - runs each benchmark named on the command line, one after
# the other, and passes its output through: the binary $BUILD/bench/bench_NAME
# if there is one, else the script tests/bench/bench_NAME.sh (those drive a
# real nudged over HTTP with $BUILD/bench/http_driver). Lines starting
# "BENCH " are the machine-readable results; they are collected in
# $BUILD/bench/results.txt (rewritten by each run: a header saying when,
# where, at which commit and with which sizes, then per benchmark a
# "# bench NAME" line, its BENCH lines and "# status NAME ok|failed N|
# missing"). At the end tests/bench/report.pl prints one table of every
# figure (rows of benchmarks not run or failed say so) and writes it to
# $BUILD/bench/results.json. Exit status 1 if a benchmark is missing or
# fails, 2 without a name.
set -u
BUILD=${BUILD:-build}
export BUILD
status=0
results="$BUILD/bench/results.txt"
json="$BUILD/bench/results.json"

if [ $# = 0 ]; then
	echo "usage: $0 NAME... (smpp_codec events kannel journeys relay)" >&2
	exit 2
fi
mkdir -p "$BUILD/bench"
# The header; the sizes the scripts read are empty when their default applies.
{
	echo "# nudge benchmarks $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	    "commit $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "# $(nproc) cores, load average at start" \
	    "$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# meta bench_n=${BENCH_N:-} bench_n32=${BENCH_N32:-}" \
	    "bench_journeys=${BENCH_JOURNEYS:-}" \
	    "bench_relay_rate=${BENCH_RELAY_RATE:-}"
} >"$results"
output=$(mktemp /tmp/nudge-bench-XXXXXX)
trap 'rm -f "$output" "$output.status"' EXIT
trap 'exit 130' INT TERM

for name in "$@"; do
	bin="$BUILD/bench/bench_$name"
	script="tests/bench/bench_$name.sh"
	echo "# bench $name" >>"$results"
	if [ -x "$bin" ]; then
		runner=$bin
	elif [ -f "$script" ]; then
		runner="sh $script"
	else
		echo "bench: neither $bin nor $script exists (make $bin)" >&2
		echo "# status $name missing" >>"$results"
		status=1
		continue
	fi
	echo "== bench_$name"
	# The status of the benchmark, not of tee, decides.
	echo 1 >"$output.status"
	{
		$runner 2>&1
		echo $? >"$output.status"
	} | tee "$output"
	grep '^BENCH ' "$output" >>"$results"
	bench_status=$(cat "$output.status")
	if [ "$bench_status" != 0 ]; then
		echo "bench: bench_$name failed" >&2
		echo "# status $name failed $bench_status" >>"$results"
		status=1
	else
		echo "# status $name ok" >>"$results"
	fi
done
echo "# meta load_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ',')" \
    >>"$results"
echo
perl tests/bench/report.pl --json "$json" "$results" || status=1
echo "== figures in $results, the table in $json"
exit $status
