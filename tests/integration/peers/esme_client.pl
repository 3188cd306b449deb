#!/usr/bin/perl
# esme_client.pl - a scripted ESME on Net::SMPP (third-party code) for the
# tests of nudged's SMPP server side: it connects to 127.0.0.1:PORT, runs the
# steps given on the command line in order and prints one line per step, so
# the shell tests can grep the results.
#
#   perl esme_client.pl [--local ADDR] [--limit S] PORT STEP...
#
# --local binds the client socket to ADDR (e.g. 127.0.0.2) before it
# connects; --limit caps the whole run (60 s). Steps take a fixed number of
# words:
#   bind MODE SYSTEM_ID PASSWORD      bind_resp status=0x... system_id=ID
#   submit SRC DST RD TEXT            submit_resp seq=N status=0x... id=ID
#                                     (GSM text, data_coding 0)
#   submit_hex SRC DST ESM DC RD HEX  the same with raw short_message bytes
#   burst N SRC DST RD TEXT           N submit_sm sent back to back ("TEXT k"),
#                                     then every response collected:
#                                     burst sent=N ok=N throttled=N other=N
#                                     missing=N ids=ID,ID,... (in submit order)
#   flood N WINDOW SRC RD PREFIX OUT  up to N submits "PREFIX k" to
#                                     +39340<k in 7 digits>, WINDOW of them
#                                     outstanding; each accepted one appends
#                                     "k id" to OUT at once (flushed); stops
#                                     early if the connection goes away:
#                                     flood sent=N acked=N refused=N eof=0|1
#   trickle PATH SRC DST TEXT         one submit "TEXT k" every 100 ms, each
#                                     awaited, until PATH exists (at most
#                                     30 s): trickle sent=N ok=N failed=N
#   query ID SRC                      query_resp status=0x... id=ID state=N
#                                     error=N final_date=DATE
#   cancel ID SRC DST                 cancel_resp status=0x...
#   deliver SECONDS                   deliver seq=.. esm_class=.. ... text=TEXT
#                                     (answered with deliver_sm_resp ROK), or
#                                     "deliver none"
#   hold SECONDS                      the same, never answered
#   quiet SECONDS                     "quiet" if no deliver_sm arrives, else
#                                     the deliver line
#   enquire                           enquire_link_resp status=0x...
#   unbind                            unbind_resp status=0x...
#   raw HEX                           writes bytes as they are ("raw")
#   expect CMD SECONDS                pdu cmd=0x... status=0x... seq=N, or
#                                     "pdu none" (CMD in hex, e.g. 80000000)
#   eof SECONDS                       "eof" if the peer closes, else "open"
#   touch PATH / wait_file PATH SECONDS / sleep SECONDS
# Every wait is bounded (IO::Select). An enquire_link from nudged is
# answered whenever the client reads.
use strict;
use warnings;

use Getopt::Long qw(:config require_order);
use IO::Select;
use Net::SMPP;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);

$| = 1;
$SIG{PIPE} = 'IGNORE';
$SIG{ALRM} = sub { print "timeout\n"; exit 3 };

my ($local, $limit) = (undef, 60);
GetOptions('local=s' => \$local, 'limit=i' => \$limit)
    or die "usage: $0 [--local ADDR] [--limit S] PORT STEP...\n";
alarm $limit;

my %BIND_RESP = (transceiver => 0x80000009, transmitter => 0x80000002,
	receiver => 0x80000001);
use constant {
	CMD_QUERY_RESP => 0x80000003, CMD_SUBMIT_RESP => 0x80000004,
	CMD_DELIVER_SM => 0x00000005, CMD_UNBIND_RESP => 0x80000006,
	CMD_CANCEL_RESP => 0x80000008, CMD_ENQUIRE => 0x00000015,
	CMD_ENQUIRE_RESP => 0x80000015, ESME_RTHROTTLED => 0x58,
};

my $port = shift @ARGV or die "usage: $0 [--local ADDR] PORT STEP...\n";
my $c = Net::SMPP->new_connect('127.0.0.1', port => $port,
	smpp_version => 0x34, async => 1, timeout => 5,
	defined $local ? (local_ip => $local) : ())
	or do { print "connect failed\n"; exit 2 };
setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
my @stash;		# PDUs read while waiting for another one
my $closed = 0;		# the peer closed the connection

# Reads one PDU if one arrives within $t seconds; undef at EOF or timeout.
# enquire_link from the server is answered here and not returned.
sub read_one {
	my ($t) = @_;
	my $end = time + $t;
	for (;;) {
		my $left = $end - time;
		return undef if $left < 0 || $closed;
		return undef unless IO::Select->new($c)->can_read($left);
		# Net::SMPP warns about TLVs it does not know; expected here.
		local $SIG{__WARN__} = sub { };
		my $p = $c->read_pdu or do { $closed = 1; return undef };
		if ($p->{cmd} == CMD_ENQUIRE) {
			$c->enquire_link_resp(seq => $p->{seq});
			next;
		}
		return $p;
	}
}

# Waits for a PDU with command id $cmd (and $seq, if given), keeping the
# others for later steps.
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

# A submit_sm of GSM text or raw octets; returns its sequence number.
sub send_submit {
	my ($src, $dst, $rd, $octets, $esm, $dc) = @_;
	return $c->submit_sm(source_addr_ton => $src =~ /^\d+$/ ? 1 : 5,
		source_addr_npi => $src =~ /^\d+$/ ? 1 : 0, source_addr => $src,
		dest_addr_ton => 1, dest_addr_npi => 1, destination_addr => $dst,
		esm_class => $esm // 0, data_coding => $dc // 0,
		registered_delivery => $rd, short_message => $octets);
}

sub submit_line {
	my ($p, $seq) = @_;
	return "submit_resp seq=$seq none" unless $p;
	return "submit_resp seq=$seq status=" . status($p) . ' id='
		. ($p->{message_id} // '');
}

# One line describing a deliver_sm, acknowledged unless $hold.
sub deliver_line {
	my ($d, $hold) = @_;
	$c->deliver_sm_resp(seq => $d->{seq}, message_id => '') unless $hold;
	my $sm = $d->{short_message} // '';
	my $receipted = $d->{receipted_message_id} // '';
	$receipted =~ s/\0$//;
	my $state = defined $d->{message_state} ?
		unpack('C', $d->{message_state}) : '';
	return sprintf('deliver seq=%d esm_class=%d data_coding=%d source=%s '
		. 'dest=%s receipted_message_id=%s message_state=%s hex=%s text=%s',
		$d->{seq}, $d->{esm_class}, $d->{data_coding}, $d->{source_addr},
		$d->{destination_addr}, $receipted, $state, unpack('H*', $sm), $sm);
}

# burst: every submit first, then every response (bounded by 10 s).
sub burst {
	my ($n, $src, $dst, $rd, $text) = @_;
	my @seqs = map { send_submit($src, $dst, $rd, "$text $_") } 1 .. $n;
	my (%count, @ids);
	$count{$_} = 0 for qw(ok throttled other missing);
	my $end = time + 10;
	for my $seq (@seqs) {
		my $p = wait_cmd(CMD_SUBMIT_RESP, $end - time, $seq);
		if (!$p) {
			$count{missing}++;
		} elsif ($p->{status} == 0) {
			$count{ok}++;
			push @ids, $p->{message_id};
		} elsif ($p->{status} == ESME_RTHROTTLED) {
			$count{throttled}++;
		} else {
			$count{other}++;
		}
	}
	return "burst sent=$n ok=$count{ok} throttled=$count{throttled} "
		. "other=$count{other} missing=$count{missing} ids=" . join(',', @ids);
}

# flood: keeps $window submits outstanding; every ROK is a promise written
# to $out before anything else happens, so a test may kill nudged mid-way.
sub flood {
	my ($n, $window, $src, $rd, $prefix, $out) = @_;
	open(my $fh, '>>', $out) or die "$out: $!\n";
	$fh->autoflush(1);
	my %outstanding;	# seq -> k
	my ($k, $acked, $refused) = (0, 0, 0);
	while (!$closed && ($k < $n || %outstanding)) {
		while ($k < $n && keys %outstanding < $window) {
			$k++;
			my $seq = send_submit($src, sprintf('39340%07d', $k),
				$rd, "$prefix $k");
			if (!defined $seq) {
				$closed = 1;
				last;
			}
			$outstanding{$seq} = $k;
		}
		my $p = read_one(10) or last;
		if ($p->{cmd} == CMD_DELIVER_SM) {
			$c->deliver_sm_resp(seq => $p->{seq}, message_id => '');
			next;
		}
		next unless $p->{cmd} == CMD_SUBMIT_RESP;
		my $which = delete $outstanding{$p->{seq}};
		next unless defined $which;
		if ($p->{status} == 0) {
			print $fh "$which $p->{message_id}\n";
			$acked++;
		} else {
			$refused++;
		}
	}
	close $fh;
	return "flood sent=$k acked=$acked refused=$refused eof=$closed";
}

# trickle: a well-behaved session that keeps submitting while a test
# abuses the server next to it.
sub trickle {
	my ($path, $src, $dst, $text) = @_;
	my ($k, $ok, $failed) = (0, 0, 0);
	my $end = time + 30;
	while (!-e $path && time < $end && !$closed) {
		$k++;
		my $seq = send_submit($src, $dst, 0, "$text $k");
		my $p = wait_cmd(CMD_SUBMIT_RESP, 5, $seq);
		if ($p && $p->{status} == 0) {
			$ok++;
		} else {
			$failed++;
		}
		sleep 0.1;
	}
	return "trickle sent=$k ok=$ok failed=$failed";
}

my %steps = (
	bind => [3, sub {
		my ($mode, $id, $pw) = @_;
		my $m = "bind_$mode";
		my $seq = $c->$m(system_id => $id, password => $pw,
			system_type => '');
		my $p = wait_cmd($BIND_RESP{$mode}, 15, $seq);
		return 'bind_resp none' unless $p;
		return 'bind_resp status=' . status($p) . ' system_id='
			. ($p->{system_id} // '');
	}],
	submit => [4, sub {
		my ($src, $dst, $rd, $text) = @_;
		my $seq = send_submit($src, $dst, $rd, $text);
		return submit_line(wait_cmd(CMD_SUBMIT_RESP, 5, $seq), $seq);
	}],
	submit_hex => [6, sub {
		my ($src, $dst, $esm, $dc, $rd, $hex) = @_;
		my $seq = send_submit($src, $dst, $rd, pack('H*', $hex), $esm, $dc);
		return submit_line(wait_cmd(CMD_SUBMIT_RESP, 5, $seq), $seq);
	}],
	burst => [5, \&burst],
	flood => [6, \&flood],
	trickle => [4, \&trickle],
	query => [2, sub {
		my ($id, $src) = @_;
		my $seq = $c->query_sm(message_id => $id, source_addr => $src,
			source_addr_ton => $src =~ /^\d+$/ ? 1 : 5,
			source_addr_npi => $src =~ /^\d+$/ ? 1 : 0);
		my $p = wait_cmd(CMD_QUERY_RESP, 5, $seq);
		return 'query_resp none' unless $p;
		return 'query_resp status=' . status($p) . ' id='
			. ($p->{message_id} // '') . ' state='
			. ($p->{message_state} // '') . ' error='
			. ($p->{error_code} // '') . ' final_date='
			. ($p->{final_date} // '');
	}],
	cancel => [3, sub {
		my ($id, $src, $dst) = @_;
		my $seq = $c->cancel_sm(message_id => $id, service_type => '',
			source_addr => $src,
			source_addr_ton => $src =~ /^\d+$/ ? 1 : 5,
			source_addr_npi => $src =~ /^\d+$/ ? 1 : 0,
			destination_addr => $dst, dest_addr_ton => 1,
			dest_addr_npi => 1);
		my $p = wait_cmd(CMD_CANCEL_RESP, 5, $seq);
		return $p ? 'cancel_resp status=' . status($p) : 'cancel_resp none';
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
		return $p ? 'enquire_link_resp status=' . status($p)
			: 'enquire_link_resp none';
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
		return sprintf('pdu cmd=0x%08X status=%s seq=%d', $p->{cmd},
			status($p), $p->{seq});
	}],
	eof => [1, sub {
		return 'eof' if $closed;
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
		return 'touched';
	}],
	wait_file => [2, sub {
		my ($path, $t) = @_;
		my $end = time + $t;
		while (time < $end) {
			return 'file' if -e $path;
			# Keep answering enquire_link while waiting.
			my $p = read_one(0.05);
			push @stash, $p if $p;
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
