/*
 * The emulator's HTTP side. GET /events answers from the event store the way
 * the WorkOS Events API does (bearer auth, limit/order/after/range and both
 * spellings of the type filter), optionally over a retention window or
 * ignoring the range parameters as a server that does not know them; the
 * list endpoints are answered by emu_lists from the state of the stream. All
 * API requests share the rate limits (emu_limit), the fault queue (by scope)
 * and the added latency, answered by timers so the loop never blocks. The
 * /_emulator/ control endpoints let a test append events, queue faults and
 * read counters while a client is polling. Every /events request leaves one
 * logfmt line in the request log, every state request one in the state log,
 * so a test can check afterwards how the client paced and positioned itself.
 */
#include "emu_serve.h"

#include "emu_limit.h"
#include "emu_lists.h"
#include "emu_state.h"
#include "emu_store.h"
#include "emu_util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FAULTS 64            /* queued fault entries */
#define MAX_FAULT_AFTER 128      /* bytes of a fault's `after` */
#define MAX_FAULT_COUNT 1000000u /* requests one entry may cover */
#define MAX_QUERY (64u << 10)    /* longest query string accepted */
#define MAX_RATE 1000000u        /* largest --rate-limit */
#define MAX_BODY (256u << 20)    /* largest POST /_emulator/events body */
#define MAX_DELAY_MS 600000u     /* longest delay fault */
#define DEFAULT_RETRY_AFTER 1u
#define DEFAULT_DELAY_MS 1000u

typedef enum {
    FAULT_NONE,     /* answer normally */
    FAULT_429,      /* 429 with Retry-After */
    FAULT_500,      /* 500 with a JSON error */
    FAULT_DELAY,    /* answer normally after a pause */
    FAULT_TRUNCATE, /* 200, correct Content-Length, JSON cut in half */
    FAULT_DROP,     /* close the connection without a response */
    FAULT_DISORDER, /* 200 with the page's events reversed */
    FAULT_TRAILING, /* 200, the whole page followed by bytes that are not JSON */
    FAULT_RESTART,  /* 200, the first page: `after` ignored (and, by the lists, `before`) */
} fault_kind_t;

static const char *const fault_names[] = {
    [FAULT_NONE] = "-",
    [FAULT_429] = "429",
    [FAULT_500] = "500",
    [FAULT_DELAY] = "delay",
    [FAULT_TRUNCATE] = "truncate",
    [FAULT_DROP] = "drop",
    [FAULT_DISORDER] = "disorder",
    [FAULT_TRAILING] = "trailing",
    [FAULT_RESTART] = "restart",
};

/* Which requests a queued fault applies to (a bit set). */
enum {
    SCOPE_EVENTS = 1, /* GET /events */
    SCOPE_STATE = 2,  /* the list endpoints */
    SCOPE_ALL = 3,
};

typedef struct {
    fault_kind_t kind;
    uint32_t remaining;
    uint32_t arg; /* Retry-After seconds for 429, milliseconds for delay */
    int scope;
    char after[MAX_FAULT_AFTER + 1]; /* only requests with this `after` ("": any) */
} fault_t;

typedef enum {
    EXPIRED_400,     /* an expired `after` gets 400 naming `after` */
    EXPIRED_RESTART, /* an expired `after` is ignored: listing from the start */
} expired_mode_t;

typedef enum {
    RANGE_HONOURED,   /* range_start and range_end bound the listing */
    RANGE_IGNORE_END, /* range_end is ignored: listings run on past it */
    RANGE_IGNORE_ALL, /* both are ignored, as if never sent */
} range_mode_t;

static const char *const range_names[] = {
    [RANGE_HONOURED] = "-",
    [RANGE_IGNORE_END] = "end",
    [RANGE_IGNORE_ALL] = "both",
};

typedef enum {
    FILTER_BOTH,   /* read `events` (comma list) and `events[]` */
    FILTER_EVENTS, /* read only `events` */
    FILTER_ARRAY,  /* read only `events[]` */
} filter_mode_t;

typedef struct serve serve_t;

/* A reply held back by --latency or a delay fault. */
typedef struct pending {
    struct pending *prev, *next;
    serve_t *srv;
    struct evhttp_request *req;
    struct evbuffer *body;
    int status;
    bool drop; /* close the connection instead of replying */
    struct event *timer;
} pending_t;

struct serve {
    struct event_base *base;
    struct evhttp *http;
    emu_store_t *store;
    char *auth;
    FILE *reqlog;
    filter_mode_t filter_mode;
    range_mode_t range_mode; /* --ignore-range */
    FILE *statelog;
    fault_t faults[MAX_FAULTS]; /* FIFO, oldest first */
    size_t nfaults;
    int fault_scope; /* scope of faults queued without one */
    emu_limit_t per_second, overall, user_management;
    uint32_t latency_ms;
    uint64_t retention_events; /* 0: keep everything */
    int64_t retention_ms;      /* < 0: keep everything */
    expired_mode_t expired_mode;
    uint64_t requests, state_requests, rate_limited, faults_fired, expired_cursors;
    uint64_t endpoint_requests[EMU_EP_COUNT];
    char *last_after;
    emu_state_t *state;
    emu_lists_t *lists;
    size_t state_applied; /* events of the store folded into state */
    char *known_types;    /* --known-types as ",a,b,", or NULL: every name is known */
    pending_t *pending;
    struct event *sig_term, *sig_int;
};

/* Splits the request target into a path (copied) and a raw query pointer. */
static char *split_target(const char *uri, const char **query)
{
    const char *q = strchr(uri, '?');
    const char *hash = strchr(uri, '#');
    size_t plen = q ? (size_t)(q - uri) : (hash ? (size_t)(hash - uri) : strlen(uri));
    *query = q ? q + 1 : NULL;
    return emu_xstrndup(uri, plen);
}

static const char *reason_for(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return NULL;
    }
}

static void send_json(struct evhttp_request *req, int status, const emu_buf_t *body)
{
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(out, body->data ? body->data : "", body->len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, reason_for(status), out);
    evbuffer_free(out);
}

/* Sends {"message": msg, ...} with optional code. */
static void send_error(struct evhttp_request *req, int status, const char *code, const char *msg)
{
    emu_buf_t b = {0};
    emu_buf_adds(&b, "{\"message\":");
    emu_buf_json_str(&b, msg);
    if (code) {
        emu_buf_adds(&b, ",\"code\":");
        emu_buf_json_str(&b, code);
    }
    emu_buf_adds(&b, "}");
    send_json(req, status, &b);
    emu_buf_free(&b);
}

static bool fault_parse_kind(const char *s, fault_kind_t *k)
{
    for (int i = FAULT_429; i <= FAULT_RESTART; i++) {
        if (strcmp(s, fault_names[i]) == 0) {
            *k = (fault_kind_t)i;
            return true;
        }
    }
    return false;
}

EMU_WUR static bool fault_queue(serve_t *srv, fault_kind_t kind, uint32_t count, uint32_t arg,
                                int scope, const char *after, char *err, size_t errlen)
{
    if (count == 0)
        return true;
    if (srv->nfaults == MAX_FAULTS) {
        snprintf(err, errlen, "fault queue full (%d entries)", MAX_FAULTS);
        return false;
    }
    fault_t *f = &srv->faults[srv->nfaults++];
    f->kind = kind;
    f->remaining = count;
    f->arg = arg;
    f->scope = scope;
    snprintf(f->after, sizeof(f->after), "%s", after != NULL ? after : "");
    return true;
}

/* Takes one request's worth from the oldest entry whose scope covers the
 * request (scope is SCOPE_EVENTS or SCOPE_STATE) and whose `after`, if it
 * names one, is the request's. */
static fault_kind_t fault_take(serve_t *srv, int scope, const char *after, uint32_t *arg)
{
    for (size_t i = 0; i < srv->nfaults; i++) {
        fault_t *f = &srv->faults[i];
        if (!(f->scope & scope))
            continue;
        if (f->after[0] != '\0' && (after == NULL || strcmp(f->after, after) != 0))
            continue;
        fault_kind_t k = f->kind;
        *arg = f->arg;
        if (--f->remaining == 0) {
            memmove(&srv->faults[i], &srv->faults[i + 1], (srv->nfaults - i - 1) * sizeof(fault_t));
            srv->nfaults--;
        }
        srv->faults_fired++;
        return k;
    }
    return FAULT_NONE;
}

static uint64_t faults_pending(const serve_t *srv)
{
    uint64_t n = 0;
    for (size_t i = 0; i < srv->nfaults; i++)
        n += srv->faults[i].remaining;
    return n;
}

static bool parse_scope(const char *s, int *scope)
{
    if (strcmp(s, "events") == 0)
        *scope = SCOPE_EVENTS;
    else if (strcmp(s, "state") == 0)
        *scope = SCOPE_STATE;
    else if (strcmp(s, "all") == 0)
        *scope = SCOPE_ALL;
    else
        return false;
    return true;
}

/* Counts one authenticated API request against every limit that covers it
 * and admits it when all have room. On refusal *retry_after is the
 * Retry-After in seconds (at least 1) and nothing is counted as admitted. */
static bool rate_admit(serve_t *srv, bool user_management, uint32_t *retry_after)
{
    emu_limit_t *ls[3] = {&srv->per_second, &srv->overall,
                          user_management ? &srv->user_management : NULL};
    int64_t now = emu_mono_ms(), wait = 0;
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        int64_t w;
        if (ls[i] == NULL)
            continue;
        emu_limit_arrive(ls[i], now);
        if (!emu_limit_fits(ls[i], now, &w)) {
            ok = false;
            ls[i]->limited++;
            wait = w > wait ? w : wait;
        }
    }
    if (!ok) {
        srv->rate_limited++;
        *retry_after = (uint32_t)((wait + 999) / 1000);
        if (*retry_after == 0)
            *retry_after = 1;
        return false;
    }
    for (int i = 0; i < 3; i++)
        if (ls[i])
            emu_limit_admit(ls[i], now);
    return true;
}

/* What one /events request asked for and got, for the request log. */
typedef struct {
    int64_t ts_ms;
    int status;
    fault_kind_t fault;
    bool rate_limited;
    const char *after;
    const char *range_start;
    const char *range_end;
    const char *limit_raw;
    size_t limit;
    emu_buf_t filter; /* comma list of requested types */
    size_t returned;
    const char *last;
} reqinfo_t;

static void reqlog_write(serve_t *srv, const reqinfo_t *ri)
{
    if (srv->reqlog == NULL)
        return;
    emu_buf_t b = {0};
    emu_buf_printf(&b, "ts_ms=%lld status=%d fault=", (long long)ri->ts_ms, ri->status);
    emu_buf_adds(&b, ri->rate_limited ? "rate_limit" : fault_names[ri->fault]);
    emu_buf_adds(&b, " after=");
    emu_buf_logfmt(&b, ri->after);
    emu_buf_adds(&b, " range_start=");
    emu_buf_logfmt(&b, ri->range_start);
    emu_buf_adds(&b, " range_end=");
    emu_buf_logfmt(&b, ri->range_end);
    emu_buf_adds(&b, " limit=");
    if (ri->limit)
        emu_buf_printf(&b, "%zu", ri->limit);
    else
        emu_buf_logfmt(&b, ri->limit_raw);
    emu_buf_adds(&b, " filter=");
    emu_buf_logfmt(&b, ri->filter.len ? ri->filter.data : NULL);
    emu_buf_printf(&b, " returned=%zu last=", ri->returned);
    emu_buf_logfmt(&b, ri->last);
    emu_buf_adds(&b, "\n");
    fwrite(b.data, 1, b.len, srv->reqlog);
    fflush(srv->reqlog);
    emu_buf_free(&b);
}

/* Collects the type filter honouring --filter-param. Returns false when no
 * filter parameter was given at all. */
static bool collect_filter(const serve_t *srv, const emu_params_t *ps, uint32_t *types,
                           size_t *ntypes, emu_buf_t *names)
{
    bool any = false;
    size_t nnames = 0;
    *ntypes = 0;
    for (size_t i = 0; i < ps->n; i++) {
        const char *key = ps->p[i].key;
        bool comma = strcmp(key, "events") == 0;
        bool array = strcmp(key, "events[]") == 0;
        if ((comma && srv->filter_mode == FILTER_ARRAY) ||
            (array && srv->filter_mode == FILTER_EVENTS) || (!comma && !array))
            continue;
        const char *v = ps->p[i].val;
        while (v) {
            const char *c = comma ? strchr(v, ',') : NULL;
            size_t len = c ? (size_t)(c - v) : strlen(v);
            if (len > 0 && nnames < EMU_STORE_MAX_FILTER) {
                char *name = emu_xstrndup(v, len);
                uint32_t idx;
                any = true;
                if (names->len)
                    emu_buf_add(names, ",", 1);
                emu_buf_adds(names, name);
                nnames++;
                if (emu_store_find_type(srv->store, name, &idx))
                    types[(*ntypes)++] = idx;
                free(name);
            }
            v = c ? c + 1 : NULL;
        }
    }
    return any;
}

/* The first requested type not in --known-types, copied, or NULL when all
 * are (or no list was given). `names` is the comma list collect_filter made. */
static char *unknown_type(const serve_t *srv, const char *names)
{
    for (const char *v = names; srv->known_types && v && *v;) {
        const char *c = strchr(v, ',');
        size_t len = c ? (size_t)(c - v) : strlen(v);
        char *probe = emu_xmalloc(len + 3);
        snprintf(probe, len + 3, ",%.*s,", (int)len, v);
        bool known = strstr(srv->known_types, probe) != NULL;
        free(probe);
        if (!known)
            return emu_xstrndup(v, len);
        v = c ? c + 1 : NULL;
    }
    return NULL;
}

/* Reads --known-types: a file of names (one a line, or comma-separated) when
 * the argument names a readable file, else a comma-separated list. */
EMU_WUR static bool load_known_types(serve_t *srv, const char *arg, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    if (access(arg, R_OK) == 0) {
        if (!emu_read_file(arg, &text, &len, err, errlen))
            return false;
    } else {
        text = emu_xstrdup(arg);
        len = strlen(text);
    }
    emu_buf_t b = {0};
    emu_buf_adds(&b, ",");
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '\n' || ch == '\r' || ch == ' ' || ch == '\t')
            ch = ',';
        if (ch != ',' || b.data[b.len - 1] != ',')
            emu_buf_add(&b, &ch, 1);
    }
    if (b.data[b.len - 1] != ',')
        emu_buf_adds(&b, ",");
    free(text);
    free(srv->known_types);
    srv->known_types = emu_xstrdup(b.data);
    emu_buf_free(&b);
    return true;
}

static void pending_unlink(serve_t *srv, pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        srv->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* Closes the connection without sending a byte: shut the socket down, then
 * let evhttp's write fail so that it frees the request and connection. */
static void reply_drop(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void pending_fire(evutil_socket_t fd, short what, void *arg)
{
    pending_t *p = arg;
    (void)fd;
    (void)what;
    pending_unlink(p->srv, p);
    /* If the client hung up meanwhile, libevent detached the request and
     * evhttp_send_reply frees it. */
    if (p->drop)
        reply_drop(p->req);
    else
        evhttp_send_reply(p->req, p->status, reason_for(p->status), p->body);
    evbuffer_free(p->body);
    event_free(p->timer);
    free(p);
}

/* Answers an API request: body (or, with drop, a closed connection) after
 * --latency plus extra_ms, without blocking the loop. */
static void api_reply(serve_t *srv, struct evhttp_request *req, int status, const emu_buf_t *body,
                      uint32_t extra_ms, bool drop)
{
    uint64_t delay_ms = (uint64_t)srv->latency_ms + extra_ms;
    if (delay_ms == 0) {
        if (drop)
            reply_drop(req);
        else
            send_json(req, status, body);
        return;
    }
    if (!drop)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
    pending_t *p = emu_xcalloc(1, sizeof(*p));
    p->srv = srv;
    p->req = req;
    p->status = status;
    p->drop = drop;
    p->body = evbuffer_new();
    p->timer = evtimer_new(srv->base, pending_fire, p);
    if (p->body == NULL || p->timer == NULL) {
        if (p->body)
            evbuffer_free(p->body);
        if (p->timer)
            event_free(p->timer);
        free(p);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    if (body->len)
        evbuffer_add(p->body, body->data, body->len);
    p->next = srv->pending;
    if (p->next)
        p->next->prev = p;
    srv->pending = p;
    struct timeval tv = {.tv_sec = (time_t)(delay_ms / 1000),
                         .tv_usec = (suseconds_t)(delay_ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

/* api_reply with {"message": msg[, "code": code]}. */
static void api_error(serve_t *srv, struct evhttp_request *req, int status, const char *code,
                      const char *msg)
{
    emu_buf_t b = {0};
    emu_buf_adds(&b, "{\"message\":");
    emu_buf_json_str(&b, msg);
    if (code) {
        emu_buf_adds(&b, ",\"code\":");
        emu_buf_json_str(&b, code);
    }
    emu_buf_adds(&b, "}");
    api_reply(srv, req, status, &b, 0, false);
    emu_buf_free(&b);
}

/* Adds a Retry-After header of secs seconds. */
static void add_retry_after(struct evhttp_request *req, uint32_t secs)
{
    char ra[16];
    snprintf(ra, sizeof(ra), "%u", secs);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
}

/* Folds events appended to the store since the last call into the state. */
static void state_sync(serve_t *srv)
{
    size_t n = emu_store_count(srv->store);
    for (; srv->state_applied < n; srv->state_applied++) {
        size_t len;
        const char *raw = emu_store_raw(srv->store, (uint32_t)srv->state_applied, &len);
        emu_state_apply_event(srv->state, raw, len);
    }
}

/* Stream position of the oldest event still retained (retention options
 * measured from the newest event). */
static uint32_t retention_start(const serve_t *srv)
{
    size_t n = emu_store_count(srv->store);
    size_t start = 0;
    if (n == 0)
        return 0;
    if (srv->retention_events && n > srv->retention_events)
        start = n - (size_t)srv->retention_events;
    if (srv->retention_ms >= 0) {
        int64_t cutoff = emu_store_created(srv->store, (uint32_t)(n - 1)) - srv->retention_ms;
        size_t p = emu_store_first_at_or_after(srv->store, cutoff);
        start = p > start ? p : start;
    }
    return (uint32_t)start;
}

/* The page size asked for: 10 when absent, 0 when not an integer 1..100. */
static size_t parse_limit(const char *raw)
{
    uint64_t v;
    if (raw == NULL)
        return 10;
    if (!emu_parse_u64(raw, 1000000, &v) || v < 1 || v > 100)
        return 0;
    return (size_t)v;
}

/* Validates the listing parameters into q. Returns 0, or the status of the
 * error (422, or 400 for an expired cursor) whose body it filled in. */
EMU_WUR static int build_query(serve_t *srv, const emu_params_t *ps, reqinfo_t *ri, emu_query_t *q,
                               uint32_t *types, emu_buf_t *body)
{
    memset(q, 0, sizeof(*q));
    q->min_pos = retention_start(srv);
    if (ri->limit == 0) {
        emu_validation_body(body, "limit", "limit must be an integer between 1 and 100");
        return 422;
    }
    q->limit = ri->limit;

    const char *order = emu_params_get(ps, "order");
    if (order == NULL || strcmp(order, "desc") == 0)
        q->asc = false;
    else if (strcmp(order, "asc") == 0)
        q->asc = true;
    else {
        emu_validation_body(body, "order", "order must be one of asc, desc");
        return 422;
    }

    /* A server that does not know a range parameter neither checks nor applies it. */
    const char *range_start = srv->range_mode == RANGE_IGNORE_ALL ? NULL : ri->range_start;
    const char *range_end =
        srv->range_mode == RANGE_HONOURED ? emu_params_get(ps, "range_end") : NULL;
    if (range_start && *range_start) {
        if (!emu_time_parse(range_start, strlen(range_start), &q->start_ms)) {
            emu_validation_body(body, "range_start", "range_start must be an ISO 8601 date");
            return 422;
        }
        q->has_start = true;
    }
    if (range_end && *range_end) {
        if (!emu_time_parse(range_end, strlen(range_end), &q->end_ms)) {
            emu_validation_body(body, "range_end", "range_end must be an ISO 8601 date");
            return 422;
        }
        q->has_end = true;
    }
    if (ri->after && *ri->after) {
        if (q->has_start) {
            emu_validation_body(body, "after", "after and range_start are mutually exclusive");
            return 422;
        }
        if (!emu_store_find_id(srv->store, ri->after, &q->after_pos)) {
            emu_validation_body(body, "after", "after does not name a known event");
            return 422;
        }
        q->has_after = true;
        if (q->after_pos < q->min_pos) {
            srv->expired_cursors++;
            if (srv->expired_mode == EXPIRED_400) {
                emu_buf_adds(body,
                             "{\"message\":\"The after cursor names an event that is no "
                             "longer retained\",\"code\":\"invalid_request_parameters\","
                             "\"errors\":[{\"field\":\"after\",\"code\":\"cursor_expired\"}]}");
                return 400;
            }
            q->has_after = false; /* restart from the first page */
        }
    }
    q->types = types;
    return 0;
}

static void handle_events(serve_t *srv, struct evhttp_request *req, const char *query)
{
    emu_params_t *ps = emu_xcalloc(1, sizeof(*ps));
    uint32_t types[EMU_STORE_MAX_FILTER];
    uint32_t page[101];
    reqinfo_t ri = {0};
    emu_buf_t body = {0};
    emu_query_t q;
    uint32_t arg = 0;

    srv->requests++;
    srv->endpoint_requests[EMU_EP_EVENTS]++;
    ri.ts_ms = emu_now_ms();
    if (query && strlen(query) <= MAX_QUERY)
        emu_params_parse(ps, query);
    ri.after = emu_params_get(ps, "after");
    ri.range_start = emu_params_get(ps, "range_start");
    ri.range_end = emu_params_get(ps, "range_end");
    ri.limit_raw = emu_params_get(ps, "limit");
    ri.limit = parse_limit(ri.limit_raw);
    free(srv->last_after);
    srv->last_after = ri.after ? emu_xstrdup(ri.after) : NULL;
    size_t ntypes = 0;
    bool filtered = collect_filter(srv, ps, types, &ntypes, &ri.filter);

    const char *authz = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (authz == NULL || strcmp(authz, srv->auth) != 0) {
        ri.status = 401;
        api_error(srv, req, 401, NULL, "Unauthorized");
        goto done;
    }
    uint32_t retry_after;
    if (!rate_admit(srv, false, &retry_after)) {
        ri.status = 429;
        ri.rate_limited = true;
        add_retry_after(req, retry_after);
        api_error(srv, req, 429, "rate_limit_exceeded", "Too many requests");
        goto done;
    }
    ri.fault = fault_take(srv, SCOPE_EVENTS, ri.after, &arg);
    switch (ri.fault) {
    case FAULT_429:
        ri.status = 429;
        add_retry_after(req, arg);
        api_error(srv, req, 429, "rate_limit_exceeded", "Too many requests");
        goto done;
    case FAULT_500:
        ri.status = 500;
        api_error(srv, req, 500, "server_error", "Internal server error");
        goto done;
    case FAULT_DROP:
        ri.status = 0;
        api_reply(srv, req, 0, &body, 0, true);
        goto done;
    case FAULT_NONE:
    case FAULT_DELAY:
    case FAULT_TRUNCATE:
    case FAULT_DISORDER:
    case FAULT_TRAILING:
    case FAULT_RESTART:
        break;
    }

    /* WorkOS refuses the whole request when one name is unknown to it. */
    char *unknown = filtered ? unknown_type(srv, ri.filter.data) : NULL;
    if (unknown != NULL) {
        emu_buf_adds(&body, "{\"message\":\"Invalid events request\","
                            "\"code\":\"invalid_events_request\",\"errors\":[{\"field\":"
                            "\"events\",\"code\":\"unknown_event_type\",\"value\":");
        emu_buf_json_str(&body, unknown);
        emu_buf_adds(&body, "}]}");
        free(unknown);
        ri.status = 400;
        api_reply(srv, req, 400, &body, ri.fault == FAULT_DELAY ? arg : 0, false);
        goto done;
    }
    int bad = build_query(srv, ps, &ri, &q, types, &body);
    if (bad) {
        ri.status = bad;
        api_reply(srv, req, bad, &body, ri.fault == FAULT_DELAY ? arg : 0, false);
        goto done;
    }
    q.filtered = filtered;
    q.ntypes = ntypes;
    if (ri.fault == FAULT_RESTART)
        q.has_after = false; /* one answer as if the cursor were unknown */
    bool more;
    size_t n = emu_store_query(srv->store, &q, page, &more);
    ri.status = 200;
    ri.returned = n;
    ri.last = n ? emu_store_id(srv->store, page[n - 1]) : NULL;

    if (ri.fault == FAULT_DISORDER) {
        for (size_t i = 0; i < n / 2; i++) {
            uint32_t t = page[i];
            page[i] = page[n - 1 - i];
            page[n - 1 - i] = t;
        }
    }
    emu_buf_adds(&body, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *raw = emu_store_raw(srv->store, page[i], &len);
        if (i)
            emu_buf_add(&body, ",", 1);
        emu_buf_add(&body, raw, len);
    }
    emu_buf_adds(&body, "],\"list_metadata\":{\"before\":null,\"after\":");
    /* The cursor is the last event in listing order, whatever order the
     * page was (mis)delivered in. */
    if (more)
        emu_buf_json_str(&body, ri.last);
    else
        emu_buf_adds(&body, "null");
    emu_buf_adds(&body, "}}");
    if (ri.fault == FAULT_TRUNCATE)
        body.len /= 2;
    if (ri.fault == FAULT_TRAILING)
        emu_buf_adds(&body, " xyz");
    api_reply(srv, req, 200, &body, ri.fault == FAULT_DELAY ? arg : 0, false);

done:
    reqlog_write(srv, &ri);
    emu_buf_free(&ri.filter);
    emu_buf_free(&body);
    emu_params_free(ps);
    free(ps);
}

/* One line per state-API request in --state-log. */
static void statelog_write(serve_t *srv, int64_t ts_ms, int status, const char *fault,
                           emu_endpoint_t ep, const char *path, const char *query, size_t returned)
{
    if (srv->statelog == NULL)
        return;
    emu_buf_t b = {0};
    emu_buf_printf(&b, "ts_ms=%lld status=%d fault=%s endpoint=%s path=", (long long)ts_ms, status,
                   fault, emu_endpoint_name(ep));
    emu_buf_logfmt(&b, path);
    emu_buf_adds(&b, " query=");
    emu_buf_logfmt(&b, query);
    emu_buf_printf(&b, " returned=%zu\n", returned);
    fwrite(b.data, 1, b.len, srv->statelog);
    fflush(srv->statelog);
    emu_buf_free(&b);
}

/* A list endpoint: auth (401) -> rate limits (429) -> next fault scoped to
 * the state APIs -> validation (404/422) -> page. */
static void handle_state(serve_t *srv, struct evhttp_request *req, emu_endpoint_t ep,
                         const char *scope_id, const char *path, const char *query)
{
    emu_params_t *ps = emu_xcalloc(1, sizeof(*ps));
    emu_buf_t body = {0};
    int64_t ts = emu_now_ms();
    int status;
    fault_kind_t fault = FAULT_NONE;
    const char *fault_name = "-";
    uint32_t arg = 0, retry_after;
    size_t returned = 0;

    srv->state_requests++;
    srv->endpoint_requests[ep]++;
    if (query && strlen(query) <= MAX_QUERY)
        emu_params_parse(ps, query);
    const char *authz = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (authz == NULL || strcmp(authz, srv->auth) != 0) {
        status = 401;
        api_error(srv, req, 401, NULL, "Unauthorized");
        goto done;
    }
    if (!rate_admit(srv, emu_lists_is_user_management(path), &retry_after)) {
        status = 429;
        fault_name = "rate_limit";
        add_retry_after(req, retry_after);
        api_error(srv, req, 429, "rate_limit_exceeded", "Too many requests");
        goto done;
    }
    fault = fault_take(srv, SCOPE_STATE, emu_params_get(ps, "after"), &arg);
    fault_name = fault_names[fault];
    switch (fault) {
    case FAULT_429:
        status = 429;
        add_retry_after(req, arg);
        api_error(srv, req, 429, "rate_limit_exceeded", "Too many requests");
        goto done;
    case FAULT_500:
        status = 500;
        api_error(srv, req, 500, "server_error", "Internal server error");
        goto done;
    case FAULT_DROP:
        status = 0;
        api_reply(srv, req, 0, &body, 0, true);
        goto done;
    case FAULT_RESTART: /* the cursor lost: the first page, whatever was asked */
        emu_params_drop(ps, "after");
        emu_params_drop(ps, "before");
        break;
    case FAULT_NONE:
    case FAULT_DELAY:
    case FAULT_TRUNCATE:
    case FAULT_DISORDER:
    case FAULT_TRAILING:
        break;
    }
    status =
        emu_lists_answer(srv->lists, ep, scope_id, ps, fault == FAULT_DISORDER, &body, &returned);
    if (fault == FAULT_TRUNCATE)
        body.len /= 2;
    if (fault == FAULT_TRAILING)
        emu_buf_adds(&body, " xyz");
    api_reply(srv, req, status, &body, fault == FAULT_DELAY ? arg : 0, false);
done:
    statelog_write(srv, ts, status, fault_name, ep, path, query, returned);
    emu_buf_free(&body);
    emu_params_free(ps);
    free(ps);
}

static void handle_append(serve_t *srv, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *data = len ? (const char *)evbuffer_pullup(in, -1) : "";
    size_t n = 0;
    char err[512];
    if (data == NULL || !emu_store_append(srv->store, data, len, &n, err, sizeof(err))) {
        send_error(req, 400, "invalid_events", data ? err : "out of memory");
        return;
    }
    state_sync(srv);
    emu_buf_t b = {0};
    emu_buf_printf(&b, "{\"appended\":%zu,\"events\":%zu}", n, emu_store_count(srv->store));
    send_json(req, 200, &b);
    emu_buf_free(&b);
}

static void handle_faults(serve_t *srv, struct evhttp_request *req, const char *query)
{
    emu_buf_t b = {0};
    if (evhttp_request_get_command(req) == EVHTTP_REQ_DELETE) {
        uint64_t cleared = faults_pending(srv);
        srv->nfaults = 0;
        emu_buf_printf(&b, "{\"cleared\":%llu}", (unsigned long long)cleared);
        send_json(req, 200, &b);
        emu_buf_free(&b);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
        emu_buf_printf(&b, "{\"pending\":%llu}", (unsigned long long)faults_pending(srv));
        send_json(req, 200, &b);
        emu_buf_free(&b);
        return;
    }
    emu_params_t *ps = emu_xcalloc(1, sizeof(*ps));
    if (query && strlen(query) <= MAX_QUERY)
        emu_params_parse(ps, query);
    const char *kind_s = emu_params_get(ps, "kind");
    const char *count_s = emu_params_get(ps, "count");
    const char *ra_s = emu_params_get(ps, "retry_after");
    const char *delay_s = emu_params_get(ps, "delay_ms");
    const char *scope_s = emu_params_get(ps, "scope");
    const char *after_s = emu_params_get(ps, "after");
    int scope = srv->fault_scope;
    fault_kind_t kind;
    uint64_t count = 1, ra = DEFAULT_RETRY_AFTER, delay = DEFAULT_DELAY_MS;
    char err[128];
    if (kind_s == NULL || !fault_parse_kind(kind_s, &kind)) {
        send_error(
            req, 400, "invalid_fault",
            "kind must be one of 429, 500, delay, truncate, drop, disorder, trailing, restart");
    } else if (count_s && !emu_parse_u64(count_s, MAX_FAULT_COUNT, &count)) {
        send_error(req, 400, "invalid_fault", "count must be 0..1000000");
    } else if (ra_s && !emu_parse_u64(ra_s, 86400, &ra)) {
        send_error(req, 400, "invalid_fault", "retry_after must be 0..86400");
    } else if (delay_s && !emu_parse_u64(delay_s, MAX_DELAY_MS, &delay)) {
        send_error(req, 400, "invalid_fault", "delay_ms must be 0..600000");
    } else if (scope_s && !parse_scope(scope_s, &scope)) {
        send_error(req, 400, "invalid_fault", "scope must be one of events, state, all");
    } else if (after_s && (after_s[0] == '\0' || strlen(after_s) > MAX_FAULT_AFTER)) {
        send_error(req, 400, "invalid_fault", "after must be 1..128 bytes");
    } else if (!fault_queue(srv, kind, (uint32_t)count,
                            (uint32_t)(kind == FAULT_DELAY ? delay : ra), scope, after_s, err,
                            sizeof(err))) {
        send_error(req, 409, "fault_queue_full", err);
    } else {
        emu_buf_printf(&b, "{\"queued\":%llu,\"kind\":\"%s\",\"pending\":%llu}",
                       (unsigned long long)count, fault_names[kind],
                       (unsigned long long)faults_pending(srv));
        send_json(req, 200, &b);
    }
    emu_buf_free(&b);
    emu_params_free(ps);
    free(ps);
}

static void stats_limit(emu_buf_t *b, const char *name, const emu_limit_t *l)
{
    emu_buf_printf(b,
                   "\"%s\":{\"limit\":%u,\"window_ms\":%lld,\"requests\":%llu,\"peak\":%llu,"
                   "\"peak_admitted\":%llu,\"limited\":%llu}",
                   name, l->limit, (long long)l->window_ms, (unsigned long long)l->seen,
                   (unsigned long long)l->peak, (unsigned long long)l->peak_admitted,
                   (unsigned long long)l->limited);
}

static void handle_stats(serve_t *srv, struct evhttp_request *req)
{
    emu_buf_t b = {0};
    emu_buf_printf(&b, "{\"requests\":%llu,\"events\":%zu,\"last_after\":",
                   (unsigned long long)srv->requests, emu_store_count(srv->store));
    if (srv->last_after)
        emu_buf_json_str(&b, srv->last_after);
    else
        emu_buf_adds(&b, "null");
    emu_buf_printf(&b, ",\"faults_pending\":%llu,\"faults_fired\":%llu,\"rate_limited\":%llu",
                   (unsigned long long)faults_pending(srv), (unsigned long long)srv->faults_fired,
                   (unsigned long long)srv->rate_limited);
    emu_buf_printf(&b, ",\"state_requests\":%llu,\"endpoints\":{",
                   (unsigned long long)srv->state_requests);
    for (int ep = 0; ep < EMU_EP_COUNT; ep++)
        emu_buf_printf(&b, "%s\"%s\":%llu", ep ? "," : "", emu_endpoint_name((emu_endpoint_t)ep),
                       (unsigned long long)srv->endpoint_requests[ep]);
    emu_buf_adds(&b, "},\"limits\":{");
    stats_limit(&b, "per_second", &srv->per_second);
    emu_buf_adds(&b, ",");
    stats_limit(&b, "overall", &srv->overall);
    emu_buf_adds(&b, ",");
    stats_limit(&b, "user_management", &srv->user_management);
    uint32_t start = retention_start(srv);
    size_t n = emu_store_count(srv->store);
    emu_buf_printf(
        &b, "},\"latency_ms\":%u,\"ignore_range\":\"%s\",\"retained\":%zu,\"oldest_retained\":",
        srv->latency_ms, range_names[srv->range_mode], n - start);
    if (start < n)
        emu_buf_json_str(&b, emu_store_id(srv->store, start));
    else
        emu_buf_adds(&b, "null");
    emu_buf_printf(&b, ",\"expired_cursors\":%llu,\"objects\":{",
                   (unsigned long long)srv->expired_cursors);
    for (int t = 0; t < EMU_TBL_COUNT; t++)
        emu_buf_printf(&b, "%s\"%s\":%zu", t ? "," : "", emu_table_name((emu_table_t)t),
                       emu_lists_live(srv->lists, (emu_table_t)t));
    emu_buf_adds(&b, "}}");
    send_json(req, 200, &b);
    emu_buf_free(&b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    serve_t *srv = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *query;
    char *path = split_target(uri ? uri : "/", &query);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    char *scope_id;
    emu_endpoint_t ep = emu_lists_route(path, &scope_id);

    if (ep == EMU_EP_EVENTS) {
        if (cmd == EVHTTP_REQ_GET)
            handle_events(srv, req, query);
        else
            send_error(req, 405, NULL, "Method not allowed");
    } else if (ep != EMU_EP_NONE) {
        if (cmd == EVHTTP_REQ_GET)
            handle_state(srv, req, ep, scope_id, path, query);
        else
            send_error(req, 405, NULL, "Method not allowed");
    } else if (strcmp(path, "/_emulator/events") == 0 && cmd == EVHTTP_REQ_POST) {
        handle_append(srv, req);
    } else if (strcmp(path, "/_emulator/faults") == 0 &&
               (cmd == EVHTTP_REQ_POST || cmd == EVHTTP_REQ_DELETE || cmd == EVHTTP_REQ_GET)) {
        handle_faults(srv, req, query);
    } else if (strcmp(path, "/_emulator/stats") == 0 && cmd == EVHTTP_REQ_GET) {
        handle_stats(srv, req);
    } else {
        send_error(req, 404, NULL, "Not Found");
    }
    free(scope_id);
    free(path);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    serve_t *srv = arg;
    (void)sig;
    (void)what;
    event_base_loopexit(srv->base, NULL);
}

EMU_WUR static bool write_port_file(const char *path, int port, char *err, size_t errlen)
{
    size_t n = strlen(path) + 32;
    char *tmp = emu_xmalloc(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    bool ok = f != NULL;
    if (ok) {
        fprintf(f, "%d\n", port);
        ok = fflush(f) == 0;
        ok = (fclose(f) == 0) && ok;
    }
    if (ok)
        ok = rename(tmp, path) == 0;
    if (!ok) {
        snprintf(err, errlen, "cannot write port file %s", path);
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

/* Parses --fault [SCOPE/]K:N[:ARG]; without a scope, --fault-scope's. */
EMU_WUR static bool parse_fault_opt(serve_t *srv, const char *spec, char *err, size_t errlen)
{
    char *copy = emu_xstrdup(spec);
    char *kind_s = copy, *count_s, *arg_s = NULL;
    char *slash = strchr(copy, '/');
    fault_kind_t kind;
    uint64_t count = 1, arg;
    int scope = srv->fault_scope;
    bool ok = false;
    if (slash) {
        *slash = '\0';
        if (!parse_scope(copy, &scope)) {
            snprintf(err, errlen, "--fault %s: scope must be events, state or all", spec);
            goto done;
        }
        kind_s = slash + 1;
    }
    count_s = strchr(kind_s, ':');
    if (count_s) {
        *count_s++ = '\0';
        arg_s = strchr(count_s, ':');
        if (arg_s)
            *arg_s++ = '\0';
    }
    if (!fault_parse_kind(kind_s, &kind)) {
        snprintf(err, errlen, "--fault %s: unknown kind", spec);
        goto done;
    }
    arg = kind == FAULT_DELAY ? DEFAULT_DELAY_MS : DEFAULT_RETRY_AFTER;
    if (count_s && !emu_parse_u64(count_s, MAX_FAULT_COUNT, &count)) {
        snprintf(err, errlen, "--fault %s: bad count", spec);
        goto done;
    }
    if (arg_s && !emu_parse_u64(arg_s, kind == FAULT_DELAY ? MAX_DELAY_MS : 86400, &arg)) {
        snprintf(err, errlen, "--fault %s: bad argument", spec);
        goto done;
    }
    ok = fault_queue(srv, kind, (uint32_t)count, (uint32_t)arg, scope, NULL, err, errlen);
done:
    free(copy);
    return ok;
}

static void usage(void)
{
    fputs("usage: workos-emulator serve --events FILE.jsonl [--port N] [--bind ADDR]\n"
          "         [--port-file PATH] [--api-key KEY] [--request-log PATH]\n"
          "         [--filter-param both|events|events[]] [--fault [SCOPE/]KIND:N[:ARG]]...\n"
          "         [--fault-scope events|state|all] [--rate-limit N]\n"
          "         [--limit-overall N/60s] [--limit-user-management N/10s] [--latency MS]\n"
          "         [--retention-events N] [--retention SECONDS]\n"
          "         [--expired-cursor 400|restart] [--state-log PATH]\n"
          "         [--known-types FILE|LIST] [--ignore-range end|both]\n",
          stderr);
}

static void serve_cleanup(serve_t *srv)
{
    /* Answer anything still held by a delay fault so no request leaks. */
    while (srv->pending) {
        pending_t *p = srv->pending;
        srv->pending = p->next;
        evhttp_send_reply(p->req, 503, reason_for(503), NULL);
        evbuffer_free(p->body);
        event_free(p->timer);
        free(p);
    }
    if (srv->http)
        evhttp_free(srv->http);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->base)
        event_base_free(srv->base);
    emu_store_free(srv->store);
    if (srv->reqlog)
        fclose(srv->reqlog);
    if (srv->statelog)
        fclose(srv->statelog);
    emu_lists_free(srv->lists);
    emu_state_free(srv->state);
    emu_limit_free(&srv->per_second);
    emu_limit_free(&srv->overall);
    emu_limit_free(&srv->user_management);
    free(srv->auth);
    free(srv->last_after);
    free(srv->known_types);
}

int emu_serve_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"events", required_argument, NULL, 'e'},
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"port-file", required_argument, NULL, 'P'},
        {"api-key", required_argument, NULL, 'k'},
        {"request-log", required_argument, NULL, 'l'},
        {"filter-param", required_argument, NULL, 'f'},
        {"fault", required_argument, NULL, 'F'},
        {"rate-limit", required_argument, NULL, 'r'},
        {"fault-scope", required_argument, NULL, 'S'},
        {"limit-overall", required_argument, NULL, 'O'},
        {"limit-user-management", required_argument, NULL, 'U'},
        {"latency", required_argument, NULL, 'L'},
        {"retention-events", required_argument, NULL, 'R'},
        {"retention", required_argument, NULL, 'T'},
        {"expired-cursor", required_argument, NULL, 'X'},
        {"state-log", required_argument, NULL, 's'},
        {"known-types", required_argument, NULL, 'K'},
        {"ignore-range", required_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    serve_t srv = {0};
    const char *events = NULL, *bind_addr = "127.0.0.1", *port_file = NULL,
               *api_key = "sk_test_emulator";
    const char *reqlog = NULL, *statelog = NULL;
    const char *fault_specs[MAX_FAULTS + 1];
    size_t nspecs = 0;
    uint64_t port = 0, rate = 0, v;
    uint32_t lim_overall = 0, lim_um = 0;
    int64_t win_overall = 60000, win_um = 10000;
    char err[512];
    int c, rc = 1;

    srv.store = emu_store_new();
    srv.state = emu_state_new();
    srv.lists = emu_lists_new(srv.state);
    srv.fault_scope = SCOPE_EVENTS;
    srv.retention_ms = -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            events = optarg;
            break;
        case 'p':
            if (!emu_parse_u64(optarg, 65535, &port)) {
                fprintf(stderr, "workos-emulator: --port %s: not a port\n", optarg);
                rc = 64;
                goto out;
            }
            break;
        case 'b':
            bind_addr = optarg;
            break;
        case 'P':
            port_file = optarg;
            break;
        case 'k':
            api_key = optarg;
            break;
        case 'l':
            reqlog = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "both") == 0)
                srv.filter_mode = FILTER_BOTH;
            else if (strcmp(optarg, "events") == 0)
                srv.filter_mode = FILTER_EVENTS;
            else if (strcmp(optarg, "events[]") == 0)
                srv.filter_mode = FILTER_ARRAY;
            else {
                fprintf(stderr,
                        "workos-emulator: --filter-param must be both, events or events[]\n");
                rc = 64;
                goto out;
            }
            break;
        case 'F':
            if (nspecs == MAX_FAULTS + 1) {
                fprintf(stderr, "workos-emulator: too many --fault options\n");
                rc = 64;
                goto out;
            }
            fault_specs[nspecs++] = optarg;
            break;
        case 'S':
            if (!parse_scope(optarg, &srv.fault_scope)) {
                fprintf(stderr, "workos-emulator: --fault-scope must be events, state or all\n");
                rc = 64;
                goto out;
            }
            break;
        case 'O':
        case 'U':
            if (!emu_limit_parse(optarg, c == 'O' ? &lim_overall : &lim_um,
                                 c == 'O' ? &win_overall : &win_um)) {
                fprintf(stderr,
                        "workos-emulator: --limit-%s %s: expected N/WINDOW, e.g. 6000/60s\n",
                        c == 'O' ? "overall" : "user-management", optarg);
                rc = 64;
                goto out;
            }
            break;
        case 'L':
            if (!emu_parse_u64(optarg, MAX_DELAY_MS, &v)) {
                fprintf(stderr, "workos-emulator: --latency must be 0..%u ms\n", MAX_DELAY_MS);
                rc = 64;
                goto out;
            }
            srv.latency_ms = (uint32_t)v;
            break;
        case 'R':
            if (!emu_parse_u64(optarg, UINT32_MAX, &srv.retention_events)) {
                fprintf(stderr, "workos-emulator: --retention-events must be a count\n");
                rc = 64;
                goto out;
            }
            break;
        case 'T':
            if (!emu_parse_u64(optarg, 100ULL * 365 * 86400, &v)) {
                fprintf(stderr, "workos-emulator: --retention must be a number of seconds\n");
                rc = 64;
                goto out;
            }
            srv.retention_ms = (int64_t)v * 1000;
            break;
        case 'X':
            if (strcmp(optarg, "400") == 0)
                srv.expired_mode = EXPIRED_400;
            else if (strcmp(optarg, "restart") == 0)
                srv.expired_mode = EXPIRED_RESTART;
            else {
                fprintf(stderr, "workos-emulator: --expired-cursor must be 400 or restart\n");
                rc = 64;
                goto out;
            }
            break;
        case 's':
            statelog = optarg;
            break;
        case 'r':
            if (!emu_parse_u64(optarg, MAX_RATE, &rate)) {
                fprintf(stderr, "workos-emulator: --rate-limit must be 0..%u\n", MAX_RATE);
                rc = 64;
                goto out;
            }
            break;
        case 'K':
            if (!load_known_types(&srv, optarg, err, sizeof(err))) {
                fprintf(stderr, "workos-emulator: --known-types: %s\n", err);
                rc = 64;
                goto out;
            }
            break;
        case 'I':
            if (strcmp(optarg, "end") == 0)
                srv.range_mode = RANGE_IGNORE_END;
            else if (strcmp(optarg, "both") == 0)
                srv.range_mode = RANGE_IGNORE_ALL;
            else {
                fprintf(stderr, "workos-emulator: --ignore-range must be end or both\n");
                rc = 64;
                goto out;
            }
            break;
        case 'h':
            usage();
            rc = 0;
            goto out;
        default:
            usage();
            rc = 64;
            goto out;
        }
    }
    if (events == NULL || optind != argc) {
        usage();
        rc = 64;
        goto out;
    }
    for (size_t i = 0; i < nspecs; i++) {
        if (!parse_fault_opt(&srv, fault_specs[i], err, sizeof(err))) {
            fprintf(stderr, "workos-emulator: %s\n", err);
            rc = 64;
            goto out;
        }
    }
    if (!emu_store_load_file(srv.store, events, err, sizeof(err))) {
        fprintf(stderr, "workos-emulator: %s\n", err);
        goto out;
    }
    state_sync(&srv);
    size_t alen = strlen(api_key) + sizeof("Bearer ");
    srv.auth = emu_xmalloc(alen);
    snprintf(srv.auth, alen, "Bearer %s", api_key);
    emu_limit_init(&srv.per_second, (uint32_t)rate, 1000);
    emu_limit_init(&srv.overall, lim_overall, win_overall);
    emu_limit_init(&srv.user_management, lim_um, win_um);
    if (statelog) {
        srv.statelog = fopen(statelog, "a");
        if (srv.statelog == NULL) {
            fprintf(stderr, "workos-emulator: cannot open state log %s\n", statelog);
            goto out;
        }
    }
    if (reqlog) {
        srv.reqlog = fopen(reqlog, "a");
        if (srv.reqlog == NULL) {
            fprintf(stderr, "workos-emulator: cannot open request log %s\n", reqlog);
            goto out;
        }
    }

    /* Writes to a peer that hung up (drop faults, impatient clients) must
     * fail with EPIPE rather than kill the process. */
    signal(SIGPIPE, SIG_IGN);
    srv.base = event_base_new();
    srv.http = srv.base ? evhttp_new(srv.base) : NULL;
    if (srv.http == NULL) {
        fprintf(stderr, "workos-emulator: libevent initialisation failed\n");
        goto out;
    }
    evhttp_set_allowed_methods(srv.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
    evhttp_set_max_headers_size(srv.http, 64 << 10);
    evhttp_set_max_body_size(srv.http, MAX_BODY);
    evhttp_set_timeout(srv.http, 120);
    evhttp_set_gencb(srv.http, on_request, &srv);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(srv.http, bind_addr, (ev_uint16_t)port);
    if (bound == NULL) {
        fprintf(stderr, "workos-emulator: cannot listen on %s:%llu\n", bind_addr,
                (unsigned long long)port);
        goto out;
    }
    /* Accepted sockets inherit this: without it a page that spans several
     * segments waits for the client's delayed ACK (40 ms) on every request. */
    int one = 1;
    setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) != 0) {
        fprintf(stderr, "workos-emulator: getsockname failed\n");
        goto out;
    }
    int actual = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    srv.sig_term = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
    srv.sig_int = evsignal_new(srv.base, SIGINT, on_signal, &srv);
    if (srv.sig_term == NULL || srv.sig_int == NULL || evsignal_add(srv.sig_term, NULL) != 0 ||
        evsignal_add(srv.sig_int, NULL) != 0) {
        fprintf(stderr, "workos-emulator: cannot install signal handlers\n");
        goto out;
    }
    if (port_file && !write_port_file(port_file, actual, err, sizeof(err))) {
        fprintf(stderr, "workos-emulator: %s\n", err);
        goto out;
    }
    fprintf(stderr, "loaded events=%zu\nlistening port=%d\n", emu_store_count(srv.store), actual);
    fflush(stderr);
    event_base_dispatch(srv.base);
    fprintf(stderr, "exiting requests=%llu\n", (unsigned long long)srv.requests);
    rc = 0;
out:
    serve_cleanup(&srv);
    return rc;
}
