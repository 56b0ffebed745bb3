/*
 * The current state of every mirrored object, derived from its events by the
 * rule a correct consumer follows: the snapshot with the greatest
 * data.updated_at wins (ties go to the later event), and once a removing
 * event (organization.deleted, user.deleted, organization_membership.deleted,
 * api_key.revoked) is seen the object is deleted for good and later events
 * for it are ignored. `gen` feeds it while it writes a stream to produce the
 * expected mirror; `serve` feeds it from the event store to answer the list
 * endpoints. Objects are kept per table in order of first appearance.
 */
#ifndef EMU_STATE_H
#define EMU_STATE_H

#include "emu_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    EMU_TBL_ORGANIZATIONS, /* organization.* */
    EMU_TBL_USERS,         /* user.* */
    EMU_TBL_MEMBERSHIPS,   /* organization_membership.* */
    EMU_TBL_INVITATIONS,   /* invitation.* */
    EMU_TBL_SESSIONS,      /* session.* */
    EMU_TBL_API_KEYS,      /* api_key.* */
    EMU_TBL_COUNT,
} emu_table_t;

/* Fields of a payload the list endpoints filter on (NULL when absent). */
typedef enum {
    EMU_KEY_USER,   /* user_id */
    EMU_KEY_ORG,    /* organization_id, or owner.id of an organization key */
    EMU_KEY_EMAIL,  /* email */
    EMU_KEY_STATUS, /* status (memberships, sessions) */
    EMU_KEY_COUNT,
} emu_key_t;

typedef struct {
    char *id;
    char *payload;  /* the winning data object, NUL-terminated JSON */
    int64_t win_ms; /* its updated_at; INT64_MIN when it had none */
    bool deleted;
    bool keys_ok; /* keys[] reflect payload */
    char *keys[EMU_KEY_COUNT];
} emu_obj_t;

typedef struct emu_state emu_state_t;

/* Creates an empty state; never returns NULL. Free with emu_state_free. */
emu_state_t *emu_state_new(void);

/* Releases the state and every object; accepts NULL. */
void emu_state_free(emu_state_t *st);

/* The table name used in expectations and stats ("users", ...). */
const char *emu_table_name(emu_table_t t);

/* Maps an event type to the table it changes; *removes is set for the types
 * that delete the object. False for types that touch no mirrored table. */
bool emu_state_classify(const char *event_type, emu_table_t *t, bool *removes) EMU_WUR;

/* Applies one snapshot of object id: payload[0..len) replaces the current one
 * when there is none yet or has_updated and updated_ms >= the current
 * one's; removes marks it deleted. Ignored once the object is deleted. */
void emu_state_apply(emu_state_t *st, emu_table_t t, const char *id, bool has_updated,
                     int64_t updated_ms, const char *payload, size_t len, bool removes);

/* Parses one event envelope (raw[0..len)) and applies its data object when
 * its type is mirrored and the data has a string id; other events are
 * ignored. */
void emu_state_apply_event(emu_state_t *st, const char *raw, size_t len);

/* Objects of table t ever seen, deleted ones included, and the i-th. */
size_t emu_state_count(const emu_state_t *st, emu_table_t t);
emu_obj_t *emu_state_at(const emu_state_t *st, emu_table_t t, size_t i);

/* Object id of table t, or NULL. */
emu_obj_t *emu_state_find(const emu_state_t *st, emu_table_t t, const char *id);

/* Fills o->keys from o->payload if they are stale. */
void emu_state_keys(emu_table_t t, emu_obj_t *o);

/* Grows by one on every change to any object, so indexes can tell they are
 * stale. */
uint64_t emu_state_version(const emu_state_t *st);

#endif
