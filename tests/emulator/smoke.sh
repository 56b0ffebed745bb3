#!/usr/bin/env bash
# Self-check of the WorkOS emulator: generates a small stream, serves it on a
# kernel-chosen port and drives it with curl — paging with both spellings of
# the type filter, byte-exact payloads, parameter errors, every fault kind,
# appends, rate limiting, the request log, webhook sending and a clean
# SIGTERM exit.
#
#   tests/emulator/smoke.sh [path/to/workos-emulator]
#
# Builds nothing. Needs bash, curl and jq. Prints "N passed, N failed" last
# and exits non-zero when anything failed.
set -u

EMU=${1:-$(dirname "$0")/workos-emulator}
KEY=sk_test_smoke
T=$(mktemp -d "${TMPDIR:-/tmp}/emu-smoke.XXXXXX")
PIDS=()
pass=0
fail=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}

for tool in curl jq; do
    command -v "$tool" >/dev/null || { bad "$tool is installed"; finish; }
done
[ -x "$EMU" ] || { bad "emulator binary at $EMU"; finish; }

# start_server NAME ARGS... : starts a server, waits for its port file.
start_server() {
    local name=$1
    shift
    rm -f "$T/$name.port"
    "$EMU" serve --port 0 --port-file "$T/$name.port" --api-key "$KEY" "$@" \
        2>"$T/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    eval "${name}_PID=$pid"
    local i
    for i in $(seq 100); do
        [ -s "$T/$name.port" ] && break
        sleep 0.05
    done
    [ -s "$T/$name.port" ] || return 1
    eval "${name}_BASE=http://127.0.0.1:$(cat "$T/$name.port")"
    grep -q "^listening port=$(cat "$T/$name.port")\$" "$T/$name.err"
}

# stop_server NAME : SIGTERM, wait (bounded), succeed when it exited 0.
stop_server() {
    local pid
    eval "pid=\$${1}_PID"
    kill -TERM "$pid" 2>/dev/null || return 1
    local i
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        return 1
    fi
    wait "$pid"
}

# get BASE PATH [curl args...] : status code on stdout, body in $T/body,
# headers in $T/hdr, curl's exit code in $T/rc.
get() {
    local base=$1 path=$2
    shift 2
    local rc=0
    curl -s --max-time 10 -H "Authorization: Bearer $KEY" -o "$T/body" -D "$T/hdr" \
        -w '%{http_code}' "$@" "$base$path" || rc=$?
    echo "$rc" >"$T/rc"
}

# page_all BASE QUERY LIMIT : every id of an ascending listing, via the cursor.
page_all() {
    local base=$1 q=$2 limit=$3 after='' n=0 st
    : >"$T/ids"
    while :; do
        st=$(get "$base" "/events?order=asc&limit=$limit$q${after:+&after=$after}")
        [ "$st" = 200 ] || return 1
        jq -r '.data[].id' "$T/body" >>"$T/ids" || return 1
        after=$(jq -r '.list_metadata.after // empty' "$T/body")
        [ -z "$after" ] && return 0
        n=$((n + 1))
        [ "$n" -le 1000 ] || return 1
    done
}

header() { tr -d '\r' <"$T/hdr" | sed -n "s/^$1: //Ip" | head -1; }

# ---- generate ----
"$EMU" gen --count 500 --seed 42 --out "$T/ev.jsonl" --expect "$T/exp.jsonl" 2>"$T/gen.err"
check "gen exits 0" test $? -eq 0
check "gen wrote 500 events" test "$(wc -l <"$T/ev.jsonl")" -eq 500
check "gen summary on stderr" grep -q '^events=500 objects=[0-9]' "$T/gen.err"
check "expected state has one line per object" \
    test "$(wc -l <"$T/exp.jsonl")" -eq "$(sed -n 's/.*objects=\([0-9]*\).*/\1/p' "$T/gen.err")"
check "expected lines are well-formed" jq -s -e 'all(.[];
        (.table | IN("users", "organization_memberships", "invitations", "sessions",
                     "api_keys", "organizations"))
        and (.id | type) == "string" and (.updated_at | type) == "string"
        and (.deleted | type) == "boolean" and (.fields | type) == "object")' \
    "$T/exp.jsonl" >/dev/null
"$EMU" gen --count 500 --seed 42 --out "$T/ev2.jsonl" 2>/dev/null
check "gen is deterministic per seed" cmp -s "$T/ev.jsonl" "$T/ev2.jsonl"
jq -r '.id' "$T/ev.jsonl" >"$T/all_ids"
check "event ids strictly increase" sort -C -u "$T/all_ids"
check "created_at strictly increases" \
    sort -C -u <(jq -r '.created_at' "$T/ev.jsonl")

# ---- serve: paging ----
start_server main --events "$T/ev.jsonl" --request-log "$T/req.log"
check "server starts and reports its port" test $? -eq 0
B=${main_BASE:-http://127.0.0.1:1}

page_all "$B" "" 37
check "unfiltered paging covers every event once, in order" cmp -s "$T/ids" "$T/all_ids"

TYPES='user.created user.updated user.deleted session.created'
jq -r 'select(.event=="user.created" or .event=="user.updated" or .event=="user.deleted"
              or .event=="session.created") | .id' "$T/ev.jsonl" >"$T/want_ids"
check "filter subset is not trivial" test "$(wc -l <"$T/want_ids")" -gt 50

page_all "$B" "&events=user.created%2Cuser.updated,user.deleted%2Csession.created" 7
check "events= comma filter pages exactly the matching events" cmp -s "$T/ids" "$T/want_ids"

q=''
for t in $TYPES; do q="$q&events%5B%5D=$t"; done
page_all "$B" "$q" 9
check "events[]= filter (encoded) pages exactly the matching events" cmp -s "$T/ids" "$T/want_ids"
page_all "$B" "&events[]=user.created&events[]=user.updated&events[]=user.deleted&events[]=session.created" 100
check "events[]= filter (literal) pages exactly the matching events" cmp -s "$T/ids" "$T/want_ids"

st=$(get "$B" "/events?events=no.such_type")
check "unknown type filter returns nothing" \
    test "$st" = 200 -a "$(jq '.data|length' "$T/body")" = 0 -a "$(jq -r '.list_metadata.after' "$T/body")" = null

st=$(get "$B" "/events")
check "default listing: 10 newest first" \
    test "$st" = 200 -a "$(jq -r '.data[].id' "$T/body" | tr '\n' ' ')" = "$(tail -n 10 "$T/all_ids" | tac | tr '\n' ' ')"
check "content type is application/json" test "$(header Content-Type)" = application/json
check "list envelope" jq -e '.object=="list" and .list_metadata.before==null' "$T/body" >/dev/null

mid=$(sed -n 250p "$T/all_ids")
st=$(get "$B" "/events?order=desc&limit=3&after=$mid")
check "desc paging continues with older events" \
    test "$(jq -r '.data[].id' "$T/body" | tr '\n' ' ')" = "$(sed -n '247,249p' "$T/all_ids" | tac | tr '\n' ' ')"

# Byte-exact: the page must embed the stored line unchanged.
n=$(grep -n -m1 '\\u' "$T/ev.jsonl" | cut -d: -f1)
n=${n:-2}
prev=$(sed -n "$((n - 1))p" "$T/all_ids")
st=$(get "$B" "/events?order=asc&limit=1&after=$prev")
line=$(sed -n "${n}p" "$T/ev.jsonl")
more=$(sed -n "${n}p" "$T/all_ids")
printf '{"object":"list","data":[%s],"list_metadata":{"before":null,"after":"%s"}}' "$line" "$more" >"$T/want_body"
check "events are served byte for byte (escapes kept)" cmp -s "$T/body" "$T/want_body"

ts=$(sed -n 100p "$T/ev.jsonl" | jq -r .created_at)
st=$(get "$B" "/events?order=asc&limit=5&range_start=$ts")
check "range_start starts at the matching event" \
    test "$(jq -r '.data[0].id' "$T/body")" = "$(sed -n 100p "$T/all_ids")"
te=$(sed -n 104p "$T/ev.jsonl" | jq -r .created_at)
st=$(get "$B" "/events?order=asc&limit=100&range_start=$ts&range_end=$te")
check "range_end is inclusive and ends the listing" \
    test "$(jq '.data|length' "$T/body")" = 5 -a "$(jq -r '.list_metadata.after' "$T/body")" = null

# ---- parameter errors ----
st=$(curl -s --max-time 10 -o "$T/body" -w '%{http_code}' "$B/events")
check "missing bearer token: 401" test "$st" = 401 -a "$(jq -r .message "$T/body")" = Unauthorized
st=$(curl -s --max-time 10 -H 'Authorization: Bearer wrong' -o "$T/body" -w '%{http_code}' "$B/events")
check "wrong bearer token: 401" test "$st" = 401
for q in limit=0 limit=101 limit=abc order=up after=evt_unknown \
    "after=$mid&range_start=2026-01-01T00:00:00Z" range_start=yesterday; do
    st=$(get "$B" "/events?$q")
    check "$q: 422 with a JSON error" test "$st" = 422 -a "$(jq -r '.errors[0].field' "$T/body")" != null
done

# ---- faults ----
fault() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$B/_emulator/faults?$1"; }

check "queue 429" test "$(fault 'kind=429&count=1&retry_after=7')" = 200
st=$(get "$B" "/events?limit=1")
check "429 fault: status, Retry-After and JSON body" \
    test "$st" = 429 -a "$(header Retry-After)" = 7 -a "$(jq -r .message "$T/body")" != null
st=$(get "$B" "/events?limit=1")
check "fault applies to one request only" test "$st" = 200

fault 'kind=500' >/dev/null
st=$(get "$B" "/events?limit=1")
check "500 fault" test "$st" = 500 -a "$(jq -r .message "$T/body")" != null

fault 'kind=delay&delay_ms=1500' >/dev/null
start=$(date +%s%N)
st=$(get "$B" "/events?limit=1" --max-time 0.5)
check "delay fault exceeds a 0.5 s client timeout" test "$(cat "$T/rc")" = 28
st=$(get "$B" "/events?limit=1")
check "server answers normally after the delayed request" test "$st" = 200

fault 'kind=delay&delay_ms=300' >/dev/null
start=$(date +%s%N)
st=$(get "$B" "/events?limit=2")
elapsed=$((($(date +%s%N) - start) / 1000000))
check "delay fault answers normally, late (${elapsed} ms)" \
    test "$st" = 200 -a "$elapsed" -ge 250 -a "$(jq '.data|length' "$T/body")" = 2

fault 'kind=truncate' >/dev/null
st=$(get "$B" "/events?limit=5")
check "truncate fault: 200 with Content-Length matching a cut body" \
    test "$st" = 200 -a "$(header Content-Length)" = "$(wc -c <"$T/body")"
check "truncate fault: body is not valid JSON" bash -c "! jq -e . '$T/body' >/dev/null 2>&1"

fault 'kind=drop' >/dev/null
st=$(get "$B" "/events?limit=1")
check "drop fault: connection closed without a response" test "$(cat "$T/rc")" = 52

fault 'kind=disorder' >/dev/null
st=$(get "$B" "/events?order=asc&limit=10")
check "disorder fault: page in reverse created_at order" \
    test "$st" = 200 -a "$(jq -r '.data[].id' "$T/body" | tr '\n' ' ')" = "$(head -n 10 "$T/all_ids" | tac | tr '\n' ' ')"
check "disorder fault: cursor still the last event in listing order" \
    test "$(jq -r '.list_metadata.after' "$T/body")" = "$(sed -n 10p "$T/all_ids")"

fault 'kind=500&count=5' >/dev/null
st=$(curl -s --max-time 10 -X DELETE -o "$T/body" -w '%{http_code}' "$B/_emulator/faults")
check "DELETE /_emulator/faults clears the queue" test "$st" = 200 -a "$(jq .cleared "$T/body")" = 5
st=$(get "$B" "/events?limit=1")
check "no fault after clearing" test "$st" = 200
check "unknown fault kind rejected" test "$(fault 'kind=explode')" = 400

# ---- append while serving ----
last=$(tail -n 1 "$T/all_ids")
cat >"$T/extra.jsonl" <<'EOF'
{"object":"event","event":"user.created","data":{"object":"user","id":"user_smoke","email":"smoke@example.test","updated_at":"2099-01-01T00:00:00.000Z"},"environment_id":null,"id":"evt_ZZZZZZZZZZZZZZZZZZZZZZZZZ1","created_at":"2099-01-01T00:00:00.000Z"}
{"object":"event","event":"future.thing","data":{},"id":"evt_ZZZZZZZZZZZZZZZZZZZZZZZZZ2","created_at":"2099-01-01T00:00:00.001Z"}
EOF
st=$(curl -s --max-time 10 -X POST --data-binary "@$T/extra.jsonl" -o "$T/body" -w '%{http_code}' "$B/_emulator/events")
check "append answers 200 with the count" test "$st" = 200 -a "$(jq .appended "$T/body")" = 2
st=$(get "$B" "/events?order=asc&after=$last")
check "appended events are listed after the old end" \
    test "$(jq -r '[.data[].id]|join(" ")' "$T/body")" = "evt_ZZZZZZZZZZZZZZZZZZZZZZZZZ1 evt_ZZZZZZZZZZZZZZZZZZZZZZZZZ2"
st=$(curl -s --max-time 10 -X POST --data-binary "@$T/extra.jsonl" -o "$T/body" -w '%{http_code}' "$B/_emulator/events")
check "duplicate ids are rejected" test "$st" = 400
st=$(curl -s --max-time 10 -X POST --data-binary 'not json' -o "$T/body" -w '%{http_code}' "$B/_emulator/events")
check "invalid JSONL is rejected" test "$st" = 400

st=$(curl -s --max-time 10 -o "$T/body" -w '%{http_code}' "$B/_emulator/stats")
check "stats report requests, events and last_after" \
    jq -e ".requests > 20 and .events == 502 and .last_after == \"$last\"" "$T/body" >/dev/null

# ---- request log ----
requests=$(jq .requests "$T/body")
check "one request-log line per /events request" test "$(wc -l <"$T/req.log")" -eq "$requests"
re='^ts_ms=[0-9]{13} status=[0-9]{1,3} fault=(-|429|500|delay|truncate|drop|disorder|rate_limit) after=[^ ]+ range_start=[^ ]+ range_end=[^ ]+ limit=[^ ]+ filter=[^ ]+ returned=[0-9]+ last=[^ ]+$'
check "request-log lines match the documented format" \
    test "$(grep -Evc "$re" "$T/req.log")" -eq 0
check "request log records the 429 fault" grep -q 'status=429 fault=429 ' "$T/req.log"
check "request log records the drop fault" grep -q 'status=0 fault=drop ' "$T/req.log"
check "request log records filters" \
    grep -q 'filter=user.created,user.updated,user.deleted,session.created ' "$T/req.log"

stop_server main
check "SIGTERM: clean exit 0" test $? -eq 0

# ---- second server: start-up faults, restricted filter form, rate limit ----
start_server alt --events "$T/ev.jsonl" --filter-param 'events[]' --fault 500:1 --fault 429:1:3 \
    --rate-limit 5
check "second server starts" test $? -eq 0
A=${alt_BASE:-http://127.0.0.1:1}
st=$(get "$A" "/events?limit=1")
check "--fault 500:1 applies at start" test "$st" = 500
st=$(get "$A" "/events?limit=1")
check "--fault 429:1:3 applies next, Retry-After 3" test "$st" = 429 -a "$(header Retry-After)" = 3
sleep 1.1
st=$(get "$A" "/events?order=asc&limit=100&events=user.created")
check "--filter-param events[]: the comma form is ignored" \
    test "$st" = 200 -a "$(jq '[.data[].event]|unique|length' "$T/body")" -gt 1
st=$(get "$A" "/events?order=asc&limit=100&events[]=user.created")
check "--filter-param events[]: the array form filters" \
    test "$st" = 200 -a "$(jq -r '[.data[].event]|unique|join(",")' "$T/body")" = user.created
limited=0
for i in 1 2 3 4 5 6; do
    st=$(get "$A" "/events?limit=1")
    if [ "$st" = 429 ] && [ "$(header Retry-After)" = 1 ]; then limited=$((limited + 1)); fi
done
check "--rate-limit 5: the burst gets 429 with Retry-After: 1" test "$limited" -ge 1
sleep 1.1
st=$(get "$A" "/events?limit=1")
check "rate limit window rolls over" test "$st" = 200
stop_server alt
check "second server: clean exit 0" test $? -eq 0

# ---- state APIs: the list endpoints over the state the stream leads to ----
"$EMU" gen --users 60 --count 1500 --seed 5 --out "$T/pop.jsonl" --expect "$T/pexp" 2>"$T/pgen.err"
check "gen --users 60 --count 1500 exits 0 with 1500 events" \
    test $? -eq 0 -a "$(wc -l <"$T/pop.jsonl")" -eq 1500
jq -r .event "$T/pop.jsonl" >"$T/pop_types"
check "gen --users: the environment is founded first (organization, then 60 users)" \
    test "$(head -n 1 "$T/pop_types")" = organization.created \
    -a "$(grep -n -m 60 '^user.created$' "$T/pop_types" | tail -n 1 | cut -d: -f1)" \
    -lt "$(grep -n -m 1 '^user.updated$' "$T/pop_types" | cut -d: -f1)"
"$EMU" gen --users 40 --out "$T/pop2.jsonl" 2>"$T/pgen2.err"
check "gen --users alone writes just the population" \
    grep -q '^events=[0-9]* objects=[0-9]* deleted=0 organizations=2 users=40 ' "$T/pgen2.err"
check "the population has memberships, sessions, API keys and a revoked session" \
    bash -c "for t in organization_membership.created session.created api_key.created session.revoked; do grep -q \"\\\"event\\\":\\\"\$t\\\"\" '$T/pop2.jsonl' || exit 1; done"

start_server st --events "$T/pop.jsonl" --state-log "$T/state.log"
check "state server starts" test $? -eq 0
SB=${st_BASE:-http://127.0.0.1:1}

# jqt ARGS... : jq -e on a file, quiet (a test, not a filter).
jqt() { jq "$@" >/dev/null; }
# want TABLE JQ_CONDITION : ids of the expected live objects of TABLE, in id order.
want() {
    jq -r --arg t "$1" "select(.table == \$t and (.deleted | not)) | select($2) | .id" "$T/pexp" |
        LC_ALL=C sort
}
# page_state BASE PATH QUERY LIMIT ORDER : every object of a listing through
# the after cursor; ids in $T/sids, objects (JSONL) in $T/sobjs.
page_state() {
    local base=$1 path=$2 q=$3 limit=$4 order=$5 after='' n=0 st
    : >"$T/sids"
    : >"$T/sobjs"
    while :; do
        st=$(get "$base" "$path?order=$order&limit=$limit$q${after:+&after=$after}")
        [ "$st" = 200 ] || return 1
        jq -c '.data[]' "$T/body" >>"$T/sobjs" || return 1
        jq -r '.data[].id' "$T/body" >>"$T/sids"
        after=$(jq -r '.list_metadata.after // empty' "$T/body")
        [ -z "$after" ] && return 0
        n=$((n + 1))
        [ "$n" -le 1000 ] || return 1
    done
}
same_ids() { cmp -s "$T/sids" <(want "$1" "$2"); }

for ep in organizations:organizations user_management/users:users \
    user_management/invitations:invitations; do
    path=/${ep%%:*} table=${ep##*:}
    page_state "$SB" "$path" "" 7 asc
    check "GET $path asc pages exactly the live $table" same_ids "$table" true
    check "GET $path lists a non-trivial number of $table" test "$(wc -l <"$T/sids")" -gt 5
    page_state "$SB" "$path" "" 100 desc
    check "GET $path desc is the reverse order" cmp -s "$T/sids" <(want "$table" true | tac)
done
st=$(get "$SB" "/user_management/users")
check "default listing: 10 objects, newest first, list envelope" \
    test "$st" = 200 -a "$(jq -r '.data[].id' "$T/body" | tr '\n' ' ')" = "$(want users true | tail -n 10 | tac | tr '\n' ' ')"
check "list envelope and first-page cursors" \
    jqt -e '.object == "list" and .list_metadata.before == null and (.list_metadata.after | type) == "string"' "$T/body" >/dev/null

# before: the page just before a cursor, in listing order.
want users true >"$T/uids"
c=$(sed -n 20p "$T/uids")
st=$(get "$SB" "/user_management/users?order=asc&limit=5&before=$c")
check "before= (asc) returns the 5 objects just before the cursor" \
    test "$(jq -r '[.data[].id]|join(" ")' "$T/body")" = "$(sed -n '15,19p' "$T/uids" | tr '\n' ' ' | sed 's/ $//')"
check "before= page: both cursors set in the middle" \
    test "$(jq -r .list_metadata.before "$T/body")" = "$(sed -n 15p "$T/uids")" \
    -a "$(jq -r .list_metadata.after "$T/body")" = "$(sed -n 19p "$T/uids")"
st=$(get "$SB" "/user_management/users?order=desc&limit=3&before=$c")
check "before= (desc) returns the 3 newer objects next to the cursor" \
    test "$(jq -r '[.data[].id]|join(" ")' "$T/body")" = "$(sed -n '21,23p' "$T/uids" | tac | tr '\n' ' ' | sed 's/ $//')"
st=$(get "$SB" "/user_management/users?order=asc&limit=3&after=$c")
check "after= (asc) continues after the cursor, before= set" \
    test "$(jq -r '.data[0].id' "$T/body")" = "$(sed -n 21p "$T/uids")" \
    -a "$(jq -r .list_metadata.before "$T/body")" = "$(sed -n 21p "$T/uids")"
st=$(get "$SB" "/organizations?order=asc&limit=100")
check "a complete page has both cursors null" \
    jqt -e '.list_metadata.before == null and .list_metadata.after == null' "$T/body" >/dev/null

# Objects as the list endpoints carry them.
page_state "$SB" /user_management/users "" 100 asc
check "listed users match the expected fields" bash -c "jq -c '{id, email, first_name, last_name, email_verified, external_id, locale}' '$T/sobjs' | LC_ALL=C sort >'$T/got_f'
    jq -c --slurp -r 'map(select(.table==\"users\" and (.deleted|not))) | .[] | {id} + .fields' '$T/pexp' | LC_ALL=C sort >'$T/want_f'
    cmp -s '$T/got_f' '$T/want_f'"
check "users carry name and metadata" jqt -s -e 'all(.[]; has("name") and has("metadata"))' "$T/sobjs" >/dev/null
page_state "$SB" /user_management/invitations "" 100 asc
check "invitations carry the secrets token and accept_invitation_url" \
    jqt -s -e 'all(.[]; (.token | type) == "string" and (.token as $t | .accept_invitation_url | contains($t)))' "$T/sobjs" >/dev/null

# Filters.
email=$(jq -r 'select(.table == "users" and (.deleted | not)) | .fields.email' "$T/pexp" | sed -n 3p)
enc=$(jq -rn --arg e "$email" '$e|@uri')
page_state "$SB" /user_management/users "&email=$enc" 10 asc
check "users?email= lists exactly that user" same_ids users ".fields.email == \"$email\""
org=$(want organizations true | head -n 1)
jq -r --arg o "$org" 'select(.table == "organization_memberships" and (.deleted | not) and .fields.organization_id == $o) | .fields.user_id' "$T/pexp" |
    LC_ALL=C sort -u >"$T/org_users"
page_state "$SB" /user_management/users "&organization_id=$org" 3 asc
check "users?organization_id= lists the members (any status)" \
    test -s "$T/org_users" -a "$(cat "$T/sids")" = "$(join "$T/org_users" <(want users true))"
page_state "$SB" /user_management/invitations "&organization_id=$org" 2 asc
check "invitations?organization_id= filters" same_ids invitations ".fields.organization_id == \"$org\""
iemail=$(jq -r 'select(.table == "invitations") | .fields.email' "$T/pexp" | sed -n 2p)
page_state "$SB" /user_management/invitations "&email=$(jq -rn --arg e "$iemail" '$e|@uri')" 10 asc
check "invitations?email= filters" same_ids invitations ".fields.email == \"$iemail\""

# Memberships: a scope is required, active only by default.
st=$(get "$SB" "/user_management/organization_memberships")
check "memberships without user_id or organization_id: 422" \
    test "$st" = 422 -a "$(jq -r '.errors[0].field' "$T/body")" = organization_id
st=$(get "$SB" "/user_management/organization_memberships?organization_id=$org&statuses=active,gone")
check "memberships with an unknown status: 422 naming statuses" \
    test "$st" = 422 -a "$(jq -r '.errors[0].field' "$T/body")" = statuses
for q in limit=0 limit=101 order=sideways; do
    st=$(get "$SB" "/organizations?$q")
    check "state API $q: 422" test "$st" = 422 -a "$(jq -r '.errors[0].field' "$T/body")" = "${q%%=*}"
done
om_all=0
for o in $(want organizations true); do
    page_state "$SB" /user_management/organization_memberships "&organization_id=$o" 4 asc
    same_ids organization_memberships ".fields.organization_id == \"$o\" and .fields.status == \"active\"" || om_all=1
    page_state "$SB" /user_management/organization_memberships "&organization_id=$o&statuses=active,inactive,pending" 4 desc
    LC_ALL=C sort -o "$T/sids" "$T/sids"
    same_ids organization_memberships ".fields.organization_id == \"$o\"" || om_all=1
    page_state "$SB" /user_management/organization_memberships "&organization_id=$o&statuses%5B%5D=inactive&statuses[]=pending" 100 asc
    same_ids organization_memberships ".fields.organization_id == \"$o\" and .fields.status != \"active\"" || om_all=1
done
check "memberships per organization: active by default, statuses= and statuses[]= select" test "$om_all" = 0
check "the membership statuses are varied" \
    test "$(jq -r 'select(.table == "organization_memberships" and (.deleted | not)) | .fields.status' "$T/pexp" | sort -u | wc -l)" = 3
check "listed memberships carry roles, external_id and metadata" \
    jqt -s -e 'length > 0 and all(.[]; (.roles | type) == "array" and (.roles | length) > 0 and has("external_id") and has("metadata"))' "$T/sobjs" >/dev/null
u=$(jq -r --arg o "$org" 'select(.table == "organization_memberships" and (.deleted | not) and .fields.organization_id == $o) | .fields.user_id' "$T/pexp" | head -n 1)
page_state "$SB" /user_management/organization_memberships "&user_id=$u&statuses=active,inactive,pending" 1 asc
check "memberships?user_id= lists that user's memberships" same_ids organization_memberships ".fields.user_id == \"$u\""

# Sessions: active only, per live user.
sess_all=0 sess_n=0
for u in $(want users true); do
    page_state "$SB" "/user_management/users/$u/sessions" "" 2 asc || sess_all=1
    same_ids sessions ".fields.user_id == \"$u\" and .fields.status == \"active\"" || sess_all=1
    sess_n=$((sess_n + $(wc -l <"$T/sids")))
done
check "sessions per user: exactly the active ones ($sess_n)" test "$sess_all" = 0 -a "$sess_n" -gt 10
check "revoked sessions exist and are not listed" \
    test "$(want sessions '.fields.status == "revoked"' | wc -l)" -gt 0
st=$(get "$SB" "/user_management/users/user_nobody/sessions")
check "sessions of an unknown user: 404" test "$st" = 404
du=$(jq -r 'select(.table == "users" and .deleted) | .id' "$T/pexp" | head -n 1)
st=$(get "$SB" "/user_management/users/$du/sessions")
check "sessions of a deleted user: 404" test -n "$du" -a "$st" = 404

# API keys: per live organization, never the secret value.
key_all=0
: >"$T/allkeys"
for o in $(want organizations true); do
    page_state "$SB" "/organizations/$o/api_keys" "" 2 desc || key_all=1
    cat "$T/sobjs" >>"$T/allkeys"
    LC_ALL=C sort -o "$T/sids" "$T/sids"
    same_ids api_keys ".fields.owner_id == \"$o\"" || key_all=1
done
check "api_keys per organization: exactly the unrevoked keys" test "$key_all" = 0 -a -s "$T/allkeys"
check "listed API keys have expires_at and no value" \
    jqt -s -e 'all(.[]; has("expires_at") and (has("value") | not))' "$T/allkeys" >/dev/null
check "some generated api_key.created events carry a value" grep -q '"value":"sk_live_' "$T/pop.jsonl"
st=$(get "$SB" "/organizations/org_nowhere/api_keys")
check "api_keys of an unknown organization: 404" test "$st" = 404
st=$(curl -s --max-time 10 -o "$T/body" -w '%{http_code}' "$SB/organizations")
check "state API without a bearer token: 401" test "$st" = 401
st=$(curl -s --max-time 10 -X POST -H "Authorization: Bearer $KEY" -o "$T/body" -w '%{http_code}' "$SB/organizations")
check "state API POST: 405" test "$st" = 405

# The state follows events appended while a listing runs.
st=$(get "$SB" "/user_management/users?order=asc&limit=5")
cur=$(jq -r .list_metadata.after "$T/body")
victim=$(sed -n 10p "$T/uids")
vsnap=$(jq -c --arg v "$victim" 'select(.data.id == $v)' "$T/pop.jsonl" | tail -n 1 | jq -c .data)
printf '%s\n' \
    '{"object":"event","event":"user.created","data":{"object":"user","id":"user_ZZZZZZZZZZZZZZZZZZZZZZZZZ9","email":"late@example.test","updated_at":"2099-01-01T00:00:00.000Z","created_at":"2099-01-01T00:00:00.000Z"},"id":"evt_ZZZZZZZZZZZZZZZZZZZZZZZZZ7","created_at":"2099-01-01T00:00:00.000Z"}' \
    "{\"object\":\"event\",\"event\":\"user.deleted\",\"data\":{\"id\":\"$victim\"},\"id\":\"evt_ZZZZZZZZZZZZZZZZZZZZZZZZZ8\",\"created_at\":\"2099-01-01T00:00:00.001Z\"}" \
    >"$T/late.jsonl"
st=$(curl -s --max-time 10 -X POST --data-binary "@$T/late.jsonl" -o /dev/null -w '%{http_code}' "$SB/_emulator/events")
check "append during a listing" test "$st" = 200 -a -n "$vsnap"
: >"$T/rest"
while [ -n "$cur" ] && [ "$cur" != null ]; do
    get "$SB" "/user_management/users?order=asc&limit=5&after=$cur" >/dev/null
    jq -r '.data[].id' "$T/body" >>"$T/rest"
    cur=$(jq -r .list_metadata.after "$T/body")
done
check "the rest of the listing shows the created user" grep -qx user_ZZZZZZZZZZZZZZZZZZZZZZZZZ9 "$T/rest"
check "the rest of the listing no longer shows the deleted user" bash -c "! grep -qx '$victim' '$T/rest'"
st=$(get "$SB" "/user_management/users?email=$(jq -rn --arg e "$(echo "$vsnap" | jq -r .email)" '$e|@uri')")
check "a trimmed delete (id only) removes the object" test "$st" = 200 -a "$(jq '.data|length' "$T/body")" = 0

# Faults aimed at the state APIs.
sfault() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$SB/_emulator/faults?$1"; }
sfault 'kind=500' >/dev/null
st=$(get "$SB" "/organizations")
check "a fault without scope leaves the state APIs alone" test "$st" = 200
st=$(get "$SB" "/events?limit=1")
check "... and hits /events" test "$st" = 500
sfault 'kind=500&scope=state' >/dev/null
st=$(get "$SB" "/events?limit=1")
check "scope=state: /events unaffected" test "$st" = 200
st=$(get "$SB" "/user_management/users")
check "scope=state: the next state request gets 500" test "$st" = 500
sfault 'kind=429&scope=all&retry_after=4' >/dev/null
st=$(get "$SB" "/organizations")
check "scope=all 429 on a state request, Retry-After 4" test "$st" = 429 -a "$(header Retry-After)" = 4
sfault 'kind=truncate&scope=state' >/dev/null
st=$(get "$SB" "/organizations?limit=100")
check "truncate on a state request: invalid JSON" \
    bash -c "[ '$st' = 200 ] && ! jq -e . '$T/body' >/dev/null 2>&1"
sfault 'kind=disorder&scope=state' >/dev/null
st=$(get "$SB" "/organizations?order=asc&limit=100")
check "disorder on a state request: page reversed" \
    test "$(jq -r '.data[].id' "$T/body" | tr '\n' ' ')" = "$(want organizations true | tac | tr '\n' ' ')"
get "$SB" "/organizations?order=asc&limit=2" >/dev/null
first=$(jq -c '[.data[].id]' "$T/body")
cur=$(jq -r .list_metadata.after "$T/body")
sfault 'kind=restart&scope=state' >/dev/null
st=$(get "$SB" "/organizations?order=asc&limit=2&after=$cur")
check "restart on a state request: the first page again, its own cursor" \
    test "$st" = 200 -a "$cur" != null -a "$(jq -c '[.data[].id]' "$T/body")" = "$first" \
    -a "$(jq -r .list_metadata.after "$T/body")" = "$cur"
sfault "kind=500&scope=state&after=$cur" >/dev/null
st=$(get "$SB" "/organizations?order=asc&limit=2")
check "a fault for one after: a request without it passes" test "$st" = 200
st=$(get "$SB" "/organizations?order=asc&limit=2&after=$cur")
check "a fault for one after: the request with it takes it" test "$st" = 500
sfault 'kind=drop&scope=state' >/dev/null
st=$(get "$SB" "/organizations")
check "drop on a state request" test "$(cat "$T/rc")" = 52
sfault 'kind=delay&scope=state&delay_ms=400' >/dev/null
start=$(date +%s%N)
st=$(get "$SB" "/organizations")
elapsed=$((($(date +%s%N) - start) / 1000000))
check "delay on a state request (${elapsed} ms)" test "$st" = 200 -a "$elapsed" -ge 350
check "bad fault scope rejected" test "$(sfault 'kind=500&scope=everything')" = 400

curl -s --max-time 10 -o "$T/stats0" "$SB/_emulator/stats"
for i in 1 2 3; do get "$SB" "/organizations/$org/api_keys" >/dev/null; done
get "$SB" "/user_management/users/$u/sessions" >/dev/null
curl -s --max-time 10 -o "$T/stats1" "$SB/_emulator/stats"
check "stats count requests per endpoint" \
    test "$(jq -rn --slurpfile a "$T/stats0" --slurpfile b "$T/stats1" \
        '[$b[0].endpoints.api_keys - $a[0].endpoints.api_keys, $b[0].endpoints.sessions - $a[0].endpoints.sessions, $b[0].state_requests - $a[0].state_requests] | join(",")')" = "3,1,4"
check "stats report live objects per table" \
    jqt -e --argjson n "$(want organizations true | wc -l)" '.objects.organizations == $n and .objects.users > 0' "$T/stats1" >/dev/null
check "state log: one line per state request" \
    test "$(wc -l <"$T/state.log")" = "$(jq .state_requests "$T/stats1")"
re='^ts_ms=[0-9]{13} status=[0-9]{1,3} fault=[^ ]+ endpoint=(organizations|users|invitations|organization_memberships|sessions|api_keys) path=[^ ]+ query=[^ ]+ returned=[0-9]+$'
check "state-log lines match the documented format" test "$(grep -Evc "$re" "$T/state.log")" -eq 0
check "the /events request log holds no state requests" bash -c "! grep -q endpoint= '$T/req.log'"
stop_server st
check "state server: clean exit 0" test $? -eq 0

# ---- rate limits across /events and the state APIs ----
start_server rl --events "$T/pop.jsonl" --limit-overall 6/3s --limit-user-management 3/3s
check "rate-limited server starts" test $? -eq 0
R=${rl_BASE:-http://127.0.0.1:1}
codes=''
for i in 1 2 3 4; do codes="$codes$(get "$R" "/user_management/users?limit=1") "; done
check "--limit-user-management 3/3s: the 4th /user_management read gets 429" test "$codes" = "200 200 200 429 "
ra=$(header Retry-After)
check "... with Retry-After 1..3" test "${ra:-0}" -ge 1 -a "${ra:-0}" -le 3
codes=''
for i in 1 2 3 4; do codes="$codes$(get "$R" "/organizations?limit=1") "; done
check "--limit-overall 6/3s: other endpoints share the overall budget" test "$codes" = "200 200 200 429 "
st=$(get "$R" "/events?limit=1")
check "... and /events counts against it too" test "$st" = 429
curl -s --max-time 10 -o "$T/body" "$R/_emulator/stats"
check "stats: peaks and refusals per limit" \
    jqt -e '.limits.overall.limit == 6 and .limits.overall.window_ms == 3000
        and .limits.overall.peak_admitted == 6 and .limits.overall.peak == 9
        and .limits.user_management.peak_admitted == 3 and .limits.user_management.peak == 4
        and .limits.user_management.limited == 1 and .rate_limited == 3' "$T/body" >/dev/null
sleep 3.1
st=$(get "$R" "/user_management/invitations?limit=1")
check "the windows roll over" test "$st" = 200
stop_server rl
check "rate-limited server: clean exit 0" test $? -eq 0

# ---- latency ----
start_server lat --events "$T/pop.jsonl" --latency 250
check "latency server starts" test $? -eq 0
L=${lat_BASE:-http://127.0.0.1:1}
lat_ok=0
for path in "/events?limit=1" "/organizations" "/user_management/users/$u/sessions" "/events?limit=0"; do
    start=$(date +%s%N)
    st=$(get "$L" "$path")
    elapsed=$((($(date +%s%N) - start) / 1000000))
    [ "$elapsed" -ge 240 ] || lat_ok=1
done
check "--latency 250: every API answer (200 and 422) waits" test "$lat_ok" = 0
start=$(date +%s%N)
lpids=()
for i in 1 2 3 4 5 6; do
    curl -s --max-time 10 -H "Authorization: Bearer $KEY" -o /dev/null "$L/events?limit=1" &
    lpids+=($!)
done
wait "${lpids[@]}"
elapsed=$((($(date +%s%N) - start) / 1000000))
check "--latency does not block: 6 parallel requests in ${elapsed} ms" test "$elapsed" -lt 1200
start=$(date +%s%N)
curl -s --max-time 10 -o /dev/null "$L/_emulator/stats"
elapsed=$((($(date +%s%N) - start) / 1000000))
check "control endpoints answer at once (${elapsed} ms)" test "$elapsed" -lt 200
stop_server lat
check "latency server: clean exit 0" test $? -eq 0

# ---- range filters ignored ----
ts=$(sed -n 100p "$T/ev.jsonl" | jq -r .created_at)
te=$(sed -n 104p "$T/ev.jsonl" | jq -r .created_at)
start_server rend --events "$T/ev.jsonl" --ignore-range end
check "ignore-range end server starts" test $? -eq 0
RE=${rend_BASE:-http://127.0.0.1:1}
st=$(get "$RE" "/events?order=asc&limit=10&range_start=$ts&range_end=$te")
check "--ignore-range end: range_start holds, the listing runs on past range_end" \
    test "$st" = 200 -a "$(jq -r '[.data[].id] | join(" ")' "$T/body")" = "$(sed -n 100,109p "$T/all_ids" | tr '\n' ' ' | sed 's/ $//')"
st=$(get "$RE" "/events?order=asc&limit=1&range_end=yesterday")
check "--ignore-range end: a bad range_end is not validated" test "$st" = 200
curl -s --max-time 10 -o "$T/body" "$RE/_emulator/stats"
check "stats: ignore_range end" jq -e '.ignore_range == "end"' "$T/body" >/dev/null
stop_server rend
check "ignore-range end server: clean exit 0" test $? -eq 0
start_server rboth --events "$T/ev.jsonl" --ignore-range both
check "ignore-range both server starts" test $? -eq 0
RA=${rboth_BASE:-http://127.0.0.1:1}
st=$(get "$RA" "/events?order=asc&limit=3&range_start=$ts&range_end=$te")
check "--ignore-range both: a ranged listing starts at the first event" \
    test "$st" = 200 -a "$(jq -r '[.data[].id] | join(" ")' "$T/body")" = "$(sed -n 1,3p "$T/all_ids" | tr '\n' ' ' | sed 's/ $//')"
st=$(get "$RA" "/events?order=asc&limit=1&after=$(sed -n 200p "$T/all_ids")&range_start=$ts")
check "--ignore-range both: after with range_start continues after" \
    test "$st" = 200 -a "$(jq -r '.data[0].id' "$T/body")" = "$(sed -n 201p "$T/all_ids")"
curl -s --max-time 10 -o "$T/body" "$RA/_emulator/stats"
check "stats: ignore_range both" jq -e '.ignore_range == "both"' "$T/body" >/dev/null
stop_server rboth
check "ignore-range both server: clean exit 0" test $? -eq 0
"$EMU" serve --events "$T/ev.jsonl" --port 0 --ignore-range start 2>/dev/null
check "--ignore-range start: usage error 64" test $? -eq 64

# ---- retention ----
jq -r .id "$T/pop.jsonl" >"$T/pids"
start_server ret --events "$T/pop.jsonl" --retention-events 100 --expired-cursor 400
check "retention server starts" test $? -eq 0
RB=${ret_BASE:-http://127.0.0.1:1}
page_all "$RB" "" 30
check "--retention-events 100: /events serves the newest 100" cmp -s "$T/ids" <(tail -n 100 "$T/pids")
st=$(get "$RB" "/events?order=desc&limit=100")
check "desc listing ends at the oldest retained event" \
    test "$(jq '.data|length' "$T/body")" = 100 -a "$(jq -r .list_metadata.after "$T/body")" = null
st=$(get "$RB" "/events?order=asc&limit=1&after=$(sed -n 50p "$T/pids")")
check "--expired-cursor 400: an expired after gets 400 naming after" \
    test "$st" = 400 -a "$(jq -r '.errors[0].field' "$T/body")" = after
st=$(get "$RB" "/events?order=asc&limit=1&after=$(sed -n 1450p "$T/pids")")
check "a retained after continues" test "$st" = 200 -a "$(jq -r '.data[0].id' "$T/body")" = "$(sed -n 1451p "$T/pids")"
st=$(get "$RB" "/events?order=asc&limit=2&range_start=2000-01-01T00:00:00Z")
check "range_start before the window starts at the window" \
    test "$(jq -r '.data[0].id' "$T/body")" = "$(sed -n 1401p "$T/pids")"
page_state "$RB" /user_management/users "" 100 asc
check "the state APIs still list everything" same_ids users true
curl -s --max-time 10 -o "$T/body" "$RB/_emulator/stats"
check "stats: retained, oldest_retained, expired_cursors" \
    jqt -e --arg o "$(sed -n 1401p "$T/pids")" '.retained == 100 and .oldest_retained == $o and .expired_cursors == 1' "$T/body" >/dev/null
stop_server ret
check "retention server: clean exit 0" test $? -eq 0

# --retention SECONDS, relative to the newest event; expired cursors restart.
jq -r '.created_at | capture("^(?<s>[^.]*)\\.(?<ms>[0-9]{3})Z$") | ((.s + "Z" | fromdate) * 1000 + (.ms | tonumber))' \
    "$T/pop.jsonl" >"$T/pms"
newest=$(tail -n 1 "$T/pms")
secs=600
first=$(awk -v c=$((newest - secs * 1000)) '$1 >= c { print NR; exit }' "$T/pms")
start_server ret2 --events "$T/pop.jsonl" --retention $secs --expired-cursor restart
check "retention (seconds) server starts" test $? -eq 0 -a "${first:-1}" -gt 1
R2=${ret2_BASE:-http://127.0.0.1:1}
st=$(get "$R2" "/events?order=asc&limit=3")
check "--retention $secs: the first event served is the first within $secs s of the newest" \
    test "$(jq -r '.data[0].id' "$T/body")" = "$(sed -n "${first}p" "$T/pids")"
st=$(get "$R2" "/events?order=asc&limit=3&after=$(head -n 1 "$T/pids")")
check "--expired-cursor restart: an expired after restarts from the window start" \
    test "$st" = 200 -a "$(jq -r '.data[0].id' "$T/body")" = "$(sed -n "${first}p" "$T/pids")"
st=$(get "$R2" "/events?order=asc&limit=3&after=evt_never_existed")
check "an unknown after is still 422" test "$st" = 422
stop_server ret2
check "retention (seconds) server: clean exit 0" test $? -eq 0

# ---- send: deliver signed events; a server's append endpoint is the sink ----
: >"$T/empty.jsonl"
start_server sink --events "$T/empty.jsonl"
check "sink server starts with an empty stream" test $? -eq 0
S=${sink_BASE:-http://127.0.0.1:1}
"$EMU" send --url "$S/_emulator/events" --secret whsec_smoke --events "$T/ev.jsonl" --first 100 \
    --count 60 --order shuffle --seed 3 --log "$T/send.log" 2>"$T/send.err"
check "send delivers 60 events, exit 0" test $? -eq 0
check "send summary" grep -q '^deliveries=60 attempts=60 ok=60 unexpected=0$' "$T/send.err"
check "send log has one line per attempt" \
    test "$(grep -Ec '^ts_ms=[0-9]+ id=evt_[0-9A-Z]+ attempt=1 signature=valid status=200 curl=0$' "$T/send.log")" = 60
curl -s --max-time 10 -o "$T/body" "$S/_emulator/stats"
check "the sink received exactly those 60 events" test "$(jq .events "$T/body")" = 60
"$EMU" send --url "$S/_emulator/events" --secret whsec_smoke --events "$T/ev.jsonl" --first 100 \
    --count 1 --retries 0 2>"$T/send.err"
check "send exits 1 when an answer is not 2xx" test $? -eq 1
"$EMU" send --url "http://127.0.0.1:1/none" --secret s --events "$T/ev.jsonl" --count 1 \
    --retries 1 --timeout-ms 500 2>"$T/send.err"
check "send retries connection errors, then fails" \
    grep -q '^deliveries=1 attempts=2 ok=0 unexpected=1$' "$T/send.err"
stop_server sink
check "sink server: clean exit 0" test $? -eq 0

check "no sanitizer reports" bash -c "! grep -q 'Sanitizer' '$T'/*.err"

finish
