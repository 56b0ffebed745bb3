/*
 * Unit tests for daemon/config.c and its parts (config_value, config_check,
 * config_screen): value parsers, every key, environment overrides, *_file
 * secrets, error lines (file, line, key, and never a secret), event
 * wildcards, the reload diff, and the option table held against
 * config/workos-syncd.conf.example and README.md. Run from the repository
 * root.
 */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "runner.h"

/* Every type the spec lists for the default filter, in order. */
static const char *const default_events[] = {
    "user.created",
    "user.updated",
    "user.deleted",
    "organization_membership.created",
    "organization_membership.updated",
    "organization_membership.deleted",
    "invitation.created",
    "invitation.accepted",
    "invitation.revoked",
    "invitation.resent",
    "session.created",
    "session.revoked",
    "api_key.created",
    "api_key.revoked",
    "organization.created",
    "organization.updated",
    "organization.deleted",
    "authentication.email_verification_failed",
    "authentication.email_verification_succeeded",
    "authentication.magic_auth_failed",
    "authentication.magic_auth_succeeded",
    "authentication.mfa_failed",
    "authentication.mfa_succeeded",
    "authentication.oauth_failed",
    "authentication.oauth_succeeded",
    "authentication.passkey_failed",
    "authentication.passkey_succeeded",
    "authentication.password_failed",
    "authentication.password_succeeded",
    "authentication.radar_risk_detected",
    "authentication.sso_failed",
    "authentication.sso_succeeded",
    "email_verification.created",
    "magic_auth.created",
    "password_reset.created",
    "password_reset.succeeded",
};
#define N_DEFAULT_EVENTS (sizeof default_events / sizeof default_events[0])

#define EXAMPLE_PATH "config/workos-syncd.conf.example"
#define README_PATH "README.md"
#define DATA_DIR "tests/unit/data"
#define DAY_MS INT64_C(86400000)

static char tmpdir[PATH_MAX];
static char conf_path[PATH_MAX + 32];

/* ------------------------------------------------------------------------- */
/* Fixture                                                                   */

static void clear_env(void)
{
    size_t n;
    const config_option_t *opts = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        if (opts[i].env != NULL)
            unsetenv(opts[i].env);
    }
    unsetenv("CREDENTIALS_DIRECTORY");
}

static void setup(void)
{
    clear_env();
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_config.XXXXXX", base != NULL ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    clear_env();
}

/* Writes `text` to a file in the temp dir and returns its path. */
static const char *write_file(const char *name, const char *text)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static const char *write_conf(const char *text)
{
    snprintf(conf_path, sizeof conf_path, "%s", write_file("test.conf", text));
    return conf_path;
}

/* config_free() memsets the whole struct, so every byte must be zero. */
static bool is_zeroed(const config_t *c)
{
    const unsigned char *p = (const unsigned char *)c;
    for (size_t i = 0; i < sizeof *c; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void data_dir_abs(char *buf, size_t len, const char *sub)
{
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    int n = snprintf(buf, len, "%s/%s/%s", cwd, DATA_DIR, sub);
    ck_assert(n > 0 && (size_t)n < len);
}

/* ------------------------------------------------------------------------- */
/* Durations and sizes                                                       */

static const struct {
    const char *text;
    int64_t ms;
} durations_ok[] = {
    {"0ms", 0},
    {"250ms", 250},
    {"5s", 5000},
    {"2m", 120000},
    {"1h", 3600000},
    {"180s", 180000},
    {"007s", 7000},
    {"9223372036854775807ms", INT64_MAX},
    {"2562047788015h", INT64_C(2562047788015) * 3600000},
    {"1d", 86400000},
    {"30d", INT64_C(30) * 86400000},
    {"106751991167d", INT64_C(106751991167) * 86400000},
};

static const char *const durations_bad[] = {
    "",
    "5",
    "s",
    "ms",
    "5x",
    "5sec",
    "5S",
    "-1s",
    "+1s",
    "1.5s",
    " 5s",
    "5s ",
    "5 s",
    "1h30m",
    "9223372036854775808ms",
    "2562047788016h",
    "106751991168d",
    "1D",
    "1day",
    "1w",
    "99999999999999999999s",
    "0x10s",
};

START_TEST(duration_valid)
{
    int64_t ms = -1;
    ck_assert_msg(config_parse_duration(durations_ok[_i].text, &ms), "%s", durations_ok[_i].text);
    ck_assert_int_eq(ms, durations_ok[_i].ms);
}
END_TEST

START_TEST(duration_invalid)
{
    int64_t ms = 42;
    ck_assert_msg(!config_parse_duration(durations_bad[_i], &ms), "accepted \"%s\"",
                  durations_bad[_i]);
    ck_assert_int_eq(ms, 42);
}
END_TEST

static const struct {
    const char *text;
    size_t bytes;
} sizes_ok[] = {
    {"0", 0},
    {"512", 512},
    {"512B", 512},
    {"64KiB", 65536},
    {"1MiB", 1048576},
    {"3GiB", (size_t)3 << 30},
    {"18446744073709551615", SIZE_MAX},
};

static const char *const sizes_bad[] = {
    "",
    "KiB",
    "1K",
    "1KB",
    "1kib",
    "1MB",
    "1 MiB",
    "-1",
    "1.5MiB",
    "1TiB",
    "18446744073709551616",
    "17179869184GiB",
    " 1",
    "1 ",
};

START_TEST(size_valid)
{
    size_t v = 1;
    ck_assert_msg(config_parse_size(sizes_ok[_i].text, &v), "%s", sizes_ok[_i].text);
    ck_assert_uint_eq(v, sizes_ok[_i].bytes);
}
END_TEST

START_TEST(size_invalid)
{
    size_t v = 42;
    ck_assert_msg(!config_parse_size(sizes_bad[_i], &v), "accepted \"%s\"", sizes_bad[_i]);
    ck_assert_uint_eq(v, 42);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Defaults and every key                                                    */

static void assert_defaults(const config_t *c)
{
    ck_assert_ptr_null(c->api_key);
    ck_assert_str_eq(c->base_url, "https://api.workos.com");
    ck_assert_uint_eq(c->n_events, N_DEFAULT_EVENTS);
    for (size_t i = 0; i < N_DEFAULT_EVENTS; i++)
        ck_assert_str_eq(c->events[i], default_events[i]);
    ck_assert(!c->events_brackets);
    ck_assert_int_eq(c->poll_interval_ms, 5000);
    ck_assert_str_eq(c->start_from, "snapshot");
    ck_assert_int_eq(c->request_timeout_ms, 30000);
    ck_assert_int_eq(c->rate_limit, 5000);
    ck_assert_int_eq(c->fetch_windows, 16);
    ck_assert_int_eq(c->fetch_ahead, 32000);
    ck_assert_int_eq(c->reconcile_rate_limit, 5400);
    ck_assert_str_eq(c->listen, "");
    ck_assert_str_eq(c->webhook_path, "/webhooks/workos");
    ck_assert_uint_eq(c->n_secrets, 0);
    ck_assert_int_eq(c->tolerance_ms, 180000);
    ck_assert_uint_eq(c->max_body, 1048576);
    ck_assert_int_eq(c->max_connections, 1024);
    ck_assert_int_eq(c->client_timeout_ms, 10000);
    ck_assert_str_eq(c->database_url, "");
    ck_assert_str_eq(c->schema, "workos");
    ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
    ck_assert_int_eq(c->retention_ms, 30 * DAY_MS);
    ck_assert_uint_eq(c->max_unverified_bytes, 0u);
    ck_assert_int_eq(c->request_deadline_ms, 10000);
    ck_assert_int_eq(c->lock_timeout_ms, 5000);
    ck_assert_int_eq(c->statement_timeout_ms, 30000);
    ck_assert_int_eq(c->reconcile_interval_ms, 24 * 3600000);
    ck_assert_int_eq(c->audit_retention_ms, 0);
    ck_assert_int_eq(c->audit_auth_retention_ms, 0);
    ck_assert_int_eq(c->audit_head_log_interval_ms, 3600000);
}

START_TEST(defaults)
{
    config_t c;
    config_defaults(&c);
    ck_assert_ptr_null(c.path);
    assert_defaults(&c);
    config_free(&c);
    ck_assert(is_zeroed(&c));
    config_free(NULL);
}
END_TEST

START_TEST(load_without_file)
{
    config_t c;
    char err[256] = "untouched";
    ck_assert(config_load(&c, NULL, err, sizeof err));
    ck_assert_ptr_null(c.path);
    assert_defaults(&c);
    config_free(&c);
}
END_TEST

START_TEST(every_key_direct)
{
    config_t c;
    char err[512];
    ck_assert_msg(config_load(&c, DATA_DIR "/full.conf", err, sizeof err), "%s", err);
    ck_assert_str_eq(c.path, DATA_DIR "/full.conf");
    ck_assert_str_eq(c.api_key, "sk_test_full");
    ck_assert_str_eq(c.base_url, "http://127.0.0.1:9/prefix");
    ck_assert_uint_eq(c.n_events, 3);
    ck_assert_str_eq(c.events[0], "user.created");
    ck_assert_str_eq(c.events[1], "session.created");
    ck_assert_str_eq(c.events[2], "session.revoked");
    ck_assert(c.events_brackets);
    ck_assert_int_eq(c.poll_interval_ms, 250);
    ck_assert_str_eq(c.start_from, "2026-01-31T12:30:00.123+01:00");
    ck_assert_int_eq(c.request_timeout_ms, 120000);
    ck_assert_int_eq(c.rate_limit, 600);
    ck_assert_int_eq(c.fetch_windows, 4);
    ck_assert_int_eq(c.fetch_ahead, 2500);
    ck_assert_str_eq(c.listen, "[::1]:0");
    ck_assert_str_eq(c.webhook_path, "/hooks/in");
    ck_assert_uint_eq(c.n_secrets, 2);
    ck_assert_str_eq(c.secrets[0], "whsec_one");
    ck_assert_str_eq(c.secrets[1], "whsec_two");
    ck_assert_int_eq(c.tolerance_ms, 3600000);
    ck_assert_uint_eq(c.max_body, 65536);
    ck_assert_int_eq(c.max_connections, 77);
    ck_assert_int_eq(c.client_timeout_ms, 3000);
    ck_assert_str_eq(c.database_url, "postgresql://syncd@localhost/mirror");
    ck_assert_str_eq(c.schema, "mirror_1");
    ck_assert_int_eq(c.log_level, LOG_LEVEL_DEBUG);
    ck_assert_int_eq(c.retention_ms, 29 * DAY_MS);
    ck_assert_uint_eq(c.max_unverified_bytes, 4u << 20);
    ck_assert_int_eq(c.request_deadline_ms, 20000);
    ck_assert_int_eq(c.lock_timeout_ms, 250);
    ck_assert_int_eq(c.statement_timeout_ms, 120000);
    ck_assert_int_eq(c.reconcile_interval_ms, 0);
    ck_assert_int_eq(c.audit_retention_ms, 365 * DAY_MS);
    ck_assert_int_eq(c.audit_auth_retention_ms, 90 * DAY_MS);
    ck_assert_int_eq(c.audit_head_log_interval_ms, 15 * 60000);
    config_free(&c);
}
END_TEST

/*
 * The bounds of the keys that later features read: each accepted value
 * lands in its field, read back through the table's offset and type.
 */
static const struct {
    const char *section, *key, *value;
    int64_t want; /* milliseconds or bytes */
} bound_ok[] = {
    {"workos", "retention", "30d", 30 * DAY_MS},
    {"workos", "retention", "1m", 60000},
    {"workos", "retention", "90d", 90 * DAY_MS},
    {"workos", "retention", "2160h", 90 * DAY_MS},
    {"webhook", "max_unverified_bytes", "0", 0},
    {"webhook", "max_unverified_bytes", "16MiB", INT64_C(16) << 20},
    {"webhook", "max_unverified_bytes", "1MiB", INT64_C(1) << 20}, /* = the default max_body */
    {"webhook", "max_unverified_bytes", "1GiB", INT64_C(1) << 30},
    {"webhook", "request_deadline", "1s", 1000},
    {"webhook", "request_deadline", "1h", 3600000},
    {"database", "lock_timeout", "10ms", 10},
    {"database", "lock_timeout", "1h", 3600000},
    {"database", "statement_timeout", "100ms", 100},
    {"database", "statement_timeout", "24h", 24 * INT64_C(3600000)},
    {"reconcile", "interval", "0", 0},
    {"reconcile", "interval", "0ms", 0},
    {"reconcile", "interval", "0d", 0},
    {"reconcile", "interval", "1s", 1000},
    {"reconcile", "interval", "365d", 365 * DAY_MS},
    {"audit", "retention", "0", 0},
    {"audit", "retention", "1m", 60000},
    {"audit", "retention", "3650d", 3650 * DAY_MS},
    {"audit", "auth_retention", "0", 0},
    {"audit", "auth_retention", "7d", 7 * DAY_MS},
    {"audit", "head_log_interval", "0", 0},
    {"audit", "head_log_interval", "1s", 1000},
    {"audit", "head_log_interval", "24h", 24 * INT64_C(3600000)},
};

START_TEST(bounds_accepted)
{
    const config_option_t *o = config_option_find(bound_ok[_i].section, bound_ok[_i].key);
    ck_assert_ptr_nonnull(o);
    char text[256];
    snprintf(text, sizeof text, "[%s]\n%s = %s\n", o->section, o->key, bound_ok[_i].value);
    config_t c;
    char err[512];
    ck_assert_msg(config_load(&c, write_conf(text), err, sizeof err), "%s", err);
    const char *field = (const char *)&c + o->offset;
    int64_t got =
        o->type == CONFIG_TYPE_SIZE ? (int64_t) * (const size_t *)field : *(const int64_t *)field;
    ck_assert_msg(got == bound_ok[_i].want, "[%s] %s = %s: got %lld", o->section, o->key,
                  bound_ok[_i].value, (long long)got);
    config_free(&c);
}
END_TEST

START_TEST(every_key_files)
{
    char creds[PATH_MAX];
    data_dir_abs(creds, sizeof creds, "credentials");
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    config_t c;
    char err[512];
    ck_assert_msg(config_load(&c, DATA_DIR "/full-files.conf", err, sizeof err), "%s", err);
    ck_assert_str_eq(c.api_key, "sk_test_from_file");
    ck_assert_str_eq(c.listen, "127.0.0.1:8089");
    ck_assert_uint_eq(c.n_secrets, 2);
    ck_assert_str_eq(c.secrets[0], "whsec_aaa");
    ck_assert_str_eq(c.secrets[1], "whsec_bbb");
    config_free(&c);
}
END_TEST

/* The two fixtures above must between them set every key in the table. */
START_TEST(fixtures_cover_every_key)
{
    char *direct = slurp(DATA_DIR "/full.conf");
    char *files = slurp(DATA_DIR "/full-files.conf");
    ck_assert_ptr_nonnull(direct);
    ck_assert_ptr_nonnull(files);
    size_t n;
    const config_option_t *opts = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "\n%s = ", opts[i].key);
        ck_assert_msg(strstr(direct, needle) != NULL || strstr(files, needle) != NULL,
                      "[%s] %s is in neither fixture", opts[i].section, opts[i].key);
    }
    free(direct);
    free(files);
}
END_TEST

/* Writing each default explicitly must load and change nothing. */
START_TEST(defaults_written_out_load)
{
    size_t n;
    const config_option_t *opts = config_options(&n);
    const config_option_t *o = &opts[_i];
    if (o->def == NULL)
        return;
    char text[512];
    snprintf(text, sizeof text, "[%s]\n%s = %s\n", o->section, o->key, o->def);
    config_t def, c;
    char err[512];
    config_defaults(&def);
    ck_assert_msg(config_load(&c, write_conf(text), err, sizeof err), "%s", err);
    char diff[256];
    ck_assert_str_eq(config_reload_diff(&def, &c, diff, sizeof diff), "");
    assert_defaults(&c);
    config_free(&c);
    config_free(&def);
}
END_TEST

START_TEST(option_table_sane)
{
    size_t n;
    const config_option_t *opts = config_options(&n);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        const config_option_t *o = &opts[i];
        ck_assert(o->section != NULL && *o->section != '\0');
        ck_assert(o->key != NULL && *o->key != '\0');
        ck_assert_msg(o->doc != NULL && *o->doc != '\0' && strchr(o->doc, '\n') == NULL,
                      "%s: doc must be one line", o->key);
        ck_assert_ptr_eq(config_option_find(o->section, o->key), o);
        ck_assert_str_ne(config_type_name(o->type), "unknown");
        for (size_t j = 0; j < i; j++) {
            ck_assert_msg(strcmp(opts[j].section, o->section) != 0 ||
                              strcmp(opts[j].key, o->key) != 0,
                          "duplicate %s", o->key);
            if (o->env != NULL && opts[j].env != NULL)
                ck_assert_str_ne(o->env, opts[j].env);
        }
        if (o->exclusive != NULL) {
            const config_option_t *other = config_option_find(o->section, o->exclusive);
            ck_assert_ptr_nonnull(other);
            ck_assert_str_eq(other->exclusive, o->key);
            ck_assert_int_eq(other->reloadable, o->reloadable);
            ck_assert_uint_eq(other->offset, o->offset);
        }
        if (o->type == CONFIG_TYPE_SECRET_FILE) {
            ck_assert_ptr_nonnull(o->exclusive);
            ck_assert_ptr_null(o->env);
        }
    }
    ck_assert_ptr_null(config_option_find("workos", "nope"));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Environment                                                               */

static void render(const config_t *c, const char *key, char *buf, size_t len)
{
    if (strcmp(key, "api_key") == 0)
        snprintf(buf, len, "%s", c->api_key != NULL ? c->api_key : "(null)");
    else if (strcmp(key, "base_url") == 0)
        snprintf(buf, len, "%s", c->base_url);
    else if (strcmp(key, "listen") == 0)
        snprintf(buf, len, "%s", c->listen);
    else if (strcmp(key, "url") == 0)
        snprintf(buf, len, "%s", c->database_url);
    else if (strcmp(key, "level") == 0)
        snprintf(buf, len, "%s", log_level_name(c->log_level));
    else if (strcmp(key, "secret") == 0) {
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < c->n_secrets; i++)
            o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "|" : "", c->secrets[i]);
    } else
        ck_abort_msg("no renderer for %s", key);
}

static const struct {
    const char *env;
    const char *section, *key;
    const char *file_value, *env_value, *expect;
} env_cases[] = {
    {"WORKOS_API_KEY", "workos", "api_key", "sk_file", "sk_env", "sk_env"},
    {"WORKOS_BASE_URL", "workos", "base_url", "http://file.test", "https://env.test/",
     "https://env.test"},
    {"WORKOS_SYNCD_LISTEN", "webhook", "listen", "127.0.0.1:1", "0.0.0.0:2", "0.0.0.0:2"},
    {"WORKOS_WEBHOOK_SECRET", "webhook", "secret", "whsec_file", "whsec_e1, whsec_e2",
     "whsec_e1|whsec_e2"},
    {"DATABASE_URL", "database", "url", "dbname=file", "postgresql:///env", "postgresql:///env"},
    {"WORKOS_SYNCD_LOG_LEVEL", "log", "level", "warn", "DEBUG", "debug"},
};

START_TEST(env_beats_file)
{
    char text[512];
    char got[256];
    /* The webhook section always gets a secret so a listen value is valid. */
    snprintf(text, sizeof text, "[%s]\n%s = %s\n%s", env_cases[_i].section, env_cases[_i].key,
             env_cases[_i].file_value,
             strcmp(env_cases[_i].key, "secret") == 0 ? "" : "[webhook]\nsecret = whsec_x\n");
    const char *path = write_conf(text);
    config_t c;
    char err[512];

    ck_assert_msg(config_load(&c, path, err, sizeof err), "%s", err);
    render(&c, env_cases[_i].key, got, sizeof got);
    ck_assert_str_eq(got, strcmp(env_cases[_i].key, "base_url") == 0 ? "http://file.test"
                          : strcmp(env_cases[_i].key, "secret") == 0 ? "whsec_file"
                                                                     : env_cases[_i].file_value);
    config_free(&c);

    /* An empty variable counts as unset. */
    setenv(env_cases[_i].env, "", 1);
    ck_assert_msg(config_load(&c, path, err, sizeof err), "%s", err);
    render(&c, env_cases[_i].key, got, sizeof got);
    ck_assert_str_ne(got, env_cases[_i].expect);
    config_free(&c);

    setenv(env_cases[_i].env, env_cases[_i].env_value, 1);
    ck_assert_msg(config_load(&c, path, err, sizeof err), "%s", err);
    render(&c, env_cases[_i].key, got, sizeof got);
    ck_assert_str_eq(got, env_cases[_i].expect);
    config_free(&c);

    /* And without a file at all. */
    ck_assert_msg(config_load(&c, NULL, err, sizeof err) ||
                      strstr(err, "required when [webhook] listen") != NULL,
                  "%s", err);
    config_free(&c);
}
END_TEST

START_TEST(env_error_names_variable)
{
    setenv("WORKOS_BASE_URL", "ftp://example.test", 1);
    config_t c;
    char err[512];
    ck_assert(!config_load(&c, NULL, err, sizeof err));
    ck_assert_str_eq(err, "env WORKOS_BASE_URL: [workos] base_url: \"ftp://example.test\" must "
                          "start with http:// or https://");
    ck_assert(is_zeroed(&c));
    unsetenv("WORKOS_BASE_URL");

    setenv("WORKOS_SYNCD_LOG_LEVEL", "loud\nlevel=error", 1);
    ck_assert(!config_load(&c, NULL, err, sizeof err));
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_msg(strncmp(err, "env WORKOS_SYNCD_LOG_LEVEL: [log] level: ", 41) == 0, "%s", err);
}
END_TEST

START_TEST(env_overrides_secret_file)
{
    char creds[PATH_MAX];
    data_dir_abs(creds, sizeof creds, "credentials");
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    setenv("WORKOS_API_KEY", "sk_env_wins", 1);
    config_t c;
    char err[512];
    ck_assert_msg(
        config_load(&c, write_conf("[workos]\napi_key_file = api_key\n"), err, sizeof err), "%s",
        err);
    ck_assert_str_eq(c.api_key, "sk_env_wins");
    config_free(&c);
}
END_TEST

/* The environment's secret is used without even opening the file. */
START_TEST(env_secret_skips_missing_file)
{
    setenv("WORKOS_API_KEY", "sk_env_wins", 1);
    config_t c;
    char err[512];
    ck_assert_msg(config_load(&c, write_conf("[workos]\napi_key_file = /nonexistent/api-key\n"),
                              err, sizeof err),
                  "%s", err);
    ck_assert_str_eq(c.api_key, "sk_env_wins");
    config_free(&c);
}
END_TEST

/* status and migrate load the service's config without its credentials. */
START_TEST(skip_secret_files)
{
    const char *conf = write_conf("[workos]\napi_key_file = /nonexistent/api-key\n"
                                  "[webhook]\nlisten = 127.0.0.1:0\n"
                                  "secret_file = /nonexistent/secret\n"
                                  "[database]\nschema = idp\n");
    config_t c;
    char err[512];
    ck_assert(!config_load(&c, conf, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "api_key_file"));
    ck_assert_msg(config_load_opts(&c, conf, CONFIG_SKIP_SECRET_FILES, err, sizeof err), "%s", err);
    ck_assert_ptr_null(c.api_key);
    ck_assert_uint_eq(c.n_secrets, 0);
    ck_assert_str_eq(c.schema, "idp");
    config_free(&c);
    /* The flag lasts for one call only. */
    ck_assert(!config_load(&c, conf, err, sizeof err));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* *_file keys                                                               */

START_TEST(secret_file_paths)
{
    config_t c;
    char err[512];
    char abs[PATH_MAX], text[PATH_MAX + 64];

    /* Absolute path: $CREDENTIALS_DIRECTORY does not matter. */
    setenv("CREDENTIALS_DIRECTORY", "/nonexistent", 1);
    data_dir_abs(abs, sizeof abs, "credentials/api_key");
    snprintf(text, sizeof text, "[workos]\napi_key_file = %s\n", abs);
    ck_assert_msg(config_load(&c, write_conf(text), err, sizeof err), "%s", err);
    ck_assert_str_eq(c.api_key, "sk_test_from_file");
    config_free(&c);

    /* Relative without $CREDENTIALS_DIRECTORY: the working directory. */
    unsetenv("CREDENTIALS_DIRECTORY");
    ck_assert_msg(
        config_load(&c, write_conf("[workos]\napi_key_file = " DATA_DIR "/credentials/api_key\n"),
                    err, sizeof err),
        "%s", err);
    ck_assert_str_eq(c.api_key, "sk_test_from_file");
    config_free(&c);

    /* Relative with it: looked up there, as systemd LoadCredential= expects. */
    setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
    write_file("workos-api-key", "sk_from_credentials_dir\n\n");
    ck_assert_msg(
        config_load(&c, write_conf("[workos]\napi_key_file = workos-api-key\n"), err, sizeof err),
        "%s", err);
    ck_assert_str_eq(c.api_key, "sk_from_credentials_dir");
    config_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Errors: FILE:LINE: [section] key: problem                                 */

static const struct {
    const char *text;
    int line;          /* 0: a cross-key error, `FILE: ...` */
    const char *start; /* what follows "FILE:LINE: " */
    const char *has;   /* and somewhere after it */
} error_cases[] = {
    {"[workos]\npoll_interval = 5x\n", 2, "[workos] poll_interval: ", "\"5x\" is not a duration"},
    {"[workos]\npoll_interval = 5ms\n", 2, "[workos] poll_interval: ", "between 10ms and 24h"},
    {"[workos]\nrate_limit = 0\n", 2,
     "[workos] rate_limit: ", "\"0\" must be between 1 and 1000000"},
    {"[workos]\nrate_limit = 1000001\n", 2, "[workos] rate_limit: ", "between 1 and 1000000"},
    {"[workos]\nrate_limit = lots\n", 2, "[workos] rate_limit: ", "not a whole number"},
    {"[workos]\nfetch_windows = 0\n", 2, "[workos] fetch_windows: ", "between 1 and 64"},
    {"[workos]\nfetch_ahead = 99\n", 2, "[workos] fetch_ahead: ", "between 100 and 1000000"},
    {"[reconcile]\nrate_limit = 0\n", 2, "[reconcile] rate_limit: ", "between 1 and 1000000"},
    {"[reconcile]\nrate_limit = 90/s\n", 2, "[reconcile] rate_limit: ", "not a whole number"},
    {"[workos]\n\napikey = x\n", 3, "[workos] apikey: ", "unknown key (did you mean api_key?)"},
    {"[workos]\nlisten = 127.0.0.1:80\n", 2, "[workos] listen: ", "(it belongs in [webhook])"},
    {"[workos]\n[wokros]\nkey = 1\n", 2, "[wokros]: ", "unknown section"},
    {"[log]\n[database]\n[nope]\n", 3, "[nope]: ", "unknown section"},
    {"\xEF\xBB\xBF[nope]\n", 1, "[nope]: ", "unknown section"},
    {"level = debug\n", 1, "level: ", "set before the first [section]"},
    {"[workos]\nthis is not valid\n", 2, "not a `key = value`", ""},
    {"[workos\nbase_url = http://x\n", 1, "not a `key = value`", ""},
    {"[log]\nlevel = info\n\nlevel = debug\n", 4, "[log] level: ", "set twice (first on line 2)"},
    {"[workos]\napi_key = sk_a\napi_key_file = /dev/null\n", 3, "[workos] api_key_file: ",
     "set either api_key_file or api_key, not both (api_key is on line 2)"},
    {"[webhook]\nsecret_file = " DATA_DIR "/credentials/whsec_a\nsecret = x\n", 3,
     "[webhook] secret: ", "not both (secret_file is on line 2)"},
    {"[workos]\nbase_url = ftp://x\n", 2, "[workos] base_url: ", "must start with http://"},
    {"[workos]\nbase_url = https://\n", 2, "[workos] base_url: ", "has no host"},
    {"[workos]\nbase_url = https://a.test/?x=1\n", 2, "[workos] base_url: ", "without blanks"},
    {"[workos]\nevents = foo.*\n", 2, "[workos] events: ", "\"foo.*\" matches no known event type"},
    {"[workos]\nevents = User.Created\n", 2, "[workos] events: ", "is not an event type"},
    {"[workos]\nevents = user.created&x=1\n", 2, "[workos] events: ", "is not an event type"},
    {"[workos]\nevents = user.*d\n", 2, "[workos] events: ", "a wildcard must"},
    {"[workos]\nevents = *.created\n", 2, "[workos] events: ", "a wildcard must"},
    {"[workos]\nevents = user*\n", 2, "[workos] events: ", "a wildcard must"},
    {"[workos]\nevents =\n", 2, "[workos] events: ", "lists no event types"},
    {"[workos]\nevents = , ,\n", 2, "[workos] events: ", "lists no event types"},
    {"[workos]\nevents_param = events[ ]\n", 2,
     "[workos] events_param: ", "must be events or events[]"},
    {"[workos]\nstart_from = yesterday\n", 2, "[workos] start_from: ", "ISO 8601"},
    {"[workos]\nstart_from = 2026-02-30T00:00:00Z\n", 2, "[workos] start_from: ", "ISO 8601"},
    {"[workos]\nstart_from = 2026-01-01\n", 2, "[workos] start_from: ", "ISO 8601"},
    {"[workos]\nstart_from = 2026-01-01T00:00:00\n", 2, "[workos] start_from: ", "ISO 8601"},
    {"[workos]\nstart_from = 2026-01-01T24:00:00Z\n", 2, "[workos] start_from: ", "ISO 8601"},
    {"[workos]\nstart_from = 2026-01-01T00:00:00+16:00\n", 2, "[workos] start_from: ", "ISO 8601"},
    {"[workos]\nrequest_timeout = 61m\n", 2, "[workos] request_timeout: ", "between 100ms and 1h"},
    {"[webhook]\nsecret = s\nlisten = localhost\n", 3, "[webhook] listen: ", "must be host:port"},
    {"[webhook]\nsecret = s\nlisten = ::1:80\n", 3, "[webhook] listen: ", "in brackets"},
    {"[webhook]\nsecret = s\nlisten = 10.0.0.1:70000\n", 3, "[webhook] listen: ", "host:port"},
    {"[webhook]\nsecret = s\nlisten = :80\n", 3, "[webhook] listen: ", "host:port"},
    {"[webhook]\npath = webhooks\n", 2, "[webhook] path: ", "starting with /"},
    {"[webhook]\npath = /a?b\n", 2, "[webhook] path: ", "without query"},
    {"[webhook]\ntolerance = 500ms\n", 2, "[webhook] tolerance: ", "between 1s and 24h"},
    {"[webhook]\nmax_body = 1MB\n", 2, "[webhook] max_body: ", "\"1MB\" is not a size"},
    {"[webhook]\nmax_body = 512\n", 2, "[webhook] max_body: ", "between 1KiB and 64MiB"},
    {"[webhook]\nmax_body = 65MiB\n", 2, "[webhook] max_body: ", "between 1KiB and 64MiB"},
    {"[webhook]\nsecret_file = /nonexistent/s\n", 2,
     "[webhook] secret_file: ", "cannot open /nonexistent/s: No such file or directory"},
    {"[webhook]\nsecret_file = " DATA_DIR "/credentials/empty\n", 2,
     "[webhook] secret_file: ", "is empty"},
    {"[database]\nschema = Workos\n", 2, "[database] schema: ", "must be 1 to 63"},
    {"[log]\nlevel = verbose\n", 2, "[log] level: ", "must be error, warn, info or debug"},
    {"[workos]\nbase_url = http://a\n  /b\n", 3, "[workos] base_url: ", "only lists may continue"},
    {"[workos]\nrate_limit = 5\n  poll_interval = 5s\n", 3, "indented `poll_interval =`", ""},
    {"[workos]\nevents = user.*\n  [webhook]\n", 3, "a [section] line must not be indented", ""},
    {"[webhook]\nlisten = 127.0.0.1:8089\n", 0,
     "[webhook] secret: ", "required when [webhook] listen"},
    {"[workos]\nretention = 59s\n", 2,
     "[workos] retention: ", "\"59s\" must be between 1m and 87600h"},
    {"[workos]\nretention = 3651d\n", 2, "[workos] retention: ", "between 1m and 87600h"},
    {"[workos]\nretention = 0\n", 2, "[workos] retention: ", "\"0\" is not a duration"},
    {"[workos]\nretention = 30 d\n", 2, "[workos] retention: ", "is not a duration"},
    {"[webhook]\nmax_unverified_bytes = 1023\n", 2,
     "[webhook] max_unverified_bytes: ", "between 1KiB and 1GiB"},
    {"[webhook]\nmax_unverified_bytes = 2GiB\n", 2,
     "[webhook] max_unverified_bytes: ", "between 1KiB and 1GiB"},
    {"[webhook]\nmax_unverified_bytes = 16MB\n", 2,
     "[webhook] max_unverified_bytes: ", "\"16MB\" is not a size"},
    {"[webhook]\nmax_unverified_bytes = 512\n", 2,
     "[webhook] max_unverified_bytes: ", "0 or between 1KiB and 1GiB"},
    {"[webhook]\nmax_body = 2MiB\nmax_unverified_bytes = 1MiB\n", 0,
     "[webhook] max_unverified_bytes: ", "must be at least [webhook] max_body (2097152 bytes)"},
    {"[webhook]\nmax_body = 32MiB\nmax_unverified_bytes = 16MiB\n", 0,
     "[webhook] max_unverified_bytes: ", "must be at least [webhook] max_body"},
    {"[webhook]\nrequest_deadline = 999ms\n", 2,
     "[webhook] request_deadline: ", "between 1s and 1h"},
    {"[webhook]\nrequest_deadline = 0\n", 2, "[webhook] request_deadline: ", "is not a duration"},
    {"[database]\nlock_timeout = 9ms\n", 2, "[database] lock_timeout: ", "between 10ms and 1h"},
    {"[database]\nlock_timeout = 61m\n", 2, "[database] lock_timeout: ", "between 10ms and 1h"},
    {"[database]\nstatement_timeout = 99ms\n", 2,
     "[database] statement_timeout: ", "between 100ms and 24h"},
    {"[database]\nstatement_timeout = 2d\n", 2,
     "[database] statement_timeout: ", "between 100ms and 24h"},
    {"[reconcile]\ninterval = 999ms\n", 2,
     "[reconcile] interval: ", "\"999ms\" must be 0 or between 1s and 8760h"},
    {"[reconcile]\ninterval = 366d\n", 2, "[reconcile] interval: ", "0 or between 1s and 8760h"},
    {"[reconcile]\ninterval = 00\n", 2, "[reconcile] interval: ", "\"00\" is not a duration"},
    {"[reconcile]\ninterval = off\n", 2, "[reconcile] interval: ", "is not a duration"},
    {"[reconcile]\ninterval = -1s\n", 2, "[reconcile] interval: ", "is not a duration"},
    {"[reconcile]\nintervall = 1h\n", 2, "[reconcile] intervall: ", "(did you mean interval?)"},
    {"[audit]\ninterval = 1h\n", 2, "[audit] interval: ", "(it belongs in [reconcile])"},
    {"[audit]\nretention = 59s\n", 2, "[audit] retention: ", "must be 0 or between 1m and 87600h"},
    {"[audit]\nretention = 3651d\n", 2, "[audit] retention: ", "0 or between 1m and 87600h"},
    {"[audit]\nauth_retention = 1s\n", 2, "[audit] auth_retention: ", "0 or between 1m and 87600h"},
    {"[audit]\nauth_retention = forever\n", 2, "[audit] auth_retention: ", "is not a duration"},
    {"[audit]\nhead_log_interval = 25h\n", 2,
     "[audit] head_log_interval: ", "0 or between 1s and 24h"},
    {"[audit]\nhead_log_interval = 500ms\n", 2,
     "[audit] head_log_interval: ", "0 or between 1s and 24h"},
    {"[audit]\nretention = 0\nretention = 1d\n", 3,
     "[audit] retention: ", "set twice (first on line 2)"},
};

START_TEST(error_lines)
{
    const char *path = write_conf(error_cases[_i].text);
    config_t c;
    char err[512];
    memset(&c, 0x5a, sizeof c);
    ck_assert_msg(!config_load(&c, path, err, sizeof err), "case %d loaded", _i);

    char want[PATH_MAX + 128];
    if (error_cases[_i].line > 0)
        snprintf(want, sizeof want, "%s:%d: %s", path, error_cases[_i].line, error_cases[_i].start);
    else
        snprintf(want, sizeof want, "%s: %s", path, error_cases[_i].start);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "case %d: got  \"%s\"\nwant prefix \"%s\"",
                  _i, err, want);
    ck_assert_msg(strstr(err + strlen(want), error_cases[_i].has) != NULL,
                  "case %d: \"%s\" lacks \"%s\"", _i, err, error_cases[_i].has);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_msg(is_zeroed(&c), "case %d: config not cleaned", _i);
}
END_TEST

START_TEST(missing_file_is_named)
{
    config_t c;
    char err[512];
    ck_assert(!config_load(&c, "/nonexistent/workos-syncd.conf", err, sizeof err));
    ck_assert_str_eq(err, "/nonexistent/workos-syncd.conf: cannot open: No such file or directory");
    ck_assert(is_zeroed(&c));
}
END_TEST

START_TEST(long_lines)
{
    char text[1024];
    char value[400];
    memset(value, 'x', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    config_t c;
    char err[512];

    /* A long comment is harmless; a long value line is refused, not split. */
    snprintf(text, sizeof text, "[log]\n# %s\nlevel = debug\n", value);
    ck_assert_msg(config_load(&c, write_conf(text), err, sizeof err), "%s", err);
    ck_assert_int_eq(c.log_level, LOG_LEVEL_DEBUG);
    config_free(&c);

    snprintf(text, sizeof text, "[workos]\nstart_from = now\nbase_url = http://%s\n", value);
    const char *path = write_conf(text);
    ck_assert(!config_load(&c, path, err, sizeof err));
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:3: line is longer than ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);

    /* Lists continue on indented lines instead. */
    ck_assert_msg(config_load(&c,
                              write_conf("[workos]\nevents = user.*,\n"
                                         "    # a comment between\n"
                                         "    session.created, \n"
                                         "\tsession.revoked, user.created\n"),
                              err, sizeof err),
                  "%s", err);
    ck_assert_uint_eq(c.n_events, 5);
    ck_assert_str_eq(c.events[3], "session.created");
    ck_assert_str_eq(c.events[4], "session.revoked");
    config_free(&c);
}
END_TEST

START_TEST(small_error_buffer)
{
    config_t c;
    char err[16];
    ck_assert(!config_load(&c, write_conf("[workos]\nrate_limit = 0\n"), err, sizeof err));
    ck_assert_uint_lt(strlen(err), sizeof err);
    ck_assert(!config_load(&c, write_conf("[workos]\nrate_limit = 0\n"), NULL, 0));
}
END_TEST

START_TEST(quoted_values)
{
    config_t c;
    char err[512];
    ck_assert_msg(config_load(&c,
                              write_conf("\xEF\xBB\xBF[workos]\nbase_url = \"https://q.test/\"\n"
                                         "events = \"user.*, session.created\"\n"
                                         "[log]\nlevel = \"debug\" ; comment\n"),
                              err, sizeof err),
                  "%s", err);
    ck_assert_str_eq(c.base_url, "https://q.test");
    ck_assert_uint_eq(c.n_events, 4);
    ck_assert_int_eq(c.log_level, LOG_LEVEL_DEBUG);
    config_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Secrets never leak                                                        */

#define SENTINEL "SENTINEL"

static const struct {
    const char *file; /* written to test.conf */
    const char *env, *env_value;
} secret_cases[] = {
    {"[workos]\napi_key = sk_" SENTINEL "\napi_key_file = /nonexistent\n", NULL, NULL},
    {"[workos]\napi_key_file = /nonexistent\napi_key = sk_" SENTINEL "\n", NULL, NULL},
    {"[workos]\napi_key = sk_" SENTINEL " with blanks\n", NULL, NULL},
    {"[workos]\napi_key = sk_" SENTINEL "\napi_key = sk_" SENTINEL "2\n", NULL, NULL},
    {"[workos]\napikey = sk_" SENTINEL "\n", NULL, NULL},
    {"[workos]\nsk_" SENTINEL "\n", NULL, NULL},
    {"[workos]\napi_key = sk_" SENTINEL "\n  more_" SENTINEL "\n", NULL, NULL},
    {"[webhook]\nsecret = whsec_" SENTINEL ", also\x7f" SENTINEL "\n", NULL, NULL},
    {"[webhook]\nsecret_file = " DATA_DIR "/credentials/two_lines\n", NULL, NULL},
    {"[database]\nurl = postgresql://u:" SENTINEL "@h/db\nurl = x\n", NULL, NULL},
    {"[database]\nurl = postgresql://u:" SENTINEL
     "@h/db?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     NULL, NULL},
    {"[log]\nlevel = info\n", "WORKOS_API_KEY", "sk_" SENTINEL " x"},
    {"[log]\nlevel = info\n", "WORKOS_WEBHOOK_SECRET", "whsec_\n" SENTINEL},
    {"[log]\nlevel = loud\n", "WORKOS_API_KEY", "sk_" SENTINEL},
    {"[workos]\nbase_url = nope\n", "DATABASE_URL", "postgresql://u:" SENTINEL "@h/db"},
};

START_TEST(secrets_never_in_errors)
{
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *logs = open_memstream(&logbuf, &loglen);
    ck_assert_ptr_nonnull(logs);
    log_init(logs);
    log_set_level(LOG_LEVEL_DEBUG);

    if (secret_cases[_i].env != NULL)
        setenv(secret_cases[_i].env, secret_cases[_i].env_value, 1);
    config_t c;
    char err[1024];
    ck_assert_msg(!config_load(&c, write_conf(secret_cases[_i].file), err, sizeof err),
                  "case %d loaded", _i);
    ck_assert_msg(strstr(err, SENTINEL) == NULL, "case %d leaks: %s", _i, err);
    ck_assert_uint_gt(strlen(err), 10);

    fflush(logs);
    ck_assert_msg(logbuf == NULL || strstr(logbuf, SENTINEL) == NULL, "case %d logged it", _i);
    log_init(stderr);
    fclose(logs);
    free(logbuf);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Event wildcards                                                           */

static const struct {
    const char *value;
    size_t count;
    const char *first, *last;
} wildcard_cases[] = {
    {"authentication.*", 15, "authentication.email_verification_failed",
     "authentication.sso_succeeded"},
    {"user.*, user.created", 3, "user.created", "user.deleted"},
    {"user.created, user.*", 3, "user.created", "user.deleted"},
    {"organization.*", 3, "organization.created", "organization.deleted"},
    {"organization_membership.*", 3, "organization_membership.created",
     "organization_membership.deleted"},
    {"*", N_DEFAULT_EVENTS, "user.created", "password_reset.succeeded"},
    {"user.created, custom.future_type", 2, "user.created", "custom.future_type"},
    {"session.*, session.*", 2, "session.created", "session.revoked"},
    {" invitation.* ,password_reset.*,", 6, "invitation.created", "password_reset.succeeded"},
    {"v2.thing.done", 1, "v2.thing.done", "v2.thing.done"},
};

START_TEST(event_wildcards)
{
    char text[512];
    snprintf(text, sizeof text, "[workos]\nevents = %s\n", wildcard_cases[_i].value);
    config_t c;
    char err[512];
    ck_assert_msg(config_load(&c, write_conf(text), err, sizeof err), "%s", err);
    ck_assert_uint_eq(c.n_events, wildcard_cases[_i].count);
    ck_assert_str_eq(c.events[0], wildcard_cases[_i].first);
    ck_assert_str_eq(c.events[c.n_events - 1], wildcard_cases[_i].last);
    for (size_t i = 0; i < c.n_events; i++) {
        ck_assert_ptr_null(strchr(c.events[i], '*'));
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(c.events[i], c.events[j]);
    }
    config_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Schema names                                                              */

static const struct {
    const char *name;
    bool ok;
} schema_cases[] = {
    {"workos", true},
    {"_private", true},
    {"mirror_2", true},
    {"a23456789012345678901234567890123456789012345678901234567890123", true},
    {"a234567890123456789012345678901234567890123456789012345678901234", false},
    {"", false},
    {"Workos", false},
    {"1workos", false},
    {"work-os", false},
    {"work os", false},
    {"work.os", false},
    {"work\"os", false},
    {"workos;drop", false},
    {"pg_workos", false},
    {"pgworkos", true},
};

START_TEST(schema_names)
{
    char text[256];
    snprintf(text, sizeof text, "[database]\nschema = %s\n", schema_cases[_i].name);
    config_t c;
    char err[512];
    bool ok = config_load(&c, write_conf(text), err, sizeof err);
    ck_assert_msg(ok == schema_cases[_i].ok, "schema \"%s\": %s", schema_cases[_i].name,
                  ok ? "accepted" : err);
    if (ok)
        ck_assert_str_eq(c.schema, schema_cases[_i].name);
    else
        ck_assert_ptr_nonnull(strstr(err, ":2: [database] schema: "));
    config_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Reload diff                                                               */

#define RELOAD_BASE                                                                                \
    "[workos]\napi_key = sk_a\nevents = user.*\n[webhook]\nlisten = 127.0.0.1:1\n"                 \
    "secret = whsec_a\n[database]\nschema = workos\n[log]\nlevel = info\n"

static const struct {
    const char *text;
    const char *diff;
} reload_cases[] = {
    {RELOAD_BASE, ""},
    {"[workos]\napi_key = sk_a\nevents = user.*\npoll_interval = 1s\nrequest_timeout = 5s\n"
     "rate_limit = 10\n[webhook]\nlisten = 127.0.0.1:1\nsecret = whsec_b, whsec_a\n"
     "tolerance = 10s\nmax_body = 2MiB\n[database]\nschema = workos\n[log]\nlevel = debug\n",
     ""},
    {"[workos]\napi_key = sk_b\nevents = user.*\n[webhook]\nlisten = 127.0.0.1:1\n"
     "secret = whsec_a\n",
     "[workos] api_key"},
    {"[workos]\napi_key = sk_a\nevents = user.*\nbase_url = http://x.test\n[webhook]\n"
     "listen = 127.0.0.1:1\nsecret = whsec_a\n",
     "[workos] base_url"},
    {"[workos]\napi_key = sk_a\nevents = user.*, session.*\n[webhook]\nlisten = 127.0.0.1:1\n"
     "secret = whsec_a\n[database]\nschema = other\n",
     "[workos] events, [database] schema"},
    {"[workos]\nevents = user.*\nevents_param = events[]\nstart_from = 2026-01-01T00:00:00Z\n"
     "[webhook]\nlisten = 127.0.0.1:2\npath = /x\nsecret = whsec_a\n[database]\nurl = dbname=x\n",
     "[workos] api_key, [workos] events_param, [workos] start_from, [webhook] listen, "
     "[webhook] path, [database] url"},
    {RELOAD_BASE "[webhook]\nmax_unverified_bytes = 8MiB\n", ""},
    {"[workos]\napi_key = sk_a\nevents = user.*\nretention = 7d\n[webhook]\nlisten = 127.0.0.1:1\n"
     "secret = whsec_a\nrequest_deadline = 5s\n[database]\nlock_timeout = 1s\n"
     "statement_timeout = 1m\n[reconcile]\ninterval = 0\n[audit]\nretention = 30d\n"
     "auth_retention = 7d\nhead_log_interval = 0\n",
     "[workos] retention, [database] lock_timeout, "
     "[database] statement_timeout, [reconcile] interval, [audit] retention, "
     "[audit] auth_retention, [audit] head_log_interval"},
};

/* A reload applies every reloadable key and keeps the restart-only ones. */
START_TEST(reload_apply)
{
    config_t running, fresh;
    char err[512];
    ck_assert_msg(config_load(&running, write_file("old.conf", RELOAD_BASE), err, sizeof err), "%s",
                  err);
    ck_assert_msg(config_load(&fresh,
                              write_conf("[workos]\napi_key = sk_b\nevents = user.*, session.*\n"
                                         "poll_interval = 1s\nrequest_timeout = 5s\n"
                                         "rate_limit = 10\n[webhook]\nlisten = 127.0.0.1:2\n"
                                         "secret = whsec_b, whsec_a\ntolerance = 10s\n"
                                         "max_body = 2MiB\nclient_timeout = 3s\n"
                                         "max_unverified_bytes = 8MiB\nrequest_deadline = 3s\n"
                                         "[database]\n"
                                         "schema = other\n[log]\nlevel = debug\n"),
                              err, sizeof err),
                  "%s", err);
    config_reload_apply(&running, &fresh);

    ck_assert_int_eq(running.poll_interval_ms, 1000);
    ck_assert_int_eq(running.request_timeout_ms, 5000);
    ck_assert_int_eq(running.rate_limit, 10);
    ck_assert_int_eq(running.tolerance_ms, 10000);
    ck_assert_uint_eq(running.max_body, 2u << 20);
    ck_assert_int_eq(running.client_timeout_ms, 3000);
    ck_assert_uint_eq(running.max_unverified_bytes, 8u << 20);
    ck_assert_int_eq(running.log_level, LOG_LEVEL_DEBUG);
    ck_assert_uint_eq(running.n_secrets, 2);
    ck_assert_str_eq(running.secrets[0], "whsec_b");
    ck_assert_str_eq(running.secrets[1], "whsec_a");
    ck_assert_int_eq(running.request_deadline_ms, 3000);
    /* Restart-only keys keep their running values... */
    ck_assert_str_eq(running.api_key, "sk_a");
    ck_assert_str_eq(running.schema, "workos");
    ck_assert_str_eq(running.listen, "127.0.0.1:1");
    ck_assert_uint_eq(running.n_events, 3); /* user.*, not user.* and session.* */
    ck_assert_str_eq(running.events[0], "user.created");
    /* ...and what was replaced moved to `fresh`, for config_free. */
    ck_assert_uint_eq(fresh.n_secrets, 1);
    ck_assert_str_eq(fresh.secrets[0], "whsec_a");
    ck_assert_int_eq(fresh.log_level, LOG_LEVEL_INFO);
    config_free(&fresh);
    config_free(&running);
}
END_TEST

START_TEST(reload_diff)
{
    config_t old_cfg, new_cfg;
    char err[512], diff[512];
    ck_assert_msg(config_load(&old_cfg, write_file("old.conf", RELOAD_BASE), err, sizeof err), "%s",
                  err);
    ck_assert_msg(config_load(&new_cfg, write_conf(reload_cases[_i].text), err, sizeof err), "%s",
                  err);
    ck_assert_str_eq(config_reload_diff(&old_cfg, &new_cfg, diff, sizeof diff),
                     reload_cases[_i].diff);
    ck_assert_str_eq(config_reload_diff(&new_cfg, &old_cfg, diff, sizeof diff),
                     reload_cases[_i].diff);
    ck_assert_str_eq(config_reload_diff(&new_cfg, &new_cfg, diff, sizeof diff), "");

    /* Every buffer size gives a terminated, bounded answer. */
    for (size_t len = 1; len < 64; len++) {
        char small[64];
        memset(small, '#', sizeof small);
        const char *s = config_reload_diff(&old_cfg, &new_cfg, small, len);
        ck_assert_uint_lt(strlen(s), len);
        if (strlen(reload_cases[_i].diff) >= len && len >= 4)
            ck_assert_msg(strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "...") == 0, "%zu: %s", len,
                          s);
    }
    ck_assert_str_eq(config_reload_diff(&old_cfg, &new_cfg, diff, 0), "");
    config_free(&old_cfg);
    config_free(&new_cfg);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Documentation                                                             */

/*
 * Finds `key =` or `# key =` inside [section] of the example and returns the
 * line's index, or -1. The comment block above it is checked by the caller.
 */
static int find_key_line(char **lines, int n, const char *section, const char *key,
                         const char **value)
{
    char current[64] = "";
    for (int i = 0; i < n; i++) {
        const char *l = lines[i];
        if (l[0] == '[') {
            const char *close = strchr(l, ']');
            if (close != NULL && (size_t)(close - l - 1) < sizeof current) {
                memcpy(current, l + 1, (size_t)(close - l - 1));
                current[close - l - 1] = '\0';
            }
            continue;
        }
        if (strcmp(current, section) != 0)
            continue;
        if (l[0] == '#' || l[0] == ';')
            l++;
        while (*l == ' ')
            l++;
        size_t klen = strlen(key);
        if (strncmp(l, key, klen) != 0)
            continue;
        l += klen;
        while (*l == ' ')
            l++;
        if (*l != '=')
            continue;
        l++;
        while (*l == ' ')
            l++;
        *value = l;
        return i;
    }
    return -1;
}

START_TEST(example_documents_every_key)
{
    char *text = slurp(EXAMPLE_PATH);
    ck_assert_msg(text != NULL, "cannot read %s", EXAMPLE_PATH);
    char *lines[512];
    int n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l != NULL && n < 512;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;

    size_t nopt;
    const config_option_t *opts = config_options(&nopt);
    for (size_t i = 0; i < nopt; i++) {
        const config_option_t *o = &opts[i];
        const char *value = NULL;
        int at = find_key_line(lines, n, o->section, o->key, &value);
        ck_assert_msg(at >= 0, "%s does not document [%s] %s (as `# %s =`)", EXAMPLE_PATH,
                      o->section, o->key, o->key);
        /* Shown values are the defaults, except that listen shows an address. */
        if (o->def != NULL && strcmp(o->key, "listen") != 0)
            ck_assert_msg(strcmp(value, o->def) == 0, "%s: [%s] %s shows \"%s\", default is \"%s\"",
                          EXAMPLE_PATH, o->section, o->key, value, o->def);

        /* The comment block above the key states its env variable and reload mode. */
        bool env_ok = o->env == NULL, reload_ok = false;
        char want_env[80];
        snprintf(want_env, sizeof want_env, "Env: %s.", o->env != NULL ? o->env : "");
        const char *want_reload = o->reloadable ? "Reload: yes." : "Reload: restart.";
        for (int j = at - 1; j >= 0 && lines[j][0] == '#'; j--) {
            if (o->env != NULL && strstr(lines[j], want_env) != NULL)
                env_ok = true;
            if (strstr(lines[j], want_reload) != NULL)
                reload_ok = true;
        }
        ck_assert_msg(env_ok, "%s: [%s] %s: comment lacks \"%s\"", EXAMPLE_PATH, o->section, o->key,
                      want_env);
        ck_assert_msg(reload_ok, "%s: [%s] %s: comment lacks \"%s\"", EXAMPLE_PATH, o->section,
                      o->key, want_reload);
    }
    free(text);
}
END_TEST

START_TEST(example_loads)
{
    config_t c, def;
    char err[512], diff[256];
    ck_assert_msg(config_load(&c, EXAMPLE_PATH, err, sizeof err), "%s", err);
    config_defaults(&def);
    ck_assert_str_eq(config_reload_diff(&def, &c, diff, sizeof diff), "");
    assert_defaults(&c);
    config_free(&def);
    config_free(&c);
}
END_TEST

START_TEST(readme_mentions_every_key)
{
    if (access(README_PATH, F_OK) != 0) {
        fprintf(stderr, "SKIP readme_mentions_every_key: %s does not exist yet\n", README_PATH);
        return;
    }
    char *text = slurp(README_PATH);
    ck_assert_msg(text != NULL, "cannot read %s", README_PATH);
    size_t n;
    const config_option_t *opts = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "`%s`", opts[i].key);
        ck_assert_msg(strstr(text, needle) != NULL, "%s does not mention [%s] %s as %s",
                      README_PATH, opts[i].section, opts[i].key, needle);
    }
    free(text);
}
END_TEST

/* ------------------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *unit_suite(void)
{
    Suite *s = suite_create("config");
    size_t nopt;
    (void)config_options(&nopt);

    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, duration_valid, 0, N(durations_ok));
    tcase_add_loop_test(tc, duration_invalid, 0, N(durations_bad));
    tcase_add_loop_test(tc, size_valid, 0, N(sizes_ok));
    tcase_add_loop_test(tc, size_invalid, 0, N(sizes_bad));
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, load_without_file);
    tcase_add_test(tc, every_key_direct);
    tcase_add_test(tc, every_key_files);
    tcase_add_loop_test(tc, bounds_accepted, 0, N(bound_ok));
    tcase_add_test(tc, fixtures_cover_every_key);
    tcase_add_loop_test(tc, defaults_written_out_load, 0, (int)nopt);
    tcase_add_test(tc, option_table_sane);
    tcase_add_loop_test(tc, env_beats_file, 0, N(env_cases));
    tcase_add_test(tc, env_error_names_variable);
    tcase_add_test(tc, env_overrides_secret_file);
    tcase_add_test(tc, env_secret_skips_missing_file);
    tcase_add_test(tc, skip_secret_files);
    tcase_add_test(tc, secret_file_paths);
    tcase_add_loop_test(tc, event_wildcards, 0, N(wildcard_cases));
    tcase_add_loop_test(tc, schema_names, 0, N(schema_cases));
    tcase_add_loop_test(tc, reload_diff, 0, N(reload_cases));
    tcase_add_test(tc, reload_apply);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, error_lines, 0, N(error_cases));
    tcase_add_test(tc, missing_file_is_named);
    tcase_add_test(tc, long_lines);
    tcase_add_test(tc, small_error_buffer);
    tcase_add_test(tc, quoted_values);
    tcase_add_loop_test(tc, secrets_never_in_errors, 0, N(secret_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("docs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, example_documents_every_key);
    tcase_add_test(tc, example_loads);
    tcase_add_test(tc, readme_mentions_every_key);
    suite_add_tcase(s, tc);
    return s;
}
