/*
 * Unit tests for daemon/reconciler_fsm.c: a table lists every legal
 * (state, input, dry run) with its next state and action; every pair the
 * table does not list must be refused as a bug; and a run, driven through
 * its inputs in order, goes from IDLE back to IDLE through every phase.
 */
#include <check.h>
#include <stdbool.h>

#include "reconciler_fsm.h"
#include "runner.h"

#define S(x) RECON_##x
#define IN(x) RECON_IN_##x
#define DO(x) RECON_DO_##x
#define BOTH 2 /* the row holds for a real run and a dry run alike */

typedef struct row {
    recon_state_t state;
    recon_input_t in;
    int dry; /* 0, 1 or BOTH */
    recon_state_t next;
    recon_action_t action;
} row_t;

static const row_t rows[] = {
    {S(IDLE), IN(START), BOTH, S(WAIT_STORE), DO(NOTHING)},
    {S(WAIT_STORE), IN(BEGIN), 0, S(OPENING), DO(OPEN)},
    {S(WAIT_STORE), IN(BEGIN), 1, S(STAGING), DO(STAGE)},
    {S(WAIT_STORE), IN(GATE_CLOSED), BOTH, S(WAIT_STORE), DO(WAIT_GATE)},
    {S(WAIT_STORE), IN(DB_FAILED), BOTH, S(WAIT_STORE), DO(NOTHING)},
    {S(STAGING), IN(STAGED), BOTH, S(OPENING), DO(OPEN)},
    {S(OPENING), IN(OPENED_LISTING), BOTH, S(LISTING), DO(LIST)},
    {S(OPENING), IN(OPENED_DONE), BOTH, S(REPORTING), DO(REPORT)},
    {S(LISTING), IN(LISTED), BOTH, S(SWEEPING), DO(SWEEP)},
    {S(SWEEPING), IN(SWEPT_ROOTS), BOTH, S(LISTING), DO(LIST_NEXT)},
    {S(SWEEPING), IN(SWEPT_CHILDREN), BOTH, S(REPORTING), DO(REPORT)},
    {S(REPORTING), IN(REPORTED), BOTH, S(IDLE), DO(FINISH_OK)},
    /* Failures: a real run resumes, a dry run ends. */
    {S(STAGING), IN(DB_FAILED), 0, S(WAIT_STORE), DO(RETRY)},
    {S(OPENING), IN(DB_FAILED), 0, S(WAIT_STORE), DO(RETRY)},
    {S(LISTING), IN(DB_FAILED), 0, S(WAIT_STORE), DO(RETRY)},
    {S(SWEEPING), IN(DB_FAILED), 0, S(WAIT_STORE), DO(RETRY)},
    {S(REPORTING), IN(DB_FAILED), 0, S(WAIT_STORE), DO(RETRY)},
    {S(STAGING), IN(DB_FAILED), 1, S(IDLE), DO(FINISH_FAIL)},
    {S(OPENING), IN(DB_FAILED), 1, S(IDLE), DO(FINISH_FAIL)},
    {S(LISTING), IN(DB_FAILED), 1, S(IDLE), DO(FINISH_FAIL)},
    {S(SWEEPING), IN(DB_FAILED), 1, S(IDLE), DO(FINISH_FAIL)},
    {S(REPORTING), IN(DB_FAILED), 1, S(IDLE), DO(FINISH_FAIL)},
    {S(STAGING), IN(FATAL), BOTH, S(IDLE), DO(FINISH_FAIL)},
    {S(OPENING), IN(FATAL), BOTH, S(IDLE), DO(FINISH_FAIL)},
    {S(LISTING), IN(FATAL), BOTH, S(IDLE), DO(FINISH_FAIL)},
    {S(SWEEPING), IN(FATAL), BOTH, S(IDLE), DO(FINISH_FAIL)},
    {S(REPORTING), IN(FATAL), BOTH, S(IDLE), DO(FINISH_FAIL)},
};
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static bool covers(const row_t *r, bool dry)
{
    return r->dry == BOTH || r->dry == (int)dry;
}

START_TEST(test_rows)
{
    const row_t *r = &rows[_i / 2];
    bool dry = _i % 2;
    if (!covers(r, dry))
        return;
    recon_state_t next = S(IDLE);
    recon_action_t act = DO(NOTHING);
    ck_assert_msg(reconciler_fsm_step(r->state, r->in, dry, &next, &act), "row %d refused", _i / 2);
    ck_assert_int_eq(next, r->next);
    ck_assert_int_eq(act, r->action);
}
END_TEST

/* Every pair without a row is a bug, and leaves the outputs alone. */
START_TEST(test_unlisted_refused)
{
    for (int st = S(IDLE); st <= S(REPORTING); st++)
        for (int in = IN(START); in <= IN(FATAL); in++)
            for (int dry = 0; dry < 2; dry++) {
                bool listed = false;
                for (size_t i = 0; i < N_ROWS; i++)
                    listed |= rows[i].state == (recon_state_t)st &&
                              rows[i].in == (recon_input_t)in && covers(&rows[i], dry);
                recon_state_t next = (recon_state_t)99;
                recon_action_t act = (recon_action_t)99;
                bool ok =
                    reconciler_fsm_step((recon_state_t)st, (recon_input_t)in, dry, &next, &act);
                ck_assert_msg(ok == listed, "state %s input %d dry %d: step %s",
                              reconciler_fsm_state_name((recon_state_t)st), in, dry,
                              ok ? "taken" : "refused");
                if (!ok)
                    ck_assert_int_eq(next, 99);
            }
}
END_TEST

/* A whole run, resumed once after a failure while listing. */
START_TEST(test_whole_run)
{
    static const recon_input_t inputs[] = {
        IN(START),       IN(GATE_CLOSED), IN(BEGIN),          IN(OPENED_LISTING),
        IN(DB_FAILED),   IN(BEGIN),       IN(OPENED_LISTING), IN(LISTED),
        IN(SWEPT_ROOTS), IN(LISTED),      IN(SWEPT_CHILDREN), IN(REPORTED),
    };
    static const recon_action_t want[] = {
        DO(NOTHING), DO(WAIT_GATE), DO(OPEN),      DO(LIST),  DO(RETRY),  DO(OPEN),
        DO(LIST),    DO(SWEEP),     DO(LIST_NEXT), DO(SWEEP), DO(REPORT), DO(FINISH_OK),
    };
    recon_state_t st = S(IDLE);
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        recon_action_t act;
        ck_assert_msg(reconciler_fsm_step(st, inputs[i], false, &st, &act), "step %zu", i);
        ck_assert_int_eq(act, want[i]);
    }
    ck_assert_int_eq(st, S(IDLE));
}
END_TEST

START_TEST(test_names)
{
    for (int st = S(IDLE); st <= S(REPORTING); st++)
        ck_assert_str_ne(reconciler_fsm_state_name((recon_state_t)st), "?");
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("reconciler_fsm");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_rows, 0, (int)(2 * N_ROWS));
    tcase_add_test(tc, test_unlisted_refused);
    tcase_add_test(tc, test_whole_run);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
