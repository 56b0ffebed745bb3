#!/usr/bin/env bash
# A restart resumes from the stored cursor with no duplicate effect: SIGTERM
# in the middle of a backfill exits 0 quickly, the first request of the next
# run asks for after=<the cursor stored before the restart>, and the mirror
# and event log converge exactly.
source "$(dirname "$0")/lib.sh"
require_bins

# Slow every page a little so the backfill is still running when stopped.
paced_stream 8000 202 60
last=$(last_event_id "$EVENTS")
daemon_config
daemon_start

wait_first_page 60
sleep 0.5
daemon_stop 5
log "SIGTERM mid-backfill: exit 0 after $DAEMON_STOP_MS ms"
stored=$(cursor)
[ -n "$stored" ] || fail "no cursor stored before the restart"
[ "$stored" != "$last" ] || fail "backfill finished before the restart; the test proved nothing"

# The emulator logs a request as it reads it; give it a moment to read any
# the stopped run sent last, so the next line is the new run's first.
sleep 0.3
mark=$(reqlog_lines)
emu_clear_faults
daemon_start
wait_caught_up 90

first=$(sed -n "$((mark + 1))p" "$EMU_LOG")
[ -n "$first" ] || fail "no request logged after the restart"
assert_eq "$stored" "$(reqlog_field "$first" after)" "after= of the first request after the restart"
log "first request after restart: after=$stored"

assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
daemon_stop
