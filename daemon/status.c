/*
 * status: reads what `workos-syncd status` reports, on a blocking
 * connection, into a status_t.  Printing and the exit status are main.c's.
 */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/*
 * The poller's sync_state row: cursor, its event's time, seconds since the
 * cursor moved, lag behind the newest event seen, seconds since caught up,
 * the last error, whether that error is newer than the last catch-up, and
 * whether the catch-up is within $1 ms.  Every %s is the schema.
 */
#define SYNC_SQL                                                                                   \
    "SELECT s.cursor, "                                                                            \
    " (SELECT to_char(e.created_at AT TIME ZONE 'UTC', "                                           \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM %s.events e WHERE e.id = s.cursor), "               \
    " round(extract(epoch FROM now() - s.updated_at)::numeric, 1), "                               \
    " round(extract(epoch FROM (SELECT max(created_at) FROM %s.events) - "                         \
    "   coalesce((SELECT created_at FROM %s.events e WHERE e.id = s.cursor), "                     \
    "   s.range_start))::numeric, 1), "                                                            \
    " round(extract(epoch FROM now() - s.caught_up_at)::numeric, 1), "                             \
    " s.last_error, "                                                                              \
    " s.last_error_at IS NOT NULL AND (s.caught_up_at IS NULL OR s.last_error_at >= "              \
    "   s.caught_up_at), "                                                                         \
    " s.caught_up_at IS NOT NULL AND now() - s.caught_up_at <= $1::bigint * "                      \
    "   interval '1 millisecond' "                                                                 \
    "FROM %s.sync_state s WHERE s.stream = $2"

/*
 * The reconciliations: the last finished run (id, start, seconds, rows
 * inserted, updated and tombstoned) and the newest unfinished one (id,
 * phase, start, scopes done/total).  Every %s is the schema.
 */
#define RECONCILE_SQL                                                                              \
    "WITH l AS (SELECT * FROM %s.reconcile_runs WHERE finished_at IS NOT NULL ORDER BY id DESC "   \
    "LIMIT 1), c AS (SELECT * FROM %s.reconcile_runs WHERE finished_at IS NULL ORDER BY id DESC "  \
    "LIMIT 1) SELECT (SELECT id FROM l), (SELECT to_char(started_at AT TIME ZONE 'UTC', "          \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM l), (SELECT round(extract(epoch FROM finished_at "  \
    "- "                                                                                           \
    "started_at)::numeric, 1) FROM l), (SELECT sum(inserted) FROM %s.reconcile_scopes WHERE "      \
    "run_id = (SELECT id FROM l)), (SELECT sum(updated) FROM %s.reconcile_scopes WHERE run_id = "  \
    "(SELECT id FROM l)), (SELECT sum(value::bigint) FROM l, jsonb_each_text(l.tombstoned)), "     \
    "(SELECT id FROM c), (SELECT phase FROM c), (SELECT to_char(started_at AT TIME ZONE 'UTC', "   \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM c), (SELECT count(*) FILTER (WHERE done) || '/' "   \
    "|| "                                                                                          \
    "count(*) FROM %s.reconcile_scopes WHERE run_id = (SELECT id FROM c) HAVING (SELECT id FROM "  \
    "c) IS NOT NULL)"

static void get_value(const PGresult *res, int col, status_value_t *v)
{
    v->present = !PQgetisnull(res, 0, col);
    snprintf(v->text, sizeof(v->text), "%s", v->present ? PQgetvalue(res, 0, col) : "");
}

/* Reads the sync_state row; false (with st->state ERROR) when the query fails. */
static bool read_sync(PGconn *conn, const char *schema, int64_t fresh_ms, status_t *st)
{
    char *sql = NULL;
    if (asprintf(&sql, SYNC_SQL, schema, schema, schema, schema) < 0) {
        st->state = STATUS_ERROR;
        snprintf(st->error, sizeof(st->error), "out of memory");
        return false;
    }
    char fresh[32];
    snprintf(fresh, sizeof(fresh), "%lld", (long long)fresh_ms);
    const char *params[2] = {fresh, STORE_STREAM_EVENTS_API};
    PGresult *res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    free(sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok) {
        st->state = STATUS_ERROR;
        store_copy_error(st->error, sizeof(st->error), PQresultErrorMessage(res));
    } else if (PQntuples(res) == 0) {
        st->state = STATUS_NEVER_POLLED;
    } else {
        st->have_sync = true;
        get_value(res, 0, &st->cursor);
        get_value(res, 1, &st->cursor_event_at);
        get_value(res, 2, &st->cursor_age);
        get_value(res, 3, &st->lag);
        get_value(res, 4, &st->caught_up_ago);
        st->last_error.present = true;
        store_copy_error(st->last_error.text, sizeof(st->last_error.text),
                         PQgetisnull(res, 0, 5) ? "-" : PQgetvalue(res, 0, 5));
        bool failing = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
        bool fresh_ok = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
        st->state = failing ? STATUS_FAILING : fresh_ok ? STATUS_CAUGHT_UP : STATUS_BEHIND;
    }
    PQclear(res);
    return ok;
}

/* Counts one table's rows; a table without tombstones counts none. */
static void count_rows(PGconn *conn, const char *schema, const char *table, bool tombstones,
                       status_rows_t *r)
{
    char *sql = NULL;
    if (asprintf(&sql,
                 tombstones ? "SELECT count(*) FILTER (WHERE deleted_at IS NULL), "
                              "count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM %s.%s"
                            : "SELECT count(*), 0 FROM %s.%s",
                 schema, table) < 0)
        return;
    PGresult *res = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        r->read = true;
        r->live = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        r->deleted = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
}

/* How many poison events are kept, and the newest one's id. */
static void read_poison(PGconn *conn, const char *schema, status_t *st)
{
    char *sql = NULL;
    if (asprintf(&sql,
                 "SELECT count(*), (SELECT id FROM %s.poison_events ORDER BY first_failed_at "
                 "DESC, id DESC LIMIT 1) FROM %s.poison_events",
                 schema, schema) < 0)
        return;
    PGresult *res = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        st->poison_read = true;
        st->poison_count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        get_value(res, 1, &st->poison_newest);
    }
    PQclear(res);
}

/* The oldest event the log still holds, and how many retention removed. */
static void read_audit(PGconn *conn, const char *schema, status_t *st)
{
    char *sql = NULL;
    if (asprintf(&sql,
                 "SELECT (SELECT to_char(min(created_at) AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM %s.events), "
                 "(SELECT coalesce(sum(pruned), 0) FROM %s.audit_checkpoints)",
                 schema, schema) < 0)
        return;
    PGresult *res = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        st->audit_read = true;
        get_value(res, 0, &st->oldest_event_at);
        st->audit_pruned = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
}

/* Reads the reconciliation facts; leaves have_reconcile false when they cannot be read. */
static void read_reconcile(PGconn *conn, const char *schema, status_t *st)
{
    char *sql = NULL;
    if (asprintf(&sql, RECONCILE_SQL, schema, schema, schema, schema, schema) < 0)
        return;
    PGresult *res = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        status_reconcile_t *r = &st->reconcile;
        status_value_t *v[] = {&r->last_run,      &r->last_started_at, &r->last_seconds,
                               &r->last_inserted, &r->last_updated,    &r->last_tombstoned,
                               &r->running_run,   &r->running_phase,   &r->running_since,
                               &r->running_scopes};
        for (int i = 0; i < (int)(sizeof(v) / sizeof(v[0])); i++)
            get_value(res, i, v[i]);
        st->have_reconcile = true;
    }
    PQclear(res);
    /* The objects that run's listings could not store (migration 012 on). */
    if (!st->have_reconcile || !st->reconcile.last_run.present || st->schema_version < 12)
        return;
    const char *values[] = {st->reconcile.last_run.text};
    if (asprintf(&sql, "SELECT count(*) FROM %s.reconcile_refused WHERE run_id = $1::bigint",
                 schema) < 0)
        return;
    res = PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0);
    free(sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        get_value(res, 0, &st->reconcile.last_refused);
    PQclear(res);
}

/*
 * The event types the poller last recorded as refused; absent for none.
 * A query of its own, so a schema not yet migrated to it fails only this.
 */
static void read_refused(PGconn *conn, const char *schema, status_t *st)
{
    char *sql = NULL;
    if (asprintf(&sql, "SELECT (SELECT refused_types FROM %s.sync_state WHERE stream = $1)",
                 schema) < 0)
        return;
    const char *params[1] = {STORE_STREAM_EVENTS_API};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    free(sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        st->refused_read = true;
        get_value(res, 0, &st->refused_types);
    }
    PQclear(res);
}

void status_read(const config_t *cfg, int64_t fresh_ms, status_t *st)
{
    const char *schema = cfg->schema;
    bool unusable;

    memset(st, 0, sizeof(*st));
    st->poller = -1;
    PGconn *conn = store_connect_blocking(cfg, st->error, sizeof(st->error), &unusable);
    if (conn == NULL) {
        st->state = unusable ? STATUS_UNUSABLE : STATUS_UNREACHABLE;
        return;
    }
    char err[600];
    st->schema_version = store_schema_version(conn, schema, err, sizeof(err));
    st->schema_latest = store_schema_latest();
    if (st->schema_version <= 0) {
        st->state = STATUS_NOT_MIGRATED;
        goto done;
    }
    if (!read_sync(conn, schema, fresh_ms, st))
        goto done;
    st->poller = store_poller_holder(conn, schema, st->poller_pid, sizeof(st->poller_pid),
                                     st->poller_addr, sizeof(st->poller_addr));
    st->have_rows = true;
    count_rows(conn, schema, "events", false, &st->events);
    for (int t = 0; t < MIRROR_COUNT; t++)
        count_rows(conn, schema, event_mirror((mirror_table_t)t)->table, true, &st->mirror[t]);
    read_poison(conn, schema, st);
    read_audit(conn, schema, st);
    read_reconcile(conn, schema, st);
    read_refused(conn, schema, st);
done:
    PQfinish(conn);
}
