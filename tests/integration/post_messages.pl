#!/usr/bin/perl
# post_messages.pl PORT TOKEN COUNT PREFIX OUT [BATCH] - posts COUNT messages
# to nudged's POST /v1/messages over one keep-alive connection (NudgeHTTP), texts "PREFIX <k>", numbers +39340<7 digits of k>. Every 202 is
# a promise: its "k id" line goes to OUT at once (flushed), so a test can
# kill nudged mid-stream and still know exactly what was promised. Stops at
# the first connection error. BATCH > 1 uses the batch form.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use JSON::PP;
use NudgeHTTP;

my ($port, $token, $count, $prefix, $out, $batch) = @ARGV;
die "usage: post_messages.pl PORT TOKEN COUNT PREFIX OUT [BATCH]\n"
    unless defined $out;
$batch ||= 1;
open(my $fh, '>>', $out) or die "$out: $!\n";
$fh->autoflush(1);
my $http = NudgeHTTP->new($port, $token);
my $json = JSON::PP->new->utf8;
my ($accepted, $refused) = (0, 0);

sub message {
	my ($k) = @_;
	return { to => sprintf('+39340%07d', $k), text => "$prefix $k" };
}

for (my $k = 1; $k <= $count; $k += $batch) {
	my @ks = grep { $_ <= $count } $k .. $k + $batch - 1;
	my $body = $batch > 1 ? { messages => [ map { message($_) } @ks ] } :
	    message($k);
	my ($status, $content) = $http->request('POST', '/v1/messages',
	    $json->encode($body));
	last if $status == 599;	# connection refused or reset
	if ($status != 202) {
		$refused += @ks;
		next;
	}
	my $reply = $json->decode($content);
	my @results = $batch > 1 ? @{$reply->{results}} : ($reply);
	for my $i (0 .. $#ks) {
		if (defined $results[$i]{id}) {
			print $fh "$ks[$i] $results[$i]{id}\n";
			$accepted++;
		} else {
			$refused++;
		}
	}
}
print "posted: accepted=$accepted refused=$refused\n";
