#!/usr/bin/env bash
# A stored cursor the Events API no longer serves (400 naming `after`, as
# the emulator answers an expired cursor): the daemon logs
# event=cursor_expired, reconciles, forgets the cursor and follows the
# Events API again from just before the reconciliation; the mirror ends
# up exactly as the lists say and the later events are applied.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 200 71
emu_start "$EVENTS_SERVED" --retention-events 50 --expired-cursor 400
daemon_config
daemon_start
last=$(tail -n 1 "$EVENTS_SERVED" | jq -r .id)
wait_caught_up 60 "$last"
daemon_stop

# While it is down, 80 more events arrive: the cursor falls out of the window.
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
emu_curl GET '/user_management/users?limit=80&order=asc' | jq -c --arg t "$now" '
  .data | to_entries[] | {object:"event", id:("evt_zz_late_" + (.key | tostring | ("000" + .)[-3:])),
    event:"user.updated", created_at:$t, data:(.value + {last_name:"Late", updated_at:$t})}' \
    >"$T/late.jsonl"
assert_eq 80 "$(wc -l <"$T/late.jsonl" | tr -d ' ')" "late events"
emu_append "$T/late.jsonl"

daemon_start
wait_for 60 "the expired cursor to be noticed" \
    bash -c "grep -q 'event=cursor_expired reason=api_refused_after' '$DAEMON_LOG'"
wait_for 60 "the cursor to be reset" bash -c "grep -q 'event=cursor_reset' '$DAEMON_LOG'"
wait_caught_up 60 evt_zz_late_079
n=$(sql "select count(*) from workos.reconcile_runs where reason = 'cursor_expired' and finished_at is not null")
assert_eq 1 "$n" "finished reconciliations for the expired cursor"
n=$(sql "select count(*) from workos.users where last_name = 'Late' and deleted_at is null")
assert_eq 80 "$n" "users updated by the late events"
syncd backfill --dry-run >"$T/dry.out" 2>>"$DAEMON_LOG" || fail "drift: $(cat "$T/dry.out")"
daemon_stop
