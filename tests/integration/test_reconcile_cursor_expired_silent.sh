#!/usr/bin/env bash
# A stored cursor the Events API no longer knows, answered by starting over
# (--expired-cursor restart, as WorkOS' own emulator does) instead of a 400:
# the first page after the cursor starts with an event older than the
# cursor's. The daemon applies none of it, logs
# event=cursor_expired reason=api_restarted_before_cursor, reconciles,
# forgets the cursor and follows the Events API again (from start_from,
# which the tests set to an ISO time); the mirror ends up exactly as the
# lists say and a later event is applied.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 200 72
emu_start "$EVENTS_SERVED" --retention-events 50 --expired-cursor restart
daemon_config
daemon_start
last=$(tail -n 1 "$EVENTS_SERVED" | jq -r .id)
wait_caught_up 60 "$last"
daemon_stop
cursor_at=$(sql "select created_at from workos.events where id = '$last'")
[ -n "$cursor_at" ] || fail "the cursor's event is not in workos.events"

# While it is down, 80 events arrive dated before the cursor's event (a
# restored or restarted history): the cursor falls out of the window, and
# what the API serves instead is older than it.
old=$(head -n 1 "$EVENTS_SERVED" | jq -r .created_at)
emu_curl GET '/user_management/users?limit=80&order=asc' | jq -c --arg t "$old" '
  .data | to_entries[] | {object:"event", id:("evt_zz_old_" + (.key | tostring | ("000" + .)[-3:])),
    event:"user.updated", created_at:$t, data:(.value + {last_name:"Old", updated_at:$t})}' \
    >"$T/old.jsonl"
assert_eq 80 "$(wc -l <"$T/old.jsonl" | tr -d ' ')" "old events"
emu_append "$T/old.jsonl"

daemon_start
wait_for 60 "the restarted listing to be noticed" \
    bash -c "grep -q 'event=cursor_expired reason=api_restarted_before_cursor' '$DAEMON_LOG'"
wait_for 60 "the cursor to be reset" bash -c "grep -q 'event=cursor_reset' '$DAEMON_LOG'"
# Until the cursor is forgotten, nothing of the restarted listing is applied.
n=$(awk '/event=cursor_reset/ { exit } /event=apply_start/ && /evt_zz_old_/ { n++ } END { print n + 0 }' "$DAEMON_LOG")
assert_eq 0 "$n" "batches of the restarted listing applied before the reset"
n=$(sql "select count(*) from workos.reconcile_runs where reason = 'cursor_expired' and finished_at is not null")
assert_eq 1 "$n" "finished reconciliations for the expired cursor"

# Polling resumed: an event of now is applied.
assert_polling_resumes
daemon_stop
