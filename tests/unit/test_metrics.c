/*
 * Unit tests for metrics: what the counters record shows up in the
 * Prometheus text, and hostile event type names cannot break the format or
 * grow the table without bound.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "runner.h"

static char *render(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    metrics_gauges_t g = {
        .db_connected = true, .poller_leader = true, .webhook_connections = 3, .now_ms = 10000};
    metrics_render(f, &g);
    fclose(f);
    return buf;
}

static void assert_line(const char *text, const char *line)
{
    char *want;
    ck_assert(asprintf(&want, "\n%s\n", line) > 0);
    ck_assert_msg(strstr(text, want) != NULL, "missing line: %s", line);
    free(want);
}

START_TEST(test_counters)
{
    metrics_reset();
    metrics_events_committed("webhook", "user.created", 1);
    metrics_events_committed("webhook", "user.created", 1);
    metrics_events_committed("webhook", "user.created", 0);
    metrics_events_committed("events_api", "user.created", 1);
    metrics_events_committed("events_api", "session.created", 5); /* a batch counts at once */
    metrics_events_inserted("events_api", 7);
    metrics_batch(true, 0.003);
    metrics_batch(true, 0.2);
    metrics_batch(false, 0);
    metrics_webhook_response(200);
    metrics_webhook_response(401);
    metrics_webhook_response(418);
    metrics_poll_request(200);
    metrics_poll_request(429);
    metrics_poll_request(0);
    metrics_backoff(1500);
    metrics_db_reconnect();
    metrics_cursor_event_time(4000);

    char *t = render();
    assert_line(t,
                "workos_syncd_events_committed_total{type=\"user.created\",source=\"webhook\"} 2");
    assert_line(
        t, "workos_syncd_events_committed_total{type=\"user.created\",source=\"events_api\"} 1");
    assert_line(
        t, "workos_syncd_events_committed_total{type=\"session.created\",source=\"events_api\"} 5");
    assert_line(t, "workos_syncd_events_inserted_total{source=\"events_api\"} 7");
    assert_line(t, "workos_syncd_batch_commit_seconds_bucket{le=\"0.0025\"} 0");
    assert_line(t, "workos_syncd_batch_commit_seconds_bucket{le=\"0.005\"} 1");
    assert_line(t, "workos_syncd_batch_commit_seconds_bucket{le=\"0.25\"} 2");
    assert_line(t, "workos_syncd_batch_commit_seconds_bucket{le=\"+Inf\"} 2");
    assert_line(t, "workos_syncd_batch_commit_seconds_count 2");
    assert_line(t, "workos_syncd_batches_failed_total 1");
    assert_line(t, "workos_syncd_webhook_responses_total{status=\"200\"} 1");
    assert_line(t, "workos_syncd_webhook_responses_total{status=\"401\"} 1");
    assert_line(t, "workos_syncd_webhook_responses_total{status=\"other\"} 1");
    assert_line(t, "workos_syncd_poll_requests_total{status=\"2xx\"} 1");
    assert_line(t, "workos_syncd_poll_requests_total{status=\"429\"} 1");
    assert_line(t, "workos_syncd_poll_requests_total{status=\"error\"} 1");
    assert_line(t, "workos_syncd_backoff_seconds_total 1.500");
    assert_line(t, "workos_syncd_db_reconnects_total 1");
    assert_line(t, "workos_syncd_cursor_lag_seconds 6.000");
    assert_line(t, "workos_syncd_webhook_connections 3");
    free(t);
}
END_TEST

START_TEST(test_hostile_types)
{
    char name[32];
    metrics_reset();
    metrics_events_committed("webhook", "evil\"}\nfake_metric 1", 1);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "made.up_%d", i);
        metrics_events_committed("webhook", name, 1);
    }
    char *t = render();
    ck_assert_ptr_null(strstr(t, "\nfake_metric"));
    ck_assert_ptr_nonnull(strstr(t, "type=\"evil}fake_metric 1\""));
    ck_assert_ptr_nonnull(strstr(t, "type=\"other\",source=\"webhook\"}"));
    ck_assert_ptr_null(strstr(t, "made.up_499\""));
    free(t);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, test_counters);
    tcase_add_test(tc, test_hostile_types);
    suite_add_tcase(s, tc);
    return s;
}
