#!/usr/bin/env bash
# `make run`: the daemon's main job on an embedded default.
#
# With WORKOS_API_KEY and DATABASE_URL set, it migrates that database and
# runs the daemon for real in the foreground (Ctrl-C stops it).
#
# Without them, it starts a throwaway PostgreSQL and the project's WorkOS
# emulator serving a generated AuthKit history (organizations, users,
# memberships, invitations, sessions, API keys, sign-ins) of which the
# Events API keeps only the newest fifth, as if the rest had expired.  The
# daemon (start_from = snapshot) first reconciles the mirror from the list
# endpoints, then follows the Events API; the demo shows the
# reconciliation's lines and status, delivers a few more events as signed
# webhooks, shows the mirrored tables, and cleans everything up; a dry run
# after the snapshot checks the mirror against what the lists hold.  DEMO_EVENTS sets the history's size
# (default 5000); DEMO_KEEP=1 keeps it all running until Ctrl-C so you can
# query it yourself.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
syncd=$repo/daemon/workos-syncd

if [ -n "${WORKOS_API_KEY:-}" ] && [ -n "${DATABASE_URL:-}" ]; then
    echo "== syncing the WorkOS environment of WORKOS_API_KEY into DATABASE_URL"
    "$syncd" migrate
    exec "$syncd" run
fi
if [ -n "${WORKOS_API_KEY:-}" ] || [ -n "${DATABASE_URL:-}" ]; then
    echo "make run: set both WORKOS_API_KEY and DATABASE_URL to sync for real," >&2
    echo "          or neither for the demo with a local emulator" >&2
    exit 64
fi

# The demo borrows the integration harness: throwaway PostgreSQL, emulator,
# daemon, all on loopback, all stopped on exit.
# shellcheck source=integration/lib.sh
source "$repo/tests/integration/lib.sh"
require_bins

events=${DEMO_EVENTS:-5000}
secret=whsec_demo_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

log "generating $events events of AuthKit history"
"$EMU" gen --count "$events" --seed 7 --start "$(date -u -d '-8 hours' +%Y-%m-%dT%H:%M:%SZ)" \
    --out "$T/history.jsonl" --expect "$T/expected.jsonl" 2>/dev/null
# The newest 50 arrive later, by webhook, as they would in production.
head -n "$((events - 50))" "$T/history.jsonl" >"$T/polled.jsonl"
tail -n 50 "$T/history.jsonl" >"$T/webhooks.jsonl"

pg_start
retained=$((events / 5))
log "the Events API keeps only the newest $retained events: the early history has expired"
emu_start "$T/polled.jsonl" --retention-events "$retained"
daemon_config workos.poll_interval=1s log.level=info workos.start_from=snapshot \
    webhook.listen=127.0.0.1:0 "webhook.secret=$secret"
daemon_start

log "no cursor stored: the daemon reconciles from the list endpoints first"
wait_for 120 "the snapshot to finish" bash -c "grep -q 'event=snapshot_done' '$DAEMON_LOG'"
log "then follows the Events API; waiting for it to catch up"
polling_caught_up() {
    [ "$(sql "SELECT count(*) FROM workos.sync_state
               WHERE stream = 'events_api' AND caught_up_at IS NOT NULL")" = 1 ]
}
wait_for 60 "the Events API to be caught up" polling_caught_up
echo
echo "== the reconciliation, as the daemon logged it"
grep -E 'event=(snapshot_|reconcile_)' "$DAEMON_LOG" | cut -c1-160
echo
echo "== workos-syncd backfill --dry-run: the mirror against what the lists hold now"
"$SYNCD" backfill --dry-run -c "$SYNCD_CONF" || fail "the mirror drifted from the lists after the snapshot"
port=$(grep -o 'event=listening address=[^ ]* port=[0-9]*' "$DAEMON_LOG" | grep -o '[0-9]*$' | head -1)
[ -n "$port" ] || fail "the daemon did not report its webhook port"

log "delivering 50 events as signed webhooks to 127.0.0.1:$port"
"$EMU" send --url "http://127.0.0.1:$port/webhooks/workos" --secret "$secret" \
    --events "$T/webhooks.jsonl" --order shuffle --duplicate 10 >/dev/null

show() {
    echo
    echo "-- $1"
    "$PG_BIN/psql" -X -P pager=off -c "$2"
}

echo
echo "== workos-syncd status"
"$SYNCD" status -c "$SYNCD_CONF" || true
show "rows per table (live / tombstoned)" "
    SELECT 'users' AS table, count(*) FILTER (WHERE deleted_at IS NULL) AS live,
           count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted FROM workos.users
    UNION ALL SELECT 'organization_memberships', count(*) FILTER (WHERE deleted_at IS NULL),
           count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM workos.organization_memberships
    UNION ALL SELECT 'invitations', count(*) FILTER (WHERE deleted_at IS NULL),
           count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM workos.invitations
    UNION ALL SELECT 'sessions', count(*) FILTER (WHERE deleted_at IS NULL),
           count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM workos.sessions
    UNION ALL SELECT 'api_keys', count(*) FILTER (WHERE deleted_at IS NULL),
           count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM workos.api_keys
    UNION ALL SELECT 'organizations', count(*) FILTER (WHERE deleted_at IS NULL),
           count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM workos.organizations"
show "a few users" "
    SELECT id, email, first_name, last_name, email_verified, updated_at
      FROM workos.users WHERE deleted_at IS NULL ORDER BY updated_at DESC LIMIT 5"
show "members per organization and role" "
    SELECT o.name AS organization, m.role_slug, count(*) AS members
      FROM workos.organization_memberships m JOIN workos.organizations o ON o.id = m.organization_id
     WHERE m.deleted_at IS NULL AND m.status = 'active'
     GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 8"
show "sign-ins per day and outcome (analytics view)" "
    SELECT day::date, type, status, attempts, users FROM workos.auth_daily ORDER BY 1, 2, 3 LIMIT 10"
show "the event log, by source" "
    SELECT source, count(*) AS events, max(received_at) AS last_received
      FROM workos.events GROUP BY source"


if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo
    echo "Still running.  In another shell:"
    echo "  psql '$DATABASE_URL' -c 'SELECT * FROM workos.users LIMIT 5'"
    echo "  curl -s http://127.0.0.1:$port/metrics | grep ^workos_syncd"
    echo "Ctrl-C stops everything."
    while daemon_alive; do sleep 1; done
fi
