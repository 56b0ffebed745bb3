/*
 * Unit tests for daemon/poller_page.c: out of memory while a page of the
 * Events API is read never lets the cursor move past an event that was
 * not taken.  The allocations are made to fail through the linker
 * (-Wl,--wrap=event_batch_new,--wrap=event_batch_add, see unit.mk): the
 * __wrap_ functions below fail on demand and otherwise call event.c's own.
 * A failure must abort the process -- before poller_page_read() returns a
 * cursor -- and with allocation working the same page is taken whole.
 *
 * The tail: a fetch window's first page may repeat the events the window
 * before it ended with (their boundaries overlap by a millisecond); those
 * repeats are dropped and the page still follows, while an event from
 * further back is still an order failure.
 *
 * The abort cases need Check's fork mode: with CK_FORK=no (as under
 * `make unit-valgrind`) a raised signal would end the whole run, so they
 * are left out then and only the whole-page case runs.
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event.h"
#include "http_client.h"
#include "poller_page.h"
#include "poller_types.h"
#include "runner.h"

event_batch_t *__real_event_batch_new(void);
event_status_t __real_event_batch_add(event_batch_t *b, cJSON *envelope, char *why, size_t whylen);
event_batch_t *__wrap_event_batch_new(void);
event_status_t __wrap_event_batch_add(event_batch_t *b, cJSON *envelope, char *why, size_t whylen);

static bool fail_new;   /* the next event_batch_new() returns NULL */
static int fail_add_at; /* event_batch_add() call (1-based) that reports EVENT_NOMEM; 0: none */
static int add_calls;   /* event_batch_add() calls so far */

event_batch_t *__wrap_event_batch_new(void)
{
    return fail_new ? NULL : __real_event_batch_new();
}

event_status_t __wrap_event_batch_add(event_batch_t *b, cJSON *envelope, char *why, size_t whylen)
{
    if (++add_calls == fail_add_at) {
        /* What event_batch_add() does with the envelope when it runs short. */
        cJSON_Delete(envelope);
        return EVENT_NOMEM;
    }
    return __real_event_batch_add(b, envelope, why, whylen);
}

#define EV(id, t)                                                                                  \
    "{\"object\":\"event\",\"id\":\"" id "\",\"event\":\"user.created\",\"created_at\":\"" t       \
    "\",\"data\":{\"object\":\"user\",\"id\":\"user_" id "\",\"email\":\"" id "@example.com\","    \
    "\"created_at\":\"" t "\",\"updated_at\":\"" t "\"}}"

/* A page of three events, as the Events API answers it. */
#define EV1 EV("event_01", "2026-01-01T00:00:01.000Z")
#define EV2 EV("event_02", "2026-01-01T00:00:02.000Z")
#define EV3 EV("event_03", "2026-01-01T00:00:03.000Z")
static const char page_body[] = "{\"object\":\"list\",\"data\":[" EV1 "," EV2 "," EV3 "],"
                                "\"list_metadata\":{\"before\":null,\"after\":\"event_03\"}}";

static void reset_faults(void)
{
    fail_new = false;
    fail_add_at = 0;
    add_calls = 0;
}

/* Reads `body` as poller.c does, with `tail`; returns what poller_page_read() returned. */
static poller_event_t read_body(const char *body, poller_page_tail_t *tail, event_batch_t **pending,
                                int64_t *last_ms, poller_page_result_t *out)
{
    poller_page_seen_t seen = {.n = 0};
    http_response_t resp = {.transport_ok = true,
                            .status = 200,
                            .body = body,
                            .len = strlen(body),
                            .retry_after_ms = -1,
                            .error = NULL,
                            .elapsed_ms = 1};
    char reason[256] = "";
    poller_event_t ev =
        poller_page_read(&seen, tail, &resp, pending, last_ms, out, reason, sizeof(reason));
    poller_page_seen_free(&seen);
    return ev;
}

/* Reads page_body with a tail of its own. */
static poller_event_t read_page(event_batch_t **pending, int64_t *last_ms,
                                poller_page_result_t *out)
{
    poller_page_tail_t tail = {0};
    poller_event_t ev = read_body(page_body, &tail, pending, last_ms, out);
    poller_page_tail_free(&tail);
    return ev;
}

/* The next window's first page: event_03 again (same millisecond as its
 * twin), event_03b in the same millisecond, then event_04. */
#define EV3B EV("event_03b", "2026-01-01T00:00:03.000Z")
#define EV4 EV("event_04", "2026-01-01T00:00:04.000Z")
static const char next_window_page[] = "{\"object\":\"list\",\"data\":[" EV3 "," EV3B "," EV4 "],"
                                       "\"list_metadata\":{\"before\":null,\"after\":null}}";
/* A page that starts two seconds back: not a repeat of the tail. */
static const char older_page[] = "{\"object\":\"list\",\"data\":[" EV1 "," EV4 "],"
                                 "\"list_metadata\":{\"before\":null,\"after\":null}}";

/* A window's repeat of the last event taken is dropped; the rest is taken in order. */
START_TEST(test_window_repeat_dropped)
{
    reset_faults();
    poller_page_tail_t tail = {0};
    event_batch_t *pending = NULL;
    int64_t last_ms = 0;
    poller_page_result_t out;
    ck_assert_int_eq(read_body(page_body, &tail, &pending, &last_ms, &out), POLLER_EV_PAGE_SHORT);
    ck_assert_uint_eq(out.repeated, 0);
    free(out.after);
    ck_assert_int_eq(read_body(next_window_page, &tail, &pending, &last_ms, &out),
                     POLLER_EV_PAGE_SHORT);
    ck_assert_uint_eq(out.repeated, 1);
    ck_assert_uint_eq(out.n, 3); /* as listed: a full page still means more may follow */
    ck_assert_str_eq(out.after, "event_04");
    ck_assert_uint_eq(pending->n_events, 5);
    ck_assert_str_eq(pending->last_id, "event_04");
    free(out.after);

    /* The same page once more: every event is now a repeat or older than the tail. */
    ck_assert_int_eq(read_body(next_window_page, &tail, &pending, &last_ms, &out),
                     POLLER_EV_FETCH_FAILED);
    ck_assert(out.older);
    ck_assert_uint_eq(out.repeated, 1); /* event_04 only: the others left the tail */
    ck_assert_uint_eq(pending->n_events, 5);
    event_batch_free(pending);
    poller_page_tail_free(&tail);
}
END_TEST

/* An event from before the overlap is no repeat: the page is out of order. */
START_TEST(test_older_than_tail_refused)
{
    reset_faults();
    poller_page_tail_t tail = {0};
    event_batch_t *pending = NULL;
    int64_t last_ms = 0;
    poller_page_result_t out;
    ck_assert_int_eq(read_body(page_body, &tail, &pending, &last_ms, &out), POLLER_EV_PAGE_SHORT);
    free(out.after);
    ck_assert_int_eq(read_body(older_page, &tail, &pending, &last_ms, &out),
                     POLLER_EV_FETCH_FAILED);
    ck_assert(out.older);
    ck_assert_uint_eq(out.repeated, 0);
    ck_assert_ptr_null(out.after);
    ck_assert_uint_eq(pending->n_events, 3);
    event_batch_free(pending);
    poller_page_tail_free(&tail);
}
END_TEST

/*
 * A page whose created_at steps back by less than the skew, within it or
 * from the page before, is taken whole and says that it stepped back; one
 * that ascends does not.
 */
#define EV5 EV("event_05", "2026-01-01T00:00:04.600Z")
#define EV6 EV("event_06", "2026-01-01T00:00:04.300Z")
#define EV7 EV("event_07", "2026-01-01T00:00:04.200Z")
static const char stepping_page[] = "{\"object\":\"list\",\"data\":[" EV4 "," EV5 "," EV6 "],"
                                    "\"list_metadata\":{\"before\":null,\"after\":null}}";
static const char behind_page[] = "{\"object\":\"list\",\"data\":[" EV7 "],"
                                  "\"list_metadata\":{\"before\":null,\"after\":null}}";
START_TEST(test_step_back_taken)
{
    reset_faults();
    poller_page_tail_t tail = {0};
    event_batch_t *pending = NULL;
    int64_t last_ms = 0;
    poller_page_result_t out;
    ck_assert_int_eq(read_body(page_body, &tail, &pending, &last_ms, &out), POLLER_EV_PAGE_SHORT);
    ck_assert(!out.stepped_back);
    free(out.after);
    ck_assert_int_eq(read_body(stepping_page, &tail, &pending, &last_ms, &out),
                     POLLER_EV_PAGE_SHORT);
    ck_assert(out.stepped_back);
    ck_assert_str_eq(out.after, "event_06");
    free(out.after);
    /* 4.2 s after a page that ended at 4.3 s (and reached 4.6 s). */
    ck_assert_int_eq(read_body(behind_page, &tail, &pending, &last_ms, &out), POLLER_EV_PAGE_SHORT);
    ck_assert(out.stepped_back);
    ck_assert(!out.older);
    ck_assert_uint_eq(pending->n_events, 7);
    ck_assert_str_eq(pending->last_id, "event_07");
    free(out.after);
    event_batch_free(pending);
    poller_page_tail_free(&tail);
}
END_TEST

/*
 * Pages each a little older than the one before, every step within the
 * skew: measured against the newest taken so far, not the last, the drift
 * is refused once it adds up to the skew -- a stream read newest first,
 * however dense, cannot walk the cursor back.
 */
#define ONE(id, t)                                                                                 \
    "{\"object\":\"list\",\"data\":[" EV(                                                          \
        id, "2026-01-01T00:00:" t "Z") "],"                                                        \
                                       "\"list_metadata\":{\"before\":null,\"after\":null}}"
START_TEST(test_drift_back_refused)
{
    static const char *const pages[] = {ONE("d1", "10.000"), ONE("d2", "09.700"),
                                        ONE("d3", "09.400"), ONE("d4", "09.100")};
    static const char last[] = ONE("d5", "09.000");
    reset_faults();
    poller_page_tail_t tail = {0};
    event_batch_t *pending = NULL;
    int64_t last_ms = 0;
    poller_page_result_t out;
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        ck_assert_int_eq(read_body(pages[i], &tail, &pending, &last_ms, &out),
                         POLLER_EV_PAGE_SHORT);
        ck_assert(out.stepped_back == (i > 0));
        free(out.after);
    }
    ck_assert_int_eq(read_body(last, &tail, &pending, &last_ms, &out), POLLER_EV_FETCH_FAILED);
    ck_assert(out.older);
    ck_assert_uint_eq(pending->n_events, 4);
    event_batch_free(pending);
    poller_page_tail_free(&tail);
}
END_TEST

/*
 * One event stamped years ahead, then the stream as before: every page is
 * taken, and the newest time taken stays the last real one, so the pages
 * after it are not out of order.
 */
START_TEST(test_future_event_taken)
{
    static const char ahead[] =
        "{\"object\":\"list\",\"data\":[" EV("f1", "2026-01-01T00:00:05.000Z") "," EV(
            "f2", "9999-12-31T00:00:00.000Z") "],"
                                              "\"list_metadata\":{\"before\":null,\"after\":null}}";
    static const char next[] = ONE("f3", "06.000");
    reset_faults();
    poller_page_tail_t tail = {0};
    event_batch_t *pending = NULL;
    int64_t last_ms = 0, five;
    poller_page_result_t out;
    ck_assert_int_eq(read_body(ahead, &tail, &pending, &last_ms, &out), POLLER_EV_PAGE_SHORT);
    free(out.after);
    ck_assert(clock_parse_iso8601("2026-01-01T00:00:05.000Z", &five));
    ck_assert_int_eq(last_ms, five);
    ck_assert_int_eq(read_body(next, &tail, &pending, &last_ms, &out), POLLER_EV_PAGE_SHORT);
    ck_assert(!out.older);
    ck_assert_uint_eq(pending->n_events, 3);
    free(out.after);
    event_batch_free(pending);
    poller_page_tail_free(&tail);
}
END_TEST

/*
 * Events stamped 1970 (a clock reset at the source) last on one page and
 * first on the next: every page is taken, the cursor moves past them, and
 * the newest time taken stays the last real one, so the pages after them
 * are not out of order.
 */
START_TEST(test_far_back_event_taken)
{
    static const char last_on_page[] =
        "{\"object\":\"list\",\"data\":[" EV("p1", "2026-01-01T00:00:05.000Z") "," EV(
            "p2", "1970-01-01T00:00:00.000Z") "],"
                                              "\"list_metadata\":{\"before\":null,\"after\":null}}";
    static const char first_on_page[] =
        "{\"object\":\"list\",\"data\":[" EV("p3", "1970-01-01T00:00:01.000Z") "," EV(
            "p4", "2026-01-01T00:00:06.000Z") "],"
                                              "\"list_metadata\":{\"before\":null,\"after\":null}}";
    static const char next[] = ONE("p5", "07.000");
    reset_faults();
    poller_page_tail_t tail = {0};
    event_batch_t *pending = NULL;
    int64_t last_ms = 0, five, six;
    poller_page_result_t out;
    ck_assert(clock_parse_iso8601("2026-01-01T00:00:05.000Z", &five));
    ck_assert(clock_parse_iso8601("2026-01-01T00:00:06.000Z", &six));
    ck_assert_int_eq(read_body(last_on_page, &tail, &pending, &last_ms, &out),
                     POLLER_EV_PAGE_SHORT);
    ck_assert_str_eq(out.after, "p2");
    ck_assert(!out.stepped_back);
    free(out.after);
    ck_assert_int_eq(last_ms, five);
    ck_assert_int_eq(read_body(first_on_page, &tail, &pending, &last_ms, &out),
                     POLLER_EV_PAGE_SHORT);
    ck_assert(!out.older);
    ck_assert_str_eq(out.after, "p4");
    free(out.after);
    ck_assert_int_eq(last_ms, six);
    ck_assert_int_eq(read_body(next, &tail, &pending, &last_ms, &out), POLLER_EV_PAGE_SHORT);
    ck_assert_uint_eq(pending->n_events, 5);
    ck_assert_str_eq(pending->last_id, "p5");
    free(out.after);
    event_batch_free(pending);
    poller_page_tail_free(&tail);
}
END_TEST

/*
 * A full page of `n_ids` events and then elements without an id, with
 * list_metadata.after null: into `buf`.
 */
static const char *full_page(char *buf, size_t len, int n_ids)
{
    size_t at = (size_t)snprintf(buf, len, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < POLLER_TYPES_PAGE_LIMIT; i++) {
        char id[32];
        snprintf(id, sizeof(id), "event_x%03d", i);
        if (i < n_ids)
            at += (size_t)snprintf(buf + at, len - at, "%s" EV("%s", "2026-01-01T00:00:10.000Z"),
                                   i > 0 ? "," : "", id, id, id);
        else
            at +=
                (size_t)snprintf(buf + at, len - at, "%s{\"object\":\"event\"}", i > 0 ? "," : "");
    }
    snprintf(buf + at, len - at, "],\"list_metadata\":{\"before\":null,\"after\":null}}");
    return buf;
}

/*
 * A full page whose last element has no id goes on after the last one that
 * has (those after it come again), not after the same cursor for ever; a
 * full page with no id at all is a failure, retried with a backoff.
 */
START_TEST(test_full_page_without_last_id)
{
    static char buf[200000];
    reset_faults();
    poller_page_tail_t tail = {0};
    event_batch_t *pending = NULL;
    int64_t last_ms = 0;
    poller_page_result_t out;
    char reason[256] = "";
    ck_assert_int_eq(read_body(full_page(buf, sizeof(buf), 98), &tail, &pending, &last_ms, &out),
                     POLLER_EV_PAGE_FULL);
    ck_assert_str_eq(out.after, "event_x097");
    ck_assert_uint_eq(pending->n_events, 98);
    free(out.after);
    poller_page_tail_clear(&tail);
    poller_page_seen_t seen = {.n = 0};
    const char *none = full_page(buf, sizeof(buf), 0);
    http_response_t resp = {.transport_ok = true,
                            .status = 200,
                            .body = none,
                            .len = strlen(none),
                            .retry_after_ms = -1,
                            .error = NULL,
                            .elapsed_ms = 1};
    ck_assert_int_eq(
        poller_page_read(&seen, &tail, &resp, &pending, &last_ms, &out, reason, sizeof(reason)),
        POLLER_EV_FETCH_FAILED);
    ck_assert_str_eq(reason, "a full page with no event id to ask after");
    ck_assert_ptr_null(out.after);
    ck_assert_uint_eq(pending->n_events, 98);
    poller_page_seen_free(&seen);
    event_batch_free(pending);
    poller_page_tail_free(&tail);
}
END_TEST

/* With allocation working the page is taken whole and the cursor is its last id. */
START_TEST(test_page_taken_whole)
{
    reset_faults();
    event_batch_t *pending = NULL;
    int64_t last_ms = 0;
    poller_page_result_t out;
    poller_event_t ev = read_page(&pending, &last_ms, &out);
    ck_assert_int_eq(ev, POLLER_EV_PAGE_SHORT);
    ck_assert_int_eq(add_calls, 3);
    ck_assert_uint_eq(out.n, 3);
    ck_assert_ptr_nonnull(out.after);
    ck_assert_str_eq(out.after, "event_03");
    ck_assert_ptr_nonnull(pending);
    ck_assert_uint_eq(pending->n_events, 3);
    ck_assert_uint_eq(pending->n_malformed + pending->n_unknown, 0);
    ck_assert_str_eq(pending->last_id, "event_03");
    ck_assert_int_eq(last_ms, pending->newest_created_ms);
    free(out.after);
    event_batch_free(pending);
}
END_TEST

/* No batch to add the page to: the process aborts, no cursor comes back. */
START_TEST(test_batch_new_fails_aborts)
{
    reset_faults();
    fail_new = true;
    event_batch_t *pending = NULL;
    int64_t last_ms = 0;
    poller_page_result_t out;
    (void)read_page(&pending, &last_ms, &out);
    ck_abort_msg("poller_page_read returned after event_batch_new failed");
}
END_TEST

/* The first, a middle and the last event cannot be added: each aborts. */
START_TEST(test_batch_add_nomem_aborts)
{
    reset_faults();
    fail_add_at = _i + 1;
    event_batch_t *pending = NULL;
    int64_t last_ms = 0;
    poller_page_result_t out;
    (void)read_page(&pending, &last_ms, &out);
    ck_abort_msg("poller_page_read returned after event_batch_add ran out of memory");
}
END_TEST

/* Whether Check runs each test in a child of its own (CK_FORK unset or not "no"). */
static bool check_forks(void)
{
    const char *v = getenv("CK_FORK");
    return v == NULL || strcmp(v, "no") != 0;
}

Suite *unit_suite(void)
{
    Suite *s = suite_create("poller_page");
    TCase *tc = tcase_create("out_of_memory");
    tcase_add_test(tc, test_page_taken_whole);
    if (check_forks()) {
        tcase_add_test_raise_signal(tc, test_batch_new_fails_aborts, SIGABRT);
        tcase_add_loop_test_raise_signal(tc, test_batch_add_nomem_aborts, SIGABRT, 0, 3);
    }
    suite_add_tcase(s, tc);
    TCase *tail = tcase_create("tail");
    tcase_add_test(tail, test_window_repeat_dropped);
    tcase_add_test(tail, test_older_than_tail_refused);
    tcase_add_test(tail, test_step_back_taken);
    tcase_add_test(tail, test_drift_back_refused);
    tcase_add_test(tail, test_future_event_taken);
    tcase_add_test(tail, test_far_back_event_taken);
    tcase_add_test(tail, test_full_page_without_last_id);
    suite_add_tcase(s, tail);
    return s;
}
