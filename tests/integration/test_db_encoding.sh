#!/usr/bin/env bash
# The database's encoding. A LATIN1 database is refused up front with a
# clear error: migrate and status exit non-zero and create nothing, and the
# daemon logs why and never writes there. On a UTF8 database, a client
# encoding set in the environment (PGCLIENTENCODING=LATIN1) must not garble
# what the daemon writes: non-ASCII names and quotes arrive intact.
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
sql "create database latin1 encoding 'LATIN1' lc_collate 'C' lc_ctype 'C' template template0"
latin1_url="postgresql://postgres@127.0.0.1:$PGPORT/latin1"
daemon_config

rc=0
out=$(DATABASE_URL=$latin1_url timeout 20 "$SYNCD" migrate -c "$SYNCD_CONF" 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "migrate into a LATIN1 database: exit $rc: $out"
grep -q "encoding is LATIN1" <<<"$out" || fail "migrate does not say why: $out"
log "migrate refused: $out"

rc=0
out=$(DATABASE_URL=$latin1_url timeout 20 "$SYNCD" status -c "$SYNCD_CONF" 2>&1) || rc=$?
assert_eq 2 "$rc" "status exit code on a LATIN1 database"
grep -qx "state=database_unusable" <<<"$out" || fail "status does not say the database is unusable: $out"
grep -q "encoding is LATIN1" <<<"$out" || fail "status does not say why: $out"

DAEMON_MIGRATED=1 DATABASE_URL=$latin1_url daemon_start
refused() { grep -q 'event=db_unusable .*encoding is LATIN1' "$DAEMON_LOG"; }
wait_for 20 "the daemon to refuse the LATIN1 database" refused
daemon_alive || fail "the daemon exited instead of waiting for a usable database"
daemon_stop
assert_eq 0 "$(PGDATABASE=latin1 sql "select count(*) from pg_namespace where nspname = 'workos'")" \
    "schemas created in the LATIN1 database"

# The UTF8 database, with a LATIN1 client encoding in the daemon's environment.
gen_stream 2000 303
grep -q 'ü' "$EVENTS" || fail "the generated stream has no non-ASCII text; the test proves nothing"
emu_start "$EVENTS_SERVED"
daemon_config
DAEMON_MIGRATED=
PGCLIENTENCODING=LATIN1 daemon_start
wait_caught_up 60
assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
daemon_stop
