/*
 * Sliding-window rate limiters for the emulator's API. Each limiter admits
 * at most `limit` requests in any window of `window_ms` (refused requests do
 * not count against it) and records, whether it enforces anything or not,
 * the most requests that arrived — and that were admitted — in any such
 * window, so a test can check that a client paced itself under a limit.
 */
#ifndef EMU_LIMIT_H
#define EMU_LIMIT_H

#include "emu_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Timestamps (monotonic ms) in arrival order, oldest first. */
typedef struct {
    int64_t *v;
    size_t head, n, cap;
} emu_tsq_t;

typedef struct {
    uint32_t limit; /* 0: never refuses */
    int64_t window_ms;
    emu_tsq_t admitted, arrived;
    uint64_t seen, peak, peak_admitted, limited;
} emu_limit_t;

/* Sets up l with the given limit and window; window_ms must be > 0. */
void emu_limit_init(emu_limit_t *l, uint32_t limit, int64_t window_ms);

/* Releases l's memory; accepts a zeroed limiter. */
void emu_limit_free(emu_limit_t *l);

/* Records one arrival at now (for the peak). */
void emu_limit_arrive(emu_limit_t *l, int64_t now);

/* True when a request at now fits under the limit; otherwise *retry_ms is
 * how long until it would. Changes nothing but expired bookkeeping. */
bool emu_limit_fits(emu_limit_t *l, int64_t now, int64_t *retry_ms);

/* Counts a request admitted at now. */
void emu_limit_admit(emu_limit_t *l, int64_t now);

/* Parses "N/W" with W a duration: "60s", "10s", "500ms" or plain seconds
 * ("60"). */
bool emu_limit_parse(const char *spec, uint32_t *limit, int64_t *window_ms) EMU_WUR;

#endif
