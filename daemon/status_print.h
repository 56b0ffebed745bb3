/*
 * status_print: `workos-syncd status` output -- key=value lines, or with
 * --json one JSON object with the same keys -- and its exit status.
 */
#ifndef WORKOS_SYNCD_STATUS_PRINT_H
#define WORKOS_SYNCD_STATUS_PRINT_H

#include <stdbool.h>
#include <stdio.h>

#include "status.h"

/*
 * Prints *st for `schema` to `out`, as lines or (json) one object, and
 * returns the exit status: 0 caught up, 1 behind, failing or not migrated,
 * 2 when the database is unreachable or unusable.
 */
int status_print(FILE *out, const char *schema, const status_t *st, bool json);

#endif
