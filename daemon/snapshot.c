/*
 * snapshot: the bootstrap as a small state machine.
 *
 *   WAIT_STORE -> CHECKING -> LOCKING -> RECONCILING -> MARKING -> DONE
 *                    |           |  (not held: back to CHECKING later)
 *                    +-----------+--> DONE (a cursor or start is recorded)
 *
 * A lost connection goes back to WAIT_STORE; the reconciler resumes its
 * run from the progress table once the lock is held again.
 */
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define RETRY_MS 5000

typedef enum snap_state {
    SNAP_WAIT_STORE,  /* waiting for the store */
    SNAP_CHECKING,    /* is a cursor or a start recorded? */
    SNAP_LOCKING,     /* taking the poller lock */
    SNAP_RECONCILING, /* the reconciler runs */
    SNAP_MARKING,     /* recording range_start */
    SNAP_DONE         /* the poller may start */
} snap_state_t;

struct snapshot {
    store_t *store;
    reconciler_t *rec;
    void (*done)(void *arg);
    void *arg;
    snap_state_t state;
    bool locked;
    unsigned gen; /* bumped when the store is lost: older replies are stale */
    char *check_sql, *mark_sql;
    char start_text[24];
    const char *values[1];
    struct event *timer;
};

typedef struct snap_job {
    snapshot_t *s;
    unsigned gen;
} snap_job_t;

static void check(snapshot_t *s);

static void finish(snapshot_t *s)
{
    s->state = SNAP_DONE;
    s->done(s->arg);
}

static void retry_later(snapshot_t *s)
{
    s->state = SNAP_WAIT_STORE;
    struct timeval tv = clock_timeval(RETRY_MS);
    evtimer_add(s->timer, &tv);
}

/* Takes a job's reply: the snapshot, or NULL when the reply is stale. */
static snapshot_t *take(void *arg)
{
    snap_job_t *j = arg;
    snapshot_t *s = j->s;
    bool stale = j->gen != s->gen;
    free(j);
    return stale ? NULL : s;
}

static snap_job_t *job(snapshot_t *s)
{
    snap_job_t *j = malloc(sizeof(*j));
    if (j != NULL)
        *j = (snap_job_t){s, s->gen};
    return j;
}

static void on_marked(void *arg, const store_reply_t *r)
{
    snapshot_t *s = take(arg);
    if (s == NULL)
        return;
    if (r->res == NULL || PQresultStatus(r->res) != PGRES_COMMAND_OK) {
        log_warn("event=snapshot_mark_failed error=%s", log_q(r->err ? r->err : "-"));
        retry_later(s);
        return;
    }
    log_info("event=snapshot_done range_start_ms=%s note=\"following the Events API from "
             "before the snapshot\"",
             s->start_text);
    finish(s);
}

static void on_lock(void *arg, bool ok, bool held, const char *err)
{
    snapshot_t *s = take(arg);
    if (s == NULL)
        return;
    if (!ok) {
        log_warn("event=snapshot_lock_failed error=%s", log_q(err ? err : "-"));
        retry_later(s);
        return;
    }
    if (!held) {
        /* Another instance snapshots; wait until it has recorded a start. */
        retry_later(s);
        return;
    }
    s->locked = true;
    s->state = SNAP_RECONCILING;
    log_info("event=snapshot_start note=\"no cursor stored: reconciling first\"");
    if (reconciler_busy(s->rec))
        reconciler_store_ready(s->rec);
    else
        reconciler_start(s->rec, "snapshot");
}

static void on_checked(void *arg, const store_reply_t *r)
{
    snapshot_t *s = take(arg);
    if (s == NULL)
        return;
    if (r->res == NULL || PQresultStatus(r->res) != PGRES_TUPLES_OK) {
        log_warn("event=snapshot_check_failed error=%s", log_q(r->err ? r->err : "-"));
        retry_later(s);
        return;
    }
    if (PQntuples(r->res) > 0 && PQgetvalue(r->res, 0, 0)[0] == 't') {
        finish(s);
        return;
    }
    s->state = SNAP_LOCKING;
    snap_job_t *j = job(s);
    if (j == NULL) {
        retry_later(s);
        return;
    }
    store_try_poller_lock(s->store, on_lock, j);
}

static void check(snapshot_t *s)
{
    if (!store_ready(s->store))
        return;
    snap_job_t *j = job(s);
    if (j == NULL) {
        retry_later(s);
        return;
    }
    s->state = SNAP_CHECKING;
    store_query_t q = {.sql = s->check_sql};
    store_run(s->store, &q, on_checked, j);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    snapshot_t *s = arg;
    if (s->state == SNAP_WAIT_STORE)
        check(s);
}

snapshot_t *snapshot_new(struct event_base *base, store_t *store, reconciler_t *rec,
                         void (*done)(void *arg), void *arg)
{
    snapshot_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    *s = (snapshot_t){.store = store, .rec = rec, .done = done, .arg = arg};
    const char *schema = store_schema(store);
    int a = asprintf(&s->check_sql,
                     "SELECT cursor IS NOT NULL OR range_start IS NOT NULL FROM %s.sync_state "
                     "WHERE stream = '" STORE_STREAM_EVENTS_API "'",
                     schema);
    int b = asprintf(
        &s->mark_sql,
        "INSERT INTO %s.sync_state AS t (stream, range_start) VALUES ('" STORE_STREAM_EVENTS_API
        "', to_timestamp(($1::bigint - %d) / 1000.0)) ON CONFLICT (stream) DO UPDATE "
        "SET range_start = excluded.range_start WHERE t.cursor IS NULL",
        schema, SNAPSHOT_MARGIN_MS);
    s->timer = evtimer_new(base, on_timer, s);
    if (a < 0 || b < 0 || s->timer == NULL) {
        if (a < 0)
            s->check_sql = NULL;
        if (b < 0)
            s->mark_sql = NULL;
        snapshot_free(s);
        return NULL;
    }
    return s;
}

void snapshot_free(snapshot_t *s)
{
    if (s == NULL)
        return;
    free(s->check_sql);
    free(s->mark_sql);
    if (s->timer != NULL)
        event_free(s->timer);
    free(s);
}

void snapshot_store_ready(snapshot_t *s)
{
    if (s->state == SNAP_WAIT_STORE && !evtimer_pending(s->timer, NULL))
        check(s);
}

void snapshot_store_lost(snapshot_t *s)
{
    if (s->state == SNAP_DONE)
        return;
    s->gen++;
    s->locked = false;
    s->state = SNAP_WAIT_STORE;
}

void snapshot_reconciled(snapshot_t *s, const reconciler_result_t *res)
{
    if (s->state != SNAP_RECONCILING)
        return;
    if (!res->ok) {
        log_warn("event=snapshot_reconcile_failed error=%s", log_q(res->err ? res->err : "-"));
        retry_later(s);
        return;
    }
    snap_job_t *j = job(s);
    if (j == NULL) {
        retry_later(s);
        return;
    }
    s->state = SNAP_MARKING;
    snprintf(s->start_text, sizeof(s->start_text), "%lld", (long long)res->started_wall_ms);
    s->values[0] = s->start_text;
    store_query_t q = {.sql = s->mark_sql, .n_params = 1, .values = s->values};
    store_run(s->store, &q, on_marked, j);
}

bool snapshot_lock_held(const snapshot_t *s)
{
    return s != NULL && s->locked && s->state != SNAP_DONE;
}

bool snapshot_done(const snapshot_t *s)
{
    return s == NULL || s->state == SNAP_DONE;
}

/* One forget job: its statement and parameter, owned here. */
typedef struct forget_job {
    char *sql;
    char start[24];
    const char *values[1];
    void (*done)(void *arg, bool ok);
    void *arg;
} forget_job_t;

static void on_forgot(void *arg, const store_reply_t *r)
{
    forget_job_t *j = arg;
    bool ok = r->res != NULL && PQresultStatus(r->res) == PGRES_COMMAND_OK;
    if (!ok)
        log_warn("event=cursor_forget_failed error=%s", log_q(r->err ? r->err : "-"));
    j->done(j->arg, ok);
    free(j->sql);
    free(j);
}

void snapshot_forget_cursor(store_t *store, int64_t started_ms, void (*done)(void *arg, bool ok),
                            void *arg)
{
    forget_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL || asprintf(&j->sql,
                              "UPDATE %s.sync_state SET cursor = NULL, range_start = "
                              "to_timestamp(($1::bigint - %d) / 1000.0), updated_at = now() "
                              "WHERE stream = '" STORE_STREAM_EVENTS_API "'",
                              store_schema(store), SNAPSHOT_MARGIN_MS) < 0) {
        free(j);
        done(arg, false);
        return;
    }
    snprintf(j->start, sizeof(j->start), "%lld", (long long)started_ms);
    j->values[0] = j->start;
    j->done = done;
    j->arg = arg;
    store_query_t q = {.sql = j->sql, .n_params = 1, .values = j->values};
    store_run(store, &q, on_forgot, j);
}
