# kannel.sh - Kannel 1.4.5 as an ESME in integration tests: generates a
# bearerbox + smsbox configuration into a scratch directory, starts the boxes
# in the order Kannel needs (the SMSC and the HTTP capture server first, then
# bearerbox, then smsbox), injects MTs with smsbox's sendsms, reads the MO and
# delivery-report callbacks the capture server recorded, and stops Kannel by
# its admin port and then by PID. Source it after lib.sh.
#
#   CAPTURE_PORT=$(free_port); start_capture "$CAPTURE_PORT"
#   start_kannel "$SCRATCH" "$SMPP_PORT" transceiver     (or pair)
#   kannel_sendsms 4930123 +393401234567 "Hello" [EXTRA-QUERY]
#   kannel_callbacks /mo from text ...
#   stop_kannel
#
# Never touches /etc/kannel/kannel.conf; every port is on 127.0.0.1.
BEARERBOX=${BEARERBOX:-/usr/sbin/bearerbox}
SMSBOX=${SMSBOX:-/usr/sbin/smsbox}
KANNEL_PASSWORD=kadmin
KANNEL_SMSC_ID=nudge
KANNEL_SMSC_USERNAME=${KANNEL_SMSC_USERNAME:-kannel}
KANNEL_SMSC_PASSWORD=${KANNEL_SMSC_PASSWORD:-secret12}
KANNEL_SENDSMS_USER=shop
KANNEL_SENDSMS_PASSWORD=shoppw
BEARERBOX_PID=""
SMSBOX_PID=""

# kannel_smsc_group PORT-KEY PORT TRANSCEIVER [MAX_PENDING]: one "group =
# smsc" towards the SMSC on 127.0.0.1; PORT-KEY is port (transmitter or
# transceiver) or receive-port (receiver); MAX_PENDING submits unanswered
# at most (10).
kannel_smsc_group() {
	cat <<CONF

group = smsc
smsc = smpp
smsc-id = $KANNEL_SMSC_ID
host = 127.0.0.1
$1 = $2
transceiver-mode = $3
smsc-username = $KANNEL_SMSC_USERNAME
smsc-password = $KANNEL_SMSC_PASSWORD
system-type = ""
source-addr-ton = 1
source-addr-npi = 1
dest-addr-ton = 1
dest-addr-npi = 1
reconnect-delay = 2
enquire-link-interval = 30
max-pending-submits = ${4:-10}
CONF
}

# kannel_core_group DIR LOG_LEVEL [LINE...]: bearerbox's "group = core" on
# fresh admin and smsbox ports (KANNEL_ADMIN_PORT, KANNEL_BOX_PORT), all on
# loopback, logging into DIR; extra LINEs join the group. Also picks
# KANNEL_SENDSMS_PORT for the smsbox group that follows.
kannel_core_group() {
	core_dir=$1
	core_log_level=$2
	shift 2
	KANNEL_ADMIN_PORT=$(free_port)
	KANNEL_BOX_PORT=$(free_port)
	KANNEL_SENDSMS_PORT=$(free_port)
	cat <<CONF
group = core
admin-port = $KANNEL_ADMIN_PORT
admin-interface = 127.0.0.1
admin-password = $KANNEL_PASSWORD
status-password = $KANNEL_PASSWORD
admin-allow-ip = "127.0.0.1"
admin-deny-ip = "*.*.*.*"
smsbox-port = $KANNEL_BOX_PORT
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
box-deny-ip = "*.*.*.*"
log-file = "$core_dir/bearerbox.log"
log-level = $core_log_level
dlr-storage = internal
sms-resend-freq = 2
CONF
	for line in "$@"; do
		echo "$line"
	done
}

# kannel_write_config DIR SMPP_PORT MODE: DIR/kannel.conf with fresh admin,
# smsbox and sendsms ports (KANNEL_ADMIN_PORT, KANNEL_SENDSMS_PORT).
kannel_write_config() {
	dir=$1
	smpp_port=$2
	mode=$3
	{
		kannel_core_group "$dir" 0 \
		    "access-log = \"$dir/bearerbox-access.log\"" \
		    "sms-resend-retry = 10"
		case $mode in
		transceiver)
			kannel_smsc_group port "$smpp_port" true
			;;
		pair)
			# Kannel panics on port and receive-port in one group:
			# two groups share the smsc-id instead.
			kannel_smsc_group port "$smpp_port" false
			kannel_smsc_group receive-port "$smpp_port" false
			;;
		*)
			fail "start_kannel: mode '$mode' is neither transceiver nor pair"
			;;
		esac
		cat <<CONF

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $KANNEL_BOX_PORT
sendsms-port = $KANNEL_SENDSMS_PORT
sendsms-interface = 127.0.0.1
log-file = "$dir/smsbox.log"
log-level = 0
access-log = "$dir/smsbox-access.log"

group = sendsms-user
username = $KANNEL_SENDSMS_USER
password = $KANNEL_SENDSMS_PASSWORD
user-allow-ip = "127.0.0.1"
default-smsc = $KANNEL_SMSC_ID
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "http://127.0.0.1:$CAPTURE_PORT/mo?from=%p&to=%P&text=%a&binary=%b&smsc=%i&coding=%c&udh=%u"
CONF
	} >"$dir/kannel.conf"
}

# kannel_status: Kannel's status page (text form) on stdout.
kannel_status() {
	curl -fsS --max-time 5 \
	    "http://127.0.0.1:$KANNEL_ADMIN_PORT/status.txt?password=$KANNEL_PASSWORD"
}

# kannel_online [COUNT]: true once COUNT smsc connections (1) are online.
kannel_online() {
	online=$(kannel_status | grep -c '(online' || true)
	[ "$online" -ge "${1:-1}" ]
}

# kannel_admin COMMAND [QUERY]: an admin command (start-smsc, stop-smsc,
# shutdown, ...) with the admin password; reply on stdout.
kannel_admin() {
	curl -sS --max-time 5 \
	    "http://127.0.0.1:$KANNEL_ADMIN_PORT/$1?password=$KANNEL_PASSWORD${2:+&$2}"
}

# start_kannel DIR SMPP_PORT [transceiver|pair]: bearerbox binds to the SMSC
# on 127.0.0.1:SMPP_PORT as user kannel / secret12, then smsbox starts. The
# SMSC and the capture server (CAPTURE_PORT) must already listen. Waits until
# every bind is online and sendsms answers.
start_kannel() {
	KANNEL_DIR=$1
	kannel_mode=${3:-transceiver}
	[ -n "${CAPTURE_PORT:-}" ] || fail "start_kannel: set CAPTURE_PORT and start_capture first"
	mkdir -p "$KANNEL_DIR"
	kannel_write_config "$KANNEL_DIR" "$2" "$kannel_mode"
	"$BEARERBOX" -v 2 "$KANNEL_DIR/kannel.conf" \
	    >"$KANNEL_DIR/bearerbox.out" 2>&1 &
	BEARERBOX_PID=$!
	PIDS="$PIDS $BEARERBOX_PID"
	binds=1
	[ "$kannel_mode" = pair ] && binds=2
	# smsbox started before bearerbox listens panics: wait for the binds.
	wait_for 15 kannel_online "$binds" ||
	    fail "bearerbox did not bind $binds connection(s) to port $2 within 15 s: $(kannel_status 2>&1 | grep -i smpp)"
	"$SMSBOX" -v 2 "$KANNEL_DIR/kannel.conf" >"$KANNEL_DIR/smsbox.out" 2>&1 &
	SMSBOX_PID=$!
	PIDS="$PIDS $SMSBOX_PID"
	wait_for 10 curl -s --max-time 1 -o /dev/null \
	    "http://127.0.0.1:$KANNEL_SENDSMS_PORT/" ||
	    fail "smsbox's sendsms port did not answer within 10 s"
	# smsbox must also be connected to bearerbox before sendsms works.
	wait_for 10 sh -c "curl -fsS --max-time 1 'http://127.0.0.1:$KANNEL_ADMIN_PORT/status.txt?password=$KANNEL_PASSWORD' | grep -q 'smsbox:'" ||
	    fail "smsbox did not connect to bearerbox within 10 s"
}

# kannel_sendsms FROM TO TEXT [EXTRA-QUERY]: one MT through smsbox with
# dlr-mask 31 and a dlr-url on the capture server (/dlr, tagged with TO).
# The reply body is in $KANNEL_DIR/sendsms.reply, the status in
# SENDSMS_CODE; returns non-zero unless Kannel accepted it (2xx).
kannel_sendsms() {
	dlr_url="http://127.0.0.1:$CAPTURE_PORT/dlr?tag=$2&type=%d&smscid=%F&reply=%A&phone=%p&sender=%P&smsc=%i&ts=%T"
	SENDSMS_CODE=$(curl -sS --max-time 10 -G -o "$KANNEL_DIR/sendsms.reply" \
	    -w '%{http_code}' \
	    --data-urlencode "username=$KANNEL_SENDSMS_USER" \
	    --data-urlencode "password=$KANNEL_SENDSMS_PASSWORD" \
	    --data-urlencode "from=$1" --data-urlencode "to=$2" \
	    --data-urlencode "text=$3" --data-urlencode "dlr-mask=31" \
	    --data-urlencode "dlr-url=$dlr_url" \
	    "http://127.0.0.1:$KANNEL_SENDSMS_PORT/cgi-bin/sendsms${4:+?$4}")
	case $SENDSMS_CODE in
	2??) return 0 ;;
	*) return 1 ;;
	esac
}

# kannel_callbacks PATH FIELD...: one line per request the capture server
# recorded for PATH (/mo or /dlr), with the URL-decoded query values of
# FIELD... separated by tabs, in arrival order.
kannel_callbacks() {
	path=$1
	shift
	[ -f "$SCRATCH/capture.jsonl" ] || return 0
	perl -MJSON::PP -e '
		my ($path, @fields) = @ARGV[1 .. $#ARGV];
		open(my $fh, "<", $ARGV[0]) or exit 0;
		while (my $line = <$fh>) {
			my $request = eval { decode_json($line) } or next;
			next unless $request->{path} eq $path;
			my %query;
			for my $pair (split /&/, $request->{query}) {
				my ($key, $value) = split /=/, $pair, 2;
				$value //= "";
				$value =~ tr/+/ /;
				$value =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
				$query{$key} = $value;
			}
			print join("\t", map { $query{$_} // "" } @fields), "\n";
		}' "$SCRATCH/capture.jsonl" "$path" "$@"
}

# kannel_callback_count PATH FIELD VALUE: how many recorded callbacks to
# PATH have the decoded query value FIELD equal to VALUE.
kannel_callback_count() {
	kannel_callbacks "$1" "$2" | grep -Fxc -- "$3" || true
}

# stop_kannel: GET /shutdown on the admin port (Kannel unbinds first), up to
# 10 s for both boxes to exit, then SIGKILL whatever is left, by PID.
stop_kannel() {
	[ -n "$BEARERBOX_PID" ] || return 0
	kannel_admin shutdown >/dev/null 2>&1 || true
	waited=0
	while running "$BEARERBOX_PID" || { [ -n "$SMSBOX_PID" ] &&
	    running "$SMSBOX_PID"; }; do
		sleep 0.1
		waited=$((waited + 1))
		[ "$waited" -lt 100 ] || break
	done
	for pid in $BEARERBOX_PID $SMSBOX_PID; do
		if running "$pid"; then
			echo "stop_kannel: $pid still alive after 10 s, killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	BEARERBOX_PID=""
	SMSBOX_PID=""
}
