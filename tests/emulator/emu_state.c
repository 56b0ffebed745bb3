/*
 * Object state from events (see emu_state.h): one growable array of objects
 * per table plus an open-addressing id index, and the winner rule in one
 * place, emu_state_apply.
 */
#include "emu_state.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    emu_obj_t *obj;
    size_t n, cap;
    uint32_t *slots; /* object index + 1; 0 = empty */
    uint32_t *hashes;
    size_t nslots; /* power of two */
} table_state_t;

struct emu_state {
    table_state_t t[EMU_TBL_COUNT];
    uint64_t version;
};

static const char *const table_names[EMU_TBL_COUNT] = {
    [EMU_TBL_ORGANIZATIONS] = "organizations",
    [EMU_TBL_USERS] = "users",
    [EMU_TBL_MEMBERSHIPS] = "organization_memberships",
    [EMU_TBL_INVITATIONS] = "invitations",
    [EMU_TBL_SESSIONS] = "sessions",
    [EMU_TBL_API_KEYS] = "api_keys",
};

emu_state_t *emu_state_new(void)
{
    return emu_xcalloc(1, sizeof(emu_state_t));
}

static void keys_clear(emu_obj_t *o)
{
    for (int k = 0; k < EMU_KEY_COUNT; k++) {
        free(o->keys[k]);
        o->keys[k] = NULL;
    }
    o->keys_ok = false;
}

void emu_state_free(emu_state_t *st)
{
    if (st == NULL)
        return;
    for (int t = 0; t < EMU_TBL_COUNT; t++) {
        table_state_t *ts = &st->t[t];
        for (size_t i = 0; i < ts->n; i++) {
            free(ts->obj[i].id);
            free(ts->obj[i].payload);
            keys_clear(&ts->obj[i]);
        }
        free(ts->obj);
        free(ts->slots);
        free(ts->hashes);
    }
    free(st);
}

const char *emu_table_name(emu_table_t t)
{
    return t < EMU_TBL_COUNT ? table_names[t] : "?";
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

bool emu_state_classify(const char *type, emu_table_t *t, bool *removes)
{
    static const struct {
        const char *prefix;
        emu_table_t table;
        const char *removing;
    } map[] = {
        {"organization.", EMU_TBL_ORGANIZATIONS, "organization.deleted"},
        {"user.", EMU_TBL_USERS, "user.deleted"},
        {"organization_membership.", EMU_TBL_MEMBERSHIPS, "organization_membership.deleted"},
        {"invitation.", EMU_TBL_INVITATIONS, NULL},
        {"session.", EMU_TBL_SESSIONS, NULL},
        {"api_key.", EMU_TBL_API_KEYS, "api_key.revoked"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (has_prefix(type, map[i].prefix)) {
            *t = map[i].table;
            *removes = map[i].removing && strcmp(type, map[i].removing) == 0;
            return true;
        }
    }
    return false;
}

static uint32_t hash32(const char *s)
{
    uint64_t h = emu_hash(s, strlen(s));
    return (uint32_t)(h ^ (h >> 32));
}

static void slot_put(table_state_t *ts, uint32_t h, uint32_t idx1)
{
    size_t mask = ts->nslots - 1;
    size_t i = h & mask;
    while (ts->slots[i])
        i = (i + 1) & mask;
    ts->slots[i] = idx1;
    ts->hashes[i] = h;
}

static emu_obj_t *lookup(const table_state_t *ts, const char *id, uint32_t h)
{
    if (ts->nslots == 0)
        return NULL;
    size_t mask = ts->nslots - 1;
    for (size_t i = h & mask; ts->slots[i]; i = (i + 1) & mask) {
        emu_obj_t *o = &ts->obj[ts->slots[i] - 1];
        if (ts->hashes[i] == h && strcmp(o->id, id) == 0)
            return o;
    }
    return NULL;
}

static emu_obj_t *insert(table_state_t *ts, const char *id, uint32_t h)
{
    if ((ts->n + 1) * 2 > ts->nslots) {
        size_t old = ts->nslots;
        uint32_t *os = ts->slots, *oh = ts->hashes;
        ts->nslots = old ? old * 2 : 1024;
        ts->slots = emu_xcalloc(ts->nslots, sizeof(uint32_t));
        ts->hashes = emu_xcalloc(ts->nslots, sizeof(uint32_t));
        for (size_t i = 0; i < old; i++)
            if (os[i])
                slot_put(ts, oh[i], os[i]);
        free(os);
        free(oh);
    }
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 256;
        ts->obj = emu_xrealloc(ts->obj, ts->cap * sizeof(emu_obj_t));
    }
    emu_obj_t *o = &ts->obj[ts->n++];
    memset(o, 0, sizeof(*o));
    o->id = emu_xstrdup(id);
    o->win_ms = INT64_MIN;
    slot_put(ts, h, (uint32_t)ts->n);
    return o;
}

void emu_state_apply(emu_state_t *st, emu_table_t t, const char *id, bool has_updated,
                     int64_t updated_ms, const char *payload, size_t len, bool removes)
{
    table_state_t *ts = &st->t[t];
    uint32_t h = hash32(id);
    emu_obj_t *o = lookup(ts, id, h);
    if (o == NULL)
        o = insert(ts, id, h);
    if (o->deleted)
        return;
    if (o->payload == NULL || (has_updated && updated_ms >= o->win_ms)) {
        free(o->payload);
        o->payload = emu_xstrndup(payload, len);
        o->win_ms = has_updated ? updated_ms : INT64_MIN;
        keys_clear(o);
    }
    if (removes)
        o->deleted = true;
    st->version++;
}

void emu_state_apply_event(emu_state_t *st, const char *raw, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(raw, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "event");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(data, "id");
    const cJSON *upd = cJSON_GetObjectItemCaseSensitive(data, "updated_at");
    emu_table_t t;
    bool removes;
    if (cJSON_IsString(type) && cJSON_IsObject(data) && cJSON_IsString(id) && id->valuestring[0] &&
        emu_state_classify(type->valuestring, &t, &removes)) {
        int64_t ms = 0;
        bool has =
            cJSON_IsString(upd) && emu_time_parse(upd->valuestring, strlen(upd->valuestring), &ms);
        char *text = cJSON_PrintUnformatted(data);
        if (text)
            emu_state_apply(st, t, id->valuestring, has, ms, text, strlen(text), removes);
        cJSON_free(text);
    }
    cJSON_Delete(root);
}

size_t emu_state_count(const emu_state_t *st, emu_table_t t)
{
    return st->t[t].n;
}

emu_obj_t *emu_state_at(const emu_state_t *st, emu_table_t t, size_t i)
{
    return &st->t[t].obj[i];
}

emu_obj_t *emu_state_find(const emu_state_t *st, emu_table_t t, const char *id)
{
    return lookup(&st->t[t], id, hash32(id));
}

static char *str_field(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? emu_xstrdup(v->valuestring) : NULL;
}

void emu_state_keys(emu_table_t t, emu_obj_t *o)
{
    if (o->keys_ok)
        return;
    keys_clear(o);
    cJSON *d = cJSON_Parse(o->payload);
    o->keys[EMU_KEY_USER] = str_field(d, "user_id");
    o->keys[EMU_KEY_EMAIL] = str_field(d, "email");
    o->keys[EMU_KEY_STATUS] = str_field(d, "status");
    if (t == EMU_TBL_API_KEYS) {
        const cJSON *owner = cJSON_GetObjectItemCaseSensitive(d, "owner");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(owner, "type");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "organization") == 0)
            o->keys[EMU_KEY_ORG] = str_field(owner, "id");
    } else {
        o->keys[EMU_KEY_ORG] = str_field(d, "organization_id");
    }
    cJSON_Delete(d);
    o->keys_ok = true;
}

uint64_t emu_state_version(const emu_state_t *st)
{
    return st->version;
}
