-- 001: the mirror, the event log and the poller's checkpoint.
--
-- @SCHEMA@ is replaced by the configured schema name (validated as a plain
-- lower-case identifier) when the daemon embeds this file.  Every statement
-- is idempotent, so running the migration twice is harmless.

CREATE TABLE IF NOT EXISTS @SCHEMA@.events (
    id          text        PRIMARY KEY,
    event       text        NOT NULL,
    created_at  timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    context     jsonb,
    source      text        NOT NULL CHECK (source IN ('events_api', 'webhook')),
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_event_created_at_idx ON @SCHEMA@.events (event, created_at);
CREATE INDEX IF NOT EXISTS events_created_at_idx ON @SCHEMA@.events (created_at);

CREATE TABLE IF NOT EXISTS @SCHEMA@.users (
    id                  text PRIMARY KEY,
    email               text,
    first_name          text,
    last_name           text,
    email_verified      boolean,
    profile_picture_url text,
    last_sign_in_at     timestamptz,
    external_id         text,
    metadata            jsonb,
    locale              text,
    created_at          timestamptz,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz,
    last_event_id       text,
    synced_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS users_email_idx ON @SCHEMA@.users (lower(email));
CREATE INDEX IF NOT EXISTS users_external_id_idx ON @SCHEMA@.users (external_id);

CREATE TABLE IF NOT EXISTS @SCHEMA@.organization_memberships (
    id                text PRIMARY KEY,
    user_id           text,
    organization_id   text,
    organization_name text,
    role_slug         text,
    roles             jsonb,
    status            text,
    directory_managed boolean,
    custom_attributes jsonb,
    created_at        timestamptz,
    updated_at        timestamptz NOT NULL,
    deleted_at        timestamptz,
    last_event_id     text,
    synced_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS organization_memberships_user_id_idx
    ON @SCHEMA@.organization_memberships (user_id);
CREATE INDEX IF NOT EXISTS organization_memberships_organization_id_idx
    ON @SCHEMA@.organization_memberships (organization_id);

CREATE TABLE IF NOT EXISTS @SCHEMA@.invitations (
    id               text PRIMARY KEY,
    email            text,
    state            text,
    accepted_at      timestamptz,
    revoked_at       timestamptz,
    expires_at       timestamptz,
    organization_id  text,
    inviter_user_id  text,
    accepted_user_id text,
    role_slug        text,
    created_at       timestamptz,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    last_event_id    text,
    synced_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS invitations_email_idx ON @SCHEMA@.invitations (lower(email));
CREATE INDEX IF NOT EXISTS invitations_organization_id_idx ON @SCHEMA@.invitations (organization_id);

CREATE TABLE IF NOT EXISTS @SCHEMA@.sessions (
    id              text PRIMARY KEY,
    user_id         text,
    organization_id text,
    status          text,
    auth_method     text,
    ip_address      text,
    user_agent      text,
    impersonator    jsonb,
    expires_at      timestamptz,
    ended_at        timestamptz,
    created_at      timestamptz,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    last_event_id   text,
    synced_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON @SCHEMA@.sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_organization_id_idx ON @SCHEMA@.sessions (organization_id);

CREATE TABLE IF NOT EXISTS @SCHEMA@.api_keys (
    id               text PRIMARY KEY,
    owner_type       text,
    owner_id         text,
    name             text,
    obfuscated_value text,
    permissions      jsonb,
    last_used_at     timestamptz,
    created_at       timestamptz,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    last_event_id    text,
    synced_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS api_keys_owner_idx ON @SCHEMA@.api_keys (owner_type, owner_id);

CREATE TABLE IF NOT EXISTS @SCHEMA@.organizations (
    id                                  text PRIMARY KEY,
    name                                text,
    external_id                         text,
    metadata                            jsonb,
    allow_profiles_outside_organization boolean,
    domains                             jsonb,
    created_at                          timestamptz,
    updated_at                          timestamptz NOT NULL,
    deleted_at                          timestamptz,
    last_event_id                       text,
    synced_at                           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS organizations_external_id_idx ON @SCHEMA@.organizations (external_id);

-- One row per input stream.  `cursor` is the id of the last event applied
-- from the Events API; it only ever moves in the transaction that applied
-- that event.  The other columns feed `workos-syncd status`.
CREATE TABLE IF NOT EXISTS @SCHEMA@.sync_state (
    stream        text PRIMARY KEY,
    cursor        text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    range_start   timestamptz,
    caught_up_at  timestamptz,
    last_error    text,
    last_error_at timestamptz
);
