#!/bin/sh
# test_daemon.sh - the real nudged: config check names every bad line,
# /healthz and /metrics answer, /v1 needs the token, errors are JSON, a second
# daemon cannot share the data directory, SIGTERM stops it cleanly.
. tests/integration/lib.sh

# nudged -n: a config with two errors names both lines, exits non-zero.
cat >"$SCRATCH/bad.conf" <<'CONF'
[nudged]
log_level = shouty
[http]
listen = 127.0.0.1:8470
timeout = forever
CONF
if "$NUDGED" -n -c "$SCRATCH/bad.conf" >"$SCRATCH/check.out" 2>&1; then
	fail "nudged -n accepted a bad config"
fi
grep -q "bad.conf:2: nudged.log_level" "$SCRATCH/check.out" || fail "line 2 not named: $(cat "$SCRATCH/check.out")"
grep -q "bad.conf:5: http.timeout" "$SCRATCH/check.out" || fail "line 5 not named: $(cat "$SCRATCH/check.out")"
pass "nudged -n names both bad lines"
"$NUDGED" -n -c conf/nudged.conf >/dev/null || fail "shipped config rejected"
pass "shipped config passes nudged -n"

write_config "$SCRATCH/nudged.conf"
start_nudged "$SCRATCH/nudged.conf"
base="http://127.0.0.1:$HTTP_PORT"

body=$(curl -fsS "$base/healthz")
echo "$body" | grep -q '"status":"ok"' || fail "healthz: $body"
echo "$body" | grep -q '"store":{"ok":true' || fail "healthz store: $body"
pass "/healthz: $body"

metrics=$(curl -fsS "$base/metrics")
echo "$metrics" | grep -q '^# TYPE nudge_uptime_seconds gauge$' || fail "metrics: no uptime gauge"
echo "$metrics" | grep -q '^nudge_store_map_size_bytes [0-9]' || fail "metrics: no store gauge"
echo "$metrics" | grep -q '^nudge_http_requests_total [0-9]' || fail "metrics: no request counter"
pass "/metrics in Prometheus text format"

code=$(curl -s -o "$SCRATCH/unauth.json" -w '%{http_code}' "$base/v1/test/clock")
[ "$code" = 401 ] || fail "no token: expected 401, got $code"
grep -q '"error":"unauthorized"' "$SCRATCH/unauth.json" || fail "401 body not JSON: $(cat "$SCRATCH/unauth.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "$base/v1/test/clock")
[ "$code" = 401 ] || fail "wrong token: expected 401, got $code"
pass "/v1 routes refuse a missing or wrong token with a JSON 401"

code=$(curl -s -o "$SCRATCH/bad.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -d '{"advance_seconds": ' "$base/v1/test/clock")
[ "$code" = 400 ] || fail "bad JSON: expected 400, got $code"
grep -q '"error":"invalid_json"' "$SCRATCH/bad.json" || fail "bad JSON body: $(cat "$SCRATCH/bad.json")"
code=$(curl -s -o "$SCRATCH/field.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -d '{"advance_seconds": "soon"}' "$base/v1/test/clock")
[ "$code" = 400 ] || fail "bad field: expected 400, got $code"
grep -q 'advance_seconds' "$SCRATCH/field.json" || fail "field not named: $(cat "$SCRATCH/field.json")"
before=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$base/v1/test/clock" | sed 's/.*"offset_us":\([0-9]*\).*/\1/')
after=$(curl -fsS -H "Authorization: Bearer $TOKEN" -d '{"advance_seconds": 3600}' "$base/v1/test/clock" | sed 's/.*"offset_us":\([0-9]*\).*/\1/')
[ $((after - before)) = 3600000000 ] || fail "test clock moved by $((after - before)) us"
code=$(curl -s -o "$SCRATCH/404.json" -w '%{http_code}' "$base/nowhere")
[ "$code" = 404 ] || fail "unknown path: expected 404, got $code"
grep -q '"error":"not_found"' "$SCRATCH/404.json" || fail "404 body: $(cat "$SCRATCH/404.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$base/healthz")
[ "$code" = 405 ] || fail "wrong method: expected 405, got $code"
pass "bad bodies and paths get 4xx JSON errors; the test clock moves"

# A second daemon on the same data directory must refuse to start.
HTTP_PORT_FIRST=$HTTP_PORT
sed "s/:$HTTP_PORT_FIRST/:$(free_port)/; s/:$SMPP_PORT/:$(free_port)/" "$SCRATCH/nudged.conf" >"$SCRATCH/second.conf"
if timeout 10 "$NUDGED" -f -c "$SCRATCH/second.conf" >"$SCRATCH/second.log" 2>&1; then
	fail "a second nudged started on the same data directory"
fi
grep -q "data-dir-in-use" "$SCRATCH/second.log" || fail "second daemon: $(cat "$SCRATCH/second.log")"
pass "a second nudged refuses the locked data directory"

# SIGHUP with a broken file keeps the running config.
cp "$SCRATCH/nudged.conf" "$SCRATCH/good.conf"
printf '[nudged]\nlog_level = nonsense\n' >>"$SCRATCH/nudged.conf"
kill -HUP "$NUDGED_PID"
wait_for 5 grep -q "reload-failed" "$SCRATCH/nudged.log" || fail "no reload-failed after a bad SIGHUP"
curl -fsS "$base/healthz" >/dev/null || fail "daemon died on a bad reload"
cp "$SCRATCH/good.conf" "$SCRATCH/nudged.conf"
kill -HUP "$NUDGED_PID"
wait_for 5 grep -q "daemon reloaded" "$SCRATCH/nudged.log" || fail "no reload after a good SIGHUP"
pass "SIGHUP reloads; a bad file keeps the previous config"

[ -f "$SCRATCH/var/nudged.pid" ] || fail "no pid file"
[ "$(cat "$SCRATCH/var/nudged.pid")" = "$NUDGED_PID" ] || fail "pid file holds the wrong pid"
stop_pid "$NUDGED_PID" 5
[ "$STOP_STATUS" = 0 ] || fail "SIGTERM: exit status $STOP_STATUS"
[ ! -f "$SCRATCH/var/nudged.pid" ] || fail "pid file left behind"
grep -q "daemon stopped status=0" "$SCRATCH/nudged.log" || fail "no clean stop logged"
pass "SIGTERM stops nudged with status 0 and removes the pid file"

# The configuration reference is generated from the key table; keep it current.
"$NUDGED" -K >"$SCRATCH/reference.md"
cmp -s "$SCRATCH/reference.md" docs/configuration.md ||
    fail "docs/configuration.md is stale: run '$NUDGED -K > docs/configuration.md'"
pass "docs/configuration.md matches nudged -K"
