#!/usr/bin/env bash
# Analytics benchmark (`make bench`; not part of CI).
#
# On one PostgreSQL with fsync and synchronous_commit on:
#   (a) the daemon's backfill of BENCH_EVENTS generated events (default
#       200,000) from the emulator, with the rollups on and off,
#       alternately, BENCH_ROUNDS times each (default 3): the cost the
#       rollups add to the backfill, end to end, in time (from the median
#       round and from the fastest round of each) and in PostgreSQL's CPU.
#       "On" is timed until the log is complete and the rollup step has
#       counted every event (the queue is empty); "off" disables the
#       queueing trigger events_rollup, so the step finds nothing to do.
#       The step's lag behind the log at the end is printed too;
#   (b) the apply's share inside PostgreSQL alone: BENCH_TRIGGER_EVENTS
#       (default 1,000,000) generated authentication events inserted in
#       statements of 1,000 rows (a daemon batch), the queueing trigger on
#       and off (the step's counting is not in it);
#   (c) BENCH_AUTH_EVENTS (default 10,000,000) authentication.* events over
#       400 days generated in SQL into the log (trigger off, timed), plus a
#       session.created for every tenth and mirror rows (users, memberships,
#       invitations, impersonated sessions), then rebuild_rollups() (timed);
#   (d) every view and function of the Analytics section over the last 30
#       and the last 365 days of that log, each the best of three runs,
#       against the 200 ms target; and the top 20 addresses and accounts
#       over the year checked against a ranking of the log itself.
# Results are key=value lines on stdout; progress goes to stderr.
# BENCH_BACKFILL_ONLY=1 stops after (a).
#
# The generated log: 200,000 users (activity skewed towards some), 80 %
# successes; methods password 40 %, oauth 25 %, sso 15 %, magic_auth 10 %,
# passkey 5 %, mfa 5 %; failures from the user's
# own address (20,000 addresses) or, one in ten, from one of 200 addresses
# trying many accounts; three in ten failures name an unknown e-mail (one
# of 20,000); one radar_risk_detected in a thousand events.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
require_bins

N=${BENCH_EVENTS:-200000}
ROUNDS=${BENCH_ROUNDS:-3}
TN=${BENCH_TRIGGER_EVENTS:-1000000}
AN=${BENCH_AUTH_EVENTS:-10000000}
DAYS=400
TARGET_MS=200

pg_start --fsync
sql "show fsync" | grep -qx on || fail "fsync is not on"

# --- (a) the daemon's backfill, rollups on and off ---------------------------

log "generating $N events"
emu_gen "$N" 4242 "$T/events.jsonl" "$T/expected.jsonl"
events_in_filter "$T/events.jsonl" "$T/events.api.jsonl"
n_events=$(count_events "$T/events.api.jsonl")
last=$(last_event_id "$T/events.api.jsonl")

# backfill SCHEMA on|off: migrates SCHEMA, switches its rollup trigger, runs
# the daemon from an empty log until the cursor is the last event and the
# rollup queue is empty; prints the ms it took, the clock ticks PostgreSQL
# used meanwhile (steadier than the time when other work shares the
# machine) and the ms the rollups trailed the log at the end.
backfill() {
    local schema=$1 mode=$2 t0 t1 c pg0
    emu_start "$T/events.jsonl"
    daemon_config database.schema="$schema" workos.rate_limit=1000000 workos.poll_interval=100ms \
        log.level=info
    DAEMON_MIGRATED=
    daemon_migrate
    if [ "$mode" = off ]; then
        sql "alter table $schema.events disable trigger events_rollup"
    fi
    sql "checkpoint"
    pg0=$(cpu_ticks $(pg_pids))
    t0=$(now_ms)
    daemon_start
    wait_backfill "$last" "backfill"
    t1=$(now_ms)
    local deadline=$((t1 + 1800 * 1000))
    while [ "$(sql "select count(*) from $schema.rollup_queue")" != 0 ]; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "rollup queue not empty in 30 min"
        sleep 0.02
    done
    echo "$(($(now_ms) - t0)) $(($(cpu_ticks $(pg_pids)) - pg0)) $(($(now_ms) - t1))"
    daemon_stop
    emu_stop
    assert_eq "$n_events" "$(sql "select count(*) from $schema.events")" "events in $schema"
    if [ "$mode" = on ]; then
        # The rollups the daemon kept equal a rebuild from the log.
        sql "create table $schema.kept as select * from $schema.rollup_active_counts"
        sql "select $schema.rebuild_rollups()" >/dev/null
        assert_eq 0 "$(sql "select count(*) from ((table $schema.kept except table $schema.rollup_active_counts)
                             union all (table $schema.rollup_active_counts except table $schema.kept)) d")" \
            "rollups kept by the daemon that differ from a rebuild"
    fi
    sql "set client_min_messages = warning; drop schema $schema cascade"
}

on_ms=()
off_ms=()
on_cpu=()
off_cpu=()
on_lag=()
# Alternate which goes first, so that neither always runs on a warmer server.
for r in $(seq 1 "$ROUNDS"); do
    for mode in $(if [ $((r % 2)) -eq 1 ]; then echo off on; else echo on off; fi); do
        read -r ms ticks lag <<<"$(backfill "bench_$mode" "$mode")"
        if [ "$mode" = on ]; then
            on_ms+=("$ms") on_cpu+=("$ticks") on_lag+=("$lag")
        else
            off_ms+=("$ms") off_cpu+=("$ticks")
        fi
        log "round $r: rollups $mode ${ms} ms, postgres cpu $ticks ticks, rollups ${lag} ms behind at the end"
    done
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }'; }
off_med=$(median "${off_ms[@]}")
on_med=$(median "${on_ms[@]}")
echo "backfill_events=$n_events"
echo "backfill_rounds=$ROUNDS"
echo "backfill_rollups_off_ms=${off_ms[*]}"
echo "backfill_rollups_on_ms=${on_ms[*]}"
echo "backfill_rollups_on_lag_at_end_ms=${on_lag[*]}"
echo "backfill_rollups_off_events_per_s=$(rate "$n_events" "$off_med")"
echo "backfill_rollups_on_events_per_s=$(rate "$n_events" "$on_med")"
awk -v on="$on_med" -v off="$off_med" 'BEGIN {
    printf "backfill_rollups_slowdown_pct=%.1f (target <= 10)\n", (on > 0 ? (1 - off / on) * 100 : 0) }'
# The same from the fastest round of each: on a machine that other jobs
# share, one slow round moves a median of three.
fastest() { printf '%s\n' "$@" | awk 'NR == 1 || $1 < m { m = $1 } END { print m }'; }
awk -v on="$(fastest "${on_ms[@]}")" -v off="$(fastest "${off_ms[@]}")" 'BEGIN {
    printf "backfill_rollups_slowdown_fastest_pct=%.1f\n", (on > 0 ? (1 - off / on) * 100 : 0) }'
off_cpu_med=$(median "${off_cpu[@]}")
on_cpu_med=$(median "${on_cpu[@]}")
hz=$(getconf CLK_TCK)
awk -v on="$on_cpu_med" -v off="$off_cpu_med" -v hz="$hz" 'BEGIN {
    printf "backfill_rollups_off_postgres_cpu_s=%.2f\n", off / hz
    printf "backfill_rollups_on_postgres_cpu_s=%.2f\n", on / hz
    printf "backfill_rollups_postgres_cpu_slowdown_pct=%.1f\n", (on > 0 ? (1 - off / on) * 100 : 0) }'
[ "${BENCH_BACKFILL_ONLY:-0}" = 1 ] && exit 0

# --- the generated log ---------------------------------------------------------

# gen_auth_sql SCHEMA FIRST LAST TOTAL: the statement inserting the
# authentication events numbered FIRST..LAST of TOTAL, spread evenly and in
# order over the DAYS days before 2026-11-30, as the log receives them.
gen_auth_sql() {
    cat <<EOF
INSERT INTO $1.events (id, event, created_at, data, source)
SELECT 'evt_' || lpad(g::text, 10, '0'),
       CASE WHEN r.radar THEN 'authentication.radar_risk_detected'
            ELSE 'authentication.' || r.method || CASE WHEN r.ok THEN '_succeeded' ELSE '_failed' END END,
       r.ts,
       CASE WHEN r.radar THEN jsonb_build_object('user_id', 'user_' || r.u, 'email', 'u' || r.u || '@bench.test',
                                                 'ip_address', r.ip, 'action', 'signup', 'control', 'bot_detection')
            WHEN r.ok THEN jsonb_build_object('type', r.method, 'status', 'succeeded', 'user_id', 'user_' || r.u,
                                              'email', 'u' || r.u || '@bench.test', 'ip_address', r.ip,
                                              'user_agent', 'Mozilla/5.0 (X11; Linux x86_64)')
            ELSE jsonb_build_object('type', r.method, 'status', 'failed',
                                    'user_id', CASE WHEN r.unknown THEN NULL ELSE 'user_' || r.u END,
                                    'email', CASE WHEN r.unknown THEN 'nobody' || r.u % 20000 || '@unknown.test'
                                                  ELSE 'u' || r.u || '@bench.test' END,
                                    'ip_address', r.ip, 'user_agent', 'curl/7.88.1',
                                    'error', jsonb_build_object('code', r.method || '_error', 'message', 'no')) END,
       'events_api'
  FROM generate_series($2::bigint, $3::bigint) g
 CROSS JOIN LATERAL (
       SELECT x.*,
              CASE WHEN NOT x.ok AND x.p3 < 0.1 THEN '198.18.' || (x.p3 * 2000)::int || '.1'
                   ELSE '10.' || (x.u % 20000 / 256) || '.' || (x.u % 256) || '.1' END AS ip
         FROM (SELECT timestamptz '2026-11-30 00:00:00+00' - ${DAYS} * interval '1 day'
                      + (g + random()) / $4 * ${DAYS} * interval '1 day' AS ts,
                      (200000 * power(random(), 2))::int AS u,
                      random() >= 0.2 AS ok,
                      random() < 0.3 AS unknown,
                      random() AS p3,
                      g % 1000 = 999 AS radar,
                      (ARRAY['password','password','password','password','password','password','password','password',
                             'oauth','oauth','oauth','oauth','oauth','sso','sso','sso','magic_auth','magic_auth',
                             'passkey','mfa'])[1 + (g * 7 % 20)::int] AS method
                 WHERE g IS NOT NULL) x) r
EOF
}

# --- (b) the trigger's cost inside PostgreSQL -------------------------------------

trigger_run() {
    local schema=$1 mode=$2 out ms
    DAEMON_MIGRATED=
    daemon_config database.schema="$schema"
    daemon_migrate
    [ "$mode" = off ] && sql "alter table $schema.events disable trigger events_rollup"
    sql "checkpoint"
    out=$(q 2>&1 <<EOF
\\timing on
DO \$\$
BEGIN
    FOR b IN 0 .. ($TN / 1000) - 1 LOOP
        EXECUTE \$q\$$(gen_auth_sql "$schema" '$1' '$2' "$TN")\$q\$ USING b * 1000, b * 1000 + 999;
    END LOOP;
END
\$\$;
EOF
) || fail "generating events in $schema failed: $out"
    ms=$(printf '%s\n' "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
    [ -n "$ms" ] || fail "could not read the time from: $out"
    sql "set client_min_messages = warning; drop schema $schema cascade"
    echo "$ms"
}
log "inserting $TN authentication events in statements of 1,000, trigger off"
t_off=$(trigger_run bench_toff off)
log "the same, trigger on"
t_on=$(trigger_run bench_ton on)
echo "sql_insert_events=$TN"
echo "sql_insert_trigger_off_events_per_s=$(rate "$TN" "$t_off")"
echo "sql_insert_trigger_on_events_per_s=$(rate "$TN" "$t_on")"
awk -v on="$t_on" -v off="$t_off" -v n="$TN" 'BEGIN {
    printf "sql_insert_trigger_us_per_event=%.1f\n", (on - off) * 1000 / n
    printf "sql_insert_trigger_slowdown_pct=%.1f\n", (on > 0 ? (1 - off / on) * 100 : 0) }'

# --- (c) ten million events -------------------------------------------------------

S=workos
DAEMON_MIGRATED=
daemon_config database.schema=$S
daemon_migrate
sql "alter table $S.events disable trigger events_rollup"
log "generating $AN authentication events over $DAYS days"
t0=$(now_ms)
step=1000000
for ((a = 0; a < AN; a += step)); do
    b=$((a + step - 1))
    [ "$b" -lt "$AN" ] || b=$((AN - 1))
    q -c "$(gen_auth_sql $S "$a" "$b" "$AN")" >/dev/null
    log "  $((b + 1)) events"
done
gen_ms=$(($(now_ms) - t0))
log "generating sessions and mirror rows"
q >/dev/null <<EOF
INSERT INTO $S.events (id, event, created_at, data, source)
SELECT 'evt_s' || g, 'session.created', e.ts,
       jsonb_build_object('object', 'session', 'id', 'session_' || g, 'user_id', 'user_' || e.u,
                          'organization_id', 'org_' || e.u % 5000,
                          'auth_method', CASE WHEN g % 100 = 0 THEN 'impersonation' ELSE 'password' END,
                          'impersonator', CASE WHEN g % 100 = 0 THEN jsonb_build_object('email', 'support@bench.test',
                                                                                        'reason', 'ticket') END),
       'events_api'
  FROM generate_series(1, $AN / 10) g,
       LATERAL (SELECT timestamptz '2026-11-30 00:00:00+00' - (${DAYS} - g % ${DAYS}) * interval '1 day'
                       + random() * interval '1 day' AS ts,
                       (200000 * power(random(), 2))::int AS u WHERE g IS NOT NULL) e;
INSERT INTO $S.users (id, email, created_at, updated_at)
SELECT 'user_' || u, 'u' || u || '@bench.test', c, c
  FROM generate_series(0, 199999) u,
       LATERAL (SELECT timestamptz '2025-10-26 00:00:00+00' + random() * interval '400 days' AS c
                 WHERE u IS NOT NULL) x;
INSERT INTO $S.organization_memberships (id, user_id, organization_id, role_slug, status, created_at,
                                         updated_at, deleted_at)
SELECT 'om_' || u, 'user_' || u, 'org_' || u % 5000, CASE WHEN u % 10 = 0 THEN 'admin' ELSE 'member' END,
       'active', c, c, CASE WHEN u % 7 = 0 THEN c + interval '90 days' END
  FROM generate_series(0, 199999) u,
       LATERAL (SELECT timestamptz '2025-10-26 00:00:00+00' + random() * interval '400 days' AS c
                 WHERE u IS NOT NULL) x;
INSERT INTO $S.invitations (id, email, state, accepted_at, revoked_at, expires_at, organization_id,
                            created_at, updated_at)
SELECT 'inv_' || i, 'i' || i || '@bench.test',
       CASE k WHEN 0 THEN 'accepted' WHEN 1 THEN 'revoked' WHEN 2 THEN 'expired' ELSE 'pending' END,
       CASE WHEN k = 0 THEN c + random() * interval '3 days' END,
       CASE WHEN k = 1 THEN c + interval '1 day' END, c + interval '7 days', 'org_' || i % 5000, c, c
  FROM generate_series(0, 49999) i,
       LATERAL (SELECT timestamptz '2025-10-26 00:00:00+00' + random() * interval '400 days' AS c,
                       i % 4 AS k WHERE i IS NOT NULL) x;
INSERT INTO $S.sessions (id, user_id, organization_id, status, auth_method, impersonator, expires_at,
                         created_at, updated_at)
SELECT 'session_' || i, 'user_' || i * 37 % 200000, 'org_' || i % 5000, 'active', 'impersonation',
       jsonb_build_object('email', 'support@bench.test', 'reason', 'ticket ' || i), c + interval '1 hour', c, c
  FROM generate_series(0, 9999) i,
       LATERAL (SELECT timestamptz '2025-10-26 00:00:00+00' + random() * interval '400 days' AS c
                 WHERE i IS NOT NULL) x;
EOF
n_log=$(sql "select count(*) from $S.events")
log "rebuilding the rollups from $n_log events"
sql "checkpoint"
t0=$(now_ms)
rolled=$(sql "select $S.rebuild_rollups()")
rebuild_ms=$(($(now_ms) - t0))
sql "alter table $S.events enable trigger events_rollup"
sql "vacuum analyze"
echo "auth_events=$AN"
echo "log_rows=$n_log"
printf 'generate_seconds=%.1f\n' "$(awk -v ms="$gen_ms" 'BEGIN { print ms / 1000 }')"
echo "generate_events_per_s=$(rate "$AN" "$gen_ms")"
printf 'rebuild_rollups_seconds=%.1f\n' "$(awk -v ms="$rebuild_ms" 'BEGIN { print ms / 1000 }')"
echo "rebuild_rollups_events=$rolled"
echo "rebuild_rollups_events_per_s=$(rate "$rolled" "$rebuild_ms")"
sql "select 'rollup_rows_' || relname || '=' || n_live_tup from pg_stat_user_tables
      where schemaname = '$S' and relname like 'rollup%' order by relname"

# --- (d) every question over 30 and 365 days ---------------------------------------

END_DAY=2026-11-29
END_TS="2026-11-30 00:00:00+00"
# time_query NAME DAYS SQL: best of three runs, in ms.
time_query() {
    local name=$1 days=$2 query=$3 out best
    out=$(q <<EOF
\\timing on
$query;
$query;
$query;
EOF
)
    best=$(printf '%s\n' "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | head -n 1)
    [ -n "$best" ] || fail "$name: no timing in: $out"
    awk -v n="$name" -v d="$days" -v b="$best" -v t="$TARGET_MS" 'BEGIN {
        printf "query_%s_%dd_ms=%.1f %s\n", n, d, b, (b < t ? "ok" : "OVER_TARGET") }'
}
for d in 30 365; do
    from=$(date -u -d "$END_DAY - $((d - 1)) days" +%F)
    since=$(date -u -d "$END_TS - $d days" '+%F %T+00')
    time_query active_users_daily "$d" "select * from $S.active_users_daily where day between '$from' and '$END_DAY'"
    time_query auth_outcomes_daily "$d" "select * from $S.auth_outcomes_daily where day between '$from' and '$END_DAY'"
    for unit in day week month; do
        time_query "active_users_$unit" "$d" "select * from $S.active_users('$from', '$END_DAY', '$unit')"
        time_query "active_users_by_organization_$unit" "$d" \
            "select * from $S.active_users_by_organization('$from', '$END_DAY', '$unit')"
        time_query "mfa_adoption_$unit" "$d" "select * from $S.mfa_adoption('$from', '$END_DAY', '$unit')"
    done
    time_query auth_outcomes "$d" "select * from $S.auth_outcomes('$from', '$END_DAY')"
    time_query auth_failures_by_error "$d" "select * from $S.auth_failures_by_error('$from', '$END_DAY')"
    time_query auth_failures_by_ip "$d" \
        "select * from $S.auth_failures_by_ip('$since'::timestamptz + interval '7 hours', '$END_TS'::timestamptz - interval '5 hours')"
    time_query auth_failures_by_account "$d" \
        "select * from $S.auth_failures_by_account('$since'::timestamptz + interval '7 hours', '$END_TS'::timestamptz - interval '5 hours')"
    time_query auth_credential_stuffing "$d" "select * from $S.auth_credential_stuffing('$from', '$END_DAY', 20)"
    time_query auth_radar_daily "$d" "select * from $S.auth_radar_daily('$from', '$END_DAY')"
    time_query auth_radar_events "$d" "select * from $S.auth_radar_events('$since', '$END_TS')"
    time_query new_users_daily "$d" "select * from $S.new_users_daily('$from', '$END_DAY')"
    time_query user_activation "$d" "select * from $S.user_activation('$from', '$END_DAY')"
    time_query invitations_daily "$d" "select * from $S.invitations_daily('$from', '$END_DAY')"
    time_query invitation_summary "$d" "select * from $S.invitation_summary('$from', '$END_DAY')"
    time_query sessions_daily "$d" "select * from $S.sessions_daily('$from', '$END_DAY')"
    time_query impersonations "$d" "select * from $S.impersonations where started_at >= '$since'"
    time_query seats "$d" "select * from $S.seats"
    time_query seats_daily "$d" "select * from $S.seats_daily('$from', '$END_DAY')"
    time_query seats_daily_one_org "$d" "select * from $S.seats_daily('$from', '$END_DAY', 'org_42')"
done
# The early-stopping top 20s are exact: the same as ranking every address
# and account of the log over the year.
since=$(date -u -d "$END_TS - 365 days" '+%F %T+00')
for k in ip account; do
    if [ "$k" = ip ]; then
        key="nullif(coalesce(data ->> 'ip_address', ''), '')" fn=auth_failures_by_ip
    else
        key="coalesce(data ->> 'email', data ->> 'user_id')" fn=auth_failures_by_account
    fi
    d=$(sql "select count(*) from ((select row_number() over (), * from $S.$fn(
                                       '$since'::timestamptz + interval '7 hours', '$END_TS'::timestamptz - interval '5 hours'))
                                   except all
                                   (select row_number() over (order by count(*) desc, $key), $key, count(*)
                                      from $S.events
                                     where event like 'authentication.%\\_failed' and $key is not null
                                       and created_at >= '$since'::timestamptz + interval '7 hours'
                                       and created_at < '$END_TS'::timestamptz - interval '5 hours'
                                     group by 2 order by 1 limit 20)) d")
    [ "$d" = 0 ] || fail "$fn over 365 days differs from the log's own ranking in $d rows"
    echo "exact_${fn}_365d=ok"
done
# The windowed questions over minutes, as a dashboard asks them.
time_query auth_failures_by_ip_60min 0 \
    "select * from $S.auth_failures_by_ip('$END_TS'::timestamptz - interval '60 minutes', '$END_TS')"
time_query auth_credential_stuffing_recent_60min 0 \
    "select * from $S.auth_credential_stuffing_recent('$END_TS'::timestamptz - interval '60 minutes', 5, '$END_TS')"
# A non-UTC zone is as fast once it is kept.
log "adding America/New_York"
t0=$(now_ms)
sql "select $S.add_rollup_time_zone('America/New_York')" >/dev/null
echo "add_time_zone_seconds=$(awk -v ms="$(($(now_ms) - t0))" 'BEGIN { printf "%.1f", ms / 1000 }')"
from=$(date -u -d "$END_DAY - 364 days" +%F)
time_query active_users_day_new_york 365 "select * from $S.active_users('$from', '$END_DAY', 'day', 'America/New_York')"
time_query auth_outcomes_new_york 365 "select * from $S.auth_outcomes('$from', '$END_DAY', 'America/New_York')"
