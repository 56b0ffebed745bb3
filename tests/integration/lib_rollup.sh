# Helpers for tests that read the analytics rollups (sourced after lib.sh).
# The rollups are kept by the daemon's rollup step (migration 011), which
# trails the log by up to a second or so: a test reads them once the
# queue of events waiting to be counted is empty.

# rollup_queue_empty [SCHEMA]: true when no event waits to be counted (a
# step that took ids but has not committed still shows them).
rollup_queue_empty() {
    [ "$(sql "select count(*) from ${1:-workos}.rollup_queue")" = 0 ]
}

# wait_rollups_current [SECONDS] [SCHEMA]: waits, 30 s by default, until
# every stored event has been counted into the rollups.
wait_rollups_current() {
    wait_for "${1:-30}" "the rollup step to empty its queue" rollup_queue_empty "${2:-workos}"
}
