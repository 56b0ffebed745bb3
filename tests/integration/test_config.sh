#!/usr/bin/env bash
# Configuration and migrations: a bad key, a bad value or an unknown section
# is one line `FILE:LINE: [section] key: ...` on stderr and exit 78, for
# every subcommand (an unknown section: `FILE:LINE: [section]` at its
# header); `migrate` twice is a no-op; a custom schema name
# (`[database] schema = idp`) works end to end and nothing lands in `workos`.
source "$(dirname "$0")/lib.sh"
require_bins

# expect_config_error CMD FILE LINE SECTION KEY
expect_config_error() {
    local cmd=$1 file=$2 line=$3 section=$4 key=$5 rc=0
    timeout 20 "$SYNCD" "$cmd" -c "$file" >"$T/cfg.out" 2>"$T/cfg.err" </dev/null || rc=$?
    if [ "$rc" -ne 78 ]; then
        cat "$T/cfg.err" >&2
        fail "$cmd with $(basename "$file"): exit $rc, want 78"
    fi
    local want="$file:$line: [$section]${key:+ $key}"
    grep -q -F -- "$want" "$T/cfg.err" || {
        cat "$T/cfg.err" >&2
        fail "$cmd with $(basename "$file"): stderr does not name '$want'"
    }
    [ "$(wc -l <"$T/cfg.err")" -eq 1 ] || {
        cat "$T/cfg.err" >&2
        fail "$cmd with $(basename "$file"): want exactly one line on stderr"
    }
    grep -q -F "sk_test_config_secret" "$T/cfg.err" "$T/cfg.out" &&
        fail "the API key was echoed in a config error"
    log "$cmd: exit 78, '$(cat "$T/cfg.err")'"
}

cat >"$T/bad-key.conf" <<CONF
# line 1
[workos]
api_key = sk_test_config_secret
poll_interval = 1s
bogus_key = 1

[database]
url = postgresql://postgres@127.0.0.1:1/postgres
CONF
cat >"$T/bad-value.conf" <<CONF
[workos]
api_key = sk_test_config_secret

poll_interval = soon
CONF
cat >"$T/bad-section.conf" <<CONF
[workos]
api_key = sk_test_config_secret
[nosuchsection]
colour = blue
CONF
cat >"$T/bad-schema.conf" <<CONF
[workos]
api_key = sk_test_config_secret
[database]
schema = Robert'); DROP TABLE students;--
CONF
for cmd in run migrate status; do
    expect_config_error "$cmd" "$T/bad-key.conf" 5 workos bogus_key
done
expect_config_error run "$T/bad-value.conf" 4 workos poll_interval
# An unknown section is reported at its header.
expect_config_error run "$T/bad-section.conf" 3 nosuchsection ""
expect_config_error migrate "$T/bad-schema.conf" 4 database schema

# migrate twice: the second run changes nothing.
pg_start
daemon_config
syncd migrate >>"$DAEMON_LOG" 2>&1 || fail "first migrate failed"
snap() {
    sql "select string_agg(version::text, ',' order by version) from workos.schema_migrations"
    sql "select to_jsonb(m)::text from workos.schema_migrations m order by version"
    # (pg_dump marks its output with a random \restrict key each run)
    "$PG_BIN/pg_dump" --schema-only --no-owner -d postgres | grep -v '^\\\(un\)\?restrict '
}
snap >"$T/snap1.txt"
[ -n "$(head -n 1 "$T/snap1.txt")" ] || fail "schema_migrations is empty after migrate"
sql "select count(*) from workos.schema_migrations" >/dev/null
syncd migrate >>"$DAEMON_LOG" 2>&1 || fail "second migrate failed (exit $?)"
snap >"$T/snap2.txt"
diff -u "$T/snap1.txt" "$T/snap2.txt" >&2 || fail "a second migrate changed the database"
log "migrate twice: no change (versions $(head -n 1 "$T/snap1.txt"))"

# An older database upgrades: with the newest migration forgotten, migrate
# applies it again, records it, and the schema ends as before.
latest=$(sql "select max(version) from workos.schema_migrations")
sql "delete from workos.schema_migrations where version = $latest"
syncd migrate >>"$DAEMON_LOG" 2>&1 || fail "upgrading migrate failed (exit $?)"
assert_eq "$latest" "$(sql "select max(version) from workos.schema_migrations")" \
    "newest migration recorded after the upgrade"
snap | tail -n +2 | grep -v '"applied_at"' >"$T/snap3.txt"
tail -n +2 "$T/snap1.txt" | grep -v '"applied_at"' | diff -u - "$T/snap3.txt" >&2 ||
    fail "the upgraded schema differs from a fresh one"
# The mirror tables keep room for updates in place (003).
assert_eq "{fillfactor=80}" "$(sql "select reloptions from pg_class
    where oid = 'workos.organization_memberships'::regclass")" "mirror table fillfactor"

# A custom schema end to end.
gen_stream 2000 606
emu_start "$EVENTS_SERVED"
daemon_config database.schema=idp
daemon_start
wait_caught_up 60
assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
wait_for 15 "status to report caught up" syncd status >/dev/null 2>&1
n=$(sql "select count(*) from idp.schema_migrations")
[ "$n" -gt 0 ] || fail "idp.schema_migrations is empty"
# The only rows in workos are the ones the first migrate made; the custom
# schema's daemon wrote nothing there.
n=$(sql "select (select count(*) from workos.events) + (select count(*) from workos.users)
          + (select count(*) from workos.sync_state)")
assert_eq 0 "$n" "rows written to the default schema by the idp daemon"
daemon_stop
