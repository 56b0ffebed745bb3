/*
 * webhook_fsm: the transition table of a webhook group (see webhook_fsm.h).
 */
#include "webhook_fsm.h"

#include <stddef.h>

static webhook_group_step_t to(webhook_group_state_t next, webhook_group_action_t action)
{
    webhook_group_step_t st = {next, action};
    return st;
}

webhook_group_step_t webhook_group_step(webhook_group_state_t s, webhook_group_event_t ev)
{
    switch (s) {
    case WEBHOOK_GROUP_OPEN:
        switch (ev) {
        case WEBHOOK_GROUP_EV_ADD:
            return to(WEBHOOK_GROUP_OPEN, WEBHOOK_GROUP_DO_QUEUE);
        case WEBHOOK_GROUP_EV_FLUSH:
            return to(WEBHOOK_GROUP_COMMITTING, WEBHOOK_GROUP_DO_APPLY);
        case WEBHOOK_GROUP_EV_CLOSE:
            /* Never handed to the store: nothing of it was stored. */
            return to(WEBHOOK_GROUP_ANSWERED, WEBHOOK_GROUP_DO_ANSWER_CLOSING);
        case WEBHOOK_GROUP_EV_COMMITTED:
        case WEBHOOK_GROUP_EV_FAILED:
            break;
        }
        break;
    case WEBHOOK_GROUP_COMMITTING:
        switch (ev) {
        case WEBHOOK_GROUP_EV_COMMITTED:
            return to(WEBHOOK_GROUP_ANSWERED, WEBHOOK_GROUP_DO_ANSWER_STORED);
        case WEBHOOK_GROUP_EV_FAILED:
            return to(WEBHOOK_GROUP_ANSWERED, WEBHOOK_GROUP_DO_ANSWER_RETRY);
        case WEBHOOK_GROUP_EV_CLOSE:
            /* The connections go with the listener, so the requests are
             * answered now; the store still owns the batch and reports
             * on it later. */
            return to(WEBHOOK_GROUP_ORPHANED, WEBHOOK_GROUP_DO_ANSWER_CLOSING);
        case WEBHOOK_GROUP_EV_ADD:
        case WEBHOOK_GROUP_EV_FLUSH:
            break;
        }
        break;
    case WEBHOOK_GROUP_ORPHANED:
        switch (ev) {
        case WEBHOOK_GROUP_EV_COMMITTED:
        case WEBHOOK_GROUP_EV_FAILED:
            return to(WEBHOOK_GROUP_ANSWERED, WEBHOOK_GROUP_DO_RELEASE);
        case WEBHOOK_GROUP_EV_ADD:
        case WEBHOOK_GROUP_EV_FLUSH:
        case WEBHOOK_GROUP_EV_CLOSE:
            break;
        }
        break;
    case WEBHOOK_GROUP_ANSWERED:
        break;
    }
    return to(s, WEBHOOK_GROUP_DO_BUG);
}

const char *webhook_group_state_name(webhook_group_state_t s)
{
    switch (s) {
    case WEBHOOK_GROUP_OPEN:
        return "open";
    case WEBHOOK_GROUP_COMMITTING:
        return "committing";
    case WEBHOOK_GROUP_ORPHANED:
        return "orphaned";
    case WEBHOOK_GROUP_ANSWERED:
        return "answered";
    }
    return "unknown";
}

const char *webhook_group_event_name(webhook_group_event_t ev)
{
    switch (ev) {
    case WEBHOOK_GROUP_EV_ADD:
        return "add";
    case WEBHOOK_GROUP_EV_FLUSH:
        return "flush";
    case WEBHOOK_GROUP_EV_COMMITTED:
        return "committed";
    case WEBHOOK_GROUP_EV_FAILED:
        return "failed";
    case WEBHOOK_GROUP_EV_CLOSE:
        return "close";
    }
    return "unknown";
}

const char *webhook_group_action_name(webhook_group_action_t a)
{
    switch (a) {
    case WEBHOOK_GROUP_DO_QUEUE:
        return "queue";
    case WEBHOOK_GROUP_DO_APPLY:
        return "apply";
    case WEBHOOK_GROUP_DO_ANSWER_STORED:
        return "answer_stored";
    case WEBHOOK_GROUP_DO_ANSWER_RETRY:
        return "answer_retry";
    case WEBHOOK_GROUP_DO_ANSWER_CLOSING:
        return "answer_closing";
    case WEBHOOK_GROUP_DO_RELEASE:
        return "release";
    case WEBHOOK_GROUP_DO_BUG:
        return "bug";
    }
    return "unknown";
}
