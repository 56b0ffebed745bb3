/*
 * Leveled logfmt logging. Every call writes exactly one line,
 * `ts=... level=... <body>`, to one stream (stderr in the daemon), with a
 * single write so lines from different callers never interleave. Under
 * systemd-journald the timestamp is left to the journal and the line carries
 * a syslog priority prefix instead. The level macros test the level before
 * their arguments are evaluated, so a disabled debug line costs one compare.
 */
#ifndef WORKOS_SYNCD_LOG_H
#define WORKOS_SYNCD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "wur.h"

enum log_level {
    LOG_LEVEL_ERROR, /* something failed and needs an operator */
    LOG_LEVEL_WARN,  /* something failed and is being retried or worked around */
    LOG_LEVEL_INFO,  /* normal milestones: start, stop, pages applied */
    LOG_LEVEL_DEBUG, /* per-request detail for troubleshooting */
};

/*
 * Sends log lines to `stream` (stderr when NULL); the stream is borrowed and
 * must outlive all logging. If $JOURNAL_STREAM names the same file as the
 * stream's descriptor, lines get a `<N>` syslog priority prefix and no ts=
 * field. Before the first call, lines go to stderr without journal detection.
 */
void log_init(FILE *stream);

/* Sets the most verbose level that is written. The default is LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);

/* Returns the current level. */
enum log_level log_get_level(void);

/* Returns true when lines of `level` are written at the current level. */
bool log_enabled(enum log_level level);

/*
 * Parses "error", "warn" (or "warning"), "info" or "debug", in any case,
 * into *out. Returns false, leaving *out alone, for anything else.
 */
bool log_level_parse(const char *s, enum log_level *out) WUR;

/* Returns the lower-case name of `level` ("info"), or "unknown". */
const char *log_level_name(enum log_level level);

/*
 * Formats and writes one line at `level`, whatever the current level (the
 * macros below do the filtering). `fmt` produces the logfmt body; control
 * characters in the result are escaped (a newline becomes `\n`) so the event
 * stays on one line. An overlong body is cut where logfmt allows, so the
 * line still parses: the value being written when room ran out ends in "..."
 * (inside its closing quote when quoted, never inside an escape or a UTF-8
 * character); a cut that falls in a key drops that key and ends the line
 * with the field `truncated=...`.
 */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Renders `s` as a logfmt value into buf[len] and returns buf: bare when it
 * has no space, quote, '=' or control character, otherwise double-quoted
 * with `"` `\` and control characters backslash-escaped. NULL renders as
 * `-`, the empty string as `""`. A value that does not fit is cut at a
 * character boundary and ends in "..." (and its closing quote). Returns ""
 * when len is 0. Never pass a secret.
 */
const char *log_quote(char *buf, size_t len, const char *s);

/*
 * log_quote into one of LOG_Q_SLOTS static buffers of LOG_Q_LEN bytes,
 * reused round-robin: the result stays valid for the next LOG_Q_SLOTS - 1
 * calls, so one line may quote up to LOG_Q_SLOTS values.  This is how every
 * value that did not come from the daemon's own constants reaches a line:
 *
 *     log_warn("event=apply_failed id=%s error=%s", log_q(id), log_q(err));
 *
 * The daemon is single-threaded; so is this.  Never pass a secret.
 */
#define LOG_Q_SLOTS 8
#define LOG_Q_LEN 512
const char *log_q(const char *s);

#define log_error(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_ERROR))                                                          \
            log_write(LOG_LEVEL_ERROR, __VA_ARGS__);                                               \
    } while (0)
#define log_warn(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_WARN))                                                           \
            log_write(LOG_LEVEL_WARN, __VA_ARGS__);                                                \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_INFO))                                                           \
            log_write(LOG_LEVEL_INFO, __VA_ARGS__);                                                \
    } while (0)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);                                               \
    } while (0)

#endif
