#!/bin/sh
# run.sh - runs the unit test binaries named on the command line, then every
# integration script in tests/integration/ (each bounded in time), and prints
# one closing line "tests: N passed, N failed". Exit status 1 if any failed.
# INTEGRATION=0 skips the integration scripts; ONLY=pattern filters them.
set -u
BUILD=${BUILD:-build}
export BUILD
passed=0
failed=0
failures=""
logdir="$BUILD/test-logs"
mkdir -p "$logdir"

run_one() {
	name=$1
	shift
	log="$logdir/$name.log"
	mkdir -p "$(dirname "$log")"
	start=$(date +%s)
	if timeout -k 10 "${TEST_TIMEOUT:-300}" "$@" >"$log" 2>&1; then
		passed=$((passed + 1))
		printf '  ok      %-40s %ss\n' "$name" "$(($(date +%s) - start))"
	else
		rc=$?
		failed=$((failed + 1))
		failures="$failures $name"
		printf '  FAIL    %-40s (exit %s, log %s)\n' "$name" "$rc" "$log"
		tail -n 30 "$log" | sed 's/^/          /'
	fi
}

for t in "$@"; do
	run_one "unit/$t" "$BUILD/tests/test_$t"
done

if [ "${INTEGRATION:-1}" = 1 ]; then
	for script in tests/integration/test_*.sh; do
		[ -e "$script" ] || continue
		case "$script" in *"${ONLY:-}"*) ;; *) continue ;; esac
		run_one "integration/$(basename "$script" .sh)" sh "$script"
	done
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
