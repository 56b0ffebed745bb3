/*
 * reconcile_sql: what the reconciler lists and the statements it runs.
 *
 * The kinds of listing (one per mirrored type, each either global or per
 * organization/user), their WorkOS endpoints, and the SQL that applies a
 * listed page, sweeps what a complete listing did not contain, opens or
 * resumes a run and reports on it.  The mirror columns come from event.c's
 * tables (event_mirror()), so a listing writes exactly the columns an event
 * writes, plus the few fields only the list endpoints carry (declared
 * here).  Pure: builds text, touches neither network nor database.
 *
 * Every statement is generated for a mirror schema and a progress schema:
 * both the configured schema for a real run, both "pg_temp" for a dry run
 * (which stages the listing in temporary copies of the tables).
 */
#ifndef WORKOS_SYNCD_RECONCILE_SQL_H
#define WORKOS_SYNCD_RECONCILE_SQL_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"
#include "wur.h"

/* The listings of a run, in the order their scopes are taken. */
typedef enum recon_kind {
    RECON_ORGANIZATIONS, /* GET /organizations */
    RECON_USERS,         /* GET /user_management/users */
    RECON_INVITATIONS,   /* GET /user_management/invitations */
    RECON_MEMBERSHIPS,   /* per organization, every status */
    RECON_API_KEYS,      /* GET /organizations/{id}/api_keys */
    RECON_SESSIONS,      /* GET /user_management/users/{id}/sessions: active only */
    RECON_KIND_COUNT     /* number of kinds, not a kind */
} recon_kind_t;

typedef struct recon_kind_def {
    const char *name;      /* the mirror table's name, also the kind's name in the progress table */
    mirror_table_t table;  /* the mirror table it fills */
    const char *path;      /* endpoint path; for a per-parent kind, the part before the id */
    const char *path_tail; /* per-parent: the part after the id (or "" when the id is a query) */
    const char *query;     /* fixed query parameters, "" when none */
    bool per_parent;       /* listed once per organization or user */
    bool user_management;  /* under /user_management/: the stricter rate limit */
    bool swept;            /* live rows a complete listing lacks are tombstoned */
} recon_kind_def_t;

/* The definition of kind `k`, or NULL when out of range. */
const recon_kind_def_t *reconcile_kind(recon_kind_t k);

/* The kind named `name` (as stored in the progress table); false when none. */
bool reconcile_kind_by_name(const char *name, recon_kind_t *k) WUR;

/*
 * The URL of one page: base_url, the kind's path for `scope` (a parent id,
 * "" for a global kind), limit=100, and `after` when not NULL.  Ids are
 * percent-encoded.  Malloc'ed; NULL when out of memory.
 */
char *reconcile_url(const char *base_url, recon_kind_t k, const char *scope, const char *after) WUR;

/*
 * Applies one listed page and advances its scope, in one statement:
 * $1 run id, $2 scope, $3 the next page's cursor (NULL: the scope is
 * complete), $4 the page's objects, a JSON array, secrets already removed,
 * $5 whether this ends the page: false for a part of a page applied one
 * object at a time, whose counts are added but whose cursor stays.
 * An object is upserted with the events' updated_at guard (never over
 * newer data, never over a tombstone), a column changes only when the
 * object carries its field, and the row is marked as listed by the run.
 * Returns one row: listed, inserted, updated, and 1 when the scope's row
 * was found.  Malloc'ed; NULL when out of memory.
 */
char *reconcile_page_sql(const char *mirror_schema, const char *progress_schema,
                         recon_kind_t k) WUR;

/*
 * Records object $3 of kind `k`, listed under scope $2 by run $1, as
 * refused by the database (sqlstate $4, message $5) in reconcile_refused,
 * and marks its live mirror row, if any, as listed by the run so that the
 * sweep keeps it.  Returns one row: the mirror rows marked.
 */
char *reconcile_refuse_sql(const char *mirror_schema, const char *progress_schema,
                           recon_kind_t k) WUR;

/*
 * Ends a phase of run $1.  After the root listings (organizations, users,
 * invitations): tombstones their live rows the run did not list and that
 * nothing wrote since the run began, creates the per-organization and
 * per-user scopes, and moves the run to 'children'.  After those:
 * tombstones memberships and organization API keys the same way (never
 * sessions: an unlisted session is left as it is) and finishes the run.
 * Does nothing when the run is past that phase.  `children` picks the
 * phase.  Returns one row: the rows tombstoned.
 */
char *reconcile_sweep_sql(const char *mirror_schema, const char *progress_schema,
                          bool children) WUR;

/*
 * Opens a run: the newest unfinished one, or a new one with reason $1 and
 * its root scopes.  Returns one row: id, phase, started_at (ms since the
 * epoch), resumed (boolean).
 */
char *reconcile_open_sql(const char *progress_schema) WUR;

/*
 * The next open scopes of run $1 after ($2 kind, $3 scope) in (kind,
 * scope) order, at most $4.  Rows: kind, scope, after.
 */
char *reconcile_queue_sql(const char *progress_schema) WUR;

/*
 * Per kind, what run $1 did: kind, requests, listed, inserted, updated,
 * tombstoned.
 */
char *reconcile_summary_sql(const char *progress_schema) WUR;

/*
 * For a dry run: creates on this connection the temporary copies (in
 * pg_temp, the same names) of the progress and mirror tables of `schema`.
 */
char *reconcile_stage_sql(const char *schema) WUR;

/*
 * For a dry run: compares the staged listing of kind `k` with the mirror
 * table in `schema`.  Rows: what ('missing', 'extra', 'differ'), count,
 * the first ids (comma-separated, "id(col,col)" for 'differ').  Extra
 * rows are not reported for sessions (the listing holds active ones only).
 */
char *reconcile_diff_sql(const char *schema, recon_kind_t k) WUR;

#endif
