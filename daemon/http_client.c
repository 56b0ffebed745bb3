/*
 * http_client: libcurl multi interface on the libevent loop.
 *
 * curl tells us which sockets to watch (socket callback) and when to wake
 * it (timer callback); libevent tells curl when a socket is ready or the
 * timer fired (curl_multi_socket_action), and after every action we reap
 * finished transfers.  Connections are reused through the multi handle's
 * pool, so a backfill of many pages keeps one TLS session.
 */
#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "clock.h"

struct http_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    http_request_t *requests; /* in flight, for cancellation at free */
};

struct http_request {
    http_client_t *client;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    size_t len, cap, max_body;
    bool too_big;
    int64_t retry_after_ms;
    int64_t started_ms;
    http_done_fn done;
    void *arg;
    char error[CURL_ERROR_SIZE];
    http_request_t *prev, *next;
};

/* Per-socket watch that curl asked for. */
typedef struct sock_watch {
    struct event *ev;
    http_client_t *client;
} sock_watch_t;

static void request_free(http_request_t *r)
{
    http_client_t *c = r->client;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        c->requests = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r);
}

/* Hands finished transfers to their owners. */
static void reap(http_client_t *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        http_request_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode code = msg->data.result;
        http_response_t resp = {
            .transport_ok = code == CURLE_OK,
            .body = r->body != NULL ? r->body : "",
            .len = r->len,
            .retry_after_ms = r->retry_after_ms,
            .elapsed_ms = clock_mono_ms() - r->started_ms,
        };
        if (r->too_big)
            resp.error = "response body too large";
        else if (code != CURLE_OK)
            resp.error = r->error[0] ? r->error : curl_easy_strerror(code);
        if (r->too_big)
            resp.transport_ok = false;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        http_done_fn done = r->done;
        void *arg = r->arg;
        /* Free first: the callback may start the next request at once. */
        char err[CURL_ERROR_SIZE];
        if (resp.error != NULL) {
            snprintf(err, sizeof(err), "%s", resp.error);
            resp.error = err;
        }
        char *body = r->body;
        r->body = NULL;
        request_free(r);
        resp.body = body != NULL ? body : "";
        done(arg, &resp);
        free(body);
    }
}

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    http_client_t *c = arg;
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, action, &running);
    reap(c);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    http_client_t *c = arg;
    int running;
    (void)fd;
    (void)what;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    reap(c);
}

/* curl: start, change or stop watching a socket. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    http_client_t *c = userp;
    sock_watch_t *w = socketp;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (w != NULL) {
            event_free(w->ev);
            free(w);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
    if (w == NULL) {
        w = calloc(1, sizeof(*w));
        if (w == NULL)
            return -1;
        w->client = c;
        curl_multi_assign(c->multi, s, w);
    } else {
        event_free(w->ev);
    }
    w->ev = event_new(c->base, s, kind, on_socket_ready, c);
    if (w->ev == NULL)
        return -1;
    event_add(w->ev, NULL);
    return 0;
}

/* curl: wake me in `ms` (-1: never). */
static int timer_cb(CURLM *multi, long ms, void *userp)
{
    http_client_t *c = userp;
    (void)multi;
    if (ms < 0) {
        evtimer_del(c->timer);
    } else {
        struct timeval tv = clock_timeval(ms);
        evtimer_add(c->timer, &tv);
    }
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    http_request_t *r = userp;
    size_t n = size * nmemb;
    if (r->len + n > r->max_body) {
        r->too_big = true;
        return 0; /* makes curl abort the transfer */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *p = realloc(r->body, cap);
        if (p == NULL)
            return 0;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

int64_t http_retry_after_ms(const char *value, time_t now)
{
    char v[128];
    const char *start = value;
    while (*start == ' ' || *start == '\t')
        start++;
    snprintf(v, sizeof(v), "%s", start);
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        v[--n] = '\0';
    if (n == 0)
        return -1;

    int64_t secs;
    char *num_end;
    long delta = strtol(v, &num_end, 10);
    if (*num_end == '\0') {
        if (delta < 0)
            return -1;
        secs = delta;
    } else {
        /* A date: a far one waits no longer than a large delta would. */
        time_t when = curl_getdate(v, NULL);
        if (when == (time_t)-1)
            return -1;
        secs = (int64_t)when - (int64_t)now;
        if (secs < 0)
            secs = 0;
    }
    return (secs > HTTP_RETRY_AFTER_MAX_S ? HTTP_RETRY_AFTER_MAX_S : secs) * 1000;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    http_request_t *r = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        char value[128];
        size_t vlen = n - (sizeof(name) - 1);
        if (vlen >= sizeof(value))
            vlen = sizeof(value) - 1;
        memcpy(value, data + sizeof(name) - 1, vlen);
        value[vlen] = '\0';
        int64_t ms = http_retry_after_ms(value, time(NULL));
        if (ms >= 0)
            r->retry_after_ms = ms;
    }
    return n;
}

http_client_t *http_client_new(struct event_base *base)
{
    http_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timeout, c);
    if (c->multi == NULL || c->timer == NULL) {
        http_client_free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

void http_client_free(http_client_t *c)
{
    if (c == NULL)
        return;
    for (http_request_t *r = c->requests, *next; r != NULL; r = next) {
        next = r->next;
        request_free(r);
    }
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    if (c->timer != NULL)
        event_free(c->timer);
    free(c);
}

http_request_t *http_get(http_client_t *c, const char *url, const char *bearer, int64_t timeout_ms,
                         size_t max_body, http_done_fn done, void *arg)
{
    http_request_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->client = c;
    r->max_body = max_body;
    r->retry_after_ms = -1;
    r->done = done;
    r->arg = arg;
    r->started_ms = clock_mono_ms();
    r->easy = curl_easy_init();
    if (r->easy == NULL)
        goto fail;
    if (bearer != NULL) {
        char *auth = NULL;
        if (asprintf(&auth, "Authorization: Bearer %s", bearer) < 0)
            goto fail;
        r->headers = curl_slist_append(NULL, auth);
        /* The key must not linger in freed memory longer than needed. */
        explicit_bzero(auth, strlen(auth));
        free(auth);
        if (r->headers == NULL)
            goto fail;
    }
    struct curl_slist *h = curl_slist_append(r->headers, "Accept: application/json");
    if (h == NULL)
        goto fail;
    r->headers = h;

    curl_easy_setopt(r->easy, CURLOPT_URL, url);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "workos-syncd/" WORKOS_SYNCD_VERSION);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout_ms < 10000 ? timeout_ms : 10000));
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
        goto fail;
    r->next = c->requests;
    if (c->requests != NULL)
        c->requests->prev = r;
    c->requests = r;
    return r;

fail:
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r);
    return NULL;
}

void http_cancel(http_request_t *r)
{
    if (r != NULL)
        request_free(r);
}
