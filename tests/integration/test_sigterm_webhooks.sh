#!/usr/bin/env bash
# SIGTERM while webhooks flow: the listener stops accepting, requests
# already received are answered after their batch commits, the daemon exits
# 0 within a few seconds, and every request answered 2xx is in the log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

SECRET=whsec_sigterm_webhooks_1
pg_start
daemon_config webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET" workos.api_key=
daemon_start
wh_wait_port

# Four senders, each posting unique signed events on fresh connections and
# recording "id status" lines, until the daemon stops answering.
sender() {
    local n=0 id code
    while [ "$n" -lt 2000 ]; do
        n=$((n + 1))
        id=evt_term_${SENDER}_$n
        user_event_json "$id" "user_term_${SENDER}_$n" >"$T/body.$SENDER"
        code=$(wh_post "$T/body.$SENDER" "$SECRET")
        echo "$id $code" >>"$T/sent.$SENDER"
        [ "$code" = 000 ] && break
    done
}
for SENDER in 1 2 3 4; do
    bash -c "set -u; T='$T'; WH_URL='$WH_URL'; SENDER=$SENDER; SECRET='$SECRET'
$(declare -f sender user_event_json wh_post wh_post_header wh_signature http_code now_ms fail)
TEST_NAME=sender$SENDER
sender" 2>"$T/sender.$SENDER.err" &
    track_pid $!
done
some_committed() { [ "$(cat "$T"/sent.* 2>/dev/null | grep -c ' 200$' || true)" -ge 100 ]; }
wait_for 30 "100 webhooks committed" some_committed
daemon_stop 10
log "daemon stopped in ${DAEMON_STOP_MS} ms with senders running"
wait

cat "$T"/sent.* >"$T/sent.all"
awk '$2 == 200 { print $1 }' "$T/sent.all" >"$T/ok.ids"
log "$(wc -l <"$T/ok.ids" | tr -d ' ') answered 200, $(awk '$2 == 503' "$T/sent.all" | wc -l | tr -d ' ') answered 503, $(awk '$2 == "000"' "$T/sent.all" | wc -l | tr -d ' ') refused"
[ "$(awk '$2 != 200 && $2 != 503 && $2 != "000"' "$T/sent.all" | wc -l)" -eq 0 ] ||
    fail "unexpected answers: $(awk '$2 != 200 && $2 != 503 && $2 != "000"' "$T/sent.all" | head -n 3)"
assert_ids_stored "$T/ok.ids" "webhooks answered 200"
