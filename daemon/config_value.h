/*
 * Typed values of the option table: parsing a value's text by the option's
 * type and storing it in config_t at the option's offset, then comparing,
 * swapping and freeing such fields, and rendering values for messages. The
 * duration and size parsers themselves are declared in config.h, which
 * other modules use. Nothing here logs or knows about files being read.
 */
#ifndef WORKOS_SYNCD_CONFIG_VALUE_H
#define WORKOS_SYNCD_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "wur.h"

/*
 * Parses `value` as option o and stores it in *c, replacing the old value,
 * or for a list appending to it when `append` is set (an indented
 * continuation line). A *_file option reads the secret(s) from the named
 * file(s). Does not run o->check. Returns false and writes the problem into
 * why[whylen] -- naming a file, never a secret -- on a bad value or on
 * allocation failure; *c stays freeable either way.
 */
bool config_value_set(config_t *c, const config_option_t *o, const char *value, bool append,
                      char *why, size_t whylen) WUR;

/* Frees the field option o owns in *c (wiping secrets); no-op for a *_file key. */
void config_value_free(config_t *c, const config_option_t *o);

/* True when option o holds the same value in *a and *b. */
bool config_value_equal(const config_option_t *o, const config_t *a, const config_t *b);

/* Exchanges option o's field (and a list's count) between *a and *b. */
void config_value_swap(const config_option_t *o, config_t *a, config_t *b);

/* True when option o's value is a list: comma-separated, may continue on indented lines. */
bool config_value_is_list(const config_option_t *o);

/* False for a *_file key, which fills the field of the key it is exclusive with. */
bool config_value_owns_field(const config_option_t *o);

/*
 * Parses an optionally negative decimal integer, the whole string, into
 * *out. Returns false for anything else or overflow; *out is then untouched.
 */
bool config_value_parse_int(const char *s, int64_t *out) WUR;

/*
 * Writes into buf[len] a short, printable, quoted rendering of a non-secret
 * value for an error message and returns buf (empty when len < 8).
 */
const char *config_value_show(char *buf, size_t len, const char *s);

/*
 * Appends a copy of s[0..len) to the list *items of *n entries. Returns
 * false on allocation failure; the list is then unchanged.
 */
bool config_value_list_push(char ***items, size_t *n, const char *s, size_t len) WUR;

/* True when one of the n entries of items equals s. */
bool config_value_list_has(char *const *items, size_t n, const char *s);

/* Frees the n entries of items and the array, wiping each first if `wipe`. Accepts NULL. */
void config_value_list_free(char **items, size_t n, bool wipe);

#endif
