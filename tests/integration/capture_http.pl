#!/usr/bin/perl
# capture_http.pl --port P --out FILE [--fail-first N] [--quit-after S] -
# an HTTP server for tests that records every request as one JSON line
# {time, method, path, query, body} in FILE and answers 200 "ok" (the first
# N requests get 503, to exercise retries). One process, IO::Select, a
# large listen backlog (Kannel's callbacks stall on a small one), keep-alive.
use strict;
use warnings;
use Getopt::Long;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

my ($port, $out, $fail_first, $quit_after) = (0, undef, 0, 600);
GetOptions('port=i' => \$port, 'out=s' => \$out,
    'fail-first=i' => \$fail_first, 'quit-after=i' => \$quit_after)
    or die "usage: capture_http.pl --port P --out FILE\n";
die "--out is required\n" unless defined $out;
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
alarm $quit_after;
my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
    LocalPort => $port, Listen => 256, ReuseAddr => 1) or die "listen: $!\n";
open(my $record, '>>', $out) or die "$out: $!\n";
$record->autoflush(1);
$| = 1;
print "READY ", $listen->sockport, "\n";
my $select = IO::Select->new($listen);
my %buffer;
my $json = JSON::PP->new->canonical;
my $seen = 0;

# Answers every whole request in a connection's buffer.
sub serve {
	my ($socket) = @_;
	my $data = \$buffer{$socket};
	while ($$data =~ /\r\n\r\n/) {
		my $end = index($$data, "\r\n\r\n");
		my $head = substr($$data, 0, $end);
		my ($length) = $head =~ /^Content-Length:\s*(\d+)/mi;
		$length ||= 0;
		return if length($$data) < $end + 4 + $length;
		my $body = substr($$data, $end + 4, $length);
		substr($$data, 0, $end + 4 + $length) = '';
		my ($method, $target) = $head =~ /^(\S+) (\S+)/;
		my ($path, $query) = split /\?/, $target, 2;
		print $record $json->encode({ time => time, method => $method,
		    path => $path, query => $query // '', body => $body }), "\n";
		my $status = ++$seen <= $fail_first ? '503 Busy' : '200 OK';
		syswrite($socket, "HTTP/1.1 $status\r\nContent-Length: 2\r\n" .
		    "Content-Type: text/plain\r\n\r\nok");
	}
}

for (;;) {
	for my $socket ($select->can_read(1)) {
		if ($socket == $listen) {
			my $client = $listen->accept or next;
			setsockopt($client, IPPROTO_TCP, TCP_NODELAY, 1);
			$buffer{$client} = '';
			$select->add($client);
			next;
		}
		my $n = sysread($socket, my $chunk, 65536);
		if (!$n) {
			$select->remove($socket);
			delete $buffer{$socket};
			close $socket;
			next;
		}
		$buffer{$socket} .= $chunk;
		serve($socket);
	}
}
