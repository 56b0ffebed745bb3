/*
 * event_mirror: what the daemon knows of each event type and of the mirror
 * schema -- the column tables of every mirror table, which columns the
 * schema indexes, every known event type with what it does to the mirror,
 * the states a revocation forces and the families kept in the log only.
 * The schema is declared once, here; event.c validates events against it
 * and apply.c generates its SQL from the same tables, so a column cannot
 * be written in one place and forgotten in the other.
 */
#include "event.h"

#include <string.h>

#include "event_mirror.h"

#define COLS(a) (a), sizeof(a) / sizeof((a)[0])

static const mirror_column_t user_columns[] = {
    {"id", "id", NULL, COLUMN_TEXT},
    {"email", "email", NULL, COLUMN_TEXT},
    {"first_name", "first_name", NULL, COLUMN_TEXT},
    {"last_name", "last_name", NULL, COLUMN_TEXT},
    {"email_verified", "email_verified", NULL, COLUMN_BOOL},
    {"profile_picture_url", "profile_picture_url", NULL, COLUMN_TEXT},
    {"last_sign_in_at", "last_sign_in_at", NULL, COLUMN_TIME},
    {"external_id", "external_id", NULL, COLUMN_TEXT},
    {"metadata", "metadata", NULL, COLUMN_JSON},
    {"locale", "locale", NULL, COLUMN_TEXT},
    {"created_at", "created_at", NULL, COLUMN_TIME},
    {"updated_at", "updated_at", NULL, COLUMN_TIME},
    {"raw", NULL, NULL, COLUMN_JSON}, /* the whole object (field NULL), minus secrets */
};

static const mirror_column_t membership_columns[] = {
    {"id", "id", NULL, COLUMN_TEXT},
    {"user_id", "user_id", NULL, COLUMN_TEXT},
    {"organization_id", "organization_id", NULL, COLUMN_TEXT},
    {"organization_name", "organization_name", NULL, COLUMN_TEXT},
    {"role_slug", "role", "slug", COLUMN_TEXT},
    {"roles", "roles", NULL, COLUMN_JSON},
    {"status", "status", NULL, COLUMN_TEXT},
    {"directory_managed", "directory_managed", NULL, COLUMN_BOOL},
    {"custom_attributes", "custom_attributes", NULL, COLUMN_JSON},
    {"created_at", "created_at", NULL, COLUMN_TIME},
    {"updated_at", "updated_at", NULL, COLUMN_TIME},
    {"raw", NULL, NULL, COLUMN_JSON}, /* the whole object (field NULL), minus secrets */
};

static const mirror_column_t invitation_columns[] = {
    {"id", "id", NULL, COLUMN_TEXT},
    {"email", "email", NULL, COLUMN_TEXT},
    {"state", "state", NULL, COLUMN_TEXT},
    {"accepted_at", "accepted_at", NULL, COLUMN_TIME},
    {"revoked_at", "revoked_at", NULL, COLUMN_TIME},
    {"expires_at", "expires_at", NULL, COLUMN_TIME},
    {"organization_id", "organization_id", NULL, COLUMN_TEXT},
    {"inviter_user_id", "inviter_user_id", NULL, COLUMN_TEXT},
    {"accepted_user_id", "accepted_user_id", NULL, COLUMN_TEXT},
    {"role_slug", "role_slug", NULL, COLUMN_TEXT},
    {"created_at", "created_at", NULL, COLUMN_TIME},
    {"updated_at", "updated_at", NULL, COLUMN_TIME},
    {"raw", NULL, NULL, COLUMN_JSON}, /* the whole object (field NULL), minus secrets */
};

static const mirror_column_t session_columns[] = {
    {"id", "id", NULL, COLUMN_TEXT},
    {"user_id", "user_id", NULL, COLUMN_TEXT},
    {"organization_id", "organization_id", NULL, COLUMN_TEXT},
    {"status", "status", NULL, COLUMN_TEXT},
    {"auth_method", "auth_method", NULL, COLUMN_TEXT},
    {"ip_address", "ip_address", NULL, COLUMN_TEXT},
    {"user_agent", "user_agent", NULL, COLUMN_TEXT},
    {"impersonator", "impersonator", NULL, COLUMN_JSON},
    {"expires_at", "expires_at", NULL, COLUMN_TIME},
    {"ended_at", "ended_at", NULL, COLUMN_TIME},
    {"created_at", "created_at", NULL, COLUMN_TIME},
    {"updated_at", "updated_at", NULL, COLUMN_TIME},
    {"raw", NULL, NULL, COLUMN_JSON}, /* the whole object (field NULL), minus secrets */
};

static const mirror_column_t api_key_columns[] = {
    {"id", "id", NULL, COLUMN_TEXT},
    {"owner_type", "owner", "type", COLUMN_TEXT},
    {"owner_id", "owner", "id", COLUMN_TEXT},
    {"name", "name", NULL, COLUMN_TEXT},
    {"obfuscated_value", "obfuscated_value", NULL, COLUMN_TEXT},
    {"permissions", "permissions", NULL, COLUMN_JSON},
    {"last_used_at", "last_used_at", NULL, COLUMN_TIME},
    {"created_at", "created_at", NULL, COLUMN_TIME},
    {"updated_at", "updated_at", NULL, COLUMN_TIME},
    {"raw", NULL, NULL, COLUMN_JSON}, /* the whole object (field NULL), minus secrets */
};

static const mirror_column_t organization_columns[] = {
    {"id", "id", NULL, COLUMN_TEXT},
    {"name", "name", NULL, COLUMN_TEXT},
    {"external_id", "external_id", NULL, COLUMN_TEXT},
    {"metadata", "metadata", NULL, COLUMN_JSON},
    {"allow_profiles_outside_organization", "allow_profiles_outside_organization", NULL,
     COLUMN_BOOL},
    {"domains", "domains", NULL, COLUMN_JSON},
    {"created_at", "created_at", NULL, COLUMN_TIME},
    {"updated_at", "updated_at", NULL, COLUMN_TIME},
    {"raw", NULL, NULL, COLUMN_JSON}, /* the whole object (field NULL), minus secrets */
};

#define FITS(a) (sizeof(a) / sizeof((a)[0]) <= MIRROR_MAX_COLUMNS)
_Static_assert(FITS(user_columns) && FITS(membership_columns) && FITS(invitation_columns) &&
                   FITS(session_columns) && FITS(api_key_columns) && FITS(organization_columns),
               "a mirror table has more than MIRROR_MAX_COLUMNS columns");

static const mirror_def_t mirrors[MIRROR_COUNT] = {
    [MIRROR_USERS] = {"users", COLS(user_columns)},
    [MIRROR_MEMBERSHIPS] = {"organization_memberships", COLS(membership_columns)},
    [MIRROR_INVITATIONS] = {"invitations", COLS(invitation_columns)},
    [MIRROR_SESSIONS] = {"sessions", COLS(session_columns)},
    [MIRROR_API_KEYS] = {"api_keys", COLS(api_key_columns)},
    [MIRROR_ORGANIZATIONS] = {"organizations", COLS(organization_columns)},
};

/* Text columns the schema indexes (sql/001_schema.sql). */
static const struct {
    mirror_table_t table;
    const char *column;
} indexed_columns[] = {
    {MIRROR_USERS, "email"},
    {MIRROR_USERS, "external_id"},
    {MIRROR_MEMBERSHIPS, "user_id"},
    {MIRROR_MEMBERSHIPS, "organization_id"},
    {MIRROR_INVITATIONS, "email"},
    {MIRROR_INVITATIONS, "organization_id"},
    {MIRROR_SESSIONS, "user_id"},
    {MIRROR_SESSIONS, "organization_id"},
    {MIRROR_API_KEYS, "owner_type"},
    {MIRROR_API_KEYS, "owner_id"},
    {MIRROR_ORGANIZATIONS, "external_id"},
};

bool event_mirror_too_long(const mirror_def_t *def, const mirror_column_t *c, const cJSON *v)
{
    if (c->type != COLUMN_TEXT || v == NULL || !cJSON_IsString(v) ||
        strlen(v->valuestring) <= EVENT_MIRROR_MAX_INDEXED_LEN)
        return false;
    for (size_t i = 0; i < sizeof(indexed_columns) / sizeof(indexed_columns[0]); i++)
        if (def == &mirrors[indexed_columns[i].table] &&
            strcmp(c->name, indexed_columns[i].column) == 0)
            return true;
    return false;
}

/*
 * Every event type this version knows, and what it does to the mirror, in
 * the order the default filter lists them.  The log-only types (table
 * unused) are here by name for the config's wildcards; their families are
 * also known by prefix, below, so a new type in one is not "unknown".
 */
static const struct {
    const char *type;
    event_action_t action;
    mirror_table_t table;
} event_types[] = {
    {"user.created", EVENT_ACTION_UPSERT, MIRROR_USERS},
    {"user.updated", EVENT_ACTION_UPSERT, MIRROR_USERS},
    {"user.deleted", EVENT_ACTION_TOMBSTONE, MIRROR_USERS},
    {"organization_membership.created", EVENT_ACTION_UPSERT, MIRROR_MEMBERSHIPS},
    {"organization_membership.updated", EVENT_ACTION_UPSERT, MIRROR_MEMBERSHIPS},
    {"organization_membership.deleted", EVENT_ACTION_TOMBSTONE, MIRROR_MEMBERSHIPS},
    {"invitation.created", EVENT_ACTION_UPSERT, MIRROR_INVITATIONS},
    {"invitation.accepted", EVENT_ACTION_UPSERT, MIRROR_INVITATIONS},
    {"invitation.revoked", EVENT_ACTION_UPSERT, MIRROR_INVITATIONS},
    {"invitation.resent", EVENT_ACTION_UPSERT, MIRROR_INVITATIONS},
    {"session.created", EVENT_ACTION_UPSERT, MIRROR_SESSIONS},
    {"session.revoked", EVENT_ACTION_UPSERT, MIRROR_SESSIONS},
    /* The key no longer exists in WorkOS and the object has no state. */
    {"api_key.created", EVENT_ACTION_UPSERT, MIRROR_API_KEYS},
    {"api_key.revoked", EVENT_ACTION_TOMBSTONE, MIRROR_API_KEYS},
    {"organization.created", EVENT_ACTION_UPSERT, MIRROR_ORGANIZATIONS},
    {"organization.updated", EVENT_ACTION_UPSERT, MIRROR_ORGANIZATIONS},
    {"organization.deleted", EVENT_ACTION_TOMBSTONE, MIRROR_ORGANIZATIONS},
    {"authentication.email_verification_failed", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.email_verification_succeeded", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.magic_auth_failed", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.magic_auth_succeeded", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.mfa_failed", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.mfa_succeeded", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.oauth_failed", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.oauth_succeeded", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.passkey_failed", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.passkey_succeeded", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.password_failed", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.password_succeeded", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.radar_risk_detected", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.sso_failed", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"authentication.sso_succeeded", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"email_verification.created", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"magic_auth.created", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"password_reset.created", EVENT_ACTION_LOG, MIRROR_COUNT},
    {"password_reset.succeeded", EVENT_ACTION_LOG, MIRROR_COUNT},
};

/*
 * Revocations state the object's new state by their type: `column` is set
 * to `value` whatever the payload says (WorkOS has sent session.revoked
 * with a payload still "active"); the rest of the payload applies as usual.
 */
static const struct {
    const char *type;
    const char *column;
    const char *value;
} forced_states[] = {
    {"invitation.revoked", "state", "revoked"},
    {"session.revoked", "status", "revoked"},
};

/* Families kept in the log only, known by prefix (the name ends in '.'). */
static const char *const log_types[] = {
    "authentication.",
    "email_verification.",
    "password_reset.",
    "magic_auth.",
};

const mirror_def_t *event_mirror(mirror_table_t t)
{
    return (unsigned)t < MIRROR_COUNT ? &mirrors[t] : NULL;
}

bool event_mirror_sent(const mirror_column_t *c)
{
    return c->field != NULL;
}

const char *event_known_type(size_t i)
{
    return i < sizeof(event_types) / sizeof(event_types[0]) ? event_types[i].type : NULL;
}

const char *event_mirror_forced(const char *type, const char **value)
{
    for (size_t i = 0; i < sizeof(forced_states) / sizeof(forced_states[0]); i++)
        if (strcmp(type, forced_states[i].type) == 0) {
            *value = forced_states[i].value;
            return forced_states[i].column;
        }
    return NULL;
}

event_action_t event_classify(const char *type, mirror_table_t *table, bool *known)
{
    *known = false;
    for (size_t i = 0; i < sizeof(event_types) / sizeof(event_types[0]); i++) {
        if (strcmp(type, event_types[i].type) == 0) {
            *known = true;
            if (event_types[i].action != EVENT_ACTION_LOG)
                *table = event_types[i].table;
            return event_types[i].action;
        }
    }
    for (size_t i = 0; i < sizeof(log_types) / sizeof(log_types[0]); i++)
        if (strncmp(type, log_types[i], strlen(log_types[i])) == 0)
            *known = true;
    return EVENT_ACTION_LOG;
}
