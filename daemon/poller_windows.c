/*
 * poller_windows: the backlog as time windows fetched at once, handed over
 * in order (see poller_windows.h for the rules).
 *
 * The windows are an array in stream order; win[0] is the one whose pages
 * are handed over next.  Every change -- an ask, an answer, the timer --
 * ends in pump(), which hands over what it can, opens a window when the
 * poller waits, and starts each window's next request that the rate
 * limiter, a Retry-After pause, the window's own backoff and the fetch-
 * ahead bound allow; otherwise it arms the one timer for the earliest
 * moment something may start.
 *
 * An API that does not honour the range filters is met page by page: a
 * page running past its window's end is cut there and ends the window (the
 * events past it are the next windows'); a window's first page starting
 * before its range_start ends the windows for the rest of the run.
 */
#include "poller_windows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "poller_page.h"
#include "poller_types.h"

#define MAX_BODY ((size_t)16 * 1024 * 1024)
#define WINDOW_EVENTS 2000          /* events a window is sized to hold */
#define MIN_WINDOW_MS INT64_C(1000) /* no window is shorter */
#define FIRST_WINDOW_MS 60000       /* the size of windows while the density is unknown */
#define SPLIT_PAGES 8.0             /* a window with more pages ahead than this is split */
#define TAIL_SPLIT_PAGES 2.0        /* ... and once every window is open, more than this */
#define MIN_WINDOWS INT64_C(3)      /* a backlog of fewer windows is read on one chain */
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 60000

/*
 * A page fetched, waiting for every window before its own: its bytes, not
 * its parse, which is five times their size.  The poller parses it again.
 */
typedef struct page_node {
    struct page_node *next;
    char *body;
    size_t len;
    size_t n; /* events on it */
    char *url;
} page_node_t;

typedef struct window {
    int64_t start_ms, end_ms; /* created_at from start_ms to end_ms, one millisecond more asked */
    char *after;              /* the next request continues after this id; NULL: from start_ms */
    http_request_t *request;  /* the window's request in flight, or NULL */
    char *url;                /* its URL, for the log */
    page_node_t *head, *tail; /* pages not yet handed over */
    size_t buffered;          /* events in them */
    size_t fetched;           /* events fetched in the window so far */
    int64_t last_ms;          /* created_at of the last of them */
    bool done;                /* the window's last page is here */
    bool handed;              /* its first page is handed over */
    int64_t retry_at_ms;      /* monotonic: no request before; 0 once none failed */
    backoff_t backoff;
    struct windows *w;
} window_t;

struct windows {
    struct event_base *base;
    http_client_t *http;
    const config_t *cfg;
    windows_hooks_t hooks;
    struct event *timer;

    window_t *win[WINDOWS_MAX]; /* open windows in stream order */
    unsigned n;
    bool planned;          /* a backlog is taken: windows are open or still to open */
    char *first_after;     /* the first window continues after this id */
    int64_t next_start_ms; /* where the next window opened starts */
    int64_t head_ms;       /* where the last one ends */
    double ms_per_event;   /* the stream's density, from full pages; 0 unknown */
    size_t buffered;       /* events in every window's pages */
    unsigned inflight;     /* requests in flight */
    int64_t paused_ms;     /* monotonic: a Retry-After holds every chain until then */
    bool pumping, again;   /* pump() runs; it was called again meanwhile */
    bool off_for_run;      /* the API ignores range_start, or its created_at goes back:
                              no windows for the rest of the run */
    bool past_end_seen;    /* a page ran past its window's end (said once, at warn) */
    bool stepped_back;     /* created_at was seen to step back (implies off_for_run) */

    windows_page_fn done; /* the ask, or NULL */
    void *done_arg;
};

static void pump(windows_t *w);
static void pump_once(windows_t *w);
static bool split_window(windows_t *w, double pages);
static void on_timer(evutil_socket_t fd, short what, void *arg);

static _Noreturn void out_of_memory(const char *where)
{
    log_error("event=out_of_memory where=%s note=\"exiting; the stored cursor is safe\"", where);
    abort();
}

static void window_free(window_t *win)
{
    if (win == NULL)
        return;
    http_cancel(win->request);
    while (win->head != NULL) {
        page_node_t *next = win->head->next;
        free(win->head->body);
        free(win->head->url);
        free(win->head);
        win->head = next;
    }
    free(win->after);
    free(win->url);
    free(win);
}

windows_t *windows_new(struct event_base *base, http_client_t *http, const config_t *cfg,
                       const windows_hooks_t *hooks)
{
    windows_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->base = base;
    w->http = http;
    w->cfg = cfg;
    w->hooks = *hooks;
    w->timer = evtimer_new(base, on_timer, w);
    if (w->timer == NULL) {
        free(w);
        return NULL;
    }
    return w;
}

void windows_reset(windows_t *w)
{
    for (unsigned i = 0; i < w->n; i++)
        window_free(w->win[i]);
    w->n = 0;
    w->planned = false;
    free(w->first_after);
    w->first_after = NULL;
    w->buffered = 0;
    w->inflight = 0;
    w->done = NULL;
    w->done_arg = NULL;
    evtimer_del(w->timer);
}

void windows_free(windows_t *w)
{
    if (w == NULL)
        return;
    windows_reset(w);
    event_free(w->timer);
    free(w);
}

void windows_set_config(windows_t *w, const config_t *cfg)
{
    w->cfg = cfg;
}

bool windows_active(const windows_t *w)
{
    return w->planned;
}

void windows_step_back_seen(windows_t *w)
{
    w->off_for_run = true;
    w->stepped_back = true;
}

bool windows_stepped_back(const windows_t *w)
{
    return w->stepped_back;
}

/* How long the next window is: WINDOW_EVENTS at the density seen so far. */
static int64_t window_ms(const windows_t *w)
{
    if (w->ms_per_event <= 0.0)
        return FIRST_WINDOW_MS;
    double ms = w->ms_per_event * WINDOW_EVENTS;
    if (ms < MIN_WINDOW_MS)
        return MIN_WINDOW_MS;
    if (ms > (double)INT64_C(365) * 24 * 3600 * 1000)
        return INT64_C(365) * 24 * 3600 * 1000;
    return (int64_t)ms;
}

bool windows_begin(windows_t *w, const char *after, int64_t after_ms, double ms_per_event,
                   int64_t now_wall_ms)
{
    if (w->planned)
        return true;
    if (w->off_for_run || w->cfg->fetch_windows <= 1 || after == NULL || after_ms <= 0)
        return false;
    if (ms_per_event > 0.0)
        w->ms_per_event = ms_per_event;
    int64_t head = now_wall_ms - WINDOWS_HEAD_MARGIN_MS;
    if (head - after_ms < MIN_WINDOWS * window_ms(w))
        return false;
    w->first_after = strdup(after);
    if (w->first_after == NULL)
        out_of_memory("windows_begin");
    w->planned = true;
    w->next_start_ms = after_ms;
    w->head_ms = head;
    log_info("event=windows_begin after=%s from=%lld to=%lld window_ms=%lld max_windows=%d",
             log_q(after), (long long)after_ms, (long long)head, (long long)window_ms(w),
             w->cfg->fetch_windows);
    return true;
}

/* A window from start_ms to end_ms, its chain not started. */
static window_t *window_new(windows_t *w, int64_t start_ms, int64_t end_ms)
{
    window_t *win = calloc(1, sizeof(*win));
    if (win == NULL)
        out_of_memory("windows_new");
    win->w = w;
    win->start_ms = start_ms;
    win->end_ms = end_ms;
    backoff_init(&win->backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    return win;
}

/* Opens the next window after the last one; false when none is left to open. */
static bool open_window(windows_t *w)
{
    if (!w->planned || w->n >= WINDOWS_MAX || w->next_start_ms >= w->head_ms)
        return false;
    int64_t end_ms = w->next_start_ms + window_ms(w);
    /* A last sliver joins this window rather than being one of its own. */
    if (end_ms > w->head_ms - MIN_WINDOW_MS)
        end_ms = w->head_ms;
    window_t *win = window_new(w, w->next_start_ms, end_ms);
    win->after = w->first_after; /* only the first window continues after the cursor */
    w->first_after = NULL;
    w->next_start_ms = win->end_ms;
    w->win[w->n++] = win;
    log_debug("event=window_open from=%lld to=%lld after=%s open=%u", (long long)win->start_ms,
              (long long)win->end_ms, log_q(win->after), w->n);
    return true;
}

/* The window's next request: after its last event, or from its start. */
static char *window_url(const windows_t *w, const window_t *win)
{
    char start[CLOCK_ISO8601_LEN], end[CLOCK_ISO8601_LEN];
    char *url = NULL, *v = NULL;
    int r;

    clock_format_iso8601(win->end_ms + WINDOWS_OVERLAP_MS, end);
    if (win->after != NULL) {
        v = curl_easy_escape(NULL, win->after, 0);
        r = asprintf(&url, "%s&after=%s&range_end=%s", w->hooks.url_prefix(w->hooks.arg),
                     v ? v : "", end);
    } else {
        r = asprintf(&url, "%s&range_start=%s&range_end=%s", w->hooks.url_prefix(w->hooks.arg),
                     clock_format_iso8601(win->start_ms, start), end);
    }
    curl_free(v);
    return r < 0 ? NULL : url;
}

static void window_failed(window_t *win, const char *reason, const char *body,
                          int64_t retry_after_ms)
{
    windows_t *w = win->w;
    int64_t delay = backoff_next(&win->backoff);
    int64_t now = clock_mono_ms();
    if (retry_after_ms > 0 && now + retry_after_ms > w->paused_ms)
        w->paused_ms = now + retry_after_ms; /* the limit is the key's, not the window's */
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    win->retry_at_ms = now + delay;
    metrics_backoff(delay);
    log_warn("event=window_fetch_failed url=%s retry_in_ms=%lld reason=%s body=%s", log_q(win->url),
             (long long)delay, log_q(reason), log_q(body));
}

/*
 * A window is fetched: its events over its span are the density the next
 * windows are sized by.  An empty one says only that the stream is sparser
 * than thought: the next windows are four times as long, so that a quiet
 * stretch (or the time between the last event and now) costs a few
 * requests, not one per guess.
 */
static void window_sized(windows_t *w, int64_t span_ms, size_t events)
{
    double guess =
        w->ms_per_event > 0.0 ? w->ms_per_event : (double)FIRST_WINDOW_MS / WINDOW_EVENTS;
    if (events == 0)
        w->ms_per_event = guess * 4.0;
    else
        w->ms_per_event = 0.5 * guess + 0.5 * (double)span_ms / (double)events;
}

/* The created_at of the page's first element that has one; false when none has. */
static bool page_first_ms(const event_page_t *page, int64_t *ms)
{
    for (const cJSON *e = page->data->child; e != NULL; e = e->next)
        if (event_created_ms(e, ms))
            return true;
    return false;
}

/*
 * Drops the page's elements from the first one created after the window's
 * end (and the millisecond more it asked for) on, and returns how many: an
 * API that ignores range_end runs on into the windows after this one, which
 * fetch those events themselves.  The page ascends (goes_back()
 * checked), so they are its tail.  list_metadata is left as it was: the
 * poller continues after a page's last element.
 */
static size_t drop_past_end(const window_t *win, event_page_t *page)
{
    cJSON *e = page->data->child;
    int64_t ms;
    while (e != NULL && !(event_created_ms(e, &ms) && ms > win->end_ms + WINDOWS_OVERLAP_MS))
        e = e->next;
    size_t dropped = 0;
    while (e != NULL) {
        cJSON *next = e->next;
        cJSON_Delete(cJSON_DetachItemViaPointer(page->data, e));
        dropped++;
        e = next;
    }
    page->n -= dropped;
    return dropped;
}

/* A copy of `len` bytes and a NUL; out of memory is fatal. */
static char *copy_body(const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        out_of_memory("windows_page");
    memcpy(copy, body, len);
    copy[len] = '\0';
    return copy;
}

/* Appends a page to the window's, taking ownership of `body` (`len` bytes and a NUL). */
static void window_keep(window_t *win, char *body, size_t len, size_t n)
{
    page_node_t *node = calloc(1, sizeof(*node));
    if (node == NULL || (node->url = strdup(win->url)) == NULL)
        out_of_memory("windows_page");
    node->body = body;
    node->len = len;
    node->n = n;
    if (win->tail != NULL)
        win->tail->next = node;
    else
        win->head = node;
    win->tail = node;
    win->buffered += n;
    win->fetched += n;
    win->w->buffered += n;
}

/*
 * A page of the window is here: keep its bytes (those of its events within
 * the window), and move the window's chain on, or end it.  Frees `page`.
 */
static void window_took(window_t *win, event_page_t *page, const http_response_t *resp)
{
    windows_t *w = win->w;
    size_t past = drop_past_end(win, page);
    size_t n = page->n;
    const cJSON *last = page->data->child != NULL ? page->data->child->prev : NULL;
    const char *after = event_page_last_id(page);
    int64_t b;

    if (past == 0 && n >= POLLER_TYPES_PAGE_LIMIT && page->after != NULL && after != NULL) {
        char *copy = strdup(after);
        if (copy == NULL)
            out_of_memory("windows_after");
        free(win->after);
        win->after = copy;
        if (event_created_ms(last, &b))
            win->last_ms = b;
    } else {
        win->done = true;
        window_sized(w, win->end_ms - win->start_ms, win->fetched + n);
    }
    backoff_reset(&win->backoff);
    win->retry_at_ms = 0;

    if (past == 0) {
        window_keep(win, copy_body(resp->body, resp->len), resp->len, n);
        event_page_free(page);
        return;
    }
    /* Said once: every window of such an API overruns by up to a page, which
     * costs no request more than its last page, short, would have. */
    if (!w->past_end_seen)
        log_warn("event=window_past_end url=%s kept=%zu dropped=%zu "
                 "note=\"the API ignores range_end; each window keeps only its own events\"",
                 log_q(win->url), n, past);
    else
        log_debug("event=window_past_end url=%s kept=%zu dropped=%zu", log_q(win->url), n, past);
    w->past_end_seen = true;
    if (n > 0) {
        char *text = cJSON_PrintUnformatted(page->root);
        if (text == NULL)
            out_of_memory("windows_page");
        size_t len = strlen(text);
        window_keep(win, copy_body(text, len), len, n);
        cJSON_free(text);
    }
    event_page_free(page);
}

/* Ends the windows, answering the poller's ask, if any, with NULL: its own chain goes on. */
static void end_windows(windows_t *w)
{
    windows_page_fn done = w->done;
    void *done_arg = w->done_arg;
    windows_reset(w);
    if (done != NULL)
        done(done_arg, NULL, 0, NULL, false);
}

/*
 * A window's first page, asked from its range_start, begins before it
 * (beyond the overlap): the API ignores range_start, so no window begins
 * where it should, and the windows end for the rest of the run.  Nothing
 * of theirs was handed over past the last event the poller took.
 */
static bool ignores_range_start(windows_t *w, const window_t *win, const event_page_t *page)
{
    int64_t first;
    if (win->after != NULL || !page_first_ms(page, &first) ||
        first >= win->start_ms - WINDOWS_OVERLAP_MS)
        return false;
    char start[CLOCK_ISO8601_LEN], at[CLOCK_ISO8601_LEN];
    log_warn("event=windows_end reason=\"the API ignores range_start\" url=%s range_start=%s "
             "first_created_at=%s "
             "note=\"fetching on one chain from the last event taken; no windows until restart\"",
             log_q(win->url), log_q(clock_format_iso8601(win->start_ms, start)),
             log_q(clock_format_iso8601(first, at)));
    w->off_for_run = true;
    return true;
}

/*
 * A window's page whose created_at goes back, within it or from the
 * window's page before: the windows cut the stream by created_at, so an
 * event listed before another but created after it may lie in the next
 * window, and the cursor, which is in listing order, could pass it.  The
 * one chain tolerates such a step (EVENT_ORDER_SKEW_MS); the windows end
 * for the rest of the run.
 */
static bool goes_back(windows_t *w, const window_t *win, const event_page_t *page)
{
    if (event_page_ascends(page, win->after != NULL ? win->last_ms : 0))
        return false;
    log_warn("event=windows_end reason=\"created_at goes back within a window\" url=%s "
             "note=\"fetching on one chain from the last event taken; no windows until restart\"",
             log_q(win->url));
    w->off_for_run = true;
    w->stepped_back = true;
    return true;
}

static void on_window_response(void *arg, const http_response_t *resp)
{
    window_t *win = arg;
    windows_t *w = win->w;
    char reason[192];
    char body[256];
    event_page_t page;
    bool older;

    win->request = NULL;
    w->inflight--;
    if (!resp->transport_ok || resp->status != 200)
        metrics_poll_request(resp->transport_ok ? resp->status : 0); /* a page counts when taken */
    const char *err = poller_page_error_body(resp, body, sizeof(body));
    if (!resp->transport_ok) {
        snprintf(reason, sizeof(reason), "request failed: %s", resp->error);
        window_failed(win, reason, NULL, -1);
    } else if (resp->status == 429 || resp->status >= 500) {
        snprintf(reason, sizeof(reason), "http %ld", resp->status);
        window_failed(win, reason, err,
                      resp->status == 429 || resp->status == 503 ? resp->retry_after_ms : -1);
    } else if (resp->status != 200) {
        /* Not a fault of this window: the single chain will meet it and knows what to do. */
        log_info("event=windows_end reason=\"http %ld\" url=%s body=%s "
                 "note=\"fetching on one chain from the last event taken\"",
                 resp->status, log_q(win->url), log_q(err));
        end_windows(w);
        return;
    } else if (!event_page_parse(&page, resp->body, resp->len, reason, sizeof(reason))) {
        window_failed(win, reason, NULL, -1);
    } else if (!event_page_in_order(&page, 0, &older, reason, sizeof(reason))) {
        event_page_free(&page);
        window_failed(win, reason, NULL, -1);
    } else if (goes_back(w, win, &page) || ignores_range_start(w, win, &page)) {
        event_page_free(&page);
        end_windows(w);
        return;
    } else {
        window_took(win, &page, resp);
    }
    pump(w);
}

/* Starts the window's next request; false when it cannot start (retried later). */
static bool window_request(windows_t *w, window_t *win)
{
    char *url = window_url(w, win);
    if (url == NULL)
        out_of_memory("windows_url");
    free(win->url);
    win->url = url;
    w->hooks.rate_take(w->hooks.arg);
    win->request = http_get(w->http, url, w->cfg->api_key, w->cfg->request_timeout_ms, MAX_BODY,
                            on_window_response, win);
    if (win->request == NULL) {
        window_failed(win, "cannot start request", NULL, -1);
        return false;
    }
    w->inflight++;
    return true;
}

/* Hands over the first window's next page, if the poller asks and one is here. */
static bool hand_over(windows_t *w)
{
    while (w->done != NULL && w->n > 0) {
        window_t *front = w->win[0];
        if (front->head != NULL) {
            page_node_t *node = front->head;
            front->head = node->next;
            if (front->head == NULL)
                front->tail = NULL;
            front->buffered -= node->n;
            w->buffered -= node->n;
            windows_page_fn done = w->done;
            void *done_arg = w->done_arg;
            bool first = !front->handed;
            front->handed = true;
            w->done = NULL;
            done(done_arg, node->body, node->len, node->url, first);
            free(node->body);
            free(node->url);
            free(node);
            return true;
        }
        if (!front->done)
            return false;
        window_free(front); /* every page of it is handed over */
        memmove(&w->win[0], &w->win[1], (w->n - 1) * sizeof(window_t *));
        w->n--;
    }
    if (w->done != NULL && w->n == 0 && !open_window(w)) {
        /* Every window is handed over: the poller's own chain goes on. */
        windows_page_fn done = w->done;
        void *done_arg = w->done_arg;
        log_info("event=windows_done note=\"the backlog is fetched; one chain from here\"");
        windows_reset(w);
        done(done_arg, NULL, 0, NULL, false);
        return true;
    }
    return false;
}

/* A window's part of fetch_ahead: pages beyond it wait until the windows before it are applied. */
static size_t share(const windows_t *w)
{
    size_t part = (size_t)w->cfg->fetch_ahead / (size_t)w->cfg->fetch_windows;
    return part < POLLER_TYPES_PAGE_LIMIT ? POLLER_TYPES_PAGE_LIMIT : part;
}

/*
 * Room for one more page of window i (or of a new window, i == n).  All
 * windows together hold at most fetch_ahead events, counting a page for
 * each request in flight, and each at most its share of it.  Windows past
 * the first stop once the windows up to them hold two thirds of it: the
 * rest is kept for the windows nearer the apply, whose pages it takes
 * first, so that pages fetched far ahead never keep the next ones out.
 */
static bool room_for(const windows_t *w, unsigned i)
{
    size_t cap = (size_t)w->cfg->fetch_ahead;
    size_t page = POLLER_TYPES_PAGE_LIMIT;
    if (w->buffered + (size_t)(w->inflight + 1) * page > cap)
        return false;
    if (i < w->n && w->win[i]->buffered + page > share(w))
        return false;
    size_t upto = 0;
    for (unsigned j = 0; j <= i && j < w->n; j++)
        upto += w->win[j]->buffered + (w->win[j]->request != NULL ? page : 0);
    return i == 0 || upto + page <= cap / 3 * 2;
}

/* pump() may be called from the callee of a hand-over: it then runs again, not within itself. */
static void pump(windows_t *w)
{
    if (w->pumping) {
        w->again = true;
        return;
    }
    w->pumping = true;
    do {
        w->again = false;
        pump_once(w);
    } while (w->again && w->planned);
    w->pumping = false;
}

/*
 * The first window, in stream order, that may ask now, or NULL; *wake
 * becomes the soonest moment a waiting one may.
 */
static window_t *next_asker(windows_t *w, int64_t now, int64_t *wake)
{
    for (unsigned i = 0; i < w->n; i++) {
        window_t *win = w->win[i];
        if (win->request != NULL || win->done || !room_for(w, i))
            continue;
        int64_t wait = w->paused_ms - now;
        if (win->retry_at_ms - now > wait)
            wait = win->retry_at_ms - now;
        if (wait <= 0)
            return win;
        if (*wake < 0 || wait < *wake)
            *wake = wait;
    }
    return NULL;
}

/*
 * Hands over what it can, then starts requests while fetch_windows allows:
 * each window's next page in stream order; when none may ask, a window
 * split or a new one.  The rate limiter, a Retry-After and each window's
 * backoff arm the timer instead.
 */
static void pump_once(windows_t *w)
{
    while (hand_over(w))
        if (!w->planned)
            return; /* the windows are used up or were reset by the callee */
    if (!w->planned)
        return;

    int64_t now = clock_mono_ms();
    int64_t wake = -1; /* ms until something may start */
    while (w->inflight < (unsigned)w->cfg->fetch_windows) {
        if (split_window(w, SPLIT_PAGES))
            continue; /* a long window first: it is the one the apply will wait for */
        /* Every window is open: no new one will take the chains the last
         * windows leave idle, so even a short window ahead is split. */
        if (w->next_start_ms >= w->head_ms && split_window(w, TAIL_SPLIT_PAGES))
            continue;
        window_t *win = next_asker(w, now, &wake);
        if (win == NULL) {
            if (room_for(w, w->n) && open_window(w))
                continue;
            break;
        }
        int64_t rate = w->hooks.rate_wait_ms(w->hooks.arg);
        if (rate > 0) {
            if (wake < 0 || rate < wake)
                wake = rate;
            break;
        }
        (void)window_request(w, win);
    }
    if (wake >= 0) {
        struct timeval tv = clock_timeval(wake);
        evtimer_add(w->timer, &tv);
    }
}

/*
 * A window is one chain, so a long one is slow however many run beside
 * it.  The first window, in stream order, with more than `pages` pages still
 * ahead of it at the density it has shown so far gives the second half of what is
 * left to a new window right after it, between two of its requests, so
 * that every request of a window asks for the same range_end.  This is how
 * windows sized from a wrong guess stop costing parallelism.  Returns
 * false when no window is worth splitting.
 */
static bool split_window(windows_t *w, double pages)
{
    if (w->n >= WINDOWS_MAX)
        return false;
    for (unsigned i = 0; i < w->n; i++) {
        window_t *win = w->win[i];
        int64_t left = win->end_ms - win->last_ms;
        /* Not while a request is in flight or a failed one waits: every request of a
         * window, and the retry of a failed one, asks for the same range. */
        if (win->done || win->request != NULL || win->after == NULL || win->last_ms <= 0 ||
            win->retry_at_ms != 0 || win->fetched == 0 || left < 2 * MIN_WINDOW_MS)
            continue;
        /* The window's own density: streams come in bursts. */
        double ms_per_event = (double)(win->last_ms - win->start_ms) / (double)win->fetched;
        if (ms_per_event > 0.0 && (double)left / ms_per_event < pages * POLLER_TYPES_PAGE_LIMIT)
            continue;
        window_t *tail = window_new(w, win->last_ms + left / 2, win->end_ms);
        win->end_ms = tail->start_ms;
        memmove(&w->win[i + 2], &w->win[i + 1], (w->n - i - 1) * sizeof(window_t *));
        w->win[i + 1] = tail;
        w->n++;
        log_debug("event=window_split from=%lld at=%lld to=%lld open=%u over_pages=%.0f",
                  (long long)win->start_ms, (long long)tail->start_ms, (long long)tail->end_ms,
                  w->n, pages);
        return true;
    }
    return false;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

void windows_next(windows_t *w, windows_page_fn done, void *arg)
{
    w->done = done;
    w->done_arg = arg;
    /* Answered from the loop, never from within the ask, as an HTTP answer would be. */
    struct timeval now = {0, 0};
    evtimer_add(w->timer, &now);
}
