#!/usr/bin/env bash
# The first host of a multi-host url accepts TCP connections and never
# answers (a server hung, or a stale address): libpq leaves the timeout of a
# non-blocking connect to the daemon and cannot be told to skip a host, so
# the daemon, when a host exceeds the url's connect_timeout, starts its next
# attempt with the host after it. It reaches the second host, backfills
# exactly, and when its session is ended it reconnects there at once rather
# than waiting on the hung host again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

pg_start
gen_stream 1200 4407
emu_start "$EVENTS_SERVED"
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(sys.argv[1], "w") as f:
    f.write(str(s.getsockname()[1]))
time.sleep(600)
' "$T/hung.port" &
track_pid $!
wait_for 10 "the hung listener" test -s "$T/hung.port"
HUNG_PORT=$(cat "$T/hung.port")
export DATABASE_URL="postgresql://postgres@127.0.0.1:$HUNG_PORT,127.0.0.1:$PGPORT/postgres?connect_timeout=2"
daemon_config "database.url=$DATABASE_URL"
t0=$(now_ms)
daemon_start
wait_log 20 "$DAEMON_LOG" "event=db_connected host=.?127.0.0.1.? port=.?$PGPORT"
log "connected to the second host after $(($(now_ms) - t0)) ms"
grep -q "event=db_disconnected .*connect to 127.0.0.1:$HUNG_PORT timed out" "$DAEMON_LOG" ||
    fail "no timeout on the hung host was logged"
wait_caught_up 60
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"

# The daemon's session is ended (57P01, the server stays up): the
# reconnect starts with the host that answered, not with the hung one.
from=$(($(wc -l <"$DAEMON_LOG") + 1))
t1=$(now_ms)
n=$(sql "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = 'workos-syncd'")
[ "$n" -ge 1 ] || fail "no session of the daemon to end"
wait_log 15 "$DAEMON_LOG" "event=db_ready" "$from"
took=$(($(now_ms) - t1))
log "ready again $took ms after its session was ended"
[ "$took" -lt 1800 ] || fail "the reconnect waited on the hung host ($took ms)"
awk -v from="$from" 'NR >= from' "$DAEMON_LOG" | grep "connect to 127.0.0.1:$HUNG_PORT timed out" >/dev/null &&
    fail "the reconnect tried the hung host first"
daemon_alive || fail "daemon exited"
daemon_stop
