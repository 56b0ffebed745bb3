#!/usr/bin/env bash
# Answers that start over from the first event, as if the API had lost the
# cursor, hit requests of a backlog fetched in windows from an API 100 ms
# away. A window's page says nothing about the stored cursor: such a page
# ends the windows (the one chain goes on after the last event taken), and
# the cursor is never taken for expired -- no reconciliation, no events
# skipped; the mirror and the log converge exactly.
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 30000 7117
emu_start "$EVENTS_SERVED" --latency 100
daemon_config workos.fetch_windows=8
daemon_start
wait_for 60 "the windows to begin" grep -q 'event=windows_begin' "$DAEMON_LOG"
wait_first_page 60

FAULT_FROM=$(($(reqlog_lines) + 1))
emu_fault restart 3
wait_for 30 "3 restart faults to fire" faults_fired restart 3 "$FAULT_FROM"
[ "$(cursor)" != "$(last_event_id "$EVENTS")" ] || fail "the backfill ended before the faults fired"
log "faults fired at cursor $(cursor); windows ended $(grep -c 'event=windows_off ' "$DAEMON_LOG" || true) times"
wait_caught_up 180
daemon_alive || fail "daemon exited"
grep -q 'event=cursor_expired' "$DAEMON_LOG" && fail "a window's page was taken for an expired cursor"
grep -q 'event=reconcile_run ' "$DAEMON_LOG" && fail "a window's page started a reconciliation"
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"
daemon_stop
