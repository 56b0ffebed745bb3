/*
 * Unit tests for daemon/signature.c: the header grammar (both orders,
 * blanks, unknown items, every way to be malformed), the tolerance window
 * in both directions including its edges and int64 extremes, secret
 * rotation, bodies that differ by one byte or carry NUL bytes, and
 * sig_sign.  Expected MACs come from OpenSSL's one-shot HMAC() over a
 * concatenated buffer, a path independent of the module's incremental
 * EVP_MAC code, plus literal vectors made with `openssl dgst -hmac`.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "signature.h"
#include "runner.h"

#define T0_TEXT "1700000000000"
#define T0 INT64_C(1700000000000)
#define TOL INT64_C(180000)

/* A fixed, valid v1 value for the grammar tests, and its bytes. */
#define HX "00112233445566778899aabbccddeeff0123456789abcdef0fedcba987654321"
#define HX_UPPER "00112233445566778899AABBCCDDEEFF0123456789ABCDEF0FEDCBA987654321"
static const unsigned char hx_bytes[SIG_MAC_LEN] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x0f, 0xed, 0xcb, 0xa9, 0x87, 0x65, 0x43, 0x21};

/* A string literal as a (pointer, length) pair that keeps embedded NULs. */
#define BODY(s) s, sizeof(s) - 1

static char secret_a[] = "whsec_alpha";
static char secret_b[] = "whsec_bravo";
static char secret_c[] = "whsec_charlie";
static char secret_empty[] = "";

static char *const set_a[] = {secret_a};
static char *const set_abc[] = {secret_a, secret_b, secret_c};
static char *const set_ac[] = {secret_a, secret_c};
static char *const set_holes[] = {NULL, secret_empty, secret_a};

/* Lowercase (or uppercase) hex of HMAC-SHA256(secret, t_text "." body) via one-shot HMAC(). */
static void reference_mac_hex(const char *secret, const char *t_text, const void *body, size_t len,
                              bool upper, char hex[2 * SIG_MAC_LEN + 1])
{
    size_t t_len = strlen(t_text);
    unsigned char *msg = malloc(t_len + 1 + len + 1);
    ck_assert_ptr_nonnull(msg);
    memcpy(msg, t_text, t_len);
    msg[t_len] = '.';
    if (len > 0)
        memcpy(msg + t_len + 1, body, len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    ck_assert_ptr_nonnull(
        HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, t_len + 1 + len, md, &md_len));
    ck_assert_uint_eq(md_len, SIG_MAC_LEN);
    free(msg);
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < SIG_MAC_LEN; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }
    hex[2 * SIG_MAC_LEN] = '\0';
}

/* Expands a header template: {T} becomes t_text, {V} lower hex, {U} upper hex. */
static void expand(const char *tmpl, const char *t_text, const char *lower, const char *upper,
                   char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = tmpl; *p != '\0';) {
        const char *piece = NULL;
        if (strncmp(p, "{T}", 3) == 0)
            piece = t_text;
        else if (strncmp(p, "{V}", 3) == 0)
            piece = lower;
        else if (strncmp(p, "{U}", 3) == 0)
            piece = upper;
        if (piece != NULL) {
            size_t k = strlen(piece);
            ck_assert_uint_lt(n + k, outlen);
            memcpy(out + n, piece, k);
            n += k;
            p += 3;
        } else {
            ck_assert_uint_lt(n + 1, outlen);
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

/* ------------------------------------------------------------------------- */

static const struct {
    const char *header;
    bool ok;
    int64_t t_ms;
    bool upper; /* v1 in the header is HX_UPPER (decodes to the same bytes) */
} parse_cases[] = {
    /* accepted */
    {"t=1700000000000, v1=" HX, true, T0, false},
    {"t=1700000000000,v1=" HX, true, T0, false},
    {" t = 1700000000000 , v1 = " HX " ", true, T0, false},
    {"t\t=\t1700000000000\t,\tv1\t=\t" HX, true, T0, false},
    {"v1=" HX ", t=1700000000000", true, T0, false},
    {"t=1700000000000, v1=" HX_UPPER, true, T0, true},
    {"t=0, v1=" HX, true, 0, false},
    {"t=9223372036854775807, v1=" HX, true, INT64_MAX, false},
    {"t=00000000000000000000000000042, v1=" HX, true, 42, false},
    {"t=1, v0=something, v1=" HX, true, 1, false},
    {"x-extra=a=b, t=1, v1=" HX ", v2=", true, 1, false},
    {"t=1, v1=" HX ", note=has spaces inside", true, 1, false},
    /* missing or empty parts */
    {"v1=" HX, false, 0, false},
    {"t=1700000000000", false, 0, false},
    {"t=1700000000000, v1=", false, 0, false},
    {"t=, v1=" HX, false, 0, false},
    {"=1, v1=" HX, false, 0, false},
    {"T=1, v1=" HX, false, 0, false},
    {"t=1, V1=" HX, false, 0, false},
    /* v1 not 64 hex digits */
    {"t=1, v1=00112233445566778899aabbccddeeff0123456789abcdef0fedcba98765432", false, 0, false},
    {"t=1, v1=" HX "0", false, 0, false},
    {"t=1, v1=g0112233445566778899aabbccddeeff0123456789abcdef0fedcba987654321", false, 0, false},
    {"t=1, v1=0x112233445566778899aabbccddeeff0123456789abcdef0fedcba987654321", false, 0, false},
    {"t=1, v1=0011223344556677 8899aabbccddeeff0123456789abcdef0fedcba98765432", false, 0, false},
    /* t not a plain non-negative integer */
    {"t=+1700000000000, v1=" HX, false, 0, false},
    {"t=-1700000000000, v1=" HX, false, 0, false},
    {"t=abc, v1=" HX, false, 0, false},
    {"t=17e11, v1=" HX, false, 0, false},
    {"t=1 2, v1=" HX, false, 0, false},
    {"t=1\n, v1=" HX, false, 0, false},
    {"t=9223372036854775808, v1=" HX, false, 0, false},
    {"t=99999999999999999999999, v1=" HX, false, 0, false},
    /* structure */
    {"garbage", false, 0, false},
    {"", false, 0, false},
    {",", false, 0, false},
    {",,,", false, 0, false},
    {" , \t, ", false, 0, false},
    {"t=1,, v1=" HX, false, 0, false},
    {"t=1, v1=" HX ",", false, 0, false},
    {", t=1, v1=" HX, false, 0, false},
    {"t=1; v1=" HX, false, 0, false},
    {"t 1, v1=" HX, false, 0, false},
    {"t=1, t=2, v1=" HX, false, 0, false},
    {"t=1, v1=" HX ", v1=" HX, false, 0, false},
    {"t=1, v1=" HX ", k\xc3\xa9y=1", false, 0, false},
};

START_TEST(test_parse)
{
    int64_t t = -1;
    unsigned char v1[SIG_MAC_LEN];
    memset(v1, 0xa5, sizeof(v1));
    bool ok = sig_parse(parse_cases[_i].header, &t, v1);
    ck_assert_msg(ok == parse_cases[_i].ok, "sig_parse(\"%s\") = %d", parse_cases[_i].header, ok);
    if (ok) {
        ck_assert_int_eq(t, parse_cases[_i].t_ms);
        ck_assert_mem_eq(v1, hx_bytes, SIG_MAC_LEN);
    } else {
        /* Whatever sig_parse rejects, sig_verify reports as malformed. */
        ck_assert_int_eq(sig_verify(parse_cases[_i].header, "", 0, set_a, 1, T0, TOL),
                         SIG_MALFORMED);
    }
}
END_TEST

START_TEST(test_parse_null)
{
    int64_t t;
    unsigned char v1[SIG_MAC_LEN];
    ck_assert(!sig_parse(NULL, &t, v1));
}
END_TEST

/* ------------------------------------------------------------------------- */

typedef struct verify_case {
    const char *name;
    const char *tmpl;        /* header template (see expand); NULL: no header */
    const char *t_text;      /* the timestamp digits written into the header */
    const char *signed_t;    /* the digits the sender put in the MAC; NULL: t_text */
    const char *sign_secret; /* key the sender used */
    const char *sign_body;   /* what the sender signed */
    size_t sign_len;
    const char *body; /* what the receiver got */
    size_t len;
    char *const *secrets;
    size_t n_secrets;
    int64_t now_ms;
    sig_result_t want;
} verify_case_t;

#define STD "t={T}, v1={V}"
#define EVT "{\"id\":\"evt_01\",\"event\":\"user.created\"}"

static const verify_case_t verify_cases[] = {
    {"valid", STD, T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0, SIG_OK},
    {"no space after comma", "t={T},v1={V}", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a,
     1, T0, SIG_OK},
    {"blanks around comma and =", "t = {T} ,\t v1 =\t{V}", T0_TEXT, NULL, secret_a, BODY(EVT),
     BODY(EVT), set_a, 1, T0, SIG_OK},
    {"v1 before t", "v1={V}, t={T}", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0,
     SIG_OK},
    {"uppercase hex", "t={T}, v1={U}", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0,
     SIG_OK},
    {"unknown item ignored", "t={T}, v0=deadbeef, v1={V}", T0_TEXT, NULL, secret_a, BODY(EVT),
     BODY(EVT), set_a, 1, T0, SIG_OK},
    {"leading zeros signed as written", STD, "0001700000000000", NULL, secret_a, BODY(EVT),
     BODY(EVT), set_a, 1, T0, SIG_OK},
    {"leading zeros, sender signed other digits", STD, "0001700000000000", T0_TEXT, secret_a,
     BODY(EVT), BODY(EVT), set_a, 1, T0, SIG_MISMATCH},
    {"no header", NULL, T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0, SIG_MISSING},
    {"malformed: missing t", "v1={V}", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0,
     SIG_MALFORMED},
    {"malformed: missing v1", "t={T}", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0,
     SIG_MALFORMED},
    {"malformed: empty v1", "t={T}, v1=", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1,
     T0, SIG_MALFORMED},
    {"malformed: long hex", "t={T}, v1={V}0", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a,
     1, T0, SIG_MALFORMED},
    {"malformed: signed t", "t=+{T}, v1={V}", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a,
     1, T0, SIG_MALFORMED},
    {"malformed: empty", "", T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0,
     SIG_MALFORMED},
    {"wrong secret", STD, T0_TEXT, NULL, secret_b, BODY(EVT), BODY(EVT), set_a, 1, T0,
     SIG_MISMATCH},
    {"rotation: second of three", STD, T0_TEXT, NULL, secret_b, BODY(EVT), BODY(EVT), set_abc, 3,
     T0, SIG_OK},
    {"rotation: third of three", STD, T0_TEXT, NULL, secret_c, BODY(EVT), BODY(EVT), set_abc, 3, T0,
     SIG_OK},
    {"rotation: none of two", STD, T0_TEXT, NULL, secret_b, BODY(EVT), BODY(EVT), set_ac, 2, T0,
     SIG_MISMATCH},
    {"rotation: only the first n count", STD, T0_TEXT, NULL, secret_c, BODY(EVT), BODY(EVT),
     set_abc, 2, T0, SIG_MISMATCH},
    {"no secrets", STD, T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 0, T0, SIG_MISMATCH},
    {"NULL and empty secrets skipped", STD, T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT),
     set_holes, 3, T0, SIG_OK},
    {"empty secret never matches", STD, T0_TEXT, NULL, secret_empty, BODY(EVT), BODY(EVT),
     set_holes, 3, T0, SIG_MISMATCH},
    {"stale by 1 ms", STD, T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0 + TOL + 1,
     SIG_STALE},
    {"exactly tolerance old", STD, T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1,
     T0 + TOL, SIG_OK},
    {"future by 1 ms", STD, T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1, T0 - TOL - 1,
     SIG_FUTURE},
    {"exactly tolerance ahead", STD, T0_TEXT, NULL, secret_a, BODY(EVT), BODY(EVT), set_a, 1,
     T0 - TOL, SIG_OK},
    {"stale wins over a bad MAC", STD, T0_TEXT, NULL, secret_b, BODY(EVT), BODY(EVT), set_a, 1,
     T0 + 10 * TOL, SIG_STALE},
    {"body altered by one byte", STD, T0_TEXT, NULL, secret_a, BODY(EVT),
     BODY("{\"id\":\"evt_01\",\"event\":\"user.createD\"}"), set_a, 1, T0, SIG_MISMATCH},
    {"body one byte short", STD, T0_TEXT, NULL, secret_a, BODY(EVT), EVT, sizeof(EVT) - 2, set_a, 1,
     T0, SIG_MISMATCH},
    {"body one byte long", STD, T0_TEXT, NULL, secret_a, BODY(EVT), EVT "\n", sizeof(EVT), set_a, 1,
     T0, SIG_MISMATCH},
    {"body with NUL bytes", STD, T0_TEXT, NULL, secret_a, BODY("a\0b\0\0c"), BODY("a\0b\0\0c"),
     set_a, 1, T0, SIG_OK},
    {"body differing after a NUL", STD, T0_TEXT, NULL, secret_a, BODY("a\0b\0\0c"),
     BODY("a\0b\0\0d"), set_a, 1, T0, SIG_MISMATCH},
    {"empty body", STD, T0_TEXT, NULL, secret_a, NULL, 0, NULL, 0, set_a, 1, T0, SIG_OK},
    {"empty body, non-NULL pointer", STD, T0_TEXT, NULL, secret_a, BODY(""), BODY(""), set_a, 1, T0,
     SIG_OK},
    {"signed empty, got a body", STD, T0_TEXT, NULL, secret_a, NULL, 0, BODY("{}"), set_a, 1, T0,
     SIG_MISMATCH},
};

START_TEST(test_verify)
{
    const verify_case_t *c = &verify_cases[_i];
    char lower[2 * SIG_MAC_LEN + 1], upper[2 * SIG_MAC_LEN + 1], header[512];
    const char *signed_t = c->signed_t != NULL ? c->signed_t : c->t_text;
    reference_mac_hex(c->sign_secret, signed_t, c->sign_body, c->sign_len, false, lower);
    reference_mac_hex(c->sign_secret, signed_t, c->sign_body, c->sign_len, true, upper);
    if (c->tmpl != NULL)
        expand(c->tmpl, c->t_text, lower, upper, header, sizeof(header));
    sig_result_t got = sig_verify(c->tmpl != NULL ? header : NULL, c->body, c->len, c->secrets,
                                  c->n_secrets, c->now_ms, TOL);
    ck_assert_msg(got == c->want, "%s: got %s, want %s", c->name, sig_result_name(got),
                  sig_result_name(c->want));
}
END_TEST

/* ------------------------------------------------------------------------- */

/* The tolerance arithmetic at the ends of int64 and with odd tolerances. */
static const struct {
    const char *t_text;
    int64_t now_ms, tolerance_ms;
    sig_result_t want;
} time_cases[] = {
    {"9223372036854775807", INT64_MIN, TOL, SIG_FUTURE},
    {"9223372036854775807", INT64_MAX, TOL, SIG_OK},
    {"9223372036854775807", INT64_MIN, INT64_MAX, SIG_FUTURE},
    {"0", INT64_MAX, TOL, SIG_STALE},
    {"0", INT64_MAX, INT64_MAX, SIG_OK},
    {"0", INT64_MIN, INT64_MAX, SIG_FUTURE},
    {"0", -1, 0, SIG_FUTURE},
    {"0", 0, 0, SIG_OK},
    {T0_TEXT, T0, 0, SIG_OK},
    {T0_TEXT, T0 + 1, 0, SIG_STALE},
    {T0_TEXT, T0 - 1, 0, SIG_FUTURE},
    {T0_TEXT, T0, -5, SIG_OK},
    {T0_TEXT, T0 + 1, -5, SIG_STALE},
    {T0_TEXT, T0 - 1, INT64_MIN, SIG_FUTURE},
};

START_TEST(test_time)
{
    char lower[2 * SIG_MAC_LEN + 1], header[128];
    reference_mac_hex(secret_a, time_cases[_i].t_text, BODY(EVT), false, lower);
    snprintf(header, sizeof(header), "t=%s, v1=%s", time_cases[_i].t_text, lower);
    sig_result_t got =
        sig_verify(header, BODY(EVT), set_a, 1, time_cases[_i].now_ms, time_cases[_i].tolerance_ms);
    ck_assert_msg(got == time_cases[_i].want, "case %d: got %s", _i, sig_result_name(got));
}
END_TEST

/* ------------------------------------------------------------------------- */

/*
 * Known answers, made on the command line, e.g.
 *   printf '%s' '1700000000000.{"id":"evt_01","event":"user.created"}' |
 *       openssl dgst -sha256 -hmac whsec_known_answer
 */
#define KA_SECRET "whsec_known_answer"
static const struct {
    const char *header;
    const char *body;
    size_t len;
} known_answers[] = {
    {"t=1700000000000, v1=12bbb44d7c18a43c5fc03c2f4cd49a374a731a7acc879388ba67874f6dafdf0d",
     BODY(EVT)},
    {"t=0001700000000000, v1=4996dfad545a070f402a5c39f039de5263646729d73202e0c1f2dc5e0af8b6a2",
     BODY(EVT)},
    {"t=1700000000000, v1=93396a3922e0b0bf4e70974f504130786322a03336032827f0b452b2fbec115f",
     BODY("")},
};

START_TEST(test_known_answer)
{
    static char ka_secret[] = KA_SECRET;
    char *const set[] = {secret_a, ka_secret};
    ck_assert_int_eq(sig_verify(known_answers[_i].header, known_answers[_i].body,
                                known_answers[_i].len, set, 2, T0, TOL),
                     SIG_OK);
    ck_assert_int_eq(sig_verify(known_answers[_i].header, known_answers[_i].body,
                                known_answers[_i].len, set, 1, T0, TOL),
                     SIG_MISMATCH);
}
END_TEST

START_TEST(test_sign_known_answer)
{
    char out[SIG_HEADER_MAX];
    ck_assert(sig_sign(KA_SECRET, T0, BODY(EVT), out, sizeof(out)));
    ck_assert_str_eq(out, known_answers[0].header);
    ck_assert(sig_sign(KA_SECRET, T0, NULL, 0, out, sizeof(out)));
    ck_assert_str_eq(out, known_answers[2].header);
}
END_TEST

/* ------------------------------------------------------------------------- */

static const struct {
    int64_t t_ms;
    const char *body;
    size_t len;
} sign_cases[] = {
    {T0, BODY(EVT)},
    {0, BODY("")},
    {1, BODY("x")},
    {INT64_MAX, BODY("{\"a\":\"\xe2\x82\xac\"}")},
    {T0, BODY("nul\0inside\0")},
};

START_TEST(test_sign_round_trip)
{
    char out[SIG_HEADER_MAX], t_text[32], lower[2 * SIG_MAC_LEN + 1], want[128];
    int64_t t = sign_cases[_i].t_ms;
    ck_assert(sig_sign(secret_b, t, sign_cases[_i].body, sign_cases[_i].len, out, sizeof(out)));

    snprintf(t_text, sizeof(t_text), "%" PRId64, t);
    reference_mac_hex(secret_b, t_text, sign_cases[_i].body, sign_cases[_i].len, false, lower);
    snprintf(want, sizeof(want), "t=%s, v1=%s", t_text, lower);
    ck_assert_str_eq(out, want);

    ck_assert_int_eq(sig_verify(out, sign_cases[_i].body, sign_cases[_i].len, set_abc, 3, t, TOL),
                     SIG_OK);
    ck_assert_int_eq(sig_verify(out, sign_cases[_i].body, sign_cases[_i].len, set_ac, 2, t, TOL),
                     SIG_MISMATCH);
}
END_TEST

START_TEST(test_sign_limits)
{
    char out[SIG_HEADER_MAX];
    ck_assert(sig_sign(secret_a, T0, BODY(EVT), out, sizeof(out)));
    size_t need = strlen(out) + 1;
    ck_assert_uint_eq(need, strlen("t=" T0_TEXT ", v1=") + 2 * SIG_MAC_LEN + 1);

    char exact[SIG_HEADER_MAX];
    ck_assert(sig_sign(secret_a, T0, BODY(EVT), exact, need));
    ck_assert_str_eq(exact, out);
    memset(exact, 'x', sizeof(exact));
    ck_assert(!sig_sign(secret_a, T0, BODY(EVT), exact, need - 1));
    ck_assert_int_eq(exact[0], '\0');
    ck_assert(!sig_sign(secret_a, T0, BODY(EVT), exact, 1));
    ck_assert(!sig_sign(secret_a, T0, BODY(EVT), exact, 0));
    ck_assert(!sig_sign(secret_a, T0, BODY(EVT), NULL, 0));

    /* The longest header still fits SIG_HEADER_MAX. */
    ck_assert(sig_sign(secret_a, INT64_MAX, BODY(EVT), out, sizeof(out)));
    ck_assert_uint_lt(strlen(out), SIG_HEADER_MAX);

    ck_assert(!sig_sign(secret_a, -1, BODY(EVT), out, sizeof(out)));
    ck_assert(!sig_sign(secret_a, INT64_MIN, BODY(EVT), out, sizeof(out)));
    ck_assert(!sig_sign("", T0, BODY(EVT), out, sizeof(out)));
    ck_assert(!sig_sign(NULL, T0, BODY(EVT), out, sizeof(out)));
    ck_assert(!sig_sign(secret_a, T0, NULL, 3, out, sizeof(out)));
}
END_TEST

/* A body far larger than any buffer the module might copy into. */
START_TEST(test_large_body)
{
    size_t len = 4u << 20;
    char *body = malloc(len);
    ck_assert_ptr_nonnull(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)(i * 131 + (i >> 9));
    char lower[2 * SIG_MAC_LEN + 1], header[128];
    reference_mac_hex(secret_c, T0_TEXT, body, len, false, lower);
    snprintf(header, sizeof(header), "t=" T0_TEXT ", v1=%s", lower);
    ck_assert_int_eq(sig_verify(header, body, len, set_abc, 3, T0, TOL), SIG_OK);
    body[len - 1] ^= 1;
    ck_assert_int_eq(sig_verify(header, body, len, set_abc, 3, T0, TOL), SIG_MISMATCH);
    free(body);
}
END_TEST

START_TEST(test_null_arguments)
{
    char lower[2 * SIG_MAC_LEN + 1], header[128];
    reference_mac_hex(secret_a, T0_TEXT, BODY("abc"), false, lower);
    snprintf(header, sizeof(header), "t=" T0_TEXT ", v1=%s", lower);
    ck_assert_int_eq(sig_verify(header, BODY("abc"), set_a, 1, T0, TOL), SIG_OK);
    ck_assert_int_eq(sig_verify(header, NULL, 3, set_a, 1, T0, TOL), SIG_MISMATCH);
    ck_assert_int_eq(sig_verify(header, BODY("abc"), NULL, 1, T0, TOL), SIG_MISMATCH);
    ck_assert_int_eq(sig_verify(NULL, NULL, 0, NULL, 0, T0, TOL), SIG_MISSING);
}
END_TEST

START_TEST(test_result_names)
{
    static const struct {
        sig_result_t r;
        const char *name;
    } names[] = {{SIG_OK, "ok"},
                 {SIG_MISSING, "missing"},
                 {SIG_MALFORMED, "malformed"},
                 {SIG_STALE, "stale"},
                 {SIG_FUTURE, "future"},
                 {SIG_MISMATCH, "mismatch"},
                 {(sig_result_t)99, "unknown"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_str_eq(sig_result_name(names[i].r), names[i].name);
}
END_TEST

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *unit_suite(void)
{
    Suite *s = suite_create("signature");
    TCase *tc = tcase_create("signature");
    tcase_add_loop_test(tc, test_parse, 0, N_OF(parse_cases));
    tcase_add_test(tc, test_parse_null);
    tcase_add_loop_test(tc, test_verify, 0, N_OF(verify_cases));
    tcase_add_loop_test(tc, test_time, 0, N_OF(time_cases));
    tcase_add_loop_test(tc, test_known_answer, 0, N_OF(known_answers));
    tcase_add_test(tc, test_sign_known_answer);
    tcase_add_loop_test(tc, test_sign_round_trip, 0, N_OF(sign_cases));
    tcase_add_test(tc, test_sign_limits);
    tcase_add_test(tc, test_large_body);
    tcase_add_test(tc, test_null_arguments);
    tcase_add_test(tc, test_result_names);
    suite_add_tcase(s, tc);
    return s;
}
