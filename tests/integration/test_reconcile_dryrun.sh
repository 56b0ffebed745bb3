#!/usr/bin/env bash
# `backfill --dry-run` reports planted damage -- a deleted row, a changed
# column, an extra live row -- naming the ids, exits 1 and writes nothing;
# a following `backfill` repairs all three (the extra row becomes a
# reconciled tombstone) and the next dry run finds no drift; status (text
# and --json) reports the last reconciliation.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 200 11
emu_start "$EVENTS_SERVED"
daemon_config
daemon_migrate
syncd backfill >"$T/b1.out" 2>>"$DAEMON_LOG" || fail "backfill exited $?"

gone=$(sql "select id from workos.users order by id limit 1")
changed=$(sql "select id from workos.users order by id offset 1 limit 1")
sql "delete from workos.users where id = '$gone'" >/dev/null
sql "update workos.users set email = 'planted@example.test' where id = '$changed'" >/dev/null
sql "insert into workos.users (id, email, updated_at) values ('user_planted_extra', 'x@example.test', now())" >/dev/null

snapshot() {
    sql "select md5(string_agg(t::text, '|' order by t::text)) from (
           select to_jsonb(u) t from workos.users u union all select to_jsonb(m) from workos.organization_memberships m
           union all select to_jsonb(r) from workos.reconcile_runs r union all select to_jsonb(s) from workos.reconcile_scopes s) x"
}
before=$(snapshot)
rc=0
syncd backfill --dry-run >"$T/dry.out" 2>>"$DAEMON_LOG" || rc=$?
cat "$T/dry.out" >&2
assert_eq 1 "$rc" "dry run exit status with drift"
grep -q "^table=users missing=1 extra=1 differ=1 first_missing=$gone first_extra=user_planted_extra first_differ=\"\\?$changed(email)" "$T/dry.out" ||
    fail "dry run did not name the planted damage"
grep -q '^drift=yes$' "$T/dry.out" || fail "no drift=yes line"
assert_eq "$before" "$(snapshot)" "mirror and progress tables after the dry run"

syncd backfill >"$T/b2.out" 2>>"$DAEMON_LOG" || fail "repairing backfill exited $?"
cat "$T/b2.out" >&2
grep -q '^type=users listed=200 inserted=1 updated=1 unchanged=198 tombstoned=1 ' "$T/b2.out" ||
    fail "repair summary: $(grep type=users "$T/b2.out")"
assert_mirror_lists "$EXPECTED"
n=$(sql "select count(*) from workos.users where id = 'user_planted_extra' and deleted_at is not null
           and last_event_id is null and reconcile_run = 2")
assert_eq 1 "$n" "the extra row as a reconciled tombstone of run 2"
syncd backfill --dry-run >"$T/dry2.out" 2>>"$DAEMON_LOG" || fail "dry run after repair: $(cat "$T/dry2.out")"
grep -q '^drift=no$' "$T/dry2.out" || fail "drift after repair"

# status shows the last reconciliation; --json holds the same facts.
syncd status >"$T/status.txt" 2>&1 || true
syncd status --json >"$T/status.json" 2>&1 || true
jq -e . "$T/status.json" >/dev/null || fail "status --json is not JSON: $(cat "$T/status.json")"
assert_eq 2 "$(jq -r .reconcile_last_run "$T/status.json")" "reconcile_last_run in JSON"
grep -qx 'reconcile_last_run=2' "$T/status.txt" || fail "no reconcile_last_run=2 in: $(cat "$T/status.txt")"
grep -qx 'reconcile_last_tombstoned=1' "$T/status.txt" || fail "no reconcile_last_tombstoned=1"
grep -qx 'reconcile_running=-' "$T/status.txt" || fail "a run reported in progress"
assert_eq "$(cut -d= -f1 "$T/status.txt" | sort | tr '\n' ' ')" \
    "$(jq -r 'keys[]' "$T/status.json" | sort | tr '\n' ' ')" "keys of status and status --json"
assert_eq "$(jq -r .rows_users "$T/status.json")" "$(sed -n 's/^rows_users=//p' "$T/status.txt")" "rows_users"
