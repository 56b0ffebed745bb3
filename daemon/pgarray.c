/*
 * pgarray: text[] in the binary format of PostgreSQL's array_recv.
 *
 * Layout, all integers big-endian: int32 ndim, int32 has-null flag, uint32
 * element type oid, then for each dimension int32 length and int32 lower
 * bound, then for each element int32 byte length (-1 for NULL) followed by
 * the bytes.  An empty array has ndim 0 and no dimension fields.
 */
#include "pgarray.h"

#include <stdlib.h>
#include <string.h>

#define TEXT_OID 25
#define HEADER_LEN 20       /* ndim, flags, oid, one dimension's length and lower bound */
#define EMPTY_HEADER_LEN 12 /* ndim 0: no dimension */
#define MAX_ARRAY_LEN ((size_t)1 << 30)

static void put_u32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

/* Makes room for `more` bytes after a->len. */
static bool reserve(pg_array_t *a, size_t more)
{
    if (a->failed)
        return false;
    if (a->len + more <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap : 4096;
    while (cap < a->len + more)
        cap *= 2;
    char *buf = cap <= MAX_ARRAY_LEN ? realloc(a->buf, cap) : NULL;
    if (buf == NULL) {
        a->failed = true;
        return false;
    }
    a->buf = buf;
    a->cap = cap;
    return true;
}

void pg_array_init(pg_array_t *a)
{
    memset(a, 0, sizeof(*a));
    a->len = HEADER_LEN;
}

void pg_array_add(pg_array_t *a, const char *s, size_t len)
{
    if (!reserve(a, 4 + (s != NULL ? len : 0)))
        return;
    put_u32(a->buf + a->len, s != NULL ? (uint32_t)len : UINT32_MAX);
    a->len += 4;
    if (s != NULL) {
        memcpy(a->buf + a->len, s, len);
        a->len += len;
    } else {
        a->has_null = true;
    }
    a->n++;
}

void pg_array_add_str(pg_array_t *a, const char *s)
{
    pg_array_add(a, s, s != NULL ? strlen(s) : 0);
}

void pg_array_add_json(pg_array_t *a, cJSON *item)
{
    if (item == NULL) {
        pg_array_add(a, NULL, 0);
        return;
    }
    /* Printed straight into the buffer after a length slot; cJSON asks for
     * a few bytes of slack beyond the text itself. */
    size_t room = 256;
    for (;;) {
        if (!reserve(a, 4 + room))
            return;
        room = a->cap - a->len - 4;
        if (room > INT32_MAX) /* cJSON takes an int */
            room = INT32_MAX;
        char *text = a->buf + a->len + 4;
        if (cJSON_PrintPreallocated(item, text, (int)room, 0)) {
            size_t len = strlen(text);
            put_u32(a->buf + a->len, (uint32_t)len);
            a->len += 4 + len;
            a->n++;
            return;
        }
        if (room >= INT32_MAX) {
            a->failed = true;
            return;
        }
        room *= 2;
    }
}

const char *pg_array_finish(pg_array_t *a)
{
    static const char empty[EMPTY_HEADER_LEN] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, TEXT_OID};

    if (a->failed || a->len > INT32_MAX)
        return NULL;
    if (a->n == 0) {
        a->len = EMPTY_HEADER_LEN;
        return empty;
    }
    put_u32(a->buf, 1);
    put_u32(a->buf + 4, a->has_null ? 1 : 0);
    put_u32(a->buf + 8, TEXT_OID);
    put_u32(a->buf + 12, a->n);
    put_u32(a->buf + 16, 1);
    return a->buf;
}

size_t pg_array_first(void)
{
    return HEADER_LEN;
}

bool pg_array_next(const pg_array_t *a, size_t *off, const char **s, size_t *len)
{
    if (a->n == 0 || *off + 4 > a->len)
        return false;
    const unsigned char *p = (const unsigned char *)a->buf + *off;
    uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    *off += 4;
    if (n == UINT32_MAX) {
        *s = NULL;
        *len = 0;
        return true;
    }
    *s = a->buf + *off;
    *len = n;
    *off += n;
    return true;
}

void pg_array_free(pg_array_t *a)
{
    if (a == NULL)
        return;
    free(a->buf);
    pg_array_init(a);
}
