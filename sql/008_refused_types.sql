-- 008: the event types the Events API refused, for `status`.
--
-- The poller records the types it left out of its filter after the API
-- refused them (comma-separated; NULL for none) whenever that list changes
-- and each time it starts polling, so a list left by an earlier run is
-- replaced.

ALTER TABLE @SCHEMA@.sync_state ADD COLUMN IF NOT EXISTS refused_types text;
