#!/usr/bin/env bash
# The analytics rollups against the log they summarise.  The daemon backfills
# 20,000 generated events while the same stream's events, and 3,000 made-up
# authentication, session, radar and user events over 40 days (addresses
# failing against many accounts, organizations named on successes,
# impersonations), arrive as signed webhooks, shuffled, 30 % twice.  Then
# every view and function of the Analytics section equals the same question
# asked of workos.events (or the mirror) directly, with slow reference
# queries: in UTC, in a second time zone added afterwards (before and after
# more events arrive), after the whole stream is delivered again from the
# Events API (every event a duplicate: nothing may count twice), and after
# rebuild_rollups() (which must give back the very same rollup rows).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
source "$(dirname "$0")/lib_rollup.sh"
require_bins

SECRET=whsec_analytics_3f9a12c4
S=workos
pg_start
gen_stream 20000 1212
emu_start "$EVENTS_SERVED"
emu_fault delay 1000000 delay_ms=10
daemon_config webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET"
daemon_start
wh_wait_port

# extra_events FILE PREFIX COUNT: COUNT made-up events between 2025-11-20
# and 2025-12-30 (UTC), ids PREFIX_n, as one JSON envelope a line.
extra_events() {
    q -c "\\copy (
select json_build_object('object', 'event', 'id', '$2_' || g, 'event', ev,
                         'created_at', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                         'data', d)::text
  from (select g, ts, u, ev, d from generate_series(0, $3 - 1) g,
        lateral (select timestamptz '2025-11-20 00:00:00+00' + g * (interval '40 days' / $3)
                        + (g * 7919 % 5400) * interval '1 second' as ts,
                        g * 31 % 40 as u, g % 20 as k,
                        (array['password', 'oauth', 'sso', 'magic_auth', 'passkey', 'mfa',
                               'email_verification'])[1 + g % 7] as method) x,
        lateral (select
          case when k < 12 then 'authentication.' || method || '_succeeded'
               when k < 16 then 'authentication.' || method || '_failed'
               when k < 18 then 'session.created'
               when k = 18 then 'authentication.radar_risk_detected'
               else 'user.created' end as ev,
          case when k < 12 then json_build_object('type', method, 'status', 'succeeded',
                   'user_id', 'user_x' || u, 'email', 'x' || u || '@extra.test',
                   'ip_address', '198.51.100.' || u % 10, 'user_agent', 'curl/7.88.1',
                   'organization_id', case when g % 4 = 0 then 'org_x' || u % 3 end)
               when k < 16 then json_build_object('type', method, 'status', 'failed',
                   'user_id', case when g % 3 = 0 then null else 'user_x' || u end,
                   'email', case when g % 3 = 0 then 'nobody' || g % 7 || '@unknown.test'
                                 when g % 13 = 0 then null else 'x' || u || '@extra.test' end,
                   'ip_address', case when g % 5 = 0 then null when g % 17 = 0 then '192.0.2.' || g % 250
                                      when g % 2 = 1 then '203.0.113.' || g % 4
                                      else '198.51.100.' || u % 10 end,
                   'user_agent', 'curl/7.88.1',
                   'error', case when g % 11 = 0 then null
                                 else json_build_object('code', method || '_error', 'message', 'no') end)
               when k < 18 then json_build_object('object', 'session', 'id', 'session_$2_' || g,
                   'user_id', 'user_x' || u,
                   'organization_id', case when g % 5 = 0 then null else 'org_x' || u % 3 end,
                   'auth_method', case when g % 4 = 0 then 'impersonation' else method end,
                   'impersonator', case when g % 4 = 0
                                        then json_build_object('email', 'support@extra.test', 'reason', 'ticket ' || g) end,
                   'status', 'active', 'ip_address', null, 'user_agent', null,
                   'expires_at', to_char((ts + interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                   'ended_at', null,
                   'created_at', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                   'updated_at', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))
               when k = 18 then json_build_object('user_id', 'user_x' || u, 'email', 'x' || u || '@extra.test',
                   'ip_address', '203.0.113.9', 'action', 'signin', 'control', 'impossible_travel')
               else json_build_object('object', 'user', 'id', 'user_x' || u, 'email', 'x' || u || '@extra.test',
                   'first_name', 'X', 'last_name', 'Y', 'email_verified', true,
                   'profile_picture_url', null, 'last_sign_in_at', null, 'external_id', null,
                   'metadata', '{}'::json,
                   'created_at', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                   'updated_at', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) end as d) y
 order by g) s
) to '$1' $jsonl_copy_opts" || fail "could not write $1"
}
extra_events "$T/extra.jsonl" evt_extra 3000

# send NAME FILE [ARGS...]: deliver FILE as signed webhooks in the background.
send_pids=()
send() {
    local name=$1 file=$2
    shift 2
    "$EMU" send --url "$WH_URL" --secret "$SECRET" --events "$file" --order shuffle --duplicate 30 \
        --timeout-ms 10000 --log "$T/send-$name.log" "$@" 2>"$T/send-$name.stderr" &
    send_pids+=($!)
    track_pid "${send_pids[-1]}"
}
wait_sends() {
    local p rc
    for p in "${send_pids[@]}"; do
        rc=0
        wait "$p" || rc=$?
        [ "$rc" -eq 0 ] || fail "a webhook sender exited $rc: $(cat "$T"/send-*.stderr)"
    done
    send_pids=()
    bad=$(cat "$T"/send-*.log | awk '$0 !~ / status=200 / { n++ } END { print n + 0 }')
    assert_eq 0 "$bad" "webhook deliveries not answered 200"
}
has_progress() { local c; c=$(cursor); [ -n "$c" ]; }
wait_for 30 "the first page to be applied" has_progress
send stream "$EVENTS" --first 4000 --count 6000 --seed 5
send extra "$T/extra.jsonl" --seed 6
wait_sends
emu_clear_faults
wait_caught_up 120
log "$(cat "$T"/send-*.log | wc -l | tr -d ' ') webhook deliveries answered 200"

# --- the questions, asked twice ------------------------------------------------

SUCC="event LIKE 'authentication.%\\_succeeded'"
FAIL="event LIKE 'authentication.%\\_failed'"
METHOD="coalesce(data ->> 'type', substring(event FROM '^authentication\\.(.*)_(?:succeeded|failed)\$'), '')"
ACCOUNT="coalesce(data ->> 'email', data ->> 'user_id')"
ALL_FROM=1900-01-01
ALL_TO=2100-01-01

# same NAME GOT WANT: the rows of the query GOT equal those of WANT (as
# multisets), and WANT has rows (an empty answer proves nothing).
CHECKS=0
same() {
    local name=$1 out
    out=$(q 2>&1 <<EOF
select 'rows ' || (select count(*) from ($3) w);
select 'extra   ' || g::text from (($2) except all ($3)) g;
select 'missing ' || w::text from (($3) except all ($2)) w;
EOF
) || fail "$name: query failed: $out"
    local rows
    rows=$(printf '%s\n' "$out" | sed -n 's/^rows //p')
    [ "${rows:-0}" -gt 0 ] || fail "$name: the reference answer is empty; the check proves nothing"
    if printf '%s\n' "$out" | grep -q -E '^(extra|missing) '; then
        printf '%s\n' "$out" | grep -E '^(extra|missing) ' | head -n 20 >&2
        fail "$name differs from the same question asked of the log"
    fi
    CHECKS=$((CHECKS + 1))
}

# check_all TZ: every question, in the time zone TZ, against the log.
check_all() {
    local tz=$1 lt="created_at AT TIME ZONE '$1'"
    CHECKS=0
    same "active_users_daily" "select day, users from $S.active_users_daily" \
        "select (created_at AT TIME ZONE 'UTC')::date, count(DISTINCT data ->> 'user_id') from $S.events
          where $SUCC and data ->> 'user_id' is not null group by 1"
    same "auth_outcomes_daily" "select day, method, attempts, succeeded, failed from $S.auth_outcomes_daily" \
        "select (created_at AT TIME ZONE 'UTC')::date, $METHOD, count(*), count(*) filter (where $SUCC),
                count(*) filter (where $FAIL) from $S.events where $SUCC or $FAIL group by 1, 2"
    local unit trunc
    for unit in day week month; do
        trunc="date_trunc('$unit', $lt)::date"
        same "active_users $unit $tz" "select * from $S.active_users('$ALL_FROM', '$ALL_TO', '$unit', '$tz')" \
            "select $trunc, count(DISTINCT data ->> 'user_id') from $S.events
              where $SUCC and data ->> 'user_id' is not null group by 1"
        same "mfa_adoption $unit $tz" "select * from $S.mfa_adoption('$ALL_FROM', '$ALL_TO', '$unit', '$tz')" \
            "select $trunc, count(DISTINCT data ->> 'user_id'),
                    count(DISTINCT data ->> 'user_id') filter (where $METHOD = 'mfa'),
                    round((count(DISTINCT data ->> 'user_id') filter (where $METHOD = 'mfa'))::numeric
                          / count(DISTINCT data ->> 'user_id'), 4)
               from $S.events where $SUCC and data ->> 'user_id' is not null group by 1"
        same "active_users_by_organization $unit $tz" \
            "select * from $S.active_users_by_organization('$ALL_FROM', '$ALL_TO', '$unit', '$tz')" \
            "select $trunc, data ->> 'organization_id', count(DISTINCT data ->> 'user_id') from $S.events
              where data ->> 'user_id' is not null and data ->> 'organization_id' is not null
                and ($SUCC or (event = 'session.created'
                               and jsonb_typeof(data -> 'impersonator') is distinct from 'object'))
              group by 1, 2"
    done
    same "auth_outcomes $tz" \
        "select day, method, attempts, succeeded, failed, success_rate from $S.auth_outcomes('$ALL_FROM', '$ALL_TO', '$tz')" \
        "select ($lt)::date, $METHOD, count(*), count(*) filter (where $SUCC), count(*) filter (where $FAIL),
                round((count(*) filter (where $SUCC))::numeric / count(*), 4)
           from $S.events where $SUCC or $FAIL group by 1, 2"
    same "auth_failures_by_error $tz" "select * from $S.auth_failures_by_error('$ALL_FROM', '$ALL_TO', '$tz')" \
        "select ($lt)::date, $METHOD, nullif(coalesce(data -> 'error' ->> 'code', ''), ''), count(*)
           from $S.events where $FAIL group by 1, 2, 3"
    same "auth_radar_daily $tz" "select * from $S.auth_radar_daily('$ALL_FROM', '$ALL_TO', '$tz')" \
        "select ($lt)::date, count(*) from $S.events where event = 'authentication.radar_risk_detected' group by 1"
    same "sessions_daily $tz" "select * from $S.sessions_daily('$ALL_FROM', '$ALL_TO', '$tz')" \
        "select ($lt)::date, nullif(coalesce(data ->> 'auth_method', ''), ''), count(*),
                count(*) filter (where jsonb_typeof(data -> 'impersonator') = 'object')
           from $S.events where event = 'session.created' group by 1, 2"
    same "new_users_daily $tz" "select * from $S.new_users_daily('$ALL_FROM', '$ALL_TO', '$tz')" \
        "select ($lt)::date, count(*) filter (where event = 'user.created'),
                count(*) filter (where event = 'user.deleted')
           from $S.events where event in ('user.created', 'user.deleted') group by 1"
    same "user_activation $tz" "select * from $S.user_activation('$ALL_FROM', '$ALL_TO', '$tz')" \
        "select (u.created_at AT TIME ZONE '$tz')::date, count(*), count(f.first_at),
                percentile_cont(0.5) within group (order by f.first_at - u.created_at)
           from $S.users u
           left join (select data ->> 'user_id' as user_id, min(created_at) as first_at from $S.events
                       where $SUCC group by 1) f on f.user_id = u.id and f.first_at >= u.created_at
          where u.created_at is not null group by 1"
    # Failures by address and account over instants: ragged ends, whole
    # days and a whole month (December 2025) in one range; six hours; one
    # day; most of a month (taken as the month less the days outside).
    # Each as a whole ranking, as the top 5 in order (the early stop,
    # ties broken by key), and with no limit.
    local since until
    for range in "2025-11-24 13:17:00+00|2026-01-01 07:00:00+00" "2025-12-03 10:00:00+00|2025-12-03 16:00:00+00" \
        "2025-12-01 00:00:00+00|2025-12-02 00:00:00+00" "2025-12-02 05:00:00+00|2025-12-30 07:00:00+00"; do
        since=${range%|*}
        until=${range#*|}
        same "auth_failures_by_ip $range" "select * from $S.auth_failures_by_ip('$since', '$until', 100000)" \
            "select nullif(coalesce(data ->> 'ip_address', ''), ''), count(*) from $S.events
              where $FAIL and created_at >= '$since' and created_at < '$until' group by 1"
        same "auth_failures_by_account $range" \
            "select * from $S.auth_failures_by_account('$since', '$until', 100000)" \
            "select $ACCOUNT, count(*) from $S.events
              where $FAIL and $ACCOUNT is not null and created_at >= '$since' and created_at < '$until' group by 1"
        same "auth_failures_by_ip top 5 $range" \
            "select row_number() over (), * from $S.auth_failures_by_ip('$since', '$until', 5)" \
            "select row_number() over (order by count(*) desc, nullif(coalesce(data ->> 'ip_address', ''), '')),
                    nullif(coalesce(data ->> 'ip_address', ''), ''), count(*) from $S.events
              where $FAIL and created_at >= '$since' and created_at < '$until' group by 2 order by 1 limit 5"
        same "auth_failures_by_account top 5 $range" \
            "select row_number() over (), * from $S.auth_failures_by_account('$since', '$until', 5)" \
            "select row_number() over (order by count(*) desc, $ACCOUNT), $ACCOUNT, count(*) from $S.events
              where $FAIL and $ACCOUNT is not null and created_at >= '$since' and created_at < '$until'
              group by 2 order by 1 limit 5"
        same "auth_failures_by_account all $range" \
            "select * from $S.auth_failures_by_account('$since', '$until', NULL)" \
            "select $ACCOUNT, count(*) from $S.events
              where $FAIL and $ACCOUNT is not null and created_at >= '$since' and created_at < '$until' group by 1"
        same "auth_credential_stuffing_recent $range" \
            "select * from $S.auth_credential_stuffing_recent('$since', 1, '$until')" \
            "select data ->> 'ip_address', count(DISTINCT $ACCOUNT), count(*) from $S.events
              where $FAIL and created_at >= '$since' and created_at < '$until'
              group by 1 having count(DISTINCT $ACCOUNT) >= 1"
    done
    # 1 reads every day row, 2 and more the partial index of 018.
    local k
    for k in 1 2; do
        same "auth_credential_stuffing $k" "select * from $S.auth_credential_stuffing('$ALL_FROM', '$ALL_TO', $k)" \
            "select (created_at AT TIME ZONE 'UTC')::date, nullif(coalesce(data ->> 'ip_address', ''), ''),
                    count(DISTINCT $ACCOUNT), count(*)
               from $S.events where $FAIL group by 1, 2 having count(DISTINCT $ACCOUNT) >= $k"
    done
    same "auth_radar_events" "select created_at, user_id, ip_address from $S.auth_radar_events('$ALL_FROM', '$ALL_TO')" \
        "select created_at, data ->> 'user_id', data ->> 'ip_address' from $S.events
          where event = 'authentication.radar_risk_detected'"
    same "impersonations" "select session_id, impersonator_email, reason, user_id, user_email, duration from $S.impersonations" \
        "select s.id, s.impersonator ->> 'email', s.impersonator ->> 'reason', s.user_id, u.email,
                coalesce(s.ended_at, least(s.expires_at, now())) - s.created_at
           from $S.sessions s left join $S.users u on u.id = s.user_id
          where s.auth_method = 'impersonation' and s.impersonator is not null"
    # All organizations (NULL), and the one with the most memberships.
    local org
    org=$(sql "select organization_id from $S.organization_memberships
                group by 1 order by count(*) desc, 1 limit 1")
    [ "$(sql "select max(memberships) from $S.seats_daily('2025-12-25', '2026-01-10', '$org', '$tz')")" -gt 0 ] ||
        fail "seats_daily: organization $org has no memberships in the range; the check proves little"
    for org in NULL "'$org'"; do
        same "seats_daily $org $tz" \
            "select day, organization_id, memberships from $S.seats_daily('2025-12-25', '2026-01-10', $org, '$tz')" \
            "select g::date, $org::text, (select count(*) from $S.organization_memberships m
                                           where ($org::text is null or m.organization_id = $org)
                                             and m.created_at < (g + interval '1 day') AT TIME ZONE '$tz'
                                             and (m.deleted_at is null
                                                  or m.deleted_at >= (g + interval '1 day') AT TIME ZONE '$tz'))
               from generate_series(timestamp '2025-12-25', timestamp '2026-01-10', interval '1 day') g"
    done
    same "seats" "select organization_id, role_slug, seats from $S.seats where seats > 0" \
        "select organization_id, role_slug, count(*) from $S.organization_memberships
          where deleted_at is null and status = 'active' group by 1, 2"
    same "invitations_daily $tz" \
        "select day, sent, accepted, revoked from $S.invitations_daily('$ALL_FROM', '$ALL_TO', '$tz')
          where sent + accepted + revoked > 0" \
        "select d, count(*) filter (where w = 's'), count(*) filter (where w = 'a'), count(*) filter (where w = 'r')
           from (select (created_at AT TIME ZONE '$tz')::date as d, 's' as w from $S.invitations where deleted_at is null
                 union all
                 select (accepted_at AT TIME ZONE '$tz')::date, 'a' from $S.invitations
                  where deleted_at is null and accepted_at is not null
                 union all
                 select (revoked_at AT TIME ZONE '$tz')::date, 'r' from $S.invitations
                  where deleted_at is null and revoked_at is not null) x group by 1"
    log "$CHECKS questions in $tz equal the same questions asked of the log"
}

snapshot() {
    local t
    for t in $(sql "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                     where n.nspname = '$S' and c.relkind = 'r' and c.relname like 'rollup\\_%'
                       and c.relname <> 'rollup_time_zones' order by 1"); do
        sql "drop table if exists snap_$t; create table snap_$t as select * from $S.$t"
    done
}
# same_as_snapshot WHAT: every rollup table holds exactly its snapshot's rows.
same_as_snapshot() {
    local t n
    for t in $(sql "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                     where n.nspname = '$S' and c.relkind = 'r' and c.relname like 'rollup\\_%'
                       and c.relname <> 'rollup_time_zones' order by 1"); do
        n=$(sql "select count(*) from ((table $S.$t except all table snap_$t)
                                       union all (table snap_$t except all table $S.$t)) d")
        assert_eq 0 "$n" "rows of $t that differ $1"
    done
    log "every rollup table is as it was $1"
}

n_extra=$(awk '/ status=200 /' "$T/send-extra.log" | wc -l | tr -d ' ')
[ "$n_extra" -gt 3000 ] || fail "no made-up event was delivered twice ($n_extra deliveries)"
assert_eq 3000 "$(events_count "id like 'evt\\_extra\\_%'")" "made-up events stored"
wait_rollups_current
check_all UTC

# An application's prepared call runs a generic plan, in which min_accounts
# is a parameter: it can still read the partial index, and answers the
# same as the call with the number written out.  Which index a plan picks
# over a table this small is the costs' choice, so whether the partial one
# is usable at all is asked with it the table's only index and sequential
# scans off, in a transaction rolled back.
generic=$(q <<EOF
set plan_cache_mode = force_generic_plan;
prepare stuffing(date, date, integer) as select * from $S.auth_credential_stuffing(\$1, \$2, \$3);
begin;
do \$\$
declare
    r record;
begin
    for r in select conname from pg_constraint
              where conrelid = '$S.rollup_fail_ip'::regclass and contype = 'p' loop
        execute format('alter table $S.rollup_fail_ip drop constraint %I', r.conname);
    end loop;
    for r in select indexrelid::regclass::text as i from pg_index
              where indrelid = '$S.rollup_fail_ip'::regclass
                and indexrelid <> '$S.rollup_fail_ip_accounts_idx'::regclass loop
        execute 'drop index ' || r.i;
    end loop;
end
\$\$;
set local enable_seqscan = off;
explain (costs off) execute stuffing('$ALL_FROM', '$ALL_TO', 2);
rollback;
create table public.generic_1 as execute stuffing('$ALL_FROM', '$ALL_TO', 1);
create table public.generic_2 as execute stuffing('$ALL_FROM', '$ALL_TO', 2);
EOF
) || fail "the prepared auth_credential_stuffing failed: $generic"
printf '%s\n' "$generic" | grep -q 'rollup_fail_ip_accounts_idx' || {
    printf '%s\n' "$generic" >&2
    fail "a generic plan of auth_credential_stuffing does not use rollup_fail_ip_accounts_idx"
}
for k in 1 2; do
    same "auth_credential_stuffing $k, generic plan" "table public.generic_$k" \
        "select * from $S.auth_credential_stuffing('$ALL_FROM', '$ALL_TO', $k)"
done
n1=$(sql "select count(*) from public.generic_1")
n2=$(sql "select count(*) from public.generic_2")
sql "drop table public.generic_1, public.generic_2"
# (An address failing against one account a day, 192.0.2.x above, is in
# the first answer only.)
[ "$n1" -gt "$n2" ] && [ "$n2" -gt 0 ] || fail "generic plans answered $n1 and $n2 rows"
log "a generic plan reads the partial index ($n2 of $n1 rows) and answers the same"

# A second zone, filled from the log, then kept as events arrive.
sql "select $S.add_rollup_time_zone('America/New_York')" >/dev/null
check_all America/New_York
extra_events "$T/extra2.jsonl" evt_more 800
send more "$T/extra2.jsonl" --seed 7
wait_sends
wait_rollups_current
check_all America/New_York
check_all UTC

# The whole stream again from the Events API: every event is a duplicate.
snapshot
n_log=$(events_count)
daemon_stop
sql "update $S.sync_state set cursor = null where stream = 'events_api'"
daemon_start
wait_caught_up 120
assert_eq "$n_log" "$(events_count)" "events in the log after the replay"
wait_rollups_current
same_as_snapshot "after the stream was delivered again"

# A rebuild from the log gives back the same rows.
# `workos-syncd rebuild-rollups` runs it; damage first, so it must repair.
sql "delete from $S.rollup_auth_daily where true" >/dev/null
out=$("$SYNCD" rebuild-rollups -c "$SYNCD_CONF") || fail "rebuild-rollups failed: $out"
rolled=$(printf '%s' "$out" | sed -n 's/.* events=\([0-9]*\)$/\1/p')
[ "${rolled:-0}" -gt 10000 ] || fail "rebuild-rollups rolled up only ${rolled:-no} events: $out"
same_as_snapshot "after rebuild_rollups() ($rolled events)"
check_all UTC
check_all America/New_York

# A zone that is not kept is refused with a hint, not answered wrongly.
out=$(q -c "select * from $S.active_users('2025-01-01', '2026-01-01', 'day', 'Asia/Kolkata')" 2>&1) &&
    fail "a question in a zone without rollups was answered: $out"
grep -q "add_rollup_time_zone" <<<"$out" || fail "no hint in: $out"
daemon_stop
