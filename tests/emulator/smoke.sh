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
re='^ts_ms=[0-9]{13} status=[0-9]{1,3} fault=(-|429|500|delay|truncate|drop|disorder|rate_limit) after=[^ ]+ range_start=[^ ]+ limit=[^ ]+ filter=[^ ]+ returned=[0-9]+ last=[^ ]+$'
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

check "no sanitizer reports" bash -c "! grep -q 'Sanitizer' '$T/main.err' '$T/alt.err' '$T/sink.err'"

finish
