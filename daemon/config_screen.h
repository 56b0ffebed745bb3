/*
 * The line screen around libinih. inih reads INI syntax through a line
 * reader of ours, so the loader always knows the line a value came from and
 * can refuse what inih would mishandle: lines longer than its fixed buffer
 * (it would split them in two), unknown sections (it reports only keys),
 * indented `key =` lines (it would read them as a continuation of the
 * previous value), NUL bytes. The screen also records the first error of a
 * file as `FILE:LINE: [section] key: problem`, whether the screen or the
 * loader's value handler found it.
 */
#ifndef WORKOS_SYNCD_CONFIG_SCREEN_H
#define WORKOS_SYNCD_CONFIG_SCREEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "wur.h"

/*
 * Called by inih for each `key = value` and for each continuation line of a
 * value (then `key` repeats the key above): returns nonzero to go on, 0 to
 * stop. The same shape as inih's ini_handler.
 */
typedef int (*config_screen_handler)(void *user, const char *section, const char *key,
                                     const char *value);

typedef struct config_screen {
    const char *path;            /* file being read, for messages */
    char *err;                   /* where the first error goes */
    size_t errlen;               /* size of err */
    bool failed;                 /* an error has been recorded */
    int fail_line;               /* line of the recorded error */
    int line;                    /* line handed to inih last, 1-based */
    bool indented;               /* that line starts with a blank: a continuation for inih */
    const config_option_t *last; /* option set by the previous key line of this section;
                                    the handler sets it, a [section] line clears it */
    FILE *fp;
    char *buf; /* the line as read; wiped, as it may hold a secret */
    size_t bufcap;
} config_screen_t;

/*
 * Reads the INI file at `path` through the screen, calling on_value(user,
 * ...) for each value; on_value reaches the screen (line, indented, last,
 * config_screen_fail) through its own state. *s is overwritten. Returns true
 * when every line was read and every call succeeded; otherwise writes one
 * line into err[errlen] -- the first error recorded by config_screen_fail(),
 * or a syntax error, open or read failure -- and returns false. The read
 * buffer is wiped before it is freed.
 */
bool config_screen_parse(config_screen_t *s, const char *path, config_screen_handler on_value,
                         void *user, char *err, size_t errlen) WUR;

/*
 * Records the first error of the file as `FILE:LINE: [section] key: ` (or
 * `FILE:LINE: ` when o is NULL) followed by the formatted problem, tied to
 * the line being read. Later calls are ignored; the screen then stops
 * reading.
 */
void config_screen_fail(config_screen_t *s, const config_option_t *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
