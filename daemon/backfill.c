/*
 * backfill: drives one reconciler run to its end and reports.
 *
 * The summary goes to stdout, one logfmt line per type and a total; with
 * stderr a terminal, a progress line is redrawn there every second.  A dry
 * run prints, per table, the rows missing from the mirror, the extra live
 * rows and the rows that differ (with the columns), the first ids of each.
 */
#include "backfill.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "clock.h"
#include "http_client.h"
#include "log.h"
#include "reconciler.h"
#include "store.h"

#define PROGRESS_MS 1000

typedef struct backfill {
    struct event_base *base;
    reconciler_t *rec;
    bool dry;
    bool tty;
    int rc;
    int64_t t0_ms;
} backfill_t;

static void on_ready(void *arg)
{
    backfill_t *b = arg;
    reconciler_store_ready(b->rec);
}

static void on_lost(void *arg)
{
    backfill_t *b = arg;
    reconciler_store_lost(b->rec);
}

static void print_summary(const reconciler_result_t *res)
{
    reconciler_kind_stats_t total = {0};
    for (int k = 0; k < RECON_KIND_COUNT; k++) {
        const reconciler_kind_stats_t *s = &res->kinds[k];
        double secs = s->last_ms > s->first_ms ? (double)(s->last_ms - s->first_ms) / 1000.0 : 0;
        printf("type=%s listed=%ld inserted=%ld updated=%ld unchanged=%ld tombstoned=%ld "
               "refused=%ld requests=%ld seconds=%.1f\n",
               reconcile_kind((recon_kind_t)k)->name, s->listed, s->inserted, s->updated,
               s->listed - s->inserted - s->updated, s->tombstoned, s->refused, s->requests, secs);
        total.listed += s->listed;
        total.inserted += s->inserted;
        total.updated += s->updated;
        total.tombstoned += s->tombstoned;
        total.refused += s->refused;
        total.requests += s->requests;
    }
    printf("type=total run=%lld listed=%ld inserted=%ld updated=%ld unchanged=%ld tombstoned=%ld "
           "refused=%ld requests=%ld seconds=%.1f\n",
           res->run_id, total.listed, total.inserted, total.updated,
           total.listed - total.inserted - total.updated, total.tombstoned, total.refused,
           total.requests, (double)res->elapsed_ms / 1000.0);
}

static void print_drift(const reconciler_result_t *res)
{
    static const char *what[3] = {"missing", "extra", "differ"};
    for (int k = 0; k < RECON_KIND_COUNT; k++) {
        const reconciler_drift_t *d = &res->drift[k];
        printf("table=%s missing=%ld extra=%ld differ=%ld", reconcile_kind((recon_kind_t)k)->name,
               d->count[0], d->count[1], d->count[2]);
        for (int i = 0; i < 3; i++)
            if (d->count[i] > 0)
                printf(" first_%s=%s", what[i], log_q(d->first_ids[i] ? d->first_ids[i] : "-"));
        printf("\n");
    }
    printf("drift=%s\n", res->drifted ? "yes" : "no");
}

static void on_done(void *arg, const reconciler_result_t *res)
{
    backfill_t *b = arg;
    if (b->tty)
        fprintf(stderr, "\n");
    if (!res->ok) {
        fprintf(stderr, "backfill: %s\n", res->err ? res->err : "failed");
        b->rc = 2;
    } else if (b->dry) {
        print_drift(res);
        b->rc = res->drifted ? 1 : 0;
    } else {
        print_summary(res);
        b->rc = 0;
    }
    fflush(stdout);
    event_base_loopexit(b->base, NULL);
}

/* The terminal's progress line: objects/requests per type, rate, elapsed. */
static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    backfill_t *b = arg;
    (void)fd;
    (void)what;
    long requests = 0;
    double secs = (double)(clock_mono_ms() - b->t0_ms) / 1000.0;
    fprintf(stderr, "\r");
    for (int k = 0; k < RECON_KIND_COUNT; k++) {
        const reconciler_kind_stats_t *s = reconciler_stats(b->rec, (recon_kind_t)k);
        fprintf(stderr, "%s %ld/%ld  ", reconcile_kind((recon_kind_t)k)->name, s->listed,
                s->requests);
        requests += s->requests;
    }
    fprintf(stderr, "%.0f req/s  %.0fs ", secs > 0 ? (double)requests / secs : 0.0, secs);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    backfill_t *b = arg;
    (void)sig;
    (void)what;
    fprintf(stderr, "\nbackfill: interrupted; the next backfill resumes the run\n");
    b->rc = 2;
    event_base_loopexit(b->base, NULL);
}

int backfill_main(const config_t *cfg, bool dry_run)
{
    backfill_t b = {.dry = dry_run, .rc = 2, .tty = isatty(2) == 1, .t0_ms = clock_mono_ms()};
    char err[512];
    http_client_t *http = NULL;
    store_t *store = NULL;
    struct event *ev_prog = NULL, *ev_int = NULL, *ev_term = NULL;

    if (cfg->api_key == NULL || cfg->api_key[0] == '\0') {
        fprintf(stderr, "%s: [workos] api_key: required for backfill (or set WORKOS_API_KEY)\n",
                cfg->path ? cfg->path : "config");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    b.base = event_base_new();
    if (b.base == NULL || (http = http_client_new(b.base)) == NULL) {
        fprintf(stderr, "backfill: cannot set up the event loop\n");
        goto out;
    }
    store_callbacks_t cb = {.ready = on_ready, .lost = on_lost, .arg = &b};
    store = store_new(b.base, cfg, &cb, err, sizeof(err));
    if (store == NULL) {
        fprintf(stderr, "backfill: %s\n", err);
        goto out;
    }
    b.rec = reconciler_new(b.base, cfg, store, http, dry_run, on_done, &b);
    ev_int = evsignal_new(b.base, SIGINT, on_signal, &b);
    ev_term = evsignal_new(b.base, SIGTERM, on_signal, &b);
    if (b.rec == NULL || ev_int == NULL || ev_term == NULL) {
        fprintf(stderr, "backfill: out of memory\n");
        goto out;
    }
    event_add(ev_int, NULL);
    event_add(ev_term, NULL);
    if (b.tty && (ev_prog = event_new(b.base, -1, EV_PERSIST, on_progress, &b)) != NULL) {
        struct timeval tv = clock_timeval(PROGRESS_MS);
        event_add(ev_prog, &tv);
    }
    reconciler_start(b.rec, "backfill");
    event_base_dispatch(b.base);
out:
    store_free(store);
    reconciler_free(b.rec);
    http_client_free(http);
    if (ev_prog)
        event_free(ev_prog);
    if (ev_int)
        event_free(ev_int);
    if (ev_term)
        event_free(ev_term);
    if (b.base)
        event_base_free(b.base);
    curl_global_cleanup();
    return b.rc;
}
