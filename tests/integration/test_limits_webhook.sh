#!/usr/bin/env bash
# The webhook listener's limits: silent connections (idle keep-alive, a
# request that stops half-way) are closed after [webhook] client_timeout;
# no more than [webhook] max_connections are open at once, the next client
# waiting until one closes; and thousands of concurrent half-sent requests
# keep the daemon's memory bounded.
source "$(dirname "$0")/lib.sh"
require_bins
command -v python3 >/dev/null || fail "python3 is needed for this test"

pg_start
daemon_config webhook.listen=127.0.0.1:0 webhook.secret=whsec_limits \
    webhook.max_connections=20 webhook.client_timeout=2s workos.api_key= log.level=info
daemon_start
wait_for 15 "the webhook listener" grep -q 'event=listening' "$DAEMON_LOG"
port=$(grep -o 'event=listening address=[^ ]* port=[0-9]*' "$DAEMON_LOG" | grep -o '[0-9]*$' | head -1)
log "listening on $port"

# The client side, in one python process: prints one "name=value" line per
# observation, and exits non-zero if the socket plumbing itself fails.
python3 - "$port" >"$T/limits.out" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s

def closed_within(s, limit, start):
    """Seconds from start until the peer closes s, or None if still open at limit."""
    s.settimeout(max(0.01, start + limit - time.monotonic()))
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return time.monotonic() - start
    except socket.timeout:
        return None
    except ConnectionResetError:
        return time.monotonic() - start

# 1. an idle connection and a half-sent request are both cut off.
t0 = time.monotonic()
idle = conn()
slow = conn()
slow.sendall(b"POST /webhooks/workos HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\":")
t_idle = closed_within(idle, 6, t0)
t_slow = closed_within(slow, 6, t0)
print("idle_closed_after=%s" % ("%.1f" % t_idle if t_idle is not None else "never"))
print("slow_closed_after=%s" % ("%.1f" % t_slow if t_slow is not None else "never"))

# 2. at the limit, the next client is not served until a connection closes.
time.sleep(0.5)  # let the daemon release the two above
held = [conn() for _ in range(20)]
time.sleep(0.3)
extra = conn()
extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
extra.settimeout(1.0)
try:
    early = extra.recv(4096)
except socket.timeout:
    early = b""
print("served_over_limit=%s" % ("yes" if early else "no"))
for s in held:
    s.close()
extra.settimeout(5)
answer = b""
try:
    while True:
        chunk = extra.recv(4096)
        if not chunk:
            break
        answer += chunk
except socket.timeout:
    pass
print("served_after_release=%s" % ("yes" if answer.startswith(b"HTTP/1.1 200") else "no"))
EOF
cat "$T/limits.out" >&2

idle=$(sed -n 's/^idle_closed_after=//p' "$T/limits.out")
slow=$(sed -n 's/^slow_closed_after=//p' "$T/limits.out")
[ "$idle" != never ] || fail "an idle connection was never closed"
[ "$slow" != never ] || fail "a half-sent request was never closed"
awk -v a="$idle" -v b="$slow" 'BEGIN { exit !(a >= 1.5 && a <= 4.5 && b >= 1.5 && b <= 4.5) }' ||
    fail "silent connections closed after ${idle}s / ${slow}s, want about client_timeout = 2s"
assert_eq no "$(sed -n 's/^served_over_limit=//p' "$T/limits.out")" \
    "a 21st client served while 20 connections were open"
assert_eq yes "$(sed -n 's/^served_after_release=//p' "$T/limits.out")" \
    "the waiting client served once connections closed"
daemon_alive || fail "daemon exited"

# 3. memory stays bounded with thousands of concurrent half-sent requests.
daemon_stop
daemon_config webhook.listen=127.0.0.1:0 webhook.secret=whsec_limits \
    webhook.max_connections=3000 webhook.client_timeout=30s workos.api_key= log.level=info
: >"$DAEMON_LOG"
daemon_start
wait_for 15 "the webhook listener" grep -q 'event=listening' "$DAEMON_LOG"
port=$(grep -o 'event=listening address=[^ ]* port=[0-9]*' "$DAEMON_LOG" | grep -o '[0-9]*$' | head -1)
rss_before=$(awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON_PID/status")
python3 - "$port" "$DAEMON_PID" >"$T/mem.out" <<'EOF'
import resource, socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = min(hard, 4096)
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
n = min(2500, want - 100)
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /webhooks/workos HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 1000)
    socks.append(s)
time.sleep(1.0)
rss = 0
with open("/proc/%s/status" % pid) as f:
    for line in f:
        if line.startswith("VmHWM"):
            rss = int(line.split()[1])
# The daemon still answers while holding them all.
probe = socket.create_connection(("127.0.0.1", port), timeout=5)
probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
probe.settimeout(5)
ok = probe.recv(64).startswith(b"HTTP/1.1 200")
print("connections=%d" % n)
print("peak_rss_kib=%d" % rss)
print("healthz_while_loaded=%s" % ("yes" if ok else "no"))
for s in socks:
    s.close()
EOF
cat "$T/mem.out" >&2
n=$(sed -n 's/^connections=//p' "$T/mem.out")
rss=$(sed -n 's/^peak_rss_kib=//p' "$T/mem.out")
[ "${n:-0}" -ge 900 ] || fail "could only open ${n:-0} client connections"
assert_eq yes "$(sed -n 's/^healthz_while_loaded=//p' "$T/mem.out")" "healthz answered under load"
log "peak RSS ${rss} KiB with $n half-sent requests (${rss_before} KiB before)"
# A few KiB per connection, plus the 1000 bytes each has sent: far below a
# copy of max_body (1 MiB) per connection, which would be gigabytes.
[ "$rss" -lt 65536 ] || fail "peak RSS ${rss} KiB with $n open requests (want < 64 MiB)"
daemon_stop
