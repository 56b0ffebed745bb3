#!/usr/bin/env python3
"""Many concurrent clients on the webhook listener, loopback only, bounded.

WORKERS threads each open connection after connection for DURATION seconds.
Each connection plays one scenario, in turn, of how a request's bytes can
reach the header-time gate (see SCENARIOS): a head in one write, a head
byte by byte, a head cut at any offset, a head and its body in one write,
a body split from its head, pipelined keep-alive requests (with the next
head in the same write as a body's last bytes), Expect: 100-continue, HEAD
probes on a keep-alive connection (no body may follow their answers),
requests refused by the gate, and connections closed half-way through a
head or a body.  Every
request that should be answered must be answered, with the status it
should get, within ANSWER_S seconds.

Prints one name=value line per count and, for the first few unanswered or
wrong answers, one `problem ...` line each:

  requests       requests that should have been answered
  answered       of those, answered with the expected status
  unanswered     no complete answer within ANSWER_S
  wrong          answered with another status, or not HTTP
  aborted        connections closed half-way on purpose
  max_ms         slowest answer
  stored_ids     signed webhooks answered 200 (their ids go to IDS_OUT)

Usage: webhook_gate_stress.py PORT PATH SECRET ID_PREFIX IDS_OUT [WORKERS DURATION ANSWER_S]
Exits 0 when every request was answered as expected, 1 otherwise.
"""
import hashlib
import hmac
import json
import random
import socket
import sys
import threading
import time

port, path, secret, prefix, ids_out = sys.argv[1:6]
port = int(port)
workers_n = int(sys.argv[6]) if len(sys.argv) > 6 else 24
duration = float(sys.argv[7]) if len(sys.argv) > 7 else 8.0
answer_s = float(sys.argv[8]) if len(sys.argv) > 8 else 5.0
addr = ("127.0.0.1", port)

lock = threading.Lock()
counts = {"requests": 0, "answered": 0, "unanswered": 0, "wrong": 0, "aborted": 0}
max_ms = [0]
problems = []
stored = []
serial = [0]


def count(key, n=1):
    with lock:
        counts[key] += n


def problem(text):
    with lock:
        if len(problems) < 20:
            problems.append(text)


def next_id():
    with lock:
        serial[0] += 1
        return "%s_%06d" % (prefix, serial[0])


def get(p, method="GET"):
    return ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n" % (method, p)).encode()


def signed_post(close=False):
    """A signed webhook: (head, body, event id)."""
    eid = next_id()
    body = json.dumps({
        "object": "event", "id": eid, "event": "user.created",
        "created_at": "2026-02-01T00:00:00.000Z",
        "data": {"object": "user", "id": "user_" + eid, "email": eid + "@stress.test",
                 "first_name": "A", "last_name": "B", "email_verified": True,
                 "profile_picture_url": None, "last_sign_in_at": None, "external_id": None,
                 "metadata": {}, "created_at": "2026-02-01T00:00:00.000Z",
                 "updated_at": "2026-02-01T00:00:00.000Z"}}, separators=(",", ":")).encode()
    t = str(int(time.time() * 1000))
    mac = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "WorkOS-Signature: t=%s, v1=%s\r\nContent-Length: %d\r\n%s\r\n"
            % (path, t, mac, len(body), "Connection: close\r\n" if close else "")).encode()
    return head, body, eid


class Conn:
    """One client connection and the answers read from it."""

    def __init__(self):
        self.s = socket.create_connection(addr, timeout=answer_s)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def send_bytewise(self, data, pause_every=7):
        for i in range(len(data)):
            self.s.sendall(data[i:i + 1])
            if i % pause_every == 0:
                time.sleep(0.0005)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.s.settimeout(left)
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError()
        self.buf += chunk

    def answer(self, head_request, deadline):
        """The status of the next answer, read whole; raises on timeout or EOF."""
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError("not an HTTP answer: %r" % lines[0][:80])
        status = int(parts[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if not head_request:
            while len(self.buf) < length:
                self._fill(deadline)
            self.buf = self.buf[length:]
        return status

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def expect(c, scenario, want, n_ids=(), head_request=False):
    """Reads one answer on c and counts it; False when the connection is done."""
    count("requests")
    t0 = time.monotonic()
    try:
        st = c.answer(head_request, t0 + answer_s)
    except socket.timeout:
        count("unanswered")
        problem("scenario=%s unanswered_after_s=%.1f want=%d" % (scenario, answer_s, want))
        return False
    except (EOFError, OSError) as e:
        count("unanswered")
        problem("scenario=%s closed_without_answer=%s want=%d" % (scenario, type(e).__name__, want))
        return False
    except ValueError as e:
        count("wrong")
        problem("scenario=%s %s" % (scenario, e))
        return False
    ms = int((time.monotonic() - t0) * 1000)
    with lock:
        max_ms[0] = max(max_ms[0], ms)
    if st != want:
        count("wrong")
        problem("scenario=%s status=%d want=%d" % (scenario, st, want))
        return False
    count("answered")
    with lock:
        stored.extend(n_ids)
    return True


# ---- the scenarios: each opens one connection -------------------------------

def sc_readyz_keepalive(rng):
    c = Conn()
    try:
        c.send(get("/readyz"))
        if expect(c, "readyz_keepalive", 200):
            c.send(get("/healthz"))
            expect(c, "readyz_keepalive_second", 200)
    finally:
        c.close()


def sc_healthz_bytewise(rng):
    c = Conn()
    try:
        c.send_bytewise(get("/healthz"))
        expect(c, "healthz_bytewise", 200)
    finally:
        c.close()


def sc_head_cut(rng):
    c = Conn()
    try:
        req = get(rng.choice(["/readyz", "/healthz", "/metrics"]))
        cut = rng.randrange(1, len(req))
        c.send(req[:cut])
        time.sleep(rng.choice([0, 0.001, 0.01]))
        c.send(req[cut:])
        expect(c, "head_cut", 200)
    finally:
        c.close()


def sc_post_whole(rng):
    head, body, eid = signed_post()
    c = Conn()
    try:
        c.send(head + body)
        expect(c, "post_whole", 200, [eid])
    finally:
        c.close()


def sc_post_split(rng):
    head, body, eid = signed_post()
    c = Conn()
    try:
        how = rng.randrange(3)
        if how == 0:  # the head alone, then the body
            c.send(head)
            time.sleep(0.002)
            c.send(body)
        elif how == 1:  # the head cut anywhere, the rest with the body
            cut = rng.randrange(1, len(head))
            c.send(head[:cut])
            time.sleep(0.002)
            c.send(head[cut:] + body)
        else:  # the head and the body's first bytes, then the rest byte by byte
            cut = rng.randrange(1, len(body))
            c.send(head + body[:cut])
            c.send_bytewise(body[cut:], pause_every=16)
        expect(c, "post_split_%d" % how, 200, [eid])
    finally:
        c.close()


def sc_post_bytewise(rng):
    head, body, eid = signed_post()
    c = Conn()
    try:
        c.send_bytewise(head + body, pause_every=24)
        expect(c, "post_bytewise", 200, [eid])
    finally:
        c.close()


def sc_post_expect(rng):
    """Expect: 100-continue, as curl sends for larger bodies: the body follows
    the interim answer."""
    head, body, eid = signed_post()
    head = head[:-2] + b"Expect: 100-continue\r\n\r\n"
    c = Conn()
    try:
        c.send(head)
        if expect(c, "post_expect_100", 100):
            c.send(body)
            expect(c, "post_expect", 200, [eid])
    finally:
        c.close()


def sc_probe_head(rng):
    """HEAD probes on one keep-alive connection: no body may follow them."""
    c = Conn()
    try:
        c.send(get("/healthz", "HEAD"))
        if expect(c, "probe_head_1", 200, head_request=True):
            c.send(get(rng.choice(["/readyz", "/metrics"]), "HEAD"))
            if expect(c, "probe_head_2", 200, head_request=True):
                c.send(get("/healthz"))
                expect(c, "probe_head_3", 200)
    finally:
        c.close()


def sc_pipelined(rng):
    """Keep-alive requests in one write: the next head follows a body's end."""
    h1, b1, e1 = signed_post()
    h2, b2, e2 = signed_post()
    c = Conn()
    try:
        c.send(get("/healthz") + h1 + b1 + get("/readyz") + h2 + b2 + get("/healthz", "HEAD"))
        ok = (expect(c, "pipelined_1", 200) and expect(c, "pipelined_2", 200, [e1]) and
              expect(c, "pipelined_3", 200) and expect(c, "pipelined_4", 200, [e2]) and
              expect(c, "pipelined_5", 200, head_request=True))
        if ok:  # the connection is still usable after all of them
            c.send(get("/readyz"))
            expect(c, "pipelined_6", 200)
    finally:
        c.close()


def sc_pipelined_cut(rng):
    """Two keep-alive requests whose bytes are cut at one random offset."""
    h1, b1, e1 = signed_post()
    data = h1 + b1 + get("/readyz")
    cut = rng.randrange(1, len(data))
    c = Conn()
    try:
        c.send(data[:cut])
        time.sleep(rng.choice([0, 0.002]))
        c.send(data[cut:])
        if expect(c, "pipelined_cut_1", 200, [e1]):
            expect(c, "pipelined_cut_2", 200)
    finally:
        c.close()


def sc_refused(rng):
    """Answered by the gate from the head: no signature, unknown path, method,
    or a NUL byte in a signed webhook's head (400, and the event not stored)."""
    c = Conn()
    try:
        kind = rng.randrange(4)
        if kind == 0:
            body = b'{"object":"event"}'
            c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                    % (path, len(body))).encode() + body)
            expect(c, "refused_unsigned", 401)
        elif kind == 1:
            c.send_bytewise(get("/no/such/path"), pause_every=5)
            expect(c, "refused_404", 404)
        elif kind == 2:
            c.send(get(path))
            expect(c, "refused_405", 405)
        else:
            head, body, _ = signed_post()
            line_end = head.index(b"\r\n") + 2
            c.send(head[:line_end] + b"X-Pad: a\x00b\r\n" + head[line_end:] + body)
            expect(c, "refused_nul", 400)
    finally:
        c.close()


def sc_aborted(rng):
    """Closed half-way through a head or a body: no answer expected."""
    c = Conn()
    try:
        if rng.randrange(2) == 0:
            req = get("/readyz")
            c.send(req[:rng.randrange(1, len(req) - 1)])
        else:
            head, body, _ = signed_post()
            c.send(head + body[:rng.randrange(0, len(body) - 1)])
        time.sleep(rng.choice([0, 0.005]))
        count("aborted")
    finally:
        c.close()


SCENARIOS = [sc_readyz_keepalive, sc_healthz_bytewise, sc_head_cut, sc_post_whole,
             sc_post_split, sc_post_bytewise, sc_post_expect, sc_probe_head, sc_pipelined,
             sc_pipelined_cut, sc_refused, sc_aborted]


def worker(k, stop_at):
    rng = random.Random(k)
    i = k
    while time.monotonic() < stop_at:
        sc = SCENARIOS[i % len(SCENARIOS)]
        i += 1
        try:
            sc(rng)
        except OSError as e:
            count("wrong")
            problem("scenario=%s error=%s" % (sc.__name__[3:], e))


def main():
    stop_at = time.monotonic() + duration
    threads = [threading.Thread(target=worker, args=(k, stop_at), daemon=True)
               for k in range(workers_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 4 * answer_s + 30)
    stuck = sum(1 for t in threads if t.is_alive())
    with open(ids_out, "w") as f:
        for eid in stored:
            f.write(eid + "\n")
    for k in ("requests", "answered", "unanswered", "wrong", "aborted"):
        print("%s=%d" % (k, counts[k]))
    print("max_ms=%d" % max_ms[0])
    print("stored_ids=%d" % len(stored))
    print("stuck_workers=%d" % stuck)
    for p in problems:
        print("problem " + p)
    ok = (counts["unanswered"] == 0 and counts["wrong"] == 0 and stuck == 0 and
          counts["answered"] == counts["requests"] and counts["requests"] > 0)
    sys.exit(0 if ok else 1)


main()
