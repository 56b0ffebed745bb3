/*
 * store: PostgreSQL through libpq in non-blocking mode on the libevent loop.
 *
 * The connection walks DISCONNECTED -> CONNECTING -> CHECKING ->
 * (MIGRATING) -> PREPARING -> IDLE <-> BUSY, and falls back to DISCONNECTED
 * from anywhere when the server goes away.  All socket readiness lands in
 * one dispatch function, store_drive(), whose switch is the state machine.
 *
 * The apply statement is generated once from the mirror tables in event.c:
 * a single INSERT ... ON CONFLICT per table inside one data-modifying WITH,
 * fed by unnest() over the batch's columns, each a text[] sent in binary
 * (pgarray.c).  One statement is one implicit transaction, so a batch is
 * one round trip and commits as a unit.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "backoff.h"
#include "log.h"
#include "metrics.h"
#include "migrations.h"

#define CONNECT_TIMEOUT_MS 10000
#define QUERY_TIMEOUT_MS 60000
#define RECONNECT_BASE_MS 200
#define RECONNECT_CAP_MS 5000
#define APPLY_STMT "workos_syncd_apply"
#define APPLY_LOG_PARAM 5                                     /* the first array parameter */
#define APPLY_PARAMS (APPLY_LOG_PARAM - 1 + EVENT_MAX_ARRAYS) /* at most */

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

typedef enum store_state {
    STORE_DISCONNECTED, /* no connection; a reconnect timer is armed */
    STORE_CONNECTING,   /* PQconnectPoll handshake in progress */
    STORE_CHECKING,     /* asking schema_migrations for the current version */
    STORE_MIGRATING,    /* running pending migrations */
    STORE_PREPARING,    /* preparing the apply statement */
    STORE_IDLE,         /* ready, no query in flight */
    STORE_BUSY          /* a job's query in flight */
} store_state_t;

typedef enum job_kind {
    JOB_APPLY,  /* a batch, maybe with the cursor */
    JOB_CURSOR, /* read (and initialise) the poller's cursor */
    JOB_NOTE,   /* record caught-up or an error in sync_state */
    JOB_LOCK    /* try the poller's advisory lock */
} job_kind_t;

typedef struct job {
    job_kind_t kind;
    struct job *next;
    event_batch_t *batch; /* JOB_APPLY */
    const char *source;   /* JOB_APPLY: static string */
    char *cursor;         /* JOB_APPLY: cursor to store, or NULL */
    bool caught_up;       /* JOB_APPLY */
    char *text;           /* JOB_CURSOR: start_from; JOB_NOTE: error or NULL */
    store_apply_fn apply_done;
    store_cursor_fn cursor_done;
    store_lock_fn lock_done;
    void *arg;
    int64_t sent_us;
} job_t;

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
    bool connected_before; /* reached IDLE at least once: later readiness is a reconnect */
    char *apply_sql;       /* statements with the schema's name, built once */
    char *version_sql;
    char *cursor_sql;
    char *caught_up_sql;
    char *error_sql;
    int version; /* schema version found by CHECKING */
    job_t *head, *tail;
    PGresult *result; /* first result of the query in flight */
    char error[512];  /* first error of the query in flight */
};

static void store_drive(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void start_connect(store_t *s);

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- SQL generation -------------------------------------------------- */

static const char *sql_type(column_type_t t)
{
    switch (t) {
    case COLUMN_TEXT:
        return "text";
    case COLUMN_BOOL:
        return "boolean";
    case COLUMN_TIME:
        return "timestamptz";
    case COLUMN_JSON:
        return "jsonb";
    }
    abort(); /* unreachable: every column_type_t is handled above */
}

/* "$first::text[], ..." for `n` consecutive array parameters. */
static void emit_array_params(FILE *f, int first, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s$%d::text[]", i ? ", " : "", first + (int)i);
}

/* "x.name" cast from text to the column's type, named after the column. */
static void emit_cast(FILE *f, const char *name, column_type_t type)
{
    if (type == COLUMN_TEXT)
        fprintf(f, ", x.%s", name);
    else
        fprintf(f, ", x.%s::%s AS %s", name, sql_type(type), name);
}

/*
 * One CTE upserting a mirror table from its arrays, the first of which is
 * parameter `param`.  Within the batch the newest snapshot of each object
 * wins (ties: the later event), and a deletion makes the row a tombstone,
 * with nothing after it in the batch counting.  Against the stored row,
 * fields change only when the incoming updated_at is not older, and a
 * tombstone is final: nothing touches a row once deleted_at is set.
 */
static void emit_mirror_cte(FILE *f, const char *schema, mirror_table_t t, int param)
{
    const mirror_def_t *m = event_mirror(t);

    fprintf(f, ", m%d AS (\n  INSERT INTO %s.%s AS t (", (int)t, schema, m->table);
    for (size_t i = 0; i < m->n_columns; i++)
        fprintf(f, "%s, ", m->columns[i].name);
    fprintf(f, "deleted_at, last_event_id, synced_at)\n  SELECT DISTINCT ON (r.id) ");
    for (size_t i = 0; i < m->n_columns; i++)
        fprintf(f, "r.%s, ", m->columns[i].name);
    /* del_seq: the batch's first deletion of the object; rows after it in
     * stream order are ignored, as they would be in a later batch. */
    fprintf(f,
            "r.del, r.event_id, now()\n    FROM (SELECT y.* FROM (SELECT x.*,\n"
            "            min(x.seq) FILTER (WHERE x.deleted_at IS NOT NULL) OVER w AS del_seq,\n"
            "            first_value(x.deleted_at) OVER (w ORDER BY x.deleted_at IS NULL, x.seq) "
            "AS del\n            FROM (SELECT x.seq::int AS seq, x.event_id, "
            "x.deleted_at::timestamptz AS deleted_at");
    for (size_t i = 0; i < m->n_columns; i++)
        emit_cast(f, m->columns[i].name, m->columns[i].type);
    fprintf(f, "\n                    FROM unnest(");
    emit_array_params(f, param, EVENT_MIRROR_EXTRA_ARRAYS + m->n_columns);
    fprintf(f, ") AS x(seq, event_id, deleted_at");
    for (size_t i = 0; i < m->n_columns; i++)
        fprintf(f, ", %s", m->columns[i].name);
    fprintf(f, ")) AS x\n           WHERE x.event_id IN (SELECT id FROM ins)\n"
               "          WINDOW w AS (PARTITION BY x.id)) y\n"
               "         WHERE y.del_seq IS NULL OR y.seq <= y.del_seq) r\n"
               "   ORDER BY r.id, r.updated_at DESC, r.seq DESC\n"
               "  ON CONFLICT (id) DO UPDATE SET ");
    for (size_t i = 1; i < m->n_columns; i++)
        fprintf(f,
                "%s = CASE WHEN excluded.updated_at >= t.updated_at THEN excluded.%s ELSE t.%s "
                "END, ",
                m->columns[i].name, m->columns[i].name, m->columns[i].name);
    fprintf(f, "deleted_at = excluded.deleted_at, last_event_id = excluded.last_event_id, "
               "synced_at = excluded.synced_at\n"
               "   WHERE t.deleted_at IS NULL AND (excluded.updated_at >= t.updated_at OR "
               "excluded.deleted_at IS NOT NULL)\n  RETURNING 1)\n");
}

/*
 * Parameters: $1 source, $2 stream (NULL: no cursor), $3 cursor, $4
 * caught_up, then the batch's arrays: from $APPLY_LOG_PARAM the event log's,
 * followed by each mirror table's in mirror_table_t order.
 */
static char *build_apply_sql(const char *schema)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;

    fprintf(f, "WITH ev AS (\n  SELECT DISTINCT ON (e.id) e.id, e.event, "
               "e.created_at::timestamptz AS created_at, e.data::jsonb AS data, "
               "e.context::jsonb AS context\n    FROM unnest(");
    emit_array_params(f, APPLY_LOG_PARAM, EVENT_LOG_ARRAYS);
    fprintf(f,
            ") AS e(id, event, created_at, data, context)\n   ORDER BY e.id)\n"
            ", ins AS (\n  INSERT INTO %s.events (id, event, created_at, data, context, source)\n"
            "  SELECT id, event, created_at, data, context, $1::text FROM ev\n"
            "  ON CONFLICT (id) DO NOTHING\n  RETURNING id)\n",
            schema);
    int param = APPLY_LOG_PARAM + EVENT_LOG_ARRAYS;
    for (int t = 0; t < MIRROR_COUNT; t++) {
        emit_mirror_cte(f, schema, (mirror_table_t)t, param);
        param += EVENT_MIRROR_EXTRA_ARRAYS + (int)event_mirror((mirror_table_t)t)->n_columns;
    }
    fprintf(f,
            ", st AS (\n  INSERT INTO %s.sync_state AS t (stream, cursor, updated_at, "
            "caught_up_at)\n  SELECT $2::text, $3::text, now(), CASE WHEN $4::boolean THEN now() "
            "END WHERE $2::text IS NOT NULL\n"
            "  ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, updated_at = now(), "
            "caught_up_at = coalesce(excluded.caught_up_at, t.caught_up_at), last_error = NULL, "
            "last_error_at = NULL\n  RETURNING 1)\n",
            schema);
    fprintf(f, ", n AS (SELECT (SELECT count(*) FROM ins) AS ins");
    for (int t = 0; t < MIRROR_COUNT; t++)
        fprintf(f, ", (SELECT count(*) FROM m%d) AS m%d", t, t);
    fprintf(f, ", (SELECT count(*) FROM st) AS st)\nSELECT ins");
    for (int t = 0; t < MIRROR_COUNT; t++)
        fprintf(f, ", m%d", t);
    fprintf(f, ",\n  CASE WHEN ins > 0 THEN pg_notify('workos_changes', json_build_object("
               "'source', $1::text, 'events', ins, 'cursor', $3::text");
    for (int t = 0; t < MIRROR_COUNT; t++)
        fprintf(f, ", '%s', m%d", event_mirror((mirror_table_t)t)->table, t);
    fprintf(f, ")::text) END\n  FROM n");
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int latest_version(void)
{
    int v = 0;
    for (size_t i = 0; i < migrations_count; i++)
        if (migrations[i].version > v)
            v = migrations[i].version;
    return v;
}

/*
 * The pending migrations as one script: each in its own transaction, under
 * an advisory lock so two daemons starting together do not interleave, and
 * each recorded in schema_migrations.  The migrations are idempotent, so a
 * script that races another migrator is still correct.
 */
static char *build_migration_sql(const char *schema, int from_version, int *count)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    *count = 0;
    for (size_t i = 0; i < migrations_count; i++) {
        const migration_t *m = &migrations[i];
        if (m->version <= from_version)
            continue;
        fprintf(f,
                "BEGIN;\nSELECT pg_advisory_xact_lock(hashtext('workos-syncd migrate %s'));\n"
                "CREATE SCHEMA IF NOT EXISTS %s;\n"
                "CREATE TABLE IF NOT EXISTS %s.schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());\n",
                schema, schema, schema);
        for (const char *p = m->sql; *p != '\0';) {
            const char *hit = strstr(p, "@SCHEMA@");
            if (hit == NULL) {
                fputs(p, f);
                break;
            }
            fwrite(p, 1, (size_t)(hit - p), f);
            fputs(schema, f);
            p = hit + strlen("@SCHEMA@");
        }
        fprintf(f,
                "\nINSERT INTO %s.schema_migrations (version, name) VALUES (%d, '%s') "
                "ON CONFLICT (version) DO NOTHING;\nCOMMIT;\n",
                schema, m->version, m->name);
        (*count)++;
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/*
 * The statements other than the apply, with the schema's name in them; each
 * template has exactly one %s.  The cursor query records where to start when
 * there is no cursor: an explicit start_from replaces a remembered one
 * until the first event is applied, and "now" is resolved once and then
 * remembered.
 */
#define VERSION_SQL "SELECT coalesce(max(version), 0) FROM %s.schema_migrations"
#define CURSOR_SQL                                                                                 \
    "INSERT INTO %s.sync_state AS t (stream, range_start) VALUES ($1, CASE WHEN $2 = 'now' THEN "  \
    "now() ELSE $2::timestamptz END) ON CONFLICT (stream) DO UPDATE SET range_start = CASE WHEN "  \
    "t.cursor IS NULL AND $2 <> 'now' THEN excluded.range_start ELSE coalesce(t.range_start, "     \
    "excluded.range_start) END RETURNING cursor, to_char(range_start AT TIME ZONE 'UTC', "         \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define CAUGHT_UP_SQL                                                                              \
    "UPDATE %s.sync_state SET caught_up_at = now(), last_error = NULL, last_error_at = NULL "      \
    "WHERE stream = $1"
#define ERROR_SQL                                                                                  \
    "INSERT INTO %s.sync_state AS t (stream, last_error, last_error_at) VALUES ($1, $2, now()) "   \
    "ON CONFLICT (stream) DO UPDATE SET last_error = excluded.last_error, last_error_at = now()"

static char *build_version_sql(const char *schema)
{
    char *buf = NULL;
    return asprintf(&buf, VERSION_SQL, schema) < 0 ? NULL : buf;
}

/* The version query fails with these when nothing was ever migrated. */
static bool is_missing_schema(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state != NULL && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0);
}

/* ---- connection ------------------------------------------------------ */

static void on_notice(void *arg, const char *message);

static PGconn *connect_start(const config_t *cfg, bool blocking)
{
    const char *keys[5], *vals[5];
    int n = 0;
    if (cfg->database_url != NULL && cfg->database_url[0] != '\0') {
        keys[n] = "dbname";
        vals[n++] = cfg->database_url;
    }
    keys[n] = "fallback_application_name";
    vals[n++] = "workos-syncd";
    /* What the daemon sends is UTF-8, whatever the environment says. */
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    keys[n] = "connect_timeout";
    vals[n++] = "10";
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *conn =
        blocking ? PQconnectdbParams(keys, vals, 1) : PQconnectStartParams(keys, vals, 1);
    if (conn != NULL)
        PQsetNoticeProcessor(conn, on_notice, NULL);
    return conn;
}

/* Server notices ("already exists, skipping") go to the debug log, not stderr. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    snprintf(line, sizeof(line), "%s", message);
    line[strcspn(line, "\n")] = '\0';
    log_debug("event=db_notice message=\"%s\"", line);
}

/* libpq messages end with a newline; logs want one line. */
static void copy_error(char *dst, size_t len, const char *msg)
{
    snprintf(dst, len, "%s", msg != NULL && msg[0] != '\0' ? msg : "unknown error");
    for (char *p = dst; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = (p[1] == '\0') ? '\0' : ' ';
}

/*
 * The database must store what WorkOS sends: in UTF8, or in SQL_ASCII,
 * which keeps bytes as they are.  Any other encoding would make the
 * server convert every batch and fail it on the first character it cannot
 * represent, so such a database is refused up front, with the reason.
 */
static bool encoding_ok(PGconn *conn, char *err, size_t errlen)
{
    const char *enc = PQparameterStatus(conn, "server_encoding");
    if (enc == NULL || strcmp(enc, "UTF8") == 0 || strcmp(enc, "SQL_ASCII") == 0)
        return true;
    snprintf(err, errlen,
             "the database's encoding is %s; workos-syncd needs a UTF8 database "
             "(CREATE DATABASE ... ENCODING 'UTF8')",
             enc);
    return false;
}

static void arm_timer(store_t *s, int64_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
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

static void job_free(job_t *j)
{
    if (j == NULL)
        return;
    event_batch_free(j->batch);
    free(j->cursor);
    free(j->text);
    free(j);
}

static void job_fail(job_t *j, const char *err)
{
    switch (j->kind) {
    case JOB_APPLY:
        j->apply_done(j->arg, false, NULL, err);
        break;
    case JOB_CURSOR:
        j->cursor_done(j->arg, false, NULL, NULL, err);
        break;
    case JOB_LOCK:
        j->lock_done(j->arg, false, false, err);
        break;
    case JOB_NOTE:
        break;
    }
    job_free(j);
}

/*
 * Drops the connection and every job, and schedules a reconnect.  The
 * owners of failed jobs hear of it through their callbacks, then `lost`.
 */
static void disconnect(store_t *s, const char *why)
{
    bool was_ready = s->state == STORE_IDLE || s->state == STORE_BUSY;
    char err[600];

    snprintf(err, sizeof(err), "database: %s", why);
    log_warn("event=db_disconnected state=%d error=\"%s\"", (int)s->state, why);
    watch_socket(s, 0);
    evtimer_del(s->ev_timer);
    PQclear(s->result);
    s->result = NULL;
    PQfinish(s->conn);
    s->conn = NULL;
    s->state = STORE_DISCONNECTED;
    s->want_write = false;

    job_t *j;
    while ((j = pop_job(s)) != NULL)
        job_fail(j, err);
    if (was_ready && s->cb.lost != NULL)
        s->cb.lost(s->cb.arg);
    arm_timer(s, backoff_next(&s->backoff));
}

/* After PQsend*: push what libpq buffered, watching for writability if needed. */
static bool flush_and_watch(store_t *s)
{
    int r = PQflush(s->conn);
    if (r < 0)
        return false;
    s->want_write = r == 1;
    watch_socket(s, (short)(EV_READ | EV_PERSIST | (s->want_write ? EV_WRITE : 0)));
    arm_timer(s, QUERY_TIMEOUT_MS);
    return true;
}

static void send_or_disconnect(store_t *s, int sent, store_state_t next)
{
    s->error[0] = '\0';
    if (!sent || !flush_and_watch(s)) {
        char err[512];
        copy_error(err, sizeof(err), PQerrorMessage(s->conn));
        disconnect(s, err);
        return;
    }
    s->state = next;
}

static void start_connect(store_t *s)
{
    s->conn = connect_start(s->cfg, false);
    if (s->conn == NULL || PQstatus(s->conn) == CONNECTION_BAD) {
        char err[512];
        copy_error(err, sizeof(err), s->conn ? PQerrorMessage(s->conn) : "out of memory");
        disconnect(s, err);
        return;
    }
    s->state = STORE_CONNECTING;
    arm_timer(s, CONNECT_TIMEOUT_MS);
    /* libpq wants PQconnectPoll called once the socket is writable. */
    watch_socket(s, EV_WRITE);
}

static void run_next(store_t *s);

static void send_job(store_t *s, job_t *j)
{
    const char *schema = s->cfg->schema;
    int sent = 0;
    j->sent_us = now_us();

    switch (j->kind) {
    case JOB_APPLY: {
        const char *values[APPLY_PARAMS];
        int lengths[APPLY_PARAMS] = {0};
        int formats[APPLY_PARAMS] = {0};
        size_t n = event_batch_arrays(j->batch, &values[APPLY_LOG_PARAM - 1],
                                      &lengths[APPLY_LOG_PARAM - 1]);
        if (n == 0) {
            /* Not the connection's fault: fail the job alone. */
            pop_job(s);
            job_fail(j, "out of memory building the batch");
            run_next(s);
            return;
        }
        values[0] = j->source;
        values[1] = j->cursor != NULL ? STORE_STREAM_EVENTS_API : NULL;
        values[2] = j->cursor;
        values[3] = j->caught_up ? "t" : "f";
        n += APPLY_LOG_PARAM - 1;
        for (size_t i = APPLY_LOG_PARAM - 1; i < n; i++)
            formats[i] = 1; /* the arrays are binary */
        sent = PQsendQueryPrepared(s->conn, APPLY_STMT, (int)n, values, lengths, formats, 0);
        break;
    }
    case JOB_CURSOR: {
        const char *params[2] = {STORE_STREAM_EVENTS_API, j->text};
        sent = PQsendQueryParams(s->conn, s->cursor_sql, 2, NULL, params, NULL, NULL, 0);
        break;
    }
    case JOB_LOCK: {
        const char *params[1] = {schema};
        sent = PQsendQueryParams(s->conn, POLLER_LOCK_SQL, 1, NULL, params, NULL, NULL, 0);
        break;
    }
    case JOB_NOTE: {
        const char *params[2] = {STORE_STREAM_EVENTS_API, j->text};
        if (j->text == NULL)
            sent = PQsendQueryParams(s->conn, s->caught_up_sql, 1, NULL, params, NULL, NULL, 0);
        else
            sent = PQsendQueryParams(s->conn, s->error_sql, 2, NULL, params, NULL, NULL, 0);
        break;
    }
    }
    send_or_disconnect(s, sent, STORE_BUSY);
}

static void run_next(store_t *s)
{
    if (s->state == STORE_IDLE && s->head != NULL)
        send_job(s, s->head);
}

static void count_committed(const job_t *j, const store_apply_result_t *r)
{
    const event_batch_t *b = j->batch;
    metrics_batch(true, (double)r->commit_us / 1e6);
    metrics_events_inserted(j->source, r->inserted);
    metrics_events_malformed((long)b->n_malformed);
    metrics_events_unknown((long)b->n_unknown);
    for (size_t i = 0; i < b->n_types; i++)
        metrics_events_committed(j->source, b->types[i].type, b->types[i].n);
}

static void finish_job(store_t *s)
{
    job_t *j = pop_job(s);
    PGresult *res = s->result;
    bool ok = s->error[0] == '\0' && res != NULL;

    s->result = NULL;
    s->state = STORE_IDLE;
    evtimer_del(s->ev_timer);
    watch_socket(s, EV_READ | EV_PERSIST);
    if (j == NULL) {
        PQclear(res);
        return;
    }
    switch (j->kind) {
    case JOB_APPLY: {
        store_apply_result_t r = {0};
        if (ok && PQntuples(res) == 1 && PQnfields(res) >= 1 + MIRROR_COUNT) {
            r.inserted = atol(PQgetvalue(res, 0, 0));
            for (int t = 0; t < MIRROR_COUNT; t++)
                r.rows[t] = atol(PQgetvalue(res, 0, 1 + t));
            r.commit_us = now_us() - j->sent_us;
            count_committed(j, &r);
            j->apply_done(j->arg, true, &r, NULL);
        } else {
            metrics_batch(false, 0);
            j->apply_done(j->arg, false, NULL, s->error[0] ? s->error : "no result");
        }
        break;
    }
    case JOB_CURSOR:
        if (ok && PQntuples(res) == 1)
            j->cursor_done(j->arg, true, PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0),
                           PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1), NULL);
        else
            j->cursor_done(j->arg, false, NULL, NULL, s->error[0] ? s->error : "no result");
        break;
    case JOB_LOCK:
        if (ok && PQntuples(res) == 1)
            j->lock_done(j->arg, true, strcmp(PQgetvalue(res, 0, 0), "t") == 0, NULL);
        else
            j->lock_done(j->arg, false, false, s->error[0] ? s->error : "no result");
        break;
    case JOB_NOTE:
        if (!ok)
            log_warn("event=db_note_failed error=\"%s\"", s->error);
        break;
    }
    PQclear(res);
    job_free(j);
    run_next(s);
}

/* A query of the setup sequence (or a job) has returned all its results. */
static void query_done(store_t *s)
{
    switch (s->state) {
    case STORE_CHECKING: {
        if (s->error[0] != '\0' && !(s->result != NULL && is_missing_schema(s->result))) {
            char err[600];
            snprintf(err, sizeof(err), "schema version check failed: %s", s->error);
            disconnect(s, err);
            return;
        }
        s->version = 0;
        if (s->error[0] == '\0' && s->result != NULL && PQntuples(s->result) == 1)
            s->version = atoi(PQgetvalue(s->result, 0, 0));
        PQclear(s->result);
        s->result = NULL;
        if (s->version < latest_version()) {
            int count;
            char *sql = build_migration_sql(s->cfg->schema, s->version, &count);
            log_info("event=migrating schema=%s from=%d to=%d", s->cfg->schema, s->version,
                     latest_version());
            int sent = sql != NULL && PQsendQuery(s->conn, sql);
            free(sql);
            send_or_disconnect(s, sent, STORE_MIGRATING);
            return;
        }
        send_or_disconnect(s, PQsendPrepare(s->conn, APPLY_STMT, s->apply_sql, 0, NULL),
                           STORE_PREPARING);
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
        log_info("event=migrated schema=%s version=%d", s->cfg->schema, latest_version());
        send_or_disconnect(s, PQsendPrepare(s->conn, APPLY_STMT, s->apply_sql, 0, NULL),
                           STORE_PREPARING);
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
        s->state = STORE_IDLE;
        evtimer_del(s->ev_timer);
        backoff_reset(&s->backoff);
        if (s->connected_before)
            metrics_db_reconnect();
        s->connected_before = true;
        log_info("event=db_ready schema=%s", s->cfg->schema);
        if (s->cb.ready != NULL)
            s->cb.ready(s->cb.arg);
        run_next(s);
        return;
    case STORE_BUSY:
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
            if (s->error[0] == '\0')
                copy_error(s->error, sizeof(s->error), PQresultErrorMessage(res));
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
        watch_socket(s, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        watch_socket(s, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(s->conn, 1) != 0) {
            disconnect(s, "cannot make the connection non-blocking");
            return;
        }
        if (!encoding_ok(s->conn, err, sizeof(err))) {
            log_error("event=db_unusable error=\"%s\"", err);
            disconnect(s, err);
            return;
        }
        log_debug("event=db_connected");
        send_or_disconnect(s, PQsendQuery(s->conn, s->version_sql), STORE_CHECKING);
        return;
    case PGRES_POLLING_FAILED:
    default: {
        copy_error(err, sizeof(err), PQerrorMessage(s->conn));
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
                copy_error(err, sizeof(err), PQerrorMessage(s->conn));
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
            copy_error(err, sizeof(err), PQerrorMessage(s->conn));
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
    case STORE_CONNECTING:
        disconnect(s, "connect timed out");
        return;
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
    s->apply_sql = build_apply_sql(cfg->schema);
    s->version_sql = build_version_sql(cfg->schema);
    if (asprintf(&s->cursor_sql, CURSOR_SQL, cfg->schema) < 0)
        s->cursor_sql = NULL;
    if (asprintf(&s->caught_up_sql, CAUGHT_UP_SQL, cfg->schema) < 0)
        s->caught_up_sql = NULL;
    if (asprintf(&s->error_sql, ERROR_SQL, cfg->schema) < 0)
        s->error_sql = NULL;
    s->ev_timer = evtimer_new(base, on_timer, s);
    if (s->apply_sql == NULL || s->version_sql == NULL || s->cursor_sql == NULL ||
        s->caught_up_sql == NULL || s->error_sql == NULL || s->ev_timer == NULL) {
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
    free(s->apply_sql);
    free(s->version_sql);
    free(s->cursor_sql);
    free(s->caught_up_sql);
    free(s->error_sql);
    free(s);
}

bool store_ready(const store_t *s)
{
    return s->state == STORE_IDLE || s->state == STORE_BUSY;
}

static void enqueue(store_t *s, job_t *j)
{
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

void store_apply(store_t *s, event_batch_t *batch, const char *source, const char *cursor,
                 bool caught_up, store_apply_fn done, void *arg)
{
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL || (cursor != NULL && (j->cursor = strdup(cursor)) == NULL)) {
        free(j);
        event_batch_free(batch);
        done(arg, false, NULL, "out of memory");
        return;
    }
    j->kind = JOB_APPLY;
    j->batch = batch;
    j->source = source;
    j->caught_up = caught_up;
    j->apply_done = done;
    j->arg = arg;
    enqueue(s, j);
}

void store_load_cursor(store_t *s, const char *start_from, store_cursor_fn done, void *arg)
{
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL || (j->text = strdup(start_from)) == NULL) {
        free(j);
        done(arg, false, NULL, NULL, "out of memory");
        return;
    }
    j->kind = JOB_CURSOR;
    j->cursor_done = done;
    j->arg = arg;
    enqueue(s, j);
}

void store_try_poller_lock(store_t *s, store_lock_fn done, void *arg)
{
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        done(arg, false, false, "out of memory");
        return;
    }
    j->kind = JOB_LOCK;
    j->lock_done = done;
    j->arg = arg;
    enqueue(s, j);
}

void store_note(store_t *s, const char *error)
{
    if (!store_ready(s))
        return;
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL || (error != NULL && (j->text = strdup(error)) == NULL)) {
        free(j);
        return;
    }
    j->kind = JOB_NOTE;
    enqueue(s, j);
}

/* ---- blocking helpers for the one-shot commands ---------------------- */

/*
 * A blocking connection for the one-shot commands, or NULL with `err`
 * filled; *unusable (when not NULL) tells a server that answered but
 * cannot be used apart from one that could not be reached.
 */
static PGconn *connect_blocking(const config_t *cfg, char *err, size_t errlen, bool *unusable)
{
    PGconn *conn = connect_start(cfg, true);
    if (unusable != NULL)
        *unusable = false;
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        copy_error(msg, sizeof(msg), conn ? PQerrorMessage(conn) : "out of memory");
        snprintf(err, errlen, "database: %s", msg);
        PQfinish(conn);
        return NULL;
    }
    char why[256];
    if (!encoding_ok(conn, why, sizeof(why))) {
        snprintf(err, errlen, "database: %s", why);
        if (unusable != NULL)
            *unusable = true;
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static int current_version(PGconn *conn, const char *schema, char *err, size_t errlen)
{
    char *sql = build_version_sql(schema);
    if (sql == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    PGresult *res = PQexec(conn, sql);
    free(sql);
    int v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        v = atoi(PQgetvalue(res, 0, 0));
    } else if (is_missing_schema(res)) {
        v = 0;
    } else {
        char msg[512];
        copy_error(msg, sizeof(msg), PQresultErrorMessage(res));
        snprintf(err, errlen, "database: %s", msg);
    }
    PQclear(res);
    return v;
}

bool store_migrate(const config_t *cfg, int *applied, char *err, size_t errlen)
{
    bool ok = false;
    char *sql = NULL;
    PGresult *res = NULL;
    PGconn *conn = connect_blocking(cfg, err, errlen, NULL);

    *applied = 0;
    if (conn == NULL)
        return false;
    int v = current_version(conn, cfg->schema, err, errlen);
    if (v < 0)
        goto fail;
    sql = build_migration_sql(cfg->schema, v, applied);
    if (sql == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (*applied > 0) {
        res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            char msg[512];
            copy_error(msg, sizeof(msg), PQresultErrorMessage(res));
            snprintf(err, errlen, "migration failed: %s", msg);
            *applied = 0;
            goto fail;
        }
    }
    ok = true;
fail:
    PQclear(res);
    free(sql);
    PQfinish(conn);
    return ok;
}

int store_status(const config_t *cfg, FILE *out, int64_t fresh_ms)
{
    char err[600];
    const char *schema = cfg->schema;
    char *sql = NULL;
    int rc = 2;
    PGresult *res = NULL;
    bool unusable;
    PGconn *conn = connect_blocking(cfg, err, sizeof(err), &unusable);

    fprintf(out, "schema=%s\n", schema);
    if (conn == NULL) {
        fprintf(out, "state=%s\nerror=\"%s\"\n",
                unusable ? "database_unusable" : "database_unreachable", err);
        return 2;
    }
    rc = 1; /* reachable: from here on the answer is caught up (0) or not (1) */
    int version = current_version(conn, schema, err, sizeof(err));
    fprintf(out, "schema_version=%d\nschema_latest=%d\n", version, latest_version());
    if (version <= 0) {
        fprintf(out, "state=not_migrated\n");
        goto done;
    }

    if (asprintf(&sql,
                 "SELECT s.cursor, "
                 " (SELECT to_char(e.created_at AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM %s.events e WHERE e.id = s.cursor), "
                 " round(extract(epoch FROM now() - s.updated_at)::numeric, 1), "
                 " round(extract(epoch FROM (SELECT max(created_at) FROM %s.events) - "
                 "   coalesce((SELECT created_at FROM %s.events e WHERE e.id = s.cursor), "
                 "   s.range_start))::numeric, 1), "
                 " round(extract(epoch FROM now() - s.caught_up_at)::numeric, 1), "
                 " s.last_error, "
                 " s.last_error_at IS NOT NULL AND (s.caught_up_at IS NULL OR s.last_error_at >= "
                 "   s.caught_up_at), "
                 " s.caught_up_at IS NOT NULL AND now() - s.caught_up_at <= $1::bigint * "
                 "   interval '1 millisecond' "
                 "FROM %s.sync_state s WHERE s.stream = $2",
                 schema, schema, schema, schema) < 0)
        goto done;
    char fresh[32];
    snprintf(fresh, sizeof(fresh), "%lld", (long long)fresh_ms);
    const char *params[2] = {fresh, STORE_STREAM_EVENTS_API};
    res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    free(sql);
    sql = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        copy_error(err, sizeof(err), PQresultErrorMessage(res));
        fprintf(out, "state=error\nerror=\"%s\"\n", err);
        goto done;
    }
    if (PQntuples(res) == 0) {
        fprintf(out, "state=never_polled\n");
    } else {
#define V(c) (PQgetisnull(res, 0, (c)) ? "-" : PQgetvalue(res, 0, (c)))
        bool failing = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
        bool fresh_ok = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
#define SECS(c) V(c), PQgetisnull(res, 0, (c)) ? "" : "s"
        fprintf(out, "cursor=%s\ncursor_event_at=%s\ncursor_age=%s%s\nlag=%s%s\n", V(0), V(1),
                SECS(2), SECS(3));
        fprintf(out, "caught_up_ago=%s%s\n", SECS(4));
#undef SECS
        char e[512];
        copy_error(e, sizeof(e), PQgetisnull(res, 0, 5) ? "-" : PQgetvalue(res, 0, 5));
        fprintf(out, "last_error=\"%s\"\n", e);
        const char *state = failing ? "failing" : fresh_ok ? "caught_up" : "behind";
        fprintf(out, "state=%s\n", state);
        if (!failing && fresh_ok)
            rc = 0;
#undef V
    }
    PQclear(res);
    res = NULL;

    const char *lp[1] = {schema};
    res = PQexecParams(conn, POLLER_LOCK_HOLDER_SQL, 1, NULL, lp, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        fprintf(out, "poller=pid:%s@%s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    else if (PQresultStatus(res) == PGRES_TUPLES_OK)
        fprintf(out, "poller=none\n");
    PQclear(res);
    res = NULL;

    for (int t = -1; t < MIRROR_COUNT; t++) {
        const char *table = t < 0 ? "events" : event_mirror((mirror_table_t)t)->table;
        if (asprintf(&sql,
                     t < 0 ? "SELECT count(*), 0 FROM %s.%s"
                           : "SELECT count(*) FILTER (WHERE deleted_at IS NULL), "
                             "count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM %s.%s",
                     schema, table) < 0)
            goto done;
        res = PQexec(conn, sql);
        free(sql);
        sql = NULL;
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            if (t < 0)
                fprintf(out, "rows_events=%s\n", PQgetvalue(res, 0, 0));
            else
                fprintf(out, "rows_%s=%s\nrows_%s_deleted=%s\n", table, PQgetvalue(res, 0, 0),
                        table, PQgetvalue(res, 0, 1));
        }
        PQclear(res);
        res = NULL;
    }
done:
    PQclear(res);
    free(sql);
    PQfinish(conn);
    return rc;
}
