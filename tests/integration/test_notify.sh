#!/usr/bin/env bash
# sd_notify as systemd's Type=notify sees it, through a NOTIFY_SOCKET the
# test reads: no READY=1 while PostgreSQL is down (STATUS= says so, and the
# watchdog is already pinged at WATCHDOG_USEC/2), READY=1 once it is up and
# the schema is current; RELOADING=1 then READY=1 on SIGHUP; STOPPING=1 on
# SIGTERM, exit 0. WATCHDOG_PID naming the daemon enables the watchdog, naming
# another process disables it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

pg_start
gen_stream 300 3131
emu_start "$EVENTS_SERVED"
daemon_config
daemon_migrate
NOTES=$T/notify.log
notify_start "$T/notify.sock" "$NOTES"

# PostgreSQL down first.
pg_stop
export NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000
unset WATCHDOG_PID
start_ms=$(now_ms)
daemon_start
unset NOTIFY_SOCKET WATCHDOG_USEC
sleep 2
daemon_alive || fail "daemon exited while postgresql was down"
assert_eq 0 "$(notify_count "$NOTES" READY=1)" "READY=1 while postgresql is down"
# At half of WATCHDOG_USEC: about 7 pings in the first 1.5 s.
n=$(awk -v a="$start_ms" -v b=$((start_ms + 1500)) '$1 >= a && $1 <= b && $3 == "WATCHDOG=1" { n++ } END { print n + 0 }' "$NOTES")
[ "$n" -ge 3 ] || fail "$n WATCHDOG=1 in the first 1.5 s with WATCHDOG_USEC=400000 (want >= 3)"
log "$n WATCHDOG=1 in the first 1.5 s; no READY=1 after 2 s without postgresql"
grep -q ' STATUS=.*unreachable' "$NOTES" ||
    fail "no STATUS= saying the database is unreachable: $(grep STATUS= "$NOTES" | tail -n 2)"
log "status while down: $(grep ' STATUS=' "$NOTES" | tail -n 1 | cut -d' ' -f3-)"

up_ms=$(now_ms)
pg_up
ready() { [ "$(notify_count "$NOTES" READY=1)" -ge 1 ]; }
wait_for 15 "READY=1 after postgresql came back" ready
read -r ready_ms _ <<<"$(notify_first "$NOTES" READY=1)"
[ "$ready_ms" -ge "$up_ms" ] || fail "READY=1 at $ready_ms, before postgresql was started at $up_ms"
log "READY=1 $((ready_ms - up_ms)) ms after postgresql was started"
wait_caught_up 30
# The polling leader's line carries the age of its last commit and its last error.
status_connected() {
    grep ' STATUS=' "$NOTES" | tail -n 1 |
        grep -q 'STATUS=polling; database connected; last commit [0-9]*s ago; last error: none'
}
wait_for 10 "STATUS= saying the database is connected, with the commit age" status_connected
log "status when up: $(grep ' STATUS=' "$NOTES" | tail -n 1 | cut -d' ' -f3-)"

# The watchdog keeps going while up: >= 3 pings in a 1.5 s window.
w0=$(now_ms)
sleep 1.5
n=$(notify_count "$NOTES" WATCHDOG=1 "$w0")
[ "$n" -ge 3 ] || fail "$n WATCHDOG=1 in 1.5 s while running (want >= 3)"

# SIGHUP: RELOADING=1, then READY=1.
h0=$(now_ms)
kill -HUP "$DAEMON_PID"
reloaded() {
    local r
    r=$(notify_first "$NOTES" RELOADING=1 "$h0")
    [ -n "$r" ] || return 1
    awk -v after="${r#* }" '$2 > after && $3 == "READY=1" { found = 1 } END { exit !found }' "$NOTES"
}
wait_for 10 "RELOADING=1 followed by READY=1 after SIGHUP" reloaded
log "SIGHUP: RELOADING=1 then READY=1"

# SIGTERM: STOPPING=1, exit 0 (daemon_stop checks the status).
t0=$(now_ms)
daemon_stop
notify_drain "$T/notify.sock" "$NOTES"
[ "$(notify_count "$NOTES" STOPPING=1 "$t0")" -ge 1 ] || fail "no STOPPING=1 after SIGTERM"
log "SIGTERM: STOPPING=1, exit 0"

# run_with_watchdog_pid PID_EXPR: start the daemon with WATCHDOG_PID set by a
# shell that then execs the daemon (so "\$\$" is the daemon's own pid).
run_with_watchdog_pid() {
    DAEMON_STARTS=$((DAEMON_STARTS + 1))
    echo "=== harness: daemon start #$DAEMON_STARTS (WATCHDOG_PID=$1)" >>"$DAEMON_LOG"
    NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 bash -c \
        "export WATCHDOG_PID=$1; exec \"\$0\" run -c \"\$1\"" "$SYNCD" "$SYNCD_CONF" \
        >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    track_pid "$DAEMON_PID"
}

# WATCHDOG_PID = the daemon's pid: pings (the drain after the stop above
# read everything sent before it, and no daemon has run since).
s0=$(now_ms)
run_with_watchdog_pid '$$'
sleep 1.5
daemon_alive || fail "daemon exited"
n=$(notify_count "$NOTES" WATCHDOG=1 "$s0")
[ "$n" -ge 3 ] || fail "$n WATCHDOG=1 in 1.5 s with WATCHDOG_PID = the daemon's pid (want >= 3)"
daemon_stop
log "WATCHDOG_PID = daemon pid: $n pings in 1.5 s"

# WATCHDOG_PID = another process: the watchdog is not ours, no pings
# (counted from after the last daemon's last datagram).
notify_drain "$T/notify.sock" "$NOTES"
s0=$(now_ms)
run_with_watchdog_pid 1
sleep 1.5
daemon_alive || fail "daemon exited"
assert_eq 0 "$(notify_count "$NOTES" WATCHDOG=1 "$s0")" "WATCHDOG=1 with WATCHDOG_PID=1"
ready_since() { [ "$(notify_count "$NOTES" READY=1 "$s0")" -ge 1 ]; }
wait_for 5 "READY=1" ready_since
daemon_stop
log "WATCHDOG_PID = another pid: no pings, READY=1 still sent"
notify_stop
