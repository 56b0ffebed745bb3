-- 013: a value too long for an index no longer stops the rollups.
--
-- rollup_events() keys rollups by text taken from an event's data (the
-- account, IP address, method, error code, user and organization ids).
-- One authentication event whose email held 3,000 bytes failed the
-- rollup step's statement on the index of rollup_fail_account, every time:
-- the queue stopped draining and the analytics stopped there.  The events
-- are now fed to rollup_events() through rollup_data(), which cuts such a
-- value (over 512 bytes) to its first 128 characters and "...", so
-- the event is still counted, under a key that fits with the others of
-- its row.  The read functions that count the last hours straight from
-- the log still show the whole value there.
--
-- rollup_step() and rebuild_rollups() are restated from 011 with that one
-- change each (a later migration replaces a function whole).
--
-- Every statement is idempotent.

CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_key(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length(v) > 512 THEN left(v, 128) || '...' ELSE v END
$$;

-- The data with each key field over 512 bytes cut (the rare case).
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_data_cut(d jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT d || coalesce((SELECT jsonb_object_agg(f, @SCHEMA@.rollup_key(d ->> f))
                            FROM unnest(ARRAY['type', 'user_id', 'email', 'ip_address',
                                              'organization_id', 'auth_method']) AS f
                           WHERE octet_length(d ->> f) > 512), '{}')
           || CASE WHEN jsonb_typeof(d -> 'error') = 'object'
                        AND octet_length(d -> 'error' ->> 'code') > 512
                   THEN jsonb_build_object('error', (d -> 'error')
                        || jsonb_build_object('code', @SCHEMA@.rollup_key(d -> 'error' ->> 'code')))
                   ELSE '{}' END
$$;

-- The data as rollup_events() reads it: unchanged unless one of the fields
-- it keys by is too long.  One expression without a sub-select, so that
-- the planner inlines it: a few lookups an event.
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_data(d jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_typeof(d) = 'object'
         AND coalesce(octet_length(d ->> 'type') > 512 OR octet_length(d ->> 'user_id') > 512
                      OR octet_length(d ->> 'email') > 512
                      OR octet_length(d ->> 'ip_address') > 512
                      OR octet_length(d ->> 'organization_id') > 512
                      OR octet_length(d ->> 'auth_method') > 512
                      OR octet_length(d -> 'error' ->> 'code') > 512, false)
        THEN @SCHEMA@.rollup_data_cut(d)
        ELSE d
    END
$$;

-- rollup_step() as in 011, its events fed through rollup_data().
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_step(max_rows int) RETURNS int
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    picked bigint[] := '{}';
    n int := 0;
BEGIN
    IF to_regclass('pg_temp.rollup_step_feed') IS NULL THEN
        CREATE TEMPORARY TABLE rollup_step_feed (event text, created_at timestamptz, data jsonb)
            ON COMMIT DELETE ROWS;
        CREATE TRIGGER rollup_step_feed_rollup AFTER INSERT ON pg_temp.rollup_step_feed
            REFERENCING NEW TABLE AS new_events
            FOR EACH STATEMENT EXECUTE FUNCTION @SCHEMA@.rollup_events();
    END IF;
    -- The loop's cursor locks the rows it reads (a few ahead of the last
    -- one taken; those are only locked until the commit).
    FOR r IN SELECT seq, cardinality(event_ids) AS k FROM @SCHEMA@.rollup_queue
              ORDER BY seq FOR UPDATE SKIP LOCKED LOOP
        picked := picked || r.seq;
        n := n + r.k;
        EXIT WHEN n >= max_rows;
    END LOOP;
    IF cardinality(picked) = 0 THEN
        RETURN 0;
    END IF;
    EXECUTE $q$
        WITH q AS (
            DELETE FROM @SCHEMA@.rollup_queue WHERE seq = ANY ($1) RETURNING event_ids
        )
        INSERT INTO pg_temp.rollup_step_feed (event, created_at, data)
        SELECT e.event, e.created_at, @SCHEMA@.rollup_data(e.data)
          FROM q CROSS JOIN LATERAL unnest(q.event_ids) AS i(id)
          JOIN @SCHEMA@.events e ON e.id = i.id$q$
        USING picked;
    RETURN n;
END
$fn$;

-- rebuild_rollups() as in 011, the log's rows fed through rollup_data().
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
    TRUNCATE @SCHEMA@.rollup_queue;
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
            SELECT event, created_at, %I.rollup_data(data) FROM %I.events
             WHERE created_at >= $1 AND created_at < $2
               AND (event LIKE 'authentication.%%'
                    OR event IN ('session.created', 'user.created', 'user.deleted'))$q$, '@SCHEMA@', '@SCHEMA@')
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
