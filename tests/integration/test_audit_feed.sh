#!/usr/bin/env bash
# The change feed (workos.changes) on a hand-written stream: an insert, an
# update carrying only the changed columns with old and new values, and a
# tombstone each append one row naming the event; a stale update, a
# duplicate event (also from the webhook side of the same stream, served
# twice) and an equal re-send append nothing; seq grows in commit order; a
# LISTEN on workos_changes hears the highest seq committed; the apply
# writes the subject columns, and audit_fill_subjects fills those of rows
# written by other means in bounded batches.
source "$(dirname "$0")/lib.sh"
require_bins

seq_no=0
ev() {
    seq_no=$((seq_no + 1))
    printf '{"object":"event","id":"evt_feed_%03d","event":"%s","data":%s,"created_at":"2024-03-01T00:00:%02d.000Z"}\n' \
        "$seq_no" "$1" "$2" "$seq_no"
}
user() { # id updated_at first_name [deleted]
    printf '{"object":"user","id":"%s","email":"%s@example.test","first_name":"%s","last_name":"Test","email_verified":true,"profile_picture_url":null,"last_sign_in_at":null,"external_id":null,"metadata":{},"locale":null,"created_at":"2024-02-01T00:00:00.000Z","updated_at":"%s"}' \
        "$1" "$1" "$3" "$2"
}
membership() { # id updated_at role
    printf '{"object":"organization_membership","id":"%s","user_id":"user_f1","organization_id":"org_f1","role":{"slug":"%s"},"status":"active","directory_managed":false,"custom_attributes":{},"created_at":"2024-02-01T00:00:00.000Z","updated_at":"%s"}' \
        "$1" "$3" "$2"
}
A=$T/phase1.jsonl
B=$T/phase2.jsonl
{
    ev user.created "$(user user_f1 2024-02-01T00:00:01.000Z Ann)"
    ev organization_membership.created "$(membership om_f1 2024-02-01T00:00:01.000Z member)"
    ev authentication.password_succeeded '{"type":"password","status":"succeeded","user_id":"user_f1","email":"user_f1@example.test","ip_address":"192.0.2.1","user_agent":"curl"}'
} >"$A"
{
    ev user.updated "$(user user_f1 2024-02-01T00:00:03.000Z Bea)"
    ev user.updated "$(user user_f1 2024-02-01T00:00:02.000Z Old)" # stale
    ev organization_membership.deleted "$(membership om_f1 2024-02-01T00:00:03.000Z member)"
} >"$B"
# The same values again under a new event id, in a batch of its own: the
# row is rewritten (equal updated_at), but nothing but bookkeeping differs.
C=$T/phase3.jsonl
ev user.updated "$(user user_f1 2024-02-01T00:00:03.000Z Bea)" >"$C"

pg_start
emu_start "$A"
daemon_config
daemon_migrate
# A listener started before the daemon; it prints every payload it gets.
LISTEN_OUT=$T/listen.out
{
    echo "listen workos_changes;"
    for _ in $(seq 1 300); do
        echo "select 1;"
        sleep 0.1
    done
} | q >"$LISTEN_OUT" 2>&1 &
track_pid $!
daemon_start
wait_caught_up 30 evt_feed_003

changes() {
    sql "select table_name, object_id, operation, changes::text, coalesce(event_id, '-')
           from workos.changes order by seq"
}
want1="users|user_f1|insert|$(sql "select jsonb_build_object(
    'id', jsonb_build_object('old', null, 'new', 'user_f1'),
    'email', jsonb_build_object('old', null, 'new', 'user_f1@example.test'),
    'first_name', jsonb_build_object('old', null, 'new', 'Ann'),
    'last_name', jsonb_build_object('old', null, 'new', 'Test'),
    'email_verified', jsonb_build_object('old', null, 'new', true),
    'metadata', jsonb_build_object('old', null, 'new', '{}'::jsonb),
    'created_at', jsonb_build_object('old', null, 'new', '2024-02-01T00:00:00+00:00'),
    'updated_at', jsonb_build_object('old', null, 'new', '2024-02-01T00:00:01+00:00'))::text")|evt_feed_001"
got=$(changes)
assert_eq 2 "$(printf '%s\n' "$got" | wc -l | tr -d ' ')" "change rows after phase 1"
assert_eq "$want1" "$(printf '%s\n' "$got" | head -n 1)" "the user's insert"
printf '%s\n' "$got" | sed -n 2p | grep -q '^organization_memberships|om_f1|insert|.*|evt_feed_002$' ||
    fail "membership insert missing: $got"

emu_append "$B"
wait_caught_up 30 evt_feed_006
emu_append "$C"
wait_caught_up 30 evt_feed_007
assert_eq evt_feed_007 "$(sql "select last_event_id from workos.users where id = 'user_f1'")" "the equal event was applied"
got=$(changes)
assert_eq 4 "$(printf '%s\n' "$got" | wc -l | tr -d ' ')" "change rows after phase 2 (stale and equal events append nothing)"
assert_eq 'users|user_f1|update|{"first_name": {"new": "Bea", "old": "Ann"}, "updated_at": {"new": "2024-02-01T00:00:03+00:00", "old": "2024-02-01T00:00:01+00:00"}}|evt_feed_004' \
    "$(printf '%s\n' "$got" | sed -n 3p)" "the update: changed columns only"
printf '%s\n' "$got" | sed -n 4p | grep -q '^organization_memberships|om_f1|tombstone|{"deleted_at": {"new": "[^"]*", "old": null}, "updated_at": .*|evt_feed_006$' ||
    fail "membership tombstone wrong: $(printf '%s\n' "$got" | sed -n 4p)"
assert_eq "1 2 3 4" "$(sql "select string_agg(rank::text, ' ' order by seq) from (select seq, rank() over (order by seq) from workos.changes) s")" "seq order"
sql "select count(*) = count(distinct seq) and min(seq) >= 1 from workos.changes" | grep -qx t || fail "seq not unique"

# Events applied before, served again (the cursor moved back, as after a
# restore): duplicates append nothing.
daemon_stop
sql "update workos.sync_state set cursor = 'evt_feed_001'"
daemon_start
wait_caught_up 30 evt_feed_007
assert_eq 4 "$(sql "select count(*) from workos.changes")" "change rows after a duplicate event id"

# The listener heard the highest seq committed.
wait_for 10 "a notification with seq 4" grep -q '"seq": 4' "$LISTEN_OUT"
# One notification a transaction: the batch's summary and the seq together.
grep '"seq": 4' "$LISTEN_OUT" | grep -q '"source" *: *"events_api"' ||
    fail "the seq notification lacks the batch summary: $(grep '"seq": 4' "$LISTEN_OUT")"
n=$(grep 'Asynchronous notification' "$LISTEN_OUT" | grep -vc '"seq"' || true)
assert_eq 0 "$n" "notifications without seq (a second one per transaction)"
log "notification: $(grep '"seq"' "$LISTEN_OUT" | tail -n 1)"

# Subjects: written by the apply itself, derived as documented.
assert_eq 0 "$(sql "select count(*) from workos.events where object_type is null")" "rows the apply left unfilled"
assert_eq "authentication||user_f1|" "$(sql "select object_type, object_id, user_id, organization_id from workos.events where id = 'evt_feed_003'")" "authentication subjects"
assert_eq "organization_membership|om_f1|user_f1|org_f1" "$(sql "select object_type, object_id, user_id, organization_id from workos.events where id = 'evt_feed_006'")" "membership subjects"
assert_eq "user|user_f1|user_f1|" "$(sql "select object_type, object_id, user_id, organization_id from workos.events where id = 'evt_feed_001'")" "user subjects"
# Rows written by other means are filled in bounded batches (the daemon,
# whose housekeeping would fill them, is stopped first).
daemon_stop
sql "insert into workos.events (id, event, created_at, data, source)
     select 'evt_sql_' || g, 'session.created', now(), jsonb_build_object('id', 'session_' || g, 'user_id', 'user_f1', 'organization_id', 'org_f1'), 'webhook'
       from generate_series(1, 7) g" >/dev/null
assert_eq 7 "$(sql "select count(*) from workos.events where object_type is null")" "unfilled rows"
assert_eq 5 "$(sql "select workos.audit_fill_subjects(5)")" "first batch"
assert_eq 2 "$(sql "select workos.audit_fill_subjects(5)")" "second batch"
assert_eq 0 "$(sql "select workos.audit_fill_subjects(5)")" "nothing left"
assert_eq "session|session_3|user_f1|org_f1" "$(sql "select object_type, object_id, user_id, organization_id from workos.events where id = 'evt_sql_3'")" "filled subjects"
assert_eq "api_key|key_1|user_9|" "$(sql "select array_to_string(workos.audit_subjects('api_key.created', '{\"id\":\"key_1\",\"owner\":{\"type\":\"user\",\"id\":\"user_9\"}}'), '|', '')")" "api key owned by a user"
assert_eq "api_key|key_2||org_9" "$(sql "select array_to_string(workos.audit_subjects('api_key.created', '{\"id\":\"key_2\",\"owner\":{\"type\":\"organization\",\"id\":\"org_9\"}}'), '|', '')")" "api key owned by an organization"
assert_eq "invitation|inv_1|user_2|org_3" "$(sql "select array_to_string(workos.audit_subjects('invitation.accepted', '{\"id\":\"inv_1\",\"inviter_user_id\":\"user_1\",\"accepted_user_id\":\"user_2\",\"organization_id\":\"org_3\"}'), '|', '')")" "invitation"
# The user's trail is an index scan.
sql "set enable_seqscan = off; explain select * from workos.events where user_id = 'user_f1' order by created_at" |
    grep -q 'events_user_id_created_at_idx' || fail "the user's trail does not use the index"
syncd verify >"$T/verify.out" || fail "verify failed: $(cat "$T/verify.out")"
grep -qx 'state=intact' "$T/verify.out" || fail "verify: $(cat "$T/verify.out")"
