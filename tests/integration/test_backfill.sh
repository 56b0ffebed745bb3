#!/usr/bin/env bash
# A backfill of 20,000 generated events converges to exactly the expected
# mirror and event log, stores each event minus its secrets, and no secret
# from the stream (invitation tokens and URLs, one-time codes, password-reset
# tokens, API-key values, the WorkOS API key) reaches the database or the log.
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 20000 101
api_key=sk_test_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
emu_start "$EVENTS_SERVED" --api-key "$api_key"
daemon_config
t0=$(now_ms)
daemon_start
wait_caught_up 120
log "backfill of $(count_events "$EVENTS") events took $(($(now_ms) - t0)) ms"

assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$EVENTS"
assert_events_content "$EVENTS"
wait_for 15 "status to report caught up" syncd status >/dev/null 2>&1
daemon_stop

# The secrets of the stream, by kind (jq-free: PostgreSQL reads the JSONL).
jsonl_query "$EVENTS_SERVED" "
select kind || ' ' || s from (
  select 'invitation_token' as kind, j->'data'->>'token' as s from jl where j->>'event' like 'invitation.%'
  union all
  select 'invitation_url', j->'data'->>'accept_invitation_url' from jl where j->>'event' like 'invitation.%'
  union all
  select 'code', j->'data'->>'code' from jl
   where j->>'event' in ('magic_auth.created', 'email_verification.created')
  union all
  select 'reset_token', j->'data'->>'token' from jl where j->>'event' = 'password_reset.created'
  union all
  select 'api_key_value', j->'data'->>'value' from jl where j->>'event' = 'api_key.created'
) x where s is not null and s <> '' group by 1;" >"$T/secrets.txt"
for kind in invitation_token invitation_url code reset_token api_key_value; do
    n=$(grep -c "^$kind " "$T/secrets.txt" || true)
    [ "$n" -gt 0 ] || fail "the generated stream has no $kind secret; the check would prove nothing"
    log "$n distinct $kind secrets in the stream"
done
cut -d' ' -f2- "$T/secrets.txt" >"$T/secret-values.txt"
echo "$api_key" >>"$T/secret-values.txt"

"$PG_BIN/pg_dump" --no-owner -d postgres >"$T/dump.sql" || fail "pg_dump failed"
[ -s "$T/dump.sql" ] || fail "empty pg_dump"

# Long secrets are matched anywhere; short ones (one-time codes) only as a
# whole JSON string, "123456", so a six-digit code does not match inside an
# unrelated id or the microseconds of a timestamp.
awk 'length($0) >= 16' "$T/secret-values.txt" >"$T/secrets-long.txt"
awk 'length($0) < 16 { print "\"" $0 "\"" }' "$T/secret-values.txt" >"$T/secrets-short.txt"
check_no_secrets() {
    local file=$1 what=$2 hits=$T/hits.txt
    : >"$hits"
    if [ -s "$T/secrets-long.txt" ]; then
        grep -F -o -f "$T/secrets-long.txt" "$file" >>"$hits" || true
    fi
    if [ -s "$T/secrets-short.txt" ]; then
        grep -F -o -f "$T/secrets-short.txt" "$file" >>"$hits" || true
    fi
    if [ -s "$hits" ]; then
        echo "$(wc -l <"$hits") secret occurrences in $what, e.g.:" >&2
        { sort -u "$hits" | head -n 5; } >&2 || true
        { grep -n -F -f <(sort -u "$hits" | head -n 1) "$file" | head -n 3 | cut -c 1-400; } >&2 || true
        fail "a secret from the stream reached $what"
    fi
    log "no secret in $what"
}
check_no_secrets "$T/dump.sql" "pg_dump of the database"
check_no_secrets "$DAEMON_LOG" "the daemon log"
if grep -q -F "$api_key" "$DAEMON_LOG"; then
    fail "the WorkOS API key appears in the daemon log"
fi

# The secret fields are gone from the stored payloads, not just emptied.
n=$(sql "select count(*) from workos.events
          where (event like 'invitation.%' and (data ? 'token' or data ? 'accept_invitation_url'))
             or (event in ('magic_auth.created', 'email_verification.created') and data ? 'code')
             or (event = 'password_reset.created' and data ? 'token')
             or (event like 'api_key.%' and data ? 'value')")
assert_eq 0 "$n" "stored events still carrying a secret field"
