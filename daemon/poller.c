/*
 * poller: the Events API client -- the I/O side of the machine in
 * poller_fsm.h.
 *
 * Everything that happens to the poller becomes one input: an event of
 * poller_event_t and what came with it.  post() queues it and, unless an
 * input is already being handled, handles the queue in order: it asks
 * poller_fsm_step() for the transition, takes the new states and carries
 * out the actions.  A store call may complete at once (out of memory, or a
 * connection that breaks as the query is sent); its callback then posts,
 * and that input waits until the current step's actions are done, so a
 * step never runs inside another.  Every failure of a request -- transport
 * error, 429, 5xx, invalid JSON, a page out of order -- leaves the cursor
 * where it was and waits with exponential backoff and full jitter (and at
 * least as long as Retry-After says).  Reading a page is poller_page.c's,
 * the table of event types and its checks' answers poller_types.c's.
 */
#include "poller.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "backoff.h"
#include "clock.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "poller_fsm.h"
#include "poller_page.h"
#include "poller_types.h"
#include "poller_windows.h"

#define MAX_BODY ((size_t)16 * 1024 * 1024)
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 60000
#define PROGRESS_EVERY_MS 30000
#define STANDBY_RETRY_MS 1000 /* how often a standby asks for the lock */
#define INPUT_QUEUE 8         /* inputs posted while one is handled, at most */
#define ERROR_BODY_MAX 512    /* bytes of an API error body kept for the log */
#define WINDOWS_WORTH 3.0     /* round trip over the chain's other bound that calls for windows */
#define WINDOWS_MIN_RTT_MS 20 /* an API nearer than this is read on one chain */
#define RESTARTS_BELIEVED 2   /* first pages before the cursor in a row that mean it expired */

/* One event and what came with it; the strings are owned copies. */
typedef struct poller_input {
    poller_event_t ev;
    char *text;               /* error text; the cursor for CURSOR_LOADED */
    char *body;               /* the API's answer to a failed request, bounded, or NULL */
    char *range_start;        /* CURSOR_LOADED */
    int64_t retry_after_ms;   /* FETCH_FAILED: Retry-After, or -1 */
    int64_t created_ms;       /* CURSOR_LOADED: the cursor event's created_at, or 0 */
    store_apply_result_t res; /* APPLIED */
} poller_input_t;

struct poller {
    struct event_base *base;
    const config_t *cfg;
    store_t *store;
    http_client_t *http;
    poller_state_t state; /* the request side */
    poller_apply_t apply; /* the commit side */
    struct event *timer;
    http_request_t *request;
    windows_t *windows;        /* the backlog fetched as windows at once */
    bool awaiting;             /* the GET is the windows' next page */
    bool windows_off;          /* a window's page failed here: one chain until caught up */
    char *window_base;         /* the last event taken before the latest window's pages */
    int64_t window_base_ms;    /* the newest created_at taken by then */
    bool last_page_full;       /* the latest page taken was full: more follow */
    double ms_per_event;       /* the latest full page's density, for the first window's size */
    double rtt_ms;             /* round trip of the chain's own pages, smoothed */
    double apply_us_per_event; /* commit time per event of the latest batches, smoothed */
    size_t inflight_events;    /* events in the batch being committed */
    poller_page_tail_t tail;   /* the last events taken, to drop a window's repeats */

    poller_types_t *types; /* the configured event types and the URLs built from them */
    char *check_name;      /* the type the check in flight asks about */
    char *refused_noted;   /* the refused types last sent to sync_state, NULL: none sent yet */

    char *url;                    /* the latest request's URL, for log lines */
    char *committed;              /* cursor in the database */
    int64_t committed_created_ms; /* newest created_at it covers (wall ms; at start, that of
                                     its event), 0 if unknown */
    char *inflight;               /* cursor of the batch being committed */
    int64_t inflight_created_ms;  /* the newest created_at of that batch, for the lag gauge */
    char *fetch_after;            /* cursor for the next request: last event fetched */
    char *range_start;            /* where to start when there is no cursor */
    int64_t last_fetched_ms;

    event_batch_t *pending; /* fetched, not yet handed to the store */
    bool pending_ends;      /* a short page added to it: it is handed over as caught up */
    bool leader;            /* holds the advisory lock on the store's connection */
    bool standby_logged;    /* said once that another instance polls */

    backoff_t backoff;
    backoff_t apply_backoff;  /* failed applies: reset by a commit, not by a fetch */
    int64_t failing_since_ms; /* monotonic ms of the first failure in a row, or 0 */
    char last_error[160];     /* the latest failure, "" once a request succeeds */
    int64_t committed_at_ms;  /* monotonic ms of the last commit, 0 before the first */
    double tokens;            /* rate limiter */
    int64_t tokens_at_ms;

    long applied_since_progress;
    int64_t progress_at_ms;
    poller_page_seen_t seen; /* unknown types logged once */

    poller_input_t queue[INPUT_QUEUE];
    size_t queue_head, queue_len;
    bool handling; /* an input is being handled: post() only queues */

    void (*expired)(void *arg, const char *reason); /* the API no longer serves the cursor */
    void *expired_arg;
    unsigned restarts; /* first pages in a row that started before the stored cursor's event */
};

static void post(poller_t *p, poller_event_t ev, const char *text, const char *body,
                 const char *range_start, int64_t ms, const store_apply_result_t *res);
static void on_response(void *arg, const http_response_t *resp);
static void on_check_response(void *arg, const http_response_t *resp);

/*
 * Out of memory in the poller is fatal: the fetch cursor moves past every
 * event of a page taken, so an event dropped for want of memory would be
 * skipped for good.  The cursor in the database is safe, and systemd
 * restarts the daemon from it.
 */
static _Noreturn void out_of_memory(const char *where)
{
    log_error("event=out_of_memory where=%s note=\"exiting; the stored cursor is safe\"", where);
    abort();
}

static char *copy_or_die(const char *src)
{
    char *copy = src != NULL ? strdup(src) : NULL;
    if (src != NULL && copy == NULL)
        out_of_memory("poller_copy"); /* a cursor we cannot remember we might skip past */
    return copy;
}

static void set_str(char **dst, const char *src)
{
    char *copy = copy_or_die(src);
    free(*dst);
    *dst = copy;
}

static void wake_in(poller_t *p, int64_t ms)
{
    struct timeval tv = clock_timeval(ms);
    evtimer_add(p->timer, &tv);
}

/* Token bucket under WorkOS' per-key limit: one second's worth of burst. */
static double rate_tokens(const poller_t *p, int64_t now)
{
    double burst = (double)p->cfg->rate_limit / 60.0;
    double tokens =
        p->tokens + (double)(now - p->tokens_at_ms) * (double)p->cfg->rate_limit / 60000.0;
    if (burst < 1.0)
        burst = 1.0;
    return tokens > burst ? burst : tokens;
}

/* Milliseconds until a request is allowed, 0 for now; takes nothing. */
static int64_t rate_wait_ms(const poller_t *p, int64_t now)
{
    double tokens = rate_tokens(p, now);
    if (tokens >= 1.0)
        return 0;
    return (int64_t)((1.0 - tokens) / ((double)p->cfg->rate_limit / 60000.0)) + 1;
}

static void rate_take(poller_t *p, int64_t now)
{
    p->tokens = rate_tokens(p, now) - 1.0;
    p->tokens_at_ms = now;
}

/* Drops everything fetched but not committed; the next fetch starts over. */
static void rewind_to_committed(poller_t *p)
{
    http_cancel(p->request);
    p->request = NULL;
    windows_reset(p->windows);
    free(p->window_base);
    p->window_base = NULL;
    p->awaiting = false;
    p->last_page_full = false;
    poller_page_tail_clear(&p->tail);
    event_batch_free(p->pending);
    p->pending = NULL;
    p->pending_ends = false;
    set_str(&p->fetch_after, p->committed);
    /* The first page after the cursor must not start before its event. */
    p->last_fetched_ms = p->committed != NULL ? p->committed_created_ms : 0;
}

static void fetch_failed(poller_t *p, const char *reason, const char *body, int64_t retry_after_ms)
{
    int64_t delay = backoff_next(&p->backoff);
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    if (p->failing_since_ms == 0)
        p->failing_since_ms = clock_mono_ms();
    snprintf(p->last_error, sizeof(p->last_error), "%s", reason);
    metrics_backoff(delay);
    log_warn("event=poll_failed url=%s after=%s retry_in_ms=%lld reason=%s body=%s", log_q(p->url),
             log_q(p->fetch_after), (long long)delay, log_q(reason), log_q(body));
    store_note(p->store, reason);
    wake_in(p, delay);
}

/*
 * Starts GET /events after the last event fetched, on the one chain.
 * Returns false with `why` filled when the request cannot start (then no
 * callback comes).
 */
static WUR bool start_direct(poller_t *p, char *why, size_t whylen)
{
    char *url = NULL;
    char *v = NULL;
    int r;

    rate_take(p, clock_mono_ms());
    if (p->fetch_after != NULL) {
        v = curl_easy_escape(NULL, p->fetch_after, 0);
        r = asprintf(&url, "%s&after=%s", poller_types_url_prefix(p->types), v ? v : "");
    } else if (p->range_start != NULL) {
        v = curl_easy_escape(NULL, p->range_start, 0);
        r = asprintf(&url, "%s&range_start=%s", poller_types_url_prefix(p->types), v ? v : "");
    } else {
        r = asprintf(&url, "%s", poller_types_url_prefix(p->types));
    }
    curl_free(v);
    if (r < 0) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    free(p->url);
    p->url = url;
    p->request = http_get(p->http, url, p->cfg->api_key, p->cfg->request_timeout_ms, MAX_BODY,
                          on_response, p);
    if (p->request == NULL) {
        snprintf(why, whylen, "cannot start request");
        return false;
    }
    return true;
}

/*
 * What a page taken means for the chain: the failures are over, and the
 * next request's cursor moves past its last element.
 */
static void took_page(poller_t *p, poller_event_t ev, const poller_page_result_t *page,
                      int64_t elapsed_ms)
{
    backoff_reset(&p->backoff);
    p->failing_since_ms = 0;
    p->last_error[0] = '\0';
    if (page->n > 0 && page->after != NULL)
        set_str(&p->fetch_after, page->after);
    p->last_page_full = ev == POLLER_EV_PAGE_FULL;
    if (page->ms_per_event > 0.0)
        p->ms_per_event = page->ms_per_event;
    if (elapsed_ms >= 0)
        p->rtt_ms =
            p->rtt_ms > 0.0 ? 0.75 * p->rtt_ms + 0.25 * (double)elapsed_ms : (double)elapsed_ms;
    log_debug("event=page url=%s n=%zu repeated=%zu ms=%lld after=%s", log_q(p->url), page->n,
              page->repeated, (long long)elapsed_ms, log_q(p->fetch_after));
}

/*
 * Reads a response: a failure fills `reason` (and *retry_after_ms) and
 * leaves everything as it was; a page is added to the pending batch and
 * moves the next request's cursor past its last element.  Returns the
 * event the response makes.
 */
static WUR poller_event_t take_response(poller_t *p, const http_response_t *resp, char *reason,
                                        size_t reasonlen, int64_t *retry_after_ms)
{
    poller_page_result_t page;
    poller_event_t ev = poller_page_read(&p->seen, &p->tail, resp, &p->pending, &p->last_fetched_ms,
                                         &page, reason, reasonlen);
    /* A 4xx naming `after`: the API no longer serves the cursor. */
    if ((ev == POLLER_EV_FETCH_FAILED || ev == POLLER_EV_PAGE_REFUSED) && resp->transport_ok &&
        resp->status >= 400 && resp->status < 500 && resp->status != 429 &&
        p->fetch_after != NULL && p->expired != NULL && resp->body != NULL &&
        strstr(resp->body, "\"after\"") != NULL)
        p->expired(p->expired_arg, "api_refused_after");
    /* The first page after the stored cursor starts before its event: the
     * API no longer knows the cursor and serves from the start instead.
     * Forgetting the cursor costs a reconciliation and leaves the log
     * without the events in between, so one such answer (a replica behind,
     * a proxy's stale cache) is only retried -- or, from a window, ends the
     * windows -- and the API saying it again is believed. */
    if (ev == POLLER_EV_FETCH_FAILED && page.older && p->committed != NULL &&
        p->fetch_after != NULL && strcmp(p->fetch_after, p->committed) == 0) {
        if (++p->restarts >= RESTARTS_BELIEVED && p->expired != NULL)
            p->expired(p->expired_arg, "api_restarted_before_cursor");
        else
            log_warn("event=page_before_cursor url=%s cursor=%s note=\"asking again; "
                     "the cursor is taken for expired if the API answers so again\"",
                     log_q(p->url), log_q(p->committed));
    } else if (ev != POLLER_EV_FETCH_FAILED) {
        p->restarts = 0;
    }

    *retry_after_ms = page.retry_after_ms;
    if (ev != POLLER_EV_PAGE_FULL && ev != POLLER_EV_PAGE_SHORT)
        return ev;
    if (ev == POLLER_EV_PAGE_SHORT)
        p->windows_off = false; /* caught up: the next backlog may be fetched in windows */
    /* Taken, but windows, which cut the stream by created_at, could let the
     * cursor pass an event listed before another yet created after it. */
    if (page.stepped_back && !windows_stepped_back(p->windows)) {
        windows_step_back_seen(p->windows);
        log_warn("event=created_at_steps_back url=%s note=\"taken: within %d ms of the events "
                 "before it; no fetch windows for the rest of the run\"",
                 log_q(p->url), EVENT_ORDER_SKEW_MS);
    }
    took_page(p, ev, &page, resp->elapsed_ms);
    free(page.after);
    return ev;
}

static void on_response(void *arg, const http_response_t *resp)
{
    poller_t *p = arg;
    char reason[256] = "";
    char body[ERROR_BODY_MAX + 1];
    int64_t retry_after_ms;

    p->request = NULL;
    poller_event_t ev = take_response(p, resp, reason, sizeof(reason), &retry_after_ms);
    post(p, ev, ev == POLLER_EV_PAGE_SHORT || ev == POLLER_EV_PAGE_FULL ? NULL : reason,
         poller_page_error_body(resp, body, sizeof(body)), NULL, retry_after_ms, NULL);
}

/*
 * Where the one chain goes on when the windows end: after the last event
 * taken -- unless the stream was seen to step back in created_at.  Then an
 * event listed before the last one taken may have been created after the
 * end of the window that one came from, and lie in a window never handed
 * over; reading that last window again on the chain, from the last event
 * taken before it, fetches it (and events already taken, which the log's
 * key absorbs).  The last window's start is forgotten either way.
 */
static void windows_ended(poller_t *p)
{
    if (p->window_base != NULL && windows_stepped_back(p->windows)) {
        log_info("event=windows_rewind after=%s note=\"created_at steps back in this stream: "
                 "reading the last window again on one chain\"",
                 log_q(p->window_base));
        set_str(&p->fetch_after, p->window_base);
        p->last_fetched_ms = p->window_base_ms;
        poller_page_tail_clear(&p->tail);
    }
    free(p->window_base);
    p->window_base = NULL;
}

/*
 * The windows' next page in stream order, or NULL when they are used up:
 * then the one chain goes on after the last event taken (see
 * windows_ended()).  A window's page never ends the stream, whatever its
 * size; one out of order after the pages before it ends the windows until
 * the chain has caught up.
 */
static void on_window_page(void *arg, const char *body, size_t len, const char *url,
                           bool first_of_window)
{
    poller_t *p = arg;
    char reason[256];
    int64_t retry_after_ms;

    p->awaiting = false;
    if (body == NULL) {
        p->last_page_full = false; /* windows again only after a full page of the chain's own */
        windows_ended(p);
        if (!start_direct(p, reason, sizeof(reason)))
            post(p, POLLER_EV_FETCH_FAILED, reason, NULL, NULL, -1, NULL);
        return;
    }
    if (first_of_window) {
        set_str(&p->window_base, p->fetch_after);
        p->window_base_ms = p->last_fetched_ms;
    }
    set_str(&p->url, url);
    http_response_t resp = {
        .transport_ok = true, .status = 200, .body = body, .len = len, .retry_after_ms = -1};
    poller_event_t ev = take_response(p, &resp, reason, sizeof(reason), &retry_after_ms);
    if (ev != POLLER_EV_PAGE_FULL && ev != POLLER_EV_PAGE_SHORT) {
        log_warn("event=windows_off url=%s reason=%s note=\"one chain until caught up\"",
                 log_q(url), log_q(reason));
        windows_ended(p);
        windows_reset(p->windows);
        p->windows_off = true;
        post(p, ev, reason, NULL, NULL, -1, NULL);
        return;
    }
    p->last_page_full = true; /* a window's page never ends the stream */
    post(p, POLLER_EV_PAGE_FULL, NULL, NULL, NULL, -1, NULL);
}

/*
 * Whether the next page comes from the windows: they are in use, or the
 * chain is far enough behind the head for them to be worth it, and its
 * round trip, not the rate limit or the apply, is what holds it back: a
 * page takes WINDOWS_WORTH times as long to come as a token to refill or a
 * page to commit, and at least WINDOWS_MIN_RTT_MS: an API on the same
 * machine or network is slowed by the same load that slows the apply.
 * (Windows cost requests -- each ends with a page not full -- so a chain
 * that keeps up alone is left alone.)
 */
static bool use_windows(poller_t *p)
{
    if (windows_active(p->windows))
        return true;
    if (p->windows_off || !p->last_page_full)
        return false;
    double token_ms = 60000.0 / (double)p->cfg->rate_limit;
    double apply_ms = p->apply_us_per_event * POLLER_TYPES_PAGE_LIMIT / 1000.0;
    double bound_ms = token_ms > apply_ms ? token_ms : apply_ms;
    if (p->rtt_ms < WINDOWS_MIN_RTT_MS || p->rtt_ms < WINDOWS_WORTH * bound_ms)
        return false;
    return windows_begin(p->windows, p->fetch_after, p->last_fetched_ms, p->ms_per_event,
                         clock_wall_ms());
}

/* Starts the next GET /events: the windows' next page, or one request on the chain. */
static WUR bool start_request(poller_t *p, char *why, size_t whylen)
{
    if (!use_windows(p))
        return start_direct(p, why, whylen);
    p->awaiting = true;
    windows_next(p->windows, on_window_page, p);
    return true;
}

/*
 * A type check answered: 200 keeps the type, 400 refuses it (once, with a
 * warning); anything else is a failed request, retried after a backoff.
 */
static void on_check_response(void *arg, const http_response_t *resp)
{
    poller_t *p = arg;
    char reason[160];
    char body[ERROR_BODY_MAX + 1];
    const char *err = poller_page_error_body(resp, body, sizeof(body));

    p->request = NULL;
    metrics_poll_request(resp->transport_ok ? resp->status : 0);
    if (poller_types_answer(p->types, p->check_name, resp, err, reason, sizeof(reason)) ==
        POLLER_EV_TYPE_CHECKED) {
        post(p, POLLER_EV_TYPE_CHECKED, NULL, NULL, NULL, -1, NULL);
        return;
    }
    post(p, POLLER_EV_CHECK_FAILED, reason, err, NULL,
         resp->transport_ok && (resp->status == 429 || resp->status == 503) ? resp->retry_after_ms
                                                                            : -1,
         NULL);
}

/* Starts the check of the first type the round has still to ask about. */
static WUR bool start_check(poller_t *p, char *why, size_t whylen)
{
    const char *name = NULL;
    char *url = poller_types_check_url(p->types, &name);
    if (url == NULL) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    set_str(&p->check_name, name);
    rate_take(p, clock_mono_ms());
    free(p->url);
    p->url = url;
    p->request = http_get(p->http, url, p->cfg->api_key, p->cfg->request_timeout_ms, MAX_BODY,
                          on_check_response, p);
    if (p->request == NULL) {
        snprintf(why, whylen, "cannot start request");
        return false;
    }
    return true;
}

/* The round refused some types: requests name only the others from now on. */
static void use_types(poller_t *p)
{
    if (!poller_types_use(p->types))
        out_of_memory("poller_url");
    log_warn("event=event_types_dropped refused=%s note=\"polling the other types\"",
             log_q(poller_types_refused(p->types)));
}

/* The round refused every type, or none: say which, back off. */
static void check_backoff(poller_t *p)
{
    int64_t delay = backoff_next(&p->backoff);
    bool all = poller_types_all_refused(p->types);
    if (p->failing_since_ms == 0)
        p->failing_since_ms = clock_mono_ms();
    snprintf(p->last_error, sizeof(p->last_error), "%s",
             all ? "every event type refused by the Events API"
                 : "http 400 to GET /events, yet every event type is accepted on its own");
    metrics_backoff(delay);
    if (all)
        log_error("event=event_types_all_refused refused=%s retry_in_ms=%lld "
                  "note=\"nothing to poll; check [workos] events\"",
                  log_q(poller_types_refused(p->types)), (long long)delay);
    else
        log_warn("event=poll_refused_types_accepted retry_in_ms=%lld note=\"%s\"", (long long)delay,
                 "every event type is accepted on its own; fetching again after the backoff");
    store_note(p->store, p->last_error);
    wake_in(p, delay);
}

static void on_applied(void *arg, bool ok, const store_apply_result_t *res, const char *err)
{
    post(arg, ok ? POLLER_EV_APPLIED : POLLER_EV_APPLY_FAILED, ok ? NULL : err, NULL, NULL, -1,
         ok ? res : NULL);
}

static void on_cursor(void *arg, bool ok, const char *cursor, const char *range_start,
                      int64_t cursor_created_ms, const char *err)
{
    if (ok)
        post(arg, POLLER_EV_CURSOR_LOADED, cursor, NULL, range_start, cursor_created_ms, NULL);
    else
        post(arg, POLLER_EV_CURSOR_FAILED, err, NULL, NULL, -1, NULL);
}

static void on_lock(void *arg, bool ok, bool held, const char *err)
{
    poller_event_t ev = !ok    ? POLLER_EV_LOCK_FAILED
                        : held ? POLLER_EV_LOCK_HELD
                               : POLLER_EV_LOCK_BUSY;
    post(arg, ev, ok ? NULL : err, NULL, NULL, -1, NULL);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    post(arg, POLLER_EV_TIMER, NULL, NULL, NULL, -1, NULL);
}

/* Hands the pending batch, and whether it ends the stream, to the store. */
static void hand_over(poller_t *p)
{
    event_batch_t *b = p->pending;
    bool ends = p->pending_ends;
    set_str(&p->inflight, b->last_id);
    p->inflight_created_ms = b->newest_created_ms;
    p->inflight_events = b->n_events;
    p->pending = NULL;
    p->pending_ends = false;
    log_debug("event=apply_start n=%zu cursor=%s", b->n_events, log_q(p->inflight));
    store_apply(p->store, b, "events_api", p->inflight, ends, on_applied, p);
}

/*
 * A stored cursor whose event is older than [workos] retention is one the
 * API no longer serves: say so before asking after it.
 */
static void check_cursor_age(poller_t *p)
{
    if (p->committed == NULL || p->committed_created_ms <= 0 || p->expired == NULL)
        return;
    int64_t age_ms = clock_wall_ms() - p->committed_created_ms;
    if (age_ms <= p->cfg->retention_ms)
        return;
    log_info("event=cursor_age cursor=%s age_s=%lld retention_s=%lld", log_q(p->committed),
             (long long)(age_ms / 1000), (long long)(p->cfg->retention_ms / 1000));
    p->expired(p->expired_arg, "cursor_older_than_retention");
}

static void committed(poller_t *p, const store_apply_result_t *res)
{
    set_str(&p->committed, p->inflight);
    /* The newest, not the batch's last: one event stamped 1970 last in a
     * batch would otherwise put the lag gauge at decades. */
    if (p->inflight_created_ms > p->committed_created_ms)
        p->committed_created_ms = p->inflight_created_ms;
    backoff_reset(&p->apply_backoff);
    p->committed_at_ms = clock_mono_ms();
    if (p->inflight_events > 0) {
        double us = (double)res->commit_us / (double)p->inflight_events;
        p->apply_us_per_event =
            p->apply_us_per_event > 0.0 ? 0.75 * p->apply_us_per_event + 0.25 * us : us;
    }
    metrics_cursor_event_time(p->committed_created_ms);
    p->applied_since_progress += res->inserted;
    log_debug("event=applied cursor=%s inserted=%ld commit_ms=%.1f", log_q(p->committed),
              res->inserted, (double)res->commit_us / 1000.0);

    int64_t now = clock_mono_ms();
    if (now - p->progress_at_ms >= PROGRESS_EVERY_MS && p->applied_since_progress > 0) {
        log_info("event=progress applied=%ld cursor=%s", p->applied_since_progress,
                 log_q(p->fetch_after));
        p->applied_since_progress = 0;
        p->progress_at_ms = now;
    }
}

/* The failure an input reports, as its own line. */
static void log_failure(poller_t *p, const poller_input_t *in)
{
    switch (in->ev) {
    case POLLER_EV_PAGE_REFUSED:
        if (p->failing_since_ms == 0)
            p->failing_since_ms = clock_mono_ms();
        snprintf(p->last_error, sizeof(p->last_error), "%s", in->text);
        log_warn("event=poll_refused url=%s status=400 body=%s "
                 "note=\"the API may not know an event type; checking each\"",
                 log_q(p->url), log_q(in->body));
        store_note(p->store, in->text);
        return;
    case POLLER_EV_LOCK_FAILED:
        log_warn("event=poller_lock_failed error=%s", log_q(in->text));
        return;
    case POLLER_EV_CURSOR_FAILED:
        log_warn("event=cursor_load_failed error=%s", log_q(in->text));
        return;
    case POLLER_EV_APPLY_FAILED:
        log_warn("event=apply_failed cursor=%s batch_cursor=%s error=%s", log_q(p->committed),
                 log_q(p->inflight), log_q(in->text));
        return;
    default:
        log_error("event=bug where=poller_log_failure input=%s", poller_event_name(in->ev));
        abort();
    }
}

/* Carries out one action of a step; `in` is the input that caused it. */
static void perform(poller_t *p, poller_action_t action, const poller_input_t *in,
                    const poller_step_t *step)
{
    char why[64];

    switch (action) {
    case POLLER_DO_CANCEL_TIMER:
        evtimer_del(p->timer);
        return;
    case POLLER_DO_CANCEL_REQUEST:
        http_cancel(p->request);
        p->request = NULL;
        windows_reset(p->windows);
        p->awaiting = false;
        return;
    case POLLER_DO_LOG_ERROR:
        log_failure(p, in);
        return;
    case POLLER_DO_REWIND:
        rewind_to_committed(p);
        return;
    case POLLER_DO_RESIGN:
        p->leader = false; /* the lock went with the connection */
        free(p->refused_noted);
        p->refused_noted = NULL; /* a note in flight may be lost with it */
        return;
    case POLLER_DO_LEAD:
        p->leader = true;
        p->standby_logged = false;
        log_info("event=poller_leader note=\"this instance polls the Events API\"");
        return;
    case POLLER_DO_STANDBY:
        if (!p->standby_logged)
            log_info("event=poller_standby note=\"another instance holds the poller lock; "
                     "webhooks are still served\"");
        p->standby_logged = true;
        return;
    case POLLER_DO_START:
        set_str(&p->committed, in->text);
        p->committed_created_ms = in->created_ms;
        set_str(&p->range_start, in->range_start);
        rewind_to_committed(p);
        log_info("event=poller_start cursor=%s range_start=%s", log_q(in->text),
                 log_q(in->text != NULL ? NULL : in->range_start));
        check_cursor_age(p);
        return;
    case POLLER_DO_COMMITTED:
        committed(p, &in->res);
        return;
    case POLLER_DO_MARK_ENDS:
        p->pending_ends = true;
        return;
    case POLLER_DO_NOTE:
        store_note(p->store, NULL);
        return;
    case POLLER_DO_LOCK:
        store_try_poller_lock(p->store, on_lock, p);
        return;
    case POLLER_DO_LOAD_CURSOR:
        store_load_cursor(p->store, p->cfg->start_from, on_cursor, p);
        return;
    case POLLER_DO_ARM_RETRY:
        wake_in(p, STANDBY_RETRY_MS);
        return;
    case POLLER_DO_ARM_POLL:
        wake_in(p, p->cfg->poll_interval_ms);
        return;
    case POLLER_DO_ARM_RATE:
        wake_in(p, step->wait_ms);
        return;
    case POLLER_DO_BACKOFF_FETCH:
        fetch_failed(p, in->text != NULL ? in->text : "-", in->body, in->retry_after_ms);
        return;
    case POLLER_DO_BACKOFF_APPLY:
        store_note(p->store, in->text); /* status shows why the stream is stuck */
        wake_in(p, backoff_next(&p->apply_backoff));
        return;
    case POLLER_DO_CHECK_TYPES:
        poller_types_begin(p->types);
        return;
    case POLLER_DO_USE_TYPES:
        use_types(p);
        return;
    case POLLER_DO_BACKOFF_CHECK:
        check_backoff(p);
        return;
    case POLLER_DO_FETCH:
        if (!start_request(p, why, sizeof(why)))
            post(p, POLLER_EV_FETCH_FAILED, why, NULL, NULL, -1, NULL);
        return;
    case POLLER_DO_CHECK_TYPE:
        if (!start_check(p, why, sizeof(why)))
            post(p, POLLER_EV_CHECK_FAILED, why, NULL, NULL, -1, NULL);
        return;
    case POLLER_DO_APPLY:
        hand_over(p);
        return;
    }
    log_error("event=bug where=poller_perform action=%u", (unsigned)action);
    abort();
}

/*
 * Records the refused types in sync_state, for `status`, when they differ
 * from those last recorded: after a check round, a reload, and once per
 * leadership, so a list left by an earlier run or another instance is
 * replaced.  Only the leader writes.
 */
static void note_refused(poller_t *p)
{
    const char *now = poller_types_refused(p->types);
    if (!p->leader || !store_ready(p->store) ||
        (p->refused_noted != NULL && strcmp(p->refused_noted, now) == 0))
        return;
    set_str(&p->refused_noted, now);
    store_note_refused(p->store, now);
}

/* One input: the machine's answer, then its actions in order. */
static void handle(poller_t *p, const poller_input_t *in)
{
    poller_facts_t facts = {
        .store_ready = store_ready(p->store),
        .pending_batch = p->pending != NULL,
        .pending_events = p->pending != NULL ? p->pending->n_events : 0,
        /* The windows take their own tokens; the next of their pages is free. */
        .rate_wait_ms = use_windows(p) ? 0 : rate_wait_ms(p, clock_mono_ms()),
    };
    poller_types_facts(p->types, &facts);
    poller_step_t step;
    if (!poller_fsm_step(p->state, p->apply, in->ev, &facts, &step)) {
        log_error("event=bug where=poller state=%s apply=%s input=%s", poller_state_name(p->state),
                  poller_apply_name(p->apply), poller_event_name(in->ev));
        abort();
    }
    log_debug("event=poller_step input=%s from=%s to=%s apply=%s", poller_event_name(in->ev),
              poller_state_name(p->state), poller_state_name(step.state),
              poller_apply_name(step.apply));
    p->state = step.state;
    p->apply = step.apply;
    for (unsigned i = 0; i < POLLER_DO_COUNT; i++)
        if (step.actions & (1u << i))
            perform(p, (poller_action_t)(1u << i), in, &step);
    note_refused(p);
}

/*
 * The one way in: queues the input (copying what it points to) and, unless
 * an input is being handled further up the stack, handles the queue.
 * `ms` is CURSOR_LOADED's cursor event time, any other input's Retry-After
 * (or -1).
 */
static void post(poller_t *p, poller_event_t ev, const char *text, const char *body,
                 const char *range_start, int64_t ms, const store_apply_result_t *res)
{
    if (p->queue_len == INPUT_QUEUE) {
        log_error("event=bug where=poller_post reason=\"input queue full\" input=%s",
                  poller_event_name(ev));
        abort();
    }
    poller_input_t *in = &p->queue[(p->queue_head + p->queue_len++) % INPUT_QUEUE];
    *in = (poller_input_t){.ev = ev,
                           .text = copy_or_die(text),
                           .body = copy_or_die(body),
                           .range_start = copy_or_die(range_start),
                           .retry_after_ms = ev == POLLER_EV_CURSOR_LOADED ? -1 : ms,
                           .created_ms = ev == POLLER_EV_CURSOR_LOADED ? ms : 0};
    if (res != NULL)
        in->res = *res;
    if (p->handling)
        return;
    p->handling = true;
    while (p->queue_len > 0) {
        poller_input_t next = p->queue[p->queue_head];
        p->queue_head = (p->queue_head + 1) % INPUT_QUEUE;
        p->queue_len--;
        handle(p, &next);
        free(next.text);
        free(next.body);
        free(next.range_start);
    }
    p->handling = false;
}

static const char *hook_url_prefix(void *arg)
{
    const poller_t *p = arg;
    return poller_types_url_prefix(p->types);
}

static int64_t hook_rate_wait(void *arg)
{
    return rate_wait_ms(arg, clock_mono_ms());
}

static void hook_rate_take(void *arg)
{
    rate_take(arg, clock_mono_ms());
}

poller_t *poller_new(struct event_base *base, const config_t *cfg, store_t *store,
                     http_client_t *http)
{
    poller_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->base = base;
    p->cfg = cfg;
    p->store = store;
    p->http = http;
    p->state = POLLER_WAITING_DB;
    p->apply = POLLER_APPLY_IDLE;
    p->timer = evtimer_new(base, on_timer, p);
    p->types = poller_types_new(cfg);
    windows_hooks_t hooks = {.arg = p,
                             .url_prefix = hook_url_prefix,
                             .rate_wait_ms = hook_rate_wait,
                             .rate_take = hook_rate_take};
    p->windows = windows_new(base, http, cfg, &hooks);
    p->tokens_at_ms = clock_mono_ms();
    p->progress_at_ms = p->tokens_at_ms;
    p->tokens = 1.0;
    backoff_init(&p->backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    backoff_init(&p->apply_backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    if (p->timer == NULL || p->types == NULL || p->windows == NULL) {
        poller_free(p);
        return NULL;
    }
    return p;
}

void poller_free(poller_t *p)
{
    if (p == NULL)
        return;
    http_cancel(p->request);
    windows_free(p->windows);
    poller_page_tail_free(&p->tail);
    if (p->timer != NULL)
        event_free(p->timer);
    event_batch_free(p->pending);
    poller_types_free(p->types);
    free(p->check_name);
    free(p->refused_noted);
    free(p->url);
    free(p->committed);
    free(p->inflight);
    free(p->fetch_after);
    free(p->window_base);
    free(p->range_start);
    poller_page_seen_free(&p->seen);
    free(p);
}

void poller_store_ready(poller_t *p)
{
    post(p, POLLER_EV_STORE_READY, NULL, NULL, NULL, -1, NULL);
}

void poller_set_expiry_hook(poller_t *p, void (*fn)(void *arg, const char *reason), void *arg)
{
    p->expired = fn;
    p->expired_arg = arg;
}

void poller_store_lost(poller_t *p)
{
    post(p, POLLER_EV_STORE_LOST, NULL, NULL, NULL, -1, NULL);
}

void poller_set_config(poller_t *p, const config_t *cfg)
{
    poller_types_t *types = poller_types_new(cfg);
    if (types == NULL) {
        log_warn("event=reload_failed reason=\"out of memory\"");
        return;
    }
    /* A reload asks again about every type: a refused one is tried anew. */
    poller_types_free(p->types);
    p->types = types;
    p->cfg = cfg;
    windows_set_config(p->windows, cfg);
    metrics_event_types_refused(0);
}

void poller_stop(poller_t *p)
{
    post(p, POLLER_EV_STOP, NULL, NULL, NULL, -1, NULL);
}

bool poller_leader(const poller_t *p)
{
    return p->leader;
}

bool poller_applying(const poller_t *p)
{
    return poller_fsm_applying(p->apply);
}

const char *poller_refused_types(const poller_t *p)
{
    return poller_types_refused(p->types);
}

const char *poller_last_error(const poller_t *p)
{
    return p->last_error;
}

int64_t poller_commit_age_ms(const poller_t *p)
{
    return p->committed_at_ms ? clock_mono_ms() - p->committed_at_ms : -1;
}

int64_t poller_backoff_ms(const poller_t *p)
{
    return p->failing_since_ms ? clock_mono_ms() - p->failing_since_ms : 0;
}
