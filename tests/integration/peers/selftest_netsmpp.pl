#!/usr/bin/perl
# selftest_netsmpp.pl - proves netsmpp_smsc.pl works, using a Net::SMPP
# *client* (ESME) against it on loopback. Not part of `make test`; run it by
# hand after changing the server:  perl tests/integration/peers/selftest_netsmpp.pl
# Starts several server instances (one per option set), checks binds, ids,
# receipts, MO injection, throttling, ordering, stall/drop and quit-after,
# kills every server by PID, and prints "selftest: N passed, M failed".
use strict;
use warnings;

use FindBin;
use File::Temp qw(tempdir);
use IO::Select;
use JSON::PP;
use Net::SMPP;
use POSIX qw(WNOHANG);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);

my $SERVER = "$FindBin::Bin/netsmpp_smsc.pl";
my $dir = tempdir('netsmpp-selftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my ($passed, $failed) = (0, 0);
my @servers;             # every server started, for the final kill
my %stash;               # client socket -> PDUs read but not yet asked for

use constant {
	CMD_GENERIC_NACK => 0x80000000, CMD_BIND_RX_RESP => 0x80000001,
	CMD_BIND_TX_RESP => 0x80000002, CMD_SUBMIT_RESP => 0x80000004,
	CMD_DELIVER_SM => 0x00000005, CMD_UNBIND_RESP => 0x80000006,
	CMD_BIND_TRX_RESP => 0x80000009, CMD_ENQUIRE_RESP => 0x80000015,
	CMD_DATA_SM_RESP => 0x80000103,
};

$SIG{ALRM} = sub { print "global 120 s timeout hit\n"; $failed++; finish() };
alarm 120;
$SIG{PIPE} = 'IGNORE';

# Counts and prints one check.
sub check {
	my ($ok, $name, $detail) = @_;
	if ($ok) {
		$passed++;
		print "ok - $name\n";
	} else {
		$failed++;
		print "not ok - $name", (defined $detail ? " ($detail)" : ''), "\n";
	}
	return $ok;
}

# Reads one line from a pipe within $t seconds.
sub read_line {
	my ($fh, $t) = @_;
	my $sel = IO::Select->new($fh);
	my $end = time + $t;
	my $line = '';
	while ((my $left = $end - time) > 0) {
		last unless $sel->can_read($left);
		my $n = sysread($fh, my $c, 1);
		last unless $n;
		return $line if $c eq "\n";
		$line .= $c;
	}
	return undef;
}

# Starts a server with scratch record/control/log/pid files; waits for READY.
sub start_server {
	my ($tag, @args) = @_;
	my %f = map { $_ => "$dir/$tag.$_" } qw(record control log pidfile);
	open(my $ctl, '>', $f{control}) or die "$f{control}: $!";
	close $ctl;
	my $pid = open(my $out, '-|', $^X, $SERVER, '--port', 0, '--host', '127.0.0.1',
		'--system-id', 'nudge', '--password', 'secret', '--record', $f{record},
		'--control', $f{control}, '--log', $f{log}, '--pid-file', $f{pidfile},
		'--quit-after', 60, @args) or die "start server: $!";
	my $srv = { pid => $pid, out => $out, tag => $tag, %f };
	push @servers, $srv;
	my $line = read_line($out, 5) // '';
	($srv->{port}) = $line =~ /^READY (\d+)$/;
	check(defined $srv->{port}, "[$tag] server prints READY <port>", "got '$line'");
	return $srv;
}

sub control {
	my ($srv, $line) = @_;
	open(my $fh, '>>', $srv->{control}) or die "$srv->{control}: $!";
	print $fh "$line\n";
	close $fh;
}

sub records {
	my ($srv) = @_;
	open(my $fh, '<', $srv->{record}) or return ();
	return map { decode_json($_) } grep { /\S/ } <$fh>;
}

# Polls the record file (bounded) until $pred matches a line; returns it.
sub wait_record {
	my ($srv, $t, $pred) = @_;
	my $end = time + $t;
	while (time < $end) {
		for my $r (records($srv)) {
			return $r if $pred->($r);
		}
		sleep 0.05;
	}
	return undef;
}

sub client {
	my ($srv) = @_;
	my $c = Net::SMPP->new_connect('127.0.0.1', port => $srv->{port}, smpp_version => 0x34,
		async => 1, timeout => 5) or return undef;
	setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
	$stash{$c} = [];
	return $c;
}

# Next PDU within $t seconds (IO::Select; Net::SMPP's own wait would send
# enquire_link on its alarm instead of timing out). Unknown TLVs warn in
# Net::SMPP; the warning is expected here and swallowed.
sub next_pdu {
	my ($c, $t) = @_;
	return shift @{$stash{$c}} if @{$stash{$c}};
	return undef unless IO::Select->new($c)->can_read($t);
	local $SIG{__WARN__} = sub { };
	return $c->read_pdu;
}

# Waits up to $t s for a PDU with command id $cmd (and seq, if given);
# other PDUs are kept for later calls.
sub wait_cmd {
	my ($c, $cmd, $t, $seq) = @_;
	my $end = time + $t;
	my @kept;
	for my $i (0 .. $#{$stash{$c}}) {
		my $p = $stash{$c}[$i];
		if ($p->{cmd} == $cmd && (!defined $seq || $p->{seq} == $seq)) {
			splice @{$stash{$c}}, $i, 1;
			return $p;
		}
	}
	my $found;
	while ((my $left = $end - time) > 0) {
		last unless IO::Select->new($c)->can_read($left);
		my $p = do { local $SIG{__WARN__} = sub { }; $c->read_pdu };
		last unless $p;
		if ($p->{cmd} == $cmd && (!defined $seq || $p->{seq} == $seq)) {
			$found = $p;
			last;
		}
		push @kept, $p;
	}
	push @{$stash{$c}}, @kept;
	return $found;
}

# True if the peer closes the connection within $t seconds.
sub wait_eof {
	my ($c, $t) = @_;
	my $end = time + $t;
	while ((my $left = $end - time) > 0) {
		return 0 unless IO::Select->new($c)->can_read($left);
		my $n = sysread($c, my $buf, 4096);
		return 1 if defined $n && $n == 0;
		return 1 unless defined $n;
	}
	return 0;
}

sub bind_as {
	my ($c, $how, $sysid, $pw) = @_;
	my %resp = (transceiver => CMD_BIND_TRX_RESP, transmitter => CMD_BIND_TX_RESP,
	            receiver => CMD_BIND_RX_RESP);
	my $m = "bind_$how";
	my $seq = $c->$m(system_id => $sysid, password => $pw, system_type => '');
	return wait_cmd($c, $resp{$how}, 5, $seq);
}

sub submit {
	my ($c, %a) = @_;
	my $seq = $c->submit_sm(source_addr_ton => 5, source_addr_npi => 0,
		source_addr => 'NudgeTest', dest_addr_ton => 1, dest_addr_npi => 1,
		destination_addr => '4915550001', data_coding => 0, %a);
	return wait_cmd($c, CMD_SUBMIT_RESP, 5, $seq);
}

sub status_of { defined $_[0] ? sprintf('0x%02X', $_[0]{status}) : 'no response' }

my $RECEIPT_RE = qr/^id:(\S+) sub:001 dlvrd:001 submit date:\d{10} done date:\d{10} stat:(\w+) err:(\d{3}) text:(.*)$/s;

# ---- A: transceiver, hex ids, decimal receipt ids, MO, errors --------------
sub scenario_a {
	my $srv = start_server('a', '--first-id', 1000, '--id-base', 'hex',
		'--receipt-id-base', 'dec');
	return unless $srv->{port};
	my $pid_in_file = do { open(my $p, '<', $srv->{pidfile}); local $/; <$p> } // '';
	check($pid_in_file =~ /^(\d+)/ && $1 == $srv->{pid}, '[a] --pid-file holds the server pid');

	my $c = client($srv);
	check($c, '[a] connect') or return;
	my $b = bind_as($c, 'transceiver', 'nudge', 'secret');
	check($b && $b->{status} == 0 && $b->{system_id} eq 'netsmpp',
		'[a] bind_transceiver ROK, system_id netsmpp', status_of($b));

	my $eseq = $c->enquire_link;
	check(wait_cmd($c, CMD_ENQUIRE_RESP, 5, $eseq), '[a] enquire_link answered');

	my $r = submit($c, short_message => 'Hello from selftest!!x', registered_delivery => 1);
	check($r && $r->{status} == 0 && $r->{message_id} eq '3E8',
		'[a] submit_sm ROK with hex id 3E8', $r ? "id '$r->{message_id}'" : 'none');

	my $d = wait_cmd($c, CMD_DELIVER_SM, 5);
	check($d, '[a] receipt deliver_sm arrives within 5 s') or return;
	my @m = ($d->{short_message} // '') =~ $RECEIPT_RE;
	check(@m && $m[0] eq '1000' && $m[1] eq 'DELIVRD' && $m[2] eq '000'
		&& $m[3] eq 'Hello from selftest!',
		'[a] receipt text: decimal id 1000, DELIVRD, err 000, 20 chars of text',
		$d->{short_message});
	check($d->{esm_class} == 4 && $d->{data_coding} == 0
		&& $d->{source_addr} eq '4915550001' && $d->{source_addr_ton} == 1
		&& $d->{destination_addr} eq 'NudgeTest' && $d->{dest_addr_ton} == 5,
		'[a] receipt esm_class 4, addresses swapped with their TON');
	check(($d->{receipted_message_id} // '') eq "3E8\0" && ($d->{message_state} // '') eq "\x02",
		'[a] receipt TLVs receipted_message_id "3E8\\0", message_state 2');
	$c->deliver_sm_resp(seq => $d->{seq}, message_id => '');

	my $sub = wait_record($srv, 2, sub { $_[0]{command} eq 'submit_sm' && $_[0]{seq} == $r->{seq} });
	check($sub && $sub->{message_id} eq '3E8' && $sub->{bind} eq 'trx'
		&& $sub->{system_id} eq 'nudge' && $sub->{registered_delivery} == 1
		&& $sub->{short_message_hex} eq unpack('H*', 'Hello from selftest!!x')
		&& $sub->{source_addr} eq 'NudgeTest' && $sub->{dest_addr_ton} == 1
		&& $sub->{time} > 0,
		'[a] record: submit_sm line with fields and message_id');
	check(wait_record($srv, 2, sub { $_[0]{command} eq 'receipt_sent' && $_[0]{message_id} eq '3E8' }),
		'[a] record: receipt_sent line');
	my $dr = wait_record($srv, 2, sub { $_[0]{command} eq 'deliver_sm_resp' && ($_[0]{message_id} // '') eq '3E8' });
	check($dr && $dr->{status} == 0 && $dr->{for} eq 'receipt', '[a] record: deliver_sm_resp for the receipt');

	# UCS-2 part of a long message with UDH and SAR TLVs, receipt requested.
	my $ucs = pack('n*', map { ord } split //, 'Grüße');
	my $udh = pack('H*', '050003070201');
	$r = submit($c, esm_class => 0x40, data_coding => 8, short_message => $udh . $ucs,
		registered_delivery => 1, sar_msg_ref_num => pack('n', 7),
		sar_total_segments => pack('C', 2), sar_segment_seqnum => pack('C', 1));
	check($r && $r->{status} == 0 && $r->{message_id} eq '3E9', '[a] second submit gets 3E9');
	$sub = wait_record($srv, 2, sub { ($_[0]{message_id} // '') eq '3E9' && $_[0]{command} eq 'submit_sm' });
	check($sub && $sub->{sar_msg_ref_num} eq '0007' && $sub->{sar_total_segments} eq '02'
		&& $sub->{sar_segment_seqnum} eq '01' && $sub->{tlvs}{sar_msg_ref_num} eq '0007'
		&& $sub->{esm_class} == 0x40 && $sub->{data_coding} == 8
		&& $sub->{short_message_hex} eq unpack('H*', $udh . $ucs),
		'[a] record: TLVs by name in hex, UDH and UCS-2 bytes kept');
	$d = wait_cmd($c, CMD_DELIVER_SM, 5);
	@m = ($d && $d->{short_message} // '') =~ $RECEIPT_RE;
	check(@m && $m[0] eq '1001' && $m[3] eq '', '[a] UCS-2 receipt has an empty text:',
		$d ? $d->{short_message} : 'none');
	$c->deliver_sm_resp(seq => $d->{seq}, message_id => '') if $d;

	# data_sm with message_payload.
	my $dseq = $c->data_sm(source_addr => 'NudgeTest', destination_addr => '4915550001',
		esm_class => 0, registered_delivery => 0, data_coding => 0,
		message_payload => 'payload text');
	my $ds = wait_cmd($c, CMD_DATA_SM_RESP, 5, $dseq);
	check($ds && $ds->{status} == 0 && $ds->{message_id} eq '3EA', '[a] data_sm -> data_sm_resp 3EA');
	check(wait_record($srv, 2, sub { $_[0]{command} eq 'data_sm'
		&& ($_[0]{message_payload} // '') eq unpack('H*', 'payload text') }),
		'[a] record: data_sm line with message_payload');

	# MO injection through the control file.
	control($srv, 'deliver +4915550002 12345 0x00 0 ' . unpack('H*', 'Hi MO'));
	$d = wait_cmd($c, CMD_DELIVER_SM, 5);
	check($d && $d->{short_message} eq 'Hi MO' && $d->{source_addr} eq '4915550002'
		&& $d->{source_addr_ton} == 1 && $d->{source_addr_npi} == 1
		&& $d->{destination_addr} eq '12345' && $d->{esm_class} == 0 && $d->{data_coding} == 0,
		'[a] control deliver: GSM MO arrives as deliver_sm');
	$c->deliver_sm_resp(seq => $d->{seq}, message_id => '') if $d;
	control($srv, 'deliver 4915550003 12345 0x40 8 050003AB0201' . unpack('H*', $ucs)
		. ' user_message_reference=0042 source_addr_ton=2 0x1401=beef');
	$d = wait_cmd($c, CMD_DELIVER_SM, 5);
	check($d && $d->{esm_class} == 0x40 && $d->{data_coding} == 8
		&& $d->{short_message} eq pack('H*', '050003AB0201') . $ucs
		&& ($d->{user_message_reference} // '') eq "\x00\x42"
		&& ($d->{0x1401} // '') eq "\xbe\xef" && $d->{source_addr_ton} == 2,
		'[a] control deliver: UDH + UCS-2 MO with named, numeric TLVs and a TON override');
	$c->deliver_sm_resp(seq => $d->{seq}, message_id => '') if $d;
	check(wait_record($srv, 2, sub { $_[0]{command} eq 'deliver_sm_resp' && ($_[0]{for} // '') eq 'mo' }),
		'[a] record: deliver_sm_resp for the MO');

	# Protocol errors.
	$c->syswrite(pack('NNNN', 16, 0x00000077, 0, 99));
	my $n = wait_cmd($c, CMD_GENERIC_NACK, 5, 99);
	check($n && $n->{status} == 0x03, '[a] unknown command_id -> generic_nack ESME_RINVCMDID', status_of($n));
	$c->syswrite(pack('NNNN', 19, 0x00000004, 0, 100) . 'abc');
	$n = wait_cmd($c, CMD_GENERIC_NACK, 5, 100);
	check($n && $n->{status} != 0, '[a] truncated submit_sm -> generic_nack', status_of($n));

	my $useq = $c->unbind;
	check(wait_cmd($c, CMD_UNBIND_RESP, 5, $useq), '[a] unbind answered');
	check(wait_eof($c, 2), '[a] server closes after unbind_resp');
	stop_server($srv, '[a]');
}

# ---- B: bind errors, throttling, tx + rx sessions, receipt queued ----------
sub scenario_b {
	my $srv = start_server('b', '--first-id', 500, '--id-base', 'dec', '--throttle-first', 1);
	return unless $srv->{port};
	my $bad = client($srv);
	my $b = bind_as($bad, 'transceiver', 'nudge', 'wrong');
	check($b && $b->{status} == 0x0E, '[b] wrong password -> ESME_RINVPASWD 0x0E', status_of($b));
	$b = bind_as($bad, 'transceiver', 'someone', 'secret');
	check($b && $b->{status} == 0x0F, '[b] wrong system_id -> ESME_RINVSYSID 0x0F', status_of($b));
	close $bad;

	my $tx = client($srv);
	$b = bind_as($tx, 'transmitter', 'nudge', 'secret');
	check($b && $b->{status} == 0, '[b] bind_transmitter ROK', status_of($b));
	my $r = submit($tx, short_message => 'first', registered_delivery => 1);
	check($r && $r->{status} == 0x58, '[b] --throttle-first 1: first submit -> ESME_RTHROTTLED 0x58', status_of($r));
	check(wait_record($srv, 2, sub { $_[0]{command} eq 'submit_sm_throttled' }),
		'[b] record: submit_sm_throttled line');
	$r = submit($tx, short_message => 'second', registered_delivery => 1);
	check($r && $r->{status} == 0 && $r->{message_id} eq '500', '[b] next submit ROK with decimal id 500',
		$r ? "id '$r->{message_id}'" : 'none');

	sleep 0.3;   # receipt due after 50 ms, but nobody can receive it yet
	my $rx = client($srv);
	$b = bind_as($rx, 'receiver', 'nudge', 'secret');
	check($b && $b->{status} == 0, '[b] bind_receiver ROK next to the transmitter', status_of($b));
	my $d = wait_cmd($rx, CMD_DELIVER_SM, 5);
	my @m = ($d && $d->{short_message} // '') =~ $RECEIPT_RE;
	check(@m && $m[0] eq '500' && $m[3] eq 'second' && ($d->{receipted_message_id} // '') eq "500\0",
		'[b] receipt kept until a receiver bound, then sent on the rx session');
	$rx->deliver_sm_resp(seq => $d->{seq}, message_id => '') if $d;
	check(!wait_cmd($tx, CMD_DELIVER_SM, 0.2), '[b] no deliver_sm on the transmitter');
	$r = submit($rx, short_message => 'x');
	check($r && $r->{status} == 0x04, '[b] submit on a receiver -> ESME_RINVBNDSTS', status_of($r));
	stop_server($srv, '[b]');
}

# ---- C: receipt before response -------------------------------------------
sub scenario_c {
	my $srv = start_server('c', '--receipt-before-response', '--receipt-delay-ms', 0,
		'--receipt-stat', 'UNDELIV');
	return unless $srv->{port};
	my $c = client($srv);
	my $b = bind_as($c, 'transceiver', 'nudge', 'secret');
	check($b && $b->{status} == 0, '[c] bind ROK', status_of($b));
	my $seq = $c->submit_sm(source_addr => 'NudgeTest', destination_addr => '4915550001',
		short_message => 'ordering', registered_delivery => 1);
	my $first = next_pdu($c, 5);
	my $second = next_pdu($c, 5);
	check($first && $first->{cmd} == CMD_DELIVER_SM && $second
		&& $second->{cmd} == CMD_SUBMIT_RESP && $second->{seq} == $seq,
		'[c] --receipt-before-response: deliver_sm comes before submit_sm_resp');
	if ($first && $first->{cmd} == CMD_DELIVER_SM) {
		my @m = ($first->{short_message} // '') =~ $RECEIPT_RE;
		check(@m && $m[1] eq 'UNDELIV' && $m[2] eq '001' && ($first->{message_state} // '') eq "\x05"
			&& $second && ($first->{receipted_message_id} // '') eq "$second->{message_id}\0",
			'[c] UNDELIV receipt: err 001, message_state 5, id matches the response');
		$c->deliver_sm_resp(seq => $first->{seq}, message_id => '');
	}
	stop_server($srv, '[c]');
}

# ---- D: response delay, no receipt TLVs, stat mix, stall, drop -------------
sub scenario_d {
	my $srv = start_server('d', '--resp-delay-ms', 300, '--no-receipt-tlvs',
		'--receipt-stat', 'DELIVRD:1,UNDELIV:1');
	return unless $srv->{port};
	my $c = client($srv);
	bind_as($c, 'transceiver', 'nudge', 'secret');
	my $t0 = time;
	my $r = submit($c, short_message => 'slow', registered_delivery => 1);
	my $took = time - $t0;
	check($r && $r->{status} == 0 && $took >= 0.28 && $took < 2,
		'[d] --resp-delay-ms 300 delays the response', sprintf('%.3f s', $took));
	my $d = wait_cmd($c, CMD_DELIVER_SM, 5);
	check($d && !defined $d->{receipted_message_id} && !defined $d->{message_state},
		'[d] --no-receipt-tlvs: receipt without TLVs');
	$c->deliver_sm_resp(seq => $d->{seq}, message_id => '') if $d;
	my @m = ($d && $d->{short_message} // '') =~ $RECEIPT_RE;
	my $seq = $c->submit_sm(destination_addr => '4915550001', short_message => 'b',
		registered_delivery => 1);
	my $d2 = wait_cmd($c, CMD_DELIVER_SM, 5);
	my @m2 = ($d2 && $d2->{short_message} // '') =~ $RECEIPT_RE;
	check(@m && @m2 && $m[1] eq 'DELIVRD' && $m2[1] eq 'UNDELIV',
		'[d] stat mix DELIVRD:1,UNDELIV:1 is deterministic by id (1000 DELIVRD, 1001 UNDELIV)');
	$c->deliver_sm_resp(seq => $d2->{seq}, message_id => '') if $d2;
	wait_cmd($c, CMD_SUBMIT_RESP, 5, $seq);

	control($srv, 'stall 600');
	sleep 0.15;   # the server polls the control file every 50 ms
	$t0 = time;
	my $e = $c->enquire_link;
	my $er = wait_cmd($c, CMD_ENQUIRE_RESP, 5, $e);
	$took = time - $t0;
	check($er && $took >= 0.3, '[d] stall 600: nothing answered during the stall',
		sprintf('%.3f s', $took));
	control($srv, 'drop');
	check(wait_eof($c, 2), '[d] drop closes the connection');
	stop_server($srv, '[d]');
}

# ---- E: quit-after ----------------------------------------------------------
sub scenario_e {
	my $srv = start_server('e', '--quit-after', 1);
	return unless $srv->{port};
	check(reap($srv, 4), '[e] --quit-after 1: exits by itself');
}

# Waits (bounded) for a server to exit; true if it did.
sub reap {
	my ($srv, $t) = @_;
	return 1 if $srv->{reaped};
	my $end = time + $t;
	while (time < $end) {
		if (waitpid($srv->{pid}, WNOHANG) == $srv->{pid}) {
			$srv->{reaped} = 1;
			return 1;
		}
		sleep 0.05;
	}
	return 0;
}

sub stop_server {
	my ($srv, $tag) = @_;
	kill 'TERM', $srv->{pid};
	check(reap($srv, 3), "$tag SIGTERM stops the server");
}

# Kills every server still running (TERM, then KILL), prints the summary.
sub finish {
	for my $srv (@servers) {
		next if $srv->{reaped};
		kill 'TERM', $srv->{pid};
		reap($srv, 2) or do { kill 'KILL', $srv->{pid}; reap($srv, 2) };
	}
	print "selftest: $passed passed, $failed failed\n";
	exit($failed ? 1 : 0);
}

for my $s (\&scenario_a, \&scenario_b, \&scenario_c, \&scenario_d, \&scenario_e) {
	eval { $s->(); 1 } or check(0, 'scenario died', $@ =~ s/\s+$//r);
}
finish();
