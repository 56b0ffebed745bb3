#!/usr/bin/env bash
# A poison event -- one the validator accepts but PostgreSQL refuses -- never
# stalls the stream, and is kept, not dropped.  One page holds good events
# and one of each kind of refusal the daemon cannot know in advance: an
# 8,000-character last_name (over the btree limit of an index an operator
# added), a value
# the column's type refuses (an operator narrowed users.locale), an
# operator's CHECK and an operator's trigger on the mirror, and an event the
# event log itself refuses (an operator's trigger on workos.events).  The
# good events are mirrored, the poison ones are in the log with their
# mirror effect skipped (or, the last one, in poison_events alone, secrets
# scrubbed), each with the database's error; the cursor moves past them,
# each is logged once, counted, shown by `status`, and polling goes on.
# Then webhooks: a group holding a poison event answers it 2xx (it is
# stored), a good one 2xx, and an invalid one 400, each as its own outcome.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins

T1=2024-02-01T00:00:01.000Z
# Random, so that compression cannot bring it under the index's limit.
# (Cut in the shell: a `head` ending the pipe early would kill `tr` with
# SIGPIPE, which pipefail turns into the test's failure.)
long=$(head -c 7000 /dev/urandom | base64 -w 0 | tr -d "/+=")
long=${long:0:8000}
[ "${#long}" -eq 8000 ] || fail "the random value is ${#long} characters, not 8000"
user() { # ID EMAIL [EXTRA_FIELDS]
    printf '{"object":"user","id":"%s","email":"%s","first_name":"F","last_name":"L","email_verified":true,"created_at":"%s","updated_at":"%s"%s}' \
        "$1" "$2" "$T1" "$T1" "${3:-}"
}
EV_PREFIX=p
EVENTS=$T/events.jsonl
{
    ev user.created "$(user user_good1 g1@example.test)"
    ev user.created "$(user user_long long@example.test | sed "s/\"last_name\":\"L\"/\"last_name\":\"$long\"/")" # 002
    ev user.created "$(user user_good2 g2@example.test)"
    ev user.created "$(user user_blocked b@blocked.test)"                                # 004
    ev user.created "$(user user_trigger t@example.test)"                                # 005
    ev user.created "$(user user_locale l@example.test ',"locale":"en-GB-oxendict-x"')"  # 006
    ev invitation.created "{\"object\":\"invitation\",\"id\":\"inv_refused\",\"email\":\"i@example.test\",\"state\":\"pending\",\"token\":\"SECRET_TOKEN_p7\",\"accept_invitation_url\":\"https://x.test/SECRET_URL_p7\",\"created_at\":\"$T1\",\"updated_at\":\"$T1\"}" # 007
    ev user.created "$(user user_good3 g3@example.test)"
} >"$EVENTS"

S=whsec_poison_test
pg_start
emu_start "$EVENTS"
daemon_config webhook.listen=127.0.0.1:0 "webhook.secret=$S"
daemon_migrate
# What an operator may add to the mirror, and to the log, unknown to the daemon.
q <<'SQL'
ALTER TABLE workos.users ADD CHECK (email NOT LIKE '%@blocked.test');
CREATE INDEX users_last_name_idx ON workos.users (last_name);
ALTER TABLE workos.users ALTER COLUMN locale TYPE varchar(8);
CREATE FUNCTION public.refuse_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 'user_trigger' THEN RAISE EXCEPTION 'user % refused by policy', NEW.id; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_user BEFORE INSERT OR UPDATE ON workos.users
    FOR EACH ROW EXECUTE FUNCTION public.refuse_user();
CREATE FUNCTION public.refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 'evt_p_007' THEN RAISE EXCEPTION 'event % refused by policy', NEW.id; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_event BEFORE INSERT ON workos.events
    FOR EACH ROW EXECUTE FUNCTION public.refuse_event();
SQL
daemon_start
wh_wait_port
wait_caught_up 30
daemon_alive || fail "daemon exited"

assert_eq "user_good1 user_good2 user_good3" \
    "$(sql "select string_agg(id, ' ' order by id) from workos.users")" "good users mirrored, poison ones not"
assert_eq 7 "$(events_count)" "every event but the one the log refuses is in the log"
assert_eq 0 "$(events_count "id = 'evt_p_007'")" "the refused event is not in the log"
got=$(sql "select id || ':' || sqlstate || ':' || in_log || ':' || source from workos.poison_events order by id")
want="evt_p_002:54000:true:events_api
evt_p_004:23514:true:events_api
evt_p_005:P0001:true:events_api
evt_p_006:22001:true:events_api
evt_p_007:P0001:false:events_api"
assert_eq "$want" "$got" "poison_events: id, sqlstate, where it is kept, source"
assert_eq 1 "$(sql "select count(*) from workos.poison_events where id = 'evt_p_002' and error like '%index row%'")" \
    "the database's error text is kept"
assert_eq 1 "$(sql "select count(*) from workos.poison_events where id = 'evt_p_005' and error like '%user_trigger refused by policy%'")" \
    "the trigger's message is kept"
assert_eq "inv_refused|i@example.test|f|f" \
    "$(sql "select data->>'id', data->>'email', data ? 'token', data ? 'accept_invitation_url' from workos.poison_events where id = 'evt_p_007'")" \
    "the refused event's payload is kept, scrubbed"
assert_eq 8000 "$(sql "select length(data->>'last_name') from workos.events where id = 'evt_p_002'")" \
    "the overlong event is in the log as it came"
assert_no_secret_logged "$DAEMON_LOG" SECRET_TOKEN_p7 SECRET_URL_p7
[ "$(q -c "select count(*) from workos.poison_events where raw like '%SECRET%' or data::text like '%SECRET%'")" = 0 ] ||
    fail "a secret reached poison_events"
assert_eq 4 "$(grep -c 'event=poison_event .*stored=log_without_mirror' "$DAEMON_LOG")" "poison events logged once each (log)"
assert_eq 1 "$(grep -c 'event=poison_event id=evt_p_007 .*stored=poison_events' "$DAEMON_LOG")" "the refused event logged once"
check_metric 'workos_syncd_poison_events_total{stored="log"}' 4
check_metric 'workos_syncd_poison_events_total{stored="poison_events"}' 1

status_out=$(syncd status || true)
grep -qx 'poison_events=5' <<<"$status_out" || fail "status does not count the poison events: $status_out"
grep -qx 'poison_newest=evt_p_[0-9]*' <<<"$status_out" || fail "status does not name the newest poison event: $status_out"

# The stream goes on.  An overlong value in an index the schema has is
# bounded up front: kept in the log as malformed, never sent to the mirror.
EV_SEQ=8
{
    ev user.created "$(user user_good4 g4@example.test)"
    ev user.created "$(user user_extid e@example.test ",\"external_id\":\"$long\"")" # 010
} >"$T/more.jsonl"
emu_append "$T/more.jsonl"
wait_caught_up 20 evt_p_010
assert_eq 1 "$(sql "select count(*) from workos.users where id = 'user_good4'")" "polling goes on after poison events"
assert_eq 0 "$(sql "select count(*) from workos.users where id = 'user_extid'")" "an overlong external_id is not mirrored"
assert_eq 1 "$(events_count "id = 'evt_p_010'")" "an overlong external_id is kept in the log"
grep -q 'event=malformed_event id=evt_p_010 .*too long for its index' "$DAEMON_LOG" ||
    fail "the overlong external_id is not reported as malformed"

# Webhooks.  A first one commits while the log is locked; three arrive
# meanwhile and form the next group: a poison one, a good one, an invalid one.
hold_lock() {
    "$PG_BIN/psql" -X -q -c "begin; lock table workos.events in access exclusive mode;
        select pg_sleep(2); commit;" >/dev/null &
    wait
}
spawn lock hold_lock PG_BIN PGHOST PGPORT PGUSER PGDATABASE
lock_pid=$SPAWN_PID
locked() { [ "$(sql "select count(*) from pg_locks where relation = 'workos.events'::regclass and mode = 'AccessExclusiveLock' and granted")" = 1 ]; }
wait_for 10 "the lock on the event log" locked
wh_event() { # EVENT_ID USER_ID EMAIL
    printf '{"object":"event","id":"%s","event":"user.created","data":%s,"created_at":"2026-02-01T00:00:00.000Z"}' \
        "$1" "$(user "$2" "$3")"
}
body_file first.json "$(wh_event evt_WHP_first user_wh_first f@example.test)" >/dev/null
body_file poison.json "$(wh_event evt_WHP_poison user_wh_poison x@blocked.test)" >/dev/null
body_file good.json "$(wh_event evt_WHP_good user_wh_good ok@example.test)" >/dev/null
body_file invalid.json '{"object":"event","event":"user.created","data":{},"created_at":"2026-02-01T00:00:00.000Z"}' >/dev/null
post() { wh_post "$T/$1.json" "$S" >"$T/code_$1"; }
post first &
p1=$!
first_waiting() {
    [ "$(sql "select count(*) from pg_stat_activity
        where application_name = 'workos-syncd' and wait_event_type = 'Lock'")" -ge 1 ]
}
wait_for 10 "the first webhook's commit to wait on the lock" first_waiting
post poison &
p2=$!
post good &
p3=$!
post invalid &
p4=$!
wait "$p1" "$p2" "$p3" "$p4"
wait "$lock_pid" 2>/dev/null || true
assert_eq 200 "$(cat "$T/code_first")" "webhook committed first"
assert_eq 200 "$(cat "$T/code_poison")" "poison webhook answered 2xx once stored"
assert_eq 200 "$(cat "$T/code_good")" "good webhook of the same group"
assert_eq 400 "$(cat "$T/code_invalid")" "invalid webhook of the same group"
assert_eq "evt_WHP_poison:23514:true:webhook" \
    "$(sql "select id || ':' || sqlstate || ':' || in_log || ':' || source from workos.poison_events where id like 'evt_WHP%'")" \
    "the poison webhook is kept"
assert_eq "user_wh_first user_wh_good" \
    "$(sql "select string_agg(id, ' ' order by id) from workos.users where id like 'user_wh%'")" "good webhooks mirrored"
assert_eq 1 "$(events_count "id = 'evt_WHP_poison'")" "the poison webhook is in the log"
check_metric 'workos_syncd_poison_events_total{stored="log"}' 5
check_failures_end
daemon_stop
