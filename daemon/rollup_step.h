/*
 * rollup_step: keeps the analytics rollups current from the queue the
 * apply fills (migration 011), on a PostgreSQL connection of its own so
 * that the work runs beside the apply, not between applies on its backend.
 * Every ROLLUP_STEP_PERIOD_MS, and again at once while a step took a full
 * batch, it runs `SELECT <schema>.rollup_step(ROLLUP_STEP_BATCH)`: one
 * bounded transaction that counts up to that many queued events.
 */
#ifndef WORKOS_SYNCD_ROLLUP_STEP_H
#define WORKOS_SYNCD_ROLLUP_STEP_H

#include <stdbool.h>

#include <event2/event.h>

#include "config.h"
#include "wur.h"

#define ROLLUP_STEP_PERIOD_MS 250 /* how often an idle queue is looked at */
#define ROLLUP_STEP_BATCH 2000    /* queued events one step counts, at most */

typedef struct rollup_step rollup_step_t;

/*
 * Tells whether a step may run now (the schema is current and this
 * instance leads); asked before each step and before connecting.
 */
typedef bool (*rollup_step_gate_fn)(void *arg);

/*
 * Starts the step machine on `base`; it connects when `gate` first says
 * yes.  `cfg` must outlive it.  Returns NULL when out of memory.
 */
rollup_step_t *rollup_step_new(struct event_base *base, const config_t *cfg,
                               rollup_step_gate_fn gate, void *arg) WUR;

/* Stops stepping and closes the connection (a step in flight rolls back). Accepts NULL. */
void rollup_step_stop(rollup_step_t *r);

/* Frees it, closing the connection; accepts NULL. */
void rollup_step_free(rollup_step_t *r);

#endif
