/*
 * Unit tests for daemon/webhook_fsm.c, the webhook group machine: every
 * legal (state, event) pair leads to its documented state and action,
 * every other pair is reported as a bug with the state unchanged, and
 * whole lives of a group (commit, failure, shutdown before and during the
 * commit) walk only legal pairs and end answered.
 */
#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#include "runner.h"
#include "webhook_fsm.h"

#define S(x) WEBHOOK_GROUP_##x
#define E(x) WEBHOOK_GROUP_EV_##x
#define A(x) WEBHOOK_GROUP_DO_##x

/* The whole table: every legal pair. Anything not listed is a bug. */
static const struct {
    webhook_group_state_t from;
    webhook_group_event_t ev;
    webhook_group_state_t to;
    webhook_group_action_t action;
} legal[] = {
    {S(OPEN), E(ADD), S(OPEN), A(QUEUE)},
    {S(OPEN), E(FLUSH), S(COMMITTING), A(APPLY)},
    {S(OPEN), E(CLOSE), S(ANSWERED), A(ANSWER_CLOSING)},
    {S(COMMITTING), E(COMMITTED), S(ANSWERED), A(ANSWER_STORED)},
    {S(COMMITTING), E(FAILED), S(ANSWERED), A(ANSWER_RETRY)},
    {S(COMMITTING), E(CLOSE), S(ORPHANED), A(ANSWER_CLOSING)},
    {S(ORPHANED), E(COMMITTED), S(ANSWERED), A(RELEASE)},
    {S(ORPHANED), E(FAILED), S(ANSWERED), A(RELEASE)},
};
#define N_LEGAL (sizeof(legal) / sizeof(legal[0]))

static const webhook_group_state_t states[] = {S(OPEN), S(COMMITTING), S(ORPHANED), S(ANSWERED)};
static const webhook_group_event_t events[] = {E(ADD), E(FLUSH), E(COMMITTED), E(FAILED), E(CLOSE)};
#define N_STATES (sizeof(states) / sizeof(states[0]))
#define N_EVENTS (sizeof(events) / sizeof(events[0]))

START_TEST(legal_pair)
{
    webhook_group_step_t st = webhook_group_step(legal[_i].from, legal[_i].ev);
    ck_assert_msg(st.next == legal[_i].to && st.action == legal[_i].action,
                  "%s + %s: want %s/%s, got %s/%s", webhook_group_state_name(legal[_i].from),
                  webhook_group_event_name(legal[_i].ev), webhook_group_state_name(legal[_i].to),
                  webhook_group_action_name(legal[_i].action), webhook_group_state_name(st.next),
                  webhook_group_action_name(st.action));
}
END_TEST

/* _i runs over every (state, event) pair, plus values outside the enums. */
START_TEST(other_pairs_are_bugs)
{
    webhook_group_state_t s = states[(size_t)_i / N_EVENTS];
    webhook_group_event_t ev = events[(size_t)_i % N_EVENTS];
    bool listed = false;
    for (size_t k = 0; k < N_LEGAL; k++)
        listed = listed || (legal[k].from == s && legal[k].ev == ev);
    if (listed)
        return;
    webhook_group_step_t st = webhook_group_step(s, ev);
    ck_assert_msg(st.action == A(BUG) && st.next == s, "%s + %s: want bug, got %s/%s",
                  webhook_group_state_name(s), webhook_group_event_name(ev),
                  webhook_group_state_name(st.next), webhook_group_action_name(st.action));
}
END_TEST

START_TEST(out_of_range_is_a_bug)
{
    webhook_group_step_t st = webhook_group_step((webhook_group_state_t)42, E(ADD));
    ck_assert_int_eq(st.action, A(BUG));
    st = webhook_group_step(S(OPEN), (webhook_group_event_t)42);
    ck_assert_int_eq(st.action, A(BUG));
    ck_assert_int_eq(st.next, S(OPEN));
    ck_assert_str_eq(webhook_group_state_name((webhook_group_state_t)42), "unknown");
    ck_assert_str_eq(webhook_group_event_name((webhook_group_event_t)42), "unknown");
    ck_assert_str_eq(webhook_group_action_name((webhook_group_action_t)42), "unknown");
}
END_TEST

/* Whole lives: the events a group sees, and the actions they must produce. */
static const struct {
    const char *name;
    webhook_group_event_t evs[6];
    webhook_group_action_t want[6];
    size_t n;
} lives[] = {
    {"one request, committed",
     {E(ADD), E(FLUSH), E(COMMITTED)},
     {A(QUEUE), A(APPLY), A(ANSWER_STORED)},
     3},
    {"three requests, the commit fails",
     {E(ADD), E(ADD), E(ADD), E(FLUSH), E(FAILED)},
     {A(QUEUE), A(QUEUE), A(QUEUE), A(APPLY), A(ANSWER_RETRY)},
     5},
    {"shutdown before its turn",
     {E(ADD), E(ADD), E(CLOSE)},
     {A(QUEUE), A(QUEUE), A(ANSWER_CLOSING)},
     3},
    {"shutdown during the commit, which then succeeds",
     {E(ADD), E(FLUSH), E(CLOSE), E(COMMITTED)},
     {A(QUEUE), A(APPLY), A(ANSWER_CLOSING), A(RELEASE)},
     4},
    {"shutdown during the commit, which then fails",
     {E(ADD), E(FLUSH), E(CLOSE), E(FAILED)},
     {A(QUEUE), A(APPLY), A(ANSWER_CLOSING), A(RELEASE)},
     4},
};

START_TEST(life)
{
    webhook_group_state_t s = S(OPEN);
    for (size_t k = 0; k < lives[_i].n; k++) {
        webhook_group_step_t st = webhook_group_step(s, lives[_i].evs[k]);
        ck_assert_msg(st.action == lives[_i].want[k], "%s, step %zu (%s in %s): want %s, got %s",
                      lives[_i].name, k, webhook_group_event_name(lives[_i].evs[k]),
                      webhook_group_state_name(s), webhook_group_action_name(lives[_i].want[k]),
                      webhook_group_action_name(st.action));
        s = st.next;
    }
    ck_assert_msg(s == S(ANSWERED), "%s ends %s", lives[_i].name, webhook_group_state_name(s));
    /* Nothing more can happen to it. */
    for (size_t k = 0; k < N_EVENTS; k++)
        ck_assert_int_eq(webhook_group_step(s, events[k]).action, A(BUG));
}
END_TEST

/* Once with the store, a group takes no new request and is not flushed again. */
START_TEST(no_join_after_flush)
{
    const webhook_group_state_t busy[] = {S(COMMITTING), S(ORPHANED), S(ANSWERED)};
    for (size_t k = 0; k < sizeof(busy) / sizeof(busy[0]); k++) {
        ck_assert_int_eq(webhook_group_step(busy[k], E(ADD)).action, A(BUG));
        ck_assert_int_eq(webhook_group_step(busy[k], E(FLUSH)).action, A(BUG));
    }
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("webhook_fsm");
    TCase *tc = tcase_create("transitions");
    tcase_add_loop_test(tc, legal_pair, 0, (int)N_LEGAL);
    tcase_add_loop_test(tc, other_pairs_are_bugs, 0, (int)(N_STATES * N_EVENTS));
    tcase_add_test(tc, out_of_range_is_a_bug);
    tcase_add_loop_test(tc, life, 0, (int)(sizeof(lives) / sizeof(lives[0])));
    tcase_add_test(tc, no_join_after_flush);
    suite_add_tcase(s, tc);
    return s;
}
