/*
 * Shared helpers for the WorkOS emulator: a growable byte buffer with JSON and
 * logfmt writers, ISO 8601 millisecond timestamps, URL decoding, a seeded
 * PRNG and ULID-style identifiers. The emulator is a test tool, so memory
 * exhaustion aborts instead of being propagated.
 */
#ifndef EMU_UTIL_H
#define EMU_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMU_WUR __attribute__((warn_unused_result))

/* Growable byte buffer; always NUL-terminated once anything was appended. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} emu_buf_t;

/* Seeded xoshiro256** generator: the same seed gives the same sequence. */
typedef struct {
    uint64_t s[4];
} emu_rng_t;

/* Length of an ISO 8601 timestamp as written by emu_time_format, plus NUL. */
#define EMU_TIME_STRLEN 25
/* Length of a 26-character ULID plus NUL. */
#define EMU_ULID_STRLEN 27

/* malloc/calloc/realloc/strdup that abort with a message on exhaustion. */
void *emu_xmalloc(size_t n);
void *emu_xcalloc(size_t n, size_t size);
void *emu_xrealloc(void *p, size_t n);
char *emu_xstrdup(const char *s);
char *emu_xstrndup(const char *s, size_t n);

/* Appends n bytes to b, growing it; keeps the data NUL-terminated. */
void emu_buf_add(emu_buf_t *b, const void *p, size_t n);
/* Appends a NUL-terminated string. */
void emu_buf_adds(emu_buf_t *b, const char *s);
/* Appends printf-formatted text. */
void emu_buf_printf(emu_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted JSON string; UTF-8 passes through untouched. */
void emu_buf_json_str(emu_buf_t *b, const char *s);
/* Appends s as a quoted JSON string with every non-ASCII code point written as
 * \uXXXX (surrogate pairs beyond the BMP) and '/' as "\/": same value,
 * different bytes, the way some JSON encoders write it. */
void emu_buf_json_str_ascii(emu_buf_t *b, const char *s);
/* Appends s as a logfmt value: bare when it is a plain token, otherwise
 * quoted with \" \\ and \xNN escapes. NULL or "" become "-". */
void emu_buf_logfmt(emu_buf_t *b, const char *s);
/* Empties b without releasing its memory. */
void emu_buf_reset(emu_buf_t *b);
/* Releases b's memory; accepts a zeroed buffer. */
void emu_buf_free(emu_buf_t *b);

/* Writes ms since the Unix epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out. */
void emu_time_format(int64_t ms, char out[EMU_TIME_STRLEN]);
/* Parses an ISO 8601 date or date-time (optional fraction, Z or +-HH[:]MM,
 * UTC when no offset) of length len into ms since the epoch.
 * Returns false when s is not such a timestamp. */
bool emu_time_parse(const char *s, size_t len, int64_t *ms) EMU_WUR;
/* Current wall-clock time in ms since the epoch. */
int64_t emu_now_ms(void);
/* Monotonic clock in ms, for rate windows. */
int64_t emu_mono_ms(void);

/* Decodes %XX escapes and '+' (as space) from in[0..len) into out, which
 * must hold len + 1 bytes; malformed escapes are copied literally.
 * Returns the decoded length; out is NUL-terminated. */
size_t emu_url_decode(const char *in, size_t len, char *out);

/* Seeds r from seed through splitmix64. */
void emu_rng_seed(emu_rng_t *r, uint64_t seed);
/* Next 64 random bits. */
uint64_t emu_rng_next(emu_rng_t *r);
/* Uniform-enough integer in [0, n); n must be > 0. */
uint32_t emu_rng_below(emu_rng_t *r, uint32_t n);
/* True with probability pct/100. */
bool emu_rng_pct(emu_rng_t *r, uint32_t pct);

/* Writes a 26-character Crockford base32 ULID: 48 bits of ms then 80 random
 * bits from r, so ids from later milliseconds sort after earlier ones. */
void emu_ulid(int64_t ms, emu_rng_t *r, char out[EMU_ULID_STRLEN]);

/* 64-bit FNV-1a hash of n bytes. */
uint64_t emu_hash(const void *p, size_t n);

/* Reads the whole file at path into a malloc'd, NUL-terminated buffer owned
 * by the caller (*out, *len). Returns false and fills err on failure. */
bool emu_read_file(const char *path, char **out, size_t *len, char *err, size_t errlen) EMU_WUR;

/* Parses a non-negative decimal integer no larger than max from a whole
 * string. Returns false on anything else. */
bool emu_parse_u64(const char *s, uint64_t max, uint64_t *out) EMU_WUR;

/* Query parameters of one request, URL-decoded (keys too, so `events%5B%5D`
 * reads as `events[]`). */
#define EMU_MAX_PARAMS 256
typedef struct {
    struct {
        char *key;
        char *val;
    } p[EMU_MAX_PARAMS];
    size_t n;
} emu_params_t;

/* Splits raw query string q (may be NULL) into ps; parameters beyond
 * EMU_MAX_PARAMS are dropped. Release with emu_params_free. */
void emu_params_parse(emu_params_t *ps, const char *q);
/* Releases the strings of ps and empties it. */
void emu_params_free(emu_params_t *ps);
/* Last value of key, or NULL. */
const char *emu_params_get(const emu_params_t *ps, const char *key);
/* Removes every parameter named key. */
void emu_params_drop(emu_params_t *ps, const char *key);

/* Appends the 422 body WorkOS returns for a bad listing parameter:
 * {"message":"Validation failed","code":"invalid_request_parameters",
 *  "errors":[{"field":field,"code":msg}]}. */
void emu_validation_body(emu_buf_t *b, const char *field, const char *msg);

#endif
