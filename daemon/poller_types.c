/*
 * poller_types: the table of configured event types behind the poller's
 * filter -- which the Events API refused, which a check round has still to
 * ask about, which the filter in use names -- and the URLs built from it:
 * the page URL's prefix and the `limit=1` listing that checks one type.
 * It reads a check's answer; the requests and the backoff are the poller's
 * (poller.c), the transitions poller_fsm.c's.
 */
#include "poller_types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "metrics.h"

/* One configured event type and what the API said about it. */
typedef struct poller_type {
    char *name;
    bool refused;   /* answered 400 on its own: out of the filter until a restart or reload */
    bool unchecked; /* the current check round has still to ask about it */
    bool in_filter; /* the filter that requests are sent with names it */
} poller_type_t;

struct poller_types {
    const config_t *cfg;
    poller_type_t *types; /* the configured event types, in order */
    size_t n_types;
    char *refused_list; /* the refused ones, comma-separated, "" for none */
    char *url_prefix;   /* base_url/events?order=asc&limit=..&<filter> */
};

/*
 * Out of memory while the API's answer is being read is fatal, as
 * everywhere in the poller: the stored cursor is safe.
 */
static _Noreturn void out_of_memory(const char *where)
{
    log_error("event=out_of_memory where=%s note=\"exiting; the stored cursor is safe\"", where);
    abort();
}

/*
 * Writes the type filter for the `n` names to `f`, in the configured
 * spelling: events[]=a&events[]=b, or one parameter, comma-separated, as
 * the official Node SDK sends it.
 */
static void write_filter(FILE *f, const config_t *cfg, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *e = curl_easy_escape(NULL, names[i], 0);
        if (e != NULL && cfg->events_brackets)
            fprintf(f, "&events%%5B%%5D=%s", e);
        else if (e != NULL)
            fprintf(f, "%s%s", i ? "%2C" : "&events=", e);
        curl_free(e);
    }
}

/* Ends a memstream; its text, or NULL (and nothing) when writing failed. */
static WUR char *close_memstream(FILE *f, char **buf)
{
    if (fclose(f) != 0) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

/*
 * The page URL without its position: base_url/events?order=asc&limit=..
 * and a filter of every type not refused, which it marks in_filter.
 * Returns NULL when out of memory.
 */
static WUR char *build_url_prefix(const config_t *cfg, poller_type_t *types, size_t n)
{
    char *buf = NULL;
    size_t len = 0, used = 0;
    const char **names = calloc(n ? n : 1, sizeof(*names));
    FILE *f = names != NULL ? open_memstream(&buf, &len) : NULL;
    if (f == NULL) {
        free(names);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        types[i].in_filter = !types[i].refused;
        if (types[i].in_filter)
            names[used++] = types[i].name;
    }
    fprintf(f, "%s/events?order=asc&limit=%d", cfg->base_url, POLLER_TYPES_PAGE_LIMIT);
    write_filter(f, cfg, names, used);
    free(names);
    return close_memstream(f, &buf);
}

/* The URL of a type check: the cheapest listing that names only `type`. */
static WUR char *build_check_url(const config_t *cfg, const char *type)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    fprintf(f, "%s/events?limit=1", cfg->base_url);
    write_filter(f, cfg, &type, 1);
    return close_memstream(f, &buf);
}

static void types_free(poller_type_t *types, size_t n)
{
    for (size_t i = 0; types != NULL && i < n; i++)
        free(types[i].name);
    free(types);
}

/* The configured types, none refused yet; false when out of memory. */
static WUR bool types_new(const config_t *cfg, poller_type_t **out, size_t *n_out)
{
    poller_type_t *types = calloc(cfg->n_events ? cfg->n_events : 1, sizeof(*types));
    if (types == NULL)
        return false;
    for (size_t i = 0; i < cfg->n_events; i++) {
        if ((types[i].name = strdup(cfg->events[i])) == NULL) {
            types_free(types, cfg->n_events);
            return false;
        }
    }
    *out = types;
    *n_out = cfg->n_events;
    return true;
}

/* Rebuilds refused_list and the gauge from the table. */
static void types_refused_changed(poller_types_t *p)
{
    char *buf = NULL;
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        out_of_memory("poller_types");
    for (size_t i = 0; i < p->n_types; i++)
        if (p->types[i].refused)
            fprintf(f, "%s%s", n++ ? "," : "", p->types[i].name);
    if ((buf = close_memstream(f, &buf)) == NULL)
        out_of_memory("poller_types");
    free(p->refused_list);
    p->refused_list = buf;
    metrics_event_types_refused((long)n);
}

/* The type named `name` in the table, or NULL (a reload replaced the table). */
static poller_type_t *find_type(poller_types_t *p, const char *name)
{
    for (size_t i = 0; name != NULL && i < p->n_types; i++)
        if (strcmp(p->types[i].name, name) == 0)
            return &p->types[i];
    return NULL;
}

poller_types_t *poller_types_new(const config_t *cfg)
{
    poller_types_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->cfg = cfg;
    if (types_new(cfg, &t->types, &t->n_types))
        t->url_prefix = build_url_prefix(cfg, t->types, t->n_types);
    t->refused_list = strdup("");
    if (t->url_prefix == NULL || t->refused_list == NULL) {
        poller_types_free(t);
        return NULL;
    }
    return t;
}

void poller_types_free(poller_types_t *t)
{
    if (t == NULL)
        return;
    types_free(t->types, t->n_types);
    free(t->refused_list);
    free(t->url_prefix);
    free(t);
}

const char *poller_types_url_prefix(const poller_types_t *t)
{
    return t->url_prefix;
}

const char *poller_types_refused(const poller_types_t *t)
{
    return t->refused_list;
}

bool poller_types_all_refused(const poller_types_t *t)
{
    bool all = true;
    for (size_t i = 0; i < t->n_types; i++)
        all = all && t->types[i].refused;
    return all;
}

void poller_types_facts(const poller_types_t *t, poller_facts_t *facts)
{
    for (size_t i = 0; i < t->n_types; i++) {
        facts->types_unchecked += t->types[i].unchecked;
        facts->types_usable += !t->types[i].refused;
        facts->filter_refused =
            facts->filter_refused || (t->types[i].refused && t->types[i].in_filter);
    }
}

void poller_types_begin(poller_types_t *t)
{
    size_t usable = 0;
    for (size_t i = 0; i < t->n_types; i++)
        usable += !t->types[i].refused;
    for (size_t i = 0; i < t->n_types; i++)
        t->types[i].unchecked = usable == 0 || !t->types[i].refused;
    log_info("event=event_types_check n=%zu note=\"asking the API about each event type\"",
             usable ? usable : t->n_types);
}

bool poller_types_use(poller_types_t *t)
{
    char *prefix = build_url_prefix(t->cfg, t->types, t->n_types);
    if (prefix == NULL)
        return false;
    free(t->url_prefix);
    t->url_prefix = prefix;
    return true;
}

char *poller_types_check_url(poller_types_t *p, const char **name)
{
    poller_type_t *t = NULL;
    for (size_t i = 0; t == NULL && i < p->n_types; i++)
        if (p->types[i].unchecked)
            t = &p->types[i];
    if (t == NULL) {
        log_error("event=bug where=poller_start_check reason=\"no type to check\"");
        abort();
    }
    char *url = build_check_url(p->cfg, t->name);
    if (url == NULL)
        return NULL;
    *name = t->name;
    log_debug("event=event_type_check type=%s url=%s", log_q(t->name), log_q(url));
    return url;
}

poller_event_t poller_types_answer(poller_types_t *p, const char *check_name,
                                   const http_response_t *resp, const char *err, char *reason,
                                   size_t reasonlen)
{
    poller_type_t *t = find_type(p, check_name);

    if (resp->transport_ok && (resp->status == 200 || resp->status == 400)) {
        if (t != NULL) {
            t->unchecked = false;
            if (resp->status == 400 && !t->refused) {
                t->refused = true;
                log_warn("event=event_type_refused type=%s status=400 body=%s "
                         "note=\"not polled until a restart or reload\"",
                         log_q(t->name), log_q(err));
                types_refused_changed(p);
            } else if (resp->status == 200 && t->refused) {
                t->refused = false;
                log_info("event=event_type_accepted type=%s", log_q(t->name));
                types_refused_changed(p);
            }
        }
        return POLLER_EV_TYPE_CHECKED;
    }
    if (!resp->transport_ok)
        snprintf(reason, reasonlen, "type check of %s failed: %s", check_name, resp->error);
    else
        snprintf(reason, reasonlen, "type check of %s: http %ld", check_name, resp->status);
    return POLLER_EV_CHECK_FAILED;
}
