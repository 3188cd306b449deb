#!/bin/sh
# test_server_badinput.sh - hostile bytes on nudged's SMPP port from raw
# sockets (Perl IO::Socket): garbage, command_length 0 and 2^31, a bind
# whose strings are not terminated, a truncated PDU then close, random
# bytes, and 100 binds with a wrong password from one address (delayed after
# auth_fail_delay_after, refused once blocked). Each gets the right status
# or a close; meanwhile a well-behaved ESME stays bound and keeps
# submitting, every one of its messages reaches the SMSC, /healthz answers
# and nudged neither crashes nor refuses other addresses.
. tests/integration/lib.sh
CLIENT=tests/integration/peers/esme_client.pl

# expect FILE REGEX WHAT: FILE has a line matching REGEX (extended).
expect() {
	grep -Eq -- "$2" "$1" || fail "$3: no line like '$2' in: $(cat "$1")"
}

SIM_PORT=$(free_port)
start_sim "$SIM_PORT"
write_config "$SCRATCH/nudged.conf"
sed -i 's/^\[smpp\]$/[smpp]\nauth_fail_delay_after = 3\nauth_fail_block_after = 10\nauth_fail_delay = 200ms\nauth_block = 60s\nbind_timeout = 2s/' \
    "$SCRATCH/nudged.conf"
add_link "$SCRATCH/nudged.conf" sim "$SIM_PORT"
cat >>"$SCRATCH/nudged.conf" <<CONF
[account good]
system_id = good
password = goodpw
allowed_addresses = 127.0.0.0/8
CONF
start_nudged "$SCRATCH/nudged.conf"
wait_for 10 link_bound sim || fail "link sim never bound"

# The well-behaved ESME: bound before the abuse starts, submitting through it.
perl "$CLIENT" "$SMPP_PORT" bind transceiver good goodpw touch "$SCRATCH/bound" \
    trickle "$SCRATCH/stop" 4930123 393401239999 Steady enquire unbind \
    >"$SCRATCH/steady.out" 2>&1 &
steady=$!
PIDS="$PIDS $steady"
wait_for 10 test -e "$SCRATCH/bound" || fail "the well-behaved ESME did not bind: $(cat "$SCRATCH/steady.out")"

# The abuse, one raw connection per case; one line per case on stdout:
# NAME pdus=CMD/STATUS,... closed=0|1 ms=N (ms until the first answer).
perl - "$SMPP_PORT" >"$SCRATCH/abuse.out" 2>"$SCRATCH/abuse.err" <<'PERL'
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

my $port = shift;
$SIG{PIPE} = 'IGNORE';
alarm 120;
$| = 1;

# Sends $bytes from $local (then half-closes if $shut), reads PDUs until
# the peer closes or $wait seconds pass.
sub attack {
	my ($name, $bytes, %opt) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
	    LocalAddr => $opt{local} // '127.0.0.1', Proto => 'tcp')
	    or do { print "$name connect-failed\n"; return };
	my $sent = time;
	syswrite($s, $bytes);
	if ($opt{close}) {
		close $s;
		print "$name sent-and-closed\n";
		return;
	}
	my ($buffer, $closed, @pdus, $first) = ('', 0);
	my $end = time + ($opt{wait} // 5);
	while ((my $left = $end - time) > 0) {
		last unless IO::Select->new($s)->can_read($left);
		my $n = sysread($s, my $chunk, 65536);
		if (!$n) {
			$closed = 1;
			last;
		}
		$first //= time;
		$buffer .= $chunk;
		while (length($buffer) >= 16) {
			my ($length, $cmd, $status) = unpack('NNN', $buffer);
			last if length($buffer) < $length || $length < 16;
			push @pdus, sprintf('%08x/%02x', $cmd, $status);
			substr($buffer, 0, $length) = '';
		}
		last if $opt{one} && @pdus;
	}
	close $s;
	printf "%s pdus=%s closed=%d ms=%d\n", $name, join(',', @pdus) || '-',
	    $closed, defined $first ? ($first - $sent) * 1000 : -1;
}

# bind_transceiver with system_id, password.
sub bind_pdu {
	my ($id, $password, $seq) = @_;
	my $body = pack('Z*Z*Z*CCCZ*', $id, $password, '', 0x34, 0, 0, '');
	return pack('NNNN', 16 + length($body), 9, 0, $seq) . $body;
}

attack('garbage', "GET / HTTP/1.0\r\nHost: x\r\n\r\n");
attack('length0', pack('NNNN', 0, 4, 0, 1));
attack('length2g', pack('NNNN', 2**31, 4, 0, 2) . 'x' x 64);
attack('length15', pack('NNN', 15, 4, 0) . 'abc');
attack('unterminated', pack('NNNN', 16 + 40, 9, 0, 3) . "\xff" x 40);
attack('truncated', pack('NNNN', 100, 4, 0, 4) . 'partial body', close => 1);
srand(42);
attack('random', join('', map { chr(int(rand(256))) } 1 .. 4096));
# A PDU that announces 60 KB and sends 10: nudged waits for the rest no
# longer than bind_timeout (2 s), then closes.
attack('slow', pack('NNNN', 60000, 4, 0, 5) . 'x' x 10, wait => 6);
for my $k (1 .. 100) {
	attack("wrongpw$k", bind_pdu('good', 'nope', 100 + $k),
	    local => '127.0.0.3', one => 1, wait => 5);
}
attack('rightpw-blocked', bind_pdu('good', 'goodpw', 300), local => '127.0.0.3',
    one => 1);
attack('rightpw-other', bind_pdu('good', 'goodpw', 301), local => '127.0.0.4',
    one => 1);
PERL
[ -s "$SCRATCH/abuse.err" ] && fail "abuse script: $(cat "$SCRATCH/abuse.err")"
running "$NUDGED_PID" || fail "nudged died during the abuse"

# A bad command_length gets generic_nack ESME_RINVCMDLEN (0x02) and a close.
for name in garbage length0 length2g length15; do
	expect "$SCRATCH/abuse.out" "^$name pdus=(80000000/02|-) closed=1 " "$name"
done
expect "$SCRATCH/abuse.out" '^garbage pdus=80000000/02 ' "garbage gets generic_nack 0x02"
expect "$SCRATCH/abuse.out" '^length2g pdus=80000000/02 ' "command_length 2^31 gets generic_nack 0x02"
# Strings without their NUL: a bind_resp error or generic_nack, never ROK.
expect "$SCRATCH/abuse.out" '^unterminated pdus=(8000000[09]/[0-9a-f]+|-) ' "unterminated strings"
grep -q '^unterminated pdus=80000009/00' "$SCRATCH/abuse.out" && fail "a bind with unterminated strings was accepted"
expect "$SCRATCH/abuse.out" '^random pdus=[^ ]* closed=1 ' "random bytes end in a close"
expect "$SCRATCH/abuse.out" '^slow pdus=[^ ]* closed=1 ' "a PDU never completed is closed at bind_timeout"
pass "garbage, command_length 0 / 15 / 2^31: generic_nack 0x02 and close; unterminated bind refused; random bytes and a never-finished PDU closed"

# 100 wrong passwords from 127.0.0.3: 0x0E (delayed after the 3rd failure),
# then refused (0x0D or a close) once the address is blocked after the 10th.
wrong=$(grep -c '^wrongpw[0-9]* pdus=80000009/0e ' "$SCRATCH/abuse.out" || true)
refused=$(grep -Ec '^wrongpw[0-9]* (pdus=80000009/0d |pdus=- closed=1 )' "$SCRATCH/abuse.out" || true)
[ $((wrong + refused)) = 100 ] ||
    fail "wrong passwords: $wrong x 0x0E + $refused refused != 100: $(grep -Ev '80000009/0[de]' "$SCRATCH/abuse.out" | grep wrongpw | head -5)"
for k in 1 2 3; do
	expect "$SCRATCH/abuse.out" "^wrongpw$k pdus=80000009/0e " "wrong password $k"
done
[ "$wrong" -le 11 ] || fail "$wrong wrong passwords answered 0x0E: the address was never blocked"
[ "$refused" -ge 89 ] || fail "only $refused of 100 bad binds were refused outright"
ms=$(sed -n 's/^wrongpw6 .* ms=\([0-9-]*\)$/\1/p' "$SCRATCH/abuse.out")
[ "$ms" -ge 150 ] || fail "the 6th failed bind was answered after $ms ms, not delayed (auth_fail_delay 200ms)"
expect "$SCRATCH/abuse.out" '^rightpw-blocked (pdus=80000009/0d |pdus=- closed=1 )' \
    "the right password from the blocked address"
expect "$SCRATCH/abuse.out" '^rightpw-other pdus=80000009/00 ' "the right password from another address"
pass "100 wrong passwords from 127.0.0.3: $wrong x 0x0E (the 6th after ${ms} ms), $refused refused; the address stays blocked, 127.0.0.4 binds"

curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || fail "/healthz does not answer after the abuse"
touch "$SCRATCH/stop"
wait "$steady" || true
expect "$SCRATCH/steady.out" '^trickle sent=[0-9]+ ok=[0-9]+ failed=0$' "the well-behaved session"
expect "$SCRATCH/steady.out" '^enquire_link_resp status=0x00000000$' "the well-behaved session at the end"
expect "$SCRATCH/steady.out" '^unbind_resp status=0x00000000$' "the well-behaved session unbinds"
sent=$(sed -n 's/^trickle sent=\([0-9]*\) .*/\1/p' "$SCRATCH/steady.out")
[ "$sent" -ge 10 ] || fail "the well-behaved session submitted only $sent messages"
wait_for 10 sh -c "[ \$(grep -c ' 393401239999 ' '$SCRATCH/sink.rec') -ge $sent ]" ||
    fail "the SMSC got $(grep -c ' 393401239999 ' "$SCRATCH/sink.rec") of $sent messages of the well-behaved session"
[ "$(grep -c ' 393401239999 ' "$SCRATCH/sink.rec")" = "$sent" ] || fail "duplicates at the SMSC"
pass "meanwhile a bound ESME submitted $sent messages, all accepted and each at the SMSC once; /healthz answers"

stop_pid "$NUDGED_PID" 10
[ "$STOP_STATUS" = 0 ] || fail "nudged stopped with $STOP_STATUS"
pass "nudged stopped cleanly after the abuse"
