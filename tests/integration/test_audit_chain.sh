#!/usr/bin/env bash
# Tamper evidence and protection of the audit trail, on a generated stream
# mirrored by the daemon:
#   - events and changes refuse UPDATE, DELETE and TRUNCATE, also an
#     UPDATE through a path that may not make that change;
#   - `verify` passes (exit 0, head printed), and on copies of the database
#     tampered with by a superuser with the triggers off it reports, each
#     case on its own: an edited payload, a deleted row, a reordered pair
#     of chain items, a truncated tail and a row slipped in unchained
#     (exit 1, the first broken link);
#   - two writers at once still make one chain;
#   - forget refuses a live user, redacts a deleted one in events,
#     changes, its mirror rows, poison events naming it and the failure
#     rollups keyed by its address, records the run, verify still passes,
#     and a second forget finds nothing left;
#   - audit_prune deletes in bounded batches, records a checkpoint and
#     verify still passes.
source "$(dirname "$0")/lib.sh"
require_bins

pg_start
gen_stream 600 1111
emu_start "$EVENTS_SERVED"
daemon_config
daemon_start
wait_caught_up 60
daemon_stop
assert_mirror_matches "$EXPECTED"
n_events=$(sql "select count(*) from workos.events")
[ "$(sql "select count(*) from workos.changes")" -gt 0 ] || fail "no change rows"

# --- append-only ------------------------------------------------------------
refused() { # SQL: must fail with the append-only error
    local out
    if out=$(sql "$1" 2>&1); then fail "not refused: $1"; fi
    printf '%s' "$out" | grep -q 'append-only' || fail "refused for another reason: $1: $out"
}
refused "update workos.events set data = '{}' where id = (select min(id) from workos.events)"
refused "delete from workos.events where id = (select min(id) from workos.events)"
refused "truncate workos.events"
refused "update workos.changes set changes = '{}' where seq = 1"
refused "delete from workos.changes where seq = 1"
refused "truncate workos.changes"
refused "delete from workos.audit_links where link = 1"
refused "update workos.audit_head set link = 0"
refused "begin; set local workos.audit_path = 'subjects'; update workos.events set data = '{}' where id = (select min(id) from workos.events); commit"
refused "begin; set local workos.audit_path = 'retention'; update workos.changes set changes = '{}' where seq = 1; commit"
assert_eq "$n_events" "$(sql "select count(*) from workos.events")" "events after the refusals"
log "append-only: UPDATE, DELETE and TRUNCATE refused"

# --- verify -------------------------------------------------------------------
verify_ok() {
    local rc=0
    syncd verify >"$T/verify.out" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "verify exit $rc: $(cat "$T/verify.out")"
    grep -qx 'state=intact' "$T/verify.out" || fail "verify: $(cat "$T/verify.out")"
    grep -q '^head_hash=[0-9a-f]\{64\}$' "$T/verify.out" || fail "no head hash: $(cat "$T/verify.out")"
}
verify_ok
log "verify: $(grep -E '^(head_link|rows|links)=' "$T/verify.out" | tr '\n' ' ')"

# tampered NAME REASON ID SQL: verify on a copy of the database with SQL run
# by the superuser, triggers off, must exit 1 naming REASON, and ID: the
# missing row, or a row of the broken link.
case_no=0
tampered() {
    local name=$1 reason=$2 id=$3 sqltext=$4 rc=0 db
    case_no=$((case_no + 1))
    db=tamper_$case_no
    sql "create database $db template postgres"
    PGDATABASE=$db q -c "set session_replication_role = replica; $sqltext" >/dev/null
    DATABASE_URL="${DATABASE_URL%/*}/$db" "$SYNCD" verify -c "$SYNCD_CONF" >"$T/verify-$db.out" 2>&1 || rc=$?
    [ "$rc" -eq 1 ] || fail "$name: verify exit $rc, want 1: $(cat "$T/verify-$db.out")"
    grep -qx "reason=$reason" "$T/verify-$db.out" || fail "$name: $(cat "$T/verify-$db.out")"
    if [ -n "$id" ] && ! grep -qx "broken_id=$id" "$T/verify-$db.out"; then
        local link
        link=$(sed -n 's/^broken_link=//p' "$T/verify-$db.out")
        assert_eq t "$(sql "select '$id' = any(refs) from workos.audit_links where link = 0$link")" \
            "$name: $id in the broken link $link"
    fi
    log "$name detected: $(grep -E '^(broken_link|broken_id|reason)=' "$T/verify-$db.out" | tr '\n' ' ')"
    sql "drop database $db"
}
victim=$(sql "select id from workos.events where event = 'user.updated' order by id limit 1")
tampered "edited payload" "link hash differs" "$victim" \
    "update workos.events set data = jsonb_set(data, '{first_name}', '\"Mallory\"') where id = '$victim'"
tampered "deleted row" "row missing" "$victim" "delete from workos.events where id = '$victim'"
# Two rows of one link change places.
pair=$(sql "select link from workos.audit_links where kind = 'event' and cardinality(refs) >= 2 order by link limit 1")
tampered "reordered pair" "link hash differs" "" \
    "update workos.audit_links set refs = refs[2:2] || refs[1:1] || refs[3:] where link = $pair"
# The same two events swap their times: each row differs, the order holds.
tampered "reordered times" "link hash differs" "" \
    "with p as (select refs[1] a, refs[2] b from workos.audit_links where link = $pair),
          t as (select (select created_at from workos.events, p where id = p.a) ta,
                       (select created_at from workos.events, p where id = p.b) tb)
     update workos.events e set created_at = case when e.id = p.a then t.tb else t.ta end
       from p, t where e.id in (p.a, p.b)"
# The last links and their rows are gone; the head still names the end.
tampered "truncated tail" "chain does not reach the head" "" \
    "with gone as (delete from workos.audit_links where link > (select max(link) - 3 from workos.audit_links) returning kind, refs),
          e as (delete from workos.events e using gone g where g.kind = 'event' and e.id = any(g.refs))
     delete from workos.changes c using gone g where g.kind = 'change' and c.seq::text = any(g.refs)"
# verify walks the chain in two parts at once, split where half of the
# rows the links name is reached, the second starting from the stored hash
# of the link before it. A link gone from either side of the split is a
# link missing, not a break of the part after it; and with a break in
# each part, the first is reported.
head=$(sql "select link from workos.audit_head")
mid=$(sql "select min(link) from (select link, sum(cardinality(refs)) over (order by link) c,
                                          sum(cardinality(refs)) over () t
                                     from workos.audit_links) l where c * 2 >= t")
[ "$mid" -ge 2 ] && [ "$mid" -lt "$((head - 1))" ] || fail "chain too short to split: $mid of $head links"
for gone_link in $((mid - 1)) "$mid" $((mid + 1)); do
    tampered "link $gone_link of $head gone (split after $mid)" "link missing" "" \
        "delete from workos.audit_links where link = $gone_link"
    grep -qx "broken_link=$gone_link" "$T/verify-tamper_$case_no.out" ||
        fail "link $gone_link gone: $(cat "$T/verify-tamper_$case_no.out")"
done
# How the batches fall decides which kind of link lies on each side (all of
# the links after the split may be change links), so each side's edit is
# to the first row its link names, an event's payload or a change's columns.
first_row() { # WHERE ORDER: `kind|ref` of the first row of the first such link
    sql "select kind || '|' || refs[1] from workos.audit_links where kind in ('event', 'change') and $1 order by $2 limit 1"
}
edit_of() { # KIND|REF: SQL editing that row
    case $1 in
    event\|*) echo "update workos.events set data = data || '{\"x\": 1}' where id = '${1#*|}';" ;;
    change\|*) echo "update workos.changes set changes = changes || '{\"x\": 1}' where seq = ${1#*|};" ;;
    *) fail "no event or change link on a side of the split: '$1'" ;;
    esac
}
early_row=$(first_row "link <= $mid" "link")
late_row=$(first_row "link > $mid" "link desc")
early=${early_row#*|} late=${late_row#*|}
early_edit=$(edit_of "$early_row")
late_edit=$(edit_of "$late_row")
tampered "edit in the second part" "link hash differs" "$late" "$late_edit"
tampered "edits in both parts" "link hash differs" "$early" "$late_edit $early_edit"
tampered "unchained row" "row not in the chain" "evt_slipped_in" \
    "insert into workos.events (id, event, created_at, data, source) values ('evt_slipped_in', 'user.updated', now(), '{}', 'webhook')"

# --- two writers at once --------------------------------------------------------
writer() { # N PREFIX: N single-row transactions
    local i
    for i in $(seq 1 "$1"); do
        echo "insert into workos.events (id, event, created_at, data, source) values ('evt_$2_$i', 'authentication.password_succeeded', now(), '{\"user_id\": \"user_$2\"}', 'webhook');"
    done | q >/dev/null
}
writer 200 w1 &
w1=$!
writer 200 w2 &
w2=$!
wait "$w1" || fail "writer 1 failed"
wait "$w2" || fail "writer 2 failed"
assert_eq 400 "$(sql "select count(*) from workos.audit_links, unnest(refs) r where r like 'evt_w_\\_%'")" "chained rows of the two writers"
verify_ok
log "two concurrent writers: one chain"

# --- forget -----------------------------------------------------------------------
live=$(sql "select id from workos.users where deleted_at is null order by id limit 1")
gone=$(sql "select u.id from workos.users u where u.deleted_at is not null
             and exists (select 1 from workos.events e where e.data->>'id' = u.id and e.data->>'email' is not null)
           order by exists (select 1 from workos.sessions s where s.user_id = u.id and s.ip_address is not null) desc,
                    id limit 1")
[ -n "$live" ] && [ -n "$gone" ] || fail "the stream has no live or no deleted user"
sql "select workos.audit_fill_subjects(100000)" >/dev/null
rc=0
syncd forget "$live" >"$T/forget.out" 2>&1 || rc=$?
assert_eq 1 "$rc" "forget of a live user: exit"
grep -qx 'state=refused' "$T/forget.out" || fail "forget live: $(cat "$T/forget.out")"
assert_eq 0 "$(sql "select count(*) from workos.audit_erasures")" "erasures after a refusal"
# No id at all is an error, not an erasure of whatever an empty string matches.
rc=0
syncd forget "" >"$T/forget.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "forget of an empty id succeeded: $(cat "$T/forget.out")"
grep -q 'no user id given' "$T/forget.out" || fail "forget '': $(cat "$T/forget.out")"
assert_eq 0 "$(sql "select count(*) from workos.audit_erasures")" "erasures after an empty id"

before=$(sql "select count(*) from workos.events where user_id = '$gone' and data->>'email' is not null")
[ "$before" -gt 0 ] || fail "no event of $gone carries an email"
email=$(sql "select data->>'email' from workos.events where user_id = '$gone' and data->>'email' is not null order by id limit 1")
# Invitations to the user's address, sent by the live user: one the user
# accepted (its invitation.created names the inviter), one no one accepted
# (in upper case, as typed), and one to someone else; applied by the
# daemon, so their change rows name the inviter as well.
inv() { # ID SEQ TYPE EMAIL STATE ACCEPTED_USER
    local t="2026-01-02T00:00:0$2.000Z" acc=null at=null
    [ -n "$6" ] && acc="\"$6\"" && at="\"$t\""
    printf '{"object":"event","id":"evt_inv_%s","event":"%s","created_at":"%s","data":{"object":"invitation","id":"%s","email":"%s","state":"%s","accepted_at":%s,"revoked_at":null,"expires_at":"2026-02-01T00:00:00.000Z","organization_id":null,"inviter_user_id":"%s","accepted_user_id":%s,"created_at":"2026-01-02T00:00:01.000Z","updated_at":"%s"}}\n' \
        "$2" "$3" "$t" "$1" "$4" "$5" "$at" "$live" "$acc" "$t"
}
{
    inv invitation_fg_a 1 invitation.created "$email" pending ""
    inv invitation_fg_a 2 invitation.accepted "$email" accepted "$gone"
    inv invitation_fg_b 3 invitation.created "${email^^}" pending ""
    inv invitation_fg_c 4 invitation.created someone@example.com pending ""
} >"$T/invitations.jsonl"
emu_append "$T/invitations.jsonl"
daemon_start
wait_caught_up 60 evt_inv_4
daemon_stop
assert_eq "$live|$gone|$live" "$(sql "select string_agg(user_id, '|' order by id) from workos.events
                                       where id in ('evt_inv_1', 'evt_inv_3', 'evt_inv_2')")" \
    "who the invitation events name before forget"
n_events=$((n_events + 4))
# A failed sign-in quotes the address in free text too (WorkOS' emulator
# sends this message), beside its fields; in upper case, as typed.  Written
# by hand, its subject columns are not filled: forget fills them itself.
sql "insert into workos.events (id, event, created_at, data, source) values
  ('evt_failed_gone', 'authentication.password_failed', now(),
   jsonb_build_object('type', 'password', 'status', 'failed', 'user_id', '$gone',
                      'email', upper(\$q\$$email\$q\$), 'ip_address', '203.0.113.9',
                      'error', jsonb_build_object('code', 'invalid_credentials',
                          'message', 'Invalid credentials for ''' || upper(\$q\$$email\$q\$) || '''.')),
   'webhook')" >/dev/null
n_events=$((n_events + 1))
# Failed sign-ins with the address and no user (WorkOS sends them for an
# address it does not know): one as written by hand (subjects not filled),
# one as the apply writes it (filled, no user); and someone else's, which
# must stay as it is.
sql "insert into workos.events (id, event, created_at, data, source) values
  ('evt_failed_unknown_1', 'authentication.password_failed', now(),
   jsonb_build_object('type', 'password', 'status', 'failed', 'user_id', null,
                      'email', initcap(\$q\$$email\$q\$), 'ip_address', '203.0.113.10',
                      'user_agent', 'curl/8.0'), 'webhook');
insert into workos.events (id, event, created_at, data, source, object_type) values
  ('evt_failed_unknown_2', 'authentication.magic_auth_failed', now(),
   jsonb_build_object('type', 'magic_auth', 'status', 'failed',
                      'email', \$q\$$email\$q\$, 'ip_address', '203.0.113.11'),
   'webhook', 'authentication'),
  ('evt_failed_other', 'authentication.password_failed', now(),
   jsonb_build_object('type', 'password', 'status', 'failed',
                      'email', 'someone@example.com', 'ip_address', '198.51.100.8'),
   'webhook', 'authentication')" >/dev/null
n_events=$((n_events + 3))
# What else holds the person: a poison event naming the user, one that could
# not be parsed quoting the address, failed sign-ins counted by address; and
# the same for someone else, which must stay.  The rollup rows are of a day
# the stream has none of, which the rollup step may be writing meanwhile.
sql "insert into workos.poison_events (id, event, created_at, source, error, in_log, data, raw) values
  ('evt_poison_1', 'session.created', '2026-01-01T00:00:00Z', 'webhook', 'x', false,
   jsonb_build_object('id', 'session_p1', 'user_id', '$gone', 'ip_address', '203.0.113.9',
                      'user_agent', 'Mozilla/5.0'), null),
  ('evt_poison_2', 'user.updated', null, 'webhook', 'x', false, null,
   '{\"email\": \"' || \$q\$$email\$q\$ || '\", truncated'),
  ('evt_poison_3', 'session.created', '2026-01-01T00:00:00Z', 'webhook', 'x', false,
   jsonb_build_object('id', 'session_p3', 'user_id', 'user_someone_else', 'ip_address', '198.51.100.7'), null);
insert into workos.rollup_fail_account (grain, start, account, failures) values
  ('d', '2020-01-01', \$q\$$email\$q\$, 3), ('d', '2020-01-01', 'someone@example.com', 2);
insert into workos.rollup_fail_pairs (day, ip_address, account) values
  ('2020-01-01', '203.0.113.9', \$q\$$email\$q\$), ('2020-01-01', '203.0.113.9', 'someone@example.com')" >/dev/null
[ "$(sql "select count(*) from workos.sessions where user_id = '$gone' and ip_address is not null")" -gt 0 ] ||
    fail "$gone has no session with an address in the mirror"
# A dry run reaches what the erasure will, and changes nothing.
redacted_before=$(sql "select (select count(*) from workos.events where redacted_at is not null)
                            + (select count(*) from workos.changes where redacted_at is not null)")
syncd forget "$gone" --dry-run >"$T/dry.out" 2>&1 || fail "forget --dry-run $gone: $(cat "$T/dry.out")"
grep -qx 'state=dry_run' "$T/dry.out" || fail "forget --dry-run: $(cat "$T/dry.out")"
assert_eq "$redacted_before|0|$email" \
    "$(sql "select (select count(*) from workos.events where redacted_at is not null)
                 + (select count(*) from workos.changes where redacted_at is not null),
                   (select count(*) from workos.audit_erasures),
                   (select data->>'email' from workos.events where id = 'evt_inv_1')")" \
    "rows redacted, erasures and an invitation's address after a dry run"
syncd forget "$gone" >"$T/forget.out" 2>&1 || fail "forget $gone: $(cat "$T/forget.out")"
grep -qx 'state=forgotten' "$T/forget.out" || fail "forget: $(cat "$T/forget.out")"
assert_eq "$(grep -E '^(events|changes)=' "$T/dry.out")" "$(grep -E '^(events|changes)=' "$T/forget.out")" \
    "what the dry run counted against the erasure"
# The mirror: no row of the user's, in any table, still holds the address
# (invitations to it that another user sent are the inviter's, and stay).
lit="\$q\$$email\$q\$"
assert_eq 0 "$(sql "select (select count(*) from workos.users x where strpos(x::text, $lit) > 0)
    + (select count(*) from workos.organization_memberships x where strpos(x::text, $lit) > 0)
    + (select count(*) from workos.sessions x where strpos(x::text, $lit) > 0)
    + (select count(*) from workos.api_keys x where strpos(x::text, $lit) > 0)
    + (select count(*) from workos.invitations x where x.accepted_user_id = '$gone' and strpos(x::text, $lit) > 0)")" \
    "mirror rows still holding $gone's address"
assert_eq "||" "$(sql "select first_name, last_name, email from workos.users where id = '$gone'")" "$gone's tombstone"
assert_eq 0 "$(sql "select count(*) from workos.sessions where user_id = '$gone' and (ip_address is not null or user_agent is not null)")" \
    "sessions of $gone still holding an address or user agent"
# Blanking the mirror is itself a change, made by the erasure, and redacted.
assert_eq 1 "$(sql "select count(*) from workos.changes where table_name = 'users' and object_id = '$gone' and reconciliation = 'erasure' and event_id is null and redacted_at is not null")" \
    "the erasure's change row of $gone's users row"
assert_eq 0 "$(sql "select count(*) from workos.changes where (user_id = '$gone' or table_name <> 'invitations') and strpos(changes::text, $lit) > 0")" \
    "change rows still holding $gone's address"
assert_eq "||" "$(sql "select data->>'ip_address', data->>'user_agent', raw from workos.poison_events where id = 'evt_poison_1'")" "the poison event naming $gone"
assert_eq "t|" "$(sql "select data is null, raw from workos.poison_events where id = 'evt_poison_2'")" "the unparsed poison event quoting the address"
assert_eq "198.51.100.7" "$(sql "select data->>'ip_address' from workos.poison_events where id = 'evt_poison_3'")" "someone else's poison event"
assert_eq "someone@example.com" "$(sql "select string_agg(account, ',') from workos.rollup_fail_account where start = '2020-01-01'")" "failure rollup keys left"
assert_eq "someone@example.com" "$(sql "select string_agg(account, ',') from workos.rollup_fail_pairs where day = '2020-01-01'")" "failure pair keys left"
assert_eq 0 "$(sql "select count(*) from workos.events where user_id = '$gone' and (data->>'email' is not null or data->>'first_name' is not null or data->>'last_name' is not null)")" "events of $gone still carrying personal data"
assert_eq 0 "$(sql "select count(*) from workos.changes where user_id = '$gone' and (changes->'email'->>'new' is not null or changes->'first_name'->>'new' is not null)")" "changes of $gone still carrying personal data"
# Nor anywhere else in them, in any case (the failed sign-in's message).
assert_eq 0 "$(sql "select count(*) from workos.events where user_id = '$gone' and strpos(lower(data::text || coalesce(context::text, '')), lower($lit)) > 0")" \
    "events of $gone still quoting its address"
assert_eq "invalid_credentials||$gone" "$(sql "select data->'error'->>'code', data->'error'->>'message', user_id from workos.events where id = 'evt_failed_gone'")" \
    "the failed sign-in's error and user after forget"
# The invitations that were the user's are blank everywhere, the rows that
# name the inviter marked with the erasure; someone else's is as it was.
assert_eq "evt_inv_1|$live||t|t
evt_inv_2|$gone||t|t
evt_inv_3|$live||t|t
evt_inv_4|$live|someone@example.com|f|f" \
    "$(sql "select id, user_id, data->>'email', redacted_at is not null, erased_by is not null
              from workos.events where id like 'evt_inv_%' order by id")" "invitation events after forget"
assert_eq "invitation_fg_a||invitation_fg_b||invitation_fg_c|someone@example.com" \
    "$(sql "select string_agg(id || '|' || coalesce(email, ''), '|' order by id) from workos.invitations
              where id like 'invitation_fg_%'")" "invitation rows after forget"
assert_eq 0 "$(sql "select count(*) from workos.changes where table_name = 'invitations'
                     and object_id in ('invitation_fg_a', 'invitation_fg_b')
                     and strpos(lower(changes::text), lower($lit)) > 0")" \
    "invitation change rows still holding $gone's address"
[ "$(sql "select count(*) from workos.changes where object_id = 'invitation_fg_b' and erased_by is not null")" -gt 0 ] ||
    fail "no change row of the unaccepted invitation marked with the erasure"
assert_eq 0 "$(sql "select count(*) from workos.changes where object_id = 'invitation_fg_c' and redacted_at is not null")" \
    "someone else's invitation change rows redacted"
# The failed sign-ins with only the address are the user's now, and blank.
assert_eq "evt_failed_unknown_1|authentication|$gone|||t
evt_failed_unknown_2|authentication|$gone|||t" \
    "$(sql "select id, object_type, user_id, data->>'email', data->>'ip_address', redacted_at is not null
              from workos.events where id like 'evt_failed_unknown_%' order by id")" \
    "failed sign-ins naming only $gone's address after forget"
assert_eq "|someone@example.com|198.51.100.8|f" \
    "$(sql "select user_id, data->>'email', data->>'ip_address', redacted_at is not null
              from workos.events where id = 'evt_failed_other'")" "someone else's failed sign-in"
[ "$(sql "select count(*) from workos.events where user_id = '$gone' and redacted_at is not null")" -ge "$before" ] ||
    fail "redacted rows not marked"
# Ids, types and times stay.
assert_eq "$n_events" "$(sql "select count(*) from workos.events where id not like 'evt_w%'")" "events after forget"
assert_eq "$gone|f" "$(sql "select user_id, forced from workos.audit_erasures")" "the erasure record"
verify_ok
log "forget $gone: $(grep -E '^(events|changes)=' "$T/forget.out" | tr '\n' ' '); verify intact"
# Forgetting again finds nothing left to blank: no change row appended.
n_changes=$(sql "select count(*) from workos.changes")
syncd forget "$gone" >"$T/forget.out" 2>&1 || fail "second forget $gone: $(cat "$T/forget.out")"
assert_eq "$n_changes" "$(sql "select count(*) from workos.changes")" "change rows after a second forget"
# A forced erasure of a live user is recorded as forced.
syncd forget "$live" --force >"$T/forget.out" 2>&1 || fail "forget --force: $(cat "$T/forget.out")"
assert_eq t "$(sql "select forced from workos.audit_erasures where user_id = '$live'")" "forced erasure recorded"
verify_ok
# A redacted row edited afterwards is still caught: its fixed part is checked.
tampered "edited redacted row" "link hash differs" "" \
    "update workos.events set event = 'user.created' where id = (select id from workos.events where user_id = '$gone' and redacted_at is not null and event <> 'user.created' order by id limit 1)"
# A row made to look redacted -- its original digest kept, its payload
# rewritten, its subject set to an erased user (the subject columns are
# outside the digest) -- is caught: no erasure in the chain names it.
victim=$(sql "select id from workos.events where redacted_at is null and user_id not in ('$gone', '$live') order by id limit 1")
launder="set user_id = '$gone', redacted_at = now(),
    redacted_digest = workos.audit_event_data_digest(data, context), data = '{\"forged\": true}'"
tampered "laundered row" "link hash differs" "$victim" "update workos.events $launder where id = '$victim'"
# Nor can it be slipped into an erasure's list: the erasure's link breaks;
# nor into an erasure of its own outside the chain.
tampered "laundered row named by an erasure" "link hash differs" "" \
    "update workos.events $launder where id = '$victim';
     update workos.audit_erasures set refs = refs || array['event:$victim']
      where id = (select min(id) from workos.audit_erasures)"
tampered "laundered row named by an unchained erasure" "row not in the chain" "" \
    "update workos.events $launder where id = '$victim';
     insert into workos.audit_erasures (user_id, forced, events, changes, refs)
     values ('$gone', false, 1, 0, array['event:$victim'])"

# --- retention --------------------------------------------------------------------
cut=$(sql "select created_at from workos.events where id not like 'evt_w%' order by created_at offset 100 limit 1")
old=$(sql "select count(*) from workos.events where created_at < '$cut'")
assert_eq 40 "$(sql "select workos.audit_prune('$cut', null, 40)")" "first prune batch"
left=$((old - 40))
assert_eq "$left" "$(sql "select workos.audit_prune('$cut', null, 100000)")" "second prune batch"
assert_eq 0 "$(sql "select workos.audit_prune('$cut', null, 100000)")" "nothing left to prune"
assert_eq 0 "$(sql "select count(*) from workos.events where created_at < '$cut'")" "events older than the cut"
assert_eq "2|$old" "$(sql "select count(*), max(total) from workos.audit_checkpoints")" "checkpoints"
sql "select c.last_hash = l.hash from workos.audit_checkpoints c join workos.audit_links l on l.link = c.last_link order by c.id desc limit 1" |
    grep -qx t || fail "checkpoint hash is not its link's hash"
assert_eq "$old" "$(sql "select count(*) from workos.audit_pruned")" "digests kept for the pruned rows"
# authentication.* has its own, shorter horizon.
auth=$(sql "select count(*) from workos.events where event like 'authentication.%' and id not like 'evt_w%'")
pruned=$(sql "select workos.audit_prune(null, now() + interval '1 day', 100000)")
[ "$pruned" -ge "$auth" ] || fail "auth prune removed $pruned, want >= $auth"
assert_eq 0 "$(sql "select count(*) from workos.events where event like 'authentication.%'")" "authentication events left"
[ "$(sql "select count(*) from workos.events")" -gt 0 ] || fail "the auth horizon pruned other events"
verify_ok
grep -qx "pruned=$((old + pruned))" "$T/verify.out" || fail "verify's pruned count: $(cat "$T/verify.out")"
log "pruned $old then $pruned authentication events; verify intact"
# Once pruned, a row deleted by hand is still a missing row, not a pruned one.
tampered "deleted row after pruning" "row missing" "" \
    "delete from workos.events where id = (select id from workos.events order by created_at limit 1)"
