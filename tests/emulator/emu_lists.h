/*
 * WorkOS' list endpoints (the "state APIs") over an emu_state_t: routing of
 * the request path, parameter validation, cursor pagination in either order,
 * the per-endpoint filters and the list objects as the real endpoints shape
 * them (fields events lack are filled in, an API key's secret value is left
 * out). Indexes sorted by (filter key, id) are rebuilt lazily whenever the
 * state changed, so a listing follows events appended while serving.
 */
#ifndef EMU_LISTS_H
#define EMU_LISTS_H

#include "emu_state.h"
#include "emu_util.h"

typedef enum {
    EMU_EP_EVENTS,        /* GET /events */
    EMU_EP_ORGANIZATIONS, /* GET /organizations */
    EMU_EP_USERS,         /* GET /user_management/users */
    EMU_EP_INVITATIONS,   /* GET /user_management/invitations */
    EMU_EP_MEMBERSHIPS,   /* GET /user_management/organization_memberships */
    EMU_EP_SESSIONS,      /* GET /user_management/users/{id}/sessions */
    EMU_EP_API_KEYS,      /* GET /organizations/{id}/api_keys */
    EMU_EP_COUNT,
    EMU_EP_NONE = EMU_EP_COUNT, /* not an API path */
} emu_endpoint_t;

typedef struct emu_lists emu_lists_t;

/* Name of an endpoint in stats ("events", "users", ...). */
const char *emu_endpoint_name(emu_endpoint_t ep);

/* Classifies a request path. For sessions and api_keys *scope_id receives a
 * malloc'd copy of the {id} segment (else NULL); the caller frees it. */
emu_endpoint_t emu_lists_route(const char *path, char **scope_id);

/* True for paths under /user_management/ (the AuthKit rate limit). */
bool emu_lists_is_user_management(const char *path);

/* Creates the list server over st (not owned); never returns NULL. */
emu_lists_t *emu_lists_new(emu_state_t *st);

/* Releases the indexes; accepts NULL. */
void emu_lists_free(emu_lists_t *l);

/* Answers one list request of endpoint ep (not EMU_EP_EVENTS): appends the
 * JSON answer to body and returns its HTTP status (200, 404 or 422). With
 * reverse set the page is written in reverse (list_metadata unchanged).
 * *returned is the number of objects in the page. */
int emu_lists_answer(emu_lists_t *l, emu_endpoint_t ep, const char *scope_id,
                     const emu_params_t *ps, bool reverse, emu_buf_t *body, size_t *returned);

/* Live (not deleted) objects of table t. */
size_t emu_lists_live(emu_lists_t *l, emu_table_t t);

#endif
