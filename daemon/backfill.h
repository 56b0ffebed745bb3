/*
 * backfill: the `workos-syncd backfill [--dry-run]` command -- one
 * reconciliation on its own event loop, with a per-type summary, live
 * progress on a terminal, and (dry run) a drift report.
 */
#ifndef WORKOS_SYNCD_BACKFILL_H
#define WORKOS_SYNCD_BACKFILL_H

#include <stdbool.h>

#include "config.h"

/*
 * Runs one reconciliation (resuming an unfinished one) and prints what it
 * did.  Returns the exit status: 0 done (dry run: no drift), 1 dry run
 * found drift, 2 error.
 */
int backfill_main(const config_t *cfg, bool dry_run);

#endif
