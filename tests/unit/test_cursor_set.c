/*
 * Unit tests for daemon/cursor_set.c: what is added is found and nothing
 * else is, adding twice costs once, the budget stops new cursors but keeps
 * the first ones, an enormous cursor is refused whole, and clearing empties
 * the set for reuse.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor_set.h"
#include "runner.h"

/* A cursor shaped like WorkOS' (an object id), numbered. */
static const char *cursor_n(char *buf, size_t len, int n)
{
    snprintf(buf, len, "user_01KDVF1BNANKEJSP2%09d", n);
    return buf;
}

START_TEST(finds_what_was_added)
{
    cursor_set_t s = {0};
    ck_assert(!cursor_set_has(&s, "a"));
    ck_assert(cursor_set_add(&s, "a"));
    ck_assert(cursor_set_add(&s, "b"));
    ck_assert(cursor_set_has(&s, "a"));
    ck_assert(cursor_set_has(&s, "b"));
    ck_assert(!cursor_set_has(&s, "c"));
    ck_assert(!cursor_set_has(&s, ""));
    ck_assert(!cursor_set_has(&s, "ab"));
    cursor_set_clear(&s);
}
END_TEST

START_TEST(adding_twice_costs_once)
{
    cursor_set_t s = {0};
    ck_assert(cursor_set_add(&s, "user_01"));
    size_t once = s.bytes;
    ck_assert_uint_gt(once, 0);
    ck_assert(cursor_set_add(&s, "user_01"));
    ck_assert_uint_eq(s.bytes, once);
    cursor_set_clear(&s);
}
END_TEST

START_TEST(budget_keeps_the_first)
{
    cursor_set_t s = {0};
    char buf[64];
    int n = 0;
    while (cursor_set_add(&s, cursor_n(buf, sizeof(buf), n)))
        n++;
    /* About 10,000 cursors of this size fit; each of them is still there. */
    ck_assert_int_gt(n, 5000);
    ck_assert_int_lt(n, 20000);
    ck_assert_uint_le(s.bytes, CURSOR_SET_BUDGET);
    for (int i = 0; i < n; i++)
        ck_assert(cursor_set_has(&s, cursor_n(buf, sizeof(buf), i)));
    ck_assert(!cursor_set_has(&s, cursor_n(buf, sizeof(buf), n)));
    ck_assert(!cursor_set_add(&s, cursor_n(buf, sizeof(buf), n + 1)));
    /* One already there is still "added". */
    ck_assert(cursor_set_add(&s, cursor_n(buf, sizeof(buf), 0)));
    cursor_set_clear(&s);
}
END_TEST

START_TEST(enormous_cursor_refused)
{
    cursor_set_t s = {0};
    size_t len = CURSOR_SET_BUDGET;
    char *big = malloc(len + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', len);
    big[len] = '\0';
    ck_assert(!cursor_set_add(&s, big));
    ck_assert(!cursor_set_has(&s, big));
    ck_assert_uint_eq(s.bytes, 0);
    ck_assert(cursor_set_add(&s, "user_01"));
    free(big);
    cursor_set_clear(&s);
}
END_TEST

START_TEST(clear_empties_for_reuse)
{
    cursor_set_t s = {0};
    char buf[64];
    for (int n = 0; cursor_set_add(&s, cursor_n(buf, sizeof(buf), n)); n++)
        ;
    cursor_set_clear(&s);
    ck_assert_ptr_null(s.root);
    ck_assert_uint_eq(s.bytes, 0);
    ck_assert(!cursor_set_has(&s, cursor_n(buf, sizeof(buf), 0)));
    ck_assert(cursor_set_add(&s, cursor_n(buf, sizeof(buf), 0)));
    cursor_set_clear(&s);
    cursor_set_clear(&s); /* clearing an empty set is harmless */
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("cursor_set");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, finds_what_was_added);
    tcase_add_test(tc, adding_twice_costs_once);
    tcase_add_test(tc, budget_keeps_the_first);
    tcase_add_test(tc, enormous_cursor_refused);
    tcase_add_test(tc, clear_empties_for_reuse);
    suite_add_tcase(s, tc);
    return s;
}
