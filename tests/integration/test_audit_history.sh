#!/usr/bin/env bash
# History from the change feed against the emulator's known history: a
# generated stream is served in two halves; the mirror as it stood after
# the first half (kept aside at that moment) must be what
# workos.<table>_as_of(that time) returns after the second half; as of
# now, every table's _as_of is the mirror itself (live rows,
# bookkeeping aside), which matches the generator's expected final state; as of
# before the first commit, nothing; and workos.history(id) lists one
# object's versions ending in its mirror row, each caused by an event about
# that object.
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 1200 2727
half=$(($(wc -l <"$EVENTS_SERVED") / 2))
head -n "$half" "$EVENTS_SERVED" >"$T/first.jsonl"
tail -n "+$((half + 1))" "$EVENTS_SERVED" >"$T/second.jsonl"
events_in_filter "$T/first.jsonl" "$T/first.api.jsonl"

emu_start "$T/first.jsonl"
daemon_config
t0=$(sql "select clock_timestamp()")
daemon_start
wait_caught_up 60 --file "$T/first.api.jsonl"
sleep 0.2
t1=$(sql "select clock_timestamp()")
for t in $MIRROR_TABLES; do
    sql "create table public.snap_$t as select to_jsonb(x) - 'synced_at' - 'last_event_id' - 'raw' - 'reconcile_run' as r
           from workos.$t x where deleted_at is null"
done
sleep 0.2
emu_append "$T/second.jsonl"
wait_caught_up 60
daemon_stop
assert_mirror_matches "$EXPECTED"

# same_set A B WHAT: two queries of one jsonb column hold the same rows.
same_set() {
    local diff
    diff=$(sql "select count(*) from ((($1) except all ($2)) union all (($2) except all ($1))) d")
    [ "$diff" = 0 ] || fail "$3: $diff rows differ
$(sql "(($1) except all ($2)) limit 3")"
}
for t in $MIRROR_TABLES; do
    n1=$(sql "select count(*) from public.snap_$t")
    same_set "select to_jsonb(x) - 'synced_at' - 'last_event_id' - 'raw' - 'reconcile_run' from workos.${t}_as_of('$t1') x" \
        "select r from public.snap_$t" "$t as of the first half"
    # (last_event_id aside: an event that changes nothing moves the mirror's,
    # while _as_of names the last event that changed the row.)
    same_set "select to_jsonb(x) - 'synced_at' - 'last_event_id' - 'raw' - 'reconcile_run' from workos.${t}_as_of(now()) x" \
        "select to_jsonb(x) - 'synced_at' - 'last_event_id' - 'raw' - 'reconcile_run' from workos.$t x where deleted_at is null" "$t as of now"
    assert_eq 0 "$(sql "select count(*) from workos.${t}_as_of('$t0')")" "$t before the first commit"
    log "$t: as of the first half $n1 rows, as of now $(sql "select count(*) from workos.${t}_as_of(now())") rows"
done
# One object's lookup, with the id given.
id=$(sql "select object_id from workos.changes where table_name = 'users' group by 1 order by count(*) desc, 1 limit 1")
same_set "select to_jsonb(x) from workos.users_as_of(now(), '$id') x" \
    "select to_jsonb(x) from workos.users_as_of(now()) x where id = '$id'" "one user's lookup"

# history: the busiest object of each table.
sql "select workos.audit_fill_subjects(100000)" >/dev/null
for t in $MIRROR_TABLES; do
    id=$(sql "select object_id from workos.changes where table_name = '$t' group by 1 order by count(*) desc, 1 limit 1")
    [ -n "$id" ] || continue
    n=$(sql "select count(*) from workos.history('$id')")
    [ "$n" -ge 1 ] || fail "no history for $t $id"
    # The last version is the mirror row, bookkeeping aside.
    assert_eq t "$(sql "select (select jsonb_strip_nulls(state) from workos.history('$id') order by seq desc limit 1)
                         = (select jsonb_strip_nulls(to_jsonb(x) - 'synced_at' - 'last_event_id' - 'raw' - 'reconcile_run') from workos.$t x where id = '$id')")" \
        "$t $id: last version of history is the mirror row"
    # Versions are in seq order, the first an insert, each from an event about the object.
    assert_eq "insert" "$(sql "select operation from workos.history('$id') order by seq limit 1")" "$t $id: first version"
    assert_eq 0 "$(sql "select count(*) from workos.history('$id') h left join workos.events e on e.id = h.event_id
                         where e.object_id is distinct from '$id'")" "$t $id: versions not caused by an event about it"
    log "$t $id: $n versions"
done
