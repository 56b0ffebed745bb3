/*
 * Unit tests for daemon/log.c: level filtering (arguments of a disabled line
 * are not evaluated), the logfmt line shape, journald detection through
 * $JOURNAL_STREAM, escaping that keeps one event on one line, and log_quote.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "runner.h"

static char *out_buf;
static size_t out_len;
static FILE *out;

static void setup(void)
{
    unsetenv("JOURNAL_STREAM");
    out = open_memstream(&out_buf, &out_len);
    ck_assert_ptr_nonnull(out);
    log_init(out);
    log_set_level(LOG_LEVEL_INFO);
}

static void teardown(void)
{
    log_init(stderr);
    fclose(out);
    free(out_buf);
    out_buf = NULL;
    out_len = 0;
    unsetenv("JOURNAL_STREAM");
}

/* What has been logged so far. */
static const char *logged(void)
{
    fflush(out);
    return out_buf != NULL ? out_buf : "";
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "\"%s\" does not match /%s/", s, pattern);
}

/* ------------------------------------------------------------------------- */

static int evaluated;

static int bump(void)
{
    return ++evaluated;
}

static const struct {
    enum log_level current, line;
    bool written;
} filter_cases[] = {
    {LOG_LEVEL_ERROR, LOG_LEVEL_ERROR, true},  {LOG_LEVEL_ERROR, LOG_LEVEL_WARN, false},
    {LOG_LEVEL_ERROR, LOG_LEVEL_DEBUG, false}, {LOG_LEVEL_WARN, LOG_LEVEL_WARN, true},
    {LOG_LEVEL_WARN, LOG_LEVEL_INFO, false},   {LOG_LEVEL_INFO, LOG_LEVEL_ERROR, true},
    {LOG_LEVEL_INFO, LOG_LEVEL_INFO, true},    {LOG_LEVEL_INFO, LOG_LEVEL_DEBUG, false},
    {LOG_LEVEL_DEBUG, LOG_LEVEL_DEBUG, true},  {LOG_LEVEL_DEBUG, LOG_LEVEL_ERROR, true},
};

START_TEST(filter_skips_arguments)
{
    evaluated = 0;
    log_set_level(filter_cases[_i].current);
    ck_assert_int_eq(log_get_level(), filter_cases[_i].current);
    switch (filter_cases[_i].line) {
    case LOG_LEVEL_ERROR:
        log_error("n=%d", bump());
        break;
    case LOG_LEVEL_WARN:
        log_warn("n=%d", bump());
        break;
    case LOG_LEVEL_INFO:
        log_info("n=%d", bump());
        break;
    case LOG_LEVEL_DEBUG:
        log_debug("n=%d", bump());
        break;
    }
    ck_assert_int_eq(evaluated, filter_cases[_i].written ? 1 : 0);
    ck_assert_int_eq(strlen(logged()) > 0, filter_cases[_i].written);
    ck_assert_int_eq(log_enabled(filter_cases[_i].line), filter_cases[_i].written);
    if (filter_cases[_i].written) {
        char want[64];
        snprintf(want, sizeof want, " level=%s n=1\n", log_level_name(filter_cases[_i].line));
        ck_assert_ptr_nonnull(strstr(logged(), want));
    }
}
END_TEST

START_TEST(line_shape)
{
    log_info("event=page_applied n=%d cursor=%s", 3, "evt_01");
    log_warn("event=retry");
    assert_matches(logged(),
                   "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                   "level=info event=page_applied n=3 cursor=evt_01\n"
                   "ts=[^ ]+Z level=warn event=retry\n$");
}
END_TEST

START_TEST(set_level_ignores_junk)
{
    log_set_level(LOG_LEVEL_WARN);
    log_set_level((enum log_level)42);
    ck_assert_int_eq(log_get_level(), LOG_LEVEL_WARN);
    ck_assert_str_eq(log_level_name((enum log_level)42), "unknown");
}
END_TEST

static const struct {
    const char *text;
    bool ok;
    enum log_level level;
} parse_cases[] = {
    {"error", true, LOG_LEVEL_ERROR},
    {"warn", true, LOG_LEVEL_WARN},
    {"warning", true, LOG_LEVEL_WARN},
    {"info", true, LOG_LEVEL_INFO},
    {"DEBUG", true, LOG_LEVEL_DEBUG},
    {"Info", true, LOG_LEVEL_INFO},
    {"", false, 0},
    {"verbose", false, 0},
    {"info ", false, 0},
    {"3", false, 0},
};

START_TEST(level_parse)
{
    enum log_level l = (enum log_level)99;
    ck_assert_int_eq(log_level_parse(parse_cases[_i].text, &l), parse_cases[_i].ok);
    if (parse_cases[_i].ok) {
        ck_assert_int_eq(l, parse_cases[_i].level);
        char lower[16];
        size_t i = 0;
        for (; parse_cases[_i].text[i] && i < sizeof lower - 1; i++)
            lower[i] = (char)(parse_cases[_i].text[i] | 0x20);
        lower[i] = '\0';
        if (strcmp(lower, "warning") != 0)
            ck_assert_str_eq(log_level_name(l), lower);
    } else {
        ck_assert_int_eq(l, 99);
    }
    ck_assert(!log_level_parse(NULL, &l));
}
END_TEST

/* ------------------------------------------------------------------------- */

static const struct {
    enum log_level level;
    const char *prefix;
} journal_cases[] = {
    {LOG_LEVEL_ERROR, "<3>level=error "},
    {LOG_LEVEL_WARN, "<4>level=warn "},
    {LOG_LEVEL_INFO, "<6>level=info "},
    {LOG_LEVEL_DEBUG, "<7>level=debug "},
};

/* A temp file stands in for the journal socket: only dev:ino matter. */
static FILE *journal_file(char *path, size_t len, bool matching)
{
    snprintf(path, len, "%s/test_log.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char env[64];
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (matching ? 0 : 1));
    setenv("JOURNAL_STREAM", env, 1);
    FILE *f = fdopen(fd, "w+");
    ck_assert_ptr_nonnull(f);
    return f;
}

static char *read_back(FILE *f)
{
    fflush(f);
    rewind(f);
    static char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    return buf;
}

START_TEST(journal_prefix)
{
    char path[256];
    FILE *f = journal_file(path, sizeof path, true);
    log_init(f);
    log_set_level(LOG_LEVEL_DEBUG);
    log_write(journal_cases[_i].level, "event=x");
    char want[64];
    snprintf(want, sizeof want, "%sevent=x\n", journal_cases[_i].prefix);
    ck_assert_str_eq(read_back(f), want);
    log_init(stderr);
    fclose(f);
    unlink(path);
}
END_TEST

START_TEST(journal_mismatch_keeps_timestamp)
{
    char path[256];
    FILE *f = journal_file(path, sizeof path, false);
    log_init(f);
    log_info("event=x");
    assert_matches(read_back(f), "^ts=[^ ]+Z level=info event=x\n$");
    fclose(f);

    /* Malformed values are ignored too. */
    static const char *const junk[] = {"", "12", "12:", ":34", "a:b", "1:2:3", "1:2x"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        f = fopen(path, "w+");
        ck_assert_ptr_nonnull(f);
        setenv("JOURNAL_STREAM", junk[i], 1);
        log_init(f);
        log_info("event=y");
        assert_matches(read_back(f), "^ts=[^ ]+Z level=info event=y\n$");
        fclose(f);
    }
    log_init(stderr);
    unlink(path);
}
END_TEST

/* ------------------------------------------------------------------------- */

START_TEST(control_characters_escaped)
{
    log_info("msg=\"%s\" end=1", "a\nb\rc\td\001e\177f\\g\"h");
    const char *s = logged();
    ck_assert_uint_eq(count_char(s, '\n'), 1);
    ck_assert_ptr_nonnull(
        strstr(s, " level=info msg=\"a\\nb\\rc\\td\\u0001e\\u007ff\\g\"h\" end=1\n"));
}
END_TEST

START_TEST(forged_event_stays_inside)
{
    log_warn("error=%s", "oops\nts=2020-01-01T00:00:00.000Z level=error forged=1");
    const char *s = logged();
    ck_assert_uint_eq(count_char(s, '\n'), 1);
    ck_assert_ptr_eq(strstr(s, "\nts="), NULL);
}
END_TEST

START_TEST(long_body_cut)
{
    static char big[20000];
    memset(big, 'a', sizeof big - 1);
    /* A multi-byte character straddles every plausible cut point. */
    for (size_t i = 4000; i + 2 < sizeof big - 1; i += 3)
        memcpy(big + i, "\xc3\xa9", 2);
    log_info("big=%s", big);
    const char *s = logged();
    size_t len = strlen(s);
    ck_assert_uint_eq(count_char(s, '\n'), 1);
    ck_assert_uint_le(len, 8192);
    ck_assert_str_eq(s + len - 4, "...\n");
    /* No half character before the dots. */
    unsigned char last = (unsigned char)s[len - 5];
    ck_assert_msg(last < 0x80 || (last & 0xC0) == 0x80, "cut inside a character");
    if ((last & 0xC0) == 0x80)
        ck_assert_uint_eq((unsigned char)s[len - 6], 0xc3);

    /* Many escapes overflow the line buffer rather than the body buffer. */
    static char ctl[4000];
    memset(ctl, '\001', sizeof ctl - 1);
    log_error("ctl=%s", ctl);
    s = logged() + len;
    ck_assert_uint_eq(count_char(s, '\n'), 1);
    ck_assert_str_eq(s + strlen(s) - 4, "...\n");
}
END_TEST

/* ------------------------------------------------------------------------- */

static const struct {
    const char *in;
    const char *out;
} quote_cases[] = {
    {NULL, "-"},
    {"", "\"\""},
    {"evt_01HXYZ", "evt_01HXYZ"},
    {"user.created", "user.created"},
    {"https://api.workos.com/events?x", "https://api.workos.com/events?x"},
    {"a\\b", "a\\b"},
    {"caf\xc3\xa9", "caf\xc3\xa9"},
    {"two words", "\"two words\""},
    {"a=b", "\"a=b\""},
    {"say \"hi\"", "\"say \\\"hi\\\"\""},
    {"back\\slash and space", "\"back\\\\slash and space\""},
    {"line\nbreak", "\"line\\nbreak\""},
    {"cr\rtab\t", "\"cr\\rtab\\t\""},
    {"bell\a", "\"bell\\u0007\""},
    {"del\177", "\"del\\u007f\""},
};

START_TEST(quote_values)
{
    char buf[128];
    ck_assert_str_eq(log_quote(buf, sizeof buf, quote_cases[_i].in), quote_cases[_i].out);
}
END_TEST

/* Every buffer size yields a terminated, balanced value; cut ones end in "...". */
START_TEST(quote_truncation)
{
    static const char *const inputs[] = {
        "plain_value_that_is_rather_long_0123456789",
        "quoted value with \"quotes\" and \\ backslashes\n and newlines",
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
        "\xc3\xa9 \xc3\xa9 \xc3\xa9 \xc3\xa9 \xc3\xa9 \xc3\xa9 \xc3\xa9 \xc3\xa9",
        "\001\002\003\004\005\006\007\010\011\012",
    };
    char full[256];
    for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
        log_quote(full, sizeof full, inputs[k]);
        size_t full_len = strlen(full);
        bool quoted = full[0] == '"';
        for (size_t len = 0; len <= full_len + 2; len++) {
            char buf[300];
            memset(buf, '#', sizeof buf);
            const char *s = log_quote(buf, len, inputs[k]);
            size_t n = strlen(s);
            if (len == 0) {
                ck_assert_str_eq(s, "");
                continue;
            }
            ck_assert_uint_lt(n, len);
            ck_assert_ptr_eq(s, buf);
            ck_assert_int_eq(buf[len], '#');
            if (n == 0)
                continue; /* too small for even `"..."` */
            if (len > full_len) {
                ck_assert_str_eq(s, full);
                continue;
            }
            ck_assert_int_eq(s[0] == '"', quoted);
            if (quoted) {
                ck_assert_int_eq(s[n - 1], '"');
                ck_assert_msg(n >= 5 && strncmp(s + n - 4, "...\"", 4) == 0, "%s", s);
            } else {
                ck_assert_msg(n >= 3 && strcmp(s + n - 3, "...") == 0, "%s", s);
            }
            /* No escape cut in half: count backslashes before the dots. */
            size_t end = n - (quoted ? 4 : 3), bs = 0;
            while (end > 0 && s[end - 1] == '\\') {
                end--;
                bs++;
            }
            ck_assert_msg(bs % 2 == 0, "dangling backslash in %s", s);
            /* No half UTF-8 character. */
            size_t body = n - (quoted ? 4 : 3);
            if (body > 0 && ((unsigned char)s[body - 1] & 0xC0) == 0xC0)
                ck_abort_msg("half character in %s", s);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/*
 * The logfmt guarantee: whatever a value holds, a strict logfmt parser reads
 * back the fields that were written, each with the value that was meant.
 * The parser below is deliberately stricter than the ones log shippers use:
 *
 *     line   = field *(" " field) "\n"       (no other newline)
 *     field  = key "=" value
 *     key    = 1*(ALPHA / DIGIT / "_" / "." / "-")
 *     value  = bare / quoted
 *     bare   = 1*(any byte but SP, control, DEL, '"', '=')
 *     quoted = '"' *(any byte but '"', '\', control, DEL / escape) '"'
 *     escape = '\' ('"' / '\' / "n" / "r" / "t" / "u00" HEXDIG HEXDIG)
 */

#define LF_MAX_FIELDS 16

struct lf_field {
    char key[32];
    char *value; /* decoded, NUL-terminated, malloc'd */
};

struct lf_line {
    size_t n;
    struct lf_field f[LF_MAX_FIELDS];
};

static void lf_free(struct lf_line *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->f[i].value);
    l->n = 0;
}

static int lf_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool lf_key_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/*
 * Parses one whole line (it must end in its only "\n") into *l. Returns
 * NULL on success, otherwise what was wrong; *l then holds what was parsed.
 */
static const char *lf_parse(const char *s, struct lf_line *l)
{
    l->n = 0;
    const char *p = s;
    for (;;) {
        if (l->n == LF_MAX_FIELDS)
            return "too many fields";
        struct lf_field *f = &l->f[l->n];
        size_t k = 0;
        while (lf_key_byte((unsigned char)*p)) {
            if (k + 1 == sizeof f->key)
                return "key too long";
            f->key[k++] = *p++;
        }
        f->key[k] = '\0';
        if (k == 0)
            return "empty key";
        if (*p++ != '=')
            return "key without '='";
        size_t cap = strlen(p) + 1, o = 0;
        char *v = malloc(cap);
        ck_assert_ptr_nonnull(v);
        f->value = v;
        l->n++;
        if (*p == '"') {
            p++;
            for (;;) {
                unsigned char c = (unsigned char)*p++;
                if (c == '"')
                    break;
                if (c < 0x20 || c == 0x7f)
                    return "control byte or end inside quotes";
                if (c != '\\') {
                    v[o++] = (char)c;
                    continue;
                }
                c = (unsigned char)*p++;
                if (c == '"' || c == '\\')
                    v[o++] = (char)c;
                else if (c == 'n')
                    v[o++] = '\n';
                else if (c == 'r')
                    v[o++] = '\r';
                else if (c == 't')
                    v[o++] = '\t';
                else if (c == 'u' && p[0] == '0' && p[1] == '0' && lf_hex(p[2]) >= 0 &&
                         lf_hex(p[3]) >= 0 && (lf_hex(p[2]) << 4 | lf_hex(p[3])) != 0) {
                    v[o++] = (char)(lf_hex(p[2]) << 4 | lf_hex(p[3]));
                    p += 4;
                } else {
                    return "bad escape";
                }
            }
        } else {
            while ((unsigned char)*p > ' ' && *p != 0x7f && *p != '"' && *p != '=')
                v[o++] = *p++;
            if (o == 0)
                return "empty bare value";
        }
        v[o] = '\0';
        if (*p == ' ') {
            p++;
            continue;
        }
        if (p[0] == '\n' && p[1] == '\0')
            return NULL;
        return "junk after a value";
    }
}

/*
 * True when `got` is `want`, or `want` cut as documented: a prefix of it
 * followed by "...", at least `min` bytes of it kept.
 */
static bool lf_same_or_cut(const char *got, const char *want, size_t min)
{
    if (strcmp(got, want) == 0)
        return true;
    size_t n = strlen(got);
    if (n < 3 || strcmp(got + n - 3, "...") != 0)
        return false;
    n -= 3;
    return n >= min && n <= strlen(want) && memcmp(got, want, n) == 0;
}

/* The hostile values; long ones are built on first use. */
static const char *hostile(int i)
{
    static char very_long[5000], quotes[3000], controls[2000], accents[2001], slashes[2000];
    if (very_long[0] == '\0') {
        memset(very_long, 'v', sizeof very_long - 1);
        memset(quotes, '"', sizeof quotes - 1);
        memset(controls, '\001', sizeof controls - 1);
        for (size_t k = 0; k + 2 < sizeof accents; k += 2)
            memcpy(accents + k, "\xc3\xa9", 2);
        for (size_t k = 0; k + 1 < sizeof slashes; k++)
            slashes[k] = k % 3 == 2 ? ' ' : '\\';
    }
    static const char *const fixed[] = {
        NULL,
        "",
        "evt_01HXYZ",
        "-",
        "say \"hi\"",
        "\"",
        "\\",
        "\\\"",
        "ends in a backslash\\",
        "a=b",
        "=",
        "==\"=",
        " ",
        " leading and trailing ",
        "line\nbreak",
        "oops\nts=2020-01-01T00:00:00.000Z level=error msg=forged",
        "cr\r\nlf",
        "\r",
        "\001\002\003\004\005\006\007\010\011\013\014\016\017\020\021\022\023\024\025\026"
        "\027\030\031\032\033\034\035\036\037\177",
        "\xff\xfe not UTF-8 \xc3",
        "\xc3",
        "\xe2\x82",
        "\xed\xa0\x80 surrogate",
        " level=error msg=forged",
        "level=error msg=forged",
        "x\" level=error msg=\"forged",
        "x\\\" level=error msg=forged",
        "duplicate error=forged",
        "caf\xc3\xa9 \xe2\x82\xac",
    };
    int n = (int)(sizeof fixed / sizeof fixed[0]);
    if (i < n)
        return fixed[i];
    const char *const built[] = {very_long, quotes, controls, accents, slashes};
    return built[i - n];
}

#define HOSTILE_COUNT 34

START_TEST(logfmt_round_trip)
{
    const char *in = hostile(_i);
    log_warn("event=x id=%s type=%s error=%s", log_q(in), log_q("user.created"), log_q(in));
    const char *s = logged();
    ck_assert_uint_eq(count_char(s, '\n'), 1);

    struct lf_line l;
    const char *why = lf_parse(s, &l);
    ck_assert_msg(why == NULL, "input %d: %s in %.300s", _i, why, s);
    static const char *const keys[] = {"ts", "level", "event", "id", "type", "error"};
    ck_assert_uint_eq(l.n, sizeof keys / sizeof keys[0]);
    for (size_t k = 0; k < l.n; k++)
        ck_assert_str_eq(l.f[k].key, keys[k]);
    ck_assert_str_eq(l.f[1].value, "warn");
    ck_assert_str_eq(l.f[2].value, "x");
    ck_assert_str_eq(l.f[4].value, "user.created");
    /* NULL is documented to render as "-"; a cut keeps at least a sixth. */
    const char *want = in != NULL ? in : "-";
    size_t min = (LOG_Q_LEN - 6) / 6;
    ck_assert_msg(lf_same_or_cut(l.f[3].value, want, min), "input %d: id=%.300s", _i, l.f[3].value);
    ck_assert_msg(lf_same_or_cut(l.f[5].value, want, min), "input %d: error=%.300s", _i,
                  l.f[5].value);
    if (strlen(want) < LOG_Q_LEN / 6)
        ck_assert_str_eq(l.f[3].value, want); /* short values are never cut */
    lf_free(&l);
}
END_TEST

/*
 * A body longer than a line holds is cut where logfmt allows: every field
 * before the cut is whole, the one cut keeps its quotes and ends in "...",
 * and a cut inside a key ends the line with `truncated=...`. The padding
 * moves the cut across quoted values, their escapes, a key and its '='.
 */
START_TEST(logfmt_long_body_cut)
{
    static char heavy[600];
    memset(heavy, '"', sizeof heavy - 1);
    char meant[LOG_Q_LEN];
    {
        struct lf_line one;
        char line[LOG_Q_LEN + 8];
        snprintf(line, sizeof line, "v=%s\n", log_quote(meant, sizeof meant, heavy));
        ck_assert_ptr_null(lf_parse(line, &one));
        snprintf(meant, sizeof meant, "%s", one.f[0].value);
        lf_free(&one);
    }
    static const char *const keys[] = {"ts", "level", "pad", "k0", "k1", "k2",
                                       "k3", "k4",    "k5",  "k6", "k7"};
    static char pad[700];
    int cut_in_value = 0, cut_in_key = 0;
    size_t before = 0;
    for (size_t p = 1; p < sizeof pad; p++) {
        memset(pad, 'p', p);
        pad[p] = '\0';
        log_info("pad=%s k0=%s k1=%s k2=%s k3=%s k4=%s k5=%s k6=%s k7=%s", pad, log_q(heavy),
                 log_q(heavy), log_q(heavy), log_q(heavy), log_q(heavy), log_q(heavy), log_q(heavy),
                 log_q(heavy));
        const char *s = logged() + before;
        before += strlen(s);
        ck_assert_uint_eq(count_char(s, '\n'), 1);

        struct lf_line l;
        const char *why = lf_parse(s, &l);
        ck_assert_msg(why == NULL, "pad %zu: %s in %.300s", p, why, s);
        ck_assert_uint_ge(l.n, 4);
        size_t k = 0;
        for (; k < l.n && k < sizeof keys / sizeof keys[0]; k++) {
            if (strcmp(l.f[k].key, keys[k]) != 0)
                break;
            const char *want = k == 2 ? pad : k >= 3 ? meant : l.f[k].value;
            bool last = k + 1 == l.n;
            if (!last)
                ck_assert_str_eq(l.f[k].value, want);
            else
                ck_assert_msg(lf_same_or_cut(l.f[k].value, want, 0), "pad %zu: %s=%.300s", p,
                              l.f[k].key, l.f[k].value);
            if (last && strcmp(l.f[k].value, want) != 0)
                cut_in_value++;
        }
        if (k < l.n) {
            ck_assert_uint_eq(k + 1, l.n);
            ck_assert_str_eq(l.f[k].key, "truncated");
            ck_assert_str_eq(l.f[k].value, "...");
            cut_in_key++;
        }
        lf_free(&l);
    }
    ck_assert_int_gt(cut_in_value, 0);
    ck_assert_int_gt(cut_in_key, 0);
}
END_TEST

/* ------------------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *unit_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, filter_skips_arguments, 0, N(filter_cases));
    tcase_add_test(tc, line_shape);
    tcase_add_test(tc, set_level_ignores_junk);
    tcase_add_loop_test(tc, level_parse, 0, N(parse_cases));
    tcase_add_loop_test(tc, journal_prefix, 0, N(journal_cases));
    tcase_add_test(tc, journal_mismatch_keeps_timestamp);
    tcase_add_test(tc, control_characters_escaped);
    tcase_add_test(tc, forged_event_stays_inside);
    tcase_add_test(tc, long_body_cut);
    tcase_add_loop_test(tc, quote_values, 0, N(quote_cases));
    tcase_add_test(tc, quote_truncation);
    tcase_add_loop_test(tc, logfmt_round_trip, 0, HOSTILE_COUNT);
    tcase_add_test(tc, logfmt_long_body_cut);
    suite_add_tcase(s, tc);
    return s;
}
