/*
 * clock: the daemon's one notion of time.  Monotonic milliseconds for
 * deadlines and rates, wall-clock milliseconds for what is compared with
 * other machines (webhook timestamps, event times), libevent timevals, and
 * the single ISO 8601 parser that config values and event payloads share.
 */
#ifndef WORKOS_SYNCD_CLOCK_H
#define WORKOS_SYNCD_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "wur.h"

/* Milliseconds on CLOCK_MONOTONIC: for intervals, never for dates. */
int64_t clock_mono_ms(void);

/* Microseconds on CLOCK_MONOTONIC: for timing short operations (a commit). */
int64_t clock_mono_us(void);

/* Milliseconds since the Unix epoch on CLOCK_REALTIME. */
int64_t clock_wall_ms(void);

/* `ms` (negative counts as 0) as a struct timeval for event_add(). */
struct timeval clock_timeval(int64_t ms);

/*
 * Parses an ISO 8601 / RFC 3339 timestamp with a date, a time, an optional
 * fraction of up to nine digits and a zone (Z, +hh:mm, +hhmm or +hh, with
 * hh at most 15).  Accepts exactly what PostgreSQL's timestamptz input
 * accepts of that form, so a value that passes here never makes a statement
 * fail.  Stores milliseconds since the epoch in *ms and returns true;
 * returns false, leaving *ms alone, for anything else.
 */
bool clock_parse_iso8601(const char *s, int64_t *ms) WUR;

/* Room for clock_format_iso8601's text and its NUL. */
#define CLOCK_ISO8601_LEN 32

/*
 * `ms` since the epoch as UTC with milliseconds, 2026-01-31T08:15:00.250Z,
 * into out (CLOCK_ISO8601_LEN bytes); the text clock_parse_iso8601 reads
 * back to the same `ms`.  Returns out.
 */
const char *clock_format_iso8601(int64_t ms, char *out);

#endif
