#!/usr/bin/env bash
# A 200 whose JSON page is followed by bytes that are not JSON (`{...} xyz`),
# twice, in the middle of a backfill: the page is refused like invalid JSON
# (nothing of it applied, the same page asked for again after a backoff),
# and the mirror converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins
fault_scenario trailing 2
grep -q 'reason=.*bytes after the JSON value' "$DAEMON_LOG" ||
    fail "no poll_failed line saying why the page was refused"
