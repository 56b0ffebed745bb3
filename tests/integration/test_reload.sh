#!/usr/bin/env bash
# SIGHUP re-reads the config while webhooks keep arriving (webhook-only
# daemon): the log level changes at once; a secret rotation (s1 → s1,s2 →
# s2) loses no delivery of a sender that switches from s1 to s2 in between,
# after which s1 is refused; a file that fails to load is logged
# (event=reload_failed) and the running config stays; a changed database URL
# and listen address are logged as needing a restart
# (event=reload_needs_restart) and the old ones stay in use; max_body and
# tolerance take effect at once. Every delivery the sender saw answered 2xx is
# stored, and neither secrets nor database URLs reach the log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

S1=whsec_reload_one_93e1f0
S2=whsec_reload_two_4ab7c6
pg_start
# The environment overrides the file: keep DATABASE_URL (exported by
# pg_start) out of the daemon's environment so that the file's url counts.
export -n DATABASE_URL
gen_stream 8000 9090
conf() { # extra daemon_config arguments
    daemon_config workos.api_key= workos.base_url= webhook.listen=127.0.0.1:0 "$@"
}
conf log.level=info "webhook.secret=$S1"
daemon_start
wh_wait_port
wait_for 15 "/readyz 200" wh_ready

# reload: SIGHUP, then wait for the daemon's answer (reloaded or reload_failed).
reload() {
    local from
    from=$(($(line_count "$DAEMON_LOG") + 1))
    kill -HUP "$DAEMON_PID"
    wait_log 10 "$DAEMON_LOG" ' event=(reloaded|reload_failed) ' "$from"
    RELOAD_FROM=$from
}

# The sender: unique events in stream order, 20 per `send` run, signed with
# the secret named in $T/sender.secret (one or two) at the start of each run;
# its answers go to sender-<name>.log, and each run's exit status to sender.runs.
echo one >"$T/sender.secret"
sender() {
    local i=0 total name s rc
    total=$(wc -l <"$EVENTS_SERVED")
    while [ ! -e "$T/sender.stop" ] && [ "$i" -lt "$total" ]; do
        name=$(cat "$T/sender.secret")
        if [ "$name" = one ]; then s=$S1; else s=$S2; fi
        echo "start first=$i secret=$name" >>"$T/sender.runs"
        rc=0
        "$EMU" send --url "$WH_URL" --secret "$s" --events "$EVENTS_SERVED" --first "$i" \
            --count 20 --log "$T/sender-$name.log" 2>>"$T/sender.stderr" &
        wait $! || rc=$?
        echo "done first=$i rc=$rc" >>"$T/sender.runs"
        i=$((i + 20))
        sleep 0.05
    done
}
spawn sender sender T EMU WH_URL S1 S2 EVENTS_SERVED
sender_pid=$SPAWN_PID

answered() { [ "$(grep -c ' status=200 ' "$T/sender-$1.log" 2>/dev/null || true)" -ge "$2" ]; }
wait_for 20 "100 deliveries signed with s1 answered" answered one 100
start_line=$(grep -n '^=== harness: daemon start' "$DAEMON_LOG" | tail -n 1 | cut -d: -f1)
n_debug=$(tail -n "+$start_line" "$DAEMON_LOG" | grep -c ' level=debug ' || true)
assert_eq 0 "$n_debug" "debug lines at level info"

# 1. level = debug, and the second secret added.
conf log.level=debug "webhook.secret=$S1, $S2"
reload
grep -q ' event=reloaded ' <(tail -n "+$RELOAD_FROM" "$DAEMON_LOG") || fail "reload 1 failed"
wait_log 10 "$DAEMON_LOG" ' level=debug ' "$RELOAD_FROM"
log "reload 1: level debug, secrets s1+s2; debug lines appear"

# 2. The sender switches to s2 (as WorkOS does once the new secret is set);
# wait until its runs use s2 and are answered.
echo two >"$T/sender.secret"
wait_for 10 "the sender to use s2" grep -q 'secret=two' "$T/sender.runs"
wait_for 20 "100 deliveries signed with s2 answered" answered two 100
log "sender switched to s2"

# 3. Only s2 is left.
conf log.level=debug "webhook.secret=$S2"
reload
grep -q ' event=reloaded ' <(tail -n "+$RELOAD_FROM" "$DAEMON_LOG") || fail "reload 2 failed"
hand=0
hand_post() { # SECRET WANT WHAT
    hand=$((hand + 1))
    local f
    f=$(body_file "hand-$hand.json" "$(user_event_json "evt_RELOAD_HAND_$(printf '%04d' $hand)" "user_reload_$hand")")
    local got
    got=$(wh_post "$f" "$1")
    [ "$got" = "$2" ] || fail "$3: want HTTP $2, got $got ($(cat "$T/http_body"))"
    [ "$2" = 200 ] && echo "evt_RELOAD_HAND_$(printf '%04d' $hand)" >>"$T/ids.hand"
    log "$3 -> $got"
}
hand_post "$S1" 401 "s1-signed after s1 was removed"
hand_post "$S2" 200 "s2-signed after s1 was removed"
n=$(grep -c ' status=200 ' "$T/sender-two.log")
wait_for 20 "50 more s2 deliveries answered" answered two $((n + 50))

# 4. A file that does not load: the running config stays.
conf log.level=debug "webhook.secret=$S2" webhook.no_such_key=1
reload
grep -q ' event=reload_failed ' <(tail -n "+$RELOAD_FROM" "$DAEMON_LOG") ||
    fail "a config with an unknown key was not refused"
log "broken config: $(grep ' event=reload_failed ' "$DAEMON_LOG" | tail -n 1 | cut -c 1-200)"
sleep 0.3
daemon_alive || fail "daemon exited after a failed reload"
hand_post "$S2" 200 "s2-signed after the failed reload"
hand_post "$S1" 401 "s1-signed after the failed reload"
wait_log 10 "$DAEMON_LOG" ' level=debug ' $(($(line_count "$DAEMON_LOG") + 1))

# 5. Another database and another listen address: these need a restart;
# the old database and listener stay in use.
other_url="postgresql://postgres@127.0.0.1:1/reload_other_db"
conf log.level=debug "webhook.secret=$S2" "database.url=$other_url" webhook.listen=127.0.0.2:0
reload
needs=$(grep ' event=reload_needs_restart ' <(tail -n "+$RELOAD_FROM" "$DAEMON_LOG") || true)
[ -n "$needs" ] || fail "a changed [database] url and [webhook] listen were not logged as needing a restart"
[[ $needs == *'[database] url'* ]] || fail "reload_needs_restart does not name [database] url: $needs"
[[ $needs == *'[webhook] listen'* ]] || fail "reload_needs_restart does not name [webhook] listen: $needs"
log "database url changed: $(grep ' event=reload_needs_restart ' "$DAEMON_LOG" | tail -n 1 | cut -c 1-200)"
hand_post "$S2" 200 "s2-signed after the database url changed"
assert_eq 1 "$(events_count "id = 'evt_RELOAD_HAND_$(printf '%04d' $hand)'")" \
    "the last event, stored in the original database"
n=$(grep -c ' status=200 ' "$T/sender-two.log")
wait_for 20 "50 more s2 deliveries answered" answered two $((n + 50))
assert_eq 200 "$(http_code "$WH_BASE/readyz")" "/readyz after the url change"

touch "$T/sender.stop"
wait_gone "$sender_pid" 20 || fail "the sender did not stop"
reap "$sender_pid"
daemon_alive || fail "daemon exited"

# The sender saw only 200s (no 401 across the rotation, no 5xx), every run
# exited 0, and everything it saw acknowledged is stored.
log "sender: $(grep -c '^done' "$T/sender.runs") runs; $(cat "$T"/sender-*.log | wc -l | tr -d ' ') deliveries"
bad=$(cat "$T"/sender-*.log | grep -v -c ' status=200 ' || true)
if [ "$bad" -ne 0 ]; then
    cat "$T"/sender-*.log | grep -v ' status=200 ' | head -n 5 >&2
    fail "$bad sender deliveries were not answered 200"
fi
grep -q '^done .* rc=[^0]' "$T/sender.runs" && fail "a sender run failed: $(grep '^done .* rc=[^0]' "$T/sender.runs" | head -n 3)"
cat "$T"/sender-*.log | awk '/ status=200 / { for (i = 1; i <= NF; i++) if ($i ~ /^id=/) print substr($i, 4) }' >"$T/ids.200"
cat "$T/ids.hand" >>"$T/ids.200"
assert_ids_stored "$T/ids.200" "event ids answered 200"
assert_eq "$(sort -u "$T/ids.200" | wc -l | tr -d ' ')" "$(events_count)" "rows in the event log (= ids answered 200)"

# 6. max_body and tolerance take effect at once too.
conf log.level=debug "webhook.secret=$S2" webhook.max_body=1KiB webhook.tolerance=2s
reload
grep -q ' event=reloaded ' <(tail -n "+$RELOAD_FROM" "$DAEMON_LOG") || fail "reload 6 failed"
padded=$(body_file padded.json "$(user_event_json evt_RELOAD_PADDED_0001 user_reload_padded)$(printf '%1200s' '')")
got=$(wh_post "$padded" "$S2")
assert_eq 413 "$got" "a $(wc -c <"$padded")-byte body after max_body was reloaded to 1KiB"
old_sig=$(body_file oldsig.json "$(user_event_json evt_RELOAD_OLDSIG_0001 user_reload_oldsig)")
got=$(wh_post "$old_sig" "$S2" $(($(now_ms) - 10000)))
assert_eq 401 "$got" "a signature 10 s old after tolerance was reloaded to 2s"
log "max_body and tolerance reloaded: 413 and 401 as configured"

daemon_stop
assert_no_secret_logged "$DAEMON_LOG" "$S1" "$S2" "$DATABASE_URL" "$other_url"
log "no secret or database url in the daemon log"
