#!/usr/bin/env bash
# The poller and a webhook flood race over the same 3,000 events: while the
# daemon backfills them from the emulator (paced, 100 ms poll interval), four
# `workos-emulator send` processes deliver the same stream as signed webhooks,
# on overlapping slices, shuffled, 30% delivered twice. Every delivery is
# answered 2xx; afterwards the event log holds exactly one row per event id
# (some from each source, stored while the other source was writing too), the
# stored payloads are the wire payloads minus secrets, and the mirror equals
# the generator's expected state.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

SECRET=whsec_flood_5c1e0a77
# Pace the backfill so that it is still running while the webhooks arrive,
# however late the senders start on a busy machine: one chain (windows
# would fetch the 30 pages in about a second) and 5 requests a second
# after a burst of 5, so about 5 s for the backfill.
paced_stream 3000 4242 40
daemon_config webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET" workos.fetch_windows=1 \
    workos.rate_limit=300
daemon_start
wh_wait_port

wait_first_page 30
log "backfill under way (cursor $(cursor)); starting 4 webhook senders"

# Slices of 1,000 events starting every 750: every event is sent, and a
# quarter of each slice is also sent by the next sender.
send_slices send 4 750 1000 11 --duplicate 30 --timeout-ms 10000
c=$(cursor)
[ "$c" != "$(last_event_id "$EVENTS")" ] ||
    log "note: the backfill finished before the last webhook was answered"

# Every attempt was answered 2xx at once (no retry was needed).
bad=$(cat "$T"/send-*.log | awk '$0 !~ / status=200 / { n++ } END { print n + 0 }')
assert_eq 0 "$bad" "webhook deliveries not answered 200"
attempts=$(cat "$T"/send-*.log | wc -l | tr -d ' ')
log "$attempts webhook deliveries, all answered 200"

emu_clear_faults
wait_caught_up 60
daemon_alive || fail "daemon exited"

assert_events_exact "$EVENTS_SERVED" events_api,webhook
assert_mirror_matches "$EXPECTED"
assert_events_content "$EVENTS_SERVED"

# Both sources stored events, and they did so at the same time.
src=$(q -c "select source, count(*), min(received_at), max(received_at) from $SYNCD_SCHEMA.events group by source order by source")
log "by source: $(echo "$src" | tr '\n' ' ')"
n_api=$(events_count "source = 'events_api'")
n_wh=$(events_count "source = 'webhook'")
[ "$n_api" -gt 0 ] || fail "no event stored by the poller"
[ "$n_wh" -gt 0 ] || fail "no event stored from a webhook"
overlap=$(q -c "select (select min(received_at) from $SYNCD_SCHEMA.events where source = 'webhook')
                     < (select max(received_at) from $SYNCD_SCHEMA.events where source = 'events_api')
                and (select min(received_at) from $SYNCD_SCHEMA.events where source = 'events_api')
                     < (select max(received_at) from $SYNCD_SCHEMA.events where source = 'webhook')")
assert_eq t "$overlap" "poller and webhooks stored events during the same period"
# Events outside the poller's filter can only have come by webhook.
outside=$(($(wc -l <"$EVENTS_SERVED") - $(wc -l <"$EVENTS")))
got=$(jsonl_query "$EVENTS" "select count(*) from $SYNCD_SCHEMA.events e
    where e.source = 'webhook' and not exists (select 1 from jl where j->>'id' = e.id);")
assert_eq "$outside" "$got" "events outside the poller's filter, stored from webhooks"

# The counters agree with the senders.
check_metric 'workos_syncd_webhook_responses_total{status="200"}' "$attempts"
check_metric 'workos_syncd_webhook_responses_total{status="503"}' 0
check_metric 'workos_syncd_events_inserted_total{source="webhook"}' "$n_wh"
check_metric 'workos_syncd_events_inserted_total{source="events_api"}' "$n_api"
check_failures_end
daemon_stop
assert_no_secret_logged "$DAEMON_LOG" "$SECRET"
