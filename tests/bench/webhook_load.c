/*
 * webhook-load: load generator for the daemon's webhook receiver.  It POSTs
 * unique, correctly signed `user.updated` events over keep-alive HTTP/1.1
 * connections (requests written by hand on libevent bufferevents, answers
 * parsed just far enough to read the status and skip the body) and reports
 * throughput and latency of the 2xx answers as key=value lines.  Closed
 * loop (--concurrency N): N connections, each sending its next request as
 * soon as the previous answer is complete.  Open loop (--rate R): request n
 * is due at start + n/R seconds whatever the answers do, and its latency is
 * counted from that due time, so time spent waiting for a free connection
 * or for the server counts as it would for a real sender; connections are
 * opened on demand up to --connections so the generator does not cap the
 * rate.  Latencies go into a log-linear histogram of fixed size, so memory
 * does not grow with the run.  Any answer other than 2xx, and any failed,
 * dropped or timed-out request (warm-up included), makes the exit status 1,
 * as does a run without a single 2xx; bad usage exits 2.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

#include "signature.h"

#define MAX_HEAD 16384              /* larger response heads are a protocol error */
#define IDLE_RETIRE_NS 5000000000LL /* the daemon cuts idle clients after 10 s */
#define RECONNECT_DELAY_MS 50       /* pause after a failed connection */
#define MAX_CONCURRENCY 10000

/* Log-linear histogram of latencies in microseconds: values below
 * HIST_LINEAR are exact, larger ones fall into HIST_SUB buckets per power
 * of two (relative error under 0.2%), up to UINT32_MAX us. */
#define HIST_SUB 512u
#define HIST_LINEAR (2u * HIST_SUB)
#define HIST_BUCKETS (HIST_LINEAR + 22u * HIST_SUB)

typedef enum phase {
    PHASE_WARMUP,   /* sent (closed) or due (open) before the warm-up ended */
    PHASE_MEASURED, /* counted in the results */
    N_PHASES
} phase_t;

typedef enum err_kind {
    ERR_CONNECT,  /* could not connect */
    ERR_TIMEOUT,  /* no complete answer within --timeout */
    ERR_CLOSED,   /* connection closed or reset with a request outstanding */
    ERR_PROTOCOL, /* the answer was not parsable HTTP/1.x */
    ERR_UNSENT,   /* open loop: due, but never sent before the run gave up */
    N_ERR_KINDS
} err_kind_t;

static const char *const err_names[N_ERR_KINDS] = {"connect", "timeout", "closed", "protocol",
                                                   "unsent"};

typedef struct stats {
    uint64_t sent, ok, non2xx, errors;
    uint64_t status[600];
    uint64_t err[N_ERR_KINDS];
    uint64_t hist[HIST_BUCKETS];
    uint64_t max_us;
    int64_t last_answer_ns;
} stats_t;

typedef struct load load_t;

typedef enum conn_state {
    CONN_CONNECTING, /* TCP connect in progress */
    CONN_IDLE,       /* connected, nothing outstanding */
    CONN_BUSY,       /* one request written, its answer not complete yet */
} conn_state_t;

typedef struct conn {
    load_t *L;
    struct bufferevent *bev;
    conn_state_t state;
    size_t all_ix; /* index in L->all */
    int64_t idle_since;
    /* the outstanding request */
    int64_t start_ns; /* latency origin: send time (closed) or due time (open) */
    phase_t phase;
    /* the answer being read */
    bool have_head;
    int status;
    size_t body_left;
    bool close_after;
} conn_t;

struct load {
    /* options */
    const char *url;
    const char *secret;
    char run_id[64];
    bool open_loop;
    unsigned concurrency;
    uint64_t rate;
    unsigned max_conns;
    int64_t warmup_ns, duration_ns, timeout_ns;
    unsigned users;
    /* target */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char hostport[300];
    char path[1024];
    /* loop */
    struct event_base *base;
    struct event *tick, *stop, *deadline, *sweep, *sigint;
    int64_t t0, warmup_end, end;
    conn_t **all;
    size_t n_all;
    conn_t **idle; /* open loop: a stack, most recently idle on top */
    size_t n_idle;
    conn_t **retired; /* scratch for on_sweep */
    size_t n_busy;
    size_t n_connecting;
    bool ended;   /* no new closed-loop requests, no new due requests */
    bool closing; /* giving up: no new connections at all */
    bool in_dispatch;
    int64_t no_connect_until; /* open loop: pause after a failed connection */
    bool connect_failing;     /* open loop: one attempt at a time until one succeeds */
    uint64_t next_seq; /* next event number; in open loop also the next due request to send */
    uint64_t due_n;    /* open loop: requests due so far */
    uint64_t total_due;
    size_t peak_conns;
    uint64_t peak_backlog;
    int64_t max_send_lag_ns;
    char created_iso[40];
    stats_t st[N_PHASES];
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timeval ns_to_tv(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000LL),
                         .tv_usec = (suseconds_t)((ns % 1000000000LL) / 1000)};
    return tv;
}

/* "2026-01-02T03:04:05.678Z" for a wall-clock time. */
static void iso_ms(char *out, size_t len, const struct timespec *ts)
{
    struct tm tm;
    char date[32] = "";
    gmtime_r(&ts->tv_sec, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03uZ", date, (unsigned)(ts->tv_nsec / 1000000) % 1000u);
}

/* ---- histogram ----------------------------------------------------------- */

static size_t hist_index(uint64_t us)
{
    if (us > UINT32_MAX)
        us = UINT32_MAX;
    if (us < HIST_LINEAR)
        return (size_t)us;
    unsigned shift = 1;
    while ((us >> shift) >= HIST_LINEAR)
        shift++;
    return HIST_LINEAR + (shift - 1) * HIST_SUB + (size_t)((us >> shift) - HIST_SUB);
}

/* The largest value that lands in bucket i. */
static uint64_t hist_bucket_high(size_t i)
{
    if (i < HIST_LINEAR)
        return i;
    size_t j = i - HIST_LINEAR;
    unsigned shift = (unsigned)(j / HIST_SUB) + 1;
    uint64_t top = j % HIST_SUB + HIST_SUB;
    return ((top + 1) << shift) - 1;
}

/* The latency at or below which `permille`/1000 of the 2xx answers fall, in ms. */
static double hist_quantile_ms(const stats_t *s, uint64_t permille)
{
    if (s->ok == 0)
        return 0.0;
    uint64_t rank = (s->ok * permille + 999) / 1000;
    if (rank == 0)
        rank = 1;
    uint64_t acc = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        acc += s->hist[i];
        if (acc >= rank) {
            uint64_t v = hist_bucket_high(i);
            return (double)(v < s->max_us ? v : s->max_us) / 1000.0;
        }
    }
    return (double)s->max_us / 1000.0;
}

/* ---- connections ------------------------------------------------------------ */

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void dispatch(load_t *L);
static void conn_available(conn_t *c);

static phase_t phase_at(const load_t *L, int64_t t)
{
    return t >= L->warmup_end ? PHASE_MEASURED : PHASE_WARMUP;
}

static void count_error(load_t *L, phase_t ph, err_kind_t kind)
{
    L->st[ph].errors++;
    L->st[ph].err[kind]++;
}

static void maybe_finish(load_t *L)
{
    if (!L->ended || L->n_busy > 0)
        return;
    if (L->open_loop && L->next_seq < L->total_due)
        return;
    event_base_loopbreak(L->base);
}

static void idle_remove(load_t *L, const conn_t *c)
{
    for (size_t i = L->n_idle; i-- > 0;) {
        if (L->idle[i] == c) {
            memmove(&L->idle[i], &L->idle[i + 1], (L->n_idle - i - 1) * sizeof(*L->idle));
            L->n_idle--;
            return;
        }
    }
}

static void on_reopen(evutil_socket_t fd, short what, void *arg);

/* Closed loop: opens a replacement connection soon (after a pause when the
 * last one failed), unless the run is over. */
static void schedule_reopen(load_t *L, bool failed)
{
    if (L->ended || L->closing || mono_ns() >= L->end)
        return;
    struct timeval tv = {0, failed ? RECONNECT_DELAY_MS * 1000 : 0};
    if (event_base_once(L->base, -1, EV_TIMEOUT, on_reopen, L, &tv) != 0) {
        fprintf(stderr, "webhook-load: cannot schedule a reconnection\n");
        event_base_loopbreak(L->base);
    }
}

/* Closes c.  `failed` says whether the closing was an error of the
 * connection itself; an outstanding request is counted as failed with
 * `kind` in any case.  Closed loop: a replacement is opened (after a
 * pause when the connection failed) so the concurrency holds. */
static void conn_close(conn_t *c, bool failed, err_kind_t kind)
{
    load_t *L = c->L;
    switch (c->state) {
    case CONN_CONNECTING:
        L->n_connecting--;
        break;
    case CONN_IDLE:
        idle_remove(L, c);
        break;
    case CONN_BUSY:
        L->n_busy--;
        count_error(L, c->phase, kind);
        failed = true;
        break;
    }
    L->all[c->all_ix] = L->all[L->n_all - 1];
    L->all[c->all_ix]->all_ix = c->all_ix;
    L->all[--L->n_all] = NULL;
    bufferevent_free(c->bev);
    free(c);
    if (failed && L->open_loop) {
        L->no_connect_until = mono_ns() + RECONNECT_DELAY_MS * 1000000LL;
        L->connect_failing = true;
    }
    if (!L->open_loop)
        schedule_reopen(L, failed);
    else
        dispatch(L);
    maybe_finish(L);
}

/* Opens one connection; false (counted as a connect error) when even the
 * attempt could not start. */
static bool conn_open(load_t *L)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto fail;
    c->L = L;
    c->bev = bufferevent_socket_new(L->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        goto fail;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    struct timeval tv = ns_to_tv(L->timeout_ns);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* Callbacks run from the loop, never from here (an immediate refusal
     * is reported through on_event), so c is registered afterwards. */
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&L->addr, (int)L->addrlen) != 0)
        goto fail;
    c->state = CONN_CONNECTING;
    c->all_ix = L->n_all;
    L->all[L->n_all++] = c;
    L->n_connecting++;
    if (L->n_all > L->peak_conns)
        L->peak_conns = L->n_all;
    return true;

fail:
    if (c != NULL && c->bev != NULL)
        bufferevent_free(c->bev);
    free(c);
    count_error(L, phase_at(L, mono_ns()), ERR_CONNECT);
    if (L->open_loop) {
        L->no_connect_until = mono_ns() + RECONNECT_DELAY_MS * 1000000LL;
        L->connect_failing = true;
    } else
        schedule_reopen(L, true);
    return false;
}

static void on_reopen(evutil_socket_t fd, short what, void *arg)
{
    load_t *L = arg;
    (void)fd;
    (void)what;
    if (!L->ended && !L->closing && mono_ns() < L->end)
        (void)conn_open(L);
}

/* Writes request number `seq` on c. */
static void conn_send(conn_t *c, uint64_t seq, int64_t start_ns, int64_t now)
{
    load_t *L = c->L;
    struct timespec wall;
    char now_iso[40];
    char body[1024];
    char sig[SIG_HEADER_MAX];
    char req[2048];

    clock_gettime(CLOCK_REALTIME, &wall);
    iso_ms(now_iso, sizeof(now_iso), &wall);
    int blen = snprintf(body, sizeof(body),
                        "{\"object\":\"event\",\"id\":\"evt_bench_%s_%" PRIu64 "\","
                        "\"event\":\"user.updated\",\"created_at\":\"%s\","
                        "\"data\":{\"object\":\"user\",\"id\":\"user_bench_%" PRIu64 "\","
                        "\"email\":\"u%" PRIu64 "@bench.test\",\"first_name\":\"Bench\","
                        "\"last_name\":\"User\",\"email_verified\":true,"
                        "\"created_at\":\"%s\",\"updated_at\":\"%s\"}}",
                        L->run_id, seq, now_iso, seq % L->users, seq, L->created_iso, now_iso);
    int64_t t_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    if (blen < 0 || (size_t)blen >= sizeof(body) ||
        !sig_sign(L->secret, t_ms, body, (size_t)blen, sig, sizeof(sig))) {
        fprintf(stderr, "webhook-load: cannot build or sign a request\n");
        exit(2);
    }
    int rlen = snprintf(req, sizeof(req),
                        "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nWorkOS-Signature: %s\r\n\r\n%s",
                        L->path, L->hostport, blen, sig, body);
    if (rlen < 0 || (size_t)rlen >= sizeof(req)) {
        fprintf(stderr, "webhook-load: request too large\n");
        exit(2);
    }
    c->phase = phase_at(L, start_ns);
    c->start_ns = start_ns;
    c->have_head = false;
    c->status = 0;
    c->body_left = 0;
    c->close_after = false;
    c->state = CONN_BUSY;
    L->n_busy++;
    L->st[c->phase].sent++;
    if (now - start_ns > L->max_send_lag_ns && c->phase == PHASE_MEASURED)
        L->max_send_lag_ns = now - start_ns;
    struct timeval tv = ns_to_tv(L->timeout_ns);
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    if (bufferevent_write(c->bev, req, (size_t)rlen) != 0)
        conn_close(c, true, ERR_CLOSED);
}

static int64_t due_time(const load_t *L, uint64_t n)
{
    return L->t0 + (int64_t)(n * 1000000000ULL / L->rate);
}

/* Open loop: hands due requests to idle connections, and opens more
 * connections when requests wait and the pool may grow. */
static void dispatch(load_t *L)
{
    if (L->in_dispatch || L->closing)
        return; /* re-entered from conn_close, or giving up */
    L->in_dispatch = true;
    int64_t now = mono_ns();
    while (L->next_seq < L->due_n && L->n_idle > 0) {
        conn_t *c = L->idle[--L->n_idle];
        uint64_t n = L->next_seq++;
        conn_send(c, n, due_time(L, n), now);
    }
    uint64_t backlog = L->due_n - L->next_seq;
    if (backlog > L->peak_backlog)
        L->peak_backlog = backlog;
    while (backlog > L->n_connecting && L->n_all < L->max_conns && now >= L->no_connect_until &&
           !(L->connect_failing && L->n_connecting > 0)) {
        if (!conn_open(L))
            break;
    }
    L->in_dispatch = false;
}

/* c has just become free: connected, or its answer is complete. */
static void conn_available(conn_t *c)
{
    load_t *L = c->L;
    int64_t now = mono_ns();
    c->state = CONN_IDLE;
    c->idle_since = now;
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    if (!L->open_loop) {
        if (L->ended || now >= L->end) {
            conn_close(c, false, ERR_CLOSED);
            return;
        }
        conn_send(c, L->next_seq++, now, now);
        return;
    }
    if (L->ended && L->next_seq >= L->total_due) {
        conn_close(c, false, ERR_CLOSED);
        return;
    }
    L->idle[L->n_idle++] = c;
    dispatch(L);
}

/* Records the answer now complete on c. */
static void answer_done(conn_t *c)
{
    load_t *L = c->L;
    int64_t now = mono_ns();
    stats_t *s = &L->st[c->phase];
    L->n_busy--;
    s->last_answer_ns = now;
    if (c->status >= 200 && c->status <= 299) {
        uint64_t us = (uint64_t)(now - c->start_ns) / 1000;
        s->ok++;
        s->hist[hist_index(us)]++;
        if (us > s->max_us)
            s->max_us = us;
    } else {
        s->non2xx++;
        s->status[c->status >= 100 && c->status < 600 ? c->status : 0]++;
    }
    if (c->close_after) {
        c->state = CONN_IDLE; /* not in the idle list: conn_close finds nothing to remove */
        conn_close(c, false, ERR_CLOSED);
        return;
    }
    conn_available(c);
}

/* Case-insensitive "name:" at the start of a header line of length n;
 * returns the value with leading blanks skipped, or NULL. */
static const char *header_value(const char *line, size_t n, const char *name, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return NULL;
    const char *v = line + k + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *vlen = (size_t)(end - v);
    return v;
}

/* Parses a response head (status line and headers, CRLF CRLF included) of
 * length n into c; false when it is not one we can follow. */
static bool parse_head(conn_t *c, const char *h, size_t n)
{
    if (n < 12 || memcmp(h, "HTTP/1.", 7) != 0 || (h[7] != '0' && h[7] != '1') || h[8] != ' ')
        return false;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return false;
        status = status * 10 + (h[i] - '0');
    }
    c->status = status;
    c->close_after = h[7] == '0';
    bool have_length = false;
    const char *p = memchr(h, '\n', n);
    const char *end = h + n;
    while (p != NULL && p + 1 < end) {
        const char *line = p + 1;
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            break;
        size_t len = (size_t)(nl - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        size_t vlen;
        const char *v;
        if ((v = header_value(line, len, "Content-Length", &vlen)) != NULL) {
            size_t cl = 0;
            if (vlen == 0 || vlen > 9)
                return false;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return false;
                cl = cl * 10 + (size_t)(v[i] - '0');
            }
            c->body_left = cl;
            have_length = true;
        } else if (header_value(line, len, "Transfer-Encoding", &vlen) != NULL) {
            return false; /* the daemon never chunks its short answers */
        } else if ((v = header_value(line, len, "Connection", &vlen)) != NULL) {
            if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
                c->close_after = true;
            else if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0)
                c->close_after = false;
        }
        p = nl;
    }
    if (!have_length && status != 204 && status != 304 && status >= 200)
        return false;
    return status >= 200; /* no interim answers are expected */
}

static void on_read(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (c->state != CONN_BUSY) {
        if (evbuffer_get_length(in) > 0)
            conn_close(c, true, ERR_PROTOCOL);
        return;
    }
    if (!c->have_head) {
        struct evbuffer_ptr at = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (at.pos < 0) {
            if (evbuffer_get_length(in) > MAX_HEAD)
                conn_close(c, true, ERR_PROTOCOL);
            return;
        }
        size_t hlen = (size_t)at.pos + 4;
        const char *h = (const char *)evbuffer_pullup(in, (ev_ssize_t)hlen);
        if (h == NULL || hlen > MAX_HEAD || !parse_head(c, h, hlen)) {
            conn_close(c, true, ERR_PROTOCOL);
            return;
        }
        evbuffer_drain(in, hlen);
        c->have_head = true;
    }
    if (evbuffer_get_length(in) < c->body_left)
        return;
    evbuffer_drain(in, c->body_left);
    c->body_left = 0;
    if (evbuffer_get_length(in) > 0) {
        /* Bytes beyond the answer to our only request. */
        conn_close(c, true, ERR_PROTOCOL);
        return;
    }
    answer_done(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn_t *c = arg;
    load_t *L = c->L;

    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        evutil_socket_t fd = bufferevent_getfd(bev);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        L->n_connecting--;
        L->connect_failing = false;
        conn_available(c);
        return;
    }
    switch (c->state) {
    case CONN_CONNECTING:
        count_error(L, phase_at(L, mono_ns()), ERR_CONNECT);
        conn_close(c, true, ERR_CONNECT);
        break;
    case CONN_IDLE:
        /* The server may close a connection it has no request on. */
        conn_close(c, false, ERR_CLOSED);
        break;
    case CONN_BUSY:
        conn_close(c, true, (what & BEV_EVENT_TIMEOUT) ? ERR_TIMEOUT : ERR_CLOSED);
        break;
    }
}

/* ---- timers ----------------------------------------------------------------- */

/* Open loop: counts the requests that have come due, hands them out, and
 * sleeps until the next one is due. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    load_t *L = arg;
    (void)fd;
    (void)what;
    int64_t now = mono_ns();
    while (L->due_n < L->total_due && due_time(L, L->due_n) <= now)
        L->due_n++;
    dispatch(L);
    if (L->due_n < L->total_due) {
        struct timeval tv = ns_to_tv(due_time(L, L->due_n) - mono_ns());
        evtimer_add(L->tick, &tv);
    }
}

/* End of the run: no new closed-loop requests; close what has nothing left. */
static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    load_t *L = arg;
    (void)fd;
    (void)what;
    L->ended = true;
    if (L->open_loop) {
        if (L->total_due > L->due_n && mono_ns() < L->end) {
            L->total_due = L->due_n; /* stopped early (SIGINT) */
            evtimer_del(L->tick);
        }
    }
    for (size_t i = L->n_all; i-- > 0;) {
        conn_t *c = L->all[i];
        if (c->state == CONN_CONNECTING ||
            (c->state == CONN_IDLE && (!L->open_loop || L->next_seq >= L->total_due)))
            conn_close(c, false, ERR_CLOSED);
    }
    maybe_finish(L);
}

/* Ends everything: requests never sent count as errors, outstanding ones
 * as timeouts, and every connection is closed. */
static void give_up(load_t *L)
{
    L->ended = true;
    L->closing = true;
    while (L->open_loop && L->next_seq < L->total_due) {
        count_error(L, phase_at(L, due_time(L, L->next_seq++)), ERR_UNSENT);
    }
    L->due_n = L->total_due;
    while (L->n_all > 0)
        conn_close(L->all[L->n_all - 1], true, ERR_TIMEOUT);
}

/* Gives up on what is still outstanding well after the end. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    load_t *L = arg;
    (void)fd;
    (void)what;
    give_up(L);
    event_base_loopbreak(L->base);
}

/* Open loop: closes connections idle for long, before the server does it
 * under a request we are about to send. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    load_t *L = arg;
    (void)fd;
    (void)what;
    int64_t now = mono_ns();
    size_t k = 0;
    /* The idle stack is oldest first. */
    while (k < L->n_idle && now - L->idle[k]->idle_since > IDLE_RETIRE_NS)
        k++;
    if (k == 0)
        return;
    memcpy(L->retired, L->idle, k * sizeof(*L->idle));
    memmove(L->idle, L->idle + k, (L->n_idle - k) * sizeof(*L->idle));
    L->n_idle -= k;
    for (size_t i = 0; i < k; i++)
        conn_close(L->retired[i], false, ERR_CLOSED); /* no longer in the idle list */
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    load_t *L = arg;
    (void)fd;
    (void)what;
    if (L->ended) {
        event_base_loopbreak(L->base);
        return;
    }
    fprintf(stderr, "webhook-load: interrupted, finishing\n");
    event_del(L->stop);
    on_stop(-1, 0, L);
}

/* ---- set-up and report ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: webhook-load --url URL (--concurrency N | --rate R) [--duration S (10)]\n"
               "                    [--warmup S (0)] [--secret SECRET] [--connections N (256)]\n"
               "                    [--timeout S (10)] [--run ID] [--users N (5000)]\n"
               "The secret may instead come from $WORKOS_WEBHOOK_SECRET.\n");
}

static bool parse_seconds(const char *s, double min, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* Bounded so that n * 1e9 and t * rate stay within 64 bits. */
    if (errno != 0 || end == s || *end != '\0' || !(v >= min) || v > 3600.0)
        return false;
    *out = (int64_t)(v * 1e9);
    return true;
}

static bool parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Resolves the URL into L's address, Host header and path. */
static bool set_target(load_t *L, char *err, size_t errlen)
{
    struct evhttp_uri *u = evhttp_uri_parse(L->url);
    bool ok = false;
    if (u == NULL) {
        snprintf(err, errlen, "cannot parse URL %s", L->url);
        return false;
    }
    const char *scheme = evhttp_uri_get_scheme(u);
    const char *host = evhttp_uri_get_host(u);
    const char *path = evhttp_uri_get_path(u);
    const char *query = evhttp_uri_get_query(u);
    int port = evhttp_uri_get_port(u);
    if (scheme == NULL || strcasecmp(scheme, "http") != 0 || host == NULL || host[0] == '\0') {
        snprintf(err, errlen, "URL must be http://HOST[:PORT]/PATH");
        goto done;
    }
    if (port < 0)
        port = 80;
    /* An IPv6 literal may come with its brackets. */
    char hostbuf[256];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(hostbuf)) {
        memcpy(hostbuf, host + 1, hl - 2);
        hostbuf[hl - 2] = '\0';
        host = hostbuf;
    }
    snprintf(L->path, sizeof(L->path), "%s%s%s", path != NULL && path[0] != '\0' ? path : "/",
             query != NULL ? "?" : "", query != NULL ? query : "");
    if (strchr(host, ':') != NULL)
        snprintf(L->hostport, sizeof(L->hostport), "[%s]:%d", host, port);
    else
        snprintf(L->hostport, sizeof(L->hostport), "%s:%d", host, port);
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        goto done;
    }
    memcpy(&L->addr, ai->ai_addr, ai->ai_addrlen);
    L->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    ok = true;
done:
    evhttp_uri_free(u);
    return ok;
}

static void print_by(const char *key, const uint64_t *counts, size_t n, const char *const *names)
{
    printf("%s=", key);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (counts[i] == 0)
            continue;
        if (names != NULL)
            printf("%s%s:%" PRIu64, any ? "," : "", names[i], counts[i]);
        else
            printf("%s%zu:%" PRIu64, any ? "," : "", i, counts[i]);
        any = true;
    }
    printf("%s\n", any ? "" : "-");
}

static void report(const load_t *L, int64_t finished)
{
    const stats_t *m = &L->st[PHASE_MEASURED];
    const stats_t *w = &L->st[PHASE_WARMUP];
    int64_t last = m->last_answer_ns > L->end ? m->last_answer_ns : L->end;
    if (finished < L->end) /* interrupted */
        last = finished > m->last_answer_ns ? finished : m->last_answer_ns;
    double elapsed = (double)(last - L->warmup_end) / 1e9;
    printf("mode=%s\n", L->open_loop ? "open" : "closed");
    printf("url=%s\n", L->url);
    if (L->open_loop) {
        printf("rate=%" PRIu64 "\n", L->rate);
        printf("connections_limit=%u\n", L->max_conns);
    } else {
        printf("concurrency=%u\n", L->concurrency);
    }
    printf("connections_peak=%zu\n", L->peak_conns);
    printf("warmup_s=%.3f\n", (double)L->warmup_ns / 1e9);
    printf("duration_s=%.3f\n", (double)L->duration_ns / 1e9);
    printf("elapsed_s=%.3f\n", elapsed);
    printf("sent=%" PRIu64 "\n", m->sent);
    printf("ok_2xx=%" PRIu64 "\n", m->ok);
    printf("non_2xx=%" PRIu64 "\n", m->non2xx);
    print_by("non_2xx_by_status", m->status, 600, NULL);
    printf("errors=%" PRIu64 "\n", m->errors);
    print_by("errors_by_kind", m->err, N_ERR_KINDS, err_names);
    printf("rate_2xx_per_s=%.1f\n", elapsed > 0 ? (double)m->ok / elapsed : 0.0);
    printf("p50_ms=%.3f\n", hist_quantile_ms(m, 500));
    printf("p90_ms=%.3f\n", hist_quantile_ms(m, 900));
    printf("p99_ms=%.3f\n", hist_quantile_ms(m, 990));
    printf("p999_ms=%.3f\n", hist_quantile_ms(m, 999));
    printf("max_ms=%.3f\n", (double)m->max_us / 1000.0);
    if (L->open_loop) {
        printf("send_lag_max_ms=%.3f\n", (double)L->max_send_lag_ns / 1e6);
        printf("backlog_peak=%" PRIu64 "\n", L->peak_backlog);
    }
    printf("warmup_sent=%" PRIu64 "\n", w->sent);
    printf("warmup_ok_2xx=%" PRIu64 "\n", w->ok);
    printf("warmup_non_2xx=%" PRIu64 "\n", w->non2xx);
    printf("warmup_errors=%" PRIu64 "\n", w->errors);
    printf("total_ok_2xx=%" PRIu64 "\n", m->ok + w->ok);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        printf("generator_cpu_s=%.3f\n",
               (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    printf("id_prefix=evt_bench_%s_\n", L->run_id);
}

int main(int argc, char **argv)
{
    static load_t load;
    load_t *L = &load;
    char err[512];
    uint64_t v;
    bool have_conc = false, have_rate = false;
    int rc = 2;

    L->duration_ns = 10 * 1000000000LL;
    L->timeout_ns = 10 * 1000000000LL;
    L->max_conns = 256;
    L->users = 5000;
    L->secret = getenv("WORKOS_WEBHOOK_SECRET");

    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"secret", required_argument, NULL, 's'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"concurrency", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},
        {"connections", required_argument, NULL, 'C'},
        {"timeout", required_argument, NULL, 't'},
        {"run", required_argument, NULL, 'R'},
        {"users", required_argument, NULL, 'U'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            L->url = optarg;
            break;
        case 's':
            L->secret = optarg;
            break;
        case 'd':
            if (!parse_seconds(optarg, 0.001, &L->duration_ns))
                goto bad;
            break;
        case 'w':
            if (!parse_seconds(optarg, 0.0, &L->warmup_ns))
                goto bad;
            break;
        case 'c':
            if (!parse_count(optarg, 1, MAX_CONCURRENCY, &v))
                goto bad;
            L->concurrency = (unsigned)v;
            have_conc = true;
            break;
        case 'r':
            if (!parse_count(optarg, 1, 1000000, &v))
                goto bad;
            L->rate = v;
            have_rate = true;
            break;
        case 'C':
            if (!parse_count(optarg, 1, MAX_CONCURRENCY, &v))
                goto bad;
            L->max_conns = (unsigned)v;
            break;
        case 't':
            if (!parse_seconds(optarg, 0.001, &L->timeout_ns))
                goto bad;
            break;
        case 'R':
            if (optarg[0] == '\0' || strlen(optarg) >= sizeof(L->run_id) ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") !=
                    strlen(optarg))
                goto bad;
            snprintf(L->run_id, sizeof(L->run_id), "%s", optarg);
            break;
        case 'U':
            if (!parse_count(optarg, 1, 1000000000, &v))
                goto bad;
            L->users = (unsigned)v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            goto bad;
        }
    }
    if (optind != argc || L->url == NULL || have_conc == have_rate || L->secret == NULL ||
        L->secret[0] == '\0')
        goto bad;
    L->open_loop = have_rate;
    if (!L->open_loop)
        L->max_conns = L->concurrency;
    if (L->run_id[0] == '\0')
        snprintf(L->run_id, sizeof(L->run_id), "%llx%04x", (unsigned long long)time(NULL),
                 (unsigned)getpid() & 0xffffu);
    if (!set_target(L, err, sizeof(err))) {
        fprintf(stderr, "webhook-load: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    iso_ms(L->created_iso, sizeof(L->created_iso), &wall);

    struct event_config *ec = event_config_new();
    if (ec != NULL)
        event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    L->base = ec != NULL ? event_base_new_with_config(ec) : NULL;
    event_config_free(ec);
    L->all = calloc(L->max_conns, sizeof(*L->all));
    L->idle = calloc(L->max_conns, sizeof(*L->idle));
    L->retired = calloc(L->max_conns, sizeof(*L->retired));
    if (L->base == NULL || L->all == NULL || L->idle == NULL || L->retired == NULL) {
        fprintf(stderr, "webhook-load: out of memory\n");
        goto out;
    }
    L->stop = evtimer_new(L->base, on_stop, L);
    L->deadline = evtimer_new(L->base, on_deadline, L);
    L->tick = evtimer_new(L->base, on_tick, L);
    L->sweep = event_new(L->base, -1, EV_PERSIST, on_sweep, L);
    L->sigint = evsignal_new(L->base, SIGINT, on_sigint, L);
    if (L->stop == NULL || L->deadline == NULL || L->tick == NULL || L->sweep == NULL ||
        L->sigint == NULL) {
        fprintf(stderr, "webhook-load: out of memory\n");
        goto out;
    }

    L->t0 = mono_ns();
    L->warmup_end = L->t0 + L->warmup_ns;
    L->end = L->warmup_end + L->duration_ns;
    struct timeval tv = ns_to_tv(L->end - L->t0);
    evtimer_add(L->stop, &tv);
    tv = ns_to_tv(L->end - L->t0 + L->timeout_ns + 1000000000LL);
    evtimer_add(L->deadline, &tv);
    evsignal_add(L->sigint, NULL);
    if (L->open_loop) {
        L->total_due = (uint64_t)((L->warmup_ns + L->duration_ns) / 1000) * L->rate / 1000000ULL;
        unsigned first = L->max_conns < 16 ? L->max_conns : 16;
        for (unsigned i = 0; i < first; i++)
            (void)conn_open(L);
        struct timeval second = {1, 0};
        event_add(L->sweep, &second);
        tv = ns_to_tv(0);
        evtimer_add(L->tick, &tv);
    } else {
        for (unsigned i = 0; i < L->concurrency; i++)
            (void)conn_open(L);
    }
    event_base_dispatch(L->base);
    int64_t finished = mono_ns();

    give_up(L);
    report(L, finished);
    const stats_t *m = &L->st[PHASE_MEASURED];
    const stats_t *w = &L->st[PHASE_WARMUP];
    rc = (m->ok > 0 && m->non2xx + m->errors + w->non2xx + w->errors == 0) ? 0 : 1;
    fflush(stdout);

out:
    if (L->stop != NULL)
        event_free(L->stop);
    if (L->deadline != NULL)
        event_free(L->deadline);
    if (L->tick != NULL)
        event_free(L->tick);
    if (L->sweep != NULL)
        event_free(L->sweep);
    if (L->sigint != NULL)
        event_free(L->sigint);
    free(L->all);
    free(L->idle);
    free(L->retired);
    if (L->base != NULL)
        event_base_free(L->base);
    return rc;

bad:
    usage(stderr);
    return 2;
}
