/*
 * signature: the WorkOS-Signature header of a webhook request.
 *
 * WorkOS signs each webhook with `t=<unix ms>, v1=<hex HMAC-SHA256>` where
 * the MAC covers "<t>." followed by the raw request body, keyed with the
 * endpoint's secret.  This module parses that header, checks the timestamp
 * against a tolerance in both directions, and compares the MAC in constant
 * time against every configured secret so that secrets can be rotated
 * without dropping requests.  It also produces the header, for the emulator
 * and the benchmark.  Pure: no I/O, no logging, no allocation that outlives
 * a call.
 */
#ifndef WORKOS_SYNCD_SIGNATURE_H
#define WORKOS_SYNCD_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "wur.h"

/* Bytes in an HMAC-SHA256 value. */
#define SIG_MAC_LEN 32

/* A buffer this large always holds what sig_sign writes, NUL included. */
#define SIG_HEADER_MAX 96

typedef enum sig_result {
    SIG_OK,        /* a secret matched within the tolerance */
    SIG_MISSING,   /* no header */
    SIG_MALFORMED, /* header present but not t=..., v1=... */
    SIG_STALE,     /* timestamp older than the tolerance */
    SIG_FUTURE,    /* timestamp further ahead than the tolerance */
    SIG_MISMATCH   /* no secret produced this signature */
} sig_result_t;

/*
 * Parses a WorkOS-Signature header value.  Items are separated by ',' and
 * are `key=value`; spaces and tabs are allowed around ',' and '=' and at
 * either end.  `t` and `v1` may come in either order and must each appear
 * exactly once; items with other keys are ignored.  `t` is a non-negative
 * decimal count of milliseconds (digits only, leading zeros allowed, no
 * sign, at most INT64_MAX); `v1` is exactly 64 hex digits in either case.
 * On success stores t in *t_ms and the decoded MAC in v1 and returns true;
 * returns false for NULL or anything else, leaving the outputs unspecified.
 */
bool sig_parse(const char *header, int64_t *t_ms, unsigned char v1[SIG_MAC_LEN]) WUR;

/*
 * Verifies a webhook: parses `header` (NULL: SIG_MISSING; unparsable:
 * SIG_MALFORMED), then checks |now_ms - t| <= tolerance_ms (a negative
 * tolerance counts as 0) and reports SIG_STALE or SIG_FUTURE when outside
 * it, then computes HMAC-SHA256 over the timestamp digits exactly as they
 * appear in the header, '.', and body[0..len) with each of the n_secrets
 * NUL-terminated secrets in turn, comparing in constant time.  Returns
 * SIG_OK on the first match, SIG_MISMATCH when none matches.  NULL or empty
 * secrets never match, and an internal crypto failure also yields
 * SIG_MISMATCH, so the function fails closed.  The body is read in place,
 * never copied; nothing is logged, and no secret is kept after the call.
 */
sig_result_t sig_verify(const char *header, const void *body, size_t len, char *const *secrets,
                        size_t n_secrets, int64_t now_ms, int64_t tolerance_ms);

/*
 * Writes the header value "t=<t_ms>, v1=<64 lowercase hex digits>" for
 * `secret` over body[0..len) into out, NUL-terminated.  Returns false, with
 * out untouched or emptied, when out is too small (SIG_HEADER_MAX always
 * suffices), when t_ms is negative, when secret is NULL or empty, or when
 * the MAC cannot be computed.
 */
bool sig_sign(const char *secret, int64_t t_ms, const void *body, size_t len, char *out,
              size_t outlen) WUR;

/*
 * A short, static name for a result ("ok", "missing", "malformed", "stale",
 * "future", "mismatch"; "unknown" for a value outside the enum), fit for a
 * log field or a metric label.
 */
const char *sig_result_name(sig_result_t r);

#endif
