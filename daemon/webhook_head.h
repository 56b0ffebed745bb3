/*
 * webhook_head: what the listener can decide from a request's head alone.
 *
 * Parses an HTTP/1.x request head (request line and header fields, as the
 * bytes arrived) into the few facts the listener needs, routes the method
 * and path, and gives the header-time verdict: pass the request on (with
 * how many body bytes follow), or refuse it now — wrong path or method, a
 * missing, malformed or out-of-tolerance WorkOS-Signature, a body length
 * that is absent or over max_body, or no room left for more unverified
 * bytes — before any body byte is read.  Pure: no I/O, no allocation, no
 * logging.
 */
#ifndef WORKOS_SYNCD_WEBHOOK_HEAD_H
#define WORKOS_SYNCD_WEBHOOK_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wur.h"

/* The longest head accepted (request line and all fields). */
#define WEBHOOK_HEAD_MAX 16384

typedef enum webhook_route {
    WEBHOOK_ROUTE_WEBHOOK,        /* POST to the webhook path */
    WEBHOOK_ROUTE_HEALTHZ,        /* GET or HEAD /healthz */
    WEBHOOK_ROUTE_READYZ,         /* GET or HEAD /readyz */
    WEBHOOK_ROUTE_METRICS,        /* GET or HEAD /metrics */
    WEBHOOK_ROUTE_NOT_FOUND,      /* any other path: 404 */
    WEBHOOK_ROUTE_WEBHOOK_METHOD, /* the webhook path, not POST: 405 */
    WEBHOOK_ROUTE_PROBE_METHOD,   /* a probe path, neither GET nor HEAD: 405 */
} webhook_route_t;

typedef struct webhook_head {
    char method[16];        /* as sent, e.g. "POST" */
    char path[1024];        /* the target's path, without query or fragment */
    int64_t content_length; /* -1 when there is no Content-Length */
    bool chunked;           /* a Transfer-Encoding field is present */
    bool has_signature;     /* a WorkOS-Signature field is present */
    char signature[256];    /* its value, trimmed ("" when absent or too long) */
} webhook_head_t;

/*
 * Where in buf[0..len) the head ends: the offset just past the empty line
 * that closes it (CRLF or LF line ends), or 0 when it is not complete yet.
 */
size_t webhook_head_end(const char *buf, size_t len);

/*
 * Parses the complete head buf[0..len) (as delimited by webhook_head_end)
 * into *h.  Returns false for a head that is not a request line followed
 * by `name: value` fields, one holding a NUL byte, a method or path too
 * long for *h, or a Content-Length that is not one decimal number
 * (repeated fields must agree).
 */
bool webhook_head_parse(const char *buf, size_t len, webhook_head_t *h) WUR;

/* Routes a request by method and path; `webhook_path` is [webhook] path. */
webhook_route_t webhook_route(const char *method, const char *path, const char *webhook_path);

typedef struct webhook_head_limits {
    const char *webhook_path; /* [webhook] path */
    size_t max_body;          /* [webhook] max_body */
    int64_t tolerance_ms;     /* [webhook] tolerance */
    int64_t now_ms;           /* wall clock, ms since the epoch */
    size_t unverified;        /* body bytes already admitted and not yet verified */
    size_t max_unverified;    /* the bound on those */
} webhook_head_limits_t;

typedef struct webhook_verdict {
    int status;            /* 0: pass the request on; else the status to answer now */
    const char *reason;    /* HTTP reason phrase */
    const char *message;   /* what the answer says */
    const char *log_key;   /* reason= of the log line, e.g. "signature_stale" */
    const char *allow;     /* value of an Allow field, or NULL */
    bool json;             /* answer {"error":"<message>"}, else message as text */
    bool counted;          /* counts in the webhook responses metric */
    webhook_route_t route; /* where the request goes */
    size_t body;           /* body bytes that follow, when passed on */
} webhook_verdict_t;

/*
 * The header-time verdict for a parsed head.  A webhook passes only with a
 * Content-Length of at most max_body, a WorkOS-Signature that is well
 * formed and within the tolerance (its MAC is checked later, against the
 * body), and room for its body under max_unverified.  A probe passes only
 * without a body.  Every refusal here is one the handlers would also give
 * once the body were read, except 411 (no Content-Length) and 503 (no room).
 */
webhook_verdict_t webhook_head_verdict(const webhook_head_t *h, const webhook_head_limits_t *lim);

#endif
