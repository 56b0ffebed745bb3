#!/usr/bin/env bash
# The rollups count each event exactly once across crashes: a 20,000-event
# backfill with the daemon killed with SIGKILL at random moments at least
# ten times (its rollup step mid-transaction now and then), while a second
# stepper takes small batches from the same queue as another instance would
# and rebuild_rollups() runs now and then meanwhile.  Once the queue is
# empty, every rollup table holds exactly the rows a fresh
# rebuild_rollups() computes from the log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rollup.sh"
require_bins

S=workos
paced_stream 20000 909 60
last=$(last_event_id "$EVENTS")
daemon_config workos.fetch_windows=1
daemon_migrate

# A second stepper (and a rebuild every 40th turn) until $T/stepping goes.
touch "$T/stepping"
(
    i=0
    while [ -f "$T/stepping" ]; do
        i=$((i + 1))
        if [ $((i % 40)) -eq 0 ]; then
            sql "select 'rebuilt', $S.rebuild_rollups()" >>"$T/stepper.log" 2>&1
        else
            sql "select 'took', $S.rollup_step(50)" >>"$T/stepper.log" 2>&1
        fi
        sleep 0.05
    done
) &
stepper=$!
track_pid "$stepper"

kills=0
for round in $(seq 1 14); do
    daemon_start
    # 100..900 ms: sometimes during start-up, mostly mid-page, mid-commit or mid-step.
    sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
    [ "$(cursor)" = "$last" ] && break
    daemon_kill9
    kills=$((kills + 1))
    [ "$kills" -ge 10 ] && [ "$round" -ge 12 ] && break
done
[ "$kills" -ge 10 ] || fail "only $kills kills landed before the backfill finished"
log "killed the daemon $kills times during the backfill"
emu_clear_faults
rm -f "$T/stepping"
wait "$stepper" || true
took=$(awk -F'|' '$1 == "took" && $2 > 0' "$T/stepper.log" | wc -l | tr -d ' ')
rebuilt=$(grep -c '^rebuilt' "$T/stepper.log" || true)
log "the second stepper took ids $took times; $rebuilt rebuilds ran during the backfill"
[ "$took" -gt 0 ] || fail "the second stepper never took an id: $(tail -5 "$T/stepper.log")"
[ "$rebuilt" -gt 0 ] || fail "no rebuild ran during the backfill: $(tail -5 "$T/stepper.log")"
if grep -q ERROR "$T/stepper.log"; then
    fail "the second stepper failed: $(grep ERROR "$T/stepper.log" | head -3)"
fi

# One more start finishes the backfill and drains the queue.
daemon_start
wait_caught_up 120
wait_rollups_current 60
daemon_stop
assert_events_exact "$EVENTS"
n_auth=$(sql "select count(*) from $S.events
               where event like 'authentication.%\\_succeeded' or event like 'authentication.%\\_failed'")
[ "$n_auth" -gt 1000 ] || fail "only $n_auth authentication outcomes in the log"

tables=$(sql "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = '$S' and c.relkind = 'r' and c.relname like 'rollup\\_%'
                 and c.relname not in ('rollup_time_zones', 'rollup_queue') order by 1")
for t in $tables; do
    sql "create table snap_$t as select * from $S.$t"
done
sql "select $S.rebuild_rollups()" >/dev/null
for t in $tables; do
    n=$(sql "select count(*) from ((table $S.$t except all table snap_$t)
                                   union all (table snap_$t except all table $S.$t)) d")
    assert_eq 0 "$n" "rows of $t the daemon kept that differ from a rebuild"
done
assert_eq "$n_auth" "$(sql "select sum(succeeded + failed) from $S.rollup_auth_daily where zone = 'UTC'")" \
    "authentication outcomes counted"
log "after $(grep -c 'harness: daemon start' "$DAEMON_LOG") starts every rollup equals a rebuild from the log"
