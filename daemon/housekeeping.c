/*
 * housekeeping: a small machine that, once a second, picks the next due
 * duty of the audit trail and queues one bounded statement for it on the
 * store.  At most one statement is in flight, and each touches at most
 * HK_BATCH rows, so an apply queued behind it waits milliseconds, never a
 * whole prune.  A duty whose batch came back full runs again at once; the
 * store's FIFO lets applies queued meanwhile go first.
 *
 * The subject fill has little to do: the apply statement writes the
 * subject columns itself (migration 009), so only rows written by other
 * means (by hand, or before that migration) are left for it, and an idle
 * tick's fill is one index probe of an empty partial index.
 */
#include "housekeeping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "clock.h"
#include "log.h"
#include "rollup_step.h"

#define HK_TICK_MS 1000         /* how often an idle machine looks for work */
#define HK_PRUNE_EVERY_MS 60000 /* how often pruning is tried when nothing is left */
#define HK_BATCH 2000           /* rows one statement fills or prunes, at most */

typedef enum hk_state {
    HK_IDLE,    /* the timer is armed; nothing in flight */
    HK_FILLING, /* audit_fill_subjects in flight */
    HK_PRUNING, /* audit_prune in flight */
    HK_HEAD,    /* reading audit_head in flight */
    HK_STOPPED  /* shutting down: nothing new is queued */
} hk_state_t;

struct housekeeping {
    const config_t *cfg;
    store_t *store;
    const poller_t *poller;
    struct event *timer;
    hk_state_t state;
    bool fill_more;      /* the last fill was a full batch */
    bool prune_more;     /* the last prune was a full batch */
    int64_t prune_at_ms; /* monotonic ms of the next due prune */
    int64_t head_at_ms;  /* monotonic ms of the next due head line */
    char sql_fill[160];
    char sql_prune[400];
    char sql_head[160];
    char params[3][24]; /* the prune's text parameters */
    const char *values[3];
    rollup_step_t *rollup; /* the rollups' step, on its own connection */
};

static const char *const hk_state_names[] = {
    [HK_IDLE] = "idle", [HK_FILLING] = "filling", [HK_PRUNING] = "pruning",
    [HK_HEAD] = "head", [HK_STOPPED] = "stopped",
};

static void arm(housekeeping_t *h, int64_t ms)
{
    struct timeval tv = clock_timeval(ms);
    evtimer_add(h->timer, &tv);
}

static bool leading(const housekeeping_t *h)
{
    return h->poller == NULL || poller_leader(h->poller);
}

/* The rollup step runs where the other duties do, once the schema is current. */
static bool rollup_gate(void *arg)
{
    housekeeping_t *h = arg;
    return store_ready(h->store) && leading(h);
}

/* The integer in row 0, column 0 of a successful reply, or -1. */
static long first_int(const store_reply_t *r)
{
    if (r->res == NULL || PQntuples(r->res) < 1 || PQgetisnull(r->res, 0, 0))
        return -1;
    return strtol(PQgetvalue(r->res, 0, 0), NULL, 10);
}

static void on_done(void *arg, const store_reply_t *r);

static void run(housekeeping_t *h, hk_state_t next, const char *sql, int n_params)
{
    store_query_t q = {.sql = sql, .n_params = n_params, .values = h->values};
    h->state = next;
    store_run(h->store, &q, on_done, h);
}

/* Picks the next due duty and queues it, or arms the timer. */
static void step(housekeeping_t *h)
{
    int64_t now = clock_mono_ms();
    if (h->state != HK_IDLE)
        return;
    if (!store_ready(h->store) || !leading(h)) {
        arm(h, HK_TICK_MS);
        return;
    }
    int64_t retention = h->cfg->audit_retention_ms;
    int64_t auth =
        h->cfg->audit_auth_retention_ms != 0 ? h->cfg->audit_auth_retention_ms : retention;
    if (h->cfg->audit_head_log_interval_ms > 0 && now >= h->head_at_ms) {
        h->head_at_ms = now + h->cfg->audit_head_log_interval_ms;
        run(h, HK_HEAD, h->sql_head, 0);
    } else if ((retention > 0 || auth > 0) && (h->prune_more || now >= h->prune_at_ms)) {
        snprintf(h->params[0], sizeof(h->params[0]), "%lld", (long long)retention);
        snprintf(h->params[1], sizeof(h->params[1]), "%lld", (long long)auth);
        snprintf(h->params[2], sizeof(h->params[2]), "%d", HK_BATCH);
        h->prune_at_ms = now + HK_PRUNE_EVERY_MS;
        run(h, HK_PRUNING, h->sql_prune, 3);
    } else {
        snprintf(h->params[0], sizeof(h->params[0]), "%d", HK_BATCH);
        run(h, HK_FILLING, h->sql_fill, 1);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step(arg);
}

static void on_done(void *arg, const store_reply_t *r)
{
    housekeeping_t *h = arg;
    long n = r->err == NULL ? first_int(r) : -1;
    bool more = false;

    switch (h->state) {
    case HK_FILLING:
        h->fill_more = n >= HK_BATCH;
        more = h->fill_more;
        break;
    case HK_PRUNING:
        h->prune_more = n >= HK_BATCH;
        more = h->prune_more;
        if (n > 0)
            log_info("event=audit_pruned events=%ld", n);
        break;
    case HK_HEAD:
        if (r->res != NULL && PQntuples(r->res) == 1)
            log_info("event=audit_head link=%s hash=%s", log_q(PQgetvalue(r->res, 0, 0)),
                     log_q(PQgetvalue(r->res, 0, 1)));
        more = true; /* the head is read between duties, not instead of them */
        break;
    case HK_STOPPED:
        return;
    case HK_IDLE:
        log_error("event=bug where=housekeeping state=idle input=reply");
        abort();
    }
    if (r->err != NULL && r->answered)
        log_warn("event=housekeeping_failed state=%s error=%s", hk_state_names[h->state],
                 log_q(r->err));
    h->state = HK_IDLE;
    if (more && r->err == NULL)
        step(h);
    else
        arm(h, HK_TICK_MS);
}

housekeeping_t *housekeeping_new(struct event_base *base, const config_t *cfg, store_t *store,
                                 const poller_t *poller)
{
    housekeeping_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->cfg = cfg;
    h->store = store;
    h->poller = poller;
    h->timer = evtimer_new(base, on_timer, h);
    h->rollup = rollup_step_new(base, cfg, rollup_gate, h);
    if (h->timer == NULL || h->rollup == NULL) {
        if (h->timer != NULL)
            event_free(h->timer);
        rollup_step_free(h->rollup);
        free(h);
        return NULL;
    }
    const char *sc = cfg->schema;
    snprintf(h->sql_fill, sizeof(h->sql_fill), "SELECT %s.audit_fill_subjects($1::int)", sc);
    snprintf(h->sql_prune, sizeof(h->sql_prune),
             "SELECT %s.audit_prune("
             "CASE WHEN $1::bigint > 0 THEN now() - $1::bigint * interval '1 millisecond' END, "
             "CASE WHEN $2::bigint > 0 THEN now() - $2::bigint * interval '1 millisecond' END, "
             "$3::int)",
             sc);
    snprintf(h->sql_head, sizeof(h->sql_head),
             "SELECT link, encode(hash, 'hex') FROM %s.audit_head", sc);
    for (int i = 0; i < 3; i++)
        h->values[i] = h->params[i];
    h->state = HK_IDLE;
    h->head_at_ms = clock_mono_ms(); /* the head once at start, then at the interval */
    arm(h, HK_TICK_MS);
    return h;
}

void housekeeping_set_config(housekeeping_t *h, const config_t *cfg)
{
    if (h != NULL)
        h->cfg = cfg;
}

void housekeeping_stop(housekeeping_t *h)
{
    if (h == NULL)
        return;
    evtimer_del(h->timer);
    rollup_step_stop(h->rollup);
    h->state = HK_STOPPED;
}

void housekeeping_free(housekeeping_t *h)
{
    if (h == NULL)
        return;
    event_free(h->timer);
    rollup_step_free(h->rollup);
    free(h);
}
