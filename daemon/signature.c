/*
 * signature: parsing, verification and creation of the WorkOS-Signature
 * header.  The MAC is computed with OpenSSL's EVP_MAC interface, fed in
 * pieces ("<t>", ".", body) so that a large body is hashed where it lies;
 * the comparison is CRYPTO_memcmp.  The timestamp text from the header,
 * not a re-printed integer, goes into the MAC, because the sender signed
 * the digits it wrote (leading zeros included).
 */
#include "signature.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* What sig_parse found, plus where the timestamp digits lie in the header. */
typedef struct sig_header {
    int64_t t_ms;
    const char *t_text; /* points into the header; not NUL-terminated */
    size_t t_len;
    unsigned char v1[SIG_MAC_LEN];
} sig_header_t;

/* One MAC computation context; fetched once per call and reused per secret. */
typedef struct sig_mac {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
} sig_mac_t;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Keys are short tokens; anything else means the header is not ours. */
static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

static bool parse_millis(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_mac_hex(const char *s, size_t n, unsigned char out[SIG_MAC_LEN])
{
    if (n != (size_t)2 * SIG_MAC_LEN)
        return false;
    for (size_t i = 0; i < SIG_MAC_LEN; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/*
 * Walks the comma-separated items once.  Empty items, items without '=',
 * and a repeated t or v1 are rejected: a header that could be read two
 * ways must not be read at all.
 */
static bool parse_header(const char *header, sig_header_t *h)
{
    if (header == NULL)
        return false;
    bool have_t = false, have_v1 = false;
    const char *p = header;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && is_blank(*b))
            b++;
        while (e > b && is_blank(e[-1]))
            e--;
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (eq == NULL)
            return false;
        const char *key_end = eq;
        while (key_end > b && is_blank(key_end[-1]))
            key_end--;
        if (key_end == b)
            return false;
        for (const char *k = b; k < key_end; k++)
            if (!is_key_char(*k))
                return false;
        const char *v = eq + 1;
        while (v < e && is_blank(*v))
            v++;
        size_t key_len = (size_t)(key_end - b), val_len = (size_t)(e - v);

        if (key_len == 1 && b[0] == 't') {
            if (have_t || !parse_millis(v, val_len, &h->t_ms))
                return false;
            h->t_text = v;
            h->t_len = val_len;
            have_t = true;
        } else if (key_len == 2 && b[0] == 'v' && b[1] == '1') {
            if (have_v1 || !parse_mac_hex(v, val_len, h->v1))
                return false;
            have_v1 = true;
        }

        if (*end == '\0')
            break;
        p = end + 1;
    }
    return have_t && have_v1;
}

static bool mac_open(sig_mac_t *m)
{
    m->mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    m->ctx = m->mac != NULL ? EVP_MAC_CTX_new(m->mac) : NULL;
    return m->ctx != NULL;
}

/* Frees the context; OpenSSL wipes the key it copied into it. */
static void mac_close(sig_mac_t *m)
{
    EVP_MAC_CTX_free(m->ctx);
    EVP_MAC_free(m->mac);
    m->ctx = NULL;
    m->mac = NULL;
}

/* out = HMAC-SHA256(secret, t_text "." body). */
static bool mac_compute(sig_mac_t *m, const char *secret, const char *t_text, size_t t_len,
                        const void *body, size_t len, unsigned char out[SIG_MAC_LEN])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t out_len = 0;
    if (!EVP_MAC_init(m->ctx, (const unsigned char *)secret, strlen(secret), params))
        return false;
    if (!EVP_MAC_update(m->ctx, (const unsigned char *)t_text, t_len) ||
        !EVP_MAC_update(m->ctx, (const unsigned char *)".", 1))
        return false;
    if (len > 0 && !EVP_MAC_update(m->ctx, body, len))
        return false;
    if (!EVP_MAC_final(m->ctx, out, &out_len, SIG_MAC_LEN))
        return false;
    return out_len == SIG_MAC_LEN;
}

bool sig_parse(const char *header, int64_t *t_ms, unsigned char v1[SIG_MAC_LEN])
{
    sig_header_t h;
    if (!parse_header(header, &h))
        return false;
    *t_ms = h.t_ms;
    memcpy(v1, h.v1, SIG_MAC_LEN);
    return true;
}

/*
 * The distance between now and t, computed in unsigned arithmetic: t is
 * never negative but now may be anything, and the difference of two int64
 * values does not always fit in one.
 */
static sig_result_t check_time(int64_t t_ms, int64_t now_ms, int64_t tolerance_ms)
{
    uint64_t tol = tolerance_ms > 0 ? (uint64_t)tolerance_ms : 0;
    if (t_ms <= now_ms) {
        uint64_t age = (uint64_t)now_ms - (uint64_t)t_ms;
        return age > tol ? SIG_STALE : SIG_OK;
    }
    uint64_t ahead = (uint64_t)t_ms - (uint64_t)now_ms;
    return ahead > tol ? SIG_FUTURE : SIG_OK;
}

sig_result_t sig_verify(const char *header, const void *body, size_t len, char *const *secrets,
                        size_t n_secrets, int64_t now_ms, int64_t tolerance_ms)
{
    if (header == NULL)
        return SIG_MISSING;
    sig_header_t h;
    if (!parse_header(header, &h))
        return SIG_MALFORMED;
    sig_result_t r = check_time(h.t_ms, now_ms, tolerance_ms);
    if (r != SIG_OK)
        return r;
    if ((body == NULL && len > 0) || secrets == NULL)
        return SIG_MISMATCH;

    sig_mac_t m;
    if (!mac_open(&m)) {
        mac_close(&m);
        return SIG_MISMATCH;
    }
    r = SIG_MISMATCH;
    unsigned char got[SIG_MAC_LEN];
    for (size_t i = 0; i < n_secrets; i++) {
        /* An empty key is a configuration mistake that anyone could sign
         * with; refuse it here as well, whatever the config layer does. */
        if (secrets[i] == NULL || secrets[i][0] == '\0')
            continue;
        if (!mac_compute(&m, secrets[i], h.t_text, h.t_len, body, len, got))
            break;
        if (CRYPTO_memcmp(got, h.v1, SIG_MAC_LEN) == 0) {
            r = SIG_OK;
            break;
        }
    }
    OPENSSL_cleanse(got, sizeof(got));
    mac_close(&m);
    return r;
}

bool sig_sign(const char *secret, int64_t t_ms, const void *body, size_t len, char *out,
              size_t outlen)
{
    static const char digits[] = "0123456789abcdef";
    if (out == NULL || outlen == 0)
        return false;
    out[0] = '\0';
    if (secret == NULL || secret[0] == '\0' || t_ms < 0 || (body == NULL && len > 0))
        return false;

    char t_text[24];
    int t_len = snprintf(t_text, sizeof(t_text), "%" PRId64, t_ms);
    /* "t=" digits ", v1=" hex NUL */
    if (outlen < 2 + (size_t)t_len + 5 + (size_t)2 * SIG_MAC_LEN + 1)
        return false;

    sig_mac_t m;
    unsigned char mac[SIG_MAC_LEN];
    bool ok = mac_open(&m) && mac_compute(&m, secret, t_text, (size_t)t_len, body, len, mac);
    mac_close(&m);
    if (!ok)
        return false;

    char hex[2 * SIG_MAC_LEN + 1];
    for (size_t i = 0; i < SIG_MAC_LEN; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 0x0f];
    }
    hex[(size_t)2 * SIG_MAC_LEN] = '\0';
    snprintf(out, outlen, "t=%s, v1=%s", t_text, hex);
    return true;
}

const char *sig_result_name(sig_result_t r)
{
    switch (r) {
    case SIG_OK:
        return "ok";
    case SIG_MISSING:
        return "missing";
    case SIG_MALFORMED:
        return "malformed";
    case SIG_STALE:
        return "stale";
    case SIG_FUTURE:
        return "future";
    case SIG_MISMATCH:
        return "mismatch";
    }
    return "unknown";
}
