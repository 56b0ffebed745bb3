#!/bin/sh
# Runs every fuzz target for $1 seconds (default 600), all in parallel, each
# on a scratch copy of its seed corpus so the repository stays clean.  On
# success the scratch directory is removed; when a target fails, its log,
# grown corpus and crash artifacts are kept and their location printed.
set -eu

seconds=${1:-600}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/workos-syncd-fuzz.XXXXXX")
targets="signature event"

pids=""
for t in $targets; do
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    cp "$here/corpus/$t/"* "$work/$t/corpus/"
    dict=""
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    "$here/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 $dict \
        -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1 &
    pids="$pids $!"
done

status=0
set -- $pids
for t in $targets; do
    if wait "$1"; then
        echo "fuzz_$t: ok, $(grep -m1 'stat::number_of_executed_units' "$work/$t/log" | sed 's/.*: *//') runs"
    else
        status=1
        echo "fuzz_$t: FAILED; log, corpus and artifacts in $work/$t/" >&2
        tail -n 60 "$work/$t/log" >&2
    fi
    shift
done

if [ "$status" -eq 0 ]; then
    rm -rf "$work"
fi
exit "$status"
