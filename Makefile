# nudge - SMPP-native SMS gateway with flow rules.
#
#   make run      build and start nudged on conf/nudged.conf (loopback)
#   make test     build and pass the whole suite (unit + integration)
#   make asan     the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz     run every libFuzzer target for FUZZ_SECONDS each
#   make bench    benchmarks (figures, never in make test)
#   make soak     SOAK_SECONDS of load under faults (not in CI)
#   make install  PREFIX=/usr/local DESTDIR=
#   V=1           show full commands

CC		?= cc
BUILD		?= build
PREFIX		?= /usr/local
DESTDIR		?=
FUZZ_SECONDS	?= 60
SOAK_SECONDS	?= 600
CONF		?= conf/nudged.conf

PKGS		:= libevent libevent_openssl lmdb libxml-2.0 jansson inih glib-2.0 openssl

WARNINGS	:= -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes \
		   -Wmissing-declarations -Wshadow -Wpointer-arith -Wcast-qual \
		   -Wsign-compare -Wformat=2 -Wno-unused-parameter
ifeq ($(CI),true)
WERROR		?= 1
endif
ifeq ($(WERROR),1)
WARNINGS	+= -Werror
endif

OPTIMIZE	?= -O2 -g
SANITIZE	?=
CPPFLAGS	+= -D_GNU_SOURCE -Ismpp -Isrc
CFLAGS		+= -std=c11 $(OPTIMIZE) $(WARNINGS) $(SANITIZE) -MMD -MP
PKG_CFLAGS	= $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	= $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv
LDFLAGS		+= $(SANITIZE)

ifeq ($(V),1)
Q		:=
quiet		= @true
else
Q		:= @
quiet		= @printf '  %-7s %s\n'
endif

# ---- the SMPP library (no libevent, no LMDB) -------------------------------
SMPP_SRCS := \
	smpp/smpp_pdu.c \
	smpp/smpp_tlv.c \
	smpp/smpp_status.c \
	smpp/smpp_charset.c \
	smpp/smpp_udh.c \
	smpp/smpp_split.c \
	smpp/smpp_reassembly.c \
	smpp/smpp_receipt.c \
	smpp/smpp_session.c

# ---- the daemon, minus main() ---------------------------------------------
NUDGE_SRCS := \
	src/log.c \
	src/clock.c \
	src/text.c \
	src/config.c \
	src/store.c \
	src/store_timer.c \
	src/timer.c \
	src/metrics.c \
	src/http.c \
	src/link.c \
	src/outbox.c \
	src/receipt.c \
	src/mo.c \
	src/api_message.c \
	src/callback.c \
	src/server.c \
	src/server_deliver.c \
	src/optout.c \
	src/consent.c \
	src/keyword.c \
	src/template.c \
	src/rule.c \
	src/rule_lint.c \
	src/phone.c \
	src/profile.c \
	src/api_event.c \
	src/flow.c \
	src/inbound.c \
	src/conversation.c \
	src/webhook.c \
	src/quiet.c \
	src/prefix_zones.c \
	src/policy.c \
	src/daemon.c

NUDGED_MAIN	:= src/nudged.c

# ---- unit tests: tests/unit/test_NAME.c -> $(BUILD)/tests/test_NAME --------
UNIT_TESTS := \
	phone \
	smpp_pdu \
	smpp_crosscheck \
	smpp_charset \
	smpp_split \
	smpp_reassembly \
	log \
	config \
	metrics \
	store \
	store_timer \
	smpp_receipt \
	smpp_session \
	link \
	template \
	rule \
	server \
	consent \
	quiet \
	flow

# ---- fuzz targets: tests/fuzz/fuzz_NAME.c (+ NAME.dict, corpus/NAME/) -------
FUZZ_TARGETS := \
	smpp_pdu \
	smpp_charset \
	smpp_udh \
	smpp_receipt \
	template \
	rule

# ---- benchmarks: tests/bench/bench_NAME.c ---------------------------------
BENCHES := \
	smpp_codec

# ---- scripted benchmarks: tests/bench/bench_NAME.sh, nudged over HTTP -------
BENCH_SCRIPTS := \
	events \
	kannel \
	journeys \
	relay

SMPP_OBJS	:= $(SMPP_SRCS:%.c=$(BUILD)/obj/%.o)
NUDGE_OBJS	:= $(NUDGE_SRCS:%.c=$(BUILD)/obj/%.o)
LIBSMPP		:= $(BUILD)/libsmpp.a
LIBNUDGE	:= $(BUILD)/libnudge.a
NUDGED		:= $(BUILD)/nudged
SMSC_SIM	:= $(BUILD)/smsc-sim
NUDGECTL	:= $(BUILD)/nudgectl
UNIT_BINS	:= $(UNIT_TESTS:%=$(BUILD)/tests/test_%)
BENCH_BINS	:= $(BENCHES:%=$(BUILD)/bench/bench_%)
HTTP_DRIVER	:= $(BUILD)/bench/http_driver
SMPP_LOAD	:= $(BUILD)/bench/smpp_load

.PHONY: all deps run test test-unit test-integration asan fuzz fuzz-build \
	bench soak install clean format check-format

all: $(NUDGED) $(SMSC_SIM) $(NUDGECTL)

deps:
	@tools/deps.sh

$(BUILD)/obj/%.o: %.c
	$(quiet) CC $<
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(LIBSMPP): $(SMPP_OBJS)
	$(quiet) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

# rule.c embeds the schema with .incbin, which -MMD cannot see.
$(BUILD)/obj/src/rule.o: rules/flow.rng

$(LIBNUDGE): $(NUDGE_OBJS)
	$(quiet) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(NUDGED): $(BUILD)/obj/$(NUDGED_MAIN:.c=.o) $(LIBNUDGE) $(LIBSMPP)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(SMSC_SIM): $(BUILD)/obj/tools/smsc-sim.o $(LIBSMPP)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# Pulls only the store, log, clock and config objects out of libnudge.a.
$(NUDGECTL): $(BUILD)/obj/tools/nudgectl.o $(LIBNUDGE) $(LIBSMPP)
	$(quiet) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(LIBNUDGE) $(LIBSMPP)
	$(quiet) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka -lsmpp34 -lm

$(BUILD)/bench/bench_%: $(BUILD)/obj/tests/bench/bench_%.o $(LIBNUDGE) $(LIBSMPP)
	$(quiet) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lsmpp34 -lm

# The keep-alive HTTP load generator of the scripted benchmarks: libevent only.
$(HTTP_DRIVER): $(BUILD)/obj/tests/bench/http_driver.o \
	    $(BUILD)/obj/tests/bench/bench.o
	$(quiet) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libevent)

# The SMPP load client (ESME) of bench_relay.sh and the soak: smpp/ and
# libevent.
$(SMPP_LOAD): $(BUILD)/obj/tests/bench/smpp_load.o \
	    $(BUILD)/obj/tests/bench/bench.o $(LIBSMPP)
	$(quiet) LD $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libevent)

run: deps
	@$(MAKE) --no-print-directory all
	@tools/run.sh $(BUILD) $(CONF)

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@BUILD=$(BUILD) tests/run.sh $(UNIT_TESTS)

# The same suite, rebuilt with the sanitizers into its own tree.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPTIMIZE="-O1 -g" \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    all $(UNIT_TESTS:%=build/asan/tests/test_%)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    BUILD=build/asan tests/run.sh $(UNIT_TESTS)

# libFuzzer targets, built with clang against the library sources directly.
FUZZ_CFLAGS	:= -g -O1 -fsanitize=fuzzer,address,undefined -Ismpp -Isrc -D_GNU_SOURCE
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(SMPP_SRCS) smpp/smpp.h
	$(quiet) FUZZ $@
	@mkdir -p $(@D)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(SMPP_SRCS)

# The template engine is in src/ but needs only smpp/ and jansson.
$(BUILD)/fuzz/fuzz_template: tests/fuzz/fuzz_template.c src/template.c \
	    src/nudged.h $(SMPP_SRCS) smpp/smpp.h
	$(quiet) FUZZ $@
	@mkdir -p $(@D)
	$(Q)clang $(FUZZ_CFLAGS) $(shell pkg-config --cflags jansson) -o $@ \
	    $< src/template.c $(SMPP_SRCS) $(shell pkg-config --libs jansson) -lm

# Rule files: loader, lint and templates over libxml2 and jansson; rule.c
# builds rules/flow.rng in.
$(BUILD)/fuzz/fuzz_rule: tests/fuzz/fuzz_rule.c src/rule.c src/rule_lint.c \
	    src/template.c src/nudged.h rules/flow.rng $(SMPP_SRCS) smpp/smpp.h
	$(quiet) FUZZ $@
	@mkdir -p $(@D)
	$(Q)clang $(FUZZ_CFLAGS) $(shell pkg-config --cflags libxml-2.0 jansson) \
	    -o $@ $< src/rule.c src/rule_lint.c src/template.c $(SMPP_SRCS) \
	    $(shell pkg-config --libs libxml-2.0 jansson) -lm

fuzz-build: deps $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: fuzz-build
	@tools/fuzz.sh $(BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS) $(HTTP_DRIVER) \
	    $(SMPP_LOAD)
	@BUILD=$(BUILD) tests/bench/run.sh $(BENCHES) $(BENCH_SCRIPTS)

# Events and relayed submits for SOAK_SECONDS while nudged is killed and the
# SMSC restarted, throttled and stalled; then every promise is checked.
soak: deps
	@$(MAKE) --no-print-directory all $(HTTP_DRIVER) $(SMPP_LOAD)
	@BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) sh tests/soak/soak.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/nudge/rules \
	    $(DESTDIR)$(PREFIX)/share/doc/nudge
	install -m 755 $(NUDGED) $(DESTDIR)$(PREFIX)/sbin/nudged
	install -m 644 conf/nudged.conf $(DESTDIR)$(PREFIX)/share/doc/nudge/nudged.conf.example
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/nudge/README.md

# Generated data (src/prefix_zones.c) keeps its generator's layout.
FORMATTED = $$(git ls-files '*.c' '*.h' | grep -v '^src/prefix_zones.c$$')

format:
	clang-format -i $(FORMATTED)

check-format:
	@clang-format --dry-run --Werror $(FORMATTED) && echo "format: ok"

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
