/*
 * audit: the one-shot commands over the audit trail (sql/005_audit.sql):
 * `verify` recomputes the hash chain over the event log and the change
 * feed, `forget` erases one user's personal data from both.  Blocking
 * libpq, like the other one-shot commands; the daemon's own writes to the
 * trail happen in the database's triggers, in the apply transaction.
 */
#ifndef WORKOS_SYNCD_AUDIT_H
#define WORKOS_SYNCD_AUDIT_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "wur.h"

/*
 * Recomputes every item digest and link hash of the chain in commit order
 * inside one read-only snapshot, and compares the end with the stored
 * head.  Prints key=value lines to `out`: the head (head_pos, head_hash),
 * counts, and on a break the first broken link (broken_pos, broken_id,
 * expected, stored, reason).  Returns 0 when intact, 1 when broken, 2 when
 * the database could not be read.
 */
int audit_verify(const config_t *cfg, FILE *out);

/* What forget is asked to do. */
typedef struct audit_forget_args {
    const char *user_id;
    bool force;   /* even a user still live in the mirror */
    bool dry_run; /* the same erasure, rolled back: what it would reach */
} audit_forget_args_t;

/*
 * Blanks the personal data of the user in the event log and the change
 * feed (audit_forget() in SQL) and records the run; with dry_run, does the
 * same in a transaction it rolls back, so the counts are what a real run
 * would reach now.  A user still live in the mirror is refused unless
 * `force`.  Prints key=value lines to `out`.  Returns 0 when done, 1 when
 * refused, 2 on a database error.
 */
int audit_forget(const config_t *cfg, const audit_forget_args_t *args, FILE *out);

/*
 * Takes forget's own arguments out of argv (argc updated, order of the
 * rest kept, so getopt sees only -c and friends): the first word that is
 * not an option or an option's value becomes args->user_id, "--force" sets
 * args->force and "--dry-run" args->dry_run.  Returns false when more than
 * one such word is present.
 */
bool audit_take_forget_args(int *argc, char **argv, audit_forget_args_t *args) WUR;

#endif
