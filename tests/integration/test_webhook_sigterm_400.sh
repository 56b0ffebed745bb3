#!/usr/bin/env bash
# A webhook answered 400 by the event checks (signed, valid JSON, with data,
# but no event id) leaves nothing waiting: SIGTERM right after it exits at
# once, without waiting out the shutdown grace and without a "batch in
# flight abandoned" warning. A valid webhook after the 400 is still stored.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

SECRET=whsec_sigterm_400_1
pg_start
daemon_config workos.api_key= workos.base_url= webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET"
daemon_start
wh_wait_port
wait_for 15 "/readyz 200" wh_ready

noid=$(body_file noid.json '{"object":"event","event":"user.created","data":{"object":"user","id":"user_s400","updated_at":"2026-02-01T00:00:00.000Z","created_at":"2026-02-01T00:00:00.000Z"},"created_at":"2026-02-01T00:00:00.000Z"}')
code=$(wh_post "$noid" "$SECRET")
assert_eq 400 "$code" "signed envelope without id"

# The listener must not think a batch is in flight: stop now.
daemon_stop 10
log "stopped ${DAEMON_STOP_MS} ms after SIGTERM following a 400"
[ "$DAEMON_STOP_MS" -lt 2500 ] ||
    fail "SIGTERM after a 400 took ${DAEMON_STOP_MS} ms: the shutdown waited for a batch that does not exist"
if grep -q 'event=shutdown_timeout' "$DAEMON_LOG"; then
    fail "false shutdown_timeout after a 400: $(grep 'event=shutdown_timeout' "$DAEMON_LOG")"
fi

# The same with a valid event after the 400: it is stored, and the stop is quick.
daemon_start
wh_wait_port
wait_for 15 "/readyz 200" wh_ready
assert_eq 400 "$(wh_post "$noid" "$SECRET")" "signed envelope without id, again"
good=$(body_file good.json "$(user_event_json evt_S400_000000000000000000001 user_s400_ok)")
assert_eq 200 "$(wh_post "$good" "$SECRET")" "valid event after the 400"
assert_eq 1 "$(events_count "id = 'evt_S400_000000000000000000001'")" "the valid event stored"
daemon_stop 10
[ "$DAEMON_STOP_MS" -lt 2500 ] || fail "SIGTERM after a 400 and a 200 took ${DAEMON_STOP_MS} ms"
grep -q 'event=shutdown_timeout' "$DAEMON_LOG" && fail "false shutdown_timeout after a 400 and a 200"
log "no group left open by a 400"
