#!/usr/bin/env bash
# One answer of the Events API that starts over from the first event, as if
# it no longer knew the cursor (a replica behind, a stale cache), is asked
# again, not taken for an expired cursor: the daemon warns
# (event=page_before_cursor), does not reconcile or forget the cursor, and
# the mirror and the log converge exactly. Two such answers in a row are
# believed: the cursor is taken for expired (the path of
# test_reconcile_cursor_expired_silent).
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 3000 6061
head -n 2000 "$EVENTS_SERVED" >"$T/first.jsonl"
tail -n +2001 "$EVENTS_SERVED" >"$T/rest.jsonl"
events_in_filter "$T/first.jsonl" "$T/first.api.jsonl"
emu_start "$T/first.jsonl"
daemon_config
daemon_start
wait_caught_up 60 --file "$T/first.api.jsonl"

# Caught up, the daemon polls after its stored cursor: one answer restarts.
FAULT_FROM=$(($(reqlog_lines) + 1))
emu_fault restart 1
wait_for 30 "the restart fault to fire" faults_fired restart 1 "$FAULT_FROM"
wait_for 10 "the warning" grep -q 'level=warn event=page_before_cursor ' "$DAEMON_LOG"
emu_append "$T/rest.jsonl"
wait_caught_up 60
grep -q 'event=cursor_expired' "$DAEMON_LOG" && fail "one restarted answer was taken for an expired cursor"
grep -q 'event=reconcile_run ' "$DAEMON_LOG" && fail "one restarted answer started a reconciliation"
assert_eq 1 "$(grep -c 'level=warn event=page_before_cursor ' "$DAEMON_LOG")" "warnings of a page before the cursor"
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"

# Two in a row: the API means it.
FAULT_FROM=$(($(reqlog_lines) + 1))
emu_fault restart 2
wait_for 30 "the two restart faults to fire" faults_fired restart 2 "$FAULT_FROM"
wait_for 10 "the cursor to be taken for expired" \
    grep -q 'event=cursor_expired reason=api_restarted_before_cursor' "$DAEMON_LOG"
assert_eq 2 "$(grep -c 'level=warn event=page_before_cursor ' "$DAEMON_LOG")" "warnings of a page before the cursor"
daemon_stop
