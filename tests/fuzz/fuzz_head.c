/*
 * libFuzzer target for daemon/webhook_head.c, which reads the bytes any
 * client sends before anything about the request is verified.  The input
 * is the stream a connection delivers.  Besides "no crash, no leak, no
 * undefined behaviour", it checks what must hold for any input:
 *
 *   - the head ends where its first empty line does: every shorter prefix
 *     is incomplete and every longer one ends at the same place;
 *   - a parsed head holds NUL-terminated fields within their bounds, a
 *     method of token characters, a path without query or fragment, and
 *     no signature text without a signature field;
 *   - a request the verdict passes is routed as webhook_route() says, and
 *     a webhook passes only with a length within max_body and the room
 *     left for unverified bytes; a refusal always says why;
 *   - parsing is a function of the bytes: twice, the same result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXED_NOW INT64_C(1790000000000)

static void check_fields(const webhook_head_t *h)
{
    size_t m = strnlen(h->method, sizeof(h->method));
    if (m == 0 || m == sizeof(h->method) || strnlen(h->path, sizeof(h->path)) == sizeof(h->path) ||
        strnlen(h->signature, sizeof(h->signature)) == sizeof(h->signature))
        abort();
    if (strspn(h->method,
               "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") !=
        m)
        abort();
    if (strpbrk(h->path, "?#") != NULL || h->content_length < -1)
        abort();
    if (!h->has_signature && h->signature[0] != '\0')
        abort();
}

static void check_verdict(const webhook_head_t *h, size_t unverified)
{
    const webhook_head_limits_t lim = {
        .webhook_path = "/webhooks/workos",
        .max_body = 1024,
        .tolerance_ms = 180000,
        .now_ms = FIXED_NOW,
        .unverified = unverified,
        .max_unverified = 4096,
    };
    webhook_verdict_t v = webhook_head_verdict(h, &lim);

    if (v.route != webhook_route(h->method, h->path, lim.webhook_path))
        abort();
    if (v.status != 0) {
        if (v.status < 400 || v.status > 599 || v.reason == NULL || v.message == NULL ||
            v.log_key == NULL)
            abort();
        return;
    }
    switch (v.route) {
    case WEBHOOK_ROUTE_WEBHOOK:
        if (!h->has_signature || h->chunked || h->content_length < 0 ||
            v.body != (size_t)h->content_length || v.body > lim.max_body ||
            lim.unverified + v.body > lim.max_unverified)
            abort();
        return;
    case WEBHOOK_ROUTE_HEALTHZ:
    case WEBHOOK_ROUTE_READYZ:
    case WEBHOOK_ROUTE_METRICS:
        if (v.body != 0 || h->chunked || h->content_length > 0)
            abort();
        return;
    case WEBHOOK_ROUTE_NOT_FOUND:
    case WEBHOOK_ROUTE_WEBHOOK_METHOD:
    case WEBHOOK_ROUTE_PROBE_METHOD:
        break;
    }
    abort(); /* these are always refused */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t end = webhook_head_end(buf, size);

    if (end > size || (end > 0 && buf[end - 1] != '\n'))
        abort();
    if (end == 0)
        return 0;
    if (webhook_head_end(buf, end) != end || webhook_head_end(buf, end - 1) != 0)
        abort();

    webhook_head_t a, b;
    bool ok = webhook_head_parse(buf, end, &a);
    if (webhook_head_parse(buf, end, &b) != ok || (ok && memcmp(&a, &b, sizeof(a)) != 0))
        abort();
    if (!ok)
        return 0;
    check_fields(&a);
    check_verdict(&a, 0);
    check_verdict(&a, 4000);
    return 0;
}
