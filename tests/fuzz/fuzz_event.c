/*
 * libFuzzer target for the event decoder in daemon/event.c.  The input is
 * treated twice: as an Events API list response (every envelope of the
 * page goes through event_batch_add) and as a single webhook body.  Each
 * resulting batch is rendered as the apply statement's parameters.  Beyond
 * memory safety, it checks that what goes to PostgreSQL is valid JSON with
 * one log row per accepted event and at most one mirror row per event, and
 * that a rejected page leaves nothing behind.  event_parse_time also gets
 * the input as a string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Renders the batch and checks the rendered JSON against its counters. */
static void render(const event_batch_t *b)
{
    char *events = event_batch_events_json(b);
    if (events == NULL)
        return;
    cJSON *back = cJSON_Parse(events);
    if (back == NULL || !cJSON_IsArray(back) || (size_t)cJSON_GetArraySize(back) != b->n_events)
        abort();
    cJSON_Delete(back);
    free(events);
    if (b->n_malformed + b->n_unknown > b->n_events)
        abort();

    size_t n_rows = 0;
    for (int t = 0; t < MIRROR_COUNT; t++) {
        char *rows = event_batch_rows_json(b, (mirror_table_t)t);
        if (rows == NULL)
            continue;
        back = cJSON_Parse(rows);
        if (back == NULL || !cJSON_IsArray(back))
            abort();
        n_rows += (size_t)cJSON_GetArraySize(back);
        cJSON_Delete(back);
        free(rows);
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

    cJSON *envelope = cJSON_ParseWithLength((const char *)data, size);
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
        (void)event_parse_time(text, &ms);
        free(text);
    }
    return 0;
}
