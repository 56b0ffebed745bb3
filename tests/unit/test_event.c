/*
 * Unit tests for event: timestamp parsing, secret scrubbing, validation and
 * flattening of envelopes into mirror rows, and page parsing.  The recorded
 * payloads in tests/unit/data/recorded-events.jsonl carry the quirks real
 * WorkOS payloads have (secrets included, optional fields missing).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_reader.h"
#include "clock.h"
#include "event.h"
#include "runner.h"

static const struct {
    const char *text;
    bool ok;
    int64_t ms; /* checked when ok and ms != -1 */
} time_cases[] = {
    {"1970-01-01T00:00:00Z", true, 0},
    {"1970-01-01T00:00:01.5Z", true, 1500},
    {"1970-01-01T00:00:01.123456789Z", true, 1123},
    {"1970-01-01T01:00:00+01:00", true, 0},
    {"1970-01-01T00:00:00-0130", true, 5400000},
    {"2026-11-26T02:09:35.722Z", true, 1795658975722},
    {"2024-02-29T00:00:00z", true, -1},
    {"2026-11-26 02:09:35Z", true, -1},
    {"2023-02-29T00:00:00Z", false, 0},
    {"2026-13-01T00:00:00Z", false, 0},
    {"2026-11-26T24:00:00Z", false, 0},
    {"2026-11-26T02:60:00Z", false, 0},
    {"2026-11-26T02:09:35", false, 0},
    {"2026-11-26T02:09:35.Z", false, 0},
    {"2026-11-26T02:09:35.1234567890Z", false, 0},
    {"2026-11-26T02:09:35Zjunk", false, 0},
    {"0000-01-01T00:00:00Z", false, 0},
    {"garbage", false, 0},
    {"", false, 0},
};

START_TEST(test_parse_time)
{
    int64_t ms = -42;
    bool ok = clock_parse_iso8601(time_cases[_i].text, &ms);
    ck_assert_msg(ok == time_cases[_i].ok, "%s: expected %s", time_cases[_i].text,
                  time_cases[_i].ok ? "valid" : "invalid");
    if (ok && time_cases[_i].ms != -1)
        ck_assert_msg(ms == time_cases[_i].ms, "%s: got %lld", time_cases[_i].text, (long long)ms);
}
END_TEST

/* A fetch window's bounds: formatted, then read back to the same millisecond. */
START_TEST(test_format_time)
{
    static const int64_t cases[] = {0,
                                    1,
                                    999,
                                    1000,
                                    INT64_C(1767225600000) /* 2026-01-01 */,
                                    INT64_C(1767225600001),
                                    INT64_C(1796130446580),
                                    INT64_C(951782400123) /* 2000-02-29 */};
    char text[CLOCK_ISO8601_LEN];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t back = -1;
        clock_format_iso8601(cases[i], text);
        ck_assert_msg(clock_parse_iso8601(text, &back), "%s does not parse", text);
        ck_assert_msg(back == cases[i], "%lld -> %s -> %lld", (long long)cases[i], text,
                      (long long)back);
    }
    ck_assert_str_eq(clock_format_iso8601(INT64_C(1767225600250), text),
                     "2026-01-01T00:00:00.250Z");
}
END_TEST

static const struct {
    const char *json;
    const char *gone[2]; /* fields that must be removed from data */
    const char *kept;    /* a field that must survive */
    size_t removed;
} scrub_cases[] = {
    {"{\"event\":\"invitation.created\",\"data\":{\"object\":\"invitation\",\"email\":\"a@b\","
     "\"token\":\"T\",\"accept_invitation_url\":\"U\"}}",
     {"token", "accept_invitation_url"},
     "email",
     2},
    {"{\"event\":\"magic_auth.created\",\"data\":{\"id\":\"m\",\"code\":\"123456\"}}",
     {"code", NULL},
     "id",
     1},
    {"{\"event\":\"email_verification.created\",\"data\":{\"id\":\"e\",\"code\":\"9\"}}",
     {"code", NULL},
     "id",
     1},
    {"{\"event\":\"password_reset.created\",\"data\":{\"id\":\"p\",\"token\":\"T\","
     "\"password_reset_url\":\"U\"}}",
     {"token", "password_reset_url"},
     "id",
     2},
    {"{\"event\":\"api_key.created\",\"data\":{\"id\":\"k\",\"value\":\"sk_secret\","
     "\"obfuscated_value\":\"sk_...t\"}}",
     {"value", NULL},
     "obfuscated_value",
     1},
    /* matched by data.object when the type is new */
    {"{\"event\":\"invitation.future\",\"data\":{\"object\":\"invitation\",\"token\":\"T\"}}",
     {"token", NULL},
     "object",
     1},
    {"{\"event\":\"some.thing\",\"data\":{\"object\":\"api_key\",\"value\":\"v\",\"id\":\"x\"}}",
     {"value", NULL},
     "id",
     1},
    /* a user's fields named like secrets of other objects are data */
    {"{\"event\":\"user.updated\",\"data\":{\"object\":\"user\",\"code\":\"c\",\"token\":\"t\"}}",
     {NULL, NULL},
     "token",
     0},
};

START_TEST(test_scrub)
{
    cJSON *e = cJSON_Parse(scrub_cases[_i].json);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(event_scrub(e), scrub_cases[_i].removed);
    cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
    for (int f = 0; f < 2; f++)
        if (scrub_cases[_i].gone[f] != NULL)
            ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(data, scrub_cases[_i].gone[f]));
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(data, scrub_cases[_i].kept));
    cJSON_Delete(e);
}
END_TEST

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Finishes a batch: every array it has can be sent. */
static void finish(event_batch_t *b)
{
    for (int i = 0; i < EVENT_LOG_ARRAYS; i++)
        ck_assert_ptr_nonnull(pg_array_finish(&b->log[i]));
    for (int t = 0; t < MIRROR_COUNT; t++)
        for (size_t c = 0;
             c < EVENT_MIRROR_EXTRA_ARRAYS + event_mirror((mirror_table_t)t)->n_columns; c++)
            ck_assert_ptr_nonnull(pg_array_finish(&b->mirror[t][c]));
}

/*
 * Reads back column `i` of mirror table `t` from a batch (finishing it).
 * The whole-object column has no elements: the apply statement takes it
 * from the log's data.
 */
static char **mirror_column_at(event_batch_t *b, mirror_table_t t, size_t i, uint32_t *n)
{
    char **elems;
    const mirror_def_t *m = event_mirror(t);
    bool whole = i >= EVENT_MIRROR_EXTRA_ARRAYS &&
                 !event_mirror_sent(&m->columns[i - EVENT_MIRROR_EXTRA_ARRAYS]);
    const char *v = pg_array_finish(&b->mirror[t][i]);
    ck_assert_ptr_nonnull(v);
    ck_assert(array_read(v, b->mirror[t][i].len, &elems, n));
    ck_assert_uint_eq(*n, whole ? 0 : b->n_rows[t]);
    return elems;
}

/* Column `name` of mirror table `t`: one of its columns, or seq, event_id, deleted_at. */
static char **mirror_column(event_batch_t *b, mirror_table_t t, const char *name, uint32_t *n)
{
    static const char *const extra[EVENT_MIRROR_EXTRA_ARRAYS] = {"seq", "event_id", "deleted_at"};
    const mirror_def_t *m = event_mirror(t);
    for (size_t i = 0; i < EVENT_MIRROR_EXTRA_ARRAYS + m->n_columns; i++) {
        const char *col = i < EVENT_MIRROR_EXTRA_ARRAYS
                              ? extra[i]
                              : m->columns[i - EVENT_MIRROR_EXTRA_ARRAYS].name;
        if (strcmp(col, name) == 0)
            return mirror_column_at(b, t, i, n);
    }
    ck_abort_msg("%s has no column %s", m->table, name);
    return NULL;
}

/* The recorded payloads all decode, and nothing secret reaches the params. */
START_TEST(test_recorded_events)
{
    char *text = read_file("tests/unit/data/recorded-events.jsonl");
    event_batch_t *b = event_batch_new();
    char why[160];
    size_t lines = 0;

    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        cJSON *e = cJSON_Parse(line);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(event_batch_add(b, e, why, sizeof(why)), EVENT_OK);
        lines++;
    }
    ck_assert_uint_eq(b->n_events, lines);
    ck_assert_str_eq(b->last_id, "evt_01M8ASV6E29FAMGFV6C4JW9FZS");

    finish(b);
    char **data;
    uint32_t n;
    ck_assert(array_read(pg_array_finish(&b->log[3]), b->log[3].len, &data, &n));
    ck_assert_uint_eq(n, lines);
    bool quoted = false;
    for (uint32_t i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(data[i]);
        ck_assert_ptr_null(strstr(data[i], "\"token\""));
        ck_assert_ptr_null(strstr(data[i], "accept_invitation_url"));
        ck_assert_ptr_null(strstr(data[i], "9b3a20ed4f2afc628bd480b8fc603896"));
        quoted = quoted || strstr(data[i], "O'Brien \\\"quoted\\\"") != NULL;
    }
    ck_assert_msg(quoted, "data is JSON text, with its escapes");
    array_elems_free(data, n);

    /* Three membership events, the last one a tombstone.  role.slug is
     * flattened; an absent organization_name is NULL. */
    uint32_t rows, k;
    char **ids = mirror_column(b, MIRROR_MEMBERSHIPS, "id", &rows);
    char **slugs = mirror_column(b, MIRROR_MEMBERSHIPS, "role_slug", &k);
    char **org_names = mirror_column(b, MIRROR_MEMBERSHIPS, "organization_name", &k);
    char **deleted = mirror_column(b, MIRROR_MEMBERSHIPS, "deleted_at", &k);
    ck_assert_uint_eq(rows, 3);
    ck_assert_str_eq(ids[0], "om_01M8ASV32PQBNRESNMQAMZ13WN");
    ck_assert_str_eq(slugs[0], "member");
    ck_assert_ptr_null(org_names[0]);
    ck_assert_ptr_null(deleted[0]);
    ck_assert_str_eq(deleted[2], "2026-11-26T02:09:39.762Z");
    array_elems_free(ids, rows);
    array_elems_free(slugs, rows);
    array_elems_free(org_names, rows);
    array_elems_free(deleted, rows);

    /* Authentication events are logged but mirror nothing. */
    size_t mirrored = 0;
    for (int t = 0; t < MIRROR_COUNT; t++)
        mirrored += b->n_rows[t];
    ck_assert_uint_eq(mirrored, lines - 2);

    /* No invitation column carries the token; the revocation is a state. */
    const mirror_def_t *def = event_mirror(MIRROR_INVITATIONS);
    bool revoked = false;
    for (size_t c = 0; c < EVENT_MIRROR_EXTRA_ARRAYS + def->n_columns; c++) {
        char **col = mirror_column_at(b, MIRROR_INVITATIONS, c, &rows);
        for (uint32_t r = 0; r < rows; r++) {
            ck_assert(col[r] == NULL || strstr(col[r], "token") == NULL);
            if (c >= EVENT_MIRROR_EXTRA_ARRAYS &&
                strcmp(def->columns[c - EVENT_MIRROR_EXTRA_ARRAYS].name, "state") == 0)
                revoked = revoked || (col[r] != NULL && strcmp(col[r], "revoked") == 0);
        }
        array_elems_free(col, rows);
    }
    ck_assert(revoked);
    event_batch_free(b);
    free(text);
}
END_TEST

#define LONG_ID16 "0123456789abcdef"
#define LONG_ID                                                                                    \
    LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16      \
        LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 LONG_ID16 "x"

static const struct {
    const char *json;
    event_status_t status;
} add_cases[] = {
    {"{\"id\":\"e1\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":{\"id\":\"u\",\"updated_at\":\"2026-01-01T00:00:00Z\",\"email\":\"x\"}}",
     EVENT_OK},
    {"{\"id\":\"e2\",\"event\":\"brand_new.thing\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":{\"x\":1}}",
     EVENT_UNKNOWN},
    {"{\"id\":\"e3\",\"event\":\"user.updated\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":{\"id\":\"u\",\"updated_at\":\"garbage\"}}",
     EVENT_MALFORMED},
    {"{\"id\":\"e4\",\"event\":\"user.updated\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":\"not an object\"}",
     EVENT_MALFORMED},
    {"{\"id\":\"e5\",\"event\":\"user.updated\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":{\"updated_at\":\"2026-01-01T00:00:00Z\"}}",
     EVENT_MALFORMED},
    {"{\"id\":\"e6\",\"event\":\"user.updated\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":{\"id\":\"u\",\"updated_at\":\"2026-01-01T00:00:00Z\",\"email_verified\":\"yes\"}}",
     EVENT_MALFORMED},
    {"{\"id\":\"e7\",\"event\":\"organization_membership.updated\",\"created_at\":"
     "\"2026-01-01T00:00:00Z\",\"data\":{\"id\":\"m\",\"updated_at\":\"2026-01-01T00:00:00Z\","
     "\"role\":\"admin\"}}",
     EVENT_MALFORMED},
    {"{\"id\":\"e8\",\"event\":\"session.created\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":{\"id\":\"s\",\"updated_at\":\"2026-01-01T00:00:00Z\",\"expires_at\":\"soon\"}}",
     EVENT_MALFORMED},
    {"{\"id\":\"e9\",\"event\":\"authentication.sso_failed\",\"created_at\":"
     "\"2026-01-01T00:00:00Z\",\"data\":{\"type\":\"sso\"}}",
     EVENT_OK},
    {"{\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\",\"data\":{}}",
     EVENT_INVALID},
    {"{\"id\":\"\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":{}}",
     EVENT_INVALID},
    {"{\"id\":\"e10\",\"created_at\":\"2026-01-01T00:00:00Z\",\"data\":{}}", EVENT_INVALID},
    {"{\"id\":\"e11\",\"event\":\"user.created\",\"created_at\":\"yesterday\",\"data\":{}}",
     EVENT_INVALID},
    {"{\"id\":\"e12\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\"}",
     EVENT_MALFORMED},
    {"{\"id\":\"e12b\",\"event\":\"authentication.sso_failed\",\"created_at\":"
     "\"2026-01-01T00:00:00Z\",\"data\":null}",
     EVENT_MALFORMED},
    {"[1,2,3]", EVENT_INVALID},
    /* PostgreSQL would refuse these and fail the whole batch. */
    {"{\"id\":\"e13\",\"event\":\"authentication.sso_failed\",\"created_at\":"
     "\"2026-01-01T00:00:00Z\",\"data\":{\"email\":\"\xff\xfe\"}}",
     EVENT_INVALID},
    {"{\"id\":\"e14\",\"event\":\"authentication.sso_failed\",\"created_at\":"
     "\"2026-01-01T00:00:00Z\",\"data\":{\"\xc0\xaf\":1}}",
     EVENT_INVALID},
    {"{\"id\":\"e15\",\"event\":\"authentication.sso_failed\",\"created_at\":"
     "\"2026-01-01T00:00:00Z\",\"data\":{\"a\":[{\"b\":\"\xed\xa0\x80\"}]}}",
     EVENT_INVALID},
    {"{\"id\":\"e16\",\"event\":\"authentication.sso_failed\",\"created_at\":"
     "\"2026-01-01T00:00:00Z\",\"data\":{\"name\":\"\xe6\x97\xa5\xf0\x9f\x8e\x89\"}}",
     EVENT_OK},
    {"{\"id\":\"" LONG_ID "\",\"event\":\"user.created\",\"created_at\":"
     "\"2026-01-01T00:00:00Z\",\"data\":{}}",
     EVENT_INVALID},
    {"{\"id\":\"e17\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\","
     "\"data\":{\"id\":\"" LONG_ID "\",\"updated_at\":\"2026-01-01T00:00:00Z\"}}",
     EVENT_MALFORMED},
};

/* Adds one envelope, expecting `want`. */
static void add_one(event_batch_t *b, const char *json, event_status_t want)
{
    char why[160];
    cJSON *e = cJSON_Parse(json);
    ck_assert_ptr_nonnull(e);
    event_status_t st = event_batch_add(b, e, why, sizeof(why));
    ck_assert_msg(st == want, "%s: got %d (%s)", json, (int)st, why);
}

/* Column `name` of the only row of table `t`, compared with `want` (NULL: SQL NULL). */
static void assert_cell(event_batch_t *b, mirror_table_t t, const char *name, const char *want)
{
    uint32_t n;
    char **col = mirror_column(b, t, name, &n);
    ck_assert_uint_eq(n, 1);
    if (want == NULL)
        ck_assert_msg(col[0] == NULL, "%s: got %s", name, col[0]);
    else
        ck_assert_msg(col[0] != NULL && strcmp(col[0], want) == 0, "%s: got %s, want %s", name,
                      col[0] ? col[0] : "NULL", want);
    array_elems_free(col, n);
}

/*
 * A deletion with a usable id tombstones the object, however little else
 * its payload holds: no updated_at, fields of the wrong type (left out).
 */
static const struct {
    const char *type;
    mirror_table_t table;
    const char *data;
    event_status_t status;
} trimmed_cases[] = {
    {"user.deleted", MIRROR_USERS, "{\"id\":\"user_1\"}", EVENT_OK},
    {"user.deleted", MIRROR_USERS, "{\"id\":\"user_1\",\"object\":\"user\"}", EVENT_OK},
    {"organization_membership.deleted", MIRROR_MEMBERSHIPS, "{\"id\":\"om_1\"}", EVENT_OK},
    {"organization.deleted", MIRROR_ORGANIZATIONS, "{\"id\":\"org_1\"}", EVENT_OK},
    {"api_key.revoked", MIRROR_API_KEYS, "{\"id\":\"key_1\",\"owner\":\"not an object\"}",
     EVENT_OK},
    {"user.deleted", MIRROR_USERS,
     "{\"id\":\"user_1\",\"updated_at\":\"garbage\",\"email_verified\":\"yes\"}", EVENT_OK},
    {"user.deleted", MIRROR_USERS, "{\"email\":\"a@b\"}", EVENT_MALFORMED},
    {"user.deleted", MIRROR_USERS, "{\"id\":\"\"}", EVENT_MALFORMED},
    {"user.deleted", MIRROR_USERS, "{\"id\":42}", EVENT_MALFORMED},
};

START_TEST(test_trimmed_delete)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"id\":\"evt_1\",\"event\":\"%s\",\"created_at\":\"2026-01-02T00:00:00Z\","
             "\"data\":%s}",
             trimmed_cases[_i].type, trimmed_cases[_i].data);
    event_batch_t *b = event_batch_new();
    mirror_table_t t = trimmed_cases[_i].table;
    add_one(b, json, trimmed_cases[_i].status);
    if (trimmed_cases[_i].status != EVENT_OK) {
        ck_assert_uint_eq(b->n_rows[t], 0);
        event_batch_free(b);
        return;
    }
    ck_assert_uint_eq(b->n_rows[t], 1);
    assert_cell(b, t, "deleted_at", "2026-01-02T00:00:00Z");
    assert_cell(b, t, "event_id", "evt_1");
    /* No usable updated_at: NULL, which the statement writes as -infinity
     * so that a stored row keeps its fields. */
    assert_cell(b, t, "updated_at", NULL);
    if (t == MIRROR_USERS)
        assert_cell(b, t, "email_verified", NULL);
    if (t == MIRROR_API_KEYS)
        assert_cell(b, t, "owner_id", NULL);
    event_batch_free(b);
}
END_TEST

/* A delete before the create: both are rows, the delete first in seq. */
START_TEST(test_delete_before_create)
{
    event_batch_t *b = event_batch_new();
    add_one(b,
            "{\"id\":\"evt_1\",\"event\":\"user.deleted\",\"created_at\":\"2026-01-02T00:00:00Z\","
            "\"data\":{\"id\":\"user_1\"}}",
            EVENT_OK);
    add_one(b,
            "{\"id\":\"evt_2\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\","
            "\"data\":{\"id\":\"user_1\",\"updated_at\":\"2026-01-01T00:00:00Z\"}}",
            EVENT_OK);
    uint32_t n;
    char **seq = mirror_column(b, MIRROR_USERS, "seq", &n);
    char **del = mirror_column(b, MIRROR_USERS, "deleted_at", &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(seq[0], "0");
    ck_assert_str_eq(del[0], "2026-01-02T00:00:00Z");
    ck_assert_ptr_null(del[1]);
    array_elems_free(seq, n);
    array_elems_free(del, n);
    event_batch_free(b);
}
END_TEST

/* The revocation is the type's word, whatever the payload's status says. */
static const struct {
    const char *type;
    mirror_table_t table;
    const char *data;
    const char *column, *want;
} revoked_cases[] = {
    {"session.revoked", MIRROR_SESSIONS,
     "{\"id\":\"s_1\",\"user_id\":\"user_1\",\"status\":\"active\",\"updated_at\":"
     "\"2026-01-01T00:00:00Z\"}",
     "status", "revoked"},
    {"session.revoked", MIRROR_SESSIONS,
     "{\"id\":\"s_1\",\"status\":7,\"updated_at\":\"2026-01-01T00:00:00Z\"}", "status", "revoked"},
    {"session.revoked", MIRROR_SESSIONS,
     "{\"id\":\"s_1\",\"user_id\":\"user_1\",\"updated_at\":\"2026-01-01T00:00:00Z\"}", "user_id",
     "user_1"},
    {"invitation.revoked", MIRROR_INVITATIONS,
     "{\"id\":\"inv_1\",\"state\":\"pending\",\"updated_at\":\"2026-01-01T00:00:00Z\"}", "state",
     "revoked"},
    {"session.created", MIRROR_SESSIONS,
     "{\"id\":\"s_1\",\"status\":\"active\",\"updated_at\":\"2026-01-01T00:00:00Z\"}", "status",
     "active"},
    {"invitation.accepted", MIRROR_INVITATIONS,
     "{\"id\":\"inv_1\",\"state\":\"accepted\",\"updated_at\":\"2026-01-01T00:00:00Z\"}", "state",
     "accepted"},
};

START_TEST(test_revoked_state)
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"id\":\"evt_1\",\"event\":\"%s\",\"created_at\":\"2026-01-02T00:00:00Z\","
             "\"data\":%s}",
             revoked_cases[_i].type, revoked_cases[_i].data);
    event_batch_t *b = event_batch_new();
    add_one(b, json, EVENT_OK);
    assert_cell(b, revoked_cases[_i].table, revoked_cases[_i].column, revoked_cases[_i].want);
    assert_cell(b, revoked_cases[_i].table, "deleted_at", NULL);
    event_batch_free(b);
}
END_TEST

START_TEST(test_batch_add)
{
    event_batch_t *b = event_batch_new();
    char why[160];
    cJSON *e = cJSON_Parse(add_cases[_i].json);
    ck_assert_ptr_nonnull(e);
    event_status_t st = event_batch_add(b, e, why, sizeof(why));
    ck_assert_msg(st == add_cases[_i].status, "case %d: got %d (%s)", _i, (int)st, why);
    if (st != EVENT_OK)
        ck_assert_msg(why[0] != '\0', "a rejection says why");
    /* Everything but an invalid envelope is kept for the log. */
    ck_assert_uint_eq(b->n_events, st == EVENT_INVALID ? 0 : 1);
    ck_assert_uint_eq(b->n_malformed, st == EVENT_MALFORMED ? 1 : 0);
    size_t rows = 0;
    for (int t = 0; t < MIRROR_COUNT; t++)
        rows += b->n_rows[t];
    /* Every array of the batch has exactly one element per row. */
    finish(b);
    for (int i = 0; i < EVENT_LOG_ARRAYS; i++) {
        char **elems;
        uint32_t n;
        const char *v = pg_array_finish(&b->log[i]);
        ck_assert(v != NULL && array_read(v, b->log[i].len, &elems, &n));
        ck_assert_uint_eq(n, b->n_events);
        array_elems_free(elems, n);
    }
    for (int t = 0; t < MIRROR_COUNT; t++)
        for (size_t c = 0;
             c < EVENT_MIRROR_EXTRA_ARRAYS + event_mirror((mirror_table_t)t)->n_columns; c++) {
            uint32_t n = 0;
            char **col = mirror_column_at(b, (mirror_table_t)t, c, &n);
            array_elems_free(col, n);
        }
    ck_assert_uint_eq(rows, st == EVENT_OK && strstr(add_cases[_i].json, "user.") ? 1 : 0);
    event_batch_free(b);
}
END_TEST

START_TEST(test_classify)
{
    mirror_table_t t = MIRROR_COUNT;
    bool known;
    ck_assert_int_eq(event_classify("api_key.revoked", &t, &known), EVENT_ACTION_TOMBSTONE);
    ck_assert(known);
    ck_assert_int_eq(t, MIRROR_API_KEYS);
    ck_assert_int_eq(event_classify("invitation.revoked", &t, &known), EVENT_ACTION_UPSERT);
    ck_assert_int_eq(t, MIRROR_INVITATIONS);
    ck_assert_int_eq(event_classify("session.revoked", &t, &known), EVENT_ACTION_UPSERT);
    ck_assert_int_eq(event_classify("organization.deleted", &t, &known), EVENT_ACTION_TOMBSTONE);
    ck_assert_int_eq(event_classify("authentication.mfa_failed", &t, &known), EVENT_ACTION_LOG);
    ck_assert(known);
    ck_assert_int_eq(event_classify("dsync.user.created", &t, &known), EVENT_ACTION_LOG);
    ck_assert(!known);
    /* A type new to a logged family is known; every listed type is known. */
    ck_assert_int_eq(event_classify("authentication.brand_new", &t, &known), EVENT_ACTION_LOG);
    ck_assert(known);
    size_t n = 0;
    for (const char *type; (type = event_known_type(n)) != NULL; n++) {
        t = MIRROR_COUNT;
        event_action_t a = event_classify(type, &t, &known);
        ck_assert_msg(known, "%s", type);
        ck_assert_msg(a == EVENT_ACTION_LOG || t < MIRROR_COUNT, "%s has no table", type);
    }
    ck_assert_uint_ge(n, 17);
}
END_TEST

static const struct {
    const char *body;
    bool ok;
    size_t n;
    const char *after;
} page_cases[] = {
    {"{\"data\":[],\"list_metadata\":{\"after\":null}}", true, 0, NULL},
    {"{\"data\":[{\"id\":\"a\",\"created_at\":\"2026-01-01T00:00:00Z\"},{\"id\":\"b\","
     "\"created_at\":\"2026-01-01T00:00:00Z\"}],\"list_metadata\":{\"after\":\"b\"}}",
     true, 2, "b"},
    {"{\"data\":[{\"id\":\"a\",\"created_at\":\"2026-01-02T00:00:00Z\"},{\"id\":\"b\","
     "\"created_at\":\"2026-01-01T00:00:00Z\"}]}",
     false, 0, NULL},
    {"{\"data\":[{\"id\":\"a\"", false, 0, NULL},
    {"{\"data\":[]}\n", true, 0, NULL},
    {"{\"data\":[]} {\"data\":[]}", false, 0, NULL},
    {"{\"object\":\"list\"}", false, 0, NULL},
    {"<html>502</html>", false, 0, NULL},
    {"", false, 0, NULL},
};

/* A case is ok when the page parses and is in order on its own. */
START_TEST(test_page_parse)
{
    event_page_t page;
    char err[160] = "";
    bool older = true;
    const char *body = page_cases[_i].body;
    bool parsed = event_page_parse(&page, body, strlen(body), err, sizeof(err));
    bool ok = parsed && event_page_in_order(&page, 0, &older, err, sizeof(err));
    ck_assert_msg(ok == page_cases[_i].ok, "case %d: %s", _i, err);
    if (parsed && !ok) {
        ck_assert(!older); /* nothing before the page to be older than */
        ck_assert(err[0] != '\0');
    } else if (ok) {
        ck_assert_uint_eq(page.n, page_cases[_i].n);
        if (page_cases[_i].after)
            ck_assert_str_eq(page.after, page_cases[_i].after);
        else
            ck_assert_ptr_null(page.after);
    } else {
        ck_assert(err[0] != '\0');
        ck_assert_ptr_null(page.root);
    }
    event_page_free(&page);
}
END_TEST

/* Only whitespace may follow the value; depth and size are bounded. */
static const struct {
    const char *json;
    bool ok;
} parse_cases[] = {
    {"{}", true},
    {" {\"a\":1} \t\r\n", true},
    {"{} xyz", false},
    {"{\"a\":1}}", false},
    {"{}{}", false},
    {"[1] 2", false},
    {"{\"a\":\"[[[[\"}", true},
    {"", false},
    {"   ", false},
    {"{\"a\":", false},
};

START_TEST(test_parse_json)
{
    char err[128] = "";
    const char *j = parse_cases[_i].json;
    cJSON *v = event_parse_json(j, strlen(j), err, sizeof(err));
    ck_assert_msg((v != NULL) == parse_cases[_i].ok, "%s: %s", j, err);
    if (v == NULL)
        ck_assert(err[0] != '\0');
    cJSON_Delete(v);
}
END_TEST

/*
 * \u escapes of UTF-16 surrogates that are not half of a pair, and of NUL
 * (JSON's grammar allows them; jsonb stores neither): the document parses,
 * each becomes U+FFFD and everything else is as sent.  A pair, an escaped
 * backslash before "u" and other escapes are untouched; a truncated
 * escape is still invalid JSON.
 */
static const struct {
    const char *json;
    const char *want; /* the value of "a", UTF-8; NULL: not valid JSON */
} surrogate_cases[] = {
    {"{\"a\":\"Ann \\ud83d\"}", "Ann \xEF\xBF\xBD"},
    {"{\"a\":\"\\ude00x\"}", "\xEF\xBF\xBDx"},
    {"{\"a\":\"\\ud83d\\ude00\"}", "\xF0\x9F\x98\x80"},
    {"{\"a\":\"\\uD83D\\u0041\"}", "\xEF\xBF\xBD"
                                   "A"},
    {"{\"a\":\"\\ud83d\\ud83d\\ude00\"}", "\xEF\xBF\xBD\xF0\x9F\x98\x80"},
    {"{\"a\":\"\\\\ud83d\"}", "\\ud83d"},
    {"{\"a\":\"\\u00e9\\n\"}", "\xC3\xA9\n"},
    {"{\"a\":\"ab\\u0000cd\"}", "ab\xEF\xBF\xBD"
                                "cd"},
    {"{\"a\":\"\\ud83\"}", NULL},
    {"{\"a\":\"\\ud83d", NULL},
};

START_TEST(test_parse_lone_surrogates)
{
    char err[128] = "";
    const char *j = surrogate_cases[_i].json;
    cJSON *v = event_parse_json(j, strlen(j), err, sizeof(err));
    if (surrogate_cases[_i].want == NULL) {
        ck_assert_msg(v == NULL, "%s parsed", j);
        return;
    }
    ck_assert_msg(v != NULL, "%s: %s", j, err);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "a")),
                     surrogate_cases[_i].want);
    cJSON_Delete(v);
}
END_TEST

/* Nesting: EVENT_MAX_DEPTH levels parse, one more is refused before parsing. */
static char *nested(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < depth; i++) {
        s[i] = '[';
        s[2 * depth - 1 - i] = ']';
    }
    s[2 * depth] = '\0';
    return s;
}

START_TEST(test_parse_bounds)
{
    char err[128];
    char *ok = nested(EVENT_MAX_DEPTH), *deep = nested(EVENT_MAX_DEPTH + 1);
    cJSON *v = event_parse_json(ok, strlen(ok), err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    cJSON_Delete(v);
    ck_assert_ptr_null(event_parse_json(deep, strlen(deep), err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "nested"));
    /* Far deeper than cJSON's own limit: refused, no crash. */
    char *abyss = nested(200000);
    ck_assert_ptr_null(event_parse_json(abyss, strlen(abyss), err, sizeof(err)));
    /* The size is checked before a byte is read. */
    ck_assert_ptr_null(event_parse_json(ok, (size_t)EVENT_MAX_BYTES + 1, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "bytes"));
    /* A page is bounded the same way. */
    event_page_t page;
    static const char trailing[] = "{\"data\":[]} xyz";
    ck_assert(!event_page_parse(&page, trailing, strlen(trailing), err, sizeof(err)));
    ck_assert_ptr_null(page.root);
    ck_assert(!event_page_parse(&page, deep, strlen(deep), err, sizeof(err)));
    free(ok);
    free(deep);
    free(abyss);
}
END_TEST

/* The "no data" rule: absent or JSON null is no data; anything else is data. */
static const struct {
    const char *json;
    bool has;
} data_cases[] = {
    {"{\"id\":\"e\"}", false}, {"{\"id\":\"e\",\"data\":null}", false},
    {"{\"data\":{}}", true},   {"{\"data\":false}", true},
    {"{\"data\":\"\"}", true}, {"[1]", false},
};

START_TEST(test_has_data)
{
    cJSON *e = cJSON_Parse(data_cases[_i].json);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(event_has_data(e) == data_cases[_i].has, "%s", data_cases[_i].json);
    cJSON_Delete(e);
    ck_assert(!event_has_data(NULL));
}
END_TEST

START_TEST(test_peek)
{
    char id[8], type[32];
    cJSON *e = cJSON_Parse("{\"id\":\"event_0123456789\",\"event\":\"user.created\"}");
    event_peek(e, id, sizeof(id), type, sizeof(type));
    ck_assert_str_eq(id, "event_0"); /* cut to fit */
    ck_assert_str_eq(type, "user.created");
    cJSON_Delete(e);
    e = cJSON_Parse("{\"id\":7,\"event\":null}");
    event_peek(e, id, sizeof(id), type, sizeof(type));
    ck_assert_str_eq(id, "-");
    ck_assert_str_eq(type, "-");
    cJSON_Delete(e);
    event_peek(NULL, id, sizeof(id), type, sizeof(type));
    ck_assert_str_eq(id, "-");
    ck_assert_str_eq(type, "-");
}
END_TEST

/* Parses `body`, which must parse, and reads its order after `after_ms`. */
static bool in_order_after(event_page_t *page, const char *body, int64_t after_ms, bool *older,
                           char *err, size_t errlen)
{
    ck_assert(event_page_parse(page, body, strlen(body), err, errlen));
    return event_page_in_order(page, after_ms, older, err, errlen);
}

/*
 * A page follows the previous one unless its first event is older by the
 * skew or more; it ascends (what windows need) only if it is not older at all.
 */
START_TEST(test_page_follows)
{
    static const char body[] =
        "{\"data\":[{\"id\":\"a\",\"created_at\":\"1970-01-01T00:00:02Z\"}]}";
    static const char untimed[] = "{\"data\":[{\"id\":\"a\"}]}";
    static const char empty[] = "{\"data\":[]}";
    event_page_t page;
    char err[160];
    bool older;
    ck_assert(in_order_after(&page, body, 0, &older, err, sizeof(err)));
    ck_assert(event_page_in_order(&page, 1000, &older, err, sizeof(err)));
    ck_assert(event_page_in_order(&page, 2000, &older, err, sizeof(err))); /* equal times */
    ck_assert(event_page_in_order(&page, 2001, &older, err, sizeof(err))); /* within the skew */
    ck_assert(event_page_in_order(&page, 2000 + EVENT_ORDER_SKEW_MS - 1, &older, err, sizeof(err)));
    ck_assert(!event_page_in_order(&page, 2000 + EVENT_ORDER_SKEW_MS, &older, err, sizeof(err)));
    ck_assert(older);
    ck_assert_str_eq(err, "events out of order across pages");
    ck_assert(event_page_ascends(&page, 0));
    ck_assert(event_page_ascends(&page, 2000));
    ck_assert(!event_page_ascends(&page, 2001));
    event_page_free(&page);
    ck_assert(in_order_after(&page, untimed, 5000, &older, err, sizeof(err)));
    event_page_free(&page);
    ck_assert(in_order_after(&page, empty, 5000, &older, err, sizeof(err)));
    event_page_free(&page);
}
END_TEST

#define AT(id, t) "{\"id\":\"" id "\",\"created_at\":\"1970-01-01T00:00:" t "Z\"}"

/*
 * Within a page, an event listed less than the skew before the newest one
 * ahead of it is in order (clocks of different servers), one listed the
 * skew or more before it is not, and small steps back do not add up to a
 * descending page: each is measured from the newest so far, the pages'
 * before it included.
 */
START_TEST(test_page_order_skew)
{
    static const char small_step[] =
        "{\"data\":[" AT("a", "02.000") "," AT("b", "01.001") "," AT("c", "03.000") "]}";
    static const char skew_back[] =
        "{\"data\":[" AT("a", "02.000") "," AT("b", "01.000") "," AT("c", "03.000") "]}";
    static const char creeping[] = "{\"data\":[" AT("a", "02.000") "," AT("b", "01.700") "," AT(
        "c", "01.400") "," AT("d", "01.100") "," AT("e", "00.900") "]}";
    static const char untimed_between[] =
        "{\"data\":[" AT("a", "02.000") ",{\"id\":\"x\"}," AT("b", "01.500") "]}";
    event_page_t page;
    char err[160];
    bool older;

    ck_assert(in_order_after(&page, small_step, 0, &older, err, sizeof(err)));
    ck_assert_uint_eq(page.n, 3);
    ck_assert(!event_page_ascends(&page, 0));
    /* After a page that reached 2.5 s: a is within the skew of it, b is not. */
    ck_assert(!event_page_in_order(&page, 2500, &older, err, sizeof(err)));
    ck_assert(!older);
    ck_assert_str_eq(err, "events out of order at index 1");
    event_page_free(&page);

    ck_assert(!in_order_after(&page, skew_back, 0, &older, err, sizeof(err)));
    ck_assert_str_eq(err, "events out of order at index 1");
    ck_assert(!older);
    event_page_free(&page);

    ck_assert(!in_order_after(&page, creeping, 0, &older, err, sizeof(err)));
    ck_assert_str_eq(err, "events out of order at index 4");
    event_page_free(&page);

    ck_assert(in_order_after(&page, untimed_between, 0, &older, err, sizeof(err)));
    ck_assert(!event_page_ascends(&page, 0));
    event_page_free(&page);
}
END_TEST

/*
 * An event stamped years ahead orders nothing: the page around it is in
 * order, it is no page's newest, and a page compared with such a time as
 * the one before it follows and ascends.
 */
START_TEST(test_page_order_future)
{
    static const char body[] = "{\"data\":[{\"id\":\"a\",\"created_at\":\"2026-01-01T00:00:02Z\"},"
                               "{\"id\":\"b\",\"created_at\":\"9999-12-31T00:00:00Z\"},"
                               "{\"id\":\"c\",\"created_at\":\"2026-01-01T00:00:01.500Z\"}]}";
    event_page_t page;
    char err[160];
    bool older;
    int64_t far, ms;
    ck_assert(in_order_after(&page, body, 0, &older, err, sizeof(err)));
    ck_assert(event_created_ms(page.data->child->next, &far));
    ck_assert(!event_order_ms(page.data->child->next, clock_wall_ms(), &ms));
    ck_assert(event_order_ms(page.data->child, clock_wall_ms(), &ms));
    ck_assert(clock_parse_iso8601("2026-01-01T00:00:02Z", &ms));
    ck_assert_int_eq(event_page_newest(&page), ms); /* a, not b nor the last, c */
    ck_assert(event_page_in_order(&page, far, &older, err, sizeof(err)));
    ck_assert(event_page_ascends(&page, far) == false); /* c steps back from a */
    event_page_free(&page);
    static const char later[] =
        "{\"data\":[{\"id\":\"d\",\"created_at\":\"2026-01-01T00:00:03Z\"}]}";
    ck_assert(in_order_after(&page, later, far, &older, err, sizeof(err)));
    ck_assert(event_page_ascends(&page, far));
    event_page_free(&page);
}
END_TEST

/*
 * An event stamped more than EVENT_PAST_MS before the newest ahead of it
 * (1970, a clock reset at the source) orders nothing either, whether it
 * comes first on a page, in the middle or last: the pages around it are in
 * order and ascend, and it is no page's newest.  A step back of less than
 * that is still out of order, and an API starting again from the beginning
 * (a page of the stream's first events, days back) is still older.
 */
START_TEST(test_page_order_far_back)
{
    static const char middle[] =
        "{\"data\":[{\"id\":\"a\",\"created_at\":\"2026-01-01T00:00:02Z\"},"
        "{\"id\":\"b\",\"created_at\":\"1970-01-01T00:00:00Z\"},"
        "{\"id\":\"c\",\"created_at\":\"2026-01-01T00:00:03Z\"}]}";
    static const char first[] = "{\"data\":[{\"id\":\"d\",\"created_at\":\"2000-01-01T00:00:00Z\"},"
                                "{\"id\":\"e\",\"created_at\":\"2026-01-01T00:00:04Z\"},"
                                "{\"id\":\"f\",\"created_at\":\"1970-01-01T00:00:01Z\"}]}";
    static const char only[] =
        "{\"data\":[{\"id\":\"g\",\"created_at\":\"1999-12-31T23:59:59Z\"}]}";
    static const char months[] =
        "{\"data\":[{\"id\":\"h\",\"created_at\":\"2026-01-01T00:00:05Z\"},"
        "{\"id\":\"i\",\"created_at\":\"2025-10-01T00:00:00Z\"}]}";
    static const char restart[] =
        "{\"data\":[{\"id\":\"j\",\"created_at\":\"2025-12-02T00:00:00Z\"},"
        "{\"id\":\"k\",\"created_at\":\"2025-12-02T00:00:01Z\"}]}";
    event_page_t page;
    char err[160];
    bool older;
    int64_t two, three, four;
    ck_assert(clock_parse_iso8601("2026-01-01T00:00:02Z", &two));
    ck_assert(clock_parse_iso8601("2026-01-01T00:00:03Z", &three));
    ck_assert(clock_parse_iso8601("2026-01-01T00:00:04Z", &four));

    ck_assert(in_order_after(&page, middle, 0, &older, err, sizeof(err)));
    ck_assert(event_page_in_order(&page, two, &older, err, sizeof(err)));
    ck_assert(event_page_ascends(&page, two));
    ck_assert_int_eq(event_page_newest(&page), three);
    event_page_free(&page);

    /* After the page above: first and last far back, e in order. */
    ck_assert(in_order_after(&page, first, three, &older, err, sizeof(err)));
    ck_assert(event_page_ascends(&page, three));
    ck_assert_int_eq(event_page_newest(&page), four);
    event_page_free(&page);

    /* A page of nothing but such an event follows; the newest stays 4 s. */
    ck_assert(in_order_after(&page, only, four, &older, err, sizeof(err)));
    ck_assert(event_page_ascends(&page, four));
    event_page_free(&page);

    /* Three months back is within a year: out of order, as before. */
    ck_assert(!in_order_after(&page, months, four, &older, err, sizeof(err)));
    ck_assert(!older);
    ck_assert_str_eq(err, "events out of order at index 1");
    event_page_free(&page);

    /* A month back from the first event: an API starting over, still older. */
    ck_assert(!in_order_after(&page, restart, four, &older, err, sizeof(err)));
    ck_assert(older);
    event_page_free(&page);
}
END_TEST

/*
 * The id to ask after: the last element's; else list_metadata.after; else
 * the last element that has one, so that a page ending in an element
 * without an id is not asked for again and again; NULL when none has one.
 */
START_TEST(test_page_last_id)
{
    static const struct {
        const char *body;
        const char *want;
    } cases[] = {
        {"{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"list_metadata\":{\"after\":\"z\"}}", "b"},
        {"{\"data\":[{\"id\":\"a\"},{\"x\":1}],\"list_metadata\":{\"after\":\"z\"}}", "z"},
        {"{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":7},{}]}", "b"},
        {"{\"data\":[{\"id\":\"a\"},{},{}],\"list_metadata\":{\"after\":null}}", "a"},
        {"{\"data\":[{},{\"id\":null}]}", NULL},
        {"{\"data\":[{}]}", NULL},
        {"{\"data\":[],\"list_metadata\":{\"after\":\"z\"}}", "z"},
        {"{\"data\":[]}", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        event_page_t page;
        char err[160];
        ck_assert(event_page_parse(&page, cases[i].body, strlen(cases[i].body), err, sizeof(err)));
        const char *got = event_page_last_id(&page);
        if (cases[i].want == NULL)
            ck_assert_msg(got == NULL, "case %zu: %s", i, got);
        else
            ck_assert_msg(got != NULL && strcmp(got, cases[i].want) == 0, "case %zu: %s", i,
                          got != NULL ? got : "(null)");
        event_page_free(&page);
    }
}
END_TEST

/*
 * A batch's newest created_at is its newest, not its last one's, and not
 * one stamped years ahead: the lag gauge reads it.
 */
START_TEST(test_batch_newest_created)
{
    static const char *const stamps[] = {"2026-01-01T00:00:05.000Z", "1970-01-01T00:00:01.000Z",
                                         "9999-12-31T00:00:00.000Z", "2026-01-01T00:00:04.000Z"};
    event_batch_t *b = event_batch_new();
    char why[160], text[512];
    ck_assert_int_eq(b->newest_created_ms, 0);
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        snprintf(text, sizeof(text),
                 "{\"object\":\"event\",\"id\":\"evt_n%zu\",\"event\":\"organization.updated\","
                 "\"created_at\":\"%s\",\"data\":{\"object\":\"organization\",\"id\":\"org_n\","
                 "\"name\":\"N\",\"created_at\":\"%s\",\"updated_at\":\"%s\"}}",
                 i, stamps[i], stamps[0], stamps[0]);
        cJSON *e = cJSON_Parse(text);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(event_batch_add(b, e, why, sizeof(why)), EVENT_OK);
    }
    int64_t want;
    ck_assert(clock_parse_iso8601(stamps[0], &want));
    ck_assert_int_eq(b->newest_created_ms, want);
    ck_assert_str_eq(b->last_id, "evt_n3");
    event_batch_free(b);
}
END_TEST

/* The exact bytes array_recv reads: header, lengths, -1 for NULL. */
START_TEST(test_array_layout)
{
    static const unsigned char want[] = {
        0,    0,    0,    1,    0,   0,   0, 1, 0, 0, 0, 25, 0, 0, 0, 3, 0, 0, 0, 1, /* header */
        0,    0,    0,    2,    'a', 'b',                                            /* "ab" */
        0xff, 0xff, 0xff, 0xff,                                                      /* NULL */
        0,    0,    0,    0,                                                         /* "" */
    };
    pg_array_t a;
    pg_array_init(&a);
    pg_array_add_str(&a, "ab");
    pg_array_add_str(&a, NULL);
    pg_array_add(&a, "", 0);
    const char *v = pg_array_finish(&a);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(a.len, sizeof(want));
    ck_assert_int_eq(memcmp(v, want, sizeof(want)), 0);
    pg_array_free(&a);

    static const unsigned char empty[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25};
    pg_array_init(&a);
    v = pg_array_finish(&a);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(a.len, sizeof(empty));
    ck_assert_int_eq(memcmp(v, empty, sizeof(empty)), 0);
    pg_array_free(&a);

    /* JSON is printed in place, growing the buffer past its first size. */
    cJSON *big = cJSON_CreateObject();
    char key[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        cJSON_AddStringToObject(big, key, "v\"w");
    }
    pg_array_init(&a);
    pg_array_add_json(&a, big);
    pg_array_add_json(&a, NULL);
    v = pg_array_finish(&a);
    ck_assert_ptr_nonnull(v);
    char **elems;
    uint32_t n;
    ck_assert(array_read(v, a.len, &elems, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_null(elems[1]);
    char *expect = cJSON_PrintUnformatted(big);
    ck_assert_str_eq(elems[0], expect);
    free(expect);
    array_elems_free(elems, n);
    pg_array_free(&a);
    cJSON_Delete(big);
}
END_TEST

/* The elements of a batch array, as the server would read them. */
static uint32_t elems_of(pg_array_t *a, char ***elems)
{
    uint32_t n;
    const char *v = pg_array_finish(a);
    ck_assert_ptr_nonnull(v);
    ck_assert(array_read(v, a->len, elems, &n));
    return n;
}

/*
 * A slice holds exactly its events' log rows and, when asked, their mirror
 * rows with their seq; taken after the batch was listed for sending, and
 * leaving the batch as it was.
 */
START_TEST(test_slice)
{
    static const char *const in[] = {
        "{\"id\":\"e0\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\","
        "\"data\":{\"id\":\"u0\",\"email\":\"a@x.test\",\"updated_at\":\"2026-01-01T00:00:00Z\"}}",
        "{\"id\":\"e1\",\"event\":\"organization.created\",\"created_at\":\"2026-01-01T00:00:01Z\","
        "\"data\":{\"id\":\"o1\",\"name\":\"Acme\",\"updated_at\":\"2026-01-01T00:00:01Z\"}}",
        "{\"id\":\"e2\",\"event\":\"user.updated\",\"created_at\":\"2026-01-01T00:00:02Z\","
        "\"data\":{\"id\":\"u2\",\"updated_at\":\"bad\"}}",
        "{\"id\":\"e3\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:03Z\","
        "\"data\":{\"id\":\"u3\",\"email\":null,\"updated_at\":\"2026-01-01T00:00:03Z\"},"
        "\"context\":{\"k\":1}}",
        "{\"id\":\"e4\",\"event\":\"user.deleted\",\"created_at\":\"2026-01-01T00:00:04Z\","
        "\"data\":{\"id\":\"u0\"}}",
    };
    event_batch_t *b = event_batch_new();
    char why[160];
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_ne(event_batch_add(b, cJSON_Parse(in[i]), why, sizeof(why)), EVENT_INVALID);
    for (size_t i = 0; i < EVENT_LOG_ARRAYS; i++) /* as apply_arrays leaves them */
        ck_assert_ptr_nonnull(pg_array_finish(&b->log[i]));
    size_t users_len = b->mirror[MIRROR_USERS][0].len;

    event_batch_t *s = event_batch_slice(b, 1, 4, true);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n_events, 3);
    ck_assert_str_eq(s->last_id, "e3");
    char **el;
    uint32_t n = elems_of(&s->log[0], &el);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(el[0], "e1");
    ck_assert_str_eq(el[2], "e3");
    array_elems_free(el, n);
    n = elems_of(&s->log[4], &el); /* context: NULL, NULL, {"k":1} */
    ck_assert_uint_eq(n, 3);
    ck_assert_ptr_null(el[0]);
    ck_assert_str_eq(el[2], "{\"k\":1}");
    array_elems_free(el, n);
    /* e2 is malformed (log only): the users' one row is e3's, seq kept. */
    ck_assert_uint_eq(s->n_rows[MIRROR_USERS], 1);
    ck_assert_uint_eq(s->n_rows[MIRROR_ORGANIZATIONS], 1);
    n = elems_of(&s->mirror[MIRROR_USERS][0], &el);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(el[0], "3");
    array_elems_free(el, n);
    n = elems_of(&s->mirror[MIRROR_USERS][1], &el);
    ck_assert_str_eq(el[0], "e3");
    array_elems_free(el, n);
    n = elems_of(&s->mirror[MIRROR_USERS][EVENT_MIRROR_EXTRA_ARRAYS + 1], &el); /* email */
    ck_assert_ptr_null(el[0]);
    array_elems_free(el, n);
    event_batch_free(s);

    /* Without the mirror: the log rows only. */
    s = event_batch_slice(b, 0, 5, false);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n_events, 5);
    for (int t = 0; t < MIRROR_COUNT; t++)
        ck_assert_uint_eq(s->n_rows[t], 0);
    event_batch_free(s);

    /* One event, the last: its delete row. */
    s = event_batch_slice(b, 4, 5, true);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n_rows[MIRROR_USERS], 1);
    n = elems_of(&s->mirror[MIRROR_USERS][2], &el); /* deleted_at */
    ck_assert_str_eq(el[0], "2026-01-01T00:00:04Z");
    array_elems_free(el, n);
    event_batch_free(s);

    ck_assert_ptr_null(event_batch_slice(b, 2, 2, true));
    ck_assert_ptr_null(event_batch_slice(b, 3, 6, true));

    event_row_t row;
    ck_assert(event_batch_row(b, 3, &row));
    ck_assert_int_eq(strncmp(row.value[0], "e3", row.len[0]), 0);
    ck_assert_uint_eq(row.len[0], 2);
    ck_assert_int_eq(strncmp(row.value[1], "user.created", row.len[1]), 0);
    ck_assert_int_eq(strncmp(row.value[4], "{\"k\":1}", row.len[4]), 0);
    ck_assert(event_batch_row(b, 0, &row));
    ck_assert_ptr_null(row.value[4]);
    ck_assert(!event_batch_row(b, 5, &row));
    ck_assert_uint_eq(b->mirror[MIRROR_USERS][0].len, users_len); /* untouched */
    event_batch_free(b);
}
END_TEST

/* One event of `type` whose data's `field` is `len` bytes long. */
static event_status_t add_long(const char *type, const char *field, size_t len)
{
    cJSON *e = cJSON_Parse("{\"id\":\"e\",\"created_at\":\"2026-01-01T00:00:00Z\","
                           "\"data\":{\"id\":\"x\",\"updated_at\":\"2026-01-01T00:00:00Z\"}}");
    ck_assert_ptr_nonnull(e);
    cJSON_AddStringToObject(e, "event", type);
    char *v = malloc(len + 1);
    ck_assert_ptr_nonnull(v);
    memset(v, 'x', len);
    v[len] = '\0';
    cJSON_AddStringToObject(cJSON_GetObjectItem(e, "data"), field, v);
    free(v);
    event_batch_t *b = event_batch_new();
    char why[160];
    event_status_t st = event_batch_add(b, e, why, sizeof(why));
    if (st == EVENT_MALFORMED)
        ck_assert_ptr_nonnull(strstr(why, "too long for its index"));
    event_batch_free(b);
    return st;
}

/* Text over 2,000 bytes in an indexed column is refused up front; elsewhere it is kept. */
START_TEST(test_index_bound)
{
    ck_assert_int_eq(add_long("user.created", "external_id", 2000), EVENT_OK);
    ck_assert_int_eq(add_long("user.created", "external_id", 2001), EVENT_MALFORMED);
    ck_assert_int_eq(add_long("user.updated", "email", 8000), EVENT_MALFORMED);
    ck_assert_int_eq(add_long("organization.created", "external_id", 8000), EVENT_MALFORMED);
    ck_assert_int_eq(add_long("organization_membership.created", "user_id", 8000), EVENT_MALFORMED);
    ck_assert_int_eq(add_long("session.created", "organization_id", 8000), EVENT_MALFORMED);
    ck_assert_int_eq(add_long("user.created", "first_name", 8000), EVENT_OK); /* not indexed */
    ck_assert_int_eq(add_long("organization.created", "name", 8000), EVENT_OK);
    /* A deletion still tombstones: the value is left out. */
    ck_assert_int_eq(add_long("user.deleted", "external_id", 8000), EVENT_OK);
}
END_TEST

/* Every mirror declares id first and has updated_at: the SQL relies on it. */
START_TEST(test_mirror_defs)
{
    for (int t = 0; t < MIRROR_COUNT; t++) {
        const mirror_def_t *m = event_mirror((mirror_table_t)t);
        ck_assert_str_eq(m->columns[0].name, "id");
        bool updated = false;
        for (size_t i = 0; i < m->n_columns; i++)
            updated = updated || (strcmp(m->columns[i].name, "updated_at") == 0 &&
                                  m->columns[i].type == COLUMN_TIME);
        ck_assert_msg(updated, "%s has no updated_at", m->table);
    }
    ck_assert_ptr_null(event_mirror(MIRROR_COUNT));
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("event");
    tcase_add_loop_test(tc, test_parse_time, 0, sizeof(time_cases) / sizeof(time_cases[0]));
    tcase_add_test(tc, test_format_time);
    tcase_add_loop_test(tc, test_scrub, 0, sizeof(scrub_cases) / sizeof(scrub_cases[0]));
    tcase_add_test(tc, test_recorded_events);
    tcase_add_loop_test(tc, test_batch_add, 0, sizeof(add_cases) / sizeof(add_cases[0]));
    tcase_add_test(tc, test_classify);
    tcase_add_loop_test(tc, test_page_parse, 0, sizeof(page_cases) / sizeof(page_cases[0]));
    tcase_add_test(tc, test_mirror_defs);
    tcase_add_loop_test(tc, test_has_data, 0, sizeof(data_cases) / sizeof(data_cases[0]));
    tcase_add_test(tc, test_peek);
    tcase_add_test(tc, test_page_follows);
    tcase_add_test(tc, test_page_order_skew);
    tcase_add_test(tc, test_page_order_future);
    tcase_add_test(tc, test_page_order_far_back);
    tcase_add_test(tc, test_page_last_id);
    tcase_add_test(tc, test_batch_newest_created);
    tcase_add_loop_test(tc, test_trimmed_delete, 0,
                        sizeof(trimmed_cases) / sizeof(trimmed_cases[0]));
    tcase_add_test(tc, test_delete_before_create);
    tcase_add_loop_test(tc, test_revoked_state, 0,
                        sizeof(revoked_cases) / sizeof(revoked_cases[0]));
    tcase_add_loop_test(tc, test_parse_json, 0, sizeof(parse_cases) / sizeof(parse_cases[0]));
    tcase_add_loop_test(tc, test_parse_lone_surrogates, 0,
                        sizeof(surrogate_cases) / sizeof(surrogate_cases[0]));
    tcase_add_test(tc, test_parse_bounds);
    tcase_add_test(tc, test_array_layout);
    tcase_add_test(tc, test_slice);
    tcase_add_test(tc, test_index_bound);
    suite_add_tcase(s, tc);
    return s;
}
