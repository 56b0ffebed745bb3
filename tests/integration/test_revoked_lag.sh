#!/usr/bin/env bash
# A session.revoked whose payload still says "status": "active" (as WorkOS'
# own emulator sends for the sessions a user deletion ends) leaves the
# session revoked, with the rest of its payload applied; the same for an
# invitation.revoked whose payload says "state": "pending".
source "$(dirname "$0")/lib.sh"
require_bins

T1=2024-02-01T00:00:01.000Z
T2=2024-02-01T00:00:02.000Z
seq_no=0
ev() { # TYPE DATA
    seq_no=$((seq_no + 1))
    printf '{"object":"event","id":"evt_rvk_%03d","event":"%s","data":%s,"created_at":"2024-03-01T00:00:%02d.000Z"}\n' \
        "$seq_no" "$1" "$2" "$seq_no"
}
session() { # ID STATUS UPDATED_AT ENDED_AT USER_AGENT
    printf '{"object":"session","id":"%s","user_id":"user_r1","status":"%s","auth_method":"password","ip_address":"192.0.2.1","user_agent":"%s","expires_at":"2024-03-01T00:00:00.000Z","ended_at":%s,"created_at":"%s","updated_at":"%s"}' \
        "$1" "$2" "$5" "$4" "$T1" "$3"
}
invitation() { # ID STATE UPDATED_AT
    printf '{"object":"invitation","id":"%s","email":"r@example.test","state":"%s","expires_at":"2024-03-01T00:00:00.000Z","created_at":"%s","updated_at":"%s"}' \
        "$1" "$2" "$T1" "$3"
}

EVENTS=$T/events.jsonl
{
    ev session.created "$(session sess_r1 active "$T1" null curl/8)"
    ev user.deleted '{"id":"user_r1"}'
    # The lagging payload: same updated_at, status still active.
    ev session.revoked "$(session sess_r1 active "$T1" "\"$T2\"" curl/8.1)"
    # Revoked first in the stream of another session, then nothing else.
    ev session.revoked "$(session sess_r2 active "$T2" null firefox)"
    ev invitation.created "$(invitation inv_r1 pending "$T1")"
    ev invitation.revoked "$(invitation inv_r1 pending "$T2")"
    ev session.created "$(session sess_r3 active "$T1" null safari)"
} >"$EVENTS"

pg_start
emu_start "$EVENTS"
daemon_config
daemon_start
wait_caught_up 60
daemon_alive || fail "daemon exited"
assert_events_exact "$EVENTS"

s() { sql "select $1 from workos.sessions where id = '$2'"; }
assert_eq "revoked|curl/8.1|2024-02-01 00:00:02+00" "$(s "status || '|' || user_agent || '|' || ended_at" sess_r1)" \
    "sess_r1: revoked by its type, the rest of the payload applied"
assert_eq "revoked|firefox" "$(s "status || '|' || user_agent" sess_r2)" \
    "sess_r2: a revocation seen first is revoked too"
assert_eq "active" "$(s status sess_r3)" "sess_r3: a created session stays active"
assert_eq "revoked" "$(sql "select state from workos.invitations where id = 'inv_r1'")" \
    "inv_r1: revoked by its type"
# The log keeps the payload as it came.
assert_eq "active" "$(sql "select data->>'status' from workos.events where id = 'evt_rvk_003'")" \
    "the event log keeps the payload unchanged"
daemon_stop
