/*
 * webhook_gate: the listener's header-time gate, one per connection.
 *
 * Each accepted connection's socket sits under a filter bufferevent that
 * evhttp reads from.  The filter holds a request's bytes until its head
 * is complete, then asks webhook_head for a verdict: a refused request is
 * answered at once (Connection: close) and its body is never buffered; a
 * webhook that passes reserves its Content-Length in a budget shared by
 * all connections, released when its body has reached evhttp (whose
 * handler verifies the MAC in the same turn of the loop).  Every request
 * must arrive whole, head and body, within a deadline, however slowly it
 * trickles.
 */
#ifndef WORKOS_SYNCD_WEBHOOK_GATE_H
#define WORKOS_SYNCD_WEBHOOK_GATE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "wur.h"

typedef struct webhook_gate webhook_gate_t;

/* The limits the gate applies; see webhook_head_limits_t. */
typedef struct webhook_gate_limits {
    const config_t *cfg;         /* webhook path, max_body, tolerance; borrowed */
    size_t max_unverified;       /* body bytes admitted but not yet verified, at most */
    int64_t request_deadline_ms; /* a request's head and body must arrive within this */
} webhook_gate_limits_t;

/* A gate on `base` with `limits`, or NULL when out of memory. */
webhook_gate_t *webhook_gate_new(struct event_base *base, const webhook_gate_limits_t *limits) WUR;

/* Applies new limits to the requests that start from now on. */
void webhook_gate_set_limits(webhook_gate_t *g, const webhook_gate_limits_t *limits);

/*
 * A new connection's bufferevent for evhttp: a filter over a fresh socket
 * bufferevent (no descriptor yet; evhttp sets it).  Freeing the returned
 * bufferevent frees the socket's.  NULL when out of memory.
 */
struct bufferevent *webhook_gate_connection(webhook_gate_t *g) WUR;

/* Body bytes admitted and not yet handed on (for tests and metrics). */
size_t webhook_gate_unverified(const webhook_gate_t *g);

/*
 * Releases the owner's hold on the gate.  Connections it made may still be
 * finalized later (libevent defers that, possibly to event_base_free); the
 * gate is freed with the last of them.  Accepts NULL.
 */
void webhook_gate_free(webhook_gate_t *g);

#endif
