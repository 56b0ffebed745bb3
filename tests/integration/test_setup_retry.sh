#!/usr/bin/env bash
# When reading the cursor fails on a live connection (a statement error, not
# a lost server), the poller retries on a timer instead of at once, and
# resumes normally once the error goes away.
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 500 11
emu_start "$EVENTS_SERVED"
daemon_config
daemon_migrate
# Every write to sync_state fails until the trigger is dropped.
sql "create function workos.refuse() returns trigger language plpgsql as
       \$\$ begin raise exception 'sync_state is read-only for this test'; end \$\$;
     create trigger refuse before insert or update on workos.sync_state
       for each row execute function workos.refuse()"
daemon_start
wait_for 15 "a failed cursor load" grep -q 'event=cursor_load_failed' "$DAEMON_LOG"
sleep 3
fails=$(grep -c 'event=cursor_load_failed' "$DAEMON_LOG")
log "$fails failed cursor loads in about 3 s"
[ "$fails" -le 6 ] || fail "$fails cursor loads in about 3 s: the retry does not wait"
[ "$(reqlog_lines)" -eq 0 ] || fail "the poller fetched events without a cursor"
daemon_alive || fail "daemon exited"

sql "drop trigger refuse on workos.sync_state"
wait_caught_up 30
assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"
daemon_stop
