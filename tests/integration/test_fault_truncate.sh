#!/usr/bin/env bash
# A 200 whose JSON body is cut in half, twice, in the middle of a backfill:
# nothing of it is applied, the same page is asked for again, and the mirror
# converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins
fault_scenario truncate 2
