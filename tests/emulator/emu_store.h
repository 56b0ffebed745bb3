/*
 * The emulator's event stream: events in stream order, each kept as the exact
 * bytes it was loaded with, indexed by id (hash table) and by event type
 * (sorted position lists), so a page of a filtered listing costs
 * O(limit x filter types) rather than a scan of the stream.
 */
#ifndef EMU_STORE_H
#define EMU_STORE_H

#include "emu_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most distinct event types a filter may name (extra ones are ignored). */
#define EMU_STORE_MAX_FILTER 128

typedef struct emu_store emu_store_t;

/* One listing request, already validated. */
typedef struct {
    bool asc;           /* oldest first when true */
    bool has_after;     /* continue after the event at after_pos */
    uint32_t after_pos; /* stream position of the `after` event */
    bool has_start;     /* created_at >= start_ms */
    int64_t start_ms;
    bool has_end; /* created_at <= end_ms */
    int64_t end_ms;
    bool filtered;         /* only events whose type is in types[] */
    const uint32_t *types; /* type indexes from emu_store_find_type */
    size_t ntypes;         /* may be 0 with filtered set: nothing matches */
    size_t limit;          /* page size, > 0 */
    uint32_t min_pos;      /* events before this position are not served */
} emu_query_t;

/* Creates an empty store; never returns NULL. Free with emu_store_free. */
emu_store_t *emu_store_new(void);

/* Releases the store and every event in it; accepts NULL. */
void emu_store_free(emu_store_t *st);

/* Appends every line of a JSONL file (blank lines skipped). Each line must be
 * a JSON object with string "id", "event" and ISO 8601 "created_at"; ids must
 * be unique. On failure nothing from the file is kept and err names the line. */
bool emu_store_load_file(emu_store_t *st, const char *path, char *err, size_t errlen) EMU_WUR;

/* Appends the JSONL in data[0..len) (copied) with the same rules as a file,
 * all or nothing. Sets *appended to the number of events added. */
bool emu_store_append(emu_store_t *st, const char *data, size_t len, size_t *appended, char *err,
                      size_t errlen) EMU_WUR;

/* Number of events in the stream. */
size_t emu_store_count(const emu_store_t *st);

/* Looks up an event id; on success stores its stream position in *pos. */
bool emu_store_find_id(const emu_store_t *st, const char *id, uint32_t *pos) EMU_WUR;

/* Looks up an event type seen in the stream; stores its index in *idx. */
bool emu_store_find_type(const emu_store_t *st, const char *type, uint32_t *idx) EMU_WUR;

/* Stream position of the first event whose created_at is >= ms (binary
 * search while created_at never decreased, a scan otherwise); the count of
 * events when there is none. */
size_t emu_store_first_at_or_after(const emu_store_t *st, int64_t ms);

/* Fills out[] (room for q->limit entries) with the stream positions of the
 * next page for q, in listing order, and returns how many. *more is set when
 * at least one further matching event exists beyond the page. */
size_t emu_store_query(const emu_store_t *st, const emu_query_t *q, uint32_t *out, bool *more);

/* The event at pos: its raw bytes (not NUL-terminated, length in *len), its
 * id, and its created_at. The store keeps ownership; pointers stay valid
 * until the store is freed. */
const char *emu_store_raw(const emu_store_t *st, uint32_t pos, size_t *len);
const char *emu_store_id(const emu_store_t *st, uint32_t pos);
int64_t emu_store_created(const emu_store_t *st, uint32_t pos);

#endif
