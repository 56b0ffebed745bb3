#!/usr/bin/env bash
# Two daemons on one database and one Events API: exactly one holds the
# poller lock and polls (event=poller_leader), the other stands by
# (event=poller_standby; /metrics poller_leader 0, /readyz says standby).
# `status` names the lock holder's backend, which belongs to the leader's
# process. kill -9 of the leader in the middle of a 20,000-event backfill: the
# standby logs poller_leader within 5 s and resumes from the stored cursor;
# `status` then names its backend. The two never poll at the same time: no
# request reaches the emulator between the kill and the takeover, the
# standby fetched no page before its poller_leader line, and the requests
# before and after the kill match each daemon's own page count. The run
# converges exactly. Both poll on one chain (fetch_windows = 1), so that every
# request is a page the leader logged; windows do not touch the lock.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

SECRET=whsec_ha_0c7d2e91
# Pace the backfill so that the kill lands in its middle.
paced_stream 20000 7117 15
last=$(last_event_id "$EVENTS")

for x in a b; do
    SYNCD_CONF=$T/syncd-$x.conf
    daemon_config webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET" workos.fetch_windows=1
done
declare -A PID CONF LOGF PORT
# start_instance X: daemon X with its own config and log.
start_instance() {
    SYNCD_CONF=$T/syncd-$1.conf DAEMON_LOG=$T/daemon-$1.log
    daemon_start
    PID[$1]=$DAEMON_PID CONF[$1]=$SYNCD_CONF LOGF[$1]=$DAEMON_LOG
}
SYNCD_CONF=$T/syncd-a.conf DAEMON_LOG=$T/daemon-a.log
daemon_migrate
start_instance a
start_instance b
for x in a b; do
    wh_wait_port "${LOGF[$x]}"
    PORT[$x]=$WH_PORT
    wait_log 15 "${LOGF[$x]}" ' event=poller_(leader|standby) '
done
sleep 0.3
n_leader=$(cat "${LOGF[a]}" "${LOGF[b]}" | grep -c ' event=poller_leader ' || true)
n_standby=$(cat "${LOGF[a]}" "${LOGF[b]}" | grep -c ' event=poller_standby ' || true)
assert_eq 1 "$n_leader" "poller_leader lines over both logs"
assert_eq 1 "$n_standby" "poller_standby lines over both logs"
if grep -q ' event=poller_leader ' "${LOGF[a]}"; then L=a S=b; else L=b S=a; fi
log "leader: daemon $L (pid ${PID[$L]}), standby: daemon $S (pid ${PID[$S]})"

# /metrics and /readyz say who is who.
WH_BASE="http://127.0.0.1:${PORT[$L]}"
check_metric workos_syncd_poller_leader 1
WH_BASE="http://127.0.0.1:${PORT[$S]}"
check_metric workos_syncd_poller_leader 0
assert_eq 200 "$(http_code "$WH_BASE/readyz")" "standby /readyz"
grep -q standby "$T/http_body" || fail "standby /readyz does not say standby: $(cat "$T/http_body")"
check_failures_end

# status_holder: the backend pid `status` names as the poller.
status_holder() {
    local out
    out=$("$SYNCD" status -c "${CONF[a]}" 2>&1 || true)
    sed -n 's/^poller=pid:\([0-9]*\)@.*/\1/p' <<<"$out"
}
# backend_owner BACKEND_PID: the pid of the local process at the client end
# of that backend's connection.
backend_owner() {
    local cport
    cport=$(q -c "select client_port from pg_stat_activity where pid = $1")
    [ -n "$cport" ] || return 0
    ss -tnpH state established "( sport = :$cport )" 2>/dev/null |
        sed -n 's/.*pid=\([0-9]*\),.*/\1/p' | head -n 1
}
wait_first_page 30
h1=$(status_holder)
[ -n "$h1" ] || fail "status shows no poller before the kill: $("$SYNCD" status -c "${CONF[a]}" 2>&1 | grep poller)"
assert_eq "${PID[$L]}" "$(backend_owner "$h1")" "process owning the lock holder's connection (before the kill)"
log "status before the kill: poller=pid:$h1 (a connection of daemon $L)"

sleep 1
c=$(cursor)
[ "$c" != "$last" ] || fail "the backfill finished before the kill; the test proved nothing"
kill_ms=$(now_ms)
kill -KILL "${PID[$L]}"
wait_gone "${PID[$L]}" 5 || fail "daemon $L survived SIGKILL"
reap "${PID[$L]}"
killed_ms=$(now_ms)
echo "=== harness: daemon killed with SIGKILL" >>"${LOGF[$L]}"
log "killed leader $L at cursor $c"

wait_log 5 "${LOGF[$S]}" ' event=poller_leader '
take_line=$(grep -m 1 ' event=poller_leader ' "${LOGF[$S]}")
take_ms=$(log_ms "$take_line")
log "daemon $S took over $((take_ms - kill_ms)) ms after the kill"
[ $((take_ms - kill_ms)) -lt 5000 ] || fail "takeover took $((take_ms - kill_ms)) ms (want < 5000)"
start_line=$(grep -m 1 ' event=poller_start ' <(sed -n "/ event=poller_leader /,\$p" "${LOGF[$S]}") || true)
resume_cursor=$(reqlog_field "$start_line" cursor)
[ -n "$resume_cursor" ] && [ "$resume_cursor" != - ] || fail "no poller_start cursor after the takeover: $start_line"

emu_clear_faults
DAEMON_PID=${PID[$S]} SYNCD_CONF=${CONF[$S]} DAEMON_LOG=${LOGF[$S]}
wait_caught_up 60
h2=$(status_holder)
[ -n "$h2" ] || fail "status shows no poller after the takeover"
[ "$h2" != "$h1" ] || fail "status shows the same poller backend ($h2) after the takeover"
assert_eq "${PID[$S]}" "$(backend_owner "$h2")" "process owning the lock holder's connection (after the takeover)"
log "status after the takeover: poller=pid:$h2 (a connection of daemon $S)"

assert_mirror_matches "$EXPECTED"
assert_events_exact "$EVENTS"

# Never two pollers at once.
# 1. The standby fetched no page before it became leader.
lead_no=$(grep -n -m 1 ' event=poller_leader ' "${LOGF[$S]}" | cut -d: -f1)
early=$(head -n "$lead_no" "${LOGF[$S]}" | grep -c ' event=page ' || true)
assert_eq 0 "$early" "pages fetched by daemon $S before its poller_leader line"
# 2. The killed leader wrote nothing after the kill.
last_l=$(grep '^ts=' "${LOGF[$L]}" | tail -n 1)
[ "$(log_ms "$last_l")" -le "$killed_ms" ] || fail "daemon $L logged after it was killed: $last_l"
# 3. No request reached the emulator between the kill and the takeover.
gap=$(awk -v a="$killed_ms" -v b="$take_ms" '{ ts = substr($1, 7) + 0 } ts > a && ts < b { n++ } END { print n + 0 }' "$EMU_LOG")
assert_eq 0 "$gap" "emulator requests between the kill and the takeover"
# 4. Requests before the kill are the leader's pages (plus at most the ones in
# flight when it died); requests after the takeover are the new leader's.
# The new leader keeps polling: stop it first so both counts are final.
daemon_stop
before=$(awk -v a="$killed_ms" '{ ts = substr($1, 7) + 0 } ts <= a { n++ } END { print n + 0 }' "$EMU_LOG")
after=$(awk -v b="$take_ms" '{ ts = substr($1, 7) + 0 } ts >= b { n++ } END { print n + 0 }' "$EMU_LOG")
pages_l=$(grep -c ' event=page ' "${LOGF[$L]}" || true)
pages_s=$(grep -c ' event=page ' "${LOGF[$S]}" || true)
log "requests: $before before the kill ($pages_l pages logged by $L), $after after the takeover ($pages_s pages logged by $S)"
[ "$before" -ge "$pages_l" ] && [ "$before" -le $((pages_l + 2)) ] ||
    fail "$before requests before the kill, but daemon $L logged $pages_l pages"
# 5. The new leader's first request continues from the stored cursor.
first=$(awk -v b="$take_ms" '{ ts = substr($1, 7) + 0 } ts >= b { print; exit }' "$EMU_LOG")
assert_eq "$resume_cursor" "$(reqlog_field "$first" after)" "after= of the new leader's first request"
log "new leader resumed with after=$resume_cursor"

[ "$after" -ge "$pages_s" ] && [ "$after" -le $((pages_s + 2)) ] ||
    fail "$after requests after the takeover, but daemon $S logged $pages_s pages"
log "no overlap: one poller at a time"
