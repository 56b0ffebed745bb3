#!/usr/bin/env bash
# PostgreSQL going away in the middle of a backfill is survived: a clean
# restart (pg_ctl stop -m fast; start) and a crash (stop -m immediate, then
# start after a pause). The daemon keeps running, reconnects, resumes from
# the stored cursor, and the mirror converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins

paced_stream 10000 505 50
last=$(last_event_id "$EVENTS")
daemon_config
daemon_start

wait_first_page 60
sleep 0.5
c1=$(cursor)
[ "$c1" != "$last" ] || fail "backfill finished too early"
pg_restart
log "postgresql restarted (fast) at cursor $c1"

moved_past() { local c; c=$(cursor); [ -n "$c" ] && [ "$c" != "$1" ]; }
wait_for 60 "progress after the restart" moved_past "$c1"
daemon_alive || fail "daemon exited when postgresql restarted"
sleep 0.5
c2=$(cursor)
[ "$c2" != "$last" ] || fail "backfill finished too early"
pg_kill
log "postgresql crashed at cursor $c2; down for 2 s"
sleep 2
daemon_alive || fail "daemon exited while postgresql was down"
pg_up
log "postgresql back"

emu_clear_faults
wait_caught_up 90
daemon_alive || fail "daemon exited"
assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
daemon_stop
