/*
 * webhook_fsm: the life of a webhook group, as a pure transition table.
 *
 * Requests that arrive while one batch commits collect in an open group;
 * when no group commits, the open one is handed to the store, and its
 * commit (or failure) answers every request in it.  The listener can be
 * freed while a group commits: its requests are answered at once and the
 * group, orphaned, waits only for the store to finish with the batch.
 * This module says what each event does in each state; webhook.c performs
 * the actions.  Pure: no I/O, no allocation, no logging.
 */
#ifndef WORKOS_SYNCD_WEBHOOK_FSM_H
#define WORKOS_SYNCD_WEBHOOK_FSM_H

typedef enum webhook_group_state {
    WEBHOOK_GROUP_OPEN,       /* holds at least one request; not yet with the store */
    WEBHOOK_GROUP_COMMITTING, /* its batch is with the store */
    WEBHOOK_GROUP_ORPHANED,   /* committing, its listener gone, its requests answered */
    WEBHOOK_GROUP_ANSWERED,   /* every request answered: the group is freed */
} webhook_group_state_t;

typedef enum webhook_group_event {
    WEBHOOK_GROUP_EV_ADD,       /* a verified, decoded request joins */
    WEBHOOK_GROUP_EV_FLUSH,     /* no other group commits: its turn */
    WEBHOOK_GROUP_EV_COMMITTED, /* the store committed its batch */
    WEBHOOK_GROUP_EV_FAILED,    /* the store did not commit its batch */
    WEBHOOK_GROUP_EV_CLOSE,     /* the listener is being freed */
} webhook_group_event_t;

typedef enum webhook_group_action {
    WEBHOOK_GROUP_DO_QUEUE,          /* append the request */
    WEBHOOK_GROUP_DO_APPLY,          /* hand the batch to the store */
    WEBHOOK_GROUP_DO_ANSWER_STORED,  /* answer every request 200, free the group */
    WEBHOOK_GROUP_DO_ANSWER_RETRY,   /* answer every request 503 (not stored), free it */
    WEBHOOK_GROUP_DO_ANSWER_CLOSING, /* answer every request 503 (shutting down) */
    WEBHOOK_GROUP_DO_RELEASE,        /* nothing left to answer: free the group */
    WEBHOOK_GROUP_DO_BUG,            /* the pair cannot happen: a broken invariant */
} webhook_group_action_t;

typedef struct webhook_group_step {
    webhook_group_state_t next; /* the state after the event (unchanged on a bug) */
    webhook_group_action_t action;
} webhook_group_step_t;

/*
 * What `ev` does to a group in state `s`: the next state and the one
 * action to perform.  A pair that cannot happen (a request joining a group
 * already with the store, a commit reported for an open group, anything
 * after ANSWERED, a value outside the enums) yields WEBHOOK_GROUP_DO_BUG
 * with the state unchanged.
 */
webhook_group_step_t webhook_group_step(webhook_group_state_t s, webhook_group_event_t ev);

/* Short static names for log lines and tests ("open", "flush", "apply"; "unknown"). */
const char *webhook_group_state_name(webhook_group_state_t s);
const char *webhook_group_event_name(webhook_group_event_t ev);
const char *webhook_group_action_name(webhook_group_action_t a);

#endif
