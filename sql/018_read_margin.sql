-- 018: two analytics questions that ran close to their 200 ms budget over
-- a year of the benchmark's log (10 million sign-ins), with the same
-- answers.  Side by side on that log, best of three, alternating:
--
-- * auth_credential_stuffing read every day row of rollup_fail_ip in the
--   range (1.9 million for a year) to keep the few with many accounts:
--   165 ms.  Nine in ten of those rows are an address failing against a
--   single account; a partial index of the others, by accounts, finds the
--   few over a threshold of 10 or 20 in 0.35 ms.  A call with min_accounts
--   below 2 still reads the table.  A row whose account count is 1 (most
--   of the rollup step's updates) makes no entry in it.
-- * seats_daily materialised the memberships and scanned the result twice
--   (the count before the range, the changes per day in it).  It now reads
--   them once, each membership adding one at its creation and taking one
--   away at its deletion, grouped by local day, the days before the range
--   as one group; and it is PARALLEL SAFE, so that the query calling it
--   may scan the memberships in parallel workers (a PARALLEL UNSAFE
--   function keeps its whole query in one process, inlined or not):
--   88-115 ms against 139-210 over a year, 94-105 against 171 over 30
--   days; one organization's 1.0-1.4 ms either way.
--
-- Every statement is idempotent.

CREATE INDEX IF NOT EXISTS rollup_fail_ip_accounts_idx
    ON @SCHEMA@.rollup_fail_ip (grain, accounts, start) WHERE accounts >= 2;

CREATE OR REPLACE FUNCTION @SCHEMA@.seats_daily(from_day date, to_day date,
    organization text DEFAULT NULL, tz text DEFAULT 'UTC')
RETURNS TABLE (day date, organization_id text, memberships bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    WITH daily AS (
        -- day NULL: everything before from_day, the count the range starts with
        SELECT CASE WHEN x.at >= from_day::timestamp AT TIME ZONE tz
                    THEN (x.at AT TIME ZONE tz)::date END AS day,
               sum(x.delta) AS d
          FROM @SCHEMA@.organization_memberships m
         CROSS JOIN LATERAL (VALUES (m.created_at, 1), (m.deleted_at, -1)) AS x(at, delta)
         WHERE m.created_at IS NOT NULL
           AND (organization IS NULL OR m.organization_id = organization)
           AND x.at < (to_day + 1)::timestamp AT TIME ZONE tz
         GROUP BY 1
    )
    SELECT g.day, organization,
           (coalesce((SELECT d FROM daily WHERE daily.day IS NULL), 0)
            + sum(coalesce(daily.d, 0)) OVER (ORDER BY g.day))::bigint
      FROM (SELECT d::date AS day FROM generate_series(from_day::timestamp, to_day::timestamp,
                                                       interval '1 day') d) g
      LEFT JOIN daily ON daily.day = g.day
     ORDER BY 1
$fn$;
