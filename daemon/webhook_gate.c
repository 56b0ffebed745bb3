/*
 * webhook_gate: header-time refusals, the unverified-bytes budget and the
 * whole-request deadline, as a filter bufferevent under evhttp (see
 * webhook_gate.h).
 *
 * Each connection is a small machine (gate_state_t) driven by its input
 * and its timer: HEAD holds bytes until a head is complete and judged;
 * BODY passes a reserved body on; REFUSED, after an answer written here,
 * drops what the client still sends until it closes, LINGER_BYTES have
 * been dropped or LINGER_MS have passed, then closes the connection.
 */
#include "webhook_gate.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <event2/buffer.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "webhook_head.h"

/* After a refusal: how long, and how many bytes, the rest of a request is
 * read and dropped so that the client sees the answer rather than a reset. */
#define LINGER_MS 500
#define LINGER_BYTES ((size_t)64 * 1024)
/* The socket is not read further while this much waits for the gate. */
#define SOCKET_READ_HIGH (WEBHOOK_HEAD_MAX + 4096)

typedef enum gate_state {
    GATE_HEAD,    /* collecting a request head; nothing of it passed on yet */
    GATE_BODY,    /* the head passed; passing its reserved body on */
    GATE_REFUSED, /* answered here; dropping input until the connection goes */
} gate_state_t;

struct webhook_gate {
    struct event_base *base;
    webhook_gate_limits_t lim;
    size_t unverified; /* sum of every connection's `reserved` */
    size_t refs;       /* 1 for the owner, plus 1 per connection not yet finalized */
};

typedef struct gate_conn {
    webhook_gate_t *gate;
    struct bufferevent *filter; /* what evhttp reads and writes */
    struct bufferevent *sock;   /* the socket under it */
    struct event *timer;        /* the request's deadline, or the linger */
    struct event *kick;         /* pushes an answer evhttp queued, see on_output_added */
    gate_state_t state;
    size_t remaining; /* BODY: body bytes still to pass on */
    size_t reserved;  /* of the gate's unverified budget */
    size_t dropped;   /* REFUSED: bytes read and dropped */
} gate_conn_t;

static void release(gate_conn_t *c)
{
    c->gate->unverified -= c->reserved;
    c->reserved = 0;
}

static void arm(gate_conn_t *c, int64_t ms)
{
    struct timeval tv = clock_timeval(ms);
    evtimer_add(c->timer, &tv);
}

/* Makes evhttp drop the connection, as if the client had closed it. */
static void close_connection(gate_conn_t *c)
{
    release(c);
    evtimer_del(c->timer);
    c->state = GATE_REFUSED;
    bufferevent_trigger_event(c->filter, BEV_EVENT_READING | BEV_EVENT_EOF,
                              BEV_TRIG_DEFER_CALLBACKS);
}

static const char *peer_of(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "-";
    unsigned port = 0;
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(buf, len, "%s:%u", host, port);
    return buf;
}

/*
 * Answers `v` now and moves to REFUSED.  The answer is small and nothing
 * else is queued on the connection, so it goes straight to the socket;
 * when something is queued (an earlier answer still being written) the
 * connection is only closed.
 */
static void refuse(gate_conn_t *c, const webhook_verdict_t *v, bool head_only)
{
    int fd = bufferevent_getfd(c->sock);
    char peer[96], text[256], out[768];

    log_info("event=webhook_rejected remote=%s status=%d reason=%s stage=head",
             log_q(peer_of(fd, peer, sizeof(peer))), v->status, v->log_key);
    if (v->counted)
        metrics_webhook_response(v->status);
    if (v->json)
        snprintf(text, sizeof(text), "{\"error\":\"%s\"}\n", v->message);
    else
        snprintf(text, sizeof(text), "%s\n", v->message);
    int n =
        snprintf(out, sizeof(out),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%s"
                 "Connection: close\r\n\r\n%s",
                 v->status, v->reason, v->json ? "application/json" : "text/plain", strlen(text),
                 v->allow != NULL ? "Allow: " : "", v->allow != NULL ? v->allow : "",
                 v->allow != NULL ? "\r\n" : "", head_only ? "" : text);
    bool idle = evbuffer_get_length(bufferevent_get_output(c->filter)) == 0 &&
                evbuffer_get_length(bufferevent_get_output(c->sock)) == 0;
    if (fd >= 0 && idle && n > 0 && (size_t)n < sizeof(out)) {
        /* A short write only cuts the answer; the connection closes anyway. */
        if (send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
            shutdown(fd, SHUT_WR);
    }
    release(c);
    c->state = GATE_REFUSED;
    evtimer_del(c->timer);
    arm(c, LINGER_MS);
}

static void drop_input(gate_conn_t *c, struct evbuffer *src)
{
    size_t n = evbuffer_get_length(src);
    evbuffer_drain(src, n);
    c->dropped += n;
    if (c->dropped > LINGER_BYTES)
        close_connection(c);
}

/* HEAD: judge a complete head; pass it on, or answer and refuse. */
static enum bufferevent_filter_result on_head(gate_conn_t *c, struct evbuffer *src,
                                              struct evbuffer *dst)
{
    size_t have = evbuffer_get_length(src);
    if (have == 0)
        return BEV_NEED_MORE;
    if (!evtimer_pending(c->timer, NULL))
        arm(c, c->gate->lim.request_deadline_ms);
    size_t look = have < WEBHOOK_HEAD_MAX ? have : WEBHOOK_HEAD_MAX;
    const char *buf = (const char *)evbuffer_pullup(src, (ev_ssize_t)look);
    size_t end = buf != NULL ? webhook_head_end(buf, look) : 0;
    webhook_head_t h = {.content_length = -1};
    webhook_verdict_t v = {.status = 400,
                           .reason = "Bad Request",
                           .message = "bad request",
                           .log_key = "bad_head",
                           .counted = true};

    if (end == 0) {
        if (have < WEBHOOK_HEAD_MAX)
            return BEV_NEED_MORE;
        v.status = 431;
        v.reason = "Request Header Fields Too Large";
        v.message = "request head too large";
        v.log_key = "head_too_large";
        refuse(c, &v, false);
        drop_input(c, src);
        return BEV_NEED_MORE;
    }
    if (webhook_head_parse(buf, end, &h)) {
        const config_t *cfg = c->gate->lim.cfg;
        webhook_head_limits_t lim = {
            .webhook_path = cfg->webhook_path,
            .max_body = cfg->max_body,
            .tolerance_ms = cfg->tolerance_ms,
            .now_ms = clock_wall_ms(),
            .unverified = c->gate->unverified,
            .max_unverified = c->gate->lim.max_unverified,
        };
        v = webhook_head_verdict(&h, &lim);
    }
    if (v.status != 0) {
        refuse(c, &v, strcmp(h.method, "HEAD") == 0);
        drop_input(c, src);
        return BEV_NEED_MORE;
    }
    evbuffer_remove_buffer(src, dst, end);
    if (v.body == 0) {
        evtimer_del(c->timer);
        return BEV_OK;
    }
    c->state = GATE_BODY;
    c->remaining = v.body;
    c->reserved = v.body;
    c->gate->unverified += v.body;
    return BEV_OK;
}

/* BODY: pass on what arrived; a complete body gives back its reservation,
 * since evhttp's handler verifies it in this same turn of the loop. */
static enum bufferevent_filter_result on_body(gate_conn_t *c, struct evbuffer *src,
                                              struct evbuffer *dst)
{
    size_t n = evbuffer_get_length(src);
    if (n > c->remaining)
        n = c->remaining;
    if (n == 0)
        return BEV_NEED_MORE;
    evbuffer_remove_buffer(src, dst, n);
    c->remaining -= n;
    if (c->remaining == 0) {
        release(c);
        evtimer_del(c->timer);
        c->state = GATE_HEAD;
    }
    return BEV_OK;
}

static enum bufferevent_filter_result gate_input(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                 void *arg)
{
    gate_conn_t *c = arg;
    (void)limit;
    (void)mode;
    switch (c->state) {
    case GATE_HEAD:
        return on_head(c, src, dst);
    case GATE_BODY:
        return on_body(c, src, dst);
    case GATE_REFUSED:
        drop_input(c, src);
        return BEV_NEED_MORE;
    }
    log_error("event=webhook_gate_bug state=%d", (int)c->state);
    abort();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    gate_conn_t *c = arg;
    bufferevent_event_cb eventcb = NULL;
    (void)fd;
    (void)what;
    bufferevent_getcb(c->filter, NULL, NULL, &eventcb, NULL);
    if (eventcb == NULL)
        return; /* evhttp has already let the connection go */
    switch (c->state) {
    case GATE_HEAD:
    case GATE_BODY: {
        char peer[96];
        log_info("event=webhook_request_deadline remote=%s stage=%s",
                 log_q(peer_of(bufferevent_getfd(c->sock), peer, sizeof(peer))),
                 c->state == GATE_HEAD ? "head" : "body");
        close_connection(c);
        return;
    }
    case GATE_REFUSED:
        close_connection(c);
        return;
    }
    log_error("event=webhook_gate_bug state=%d", (int)c->state);
    abort();
}

/*
 * Output.  evhttp queues an answer while writing is disabled and enables
 * it just after, and a filter only moves output when data is added, so
 * the answer would wait for the next write.  A queued answer schedules a
 * flush for the next turn of the loop, when writing is enabled.
 */
static void on_output_added(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    gate_conn_t *c = arg;
    (void)buf;
    if (info->n_added > 0)
        event_active(c->kick, 0, 1);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    gate_conn_t *c = arg;
    bufferevent_event_cb eventcb = NULL;
    (void)fd;
    (void)what;
    bufferevent_getcb(c->filter, NULL, NULL, &eventcb, NULL);
    if (eventcb != NULL && bufferevent_flush(c->filter, EV_WRITE, BEV_NORMAL) < 0)
        close_connection(c);
}

/*
 * evhttp takes an answer as sent once the filter has passed it on, and may
 * then shut the socket down (Connection: close): so what is passed on is
 * written to the socket at once, as far as it takes it; the rest follows
 * when the socket is writable.
 */
static enum bufferevent_filter_result gate_output(struct evbuffer *src, struct evbuffer *dst,
                                                  ev_ssize_t limit,
                                                  enum bufferevent_flush_mode mode, void *arg)
{
    gate_conn_t *c = arg;
    int fd = bufferevent_getfd(c->sock);
    (void)limit;
    (void)mode;
    evbuffer_add_buffer(dst, src);
    if (fd >= 0 && evbuffer_get_length(dst) > 0)
        (void)evbuffer_write(dst, fd); /* EAGAIN: the socket's write event sends the rest */
    return BEV_OK;
}

/* Drops one reference; the last one frees the gate. */
static void gate_unref(webhook_gate_t *g)
{
    if (--g->refs == 0)
        free(g);
}

/* The filter's finalizer.  libevent may run it after the owner freed the
 * gate (deferred, as late as event_base_free), hence the reference. */
static void free_conn(void *arg)
{
    gate_conn_t *c = arg;
    release(c);
    event_free(c->timer);
    event_free(c->kick);
    gate_unref(c->gate);
    free(c);
}

webhook_gate_t *webhook_gate_new(struct event_base *base, const webhook_gate_limits_t *limits)
{
    webhook_gate_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->base = base;
    g->lim = *limits;
    g->refs = 1;
    return g;
}

void webhook_gate_set_limits(webhook_gate_t *g, const webhook_gate_limits_t *limits)
{
    g->lim = *limits;
}

struct bufferevent *webhook_gate_connection(webhook_gate_t *g)
{
    gate_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->gate = g;
    c->state = GATE_HEAD;
    c->timer = evtimer_new(g->base, on_timer, c);
    c->kick = event_new(g->base, -1, 0, on_kick, c);
    c->sock = bufferevent_socket_new(g->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->timer == NULL || c->kick == NULL || c->sock == NULL)
        goto fail;
    bufferevent_setwatermark(c->sock, EV_READ, 0, SOCKET_READ_HIGH);
    c->filter = bufferevent_filter_new(c->sock, gate_input, gate_output, BEV_OPT_CLOSE_ON_FREE,
                                       free_conn, c);
    if (c->filter == NULL)
        goto fail;
    g->refs++; /* from here on free_conn releases it */
    if (evbuffer_add_cb(bufferevent_get_output(c->filter), on_output_added, c) == NULL) {
        bufferevent_free(c->filter); /* frees the socket's and calls free_conn */
        return NULL;
    }
    return c->filter;

fail:
    if (c->sock != NULL)
        bufferevent_free(c->sock);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->kick != NULL)
        event_free(c->kick);
    free(c);
    return NULL;
}

size_t webhook_gate_unverified(const webhook_gate_t *g)
{
    return g->unverified;
}

void webhook_gate_free(webhook_gate_t *g)
{
    if (g != NULL)
        gate_unref(g);
}
