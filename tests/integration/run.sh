#!/usr/bin/env bash
# Run the integration tests: every tests/integration/test_*.sh (or those whose
# name contains $1), one process each, with a time limit per test.
#
# Prints `PASS name (Ns)` or `FAIL name` per test (a failed test's own output
# is shown), and as the last line `N passed, N failed`. Exits non-zero when
# any test failed. TEST_TIMEOUT (seconds, default 150) bounds each test;
# TEST_JOBS (default 1) runs that many tests at once, each reported as it
# ends; VERBOSE=1 shows the output of passing tests too.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
filter=${1:-}
per_test_timeout=${TEST_TIMEOUT:-150}
parallel=${TEST_JOBS:-1}
[[ $parallel =~ ^[1-9][0-9]*$ ]] || { echo "TEST_JOBS must be a positive integer" >&2; exit 2; }

workroot=$(mktemp -d "${TMPDIR:-/tmp}/syncd-it-run.XXXXXX")
chmod 711 "$workroot"

# After a test ends (or was killed), stop anything it left behind: processes
# it recorded, and its PostgreSQL. A process is only signalled when its
# command line names the test's work directory, so a reused pid is safe.
owned() {
    [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -F -- "$2/"
}
sweep() {
    local dir=$1 pid
    if [ -f "$dir/pids" ]; then
        while read -r pid; do
            [ -n "$pid" ] && owned "$pid" "$dir" && kill -KILL "$pid" 2>/dev/null
        done <"$dir/pids"
    fi
    # $dir/pg, and any further cluster a test started ($dir/NAME/data).
    local pidfile
    for pidfile in "$dir"/*/data/postmaster.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(head -n 1 "$pidfile")
        if [ -n "$pid" ] && owned "$pid" "$dir"; then
            kill -QUIT "$pid" 2>/dev/null
            sleep 0.5
            owned "$pid" "$dir" && kill -KILL "$pid" 2>/dev/null
        fi
    done
    return 0
}

# run_test FILE: runs one test in its own work directory, cleans up after
# it, leaves its exit status in $workroot/NAME.rc and reports it (one
# report at a time, so those of tests ending together do not interleave).
run_test() {
    local name dir out start rc secs
    name=$(basename "$1" .sh)
    dir=$workroot/$name
    out=$workroot/$name.out
    start=$(date +%s)
    SYNCD_IT_WORKDIR=$dir timeout --signal=TERM --kill-after=15 "$per_test_timeout" \
        bash "$1" >"$out" 2>&1 </dev/null
    rc=$?
    secs=$(($(date +%s) - start))
    sweep "$dir"
    echo "$rc" >"$workroot/$name.rc"
    {
        flock 9
        if [ "$rc" -eq 0 ]; then
            [ "${VERBOSE:-0}" = 1 ] && cat "$out"
            echo "PASS $name (${secs}s)"
        else
            cat "$out"
            if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
                echo "FAIL $name (timed out after ${per_test_timeout}s)"
            else
                echo "FAIL $name (exit $rc, ${secs}s)"
            fi
        fi
    } 9>"$workroot/report.lock"
}

# Every test runs in the background, one at a time or TEST_JOBS at once.
# `timeout` puts each in a process group of its own, which a terminal's
# Ctrl-C does not reach, so an interrupt or a TERM here ends each one's
# `timeout`, which ends the test; its run_test still cleans up and
# reports, and no further test starts.
stopping=
stop_tests() {
    local pid
    stopping=1
    for pid in $(jobs -p); do
        pkill -TERM -P "$pid" 2>/dev/null
    done
}
trap stop_tests INT TERM

names=()
for test in "$here"/test_*.sh; do
    [ -e "$test" ] || continue
    name=$(basename "$test" .sh)
    if [ -n "$filter" ] && [[ $name != *"$filter"* ]]; then
        continue
    fi
    names+=("$name")
    while [ -z "$stopping" ] && [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
        wait -n
    done
    [ -z "$stopping" ] || break
    run_test "$test" &
done
# A trap ends a wait early; wait again until every test has reported.
while [ -n "$(jobs -rp)" ]; do
    wait
done

passed=0
failed=0
failed_names=()
for name in "${names[@]}"; do
    if [ "$(cat "$workroot/$name.rc" 2>/dev/null)" = 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
done

if [ "$failed" -eq 0 ]; then
    rm -rf "$workroot"
else
    echo "failed: ${failed_names[*]} (work directories under $workroot)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
