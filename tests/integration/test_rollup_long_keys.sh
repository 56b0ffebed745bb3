#!/usr/bin/env bash
# A value too long for an index in an event the rollups key by (here a
# failed sign-in's email of 3,000 bytes, and an IP address of as many) no
# longer stops the rollup step: the queue drains, the event is counted
# under its value cut to 128 characters and "...", the other events around
# it are counted as usual, and rebuild-rollups gives the same rollups.
# Before migration 013 the step failed on rollup_fail_account's index on
# every try and the analytics stopped there.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_rollup.sh"
require_bins

pg_start
gen_stream 2000 29
emu_start "$EVENTS_SERVED"
daemon_config
daemon_start
wait_caught_up 60
wait_rollups_current 30

long=$(head -c 2400 /dev/urandom | base64 -w0 | tr -dc A-Za-z0-9)
[ "${#long}" -gt 2900 ] || fail "the long value is only ${#long} bytes"
# Yesterday, so that a whole-day query reads the rollups, not the log.
sql "insert into workos.events (id, event, created_at, data, source) values
     ('evt_zz_long_1', 'authentication.password_failed', now() - interval '1 day',
      jsonb_build_object('email', '$long@x.test', 'ip_address', '10.9.8.7', 'type', 'password',
                         'error', jsonb_build_object('code', 'invalid_credentials')), 'webhook'),
     ('evt_zz_long_2', 'authentication.password_failed', now() - interval '1 day',
      jsonb_build_object('email', 'short@x.test', 'ip_address', '$long', 'type', 'password',
                         'error', jsonb_build_object('code', 'invalid_credentials')), 'webhook'),
     ('evt_zz_long_3', 'authentication.password_failed', now() - interval '1 day',
      jsonb_build_object('email', 'short@x.test', 'ip_address', '10.9.8.7', 'type', 'password',
                         'error', jsonb_build_object('code', 'invalid_credentials')), 'webhook')" >/dev/null
wait_rollups_current 30
daemon_alive || fail "daemon exited"
n=$(grep -c 'event=rollup_step_failed' "$DAEMON_LOG" || true)
assert_eq 0 "$n" "failed rollup steps"

cut="${long:0:128}..."
day="date_trunc('day', now() - interval '1 day')"
by_account() {
    sql "select account || ' ' || failures from workos.auth_failures_by_account($day, $day + interval '1 day', 1000)
          where account in ('${cut}@x.test', '$cut', 'short@x.test') order by failures, account"
}
by_ip() {
    sql "select ip_address || ' ' || failures from workos.auth_failures_by_ip($day, $day + interval '1 day', 1000)
          where ip_address in ('10.9.8.7', '$cut') order by failures, ip_address"
}
want_account="$cut 1
short@x.test 2"
want_ip="$cut 1
10.9.8.7 2"
# The account is cut before "@": the whole email is the key's value.
assert_eq "$want_account" "$(by_account)" "failures by account, from the rollups"
assert_eq "$want_ip" "$(by_ip)" "failures by IP address, from the rollups"
daemon_stop

syncd rebuild-rollups >>"$DAEMON_LOG" 2>&1 || fail "rebuild-rollups failed: $(tail -2 "$DAEMON_LOG")"
assert_eq "$want_account" "$(by_account)" "failures by account after rebuild-rollups"
assert_eq "$want_ip" "$(by_ip)" "failures by IP address after rebuild-rollups"
log "ok: the over-long values counted under their cut keys, by the step and the rebuild alike"
