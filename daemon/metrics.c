/*
 * metrics: process-wide counters for /metrics.
 *
 * Event types are counted in a small fixed table; a type beyond its
 * capacity is counted as "other", so a stream of invented type names
 * cannot grow memory or the scrape without bound.
 */
#include "metrics.h"

#include <string.h>

#define MAX_TYPES 96
#define TYPE_LEN 64
#define N_SOURCES 2 /* events_api, webhook */

static const double commit_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
#define N_BUCKETS (sizeof(commit_buckets) / sizeof(commit_buckets[0]))

/* Status classes kept for webhook answers and poll requests. */
static const int webhook_statuses[] = {200, 400, 401, 404, 405, 413, 503};
#define N_WEBHOOK (sizeof(webhook_statuses) / sizeof(webhook_statuses[0]))

static struct {
    struct {
        char name[TYPE_LEN];
        uint64_t count[N_SOURCES];
    } types[MAX_TYPES];
    size_t n_types;
    uint64_t other[N_SOURCES];
    uint64_t inserted[N_SOURCES];
    uint64_t malformed, unknown;
    uint64_t poison_log, poison_kept;
    uint64_t batches_ok, batches_failed;
    uint64_t commit_bucket[N_BUCKETS];
    double commit_sum;
    uint64_t webhook[N_WEBHOOK], webhook_other;
    uint64_t poll_2xx, poll_429, poll_4xx, poll_5xx, poll_error;
    uint64_t backoffs;
    double backoff_seconds;
    uint64_t reconnects;
    int64_t cursor_event_ms;
    long types_refused;
    uint64_t reconcile_requests, reconcile_request_errors, reconcile_runs;
    double reconcile_last_seconds;
    long reconcile_last_changed;
    int64_t reconcile_last_ms;
} m;

static const char *const source_names[N_SOURCES] = {"events_api", "webhook"};

static int source_index(const char *source)
{
    return strcmp(source, "webhook") == 0 ? 1 : 0;
}

void metrics_events_committed(const char *source, const char *type, long n)
{
    int s = source_index(source);
    for (size_t i = 0; i < m.n_types; i++) {
        if (strcmp(m.types[i].name, type) == 0) {
            m.types[i].count[s] += (uint64_t)n;
            return;
        }
    }
    if (m.n_types < MAX_TYPES && strlen(type) < TYPE_LEN) {
        snprintf(m.types[m.n_types].name, TYPE_LEN, "%s", type);
        m.types[m.n_types++].count[s] = (uint64_t)n;
        return;
    }
    m.other[s] += (uint64_t)n;
}

void metrics_events_inserted(const char *source, long n)
{
    m.inserted[source_index(source)] += (uint64_t)n;
}

void metrics_events_malformed(long n)
{
    m.malformed += (uint64_t)n;
}

void metrics_poison_event(bool in_log)
{
    if (in_log)
        m.poison_log++;
    else
        m.poison_kept++;
}

void metrics_events_unknown(long n)
{
    m.unknown += (uint64_t)n;
}

void metrics_batch(bool ok, double seconds)
{
    if (!ok) {
        m.batches_failed++;
        return;
    }
    m.batches_ok++;
    m.commit_sum += seconds;
    for (size_t i = 0; i < N_BUCKETS; i++)
        if (seconds <= commit_buckets[i])
            m.commit_bucket[i]++;
}

void metrics_webhook_response(int status)
{
    for (size_t i = 0; i < N_WEBHOOK; i++) {
        if (webhook_statuses[i] == status) {
            m.webhook[i]++;
            return;
        }
    }
    m.webhook_other++;
}

void metrics_event_types_refused(long n)
{
    m.types_refused = n;
}

void metrics_poll_request(long status)
{
    if (status == 0)
        m.poll_error++;
    else if (status == 429)
        m.poll_429++;
    else if (status >= 500)
        m.poll_5xx++;
    else if (status >= 400)
        m.poll_4xx++;
    else
        m.poll_2xx++;
}

void metrics_backoff(int64_t ms)
{
    m.backoffs++;
    m.backoff_seconds += (double)ms / 1000.0;
}

void metrics_db_reconnect(void)
{
    m.reconnects++;
}

void metrics_cursor_event_time(int64_t ms)
{
    m.cursor_event_ms = ms;
}

/* Type names come from the wire: keep only what is safe in a label value. */
static void print_label(FILE *out, const char *s)
{
    for (; *s != '\0'; s++)
        if (*s != '"' && *s != '\\' && *s != '\n')
            fputc(*s, out);
}

/* The HELP and TYPE lines that open metric `name`. */
static void print_header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_reconcile_request(long status)
{
    m.reconcile_requests++;
    if (status != 200)
        m.reconcile_request_errors++;
}

void metrics_reconcile_finished(double seconds, long changed, int64_t finished_ms)
{
    m.reconcile_runs++;
    m.reconcile_last_seconds = seconds;
    m.reconcile_last_changed = changed;
    m.reconcile_last_ms = finished_ms;
}

/* The reconciliation's metrics. */
static void render_reconcile(FILE *out, const metrics_gauges_t *g)
{
    print_header(out, "workos_syncd_reconcile_requests_total", "counter",
                 "State-API requests made by reconciliations.");
    fprintf(out, "workos_syncd_reconcile_requests_total %llu\n",
            (unsigned long long)m.reconcile_requests);
    print_header(out, "workos_syncd_reconcile_request_errors_total", "counter",
                 "State-API requests that failed (no answer, or not 200).");
    fprintf(out, "workos_syncd_reconcile_request_errors_total %llu\n",
            (unsigned long long)m.reconcile_request_errors);
    print_header(out, "workos_syncd_reconcile_runs_total", "counter",
                 "Reconciliations finished by this process.");
    fprintf(out, "workos_syncd_reconcile_runs_total %llu\n", (unsigned long long)m.reconcile_runs);
    print_header(out, "workos_syncd_reconcile_running", "gauge",
                 "Whether a reconciliation is going on.");
    fprintf(out, "workos_syncd_reconcile_running %d\n", g->reconciling ? 1 : 0);
    print_header(out, "workos_syncd_reconcile_last_duration_seconds", "gauge",
                 "How long the last reconciliation took (0 before the first).");
    fprintf(out, "workos_syncd_reconcile_last_duration_seconds %.3f\n", m.reconcile_last_seconds);
    print_header(out, "workos_syncd_reconcile_last_changed_rows", "gauge",
                 "Rows the last reconciliation inserted, updated or tombstoned.");
    fprintf(out, "workos_syncd_reconcile_last_changed_rows %ld\n", m.reconcile_last_changed);
    print_header(out, "workos_syncd_reconcile_last_finished_timestamp_seconds", "gauge",
                 "When the last reconciliation finished, Unix time (0 before the first).");
    fprintf(out, "workos_syncd_reconcile_last_finished_timestamp_seconds %.3f\n",
            (double)m.reconcile_last_ms / 1000.0);
}

void metrics_render(FILE *out, const metrics_gauges_t *g)
{
    fputs("# HELP workos_syncd_events_committed_total Events committed to the log, by type and "
          "source (duplicates included).\n# TYPE workos_syncd_events_committed_total counter\n",
          out);
    for (size_t i = 0; i < m.n_types; i++) {
        for (int s = 0; s < N_SOURCES; s++) {
            if (m.types[i].count[s] == 0)
                continue;
            fputs("workos_syncd_events_committed_total{type=\"", out);
            print_label(out, m.types[i].name);
            fprintf(out, "\",source=\"%s\"} %llu\n", source_names[s],
                    (unsigned long long)m.types[i].count[s]);
        }
    }
    for (int s = 0; s < N_SOURCES; s++)
        if (m.other[s] > 0)
            fprintf(out, "workos_syncd_events_committed_total{type=\"other\",source=\"%s\"} %llu\n",
                    source_names[s], (unsigned long long)m.other[s]);

    print_header(out, "workos_syncd_events_inserted_total", "counter",
                 "Events new to the log, by source.");
    for (int s = 0; s < N_SOURCES; s++)
        fprintf(out, "workos_syncd_events_inserted_total{source=\"%s\"} %llu\n", source_names[s],
                (unsigned long long)m.inserted[s]);

    fprintf(out,
            "# HELP workos_syncd_events_malformed_total Events kept in the log only because "
            "their payload is wrong for their type.\n"
            "# TYPE workos_syncd_events_malformed_total counter\n"
            "workos_syncd_events_malformed_total %llu\n"
            "# HELP workos_syncd_events_unknown_total Events of a type this version does not "
            "mirror or know.\n"
            "# TYPE workos_syncd_events_unknown_total counter\n"
            "workos_syncd_events_unknown_total %llu\n",
            (unsigned long long)m.malformed, (unsigned long long)m.unknown);

    print_header(out, "workos_syncd_poison_events_total", "counter",
                 "Events the database refused, kept as poison: in the log without their "
                 "mirror effect, or in poison_events alone.");
    fprintf(out,
            "workos_syncd_poison_events_total{stored=\"log\"} %llu\n"
            "workos_syncd_poison_events_total{stored=\"poison_events\"} %llu\n",
            (unsigned long long)m.poison_log, (unsigned long long)m.poison_kept);

    print_header(out, "workos_syncd_batch_commit_seconds", "histogram",
                 "Time to commit one batch.");
    for (size_t i = 0; i < N_BUCKETS; i++)
        fprintf(out, "workos_syncd_batch_commit_seconds_bucket{le=\"%g\"} %llu\n",
                commit_buckets[i], (unsigned long long)m.commit_bucket[i]);
    fprintf(out,
            "workos_syncd_batch_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
            "workos_syncd_batch_commit_seconds_sum %.6f\n"
            "workos_syncd_batch_commit_seconds_count %llu\n",
            (unsigned long long)m.batches_ok, m.commit_sum, (unsigned long long)m.batches_ok);
    fprintf(out,
            "# HELP workos_syncd_batches_failed_total Batches that did not commit.\n"
            "# TYPE workos_syncd_batches_failed_total counter\n"
            "workos_syncd_batches_failed_total %llu\n",
            (unsigned long long)m.batches_failed);

    print_header(out, "workos_syncd_webhook_responses_total", "counter",
                 "Webhook requests answered, by status.");
    for (size_t i = 0; i < N_WEBHOOK; i++)
        fprintf(out, "workos_syncd_webhook_responses_total{status=\"%d\"} %llu\n",
                webhook_statuses[i], (unsigned long long)m.webhook[i]);
    fprintf(out, "workos_syncd_webhook_responses_total{status=\"other\"} %llu\n",
            (unsigned long long)m.webhook_other);

    fprintf(out,
            "# HELP workos_syncd_poll_requests_total Events API requests, by outcome.\n"
            "# TYPE workos_syncd_poll_requests_total counter\n"
            "workos_syncd_poll_requests_total{status=\"2xx\"} %llu\n"
            "workos_syncd_poll_requests_total{status=\"429\"} %llu\n"
            "workos_syncd_poll_requests_total{status=\"4xx\"} %llu\n"
            "workos_syncd_poll_requests_total{status=\"5xx\"} %llu\n"
            "workos_syncd_poll_requests_total{status=\"error\"} %llu\n",
            (unsigned long long)m.poll_2xx, (unsigned long long)m.poll_429,
            (unsigned long long)m.poll_4xx, (unsigned long long)m.poll_5xx,
            (unsigned long long)m.poll_error);

    fprintf(out,
            "# HELP workos_syncd_backoff_waits_total Waits before retrying the Events API.\n"
            "# TYPE workos_syncd_backoff_waits_total counter\n"
            "workos_syncd_backoff_waits_total %llu\n"
            "# HELP workos_syncd_backoff_seconds_total Time spent waiting before retries.\n"
            "# TYPE workos_syncd_backoff_seconds_total counter\n"
            "workos_syncd_backoff_seconds_total %.3f\n"
            "# HELP workos_syncd_db_reconnects_total Database reconnections.\n"
            "# TYPE workos_syncd_db_reconnects_total counter\n"
            "workos_syncd_db_reconnects_total %llu\n",
            (unsigned long long)m.backoffs, m.backoff_seconds, (unsigned long long)m.reconnects);

    fprintf(out,
            "# HELP workos_syncd_event_types_refused Configured event types the Events API "
            "refuses (named in the log and by status).\n"
            "# TYPE workos_syncd_event_types_refused gauge\n"
            "workos_syncd_event_types_refused %ld\n",
            m.types_refused);

    double lag = m.cursor_event_ms > 0 ? (double)(g->now_ms - m.cursor_event_ms) / 1000.0 : 0.0;
    fprintf(out,
            "# HELP workos_syncd_cursor_lag_seconds Age of the newest event the cursor covers "
            "(0 before the first).\n"
            "# TYPE workos_syncd_cursor_lag_seconds gauge\n"
            "workos_syncd_cursor_lag_seconds %.3f\n"
            "# HELP workos_syncd_db_connected Whether the database connection is ready.\n"
            "# TYPE workos_syncd_db_connected gauge\n"
            "workos_syncd_db_connected %d\n"
            "# HELP workos_syncd_poller_leader Whether this instance polls the Events API.\n"
            "# TYPE workos_syncd_poller_leader gauge\n"
            "workos_syncd_poller_leader %d\n"
            "# HELP workos_syncd_webhook_connections Open webhook connections.\n"
            "# TYPE workos_syncd_webhook_connections gauge\n"
            "workos_syncd_webhook_connections %d\n",
            lag < 0 ? 0.0 : lag, g->db_connected ? 1 : 0, g->poller_leader ? 1 : 0,
            g->webhook_connections);
    render_reconcile(out, g);
}

void metrics_reset(void)
{
    memset(&m, 0, sizeof(m));
}
