#!/bin/sh
# Usage: run.sh [SECONDS [JOBS [TARGET...]]]
#
# Runs each fuzz target (default: all of them) for SECONDS (default 600),
# JOBS at a time (default 0: all at once), each on a scratch copy of its
# seed corpus tests/fuzz/corpus/<target>/ with its dictionary when there is
# one, so the repository stays clean.  Fails when any target finds a crash,
# a leak or a timeout; that target's log, grown corpus and crash artifacts
# are then kept and their location printed.  On success the scratch
# directory is removed.
set -eu

seconds=${1:-600}
jobs=${2:-0}
[ "$#" -gt 2 ] && shift 2 || set -- signature event page config head
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/workos-syncd-fuzz.XXXXXX")

start() {
    t=$1
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    cp "$here/corpus/$t/"* "$work/$t/corpus/"
    dict=""
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    # shellcheck disable=SC2086
    "$here/fuzz_$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 $dict \
        -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1 &
    pid=$!
}

finish() {
    t=$1
    if wait "$2"; then
        echo "fuzz_$t: ok, $(grep -m1 'stat::number_of_executed_units' "$work/$t/log" | sed 's/.*: *//') runs in $seconds s"
    else
        status=1
        echo "fuzz_$t: FAILED; log, corpus and artifacts in $work/$t/" >&2
        tail -n 60 "$work/$t/log" >&2
    fi
}

status=0
[ "$jobs" -gt 0 ] || jobs=$#
while [ "$#" -gt 0 ]; do
    batch="" running=""
    n=0
    while [ "$#" -gt 0 ] && [ "$n" -lt "$jobs" ]; do
        batch="$batch $1"
        start "$1"
        running="$running $pid"
        shift
        n=$((n + 1))
    done
    rest="$*"
    # shellcheck disable=SC2086
    set -- $running
    for t in $batch; do
        finish "$t" "$1"
        shift
    done
    # shellcheck disable=SC2086
    set -- $rest
done

if [ "$status" -eq 0 ]; then
    rm -rf "$work"
fi
exit "$status"
