/*
 * store_schema: connection set-up and schema migrations, shared by the
 * store's event-loop connection (store.c) and the one-shot commands.
 * Internal to the store modules; the rest of the daemon uses store.h.
 */
#ifndef WORKOS_SYNCD_STORE_SCHEMA_H
#define WORKOS_SYNCD_STORE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "store.h"
#include "wur.h"

/*
 * The startup `options` every connection sends: the config's lock_timeout
 * and statement_timeout as -c switches, followed by the options the user
 * gave (the url's `options`, else PGOPTIONS), which therefore override
 * them.  Malloc'ed; NULL when out of memory.
 */
char *store_schema_options(const config_t *cfg) WUR;

/*
 * Starts a connection with the daemon's parameters: the config's url (one
 * host or several, which libpq tries in turn, honouring
 * target_session_attrs), UTF8 client encoding, the connect timeout of
 * store_schema_connect_timeout_s, the options of store_schema_options, and
 * notices to the debug log.  With several hosts, `first_host` (taken
 * modulo their number) is the one tried first, the others following in
 * the url's order, wrapping around.  Blocking, or non-blocking for
 * PQconnectPoll.  NULL when out of memory.
 */
PGconn *store_schema_connect(const config_t *cfg, bool blocking, int first_host) WUR;

/*
 * The longest wait for one host, in seconds: the url's connect_timeout,
 * else PGCONNECT_TIMEOUT, else 10 (at least 2, as libpq has it).  libpq
 * enforces it on a blocking connect only; the store's loop does for its own.
 */
int store_schema_connect_timeout_s(const config_t *cfg);

/*
 * How many hosts the config's url names (its host or hostaddr list; 1
 * when it names none or cannot be parsed).
 */
int store_schema_host_count(const config_t *cfg);

/*
 * True when the server's encoding lets it store what WorkOS sends (UTF8
 * or SQL_ASCII); otherwise false with the reason in `err`.
 */
bool store_schema_encoding_ok(PGconn *conn, char *err, size_t errlen) WUR;

/* The schema version query for `schema`, malloc'ed; NULL when out of memory. */
char *store_schema_version_sql(const char *schema) WUR;

/* True when `res` failed because nothing was ever migrated (no schema or table). */
bool store_schema_missing(const PGresult *res);

/*
 * The migrations after `from_version` as one script, each in its own
 * transaction under an advisory lock; *count says how many.  Malloc'ed;
 * NULL when out of memory.
 */
char *store_schema_migration_sql(const char *schema, int from_version, int *count) WUR;

#endif
