/*
 * reconciler_fsm: the transitions.
 *
 *   IDLE -START-> WAIT_STORE -BEGIN-> STAGING (dry) -STAGED-> OPENING
 *                                  \-> OPENING -OPENED-> LISTING -LISTED->
 *   SWEEPING -SWEPT_ROOTS-> LISTING (children) -LISTED-> SWEEPING
 *            -SWEPT_CHILDREN-> REPORTING -REPORTED-> IDLE
 *
 * A database failure in any busy state goes back to WAIT_STORE (a real
 * run resumes from its stored progress); a dry run's temporary tables die
 * with the connection, so there it ends the run instead.
 */
#include "reconciler_fsm.h"

#include <stdlib.h>

static bool set(recon_state_t *next, recon_action_t *action, recon_state_t s, recon_action_t a)
{
    *next = s;
    *action = a;
    return true;
}

bool reconciler_fsm_step(recon_state_t state, recon_input_t in, bool dry, recon_state_t *next,
                         recon_action_t *action)
{
    bool busy = state != RECON_IDLE && state != RECON_WAIT_STORE;
    if (in == RECON_IN_DB_FAILED && busy)
        return dry ? set(next, action, RECON_IDLE, RECON_DO_FINISH_FAIL)
                   : set(next, action, RECON_WAIT_STORE, RECON_DO_RETRY);
    if (in == RECON_IN_FATAL && busy)
        return set(next, action, RECON_IDLE, RECON_DO_FINISH_FAIL);
    switch (state) {
    case RECON_IDLE:
        if (in == RECON_IN_START)
            return set(next, action, RECON_WAIT_STORE, RECON_DO_NOTHING);
        return false;
    case RECON_WAIT_STORE:
        if (in == RECON_IN_BEGIN)
            return dry ? set(next, action, RECON_STAGING, RECON_DO_STAGE)
                       : set(next, action, RECON_OPENING, RECON_DO_OPEN);
        if (in == RECON_IN_GATE_CLOSED)
            return set(next, action, RECON_WAIT_STORE, RECON_DO_WAIT_GATE);
        if (in == RECON_IN_DB_FAILED)
            return set(next, action, RECON_WAIT_STORE, RECON_DO_NOTHING);
        return false;
    case RECON_STAGING:
        if (in == RECON_IN_STAGED)
            return set(next, action, RECON_OPENING, RECON_DO_OPEN);
        return false;
    case RECON_OPENING:
        if (in == RECON_IN_OPENED_LISTING)
            return set(next, action, RECON_LISTING, RECON_DO_LIST);
        if (in == RECON_IN_OPENED_DONE)
            return set(next, action, RECON_REPORTING, RECON_DO_REPORT);
        return false;
    case RECON_LISTING:
        if (in == RECON_IN_LISTED)
            return set(next, action, RECON_SWEEPING, RECON_DO_SWEEP);
        return false;
    case RECON_SWEEPING:
        if (in == RECON_IN_SWEPT_ROOTS)
            return set(next, action, RECON_LISTING, RECON_DO_LIST_NEXT);
        if (in == RECON_IN_SWEPT_CHILDREN)
            return set(next, action, RECON_REPORTING, RECON_DO_REPORT);
        return false;
    case RECON_REPORTING:
        if (in == RECON_IN_REPORTED)
            return set(next, action, RECON_IDLE, RECON_DO_FINISH_OK);
        return false;
    }
    abort(); /* unreachable: every recon_state_t is handled above */
}

const char *reconciler_fsm_state_name(recon_state_t s)
{
    switch (s) {
    case RECON_IDLE:
        return "idle";
    case RECON_WAIT_STORE:
        return "wait_store";
    case RECON_STAGING:
        return "staging";
    case RECON_OPENING:
        return "opening";
    case RECON_LISTING:
        return "listing";
    case RECON_SWEEPING:
        return "sweeping";
    case RECON_REPORTING:
        return "reporting";
    }
    return "?";
}
