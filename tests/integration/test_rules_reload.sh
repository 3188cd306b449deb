#!/bin/sh
# test_rules_reload.sh - nudged watches its rules folder: a changed file is
# reloaded without a restart; a file broken by an edit keeps its last good
# version running, and the failure shows in the log (file:line), /healthz
# and /metrics; a journey in flight finishes on the version it started.
. tests/integration/lib.sh

flow_file() {
	cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<flow id="reload-demo" name="Reload demo" status="live">
  <trigger><metric name="Joined List"/></trigger>
  <steps>
    <delay id="wait" duration="1h"/>
    <sms id="hello"><text lang="en">$1</text></sms>
  </steps>
</flow>
XML
}

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
mkdir -p "$SCRATCH/rules"
flow_file "Version one says hi" >"$SCRATCH/rules/demo.xml"
write_config "$SCRATCH/nudged.conf"
sed -i "s|^\[nudged\]\$|[nudged]\nrules_dir = $SCRATCH/rules|" "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"
grep -q "flow loaded file=$SCRATCH/rules/demo.xml flow=reload-demo" "$SCRATCH/nudged.log" || fail "rule not loaded"
subscribe +393401119001
subscribe +393401119002
subscribe +393401119003

# A journey starts on version one, then the file changes under it.
api_post /v1/events '{"metric":"Joined List","profile":{"phone_number":"+393401119001"}}'
[ "$HTTP_CODE" = 202 ] || fail "event: $HTTP_CODE"
flow_file "Version two says hello" >"$SCRATCH/rules/demo.tmp" && mv "$SCRATCH/rules/demo.tmp" "$SCRATCH/rules/demo.xml"
wait_for 5 sh -c "[ \$(grep -c 'flow loaded file=$SCRATCH/rules/demo.xml' $SCRATCH/nudged.log) -ge 2 ]" ||
    fail "the changed file was not reloaded"
pass "a changed rule file was reloaded without a restart"

api_post /v1/events '{"metric":"Joined List","profile":{"phone_number":"+393401119002"}}'
[ "$HTTP_CODE" = 202 ] || fail "event: $HTTP_CODE"

# Now break the file: the last good version (two) must keep running.
printf '<flow id="reload-demo" status="live">\n  <trigger><metric name="Joined List"/></trigger>\n  <steps>\n    <delay id="x" duration="forever"/>\n  </steps>\n</flow>\n' \
    >"$SCRATCH/rules/demo.xml"
wait_for 5 grep -q "flow rule-error file=$SCRATCH/rules/demo.xml line=4" "$SCRATCH/nudged.log" ||
    fail "the broken file's error was not logged with its line: $(grep rule- "$SCRATCH/nudged.log" | tail -3)"
grep -q "flow load-failed file=$SCRATCH/rules/demo.xml errors=[0-9]* kept=previous" "$SCRATCH/nudged.log" ||
    fail "no load-failed line"
curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >"$SCRATCH/health.json"
grep -q "\"file\":\"$SCRATCH/rules/demo.xml\",\"running_previous\":true" "$SCRATCH/health.json" ||
    fail "healthz does not show the failing file: $(cat "$SCRATCH/health.json")"
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep -q '^nudge_rule_files_failing 1$' ||
    fail "metrics do not show the failing file"
api_post /v1/events '{"metric":"Joined List","profile":{"phone_number":"+393401119003"}}'
reply .journeys | grep -q reload-demo || fail "the last good version stopped starting journeys"
pass "a broken edit: error with file:line in the log, shown in /healthz and /metrics; the last good version runs"

advance 3700
wait_for 10 sh -c "[ \$(perl tests/integration/sink_texts.pl $SCRATCH/sink.rec | wc -l) -ge 3 ]" ||
    fail "the journeys did not finish: $(perl tests/integration/sink_texts.pl "$SCRATCH/sink.rec")"
perl tests/integration/sink_texts.pl "$SCRATCH/sink.rec" >"$SCRATCH/texts"
grep -q "^393401119001	Version one says hi$" "$SCRATCH/texts" || fail "journey 1 did not finish on version one: $(cat "$SCRATCH/texts")"
grep -q "^393401119002	Version two says hello$" "$SCRATCH/texts" || fail "journey 2: $(cat "$SCRATCH/texts")"
grep -q "^393401119003	Version two says hello$" "$SCRATCH/texts" || fail "journey 3: $(cat "$SCRATCH/texts")"
pass "each journey finished on the version it started with"
