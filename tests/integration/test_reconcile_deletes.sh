#!/usr/bin/env bash
# Deletion detection: objects deleted in WorkOS while the mirror never saw
# the event are tombstoned by the next listing (a reconciled tombstone:
# last_event_id NULL, reconcile_run naming the run); an object written
# during the listing (as an event would, after the run began) that the
# listing did not contain is not tombstoned; sessions the listing no longer
# shows are left as they were.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 300 41
emu_start "$EVENTS_SERVED" --latency 20
daemon_config
daemon_migrate
syncd backfill >"$T/b1.out" 2>>"$DAEMON_LOG" || fail "first backfill exited $?"

# Delete a user and an organization in WorkOS (the mirror never hears of it).
user=$(sql "select id from workos.users where deleted_at is null order by id desc limit 1")
org=$(sql "select id from workos.organizations where deleted_at is null order by id desc limit 1")
session=$(sql "select id from workos.sessions where user_id = '$user' limit 1")
ts=2027-01-01T00:00:00.000Z
{
    printf '{"object":"event","id":"evt_zz_del_1","event":"user.deleted","data":{"object":"user","id":"%s"},"created_at":"%s"}\n' "$user" "$ts"
    printf '{"object":"event","id":"evt_zz_del_2","event":"organization.deleted","data":{"object":"organization","id":"%s"},"created_at":"%s"}\n' "$org" "$ts"
} >"$T/deletes.jsonl"
emu_append "$T/deletes.jsonl"
mem_before=$(sql "select count(*) from workos.organization_memberships where organization_id = '$org' and deleted_at is null")

# The second run; once it is under way, a user appears in the mirror as an
# event would write it (synced_at after the run began).
syncd backfill >"$T/b2.out" 2>>"$DAEMON_LOG" &
pid=$!
track_pid "$pid"
wait_for 20 "the second run to start" \
    bash -c "[ \"\$($PG_BIN/psql -X -A -t -d '$DATABASE_URL' -c 'select count(*) from workos.reconcile_runs')\" = 2 ]"
sql "insert into workos.users (id, email, updated_at, last_event_id) values ('user_zz_during', 'd@example.test', now(), 'evt_zz_created')" >/dev/null
wait "$pid" || fail "second backfill exited $?"
cat "$T/b2.out" >&2

n=$(sql "select count(*) from workos.users where id = '$user' and deleted_at is not null and last_event_id is null and reconcile_run = 2")
assert_eq 1 "$n" "deleted user as a reconciled tombstone"
n=$(sql "select count(*) from workos.organizations where id = '$org' and deleted_at is not null and last_event_id is null and reconcile_run = 2")
assert_eq 1 "$n" "deleted organization as a reconciled tombstone"
n=$(sql "select count(*) from workos.organization_memberships where organization_id = '$org' and deleted_at is null")
assert_eq 0 "$n" "live memberships of the deleted organization"
[ "$mem_before" -gt 0 ] && log "$mem_before memberships of the deleted organization tombstoned"
n=$(sql "select count(*) from workos.users where id = 'user_zz_during' and deleted_at is null")
assert_eq 1 "$n" "the user written during the listing is still live"
if [ -n "$session" ]; then
    n=$(sql "select count(*) from workos.sessions where id = '$session' and deleted_at is null and status = 'active'")
    assert_eq 1 "$n" "an unlisted session left as it was"
fi
grep -q '^type=users .* tombstoned=1 ' "$T/b2.out" || fail "users tombstoned: $(grep type=users "$T/b2.out")"
# The change feed names the run behind each tombstone it made.
assert_eq "tombstone|reconcile 2" \
    "$(sql "select operation || '|' || coalesce(reconciliation, '-') from workos.changes where object_id = '$user' order by seq desc limit 1")" \
    "the change row of the reconciled tombstone"
assert_eq 0 "$(sql "select count(*) from workos.changes where event_id is null and reconciliation is null")" \
    "change rows naming neither an event nor a reconciliation"
