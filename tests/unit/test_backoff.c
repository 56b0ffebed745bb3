/*
 * Unit tests for daemon/backoff.c: every wait stays within
 * [0, min(cap, base * 2^attempt)], the spread is really uniform, reset
 * starts over, seeds reproduce, and nothing overflows however long the
 * outage lasts.
 */
#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

#include "backoff.h"
#include "runner.h"

static int64_t ceiling_for(int64_t base, int64_t cap, unsigned attempt)
{
    int64_t c = base;
    for (unsigned i = 0; i < attempt && c < cap; i++)
        c = c > cap / 2 ? cap : c * 2;
    return c < cap ? c : cap;
}

static const struct {
    int64_t base, cap;
} bound_cases[] = {
    {100, 10000},
    {1, 1},
    {250, 60000},
    {1000, 1000},
    {7, 1000000},
    {0, 5000},
    {INT64_MAX / 3, INT64_MAX},
    {1, INT64_MAX},
};

START_TEST(bounds)
{
    backoff_t b;
    backoff_init(&b, bound_cases[_i].base, bound_cases[_i].cap);
    backoff_seed(&b, 1234 + (uint64_t)_i);
    for (unsigned a = 0; a < 80; a++) {
        int64_t want_max = ceiling_for(bound_cases[_i].base, bound_cases[_i].cap, a);
        int64_t v = backoff_next(&b);
        ck_assert_msg(v >= 0 && v <= want_max, "attempt %u: %lld not in [0, %lld]", a, (long long)v,
                      (long long)want_max);
        ck_assert_uint_eq(b.attempt, a + 1);
    }
}
END_TEST

START_TEST(init_clamps)
{
    backoff_t b;
    backoff_init(&b, -5, -10);
    ck_assert_int_eq(b.base_ms, 0);
    ck_assert_int_eq(b.cap_ms, 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(backoff_next(&b), 0);

    backoff_init(&b, 500, 100);
    ck_assert_int_eq(b.cap_ms, 500);
    ck_assert_int_eq(b.attempt, 0);
}
END_TEST

/* Once the ceiling reaches the cap, draws cover [0, cap] and never exceed it. */
START_TEST(cap_reached)
{
    backoff_t b;
    backoff_init(&b, 100, 3000);
    backoff_seed(&b, 42);
    int64_t lo = INT64_MAX, hi = -1;
    for (int i = 0; i < 20000; i++) {
        int64_t v = backoff_next(&b);
        if (i < 6)
            continue; /* 100 * 2^5 = 3200: capped from the sixth draw on */
        ck_assert_int_le(v, 3000);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    ck_assert_int_le(lo, 10);
    ck_assert_int_ge(hi, 2990);
}
END_TEST

/* Full jitter: draws at one ceiling are spread evenly over [0, ceiling]. */
START_TEST(jitter_spread)
{
    enum { N = 40000, BUCKETS = 10 };
    backoff_t b;
    backoff_init(&b, 1000, 1000);
    backoff_seed(&b, 7);
    int counts[BUCKETS] = {0};
    double sum = 0;
    int distinct = 0;
    static unsigned char seen[1001];
    for (int i = 0; i < N; i++) {
        int64_t v = backoff_next(&b);
        ck_assert(v >= 0 && v <= 1000);
        sum += (double)v;
        counts[v == 1000 ? BUCKETS - 1 : v / 100]++;
        if (!seen[v]++)
            distinct++;
    }
    double mean = sum / N;
    ck_assert_msg(mean > 485 && mean < 515, "mean %f", mean);
    for (int k = 0; k < BUCKETS; k++)
        ck_assert_msg(counts[k] > N / BUCKETS * 9 / 10 && counts[k] < N / BUCKETS * 11 / 10,
                      "bucket %d has %d", k, counts[k]);
    ck_assert_int_gt(distinct, 990);
}
END_TEST

START_TEST(reset_starts_over)
{
    backoff_t b;
    backoff_init(&b, 100, 100000);
    for (int i = 0; i < 30; i++)
        (void)backoff_next(&b);
    ck_assert_uint_eq(b.attempt, 30);
    backoff_reset(&b);
    ck_assert_uint_eq(b.attempt, 0);
    for (int i = 0; i < 1000; i++) {
        backoff_reset(&b);
        ck_assert_int_le(backoff_next(&b), 100);
    }
    backoff_reset(&b);
    (void)backoff_next(&b);
    ck_assert_int_le(backoff_next(&b), 200);
}
END_TEST

START_TEST(seed_reproduces)
{
    backoff_t a, b, c;
    backoff_init(&a, 50, 1 << 20);
    backoff_init(&b, 50, 1 << 20);
    backoff_init(&c, 50, 1 << 20);
    backoff_seed(&a, 99);
    backoff_seed(&b, 99);
    backoff_seed(&c, 100);
    int same_as_c = 0;
    for (int i = 0; i < 40; i++) {
        int64_t va = backoff_next(&a);
        ck_assert_int_eq(va, backoff_next(&b));
        same_as_c += va == backoff_next(&c);
    }
    ck_assert_int_lt(same_as_c, 10);

    /* Zero is a valid seed, not a stuck generator. */
    backoff_seed(&a, 0);
    backoff_reset(&a);
    for (int i = 0; i < 12; i++)
        (void)backoff_next(&a);
    int64_t first = backoff_next(&a);
    bool varies = false;
    for (int i = 0; i < 20 && !varies; i++)
        varies = backoff_next(&a) != first;
    ck_assert(varies);
}
END_TEST

static const struct {
    int64_t base, cap;
} overflow_cases[] = {
    {1000, 300000}, {1, INT64_MAX}, {INT64_MAX, INT64_MAX}, {INT64_MAX / 2 + 1, INT64_MAX}, {3, 5},
};

START_TEST(no_overflow)
{
    backoff_t b;
    backoff_init(&b, overflow_cases[_i].base, overflow_cases[_i].cap);
    for (unsigned a = 0; a < 200; a++) {
        int64_t v = backoff_next(&b);
        ck_assert(v >= 0 && v <= overflow_cases[_i].cap);
    }
    ck_assert_uint_eq(b.attempt, 200);

    /* The attempt counter itself saturates. */
    b.attempt = UINT_MAX - 1;
    for (int i = 0; i < 3; i++) {
        int64_t v = backoff_next(&b);
        ck_assert(v >= 0 && v <= overflow_cases[_i].cap);
    }
    ck_assert_uint_eq(b.attempt, UINT_MAX);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *unit_suite(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, bounds, 0, N(bound_cases));
    tcase_add_test(tc, init_clamps);
    tcase_add_test(tc, cap_reached);
    tcase_add_test(tc, jitter_spread);
    tcase_add_test(tc, reset_starts_over);
    tcase_add_test(tc, seed_reproduces);
    tcase_add_loop_test(tc, no_overflow, 0, N(overflow_cases));
    suite_add_tcase(s, tc);
    return s;
}
