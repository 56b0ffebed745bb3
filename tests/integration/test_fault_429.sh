#!/usr/bin/env bash
# 429 with Retry-After in the middle of a backfill: the daemon waits at least
# Retry-After seconds before asking again, asks for the same page, and the
# mirror converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins
# The one chain (test_windows_faults covers the windows): the next request
# in the log is the retry of the faulted one.
FAULT_CONFIG=(workos.fetch_windows=1)

retry_after=2
fault_scenario 429 2 retry_after=$retry_after

# Each request after a 429 came no earlier than Retry-After seconds later.
# The log's ts_ms is the emulator's wall clock truncated to the millisecond,
# while the daemon times its wait on the monotonic clock; 10 ms of slack
# covers the truncation and clock slewing, not an early retry.
tail -n "+$FAULT_FROM" "$EMU_LOG" | awk -v ra="$retry_after" '
    { ts = $1; sub(/^ts_ms=/, "", ts) }
    prev_429 { gap = ts - prev_ts; printf "gap after 429: %d ms\n", gap; if (gap < ra * 1000 - 10) bad++ }
    { prev_429 = ($3 == "fault=429"); prev_ts = ts }
    END { exit bad ? 1 : 0 }' >"$T/gaps.txt" || {
    cat "$T/gaps.txt" >&2
    fail "a request followed a 429 sooner than Retry-After ($retry_after s)"
}
log "$(tr '\n' ' ' <"$T/gaps.txt")"
