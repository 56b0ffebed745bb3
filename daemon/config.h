/*
 * Configuration: one INI file (parsed by libinih), then environment
 * overrides, then checks that span several keys. Every option is declared
 * once, in a table in config.c that carries its section, key, type, default,
 * environment variable, reload behaviour and a one-line description; the
 * loader, the reload check and the tests that hold the example config and
 * the README to account all read that table. Nothing here logs: problems come
 * back as one line, `FILE:LINE: [section] key: what is wrong`, and never
 * contain a secret.
 */
#ifndef WORKOS_SYNCD_CONFIG_H
#define WORKOS_SYNCD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "wur.h"

typedef struct config {
    char *path; /* file read, NULL if none */
    /* [workos] */
    char *api_key;              /* secret; NULL when not set */
    char *base_url;             /* no trailing slash */
    char **events;              /* expanded list of event type names */
    size_t n_events;            /* at least 1 */
    bool events_brackets;       /* true: send events[]=a&events[]=b; false: events=a,b */
    int64_t poll_interval_ms;   /* wait after an empty page */
    char *start_from;           /* "now" or an ISO 8601 time (validated) */
    int64_t request_timeout_ms; /* whole-request limit for API calls */
    int rate_limit;             /* requests per minute, 1..1000000 (WorkOS: 6000) */
    int fetch_windows;          /* backlog windows fetched at once, at most; 1: one chain */
    int fetch_ahead;            /* events fetched ahead of the apply by the windows, at most */
    int64_t retention_ms;       /* a cursor whose event is older is expired (WorkOS: 30 days) */
    /* [webhook] */
    char *listen;       /* "host:port", or "" for no webhook server */
    char *webhook_path; /* URL path webhooks are POSTed to */
    char **secrets;     /* secrets, several for rotation */
    size_t n_secrets;
    int64_t tolerance_ms;        /* accepted signature timestamp skew, either way */
    size_t max_body;             /* larger webhook bodies get 413 */
    int max_connections;         /* open webhook connections, at most */
    int64_t client_timeout_ms;   /* silent webhook connections are closed after this */
    size_t max_unverified_bytes; /* buffered across requests not yet verified; past it 503 */
    int64_t request_deadline_ms; /* a whole request (headers and body) must arrive within it */
    /* [database] */
    char *database_url;           /* "" = libpq defaults; may hold a password */
    char *schema;                 /* validated: ^[a-z_][a-z0-9_]{0,62}$, not pg_* */
    int64_t lock_timeout_ms;      /* lock_timeout for the daemon's own statements */
    int64_t statement_timeout_ms; /* statement_timeout for the daemon's own statements */
    /* [reconcile] */
    int64_t reconcile_interval_ms; /* between periodic reconciliations; 0 = off */
    int reconcile_rate_limit;      /* the reconciler's requests per minute, each limit */
    /* [audit] */
    int64_t audit_retention_ms;      /* audit rows older are removed; 0 = keep forever */
    int64_t audit_auth_retention_ms; /* the same for authentication rows; 0 = audit_retention_ms */
    int64_t audit_head_log_interval_ms; /* how often the chain head is logged; 0 = off */
    /* [log] */
    enum log_level log_level;
} config_t;

typedef enum config_type {
    CONFIG_TYPE_STRING,      /* text */
    CONFIG_TYPE_SECRET,      /* text that is never echoed */
    CONFIG_TYPE_SECRET_FILE, /* path of a file holding a secret, read into another key's field */
    CONFIG_TYPE_LIST,        /* comma-separated, may continue on indented lines */
    CONFIG_TYPE_SECRET_LIST, /* a list of secrets */
    CONFIG_TYPE_DURATION,    /* 250ms, 5s, 2m, 1h; stored as int64_t milliseconds */
    CONFIG_TYPE_SIZE,        /* 512, 64KiB, 1MiB; stored as size_t bytes */
    CONFIG_TYPE_INT,         /* decimal; stored as int */
    CONFIG_TYPE_ENUM,        /* one of two words; stored as bool (second word = true) */
    CONFIG_TYPE_LEVEL,       /* a log level name; stored as enum log_level */
} config_type_t;

typedef struct config_option config_option_t;

/* Hook that checks, and may normalise, a value once it has landed in *c. */
typedef bool (*config_check_fn)(config_t *c, const config_option_t *opt, char *err, size_t errlen);

struct config_option {
    const char *section;   /* "workos", "webhook", "database", "reconcile", "audit", "log" */
    const char *key;       /* name inside the section */
    config_type_t type;    /* how the text is parsed and stored */
    const char *def;       /* default, as it would be written in the file; NULL: unset */
    const char *env;       /* environment variable that overrides the file, or NULL */
    bool reloadable;       /* SIGHUP applies a change; otherwise it needs a restart */
    const char *doc;       /* one line for operators */
    size_t offset;         /* the field in config_t the value lands in */
    size_t count_offset;   /* lists: the size_t count beside the array; 0 otherwise */
    int64_t min, max;      /* numeric types: accepted range, inclusive */
    bool zero_off;         /* numeric types: 0 is accepted too, meaning off or unlimited */
    const char *words[2];  /* CONFIG_TYPE_ENUM: the false and the true spelling */
    const char *exclusive; /* key in the same section that must not also be set */
    config_check_fn check; /* extra validation after parsing, or NULL */
};

/*
 * Fills *c with the defaults (no path, no secrets). *c is overwritten, not
 * freed; the allocations belong to *c until config_free(). Aborts on
 * allocation failure, as it runs before there is anything to save.
 */
void config_defaults(config_t *c);

/*
 * Builds *c from the defaults, then the INI file at `path` (NULL: no file; a
 * missing file is an error), then environment overrides, then cross-key
 * checks. *c is overwritten, not freed, so it must not hold a live config.
 * Returns true on success; *c then owns its allocations. On failure returns
 * false, writes one line into err[errlen] -- `FILE:LINE: [section] key:
 * problem`, `env NAME: [section] key: problem` or `FILE: [section] key:
 * problem` -- and leaves *c zeroed. Secret values never appear in err.
 */
bool config_load(config_t *c, const char *path, char *err, size_t errlen) WUR;

/* Flags for config_load_opts(). */
#define CONFIG_SKIP_SECRET_FILES 1u /* leave *_file secrets unread (commands that need none) */

/*
 * config_load() with flags: CONFIG_SKIP_SECRET_FILES leaves api_key_file and
 * secret_file unread, for the commands that never use a secret.
 */
bool config_load_opts(config_t *c, const char *path, unsigned flags, char *err, size_t errlen) WUR;

/* Frees what *c owns, wiping secrets first, and zeroes *c. Accepts NULL. */
void config_free(config_t *c);

/* Returns the option table and stores its length in *n. */
const config_option_t *config_options(size_t *n);

/* Returns the option `key` of `section`, or NULL. */
const config_option_t *config_option_find(const char *section, const char *key);

/* Returns the type's name for documentation: "duration", "size", "secret", ... */
const char *config_type_name(config_type_t type);

/*
 * Parses a duration, a whole number followed by ms, s, m, h or d ("250ms",
 * "5s", "30d"), into milliseconds. Returns false for anything else, including a
 * missing unit, a sign, spaces and overflow.
 */
bool config_parse_duration(const char *s, int64_t *ms) WUR;

/*
 * Parses a size, a whole number optionally followed by B, KiB, MiB or GiB
 * ("512", "64KiB"), into bytes. Returns false for anything else or overflow.
 */
bool config_parse_size(const char *s, size_t *out) WUR;

/*
 * Writes into buf[len] the options a reload cannot apply whose values differ
 * between *old_cfg and *new_cfg, as "[section] key" joined by ", ", and
 * returns buf: "" when a reload can apply everything. Output that does not
 * fit ends in "...". Values are compared, never copied into buf.
 */
const char *config_reload_diff(const config_t *old_cfg, const config_t *new_cfg, char *buf,
                               size_t len);

/*
 * Applies a reload: every reloadable option of *fresh takes effect in
 * *running, and the values it replaces move to *fresh, which the caller
 * then frees with config_free.  Restart-only options keep their running
 * values (config_reload_diff names the ones that differ).
 */
void config_reload_apply(config_t *running, config_t *fresh);

#endif
