#!/usr/bin/env bash
# [reconcile] rate_limit paces a snapshot: with 1200 requests a minute (20 a
# second, bursts of 10) no rolling second of the emulator's request log
# holds more than 30 requests, and the listing takes at least the time that
# rate implies.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 60 47
emu_start "$EVENTS_SERVED"
daemon_config reconcile.rate_limit=1200
daemon_migrate
start=$(now_ms)
syncd backfill >"$T/b.out" 2>>"$DAEMON_LOG" || fail "backfill exited $?"
took=$(($(now_ms) - start))
requests=$(emu_stat .state_requests)
peak=$(emu_stat .limits.per_second.peak)
log "$requests requests in $took ms at 1200/min; busiest second $peak"
[ "$requests" -ge 40 ] || fail "only $requests list requests: too few to measure a rate"
[ "$peak" -le 30 ] || fail "$peak requests in one second at rate_limit = 1200 (want <= 30)"
# 20 a second after the first burst of 10: at least (requests - 10) / 20 s.
min_ms=$(((requests - 10) * 50))
[ "$took" -ge "$min_ms" ] || fail "$requests requests in $took ms: faster than 1200/min allows ($min_ms ms)"
