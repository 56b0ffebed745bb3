/*
 * poller: the Events API client.
 *
 * States (poller_state_t) cover the request side; the apply side is a
 * single flag, because at most one batch is ever in flight.  Every failure
 * of a request -- transport error, 429, 5xx, invalid JSON, a page out of
 * order -- leaves the cursor where it was and waits with exponential
 * backoff and full jitter (and at least as long as Retry-After says).
 */
#include "poller.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "backoff.h"
#include "clock.h"
#include "event.h"
#include "log.h"
#include "metrics.h"

#define PAGE_LIMIT 100
#define MAX_PENDING_EVENTS 1000 /* fetched ahead of the commit, at most */
#define MAX_BODY (16u * 1024 * 1024)
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 60000
#define PROGRESS_EVERY_MS 30000
#define MAX_UNKNOWN_TYPES 64
#define STANDBY_RETRY_MS 1000 /* how often a standby asks for the lock */

typedef enum poller_state {
    POLLER_WAITING_DB, /* the store is not ready; nothing to do until it is */
    POLLER_LOCKING,    /* asking for the advisory lock that makes this instance the poller */
    POLLER_STANDBY,    /* another instance holds the lock; retrying on a timer */
    POLLER_SETUP_WAIT, /* taking the lock or reading the cursor failed; retrying on a timer */
    POLLER_LOADING,    /* reading the cursor from the database */
    POLLER_IDLE,       /* a timer is armed: poll interval, backoff or rate limit */
    POLLER_FETCHING,   /* GET /events in flight */
    POLLER_STOPPED     /* shutting down: no new requests */
} poller_state_t;

struct poller {
    struct event_base *base;
    const config_t *cfg;
    store_t *store;
    http_client_t *http;
    poller_state_t state;
    struct event *timer;
    http_request_t *request;

    char *url_prefix;            /* base_url/events?order=asc&limit=..&<filter> */
    char *committed;             /* cursor in the database */
    char *inflight;              /* cursor of the batch being committed */
    int64_t inflight_created_ms; /* created_at of that event, for the lag gauge */
    char *fetch_after;           /* cursor for the next request: last event fetched */
    char *range_start;           /* where to start when there is no cursor */
    int64_t last_fetched_ms;

    event_batch_t *pending; /* fetched, not yet handed to the store */
    bool pending_caught_up; /* the last page fetched ended the stream */
    bool applying;
    bool note_after_apply;
    bool leader;         /* holds the advisory lock on the store's connection */
    bool standby_logged; /* said once that another instance polls */

    backoff_t backoff;
    int64_t failing_since_ms; /* monotonic ms of the first failure in a row, or 0 */
    char last_error[160];     /* the latest failure, "" once a request succeeds */
    int64_t committed_at_ms;  /* monotonic ms of the last commit, 0 before the first */
    double tokens;            /* rate limiter */
    int64_t tokens_at_ms;

    long applied_since_progress;
    int64_t progress_at_ms;
    char *unknown_types[MAX_UNKNOWN_TYPES];
    size_t n_unknown_types;
};

static void try_fetch(poller_t *p);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_str(char **dst, const char *src)
{
    char *copy = src != NULL ? strdup(src) : NULL;
    if (src != NULL && copy == NULL) {
        log_error("event=bug where=poller reason=\"out of memory\"");
        abort(); /* a cursor we cannot remember is a cursor we might skip past */
    }
    free(*dst);
    *dst = copy;
}

static char *build_url_prefix(const config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    fprintf(f, "%s/events?order=asc&limit=%d", cfg->base_url, PAGE_LIMIT);
    if (cfg->events_brackets) {
        for (size_t i = 0; i < cfg->n_events; i++) {
            char *e = curl_easy_escape(NULL, cfg->events[i], 0);
            if (e != NULL)
                fprintf(f, "&events%%5B%%5D=%s", e);
            curl_free(e);
        }
    } else if (cfg->n_events > 0) {
        /* One parameter, comma-separated, as the official Node SDK sends it. */
        fputs("&events=", f);
        for (size_t i = 0; i < cfg->n_events; i++) {
            char *e = curl_easy_escape(NULL, cfg->events[i], 0);
            if (e != NULL)
                fprintf(f, "%s%s", i ? "%2C" : "", e);
            curl_free(e);
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Wakes the poller in `ms`; on_timer decides what to do by state. */
static void wake_in(poller_t *p, int64_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

static void arm(poller_t *p, int64_t ms)
{
    p->state = POLLER_IDLE;
    wake_in(p, ms);
}

static void try_lock(poller_t *p);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    poller_t *p = arg;
    (void)fd;
    (void)what;
    switch (p->state) {
    case POLLER_STANDBY:
    case POLLER_SETUP_WAIT:
        try_lock(p);
        return;
    case POLLER_IDLE:
        try_fetch(p);
        return;
    case POLLER_WAITING_DB:
    case POLLER_LOCKING:
    case POLLER_LOADING:
    case POLLER_FETCHING:
    case POLLER_STOPPED:
        return; /* a stale timer: the state moved on without it */
    }
}

/* Remembers unknown types so each is logged once, not once per event. */
static bool first_sighting(poller_t *p, const char *type)
{
    for (size_t i = 0; i < p->n_unknown_types; i++)
        if (strcmp(p->unknown_types[i], type) == 0)
            return false;
    if (p->n_unknown_types < MAX_UNKNOWN_TYPES) {
        char *copy = strdup(type);
        if (copy != NULL)
            p->unknown_types[p->n_unknown_types++] = copy;
    }
    return true;
}

/* Drops everything fetched but not committed; the next fetch starts over. */
static void rewind_to_committed(poller_t *p)
{
    http_cancel(p->request);
    p->request = NULL;
    event_batch_free(p->pending);
    p->pending = NULL;
    p->pending_caught_up = false;
    p->note_after_apply = false;
    set_str(&p->fetch_after, p->committed);
    p->last_fetched_ms = 0;
}

static void fetch_failed(poller_t *p, const char *reason, int64_t retry_after_ms)
{
    int64_t delay = backoff_next(&p->backoff);
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    if (p->failing_since_ms == 0)
        p->failing_since_ms = mono_ms();
    snprintf(p->last_error, sizeof(p->last_error), "%s", reason);
    metrics_backoff(delay);
    log_warn("event=poll_failed reason=\"%s\" after=%s retry_in_ms=%lld", reason,
             p->fetch_after ? p->fetch_after : "-", (long long)delay);
    store_note(p->store, reason);
    arm(p, delay);
}

static void on_applied(void *arg, bool ok, const store_apply_result_t *res, const char *err);

static void try_apply(poller_t *p)
{
    if (p->applying || p->pending == NULL || p->pending->n_events == 0 || !store_ready(p->store))
        return;
    event_batch_t *b = p->pending;
    bool caught_up = p->pending_caught_up;
    set_str(&p->inflight, b->last_id);
    p->inflight_created_ms = b->last_created_ms;
    p->pending = NULL;
    p->pending_caught_up = false;
    p->applying = true;
    log_debug("event=apply_start n=%zu cursor=%s", b->n_events, p->inflight);
    store_apply(p->store, b, "events_api", p->inflight, caught_up, on_applied, p);
}

static void on_applied(void *arg, bool ok, const store_apply_result_t *res, const char *err)
{
    poller_t *p = arg;
    p->applying = false;
    if (!ok) {
        log_warn("event=apply_failed error=\"%s\" cursor=%s", err,
                 p->committed ? p->committed : "-");
        rewind_to_committed(p);
        if (p->state == POLLER_STOPPED || !store_ready(p->store)) {
            if (p->state != POLLER_STOPPED)
                p->state = POLLER_WAITING_DB;
            return;
        }
        evtimer_del(p->timer);
        arm(p, backoff_next(&p->backoff));
        return;
    }
    set_str(&p->committed, p->inflight);
    p->committed_at_ms = mono_ms();
    metrics_cursor_event_time(p->inflight_created_ms);
    long events = res->inserted;
    p->applied_since_progress += events;
    log_debug("event=applied inserted=%ld commit_ms=%.1f", events, (double)res->commit_us / 1000.0);

    int64_t now = mono_ms();
    if (now - p->progress_at_ms >= PROGRESS_EVERY_MS && p->applied_since_progress > 0) {
        log_info("event=progress applied=%ld cursor=%s", p->applied_since_progress,
                 p->fetch_after ? p->fetch_after : "-");
        p->applied_since_progress = 0;
        p->progress_at_ms = now;
    }
    if (p->note_after_apply && p->pending == NULL) {
        p->note_after_apply = false;
        store_note(p->store, NULL);
    }
    try_apply(p);
    if (p->state == POLLER_IDLE && !evtimer_pending(p->timer, NULL))
        try_fetch(p);
}

/* Adds a page's events to the pending batch; returns the last id seen. */
static const char *take_page(poller_t *p, event_page_t *page)
{
    const char *last_id = NULL;
    cJSON *e;
    while ((e = cJSON_DetachItemFromArray(page->data, 0)) != NULL) {
        char why[160];
        char idbuf[128] = "-", typebuf[128] = "-";
        cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "event");
        if (cJSON_IsString(id))
            snprintf(idbuf, sizeof(idbuf), "%s", id->valuestring);
        if (cJSON_IsString(type))
            snprintf(typebuf, sizeof(typebuf), "%s", type->valuestring);
        if (p->pending == NULL && (p->pending = event_batch_new()) == NULL) {
            cJSON_Delete(e);
            continue;
        }
        switch (event_batch_add(p->pending, e, why, sizeof(why))) {
        case EVENT_OK:
            break;
        case EVENT_UNKNOWN:
            if (first_sighting(p, typebuf))
                log_info("event=unknown_event_type type=%s id=%s note=\"kept in the log only\"",
                         typebuf, idbuf);
            break;
        case EVENT_MALFORMED:
            log_warn("event=malformed_event id=%s type=%s reason=\"%s\" note=\"kept in the log "
                     "only\"",
                     idbuf, typebuf, why);
            break;
        case EVENT_INVALID:
            log_warn("event=invalid_event id=%s type=%s reason=\"%s\" note=\"skipped\"", idbuf,
                     typebuf, why);
            break;
        }
    }
    if (p->pending != NULL && p->pending->last_id != NULL)
        last_id = p->pending->last_id;
    return last_id;
}

static void on_response(void *arg, const http_response_t *resp)
{
    poller_t *p = arg;
    char reason[256];
    event_page_t page;

    p->request = NULL;
    if (p->state != POLLER_FETCHING)
        return;
    metrics_poll_request(resp->transport_ok ? resp->status : 0);
    if (!resp->transport_ok) {
        snprintf(reason, sizeof(reason), "request failed: %s", resp->error);
        fetch_failed(p, reason, -1);
        return;
    }
    if (resp->status != 200) {
        snprintf(reason, sizeof(reason), "http %ld%s", resp->status,
                 resp->status == 401 || resp->status == 403 ? " (check the API key)" : "");
        fetch_failed(p, reason,
                     resp->status == 429 || resp->status == 503 ? resp->retry_after_ms : -1);
        return;
    }
    if (!event_page_parse(&page, resp->body, resp->len, reason, sizeof(reason))) {
        fetch_failed(p, reason, -1);
        return;
    }
    if (page.n > 0 && p->last_fetched_ms != 0) {
        cJSON *created = cJSON_GetObjectItemCaseSensitive(page.data->child, "created_at");
        int64_t ms;
        if (cJSON_IsString(created) && clock_parse_iso8601(created->valuestring, &ms) &&
            ms < p->last_fetched_ms) {
            event_page_free(&page);
            fetch_failed(p, "events out of order across pages", -1);
            return;
        }
    }

    size_t n = page.n;
    const char *page_after = page.after;
    char *fallback = NULL;
    /* The last element's id, even if the element itself is unusable:
     * the cursor must move past it or the stream would stall on it. */
    cJSON *last = cJSON_GetArrayItem(page.data, (int)n - 1);
    cJSON *last_id = last ? cJSON_GetObjectItemCaseSensitive(last, "id") : NULL;
    if (cJSON_IsString(last_id))
        fallback = strdup(last_id->valuestring);
    else if (page_after != NULL)
        fallback = strdup(page_after);

    take_page(p, &page);
    if (p->pending != NULL && p->pending->n_events > 0)
        p->last_fetched_ms = p->pending->last_created_ms;
    event_page_free(&page);

    backoff_reset(&p->backoff);
    p->failing_since_ms = 0;
    p->last_error[0] = '\0';
    if (n > 0 && fallback != NULL)
        set_str(&p->fetch_after, fallback);
    free(fallback);
    log_debug("event=page n=%zu ms=%lld after=%s", n, (long long)resp->elapsed_ms,
              p->fetch_after ? p->fetch_after : "-");

    if (n >= PAGE_LIMIT) {
        p->state = POLLER_IDLE;
        try_apply(p);
        try_fetch(p);
        return;
    }
    /* A short page is the end of the stream for now. */
    if (p->pending != NULL && p->pending->n_events > 0)
        p->pending_caught_up = true;
    else if (p->applying)
        p->note_after_apply = true;
    else
        store_note(p->store, NULL);
    arm(p, p->cfg->poll_interval_ms);
    try_apply(p);
}

/* Token bucket under WorkOS' per-key limit: one second's worth of burst. */
static int64_t rate_wait_ms(poller_t *p)
{
    double per_ms = (double)p->cfg->rate_limit / 60000.0;
    double burst = (double)p->cfg->rate_limit / 60.0;
    int64_t now = mono_ms();
    if (burst < 1.0)
        burst = 1.0;
    p->tokens += (double)(now - p->tokens_at_ms) * per_ms;
    p->tokens_at_ms = now;
    if (p->tokens > burst)
        p->tokens = burst;
    if (p->tokens >= 1.0) {
        p->tokens -= 1.0;
        return 0;
    }
    return (int64_t)((1.0 - p->tokens) / per_ms) + 1;
}

static void try_fetch(poller_t *p)
{
    if (p->state != POLLER_IDLE || evtimer_pending(p->timer, NULL))
        return;
    if (p->pending != NULL && p->pending->n_events >= MAX_PENDING_EVENTS)
        return; /* the apply completion calls us again */
    int64_t wait = rate_wait_ms(p);
    if (wait > 0) {
        arm(p, wait);
        return;
    }

    char *url = NULL;
    char *v = NULL;
    int r;
    if (p->fetch_after != NULL) {
        v = curl_easy_escape(NULL, p->fetch_after, 0);
        r = asprintf(&url, "%s&after=%s", p->url_prefix, v ? v : "");
    } else if (p->range_start != NULL) {
        v = curl_easy_escape(NULL, p->range_start, 0);
        r = asprintf(&url, "%s&range_start=%s", p->url_prefix, v ? v : "");
    } else {
        r = asprintf(&url, "%s", p->url_prefix);
    }
    curl_free(v);
    if (r < 0) {
        fetch_failed(p, "out of memory", -1);
        return;
    }
    p->request = http_get(p->http, url, p->cfg->api_key, p->cfg->request_timeout_ms, MAX_BODY,
                          on_response, p);
    free(url);
    if (p->request == NULL) {
        fetch_failed(p, "cannot start request", -1);
        return;
    }
    p->state = POLLER_FETCHING;
}

/*
 * The lock or cursor query failed.  On a lost connection the store's
 * `ready` restarts us; on a live one (a statement error) we retry on a
 * timer rather than at once, so a persistent error does not spin.
 */
static void setup_failed(poller_t *p)
{
    if (!store_ready(p->store)) {
        p->state = POLLER_WAITING_DB;
        return;
    }
    p->state = POLLER_SETUP_WAIT;
    wake_in(p, STANDBY_RETRY_MS);
}

static void on_cursor(void *arg, bool ok, const char *cursor, const char *range_start,
                      const char *err)
{
    poller_t *p = arg;
    if (p->state != POLLER_LOADING)
        return;
    if (!ok) {
        log_warn("event=cursor_load_failed error=\"%s\"", err);
        setup_failed(p);
        return;
    }
    set_str(&p->committed, cursor);
    set_str(&p->range_start, range_start);
    rewind_to_committed(p);
    log_info("event=poller_start cursor=%s range_start=%s", cursor ? cursor : "-",
             cursor ? "-" : (range_start ? range_start : "-"));
    p->state = POLLER_IDLE;
    try_fetch(p);
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
    p->timer = evtimer_new(base, on_timer, p);
    p->url_prefix = build_url_prefix(cfg);
    p->tokens_at_ms = mono_ms();
    p->progress_at_ms = p->tokens_at_ms;
    p->tokens = 1.0;
    backoff_init(&p->backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    if (p->timer == NULL || p->url_prefix == NULL) {
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
    if (p->timer != NULL)
        event_free(p->timer);
    event_batch_free(p->pending);
    free(p->url_prefix);
    free(p->committed);
    free(p->inflight);
    free(p->fetch_after);
    free(p->range_start);
    for (size_t i = 0; i < p->n_unknown_types; i++)
        free(p->unknown_types[i]);
    free(p);
}

static void on_lock(void *arg, bool ok, bool held, const char *err)
{
    poller_t *p = arg;
    if (p->state != POLLER_LOCKING)
        return;
    if (!ok) {
        log_warn("event=poller_lock_failed error=\"%s\"", err);
        setup_failed(p);
        return;
    }
    if (!held) {
        if (!p->standby_logged)
            log_info("event=poller_standby note=\"another instance holds the poller lock; "
                     "webhooks are still served\"");
        p->standby_logged = true;
        p->state = POLLER_STANDBY;
        wake_in(p, STANDBY_RETRY_MS);
        return;
    }
    p->leader = true;
    p->standby_logged = false;
    log_info("event=poller_leader note=\"this instance polls the Events API\"");
    p->state = POLLER_LOADING;
    store_load_cursor(p->store, p->cfg->start_from, on_cursor, p);
}

static void try_lock(poller_t *p)
{
    p->state = POLLER_LOCKING;
    store_try_poller_lock(p->store, on_lock, p);
}

void poller_store_ready(poller_t *p)
{
    if (p->state == POLLER_STOPPED)
        return;
    evtimer_del(p->timer);
    p->leader = false;
    try_lock(p);
}

void poller_store_lost(poller_t *p)
{
    if (p->state == POLLER_STOPPED)
        return;
    evtimer_del(p->timer);
    rewind_to_committed(p);
    /* The lock went with the connection. */
    p->leader = false;
    p->state = POLLER_WAITING_DB;
}

void poller_set_config(poller_t *p, const config_t *cfg)
{
    char *prefix = build_url_prefix(cfg);
    if (prefix == NULL) {
        log_warn("event=reload_failed reason=\"out of memory\"");
        return;
    }
    free(p->url_prefix);
    p->url_prefix = prefix;
    p->cfg = cfg;
}

void poller_stop(poller_t *p)
{
    evtimer_del(p->timer);
    http_cancel(p->request);
    p->request = NULL;
    p->state = POLLER_STOPPED;
}

bool poller_leader(const poller_t *p)
{
    return p->leader;
}

bool poller_applying(const poller_t *p)
{
    return p->applying;
}

const char *poller_last_error(const poller_t *p)
{
    return p->last_error;
}

int64_t poller_commit_age_ms(const poller_t *p)
{
    return p->committed_at_ms ? mono_ms() - p->committed_at_ms : -1;
}

int64_t poller_backoff_ms(const poller_t *p)
{
    return p->failing_since_ms ? mono_ms() - p->failing_since_ms : 0;
}
