#!/usr/bin/perl
# smsc_sim_client.pl - a scripted Net::SMPP ESME for test_smsc_sim.sh: it
# connects to 127.0.0.1:PORT, runs the steps given on the command line in
# order and prints one line per step, so the shell test can grep results.
#
#   perl smsc_sim_client.pl PORT STEP...
#
# Steps (each takes a fixed number of words):
#   bind MODE SYSTEM_ID PASSWORD   bind_resp status=0x...
#   submit SRC DST RD TEXT         submit_resp seq=N status=0x... id=ID ms=N
#                                  arrival=N (N-th PDU read)
#                                  (GSM text, data_coding 0)
#   submit_hex SRC DST ESM DC RD HEX   the same with raw short_message bytes
#   data_sm SRC DST RD TEXT        data_sm_resp seq=N status=0x... id=ID
#   deliver SECONDS                deliver seq=.. esm_class=.. ... text=TEXT
#                                  (answered with deliver_sm_resp ROK), or
#                                  "deliver none"
#   hold SECONDS                   the same, never answered
#   quiet SECONDS                  "quiet" if no deliver_sm arrives, else
#                                  the deliver line
#   enquire                        enquire_link_resp status=0x...
#   unbind                         unbind_resp status=0x...
#   raw HEX                        writes bytes as they are (prints "raw")
#   expect CMD SECONDS             pdu cmd=0x... status=0x... seq=N, or
#                                  "pdu none" (CMD in hex, e.g. 80000000)
#   eof SECONDS                    "eof" if the peer closes, else "open"
#   touch PATH / wait_file PATH SECONDS / sleep SECONDS
# Every wait is bounded (IO::Select); the whole run is capped at 60 s.
use strict;
use warnings;

use IO::Select;
use Net::SMPP;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);

$| = 1;
$SIG{PIPE} = 'IGNORE';
$SIG{ALRM} = sub { print "timeout\n"; exit 3 };
alarm 60;

my %BIND_RESP = (transceiver => 0x80000009, transmitter => 0x80000002,
	receiver => 0x80000001);
use constant {
	CMD_SUBMIT_RESP => 0x80000004, CMD_DELIVER_SM => 0x00000005,
	CMD_UNBIND_RESP => 0x80000006, CMD_ENQUIRE_RESP => 0x80000015,
	CMD_DATA_SM_RESP => 0x80000103,
};

my $port = shift @ARGV or die "usage: $0 PORT STEP...\n";
my $c = Net::SMPP->new_connect('127.0.0.1', port => $port,
	smpp_version => 0x34, async => 1, timeout => 5)
	or do { print "connect failed\n"; exit 2 };
setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
my @stash;    # PDUs read while waiting for another one
my $arrivals = 0;    # PDUs read so far: each gets its arrival number

# Reads one PDU if one arrives within $t seconds; undef at EOF or timeout.
# Net::SMPP warns about TLVs it does not know; that is expected here.
sub read_one {
	my ($t) = @_;
	return undef unless IO::Select->new($c)->can_read($t);
	local $SIG{__WARN__} = sub { };
	my $p = $c->read_pdu or return undef;
	$p->{arrival} = ++$arrivals;
	return $p;
}

# Waits for a PDU with command id $cmd (and $seq, if given).
sub wait_cmd {
	my ($cmd, $t, $seq) = @_;
	for my $i (0 .. $#stash) {
		my $p = $stash[$i];
		if ($p->{cmd} == $cmd && (!defined $seq || $p->{seq} == $seq)) {
			splice @stash, $i, 1;
			return $p;
		}
	}
	my $end = time + $t;
	while ((my $left = $end - time) > 0) {
		my $p = read_one($left) or return undef;
		return $p if $p->{cmd} == $cmd && (!defined $seq || $p->{seq} == $seq);
		push @stash, $p;
	}
	return undef;
}

sub status { sprintf('0x%08X', $_[0]{status}) }

# "NAME seq=N status=0x... id=ID ms=N arrival=N": ms since the request was
# sent, and the PDU's place in the order of arrival.
sub response_line {
	my ($name, $p, $seq, $sent) = @_;
	return "$name seq=$seq none" unless $p;
	return "$name seq=$seq status=" . status($p) . ' id=' . ($p->{message_id} // '')
		. sprintf(' ms=%d arrival=%d', (time - $sent) * 1000, $p->{arrival});
}

# One line describing a deliver_sm, acknowledged unless $hold.
sub deliver_line {
	my ($d, $hold) = @_;
	$c->deliver_sm_resp(seq => $d->{seq}, message_id => '') unless $hold;
	my $sm = $d->{short_message} // '';
	my $receipted = $d->{receipted_message_id} // '';
	$receipted =~ s/\0$//;
	my $state = defined $d->{message_state} ? unpack('C', $d->{message_state}) : '';
	return sprintf('deliver seq=%d esm_class=%d data_coding=%d source=%s '
		. 'source_ton=%d dest=%s dest_ton=%d receipted_message_id=%s '
		. 'message_state=%s arrival=%d hex=%s text=%s',
		$d->{seq}, $d->{esm_class}, $d->{data_coding}, $d->{source_addr},
		$d->{source_addr_ton}, $d->{destination_addr}, $d->{dest_addr_ton},
		$receipted, $state, $d->{arrival}, unpack('H*', $sm), $sm);
}

my %steps = (
	bind => [3, sub {
		my ($mode, $id, $pw) = @_;
		my $m = "bind_$mode";
		my $seq = $c->$m(system_id => $id, password => $pw, system_type => '');
		my $p = wait_cmd($BIND_RESP{$mode}, 5, $seq);
		return $p ? 'bind_resp status=' . status($p) : 'bind_resp none';
	}],
	submit => [4, sub {
		my ($src, $dst, $rd, $text) = @_;
		my $sent = time;
		my $seq = $c->submit_sm(source_addr_ton => 5, source_addr_npi => 0,
			source_addr => $src, dest_addr_ton => 1, dest_addr_npi => 1,
			destination_addr => $dst, data_coding => 0,
			registered_delivery => $rd, short_message => $text);
		return response_line('submit_resp', wait_cmd(CMD_SUBMIT_RESP, 5, $seq), $seq, $sent);
	}],
	submit_hex => [6, sub {
		my ($src, $dst, $esm, $dc, $rd, $hex) = @_;
		my $sent = time;
		my $seq = $c->submit_sm(source_addr_ton => 5, source_addr_npi => 0,
			source_addr => $src, dest_addr_ton => 1, dest_addr_npi => 1,
			destination_addr => $dst, esm_class => $esm, data_coding => $dc,
			registered_delivery => $rd, short_message => pack('H*', $hex));
		return response_line('submit_resp', wait_cmd(CMD_SUBMIT_RESP, 5, $seq), $seq, $sent);
	}],
	data_sm => [4, sub {
		my ($src, $dst, $rd, $text) = @_;
		my $sent = time;
		my $seq = $c->data_sm(source_addr => $src, destination_addr => $dst,
			esm_class => 0, registered_delivery => $rd, data_coding => 0,
			message_payload => $text);
		return response_line('data_sm_resp', wait_cmd(CMD_DATA_SM_RESP, 5, $seq), $seq, $sent);
	}],
	deliver => [1, sub {
		my $d = wait_cmd(CMD_DELIVER_SM, $_[0]);
		return $d ? deliver_line($d) : 'deliver none';
	}],
	hold => [1, sub {
		my $d = wait_cmd(CMD_DELIVER_SM, $_[0]);
		return $d ? deliver_line($d, 1) : 'deliver none';
	}],
	quiet => [1, sub {
		my $d = wait_cmd(CMD_DELIVER_SM, $_[0]);
		return $d ? deliver_line($d) : 'quiet';
	}],
	enquire => [0, sub {
		my $seq = $c->enquire_link;
		my $p = wait_cmd(CMD_ENQUIRE_RESP, 5, $seq);
		return $p ? 'enquire_link_resp status=' . status($p) : 'enquire_link_resp none';
	}],
	unbind => [0, sub {
		my $seq = $c->unbind;
		my $p = wait_cmd(CMD_UNBIND_RESP, 5, $seq);
		return $p ? 'unbind_resp status=' . status($p) : 'unbind_resp none';
	}],
	raw => [1, sub {
		syswrite($c, pack('H*', $_[0]));
		return 'raw';
	}],
	expect => [2, sub {
		my $p = wait_cmd(hex($_[0]), $_[1]);
		return 'pdu none' unless $p;
		return sprintf('pdu cmd=0x%08X status=%s seq=%d', $p->{cmd}, status($p), $p->{seq});
	}],
	eof => [1, sub {
		my $end = time + $_[0];
		while ((my $left = $end - time) > 0) {
			return 'open' unless IO::Select->new($c)->can_read($left);
			my $n = sysread($c, my $buf, 4096);
			return 'eof' if !defined $n || $n == 0;
		}
		return 'open';
	}],
	touch => [1, sub {
		open(my $fh, '>', $_[0]) or die "$_[0]: $!";
		close $fh;
		return "touched";
	}],
	wait_file => [2, sub {
		my ($path, $t) = @_;
		my $end = time + $t;
		while (time < $end) {
			return 'file' if -e $path;
			sleep 0.02;
		}
		return 'file none';
	}],
	sleep => [1, sub { sleep $_[0]; return 'slept' }],
);

while (@ARGV) {
	my $name = shift @ARGV;
	my $step = $steps{$name} or die "unknown step '$name'\n";
	my ($arity, $run) = @$step;
	die "step '$name' needs $arity arguments\n" if @ARGV < $arity;
	print $run->(splice(@ARGV, 0, $arity)), "\n";
}
close $c;
exit 0;
