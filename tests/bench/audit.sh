#!/usr/bin/env bash
# The audit trail's cost on the backfill (`make bench-audit`, also run by
# `make bench`; not part of CI).
#
# On one PostgreSQL with fsync and synchronous_commit on, the daemon
# backfills the same N events from the emulator into fresh schemas, in
# alternating rounds: once with migration 005's triggers on (the change
# feed and the hash chain) and once with them disabled
# (ALTER TABLE ... DISABLE TRIGGER for the audit triggers only; the
# analytics rollups stay on in both), each run starting right after a
# CHECKPOINT. Prints key=value lines: per mode the best and the median
# time, the WAL written and the PostgreSQL CPU, and
# audit_ratio_on_over_off = best on / best off (1.15 is the issue's
# limit). Progress goes to stderr.
#
# The issue's own yardstick is the daemon as it was before the audit trail:
# so each round also backfills with the build of commit
# $BENCH_BEFORE_COMMIT (the last commit before the audit trail and the
# analytics rollups landed), built from this repository's history into
# the work directory, with its own migrations (tests/bench/lib_before.sh),
# and prints audit_ratio_on_over_before = best on / best before. Without
# git history (a tarball) that mode is skipped, with a note.
#
#   BENCH_EVENTS   N (default 200000)
#   BENCH_ROUNDS   rounds of (on, off, before) (default 2; the order
#                  alternates)
#   BENCH_BEFORE_COMMIT  the build to compare with (default 38acb58; empty:
#                  skip that mode)
#   BENCH_DIAG     1: also load pg_stat_statements and print, per run, the
#                  statements that took the most time, and what the
#                  daemon's backend was doing in 5 ms samples (on CPU, or
#                  the wait event)
#   BENCH_PERF     a directory: record `perf record -a` of each run there
#   BENCH_KEEP     a directory: keep each run's daemon log there
#   BENCH_LOG_LEVEL  the daemon's log level (default info)
#
# Each run also prints the WAL written, syncs and time syncing
# (track_wal_io_timing), and the CPU of PostgreSQL, the daemon and the
# emulator and the machine's idle time, so that a slow run can be told
# apart from a busy machine.
set -euo pipefail
source "$(dirname "$0")/../integration/lib.sh"
require_bins

N=${BENCH_EVENTS:-200000}
ROUNDS=${BENCH_ROUNDS:-2}
DIAG=${BENCH_DIAG:-0}
[ "$N" -ge 400 ] || fail "BENCH_EVENTS must be at least 400"

pg_start --fsync
as_pg tee -a "$PG_DIR/data/postgresql.conf" >/dev/null <<EOF
track_wal_io_timing = on
track_io_timing = on
EOF
if [ "$DIAG" = 1 ]; then
    as_pg tee -a "$PG_DIR/data/postgresql.conf" >/dev/null <<EOF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
log_checkpoints = on
EOF
fi
pg_restart
[ "$DIAG" = 1 ] && sql "create extension pg_stat_statements" >/dev/null
sql "show fsync" | grep -qx on || fail "fsync is not on"
sql "show synchronous_commit" | grep -qx on || fail "synchronous_commit is not on"

log "generating $N events"
emu_gen "$N" 4242 "$T/events.jsonl" "$T/expected.jsonl"
events_in_filter "$T/events.jsonl" "$T/events.api.jsonl"
n_events=$(count_events "$T/events.api.jsonl")
last=$(last_event_id "$T/events.api.jsonl")

# The daemon before the audit trail, built from history.
source "$(dirname "$0")/lib_before.sh"
before_build
MODES="on off"
[ -z "$BEFORE_BIN" ] || MODES="on off before"
NOW_BIN=$SYNCD

# The triggers migration 005 puts on the tables the apply writes.
MIRRORS="users organization_memberships invitations sessions api_keys organizations"
audit_triggers_off() {
    local schema=$1 t s="alter table $1.events disable trigger audit_events_chain;"
    for t in $MIRRORS; do
        s+="alter table $schema.$t disable trigger audit_changes_insert;"
        s+="alter table $schema.$t disable trigger audit_changes_update;"
    done
    sql "$s" >/dev/null
}

# run MODE SCHEMA: one backfill; sets RUN_MS, RUN_WAL_BYTES, RUN_WAL_SYNC_MS,
# RUN_PG_CPU_S and RUN_CHANGES.
run() {
    local mode=$1 schema=$2
    emu_start "$T/events.jsonl"
    local -a extra=()
    SYNCD=$NOW_BIN
    if [ "$mode" = before ]; then
        SYNCD=$BEFORE_BIN
        extra=("${BEFORE_CONFIG[@]}")
    fi
    daemon_config database.schema="$schema" workos.rate_limit=1000000 workos.poll_interval=100ms \
        log.level="${BENCH_LOG_LEVEL:-info}" "${extra[@]}"
    DAEMON_MIGRATED=
    daemon_migrate
    [ "$mode" = off ] && audit_triggers_off "$schema"
    sql "checkpoint" >/dev/null
    sql "select pg_stat_reset_shared('wal')" >/dev/null
    [ "$DIAG" = 1 ] && sql "select pg_stat_statements_reset()" >/dev/null
    local t0 pg0 emu0 idle0
    pg0=$(cpu_ticks $(pg_pids))
    emu0=$(cpu_ticks "$EMU_PID")
    idle0=$(awk '/^cpu / { print $5 }' /proc/stat)
    local perf=
    if [ -n "${BENCH_PERF:-}" ]; then
        perf record -q -a -F 997 -o "$BENCH_PERF/perf-$schema.data" >/dev/null 2>&1 &
        perf=$!
    fi
    t0=$(now_ms)
    daemon_start
    local sampler=
    if [ "$DIAG" = 1 ]; then
        # What the daemon's backend waits on, sampled every 5 ms.
        q -c "create table if not exists public.bench_waits (schema text, state text, wait text)" \
            -c "do \$\$ begin for i in 1..20000 loop
                    insert into public.bench_waits
                    select '$schema', state, coalesce(wait_event_type || ':' || wait_event, 'cpu')
                      from pg_stat_activity where backend_type = 'client backend'
                       and pid <> pg_backend_pid() and query like '%$schema.events%';
                    perform pg_stat_clear_snapshot(); perform pg_sleep(0.005);
                    commit;
                    exit when exists (select 1 from $schema.sync_state where cursor = '$last');
                end loop; end \$\$" >/dev/null 2>&1 &
        sampler=$!
    fi
    # One session waits for the last cursor inside the server (polling
    # with a psql a time would take CPU from the run being measured).
    # It gives up when, 10 s on, no daemon is connected.
    timeout 1800 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -c "do \$\$ begin
        for i in 1..180000 loop
            exit when exists (select 1 from $schema.sync_state where cursor = '$last');
            if i > 1000 and not exists (select 1 from pg_stat_activity
                                         where application_name = 'workos-syncd') then
                raise exception 'no daemon connected';
            end if;
            perform pg_sleep(0.01);
        end loop; end \$\$" >/dev/null || fail "backfill into $schema did not finish"
    daemon_alive || fail "daemon exited during the backfill"
    RUN_MS=$(($(now_ms) - t0))
    RUN_DAEMON_CPU_S=$(awk -v t="$(cpu_ticks "$DAEMON_PID")" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", t / hz }')
    RUN_EMU_CPU_S=$(awk -v t=$(($(cpu_ticks "$EMU_PID") - emu0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", t / hz }')
    RUN_IDLE_S=$(awk -v i0="$idle0" -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($5 - i0) / hz }' /proc/stat)
    RUN_PG_CPU_S=$(awk -v t=$(($(cpu_ticks $(pg_pids)) - pg0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", t / hz }')
    [ -n "$perf" ] && { kill -INT "$perf"; wait "$perf" || true; }
    daemon_stop
    emu_stop
    [ -n "${BENCH_KEEP:-}" ] && cp "$DAEMON_LOG" "$BENCH_KEEP/daemon-$schema.log"
    local wal
    wal=$(sql "select wal_bytes, wal_records, wal_fpi, wal_sync, round(wal_sync_time::numeric),
                      round(wal_write_time::numeric) from pg_stat_wal")
    IFS='|' read -r RUN_WAL_BYTES RUN_WAL_RECORDS RUN_WAL_FPI RUN_WAL_SYNCS RUN_WAL_SYNC_MS \
        RUN_WAL_WRITE_MS <<<"$wal"
    RUN_CHANGES=0
    [ "$mode" = before ] || RUN_CHANGES=$(sql "select count(*) from $schema.changes")
    assert_eq "$n_events" "$(sql "select count(*) from $schema.events")" "events in $schema"
    if [ "$DIAG" = 1 ]; then
        wait "$sampler" || true
        {
            echo "--- $schema ($mode): backend states (5 ms samples)"
            sql "select count(*) || ' ' || state || ' ' || wait from public.bench_waits
                  where schema = '$schema' group by state, wait order by count(*) desc"
            echo "--- $schema ($mode): top statements"
            sql "select round(total_exec_time) || ' ms ' || calls || 'x ' ||
                        regexp_replace(left(query, 110), '\s+', ' ', 'g')
                   from pg_stat_statements order by total_exec_time desc limit 12"
        } >&2
    fi
    log "$mode $schema: ${RUN_MS} ms, postgres cpu ${RUN_PG_CPU_S} s, daemon ${RUN_DAEMON_CPU_S} s," \
        "emulator ${RUN_EMU_CPU_S} s, machine idle ${RUN_IDLE_S} s," \
        "wal ${RUN_WAL_BYTES} B in ${RUN_WAL_SYNCS} syncs (${RUN_WAL_SYNC_MS} ms syncing, ${RUN_WAL_WRITE_MS} ms writing," \
        "${RUN_WAL_FPI} full pages), changes ${RUN_CHANGES}"
}

declare -A ms wal cpu syncs sync_ms
for r in $(seq 1 "$ROUNDS"); do
    order=$MODES
    [ $((r % 2)) -eq 1 ] || order=$(tr ' ' '\n' <<<"$MODES" | tac | tr '\n' ' ')
    for mode in $order; do
        run "$mode" "bench_audit_${mode}_$r"
        ms[$mode]+="$RUN_MS "
        wal[$mode]+="$RUN_WAL_BYTES "
        cpu[$mode]+="$RUN_PG_CPU_S "
        syncs[$mode]+="$RUN_WAL_SYNCS "
        sync_ms[$mode]+="$RUN_WAL_SYNC_MS "
        sql "set client_min_messages = warning; drop schema bench_audit_${mode}_$r cascade" >/dev/null
    done
done

# stat WORDS: "min median" of the numbers.
stat() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 }
    END { printf "%.15g %.15g", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "events=$n_events"
echo "rounds=$ROUNDS"
for mode in $MODES; do
    read -r best med <<<"$(stat "${ms[$mode]}")"
    printf 'audit_%s_seconds_best=%.3f\n' "$mode" "$(awk -v v="$best" 'BEGIN { print v / 1000 }')"
    printf 'audit_%s_seconds_median=%.3f\n' "$mode" "$(awk -v v="$med" 'BEGIN { print v / 1000 }')"
    echo "audit_${mode}_events_per_s=$(awk -v n="$n_events" -v v="$best" 'BEGIN { printf "%.0f", n * 1000 / v }')"
    echo "audit_${mode}_wal_bytes_median=$(stat "${wal[$mode]}" | cut -d' ' -f2)"
    echo "audit_${mode}_wal_syncs_median=$(stat "${syncs[$mode]}" | cut -d' ' -f2)"
    echo "audit_${mode}_wal_sync_ms_median=$(stat "${sync_ms[$mode]}" | cut -d' ' -f2)"
    echo "audit_${mode}_postgres_cpu_s_median=$(stat "${cpu[$mode]}" | cut -d' ' -f2)"
done
on_best=$(stat "${ms[on]}" | cut -d' ' -f1)
off_best=$(stat "${ms[off]}" | cut -d' ' -f1)
awk -v a="$on_best" -v b="$off_best" 'BEGIN { printf "audit_ratio_on_over_off=%.3f\n", a / b }'
# The same for PostgreSQL's CPU: steadier than the time when other work
# shares the machine.
on_cpu=$(stat "${cpu[on]}" | cut -d' ' -f2)
off_cpu=$(stat "${cpu[off]}" | cut -d' ' -f2)
awk -v a="$on_cpu" -v b="$off_cpu" 'BEGIN { printf "audit_ratio_postgres_cpu_on_over_off=%.3f\n", a / b }'
on_med=$(stat "${ms[on]}" | cut -d' ' -f2)
off_med=$(stat "${ms[off]}" | cut -d' ' -f2)
awk -v a="$on_med" -v b="$off_med" 'BEGIN { printf "audit_ratio_on_over_off_median=%.3f\n", a / b }'
if [ -n "$BEFORE_BIN" ]; then
    # Against the daemon before the audit trail: the issue's measure.
    before_best=$(stat "${ms[before]}" | cut -d' ' -f1)
    before_cpu=$(stat "${cpu[before]}" | cut -d' ' -f2)
    echo "before_commit=$BEFORE_COMMIT"
    awk -v a="$on_best" -v b="$before_best" 'BEGIN { printf "audit_ratio_on_over_before=%.3f\n", a / b }'
    awk -v a="$off_best" -v b="$before_best" 'BEGIN { printf "audit_ratio_off_over_before=%.3f\n", a / b }'
    awk -v a="$on_cpu" -v b="$before_cpu" 'BEGIN { printf "audit_ratio_postgres_cpu_on_over_before=%.3f\n", a / b }'
fi
