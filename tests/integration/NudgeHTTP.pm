# NudgeHTTP.pm - a minimal keep-alive HTTP/1.1 client for the integration
# scripts. Unlike HTTP::Tiny it sets TCP_NODELAY and writes each request in
# one send, so requests are not held ~40 ms by Nagle + delayed ACK.
package NudgeHTTP;
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);

sub new {
	my ($class, $port, $token) = @_;
	return bless { port => $port, token => $token, socket => undef },
	    $class;
}

sub connect_socket {
	my ($self) = @_;
	my $socket = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
	    PeerPort => $self->{port}, Proto => 'tcp', Timeout => 5)
	    or return undef;
	setsockopt($socket, IPPROTO_TCP, TCP_NODELAY, 1);
	binmode $socket;
	$self->{socket} = $socket;
	$self->{buffer} = '';
	return $socket;
}

# request(METHOD, PATH, BODY): returns (status, content); status 599 when
# the connection failed (refused, reset, closed mid-answer).
sub request {
	my ($self, $method, $path, $body) = @_;
	$body = '' unless defined $body;
	for my $attempt (1, 2) {
		my $socket = $self->{socket} || $self->connect_socket
		    or return (599, '');
		my $request = "$method $path HTTP/1.1\r\nHost: 127.0.0.1\r\n" .
		    "Authorization: Bearer $self->{token}\r\n" .
		    "Content-Type: application/json\r\n" .
		    "Content-Length: " . length($body) . "\r\n\r\n" . $body;
		if (!defined syswrite($socket, $request)) {
			$self->{socket} = undef;
			next;
		}
		my ($status, $content) = $self->read_response;
		if (!defined $status) {
			$self->{socket} = undef;
			# A request written on a dead keep-alive socket: once more.
			next if $attempt == 1 && $self->{fresh_failure};
			return (599, '');
		}
		return ($status, $content);
	}
	return (599, '');
}

sub fill {
	my ($self) = @_;
	my $n = sysread($self->{socket}, my $chunk, 65536);
	return 0 unless $n;
	$self->{buffer} .= $chunk;
	return 1;
}

sub read_response {
	my ($self) = @_;
	$self->{fresh_failure} = length($self->{buffer}) == 0;
	while ($self->{buffer} !~ /\r\n\r\n/) {
		$self->fill or return;
	}
	$self->{fresh_failure} = 0;
	my $end = index($self->{buffer}, "\r\n\r\n");
	my $head = substr($self->{buffer}, 0, $end);
	substr($self->{buffer}, 0, $end + 4) = '';
	my ($status) = $head =~ m{^HTTP/1\.\d (\d+)} or return;
	my ($length) = $head =~ /^Content-Length:\s*(\d+)/mi;
	$length = 0 unless defined $length;
	while (length($self->{buffer}) < $length) {
		$self->fill or return;
	}
	my $content = substr($self->{buffer}, 0, $length);
	substr($self->{buffer}, 0, $length) = '';
	$self->{socket} = undef if $head =~ /^Connection:\s*close/mi;
	return ($status, $content);
}

1;
