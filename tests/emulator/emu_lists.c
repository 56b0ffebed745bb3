/*
 * The state APIs (see emu_lists.h). Listing order is by object id: WorkOS
 * ids are ULIDs, so that is creation order, and a cursor keeps its place
 * even when the object it names was deleted between two pages.
 */
#include "emu_lists.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    IX_ORGS,        /* organizations */
    IX_USERS,       /* users */
    IX_USERS_EMAIL, /* users by email */
    IX_USERS_ORG,   /* users by the organization of any live membership */
    IX_INV,         /* invitations */
    IX_INV_EMAIL,   /* invitations by email */
    IX_INV_ORG,     /* invitations by organization_id */
    IX_OM_USER,     /* memberships by user_id */
    IX_OM_ORG,      /* memberships by organization_id */
    IX_SESS_USER,   /* sessions by user_id */
    IX_KEYS_ORG,    /* API keys by owning organization */
    IX_COUNT,
} index_id_t;

static const struct {
    emu_table_t table;
    int key; /* emu_key_t, or -1 for every live object */
} ix_def[IX_COUNT] = {
    [IX_ORGS] = {EMU_TBL_ORGANIZATIONS, -1},
    [IX_USERS] = {EMU_TBL_USERS, -1},
    [IX_USERS_EMAIL] = {EMU_TBL_USERS, EMU_KEY_EMAIL},
    [IX_USERS_ORG] = {EMU_TBL_USERS, EMU_KEY_ORG},
    [IX_INV] = {EMU_TBL_INVITATIONS, -1},
    [IX_INV_EMAIL] = {EMU_TBL_INVITATIONS, EMU_KEY_EMAIL},
    [IX_INV_ORG] = {EMU_TBL_INVITATIONS, EMU_KEY_ORG},
    [IX_OM_USER] = {EMU_TBL_MEMBERSHIPS, EMU_KEY_USER},
    [IX_OM_ORG] = {EMU_TBL_MEMBERSHIPS, EMU_KEY_ORG},
    [IX_SESS_USER] = {EMU_TBL_SESSIONS, EMU_KEY_USER},
    [IX_KEYS_ORG] = {EMU_TBL_API_KEYS, EMU_KEY_ORG},
};

typedef struct {
    const char *key; /* "" for unkeyed indexes */
    const char *id;
    uint32_t obj; /* index into the state table */
} ixent_t;

typedef struct {
    ixent_t *e;
    size_t n, cap;
    uint64_t version; /* state version it was built at */
    bool built;
} index_t;

struct emu_lists {
    emu_state_t *st;
    index_t ix[IX_COUNT];
};

static const char *const ep_names[EMU_EP_COUNT] = {
    [EMU_EP_EVENTS] = "events",
    [EMU_EP_ORGANIZATIONS] = "organizations",
    [EMU_EP_USERS] = "users",
    [EMU_EP_INVITATIONS] = "invitations",
    [EMU_EP_MEMBERSHIPS] = "organization_memberships",
    [EMU_EP_SESSIONS] = "sessions",
    [EMU_EP_API_KEYS] = "api_keys",
};

const char *emu_endpoint_name(emu_endpoint_t ep)
{
    return ep < EMU_EP_COUNT ? ep_names[ep] : "-";
}

/* Matches "<prefix><id><suffix>" with a non-empty id free of '/'. */
static bool match_scoped(const char *path, const char *prefix, const char *suffix, char **id)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);
    if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0)
        return false;
    const char *s = path + pl;
    size_t idlen = n - pl - sl;
    if (memchr(s, '/', idlen))
        return false;
    *id = emu_xstrndup(s, idlen);
    return true;
}

emu_endpoint_t emu_lists_route(const char *path, char **scope_id)
{
    *scope_id = NULL;
    if (strcmp(path, "/events") == 0)
        return EMU_EP_EVENTS;
    if (strcmp(path, "/organizations") == 0)
        return EMU_EP_ORGANIZATIONS;
    if (strcmp(path, "/user_management/users") == 0)
        return EMU_EP_USERS;
    if (strcmp(path, "/user_management/invitations") == 0)
        return EMU_EP_INVITATIONS;
    if (strcmp(path, "/user_management/organization_memberships") == 0)
        return EMU_EP_MEMBERSHIPS;
    if (match_scoped(path, "/user_management/users/", "/sessions", scope_id))
        return EMU_EP_SESSIONS;
    if (match_scoped(path, "/organizations/", "/api_keys", scope_id))
        return EMU_EP_API_KEYS;
    return EMU_EP_NONE;
}

bool emu_lists_is_user_management(const char *path)
{
    return strncmp(path, "/user_management/", 17) == 0;
}

emu_lists_t *emu_lists_new(emu_state_t *st)
{
    emu_lists_t *l = emu_xcalloc(1, sizeof(*l));
    l->st = st;
    return l;
}

void emu_lists_free(emu_lists_t *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < IX_COUNT; i++)
        free(l->ix[i].e);
    free(l);
}

static void ix_push(index_t *ix, const char *key, const char *id, uint32_t obj)
{
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? ix->cap * 2 : 1024;
        ix->e = emu_xrealloc(ix->e, ix->cap * sizeof(ixent_t));
    }
    ix->e[ix->n].key = key;
    ix->e[ix->n].id = id;
    ix->e[ix->n].obj = obj;
    ix->n++;
}

static int ent_cmp(const void *a, const void *b)
{
    const ixent_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->id, y->id);
}

/* Users by organization: one entry per (organization, user) pair of the
 * live memberships whose user is alive. */
static void build_users_by_org(emu_lists_t *l, index_t *ix)
{
    size_t n = emu_state_count(l->st, EMU_TBL_MEMBERSHIPS);
    for (size_t i = 0; i < n; i++) {
        emu_obj_t *m = emu_state_at(l->st, EMU_TBL_MEMBERSHIPS, i);
        if (m->deleted)
            continue;
        emu_state_keys(EMU_TBL_MEMBERSHIPS, m);
        if (!m->keys[EMU_KEY_ORG] || !m->keys[EMU_KEY_USER])
            continue;
        emu_obj_t *u = emu_state_find(l->st, EMU_TBL_USERS, m->keys[EMU_KEY_USER]);
        if (u == NULL || u->deleted)
            continue;
        /* The position of u in its table, for later rendering. */
        uint32_t pos = (uint32_t)(u - emu_state_at(l->st, EMU_TBL_USERS, 0));
        ix_push(ix, m->keys[EMU_KEY_ORG], u->id, pos);
    }
    qsort(ix->e, ix->n, sizeof(ixent_t), ent_cmp);
    size_t w = 0;
    for (size_t r = 0; r < ix->n; r++)
        if (w == 0 || ent_cmp(&ix->e[w - 1], &ix->e[r]) != 0)
            ix->e[w++] = ix->e[r];
    ix->n = w;
}

static index_t *ix_get(emu_lists_t *l, index_id_t id)
{
    index_t *ix = &l->ix[id];
    uint64_t v = emu_state_version(l->st);
    if (ix->built && ix->version == v)
        return ix;
    ix->n = 0;
    if (id == IX_USERS_ORG) {
        build_users_by_org(l, ix);
    } else {
        emu_table_t t = ix_def[id].table;
        int k = ix_def[id].key;
        size_t n = emu_state_count(l->st, t);
        for (size_t i = 0; i < n; i++) {
            emu_obj_t *o = emu_state_at(l->st, t, i);
            if (o->deleted)
                continue;
            const char *key = "";
            if (k >= 0) {
                emu_state_keys(t, o);
                key = o->keys[k];
                if (key == NULL)
                    continue;
            }
            ix_push(ix, key, o->id, (uint32_t)i);
        }
        qsort(ix->e, ix->n, sizeof(ixent_t), ent_cmp);
    }
    ix->built = true;
    ix->version = v;
    return ix;
}

size_t emu_lists_live(emu_lists_t *l, emu_table_t t)
{
    size_t n = 0, total = emu_state_count(l->st, t);
    for (size_t i = 0; i < total; i++)
        n += !emu_state_at(l->st, t, i)->deleted;
    return n;
}

/* First entry in [lo, hi) whose key is >= key (or > key when upper). */
static size_t bound_key(const index_t *ix, size_t lo, size_t hi, const char *key, bool upper)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ix->e[mid].key, key);
        if (c < 0 || (upper && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First entry in [lo, hi) whose id is >= id (or > id when upper). */
static size_t bound_id(const index_t *ix, size_t lo, size_t hi, const char *id, bool upper)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ix->e[mid].id, id);
        if (c < 0 || (upper && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* What a listing filters on besides its index key. */
typedef struct {
    emu_table_t table;
    const char *email;    /* users, invitations */
    const char *org;      /* users, invitations, memberships (with user_id) */
    bool statuses[3];     /* memberships: active, inactive, pending */
    bool active_only;     /* sessions */
    bool filter_statuses; /* memberships */
} filter_t;

static const char *const om_statuses[3] = {"active", "inactive", "pending"};

static bool matches(emu_lists_t *l, const filter_t *f, const ixent_t *e)
{
    emu_obj_t *o = emu_state_at(l->st, f->table, e->obj);
    emu_state_keys(f->table, o);
    if (f->email && (!o->keys[EMU_KEY_EMAIL] || strcmp(o->keys[EMU_KEY_EMAIL], f->email) != 0))
        return false;
    if (f->org && f->table != EMU_TBL_USERS &&
        (!o->keys[EMU_KEY_ORG] || strcmp(o->keys[EMU_KEY_ORG], f->org) != 0))
        return false;
    const char *status = o->keys[EMU_KEY_STATUS];
    if (f->active_only && (!status || strcmp(status, "active") != 0))
        return false;
    if (f->filter_statuses) {
        bool ok = false;
        for (int i = 0; i < 3; i++)
            ok = ok || (f->statuses[i] && status && strcmp(status, om_statuses[i]) == 0);
        if (!ok)
            return false;
    }
    return true;
}

/* The next matching entry from i on in direction step inside [lo, hi), or
 * -1. */
static int64_t next_match(emu_lists_t *l, const index_t *ix, const filter_t *f, int64_t i, int step,
                          size_t lo, size_t hi)
{
    for (; i >= (int64_t)lo && i < (int64_t)hi; i += step)
        if (matches(l, f, &ix->e[i]))
            return i;
    return -1;
}

static void put_field_if_missing(cJSON *o, const char *name, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(o, name))
        cJSON_Delete(v);
    else
        cJSON_AddItemToObject(o, name, v);
}

/* Appends the list form of object o of table t. */
static void render(emu_table_t t, const emu_obj_t *o, emu_buf_t *body)
{
    cJSON *d = cJSON_Parse(o->payload);
    if (d == NULL) {
        emu_buf_adds(body, o->payload);
        return;
    }
    switch (t) {
    case EMU_TBL_USERS:
        put_field_if_missing(d, "name", cJSON_CreateNull());
        put_field_if_missing(d, "metadata", cJSON_CreateObject());
        break;
    case EMU_TBL_MEMBERSHIPS: {
        if (!cJSON_GetObjectItemCaseSensitive(d, "roles")) {
            cJSON *roles = cJSON_CreateArray();
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(d, "role");
            if (cJSON_IsObject(role))
                cJSON_AddItemToArray(roles, cJSON_Duplicate(role, true));
            cJSON_AddItemToObject(d, "roles", roles);
        }
        put_field_if_missing(d, "external_id", cJSON_CreateNull());
        put_field_if_missing(d, "metadata", cJSON_CreateObject());
        break;
    }
    case EMU_TBL_INVITATIONS:
        if (!cJSON_GetObjectItemCaseSensitive(d, "token")) {
            char token[33];
            uint64_t h = emu_hash(o->id, strlen(o->id));
            snprintf(token, sizeof(token), "%016llx%016llx", (unsigned long long)h,
                     (unsigned long long)~h);
            cJSON_AddStringToObject(d, "token", token);
        }
        if (!cJSON_GetObjectItemCaseSensitive(d, "accept_invitation_url")) {
            const cJSON *tok = cJSON_GetObjectItemCaseSensitive(d, "token");
            emu_buf_t url = {0};
            emu_buf_adds(&url, "http://localhost:4100/user_management/invitations/accept?token=");
            emu_buf_adds(&url, cJSON_IsString(tok) ? tok->valuestring : "");
            cJSON_AddStringToObject(d, "accept_invitation_url", url.data);
            emu_buf_free(&url);
        }
        break;
    case EMU_TBL_API_KEYS:
        cJSON_DeleteItemFromObjectCaseSensitive(d, "value");
        put_field_if_missing(d, "expires_at", cJSON_CreateNull());
        break;
    case EMU_TBL_ORGANIZATIONS:
    case EMU_TBL_SESSIONS:
    case EMU_TBL_COUNT:
        break;
    }
    char *s = cJSON_PrintUnformatted(d);
    emu_buf_adds(body, s ? s : "null");
    cJSON_free(s);
    cJSON_Delete(d);
}

static void not_found(emu_buf_t *body, const char *what, const char *id)
{
    emu_buf_adds(body, "{\"message\":");
    emu_buf_t m = {0};
    emu_buf_printf(&m, "%s not found: '%s'", what, id);
    emu_buf_json_str(body, m.data);
    emu_buf_free(&m);
    emu_buf_adds(body, ",\"code\":\"entity_not_found\"}");
}

/* Reads `statuses` (comma list, may repeat) and `statuses[]` (repeated). */
static bool parse_statuses(const emu_params_t *ps, filter_t *f)
{
    for (size_t i = 0; i < ps->n; i++) {
        bool comma = strcmp(ps->p[i].key, "statuses") == 0;
        if (!comma && strcmp(ps->p[i].key, "statuses[]") != 0)
            continue;
        const char *v = ps->p[i].val;
        while (v) {
            const char *c = comma ? strchr(v, ',') : NULL;
            size_t len = c ? (size_t)(c - v) : strlen(v);
            if (len > 0) {
                bool known = false;
                for (int k = 0; k < 3; k++) {
                    if (strlen(om_statuses[k]) == len && strncmp(v, om_statuses[k], len) == 0) {
                        f->statuses[k] = true;
                        known = true;
                    }
                }
                if (!known)
                    return false;
                f->filter_statuses = true;
            }
            v = c ? c + 1 : NULL;
        }
    }
    if (!f->filter_statuses) {
        f->filter_statuses = true;
        f->statuses[0] = true;
    }
    return true;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

int emu_lists_answer(emu_lists_t *l, emu_endpoint_t ep, const char *scope_id,
                     const emu_params_t *ps, bool reverse, emu_buf_t *body, size_t *returned)
{
    filter_t f = {0};
    index_id_t ixid;
    const char *key = NULL; /* index key to restrict to */
    *returned = 0;

    const char *limit_s = emu_params_get(ps, "limit");
    uint64_t limit = 10;
    if (limit_s && (!emu_parse_u64(limit_s, 1000000, &limit) || limit < 1 || limit > 100)) {
        emu_validation_body(body, "limit", "limit must be an integer between 1 and 100");
        return 422;
    }
    const char *order = emu_params_get(ps, "order");
    bool asc = false;
    if (order && strcmp(order, "asc") == 0)
        asc = true;
    else if (order && strcmp(order, "desc") != 0) {
        emu_validation_body(body, "order", "order must be one of asc, desc");
        return 422;
    }
    const char *after = nonempty(emu_params_get(ps, "after"));
    const char *before = nonempty(emu_params_get(ps, "before"));
    const char *email = nonempty(emu_params_get(ps, "email"));
    const char *org = nonempty(emu_params_get(ps, "organization_id"));
    const char *user = nonempty(emu_params_get(ps, "user_id"));

    switch (ep) {
    case EMU_EP_ORGANIZATIONS:
        f.table = EMU_TBL_ORGANIZATIONS;
        ixid = IX_ORGS;
        break;
    case EMU_EP_USERS:
        f.table = EMU_TBL_USERS;
        if (org) {
            ixid = IX_USERS_ORG;
            key = org;
            f.email = email;
        } else if (email) {
            ixid = IX_USERS_EMAIL;
            key = email;
        } else {
            ixid = IX_USERS;
        }
        break;
    case EMU_EP_INVITATIONS:
        f.table = EMU_TBL_INVITATIONS;
        if (org) {
            ixid = IX_INV_ORG;
            key = org;
            f.email = email;
        } else if (email) {
            ixid = IX_INV_EMAIL;
            key = email;
        } else {
            ixid = IX_INV;
        }
        break;
    case EMU_EP_MEMBERSHIPS:
        f.table = EMU_TBL_MEMBERSHIPS;
        if (!user && !org) {
            emu_validation_body(body, "organization_id",
                                "either organization_id or user_id is required");
            return 422;
        }
        if (!parse_statuses(ps, &f)) {
            emu_validation_body(body, "statuses",
                                "statuses must be any of active, inactive, pending");
            return 422;
        }
        if (user) {
            ixid = IX_OM_USER;
            key = user;
            f.org = org;
        } else {
            ixid = IX_OM_ORG;
            key = org;
        }
        break;
    case EMU_EP_SESSIONS: {
        emu_obj_t *u = emu_state_find(l->st, EMU_TBL_USERS, scope_id);
        if (u == NULL || u->deleted) {
            not_found(body, "User", scope_id);
            return 404;
        }
        f.table = EMU_TBL_SESSIONS;
        f.active_only = true;
        ixid = IX_SESS_USER;
        key = scope_id;
        break;
    }
    case EMU_EP_API_KEYS: {
        emu_obj_t *o = emu_state_find(l->st, EMU_TBL_ORGANIZATIONS, scope_id);
        if (o == NULL || o->deleted) {
            not_found(body, "Organization", scope_id);
            return 404;
        }
        f.table = EMU_TBL_API_KEYS;
        ixid = IX_KEYS_ORG;
        key = scope_id;
        break;
    }
    case EMU_EP_EVENTS:
    case EMU_EP_NONE:
    default:
        emu_buf_adds(body, "{\"message\":\"Not Found\"}");
        return 404;
    }

    const index_t *ix = ix_get(l, ixid);
    size_t lo = 0, hi = ix->n;
    if (key) {
        lo = bound_key(ix, 0, ix->n, key, false);
        hi = bound_key(ix, lo, ix->n, key, true);
    }
    int step = asc ? 1 : -1;
    int64_t page[100];
    size_t n = 0;
    bool has_prev, has_more;
    /* The part of [lo, hi) the cursors leave, in index order [wlo, whi). */
    size_t wlo = lo, whi = hi;
    if (after) {
        if (asc)
            wlo = bound_id(ix, lo, hi, after, true);
        else
            whi = bound_id(ix, lo, hi, after, false);
    }
    if (before) {
        if (asc)
            whi = bound_id(ix, lo, hi, before, false);
        else
            wlo = bound_id(ix, lo, hi, before, true);
    }
    if (wlo > whi)
        wlo = whi;
    if (before && !after) {
        /* The `limit` objects just before the cursor in listing order. */
        int64_t i = asc ? (int64_t)whi - 1 : (int64_t)wlo;
        while (n < limit && (i = next_match(l, ix, &f, i, -step, wlo, whi)) >= 0) {
            page[n++] = i;
            i -= step;
        }
        has_prev = n > 0 && next_match(l, ix, &f, i, -step, wlo, whi) >= 0;
        int64_t from = asc ? (int64_t)whi : (int64_t)wlo - 1;
        has_more = n > 0 && next_match(l, ix, &f, from, step, lo, hi) >= 0;
        for (size_t k = 0; k < n / 2; k++) {
            int64_t t = page[k];
            page[k] = page[n - 1 - k];
            page[n - 1 - k] = t;
        }
    } else {
        int64_t start = asc ? (int64_t)wlo : (int64_t)whi - 1;
        int64_t i = start;
        while (n < limit && (i = next_match(l, ix, &f, i, step, wlo, whi)) >= 0) {
            page[n++] = i;
            i += step;
        }
        has_more = n > 0 && next_match(l, ix, &f, i, step, wlo, whi) >= 0;
        has_prev = n > 0 && next_match(l, ix, &f, start - step, -step, lo, hi) >= 0;
    }

    emu_buf_adds(body, "{\"object\":\"list\",\"data\":[");
    for (size_t k = 0; k < n; k++) {
        size_t at = reverse ? n - 1 - k : k;
        if (k)
            emu_buf_adds(body, ",");
        render(f.table, emu_state_at(l->st, f.table, ix->e[page[at]].obj), body);
    }
    emu_buf_adds(body, "],\"list_metadata\":{\"before\":");
    if (has_prev)
        emu_buf_json_str(body, ix->e[page[0]].id);
    else
        emu_buf_adds(body, "null");
    emu_buf_adds(body, ",\"after\":");
    if (has_more)
        emu_buf_json_str(body, ix->e[page[n - 1]].id);
    else
        emu_buf_adds(body, "null");
    emu_buf_adds(body, "}}");
    *returned = n;
    return 200;
}
