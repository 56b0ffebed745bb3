# libFuzzer targets (clang only).  Included from the top-level Makefile.
#
#   make fuzz                      build tests/fuzz/fuzz_signature and fuzz_event
#   make fuzz-run FUZZ_SECONDS=60  run both in parallel on a scratch copy of
#                                  tests/fuzz/corpus (default 600 s each)

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_FLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE $(WARN) -Idaemon \
                $(shell pkg-config --cflags libcjson libcrypto 2>/dev/null)
FUZZ_BINS    := tests/fuzz/fuzz_signature tests/fuzz/fuzz_event

.PHONY: fuzz fuzz-run

fuzz: $(FUZZ_BINS)

tests/fuzz/fuzz_signature: tests/fuzz/fuzz_signature.c daemon/signature.c daemon/signature.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_signature.c daemon/signature.c \
		$(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

tests/fuzz/fuzz_event: tests/fuzz/fuzz_event.c daemon/event.c daemon/event_page.c daemon/event.h \
		daemon/pgarray.c daemon/clock.c daemon/pgarray.h tests/unit/array_reader.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_event.c daemon/event.c daemon/event_page.c \
		daemon/pgarray.c daemon/clock.c \
		$(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)

fuzz-run: fuzz
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

CLEAN_EXTRA += $(FUZZ_BINS)
