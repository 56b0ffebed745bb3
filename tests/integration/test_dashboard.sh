#!/usr/bin/env bash
# config/grafana-dashboard.json: it parses, has the two rows, every
# Prometheus expression names only metrics that a running daemon exports
# (its /metrics scraped after a backfill and some webhooks), and every SQL
# query, with Grafana's time macros replaced by literals, runs against the
# migrated schema holding the backfilled history and returns rows.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_extra.sh"
source "$(dirname "$0")/lib_rollup.sh"
require_bins

DASH=$REPO_ROOT/config/grafana-dashboard.json
SECRET=whsec_dashboard_77e1b0c2
pg_start
gen_stream 5000 2323
emu_start "$EVENTS_SERVED"
daemon_config webhook.listen=127.0.0.1:0 "webhook.secret=$SECRET"
daemon_start
wh_wait_port
wait_caught_up 60
wait_rollups_current

# A few webhooks, one of them refused, so the webhook series exist too.
"$EMU" send --url "$WH_URL" --secret "$SECRET" --events "$EVENTS" --first 0 --count 20 \
    --log "$T/send.log" 2>"$T/send.stderr" || fail "webhook sender failed: $(cat "$T/send.stderr")"
body=$(body_file bad.json '{"id":"evt_x","event":"user.created"}')
assert_eq 401 "$(wh_post "$body" whsec_wrong_secret_123)" "answer to a bad signature"

# The panels the dashboard holds: one line each, KIND<TAB>TEXT.
python3 - "$DASH" >"$T/targets.tsv" <<'EOF' || fail "the dashboard does not parse: $(cat "$T/targets.tsv")"
import json, sys
d = json.load(open(sys.argv[1]))
rows = [p["title"] for p in d["panels"] if p.get("type") == "row"]
assert len(rows) == 2, "want two rows, got %r" % rows
for p in d["panels"]:
    for t in p.get("targets", []):
        ds = t.get("datasource", p.get("datasource", {})).get("type", "")
        if "prometheus" in ds:
            print("prom\t" + t["expr"])
        elif "postgres" in ds:
            assert t.get("rawQuery") and t.get("rawSql"), "a PostgreSQL target without raw SQL in %r" % p["title"]
            print("sql\t" + t["rawSql"].replace("\n", " "))
        else:
            raise SystemExit("panel %r: unknown data source %r" % (p["title"], ds))
EOF
n_prom=$(grep -c '^prom' "$T/targets.tsv" || true)
n_sql=$(grep -c '^sql' "$T/targets.tsv" || true)
[ "$n_prom" -ge 6 ] && [ "$n_sql" -ge 10 ] || fail "only $n_prom Prometheus and $n_sql SQL targets"
log "dashboard parses: $n_prom Prometheus expressions, $n_sql SQL queries"

# Every metric an expression names is one the daemon exports.
curl -s --max-time 5 "$WH_BASE/metrics" >"$T/metrics.txt" || fail "could not scrape /metrics"
awk '!/^#/ && NF { n = $1; sub(/\{.*/, "", n); print n }' "$T/metrics.txt" | sort -u >"$T/exported.txt"
[ "$(wc -l <"$T/exported.txt")" -ge 10 ] || fail "/metrics exports too little: $(head -c 300 "$T/metrics.txt")"
while IFS=$'\t' read -r kind text; do
    [ "$kind" = prom ] || continue
    names=$(grep -o -E '[a-zA-Z_:][a-zA-Z0-9_:]*' <<<"$text" | grep -E '^workos_' | sort -u || true)
    [ -n "$names" ] || fail "expression names no workos metric: $text"
    for n in $names; do
        grep -qx -F "$n" "$T/exported.txt" || fail "metric $n (in: $text) is not exported by the daemon"
    done
    # Anything else that reads like a metric name must be PromQL itself.
    others=$(sed -E 's/\{[^}]*\}//g; s/\[[^]]*\]//g; s/"[^"]*"//g' <<<"$text" |
        grep -o -E '[a-zA-Z_:][a-zA-Z0-9_:]*' | grep -v -E '^workos_' |
        grep -v -x -E 'sum|rate|increase|histogram_quantile|by|le|source|status|avg|max|min' || true)
    [ -z "$others" ] || fail "unexpected identifiers $others in: $text"
done <"$T/targets.tsv"
log "every metric the dashboard names is exported"

# Data for the panels the generated stream has nothing for.
q >/dev/null <<'EOF' || fail "could not add the radar and stuffing events"
insert into workos.events (id, event, created_at, data, source)
select 'evt_dash_' || g, 'authentication.password_failed', timestamptz '2026-01-01 12:00:00+00' + g * interval '1 minute',
       jsonb_build_object('type', 'password', 'status', 'failed', 'email', 'v' || g || '@dash.test',
                          'ip_address', '203.0.113.50', 'error', jsonb_build_object('code', 'invalid_credentials')),
       'webhook'
  from generate_series(1, 12) g;
insert into workos.events (id, event, created_at, data, source) values
  ('evt_dash_radar', 'authentication.radar_risk_detected', '2026-01-01 13:00:00+00',
   '{"user_id": "user_dash", "ip_address": "203.0.113.50", "action": "signin"}', 'webhook');
EOF
# The daemon's rollup step counts them (and the webhooks') within a second.
wait_rollups_current

FROM="'2025-12-01T00:00:00Z'"
TO="'2026-02-01T00:00:00Z'"
i=0
while IFS=$'\t' read -r kind text; do
    [ "$kind" = sql ] || continue
    i=$((i + 1))
    query=${text//'$__timeFrom()'/$FROM}
    query=${query//'$__timeTo()'/$TO}
    [[ $query != *'$'* ]] || fail "query $i has a macro the test does not replace: $text"
    out=$(q -c "set timezone = 'UTC'; $query" 2>&1) || fail "query $i fails: $out
query: $query"
    [ -n "$out" ] || fail "query $i returns no rows over the backfilled history: $query"
done <"$T/targets.tsv"
assert_eq "$n_sql" "$i" "SQL queries run"
log "all $i SQL queries run and return rows"
daemon_stop
