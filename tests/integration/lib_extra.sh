# Helpers for the webhook, reload, sd_notify and high-availability tests,
# sourced after lib.sh (which provides $T, log, fail, now_ms, track_pid, ...).
#
# Webhook requests are signed here the way WorkOS signs them:
#   WorkOS-Signature: t=<unix ms>, v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
# with openssl, so a test can make any request by hand (stale, future, wrong
# secret, altered body). The sd_notify reader is a few lines of python3 from
# the standard library; nothing needs installing.

# shellcheck shell=bash

# --- the daemon's HTTP listener ------------------------------------------------

# wh_wait_port [LOG] [TIMEOUT_S]: wait for the `event=listening` line the
# daemon started last wrote to LOG (default $DAEMON_LOG); sets WH_PORT,
# WH_BASE (http://127.0.0.1:PORT) and WH_URL (the webhook path).
wh_wait_port() {
    local logf=${1:-$DAEMON_LOG} timeout=${2:-15} line='' deadline
    deadline=$(($(now_ms) + timeout * 1000))
    while :; do
        # Only a line written since the last start counts (the log is appended).
        line=$(awk '/^=== harness: daemon start/ { l = "" } / event=listening / { l = $0 } END { print l }' \
            "$logf" 2>/dev/null || true)
        [ -n "$line" ] && break
        [ "$(now_ms)" -lt "$deadline" ] || fail "no event=listening line in $(basename "$logf") within ${timeout}s"
        sleep 0.05
    done
    WH_PORT=$(reqlog_field "$line" port)
    local path
    path=$(reqlog_field "$line" path)
    [[ $WH_PORT =~ ^[0-9]+$ ]] && [ "$WH_PORT" -gt 0 ] || fail "cannot parse the port from: $line"
    WH_BASE="http://127.0.0.1:$WH_PORT"
    WH_URL="$WH_BASE${path:-/webhooks/workos}"
}

# wh_signature FILE SECRET [T_MS]: the WorkOS-Signature header value for the
# raw bytes of FILE, signed at T_MS (default now).
wh_signature() {
    local file=$1 secret=$2 t=${3:-$(now_ms)} mac
    mac=$({
        printf '%s.' "$t"
        cat "$file"
    } | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
    [[ $mac =~ ^[0-9a-f]{64}$ ]] || fail "openssl did not produce an HMAC-SHA256"
    printf 't=%s, v1=%s' "$t" "$mac"
}

# http_code URL [CURL ARGS...]: one request, prints the status ("000" when
# there was no answer within 10 s). The body of the answer lands in $T/http_body.
http_code() {
    local url=$1 code
    shift
    code=$(curl -s -o "$T/http_body" -w '%{http_code}' --max-time 10 "$@" "$url" 2>/dev/null) || true
    printf '%s' "${code:-000}"
}

# wh_ready: /readyz answers 200 now. Wait for readiness with
# `wait_for N what wh_ready`: each try is a new request. (A `$(http_code ...)`
# written among wait_for's arguments is expanded once, before the first try,
# so an early 503, sent while the daemon is still connecting, would be
# tested again and again until the timeout.)
wh_ready() {
    [ "$(http_code "$WH_BASE/readyz")" = 200 ]
}

# wh_post_header FILE HEADER_VALUE: POST the raw bytes of FILE to the webhook
# path with the given WorkOS-Signature value (empty: no header); prints the status.
wh_post_header() {
    local file=$1 hv=$2
    local -a h=(-H 'Content-Type: application/json' -H 'Expect:')
    [ -n "$hv" ] && h+=(-H "WorkOS-Signature: $hv")
    http_code "$WH_URL" -X POST "${h[@]}" --data-binary "@$file"
}

# wh_post FILE SECRET [T_MS]: sign FILE with SECRET (at T_MS, default now),
# POST it to the webhook path, print the status.
wh_post() {
    wh_post_header "$1" "$(wh_signature "$1" "$2" "${3:-}")"
}

# body_file NAME TEXT: write TEXT (no trailing newline) to $T/NAME; prints the path.
body_file() {
    printf '%s' "$2" >"$T/$1"
    printf '%s' "$T/$1"
}

# user_event_json EVENT_ID USER_ID: a complete, valid user.created event
# (made-up ids, so that it is in no generated stream).
user_event_json() {
    printf '{"object":"event","id":"%s","event":"user.created","data":{"object":"user","id":"%s","email":"%s@hand.test","first_name":"Ann","last_name":"Lee","email_verified":true,"profile_picture_url":null,"last_sign_in_at":null,"external_id":null,"metadata":{},"created_at":"2026-02-01T00:00:00.000Z","updated_at":"2026-02-01T00:00:00.000Z"},"created_at":"2026-02-01T00:00:00.000Z"}' \
        "$1" "$2" "$2"
}

# metric LINE_PREFIX: the value of the /metrics sample whose name and labels
# are exactly LINE_PREFIX (e.g. 'workos_syncd_webhook_responses_total{status="401"}');
# empty when absent.
metric() {
    local text
    text=$(curl -s --max-time 5 "$WH_BASE/metrics" 2>/dev/null) || true
    awk -v k="$1" '$1 == k && v == "" { v = $2 } END { print v }' <<<"$text"
}

# check_metric LINE_PREFIX WANT: the sample has the value WANT (an integer);
# a mismatch is recorded in CHECK_FAILURES (see check_failures_end), so one
# run reports every wrong counter.
CHECK_FAILURES=()
check_metric() {
    local got
    got=$(metric "$1")
    got=${got%%.*}
    if [ "$got" != "$2" ]; then
        CHECK_FAILURES+=("/metrics $1: want $2, got ${got:-<absent>}")
        printf '[%s] CHECK FAILED: /metrics %s: want %s, got %s\n' "$TEST_NAME" "$1" "$2" "${got:-<absent>}" >&2
    fi
}

# check_failures_end: fail when any check_* recorded a failure.
check_failures_end() {
    [ "${#CHECK_FAILURES[@]}" -eq 0 ] && return 0
    fail "${#CHECK_FAILURES[@]} check(s) failed: $(printf '%s; ' "${CHECK_FAILURES[@]}")"
}

# --- the event log -------------------------------------------------------------

# events_count [WHERE]: rows of the event log (optionally filtered).
events_count() {
    q -c "select count(*) from $SYNCD_SCHEMA.events ${1:+where $1}"
}

# mirror_rows: total rows over every mirror table.
mirror_rows() {
    local t union=
    for t in $MIRROR_TABLES; do
        [ -n "$union" ] && union="$union + "
        union="$union(select count(*) from $SYNCD_SCHEMA.$t)"
    done
    q -c "select $union"
}

# assert_ids_stored IDS_FILE WHAT: every event id listed in IDS_FILE (one a
# line) is in the event log.
assert_ids_stored() {
    local file=$1 what=$2 out=$T/ids-missing.txt n
    [ -s "$file" ] || fail "assert_ids_stored: $file is empty"
    q >"$out" 2>&1 <<EOF || fail "id comparison failed: $(cat "$out")"
create temporary table ids(id text);
\\copy ids(id) from '$file'
select 'not stored: ' || i.id from (select distinct id from ids) i
 where not exists (select 1 from $SYNCD_SCHEMA.events e where e.id = i.id);
EOF
    n=$(wc -l <"$out" | tr -d ' ')
    if [ "$n" -ne 0 ]; then
        head -n 20 "$out" >&2
        fail "$n $what not in the event log"
    fi
    log "all $(sort -u "$file" | wc -l | tr -d ' ') $what are in the event log"
}

# --- background loops --------------------------------------------------------------

# spawn NAME FUNCTION [VAR...]: run the shell function FUNCTION in a bash
# process of its own, with the named variables in its environment, and track
# it. Its command line names $T/NAME, so the harness clean-up (which signals
# only processes whose command line names the test's work directory) stops
# it; on SIGTERM it also stops the child it is waiting for. FUNCTION should
# start long-running children in the background and `wait` for them, so that
# SIGTERM is acted on at once. Sets SPAWN_PID.
spawn() {
    local name=$1 fn=$2 v
    shift 2
    local -a envs=()
    for v in "$@"; do envs+=("$v=${!v}"); done
    env "${envs[@]}" bash -c "set -u
$(declare -f "$fn")
trap 'kill \$(jobs -p) 2>/dev/null; exit 143' TERM
$fn" "$T/$name" &
    SPAWN_PID=$!
    track_pid "$SPAWN_PID"
}

# --- logs ------------------------------------------------------------------------

# log_ms LINE: the ts= of a daemon log line as unix ms.
log_ms() {
    local ts
    ts=$(reqlog_field "$1" ts)
    [ -n "$ts" ] || return 1
    date -u -d "$ts" +%s%3N
}

# first_line LOG PATTERN: the first line of LOG matching the ERE PATTERN.
first_line() {
    grep -m 1 -E -e "$2" "$1" 2>/dev/null || true
}

# wait_log TIMEOUT_S LOG PATTERN [FROM_LINE]: wait until LOG holds a line
# matching the ERE PATTERN (from line FROM_LINE on, default 1).
wait_log() {
    local timeout=$1 logf=$2 pat=$3 from=${4:-1} deadline
    deadline=$(($(now_ms) + timeout * 1000))
    # awk reads the whole file: `tail | grep -q` can die of SIGPIPE (pipefail).
    until awk -v from="$from" -v pat="$pat" 'NR >= from && $0 ~ pat { f = 1 } END { exit !f }' \
        "$logf" 2>/dev/null; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "no line matching '$pat' in $(basename "$logf") within ${timeout}s"
        sleep 0.05
    done
}

# line_count FILE: lines in FILE (0 when it does not exist).
line_count() {
    if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi
}

# assert_no_secret_logged FILE SECRET...: none of the values occurs in FILE.
assert_no_secret_logged() {
    local file=$1 s
    shift
    for s in "$@"; do
        if grep -q -F -e "$s" "$file"; then
            grep -n -F -e "$s" "$file" | head -n 3 >&2
            fail "a secret value appears in $(basename "$file")"
        fi
    done
}

# --- sd_notify -------------------------------------------------------------------

# notify_start SOCKET OUT: bind a unix datagram socket at SOCKET and append
# every line of every datagram to OUT as `<unix ms> <datagram no> <line>`.
# Sets NOTIFY_READER_PID.
notify_start() {
    local sock=$1 out=$2
    rm -f "$sock" "$sock.up"
    : >"$out"
    python3 -u -c '
import socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(path + ".up", "w").close()
n = 0
with open(out, "a", buffering=1) as f:
    while True:
        data = s.recv(65536)
        n += 1
        ms = int(time.time() * 1000)
        for line in data.decode("utf-8", "replace").split("\n"):
            if line:
                f.write("%d %d %s\n" % (ms, n, line))
' "$sock" "$out" 2>>"$T/notify-reader.stderr" &
    NOTIFY_READER_PID=$!
    track_pid "$NOTIFY_READER_PID"
    local deadline=$(($(now_ms) + 10000))
    until [ -e "$sock.up" ]; do
        proc_alive "$NOTIFY_READER_PID" || fail "notify reader exited: $(cat "$T/notify-reader.stderr")"
        [ "$(now_ms)" -lt "$deadline" ] || fail "notify reader did not bind $sock"
        sleep 0.05
    done
}

# notify_drain SOCKET OUT: returns once the reader has written every datagram
# sent to SOCKET before the call. The reader stamps a datagram when it reads
# it, so on a loaded machine a stopped daemon's last ones can be stamped
# after a later `now_ms`; a datagram of our own, read after them (a unix
# datagram socket keeps their order), marks the end.
NOTIFY_DRAINS=0
notify_drain() {
    local sock=$1 out=$2 mark
    NOTIFY_DRAINS=$((NOTIFY_DRAINS + 1))
    mark="X-DRAIN=$NOTIFY_DRAINS"
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), sys.argv[1])
' "$sock" "$mark" || fail "could not write to $sock"
    drained() { [ "$(notify_count "$out" "$mark")" -ge 1 ]; }
    wait_for 10 "the notify reader to read $mark" drained
}

notify_stop() {
    [ -n "${NOTIFY_READER_PID:-}" ] || return 0
    kill_pid "$NOTIFY_READER_PID"
    reap "$NOTIFY_READER_PID"
    NOTIFY_READER_PID=
}

# notify_count OUT LINE [FROM_MS]: datagram lines equal to LINE (or starting
# with it when LINE ends in '='), received at or after FROM_MS.
notify_count() {
    awk -v want="$2" -v from="${3:-0}" '
        $1 >= from {
            line = substr($0, length($1) + length($2) + 3)
            if (line == want || (want ~ /=$/ && index(line, want) == 1)) n++
        }
        END { print n + 0 }' "$1"
}

# notify_first OUT LINE [FROM_MS]: `<ms> <datagram no>` of the first such line, or nothing.
notify_first() {
    awk -v want="$2" -v from="${3:-0}" '
        $1 >= from {
            line = substr($0, length($1) + length($2) + 3)
            if (line == want || (want ~ /=$/ && index(line, want) == 1)) { print $1, $2; exit }
        }' "$1"
}

# send_slices NAME N STEP COUNT SEED [emu send option...]: N concurrent
# `emu send` runs of $EVENTS_SERVED to $WH_URL signed with $SECRET. Run k
# sends COUNT events from k * STEP, shuffled with seed SEED + k, and logs to
# $T/NAME-k.log (its stderr to $T/NAME-k.stderr). Fails the test when any
# run fails; logs each run's summary line.
send_slices() {
    local name=$1 n=$2 step=$3 count=$4 seed=$5 k rc
    shift 5
    local pids=()
    for ((k = 0; k < n; k++)); do
        "$EMU" send --url "$WH_URL" --secret "$SECRET" --events "$EVENTS_SERVED" \
            --first $((k * step)) --count "$count" --order shuffle --seed $((seed + k)) "$@" \
            --log "$T/$name-$k.log" 2>"$T/$name-$k.stderr" &
        pids+=($!)
        track_pid "${pids[-1]}"
    done
    for ((k = 0; k < n; k++)); do
        rc=0
        wait "${pids[$k]}" || rc=$?
        [ "$rc" -eq 0 ] || fail "$name $k: exit $rc: $(cat "$T/$name-$k.stderr")"
        log "$name $k: $(tail -n 1 "$T/$name-$k.stderr")"
    done
}
