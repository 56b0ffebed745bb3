/*
 * webhook: the HTTP listener.  Receives signed WorkOS webhooks and answers
 * each only once its event is committed (group commit: requests arriving
 * while a batch commits ride in the next one), and serves the operational
 * endpoints /healthz, /readyz and /metrics.
 */
#ifndef WORKOS_SYNCD_WEBHOOK_H
#define WORKOS_SYNCD_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "config.h"
#include "metrics.h"
#include "store.h"
#include "wur.h"

typedef struct webhook webhook_t;

/* What the listener asks its owner for /readyz and /metrics. */
typedef struct webhook_hooks {
    /* True when the daemon can do its job; otherwise `why` says what is wrong. */
    bool (*ready)(void *arg, char *why, size_t len);
    /* Fills the gauges sampled at scrape time. */
    void (*gauges)(void *arg, metrics_gauges_t *g);
    void *arg;
} webhook_hooks_t;

/*
 * Starts listening on cfg->listen ("host:port"; port 0 picks a free one,
 * logged as event=listening).  `cfg` and `store` must outlive the
 * listener; cfg is re-read on every request, so a reload of secrets,
 * tolerance or max_body applies to the next request.  Returns NULL with
 * `err` filled when the address cannot be bound.
 */
webhook_t *webhook_new(struct event_base *base, const config_t *cfg, store_t *store,
                       const webhook_hooks_t *hooks, char *err, size_t errlen) WUR;

/* Applies reloadable limits (max_body) from `cfg`. */
void webhook_set_config(webhook_t *w, const config_t *cfg);

/* Closes the listening socket; requests in flight still get their answer. */
void webhook_stop_accepting(webhook_t *w);

/* True while some request waits for its batch to commit (never for a
 * request already answered, e.g. one refused with 400). */
bool webhook_busy(const webhook_t *w);

/*
 * Frees the listener; every request still waiting is answered 503 before
 * its connection goes.  A batch still with the store stays the store's:
 * its completion, whenever it comes, only releases what is left, so the
 * listener and the store may be freed in either order.  Accepts NULL.
 */
void webhook_free(webhook_t *w);

#endif
