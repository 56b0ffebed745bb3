-- 010: read paths that meet the performance targets of the analytics and
-- the audit trail at scale (10 million sign-ins, 5 million events).  Only
-- indexes and function bodies change; names, arguments and columns stay.
--
-- Every statement is idempotent.

-- ---- top addresses and accounts by failures -------------------------------

-- The addresses and accounts failing most over a month or a year: a month
-- of the failure rollups holds one row per address or account that failed
-- in it (150,000 accounts a month on a busy log), and summing every one of
-- them took 450 ms for a year of accounts, 200 ms for a month of
-- addresses on a busy machine.  rollup_fail_top reads each month's and
-- day's rows from the top down through these indexes and stops early.
-- They cost the counters their HOT updates: each of a failure's four
-- counter updates adds an index entry.
CREATE INDEX IF NOT EXISTS rollup_fail_ip_top_idx
    ON @SCHEMA@.rollup_fail_ip (grain, start, failures DESC, ip_address);
CREATE INDEX IF NOT EXISTS rollup_fail_account_top_idx
    ON @SCHEMA@.rollup_fail_account (grain, start, failures DESC, account);

-- The payloads of the failures in [l0, l1) and [l2, l3) (the ragged ends
-- of a range), each a range scan of events (event, created_at).
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_fail_log(names text[], l0 timestamptz,
    l1 timestamptz, l2 timestamptz, l3 timestamptz)
RETURNS TABLE (data jsonb)
LANGUAGE sql STABLE AS $fn$
    SELECT e.data FROM @SCHEMA@.events e
     WHERE e.event = ANY (names) AND e.event LIKE 'authentication.%\_failed'
       AND e.created_at >= l0 AND e.created_at < l1
    UNION ALL
    SELECT e.data FROM @SCHEMA@.events e
     WHERE e.event = ANY (names) AND e.event LIKE 'authentication.%\_failed'
       AND e.created_at >= l2 AND e.created_at < l3
$fn$;

-- The `top` keys (kind 'ip': the address, '' for none; 'account': the
-- e-mail tried, else the user id) with the most failures in [since,
-- until), exactly, in the order the two questions rank them (most
-- failures first, then by key; for addresses, '' last as the NULL it
-- stands for).
--
-- The range is a sum of lists of (key, failures): whole months of the
-- rollup, whole days, and the ragged ends from the log as one more list.
-- A month that the range covers for more than half is taken whole, less
-- the days it does not cover (lists with sign -1: the rollups count each
-- failure in its day and its month alike), so that a year is 13 lists
-- rather than 40 and a rolling 30 days 3 rather than 30.  Rather than add
-- up every key of every list, the threshold algorithm of Cao and Wang
-- ("TPUT"), which is exact:
--   1. take the largest values of each added list; the exact totals of the
--      2 * top keys with the largest sums of them give tau, at most the
--      top-th total;
--   2. take from each added list every value of at least tau / m (m added
--      lists): a key with less in every one totals less than tau (a
--      subtracted list only lowers it), so it is not among the top; nor is
--      a key whose values seen plus tau / m for each list it was not seen
--      in stay below tau;
--   3. add up the remaining candidates' exact totals (primary-key probes)
--      and rank them.
-- Phases 1 and 2 are range scans of the *_top_idx indexes.  When no key
-- stands out (too many candidates) or top is NULL (no limit), every row is
-- added up instead, as before.
CREATE OR REPLACE FUNCTION @SCHEMA@.rollup_fail_top(kind text, since timestamptz,
    until timestamptz, top integer)
RETURNS TABLE (key text, failures bigint)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    r record;
    g record;
    names text[] := ARRAY(SELECT event FROM @SCHEMA@.rollup_fail_events);
    tbl text;
    col text;
    rank_key text;
    grains "char"[] := '{}';
    starts date[] := '{}';
    signs integer[] := '{}';
    log_k text[];
    log_n bigint[];
    lists integer;
    tau bigint;
    floor_n bigint;
    cand text[];
    -- (key, total) over the lists $1 grains, $2 starts, $3 signs and the
    -- log ($4 keys, $5 values), for the keys $6 (NULL: all).
    totals constant text :=
        'SELECT x.k, sum(x.n)::bigint AS s FROM ('
        '  SELECT f.%2$I, l.sign * f.failures'
        '    FROM unnest($1, $2, $3) l(grain, start, sign)'
        '    JOIN @SCHEMA@.%1$I f ON f.grain = l.grain AND f.start = l.start'
        '   WHERE $6 IS NULL'
        '  UNION ALL'
        '  SELECT c.k, l.sign * f.failures'
        '    FROM unnest($6) c(k), unnest($1, $2, $3) l(grain, start, sign)'
        '   CROSS JOIN LATERAL (SELECT f.failures FROM @SCHEMA@.%1$I f'
        '                        WHERE f.grain = l.grain AND f.start = l.start'
        '                          AND f.%2$I = c.k OFFSET 0) f'
        '   WHERE $6 IS NOT NULL'
        '  UNION ALL'
        '  SELECT l.k, l.n FROM unnest($4, $5) l(k, n) WHERE $6 IS NULL OR l.k = ANY ($6)) x(k, n)'
        ' GROUP BY x.k HAVING sum(x.n) > 0';
BEGIN
    SELECT * INTO r FROM @SCHEMA@.rollup_fail_ranges(since, until);
    -- The ragged ends, from the log through events (event, created_at).
    CASE kind
        WHEN 'ip' THEN
            tbl := 'rollup_fail_ip'; col := 'ip_address'; rank_key := 'nullif(t.k, '''')';
            SELECT coalesce(array_agg(x.k), '{}'), coalesce(array_agg(x.n), '{}') INTO log_k, log_n
              FROM (SELECT coalesce(e.data ->> 'ip_address', '') AS k, count(*) AS n
                      FROM @SCHEMA@.rollup_fail_log(names, r.l0, r.l1, r.l2, r.l3) e
                     GROUP BY 1) x;
        WHEN 'account' THEN
            tbl := 'rollup_fail_account'; col := 'account'; rank_key := 't.k';
            SELECT coalesce(array_agg(x.k), '{}'), coalesce(array_agg(x.n), '{}') INTO log_k, log_n
              FROM (SELECT coalesce(e.data ->> 'email', e.data ->> 'user_id') AS k, count(*) AS n
                      FROM @SCHEMA@.rollup_fail_log(names, r.l0, r.l1, r.l2, r.l3) e
                     GROUP BY 1) x
             WHERE x.k IS NOT NULL;
        ELSE
            RAISE EXCEPTION 'kind must be ip or account, not %', kind;
    END CASE;
    -- The lists: whole months, then the whole days outside them by month.
    SELECT coalesce(array_agg('m'::"char"), '{}'), coalesce(array_agg(m::date), '{}'),
           coalesce(array_agg(1), '{}')
      INTO grains, starts, signs
      FROM generate_series(r.m0, r.m1 - 1, interval '1 month') m WHERE r.m0 < r.m1;
    FOR g IN
        SELECT date_trunc('month', d)::date AS month, array_agg(d::date ORDER BY d) AS days
          FROM (SELECT d FROM generate_series(r.d0, r.m0 - 1, interval '1 day') d WHERE r.d0 < r.m0
                UNION ALL
                SELECT d FROM generate_series(r.m1, r.d1 - 1, interval '1 day') d WHERE r.m1 < r.d1) x
         GROUP BY 1
    LOOP
        IF 2 * cardinality(g.days) > (g.month + interval '1 month')::date - g.month THEN
            grains := grains || 'm'::"char"; starts := starts || g.month; signs := signs || 1;
            SELECT grains || array_agg('d'::"char"), starts || array_agg(d::date),
                   signs || array_agg(-1)
              INTO grains, starts, signs
              FROM generate_series(g.month, (g.month + interval '1 month')::date - 1, interval '1 day') d
             WHERE NOT d::date = ANY (g.days);
        ELSE
            SELECT grains || array_agg('d'::"char"), starts || array_agg(d), signs || array_agg(1)
              INTO grains, starts, signs
              FROM unnest(g.days) d;
        END IF;
    END LOOP;
    IF top IS NOT NULL AND top >= 1 THEN
        lists := (SELECT count(*) FROM unnest(signs) s WHERE s > 0) + 1;
        -- 1. The 5 * top largest values of each added list (the log's
        -- too), and the exact totals of the 2 * top keys with the largest
        -- sums of them.
        EXECUTE format(
            'SELECT ARRAY(SELECT p.k FROM ('
            '  SELECT x.k, sum(x.n) AS s FROM ('
            '    SELECT t.k, t.n FROM unnest($1, $2, $3) l(grain, start, sign)'
            '     CROSS JOIN LATERAL (SELECT f.%2$I, f.failures FROM @SCHEMA@.%1$I f'
            '                          WHERE f.grain = l.grain AND f.start = l.start'
            '                          ORDER BY f.failures DESC LIMIT $6 * 5) t(k, n)'
            '     WHERE l.sign > 0'
            '    UNION ALL'
            '    SELECT * FROM (SELECT l.k, l.n FROM unnest($4, $5) l(k, n)'
            '                    ORDER BY l.n DESC LIMIT $6 * 5) l) x(k, n)'
            '   GROUP BY x.k) p'
            ' ORDER BY p.s DESC LIMIT $6 * 2)', tbl, col)
            INTO cand USING grains, starts, signs, log_k, log_n, top;
        EXECUTE format(
            'SELECT t.s FROM (' || totals || ') t ORDER BY t.s DESC OFFSET $7 - 1 LIMIT 1', tbl, col)
            INTO tau USING grains, starts, signs, log_k, log_n, cand, top;
        -- 2. The candidates: at least tau / lists in an added list, and a
        -- bound on their total of at least tau.  Unknown tau: all keys.
        floor_n := CASE WHEN tau IS NULL OR tau < 1 THEN 0 ELSE (tau + lists - 1) / lists END;
        EXECUTE format(
            'SELECT ARRAY(SELECT c.k FROM ('
            '  SELECT x.k, sum(x.n) AS s, count(*) AS c FROM ('
            '    SELECT f.%2$I, f.failures FROM unnest($1, $2, $3) l(grain, start, sign)'
            '     CROSS JOIN LATERAL (SELECT f.%2$I, f.failures FROM @SCHEMA@.%1$I f'
            '                          WHERE f.grain = l.grain AND f.start = l.start'
            '                            AND f.failures >= $6) f'
            '     WHERE l.sign > 0'
            '    UNION ALL'
            '    SELECT l.k, l.n FROM unnest($4, $5) l(k, n) WHERE l.n >= $6) x(k, n)'
            '   GROUP BY x.k) c'
            ' WHERE c.s + ($7 - c.c) * greatest($6 - 1, 0) >= coalesce($8, 0))', tbl, col)
            INTO cand USING grains, starts, signs, log_k, log_n, floor_n, lists, tau;
        -- 3. Their exact totals, unless probing for each costs more than
        -- the plain sum below.
        IF cardinality(cand) * cardinality(signs) <= 200000 THEN
            RETURN QUERY EXECUTE format(
                'SELECT t.k, t.s FROM (' || totals || ') t(k, s) ORDER BY 2 DESC, %3$s LIMIT $7',
                tbl, col, rank_key)
                USING grains, starts, signs, log_k, log_n, cand, top;
            RETURN;
        END IF;
    END IF;
    -- Every row added up (LIMIT NULL is all).
    RETURN QUERY EXECUTE format(
        'SELECT t.k, t.s FROM (' || totals || ') t(k, s) ORDER BY 2 DESC, %3$s LIMIT $7',
        tbl, col, rank_key)
        USING grains, starts, signs, log_k, log_n, NULL::text[], top;
END
$fn$;

-- The IP addresses with the most failed authentications in [since, until).
CREATE OR REPLACE FUNCTION @SCHEMA@.auth_failures_by_ip(since timestamptz,
    until timestamptz DEFAULT now(), top integer DEFAULT 20)
RETURNS TABLE (ip_address text, failures bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT nullif(t.key, ''), t.failures FROM @SCHEMA@.rollup_fail_top('ip', since, until, top) t
$fn$;

-- The accounts (e-mail tried, else user id) with the most failures in
-- [since, until).
CREATE OR REPLACE FUNCTION @SCHEMA@.auth_failures_by_account(since timestamptz,
    until timestamptz DEFAULT now(), top integer DEFAULT 20)
RETURNS TABLE (account text, failures bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT t.key, t.failures FROM @SCHEMA@.rollup_fail_top('account', since, until, top) t
$fn$;

-- ---- active users per organization -------------------------------------------

-- active_users_by_organization over a year of days answers 700,000 rows
-- (2,000 organizations a day): reading them through the primary key and
-- the heap, which fillfactor 50 makes twice as large, took 130 ms of the
-- 250 ms; an index-only scan of this one takes 60.  Like the failure
-- indexes, it costs the counter its HOT updates.
CREATE INDEX IF NOT EXISTS rollup_org_active_counts_read_idx
    ON @SCHEMA@.rollup_org_active_counts (zone, grain, start, organization_id) INCLUDE (users);

-- ---- verify's walk -----------------------------------------------------------

-- The chain link by link, as audit_verify_links gives it (same columns,
-- same values), for `workos-syncd verify`.  audit_verify_links calls
-- audit_row_digest twice for each row, and a SQL function with subqueries
-- is never inlined: each call went through the function executor, and the
-- walk ran at 45,000 rows/s.  Here the same digest is written out as
-- subqueries of one plan, computed once per row (OFFSET 0 keeps the
-- planner from copying the expression into both aggregates).  It must stay the
-- digest audit_row_digest defines: a change to one is a change to both.
CREATE OR REPLACE VIEW @SCHEMA@.audit_verify_walk AS
SELECT l.link, l.kind, l.hash, cardinality(l.refs) AS n, l.refs[1] AS first_ref,
       d.digests, l.refs[d.missing_at] AS missing
  FROM @SCHEMA@.audit_links l
 CROSS JOIN LATERAL (
       SELECT string_agg(x.digest, ''::bytea ORDER BY x.i) AS digests,
              min(x.i) FILTER (WHERE x.digest IS NULL) AS missing_at
         FROM (SELECT r.i, CASE l.kind
                   WHEN 'event' THEN coalesce((
                       SELECT @SCHEMA@.audit_event_digest(e.id, e.event, e.created_at, e.source,
                                  CASE WHEN e.redacted_at IS NOT NULL AND EXISTS (
                                           SELECT 1 FROM @SCHEMA@.audit_erasures x
                                            WHERE x.user_id = e.user_id)
                                       THEN e.redacted_digest
                                       ELSE @SCHEMA@.audit_event_data_digest(e.data, e.context) END)
                         FROM @SCHEMA@.events e WHERE e.id = r.ref),
                       (SELECT p.digest FROM @SCHEMA@.audit_pruned p WHERE p.ref = r.ref))
                   WHEN 'change' THEN (
                       SELECT @SCHEMA@.audit_change_digest(c.seq, c.table_name, c.object_id,
                                  c.operation, c.event_id, c.reconciliation, c.committed_at,
                                  CASE WHEN c.redacted_at IS NOT NULL AND EXISTS (
                                           SELECT 1 FROM @SCHEMA@.audit_erasures x
                                            WHERE x.user_id = c.user_id)
                                       THEN c.redacted_digest
                                       ELSE @SCHEMA@.audit_change_data_digest(c.changes) END)
                         FROM @SCHEMA@.changes c WHERE c.seq = r.ref::bigint)
                   WHEN 'erasure' THEN (
                       SELECT @SCHEMA@.audit_erasure_digest(x.id, x.user_id, x.forced, x.events,
                                                            x.changes, x.ran_at)
                         FROM @SCHEMA@.audit_erasures x WHERE x.id = r.ref::bigint)
                   END AS digest
                 FROM unnest(l.refs) WITH ORDINALITY AS r(ref, i)
               OFFSET 0) x) d;

-- ---- retention ---------------------------------------------------------------

-- audit_prune as 005 defines it (same arguments, same rows deleted and
-- kept, same checkpoint), with victims found in time order through the
-- indexes instead of by sorting every prunable row: 005's UNION of the two
-- conditions read and sorted all of a month's events for each batch of
-- 2,000, so a batch took longer the more there was to prune.  Now the
-- older_than branch is a range scan of events (created_at) that stops
-- after `batch` rows, and the authentication branch does the same on
-- events (event, created_at) for each authentication type present (found by
-- a skip scan of that index), so neither reads rows it does not delete.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_prune(older_than timestamptz,
                                                auth_older_than timestamptz, batch integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    auth_types text[];
BEGIN
    IF older_than IS NULL AND auth_older_than IS NULL THEN
        RETURN 0;
    END IF;
    IF auth_older_than IS NOT NULL THEN
        -- The distinct event types, one index descent each.
        WITH RECURSIVE t(event) AS (
            (SELECT e.event FROM @SCHEMA@.events e ORDER BY e.event LIMIT 1)
            UNION ALL
            SELECT (SELECT e.event FROM @SCHEMA@.events e WHERE e.event > t.event
                     ORDER BY e.event LIMIT 1)
              FROM t WHERE t.event IS NOT NULL
        )
        SELECT coalesce(array_agg(t.event), '{}') INTO auth_types
          FROM t WHERE t.event LIKE 'authentication.%';
    END IF;
    PERFORM set_config('workos.audit_path', 'retention', true);
    WITH victims AS (
        SELECT DISTINCT v.id, v.created_at FROM (
            (SELECT e.id, e.created_at FROM @SCHEMA@.events e
              WHERE older_than IS NOT NULL AND e.created_at < older_than
              ORDER BY e.created_at LIMIT batch)
            UNION ALL
            SELECT a.id, a.created_at FROM unnest(auth_types) AS k(event)
             CROSS JOIN LATERAL (
                   SELECT e.id, e.created_at FROM @SCHEMA@.events e
                    WHERE e.event = k.event AND e.created_at < auth_older_than
                    ORDER BY e.created_at LIMIT batch) a
        ) v ORDER BY v.created_at LIMIT batch
    ), del AS (
        DELETE FROM @SCHEMA@.events e USING victims v WHERE e.id = v.id
        RETURNING e.id, @SCHEMA@.audit_event_digest(e.id, e.event, e.created_at, e.source,
                            coalesce(e.redacted_digest,
                                     @SCHEMA@.audit_event_data_digest(e.data, e.context))) AS d
    ), kept AS (
        INSERT INTO @SCHEMA@.audit_pruned (ref, digest) SELECT id, d FROM del RETURNING 1
    )
    SELECT count(*) INTO n FROM kept;
    IF n > 0 THEN
        INSERT INTO @SCHEMA@.audit_checkpoints (older_than, auth_older_than, pruned, total,
                                                last_link, last_hash)
        SELECT older_than, auth_older_than, n,
               n + coalesce((SELECT total FROM @SCHEMA@.audit_checkpoints
                              ORDER BY id DESC LIMIT 1), 0),
               h.link, h.hash
          FROM @SCHEMA@.audit_head h;
    END IF;
    PERFORM set_config('workos.audit_path', '', true);
    RETURN n;
END
$$;
