/*
 * main: the command line.  `run` wires config, store, HTTP client and
 * poller onto one libevent loop and handles signals through it; `migrate`
 * and `status` are one-shot commands on a blocking connection.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "audit.h"
#include "clock.h"
#include "config.h"
#include "housekeeping.h"
#include "http_client.h"
#include "log.h"
#include "poller.h"
#include "status.h"
#include "store.h"
#include "webhook.h"

#define DEFAULT_CONFIG "/etc/workos-syncd/workos-syncd.conf"
#define EXIT_USAGE 64  /* EX_USAGE */
#define EXIT_CONFIG 78 /* EX_CONFIG */
#define SHUTDOWN_GRACE_MS 5000
#define SHUTDOWN_TICK_MS 20
#define READY_MAX_BACKOFF_MS 60000 /* /readyz fails once the poller has failed this long */

typedef struct daemon_ctx {
    struct event_base *base;
    config_t cfg;
    store_t *store;
    http_client_t *http;
    poller_t *poller;   /* NULL without an API key */
    webhook_t *webhook; /* NULL without [webhook] listen */
    housekeeping_t *housekeeping;
    bool ready_sent;
    bool stopping;
    int shutdown_ticks;
    uint64_t watchdog_usec; /* WatchdogSec= of the unit, 0 when off */
    struct event *ev_term, *ev_int, *ev_hup, *ev_shutdown, *ev_tick;
} daemon_ctx_t;

static void usage(FILE *out)
{
    fprintf(out, "usage: workos-syncd COMMAND [-c FILE]\n"
                 "\n"
                 "commands:\n"
                 "  run       keep the PostgreSQL mirror in sync (the daemon)\n"
                 "  migrate   apply pending schema migrations, then exit\n"
                 "  status    print cursor, lag, last error and row counts;\n"
                 "            exit 0 when caught up, 1 when behind, 2 when the database is\n"
                 "            unreachable or unusable\n"
                 "  verify    check the audit trail's hash chain; print its head;\n"
                 "            exit 0 when intact, 1 when broken, 2 on a database error\n"
                 "  forget USER_ID [--force]\n"
                 "            erase a deleted user's personal data from the event log and\n"
                 "            the change feed (--force: even if the user is live)\n"
                 "  rebuild-rollups\n"
                 "            build the analytics rollups again from the event log\n"
                 "\n"
                 "options:\n"
                 "  -c FILE   configuration file (default " DEFAULT_CONFIG ")\n"
                 "  -h        this help\n"
                 "  -V        version\n");
}

static void on_store_ready(void *arg)
{
    daemon_ctx_t *d = arg;
    if (!d->ready_sent) {
        d->ready_sent = true;
        sd_notify(0, "READY=1\nSTATUS=database connected, schema current");
    }
    if (d->poller != NULL)
        poller_store_ready(d->poller);
}

static void on_store_lost(void *arg)
{
    daemon_ctx_t *d = arg;
    sd_notify(0, "STATUS=database unreachable, reconnecting");
    if (d->poller != NULL)
        poller_store_lost(d->poller);
}

/* Waits for the batch in flight to commit or fail, within a grace period. */
static void on_shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
    daemon_ctx_t *d = arg;
    (void)fd;
    (void)what;
    bool busy = store_ready(d->store) && ((d->poller != NULL && poller_applying(d->poller)) ||
                                          (d->webhook != NULL && webhook_busy(d->webhook)));
    if (!busy || ++d->shutdown_ticks * SHUTDOWN_TICK_MS >= SHUTDOWN_GRACE_MS) {
        if (busy)
            log_warn("event=shutdown_timeout note=\"batch in flight abandoned; it rolls back\"");
        event_base_loopexit(d->base, NULL);
        return;
    }
    struct timeval tv = clock_timeval(SHUTDOWN_TICK_MS);
    evtimer_add(d->ev_shutdown, &tv);
}

static void on_terminate(evutil_socket_t sig, short what, void *arg)
{
    daemon_ctx_t *d = arg;
    (void)what;
    if (d->stopping)
        return;
    d->stopping = true;
    log_info("event=shutdown signal=%s", sig == SIGTERM ? "TERM" : "INT");
    sd_notify(0, "STOPPING=1");
    if (d->poller != NULL)
        poller_stop(d->poller);
    housekeeping_stop(d->housekeeping);
    if (d->webhook != NULL)
        webhook_stop_accepting(d->webhook);
    on_shutdown_tick(-1, 0, d);
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    daemon_ctx_t *d = arg;
    config_t fresh;
    char err[512], diff[512];
    (void)sig;
    (void)what;

    sd_notify(0, "RELOADING=1");
    if (!config_load(&fresh, d->cfg.path, err, sizeof(err))) {
        log_warn("event=reload_failed error=%s note=\"keeping the running configuration\"",
                 log_q(err));
        sd_notify(0, "READY=1");
        return;
    }
    config_reload_diff(&d->cfg, &fresh, diff, sizeof(diff));
    if (diff[0] != '\0')
        log_warn("event=reload_needs_restart keys=%s note=\"these keep their running values\"",
                 log_q(diff));
    config_reload_apply(&d->cfg, &fresh);
    config_free(&fresh);
    log_set_level(d->cfg.log_level);
    if (d->poller != NULL)
        poller_set_config(d->poller, &d->cfg);
    housekeeping_set_config(d->housekeeping, &d->cfg);
    if (d->webhook != NULL)
        webhook_set_config(d->webhook, &d->cfg);
    log_info("event=reloaded log_level=%s poll_interval_ms=%lld", log_level_name(d->cfg.log_level),
             (long long)d->cfg.poll_interval_ms);
    sd_notify(0, "READY=1");
}

/* /readyz: the database is connected and the poller is not stuck. */
static bool is_ready(void *arg, char *why, size_t len)
{
    daemon_ctx_t *d = arg;
    if (d->stopping) {
        snprintf(why, len, "shutting down");
        return false;
    }
    if (!store_ready(d->store)) {
        snprintf(why, len, "database unavailable");
        return false;
    }
    if (d->poller != NULL && poller_backoff_ms(d->poller) > READY_MAX_BACKOFF_MS) {
        snprintf(why, len, "events api failing for %llds",
                 (long long)(poller_backoff_ms(d->poller) / 1000));
        return false;
    }
    if (d->poller != NULL && !poller_leader(d->poller))
        snprintf(why, len, "ready (standby: another instance polls the Events API)");
    else
        snprintf(why, len, "ready");
    return true;
}

static void fill_gauges(void *arg, metrics_gauges_t *g)
{
    daemon_ctx_t *d = arg;
    g->db_connected = store_ready(d->store);
    g->poller_leader = d->poller != NULL && poller_leader(d->poller);
}

/* One line for `systemctl status`. */
static void notify_status(daemon_ctx_t *d)
{
    if (!store_ready(d->store)) {
        sd_notify(0, "STATUS=database unreachable, reconnecting");
        return;
    }
    if (d->poller == NULL) {
        sd_notify(0, "STATUS=receiving webhooks; database connected");
        return;
    }
    if (!poller_leader(d->poller)) {
        sd_notifyf(0, "STATUS=standby (another instance polls); database connected%s",
                   d->webhook != NULL ? "; receiving webhooks" : "");
        return;
    }
    char age[48] = "no batch committed yet";
    int64_t ms = poller_commit_age_ms(d->poller);
    if (ms >= 0)
        snprintf(age, sizeof(age), "last commit %llds ago", (long long)(ms / 1000));
    const char *err = poller_last_error(d->poller);
    const char *refused = poller_refused_types(d->poller);
    sd_notifyf(0, "STATUS=polling; database connected; %s; last error: %s%s%s", age,
               err[0] != '\0' ? err : "none", refused[0] != '\0' ? "; event types refused: " : "",
               refused);
}

/*
 * Runs on the loop: the watchdog ping proves the loop turns, so a stuck
 * loop gets the service restarted.
 */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    daemon_ctx_t *d = arg;
    (void)fd;
    (void)what;
    if (d->watchdog_usec > 0)
        sd_notify(0, "WATCHDOG=1");
    notify_status(d);
}

static int cmd_run(daemon_ctx_t *d, const sigset_t *old_mask)
{
    char err[512];
    int rc = 1;
    bool polling = d->cfg.api_key != NULL && d->cfg.api_key[0] != '\0';
    bool listening = d->cfg.listen != NULL && d->cfg.listen[0] != '\0';

    if (!polling && !listening) {
        fprintf(stderr,
                "%s: [workos] api_key: required unless [webhook] listen is set (or set "
                "WORKOS_API_KEY)\n",
                d->cfg.path ? d->cfg.path : "config");
        return EXIT_CONFIG;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Each webhook connection is a descriptor; the soft limit is often 1024. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_debug("event=rlimit_nofile_unchanged");
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("event=startup_failed reason=\"curl_global_init\"");
        return 1;
    }
    d->base = event_base_new();
    if (d->base == NULL) {
        log_error("event=startup_failed reason=\"event_base_new\"");
        goto out;
    }
    d->ev_term = evsignal_new(d->base, SIGTERM, on_terminate, d);
    d->ev_int = evsignal_new(d->base, SIGINT, on_terminate, d);
    d->ev_hup = evsignal_new(d->base, SIGHUP, on_reload, d);
    d->ev_shutdown = evtimer_new(d->base, on_shutdown_tick, d);
    if (!d->ev_term || !d->ev_int || !d->ev_hup || !d->ev_shutdown) {
        log_error("event=startup_failed reason=\"signal events\"");
        goto out;
    }
    event_add(d->ev_term, NULL);
    event_add(d->ev_int, NULL);
    event_add(d->ev_hup, NULL);
    /* The loop handles them now; one that arrived during start-up is
     * delivered here instead of killing us half-initialised. */
    sigprocmask(SIG_SETMASK, old_mask, NULL);

    /* Ping at half the watchdog interval (and refresh STATUS=), or every
     * few seconds for STATUS= alone when there is no watchdog. */
    if (sd_watchdog_enabled(0, &d->watchdog_usec) <= 0)
        d->watchdog_usec = 0;
    uint64_t tick_usec = d->watchdog_usec > 0 ? d->watchdog_usec / 2 : 5000000;
    struct timeval tick = clock_timeval((int64_t)(tick_usec / 1000));
    d->ev_tick = event_new(d->base, -1, EV_PERSIST, on_tick, d);
    if (d->ev_tick == NULL) {
        log_error("event=startup_failed reason=\"timer\"");
        goto out;
    }
    event_add(d->ev_tick, &tick);

    d->http = http_client_new(d->base);
    if (d->http == NULL) {
        log_error("event=startup_failed reason=\"curl multi\"");
        goto out;
    }
    /* The store only reports `ready` from the loop, so the poller created
     * right after it is in place by then. */
    store_callbacks_t cb = {.ready = on_store_ready, .lost = on_store_lost, .arg = d};
    d->store = store_new(d->base, &d->cfg, &cb, err, sizeof(err));
    if (d->store == NULL || !apply_register(d->store, err, sizeof(err))) {
        log_error("event=startup_failed reason=%s", log_q(err));
        goto out;
    }
    if (polling && (d->poller = poller_new(d->base, &d->cfg, d->store, d->http)) == NULL) {
        log_error("event=startup_failed reason=\"out of memory\"");
        goto out;
    }
    if ((d->housekeeping = housekeeping_new(d->base, &d->cfg, d->store, d->poller)) == NULL) {
        log_error("event=startup_failed reason=\"out of memory\"");
        goto out;
    }
    if (listening) {
        webhook_hooks_t hooks = {.ready = is_ready, .gauges = fill_gauges, .arg = d};
        d->webhook = webhook_new(d->base, &d->cfg, d->store, &hooks, err, sizeof(err));
        if (d->webhook == NULL) {
            log_error("event=startup_failed reason=%s", log_q(err));
            rc = EXIT_CONFIG;
            goto out;
        }
    }
    log_info("event=started version=" WORKOS_SYNCD_VERSION " schema=%s base_url=%s",
             log_q(d->cfg.schema), log_q(d->cfg.base_url));
    event_base_dispatch(d->base);
    log_info("event=stopped");
    rc = 0;
out:
    /* The store goes first: freeing it fails the jobs still queued, and
     * their callbacks land in the poller and the listener, which must
     * still exist (a SIGTERM can arrive while the cursor is being read). */
    store_free(d->store);
    housekeeping_free(d->housekeeping);
    poller_free(d->poller);
    webhook_free(d->webhook);
    http_client_free(d->http);
    if (d->ev_term)
        event_free(d->ev_term);
    if (d->ev_int)
        event_free(d->ev_int);
    if (d->ev_hup)
        event_free(d->ev_hup);
    if (d->ev_shutdown)
        event_free(d->ev_shutdown);
    if (d->ev_tick)
        event_free(d->ev_tick);
    if (d->base)
        event_base_free(d->base);
    curl_global_cleanup();
    return rc;
}

static int cmd_migrate(const config_t *cfg)
{
    char err[512];
    int applied;
    if (!store_migrate(cfg, &applied, err, sizeof(err))) {
        log_error("event=migrate_failed error=%s", log_q(err));
        return 1;
    }
    printf("schema=%s applied=%d\n", cfg->schema, applied);
    return 0;
}

static int cmd_rebuild_rollups(const config_t *cfg)
{
    char err[512];
    long events;
    if (!store_rebuild_rollups(cfg, &events, err, sizeof(err))) {
        log_error("event=rebuild_rollups_failed error=%s", log_q(err));
        return 1;
    }
    printf("schema=%s events=%ld\n", cfg->schema, events);
    return 0;
}

/* A sync_state value as status prints it: "-" when absent. */
static const char *status_text(const status_value_t *v)
{
    return v->present ? v->text : "-";
}

/* A number of seconds: "4.8s", or "-" when absent. */
static void print_secs(FILE *out, const char *key, const status_value_t *v)
{
    fprintf(out, "%s=%s%s\n", key, status_text(v), v->present ? "s" : "");
}

/*
 * Prints the status as key=value lines, in the order and form scripts
 * read, and returns the exit status: 0 caught up, 1 behind, failing or
 * not migrated, 2 when the database is unreachable or unusable.
 */
static int print_status(FILE *out, const char *schema, const status_t *st)
{
    fprintf(out, "schema=%s\n", schema);
    if (st->state == STATUS_UNREACHABLE || st->state == STATUS_UNUSABLE) {
        fprintf(out, "state=%s\nerror=\"%s\"\n",
                st->state == STATUS_UNUSABLE ? "database_unusable" : "database_unreachable",
                st->error);
        return 2;
    }
    fprintf(out, "schema_version=%d\nschema_latest=%d\n", st->schema_version, st->schema_latest);
    switch (st->state) {
    case STATUS_NOT_MIGRATED:
        fprintf(out, "state=not_migrated\n");
        return 1;
    case STATUS_ERROR:
        fprintf(out, "state=error\nerror=\"%s\"\n", st->error);
        return 1;
    case STATUS_NEVER_POLLED:
        fprintf(out, "state=never_polled\n");
        break;
    case STATUS_FAILING:
    case STATUS_CAUGHT_UP:
    case STATUS_BEHIND:
        fprintf(out, "cursor=%s\ncursor_event_at=%s\n", status_text(&st->cursor),
                status_text(&st->cursor_event_at));
        print_secs(out, "cursor_age", &st->cursor_age);
        print_secs(out, "lag", &st->lag);
        print_secs(out, "caught_up_ago", &st->caught_up_ago);
        fprintf(out, "last_error=\"%s\"\n", status_text(&st->last_error));
        fprintf(out, "state=%s\n",
                st->state == STATUS_FAILING     ? "failing"
                : st->state == STATUS_CAUGHT_UP ? "caught_up"
                                                : "behind");
        break;
    case STATUS_UNREACHABLE:
    case STATUS_UNUSABLE:
        break;
    }
    if (st->poller == 1)
        fprintf(out, "poller=pid:%s@%s\n", st->poller_pid, st->poller_addr);
    else if (st->poller == 0)
        fprintf(out, "poller=none\n");
    if (st->have_rows) {
        if (st->events.read)
            fprintf(out, "rows_events=%lld\n", st->events.live);
        for (int t = 0; t < MIRROR_COUNT; t++) {
            const char *table = event_mirror((mirror_table_t)t)->table;
            if (st->mirror[t].read)
                fprintf(out, "rows_%s=%lld\nrows_%s_deleted=%lld\n", table, st->mirror[t].live,
                        table, st->mirror[t].deleted);
        }
        if (st->poison_read)
            fprintf(out, "poison_events=%lld\npoison_newest=%s\n", st->poison_count,
                    status_text(&st->poison_newest));
        if (st->audit_read)
            fprintf(out, "oldest_event_at=%s\naudit_pruned=%lld\n",
                    status_text(&st->oldest_event_at), st->audit_pruned);
    }
    if (st->refused_read)
        fprintf(out, "event_types_refused=%s\n", status_text(&st->refused_types));
    return st->state == STATUS_CAUGHT_UP ? 0 : 1;
}

static int cmd_status(const config_t *cfg)
{
    /* Caught up means: reached the end of the stream within a few polls. */
    int64_t fresh = cfg->poll_interval_ms * 3;
    if (fresh < 30000)
        fresh = 30000;
    status_t st;
    status_read(cfg, fresh, &st);
    return print_status(stdout, cfg->schema, &st);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *command = NULL;
    daemon_ctx_t d = {0};
    char err[512];
    int opt, rc;

    /* Until the event loop handles them, termination signals wait. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop_signals, &old_mask);

    log_init(stderr);
    if (argc >= 2 && argv[1][0] != '-') {
        command = argv[1];
        argc--;
        argv++;
    }
    const char *forget_user = NULL;
    bool forget_force = false;
    if (command != NULL && strcmp(command, "forget") == 0 &&
        (!audit_take_forget_args(&argc, argv, &forget_user, &forget_force) ||
         forget_user == NULL)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    while ((opt = getopt(argc, argv, "c:hV")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("workos-syncd " WORKOS_SYNCD_VERSION "\n");
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (command == NULL || optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(command, "run") != 0 && strcmp(command, "migrate") != 0 &&
        strcmp(command, "status") != 0 && strcmp(command, "verify") != 0 &&
        strcmp(command, "forget") != 0 && strcmp(command, "rebuild-rollups") != 0) {
        fprintf(stderr, "workos-syncd: unknown command '%s'\n", command);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* Without -c, the default file is optional: environment alone may do. */
    if (path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
        path = DEFAULT_CONFIG;
    /* Only `run` uses secrets; the one-shot commands must work for an
     * operator who cannot read the service's credential files. */
    unsigned flags = strcmp(command, "run") == 0 ? 0 : CONFIG_SKIP_SECRET_FILES;
    if (!config_load_opts(&d.cfg, path, flags, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return EXIT_CONFIG;
    }
    log_set_level(d.cfg.log_level);
    /* The one-shot commands keep the default dispositions. */
    if (strcmp(command, "run") != 0)
        sigprocmask(SIG_SETMASK, &old_mask, NULL);

    if (strcmp(command, "run") == 0)
        rc = cmd_run(&d, &old_mask);
    else if (strcmp(command, "migrate") == 0)
        rc = cmd_migrate(&d.cfg);
    else if (strcmp(command, "verify") == 0)
        rc = audit_verify(&d.cfg, stdout);
    else if (strcmp(command, "forget") == 0)
        rc = audit_forget(&d.cfg, forget_user, forget_force, stdout);
    else if (strcmp(command, "rebuild-rollups") == 0)
        rc = cmd_rebuild_rollups(&d.cfg);
    else
        rc = cmd_status(&d.cfg);
    config_free(&d.cfg);
    return rc;
}
