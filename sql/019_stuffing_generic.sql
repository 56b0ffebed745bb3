-- 019: auth_credential_stuffing reads 018's partial index in a generic plan
-- too.  An application that prepares the call (a driver's server-side
-- prepared statement, a PL/pgSQL function) gets, after five runs, a plan
-- in which min_accounts is a parameter; the planner cannot prove
-- `accounts >= $3` implies the index's `accounts >= 2`, and read every day
-- row of the range again (86 ms against 0.05 ms over a year of 2,000,000
-- sign-ins).  The question is now two branches, one for min_accounts of 2
-- or more that says `accounts >= 2` in so many words, one for the rest;
-- each is gated by a test on the parameter alone, which the executor
-- makes once, so a call runs one branch.  Same rows, same order.
--
-- Every statement is idempotent.

CREATE OR REPLACE FUNCTION @SCHEMA@.auth_credential_stuffing(from_day date, to_day date,
    min_accounts integer DEFAULT 10)
RETURNS TABLE (day date, ip_address text, accounts bigint, failures bigint)
LANGUAGE sql STABLE AS $fn$
    SELECT r.start, nullif(r.ip_address, ''), r.accounts, r.failures
      FROM (SELECT start, ip_address, accounts, failures FROM @SCHEMA@.rollup_fail_ip
             WHERE grain = 'd' AND start BETWEEN from_day AND to_day AND accounts >= min_accounts
               AND accounts >= 2 AND min_accounts >= 2
            UNION ALL
            SELECT start, ip_address, accounts, failures FROM @SCHEMA@.rollup_fail_ip
             WHERE grain = 'd' AND start BETWEEN from_day AND to_day AND accounts >= min_accounts
               AND min_accounts < 2) r
     ORDER BY r.start, r.accounts DESC, r.ip_address
$fn$;
