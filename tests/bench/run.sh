#!/bin/sh
# run.sh NAME... - runs each benchmark named on the command line, one after
# the other, and passes its output through: the binary $BUILD/bench/bench_NAME
# if there is one, else the script tests/bench/bench_NAME.sh (those drive a
# real nudged over HTTP with $BUILD/bench/http_driver). Lines starting
# "BENCH " are the machine-readable results; they are also collected in
# $BUILD/bench/results.txt (rewritten by each run, after a header saying
# when, where and at which commit). Exit status 1 if a benchmark is missing
# or fails.
set -u
BUILD=${BUILD:-build}
export BUILD
status=0
results="$BUILD/bench/results.txt"
mkdir -p "$BUILD/bench"
{
	echo "# nudge benchmarks $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	    "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "# $(nproc) cores, load average at start" \
	    "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$results"
output=$(mktemp /tmp/nudge-bench-XXXXXX)
trap 'rm -f "$output" "$output.status"' EXIT
trap 'exit 130' INT TERM

for name in "$@"; do
	bin="$BUILD/bench/bench_$name"
	script="tests/bench/bench_$name.sh"
	if [ -x "$bin" ]; then
		runner=$bin
	elif [ -f "$script" ]; then
		runner="sh $script"
	else
		echo "bench: neither $bin nor $script exists (make $bin)" >&2
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
	if [ "$(cat "$output.status")" != 0 ]; then
		echo "bench: bench_$name failed" >&2
		status=1
	fi
	grep '^BENCH ' "$output" >>"$results"
done
echo "== results in $results"
exit $status
