/*
 * A set of cursor strings in a libc search tree (tsearch), with a byte
 * budget so that an API answering with ever new (or enormous) cursors
 * cannot grow it without bound.
 */
#include "cursor_set.h"

#include <search.h>
#include <stdlib.h>
#include <string.h>

/* What one remembered cursor costs besides its bytes: the tree's node and
 * the two allocations' headers. */
#define ENTRY_OVERHEAD 64

static int cursor_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

bool cursor_set_add(cursor_set_t *s, const char *cursor)
{
    if (cursor_set_has(s, cursor))
        return true;
    size_t cost = strlen(cursor) + 1 + ENTRY_OVERHEAD;
    if (cost > CURSOR_SET_BUDGET - s->bytes)
        return false;
    char *copy = strdup(cursor);
    if (copy == NULL)
        return false;
    if (tsearch(copy, &s->root, cursor_cmp) == NULL) {
        free(copy);
        return false;
    }
    s->bytes += cost;
    return true;
}

bool cursor_set_has(const cursor_set_t *s, const char *cursor)
{
    return tfind(cursor, &s->root, cursor_cmp) != NULL;
}

void cursor_set_clear(cursor_set_t *s)
{
    tdestroy(s->root, free);
    s->root = NULL;
    s->bytes = 0;
}
