#!/usr/bin/env bash
# Every variant of the apply statement works.  A batch names only the
# mirror tables it has rows for, one variant per set of tables, each
# prepared on a connection the first time a batch needs it.  With the
# daemon caught up, 63 small batches are appended to the stream one at a
# time, batch k holding one event for each mirror table in the set k, plus
# an authentication event no table takes: each is applied (the log holds
# its events, the mirror its objects) with nothing refused and no
# connection dropped.  After a PostgreSQL restart, which takes every
# prepared statement with it, batches of variants used before are applied
# again; and a batch of authentication events alone writes no table.
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
base_ms=$(($(now_ms) - 3600 * 1000))
n=0
# event TYPE DATA_WITHOUT_BRACES: one envelope, a millisecond after the last.
event() {
    n=$((n + 1))
    local t
    t=$(date -u -d "@$(((base_ms + n) / 1000)).$(printf '%03d' $(((base_ms + n) % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
    printf '{"object":"event","id":"evt_v_%04d","event":"%s","created_at":"%s","data":{%s,"created_at":"%s","updated_at":"%s"}}\n' \
        "$n" "$1" "$t" "$2" "$t" "$t"
}
# batch MASK: one event per mirror table whose bit is set (users,
# memberships, invitations, sessions, API keys, organizations: the daemon's
# table order), then a sign-in.
batch() {
    local k=$1
    [ $((k & 1)) -eq 0 ] || event user.created "\"object\":\"user\",\"id\":\"user_v$k\",\"email\":\"v$k@example.test\",\"email_verified\":true"
    [ $((k & 2)) -eq 0 ] || event organization_membership.created "\"object\":\"organization_membership\",\"id\":\"om_v$k\",\"user_id\":\"user_v$k\",\"organization_id\":\"org_v\",\"status\":\"active\""
    [ $((k & 4)) -eq 0 ] || event invitation.created "\"object\":\"invitation\",\"id\":\"invitation_v$k\",\"email\":\"i$k@example.test\",\"state\":\"pending\",\"organization_id\":\"org_v\""
    [ $((k & 8)) -eq 0 ] || event session.created "\"object\":\"session\",\"id\":\"session_v$k\",\"user_id\":\"user_v$k\",\"status\":\"active\""
    [ $((k & 16)) -eq 0 ] || event api_key.created "\"object\":\"api_key\",\"id\":\"api_key_v$k\",\"name\":\"key $k\",\"owner\":{\"type\":\"organization\",\"id\":\"org_v\"}"
    [ $((k & 32)) -eq 0 ] || event organization.created "\"object\":\"organization\",\"id\":\"org_v$k\",\"name\":\"Org $k\""
    event authentication.password_succeeded "\"user_id\":\"user_v$k\",\"ip_address\":\"192.0.2.1\""
}
# apply_batch MASK: appends the batch and waits for the cursor to reach it.
apply_batch() {
    batch "$1" >"$T/batch.jsonl"
    emu_append "$T/batch.jsonl"
    wait_caught_up 20 "$(last_event_id "$T/batch.jsonl")" >/dev/null
}
# table_rows: objects of this test in each mirror table, in the daemon's order.
table_rows() {
    sql "select (select count(*) from $SYNCD_SCHEMA.users where id like 'user\\_v%') || ' ' ||
                (select count(*) from $SYNCD_SCHEMA.organization_memberships where id like 'om\\_v%') || ' ' ||
                (select count(*) from $SYNCD_SCHEMA.invitations where id like 'invitation\\_v%') || ' ' ||
                (select count(*) from $SYNCD_SCHEMA.sessions where id like 'session\\_v%') || ' ' ||
                (select count(*) from $SYNCD_SCHEMA.api_keys where id like 'api\\_key\\_v%') || ' ' ||
                (select count(*) from $SYNCD_SCHEMA.organizations where id like 'org\\_v%')"
}

event organization.created '"object":"organization","id":"org_v","name":"Org"' >"$T/events.jsonl"
emu_start "$T/events.jsonl"
daemon_config workos.poll_interval=50ms
daemon_start
wait_caught_up 30 evt_v_0001

for k in $(seq 1 63); do
    apply_batch "$k"
done
# Table i holds one object for each set with bit i: 32 of the 63.
assert_eq "32 32 32 32 32 33" "$(table_rows)" "objects per table after every variant"
assert_eq "$n" "$(sql "select count(*) from $SYNCD_SCHEMA.events where id like 'evt\\_v\\_%'")" "events in the log"
grep -q 'event=db_disconnected' "$DAEMON_LOG" && fail "the connection dropped: $(grep 'event=db_disconnected' "$DAEMON_LOG" | head -n 1)"
grep -q 'event=apply_failed\|event=poison' "$DAEMON_LOG" && fail "a batch was refused: $(grep -m 1 'event=apply_failed\|event=poison' "$DAEMON_LOG")"
# Each set but all six was prepared once, on its first use (the first
# stream's one organization included); all six is prepared with the
# connection.
prepares() { grep -o 'event=db_prepare name=[a-z_0-9]*' "$DAEMON_LOG" | sed -n "$1"; }
assert_eq 62 "$(prepares '1,$p' | sort -u | wc -l)" "variants prepared"
assert_eq 62 "$(prepares '1,$p' | wc -l)" "prepares"
before=$(prepares '1,$p' | wc -l)

# A new connection has no prepared statement: each variant is prepared again.
pg_restart
for k in 1 8 9 63; do
    apply_batch "$((k + 64))" # the same tables as k (bit 6 is no table), new ids
done
assert_eq "35 33 33 35 33 34" "$(table_rows)" "objects per table after the restart"
assert_eq 3 "$(($(prepares '1,$p' | wc -l) - before))" "variants prepared again on the new connection"
assert_eq "$n" "$(sql "select count(*) from $SYNCD_SCHEMA.events where id like 'evt\\_v\\_%'")" "events in the log after the restart"

# Sign-ins alone: no mirror table in the statement.
event authentication.password_failed '"email":"nobody@example.test","ip_address":"192.0.2.2"' >"$T/batch.jsonl"
emu_append "$T/batch.jsonl"
wait_caught_up 20 "$(last_event_id "$T/batch.jsonl")" >/dev/null
assert_eq "35 33 33 35 33 34" "$(table_rows)" "objects per table after a log-only batch"
prepares '$p' | grep -qx 'event=db_prepare name=workos_syncd_apply_00' || fail "the log-only batch did not run the variant of no table"
assert_eq "$n" "$(sql "select count(*) from $SYNCD_SCHEMA.events where id like 'evt\\_v\\_%'")" "events in the log at the end"
daemon_stop
