#!/usr/bin/env bash
# kill -9 at random moments of a 20,000-event backfill on one chain (one
# request in flight), at least ten times, restarting each time: the mirror
# and the event log still converge exactly (no event lost, none applied
# twice, the cursor never past an unapplied page). test_windows_kill9 does
# the same to a backlog fetched in windows.
source "$(dirname "$0")/lib.sh"
require_bins

# Pace the pages so that ten kills land inside the backfill.
kill9_rounds 20000 303 60 workos.fetch_windows=1
