#!/usr/bin/perl
# report.pl [--json FILE] RESULTS - the one table of `make bench` (issue 8):
# reads the BENCH lines tests/bench/run.sh collected in RESULTS
# (build/bench/results.txt, also one from before run.sh marked each bench) and prints a
# row per figure with nudged's value, the figure it is compared with from
# the same run (Kannel, libsmpp34, or the same case with [store] sync = no),
# their ratio (always nudged / other, stated per section), the goal, whether
# the figures meet it, and whether a load driver hit its CPU ceiling. Rows
# of a benchmark that was not run or failed say so instead of a value. With
# --json the same rows, every raw figure and the run's metadata go to FILE.
# Perl core modules only.
use strict;
use warnings;
use JSON::PP ();

my $json_file;
if (@ARGV && $ARGV[0] eq '--json') {
	shift @ARGV;
	$json_file = shift @ARGV;
}
die "usage: $0 [--json FILE] RESULTS\n" unless @ARGV == 1;
my $results = $ARGV[0];

# The benchmarks this report knows, in table order, and the prefix of
# their figure names.
my @BENCHES = qw(smpp_codec kannel relay events journeys);
my %PREFIX = map { $_ => "$_." } @BENCHES;

my (%figure, %status, @ran, %meta);

# ---- reading ------------------------------------------------------------

# read_results FILE: fills %figure (name -> {value, unit}), %status (bench
# -> ok / failed N / missing, from run.sh's markers) and %meta.
sub read_results {
	my ($file) = @_;
	my $current = '';
	open(my $in, '<', $file) or die "report: $file: $!\n";
	while (my $line = <$in>) {
		chomp $line;
		if ($line =~ /^# nudge benchmarks (\S+) commit (\S+)/) {
			@meta{qw(date commit)} = ($1, $2);
		} elsif ($line =~ /^# (\d+) cores, load average at start (.*)$/) {
			$meta{cores} = $1 + 0;
			$meta{load_start_text} = $2;
			$meta{load_start} = [ map { $_ + 0 } split ' ', $2 ];
		} elsif ($line =~ /^# meta (.*)$/) {
			for my $pair (split ' ', $1) {
				my ($key, $value) = split /=/, $pair, 2;
				$meta{$key} = $value if defined $value;
			}
		} elsif ($line =~ /^# bench (\S+)/) {
			$current = $1;
			push @ran, $current;
		} elsif ($line =~ /^# status (\S+) (.*)$/) {
			$status{$1} = $2;
		} elsif ($line =~ /^BENCH (.*)$/) {
			read_bench_line($1, $current);
		}
	}
	close($in);
}

# read_bench_line TEXT BENCH: "name=N value=V unit=U", or the codec's
# "name=N ours_ns=.. peer_ns=.. ..." (kept as BENCH.N.KEY).
sub read_bench_line {
	my ($text, $bench) = @_;
	my %pair = map { split /=/, $_, 2 } grep {/=/} split ' ', $text;
	my $name = delete $pair{name};
	return unless defined $name;
	if (defined $pair{value}) {
		$figure{$name} = { value => $pair{value}, unit => $pair{unit} // '' };
		return;
	}
	$bench = 'smpp_codec' if $bench eq '';
	for my $key (keys %pair) {
		my $unit = $key =~ /_ns$/ ? 'ns' : $key =~ /per_s$/ ? '1/s' : 'ratio';
		$figure{"$bench.$name.$key"} = { value => $pair{$key}, unit => $unit };
	}
}

# bench_state BENCH: "ok", "failed", "not run" (also for a missing one).
# Without run.sh's markers (older results.txt) a benchmark ran if it left
# figures.
sub bench_state {
	my ($bench) = @_;
	if (@ran) {
		return 'not run' unless grep { $_ eq $bench } @ran;
		my $s = $status{$bench} // 'failed (interrupted)';
		return 'not run' if $s eq 'missing';
		return $s eq 'ok' ? 'ok' : 'failed';
	}
	return (grep { index($_, $PREFIX{$bench}) == 0 } keys %figure)
	    ? 'ok' : 'not run';
}

# value NAME: a figure's value as a number, undef if it is not there.
sub value {
	my ($name) = @_;
	return undef unless defined $name && exists $figure{$name};
	return $figure{$name}{value} + 0;
}

# ---- the rows -----------------------------------------------------------

my (@sections, @notes);

# section ID BENCH TITLE OTHER_IS RATIO_IS: starts a table section.
sub section {
	my ($id, $bench, $title, $other_is, $ratio_is) = @_;
	push @sections, { id => $id, bench => $bench, title => $title,
	    other_is => $other_is, ratio_is => $ratio_is, rows => [] };
}

# row ID LABEL UNIT OURS OTHER GOAL DRIVERS: a row of the current section;
# OURS and OTHER are figure names, GOAL a hash (on ours|ratio, op, value,
# text) or undef, DRIVERS the driver_saturated figure names [ours, other].
sub row {
	my ($id, $label, $unit, $ours, $other, $goal, $drivers) = @_;
	push @{ $sections[-1]{rows} }, { id => $id, label => $label,
	    unit => $unit, ours => $ours, other => $other, goal => $goal,
	    drivers => $drivers // [], group => $sections[-1]{group} };
}

# group LABEL: a line heading the rows after it (a case of several rows).
sub group {
	my ($label) = @_;
	push @{ $sections[-1]{rows} }, { label => $label };
	$sections[-1]{group} = $label;
}

# goal ON OP LIMIT TEXT: ON (ours or ratio) OP (>=, <=, <) LIMIT is met.
sub goal {
	my ($on, $op, $limit, $text) = @_;
	return { on => $on, op => $op, value => $limit, text => $text };
}

# fmt NUMBER: a count or rate without decimals, smaller figures with up to
# three significant decimals.
sub fmt {
	my ($n) = @_;
	return sprintf('%.0f', $n) if abs($n) >= 100;
	return sprintf('%.1f', $n) if abs($n) >= 10;
	return sprintf('%.2f', $n) if abs($n) >= 0.1 || $n == 0;
	return sprintf('%.3f', $n);
}

# build_rows: the sections and rows of the table, labelled with the sizes
# of this run where the scripts emit them.
sub build_rows {
	section('codec', 'smpp_codec',
	    'smpp/ codec, one thread, median ns per PDU',
	    'libsmpp34 in the same binary', 'smpp/ / libsmpp34, below 1 = smpp/ faster');
	for my $op (['submit_sm_decode', 'submit_sm decode'],
	    ['submit_sm_encode', 'submit_sm encode'],
	    ['receipt_decode', 'deliver_sm (receipt) decode'],
	    ['receipt_encode', 'deliver_sm (receipt) encode']) {
		row("codec.$op->[0]", $op->[1], 'ns',
		    "smpp_codec.$op->[0].ours_ns", "smpp_codec.$op->[0].peer_ns");
	}

	section('kannel', 'kannel',
	    'HTTP -> SMPP into the same sink, nudged durable',
	    'Kannel 1.4.5 in the same run', 'nudged / Kannel');
	for my $case (['single8', 'single, 8 conn', 2],
	    ['single32', 'single, 32 conn', 2],
	    ['bulk', 'batch 100 vs mtbatch', 5]) {
		my ($c, $what, $times) = @$case;
		my $n = value("kannel.$c.messages");
		my $label = defined $n ? "$c ($what, $n msgs)" : "$c ($what)";
		my $p = "kannel.$c";
		my @drivers = ("$p.nudged.driver_saturated",
		    $c eq 'bulk' ? undef : "$p.kannel.driver_saturated");
		my $faster = goal('ratio', '>=', $times, "ratio >= $times");
		group($label);
		row("$p.to_sink", '  to sink', 'msg/s',
		    "$p.nudged.submits_per_second",
		    "$p.kannel.submits_per_second", $faster, \@drivers);
		row("$p.to_receipt", '  to last receipt', 'msg/s',
		    "$p.nudged.receipts_per_second",
		    "$p.kannel.receipts_per_second", $faster, \@drivers);
		row("$p.cpu", '  gateway cpu', 'us/msg',
		    "$p.nudged.cpu_per_message", "$p.kannel.cpu_per_message",
		    goal('ratio', '<=', 0.20, 'ratio <= 0.20'), \@drivers);
		row("$p.peak_rss", '  peak RSS', 'MB', "$p.nudged.peak_rss",
		    "$p.kannel.peak_rss", undef, \@drivers);
		row("$p.anon_rss", '  anon RSS at end', 'MB',
		    "$p.nudged.anon_rss", "$p.kannel.anon_rss", undef, \@drivers);
	}
	push @notes, 'kannel bulk: Kannel is mtbatch feeding bearerbox (its cpu'
	    . ' and RSS are bearerbox only; mtbatch is no driver of ours)'
	    if bench_state('kannel') ne 'not run';

	my $rate = value('relay.paced.offered_rate') // 10000;
	section('relay', 'relay',
	    'SMPP relay: smpp_load -> nudged (durable) -> smsc-sim',
	    'the same with [store] sync = no',
	    'durable / sync=no, the cost of fsync');
	my @max = ('relay.max.driver_saturated',
	    'relay.max_nosync.driver_saturated');
	my @paced = ('relay.paced.driver_saturated',
	    'relay.paced_nosync.driver_saturated');
	row('relay.max.accepted', 'unpaced: accepted submit_sm/s',
	    'submit/s', 'relay.max.submits_per_second',
	    'relay.max_nosync.submits_per_second',
	    goal('ours', '>=', 50000, '>= 50000/s'), \@max);
	for my $p (['p50', 'p50'], ['p99', 'p99'], ['p999', 'p99.9']) {
		row("relay.max.latency_$p->[0]",
		    "unpaced: submit -> resp $p->[1]", 'ms',
		    "relay.max.latency_$p->[0]",
		    "relay.max_nosync.latency_$p->[0]", undef, \@max);
	}
	my $p99 = goal('ours', '<', 5, '< 5 ms at 10k/s');
	$p99->{at_least} = [ 'relay.paced.offered_rate', 10000 ];
	row('relay.paced.accepted', "at $rate/s offered: accepted/s",
	    'submit/s', 'relay.paced.submits_per_second',
	    'relay.paced_nosync.submits_per_second', undef, \@paced);
	for my $p (['p50', 'p50'], ['p99', 'p99'], ['p999', 'p99.9']) {
		row("relay.paced.latency_$p->[0]",
		    "at $rate/s: submit -> resp $p->[1]", 'ms',
		    "relay.paced.latency_$p->[0]",
		    "relay.paced_nosync.latency_$p->[0]",
		    $p->[0] eq 'p99' ? $p99 : undef, \@paced);
	}
	row('relay.max.cpu', 'unpaced: nudged cpu per submit', 'us',
	    'relay.max.nudged_cpu_per_submit',
	    'relay.max_nosync.nudged_cpu_per_submit', undef, \@max);

	section('events', 'events',
	    'POST /v1/events, shipped rules, nudged durable',
	    'the same with [store] sync = no, where measured',
	    'durable / sync=no, the cost of fsync');
	my $best;
	for my $case (['single8', 'single, 8 conn'],
	    ['single32', 'single, 32 conn'], ['batch100', 'batch 100, 8 conn'],
	    ['batch1000', 'batch 1000, 4 conn']) {
		my ($c, $what) = @$case;
		my $nosync = "events.${c}_nosync";
		my $has_nosync = $c eq 'single32' || $c eq 'batch100';
		my $conn = value("events.$c.connections");
		$what =~ s/\d+ conn/$conn conn/ if defined $conn;
		row("events.$c", "$c ($what)", 'events/s',
		    "events.$c.events_per_second",
		    $has_nosync ? "$nosync.events_per_second" : undef,
		    goal('ours', '>=', 20000, '>= 20000/s'),
		    [ "events.$c.driver_saturated",
		      $has_nosync ? "$nosync.driver_saturated" : undef ]);
		my $v = value("events.$c.events_per_second");
		$best = $v if defined $v && (!defined $best || $v > $best);
	}
	$figure{'report.events_best_durable'} =
	    { value => $best, unit => 'events/s' } if defined $best;
	row('events.best', 'best durable form', 'events/s',
	    'report.events_best_durable', undef,
	    goal('ours', '>=', 20000, '>= 20000/s'));
	row('events.single32.cpu', 'single32: nudged cpu per event', 'us',
	    'events.single32.nudged_cpu_per_event',
	    'events.single32_nosync.nudged_cpu_per_event');
	row('events.batch100.cpu', 'batch100: nudged cpu per event', 'us',
	    'events.batch100.nudged_cpu_per_event',
	    'events.batch100_nosync.nudged_cpu_per_event');

	my $waiting = value('journeys.waiting');
	my $w = defined $waiting ? $waiting : 'N';
	section('journeys', 'journeys',
	    'browse-abandonment journeys waiting in a delay, nudged durable',
	    'none', 'none');
	row('journeys.timers', 'timers fired (after a clock jump)',
	    'timers/s', 'journeys.timers_per_second');
	row('journeys.cpu', 'nudged cpu per timer', 'us',
	    'journeys.nudged_cpu_per_timer');
	my $small = goal('ours', '<', 100, '< 100 MB at 1M');
	$small->{at_least} = [ 'journeys.waiting', 1000000 ];
	row('journeys.rss_waiting', "VmRSS, $w waiting", 'MB',
	    'journeys.rss_waiting', undef, {%$small});
	row('journeys.rss_anon_waiting', "RssAnon, $w waiting", 'MB',
	    'journeys.rss_anon_waiting', undef, {%$small});
	push @notes, 'journeys: VmRSS counts the LMDB pages mapped into'
	    . ' nudged, kept under [store] map_resident (32M); RssAnon is'
	    . ' its own memory'
	    if bench_state('journeys') ne 'not run';
}

# ---- evaluating ---------------------------------------------------------

# missing STATE: what a row shows where a figure is absent.
sub missing {
	my ($state) = @_;
	return $state eq 'ok' ? '-' : $state;
}

# saturated NAME: "no", "YES", "?" (no figure) or undef (no driver).
sub saturated {
	my ($name) = @_;
	return undef unless defined $name;
	my $v = value($name);
	return '?' unless defined $v;
	return $v ? 'YES' : 'no';
}

# judge ROW OURS RATIO: the row's goal met (1, 0) or undef, and a note if
# it is n/a because the run was smaller than the goal's scale (at_least).
sub judge {
	my ($row, $ours, $ratio) = @_;
	my $goal = $row->{goal} or return (undef, undef);
	my $v = $goal->{on} eq 'ratio' ? $ratio : $ours;
	return (undef, undef) unless defined $v;
	my %test = ('>=' => sub { $_[0] >= $_[1] },
	    '<=' => sub { $_[0] <= $_[1] }, '<' => sub { $_[0] < $_[1] });
	my $met = $test{ $goal->{op} }->($v, $goal->{value}) ? 1 : 0;
	if (my $scale = $goal->{at_least}) {
		my $have = value($scale->[0]);
		# Over the limit with fewer is a miss; under it proves nothing.
		if ($met && (!defined $have || $have < $scale->[1])) {
			return (undef, "$row->{id}: the goal is for $scale->[1];"
			    . ' ' . ($have // 'an unknown number') . ' measured');
		}
	}
	return ($met, undef);
}

# evaluate: every row's shown texts and its JSON form.
sub evaluate {
	my @json;
	for my $section (@sections) {
		my $state = bench_state($section->{bench});
		$section->{state} = $state;
		for my $row (@{ $section->{rows} }) {
			next unless defined $row->{id};
			my $ours = value($row->{ours});
			my $other = value($row->{other});
			my $ratio;
			$ratio = $ours / $other
			    if defined $ours && defined $other && $other != 0;
			my ($met, $note) = judge($row, $ours, $ratio);
			push @notes, $note if defined $note;
			my @sat = map { saturated($_) } @{ $row->{drivers} };
			$row->{show} = {
			    ours => defined $ours ? $figure{ $row->{ours} }{value}
			        : missing($state),
			    other => !defined $row->{other} ? ''
			        : defined $other ? $figure{ $row->{other} }{value}
			        : missing($state),
			    ratio => defined $ratio ? fmt($ratio) : '',
			    goal => $row->{goal} ? $row->{goal}{text} : '',
			    met => !$row->{goal} ? ''
			        : defined $met ? ($met ? 'yes' : 'NO')
			        : defined $ours ? 'n/a*' : '',
			    driver => join(' / ', map { $_ // '-' }
			        grep { defined } @sat) || '-',
			};
			$row->{show}{driver} = '-' if !defined $ours;
			push @json, {
			    section => $section->{id},
			    id => $row->{id},
			    row => join(': ', grep { defined }
			        $row->{group}, $row->{label} =~ s/^\s+//r),
			    unit => $row->{unit},
			    status => defined $ours ? 'measured'
			        : $state eq 'ok' ? 'no figure' : $state,
			    nudged => $ours,
			    other => $other,
			    other_is => defined $row->{other}
			        ? $section->{other_is} : undef,
			    ratio => defined $ratio ? 0 + sprintf('%.4g', $ratio)
			        : undef,
			    ratio_is => defined $row->{other}
			        ? $section->{ratio_is} : undef,
			    goal => $row->{goal} ? $row->{goal}{text} : undef,
			    goal_rule => $row->{goal} ? { map {
			        $_ => $row->{goal}{$_} } qw(on op value) } : undef,
			    goal_met => !defined $met ? undef
			        : $met ? JSON::PP::true : JSON::PP::false,
			    driver_saturated => {
			        map { ($_->[0] => !defined $_->[1]
			            || $_->[1] eq '?' ? undef
			            : $_->[1] eq 'YES' ? JSON::PP::true
			            : JSON::PP::false) }
			        grep { defined $row->{drivers}[ $_->[2] ] }
			        ['nudged', $sat[0], 0], ['other', $sat[1], 1] },
			};
		}
	}
	return \@json;
}

# ---- printing -----------------------------------------------------------

sub print_table {
	my $load = $meta{load_start_text} // '?';
	my $load_end = defined $meta{load_end}
	    ? ', ' . ($meta{load_end} =~ tr/,/ /r) . ' at the end' : '';
	my @sizes = map { "$_->[0]=" . ($meta{ $_->[1] } || 'default') }
	    (['BENCH_N', 'bench_n'], ['BENCH_JOURNEYS', 'bench_journeys'],
	    ['BENCH_RELAY_RATE', 'bench_relay_rate']);
	print "\n== nudge benchmarks, ", $meta{date} // 'date unknown',
	    ', commit ', $meta{commit} // 'unknown', ', ',
	    $meta{cores} // '?', " cores, load $load at the start$load_end\n";
	print '   sizes: ', join(' ', @sizes), "\n" if exists $meta{bench_n};
	my $format = "%-38s %-9s %9s %9s %6s %-16s %-4s %s\n";
	printf $format, 'row', 'unit', 'nudged', 'other', 'ratio', 'goal',
	    'met', 'driver saturated';
	for my $section (@sections) {
		my $state = $section->{state};
		print "-- $section->{title}\n";
		print "   other = $section->{other_is}; ratio = "
		    . "$section->{ratio_is}\n" if $section->{other_is} ne 'none';
		if ($state eq 'not run') {
			print "   not run\n";
			next;
		}
		print "   bench_$section->{bench} FAILED: figures shown were"
		    . " measured before it failed\n" if $state eq 'failed';
		for my $row (@{ $section->{rows} }) {
			if (!defined $row->{id}) {
				print "$row->{label}\n";
				next;
			}
			my $s = $row->{show};
			printf $format, $row->{label}, $row->{unit}, $s->{ours},
			    $s->{other}, $s->{ratio}, $s->{goal}, $s->{met},
			    $s->{driver};
		}
	}
	print "   * $_\n" for @notes;
	print "   driver saturated (nudged's / the other's): YES if the load"
	    . " client used >= 85-90% of a core: the client, not the"
	    . " gateway, may be the limit\n";
	for my $bench (@ran) {
		next if grep { $_ eq $bench } @BENCHES;
		print "   bench_$bench: not in this table (its figures are in"
		    . " the JSON)\n";
	}
}

sub write_json {
	my ($file, $rows) = @_;
	my %benches = map { $_ => $status{$_} // bench_state($_) }
	    @BENCHES, @ran;
	my %raw = map { $_ => { value => $figure{$_}{value} + 0,
	    unit => $figure{$_}{unit} } } grep { $_ !~ /^report\./ }
	    keys %figure;
	my $run = { %meta, benches => \%benches, notes => \@notes };
	for my $key (qw(bench_n bench_n32 bench_journeys bench_relay_rate)) {
		$run->{$key} = length($run->{$key} // '') ? $run->{$key} + 0
		    : undef;
	}
	delete $run->{load_start_text};
	$run->{load_end} = [ map { $_ + 0 } split /,/, $run->{load_end} ]
	    if defined $run->{load_end};
	my $text = JSON::PP->new->canonical->pretty->encode(
	    { run => $run, rows => $rows, figures => \%raw });
	open(my $out, '>', "$file.tmp") or die "report: $file.tmp: $!\n";
	print $out $text;
	close($out) or die "report: $file.tmp: $!\n";
	rename("$file.tmp", $file) or die "report: $file: $!\n";
}

read_results($results);
build_rows();
my $rows = evaluate();
print_table();
write_json($json_file, $rows) if defined $json_file;
