# shellcheck shell=bash
# The daemon as it was before the audit trail and the analytics rollups, for
# benchmarks that compare with it in the same run. Sourced after
# tests/integration/lib.sh (it uses $T, log and fail).
#
#   BENCH_BEFORE_COMMIT  the build to compare with (default 38acb58, the last
#                        commit before either landed; empty: no comparison)
#
# before_build: builds that commit from this repository's history (git
# archive into $T/before, its own Makefile and migrations) and sets
# BEFORE_BIN to the binary, or leaves it empty, with a note, when the tree
# has no such history (a tarball). That build accepts a [workos] retention
# of at most 2160h: BEFORE_CONFIG holds the daemon_config settings it needs.
BEFORE_COMMIT=${BENCH_BEFORE_COMMIT-38acb58}
BEFORE_BIN=
BEFORE_CONFIG=(workos.retention=2160h)

before_build() {
    local repo
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    [ -n "$BEFORE_COMMIT" ] || return 0
    if ! git -C "$repo" cat-file -e "$BEFORE_COMMIT^{commit}" 2>/dev/null; then
        log "no commit $BEFORE_COMMIT in this tree's history: no comparison with it"
        return 0
    fi
    log "building $BEFORE_COMMIT, the daemon before the audit trail and the rollups"
    mkdir -p "$T/before"
    git -C "$repo" archive "$BEFORE_COMMIT" | tar -x -C "$T/before"
    make -C "$T/before" -j2 daemon/workos-syncd >"$T/before.build.log" 2>&1 ||
        fail "could not build $BEFORE_COMMIT (see $T/before.build.log)"
    BEFORE_BIN=$T/before/daemon/workos-syncd
}
