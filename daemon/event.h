/*
 * event: WorkOS event envelopes (JSON) to the typed rows the store writes.
 *
 * A page from the Events API, or a webhook body, is decoded here into a
 * batch: the scrubbed envelopes destined for the event log, and for every
 * mirrored object type the flattened rows (columns named after the WorkOS
 * JSON fields) that the apply statement upserts.  Nothing here touches the
 * network or the database; the module is pure and unit-tested on its own.
 */
#ifndef WORKOS_SYNCD_EVENT_H
#define WORKOS_SYNCD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "pgarray.h"
#include "wur.h"

/* The mirror tables (apply.c lists their arrays in this order). */
typedef enum mirror_table {
    MIRROR_USERS,         /* user.* */
    MIRROR_MEMBERSHIPS,   /* organization_membership.* */
    MIRROR_INVITATIONS,   /* invitation.* */
    MIRROR_SESSIONS,      /* session.* */
    MIRROR_API_KEYS,      /* api_key.* */
    MIRROR_ORGANIZATIONS, /* organization.* */
    MIRROR_COUNT          /* number of mirror tables, not a table */
} mirror_table_t;

/* How a column's value is checked in C and typed in SQL. */
typedef enum column_type {
    COLUMN_TEXT, /* JSON string (or null) -> text */
    COLUMN_BOOL, /* JSON true/false (or null) -> boolean */
    COLUMN_TIME, /* ISO 8601 string (or null) -> timestamptz */
    COLUMN_JSON  /* any JSON value -> jsonb */
} column_type_t;

typedef struct mirror_column {
    const char *name;  /* column name: the JSON field name, flattened with '_' */
    const char *field; /* top-level field of the object's JSON; NULL: the whole object,
                        * which is the event's data as the log stores it: the apply
                        * statement takes it from the log row it inserts (sent and
                        * parsed once), so a batch has no array for it */
    const char *sub;   /* field inside `field` when nested (role.slug), else NULL */
    column_type_t type;
} mirror_column_t;

/* No mirror table has more columns than this (checked at build time). */
#define MIRROR_MAX_COLUMNS 16

typedef struct mirror_def {
    const char *table;              /* unqualified table name */
    const mirror_column_t *columns; /* id first, updated_at among them */
    size_t n_columns;
} mirror_def_t;

/* What an event does to the mirror. */
typedef enum event_action {
    EVENT_ACTION_LOG,      /* kept in the event log only */
    EVENT_ACTION_UPSERT,   /* create/update/state change of a mirrored object */
    EVENT_ACTION_TOMBSTONE /* deletion: the row keeps deleted_at forever */
} event_action_t;

/* The outcome of adding one envelope to a batch. */
typedef enum event_status {
    EVENT_OK,        /* logged, and mirrored when its type is mirrored */
    EVENT_UNKNOWN,   /* a type this version does not know: logged only */
    EVENT_MALFORMED, /* payload wrong for its type, or none: logged only, counted */
    EVENT_INVALID,   /* envelope unusable (no id, type or time): not stored */
    EVENT_NOMEM      /* out of memory: not stored, the batch unchanged */
} event_status_t;

/* The event log's columns in a batch: id, event, created_at, data, context. */
#define EVENT_LOG_ARRAYS 5 /* id, event, created_at, data, context */

/* The arrays before a mirror table's own columns: seq, event_id, deleted_at. */
#define EVENT_MIRROR_EXTRA_ARRAYS 3

/* How many events of one type a batch holds, for the metrics. */
typedef struct event_type_count {
    char *type;
    long n;
} event_type_count_t;

/*
 * A batch of events being prepared for one apply transaction, kept as
 * columns: one text[] per column (apply.c turns them into the statement's
 * parameters).  `log` holds the
 * event log rows: id, event, created_at, data (JSON text, "null" when
 * absent) and context (JSON text or NULL).  `mirror[t]` holds mirror table
 * t's rows: seq, event_id and deleted_at, then the table's columns in
 * order.  Events are rendered as they are added, so a batch filling up
 * while the previous one commits costs the commit nothing.  `seq` is the
 * arrival order, which breaks ties between equal updated_at.
 */
typedef struct event_batch {
    pg_array_t log[EVENT_LOG_ARRAYS];
    pg_array_t mirror[MIRROR_COUNT][EVENT_MIRROR_EXTRA_ARRAYS + MIRROR_MAX_COLUMNS];
    size_t n_rows[MIRROR_COUNT]; /* rows per mirror table */
    event_type_count_t *types;   /* events per type */
    size_t n_types;
    size_t n_events;           /* envelopes accepted */
    size_t n_malformed;        /* of which malformed for their type */
    size_t n_unknown;          /* of which of an unknown type */
    char *last_id;             /* id of the last event accepted, or NULL */
    int64_t newest_created_ms; /* the newest created_at accepted, ms since the epoch, that
                                  is not EVENT_FUTURE_MS ahead of the clock; 0: none */
} event_batch_t;

/* The definition of mirror table `t`. */
const mirror_def_t *event_mirror(mirror_table_t t);

/*
 * Whether column `c` has an array of its own in a batch: every column but
 * the whole object, which the apply statement takes from the log row.
 */
bool event_mirror_sent(const mirror_column_t *c);

/*
 * Classifies an event type name.  Sets *table for mirrored types.  Returns
 * EVENT_ACTION_LOG for types that are only logged, and sets *known to
 * whether this version knows the type at all.
 */
event_action_t event_classify(const char *type, mirror_table_t *table, bool *known);

/*
 * The i-th event type this version knows by name, mirrored or logged only,
 * or NULL past the last.  Wildcards in the config expand against these.
 */
const char *event_known_type(size_t i);

/*
 * Removes from an envelope's data every field that must never be stored:
 * invitation token and accept_invitation_url, one-time codes, password
 * reset tokens and URLs, API key secret values.  Returns how many fields
 * were removed.
 */
size_t event_scrub(cJSON *envelope);

/*
 * The "no data" rule: true when the envelope has a `data` member that is
 * not JSON null.  An event without data is kept in the log by the poller
 * (as malformed) and refused by the webhook receiver; both ask here.
 */
bool event_has_data(const cJSON *envelope);

/*
 * Copies an envelope's `id` and `event` (type) into id[idlen] and
 * type[typelen] for log lines and per-type bookkeeping, before
 * event_batch_add takes the envelope: each is the string, cut to fit, or
 * "-" when absent or not a string.  Never fails; `envelope` may be
 * anything, NULL included.
 */
void event_peek(const cJSON *envelope, char *id, size_t idlen, char *type, size_t typelen);

/* A new, empty batch, or NULL when out of memory. */
event_batch_t *event_batch_new(void);

/*
 * Adds one envelope to the batch: scrubs it, validates it for its type, and
 * appends its log row and its mirror row.  Takes ownership of `envelope` in
 * every case and frees it: the batch keeps only the rendered rows.
 * On anything but EVENT_OK, `why` receives a short reason (no payload data).
 */
event_status_t event_batch_add(event_batch_t *b, cJSON *envelope, char *why, size_t whylen);

/* Frees a batch; accepts NULL. */
void event_batch_free(event_batch_t *b);

/*
 * A new batch holding events [lo, hi) of `b` (arrival order), copied from
 * its rendered rows: the log rows and, when `mirror`, their mirror rows
 * (seq kept).  For re-applying part of a batch the database refused; only
 * the rows, n_rows, n_events and last_id are set, not the per-type counts
 * the metrics read.  `b` is left unchanged and may already have been
 * listed by apply_arrays.  NULL when out of memory or the range is empty
 * or out of bounds.  Costs nothing until called: the common path renders
 * each event once.
 */
event_batch_t *event_batch_slice(const event_batch_t *b, size_t lo, size_t hi, bool mirror) WUR;

/* One event's log row in a batch, pointing into it: not NUL-terminated. */
typedef struct event_row {
    const char *value[EVENT_LOG_ARRAYS]; /* id, event, created_at, data, context; NULL = SQL NULL */
    size_t len[EVENT_LOG_ARRAYS];
} event_row_t;

/* Reads event `i`'s log row into *row; false when there is no such event. */
bool event_batch_row(const event_batch_t *b, size_t i, event_row_t *row) WUR;

/* Bounds on a JSON input (a webhook body or an Events API page). */
#define EVENT_MAX_DEPTH 64 /* nested objects and arrays, the outermost included */
#define EVENT_MAX_BYTES ((size_t)64 * 1024 * 1024) /* the whole document */

/*
 * Parses one JSON document from untrusted bytes: `len` bytes of `body`
 * (no NUL needed).  Refuses, with a reason in `err`, input over
 * EVENT_MAX_BYTES, nested deeper than EVENT_MAX_DEPTH (checked on the
 * bytes, before anything is allocated), invalid JSON, and anything but
 * whitespace after the value (`{...} xyz`).  A \u escape of a UTF-16
 * surrogate that is not half of a pair, or of NUL (valid JSON grammar;
 * cJSON refuses the first and cuts a string short at the second, jsonb
 * refuses both), is read as U+FFFD, so one truncated emoji neither fails
 * a page forever nor loses its event, and no string loses its tail.
 * Returns the parsed value, owned by the caller, or NULL.  For a webhook
 * body, a page (event_page_parse) and a list response.
 */
cJSON *event_parse_json(const char *body, size_t len, char *err, size_t errlen) WUR;

/* One page of the Events API list response. */
typedef struct event_page {
    cJSON *root;       /* the parsed response; owns `data` */
    cJSON *data;       /* the array of envelopes */
    size_t n;          /* cJSON_GetArraySize(data) */
    const char *after; /* list_metadata.after, or NULL at the end of the stream */
} event_page_t;

/*
 * How far back in created_at an event may be listed after another and still
 * count as in order.  WorkOS documents a consistent order, not that
 * created_at never goes back along it: events stamped by different
 * servers, or committed in another order than stamped, may be listed a
 * little out of time.  What the order checks exist to catch -- an API
 * answering newest first, or starting again from the beginning -- goes
 * back by a page's span or more.
 */
#define EVENT_ORDER_SKEW_MS 1000

/*
 * A created_at further than this ahead of the local clock orders nothing:
 * the order checks pass over it as over an event without a time (the
 * event is stored as it came).  One event stamped years ahead would
 * otherwise be the newest for good, and every page after it out of order.
 */
#define EVENT_FUTURE_MS (INT64_C(24) * 3600 * 1000)

/*
 * A created_at further than this before the newest one listed ahead of it
 * orders nothing either: no stream position is that far back (WorkOS keeps
 * events for 30 to 90 days, so an API starting again from the beginning
 * steps back by no more), and one event stamped 1970 by a clock reset
 * would otherwise be out of order for good, and every page from it.
 */
#define EVENT_PAST_MS (INT64_C(365) * 24 * 3600 * 1000)

/*
 * An envelope's created_at for the order checks in *ms: false when it has
 * no valid one, or one more than EVENT_FUTURE_MS past `now_ms` (wall clock).
 */
bool event_order_ms(const cJSON *envelope, int64_t now_ms, int64_t *ms) WUR;

/*
 * Parses a list response with event_parse_json's bounds and checks its
 * shape (an object with a `data` array); event_page_in_order() checks its
 * order.  On failure fills `err` and leaves `page` empty.
 */
bool event_page_parse(event_page_t *page, const char *body, size_t len, char *err,
                      size_t errlen) WUR;

/*
 * The order checks, as asked for with order=asc: false, with `err` filled,
 * when an event is EVENT_ORDER_SKEW_MS or more older than the newest before
 * it, the page's own or `after_ms` (ms since the epoch, the newest event
 * taken from the pages before; 0 when there is none; one past
 * EVENT_FUTURE_MS counts as none); *older says that event is the page's
 * first (an API starting again from the beginning).  Only times
 * event_order_ms() reads take part, and none more than EVENT_PAST_MS
 * before the newest ahead of it.  An empty page is in order.
 */
bool event_page_in_order(const event_page_t *page, int64_t after_ms, bool *older, char *err,
                         size_t errlen) WUR;

/*
 * Whether the page's created_at never goes back at all, its first event
 * included when compared with `after_ms` (0: nothing before it), among the
 * events that take part in the order checks: what fetch windows, which cut
 * the stream by created_at, rely on.
 */
bool event_page_ascends(const event_page_t *page, int64_t after_ms);

/*
 * The page's newest created_at (ms since the epoch) as the order checks
 * read it (event_order_ms()), or 0 when no event has one: with the skew
 * event_page_in_order() allows, it may be a little past its last event's.
 */
int64_t event_page_newest(const event_page_t *page);

/*
 * The id to ask after once the page is taken: its last element's id, even
 * if that element is unusable (or the stream would stall on it), else
 * list_metadata.after, else the id of the last element that has one (the
 * elements after it are listed again: without an id to ask after, the
 * same page would come back for ever); NULL for none.  Valid while the
 * page is.
 */
const char *event_page_last_id(const event_page_t *page);

/* An envelope's created_at as ms since the epoch in *ms; false when it has no valid one. */
bool event_created_ms(const cJSON *envelope, int64_t *ms) WUR;

/* Frees a parsed page; accepts an empty one. */
void event_page_free(event_page_t *page);

#endif
