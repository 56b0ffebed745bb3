/*
 * Unit tests for daemon/webhook_head.c: where a head ends, what is parsed
 * out of it, how a request is routed, and the header-time verdict for each
 * kind of refusal and for a request that passes.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "runner.h"
#include "webhook_head.h"

#define NOW INT64_C(1790000000000)
#define SIG_OK_HDR                                                                                 \
    "t=1790000000000, v1=0000000000000000000000000000000000000000000000000000000000000000"

static const struct {
    const char *text;
    size_t end; /* 0: not complete */
} ends[] = {
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27},
    {"GET / HTTP/1.1\nHost: x\n\n", 24},
    {"GET / HTTP/1.1\r\nHost: x\r\n", 0},
    {"GET / HTTP/1.1\r\nHost: x\r\n\r", 0},
    {"P", 0},
    {"", 0},
    {"GET / HTTP/1.1\r\n\r\nbody", 18},
};

START_TEST(head_end)
{
    ck_assert_uint_eq(webhook_head_end(ends[_i].text, strlen(ends[_i].text)), ends[_i].end);
}
END_TEST

/* Byte streams as a connection may deliver them: a head, then a body or the
 * next request; `end` is where the first head ends (a lone CR ends no line). */
static const struct {
    const char *text;
    size_t end;
} streams[] = {
    {"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n", 33},
    {"POST /w HTTP/1.1\r\nContent-Length: 4\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", 39},
    {"GET / HTTP/1.1\nHost: x\n\r\nnext", 25},
    {"GET / HTTP/1.1\r\nA: \r\n\r\r\n\r\n", 26},
};

/* Every prefix of a stream, as a head cut at any byte arrives: no end until
 * the first head is whole, then always that end, whatever follows it. */
START_TEST(head_end_prefixes)
{
    const char *t = streams[_i].text;
    size_t end = streams[_i].end;
    ck_assert_uint_eq(webhook_head_end(t, strlen(t)), end);
    for (size_t len = 0; len <= strlen(t); len++)
        ck_assert_uint_eq(webhook_head_end(t, len), len < end ? 0 : end);
}
END_TEST

static const struct {
    const char *text;
    bool ok;
    const char *method, *path;
    int64_t length;
    bool chunked, has_sig;
    const char *sig;
} parses[] = {
    {"POST /webhooks/workos HTTP/1.1\r\nContent-Length: 12\r\nWorkOS-Signature:  t=1, v1=ab "
     "\r\n\r\n",
     true, "POST", "/webhooks/workos", 12, false, true, "t=1, v1=ab"},
    {"GET /healthz?x=1 HTTP/1.0\r\n\r\n", true, "GET", "/healthz", -1, false, false, ""},
    {"GET http://h:1/readyz#f HTTP/1.1\r\n\r\n", true, "GET", "/readyz", -1, false, false, ""},
    {"GET http://h:1 HTTP/1.1\r\n\r\n", true, "GET", "/", -1, false, false, ""},
    {"\r\nPOST /p HTTP/1.1\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\n\r\n", true,
     "POST", "/p", 0, true, false, ""},
    {"POST /p HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", true, "POST", "/p", 5,
     false, false, ""},
    {"POST /p HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false, NULL, NULL, 0,
     false, false, NULL},
    {"POST /p HTTP/1.1\r\nContent-Length: -5\r\n\r\n", false, NULL, NULL, 0, false, false, NULL},
    {"POST /p HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", false, NULL, NULL, 0, false, false, NULL},
    {"POST /p HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n", false, NULL, NULL, 0, false,
     false, NULL},
    {"POST /p HTTP/1.1\r\nno colon here\r\n\r\n", false, NULL, NULL, 0, false, false, NULL},
    {"POST /p\r\n\r\n", false, NULL, NULL, 0, false, false, NULL},
    {"PO(ST /p HTTP/1.1\r\n\r\n", false, NULL, NULL, 0, false, false, NULL},
    {"POST /p FTP/1.1\r\n\r\n", false, NULL, NULL, 0, false, false, NULL},
    {"AVERYLONGMETHODNAME /p HTTP/1.1\r\n\r\n", false, NULL, NULL, 0, false, false, NULL},
};

START_TEST(head_parse)
{
    webhook_head_t h;
    bool ok = webhook_head_parse(parses[_i].text, strlen(parses[_i].text), &h);
    ck_assert_msg(ok == parses[_i].ok, "case %d: want %d", _i, parses[_i].ok);
    if (!ok)
        return;
    ck_assert_str_eq(h.method, parses[_i].method);
    ck_assert_str_eq(h.path, parses[_i].path);
    ck_assert_int_eq(h.content_length, parses[_i].length);
    ck_assert_int_eq(h.chunked, parses[_i].chunked);
    ck_assert_int_eq(h.has_signature, parses[_i].has_sig);
    ck_assert_str_eq(h.signature, parses[_i].sig);
}
END_TEST

/* Heads with a NUL byte where the '@' is, in the method, the path and the
 * fields: refused, where the same head without it parses.  Read as C
 * strings, "POST\0x" would be "POST". */
static const char *const nuls[] = {
    "POST@x /webhooks/workos HTTP/1.1\r\n\r\n",
    "@POST /webhooks/workos HTTP/1.1\r\n\r\n",
    "POST /webhooks/workos@/x HTTP/1.1\r\n\r\n",
    "POST /webhooks/workos HTTP/1.1\r\nWorkOS-Signature: t=1@, v1=ab\r\n\r\n",
    "POST /webhooks/workos HTTP/1.1\r\nContent@-Length: 5\r\n\r\n",
};

START_TEST(head_parse_nul)
{
    char with[128], without[128];
    size_t n = 0, len = strlen(nuls[_i]);
    webhook_head_t h;

    ck_assert_uint_lt(len, sizeof(with));
    for (size_t k = 0; k < len; k++) {
        with[k] = nuls[_i][k] == '@' ? '\0' : nuls[_i][k];
        if (nuls[_i][k] != '@')
            without[n++] = nuls[_i][k];
    }
    ck_assert_uint_eq(n, len - 1);
    ck_assert(!webhook_head_parse(with, len, &h));
    ck_assert(webhook_head_parse(without, n, &h));
}
END_TEST

static const struct {
    const char *method, *path;
    webhook_route_t want;
} routes[] = {
    {"POST", "/wh", WEBHOOK_ROUTE_WEBHOOK},
    {"GET", "/wh", WEBHOOK_ROUTE_WEBHOOK_METHOD},
    {"PUT", "/wh", WEBHOOK_ROUTE_WEBHOOK_METHOD},
    {"GET", "/healthz", WEBHOOK_ROUTE_HEALTHZ},
    {"HEAD", "/readyz", WEBHOOK_ROUTE_READYZ},
    {"GET", "/metrics", WEBHOOK_ROUTE_METRICS},
    {"POST", "/metrics", WEBHOOK_ROUTE_PROBE_METHOD},
    {"POST", "/wh/", WEBHOOK_ROUTE_NOT_FOUND},
    {"GET", "/", WEBHOOK_ROUTE_NOT_FOUND},
};

START_TEST(route)
{
    ck_assert_int_eq(webhook_route(routes[_i].method, routes[_i].path, "/wh"), routes[_i].want);
}
END_TEST

static const struct {
    const char *name;
    const char *method, *path;
    int64_t length;
    bool chunked;
    const char *sig; /* NULL: no header */
    size_t unverified;
    int status;
    const char *log_key;
    bool counted;
} verdicts[] = {
    {"signed webhook passes", "POST", "/wh", 100, false, SIG_OK_HDR, 0, 0, NULL, false},
    {"empty body passes", "POST", "/wh", 0, false, SIG_OK_HDR, 0, 0, NULL, false},
    {"probe passes", "GET", "/healthz", -1, false, NULL, 0, 0, NULL, false},
    {"no signature", "POST", "/wh", 100, false, NULL, 0, 401, "signature_missing", true},
    {"malformed signature", "POST", "/wh", 100, false, "garbage", 0, 401, "signature_malformed",
     true},
    {"stale", "POST", "/wh", 100, false,
     "t=1789000000000, v1=0000000000000000000000000000000000000000000000000000000000000000", 0, 401,
     "signature_stale", true},
    {"future", "POST", "/wh", 100, false,
     "t=1791000000000, v1=0000000000000000000000000000000000000000000000000000000000000000", 0, 401,
     "signature_future", true},
    {"over max_body", "POST", "/wh", 2049, false, SIG_OK_HDR, 0, 413, "body_too_large", true},
    {"at max_body", "POST", "/wh", 2048, false, SIG_OK_HDR, 0, 0, NULL, false},
    {"no length", "POST", "/wh", -1, false, SIG_OK_HDR, 0, 411, "no_length", true},
    {"chunked", "POST", "/wh", -1, true, SIG_OK_HDR, 0, 411, "no_length", true},
    {"no room left", "POST", "/wh", 100, false, SIG_OK_HDR, 9950, 503, "unverified_full", true},
    {"just room left", "POST", "/wh", 100, false, SIG_OK_HDR, 9900, 0, NULL, false},
    {"budget overrun", "POST", "/wh", 0, false, SIG_OK_HDR, 20000, 503, "unverified_full", true},
    {"GET on the webhook path", "GET", "/wh", -1, false, NULL, 0, 405, "method", true},
    {"unknown path", "POST", "/other", 10, false, SIG_OK_HDR, 0, 404, "not_found", true},
    {"probe with a body", "GET", "/metrics", 5, false, NULL, 0, 400, "unexpected_body", true},
    {"probe, wrong method", "DELETE", "/readyz", -1, false, NULL, 0, 405, "method", true},
};

START_TEST(verdict)
{
    webhook_head_t h = {.content_length = verdicts[_i].length, .chunked = verdicts[_i].chunked};
    snprintf(h.method, sizeof(h.method), "%s", verdicts[_i].method);
    snprintf(h.path, sizeof(h.path), "%s", verdicts[_i].path);
    if (verdicts[_i].sig != NULL) {
        h.has_signature = true;
        snprintf(h.signature, sizeof(h.signature), "%s", verdicts[_i].sig);
    }
    webhook_head_limits_t lim = {.webhook_path = "/wh",
                                 .max_body = 2048,
                                 .tolerance_ms = 180000,
                                 .now_ms = NOW,
                                 .unverified = verdicts[_i].unverified,
                                 .max_unverified = 10000};
    webhook_verdict_t v = webhook_head_verdict(&h, &lim);
    ck_assert_msg(v.status == verdicts[_i].status, "%s: want %d, got %d", verdicts[_i].name,
                  verdicts[_i].status, v.status);
    if (v.status == 0) {
        ck_assert_uint_eq(v.body, verdicts[_i].length > 0 ? (size_t)verdicts[_i].length : 0);
        return;
    }
    ck_assert_str_eq(v.log_key, verdicts[_i].log_key);
    ck_assert_int_eq(v.counted, verdicts[_i].counted);
    ck_assert_ptr_nonnull(v.reason);
    ck_assert_ptr_nonnull(v.message);
    if (v.status == 405)
        ck_assert_ptr_nonnull(v.allow);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("webhook_head");
    TCase *tc = tcase_create("head");
    tcase_add_loop_test(tc, head_end, 0, (int)(sizeof(ends) / sizeof(ends[0])));
    tcase_add_loop_test(tc, head_end_prefixes, 0, (int)(sizeof(streams) / sizeof(streams[0])));
    tcase_add_loop_test(tc, head_parse, 0, (int)(sizeof(parses) / sizeof(parses[0])));
    tcase_add_loop_test(tc, head_parse_nul, 0, (int)(sizeof(nuls) / sizeof(nuls[0])));
    tcase_add_loop_test(tc, route, 0, (int)(sizeof(routes) / sizeof(routes[0])));
    tcase_add_loop_test(tc, verdict, 0, (int)(sizeof(verdicts) / sizeof(verdicts[0])));
    suite_add_tcase(s, tc);
    return s;
}
