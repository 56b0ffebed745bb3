# Helpers for the reconciliation tests, sourced after lib.sh.
# shellcheck shell=bash

# snapshot_env USERS SEED [RETENTION_EVENTS]: a populated environment
# (gen --users) in $EVENTS_SERVED with its expected state in $EXPECTED, and
# in $EVENTS the part the daemon's event filter asks for.
snapshot_env() {
    EVENTS_SERVED=$T/events.jsonl
    EXPECTED=$T/expected.jsonl
    EVENTS=$T/events.api.jsonl
    "$EMU" gen --users "$1" --seed "$2" --out "$EVENTS_SERVED" --expect "$EXPECTED" \
        >>"$EMU_STDERR" 2>&1 || fail "workos-emulator gen --users failed"
    events_in_filter "$EVENTS_SERVED" "$EVENTS"
    log "environment: $(wc -l <"$EVENTS_SERVED" | tr -d ' ') events, $(wc -l <"$EXPECTED" | tr -d ' ') objects"
}

# assert_mirror_lists EXPECTED: the live mirror rows are exactly the objects
# the state APIs list -- the non-deleted ones of EXPECTED, sessions only when
# active -- with their updated_at and fields.  Sessions the listing does not
# show may remain (an absent session is never revoked by a listing).
assert_mirror_lists() {
    local expected=$1 t union=
    for t in $MIRROR_TABLES; do
        [ -n "$union" ] && union="$union union all "
        union="$union select '$t'::text as tbl, id::text as id, updated_at::timestamptz as ua,
            to_jsonb(x) as r from $SYNCD_SCHEMA.$t x where deleted_at is null"
    done
    local out=$T/lists-diff.txt
    q >"$out" <<SQL || fail "listing comparison query failed: $(cat "$out")"
set timezone = 'UTC';
create temporary table expected(j jsonb);
\\copy expected(j) from '$expected' $jsonl_copy_opts
create temporary table want as
    select j->>'table' as tbl, j->>'id' as id, (j->>'updated_at')::timestamptz as ua,
           coalesce(j->'fields', '{}') as f
      from expected
     where not coalesce((j->>'deleted')::boolean, false)
       and (j->>'table' <> 'sessions' or j->'fields'->>'status' = 'active');
create temporary table got as $union;
select format('missing  %s %s', w.tbl, w.id) from want w left join got g using (tbl, id) where g.id is null
union all
select format('extra    %s %s', g.tbl, g.id) from got g left join want w using (tbl, id)
 where w.id is null and g.tbl <> 'sessions'
union all
select format('differs  %s %s: %s', tbl, id, d) from (
  select w.tbl, w.id, concat_ws('; ',
      case when w.ua is distinct from g.ua then format('updated_at want %s got %s', w.ua, g.ua) end,
      (select string_agg(format('%s want %s got %s', k, w.f->k, coalesce((g.r->k)::text, '<no column>')), ', ' order by k)
         from jsonb_object_keys(w.f) k where (g.r->k) is distinct from (w.f->k))) as d
    from want w join got g using (tbl, id)) s
 where d <> '';
SQL
    fail_on_diff "$out" mirror "the state APIs"
    log "mirror holds exactly what the state APIs list"
}

# emu_stat PATH: one number from /_emulator/stats (a jq path).
emu_stat() {
    emu_curl GET /_emulator/stats | jq -r "$1"
}

# assert_polling_resumes: after a reconciliation, the poller follows the
# stream again -- an event dated now (evt_zz_resumed, an update of the first
# listed user) is applied -- and `backfill --dry-run` finds no drift.
assert_polling_resumes() {
    local now n
    now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
    emu_curl GET '/user_management/users?limit=1&order=asc' | jq -c --arg t "$now" '
      .data[0] | {object:"event", id:"evt_zz_resumed", event:"user.updated", created_at:$t,
        data:(. + {last_name:"Resumed", updated_at:$t})}' >"$T/resumed.jsonl"
    emu_append "$T/resumed.jsonl"
    wait_caught_up 60 evt_zz_resumed
    n=$(sql "select count(*) from workos.users where last_name = 'Resumed' and deleted_at is null")
    assert_eq 1 "$n" "user updated after polling resumed"
    syncd backfill --dry-run >"$T/dry.out" 2>>"$DAEMON_LOG" || fail "drift: $(cat "$T/dry.out")"
}
