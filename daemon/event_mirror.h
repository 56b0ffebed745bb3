/*
 * event_mirror: the parts of the mirror schema (event_mirror.c) that only
 * event.c's validation uses.  The public accessors (event_mirror(),
 * event_classify(), event_known_type()) are in event.h.
 */
#ifndef WORKOS_SYNCD_EVENT_MIRROR_H
#define WORKOS_SYNCD_EVENT_MIRROR_H

#include <stdbool.h>

#include <cJSON.h>

#include "event.h"

/*
 * How long a value of an indexed text column may be.  A btree entry must
 * fit in a third of a page (2,704 bytes with the default block size), so a
 * longer value would make PostgreSQL refuse the batch; such an event is
 * caught in validation instead and kept in the log only, as malformed.
 * This is a bound up front, not the guarantee: whatever else the server
 * refuses is found by the apply job (store_apply.c) and kept as a poison
 * event.
 */
#define EVENT_MIRROR_MAX_INDEXED_LEN 2000

/* Whether `v` is a text value too long for the index on column `c` of `def`. */
bool event_mirror_too_long(const mirror_def_t *def, const mirror_column_t *c, const cJSON *v);

/*
 * The column event type `type` forces, with its value in *value; NULL for
 * most types.  Both strings are static.
 */
const char *event_mirror_forced(const char *type, const char **value);

#endif
