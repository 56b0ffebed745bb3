#!/usr/bin/env bash
# The primary crashes (pg_ctl stop -m immediate) in the middle of a backfill
# and its streaming standby is promoted, as an HA manager would. The
# daemon, its url naming both hosts with target_session_attrs=read-write,
# keeps running while no host is writable, then reconnects to the promoted
# standby, takes the poller lock there and resumes from the cursor the
# standby has (replication is asynchronous: it may be a little behind what
# the primary had committed). The backfill ends on the new primary with
# exactly the emulator's history; webhooks are answered 503 while no host
# is writable and 200 again after.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

SECRET=whsec_failcrash_41c0ee7b
paced_stream 6000 9202 120
last=$(last_event_id "$EVENTS")
A_PORT=$PGPORT
pg_standby_start b
B_PORT=$PG_STANDBY_PORT B_DIR=$PG_STANDBY_DIR
export DATABASE_URL="postgresql://postgres@127.0.0.1:$A_PORT,127.0.0.1:$B_PORT/postgres?target_session_attrs=read-write&connect_timeout=2"
daemon_config "database.url=$DATABASE_URL" webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET"
daemon_start
wh_wait_port
wait_first_page 60
sleep 0.5
c1=$(cursor)
[ "$c1" != "$last" ] || fail "backfill finished too early"

from=$(($(wc -l <"$DAEMON_LOG") + 1))
pg_kill
log "A crashed at cursor $c1"
wait_log 10 "$DAEMON_LOG" 'event=db_disconnected' "$from"
body=$(body_file hand.json "$(user_event_json evt_failcrash_0001 user_failcrash_0001)")
assert_eq 503 "$(wh_post "$body" "$SECRET")" "webhook while no host is writable"
assert_eq 200 "$(http_code "$WH_BASE/healthz")" "/healthz while no host is writable"
sleep 1
daemon_alive || fail "daemon exited while no host was writable"

pg_ctl_dir "$B_DIR" promote || fail "could not promote B"
log "B promoted"
wait_log 30 "$DAEMON_LOG" "event=db_connected host=.?127.0.0.1.? port=.?$B_PORT" "$from"
wait_log 15 "$DAEMON_LOG" 'event=poller_leader' "$from"
export PGHOST=$B_DIR PGPORT=$B_PORT
log "daemon on B, resuming from $(cursor)"
readyz_200() { [ "$(http_code "$WH_BASE/readyz")" = 200 ]; }
wait_for 15 "/readyz 200 on B" readyz_200
assert_eq 200 "$(wh_post "$body" "$SECRET")" "webhook once B is writable"
assert_eq 1 "$(sql "select count(*) from $SYNCD_SCHEMA.users where id = 'user_failcrash_0001'")" \
    "the webhook's user on B"
sql "delete from $SYNCD_SCHEMA.users where id = 'user_failcrash_0001'" >/dev/null
# The log is append-only; the test, as superuser, steps around its guard to
# take its own probe out again.
sql "set session_replication_role = replica; delete from $SYNCD_SCHEMA.events where id = 'evt_failcrash_0001'" >/dev/null

emu_clear_faults
wait_caught_up 90
daemon_alive || fail "daemon exited"
assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
daemon_stop
