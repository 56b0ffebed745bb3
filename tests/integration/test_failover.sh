#!/usr/bin/env bash
# Failover between two real clusters. A is the primary, B its streaming
# standby (pg_basebackup -R); the daemon's url names both with
# target_session_attrs=read-write. In the middle of a backfill A turns
# read-only under the daemon (ALTER SYSTEM default_transaction_read_only,
# reload: a demoted primary that stays up). The next apply fails with
# SQLSTATE 25006; that is the server's state, not the batch's: the daemon
# drops the connection and reconnects with backoff, finds no writable host
# (A read-only, B in recovery) and keeps trying without giving up on an
# event. B is promoted; the daemon moves to B, takes the poller lock there,
# and the backfill ends on B with exactly the emulator's history.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

paced_stream 6000 9101 150
last=$(last_event_id "$EVENTS")
A_PORT=$PGPORT
pg_standby_start b
B_PORT=$PG_STANDBY_PORT B_DIR=$PG_STANDBY_DIR
export DATABASE_URL="postgresql://postgres@127.0.0.1:$A_PORT,127.0.0.1:$B_PORT/postgres?target_session_attrs=read-write"
daemon_config "database.url=$DATABASE_URL"
daemon_start

wait_first_page 60
wait_log 10 "$DAEMON_LOG" "event=db_connected host=.?127.0.0.1.? port=.?$A_PORT"
sleep 0.5
c1=$(cursor)
[ "$c1" != "$last" ] || fail "backfill finished too early"

q -c "alter system set default_transaction_read_only = on" -c "select pg_reload_conf()" >/dev/null
log "A is read-only now (cursor $c1)"
wait_log 15 "$DAEMON_LOG" 'event=db_disconnected .*25006'
daemon_alive || fail "daemon exited when the primary turned read-only"

# No host is writable: the daemon keeps retrying, the cursor stays put.
from=$(($(wc -l <"$DAEMON_LOG") + 1))
wait_log 15 "$DAEMON_LOG" 'event=db_disconnected state=1 .*read-only' "$from"
c2=$(cursor)
sleep 1
assert_eq "$c2" "$(cursor)" "cursor while no host is writable"
grep -q -i -e 'poison' -e 'event=event_skipped' "$DAEMON_LOG" &&
    fail "a read-only server was blamed on an event"

# B has everything A committed before it is promoted.
a_lsn=$(sql "select pg_current_wal_lsn()")
b_replayed() {
    [ "$(PGHOST=$B_DIR PGPORT=$B_PORT sql "select pg_last_wal_replay_lsn() >= '$a_lsn'")" = t ]
}
wait_for 20 "B to replay A's WAL up to $a_lsn" b_replayed
pg_ctl_dir "$B_DIR" promote || fail "could not promote B"
log "B promoted; A stays up, read-only"
wait_log 30 "$DAEMON_LOG" "event=db_connected host=.?127.0.0.1.? port=.?$B_PORT"
wait_log 15 "$DAEMON_LOG" 'event=poller_leader' "$from"

export PGHOST=$B_DIR PGPORT=$B_PORT
emu_clear_faults
wait_caught_up 90
daemon_alive || fail "daemon exited"
assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
daemon_stop
