/*
 * Full-jitter exponential backoff. The random source is splitmix64: tiny,
 * fine for spreading retries, and valid from any seed including 0. Draws are
 * unbiased (rejection sampling) so the documented distribution is the real one.
 */
#include "backoff.h"

#include <limits.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound], without the bias a plain modulo would add. */
static uint64_t uniform_upto(uint64_t *state, uint64_t bound)
{
    if (bound == UINT64_MAX)
        return splitmix64(state);
    uint64_t span = bound + 1;
    uint64_t reject_from = UINT64_MAX - UINT64_MAX % span;
    uint64_t r;
    do {
        r = splitmix64(state);
    } while (r >= reject_from);
    return r % span;
}

void backoff_init(backoff_t *b, int64_t base_ms, int64_t cap_ms)
{
    if (base_ms < 0)
        base_ms = 0;
    if (cap_ms < base_ms)
        cap_ms = base_ms;
    b->base_ms = base_ms;
    b->cap_ms = cap_ms;
    b->attempt = 0;

    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        seed = (uint64_t)clock_wall_ms() ^ ((uint64_t)clock_mono_ms() << 20) ^
               ((uint64_t)getpid() << 40);
    }
    b->rng = seed;
}

void backoff_seed(backoff_t *b, uint64_t seed)
{
    b->rng = seed;
}

int64_t backoff_next(backoff_t *b)
{
    int64_t base = b->base_ms > 0 ? b->base_ms : 0;
    int64_t cap = b->cap_ms > base ? b->cap_ms : base;

    /* base * 2^attempt, computed by comparing against cap first so it cannot overflow. */
    int64_t ceiling = cap;
    if (base == 0)
        ceiling = 0;
    else if (b->attempt < 63 && base <= (cap >> b->attempt))
        ceiling = base << b->attempt;

    if (b->attempt < UINT_MAX)
        b->attempt++;
    return (int64_t)uniform_upto(&b->rng, (uint64_t)ceiling);
}

void backoff_reset(backoff_t *b)
{
    b->attempt = 0;
}
