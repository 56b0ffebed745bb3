/*
 * snapshot: `[workos] start_from = snapshot` -- with no stored cursor, the
 * daemon first reconciles, then follows the Events API from just before
 * the reconciliation began.
 *
 * Runs before the poller exists: it checks sync_state for a cursor (or a
 * recorded start), takes the poller lock (only its holder reconciles;
 * another instance retries until one of the two has recorded a start),
 * runs the reconciler, and records range_start = the run's start minus a
 * margin.  Then it reports done, and the caller starts the poller, which
 * finds that start as if it had been configured.
 */
#ifndef WORKOS_SYNCD_SNAPSHOT_H
#define WORKOS_SYNCD_SNAPSHOT_H

#include <stdbool.h>

#include <event2/event.h>

#include "reconciler.h"
#include "store.h"
#include "wur.h"

/* Events this long before the run's start are read again (clock skew). */
#define SNAPSHOT_MARGIN_MS (5 * 60 * 1000)

typedef struct snapshot snapshot_t;

/*
 * A bootstrap on `store`, running `rec` (both outlive it).  `done(arg)` is
 * called once, when the poller may start.  NULL when out of memory.
 */
snapshot_t *snapshot_new(struct event_base *base, store_t *store, reconciler_t *rec,
                         void (*done)(void *arg), void *arg) WUR;

/* Frees; accepts NULL. */
void snapshot_free(snapshot_t *s);

void snapshot_store_ready(snapshot_t *s); /* the store (re)connected */
void snapshot_store_lost(snapshot_t *s);  /* the store lost its connection (and the lock) */

/* The reconciler's completion, passed on while the snapshot runs. */
void snapshot_reconciled(snapshot_t *s, const reconciler_result_t *res);

/*
 * After a reconciliation for an expired cursor: forgets the cursor and
 * records range_start = `started_ms` minus the margin, in one statement;
 * done(arg, ok) follows.  The poller then starts over from there.
 */
void snapshot_forget_cursor(store_t *store, int64_t started_ms, void (*done)(void *arg, bool ok),
                            void *arg);

/* True while this connection holds the poller lock for the snapshot. */
bool snapshot_lock_held(const snapshot_t *s);

/* True once done() was called. */
bool snapshot_done(const snapshot_t *s);

#endif
