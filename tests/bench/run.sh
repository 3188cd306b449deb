#!/bin/sh
# run.sh NAME... - runs each benchmark $BUILD/bench/bench_NAME named on the
# command line, one after the other, and passes its output through. Lines
# starting "BENCH " are the machine-readable results. Exit status 1 if a
# benchmark is missing or fails.
set -u
BUILD=${BUILD:-build}
status=0
for name in "$@"; do
	bin="$BUILD/bench/bench_$name"
	if [ ! -x "$bin" ]; then
		echo "bench: $bin is missing (make $bin)" >&2
		status=1
		continue
	fi
	echo "== bench_$name"
	if ! "$bin"; then
		echo "bench: bench_$name failed" >&2
		status=1
	fi
done
exit $status
