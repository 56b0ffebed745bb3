/*
 * Sliding-window limiters (see emu_limit.h): two queues of timestamps per
 * limiter, trimmed to the window on every use.
 */
#include "emu_limit.h"

#include <stdlib.h>
#include <string.h>

static void tsq_push(emu_tsq_t *q, int64_t t)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        int64_t *v = emu_xmalloc(cap * sizeof(int64_t));
        for (size_t i = 0; i < q->n; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->head = 0;
        q->cap = cap;
    }
    q->v[(q->head + q->n) % q->cap] = t;
    q->n++;
}

/* Drops timestamps at or before cutoff. */
static void tsq_trim(emu_tsq_t *q, int64_t cutoff)
{
    while (q->n && q->v[q->head] <= cutoff) {
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
}

void emu_limit_init(emu_limit_t *l, uint32_t limit, int64_t window_ms)
{
    memset(l, 0, sizeof(*l));
    l->limit = limit;
    l->window_ms = window_ms;
}

void emu_limit_free(emu_limit_t *l)
{
    free(l->admitted.v);
    free(l->arrived.v);
    memset(l, 0, sizeof(*l));
}

void emu_limit_arrive(emu_limit_t *l, int64_t now)
{
    tsq_trim(&l->arrived, now - l->window_ms);
    tsq_push(&l->arrived, now);
    l->seen++;
    if (l->arrived.n > l->peak)
        l->peak = l->arrived.n;
}

bool emu_limit_fits(emu_limit_t *l, int64_t now, int64_t *retry_ms)
{
    tsq_trim(&l->admitted, now - l->window_ms);
    if (l->limit == 0 || l->admitted.n < l->limit)
        return true;
    *retry_ms = l->admitted.v[l->admitted.head] + l->window_ms - now;
    return false;
}

void emu_limit_admit(emu_limit_t *l, int64_t now)
{
    tsq_push(&l->admitted, now);
    if (l->admitted.n > l->peak_admitted)
        l->peak_admitted = l->admitted.n;
}

bool emu_limit_parse(const char *spec, uint32_t *limit, int64_t *window_ms)
{
    const char *slash = strchr(spec, '/');
    uint64_t n, w;
    if (slash == NULL)
        return false;
    char *num = emu_xstrndup(spec, (size_t)(slash - spec));
    bool ok = emu_parse_u64(num, 100000000, &n);
    free(num);
    if (!ok)
        return false;
    const char *d = slash + 1;
    size_t len = strlen(d);
    int64_t scale = 1000;
    if (len > 2 && strcmp(d + len - 2, "ms") == 0) {
        scale = 1;
        len -= 2;
    } else if (len > 1 && d[len - 1] == 's') {
        len -= 1;
    }
    char *dur = emu_xstrndup(d, len);
    ok = emu_parse_u64(dur, 86400000, &w) && w > 0;
    free(dur);
    if (!ok)
        return false;
    *limit = (uint32_t)n;
    *window_ms = (int64_t)w * scale;
    return true;
}
