#!/usr/bin/perl
# sink_texts.pl RECORD [DESTINATION] - the SMS texts smsc-sim recorded, one
# line each in arrival order: "destination<TAB>text" (UTF-8, newlines shown
# as \n). GSM 03.38 (unpacked) and UCS-2 are decoded; the parts of a long
# message (UDH 8-bit concatenation) are joined in order.
use strict;
use warnings;
use Encode qw(decode);

my ($record, $only) = @ARGV;
die "usage: sink_texts.pl RECORD [DESTINATION]\n" unless defined $record;
binmode STDOUT, ':encoding(UTF-8)';
# GSM 03.38 positions that are not ASCII, and the extension table.
my @low = ('@', "\x{a3}", '$', "\x{a5}", "\x{e8}", "\x{e9}", "\x{f9}", "\x{ec}",
    "\x{f2}", "\x{c7}", "\n", "\x{d8}", "\x{f8}", "\r", "\x{c5}", "\x{e5}",
    "\x{394}", '_', "\x{3a6}", "\x{393}", "\x{39b}", "\x{3a9}", "\x{3a0}",
    "\x{3a8}", "\x{3a3}", "\x{398}", "\x{39e}", "\e", "\x{c6}", "\x{e6}",
    "\x{df}", "\x{c9}");
my %gsm = (0x24 => "\x{a4}", 0x40 => "\x{a1}", 0x5B => "\x{c4}",
    0x5C => "\x{d6}", 0x5D => "\x{d1}", 0x5E => "\x{dc}", 0x5F => "\x{a7}",
    0x60 => "\x{bf}", 0x7B => "\x{e4}", 0x7C => "\x{f6}", 0x7D => "\x{f1}",
    0x7E => "\x{fc}", 0x7F => "\x{e0}");
$gsm{$_} = $low[$_] for 0 .. 31;
my %extension = (0x0A => "\f", 0x14 => '^', 0x28 => '{', 0x29 => '}',
    0x2F => '\\', 0x3C => '[', 0x3D => '~', 0x3E => ']', 0x40 => '|',
    0x65 => "\x{20ac}");

sub gsm_text {
	my @septets = @_;
	my $text = '';
	for (my $i = 0; $i < @septets; $i++) {
		my $c = $septets[$i];
		if ($c == 0x1B && $i + 1 < @septets) {
			$text .= $extension{$septets[++$i]} // '?';
		} else {
			$text .= $gsm{$c} // chr($c);
		}
	}
	return $text;
}

my (@order, %parts, %total);
open(my $fh, '<', $record) or die "$record: $!\n";
while (<$fh>) {
	my ($id, $seq, $source, $dest, $esm, $coding, $rd, $length, $hex) = split;
	next unless defined $hex;
	next if defined $only && $dest ne $only;
	my @octets = map { hex } ($hex =~ /(..)/g);
	my ($reference, $count, $number) = ('', 1, 1);
	if ($esm & 0x40) {
		my $udh_length = $octets[0];
		my @udh = splice(@octets, 0, $udh_length + 1);
		if ($udh[1] == 0 && $udh[2] == 3) {
			($reference, $count, $number) = @udh[3, 4, 5];
		}
	}
	my $text = $coding == 8 ? decode('UTF-16BE', pack('C*', @octets)) :
	    gsm_text(@octets);
	my $key = "$dest/$reference";
	$key .= "/" . scalar(@order) if $reference eq '';
	push @order, $key unless exists $parts{$key};
	$parts{$key}[$number - 1] = $text;
	$total{$key} = $count;
}
for my $key (@order) {
	my ($dest) = split m{/}, $key;
	my $text = join('', map { $_ // '[missing part]' } @{$parts{$key}});
	$text =~ s/\n/\\n/g;
	print "$dest\t$text\n";
}
