/*
 * rollup_step: a small connection machine.  DOWN waits out a delay, then
 * CONNECTING drives PQconnectPoll; IDLE waits for the period, asks the gate
 * and sends one step; BUSY reads its reply.  A full batch sends the next
 * step at once; an error that leaves the connection up waits a period, one
 * that drops it goes back to DOWN.  In CONNECTING and BUSY the timer is a
 * timeout (libpq's connect_timeout does not bound a non-blocking connect):
 * a host that never answers is dropped, and the next connect starts with
 * the url's next host.  The step is one transaction on the
 * server, so a connection lost mid-step loses nothing: the queue keeps the
 * ids the step had taken.
 */
#include "rollup_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "clock.h"
#include "log.h"
#include "store_schema.h"

#define RS_RECONNECT_MS 1000     /* delay before connecting again */
#define RS_STEP_TIMEOUT_MS 60000 /* a step that takes longer is abandoned */

typedef enum rs_state {
    RS_DOWN,       /* no connection; the timer is armed */
    RS_CONNECTING, /* PQconnectPoll in progress; the socket is watched */
    RS_IDLE,       /* connected; the timer is armed for the next step */
    RS_BUSY,       /* a step in flight; the socket is watched */
    RS_STOPPED     /* stopped: nothing is sent */
} rs_state_t;

struct rollup_step {
    struct event_base *base;
    const config_t *cfg;
    rollup_step_gate_fn gate;
    void *gate_arg;
    rs_state_t state;
    PGconn *conn;
    struct event *timer;
    struct event *sock; /* NULL unless CONNECTING or BUSY */
    int first_host;     /* the url's host the next connect tries first */
    char sql[120];
    char batch[16];
};

static void on_timer(evutil_socket_t fd, short what, void *arg);
static void on_socket(evutil_socket_t fd, short what, void *arg);

static void arm(rollup_step_t *r, int64_t ms)
{
    struct timeval tv = clock_timeval(ms);
    evtimer_add(r->timer, &tv);
}

static void unwatch(rollup_step_t *r)
{
    if (r->sock != NULL)
        event_free(r->sock);
    r->sock = NULL;
}

/* Watches the connection's socket for `what` (once). */
static bool watch(rollup_step_t *r, short what)
{
    unwatch(r);
    r->sock = event_new(r->base, PQsocket(r->conn), what, on_socket, r);
    return r->sock != NULL && event_add(r->sock, NULL) == 0;
}

static void disconnect(rollup_step_t *r, const char *why)
{
    if (why != NULL)
        log_warn("event=rollup_step_disconnected error=%s", log_q(why));
    evtimer_del(r->timer);
    unwatch(r);
    PQfinish(r->conn);
    r->conn = NULL;
    r->state = RS_DOWN;
    arm(r, RS_RECONNECT_MS);
}

static void connect_start(rollup_step_t *r)
{
    r->conn = store_schema_connect(r->cfg, false, r->first_host);
    if (r->conn == NULL || PQstatus(r->conn) == CONNECTION_BAD) {
        disconnect(r, r->conn != NULL ? PQerrorMessage(r->conn) : "out of memory");
        return;
    }
    r->state = RS_CONNECTING;
    arm(r, (int64_t)store_schema_connect_timeout_s(r->cfg) * 1000);
    if (!watch(r, EV_WRITE))
        disconnect(r, "cannot watch the socket");
}

static void connect_poll(rollup_step_t *r)
{
    switch (PQconnectPoll(r->conn)) {
    case PGRES_POLLING_READING:
        if (!watch(r, EV_READ))
            disconnect(r, "cannot watch the socket");
        return;
    case PGRES_POLLING_WRITING:
        if (!watch(r, EV_WRITE))
            disconnect(r, "cannot watch the socket");
        return;
    case PGRES_POLLING_OK:
        evtimer_del(r->timer);
        unwatch(r);
        if (PQsetnonblocking(r->conn, 1) != 0) {
            disconnect(r, PQerrorMessage(r->conn));
            return;
        }
        r->state = RS_IDLE;
        arm(r, 0);
        return;
    case PGRES_POLLING_FAILED:
    default:
        disconnect(r, PQerrorMessage(r->conn));
        return;
    }
}

static void send_step(rollup_step_t *r)
{
    const char *values[1] = {r->batch};
    if (PQsendQueryParams(r->conn, r->sql, 1, NULL, values, NULL, NULL, 0) != 1) {
        disconnect(r, PQerrorMessage(r->conn));
        return;
    }
    r->state = RS_BUSY;
    arm(r, RS_STEP_TIMEOUT_MS);
    /* Flushed at the next readable or writable turn; a step is small. */
    if (!watch(r, PQflush(r->conn) == 1 ? (EV_READ | EV_WRITE) : EV_READ))
        disconnect(r, "cannot watch the socket");
}

/* Reads the step's reply once it is whole; returns the ids taken, or -1. */
static long read_reply(rollup_step_t *r, bool *whole)
{
    long n = -1;
    PGresult *res;

    *whole = false;
    if (PQflush(r->conn) == -1 || PQconsumeInput(r->conn) == 0)
        return -2;
    if (PQisBusy(r->conn))
        return -1;
    *whole = true;
    while ((res = PQgetResult(r->conn)) != NULL) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            !PQgetisnull(res, 0, 0))
            n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        else if (PQresultStatus(res) != PGRES_TUPLES_OK)
            log_warn("event=rollup_step_failed error=%s", log_q(PQresultErrorMessage(res)));
        PQclear(res);
    }
    return n;
}

static void on_reply(rollup_step_t *r)
{
    bool whole;
    long n = read_reply(r, &whole);
    if (n == -2) {
        disconnect(r, PQerrorMessage(r->conn));
        return;
    }
    if (!whole) {
        if (!watch(r, PQflush(r->conn) == 1 ? (EV_READ | EV_WRITE) : EV_READ))
            disconnect(r, "cannot watch the socket");
        return;
    }
    evtimer_del(r->timer);
    unwatch(r);
    if (PQstatus(r->conn) != CONNECTION_OK) {
        disconnect(r, PQerrorMessage(r->conn));
        return;
    }
    r->state = RS_IDLE;
    arm(r, n >= ROLLUP_STEP_BATCH ? 0 : ROLLUP_STEP_PERIOD_MS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    rollup_step_t *r = arg;
    (void)fd;
    (void)what;
    switch (r->state) {
    case RS_DOWN:
        if (!r->gate(r->gate_arg))
            arm(r, ROLLUP_STEP_PERIOD_MS);
        else
            connect_start(r);
        return;
    case RS_IDLE:
        if (!r->gate(r->gate_arg))
            arm(r, ROLLUP_STEP_PERIOD_MS);
        else
            send_step(r);
        return;
    case RS_CONNECTING:
        r->first_host++;
        disconnect(r, "connect timed out");
        return;
    case RS_BUSY:
        disconnect(r, "step timed out");
        return;
    case RS_STOPPED:
        return;
    }
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    rollup_step_t *r = arg;
    (void)fd;
    (void)what;
    switch (r->state) {
    case RS_CONNECTING:
        connect_poll(r);
        return;
    case RS_BUSY:
        on_reply(r);
        return;
    case RS_STOPPED:
        return;
    case RS_DOWN:
    case RS_IDLE:
        log_error("event=bug where=rollup_step state=%d input=socket", (int)r->state);
        abort();
    }
}

rollup_step_t *rollup_step_new(struct event_base *base, const config_t *cfg,
                               rollup_step_gate_fn gate, void *arg)
{
    rollup_step_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->cfg = cfg;
    r->gate = gate;
    r->gate_arg = arg;
    r->timer = evtimer_new(base, on_timer, r);
    if (r->timer == NULL) {
        free(r);
        return NULL;
    }
    snprintf(r->sql, sizeof(r->sql), "SELECT %s.rollup_step($1::int)", cfg->schema);
    snprintf(r->batch, sizeof(r->batch), "%d", ROLLUP_STEP_BATCH);
    r->state = RS_DOWN;
    arm(r, ROLLUP_STEP_PERIOD_MS);
    return r;
}

void rollup_step_stop(rollup_step_t *r)
{
    if (r == NULL)
        return;
    evtimer_del(r->timer);
    unwatch(r);
    PQfinish(r->conn);
    r->conn = NULL;
    r->state = RS_STOPPED;
}

void rollup_step_free(rollup_step_t *r)
{
    if (r == NULL)
        return;
    rollup_step_stop(r);
    event_free(r->timer);
    free(r);
}
