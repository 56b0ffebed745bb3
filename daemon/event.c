/*
 * event: decoding and validation of WorkOS events into apply batches.
 *
 * The mirror schema is declared once, in the column tables below; apply.c
 * generates its SQL from the same tables, so a column cannot be written in
 * one place and forgotten in the other.  Validation here is deliberately as
 * strict as PostgreSQL's input functions: an event that passes never makes
 * the apply statement fail, and one that does not is kept in the log only.
 * Parsing untrusted JSON and Events API pages is in event_page.c.
 */
#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define COLS(a) (a), sizeof(a) / sizeof((a)[0])

/*
 * Ids longer than this are refused: PostgreSQL cannot index a key of a few
 * kilobytes, and one such event would otherwise fail every batch it is in.
 */
#define MAX_ID_LEN 255

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

/*
 * Secret fields, by object kind.  A rule applies when the event type starts
 * with `prefix` or the data's "object" equals `object`, so a secret is found
 * whichever of the two a future payload uses.
 */
static const struct {
    const char *prefix;
    const char *object;
    const char *fields[3];
} secret_rules[] = {
    {"invitation.", "invitation", {"token", "accept_invitation_url", NULL}},
    {"magic_auth.", "magic_auth", {"code", NULL, NULL}},
    {"email_verification.", "email_verification", {"code", NULL, NULL}},
    {"password_reset.", "password_reset", {"token", "password_reset_url", NULL}},
    {"api_key.", "api_key", {"value", NULL, NULL}},
};

const mirror_def_t *event_mirror(mirror_table_t t)
{
    return (unsigned)t < MIRROR_COUNT ? &mirrors[t] : NULL;
}

const char *event_known_type(size_t i)
{
    return i < sizeof(event_types) / sizeof(event_types[0]) ? event_types[i].type : NULL;
}

/* The column a type forces, with its value in *value; NULL for most types. */
static const char *forced_column(const char *type, const char **value)
{
    for (size_t i = 0; i < sizeof(forced_states) / sizeof(forced_states[0]); i++)
        if (strcmp(type, forced_states[i].type) == 0) {
            *value = forced_states[i].value;
            return forced_states[i].column;
        }
    return NULL;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
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
        if (has_prefix(type, log_types[i]))
            *known = true;
    return EVENT_ACTION_LOG;
}

size_t event_scrub(cJSON *envelope)
{
    cJSON *type = cJSON_GetObjectItemCaseSensitive(envelope, "event");
    cJSON *data = cJSON_GetObjectItemCaseSensitive(envelope, "data");
    size_t removed = 0;

    if (!cJSON_IsObject(data))
        return 0;
    cJSON *object = cJSON_GetObjectItemCaseSensitive(data, "object");
    for (size_t i = 0; i < sizeof(secret_rules) / sizeof(secret_rules[0]); i++) {
        bool match =
            (cJSON_IsString(type) && has_prefix(type->valuestring, secret_rules[i].prefix)) ||
            (cJSON_IsString(object) && strcmp(object->valuestring, secret_rules[i].object) == 0);
        if (!match)
            continue;
        for (size_t f = 0; f < 3 && secret_rules[i].fields[f] != NULL; f++) {
            /* Loop: a hostile payload may repeat a key. */
            cJSON *item;
            while (
                (item = cJSON_DetachItemFromObjectCaseSensitive(data, secret_rules[i].fields[f]))) {
                cJSON_Delete(item);
                removed++;
            }
        }
    }
    return removed;
}

bool event_has_data(const cJSON *envelope)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(envelope, "data");
    return data != NULL && !cJSON_IsNull(data);
}

/* Copies member `name` of `obj` when it is a string, else "-". */
static void peek_string(const cJSON *obj, const char *name, char *buf, size_t len)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    snprintf(buf, len, "%s", cJSON_IsString(v) ? v->valuestring : "-");
}

void event_peek(const cJSON *envelope, char *id, size_t idlen, char *type, size_t typelen)
{
    peek_string(envelope, "id", id, idlen);
    peek_string(envelope, "event", type, typelen);
}

event_batch_t *event_batch_new(void)
{
    event_batch_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    for (size_t i = 0; i < EVENT_LOG_ARRAYS; i++)
        pg_array_init(&b->log[i]);
    for (int t = 0; t < MIRROR_COUNT; t++)
        for (size_t i = 0; i < EVENT_MIRROR_EXTRA_ARRAYS + MIRROR_MAX_COLUMNS; i++)
            pg_array_init(&b->mirror[t][i]);
    return b;
}

void event_batch_free(event_batch_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < EVENT_LOG_ARRAYS; i++)
        pg_array_free(&b->log[i]);
    for (int t = 0; t < MIRROR_COUNT; t++)
        for (size_t i = 0; i < EVENT_MIRROR_EXTRA_ARRAYS + MIRROR_MAX_COLUMNS; i++)
            pg_array_free(&b->mirror[t][i]);
    for (size_t i = 0; i < b->n_types; i++)
        free(b->types[i].type);
    free(b->types);
    free(b->last_id);
    free(b);
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool utf8_ok(const unsigned char *s)
{
    while (*s != '\0') {
        unsigned char c = *s;
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            s++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        s += n + 1;
    }
    return true;
}

/*
 * PostgreSQL's jsonb refuses invalid UTF-8; an event carrying it would fail
 * every batch it is in, so it is refused here, with a reason, instead.
 */
static bool json_utf8_ok(const cJSON *item)
{
    for (; item != NULL; item = item->next) {
        if (item->string != NULL && !utf8_ok((const unsigned char *)item->string))
            return false;
        if (cJSON_IsString(item) && !utf8_ok((const unsigned char *)item->valuestring))
            return false;
        if (item->child != NULL && !json_utf8_ok(item->child))
            return false;
    }
    return true;
}

static bool value_fits(const cJSON *v, column_type_t type)
{
    if (v == NULL || cJSON_IsNull(v))
        return true;
    switch (type) {
    case COLUMN_TEXT:
        return cJSON_IsString(v);
    case COLUMN_BOOL:
        return cJSON_IsBool(v);
    case COLUMN_TIME: {
        int64_t ms;
        return cJSON_IsString(v) && clock_parse_iso8601(v->valuestring, &ms);
    }
    case COLUMN_JSON:
        return true;
    }
    abort(); /* unreachable: every column_type_t is handled above */
}

/*
 * Looks up and checks the column values of a mirrored object: vals[i] is
 * column i's value, or NULL when absent or JSON null.  The values point
 * into `data`.  Column `forced` (or none, NULL) takes its value from the
 * event's type and is not read.  An upsert needs a valid updated_at and
 * every value of its column's type; a deletion needs only a usable id, so
 * a trimmed payload still tombstones the object -- whatever else it holds
 * that does not fit is left out (NULL), and the stored row keeps its
 * fields unless the payload has a usable, newer updated_at.  Returns
 * false, with `why` filled, when the object cannot be mirrored.
 */
static bool mirror_values(const mirror_def_t *def, cJSON *data, bool tombstone, const char *forced,
                          cJSON **vals, char *why, size_t whylen)
{
    cJSON *id = cJSON_GetObjectItemCaseSensitive(data, "id");
    cJSON *updated = cJSON_GetObjectItemCaseSensitive(data, "updated_at");
    int64_t ms;

    if (!cJSON_IsString(id) || id->valuestring[0] == '\0' || strlen(id->valuestring) > MAX_ID_LEN) {
        snprintf(why, whylen, "data.id missing, not a string or too long");
        return false;
    }
    if (!tombstone &&
        (!cJSON_IsString(updated) || !clock_parse_iso8601(updated->valuestring, &ms))) {
        snprintf(why, whylen, "data.updated_at missing or not a timestamp");
        return false;
    }
    for (size_t i = 0; i < def->n_columns; i++) {
        const mirror_column_t *c = &def->columns[i];
        cJSON *v = c->field != NULL ? cJSON_GetObjectItemCaseSensitive(data, c->field) : data;
        vals[i] = NULL;
        if (forced != NULL && strcmp(c->name, forced) == 0)
            continue;
        if (c->sub != NULL && v != NULL && !cJSON_IsNull(v)) {
            if (!cJSON_IsObject(v)) {
                if (tombstone)
                    continue;
                snprintf(why, whylen, "data.%s is not an object", c->field);
                return false;
            }
            v = cJSON_GetObjectItemCaseSensitive(v, c->sub);
        }
        if (!value_fits(v, c->type)) {
            if (tombstone)
                continue;
            snprintf(why, whylen, "data.%s%s%s has the wrong type", c->field, c->sub ? "." : "",
                     c->sub ? c->sub : "");
            return false;
        }
        vals[i] = v != NULL && !cJSON_IsNull(v) ? v : NULL;
    }
    return true;
}

/* Appends one mirror value as the text its SQL type's input function reads. */
static void add_value(pg_array_t *a, cJSON *v, column_type_t type)
{
    if (v == NULL) {
        pg_array_add(a, NULL, 0);
        return;
    }
    switch (type) {
    case COLUMN_TEXT:
    case COLUMN_TIME:
        pg_array_add_str(a, v->valuestring);
        return;
    case COLUMN_BOOL:
        pg_array_add_str(a, cJSON_IsTrue(v) ? "t" : "f");
        return;
    case COLUMN_JSON:
        pg_array_add_json(a, v);
        return;
    }
    abort(); /* unreachable: every column_type_t is handled above */
}

/* The batch's counter for `type`, created at zero; NULL when out of memory. */
static event_type_count_t *type_count(event_batch_t *b, const char *type)
{
    for (size_t i = 0; i < b->n_types; i++)
        if (strcmp(b->types[i].type, type) == 0)
            return &b->types[i];
    event_type_count_t *types = realloc(b->types, (b->n_types + 1) * sizeof(*types));
    if (types == NULL)
        return NULL;
    b->types = types;
    char *copy = strdup(type);
    if (copy == NULL)
        return NULL;
    types[b->n_types] = (event_type_count_t){copy, 0};
    return &types[b->n_types++];
}

event_status_t event_batch_add(event_batch_t *b, cJSON *envelope, char *why, size_t whylen)
{
    event_status_t status = EVENT_OK;
    cJSON *id, *type, *created, *data;
    int64_t created_ms;

    why[0] = '\0';
    if (!cJSON_IsObject(envelope)) {
        snprintf(why, whylen, "event is not a JSON object");
        goto invalid;
    }
    id = cJSON_GetObjectItemCaseSensitive(envelope, "id");
    type = cJSON_GetObjectItemCaseSensitive(envelope, "event");
    created = cJSON_GetObjectItemCaseSensitive(envelope, "created_at");
    data = cJSON_GetObjectItemCaseSensitive(envelope, "data");
    if (!cJSON_IsString(id) || id->valuestring[0] == '\0' || strlen(id->valuestring) > MAX_ID_LEN) {
        snprintf(why, whylen, "event has no id, or one too long");
        goto invalid;
    }
    if (!cJSON_IsString(type) || type->valuestring[0] == '\0' ||
        strlen(type->valuestring) > MAX_ID_LEN) {
        snprintf(why, whylen, "event has no type, or one too long");
        goto invalid;
    }
    if (!cJSON_IsString(created) || !clock_parse_iso8601(created->valuestring, &created_ms)) {
        snprintf(why, whylen, "event created_at missing or not a timestamp");
        goto invalid;
    }
    if (!json_utf8_ok(envelope->child)) {
        snprintf(why, whylen, "event contains invalid UTF-8");
        goto invalid;
    }
    /* The log's context column takes objects only; anything else is dropped. */
    cJSON *context = cJSON_GetObjectItemCaseSensitive(envelope, "context");
    if (context != NULL && !cJSON_IsObject(context))
        cJSON_DeleteItemFromObjectCaseSensitive(envelope, "context");

    event_scrub(envelope);

    mirror_table_t table = MIRROR_USERS;
    bool known, mirrored = false;
    cJSON *vals[MIRROR_MAX_COLUMNS];
    const char *forced_value = NULL;
    event_action_t action = event_classify(type->valuestring, &table, &known);
    if (!event_has_data(envelope)) {
        /* Kept in the log (data stored as JSON null), mirrored nowhere. */
        snprintf(why, whylen, "event has no data");
        status = EVENT_MALFORMED;
    } else if (!known) {
        snprintf(why, whylen, "unknown event type");
        status = EVENT_UNKNOWN;
    } else if (action != EVENT_ACTION_LOG) {
        if (!cJSON_IsObject(data)) {
            snprintf(why, whylen, "data is not an object");
            status = EVENT_MALFORMED;
        } else if (!mirror_values(&mirrors[table], data, action == EVENT_ACTION_TOMBSTONE,
                                  forced_column(type->valuestring, &forced_value), vals, why,
                                  whylen)) {
            status = EVENT_MALFORMED;
        } else {
            mirrored = true;
        }
    }

    /* What can fail for want of memory comes before the first append, so
     * a refused event leaves no partial row behind. */
    char *last = strdup(id->valuestring);
    event_type_count_t *count = last != NULL ? type_count(b, type->valuestring) : NULL;
    if (count == NULL) {
        free(last);
        snprintf(why, whylen, "out of memory");
        goto invalid;
    }
    if (mirrored) {
        const mirror_def_t *m = &mirrors[table];
        pg_array_t *cols = b->mirror[table];
        char seq[24];
        snprintf(seq, sizeof(seq), "%zu", b->n_events);
        pg_array_add_str(&cols[0], seq);
        pg_array_add_str(&cols[1], id->valuestring);
        pg_array_add_str(&cols[2], action == EVENT_ACTION_TOMBSTONE ? created->valuestring : NULL);
        const char *forced = forced_column(type->valuestring, &forced_value);
        for (size_t i = 0; i < m->n_columns; i++) {
            pg_array_t *a = &cols[EVENT_MIRROR_EXTRA_ARRAYS + i];
            if (forced != NULL && strcmp(m->columns[i].name, forced) == 0)
                pg_array_add_str(a, forced_value);
            else
                add_value(a, vals[i], m->columns[i].type);
        }
        b->n_rows[table]++;
    }
    pg_array_add_str(&b->log[0], id->valuestring);
    pg_array_add_str(&b->log[1], type->valuestring);
    pg_array_add_str(&b->log[2], created->valuestring);
    if (data != NULL)
        pg_array_add_json(&b->log[3], data);
    else
        pg_array_add_str(&b->log[3], "null");
    pg_array_add_json(&b->log[4], cJSON_GetObjectItemCaseSensitive(envelope, "context"));

    count->n++;
    free(b->last_id);
    b->last_id = last;
    b->last_created_ms = created_ms;
    b->n_events++;
    if (status == EVENT_MALFORMED)
        b->n_malformed++;
    else if (status == EVENT_UNKNOWN)
        b->n_unknown++;
    cJSON_Delete(envelope);
    return status;

invalid:
    cJSON_Delete(envelope);
    return EVENT_INVALID;
}
