/*
 * Unit tests for apply: the statement's text and its parameter list agree
 * (every array a batch has is one parameter, in the order the SQL unnests
 * them), its result row is read as the counts it is, and a committed
 * batch lands in the metrics by type, source, malformed and unknown; a
 * refusal's SQLSTATE is classified as transient or about the data, and
 * the poison statements take the parameters the job sends them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "metrics.h"
#include "runner.h"

/* How many parameters a full statement takes. */
/* The parameters of the variant for `tables`. */
static size_t n_params_of(unsigned tables)
{
    size_t n = APPLY_FIRST_ARRAY - 1 + EVENT_LOG_ARRAYS;
    for (int t = 0; t < MIRROR_COUNT; t++) {
        if (!(tables & (1U << t)))
            continue;
        const mirror_def_t *m = event_mirror((mirror_table_t)t);
        n += EVENT_MIRROR_EXTRA_ARRAYS;
        for (size_t i = 0; i < m->n_columns; i++)
            n += event_mirror_sent(&m->columns[i]); /* the whole object comes from the log */
    }
    return n;
}

static size_t n_params(void)
{
    return n_params_of(APPLY_ALL_TABLES);
}

static event_batch_t *batch_of(const char *const *json, size_t n)
{
    event_batch_t *b = event_batch_new();
    char why[160];
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_Parse(json[i]);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_ne(event_batch_add(b, e, why, sizeof(why)), EVENT_INVALID);
    }
    return b;
}

static const char *const sample[] = {
    "{\"id\":\"event_1\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\","
    "\"data\":{\"id\":\"user_1\",\"updated_at\":\"2026-01-01T00:00:00Z\"}}",
    "{\"id\":\"event_2\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:01Z\","
    "\"data\":{\"id\":\"user_2\",\"updated_at\":\"2026-01-01T00:00:01Z\"}}",
    "{\"id\":\"event_3\",\"event\":\"user.updated\",\"created_at\":\"2026-01-01T00:00:02Z\","
    "\"data\":{\"id\":\"user_3\",\"updated_at\":\"not a time\"}}",
    "{\"id\":\"event_4\",\"event\":\"brand_new.thing\",\"created_at\":\"2026-01-01T00:00:03Z\","
    "\"data\":{}}",
};

START_TEST(test_arrays_in_order)
{
    event_batch_t *b = batch_of(sample, 4);
    const char *values[APPLY_MAX_PARAMS];
    int lengths[APPLY_MAX_PARAMS];
    size_t want = n_params();
    ck_assert_uint_le(want, APPLY_MAX_PARAMS);
    ck_assert_uint_eq(apply_arrays(b, APPLY_ALL_TABLES, values, lengths), want);
    /* The first array is the log's ids, the last the last table's last column. */
    ck_assert_ptr_eq(values[APPLY_FIRST_ARRAY - 1], pg_array_finish(&b->log[0]));
    const mirror_def_t *last = event_mirror(MIRROR_COUNT - 1);
    size_t last_sent = last->n_columns - 1;
    while (!event_mirror_sent(&last->columns[last_sent]))
        last_sent--;
    pg_array_t *tail = &b->mirror[MIRROR_COUNT - 1][EVENT_MIRROR_EXTRA_ARRAYS + last_sent];
    ck_assert_ptr_eq(values[want - 1], pg_array_finish(tail));
    ck_assert_int_eq(lengths[want - 1], (int)tail->len);
    /* The users' seq array follows the log's five. */
    ck_assert_ptr_eq(values[APPLY_FIRST_ARRAY - 1 + EVENT_LOG_ARRAYS],
                     pg_array_finish(&b->mirror[MIRROR_USERS][0]));
    event_batch_free(b);
}
END_TEST

START_TEST(test_sql_takes_every_param)
{
    char *sql = apply_sql("workos", APPLY_ALL_TABLES);
    ck_assert_ptr_nonnull(sql);
    int max = 0;
    for (const char *p = strchr(sql, '$'); p != NULL; p = strchr(p + 1, '$'))
        if (atoi(p + 1) > max)
            max = atoi(p + 1);
    ck_assert_int_eq(max, (int)n_params());
    char want[64];
    snprintf(want, sizeof(want), "$%d::text[]", APPLY_FIRST_ARRAY);
    ck_assert_ptr_nonnull(strstr(sql, want));
    ck_assert_ptr_nonnull(strstr(sql, "INSERT INTO workos.events"));
    for (int t = 0; t < MIRROR_COUNT; t++) {
        char table[96];
        snprintf(table, sizeof(table), "INSERT INTO workos.%s AS t",
                 event_mirror((mirror_table_t)t)->table);
        ck_assert_msg(strstr(sql, table) != NULL, "no upsert into %s", table);
    }
    ck_assert_ptr_nonnull(strstr(sql, "INSERT INTO workos.sync_state"));
    free(sql);
}
END_TEST

/* The largest $n a statement names. */
static int max_param(const char *sql)
{
    int max = 0;
    for (const char *p = strchr(sql, '$'); p != NULL; p = strchr(p + 1, '$'))
        if (atoi(p + 1) > max)
            max = atoi(p + 1);
    return max;
}

/*
 * A batch of users and sessions only is applied by the variant for those
 * two: its arrays are the log's, the users' and the sessions', the
 * statement names exactly those and writes only those tables, and the
 * others count 0.  A batch of log-only events writes no mirror table.
 */
START_TEST(test_variant_for_batch)
{
    static const char *const two[] = {
        "{\"id\":\"e1\",\"event\":\"user.created\",\"created_at\":\"2026-01-01T00:00:00Z\","
        "\"data\":{\"id\":\"user_1\",\"email\":\"a@example.com\",\"updated_at\":"
        "\"2026-01-01T00:00:00Z\"}}",
        "{\"id\":\"e2\",\"event\":\"session.created\",\"created_at\":\"2026-01-01T00:00:01Z\","
        "\"data\":{\"id\":\"session_1\",\"user_id\":\"user_1\",\"updated_at\":"
        "\"2026-01-01T00:00:01Z\"}}",
        "{\"id\":\"e3\",\"event\":\"authentication.password_succeeded\",\"created_at\":"
        "\"2026-01-01T00:00:02Z\",\"data\":{\"user_id\":\"user_1\"}}",
    };
    event_batch_t *b = batch_of(two, 3);
    unsigned tables = apply_tables(b);
    ck_assert_uint_eq(tables, (1U << MIRROR_USERS) | (1U << MIRROR_SESSIONS));
    char name[64];
    ck_assert_str_eq(apply_stmt_name(APPLY_ALL_TABLES, name, sizeof(name)), "workos_syncd_apply");
    ck_assert_str_ne(apply_stmt_name(tables, name, sizeof(name)), "workos_syncd_apply");

    const char *values[APPLY_MAX_PARAMS];
    int lengths[APPLY_MAX_PARAMS];
    size_t want = n_params_of(tables);
    ck_assert_uint_lt(want, n_params());
    ck_assert_uint_eq(apply_arrays(b, tables, values, lengths), want);
    /* The sessions' seq array follows the users' last. */
    ck_assert_ptr_eq(values[n_params_of(1U << MIRROR_USERS)],
                     pg_array_finish(&b->mirror[MIRROR_SESSIONS][0]));

    char *sql = apply_sql("workos", tables);
    ck_assert_ptr_nonnull(sql);
    ck_assert_int_eq(max_param(sql), (int)want);
    for (int t = 0; t < MIRROR_COUNT; t++) {
        char table[96], zero[32];
        snprintf(table, sizeof(table), "INSERT INTO workos.%s AS t",
                 event_mirror((mirror_table_t)t)->table);
        snprintf(zero, sizeof(zero), "0::bigint AS m%d", t);
        bool written = (tables & (1U << t)) != 0;
        ck_assert_msg((strstr(sql, table) != NULL) == written, "%s: written %d", table, written);
        ck_assert_msg((strstr(sql, zero) != NULL) == !written, "m%d: written %d", t, written);
    }
    free(sql);
    event_batch_free(b);

    event_batch_t *log_only = batch_of(two + 2, 1);
    ck_assert_uint_eq(apply_tables(log_only), 0);
    sql = apply_sql("workos", 0);
    ck_assert_ptr_nonnull(sql);
    ck_assert_int_eq(max_param(sql), APPLY_FIRST_ARRAY - 1 + EVENT_LOG_ARRAYS);
    ck_assert_ptr_null(strstr(sql, "ON CONFLICT (id) DO UPDATE"));
    ck_assert_ptr_nonnull(strstr(sql, "INSERT INTO workos.events"));
    free(sql);
    event_batch_free(log_only);
}
END_TEST

START_TEST(test_read_result)
{
    store_apply_result_t r = {0};
    ck_assert(!apply_read_result(NULL, &r));
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    ck_assert(!apply_read_result(res, &r)); /* no row */
    PGresAttDesc attrs[1 + MIRROR_COUNT];
    memset(attrs, 0, sizeof(attrs));
    for (int i = 0; i < 1 + MIRROR_COUNT; i++)
        attrs[i].name = (char *)"n";
    ck_assert(PQsetResultAttrs(res, 1 + MIRROR_COUNT, attrs));
    ck_assert(PQsetvalue(res, 0, 0, (char *)"7", 1));
    for (int t = 0; t < MIRROR_COUNT; t++) {
        char v[8];
        snprintf(v, sizeof(v), "%d", t + 1);
        ck_assert(PQsetvalue(res, 0, 1 + t, v, (int)strlen(v)));
    }
    ck_assert(apply_read_result(res, &r));
    ck_assert_int_eq(r.inserted, 7);
    for (int t = 0; t < MIRROR_COUNT; t++)
        ck_assert_int_eq(r.rows[t], t + 1);
    PQclear(res);
}
END_TEST

static char *render(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    metrics_gauges_t g = {.now_ms = 0};
    metrics_render(f, &g);
    fclose(f);
    return buf;
}

START_TEST(test_account)
{
    metrics_reset();
    event_batch_t *b = batch_of(sample, 4);
    store_apply_result_t r = {.inserted = 3, .commit_us = 2000};
    apply_account(b, "webhook", &r);
    char *t = render();
    ck_assert_ptr_nonnull(
        strstr(t, "\nworkos_syncd_events_committed_total{type=\"user.created\",source=\"webhook\"} "
                  "2\n"));
    ck_assert_ptr_nonnull(
        strstr(t, "\nworkos_syncd_events_committed_total{type=\"user.updated\",source=\"webhook\"} "
                  "1\n"));
    ck_assert_ptr_nonnull(
        strstr(t, "\nworkos_syncd_events_inserted_total{source=\"webhook\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "\nworkos_syncd_events_malformed_total 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "\nworkos_syncd_events_unknown_total 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "\nworkos_syncd_batch_commit_seconds_count 1\n"));
    free(t);
    event_batch_free(b);
}
END_TEST

/* SQLSTATEs and what the apply job must do with a batch refused with each. */
static const struct {
    const char *sqlstate;
    apply_failure_t want;
} classify_cases[] = {
    {NULL, APPLY_TRANSIENT},    /* no SQLSTATE: the connection, not the batch */
    {"", APPLY_TRANSIENT},      /* malformed */
    {"2200", APPLY_TRANSIENT},  /* too short */
    {"08006", APPLY_TRANSIENT}, /* connection_failure */
    {"08001", APPLY_TRANSIENT}, /* sqlclient_unable_to_establish_sqlconnection */
    {"57P01", APPLY_TRANSIENT}, /* admin_shutdown */
    {"57P03", APPLY_TRANSIENT}, /* cannot_connect_now */
    {"57014", APPLY_TRANSIENT}, /* query_canceled, statement_timeout */
    {"40001", APPLY_TRANSIENT}, /* serialization_failure */
    {"40P01", APPLY_TRANSIENT}, /* deadlock_detected */
    {"55P03", APPLY_TRANSIENT}, /* lock_not_available: lock_timeout */
    {"55006", APPLY_TRANSIENT}, /* object_in_use */
    {"53100", APPLY_TRANSIENT}, /* disk_full */
    {"53200", APPLY_TRANSIENT}, /* out_of_memory */
    {"53300", APPLY_TRANSIENT}, /* too_many_connections */
    {"25006", APPLY_TRANSIENT}, /* read_only_sql_transaction: a demoted primary */
    {"58030", APPLY_TRANSIENT}, /* io_error */
    {"XX000", APPLY_TRANSIENT}, /* internal_error */
    {"XX001", APPLY_TRANSIENT}, /* data_corrupted: the server's, not the event's */
    {"42P01", APPLY_TRANSIENT}, /* undefined_table: the schema, for every batch */
    {"42703", APPLY_TRANSIENT}, /* undefined_column */
    {"42501", APPLY_TRANSIENT}, /* insufficient_privilege */
    {"0A000", APPLY_TRANSIENT}, /* feature_not_supported */
    {"HV000", APPLY_TRANSIENT}, /* a class not listed */
    {"22001", APPLY_PERMANENT}, /* string_data_right_truncation: varchar(n) */
    {"22007", APPLY_PERMANENT}, /* invalid_datetime_format */
    {"22008", APPLY_PERMANENT}, /* datetime_field_overflow */
    {"22003", APPLY_PERMANENT}, /* numeric_value_out_of_range */
    {"22P02", APPLY_PERMANENT}, /* invalid_text_representation */
    {"22P05", APPLY_PERMANENT}, /* untranslatable_character */
    {"22021", APPLY_PERMANENT}, /* character_not_in_repertoire */
    {"23505", APPLY_PERMANENT}, /* unique_violation: an operator's unique index */
    {"23514", APPLY_PERMANENT}, /* check_violation: an operator's CHECK */
    {"23502", APPLY_PERMANENT}, /* not_null_violation */
    {"23503", APPLY_PERMANENT}, /* foreign_key_violation */
    {"54000", APPLY_PERMANENT}, /* program_limit_exceeded: index row size */
    {"54001", APPLY_PERMANENT}, /* statement_too_complex */
    {"21000", APPLY_PERMANENT}, /* cardinality_violation */
    {"27000", APPLY_PERMANENT}, /* triggered_data_change_violation */
    {"09000", APPLY_PERMANENT}, /* triggered_action_exception */
    {"44000", APPLY_PERMANENT}, /* with_check_option_violation */
    {"2F005", APPLY_PERMANENT}, /* function_executed_no_return_statement */
    {"38001", APPLY_PERMANENT}, /* containing_sql_not_permitted */
    {"39P01", APPLY_PERMANENT}, /* trigger_protocol_violated */
    {"P0001", APPLY_PERMANENT}, /* raise_exception: an operator's trigger */
    {"P0004", APPLY_PERMANENT}, /* assert_failure */
};

START_TEST(test_classify_sqlstate)
{
    const char *st = classify_cases[_i].sqlstate;
    ck_assert_msg(apply_classify(st) == classify_cases[_i].want, "%s: want %s",
                  st != NULL ? st : "(null)",
                  classify_cases[_i].want == APPLY_PERMANENT ? "permanent" : "transient");
}
END_TEST

/* Both poison statements name every one of their parameters (or they cannot be prepared). */
START_TEST(test_poison_sql)
{
    for (int in_log = 0; in_log <= 1; in_log++) {
        char *sql = apply_poison_sql("workos", in_log);
        ck_assert_ptr_nonnull(sql);
        for (int k = 1; k <= APPLY_POISON_PARAMS; k++) {
            char want[16];
            snprintf(want, sizeof(want), "$%d::", k);
            ck_assert_msg(strstr(sql, want) != NULL, "in_log=%d: no %s", in_log, want);
        }
        char past[16];
        snprintf(past, sizeof(past), "$%d", APPLY_POISON_PARAMS + 1);
        ck_assert_ptr_null(strstr(sql, past));
        ck_assert_ptr_nonnull(strstr(sql, "INSERT INTO workos.poison_events"));
        ck_assert_ptr_nonnull(strstr(sql, "INSERT INTO workos.sync_state"));
        ck_assert(in_log == (strstr(sql, "INSERT INTO workos.events") != NULL));
        free(sql);
    }
}
END_TEST

START_TEST(test_poison_metric)
{
    metrics_reset();
    metrics_poison_event(true);
    metrics_poison_event(true);
    metrics_poison_event(false);
    char *t = render();
    ck_assert_ptr_nonnull(strstr(t, "\nworkos_syncd_poison_events_total{stored=\"log\"} 2\n"));
    ck_assert_ptr_nonnull(
        strstr(t, "\nworkos_syncd_poison_events_total{stored=\"poison_events\"} 1\n"));
    free(t);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("apply");
    TCase *tc = tcase_create("apply");
    tcase_add_test(tc, test_arrays_in_order);
    tcase_add_test(tc, test_sql_takes_every_param);
    tcase_add_test(tc, test_variant_for_batch);
    tcase_add_test(tc, test_read_result);
    tcase_add_test(tc, test_account);
    tcase_add_loop_test(tc, test_classify_sqlstate, 0,
                        sizeof(classify_cases) / sizeof(classify_cases[0]));
    tcase_add_test(tc, test_poison_sql);
    tcase_add_test(tc, test_poison_metric);
    suite_add_tcase(s, tc);
    return s;
}
