/*
 * main: the command line.  `run` wires config, store, HTTP client and
 * poller onto one libevent loop and handles signals through it; `migrate`
 * and `status` are one-shot commands on a blocking connection.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
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
#include "backfill.h"
#include "clock.h"
#include "config.h"
#include "housekeeping.h"
#include "http_client.h"
#include "log.h"
#include "poller.h"
#include "reconciler.h"
#include "snapshot.h"
#include "status.h"
#include "status_print.h"
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
    reconciler_t *rec; /* periodic reconciliation; NULL when off or not polling */
    snapshot_t *snap;  /* start_from = snapshot: runs before the poller exists */
    bool expired;      /* the API refused the cursor: a reconciliation is on its way */
    bool ready_sent;
    bool stopping;
    int shutdown_ticks;
    uint64_t watchdog_usec; /* WatchdogSec= of the unit, 0 when off */
    struct event *ev_term, *ev_int, *ev_hup, *ev_shutdown, *ev_tick, *ev_reconcile;
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
                 "            unreachable or unusable; --json: one JSON object\n"
                 "  verify    check the audit trail's hash chain; print its head;\n"
                 "            exit 0 when intact, 1 when broken, 2 on a database error\n"
                 "  forget USER_ID [--force] [--dry-run]\n"
                 "            erase a deleted user's personal data from the event log and\n"
                 "            the change feed (--force: even if the user is live;\n"
                 "            --dry-run: count what it would reach, change nothing)\n"
                 "  rebuild-rollups\n"
                 "            build the analytics rollups again from the event log\n"
                 "  backfill  list every type from the WorkOS state APIs, apply, then exit;\n"
                 "            --dry-run: report drift, write nothing (exit 1 on drift)\n"
                 "\n"
                 "options:\n"
                 "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
                 "  -h, --help         this help\n"
                 "  -V, --version      version\n");
}

/* A usage error: the reason on stderr, then the usage; the exit status. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("workos-syncd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    usage(stderr);
    return EXIT_USAGE;
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
    if (d->rec != NULL)
        reconciler_store_ready(d->rec);
    if (d->snap != NULL)
        snapshot_store_ready(d->snap);
}

static void on_store_lost(void *arg)
{
    daemon_ctx_t *d = arg;
    sd_notify(0, "STATUS=database unreachable, reconnecting");
    if (d->poller != NULL)
        poller_store_lost(d->poller);
    if (d->rec != NULL)
        reconciler_store_lost(d->rec);
    if (d->snap != NULL)
        snapshot_store_lost(d->snap);
}

/* Only the poller-lock holder reconciles. */
static bool may_reconcile(void *arg)
{
    daemon_ctx_t *d = arg;
    return !d->stopping &&
           ((d->poller != NULL && poller_leader(d->poller)) || snapshot_lock_held(d->snap));
}

/* The cursor is forgotten: the poller reads it again, and starts over. */
static void on_cursor_forgotten(void *arg, bool ok)
{
    daemon_ctx_t *d = arg;
    d->expired = false;
    if (ok && d->poller != NULL && !d->stopping) {
        log_info("event=cursor_reset note=\"following the Events API from before the "
                 "reconciliation\"");
        poller_store_lost(d->poller);
        if (store_ready(d->store))
            poller_store_ready(d->poller);
    }
}

static void on_reconciled(void *arg, const reconciler_result_t *res)
{
    daemon_ctx_t *d = arg;
    if (!snapshot_done(d->snap)) {
        snapshot_reconciled(d->snap, res);
        return;
    }
    if (!res->ok)
        log_warn("event=reconcile_failed error=%s", log_q(res->err ? res->err : "-"));
    if (d->expired && res->ok)
        snapshot_forget_cursor(d->store, res->started_wall_ms, on_cursor_forgotten, d);
    else
        d->expired = false;
}

/* The Events API refused the stored cursor: reconcile, then start over. */
static void on_cursor_expired(void *arg, const char *reason)
{
    daemon_ctx_t *d = arg;
    if (d->expired || d->rec == NULL || reconciler_busy(d->rec))
        return;
    log_warn("event=cursor_expired reason=%s note=\"reconciling from the list endpoints\"", reason);
    d->expired = true;
    reconciler_start(d->rec, "cursor_expired");
}

/*
 * start_from = snapshot reaches the poller as "now": once the snapshot has
 * recorded where to start, "now" keeps that start, as it keeps its own.
 */
static bool snapshot_as_now(config_t *c)
{
    if (c->start_from == NULL || strcmp(c->start_from, "snapshot") != 0)
        return false;
    char *now = strdup("now");
    if (now == NULL)
        return false;
    free(c->start_from);
    c->start_from = now;
    return true;
}

/* The snapshot is done (or was not needed): the poller starts. */
static void on_snapshot_done(void *arg)
{
    daemon_ctx_t *d = arg;
    if (d->poller != NULL || d->stopping)
        return;
    d->poller = poller_new(d->base, &d->cfg, d->store, d->http);
    if (d->poller == NULL) {
        log_error("event=poller_failed reason=\"out of memory\"");
        event_base_loopexit(d->base, NULL);
        return;
    }
    poller_set_expiry_hook(d->poller, on_cursor_expired, d);
    if (store_ready(d->store))
        poller_store_ready(d->poller);
}

/* Every [reconcile] interval: a periodic run, unless one is going on. */
static void on_reconcile_tick(evutil_socket_t fd, short what, void *arg)
{
    daemon_ctx_t *d = arg;
    (void)fd;
    (void)what;
    if (!reconciler_busy(d->rec) && may_reconcile(d))
        reconciler_start(d->rec, "periodic");
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
    (void)snapshot_as_now(&fresh);
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
    g->reconciling = reconciler_busy(d->rec);
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
    bool snapshot = snapshot_as_now(&d->cfg);
    if (polling && !snapshot &&
        (d->poller = poller_new(d->base, &d->cfg, d->store, d->http)) == NULL) {
        log_error("event=startup_failed reason=\"out of memory\"");
        goto out;
    }
    if (d->poller != NULL)
        poller_set_expiry_hook(d->poller, on_cursor_expired, d);
    if (polling) {
        d->rec = reconciler_new(d->base, &d->cfg, d->store, d->http, false, on_reconciled, d);
        d->ev_reconcile = event_new(d->base, -1, EV_PERSIST, on_reconcile_tick, d);
        if (d->rec == NULL || d->ev_reconcile == NULL) {
            log_error("event=startup_failed reason=\"out of memory\"");
            goto out;
        }
        reconciler_set_gate(d->rec, may_reconcile, d);
        struct timeval every = clock_timeval(d->cfg.reconcile_interval_ms);
        if (d->cfg.reconcile_interval_ms > 0)
            event_add(d->ev_reconcile, &every);
    }
    if (polling && snapshot &&
        (d->snap = snapshot_new(d->base, d->store, d->rec, on_snapshot_done, d)) == NULL) {
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
    snapshot_free(d->snap);
    reconciler_free(d->rec);
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
    if (d->ev_reconcile)
        event_free(d->ev_reconcile);
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

static int cmd_status(const config_t *cfg, bool json)
{
    /* Caught up means: reached the end of the stream within a few polls. */
    int64_t fresh = cfg->poll_interval_ms * 3;
    if (fresh < 30000)
        fresh = 30000;
    status_t st;
    status_read(cfg, fresh, &st);
    return status_print(stdout, cfg->schema, &st, json);
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
    audit_forget_args_t forget = {.user_id = NULL, .force = false, .dry_run = false};
    if (command != NULL && strcmp(command, "forget") == 0 &&
        (!audit_take_forget_args(&argc, argv, &forget) || forget.user_id == NULL)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    bool flag_given = false; /* --dry-run for backfill, --json for status */
    const char *flag = command == NULL                    ? NULL
                       : strcmp(command, "backfill") == 0 ? "--dry-run"
                       : strcmp(command, "status") == 0   ? "--json"
                                                          : NULL;
    if (flag != NULL)
        for (int i = 1; i < argc; i++)
            if (strcmp(argv[i], flag) == 0) {
                flag_given = true;
                memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
                argc--;
                break;
            }
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0; /* argv[0] is the command by now: the messages are ours */
    while ((opt = getopt_long(argc, argv, ":c:hV", long_options, NULL)) != -1) {
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
        case ':':
            return usage_error("option '%s' needs an argument", argv[optind - 1]);
        default:
            /* A long option is its whole word (--help=x included); a short
             * one is optopt, which is right inside a group such as -xc. */
            if (optopt != 0 && strncmp(argv[optind - 1], "--", 2) != 0)
                return usage_error("unknown option '-%c'", optopt);
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (command == NULL || optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(command, "run") != 0 && strcmp(command, "migrate") != 0 &&
        strcmp(command, "status") != 0 && strcmp(command, "verify") != 0 &&
        strcmp(command, "forget") != 0 && strcmp(command, "rebuild-rollups") != 0 &&
        strcmp(command, "backfill") != 0) {
        return usage_error("unknown command '%s'", command);
    }
    /* Without -c, the default file is optional: environment alone may do. */
    if (path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
        path = DEFAULT_CONFIG;
    /* Only `run` uses secrets; the one-shot commands must work for an
     * operator who cannot read the service's credential files. */
    bool secrets = strcmp(command, "run") == 0 || strcmp(command, "backfill") == 0;
    unsigned flags = secrets ? 0 : CONFIG_SKIP_SECRET_FILES;
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
        rc = audit_forget(&d.cfg, &forget, stdout);
    else if (strcmp(command, "rebuild-rollups") == 0)
        rc = cmd_rebuild_rollups(&d.cfg);
    else if (strcmp(command, "backfill") == 0)
        rc = backfill_main(&d.cfg, flag_given);
    else
        rc = cmd_status(&d.cfg, flag_given);
    config_free(&d.cfg);
    return rc;
}
