/*
 * store: the daemon's PostgreSQL connection, driven non-blocking from the
 * libevent loop.
 *
 * One connection, one query in flight, a FIFO of jobs.  The connection is a
 * state machine (see store_state_t in store.c) that connects, brings the
 * schema up to date, prepares the statements registered with it and then
 * runs jobs; when the server goes away every pending job fails, the owners
 * are told, and the store reconnects with backoff.  A job is one statement
 * -- prepared or text, with text or binary parameters -- and a callback
 * that reads its result; the store knows nothing of what the statements
 * mean.  The sync_state statements (cursor, lock, notes) are in
 * store_sync.c, connection set-up and migrations in store_schema.c, and the
 * apply statement in apply.c (whose entry point, store_apply, this header
 * brings in for its callers).
 *
 * The blocking helpers at the end serve the one-shot commands (migrate,
 * status), which run before or without an event loop.
 */
#ifndef WORKOS_SYNCD_STORE_H
#define WORKOS_SYNCD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "config.h"
#include "wur.h"

/* The stream name of the Events API poller in sync_state. */
#define STORE_STREAM_EVENTS_API "events_api"

typedef struct store store_t;

typedef struct store_callbacks {
    void (*ready)(void *arg); /* the store is connected and its schema current */
    void (*lost)(void *arg);  /* the connection is gone; pending jobs have failed */
    void *arg;
} store_callbacks_t;

/*
 * Creates the store and starts connecting.  `cfg` must outlive the store
 * (database url and schema are read at creation only).  Returns NULL with
 * `err` filled when out of memory.  Nothing is sent before the loop runs,
 * so statements registered right after this call are prepared on the
 * first connection.
 */
store_t *store_new(struct event_base *base, const config_t *cfg, const store_callbacks_t *cb,
                   char *err, size_t errlen) WUR;

/* Closes the connection, failing every pending job; accepts NULL. */
void store_free(store_t *s);

bool store_ready(const store_t *s); /* connected, schema current: jobs can run */

/* The schema the store works in (the config's), for building statements. */
const char *store_schema(const store_t *s);

/*
 * Registers a statement the store prepares as `name` on every connection,
 * before it reports ready; a failed prepare drops the connection (and is
 * retried with it).  Call before the loop runs.  Copies both strings.
 * Returns false when out of memory.
 */
bool store_register(store_t *s, const char *name, const char *sql) WUR;

/*
 * Registers a statement the store prepares as `name` on a connection the
 * first time a job names it, just before that job runs, from the text
 * make_sql(s, key) returns (malloc'ed; NULL: out of memory), which it frees
 * once prepared; a failed prepare drops the connection, the job failing
 * unanswered.  For statements that come in many variants, most never used,
 * whose texts are not worth keeping.  Copies `name`; false when out of
 * memory.
 */
typedef char *(*store_sql_fn)(const store_t *s, unsigned key);
bool store_register_lazy(store_t *s, const char *name, store_sql_fn make_sql, unsigned key) WUR;

/*
 * One statement for store_run(): `prepared` names a registered statement,
 * or is NULL and `sql` is the text.  `values`, `lengths` and `formats`
 * (1 = binary; NULL = all text) are PQexecParams' parameter arrays.  The
 * caller keeps all of it valid until the job's callback has been called.
 */
typedef struct store_query {
    const char *prepared;
    const char *sql;
    int n_params;
    const char *const *values;
    const int *lengths;
    const int *formats;
} store_query_t;

/* What became of one job. */
typedef struct store_reply {
    const PGresult *res;  /* the result on success (valid during the call), else NULL */
    const char *err;      /* why it failed (one line), else NULL */
    bool answered;        /* the server answered; false when it never ran or the link broke */
    const char *sqlstate; /* the server's SQLSTATE for `err` when answered, else NULL */
    bool reset;           /* the store dropped the connection over this error (it reconnects) */
    int64_t elapsed_us;   /* from sending to the last result, when answered */
} store_reply_t;

/*
 * True when an error with `sqlstate` (five characters; NULL: none) is the
 * connection's or the server's, not the statement's: class 08 (connection
 * exception), 57P01-57P03 (the server shutting down or not yet accepting),
 * and 25006 (read-only transaction: a demoted primary, a standby, or
 * default_transaction_read_only turned on).  Such a failure is transient;
 * the store drops the connection and reconnects with backoff, letting
 * libpq pick a host that is writable now (target_session_attrs).  A
 * classifier of failed batches asks this before blaming the batch.
 */
bool store_sqlstate_is_connection(const char *sqlstate);

/*
 * True when a statement that failed with `sqlstate` may well succeed if
 * simply run again, so no event of it is to blame: the connection-level
 * states above, plus 40001 and 40P01 (serialization failure, deadlock),
 * 55P03 (lock_timeout: an application holds a lock), 57014 (canceled:
 * statement_timeout or an operator), class 53 (the server short of disk,
 * memory or connections) and 58030 (an I/O error).  NULL: false.  (A
 * batch that keeps hitting statement_timeout is too big for it, not
 * poisoned: its caller may split it, but no single event is at fault.)
 */
bool store_sqlstate_is_transient(const char *sqlstate);

typedef void (*store_job_fn)(void *arg, const store_reply_t *reply);

/*
 * Queues `q` to run after the jobs before it, alone in its implicit
 * transaction.  `done` is always called exactly once: when the statement
 * has returned, or with an error when the store is not ready, the
 * connection drops, or the store is freed -- possibly from within this call.
 */
void store_run(store_t *s, const store_query_t *q, store_job_fn done, void *arg);

/*
 * Completion of a cursor load: `cursor` is the id of the last applied
 * event (NULL when none), `range_start` the ISO time to start from when
 * there is no cursor, `cursor_created_ms` the cursor event's created_at
 * (wall ms; 0 when there is no cursor or its event is no longer in the
 * log).  The strings are only valid during the call.
 */
typedef void (*store_cursor_fn)(void *arg, bool ok, const char *cursor, const char *range_start,
                                int64_t cursor_created_ms, const char *err);

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
 * Records, fire-and-forget, the event types the Events API refuses:
 * `types` comma-separated, as poller_refused_types() gives them; "" or
 * NULL records none (NULL in the column).  Updates the poller's existing
 * sync_state row only.  Dropped when not connected.
 */
void store_note_refused(store_t *s, const char *types);

/*
 * Blocking: applies pending migrations, each in its own transaction under
 * an advisory lock.  Sets *applied to how many ran.  For `migrate`.
 */
bool store_migrate(const config_t *cfg, int *applied, char *err, size_t errlen) WUR;

/*
 * Blocking: empties every analytics rollup and builds it again from the
 * event log (workos.rebuild_rollups()), for `rebuild-rollups` after a
 * restore or a load that bypassed the triggers.  Sets *events to how many
 * events were rolled up.
 */
bool store_rebuild_rollups(const config_t *cfg, long *events, char *err, size_t errlen) WUR;

/*
 * Blocking: a connection for the one-shot commands, or NULL with `err`
 * filled ("database: ...").  *unusable (when not NULL) tells a server that
 * answered but cannot be used (its encoding) from one not reached.  The
 * caller PQfinish()es it.
 */
PGconn *store_connect_blocking(const config_t *cfg, char *err, size_t errlen, bool *unusable) WUR;

/*
 * Blocking: the schema version recorded in `schema`, 0 when nothing was
 * ever migrated, or -1 with `err` filled when it cannot be read.
 */
int store_schema_version(PGconn *conn, const char *schema, char *err, size_t errlen) WUR;

/* The version the compiled-in migrations bring a schema to. */
int store_schema_latest(void);

/*
 * Blocking: who holds the poller's lock for `schema`.  Returns 1 and fills
 * `pid` and `addr` (the backend's pid and client address, or "local"), 0
 * when nobody holds it, -1 when the query failed.
 */
int store_poller_holder(PGconn *conn, const char *schema, char *pid, size_t pidlen, char *addr,
                        size_t addrlen) WUR;

/* libpq's message `msg` as one line in dst (newlines become spaces). */
void store_copy_error(char *dst, size_t len, const char *msg);

/*
 * The server's message `err` up to its DETAIL, which can quote the refused
 * row (addresses, names), in dst ("-" for none).  Returns dst.
 */
const char *store_error_without_detail(char *dst, size_t len, const char *err);

/* The apply entry point that the store's callers use. */
#include "apply.h"

#endif
