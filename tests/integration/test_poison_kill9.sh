#!/usr/bin/env bash
# kill -9 while a refused batch is being split converges: 90 events, every
# tenth refused by an operator's CHECK, and a trigger that makes each mirror
# row cost 20 ms, so that finding the nine takes seconds.  The daemon is
# killed at random moments of it, restarted each time; in the end every
# good event is mirrored, the nine are kept (in the log, mirror skipped,
# each in poison_events once with its error), the cursor is at the last
# event, and no poison event is logged twice.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

T1=2024-02-01T00:00:01.000Z
EVENTS=$T/events.jsonl
for i in $(seq 1 90); do
    domain=example.test
    [ $((i % 10)) -eq 0 ] && domain=blocked.test
    printf '{"object":"event","id":"evt_k_%03d","event":"user.created","data":{"object":"user","id":"user_k_%03d","email":"u%d@%s","first_name":"F","last_name":"L","email_verified":true,"created_at":"%s","updated_at":"%s"},"created_at":"2024-03-01T00:%02d:%02d.000Z"}\n' \
        "$i" "$i" "$i" "$domain" "$T1" "$T1" $((i / 60)) $((i % 60))
done >"$EVENTS"
last=evt_k_090

pg_start
emu_start "$EVENTS"
daemon_config log.level=info
daemon_migrate
q <<'SQL'
ALTER TABLE workos.users ADD CHECK (email NOT LIKE '%@blocked.test');
CREATE FUNCTION public.slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(0.02);
    RETURN NEW;
END $$;
CREATE TRIGGER slow_row BEFORE INSERT OR UPDATE ON workos.users
    FOR EACH ROW EXECUTE FUNCTION public.slow_row();
SQL

kills=0 partial=0
for round in $(seq 1 8); do
    daemon_start
    n=$((RANDOM % 12 + 6)) # 0.6 to 1.7 s
    sleep "$((n / 10)).$((n % 10))"
    if [ "$(cursor)" = "$last" ]; then
        daemon_stop
        break
    fi
    daemon_kill9
    kills=$((kills + 1))
    kept=$(sql "select count(*) from workos.poison_events")
    log "kill $kills: cursor '$(cursor)', $kept poison events kept"
    [ "$kept" -gt 0 ] && [ "$kept" -lt 9 ] && partial=$((partial + 1))
done
split_runs=$(grep -c 'event=apply_refused' "$DAEMON_LOG" || true)
log "killed $kills times; $split_runs runs split the batch"
[ "$kills" -ge 2 ] || fail "only $kills kills landed before the batch was applied"
[ "$split_runs" -ge 2 ] || fail "only $split_runs runs were splitting the batch when killed"
[ "$partial" -ge 1 ] || fail "no kill landed after some poison events were kept and before all were"

daemon_start
wait_caught_up 120 "$last"
assert_eq 81 "$(sql "select count(*) from workos.users")" "every good event mirrored"
assert_eq 0 "$(sql "select count(*) from workos.users where email like '%@blocked.test'")" "no refused row mirrored"
assert_eq 90 "$(events_count)" "every event in the log, once"
assert_eq "9|9|23514" \
    "$(sql "select count(*), count(*) filter (where in_log), min(sqlstate) from workos.poison_events")" \
    "the nine refused events kept, in the log"
assert_eq "" "$(sql "select id from workos.poison_events where id !~ '^evt_k_0[0-9]0$' ")" \
    "only the refused events are poison"
dups=$(grep -o 'event=poison_event id=[^ ]*' "$DAEMON_LOG" | sort | uniq -d)
assert_eq "" "$dups" "no poison event logged twice"
daemon_stop
