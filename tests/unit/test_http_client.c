/*
 * Unit tests for daemon/http_client.c's reading of Retry-After: both of
 * its forms, the bound on the wait whichever form says it, a date already
 * past, and values of neither form, which count as no Retry-After.
 */
#include <check.h>
#include <stdint.h>

#include "http_client.h"
#include "runner.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date. */
#define NOW ((time_t)784111777)
#define MAX_MS ((int64_t)HTTP_RETRY_AFTER_MAX_S * 1000)

static const struct {
    const char *value;
    int64_t want;
} cases[] = {
    {"120", 120000},
    {" 0\r\n", 0},
    {"\t7 ", 7000},
    {"86400", MAX_MS},
    {"86401", MAX_MS},
    {"99999999999999999999999", MAX_MS},
    {"Sun, 06 Nov 1994 08:49:47 GMT", 10000},
    {"Sun, 06 Nov 1994 08:49:37 GMT\r\n", 0},
    {"Sun, 06 Nov 1994 08:48:37 GMT", 0},      /* past: at once */
    {"Fri, 31 Dec 9999 23:59:59 GMT", MAX_MS}, /* no longer than the bound */
    {"Mon, 07 Nov 1994 08:49:37 GMT", MAX_MS}, /* exactly a day */
    {"Sun, 06 Nov 1994 09:49:37 GMT", 3600000},
    {"-5", -1},
    {"", -1},
    {" \r\n", -1},
    {"soon", -1},
    {"12abc", -1},
};

START_TEST(retry_after)
{
    ck_assert_msg(http_retry_after_ms(cases[_i].value, NOW) == cases[_i].want,
                  "\"%s\": got %lld, want %lld", cases[_i].value,
                  (long long)http_retry_after_ms(cases[_i].value, NOW), (long long)cases[_i].want);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("http_client");
    TCase *tc = tcase_create("retry_after");
    tcase_add_loop_test(tc, retry_after, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    suite_add_tcase(s, tc);
    return s;
}
