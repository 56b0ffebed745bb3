/*
 * Per-key checks of the option table: the hooks that run once a value has
 * landed in config_t and hold it to what the rest of the daemon relies on
 * -- tokens without blanks, a plain http(s) URL, event names and their
 * wildcards expanded against the types event.c knows, an ISO 8601 start
 * time (through clock_parse_iso8601, the daemon's one parser), host:port,
 * a URL path and a schema name. A hook may normalise the value in place
 * (trim a URL's slashes, expand a wildcard); a problem comes back as text
 * built from the value, never from a secret.
 */
#include "config_check.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "config_value.h"
#include "event.h"

/* Secrets travel in HTTP headers and HMAC keys: no blanks, no control bytes. */
static bool token_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == 0x7f)
            return false;
    }
    return true;
}

bool config_check_api_key(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    if (c->api_key != NULL && c->api_key[0] == '\0') {
        free(c->api_key);
        c->api_key = NULL;
    }
    if (c->api_key != NULL && !token_ok(c->api_key)) {
        snprintf(why, whylen, "the API key contains blanks or control characters");
        return false;
    }
    return true;
}

bool config_check_secrets(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    for (size_t i = 0; i < c->n_secrets; i++) {
        if (!token_ok(c->secrets[i])) {
            snprintf(why, whylen, "secret %zu of %zu contains blanks or control characters", i + 1,
                     c->n_secrets);
            return false;
        }
    }
    return true;
}

bool config_check_base_url(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    char *u = c->base_url;
    size_t skip;
    if (strncasecmp(u, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(u, "http://", 7) == 0)
        skip = 7;
    else {
        snprintf(why, whylen, "%s must start with http:// or https://",
                 config_value_show(shown, sizeof shown, u));
        return false;
    }
    size_t len = strlen(u);
    while (len > skip && u[len - 1] == '/')
        u[--len] = '\0';
    if (len == skip || u[skip] == '/') {
        snprintf(why, whylen, "%s has no host", config_value_show(shown, sizeof shown, u));
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)u[i];
        if (ch <= ' ' || ch == 0x7f || ch == '?' || ch == '#') {
            snprintf(why, whylen, "%s must be a plain URL without blanks, query or fragment",
                     config_value_show(shown, sizeof shown, u));
            return false;
        }
    }
    return true;
}

/*
 * Lower-case words joined by dots, like the names WorkOS uses; a full event
 * name has at least one dot, a wildcard's prefix need not.
 */
static bool event_words_ok(const char *s, size_t len, bool need_dot)
{
    bool dot = false;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (i == 0 || i + 1 == len || s[i - 1] == '.')
                return false;
            dot = true;
        } else if (!(islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '_')) {
            return false;
        }
    }
    return dot || !need_dot;
}

/*
 * Expands wildcards into the known names they match and drops duplicates.
 * Runs again after every continuation line; already-expanded names pass
 * through unchanged, so that is harmless.
 */
bool config_check_events(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    char **out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->n_events; i++) {
        const char *item = c->events[i];
        size_t len = strlen(item);
        const char *star = strchr(item, '*');
        if (star != NULL) {
            /* Only "*" or "<words>.*" */
            bool shape =
                star == item + len - 1 &&
                (len == 1 || (len >= 3 && star[-1] == '.' && event_words_ok(item, len - 2, false)));
            if (!shape) {
                snprintf(why, whylen,
                         "%s: a wildcard must be a whole name ending in .*, "
                         "like authentication.*",
                         config_value_show(shown, sizeof shown, item));
                goto fail;
            }
            size_t plen =
                len - 1; /* keeps the dot, so organization.* skips organization_membership.* */
            size_t matched = 0;
            /* Expands against the types event.c knows; names it does not
             * know are still accepted, so a new WorkOS type needs no release. */
            const char *known;
            for (size_t k = 0; (known = event_known_type(k)) != NULL; k++) {
                if (strncmp(known, item, plen) != 0)
                    continue;
                matched++;
                if (!config_value_list_has(out, n, known) &&
                    !config_value_list_push(&out, &n, known, strlen(known)))
                    goto oom;
            }
            if (matched == 0) {
                snprintf(why, whylen, "%s matches no known event type",
                         config_value_show(shown, sizeof shown, item));
                goto fail;
            }
            continue;
        }
        if (!event_words_ok(item, len, true)) {
            snprintf(why, whylen,
                     "%s is not an event type (lower-case words joined by dots, like user.created)",
                     config_value_show(shown, sizeof shown, item));
            goto fail;
        }
        if (!config_value_list_has(out, n, item) && !config_value_list_push(&out, &n, item, len))
            goto oom;
    }
    if (n == 0) {
        snprintf(why, whylen, "lists no event types");
        goto fail;
    }
    config_value_list_free(c->events, c->n_events, false);
    c->events = out;
    c->n_events = n;
    return true;
oom:
    snprintf(why, whylen, "out of memory");
fail:
    config_value_list_free(out, n, false);
    return false;
}

bool config_check_start_from(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    int64_t start_ms;
    if (strcmp(c->start_from, "now") == 0 || strcmp(c->start_from, "snapshot") == 0 ||
        clock_parse_iso8601(c->start_from, &start_ms))
        return true;
    snprintf(why, whylen, "%s must be snapshot, now or an ISO 8601 time like 2026-01-31T00:00:00Z",
             config_value_show(shown, sizeof shown, c->start_from));
    return false;
}

bool config_check_listen(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    const char *s = c->listen;
    if (*s == '\0')
        return true;
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        goto bad;
    size_t hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']')
            goto bad;
    } else if (memchr(s, ':', hlen) != NULL) {
        snprintf(why, whylen, "%s: write an IPv6 address in brackets, like [::1]:8089",
                 config_value_show(shown, sizeof shown, s));
        return false;
    }
    for (size_t i = 0; i < hlen; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == '/')
            goto bad;
    }
    const char *port = colon + 1;
    int64_t v;
    if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
        !config_value_parse_int(port, &v) || v > 65535)
        goto bad;
    return true;
bad:
    snprintf(why, whylen, "%s must be host:port, like 127.0.0.1:8089 (port 0 picks a free one)",
             config_value_show(shown, sizeof shown, s));
    return false;
}

bool config_check_path(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    const char *s = c->webhook_path;
    bool ok = s[0] == '/';
    for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++) {
        if (*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
            ok = false;
    }
    if (!ok) {
        char shown[64];
        snprintf(why, whylen, "%s must be a URL path starting with /, without query or blanks",
                 config_value_show(shown, sizeof shown, s));
    }
    return ok;
}

bool config_check_schema(config_t *c, const config_option_t *opt, char *why, size_t whylen)
{
    (void)opt;
    char shown[64];
    const char *s = c->schema;
    size_t len = strlen(s);
    bool ok = len >= 1 && len <= 63 && (islower((unsigned char)s[0]) || s[0] == '_');
    for (size_t i = 1; ok && i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        ok = islower(ch) || isdigit(ch) || ch == '_';
    }
    if (!ok) {
        snprintf(why, whylen, "%s must be 1 to 63 of a-z, 0-9 and _, not starting with a digit",
                 config_value_show(shown, sizeof shown, s));
        return false;
    }
    if (strncmp(s, "pg_", 3) == 0) {
        snprintf(why, whylen, "%s: names starting with pg_ are reserved by PostgreSQL",
                 config_value_show(shown, sizeof shown, s));
        return false;
    }
    return true;
}
