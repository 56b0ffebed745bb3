#!/usr/bin/env bash
# Webhook benchmark (`make bench-webhook`; not part of CI).
#
# On one PostgreSQL with fsync and synchronous_commit on, a daemon that only
# receives webhooks is driven by tests/bench/webhook-load with unique, signed
# user.updated events:
#   closed loop: BENCH_CONCURRENCY connections (64), each sending its next
#                request when the previous answer arrives, for
#                BENCH_DURATION seconds (10) after BENCH_WARMUP seconds (2);
#   open loop:   BENCH_RATE requests per second (1000) on a fixed schedule
#                for BENCH_DURATION seconds, latency counted from when each
#                request was due.
# Every 2xx promises a committed event, so afterwards workos.events must
# hold exactly as many rows as the generator counted 2xx answers (warm-up
# included). Results are key=value lines on stdout, each run's prefixed
# closed_ / open_: the generator's figures, the CPU the daemon and
# PostgreSQL used during the run, and the batches the daemon committed (how
# many, mean requests per batch, mean time from sending a batch to its
# commit); then the row check and the daemon's peak RSS. Progress goes to
# stderr. The targets are printed next to the figures, not enforced: the
# exit status is non-zero only when the run itself failed (a non-2xx
# answer, a failed request, a count mismatch).
#
#   BENCH_CONCURRENCY, BENCH_DURATION, BENCH_WARMUP, BENCH_RATE,
#   BENCH_OPEN_WARMUP (0)  as above
#   BENCH_LOG_LEVEL=debug  also the distribution of batch sizes (the daemon
#                          logs each committed webhook batch at debug)
#   WEBHOOK_LOAD           the generator binary (e.g. a sanitizer build)
#   BENCH_BEFORE_COMMIT    the build to compare with (tests/bench/lib_before.sh:
#                          default 38acb58, before the audit trail and the
#                          rollups; empty: none). Its closed and open loops
#                          run after the daemon's, into a schema of their
#                          own, printed as before_closed_*, before_open_*,
#                          and the ratios closed_rate_over_before and
#                          open_p99_over_before
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_before.sh
source "$(dirname "$0")/lib_before.sh"

LOAD=${WEBHOOK_LOAD:-$REPO_ROOT/tests/bench/webhook-load}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
RATE=${BENCH_RATE:-1000}
OPEN_WARMUP=${BENCH_OPEN_WARMUP:-0}
LEVEL=${BENCH_LOG_LEVEL:-info}
TARGET_CLOSED_RATE=10000
TARGET_OPEN_P99_MS=20

[ -x "$SYNCD" ] || fail "daemon binary $SYNCD not built (make)"
[ -x "$LOAD" ] || fail "load generator $LOAD not built (make tests/bench/webhook-load)"
command -v curl >/dev/null || fail "curl is needed to wait for the daemon"

pg_start --fsync
sql "show fsync" | grep -qx on || fail "fsync is not on"
sql "show synchronous_commit" | grep -qx on || fail "synchronous_commit is not on"

# Webhooks only: no API key, so no poller. The listening line is logged at
# info, which is also the quietest level that shows it; nothing is logged
# per accepted webhook at info.
secret=whsec_bench_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
# start_receiver BIN SCHEMA [KEY=VALUE...]: a daemon BIN that only receives
# webhooks, into SCHEMA; sets base.
start_receiver() {
    local bin=$1 schema=$2
    shift 2
    SYNCD=$bin
    DAEMON_MIGRATED=
    daemon_config workos.api_key= workos.base_url= workos.poll_interval= workos.start_from= \
        workos.request_timeout= workos.rate_limit= database.schema="$schema" \
        webhook.listen=127.0.0.1:0 "webhook.secret=$secret" "log.level=$LEVEL" "$@"
    local from
    from=$(($( { wc -l <"$DAEMON_LOG"; } 2>/dev/null || echo 0) + 1))
    daemon_start
    port=
    local deadline=$(($(now_ms) + 15000))
    while [ -z "$port" ]; do
        port=$(tail -n "+$from" "$DAEMON_LOG" 2>/dev/null | grep -o 'event=listening address=[^ ]* port=[0-9]*' |
            grep -o '[0-9]*$' | head -n 1 || true)
        [ -n "$port" ] && break
        daemon_alive || fail "daemon exited at start-up"
        [ "$(now_ms)" -lt "$deadline" ] || fail "daemon did not report its webhook port in 15 s"
        sleep 0.05
    done
    base=http://127.0.0.1:$port
    wait_for 30 "the daemon to be ready" ready
    log "daemon $bin (pid $DAEMON_PID) receiving webhooks at $base into $schema"
}
ready() { curl -sf --max-time 2 "$base/readyz" >/dev/null; }

HZ=$(getconf CLK_TCK)

# value FILE KEY: the value of KEY in a key=value file.
value() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# commit_stats: "<batches committed> <seconds spent committing>" so far,
# from the daemon's metrics.
commit_stats() {
    curl -sf --max-time 5 "$base/metrics" | awk '
        $1 == "workos_syncd_batch_commit_seconds_count" { c = $2 }
        $1 == "workos_syncd_batch_commit_seconds_sum" { s = $2 }
        END { print c + 0, s + 0 }'
}

# batch_sizes NAME FROM TO: the distribution of group-commit sizes logged
# on daemon log lines FROM..TO (debug level only).
batch_sizes() {
    sed -n "$2,$3p" "$DAEMON_LOG" | grep -o 'event=webhook_batch_committed requests=[0-9]*' |
        grep -o '[0-9]*$' | sort -n | awk -v n="$1" '{ v[NR] = $1 } END {
            if (NR == 0) exit
            p99 = int(NR * 0.99); if (p99 < 1) p99 = 1
            printf "%s_batch_requests_p50=%d\n%s_batch_requests_p99=%d\n", n, v[int((NR + 1) / 2)], n, v[p99]
            printf "%s_batch_requests_max=%d\n", n, v[NR] }'
}

# run_load NAME ARGS...: runs the generator, prints its lines prefixed with
# NAME_, plus the CPU the daemon and PostgreSQL used meanwhile (in % of one
# core over the run's wall time), the number of batches the daemon
# committed, their mean size and mean commit time (sent to PostgreSQL until
# committed); sets LOAD_RC and NAME's result file.
run_load() {
    local name=$1
    shift
    local out=$T/$name.txt pids d0 p0 t0 d1 p1 t1 l0 c0 c1
    l0=$(($(wc -l <"$DAEMON_LOG") + 1))
    c0=$(commit_stats)
    mapfile -t pids < <(pg_pids)
    d0=$(cpu_ticks "$DAEMON_PID")
    p0=$(cpu_ticks "${pids[@]}")
    t0=$(now_ms)
    log "$name loop: webhook-load $*"
    LOAD_RC=0
    WORKOS_WEBHOOK_SECRET=$secret "$LOAD" --url "$base/webhooks/workos" "$@" >"$out" ||
        LOAD_RC=$?
    t1=$(now_ms)
    d1=$(cpu_ticks "$DAEMON_PID")
    p1=$(cpu_ticks "${pids[@]}")
    c1=$(commit_stats)
    sed -e "s/^/${name}_/" "$out"
    awk -v d=$((d1 - d0)) -v p=$((p1 - p0)) -v hz="$HZ" -v ms=$((t1 - t0)) -v n="$name" 'BEGIN {
        printf "%s_daemon_cpu_pct=%.0f\n", n, (ms > 0 ? d * 100000 / hz / ms : 0)
        printf "%s_postgres_cpu_pct=%.0f\n", n, (ms > 0 ? p * 100000 / hz / ms : 0) }'
    awk -v a="$c0" -v b="$c1" -v ok="$(value "$out" total_ok_2xx)" -v n="$name" 'BEGIN {
        split(a, x, " "); split(b, y, " "); k = y[1] - x[1]
        printf "%s_batches=%d\n", n, k
        printf "%s_batch_requests_mean=%.1f\n", n, (k > 0 ? ok / k : 0)
        printf "%s_commit_ms_mean=%.3f\n", n, (k > 0 ? (y[2] - x[2]) * 1000 / k : 0) }'
    [ "$LEVEL" != debug ] || batch_sizes "$name" "$l0" "$(wc -l <"$DAEMON_LOG")"
    [ "$LOAD_RC" -eq 0 ] || log "$name loop: webhook-load exited with status $LOAD_RC"
    daemon_alive || fail "daemon exited during the $name-loop run"
}

# bench_receiver PREFIX BIN SCHEMA [KEY=VALUE...]: the closed and the open
# loop against daemon BIN writing SCHEMA, their lines prefixed with PREFIX,
# then the durability check and the peak RSS; sets failed on a failed run.
bench_receiver() {
    local p=$1 bin=$2 schema=$3
    shift 3
    start_receiver "$bin" "$schema" "$@"
    run_load "${p}closed" --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP"
    [ "$LOAD_RC" -eq 0 ] || failed=1
    run_load "${p}open" --rate "$RATE" --duration "$DURATION" --warmup "$OPEN_WARMUP"
    [ "$LOAD_RC" -eq 0 ] || failed=1

    local hwm closed_2xx open_2xx got_2xx rows wrong_source users
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status")
    closed_2xx=$(value "$T/${p}closed.txt" total_ok_2xx)
    open_2xx=$(value "$T/${p}open.txt" total_ok_2xx)
    got_2xx=$((${closed_2xx:-0} + ${open_2xx:-0}))
    rows=$(sql "select count(*) from $schema.events")
    wrong_source=$(sql "select count(*) from $schema.events where source <> 'webhook'")
    users=$(sql "select count(*) from $schema.users")
    echo "${p}events_rows=$rows"
    echo "${p}generator_2xx_total=$got_2xx"
    if [ "$rows" -eq "$got_2xx" ] && [ "$wrong_source" -eq 0 ]; then
        echo "${p}durable_match=yes"
    else
        echo "${p}durable_match=no"
        log "$schema.events holds $rows rows ($wrong_source not from webhooks), the generator counted $got_2xx 2xx answers"
        failed=1
    fi
    echo "${p}users_rows=$users"
    echo "${p}daemon_peak_rss_kib=$hwm"
    daemon_stop 10
}

failed=0
echo "postgres_fsync=on"
echo "postgres_synchronous_commit=on"
echo "cpus=$(nproc)"
NOW_BIN=$SYNCD
bench_receiver "" "$NOW_BIN" workos

closed_rate=$(value "$T/closed.txt" rate_2xx_per_s)
open_p99=$(value "$T/open.txt" p99_ms)
echo "target_closed_rate_2xx_per_s=$TARGET_CLOSED_RATE"
awk -v r="$closed_rate" -v t="$TARGET_CLOSED_RATE" 'BEGIN { print "target_closed_met=" (r + 0 >= t ? "yes" : "no") }'
echo "target_open_p99_ms=$TARGET_OPEN_P99_MS"
awk -v p="$open_p99" -v t="$TARGET_OPEN_P99_MS" 'BEGIN { print "target_open_met=" (p + 0 < t ? "yes" : "no") }'

# The same loops against the daemon before the audit trail and the rollups.
before_build
if [ -n "$BEFORE_BIN" ]; then
    echo "before_commit=$BEFORE_COMMIT"
    bench_receiver before_ "$BEFORE_BIN" bench_before "${BEFORE_CONFIG[@]}"
    awk -v a="$closed_rate" -v b="$(value "$T/before_closed.txt" rate_2xx_per_s)" \
        'BEGIN { printf "closed_rate_over_before=%.3f\n", (b > 0 ? a / b : 0) }'
    awk -v a="$open_p99" -v b="$(value "$T/before_open.txt" p99_ms)" \
        'BEGIN { printf "open_p99_over_before=%.3f\n", (b > 0 ? a / b : 0) }'
fi

[ "$failed" -eq 0 ] || fail "the webhook benchmark run failed (see above)"
log "done"
