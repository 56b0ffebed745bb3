#!/usr/bin/env bash
# created_at a little out of step with the listing order: in a stream of
# 20,000 events, about one in thirty is listed up to 900 ms before the
# newest event ahead of it (as events stamped by different servers may
# be).  The one chain takes every page (no order failure, no retry), says
# so once, and the mirror and the event log match exactly; then, from an
# API 80 ms away, the windows, which cut the stream by created_at, see such
# a step in a window and end for the run, the one chain reading the last
# window handed over again and fetching the rest, again exactly.  A step back of the skew or more is still refused
# (test_fault_disorder and the unit tests).
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 20000 4711

# Skew the served stream in place: after the first 12,000 events (so that
# windows are handed over before any step shows), an envelope's created_at
# moves to 1 to 900 ms before the newest one listed ahead of it (never two
# in a row, so each step is measured from an unskewed event).  The objects
# and their updated_at are untouched, so the expected mirror stays what it
# was.
python3 - "$EVENTS_SERVED" <<'EOF' || fail "could not skew the stream"
import datetime, json, random, sys

path = sys.argv[1]
rng = random.Random(4711)
newest = None
skewed = 0
out = []
prev_skewed = False


def ms(s):
    t = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def iso(m):
    t = datetime.datetime.fromtimestamp(m / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (m % 1000)


with open(path, encoding="utf-8") as f:
    for line in f:
        e = json.loads(line)
        t = ms(e["created_at"])
        if len(out) >= 12000 and not prev_skewed and rng.random() < 1 / 30:
            e["created_at"] = iso(newest - rng.randint(1, 900))
            skewed += 1
            prev_skewed = True
        else:
            prev_skewed = False
        newest = t if newest is None or t > newest else newest
        out.append(json.dumps(e, ensure_ascii=False, separators=(",", ":")))
with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(out) + "\n")
print(skewed)
EOF
events_in_filter "$EVENTS_SERVED" "$EVENTS"
steps=$(jsonl_query "$EVENTS" "
select count(*) from (select (j->>'created_at')::timestamptz < max((j->>'created_at')::timestamptz)
    over (order by n rows between unbounded preceding and 1 preceding) as back from jl) x where back")
log "the daemon's stream holds $steps events listed before an older one"
[ "$steps" -ge 100 ] || fail "only $steps steps back in the stream: the skew did not take"

# The one chain.
emu_start "$EVENTS_SERVED"
daemon_config workos.fetch_windows=1
daemon_start
wait_caught_up 120
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"
if grep -q 'event=poll_failed' "$DAEMON_LOG"; then
    grep 'event=poll_failed' "$DAEMON_LOG" | head -n 3 >&2
    fail "a page was refused although every step back is within the skew"
fi
# Said once, and windows are off for the run from then on.
assert_eq 1 "$(grep -c 'event=created_at_steps_back' "$DAEMON_LOG")" "warnings of a step back"
daemon_stop
emu_stop

# Windows, into a schema of their own.  Four windows of about 2,000
# events each are the first round: none reaches the skewed part, so
# windows are handed over before a step shows, however the answers of
# one round are ordered on a busy machine.
emu_start "$EVENTS_SERVED" --latency 80
daemon_config database.schema=skewed workos.fetch_windows=4 workos.fetch_ahead=2000 \
    workos.rate_limit=3000
from=$(($(wc -l <"$DAEMON_LOG") + 1))
daemon_start
wait_caught_up 180
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"
tail -n "+$from" "$DAEMON_LOG" >"$T/windows.log"
grep -q 'event=windows_begin' "$T/windows.log" || fail "the backlog was not fetched in windows"
grep -q 'event=windows_end reason="created_at goes back within a window"' "$T/windows.log" ||
    fail "the windows did not end at a step back in created_at"
assert_eq 1 "$(grep -c 'event=windows_begin' "$T/windows.log")" "windows begun (none after ending for the run)"
# The chain reads the last window handed over again, so that an event
# listed before its last one but created after its end is not passed.
grep -q 'event=windows_rewind' "$T/windows.log" || fail "the chain did not read the last window again"
daemon_stop
