#!/usr/bin/env bash
# Run the integration tests: every tests/integration/test_*.sh (or those whose
# name contains $1), one process each, with a time limit per test.
#
# Prints `PASS name (Ns)` or `FAIL name` per test (a failed test's own output
# is shown), and as the last line `N passed, N failed`. Exits non-zero when
# any test failed. TEST_TIMEOUT (seconds, default 150) bounds each test;
# VERBOSE=1 shows the output of passing tests too.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
filter=${1:-}
per_test_timeout=${TEST_TIMEOUT:-150}

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

passed=0
failed=0
failed_names=()
for test in "$here"/test_*.sh; do
    [ -e "$test" ] || continue
    name=$(basename "$test" .sh)
    if [ -n "$filter" ] && [[ $name != *"$filter"* ]]; then
        continue
    fi
    dir=$workroot/$name
    out=$workroot/$name.out
    start=$(date +%s)
    SYNCD_IT_WORKDIR=$dir timeout --signal=TERM --kill-after=15 "$per_test_timeout" \
        bash "$test" >"$out" 2>&1 </dev/null
    rc=$?
    secs=$(($(date +%s) - start))
    sweep "$dir"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        [ "${VERBOSE:-0}" = 1 ] && cat "$out"
        echo "PASS $name (${secs}s)"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        cat "$out"
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "FAIL $name (timed out after ${per_test_timeout}s)"
        else
            echo "FAIL $name (exit $rc, ${secs}s)"
        fi
    fi
done

if [ "$failed" -eq 0 ]; then
    rm -rf "$workroot"
else
    echo "failed: ${failed_names[*]} (work directories under $workroot)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
