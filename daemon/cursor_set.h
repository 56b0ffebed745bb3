/*
 * The cursors one listing has followed, so that an answer leading back to
 * one of them (a listing going round in a loop) is recognised. Bounded: a
 * set remembers cursors until they take CURSOR_SET_BUDGET bytes, counted
 * with their bookkeeping, and none after that; the first ones, which an
 * API that starts over leads back to, stay.
 */
#ifndef WORKOS_SYNCD_CURSOR_SET_H
#define WORKOS_SYNCD_CURSOR_SET_H

#include <stdbool.h>
#include <stddef.h>

#define CURSOR_SET_BUDGET ((size_t)1 << 20)

typedef struct cursor_set {
    void *root;   /* a tsearch tree of strings; zero-initialised: empty */
    size_t bytes; /* what the remembered cursors cost */
} cursor_set_t;

/* Remembers a copy of cursor; false when it is not remembered (over the
 * budget, or out of memory), true when it is or already was. */
bool cursor_set_add(cursor_set_t *s, const char *cursor);

/* Whether cursor is remembered. */
bool cursor_set_has(const cursor_set_t *s, const char *cursor);

/* Forgets every cursor; the set is empty again. */
void cursor_set_clear(cursor_set_t *s);

#endif
