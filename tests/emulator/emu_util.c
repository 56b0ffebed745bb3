/*
 * Helpers shared by the emulator's serve and gen commands. Timestamps are
 * handled as int64 milliseconds with our own civil-date arithmetic so that
 * results never depend on the host's time zone or libc quirks.
 */
#include "emu_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void oom(void)
{
    fputs("workos-emulator: out of memory\n", stderr);
    abort();
}

void *emu_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *emu_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void *emu_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom();
    return q;
}

char *emu_xstrndup(const char *s, size_t n)
{
    char *p = emu_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *emu_xstrdup(const char *s)
{
    return emu_xstrndup(s, strlen(s));
}

static void buf_reserve(emu_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = emu_xrealloc(b->data, cap);
    b->cap = cap;
}

void emu_buf_add(emu_buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void emu_buf_adds(emu_buf_t *b, const char *s)
{
    emu_buf_add(b, s, strlen(s));
}

void emu_buf_printf(emu_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_json_escape_ctl(emu_buf_t *b, unsigned char c)
{
    switch (c) {
    case '\n':
        emu_buf_add(b, "\\n", 2);
        break;
    case '\r':
        emu_buf_add(b, "\\r", 2);
        break;
    case '\t':
        emu_buf_add(b, "\\t", 2);
        break;
    case '\b':
        emu_buf_add(b, "\\b", 2);
        break;
    case '\f':
        emu_buf_add(b, "\\f", 2);
        break;
    default:
        emu_buf_printf(b, "\\u%04x", c);
        break;
    }
}

void emu_buf_json_str(emu_buf_t *b, const char *s)
{
    emu_buf_add(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        emu_buf_add(b, run, (size_t)(p - run));
        if (c == '"')
            emu_buf_add(b, "\\\"", 2);
        else if (c == '\\')
            emu_buf_add(b, "\\\\", 2);
        else
            buf_json_escape_ctl(b, c);
        run = p + 1;
    }
    emu_buf_adds(b, run);
    emu_buf_add(b, "\"", 1);
}

/* Decodes one UTF-8 sequence at p; returns its length, or 0 when invalid. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) {
        *cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if ((p[0] & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
        *cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    if ((p[0] & 0xF8) == 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 &&
        (p[3] & 0xC0) == 0x80) {
        *cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
              ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        return 4;
    }
    return 0;
}

void emu_buf_json_str_ascii(emu_buf_t *b, const char *s)
{
    emu_buf_add(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t n = utf8_decode(p, &cp);
        if (n == 0) {
            /* Invalid UTF-8 never comes from the generator; keep the byte. */
            emu_buf_add(b, p, 1);
            p++;
            continue;
        }
        p += n;
        if (cp == '"')
            emu_buf_add(b, "\\\"", 2);
        else if (cp == '\\')
            emu_buf_add(b, "\\\\", 2);
        else if (cp == '/')
            emu_buf_add(b, "\\/", 2);
        else if (cp < 0x20)
            buf_json_escape_ctl(b, (unsigned char)cp);
        else if (cp < 0x80) {
            char c = (char)cp;
            emu_buf_add(b, &c, 1);
        } else if (cp < 0x10000)
            emu_buf_printf(b, "\\u%04x", (unsigned)cp);
        else {
            uint32_t v = cp - 0x10000;
            emu_buf_printf(b, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)),
                           (unsigned)(0xDC00 + (v & 0x3FF)));
        }
    }
    emu_buf_add(b, "\"", 1);
}

void emu_buf_logfmt(emu_buf_t *b, const char *s)
{
    if (s == NULL || *s == '\0') {
        emu_buf_add(b, "-", 1);
        return;
    }
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7F || *p == '"' || *p == '=' || *p == '\\') {
            plain = false;
            break;
        }
    }
    if (plain) {
        emu_buf_adds(b, s);
        return;
    }
    emu_buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            emu_buf_add(b, esc, 2);
        } else if (*p < 0x20 || *p == 0x7F) {
            emu_buf_printf(b, "\\x%02x", *p);
        } else {
            emu_buf_add(b, p, 1);
        }
    }
    emu_buf_add(b, "\"", 1);
}

void emu_buf_reset(emu_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void emu_buf_free(emu_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Days since 1970-01-01 for a proleptic Gregorian date (Hinnant's method). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void emu_time_format(int64_t ms, char out[EMU_TIME_STRLEN])
{
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    unsigned rem = (unsigned)(ms - days * 86400000);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        /* Outside what a four-digit year can say; clamp visibly. */
        memcpy(out, y < 0 ? "0000-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z",
               EMU_TIME_STRLEN);
        return;
    }
    memcpy(out, "0000-00-00T00:00:00.000Z", EMU_TIME_STRLEN);
    put_digits(out, (unsigned)y, 4);
    put_digits(out + 5, m, 2);
    put_digits(out + 8, d, 2);
    put_digits(out + 11, rem / 3600000, 2);
    put_digits(out + 14, rem / 60000 % 60, 2);
    put_digits(out + 17, rem / 1000 % 60, 2);
    put_digits(out + 20, rem % 1000, 3);
}

/* Reads exactly n digits at *p; advances *p. */
static bool read_digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

bool emu_time_parse(const char *s, size_t len, int64_t *ms)
{
    const char *p = s, *end = s + len;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
    if (!read_digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !read_digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || !read_digits(&p, end, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    if (p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;
        if (!read_digits(&p, end, 2, &h) || p >= end || *p++ != ':' ||
            !read_digits(&p, end, 2, &mi))
            return false;
        if (p < end && *p == ':') {
            p++;
            if (!read_digits(&p, end, 2, &sec))
                return false;
            if (p < end && (*p == '.' || *p == ',')) {
                p++;
                int digits = 0;
                while (p < end && *p >= '0' && *p <= '9') {
                    if (digits < 3)
                        frac_ms = frac_ms * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0)
                    return false;
                for (; digits < 3; digits++)
                    frac_ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
    }
    int64_t offset_min = 0;
    if (p < end) {
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (!read_digits(&p, end, 2, &oh))
                return false;
            if (p < end && *p == ':')
                p++;
            if (p < end && !read_digits(&p, end, 2, &om))
                return false;
            if (oh > 23 || om > 59)
                return false;
            offset_min = (int64_t)sign * (oh * 60 + om);
        } else {
            return false;
        }
    }
    if (p != end)
        return false;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec - offset_min * 60;
    *ms = secs * 1000 + frac_ms;
    return true;
}

int64_t emu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t emu_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t emu_url_decode(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '+') {
            out[o++] = ' ';
        } else if (in[i] == '%' && i + 2 < len && hexval(in[i + 1]) >= 0 &&
                   hexval(in[i + 2]) >= 0) {
            out[o++] = (char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return o;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void emu_rng_seed(emu_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t emu_rng_next(emu_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t emu_rng_below(emu_rng_t *r, uint32_t n)
{
    return (uint32_t)((emu_rng_next(r) >> 32) % n);
}

bool emu_rng_pct(emu_rng_t *r, uint32_t pct)
{
    return emu_rng_below(r, 100) < pct;
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void emu_ulid(int64_t ms, emu_rng_t *r, char out[EMU_ULID_STRLEN])
{
    uint64_t t = (uint64_t)ms & 0xFFFFFFFFFFFFULL;
    for (int i = 9; i >= 0; i--) {
        out[i] = crockford[t & 31];
        t >>= 5;
    }
    uint64_t hi = emu_rng_next(r), lo = emu_rng_next(r);
    /* 80 random bits: 16 characters of 5 bits each. */
    for (int i = 0; i < 16; i++) {
        uint64_t src = i < 8 ? hi : lo;
        out[10 + i] = crockford[(src >> ((i % 8) * 5)) & 31];
    }
    out[26] = '\0';
}

uint64_t emu_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

bool emu_read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    size_t cap = 1 << 20, n = 0;
    char *data = emu_xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            data = emu_xrealloc(data, cap);
        }
        size_t got = fread(data + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool ok = !ferror(f);
    if (!ok)
        snprintf(err, errlen, "%s: read error", path);
    fclose(f);
    if (!ok) {
        free(data);
        return false;
    }
    data[n] = '\0';
    *out = data;
    *len = n;
    return true;
}

bool emu_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        uint64_t digit = (uint64_t)(*p - '0');
        if (digit > max || v > (max - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

void emu_params_parse(emu_params_t *ps, const char *q)
{
    ps->n = 0;
    while (q && *q && ps->n < EMU_MAX_PARAMS) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 0) {
            const char *eq = memchr(q, '=', len);
            size_t klen = eq ? (size_t)(eq - q) : len;
            size_t vlen = eq ? len - klen - 1 : 0;
            ps->p[ps->n].key = emu_xmalloc(klen + 1);
            emu_url_decode(q, klen, ps->p[ps->n].key);
            ps->p[ps->n].val = emu_xmalloc(vlen + 1);
            emu_url_decode(eq ? eq + 1 : q + len, vlen, ps->p[ps->n].val);
            ps->n++;
        }
        q = amp ? amp + 1 : NULL;
    }
}

void emu_params_free(emu_params_t *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->p[i].key);
        free(ps->p[i].val);
    }
    ps->n = 0;
}

const char *emu_params_get(const emu_params_t *ps, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].key, key) == 0)
            v = ps->p[i].val;
    return v;
}

void emu_params_drop(emu_params_t *ps, const char *key)
{
    size_t kept = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->p[i].key, key) == 0) {
            free(ps->p[i].key);
            free(ps->p[i].val);
        } else {
            ps->p[kept++] = ps->p[i];
        }
    }
    ps->n = kept;
}

void emu_validation_body(emu_buf_t *b, const char *field, const char *msg)
{
    emu_buf_adds(b, "{\"message\":\"Validation failed\",\"code\":\"invalid_request_parameters\","
                    "\"errors\":[{\"field\":");
    emu_buf_json_str(b, field);
    emu_buf_adds(b, ",\"code\":");
    emu_buf_json_str(b, msg);
    emu_buf_adds(b, "}]}");
}
