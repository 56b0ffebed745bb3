/*
 * poller_page: reads the Events API's answer to GET /events for the
 * poller -- the status, the page, its order after the pages before it --
 * and adds the page's events to the batch being gathered, logging those it
 * cannot mirror.  Internal to the poller: the request, the cursor and the
 * backoff are poller.c's.
 */
#ifndef WORKOS_SYNCD_POLLER_PAGE_H
#define WORKOS_SYNCD_POLLER_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "http_client.h"
#include "poller_fsm.h"
#include "wur.h"

#define POLLER_PAGE_MAX_UNKNOWN 64 /* unknown types remembered, at most */

/* The unknown types already logged, so each is logged once, not once per event. */
typedef struct poller_page_seen {
    char *types[POLLER_PAGE_MAX_UNKNOWN];
    size_t n;
} poller_page_seen_t;

#define POLLER_PAGE_TAIL_MAX 4096 /* ids remembered from the end of the last page, at most */

/*
 * The ids of the events taken last that lie within WINDOWS_OVERLAP_MS of
 * the newest of them: the only ones a page of the next fetch window can
 * repeat (see poller_windows.h).  A page's repeats of them are dropped
 * before anything else reads it.
 */
typedef struct poller_page_tail {
    char **ids;
    int64_t *ms;
    size_t n, cap;
} poller_page_tail_t;

/* What a page told beyond its events. */
typedef struct poller_page_result {
    size_t n;               /* elements on the page, usable or not */
    char *after;            /* the id to ask after next, or NULL; the caller frees it */
    int64_t retry_after_ms; /* a 429's or 503's Retry-After, else -1 */
    bool older;             /* the page starts too far before *last_fetched_ms */
    bool stepped_back;      /* its created_at steps back, within the skew allowed */
    size_t repeated;        /* elements dropped as repeats of the tail */
    double ms_per_event;    /* a full page's span over its events, 0 when not known */
} poller_page_result_t;

/*
 * Reads the answer `resp`.  A failure returns POLLER_EV_FETCH_FAILED or
 * POLLER_EV_PAGE_REFUSED (a 400) with `reason` filled and out->retry_after_ms
 * set, and changes nothing else.  A page returns POLLER_EV_PAGE_FULL or
 * POLLER_EV_PAGE_SHORT: its events are added to *pending (created when
 * NULL), *last_fetched_ms moves to the newest event taken, and out->after
 * is the id past the page's last element, even an unusable one, so the
 * stream cannot stall on it.  A page out of order after *last_fetched_ms
 * (event_page_in_order) is a failure, with out->older set when its first
 * event is the one out of order.  Out of memory is fatal.
 */
WUR poller_event_t poller_page_read(poller_page_seen_t *seen, poller_page_tail_t *tail,
                                    const http_response_t *resp, event_batch_t **pending,
                                    int64_t *last_fetched_ms, poller_page_result_t *out,
                                    char *reason, size_t reasonlen);

/* Forgets the tail (a rewind: the next page follows the cursor); keeps its memory. */
void poller_page_tail_clear(poller_page_tail_t *tail);

/* Frees the tail's memory; `tail` itself is the caller's. */
void poller_page_tail_free(poller_page_tail_t *tail);

/*
 * The body of a non-2xx answer, at most `len` - 1 bytes (up to a NUL)
 * copied to buf, for the log; NULL for a 2xx answer or no answer.
 */
const char *poller_page_error_body(const http_response_t *resp, char *buf, size_t len);

/* Frees the remembered types; `seen` itself is the caller's. */
void poller_page_seen_free(poller_page_seen_t *seen);

#endif
