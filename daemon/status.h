/*
 * status: the facts `workos-syncd status` reports, read on a blocking
 * connection -- whether the database answers, the schema version, the
 * poller's sync_state row, who holds the poller lock, the row counts
 * of the event log and every mirror table, the poison events kept, the
 * oldest event retention left, and the event types the Events API refused.  Reading only: main.c
 * prints the facts and turns them into an exit status.
 */
#ifndef WORKOS_SYNCD_STATUS_H
#define WORKOS_SYNCD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "event.h"

/* How far reading got, and what it found. */
typedef enum status_state {
    STATUS_UNREACHABLE,  /* the database did not answer */
    STATUS_UNUSABLE,     /* it answered but cannot be used (encoding) */
    STATUS_NOT_MIGRATED, /* no schema yet, or its version unreadable */
    STATUS_ERROR,        /* the sync_state query failed (error says why) */
    STATUS_NEVER_POLLED, /* no sync_state row for the poller yet */
    STATUS_FAILING,      /* the last error came after the last catch-up */
    STATUS_CAUGHT_UP,    /* reached the end of the stream within fresh_ms, no error since */
    STATUS_BEHIND        /* neither */
} status_state_t;

/* A value of the sync_state row: text as PostgreSQL rendered it, or absent. */
typedef struct status_value {
    bool present;
    char text[512];
} status_value_t;

/* Row counts of one table: live, and tombstones (mirror tables only). */
typedef struct status_rows {
    bool read; /* the count query succeeded */
    long long live;
    long long deleted;
} status_rows_t;

/* The last finished reconciliation and the one in progress (values absent when none). */
typedef struct status_reconcile {
    status_value_t last_run, last_started_at, last_seconds;
    status_value_t last_inserted, last_updated, last_tombstoned, last_refused;
    status_value_t running_run, running_phase, running_since, running_scopes;
} status_reconcile_t;

typedef struct status {
    status_state_t state;
    char error[600];    /* UNREACHABLE, UNUSABLE, ERROR: why */
    int schema_version; /* -1 when unreadable; from NOT_MIGRATED on */
    int schema_latest;  /* the version this binary migrates to */
    bool have_sync;     /* the sync_state row was read: the values below are set */
    status_value_t cursor, cursor_event_at;
    status_value_t cursor_age, lag, caught_up_ago; /* seconds, one decimal */
    status_value_t last_error;                     /* one line */
    int poller; /* 1 held (pid, addr set), 0 nobody, -1 unknown */
    char poller_pid[32];
    char poller_addr[128];
    bool have_rows; /* the row counts below were asked for */
    status_rows_t events;
    status_rows_t mirror[MIRROR_COUNT];
    bool poison_read;               /* the poison_events query succeeded */
    long long poison_count;         /* events the database refused, kept as poison */
    status_value_t poison_newest;   /* id of the most recently recorded one */
    bool audit_read;                /* the audit query succeeded */
    status_value_t oldest_event_at; /* created_at of the oldest event kept in the log */
    long long audit_pruned;         /* events removed by retention, in all */
    bool have_reconcile;            /* the reconciliation tables were read */
    status_reconcile_t reconcile;
    bool refused_read;            /* the refused_types query succeeded */
    status_value_t refused_types; /* as the poller recorded them, comma-separated */
} status_t;

/*
 * Reads the status of `cfg`'s schema into *st.  `fresh_ms` is how recent
 * a catch-up must be to count as caught up.  Never fails: what could not
 * be read is stated in *st.
 */
void status_read(const config_t *cfg, int64_t fresh_ms, status_t *st);

#endif
