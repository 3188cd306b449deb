#!/usr/bin/perl
# jsonq.pl PATH [FILE] - prints one value of a JSON document (stdin or FILE),
# for shell tests: PATH is like .state, .parts[1].smsc_id or .results.length
# (the length of an array). Objects and arrays print as compact JSON; a
# missing value prints nothing and exits 1. Core Perl only (JSON::PP).
use strict;
use warnings;
use JSON::PP;

my $path = shift @ARGV or die "usage: jsonq.pl PATH [FILE]\n";
local $/;
my $text = <>;
my $value = JSON::PP->new->allow_nonref->decode($text);
for my $step ($path =~ /\.([^.\[]+)|\[(\d+)\]/g) {
	next unless defined $step;
	if ($step eq 'length' && ref $value eq 'ARRAY') {
		$value = scalar @$value;
	} elsif (ref $value eq 'HASH') {
		exit 1 unless exists $value->{$step};
		$value = $value->{$step};
	} elsif (ref $value eq 'ARRAY' && $step =~ /^\d+$/) {
		exit 1 if $step >= @$value;
		$value = $value->[$step];
	} else {
		exit 1;
	}
}
if (ref $value) {
	print JSON::PP->new->canonical->encode($value), "\n";
} elsif (!defined $value) {
	print "null\n";
} else {
	print "$value\n";
}
