-- 006: sign-in analytics that answer from rollups instead of the log.
--
-- The event log grows by every sign-in; a question over a year of it must
-- not read a year of it.  The rollup_* tables below hold what the questions
-- need, kept current by one statement-level trigger on @SCHEMA@.events: it
-- runs in the apply transaction, sees exactly the rows the apply inserted
-- (a duplicate event inserts nothing, so it counts nothing), and adds them
-- in one statement.  Distinct counts are exact: a user counts towards a
-- period when the (period, user) row is new to a membership table, and only
-- those new rows move the period's counter.
--
-- Daily rollups are kept for each time zone listed in rollup_time_zones
-- (UTC always; add_rollup_time_zone() adds one and fills it from the log).
-- The failure rollups by IP and account, the activation table and the
-- first-success table are kept in UTC only: they answer over instants, not
-- days.
--
-- rebuild_rollups() regenerates every rollup from the log through the same
-- trigger function, so a schema upgrade or a restored backup needs nothing
-- else; this migration calls it once.
--
-- Every statement is idempotent.

CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_time_zones (
    zone text PRIMARY KEY CHECK (now() AT TIME ZONE zone IS NOT NULL)
);
INSERT INTO @SCHEMA@.rollup_time_zones (zone) VALUES ('UTC') ON CONFLICT DO NOTHING;

-- Authentication outcomes per local day, method and error code ('' for a
-- success, or a failure without a code).
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_auth_daily (
    zone       text   NOT NULL,
    day        date   NOT NULL,
    method     text   NOT NULL,
    error_code text   NOT NULL,
    succeeded  bigint NOT NULL,
    failed     bigint NOT NULL,
    PRIMARY KEY (zone, day, method, error_code)
);

CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_radar_daily (
    zone       text   NOT NULL,
    day        date   NOT NULL,
    detections bigint NOT NULL,
    PRIMARY KEY (zone, day)
);

-- Who was active in which period: grain 'd' (day), 'w' (ISO week, starting
-- Monday) or 'm' (month), `start` the period's first local day.
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_active_members (
    zone    text NOT NULL,
    grain   "char" NOT NULL,
    start   date NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (zone, grain, start, user_id)
);
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_mfa_members (
    zone    text NOT NULL,
    grain   "char" NOT NULL,
    start   date NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (zone, grain, start, user_id)
);
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_active_counts (
    zone      text   NOT NULL,
    grain     "char" NOT NULL,
    start     date   NOT NULL,
    users     bigint NOT NULL,
    mfa_users bigint NOT NULL,
    PRIMARY KEY (zone, grain, start)
);
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_org_active_members (
    zone            text NOT NULL,
    grain           "char" NOT NULL,
    start           date NOT NULL,
    organization_id text NOT NULL,
    user_id         text NOT NULL,
    PRIMARY KEY (zone, grain, start, organization_id, user_id)
);
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_org_active_counts (
    zone            text   NOT NULL,
    grain           "char" NOT NULL,
    start           date   NOT NULL,
    organization_id text   NOT NULL,
    users           bigint NOT NULL,
    PRIMARY KEY (zone, grain, start, organization_id)
);

-- Sessions created per local day and auth method; user.created and
-- user.deleted events per local day.
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_sessions_daily (
    zone         text   NOT NULL,
    day          date   NOT NULL,
    auth_method  text   NOT NULL,
    sessions     bigint NOT NULL,
    impersonated bigint NOT NULL,
    PRIMARY KEY (zone, day, auth_method)
);
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_users_daily (
    zone    text   NOT NULL,
    day     date   NOT NULL,
    created bigint NOT NULL,
    deleted bigint NOT NULL,
    PRIMARY KEY (zone, day)
);

-- Each user's first successful authentication (UTC instants).
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_first_success (
    user_id  text        PRIMARY KEY,
    first_at timestamptz NOT NULL
);

-- Failures by IP address ('' when the event has none) and by account (the
-- e-mail tried, or the user id when there is no e-mail), per UTC day (grain
-- 'd') and per UTC month (grain 'm').  `accounts` (days only) is the number
-- of distinct accounts the address failed against that day, fed by
-- rollup_fail_pairs.
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_fail_ip (
    grain      "char" NOT NULL,
    start      date   NOT NULL,
    ip_address text   NOT NULL,
    failures   bigint NOT NULL,
    accounts   bigint NOT NULL,
    PRIMARY KEY (grain, start, ip_address)
);
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_fail_account (
    grain    "char" NOT NULL,
    start    date   NOT NULL,
    account  text   NOT NULL,
    failures bigint NOT NULL,
    PRIMARY KEY (grain, start, account)
);
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_fail_pairs (
    day        date NOT NULL,
    ip_address text NOT NULL,
    account    text NOT NULL,
    PRIMARY KEY (day, ip_address, account)
);
-- The failure event types seen, so that a question over the last minutes
-- finds them in the log through events (event, created_at).
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_fail_events (
    event text PRIMARY KEY
);

-- Counters are updated in place again and again: leave room on their
-- pages so that the new version lands beside the old (a HOT update).
ALTER TABLE @SCHEMA@.rollup_auth_daily SET (fillfactor = 50);
ALTER TABLE @SCHEMA@.rollup_radar_daily SET (fillfactor = 50);
ALTER TABLE @SCHEMA@.rollup_active_counts SET (fillfactor = 50);
ALTER TABLE @SCHEMA@.rollup_org_active_counts SET (fillfactor = 50);
ALTER TABLE @SCHEMA@.rollup_sessions_daily SET (fillfactor = 50);
ALTER TABLE @SCHEMA@.rollup_users_daily SET (fillfactor = 50);
ALTER TABLE @SCHEMA@.rollup_fail_ip SET (fillfactor = 50);
ALTER TABLE @SCHEMA@.rollup_fail_account SET (fillfactor = 50);

-- Mirror indexes the questions over invitations, users and impersonated
-- sessions use (none of these columns changes after insert, so updates in
-- place stay possible).
CREATE INDEX IF NOT EXISTS invitations_created_at_idx ON @SCHEMA@.invitations (created_at);
CREATE INDEX IF NOT EXISTS users_created_at_idx ON @SCHEMA@.users (created_at);
CREATE INDEX IF NOT EXISTS sessions_impersonated_idx ON @SCHEMA@.sessions (created_at)
    WHERE impersonator IS NOT NULL;

-- The trigger function.  `new_events` is the statement's transition table:
-- the rows it inserted.  One statement updates every rollup; each insert is
-- ordered by its key so that two transactions adding to the same counters
-- lock them in the same order.  Nothing here casts a payload value, so no
-- payload can make it fail.
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_events() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    WITH a AS MATERIALIZED (
        SELECT e.created_at,
               e.event,
               coalesce(e.data ->> 'type',
                        substring(e.event FROM '^authentication\.(.*)_(?:succeeded|failed)$'),
                        '') AS method,
               CASE WHEN e.event LIKE 'authentication.%\_succeeded' THEN true
                    WHEN e.event LIKE 'authentication.%\_failed' THEN false END AS ok,
               e.data ->> 'user_id' AS user_id,
               coalesce(e.data ->> 'email', e.data ->> 'user_id') AS account,
               coalesce(e.data ->> 'ip_address', '') AS ip,
               coalesce(e.data -> 'error' ->> 'code', '') AS error_code,
               e.data ->> 'organization_id' AS organization_id
          FROM new_events e
         WHERE e.event LIKE 'authentication.%'
    ),
    s AS MATERIALIZED (
        SELECT e.created_at,
               coalesce(e.data ->> 'auth_method', '') AS auth_method,
               e.data ->> 'user_id' AS user_id,
               e.data ->> 'organization_id' AS organization_id,
               coalesce(jsonb_typeof(e.data -> 'impersonator') = 'object', false) AS impersonated
          FROM new_events e
         WHERE e.event = 'session.created'
    ),
    z AS MATERIALIZED (SELECT zone FROM @SCHEMA@.rollup_time_zones),
    az AS MATERIALIZED (
        SELECT z.zone, a.created_at AT TIME ZONE z.zone AS lt, a.*
          FROM a CROSS JOIN z
    ),
    outcomes AS (
        INSERT INTO @SCHEMA@.rollup_auth_daily AS t (zone, day, method, error_code, succeeded, failed)
        SELECT zone, lt::date, method, error_code,
               count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok)
          FROM az WHERE ok IS NOT NULL
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (zone, day, method, error_code) DO UPDATE
           SET succeeded = t.succeeded + excluded.succeeded, failed = t.failed + excluded.failed
        RETURNING 1
    ),
    radar AS (
        INSERT INTO @SCHEMA@.rollup_radar_daily AS t (zone, day, detections)
        SELECT zone, lt::date, count(*) FROM az
         WHERE event = 'authentication.radar_risk_detected'
         GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (zone, day) DO UPDATE SET detections = t.detections + excluded.detections
        RETURNING 1
    ),
    -- (zone, local day, user) of every success naming a user, and whether
    -- one of them was an MFA step.  A user new to a day is tried for its
    -- week and month; one the day already held is in them already, which
    -- spares most sign-ins two probes.
    pu AS MATERIALIZED (
        SELECT zone, lt::date AS day, user_id, bool_or(method = 'mfa') AS mfa
          FROM az
         WHERE ok AND user_id IS NOT NULL
         GROUP BY 1, 2, 3
    ),
    amd AS (
        INSERT INTO @SCHEMA@.rollup_active_members (zone, grain, start, user_id)
        SELECT zone, 'd', day, user_id FROM pu ORDER BY 1, 3, 4
        ON CONFLICT DO NOTHING
        RETURNING zone, grain, start, user_id
    ),
    amp AS (
        INSERT INTO @SCHEMA@.rollup_active_members (zone, grain, start, user_id)
        SELECT DISTINCT d.zone, p.grain, p.start, d.user_id
          FROM amd d
         CROSS JOIN LATERAL (VALUES ('w'::"char", date_trunc('week', d.start::timestamp)::date),
                                    ('m'::"char", date_trunc('month', d.start::timestamp)::date))
               AS p(grain, start)
         ORDER BY 1, 2, 3, 4
        ON CONFLICT DO NOTHING
        RETURNING zone, grain, start
    ),
    mmd AS (
        INSERT INTO @SCHEMA@.rollup_mfa_members (zone, grain, start, user_id)
        SELECT zone, 'd', day, user_id FROM pu WHERE mfa ORDER BY 1, 3, 4
        ON CONFLICT DO NOTHING
        RETURNING zone, grain, start, user_id
    ),
    mmp AS (
        INSERT INTO @SCHEMA@.rollup_mfa_members (zone, grain, start, user_id)
        SELECT DISTINCT d.zone, p.grain, p.start, d.user_id
          FROM mmd d
         CROSS JOIN LATERAL (VALUES ('w'::"char", date_trunc('week', d.start::timestamp)::date),
                                    ('m'::"char", date_trunc('month', d.start::timestamp)::date))
               AS p(grain, start)
         ORDER BY 1, 2, 3, 4
        ON CONFLICT DO NOTHING
        RETURNING zone, grain, start
    ),
    ac AS (
        INSERT INTO @SCHEMA@.rollup_active_counts AS t (zone, grain, start, users, mfa_users)
        SELECT zone, grain, start, sum(u), sum(m)
          FROM (SELECT zone, grain, start, 1 AS u, 0 AS m FROM amd
                UNION ALL
                SELECT zone, grain, start, 1, 0 FROM amp
                UNION ALL
                SELECT zone, grain, start, 0, 1 FROM mmd
                UNION ALL
                SELECT zone, grain, start, 0, 1 FROM mmp) x
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (zone, grain, start) DO UPDATE
           SET users = t.users + excluded.users, mfa_users = t.mfa_users + excluded.mfa_users
        RETURNING 1
    ),
    -- Per organization: a success naming its organization, or a session
    -- started in one (impersonations aside); days first, as above.
    pod AS (
        SELECT DISTINCT x.zone, x.lt::date AS day, x.organization_id, x.user_id
          FROM (SELECT zone, lt, organization_id, user_id FROM az
                 WHERE ok AND organization_id IS NOT NULL AND user_id IS NOT NULL
                UNION ALL
                SELECT z.zone, s.created_at AT TIME ZONE z.zone, s.organization_id, s.user_id
                  FROM s CROSS JOIN z
                 WHERE NOT s.impersonated AND s.organization_id IS NOT NULL
                   AND s.user_id IS NOT NULL) x
    ),
    omd AS (
        INSERT INTO @SCHEMA@.rollup_org_active_members (zone, grain, start, organization_id, user_id)
        SELECT zone, 'd', day, organization_id, user_id FROM pod ORDER BY 1, 3, 4, 5
        ON CONFLICT DO NOTHING
        RETURNING zone, grain, start, organization_id, user_id
    ),
    omp AS (
        INSERT INTO @SCHEMA@.rollup_org_active_members (zone, grain, start, organization_id, user_id)
        SELECT DISTINCT d.zone, p.grain, p.start, d.organization_id, d.user_id
          FROM omd d
         CROSS JOIN LATERAL (VALUES ('w'::"char", date_trunc('week', d.start::timestamp)::date),
                                    ('m'::"char", date_trunc('month', d.start::timestamp)::date))
               AS p(grain, start)
         ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT DO NOTHING
        RETURNING zone, grain, start, organization_id
    ),
    oc AS (
        INSERT INTO @SCHEMA@.rollup_org_active_counts AS t (zone, grain, start, organization_id, users)
        SELECT zone, grain, start, organization_id, count(*)
          FROM (SELECT zone, grain, start, organization_id FROM omd
                UNION ALL
                SELECT zone, grain, start, organization_id FROM omp) x
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (zone, grain, start, organization_id) DO UPDATE SET users = t.users + excluded.users
        RETURNING 1
    ),
    -- A first success is written only when it is earlier than the one kept
    -- (a probe, not a row lock, for every user seen before).
    fs AS (
        INSERT INTO @SCHEMA@.rollup_first_success AS t (user_id, first_at)
        SELECT x.user_id, x.first_at
          FROM (SELECT user_id, min(created_at) AS first_at FROM a
                 WHERE ok AND user_id IS NOT NULL GROUP BY 1) x
         WHERE NOT EXISTS (SELECT 1 FROM @SCHEMA@.rollup_first_success k
                            WHERE k.user_id = x.user_id AND k.first_at <= x.first_at)
         ORDER BY 1
        ON CONFLICT (user_id) DO UPDATE SET first_at = excluded.first_at
         WHERE excluded.first_at < t.first_at
        RETURNING 1
    ),
    sd AS (
        INSERT INTO @SCHEMA@.rollup_sessions_daily AS t (zone, day, auth_method, sessions, impersonated)
        SELECT z.zone, (s.created_at AT TIME ZONE z.zone)::date, s.auth_method,
               count(*), count(*) FILTER (WHERE s.impersonated)
          FROM s CROSS JOIN z
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (zone, day, auth_method) DO UPDATE
           SET sessions = t.sessions + excluded.sessions,
               impersonated = t.impersonated + excluded.impersonated
        RETURNING 1
    ),
    ud AS (
        INSERT INTO @SCHEMA@.rollup_users_daily AS t (zone, day, created, deleted)
        SELECT z.zone, (e.created_at AT TIME ZONE z.zone)::date,
               count(*) FILTER (WHERE e.event = 'user.created'),
               count(*) FILTER (WHERE e.event = 'user.deleted')
          FROM new_events e CROSS JOIN z
         WHERE e.event IN ('user.created', 'user.deleted')
         GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (zone, day) DO UPDATE
           SET created = t.created + excluded.created, deleted = t.deleted + excluded.deleted
        RETURNING 1
    ),
    f AS MATERIALIZED (
        SELECT event, created_at AT TIME ZONE 'UTC' AS lt, ip, account FROM a WHERE NOT ok
    ),
    fp AS (
        INSERT INTO @SCHEMA@.rollup_fail_pairs (day, ip_address, account)
        SELECT DISTINCT lt::date, ip, account FROM f WHERE account IS NOT NULL ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING
        RETURNING day, ip_address
    ),
    fi AS (
        INSERT INTO @SCHEMA@.rollup_fail_ip AS t (grain, start, ip_address, failures, accounts)
        SELECT g.grain, g.start, g.ip, sum(g.n), sum(g.pairs)
          FROM (SELECT 'd'::"char" AS grain, lt::date AS start, ip, 1 AS n, 0 AS pairs FROM f
                UNION ALL
                SELECT 'm', date_trunc('month', lt)::date, ip, 1, 0 FROM f
                UNION ALL
                SELECT 'd', day, ip_address, 0, 1 FROM fp) g
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (grain, start, ip_address) DO UPDATE
           SET failures = t.failures + excluded.failures, accounts = t.accounts + excluded.accounts
        RETURNING 1
    ),
    fa AS (
        INSERT INTO @SCHEMA@.rollup_fail_account AS t (grain, start, account, failures)
        SELECT g.grain, g.start, f.account, count(*)
          FROM f CROSS JOIN LATERAL (VALUES ('d'::"char", f.lt::date),
                                            ('m'::"char", date_trunc('month', f.lt)::date)) AS g(grain, start)
         WHERE f.account IS NOT NULL
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (grain, start, account) DO UPDATE SET failures = t.failures + excluded.failures
        RETURNING 1
    )
    -- Every data-modifying part of a WITH runs to completion whether read
    -- or not; the last insert is the statement's own.
    INSERT INTO @SCHEMA@.rollup_fail_events (event)
    SELECT DISTINCT event FROM f ORDER BY 1
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS events_rollup ON @SCHEMA@.events;
CREATE TRIGGER events_rollup AFTER INSERT ON @SCHEMA@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @SCHEMA@.rollup_events();

-- rebuild_rollups(): empties every rollup and adds the whole log again,
-- month by month, through the same trigger function (attached for the
-- occasion to a temporary table the log's rows of interest are copied to),
-- so a rebuilt rollup equals one kept incrementally.  New events wait while
-- it runs (the log is locked against writes until it commits).  Returns the
-- number of events it rolled up.
CREATE OR REPLACE FUNCTION @SCHEMA@.rebuild_rollups() RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    lo timestamp;
    hi timestamp;
    m timestamp;
    k bigint;
    n bigint := 0;
BEGIN
    LOCK TABLE @SCHEMA@.events IN SHARE MODE;
    TRUNCATE @SCHEMA@.rollup_auth_daily, @SCHEMA@.rollup_radar_daily,
             @SCHEMA@.rollup_active_members, @SCHEMA@.rollup_mfa_members,
             @SCHEMA@.rollup_active_counts, @SCHEMA@.rollup_org_active_members,
             @SCHEMA@.rollup_org_active_counts, @SCHEMA@.rollup_sessions_daily,
             @SCHEMA@.rollup_users_daily, @SCHEMA@.rollup_first_success,
             @SCHEMA@.rollup_fail_ip, @SCHEMA@.rollup_fail_account,
             @SCHEMA@.rollup_fail_pairs, @SCHEMA@.rollup_fail_events;
    IF to_regclass('pg_temp.rollup_feed') IS NOT NULL THEN
        DROP TABLE pg_temp.rollup_feed;
    END IF;
    CREATE TEMPORARY TABLE rollup_feed (event text, created_at timestamptz, data jsonb)
        ON COMMIT DROP;
    CREATE TRIGGER rollup_feed_rollup AFTER INSERT ON pg_temp.rollup_feed
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION @SCHEMA@.rollup_events();
    SELECT date_trunc('month', min(created_at) AT TIME ZONE 'UTC'), max(created_at) AT TIME ZONE 'UTC'
      INTO lo, hi FROM @SCHEMA@.events;
    m := lo;
    WHILE m <= hi LOOP
        EXECUTE format($q$
            INSERT INTO pg_temp.rollup_feed (event, created_at, data)
            SELECT event, created_at, data FROM %I.events
             WHERE created_at >= $1 AND created_at < $2
               AND (event LIKE 'authentication.%%'
                    OR event IN ('session.created', 'user.created', 'user.deleted'))$q$, '@SCHEMA@')
            USING m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC';
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
        EXECUTE 'TRUNCATE pg_temp.rollup_feed';
        m := m + interval '1 month';
    END LOOP;
    DROP TABLE pg_temp.rollup_feed;
    RETURN n;
END
$fn$;

-- The zone a question names, when rollups are kept for it.
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_zone(tz text) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    PERFORM 1 FROM @SCHEMA@.rollup_time_zones WHERE zone = tz;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no rollups are kept for time zone %', tz
            USING HINT = format('SELECT @SCHEMA@.add_rollup_time_zone(%L) keeps them from now on, '
                                'filled from the log.', tz);
    END IF;
    RETURN tz;
END
$fn$;

-- 'day', 'week' or 'month' as the rollups' grain.
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_grain(unit text) RETURNS "char"
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    CASE unit
        WHEN 'day' THEN RETURN 'd';
        WHEN 'week' THEN RETURN 'w';
        WHEN 'month' THEN RETURN 'm';
        ELSE RAISE EXCEPTION 'unit must be day, week or month, not %', unit;
    END CASE;
END
$fn$;

-- add_rollup_time_zone(tz): keep the daily rollups for one more zone (an
-- IANA name, e.g. 'Europe/Paris'), and fill them by rebuilding.  Every
-- zone adds to each apply's work.  Returns what rebuild_rollups() returns,
-- or 0 when the zone was already kept.
CREATE OR REPLACE FUNCTION @SCHEMA@.add_rollup_time_zone(tz text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO @SCHEMA@.rollup_time_zones (zone) VALUES (tz) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    RETURN @SCHEMA@.rebuild_rollups();
END
$fn$;

-- drop_rollup_time_zone(tz): stop keeping a zone (not UTC) and delete its rows.
CREATE OR REPLACE FUNCTION @SCHEMA@.drop_rollup_time_zone(tz text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF tz = 'UTC' THEN
        RAISE EXCEPTION 'the UTC rollups are always kept';
    END IF;
    LOCK TABLE @SCHEMA@.events IN SHARE MODE;
    DELETE FROM @SCHEMA@.rollup_time_zones WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_auth_daily WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_radar_daily WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_active_members WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_mfa_members WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_active_counts WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_org_active_members WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_org_active_counts WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_sessions_daily WHERE zone = tz;
    DELETE FROM @SCHEMA@.rollup_users_daily WHERE zone = tz;
END
$fn$;

-- ---------------------------------------------------------------------------
-- The questions.  Day-keyed functions take an inclusive range of local days
-- [from_day, to_day] and a zone (default UTC); week and month rows are the
-- periods starting in that range.

-- Distinct users with a successful authentication, per UTC day.
CREATE OR REPLACE VIEW @SCHEMA@.active_users_daily AS
SELECT start AS day, users
  FROM @SCHEMA@.rollup_active_counts
 WHERE zone = 'UTC' AND grain = 'd';

-- Authentication attempts per UTC day and method (the event's `type`).
CREATE OR REPLACE VIEW @SCHEMA@.auth_outcomes_daily AS
SELECT day, method,
       sum(succeeded + failed)::bigint AS attempts,
       sum(succeeded)::bigint AS succeeded,
       sum(failed)::bigint AS failed
  FROM @SCHEMA@.rollup_auth_daily
 WHERE zone = 'UTC'
 GROUP BY day, method;

CREATE OR REPLACE FUNCTION @SCHEMA@.active_users(from_day date, to_day date,
                                                 unit text DEFAULT 'day', tz text DEFAULT 'UTC')
RETURNS TABLE (period_start date, users bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT start, users FROM @SCHEMA@.rollup_active_counts
     WHERE zone = @SCHEMA@.rollup_zone(tz) AND grain = @SCHEMA@.rollup_grain(unit)
       AND start BETWEEN from_day AND to_day
     ORDER BY start
$fn$;

CREATE OR REPLACE FUNCTION @SCHEMA@.active_users_by_organization(
    from_day date, to_day date, unit text DEFAULT 'day', tz text DEFAULT 'UTC',
    organization text DEFAULT NULL)
RETURNS TABLE (period_start date, organization_id text, users bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT start, organization_id, users FROM @SCHEMA@.rollup_org_active_counts
     WHERE zone = @SCHEMA@.rollup_zone(tz) AND grain = @SCHEMA@.rollup_grain(unit)
       AND start BETWEEN from_day AND to_day
       AND (organization IS NULL OR organization_id = organization)
     ORDER BY start, organization_id
$fn$;

CREATE OR REPLACE FUNCTION @SCHEMA@.mfa_adoption(from_day date, to_day date,
                                                 unit text DEFAULT 'day', tz text DEFAULT 'UTC')
RETURNS TABLE (period_start date, active_users bigint, mfa_users bigint, mfa_share numeric)
LANGUAGE sql STABLE AS $fn$
    SELECT start, users, mfa_users, round(mfa_users::numeric / nullif(users, 0), 4)
      FROM @SCHEMA@.rollup_active_counts
     WHERE zone = @SCHEMA@.rollup_zone(tz) AND grain = @SCHEMA@.rollup_grain(unit)
       AND start BETWEEN from_day AND to_day
     ORDER BY start
$fn$;

CREATE OR REPLACE FUNCTION @SCHEMA@.auth_outcomes(from_day date, to_day date, tz text DEFAULT 'UTC')
RETURNS TABLE (day date, method text, attempts bigint, succeeded bigint, failed bigint,
               success_rate numeric)
LANGUAGE sql STABLE AS $fn$
    SELECT day, method, sum(succeeded + failed)::bigint, sum(succeeded)::bigint, sum(failed)::bigint,
           round(sum(succeeded) / nullif(sum(succeeded + failed), 0), 4)
      FROM @SCHEMA@.rollup_auth_daily
     WHERE zone = @SCHEMA@.rollup_zone(tz) AND day BETWEEN from_day AND to_day
     GROUP BY day, method
     ORDER BY day, method
$fn$;

CREATE OR REPLACE FUNCTION @SCHEMA@.auth_failures_by_error(from_day date, to_day date,
                                                           tz text DEFAULT 'UTC')
RETURNS TABLE (day date, method text, error_code text, failures bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT day, method, nullif(error_code, ''), failed
      FROM @SCHEMA@.rollup_auth_daily
     WHERE zone = @SCHEMA@.rollup_zone(tz) AND day BETWEEN from_day AND to_day AND failed > 0
     ORDER BY day, method, error_code
$fn$;

-- The ranges a question over [since, until) reads: whole UTC months and
-- days from the failure rollups, and the ragged ends from the log.
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_fail_ranges(since timestamptz, until timestamptz,
    OUT d0 date, OUT m0 date, OUT m1 date, OUT d1 date,
    OUT l0 timestamptz, OUT l1 timestamptz, OUT l2 timestamptz, OUT l3 timestamptz)
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    s timestamp := since AT TIME ZONE 'UTC';
    u timestamp := until AT TIME ZONE 'UTC';
BEGIN
    d0 := CASE WHEN s = date_trunc('day', s) THEN s::date ELSE s::date + 1 END;
    d1 := u::date;
    IF d0 >= d1 THEN
        -- No whole day: all from the log.
        d0 := d1; m0 := d1; m1 := d1;
        l0 := since; l1 := greatest(since, until); l2 := l1; l3 := l1;
        RETURN;
    END IF;
    m0 := date_trunc('month', d0)::date;
    IF m0 < d0 THEN
        m0 := (m0 + interval '1 month')::date;
    END IF;
    m1 := date_trunc('month', d1)::date;
    IF m0 >= m1 THEN
        m0 := d1; m1 := d1;
    END IF;
    l0 := since; l1 := d0::timestamp AT TIME ZONE 'UTC';
    l2 := d1::timestamp AT TIME ZONE 'UTC'; l3 := until;
END
$fn$;

-- The IP addresses with the most failed authentications in [since, until).
-- PL/pgSQL, so that each part runs with its bounds as plain values and the
-- ragged ends reach the log through events (event, created_at).
CREATE OR REPLACE FUNCTION @SCHEMA@.auth_failures_by_ip(since timestamptz,
    until timestamptz DEFAULT now(), top integer DEFAULT 20)
RETURNS TABLE (ip_address text, failures bigint)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    r record;
    names text[] := ARRAY(SELECT event FROM @SCHEMA@.rollup_fail_events);
BEGIN
    SELECT * INTO r FROM @SCHEMA@.rollup_fail_ranges(since, until);
    RETURN QUERY
    SELECT nullif(x.ip, ''), sum(x.n)::bigint
      FROM (SELECT f.ip_address, f.failures FROM @SCHEMA@.rollup_fail_ip f
             WHERE f.grain = 'm' AND f.start >= r.m0 AND f.start < r.m1
            UNION ALL
            SELECT f.ip_address, f.failures FROM @SCHEMA@.rollup_fail_ip f
             WHERE f.grain = 'd' AND f.start >= r.d0 AND f.start < r.m0
            UNION ALL
            SELECT f.ip_address, f.failures FROM @SCHEMA@.rollup_fail_ip f
             WHERE f.grain = 'd' AND f.start >= r.m1 AND f.start < r.d1
            UNION ALL
            SELECT coalesce(e.data ->> 'ip_address', ''), 1 FROM @SCHEMA@.events e
             WHERE e.event = ANY (names) AND e.event LIKE 'authentication.%\_failed'
               AND e.created_at >= r.l0 AND e.created_at < r.l1
            UNION ALL
            SELECT coalesce(e.data ->> 'ip_address', ''), 1 FROM @SCHEMA@.events e
             WHERE e.event = ANY (names) AND e.event LIKE 'authentication.%\_failed'
               AND e.created_at >= r.l2 AND e.created_at < r.l3) x(ip, n)
     GROUP BY x.ip
     ORDER BY 2 DESC, 1
     LIMIT top;
END
$fn$;

-- The accounts (e-mail tried, else user id) with the most failures in
-- [since, until).
CREATE OR REPLACE FUNCTION @SCHEMA@.auth_failures_by_account(since timestamptz,
    until timestamptz DEFAULT now(), top integer DEFAULT 20)
RETURNS TABLE (account text, failures bigint)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    r record;
    names text[] := ARRAY(SELECT event FROM @SCHEMA@.rollup_fail_events);
BEGIN
    SELECT * INTO r FROM @SCHEMA@.rollup_fail_ranges(since, until);
    RETURN QUERY
    SELECT x.a, sum(x.n)::bigint
      FROM (SELECT f.account, f.failures FROM @SCHEMA@.rollup_fail_account f
             WHERE f.grain = 'm' AND f.start >= r.m0 AND f.start < r.m1
            UNION ALL
            SELECT f.account, f.failures FROM @SCHEMA@.rollup_fail_account f
             WHERE f.grain = 'd' AND f.start >= r.d0 AND f.start < r.m0
            UNION ALL
            SELECT f.account, f.failures FROM @SCHEMA@.rollup_fail_account f
             WHERE f.grain = 'd' AND f.start >= r.m1 AND f.start < r.d1
            UNION ALL
            SELECT coalesce(e.data ->> 'email', e.data ->> 'user_id'), 1 FROM @SCHEMA@.events e
             WHERE e.event = ANY (names) AND e.event LIKE 'authentication.%\_failed'
               AND e.created_at >= r.l0 AND e.created_at < r.l1
            UNION ALL
            SELECT coalesce(e.data ->> 'email', e.data ->> 'user_id'), 1 FROM @SCHEMA@.events e
             WHERE e.event = ANY (names) AND e.event LIKE 'authentication.%\_failed'
               AND e.created_at >= r.l2 AND e.created_at < r.l3) x(a, n)
     WHERE x.a IS NOT NULL
     GROUP BY x.a
     ORDER BY 2 DESC, 1
     LIMIT top;
END
$fn$;

-- Credential stuffing: addresses that failed against at least min_accounts
-- distinct accounts in one UTC day.
CREATE OR REPLACE FUNCTION @SCHEMA@.auth_credential_stuffing(from_day date, to_day date,
    min_accounts integer DEFAULT 10)
RETURNS TABLE (day date, ip_address text, accounts bigint, failures bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT start, nullif(ip_address, ''), accounts, failures FROM @SCHEMA@.rollup_fail_ip
     WHERE grain = 'd' AND start BETWEEN from_day AND to_day AND accounts >= min_accounts
     ORDER BY start, accounts DESC, ip_address
$fn$;

-- The same over the last minutes: [since, until) straight from the log
-- (through events (event, created_at)), for windows of minutes or hours.
CREATE OR REPLACE FUNCTION @SCHEMA@.auth_credential_stuffing_recent(since timestamptz,
    min_accounts integer DEFAULT 10, until timestamptz DEFAULT now())
RETURNS TABLE (ip_address text, accounts bigint, failures bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT e.data ->> 'ip_address',
           count(DISTINCT coalesce(e.data ->> 'email', e.data ->> 'user_id')), count(*)
      FROM @SCHEMA@.events e
     WHERE e.event = ANY (ARRAY(SELECT event FROM @SCHEMA@.rollup_fail_events))
       AND e.event LIKE 'authentication.%\_failed'
       AND e.created_at >= since AND e.created_at < until
     GROUP BY 1
    HAVING count(DISTINCT coalesce(e.data ->> 'email', e.data ->> 'user_id')) >= min_accounts
     ORDER BY 2 DESC, 1
$fn$;

CREATE OR REPLACE FUNCTION @SCHEMA@.auth_radar_daily(from_day date, to_day date, tz text DEFAULT 'UTC')
RETURNS TABLE (day date, detections bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT day, detections FROM @SCHEMA@.rollup_radar_daily
     WHERE zone = @SCHEMA@.rollup_zone(tz) AND day BETWEEN from_day AND to_day
     ORDER BY day
$fn$;

-- authentication.radar_risk_detected events in [since, until), newest first.
CREATE OR REPLACE FUNCTION @SCHEMA@.auth_radar_events(since timestamptz,
                                                      until timestamptz DEFAULT now())
RETURNS TABLE (created_at timestamptz, user_id text, email text, ip_address text,
               user_agent text, data jsonb)
LANGUAGE sql STABLE AS $fn$
    SELECT e.created_at, e.data ->> 'user_id', e.data ->> 'email', e.data ->> 'ip_address',
           e.data ->> 'user_agent', e.data
      FROM @SCHEMA@.events e
     WHERE e.event = 'authentication.radar_risk_detected'
       AND e.created_at >= since AND e.created_at < until
     ORDER BY e.created_at DESC
$fn$;

-- user.created and user.deleted events per local day.
CREATE OR REPLACE FUNCTION @SCHEMA@.new_users_daily(from_day date, to_day date, tz text DEFAULT 'UTC')
RETURNS TABLE (day date, created bigint, deleted bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT day, created, deleted FROM @SCHEMA@.rollup_users_daily
     WHERE zone = @SCHEMA@.rollup_zone(tz) AND day BETWEEN from_day AND to_day
     ORDER BY day
$fn$;

-- Activation, per local day of the user's creation (the mirror's
-- created_at): users created, those with a successful authentication since,
-- and the median time from creation to the first one.  Any zone.
CREATE OR REPLACE FUNCTION @SCHEMA@.user_activation(from_day date, to_day date, tz text DEFAULT 'UTC')
RETURNS TABLE (day date, created bigint, activated bigint, median_time_to_activate interval)
LANGUAGE sql STABLE AS $fn$
    SELECT (u.created_at AT TIME ZONE tz)::date,
           count(*),
           count(f.first_at),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY f.first_at - u.created_at)
      FROM @SCHEMA@.users u
      LEFT JOIN @SCHEMA@.rollup_first_success f
        ON f.user_id = u.id AND f.first_at >= u.created_at
     WHERE u.created_at >= from_day::timestamp AT TIME ZONE tz
       AND u.created_at < (to_day + 1)::timestamp AT TIME ZONE tz
     GROUP BY 1
     ORDER BY 1
$fn$;

-- Invitations per local day, for one organization or (NULL) all of them:
-- sent (created), accepted, revoked, and expired without being accepted
-- (on the day they expired), from the mirror.  Any zone.
CREATE OR REPLACE FUNCTION @SCHEMA@.invitations_daily(from_day date, to_day date,
    tz text DEFAULT 'UTC', organization text DEFAULT NULL)
RETURNS TABLE (day date, organization_id text, sent bigint, accepted bigint, revoked bigint,
               expired bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT (x.at AT TIME ZONE tz)::date, organization,
           count(*) FILTER (WHERE x.what = 's'), count(*) FILTER (WHERE x.what = 'a'),
           count(*) FILTER (WHERE x.what = 'r'), count(*) FILTER (WHERE x.what = 'e')
      FROM @SCHEMA@.invitations i
     CROSS JOIN LATERAL (VALUES ('s', i.created_at), ('a', i.accepted_at), ('r', i.revoked_at),
                                ('e', CASE WHEN i.accepted_at IS NULL AND i.revoked_at IS NULL
                                            AND i.state IN ('pending', 'expired')
                                            AND i.expires_at <= now() THEN i.expires_at END))
           AS x(what, at)
     WHERE i.created_at < (to_day + 1)::timestamp AT TIME ZONE tz
       AND i.deleted_at IS NULL
       AND (organization IS NULL OR i.organization_id = organization)
       AND x.at >= from_day::timestamp AT TIME ZONE tz
       AND x.at < (to_day + 1)::timestamp AT TIME ZONE tz
     GROUP BY 1
     ORDER BY 1
$fn$;

-- The invitations sent in the local days [from_day, to_day], per
-- organization: what became of them, and the median time to accept.
CREATE OR REPLACE FUNCTION @SCHEMA@.invitation_summary(from_day date, to_day date,
    tz text DEFAULT 'UTC', organization text DEFAULT NULL)
RETURNS TABLE (organization_id text, sent bigint, accepted bigint, revoked bigint,
               expired_unaccepted bigint, pending bigint, median_time_to_accept interval)
LANGUAGE sql STABLE AS $fn$
    SELECT i.organization_id, count(*),
           count(*) FILTER (WHERE i.accepted_at IS NOT NULL OR i.state = 'accepted'),
           count(*) FILTER (WHERE i.revoked_at IS NOT NULL OR i.state = 'revoked'),
           count(*) FILTER (WHERE i.accepted_at IS NULL AND i.revoked_at IS NULL
                              AND i.state IN ('pending', 'expired') AND i.expires_at <= now()),
           count(*) FILTER (WHERE i.state = 'pending' AND (i.expires_at IS NULL OR i.expires_at > now())),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY i.accepted_at - i.created_at)
      FROM @SCHEMA@.invitations i
     WHERE i.created_at >= from_day::timestamp AT TIME ZONE tz
       AND i.created_at < (to_day + 1)::timestamp AT TIME ZONE tz
       AND i.deleted_at IS NULL
       AND (organization IS NULL OR i.organization_id = organization)
     GROUP BY 1
     ORDER BY 2 DESC, 1
$fn$;

-- Sessions created per local day and auth method, and how many of them
-- were impersonations.
CREATE OR REPLACE FUNCTION @SCHEMA@.sessions_daily(from_day date, to_day date, tz text DEFAULT 'UTC')
RETURNS TABLE (day date, auth_method text, sessions bigint, impersonated bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT day, nullif(auth_method, ''), sessions, impersonated FROM @SCHEMA@.rollup_sessions_daily
     WHERE zone = @SCHEMA@.rollup_zone(tz) AND day BETWEEN from_day AND to_day
     ORDER BY day, auth_method
$fn$;

-- Impersonated sessions: who (the impersonator's e-mail and reason)
-- impersonated whom, when, and for how long (until the session ended or
-- expired; until now while it is active).
CREATE OR REPLACE VIEW @SCHEMA@.impersonations AS
SELECT s.id AS session_id,
       s.impersonator ->> 'email' AS impersonator_email,
       s.impersonator ->> 'reason' AS reason,
       s.user_id,
       u.email AS user_email,
       s.organization_id,
       s.created_at AS started_at,
       coalesce(s.ended_at, CASE WHEN s.expires_at <= now() THEN s.expires_at END) AS ended_at,
       coalesce(s.ended_at, least(s.expires_at, now())) - s.created_at AS duration,
       s.status
  FROM @SCHEMA@.sessions s
  LEFT JOIN @SCHEMA@.users u ON u.id = s.user_id
 WHERE s.impersonator IS NOT NULL AND jsonb_typeof(s.impersonator) = 'object';

-- Seats: live memberships per organization and role, by status.
CREATE OR REPLACE VIEW @SCHEMA@.seats AS
SELECT organization_id, role_slug,
       count(*) FILTER (WHERE status = 'active') AS seats,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status NOT IN ('active', 'pending') OR status IS NULL) AS other
  FROM @SCHEMA@.organization_memberships
 WHERE deleted_at IS NULL
 GROUP BY organization_id, role_slug;

-- Memberships (created and not yet deleted, whatever their status) at the
-- end of each local day, for one organization or (NULL) all of them, from
-- the mirror's created_at and deleted_at.
CREATE OR REPLACE FUNCTION @SCHEMA@.seats_daily(from_day date, to_day date,
    organization text DEFAULT NULL, tz text DEFAULT 'UTC')
RETURNS TABLE (day date, organization_id text, memberships bigint)
LANGUAGE sql STABLE AS $fn$
    WITH m AS (
        SELECT created_at, deleted_at FROM @SCHEMA@.organization_memberships
         WHERE created_at IS NOT NULL
           AND (organization IS NULL OR organization_id = organization)
    ), ev AS (
        SELECT created_at AS at, 1 AS delta FROM m
        UNION ALL
        SELECT deleted_at, -1 FROM m WHERE deleted_at IS NOT NULL
    ), base AS (
        SELECT coalesce(sum(delta), 0) AS n FROM ev WHERE at < from_day::timestamp AT TIME ZONE tz
    ), daily AS (
        SELECT (at AT TIME ZONE tz)::date AS day, sum(delta) AS d FROM ev
         WHERE at >= from_day::timestamp AT TIME ZONE tz
           AND at < (to_day + 1)::timestamp AT TIME ZONE tz
         GROUP BY 1
    )
    SELECT g.day, organization, (base.n + sum(coalesce(daily.d, 0)) OVER (ORDER BY g.day))::bigint
      FROM (SELECT d::date AS day FROM generate_series(from_day::timestamp, to_day::timestamp,
                                                       interval '1 day') d) g
     CROSS JOIN base
      LEFT JOIN daily ON daily.day = g.day
     ORDER BY 1
$fn$;

-- Roll up what the log already holds.
SELECT @SCHEMA@.rebuild_rollups();
