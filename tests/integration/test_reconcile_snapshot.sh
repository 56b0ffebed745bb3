#!/usr/bin/env bash
# A snapshot of an environment whose events have mostly expired: `backfill`
# lists every type from the state APIs and the mirror ends up holding
# exactly what they list, with no secret stored; a second run changes
# nothing; the rate limits were never exceeded.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 400 7
emu_start "$EVENTS_SERVED" --retention-events 100 --limit-overall 6000/60s \
    --limit-user-management 1000/10s --latency 5
daemon_config
daemon_migrate
syncd backfill >"$T/backfill.out" 2>>"$DAEMON_LOG" || fail "backfill exited $?"
cat "$T/backfill.out" >&2
assert_mirror_lists "$EXPECTED"

n=$(grep -c '^type=' "$T/backfill.out")
assert_eq 7 "$n" "summary lines (six types and a total)"
grep -q '^type=users listed=400 inserted=400 ' "$T/backfill.out" || fail "users summary wrong"

# No secret from the listing reaches the mirror.
n=$(sql "select count(*) from workos.invitations where raw ? 'token' or raw ? 'accept_invitation_url'")
assert_eq 0 "$n" "invitation rows keeping a secret"
n=$(sql "select count(*) from workos.invitations where raw is not null")
[ "$n" -gt 0 ] || fail "no invitation listed"
n=$(sql "select count(*) from workos.users where reconcile_run is null or last_event_id is not null")
assert_eq 0 "$n" "user rows not marked as written by the run"

# A second run lists the same and changes nothing.
syncd backfill >"$T/backfill2.out" 2>>"$DAEMON_LOG" || fail "second backfill exited $?"
grep -q '^type=total .* inserted=0 updated=0 .* tombstoned=0 ' "$T/backfill2.out" ||
    fail "second run changed something: $(grep total "$T/backfill2.out")"
syncd backfill --dry-run >"$T/dry.out" 2>>"$DAEMON_LOG" || fail "dry run found drift: $(cat "$T/dry.out")"
grep -q '^drift=no$' "$T/dry.out" || fail "dry run output: $(cat "$T/dry.out")"

for l in overall user_management; do
    peak=$(emu_stat ".limits.$l.peak")
    limit=$(emu_stat ".limits.$l.limit")
    [ "$peak" -le "$limit" ] || fail "limit $l exceeded: peak $peak > $limit"
    log "limit $l: peak $peak of $limit"
done
