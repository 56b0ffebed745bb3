-- 002: analytics views over the event log.
--
-- Authentication events carry no object id; these views give them columns
-- so that sign-in analytics need no JSON operators.

CREATE OR REPLACE VIEW @SCHEMA@.auth_events AS
SELECT id,
       event,
       created_at,
       data ->> 'type'       AS type,
       data ->> 'status'     AS status,
       data ->> 'user_id'    AS user_id,
       data ->> 'email'      AS email,
       data ->> 'ip_address' AS ip_address,
       data ->> 'user_agent' AS user_agent,
       data -> 'error' ->> 'code' AS error_code
  FROM @SCHEMA@.events
 WHERE event LIKE 'authentication.%';

CREATE OR REPLACE VIEW @SCHEMA@.auth_daily AS
SELECT date_trunc('day', created_at) AS day,
       type,
       status,
       count(*)                AS attempts,
       count(DISTINCT user_id) AS users
  FROM @SCHEMA@.auth_events
 GROUP BY 1, 2, 3;
