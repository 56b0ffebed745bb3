#!/usr/bin/env bash
# Faults on the state APIs during a snapshot -- 429 with Retry-After, 500,
# truncated JSON, a dropped connection, bytes after the JSON -- are retried
# and the snapshot still converges exactly.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_reconcile.sh"
require_bins

pg_start
snapshot_env 300 31
emu_start "$EVENTS_SERVED" --fault-scope state --latency 5
daemon_config
daemon_migrate
for f in 429:2:retry_after=1 500:2 truncate:2 drop:1 trailing:1; do
    IFS=: read -r kind count arg <<<"$f"
    emu_fault "$kind" "$count" ${arg:+"$arg"} scope=state
done
syncd backfill >"$T/b.out" 2>>"$DAEMON_LOG" || fail "backfill exited $?"
cat "$T/b.out" >&2
fired=$(emu_stat .faults_fired)
assert_eq 8 "$fired" "faults fired during the snapshot"
assert_mirror_lists "$EXPECTED"
n=$(grep -c 'event=reconcile_request_failed' "$DAEMON_LOG" || true)
# curl may retry a dropped keep-alive connection by itself
[ "$n" -ge 7 ] || fail "only $n failed requests logged for 8 faults"
