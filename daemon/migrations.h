/*
 * The schema migrations compiled into the binary from sql/NNN_name.sql by
 * daemon/embed_sql.sh.  Texts contain the placeholder @SCHEMA@, which the
 * store replaces with the configured schema name before running them.
 */
#ifndef WORKOS_SYNCD_MIGRATIONS_H
#define WORKOS_SYNCD_MIGRATIONS_H

#include <stddef.h>

typedef struct migration {
    int version;      /* NNN of the file name; applied in increasing order */
    const char *name; /* the rest of the file name, for logs and status */
    const char *sql;  /* the file's text */
} migration_t;

extern const migration_t migrations[];
extern const size_t migrations_count;

#endif
