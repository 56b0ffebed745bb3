#!/usr/bin/env bash
# Backfill against an API far away (`make bench-latency`, also run by
# `make bench`; not part of CI).
#
# The emulator answers every request after BENCH_LATENCIES milliseconds
# (--latency), the daemon keeps its default pacing ([workos] rate_limit
# 5000 a minute, so at most 5000 / 60 * 100 = 8,333 events/s), and the same
# backfill of BENCH_EVENTS generated events is timed, from the daemon's
# start to its cursor at the last event, at each latency: with fetch
# windows (the default, [workos] fetch_windows = 16) and with one request
# in flight (fetch_windows = 1, the daemon before windows). Prints per run
# the events/s, its ratio to the pacing bound, the requests made and the
# daemon's peak RSS, as key=value lines; progress goes to stderr.
#
#   BENCH_EVENTS     N (default 50000)
#   BENCH_LATENCIES  added latencies in ms (default "0 50 150")
#   BENCH_ONE_CHAIN  latencies also run on one chain (default "0 50"; at
#                    150 ms one chain takes minutes)
#   BENCH_FETCH_AHEAD  [workos] fetch_ahead for the runs (default: the
#                    daemon's own)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
require_bins

N=${BENCH_EVENTS:-50000}
LATENCIES=${BENCH_LATENCIES-0 50 150}
ONE_CHAIN=${BENCH_ONE_CHAIN-0 50}
RATE_LIMIT=5000

pg_start --fsync
gen_stream "$N" 5151
n_events=$(count_events "$EVENTS")
last=$(last_event_id "$EVENTS")
bound=$(awk -v r="$RATE_LIMIT" 'BEGIN { printf "%.0f", r / 60 * 100 }')
echo "events=$n_events"
echo "rate_limit_requests_per_min=$RATE_LIMIT"
echo "pacing_bound_events_per_s=$bound"

# run LATENCY WINDOWS: one backfill into a fresh schema; prints its lines.
run() {
    local latency=$1 windows=$2 schema=bench_lat_$1_$2 key
    key="latency_${latency}ms_windows_${windows}"
    emu_start "$EVENTS_SERVED" --latency "$latency"
    local from=$(($(reqlog_lines) + 1))
    daemon_config database.schema="$schema" workos.rate_limit="$RATE_LIMIT" \
        workos.fetch_windows="$windows" workos.poll_interval=100ms log.level=info \
        ${BENCH_FETCH_AHEAD:+workos.fetch_ahead=$BENCH_FETCH_AHEAD}
    daemon_migrate
    sql "checkpoint"
    local t0 ms c
    t0=$(now_ms)
    daemon_start
    wait_backfill "$last" "backfill at ${latency} ms"
    local t1
    t1=$(now_ms)
    # From the first request: the daemon's start-up is not the backfill.
    local first
    first=$(awk -v from="$from" 'NR == from { sub(/^ts_ms=/, "", $1); print $1; exit }' "$EMU_LOG")
    ms=$((t1 - first))
    local hwm requests
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status")
    requests=$(tail -n "+$from" "$EMU_LOG" | wc -l | tr -d ' ')
    local partial
    partial=$(tail -n "+$from" "$EMU_LOG" | grep -c -v ' returned=100 ' || true)
    daemon_stop
    emu_stop
    sql "drop schema $schema cascade" >/dev/null 2>&1
    awk -v k="$key" -v n="$n_events" -v ms="$ms" -v b="$bound" -v req="$requests" -v hwm="$hwm" -v part="$partial" 'BEGIN {
        rate = (ms > 0 ? n * 1000 / ms : 0)
        printf "%s_seconds=%.2f\n%s_events_per_s=%.0f\n%s_ratio_over_pacing_bound=%.3f\n", k, ms / 1000, k, rate, k, rate / b
        printf "%s_requests=%d\n%s_requests_not_full=%d\n%s_peak_rss_kib=%d\n", k, req, k, part, k, hwm }'
    log "latency ${latency} ms, fetch_windows=$windows: $ms ms"
}

for l in $LATENCIES; do
    run "$l" "${BENCH_WINDOWS:-16}"
done
for l in $ONE_CHAIN; do
    run "$l" 1
done
