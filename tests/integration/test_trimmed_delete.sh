#!/usr/bin/env bash
# A deletion whose payload holds only the object's id (as WorkOS can send
# user.deleted) tombstones the object, by the poller and by a webhook: the
# row keeps the fields it had, gets deleted_at, and a create that arrives
# after such a delete does not bring the object back.  Every trimmed kind
# (user, membership, organization, api_key.revoked) is covered, and the
# stream goes on after them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

T1=2024-02-01T00:00:01.000Z
seq_no=0
ev() { # TYPE DATA
    seq_no=$((seq_no + 1))
    printf '{"object":"event","id":"evt_trim_%03d","event":"%s","data":%s,"created_at":"2024-03-01T00:00:%02d.000Z"}\n' \
        "$seq_no" "$1" "$2" "$seq_no"
}
user() { # ID FIRST_NAME
    printf '{"object":"user","id":"%s","email":"%s@example.test","first_name":"%s","last_name":"Test","email_verified":true,"created_at":"%s","updated_at":"%s"}' \
        "$1" "$1" "$2" "$T1" "$T1"
}

EVENTS=$T/events.jsonl
{
    ev user.created "$(user user_t1 Kept)"
    ev organization.created "{\"object\":\"organization\",\"id\":\"org_t1\",\"name\":\"Acme\",\"created_at\":\"$T1\",\"updated_at\":\"$T1\"}"
    ev organization_membership.created "{\"object\":\"organization_membership\",\"id\":\"om_t1\",\"user_id\":\"user_t1\",\"organization_id\":\"org_t1\",\"status\":\"active\",\"created_at\":\"$T1\",\"updated_at\":\"$T1\"}"
    ev api_key.created "{\"object\":\"api_key\",\"id\":\"key_t1\",\"name\":\"ci\",\"owner\":{\"type\":\"organization\",\"id\":\"org_t1\"},\"created_at\":\"$T1\",\"updated_at\":\"$T1\"}"
    ev user.deleted '{"id":"user_t1"}'
    ev organization_membership.deleted '{"id":"om_t1"}'
    ev organization.deleted '{"id":"org_t1"}'
    ev api_key.revoked '{"id":"key_t1"}'
    # A delete that comes before the create, trimmed: the create must lose.
    ev user.deleted '{"id":"user_t2"}'
    ev user.created "$(user user_t2 Resurrected)"
    ev user.created "$(user user_t3 After)"
} >"$EVENTS"

S1=whsec_trimmed_delete_5e1d
pg_start
emu_start "$EVENTS"
daemon_config webhook.listen=127.0.0.1:0 "webhook.secret=$S1"
daemon_start
wh_wait_port
wait_caught_up 60
daemon_alive || fail "daemon exited"
assert_events_exact "$EVENTS"

row() { sql "select $2 from workos.$1 where id = '$3'"; }
assert_eq "Kept|true|2024-03-01 00:00:05+00" \
    "$(row users "first_name || '|' || email_verified || '|' || deleted_at" user_t1)" \
    "user_t1: tombstoned by a trimmed delete, fields kept"
assert_eq "active|true" "$(row organization_memberships "status || '|' || (deleted_at is not null)" om_t1)" \
    "om_t1: tombstoned, fields kept"
assert_eq "Acme|true" "$(row organizations "name || '|' || (deleted_at is not null)" org_t1)" \
    "org_t1: tombstoned, fields kept"
assert_eq "ci|org_t1|true" "$(row api_keys "name || '|' || owner_id || '|' || (deleted_at is not null)" key_t1)" \
    "key_t1: tombstoned by a trimmed api_key.revoked"
assert_eq "true|true" "$(row users "(deleted_at is not null) || '|' || (first_name is null)" user_t2)" \
    "user_t2: a trimmed delete before the create wins"
assert_eq "After|true" "$(row users "first_name || '|' || (deleted_at is null)" user_t3)" \
    "user_t3: the stream goes on"
got=$(sql "select count(*) from workos.users where deleted_at is null")
assert_eq 1 "$got" "live users"

# The same by webhook: a user created, then a trimmed delete.
created=$(body_file created.json "$(user_event_json evt_TRIMWH00000000000000000001 user_wh1)")
trimmed=$(body_file trimmed.json '{"object":"event","id":"evt_TRIMWH00000000000000000002","event":"user.deleted","data":{"id":"user_wh1"},"created_at":"2026-02-02T00:00:00.000Z"}')
assert_eq 200 "$(wh_post "$created" "$S1")" "webhook user.created"
assert_eq 200 "$(wh_post "$trimmed" "$S1")" "webhook trimmed user.deleted"
assert_eq "Ann|2026-02-02 00:00:00+00" "$(row users "first_name || '|' || deleted_at" user_wh1)" \
    "user_wh1: tombstoned by a trimmed webhook delete"
assert_eq 0 "$(sql "select count(*) from workos.events e where e.data = 'null'::jsonb")" \
    "no event kept without its data"
daemon_stop
