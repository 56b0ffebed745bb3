#!/usr/bin/env bash
# Full pages delivered in reverse order, twice, in the middle of a backfill:
# the daemon either refuses such a page (and asks for it again) or applies it
# whole in stream order (and continues after its last event); never a cursor
# in the middle of the page, and the mirror converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins
fault_scenario disorder 2
