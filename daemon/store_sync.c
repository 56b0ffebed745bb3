/*
 * store_sync: the poller's rows in sync_state and its advisory lock, as
 * store jobs: reading (and initialising) the cursor, taking the lock,
 * recording caught-up, an error or the refused event types, and --
 * blocking, for `status` -- who holds the lock.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/*
 * The poller's lock: one per schema, so instances mirroring different
 * schemas into one database do not exclude each other.  The first key is
 * a constant namespace ("WSNC"); status reads the same pair in pg_locks.
 */
#define POLLER_LOCK_NS "1465077315"
#define POLLER_LOCK_SQL                                                                            \
    "SELECT pg_try_advisory_lock(" POLLER_LOCK_NS ", hashtext('workos-syncd poller ' || $1))"
#define POLLER_LOCK_HOLDER_SQL                                                                     \
    "SELECT a.pid, coalesce(host(a.client_addr), 'local'), a.application_name "                    \
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "                                    \
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = " POLLER_LOCK_NS "::oid "         \
    "AND l.objid = hashtext('workos-syncd poller ' || $1)::oid AND l.objsubid = 2"

/*
 * Each template has exactly one %s, the schema.  The cursor query records
 * where to start when there is no cursor: an explicit start_from replaces
 * a remembered one until the first event is applied, and "now" is
 * resolved once and then remembered.
 */
#define CURSOR_SQL                                                                                 \
    "INSERT INTO %s.sync_state AS t (stream, range_start) VALUES ($1, CASE WHEN $2 = 'now' THEN "  \
    "now() ELSE $2::timestamptz END) ON CONFLICT (stream) DO UPDATE SET range_start = CASE WHEN "  \
    "t.cursor IS NULL AND $2 <> 'now' THEN excluded.range_start ELSE coalesce(t.range_start, "     \
    "excluded.range_start) END RETURNING cursor, to_char(range_start AT TIME ZONE 'UTC', "         \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), (SELECT (extract(epoch FROM e.created_at) * 1000)"      \
    "::bigint FROM %s.events e WHERE e.id = t.cursor)"
#define CAUGHT_UP_SQL                                                                              \
    "UPDATE %s.sync_state SET caught_up_at = now(), last_error = NULL, last_error_at = NULL "      \
    "WHERE stream = $1"
#define ERROR_SQL                                                                                  \
    "INSERT INTO %s.sync_state AS t (stream, last_error, last_error_at) VALUES ($1, $2, now()) "   \
    "ON CONFLICT (stream) DO UPDATE SET last_error = excluded.last_error, last_error_at = now()"
/* Only an existing row: the poller records its types after loading the cursor. */
#define REFUSED_SQL "UPDATE %s.sync_state SET refused_types = $2 WHERE stream = $1"

/* One sync_state job: its statement and text parameters, owned here. */
typedef struct sync_job {
    char *sql;
    char *text; /* start_from, the error of a note, or the refused types */
    const char *params[2];
    store_cursor_fn cursor_done;
    store_lock_fn lock_done;
    void *arg;
} sync_job_t;

static void sync_job_free(sync_job_t *j)
{
    if (j == NULL)
        return;
    free(j->sql);
    free(j->text);
    free(j);
}

typedef enum sync_kind {
    SYNC_CURSOR,    /* read and initialise the cursor */
    SYNC_LOCK,      /* try the poller's lock */
    SYNC_CAUGHT_UP, /* note the end of the stream */
    SYNC_ERROR,     /* note an error */
    SYNC_REFUSED    /* note the refused event types */
} sync_kind_t;

/* The statement of `kind` for `schema`, malloc'ed; NULL when out of memory. */
static char *sync_sql(sync_kind_t kind, const char *schema)
{
    char *sql = NULL;
    int r = -1;
    switch (kind) {
    case SYNC_CURSOR:
        r = asprintf(&sql, CURSOR_SQL, schema, schema);
        break;
    case SYNC_LOCK:
        return strdup(POLLER_LOCK_SQL);
    case SYNC_CAUGHT_UP:
        r = asprintf(&sql, CAUGHT_UP_SQL, schema);
        break;
    case SYNC_ERROR:
        r = asprintf(&sql, ERROR_SQL, schema);
        break;
    case SYNC_REFUSED:
        r = asprintf(&sql, REFUSED_SQL, schema);
        break;
    }
    return r < 0 ? NULL : sql;
}

/* A job of `kind` with `text` copied as its second parameter; NULL when out of memory. */
static sync_job_t *sync_job_new(store_t *s, sync_kind_t kind, const char *text)
{
    sync_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->sql = sync_sql(kind, store_schema(s));
    if (j->sql == NULL || (text != NULL && (j->text = strdup(text)) == NULL)) {
        sync_job_free(j);
        return NULL;
    }
    j->params[0] = STORE_STREAM_EVENTS_API;
    j->params[1] = j->text;
    return j;
}

static void run_sync(store_t *s, sync_job_t *j, int n_params, store_job_fn done)
{
    store_query_t q = {.sql = j->sql, .n_params = n_params, .values = j->params};
    store_run(s, &q, done, j);
}

static const char *reply_error(const store_reply_t *r)
{
    return r->err != NULL ? r->err : "no result";
}

static void on_cursor(void *arg, const store_reply_t *r)
{
    sync_job_t *j = arg;
    if (r->res != NULL && PQntuples(r->res) == 1 && PQnfields(r->res) == 3) {
        /* The cursor's event may be gone (audit retention): its time is then unknown. */
        int64_t created_ms =
            PQgetisnull(r->res, 0, 2) ? 0 : (int64_t)strtoll(PQgetvalue(r->res, 0, 2), NULL, 10);
        j->cursor_done(j->arg, true, PQgetisnull(r->res, 0, 0) ? NULL : PQgetvalue(r->res, 0, 0),
                       PQgetisnull(r->res, 0, 1) ? NULL : PQgetvalue(r->res, 0, 1), created_ms,
                       NULL);
    } else {
        j->cursor_done(j->arg, false, NULL, NULL, 0, reply_error(r));
    }
    sync_job_free(j);
}

void store_load_cursor(store_t *s, const char *start_from, store_cursor_fn done, void *arg)
{
    sync_job_t *j = sync_job_new(s, SYNC_CURSOR, start_from);
    if (j == NULL) {
        done(arg, false, NULL, NULL, 0, "out of memory");
        return;
    }
    j->cursor_done = done;
    j->arg = arg;
    run_sync(s, j, 2, on_cursor);
}

static void on_lock(void *arg, const store_reply_t *r)
{
    sync_job_t *j = arg;
    if (r->res != NULL && PQntuples(r->res) == 1)
        j->lock_done(j->arg, true, strcmp(PQgetvalue(r->res, 0, 0), "t") == 0, NULL);
    else
        j->lock_done(j->arg, false, false, reply_error(r));
    sync_job_free(j);
}

void store_try_poller_lock(store_t *s, store_lock_fn done, void *arg)
{
    sync_job_t *j = sync_job_new(s, SYNC_LOCK, NULL);
    if (j == NULL) {
        done(arg, false, false, "out of memory");
        return;
    }
    /* The lock's only parameter is the schema. */
    j->params[0] = store_schema(s);
    j->lock_done = done;
    j->arg = arg;
    run_sync(s, j, 1, on_lock);
}

static void on_note(void *arg, const store_reply_t *r)
{
    /* A note lost with the connection is not worth a line; one the server
     * refused is. */
    if (r->answered && r->err != NULL)
        log_warn("event=db_note_failed error=%s", log_q(r->err));
    sync_job_free(arg);
}

void store_note(store_t *s, const char *error)
{
    if (!store_ready(s))
        return;
    sync_job_t *j = sync_job_new(s, error == NULL ? SYNC_CAUGHT_UP : SYNC_ERROR, error);
    if (j == NULL)
        return;
    run_sync(s, j, error == NULL ? 1 : 2, on_note);
}

void store_note_refused(store_t *s, const char *types)
{
    if (!store_ready(s))
        return;
    /* A NULL text is a NULL parameter: no type refused. */
    sync_job_t *j = sync_job_new(s, SYNC_REFUSED, types != NULL && types[0] != '\0' ? types : NULL);
    if (j == NULL)
        return;
    run_sync(s, j, 2, on_note);
}

int store_poller_holder(PGconn *conn, const char *schema, char *pid, size_t pidlen, char *addr,
                        size_t addrlen)
{
    const char *lp[1] = {schema};
    PGresult *res = PQexecParams(conn, POLLER_LOCK_HOLDER_SQL, 1, NULL, lp, NULL, NULL, 0);
    int held = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
        snprintf(pid, pidlen, "%s", PQgetvalue(res, 0, 0));
        snprintf(addr, addrlen, "%s", PQgetvalue(res, 0, 1));
        held = 1;
    } else if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        held = 0;
    }
    PQclear(res);
    return held;
}
