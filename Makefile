# workos-syncd — GNU make build.
#
#   make                 build daemon/workos-syncd
#   make check           unit tests, then integration tests (real PostgreSQL)
#   make SANITIZE=address,undefined check
#   make run             demo: throwaway PostgreSQL + emulator, or real WorkOS
#   make bench           throughput benchmark (not part of check)
#   make deps            install missing Debian packages
#   make tidy            clang-tidy (.clang-tidy) over daemon/*.c
#   make fuzz-ci         every fuzz target, 60 s each (tests/fuzz/fuzz.mk)

CC       ?= cc
PKGS     := libevent libcurl libcjson libpq libsystemd inih libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wcast-qual -Wpointer-arith \
            -Wvla -Wundef -Werror
CFLAGS   ?= -O2 -g
VERSION  := 0.1.0
CFLAGS   += -std=c11 -D_GNU_SOURCE -DWORKOS_SYNCD_VERSION=\"$(VERSION)\" $(WARN) $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lm

ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

DAEMON_SRCS := $(filter-out daemon/migrations.c,$(wildcard daemon/*.c)) daemon/migrations.c
DAEMON_OBJS := $(DAEMON_SRCS:.c=.o)
SQL_FILES   := $(sort $(wildcard sql/[0-9]*.sql))

.PHONY: all check check-now integration-check run run-now bench bench-now deps clean \
        format format-check lint tidy

all: daemon/workos-syncd

daemon/workos-syncd: $(DAEMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

daemon/%.o: daemon/%.c $(wildcard daemon/*.h)
	$(CC) $(CFLAGS) -c -o $@ $<

# Migrations are compiled into the binary, so an installed daemon needs
# nothing beside it.  The directory too: removing a file changes only its
# time.
daemon/migrations.c: $(SQL_FILES) sql daemon/embed_sql.sh
	sh daemon/embed_sql.sh $(SQL_FILES) > $@.tmp && mv $@.tmp $@

-include tests/unit/unit.mk
-include tests/emulator/emulator.mk
-include tests/fuzz/fuzz.mk
-include tests/bench/bench.mk
include systemd/install.mk

# `check`, `run` and `bench` first install what is missing, then build in a
# fresh make so that pkg-config sees the newly installed libraries.
deps:
	@bash tests/deps.sh

check: deps
	@$(MAKE) --no-print-directory check-now

check-now: all unit-check emulator-smoke integration-check

integration-check: all tests/emulator/workos-emulator
	bash tests/integration/run.sh

run: deps
	@$(MAKE) --no-print-directory run-now

run-now: all tests/emulator/workos-emulator
	bash tests/demo.sh

bench: deps
	@$(MAKE) --no-print-directory bench-now

bench-now: all tests/emulator/workos-emulator tests/bench/webhook-load
	bash tests/bench/run.sh
	bash tests/bench/latency.sh
	bash tests/bench/webhook.sh
	bash tests/bench/analytics.sh
	bash tests/bench/reconcile.sh
	bash tests/bench/audit.sh
	bash tests/bench/audit_scale.sh

FORMAT_SRCS = $(filter-out daemon/migrations.c,$(wildcard daemon/*.[ch] tests/*/*.[ch]))

format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
		-D_GNU_SOURCE --inline-suppr -I daemon daemon/*.c

# clang-tidy with the committed .clang-tidy; any finding fails.  TIDY_SRCS
# picks the files (default every daemon source but the generated one);
# TIDY_EXCLUDE drops some of them.
TIDY_EXCLUDE ?=
TIDY_SRCS    ?= $(filter-out daemon/migrations.c $(TIDY_EXCLUDE),$(wildcard daemon/*.c))
TIDY_FLAGS    = -std=c11 -D_GNU_SOURCE -DWORKOS_SYNCD_VERSION=\"$(VERSION)\" $(PKG_CFLAGS) -Idaemon

# One clang-tidy per file (several in one process share analyzer state and
# report false va_list findings); `make -j2 tidy` runs two at once.
tidy: $(TIDY_SRCS:%=%.tidy)

%.c.tidy: %.c tidy-always
	@out=$$(clang-tidy --quiet $< -- $(TIDY_FLAGS) 2>&1); rc=$$?; \
		[ -z "$$out" ] || printf '%s\n' "$$out" | grep -v '^[0-9]* warnings\{0,1\} generated\.$$' || true; \
		exit $$rc

.PHONY: tidy-always

clean:
	rm -f daemon/*.o daemon/workos-syncd daemon/migrations.c $(CLEAN_EXTRA)
