/*
 * libFuzzer target for daemon/signature.c.  The input is split at its
 * first newline into a WorkOS-Signature header and a request body (no
 * newline: all header, empty body).  Besides "no crash, no leak, no
 * undefined behaviour", it checks properties that must hold for any input:
 * sig_verify calls a header malformed exactly when sig_parse rejects it, a
 * parsed timestamp is always inside a zero tolerance around itself, and a
 * header made by sig_sign for the same body verifies with its secret and
 * only with it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIXED_NOW INT64_C(1700000000000)
#define TOLERANCE INT64_C(180000)

static char secret_one[] = "whsec_fuzz_one";
static char secret_two[] = "whsec_fuzz_two";
static char *const both[] = {secret_one, secret_two};
static char *const only_two[] = {secret_two};

static void check(const char *header, const void *body, size_t len, int64_t now, int64_t tol,
                  bool parsed)
{
    sig_result_t r = sig_verify(header, body, len, both, 2, now, tol);
    if (sig_result_name(r) == NULL || strcmp(sig_result_name(r), "unknown") == 0)
        abort();
    if ((r == SIG_MALFORMED) == parsed || r == SIG_MISSING)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t header_len = nl != NULL ? (size_t)(nl - data) : size;
    const uint8_t *body = nl != NULL ? nl + 1 : data + size;
    size_t len = size - (size_t)(body - data);

    /* The header reaches the module as a C string, as evhttp hands it over. */
    char *header = malloc(header_len + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, header_len);
    header[header_len] = '\0';

    int64_t t = -1;
    unsigned char v1[SIG_MAC_LEN];
    bool parsed = sig_parse(header, &t, v1);
    if (parsed && t < 0)
        abort();

    check(header, body, len, FIXED_NOW, TOLERANCE, parsed);
    if (parsed) {
        /* now == t always passes the window, so this reaches the MAC. */
        sig_result_t r = sig_verify(header, body, len, both, 2, t, 0);
        if (r != SIG_OK && r != SIG_MISMATCH)
            abort();
    }
    /* The last 16 body bytes, when there are that many, pick the clock and
     * the tolerance, to drive the window arithmetic to its extremes. */
    if (len >= 16) {
        int64_t now, tol;
        memcpy(&now, body + len - 16, sizeof(now));
        memcpy(&tol, body + len - 8, sizeof(tol));
        check(header, body, len, now, tol, parsed);
    }
    if (sig_verify(NULL, body, len, both, 2, FIXED_NOW, TOLERANCE) != SIG_MISSING)
        abort();

    char out[SIG_HEADER_MAX];
    int64_t ts = parsed ? t : FIXED_NOW;
    if (!sig_sign(secret_one, ts, body, len, out, sizeof(out)))
        abort();
    int64_t t2;
    unsigned char mac[SIG_MAC_LEN];
    if (!sig_parse(out, &t2, mac) || t2 != ts)
        abort();
    if (sig_verify(out, body, len, both, 2, ts, 0) != SIG_OK)
        abort();
    if (sig_verify(out, body, len, only_two, 1, ts, 0) != SIG_MISMATCH)
        abort();

    free(header);
    return 0;
}
