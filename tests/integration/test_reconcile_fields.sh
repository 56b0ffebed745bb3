#!/usr/bin/env bash
# The mirror holds the whole object: `raw` is filled by events and by
# listings, minus secrets; a field only the listing carries (membership
# `roles`, which some events lack) stays in `raw` when a newer event lacks
# it, the list-only columns (membership `metadata`) are never blanked by an
# event, and the event's own fields win.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 60 83
emu_start "$EVENTS_SERVED"
daemon_config
daemon_start
wait_caught_up 60
n=$(sql "select count(*) from workos.users where deleted_at is null and (raw is null or raw->>'id' <> id)")
assert_eq 0 "$n" "live users without their object in raw after the events"
before=$(sql "select count(*) from workos.organization_memberships where deleted_at is null and not raw ? 'roles'")
[ "$before" -gt 0 ] || fail "every membership event carried roles; the check would prove nothing"
n=$(sql "select count(*) from workos.invitations where raw ? 'token' or raw ? 'accept_invitation_url'")
assert_eq 0 "$n" "invitations keeping a secret in raw"
daemon_stop

syncd backfill >"$T/b.out" 2>>"$DAEMON_LOG" || fail "backfill exited $?"
n=$(sql "select count(*) from workos.organization_memberships where deleted_at is null and (metadata is null or not raw ? 'roles')")
assert_eq 0 "$n" "live memberships without the listing's roles or metadata ($before lacked roles before)"

# A newer event without `roles`: its fields win, the listing's roles stay in raw.
mid=$(sql "select id from workos.organization_memberships where deleted_at is null order by id limit 1")
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
sql "select raw - 'roles' from workos.organization_memberships where id = '$mid'" | jq -c --arg t "$now" '
  {object:"event", id:"evt_zz_fields_1", event:"organization_membership.updated", created_at:$t,
   data:(. + {status:"inactive", updated_at:$t})}' >"$T/ev.jsonl"
emu_append "$T/ev.jsonl"
daemon_start
wait_caught_up 60 evt_zz_fields_1
n=$(sql "select count(*) from workos.organization_memberships where id = '$mid' and status = 'inactive'
           and raw->>'status' = 'inactive' and raw ? 'roles' and metadata is not null
           and last_event_id = 'evt_zz_fields_1'")
assert_eq 1 "$n" "the event's fields won and the listing's roles and metadata stayed"
daemon_stop
