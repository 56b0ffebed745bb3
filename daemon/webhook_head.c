/*
 * webhook_head: request head parsing, routing and the header-time verdict
 * (see webhook_head.h).
 */
#include "webhook_head.h"

#include <string.h>
#include <strings.h>

#include "signature.h"

size_t webhook_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* The next line of [*p, end) without its CR LF; advances *p past it. */
static bool next_line(const char **p, const char *end, const char **line, size_t *n)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (nl == NULL)
        return false;
    *line = *p;
    *n = (size_t)(nl - *p);
    if (*n > 0 && (*line)[*n - 1] == '\r')
        (*n)--;
    *p = nl + 1;
    return true;
}

static bool copy_field(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool is_token_char(char c)
{
    /* (strchr would find the terminator: webhook_head_parse refuses NUL first.) */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The path of a request target: origin form "/p?q" or absolute "http://h/p?q". */
static bool target_path(webhook_head_t *h, const char *t, size_t n)
{
    const char *scheme = n > 3 ? memchr(t, ':', n) : NULL;
    if (t[0] != '/' && scheme != NULL && (size_t)(t + n - scheme) > 3 && scheme[1] == '/' &&
        scheme[2] == '/') {
        const char *host = scheme + 3;
        const char *slash = memchr(host, '/', (size_t)(t + n - host));
        if (slash == NULL)
            return copy_field(h->path, sizeof(h->path), "/", 1);
        n -= (size_t)(slash - t);
        t = slash;
    }
    size_t k = 0;
    while (k < n && t[k] != '?' && t[k] != '#')
        k++;
    return copy_field(h->path, sizeof(h->path), t, k);
}

static bool parse_length(const char *v, size_t n, int64_t *out)
{
    int64_t x = 0;
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return true;
}

bool webhook_head_parse(const char *buf, size_t len, webhook_head_t *h)
{
    const char *p = buf, *end = buf + len, *line;
    size_t n;

    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    /* No NUL anywhere (RFC 9110 5.5): the fields are read as C strings
     * from here on, and a NUL would cut them short, e.g. "POST\0x" read as
     * "POST". */
    if (memchr(buf, '\0', len) != NULL)
        return false;
    /* Blank lines before the request line are tolerated (RFC 9112 2.2). */
    do {
        if (!next_line(&p, end, &line, &n))
            return false;
    } while (n == 0);
    const char *sp1 = memchr(line, ' ', n);
    if (sp1 == NULL || sp1 == line)
        return false;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(line + n - target));
    if (sp2 == NULL || sp2 == target || (size_t)(line + n - sp2) < 6 ||
        strncmp(sp2 + 1, "HTTP/", 5) != 0)
        return false;
    for (const char *c = line; c < sp1; c++)
        if (!is_token_char(*c))
            return false;
    if (!copy_field(h->method, sizeof(h->method), line, (size_t)(sp1 - line)) ||
        !target_path(h, target, (size_t)(sp2 - target)))
        return false;

    while (next_line(&p, end, &line, &n) && n > 0) {
        if (line[0] == ' ' || line[0] == '\t')
            continue; /* an obsolete folded continuation: none of ours */
        const char *colon = memchr(line, ':', n);
        if (colon == NULL || colon == line)
            return false;
        size_t name_len = (size_t)(colon - line);
        const char *v = colon + 1, *ve = line + n;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vn = (size_t)(ve - v);
        if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            int64_t cl;
            if (!parse_length(v, vn, &cl) || (h->content_length >= 0 && h->content_length != cl))
                return false;
            h->content_length = cl;
        } else if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
            h->chunked = true;
        } else if (name_len == 16 && strncasecmp(line, "WorkOS-Signature", 16) == 0) {
            h->has_signature = true;
            if (!copy_field(h->signature, sizeof(h->signature), v, vn))
                h->signature[0] = '\0';
        }
    }
    return true;
}

webhook_route_t webhook_route(const char *method, const char *path, const char *webhook_path)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(path, webhook_path) == 0)
        return strcmp(method, "POST") == 0 ? WEBHOOK_ROUTE_WEBHOOK : WEBHOOK_ROUTE_WEBHOOK_METHOD;
    webhook_route_t probe;
    if (strcmp(path, "/healthz") == 0)
        probe = WEBHOOK_ROUTE_HEALTHZ;
    else if (strcmp(path, "/readyz") == 0)
        probe = WEBHOOK_ROUTE_READYZ;
    else if (strcmp(path, "/metrics") == 0)
        probe = WEBHOOK_ROUTE_METRICS;
    else
        return WEBHOOK_ROUTE_NOT_FOUND;
    return get ? probe : WEBHOOK_ROUTE_PROBE_METHOD;
}

static webhook_verdict_t refuse(webhook_route_t route, int status, const char *reason,
                                const char *message, const char *log_key)
{
    bool webhook = route == WEBHOOK_ROUTE_WEBHOOK || route == WEBHOOK_ROUTE_WEBHOOK_METHOD;
    webhook_verdict_t v = {
        .status = status,
        .reason = reason,
        .message = message,
        .log_key = log_key,
        .json = webhook,
        /* Webhook answers always count; other refusals but 503 too. */
        .counted = webhook || status != 503,
        .route = route,
    };
    return v;
}

webhook_verdict_t webhook_head_verdict(const webhook_head_t *h, const webhook_head_limits_t *lim)
{
    webhook_route_t route = webhook_route(h->method, h->path, lim->webhook_path);
    webhook_verdict_t v;

    switch (route) {
    case WEBHOOK_ROUTE_NOT_FOUND:
        return refuse(route, 404, "Not Found", "not found", "not_found");
    case WEBHOOK_ROUTE_WEBHOOK_METHOD:
        v = refuse(route, 405, "Method Not Allowed", "use POST", "method");
        v.allow = "POST";
        return v;
    case WEBHOOK_ROUTE_PROBE_METHOD:
        v = refuse(route, 405, "Method Not Allowed", "use GET", "method");
        v.allow = "GET, HEAD";
        return v;
    case WEBHOOK_ROUTE_HEALTHZ:
    case WEBHOOK_ROUTE_READYZ:
    case WEBHOOK_ROUTE_METRICS:
        if (h->chunked || h->content_length > 0)
            return refuse(route, 400, "Bad Request", "no body expected", "unexpected_body");
        v = refuse(route, 0, NULL, NULL, NULL);
        return v;
    case WEBHOOK_ROUTE_WEBHOOK:
        break;
    }
    if (h->chunked || h->content_length < 0)
        return refuse(route, 411, "Length Required", "Content-Length required", "no_length");
    if ((uint64_t)h->content_length > lim->max_body)
        return refuse(route, 413, "Payload Too Large", "body too large", "body_too_large");
    /* With no secret to try, sig_verify stops after the checks a head
     * allows (present, well formed, within the tolerance) and says
     * "mismatch" when they all pass: the MAC waits for the body. */
    sig_result_t sig = sig_verify(h->has_signature ? h->signature : NULL, "", 0, NULL, 0,
                                  lim->now_ms, lim->tolerance_ms);
    switch (sig) {
    case SIG_MISSING:
        return refuse(route, 401, "Unauthorized", "signature missing", "signature_missing");
    case SIG_MALFORMED:
        return refuse(route, 401, "Unauthorized", "signature malformed", "signature_malformed");
    case SIG_STALE:
        return refuse(route, 401, "Unauthorized", "signature stale", "signature_stale");
    case SIG_FUTURE:
        return refuse(route, 401, "Unauthorized", "signature future", "signature_future");
    case SIG_OK:
    case SIG_MISMATCH:
        break;
    }
    size_t body = (size_t)h->content_length;
    if (lim->unverified > lim->max_unverified || body > lim->max_unverified - lim->unverified)
        return refuse(route, 503, "Service Unavailable", "overloaded, retry later",
                      "unverified_full");
    v = refuse(route, 0, NULL, NULL, NULL);
    v.body = body;
    return v;
}
