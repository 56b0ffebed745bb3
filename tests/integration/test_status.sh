#!/usr/bin/env bash
# `workos-syncd status`: exit 1 before the first sync and while a backfill
# is running, 0 once caught up (printing cursor=<last event id>), 2 while
# the database is unreachable, and 0 again once the daemon has reconnected.
source "$(dirname "$0")/lib.sh"
require_bins

# status_rc: run status (bounded), keep its output in $T/status.out.
status_rc() {
    local rc=0
    timeout 20 "$SYNCD" status -c "$SYNCD_CONF" >"$T/status.out" 2>"$T/status.err" </dev/null || rc=$?
    [ "$rc" -ne 124 ] || fail "status hung for 20 s"
    echo "$rc"
}

paced_stream 5000 707 60
last=$(last_event_id "$EVENTS")
daemon_config
daemon_migrate

rc=$(status_rc)
assert_eq 1 "$rc" "status exit before the first sync"
log "status before the first sync: $(tr '\n' ' ' <"$T/status.out")"

daemon_start
wait_first_page 60
rc=$(status_rc)
[ "$(cursor)" != "$last" ] || fail "backfill finished too early"
assert_eq 1 "$rc" "status exit during the backfill"
log "status during backfill: $(tr '\n' ' ' <"$T/status.out")"

emu_clear_faults
wait_caught_up 60
caught_up() { [ "$(status_rc)" = 0 ]; }
wait_for 15 "status to exit 0 once caught up" caught_up
grep -q -x "cursor=$last" "$T/status.out" ||
    fail "status does not print cursor=$last: $(cat "$T/status.out")"
for key in cursor_age lag last_error rows_users rows_organization_memberships rows_invitations \
    rows_sessions rows_api_keys rows_organizations; do
    grep -q "^$key=" "$T/status.out" || fail "status prints no $key= line: $(cat "$T/status.out")"
done
log "status when caught up: $(tr '\n' ' ' <"$T/status.out")"

pg_stop
rc=$(status_rc)
assert_eq 2 "$rc" "status exit with the database down (0 caught up, 1 behind, 2 unreachable)"
log "status with the database down: $(tr '\n' ' ' <"$T/status.out" "$T/status.err" | cut -c 1-300)"
pg_up
wait_for 30 "status to exit 0 after the database came back" caught_up
daemon_alive || fail "daemon exited"
daemon_stop

# A message quoting names keeps the text form one parseable line: " and \
# are escaped.
sql "update workos.sync_state set last_error = 'relation \"a\\b\" failed', last_error_at = now()
      where stream = 'events_api'" >/dev/null
status_rc >/dev/null
grep -qxF 'last_error="relation \"a\\b\" failed"' "$T/status.out" ||
    fail "last_error not escaped: $(grep '^last_error=' "$T/status.out")"
timeout 20 "$SYNCD" status --json -c "$SYNCD_CONF" >"$T/status.json" 2>/dev/null || true
assert_eq 'relation "a\b" failed' "$(jq -r .last_error "$T/status.json")" "last_error in JSON"
