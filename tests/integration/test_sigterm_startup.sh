#!/usr/bin/env bash
# SIGTERM at any moment of start-up -- while connecting, migrating, taking
# the poller lock or reading the cursor -- exits 0 cleanly (under the
# sanitizer build this also catches callbacks into freed state).
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 300 5
emu_start "$EVENTS_SERVED"
daemon_config webhook.listen=127.0.0.1:0 webhook.secret=whsec_sigterm_startup

# main_began PID: PID runs the daemon's binary (the forked shell has
# exec'd it) and SIGTERM is blocked (main() has begun) or caught (the event
# loop's handler is in place); status 2 when PID has exited. Builtins only:
# the poll costs no forks.
main_began() {
    local key val name=${SYNCD##*/} execd=0
    [ -r "/proc/$1/status" ] || return 2
    while read -r key val; do
        case $key in
        Name:) [ "$val" = "${name:0:15}" ] && execd=1 ;;
        State:) [[ $val == [ZX]* ]] && return 2 ;;
        SigBlk:) [ "$execd" = 1 ] && (((16#$val >> 14) & 1)) && return 0 ;;
        SigCgt:) [ "$execd" = 1 ] && (((16#$val >> 14) & 1)) && return 0 || return 1 ;;
        esac
    done <"/proc/$1/status" 2>/dev/null
    return 1
}

# The delays count from the moment main() blocks the signals the event loop
# will handle. Counted from the fork, the shortest would race the loader:
# under the sanitizer build on a loaded machine SIGTERM could land before
# main() and kill the process the default way.
for delay in 0 0.001 0.002 0.003 0.005 0.008 0.012 0.02 0.03 0.05 0.10 0.20; do
    daemon_start
    deadline=$((${EPOCHREALTIME/./} + 10000000))
    while :; do
        main_began "$DAEMON_PID" && break
        [ $? -ne 2 ] || fail "the daemon exited before main() blocked SIGTERM"
        [ "${EPOCHREALTIME/./}" -lt "$deadline" ] || fail "main() did not block SIGTERM within 10 s"
    done
    [ "$delay" = 0 ] || sleep "$delay"
    daemon_stop 10
done
grep -q 'event=poller_leader' "$DAEMON_LOG" ||
    fail "no early shutdown came after the lock was taken: delays too short to test it"
log "12 early shutdowns, each exit 0"

# A slow cursor query widens one window: SIGTERM while it is in flight.
sql "create function workos.slow() returns trigger language plpgsql as
       \$\$ begin perform pg_sleep(1.5); return new; end \$\$;
     create trigger slow before insert or update on workos.sync_state
       for each row execute function workos.slow()"
: >"$DAEMON_LOG"
daemon_start
wait_for 10 "the poller taking the lock" grep -q 'event=poller_leader' "$DAEMON_LOG"
sleep 0.3
grep -q 'event=poller_start' "$DAEMON_LOG" && fail "the cursor query was not slow enough to test"
daemon_stop 10
sql "drop trigger slow on workos.sync_state"
daemon_start
wait_caught_up 30
assert_mirror_matches "$EXPECTED"
daemon_stop
