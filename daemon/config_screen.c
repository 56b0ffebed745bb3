/*
 * The line screen around libinih: a line reader for ini_parse_stream() that
 * counts lines and refuses, with the line number, what inih would silently
 * mishandle -- lines longer than its buffer, unknown sections, indented
 * `key =` lines that inih would glue onto the previous value, NUL bytes --
 * and the recorder of a file's first error. Section and key names are
 * looked up in the option table through config.h.
 */
#include "config_screen.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static bool section_known(const char *section)
{
    size_t n;
    const config_option_t *opts = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i].section, section) == 0)
            return true;
    }
    return false;
}

/* True when some section has a key of this name. */
static bool key_known(const char *key)
{
    size_t n;
    const config_option_t *opts = config_options(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i].key, key) == 0)
            return true;
    }
    return false;
}

void config_screen_fail(config_screen_t *s, const config_option_t *o, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    s->fail_line = s->line;
    int n;
    if (o != NULL)
        n = snprintf(s->err, s->errlen, "%s:%d: [%s] %s: ", s->path, s->line, o->section, o->key);
    else
        n = snprintf(s->err, s->errlen, "%s:%d: ", s->path, s->line);
    if (n < 0 || (size_t)n >= s->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
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
    config_screen_t *s = stream;
    if (s->failed)
        return NULL;
    errno = 0;
    ssize_t n = getline(&s->buf, &s->bufcap, s->fp);
    if (n < 0) {
        if (ferror(s->fp)) {
            s->line++;
            config_screen_fail(s, NULL, "cannot read: %s", strerror(errno));
        }
        return NULL;
    }
    s->line++;
    char *line = s->buf;
    size_t len = (size_t)n;
    if (strlen(line) != len) {
        config_screen_fail(s, NULL, "contains a NUL byte");
        return NULL;
    }
    size_t content = len;
    while (content > 0 && (line[content - 1] == '\n' || line[content - 1] == '\r'))
        content--;

    /* inih skips a UTF-8 byte order mark on the first line; so must we. */
    const char *text = line;
    if (s->line == 1 && content >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
        text += 3;
    const char *start = text;
    while (*start == ' ' || *start == '\t')
        start++;
    bool comment = *start == '#' || *start == ';' || (size_t)(start - line) == content;
    s->indented = !comment && start > text;

    /* inih needs room for "\r\n\0" beyond the text. */
    if (num < 4 || content > (size_t)num - 3) {
        if (comment) {
            snprintf(str, (size_t)num, "#\n");
            return str;
        }
        config_screen_fail(s, NULL,
                           "line is longer than %d characters; continue a list on indented "
                           "lines, or use the environment variable",
                           num > 3 ? num - 3 : 0);
        return NULL;
    }

    if (*start == '[' && !s->indented) {
        const char *close = strchr(start, ']');
        if (close != NULL) {
            char name[64];
            size_t nlen = (size_t)(close - start - 1);
            if (nlen >= sizeof name) {
                config_screen_fail(s, NULL, "unknown section");
                return NULL;
            }
            memcpy(name, start + 1, nlen);
            name[nlen] = '\0';
            if (!section_known(name)) {
                config_screen_fail(s, NULL, "[%s]: unknown section", name);
                return NULL;
            }
        }
        s->last = NULL;
    } else if (s->indented && s->last != NULL) {
        if (*start == '[') {
            config_screen_fail(s, NULL, "a [section] line must not be indented");
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
            if (key_known(key)) {
                config_screen_fail(s, NULL,
                                   "indented `%s =` would continue the previous value; "
                                   "remove the indentation",
                                   key);
                return NULL;
            }
        }
    }
    memcpy(str, line, content);
    str[content] = '\n';
    str[content + 1] = '\0';
    return str;
}

bool config_screen_parse(config_screen_t *s, const char *path, config_screen_handler on_value,
                         void *user, char *err, size_t errlen)
{
    *s = (config_screen_t){.path = path, .err = err, .errlen = errlen};
    s->fp = fopen(path, "re");
    if (s->fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    int rc = ini_parse_stream(read_line, s, on_value, user);
    fclose(s->fp);
    s->fp = NULL;
    /* The last lines read may have held a secret. */
    if (s->buf != NULL)
        explicit_bzero(s->buf, s->bufcap);
    free(s->buf);
    s->buf = NULL;

    if (rc > 0 && (!s->failed || rc < s->fail_line)) {
        snprintf(err, errlen, "%s:%d: not a `key = value` or `[section]` line", path, rc);
        return false;
    }
    if (rc == -2 && !s->failed) {
        snprintf(err, errlen, "%s: out of memory", path);
        return false;
    }
    return !s->failed && rc == 0;
}
