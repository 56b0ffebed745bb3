/*
 * apply: the apply statement's text, parameters and result.
 *
 * The statement is generated once from the mirror tables in event.c: a
 * single INSERT ... ON CONFLICT per table inside one data-modifying WITH,
 * fed by unnest() over the batch's columns, each a text[] sent in binary
 * (pgarray.c).  One statement is one implicit transaction, so a batch is
 * one round trip and commits as a unit.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

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

/*
 * The arrays mirror table `m` sends: seq, event_id, deleted_at and its
 * columns but the whole object, which is the event's data: the statement
 * takes it from the log row it inserts, so each payload crosses the wire
 * and is parsed once.
 */
static size_t mirror_arrays(const mirror_def_t *m)
{
    size_t n = EVENT_MIRROR_EXTRA_ARRAYS;
    for (size_t i = 0; i < m->n_columns; i++)
        n += event_mirror_sent(&m->columns[i]);
    return n;
}

/* "$first::text[], ..." for `n` consecutive array parameters. */
static void emit_array_params(FILE *f, int first, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s$%d::text[]", i ? ", " : "", first + (int)i);
}

/* "x.name" cast from text to the column's type, named after the column. */
static void emit_cast(FILE *f, const mirror_column_t *c)
{
    const char *name = c->name;
    column_type_t type = c->type;

    if (!event_mirror_sent(c))
        fprintf(f, ", i.data AS %s", name); /* the log row's parsed payload */
    else if (type == COLUMN_TEXT)
        fprintf(f, ", x.%s", name);
    else
        fprintf(f, ", x.%s::%s AS %s", name, sql_type(type), name);
}

/*
 * One CTE upserting a mirror table from its arrays, the first of which is
 * parameter `param`.  Within the batch the newest snapshot of each object
 * wins (ties: the later event; a trimmed deletion without updated_at counts
 * as the oldest), and a deletion makes the row a tombstone,
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
    /* A deletion may come without updated_at (a trimmed payload): it is
     * written as -infinity, so the stored row's fields, older or not, are
     * kept and only deleted_at is set; the column is NOT NULL. */
    for (size_t i = 0; i < m->n_columns; i++)
        fprintf(f,
                strcmp(m->columns[i].name, "updated_at") == 0 ? "coalesce(r.%s, '-infinity'), "
                                                              : "r.%s, ",
                m->columns[i].name);
    /* del_seq: the batch's first deletion of the object; rows after it in
     * stream order are ignored, as they would be in a later batch. */
    fprintf(f,
            "r.del, r.event_id, now()\n    FROM (SELECT y.* FROM (SELECT x.*,\n"
            "            min(x.seq) FILTER (WHERE x.deleted_at IS NOT NULL) OVER w AS del_seq,\n"
            "            first_value(x.deleted_at) OVER (w ORDER BY x.deleted_at IS NULL, x.seq) "
            "AS del\n            FROM (SELECT x.seq::int AS seq, x.event_id, "
            "x.deleted_at::timestamptz AS deleted_at");
    for (size_t i = 0; i < m->n_columns; i++)
        emit_cast(f, &m->columns[i]);
    fprintf(f, "\n                    FROM unnest(");
    emit_array_params(f, param, mirror_arrays(m));
    fprintf(f, ") AS x(seq, event_id, deleted_at");
    for (size_t i = 0; i < m->n_columns; i++)
        if (event_mirror_sent(&m->columns[i]))
            fprintf(f, ", %s", m->columns[i].name);
    /* Only events new to the log count, each joined to its log row. */
    fprintf(f, ")\n                    JOIN ins i ON i.id = x.event_id) AS x\n"
               "          WINDOW w AS (PARTITION BY x.id)) y\n"
               "         WHERE y.del_seq IS NULL OR y.seq <= y.del_seq) r\n"
               "   ORDER BY r.id, r.updated_at DESC NULLS LAST, r.seq DESC\n"
               "  ON CONFLICT (id) DO UPDATE SET ");
    for (size_t i = 1; i < m->n_columns; i++)
        fprintf(f,
                /* The whole object merges over the stored one, so a field only a
                 * listing carried survives a newer event that lacks it. */
                m->columns[i].field == NULL
                    ? "%s = CASE WHEN excluded.updated_at >= t.updated_at THEN coalesce(t.%s, "
                      "'{}'::jsonb) || excluded.%s ELSE t.%s END, "
                    : "%s = CASE WHEN excluded.updated_at >= t.updated_at THEN excluded.%s ELSE "
                      "t.%s END, ",
                m->columns[i].name, m->columns[i].name, m->columns[i].name, m->columns[i].name);
    fprintf(f, "deleted_at = excluded.deleted_at, last_event_id = excluded.last_event_id, "
               "synced_at = excluded.synced_at\n"
               "   WHERE t.deleted_at IS NULL AND (excluded.updated_at >= t.updated_at OR "
               "excluded.deleted_at IS NOT NULL)\n  RETURNING 1)\n");
}

/* The CTE `st` that stores the cursor $3 for stream $2 (none when $2 is NULL). */
static void emit_cursor_cte(FILE *f, const char *schema)
{
    fprintf(f,
            ", st AS (\n  INSERT INTO %s.sync_state AS t (stream, cursor, updated_at, "
            "caught_up_at)\n  SELECT $2::text, $3::text, now(), CASE WHEN $4::boolean THEN now() "
            "END WHERE $2::text IS NOT NULL\n"
            "  ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor, updated_at = now(), "
            "caught_up_at = coalesce(excluded.caught_up_at, t.caught_up_at), last_error = NULL, "
            "last_error_at = NULL\n  RETURNING 1)\n",
            schema);
}

const char *apply_stmt_name(unsigned tables, char *buf, size_t len)
{
    if (tables == APPLY_ALL_TABLES)
        snprintf(buf, len, "workos_syncd_apply");
    else
        snprintf(buf, len, "workos_syncd_apply_%02x", tables);
    return buf;
}

unsigned apply_tables(const event_batch_t *b)
{
    unsigned tables = 0;
    for (int t = 0; t < MIRROR_COUNT; t++)
        if (b->n_rows[t] > 0)
            tables |= 1U << t;
    return tables;
}

/*
 * The statement: the log insert first, with the subject columns derived
 * by audit_subjects() (once per event: OFFSET 0 keeps the planner from
 * repeating it for each of the four), then one CTE per mirror table of
 * `tables` fed only by the events new to the log, the cursor, and one
 * result row of counts (0 for the tables not written) that also feeds the
 * notification.  Parameters as in apply.h.
 */
char *apply_sql(const char *schema, unsigned tables)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;

    fprintf(f, "WITH ev AS (\n  SELECT DISTINCT ON (e.id) e.id, e.event, "
               "e.created_at::timestamptz AS created_at, e.data::jsonb AS data, "
               "e.context::jsonb AS context\n    FROM unnest(");
    emit_array_params(f, APPLY_FIRST_ARRAY, EVENT_LOG_ARRAYS);
    fprintf(f,
            ") AS e(id, event, created_at, data, context)\n   ORDER BY e.id)\n"
            ", ins AS (\n  INSERT INTO %s.events (id, event, created_at, data, context, source, "
            "object_type, object_id, user_id, organization_id)\n"
            "  SELECT ev.id, ev.event, ev.created_at, ev.data, ev.context, $1::text, s.s[1], "
            "s.s[2], s.s[3], s.s[4]\n    FROM ev CROSS JOIN LATERAL (SELECT %s.audit_subjects("
            "ev.event, ev.data) AS s OFFSET 0) s\n"
            "  ON CONFLICT (id) DO NOTHING\n  RETURNING id, data)\n",
            schema, schema);
    int param = APPLY_FIRST_ARRAY + EVENT_LOG_ARRAYS;
    for (int t = 0; t < MIRROR_COUNT; t++) {
        if (!(tables & (1U << t)))
            continue;
        emit_mirror_cte(f, schema, (mirror_table_t)t, param);
        param += (int)mirror_arrays(event_mirror((mirror_table_t)t));
    }
    emit_cursor_cte(f, schema);
    fprintf(f, ", n AS (SELECT (SELECT count(*) FROM ins) AS ins");
    for (int t = 0; t < MIRROR_COUNT; t++)
        if (tables & (1U << t))
            fprintf(f, ", (SELECT count(*) FROM m%d) AS m%d", t, t);
        else
            fprintf(f, ", 0::bigint AS m%d", t);
    fprintf(f, ", (SELECT count(*) FROM st) AS st)\nSELECT ins");
    for (int t = 0; t < MIRROR_COUNT; t++)
        fprintf(f, ", m%d", t);
    /* The batch's summary rides on the audit trail's one notification per
     * transaction, which adds the change feed's high-water mark ("seq"). */
    fprintf(f, ",\n  CASE WHEN ins > 0 THEN set_config('workos.notify', json_build_object("
               "'source', $1::text, 'events', ins, 'cursor', $3::text");
    for (int t = 0; t < MIRROR_COUNT; t++)
        fprintf(f, ", '%s', m%d", event_mirror((mirror_table_t)t)->table, t);
    fprintf(f, ")::text, true) END\n  FROM n");
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Lists one finished array; false when it cannot be sent. */
static bool list_array(pg_array_t *a, const char **value, int *length)
{
    *value = pg_array_finish(a);
    *length = (int)a->len;
    return *value != NULL;
}

size_t apply_arrays(event_batch_t *b, unsigned tables, const char **values, int *lengths)
{
    size_t n = APPLY_FIRST_ARRAY - 1;
    bool ok = true;
    if (apply_tables(b) & ~tables)
        abort(); /* a bug: rows of a table the statement does not write would be lost */
    for (size_t i = 0; i < EVENT_LOG_ARRAYS; i++, n++)
        ok = list_array(&b->log[i], &values[n], &lengths[n]) && ok;
    for (int t = 0; t < MIRROR_COUNT; t++) {
        if (!(tables & (1U << t)))
            continue;
        const mirror_def_t *m = event_mirror((mirror_table_t)t);
        for (size_t i = 0; i < EVENT_MIRROR_EXTRA_ARRAYS + m->n_columns; i++) {
            if (i >= EVENT_MIRROR_EXTRA_ARRAYS &&
                !event_mirror_sent(&m->columns[i - EVENT_MIRROR_EXTRA_ARRAYS]))
                continue;
            ok = list_array(&b->mirror[t][i], &values[n], &lengths[n]) && ok;
            n++;
        }
    }
    return ok ? n : 0;
}

void apply_account(const event_batch_t *b, const char *source, const store_apply_result_t *r)
{
    metrics_batch(true, (double)r->commit_us / 1e6);
    metrics_events_inserted(source, r->inserted);
    metrics_events_malformed((long)b->n_malformed);
    metrics_events_unknown((long)b->n_unknown);
    for (size_t i = 0; i < b->n_types; i++)
        metrics_events_committed(source, b->types[i].type, b->types[i].n);
}

bool apply_read_result(const PGresult *res, store_apply_result_t *r)
{
    if (res == NULL || PQntuples(res) != 1 || PQnfields(res) < 1 + MIRROR_COUNT)
        return false;
    r->inserted = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    for (int t = 0; t < MIRROR_COUNT; t++)
        r->rows[t] = strtol(PQgetvalue(res, 0, 1 + t), NULL, 10);
    return true;
}

char *apply_poison_sql(const char *schema, bool in_log)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;

    /* $7 to $9 are read as text in both, so both have the same parameters. */
    if (in_log)
        fprintf(f,
                "WITH ins AS (\n  INSERT INTO %s.events (id, event, created_at, data, context, "
                "source, object_type, object_id, user_id, organization_id)\n  SELECT $5::text, "
                "$6::text, $7::text::timestamptz, j.data, $9::text::jsonb, $1::text, j.s[1], "
                "j.s[2], j.s[3], j.s[4]\n    FROM (SELECT d.data, %s.audit_subjects($6::text, "
                "d.data) AS s FROM (SELECT $8::text::jsonb AS data OFFSET 0) d) j\n"
                "  ON CONFLICT (id) DO NOTHING\n  RETURNING id)\n"
                ", p AS (\n  INSERT INTO %s.poison_events AS t (id, event, created_at, source, "
                "error, sqlstate, in_log)\n  VALUES ($5::text, $6::text, $7::text, $1::text, "
                "$10::text, $11::text, true)\n",
                schema, schema, schema);
    else
        fprintf(f,
                "WITH ins AS (SELECT NULL::text AS id WHERE false)\n"
                ", p AS (\n  INSERT INTO %s.poison_events AS t (id, event, created_at, source, "
                "error, sqlstate, in_log, data, context, raw)\n  SELECT $5::text, $6::text, "
                "$7::text, $1::text, $10::text, $11::text, false, j.data, j.context, "
                "CASE WHEN j.data IS NULL THEN $8::text END\n    FROM (SELECT "
                "%s.poison_jsonb($8::text) AS data, %s.poison_jsonb($9::text) AS context) j\n",
                schema, schema, schema);
    fprintf(f, "  ON CONFLICT (id) DO UPDATE SET error = excluded.error, sqlstate = "
               "excluded.sqlstate, in_log = excluded.in_log, data = excluded.data, context = "
               "excluded.context, raw = excluded.raw, failures = t.failures + 1, "
               "last_failed_at = now()\n  RETURNING (xmax = 0) AS fresh)\n");
    emit_cursor_cte(f, schema);
    fprintf(f, "SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM p WHERE fresh), "
               "(SELECT count(*) FROM st)");
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

apply_failure_t apply_classify(const char *sqlstate)
{
    /* Classes (the first two characters) that are about the data. */
    static const char *const data_classes[] = {"22", "23", "54", "21", "09", "27",
                                               "44", "2F", "38", "39", "P0"};

    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return APPLY_TRANSIENT;
    for (size_t i = 0; i < sizeof(data_classes) / sizeof(data_classes[0]); i++)
        if (strncmp(sqlstate, data_classes[i], 2) == 0)
            return APPLY_PERMANENT;
    return APPLY_TRANSIENT;
}
