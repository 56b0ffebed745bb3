#!/usr/bin/env bash
# Events stamped decades back (a clock reset at the source: 1970 or 2000)
# listed among the events of today, some alone, some two in a row, some
# last on a page and some first: no position in a stream is that far back,
# so they take no part in the order checks (EVENT_PAST_MS). The one chain
# takes every page (no order failure, no retry), the cursor moves past
# them, each is said in the log (event=created_at_out_of_range, a line a
# page), and the mirror and the event log, those events with the created_at
# they came with, match exactly. Without the rule the first of them is out
# of order for good and the stream stops there.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

pg_start
gen_stream 3000 9091

# Restamp 24 events of the served stream in place (not deletes nor
# revocations, whose created_at a tombstone keeps), past the first page
# (which the daemon asks for from start_from, so the API itself leaves out
# what is older): at listing positions 299, 300 and 399, the last (so the
# cursor ends on one), and 21 more, some in pairs. Objects and their updated_at are untouched, so the expected
# mirror stays what it was. The unit tests put such events first and last
# on a page exactly.
python3 - "$EVENTS_SERVED" <<'PY' || fail "could not restamp the stream"
import json, random, sys

path = sys.argv[1]
rng = random.Random(9091)
with open(path, encoding="utf-8") as f:
    events = [json.loads(line) for line in f]
ok = [i for i, e in enumerate(events)
      if not e["event"].endswith((".deleted", ".revoked")) and 200 <= i < len(events) - 50]
picked = {299, 300, 399, len(events) - 1}
while len(picked) < 24:
    i = rng.choice(ok)
    picked.add(i)
    if rng.random() < 0.3 and i + 1 in ok:
        picked.add(i + 1)
stamps = ["1970-01-01T00:00:00.000Z", "2000-01-01T00:00:00.000Z", "1999-12-31T23:59:59.999Z"]
for k, i in enumerate(sorted(picked)):
    if events[i]["event"].endswith((".deleted", ".revoked")):
        continue
    events[i]["created_at"] = stamps[k % len(stamps)]
with open(path, "w", encoding="utf-8") as f:
    for e in events:
        f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
PY
events_in_filter "$EVENTS_SERVED" "$EVENTS"
far=$(jsonl_query "$EVENTS" "select count(*) from jl where (j->>'created_at')::timestamptz < '2001-01-01'")
log "the daemon's stream holds $far events stamped before 2001"
[ "$far" -ge 15 ] || fail "only $far restamped events in the daemon's stream"

emu_start "$EVENTS_SERVED"
daemon_config workos.fetch_windows=1 webhook.listen=127.0.0.1:0 webhook.secret=whsec_far_back
daemon_start
wh_wait_port
wait_caught_up 120
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"
if grep -q 'event=poll_failed' "$DAEMON_LOG"; then
    grep 'event=poll_failed' "$DAEMON_LOG" | head -n 3 >&2
    fail "a page was refused over an event stamped decades back"
fi
stored=$(sql "select count(*) from workos.events where created_at < '2001-01-01'")
assert_eq "$far" "$stored" "events stamped before 2001 in the log"
# Each is said, a line a page with how many.
said=$(sed -n 's/.*event=created_at_out_of_range n=\([0-9]*\) .*/\1/p' "$DAEMON_LOG" |
    awk '{ s += $1 } END { print s + 0 }')
assert_eq "$far" "$said" "events said to be out of range"
# The cursor ends on one of them, but the lag gauge is the age of the
# newest event it covers, not decades.
newest=$(jsonl_query "$EVENTS" "select extract(epoch from max((j->>'created_at')::timestamptz))::bigint
                                  from jl where (j->>'created_at')::timestamptz >= '2001-01-01'")
lag=$(metric workos_syncd_cursor_lag_seconds)
[ -n "$lag" ] || fail "no cursor lag in /metrics"
awk -v lag="$lag" -v want="$(($(date +%s) - newest))" 'BEGIN { d = lag - want; exit !(d > -60 && d < 60) }' ||
    fail "cursor lag ${lag}s, want about $(($(date +%s) - newest))s (the newest event covered)"
daemon_stop
emu_stop
