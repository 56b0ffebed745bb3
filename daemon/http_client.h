/*
 * http_client: outgoing HTTP requests through libcurl's multi interface,
 * driven by the libevent loop (curl_multi_socket_action from socket and
 * timer callbacks), so a slow WorkOS never blocks the loop.
 */
#ifndef WORKOS_SYNCD_HTTP_CLIENT_H
#define WORKOS_SYNCD_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include "wur.h"

typedef struct http_client http_client_t;
typedef struct http_request http_request_t;

/* What came back.  Valid only during the completion callback. */
typedef struct http_response {
    bool transport_ok;      /* false: no HTTP answer (timeout, reset, ...) */
    long status;            /* HTTP status when transport_ok */
    const char *body;       /* NUL-terminated body, possibly empty */
    size_t len;             /* body length */
    int64_t retry_after_ms; /* Retry-After as milliseconds, or -1 when absent */
    const char *error;      /* transport error text when !transport_ok */
    int64_t elapsed_ms;     /* time from start to completion */
} http_response_t;

typedef void (*http_done_fn)(void *arg, const http_response_t *resp);

/* A client on `base`, or NULL when curl cannot be set up. */
http_client_t *http_client_new(struct event_base *base);

/* Cancels every request in flight (without callbacks) and frees; accepts NULL. */
void http_client_free(http_client_t *c);

/*
 * Starts a GET of `url`.  `bearer`, when not NULL, is sent as
 * "Authorization: Bearer ..." and never logged.  The whole exchange is
 * limited to `timeout_ms`; bodies over `max_body` bytes fail the request.
 * `done` is called exactly once from the loop, unless the request is
 * cancelled first.  Returns the request handle, or NULL on setup failure
 * (then `done` is not called).
 */
http_request_t *http_get(http_client_t *c, const char *url, const char *bearer, int64_t timeout_ms,
                         size_t max_body, http_done_fn done, void *arg) WUR;

/* Cancels a request in flight; its callback will not run.  Accepts NULL. */
void http_cancel(http_request_t *r);

/* The longest wait a Retry-After is taken for, in either of its forms. */
#define HTTP_RETRY_AFTER_MAX_S 86400

/*
 * A Retry-After value -- delta-seconds or an HTTP date, blanks and a line
 * end around it allowed -- as milliseconds from `now` (seconds since the
 * epoch): at most HTTP_RETRY_AFTER_MAX_S seconds, 0 for a date already
 * past, -1 for a value of neither form.
 */
int64_t http_retry_after_ms(const char *value, time_t now);

#endif
