#!/usr/bin/env bash
# Full pages delivered in reverse order, twice, in the middle of a backfill:
# the daemon either refuses such a page (and asks for it again) or applies it
# whole in stream order (and continues after its last event); never a cursor
# in the middle of the page, and the mirror converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins
# The one chain: the request after a faulted one is its retry there. A
# window's page out of order instead ends the windows, and the one chain
# asks again after the last event taken, so the retry is on another chain.
FAULT_CONFIG=(workos.fetch_windows=1)
fault_scenario disorder 2
