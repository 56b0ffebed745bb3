/*
 * libFuzzer target for the event decoder in daemon/event.c.  The input is
 * treated twice: as an Events API list response (every envelope of the
 * page goes through event_batch_add) and as a single webhook body (parsed
 * by event_parse_json, as the receiver does).  Each
 * resulting batch has its arrays finished as the apply statement takes them.  Beyond
 * memory safety, it checks that what goes to PostgreSQL is well-formed
 * binary arrays, with one log row per accepted event, at most one mirror
 * row per event, and valid JSON wherever a jsonb column is fed, and
 * that a rejected page leaves nothing behind.  clock_parse_iso8601 also gets
 * the input as a string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/array_reader.h"
#include "clock.h"
#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads back a finished array: it must be well formed, with `want` elements. */
static void check_array(pg_array_t *a, size_t want, bool json)
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
static bool batch_failed(const event_batch_t *b)
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
static void render(event_batch_t *b)
{
    if (batch_failed(b))
        return;
    for (int i = 0; i < EVENT_LOG_ARRAYS; i++)
        check_array(&b->log[i], b->n_events, i >= 3);
    if (b->n_malformed + b->n_unknown > b->n_events)
        abort();

    size_t n_rows = 0;
    for (int t = 0; t < MIRROR_COUNT; t++) {
        const mirror_def_t *m = event_mirror((mirror_table_t)t);
        for (size_t c = 0; c < EVENT_MIRROR_EXTRA_ARRAYS + m->n_columns; c++)
            check_array(&b->mirror[t][c], b->n_rows[t],
                        c >= EVENT_MIRROR_EXTRA_ARRAYS &&
                            m->columns[c - EVENT_MIRROR_EXTRA_ARRAYS].type == COLUMN_JSON);
        n_rows += b->n_rows[t];
    }
    if (n_rows > b->n_events)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "", why[256];
    event_page_t page;

    if (event_page_parse(&page, (const char *)data, size, err, sizeof(err))) {
        if (page.root == NULL || !cJSON_IsArray(page.data) ||
            (size_t)cJSON_GetArraySize(page.data) != page.n)
            abort();
        event_batch_t *b = event_batch_new();
        while (page.data->child != NULL) {
            cJSON *item = cJSON_DetachItemFromArray(page.data, 0);
            if (b != NULL)
                (void)event_batch_add(b, item, why, sizeof(why));
            else
                cJSON_Delete(item);
        }
        if (b != NULL)
            render(b);
        event_batch_free(b);
        event_page_free(&page);
    } else if (page.root != NULL || page.data != NULL || page.n != 0 || err[0] == '\0') {
        abort();
    }

    err[0] = '\0';
    cJSON *envelope = event_parse_json((const char *)data, size, err, sizeof(err));
    if (envelope == NULL && err[0] == '\0')
        abort(); /* a refusal says why */
    if (envelope != NULL) {
        event_batch_t *b = event_batch_new();
        if (b != NULL) {
            event_status_t st = event_batch_add(b, envelope, why, sizeof(why));
            if ((st == EVENT_INVALID) != (b->n_events == 0))
                abort();
            render(b);
        } else {
            cJSON_Delete(envelope);
        }
        event_batch_free(b);
    }

    char *text = malloc(size + 1);
    if (text != NULL) {
        memcpy(text, data, size);
        text[size] = '\0';
        int64_t ms;
        (void)clock_parse_iso8601(text, &ms);
        free(text);
    }
    return 0;
}
