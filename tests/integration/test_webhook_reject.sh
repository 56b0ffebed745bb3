#!/usr/bin/env bash
# The webhook receiver rejects every bad request with the documented status
# and stores nothing from it: bad, missing, wrong-secret, stale, future and
# body-altered signatures (401), invalid JSON and incomplete envelopes (400,
# validly signed), a body over max_body (413), GET on the webhook path (405),
# other paths (404). Afterwards the event log and every mirror table are
# empty; then validly signed events, by either of two configured secrets, are
# answered 200 and stored once. /metrics counts the answers by status, and no
# secret reaches the log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

S1=whsec_reject_first_7f3a9c
S2=whsec_reject_second_b41d02
pg_start
# Webhook-only: no API key, no emulator.
daemon_config workos.api_key= workos.base_url= webhook.listen=127.0.0.1:0 \
    "webhook.secret=$S1, $S2" webhook.max_body=2KiB webhook.tolerance=180s
daemon_start
wh_wait_port
wait_for 15 "/readyz 200" wh_ready
log "webhook receiver at $WH_URL"

good=$(body_file good.json "$(user_event_json evt_REJECT0000000000000000001 user_reject_1)")

expect() { # WANT WHAT STATUS
    [ "$3" = "$1" ] || fail "$2: want HTTP $1, got $3 ($(cat "$T/http_body" 2>/dev/null))"
    log "$2 -> $3"
}

now=$(now_ms)
expect 401 "bad signature (MAC of other bytes)" \
    "$(wh_post_header "$good" "t=$now, v1=$(printf '%064d' 0)")"
expect 401 "malformed signature header" "$(wh_post_header "$good" "garbage")"
expect 401 "missing WorkOS-Signature" "$(wh_post_header "$good" "")"
expect 401 "wrong secret" "$(wh_post "$good" whsec_not_configured)"
expect 401 "stale (t = now - 10 min)" "$(wh_post "$good" "$S1" $(($(now_ms) - 600000)))"
expect 401 "future (t = now + 10 min)" "$(wh_post "$good" "$S1" $(($(now_ms) + 600000)))"
# Signed, then one byte of the body changed.
sig=$(wh_signature "$good" "$S1")
altered=$(body_file altered.json "$(sed 's/Ann/Anm/' "$good")")
expect 401 "body altered after signing" "$(wh_post_header "$altered" "$sig")"
# The signature covers the raw bytes: the same JSON re-serialised does not verify.
spaced=$(body_file spaced.json "$(sed 's/,"event":/, "event":/' "$good")")
expect 401 "body re-serialised after signing" "$(wh_post_header "$spaced" "$sig")"

# Validly signed, but not an event the daemon can take.
for c in 'invalid JSON|{"object":"event","id":"evt_x",' \
    'JSON that is not an object|["evt_REJECT_array"]' \
    'empty body|' \
    'envelope without id|{"object":"event","event":"user.created","data":{"object":"user","id":"user_r2","updated_at":"2026-02-01T00:00:00.000Z","created_at":"2026-02-01T00:00:00.000Z"},"created_at":"2026-02-01T00:00:00.000Z"}' \
    'envelope without event|{"object":"event","id":"evt_REJECT_noevent","data":{"object":"user","id":"user_r3","updated_at":"2026-02-01T00:00:00.000Z","created_at":"2026-02-01T00:00:00.000Z"},"created_at":"2026-02-01T00:00:00.000Z"}' \
    'envelope without created_at|{"object":"event","id":"evt_REJECT_nocreated","event":"user.created","data":{"object":"user","id":"user_r4","updated_at":"2026-02-01T00:00:00.000Z","created_at":"2026-02-01T00:00:00.000Z"}}' \
    'envelope without data|{"object":"event","id":"evt_REJECT_nodata","event":"user.created","created_at":"2026-02-01T00:00:00.000Z"}' \
    'bytes after the JSON value|{"object":"event","id":"evt_REJECT_trailing","event":"user.created","data":{"object":"user","id":"user_r5","updated_at":"2026-02-01T00:00:00.000Z","created_at":"2026-02-01T00:00:00.000Z"},"created_at":"2026-02-01T00:00:00.000Z"} xyz' \
    "JSON nested 100 deep|{\"object\":\"event\",\"id\":\"evt_REJECT_deep\",\"event\":\"user.created\",\"created_at\":\"2026-02-01T00:00:00.000Z\",\"data\":{\"object\":\"user\",\"id\":\"user_r6\",\"updated_at\":\"2026-02-01T00:00:00.000Z\",\"metadata\":$(printf '[%.0s' $(seq 100))$(printf ']%.0s' $(seq 100))}}"; do
    what=${c%%|*}
    f=$(body_file bad400.json "${c#*|}")
    expect 400 "$what (validly signed)" "$(wh_post "$f" "$S2")"
done
n400=9

# 3 KiB: a valid event padded with whitespace (valid JSON) over max_body = 2 KiB.
big=$(body_file big.json "$(user_event_json evt_REJECT_toolarge_0000000001 user_reject_big)$(printf '%3072s' '')")
expect 413 "body of $(wc -c <"$big") bytes over max_body 2KiB (validly signed)" "$(wh_post "$big" "$S1")"

expect 405 "GET on the webhook path" "$(http_code "$WH_URL")"
expect 404 "POST to an unknown path" \
    "$(http_code "$WH_BASE/webhooks/other" -X POST -H "WorkOS-Signature: $(wh_signature "$good" "$S1")" \
        --data-binary "@$good")"
expect 404 "GET on an unknown path" "$(http_code "$WH_BASE/nope")"

daemon_alive || fail "daemon exited while rejecting requests"
assert_eq 0 "$(events_count)" "rows in the event log after only rejected requests"
assert_eq 0 "$(mirror_rows)" "rows in the mirror tables after only rejected requests"
log "nothing stored from the rejected requests"

# Now valid ones: signed by the first secret, by the second, and with no
# space after the comma in the header.
expect 200 "valid event signed by the first secret" "$(wh_post "$good" "$S1")"
assert_eq 1 "$(events_count)" "rows in the event log after one valid event"
assert_eq 1 "$(events_count "id = 'evt_REJECT0000000000000000001' and source = 'webhook'")" \
    "the valid event stored with source webhook"
assert_eq 1 "$(q -c "select count(*) from $SYNCD_SCHEMA.users where id = 'user_reject_1' and email = 'user_reject_1@hand.test'")" \
    "mirrored user"
second=$(body_file second.json "$(user_event_json evt_REJECT0000000000000000002 user_reject_2)")
expect 200 "valid event signed by the second secret" "$(wh_post "$second" "$S2")"
third=$(body_file third.json "$(user_event_json evt_REJECT0000000000000000003 user_reject_3)")
sig=$(wh_signature "$third" "$S2")
expect 200 "valid signature header without a space after the comma" "$(wh_post_header "$third" "${sig/, /,}")"
# A lone UTF-16 surrogate escape (a truncated emoji, valid JSON grammar,
# no character): stored, with U+FFFD in its place.
lone=$(body_file lone.json "$(user_event_json evt_REJECT0000000000000000004 user_reject_4 |
    sed 's/"first_name":"Ann"/"first_name":"Ann \\ud83d"/')")
grep -q 'Ann \\ud83d' "$lone" || fail "the test body lacks its lone surrogate: $(cat "$lone")"
expect 200 "a lone surrogate escape in a field" "$(wh_post "$lone" "$S1")"
assert_eq "Ann $(printf '\357\277\275')" \
    "$(q -c "select first_name from $SYNCD_SCHEMA.users where id = 'user_reject_4'")" \
    "the lone surrogate stored as U+FFFD"
# A re-delivery of a stored event is answered 200 and changes nothing.
expect 200 "re-delivery of the first event" "$(wh_post "$good" "$S2")"
assert_eq 4 "$(events_count)" "rows in the event log"
assert_eq 4 "$(mirror_rows)" "rows in the mirror tables"

# /metrics: every answer above counted under its status.
w='workos_syncd_webhook_responses_total'
check_metric "$w{status=\"200\"}" 5
check_metric "$w{status=\"400\"}" "$n400"
check_metric "$w{status=\"401\"}" 8
check_metric "$w{status=\"405\"}" 1
check_metric "$w{status=\"413\"}" 1
check_metric "$w{status=\"503\"}" 0
check_metric 'workos_syncd_events_inserted_total{source="webhook"}' 4
log "/metrics 404 counter: $(metric "$w{status=\"404\"}") (the two 404s were not webhook requests)"

daemon_stop
assert_no_secret_logged "$DAEMON_LOG" "$S1" "$S2" whsec_not_configured
log "no webhook secret in the daemon log"
check_failures_end
log "/metrics counts every webhook answer by status"
