/*
 * store_apply: a batch as a store job.  The glue between the store, which
 * runs statements, and apply.c, which owns the apply statement: it
 * registers the statements, lists a batch's parameters, queues the job and
 * turns its replies into the caller's store_apply_fn.
 *
 * A batch the server refuses for a reason about the data (apply_classify)
 * is not retried as it is: the job isolates the events that cause it.  It
 * keeps a stack of pieces, each a range of the batch's events and what to
 * do with it, and runs them one at a time in stream order, each in its own
 * transaction:
 *
 *   APPLY    the apply statement over the piece; refused, it is split in
 *            halves (both APPLY), or, one event long, becomes LOG_ONLY;
 *   LOG_ONLY the event into the log with its mirror effect skipped, and a
 *            poison_events row; refused, it becomes KEEP;
 *   KEEP     the event in poison_events alone; refused, the job fails.
 *
 * Only the piece that ends at the batch's last event carries the cursor,
 * and it runs last, so the stored cursor never points past an event that
 * is not committed somewhere.  A transient failure fails the whole job and
 * the caller retries the batch: the pieces already committed are in the
 * log, so their events count as duplicates and their mirror effects are
 * not repeated, and a poison event already in the log is no longer
 * refused.  The first attempt sends the batch as it is; slices are made
 * only after a refusal.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

static char *variant_sql(const store_t *s, unsigned tables)
{
    return apply_sql(store_schema(s), tables);
}

/* The variant for every table on every connection, the others lazily. */
static bool register_variants(store_t *s)
{
    char name[64];
    char *sql = apply_sql(store_schema(s), APPLY_ALL_TABLES);
    bool ok = sql != NULL &&
              store_register(s, apply_stmt_name(APPLY_ALL_TABLES, name, sizeof(name)), sql);
    free(sql);
    for (unsigned tables = 0; ok && tables < APPLY_ALL_TABLES; tables++)
        ok = store_register_lazy(s, apply_stmt_name(tables, name, sizeof(name)), variant_sql,
                                 tables);
    return ok;
}

bool apply_register(store_t *s, char *err, size_t errlen)
{
    char *log_sql = apply_poison_sql(store_schema(s), true);
    char *keep_sql = apply_poison_sql(store_schema(s), false);
    bool ok = log_sql != NULL && keep_sql != NULL && register_variants(s) &&
              store_register(s, APPLY_POISON_LOG_STMT, log_sql) &&
              store_register(s, APPLY_POISON_KEEP_STMT, keep_sql);
    free(log_sql);
    free(keep_sql);
    if (!ok)
        snprintf(err, errlen, "out of memory");
    return ok;
}

typedef enum piece_mode {
    PIECE_APPLY,    /* the apply statement over the range */
    PIECE_LOG_ONLY, /* one event: the log without the mirror, and a poison row */
    PIECE_KEEP      /* one event: a poison row holding its payload */
} piece_mode_t;

typedef struct piece {
    size_t lo, hi; /* events [lo, hi) of the batch */
    piece_mode_t mode;
} piece_t;

/* Halving a range of at most SIZE_MAX events never needs more pieces than this. */
#define MAX_PIECES (2 * 64 + 2)

/* One apply in flight: the batch, its pieces, the parameters of the one running. */
typedef struct apply_job {
    store_t *store;
    event_batch_t *batch;
    const char *source;
    char *cursor;
    bool caught_up;
    store_apply_fn done;
    void *arg;
    piece_t stack[MAX_PIECES]; /* pieces still to run; the top runs next */
    size_t n_stack;
    piece_t cur;          /* the piece running */
    event_batch_t *slice; /* its events, when it is part of the batch */
    bool split;           /* the batch was refused at least once */
    char error[512];      /* why the event of a LOG_ONLY or KEEP piece was refused */
    char sqlstate[6];
    store_apply_result_t total;
    char stmt[64]; /* the apply variant the piece runs */
    const char *values[APPLY_MAX_PARAMS];
    int lengths[APPLY_MAX_PARAMS];
    int formats[APPLY_MAX_PARAMS];
} apply_job_t;

static void apply_job_free(apply_job_t *j)
{
    if (j == NULL)
        return;
    event_batch_free(j->slice);
    event_batch_free(j->batch);
    free(j->cursor);
    free(j);
}

static void run_piece(apply_job_t *j);

/* Ends the job: the caller hears `ok` (with the totals) or `err`. */
static void finish(apply_job_t *j, bool ok, bool answered, const char *err)
{
    if (ok) {
        apply_account(j->batch, j->source, &j->total);
        j->done(j->arg, true, &j->total, NULL);
    } else {
        /* Only a statement the server refused counts as a failed batch;
         * one that never ran is the connection's story. */
        if (answered)
            metrics_batch(false, 0);
        j->done(j->arg, false, NULL, err);
    }
    apply_job_free(j);
}

static bool push(apply_job_t *j, size_t lo, size_t hi, piece_mode_t mode)
{
    if (j->n_stack == MAX_PIECES)
        return false;
    j->stack[j->n_stack++] = (piece_t){lo, hi, mode};
    return true;
}

/* A poison statement's row: log it once, the first time the event is recorded. */
static void recorded(apply_job_t *j, const PGresult *res)
{
    event_row_t row;
    char id[256], type[256];

    j->total.inserted += strtol(PQgetvalue(res, 0, 0), NULL, 10);
    if (strtol(PQgetvalue(res, 0, 1), NULL, 10) == 0)
        return; /* recorded before: this is a retry of the same batch */
    j->total.poisoned++;
    metrics_poison_event(j->cur.mode == PIECE_LOG_ONLY);
    char msg[512];
    store_error_without_detail(msg, sizeof(msg), j->error);
    bool have = event_batch_row(j->batch, j->cur.lo, &row);
    snprintf(id, sizeof(id), "%.*s", have ? (int)row.len[0] : 1, have ? row.value[0] : "-");
    snprintf(type, sizeof(type), "%.*s", have ? (int)row.len[1] : 1, have ? row.value[1] : "-");
    log_warn("event=poison_event id=%s type=%s source=%s stored=%s sqlstate=%s error=%s", log_q(id),
             log_q(type), j->source,
             j->cur.mode == PIECE_LOG_ONLY ? "log_without_mirror" : "poison_events",
             log_q(j->sqlstate), log_q(msg));
}

/* The current piece was refused with `sqlstate`: what runs instead of it. */
static bool refused(apply_job_t *j, const store_reply_t *reply)
{
    piece_t p = j->cur;
    char msg[512];

    snprintf(j->error, sizeof(j->error), "%s", reply->err != NULL ? reply->err : "refused");
    snprintf(j->sqlstate, sizeof(j->sqlstate), "%s",
             reply->sqlstate != NULL ? reply->sqlstate : "");
    if (!j->split)
        log_warn("event=apply_refused n=%zu source=%s sqlstate=%s error=%s "
                 "note=\"splitting the batch to find the events the database refuses\"",
                 j->batch->n_events, j->source, log_q(reply->sqlstate),
                 log_q(store_error_without_detail(msg, sizeof(msg), j->error)));
    j->split = true;
    switch (p.mode) {
    case PIECE_APPLY:
        if (p.hi - p.lo > 1) {
            size_t mid = p.lo + (p.hi - p.lo) / 2;
            return push(j, mid, p.hi, PIECE_APPLY) && push(j, p.lo, mid, PIECE_APPLY);
        }
        return p.hi - p.lo == 1 && push(j, p.lo, p.hi, PIECE_LOG_ONLY);
    case PIECE_LOG_ONLY:
        return push(j, p.lo, p.hi, PIECE_KEEP);
    case PIECE_KEEP:
        break;
    }
    return false;
}

static void on_reply(void *arg, const store_reply_t *reply)
{
    apply_job_t *j = arg;
    store_apply_result_t r = {0};

    event_batch_free(j->slice);
    j->slice = NULL;
    if (reply->res != NULL && j->cur.mode == PIECE_APPLY && apply_read_result(reply->res, &r)) {
        j->total.inserted += r.inserted;
        for (int t = 0; t < MIRROR_COUNT; t++)
            j->total.rows[t] += r.rows[t];
        j->total.commit_us += reply->elapsed_us;
    } else if (reply->res != NULL && j->cur.mode != PIECE_APPLY && PQntuples(reply->res) == 1 &&
               PQnfields(reply->res) >= 2) {
        recorded(j, reply->res);
        j->total.commit_us += reply->elapsed_us;
    } else if (!reply->answered || apply_classify(reply->sqlstate) == APPLY_TRANSIENT) {
        finish(j, false, reply->answered, reply->err != NULL ? reply->err : "no result");
        return;
    } else if (!refused(j, reply)) {
        char err[700], msg[512];
        snprintf(err, sizeof(err), "event refused even by poison_events: %s", j->error);
        log_error("event=poison_unstorable first=%zu source=%s sqlstate=%s error=%s", j->cur.lo,
                  j->source, log_q(j->sqlstate),
                  log_q(store_error_without_detail(msg, sizeof(msg), j->error)));
        finish(j, false, true, err);
        return;
    }
    if (j->n_stack == 0) {
        finish(j, true, true, NULL);
        return;
    }
    run_piece(j);
}

/* Sends the piece on top of the stack, with the cursor when it ends the batch. */
static void run_piece(apply_job_t *j)
{
    j->cur = j->stack[--j->n_stack];
    bool last = j->cur.hi == j->batch->n_events;
    size_t n;

    memset(j->formats, 0, sizeof(j->formats));
    if (j->cur.mode == PIECE_APPLY) {
        event_batch_t *b = j->batch;
        if (j->split) {
            j->slice = event_batch_slice(j->batch, j->cur.lo, j->cur.hi, true);
            b = j->slice;
        }
        unsigned tables = b != NULL ? apply_tables(b) : 0;
        apply_stmt_name(tables, j->stmt, sizeof(j->stmt));
        n = b != NULL ? apply_arrays(b, tables, j->values, j->lengths) : 0;
        for (size_t i = APPLY_FIRST_ARRAY - 1; i < n; i++)
            j->formats[i] = 1; /* the arrays are binary */
    } else {
        event_row_t row;
        n = 0;
        if (event_batch_row(j->batch, j->cur.lo, &row)) {
            n = APPLY_POISON_PARAMS;
            for (size_t i = 0; i < EVENT_LOG_ARRAYS; i++) {
                /* text sent in binary is its bytes: no NUL needed */
                j->values[4 + i] = row.value[i];
                j->lengths[4 + i] = (int)row.len[i];
                j->formats[4 + i] = 1;
            }
            j->values[9] = j->error;
            j->values[10] = j->sqlstate[0] ? j->sqlstate : NULL;
        }
    }
    if (n == 0) {
        finish(j, false, false, "out of memory building the batch");
        return;
    }
    j->values[0] = j->source;
    j->values[1] = last && j->cursor != NULL ? STORE_STREAM_EVENTS_API : NULL;
    j->values[2] = last ? j->cursor : NULL;
    j->values[3] = last && j->caught_up ? "t" : "f";
    store_query_t q = {.prepared = j->cur.mode == PIECE_APPLY      ? j->stmt
                                   : j->cur.mode == PIECE_LOG_ONLY ? APPLY_POISON_LOG_STMT
                                                                   : APPLY_POISON_KEEP_STMT,
                       .n_params = (int)n,
                       .values = j->values,
                       .lengths = j->lengths,
                       .formats = j->formats};
    store_run(j->store, &q, on_reply, j);
}

void store_apply(store_t *s, event_batch_t *batch, const char *source, const char *cursor,
                 bool caught_up, store_apply_fn done, void *arg)
{
    apply_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL || (cursor != NULL && (j->cursor = strdup(cursor)) == NULL)) {
        free(j);
        event_batch_free(batch);
        done(arg, false, NULL, "out of memory");
        return;
    }
    j->store = s;
    j->batch = batch;
    j->source = source;
    j->caught_up = caught_up;
    j->done = done;
    j->arg = arg;
    if (!push(j, 0, batch->n_events, PIECE_APPLY)) {
        apply_job_free(j);
        done(arg, false, NULL, "out of memory");
        return;
    }
    run_piece(j);
}
