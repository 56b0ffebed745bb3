/*
 * Typed values of the option table. Text from the file or the environment
 * is parsed by the option's type -- durations, sizes, integers, two-word
 * enums, log levels, comma-separated lists, secrets read from files -- and
 * stored at the offset in config_t the table names. The same type switch
 * compares, swaps and frees those fields for the loader and the reload, and
 * renders values for error messages. Problems come back as text; a secret's
 * value never appears in it.
 */
#include "config_value.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Secret files are tiny; anything bigger is a wrong path. */
#define SECRET_FILE_MAX 65536

#define MS_PER_HOUR INT64_C(3600000)

/* ------------------------------------------------------------------------- */
/* Fields                                                                    */

bool config_value_is_list(const config_option_t *o)
{
    return o->type == CONFIG_TYPE_LIST || o->type == CONFIG_TYPE_SECRET_LIST ||
           (o->type == CONFIG_TYPE_SECRET_FILE && o->count_offset != 0);
}

/* Secret values must never be echoed, whatever key delivered them. */
static bool is_secret(const config_option_t *o)
{
    return o->type == CONFIG_TYPE_SECRET || o->type == CONFIG_TYPE_SECRET_LIST ||
           o->type == CONFIG_TYPE_SECRET_FILE;
}

/* A *_file key stores into another key's field; that key owns the field. */
bool config_value_owns_field(const config_option_t *o)
{
    return o->type != CONFIG_TYPE_SECRET_FILE;
}

static char **field_str(config_t *c, const config_option_t *o)
{
    return (char **)((char *)c + o->offset);
}

static char ***field_list(config_t *c, const config_option_t *o)
{
    return (char ***)((char *)c + o->offset);
}

static size_t *field_count(config_t *c, const config_option_t *o)
{
    return (size_t *)((char *)c + o->count_offset);
}

static const void *field_const(const config_t *c, size_t offset)
{
    return (const char *)c + offset;
}

/* ------------------------------------------------------------------------- */
/* Lists and rendering                                                       */

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void config_value_list_free(char **items, size_t n, bool wipe)
{
    for (size_t i = 0; i < n; i++) {
        if (wipe)
            wipe_free(items[i]);
        else
            free(items[i]);
    }
    free(items);
}

bool config_value_list_has(char *const *items, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], s) == 0)
            return true;
    }
    return false;
}

bool config_value_list_push(char ***items, size_t *n, const char *s, size_t len)
{
    char *copy = strndup(s, len);
    if (copy == NULL)
        return false;
    char **grown = realloc(*items, (*n + 1) * sizeof *grown);
    if (grown == NULL) {
        free(copy);
        return false;
    }
    grown[*n] = copy;
    *items = grown;
    (*n)++;
    return true;
}

/*
 * Calls fn for each comma-separated item of s, trimmed of blanks; empty items
 * are skipped so a trailing comma (before a continuation line) is harmless.
 */
static bool split_list(const char *s, bool (*fn)(void *ctx, const char *item, size_t len),
                       void *ctx)
{
    const char *p = s;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *a = p;
        const char *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a && !fn(ctx, a, (size_t)(b - a)))
            return false;
        if (*end == '\0')
            return true;
        p = end + 1;
    }
}

const char *config_value_show(char *buf, size_t len, const char *s)
{
    const size_t max_shown = 48;
    size_t o = 0;
    if (len < 8) {
        if (len > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    size_t i = 0;
    for (; i < max_shown && o + 6 < len && s[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[o++] = (char)((ch < 0x20 || ch == 0x7f) ? '?' : ch);
    }
    if (s[i] != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static void format_ms(char *buf, size_t len, int64_t ms)
{
    if (ms != 0 && ms % MS_PER_HOUR == 0)
        snprintf(buf, len, "%" PRId64 "h", ms / MS_PER_HOUR);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%" PRId64 "m", ms / 60000);
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, len, "%" PRId64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRId64 "ms", ms);
}

static void format_size(char *buf, size_t len, int64_t n)
{
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    for (int i = 0; i < 3; i++) {
        int64_t unit = INT64_C(1) << (30 - 10 * i);
        if (n != 0 && n % unit == 0) {
            snprintf(buf, len, "%" PRId64 "%s", n / unit, units[i]);
            return;
        }
    }
    snprintf(buf, len, "%" PRId64, n);
}

/* ------------------------------------------------------------------------- */
/* Scalar parsers                                                            */

/* Reads a run of decimal digits into *out; false on none or on overflow. */
static bool parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

/* A unit suffix and what one of it is worth. */
typedef struct unit_scale {
    const char *suffix;
    uint64_t scale;
} unit_scale_t;

/*
 * Reads "<digits><suffix>" with a suffix of `units`, scaled, into *out when
 * the product stays at most `max`.  The one parser behind durations and
 * sizes.
 */
static bool parse_scaled(const char *s, const unit_scale_t *units, size_t n_units, uint64_t max,
                         uint64_t *out)
{
    if (s == NULL)
        return false;
    const char *p = s;
    uint64_t n;
    if (!parse_u64(&p, &n))
        return false;
    for (size_t i = 0; i < n_units; i++) {
        if (strcmp(p, units[i].suffix) == 0) {
            if (n > max / units[i].scale)
                return false;
            *out = n * units[i].scale;
            return true;
        }
    }
    return false;
}

bool config_parse_duration(const char *s, int64_t *ms)
{
    static const unit_scale_t units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    uint64_t v;
    if (!parse_scaled(s, units, sizeof units / sizeof units[0], (uint64_t)INT64_MAX, &v))
        return false;
    *ms = (int64_t)v;
    return true;
}

bool config_parse_size(const char *s, size_t *out)
{
    static const unit_scale_t units[] = {{"", 1},
                                         {"B", 1},
                                         {"KiB", UINT64_C(1) << 10},
                                         {"MiB", UINT64_C(1) << 20},
                                         {"GiB", UINT64_C(1) << 30}};
    uint64_t v;
    if (!parse_scaled(s, units, sizeof units / sizeof units[0], (uint64_t)SIZE_MAX, &v))
        return false;
    *out = (size_t)v;
    return true;
}

bool config_value_parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    uint64_t n;
    if (!parse_u64(&p, &n) || *p != '\0' || n > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)n : (int64_t)n;
    return true;
}

/* ------------------------------------------------------------------------- */
/* Secret files                                                              */

/*
 * Reads the secret stored in `path` into a new string in *out, without
 * trailing whitespace. Problems name the path, never the content.
 */
static bool read_secret_file(const char *path, char **out, char *why, size_t whylen)
{
    char full[PATH_MAX];
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    int n;
    if (path[0] != '/' && dir != NULL && *dir != '\0')
        n = snprintf(full, sizeof full, "%s/%s", dir, path);
    else
        n = snprintf(full, sizeof full, "%s", path);
    if (n < 0 || (size_t)n >= sizeof full) {
        snprintf(why, whylen, "path is too long");
        return false;
    }

    FILE *f = fopen(full, "re");
    if (f == NULL) {
        snprintf(why, whylen, "cannot open %s: %s", full, strerror(errno));
        return false;
    }
    char *buf = malloc(SECRET_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(why, whylen, "out of memory");
        return false;
    }
    size_t len = fread(buf, 1, SECRET_FILE_MAX + 1, f);
    bool read_failed = ferror(f) != 0;
    int read_errno = errno;
    fclose(f);

    bool ok = false;
    if (read_failed) {
        snprintf(why, whylen, "cannot read %s: %s", full, strerror(read_errno));
        goto done;
    }
    if (len > SECRET_FILE_MAX) {
        snprintf(why, whylen, "%s is larger than 64KiB; is it the right file?", full);
        goto done;
    }
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        len--;
    buf[len] = '\0';
    if (len == 0) {
        snprintf(why, whylen, "%s is empty", full);
        goto done;
    }
    if (memchr(buf, '\n', len) != NULL) {
        snprintf(why, whylen, "%s holds more than one line; it must hold just the secret", full);
        goto done;
    }
    *out = strdup(buf);
    if (*out == NULL) {
        snprintf(why, whylen, "out of memory");
        goto done;
    }
    ok = true;
done:
    explicit_bzero(buf, SECRET_FILE_MAX + 1);
    free(buf);
    return ok;
}

/* ------------------------------------------------------------------------- */
/* Landing a value                                                           */

struct push_ctx {
    char ***items;
    size_t *n;
    bool from_files;
    char *why;
    size_t whylen;
};

static bool push_item(void *ctx_, const char *item, size_t len)
{
    struct push_ctx *ctx = ctx_;
    if (!ctx->from_files) {
        if (!config_value_list_push(ctx->items, ctx->n, item, len)) {
            snprintf(ctx->why, ctx->whylen, "out of memory");
            return false;
        }
        return true;
    }
    char *path = strndup(item, len);
    char *secret = NULL;
    if (path == NULL) {
        snprintf(ctx->why, ctx->whylen, "out of memory");
        return false;
    }
    bool ok = read_secret_file(path, &secret, ctx->why, ctx->whylen);
    free(path);
    if (!ok)
        return false;
    ok = config_value_list_push(ctx->items, ctx->n, secret, strlen(secret));
    wipe_free(secret);
    if (!ok)
        snprintf(ctx->why, ctx->whylen, "out of memory");
    return ok;
}

static bool set_string(char **field, const char *value, bool secret, char *why, size_t whylen)
{
    char *copy = strdup(value);
    if (copy == NULL) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    if (secret)
        wipe_free(*field);
    else
        free(*field);
    *field = copy;
    return true;
}

static bool out_of_range(const config_option_t *o, const char *value, int64_t v, char *why,
                         size_t whylen)
{
    if ((v >= o->min && v <= o->max) || (v == 0 && o->zero_off))
        return false;
    char lo[32], hi[32], shown[64];
    switch (o->type) {
    case CONFIG_TYPE_DURATION:
        format_ms(lo, sizeof lo, o->min);
        format_ms(hi, sizeof hi, o->max);
        break;
    case CONFIG_TYPE_SIZE:
        format_size(lo, sizeof lo, o->min);
        format_size(hi, sizeof hi, o->max);
        break;
    default:
        snprintf(lo, sizeof lo, "%" PRId64, o->min);
        snprintf(hi, sizeof hi, "%" PRId64, o->max);
        break;
    }
    snprintf(why, whylen, "%s must be %sbetween %s and %s",
             config_value_show(shown, sizeof shown, value), o->zero_off ? "0 or " : "", lo, hi);
    return true;
}

bool config_value_set(config_t *c, const config_option_t *o, const char *value, bool append,
                      char *why, size_t whylen)
{
    char shown[64];
    switch (o->type) {
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_SECRET:
        if (!set_string(field_str(c, o), value, is_secret(o), why, whylen))
            return false;
        break;
    case CONFIG_TYPE_LIST:
    case CONFIG_TYPE_SECRET_LIST:
    case CONFIG_TYPE_SECRET_FILE: {
        struct push_ctx ctx = {
            .from_files = o->type == CONFIG_TYPE_SECRET_FILE,
            .why = why,
            .whylen = whylen,
        };
        if (o->type == CONFIG_TYPE_SECRET_FILE && o->count_offset == 0) {
            char *secret = NULL;
            if (!read_secret_file(value, &secret, why, whylen))
                return false;
            wipe_free(*field_str(c, o));
            *field_str(c, o) = secret;
            break;
        }
        if (!append) {
            config_value_list_free(*field_list(c, o), *field_count(c, o), is_secret(o));
            *field_list(c, o) = NULL;
            *field_count(c, o) = 0;
        }
        ctx.items = field_list(c, o);
        ctx.n = field_count(c, o);
        if (!split_list(value, push_item, &ctx))
            return false;
        break;
    }
    case CONFIG_TYPE_DURATION: {
        int64_t ms = 0;
        /* Where 0 means off, a bare 0 needs no unit. */
        bool bare_zero = o->zero_off && strcmp(value, "0") == 0;
        if (!bare_zero && !config_parse_duration(value, &ms)) {
            snprintf(why, whylen,
                     "%s is not a duration (a whole number and ms, s, m, h or d, like 5s)",
                     config_value_show(shown, sizeof shown, value));
            return false;
        }
        if (out_of_range(o, value, ms, why, whylen))
            return false;
        *(int64_t *)((char *)c + o->offset) = ms;
        break;
    }
    case CONFIG_TYPE_SIZE: {
        size_t bytes;
        if (!config_parse_size(value, &bytes)) {
            snprintf(why, whylen,
                     "%s is not a size (a whole number of bytes, or with KiB, MiB or GiB)",
                     config_value_show(shown, sizeof shown, value));
            return false;
        }
        int64_t as_signed = bytes > (size_t)INT64_MAX ? INT64_MAX : (int64_t)bytes;
        if (out_of_range(o, value, as_signed, why, whylen))
            return false;
        *(size_t *)((char *)c + o->offset) = bytes;
        break;
    }
    case CONFIG_TYPE_INT: {
        int64_t v;
        if (!config_value_parse_int(value, &v)) {
            snprintf(why, whylen, "%s is not a whole number",
                     config_value_show(shown, sizeof shown, value));
            return false;
        }
        if (out_of_range(o, value, v, why, whylen))
            return false;
        *(int *)((char *)c + o->offset) = (int)v;
        break;
    }
    case CONFIG_TYPE_ENUM:
        if (strcmp(value, o->words[0]) == 0) {
            *(bool *)((char *)c + o->offset) = false;
        } else if (strcmp(value, o->words[1]) == 0) {
            *(bool *)((char *)c + o->offset) = true;
        } else {
            snprintf(why, whylen, "%s must be %s or %s",
                     config_value_show(shown, sizeof shown, value), o->words[0], o->words[1]);
            return false;
        }
        break;
    case CONFIG_TYPE_LEVEL: {
        enum log_level level;
        if (!log_level_parse(value, &level)) {
            snprintf(why, whylen, "%s must be error, warn, info or debug",
                     config_value_show(shown, sizeof shown, value));
            return false;
        }
        *(enum log_level *)((char *)c + o->offset) = level;
        break;
    }
    }
    return true;
}

/* ------------------------------------------------------------------------- */
/* Comparing, swapping, freeing                                              */

static bool str_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

bool config_value_equal(const config_option_t *o, const config_t *a, const config_t *b)
{
    const void *fa = field_const(a, o->offset);
    const void *fb = field_const(b, o->offset);
    switch (o->type) {
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_SECRET:
        return str_equal(*(char *const *)fa, *(char *const *)fb);
    case CONFIG_TYPE_LIST:
    case CONFIG_TYPE_SECRET_LIST:
    case CONFIG_TYPE_SECRET_FILE: {
        size_t na = *(const size_t *)field_const(a, o->count_offset);
        size_t nb = *(const size_t *)field_const(b, o->count_offset);
        char *const *la = *(char **const *)fa;
        char *const *lb = *(char **const *)fb;
        if (na != nb)
            return false;
        for (size_t i = 0; i < na; i++) {
            if (!str_equal(la[i], lb[i]))
                return false;
        }
        return true;
    }
    case CONFIG_TYPE_DURATION:
        return *(const int64_t *)fa == *(const int64_t *)fb;
    case CONFIG_TYPE_SIZE:
        return *(const size_t *)fa == *(const size_t *)fb;
    case CONFIG_TYPE_INT:
        return *(const int *)fa == *(const int *)fb;
    case CONFIG_TYPE_ENUM:
        return *(const bool *)fa == *(const bool *)fb;
    case CONFIG_TYPE_LEVEL:
        return *(const enum log_level *)fa == *(const enum log_level *)fb;
    }
    return false;
}

/* The bytes of the field an option's value lands in. */
static size_t field_size(const config_option_t *o)
{
    switch (o->type) {
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_SECRET:
        return sizeof(char *);
    case CONFIG_TYPE_LIST:
    case CONFIG_TYPE_SECRET_LIST:
    case CONFIG_TYPE_SECRET_FILE:
        return sizeof(char **);
    case CONFIG_TYPE_DURATION:
        return sizeof(int64_t);
    case CONFIG_TYPE_SIZE:
        return sizeof(size_t);
    case CONFIG_TYPE_INT:
        return sizeof(int);
    case CONFIG_TYPE_ENUM:
        return sizeof(bool);
    case CONFIG_TYPE_LEVEL:
        return sizeof(enum log_level);
    }
    abort(); /* unreachable: every config_type_t is handled above */
}

static void swap_bytes(void *a, void *b, size_t n)
{
    unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        unsigned char t = x[i];
        x[i] = y[i];
        y[i] = t;
    }
}

void config_value_swap(const config_option_t *o, config_t *a, config_t *b)
{
    swap_bytes((char *)a + o->offset, (char *)b + o->offset, field_size(o));
    if (config_value_is_list(o))
        swap_bytes(field_count(a, o), field_count(b, o), sizeof(size_t));
}

void config_value_free(config_t *c, const config_option_t *o)
{
    if (!config_value_owns_field(o))
        return;
    switch (o->type) {
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_SECRET:
        if (is_secret(o))
            wipe_free(*field_str(c, o));
        else
            free(*field_str(c, o));
        break;
    case CONFIG_TYPE_LIST:
    case CONFIG_TYPE_SECRET_LIST:
        config_value_list_free(*field_list(c, o), *field_count(c, o), is_secret(o));
        break;
    default:
        break;
    }
}

const char *config_type_name(config_type_t type)
{
    switch (type) {
    case CONFIG_TYPE_STRING:
        return "string";
    case CONFIG_TYPE_SECRET:
        return "secret";
    case CONFIG_TYPE_SECRET_FILE:
        return "secret file";
    case CONFIG_TYPE_LIST:
        return "list";
    case CONFIG_TYPE_SECRET_LIST:
        return "secret list";
    case CONFIG_TYPE_DURATION:
        return "duration";
    case CONFIG_TYPE_SIZE:
        return "size";
    case CONFIG_TYPE_INT:
        return "integer";
    case CONFIG_TYPE_ENUM:
        return "enum";
    case CONFIG_TYPE_LEVEL:
        return "level";
    }
    return "unknown";
}
