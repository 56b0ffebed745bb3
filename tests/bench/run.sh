#!/usr/bin/env bash
# Throughput benchmark (`make bench`; not part of CI).
#
# On one PostgreSQL with fsync and synchronous_commit on, measures:
#   (a) the raw COPY rate of the generated events into a bare table shaped
#       like workos.events (with its primary key): the ceiling for writing
#       these rows at all;
#   (b) the daemon's end-to-end backfill from the emulator (rate limit lifted
#       requests/min, poll_interval 100ms) until sync_state.cursor is the
#       last event id;
#   (c) the honest limit: COPY of the same events into a freshly migrated
#       workos.events (every index and trigger as migrated) plus each mirror
#       row once, in its final state (the rows the backfill left), into the
#       migrated mirror tables, timed together: the same rows the daemon
#       writes, without the upserts and the duplicates, 1,000 rows a COPY
#       (the daemon's batch) so that triggers and commits come as often;
#       and once in one COPY per table, for comparison;
# and the daemon's peak RSS (VmHWM) for N and for N/4 events, to show that
# memory does not grow with the backlog. Results are key=value lines on
# stdout; progress goes to stderr.
#
# It also prints the CPU the daemon, PostgreSQL and the emulator used during
# the backfill (until its subject columns are all filled, so a fill left
# behind counts), per event, and the rate that CPU would allow with every core
# busy: the ceiling of any design doing the same work on this machine.
#
# The server keeps PostgreSQL's stock shared_buffers, and every timed run
# starts right after a CHECKPOINT, so no run inherits another's dirty
# buffers or pays for a checkpoint that another run's WAL brought on.
#
#   BENCH_EVENTS    N (default 200000)
#   BENCH_TRIGGERS  "off" disables every trigger of the event log and the
#                   mirror tables (audit chain, change feed, rollups) in each
#                   schema the run writes, for the daemon and the honest COPY
#                   alike (default "on": as migrated)
#   BENCH_BASELINE  another workos-syncd binary (an older build): its backfill
#                   of the same N runs too, right before the daemon's, and is
#                   printed as baseline_* next to it
#   BENCH_ROUNDS    full backfills per build (default 1; alternating with the
#                   baseline's); the fastest of each is reported
#
# `run.sh audit` measures instead the audit trail's cost on the same
# backfill: migration 005's triggers on against disabled, alternating, in
# one run (tests/bench/audit.sh).
set -euo pipefail
[ "${1:-}" = audit ] && exec bash "$(dirname "$0")/audit.sh"
source "$(dirname "$0")/../integration/lib.sh"
require_bins

N=${BENCH_EVENTS:-200000}
Q=$((N / 4))
[ "$N" -ge 400 ] || fail "BENCH_EVENTS must be at least 400"

TRIGGERS=${BENCH_TRIGGERS:-on}
case $TRIGGERS in on | off) ;; *) fail "BENCH_TRIGGERS must be on or off" ;; esac
BASELINE=${BENCH_BASELINE:-}
ROUNDS=${BENCH_ROUNDS:-1}
[ "$ROUNDS" -ge 1 ] 2>/dev/null || fail "BENCH_ROUNDS must be a positive number"
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || fail "BENCH_BASELINE $BASELINE is not executable"

pg_start --fsync
sql "show fsync" | grep -qx on || fail "fsync is not on"
sql "show synchronous_commit" | grep -qx on || fail "synchronous_commit is not on"

log "generating $N and $Q events"
emu_gen "$N" 4242 "$T/events.jsonl" "$T/expected.jsonl"
emu_gen "$Q" 2424 "$T/events-q.jsonl" "$T/expected-q.jsonl"
# The daemon asks only for the types it knows; both measurements use that
# part of the stream.
events_in_filter "$T/events.jsonl" "$T/events.api.jsonl"
events_in_filter "$T/events-q.jsonl" "$T/events-q.api.jsonl"
n_events=$(count_events "$T/events.api.jsonl")

# (a) COPY. The COPY input is prepared first (not timed): the same events as
# rows of (id, event, created_at, data, context, source, received_at).
log "preparing the COPY input"
jsonl_query "$T/events.api.jsonl" "
\\copy (select j->>'id', j->>'event', (j->>'created_at')::timestamptz, j->'data', j->'context', 'events_api', now() from jl order by n) to '$T/events.copy'
" >/dev/null
# time_copy INDEXES: creates a table shaped like workos.events (primary key,
# plus the secondary indexes when INDEXES is "indexed"), COPYs the prepared
# rows into it, checks the row count, drops it and prints the COPY's ms.
time_copy() {
    sql "create table bench_copy (
            id          text        primary key,
            event       text        not null,
            created_at  timestamptz not null,
            data        jsonb       not null,
            context     jsonb,
            source      text        not null,
            received_at timestamptz not null default now())"
    if [ "$1" = indexed ]; then
        sql "create index on bench_copy (event, created_at); create index on bench_copy (created_at)"
    fi
    local out ms
    sql "checkpoint"
    out=$(q <<EOF
\\timing on
\\copy bench_copy (id, event, created_at, data, context, source, received_at) from '$T/events.copy'
EOF
)
    ms=$(printf '%s\n' "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
    [ -n "$ms" ] || fail "could not read the COPY time from: $out"
    assert_eq "$n_events" "$(sql "select count(*) from bench_copy")" "rows copied"
    sql "drop table bench_copy"
    echo "$ms"
}

log "timing COPY of $n_events rows"
copy_ms=$(time_copy bare)
# (a') the same into a table that also has workos.events' two secondary
# indexes: the cost of the event log alone, without the mirror.
log "timing COPY of $n_events rows into a table with the event log's indexes"
copy_idx_ms=$(time_copy indexed)

# migrate_schema SCHEMA: migrates SCHEMA and, with BENCH_TRIGGERS=off,
# disables the triggers of its event log and mirror tables.
migrate_schema() {
    daemon_migrate
    [ "$TRIGGERS" = off ] || return 0
    local t s="alter table $1.events disable trigger user;"
    for t in $MIRROR_TABLES; do
        s+="alter table $1.$t disable trigger user;"
    done
    sql "$s"
}

# (b) the daemon, once for N/4 events and once for N, each into its own
# schema from its own emulator.
# backfill SERVED_FILE API_FILE SCHEMA: sets BF_MS (start to caught up),
# BF_HWM_KIB, and the CPU clock ticks the daemon, PostgreSQL (every process
# of the cluster) and the emulator used meanwhile: BF_CPU_DAEMON, BF_CPU_PG,
# BF_CPU_EMU.
backfill() {
    local file=$1 api_file=$2 schema=$3 last
    last=$(last_event_id "$api_file")
    emu_start "$file"
    BF_LOG_FROM=$(($(reqlog_lines) + 1))
    daemon_config database.schema="$schema" workos.rate_limit=1000000 workos.poll_interval=100ms \
        log.level=info
    migrate_schema "$schema"
    sql "checkpoint"
    local t0 pg0 emu0
    pg0=$(cpu_ticks $(pg_pids))
    emu0=$(cpu_ticks "$EMU_PID")
    t0=$(now_ms)
    daemon_start
    wait_backfill "$last" "backfill of $file"
    BF_MS=$(($(now_ms) - t0))
    # The audit trail's subject columns are filled behind the applies (the
    # daemon's housekeeping): how many were still open when the cursor
    # arrived, and when the last was filled (the backfill's work all done).
    # (A build from before the audit trail has no subject columns.)
    local unfilled="select count(*) from $schema.events where object_type is null"
    [ "$(sql "select count(*) from information_schema.columns where table_schema = '$schema'
                and table_name = 'events' and column_name = 'object_type'")" = 1 ] ||
        unfilled="select 0"
    BF_UNFILLED=$(sql "$unfilled")
    while [ "$(sql "$unfilled")" != 0 ]; do
        daemon_alive || fail "daemon exited during the fill"
        [ "$(now_ms)" -lt "$deadline" ] || fail "fill of $file not done in 30 min"
        sleep 0.05
    done
    BF_FILLED_MS=$(($(now_ms) - t0))
    BF_CPU_DAEMON=$(cpu_ticks "$DAEMON_PID")
    BF_CPU_PG=$(($(cpu_ticks $(pg_pids)) - pg0))
    BF_CPU_EMU=$(($(cpu_ticks "$EMU_PID") - emu0))
    BF_HWM_KIB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status")
    # Requests the backfill made, and the mean time between them.
    BF_REQ=$(tail -n "+$BF_LOG_FROM" "$EMU_LOG" | awk '
        { ts = $1; sub(/^ts_ms=/, "", ts); if (n == 0) first = ts; last = ts; n++ }
        END { printf "%d %.1f", n, (n > 1 ? (last - first) / (n - 1) : 0) }')
    daemon_stop
    emu_stop
    log "backfill of $(basename "$file"): ${BF_MS} ms, peak RSS ${BF_HWM_KIB} KiB"
}

backfill "$T/events-q.jsonl" "$T/events-q.api.jsonl" bench_quarter
q_ms=$BF_MS
q_hwm=$BF_HWM_KIB
q_events=$(count_events "$T/events-q.api.jsonl")
# (c) the honest limit. The mirror rows in their final state are the ones
# the backfill left (written out once, not timed); a freshly migrated
# schema takes the events and those rows by COPY, in one psql session, and
# the sum of the COPYs' times is the limit. honest_copy CHUNK: each COPY
# takes CHUNK rows (1000: the daemon's batch, so the statement triggers
# and commits come as often as the daemon's; 0: one COPY per table) in its
# own transaction; sets HC_MS and HC_PARTS (ms per table).
mirror_rows=
honest_copy() {
    local chunk=$1 t f out n
    if [ -z "$mirror_rows" ]; then
        log "preparing the honest COPY input from the backfill's mirror rows"
        mirror_rows=0
        for t in $MIRROR_TABLES; do
            sql "\\copy (select * from bench_full.$t) to '$T/$t.copy'"
            mirror_rows=$((mirror_rows + $(sql "select count(*) from bench_full.$t")))
        done
    fi
    rm -rf "$T/honest"
    mkdir -p "$T/honest"
    for t in events $MIRROR_TABLES; do
        if [ "$chunk" -gt 0 ]; then
            split -a 4 -d -l "$chunk" "$T/$t.copy" "$T/honest/$t."
        else
            cp "$T/$t.copy" "$T/honest/$t.0000"
        fi
    done
    {
        echo '\timing on'
        for t in events $MIRROR_TABLES; do
            echo "\\echo table=$t"
            for f in "$T/honest/$t".*; do
                if [ "$t" = events ]; then
                    echo "\\copy bench_honest.events (id, event, created_at, data, context, source, received_at) from '$f'"
                else
                    echo "\\copy bench_honest.$t from '$f'"
                fi
            done
        done
    } >"$T/honest.sql"
    sql "set client_min_messages = warning; drop schema if exists bench_honest cascade"
    daemon_config database.schema=bench_honest
    migrate_schema bench_honest
    log "timing the honest COPY ($chunk rows a COPY): $n_events events and $mirror_rows mirror rows into a migrated schema (triggers $TRIGGERS)"
    sql "checkpoint"
    out=$(q -f "$T/honest.sql")
    n=$(grep -c '^\\copy' "$T/honest.sql")
    HC_MS=$(printf '%s\n' "$out" | awk -v want="$n" '/^Time: / { ms += $2; n++ } END { if (n == want) printf "%.0f", ms }')
    HC_PARTS=$(printf '%s\n' "$out" | awk '/^table=/ { if (t != "") printf "%s%.0f", (k++ ? " " : ""), ms; t = $0; ms = 0 }
        /^Time: / { ms += $2 } END { printf "%s%.0f", (k ? " " : ""), ms }')
    [ -n "$HC_MS" ] || fail "could not read the honest COPY times from: $out"
    assert_eq "$n_events" "$(sql "select count(*) from bench_honest.events")" "events copied"
    for t in $MIRROR_TABLES; do
        assert_eq "$(sql "select count(*) from bench_full.$t")" "$(sql "select count(*) from bench_honest.$t")" "$t rows copied"
    done
}

# The full backfill, ROUNDS times (alternating with the baseline's), each
# into a fresh schema, then the honest COPY: the fastest round of each
# counts, and each round's rates are printed, measured within seconds of
# each other.
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }'; }
rounds_out=
for round in $(seq 1 "$ROUNDS"); do
    if [ -n "$BASELINE" ]; then
        sql "set client_min_messages = warning; drop schema if exists bench_baseline cascade"
        SYNCD_NEW=$SYNCD
        SYNCD=$BASELINE
        backfill "$T/events.jsonl" "$T/events.api.jsonl" bench_baseline
        SYNCD=$SYNCD_NEW
        b_last=$BF_MS
        if [ "$round" = 1 ] || [ "$BF_MS" -lt "$b_ms" ]; then
            b_ms=$BF_MS
            b_unfilled=$BF_UNFILLED
            b_filled_ms=$BF_FILLED_MS
            b_cpu="$BF_CPU_DAEMON $BF_CPU_PG $BF_CPU_EMU"
        fi
    fi
    sql "set client_min_messages = warning; drop schema if exists bench_full cascade"
    backfill "$T/events.jsonl" "$T/events.api.jsonl" bench_full
    if [ "$round" = 1 ] || [ "$BF_MS" -lt "$d_ms" ]; then
        d_ms=$BF_MS
        d_unfilled=$BF_UNFILLED
        d_filled_ms=$BF_FILLED_MS
        d_hwm=$BF_HWM_KIB
        d_requests=${BF_REQ% *}
        d_cpu="$BF_CPU_DAEMON $BF_CPU_PG $BF_CPU_EMU"
        d_req_interval=${BF_REQ#* }
    fi
    r_daemon=$BF_MS
    honest_copy 1000
    if [ "$round" = 1 ] || [ "$HC_MS" -lt "$honest_ms" ]; then
        honest_ms=$HC_MS
        honest_parts=$HC_PARTS
    fi
    rounds_out+="round_$round=$(rate "$n_events" "$r_daemon") events/s daemon"
    [ -z "$BASELINE" ] || rounds_out+=", $(rate "$n_events" "$b_last") baseline"
    rounds_out+=", $(rate "$n_events" "$HC_MS") honest COPY"$'\n'
done
# The same in one COPY per table, once, for comparison: statement triggers
# over one huge transition table are not the cheap way to write these rows.
honest_copy 0
honest_bulk_ms=$HC_MS
honest_bulk_parts=$HC_PARTS

copy_rate=$(rate "$n_events" "$copy_ms")
copy_idx_rate=$(rate "$n_events" "$copy_idx_ms")
daemon_rate=$(rate "$n_events" "$d_ms")
q_rate=$(rate "$q_events" "$q_ms")

honest_rate=$(rate "$n_events" "$honest_ms")

echo "events=$n_events"
echo "triggers=$TRIGGERS"
echo "rounds=$ROUNDS"
printf '%s' "$rounds_out"
echo "postgres_fsync=on"
echo "postgres_synchronous_commit=on"
printf 'copy_seconds=%.3f\n' "$(awk -v ms="$copy_ms" 'BEGIN { print ms / 1000 }')"
echo "copy_events_per_s=$copy_rate"
echo "copy_with_log_indexes_events_per_s=$copy_idx_rate"
echo "honest_copy_mirror_rows=$mirror_rows"
printf 'honest_copy_seconds=%.3f\n' "$(awk -v ms="$honest_ms" 'BEGIN { print ms / 1000 }')"
echo "honest_copy_events_per_s=$honest_rate"
echo "honest_copy_ms_by_table=$honest_parts (events $MIRROR_TABLES)"
echo "honest_copy_one_per_table_events_per_s=$(rate "$n_events" "$honest_bulk_ms")"
echo "honest_copy_one_per_table_ms_by_table=$honest_bulk_parts"
printf 'daemon_seconds=%.3f\n' "$(awk -v ms="$d_ms" 'BEGIN { print ms / 1000 }')"
echo "daemon_events_per_s=$daemon_rate"
echo "daemon_unfilled_subjects_at_caught_up=$d_unfilled"
echo "daemon_events_per_s_to_subjects_filled=$(rate "$n_events" "$d_filled_ms")"
echo "daemon_rate_limit_requests_per_min=1000000"
echo "daemon_requests=$d_requests"
echo "daemon_mean_ms_between_requests=$d_req_interval"
awk -v d="$daemon_rate" -v c="$copy_rate" 'BEGIN { printf "ratio_daemon_over_copy=%.3f\n", (c > 0 ? d / c : 0) }'
awk -v d="$daemon_rate" -v c="$copy_idx_rate" 'BEGIN { printf "ratio_daemon_over_copy_with_log_indexes=%.3f\n", (c > 0 ? d / c : 0) }'
awk -v d="$daemon_rate" -v c="$honest_rate" 'BEGIN { printf "ratio_daemon_over_honest_copy=%.3f\n", (c > 0 ? d / c : 0) }'
if [ -n "$BASELINE" ]; then
    baseline_rate=$(rate "$n_events" "$b_ms")
    echo "baseline_events_per_s=$baseline_rate"
    echo "baseline_unfilled_subjects_at_caught_up=$b_unfilled"
    echo "baseline_events_per_s_to_subjects_filled=$(rate "$n_events" "$b_filled_ms")"
    awk -v d="$baseline_rate" -v c="$copy_rate" 'BEGIN { printf "baseline_ratio_over_copy=%.3f\n", (c > 0 ? d / c : 0) }'
    awk -v d="$baseline_rate" -v c="$honest_rate" 'BEGIN { printf "baseline_ratio_over_honest_copy=%.3f\n", (c > 0 ? d / c : 0) }'
    awk -v d="$daemon_rate" -v b="$baseline_rate" 'BEGIN { printf "daemon_over_baseline=%.3f\n", (b > 0 ? d / b : 0) }'
fi
# Where the CPU went during the backfill, per event, and the rate that much
# CPU allows on this machine's cores if every one were kept busy: a ceiling
# for any design doing the same work, whatever its parallelism.
awk -v cpu="$d_cpu" -v hz="$(getconf CLK_TCK)" -v n="$n_events" -v cores="$(nproc)" \
    -v c="$copy_rate" 'BEGIN {
        split(cpu, t, " ")
        printf "daemon_cpu_s=%.2f\npostgres_cpu_s=%.2f\nemulator_cpu_s=%.2f\n", t[1] / hz, t[2] / hz, t[3] / hz
        us = (t[1] + t[2] + t[3]) * 1e6 / hz / n
        printf "cpu_us_per_event=%.1f\ncpus=%d\n", us, cores
        ceiling = (us > 0 ? cores * 1e6 / us : 0)
        printf "cpu_ceiling_events_per_s=%.0f\n", ceiling
        printf "cpu_ceiling_ratio_over_copy=%.3f\n", (c > 0 ? ceiling / c : 0) }'
if [ -n "$BASELINE" ]; then
    awk -v cpu="$b_cpu" -v hz="$(getconf CLK_TCK)" -v n="$n_events" 'BEGIN {
        split(cpu, t, " ")
        printf "baseline_cpu_us_per_event=%.1f (daemon %.1f, postgres %.1f, emulator %.1f)\n",
            (t[1] + t[2] + t[3]) * 1e6 / hz / n, t[1] * 1e6 / hz / n, t[2] * 1e6 / hz / n,
            t[3] * 1e6 / hz / n }'
fi
awk -v cpu="$d_cpu" -v hz="$(getconf CLK_TCK)" -v n="$n_events" 'BEGIN {
    split(cpu, t, " ")
    printf "cpu_us_per_event_by_process=daemon %.1f, postgres %.1f, emulator %.1f\n",
        t[1] * 1e6 / hz / n, t[2] * 1e6 / hz / n, t[3] * 1e6 / hz / n }'
echo "daemon_peak_rss_kib_at_n=$d_hwm"
echo "quarter_events=$q_events"
echo "daemon_events_per_s_at_quarter=$q_rate"
echo "daemon_peak_rss_kib_at_quarter=$q_hwm"
awk -v a="$d_hwm" -v b="$q_hwm" 'BEGIN { printf "rss_growth_n_over_quarter=%.3f\n", (b > 0 ? a / b : 0) }'
