/*
 * Webhook sender for tests of the daemon's receiver. Each selected event is
 * POSTed with its stored bytes as the body, signed the way WorkOS signs
 * webhooks. Deliveries run one at a time on a single keep-alive connection;
 * a 5xx, a 429, a timeout or a connection error is retried with a capped
 * exponential pause, any other answer is final. The signature is computed
 * here, independently of the daemon's own code, so the two check each other.
 */
#include "emu_send.h"

#include "emu_store.h"
#include "emu_util.h"

#include <curl/curl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RETRIES 20
#define MAX_TIMEOUT_MS 600000u
#define MAX_SKEW_MS 315360000000LL /* ten years */

typedef enum {
    ORDER_STREAM,  /* as in the file */
    ORDER_REVERSE, /* newest first */
    ORDER_SHUFFLE, /* seeded random permutation */
} order_t;

typedef enum {
    EXPECT_2XX, /* valid signatures must be accepted */
    EXPECT_401, /* every delivery must be refused (e.g. skew beyond tolerance) */
} expect_t;

typedef struct {
    CURL *curl;
    const char *url;
    const char *secret;
    int64_t skew_ms;
    unsigned retries;
    long timeout_ms;
    expect_t expect;
    FILE *log;
    uint64_t deliveries, attempts, ok, unexpected;
} sender_t;

static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * nmemb;
}

/* Writes the header value "t=<t>, v1=<hex>" into out; a bad signature has
 * its first MAC byte flipped. Returns false if the MAC cannot be computed. */
EMU_WUR static bool sign(const sender_t *s, int64_t t, const char *body, size_t len, bool bad,
                         char *out, size_t outlen)
{
    emu_buf_t msg = {0};
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    emu_buf_printf(&msg, "%lld.", (long long)t);
    emu_buf_add(&msg, body, len);
    unsigned char *r = HMAC(EVP_sha256(), s->secret, (int)strlen(s->secret),
                            (const unsigned char *)msg.data, msg.len, mac, &maclen);
    emu_buf_free(&msg);
    if (r == NULL || maclen != 32)
        return false;
    if (bad)
        mac[0] ^= 0x5A;
    int n = snprintf(out, outlen, "t=%lld, v1=", (long long)t);
    for (unsigned i = 0; i < maclen && n > 0 && (size_t)n + 2 < outlen; i++)
        n += snprintf(out + n, outlen - (size_t)n, "%02x", mac[i]);
    return true;
}

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static bool retryable(CURLcode cc, long status)
{
    if (cc != CURLE_OK)
        return true;
    return status == 429 || status >= 500;
}

/* Delivers one event, retrying as a webhook sender would; updates counters.
 * Returns false only on a local failure (no MAC, no header list). */
EMU_WUR static bool deliver(sender_t *s, const char *id, const char *body, size_t len, bool bad)
{
    long status = 0;
    CURLcode cc = CURLE_OK;
    s->deliveries++;
    for (unsigned attempt = 1; attempt <= s->retries + 1; attempt++) {
        char sig[160], hdr[200];
        int64_t t = emu_now_ms() + s->skew_ms;
        if (t < 0)
            t = 0;
        if (!sign(s, t, body, len, bad, sig, sizeof(sig)))
            return false;
        snprintf(hdr, sizeof(hdr), "WorkOS-Signature: %s", sig);
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;
        struct curl_slist *h3 = h2 ? curl_slist_append(h2, hdr) : NULL;
        if (h3 == NULL) {
            curl_slist_free_all(h2 ? h2 : h);
            return false;
        }
        curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, h3);
        curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        cc = curl_easy_perform(s->curl);
        status = 0;
        if (cc == CURLE_OK)
            curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(h3);
        s->attempts++;
        if (s->log) {
            emu_buf_t line = {0};
            emu_buf_printf(&line, "ts_ms=%lld id=", (long long)emu_now_ms());
            emu_buf_logfmt(&line, id);
            emu_buf_printf(&line, " attempt=%u signature=%s status=%ld curl=%d\n", attempt,
                           bad ? "bad" : "valid", status, (int)cc);
            fwrite(line.data, 1, line.len, s->log);
            fflush(s->log);
            emu_buf_free(&line);
        }
        if (!retryable(cc, status) || attempt > s->retries)
            break;
        long wait = 100L << (attempt - 1 < 5 ? attempt - 1 : 5);
        pause_ms(wait > 2000 ? 2000 : wait);
    }
    bool want_reject = bad || s->expect == EXPECT_401;
    bool got = cc == CURLE_OK && (want_reject ? status == 401 : (status >= 200 && status < 300));
    if (got)
        s->ok++;
    else
        s->unexpected++;
    return true;
}

static void usage(void)
{
    fputs("usage: workos-emulator send --url URL --secret SECRET --events FILE.jsonl\n"
          "         [--first N] [--count N] [--order stream|reverse|shuffle] [--seed S]\n"
          "         [--duplicate PCT] [--bad-signature PCT] [--skew-ms MS]\n"
          "         [--expect 2xx|401] [--retries N] [--timeout-ms MS] [--log PATH]\n",
          stderr);
}

/* Parses a signed decimal within +-max. */
EMU_WUR static bool parse_i64(const char *s, int64_t max, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v;
    if (!emu_parse_u64(neg ? s + 1 : s, (uint64_t)max, &v))
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

int emu_send_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"secret", required_argument, NULL, 's'},
        {"events", required_argument, NULL, 'e'},
        {"first", required_argument, NULL, 'f'},
        {"count", required_argument, NULL, 'n'},
        {"order", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 'S'},
        {"duplicate", required_argument, NULL, 'd'},
        {"bad-signature", required_argument, NULL, 'b'},
        {"skew-ms", required_argument, NULL, 'k'},
        {"expect", required_argument, NULL, 'x'},
        {"retries", required_argument, NULL, 'r'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    sender_t s = {0};
    const char *events = NULL, *log_path = NULL;
    uint64_t first = 0, count = UINT64_MAX, seed = 1, dup_pct = 0, bad_pct = 0, retries = 3;
    uint64_t timeout = 5000;
    order_t order = ORDER_STREAM;
    emu_store_t *st = NULL;
    uint32_t *sel = NULL;
    char err[512];
    int c, rc = 64;

    s.expect = EXPECT_2XX;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'u':
            s.url = optarg;
            break;
        case 's':
            s.secret = optarg;
            break;
        case 'e':
            events = optarg;
            break;
        case 'f':
            ok = emu_parse_u64(optarg, UINT32_MAX, &first);
            break;
        case 'n':
            ok = emu_parse_u64(optarg, UINT32_MAX, &count);
            break;
        case 'o':
            if (strcmp(optarg, "stream") == 0)
                order = ORDER_STREAM;
            else if (strcmp(optarg, "reverse") == 0)
                order = ORDER_REVERSE;
            else if (strcmp(optarg, "shuffle") == 0)
                order = ORDER_SHUFFLE;
            else
                ok = false;
            break;
        case 'S':
            ok = emu_parse_u64(optarg, UINT64_MAX, &seed);
            break;
        case 'd':
            ok = emu_parse_u64(optarg, 100, &dup_pct);
            break;
        case 'b':
            ok = emu_parse_u64(optarg, 100, &bad_pct);
            break;
        case 'k':
            ok = parse_i64(optarg, MAX_SKEW_MS, &s.skew_ms);
            break;
        case 'x':
            if (strcmp(optarg, "2xx") == 0)
                s.expect = EXPECT_2XX;
            else if (strcmp(optarg, "401") == 0)
                s.expect = EXPECT_401;
            else
                ok = false;
            break;
        case 'r':
            ok = emu_parse_u64(optarg, MAX_RETRIES, &retries);
            break;
        case 't':
            ok = emu_parse_u64(optarg, MAX_TIMEOUT_MS, &timeout) && timeout > 0;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 64;
        }
        if (!ok) {
            const char *name = "?";
            for (const struct option *o = opts; o->name; o++)
                if (o->val == c)
                    name = o->name;
            fprintf(stderr, "workos-emulator: --%s %s: bad value\n", name, optarg);
            return 64;
        }
    }
    if (s.url == NULL || s.secret == NULL || events == NULL || optind != argc) {
        usage();
        return 64;
    }
    s.retries = (unsigned)retries;
    s.timeout_ms = (long)timeout;

    rc = 1;
    st = emu_store_new();
    if (!emu_store_load_file(st, events, err, sizeof(err))) {
        fprintf(stderr, "workos-emulator: %s\n", err);
        goto out;
    }
    size_t total = emu_store_count(st);
    size_t from = first < total ? (size_t)first : total;
    size_t n = total - from < count ? total - from : (size_t)count;
    sel = emu_xmalloc((n ? n : 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        sel[i] = (uint32_t)(order == ORDER_REVERSE ? from + n - 1 - i : from + i);
    emu_rng_t rng;
    emu_rng_seed(&rng, seed);
    if (order == ORDER_SHUFFLE) {
        for (size_t i = n; i > 1; i--) {
            uint32_t j = (uint32_t)(emu_rng_next(&rng) % i);
            uint32_t tmp = sel[i - 1];
            sel[i - 1] = sel[j];
            sel[j] = tmp;
        }
    }
    if (log_path) {
        s.log = fopen(log_path, "a");
        if (s.log == NULL) {
            fprintf(stderr, "workos-emulator: cannot open %s\n", log_path);
            goto out;
        }
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "workos-emulator: curl initialisation failed\n");
        goto out;
    }
    s.curl = curl_easy_init();
    if (s.curl == NULL) {
        fprintf(stderr, "workos-emulator: curl initialisation failed\n");
        goto out_curl;
    }
    curl_easy_setopt(s.curl, CURLOPT_URL, s.url);
    curl_easy_setopt(s.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s.curl, CURLOPT_TIMEOUT_MS, s.timeout_ms);
    curl_easy_setopt(s.curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(s.curl, CURLOPT_USERAGENT, "workos-emulator/1");

    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *body = emu_store_raw(st, sel[i], &len);
        const char *id = emu_store_id(st, sel[i]);
        bool bad = bad_pct && emu_rng_below(&rng, 100) < bad_pct;
        if (!deliver(&s, id, body, len, bad)) {
            fprintf(stderr, "workos-emulator: cannot sign or send %s\n", id);
            goto out_curl;
        }
        /* A second delivery of the same event, as at-least-once senders do. */
        if (dup_pct && emu_rng_below(&rng, 100) < dup_pct && !deliver(&s, id, body, len, false)) {
            fprintf(stderr, "workos-emulator: cannot sign or send %s\n", id);
            goto out_curl;
        }
    }
    fprintf(stderr, "deliveries=%llu attempts=%llu ok=%llu unexpected=%llu\n",
            (unsigned long long)s.deliveries, (unsigned long long)s.attempts,
            (unsigned long long)s.ok, (unsigned long long)s.unexpected);
    rc = s.unexpected ? 1 : 0;
out_curl:
    if (s.curl)
        curl_easy_cleanup(s.curl);
    curl_global_cleanup();
out:
    if (s.log)
        fclose(s.log);
    free(sel);
    emu_store_free(st);
    return rc;
}
