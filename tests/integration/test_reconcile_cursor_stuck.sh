#!/usr/bin/env bash
# A state API that loses the cursor -- answers the first page whatever
# `after` asked for, as an API or a proxy that drops the parameter would --
# is not followed round in a loop: a page whose cursor is the one asked
# after is applied to nothing and asked for again (logged as a failed
# request), and once the API answers properly the snapshot converges
# exactly, each object counted once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 150 5
emu_start "$EVENTS_SERVED" --fault-scope state
daemon_config
daemon_migrate
# The roots' first pages take the first three faults (a first page has no
# cursor to lose); the users' second page, the only one (150 users at 100 a
# page), takes the rest, one answer at a time.
emu_fault restart 6 scope=state
syncd backfill >"$T/b.out" 2>>"$DAEMON_LOG" || fail "backfill exited $?"
cat "$T/b.out" >&2
assert_eq 6 "$(emu_stat .faults_fired)" "restart faults fired during the snapshot"
n=$(grep -c 'event=reconcile_request_failed kind=users .*the list cursor did not move' "$DAEMON_LOG" || true)
[ "$n" -ge 1 ] || fail "no repeated cursor noticed in the users' listing"
log "repeated cursors noticed: $n"
grep -q '^type=users listed=150 inserted=150 ' "$T/b.out" ||
    fail "users counted wrongly: $(grep '^type=users' "$T/b.out")"
assert_mirror_lists "$EXPECTED"

# The same environment listed again with no fault lists as many objects.
syncd backfill >"$T/b2.out" 2>>"$DAEMON_LOG" || fail "second backfill exited $?"
listed() { sed -n 's/^type=total .*listed=\([0-9]*\) .*/\1/p' "$1"; }
assert_eq "$(listed "$T/b2.out")" "$(listed "$T/b.out")" "objects listed with and without the faults"
grep -q '^type=total .* inserted=0 updated=0 .* tombstoned=0 ' "$T/b2.out" ||
    fail "second run changed something: $(grep total "$T/b2.out")"
