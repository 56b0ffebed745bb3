/*
 * Exponential backoff with full jitter for retrying the WorkOS API and
 * reconnecting to PostgreSQL. The n-th wait is drawn uniformly from
 * [0, min(cap, base * 2^n)], which spreads out clients that failed together
 * instead of letting them retry in lock-step. Pure arithmetic on a caller-
 * owned struct; the only outside input is the seed.
 */
#ifndef WORKOS_SYNCD_BACKOFF_H
#define WORKOS_SYNCD_BACKOFF_H

#include <stdint.h>

typedef struct backoff {
    int64_t base_ms;  /* ceiling of the first wait */
    int64_t cap_ms;   /* no wait is ever longer */
    unsigned attempt; /* waits handed out since the last reset */
    uint64_t rng;     /* generator state */
} backoff_t;

/*
 * Prepares *b with the given base and cap (negative values count as 0; a cap
 * below the base is raised to the base) and seeds it from getrandom(), or
 * from the clock and pid when that fails.
 */
void backoff_init(backoff_t *b, int64_t base_ms, int64_t cap_ms);

/* Replaces the seed, for reproducible sequences in tests. */
void backoff_seed(backoff_t *b, uint64_t seed);

/*
 * Returns the next wait in milliseconds, uniform in
 * [0, min(cap_ms, base_ms * 2^attempt)], and counts the attempt. Safe to call
 * any number of times: the ceiling saturates at the cap.
 */
int64_t backoff_next(backoff_t *b);

/* Starts over from the first attempt, after a success. */
void backoff_reset(backoff_t *b);

#endif
