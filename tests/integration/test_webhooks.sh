#!/bin/sh
# test_webhooks.sh - the webhook step of a flow through the real daemon: the
# journey context (person, event, journey, flow, step) POSTed once to a
# capture server, retried after a 503, delivered after kill -9 both between
# attempts and with the POST in flight, given up after six failures, and
# over https:// with a certificate checked against the URL's address (a
# wrong name and an untrusted issuer are refused). Time moves by the test
# clock, never by sleeping through the back-off.
. tests/integration/lib.sh

# event JSON: posts it; JOURNEY is the log id (16 hex digits) of the
# journey it started, which webhook log lines carry.
event() {
	api_post /v1/events "$1"
	[ "$HTTP_CODE" = 202 ] || fail "event: HTTP $HTTP_CODE $(cat "$SCRATCH/reply.json")"
	journey_id=$(reply '.journeys[0].id') || fail "no journey: $(cat "$SCRATCH/reply.json")"
	JOURNEY=$(printf '%016x' "$journey_id")
}

# metric NAME: its value in /metrics (0 when absent).
metric() {
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" |
	    awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'
}

# hits PATH: requests the capture servers recorded for PATH.
hits() {
	grep -c "\"path\":\"$1\"" "$SCRATCH/capture.jsonl" 2>/dev/null || true
}

# hit PATH N: the Nth request recorded for PATH (1-based).
hit() {
	grep "\"path\":\"$1\"" "$SCRATCH/capture.jsonl" | sed -n "$2p"
}

# field JSON PATH: a value of a JSON text.
field() {
	printf '%s' "$1" | perl tests/integration/jsonq.pl "$2"
}

# webhook_rule ID METRIC URL: a live flow whose only step POSTs to URL.
webhook_rule() {
	cat >"$SCRATCH/rules/$1.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<flow id="$1" name="Hand over $1" status="live">
  <trigger>
    <metric name="$2"/>
  </trigger>
  <steps>
    <webhook id="to-email" url="$3"/>
  </steps>
</flow>
XML
}

# A server that accepts connections and never answers: a POST in flight.
start_silent() {
	perl -MIO::Socket::INET -e '
	    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
	        LocalPort => $ARGV[0], Listen => 16, ReuseAddr => 1) or die "$!\n";
	    $| = 1; print "READY\n"; alarm 120; my @held;
	    while (my $c = $s->accept) { push @held, $c }' "$1" \
	    >"$SCRATCH/silent.out" 2>&1 &
	SILENT_PID=$!
	PIDS="$PIDS $SILENT_PID"
	wait_for 10 grep -q READY "$SCRATCH/silent.out" || fail "silent server did not start"
}

# The https receiver: node's TLS stack, recording method, URL, raw headers
# and body of each request as a JSON line in FILE.
cat >"$SCRATCH/tls_capture.js" <<'JS'
const https = require('https');
const fs = require('fs');
const [port, cert, key, out] = process.argv.slice(2);
const server = https.createServer({ cert: fs.readFileSync(cert),
    key: fs.readFileSync(key) }, (request, response) => {
	let body = '';
	request.setEncoding('utf8');
	request.on('data', (chunk) => { body += chunk; });
	request.on('end', () => {
		fs.appendFileSync(out, JSON.stringify({ method: request.method,
		    url: request.url, raw_headers: request.rawHeaders,
		    headers: request.headers, body: body }) + '\n');
		response.writeHead(200, { 'Content-Type': 'text/plain' });
		response.end('ok');
	});
});
server.on('tlsClientError', (error) => {
	fs.appendFileSync(out + '.errors', error.message + '\n');
});
server.listen(Number(port), '127.0.0.1', () => console.log('READY ' + port));
setTimeout(() => process.exit(0), 300000);
JS

# start_tls NAME PORT CERT KEY: records to $SCRATCH/NAME.jsonl.
start_tls() {
	node "$SCRATCH/tls_capture.js" "$2" "$3" "$4" "$SCRATCH/$1.jsonl" \
	    >"$SCRATCH/$1.out" 2>&1 &
	PIDS="$PIDS $!"
	wait_for 20 grep -q READY "$SCRATCH/$1.out" ||
	    fail "https server $1 did not start: $(cat "$SCRATCH/$1.out")"
}

# A private CA, a server certificate for 127.0.0.1 from it, one from it for
# another name, and a self-signed one nudged has no reason to trust.
make_certificates() {
	dir=$SCRATCH/tls
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=nudge-test-ca \
	    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || fail "CA"
	for name in good wrong-name; do
		case $name in
		good) san=IP:127.0.0.1 ;;
		wrong-name) san=DNS:other.example ;;
		esac
		openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" \
		    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null || fail "CSR"
		printf 'subjectAltName=%s\n' "$san" >"$dir/$name.ext"
		openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" \
		    -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
		    -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null ||
		    fail "certificate $name"
	done
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	    -addext subjectAltName=IP:127.0.0.1 \
	    -keyout "$dir/untrusted.key" -out "$dir/untrusted.pem" 2>/dev/null ||
	    fail "self-signed certificate"
}

PLAIN_PORT=$(free_port)
CRASH_PORT=$(free_port)
SILENT_PORT=$(free_port)
CLOSED_PORT=$(free_port)
TLS_PORT=$(free_port)
NAME_PORT=$(free_port)
UNTRUSTED_PORT=$(free_port)
STOP_PORT=$(free_port)

make_certificates
# nudged takes its roots from here (OpenSSL's default verify paths).
SSL_CERT_FILE=$SCRATCH/tls/ca.pem
export SSL_CERT_FILE

# The https receivers hold their ports from the start.
start_tls tls "$TLS_PORT" "$SCRATCH/tls/good.pem" "$SCRATCH/tls/good.key"
start_tls name "$NAME_PORT" "$SCRATCH/tls/wrong-name.pem" "$SCRATCH/tls/wrong-name.key"
start_tls untrusted "$UNTRUSTED_PORT" "$SCRATCH/tls/untrusted.pem" "$SCRATCH/tls/untrusted.key"

mkdir -p "$SCRATCH/rules"
webhook_rule plain "Email Handover" "http://127.0.0.1:$PLAIN_PORT/hooks/email?list=vip"
webhook_rule crash "Crash Handover" "http://127.0.0.1:$CRASH_PORT/hooks/crash"
webhook_rule silent "Silent Handover" "http://127.0.0.1:$SILENT_PORT/hooks/silent"
webhook_rule closed "Closed Handover" "http://127.0.0.1:$CLOSED_PORT/hooks/closed"
webhook_rule tls "Tls Handover" "https://127.0.0.1:$TLS_PORT/hooks/tls"
webhook_rule tls-name "Tls Name Handover" "https://127.0.0.1:$NAME_PORT/hooks/name"
webhook_rule tls-untrusted "Tls Untrusted Handover" "https://127.0.0.1:$UNTRUSTED_PORT/hooks/untrusted"
webhook_rule stop "Stop Handover" "http://127.0.0.1:$STOP_PORT/hooks/stop"

start_capture "$PLAIN_PORT" --fail-first 1
PLAIN_CAPTURE=$CAPTURE_PID
write_config "$SCRATCH/nudged.conf"
sed -i "s|^\[nudged\]\$|[nudged]\norganization_name = Aria Shop\nrules_dir = $SCRATCH/rules|" "$SCRATCH/nudged.conf"
start_nudged "$SCRATCH/nudged.conf"
grep -q "flow loaded file=$SCRATCH/rules/plain.xml" "$SCRATCH/nudged.log" ||
    fail "the webhook rule did not load"

# 1. One event: the journey context arrives once, after one 503 and a retry.
event '{"metric":"Email Handover","profile":{"phone_number":"+393401110101","first_name":"Giulia"},"properties":{"ProductName":"Sneakers Aria","Price":89.5}}'
wait_for 10 sh -c "[ \$(grep -c '\"path\":\"/hooks/email\"' $SCRATCH/capture.jsonl) -ge 2 ]" ||
    fail "no retry after the 503: $(cat "$SCRATCH/capture.jsonl" 2>/dev/null)"
wait_for 5 grep -q "$JOURNEY webhook sent id=[0-9]* status=200 attempt=2" "$SCRATCH/nudged.log" ||
    fail "the second attempt was not logged as sent"
first=$(hit /hooks/email 1)
second=$(hit /hooks/email 2)
body=$(field "$second" .body)
[ "$(field "$second" .method)" = POST ] || fail "method: $second"
[ "$(field "$second" .query)" = list=vip ] || fail "query string lost: $second"
[ "$(field "$first" .body)" = "$body" ] || fail "the retry sent another body"
[ "$(field "$body" .person.phone_number)" = +393401110101 ] || fail "person: $body"
[ "$(field "$body" .person.first_name)" = Giulia ] || fail "first name: $body"
[ "$(field "$body" .event.ProductName)" = "Sneakers Aria" ] || fail "event: $body"
[ "$(field "$body" .event.Price)" = 89.5 ] || fail "event price: $body"
[ "$(field "$body" .journey.flow)" = plain ] || fail "journey.flow: $body"
[ "$(field "$body" .journey.id)" = "$journey_id" ] || fail "journey.id: $body"
[ "$(field "$body" .flow.id)" = plain ] || fail "flow.id: $body"
[ "$(field "$body" .step.id)" = to-email ] || fail "step.id: $body"
[ "$(field "$body" .organization.name)" = "Aria Shop" ] || fail "organization: $body"
# Nothing more: not later, not after the back-off has long passed.
sleep 1.2
advance 1000
sleep 0.5
[ "$(hits /hooks/email)" = 2 ] || fail "$(hits /hooks/email) POSTs for one webhook"
[ "$(metric nudge_webhooks_sent_total)" = 1 ] || fail "sent_total $(metric nudge_webhooks_sent_total)"
[ "$(metric nudge_webhooks_failed_total)" = 1 ] || fail "failed_total $(metric nudge_webhooks_failed_total)"
[ "$(metric nudge_webhooks_given_up_total)" = 0 ] || fail "given_up_total $(metric nudge_webhooks_given_up_total)"
# Personal data stays out of the log: no body, masked numbers.
grep -q "Sneakers Aria" "$SCRATCH/nudged.log" && fail "the body reached the log"
grep "webhook\|list=vip" "$SCRATCH/nudged.log" | grep -q "3401110101\|list=vip" &&
    fail "a webhook line shows a whole number or the query"
grep -q "flow webhook flow=plain step=to-email number=+3934" "$SCRATCH/nudged.log" ||
    fail "no flow line for the webhook step"
pass "journey context POSTed once after a 503 and one retry: $body"

# 2. kill -9 between a failed attempt and its retry: delivered after restart.
start_capture "$CRASH_PORT" --fail-first 1000
crash_capture=$CAPTURE_PID
event '{"metric":"Crash Handover","profile":{"phone_number":"+393401110102"},"properties":{"CartID":"c-77"}}'
wait_for 10 grep -q "$JOURNEY webhook retry id=[0-9]* status=503" "$SCRATCH/nudged.log" ||
    fail "the crash webhook did not fail first"
kill -KILL "$NUDGED_PID"
wait "$NUDGED_PID" 2>/dev/null || true
failed_before=$(hits /hooks/crash)
stop_pid "$crash_capture" 5
start_capture "$CRASH_PORT"
start_nudged "$SCRATCH/nudged.conf"
advance 700
wait_for 10 sh -c "[ \$(grep -c '\"path\":\"/hooks/crash\"' $SCRATCH/capture.jsonl) -gt $failed_before ]" ||
    fail "the webhook was lost in the crash"
wait_for 5 grep -q "$JOURNEY webhook sent id=[0-9]* status=200" "$SCRATCH/nudged.log" ||
    fail "delivery after the restart not logged"
advance 1000
sleep 0.5
[ "$(hits /hooks/crash)" = $((failed_before + 1)) ] ||
    fail "$(hits /hooks/crash) POSTs: expected $failed_before refused + 1"
[ "$(field "$(field "$(hit /hooks/crash "$((failed_before + 1))")" .body)" .event.CartID)" = c-77 ] ||
    fail "crash webhook body: $(hit /hooks/crash "$((failed_before + 1))")"
pass "kill -9 between attempts: delivered once after the restart ($failed_before refused before)"

# 3. kill -9 with the POST in flight: the safety-net row sends it again.
start_silent "$SILENT_PORT"
event '{"metric":"Silent Handover","profile":{"phone_number":"+393401110103"},"properties":{"OrderId":"o-9"}}'
wait_for 10 grep -q "webhook posting id=[0-9]* attempt=1 host=127.0.0.1 port=$SILENT_PORT" "$SCRATCH/nudged.log" ||
    fail "the silent webhook was not posted"
# The clock jumps past the net row while the POST is out: no second POST.
advance 60
wait_for 5 grep -q "$JOURNEY webhook still-in-flight" "$SCRATCH/nudged.log" ||
    fail "the net row did not fire during the POST"
[ "$(grep -c "webhook posting id=[0-9]* attempt=[0-9]* host=127.0.0.1 port=$SILENT_PORT" "$SCRATCH/nudged.log")" = 1 ] ||
    fail "a second POST went out while the first was in flight"
# The line is logged before the turn's commit holds the next net row; an
# answer from a later turn comes after that commit, so the kill cannot
# land between them (it did once: the old row fired again on restart).
curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || fail "/healthz"
kill -KILL "$NUDGED_PID"
wait "$NUDGED_PID" 2>/dev/null || true
stop_pid "$SILENT_PID" 5
start_capture "$SILENT_PORT"
start_nudged "$SCRATCH/nudged.conf"
sleep 0.5
[ "$(hits /hooks/silent)" = 0 ] || fail "re-sent before its net row was due"
advance 30
wait_for 10 sh -c "[ \$(grep -c '\"path\":\"/hooks/silent\"' $SCRATCH/capture.jsonl) -ge 1 ]" ||
    fail "the POST in flight at kill -9 was lost"
advance 1000
sleep 0.5
[ "$(hits /hooks/silent)" = 1 ] || fail "$(hits /hooks/silent) POSTs after the in-flight crash"
[ "$(field "$(field "$(hit /hooks/silent 1)" .body)" .event.OrderId)" = o-9 ] ||
    fail "silent webhook body: $(hit /hooks/silent 1)"
pass "kill -9 with the POST in flight: sent again once after the restart"

# 4. Nobody listens: six attempts over the back-off, then given up.
given_up_before=$(metric nudge_webhooks_given_up_total)
event '{"metric":"Closed Handover","profile":{"phone_number":"+393401110104"},"properties":{}}'
for attempt in 1 2 3 4 5; do
	wait_for 10 grep -q "$JOURNEY webhook retry id=[0-9]* status=0 error=\"[a-z-]*\" attempt=$attempt " "$SCRATCH/nudged.log" ||
	    fail "attempt $attempt to a closed port not retried"
	advance 700
done
wait_for 10 grep -q "$JOURNEY webhook given-up id=[0-9]* status=0 .* attempts=6" "$SCRATCH/nudged.log" ||
    fail "not given up after six attempts"
[ "$(metric nudge_webhooks_given_up_total)" = $((given_up_before + 1)) ] ||
    fail "given_up_total $(metric nudge_webhooks_given_up_total)"
pass "a dead endpoint: six attempts over the back-off, then given up and counted"

# 5. https://: the certificate must chain to a trusted root and name the host.
event '{"metric":"Tls Handover","profile":{"phone_number":"+393401110105"},"properties":{"Coupon":"SAVE10"}}'
wait_for 10 test -s "$SCRATCH/tls.jsonl" || fail "nothing arrived over https"
line=$(sed -n 1p "$SCRATCH/tls.jsonl")
body=$(field "$line" .body)
[ "$(field "$line" .method)" = POST ] || fail "https method: $line"
[ "$(field "$line" .url)" = /hooks/tls ] || fail "https path: $line"
[ "$(field "$line" .headers.content-type)" = application/json ] || fail "content type: $line"
[ "$(field "$line" .headers.host)" = "127.0.0.1:$TLS_PORT" ] || fail "host header: $line"
field "$line" .headers.idempotency-key | grep -q '^nudge-[0-9][0-9]*$' || fail "idempotency key: $line"
[ "$(field "$line" .raw_headers | grep -o '"Host"' | wc -l)" = 1 ] || fail "Host sent twice: $line"
[ "$(field "$body" .person.phone_number)" = +393401110105 ] || fail "https body: $body"
[ "$(field "$body" .event.Coupon)" = SAVE10 ] || fail "https event: $body"
pass "https: POSTed with a verified certificate, JSON and Host headers"

event '{"metric":"Tls Name Handover","profile":{"phone_number":"+393401110106"},"properties":{}}'
wait_for 10 grep -q "$JOURNEY webhook retry id=[0-9]* status=0 error=\"certificate: IP address mismatch\"" "$SCRATCH/nudged.log" ||
    fail "a certificate for another name was not refused"
event '{"metric":"Tls Untrusted Handover","profile":{"phone_number":"+393401110107"},"properties":{}}'
wait_for 10 grep -q "$JOURNEY webhook retry id=[0-9]* status=0 error=\"certificate: self[- ]signed certificate\"" "$SCRATCH/nudged.log" ||
    fail "a self-signed certificate was not refused"
sleep 0.3
[ ! -s "$SCRATCH/name.jsonl" ] || fail "a request went to the wrong-name server"
[ ! -s "$SCRATCH/untrusted.jsonl" ] || fail "a request went to the untrusted server"
pass "https: a wrong host name and an untrusted issuer are refused before any byte of the body"

# 6. SIGTERM with a POST in flight: the stop waits for it within its bound
# (3 s here), then leaves it to the restart, which sends it once.
start_silent "$STOP_PORT"
event '{"metric":"Stop Handover","profile":{"phone_number":"+393401110108"},"properties":{"Step":"stop"}}'
wait_for 10 grep -q "$JOURNEY webhook posting id=[0-9]* attempt=1" "$SCRATCH/nudged.log" ||
    fail "the stop webhook was not posted"
stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stop with a POST in flight: $STOP_STATUS"
grep -q "webhook left-for-restart in_flight=1" "$SCRATCH/nudged.log" ||
    fail "the POST in flight at the stop was not accounted for"
stop_pid "$SILENT_PID" 5
start_capture "$STOP_PORT"
start_nudged "$SCRATCH/nudged.conf"
advance 30
wait_for 10 sh -c "[ \$(grep -c '\"path\":\"/hooks/stop\"' $SCRATCH/capture.jsonl) -ge 1 ]" ||
    fail "the POST in flight at the stop was lost"
advance 1000
sleep 0.5
[ "$(hits /hooks/stop)" = 1 ] || fail "$(hits /hooks/stop) POSTs after the stop"
stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stop: $STOP_STATUS"
pass "SIGTERM with a POST in flight: clean exit within the bound, sent once after the restart"
