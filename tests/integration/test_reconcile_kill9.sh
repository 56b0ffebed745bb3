#!/usr/bin/env bash
# kill -9 at random moments of a snapshot, several times over: each restart
# resumes the same run from its stored progress, and the mirror converges to
# exactly what the state APIs list.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 600 23
emu_start "$EVENTS_SERVED" --retention-events 50 --latency 20
daemon_config
daemon_migrate
kills=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    "$SYNCD" backfill -c "$SYNCD_CONF" >>"$T/killed.out" 2>>"$DAEMON_LOG" &
    pid=$!
    track_pid "$pid"
    sleep "0.$((RANDOM % 6 + 2))"
    if proc_alive "$pid"; then
        kill -KILL "$pid"
        kills=$((kills + 1))
    fi
    wait "$pid" 2>/dev/null || true
done
log "killed $kills backfills"
[ "$kills" -ge 5 ] || fail "only $kills of 10 backfills were still running when killed"
syncd backfill >"$T/final.out" 2>>"$DAEMON_LOG" || fail "final backfill exited $?"
cat "$T/final.out" >&2
assert_mirror_lists "$EXPECTED"
n=$(sql "select count(*) from workos.reconcile_runs")
assert_eq 1 "$n" "runs (every restart resumed the first)"
grep -q '^type=total run=1 ' "$T/final.out" || fail "the final backfill did not finish run 1"
n=$(grep -c 'resumed=true' "$DAEMON_LOG" || true)
[ "$n" -ge "$kills" ] || fail "only $n resumptions logged for $kills kills"
