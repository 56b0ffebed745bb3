/*
 * poller_fsm: the poller's state machine as a pure function.
 *
 * The poller (poller.c) turns everything that happens to it -- the store
 * becoming ready or lost, a lock or cursor result, its timer, an HTTP
 * response, a batch committed or not, a stop -- into one poller_event_t,
 * gathers a few facts (poller_facts_t), and asks poller_fsm_step() what to
 * do.  The answer is the next state, the next apply sub-state and a set of
 * actions that poller.c carries out.  Nothing here touches the network, the
 * database, a clock or a log, so every transition is unit-tested.
 *
 * Two machines run side by side.  The main state (poller_state_t) is the
 * request side: lock, cursor, timer, the GET in flight, and the type
 * check.  The apply
 * sub-state (poller_apply_t) is the commit side: at most one batch is in
 * the store at a time, and what is owed once it commits.  Events of the
 * apply side (APPLIED, APPLY_FAILED) are legal only while a batch is in
 * flight, which is possible only in SLEEPING, FULL, FETCHING, CHECKING,
 * CHECK_WAIT and STOPPED.
 *
 * The type check is a sub-activity of the request side.  WorkOS answers
 * 400 to a whole GET /events when one name of its type filter is unknown to
 * the environment, so a 400 to a page (PAGE_REFUSED) starts a check round:
 * one `limit=1` request per type still in use (CHECKING, paced by the rate
 * limiter in CHECK_WAIT), each answered 200 (kept) or 400 (refused, dropped
 * from the filter).  A round that refused a name resumes fetching with the
 * others; one that refused every name backs off and checks them all again;
 * one that refused none (the 400 was about something else) backs off and
 * fetches again.  The first page of a start is the check of the whole list:
 * a 200 to it proves every name known, so a healthy start costs no extra
 * request.
 */
#ifndef WORKOS_SYNCD_POLLER_FSM_H
#define WORKOS_SYNCD_POLLER_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wur.h"

/* Events fetched ahead of the commit, at most; then fetching waits. */
#define POLLER_MAX_PENDING_EVENTS 1000

typedef enum poller_state {
    POLLER_WAITING_DB, /* the store is not ready; nothing to do until it is */
    POLLER_LOCKING,    /* asking for the advisory lock that makes this instance the poller */
    POLLER_STANDBY,    /* another instance holds the lock; the retry timer is armed */
    POLLER_SETUP_WAIT, /* taking the lock or reading the cursor failed; the retry timer is armed */
    POLLER_LOADING,    /* reading the cursor from the database */
    POLLER_SLEEPING,   /* the timer is armed: poll interval, backoff or rate limit */
    POLLER_FULL,       /* no timer: fetched ahead to the bound, waiting for a commit */
    POLLER_FETCHING,   /* GET /events in flight */
    POLLER_CHECKING,   /* a type check (GET /events?limit=1 for one type) in flight */
    POLLER_CHECK_WAIT, /* the timer is armed before the next type check: rate limit or backoff */
    POLLER_STOPPED,    /* shutting down: no new requests; a batch in flight still commits */
    POLLER_STATE_COUNT /* number of states, not a state */
} poller_state_t;

typedef enum poller_apply {
    POLLER_APPLY_IDLE,      /* no batch in the store */
    POLLER_APPLY_IDLE_NOTE, /* none; a caught-up note is still owed after the next commit */
    POLLER_APPLY_BUSY,      /* a batch is committing */
    POLLER_APPLY_BUSY_NOTE, /* one is; the end of the stream came with nothing pending, so
                               note caught-up once it commits, if nothing is pending then */
    POLLER_APPLY_COUNT      /* number of apply sub-states, not one */
} poller_apply_t;

typedef enum poller_event {
    POLLER_EV_STORE_READY,   /* the store connected and its schema is current */
    POLLER_EV_STORE_LOST,    /* the connection is gone; the poller's jobs have failed */
    POLLER_EV_STOP,          /* shutting down */
    POLLER_EV_TIMER,         /* the poller's one timer fired */
    POLLER_EV_LOCK_FAILED,   /* the lock query failed */
    POLLER_EV_LOCK_BUSY,     /* another instance holds the lock */
    POLLER_EV_LOCK_HELD,     /* this instance holds the lock */
    POLLER_EV_CURSOR_FAILED, /* the cursor query failed */
    POLLER_EV_CURSOR_LOADED, /* the cursor (or the range start) was read */
    POLLER_EV_FETCH_FAILED,  /* the GET failed or could not start; nothing was taken */
    POLLER_EV_PAGE_FULL,     /* a full page was taken: more follow at once */
    POLLER_EV_PAGE_SHORT,    /* a short page was taken: the end of the stream for now */
    POLLER_EV_PAGE_REFUSED,  /* the GET was answered 400: maybe a type the API does not know */
    POLLER_EV_TYPE_CHECKED,  /* a type check was answered 200 or 400; its verdict is recorded */
    POLLER_EV_CHECK_FAILED,  /* a type check failed otherwise, or could not start */
    POLLER_EV_APPLIED,       /* the batch in flight committed */
    POLLER_EV_APPLY_FAILED,  /* the batch in flight did not commit */
    POLLER_EV_COUNT          /* number of events, not an event */
} poller_event_t;

/* What the machine needs to know besides its states, read when an event comes. */
typedef struct poller_facts {
    bool store_ready;       /* the store can take a job now */
    bool pending_batch;     /* a page was taken since the last hand-over (maybe no events) */
    size_t pending_events;  /* events fetched and not yet handed to the store */
    int64_t rate_wait_ms;   /* until the rate limiter allows a request; 0 means now */
    size_t types_unchecked; /* types the current check round has still to ask about */
    size_t types_usable;    /* types not refused */
    bool filter_refused;    /* the filter requests are sent with names a refused type */
} poller_facts_t;

/*
 * Actions, carried out by poller.c in this (bit) order.  A step arms the
 * timer at most once (one ARM_* or BACKOFF_*) and starts at most one of
 * FETCH, CHECK_TYPE, LOCK and LOAD_CURSOR.
 */
typedef enum poller_action {
    POLLER_DO_CANCEL_TIMER = 1 << 0,   /* delete the timer */
    POLLER_DO_CANCEL_REQUEST = 1 << 1, /* cancel the GET in flight */
    POLLER_DO_LOG_ERROR = 1 << 2,      /* log the failure the event reports */
    POLLER_DO_REWIND = 1 << 3,         /* drop what is fetched; refetch from the cursor */
    POLLER_DO_RESIGN = 1 << 4,         /* no longer the leader */
    POLLER_DO_LEAD = 1 << 5,           /* the leader now */
    POLLER_DO_STANDBY = 1 << 6,        /* say (once) that another instance polls */
    POLLER_DO_START = 1 << 7,          /* take the loaded cursor, rewind to it */
    POLLER_DO_COMMITTED = 1 << 8,      /* the batch in flight is the cursor now */
    POLLER_DO_MARK_ENDS = 1 << 9,      /* the pending batch reaches the stream's end */
    POLLER_DO_NOTE = 1 << 10,          /* record caught-up in the store */
    POLLER_DO_LOCK = 1 << 11,          /* ask for the poller lock */
    POLLER_DO_LOAD_CURSOR = 1 << 12,   /* read the cursor */
    POLLER_DO_ARM_RETRY = 1 << 13,     /* arm the timer for a lock retry */
    POLLER_DO_ARM_POLL = 1 << 14,      /* arm the timer for the poll interval */
    POLLER_DO_ARM_RATE = 1 << 15,      /* arm the timer for step.wait_ms */
    POLLER_DO_BACKOFF_FETCH = 1 << 16, /* request failed: report, back off, arm */
    POLLER_DO_BACKOFF_APPLY = 1 << 17, /* apply failed: back off, arm */
    POLLER_DO_CHECK_TYPES = 1 << 18,   /* start a check round: every type in use (or, when none
                                          is, every type) is to be asked about */
    POLLER_DO_USE_TYPES = 1 << 19,     /* the round refused some: filter with the rest from now */
    POLLER_DO_BACKOFF_CHECK = 1 << 20, /* the round refused all or none: say so, back off, arm */
    POLLER_DO_FETCH = 1 << 21,         /* start the next GET */
    POLLER_DO_CHECK_TYPE = 1 << 22,    /* start the next type check */
    POLLER_DO_APPLY = 1 << 23,         /* hand the pending batch to the store */
} poller_action_t;

#define POLLER_DO_COUNT 24 /* number of actions */

/* The answer to one event. */
typedef struct poller_step {
    poller_state_t state; /* the next state */
    poller_apply_t apply; /* the next apply sub-state */
    unsigned actions;     /* POLLER_DO_* */
    int64_t wait_ms;      /* for POLLER_DO_ARM_RATE */
} poller_step_t;

/*
 * The transition for `ev` in (`state`, `apply`) given `facts`.  Fills *out
 * and returns true.  Returns false, leaving *out alone, when the pair
 * cannot happen (an event in a state that never expects it, or an apply
 * sub-state the state cannot have): a bug in the poller or a broken
 * contract of the store or the HTTP client.
 */
bool poller_fsm_step(poller_state_t state, poller_apply_t apply, poller_event_t ev,
                     const poller_facts_t *facts, poller_step_t *out) WUR;

/* True while a batch is in the store (the BUSY sub-states). */
bool poller_fsm_applying(poller_apply_t apply);

/* Lower-case names for log lines ("fetching", "busy_note", "page_full", "apply"). */
const char *poller_state_name(poller_state_t state);
const char *poller_apply_name(poller_apply_t apply);
const char *poller_event_name(poller_event_t ev);
const char *poller_action_name(unsigned action_bit);

#endif
