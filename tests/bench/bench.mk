# Build rules for the webhook load benchmark. Included from the top-level
# Makefile, which supplies CC, CFLAGS, LDFLAGS and LDLIBS (SANITIZE=...
# adds the sanitizer flags there). The generator signs its requests with the
# daemon's own signature module.

BENCH_LOAD := tests/bench/webhook-load

.PHONY: bench-webhook bench-audit bench-audit-scale bench-latency

$(BENCH_LOAD): tests/bench/webhook_load.c daemon/signature.o daemon/signature.h
	$(CC) $(CFLAGS) -Idaemon $(LDFLAGS) -o $@ tests/bench/webhook_load.c daemon/signature.o $(LDLIBS)

# Webhook throughput (closed loop) and latency (open loop) against a daemon
# on a PostgreSQL with fsync on.
bench-webhook: daemon/workos-syncd $(BENCH_LOAD)
	bash tests/bench/webhook.sh

# The audit trail's cost on the backfill: migration 005's triggers on
# against disabled, alternating rounds, one PostgreSQL with fsync on.
bench-audit: daemon/workos-syncd tests/emulator/workos-emulator
	bash tests/bench/audit.sh

# The audit trail's read side on a log of 5,000,000 events generated in SQL:
# a user's trail, an _as_of lookup, verify's rate, pruning a month with
# applies running, and the same month with time partitions.
bench-audit-scale: daemon/workos-syncd
	bash tests/bench/audit_scale.sh

# The backfill from an API 0, 50 and 150 ms away, with fetch windows and on
# one chain, against the bound the default pacing allows.
bench-latency: daemon/workos-syncd tests/emulator/workos-emulator
	bash tests/bench/latency.sh

CLEAN_EXTRA += $(BENCH_LOAD)
