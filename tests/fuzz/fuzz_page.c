/*
 * libFuzzer target for an Events API list response: event_page_parse and
 * the order checks, then every envelope of an accepted page through one
 * event_batch_add batch, as the poller does, and the batch rendered and
 * checked (see batch_check.h).
 * An accepted page has a root, a `data` array and its length; a refused
 * one leaves nothing behind and says why.
 */
#include <stdint.h>
#include <stdlib.h>

#include "event.h"
#include "batch_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "", why[256];
    event_page_t page;

    if (event_page_parse(&page, (const char *)data, size, err, sizeof(err))) {
        if (page.root == NULL || !cJSON_IsArray(page.data) ||
            (size_t)cJSON_GetArraySize(page.data) != page.n)
            abort();
        /* The order checks, alone and after a time: a refusal says why. */
        bool older;
        if (!event_page_in_order(&page, 0, &older, err, sizeof(err)) && (older || err[0] == '\0'))
            abort();
        err[0] = '\0';
        if (!event_page_in_order(&page, event_page_newest(&page), &older, err, sizeof(err)) &&
            err[0] == '\0')
            abort();
        (void)event_page_ascends(&page, 0);
        event_batch_t *b = event_batch_new();
        while (page.data->child != NULL) {
            cJSON *item = cJSON_DetachItemFromArray(page.data, 0);
            if (b != NULL)
                (void)event_batch_add(b, item, why, sizeof(why));
            else
                cJSON_Delete(item);
        }
        if (b != NULL)
            fuzz_render(b);
        event_batch_free(b);
        event_page_free(&page);
    } else if (page.root != NULL || page.data != NULL || page.n != 0 || err[0] == '\0') {
        abort();
    }
    return 0;
}
