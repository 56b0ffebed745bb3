#!/usr/bin/env bash
# Nobody unauthenticated can exhaust the listener. At once: 1,000
# connections trickle a request one byte every 2 s (500 a head, 500 the body
# after a head whose signature is well formed), and 800 send an
# unsigned 1,000,000-byte body as fast as they can. Meanwhile every
# correctly signed webhook is answered 2xx within 1 s and stored, /healthz
# answers within 1 s, the trickling connections are closed by the
# whole-request deadline (10 s; client_timeout, which only cuts silent
# connections, is set longer so that it cannot be what closes them), the unsigned bodies are
# refused from their head (401) without being buffered, and the daemon's
# peak RSS stays under 64 MiB.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
require_bins
command -v python3 >/dev/null || fail "python3 is needed for this test"

# 1,800 client sockets here and as many in the daemon, plus its own.
[ "$(ulimit -n)" -ge 8192 ] || ulimit -n 8192 || fail "cannot raise the open-file limit to 8192"

SECRET=whsec_exhaust_1
pg_start
daemon_config workos.api_key= workos.base_url= webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET" \
    webhook.max_connections=4096 webhook.client_timeout=60s log.level=info
daemon_start
wh_wait_port
wait_for 15 "/readyz 200" wh_ready
path=${WH_URL#"$WH_BASE"}

python3 "$(dirname "$0")/webhook_exhaust.py" "$WH_PORT" "$path" "$SECRET" "$DAEMON_PID" evt_EXHAUST \
    "$T/ok.ids" 1000 800 14 >"$T/exhaust.out" || fail "the load generator failed"
cat "$T/exhaust.out" >&2
val() { sed -n "s/^$1=//p" "$T/exhaust.out"; }

daemon_alive || fail "daemon exited under the load"
total=$(val signed_total)
[ "$total" -ge 20 ] || fail "only $total signed webhooks were sent"
assert_eq "$total" "$(val signed_2xx)" "signed webhooks answered 2xx"
[ "$(val signed_max_ms)" -le 1000 ] || fail "a signed webhook took $(val signed_max_ms) ms (> 1 s): $(val signed_bad)"
assert_eq "$(val healthz_total)" "$(val healthz_ok)" "/healthz probes answered 200 within 1 s"
assert_eq 0 "$(val trickle_open_at_end)" "trickling connections still open after 14 s"
assert_eq 800 "$(val bodies_done)" "unsigned body senders answered or cut off"
hwm=$(val vmhwm_kb)
# AddressSanitizer's shadow memory and quarantine are not the daemon's:
# under it the bound is four times as loose (and still catches buffering
# every body, which took about 1 GiB).
limit_kib=$((64 * 1024))
# (grep reads all of ldd's output: with -q it could stop at libasan, the
# first line, and ldd die of SIGPIPE, which pipefail makes a "no".)
if ldd "$SYNCD" 2>/dev/null | grep libasan >/dev/null; then
    limit_kib=$((4 * 64 * 1024))
fi
[ "$hwm" -gt 0 ] && [ "$hwm" -lt "$limit_kib" ] || fail "peak RSS ${hwm} KiB (want < $((limit_kib / 1024)) MiB)"
log "signed: $total answered 2xx, slowest $(val signed_max_ms) ms; last trickler closed at $(val trickle_last_close_s) s; peak RSS $hwm KiB"

# Every 2xx is stored; the unsigned bodies were refused at header time.
assert_ids_stored "$T/ok.ids" "signed webhooks answered 2xx"
refused=$(grep -c 'event=webhook_rejected .*status=401 reason=signature_missing stage=head' "$DAEMON_LOG" || true)
[ "$refused" -ge 700 ] || fail "only $refused unsigned bodies were refused from their head"
deadline=$(grep -c 'event=webhook_request_deadline' "$DAEMON_LOG" || true)
[ "$deadline" -ge 900 ] || fail "only $deadline trickling requests were cut by the request deadline"
log "$refused refused at header time, $deadline cut by the request deadline"
assert_eq 200 "$(http_code "$WH_BASE/healthz")" "/healthz after the load"
daemon_stop
