#!/usr/bin/env bash
# A response held longer than request_timeout (2 s) in the middle of a
# backfill: the daemon gives up on it, asks for the same page again, and the
# mirror converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins
# The one chain (test_windows_faults covers the windows): the next request
# in the log is the retry of the faulted one.
FAULT_CONFIG=(workos.fetch_windows=1)
fault_scenario delay 2 delay_ms=4000

# The retry came after the timeout, not after the held response.
tail -n "+$FAULT_FROM" "$EMU_LOG" | awk '
    { ts = $1; sub(/^ts_ms=/, "", ts) }
    prev_delay { gap = ts - prev_ts; printf "gap after held request: %d ms\n", gap; if (gap < 1900) bad++ }
    { prev_delay = ($3 == "fault=delay"); prev_ts = ts }
    END { exit bad ? 1 : 0 }' >"$T/gaps.txt" || {
    cat "$T/gaps.txt" >&2
    fail "the daemon asked again before request_timeout expired"
}
log "$(tr '\n' ' ' <"$T/gaps.txt")"
