#!/usr/bin/env bash
# start_from = snapshot on an environment whose events have mostly expired:
# the daemon reconciles first, records range_start just before the run
# began, then follows the Events API; events that arrive during the
# snapshot are not lost, and afterwards a dry run finds no drift against
# the live lists.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 300 61
emu_start "$EVENTS_SERVED" --retention-events 100 --latency 20
daemon_config workos.start_from=snapshot
daemon_start
wait_for 20 "the snapshot to start" bash -c "grep -q 'event=snapshot_start' '$DAEMON_LOG'"

# During the snapshot: a user renamed (newer updated_at) and a user created.
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
old=$(emu_curl GET '/user_management/users?limit=1&order=asc' | jq -c '.data[0]')
uid=$(jq -r .id <<<"$old")
jq -c --arg t "$now" --argjson u "$old" -n '
  {object:"event", id:"evt_zz_during_1", event:"user.updated", created_at:$t,
   data:($u + {first_name:"Renamed", updated_at:$t})},
  {object:"event", id:"evt_zz_during_2", event:"user.created", created_at:$t,
   data:($u + {id:"user_zz_during", email:"during@example.test", created_at:$t, updated_at:$t})}' \
    >"$T/during.jsonl"
emu_append "$T/during.jsonl"
grep -q 'event=snapshot_done' "$DAEMON_LOG" && fail "the snapshot ended before the events were appended"

wait_caught_up 90 evt_zz_during_2
grep -q 'event=snapshot_done' "$DAEMON_LOG" || fail "no snapshot_done logged"
n=$(sql "select count(*) from workos.users where id = '$uid' and first_name = 'Renamed'")
assert_eq 1 "$n" "the user renamed during the snapshot"
n=$(sql "select count(*) from workos.users where id = 'user_zz_during' and deleted_at is null")
assert_eq 1 "$n" "the user created during the snapshot"
n=$(sql "select count(*) from workos.sync_state s, workos.reconcile_runs r
          where s.stream = 'events_api' and r.id = 1 and r.finished_at is not null
            and abs(extract(epoch from s.range_start - (r.started_at - interval '5 minutes'))) < 0.01")
assert_eq 1 "$n" "range_start = the run's start minus 5 minutes"
syncd backfill --dry-run >"$T/dry.out" 2>>"$DAEMON_LOG" || fail "drift after the snapshot: $(cat "$T/dry.out")"
daemon_stop
