/*
 * metrics: the daemon's counters, gauges and one histogram, rendered in the
 * Prometheus text format for GET /metrics.
 *
 * Everything runs on one loop thread, so the state is a plain process-wide
 * struct behind small functions; nothing here allocates after start-up
 * except the bounded table of event types.
 */
#ifndef WORKOS_SYNCD_METRICS_H
#define WORKOS_SYNCD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* `n` events of `type` committed to the log (or found there already) from `source`. */
void metrics_events_committed(const char *source, const char *type, long n);

/* Events new to the log, after deduplication, per source. */
void metrics_events_inserted(const char *source, long n);

/* Events kept in the log only: malformed for their type, or of an unknown type. */
void metrics_events_malformed(long n);
void metrics_events_unknown(long n);

/*
 * An event the database refused, recorded as poison for the first time:
 * kept in the log with its mirror effect skipped (`in_log`), or in
 * poison_events alone.
 */
void metrics_poison_event(bool in_log);

/* A batch committed in `seconds`, or failed. */
void metrics_batch(bool ok, double seconds);

/* A webhook request answered with HTTP `status`. */
void metrics_webhook_response(int status);

/* An Events API request: HTTP status, or 0 when no answer came. */
void metrics_poll_request(long status);

/* The poller waited `ms` before retrying. */
void metrics_backoff(int64_t ms);

/* How many configured event types the Events API refuses now (a gauge). */
void metrics_event_types_refused(long n);

/* The database connection was re-established. */
void metrics_db_reconnect(void);

/* created_at (ms since the epoch) of the newest event the cursor covers. */
void metrics_cursor_event_time(int64_t ms);

/* A state-API request of the reconciler: HTTP status, or 0 when no answer came. */
void metrics_reconcile_request(long status);

/*
 * A reconciliation finished: how long it took, the rows it inserted,
 * updated and tombstoned, and when it finished (wall ms).
 */
void metrics_reconcile_finished(double seconds, long changed, int64_t finished_ms);

/* Gauges sampled at render time, supplied by main. */
typedef struct metrics_gauges {
    bool db_connected;
    bool poller_leader; /* this instance polls (holds the advisory lock) */
    int webhook_connections;
    bool reconciling; /* a reconciliation is going on */
    int64_t now_ms;   /* wall clock, for the cursor lag */
} metrics_gauges_t;

/* Writes every metric to `out` in the Prometheus text format. */
void metrics_render(FILE *out, const metrics_gauges_t *g);

/* Forgets everything (for tests). */
void metrics_reset(void);

#endif
