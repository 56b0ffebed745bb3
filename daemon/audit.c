/*
 * audit: `workos-syncd verify` and `workos-syncd forget` on a blocking
 * connection.  The chain itself is written by the triggers of
 * sql/004_audit.sql; verify reads it back in position order through the
 * view audit_verify_items (each item's digest as stored and as recomputed
 * from the row it names) and folds the link hashes here with OpenSSL, so
 * the database does the per-row work in one pass and this file does the
 * one inherently sequential part.
 *
 * A link is hash = SHA-256(previous hash || digest_1 || ... || digest_n)
 * over the items first_pos..last_pos; the first link's previous hash is
 * empty.  The head row names the last link, so a truncated tail shows as a
 * head the chain does not reach.
 */
#include "audit.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "log.h"

#define HASH_LEN 32
#define FETCH_SQL "FETCH 20000 FROM audit_walk"
#define EXIT_BROKEN 1
#define EXIT_ERROR 2

static PGconn *audit_connect(const config_t *cfg, FILE *out)
{
    const char *keys[5], *vals[5];
    int n = 0;
    if (cfg->database_url != NULL && cfg->database_url[0] != '\0') {
        keys[n] = "dbname";
        vals[n++] = cfg->database_url;
    }
    keys[n] = "fallback_application_name";
    vals[n++] = "workos-syncd";
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    keys[n] = "connect_timeout";
    vals[n++] = "10";
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        fprintf(out, "state=database_unreachable\nerror=%s\n",
                log_q(conn != NULL ? PQerrorMessage(conn) : "out of memory"));
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

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes exactly HASH_LEN bytes of lower-case hex; false otherwise. */
static bool hex_decode(const char *hex, unsigned char *dst)
{
    if (strlen(hex) != 2 * HASH_LEN)
        return false;
    for (int i = 0; i < HASH_LEN; i++) {
        int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        dst[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
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

/* The fold over the items: the link being hashed and the last link's hash. */
typedef struct chain_walk {
    EVP_MD_CTX *md;
    bool link_open;       /* md holds a started link */
    long long link_first; /* pos of the open link's first item */
    long long next_pos;   /* the pos the next item must have */
    unsigned char prev[HASH_LEN];
    size_t prev_len; /* 0 before the first link */
    long long items, pruned, links;
} chain_walk_t;

static void report_broken(FILE *out, long long pos, const char *id, const char *expected,
                          const char *stored, const char *reason)
{
    fprintf(out, "state=broken\nbroken_pos=%lld\nbroken_id=%s\nexpected=%s\nstored=%s\nreason=%s\n",
            pos, log_q(id), log_q(expected), log_q(stored), reason);
}

/*
 * One item of the cursor: columns pos, kind, ref, digest, pruned,
 * recomputed, link_hash, link_first (hex for the bytea ones).  Returns
 * false (and reports) at the first broken link.
 */
static bool walk_item(chain_walk_t *w, const PGresult *res, int row, FILE *out)
{
    long long pos = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    const char *ref = PQgetvalue(res, row, 2);
    const char *digest_hex = PQgetvalue(res, row, 3);
    bool pruned = PQgetvalue(res, row, 4)[0] == 't';
    bool missing = PQgetisnull(res, row, 5);
    const char *recomputed = PQgetvalue(res, row, 5);
    unsigned char digest[HASH_LEN];
    char pos_text[32];

    if (pos != w->next_pos) {
        snprintf(pos_text, sizeof(pos_text), "%lld", w->next_pos);
        report_broken(out, w->next_pos, "", pos_text, PQgetvalue(res, row, 0),
                      "chain item missing");
        return false;
    }
    w->next_pos++;
    if (!hex_decode(digest_hex, digest)) {
        report_broken(out, pos, ref, "a SHA-256 digest", digest_hex, "item digest malformed");
        return false;
    }
    if (missing && !pruned) {
        report_broken(out, pos, ref, digest_hex, "", "row missing");
        return false;
    }
    if (!missing && strcmp(recomputed, digest_hex) != 0) {
        report_broken(out, pos, ref, digest_hex, recomputed, "row differs from its digest");
        return false;
    }
    w->items++;
    w->pruned += pruned;
    if (!w->link_open) {
        if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(w->md, w->prev, w->prev_len) != 1) {
            fprintf(out, "state=error\nerror=\"sha256 failed\"\n");
            return false;
        }
        w->link_open = true;
        w->link_first = pos;
    }
    if (EVP_DigestUpdate(w->md, digest, HASH_LEN) != 1) {
        fprintf(out, "state=error\nerror=\"sha256 failed\"\n");
        return false;
    }
    if (PQgetisnull(res, row, 6))
        return true; /* the link goes on */

    unsigned char h[HASH_LEN];
    unsigned int hlen = 0;
    char expected[2 * HASH_LEN + 1];
    if (EVP_DigestFinal_ex(w->md, h, &hlen) != 1 || hlen != HASH_LEN) {
        fprintf(out, "state=error\nerror=\"sha256 failed\"\n");
        return false;
    }
    w->link_open = false;
    hex_encode(h, HASH_LEN, expected);
    if (strtoll(PQgetvalue(res, row, 7), NULL, 10) != w->link_first) {
        snprintf(pos_text, sizeof(pos_text), "%lld", w->link_first);
        report_broken(out, pos, ref, pos_text, PQgetvalue(res, row, 7), "link bounds differ");
        return false;
    }
    if (strcmp(expected, PQgetvalue(res, row, 6)) != 0) {
        report_broken(out, pos, ref, expected, PQgetvalue(res, row, 6), "link hash differs");
        return false;
    }
    memcpy(w->prev, h, HASH_LEN);
    w->prev_len = HASH_LEN;
    w->links++;
    return true;
}

/*
 * Rows of the log with no chain item (written with the triggers off): the
 * first such id, or NULL.  Returns false on a query error.
 */
static bool first_unchained(PGconn *conn, const char *schema, char *id, size_t idlen, FILE *out)
{
    char *sql = NULL;
    if (asprintf(&sql,
                 "SELECT e.id FROM %s.events e WHERE NOT EXISTS (SELECT 1 FROM %s.audit_chain a "
                 "WHERE a.kind = 'event' AND a.ref = e.id) UNION ALL SELECT c.seq::text FROM "
                 "%s.changes c WHERE NOT EXISTS (SELECT 1 FROM %s.audit_chain a WHERE a.kind = "
                 "'change' AND a.ref = c.seq::text) LIMIT 1",
                 schema, schema, schema, schema) < 0)
        return false;
    PGresult *res = PQexec(conn, sql);
    free(sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(out, "state=error\nerror=%s\n", log_q(PQresultErrorMessage(res)));
    else if (PQntuples(res) > 0)
        snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return ok;
}

int audit_verify(const config_t *cfg, FILE *out)
{
    const char *schema = cfg->schema;
    int rc = EXIT_ERROR;
    char *sql = NULL;
    PGresult *res = NULL;
    chain_walk_t w = {.next_pos = 1};
    char head_pos[32] = "", head_hash[2 * HASH_LEN + 1] = "";
    PGconn *conn = audit_connect(cfg, out);

    if (conn == NULL)
        return EXIT_ERROR;
    w.md = EVP_MD_CTX_new();
    if (w.md == NULL)
        goto done;
    if (!exec_ok(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", out))
        goto done;
    if (asprintf(&sql, "SELECT pos, encode(hash, 'hex') FROM %s.audit_head", schema) < 0)
        goto done;
    res = PQexec(conn, sql);
    free(sql);
    sql = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fprintf(out, "state=error\nerror=%s\n",
                log_q(PQresultStatus(res) == PGRES_TUPLES_OK ? "no chain head (not migrated?)"
                                                             : PQresultErrorMessage(res)));
        goto done;
    }
    snprintf(head_pos, sizeof(head_pos), "%s", PQgetvalue(res, 0, 0));
    snprintf(head_hash, sizeof(head_hash), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    res = NULL;
    fprintf(out, "schema=%s\nhead_pos=%s\nhead_hash=%s\n", schema, head_pos, head_hash);

    if (asprintf(&sql,
                 "DECLARE audit_walk NO SCROLL CURSOR FOR SELECT pos, kind, ref, "
                 "encode(digest, 'hex'), pruned, encode(recomputed, 'hex'), encode(link_hash, "
                 "'hex'), link_first FROM %s.audit_verify_items ORDER BY pos",
                 schema) < 0)
        goto done;
    if (!exec_ok(conn, sql, out))
        goto done;
    for (;;) {
        res = PQexec(conn, FETCH_SQL);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(out, "state=error\nerror=%s\n", log_q(PQresultErrorMessage(res)));
            goto done;
        }
        int n = PQntuples(res);
        if (n == 0)
            break;
        for (int i = 0; i < n; i++)
            if (!walk_item(&w, res, i, out)) {
                rc = EXIT_BROKEN;
                goto done;
            }
        PQclear(res);
        res = NULL;
    }
    PQclear(res);
    res = NULL;

    char expected[2 * HASH_LEN + 1] = "";
    hex_encode(w.prev, w.prev_len, expected);
    char end_pos[32];
    snprintf(end_pos, sizeof(end_pos), "%lld", w.next_pos - 1);
    if (w.link_open) {
        report_broken(out, w.link_first, "", "a link over these items", "none",
                      "items after the last link");
        rc = EXIT_BROKEN;
        goto done;
    }
    if (strcmp(end_pos, head_pos) != 0 || strcmp(expected, head_hash) != 0) {
        char stored[128];
        snprintf(stored, sizeof(stored), "%s:%s", end_pos, expected);
        char want[128];
        snprintf(want, sizeof(want), "%s:%s", head_pos, head_hash);
        report_broken(out, w.next_pos - 1, "", want, stored, "chain does not reach the head");
        rc = EXIT_BROKEN;
        goto done;
    }
    char unchained[256] = "";
    if (!first_unchained(conn, schema, unchained, sizeof(unchained), out))
        goto done;
    if (unchained[0] != '\0') {
        report_broken(out, 0, unchained, "a chain item", "none", "row not in the chain");
        rc = EXIT_BROKEN;
        goto done;
    }
    fprintf(out, "items=%lld\nlinks=%lld\npruned=%lld\nstate=intact\n", w.items, w.links, w.pruned);
    rc = 0;
done:
    fprintf(out, "exit=%d\n", rc);
    PQclear(res);
    free(sql);
    EVP_MD_CTX_free(w.md);
    PQfinish(conn);
    return rc;
}

int audit_forget(const config_t *cfg, const char *user_id, bool force, FILE *out)
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
    const char *params[2] = {user_id, force ? "true" : "false"};
    res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
    fprintf(out, "user_id=%s\nforced=%s\n", log_q(user_id), force ? "true" : "false");
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
    fprintf(out, "events=%s\nchanges=%s\nstate=forgotten\n", PQgetvalue(res, 0, 0),
            PQgetvalue(res, 0, 1));
    rc = 0;
done:
    PQclear(res);
    free(sql);
    PQfinish(conn);
    return rc;
}

bool audit_take_forget_args(int *argc, char **argv, const char **user_id, bool *force)
{
    int out = 1;
    *user_id = NULL;
    *force = false;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--force") == 0) {
            *force = true;
            continue;
        }
        if (a[0] == '-') {
            argv[out++] = argv[i];
            /* "-c FILE": the value stays with its option. */
            if (strcmp(a, "-c") == 0 && i + 1 < *argc)
                argv[out++] = argv[++i];
            continue;
        }
        if (*user_id != NULL)
            return false;
        *user_id = a;
    }
    argv[out] = NULL;
    *argc = out;
    return true;
}
