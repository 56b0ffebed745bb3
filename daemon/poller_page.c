/*
 * poller_page: what the poller makes of an answer to GET /events.  A
 * transport error, a non-200 status, a body that is not a page and a page
 * out of order after the ones before it are failures the poller backs off
 * from; a page's events go into the batch being gathered, each event the
 * daemon cannot mirror logged (an unknown type once per type), and the id
 * to ask after next is taken from the page's last element.
 */
#include "poller_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "poller_types.h"
#include "poller_windows.h"

/*
 * Out of memory while a page is read is fatal, as everywhere in the
 * poller: an event dropped for want of memory would be skipped for good,
 * and the stored cursor is safe.
 */
static _Noreturn void out_of_memory(const char *where)
{
    log_error("event=out_of_memory where=%s note=\"exiting; the stored cursor is safe\"", where);
    abort();
}

/*
 * WorkOS error bodies hold a message and a code, never the API key;
 * request headers are never logged.
 */
const char *poller_page_error_body(const http_response_t *resp, char *buf, size_t len)
{
    if (!resp->transport_ok || (resp->status >= 200 && resp->status < 300) || len == 0)
        return NULL;
    size_t n = resp->body != NULL ? resp->len : 0;
    if (n > len - 1)
        n = len - 1;
    if (n > 0)
        memcpy(buf, resp->body, n);
    buf[n] = '\0';
    return buf;
}

void poller_page_seen_free(poller_page_seen_t *seen)
{
    for (size_t i = 0; seen != NULL && i < seen->n; i++)
        free(seen->types[i]);
}

/* Remembers unknown types so each is logged once, not once per event. */
static bool first_sighting(poller_page_seen_t *seen, const char *type)
{
    for (size_t i = 0; i < seen->n; i++)
        if (strcmp(seen->types[i], type) == 0)
            return false;
    if (seen->n < POLLER_PAGE_MAX_UNKNOWN) {
        char *copy = strdup(type);
        if (copy != NULL)
            seen->types[seen->n++] = copy;
    }
    return true;
}

/* Adds a page's events to the pending batch, logging those it cannot mirror. */
static void take_page(poller_page_seen_t *seen, event_batch_t **pending, event_page_t *page)
{
    cJSON *e;
    while ((e = cJSON_DetachItemFromArray(page->data, 0)) != NULL) {
        char why[160];
        char idbuf[128], typebuf[128];
        event_peek(e, idbuf, sizeof(idbuf), typebuf, sizeof(typebuf));
        if (*pending == NULL && (*pending = event_batch_new()) == NULL)
            out_of_memory("poller_batch");
        switch (event_batch_add(*pending, e, why, sizeof(why))) {
        case EVENT_NOMEM:
            out_of_memory("poller_batch_add");
        case EVENT_OK:
            break;
        case EVENT_UNKNOWN:
            if (first_sighting(seen, typebuf))
                log_info("event=unknown_event_type id=%s type=%s note=\"kept in the log only\"",
                         log_q(idbuf), log_q(typebuf));
            break;
        case EVENT_MALFORMED:
            log_warn("event=malformed_event id=%s type=%s reason=%s note=\"kept in the log only\"",
                     log_q(idbuf), log_q(typebuf), log_q(why));
            break;
        case EVENT_INVALID:
            log_warn("event=invalid_event id=%s type=%s reason=%s note=\"skipped\"", log_q(idbuf),
                     log_q(typebuf), log_q(why));
            break;
        }
    }
}

void poller_page_tail_clear(poller_page_tail_t *tail)
{
    for (size_t i = 0; i < tail->n; i++)
        free(tail->ids[i]);
    tail->n = 0;
}

void poller_page_tail_free(poller_page_tail_t *tail)
{
    if (tail == NULL)
        return;
    poller_page_tail_clear(tail);
    free(tail->ids);
    free(tail->ms);
    tail->ids = NULL;
    tail->ms = NULL;
    tail->cap = 0;
}

static bool in_tail(const poller_page_tail_t *tail, const char *id)
{
    for (size_t i = 0; i < tail->n; i++)
        if (strcmp(tail->ids[i], id) == 0)
            return true;
    return false;
}

/* Drops the page's elements that repeat an event of the tail; returns how many. */
static size_t drop_repeats(const poller_page_tail_t *tail, event_page_t *page)
{
    size_t dropped = 0;
    if (tail->n == 0)
        return 0;
    cJSON *e = page->data->child;
    while (e != NULL) {
        cJSON *next = e->next;
        cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsString(id) && in_tail(tail, id->valuestring)) {
            cJSON_Delete(cJSON_DetachItemViaPointer(page->data, e));
            dropped++;
        }
        e = next;
    }
    page->n -= dropped;
    return dropped;
}

/* Keeps the tail's and the page's events within the overlap of the newest one taken. */
static void update_tail(poller_page_tail_t *tail, const cJSON *data, int64_t last_ms)
{
    size_t kept = 0;
    for (size_t i = 0; i < tail->n; i++) {
        if (tail->ms[i] >= last_ms - WINDOWS_OVERLAP_MS) {
            tail->ids[kept] = tail->ids[i];
            tail->ms[kept++] = tail->ms[i];
        } else {
            free(tail->ids[i]);
        }
    }
    tail->n = kept;
    for (const cJSON *e = data != NULL ? data->child : NULL; e != NULL; e = e->next) {
        int64_t ms;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (!cJSON_IsString(id) || !event_created_ms(e, &ms) || ms < last_ms - WINDOWS_OVERLAP_MS)
            continue;
        if (tail->n == tail->cap) {
            if (tail->cap >= POLLER_PAGE_TAIL_MAX)
                return; /* more events in one millisecond than this: the log's key dedupes */
            size_t cap = tail->cap ? tail->cap * 2 : 16;
            char **ids = realloc(tail->ids, cap * sizeof(*ids));
            if (ids != NULL)
                tail->ids = ids;
            int64_t *mss = ids != NULL ? realloc(tail->ms, cap * sizeof(*mss)) : NULL;
            if (mss == NULL)
                out_of_memory("poller_tail");
            tail->ms = mss;
            tail->cap = cap;
        }
        if ((tail->ids[tail->n] = strdup(id->valuestring)) == NULL)
            out_of_memory("poller_tail");
        tail->ms[tail->n++] = ms;
    }
}

/*
 * Says, once for the page, how many of its events carry a created_at the
 * order checks cannot use: more than EVENT_FUTURE_MS ahead of this host's
 * clock, or more than EVENT_PAST_MS before `newest_ms`, the newest time
 * taken (a clock gone wrong at the source).  They are stored as they came.
 */
static void log_out_of_range(const event_page_t *page, int64_t newest_ms)
{
    int64_t now = clock_wall_ms(), ms;
    const cJSON *example = NULL;
    size_t n = 0;
    if (newest_ms > now + EVENT_FUTURE_MS)
        newest_ms = 0; /* a cursor's own time that far ahead orders nothing either */
    for (const cJSON *e = page->data->child; e != NULL; e = e->next) {
        if (!event_created_ms(e, &ms) ||
            (ms <= now + EVENT_FUTURE_MS && (newest_ms <= 0 || ms >= newest_ms - EVENT_PAST_MS)))
            continue;
        if (n++ == 0)
            example = e;
    }
    if (example == NULL)
        return;
    char idbuf[128], typebuf[128];
    event_peek(example, idbuf, sizeof(idbuf), typebuf, sizeof(typebuf));
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(example, "created_at");
    log_warn("event=created_at_out_of_range n=%zu id=%s created_at=%s note=\"stored as they came; "
             "a day ahead of this host's clock or a year behind the stream: no part in the order "
             "checks\"",
             n, log_q(idbuf), log_q(cJSON_GetStringValue(created)));
}

/*
 * A parsed page, which it frees: repeats of the tail dropped, the order
 * check, the events added (see poller_page_read).
 */
static poller_event_t take(poller_page_seen_t *seen, poller_page_tail_t *tail, event_page_t *page,
                           event_batch_t **pending, int64_t *last_fetched_ms,
                           poller_page_result_t *out, char *reason, size_t reasonlen)
{
    *out = (poller_page_result_t){.n = 0, .after = NULL, .retry_after_ms = -1, .older = false};
    size_t n = page->n; /* elements as listed: a full page means more may follow */
    out->repeated = drop_repeats(tail, page);
    if (!event_page_in_order(page, *last_fetched_ms, &out->older, reason, reasonlen)) {
        event_page_free(page);
        return POLLER_EV_FETCH_FAILED;
    }
    out->stepped_back = !event_page_ascends(page, *last_fetched_ms);

    const cJSON *first = page->data->child;
    const cJSON *last = first != NULL ? first->prev : NULL;
    const char *after = event_page_last_id(page);
    if (after == NULL && n >= POLLER_TYPES_PAGE_LIMIT) {
        /* Asked again after the same cursor, it would come back for ever. */
        event_page_free(page);
        snprintf(reason, reasonlen, "a full page with no event id to ask after");
        return POLLER_EV_FETCH_FAILED;
    }
    char *fallback = after != NULL ? strdup(after) : NULL;
    if (after != NULL && fallback == NULL)
        out_of_memory("poller_copy"); /* a cursor we cannot remember we might skip past */
    int64_t a, b;
    if (n >= POLLER_TYPES_PAGE_LIMIT && page->n > 1 && event_created_ms(first, &a) &&
        event_created_ms(last, &b) && b >= a && b - a <= EVENT_PAST_MS)
        out->ms_per_event = (double)(b - a) / (double)(page->n - 1);

    int64_t newest = event_page_newest(page);
    if (newest > 0)
        update_tail(tail, page->data, newest);
    log_out_of_range(page, newest > *last_fetched_ms ? newest : *last_fetched_ms);

    take_page(seen, pending, page);
    /* The newest so far, not the last: a stream read newest first, a little
     * older each page, cannot then pass for one within the skew. */
    if (newest > *last_fetched_ms)
        *last_fetched_ms = newest;
    event_page_free(page);

    out->n = n;
    out->after = fallback;
    return n >= POLLER_TYPES_PAGE_LIMIT ? POLLER_EV_PAGE_FULL : POLLER_EV_PAGE_SHORT;
}

poller_event_t poller_page_read(poller_page_seen_t *seen, poller_page_tail_t *tail,
                                const http_response_t *resp, event_batch_t **pending,
                                int64_t *last_fetched_ms, poller_page_result_t *out, char *reason,
                                size_t reasonlen)
{
    event_page_t page;

    *out = (poller_page_result_t){.n = 0, .after = NULL, .retry_after_ms = -1, .older = false};
    metrics_poll_request(resp->transport_ok ? resp->status : 0);
    if (!resp->transport_ok) {
        snprintf(reason, reasonlen, "request failed: %s", resp->error);
        return POLLER_EV_FETCH_FAILED;
    }
    if (resp->status != 200) {
        snprintf(reason, reasonlen, "http %ld%s", resp->status,
                 resp->status == 401 || resp->status == 403 ? " (check the API key)" : "");
        if (resp->status == 429 || resp->status == 503)
            out->retry_after_ms = resp->retry_after_ms;
        return resp->status == 400 ? POLLER_EV_PAGE_REFUSED : POLLER_EV_FETCH_FAILED;
    }
    if (!event_page_parse(&page, resp->body, resp->len, reason, reasonlen))
        return POLLER_EV_FETCH_FAILED;
    return take(seen, tail, &page, pending, last_fetched_ms, out, reason, reasonlen);
}
