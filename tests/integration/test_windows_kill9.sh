#!/usr/bin/env bash
# kill -9 at random moments while a backlog of 80,000 events is fetched in
# windows from an API 150 ms away, at least ten times, restarting each time:
# whatever the windows had fetched ahead is lost with the process, the
# stored cursor only ever passed committed events, and the mirror and the
# event log converge exactly.
source "$(dirname "$0")/lib.sh"
require_bins

kill9_rounds 80000 909 150
grep -q 'event=windows_begin' "$DAEMON_LOG" || fail "the backlog was never fetched in windows"
