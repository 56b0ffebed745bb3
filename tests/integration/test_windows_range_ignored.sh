#!/usr/bin/env bash
# A backlog of 20,000 events fetched in windows (fetch_windows = 8) from an
# API 80 ms away that does not honour the range filters of GET /events,
# once for each way of not honouring them (the emulator's --ignore-range),
# beside a run against one that does:
#
#   end   range_end is ignored, so a window's chain would run on into the
#         next windows' events. Each window keeps only its own events and
#         is done at its first page past its end; the windows go on, and
#         cost no more requests than against an API that honours the range.
#   both  range_start is ignored too, so a window's first page starts at
#         the beginning of the stream. The windows end at once, the one
#         chain fetches the backlog, and windows never begin again.
#
# Every run converges exactly (mirror and event log), the daemon says once
# what it found, no page is refused by the order check, and the requests
# stay bounded: windows overrunning into each other would fetch a good part
# of the backlog twice.
source "$(dirname "$0")/lib.sh"
require_bins

LATENCY=80
WINDOWS=8
pg_start
gen_stream 20000 5150
last=$(last_event_id "$EVENTS")
pages=$((($(wc -l <"$EVENTS" | tr -d ' ') + 99) / 100))
log "the backlog needs $pages pages"

# The created_at of every event served, to tell which pages ran past their window.
jsonl_query "$EVENTS_SERVED" "\\copy (select j->>'id', j->>'created_at' from jl) to '$T/created.txt'" ||
    fail "could not list the events' times"

# count_requests: the /events requests that fetched the backlog (those
# after its last event are the polls once caught up), and how many of them
# a window made (naming range_end).
count_requests() {
    awk -v last="$last" '
        / range_end=[^-]/ { w++ }
        index($0, " after=" last " ") == 0 { n++ }
        END { printf "%d %d\n", n, w }' "$EMU_LOG"
}

# window_overruns: per window chain (its range_end), the pages that ended
# past the range it asked for, and the requests it made after such a page.
window_overruns() {
    awk '
        function field(k,   i) {
            for (i = 1; i <= NF; i++)
                if (index($i, k "=") == 1) return substr($i, length(k) + 2)
            return ""
        }
        FNR == NR { created[$1] = $2; next }
        { e = field("range_end"); if (e == "-" || e == "") next
          if (e in past) after_past++
          l = field("last")
          if (field("status") == "200" && (l in created) && created[l] > e) { past[e] = 1; pages++ } }
        END { printf "%d %d\n", pages, after_past }' "$T/created.txt" "$EMU_LOG"
}

# warnings EVENT: lines the daemon logged at warn level for EVENT.
warnings() {
    grep -c "level=warn event=$1 " "$DAEMON_LOG" || true
}

honoured_requests=
for mode in honoured end both; do
    EMU_LOG=$T/emu-requests-$mode.log
    DAEMON_LOG=$T/daemon-$mode.log
    DAEMON_MIGRATED=
    flag=()
    [ "$mode" = honoured ] || flag=(--ignore-range "$mode")
    emu_start "$EVENTS_SERVED" --latency "$LATENCY" "${flag[@]}"
    daemon_config workos.fetch_windows=$WINDOWS "database.schema=range_$mode"
    t0=$(now_ms)
    daemon_start
    wait_caught_up 60
    secs=$((($(now_ms) - t0) / 1000))
    # The windows hand over on the poller's next ask, after the commit that
    # brought the cursor to the last event: wait for it, not race it.
    [ "$mode" = both ] ||
        wait_for 10 "the windows to hand over to one chain" grep -q 'event=windows_done ' "$DAEMON_LOG"
    daemon_stop
    emu_stop
    assert_mirror_matches "$EXPECTED"
    assert_events_exact "$EVENTS"
    read -r requests window_requests < <(count_requests)
    read -r past_pages after_past < <(window_overruns)
    log "mode $mode: $requests requests ($window_requests of windows, $past_pages pages past their window's end) for $pages pages, ${secs}s"

    assert_eq 1 "$(grep -c 'event=windows_begin ' "$DAEMON_LOG" || true)" "mode $mode: windows begun"
    assert_eq 0 "$(grep -c 'event=windows_off ' "$DAEMON_LOG" || true)" "mode $mode: pages refused by the order check"
    grep -q 'api_restarted_before_cursor' "$DAEMON_LOG" && fail "mode $mode: a window's page was taken for an expired cursor"
    assert_eq 0 "$after_past" "mode $mode: requests of a window after its page past its end"
    case $mode in
    honoured)
        assert_eq 0 "$past_pages" "pages past their window's end from an API that honours the range"
        grep -q 'event=windows_done ' "$DAEMON_LOG" || fail "the windows did not hand over to one chain"
        honoured_requests=$requests
        ;;
    end)
        # The emulator did ignore range_end: many windows ran past their end.
        [ "$past_pages" -ge 3 ] || fail "only $past_pages pages ran past their window's end"
        assert_eq 1 "$(warnings window_past_end)" "warnings that the API ignores range_end"
        assert_eq 0 "$(grep -c 'event=windows_end ' "$DAEMON_LOG" || true)" "mode end: windows ended early"
        grep -q 'event=windows_done ' "$DAEMON_LOG" || fail "mode end: the windows did not fetch the backlog"
        # Each window costs the request its short last page would have: no
        # more requests than against an API that honours the range, give or
        # take how the windows happened to be split.
        [ "$requests" -le $((honoured_requests + 2 * WINDOWS)) ] ||
            fail "mode end: $requests requests, against $honoured_requests when range_end is honoured"
        ;;
    both)
        assert_eq 1 "$(grep -c 'level=warn event=windows_end reason="the API ignores range_start" ' "$DAEMON_LOG" || true)" \
            "warnings that the API ignores range_start"
        # One round of window requests at most, then the one chain.
        [ "$window_requests" -le $((2 * WINDOWS)) ] ||
            fail "mode both: $window_requests window requests after range_start was found ignored"
        [ "$requests" -le $((pages + 2 * WINDOWS + 4)) ] ||
            fail "mode both: $requests requests for $pages pages"
        ;;
    esac
done
