/*
 * reconciler_fsm: the reconciler's run as a pure transition function.
 *
 * reconciler.c turns what happened (a store reply, the store coming or
 * going, the listing running dry) into an input, asks reconciler_fsm_step()
 * for the next state and the one action to take, and performs it.  Nothing
 * here touches the network, the database or the clock.
 */
#ifndef WORKOS_SYNCD_RECONCILER_FSM_H
#define WORKOS_SYNCD_RECONCILER_FSM_H

#include <stdbool.h>

#include "wur.h"

typedef enum recon_state {
    RECON_IDLE,       /* no run */
    RECON_WAIT_STORE, /* a run waits for the store, the gate, or a retry */
    RECON_STAGING,    /* dry run: creating the temporary tables */
    RECON_OPENING,    /* opening or resuming the run */
    RECON_LISTING,    /* listing scopes */
    RECON_SWEEPING,   /* ending a phase */
    RECON_REPORTING   /* reading the summary, or (dry run) the drift */
} recon_state_t;

typedef enum recon_input {
    RECON_IN_START,          /* a run is asked for */
    RECON_IN_BEGIN,          /* store ready and the gate open (or the retry timer fired so) */
    RECON_IN_GATE_CLOSED,    /* store ready, but this instance may not reconcile now */
    RECON_IN_STAGED,         /* dry run: the temporary tables exist */
    RECON_IN_OPENED_LISTING, /* the run is open in phase roots or children */
    RECON_IN_OPENED_DONE,    /* the run was already swept to the end */
    RECON_IN_LISTED,         /* every open scope of the phase is complete */
    RECON_IN_SWEPT_ROOTS,    /* the roots phase is closed: the children follow */
    RECON_IN_SWEPT_CHILDREN, /* the last phase is closed */
    RECON_IN_REPORTED,       /* the summary or the drift is read */
    RECON_IN_DB_FAILED,      /* a statement failed or the store went away */
    RECON_IN_FATAL           /* a failure a run cannot resume from (a dry run's) */
} recon_input_t;

typedef enum recon_action {
    RECON_DO_NOTHING,    /* nothing to do */
    RECON_DO_STAGE,      /* create the temporary tables */
    RECON_DO_OPEN,       /* open or resume the run */
    RECON_DO_LIST,       /* (re)start the listing of the current phase */
    RECON_DO_LIST_NEXT,  /* move to the children and list them */
    RECON_DO_SWEEP,      /* end the phase */
    RECON_DO_REPORT,     /* read the summary or the drift */
    RECON_DO_RETRY,      /* drop in-flight work, try again after a backoff */
    RECON_DO_WAIT_GATE,  /* try again in a few seconds */
    RECON_DO_FINISH_OK,  /* report success */
    RECON_DO_FINISH_FAIL /* report failure */
} recon_action_t;

/*
 * The step from `state` on `in` for a run (`dry`: a dry run).  Sets *next
 * and *action and returns true; returns false, leaving both untouched,
 * for a pair that cannot happen (a bug in the caller).
 */
bool reconciler_fsm_step(recon_state_t state, recon_input_t in, bool dry, recon_state_t *next,
                         recon_action_t *action) WUR;

/* A state's name, for logs. */
const char *reconciler_fsm_state_name(recon_state_t s);

#endif
