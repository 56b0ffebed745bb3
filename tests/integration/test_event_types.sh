#!/usr/bin/env bash
# An event type the environment does not know does not stop polling.  The
# Events API answers 400 to a whole GET /events when one name of its filter
# is unknown to it (the emulator with --known-types, as WorkOS does): the
# daemon asks about each type alone, drops the one refused with one warning
# naming it (and the API's error body), shows it in /metrics, and applies
# every event of the other types.  A reload asks about it again; with every
# type refused the daemon keeps asking, with a backoff, and says so.  Every
# non-2xx answer of the Events API is logged with its error body.  `status`
# names the refused types on its last line, and `-` once a restart finds
# every type accepted again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

KNOWN=user.created,user.updated,user.deleted,organization.created,organization.updated,organization.deleted
REFUSED=widget.future_event # in the generated stream, unknown to this environment

pg_start
gen_stream 3000 909
WANT=$T/want.jsonl
jsonl_query "$EVENTS_SERVED" "\\copy (select j::text from jl where j->>'event' in ('${KNOWN//,/\',\'}') order by n) to '$WANT' $jsonl_copy_opts" >/dev/null ||
    fail "could not filter the stream"
n_refused_in_stream=$(jsonl_query "$EVENTS_SERVED" "select count(*) from jl where j->>'event' = '$REFUSED';")
[ "$n_refused_in_stream" -gt 0 ] || fail "the stream holds no $REFUSED event to leave out"
log "$(wc -l <"$WANT" | tr -d ' ') events of the known types, $n_refused_in_stream of $REFUSED"

emu_start "$EVENTS_SERVED" --known-types "$KNOWN"
# The refused name sits in the middle of the list, so the filter must be rebuilt, not cut.
daemon_config "workos.events=user.created,user.updated,user.deleted,$REFUSED,organization.created,organization.updated,organization.deleted" \
    webhook.listen=127.0.0.1:0 webhook.secret=whsec_event_types_test
daemon_start
wh_wait_port
wait_caught_up 90 --file "$WANT"
daemon_alive || fail "daemon exited"
assert_events_exact "$WANT"
assert_eq 0 "$(events_count "event = '$REFUSED'")" "$REFUSED events stored"

# One warning, naming the type, with the API's error body.
refusals=$(grep -c 'event=event_type_refused ' "$DAEMON_LOG" || true)
assert_eq 1 "$refusals" "event_type_refused lines"
line=$(first_line "$DAEMON_LOG" 'event=event_type_refused ')
[[ $line == *" type=$REFUSED "* ]] || fail "the refusal does not name $REFUSED: $line"
[[ $line == *"status=400"* && $line == *"invalid_events_request"* ]] ||
    fail "the refusal does not carry the API's status and body: $line"
line=$(first_line "$DAEMON_LOG" 'event=poll_refused ')
[[ $line == *"invalid_events_request"* ]] || fail "the refused page is not logged with its body: $line"
check_metric workos_syncd_event_types_refused 1
check_failures_end

# status_refused_is LIST: `status` ends with event_types_refused=LIST.
status_refused_is() {
    timeout 20 "$SYNCD" status -c "$SYNCD_CONF" >"$T/status.out" 2>"$T/status.err" </dev/null || true
    [ "$(tail -n 1 "$T/status.out")" = "event_types_refused=$1" ]
}
wait_for 10 "status to name $REFUSED as refused" status_refused_is "$REFUSED"
[ "$(grep -c '^event_types_refused=' "$T/status.out")" = 1 ] ||
    fail "status prints event_types_refused more than once: $(cat "$T/status.out")"
log "status while $REFUSED is refused: $(tr '\n' ' ' <"$T/status.out")"
# Every type was asked about once, alone; the page requests since name only the known ones.
checks=$(grep -c ' limit=1 ' "$EMU_LOG" || true)
assert_eq 7 "$checks" "type checks sent"
last=$(tail -n 1 "$EMU_LOG")
[[ $(reqlog_field "$last" filter) != *"$REFUSED"* ]] || fail "still asking for $REFUSED: $last"

# Every non-2xx answer is logged with the API's body.
mark=$(line_count "$DAEMON_LOG")
emu_fault 500 1
wait_log 20 "$DAEMON_LOG" 'event=poll_failed .*reason="http 500".*body=.*server_error' "$mark"
emu_fault 429 1 retry_after=1
wait_log 20 "$DAEMON_LOG" 'event=poll_failed .*reason="http 429".*body=.*rate_limit_exceeded' "$mark"

# A reload asks about the refused type again (and it is refused again).
kill -HUP "$DAEMON_PID"
wait_for 20 "a second refusal after the reload" \
    bash -c "[ \"\$(grep -c 'event=event_type_refused type=$REFUSED ' '$DAEMON_LOG')\" -ge 2 ]"
last_ok() { local l; l=$(tail -n 1 "$EMU_LOG"); [[ $l == *" status=200 "* && $l != *"$REFUSED"* ]]; }
wait_for 20 "polling to resume without $REFUSED" last_ok
check_metric workos_syncd_event_types_refused 1
wait_for 10 "status to name $REFUSED again after the reload" status_refused_is "$REFUSED"
check_failures_end
daemon_stop

# Every configured type refused: nothing to poll, the daemon says so and keeps asking.
daemon_config "workos.events=$REFUSED,vault.future_event" \
    webhook.listen=127.0.0.1:0 webhook.secret=whsec_event_types_test
mark=$(line_count "$DAEMON_LOG")
daemon_start
wh_wait_port
wait_log 20 "$DAEMON_LOG" 'event=event_types_all_refused ' "$mark"
wait_for 20 "a second round after the backoff" \
    bash -c "[ \"\$(tail -n +$mark '$DAEMON_LOG' | grep -c 'event=event_types_all_refused ')\" -ge 2 ]"
daemon_alive || fail "daemon exited with every type refused"
check_metric workos_syncd_event_types_refused 2
wait_for 10 "status to name both refused types" status_refused_is "$REFUSED,vault.future_event"
check_failures_end
daemon_stop

# The environment learns the types: after a restart nothing is refused, and
# status no longer shows the list the earlier run left.
status_refused_is "$REFUSED,vault.future_event" || fail "the refused list did not outlive the daemon"
emu_stop
emu_start "$EVENTS_SERVED"
daemon_config "workos.events=user.created,user.updated,user.deleted,$REFUSED,organization.created,organization.updated,organization.deleted" \
    webhook.listen=127.0.0.1:0 webhook.secret=whsec_event_types_test
mark=$(line_count "$DAEMON_LOG")
daemon_start
wh_wait_port
wait_for 20 "status to show no refused type" status_refused_is -
[ "$(tail -n +"$mark" "$DAEMON_LOG" | grep -c 'event=event_type_refused ')" = 0 ] ||
    fail "a type was refused by an emulator that knows every type"
daemon_alive || fail "daemon exited"
check_failures_end
daemon_stop
