/*
 * housekeeping: the audit trail's periodic upkeep, run by the instance that
 * polls (or by a webhook-only instance, which has no poller to defer to).
 * Three duties, each a bounded statement queued on the store between
 * applies: fill the event log's subject columns, prune the log past
 * [audit] retention / auth_retention, and log the chain's head every
 * [audit] head_log_interval so an off-host journal holds a copy.  It also
 * owns the analytics rollups' step (rollup_step.h), which runs under the
 * same conditions on a connection of its own.
 */
#ifndef WORKOS_SYNCD_HOUSEKEEPING_H
#define WORKOS_SYNCD_HOUSEKEEPING_H

#include <stdbool.h>

#include <event2/event.h>

#include "config.h"
#include "poller.h"
#include "store.h"
#include "wur.h"

typedef struct housekeeping housekeeping_t;

/*
 * Starts the upkeep on `base`.  `cfg` and `store` must outlive it; `poller`
 * (NULL for a webhook-only daemon) tells whether this instance leads.
 * Returns NULL when out of memory.
 */
housekeeping_t *housekeeping_new(struct event_base *base, const config_t *cfg, store_t *store,
                                 const poller_t *poller) WUR;

/* Takes a reloaded config (the audit keys are restart-only today). */
void housekeeping_set_config(housekeeping_t *h, const config_t *cfg);

/* Stops queueing work; a statement in flight still completes.  Accepts NULL. */
void housekeeping_stop(housekeeping_t *h);

/*
 * Frees it; accepts NULL.  Free the store first: its pending jobs complete
 * into this module.
 */
void housekeeping_free(housekeeping_t *h);

#endif
