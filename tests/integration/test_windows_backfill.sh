#!/usr/bin/env bash
# A backlog of 20,000 events a day old, from an API 80 ms away, is fetched
# as time windows at once (range_start/range_end, each paged on its own
# chain) and applied in stream order: the mirror and the event log match
# exactly, no event is stored twice although window boundaries overlap, the
# requests of several windows interleave, no request names both after and
# range_start, the last windows are split once all are open, the windows
# hand over to one chain at the end, and all
# windows together keep to the one rate limit: the emulator admits at most
# 101 requests in any second, which [workos] rate_limit = 3000 (a burst of
# 50 plus 50 a second) never exceeds.
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 20000 9191
emu_start "$EVENTS_SERVED" --latency 80 --limit-overall 101/1s
daemon_config workos.fetch_windows=8 workos.fetch_ahead=2000 workos.rate_limit=3000
daemon_start
wait_caught_up 120
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"

grep -q 'event=windows_begin' "$DAEMON_LOG" || fail "the backlog was not fetched in windows"
grep -q 'event=windows_done' "$DAEMON_LOG" || fail "the windows did not hand over to one chain"
# Once every window up to now is open, the last ones are split short, on
# the chains no new window takes.
grep -q 'event=window_split .* over_pages=2$' "$DAEMON_LOG" ||
    fail "no window was split once every window was open"

# Each window is one chain: its requests share a range_end. Several windows,
# and requests of different windows interleaving, show chains in flight at once.
awk '
    function field(k,   i) {
        for (i = 1; i <= NF; i++)
            if (index($i, k "=") == 1) return substr($i, length(k) + 2)
        return ""
    }
    { e = field("range_end"); if (e == "-" || e == "") next
      if (!(e in seen)) { seen[e] = 1; windows++ }
      if (last != "" && e != last && (e in open)) interleaved++
      open[e] = 1; last = e
      if (field("range_start") != "-" && field("after") != "-") both++ }
    END { printf "windows=%d interleaved=%d both=%d\n", windows, interleaved, both }
' "$EMU_LOG" >"$T/windows.txt"
read -r stats <"$T/windows.txt"
log "request log: $stats"
windows=$(sed 's/.*windows=\([0-9]*\).*/\1/' <<<"$stats")
interleaved=$(sed 's/.*interleaved=\([0-9]*\).*/\1/' <<<"$stats")
both=$(sed 's/.*both=\([0-9]*\).*/\1/' <<<"$stats")
[ "$windows" -ge 3 ] || fail "only $windows windows were fetched"
[ "$interleaved" -ge 3 ] || fail "the windows' requests never interleaved: one chain at a time"
assert_eq 0 "$both" "requests with both after and range_start"

# Windows overlap by a millisecond: what two of them returned is stored once.
assert_eq 0 "$(sql "select count(*) from (select id from $SYNCD_SCHEMA.events group by id having count(*) > 1) d")" "duplicate events"
limited=$(grep -c ' fault=rate_limit ' "$EMU_LOG" || true)
assert_eq 0 "$limited" "requests refused by the emulator's rate limit"
daemon_stop
