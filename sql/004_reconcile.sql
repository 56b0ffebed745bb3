-- 004: reconciliation from the WorkOS state APIs (list endpoints).
--
-- reconcile_runs holds one row per reconciliation; reconcile_scopes one row
-- per listing the run makes (a type, and for the per-parent types the
-- organization or user it is listed under), with the page cursor reached.
-- A listed page is applied in the same transaction that advances its
-- scope's cursor, so a run killed at any moment resumes where it stood.
--
-- Every mirror table gains:
--   raw           the whole latest object, from events and listings, minus
--                 secrets (top-level fields merged over the previous value,
--                 so a field only the other source carried is kept);
--   reconcile_run the run that last listed the row, or tombstoned it.
-- A tombstone written by a reconciliation has deleted_at set,
-- last_event_id NULL and reconcile_run naming the run; an event's
-- tombstone carries the deleting event's id in last_event_id.
--
-- Columns for fields the list endpoints serve today that events may lack:
-- users.name, organization_memberships.external_id and metadata,
-- api_keys.expires_at, organizations.stripe_customer_id.

CREATE TABLE IF NOT EXISTS @SCHEMA@.reconcile_runs (
    id          bigserial   PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    phase       text        NOT NULL DEFAULT 'roots'
                CHECK (phase IN ('roots', 'children', 'done')),
    reason      text        NOT NULL DEFAULT 'backfill',
    finished_at timestamptz,
    tombstoned  jsonb       NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS @SCHEMA@.reconcile_scopes (
    run_id     bigint  NOT NULL REFERENCES @SCHEMA@.reconcile_runs (id) ON DELETE CASCADE,
    kind       text    NOT NULL,
    scope      text    NOT NULL,
    after      text,
    done       boolean NOT NULL DEFAULT false,
    requests   bigint  NOT NULL DEFAULT 0,
    listed     bigint  NOT NULL DEFAULT 0,
    inserted   bigint  NOT NULL DEFAULT 0,
    updated    bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, kind, scope)
);
CREATE INDEX IF NOT EXISTS reconcile_scopes_open_idx
    ON @SCHEMA@.reconcile_scopes (run_id, kind, scope) WHERE NOT done;

ALTER TABLE @SCHEMA@.users ADD COLUMN IF NOT EXISTS raw jsonb;
ALTER TABLE @SCHEMA@.users ADD COLUMN IF NOT EXISTS reconcile_run bigint;
ALTER TABLE @SCHEMA@.users ADD COLUMN IF NOT EXISTS name text;
ALTER TABLE @SCHEMA@.organization_memberships ADD COLUMN IF NOT EXISTS raw jsonb;
ALTER TABLE @SCHEMA@.organization_memberships ADD COLUMN IF NOT EXISTS reconcile_run bigint;
ALTER TABLE @SCHEMA@.organization_memberships ADD COLUMN IF NOT EXISTS external_id text;
ALTER TABLE @SCHEMA@.organization_memberships ADD COLUMN IF NOT EXISTS metadata jsonb;
ALTER TABLE @SCHEMA@.invitations ADD COLUMN IF NOT EXISTS raw jsonb;
ALTER TABLE @SCHEMA@.invitations ADD COLUMN IF NOT EXISTS reconcile_run bigint;
ALTER TABLE @SCHEMA@.sessions ADD COLUMN IF NOT EXISTS raw jsonb;
ALTER TABLE @SCHEMA@.sessions ADD COLUMN IF NOT EXISTS reconcile_run bigint;
ALTER TABLE @SCHEMA@.api_keys ADD COLUMN IF NOT EXISTS raw jsonb;
ALTER TABLE @SCHEMA@.api_keys ADD COLUMN IF NOT EXISTS reconcile_run bigint;
ALTER TABLE @SCHEMA@.api_keys ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE @SCHEMA@.organizations ADD COLUMN IF NOT EXISTS raw jsonb;
ALTER TABLE @SCHEMA@.organizations ADD COLUMN IF NOT EXISTS reconcile_run bigint;
ALTER TABLE @SCHEMA@.organizations ADD COLUMN IF NOT EXISTS stripe_customer_id text;

-- The sweep looks for live rows a run did not list.
CREATE INDEX IF NOT EXISTS users_reconcile_run_idx ON @SCHEMA@.users (reconcile_run)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS organization_memberships_reconcile_run_idx
    ON @SCHEMA@.organization_memberships (reconcile_run) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS organizations_reconcile_run_idx
    ON @SCHEMA@.organizations (reconcile_run) WHERE deleted_at IS NULL;
