#!/usr/bin/env bash
# A state API that goes back to the first page for a cursor deep in a
# listing -- as an API does for a cursor it no longer knows -- would lead
# the listing round in a loop (page 3 asked, page 1 answered, then 2, then
# 3 again), each lap counting the objects again.  A page whose cursor this
# listing has followed already is applied to nothing and asked for again
# (logged as a failed request); once the API answers properly the snapshot
# converges, each object counted once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 350 9
emu_start "$EVENTS_SERVED" --fault-scope state
daemon_config
daemon_migrate

# The users' listing, as the daemon will ask for it: page 3 comes after c2.
users_after() {
    emu_curl GET "/user_management/users?limit=100&order=asc${1:+&after=$1}" | jq -r '.list_metadata.after // empty'
}
c1=$(users_after "")
c2=$(users_after "$c1")
[ -n "$c2" ] || fail "the users' listing has fewer than three pages"
emu_fault restart 3 scope=state "after=$c2"
syncd backfill >"$T/b.out" 2>>"$DAEMON_LOG" || fail "backfill exited $?"
cat "$T/b.out" >&2
assert_eq 3 "$(emu_stat .faults_fired)" "restart faults fired during the snapshot"
n=$(grep -c 'event=reconcile_request_failed kind=users .*the list cursor went back to a page already listed' "$DAEMON_LOG" || true)
assert_eq 3 "$n" "pages refused for going back in the users' listing"
assert_mirror_lists "$EXPECTED"

# Listed again without faults: as many users, each counted once before too.
syncd backfill >"$T/b2.out" 2>>"$DAEMON_LOG" || fail "second backfill exited $?"
field() { sed -n "s/^type=$1 .*$2=\\([0-9]*\\) .*/\\1/p" "$3"; }
assert_eq "$(field users listed "$T/b2.out")" "$(field users listed "$T/b.out")" \
    "users listed with and without the faults"
assert_eq "$(field users listed "$T/b.out")" "$(field users inserted "$T/b.out")" \
    "users listed and inserted by the first snapshot"
grep -q '^type=total .* inserted=0 updated=0 .* tombstoned=0 ' "$T/b2.out" ||
    fail "second run changed something: $(grep total "$T/b2.out")"
