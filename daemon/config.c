/*
 * Configuration loading. The option table below is the single declaration
 * of every key: the loader, the reload diff, the free routine and the tests
 * (which hold config/workos-syncd.conf.example and README.md to it) all walk
 * it. libinih does the INI syntax; it is fed through our own line reader so
 * we know the line number of every value, can name unknown sections, and can
 * refuse lines too long for inih's fixed buffer instead of letting it split
 * them into two. Values are parsed by type, land in config_t at the offset the
 * table gives, and are then checked by an optional per-key hook. Error text
 * is built from the key, never from a secret's value.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "clock.h"
#include "event.h"

#define FIELD(f) offsetof(config_t, f)

/* Secret files are tiny; anything bigger is a wrong path. */
#define SECRET_FILE_MAX 65536

static bool check_api_key(config_t *c, const config_option_t *opt, char *why, size_t whylen);
static bool check_base_url(config_t *c, const config_option_t *opt, char *why, size_t whylen);
static bool check_events(config_t *c, const config_option_t *opt, char *why, size_t whylen);
static bool check_start_from(config_t *c, const config_option_t *opt, char *why, size_t whylen);
static bool check_listen(config_t *c, const config_option_t *opt, char *why, size_t whylen);
static bool check_path(config_t *c, const config_option_t *opt, char *why, size_t whylen);
static bool check_secrets(config_t *c, const config_option_t *opt, char *why, size_t whylen);
static bool check_schema(config_t *c, const config_option_t *opt, char *why, size_t whylen);

#define MS_PER_HOUR INT64_C(3600000)

static const config_option_t options[] = {
    {
        .section = "workos",
        .key = "api_key",
        .type = CONFIG_TYPE_SECRET,
        .env = "WORKOS_API_KEY",
        .doc = "WorkOS API key used to poll the Events API; without one only webhooks are received",
        .offset = FIELD(api_key),
        .exclusive = "api_key_file",
        .check = check_api_key,
    },
    {
        .section = "workos",
        .key = "api_key_file",
        .type = CONFIG_TYPE_SECRET_FILE,
        .doc = "file holding the API key instead; a relative path is looked up in "
               "$CREDENTIALS_DIRECTORY (systemd LoadCredential=)",
        .offset = FIELD(api_key),
        .exclusive = "api_key",
        .check = check_api_key,
    },
    {
        .section = "workos",
        .key = "base_url",
        .type = CONFIG_TYPE_STRING,
        .def = "https://api.workos.com",
        .env = "WORKOS_BASE_URL",
        .doc = "WorkOS API endpoint, http:// or https://",
        .offset = FIELD(base_url),
        .check = check_base_url,
    },
    {
        .section = "workos",
        .key = "events",
        .type = CONFIG_TYPE_LIST,
        .def = "user.*, organization_membership.*, invitation.*, session.*, api_key.*, "
               "organization.*, authentication.*, email_verification.*, magic_auth.*, "
               "password_reset.*",
        .doc = "event types to poll, comma-separated; a trailing .* (or a lone *) expands to "
               "the known types it matches",
        .offset = FIELD(events),
        .count_offset = FIELD(n_events),
        .check = check_events,
    },
    {
        .section = "workos",
        .key = "events_param",
        .type = CONFIG_TYPE_ENUM,
        .def = "events",
        .doc = "how the type filter is sent: events (events=a,b) or events[] "
               "(events[]=a&events[]=b)",
        .offset = FIELD(events_brackets),
        .words = {"events", "events[]"},
    },
    {
        .section = "workos",
        .key = "poll_interval",
        .type = CONFIG_TYPE_DURATION,
        .def = "5s",
        .reloadable = true,
        .doc = "wait after an empty page before asking again",
        .offset = FIELD(poll_interval_ms),
        .min = 10,
        .max = 24 * MS_PER_HOUR,
    },
    {
        .section = "workos",
        .key = "start_from",
        .type = CONFIG_TYPE_STRING,
        .def = "now",
        .doc = "where polling starts when no cursor is stored: now, or an ISO 8601 time "
               "like 2026-01-31T00:00:00Z",
        .offset = FIELD(start_from),
        .check = check_start_from,
    },
    {
        .section = "workos",
        .key = "request_timeout",
        .type = CONFIG_TYPE_DURATION,
        .def = "30s",
        .reloadable = true,
        .doc = "limit for one API request, from connect to last byte",
        .offset = FIELD(request_timeout_ms),
        .min = 100,
        .max = MS_PER_HOUR,
    },
    {
        .section = "workos",
        .key = "rate_limit",
        .type = CONFIG_TYPE_INT,
        .def = "5000",
        .reloadable = true,
        .doc = "most API requests per minute; WorkOS allows 6000 per key, so raise it only for "
               "an emulator",
        .offset = FIELD(rate_limit),
        .min = 1,
        .max = 1000000,
    },
    {
        .section = "webhook",
        .key = "listen",
        .type = CONFIG_TYPE_STRING,
        .def = "",
        .env = "WORKOS_SYNCD_LISTEN",
        .doc = "host:port serving webhooks, /healthz, /readyz and /metrics; empty: no server",
        .offset = FIELD(listen),
        .check = check_listen,
    },
    {
        .section = "webhook",
        .key = "path",
        .type = CONFIG_TYPE_STRING,
        .def = "/webhooks/workos",
        .doc = "URL path WorkOS posts webhooks to",
        .offset = FIELD(webhook_path),
        .check = check_path,
    },
    {
        .section = "webhook",
        .key = "secret",
        .type = CONFIG_TYPE_SECRET_LIST,
        .env = "WORKOS_WEBHOOK_SECRET",
        .reloadable = true,
        .doc = "webhook signing secret; list several, comma-separated, to accept each while "
               "rotating",
        .offset = FIELD(secrets),
        .count_offset = FIELD(n_secrets),
        .exclusive = "secret_file",
        .check = check_secrets,
    },
    {
        .section = "webhook",
        .key = "secret_file",
        .type = CONFIG_TYPE_SECRET_FILE,
        .reloadable = true,
        .doc = "files holding one webhook secret each, comma-separated; a relative path is "
               "looked up in $CREDENTIALS_DIRECTORY",
        .offset = FIELD(secrets),
        .count_offset = FIELD(n_secrets),
        .exclusive = "secret",
        .check = check_secrets,
    },
    {
        .section = "webhook",
        .key = "tolerance",
        .type = CONFIG_TYPE_DURATION,
        .def = "180s",
        .reloadable = true,
        .doc = "how far a signature timestamp may be from now, in the past or the future",
        .offset = FIELD(tolerance_ms),
        .min = 1000,
        .max = 24 * MS_PER_HOUR,
    },
    {
        .section = "webhook",
        .key = "max_body",
        .type = CONFIG_TYPE_SIZE,
        .def = "1MiB",
        .reloadable = true,
        .doc = "largest webhook body accepted; a larger one is answered 413",
        .offset = FIELD(max_body),
        .min = 1024,
        .max = INT64_C(64) << 20, /* a batch parameter must stay well under 1 GiB */
    },
    {
        .section = "webhook",
        .key = "max_connections",
        .type = CONFIG_TYPE_INT,
        .def = "1024",
        .reloadable = false,
        .doc = "most open webhook connections; beyond it new clients wait in the kernel backlog",
        .offset = FIELD(max_connections),
        .min = 1,
        .max = 65536,
    },
    {
        .section = "webhook",
        .key = "client_timeout",
        .type = CONFIG_TYPE_DURATION,
        .def = "10s",
        .reloadable = true,
        .doc = "a webhook connection silent this long (slow request, idle keep-alive) is closed",
        .offset = FIELD(client_timeout_ms),
        .min = 1000,
        .max = MS_PER_HOUR,
    },
    {
        .section = "database",
        .key = "url",
        .type = CONFIG_TYPE_SECRET,
        .def = "",
        .env = "DATABASE_URL",
        .doc = "PostgreSQL connection string (URI or key=value); empty: libpq defaults and "
               "PG* variables",
        .offset = FIELD(database_url),
    },
    {
        .section = "database",
        .key = "schema",
        .type = CONFIG_TYPE_STRING,
        .def = "workos",
        .doc = "schema holding the mirror tables",
        .offset = FIELD(schema),
        .check = check_schema,
    },
    {
        .section = "log",
        .key = "level",
        .type = CONFIG_TYPE_LEVEL,
        .def = "info",
        .env = "WORKOS_SYNCD_LOG_LEVEL",
        .reloadable = true,
        .doc = "least severe messages written: error, warn, info or debug",
        .offset = FIELD(log_level),
    },
};

#define N_OPTIONS (sizeof options / sizeof options[0])

/* ------------------------------------------------------------------------- */
/* Table access                                                              */

const config_option_t *config_options(size_t *n)
{
    *n = N_OPTIONS;
    return options;
}

const config_option_t *config_option_find(const char *section, const char *key)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcmp(options[i].section, section) == 0 && strcmp(options[i].key, key) == 0)
            return &options[i];
    }
    return NULL;
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

static bool section_known(const char *section)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcmp(options[i].section, section) == 0)
            return true;
    }
    return false;
}

static bool is_list(const config_option_t *o)
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
static bool owns_field(const config_option_t *o)
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
/* Small helpers                                                             */

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void list_free(char **items, size_t n, bool wipe)
{
    for (size_t i = 0; i < n; i++) {
        if (wipe)
            wipe_free(items[i]);
        else
            free(items[i]);
    }
    free(items);
}

static bool list_contains(char *const *items, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], s) == 0)
            return true;
    }
    return false;
}

/* Appends a copy of s[0..len); false on allocation failure. */
static bool list_push(char ***items, size_t *n, const char *s, size_t len)
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

/* A short, printable, quoted rendering of a non-secret value for messages. */
static const char *show(char *buf, size_t len, const char *s)
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

/* Edit distance, for "did you mean" hints on misspelt keys. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return SIZE_MAX;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost =
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
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

bool config_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    if (s == NULL)
        return false;
    const char *p = s;
    uint64_t n;
    if (!parse_u64(&p, &n))
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].suffix) == 0) {
            if (n > (uint64_t)INT64_MAX / units[i].ms)
                return false;
            *ms = (int64_t)(n * units[i].ms);
            return true;
        }
    }
    return false;
}

bool config_parse_size(const char *s, size_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t bytes;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", UINT64_C(1) << 10},
                 {"MiB", UINT64_C(1) << 20},
                 {"GiB", UINT64_C(1) << 30}};
    if (s == NULL)
        return false;
    const char *p = s;
    uint64_t n;
    if (!parse_u64(&p, &n))
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].suffix) == 0) {
            if (n > (uint64_t)SIZE_MAX / units[i].bytes)
                return false;
            *out = (size_t)(n * units[i].bytes);
            return true;
        }
    }
    return false;
}

static bool parse_int(const char *s, int64_t *out)
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

static bool load(config_t *c, const char *path, char *err, size_t errlen);

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
        if (!list_push(ctx->items, ctx->n, item, len)) {
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
    ok = list_push(ctx->items, ctx->n, secret, strlen(secret));
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
    if (v >= o->min && v <= o->max)
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
    snprintf(why, whylen, "%s must be between %s and %s", show(shown, sizeof shown, value), lo, hi);
    return true;
}

/*
 * Parses `value` as option o and stores it in *c, replacing the old value,
 * or for lists appending when `append` is set (an indented continuation
 * line). Then runs the option's check. On failure writes the problem into
 * why[whylen]; *c stays consistent (freeable) either way.
 */
/*
 * Set for the duration of one config_load_opts() call.  The one-shot
 * commands (status, migrate) need no secrets, and an operator running them
 * outside the unit has no $CREDENTIALS_DIRECTORY to find the files in.
 */
static bool skip_secret_files;

/* True when the secret a *_file key would fill comes from the environment. */
static bool env_overrides(const config_option_t *file_opt)
{
    size_t n;
    const config_option_t *all = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        const char *v = all[i].env ? getenv(all[i].env) : NULL;
        if (&all[i] != file_opt && all[i].offset == file_opt->offset && v != NULL && *v != '\0')
            return true;
    }
    return false;
}

static bool apply_value(config_t *c, const config_option_t *o, const char *value, bool append,
                        char *why, size_t whylen)
{
    char shown[64];
    if (o->type == CONFIG_TYPE_SECRET_FILE && (skip_secret_files || env_overrides(o)))
        return true;
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
            list_free(*field_list(c, o), *field_count(c, o), is_secret(o));
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
        int64_t ms;
        if (!config_parse_duration(value, &ms)) {
            snprintf(why, whylen,
                     "%s is not a duration (a whole number and ms, s, m or h, like 5s)",
                     show(shown, sizeof shown, value));
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
                     show(shown, sizeof shown, value));
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
        if (!parse_int(value, &v)) {
            snprintf(why, whylen, "%s is not a whole number", show(shown, sizeof shown, value));
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
            snprintf(why, whylen, "%s must be %s or %s", show(shown, sizeof shown, value),
                     o->words[0], o->words[1]);
            return false;
        }
        break;
    case CONFIG_TYPE_LEVEL: {
        enum log_level level;
        if (!log_level_parse(value, &level)) {
            snprintf(why, whylen, "%s must be error, warn, info or debug",
                     show(shown, sizeof shown, value));
            return false;
        }
        *(enum log_level *)((char *)c + o->offset) = level;
        break;
    }
    }
    return o->check == NULL || o->check(c, o, why, whylen);
}

/* ------------------------------------------------------------------------- */
/* Per-key checks                                                            */

/* Secrets travel in HTTP headers and HMAC keys: no blanks, no control bytes. */
static bool token_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == 0x7f)
            return false;
    }
    return true;
}

static bool check_api_key(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    if (c->api_key != NULL && c->api_key[0] == '\0') {
        free(c->api_key);
        c->api_key = NULL;
    }
    if (c->api_key != NULL && !token_ok(c->api_key)) {
        snprintf(why, whylen, "the API key contains blanks or control characters");
        return false;
    }
    return true;
}

static bool check_secrets(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    for (size_t i = 0; i < c->n_secrets; i++) {
        if (!token_ok(c->secrets[i])) {
            snprintf(why, whylen, "secret %zu of %zu contains blanks or control characters", i + 1,
                     c->n_secrets);
            return false;
        }
    }
    return true;
}

static bool check_base_url(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    char *u = c->base_url;
    size_t skip;
    if (strncasecmp(u, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(u, "http://", 7) == 0)
        skip = 7;
    else {
        snprintf(why, whylen, "%s must start with http:// or https://",
                 show(shown, sizeof shown, u));
        return false;
    }
    size_t len = strlen(u);
    while (len > skip && u[len - 1] == '/')
        u[--len] = '\0';
    if (len == skip || u[skip] == '/') {
        snprintf(why, whylen, "%s has no host", show(shown, sizeof shown, u));
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)u[i];
        if (ch <= ' ' || ch == 0x7f || ch == '?' || ch == '#') {
            snprintf(why, whylen, "%s must be a plain URL without blanks, query or fragment",
                     show(shown, sizeof shown, u));
            return false;
        }
    }
    return true;
}

/*
 * Lower-case words joined by dots, like the names WorkOS uses; a full event
 * name has at least one dot, a wildcard's prefix need not.
 */
static bool event_words_ok(const char *s, size_t len, bool need_dot)
{
    bool dot = false;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (i == 0 || i + 1 == len || s[i - 1] == '.')
                return false;
            dot = true;
        } else if (!(islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '_')) {
            return false;
        }
    }
    return dot || !need_dot;
}

/*
 * Expands wildcards into the known names they match and drops duplicates.
 * Runs again after every continuation line; already-expanded names pass
 * through unchanged, so that is harmless.
 */
static bool check_events(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    char **out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->n_events; i++) {
        const char *item = c->events[i];
        size_t len = strlen(item);
        const char *star = strchr(item, '*');
        if (star != NULL) {
            /* Only "*" or "<words>.*" */
            bool shape =
                star == item + len - 1 &&
                (len == 1 || (len >= 3 && star[-1] == '.' && event_words_ok(item, len - 2, false)));
            if (!shape) {
                snprintf(why, whylen,
                         "%s: a wildcard must be a whole name ending in .*, "
                         "like authentication.*",
                         show(shown, sizeof shown, item));
                goto fail;
            }
            size_t plen =
                len - 1; /* keeps the dot, so organization.* skips organization_membership.* */
            size_t matched = 0;
            /* Expands against the types event.c knows; names it does not
             * know are still accepted, so a new WorkOS type needs no release. */
            const char *known;
            for (size_t k = 0; (known = event_known_type(k)) != NULL; k++) {
                if (strncmp(known, item, plen) != 0)
                    continue;
                matched++;
                if (!list_contains(out, n, known) && !list_push(&out, &n, known, strlen(known)))
                    goto oom;
            }
            if (matched == 0) {
                snprintf(why, whylen, "%s matches no known event type",
                         show(shown, sizeof shown, item));
                goto fail;
            }
            continue;
        }
        if (!event_words_ok(item, len, true)) {
            snprintf(why, whylen,
                     "%s is not an event type (lower-case words joined by dots, like user.created)",
                     show(shown, sizeof shown, item));
            goto fail;
        }
        if (!list_contains(out, n, item) && !list_push(&out, &n, item, len))
            goto oom;
    }
    if (n == 0) {
        snprintf(why, whylen, "lists no event types");
        goto fail;
    }
    list_free(c->events, c->n_events, false);
    c->events = out;
    c->n_events = n;
    return true;
oom:
    snprintf(why, whylen, "out of memory");
fail:
    list_free(out, n, false);
    return false;
}

static bool check_start_from(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    int64_t start_ms;
    if (strcmp(c->start_from, "now") == 0 || clock_parse_iso8601(c->start_from, &start_ms))
        return true;
    snprintf(why, whylen, "%s must be now or an ISO 8601 time like 2026-01-31T00:00:00Z",
             show(shown, sizeof shown, c->start_from));
    return false;
}

static bool check_listen(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    const char *s = c->listen;
    if (*s == '\0')
        return true;
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        goto bad;
    size_t hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']')
            goto bad;
    } else if (memchr(s, ':', hlen) != NULL) {
        snprintf(why, whylen, "%s: write an IPv6 address in brackets, like [::1]:8089",
                 show(shown, sizeof shown, s));
        return false;
    }
    for (size_t i = 0; i < hlen; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == '/')
            goto bad;
    }
    const char *port = colon + 1;
    int64_t v;
    if (*port == '\0' || strspn(port, "0123456789") != strlen(port) || !parse_int(port, &v) ||
        v > 65535)
        goto bad;
    return true;
bad:
    snprintf(why, whylen, "%s must be host:port, like 127.0.0.1:8089 (port 0 picks a free one)",
             show(shown, sizeof shown, s));
    return false;
}

static bool check_path(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    const char *s = c->webhook_path;
    bool ok = s[0] == '/';
    for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++) {
        if (*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
            ok = false;
    }
    if (!ok) {
        char shown[64];
        snprintf(why, whylen, "%s must be a URL path starting with /, without query or blanks",
                 show(shown, sizeof shown, s));
    }
    return ok;
}

static bool check_schema(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    const char *s = c->schema;
    size_t len = strlen(s);
    bool ok = len >= 1 && len <= 63 && (islower((unsigned char)s[0]) || s[0] == '_');
    for (size_t i = 1; ok && i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        ok = islower(ch) || isdigit(ch) || ch == '_';
    }
    if (!ok) {
        snprintf(why, whylen, "%s must be 1 to 63 of a-z, 0-9 and _, not starting with a digit",
                 show(shown, sizeof shown, s));
        return false;
    }
    if (strncmp(s, "pg_", 3) == 0) {
        snprintf(why, whylen, "%s: names starting with pg_ are reserved by PostgreSQL",
                 show(shown, sizeof shown, s));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------- */
/* Defaults, free                                                            */

static bool apply_defaults(config_t *c, char *why, size_t whylen)
{
    memset(c, 0, sizeof *c);
    c->log_level = LOG_LEVEL_INFO;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].def != NULL &&
            !apply_value(c, &options[i], options[i].def, false, why, whylen))
            return false;
    }
    return true;
}

void config_defaults(config_t *c)
{
    char why[256];
    if (!apply_defaults(c, why, sizeof why)) {
        /* Only allocation can fail here: every default is checked by the unit tests. */
        fprintf(stderr, "workos-syncd: config defaults: %s\n", why);
        abort();
    }
}

void config_free(config_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option_t *o = &options[i];
        if (!owns_field(o))
            continue;
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
            list_free(*field_list(c, o), *field_count(c, o), is_secret(o));
            break;
        default:
            break;
        }
    }
    free(c->path);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------------- */
/* Loading                                                                   */

typedef struct load_state {
    config_t *c;
    FILE *fp;
    const char *path; /* for messages */
    char *err;
    size_t errlen;
    bool failed;
    int fail_line;               /* line of the recorded error, 0 if not tied to a line */
    int line;                    /* line the reader handed to inih last */
    bool indented;               /* that line starts with a blank: a continuation for inih */
    const config_option_t *last; /* option set by the previous key line of this section */
    int set_line[N_OPTIONS];     /* where each option was set, 0 if not */
    char *buf;
    size_t bufcap;
} load_state_t;

static void fail_line(load_state_t *st, const config_option_t *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error as `FILE:LINE: [section] key: problem`. */
static void fail_line(load_state_t *st, const config_option_t *o, const char *fmt, ...)
{
    if (st->failed)
        return;
    st->failed = true;
    st->fail_line = st->line;
    int n;
    if (o != NULL)
        n = snprintf(st->err, st->errlen, "%s:%d: [%s] %s: ", st->path, st->line, o->section,
                     o->key);
    else
        n = snprintf(st->err, st->errlen, "%s:%d: ", st->path, st->line);
    if (n < 0 || (size_t)n >= st->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/*
 * Feeds inih one line at a time so we always know the current line number,
 * and screens what inih would mishandle: lines longer than its buffer (they
 * would be split in two), unknown sections (inih only reports keys), and
 * indented `key =` lines (inih would read them as a continuation of the
 * previous value).
 */
static char *read_line(char *str, int num, void *stream)
{
    load_state_t *st = stream;
    if (st->failed)
        return NULL;
    errno = 0;
    ssize_t n = getline(&st->buf, &st->bufcap, st->fp);
    if (n < 0) {
        if (ferror(st->fp)) {
            st->line++;
            fail_line(st, NULL, "cannot read: %s", strerror(errno));
        }
        return NULL;
    }
    st->line++;
    char *line = st->buf;
    size_t len = (size_t)n;
    if (strlen(line) != len) {
        fail_line(st, NULL, "contains a NUL byte");
        return NULL;
    }
    size_t content = len;
    while (content > 0 && (line[content - 1] == '\n' || line[content - 1] == '\r'))
        content--;

    /* inih skips a UTF-8 byte order mark on the first line; so must we. */
    const char *text = line;
    if (st->line == 1 && content >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
        text += 3;
    const char *start = text;
    while (*start == ' ' || *start == '\t')
        start++;
    bool comment = *start == '#' || *start == ';' || (size_t)(start - line) == content;
    st->indented = !comment && start > text;

    /* inih needs room for "\r\n\0" beyond the text. */
    if (num < 4 || content > (size_t)num - 3) {
        if (comment) {
            snprintf(str, (size_t)num, "#\n");
            return str;
        }
        fail_line(st, NULL,
                  "line is longer than %d characters; continue a list on indented "
                  "lines, or use the environment variable",
                  num > 3 ? num - 3 : 0);
        return NULL;
    }

    if (*start == '[' && !st->indented) {
        const char *close = strchr(start, ']');
        if (close != NULL) {
            char name[64];
            size_t nlen = (size_t)(close - start - 1);
            if (nlen >= sizeof name) {
                fail_line(st, NULL, "unknown section");
                return NULL;
            }
            memcpy(name, start + 1, nlen);
            name[nlen] = '\0';
            if (!section_known(name)) {
                fail_line(st, NULL, "[%s]: unknown section", name);
                return NULL;
            }
        }
        st->last = NULL;
    } else if (st->indented && st->last != NULL) {
        if (*start == '[') {
            fail_line(st, NULL, "a [section] line must not be indented");
            return NULL;
        }
        size_t klen = strspn(start, "abcdefghijklmnopqrstuvwxyz_");
        const char *after = start + klen;
        while (*after == ' ' || *after == '\t')
            after++;
        if (klen > 0 && klen < 32 && *after == '=') {
            char key[32];
            memcpy(key, start, klen);
            key[klen] = '\0';
            for (size_t i = 0; i < N_OPTIONS; i++) {
                if (strcmp(options[i].key, key) == 0) {
                    fail_line(st, NULL,
                              "indented `%s =` would continue the previous value; "
                              "remove the indentation",
                              key);
                    return NULL;
                }
            }
        }
    }
    memcpy(str, line, content);
    str[content] = '\n';
    str[content + 1] = '\0';
    return str;
}

static const char *suggest(const char *section, const char *key, char *buf, size_t len)
{
    const config_option_t *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcmp(options[i].key, key) == 0 && strcmp(options[i].section, section) != 0) {
            snprintf(buf, len, " (it belongs in [%s])", options[i].section);
            return buf;
        }
        if (strcmp(options[i].section, section) != 0)
            continue;
        size_t d = edit_distance(key, options[i].key);
        if (d < best_d) {
            best_d = d;
            best = &options[i];
        }
    }
    if (best != NULL)
        snprintf(buf, len, " (did you mean %s?)", best->key);
    else if (len > 0)
        buf[0] = '\0';
    return buf;
}

static int on_value(void *user, const char *section, const char *name, const char *raw)
{
    load_state_t *st = user;
    char why[512];
    char unquoted[512];
    if (st->failed)
        return 0;

    /* Operators used to other formats quote values; "x" means x. */
    const char *value = raw;
    size_t rawlen = strlen(raw);
    if (rawlen >= 2 && raw[0] == '"' && raw[rawlen - 1] == '"' && rawlen - 2 < sizeof unquoted) {
        memcpy(unquoted, raw + 1, rawlen - 2);
        unquoted[rawlen - 2] = '\0';
        value = unquoted;
    }

    if (st->indented && st->last != NULL) {
        const config_option_t *o = st->last;
        if (!is_list(o)) {
            fail_line(st, o,
                      "an indented line continues the previous value, and only lists "
                      "may continue; remove the indentation");
            return 0;
        }
        if (!apply_value(st->c, o, value, true, why, sizeof why)) {
            fail_line(st, o, "%s", why);
            return 0;
        }
        return 1;
    }

    if (*section == '\0') {
        fail_line(st, NULL, "%s: set before the first [section]", name);
        return 0;
    }
    const config_option_t *o = config_option_find(section, name);
    if (o == NULL) {
        char hint[64];
        fail_line(st, NULL, "[%s] %s: unknown key%s", section, name,
                  suggest(section, name, hint, sizeof hint));
        return 0;
    }
    size_t idx = (size_t)(o - options);
    if (st->set_line[idx] != 0) {
        fail_line(st, o, "set twice (first on line %d)", st->set_line[idx]);
        return 0;
    }
    if (o->exclusive != NULL) {
        const config_option_t *other = config_option_find(o->section, o->exclusive);
        if (other != NULL && st->set_line[other - options] != 0) {
            fail_line(st, o, "set either %s or %s, not both (%s is on line %d)", o->key, other->key,
                      other->key, st->set_line[other - options]);
            return 0;
        }
    }
    st->set_line[idx] = st->line;
    st->last = o;
    if (!apply_value(st->c, o, value, false, why, sizeof why)) {
        fail_line(st, o, "%s", why);
        return 0;
    }
    return 1;
}

static bool load_file(config_t *c, const char *path, char *err, size_t errlen)
{
    load_state_t st = {.c = c, .path = path, .err = err, .errlen = errlen};
    st.fp = fopen(path, "re");
    if (st.fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    int rc = ini_parse_stream(read_line, &st, on_value, &st);
    fclose(st.fp);
    /* The last lines read may have held a secret. */
    if (st.buf != NULL)
        explicit_bzero(st.buf, st.bufcap);
    free(st.buf);

    if (rc > 0 && (!st.failed || rc < st.fail_line)) {
        snprintf(err, errlen, "%s:%d: not a `key = value` or `[section]` line", path, rc);
        return false;
    }
    if (rc == -2 && !st.failed) {
        snprintf(err, errlen, "%s: out of memory", path);
        return false;
    }
    return !st.failed && rc == 0;
}

static bool load_env(config_t *c, char *err, size_t errlen)
{
    char why[512];
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option_t *o = &options[i];
        if (o->env == NULL)
            continue;
        const char *v = getenv(o->env);
        /* Empty counts as unset, as with most tools that read the environment. */
        if (v == NULL || *v == '\0')
            continue;
        if (!apply_value(c, o, v, false, why, sizeof why)) {
            snprintf(err, errlen, "env %s: [%s] %s: %s", o->env, o->section, o->key, why);
            return false;
        }
    }
    return true;
}

static bool check_cross(const config_t *c, const char *path, char *err, size_t errlen)
{
    const char *prefix = path != NULL ? path : "";
    const char *sep = path != NULL ? ": " : "";
    if (c->listen[0] != '\0' && c->n_secrets == 0 && !skip_secret_files) {
        snprintf(err, errlen,
                 "%s%s[webhook] secret: required when [webhook] listen is set (or set "
                 "secret_file or WORKOS_WEBHOOK_SECRET)",
                 prefix, sep);
        return false;
    }
    return true;
}

bool config_load(config_t *c, const char *path, char *err, size_t errlen)
{
    return config_load_opts(c, path, 0, err, errlen);
}

bool config_load_opts(config_t *c, const char *path, unsigned flags, char *err, size_t errlen)
{
    skip_secret_files = (flags & CONFIG_SKIP_SECRET_FILES) != 0;
    bool ok = load(c, path, err, errlen);
    skip_secret_files = false;
    return ok;
}

static bool load(config_t *c, const char *path, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!apply_defaults(c, err, errlen))
        goto fail;
    if (path != NULL) {
        c->path = strdup(path);
        if (c->path == NULL) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        if (!load_file(c, path, err, errlen))
            goto fail;
    }
    if (!load_env(c, err, errlen) || !check_cross(c, path, err, errlen))
        goto fail;
    return true;
fail:
    config_free(c);
    return false;
}

/* ------------------------------------------------------------------------- */
/* Reload                                                                    */

static bool str_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool option_equal(const config_option_t *o, const config_t *a, const config_t *b)
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

void config_reload_apply(config_t *running, config_t *fresh)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option_t *opt = &options[i];
        if (!opt->reloadable || !owns_field(opt))
            continue;
        swap_bytes((char *)running + opt->offset, (char *)fresh + opt->offset, field_size(opt));
        if (is_list(opt))
            swap_bytes(field_count(running, opt), field_count(fresh, opt), sizeof(size_t));
    }
}

const char *config_reload_diff(const config_t *old_cfg, const config_t *new_cfg, char *buf,
                               size_t len)
{
    if (len == 0)
        return "";
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option_t *opt = &options[i];
        if (opt->reloadable || !owns_field(opt) || option_equal(opt, old_cfg, new_cfg))
            continue;
        char item[64];
        int n = snprintf(item, sizeof item, "%s[%s] %s", o > 0 ? ", " : "", opt->section, opt->key);
        if (n < 0)
            continue;
        if (o + (size_t)n + 1 > len) {
            /* Cut: make room for the marker, whatever the buffer size. */
            while (o > 0 && o + 4 > len)
                o--;
            if (o + 4 <= len) {
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            buf[o] = '\0';
            return buf;
        }
        memcpy(buf + o, item, (size_t)n + 1);
        o += (size_t)n;
    }
    return buf;
}
