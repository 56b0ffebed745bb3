#!/usr/bin/env bash
# PostgreSQL stops for a few seconds in the middle of a webhook flood
# (webhook-only daemon). While it is down, webhooks are answered 503 at once
# (no hanging requests), /readyz answers 503 and /healthz 200; once it is back
# the daemon reconnects and answers 200 again. No event is answered 2xx
# without being stored. Re-sending the whole stream, as WorkOS retries, ends
# with an exact event log and the generator's expected mirror.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

SECRET=whsec_outage_2d9be4c1
pg_start
gen_stream 6000 6061
daemon_config workos.api_key= workos.base_url= webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET"
daemon_start
wh_wait_port
wait_for 15 "/readyz 200" wh_ready

# The flood: unique events in stream order, 20 per `send` run, one attempt
# each (no retry: every answer is seen in the log), until told to stop.
FLOOD_LOG=$T/flood.log
flood() {
    local i=0 total
    total=$(wc -l <"$EVENTS_SERVED")
    while [ ! -e "$T/flood.stop" ] && [ "$i" -lt "$total" ]; do
        "$EMU" send --url "$WH_URL" --secret "$SECRET" --events "$EVENTS_SERVED" --first "$i" \
            --count 20 --retries 0 --timeout-ms 8000 --log "$FLOOD_LOG" 2>>"$T/flood.stderr" &
        wait $! || true
        i=$((i + 20))
        sleep 0.05
    done
    echo "$i" >"$T/flood.sent"
}
spawn flood flood T EMU WH_URL SECRET EVENTS_SERVED FLOOD_LOG
flood_pid=$SPAWN_PID

flood_200() { [ "$(grep -c ' status=200 ' "$FLOOD_LOG" 2>/dev/null || true)" -ge "$1" ]; }
wait_for 20 "200 flood deliveries answered" flood_200 200
log "flood running: $(line_count "$FLOOD_LOG") deliveries so far; stopping postgresql"

down_ms=$(now_ms)
pg_stop
log "postgresql stopped ($(($(now_ms) - down_ms)) ms)"
readyz_503() { [ "$(http_code "$WH_BASE/readyz")" = 503 ]; }
wait_for 10 "/readyz to answer 503" readyz_503
grep -q 'database' "$T/http_body" || fail "/readyz 503 without the reason: $(cat "$T/http_body")"
log "/readyz during the outage: 503 $(cat "$T/http_body")"
assert_eq 200 "$(http_code "$WH_BASE/healthz")" "/healthz during the outage"
has_503() { grep -q ' status=503 ' "$FLOOD_LOG"; }
wait_for 10 "a 503 answer to the flood" has_503
sleep 2.5
daemon_alive || fail "daemon exited while postgresql was down"
up_start_ms=$(now_ms)
pg_up
up_ms=$(now_ms)
log "postgresql back after $((up_ms - down_ms)) ms"

readyz_200() { [ "$(http_code "$WH_BASE/readyz")" = 200 ]; }
wait_for 20 "/readyz to answer 200 again" readyz_200
log "ready again $(($(now_ms) - up_ms)) ms after postgresql came back"
n_before=$(grep -c ' status=200 ' "$FLOOD_LOG")
wait_for 20 "200 more flood deliveries answered 200" flood_200 $((n_before + 200))
touch "$T/flood.stop"
wait_gone "$flood_pid" 20 || fail "the flood did not stop"
reap "$flood_pid"
log "flood stopped after $(cat "$T/flood.sent") events, $(line_count "$FLOOD_LOG") deliveries"

# Every answer was 200 or 503, and none took long: no timeout, no dropped
# connection (status 0), no gap over 3 s between two answers.
awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^status=/) print substr($i, 8) }' "$FLOOD_LOG" |
    sort | uniq -c >"$T/flood.statuses"
log "flood answers by status: $(tr -s ' \n' ' ' <"$T/flood.statuses")"
others=$(awk '$2 != 200 && $2 != 503 { n += $1 } END { print n + 0 }' "$T/flood.statuses")
if [ "$others" -ne 0 ]; then
    grep -v -e ' status=200 ' -e ' status=503 ' "$FLOOD_LOG" | head -n 5 >&2
    fail "$others flood deliveries were answered neither 200 nor 503"
fi
n503=$(grep -c ' status=503 ' "$FLOOD_LOG" || true)
n200=$(grep -c ' status=200 ' "$FLOOD_LOG" || true)
[ "$n503" -gt 0 ] || fail "no 503 during the outage"
# 503s belong to the outage; 200s come before it and after it.
awk -v down="$down_ms" -v up="$up_ms" '
    { ts = substr($1, 7) + 0 }
    / status=503 / && (ts < down || ts > up + 30000) { printf "503 outside the outage: %s\n", $0; bad++ }
    / status=200 / && ts > down + 1000 && ts < up_start { printf "200 while postgresql was down: %s\n", $0; bad++ }
    END { exit bad ? 1 : 0 }' up_start="$up_start_ms" "$FLOOD_LOG" >"$T/flood.misplaced" || {
    head -n 5 "$T/flood.misplaced" >&2
    fail "answers do not match the outage window"
}
maxgap=$(awk '{ ts = substr($1, 7) + 0; if (prev && ts - prev > max) max = ts - prev; prev = ts } END { print max + 0 }' "$FLOOD_LOG")
log "longest pause between two answers: ${maxgap} ms"
[ "$maxgap" -lt 3000 ] || fail "a webhook waited ${maxgap} ms for its answer during the outage"

# No 2xx for an event that was not committed.
awk '/ status=200 / { for (i = 1; i <= NF; i++) if ($i ~ /^id=/) print substr($i, 4) }' "$FLOOD_LOG" >"$T/ids.200"
assert_ids_stored "$T/ids.200" "event ids answered 200"

# WorkOS retries what was not acknowledged: re-send everything, four senders.
send_slices resend 4 1500 1500 3
resent=$(cat "$T"/resend-*.log | grep -c ' status=200 ')
log "re-sent the whole stream: $resent deliveries answered 200"

assert_events_exact "$EVENTS_SERVED" webhook
assert_mirror_matches "$EXPECTED"

w='workos_syncd_webhook_responses_total'
check_metric "$w{status=\"200\"}" $((n200 + resent))
check_metric "$w{status=\"503\"}" "$n503"
check_metric workos_syncd_db_connected 1
rc_total=$(metric workos_syncd_db_reconnects_total)
[ "${rc_total%%.*}" -ge 1 ] 2>/dev/null || CHECK_FAILURES+=("workos_syncd_db_reconnects_total is '$rc_total', want >= 1")
check_failures_end
daemon_stop
