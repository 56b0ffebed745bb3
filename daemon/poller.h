/*
 * poller: follows the WorkOS Events API from the stored cursor and feeds
 * every page to the store, one transaction per batch, cursor included.
 *
 * Fetching and applying overlap: while one batch commits, the next pages
 * are already being fetched (up to a bound), because the id of a page's
 * last event is all the next request needs.  When an apply fails, every
 * fetched-but-uncommitted event is dropped and fetching restarts from the
 * committed cursor, so the cursor never points past an unapplied event.
 * The transitions live in poller_fsm.h; this module does their I/O.
 */
#ifndef WORKOS_SYNCD_POLLER_H
#define WORKOS_SYNCD_POLLER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "http_client.h"
#include "store.h"
#include "wur.h"

typedef struct poller poller_t;

/*
 * Creates a poller.  `cfg`, `store` and `http` must outlive it.  It starts
 * when told the store is ready.  Returns NULL when out of memory.
 */
poller_t *poller_new(struct event_base *base, const config_t *cfg, store_t *store,
                     http_client_t *http) WUR;

/* Frees the poller, cancelling its request in flight; accepts NULL. */
void poller_free(poller_t *p);

/* Store notifications, wired by main. */
void poller_store_ready(poller_t *p);
void poller_store_lost(poller_t *p);

/*
 * Calls fn(arg, reason) when the Events API refuses the stored cursor (a
 * 4xx naming `after`); the poller itself keeps retrying with backoff.
 */
void poller_set_expiry_hook(poller_t *p, void (*fn)(void *arg, const char *reason), void *arg);

/* Takes a new configuration (poll interval, rate limit) after a reload. */
void poller_set_config(poller_t *p, const config_t *cfg);

/* Stops fetching; an apply in flight still completes. */
void poller_stop(poller_t *p);

/* True when this instance holds the poller lock. */
bool poller_leader(const poller_t *p);

/* True while a batch is being committed. */
bool poller_applying(const poller_t *p);

/*
 * The event types the Events API refused (answered 400 when asked about
 * each alone), comma-separated, or "" for none.  They are left out of the
 * filter until a restart or a reload, which asks about them again.  The
 * string belongs to the poller and changes with its next step.
 */
const char *poller_refused_types(const poller_t *p);

/* The latest request failure, or "" once a request succeeds again. */
const char *poller_last_error(const poller_t *p);

/* Milliseconds since this instance last committed a batch, or -1 if never. */
int64_t poller_commit_age_ms(const poller_t *p);

/* Milliseconds spent in backoff since the last successful request, or 0. */
int64_t poller_backoff_ms(const poller_t *p);

#endif
