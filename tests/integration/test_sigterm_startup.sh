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
for delay in 0.02 0.04 0.06 0.08 0.10 0.13 0.16 0.20 0.25 0.30 0.40 0.60; do
    daemon_start
    sleep "$delay"
    daemon_stop 10
done
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
