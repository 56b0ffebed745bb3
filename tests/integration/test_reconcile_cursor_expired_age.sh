#!/usr/bin/env bash
# A stored cursor whose event is older than [workos] retention: when the
# poller loads it, the daemon logs
# event=cursor_expired reason=cursor_older_than_retention, reconciles,
# forgets the cursor and follows the Events API again from just before the
# reconciliation; the mirror ends up exactly as the lists say and a later
# event is applied. The generated history is dated 2026-01, far older than
# the 30d set here.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 150 73
emu_start "$EVENTS_SERVED"
daemon_config workos.retention=30d
daemon_start
last=$(tail -n 1 "$EVENTS_SERVED" | jq -r .id)
wait_caught_up 60 "$last"
grep -q 'event=cursor_expired' "$DAEMON_LOG" && fail "cursor_expired without a stored cursor"
daemon_stop

# Damage the mirror while it is down: the reconciliation repairs it.
sql "update workos.users set first_name = 'Damaged' where id = (select min(id) from workos.users where deleted_at is null)" >/dev/null

daemon_start
wait_for 60 "the old cursor to be noticed" \
    bash -c "grep -q 'event=cursor_expired reason=cursor_older_than_retention' '$DAEMON_LOG'"
wait_for 60 "the cursor to be reset" bash -c "grep -q 'event=cursor_reset' '$DAEMON_LOG'"
n=$(sql "select count(*) from workos.reconcile_runs where reason = 'cursor_expired' and finished_at is not null")
assert_eq 1 "$n" "finished reconciliations for the expired cursor"
n=$(sql "select count(*) from workos.users where first_name = 'Damaged'")
assert_eq 0 "$n" "damaged rows left after the reconciliation"

# Polling resumed: an event of now is applied, and its cursor is young.
assert_polling_resumes
daemon_stop

# A restart with the young cursor: no second expiry.
daemon_start
wait_caught_up 30 evt_zz_resumed
sleep 1
n=$(grep -c 'event=cursor_expired' "$DAEMON_LOG" || true)
assert_eq 1 "$n" "cursor_expired lines over both runs"
daemon_stop
