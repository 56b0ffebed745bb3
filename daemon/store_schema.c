/*
 * store_schema: reaching the database and bringing its schema up to date.
 *
 * The connection parameters every connection uses (blocking or not), the
 * encoding the database must have, the schema version query and the
 * migration script, shared by the event-loop store and the one-shot
 * commands (migrate, status).
 */
#include "store_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migrations.h"

#define VERSION_SQL "SELECT coalesce(max(version), 0) FROM %s.schema_migrations"

char *store_schema_version_sql(const char *schema)
{
    char *buf = NULL;
    return asprintf(&buf, VERSION_SQL, schema) < 0 ? NULL : buf;
}

int store_schema_latest(void)
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
char *store_schema_migration_sql(const char *schema, int from_version, int *count)
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
                "BEGIN;\nSET LOCAL statement_timeout = 0;\n"
                "SELECT pg_advisory_xact_lock(hashtext('workos-syncd migrate %s'));\n"
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

/* The version query fails with these when nothing was ever migrated. */
bool store_schema_missing(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state != NULL && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0);
}

static void on_notice(void *arg, const char *message);

/* The url's value for `keyword` (URI or key=value form), malloc'ed; NULL when absent. */
static char *url_value(const char *url, const char *keyword)
{
    char *found = NULL;
    if (url == NULL || url[0] == '\0')
        return NULL;
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val != NULL && o->val[0] != '\0')
            found = strdup(o->val);
    PQconninfoFree(opts);
    return found;
}

/* The url's value for `keyword`, else the environment's `env`; malloc'ed or NULL. */
static char *user_value(const char *url, const char *keyword, const char *env)
{
    char *v = url_value(url, keyword);
    if (v != NULL)
        return v;
    const char *e = getenv(env);
    return e != NULL && e[0] != '\0' ? strdup(e) : NULL;
}

char *store_schema_options(const config_t *cfg)
{
    /* PGOPTIONS is what libpq would have used had the daemon passed no options. */
    char *user = user_value(cfg->database_url, "options", "PGOPTIONS");
    char *buf = NULL;
    /* The server reads -c switches in order, so a setting the user wrote
     * (after ours) wins over the config's. */
    int r = asprintf(&buf, "-c lock_timeout=%lldms -c statement_timeout=%lldms%s%s",
                     (long long)cfg->lock_timeout_ms, (long long)cfg->statement_timeout_ms,
                     user != NULL ? " " : "", user != NULL ? user : "");
    free(user);
    return r < 0 ? NULL : buf;
}

int store_schema_connect_timeout_s(const config_t *cfg)
{
    char *v = user_value(cfg->database_url, "connect_timeout", "PGCONNECT_TIMEOUT");
    char *end = NULL;
    long s = v != NULL ? strtol(v, &end, 10) : 0;
    bool ok = v != NULL && end != v && *end == '\0' && s > 0;
    free(v);
    if (!ok)
        return 10;
    return s < 2 ? 2 : s > 3600 ? 3600 : (int)s; /* libpq's own floor is 2 s */
}

/* How many items the comma-separated `list` has. */
static int list_count(const char *list)
{
    int c = 1;
    for (const char *p = list; *p != '\0'; p++)
        c += *p == ',';
    return c;
}

int store_schema_host_count(const config_t *cfg)
{
    int n = 1;
    for (int k = 0; k < 2; k++) {
        char *v = url_value(cfg->database_url, k == 0 ? "host" : "hostaddr");
        if (v != NULL && list_count(v) > n)
            n = list_count(v);
        free(v);
    }
    return n;
}

/*
 * `list` with its `n` items rotated to start at item `first`; a list of
 * another length (one port for all hosts) unchanged.  Malloc'ed; NULL when
 * out of memory.
 */
static char *rotate_list(const char *list, int n, int first)
{
    if (first % n == 0 || list_count(list) != n)
        return strdup(list);
    const char *cut = list;
    for (int i = 0; i < first % n; i++)
        cut = strchr(cut, ',') + 1;
    char *buf = NULL;
    return asprintf(&buf, "%s,%.*s", cut, (int)(cut - list - 1), list) < 0 ? NULL : buf;
}

PGconn *store_schema_connect(const config_t *cfg, bool blocking, int first_host)
{
    static const char *const listed[] = {"host", "hostaddr", "port"};
    const char *keys[10], *vals[10];
    char *owned[4] = {NULL};
    char timeout[16];
    int n = 0;
    PGconn *conn = NULL;

    owned[0] = store_schema_options(cfg);
    if (owned[0] == NULL)
        return NULL;
    if (cfg->database_url != NULL && cfg->database_url[0] != '\0') {
        keys[n] = "dbname";
        vals[n++] = cfg->database_url;
    }
    keys[n] = "fallback_application_name";
    vals[n++] = "workos-syncd";
    /* What the daemon sends is UTF-8, whatever the environment says. */
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    snprintf(timeout, sizeof(timeout), "%d", store_schema_connect_timeout_s(cfg));
    keys[n] = "connect_timeout";
    vals[n++] = timeout;
    /* After the url, so these replace its options (which they include). */
    keys[n] = "options";
    vals[n++] = owned[0];
    /* The url's hosts, tried from `first_host` on (see store.c). */
    int hosts = store_schema_host_count(cfg);
    for (int k = 0; k < 3 && hosts > 1 && first_host % hosts != 0; k++) {
        char *v = url_value(cfg->database_url, listed[k]);
        if (v == NULL)
            continue;
        owned[k + 1] = rotate_list(v, hosts, first_host);
        free(v);
        if (owned[k + 1] == NULL)
            goto fail;
        keys[n] = listed[k];
        vals[n++] = owned[k + 1];
    }
    keys[n] = NULL;
    vals[n] = NULL;
    conn = blocking ? PQconnectdbParams(keys, vals, 1) : PQconnectStartParams(keys, vals, 1);
    if (conn != NULL)
        PQsetNoticeProcessor(conn, on_notice, NULL);
fail:
    for (int k = 0; k < 4; k++)
        free(owned[k]);
    return conn;
}

bool store_sqlstate_is_connection(const char *sqlstate)
{
    static const char *const exact[] = {"57P01", "57P02", "57P03", "25006"};
    if (sqlstate == NULL)
        return false;
    if (strncmp(sqlstate, "08", 2) == 0 && strlen(sqlstate) == 5)
        return true;
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcmp(sqlstate, exact[i]) == 0)
            return true;
    return false;
}

bool store_sqlstate_is_transient(const char *sqlstate)
{
    static const char *const exact[] = {"40001", "40P01", "55P03", "57014", "58030"};
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return false;
    if (store_sqlstate_is_connection(sqlstate) || strncmp(sqlstate, "53", 2) == 0)
        return true;
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strcmp(sqlstate, exact[i]) == 0)
            return true;
    return false;
}

/* Server notices ("already exists, skipping") go to the debug log, not stderr. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    snprintf(line, sizeof(line), "%s", message);
    line[strcspn(line, "\n")] = '\0';
    log_debug("event=db_notice message=%s", log_q(line));
}

void store_copy_error(char *dst, size_t len, const char *msg)
{
    snprintf(dst, len, "%s", msg != NULL && msg[0] != '\0' ? msg : "unknown error");
    for (char *p = dst; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = (p[1] == '\0') ? '\0' : ' ';
}

const char *store_error_without_detail(char *dst, size_t len, const char *err)
{
    const char *detail = err != NULL ? strstr(err, " DETAIL: ") : NULL;
    int n = detail != NULL ? (int)(detail - err) : (int)strlen(err != NULL ? err : "-");
    snprintf(dst, len, "%.*s", n, err != NULL ? err : "-");
    return dst;
}

/*
 * The database must store what WorkOS sends: in UTF8, or in SQL_ASCII,
 * which keeps bytes as they are.  Any other encoding would make the
 * server convert every batch and fail it on the first character it cannot
 * represent, so such a database is refused up front, with the reason.
 */
bool store_schema_encoding_ok(PGconn *conn, char *err, size_t errlen)
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

PGconn *store_connect_blocking(const config_t *cfg, char *err, size_t errlen, bool *unusable)
{
    PGconn *conn = store_schema_connect(cfg, true, 0);
    if (unusable != NULL)
        *unusable = false;
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        store_copy_error(msg, sizeof(msg), conn ? PQerrorMessage(conn) : "out of memory");
        snprintf(err, errlen, "database: %s", msg);
        PQfinish(conn);
        return NULL;
    }
    char why[256];
    if (!store_schema_encoding_ok(conn, why, sizeof(why))) {
        snprintf(err, errlen, "database: %s", why);
        if (unusable != NULL)
            *unusable = true;
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

int store_schema_version(PGconn *conn, const char *schema, char *err, size_t errlen)
{
    char *sql = store_schema_version_sql(schema);
    if (sql == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    PGresult *res = PQexec(conn, sql);
    free(sql);
    int v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        v = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    } else if (store_schema_missing(res)) {
        v = 0;
    } else {
        char msg[512];
        store_copy_error(msg, sizeof(msg), PQresultErrorMessage(res));
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
    PGconn *conn = store_connect_blocking(cfg, err, errlen, NULL);

    *applied = 0;
    if (conn == NULL)
        return false;
    int v = store_schema_version(conn, cfg->schema, err, errlen);
    if (v < 0)
        goto fail;
    sql = store_schema_migration_sql(cfg->schema, v, applied);
    if (sql == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (*applied > 0) {
        res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            char msg[512];
            store_copy_error(msg, sizeof(msg), PQresultErrorMessage(res));
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

bool store_rebuild_rollups(const config_t *cfg, long *events, char *err, size_t errlen)
{
    bool ok = false;
    char sql[160];
    PGresult *res = NULL;
    PGconn *conn = store_connect_blocking(cfg, err, errlen, NULL);

    *events = 0;
    if (conn == NULL)
        return false;
    /* A rebuild reads the whole log: no statement_timeout for it. */
    snprintf(sql, sizeof(sql), "SET statement_timeout = 0; SELECT %s.rebuild_rollups()",
             cfg->schema);
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char msg[512];
        store_copy_error(msg, sizeof(msg), PQresultErrorMessage(res));
        snprintf(err, errlen, "rebuild failed: %s", msg);
        goto fail;
    }
    *events = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    ok = true;
fail:
    PQclear(res);
    PQfinish(conn);
    return ok;
}
