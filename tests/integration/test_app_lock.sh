#!/usr/bin/env bash
# An application holds SELECT ... FOR UPDATE on a mirror row for about 5 s
# while events for that row arrive, by the Events API and by webhook. With
# [database] lock_timeout = 200ms the daemon is never wedged behind it: each
# apply that needs the row fails after the lock timeout and is retried as a
# transient failure; `status` names the lock timeout; the webhook is
# answered 503 at once; /healthz answers throughout. Once the application
# commits, the mirror converges exactly to the emulator's history. A second
# lock, then SIGTERM while a webhook waits on it: the daemon exits promptly.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

SECRET=whsec_applock_6a1f09d3
pg_start
gen_stream 1500 7303
# The emulator serves the first 60 % now and the rest while the row is locked.
head_n=$(($(wc -l <"$EVENTS_SERVED") * 6 / 10))
head -n "$head_n" "$EVENTS_SERVED" >"$T/head.jsonl"
tail -n +"$((head_n + 1))" "$EVENTS_SERVED" >"$T/tail.jsonl"
# A user created before the split and updated after it: its row exists when
# the lock is taken and the later events must write it.
user=$(python3 - "$T/head.jsonl" "$T/tail.jsonl" "$T/lock_event.json" <<'PY'
import json, sys
live = set()
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "user.created":
        live.add(e["data"]["id"])
    elif e["event"] == "user.deleted":
        live.discard(e["data"]["id"])
for line in open(sys.argv[2]):
    e = json.loads(line)
    if e["event"] == "user.updated" and e["data"]["id"] in live:
        open(sys.argv[3], "w").write(line.rstrip("\n"))
        print(e["data"]["id"])
        break
PY
)
[ -n "$user" ] || fail "no user is created before the split and updated after it"
emu_start "$T/head.jsonl"
daemon_config webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET" database.lock_timeout=200ms
daemon_start
wh_wait_port
wait_caught_up 60 --file "$T/head.jsonl"

# The application's transaction: the row lock, held ~5 s.
hold_lock() {
    q <<SQL >"$T/lock-$1.out" 2>&1
begin;
select id from $SYNCD_SCHEMA.users where id = '$user' for update;
\! touch $T/locked-$1
select pg_sleep($2);
commit;
SQL
}
hold_lock 1 5 &
lock_pid=$!
wait_for 10 "the application to hold the row lock" test -e "$T/locked-1"
locked_ms=$(now_ms)
log "application holds FOR UPDATE on users $user"

t0=$(now_ms)
code=$(wh_post "$T/lock_event.json" "$SECRET")
took=$(($(now_ms) - t0))
assert_eq 503 "$code" "webhook for the locked row"
[ "$took" -lt 2000 ] || fail "the webhook for the locked row took $took ms"
log "webhook for the locked row: 503 in $took ms"

from=$(($(wc -l <"$DAEMON_LOG") + 1))
emu_append "$T/tail.jsonl"
wait_log 10 "$DAEMON_LOG" 'event=apply_failed .*lock timeout' "$from"
assert_eq 200 "$(http_code "$WH_BASE/healthz")" "/healthz while the row is locked"
status_shows_lock() {
    syncd status >"$T/status.out" 2>&1 || true
    grep -q '^last_error=.*lock timeout' "$T/status.out"
}
wait_for 5 "status to show the lock timeout" status_shows_lock
log "status while locked: $(grep -e '^state=' -e '^last_error=' "$T/status.out" | tr '\n' ' ')"
daemon_alive || fail "daemon exited while the row was locked"
wait_gone "$lock_pid" 15 || fail "the application's transaction did not end"
reap "$lock_pid"
[ "$REAP_RC" -eq 0 ] || fail "the application's transaction failed: $(cat "$T/lock-1.out")"
log "application committed after $(($(now_ms) - locked_ms)) ms"
n_failed=$(awk -v from="$from" 'NR >= from && /event=apply_failed .*lock timeout/' "$DAEMON_LOG" | wc -l)

wait_caught_up 60
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"
assert_eq 200 "$(wh_post "$T/lock_event.json" "$SECRET")" "webhook resent after the lock"
log "converged after $n_failed lock timeouts"
syncd status >"$T/status.out" 2>&1 || true
grep -q '^last_error=.*lock timeout' "$T/status.out" && fail "status still shows the lock timeout"

# SIGTERM while a webhook's batch waits on a lock.
hold_lock 2 10 &
lock_pid=$!
wait_for 10 "the application to hold the row lock again" test -e "$T/locked-2"
sed -e 's/"id":"evt_/"id":"evt_z/' -e 's/"updated_at":"[^"]*"/"updated_at":"2031-01-01T00:00:00.000Z"/g' \
    "$T/lock_event.json" >"$T/lock_event2.json"
wh_post "$T/lock_event2.json" "$SECRET" >"$T/wh2.code" &
wh_pid=$!
sleep 0.1
daemon_stop 5
[ "$DAEMON_STOP_MS" -lt 2000 ] || fail "SIGTERM during the lock wait took $DAEMON_STOP_MS ms"
log "SIGTERM during the lock wait: exited in $DAEMON_STOP_MS ms"
wait "$wh_pid" || true
log "the webhook sent before SIGTERM was answered $(cat "$T/wh2.code")"
# The application's second transaction ends with the cluster at clean-up.
