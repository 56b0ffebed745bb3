#!/usr/bin/env bash
# Three 500 answers in a row in the middle of a backfill: the daemon backs
# off, asks for the same page again, and the mirror converges exactly.
source "$(dirname "$0")/lib.sh"
require_bins
fault_scenario 500 3
