/*
 * webhook: evhttp server for WorkOS webhooks and the operational endpoints.
 *
 * A webhook request is verified and decoded on arrival and then joins the
 * open group.  A group is the state machine of webhook_fsm.h: open while
 * it collects requests, committing once no other group commits and its
 * batch is handed to the store, answered (200 or 503, every request at
 * once) when the store reports.  Only a request the batch accepted creates
 * or joins a group, so no group is ever empty.  Nothing is answered 2xx
 * before its commit, and a rejected request (bad signature, bad JSON, too
 * large) never reaches a batch.  Freeing the listener answers every
 * request it holds before the connections go; a group still with the
 * store is orphaned and freed when the store reports, so the listener and
 * the store may be freed in either order.
 *
 * Connections are counted and bounded (see "connection accounting"), and
 * each runs under the header-time gate of webhook_gate.h: what a request's
 * head already shows to be refused is answered before its body is read,
 * unverified bodies share one byte budget, and every request must arrive
 * whole within a deadline.
 */
#include "webhook.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "clock.h"
#include "event.h"
#include "log.h"
#include "signature.h"
#include "webhook_fsm.h"
#include "webhook_gate.h"
#include "webhook_head.h"

/* A group waiting to commit holds at most this many requests and body
 * bytes (a lone request may pass the byte bound). */
#define MAX_GROUP 2000
#define MAX_GROUP_BYTES ((size_t)64 << 20)
#define SWEEP_INTERVAL_MS 100              /* how soon a dropped connection's socket is closed */
#define BODY_CAP_SLACK ((size_t)64 * 1024) /* see body_cap() */
/* [webhook] max_unverified_bytes = 0: this many bodies of max_body. */
#define UNVERIFIED_BODIES 8

typedef struct pending {
    struct evhttp_request *req; /* owned (evhttp_request_own) until answered */
    struct pending *next;
} pending_t;

typedef struct group {
    webhook_group_state_t state;
    event_batch_t *batch; /* while OPEN; the store owns it afterwards */
    pending_t *head, *tail;
    size_t n;
    size_t bytes;     /* body bytes of its requests */
    webhook_t *owner; /* NULL once ORPHANED */
} group_t;

struct webhook {
    struct event_base *base;
    const config_t *cfg;
    store_t *store;
    webhook_hooks_t hooks;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    webhook_gate_t *gate; /* under every connection it tracks */
    int connections;
    bool paused;
    struct bufferevent **tracked; /* one per open connection, referenced */
    size_t n_tracked, cap_tracked;
    struct event *sweep; /* releases connections evhttp has dropped */
    group_t *open;       /* the group in state OPEN, or NULL */
    group_t *inflight;   /* the group in state COMMITTING, or NULL */
};

/* "address:port" of the client that sent `req`, for log lines. */
static const char *peer_of(struct evhttp_request *req, char *buf, size_t len)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (c != NULL)
        evhttp_connection_get_peer(c, &addr, &port);
    snprintf(buf, len, "%s:%u", addr != NULL ? addr : "-", (unsigned)port);
    return buf;
}

/*
 * Sends `out` (NULL: nothing) as the answer's body; to a HEAD request only
 * its length.  libevent 2.1 would write the body after a HEAD answer too,
 * without a Content-Length, and on a keep-alive connection the client would
 * read those bytes as the start of the next answer.
 */
static void send_answer(struct evhttp_request *req, int status, const char *reason,
                        struct evbuffer *out)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char len[32];
        snprintf(len, sizeof(len), "%zu", out != NULL ? evbuffer_get_length(out) : (size_t)0);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
        evhttp_send_reply(req, status, reason, NULL);
        return;
    }
    evhttp_send_reply(req, status, reason, out);
}

/* Sends `text` and a newline as the whole answer. */
static void respond(struct evhttp_request *req, int status, const char *reason,
                    const char *content_type, const char *text)
{
    struct evbuffer *out = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    if (out != NULL)
        evbuffer_add_printf(out, "%s\n", text);
    send_answer(req, status, reason, out);
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

/* ---- the group machine ---------------------------------------------- */

static void on_committed(void *arg, bool ok, const store_apply_result_t *res, const char *err);
static void flush(webhook_t *w);

/* Answers every request of `g` the same way and forgets them. */
static void answer_all(group_t *g, int status, const char *reason, const char *body)
{
    pending_t *p = g->head;
    while (p != NULL) {
        pending_t *next = p->next;
        reply(p->req, status, reason, body);
        free(p);
        p = next;
    }
    g->head = g->tail = NULL;
}

/*
 * The one place a group changes state: looks `ev` up in the transition
 * table and performs its action.  `joining` is the request of an ADD.
 * Entering ANSWERED frees the group.  An impossible pair is a bug.
 */
static void group_dispatch(group_t *g, webhook_group_event_t ev, pending_t *joining)
{
    webhook_group_step_t st = webhook_group_step(g->state, ev);
    webhook_t *w = g->owner;

    if (st.action == WEBHOOK_GROUP_DO_BUG) {
        log_error("event=webhook_group_bug state=%s input=%s requests=%zu",
                  webhook_group_state_name(g->state), webhook_group_event_name(ev), g->n);
        abort();
    }
    g->state = st.next;
    switch (st.action) {
    case WEBHOOK_GROUP_DO_QUEUE:
        if (g->tail != NULL)
            g->tail->next = joining;
        else
            g->head = joining;
        g->tail = joining;
        g->n++;
        return;
    case WEBHOOK_GROUP_DO_APPLY: {
        event_batch_t *b = g->batch;
        g->batch = NULL; /* ownership moves to the store */
        w->open = NULL;
        w->inflight = g;
        /* May report (and so free g) before it returns. */
        store_apply(w->store, b, "webhook", NULL, false, on_committed, g);
        return;
    }
    case WEBHOOK_GROUP_DO_ANSWER_STORED:
    case WEBHOOK_GROUP_DO_ANSWER_RETRY:
        /* Start the next group's commit before answering this one: the
         * database works on it while the answers are written. */
        if (w->inflight == g) {
            w->inflight = NULL;
            flush(w);
        }
        if (st.action == WEBHOOK_GROUP_DO_ANSWER_STORED)
            answer_all(g, 200, "OK", "{\"received\":true}");
        else
            answer_all(g, 503, "Service Unavailable", "{\"error\":\"not stored, retry later\"}");
        break;
    case WEBHOOK_GROUP_DO_ANSWER_CLOSING:
        if (w->open == g)
            w->open = NULL;
        if (w->inflight == g)
            w->inflight = NULL;
        g->owner = NULL;
        answer_all(g, 503, "Service Unavailable", "{\"error\":\"shutting down\"}");
        break;
    case WEBHOOK_GROUP_DO_RELEASE:
    case WEBHOOK_GROUP_DO_BUG:
        break;
    }
    if (g->state == WEBHOOK_GROUP_ANSWERED) {
        event_batch_free(g->batch);
        free(g);
    }
}

static void on_committed(void *arg, bool ok, const store_apply_result_t *res, const char *err)
{
    group_t *g = arg;
    if (!ok)
        log_warn("event=webhook_batch_failed requests=%zu error=%s", g->n, log_q(err));
    else
        log_debug("event=webhook_batch_committed requests=%zu new=%ld", g->n, res->inserted);
    group_dispatch(g, ok ? WEBHOOK_GROUP_EV_COMMITTED : WEBHOOK_GROUP_EV_FAILED, NULL);
}

/* Hands the open group to the store unless one is already committing. */
static void flush(webhook_t *w)
{
    if (w->inflight == NULL && w->open != NULL)
        group_dispatch(w->open, WEBHOOK_GROUP_EV_FLUSH, NULL);
}

/* ---- webhook requests ------------------------------------------------ */

static void reject(struct evhttp_request *req, int status, const char *reason, const char *why,
                   const char *message)
{
    char peer[96];
    log_info("event=webhook_rejected remote=%s status=%d reason=%s",
             log_q(peer_of(req, peer, sizeof(peer))), status, log_q(why));
    reply_error(req, status, reason, message);
}

static void handle_webhook(webhook_t *w, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
    const char *header =
        evhttp_find_header(evhttp_request_get_input_headers(req), "WorkOS-Signature");
    char why[160], reason[64], peer[96];

    if (len > w->cfg->max_body) {
        log_info("event=webhook_rejected remote=%s status=413 reason=body_too_large bytes=%zu",
                 log_q(peer_of(req, peer, sizeof(peer))), len);
        reply_error(req, 413, "Payload Too Large", "body too large");
        return;
    }
    sig_result_t sig = sig_verify(header, body, len, w->cfg->secrets, w->cfg->n_secrets,
                                  clock_wall_ms(), w->cfg->tolerance_ms);
    if (sig != SIG_OK) {
        snprintf(reason, sizeof(reason), "signature_%s", sig_result_name(sig));
        snprintf(why, sizeof(why), "signature %s", sig_result_name(sig));
        reject(req, 401, "Unauthorized", reason, why);
        return;
    }
    cJSON *envelope = event_parse_json(body, len, why, sizeof(why));
    /* From here on the parsed envelope is all that is needed: the raw
     * body goes now rather than when the request is answered. */
    evbuffer_drain(in, len);
    if (envelope == NULL) {
        reject(req, 400, "Bad Request", "invalid_json", why);
        return;
    }
    char id[128], type[128];
    event_peek(envelope, id, sizeof(id), type, sizeof(type));
    if (!event_has_data(envelope)) {
        /* The poller keeps such an event in the log; a webhook sender can
         * be told, and nothing is stored. */
        cJSON_Delete(envelope);
        reject(req, 400, "Bad Request", "no_data", "event has no data");
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
    /* Everything a successful add needs is allocated first: the add
     * consumes the envelope, and an accepted event must not be lost. */
    group_t *fresh = NULL;
    pending_t *p = calloc(1, sizeof(*p));
    if (p != NULL && w->open == NULL && (fresh = calloc(1, sizeof(*fresh))) != NULL &&
        (fresh->batch = event_batch_new()) == NULL) {
        free(fresh);
        fresh = NULL;
    }
    if (p == NULL || (w->open == NULL && fresh == NULL)) {
        free(p);
        cJSON_Delete(envelope);
        reply_error(req, 503, "Service Unavailable", "out of memory");
        return;
    }
    event_batch_t *batch = fresh != NULL ? fresh->batch : w->open->batch;
    switch (event_batch_add(batch, envelope, why, sizeof(why))) {
    case EVENT_INVALID:
        /* Nothing of it is in the batch, and a group it would have
         * opened never exists. */
        if (fresh != NULL)
            event_batch_free(fresh->batch);
        free(fresh);
        free(p);
        log_info("event=webhook_rejected remote=%s id=%s type=%s status=400 reason=%s",
                 log_q(peer_of(req, peer, sizeof(peer))), log_q(id), log_q(type), log_q(why));
        reply_error(req, 400, "Bad Request", why);
        return;
    case EVENT_NOMEM:
        if (fresh != NULL)
            event_batch_free(fresh->batch);
        free(fresh);
        free(p);
        reply_error(req, 503, "Service Unavailable", "out of memory");
        return;
    case EVENT_MALFORMED:
        log_warn("event=malformed_event remote=%s id=%s type=%s source=webhook reason=%s "
                 "note=\"kept in the log only\"",
                 log_q(peer_of(req, peer, sizeof(peer))), log_q(id), log_q(type), log_q(why));
        break;
    case EVENT_UNKNOWN:
    case EVENT_OK:
        break;
    }
    if (fresh != NULL) {
        fresh->state = WEBHOOK_GROUP_OPEN;
        fresh->owner = w;
        w->open = fresh;
    }
    /* Keep the request alive past a client hang-up until we answer it. */
    evhttp_request_own(req);
    p->req = req;
    w->open->bytes += len;
    group_dispatch(w->open, WEBHOOK_GROUP_EV_ADD, p);
    flush(w);
}

static void sweep_connections(webhook_t *w);

static void handle_metrics(webhook_t *w, struct evhttp_request *req)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sweep_connections(w);
    metrics_gauges_t g = {.now_ms = clock_wall_ms(), .webhook_connections = w->connections};
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
    send_answer(req, 200, "OK", out);
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
    const char *method;

    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_POST:
        method = "POST";
        break;
    case EVHTTP_REQ_GET:
        method = "GET";
        break;
    case EVHTTP_REQ_HEAD:
        method = "HEAD";
        break;
    default:
        method = "";
        break;
    }
    /* The gate has refused most of what is refused here already; this
     * stays the answer for a connection made without it. */
    switch (webhook_route(method, path != NULL ? path : "", w->cfg->webhook_path)) {
    case WEBHOOK_ROUTE_WEBHOOK:
        handle_webhook(w, req);
        return;
    case WEBHOOK_ROUTE_WEBHOOK_METHOD:
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        reply_error(req, 405, "Method Not Allowed", "use POST");
        return;
    case WEBHOOK_ROUTE_NOT_FOUND:
        handle_plain(req, 404, "Not Found", "not found");
        return;
    case WEBHOOK_ROUTE_PROBE_METHOD:
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        handle_plain(req, 405, "Method Not Allowed", "use GET");
        return;
    case WEBHOOK_ROUTE_HEALTHZ:
        handle_plain(req, 200, "OK", "ok");
        return;
    case WEBHOOK_ROUTE_READYZ: {
        char why[256] = "ready";
        bool ready = w->hooks.ready == NULL || w->hooks.ready(w->hooks.arg, why, sizeof(why));
        handle_plain(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", why);
        return;
    }
    case WEBHOOK_ROUTE_METRICS:
        handle_metrics(w, req);
        return;
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
        struct bufferevent **t = realloc(w->tracked, cap * sizeof(struct bufferevent *));
        if (t == NULL)
            return NULL; /* evhttp then makes an untracked one itself */
        w->tracked = t;
        w->cap_tracked = cap;
    }
    (void)base;
    struct bufferevent *bev = webhook_gate_connection(w->gate);
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
 * cannot count or shape.  The gate refuses a Content-Length over max_body
 * from the head already; this limit, a little above it, stays a backstop
 * behind which handle_webhook's own 413 check sits.
 */
static ev_ssize_t body_cap(const config_t *cfg)
{
    return (ev_ssize_t)(cfg->max_body + BODY_CAP_SLACK);
}

static void set_timeout(struct evhttp *http, int64_t ms)
{
    struct timeval tv = clock_timeval(ms);
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

/* The gate's bounds from the config. */
static webhook_gate_limits_t gate_limits(const config_t *cfg)
{
    size_t budget = cfg->max_unverified_bytes != 0 ? cfg->max_unverified_bytes
                                                   : UNVERIFIED_BODIES * cfg->max_body;
    webhook_gate_limits_t lim = {cfg, budget, cfg->request_deadline_ms};
    return lim;
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
    webhook_gate_limits_t lim = gate_limits(cfg);
    w->gate = webhook_gate_new(base, &lim);
    w->http = w->gate != NULL ? evhttp_new(base) : NULL;
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
    struct timeval every = clock_timeval(SWEEP_INTERVAL_MS);
    event_add(w->sweep, &every);
    w->bound = evhttp_bind_socket_with_handle(w->http, host, (ev_uint16_t)port);
    if (w->bound == NULL) {
        snprintf(err, errlen, "[webhook] listen: cannot bind %s", cfg->listen);
        goto fail;
    }
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    memset(&addr, 0, sizeof(addr));
    socklen_t sl = sizeof(addr);
    int bound_port = 0; /* what port 0 picked */
    if (getsockname(evhttp_bound_socket_get_fd(w->bound), &addr.sa, &sl) == 0)
        bound_port = ntohs(addr.sa.sa_family == AF_INET6 ? addr.in6.sin6_port : addr.in.sin_port);
    log_info("event=listening address=%s port=%d path=%s", log_q(host), bound_port,
             log_q(cfg->webhook_path));
    return w;

fail:
    webhook_free(w);
    return NULL;
}

void webhook_set_config(webhook_t *w, const config_t *cfg)
{
    webhook_gate_limits_t lim = gate_limits(cfg);
    w->cfg = cfg;
    webhook_gate_set_limits(w->gate, &lim);
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
    /* Every request is answered while its connection still exists; a
     * group with the store is orphaned and freed when the store reports. */
    if (w->open != NULL)
        group_dispatch(w->open, WEBHOOK_GROUP_EV_CLOSE, NULL);
    if (w->inflight != NULL)
        group_dispatch(w->inflight, WEBHOOK_GROUP_EV_CLOSE, NULL);
    if (w->http != NULL)
        evhttp_free(w->http);
    if (w->sweep != NULL)
        event_free(w->sweep);
    for (size_t i = 0; i < w->n_tracked; i++)
        bufferevent_decref(w->tracked[i]);
    free(w->tracked);
    /* Last: the connections released above were its users. */
    webhook_gate_free(w->gate);
    free(w);
}
