#!/usr/bin/env bash
# The store's aside link: housekeeping (the audit subject fill) runs on a
# second connection, beside the applies. Once caught up the daemon has two
# sessions: the main one holds the poller's lock, the other fills. The aside
# session killed is reconnected on its own, the main one untouched (no
# reconnect, same lock holder), and the fill goes on for new events; the
# mirror converges exactly.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

pg_start
gen_stream 8000 4242
# Served in two parts: the backfill, then an append.
head -n 6000 "$EVENTS_SERVED" >"$T/part1.jsonl"
sed -n '6001,$p' "$EVENTS_SERVED" >"$T/part2.jsonl"
for i in 1 2; do events_in_filter "$T/part$i.jsonl" "$T/part$i.api.jsonl"; done
emu_start "$T/part1.jsonl"
daemon_config
daemon_start
wait_caught_up 120 --file "$T/part1.api.jsonl"

unfilled() { [ "$(sql "select count(*) from workos.events where object_type is null")" = 0 ]; }
wait_for 30 "every event's subject columns filled" unfilled
wait_log 10 "$DAEMON_LOG" 'event=db_aside_ready'
sessions() { sql "select count(*) from pg_stat_activity where application_name = 'workos-syncd'"; }
assert_eq 2 "$(sessions)" "daemon sessions"
holder() {
    sql "select pid from pg_locks where locktype = 'advisory' and granted
            and classid = 1465077315 and objsubid = 2"
}
main_pid=$(holder)
[ -n "$main_pid" ] || fail "nobody holds the poller's lock"
aside_pid=$(sql "select pid from pg_stat_activity
                  where application_name = 'workos-syncd' and pid <> $main_pid")
[ -n "$aside_pid" ] || fail "no second session"
log "main session $main_pid holds the lock, aside session $aside_pid"

# Kill the aside session: it comes back alone.
from=$(($(wc -l <"$DAEMON_LOG") + 1))
sql "select pg_terminate_backend($aside_pid)" >/dev/null
wait_log 15 "$DAEMON_LOG" 'event=db_aside_disconnected' "$from"
wait_log 15 "$DAEMON_LOG" 'event=db_aside_ready' "$from"
if tail -n "+$from" "$DAEMON_LOG" | grep -q 'event=db_disconnected'; then
    fail "the main connection dropped with the aside one: $(tail -n "+$from" "$DAEMON_LOG" | grep 'event=db_disconnected')"
fi
assert_eq "$main_pid" "$(holder)" "lock holder after the aside session was killed"

# New events are applied and filled after the aside reconnect.
emu_append "$T/part2.jsonl"
wait_caught_up 60 --file "$T/part2.api.jsonl"
wait_for 30 "every event's subject columns filled after the aside reconnect" unfilled
assert_eq 2 "$(sessions)" "daemon sessions after the reconnect"

daemon_stop

assert_mirror_matches "$EXPECTED"
log "housekeeping ran on its own connection and survived losing it alone"
