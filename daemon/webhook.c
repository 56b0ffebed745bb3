/*
 * webhook: evhttp server for WorkOS webhooks and the operational endpoints.
 *
 * A webhook request moves through explicit states (webhook_req_state_t):
 * verified and decoded on arrival, it waits in the open group; when no
 * group is committing, the open group is handed to the store as one batch
 * and its requests become COMMITTING; the batch's completion answers them
 * all, 200 or 503.  Nothing is answered 2xx before its commit, and a
 * rejected request (bad signature, bad JSON, too large) never reaches a
 * batch.
 *
 * Connections are counted and bounded (see "connection accounting").
 */
#include "webhook.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "event.h"
#include "log.h"
#include "signature.h"

/* A group waiting to commit holds at most this many requests and body
 * bytes (a lone request may pass the byte bound). */
#define MAX_GROUP 2000
#define MAX_GROUP_BYTES ((size_t)64 << 20)
#define SWEEP_INTERVAL_MS 100      /* how soon a dropped connection's socket is closed */
#define BODY_CAP_SLACK (64 * 1024) /* see body_cap() */

typedef enum webhook_req_state {
    WREQ_QUEUED,     /* decoded, waiting in the open group */
    WREQ_COMMITTING, /* its group's batch is being committed */
} webhook_req_state_t;

typedef struct pending {
    struct evhttp_request *req;
    webhook_req_state_t state;
    struct pending *next;
} pending_t;

typedef struct group {
    event_batch_t *batch;
    pending_t *head, *tail;
    size_t n;
    size_t bytes; /* body bytes of its requests */
    webhook_t *owner;
} group_t;

struct webhook {
    struct event_base *base;
    const config_t *cfg;
    store_t *store;
    webhook_hooks_t hooks;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    int connections;
    bool paused;
    struct bufferevent **tracked; /* one per open connection, referenced */
    size_t n_tracked, cap_tracked;
    struct event *sweep; /* releases connections evhttp has dropped */
    group_t *open;       /* collecting requests */
    group_t *inflight;   /* being committed */
};

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Sends `text` and a newline as the whole answer. */
static void respond(struct evhttp_request *req, int status, const char *reason,
                    const char *content_type, const char *text)
{
    struct evbuffer *out = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    if (out != NULL)
        evbuffer_add_printf(out, "%s\n", text);
    evhttp_send_reply(req, status, reason, out);
    evbuffer_free(out);
}

/* A webhook answer: JSON, and counted. */
static void reply(struct evhttp_request *req, int status, const char *reason, const char *body)
{
    respond(req, status, reason, "application/json", body);
    metrics_webhook_response(status);
}

static void reply_error(struct evhttp_request *req, int status, const char *reason,
                        const char *message)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"error\":\"%s\"}", message);
    reply(req, status, reason, body);
}

/* Answers every request of a finished group, according to its state. */
static void answer_group(group_t *g, bool ok)
{
    pending_t *p = g->head;
    while (p != NULL) {
        pending_t *next = p->next;
        switch (p->state) {
        case WREQ_COMMITTING:
            if (ok)
                reply(p->req, 200, "OK", "{\"received\":true}");
            else
                reply_error(p->req, 503, "Service Unavailable", "not stored, retry later");
            break;
        case WREQ_QUEUED:
            /* Never committed: only reachable when the listener shuts down. */
            reply_error(p->req, 503, "Service Unavailable", "shutting down");
            break;
        }
        free(p);
        p = next;
    }
    event_batch_free(g->batch);
    free(g);
}

static void flush(webhook_t *w);

static void on_committed(void *arg, bool ok, const store_apply_result_t *res, const char *err)
{
    group_t *g = arg;
    webhook_t *w = g->owner;
    if (!ok)
        log_warn("event=webhook_batch_failed requests=%zu error=\"%s\"", g->n, err);
    else
        log_debug("event=webhook_batch_committed requests=%zu new=%ld", g->n, res->inserted);
    /* The store owned and freed the batch. */
    g->batch = NULL;
    /* Start the next group's commit before answering this one: the
     * database works on it while the answers are written. */
    if (w != NULL && w->inflight == g) {
        w->inflight = NULL;
        flush(w);
    }
    answer_group(g, ok);
}

/* Hands the open group to the store unless one is already committing. */
static void flush(webhook_t *w)
{
    if (w->inflight != NULL || w->open == NULL)
        return;
    group_t *g = w->open;
    w->open = NULL;
    w->inflight = g;
    for (pending_t *p = g->head; p != NULL; p = p->next)
        p->state = WREQ_COMMITTING;
    event_batch_t *b = g->batch;
    g->batch = NULL; /* ownership moves to the store */
    store_apply(w->store, b, "webhook", NULL, false, on_committed, g);
}

static void handle_webhook(webhook_t *w, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
    const char *header =
        evhttp_find_header(evhttp_request_get_input_headers(req), "WorkOS-Signature");
    char why[160];

    if (len > w->cfg->max_body) {
        log_info("event=webhook_rejected status=413 reason=body_too_large bytes=%zu", len);
        reply_error(req, 413, "Payload Too Large", "body too large");
        return;
    }
    sig_result_t sig = sig_verify(header, body, len, w->cfg->secrets, w->cfg->n_secrets, wall_ms(),
                                  w->cfg->tolerance_ms);
    if (sig != SIG_OK) {
        log_info("event=webhook_rejected status=401 reason=signature_%s", sig_result_name(sig));
        snprintf(why, sizeof(why), "signature %s", sig_result_name(sig));
        reply_error(req, 401, "Unauthorized", why);
        return;
    }
    cJSON *envelope = cJSON_ParseWithLength(body, len);
    /* From here on the parsed envelope is all that is needed: the raw
     * body goes now rather than when the request is answered. */
    evbuffer_drain(in, len);
    if (envelope == NULL) {
        log_info("event=webhook_rejected status=400 reason=invalid_json");
        reply_error(req, 400, "Bad Request", "body is not valid JSON");
        return;
    }
    cJSON *data = cJSON_GetObjectItemCaseSensitive(envelope, "data");
    if (data == NULL || cJSON_IsNull(data)) {
        /* The poller keeps such an event in the log; a webhook sender can
         * be told, and nothing is stored. */
        cJSON_Delete(envelope);
        log_info("event=webhook_rejected status=400 reason=no_data");
        reply_error(req, 400, "Bad Request", "event has no data");
        return;
    }
    if (!store_ready(w->store)) {
        cJSON_Delete(envelope);
        reply_error(req, 503, "Service Unavailable", "database unavailable, retry later");
        return;
    }
    /* While a group commits the next one fills; past these bounds the
     * sender is asked to come back (WorkOS retries), so a stalled database
     * cannot make the daemon hold unbounded memory. */
    if (w->open != NULL && (w->open->n >= MAX_GROUP || w->open->bytes + len > MAX_GROUP_BYTES)) {
        cJSON_Delete(envelope);
        reply_error(req, 503, "Service Unavailable", "overloaded, retry later");
        return;
    }
    if (w->open == NULL) {
        group_t *g = calloc(1, sizeof(*g));
        if (g == NULL || (g->batch = event_batch_new()) == NULL) {
            free(g);
            cJSON_Delete(envelope);
            reply_error(req, 503, "Service Unavailable", "out of memory");
            return;
        }
        g->owner = w;
        w->open = g;
    }
    pending_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        cJSON_Delete(envelope);
        reply_error(req, 503, "Service Unavailable", "out of memory");
        return;
    }
    char id[128] = "-";
    cJSON *idj = cJSON_GetObjectItemCaseSensitive(envelope, "id");
    if (cJSON_IsString(idj))
        snprintf(id, sizeof(id), "%s", idj->valuestring);
    switch (event_batch_add(w->open->batch, envelope, why, sizeof(why))) {
    case EVENT_INVALID:
        free(p);
        log_info("event=webhook_rejected status=400 reason=\"%s\"", why);
        reply_error(req, 400, "Bad Request", why);
        return;
    case EVENT_NOMEM:
        free(p);
        reply_error(req, 503, "Service Unavailable", "out of memory");
        return;
    case EVENT_MALFORMED:
        log_warn("event=malformed_event id=%s source=webhook reason=\"%s\" note=\"kept in the log "
                 "only\"",
                 id, why);
        break;
    case EVENT_UNKNOWN:
    case EVENT_OK:
        break;
    }
    /* Keep the request alive past a client hang-up until we answer it. */
    evhttp_request_own(req);
    p->req = req;
    p->state = WREQ_QUEUED;
    if (w->open->tail != NULL)
        w->open->tail->next = p;
    else
        w->open->head = p;
    w->open->tail = p;
    w->open->n++;
    w->open->bytes += len;
    flush(w);
}

static void sweep_connections(webhook_t *w);

static void handle_metrics(webhook_t *w, struct evhttp_request *req)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sweep_connections(w);
    metrics_gauges_t g = {.now_ms = wall_ms(), .webhook_connections = w->connections};
    if (f == NULL) {
        reply_error(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    if (w->hooks.gauges != NULL)
        w->hooks.gauges(w->hooks.arg, &g);
    metrics_render(f, &g);
    fclose(f);
    struct evbuffer *out = evbuffer_new();
    if (out != NULL)
        evbuffer_add(out, text, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
    free(text);
}

static void handle_plain(struct evhttp_request *req, int status, const char *reason,
                         const char *text)
{
    respond(req, status, reason, "text/plain", text);
    /* Refusals are counted with the webhook answers; probes and scrapes are not. */
    if (status >= 400 && status != 503)
        metrics_webhook_response(status);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    webhook_t *w = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

    if (path == NULL)
        path = "";
    if (strcmp(path, w->cfg->webhook_path) == 0) {
        if (cmd != EVHTTP_REQ_POST) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
            reply_error(req, 405, "Method Not Allowed", "use POST");
            return;
        }
        handle_webhook(w, req);
        return;
    }
    bool known = strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
                 strcmp(path, "/metrics") == 0;
    if (!known) {
        handle_plain(req, 404, "Not Found", "not found");
        return;
    }
    if (!get) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        handle_plain(req, 405, "Method Not Allowed", "use GET");
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        handle_plain(req, 200, "OK", "ok");
    } else if (strcmp(path, "/readyz") == 0) {
        char why[256] = "ready";
        bool ready = w->hooks.ready == NULL || w->hooks.ready(w->hooks.arg, why, sizeof(why));
        handle_plain(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", why);
    } else {
        handle_metrics(w, req);
    }
}

/* ---- connection accounting ------------------------------------------- */

/*
 * evhttp (libevent 2.1) has no connection limit and no hook when it drops
 * a connection.  We create each connection's bufferevent ourselves and keep
 * an extra reference to it; once evhttp frees it (bufferevent_free clears
 * its callbacks) the sweep releases our reference, which closes the
 * socket, and the connection stops counting.  At the limit the listener
 * pauses and the kernel backlog holds further clients.
 */
static void sweep_connections(webhook_t *w)
{
    size_t kept = 0;
    for (size_t i = 0; i < w->n_tracked; i++) {
        struct bufferevent *bev = w->tracked[i];
        bufferevent_event_cb eventcb;
        bufferevent_getcb(bev, NULL, NULL, &eventcb, NULL);
        if (eventcb == NULL)
            bufferevent_decref(bev);
        else
            w->tracked[kept++] = bev;
    }
    w->n_tracked = kept;
    w->connections = (int)kept;
    if (w->paused && w->connections < w->cfg->max_connections && w->bound != NULL) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(w->bound));
        w->paused = false;
        log_info("event=webhook_accepting connections=%d", w->connections);
    }
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sweep_connections(arg);
}

static struct bufferevent *new_connection(struct event_base *base, void *arg)
{
    webhook_t *w = arg;
    if (w->n_tracked == w->cap_tracked) {
        size_t cap = w->cap_tracked ? w->cap_tracked * 2 : 64;
        struct bufferevent **t = realloc(w->tracked, cap * sizeof(*t));
        if (t == NULL)
            return NULL; /* evhttp then makes an untracked one itself */
        w->tracked = t;
        w->cap_tracked = cap;
    }
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL;
    bufferevent_incref(bev);
    w->tracked[w->n_tracked++] = bev;
    w->connections = (int)w->n_tracked;
    if (w->connections >= w->cfg->max_connections && !w->paused && w->bound != NULL) {
        evconnlistener_disable(evhttp_bound_socket_get_listener(w->bound));
        w->paused = true;
        log_warn("event=webhook_connection_limit connections=%d note=\"accepting paused\"",
                 w->connections);
    }
    return bev;
}

/*
 * libevent answers bodies over its limit itself, with an HTML page we
 * cannot count or shape.  Its limit sits a little above max_body, so an
 * oversized webhook normally reaches handle_webhook and gets our 413; only
 * a body far over the limit is refused by libevent before it is read.
 */
static ev_ssize_t body_cap(const config_t *cfg)
{
    return (ev_ssize_t)(cfg->max_body + BODY_CAP_SLACK);
}

static void set_timeout(struct evhttp *http, int64_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evhttp_set_timeout_tv(http, &tv);
}

/* Splits "host:port" or "[v6]:port". */
static bool split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen)
        return false;
    const char *h = listen;
    size_t n = (size_t)(colon - listen);
    if (h[0] == '[' && colon[-1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= hostlen)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535)
        return false;
    *port = (int)p;
    return true;
}

webhook_t *webhook_new(struct event_base *base, const config_t *cfg, store_t *store,
                       const webhook_hooks_t *hooks, char *err, size_t errlen)
{
    char host[256];
    int port;
    webhook_t *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->base = base;
    w->cfg = cfg;
    w->store = store;
    w->hooks = *hooks;
    if (!split_listen(cfg->listen, host, sizeof(host), &port)) {
        snprintf(err, errlen, "[webhook] listen: '%s' is not host:port", cfg->listen);
        goto fail;
    }
    w->http = evhttp_new(base);
    if (w->http == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(w->http, 16384);
    evhttp_set_max_body_size(w->http, body_cap(cfg));
    set_timeout(w->http, cfg->client_timeout_ms);
    evhttp_set_bevcb(w->http, new_connection, w);
    evhttp_set_gencb(w->http, on_request, w);
    w->sweep = event_new(base, -1, EV_PERSIST, on_sweep, w);
    if (w->sweep == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct timeval every = {0, SWEEP_INTERVAL_MS * 1000};
    event_add(w->sweep, &every);
    w->bound = evhttp_bind_socket_with_handle(w->http, host, (ev_uint16_t)port);
    if (w->bound == NULL) {
        snprintf(err, errlen, "[webhook] listen: cannot bind %s", cfg->listen);
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int bound_port = 0; /* what port 0 picked */
    if (getsockname(evhttp_bound_socket_get_fd(w->bound), (struct sockaddr *)&ss, &sl) == 0)
        bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                    : ((struct sockaddr_in *)&ss)->sin_port);
    log_info("event=listening address=%s port=%d path=%s", host, bound_port, cfg->webhook_path);
    return w;

fail:
    webhook_free(w);
    return NULL;
}

void webhook_set_config(webhook_t *w, const config_t *cfg)
{
    w->cfg = cfg;
    evhttp_set_max_body_size(w->http, body_cap(cfg));
    set_timeout(w->http, cfg->client_timeout_ms);
}

void webhook_stop_accepting(webhook_t *w)
{
    if (w->bound != NULL) {
        evhttp_del_accept_socket(w->http, w->bound);
        w->bound = NULL;
    }
}

bool webhook_busy(const webhook_t *w)
{
    return w->open != NULL || w->inflight != NULL;
}

void webhook_free(webhook_t *w)
{
    if (w == NULL)
        return;
    if (w->open != NULL)
        answer_group(w->open, false);
    /* A group being committed is answered when the store finishes or
     * fails its job, which may be after this listener is gone. */
    if (w->inflight != NULL)
        w->inflight->owner = NULL;
    if (w->http != NULL)
        evhttp_free(w->http);
    if (w->sweep != NULL)
        event_free(w->sweep);
    for (size_t i = 0; i < w->n_tracked; i++)
        bufferevent_decref(w->tracked[i]);
    free(w->tracked);
    free(w);
}
