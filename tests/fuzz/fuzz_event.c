/*
 * libFuzzer target for a webhook body (parsed by event_parse_json, as the receiver does): the bytes
 * are parsed as webhook.c parses them and the envelope goes through event_batch_add, then the batch
 * is rendered as the apply statement's parameters and checked (see
 * batch_check.h).  An envelope is refused exactly when it adds no event.
 * clock_parse_iso8601 also gets the input as a string.  Events API pages
 * have their own target, fuzz_page.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "batch_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    why[0] = '\0';
    cJSON *envelope = event_parse_json((const char *)data, size, why, sizeof(why));
    if (envelope == NULL && why[0] == '\0')
        abort(); /* a refusal says why */
    if (envelope != NULL) {
        event_batch_t *b = event_batch_new();
        if (b != NULL) {
            event_status_t st = event_batch_add(b, envelope, why, sizeof(why));
            if ((st == EVENT_INVALID) != (b->n_events == 0))
                abort();
            fuzz_render(b);
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
