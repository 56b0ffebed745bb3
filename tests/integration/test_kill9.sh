#!/usr/bin/env bash
# kill -9 at random moments of a 20,000-event backfill, at least ten times,
# restarting each time: the mirror and the event log still converge exactly
# (no event lost, none applied twice, the cursor never past an unapplied page).
source "$(dirname "$0")/lib.sh"
require_bins

# Pace the pages so that ten kills land inside the backfill.
paced_stream 20000 303 60
last=$(last_event_id "$EVENTS")
daemon_config
daemon_migrate

kills=0
seen=()
for round in $(seq 1 14); do
    daemon_start
    # 100..900 ms: sometimes during start-up, mostly mid-page or mid-commit.
    sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
    c=$(cursor)
    if [ "$c" = "$last" ]; then
        daemon_stop
        break
    fi
    daemon_kill9
    kills=$((kills + 1))
    seen+=("${c:-none}")
    [ "$kills" -ge 10 ] && [ "$round" -ge 12 ] && break
done
log "killed the daemon $kills times; cursors at the kills: ${seen[*]}"
[ "$kills" -ge 10 ] || fail "only $kills kills landed before the backfill finished (pacing too fast)"

# The cursor must have moved between kills, or the test only killed start-ups.
distinct=$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)
[ "$distinct" -ge 3 ] || fail "the cursor hardly moved across $kills restarts (${seen[*]})"

emu_clear_faults
daemon_start
wait_caught_up 120
assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
daemon_stop
