#!/usr/bin/env bash
# Faults while a backlog is fetched in windows from an API 100 ms away:
# 500s, truncated bodies and dropped connections hit requests of several
# windows, and each is retried on its own window with the same cursor
# while the others go on; pages out of order end a window's request or the
# windows, never an event; a 429 with Retry-After stops every
# window's requests until it has passed; and the mirror and the event log
# still converge exactly.
source "$(dirname "$0")/lib.sh"
require_bins

LATENCY=100
RETRY_AFTER=2
pg_start
gen_stream 30000 4711
emu_start "$EVENTS_SERVED" --latency "$LATENCY"
last=$(last_event_id "$EVENTS")
daemon_config workos.fetch_windows=8
daemon_start
wait_for 60 "the windows to begin" grep -q 'event=windows_begin' "$DAEMON_LOG"
wait_first_page 60

FAULT_FROM=$(($(reqlog_lines) + 1))
emu_fault 500 4
wait_for 30 "4 500 faults to fire" faults_fired 500 4 "$FAULT_FROM"
emu_fault truncate 3
wait_for 30 "3 truncate faults to fire" faults_fired truncate 3 "$FAULT_FROM"
emu_fault drop 3
wait_for 30 "3 drop faults to fire" faults_fired drop 3 "$FAULT_FROM"
# Pages out of order: refused by the window (within a page) or, if one
# passes as a page, by the order check, which ends the windows for the one
# chain; either way nothing is lost (the convergence checks below).
emu_fault disorder 2
wait_for 30 "2 disorder faults to fire" faults_fired disorder 2 "$FAULT_FROM"
emu_fault 429 1 "retry_after=$RETRY_AFTER"
wait_for 30 "the 429 to fire" faults_fired 429 1 "$FAULT_FROM"
[ "$(cursor)" != "$last" ] || fail "the backfill ended before the faults fired"
log "faults fired at cursor $(cursor)"
wait_caught_up 180
daemon_alive || fail "daemon exited"

# Each faulted request was retried on its own window, asking the same.
assert_retries_keep_cursor --from "$FAULT_FROM" --kinds '500|truncate|drop|429'
# Several windows were in flight when the faults came.
windows=$(tail -n "+$FAULT_FROM" "$EMU_LOG" | grep -o ' range_end=[^ ]*' | grep -v '=-$' | sort -u | wc -l)
[ "$windows" -ge 3 ] || fail "only $windows windows asked after the faults"

# The 429's answer reached the daemon $LATENCY ms after its request came in;
# from then on no window asks until Retry-After has passed. (Requests sent
# before that answer arrive up to $LATENCY ms after it and are allowed.)
tail -n "+$FAULT_FROM" "$EMU_LOG" | awk -v lat="$LATENCY" -v ra="$RETRY_AFTER" '
    { ts = $1; sub(/^ts_ms=/, "", ts) }
    t429 && ts > t429 + lat + 50 && ts < t429 + lat + ra * 1000 - 10 {
        printf "request %d ms after the 429 came in\n", ts - t429; bad++ }
    $3 == "fault=429" { t429 = ts }
    END { exit bad ? 1 : 0 }' >"$T/pause.txt" || {
    cat "$T/pause.txt" >&2
    fail "a window asked while Retry-After held every window"
}
grep -q 'event=window_fetch_failed' "$DAEMON_LOG" || fail "no window failure was logged"

assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"
daemon_stop
