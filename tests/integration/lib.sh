# Integration-test harness for workos-syncd, sourced by every test_*.sh.
#
# A test gets its own temporary directory ($T), a throwaway PostgreSQL
# (pg_start), the project's WorkOS emulator (emu_start) and the daemon under
# test (daemon_config, daemon_start). Everything listens on loopback only and
# every wait is bounded. An EXIT trap kills whatever the test started, stops
# PostgreSQL, prints the tails of the daemon, emulator and PostgreSQL logs when
# the test failed, and removes $T when it passed.
#
# Helpers that check something call `fail MESSAGE` (exit 1) when the check
# does not hold, so a test is a straight list of steps.

# shellcheck shell=bash
set -euo pipefail

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$IT_DIR/../.." && pwd)
SYNCD=${SYNCD:-$REPO_ROOT/daemon/workos-syncd}
EMU=${EMU:-$REPO_ROOT/tests/emulator/workos-emulator}
TEST_NAME=$(basename "${0%.sh}")

# The daemon reads these from the environment; a developer's shell must not
# leak into a test.
unset WORKOS_API_KEY WORKOS_BASE_URL WORKOS_SYNCD_LISTEN WORKOS_WEBHOOK_SECRET \
    WORKOS_SYNCD_LOG_LEVEL DATABASE_URL PGSERVICE PGPASSWORD PGOPTIONS PGCLIENTENCODING \
    2>/dev/null || true

# --- workspace -------------------------------------------------------------

# run.sh hands each test a work directory so it can clean up after a test
# that was killed; alone, a test makes its own.
if [ -n "${SYNCD_IT_WORKDIR:-}" ]; then
    T=$SYNCD_IT_WORKDIR
    mkdir -p "$T"
else
    T=$(mktemp -d "${TMPDIR:-/tmp}/syncd-it.XXXXXX")
fi
# PostgreSQL runs as another user when we are root; it must reach $T/pg.
chmod 711 "$T"
: >"$T/pids"

HARNESS_START_MS=$(date +%s%3N)
DAEMON_PID=
DAEMON_LOG=$T/daemon.log
DAEMON_STARTS=0
DAEMON_MIGRATED=
EMU_PID=
EMU_URL=
EMU_KEY=sk_test_emulator
EMU_LOG=$T/emu-requests.log
EMU_STDERR=$T/emu.stderr
PG_DIR=
SYNCD_SCHEMA=workos
SYNCD_CONF=$T/syncd.conf

now_ms() { date +%s%3N; }

# log MESSAGE: progress line on stderr, with seconds since the test started.
log() {
    local t=$(($(now_ms) - HARNESS_START_MS))
    printf '[%s +%d.%03ds] %s\n' "$TEST_NAME" $((t / 1000)) $((t % 1000)) "$*" >&2
}

# fail MESSAGE: report and end the test (the EXIT trap prints the logs).
fail() {
    printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
    exit 1
}

# require_bins: skip nothing, fail clearly when the programs under test are
# missing (a test that cannot run is a failed test).
require_bins() {
    [ -x "$SYNCD" ] || fail "daemon binary $SYNCD not built (make)"
    [ -x "$EMU" ] || fail "emulator binary $EMU not built (make tests/emulator/workos-emulator)"
}

track_pid() { echo "$1" >>"$T/pids"; }

# proc_alive PID: true while PID runs (a zombie counts as gone).
proc_alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_gone PID TIMEOUT_S: waits until PID has exited; false on timeout.
wait_gone() {
    local pid=$1 deadline=$(($(now_ms) + ${2:-10} * 1000))
    while proc_alive "$pid"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# reap PID: collects the exit status of an exited child into REAP_RC.
reap() {
    REAP_RC=0
    wait "$1" 2>/dev/null || REAP_RC=$?
}

# owned_pid PID: PID runs a program this test started: its command line
# names the test's work directory (config, port file, data directory). This
# keeps clean-up from ever signalling a process that reused an old pid.
owned_pid() {
    [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -F -- "$T/"
}

# kill_pid PID: TERM, then KILL after a short grace period; only a process
# of this test (owned_pid).
kill_pid() {
    local pid=$1
    proc_alive "$pid" && owned_pid "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 3 || kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 2 || true
}

# --- failure report and clean-up --------------------------------------------

show_tail() {
    local title=$1 file=$2 n=$3
    [ -s "$file" ] || return 0
    echo "----- $title (last $n lines of $file) -----" >&2
    tail -n "$n" "$file" | cut -c 1-600 >&2 || true
}

# secrets_logged: prints the name of the first log of this test holding a
# configured secret (API key or webhook secret of at least 8 characters).  Run
# for every test that passes, so the whole suite's logs are checked.
secrets_logged() {
    local conf f s
    local -a secrets=("$EMU_KEY")
    for conf in "$T"/*.conf; do
        [ -f "$conf" ] || continue
        while IFS= read -r s; do
            secrets+=("$s")
        done < <(sed -n -E 's/^[[:space:]]*(api_key|secret)[[:space:]]*=[[:space:]]*//p' "$conf" |
            tr ',' '\n' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
    done
    for f in "$T"/*.log; do
        [ -f "$f" ] || continue
        for s in "${secrets[@]}"; do
            [ "${#s}" -ge 8 ] || continue
            if grep -qF -- "$s" "$f"; then
                basename "$f"
                return 0
            fi
        done
    done
    return 1
}

harness_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local leak
    if [ "$rc" -eq 0 ] && leak=$(secrets_logged); then
        echo "[$TEST_NAME] FAIL: a configured secret appears in $leak" >&2
        rc=1
    fi
    if [ "$rc" -ne 0 ]; then
        show_tail "daemon log" "$DAEMON_LOG" "${SHOW_DAEMON_LINES:-80}"
        show_tail "emulator request log" "$EMU_LOG" 30
        show_tail "emulator stderr" "$EMU_STDERR" 20
        [ -n "$PG_DIR" ] && show_tail "postgresql log" "$PG_DIR/postgresql.log" 30
        local extra
        for extra in $(cat "$T/pg_extra" 2>/dev/null); do
            show_tail "postgresql log" "$extra/postgresql.log" 30
        done
    fi
    local pid
    while read -r pid; do
        [ -n "$pid" ] && kill_pid "$pid"
    done <"$T/pids"
    [ -n "$PG_DIR" ] && pg_kill >/dev/null 2>&1
    pg_kill_extra >/dev/null 2>&1
    if [ "$rc" -eq 0 ]; then
        rm -rf "$T"
    else
        echo "[$TEST_NAME] work directory kept: $T" >&2
    fi
    exit "$rc"
}
trap harness_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --- PostgreSQL ----------------------------------------------------------------

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PG_BIN" ]; then
    PG_BIN=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
fi

# as_pg CMD...: PostgreSQL refuses to run as root, so its server-side tools
# run as the `postgres` system user when we are root.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_pg_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id postgres >/dev/null 2>&1 && return 0
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
}

# port_busy PORT: something already answers on 127.0.0.1:PORT.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pg_start [--fsync]: initdb + start a private cluster and export PG* and
# DATABASE_URL. --fsync is the benchmark's server: durable (fsync and
# full_page_writes on) and with PostgreSQL's stock shared_buffers; tests run
# with fsync off and a smaller cache.
pg_start() {
    local fsync=off shared_buffers=64MB
    [ "${1:-}" = --fsync ] && fsync=on shared_buffers=128MB
    [ -x "$PG_BIN/initdb" ] || fail "PostgreSQL server binaries not found under /usr/lib/postgresql"
    ensure_pg_user
    PG_DIR=$T/pg
    mkdir -p "$PG_DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_DIR"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" --nosync -A trust -U postgres -E UTF8 --locale=C \
        >"$T/initdb.log" 2>&1 || { cat "$T/initdb.log" >&2; fail "initdb failed"; }
    local fpw=off
    [ "$fsync" = on ] && fpw=on
    as_pg tee -a "$PG_DIR/data/postgresql.conf" >/dev/null <<EOF

# written by tests/integration/lib.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
fsync = $fsync
full_page_writes = $fpw
synchronous_commit = on
max_connections = 30
shared_buffers = $shared_buffers
log_line_prefix = '%m [%p] '
log_min_messages = warning
EOF
    local port
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_busy "$port" && continue
        as_pg sed -i -e '/^port = /d' "$PG_DIR/data/postgresql.conf"
        echo "port = $port" | as_pg tee -a "$PG_DIR/data/postgresql.conf" >/dev/null
        if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgresql.log" -w -t 30 start \
            >"$T/pg_ctl.log" 2>&1; then
            export PGHOST=$PG_DIR PGPORT=$port PGUSER=postgres PGDATABASE=postgres
            export PGCONNECT_TIMEOUT=5 PGTZ=UTC
            export DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
            log "postgresql up on 127.0.0.1:$port (fsync=$fsync)"
            return 0
        fi
        grep -q -e 'could not bind' -e 'already in use' "$PG_DIR/postgresql.log" 2>/dev/null || break
    done
    cat "$T/pg_ctl.log" >&2
    fail "could not start postgresql"
}

# cpu_ticks PID...: user+system clock ticks (getconf CLK_TCK a second) used
# so far by the given processes; one that has exited counts nothing.
cpu_ticks() {
    local pid total=0 t
    for pid in "$@"; do
        t=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# pg_pids: the running cluster's postmaster and its children (backends and
# background processes).
pg_pids() {
    local master
    master=$(head -n 1 "$PG_DIR/data/postmaster.pid")
    echo "$master"
    ps -o pid= --ppid "$master" 2>/dev/null | tr -d " " || true
}

# pg_up: start the existing cluster again (after pg_stop or pg_kill).
pg_up() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgresql.log" -w -t 30 start \
        >>"$T/pg_ctl.log" 2>&1 || fail "could not restart postgresql"
}

pg_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >>"$T/pg_ctl.log" 2>&1 ||
        fail "pg_ctl stop failed"
}

pg_restart() {
    pg_stop
    pg_up
}

# pg_kill: crash-stop (no shutdown checkpoint); recovery runs on the next start.
pg_kill() {
    [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >>"$T/pg_ctl.log" 2>&1 ||
        {
            local pid
            pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null)
            [ -n "$pid" ] && owned_pid "$pid" && kill -KILL "$pid" 2>/dev/null
            true
        }
}

# --- a second cluster: a streaming standby ------------------------------------
#
# Clusters other than the one pg_start made live in $T/NAME and are listed
# in $T/pg_extra, so the EXIT trap stops them. `pg_ctl_dir DIR ARGS...` runs
# pg_ctl on any of them (including $PG_DIR).

pg_ctl_dir() {
    local dir=$1
    shift
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgresql.log" -w -t 30 "$@" \
        >>"$T/pg_ctl.log" 2>&1
}

# pg_kill_extra: crash-stop every cluster listed in $T/pg_extra.
pg_kill_extra() {
    local dir
    for dir in $(cat "$T/pg_extra" 2>/dev/null); do
        [ -f "$dir/data/postmaster.pid" ] || continue
        pg_ctl_dir "$dir" -m immediate stop || true
    done
}

# pg_standby_start NAME: a hot standby of the cluster pg_start made, copied
# with pg_basebackup -R (streaming replication, recovery settings written),
# in $T/NAME on a port of its own. Sets PG_STANDBY_DIR and PG_STANDBY_PORT.
pg_standby_start() {
    local name=$1 dir=$T/$1 port
    [ -n "$PG_DIR" ] || fail "pg_standby_start: no primary (pg_start first)"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PGPORT" -U postgres -D "$dir/data" -R \
        -X stream -c fast >"$T/basebackup-$name.log" 2>&1 ||
        { cat "$T/basebackup-$name.log" >&2; fail "pg_basebackup for $name failed"; }
    echo "$dir" >>"$T/pg_extra"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_busy "$port" && continue
        as_pg sed -i -e '/^port = /d' -e '/^unix_socket_directories = /d' "$dir/data/postgresql.conf"
        printf "unix_socket_directories = '%s'\nport = %s\n" "$dir" "$port" |
            as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
        if pg_ctl_dir "$dir" start; then
            PG_STANDBY_DIR=$dir
            PG_STANDBY_PORT=$port
            log "standby $name up on 127.0.0.1:$port"
            return 0
        fi
        grep -q -e 'could not bind' -e 'already in use' "$dir/postgresql.log" 2>/dev/null || break
    done
    fail "could not start the standby $name"
}

# q SQL...: one psql call, unaligned tuples only, stops at the first error.
q() {
    "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

# sql SQL: run SQL, print the rows (fields separated by |).
sql() {
    q -c "$1"
}

# COPY options that read (or write) one JSON document a line verbatim: CSV
# with quote and delimiter bytes that JSON text never contains.
jsonl_copy_opts="with (format csv, quote e'\\x01', delimiter e'\\x02')"

# jsonl_query FILE SQL: loads FILE into the temporary table `jl(n, j)` (n is
# the line number) and runs SQL in the same session. No jq needed, and the
# table vanishes with the session, so nothing lands in the daemon's database.
jsonl_query() {
    local file=$1 query=$2
    q <<EOF
create temporary table jl(n bigserial, j jsonb);
\\copy jl(j) from '$file' $jsonl_copy_opts
$query
EOF
}

# last_event_id FILE: id of the last event of a JSONL events file.
last_event_id() {
    jsonl_query "$1" "select j->>'id' from jl order by n desc limit 1;"
}

# count_events FILE: number of distinct event ids in FILE.
count_events() {
    jsonl_query "$1" "select count(distinct j->>'id') from jl;"
}

# --- emulator ------------------------------------------------------------------

# emu_start EVENTS_FILE [ARGS...]: start the emulator on a free port, export
# EMU_URL, EMU_LOG (request log) and EMU_KEY.
emu_start() {
    local events=$1
    shift
    EMU_KEY=sk_test_emulator
    local a prev=
    for a in "$@"; do
        [ "$prev" = --api-key ] && EMU_KEY=$a
        case $a in --api-key=*) EMU_KEY=${a#--api-key=} ;; esac
        prev=$a
    done
    rm -f "$T/emu.port"
    # (--port-file names $T: clean-up recognises the process by it)
    "$EMU" serve --events "$events" --port 0 --port-file "$T/emu.port" \
        --request-log "$EMU_LOG" "$@" >>"$EMU_STDERR" 2>&1 &
    EMU_PID=$!
    track_pid "$EMU_PID"
    local deadline=$(($(now_ms) + 15000)) port=
    while :; do
        if [ -s "$T/emu.port" ]; then
            port=$(tr -dc 0-9 <"$T/emu.port")
            [ -n "$port" ] && break
        fi
        proc_alive "$EMU_PID" || fail "emulator exited at start-up"
        [ "$(now_ms)" -lt "$deadline" ] || fail "emulator did not write its port file in 15 s"
        sleep 0.05
    done
    export EMU_URL="http://127.0.0.1:$port" EMU_LOG EMU_KEY
    log "emulator up at $EMU_URL"
}

# emu_stop: stop the emulator (to start another one on another stream).
emu_stop() {
    [ -n "$EMU_PID" ] || return 0
    kill_pid "$EMU_PID"
    reap "$EMU_PID"
    EMU_PID=
}

# emu_curl METHOD PATH [CURL ARGS...]: call the emulator's control API.
emu_curl() {
    local method=$1 path=$2
    shift 2
    curl -sS -f --max-time 10 -X "$method" -H "Authorization: Bearer $EMU_KEY" \
        "$@" "$EMU_URL$path"
}

# emu_fault KIND COUNT [name=value...]: inject COUNT faults of KIND into the
# next /events responses (e.g. retry_after=2, delay_ms=3000).
emu_fault() {
    local kind=$1 count=$2 qs
    shift 2
    qs="kind=$kind&count=$count"
    local kv
    for kv in "$@"; do qs="$qs&$kv"; done
    emu_curl POST "/_emulator/faults?$qs" >/dev/null || fail "could not inject fault $kind"
}

emu_clear_faults() {
    emu_curl DELETE /_emulator/faults >/dev/null || fail "could not clear faults"
}

# emu_append FILE: append the events of a JSONL file to the stream.
emu_append() {
    emu_curl POST /_emulator/events -H 'Content-Type: application/x-ndjson' \
        --data-binary "@$1" >/dev/null || fail "could not append events from $1"
}

# emu_gen COUNT SEED OUT EXPECT: generate an event stream and its final state.
emu_gen() {
    "$EMU" gen --count "$1" --seed "$2" --out "$3" --expect "$4" >>"$EMU_STDERR" 2>&1 ||
        fail "workos-emulator gen failed"
}

# The event types the daemon asks the Events API for by default (DESIGN.md:
# every mirrored type, plus the authentication, email verification, password
# reset and magic auth families for the log). Generated streams also hold
# types outside this list; the API filter keeps them from the daemon.
DEFAULT_EVENT_FAMILIES="user organization_membership invitation session api_key organization"
DEFAULT_EVENT_FAMILIES+=" authentication email_verification password_reset magic_auth"

# events_in_filter IN OUT: the events of IN that the daemon's default filter
# lets through, in stream order (as normalised JSON, for the assertions).
events_in_filter() {
    local families
    families="'${DEFAULT_EVENT_FAMILIES// /\', \'}'"
    jsonl_query "$1" "\\copy (select j::text from jl where split_part(j->>'event', '.', 1) in ($families) order by n) to '$2' $jsonl_copy_opts" >/dev/null ||
        fail "could not filter $1"
}

# gen_stream COUNT SEED: generate a stream into $EVENTS_SERVED (what the
# emulator serves), its expected final mirror into $EXPECTED, and into
# $EVENTS the part of the stream the daemon asks for (what the event log
# must end up holding; its last id is where the cursor ends).
gen_stream() {
    EVENTS_SERVED=$T/events.jsonl
    EXPECTED=$T/expected.jsonl
    EVENTS=$T/events.api.jsonl
    emu_gen "$1" "$2" "$EVENTS_SERVED" "$EXPECTED"
    events_in_filter "$EVENTS_SERVED" "$EVENTS"
    log "generated $(wc -l <"$EVENTS_SERVED" | tr -d ' ') events ($(wc -l <"$EVENTS" | tr -d ' ') for the daemon), $(wc -l <"$EXPECTED" | tr -d ' ') objects"
}

# reqlog_field LINE KEY: value of KEY in one logfmt request-log line.
reqlog_field() {
    local line=" $1" key=$2
    local v=${line#* "$key"=}
    [ "$v" = "$line" ] && return 0
    v=${v%% *}
    printf '%s' "$v"
}

# reqlog_lines: the number of lines in the request log so far.
reqlog_lines() {
    if [ -f "$EMU_LOG" ]; then wc -l <"$EMU_LOG" | tr -d ' '; else echo 0; fi
}

# --- the daemon ------------------------------------------------------------------

# daemon_config [section.key=value ...]: write $SYNCD_CONF with test defaults
# (emulator, private database, fast polling, debug logs); each argument sets
# or overrides one key, and `section.key=` with no value drops it.
daemon_config() {
    local -a order=(
        workos.api_key workos.base_url workos.poll_interval workos.start_from
        workos.request_timeout workos.rate_limit workos.retention database.url database.schema
        log.level
    )
    local -A val=(
        [workos.api_key]=$EMU_KEY
        [workos.base_url]=$EMU_URL
        [workos.poll_interval]=100ms
        [workos.start_from]=2000-01-01T00:00:00Z
        [workos.request_timeout]=2s
        [workos.rate_limit]=6000
        [workos.retention]=3650d
        [database.url]=$DATABASE_URL
        [log.level]=debug
    )
    local kv k
    for kv in "$@"; do
        k=${kv%%=*}
        [[ $k == *.* ]] || fail "daemon_config: '$kv' is not section.key=value"
        if [ -z "${val[$k]+x}" ]; then
            case " ${order[*]} " in *" $k "*) ;; *) order+=("$k") ;; esac
        fi
        val[$k]=${kv#*=}
    done
    SYNCD_SCHEMA=${val[database.schema]:-workos}
    [ -n "$SYNCD_SCHEMA" ] || SYNCD_SCHEMA=workos
    {
        echo "# written by tests/integration/lib.sh for $TEST_NAME"
        local section prev_section=
        for k in "${order[@]}"; do
            [ -n "${val[$k]:-}" ] || continue
            section=${k%%.*}
            if [ "$section" != "$prev_section" ]; then
                printf '\n[%s]\n' "$section"
                prev_section=$section
            fi
            printf '%s = %s\n' "${k#*.}" "${val[$k]}"
        done
    } >"$SYNCD_CONF.tmp"
    # Keys may come in any order; group them by section.
    awk '
        /^\[/ { sec = $0; next }
        /=/ && sec != "" { body[sec] = body[sec] $0 "\n"; if (!(sec in seen)) { seen[sec] = 1; order[++n] = sec } }
        /^#/ { print }
        END { for (i = 1; i <= n; i++) printf "\n%s\n%s", order[i], body[order[i]] }
    ' "$SYNCD_CONF.tmp" >"$SYNCD_CONF"
    rm -f "$SYNCD_CONF.tmp"
}

# syncd CMD [ARGS...]: run a daemon subcommand against the test config.
syncd() {
    local cmd=$1
    shift
    "$SYNCD" "$cmd" -c "$SYNCD_CONF" "$@"
}

daemon_migrate() {
    syncd migrate >>"$DAEMON_LOG" 2>&1 || fail "workos-syncd migrate failed (exit $?)"
    DAEMON_MIGRATED=1
}

# daemon_start: migrate once, then run the daemon in the background, its
# output appended to $DAEMON_LOG; sets DAEMON_PID.
daemon_start() {
    [ -n "$DAEMON_MIGRATED" ] || daemon_migrate
    DAEMON_STARTS=$((DAEMON_STARTS + 1))
    echo "=== harness: daemon start #$DAEMON_STARTS at $(date -u +%H:%M:%S.%3N)" >>"$DAEMON_LOG"
    "$SYNCD" run -c "$SYNCD_CONF" >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    track_pid "$DAEMON_PID"
}

# daemon_alive: the daemon started last is still running.
daemon_alive() {
    [ -n "$DAEMON_PID" ] && proc_alive "$DAEMON_PID"
}

# daemon_stop [TIMEOUT_S]: SIGTERM, wait (bounded, default 10 s) and require
# exit status 0. Sets DAEMON_STOP_MS to how long the exit took.
daemon_stop() {
    local timeout=${1:-10} t0
    [ -n "$DAEMON_PID" ] || fail "daemon_stop: no daemon running"
    proc_alive "$DAEMON_PID" || {
        reap "$DAEMON_PID"
        fail "daemon had already exited (status $REAP_RC) before SIGTERM"
    }
    t0=$(now_ms)
    kill -TERM "$DAEMON_PID"
    if ! wait_gone "$DAEMON_PID" "$timeout"; then
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
        fail "daemon did not exit within ${timeout}s of SIGTERM"
    fi
    DAEMON_STOP_MS=$(($(now_ms) - t0))
    reap "$DAEMON_PID"
    echo "=== harness: daemon exited with status $REAP_RC after SIGTERM (${DAEMON_STOP_MS} ms)" >>"$DAEMON_LOG"
    [ "$REAP_RC" -eq 0 ] || fail "daemon exited with status $REAP_RC after SIGTERM (want 0)"
    DAEMON_PID=
}

# daemon_kill9: SIGKILL the daemon and collect it.
daemon_kill9() {
    [ -n "$DAEMON_PID" ] || return 0
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait_gone "$DAEMON_PID" 5 || fail "daemon survived SIGKILL"
    reap "$DAEMON_PID"
    echo "=== harness: daemon killed with SIGKILL" >>"$DAEMON_LOG"
    DAEMON_PID=
}

# cursor: the poller's stored cursor ('' when none yet or unreadable).
cursor() {
    q -c "select coalesce(cursor, '') from $SYNCD_SCHEMA.sync_state where stream = 'events_api'" \
        2>/dev/null || true
}

# wait_caught_up TIMEOUT_S [EVENT_ID | --file EVENTS_FILE]: wait until the
# stored cursor is EVENT_ID (default: the last event of $EVENTS). Fails if the
# daemon dies or time runs out.
wait_caught_up() {
    local timeout=$1 target=${2:-}
    if [ "$target" = --file ]; then
        target=$(last_event_id "$3")
    elif [ -z "$target" ]; then
        target=$(last_event_id "${EVENTS:?wait_caught_up: set EVENTS or pass an id}")
    fi
    [ -n "$target" ] || fail "wait_caught_up: no target event id"
    local deadline=$(($(now_ms) + timeout * 1000)) c=
    while :; do
        c=$(cursor)
        [ "$c" = "$target" ] && { log "caught up at $target"; return 0; }
        if [ -n "$DAEMON_PID" ] && ! proc_alive "$DAEMON_PID"; then
            reap "$DAEMON_PID"
            fail "daemon exited (status $REAP_RC) before catching up (cursor '$c', want '$target')"
        fi
        [ "$(now_ms)" -lt "$deadline" ] ||
            fail "not caught up within ${timeout}s: cursor '$c', want '$target'"
        sleep 0.1
    done
}

# pid_running PID: proc_alive in builtins only, for loops that must not
# start a process each time round.
pid_running() {
    local st
    { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
    st=${st##*) }
    st=${st%% *}
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_backfill EVENT_ID WHAT: for a benchmark, wait (up to 30 min) until
# the stored cursor is EVENT_ID, checking every 50 ms that the daemon lives.
# One psql session answers every check, each query sleeping its 50 ms in
# the server, and the rest is builtins: the loop of cursor(), sleep and
# date it replaces started six processes and a database connection every
# 50 ms beside the backfill being timed, a tenth of the 2-core machine's
# CPU samples in a perf profile of one.
wait_backfill() {
    local target=$1 what=$2 c= polls=0
    coproc WAIT_PSQL { q -f - 2>/dev/null; }
    track_pid "$WAIT_PSQL_PID"
    local to=${WAIT_PSQL[1]} from=${WAIT_PSQL[0]} pid=$WAIT_PSQL_PID
    while [ "$c" != "$target" ]; do
        pid_running "$DAEMON_PID" || fail "daemon exited during the backfill"
        [ "$polls" -lt 36000 ] || fail "$what not done in 30 min"
        polls=$((polls + 1))
        echo "select coalesce((select cursor from $SYNCD_SCHEMA.sync_state
                                where stream = 'events_api'), '') from pg_sleep(0.05);" >&"$to"
        read -r -t 10 c <&"$from" || fail "$what: the waiting psql session did not answer"
    done
    eval "exec $to>&-"
    wait "$pid" 2>/dev/null || true
}

# wait_for TIMEOUT_S DESCRIPTION CMD...: poll CMD until it succeeds.
wait_for() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$(($(now_ms) + timeout * 1000))
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || fail "timed out after ${timeout}s waiting for $what"
        sleep 0.1
    done
}

# --- assertions ----------------------------------------------------------------

MIRROR_TABLES="users organization_memberships invitations sessions api_keys organizations"

# fail_on_diff FILE WHAT AGAINST: fail when FILE, one difference a line, is
# not empty, showing the first 20.
fail_on_diff() {
    local n
    n=$(wc -l <"$1" | tr -d ' ')
    if [ "$n" -ne 0 ]; then
        echo "$2 differs from $3 in $n rows (first 20):" >&2
        head -n 20 "$1" >&2
        fail "$2 does not match $3"
    fi
}

# assert_mirror_matches EXPECTED_JSONL: the mirror holds exactly the rows of
# EXPECTED (one {"table","id","updated_at","deleted","fields"} a line): no row
# missing, none extra, none with a different updated_at, tombstone or field.
assert_mirror_matches() {
    local expected=$1 t union=
    for t in $MIRROR_TABLES; do
        [ -n "$union" ] && union="$union union all "
        union="$union select '$t'::text as tbl, id::text as id, updated_at::timestamptz as ua,
            (deleted_at is not null) as del, to_jsonb(x) as r from $SYNCD_SCHEMA.$t x"
    done
    local out=$T/mirror-diff.txt
    q >"$out" <<EOF || fail "mirror comparison query failed: $(cat "$out")"
set timezone = 'UTC';
create temporary table expected(j jsonb);
\\copy expected(j) from '$expected' $jsonl_copy_opts
create temporary table want as
    select j->>'table' as tbl, j->>'id' as id, (j->>'updated_at')::timestamptz as ua,
           coalesce((j->>'deleted')::boolean, false) as del, coalesce(j->'fields', '{}') as f
      from expected;
create temporary table got as $union;
select format('missing  %s %s (updated_at %s, deleted %s)', w.tbl, w.id, w.ua, w.del)
  from want w left join got g using (tbl, id) where g.id is null
union all
select format('extra    %s %s (updated_at %s, deleted %s)', g.tbl, g.id, g.ua, g.del)
  from got g left join want w using (tbl, id) where w.id is null
union all
select format('differs  %s %s: %s', tbl, id, d) from (
  select w.tbl, w.id, concat_ws('; ',
      case when w.ua is distinct from g.ua then format('updated_at want %s got %s', w.ua, g.ua) end,
      case when w.del is distinct from g.del then format('deleted want %s got %s', w.del, g.del) end,
      (select string_agg(format('%s want %s got %s', k, w.f->k, coalesce((g.r->k)::text, '<no column>')), ', ' order by k)
         from jsonb_object_keys(w.f) k where (g.r->k) is distinct from (w.f->k))) as d
    from want w join got g using (tbl, id)) s
 where d <> '';
EOF
    fail_on_diff "$out" mirror "$(basename "$expected")"
    log "mirror matches $(basename "$expected") ($(wc -l <"$expected" | tr -d ' ') rows)"
}

# assert_events_exact EVENTS_FILE [SOURCES]: the event log holds exactly one
# row per distinct event id of the file, no other row, each from one of the
# comma-separated SOURCES (default: events_api only).
assert_events_exact() {
    local file=$1 sources=${2:-events_api} out=$T/events-diff.txt in
    in="'${sources//,/\',\'}'"
    jsonl_query "$file" "
create temporary table want as select distinct j->>'id' as id from jl;
select 'missing event ' || w.id from want w
 where not exists (select 1 from $SYNCD_SCHEMA.events e where e.id = w.id)
union all
select 'extra event ' || e.id || ' (' || e.event || ')' from $SYNCD_SCHEMA.events e
 where not exists (select 1 from want w where w.id = e.id)
union all
select 'duplicate event ' || id from $SYNCD_SCHEMA.events group by id having count(*) > 1
union all
select 'event ' || id || ' has source ' || coalesce(source, 'NULL') from $SYNCD_SCHEMA.events
 where source is null or source not in ($in);" >"$out" 2>&1 ||
        fail "event log comparison failed: $(cat "$out")"
    fail_on_diff "$out" "event log" "$(basename "$file")"
    log "event log matches $(basename "$file") ($(count_events "$file") events, sources $sources)"
}

# SECRET_STRIP_SQL: the event payload with the fields the daemon must never
# store removed (DESIGN.md "Never stored anywhere"), as an expression over
# jsonb columns `ev` (event type) and `d` (data object).
SECRET_STRIP_SQL="case
    when jsonb_typeof(d) <> 'object' then d
    when ev like 'invitation.%' then d - 'token' - 'accept_invitation_url'
    when ev in ('magic_auth.created', 'email_verification.created') then d - 'code'
    when ev = 'password_reset.created' then d - 'token'
    when ev like 'api_key.%' then d - 'value'
    else d end"

# assert_events_content EVENTS_FILE: every stored event has the type,
# created_at, context and payload of the file's event, the payload minus the
# secret fields and otherwise unchanged.
assert_events_content() {
    local file=$1 out=$T/events-content.txt
    jsonl_query "$file" "
create temporary table want as
  select id, ev, created_at, context, $SECRET_STRIP_SQL as data
    from (select j->>'id' as id, j->>'event' as ev, (j->>'created_at')::timestamptz as created_at,
                 j->'context' as context, j->'data' as d from jl) s;
select format('event %s: %s', w.id, concat_ws('; ',
         case when e.event is distinct from w.ev then format('event want %s got %s', w.ev, e.event) end,
         case when e.created_at is distinct from w.created_at
              then format('created_at want %s got %s', w.created_at, e.created_at) end,
         case when e.data is distinct from w.data then format('data want %s got %s', w.data, e.data) end,
         case when coalesce(e.context, 'null') is distinct from coalesce(w.context, 'null')
              then format('context want %s got %s', w.context, e.context) end))
  from want w join $SYNCD_SCHEMA.events e using (id)
 where e.event is distinct from w.ev or e.created_at is distinct from w.created_at
    or e.data is distinct from w.data
    or coalesce(e.context, 'null') is distinct from coalesce(w.context, 'null');" >"$out" 2>&1 ||
        fail "event content comparison failed: $(cat "$out")"
    local n
    n=$(wc -l <"$out" | tr -d ' ')
    if [ "$n" -ne 0 ]; then
        echo "$n stored events differ from $(basename "$file") (first 10):" >&2
        head -n 10 "$out" | cut -c 1-600 >&2
        fail "stored events are not the wire events minus secrets"
    fi
    log "stored events equal the wire events minus secrets"
}

# assert_eq WANT GOT WHAT
assert_eq() {
    [ "$1" = "$2" ] || fail "$3: want '$1', got '$2'"
}

# assert_retries_keep_cursor [--from LINE] [--kinds K1|K2] [--or-page-applied]:
# in the request log (from line LINE on), every request answered with one of
# the fault kinds is followed by a request with the same after= and
# range_start=: the cursor never moves past a page that failed. With
# --or-page-applied (disorder: a complete page delivered out of order), the
# next request may instead continue after the page's last event. The log is
# in arrival order (ts_ms is the arrival time), so "the next request" is the
# next line.
assert_retries_keep_cursor() {
    local from=1 kinds='429|500|delay|truncate|drop|disorder' applied=0
    while [ $# -gt 0 ]; do
        case $1 in
        --from) from=$2; shift 2 ;;
        --kinds) kinds=$2; shift 2 ;;
        --or-page-applied) applied=1; shift ;;
        *) fail "assert_retries_keep_cursor: unknown option $1" ;;
        esac
    done
    awk -v from="$from" -v kinds="$kinds" -v applied="$applied" '
        function field(k,   i) {
            for (i = 1; i <= NF; i++)
                if (index($i, k "=") == 1) return substr($i, length(k) + 2)
            return ""
        }
        NR >= from { n++; f[n] = field("fault"); a[n] = field("after"); r[n] = field("range_start");
                     l[n] = field("last"); st[n] = field("status"); e[n] = field("range_end") }
        END {
            bad = 0; checked = 0; kept = 0; moved = 0
            # Each chain is its own: the one chain (no range_end) and each
            # fetch window (its range_end). A fault is retried on its chain.
            for (i = n; i >= 1; i--) { nx[i] = (e[i] in seen) ? seen[e[i]] : 0; seen[e[i]] = i }
            for (i = 1; i <= n; i++) {
                if (f[i] !~ ("^(" kinds ")$")) continue
                if (nx[i] == 0) { printf "no request after the %s fault on log line %d\n", f[i], from + i - 1; bad++; continue }
                checked++
                j = nx[i]
                if (a[j] == a[i] && r[j] == r[i]) { kept++; continue }
                if (applied && st[i] == "200" && l[i] != "-" && a[j] == l[i]) { moved++; continue }
                printf "log line %d: after a %s fault (after=%s range_start=%s last=%s) the next request used after=%s range_start=%s\n", from + i - 1, f[i], a[i], r[i], l[i], a[j], r[j]
                bad++
            }
            if (checked == 0 && bad == 0) { print "no faulted request in the log"; bad++ }
            printf "checked=%d repeated=%d continued=%d\n", checked, kept, moved
            exit bad ? 1 : 0
        }' "$EMU_LOG" >"$T/retry-check.txt" 2>&1 || {
        cat "$T/retry-check.txt" >&2
        fail "a request after a failed page did not repeat its cursor"
    }
    log "requests after faults: $(tail -n 1 "$T/retry-check.txt")"
}

# faults_fired KIND COUNT FROM_LINE: the request log shows COUNT requests
# answered with KIND from line FROM_LINE on.
faults_fired() {
    local n
    n=$(tail -n "+$3" "$EMU_LOG" 2>/dev/null | grep -c " fault=$1 " || true)
    [ "$n" -ge "$2" ]
}

# paced_stream COUNT SEED DELAY_MS: PostgreSQL, a generated stream of COUNT
# events (gen_stream COUNT SEED) served by the emulator with every request
# held DELAY_MS, so that a backfill of it is still running when the test
# acts. The daemon is left to the test.
paced_stream() {
    pg_start
    gen_stream "$1" "$2"
    emu_start "$EVENTS_SERVED"
    emu_fault delay 1000000 "delay_ms=$3"
}

# has_progress: true once the daemon has stored a cursor.
has_progress() {
    local c
    c=$(cursor)
    [ -n "$c" ]
}

# wait_first_page SECONDS: waits until the daemon has applied a first page.
wait_first_page() {
    wait_for "$1" "the first page to be applied" has_progress
}

# ev TYPE DATA: one event line of a hand-written stream, on stdout. Its id
# (evt_${EV_PREFIX}_001, ...; EV_PREFIX defaults to "hand") and created_at
# follow the order of the calls, which count in EV_SEQ: call it in the
# test's own shell, not in a $(...), for the count to hold.
EV_SEQ=0
ev() {
    EV_SEQ=$((EV_SEQ + 1))
    printf '{"object":"event","id":"evt_%s_%03d","event":"%s","data":%s,"created_at":"2024-03-01T00:00:%02d.000Z"}\n' \
        "${EV_PREFIX:-hand}" "$EV_SEQ" "$1" "$2" "$EV_SEQ"
}

# fault_scenario KIND COUNT [name=value...]: a paced backfill of 5,000
# generated events; right after its first page, COUNT faults of KIND are
# injected. Then: the faults fired before the backfill ended, each request
# after a faulted one kept the cursor (or, for disorder, continued after the
# page if the page was taken), and the mirror and event log converge exactly.
# Sets FAULT_FROM to the first request-log line after the injection.
# FAULT_CONFIG (an array) holds extra daemon_config settings.
FAULT_CONFIG=()
fault_scenario() {
    local kind=$1 count=$2
    shift 2
    paced_stream 5000 808 30
    local last
    last=$(last_event_id "$EVENTS")
    daemon_config "${FAULT_CONFIG[@]}"
    daemon_start
    wait_first_page 60
    emu_clear_faults
    FAULT_FROM=$(($(reqlog_lines) + 1))
    emu_fault "$kind" "$count" "$@"
    # Keep pacing (not for delay: those would count as faults too).
    [ "$kind" = delay ] || emu_fault delay 1000000 delay_ms=30
    log "injected $count x $kind $* at cursor $(cursor)"
    wait_for 90 "$count $kind faults to fire" faults_fired "$kind" "$count" "$FAULT_FROM"
    local c
    c=$(cursor)
    [ "$c" != "$last" ] || fail "the backfill ended before the $kind faults fired"
    emu_clear_faults
    wait_caught_up 120
    daemon_alive || fail "daemon exited"
    if [ "$kind" = disorder ]; then
        assert_retries_keep_cursor --from "$FAULT_FROM" --kinds "$kind" --or-page-applied
    else
        assert_retries_keep_cursor --from "$FAULT_FROM" --kinds "$kind"
    fi
    assert_mirror_matches "$T/expected.jsonl"
    assert_events_exact "$EVENTS"
    daemon_stop
}

# kill9_rounds COUNT SEED DELAY_MS [section.key=value ...]: a backfill of
# COUNT generated events, every request held DELAY_MS, with the daemon
# (configured by daemon_config and the arguments) killed with SIGKILL at
# random moments, at least ten times, restarted each time; then the mirror
# and the event log converge exactly: no event lost, none applied twice, the
# cursor never past an unapplied page.
kill9_rounds() {
    local count=$1 seed=$2 delay=$3
    shift 3
    paced_stream "$count" "$seed" "$delay"
    local last
    last=$(last_event_id "$EVENTS")
    daemon_config "$@"
    daemon_migrate

    local kills=0 round c
    local -a seen=()
    for round in $(seq 1 14); do
        daemon_start
        # 100..900 ms: sometimes during start-up, mostly mid-page or mid-commit.
        sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
        c=$(cursor)
        if [ "$c" = "$last" ]; then
            daemon_stop
            break
        fi
        daemon_kill9
        kills=$((kills + 1))
        seen+=("${c:-none}")
        [ "$kills" -ge 10 ] && [ "$round" -ge 12 ] && break
    done
    log "killed the daemon $kills times; cursors at the kills: ${seen[*]}"
    [ "$kills" -ge 10 ] || fail "only $kills kills landed before the backfill finished (pacing too fast)"

    # The cursor must have moved between kills, or the test only killed start-ups.
    local distinct
    distinct=$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)
    [ "$distinct" -ge 3 ] || fail "the cursor hardly moved across $kills restarts (${seen[*]})"

    emu_clear_faults
    daemon_start
    wait_caught_up 120
    assert_mirror_matches "$T/expected.jsonl"
    assert_events_exact "$EVENTS"
    daemon_stop
}
