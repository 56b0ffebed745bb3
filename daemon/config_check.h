/*
 * Per-key checks of the option table. Each hook has the config_check_fn
 * shape: it runs after the value of `opt` has landed in *c, may normalise
 * it in place, and returns true when it is acceptable. On false it writes
 * what is wrong into why[whylen] (never a secret's value) and leaves *c
 * freeable with config_free().
 */
#ifndef WORKOS_SYNCD_CONFIG_CHECK_H
#define WORKOS_SYNCD_CONFIG_CHECK_H

#include "config.h"

/* api_key, api_key_file: an empty key becomes NULL; no blanks or control bytes. */
bool config_check_api_key(config_t *c, const config_option_t *opt, char *why, size_t whylen) WUR;

/* secret, secret_file: every secret free of blanks and control bytes. */
bool config_check_secrets(config_t *c, const config_option_t *opt, char *why, size_t whylen) WUR;

/* base_url: http:// or https://, a host, no query or fragment; trailing slashes go. */
bool config_check_base_url(config_t *c, const config_option_t *opt, char *why, size_t whylen) WUR;

/*
 * events: each item an event name or a `prefix.*` / `*` wildcard; wildcards
 * expand to the known types they match (event_known_type), duplicates go,
 * and at least one name must remain. Replaces c->events.
 */
bool config_check_events(config_t *c, const config_option_t *opt, char *why, size_t whylen) WUR;

/* start_from: "now" or a time clock_parse_iso8601() accepts. */
bool config_check_start_from(config_t *c, const config_option_t *opt, char *why, size_t whylen) WUR;

/* listen: "" or host:port, IPv6 in brackets, port 0 to 65535. */
bool config_check_listen(config_t *c, const config_option_t *opt, char *why, size_t whylen) WUR;

/* path: starts with /, no blanks, query or fragment. */
bool config_check_path(config_t *c, const config_option_t *opt, char *why, size_t whylen) WUR;

/* schema: 1 to 63 of a-z, 0-9 and _, not starting with a digit or pg_. */
bool config_check_schema(config_t *c, const config_option_t *opt, char *why, size_t whylen) WUR;

#endif
