/*
 * status_print: one emitter, two forms.  Every fact goes through put(),
 * which writes `key=value` (quoted where the text form always quoted it)
 * or adds the key to a JSON object: absent values ("-") become null,
 * seconds and counts numbers.  So the two outputs cannot drift apart.
 */
#include "status_print.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

typedef enum put_kind {
    PUT_TEXT,   /* a bare value */
    PUT_QUOTED, /* a value the text form quotes */
    PUT_NUMBER  /* a number in JSON */
} put_kind_t;

typedef struct emitter {
    FILE *out;
    cJSON *obj; /* NULL: text */
} emitter_t;

static void put(emitter_t *e, const char *key, const char *value, put_kind_t kind)
{
    if (e->obj == NULL && kind != PUT_QUOTED) {
        fprintf(e->out, "%s=%s\n", key, value);
        return;
    }
    if (e->obj == NULL) {
        /* A server's message quotes names: " and \ are escaped, as in C. */
        fprintf(e->out, "%s=\"", key);
        for (const char *p = value; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\')
                fputc('\\', e->out);
            fputc(*p, e->out);
        }
        fputs("\"\n", e->out);
        return;
    }
    if (value == NULL || strcmp(value, "-") == 0)
        cJSON_AddNullToObject(e->obj, key);
    else if (kind == PUT_NUMBER)
        cJSON_AddNumberToObject(e->obj, key, strtod(value, NULL));
    else
        cJSON_AddStringToObject(e->obj, key, value);
}

static void put_ll(emitter_t *e, const char *key, long long n)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", n);
    put(e, key, buf, PUT_NUMBER);
}

static const char *text_of(const status_value_t *v)
{
    return v->present ? v->text : "-";
}

/* Seconds: "4.8s" in text, 4.8 in JSON, "-" / null when absent. */
static void put_secs(emitter_t *e, const char *key, const status_value_t *v)
{
    if (e->obj != NULL || !v->present) {
        put(e, key, text_of(v), PUT_NUMBER);
        return;
    }
    char buf[sizeof(v->text) + 2];
    snprintf(buf, sizeof(buf), "%ss", v->text);
    put(e, key, buf, PUT_TEXT);
}

static void put_reconcile(emitter_t *e, const status_reconcile_t *r)
{
    put(e, "reconcile_last_run", text_of(&r->last_run), PUT_NUMBER);
    put(e, "reconcile_last_at", text_of(&r->last_started_at), PUT_TEXT);
    put_secs(e, "reconcile_last_took", &r->last_seconds);
    put(e, "reconcile_last_inserted", text_of(&r->last_inserted), PUT_NUMBER);
    put(e, "reconcile_last_updated", text_of(&r->last_updated), PUT_NUMBER);
    put(e, "reconcile_last_tombstoned", text_of(&r->last_tombstoned), PUT_NUMBER);
    put(e, "reconcile_last_refused", text_of(&r->last_refused), PUT_NUMBER);
    put(e, "reconcile_running", text_of(&r->running_run), PUT_NUMBER);
    put(e, "reconcile_running_phase", text_of(&r->running_phase), PUT_TEXT);
    put(e, "reconcile_running_since", text_of(&r->running_since), PUT_TEXT);
    put(e, "reconcile_running_scopes", text_of(&r->running_scopes), PUT_TEXT);
}

static int emit(emitter_t *e, const char *schema, const status_t *st)
{
    char buf[256];
    put(e, "schema", schema, PUT_TEXT);
    if (st->state == STATUS_UNREACHABLE || st->state == STATUS_UNUSABLE) {
        put(e, "state", st->state == STATUS_UNUSABLE ? "database_unusable" : "database_unreachable",
            PUT_TEXT);
        put(e, "error", st->error, PUT_QUOTED);
        return 2;
    }
    put_ll(e, "schema_version", st->schema_version);
    put_ll(e, "schema_latest", st->schema_latest);
    switch (st->state) {
    case STATUS_NOT_MIGRATED:
        put(e, "state", "not_migrated", PUT_TEXT);
        return 1;
    case STATUS_ERROR:
        put(e, "state", "error", PUT_TEXT);
        put(e, "error", st->error, PUT_QUOTED);
        return 1;
    case STATUS_NEVER_POLLED:
        put(e, "state", "never_polled", PUT_TEXT);
        break;
    case STATUS_FAILING:
    case STATUS_CAUGHT_UP:
    case STATUS_BEHIND:
        put(e, "cursor", text_of(&st->cursor), PUT_TEXT);
        put(e, "cursor_event_at", text_of(&st->cursor_event_at), PUT_TEXT);
        put_secs(e, "cursor_age", &st->cursor_age);
        put_secs(e, "lag", &st->lag);
        put_secs(e, "caught_up_ago", &st->caught_up_ago);
        put(e, "last_error", text_of(&st->last_error), PUT_QUOTED);
        put(e, "state",
            st->state == STATUS_FAILING     ? "failing"
            : st->state == STATUS_CAUGHT_UP ? "caught_up"
                                            : "behind",
            PUT_TEXT);
        break;
    case STATUS_UNREACHABLE:
    case STATUS_UNUSABLE:
        break;
    }
    if (st->poller == 1) {
        snprintf(buf, sizeof(buf), "pid:%s@%s", st->poller_pid, st->poller_addr);
        put(e, "poller", buf, PUT_TEXT);
    } else if (st->poller == 0) {
        put(e, "poller", "none", PUT_TEXT);
    }
    if (st->have_rows) {
        if (st->events.read)
            put_ll(e, "rows_events", st->events.live);
        for (int t = 0; t < MIRROR_COUNT; t++) {
            const char *table = event_mirror((mirror_table_t)t)->table;
            if (!st->mirror[t].read)
                continue;
            snprintf(buf, sizeof(buf), "rows_%s", table);
            put_ll(e, buf, st->mirror[t].live);
            snprintf(buf, sizeof(buf), "rows_%s_deleted", table);
            put_ll(e, buf, st->mirror[t].deleted);
        }
        if (st->poison_read) {
            put_ll(e, "poison_events", st->poison_count);
            put(e, "poison_newest", text_of(&st->poison_newest), PUT_TEXT);
        }
        if (st->audit_read) {
            put(e, "oldest_event_at", text_of(&st->oldest_event_at), PUT_TEXT);
            put_ll(e, "audit_pruned", st->audit_pruned);
        }
    }
    if (st->have_reconcile)
        put_reconcile(e, &st->reconcile);
    if (st->refused_read)
        put(e, "event_types_refused", text_of(&st->refused_types), PUT_TEXT);
    return st->state == STATUS_CAUGHT_UP ? 0 : 1;
}

int status_print(FILE *out, const char *schema, const status_t *st, bool json)
{
    emitter_t e = {.out = out, .obj = json ? cJSON_CreateObject() : NULL};
    if (json && e.obj == NULL)
        return 2;
    int rc = emit(&e, schema, st);
    if (json) {
        char *text = cJSON_PrintUnformatted(e.obj);
        if (text == NULL)
            rc = 2;
        else
            fprintf(out, "%s\n", text);
        free(text);
        cJSON_Delete(e.obj);
    }
    return rc;
}
