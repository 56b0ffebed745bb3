/*
 * Unit tests for daemon/poller_fsm.c, the poller's state machine, with no
 * network or database: a table drives every legal (state, apply sub-state,
 * event) through poller_fsm_step() and checks the next states and the
 * actions; every pair the table does not list must be reported as a bug;
 * and every legal step keeps the timer and request rules that make those
 * pairs impossible (a timed state has its timer armed, an untimed one has
 * none, a request in flight only outside FETCHING when it was cancelled).
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "poller_fsm.h"
#include "runner.h"

/* Apply sub-states a row covers, as a mask. */
#define I (1u << POLLER_APPLY_IDLE)
#define IN (1u << POLLER_APPLY_IDLE_NOTE)
#define B (1u << POLLER_APPLY_BUSY)
#define BN (1u << POLLER_APPLY_BUSY_NOTE)
#define IDLES (I | IN)
#define BUSIES (B | BN)
#define ALL (I | IN | B | BN)
#define SAME (-1) /* the apply sub-state does not change */

/* Facts: store ready, a pending batch, its events, the rate limiter's wait. */
#define F(ready, batch, events, rate)                                                              \
    {                                                                                              \
        (ready), (batch), (events), (rate), 0, 1, false                                            \
    }
/* The type check's facts too: types to ask about, types not refused, the filter names a refused
 * one. */
#define FT(ready, batch, events, rate, unchecked, usable, refused)                                 \
    {                                                                                              \
        (ready), (batch), (events), (rate), (unchecked), (usable), (refused)                       \
    }
#define TO_CHECK(n) FT(true, false, 0, 0, (n), 5, false)
#define ROUND(usable, refused) FT(true, false, 0, 0, 0, (usable), (refused))
#define READY F(true, false, 0, 0)
#define DOWN F(false, false, 0, 0)
#define PENDING(n) F(true, true, (n), 0)

#define DO(x) POLLER_DO_##x
#define STOP_DOES (DO(CANCEL_TIMER) | DO(CANCEL_REQUEST))
#define LOST_DOES (DO(CANCEL_TIMER) | DO(REWIND) | DO(RESIGN))
#define RETRY_APPLY (DO(CANCEL_TIMER) | DO(LOG_ERROR) | DO(REWIND) | DO(BACKOFF_APPLY))
#define DROP_APPLY (DO(CANCEL_TIMER) | DO(LOG_ERROR) | DO(REWIND))

#define S(x) POLLER_##x
#define A(x) POLLER_APPLY_##x
#define E(x) POLLER_EV_##x

typedef struct row {
    poller_state_t state;
    unsigned applies;
    poller_event_t ev;
    poller_facts_t facts;
    bool bug; /* the step must be refused */
    poller_state_t want_state;
    int want_apply; /* poller_apply_t, or SAME */
    unsigned want_actions;
    int64_t want_wait_ms;
} row_t;

static const row_t rows[] = {
    /* The store comes and goes. */
    {S(WAITING_DB), I, E(STORE_READY), READY, false, S(LOCKING), SAME,
     DO(CANCEL_TIMER) | DO(RESIGN) | DO(LOCK), 0},
    {S(WAITING_DB), I, E(STORE_LOST), DOWN, false, S(WAITING_DB), SAME, LOST_DOES, 0},
    {S(WAITING_DB), I, E(STOP), DOWN, false, S(STOPPED), SAME, STOP_DOES, 0},

    /* The lock. */
    {S(LOCKING), I, E(LOCK_FAILED), READY, false, S(SETUP_WAIT), SAME,
     DO(LOG_ERROR) | DO(ARM_RETRY), 0},
    {S(LOCKING), I, E(LOCK_FAILED), DOWN, false, S(WAITING_DB), SAME, DO(LOG_ERROR), 0},
    {S(LOCKING), I, E(LOCK_BUSY), READY, false, S(STANDBY), SAME, DO(STANDBY) | DO(ARM_RETRY), 0},
    {S(LOCKING), I, E(LOCK_HELD), READY, false, S(LOADING), SAME, DO(LEAD) | DO(LOAD_CURSOR), 0},
    {S(LOCKING), I, E(STOP), READY, false, S(STOPPED), SAME, STOP_DOES, 0},
    {S(STANDBY), I, E(TIMER), READY, false, S(LOCKING), SAME, DO(LOCK), 0},
    {S(STANDBY), I, E(STORE_LOST), DOWN, false, S(WAITING_DB), SAME, LOST_DOES, 0},
    {S(STANDBY), I, E(STOP), READY, false, S(STOPPED), SAME, STOP_DOES, 0},
    {S(SETUP_WAIT), I, E(TIMER), READY, false, S(LOCKING), SAME, DO(LOCK), 0},
    {S(SETUP_WAIT), I, E(STORE_LOST), DOWN, false, S(WAITING_DB), SAME, LOST_DOES, 0},
    {S(SETUP_WAIT), I, E(STOP), READY, false, S(STOPPED), SAME, STOP_DOES, 0},

    /* The cursor. */
    {S(LOADING), I, E(CURSOR_FAILED), READY, false, S(SETUP_WAIT), SAME,
     DO(LOG_ERROR) | DO(ARM_RETRY), 0},
    {S(LOADING), I, E(CURSOR_FAILED), DOWN, false, S(WAITING_DB), SAME, DO(LOG_ERROR), 0},
    {S(LOADING), I, E(CURSOR_LOADED), READY, false, S(FETCHING), SAME, DO(START) | DO(FETCH), 0},
    {S(LOADING), I, E(CURSOR_LOADED), F(true, false, 0, 250), false, S(SLEEPING), SAME,
     DO(START) | DO(ARM_RATE), 250},
    {S(LOADING), I, E(STOP), READY, false, S(STOPPED), SAME, STOP_DOES, 0},

    /* Sleeping: poll interval, backoff or rate limit. */
    {S(SLEEPING), ALL, E(TIMER), READY, false, S(FETCHING), SAME, DO(FETCH), 0},
    {S(SLEEPING), ALL, E(TIMER), F(true, false, 0, 40), false, S(SLEEPING), SAME, DO(ARM_RATE), 40},
    {S(SLEEPING), BUSIES, E(TIMER), PENDING(1000), false, S(FULL), SAME, 0, 0},
    {S(SLEEPING), IDLES, E(TIMER), F(false, true, 1000, 0), true, 0, 0, 0, 0},
    {S(SLEEPING), IDLES, E(STORE_LOST), DOWN, false, S(WAITING_DB), A(IDLE), LOST_DOES, 0},
    {S(SLEEPING), ALL, E(STOP), READY, false, S(STOPPED), SAME, STOP_DOES, 0},
    {S(SLEEPING), B, E(APPLIED), READY, false, S(SLEEPING), A(IDLE), DO(COMMITTED), 0},
    {S(SLEEPING), B, E(APPLIED), PENDING(5), false, S(SLEEPING), A(BUSY), DO(COMMITTED) | DO(APPLY),
     0},
    {S(SLEEPING), BN, E(APPLIED), READY, false, S(SLEEPING), A(IDLE), DO(COMMITTED) | DO(NOTE), 0},
    {S(SLEEPING), BN, E(APPLIED), PENDING(5), false, S(SLEEPING), A(BUSY_NOTE),
     DO(COMMITTED) | DO(APPLY), 0},
    {S(SLEEPING), BN, E(APPLIED), PENDING(0), false, S(SLEEPING), A(IDLE_NOTE), DO(COMMITTED), 0},
    {S(SLEEPING), BUSIES, E(APPLY_FAILED), READY, false, S(SLEEPING), A(IDLE), RETRY_APPLY, 0},
    {S(SLEEPING), BUSIES, E(APPLY_FAILED), DOWN, false, S(WAITING_DB), A(IDLE), DROP_APPLY, 0},

    /* Full: fetched ahead to the bound, waiting for the commit. */
    {S(FULL), BUSIES, E(STOP), PENDING(1000), false, S(STOPPED), SAME, STOP_DOES, 0},
    {S(FULL), B, E(APPLIED), PENDING(1000), false, S(FETCHING), A(BUSY),
     DO(COMMITTED) | DO(FETCH) | DO(APPLY), 0},
    {S(FULL), B, E(APPLIED), F(true, true, 1000, 30), false, S(SLEEPING), A(BUSY),
     DO(COMMITTED) | DO(ARM_RATE) | DO(APPLY), 30},
    {S(FULL), BN, E(APPLIED), PENDING(1000), false, S(FETCHING), A(BUSY_NOTE),
     DO(COMMITTED) | DO(FETCH) | DO(APPLY), 0},
    {S(FULL), BUSIES, E(APPLIED), F(false, true, 1000, 0), true, 0, 0, 0, 0},
    {S(FULL), BUSIES, E(APPLY_FAILED), PENDING(1000), false, S(SLEEPING), A(IDLE), RETRY_APPLY, 0},
    {S(FULL), BUSIES, E(APPLY_FAILED), F(false, true, 1000, 0), false, S(WAITING_DB), A(IDLE),
     DROP_APPLY, 0},

    /* Fetching: the response decides. */
    {S(FETCHING), ALL, E(FETCH_FAILED), READY, false, S(SLEEPING), SAME, DO(BACKOFF_FETCH), 0},
    {S(FETCHING), I, E(PAGE_FULL), PENDING(100), false, S(FETCHING), A(BUSY), DO(FETCH) | DO(APPLY),
     0},
    {S(FETCHING), IN, E(PAGE_FULL), PENDING(100), false, S(FETCHING), A(BUSY_NOTE),
     DO(FETCH) | DO(APPLY), 0},
    {S(FETCHING), I, E(PAGE_FULL), F(true, true, 100, 500), false, S(SLEEPING), A(BUSY),
     DO(ARM_RATE) | DO(APPLY), 500},
    {S(FETCHING), IDLES, E(PAGE_FULL), PENDING(0), false, S(FETCHING), SAME, DO(FETCH), 0},
    {S(FETCHING), BUSIES, E(PAGE_FULL), PENDING(300), false, S(FETCHING), SAME, DO(FETCH), 0},
    {S(FETCHING), BUSIES, E(PAGE_FULL), PENDING(999), false, S(FETCHING), SAME, DO(FETCH), 0},
    {S(FETCHING), BUSIES, E(PAGE_FULL), PENDING(1000), false, S(FULL), SAME, 0, 0},
    {S(FETCHING), I, E(PAGE_FULL), F(false, true, 1000, 0), true, 0, 0, 0, 0},
    {S(FETCHING), I, E(PAGE_SHORT), PENDING(5), false, S(SLEEPING), A(BUSY),
     DO(MARK_ENDS) | DO(ARM_POLL) | DO(APPLY), 0},
    {S(FETCHING), IN, E(PAGE_SHORT), PENDING(5), false, S(SLEEPING), A(BUSY_NOTE),
     DO(MARK_ENDS) | DO(ARM_POLL) | DO(APPLY), 0},
    {S(FETCHING), IDLES, E(PAGE_SHORT), READY, false, S(SLEEPING), SAME, DO(NOTE) | DO(ARM_POLL),
     0},
    {S(FETCHING), IDLES, E(PAGE_SHORT), PENDING(0), false, S(SLEEPING), SAME,
     DO(NOTE) | DO(ARM_POLL), 0},
    {S(FETCHING), BUSIES, E(PAGE_SHORT), PENDING(5), false, S(SLEEPING), SAME,
     DO(MARK_ENDS) | DO(ARM_POLL), 0},
    {S(FETCHING), BUSIES, E(PAGE_SHORT), READY, false, S(SLEEPING), A(BUSY_NOTE), DO(ARM_POLL), 0},
    {S(FETCHING), ALL, E(PAGE_REFUSED), READY, false, S(CHECKING), SAME,
     DO(LOG_ERROR) | DO(CHECK_TYPES) | DO(CHECK_TYPE), 0},
    {S(FETCHING), ALL, E(PAGE_REFUSED), F(true, false, 0, 70), false, S(CHECK_WAIT), SAME,
     DO(LOG_ERROR) | DO(CHECK_TYPES) | DO(ARM_RATE), 70},
    {S(FETCHING), IDLES, E(STORE_LOST), DOWN, false, S(WAITING_DB), A(IDLE), LOST_DOES, 0},
    {S(FETCHING), ALL, E(STOP), READY, false, S(STOPPED), SAME, STOP_DOES, 0},
    {S(FETCHING), B, E(APPLIED), READY, false, S(FETCHING), A(IDLE), DO(COMMITTED), 0},
    {S(FETCHING), B, E(APPLIED), PENDING(200), false, S(FETCHING), A(BUSY),
     DO(COMMITTED) | DO(APPLY), 0},
    {S(FETCHING), BN, E(APPLIED), READY, false, S(FETCHING), A(IDLE), DO(COMMITTED) | DO(NOTE), 0},
    {S(FETCHING), BN, E(APPLIED), PENDING(200), false, S(FETCHING), A(BUSY_NOTE),
     DO(COMMITTED) | DO(APPLY), 0},
    {S(FETCHING), BUSIES, E(APPLY_FAILED), READY, false, S(SLEEPING), A(IDLE), RETRY_APPLY, 0},
    {S(FETCHING), BUSIES, E(APPLY_FAILED), DOWN, false, S(WAITING_DB), A(IDLE), DROP_APPLY, 0},

    /* Checking: one type a request, each answered kept or refused. */
    {S(CHECKING), ALL, E(TYPE_CHECKED), TO_CHECK(3), false, S(CHECKING), SAME, DO(CHECK_TYPE), 0},
    {S(CHECKING), ALL, E(TYPE_CHECKED), FT(true, false, 0, 40, 3, 5, true), false, S(CHECK_WAIT),
     SAME, DO(ARM_RATE), 40},
    {S(CHECKING), ALL, E(TYPE_CHECKED), ROUND(4, true), false, S(FETCHING), SAME,
     DO(USE_TYPES) | DO(FETCH), 0},
    {S(CHECKING), ALL, E(TYPE_CHECKED), FT(true, false, 0, 25, 0, 4, true), false, S(SLEEPING),
     SAME, DO(USE_TYPES) | DO(ARM_RATE), 25},
    {S(CHECKING), BUSIES, E(TYPE_CHECKED), FT(true, true, 1000, 0, 0, 4, true), false, S(FULL),
     SAME, DO(USE_TYPES), 0},
    {S(CHECKING), IDLES, E(TYPE_CHECKED), FT(false, true, 1000, 0, 0, 4, true), true, 0, 0, 0, 0},
    {S(CHECKING), ALL, E(TYPE_CHECKED), ROUND(0, true), false, S(CHECK_WAIT), SAME,
     DO(BACKOFF_CHECK), 0},
    {S(CHECKING), ALL, E(TYPE_CHECKED), ROUND(5, false), false, S(SLEEPING), SAME,
     DO(BACKOFF_CHECK), 0},
    {S(CHECKING), ALL, E(CHECK_FAILED), TO_CHECK(2), false, S(CHECK_WAIT), SAME, DO(BACKOFF_FETCH),
     0},
    {S(CHECKING), IDLES, E(STORE_LOST), DOWN, false, S(WAITING_DB), A(IDLE), LOST_DOES, 0},
    {S(CHECKING), ALL, E(STOP), READY, false, S(STOPPED), SAME, STOP_DOES, 0},
    {S(CHECKING), B, E(APPLIED), TO_CHECK(2), false, S(CHECKING), A(IDLE), DO(COMMITTED), 0},
    {S(CHECKING), B, E(APPLIED), PENDING(5), false, S(CHECKING), A(BUSY), DO(COMMITTED) | DO(APPLY),
     0},
    {S(CHECKING), BN, E(APPLIED), READY, false, S(CHECKING), A(IDLE), DO(COMMITTED) | DO(NOTE), 0},
    {S(CHECKING), BUSIES, E(APPLY_FAILED), READY, false, S(SLEEPING), A(IDLE), RETRY_APPLY, 0},
    {S(CHECKING), BUSIES, E(APPLY_FAILED), DOWN, false, S(WAITING_DB), A(IDLE), DROP_APPLY, 0},

    /* Waiting to check: the rate limit, a failed check's backoff, or every type refused. */
    {S(CHECK_WAIT), ALL, E(TIMER), TO_CHECK(2), false, S(CHECKING), SAME, DO(CHECK_TYPE), 0},
    {S(CHECK_WAIT), ALL, E(TIMER), FT(true, false, 0, 30, 2, 5, false), false, S(CHECK_WAIT), SAME,
     DO(ARM_RATE), 30},
    {S(CHECK_WAIT), ALL, E(TIMER), ROUND(0, true), false, S(CHECKING), SAME,
     DO(CHECK_TYPES) | DO(CHECK_TYPE), 0},
    {S(CHECK_WAIT), IDLES, E(STORE_LOST), DOWN, false, S(WAITING_DB), A(IDLE), LOST_DOES, 0},
    {S(CHECK_WAIT), ALL, E(STOP), READY, false, S(STOPPED), SAME, STOP_DOES, 0},
    {S(CHECK_WAIT), B, E(APPLIED), PENDING(5), false, S(CHECK_WAIT), A(BUSY),
     DO(COMMITTED) | DO(APPLY), 0},
    {S(CHECK_WAIT), BN, E(APPLIED), READY, false, S(CHECK_WAIT), A(IDLE), DO(COMMITTED) | DO(NOTE),
     0},
    {S(CHECK_WAIT), BUSIES, E(APPLY_FAILED), READY, false, S(SLEEPING), A(IDLE), RETRY_APPLY, 0},
    {S(CHECK_WAIT), BUSIES, E(APPLY_FAILED), DOWN, false, S(WAITING_DB), A(IDLE), DROP_APPLY, 0},

    /* Stopped: late news changes nothing; the batch in flight still commits. */
    {S(STOPPED), ALL, E(STORE_READY), READY, false, S(STOPPED), SAME, 0, 0},
    {S(STOPPED), ALL, E(STORE_LOST), DOWN, false, S(STOPPED), SAME, 0, 0},
    {S(STOPPED), ALL, E(STOP), READY, false, S(STOPPED), SAME, 0, 0},
    {S(STOPPED), ALL, E(LOCK_FAILED), READY, false, S(STOPPED), SAME, 0, 0},
    {S(STOPPED), ALL, E(LOCK_BUSY), READY, false, S(STOPPED), SAME, 0, 0},
    {S(STOPPED), ALL, E(LOCK_HELD), READY, false, S(STOPPED), SAME, 0, 0},
    {S(STOPPED), ALL, E(CURSOR_FAILED), DOWN, false, S(STOPPED), SAME, 0, 0},
    {S(STOPPED), ALL, E(CURSOR_LOADED), READY, false, S(STOPPED), SAME, 0, 0},
    {S(STOPPED), B, E(APPLIED), READY, false, S(STOPPED), A(IDLE), DO(COMMITTED), 0},
    {S(STOPPED), B, E(APPLIED), PENDING(5), false, S(STOPPED), A(BUSY), DO(COMMITTED) | DO(APPLY),
     0},
    {S(STOPPED), BN, E(APPLIED), READY, false, S(STOPPED), A(IDLE), DO(COMMITTED) | DO(NOTE), 0},
    {S(STOPPED), BUSIES, E(APPLY_FAILED), READY, false, S(STOPPED), A(IDLE),
     DO(LOG_ERROR) | DO(REWIND), 0},
    {S(STOPPED), BUSIES, E(APPLY_FAILED), DOWN, false, S(STOPPED), A(IDLE),
     DO(LOG_ERROR) | DO(REWIND), 0},
};

#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static void actions_text(unsigned actions, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < POLLER_DO_COUNT && used < len; i++)
        if (actions & (1u << i))
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "," : "",
                                     poller_action_name(1u << i));
}

/* Row _i, in each apply sub-state it covers. */
START_TEST(transition)
{
    const row_t *r = &rows[_i];
    for (unsigned a = 0; a < POLLER_APPLY_COUNT; a++) {
        if (!(r->applies & (1u << a)))
            continue;
        poller_step_t step = {.state = POLLER_STATE_COUNT, .actions = 0xdead};
        bool ok = poller_fsm_step(r->state, (poller_apply_t)a, r->ev, &r->facts, &step);
        const char *what = poller_event_name(r->ev);
        if (r->bug) {
            ck_assert_msg(!ok, "row %d: %s in %s/%s was accepted", _i, what,
                          poller_state_name(r->state), poller_apply_name((poller_apply_t)a));
            ck_assert_int_eq(step.actions, 0xdead);
            continue;
        }
        ck_assert_msg(ok, "row %d: %s in %s/%s refused", _i, what, poller_state_name(r->state),
                      poller_apply_name((poller_apply_t)a));
        char got[512], want[512];
        actions_text(step.actions, got, sizeof(got));
        actions_text(r->want_actions, want, sizeof(want));
        ck_assert_msg(step.state == r->want_state, "row %d: %s in %s/%s went to %s, want %s", _i,
                      what, poller_state_name(r->state), poller_apply_name((poller_apply_t)a),
                      poller_state_name(step.state), poller_state_name(r->want_state));
        int want_apply = r->want_apply == SAME ? (int)a : r->want_apply;
        ck_assert_msg((int)step.apply == want_apply, "row %d: %s in %s/%s: apply %s, want %s", _i,
                      what, poller_state_name(r->state), poller_apply_name((poller_apply_t)a),
                      poller_apply_name(step.apply), poller_apply_name((poller_apply_t)want_apply));
        ck_assert_msg(step.actions == r->want_actions,
                      "row %d: %s in %s/%s: actions [%s], want [%s]", _i, what,
                      poller_state_name(r->state), poller_apply_name((poller_apply_t)a), got, want);
        if (step.actions & DO(ARM_RATE))
            ck_assert_int_eq(step.wait_ms, r->want_wait_ms);
    }
}
END_TEST

static bool listed(poller_state_t s, poller_apply_t a, poller_event_t ev)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (!rows[i].bug && rows[i].state == s && (rows[i].applies & (1u << a)) && rows[i].ev == ev)
            return true;
    return false;
}

static const poller_facts_t variants[] = {
    READY,
    DOWN,
    PENDING(0),
    PENDING(5),
    PENDING(1000),
    F(true, true, 5, 100),
    F(false, true, 5, 0),
    TO_CHECK(3),
    ROUND(0, true),
    ROUND(4, true),
    ROUND(5, false),
};

/* Every (state, apply, event) the table does not list is a bug, whatever the facts. */
START_TEST(unlisted_pairs_are_bugs)
{
    int refused = 0;
    for (unsigned s = 0; s < POLLER_STATE_COUNT; s++)
        for (unsigned a = 0; a < POLLER_APPLY_COUNT; a++)
            for (unsigned ev = 0; ev < POLLER_EV_COUNT; ev++) {
                if (listed((poller_state_t)s, (poller_apply_t)a, (poller_event_t)ev))
                    continue;
                for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
                    poller_step_t step = {.actions = 0xdead};
                    bool ok = poller_fsm_step((poller_state_t)s, (poller_apply_t)a,
                                              (poller_event_t)ev, &variants[v], &step);
                    ck_assert_msg(!ok, "%s in %s/%s (facts %zu) accepted, not in the table",
                                  poller_event_name((poller_event_t)ev),
                                  poller_state_name((poller_state_t)s),
                                  poller_apply_name((poller_apply_t)a), v);
                    ck_assert_int_eq(step.actions, 0xdead);
                }
                refused++;
            }
    /* The pairs the contracts rule out, named so a loosened rule shows up. */
    ck_assert_msg(refused > 200, "only %d pairs refused", refused);
    static const struct {
        poller_state_t s;
        poller_apply_t a;
        poller_event_t ev;
    } named[] = {
        {S(FETCHING), A(IDLE), E(TIMER)},            /* no timer while fetching */
        {S(WAITING_DB), A(IDLE), E(TIMER)},          /* lost deletes the timer */
        {S(FULL), A(BUSY), E(TIMER)},                /* full arms none */
        {S(SLEEPING), A(IDLE), E(PAGE_FULL)},        /* no request while sleeping */
        {S(STOPPED), A(IDLE), E(PAGE_SHORT)},        /* stop cancels the request */
        {S(STOPPED), A(IDLE), E(TIMER)},             /* stop deletes the timer */
        {S(FETCHING), A(BUSY), E(STORE_LOST)},       /* the apply fails before lost */
        {S(LOCKING), A(IDLE), E(STORE_LOST)},        /* the lock fails before lost */
        {S(LOADING), A(IDLE), E(STORE_LOST)},        /* the cursor fails before lost */
        {S(FETCHING), A(IDLE), E(STORE_READY)},      /* ready only after lost */
        {S(SLEEPING), A(IDLE), E(APPLIED)},          /* nothing in flight */
        {S(STOPPED), A(IDLE_NOTE), E(APPLY_FAILED)}, /* nothing in flight */
        {S(LOADING), A(IDLE), E(LOCK_HELD)},         /* one lock query at a time */
        {S(FETCHING), A(IDLE), E(CURSOR_LOADED)},    /* one cursor load per lock */
        {S(LOCKING), A(BUSY), E(LOCK_HELD)},         /* no batch outside the fetch states */
        {S(FULL), A(IDLE), E(STOP)},                 /* full always waits for a commit */
        {S(CHECKING), A(IDLE), E(TIMER)},            /* no timer while checking */
        {S(CHECKING), A(IDLE), E(PAGE_SHORT)},       /* a check is not a page */
        {S(FETCHING), A(IDLE), E(TYPE_CHECKED)},     /* a page is not a check */
        {S(CHECK_WAIT), A(IDLE), E(CHECK_FAILED)},   /* no check in flight */
        {S(SLEEPING), A(IDLE), E(PAGE_REFUSED)},     /* no request while sleeping */
        {S(CHECKING), A(IDLE), E(STORE_READY)},      /* ready only after lost */
    };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        poller_step_t step;
        ck_assert_msg(!poller_fsm_step(named[i].s, named[i].a, named[i].ev, &variants[0], &step),
                      "named pair %zu accepted", i);
    }
    poller_step_t step;
    ck_assert(!poller_fsm_step(POLLER_STATE_COUNT, A(IDLE), E(STOP), &variants[0], &step));
    ck_assert(!poller_fsm_step(S(SLEEPING), POLLER_APPLY_COUNT, E(STOP), &variants[0], &step));
    ck_assert(!poller_fsm_step(S(SLEEPING), A(IDLE), POLLER_EV_COUNT, &variants[0], &step));
}
END_TEST

static bool timed(poller_state_t s)
{
    return s == S(STANDBY) || s == S(SETUP_WAIT) || s == S(SLEEPING) || s == S(CHECK_WAIT);
}

static bool requesting(poller_state_t s)
{
    return s == S(FETCHING) || s == S(CHECKING);
}

/* An event that is the answer to the request in flight, which it ends. */
static bool answer(poller_event_t ev)
{
    return ev == E(PAGE_FULL) || ev == E(PAGE_SHORT) || ev == E(FETCH_FAILED) ||
           ev == E(PAGE_REFUSED) || ev == E(TYPE_CHECKED) || ev == E(CHECK_FAILED);
}

static int popcount(unsigned x)
{
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

/*
 * What makes the unlisted pairs impossible, checked on every legal step:
 * a timed state has its timer armed and an untimed one has none, a request
 * is in flight exactly in FETCHING and CHECKING, and one step arms the timer at most
 * once and starts at most one query or request.
 */
START_TEST(steps_keep_the_timer_and_request_rules)
{
    const unsigned arms = DO(ARM_RETRY) | DO(ARM_POLL) | DO(ARM_RATE) | DO(BACKOFF_FETCH) |
                          DO(BACKOFF_APPLY) | DO(BACKOFF_CHECK);
    const unsigned starts = DO(FETCH) | DO(CHECK_TYPE) | DO(LOCK) | DO(LOAD_CURSOR);
    const unsigned cancels_request = DO(CANCEL_REQUEST) | DO(REWIND);
    for (size_t i = 0; i < N_ROWS; i++) {
        const row_t *r = &rows[i];
        if (r->bug)
            continue;
        for (unsigned a = 0; a < POLLER_APPLY_COUNT; a++) {
            poller_step_t st;
            if (!(r->applies & (1u << a)) ||
                !poller_fsm_step(r->state, (poller_apply_t)a, r->ev, &r->facts, &st))
                continue;
            bool timer_before =
                timed(r->state) && r->ev != E(TIMER) && !(st.actions & DO(CANCEL_TIMER));
            bool timer_after = timer_before || (st.actions & arms) != 0;
            ck_assert_msg(popcount(st.actions & arms) <= 1, "row %zu arms twice", i);
            ck_assert_msg(popcount(st.actions & starts) <= 1, "row %zu starts twice", i);
            ck_assert_msg(timer_after == timed(st.state), "row %zu: %s -> %s leaves the timer %s",
                          i, poller_state_name(r->state), poller_state_name(st.state),
                          timer_after ? "armed" : "unarmed");
            bool request_before =
                requesting(r->state) && !answer(r->ev) && !(st.actions & cancels_request);
            bool request_after = request_before || (st.actions & (DO(FETCH) | DO(CHECK_TYPE))) != 0;
            /* A request in flight stays the same kind: a page, or a check. */
            if (request_before)
                ck_assert_msg(st.state == r->state, "row %zu: a request changes kind", i);
            ck_assert_msg(request_after == requesting(st.state),
                          "row %zu: %s -> %s leaves a request %s", i, poller_state_name(r->state),
                          poller_state_name(st.state), request_after ? "in flight" : "missing");
            /* A batch enters the store when none is in it, or when one just left. */
            bool room = !poller_fsm_applying((poller_apply_t)a) || r->ev == E(APPLIED);
            bool enters = room && poller_fsm_applying(st.apply);
            ck_assert_msg(((st.actions & DO(APPLY)) != 0) == enters,
                          "row %zu: a batch enters the store without APPLY or the reverse", i);
        }
    }
}
END_TEST

/* A leader's first minutes, step by step, as poller.c would drive them. */
START_TEST(a_leader_catches_up)
{
    static const struct {
        poller_event_t ev;
        poller_facts_t facts;
        poller_state_t state;
        poller_apply_t apply;
    } script[] = {
        {E(STORE_READY), READY, S(LOCKING), A(IDLE)},
        {E(LOCK_HELD), READY, S(LOADING), A(IDLE)},
        {E(CURSOR_LOADED), READY, S(FETCHING), A(IDLE)},
        {E(PAGE_FULL), PENDING(100), S(FETCHING), A(BUSY)},
        {E(PAGE_FULL), PENDING(100), S(FETCHING), A(BUSY)},
        {E(APPLIED), PENDING(100), S(FETCHING), A(BUSY)},
        {E(PAGE_SHORT), PENDING(40), S(SLEEPING), A(BUSY)},
        {E(APPLIED), PENDING(40), S(SLEEPING), A(BUSY)},
        {E(APPLIED), READY, S(SLEEPING), A(IDLE)},
        {E(TIMER), READY, S(FETCHING), A(IDLE)},
        {E(PAGE_SHORT), READY, S(SLEEPING), A(IDLE)},
        {E(FETCH_FAILED), READY, S(SLEEPING), A(IDLE)}, /* refused: not fetching */
    };
    poller_state_t s = S(WAITING_DB);
    poller_apply_t a = A(IDLE);
    size_t n = sizeof(script) / sizeof(script[0]);
    for (size_t i = 0; i + 1 < n; i++) {
        poller_step_t st;
        ck_assert_msg(poller_fsm_step(s, a, script[i].ev, &script[i].facts, &st),
                      "step %zu refused", i);
        ck_assert_msg(st.state == script[i].state && st.apply == script[i].apply, "step %zu: %s/%s",
                      i, poller_state_name(st.state), poller_apply_name(st.apply));
        s = st.state;
        a = st.apply;
    }
    poller_step_t st;
    ck_assert(!poller_fsm_step(s, a, script[n - 1].ev, &script[n - 1].facts, &st));
}
END_TEST

/*
 * A start whose first page is refused: the environment does not know one
 * configured type.  Each of three types is asked about (one is refused),
 * then fetching resumes with the other two.  Later a 400 whose round
 * refuses nothing backs off and fetches again; a round that refuses every
 * type keeps asking after a backoff.
 */
START_TEST(a_refused_type_is_dropped)
{
    static const struct {
        poller_event_t ev;
        poller_facts_t facts;
        poller_state_t state;
        unsigned actions;
    } script[] = {
        {E(STORE_READY), READY, S(LOCKING), DO(CANCEL_TIMER) | DO(RESIGN) | DO(LOCK)},
        {E(LOCK_HELD), READY, S(LOADING), DO(LEAD) | DO(LOAD_CURSOR)},
        {E(CURSOR_LOADED), READY, S(FETCHING), DO(START) | DO(FETCH)},
        {E(PAGE_REFUSED), FT(true, false, 0, 0, 0, 3, false), S(CHECKING),
         DO(LOG_ERROR) | DO(CHECK_TYPES) | DO(CHECK_TYPE)},
        {E(TYPE_CHECKED), FT(true, false, 0, 0, 2, 3, false), S(CHECKING), DO(CHECK_TYPE)},
        {E(CHECK_FAILED), FT(true, false, 0, 0, 2, 3, false), S(CHECK_WAIT), DO(BACKOFF_FETCH)},
        {E(TIMER), FT(true, false, 0, 0, 2, 3, false), S(CHECKING), DO(CHECK_TYPE)},
        {E(TYPE_CHECKED), FT(true, false, 0, 0, 1, 2, true), S(CHECKING), DO(CHECK_TYPE)},
        {E(TYPE_CHECKED), ROUND(2, true), S(FETCHING), DO(USE_TYPES) | DO(FETCH)},
        {E(PAGE_SHORT), READY, S(SLEEPING), DO(NOTE) | DO(ARM_POLL)},
        {E(TIMER), READY, S(FETCHING), DO(FETCH)},
        {E(PAGE_REFUSED), ROUND(2, false), S(CHECKING),
         DO(LOG_ERROR) | DO(CHECK_TYPES) | DO(CHECK_TYPE)},
        {E(TYPE_CHECKED), TO_CHECK(1), S(CHECKING), DO(CHECK_TYPE)},
        {E(TYPE_CHECKED), ROUND(2, false), S(SLEEPING), DO(BACKOFF_CHECK)},
        {E(TIMER), READY, S(FETCHING), DO(FETCH)},
        {E(PAGE_REFUSED), ROUND(2, false), S(CHECKING),
         DO(LOG_ERROR) | DO(CHECK_TYPES) | DO(CHECK_TYPE)},
        {E(TYPE_CHECKED), FT(true, false, 0, 0, 1, 1, true), S(CHECKING), DO(CHECK_TYPE)},
        {E(TYPE_CHECKED), ROUND(0, true), S(CHECK_WAIT), DO(BACKOFF_CHECK)},
        {E(TIMER), ROUND(0, true), S(CHECKING), DO(CHECK_TYPES) | DO(CHECK_TYPE)},
        {E(STOP), TO_CHECK(2), S(STOPPED), STOP_DOES},
    };
    poller_state_t s = S(WAITING_DB);
    poller_apply_t a = A(IDLE);
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
        poller_step_t st;
        char got[512], want[512];
        ck_assert_msg(poller_fsm_step(s, a, script[i].ev, &script[i].facts, &st),
                      "step %zu refused", i);
        actions_text(st.actions, got, sizeof(got));
        actions_text(script[i].actions, want, sizeof(want));
        ck_assert_msg(st.state == script[i].state && st.actions == script[i].actions,
                      "step %zu: %s [%s], want %s [%s]", i, poller_state_name(st.state), got,
                      poller_state_name(script[i].state), want);
        s = st.state;
        a = st.apply;
    }
}
END_TEST

START_TEST(names)
{
    for (unsigned s = 0; s < POLLER_STATE_COUNT; s++)
        ck_assert_str_ne(poller_state_name((poller_state_t)s), "unknown");
    for (unsigned a = 0; a < POLLER_APPLY_COUNT; a++)
        ck_assert_str_ne(poller_apply_name((poller_apply_t)a), "unknown");
    for (unsigned ev = 0; ev < POLLER_EV_COUNT; ev++)
        ck_assert_str_ne(poller_event_name((poller_event_t)ev), "unknown");
    for (unsigned i = 0; i < POLLER_DO_COUNT; i++)
        ck_assert_str_ne(poller_action_name(1u << i), "unknown");
    ck_assert_str_eq(poller_state_name(POLLER_STATE_COUNT), "unknown");
    ck_assert_str_eq(poller_action_name(3), "unknown");
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("poller_fsm");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, transition, 0, (int)N_ROWS);
    tcase_add_test(tc, unlisted_pairs_are_bugs);
    tcase_add_test(tc, steps_keep_the_timer_and_request_rules);
    tcase_add_test(tc, a_leader_catches_up);
    tcase_add_test(tc, a_refused_type_is_dropped);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return s;
}
