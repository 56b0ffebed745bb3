/*
 * poller_windows: a backlog fetched as several time windows at once,
 * handed to the poller strictly in stream order.
 *
 * Cursor pagination is sequential: one page per round trip.  When the
 * poller is far behind the head of the stream, the history between its
 * cursor and a point safely behind the head is cut into windows of
 * created_at (range_start/range_end), each paged on its own chain
 * (after=/range_end), several chains in flight at once.  Window k+1 starts
 * where window k ends, and window k asks for one millisecond more, so
 * whether the API's bounds are inclusive or exclusive no event falls
 * between two windows; the poller drops the few it receives twice (see
 * poller_page_tail_t).  The first window continues after the cursor's own
 * id.  Pages wait in their window until every window before it has been
 * handed over, and the stored cursor still moves only past what the
 * poller commits, so a crash loses nothing that a restart from the cursor
 * does not fetch again.
 *
 * Concurrency adapts: a window is opened when the poller asks for a page
 * that has not arrived yet (up to [workos] fetch_windows at once), never
 * past the head margin, and no window starts a request that would take
 * the events fetched ahead past [workos] fetch_ahead -- except the first,
 * whose pages the poller takes next.  Every request takes a token from the
 * poller's rate limiter; a Retry-After pauses every chain; a failed
 * request (transport, 5xx, 429, a body that is not a page) is retried in
 * its own window with its own backoff.  Any other answer (a 400, 401, 422)
 * ends the windows: the poller then asks with its single chain, which
 * meets the same answer and handles it as it always has.
 *
 * Nothing guarantees that every deployment, proxy or API version honours
 * range_start and range_end, so each page is checked against its window.
 * A page holding events created after the window's end (beyond the
 * millisecond more it asks for) shows range_end ignored: the window keeps
 * only its own events, the rest being the next windows', and is done; the
 * windows go on, each overrunning by at most the page that ends it, which
 * costs no request more than the short last page it would have had.  A
 * window's first page holding events created before its range_start shows
 * range_start ignored: no window can begin where it should, so the windows
 * end as for a 400, and do not begin again for the rest of the run.
 *
 * Cutting by created_at relies on it never going back along the listing
 * order, which the one chain does not need (EVENT_ORDER_SKEW_MS): a
 * window's page whose created_at steps back at all, within it or from the
 * window's page before, ends the windows for the rest of the run too.
 */
#ifndef WORKOS_SYNCD_POLLER_WINDOWS_H
#define WORKOS_SYNCD_POLLER_WINDOWS_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "event.h"
#include "http_client.h"
#include "wur.h"

#define WINDOWS_MAX 64                         /* fetch_windows, at most */
#define WINDOWS_HEAD_MARGIN_MS INT64_C(300000) /* windows end this far behind now */
#define WINDOWS_OVERLAP_MS 1                   /* each window asks for this much more */

typedef struct windows windows_t;

/* What the windows need from the poller: its type filter and its rate limiter. */
typedef struct windows_hooks {
    void *arg;
    const char *(*url_prefix)(void *arg); /* "BASE/events?order=asc&limit=100&events=..." */
    int64_t (*rate_wait_ms)(void *arg);   /* until a request is allowed; 0: now */
    void (*rate_take)(void *arg);         /* a request starts */
} windows_hooks_t;

/*
 * The next page in stream order: the body of a 200 answer, `len` bytes and
 * a NUL, and the request's URL, both valid during the call, and whether it
 * is the first page of its window.  Or body NULL: the windows are used up
 * (or gave up) and the poller continues with its own chain after its last
 * event (see windows_stepped_back()).
 */
typedef void (*windows_page_fn)(void *arg, const char *body, size_t len, const char *url,
                                bool first_of_window);

/* Windows for `cfg`'s requests over `http`, idle; NULL when out of memory. */
windows_t *windows_new(struct event_base *base, http_client_t *http, const config_t *cfg,
                       const windows_hooks_t *hooks) WUR;

/* Cancels every request and frees; accepts NULL. */
void windows_free(windows_t *w);

/* The configuration to use for requests from now on (a reload). */
void windows_set_config(windows_t *w, const config_t *cfg);

/*
 * Plans windows from the event `after` (created at after_ms) to
 * WINDOWS_HEAD_MARGIN_MS before now_wall_ms, with a first guess of the
 * stream's density (ms per event, 0 when unknown).  Returns true when the
 * windows are in use: already, or now, because the backlog spans more than
 * a few windows and fetch_windows allows more than one, and the API has
 * not been seen to ignore range_start.  Starts nothing; windows_next() does.
 */
bool windows_begin(windows_t *w, const char *after, int64_t after_ms, double ms_per_event,
                   int64_t now_wall_ms) WUR;

/* True while windows are planned or pages wait to be handed over. */
bool windows_active(const windows_t *w);

/*
 * The poller's chain saw the stream's created_at step back, which windows
 * cannot cut by: no windows begin for the rest of the run (those in use go
 * on), and windows_stepped_back() says so.
 */
void windows_step_back_seen(windows_t *w);

/*
 * Whether the stream's created_at was seen to step back, by a window's
 * page (the windows then ended) or by the chain.  An event listed before
 * the last one taken but created after its window's end is then likely,
 * and in no window handed over: the poller's chain should continue from
 * before the last window it took.
 */
bool windows_stepped_back(const windows_t *w);

/*
 * Asks for the next page: `done` is called once, from the loop (soon when
 * the page is here, else when it comes; or with NULL, see windows_page_fn), unless
 * windows_reset() comes first.  Only one ask at a
 * time.
 */
void windows_next(windows_t *w, windows_page_fn done, void *arg);

/* Drops every window, request and page, and any ask: idle again. */
void windows_reset(windows_t *w);

#endif
