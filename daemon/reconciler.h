/*
 * reconciler: lists every mirrored type from the WorkOS state APIs and
 * applies what it lists, page by page, each page in one transaction with
 * its progress row; then tombstones what a complete listing lacked.
 *
 * A run is resumable: its phase, scopes and page cursors live in
 * reconcile_runs / reconcile_scopes, so after a crash (or a lost database
 * connection) the next start continues the newest unfinished run.  Several
 * listings are in flight at once, paced by a token bucket of its own under
 * both WorkOS rate limits.  A dry run stages the listing in temporary
 * tables on the store's connection and compares them with the mirror,
 * writing nothing.
 */
#ifndef WORKOS_SYNCD_RECONCILER_H
#define WORKOS_SYNCD_RECONCILER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "http_client.h"
#include "reconcile_sql.h"
#include "store.h"
#include "wur.h"

typedef struct reconciler reconciler_t;

/* What a run did to one kind (this process's share for requests and time). */
typedef struct reconciler_kind_stats {
    long requests;             /* HTTP requests made, failures included */
    long listed;               /* objects listed */
    long inserted;             /* rows new to the mirror */
    long updated;              /* rows whose columns changed */
    long tombstoned;           /* live rows the listing lacked, tombstoned */
    long refused;              /* listed objects the database refused (reconcile_refused) */
    int64_t first_ms, last_ms; /* monotonic times of the first request and the last commit */
} reconciler_kind_stats_t;

/* A dry run's finding for one kind: missing, extra, differing rows. */
typedef struct reconciler_drift {
    long count[3];      /* missing, extra, differ */
    char *first_ids[3]; /* the first ids of each (malloc'ed, or NULL) */
} reconciler_drift_t;

/* A finished run, as reported to the completion callback. */
typedef struct reconciler_result {
    bool ok;                 /* the run finished; false: err says why */
    const char *err;         /* one line, when !ok */
    long long run_id;        /* the run (0 for a dry run) */
    int64_t started_wall_ms; /* when the run began (its watermark) */
    int64_t elapsed_ms;      /* this process's time on it */
    reconciler_kind_stats_t kinds[RECON_KIND_COUNT];
    reconciler_drift_t drift[RECON_KIND_COUNT]; /* dry run only */
    bool drifted;                               /* dry run: any drift */
} reconciler_result_t;

typedef void (*reconciler_done_fn)(void *arg, const reconciler_result_t *res);

/*
 * A reconciler on `base`, using `store` and `http` (both outlive it).
 * `dry_run` stages and compares instead of applying.  `done` is called
 * once per run started.  Returns NULL when out of memory.
 */
reconciler_t *reconciler_new(struct event_base *base, const config_t *cfg, store_t *store,
                             http_client_t *http, bool dry_run, reconciler_done_fn done,
                             void *arg) WUR;

/* Cancels what is in flight (no callback) and frees; accepts NULL. */
void reconciler_free(reconciler_t *r);

/*
 * Starts (or resumes) a run with `reason` (a static string: "backfill",
 * "snapshot", "periodic", "cursor_expired"); the run begins once the store
 * is ready.  Ignored while a run is going on.
 */
void reconciler_start(reconciler_t *r, const char *reason);

/* The store connected (or reconnected): a waiting run resumes. */
void reconciler_store_ready(reconciler_t *r);

/* The store lost its connection: in-flight work is dropped, to resume later. */
void reconciler_store_lost(reconciler_t *r);

/* True while a run is going on. */
bool reconciler_busy(const reconciler_t *r);

/*
 * Makes every start and resumption wait until `may_run(arg)` is true
 * (checked again every few seconds): the daemon lets only the poller-lock
 * holder reconcile.  Without a gate (the default) a run starts at once.
 */
void reconciler_set_gate(reconciler_t *r, bool (*may_run)(void *arg), void *arg);

/* The current (or last) run's counters for kind `k`, and its start (wall ms). */
const reconciler_kind_stats_t *reconciler_stats(const reconciler_t *r, recon_kind_t k);
int64_t reconciler_started_ms(const reconciler_t *r);

#endif
