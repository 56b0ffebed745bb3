/*
 * reconcile_sql: the reconciler's kinds, URLs and statements.
 *
 * A listed page is sent as one jsonb array and flattened in SQL, column by
 * column from event.c's mirror tables (and the list-only columns below),
 * so a page is one set-based statement whatever its size.  The rule for a
 * field one source carries and the other lacks: a column changes only when
 * the newer (or equally new) object carries the field -- an explicit null
 * clears it, an absent field leaves it -- and `raw` merges the object's
 * top-level fields over the stored ones.
 */
#include "reconcile_sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_LIMIT 100

static const recon_kind_def_t kinds[RECON_KIND_COUNT] = {
    [RECON_ORGANIZATIONS] = {"organizations", MIRROR_ORGANIZATIONS, "/organizations", "", "", false,
                             false, true},
    [RECON_USERS] = {"users", MIRROR_USERS, "/user_management/users", "", "", false, true, true},
    [RECON_INVITATIONS] = {"invitations", MIRROR_INVITATIONS, "/user_management/invitations", "",
                           "", false, true, true},
    [RECON_MEMBERSHIPS] = {"organization_memberships", MIRROR_MEMBERSHIPS,
                           "/user_management/organization_memberships?organization_id=", "",
                           "statuses=active,inactive,pending", true, true, true},
    [RECON_API_KEYS] = {"api_keys", MIRROR_API_KEYS, "/organizations/", "/api_keys", "", true,
                        false, true},
    [RECON_SESSIONS] = {"sessions", MIRROR_SESSIONS, "/user_management/users/", "/sessions", "",
                        true, true, false},
};

/* Fields the list endpoints serve that events (today) do not. */
static const mirror_column_t user_extra[] = {{"name", "name", NULL, COLUMN_TEXT}};
static const mirror_column_t membership_extra[] = {
    {"external_id", "external_id", NULL, COLUMN_TEXT},
    {"metadata", "metadata", NULL, COLUMN_JSON},
};
static const mirror_column_t api_key_extra[] = {{"expires_at", "expires_at", NULL, COLUMN_TIME}};
static const mirror_column_t organization_extra[] = {
    {"stripe_customer_id", "stripe_customer_id", NULL, COLUMN_TEXT}};

static const struct {
    const mirror_column_t *columns;
    size_t n;
} extras[MIRROR_COUNT] = {
    [MIRROR_USERS] = {user_extra, 1},
    [MIRROR_MEMBERSHIPS] = {membership_extra, 2},
    [MIRROR_API_KEYS] = {api_key_extra, 1},
    [MIRROR_ORGANIZATIONS] = {organization_extra, 1},
};

const recon_kind_def_t *reconcile_kind(recon_kind_t k)
{
    return (unsigned)k < RECON_KIND_COUNT ? &kinds[k] : NULL;
}

bool reconcile_kind_by_name(const char *name, recon_kind_t *k)
{
    for (int i = 0; i < RECON_KIND_COUNT; i++)
        if (strcmp(kinds[i].name, name) == 0) {
            *k = (recon_kind_t)i;
            return true;
        }
    return false;
}

/* Appends `s` percent-encoded (everything but unreserved characters). */
static void put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

/* Closes a memstream; the text, or NULL (freed) when anything failed. */
static char *finish(FILE *f, char **buf)
{
    if (fclose(f) != 0) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

/* One fixed statement, formatted; NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *sql_printf(const char *fmt, ...)
{
    char *sql = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&sql, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : sql;
}

char *reconcile_url(const char *base_url, recon_kind_t k, const char *scope, const char *after)
{
    const recon_kind_def_t *d = reconcile_kind(k);
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    if (d == NULL || (f = open_memstream(&buf, &len)) == NULL)
        return NULL;
    fprintf(f, "%s%s", base_url, d->path);
    if (d->per_parent) {
        put_escaped(f, scope);
        fputs(d->path_tail, f);
    }
    fputc(strchr(d->path, '?') != NULL ? '&' : '?', f);
    if (d->query[0] != '\0')
        fprintf(f, "%s&", d->query);
    fprintf(f, "limit=%d&order=asc", PAGE_LIMIT);
    if (after != NULL) {
        fputs("&after=", f);
        put_escaped(f, after);
    }
    return finish(f, &buf);
}

/* The SQL expression reading column `c` from the jsonb object `o`. */
static void emit_extract(FILE *f, const char *o, const mirror_column_t *c)
{
    if (c->type == COLUMN_JSON) {
        fprintf(f, "nullif(%s->'%s', 'null'::jsonb)", o, c->field);
        return;
    }
    if (c->sub != NULL)
        fprintf(f, "(%s->'%s'->>'%s')", o, c->field, c->sub);
    else
        fprintf(f, "(%s->>'%s')", o, c->field);
    if (c->type == COLUMN_BOOL)
        fputs("::boolean", f);
    else if (c->type == COLUMN_TIME)
        fputs("::timestamptz", f);
}

/* Calls `fn` for each column of mirror table `t`: event.c's, then list-only. */
typedef void (*column_fn)(FILE *f, const mirror_column_t *c, bool first, const void *arg);

static void each_column(FILE *f, mirror_table_t t, column_fn fn, const void *arg)
{
    const mirror_def_t *m = event_mirror(t);
    bool first = true;
    /* `raw` (the whole object, field NULL) is written by the statements themselves. */
    for (size_t i = 0; i < m->n_columns; i++)
        if (m->columns[i].field != NULL) {
            fn(f, &m->columns[i], first, arg);
            first = false;
        }
    for (size_t i = 0; i < extras[t].n; i++, first = false)
        fn(f, &extras[t].columns[i], first, arg);
}

static void col_name(FILE *f, const mirror_column_t *c, bool first, const void *arg)
{
    fprintf(f, "%s%s%s", first ? "" : ", ", arg != NULL ? (const char *)arg : "", c->name);
}

static void col_extract(FILE *f, const mirror_column_t *c, bool first, const void *arg)
{
    (void)arg;
    fputs(first ? "" : ", ", f);
    emit_extract(f, "x", c);
    fprintf(f, " AS %s", c->name);
}

static void col_set(FILE *f, const mirror_column_t *c, bool first, const void *arg)
{
    (void)first;
    (void)arg;
    if (strcmp(c->name, "id") == 0)
        return;
    fprintf(f,
            "%s = CASE WHEN excluded.updated_at >= t.updated_at AND excluded.raw ? '%s' "
            "THEN excluded.%s ELSE t.%s END, ",
            c->name, c->field, c->name, c->name);
}

char *reconcile_page_sql(const char *ms, const char *ps, recon_kind_t k)
{
    const recon_kind_def_t *d = reconcile_kind(k);
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    if (d == NULL || (f = open_memstream(&buf, &len)) == NULL)
        return NULL;
    const char *tbl = event_mirror(d->table)->table;

    fputs("WITH l AS (\n  SELECT DISTINCT ON (x->>'id') ", f);
    each_column(f, d->table, col_extract, NULL);
    /* The change feed names the run that made a change (audit's rec). */
    fputs(", x AS raw\n    FROM jsonb_array_elements($4::jsonb) AS x\n"
          "   CROSS JOIN (SELECT set_config('workos.reconciliation', 'reconcile ' || $1::text, "
          "true)) AS g\n"
          "   WHERE jsonb_typeof(x->'id') = 'string' AND x->>'updated_at' IS NOT NULL\n"
          "   ORDER BY x->>'id')\n",
          f);
    fprintf(f, ", old AS (SELECT t.* FROM %s.%s t WHERE t.id IN (SELECT id FROM l))\n", ms, tbl);
    fprintf(f, ", up AS (\n  INSERT INTO %s.%s AS t (", ms, tbl);
    each_column(f, d->table, col_name, NULL);
    fputs(", raw, reconcile_run, last_event_id, synced_at)\n  SELECT ", f);
    each_column(f, d->table, col_name, NULL);
    fputs(", raw, $1::bigint, NULL, now() FROM l\n  ON CONFLICT (id) DO UPDATE SET ", f);
    each_column(f, d->table, col_set, NULL);
    fputs("raw = CASE WHEN excluded.updated_at >= t.updated_at THEN coalesce(t.raw, '{}'::jsonb) "
          "|| excluded.raw ELSE t.raw END,\n"
          "    last_event_id = CASE WHEN excluded.updated_at > t.updated_at THEN NULL ELSE "
          "t.last_event_id END,\n"
          "    synced_at = CASE WHEN excluded.updated_at > t.updated_at THEN now() ELSE "
          "t.synced_at END,\n"
          "    reconcile_run = excluded.reconcile_run\n"
          "   WHERE t.deleted_at IS NULL\n  RETURNING t.*)\n",
          f);
    fputs(", ch AS (SELECT count(*) FILTER (WHERE o.id IS NULL) AS ins, count(*) FILTER (WHERE "
          "o.id IS NOT NULL AND (",
          f);
    each_column(f, d->table, col_name, "u.");
    fputs(") IS DISTINCT FROM (", f);
    each_column(f, d->table, col_name, "o.");
    fputs(")) AS upd FROM up u LEFT JOIN old o ON o.id = u.id)\n", f);
    fprintf(f,
            ", pr AS (\n  UPDATE %s.reconcile_scopes s SET after = CASE WHEN $5::boolean THEN "
            "$3::text ELSE s.after END,\n    done = CASE WHEN $5::boolean THEN $3::text IS NULL "
            "ELSE s.done END, requests = s.requests + $5::boolean::int,\n"
            "    listed = s.listed + (SELECT count(*) FROM l), "
            "inserted = s.inserted + (SELECT ins FROM ch), updated = s.updated + (SELECT upd FROM "
            "ch)\n   WHERE s.run_id = $1::bigint AND s.kind = '%s' AND s.scope = $2::text "
            "RETURNING 1)\n"
            "SELECT (SELECT count(*) FROM l), ins, upd, (SELECT count(*) FROM pr) FROM ch",
            ps, d->name);
    return finish(f, &buf);
}

char *reconcile_refuse_sql(const char *ms, const char *ps, recon_kind_t k)
{
    const recon_kind_def_t *d = reconcile_kind(k);
    if (d == NULL)
        return NULL;
    return sql_printf(
        "WITH m AS (\n  UPDATE %s.%s SET reconcile_run = $1::bigint WHERE id = $3::text AND "
        "deleted_at IS NULL RETURNING 1)\n"
        "INSERT INTO %s.reconcile_refused AS t (run_id, kind, scope, object_id, sqlstate, "
        "error)\n  VALUES ($1::bigint, '%s', $2::text, $3::text, $4::text, $5::text)\n"
        "  ON CONFLICT (run_id, kind, md5(scope), md5(object_id)) DO UPDATE SET sqlstate = "
        "excluded.sqlstate, error = excluded.error, refused_at = now()\n"
        "RETURNING (SELECT count(*) FROM m)",
        ms, event_mirror(d->table)->table, ps, d->name);
}

/* One CTE tombstoning the live rows of kind `k` that run $1 did not list. */
static void emit_sweep(FILE *f, const char *ms, recon_kind_t k, const char *phase)
{
    const recon_kind_def_t *d = &kinds[k];
    fprintf(f,
            ", d%d AS (\n  UPDATE %s.%s t SET deleted_at = now(), last_event_id = NULL, "
            "reconcile_run = $1::bigint, synced_at = now()\n"
            "   WHERE t.deleted_at IS NULL AND t.reconcile_run IS DISTINCT FROM $1::bigint\n"
            "     AND t.synced_at < (SELECT started_at FROM r) AND (SELECT phase FROM r) = '%s'%s\n"
            "  RETURNING 1)\n",
            (int)k, ms, d->name, phase,
            k == RECON_API_KEYS ? " AND coalesce(t.owner_type, 'organization') = 'organization'"
                                : "");
}

char *reconcile_sweep_sql(const char *ms, const char *ps, bool children)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    const char *phase = children ? "children" : "roots";
    fprintf(f,
            "WITH r AS (SELECT started_at, phase, set_config('workos.reconciliation', "
            "'reconcile ' || $1::text, true) AS g FROM %s.reconcile_runs WHERE id = $1::bigint)\n",
            ps);
    int first = children ? RECON_MEMBERSHIPS : RECON_ORGANIZATIONS;
    int last = children ? RECON_KIND_COUNT : RECON_MEMBERSHIPS;
    for (int k = first; k < last; k++)
        if (kinds[k].swept)
            emit_sweep(f, ms, (recon_kind_t)k, phase);
    if (!children)
        fprintf(f,
                ", c AS (\n  INSERT INTO %s.reconcile_scopes (run_id, kind, scope)\n"
                "  SELECT $1::bigint, k.kind, o.id FROM %s.organizations o CROSS JOIN (VALUES "
                "('organization_memberships'), ('api_keys')) AS k(kind)\n"
                "   WHERE o.reconcile_run = $1::bigint AND o.deleted_at IS NULL AND (SELECT phase "
                "FROM r) = 'roots'\n"
                "  UNION ALL SELECT $1::bigint, 'sessions', u.id FROM %s.users u\n"
                "   WHERE u.reconcile_run = $1::bigint AND u.deleted_at IS NULL AND (SELECT phase "
                "FROM r) = 'roots'\n"
                "  ON CONFLICT DO NOTHING RETURNING 1)\n",
                ps, ms, ms);
    fprintf(f, ", ph AS (\n  UPDATE %s.reconcile_runs SET phase = '%s', tombstoned = tombstoned",
            ps, children ? "done" : "children");
    for (int k = first; k < last; k++)
        if (kinds[k].swept)
            fprintf(f, " || jsonb_build_object('%s', (SELECT count(*) FROM d%d))", kinds[k].name,
                    k);
    fprintf(f, "%s\n   WHERE id = $1::bigint AND phase = '%s' RETURNING 1)\nSELECT 0",
            children ? ", finished_at = now()" : "", phase);
    for (int k = first; k < last; k++)
        if (kinds[k].swept)
            fprintf(f, " + (SELECT count(*) FROM d%d)", k);
    fputs(", (SELECT count(*) FROM ph)", f);
    return finish(f, &buf);
}

char *reconcile_open_sql(const char *ps)
{
    return sql_printf(
        "WITH o AS (SELECT id, phase, started_at FROM %s.reconcile_runs WHERE finished_at IS "
        "NULL ORDER BY id DESC LIMIT 1)\n"
        ", n AS (INSERT INTO %s.reconcile_runs (reason) SELECT $1::text WHERE NOT EXISTS "
        "(SELECT 1 FROM o) RETURNING id, phase, started_at)\n"
        ", s AS (INSERT INTO %s.reconcile_scopes (run_id, kind, scope) SELECT n.id, k.kind, '' "
        "FROM n CROSS JOIN (VALUES ('organizations'), ('users'), ('invitations')) AS k(kind))\n"
        "SELECT id, phase, (extract(epoch FROM started_at) * 1000)::bigint, true FROM o\n"
        "UNION ALL SELECT id, phase, (extract(epoch FROM started_at) * 1000)::bigint, false "
        "FROM n",
        ps, ps, ps);
}

char *reconcile_queue_sql(const char *ps)
{
    return sql_printf(
        "SELECT kind, scope, after FROM %s.reconcile_scopes WHERE run_id = $1::bigint AND NOT "
        "done AND (kind, scope) > ($2::text, $3::text) ORDER BY kind, scope LIMIT $4::int",
        ps);
}

char *reconcile_summary_sql(const char *ps)
{
    return sql_printf(
        "SELECT s.kind, sum(s.requests), sum(s.listed), sum(s.inserted), sum(s.updated), "
        "coalesce((r.tombstoned->>s.kind)::bigint, 0),\n"
        "       (SELECT count(*) FROM %s.reconcile_refused f\n"
        "         WHERE f.run_id = s.run_id AND f.kind = s.kind)\n"
        "  FROM %s.reconcile_scopes s JOIN %s.reconcile_runs r ON r.id = s.run_id\n"
        " WHERE s.run_id = $1::bigint GROUP BY s.run_id, s.kind, r.tombstoned",
        ps, ps, ps);
}

char *reconcile_stage_sql(const char *schema)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    /* The run's id is fixed: a dry run must not advance the real sequence. */
    fprintf(f,
            "CREATE TEMP TABLE reconcile_runs (LIKE %s.reconcile_runs INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS);\n"
            "ALTER TABLE pg_temp.reconcile_runs ALTER COLUMN id SET DEFAULT 1;\n"
            "CREATE TEMP TABLE reconcile_scopes (LIKE %s.reconcile_scopes INCLUDING DEFAULTS "
            "INCLUDING INDEXES);\n"
            "CREATE TEMP TABLE reconcile_refused (LIKE %s.reconcile_refused INCLUDING DEFAULTS "
            "INCLUDING INDEXES);\n",
            schema, schema, schema);
    for (int t = 0; t < MIRROR_COUNT; t++)
        fprintf(f, "CREATE TEMP TABLE %s (LIKE %s.%s INCLUDING DEFAULTS INCLUDING INDEXES);\n",
                event_mirror((mirror_table_t)t)->table, schema,
                event_mirror((mirror_table_t)t)->table);
    return finish(f, &buf);
}

static void col_differ(FILE *f, const mirror_column_t *c, bool first, const void *arg)
{
    (void)first;
    (void)arg;
    if (strcmp(c->name, "id") == 0)
        return;
    fprintf(f, ", CASE WHEN s.raw ? '%s' AND s.%s IS DISTINCT FROM m.%s THEN '%s' END", c->field,
            c->name, c->name, c->name);
}

char *reconcile_diff_sql(const char *schema, recon_kind_t k)
{
    const recon_kind_def_t *d = reconcile_kind(k);
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    if (d == NULL || (f = open_memstream(&buf, &len)) == NULL)
        return NULL;
    const char *t = d->name;
    fprintf(f,
            "WITH missing AS (SELECT s.id FROM pg_temp.%s s WHERE NOT EXISTS (SELECT 1 FROM %s.%s "
            "m WHERE m.id = s.id AND m.deleted_at IS NULL))\n",
            t, schema, t);
    if (d->swept)
        fprintf(f,
                ", extra AS (SELECT m.id FROM %s.%s m WHERE m.deleted_at IS NULL%s AND NOT "
                "EXISTS (SELECT 1 FROM pg_temp.%s s WHERE s.id = m.id))\n",
                schema, t,
                k == RECON_API_KEYS ? " AND coalesce(m.owner_type, 'organization') = "
                                      "'organization'"
                                    : "",
                t);
    else
        fputs(", extra AS (SELECT NULL::text AS id WHERE false)\n", f);
    fprintf(f, ", differ AS (SELECT id, array_to_string(cols, ',') AS cols FROM (SELECT s.id, "
               "array_remove(ARRAY[NULL::text");
    each_column(f, d->table, col_differ, NULL);
    fprintf(f,
            "], NULL) AS cols FROM pg_temp.%s s JOIN %s.%s m ON m.id = s.id AND m.deleted_at IS "
            "NULL) x WHERE cardinality(cols) > 0)\n",
            t, schema, t);
    fputs("SELECT 'missing', (SELECT count(*) FROM missing), (SELECT string_agg(id, ',') FROM "
          "(SELECT id FROM missing ORDER BY id LIMIT 5) y)\n"
          "UNION ALL SELECT 'extra', (SELECT count(*) FROM extra), (SELECT string_agg(id, ',') "
          "FROM (SELECT id FROM extra ORDER BY id LIMIT 5) y)\n"
          "UNION ALL SELECT 'differ', (SELECT count(*) FROM differ), (SELECT string_agg(id || "
          "'(' || cols || ')', ',') FROM (SELECT id, cols FROM differ ORDER BY id LIMIT 5) y)",
          f);
    return finish(f, &buf);
}
