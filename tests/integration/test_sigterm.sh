#!/usr/bin/env bash
# SIGTERM during a backfill exits 0 within 5 s: once between pages, and once
# while a slow request to the API is still outstanding.
source "$(dirname "$0")/lib.sh"
require_bins

paced_stream 5000 404 50
last=$(last_event_id "$EVENTS")
daemon_config workos.request_timeout=20s
daemon_start

wait_first_page 60
sleep 0.3
[ "$(cursor)" != "$last" ] || fail "backfill finished too early"
daemon_stop 5
log "SIGTERM between pages: exit 0 after $DAEMON_STOP_MS ms"

# Now with a request that the emulator holds for 15 s.
emu_clear_faults
emu_fault delay 1000000 delay_ms=15000
daemon_start
sleep 1.5
daemon_alive || fail "daemon exited while its request was held"
daemon_stop 5
log "SIGTERM with a request in flight: exit 0 after $DAEMON_STOP_MS ms"

emu_clear_faults
daemon_start
wait_caught_up 90
assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
daemon_stop 5
