/*
 * event_page: untrusted JSON in, and the Events API's list pages.
 *
 * The part of event.h that reads bytes from the network: the one bounded
 * JSON parser for webhook bodies and pages (size, depth, nothing after
 * the value), the page parser, and the order checks of a page, within it
 * and after the pages before it.
 */
#include "event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* The value of the four hex digits at s[0..3], or -1 when they are not. */
static long hex4(const char *s)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * One pass over `len` bytes of JSON text: how deep objects and arrays nest
 * (strings skipped; the scan stops once past `limit`), and in *lone how
 * many \uXXXX escapes name a UTF-16 surrogate that is not half of a pair,
 * or NUL.  JSON's grammar allows them (a serializer of UTF-16 strings
 * writes a lone surrogate for a truncated emoji), but cJSON refuses the
 * whole document for the first and cuts the string short at the second,
 * and PostgreSQL's jsonb refuses both.  When `fix` is not NULL it holds a
 * copy of the text, in which each of them becomes \ufffd (U+FFFD, the
 * replacement character; the same length).
 */
static size_t json_scan(const char *s, size_t len, size_t limit, char *fix, size_t *lone)
{
    size_t depth = 0, max = 0;
    bool in_string = false;
    *lone = 0;
    for (size_t i = 0; i < len && max <= limit; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '"') {
                in_string = false;
            } else if (c == '\\') {
                long u = i + 5 < len && s[i + 1] == 'u' ? hex4(s + i + 2) : -1;
                bool high = u >= 0xD800 && u <= 0xDBFF, low = u >= 0xDC00 && u <= 0xDFFF;
                long next = high && i + 11 < len && s[i + 6] == '\\' && s[i + 7] == 'u'
                                ? hex4(s + i + 8)
                                : -1;
                if (high && next >= 0xDC00 && next <= 0xDFFF) {
                    i += 11; /* a pair */
                } else if (high || low || u == 0) {
                    (*lone)++;
                    if (fix != NULL)
                        memcpy(fix + i + 2, "fffd", 4);
                    i += 5;
                } else {
                    i++; /* any other escape: skip the character after the backslash */
                }
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

cJSON *event_parse_json(const char *body, size_t len, char *err, size_t errlen)
{
    if (len > EVENT_MAX_BYTES) {
        snprintf(err, errlen, "JSON of %zu bytes, over the %zu allowed", len, EVENT_MAX_BYTES);
        return NULL;
    }
    size_t lone;
    if (json_scan(body, len, EVENT_MAX_DEPTH, NULL, &lone) > EVENT_MAX_DEPTH) {
        snprintf(err, errlen, "JSON nested deeper than %d levels", EVENT_MAX_DEPTH);
        return NULL;
    }
    char *fixed = NULL;
    if (lone > 0) {
        if ((fixed = malloc(len)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        memcpy(fixed, body, len);
        (void)json_scan(body, len, EVENT_MAX_DEPTH, fixed, &lone);
        body = fixed;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    bool trailing = false;
    /* cJSON stops after the first value; only whitespace may follow it. */
    for (const char *p = root != NULL ? end : body + len; p < body + len; p++)
        trailing = trailing || (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r');
    free(fixed);
    if (root == NULL) {
        snprintf(err, errlen, "not valid JSON");
        return NULL;
    }
    if (trailing) {
        cJSON_Delete(root);
        snprintf(err, errlen, "bytes after the JSON value");
        return NULL;
    }
    return root;
}

bool event_created_ms(const cJSON *envelope, int64_t *ms)
{
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(envelope, "created_at");
    return cJSON_IsString(created) && clock_parse_iso8601(created->valuestring, ms);
}

bool event_order_ms(const cJSON *envelope, int64_t now_ms, int64_t *ms)
{
    return event_created_ms(envelope, ms) && *ms <= now_ms + EVENT_FUTURE_MS;
}

/*
 * Whether the envelope's created_at takes part in the order checks, in *ms:
 * event_order_ms() reads one, and it is no more than EVENT_PAST_MS before
 * `newest`, the newest time so far (INT64_MIN: none).
 */
static bool orders(const cJSON *envelope, int64_t now_ms, int64_t newest, int64_t *ms)
{
    return event_order_ms(envelope, now_ms, ms) &&
           (newest == INT64_MIN || *ms >= newest - EVENT_PAST_MS);
}

/* `after_ms` as the order checks start from it: INT64_MIN (none) for 0 or too far ahead. */
static int64_t order_after(int64_t after_ms, int64_t now_ms)
{
    return after_ms == 0 || after_ms > now_ms + EVENT_FUTURE_MS ? INT64_MIN : after_ms;
}

bool event_page_parse(event_page_t *page, const char *body, size_t len, char *err, size_t errlen)
{
    memset(page, 0, sizeof(*page));
    char why[128];
    cJSON *root = event_parse_json(body, len, why, sizeof(why));
    if (root == NULL) {
        snprintf(err, errlen, "response: %s", why);
        return false;
    }
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsArray(data)) {
        snprintf(err, errlen, "response has no data array");
        cJSON_Delete(root);
        return false;
    }
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "list_metadata");
    cJSON *after = cJSON_GetObjectItemCaseSensitive(meta, "after");
    page->root = root;
    page->data = data;
    page->n = (size_t)cJSON_GetArraySize(data);
    page->after = cJSON_IsString(after) ? after->valuestring : NULL;
    return true;
}

bool event_page_in_order(const event_page_t *page, int64_t after_ms, bool *older, char *err,
                         size_t errlen)
{
    /* Asked for order=asc: a page going back in time beyond the skew means
     * the server and we disagree about the stream, and storing a cursor
     * from it is unsafe.  Against the newest so far, so that small steps
     * back cannot add up to a descending page, nor pages each a little
     * older than the one before to a descending stream. */
    int64_t now = clock_wall_ms(), newest = order_after(after_ms, now), ms;
    bool first = true;
    size_t i = 0;
    *older = false;
    for (const cJSON *e = page->data != NULL ? page->data->child : NULL; e != NULL;
         e = e->next, i++) {
        if (!orders(e, now, newest, &ms))
            continue;
        if (newest != INT64_MIN && ms <= newest - EVENT_ORDER_SKEW_MS) {
            *older = first;
            if (first)
                snprintf(err, errlen, "events out of order across pages");
            else
                snprintf(err, errlen, "events out of order at index %zu", i);
            return false;
        }
        if (ms > newest)
            newest = ms;
        first = false;
    }
    return true;
}

bool event_page_ascends(const event_page_t *page, int64_t after_ms)
{
    int64_t now = clock_wall_ms(), prev = order_after(after_ms, now), ms;
    for (const cJSON *e = page->data != NULL ? page->data->child : NULL; e != NULL; e = e->next) {
        if (!orders(e, now, prev, &ms))
            continue;
        if (ms < prev)
            return false;
        prev = ms;
    }
    return true;
}

int64_t event_page_newest(const event_page_t *page)
{
    int64_t newest = INT64_MIN, now = clock_wall_ms(), ms;
    for (const cJSON *e = page->data != NULL ? page->data->child : NULL; e != NULL; e = e->next)
        if (orders(e, now, newest, &ms) && ms > newest)
            newest = ms;
    return newest == INT64_MIN ? 0 : newest;
}

/* The element's id when it is a string, else NULL. */
static const char *element_id(const cJSON *e)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

const char *event_page_last_id(const event_page_t *page)
{
    const cJSON *first = page->data != NULL ? page->data->child : NULL;
    const char *id = first != NULL ? element_id(first->prev) : NULL;
    if (id != NULL || page->after != NULL)
        return id != NULL ? id : page->after;
    /* Back from the end: the elements after the one found come again. */
    for (const cJSON *e = first != NULL ? first->prev : NULL; e != NULL && e != first;) {
        e = e->prev;
        if ((id = element_id(e)) != NULL)
            return id;
    }
    return NULL;
}

void event_page_free(event_page_t *page)
{
    if (page == NULL)
        return;
    cJSON_Delete(page->root);
    memset(page, 0, sizeof(*page));
}
