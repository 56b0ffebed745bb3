/*
 * audit: `workos-syncd verify` and `workos-syncd forget` on a blocking
 * connection.  The chain itself is written by the triggers of
 * sql/005_audit.sql; verify reads it back link by link, in commit order,
 * through the view audit_verify_walk of sql/010_read_paths.sql (005's
 * audit_verify_links computed in one plan: each link's stored hash and its
 * rows' digests recomputed from the rows), inside one read-only snapshot,
 * and folds the hashes here with OpenSSL: the database does the per-row
 * work, this file the one inherently sequential part.
 *
 * A link is hash = SHA-256(previous link's hash || digest_1 || ... ||
 * digest_n) over the rows it names; the first link's previous hash is
 * empty.  The head row names the last link, so a truncated tail shows as a
 * head the chain does not reach.
 */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "log.h"
#include "store.h"

#define HASH_LEN 32
/*
 * Links per round trip: a daemon link names up to 1,000 rows (32 KB of
 * digests; the cursor is BINARY, so they arrive as raw bytes rather than
 * twice as much hex to encode and decode), so 2,000 links a fetch held
 * 130 MB at once; 100 hold 3 MB and still cost one round trip per 100,000
 * rows.
 */
#define FETCH_SQL "FETCH 100 FROM audit_walk"
#define EXIT_BROKEN 1
#define EXIT_ERROR 2

/*
 * The store's blocking connection (same parameters, encoding check and
 * timeouts as every command), without statement_timeout: verify walks the
 * whole log and forget rewrites all of a user's rows.
 */
static PGconn *audit_connect(const config_t *cfg, FILE *out)
{
    char err[512];
    PGconn *conn = store_connect_blocking(cfg, err, sizeof(err), NULL);
    if (conn == NULL) {
        fprintf(out, "state=database_unreachable\nerror=%s\n", log_q(err));
        return NULL;
    }
    PGresult *res = PQexec(conn, "SET statement_timeout = 0");
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(out, "state=error\nerror=%s\n", log_q(PQresultErrorMessage(res)));
    PQclear(res);
    if (!ok) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Runs `sql` (no parameters); prints the error and returns false on failure. */
static bool exec_ok(PGconn *conn, const char *sql, FILE *out)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(out, "state=error\nerror=%s\n", log_q(PQresultErrorMessage(res)));
    PQclear(res);
    return ok;
}

static void hex_encode(const unsigned char *src, size_t len, char *dst)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 15];
    }
    dst[2 * len] = '\0';
}

/* The fold over the links: the last link's number and hash. */
typedef struct chain_walk {
    EVP_MD_CTX *md;
    long long link; /* the last link checked; 0 before the first */
    unsigned char prev[HASH_LEN];
    size_t prev_len; /* 0 before the first link */
    long long rows;
} chain_walk_t;

static void report_broken(FILE *out, long long link, const char *id, const char *expected,
                          const char *stored, const char *reason)
{
    fprintf(out,
            "state=broken\nbroken_link=%lld\nbroken_id=%s\nexpected=%s\nstored=%s\nreason=%s\n",
            link, log_q(id), log_q(expected), log_q(stored), reason);
}

/*
 * One link of the cursor, fetched in binary: columns link and n as text,
 * kind, hash (32 raw bytes), first_ref, digests (raw, concatenated),
 * missing.  Returns 1 when it holds, 0 at a broken link (reported), -1 on
 * an internal error (reported).
 */
static int walk_link(chain_walk_t *w, const PGresult *res, int row, FILE *out)
{
    long long link = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    const char *first_ref = PQgetvalue(res, row, 4);
    char text[32];

    if (link != w->link + 1) {
        snprintf(text, sizeof(text), "%lld", w->link + 1);
        report_broken(out, w->link + 1, "", text, PQgetvalue(res, row, 0), "link missing");
        return 0;
    }
    if (!PQgetisnull(res, row, 6)) {
        report_broken(out, link, PQgetvalue(res, row, 6), "a row", "none", "row missing");
        return 0;
    }
    const unsigned char *digests = (const unsigned char *)PQgetvalue(res, row, 5);
    size_t len = PQgetisnull(res, row, 5) ? 0 : (size_t)PQgetlength(res, row, 5);
    unsigned char h[HASH_LEN];
    unsigned int hlen = 0;
    bool ok = EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(w->md, w->prev, w->prev_len) == 1 &&
              EVP_DigestUpdate(w->md, digests, len) == 1 &&
              EVP_DigestFinal_ex(w->md, h, &hlen) == 1 && hlen == HASH_LEN;
    if (!ok) {
        fprintf(out, "state=error\nerror=\"cannot hash link %lld\"\n", link);
        return -1;
    }
    const unsigned char *stored = (const unsigned char *)PQgetvalue(res, row, 2);
    size_t stored_len = (size_t)PQgetlength(res, row, 2);
    if (stored_len != HASH_LEN || memcmp(h, stored, HASH_LEN) != 0) {
        char expected[2 * HASH_LEN + 1], got[2 * HASH_LEN + 1];
        hex_encode(h, HASH_LEN, expected);
        hex_encode(stored, stored_len < HASH_LEN ? stored_len : HASH_LEN, got);
        report_broken(out, link, first_ref, expected, got, "link hash differs");
        return 0;
    }
    memcpy(w->prev, h, HASH_LEN);
    w->prev_len = HASH_LEN;
    w->link = link;
    w->rows += strtoll(PQgetvalue(res, row, 3), NULL, 10);
    return 1;
}

/* Runs a query that returns rows; prints the error and returns NULL on failure. */
static PGresult *query_row(PGconn *conn, FILE *out, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(out, "state=error\nerror=%s\n", log_q(PQresultErrorMessage(res)));
        PQclear(res);
        return NULL;
    }
    return res;
}

/*
 * Every row of the log, the feed and the erasures must be named by a
 * link (an erasure outside the chain could name rows as redacted).
 * Returns 1 when so, 0 when not (the first unnamed row reported), -1 on an
 * error.
 */
static int check_counts(PGconn *conn, const char *schema, long long *pruned, FILE *out)
{
    char *sql = NULL;
    int rc = -1;
    PGresult *res = NULL;
    if (asprintf(&sql,
                 "SELECT events = event_refs AND changes = change_refs AND erasures = "
                 "erasure_refs, pruned FROM %s.audit_verify_counts",
                 schema) < 0)
        return -1;
    res = query_row(conn, out, sql);
    free(sql);
    sql = NULL;
    if (res == NULL)
        return -1;
    *pruned = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        rc = 1;
        goto done;
    }
    PQclear(res);
    if (asprintf(&sql,
                 "(SELECT id FROM %s.events EXCEPT SELECT unnest(refs) FROM %s.audit_links WHERE "
                 "kind = 'event') UNION ALL (SELECT seq::text FROM %s.changes EXCEPT SELECT "
                 "unnest(refs) FROM %s.audit_links WHERE kind = 'change') UNION ALL (SELECT "
                 "'erasure ' || id FROM %s.audit_erasures EXCEPT SELECT 'erasure ' || "
                 "unnest(refs) FROM %s.audit_links WHERE kind = 'erasure') LIMIT 1",
                 schema, schema, schema, schema, schema, schema) < 0) {
        res = NULL;
        goto done;
    }
    res = query_row(conn, out, sql);
    if (res == NULL)
        goto done;
    report_broken(out, 0, PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "", "a link naming it",
                  "none", "row not in the chain");
    rc = 0;
done:
    PQclear(res);
    free(sql);
    return rc;
}

/*
 * Verify walks the chain in parts, each on its own connection in one
 * exported snapshot, so the database recomputes the rows' digests on as
 * many backends at once.  A link's hash depends only on the link before
 * it, which the walk checks against the stored one, so a part that starts
 * at link lo takes the stored hash of lo - 1 as its previous hash: if that
 * link was tampered with, the part before it reports it, and the first
 * broken link of the first part that has one is the chain's first.
 */
#define VERIFY_PARTS 2

typedef struct verify_part {
    PGconn *conn;
    chain_walk_t w;
    long long hi; /* the part's last link; 0 for the last part (open-ended) */
    int state;    /* 2 walking, 1 done, 0 broken, -1 error */
    char *report; /* what the part printed: its break or its error */
    size_t report_len;
    FILE *out;
} verify_part_t;

/* A part's connection, in the snapshot `snapshot` (NULL: its own, the first part's). */
static bool part_begin(verify_part_t *v, const config_t *cfg, const char *snapshot)
{
    if (v->conn == NULL)
        v->conn = audit_connect(cfg, v->out);
    if (v->conn == NULL)
        return false;
    if (!exec_ok(v->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", v->out))
        return false;
    if (snapshot == NULL)
        return true;
    char sql[128];
    bool ok =
        strspn(snapshot, "0123456789ABCDEF-") == strlen(snapshot) &&
        snprintf(sql, sizeof(sql), "SET TRANSACTION SNAPSHOT '%s'", snapshot) < (int)sizeof(sql);
    if (!ok) {
        fprintf(v->out, "state=error\nerror=\"bad snapshot id %s\"\n", log_q(snapshot));
        return false;
    }
    return exec_ok(v->conn, sql, v->out);
}

/* Declares the part's cursor over links lo..hi (lo 0: from the first; hi 0: to the last). */
static bool part_declare(verify_part_t *v, const char *schema, long long lo)
{
    char *sql = NULL;
    char lower[40] = "", upper[40] = "";
    if (lo > 0)
        snprintf(lower, sizeof(lower), " AND w.link >= %lld", lo);
    if (v->hi > 0)
        snprintf(upper, sizeof(upper), " AND w.link <= %lld", v->hi);
    if (asprintf(&sql,
                 "DECLARE audit_walk NO SCROLL BINARY CURSOR FOR SELECT w.link::text, w.kind, "
                 "w.hash, w.n::text, w.first_ref, w.digests, w.missing FROM %s.audit_verify_walk w "
                 "WHERE true%s%s ORDER BY w.link",
                 schema, lower, upper) < 0)
        return false;
    bool ok = exec_ok(v->conn, sql, v->out);
    free(sql);
    if (!ok || lo <= 1)
        return ok;
    /* The stored hash of the link before the part; none if it is gone,
     * which the part before reports. */
    v->w.link = lo - 1;
    if (asprintf(&sql, "SELECT hash FROM %s.audit_links WHERE link = %lld", schema, lo - 1) < 0)
        return false;
    PGresult *res = PQexecParams(v->conn, sql, 0, NULL, NULL, NULL, NULL, 1);
    free(sql);
    ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(v->out, "state=error\nerror=%s\n", log_q(PQresultErrorMessage(res)));
    else if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == HASH_LEN) {
        memcpy(v->w.prev, PQgetvalue(res, 0, 0), HASH_LEN);
        v->w.prev_len = HASH_LEN;
    }
    PQclear(res);
    return ok;
}

/* Takes the answer to the part's FETCH and walks its links. */
static void part_step(verify_part_t *v)
{
    PGresult *res = PQgetResult(v->conn);
    PGresult *extra;
    while ((extra = PQgetResult(v->conn)) != NULL)
        PQclear(extra);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(v->out, "state=error\nerror=%s\n", log_q(PQresultErrorMessage(res)));
        v->state = -1;
    } else if (PQntuples(res) == 0) {
        v->state = 1;
        if (v->hi > 0 && v->w.link != v->hi) {
            /* The part's last links are gone (a later part holds the rest). */
            char text[32];
            snprintf(text, sizeof(text), "%lld", v->w.link + 1);
            report_broken(v->out, v->w.link + 1, "", text, "none", "link missing");
            v->state = 0;
        }
    } else {
        for (int i = 0; i < PQntuples(res) && v->state == 2; i++) {
            int r = walk_link(&v->w, res, i, v->out);
            if (r <= 0)
                v->state = r;
        }
    }
    PQclear(res);
}

/*
 * Walks every part to its end or its first break, a FETCH in flight on
 * each at once.  A part after one that broke no longer counts and stops.
 */
static void walk_parts(verify_part_t *parts, int n)
{
    for (;;) {
        int walking = 0;
        for (int p = 0; p < n; p++) {
            if (parts[p].state != 2)
                continue;
            if (PQsendQuery(parts[p].conn, FETCH_SQL) != 1) {
                fprintf(parts[p].out, "state=error\nerror=%s\n",
                        log_q(PQerrorMessage(parts[p].conn)));
                parts[p].state = -1;
                continue;
            }
            walking++;
        }
        if (walking == 0)
            return;
        int stop = n;
        for (int p = 0; p < n; p++) {
            if (parts[p].state != 2)
                continue;
            part_step(&parts[p]);
            if (stop == n && parts[p].state <= 0)
                stop = p;
        }
        for (int p = stop + 1; p < n; p++)
            if (parts[p].state == 2)
                parts[p].state = 1; /* its answer no longer matters */
    }
}

/*
 * Sets each part's last link so that the parts hold about as many rows
 * each (links hold from one row to thousands), the last part open-ended.
 * Returns how many parts to walk: fewer when the chain is too short to
 * split, 0 on an error (reported).
 */
static int split_parts(PGconn *conn, const char *schema, long long head_link, verify_part_t *parts,
                       FILE *out)
{
    char *sql = NULL;
    int n = 1;
    parts[0].hi = 0;
    if (head_link < VERIFY_PARTS)
        return 1;
    if (asprintf(&sql,
                 "WITH l AS (SELECT link, sum(cardinality(refs)) OVER (ORDER BY link) AS c, "
                 "sum(cardinality(refs)) OVER () AS t FROM %s.audit_links) "
                 "SELECT (SELECT min(l.link) FROM l WHERE l.c * %d >= l.t * p) "
                 "FROM generate_series(1, %d) p ORDER BY p",
                 schema, VERIFY_PARTS, VERIFY_PARTS - 1) < 0)
        return 0;
    PGresult *res = query_row(conn, out, sql);
    free(sql);
    if (res == NULL)
        return 0;
    long long prev = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        long long hi = PQgetisnull(res, i, 0) ? 0 : strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (hi <= prev || hi >= head_link)
            break; /* one link holds the rest: no part after it */
        parts[n - 1].hi = prev = hi;
        parts[n++].hi = 0;
    }
    PQclear(res);
    return n;
}

int audit_verify(const config_t *cfg, FILE *out)
{
    const char *schema = cfg->schema;
    int rc = EXIT_ERROR;
    char *sql = NULL;
    PGresult *res = NULL;
    verify_part_t parts[VERIFY_PARTS] = {{0}};
    int n_parts = 1;
    long long head_link = 0, pruned = 0;
    char head_hash[2 * HASH_LEN + 1] = "";
    char snapshot[64] = "";

    for (int p = 0; p < VERIFY_PARTS; p++) {
        parts[p].out = open_memstream(&parts[p].report, &parts[p].report_len);
        parts[p].w.md = EVP_MD_CTX_new();
        if (parts[p].out == NULL || parts[p].w.md == NULL)
            goto done;
        parts[p].state = 2;
    }
    parts[0].conn = audit_connect(cfg, out);
    if (parts[0].conn == NULL)
        goto done;
    PGconn *conn = parts[0].conn;
    if (!exec_ok(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", out))
        goto done;
    if (asprintf(&sql, "SELECT link, encode(hash, 'hex'), pg_export_snapshot() FROM %s.audit_head",
                 schema) < 0)
        goto done;
    res = query_row(conn, out, sql);
    free(sql);
    sql = NULL;
    if (res == NULL)
        goto done;
    if (PQntuples(res) != 1) {
        fprintf(out, "state=error\nerror=\"no chain head (not migrated?)\"\n");
        goto done;
    }
    head_link = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(head_hash, sizeof(head_hash), "%s", PQgetvalue(res, 0, 1));
    snprintf(snapshot, sizeof(snapshot), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    res = NULL;
    fprintf(out, "schema=%s\nhead_link=%lld\nhead_hash=%s\n", schema, head_link, head_hash);

    n_parts = split_parts(conn, schema, head_link, parts, out);
    if (n_parts == 0)
        goto done;
    for (int p = 0; p < n_parts; p++) {
        long long lo = p == 0 ? 0 : parts[p - 1].hi + 1;
        if ((p > 0 && !part_begin(&parts[p], cfg, snapshot)) ||
            !part_declare(&parts[p], schema, lo)) {
            parts[p].state = -1;
            break;
        }
    }
    for (int p = 0; p < n_parts; p++)
        if (parts[p].state == -1)
            goto report;
    walk_parts(parts, n_parts);
report:
    for (int p = 0; p < n_parts; p++) {
        if (parts[p].state > 0)
            continue;
        fflush(parts[p].out);
        fputs(parts[p].report, out);
        rc = parts[p].state == 0 ? EXIT_BROKEN : EXIT_ERROR;
        goto done;
    }

    const chain_walk_t *last = &parts[n_parts - 1].w;
    long long rows = 0;
    for (int p = 0; p < n_parts; p++)
        rows += parts[p].w.rows;
    char reached[2 * HASH_LEN + 1];
    hex_encode(last->prev, last->prev_len, reached);
    if (last->link != head_link || strcmp(reached, head_hash) != 0) {
        char want[128], got[128];
        snprintf(want, sizeof(want), "%lld:%s", head_link, head_hash);
        snprintf(got, sizeof(got), "%lld:%s", last->link, reached);
        report_broken(out, last->link, "", want, got, "chain does not reach the head");
        rc = EXIT_BROKEN;
        goto done;
    }
    int c = check_counts(conn, schema, &pruned, out);
    if (c <= 0) {
        rc = c == 0 ? EXIT_BROKEN : EXIT_ERROR;
        goto done;
    }
    fprintf(out, "links=%lld\nrows=%lld\npruned=%lld\nstate=intact\n", last->link, rows, pruned);
    rc = 0;
done:
    PQclear(res);
    free(sql);
    for (int p = 0; p < VERIFY_PARTS; p++) {
        if (parts[p].out != NULL)
            fclose(parts[p].out);
        free(parts[p].report);
        EVP_MD_CTX_free(parts[p].w.md);
        PQfinish(parts[p].conn);
    }
    return rc;
}

int audit_forget(const config_t *cfg, const audit_forget_args_t *args, FILE *out)
{
    char *sql = NULL;
    int rc = EXIT_ERROR;
    PGresult *res = NULL;
    PGconn *conn = audit_connect(cfg, out);

    if (conn == NULL)
        return EXIT_ERROR;
    if (asprintf(&sql, "SELECT events, changes FROM %s.audit_forget($1, $2::boolean)",
                 cfg->schema) < 0)
        goto done;
    fprintf(out, "user_id=%s\nforced=%s\n", log_q(args->user_id), args->force ? "true" : "false");
    if (args->dry_run && !exec_ok(conn, "BEGIN", out))
        goto done;
    const char *params[2] = {args->user_id, args->force ? "true" : "false"};
    res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state != NULL && strcmp(state, "55006") == 0) {
            fprintf(out, "state=refused\nreason=\"user is live in the mirror; use --force\"\n");
            rc = EXIT_BROKEN;
        } else {
            fprintf(out, "state=error\nerror=%s\n", log_q(PQresultErrorMessage(res)));
        }
        goto done;
    }
    fprintf(out, "events=%s\nchanges=%s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    if (args->dry_run && !exec_ok(conn, "ROLLBACK", out))
        goto done;
    fprintf(out, "state=%s\n", args->dry_run ? "dry_run" : "forgotten");
    rc = 0;
done:
    PQclear(res);
    free(sql);
    PQfinish(conn); /* a dry run's transaction, if still open, ends with the session */
    return rc;
}

bool audit_take_forget_args(int *argc, char **argv, audit_forget_args_t *args)
{
    int out = 1;
    *args = (audit_forget_args_t){.user_id = NULL, .force = false, .dry_run = false};
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--force") == 0) {
            args->force = true;
            continue;
        }
        if (strcmp(a, "--dry-run") == 0) {
            args->dry_run = true;
            continue;
        }
        if (a[0] == '-') {
            argv[out++] = argv[i];
            /* "-c FILE": the value stays with its option. */
            if (strcmp(a, "-c") == 0 && i + 1 < *argc)
                argv[out++] = argv[++i];
            continue;
        }
        if (args->user_id != NULL)
            return false;
        args->user_id = a;
    }
    argv[out] = NULL;
    *argc = out;
    return true;
}
