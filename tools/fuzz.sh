#!/bin/sh
# fuzz.sh BUILD SECONDS TARGET... - runs each libFuzzer target for SECONDS on
# a scratch copy of its seed corpus (tests/fuzz/corpus/TARGET) with its
# dictionary; any crash fails the run and leaves the reproducer in BUILD/fuzz.
set -eu
build=$1
seconds=$2
shift 2
status=0
for target in "$@"; do
	corpus="$build/fuzz/corpus-$target"
	mkdir -p "$corpus"
	[ -d "tests/fuzz/corpus/$target" ] && cp -n tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
	dict=""
	[ -f "tests/fuzz/$target.dict" ] && dict="-dict=tests/fuzz/$target.dict"
	echo "fuzz: $target for ${seconds}s"
	# shellcheck disable=SC2086
	if ! "$build/fuzz/fuzz_$target" $dict -max_total_time="$seconds" \
	    -artifact_prefix="$build/fuzz/$target-" -print_final_stats=1 \
	    "$corpus" >"$build/fuzz/$target.log" 2>&1; then
		echo "fuzz: $target FOUND A CRASH, see $build/fuzz/$target.log"
		# The report's head (where it crashed), then its tail (the
		# input that did it).
		sed -n '/ERROR: \|runtime error: /,$p' "$build/fuzz/$target.log" |
		    head -n 30
		echo "..."
		tail -n 12 "$build/fuzz/$target.log"
		status=1
	else
		grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$build/fuzz/$target.log" | tail -n 2
	fi
done
exit $status
