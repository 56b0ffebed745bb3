/*
 * store: the daemon's PostgreSQL connection, driven non-blocking from the
 * libevent loop.
 *
 * One connection, one query in flight, a FIFO of jobs.  The connection is a
 * state machine (see store_state_t) that connects, brings the schema up to
 * date, prepares the apply statement and then runs jobs; when the server
 * goes away every pending job fails, the owners are told, and the store
 * reconnects with backoff.  An apply job writes a whole batch -- event log,
 * mirror rows, cursor and notification -- in ONE statement, so it commits
 * or vanishes as a unit.
 *
 * The blocking helpers at the end serve the one-shot commands (migrate,
 * status), which run before or without an event loop.
 */
#ifndef WORKOS_SYNCD_STORE_H
#define WORKOS_SYNCD_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>

#include "config.h"
#include "event.h"
#include "wur.h"

/* The stream name of the Events API poller in sync_state. */
#define STORE_STREAM_EVENTS_API "events_api"

typedef struct store store_t;

/* What one apply statement did. */
typedef struct store_apply_result {
    long inserted;           /* events new to the log (the rest were duplicates) */
    long rows[MIRROR_COUNT]; /* mirror rows inserted or changed, per table */
    int64_t commit_us;       /* time from send to commit, microseconds */
} store_apply_result_t;

/*
 * Completion of an apply.  `ok` false means the batch was not committed
 * (err says why); on success `res` describes it.  `arg` is the caller's.
 */
typedef void (*store_apply_fn)(void *arg, bool ok, const store_apply_result_t *res,
                               const char *err);

/*
 * Completion of a cursor load: `cursor` is the id of the last applied
 * event (NULL when none), `range_start` the ISO time to start from when
 * there is no cursor.  Both are only valid during the call.
 */
typedef void (*store_cursor_fn)(void *arg, bool ok, const char *cursor, const char *range_start,
                                const char *err);

typedef struct store_callbacks {
    void (*ready)(void *arg); /* the store is connected and its schema current */
    void (*lost)(void *arg);  /* the connection is gone; pending jobs have failed */
    void *arg;
} store_callbacks_t;

/*
 * Creates the store and starts connecting.  `cfg` must outlive the store
 * (database url and schema are read at creation only).  Returns NULL with
 * `err` filled when the apply statement cannot be built.
 */
store_t *store_new(struct event_base *base, const config_t *cfg, const store_callbacks_t *cb,
                   char *err, size_t errlen) WUR;

/* Closes the connection, failing every pending job; accepts NULL. */
void store_free(store_t *s);

bool store_ready(const store_t *s); /* connected, schema current: jobs can run */

/*
 * Queues a batch for one transaction.  Takes ownership of `batch`.
 * `cursor`, when not NULL, is stored as the poller's cursor in the same
 * transaction; `caught_up` records that the batch ends at the end of the
 * stream.  `source` is "events_api" or "webhook".  `done` is always called
 * exactly once, possibly from within this call when the store is not ready.
 */
void store_apply(store_t *s, event_batch_t *batch, const char *source, const char *cursor,
                 bool caught_up, store_apply_fn done, void *arg);

/*
 * Reads the poller's cursor, first recording where to start when there is
 * none: `start_from` is "now" (resolved once and remembered, so a restart
 * before the first event does not skip ahead) or an ISO 8601 time.
 */
void store_load_cursor(store_t *s, const char *start_from, store_cursor_fn done, void *arg);

/* Completion of a lock attempt: `held` tells whether this connection holds it. */
typedef void (*store_lock_fn)(void *arg, bool ok, bool held, const char *err);

/*
 * Tries to take the poller's advisory lock (per schema) on this connection.
 * The lock lives as long as the connection: when it drops, PostgreSQL
 * releases it and another instance can take over.
 */
void store_try_poller_lock(store_t *s, store_lock_fn done, void *arg);

/*
 * Records, fire-and-forget, that the poller reached the end of the stream
 * (`error` NULL) or failed with `error`.  Dropped when not connected.
 */
void store_note(store_t *s, const char *error);

/*
 * Blocking: applies pending migrations, each in its own transaction under
 * an advisory lock.  Sets *applied to how many ran.  For `migrate`.
 */
bool store_migrate(const config_t *cfg, int *applied, char *err, size_t errlen) WUR;

/*
 * Blocking: prints the sync status as key=value lines.  Returns 0 when
 * caught up (end of stream reached within `fresh_ms` and no error since),
 * 1 when behind or failing, 2 when the database cannot be read.
 */
int store_status(const config_t *cfg, FILE *out, int64_t fresh_ms);

#endif
