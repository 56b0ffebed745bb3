/*
 * pgarray: one-dimensional text[] values in PostgreSQL's binary format.
 *
 * The apply statement takes each column of a batch as one text[] parameter
 * sent in binary: every element arrives as length-prefixed bytes, so the
 * server copies strings instead of lexing a JSON recordset, and the daemon
 * writes values as they are, with no escaping.  An array is built in one
 * growing buffer whose first bytes are the header, filled in by
 * pg_array_finish().
 */
#ifndef WORKOS_SYNCD_PGARRAY_H
#define WORKOS_SYNCD_PGARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>
#include "wur.h"

typedef struct pg_array {
    char *buf;     /* header, then the elements */
    size_t len;    /* bytes used in buf */
    size_t cap;    /* bytes allocated */
    uint32_t n;    /* elements added */
    bool has_null; /* an element is NULL */
    bool failed;   /* out of memory, or over 1 GiB: the array is unusable */
} pg_array_t;

/* An empty array; nothing is allocated until the first element. */
void pg_array_init(pg_array_t *a);

/* Appends `len` bytes of `s` as one element; `s` NULL appends SQL NULL. */
void pg_array_add(pg_array_t *a, const char *s, size_t len);

/* Appends a NUL-terminated string; NULL appends SQL NULL. */
void pg_array_add_str(pg_array_t *a, const char *s);

/* Appends `item` rendered as compact JSON text; NULL appends SQL NULL. */
void pg_array_add_json(pg_array_t *a, cJSON *item);

/*
 * Writes the header and returns the value to send, a->len bytes long, or
 * NULL when an earlier append failed.  The value is a->buf, or for an empty
 * array a shared constant, so nothing is allocated for it.  Calling it
 * again is harmless; appending after it is a bug.
 */
const char *pg_array_finish(pg_array_t *a) WUR;

/* The offset of an array's first element, where pg_array_next starts. */
size_t pg_array_first(void);

/*
 * Reads the element at byte offset *off: sets *s to its bytes inside the
 * array (NULL for SQL NULL) and *len to their number, and moves *off to
 * the next element.  Returns false past the last element.  For splitting
 * a batch; the array is left unchanged, finished or not.
 */
bool pg_array_next(const pg_array_t *a, size_t *off, const char **s, size_t *len) WUR;

/* Frees the buffer and leaves `a` empty; accepts NULL. */
void pg_array_free(pg_array_t *a);

#endif
