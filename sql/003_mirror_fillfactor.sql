-- 003: room on the mirror tables' pages for updates in place.
--
-- Most mirrored events change a row the mirror already holds (a membership
-- deleted, a session revoked, a user renamed) and leave its indexed columns
-- alone.  When the row's page has free space, PostgreSQL writes the new
-- version there without touching any index (a HOT update); at the default
-- fillfactor of 100 pages fill up and nearly every update rewrites every
-- index of its table.  Applies to pages written from now on.  The event log
-- is append-only and keeps full pages.

ALTER TABLE @SCHEMA@.users SET (fillfactor = 80);
ALTER TABLE @SCHEMA@.organization_memberships SET (fillfactor = 80);
ALTER TABLE @SCHEMA@.invitations SET (fillfactor = 80);
ALTER TABLE @SCHEMA@.sessions SET (fillfactor = 80);
ALTER TABLE @SCHEMA@.api_keys SET (fillfactor = 80);
ALTER TABLE @SCHEMA@.organizations SET (fillfactor = 80);
