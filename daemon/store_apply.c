/*
 * store_apply: a batch as a store job.  The thin glue between the store,
 * which runs statements, and apply.c, which owns the apply statement: it
 * registers the statement, lists a batch's parameters, queues the job and
 * turns its reply into the caller's store_apply_fn.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

bool apply_register(store_t *s, char *err, size_t errlen)
{
    char *sql = apply_sql(store_schema(s));
    bool ok = sql != NULL && store_register(s, APPLY_STMT, sql);
    free(sql);
    if (!ok)
        snprintf(err, errlen, "out of memory");
    return ok;
}

/* One apply in flight: the batch, the statement's parameters pointing into it. */
typedef struct apply_job {
    event_batch_t *batch;
    const char *source;
    char *cursor;
    bool caught_up;
    store_apply_fn done;
    void *arg;
    const char *values[APPLY_MAX_PARAMS];
    int lengths[APPLY_MAX_PARAMS];
    int formats[APPLY_MAX_PARAMS];
} apply_job_t;

static void apply_job_free(apply_job_t *j)
{
    if (j == NULL)
        return;
    event_batch_free(j->batch);
    free(j->cursor);
    free(j);
}

static void on_reply(void *arg, const store_reply_t *reply)
{
    apply_job_t *j = arg;
    store_apply_result_t r = {0};

    if (apply_read_result(reply->res, &r)) {
        r.commit_us = reply->elapsed_us;
        apply_account(j->batch, j->source, &r);
        j->done(j->arg, true, &r, NULL);
    } else {
        /* Only a statement the server refused counts as a failed batch;
         * one that never ran is the connection's story. */
        if (reply->answered)
            metrics_batch(false, 0);
        j->done(j->arg, false, NULL, reply->err != NULL ? reply->err : "no result");
    }
    apply_job_free(j);
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
    j->batch = batch;
    j->source = source;
    j->caught_up = caught_up;
    j->done = done;
    j->arg = arg;
    size_t n = apply_arrays(batch, j->values, j->lengths);
    if (n == 0) {
        apply_job_free(j);
        done(arg, false, NULL, "out of memory building the batch");
        return;
    }
    j->values[0] = source;
    j->values[1] = j->cursor != NULL ? STORE_STREAM_EVENTS_API : NULL;
    j->values[2] = j->cursor;
    j->values[3] = caught_up ? "t" : "f";
    for (size_t i = APPLY_FIRST_ARRAY - 1; i < n; i++)
        j->formats[i] = 1; /* the arrays are binary */
    store_query_t q = {.prepared = APPLY_STMT,
                       .n_params = (int)n,
                       .values = j->values,
                       .lengths = j->lengths,
                       .formats = j->formats};
    store_run(s, &q, on_reply, j);
}
