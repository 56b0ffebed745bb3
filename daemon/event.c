/*
 * event: decoding and validation of WorkOS events into apply batches.
 *
 * The mirror schema and the known types are declared once, in
 * event_mirror.c; apply.c generates its SQL from the same tables, so a
 * column cannot be written in one place and forgotten in the other.  The
 * secret fields scrubbed from every payload are listed here.  Validation
 * is deliberately as strict as PostgreSQL's input functions and the
 * schema's indexes, and one that does not pass is kept in the log only; an
 * event the server refuses all the same (an operator's constraint, a limit
 * not known here) is found and kept as a poison event by the apply job
 * (store_apply.c).
 * Parsing untrusted JSON and Events API pages is in event_page.c.
 */
#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "event_mirror.h"

/*
 * Ids longer than this are refused: PostgreSQL cannot index a key of a few
 * kilobytes, and one such event would otherwise fail every batch it is in.
 */
#define MAX_ID_LEN 255

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

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
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
    snprintf(buf, len, "%s", v != NULL && cJSON_IsString(v) ? v->valuestring : "-");
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
        if (event_mirror_too_long(def, c, v)) {
            if (tombstone)
                continue;
            snprintf(why, whylen, "data.%s%s%s is too long for its index (over %d bytes)", c->field,
                     c->sub ? "." : "", c->sub ? c->sub : "", EVENT_MIRROR_MAX_INDEXED_LEN);
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
    cJSON *vals[MIRROR_MAX_COLUMNS] = {0};
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
        } else if (!mirror_values(event_mirror(table), data, action == EVENT_ACTION_TOMBSTONE,
                                  event_mirror_forced(type->valuestring, &forced_value), vals, why,
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
        cJSON_Delete(envelope);
        return EVENT_NOMEM;
    }
    if (mirrored) {
        const mirror_def_t *m = event_mirror(table);
        pg_array_t *cols = b->mirror[table];
        char seq[24];
        snprintf(seq, sizeof(seq), "%zu", b->n_events);
        pg_array_add_str(&cols[0], seq);
        pg_array_add_str(&cols[1], id->valuestring);
        pg_array_add_str(&cols[2], action == EVENT_ACTION_TOMBSTONE ? created->valuestring : NULL);
        const char *forced = event_mirror_forced(type->valuestring, &forced_value);
        for (size_t i = 0; i < m->n_columns; i++) {
            pg_array_t *a = &cols[EVENT_MIRROR_EXTRA_ARRAYS + i];
            if (!event_mirror_sent(&m->columns[i]))
                continue; /* the whole object: the log's data */
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
    if (created_ms > b->newest_created_ms && created_ms <= clock_wall_ms() + EVENT_FUTURE_MS)
        b->newest_created_ms = created_ms;
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

bool event_batch_row(const event_batch_t *b, size_t i, event_row_t *row)
{
    if (i >= b->n_events)
        return false;
    for (size_t c = 0; c < EVENT_LOG_ARRAYS; c++) {
        size_t off = pg_array_first();
        size_t k = 0;
        do {
            if (!pg_array_next(&b->log[c], &off, &row->value[c], &row->len[c]))
                return false;
        } while (k++ < i);
    }
    return true;
}

/* The event index a mirror row's seq element holds, or SIZE_MAX when unreadable. */
static size_t seq_of(const char *s, size_t len)
{
    size_t v = 0;
    if (s == NULL || len == 0 || len > 18)
        return SIZE_MAX;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SIZE_MAX;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    return v;
}

/* Copies the rows of `n_cols` parallel arrays whose element in cols[0] is kept. */
static void slice_columns(const pg_array_t *src, pg_array_t *dst, size_t n_cols, size_t lo,
                          size_t hi, bool by_seq, size_t *kept)
{
    size_t off[EVENT_MIRROR_EXTRA_ARRAYS + MIRROR_MAX_COLUMNS];
    const char *s;
    size_t len;

    for (size_t c = 0; c < n_cols; c++)
        off[c] = pg_array_first();
    for (size_t row = 0; pg_array_next(&src[0], &off[0], &s, &len); row++) {
        size_t at = by_seq ? seq_of(s, len) : row;
        bool keep = at >= lo && at < hi;
        if (keep)
            pg_array_add(&dst[0], s, len);
        for (size_t c = 1; c < n_cols; c++) {
            const char *v;
            size_t vlen;
            if (pg_array_next(&src[c], &off[c], &v, &vlen) && keep)
                pg_array_add(&dst[c], v, vlen);
        }
        if (keep)
            (*kept)++;
    }
}

event_batch_t *event_batch_slice(const event_batch_t *b, size_t lo, size_t hi, bool mirror)
{
    event_row_t last;
    if (lo >= hi || hi > b->n_events || !event_batch_row(b, hi - 1, &last))
        return NULL;
    event_batch_t *sub = event_batch_new();
    if (sub == NULL || (sub->last_id = strndup(last.value[0], last.len[0])) == NULL)
        goto fail;
    size_t events = 0;
    slice_columns(b->log, sub->log, EVENT_LOG_ARRAYS, lo, hi, false, &events);
    sub->n_events = events;
    for (int t = 0; mirror && t < MIRROR_COUNT; t++)
        slice_columns(b->mirror[t], sub->mirror[t],
                      EVENT_MIRROR_EXTRA_ARRAYS + event_mirror(t)->n_columns, lo, hi, true,
                      &sub->n_rows[t]);
    return sub;
fail:
    event_batch_free(sub);
    return NULL;
}
