#!/usr/bin/env bash
# A listed object PostgreSQL cannot store does not stop a reconciliation:
# its page is applied again one object at a time, the object is recorded in
# reconcile_refused and the rest of the page (and of the listing) is
# mirrored.  A refused object already in the mirror keeps its row, live:
# WorkOS still lists it, so the sweep must not tombstone it.  Before this,
# one such object made the run fail on that page forever.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 120 57
emu_start "$EVENTS_SERVED"
daemon_config
daemon_migrate
syncd backfill >"$T/b1.out" 2>>"$DAEMON_LOG" || fail "first backfill exited $?"
assert_mirror_lists "$EXPECTED"

# In WorkOS now: a new user whose created_at is not a time, a new user
# whose id is too long for an index, and a user the mirror holds whose
# email_verified is not a boolean.
kept=$(sql "select id from workos.users where deleted_at is null order by id limit 1")
kept_before=$(sql "select email_verified || ' ' || updated_at from workos.users where id = '$kept'")
long_id=user_$(head -c 2400 /dev/urandom | base64 -w0 | tr -dc A-Za-z0-9)
ts=2027-01-01T00:00:00.000Z
jq -cn --arg t "$ts" --arg kept "$kept" --arg long "$long_id" '
  {object:"event", id:"evt_zz_ref_1", event:"user.created", created_at:$t,
   data:{object:"user", id:"user_zz_badtime", email:"t@example.test", email_verified:true,
         created_at:"not a time", updated_at:$t}},
  {object:"event", id:"evt_zz_ref_2", event:"user.created", created_at:$t,
   data:{object:"user", id:$long, email:"l@example.test", email_verified:true,
         created_at:$t, updated_at:$t}},
  {object:"event", id:"evt_zz_ref_3", event:"user.updated", created_at:$t,
   data:{object:"user", id:$kept, email:"k@example.test", email_verified:"maybe",
         created_at:$t, updated_at:$t}}' >"$T/bad.jsonl"
emu_append "$T/bad.jsonl"

timeout 120 "$SYNCD" backfill -c "$SYNCD_CONF" >"$T/b2.out" 2>>"$DAEMON_LOG" ||
    fail "the second backfill exited $? (one bad object stopped it)"
cat "$T/b2.out" >&2
grep -q '^type=users .* refused=3 ' "$T/b2.out" || fail "users refused: $(grep type=users "$T/b2.out")"
grep -q '^type=total run=2 .* refused=3 ' "$T/b2.out" || fail "total refused: $(grep type=total "$T/b2.out")"
grep -q 'event=reconcile_page_refused kind=users' "$DAEMON_LOG" || fail "no reconcile_page_refused line"
n=$(grep -c 'event=reconcile_object_refused kind=users' "$DAEMON_LOG" || true)
assert_eq 3 "$n" "reconcile_object_refused lines"

# The three, each with the server's reason; no DETAIL and no object kept.
got=$(sql "select string_agg(left(object_id, 20) || ' ' || sqlstate, ',' order by sqlstate, object_id)
             from workos.reconcile_refused where run_id = 2 and kind = 'users'")
assert_eq "user_zz_badtime 22007,$(printf %.20s "$kept") 22P02,$(printf %.20s "$long_id") 54000" \
    "$got" "refused objects and their sqlstates"
n=$(sql "select count(*) from workos.reconcile_refused where error like '%DETAIL%' or error = ''")
assert_eq 0 "$n" "refusals with a DETAIL or no message"

# The refused new users are not mirrored; the refused known one is live,
# as it was, and counts as listed by run 2.
n=$(sql "select count(*) from workos.users where id in ('user_zz_badtime', '$long_id')")
assert_eq 0 "$n" "refused new users in the mirror"
assert_eq "$kept_before" "$(sql "select email_verified || ' ' || updated_at from workos.users
                                  where id = '$kept' and deleted_at is null")" "the refused known user"
assert_eq 2 "$(sql "select reconcile_run from workos.users where id = '$kept'")" \
    "the refused known user's reconcile_run"
assert_eq 0 "$(sql "select count(*) from workos.users where deleted_at is not null")" "users tombstoned"
assert_mirror_lists "$EXPECTED"
syncd status >"$T/status.txt" 2>&1 || true
grep -qx 'reconcile_last_refused=3' "$T/status.txt" ||
    fail "status: $(grep reconcile_last "$T/status.txt" | tr '\n' ' ')"
log "ok: 3 objects refused, the rest of the listing mirrored, the known one kept"
