/*
 * poller_types: the event types the poller asks the Events API for, and
 * what the API said about each.  Internal to the poller.
 *
 * The Events API answers 400 to a whole request when it does not know one
 * name of its filter.  The poller then checks every type on its own (the
 * CHECKING / CHECK_WAIT states of poller_fsm.h); this module keeps the
 * table those checks fill, the refused types, the URLs built from the
 * table, and reads each check's answer.  The requests themselves are the
 * poller's.
 */
#ifndef WORKOS_SYNCD_POLLER_TYPES_H
#define WORKOS_SYNCD_POLLER_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "http_client.h"
#include "poller_fsm.h"
#include "wur.h"

#define POLLER_TYPES_PAGE_LIMIT 100 /* events per page the poller asks for */

typedef struct poller_types poller_types_t;

/*
 * The configured types of `cfg`, none refused.  `cfg` must outlive the
 * table.  Returns NULL when out of memory.
 */
WUR poller_types_t *poller_types_new(const config_t *cfg);

/* Frees the table; NULL is allowed. */
void poller_types_free(poller_types_t *t);

/*
 * The page URL without its position: base_url/events?order=asc&limit=..
 * and a filter of every type in use.  Owned by the table, valid until
 * poller_types_use() or poller_types_free().
 */
const char *poller_types_url_prefix(const poller_types_t *t);

/* The refused types, comma-separated, "" for none; owned by the table. */
const char *poller_types_refused(const poller_types_t *t);

/* Whether every configured type is refused. */
bool poller_types_all_refused(const poller_types_t *t);

/* Fills the facts of `facts` about the types (types_unchecked, ..). */
void poller_types_facts(const poller_types_t *t, poller_facts_t *facts);

/*
 * A check round begins: every type in use, or every type when none is, is
 * to be asked about.  Logs the round.
 */
void poller_types_begin(poller_types_t *t);

/*
 * The round refused some types: rebuilds the URL prefix, so requests name
 * only the others.  Returns false when out of memory (the old prefix stays).
 */
WUR bool poller_types_use(poller_types_t *t);

/*
 * The URL that checks the first type the round has still to ask about: the
 * cheapest listing that names only it; *name is set to the type (owned by
 * the table).  The caller owns the result; NULL when out of memory.  There
 * must be such a type.
 */
WUR char *poller_types_check_url(poller_types_t *t, const char **name);

/*
 * Reads the answer `resp` to the check of `check_name` (`err`: its error
 * body for the log, or NULL): 200 keeps the type, 400 refuses it (once,
 * with a warning); both return POLLER_EV_TYPE_CHECKED, and a type no
 * longer in the table is passed over.  Anything else is a failed request:
 * returns POLLER_EV_CHECK_FAILED with `reason` filled.
 */
WUR poller_event_t poller_types_answer(poller_types_t *t, const char *check_name,
                                       const http_response_t *resp, const char *err, char *reason,
                                       size_t reasonlen);

#endif
