#!/usr/bin/env bash
# The README's privileges, exactly as written there: a role that owns the
# schema runs `migrate` and the README's GRANTs; the daemon then runs as
# the `syncd` role alone -- the Events API backfill with the rollups, a
# webhook, a reconciliation, pruning by [audit] auth_retention, its
# housekeeping -- without one permission error, and the `auditor` role
# reads everything (verify, status, the trail), writes nothing, and a
# table a later migration adds is readable by both without new GRANTs.
# The daemon's own role cannot empty the log or rewrite it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
source "$(dirname "$0")/lib_rollup.sh"
require_bins

pg_start
sql "create role workos_owner login; create role syncd login; create role auditor login;
     grant create on database postgres to workos_owner" >/dev/null
url_as() { printf 'postgresql://%s@127.0.0.1:%s/postgres' "$1" "$PGPORT"; }
# DATABASE_URL outranks the config's url: each phase sets it to its role.

# The README's block, run by the owner.
awk '/^### Privileges/ { p = 1 } p && /^```sql/ { q = 1; next } q && /^```/ { exit } q' README.md \
    >"$T/grants.sql"
grep -q 'TO syncd' "$T/grants.sql" && grep -q 'TO auditor' "$T/grants.sql" ||
    fail "no privileges block for syncd and auditor in README.md: $(cat "$T/grants.sql")"

gen_stream 6000 4242
emu_start "$EVENTS_SERVED"
secret=whsec_priv_test
daemon_config database.url="$(url_as workos_owner)" webhook.listen=127.0.0.1:0 \
    "webhook.secret=$secret" audit.retention=3650d audit.auth_retention=30d log.level=info
DATABASE_URL=$(url_as workos_owner) syncd migrate >>"$DAEMON_LOG" 2>&1 || fail "migrate as the owner failed: $(tail -3 "$DAEMON_LOG")"
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$(url_as workos_owner)" -f "$T/grants.sql" \
    >"$T/grants.out" 2>&1 || fail "the README's GRANTs failed: $(cat "$T/grants.out")"

# The daemon as syncd.
daemon_config database.url="$(url_as syncd)" webhook.listen=127.0.0.1:0 \
    "webhook.secret=$secret" audit.retention=3650d audit.auth_retention=30d \
    audit.head_log_interval=1s log.level=info
DAEMON_MIGRATED=1
export DATABASE_URL=$(url_as syncd)
daemon_start
wh_wait_port
wait_for 30 "/readyz 200" wh_ready
wait_caught_up 120
assert_eq 200 "$(wh_post "$(body_file wh.json "$(user_event_json evt_priv_wh user_priv_wh)")" "$secret")" \
    "a webhook as syncd"
pruned() { [ "$(sql "select count(*) from workos.events where event like 'authentication.%'")" = 0 ]; }
wait_for 60 "authentication events pruned as syncd" pruned
wait_rollups_current 60
wait_for 10 "a logged audit head" grep -q 'event=audit_head link=' "$DAEMON_LOG"
daemon_stop
syncd backfill >"$T/b.out" 2>>"$DAEMON_LOG" || fail "backfill as syncd exited $?"
if grep -Ei 'permission denied|must be owner|level=error' "$DAEMON_LOG" >"$T/denied.txt"; then
    fail "the daemon as syncd was refused: $(head -5 "$T/denied.txt")"
fi
assert_eq 1 "$(sql "select count(*) from workos.events where id = 'evt_priv_wh'")" "the webhook's event"
[ "$(sql "select count(*) from workos.audit_checkpoints")" -ge 1 ] || fail "no pruning checkpoint"

# The daemon's role cannot empty or rewrite the log.
as_syncd() { "$PG_BIN/psql" -X -q -A -t -d "$(url_as syncd)" -c "$1" 2>&1; }
out=$(as_syncd "truncate workos.events") && fail "syncd truncated the log: $out"
grep -q 'permission denied\|append-only' <<<"$out" || fail "truncate refused oddly: $out"
out=$(as_syncd "update workos.events set event = 'x' where id = 'evt_priv_wh'") &&
    fail "syncd rewrote an event: $out"
grep -q 'append-only' <<<"$out" || fail "update refused oddly: $out"

# The auditor reads, verifies, writes nothing.
daemon_config database.url="$(url_as auditor)"
export DATABASE_URL=$(url_as auditor)
syncd verify >"$T/verify.out" 2>&1 || fail "verify as auditor: $(cat "$T/verify.out")"
syncd status >"$T/status.out" 2>&1 || fail "status as auditor: $(tail -3 "$T/status.out")"
as_auditor() { "$PG_BIN/psql" -X -q -A -t -d "$(url_as auditor)" -c "$1" 2>&1; }
n=$(as_auditor "select count(*) from workos.changes where object_id = 'user_priv_wh' and operation = 'insert'")
assert_eq 1 "$n" "the auditor reading the change feed"
for stmt in "insert into workos.users (id, updated_at) values ('u_aud', now())" \
    "delete from workos.sync_state" "update workos.users set email = 'x'"; do
    out=$(as_auditor "$stmt") && fail "the auditor wrote: $stmt"
    grep -q 'permission denied' <<<"$out" || fail "'$stmt' refused oddly: $out"
done

# A table a later migration creates (as the owner) needs no new GRANT.
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$(url_as workos_owner)" \
    -c "create table workos.zz_later (id int)" >/dev/null || fail "the owner could not create a table"
assert_eq 0 "$(as_auditor "select count(*) from workos.zz_later")" "the auditor reading a later table"
assert_eq "" "$(as_syncd "insert into workos.zz_later values (1)")" "syncd writing a later table"
log "ok: the daemon ran as syncd alone, the auditor read and verified, neither could rewrite the log"
