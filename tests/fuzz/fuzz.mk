# libFuzzer targets (clang only), one for every parser of untrusted bytes.
# Included from the top-level Makefile.
#
#   make fuzz                      build every target below
#   make fuzz-run FUZZ_SECONDS=60  run them all at once on a scratch copy of
#                                  tests/fuzz/corpus (default 600 s each)
#   make fuzz-ci                   build, then run each for FUZZ_CI_SECONDS
#                                  (60), FUZZ_JOBS (2) at a time; fails on
#                                  any crash, leak or timeout
#
#   fuzz_signature  WorkOS-Signature header + HMAC check (signature.c)
#   fuzz_event      a webhook body: one envelope (event*.c), ISO 8601 (clock.c)
#   fuzz_page       an Events API list response (event_page_parse, order checks)
#   fuzz_config     the configuration file (config.c and inih)

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_CI_SECONDS ?= 60
FUZZ_JOBS    ?= 2
FUZZ_FLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE $(WARN) -Idaemon \
                $(shell pkg-config --cflags libcjson libcrypto inih 2>/dev/null)
FUZZ_TARGETS := signature event page config head
FUZZ_BINS    := $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)
FUZZ_EVENT_SRCS := daemon/event.c daemon/event_mirror.c daemon/event_page.c daemon/pgarray.c \
                   daemon/clock.c
FUZZ_EVENT_DEPS := $(FUZZ_EVENT_SRCS) daemon/event.h daemon/event_mirror.h daemon/pgarray.h \
                   daemon/clock.h \
                   tests/fuzz/batch_check.h tests/unit/array_reader.h
FUZZ_CJSON_LIBS = $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)

.PHONY: fuzz fuzz-run fuzz-ci

fuzz: $(FUZZ_BINS)

tests/fuzz/fuzz_signature: tests/fuzz/fuzz_signature.c daemon/signature.c daemon/signature.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_signature.c daemon/signature.c \
		$(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

tests/fuzz/fuzz_head: tests/fuzz/fuzz_head.c daemon/webhook_head.c daemon/webhook_head.h \
		daemon/signature.c daemon/signature.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_head.c daemon/webhook_head.c daemon/signature.c \
		$(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

tests/fuzz/fuzz_event: tests/fuzz/fuzz_event.c $(FUZZ_EVENT_DEPS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_event.c $(FUZZ_EVENT_SRCS) $(FUZZ_CJSON_LIBS)

tests/fuzz/fuzz_page: tests/fuzz/fuzz_page.c $(FUZZ_EVENT_DEPS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_page.c $(FUZZ_EVENT_SRCS) $(FUZZ_CJSON_LIBS)

FUZZ_CONFIG_SRCS := $(wildcard daemon/config*.c) daemon/log.c

tests/fuzz/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_CONFIG_SRCS) $(wildcard daemon/config*.h) \
		daemon/log.h $(FUZZ_EVENT_DEPS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_config.c $(FUZZ_CONFIG_SRCS) \
		$(FUZZ_EVENT_SRCS) $(FUZZ_CJSON_LIBS) \
		$(shell pkg-config --libs inih 2>/dev/null || echo -linih)

fuzz-run: fuzz
	sh tests/fuzz/run.sh $(FUZZ_SECONDS) 0 $(FUZZ_TARGETS)

fuzz-ci: fuzz
	sh tests/fuzz/run.sh $(FUZZ_CI_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

CLEAN_EXTRA += $(FUZZ_BINS)
