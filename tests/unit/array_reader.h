/*
 * A reader for the binary text[] values built by daemon/pgarray.c, as
 * PostgreSQL's array_recv would read them: the unit tests and the fuzz
 * target use it to check what the apply statement would receive.
 */
#ifndef WORKOS_SYNCD_TEST_ARRAY_READER_H
#define WORKOS_SYNCD_TEST_ARRAY_READER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgarray.h"

static inline uint32_t array_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/*
 * Splits a finished array (`len` bytes at `buf`) into its elements: on success *elems holds
 * *n malloc'd NUL-terminated strings (NULL for SQL NULL), freed with
 * array_elems_free.  Returns false when the bytes are not a well-formed
 * one-dimensional text[] with lower bound 1 and an accurate null flag.
 */
static inline bool array_read(const char *buf, size_t len, char ***elems, uint32_t *n)
{
    *elems = NULL;
    *n = 0;
    if (len < 12 || array_u32(buf + 8) != 25)
        return false;
    uint32_t ndim = array_u32(buf), flags = array_u32(buf + 4);
    if (ndim == 0)
        return len == 12 && flags == 0;
    if (ndim != 1 || len < 20 || array_u32(buf + 16) != 1 || flags > 1)
        return false;
    uint32_t count = array_u32(buf + 12);
    char **out = calloc(count ? count : 1, sizeof(*out));
    size_t off = 20;
    bool saw_null = false;
    for (uint32_t i = 0; i < count; i++) {
        if (out == NULL || len - off < 4)
            goto fail;
        uint32_t elen = array_u32(buf + off);
        off += 4;
        if (elen == UINT32_MAX) {
            saw_null = true;
            continue;
        }
        if (len - off < elen || (out[i] = malloc(elen + 1)) == NULL)
            goto fail;
        memcpy(out[i], buf + off, elen);
        out[i][elen] = '\0';
        off += elen;
    }
    if (off != len || saw_null != (flags == 1))
        goto fail;
    *elems = out;
    *n = count;
    return true;
fail:
    for (uint32_t i = 0; out != NULL && i < count; i++)
        free(out[i]);
    free(out);
    return false;
}

static inline void array_elems_free(char **elems, uint32_t n)
{
    for (uint32_t i = 0; elems != NULL && i < n; i++)
        free(elems[i]);
    free(elems);
}

#endif
