#!/usr/bin/env bash
# The audit trail's read side at scale (`make bench-audit-scale`, also run
# by `make bench`; not part of CI).
#
# On one PostgreSQL with fsync and synchronous_commit on:
#   (a) BENCH_AUDIT_EVENTS (default 5,000,000) events generated in SQL into
#       a migrated log, spread evenly over the 400 days before now, in
#       statements of 10,000 with the chain's trigger on (one link each)
#       and the subject columns filled as the background fill would; the
#       analytics trigger is off (not what is measured here).  100,000
#       users, each event naming one at random; 60 % authentication.*, 15 %
#       session.created, 15 % user.updated, 10 % organization_membership.*.
#       Then 20,000 mirror users written and updated four times in
#       statements of 1,000 (the change feed: 100,000 rows, chained);
#   (b) one user's full trail (events and changes, by user_id) for a
#       typical user and for the one with the most events, and one
#       users_as_of lookup of one user, against the 10 ms target (best of
#       three);
#   (c) `workos-syncd verify` over the whole chain: rows/s against the
#       200,000/s target; then one `forget` of the typical user, timed;
#   (d) pruning the oldest 30 days the way the daemon does
#       (audit_prune(..., 2000) until a batch comes back short), while a
#       second connection applies webhook-like batches (10 events and their
#       chain link) every 20 ms: each prune statement's time (on the
#       daemon's one connection an apply waits at most that long) and the
#       applies' latency, against a baseline of the same applies alone;
#   (e) the alternative, time partitioning: the oldest two months copied
#       into a log partitioned by month (the primary key has to become
#       (id, created_at)), the oldest month's digests kept in one
#       statement, the partition detached and dropped, with the same
#       applies running against the partitioned log.
# Results are key=value lines on stdout; progress goes to stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
require_bins

N=${BENCH_AUDIT_EVENTS:-5000000}
DAYS=400
TRAIL_MS=10
VERIFY_RATE=200000
APPLY_MS=100
S=workos

pg_start --fsync
sql "show fsync" | grep -qx on || fail "fsync is not on"
daemon_config database.schema=$S
daemon_migrate
sql "alter table $S.events disable trigger events_rollup"

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }'; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
# stats FILE: "p50 p99 max count" of the numbers in FILE (one a line).
stats() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "0 0 0 0"; exit }
        i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
        i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
        printf "%.1f %.1f %.1f %d\n", v[i50], v[i99], v[NR], NR }'
}
# timings: the ms of each statement psql timed, in order.
timings() { sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }

# --- (a) the log --------------------------------------------------------------

log "generating $N events over $DAYS days"
t0=$(now_ms)
step=1000000
for ((a = 0; a < N; a += step)); do
    b=$((a + step))
    [ "$b" -le "$N" ] || b=$N
    q >/dev/null <<EOF
DO \$\$
DECLARE
    t0 timestamptz := now() - interval '$DAYS days';
BEGIN
    FOR lo IN $a .. $((b - 1)) BY 10000 LOOP
        INSERT INTO $S.events (id, event, created_at, data, source, object_type, object_id, user_id,
                               organization_id)
        SELECT x.id, x.event, x.ts, x.data, 'events_api', s[1], s[2], s[3], s[4]
          FROM (SELECT y.*, $S.audit_subjects(y.event, y.data) AS s
                  FROM (SELECT 'evt_' || lpad(g::text, 10, '0') AS id, k.event,
                               t0 + (g + 0.5) / $N * interval '$DAYS days' AS ts,
                               CASE WHEN k.event LIKE 'authentication.%' THEN
                                        jsonb_build_object('type', 'password', 'status', k.status,
                                                           'user_id', 'user_' || k.u,
                                                           'email', 'u' || k.u || '@bench.test',
                                                           'ip_address', '10.0.' || k.u % 256 || '.1',
                                                           'user_agent', 'Mozilla/5.0 (X11; Linux x86_64)')
                                    WHEN k.event = 'session.created' THEN
                                        jsonb_build_object('object', 'session', 'id', 'session_' || g,
                                                           'user_id', 'user_' || k.u,
                                                           'organization_id', 'org_' || k.u % 5000,
                                                           'auth_method', 'password', 'status', 'active')
                                    WHEN k.event = 'user.updated' THEN
                                        jsonb_build_object('object', 'user', 'id', 'user_' || k.u,
                                                           'email', 'u' || k.u || '@bench.test',
                                                           'first_name', 'U' || g % 1000,
                                                           'email_verified', true)
                                    ELSE jsonb_build_object('object', 'organization_membership',
                                                            'id', 'om_' || k.u, 'user_id', 'user_' || k.u,
                                                            'organization_id', 'org_' || k.u % 5000,
                                                            'role', jsonb_build_object('slug', 'member'),
                                                            'status', 'active') END AS data
                          FROM generate_series(lo, least(lo + 9999, $((b - 1)))) g
                         CROSS JOIN LATERAL (
                               SELECT floor(random() * 100000)::int AS u,
                                      CASE WHEN g % 20 < 12 THEN 'authentication.password_'
                                                || CASE WHEN g % 5 = 0 THEN 'failed' ELSE 'succeeded' END
                                           WHEN g % 20 < 15 THEN 'session.created'
                                           WHEN g % 20 < 18 THEN 'user.updated'
                                           ELSE 'organization_membership.updated' END AS event,
                                      CASE WHEN g % 5 = 0 THEN 'failed' ELSE 'succeeded' END AS status
                                WHERE g IS NOT NULL) k) y) x;
    END LOOP;
END
\$\$;
EOF
    log "  $b events"
done
gen_ms=$(($(now_ms) - t0))
log "writing and updating 20,000 mirror users"
q >/dev/null <<EOF
DO \$\$
BEGIN
    FOR lo IN 0 .. 19999 BY 1000 LOOP
        INSERT INTO $S.users (id, email, first_name, created_at, updated_at, last_event_id)
        SELECT 'user_' || u, 'u' || u || '@bench.test', 'First', now() - interval '300 days',
               now() - interval '300 days', 'evt_m0_' || u
          FROM generate_series(lo, lo + 999) u;
    END LOOP;
    FOR r IN 1 .. 4 LOOP
        FOR lo IN 0 .. 19999 BY 1000 LOOP
            UPDATE $S.users SET first_name = 'First ' || r, updated_at = now() - (300 - r * 50) * interval '1 day',
                   last_event_id = 'evt_m' || r || '_' || substr(id, 6)
             WHERE id IN (SELECT 'user_' || u FROM generate_series(lo, lo + 999) u);
        END LOOP;
    END LOOP;
END
\$\$;
EOF
sql "vacuum analyze"
echo "audit_events=$N"
echo "audit_changes=$(sql "select count(*) from $S.changes")"
echo "audit_links=$(sql "select count(*) from $S.audit_links")"
echo "audit_generate_seconds=$(secs "$gen_ms")"
echo "audit_log_size_mb=$(sql "select pg_total_relation_size('$S.events') / 1048576")"

# --- (b) trail and history ------------------------------------------------------

# time_query NAME TARGET_MS SQL: best of three runs, in ms.
time_query() {
    local name=$1 target=$2 query=$3 out best
    out=$(q <<EOF
\\timing on
$query;
$query;
$query;
EOF
)
    best=$(printf '%s\n' "$out" | timings | sort -n | head -n 1)
    [ -n "$best" ] || fail "$name: no timing in: $out"
    awk -v n="$name" -v b="$best" -v t="$target" 'BEGIN {
        printf "%s_ms=%.2f %s\n", n, b, (b < t ? "ok" : "OVER_TARGET") }'
}
typical=user_4242
heavy=$(sql "select user_id from $S.events where user_id is not null group by 1 order by count(*) desc limit 1")
trail() {
    echo "select 'event' as kind, created_at as at, event as what, object_type, object_id, null::jsonb as changes
            from $S.events where user_id = '$1'
          union all
          select 'change', committed_at, operation, table_name, object_id, changes
            from $S.changes where user_id = '$1'
          order by at"
}
echo "trail_typical_rows=$(sql "select count(*) from ($(trail $typical)) t")"
echo "trail_heaviest_rows=$(sql "select count(*) from ($(trail "$heavy")) t")"
time_query trail_typical "$TRAIL_MS" "$(trail $typical)"
time_query trail_heaviest "$TRAIL_MS" "$(trail "$heavy")"
time_query users_as_of_one "$TRAIL_MS" \
    "select * from $S.users_as_of(now() - interval '120 days', 'user_4242')"
time_query history_one "$TRAIL_MS" "select * from $S.history('user_4242')"

# --- (c) verify ---------------------------------------------------------------------

log "verify"
t0=$(now_ms)
out=$(syncd verify) || fail "verify did not pass: $out"
verify_ms=$(($(now_ms) - t0))
rows=$(printf '%s\n' "$out" | sed -n 's/^rows=//p')
echo "verify_rows=$rows"
echo "verify_seconds=$(secs "$verify_ms")"
awk -v n="$rows" -v ms="$verify_ms" -v t="$VERIFY_RATE" 'BEGIN {
    r = (ms > 0 ? n * 1000 / ms : 0); printf "verify_rows_per_s=%.0f %s\n", r, (r >= t ? "ok" : "UNDER_TARGET") }'

# --- (c2) forget ---------------------------------------------------------------------

# One user's erasure (forced: the user is live in the mirror), which also
# reads the whole log once for failed sign-ins naming only an address.
log "forget $typical"
t0=$(now_ms)
out=$(syncd forget "$typical" --force) || fail "forget did not run: $out"
forget_ms=$(($(now_ms) - t0))
echo "forget_events=$(printf '%s\n' "$out" | sed -n 's/^events=//p')"
echo "forget_seconds=$(secs "$forget_ms")"

# --- (d) pruning a month, with applies running -----------------------------------

# apply_loop TABLE PREFIX COUNT: up to COUNT webhook-like applies of 10 events
# into TABLE, one every 20 ms, on one connection, until $T/stop exists;
# prints each one's time.
apply_loop() {
    rm -f "$T/stop"
    {
        printf '%s\n' '\timing on'
        for ((i = 0; i < $3; i++)); do
            [ ! -e "$T/stop" ] || break
            echo "insert into $1 (id, event, created_at, data, source) select '$2' || $i || '_' || g,
                  'authentication.password_succeeded', now(),
                  jsonb_build_object('type', 'password', 'user_id', 'user_' || g, 'ip_address', '10.1.0.1'),
                  'webhook' from generate_series(1, 10) g;"
            echo "select pg_sleep(0.02);"
        done
    } | q 2>&1 | timings | awk 'NR % 2 == 1'
}
# prune_loop SQL: runs SQL (one prune batch) until it returns less than 2000;
# prints each statement's time.
prune_loop() {
    local n=2000
    while [ "$n" -ge 2000 ]; do
        out=$(q <<EOF
\\timing on
$1;
EOF
)
        n=$(printf '%s\n' "$out" | head -n 1)
        printf '%s\n' "$out" | timings
    done
}

log "applies alone (baseline)"
apply_loop "$S.events" base_ 400 >"$T/apply_base.ms"
read -r b50 b99 bmax bn < <(stats "$T/apply_base.ms")
echo "apply_alone_ms=p50 $b50 p99 $b99 max $bmax (n=$bn)"

cutoff="(select min(created_at) from $S.events) + interval '30 days'"
cut=$(sql "select $cutoff")
month=$(sql "select count(*) from $S.events where created_at < '$cut'")
echo "prune_month_events=$month"
log "pruning $month events older than $cut, applies running"
apply_loop "$S.events" prune_ 100000 >"$T/apply_prune.ms" &
apid=$!
t0=$(now_ms)
prune_loop "select $S.audit_prune('$cut', null, 2000)" >"$T/prune.ms"
prune_ms=$(($(now_ms) - t0))
touch "$T/stop"
wait "$apid"
left=$(sql "select count(*) from $S.events where created_at < '$cut'")
[ "$left" = 0 ] || fail "$left events older than the cutoff left after pruning"
read -r p50 p99 pmax pn < <(stats "$T/prune.ms")
read -r a50 a99 amax an < <(stats "$T/apply_prune.ms")
echo "prune_delete_seconds=$(secs "$prune_ms")"
echo "prune_delete_events_per_s=$(rate "$month" "$prune_ms")"
echo "prune_batch_ms=p50 $p50 p99 $p99 max $pmax (n=$pn)"
echo "apply_during_prune_ms=p50 $a50 p99 $a99 max $amax (n=$an)"
awk -v p="$pmax" -v a="$amax" -v t="$APPLY_MS" 'BEGIN {
    w = (p > a ? p : a)
    printf "prune_apply_wait_max_ms=%.1f %s\n", w, (w < t ? "ok" : "OVER_TARGET") }'
log "verify after pruning"
out=$(syncd verify) || fail "verify after pruning did not pass: $out"
echo "verify_after_prune=$(printf '%s\n' "$out" | sed -n 's/^state=//p') pruned=$(printf '%s\n' "$out" | sed -n 's/^pruned=//p')"

# --- (e) the same month with time partitions ---------------------------------------

log "a partitioned copy of the next two months"
lo=$(sql "select min(created_at) from $S.events")
P=bench_part
q >/dev/null <<EOF
CREATE SCHEMA $P;
CREATE TABLE $P.events (LIKE $S.events INCLUDING DEFAULTS, PRIMARY KEY (id, created_at))
    PARTITION BY RANGE (created_at);
CREATE TABLE $P.events_m0 PARTITION OF $P.events
    FOR VALUES FROM ('$lo') TO (timestamptz '$lo' + interval '30 days');
CREATE TABLE $P.events_m1 PARTITION OF $P.events
    FOR VALUES FROM (timestamptz '$lo' + interval '30 days') TO (timestamptz '$lo' + interval '60 days');
CREATE TABLE $P.events_now PARTITION OF $P.events
    FOR VALUES FROM (timestamptz '$lo' + interval '60 days') TO (MAXVALUE);
CREATE INDEX ON $P.events (event, created_at);
CREATE INDEX ON $P.events (created_at);
CREATE INDEX ON $P.events (object_id, created_at) WHERE object_id IS NOT NULL;
CREATE INDEX ON $P.events (user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX ON $P.events (organization_id, created_at) WHERE organization_id IS NOT NULL;
CREATE TABLE $P.pruned (ref text PRIMARY KEY, digest bytea NOT NULL);
INSERT INTO $P.events SELECT * FROM $S.events
 WHERE created_at < timestamptz '$lo' + interval '60 days';
VACUUM ANALYZE $P.events;
EOF
pmonth=$(sql "select count(*) from $P.events_m0")
echo "partition_month_events=$pmonth"
apply_loop "$P.events" part_ 100000 >"$T/apply_part.ms" &
apid=$!
sleep 1
out=$(q 2>&1 <<EOF
\\timing on
INSERT INTO $P.pruned (ref, digest)
SELECT id, $S.audit_event_digest(id, event, created_at, source,
           coalesce(redacted_digest, $S.audit_event_data_digest(data, context))) FROM $P.events_m0;
ALTER TABLE $P.events DETACH PARTITION $P.events_m0;
DROP TABLE $P.events_m0;
EOF
)
sleep 1
touch "$T/stop"
wait "$apid"
mapfile -t pt < <(printf '%s\n' "$out" | timings)
[ "${#pt[@]}" -eq 3 ] || fail "partition steps: $out"
read -r c50 c99 cmax cn < <(stats "$T/apply_part.ms")
echo "partition_keep_digests_ms=${pt[0]}"
echo "partition_detach_ms=${pt[1]}"
echo "partition_drop_ms=${pt[2]}"
echo "apply_during_partition_drop_ms=p50 $c50 p99 $c99 max $cmax (n=$cn)"
awk -v a="${pt[0]}" -v b="${pt[1]}" -v c="${pt[2]}" -v n="$pmonth" 'BEGIN {
    printf "partition_prune_events_per_s=%.0f\n", n * 1000 / (a + b + c) }'
