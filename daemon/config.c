/*
 * Configuration: the option table and the loader. The table below is the
 * single declaration of every key -- section, key, type, default,
 * environment variable, reload behaviour, range and check -- and the
 * loader, the reload apply and diff, the free routine and the tests (which
 * hold config/workos-syncd.conf.example and README.md to it) all walk it.
 * Loading goes defaults, then the file (read through the line screen in
 * config_screen.c), then the environment, then checks across keys; values
 * are parsed and stored by config_value.c and held to their key's rules by
 * config_check.c. Error text is built from the key, never from a secret's
 * value.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_check.h"
#include "config_screen.h"
#include "config_value.h"

#define FIELD(f) offsetof(config_t, f)

#define MS_PER_HOUR INT64_C(3600000)
#define MS_PER_DAY (24 * MS_PER_HOUR)

static const config_option_t options[] = {
    {
        .section = "workos",
        .key = "api_key",
        .type = CONFIG_TYPE_SECRET,
        .env = "WORKOS_API_KEY",
        .doc = "WorkOS API key used to poll the Events API; without one only webhooks are received",
        .offset = FIELD(api_key),
        .exclusive = "api_key_file",
        .check = config_check_api_key,
    },
    {
        .section = "workos",
        .key = "api_key_file",
        .type = CONFIG_TYPE_SECRET_FILE,
        .doc = "file holding the API key instead; a relative path is looked up in "
               "$CREDENTIALS_DIRECTORY (systemd LoadCredential=)",
        .offset = FIELD(api_key),
        .exclusive = "api_key",
        .check = config_check_api_key,
    },
    {
        .section = "workos",
        .key = "base_url",
        .type = CONFIG_TYPE_STRING,
        .def = "https://api.workos.com",
        .env = "WORKOS_BASE_URL",
        .doc = "WorkOS API endpoint, http:// or https://",
        .offset = FIELD(base_url),
        .check = config_check_base_url,
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
        .check = config_check_events,
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
        .def = "snapshot",
        .doc = "where polling starts when no cursor is stored: snapshot (reconcile from the "
               "list endpoints, then follow events from just before), now, or an ISO 8601 "
               "time like 2026-01-31T00:00:00Z",
        .offset = FIELD(start_from),
        .check = config_check_start_from,
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
        .section = "workos",
        .key = "fetch_windows",
        .type = CONFIG_TYPE_INT,
        .def = "16",
        .reloadable = true,
        .doc = "a backlog is fetched as up to this many time windows at once, handed to the "
               "apply in order; 1 keeps one request in flight",
        .offset = FIELD(fetch_windows),
        .min = 1,
        .max = 64,
    },
    {
        .section = "workos",
        .key = "fetch_ahead",
        .type = CONFIG_TYPE_INT,
        .def = "32000",
        .reloadable = true,
        .doc = "events the windows may hold fetched ahead of the apply, at most",
        .offset = FIELD(fetch_ahead),
        .min = 100,
        .max = 1000000,
    },
    {
        .section = "workos",
        .key = "retention",
        .type = CONFIG_TYPE_DURATION,
        .def = "30d",
        .doc = "how long WorkOS keeps events; a stored cursor whose event is older is expired "
               "and the mirror is reconciled instead",
        .offset = FIELD(retention_ms),
        .min = 60000,
        .max = 3650 * MS_PER_DAY,
    },
    {
        .section = "webhook",
        .key = "listen",
        .type = CONFIG_TYPE_STRING,
        .def = "",
        .env = "WORKOS_SYNCD_LISTEN",
        .doc = "host:port serving webhooks, /healthz, /readyz and /metrics; empty: no server",
        .offset = FIELD(listen),
        .check = config_check_listen,
    },
    {
        .section = "webhook",
        .key = "path",
        .type = CONFIG_TYPE_STRING,
        .def = "/webhooks/workos",
        .doc = "URL path WorkOS posts webhooks to",
        .offset = FIELD(webhook_path),
        .check = config_check_path,
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
        .check = config_check_secrets,
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
        .check = config_check_secrets,
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
        .section = "webhook",
        .key = "max_unverified_bytes",
        .type = CONFIG_TYPE_SIZE,
        .def = "0",
        .reloadable = true,
        .doc = "bytes buffered across all webhook requests whose signature is not yet verified; "
               "past it new requests are answered 503 (0: eight times max_body)",
        .offset = FIELD(max_unverified_bytes),
        .zero_off = true,
        .min = 1024,
        .max = INT64_C(1) << 30,
    },
    {
        .section = "webhook",
        .key = "request_deadline",
        .type = CONFIG_TYPE_DURATION,
        .def = "10s",
        .reloadable = true,
        .doc = "a whole webhook request, headers and body, must arrive within this",
        .offset = FIELD(request_deadline_ms),
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
        .check = config_check_schema,
    },
    {
        .section = "database",
        .key = "lock_timeout",
        .type = CONFIG_TYPE_DURATION,
        .def = "5s",
        .doc = "longest wait for a lock in the daemon's own statements (PostgreSQL lock_timeout)",
        .offset = FIELD(lock_timeout_ms),
        .min = 10,
        .max = MS_PER_HOUR,
    },
    {
        .section = "database",
        .key = "statement_timeout",
        .type = CONFIG_TYPE_DURATION,
        .def = "30s",
        .doc = "longest run of one of the daemon's own statements (PostgreSQL "
               "statement_timeout)",
        .offset = FIELD(statement_timeout_ms),
        .min = 100,
        .max = 24 * MS_PER_HOUR,
    },
    {
        .section = "reconcile",
        .key = "interval",
        .type = CONFIG_TYPE_DURATION,
        .def = "24h",
        .doc = "time between periodic reconciliations from the WorkOS list endpoints; 0: off",
        .offset = FIELD(reconcile_interval_ms),
        .min = 1000,
        .max = 365 * MS_PER_DAY,
        .zero_off = true,
    },
    {
        .section = "reconcile",
        .key = "rate_limit",
        .type = CONFIG_TYPE_INT,
        .def = "5400",
        .doc = "most list requests per minute, overall and under /user_management/ each",
        .offset = FIELD(reconcile_rate_limit),
        .min = 1,
        .max = 1000000,
    },
    {
        .section = "audit",
        .key = "retention",
        .type = CONFIG_TYPE_DURATION,
        .def = "0",
        .doc = "audit rows older than this are removed; 0: kept forever",
        .offset = FIELD(audit_retention_ms),
        .min = 60000,
        .max = 3650 * MS_PER_DAY,
        .zero_off = true,
    },
    {
        .section = "audit",
        .key = "auth_retention",
        .type = CONFIG_TYPE_DURATION,
        .def = "0",
        .doc = "the same for authentication audit rows; 0: as [audit] retention",
        .offset = FIELD(audit_auth_retention_ms),
        .min = 60000,
        .max = 3650 * MS_PER_DAY,
        .zero_off = true,
    },
    {
        .section = "audit",
        .key = "head_log_interval",
        .type = CONFIG_TYPE_DURATION,
        .def = "1h",
        .doc = "how often the audit chain's head is written to the log; 0: never",
        .offset = FIELD(audit_head_log_interval_ms),
        .min = 1000,
        .max = 24 * MS_PER_HOUR,
        .zero_off = true,
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

/* ------------------------------------------------------------------------- */
/* Landing a value                                                           */

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

/*
 * Parses `value` as option o into *c (see config_value_set), then runs the
 * option's check. A *_file key is passed over while secret files are
 * skipped or while the environment supplies the secret it would fill.
 */
static bool apply_value(config_t *c, const config_option_t *o, const char *value, bool append,
                        char *why, size_t whylen)
{
    if (o->type == CONFIG_TYPE_SECRET_FILE && (skip_secret_files || env_overrides(o)))
        return true;
    if (!config_value_set(c, o, value, append, why, whylen))
        return false;
    return o->check == NULL || o->check(c, o, why, whylen);
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
    for (size_t i = 0; i < N_OPTIONS; i++)
        config_value_free(c, &options[i]);
    free(c->path);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------------- */
/* Loading                                                                   */

typedef struct load_state {
    config_t *c;
    config_screen_t screen;  /* line, indentation, last option, first error */
    int set_line[N_OPTIONS]; /* where each option was set, 0 if not */
} load_state_t;

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
    if (st->screen.failed)
        return 0;

    /* Operators used to other formats quote values; "x" means x. */
    const char *value = raw;
    size_t rawlen = strlen(raw);
    if (rawlen >= 2 && raw[0] == '"' && raw[rawlen - 1] == '"' && rawlen - 2 < sizeof unquoted) {
        memcpy(unquoted, raw + 1, rawlen - 2);
        unquoted[rawlen - 2] = '\0';
        value = unquoted;
    }

    if (st->screen.indented && st->screen.last != NULL) {
        const config_option_t *o = st->screen.last;
        if (!config_value_is_list(o)) {
            config_screen_fail(&st->screen, o,
                               "an indented line continues the previous value, and only lists "
                               "may continue; remove the indentation");
            return 0;
        }
        if (!apply_value(st->c, o, value, true, why, sizeof why)) {
            config_screen_fail(&st->screen, o, "%s", why);
            return 0;
        }
        return 1;
    }

    if (*section == '\0') {
        config_screen_fail(&st->screen, NULL, "%s: set before the first [section]", name);
        return 0;
    }
    const config_option_t *o = config_option_find(section, name);
    if (o == NULL) {
        char hint[64];
        config_screen_fail(&st->screen, NULL, "[%s] %s: unknown key%s", section, name,
                           suggest(section, name, hint, sizeof hint));
        return 0;
    }
    size_t idx = (size_t)(o - options);
    if (st->set_line[idx] != 0) {
        config_screen_fail(&st->screen, o, "set twice (first on line %d)", st->set_line[idx]);
        return 0;
    }
    if (o->exclusive != NULL) {
        const config_option_t *other = config_option_find(o->section, o->exclusive);
        if (other != NULL && st->set_line[other - options] != 0) {
            config_screen_fail(&st->screen, o, "set either %s or %s, not both (%s is on line %d)",
                               o->key, other->key, other->key, st->set_line[other - options]);
            return 0;
        }
    }
    st->set_line[idx] = st->screen.line;
    st->screen.last = o;
    if (!apply_value(st->c, o, value, false, why, sizeof why)) {
        config_screen_fail(&st->screen, o, "%s", why);
        return 0;
    }
    return 1;
}

static bool load_file(config_t *c, const char *path, char *err, size_t errlen)
{
    load_state_t st = {.c = c};
    return config_screen_parse(&st.screen, path, on_value, &st, err, errlen);
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
    if (c->max_unverified_bytes != 0 && c->max_unverified_bytes < c->max_body) {
        snprintf(err, errlen,
                 "%s%s[webhook] max_unverified_bytes: must be at least [webhook] max_body (%zu "
                 "bytes), or no body of that size could be received",
                 prefix, sep, c->max_body);
        return false;
    }
    return true;
}

static bool load(config_t *c, const char *path, char *err, size_t errlen);

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

/* ------------------------------------------------------------------------- */
/* Reload                                                                    */

void config_reload_apply(config_t *running, config_t *fresh)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const config_option_t *opt = &options[i];
        if (opt->reloadable && config_value_owns_field(opt))
            config_value_swap(opt, running, fresh);
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
        if (opt->reloadable || !config_value_owns_field(opt) ||
            config_value_equal(opt, old_cfg, new_cfg))
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
