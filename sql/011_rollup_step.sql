-- 011: the rollups leave the apply transaction for a bounded periodic step.
--
-- Until now the trigger events_rollup updated every rollup in the apply
-- transaction, on the one backend that applies events: a backfill paid
-- about 5 ms of that backend's CPU per 1,000 events, 11-13 % of its rate.
-- Now the trigger only queues the ids of the rows a rollup needs in
-- rollup_queue, one row (an array of ids) per statement (logged: the ids
-- survive a crash with the events they name, in the same commit), and
-- rollup_step(max_rows) -- run every 250 ms by the instance that polls, on
-- a connection of its own -- takes queued rows until they hold max_rows
-- ids and adds their events through the same rollup_events() function, in
-- one transaction with the delete of those rows.  So each event
-- is counted exactly once: its id is queued by the commit that stores it
-- and leaves the queue by the commit that counts it, whatever crashes in
-- between; two steps at once take disjoint rows (SKIP LOCKED).  The rollups
-- trail the log by the step's period, a second at most while a backfill
-- keeps the queue full.
--
-- rebuild_rollups() counts the whole log and empties the queue in the same
-- transaction, under the lock that keeps new events out, so an id queued
-- before it is counted by it and one queued after by the step.  A restored
-- backup holds a queue consistent with its rollups (both are in the same
-- snapshot), and rebuild-rollups resets both.
--
-- Every statement is idempotent.

-- One row per inserting statement that stored an event of interest: a
-- row per event would cost the apply an index entry and a sequence value
-- each, and the step a delete each.
CREATE TABLE IF NOT EXISTS @SCHEMA@.rollup_queue (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_ids text[] NOT NULL CHECK (cardinality(event_ids) > 0)
);

-- The queueing trigger: at most one row, in the apply.
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO @SCHEMA@.rollup_queue (event_ids)
    SELECT array_agg(id) FROM new_events
     WHERE event LIKE 'authentication.%'
        OR event IN ('session.created', 'user.created', 'user.deleted')
    HAVING count(*) > 0;
    RETURN NULL;
END
$fn$;

-- The same name as before, so that what disabled the rollups
-- (ALTER TABLE ... DISABLE TRIGGER events_rollup) still does.
DROP TRIGGER IF EXISTS events_rollup ON @SCHEMA@.events;
CREATE TRIGGER events_rollup AFTER INSERT ON @SCHEMA@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @SCHEMA@.rollup_enqueue();

-- rollup_step(max_rows): takes the oldest queued rows that no other step
-- holds until they name max_rows ids (or the queue has no more; one
-- statement's ids are never split), feeds their events to rollup_events()
-- through a temporary table of this session (created once, emptied at each
-- commit), and returns how many ids it took: max_rows or more means more
-- may be waiting.  An id whose event is gone (pruned) is taken and counts
-- nothing, as a rebuild would not count it.
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
        SELECT e.event, e.created_at, e.data
          FROM q CROSS JOIN LATERAL unnest(q.event_ids) AS i(id)
          JOIN @SCHEMA@.events e ON e.id = i.id$q$
        USING picked;
    RETURN n;
END
$fn$;

-- rebuild_rollups() as in 006, and the queue emptied in its transaction:
-- the log is locked against writes first, so no id can be queued while it
-- runs, and the queue is truncated before the rollups so that a step in
-- flight (which holds the queue, then the rollups) finishes first.
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
