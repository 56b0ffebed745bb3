/*
 * poller_fsm: the poller's transitions, as a pure function of the states,
 * the event and the facts.  poller_fsm_step() is the one dispatch: a switch
 * on the state, then on the event; a pair not listed is impossible and is
 * answered with false, which poller.c treats as a bug.  The contracts that
 * make a pair impossible are those of store.h (a job's callback runs before
 * `lost`; `ready` follows `lost` or the start) and http_client.h (a
 * cancelled request never calls back), plus the poller's own rule that
 * every way out of a timed state deletes the timer.
 */
#include "poller_fsm.h"

bool poller_fsm_applying(poller_apply_t apply)
{
    return apply == POLLER_APPLY_BUSY || apply == POLLER_APPLY_BUSY_NOTE;
}

/*
 * Which sub-states a state can have.  A batch is handed to the store only
 * while requests run (or after a stop, to drain), so every other state has
 * the apply side idle; FULL waits for a commit, so one is in flight.
 */
static bool combination_possible(poller_state_t state, poller_apply_t apply)
{
    switch (state) {
    case POLLER_SLEEPING:
    case POLLER_FETCHING:
    case POLLER_CHECKING:
    case POLLER_CHECK_WAIT:
    case POLLER_STOPPED:
        return true;
    case POLLER_FULL:
        return poller_fsm_applying(apply);
    case POLLER_WAITING_DB:
    case POLLER_LOCKING:
    case POLLER_STANDBY:
    case POLLER_SETUP_WAIT:
    case POLLER_LOADING:
        return apply == POLLER_APPLY_IDLE;
    case POLLER_STATE_COUNT:
        break;
    }
    return false;
}

/* What a transition says; WANTS_FETCH and WANTS_CHECK leave the state to fetch() and check(). */
typedef enum verdict {
    REFUSED,     /* the pair cannot happen */
    DONE,        /* the step is complete */
    WANTS_FETCH, /* fetch next, if the bound and the rate limit allow */
    WANTS_CHECK  /* check the next type, if the rate limit allows */
} verdict_t;

static verdict_t stop(poller_step_t *s)
{
    s->state = POLLER_STOPPED;
    s->actions |= POLLER_DO_CANCEL_TIMER | POLLER_DO_CANCEL_REQUEST;
    return DONE;
}

/* The store failed the poller's jobs before saying it is lost: none is left. */
static verdict_t lost(poller_step_t *s)
{
    if (poller_fsm_applying(s->apply))
        return REFUSED;
    s->state = POLLER_WAITING_DB;
    s->apply = POLLER_APPLY_IDLE; /* the rewind forgets an owed note */
    s->actions |= POLLER_DO_CANCEL_TIMER | POLLER_DO_REWIND | POLLER_DO_RESIGN;
    return DONE;
}

static verdict_t lock(poller_step_t *s, unsigned also)
{
    s->state = POLLER_LOCKING;
    s->actions |= also | POLLER_DO_LOCK;
    return DONE;
}

/*
 * The lock or cursor query failed.  On a lost connection `ready` restarts
 * the poller; on a live one (a statement error) it retries on the timer
 * rather than at once, so a persistent error does not spin.
 */
static verdict_t setup_failed(poller_step_t *s, const poller_facts_t *f)
{
    s->actions |= POLLER_DO_LOG_ERROR;
    if (!f->store_ready) {
        s->state = POLLER_WAITING_DB;
        return DONE;
    }
    s->state = POLLER_SETUP_WAIT;
    s->actions |= POLLER_DO_ARM_RETRY;
    return DONE;
}

/* Hands the pending events to the store when it has none. */
static void hand_over(poller_step_t *s, const poller_facts_t *f)
{
    if (poller_fsm_applying(s->apply) || f->pending_events == 0 || !f->store_ready)
        return;
    s->apply = s->apply == POLLER_APPLY_IDLE_NOTE ? POLLER_APPLY_BUSY_NOTE : POLLER_APPLY_BUSY;
    s->actions |= POLLER_DO_APPLY;
}

/*
 * The one place that decides to fetch, for every transition that asks:
 * not beyond the bound of events fetched ahead (a commit asks again), and
 * not faster than the rate limit.  A hand-over or a start leaves nothing
 * pending.
 */
static void fetch(poller_step_t *s, const poller_facts_t *f)
{
    size_t pending = s->actions & (POLLER_DO_APPLY | POLLER_DO_START) ? 0 : f->pending_events;
    if (pending >= POLLER_MAX_PENDING_EVENTS) {
        s->state = POLLER_FULL;
    } else if (f->rate_wait_ms > 0) {
        s->state = POLLER_SLEEPING;
        s->actions |= POLLER_DO_ARM_RATE;
        s->wait_ms = f->rate_wait_ms;
    } else {
        s->state = POLLER_FETCHING;
        s->actions |= POLLER_DO_FETCH;
    }
}

/* The one place that decides to send a type check: not faster than the rate limit. */
static void check(poller_step_t *s, const poller_facts_t *f)
{
    if (f->rate_wait_ms > 0) {
        s->state = POLLER_CHECK_WAIT;
        s->actions |= POLLER_DO_ARM_RATE;
        s->wait_ms = f->rate_wait_ms;
    } else {
        s->state = POLLER_CHECKING;
        s->actions |= POLLER_DO_CHECK_TYPE;
    }
}

/* A 400 to a page: ask about each type in use before fetching again. */
static verdict_t page_refused(poller_step_t *s)
{
    s->actions |= POLLER_DO_LOG_ERROR | POLLER_DO_CHECK_TYPES;
    return WANTS_CHECK;
}

/*
 * A type check answered.  When the round is over: with some names refused
 * and some left, fetch with those left; with every name refused, back off
 * and ask about them all again; with none refused, the 400 was about
 * something else, so back off and fetch again (the next 400 starts another
 * round, each one after a longer wait).
 */
static verdict_t type_checked(poller_step_t *s, const poller_facts_t *f)
{
    if (f->types_unchecked > 0)
        return WANTS_CHECK;
    if (f->types_usable == 0) {
        s->state = POLLER_CHECK_WAIT;
        s->actions |= POLLER_DO_BACKOFF_CHECK;
        return DONE;
    }
    if (f->filter_refused) {
        s->actions |= POLLER_DO_USE_TYPES;
        return WANTS_FETCH;
    }
    s->state = POLLER_SLEEPING;
    s->actions |= POLLER_DO_BACKOFF_CHECK;
    return DONE;
}

/* The timer before a type check: after every name was refused, a new round. */
static verdict_t check_timer(poller_step_t *s, const poller_facts_t *f)
{
    if (f->types_unchecked == 0)
        s->actions |= POLLER_DO_CHECK_TYPES;
    return WANTS_CHECK;
}

static verdict_t page_full(poller_step_t *s, const poller_facts_t *f)
{
    hand_over(s, f);
    return WANTS_FETCH;
}

/* A short page is the end of the stream for now: say so, with or after the commit. */
static verdict_t page_short(poller_step_t *s, const poller_facts_t *f)
{
    if (f->pending_events > 0)
        s->actions |= POLLER_DO_MARK_ENDS;
    else if (poller_fsm_applying(s->apply))
        s->apply = POLLER_APPLY_BUSY_NOTE;
    else
        s->actions |= POLLER_DO_NOTE;
    s->state = POLLER_SLEEPING;
    s->actions |= POLLER_DO_ARM_POLL;
    hand_over(s, f);
    return DONE;
}

static verdict_t applied(poller_step_t *s, const poller_facts_t *f)
{
    s->actions |= POLLER_DO_COMMITTED;
    if (s->apply == POLLER_APPLY_BUSY_NOTE && !f->pending_batch) {
        s->actions |= POLLER_DO_NOTE;
        s->apply = POLLER_APPLY_IDLE;
    } else {
        /* Something fetched since: the note waits for a later commit. */
        s->apply = s->apply == POLLER_APPLY_BUSY_NOTE ? POLLER_APPLY_IDLE_NOTE : POLLER_APPLY_IDLE;
    }
    hand_over(s, f);
    return s->state == POLLER_FULL ? WANTS_FETCH : DONE;
}

/* Every fetched-but-uncommitted event goes; fetching restarts from the cursor. */
static verdict_t apply_failed(poller_step_t *s, const poller_facts_t *f)
{
    s->actions |= POLLER_DO_LOG_ERROR | POLLER_DO_REWIND;
    s->apply = POLLER_APPLY_IDLE;
    if (s->state == POLLER_STOPPED)
        return DONE;
    s->actions |= POLLER_DO_CANCEL_TIMER;
    if (!f->store_ready) {
        s->state = POLLER_WAITING_DB; /* `lost` follows */
        return DONE;
    }
    s->state = POLLER_SLEEPING;
    s->actions |= POLLER_DO_BACKOFF_APPLY;
    return DONE;
}

/* The apply side's events: legal only while a batch is in flight. */
static verdict_t apply_event(poller_step_t *s, poller_event_t ev, const poller_facts_t *f)
{
    switch (s->apply) {
    case POLLER_APPLY_BUSY:
    case POLLER_APPLY_BUSY_NOTE:
        return ev == POLLER_EV_APPLIED ? applied(s, f) : apply_failed(s, f);
    case POLLER_APPLY_IDLE:
    case POLLER_APPLY_IDLE_NOTE:
    case POLLER_APPLY_COUNT:
        break;
    }
    return REFUSED;
}

static verdict_t dispatch(poller_step_t *s, poller_event_t ev, const poller_facts_t *f)
{
    switch (s->state) {
    case POLLER_WAITING_DB:
        switch (ev) {
        case POLLER_EV_STORE_READY:
            return lock(s, POLLER_DO_CANCEL_TIMER | POLLER_DO_RESIGN);
        case POLLER_EV_STORE_LOST:
            return lost(s);
        case POLLER_EV_STOP:
            return stop(s);
        default:
            return REFUSED;
        }
    case POLLER_LOCKING:
        switch (ev) {
        case POLLER_EV_LOCK_FAILED:
            return setup_failed(s, f);
        case POLLER_EV_LOCK_BUSY:
            s->state = POLLER_STANDBY;
            s->actions |= POLLER_DO_STANDBY | POLLER_DO_ARM_RETRY;
            return DONE;
        case POLLER_EV_LOCK_HELD:
            s->state = POLLER_LOADING;
            s->actions |= POLLER_DO_LEAD | POLLER_DO_LOAD_CURSOR;
            return DONE;
        case POLLER_EV_STOP:
            return stop(s);
        default:
            return REFUSED;
        }
    case POLLER_STANDBY:
    case POLLER_SETUP_WAIT:
        switch (ev) {
        case POLLER_EV_TIMER:
            return lock(s, 0);
        case POLLER_EV_STORE_LOST:
            return lost(s);
        case POLLER_EV_STOP:
            return stop(s);
        default:
            return REFUSED;
        }
    case POLLER_LOADING:
        switch (ev) {
        case POLLER_EV_CURSOR_FAILED:
            return setup_failed(s, f);
        case POLLER_EV_CURSOR_LOADED:
            s->actions |= POLLER_DO_START;
            return WANTS_FETCH;
        case POLLER_EV_STOP:
            return stop(s);
        default:
            return REFUSED;
        }
    case POLLER_SLEEPING:
        switch (ev) {
        case POLLER_EV_TIMER:
            return WANTS_FETCH;
        case POLLER_EV_STORE_LOST:
            return lost(s);
        case POLLER_EV_STOP:
            return stop(s);
        case POLLER_EV_APPLIED:
        case POLLER_EV_APPLY_FAILED:
            return apply_event(s, ev, f);
        default:
            return REFUSED;
        }
    case POLLER_FULL:
        switch (ev) {
        case POLLER_EV_STOP:
            return stop(s);
        case POLLER_EV_APPLIED:
        case POLLER_EV_APPLY_FAILED:
            return apply_event(s, ev, f);
        default:
            return REFUSED;
        }
    case POLLER_FETCHING:
        switch (ev) {
        case POLLER_EV_FETCH_FAILED:
            s->state = POLLER_SLEEPING;
            s->actions |= POLLER_DO_BACKOFF_FETCH;
            return DONE;
        case POLLER_EV_PAGE_FULL:
            return page_full(s, f);
        case POLLER_EV_PAGE_SHORT:
            return page_short(s, f);
        case POLLER_EV_PAGE_REFUSED:
            return page_refused(s);
        case POLLER_EV_STORE_LOST:
            return lost(s);
        case POLLER_EV_STOP:
            return stop(s);
        case POLLER_EV_APPLIED:
        case POLLER_EV_APPLY_FAILED:
            return apply_event(s, ev, f);
        default:
            return REFUSED;
        }
    case POLLER_CHECKING:
        switch (ev) {
        case POLLER_EV_TYPE_CHECKED:
            return type_checked(s, f);
        case POLLER_EV_CHECK_FAILED:
            s->state = POLLER_CHECK_WAIT;
            s->actions |= POLLER_DO_BACKOFF_FETCH;
            return DONE;
        case POLLER_EV_STORE_LOST:
            return lost(s);
        case POLLER_EV_STOP:
            return stop(s);
        case POLLER_EV_APPLIED:
        case POLLER_EV_APPLY_FAILED:
            return apply_event(s, ev, f);
        default:
            return REFUSED;
        }
    case POLLER_CHECK_WAIT:
        switch (ev) {
        case POLLER_EV_TIMER:
            return check_timer(s, f);
        case POLLER_EV_STORE_LOST:
            return lost(s);
        case POLLER_EV_STOP:
            return stop(s);
        case POLLER_EV_APPLIED:
        case POLLER_EV_APPLY_FAILED:
            return apply_event(s, ev, f);
        default:
            return REFUSED;
        }
    case POLLER_STOPPED:
        switch (ev) {
        case POLLER_EV_STORE_READY:
        case POLLER_EV_STORE_LOST:
        case POLLER_EV_STOP:
        case POLLER_EV_LOCK_FAILED:
        case POLLER_EV_LOCK_BUSY:
        case POLLER_EV_LOCK_HELD:
        case POLLER_EV_CURSOR_FAILED:
        case POLLER_EV_CURSOR_LOADED:
            return DONE; /* late news: nothing more is started */
        case POLLER_EV_APPLIED:
        case POLLER_EV_APPLY_FAILED:
            return apply_event(s, ev, f);
        default:
            return REFUSED;
        }
    case POLLER_STATE_COUNT:
        break;
    }
    return REFUSED;
}

bool poller_fsm_step(poller_state_t state, poller_apply_t apply, poller_event_t ev,
                     const poller_facts_t *facts, poller_step_t *out)
{
    poller_step_t s = {.state = state, .apply = apply, .actions = 0, .wait_ms = 0};
    if ((unsigned)state >= POLLER_STATE_COUNT || (unsigned)apply >= POLLER_APPLY_COUNT ||
        (unsigned)ev >= POLLER_EV_COUNT || !combination_possible(state, apply))
        return false;
    verdict_t v = dispatch(&s, ev, facts);
    if (v == WANTS_FETCH)
        fetch(&s, facts);
    else if (v == WANTS_CHECK)
        check(&s, facts);
    if (v == REFUSED || !combination_possible(s.state, s.apply))
        return false;
    *out = s;
    return true;
}

const char *poller_state_name(poller_state_t state)
{
    static const char *const names[POLLER_STATE_COUNT] = {
        [POLLER_WAITING_DB] = "waiting_db",
        [POLLER_LOCKING] = "locking",
        [POLLER_STANDBY] = "standby",
        [POLLER_SETUP_WAIT] = "setup_wait",
        [POLLER_LOADING] = "loading",
        [POLLER_SLEEPING] = "sleeping",
        [POLLER_FULL] = "full",
        [POLLER_FETCHING] = "fetching",
        [POLLER_CHECKING] = "checking",
        [POLLER_CHECK_WAIT] = "check_wait",
        [POLLER_STOPPED] = "stopped",
    };
    return (unsigned)state < POLLER_STATE_COUNT ? names[state] : "unknown";
}

const char *poller_apply_name(poller_apply_t apply)
{
    static const char *const names[POLLER_APPLY_COUNT] = {
        [POLLER_APPLY_IDLE] = "idle",
        [POLLER_APPLY_IDLE_NOTE] = "idle_note",
        [POLLER_APPLY_BUSY] = "busy",
        [POLLER_APPLY_BUSY_NOTE] = "busy_note",
    };
    return (unsigned)apply < POLLER_APPLY_COUNT ? names[apply] : "unknown";
}

const char *poller_event_name(poller_event_t ev)
{
    static const char *const names[POLLER_EV_COUNT] = {
        [POLLER_EV_STORE_READY] = "store_ready",
        [POLLER_EV_STORE_LOST] = "store_lost",
        [POLLER_EV_STOP] = "stop",
        [POLLER_EV_TIMER] = "timer",
        [POLLER_EV_LOCK_FAILED] = "lock_failed",
        [POLLER_EV_LOCK_BUSY] = "lock_busy",
        [POLLER_EV_LOCK_HELD] = "lock_held",
        [POLLER_EV_CURSOR_FAILED] = "cursor_failed",
        [POLLER_EV_CURSOR_LOADED] = "cursor_loaded",
        [POLLER_EV_FETCH_FAILED] = "fetch_failed",
        [POLLER_EV_PAGE_FULL] = "page_full",
        [POLLER_EV_PAGE_SHORT] = "page_short",
        [POLLER_EV_PAGE_REFUSED] = "page_refused",
        [POLLER_EV_TYPE_CHECKED] = "type_checked",
        [POLLER_EV_CHECK_FAILED] = "check_failed",
        [POLLER_EV_APPLIED] = "applied",
        [POLLER_EV_APPLY_FAILED] = "apply_failed",
    };
    return (unsigned)ev < POLLER_EV_COUNT ? names[ev] : "unknown";
}

const char *poller_action_name(unsigned action_bit)
{
    static const char *const names[POLLER_DO_COUNT] = {
        "cancel_timer",  "cancel_request", "log_error",     "rewind",      "resign",
        "lead",          "standby",        "start",         "committed",   "mark_ends",
        "note",          "lock",           "load_cursor",   "arm_retry",   "arm_poll",
        "arm_rate",      "backoff_fetch",  "backoff_apply", "check_types", "use_types",
        "backoff_check", "fetch",          "check_type",    "apply",
    };
    for (unsigned i = 0; i < POLLER_DO_COUNT; i++)
        if (action_bit == 1u << i)
            return names[i];
    return "unknown";
}
