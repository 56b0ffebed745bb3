/*
 * reconciler: the run's I/O -- store jobs and HTTP requests -- driven by
 * the transitions of reconciler_fsm.c: every outcome becomes an input,
 * post() asks for the next state and performs the one action it names.
 *
 * LISTING keeps up to MAX_LANES listings going, each one scope (a kind,
 * and for per-parent kinds an organization or user) read page by page:
 * a page is fetched, scrubbed, applied with its progress row, then the
 * next page of the same scope is fetched.  Open scopes are read from the
 * progress table in (kind, scope) order, a batch at a time, so memory does
 * not grow with the environment.  Any database failure drops in-flight
 * work and goes back to WAIT_STORE: the progress table says where to
 * resume, exactly as after a crash.
 */
#include "reconciler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "backoff.h"
#include "clock.h"
#include "cursor_set.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "reconciler_fsm.h"

#define MAX_LANES 8
#define QUEUE_BATCH 64
#define GATE_RETRY_MS 5000
#define MAX_BODY ((size_t)8 * 1024 * 1024)
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 30000
/*
 * The reconciler's own budget, [reconcile] rate_limit a minute in each of
 * two buckets, below WorkOS' limits (6,000 per 60 s overall, 1,000 per 10 s
 * under /user_management/) by default so the poller and the application
 * sharing the key keep room; bursts of 10.
 */
#define BURST 10.0

typedef enum lane_state {
    LANE_FREE,     /* no scope */
    LANE_READY,    /* a page to fetch, waiting for budget */
    LANE_FETCHING, /* request in flight */
    LANE_APPLYING  /* page statement in flight */
} lane_state_t;

typedef struct lane {
    lane_state_t state;
    bool abandoned; /* reset while applying: clean up in the callback */
    recon_kind_t kind;
    char *scope;
    char *after;       /* the page to fetch (NULL: the first) */
    char *next;        /* applying: the cursor after this page */
    char *page;        /* applying: the page's JSON array */
    cursor_set_t seen; /* the cursors this listing has followed */
    /* A page the database refused, applied one object at a time: */
    cJSON *objects; /* its objects, NULL while the page goes whole */
    int object;     /* the one being applied */
    char *one;      /* "[object]" */
    char why[512];  /* why the database refused it, without DETAIL */
    char sqlstate[6];
    const char *values[5];
    http_request_t *req;
    struct reconciler *r;
} lane_t;

typedef struct scope_item {
    recon_kind_t kind;
    char *scope;
    char *after;
} scope_item_t;

typedef struct bucket {
    double tokens;
    int64_t at_ms;
} bucket_t;

struct reconciler {
    struct event_base *base;
    const config_t *cfg;
    store_t *store;
    http_client_t *http;
    bool dry;
    reconciler_done_fn done;
    void *arg;

    recon_state_t state;
    const char *reason;
    unsigned gen; /* bumped on every reset; a control job of an older one is stale */
    bool ctl_busy;
    char *sql[RECON_KIND_COUNT];        /* page statements */
    char *refuse_sql[RECON_KIND_COUNT]; /* records an object the database refused */
    char *sweep_sql[2], *open_sql, *queue_sql, *summary_sql;
    char **stage; /* dry run: staging statements, NULL-terminated */
    size_t stage_i;
    int report_i; /* dry run: next kind to compare */

    long long run_id;
    char run_id_text[24];
    bool children; /* the phase being listed */
    int64_t started_wall_ms, t0_ms;

    lane_t lanes[MAX_LANES];
    scope_item_t queue[QUEUE_BATCH];
    size_t q_head, q_len;
    bool q_exhausted;
    char *key_kind, *key_scope; /* keyset position in the progress table */
    char limit_text[8];
    const char *ctl_values[4];

    bucket_t overall, um;
    int64_t pause_until_ms;
    backoff_t backoff;
    struct event *timer;

    bool (*may_run)(void *arg);
    void *gate_arg;

    reconciler_result_t result;
};

/* A control statement's job: owns copies of its parameters. */
typedef struct ctl_job {
    reconciler_t *r;
    unsigned gen;
    void (*fn)(reconciler_t *r, const store_reply_t *reply);
    char *vals[4];
} ctl_job_t;

static void ctl_job_free(ctl_job_t *j)
{
    if (j == NULL)
        return;
    for (int i = 0; i < 4; i++)
        free(j->vals[i]);
    free(j);
}

static void pump(reconciler_t *r);

/* Forgets the page being applied, whole or one object at a time. */
static void drop_page(lane_t *l)
{
    free(l->page);
    free(l->one);
    cJSON_Delete(l->objects);
    l->page = l->one = NULL;
    l->objects = NULL;
}

static void lane_clear(lane_t *l)
{
    free(l->scope);
    free(l->after);
    free(l->next);
    drop_page(l);
    cursor_set_clear(&l->seen);
    l->scope = l->after = l->next = NULL;
    l->req = NULL;
    l->state = LANE_FREE;
    l->abandoned = false;
}

static void queue_clear(reconciler_t *r)
{
    for (size_t i = r->q_head; i < r->q_len; i++) {
        free(r->queue[i].scope);
        free(r->queue[i].after);
    }
    r->q_head = r->q_len = 0;
    r->q_exhausted = false;
    free(r->key_kind);
    free(r->key_scope);
    r->key_kind = strdup("");
    r->key_scope = strdup("");
}

/* Drops all in-flight work (requests cancelled, statements left to fail). */
static void reset_work(reconciler_t *r)
{
    r->gen++;
    r->ctl_busy = false;
    for (int i = 0; i < MAX_LANES; i++) {
        lane_t *l = &r->lanes[i];
        if (l->state == LANE_APPLYING) {
            l->abandoned = true;
            continue;
        }
        http_cancel(l->req);
        lane_clear(l);
    }
    queue_clear(r);
}

static void wake_in(reconciler_t *r, int64_t ms)
{
    struct timeval tv = clock_timeval(ms);
    evtimer_add(r->timer, &tv);
}

static void post(reconciler_t *r, recon_input_t in, const char *err);

/* A database failure: a run resumes from the progress table after a backoff. */
static void db_failed(reconciler_t *r, const char *what, const char *err)
{
    log_warn("event=reconcile_db_failed step=%s error=%s note=\"resuming from stored progress\"",
             what, log_q(err ? err : "-"));
    post(r, RECON_IN_DB_FAILED, err);
}

static void finish(reconciler_t *r, bool ok, const char *err)
{
    reset_work(r);
    r->result.ok = ok;
    r->result.err = err;
    r->result.run_id = r->run_id;
    r->result.started_wall_ms = r->started_wall_ms;
    r->result.elapsed_ms = clock_mono_ms() - r->t0_ms;
    if (ok && !r->dry) {
        long changed = 0;
        for (int k = 0; k < RECON_KIND_COUNT; k++)
            changed += r->result.kinds[k].inserted + r->result.kinds[k].updated +
                       r->result.kinds[k].tombstoned;
        metrics_reconcile_finished((double)r->result.elapsed_ms / 1000.0, changed, clock_wall_ms());
    }
    if (r->done != NULL)
        r->done(r->arg, &r->result);
}

static void on_ctl(void *arg, const store_reply_t *reply)
{
    ctl_job_t *j = arg;
    reconciler_t *r = j->r;
    bool stale = j->gen != r->gen;
    if (!stale) {
        r->ctl_busy = false;
        j->fn(r, reply);
    }
    ctl_job_free(j);
}

/* Runs one control statement; `fn` sees its reply unless reset meanwhile. */
static void ctl_run(reconciler_t *r, const char *sql, int n,
                    void (*fn)(reconciler_t *, const store_reply_t *))
{
    ctl_job_t *j = calloc(1, sizeof(*j));
    bool ok = j != NULL;
    for (int i = 0; ok && i < n; i++)
        ok = r->ctl_values[i] == NULL || (j->vals[i] = strdup(r->ctl_values[i])) != NULL;
    if (!ok) {
        ctl_job_free(j);
        db_failed(r, "alloc", "out of memory");
        return;
    }
    j->r = r;
    j->gen = r->gen;
    j->fn = fn;
    r->ctl_busy = true;
    store_query_t q = {.sql = sql, .n_params = n, .values = (const char *const *)j->vals};
    store_run(r->store, &q, on_ctl, j);
}

/* A result value as a number (0 when it is not one: a bug in the statement). */
static long long num(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool reply_ok(const store_reply_t *reply, ExecStatusType want)
{
    return reply->res != NULL && PQresultStatus(reply->res) == want;
}

/* --- listing ------------------------------------------------------------ */

static double rate_per_s(const reconciler_t *r)
{
    return r->cfg->reconcile_rate_limit / 60.0;
}

static void bucket_fill(bucket_t *b, int64_t now, double per_s)
{
    b->tokens += (double)(now - b->at_ms) * per_s / 1000.0;
    if (b->tokens > BURST)
        b->tokens = BURST;
    b->at_ms = now;
}

/* Takes a request's tokens; else returns how long to wait (ms). */
static int64_t budget_take(reconciler_t *r, recon_kind_t k)
{
    int64_t now = clock_mono_ms();
    if (now < r->pause_until_ms)
        return r->pause_until_ms - now;
    bool um = reconcile_kind(k)->user_management;
    bucket_fill(&r->overall, now, rate_per_s(r));
    bucket_fill(&r->um, now, rate_per_s(r));
    double have = r->overall.tokens;
    if (um && r->um.tokens < have)
        have = r->um.tokens;
    if (have < 1.0)
        return (int64_t)((1.0 - have) * 1000.0 / rate_per_s(r)) + 1;
    r->overall.tokens -= 1.0;
    if (um)
        r->um.tokens -= 1.0;
    return 0;
}

/* A failed request: the whole listing pauses (backoff, or Retry-After). */
static void request_failed(reconciler_t *r, lane_t *l, const char *reason, int64_t retry_ms)
{
    int64_t wait = backoff_next(&r->backoff);
    if (retry_ms > wait)
        wait = retry_ms;
    log_warn("event=reconcile_request_failed kind=%s scope=%s reason=%s retry_in_ms=%lld",
             reconcile_kind(l->kind)->name, log_q(l->scope), log_q(reason), (long long)wait);
    r->pause_until_ms = clock_mono_ms() + wait;
    l->state = LANE_READY;
    l->req = NULL;
}

/*
 * Removes the secrets from each listed object, with the events' scrubber
 * (which matches on the object kind), and returns the array as JSON text.
 */
static char *scrub_page(cJSON *data, recon_kind_t k)
{
    cJSON *out = cJSON_CreateArray();
    cJSON *env = cJSON_CreateObject();
    char *text = NULL;
    const char *type = k == RECON_INVITATIONS ? "invitation.listed"
                       : k == RECON_API_KEYS  ? "api_key.listed"
                                              : "listed";
    if (out == NULL || env == NULL || cJSON_AddStringToObject(env, "event", type) == NULL)
        goto out;
    cJSON *item;
    while ((item = cJSON_DetachItemFromArray(data, 0)) != NULL) {
        cJSON_AddItemToObject(env, "data", item);
        event_scrub(env);
        cJSON_AddItemToArray(out, cJSON_DetachItemFromObjectCaseSensitive(env, "data"));
    }
    text = cJSON_PrintUnformatted(out);
out:
    cJSON_Delete(out);
    cJSON_Delete(env);
    return text;
}

static void apply_object(reconciler_t *r, lane_t *l);
static void on_object_applied(void *arg, const store_reply_t *reply);
static void on_object_refused(void *arg, const store_reply_t *reply);

/* The statement was refused for a reason about the data it carried. */
static bool refused_for_data(const store_reply_t *reply)
{
    return reply->answered && reply->sqlstate != NULL &&
           apply_classify(reply->sqlstate) == APPLY_PERMANENT;
}

static void count_page(reconciler_t *r, const lane_t *l, const PGresult *res)
{
    reconciler_kind_stats_t *s = &r->result.kinds[l->kind];
    s->listed += num(res, 0, 0);
    s->inserted += num(res, 0, 1);
    s->updated += num(res, 0, 2);
    s->last_ms = clock_mono_ms();
}

/* The lane a page statement reported to, or NULL when it was reset meanwhile. */
static lane_t *reported(void *arg)
{
    lane_t *l = arg;
    if (!l->abandoned)
        return l;
    lane_clear(l);
    return NULL;
}

static void on_page_applied(void *arg, const store_reply_t *reply)
{
    lane_t *l = reported(arg);
    if (l == NULL)
        return;
    reconciler_t *r = l->r;
    if (!reply_ok(reply, PGRES_TUPLES_OK) || PQntuples(reply->res) != 1 ||
        num(reply->res, 0, 3) != 1) {
        const char *err = reply->err ? reply->err : "scope row missing";
        log_warn("event=reconcile_page_failed kind=%s scope=%s error=%s",
                 reconcile_kind(l->kind)->name, log_q(l->scope), log_q(err));
        if (l->objects == NULL && refused_for_data(reply) &&
            (l->objects = cJSON_Parse(l->page)) != NULL && cJSON_IsArray(l->objects)) {
            log_warn("event=reconcile_page_refused kind=%s scope=%s objects=%d "
                     "note=\"applying the page one object at a time\"",
                     reconcile_kind(l->kind)->name, log_q(l->scope),
                     cJSON_GetArraySize(l->objects));
            l->object = 0;
            apply_object(r, l);
            return;
        }
        lane_clear(l);
        db_failed(r, "page", err);
        return;
    }
    count_page(r, l, reply->res);
    backoff_reset(&r->backoff);
    drop_page(l);
    free(l->after);
    l->after = l->next;
    l->next = NULL;
    if (l->after == NULL) {
        lane_clear(l);
    } else {
        /* One not remembered (over the budget) only weakens the guard. */
        (void)cursor_set_add(&l->seen, l->after);
        l->state = LANE_READY;
    }
    pump(r);
}

static void apply_page(reconciler_t *r, lane_t *l)
{
    l->state = LANE_APPLYING;
    l->values[0] = r->run_id_text;
    l->values[1] = l->scope;
    l->values[2] = l->next;
    l->values[3] = l->page;
    l->values[4] = "t";
    store_query_t q = {.sql = r->sql[l->kind], .n_params = 5, .values = l->values};
    store_run(r->store, &q, on_page_applied, l);
}

/*
 * One object at a time: each in its own statement that adds its counts but
 * leaves the scope's cursor, a refused one recorded in reconcile_refused;
 * after the last, the empty page that moves the cursor on (through
 * on_page_applied).  A run killed half-way lists the page again.
 */
static void apply_object(reconciler_t *r, lane_t *l)
{
    bool last = l->object >= cJSON_GetArraySize(l->objects);
    free(l->one);
    l->one = NULL;
    if (!last) {
        char *text = cJSON_PrintUnformatted(cJSON_GetArrayItem(l->objects, l->object));
        if (text == NULL || asprintf(&l->one, "[%s]", text) < 0)
            l->one = NULL;
        free(text);
        if (l->one == NULL) {
            lane_clear(l);
            db_failed(r, "page", "out of memory");
            return;
        }
    }
    l->values[0] = r->run_id_text;
    l->values[1] = l->scope;
    l->values[2] = l->next;
    l->values[3] = last ? "[]" : l->one;
    l->values[4] = last ? "t" : "f";
    store_query_t q = {.sql = r->sql[l->kind], .n_params = 5, .values = l->values};
    store_run(r->store, &q, last ? on_page_applied : on_object_applied, l);
}

static void on_object_applied(void *arg, const store_reply_t *reply)
{
    lane_t *l = reported(arg);
    if (l == NULL)
        return;
    reconciler_t *r = l->r;
    if (reply_ok(reply, PGRES_TUPLES_OK) && PQntuples(reply->res) == 1 &&
        num(reply->res, 0, 3) == 1) {
        count_page(r, l, reply->res);
        l->object++;
        apply_object(r, l);
        return;
    }
    if (!refused_for_data(reply)) {
        log_warn("event=reconcile_page_failed kind=%s scope=%s error=%s",
                 reconcile_kind(l->kind)->name, log_q(l->scope),
                 log_q(reply->err ? reply->err : "scope row missing"));
        lane_clear(l);
        db_failed(r, "page", reply->err);
        return;
    }
    store_error_without_detail(l->why, sizeof(l->why), reply->err != NULL ? reply->err : "refused");
    snprintf(l->sqlstate, sizeof(l->sqlstate), "%s", reply->sqlstate);
    const char *id = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(l->objects, l->object), "id"));
    l->values[0] = r->run_id_text;
    l->values[1] = l->scope;
    l->values[2] = id != NULL ? id : "";
    l->values[3] = l->sqlstate;
    l->values[4] = l->why;
    store_query_t q = {.sql = r->refuse_sql[l->kind], .n_params = 5, .values = l->values};
    store_run(r->store, &q, on_object_refused, l);
}

static void on_object_refused(void *arg, const store_reply_t *reply)
{
    lane_t *l = reported(arg);
    if (l == NULL)
        return;
    reconciler_t *r = l->r;
    if (!reply_ok(reply, PGRES_TUPLES_OK) && !refused_for_data(reply)) {
        lane_clear(l);
        db_failed(r, "refused", reply->err);
        return;
    }
    if (!reply_ok(reply, PGRES_TUPLES_OK))
        /* Not even its record fits: skip it all the same, and say so. */
        log_error("event=reconcile_object_unrecorded kind=%s scope=%s id=%s error=%s",
                  reconcile_kind(l->kind)->name, log_q(l->scope), log_q(l->values[2]),
                  log_q(reply->err));
    r->result.kinds[l->kind].refused++;
    log_warn("event=reconcile_object_refused kind=%s scope=%s id=%s sqlstate=%s error=%s "
             "note=\"kept as it was, and counted as listed\"",
             reconcile_kind(l->kind)->name, log_q(l->scope), log_q(l->values[2]),
             log_q(l->sqlstate), log_q(l->why));
    l->object++;
    apply_object(r, l);
}

static void on_response(void *arg, const http_response_t *resp)
{
    lane_t *l = arg;
    reconciler_t *r = l->r;
    char err[256];
    l->req = NULL;
    metrics_reconcile_request(resp->transport_ok ? resp->status : 0);
    if (!resp->transport_ok) {
        request_failed(r, l, resp->error ? resp->error : "transport", -1);
        goto out;
    }
    if (resp->status == 404 && reconcile_kind(l->kind)->per_parent) {
        /* The parent went away since it was listed: nothing under it. */
        l->next = NULL;
        l->page = strdup("[]");
        if (l->page == NULL) {
            request_failed(r, l, "out of memory", -1);
            goto out;
        }
        apply_page(r, l);
        goto out;
    }
    if (resp->status != 200) {
        snprintf(err, sizeof(err), "http %ld", resp->status);
        request_failed(r, l, err,
                       resp->status == 429 || resp->status == 503 ? resp->retry_after_ms : -1);
        goto out;
    }
    cJSON *root = event_parse_json(resp->body, resp->len, err, sizeof(err));
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "list_metadata");
    cJSON *after = cJSON_GetObjectItemCaseSensitive(meta, "after");
    if (root == NULL || !cJSON_IsArray(data) ||
        (after != NULL && !cJSON_IsNull(after) && !cJSON_IsString(after))) {
        cJSON_Delete(root);
        request_failed(r, l, root == NULL ? err : "not a list response", -1);
        goto out;
    }
    /* A full page without a cursor, or an empty one with one, would end
     * or loop the listing wrongly: only a string `after` continues. */
    const char *cursor = cJSON_GetStringValue(after);
    bool more = cursor != NULL && cJSON_GetArraySize(data) > 0;
    /* The cursor names the page's last object, so it cannot be the one
     * asked after, nor one this listing has followed already: an API (or a
     * proxy) that ignored `after`, or went back to the first page for a
     * cursor it no longer knows, would lead round in a loop, counting the
     * objects again each time.  Applying nothing, the page is retried. */
    if (more && l->after != NULL && strcmp(cursor, l->after) == 0) {
        cJSON_Delete(root);
        request_failed(r, l, "the list cursor did not move", -1);
        goto out;
    }
    if (more && cursor_set_has(&l->seen, cursor)) {
        cJSON_Delete(root);
        request_failed(r, l, "the list cursor went back to a page already listed", -1);
        goto out;
    }
    l->next = more ? strdup(cursor) : NULL;
    l->page = scrub_page(data, l->kind);
    cJSON_Delete(root);
    if (l->page == NULL || (more && l->next == NULL)) {
        free(l->next);
        l->next = NULL;
        request_failed(r, l, "out of memory", -1);
        goto out;
    }
    apply_page(r, l);
out:
    pump(r);
}

static bool start_request(reconciler_t *r, lane_t *l)
{
    char *url = reconcile_url(r->cfg->base_url, l->kind, l->scope, l->after);
    if (url == NULL)
        return false;
    l->state = LANE_FETCHING;
    reconciler_kind_stats_t *s = &r->result.kinds[l->kind];
    s->requests++;
    if (s->first_ms == 0)
        s->first_ms = clock_mono_ms();
    l->req = http_get(r->http, url, r->cfg->api_key, r->cfg->request_timeout_ms, MAX_BODY,
                      on_response, l);
    free(url);
    if (l->req == NULL) {
        l->state = LANE_READY;
        return false;
    }
    return true;
}

static void on_queue(reconciler_t *r, const store_reply_t *reply)
{
    if (!reply_ok(reply, PGRES_TUPLES_OK)) {
        db_failed(r, "queue", reply->err);
        return;
    }
    int n = PQntuples(reply->res);
    r->q_head = r->q_len = 0;
    for (int i = 0; i < n; i++) {
        recon_kind_t k;
        if (!reconcile_kind_by_name(PQgetvalue(reply->res, i, 0), &k))
            continue;
        scope_item_t *it = &r->queue[r->q_len];
        it->kind = k;
        it->scope = strdup(PQgetvalue(reply->res, i, 1));
        it->after = PQgetisnull(reply->res, i, 2) ? NULL : strdup(PQgetvalue(reply->res, i, 2));
        if (it->scope != NULL)
            r->q_len++;
    }
    if (n > 0) {
        free(r->key_kind);
        free(r->key_scope);
        r->key_kind = strdup(PQgetvalue(reply->res, n - 1, 0));
        r->key_scope = strdup(PQgetvalue(reply->res, n - 1, 1));
    }
    r->q_exhausted = n < QUEUE_BATCH;
    pump(r);
}

/* The listing's driver: fills lanes, fetches scopes, ends the phase. */
static void pump(reconciler_t *r)
{
    if (r->state != RECON_LISTING)
        return;
    bool busy = false;
    int64_t wait = -1;
    for (int i = 0; i < MAX_LANES; i++) {
        lane_t *l = &r->lanes[i];
        if (l->state == LANE_FREE && r->q_head < r->q_len) {
            scope_item_t *it = &r->queue[r->q_head++];
            l->kind = it->kind;
            l->scope = it->scope;
            l->after = it->after;
            l->r = r;
            l->state = LANE_READY;
        }
        if (l->state == LANE_READY) {
            int64_t w = budget_take(r, l->kind);
            if (w > 0) {
                if (wait < 0 || w < wait)
                    wait = w;
            } else if (!start_request(r, l)) {
                request_failed(r, l, "request setup failed", -1);
            }
        }
        if (l->state != LANE_FREE)
            busy = true;
    }
    if (wait >= 0)
        wake_in(r, wait);
    if (r->q_head < r->q_len || r->ctl_busy)
        return;
    if (!r->q_exhausted) {
        r->ctl_values[0] = r->run_id_text;
        r->ctl_values[1] = r->key_kind;
        r->ctl_values[2] = r->key_scope;
        r->ctl_values[3] = r->limit_text;
        ctl_run(r, r->queue_sql, 4, on_queue);
        return;
    }
    if (!busy)
        post(r, RECON_IN_LISTED, NULL);
}

/* --- phases ------------------------------------------------------------- */

static void report(reconciler_t *r);

static void listing(reconciler_t *r)
{
    reset_work(r);
    log_info("event=reconcile_phase run=%lld phase=%s", r->run_id,
             r->children ? "children" : "roots");
    pump(r);
}

static void on_sweep(reconciler_t *r, const store_reply_t *reply)
{
    if (!reply_ok(reply, PGRES_TUPLES_OK) || PQntuples(reply->res) != 1) {
        db_failed(r, "sweep", reply->err);
        return;
    }
    log_info("event=reconcile_swept run=%lld phase=%s tombstoned=%s", r->run_id,
             r->children ? "children" : "roots", PQgetvalue(reply->res, 0, 0));
    post(r, r->children ? RECON_IN_SWEPT_CHILDREN : RECON_IN_SWEPT_ROOTS, NULL);
}

static void sweep(reconciler_t *r)
{
    r->ctl_values[0] = r->run_id_text;
    ctl_run(r, r->sweep_sql[r->children], 1, on_sweep);
}

static void on_open(reconciler_t *r, const store_reply_t *reply)
{
    if (!reply_ok(reply, PGRES_TUPLES_OK) || PQntuples(reply->res) != 1) {
        db_failed(r, "open", reply->err);
        return;
    }
    r->run_id = num(reply->res, 0, 0);
    snprintf(r->run_id_text, sizeof(r->run_id_text), "%lld", r->run_id);
    const char *phase = PQgetvalue(reply->res, 0, 1);
    r->started_wall_ms = num(reply->res, 0, 2);
    bool resumed = PQgetvalue(reply->res, 0, 3)[0] == 't';
    log_info("event=reconcile_run run=%lld phase=%s resumed=%s reason=%s", r->run_id, phase,
             resumed ? "true" : "false", r->reason);
    r->children = strcmp(phase, "children") == 0;
    post(r, strcmp(phase, "done") == 0 ? RECON_IN_OPENED_DONE : RECON_IN_OPENED_LISTING, NULL);
}

static void open_run(reconciler_t *r)
{
    r->ctl_values[0] = r->reason;
    ctl_run(r, r->open_sql, 1, on_open);
}

static void on_stage(reconciler_t *r, const store_reply_t *reply)
{
    if (!reply_ok(reply, PGRES_COMMAND_OK)) {
        post(r, RECON_IN_FATAL, "staging failed");
        return;
    }
    if (r->stage[r->stage_i] == NULL) {
        post(r, RECON_IN_STAGED, NULL);
        return;
    }
    ctl_run(r, r->stage[r->stage_i++], 0, on_stage);
}

/* Copies a result value, NULL when SQL NULL. */
static char *value_dup(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

static void on_diff(reconciler_t *r, const store_reply_t *reply)
{
    if (!reply_ok(reply, PGRES_TUPLES_OK) || PQntuples(reply->res) != 3) {
        post(r, RECON_IN_FATAL, reply->err ? reply->err : "diff failed");
        return;
    }
    reconciler_drift_t *d = &r->result.drift[r->report_i];
    for (int i = 0; i < 3; i++) {
        d->count[i] = num(reply->res, i, 1);
        free(d->first_ids[i]);
        d->first_ids[i] = value_dup(reply->res, i, 2);
        if (d->count[i] > 0)
            r->result.drifted = true;
    }
    r->report_i++;
    report(r);
}

static void on_summary(reconciler_t *r, const store_reply_t *reply)
{
    if (!reply_ok(reply, PGRES_TUPLES_OK)) {
        db_failed(r, "summary", reply->err);
        return;
    }
    for (int i = 0; i < PQntuples(reply->res); i++) {
        recon_kind_t k;
        if (!reconcile_kind_by_name(PQgetvalue(reply->res, i, 0), &k))
            continue;
        reconciler_kind_stats_t *s = &r->result.kinds[k];
        /* The stored totals include the pages of an earlier process. */
        s->listed = num(reply->res, i, 2);
        s->inserted = num(reply->res, i, 3);
        s->updated = num(reply->res, i, 4);
        s->tombstoned = num(reply->res, i, 5);
        s->refused = num(reply->res, i, 6);
    }
    log_info("event=reconcile_done run=%lld elapsed_ms=%lld", r->run_id,
             (long long)(clock_mono_ms() - r->t0_ms));
    post(r, RECON_IN_REPORTED, NULL);
}

static void report(reconciler_t *r)
{
    if (!r->dry) {
        r->ctl_values[0] = r->run_id_text;
        ctl_run(r, r->summary_sql, 1, on_summary);
        return;
    }
    if (r->report_i >= RECON_KIND_COUNT) {
        post(r, RECON_IN_REPORTED, NULL);
        return;
    }
    free(r->stage[0]);
    r->stage[0] = reconcile_diff_sql(store_schema(r->store), (recon_kind_t)r->report_i);
    if (r->stage[0] == NULL) {
        post(r, RECON_IN_FATAL, "out of memory");
        return;
    }
    ctl_run(r, r->stage[0], 0, on_diff);
}

/* Starts or resumes the run, once the store is ready and the gate open. */
static void begin(reconciler_t *r)
{
    if (!store_ready(r->store))
        return;
    bool open = r->may_run == NULL || r->may_run(r->gate_arg);
    post(r, open ? RECON_IN_BEGIN : RECON_IN_GATE_CLOSED, NULL);
}

/* Takes one input: the transition, then its action. */
static void post(reconciler_t *r, recon_input_t in, const char *err)
{
    recon_state_t next;
    recon_action_t act;
    if (!reconciler_fsm_step(r->state, in, r->dry, &next, &act)) {
        log_error("event=reconcile_bug state=%s input=%d note=\"impossible step ignored\"",
                  reconciler_fsm_state_name(r->state), (int)in);
        return;
    }
    r->state = next;
    switch (act) {
    case RECON_DO_NOTHING:
        return;
    case RECON_DO_STAGE:
        r->stage_i = 0;
        ctl_run(r, r->stage[r->stage_i++], 0, on_stage);
        return;
    case RECON_DO_OPEN:
        open_run(r);
        return;
    case RECON_DO_LIST_NEXT:
        r->children = true;
        listing(r);
        return;
    case RECON_DO_LIST:
        listing(r);
        return;
    case RECON_DO_SWEEP:
        sweep(r);
        return;
    case RECON_DO_REPORT:
        report(r);
        return;
    case RECON_DO_RETRY:
        reset_work(r);
        wake_in(r, backoff_next(&r->backoff));
        return;
    case RECON_DO_WAIT_GATE:
        wake_in(r, GATE_RETRY_MS);
        return;
    case RECON_DO_FINISH_OK:
        finish(r, true, NULL);
        return;
    case RECON_DO_FINISH_FAIL:
        finish(r, false, err != NULL ? err : "failed");
        return;
    }
    abort(); /* unreachable: every recon_action_t is handled above */
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    reconciler_t *r = arg;
    (void)fd;
    (void)what;
    if (r->state == RECON_WAIT_STORE)
        begin(r);
    else
        pump(r);
}

/* --- public ------------------------------------------------------------- */

/* The staging statements, one per element (PQexecParams runs one at a time). */
static char **split_statements(const char *text)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, ";\n")) != NULL; p += 2)
        n++;
    char **v = calloc(n + 1, sizeof(*v));
    if (v == NULL)
        return NULL;
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        const char *e = strstr(p, ";\n");
        if ((v[i] = strndup(p, (size_t)(e - p))) == NULL)
            return v; /* shorter, still NULL-terminated: a dry run then fails staging */
        p = e + 2;
    }
    return v;
}

reconciler_t *reconciler_new(struct event_base *base, const config_t *cfg, store_t *store,
                             http_client_t *http, bool dry_run, reconciler_done_fn done, void *arg)
{
    reconciler_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    *r = (reconciler_t){.base = base,
                        .cfg = cfg,
                        .store = store,
                        .http = http,
                        .dry = dry_run,
                        .done = done,
                        .arg = arg};
    const char *schema = store_schema(store);
    const char *ms = dry_run ? "pg_temp" : schema;
    bool ok = true;
    for (int k = 0; k < RECON_KIND_COUNT; k++) {
        ok = (r->sql[k] = reconcile_page_sql(ms, ms, (recon_kind_t)k)) != NULL && ok;
        ok = (r->refuse_sql[k] = reconcile_refuse_sql(ms, ms, (recon_kind_t)k)) != NULL && ok;
    }
    ok = (r->sweep_sql[0] = reconcile_sweep_sql(ms, ms, false)) != NULL && ok;
    ok = (r->sweep_sql[1] = reconcile_sweep_sql(ms, ms, true)) != NULL && ok;
    ok = (r->open_sql = reconcile_open_sql(ms)) != NULL && ok;
    ok = (r->queue_sql = reconcile_queue_sql(ms)) != NULL && ok;
    ok = (r->summary_sql = reconcile_summary_sql(ms)) != NULL && ok;
    if (dry_run && ok) {
        char *text = reconcile_stage_sql(schema);
        ok = text != NULL && (r->stage = split_statements(text)) != NULL;
        free(text);
    } else if (ok) {
        ok = (r->stage = calloc(2, sizeof(*r->stage))) != NULL;
    }
    r->timer = evtimer_new(base, on_timer, r);
    snprintf(r->limit_text, sizeof(r->limit_text), "%d", QUEUE_BATCH);
    r->key_kind = strdup("");
    r->key_scope = strdup("");
    backoff_init(&r->backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    if (!ok || r->timer == NULL || r->key_kind == NULL || r->key_scope == NULL) {
        reconciler_free(r);
        return NULL;
    }
    return r;
}

void reconciler_free(reconciler_t *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < MAX_LANES; i++) {
        http_cancel(r->lanes[i].req);
        lane_clear(&r->lanes[i]);
    }
    queue_clear(r);
    free(r->key_kind);
    free(r->key_scope);
    for (int k = 0; k < RECON_KIND_COUNT; k++) {
        free(r->sql[k]);
        free(r->refuse_sql[k]);
        for (int i = 0; i < 3; i++)
            free(r->result.drift[k].first_ids[i]);
    }
    free(r->sweep_sql[0]);
    free(r->sweep_sql[1]);
    free(r->open_sql);
    free(r->queue_sql);
    free(r->summary_sql);
    for (size_t i = 0; r->stage != NULL && r->stage[i] != NULL; i++)
        free(r->stage[i]);
    free(r->stage);
    if (r->timer != NULL)
        event_free(r->timer);
    free(r);
}

void reconciler_start(reconciler_t *r, const char *reason)
{
    if (r->state != RECON_IDLE)
        return;
    for (int k = 0; k < RECON_KIND_COUNT; k++)
        r->result.kinds[k] = (reconciler_kind_stats_t){0};
    r->result.drifted = false;
    r->report_i = 0;
    r->reason = reason;
    r->t0_ms = clock_mono_ms();
    r->overall = r->um = (bucket_t){BURST, clock_mono_ms()};
    post(r, RECON_IN_START, NULL);
    begin(r);
}

void reconciler_store_ready(reconciler_t *r)
{
    if (r->state == RECON_WAIT_STORE && !evtimer_pending(r->timer, NULL))
        begin(r);
}

void reconciler_store_lost(reconciler_t *r)
{
    if (r->state == RECON_IDLE || r->state == RECON_WAIT_STORE)
        return;
    post(r, RECON_IN_DB_FAILED, "database connection lost");
}

void reconciler_set_gate(reconciler_t *r, bool (*may_run)(void *arg), void *arg)
{
    r->may_run = may_run;
    r->gate_arg = arg;
}

bool reconciler_busy(const reconciler_t *r)
{
    return r != NULL && r->state != RECON_IDLE;
}

const reconciler_kind_stats_t *reconciler_stats(const reconciler_t *r, recon_kind_t k)
{
    return &r->result.kinds[k];
}

int64_t reconciler_started_ms(const reconciler_t *r)
{
    return r->started_wall_ms;
}
