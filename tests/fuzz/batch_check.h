/*
 * Checks shared by the event fuzz targets: a finished event batch, rendered
 * as the apply statement's parameters, must be well-formed binary arrays
 * with one log row per accepted event, at most one mirror row per event
 * (none in a whole-object column, which the apply takes from the log's
 * data), and valid JSON wherever a jsonb column is fed.  Any breach aborts, which
 * libFuzzer reports as a crash.
 */
#ifndef WORKOS_SYNCD_FUZZ_BATCH_CHECK_H
#define WORKOS_SYNCD_FUZZ_BATCH_CHECK_H

#include <stdint.h>
#include <stdlib.h>

#include "../unit/array_reader.h"
#include "event.h"

/* Reads back a finished array: it must be well formed, with `want` elements. */
static void fuzz_check_array(pg_array_t *a, size_t want, bool json)
{
    char **elems;
    uint32_t n;
    const char *v = pg_array_finish(a);
    if (v == NULL || !array_read(v, a->len, &elems, &n) || n != want)
        abort();
    for (uint32_t i = 0; json && i < n; i++) {
        cJSON *back = elems[i] != NULL ? cJSON_Parse(elems[i]) : NULL;
        if (elems[i] != NULL && back == NULL)
            abort();
        cJSON_Delete(back);
    }
    array_elems_free(elems, n);
}

/* True when an append ran out of memory: such a batch is never sent. */
static bool fuzz_batch_failed(const event_batch_t *b)
{
    for (int i = 0; i < EVENT_LOG_ARRAYS; i++)
        if (b->log[i].failed)
            return true;
    for (int t = 0; t < MIRROR_COUNT; t++)
        for (size_t c = 0; c < EVENT_MIRROR_EXTRA_ARRAYS + MIRROR_MAX_COLUMNS; c++)
            if (b->mirror[t][c].failed)
                return true;
    return false;
}

/* Finishes the batch and checks its arrays against its counters. */
static void fuzz_render(event_batch_t *b)
{
    if (fuzz_batch_failed(b))
        return;
    for (int i = 0; i < EVENT_LOG_ARRAYS; i++)
        fuzz_check_array(&b->log[i], b->n_events, i >= 3);
    if (b->n_malformed + b->n_unknown > b->n_events)
        abort();

    size_t n_rows = 0;
    for (int t = 0; t < MIRROR_COUNT; t++) {
        const mirror_def_t *m = event_mirror((mirror_table_t)t);
        for (size_t c = 0; c < EVENT_MIRROR_EXTRA_ARRAYS + m->n_columns; c++) {
            const mirror_column_t *col =
                c >= EVENT_MIRROR_EXTRA_ARRAYS ? &m->columns[c - EVENT_MIRROR_EXTRA_ARRAYS] : NULL;
            /* The whole object is not sent: the apply takes it from the log's data. */
            bool whole = col != NULL && !event_mirror_sent(col);
            fuzz_check_array(&b->mirror[t][c], whole ? 0 : b->n_rows[t],
                             col != NULL && col->type == COLUMN_JSON);
        }
        n_rows += b->n_rows[t];
    }
    if (n_rows > b->n_events)
        abort();
}

#endif
