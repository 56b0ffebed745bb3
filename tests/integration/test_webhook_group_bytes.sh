#!/usr/bin/env bash
# Webhooks waiting on a stalled database hold bounded memory. While one
# group commits, the next takes requests until their bodies reach 64 MiB;
# after that new requests get 503 (WorkOS retries). When the database
# catches up, every request answered 2xx is stored.
#
# Nine 12 MiB bodies (valid events padded with whitespace) arrive while a
# transaction holds the event log's lock: the first starts the committing
# group and waits on the lock, five (60 MiB) fit the next group, and the
# last three are refused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

S=whsec_group_bytes
pg_start
daemon_config webhook.listen=127.0.0.1:0 webhook.secret=$S webhook.max_body=16MiB \
    workos.api_key= log.level=info
daemon_start
wh_wait_port

pad=$((12 * 1024 * 1024))
for i in 1 2 3 4 5 6 7 8 9; do
    f=$T/big$i.json
    {
        user_event_json "evt_GROUPBYTES_$i" "user_groupbytes_$i"
        head -c "$pad" /dev/zero | tr '\0' ' '
    } >"$f"
    wh_signature "$f" "$S" >"$f.sig"
done

# Stall the database: hold the event log's lock for a few seconds.
hold_lock() {
    "$PG_BIN/psql" -X -q -c "begin; lock table workos.events in access exclusive mode;
        select pg_sleep(4); commit;" >/dev/null &
    wait
}
spawn lock hold_lock PG_BIN PGHOST PGPORT PGUSER PGDATABASE
lock_pid=$SPAWN_PID
locked() { [ "$(sql "select count(*) from pg_locks where relation = 'workos.events'::regclass and mode = 'AccessExclusiveLock' and granted")" = 1 ]; }
wait_for 10 "the lock on the event log" locked

post() {
    local i=$1
    curl -s -o "$T/answer$i" -w '%{http_code}' --max-time 30 -X POST \
        -H 'Content-Type: application/json' -H 'Expect:' \
        -H "WorkOS-Signature: $(cat "$T/big$i.json.sig")" \
        --data-binary "@$T/big$i.json" "$WH_URL" >"$T/code$i" 2>/dev/null || true
}
post 1 &
p1=$!
# The first request is the committing group before the others arrive.
first_waiting() {
    [ "$(sql "select count(*) from pg_stat_activity
        where application_name = 'workos-syncd' and wait_event_type = 'Lock'")" -ge 1 ]
}
wait_for 10 "the first webhook's commit to wait on the lock" first_waiting
pids=()
for i in 2 3 4 5 6 7 8 9; do
    post "$i" &
    pids+=($!)
done
wait "$p1" "${pids[@]}"
wait "$lock_pid" 2>/dev/null || true

ok=0 refused=0
: >"$T/ok-ids.txt"
for i in 1 2 3 4 5 6 7 8 9; do
    code=$(cat "$T/code$i")
    case $code in
    2??)
        ok=$((ok + 1))
        echo "evt_GROUPBYTES_$i" >>"$T/ok-ids.txt"
        ;;
    503)
        refused=$((refused + 1))
        grep -q overloaded "$T/answer$i" || fail "503 for request $i does not say overloaded: $(cat "$T/answer$i")"
        ;;
    *) fail "request $i: unexpected answer $code: $(cat "$T/answer$i" 2>/dev/null)" ;;
    esac
done
log "answered: $ok 2xx, $refused 503"
assert_eq 6 "$ok" "requests accepted (one committing, five filling 60 of 64 MiB)"
assert_eq 3 "$refused" "requests refused over the group's 64 MiB"
assert_ids_stored "$T/ok-ids.txt" "accepted webhooks"
assert_eq 6 "$(events_count)" "events stored"
daemon_alive || fail "daemon exited"
daemon_stop
