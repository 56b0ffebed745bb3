#!/usr/bin/env bash
# The connection closed without a response, twice, in the middle of a
# backfill: the same page is asked for again and the mirror converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins
fault_scenario drop 2
