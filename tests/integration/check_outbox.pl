#!/usr/bin/perl
# check_outbox.pl PORT TOKEN ACCEPTED RECORD PREFIX WAIT - after a run, holds
# nudged to its promises: every message that got a 202 (lines "k id" in
# ACCEPTED) must be in the store and reach the SMSC (smsc-sim --record file
# RECORD) exactly once, or be UNKNOWN (sent, fate unknown: at most once).
# Waits up to WAIT seconds for messages to leave QUEUED/SUBMITTING. Prints the
# counts; exits 1 on any duplicate, loss or message stuck in the queue.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use JSON::PP;
use NudgeHTTP;
use Time::HiRes qw(time sleep);

my ($port, $token, $accepted_file, $record_file, $prefix, $wait) = @ARGV;
die "usage: check_outbox.pl PORT TOKEN ACCEPTED RECORD PREFIX WAIT\n"
    unless defined $wait;
my $http = NudgeHTTP->new($port, $token);

my %accepted;	# k -> id
open(my $fh, '<', $accepted_file) or die "$accepted_file: $!\n";
while (<$fh>) {
	my ($k, $id) = split;
	$accepted{$k} = $id if defined $id;
}
close $fh;

sub state_of {
	my ($id) = @_;
	my ($status, $content) = $http->request('GET', "/v1/messages/$id");
	return $status == 404 ? 'MISSING' : 'ERROR' if $status != 200;
	return decode_json($content)->{state};
}

# Wait for every accepted message to leave the queue.
my $deadline = time + $wait;
my %state;
for (;;) {
	my $busy = 0;
	for my $k (keys %accepted) {
		next if defined $state{$k} && $state{$k} !~ /^(QUEUED|SUBMITTING|SUBMITTED)$/;
		$state{$k} = state_of($accepted{$k});
		$busy++ if $state{$k} =~ /^(QUEUED|SUBMITTING)$/;
	}
	last if $busy == 0 || time > $deadline;
	sleep 0.2;
}

# How often each text reached the SMSC.
my %seen;
open($fh, '<', $record_file) or die "$record_file: $!\n";
while (<$fh>) {
	my @f = split;
	next unless @f >= 9;
	my $text = pack('H*', $f[8]);
	$seen{$1}++ if $text =~ /^\Q$prefix\E (\d+)$/;
}
close $fh;

my %count = (accepted => scalar keys %accepted, at_sink_once => 0,
    unknown => 0, unknown_reached_sink => 0, duplicates => 0, lost => 0,
    stuck => 0, missing => 0);
my %states;
for my $k (keys %accepted) {
	my $st = $state{$k};
	my $n = $seen{$k} // 0;
	$states{$st}++;
	$count{duplicates}++ if $n > 1;
	$count{missing}++ if $st eq 'MISSING' || $st eq 'ERROR';
	$count{stuck}++ if $st =~ /^(QUEUED|SUBMITTING)$/;
	if ($st eq 'UNKNOWN') {
		$count{unknown}++;
		$count{unknown_reached_sink}++ if $n == 1;
	} elsif ($n == 1) {
		$count{at_sink_once}++;
	} elsif ($n == 0 && $st !~ /^(QUEUED|SUBMITTING)$/) {
		$count{lost}++;
		print STDERR "lost: k=$k id=$accepted{$k} state=$st\n";
	}
}
# Texts that reached the sink without a 202 (accepted, killed before the reply).
my $unpromised = grep { !exists $accepted{$_} } keys %seen;
print join(' ', map { "$_=$count{$_}" } sort keys %count),
    " sent_without_202=$unpromised\n";
print "states: ", join(' ', map { "$_=$states{$_}" } sort keys %states), "\n";
exit(($count{duplicates} || $count{lost} || $count{stuck} ||
    $count{missing}) ? 1 : 0);
