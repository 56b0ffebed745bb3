#!/usr/bin/env python3
"""Unauthenticated load on the daemon's webhook listener, loopback only.

At once: TRICKLE connections that send a request one byte every 2 s (half of
them a webhook head; the other half a complete head with a well-formed
signature, then its body), and BODIES connections that each send a head without a signature and a
1,000,000-byte body as fast as the daemon takes it.  Meanwhile a correctly
signed webhook is posted every 250 ms on a fresh connection and /healthz is
probed every 500 ms, each with a 1 s limit.  Runs DURATION seconds, then
prints one name=value line per observation:

  signed_total, signed_2xx, signed_max_ms   the signed webhooks
  healthz_total, healthz_ok                 the probes
  trickle_open_at_end                       trickling connections still open
  trickle_last_close_s                      when the last one was closed
  bodies_done                               body senders cut off or answered
  vmhwm_kb                                  the daemon's peak RSS (VmHWM)

Usage: webhook_exhaust.py PORT PATH SECRET DAEMON_PID ID_PREFIX IDS_OUT [TRICKLE BODIES DURATION]

The ids of the signed webhooks answered 2xx go to IDS_OUT, one a line.
"""
import hashlib
import hmac
import json
import selectors
import socket
import sys
import threading
import time

port, path, secret, pid, prefix, ids_out = sys.argv[1:7]
port = int(port)
trickle_n = int(sys.argv[7]) if len(sys.argv) > 7 else 1000
bodies_n = int(sys.argv[8]) if len(sys.argv) > 8 else 800
duration = float(sys.argv[9]) if len(sys.argv) > 9 else 14.0
BODY_LEN = 1000000
addr = ("127.0.0.1", port)
setup_start = start = time.monotonic()


def vmhwm():
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def one_request(raw, limit=1.0):
    """Sends raw bytes on a fresh connection; returns (status, ms) or (0, ms)."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(addr, timeout=limit)
        s.settimeout(max(0.01, limit - (time.monotonic() - t0)))
        s.sendall(raw)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        ms = (time.monotonic() - t0) * 1000
        parts = data.split(b" ", 2)
        return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), ms
    except OSError:
        return 0, (time.monotonic() - t0) * 1000


signed = []  # (status, ms)
probes = []
stop = threading.Event()


def signed_sender():
    n = 0
    while not stop.is_set():
        n += 1
        eid = "%s_%06d" % (prefix, n)
        body = json.dumps({
            "object": "event", "id": eid, "event": "user.created",
            "created_at": "2026-02-01T00:00:00.000Z",
            "data": {"object": "user", "id": "user_%s_%d" % (prefix, n),
                     "email": "x%d@exhaust.test" % n, "first_name": "A", "last_name": "B",
                     "email_verified": True, "profile_picture_url": None,
                     "last_sign_in_at": None, "external_id": None, "metadata": {},
                     "created_at": "2026-02-01T00:00:00.000Z",
                     "updated_at": "2026-02-01T00:00:00.000Z"}}).encode()
        t = str(int(time.time() * 1000))
        mac = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "WorkOS-Signature: t=%s, v1=%s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                % (path, t, mac, len(body))).encode()
        st, ms = one_request(head + body)
        signed.append((st, ms, eid))
        stop.wait(0.25)


def prober():
    while not stop.is_set():
        probes.append(one_request(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        stop.wait(0.5)


sel = selectors.DefaultSelector()
trickle_head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n" % path).encode() * 50
body_head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\n\r\n" % (path, BODY_LEN)).encode()
payload = memoryview(body_head + b" " * BODY_LEN)

trickle = {}  # socket -> [bytes sent, closed_at or None]
bodies = {}   # socket -> [offset, done]


def connect():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(addr)
    s.setblocking(False)
    return s


forged = ("POST %s HTTP/1.1\r\nHost: x\r\nWorkOS-Signature: t=%d, v1=%s\r\n"
          "Content-Length: 100\r\n\r\n" % (path, int(time.time() * 1000), "0" * 64)).encode()
for i in range(trickle_n):
    s = connect()
    if i % 2:
        s.setblocking(True)
        s.sendall(forged)
        s.setblocking(False)
    trickle[s] = [0, None]
    sel.register(s, selectors.EVENT_READ, "t")
for _ in range(bodies_n):
    s = connect()
    bodies[s] = [0, False]
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, "b")

threads = [threading.Thread(target=signed_sender), threading.Thread(target=prober)]
for th in threads:
    th.start()

# Times count from the first trickled byte, once every connection is open.
start = time.monotonic()
print("setup_s=%.1f" % (start - setup_start))
next_trickle = start
last_close = None
peak = 0
while time.monotonic() - start < duration:
    now = time.monotonic()
    if now >= next_trickle:
        for s, st in trickle.items():
            if st[1] is None:
                try:
                    s.send(trickle_head[st[0]:st[0] + 1])
                    st[0] += 1
                except OSError:
                    pass
        next_trickle = now + 2.0
    for key, ev in sel.select(timeout=0.05):
        s = key.fileobj
        if key.data == "t":
            try:
                gone = not s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                gone = True
            if gone:
                trickle[s][1] = time.monotonic() - start
                last_close = trickle[s][1]
                sel.unregister(s)
        else:
            st = bodies[s]
            done = False
            if ev & selectors.EVENT_READ:
                try:
                    s.recv(65536)
                    done = True  # an answer or EOF: the daemon is done with it
                except BlockingIOError:
                    pass
                except OSError:
                    done = True
            if not done and ev & selectors.EVENT_WRITE:
                try:
                    st[0] += s.send(payload[st[0]:st[0] + 65536])
                    done = st[0] >= len(payload)
                except BlockingIOError:
                    pass
                except OSError:
                    done = True
            if done:
                st[1] = True
                sel.unregister(s)
    peak = max(peak, vmhwm())

stop.set()
for th in threads:
    th.join()
peak = max(peak, vmhwm())
ok = [x for x in signed if 200 <= x[0] < 300]
print("signed_total=%d" % len(signed))
print("signed_2xx=%d" % len(ok))
print("signed_max_ms=%d" % int(max([x[1] for x in signed] or [0])))
print("signed_bad=%s" % ",".join("%d/%dms" % (x[0], x[1]) for x in signed if not (200 <= x[0] < 300) or x[1] > 1000)[:400])
print("healthz_total=%d" % len(probes))
print("healthz_ok=%d" % len([p for p in probes if p[0] == 200 and p[1] <= 1000]))
print("trickle_open_at_end=%d" % len([1 for st in trickle.values() if st[1] is None]))
print("trickle_last_close_s=%.1f" % (last_close or -1))
print("bodies_done=%d" % len([1 for st in bodies.values() if st[1]]))
print("vmhwm_kb=%d" % peak)
with open(ids_out, "w") as f:
    for x in ok:
        f.write(x[2] + "\n")
for s in list(trickle) + list(bodies):
    s.close()
