#!/usr/bin/perl
# netsmpp_smsc.pl - a scripted upstream SMSC for nudge's integration tests.
#
# nudged binds to this script as an ESME, exactly as it would to a carrier
# SMSC. The PDUs on this side of the wire are encoded and decoded by Net::SMPP
# (Debian libnet-smpp-perl), third-party code, so nudge's SMPP codec is tested
# against something other than itself. One process, no fork: an IO::Select
# loop over the listen socket and every session, with a timer queue for
# delayed responses, delivery receipts and injected MO messages.
#
# Usage and the record/control formats: tests/integration/peers/README.md.
use strict;
use warnings;

use Getopt::Long qw(GetOptions);
use IO::Select;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);
use POSIX qw(strftime);
use JSON::PP;
use Net::SMPP;

use constant {
	ESME_ROK              => 0x00,
	ESME_RINVCMDLEN       => 0x02,
	ESME_RINVCMDID        => 0x03,
	ESME_RINVBNDSTS       => 0x04,
	ESME_RALYBND          => 0x05,
	ESME_RINVPASWD        => 0x0E,
	ESME_RINVSYSID        => 0x0F,
	ESME_RTHROTTLED       => 0x58,
	ESME_RINVOPTPARSTREAM => 0xC0,
	MAX_PDU               => 65536,   # larger command_length: not SMPP, close
	HOLD_S                => 1.0,     # receipt-before-response: max hold of a resp
	POLL_S                => 0.05,    # control file poll period
};

# message_state values (SMPP 3.4 5.2.28) for the receipt stat words.
my %MSG_STATE = (ENROUTE => 1, DELIVRD => 2, EXPIRED => 3, DELETED => 4,
                 UNDELIV => 5, ACCEPTD => 6, UNKNOWN => 7, REJECTD => 8);

my %opt = (
	host => '127.0.0.1', 'system-id' => 'nudge', password => 'secret',
	'first-id' => 1000, 'id-base' => 'hex', 'resp-delay-ms' => 0,
	'receipt-delay-ms' => 50, 'receipt-stat' => 'DELIVRD',
	'receipt-tlvs' => 1, 'receipt-before-response' => 0,
	'throttle-first' => 0, 'quit-after' => 600, redeliver => 0,
	'redeliver-delay-ms' => 1000,
);
GetOptions(\%opt, 'port=i', 'host=s', 'system-id=s', 'password=s',
	'first-id=i', 'id-base=s', 'receipt-id-base=s', 'resp-delay-ms=i',
	'receipt-delay-ms=i', 'receipt-stat=s', 'receipt-tlvs!',
	'receipt-before-response!', 'throttle-first=i', 'record=s',
	'control=s', 'pid-file=s', 'log=s', 'quit-after=f', 'redeliver!',
	'redeliver-delay-ms=i', 'help')
	or usage(2);
usage(0) if $opt{help};
usage(2) unless defined $opt{port};
$opt{'receipt-id-base'} //= $opt{'id-base'};
for my $k ('id-base', 'receipt-id-base') {
	die "--$k must be hex or dec\n" unless $opt{$k} =~ /^(hex|dec)$/;
}
die "--host must be a loopback address\n"
	unless $opt{host} =~ /^(127\.\d+\.\d+\.\d+|localhost|::1)$/;
my @stat_mix = parse_stat_mix($opt{'receipt-stat'});

# ---- global state -----------------------------------------------------------
my $json = JSON::PP->new->canonical(1)->ascii(1);
my ($log_fh, $rec_fh);
my %sessions;            # conn number -> session hash
my %by_sock;             # stringified socket ref -> session hash
my $conn_counter = 0;
my @sched;               # timer queue: hashes with due, order, type
my $sched_order = 0;
my $next_id = $opt{'first-id'};
my $throttle_left = $opt{'throttle-first'};
my $stall_until = 0;
my ($ctl_off, $ctl_partial) = (0, '');
my $next_poll = 0;
my $started = time;
my $deadline = $started + $opt{'quit-after'};

sub usage {
	print STDERR <<'EOT';
usage: netsmpp_smsc.pl --port P [--host 127.0.0.1] [--system-id ID] [--password PW]
  [--first-id N] [--id-base hex|dec] [--receipt-id-base hex|dec]
  [--resp-delay-ms N] [--receipt-delay-ms N] [--receipt-stat DELIVRD|"DELIVRD:90,UNDELIV:10"]
  [--[no-]receipt-tlvs] [--receipt-before-response] [--throttle-first N]
  [--record FILE] [--control FILE] [--pid-file FILE] [--log FILE] [--quit-after S]
  [--redeliver] [--redeliver-delay-ms N]
See tests/integration/peers/README.md.
EOT
	exit $_[0];
}

# "DELIVRD" or "DELIVRD:90,UNDELIV:10" -> list of [STAT, weight].
sub parse_stat_mix {
	my ($spec) = @_;
	my @mix;
	for my $part (split /,/, $spec) {
		my ($stat, $w) = split /:/, $part;
		$stat = uc($stat // '');
		$w //= 1;
		die "--receipt-stat: unknown stat '$stat'\n" unless $MSG_STATE{$stat};
		die "--receipt-stat: bad weight '$w'\n" unless $w =~ /^\d+$/ && $w > 0;
		push @mix, [$stat, $w];
	}
	die "--receipt-stat: empty\n" unless @mix;
	return @mix;
}

# Deterministic stat for a numeric message id: id modulo the weight sum,
# walking the buckets in the order given.
sub stat_for_id {
	my ($n) = @_;
	my $total = 0;
	$total += $_->[1] for @stat_mix;
	my $pos = $n % $total;
	for my $b (@stat_mix) {
		return $b->[0] if $pos < $b->[1];
		$pos -= $b->[1];
	}
	return $stat_mix[-1][0];
}

sub fmt_id {
	my ($n, $base) = @_;
	return $base eq 'hex' ? sprintf('%X', $n) : sprintf('%d', $n);
}

# One human-readable line per event (only with --log).
sub logmsg {
	return unless $log_fh;
	my $t = time;
	printf $log_fh "%s.%03d %s\n", strftime('%H:%M:%S', localtime $t),
		($t - int $t) * 1000, join('', @_);
}

# One JSON object per line in --record, flushed at once.
sub record {
	my ($h) = @_;
	return unless $rec_fh;
	$h->{time} = 0 + sprintf('%.6f', time);
	print $rec_fh $json->encode($h), "\n";
}

sub sess_name {
	my ($s) = @_;
	return "conn$s->{conn}" . ($s->{bind} ? "/$s->{bind}" : '');
}

# ---- scheduling -------------------------------------------------------------

sub schedule {
	my ($item) = @_;
	$item->{order} = ++$sched_order;
	push @sched, $item;
	return $item;
}

# Runs every due item; items that cannot run yet (no receiver bound, a
# response held behind its receipt) stay queued. Repeats while progress is
# made so a receipt sent this pass releases its held response at once.
sub run_due {
	my $progress = 1;
	while ($progress) {
		$progress = 0;
		my $now = time;
		my @keep;
		for my $it (sort { $a->{due} <=> $b->{due} || $a->{order} <=> $b->{order} } @sched) {
			if ($it->{due} > $now || !run_item($it, $now)) {
				push @keep, $it;
			} else {
				$progress++;
			}
		}
		@sched = @keep;
	}
}

# Seconds until the next item that could run; blocked items do not count.
sub next_wake {
	my $now = time;
	my $wake;
	for my $it (@sched) {
		my $t = $it->{due};
		if ($t <= $now) {
			next unless $it->{after};   # blocked on a receiver: poll only
			$t = $it->{after}{due} + HOLD_S;
			next if $t <= $now;
		}
		$wake = $t if !defined $wake || $t < $wake;
	}
	return defined $wake ? $wake - $now : undef;
}

# Returns true when the item is done (sent or dropped).
sub run_item {
	my ($it, $now) = @_;
	if ($it->{type} eq 'resp') {
		my $r = $it->{after};
		return 0 if $r && !$r->{sent} && $now < $r->{due} + HOLD_S;
		logmsg("receipt for $it->{message_id} not sent yet, releasing its response")
			if $r && !$r->{sent};
		send_resp($it);
		return 1;
	}
	return send_receipt($it) if $it->{type} eq 'receipt';
	return send_mo($it) if $it->{type} eq 'mo';
	return 1;
}

sub send_resp {
	my ($it) = @_;
	my $s = $it->{sess};
	if ($s->{closed}) {
		logmsg("drop $it->{cmd} seq=$it->{seq}: ", sess_name($s), " closed");
		return;
	}
	my $sock = $s->{sock};
	my @args = (seq => $it->{seq}, status => $it->{status},
	            message_id => $it->{message_id});
	if ($it->{cmd} eq 'data_sm_resp') {
		$sock->data_sm_resp(@args);
	} else {
		$sock->submit_sm_resp(@args);
	}
	logmsg(sess_name($s), " <- $it->{cmd} seq=$it->{seq} status=",
		sprintf('0x%02X', $it->{status}), " id=$it->{message_id}");
}

# A bound session that can take deliver_sm: rx/trx, not unbinding. The
# preferred session wins if it qualifies; otherwise the oldest one.
sub receiver_for {
	my ($system_id, $pref) = @_;
	return $pref if $pref && !$pref->{closed} && !$pref->{unbinding}
		&& ($pref->{bind} // '') eq 'trx';
	for my $c (sort { $a <=> $b } keys %sessions) {
		my $s = $sessions{$c};
		next if $s->{closed} || $s->{unbinding} || !$s->{bind};
		next unless $s->{bind} eq 'rx' || $s->{bind} eq 'trx';
		next unless $s->{system_id} eq $system_id;
		return $s;
	}
	return undef;
}

sub send_receipt {
	my ($it) = @_;
	my $s = receiver_for($it->{system_id}, $it->{pref});
	unless ($s) {
		logmsg("receipt for $it->{message_id} waits for a receiver")
			unless $it->{waiting}++;
		return 0;
	}
	my $done = strftime('%y%m%d%H%M', localtime);
	my $text = sprintf('id:%s sub:001 dlvrd:001 submit date:%s done date:%s stat:%s err:%s text:%s',
		$it->{receipt_id}, $it->{submit_date}, $done, $it->{stat},
		$it->{stat} eq 'DELIVRD' ? '000' : '001', $it->{text});
	my @tlvs;
	@tlvs = (receipted_message_id => "$it->{message_id}\0",
	         message_state => pack('C', $MSG_STATE{$it->{stat}}))
		if $opt{'receipt-tlvs'};
	my $seq = $s->{sock}->deliver_sm(
		service_type => '',
		source_addr_ton => $it->{dest_ton}, source_addr_npi => $it->{dest_npi},
		source_addr => $it->{dest},
		dest_addr_ton => $it->{src_ton}, dest_addr_npi => $it->{src_npi},
		destination_addr => $it->{src},
		esm_class => 0x04, protocol_id => 0, priority_flag => 0,
		schedule_delivery_time => '', validity_period => '',
		registered_delivery => 0, replace_if_present_flag => 0,
		data_coding => 0, sm_default_msg_id => 0,
		short_message => $text, @tlvs, async => 1);
	$it->{sent} = 1;
	$s->{inflight}{$seq} = { kind => 'receipt', message_id => $it->{message_id}, item => $it };
	logmsg(sess_name($s), " <- deliver_sm receipt seq=$seq: $text");
	record({ command => 'receipt_sent', conn => $s->{conn}, system_id => $s->{system_id},
		bind => $s->{bind}, seq => $seq, message_id => $it->{message_id},
		receipt_id => $it->{receipt_id}, stat => $it->{stat},
		source_addr => $it->{dest}, destination_addr => $it->{src},
		short_message_hex => unpack('H*', $text),
		tlvs => +{ tlv_hex(@tlvs) } });
	return 1;
}

sub send_mo {
	my ($it) = @_;
	my $s = receiver_for($opt{'system-id'}, undef);
	unless ($s) {
		logmsg("MO $it->{source} -> $it->{dest} waits for a receiver")
			unless $it->{waiting}++;
		return 0;
	}
	my $f = $it->{fields};
	my $seq = $s->{sock}->deliver_sm(
		service_type => $f->{service_type},
		source_addr_ton => $f->{source_addr_ton}, source_addr_npi => $f->{source_addr_npi},
		source_addr => $it->{source},
		dest_addr_ton => $f->{dest_addr_ton}, dest_addr_npi => $f->{dest_addr_npi},
		destination_addr => $it->{dest},
		esm_class => $it->{esm_class}, protocol_id => $f->{protocol_id},
		priority_flag => $f->{priority_flag},
		schedule_delivery_time => '', validity_period => '',
		registered_delivery => $f->{registered_delivery}, replace_if_present_flag => 0,
		data_coding => $it->{data_coding}, sm_default_msg_id => 0,
		short_message => $it->{sm}, @{$it->{tlvs}}, async => 1);
	$it->{sent} = 1;
	$s->{inflight}{$seq} = { kind => 'mo', item => $it };
	logmsg(sess_name($s), " <- deliver_sm MO seq=$seq $it->{source} -> $it->{dest} esm=",
		sprintf('0x%02X', $it->{esm_class}), " dc=$it->{data_coding} sm=", unpack('H*', $it->{sm}));
	record({ command => 'mo_sent', conn => $s->{conn}, system_id => $s->{system_id},
		bind => $s->{bind}, seq => $seq, source_addr => $it->{source},
		destination_addr => $it->{dest}, esm_class => $it->{esm_class},
		data_coding => $it->{data_coding}, short_message_hex => unpack('H*', $it->{sm}),
		tlvs => +{ tlv_hex(@{$it->{tlvs}}) } });
	return 1;
}

# ---- sessions ---------------------------------------------------------------

my $listen;
my $sel = IO::Select->new;

sub accept_session {
	my $sock = $listen->accept;
	return unless $sock;
	setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1)
		or logmsg("TCP_NODELAY failed: $!");
	my $s = { conn => ++$conn_counter, sock => $sock, buf => '', bind => undef,
	          system_id => '', inflight => {},
	          peer => $sock->peerhost . ':' . $sock->peerport };
	$sessions{$s->{conn}} = $s;
	$by_sock{$sock} = $s;
	$sel->add($sock);
	logmsg("conn$s->{conn} accepted from $s->{peer}");
}

# Closes a session; deliver_sm still waiting for a response are queued again
# with --redeliver (what a real SMSC does), otherwise only logged.
sub close_session {
	my ($s, $why) = @_;
	return if $s->{closed};
	$s->{closed} = 1;
	$sel->remove($s->{sock});
	close $s->{sock};
	delete $sessions{$s->{conn}};
	delete $by_sock{$s->{sock}};
	logmsg(sess_name($s), " closed: $why");
	for my $seq (sort { $a <=> $b } keys %{$s->{inflight}}) {
		my $inf = $s->{inflight}{$seq};
		if ($opt{redeliver}) {
			requeue($inf->{item}, 0);
		} else {
			logmsg(sess_name($s), " deliver_sm seq=$seq ($inf->{kind}) never answered");
		}
	}
	$s->{inflight} = {};
}

sub requeue {
	my ($it, $delay_s) = @_;
	my %copy = %$it;
	delete @copy{qw(sent waiting pref)};
	$copy{due} = time + $delay_s;
	$copy{redelivery} = ($it->{redelivery} // 0) + 1;
	schedule(\%copy);
	logmsg("requeued $copy{type} (redelivery $copy{redelivery})");
}

sub read_session {
	my ($s) = @_;
	my $n = sysread($s->{sock}, $s->{buf}, 65536, length $s->{buf});
	if (!defined $n) {
		return if $!{EINTR} || $!{EAGAIN};
		close_session($s, "read error: $!");
		return;
	}
	if ($n == 0) {
		close_session($s, 'peer closed the connection');
		return;
	}
	while (length($s->{buf}) >= 16) {
		my ($len, $cmd, $status, $seq) = unpack 'NNNN', $s->{buf};
		if ($len < 16 || $len > MAX_PDU) {
			logmsg(sess_name($s), " -> bad command_length $len, cmd=",
				sprintf('0x%08X', $cmd), ": generic_nack and close");
			$s->{sock}->generic_nack(seq => $seq, status => ESME_RINVCMDLEN);
			close_session($s, 'undecodable stream');
			return;
		}
		last if length($s->{buf}) < $len;
		my $raw = substr($s->{buf}, 0, $len, '');
		handle_pdu($s, $raw);
		return if $s->{closed};
	}
}

# Walks the TLVs after the mandatory part; returns [tag, value] pairs, or
# undef when they do not end exactly at the end of the body.
sub walk_tlvs {
	my ($data, $off) = @_;
	my @list;
	while ($off < length $data) {
		return undef if $off + 4 > length $data;
		my ($tag, $len) = unpack 'nn', substr($data, $off, 4);
		return undef if $off + 4 + $len > length $data;
		push @list, [$tag, substr($data, $off + 4, $len)];
		$off += 4 + $len;
	}
	return \@list;
}

# (name => raw, ...) -> (name => hex, ...)
sub tlv_hex {
	my @out;
	while (@_) {
		my ($k, $v) = splice @_, 0, 2;
		push @out, $k => unpack('H*', $v);
	}
	return @out;
}

sub tlv_name {
	my ($tag) = @_;
	my $p = Net::SMPP::param_tab()->{$tag};
	return $p ? $p->{name} : sprintf('tlv_0x%04x', $tag);
}

# Decodes one whole PDU with Net::SMPP's own decoders and dispatches it.
sub handle_pdu {
	my ($s, $raw) = @_;
	my ($len, $cmd, $status, $seq) = unpack 'NNNN', $raw;
	my $pdu = { cmd => $cmd, status => $status, seq => $seq, data => substr($raw, 16) };
	my $tab = $cmd < 0x00010000 || ($cmd >= 0x80000000 && $cmd < 0x80010000)
		? Net::SMPP::pdu_tab()->{$cmd} : undef;
	unless ($tab) {
		logmsg(sess_name($s), sprintf(' -> unknown command_id 0x%08X seq=%u', $cmd, $seq));
		$s->{sock}->generic_nack(seq => $seq, status => ESME_RINVCMDID)
			unless $cmd & 0x80000000;
		return;
	}
	my $name = $tab->{cmd};
	my $mandat;
	{
		local $SIG{__WARN__} = sub { logmsg('Net::SMPP: ', join('', @_) =~ s/\s+$//r) };
		$mandat = eval { $tab->{decode}->($pdu, $s->{sock}) };
	}
	my $body = length $pdu->{data};
	if (!defined $mandat || $mandat > $body) {
		logmsg(sess_name($s), " -> $name seq=$seq: mandatory fields overrun the body ($body octets)");
		$s->{sock}->generic_nack(seq => $seq, status => ESME_RINVCMDLEN)
			unless $cmd & 0x80000000;
		return;
	}
	my $tlvs = walk_tlvs($pdu->{data}, $mandat);
	unless ($tlvs) {
		logmsg(sess_name($s), " -> $name seq=$seq: broken TLV stream");
		$s->{sock}->generic_nack(seq => $seq, status => ESME_RINVOPTPARSTREAM)
			unless $cmd & 0x80000000;
		return;
	}
	{
		local $SIG{__WARN__} = sub { logmsg('Net::SMPP: ', join('', @_) =~ s/\s+$//r) };
		Net::SMPP::decode_optional_params($pdu, $mandat) if $mandat < $body;
	}
	$pdu->{tlv_list} = $tlvs;

	if ($name =~ /^bind_(transmitter|receiver|transceiver)$/) {
		handle_bind($s, $pdu, $1);
	} elsif ($name eq 'submit_sm' || $name eq 'data_sm') {
		handle_submit($s, $pdu, $name);
	} elsif ($name eq 'enquire_link') {
		$s->{sock}->enquire_link_resp(seq => $seq);
		logmsg(sess_name($s), " -> enquire_link seq=$seq, answered");
	} elsif ($name eq 'unbind') {
		handle_unbind($s, $seq);
	} elsif ($name eq 'unbind_resp') {
		logmsg(sess_name($s), " -> unbind_resp");
		close_session($s, 'unbind completed');
	} elsif ($name eq 'deliver_sm_resp' || $name eq 'generic_nack') {
		handle_deliver_resp($s, $pdu, $name);
	} elsif ($name eq 'enquire_link_resp') {
		logmsg(sess_name($s), " -> enquire_link_resp seq=$seq");
	} elsif ($cmd & 0x80000000) {
		logmsg(sess_name($s), " -> unexpected $name seq=$seq, ignored");
	} else {
		logmsg(sess_name($s), " -> unsupported $name seq=$seq: generic_nack");
		$s->{sock}->generic_nack(seq => $seq, status => ESME_RINVCMDID);
	}
}

sub handle_bind {
	my ($s, $pdu, $kind) = @_;
	my %short = (transmitter => 'tx', receiver => 'rx', transceiver => 'trx');
	my $status = ESME_ROK;
	if ($s->{bind}) {
		$status = ESME_RALYBND;
	} elsif ($pdu->{system_id} ne $opt{'system-id'}) {
		$status = ESME_RINVSYSID;
	} elsif ($pdu->{password} ne $opt{password}) {
		$status = ESME_RINVPASWD;
	}
	my $method = "bind_${kind}_resp";
	$s->{sock}->$method(seq => $pdu->{seq}, status => $status, system_id => 'netsmpp');
	logmsg(sess_name($s), " -> bind_$kind system_id=$pdu->{system_id} system_type=",
		"$pdu->{system_type} if=", sprintf('0x%02X', $pdu->{interface_version} // 0),
		sprintf(': status 0x%02X', $status));
	return if $status != ESME_ROK;
	$s->{bind} = $short{$kind};
	$s->{system_id} = $pdu->{system_id};
}

# The text of a receipt: the first 20 characters of a GSM/IA5/Latin-1 message
# (UDH skipped; message_payload when short_message is empty), else empty.
sub receipt_text {
	my ($pdu) = @_;
	my $sm = $pdu->{short_message} // '';
	$sm = $pdu->{message_payload} if $sm eq '' && defined $pdu->{message_payload};
	if (($pdu->{esm_class} // 0) & 0x40 && length $sm) {
		my $udhl = ord $sm;
		$sm = length($sm) > $udhl + 1 ? substr($sm, $udhl + 1) : '';
	}
	my $dc = $pdu->{data_coding} // 0;
	my $latin = $dc == 0 || $dc == 1 || $dc == 3 || ($dc & 0xF4) == 0xF0;
	return $latin ? substr($sm, 0, 20) : '';
}

sub handle_submit {
	my ($s, $pdu, $name) = @_;
	my $seq = $pdu->{seq};
	my $resp = $name eq 'data_sm' ? 'data_sm_resp' : 'submit_sm_resp';
	unless ($s->{bind} && ($s->{bind} eq 'tx' || $s->{bind} eq 'trx')) {
		logmsg(sess_name($s), " -> $name seq=$seq on a session not bound to send");
		my $m = $name eq 'data_sm' ? 'data_sm_resp' : 'submit_sm_resp';
		$s->{sock}->$m(seq => $seq, status => ESME_RINVBNDSTS, message_id => '');
		return;
	}
	my $now = time;
	my %rec = (command => $name, conn => $s->{conn}, system_id => $s->{system_id},
		bind => $s->{bind}, seq => $seq);
	$rec{$_} = $pdu->{$_} for qw(service_type source_addr_ton source_addr_npi source_addr
		dest_addr_ton dest_addr_npi destination_addr esm_class protocol_id priority_flag
		schedule_delivery_time validity_period registered_delivery
		replace_if_present_flag data_coding sm_default_msg_id);
	$rec{short_message_hex} = unpack('H*', $pdu->{short_message} // '');
	my %tl;
	for my $t (@{$pdu->{tlv_list}}) {
		my $tn = tlv_name($t->[0]);
		# Net::SMPP keeps every value under its numeric tag as well.
		$tl{$tn} = unpack('H*', $pdu->{$t->[0]} // $t->[1]);
	}
	$rec{tlvs} = \%tl;
	for my $tn (keys %tl) {
		$rec{$tn} = $tl{$tn} unless exists $rec{$tn};
	}

	if ($throttle_left > 0) {
		$throttle_left--;
		$rec{command} = "${name}_throttled";
		$rec{status} = ESME_RTHROTTLED;
		$rec{message_id} = undef;
		record(\%rec);
		logmsg(sess_name($s), " -> $name seq=$seq throttled ($throttle_left more to throttle)");
		schedule({ type => 'resp', due => $now + $opt{'resp-delay-ms'} / 1000,
			sess => $s, cmd => $resp, seq => $seq, status => ESME_RTHROTTLED,
			message_id => '' });
		return;
	}

	my $n = $next_id++;
	my $id = fmt_id($n, $opt{'id-base'});
	$rec{status} = ESME_ROK;
	$rec{message_id} = $id;
	record(\%rec);
	logmsg(sess_name($s), " -> $name seq=$seq ", $pdu->{source_addr} // '', ' -> ',
		$pdu->{destination_addr} // '', sprintf(' esm=0x%02X dc=%d rd=0x%02X',
		$pdu->{esm_class} // 0, $pdu->{data_coding} // 0, $pdu->{registered_delivery} // 0),
		" sm=$rec{short_message_hex} id=$id");

	my $rd = ($pdu->{registered_delivery} // 0) & 0x03;
	my $stat = stat_for_id($n);
	my $receipt;
	if ($rd == 1 || $rd == 3 || ($rd == 2 && $stat ne 'DELIVRD')) {
		$receipt = schedule({ type => 'receipt', due => $now + $opt{'receipt-delay-ms'} / 1000,
			system_id => $s->{system_id}, pref => $s, message_id => $id,
			receipt_id => fmt_id($n, $opt{'receipt-id-base'}), stat => $stat,
			submit_date => strftime('%y%m%d%H%M', localtime $now),
			text => receipt_text($pdu),
			src => $pdu->{source_addr}, src_ton => $pdu->{source_addr_ton},
			src_npi => $pdu->{source_addr_npi},
			dest => $pdu->{destination_addr}, dest_ton => $pdu->{dest_addr_ton},
			dest_npi => $pdu->{dest_addr_npi} });
	}
	my $r = schedule({ type => 'resp', due => $now + $opt{'resp-delay-ms'} / 1000,
		sess => $s, cmd => $resp, seq => $seq, status => ESME_ROK, message_id => $id });
	$r->{after} = $receipt if $receipt && $opt{'receipt-before-response'};
}

# Answers unbind after sending the responses still queued for the session.
sub handle_unbind {
	my ($s, $seq) = @_;
	my @keep;
	for my $it (sort { $a->{order} <=> $b->{order} } @sched) {
		if ($it->{type} eq 'resp' && $it->{sess} == $s) {
			send_resp($it);
		} else {
			push @keep, $it;
		}
	}
	@sched = @keep;
	$s->{sock}->unbind_resp(seq => $seq);
	logmsg(sess_name($s), " -> unbind seq=$seq, answered");
	close_session($s, 'unbound by the ESME');
}

sub handle_deliver_resp {
	my ($s, $pdu, $name) = @_;
	my $seq = $pdu->{seq};
	my $inf = delete $s->{inflight}{$seq};
	logmsg(sess_name($s), " -> $name seq=$seq status=", sprintf('0x%02X', $pdu->{status}),
		$inf ? " for $inf->{kind}" . ($inf->{message_id} ? " $inf->{message_id}" : '') : ' (unmatched)');
	record({ command => $name eq 'generic_nack' ? 'generic_nack' : 'deliver_sm_resp',
		conn => $s->{conn}, system_id => $s->{system_id}, bind => $s->{bind},
		seq => $seq, status => $pdu->{status},
		for => $inf ? $inf->{kind} : undef,
		message_id => $inf ? $inf->{message_id} : undef });
	requeue($inf->{item}, $opt{'redeliver-delay-ms'} / 1000)
		if $inf && $pdu->{status} != ESME_ROK && $opt{redeliver};
}

# ---- control file -----------------------------------------------------------

sub parse_num {
	my ($v) = @_;
	return undef unless defined $v && $v =~ /^(0x[0-9a-fA-F]+|\d+)$/;
	return $v =~ /^0x/i ? hex($v) : 0 + $v;
}

sub parse_hex {
	my ($v) = @_;
	return '' if !defined $v || $v eq '-' || $v eq '';
	return undef unless $v =~ /^(?:[0-9a-fA-F]{2})*$/;
	return pack('H*', $v);
}

# Default TON/NPI for an address given on a deliver line: "+digits" and
# digits are international/E.164, anything else alphanumeric.
sub addr_ton_npi {
	my ($addr) = @_;
	return ($addr, 1, 1) if $addr =~ s/^\+// || $addr =~ /^\d+$/;
	return ($addr, 5, 0);
}

# Reads only what was appended since the last poll. Lines already in the
# file when the script started are skipped (see poll start in main).
sub poll_control {
	return unless defined $opt{control};
	open(my $fh, '<', $opt{control}) or return;
	my $size = -s $fh // 0;
	if ($size < $ctl_off) {
		($ctl_off, $ctl_partial) = (0, '');
		logmsg('control file shrank: reading it from the start');
	}
	if ($size > $ctl_off) {
		seek($fh, $ctl_off, 0);
		my $got = read($fh, my $chunk, $size - $ctl_off);
		$ctl_off += $got if $got;
		$ctl_partial .= $chunk if $got;
	}
	close $fh;
	while ($ctl_partial =~ s/^([^\n]*)\n//) {
		control_command($1);
	}
}

sub control_command {
	my ($line) = @_;
	$line =~ s/^\s+|\s+$//g;
	return if $line eq '' || $line =~ /^#/;
	logmsg("control: $line");
	my ($verb, @a) = split /\s+/, $line;
	if ($verb eq 'deliver') {
		control_deliver(@a);
	} elsif ($verb eq 'drop') {
		close_session($_, 'dropped by control') for values %sessions;
	} elsif ($verb eq 'stall') {
		my $ms = parse_num($a[0]);
		return logmsg('control: stall needs milliseconds') unless defined $ms;
		$stall_until = time + $ms / 1000;
	} elsif ($verb eq 'unbind') {
		for my $s (values %sessions) {
			next unless $s->{bind};
			$s->{unbinding} = 1;
			my $seq = $s->{sock}->unbind(async => 1);
			logmsg(sess_name($s), " <- unbind seq=$seq");
		}
	} elsif ($verb eq 'quit') {
		logmsg('control: quit');
		exit 0;
	} else {
		logmsg("control: unknown command '$verb'");
	}
}

# deliver <source> <dest> <esm_class> <data_coding> <short_message_hex> [k=v ...]
# where k is a TLV name (Net::SMPP's names, or tlv_0xNNNN / 0xNNNN) with a hex
# value, or one of the mandatory fields below with a number / string.
sub control_deliver {
	my ($src, $dst, $esm, $dc, $smhex, @kv) = @_;
	my $sm = parse_hex($smhex);
	my ($e, $d) = (parse_num($esm), parse_num($dc));
	unless (defined $dst && defined $e && defined $d && defined $sm) {
		return logmsg('control: deliver <source> <dest> <esm_class> <data_coding> <sm_hex|-> [tlv=hex ...]');
	}
	my ($source, $sto, $snp) = addr_ton_npi($src);
	my ($dest, $dto, $dnp) = addr_ton_npi($dst);
	my %f = (service_type => '', source_addr_ton => $sto, source_addr_npi => $snp,
	         dest_addr_ton => $dto, dest_addr_npi => $dnp, protocol_id => 0,
	         priority_flag => 0, registered_delivery => 0);
	my @tlvs;
	for my $pair (@kv) {
		my ($k, $v) = split /=/, $pair, 2;
		$v //= '';
		if (exists $f{$k}) {
			$f{$k} = $k eq 'service_type' ? $v : parse_num($v) // 0;
			next;
		}
		if ($k =~ /^(?:tlv_)?0x([0-9a-fA-F]{1,4})$/) {
			my $tag = hex $1;
			$k = tlv_name($tag);
			$Net::SMPP::param_by_name{$k} = $tag;   # encode it by tag
		}
		my $val = parse_hex($v);
		unless ($Net::SMPP::param_by_name{$k} && defined $val) {
			return logmsg("control: deliver: unknown TLV or bad hex '$pair'");
		}
		push @tlvs, $k => $val;
	}
	schedule({ type => 'mo', due => time, source => $source, dest => $dest,
		esm_class => $e, data_coding => $d, sm => $sm, fields => \%f,
		tlvs => \@tlvs });
}

# ---- main -------------------------------------------------------------------

$SIG{PIPE} = 'IGNORE';
$SIG{TERM} = sub { logmsg('SIGTERM: exiting'); exit 0 };
$SIG{INT} = sub { logmsg('SIGINT: exiting'); exit 0 };
$SIG{ALRM} = sub { logmsg('quit-after backstop alarm: exiting'); exit 0 };
alarm(int($opt{'quit-after'}) + 2);

if (defined $opt{log}) {
	open($log_fh, '>>', $opt{log}) or die "open $opt{log}: $!\n";
	$log_fh->autoflush(1);
}
if (defined $opt{record}) {
	open($rec_fh, '>>', $opt{record}) or die "open $opt{record}: $!\n";
	$rec_fh->autoflush(1);
}
if (defined $opt{'pid-file'}) {
	open(my $p, '>', $opt{'pid-file'}) or die "open $opt{'pid-file'}: $!\n";
	print $p "$$\n";
	close $p;
}
if (defined $opt{control} && -e $opt{control}) {
	$ctl_off = -s $opt{control};
}

$listen = Net::SMPP->new_listen($opt{host}, port => $opt{port}, smpp_version => 0x34,
	async => 1, listen => 128)
	or die "listen on $opt{host}:$opt{port}: $!\n";
$sel->add($listen);
my $port = $listen->sockport;
logmsg("listening on $opt{host}:$port, system_id=$opt{'system-id'}, ids from ",
	"$opt{'first-id'} ($opt{'id-base'}, receipts $opt{'receipt-id-base'})");
$| = 1;
print "READY $port\n";

for (;;) {
	my $now = time;
	if ($now >= $deadline) {
		logmsg('quit-after reached: exiting');
		exit 0;
	}
	if ($now >= $next_poll) {
		poll_control();
		$next_poll = $now + POLL_S;
	}
	my $stalled = time < $stall_until;
	run_due() unless $stalled;

	my $timeout = $next_poll - time;
	if ($stalled) {
		my $left = $stall_until - time;
		$timeout = $left if $left < $timeout;
	} else {
		my $w = next_wake();
		$timeout = $w if defined $w && $w < $timeout;
	}
	my $left = $deadline - time;
	$timeout = $left if $left < $timeout;
	$timeout = 0 if $timeout < 0;

	if ($stalled) {
		select(undef, undef, undef, $timeout);   # not reading: the stall
		next;
	}
	for my $fh ($sel->can_read($timeout)) {
		if ($fh == $listen) {
			accept_session();
			next;
		}
		my $s = $by_sock{$fh};
		read_session($s) if $s;
	}
}
