#!/usr/bin/env bash
# Many concurrent clients on the webhook listener (webhook-only daemon), with
# every way a request's bytes can reach the header-time gate: heads whole, byte
# by byte and cut anywhere; bodies with their head, after it, byte by byte;
# pipelined keep-alive requests, the next head in the same write as a body's
# end; requests the gate refuses; connections closed half-way. Every request
# is answered with its status within 5 s (none is left waiting), each signed
# webhook answered 200 is stored once, and once the clients are gone the
# connections they opened are released.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins
command -v python3 >/dev/null || fail "python3 is required"

SECRET=whsec_gate_stress_5e21a0
pg_start
daemon_config workos.api_key= workos.base_url= webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET" \
    log.level=info
daemon_start
wh_wait_port
wait_for 15 "/readyz 200" wh_ready
log "webhook receiver at $WH_URL"

IDS=$T/stored.ids
set +e
python3 "$(dirname "$0")/webhook_gate_stress.py" "$WH_PORT" "${WH_URL#"$WH_BASE"}" "$SECRET" \
    evt_STRESS "$IDS" "${STRESS_WORKERS:-24}" "${STRESS_SECONDS:-8}" 5 >"$T/stress.out" 2>"$T/stress.err"
rc=$?
set -e
while read -r line; do log "stress: $line"; done <"$T/stress.out"
[ -s "$T/stress.err" ] && sed -n 1,20p "$T/stress.err" >&2
stat() { awk -F= -v k="$1" '$1 == k { print $2 }' "$T/stress.out"; }
[ -n "$(stat requests)" ] || fail "the stress client printed no counts (exit $rc)"
[ "$(stat unanswered)" = 0 ] || fail "$(stat unanswered) of $(stat requests) requests were never answered"
[ "$(stat wrong)" = 0 ] || fail "$(stat wrong) requests got a wrong answer"
[ "$rc" -eq 0 ] || fail "the stress client failed (exit $rc)"
[ "$(stat requests)" -ge 200 ] || fail "only $(stat requests) requests were made"
daemon_alive || fail "the daemon exited under the stress"

# Every webhook answered 200 is in the event log, once.
n_ids=$(sort -u "$IDS" | wc -l)
[ "$n_ids" -eq "$(wc -l <"$IDS")" ] || fail "an event id was answered 200 twice"
n_db=$(sql "SELECT count(*) FROM $SYNCD_SCHEMA.events WHERE id LIKE 'evt_STRESS_%'")
assert_eq "$n_ids" "$n_db" "stored events answered 200"

# The clients have all closed: their connections are released (only the
# /metrics request itself stays open).
conns() { [ "$(metric workos_syncd_webhook_connections)" -le 1 ]; }
wait_for 10 "the webhook connections to be released" conns
assert_eq 200 "$(http_code "$WH_BASE/readyz")" "/readyz after the stress"
daemon_stop
log "ok: $(stat answered) requests answered (slowest $(stat max_ms) ms), $n_db events stored"
