#!/usr/bin/env bash
# [reconcile] interval: the daemon holding the poller lock reconciles
# periodically while it follows the Events API, so planted drift (a deleted
# row, a changed column, an extra live row) heals by itself; a standby
# instance on the same database never reconciles; /metrics counts the runs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 150 53
emu_start "$EVENTS_SERVED"
daemon_config reconcile.interval=2s webhook.listen=127.0.0.1:0 webhook.secret=s3cret-for-tests
daemon_start
wh_wait_port "$DAEMON_LOG"
wait_caught_up 60
wait_for 30 "a first periodic run" \
    bash -c "grep -q 'event=reconcile_done' '$DAEMON_LOG'"
first=$DAEMON_PID

# A second instance, standby: it must not reconcile.
"$SYNCD" run -c "$SYNCD_CONF" >>"$T/standby.log" 2>&1 &
standby=$!
track_pid "$standby"

gone=$(sql "select id from workos.users where deleted_at is null order by id limit 1")
changed=$(sql "select id from workos.users where deleted_at is null order by id offset 1 limit 1")
sql "delete from workos.users where id = '$gone'" >/dev/null
sql "update workos.users set email = 'planted@example.test' where id = '$changed'" >/dev/null
sql "insert into workos.users (id, email, updated_at) values ('user_planted_extra', 'x@example.test', now())" >/dev/null
runs=$(sql "select count(*) from workos.reconcile_runs where finished_at is not null")
wait_for 40 "two more finished runs" \
    bash -c "[ \"\$($PG_BIN/psql -X -A -t -d '$DATABASE_URL' -c 'select count(*) from workos.reconcile_runs where finished_at is not null')\" -ge $((runs + 2)) ]"
assert_mirror_lists "$EXPECTED"
n=$(sql "select count(*) from workos.users where id = 'user_planted_extra' and deleted_at is not null and last_event_id is null")
assert_eq 1 "$n" "the planted row as a reconciled tombstone"
proc_alive "$first" || fail "the first instance died"
runs=$(metric workos_syncd_reconcile_runs_total)
[ "${runs:-0}" -ge 3 ] || fail "/metrics reconcile_runs_total ${runs:-<absent>}, want >= 3"
n=$(metric workos_syncd_reconcile_requests_total)
[ "${n:-0}" -gt 0 ] || fail "/metrics reconcile_requests_total ${n:-<absent>}"
n=$(metric workos_syncd_reconcile_last_finished_timestamp_seconds)
[ "${n%%.*}" -gt 1700000000 ] || fail "/metrics reconcile_last_finished_timestamp_seconds ${n:-<absent>}"
if grep -q 'event=reconcile_run' "$T/standby.log"; then
    fail "the standby instance reconciled"
fi
kill -TERM "$standby"
wait "$standby" 2>/dev/null || true
daemon_stop
