/*
 * Leveled logfmt logging to one stream. A line is assembled in a stack
 * buffer (priority or timestamp, level, escaped body, newline) and handed to
 * stdio in one fwrite followed by a flush, so concurrent writers never
 * interleave partial lines. Control characters in the body are escaped
 * because a log event must never span two lines: a newline smuggled in
 * through an error string or a payload would otherwise forge a new event.
 */
#include "log.h"

#include "clock.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* The formatted body is cut beyond this; the line buffer leaves room for escapes. */
#define LOG_BODY_MAX 4096
#define LOG_LINE_MAX 8192

static FILE *log_stream;
static bool log_journal;
static enum log_level log_level_current = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

/* syslog priorities, which journald reads from a `<N>` line prefix. */
static const char *const log_level_prio[] = {
    [LOG_LEVEL_ERROR] = "<3>",
    [LOG_LEVEL_WARN] = "<4>",
    [LOG_LEVEL_INFO] = "<6>",
    [LOG_LEVEL_DEBUG] = "<7>",
};

/*
 * systemd sets JOURNAL_STREAM to "<st_dev>:<st_ino>" of the journal socket;
 * it is inherited by children whose stderr may point elsewhere, so it only
 * counts when it names the very file our stream writes to.
 */
static bool stream_is_journal(FILE *stream)
{
    const char *env = getenv("JOURNAL_STREAM");
    if (env == NULL || *env == '\0')
        return false;
    int fd = fileno(stream);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return false;

    char *end;
    unsigned long long dev = strtoull(env, &end, 10);
    if (end == env || *end != ':')
        return false;
    const char *ino_text = end + 1;
    unsigned long long ino = strtoull(ino_text, &end, 10);
    if (end == ino_text || *end != '\0')
        return false;
    return dev == (unsigned long long)st.st_dev && ino == (unsigned long long)st.st_ino;
}

void log_init(FILE *stream)
{
    log_stream = stream != NULL ? stream : stderr;
    log_journal = stream_is_journal(log_stream);
}

void log_set_level(enum log_level level)
{
    if (level >= LOG_LEVEL_ERROR && level <= LOG_LEVEL_DEBUG)
        log_level_current = level;
}

enum log_level log_get_level(void)
{
    return log_level_current;
}

bool log_enabled(enum log_level level)
{
    return level <= log_level_current;
}

bool log_level_parse(const char *s, enum log_level *out)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < sizeof log_level_names / sizeof log_level_names[0]; i++) {
        if (strcasecmp(s, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return true;
    }
    return false;
}

const char *log_level_name(enum log_level level)
{
    if (level >= LOG_LEVEL_ERROR && level <= LOG_LEVEL_DEBUG)
        return log_level_names[level];
    return "unknown";
}

/*
 * Returns how many of the n bytes of s end on a whole UTF-8 character, so a
 * cut never leaves half a character for a log shipper to choke on.
 */
static size_t utf8_whole(const char *s, size_t n)
{
    size_t i = n;
    size_t back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want;
    if ((lead & 0xE0) == 0xC0)
        want = 2;
    else if ((lead & 0xF0) == 0xE0)
        want = 3;
    else if ((lead & 0xF8) == 0xF0)
        want = 4;
    else
        return n; /* ASCII, or not UTF-8 at all: nothing to protect */
    return back + 1 < want ? i - 1 : n;
}

/*
 * Writes the escaped form of byte c into out (at least 7 bytes) and returns
 * its length. `quote` also escapes `"` and `\`, as inside a quoted value.
 */
static size_t escape_byte(unsigned char c, bool quote, char *out)
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '\n':
        memcpy(out, "\\n", 2);
        return 2;
    case '\r':
        memcpy(out, "\\r", 2);
        return 2;
    case '\t':
        memcpy(out, "\\t", 2);
        return 2;
    case '"':
    case '\\':
        if (!quote)
            break;
        out[0] = '\\';
        out[1] = (char)c;
        return 2;
    default:
        if (c < 0x20 || c == 0x7f) {
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 0xF];
            return 6;
        }
        break;
    }
    out[0] = (char)c;
    return 1;
}

/*
 * Where a logfmt body stands after a byte, so that a cut can leave a line a
 * strict logfmt parser still reads: inside a key, just after its `=`, in a
 * bare value, in a quoted value (just after a backslash in it), or just after
 * a quoted value's closing quote.
 */
enum body_state { BODY_KEY, BODY_VALUE, BODY_BARE, BODY_QUOTED, BODY_ESCAPE, BODY_CLOSED };

static enum body_state body_step(enum body_state st, unsigned char c)
{
    switch (st) {
    case BODY_KEY:
        return c == '=' ? BODY_VALUE : BODY_KEY;
    case BODY_VALUE:
        return c == ' ' ? BODY_KEY : c == '"' ? BODY_QUOTED : BODY_BARE;
    case BODY_BARE:
    case BODY_CLOSED:
        return c == ' ' ? BODY_KEY : BODY_BARE;
    case BODY_QUOTED:
        return c == '\\' ? BODY_ESCAPE : c == '"' ? BODY_CLOSED : BODY_QUOTED;
    case BODY_ESCAPE:
        return BODY_QUOTED;
    }
    return st;
}

/* Room a cut needs after the kept text: " truncated=..." or `..."`, and "\n". */
#define LOG_CUT_ROOM 16

/*
 * Appends the escaped body[0..n) to line[len..limit) and returns the new
 * length. When it does not all fit, or `cut` says the body itself was cut,
 * the line ends where logfmt allows: a value being written is cut at a
 * character boundary, never inside an escape, and ends in "..." (inside its
 * quotes, which are closed); a cut inside a key drops that key and ends the
 * line with the field `truncated=...`. The caller leaves LOG_CUT_ROOM bytes
 * beyond `limit`.
 */
static size_t body_copy(char *line, size_t len, size_t limit, const char *body, size_t n, bool cut)
{
    const size_t start = len;
    enum body_state st = BODY_KEY;
    size_t field = len; /* where the current field starts (its separator, if any) */
    size_t value = len; /* where the current value's text starts */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)body[i];
        char unit[8];
        size_t ulen = escape_byte(c, false, unit);
        if (len + ulen > limit) {
            cut = true;
            break;
        }
        memcpy(line + len, unit, ulen);
        enum body_state next = body_step(st, c);
        if (next == BODY_KEY && st != BODY_KEY)
            field = len;
        if (st == BODY_VALUE)
            value = next == BODY_QUOTED ? len + 1 : len;
        len += ulen;
        st = next;
    }
    if (!cut)
        return len;

    switch (st) {
    case BODY_ESCAPE:
        len--; /* the lone backslash would escape the closing quote */
        /* fall through */
    case BODY_QUOTED:
    case BODY_CLOSED:
        if (st == BODY_CLOSED)
            len--; /* reopen: the value is cut, so it says so */
        len = value + utf8_whole(line + value, len - value);
        memcpy(line + len, "...\"", 4);
        return len + 4;
    case BODY_BARE:
        len = value + utf8_whole(line + value, len - value);
        memcpy(line + len, "...", 3);
        return len + 3;
    case BODY_KEY:
    case BODY_VALUE:
        break;
    }
    static const char marker[] = " truncated=...";
    size_t skip = field == start ? 1 : 0; /* no separator before a first field */
    len = field;
    memcpy(line + len, marker + skip, sizeof marker - 1 - skip);
    return len + sizeof marker - 1 - skip;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char body[LOG_BODY_MAX];
    char line[LOG_LINE_MAX];
    FILE *out = log_stream != NULL ? log_stream : stderr;
    if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
        level = LOG_LEVEL_ERROR;

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    bool cut = false;
    size_t body_len;
    if (n < 0) {
        body_len = 0;
        cut = true;
    } else if ((size_t)n >= sizeof body) {
        body_len = utf8_whole(body, sizeof body - 1);
        cut = true;
    } else {
        body_len = (size_t)n;
    }

    size_t len = 0;
    if (log_journal) {
        len = (size_t)snprintf(line, sizeof line, "%slevel=%s ", log_level_prio[level],
                               log_level_names[level]);
    } else {
        char ts[CLOCK_ISO8601_LEN];
        len = (size_t)snprintf(line, sizeof line, "ts=%s level=%s ",
                               clock_format_iso8601(clock_wall_ms(), ts), log_level_names[level]);
    }

    len = body_copy(line, len, sizeof line - LOG_CUT_ROOM, body, body_len, cut);
    line[len++] = '\n';

    fwrite(line, 1, len, out);
    fflush(out);
}

static bool needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f)
            return true;
    }
    return false;
}

const char *log_quote(char *buf, size_t len, const char *s)
{
    if (len == 0)
        return "";
    if (s == NULL)
        s = "-";
    bool quote = needs_quotes(s);

    size_t need = quote ? 2 : 0;
    char unit[8];
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        need += escape_byte(*p, quote, unit);
    bool cut = need + 1 > len;

    /* What must fit after the content: the dots, the closing quote, the NUL. */
    size_t tail = (cut ? 3 : 0) + (quote ? 1 : 0) + 1;
    size_t head = quote ? 1 : 0;
    if (head + tail > len) {
        buf[0] = '\0';
        return buf;
    }

    size_t o = 0;
    if (quote)
        buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t ulen = escape_byte(*p, quote, unit);
        if (o + ulen + tail > len)
            break;
        memcpy(buf + o, unit, ulen);
        o += ulen;
    }
    if (cut) {
        o = head + utf8_whole(buf + head, o - head);
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    if (quote)
        buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

const char *log_q(const char *s)
{
    static char slots[LOG_Q_SLOTS][LOG_Q_LEN];
    static unsigned next;
    char *buf = slots[next++ % LOG_Q_SLOTS];
    return log_quote(buf, LOG_Q_LEN, s);
}
