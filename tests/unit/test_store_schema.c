/*
 * Unit tests for the connection parameters of daemon/store_schema.c and
 * the connection-level SQLSTATE classifier: the timeouts reach the server
 * as -c switches ahead of the user's own options (the url's, else
 * PGOPTIONS), the per-host connect timeout and host count come from the
 * url, and a multi-host url is tried from the host asked for.  No server
 * is needed: libpq parses, and a non-blocking connect only starts.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "store_schema.h"

static config_t cfg_for(const char *url)
{
    config_t c;
    memset(&c, 0, sizeof(c));
    c.database_url = (char *)(uintptr_t)url;
    c.schema = (char *)(uintptr_t) "workos";
    c.lock_timeout_ms = 200;
    c.statement_timeout_ms = 30000;
    return c;
}

START_TEST(sqlstate_classes)
{
    static const char *const connection[] = {"08000", "08006", "08003", "08P01",
                                             "57P01", "57P02", "57P03", "25006"};
    static const char *const statement[] = {"55P03", "57014", "23505", "22P02", "40001",
                                            "40P01", "25P02", "57P04", "0800",  ""};
    for (size_t i = 0; i < sizeof(connection) / sizeof(connection[0]); i++)
        ck_assert_msg(store_sqlstate_is_connection(connection[i]), "%s", connection[i]);
    for (size_t i = 0; i < sizeof(statement) / sizeof(statement[0]); i++)
        ck_assert_msg(!store_sqlstate_is_connection(statement[i]), "%s", statement[i]);
    ck_assert(!store_sqlstate_is_connection(NULL));
}
END_TEST

START_TEST(sqlstate_transient)
{
    static const char *const transient[] = {"08006", "57P01", "25006", "40001", "40P01", "55P03",
                                            "57014", "53100", "53200", "53300", "58030"};
    static const char *const batch[] = {"23505", "22P02", "22021", "42P01", "42703",
                                        "23502", "XX000", "54000", "5",     ""};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        ck_assert_msg(store_sqlstate_is_transient(transient[i]), "%s", transient[i]);
    for (size_t i = 0; i < sizeof(batch) / sizeof(batch[0]); i++)
        ck_assert_msg(!store_sqlstate_is_transient(batch[i]), "%s", batch[i]);
    ck_assert(!store_sqlstate_is_transient(NULL));
}
END_TEST

START_TEST(options_without_user_options)
{
    unsetenv("PGOPTIONS");
    config_t c = cfg_for("postgresql://u@h/db");
    char *o = store_schema_options(&c);
    ck_assert_str_eq(o, "-c lock_timeout=200ms -c statement_timeout=30000ms");
    free(o);
    c = cfg_for("");
    o = store_schema_options(&c);
    ck_assert_str_eq(o, "-c lock_timeout=200ms -c statement_timeout=30000ms");
    free(o);
}
END_TEST

START_TEST(url_options_come_last)
{
    setenv("PGOPTIONS", "-c work_mem=8MB", 1);
    config_t c = cfg_for("postgresql://u@h/db?options=-c%20statement_timeout%3D0");
    char *o = store_schema_options(&c);
    ck_assert_str_eq(o,
                     "-c lock_timeout=200ms -c statement_timeout=30000ms -c statement_timeout=0");
    free(o);
    c = cfg_for("host=h dbname=db options='-c lock_timeout=1s'");
    o = store_schema_options(&c);
    ck_assert_str_eq(o, "-c lock_timeout=200ms -c statement_timeout=30000ms -c lock_timeout=1s");
    free(o);
    /* Without options in the url, PGOPTIONS is what libpq would have sent. */
    c = cfg_for("postgresql://u@h/db");
    o = store_schema_options(&c);
    ck_assert_str_eq(o, "-c lock_timeout=200ms -c statement_timeout=30000ms -c work_mem=8MB");
    free(o);
    unsetenv("PGOPTIONS");
}
END_TEST

START_TEST(connect_timeout_per_host)
{
    unsetenv("PGCONNECT_TIMEOUT");
    config_t c = cfg_for("postgresql://u@h/db");
    ck_assert_int_eq(store_schema_connect_timeout_s(&c), 10);
    c = cfg_for("postgresql://u@h/db?connect_timeout=3");
    ck_assert_int_eq(store_schema_connect_timeout_s(&c), 3);
    c = cfg_for("postgresql://u@h/db?connect_timeout=1");
    ck_assert_int_eq(store_schema_connect_timeout_s(&c), 2);
    c = cfg_for("postgresql://u@h/db?connect_timeout=0");
    ck_assert_int_eq(store_schema_connect_timeout_s(&c), 10);
    setenv("PGCONNECT_TIMEOUT", "4", 1);
    c = cfg_for("postgresql://u@h/db");
    ck_assert_int_eq(store_schema_connect_timeout_s(&c), 4);
    c = cfg_for("postgresql://u@h/db?connect_timeout=7");
    ck_assert_int_eq(store_schema_connect_timeout_s(&c), 7);
    unsetenv("PGCONNECT_TIMEOUT");
}
END_TEST

START_TEST(host_count)
{
    config_t c = cfg_for("postgresql://u@h1:1,h2:2,h3:3/db?target_session_attrs=read-write");
    ck_assert_int_eq(store_schema_host_count(&c), 3);
    c = cfg_for("host=a,b port=5432 dbname=db");
    ck_assert_int_eq(store_schema_host_count(&c), 2);
    c = cfg_for("postgresql://u@h/db");
    ck_assert_int_eq(store_schema_host_count(&c), 1);
    c = cfg_for("");
    ck_assert_int_eq(store_schema_host_count(&c), 1);
    c = cfg_for("postgresql://[bad");
    ck_assert_int_eq(store_schema_host_count(&c), 1);
}
END_TEST

/* The host and port a fresh non-blocking connect of `url` starts with. */
static void first_tried(const char *url, int first_host, const char *host, const char *port)
{
    config_t c = cfg_for(url);
    PGconn *conn = store_schema_connect(&c, false, first_host);
    ck_assert_ptr_nonnull(conn);
    ck_assert_msg(PQhost(conn) != NULL && strcmp(PQhost(conn), host) == 0, "%s from %d: host %s",
                  url, first_host, PQhost(conn) ? PQhost(conn) : "(null)");
    ck_assert_msg(PQport(conn) != NULL && strcmp(PQport(conn), port) == 0, "%s from %d: port %s",
                  url, first_host, PQport(conn) ? PQport(conn) : "(null)");
    PQfinish(conn);
}

START_TEST(hosts_rotate)
{
    /* Ports 1 to 3 on loopback: nothing listens, nothing is waited for. */
    const char *url = "postgresql://u@127.0.0.1:1,127.0.0.2:2,127.0.0.3:3/db";
    first_tried(url, 0, "127.0.0.1", "1");
    first_tried(url, 1, "127.0.0.2", "2");
    first_tried(url, 2, "127.0.0.3", "3");
    first_tried(url, 3, "127.0.0.1", "1");
    /* One port for all hosts stays one port. */
    first_tried("host=127.0.0.1,127.0.0.2 port=1 dbname=db", 1, "127.0.0.2", "1");
    /* A single host ignores the rotation. */
    first_tried("postgresql://u@127.0.0.1:1/db", 5, "127.0.0.1", "1");
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("store_schema");
    TCase *tc = tcase_create("store_schema");
    tcase_add_test(tc, sqlstate_classes);
    tcase_add_test(tc, sqlstate_transient);
    tcase_add_test(tc, options_without_user_options);
    tcase_add_test(tc, url_options_come_last);
    tcase_add_test(tc, connect_timeout_per_host);
    tcase_add_test(tc, host_count);
    tcase_add_test(tc, hosts_rotate);
    suite_add_tcase(s, tc);
    return s;
}
