/*
 * Event stream storage for the emulator. Events are appended in batches that
 * are validated completely before the first one is committed, so a bad line
 * in a file or a POSTed body leaves the stream untouched. Raw bytes live in
 * blocks owned by the store (the file buffer itself, or copies of appended
 * bodies) and are never re-serialised.
 */
#include "emu_store.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Guards that keep positions and lengths inside uint32_t. */
#define MAX_EVENTS 50000000u
#define MAX_LINE (16u << 20)
#define MAX_TYPES 4096u
#define ARENA_CHUNK (1u << 20)

typedef struct {
    const char *raw;
    const char *id;
    int64_t created_ms;
    uint32_t raw_len;
    uint32_t type;
} event_t;

typedef struct {
    const char *name;
    uint32_t *pos; /* stream positions of this type, ascending */
    size_t n, cap;
} type_t;

/* Open-addressing table of indexes (stored + 1, 0 = empty) keyed by string. */
typedef struct {
    uint32_t idx1;
    uint32_t hash;
} slot_t;

typedef struct {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t used;
} strmap_t;

struct emu_store {
    event_t *ev;
    size_t n, cap;
    type_t *types;
    size_t ntypes, captypes;
    strmap_t ids;
    strmap_t typemap;
    bool monotone; /* created_at never decreases along the stream */
    char **blocks;
    size_t nblocks, capblocks;
    char *arena;
    size_t arena_left;
};

typedef const char *(*keyof_fn)(const emu_store_t *st, uint32_t idx);

static const char *id_of(const emu_store_t *st, uint32_t idx)
{
    return st->ev[idx].id;
}

static const char *typename_of(const emu_store_t *st, uint32_t idx)
{
    return st->types[idx].name;
}

static uint32_t strmap_get(const emu_store_t *st, const strmap_t *m, uint32_t h, const char *key,
                           keyof_fn keyof)
{
    if (m->cap == 0)
        return 0;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const slot_t *s = &m->slots[i];
        if (s->idx1 == 0)
            return 0;
        if (s->hash == h && strcmp(keyof(st, s->idx1 - 1), key) == 0)
            return s->idx1;
    }
}

static void strmap_insert_slot(strmap_t *m, uint32_t h, uint32_t idx1)
{
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].idx1 != 0)
        i = (i + 1) & mask;
    m->slots[i].idx1 = idx1;
    m->slots[i].hash = h;
}

/* Adds idx under hash h; the caller has checked that the key is absent. */
static void strmap_put(strmap_t *m, uint32_t h, uint32_t idx)
{
    if ((m->used + 1) * 2 > m->cap) {
        strmap_t old = *m;
        m->cap = old.cap ? old.cap * 2 : 1024;
        m->slots = emu_xcalloc(m->cap, sizeof(slot_t));
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].idx1)
                strmap_insert_slot(m, old.slots[i].hash, old.slots[i].idx1);
        free(old.slots);
    }
    strmap_insert_slot(m, h, idx + 1);
    m->used++;
}

static uint32_t hash32(const char *s)
{
    uint64_t h = emu_hash(s, strlen(s));
    return (uint32_t)(h ^ (h >> 32));
}

static void keep_block(emu_store_t *st, char *block)
{
    if (st->nblocks == st->capblocks) {
        st->capblocks = st->capblocks ? st->capblocks * 2 : 16;
        st->blocks = emu_xrealloc(st->blocks, st->capblocks * sizeof(char *));
    }
    st->blocks[st->nblocks++] = block;
}

static char *arena_strdup(emu_store_t *st, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n > st->arena_left) {
        size_t sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        st->arena = emu_xmalloc(sz);
        st->arena_left = sz;
        keep_block(st, st->arena);
    }
    char *p = st->arena;
    memcpy(p, s, n);
    st->arena += n;
    st->arena_left -= n;
    return p;
}

emu_store_t *emu_store_new(void)
{
    emu_store_t *st = emu_xcalloc(1, sizeof(*st));
    st->monotone = true;
    return st;
}

void emu_store_free(emu_store_t *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->ntypes; i++)
        free(st->types[i].pos);
    free(st->types);
    free(st->ev);
    free(st->ids.slots);
    free(st->typemap.slots);
    for (size_t i = 0; i < st->nblocks; i++)
        free(st->blocks[i]);
    free(st->blocks);
    free(st);
}

static uint32_t intern_type(emu_store_t *st, const char *name, bool *ok)
{
    uint32_t h = hash32(name);
    uint32_t idx1 = strmap_get(st, &st->typemap, h, name, typename_of);
    *ok = true;
    if (idx1)
        return idx1 - 1;
    if (st->ntypes >= MAX_TYPES) {
        *ok = false;
        return 0;
    }
    if (st->ntypes == st->captypes) {
        st->captypes = st->captypes ? st->captypes * 2 : 64;
        st->types = emu_xrealloc(st->types, st->captypes * sizeof(type_t));
    }
    type_t *t = &st->types[st->ntypes];
    memset(t, 0, sizeof(*t));
    t->name = arena_strdup(st, name);
    strmap_put(&st->typemap, h, (uint32_t)st->ntypes);
    return (uint32_t)st->ntypes++;
}

/* Extracts the indexed fields of one line. Strings are copied into the arena,
 * so a failed batch only wastes arena space. */
EMU_WUR static bool parse_line(emu_store_t *st, const char *line, size_t len, event_t *out,
                               char *err, size_t errlen)
{
    cJSON *root = cJSON_ParseWithLength(line, len);
    bool ok = false;
    if (root == NULL || !cJSON_IsObject(root)) {
        snprintf(err, errlen, "not a JSON object");
        goto done;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "event");
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(root, "created_at");
    if (!cJSON_IsString(id) || id->valuestring[0] == '\0') {
        snprintf(err, errlen, "missing string \"id\"");
        goto done;
    }
    if (!cJSON_IsString(ev) || ev->valuestring[0] == '\0') {
        snprintf(err, errlen, "missing string \"event\"");
        goto done;
    }
    if (!cJSON_IsString(ca) ||
        !emu_time_parse(ca->valuestring, strlen(ca->valuestring), &out->created_ms)) {
        snprintf(err, errlen, "missing or invalid \"created_at\"");
        goto done;
    }
    bool type_ok;
    out->type = intern_type(st, ev->valuestring, &type_ok);
    if (!type_ok) {
        snprintf(err, errlen, "more than %u distinct event types", MAX_TYPES);
        goto done;
    }
    out->id = arena_strdup(st, id->valuestring);
    out->raw = line;
    out->raw_len = (uint32_t)len;
    ok = true;
done:
    cJSON_Delete(root);
    return ok;
}

static int cmp_event_id(const void *a, const void *b)
{
    const event_t *x = *(const event_t *const *)a, *y = *(const event_t *const *)b;
    return strcmp(x->id, y->id);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Validates every line of buf, then commits them all. buf must outlive the
 * store: the caller hands it over with keep_block only on success. */
EMU_WUR static bool append_lines(emu_store_t *st, const char *buf, size_t len, size_t *appended,
                                 char *err, size_t errlen)
{
    event_t *batch = NULL;
    const event_t **sorted = NULL;
    size_t nb = 0, capb = 0, lineno = 0;
    bool ok = false;
    char why[256];

    for (size_t i = 0; i < len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t s = i, e = end;
        lineno++;
        i = end + 1;
        while (s < e && is_space(buf[s]))
            s++;
        while (e > s && is_space(buf[e - 1]))
            e--;
        if (s == e)
            continue;
        if (e - s > MAX_LINE) {
            snprintf(err, errlen, "line %zu: longer than %u bytes", lineno, MAX_LINE);
            goto done;
        }
        if (st->n + nb >= MAX_EVENTS) {
            snprintf(err, errlen, "line %zu: more than %u events", lineno, MAX_EVENTS);
            goto done;
        }
        if (nb == capb) {
            capb = capb ? capb * 2 : 1024;
            batch = emu_xrealloc(batch, capb * sizeof(event_t));
        }
        if (!parse_line(st, buf + s, e - s, &batch[nb], why, sizeof(why))) {
            snprintf(err, errlen, "line %zu: %s", lineno, why);
            goto done;
        }
        if (strmap_get(st, &st->ids, hash32(batch[nb].id), batch[nb].id, id_of)) {
            snprintf(err, errlen, "line %zu: duplicate event id %s", lineno, batch[nb].id);
            goto done;
        }
        nb++;
    }

    sorted = emu_xmalloc((nb ? nb : 1) * sizeof(*sorted));
    for (size_t k = 0; k < nb; k++)
        sorted[k] = &batch[k];
    qsort(sorted, nb, sizeof(*sorted), cmp_event_id);
    for (size_t k = 1; k < nb; k++) {
        if (strcmp(sorted[k - 1]->id, sorted[k]->id) == 0) {
            snprintf(err, errlen, "duplicate event id %s", sorted[k]->id);
            goto done;
        }
    }

    if (st->n + nb > st->cap) {
        while (st->n + nb > st->cap)
            st->cap = st->cap ? st->cap * 2 : 4096;
        st->ev = emu_xrealloc(st->ev, st->cap * sizeof(event_t));
    }
    for (size_t k = 0; k < nb; k++) {
        uint32_t pos = (uint32_t)st->n;
        if (st->n > 0 && batch[k].created_ms < st->ev[st->n - 1].created_ms)
            st->monotone = false;
        st->ev[st->n++] = batch[k];
        strmap_put(&st->ids, hash32(batch[k].id), pos);
        type_t *t = &st->types[batch[k].type];
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 256;
            t->pos = emu_xrealloc(t->pos, t->cap * sizeof(uint32_t));
        }
        t->pos[t->n++] = pos;
    }
    *appended = nb;
    ok = true;
done:
    free(sorted);
    free(batch);
    return ok;
}

bool emu_store_load_file(emu_store_t *st, const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len, n;
    char why[512];
    if (!emu_read_file(path, &buf, &len, err, errlen))
        return false;
    if (!append_lines(st, buf, len, &n, why, sizeof(why))) {
        snprintf(err, errlen, "%s: %s", path, why);
        free(buf);
        return false;
    }
    keep_block(st, buf);
    return true;
}

bool emu_store_append(emu_store_t *st, const char *data, size_t len, size_t *appended, char *err,
                      size_t errlen)
{
    char *copy = emu_xstrndup(data, len);
    if (!append_lines(st, copy, len, appended, err, errlen)) {
        free(copy);
        return false;
    }
    if (*appended == 0)
        free(copy);
    else
        keep_block(st, copy);
    return true;
}

size_t emu_store_count(const emu_store_t *st)
{
    return st->n;
}

bool emu_store_find_id(const emu_store_t *st, const char *id, uint32_t *pos)
{
    uint32_t idx1 = strmap_get(st, &st->ids, hash32(id), id, id_of);
    if (idx1 == 0)
        return false;
    *pos = idx1 - 1;
    return true;
}

bool emu_store_find_type(const emu_store_t *st, const char *type, uint32_t *idx)
{
    uint32_t idx1 = strmap_get(st, &st->typemap, hash32(type), type, typename_of);
    if (idx1 == 0)
        return false;
    *idx = idx1 - 1;
    return true;
}

const char *emu_store_raw(const emu_store_t *st, uint32_t pos, size_t *len)
{
    *len = st->ev[pos].raw_len;
    return st->ev[pos].raw;
}

const char *emu_store_id(const emu_store_t *st, uint32_t pos)
{
    return st->ev[pos].id;
}

int64_t emu_store_created(const emu_store_t *st, uint32_t pos)
{
    return st->ev[pos].created_ms;
}

/* First position whose created_at is >= ms (needs a monotone stream). */
static size_t lower_bound_created(const emu_store_t *st, int64_t ms)
{
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->ev[mid].created_ms < ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First position whose created_at is > ms (needs a monotone stream). */
static size_t upper_bound_created(const emu_store_t *st, int64_t ms)
{
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->ev[mid].created_ms <= ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First index in v[0..n) holding a position >= pos. */
static size_t lower_bound_pos(const uint32_t *v, size_t n, uint32_t pos)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t emu_store_first_at_or_after(const emu_store_t *st, int64_t ms)
{
    if (st->monotone)
        return lower_bound_created(st, ms);
    for (size_t i = 0; i < st->n; i++)
        if (st->ev[i].created_ms >= ms)
            return i;
    return st->n;
}

/* Walks candidate positions in listing order: either every position, or a
 * k-way merge of the per-type position lists of the filter. */
typedef struct {
    const emu_store_t *st;
    bool asc;
    bool filtered;
    int64_t cur; /* unfiltered: next position */
    size_t k;
    const type_t *lists[EMU_STORE_MAX_FILTER];
    int64_t heads[EMU_STORE_MAX_FILTER]; /* filtered: next index per list, -1 = done */
} walk_t;

static void walk_init(walk_t *w, const emu_store_t *st, const emu_query_t *q, int64_t start)
{
    w->st = st;
    w->asc = q->asc;
    w->filtered = q->filtered;
    w->cur = start;
    w->k = 0;
    if (!q->filtered)
        return;
    for (size_t i = 0; i < q->ntypes && w->k < EMU_STORE_MAX_FILTER; i++) {
        if (q->types[i] >= st->ntypes)
            continue;
        const type_t *t = &st->types[q->types[i]];
        bool dup = false;
        for (size_t j = 0; j < w->k; j++)
            dup = dup || w->lists[j] == t;
        if (dup)
            continue;
        size_t lb = lower_bound_pos(t->pos, t->n, (uint32_t)start);
        int64_t head;
        if (q->asc)
            head = lb < t->n ? (int64_t)lb : -1;
        else
            /* Last index holding a position <= start. */
            head = (lb < t->n && t->pos[lb] == (uint32_t)start) ? (int64_t)lb : (int64_t)lb - 1;
        w->lists[w->k] = t;
        w->heads[w->k] = head;
        w->k++;
    }
}

/* Next candidate position, or -1 at the end. */
static int64_t walk_next(walk_t *w)
{
    if (!w->filtered) {
        if (w->cur < 0 || w->cur >= (int64_t)w->st->n)
            return -1;
        int64_t p = w->cur;
        w->cur += w->asc ? 1 : -1;
        return p;
    }
    int64_t best = -1;
    size_t best_i = 0;
    for (size_t i = 0; i < w->k; i++) {
        if (w->heads[i] < 0)
            continue;
        int64_t p = w->lists[i]->pos[w->heads[i]];
        if (best < 0 || (w->asc ? p < best : p > best)) {
            best = p;
            best_i = i;
        }
    }
    if (best < 0)
        return -1;
    if (w->asc) {
        w->heads[best_i]++;
        if ((size_t)w->heads[best_i] >= w->lists[best_i]->n)
            w->heads[best_i] = -1;
    } else {
        w->heads[best_i]--;
    }
    return best;
}

size_t emu_store_query(const emu_store_t *st, const emu_query_t *q, uint32_t *out, bool *more)
{
    *more = false;
    if (st->n == 0 || q->limit == 0)
        return 0;
    int64_t start;
    if (q->asc) {
        start = q->has_after ? (int64_t)q->after_pos + 1 : 0;
        if (start < (int64_t)q->min_pos)
            start = q->min_pos;
        if (q->has_start && st->monotone) {
            int64_t lb = (int64_t)lower_bound_created(st, q->start_ms);
            start = lb > start ? lb : start;
        }
        if (start >= (int64_t)st->n)
            return 0;
    } else {
        start = q->has_after ? (int64_t)q->after_pos - 1 : (int64_t)st->n - 1;
        if (q->has_end && st->monotone) {
            int64_t ub = (int64_t)upper_bound_created(st, q->end_ms) - 1;
            start = ub < start ? ub : start;
        }
        if (start < 0)
            return 0;
    }

    walk_t w;
    walk_init(&w, st, q, start);
    size_t got = 0;
    int64_t pos;
    while ((pos = walk_next(&w)) >= 0) {
        if (pos < (int64_t)q->min_pos)
            break; /* descending past the oldest retained event */
        int64_t c = st->ev[pos].created_ms;
        /* Past the far end of the range: on a monotone stream nothing
         * further can match, otherwise keep looking. */
        bool beyond = q->asc ? (q->has_end && c > q->end_ms) : (q->has_start && c < q->start_ms);
        if (beyond) {
            if (st->monotone)
                break;
            continue;
        }
        if ((q->has_start && c < q->start_ms) || (q->has_end && c > q->end_ms))
            continue;
        if (got == q->limit) {
            *more = true;
            break;
        }
        out[got++] = (uint32_t)pos;
    }
    return got;
}
