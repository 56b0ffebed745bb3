/*
 * store: PostgreSQL through libpq in non-blocking mode on the libevent loop.
 *
 * The connection walks DISCONNECTED -> CONNECTING -> CHECKING ->
 * (MIGRATING) -> PREPARING -> IDLE <-> BUSY, and falls back to DISCONNECTED
 * from anywhere when the server goes away.  All socket readiness lands in
 * one dispatch function, store_drive(), whose switch is the state machine.
 *
 * A job is a statement and a callback; the store runs the jobs one at a
 * time in the order they came, and hands each callback its result.  What
 * the statements mean is their owners' business (apply.c, store_sync.c).
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "store_schema.h"

#define QUERY_TIMEOUT_MS 60000 /* at least; statement_timeout plus a margin when longer */
#define QUERY_TIMEOUT_MARGIN_MS 10000
#define RECONNECT_BASE_MS 200
#define RECONNECT_CAP_MS 5000
#define STABLE_MS 10000 /* a connection ready this long resets the reconnect backoff */

typedef enum store_state {
    STORE_DISCONNECTED, /* no connection; a reconnect timer is armed */
    STORE_CONNECTING,   /* PQconnectPoll handshake in progress */
    STORE_CHECKING,     /* asking schema_migrations for the current version */
    STORE_MIGRATING,    /* running pending migrations */
    STORE_PREPARING,    /* preparing the registered statements, one at a time */
    STORE_IDLE,         /* ready, no query in flight */
    STORE_BUSY          /* a job's query in flight */
} store_state_t;

typedef struct job {
    struct job *next;
    store_query_t q; /* the caller's arrays, valid until `done` */
    store_job_fn done;
    void *arg;
    int64_t sent_us;
} job_t;

/* A statement prepared on every connection: when it opens, or lazily on first use. */
typedef struct prepared {
    char *name;
    char *sql;             /* NULL when lazy */
    store_sql_fn make_sql; /* lazy: prepared by the first job that names it, from this */
    unsigned key;          /* make_sql's argument */
    bool ready;            /* lazy: prepared on the current connection */
} prepared_t;

struct store {
    struct event_base *base;
    const config_t *cfg;
    store_callbacks_t cb;
    store_state_t state;
    PGconn *conn;
    struct event *ev_sock;  /* readiness of the connection's socket */
    short sock_what;        /* the events ev_sock waits for */
    struct event *ev_timer; /* reconnect delay, or connect/query timeout */
    bool want_write;        /* output still buffered in libpq */
    backoff_t backoff;
    int64_t connect_timeout_ms; /* for one host of the url */
    int64_t query_timeout_ms;   /* the client's own limit on a statement */
    int host_count;             /* hosts the url names */
    int first_host;             /* the host the next connect attempt starts with */
    int host_index;             /* CONNECTING: how many hosts this attempt has left behind */
    char host_seen[320];        /* CONNECTING: "host:port" libpq is trying */
    bool connected_before;      /* reached IDLE at least once: later readiness is a reconnect */
    int64_t ready_at_ms;        /* when the connection last became ready */
    char *version_sql;          /* with the schema's name, built once */
    prepared_t *prepared;       /* registered statements */
    size_t n_prepared;
    size_t next_prepare;   /* PREPARING: the next one to send */
    prepared_t *lazy_prep; /* BUSY: the lazy statement being prepared for the job in flight */
    int version;           /* schema version found by CHECKING */
    job_t *head, *tail;
    PGresult *result; /* first result of the query in flight */
    char error[512];  /* first error of the query in flight */
    char sqlstate[6]; /* its SQLSTATE, "" when none */
};

static void store_drive(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void start_connect(store_t *s);

static void arm_timer(store_t *s, int64_t ms)
{
    struct timeval tv = clock_timeval(ms);
    evtimer_add(s->ev_timer, &tv);
}

static void watch_socket(store_t *s, short what)
{
    /* A persistent watch that is already in place stays: no churn per query. */
    if (s->ev_sock != NULL && what == s->sock_what && (what & EV_PERSIST))
        return;
    if (s->ev_sock != NULL) {
        event_free(s->ev_sock);
        s->ev_sock = NULL;
    }
    if (what == 0)
        return;
    s->sock_what = what;
    s->ev_sock = event_new(s->base, PQsocket(s->conn), what, store_drive, s);
    if (s->ev_sock != NULL)
        event_add(s->ev_sock, NULL);
}

static job_t *pop_job(store_t *s)
{
    job_t *j = s->head;
    if (j != NULL) {
        s->head = j->next;
        if (s->head == NULL)
            s->tail = NULL;
    }
    return j;
}

/* Tells a job's owner it failed without an answer from the server, and frees it. */
static void job_fail(job_t *j, const char *err)
{
    store_reply_t r = {.err = err};
    j->done(j->arg, &r);
    free(j);
}

/*
 * Drops the connection and every job, and schedules a reconnect.  The
 * owners of failed jobs hear of it through their callbacks -- `first`,
 * already taken off the queue, with `first_reply`, when given -- then
 * `lost`.
 */
static void disconnect_with(store_t *s, const char *why, job_t *first,
                            const store_reply_t *first_reply)
{
    bool was_ready = s->state == STORE_IDLE || s->state == STORE_BUSY;
    char err[600];

    snprintf(err, sizeof(err), "database: %s", why);
    log_warn("event=db_disconnected state=%d host=%s error=%s", (int)s->state,
             log_q(s->conn != NULL ? PQhost(s->conn) : NULL), log_q(why));
    watch_socket(s, 0);
    evtimer_del(s->ev_timer);
    PQclear(s->result);
    s->result = NULL;
    PQfinish(s->conn);
    s->conn = NULL;
    s->state = STORE_DISCONNECTED;
    s->lazy_prep = NULL;
    for (size_t i = 0; i < s->n_prepared; i++)
        s->prepared[i].ready = false; /* a new connection has none */
    s->want_write = false;

    if (first != NULL) {
        first->done(first->arg, first_reply);
        free(first);
    }
    job_t *j;
    while ((j = pop_job(s)) != NULL)
        job_fail(j, err);
    if (was_ready && s->cb.lost != NULL)
        s->cb.lost(s->cb.arg);
    /* Only a connection that lasted starts the backoff over: a server that
     * lets the daemon in but refuses its statements (read-only, without
     * target_session_attrs to look elsewhere) is retried ever more slowly. */
    if (was_ready && clock_mono_ms() - s->ready_at_ms >= STABLE_MS)
        backoff_reset(&s->backoff);
    arm_timer(s, backoff_next(&s->backoff));
}

static void disconnect(store_t *s, const char *why)
{
    disconnect_with(s, why, NULL, NULL);
}

/* After PQsend*: push what libpq buffered, watching for writability if needed. */
static bool flush_and_watch(store_t *s)
{
    int r = PQflush(s->conn);
    if (r < 0)
        return false;
    s->want_write = r == 1;
    watch_socket(s, (short)(EV_READ | EV_PERSIST | (s->want_write ? EV_WRITE : 0)));
    arm_timer(s, s->query_timeout_ms);
    return true;
}

static void send_or_disconnect(store_t *s, int sent, store_state_t next)
{
    s->error[0] = '\0';
    s->sqlstate[0] = '\0';
    if (!sent || !flush_and_watch(s)) {
        char err[512];
        store_copy_error(err, sizeof(err), PQerrorMessage(s->conn));
        disconnect(s, err);
        return;
    }
    s->state = next;
}

/* Notes which host libpq is trying; each new one gets the full connect timeout. */
static void track_host(store_t *s)
{
    char seen[sizeof(s->host_seen)];
    snprintf(seen, sizeof(seen), "%s:%s", PQhost(s->conn) ? PQhost(s->conn) : "",
             PQport(s->conn) ? PQport(s->conn) : "");
    if (strcmp(seen, s->host_seen) == 0)
        return;
    if (s->host_seen[0] != '\0')
        s->host_index++;
    snprintf(s->host_seen, sizeof(s->host_seen), "%s", seen);
    log_debug("event=db_connecting host=%s", log_q(seen));
    arm_timer(s, s->connect_timeout_ms);
}

static void start_connect(store_t *s)
{
    s->conn = store_schema_connect(s->cfg, false, s->first_host);
    if (s->conn == NULL || PQstatus(s->conn) == CONNECTION_BAD) {
        char err[512];
        store_copy_error(err, sizeof(err), s->conn ? PQerrorMessage(s->conn) : "out of memory");
        disconnect(s, err);
        return;
    }
    s->state = STORE_CONNECTING;
    s->host_index = 0;
    s->host_seen[0] = '\0';
    track_host(s);
    /* libpq wants PQconnectPoll called once the socket is writable. */
    watch_socket(s, EV_WRITE);
}

static void run_next(store_t *s);

/* The lazy statement `name`, or NULL when it is none. */
static prepared_t *find_lazy(store_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_prepared; i++)
        if (s->prepared[i].make_sql != NULL && strcmp(s->prepared[i].name, name) == 0)
            return &s->prepared[i];
    return NULL;
}

static void send_job(store_t *s, job_t *j)
{
    const store_query_t *q = &j->q;
    int sent;

    j->sent_us = clock_mono_us();
    prepared_t *lazy = q->prepared != NULL ? find_lazy(s, q->prepared) : NULL;
    if (lazy != NULL && !lazy->ready) {
        /* Prepared first; query_done() sends the job when it is. */
        char *sql = lazy->make_sql(s, lazy->key);
        log_debug("event=db_prepare name=%s", log_q(lazy->name));
        s->lazy_prep = lazy;
        send_or_disconnect(s, sql != NULL && PQsendPrepare(s->conn, lazy->name, sql, 0, NULL),
                           STORE_BUSY);
        free(sql);
        return;
    }
    if (q->prepared != NULL)
        sent = PQsendQueryPrepared(s->conn, q->prepared, q->n_params, q->values, q->lengths,
                                   q->formats, 0);
    else
        sent = PQsendQueryParams(s->conn, q->sql, q->n_params, NULL, q->values, q->lengths,
                                 q->formats, 0);
    send_or_disconnect(s, sent, STORE_BUSY);
}

static void run_next(store_t *s)
{
    if (s->state == STORE_IDLE && s->head != NULL)
        send_job(s, s->head);
}

/*
 * The job in flight has returned: its owner reads the result.  An error
 * that is the server's, not the statement's (read-only, shutting down),
 * drops the connection first, so the reconnect can find a usable host.
 */
static void finish_job(store_t *s)
{
    job_t *j = pop_job(s);
    PGresult *res = s->result;
    bool ok = s->error[0] == '\0' && res != NULL;
    bool reset = !ok && store_sqlstate_is_connection(s->sqlstate);
    char sqlstate[sizeof(s->sqlstate)];
    char error[sizeof(s->error)];

    memcpy(sqlstate, s->sqlstate, sizeof(sqlstate));
    memcpy(error, s->error, sizeof(error));
    s->result = NULL;
    store_reply_t r = {.res = ok ? res : NULL,
                       .err = ok         ? NULL
                              : error[0] ? error
                                         : "no result",
                       .answered = true,
                       .sqlstate = sqlstate[0] != '\0' ? sqlstate : NULL,
                       .reset = reset,
                       .elapsed_us = j != NULL ? clock_mono_us() - j->sent_us : 0};
    if (reset) {
        char why[600];
        snprintf(why, sizeof(why), "server refused the statement (%s): %s", sqlstate, error);
        disconnect_with(s, why, j, &r);
        PQclear(res);
        return;
    }
    s->state = STORE_IDLE;
    evtimer_del(s->ev_timer);
    watch_socket(s, EV_READ | EV_PERSIST);
    if (j != NULL) {
        j->done(j->arg, &r);
        free(j);
    }
    PQclear(res);
    run_next(s);
}

/* Prepares the next registered statement, or, with all prepared, is ready. */
static void prepare_next(store_t *s)
{
    while (s->next_prepare < s->n_prepared && s->prepared[s->next_prepare].make_sql != NULL)
        s->next_prepare++;
    if (s->next_prepare < s->n_prepared) {
        const prepared_t *p = &s->prepared[s->next_prepare++];
        send_or_disconnect(s, PQsendPrepare(s->conn, p->name, p->sql, 0, NULL), STORE_PREPARING);
        return;
    }
    s->state = STORE_IDLE;
    s->ready_at_ms = clock_mono_ms();
    evtimer_del(s->ev_timer);
    if (s->connected_before)
        metrics_db_reconnect();
    s->connected_before = true;
    log_info("event=db_ready schema=%s", log_q(s->cfg->schema));
    if (s->cb.ready != NULL)
        s->cb.ready(s->cb.arg);
    run_next(s);
}

/* A query of the setup sequence (or a job) has returned all its results. */
static void query_done(store_t *s)
{
    switch (s->state) {
    case STORE_CHECKING: {
        if (s->error[0] != '\0' && !(s->result != NULL && store_schema_missing(s->result))) {
            char err[600];
            snprintf(err, sizeof(err), "schema version check failed: %s", s->error);
            disconnect(s, err);
            return;
        }
        s->version = 0;
        if (s->error[0] == '\0' && s->result != NULL && PQntuples(s->result) == 1)
            s->version = (int)strtol(PQgetvalue(s->result, 0, 0), NULL, 10);
        PQclear(s->result);
        s->result = NULL;
        if (s->version < store_schema_latest()) {
            int count;
            char *sql = store_schema_migration_sql(s->cfg->schema, s->version, &count);
            log_info("event=migrating schema=%s from=%d to=%d", log_q(s->cfg->schema), s->version,
                     store_schema_latest());
            int sent = sql != NULL && PQsendQuery(s->conn, sql);
            free(sql);
            send_or_disconnect(s, sent, STORE_MIGRATING);
            return;
        }
        s->next_prepare = 0;
        prepare_next(s);
        return;
    }
    case STORE_MIGRATING:
        PQclear(s->result);
        s->result = NULL;
        if (s->error[0] != '\0') {
            char err[600];
            snprintf(err, sizeof(err), "migration failed: %s", s->error);
            /* The failed script leaves an aborted transaction: start over. */
            disconnect(s, err);
            return;
        }
        log_info("event=migrated schema=%s version=%d", log_q(s->cfg->schema),
                 store_schema_latest());
        s->next_prepare = 0;
        prepare_next(s);
        return;
    case STORE_PREPARING:
        PQclear(s->result);
        s->result = NULL;
        if (s->error[0] != '\0') {
            char err[600];
            snprintf(err, sizeof(err), "prepare failed: %s", s->error);
            disconnect(s, err);
            return;
        }
        prepare_next(s);
        return;
    case STORE_BUSY:
        if (s->lazy_prep != NULL) {
            prepared_t *p = s->lazy_prep;
            s->lazy_prep = NULL;
            PQclear(s->result);
            s->result = NULL;
            if (s->error[0] != '\0') {
                char err[600];
                snprintf(err, sizeof(err), "prepare of %s failed: %s", p->name, s->error);
                disconnect(s, err); /* the job fails unanswered: its owner retries */
                return;
            }
            p->ready = true;
            send_job(s, s->head);
            return;
        }
        finish_job(s);
        return;
    case STORE_DISCONNECTED:
    case STORE_CONNECTING:
    case STORE_IDLE:
        break;
    }
    log_error("event=bug where=store_query_done state=%d", (int)s->state);
    abort();
}

/* Reads what the server sent; returns false when the connection is gone. */
static bool read_results(store_t *s)
{
    if (!PQconsumeInput(s->conn))
        return false;
    while (!PQisBusy(s->conn)) {
        PGresult *res = PQgetResult(s->conn);
        if (res == NULL) {
            query_done(s);
            return true;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
            if (s->error[0] == '\0') {
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                store_copy_error(s->error, sizeof(s->error), PQresultErrorMessage(res));
                snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", state != NULL ? state : "");
            }
            if (s->result == NULL) {
                s->result = res;
                continue;
            }
        } else if (s->result == NULL && s->error[0] == '\0') {
            s->result = res;
            continue;
        }
        PQclear(res);
    }
    return true;
}

static void continue_connect(store_t *s)
{
    char err[512];

    switch (PQconnectPoll(s->conn)) {
    case PGRES_POLLING_READING:
        track_host(s);
        watch_socket(s, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        track_host(s);
        watch_socket(s, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(s->conn, 1) != 0) {
            disconnect(s, "cannot make the connection non-blocking");
            return;
        }
        if (!store_schema_encoding_ok(s->conn, err, sizeof(err))) {
            log_error("event=db_unusable error=%s", log_q(err));
            disconnect(s, err);
            return;
        }
        log_info("event=db_connected host=%s port=%s", log_q(PQhost(s->conn)),
                 log_q(PQport(s->conn)));
        send_or_disconnect(s, PQsendQuery(s->conn, s->version_sql), STORE_CHECKING);
        return;
    case PGRES_POLLING_FAILED:
    default: {
        store_copy_error(err, sizeof(err), PQerrorMessage(s->conn));
        disconnect(s, err);
        return;
    }
    }
}

/* The state machine: every socket event of the connection arrives here. */
static void store_drive(evutil_socket_t fd, short what, void *arg)
{
    store_t *s = arg;
    (void)fd;

    switch (s->state) {
    case STORE_CONNECTING:
        continue_connect(s);
        return;
    case STORE_CHECKING:
    case STORE_MIGRATING:
    case STORE_PREPARING:
    case STORE_BUSY:
    case STORE_IDLE:
        if ((what & EV_WRITE) && s->want_write) {
            int r = PQflush(s->conn);
            if (r < 0) {
                char err[512];
                store_copy_error(err, sizeof(err), PQerrorMessage(s->conn));
                disconnect(s, err);
                return;
            }
            if (r == 0) {
                s->want_write = false;
                watch_socket(s, EV_READ | EV_PERSIST);
            }
        }
        if (!(what & EV_READ))
            return;
        /* While idle, reading only notices a closed connection or a notice;
         * otherwise it collects the results of the query in flight. */
        bool alive = s->state == STORE_IDLE ? PQconsumeInput(s->conn) != 0 : read_results(s);
        if (s->state == STORE_DISCONNECTED)
            return; /* query_done gave up on the connection itself */
        if (!alive || PQstatus(s->conn) == CONNECTION_BAD) {
            char err[512];
            store_copy_error(err, sizeof(err), PQerrorMessage(s->conn));
            disconnect(s, err);
        }
        return;
    case STORE_DISCONNECTED:
        break;
    }
    log_error("event=bug where=store_drive state=%d", (int)s->state);
    abort();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    store_t *s = arg;
    (void)fd;
    (void)what;

    switch (s->state) {
    case STORE_DISCONNECTED:
        start_connect(s);
        return;
    case STORE_CONNECTING: {
        /* libpq leaves the timeout of a non-blocking connect to its caller
         * and cannot be told to skip a host: a host that never answers
         * (gone without a trace) would hold every attempt.  The next
         * attempt starts with the host after it. */
        char why[400];
        snprintf(why, sizeof(why), "connect to %s timed out", s->host_seen);
        if (s->host_count > 1)
            s->first_host = (s->first_host + s->host_index + 1) % s->host_count;
        disconnect(s, why);
        return;
    }
    case STORE_CHECKING:
    case STORE_MIGRATING:
    case STORE_PREPARING:
    case STORE_BUSY:
        disconnect(s, "query timed out");
        return;
    case STORE_IDLE:
        return;
    }
}

store_t *store_new(struct event_base *base, const config_t *cfg, const store_callbacks_t *cb,
                   char *err, size_t errlen)
{
    store_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base = base;
    s->cfg = cfg;
    s->cb = *cb;
    s->state = STORE_DISCONNECTED;
    backoff_init(&s->backoff, RECONNECT_BASE_MS, RECONNECT_CAP_MS);
    s->connect_timeout_ms = (int64_t)store_schema_connect_timeout_s(cfg) * 1000;
    s->host_count = store_schema_host_count(cfg);
    s->query_timeout_ms = cfg->statement_timeout_ms + QUERY_TIMEOUT_MARGIN_MS;
    if (s->query_timeout_ms < QUERY_TIMEOUT_MS)
        s->query_timeout_ms = QUERY_TIMEOUT_MS;
    s->version_sql = store_schema_version_sql(cfg->schema);
    s->ev_timer = evtimer_new(base, on_timer, s);
    if (s->version_sql == NULL || s->ev_timer == NULL) {
        snprintf(err, errlen, "out of memory");
        store_free(s);
        return NULL;
    }
    start_connect(s);
    return s;
}

void store_free(store_t *s)
{
    job_t *j;
    if (s == NULL)
        return;
    while ((j = pop_job(s)) != NULL)
        job_fail(j, "database: shutting down");
    if (s->ev_sock != NULL)
        event_free(s->ev_sock);
    if (s->ev_timer != NULL)
        event_free(s->ev_timer);
    PQclear(s->result);
    PQfinish(s->conn);
    for (size_t i = 0; i < s->n_prepared; i++) {
        free(s->prepared[i].name);
        free(s->prepared[i].sql);
    }
    free(s->prepared);
    free(s->version_sql);
    free(s);
}

bool store_ready(const store_t *s)
{
    return s->state == STORE_IDLE || s->state == STORE_BUSY;
}

const char *store_schema(const store_t *s)
{
    return s->cfg->schema;
}

static bool add_prepared(store_t *s, const char *name, const char *sql, store_sql_fn make_sql,
                         unsigned key)
{
    prepared_t *p = realloc(s->prepared, (s->n_prepared + 1) * sizeof(*p));
    if (p == NULL)
        return false;
    s->prepared = p;
    p = &s->prepared[s->n_prepared];
    p->name = strdup(name);
    p->sql = sql != NULL ? strdup(sql) : NULL;
    if (p->name == NULL || (sql != NULL && p->sql == NULL)) {
        free(p->name);
        free(p->sql);
        return false;
    }
    p->make_sql = make_sql;
    p->key = key;
    p->ready = false;
    s->n_prepared++;
    return true;
}

bool store_register(store_t *s, const char *name, const char *sql)
{
    return add_prepared(s, name, sql, NULL, 0);
}

bool store_register_lazy(store_t *s, const char *name, store_sql_fn make_sql, unsigned key)
{
    return add_prepared(s, name, NULL, make_sql, key);
}

void store_run(store_t *s, const store_query_t *q, store_job_fn done, void *arg)
{
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        store_reply_t r = {.err = "out of memory"};
        done(arg, &r);
        return;
    }
    j->q = *q;
    j->done = done;
    j->arg = arg;
    if (!store_ready(s)) {
        job_fail(j, "database: not connected");
        return;
    }
    if (s->tail != NULL)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    run_next(s);
}
