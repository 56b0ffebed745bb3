#!/usr/bin/env bash
# Events the daemon cannot apply do not stop the stream: an unknown event
# type is kept in the event log and otherwise ignored; events malformed for
# their type (garbage updated_at, data not an object, no id, wrong field
# types, older than the row so it matters not how they are read) are kept in the event log, and the events after them are applied.
source "$(dirname "$0")/lib.sh"
require_bins

T1=2024-02-01T00:00:01.000Z
T2=2024-02-01T00:00:02.000Z
EV_PREFIX=odd
user() { # id updated_at first_name
    printf '{"object":"user","id":"%s","email":"%s@example.test","first_name":"%s","last_name":"Test","email_verified":false,"created_at":"%s","updated_at":"%s"}' \
        "$1" "$1" "$3" "$T1" "$2"
}

EVENTS=$T/events.jsonl
{
    ev user.created "$(user user_o1 "$T1" Before)"
    ev widget.frobnicated '{"object":"widget","id":"wdg_1","color":"blue","nested":{"a":[1,2,3]}}'
    ev user.updated '{"object":"user","id":"user_o1","first_name":"Garbage","updated_at":"garbage","created_at":"garbage"}'
    ev user.updated '"data is a string"'
    ev user.updated '[1,2,3]'
    ev user.updated 'null'
    ev user.updated '{"object":"user","first_name":"No id","updated_at":"2024-02-01T00:00:09.000Z"}'
    ev user.updated '{"object":"user","id":"user_o1","first_name":{"not":"text"},"email_verified":"maybe","updated_at":"2024-01-15T00:00:00.000Z"}'
    ev organization_membership.created '{"object":"organization_membership","id":"om_o1"}'
    ev user.updated "$(user user_o1 "$T2" After)"
    ev user.created "$(user user_o2 "$T1" Second)"
} >"$EVENTS"
n_events=$(wc -l <"$EVENTS" | tr -d ' ')

pg_start
emu_start "$EVENTS"
# The unknown type must be asked for, or the API filter would hide it.
daemon_config "workos.events=user.created,user.updated,user.deleted,organization_membership.created,widget.frobnicated"
daemon_start
wait_caught_up 60
daemon_alive || fail "daemon exited"

assert_events_exact "$EVENTS"
assert_events_content "$EVENTS"
got=$(sql "select count(*) from workos.events")
assert_eq "$n_events" "$got" "events kept"
got=$(sql "select first_name || '|' || (updated_at = '$T2') || '|' || (deleted_at is null)
             from workos.users where id = 'user_o1'")
assert_eq "After|true|true" "$got" "user_o1 after the malformed updates"
got=$(sql "select first_name from workos.users where id = 'user_o2'")
assert_eq "Second" "$got" "user created after the malformed events"
got=$(sql "select string_agg(id, ',' order by id) from workos.users")
assert_eq "user_o1,user_o2" "$got" "users rows"
got=$(sql "select event from workos.events where id = 'evt_odd_002'")
assert_eq "widget.frobnicated" "$got" "unknown event type kept"
for t in $MIRROR_TABLES; do
    got=$(sql "select count(*) from workos.$t where id = 'wdg_1' or last_event_id = 'evt_odd_002'")
    assert_eq 0 "$got" "rows in workos.$t from the unknown event type"
done
# A membership without updated_at cannot be ordered; it must not crash the
# daemon, whatever it does with the row.
wait_for 15 "status to report caught up" syncd status >/dev/null 2>&1
daemon_stop
