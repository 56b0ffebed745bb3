#!/usr/bin/env bash
# Snapshot benchmark (`make bench`; not part of CI): `workos-syncd backfill`
# of a generated environment (BENCH_USERS users, default 20,000, their
# memberships in about users/20 organizations, sessions and API keys)
# against the emulator with 20 ms latency per request and WorkOS' two rate
# limits enforced.  Prints the time, the requests made, the lower bound the
# limits allow for that many requests (a sliding window of N per W admits
# n requests in no less than (ceil(n/N) - 1) * W), their ratio (target:
# at most 1.25), the limits' peak counts, and the daemon's peak RSS for
# N and N/4 users (flat: pages are streamed).  key=value lines on stdout.
set -euo pipefail
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/../integration/lib_reconcile.sh"
require_bins

N=${BENCH_USERS:-20000}
pg_start --fsync

# run_snapshot USERS SEED: one environment, one backfill; sets SECS, RSS_KB,
# and the emulator's counters.
run_snapshot() {
    snapshot_env "$1" "$2"
    emu_start "$EVENTS_SERVED" --retention-events 1000 --latency 20 \
        --limit-overall 6000/60s --limit-user-management 1000/10s
    daemon_config database.schema="bench_$1"
    daemon_migrate
    local t0 pid hwm
    t0=$(now_ms)
    "$SYNCD" backfill -c "$SYNCD_CONF" >"$T/backfill-$1.out" 2>>"$DAEMON_LOG" &
    pid=$!
    track_pid "$pid"
    RSS_KB=0
    while proc_alive "$pid"; do
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$hwm" ] && [ "$hwm" -gt "$RSS_KB" ] && RSS_KB=$hwm
        sleep 0.2
    done
    wait "$pid" || fail "backfill exited $?"
    SECS=$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
    STATE_REQ=$(emu_stat .state_requests)
    UM_REQ=$(emu_stat '.endpoints.users + .endpoints.invitations + .endpoints.organization_memberships + .endpoints.sessions')
    PEAK_ALL=$(emu_stat .limits.overall.peak)
    PEAK_UM=$(emu_stat .limits.user_management.peak)
    LIMITED=$(emu_stat .rate_limited)
    assert_mirror_lists "$EXPECTED"
    emu_stop
}

bound() { # n limit window_s
    awk -v n="$1" -v l="$2" -v w="$3" 'BEGIN { k = int((n + l - 1) / l); print ((k > 0) ? (k - 1) * w : 0) }'
}

run_snapshot $((N / 4)) 77
rss_q=$RSS_KB
run_snapshot "$N" 78
b_um=$(bound "$UM_REQ" 1000 10)
b_all=$(bound "$STATE_REQ" 6000 60)
b=$((b_um > b_all ? b_um : b_all))
cat "$T/backfill-$N.out"
echo "users=$N seconds=$SECS requests=$STATE_REQ user_management_requests=$UM_REQ"
echo "lower_bound_seconds=$b ratio=$(awk -v s="$SECS" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? s / b : 0) }')"
echo "peak_overall=$PEAK_ALL/6000 peak_user_management=$PEAK_UM/1000 rate_limited=$LIMITED"
echo "rss_kb_users_$((N / 4))=$rss_q rss_kb_users_$N=$RSS_KB"
