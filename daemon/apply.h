/*
 * apply: the one statement that writes a batch -- event log rows, mirror
 * upserts, the cursor and the notification -- in one implicit transaction.
 *
 * This module owns everything about that statement: its SQL text
 * (generated from the mirror tables in event.c), the order and number of
 * its parameters, and what its result row means, including the metrics a
 * committed batch feeds.  The store runs it as it runs any other job.
 */
#ifndef WORKOS_SYNCD_APPLY_H
#define WORKOS_SYNCD_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "store.h"
#include "wur.h"

/*
 * The statement comes in one variant per set of mirror tables it writes, a
 * bit per mirror_table_t: a batch is applied by the variant of the tables
 * it has rows for.  A table the statement does not name costs nothing,
 * where an empty upsert still opens the table and its indexes and fires
 * its statement triggers -- about a third of a small batch's time (a group
 * of webhooks of one or two types, the few events at the head of the
 * stream).  APPLY_ALL_TABLES is prepared on every connection, the others
 * on their first use.
 */
#define APPLY_ALL_TABLES ((1U << MIRROR_COUNT) - 1)

/* The name the variant for `tables` is prepared under, in `buf`. */
const char *apply_stmt_name(unsigned tables, char *buf, size_t len);

/* The tables a batch has rows for. */
unsigned apply_tables(const event_batch_t *b);

/*
 * The statement's parameters: $1 source, $2 stream (NULL: no cursor), $3
 * cursor, $4 caught_up, then from $APPLY_FIRST_ARRAY the batch's arrays:
 * the event log's columns, followed by each of its mirror tables' (seq,
 * event_id, deleted_at, then its columns) in mirror_table_t order.
 */
#define APPLY_FIRST_ARRAY 5
#define APPLY_MAX_PARAMS                                                                           \
    (APPLY_FIRST_ARRAY - 1 + EVENT_LOG_ARRAYS +                                                    \
     MIRROR_COUNT * (EVENT_MIRROR_EXTRA_ARRAYS + MIRROR_MAX_COLUMNS))

/*
 * The text of the variant for `tables` in `schema`, malloc'ed, or NULL when
 * out of memory.
 */
char *apply_sql(const char *schema, unsigned tables) WUR;

/*
 * Lists a batch's arrays for the variant for `tables` (the batch's own, or
 * more) in the statement's order from index APPLY_FIRST_ARRAY - 1 of
 * `values`/`lengths` (room for APPLY_MAX_PARAMS), finishing them.
 * values[i] points into the batch, valid until it is freed.  Returns the
 * index past the last one listed, or 0 when an append had run out of
 * memory: the batch cannot be applied.  Nothing may be added to the batch
 * afterwards.
 */
size_t apply_arrays(event_batch_t *b, unsigned tables, const char **values, int *lengths) WUR;

/* What one apply statement did (or, for a split batch, all of its pieces). */
typedef struct store_apply_result {
    long inserted;           /* events new to the log (the rest were duplicates) */
    long rows[MIRROR_COUNT]; /* mirror rows inserted or changed, per table */
    int64_t commit_us;       /* time from send to commit, microseconds */
    long poisoned;           /* events newly recorded as poison (see apply_classify) */
} store_apply_result_t;

/*
 * What a refused apply statement means, from the server's SQLSTATE.
 * TRANSIENT: the server or the connection, not the batch -- connection
 * classes (08), operator intervention and shutdown (57, query_canceled and
 * statement_timeout included), serialization failure and deadlock (40),
 * object in use and lock_not_available (55), insufficient resources (53),
 * a read-only server (25006), system errors (58), internal errors (XX),
 * a statement or schema problem (42: the same for every batch, so it must
 * stall visibly rather than quarantine healthy events), and anything
 * without a SQLSTATE or of a class not listed here: the same batch is
 * retried.  PERMANENT: the server says it is about the data -- data
 * exceptions (22), integrity constraints (23, operator CHECKs included),
 * program limits (54: index row size), cardinality (21), triggered
 * actions and data changes (09, 27), WITH CHECK OPTION (44), routine
 * exceptions (2F, 38, 39) and PL/pgSQL RAISE and ASSERT (P0): the batch is
 * split to find the events that cause it.
 */
typedef enum apply_failure { APPLY_TRANSIENT, APPLY_PERMANENT } apply_failure_t;

/* Classifies a SQLSTATE (NULL: none, as for a lost connection). */
apply_failure_t apply_classify(const char *sqlstate);

/* The names the two poison statements are prepared under (see apply_poison_sql). */
#define APPLY_POISON_LOG_STMT "workos_syncd_poison_log"
#define APPLY_POISON_KEEP_STMT "workos_syncd_poison_keep"

/*
 * The poison statements' parameters: $1 to $4 as the apply statement's,
 * then the event's log row ($5 id, $6 event, $7 created_at, $8 data, $9
 * context, all text) and the refusal ($10 error, $11 sqlstate).
 */
#define APPLY_POISON_PARAMS 11

/*
 * The text of a statement that records one refused event, and the cursor
 * when $2 is set: with `in_log`, the event goes into the event log (its
 * mirror effect skipped) and a poison_events row points at it; without,
 * poison_events alone keeps it, data as jsonb when the server takes it,
 * else as raw text.  Its result row: events new to the log, and whether
 * the poison_events row is new (1) or a repeat (0).  Malloc'ed, NULL when
 * out of memory.
 */
char *apply_poison_sql(const char *schema, bool in_log);

/*
 * Completion of an apply.  `ok` false means the batch was not committed
 * (err says why); on success `res` describes it.  `arg` is the caller's.
 */
typedef void (*store_apply_fn)(void *arg, bool ok, const store_apply_result_t *res,
                               const char *err);

/*
 * Reads the statement's one result row into *r (commit_us untouched).
 * Returns false when `res` is not that row.
 */
bool apply_read_result(const PGresult *res, store_apply_result_t *r) WUR;

/*
 * Counts a committed batch in the metrics: its commit time, the events
 * new to the log from `source`, and what the batch held by type, malformed
 * and unknown.
 */
void apply_account(const event_batch_t *b, const char *source, const store_apply_result_t *r);

/*
 * Registers the apply statement with the store, for its schema (in
 * store_apply.c, with store_apply).  Call right after store_new().
 * Returns false with `err` filled when out of memory.
 */
bool apply_register(store_t *s, char *err, size_t errlen) WUR;

/*
 * Queues a batch for one transaction.  Takes ownership of `batch`.
 * `cursor`, when not NULL, is stored as the poller's cursor in the same
 * transaction; `caught_up` records that the batch ends at the end of the
 * stream.  `source` is "events_api" or "webhook" (a static string).  A
 * committed batch is counted in the metrics.  `done` is always called
 * exactly once, possibly from within this call when the store is not
 * ready.  (The name keeps the store_ prefix its callers have always used.)
 */
void store_apply(store_t *s, event_batch_t *batch, const char *source, const char *cursor,
                 bool caught_up, store_apply_fn done, void *arg);

#endif
