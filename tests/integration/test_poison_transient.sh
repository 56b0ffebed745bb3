#!/usr/bin/env bash
# A transient failure is retried, never taken for a poison event.  An
# application holds a lock on a mirror row; the daemon's connection runs
# with a short lock_timeout (55P03), so applying the page that updates the
# row fails until the lock goes.  The same events are applied once it does,
# nothing is put in poison_events, the batch is never split, and the
# retries back off on their own backoff -- a successful fetch before each
# retry does not reset it -- so a 6 s hold costs a handful of attempts.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

T1=2024-02-01T00:00:01.000Z
T2=2024-02-02T00:00:01.000Z
user() { # ID FIRST_NAME UPDATED_AT
    printf '{"object":"user","id":"%s","email":"%s@example.test","first_name":"%s","last_name":"L","email_verified":true,"created_at":"%s","updated_at":"%s"}' \
        "$1" "$1" "$2" "$T1" "$3"
}
EV_PREFIX=t
EVENTS=$T/events.jsonl
ev user.created "$(user user_lock First "$T1")" >"$EVENTS"

pg_start
emu_start "$EVENTS"
daemon_config
# The lock_timeout for the daemon's connection only (libpq reads PGOPTIONS).
export PGOPTIONS='-c lock_timeout=200'
daemon_start
wait_caught_up 30 evt_t_001

hold_row() {
    "$PG_BIN/psql" -X -q -c "begin; select 1 from workos.users where id = 'user_lock' for update;
        select pg_sleep(6) /* holding */; commit;" >/dev/null &
    wait
}
spawn lock hold_row PG_BIN PGHOST PGPORT PGUSER PGDATABASE
holding() {
    [ "$(sql "select count(*) from pg_stat_activity where query like '%/* holding */%'
        and state = 'active' and pid <> pg_backend_pid()")" = 1 ]
}
wait_for 10 "the application's row lock" holding
from=$(($(line_count "$DAEMON_LOG") + 1))
t0=$(now_ms)
{
    ev user.updated "$(user user_lock Changed "$T2")"
    ev user.created "$(user user_after After "$T1")"
} >"$T/more.jsonl"
emu_append "$T/more.jsonl"
wait_log 10 "$DAEMON_LOG" 'event=apply_failed .*lock timeout' "$from"
wait_caught_up 40 evt_t_003
held_ms=$(($(now_ms) - t0))
log "caught up ${held_ms} ms after the lock was taken"
[ "$held_ms" -ge 3000 ] || fail "caught up in ${held_ms} ms: the lock did not hold the apply back"

failed=$(awk -v from="$from" 'NR >= from && /event=apply_failed/' "$DAEMON_LOG" | wc -l)
log "$failed failed applies while the row was locked"
[ "$failed" -ge 1 ] || fail "no failed apply while the row was locked"
[ "$failed" -le 12 ] || fail "$failed failed applies in ~6 s: the apply backoff does not grow"
assert_eq 0 "$(awk -v from="$from" 'NR >= from && /event=apply_refused|event=poison_event/' "$DAEMON_LOG" | wc -l)" \
    "a lock timeout never splits the batch"
assert_eq 0 "$(sql "select count(*) from workos.poison_events")" "nothing quarantined"
assert_eq "Changed|After" \
    "$(sql "select (select first_name from workos.users where id = 'user_lock') || '|' || (select first_name from workos.users where id = 'user_after')")" \
    "the same events applied once the lock went"
assert_eq 3 "$(events_count)" "every event in the log"
daemon_stop
