-- 004: the audit trail: subject columns on the event log, the change feed,
-- history, append-only protection, a hash chain and retention.
--
-- Design (the README's "Audit trail" section is the user's view):
--
-- * events gains object_type, object_id, user_id and organization_id,
--   derived from (event, data) by audit_subjects().  Rows written before
--   the apply statement computes them (and every row written before this
--   migration) are filled in bounded batches by audit_fill_subjects();
--   object_type is never NULL once filled, so NULL means "not yet".
-- * changes: one row per real change of a mirror row, appended by
--   statement-level AFTER INSERT / AFTER UPDATE triggers with transition
--   tables on each mirror table.  A no-op (nothing but synced_at or
--   last_event_id differs) appends nothing.
-- * The chain.  Every event and every change gets an item in audit_chain
--   (pos, kind, ref, digest, data_digest).  data_digest is SHA-256 of the
--   redactable part (an event's data and context, a change's changes);
--   digest is SHA-256 of the fixed part (ids, type, times) followed by
--   data_digest.  Each trigger invocation appends one link to audit_links:
--   hash = sha256(previous link's hash || the digests of its items in pos
--   order).  audit_head holds the last link.  Items and links are written
--   under a transaction-level advisory lock, held until commit, so pos
--   order is commit order even with two writers.  Redaction (forget)
--   changes data but neither digest: verify checks a redacted row's fixed
--   part against the digest through the stored data_digest, and every other
--   row in full.  A redacted row must belong to a user named in
--   audit_erasures, itself chained, so marking a row redacted does not
--   excuse an edit.
-- * Append-only: row triggers refuse UPDATE and DELETE on events, changes
--   and the chain tables, and statement triggers refuse TRUNCATE, unless
--   the transaction set workos.audit_path to the one path that may make
--   that change (subjects, erasure, retention, chain).  This guards against
--   mistakes and against roles without the GUC; the owner of the tables and
--   any superuser can still disable triggers.  The off-host copy of the
--   head (verify prints it, the daemon logs it) is what catches them.

-- ---- subject columns -----------------------------------------------------

ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS object_type text;
ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS object_id text;
ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS user_id text;
ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS organization_id text;
ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS redacted_at timestamptz;
CREATE INDEX IF NOT EXISTS events_object_id_created_at_idx
    ON @SCHEMA@.events (object_id, created_at);
CREATE INDEX IF NOT EXISTS events_user_id_created_at_idx
    ON @SCHEMA@.events (user_id, created_at);
CREATE INDEX IF NOT EXISTS events_organization_id_created_at_idx
    ON @SCHEMA@.events (organization_id, created_at);
-- The fill's work queue: small, and empty once every row is filled.
CREATE INDEX IF NOT EXISTS events_subjects_unfilled_idx
    ON @SCHEMA@.events (created_at) WHERE object_type IS NULL;

-- {object_type, object_id, user_id, organization_id} of an event.  The
-- object type is the event's family (the part before the first dot), so it
-- is never NULL.  A user event names the user, an organization event the
-- organization, an API key its owner, an invitation the user who accepted
-- it or else the inviter; everything else (memberships, sessions,
-- authentication.*, ...) its user_id and organization_id fields.
-- Inlinable: one SELECT expression, IMMUTABLE, no SET clause.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_subjects(event text, data jsonb)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY[
        split_part(event, '.', 1),
        data ->> 'id',
        CASE split_part(event, '.', 1)
            WHEN 'user' THEN data ->> 'id'
            WHEN 'api_key' THEN CASE WHEN data -> 'owner' ->> 'type' = 'user'
                                     THEN data -> 'owner' ->> 'id' END
            WHEN 'invitation' THEN coalesce(data ->> 'accepted_user_id', data ->> 'inviter_user_id')
            ELSE data ->> 'user_id'
        END,
        CASE split_part(event, '.', 1)
            WHEN 'organization' THEN data ->> 'id'
            WHEN 'api_key' THEN CASE WHEN data -> 'owner' ->> 'type' = 'organization'
                                     THEN data -> 'owner' ->> 'id'
                                     ELSE data ->> 'organization_id' END
            ELSE data ->> 'organization_id'
        END]
$$;

-- ---- the chain -------------------------------------------------------------

CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_chain (
    pos         bigint      PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('event', 'change', 'erasure')),
    ref         text        NOT NULL,
    digest      bytea       NOT NULL,
    data_digest bytea       NOT NULL,
    pruned_at   timestamptz
);
CREATE INDEX IF NOT EXISTS audit_chain_ref_idx ON @SCHEMA@.audit_chain (ref) WHERE kind = 'event';

CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_links (
    last_pos  bigint      PRIMARY KEY,
    first_pos bigint      NOT NULL,
    hash      bytea       NOT NULL,
    linked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    pos  bigint  NOT NULL,
    hash bytea   NOT NULL
);
INSERT INTO @SCHEMA@.audit_head (pos, hash) VALUES (0, '\x') ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_checkpoints (
    id          bigserial   PRIMARY KEY,
    pruned_at   timestamptz NOT NULL DEFAULT now(),
    older_than  timestamptz,
    auth_older_than timestamptz,
    pruned      bigint      NOT NULL,
    total       bigint      NOT NULL,
    last_pos    bigint      NOT NULL,
    last_hash   bytea       NOT NULL
);

CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_erasures (
    id       bigserial   PRIMARY KEY,
    user_id  text        NOT NULL,
    forced   boolean     NOT NULL,
    events   integer     NOT NULL,
    changes  integer     NOT NULL,
    ran_at   timestamptz NOT NULL DEFAULT now(),
    ran_by   text        NOT NULL DEFAULT current_user
);
CREATE INDEX IF NOT EXISTS audit_erasures_user_id_idx ON @SCHEMA@.audit_erasures (user_id);

-- Digests.  Times are rendered in UTC with microseconds, so the settings of
-- the session that verifies do not matter; jsonb's text form is canonical.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_time(t timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_event_data_digest(data jsonb, context jsonb)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(data::text || E'\n' || coalesce(context::text, ''), 'UTF8'))
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_event_digest(id text, event text, created_at timestamptz,
                                                       source text, data_digest bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(concat_ws(E'\n', 'event', id, event,
                                       @SCHEMA@.audit_time(created_at), source, ''), 'UTF8')
                  || data_digest)
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_change_data_digest(changes jsonb)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(changes::text, 'UTF8'))
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_change_digest(seq bigint, table_name text,
                                                        object_id text, operation text,
                                                        event_id text, reconciliation text,
                                                        committed_at timestamptz,
                                                        data_digest bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(concat_ws(E'\n', 'change', seq::text, table_name, object_id,
                                       operation, coalesce(event_id, ''),
                                       coalesce(reconciliation, ''),
                                       @SCHEMA@.audit_time(committed_at), ''), 'UTF8')
                  || data_digest)
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_erasure_digest(id bigint, user_id text, forced boolean,
                                                         events integer, changes integer,
                                                         ran_at timestamptz)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(concat_ws(E'\n', 'erasure', id::text, user_id, forced::text,
                                       events::text, changes::text,
                                       @SCHEMA@.audit_time(ran_at), ''), 'UTF8'))
$$;

-- The chain's lock: one per schema, held until commit.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_lock()
RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(1465077315, hashtext('workos-syncd audit @SCHEMA@'))
$$;

-- Appends one link of items (refs[i], digests[i], data_digests[i]) of one
-- kind after the head, under the chain's lock.  Returns the link's last pos.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_append(p_kind text, p_refs text[], p_digests bytea[],
                                                 p_data_digests bytea[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    h_pos  bigint;
    h_hash bytea;
    n      integer := coalesce(array_length(p_refs, 1), 0);
    prev   text;
BEGIN
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM @SCHEMA@.audit_lock();
    SELECT pos, hash INTO h_pos, h_hash FROM @SCHEMA@.audit_head WHERE one;
    INSERT INTO @SCHEMA@.audit_chain (pos, kind, ref, digest, data_digest)
    SELECT h_pos + i, p_kind, r, d, dd
      FROM unnest(p_refs, p_digests, p_data_digests) WITH ORDINALITY AS u(r, d, dd, i);
    h_hash := sha256(h_hash || (SELECT string_agg(d, ''::bytea ORDER BY i)
                                  FROM unnest(p_digests) WITH ORDINALITY AS u(d, i)));
    INSERT INTO @SCHEMA@.audit_links (last_pos, first_pos, hash)
    VALUES (h_pos + n, h_pos + 1, h_hash);
    prev := current_setting('workos.audit_path', true);
    PERFORM set_config('workos.audit_path', 'chain', true);
    UPDATE @SCHEMA@.audit_head SET pos = h_pos + n, hash = h_hash WHERE one;
    PERFORM set_config('workos.audit_path', coalesce(prev, ''), true);
    RETURN h_pos + n;
END
$$;

-- Events: one link per inserting statement (the apply's `ins`).
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_events_chain()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM @SCHEMA@.audit_append('event', array_agg(id ORDER BY id), array_agg(
                @SCHEMA@.audit_event_digest(id, event, created_at, source, dd) ORDER BY id),
                array_agg(dd ORDER BY id))
       FROM (SELECT n.id, n.event, n.created_at, n.source,
                    @SCHEMA@.audit_event_data_digest(n.data, n.context) AS dd
               FROM new_rows n) x;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS audit_events_chain ON @SCHEMA@.events;
CREATE TRIGGER audit_events_chain AFTER INSERT ON @SCHEMA@.events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION @SCHEMA@.audit_events_chain();

-- ---- the change feed -----------------------------------------------------

CREATE SEQUENCE IF NOT EXISTS @SCHEMA@.changes_seq AS bigint;
CREATE TABLE IF NOT EXISTS @SCHEMA@.changes (
    seq             bigint      PRIMARY KEY,
    table_name      text        NOT NULL,
    object_id       text        NOT NULL,
    operation       text        NOT NULL CHECK (operation IN ('insert', 'update', 'tombstone')),
    changes         jsonb       NOT NULL,
    event_id        text,
    reconciliation  text,
    user_id         text,
    organization_id text,
    committed_at    timestamptz NOT NULL,
    redacted_at     timestamptz
);
CREATE INDEX IF NOT EXISTS changes_object_id_seq_idx ON @SCHEMA@.changes (object_id, seq);
CREATE INDEX IF NOT EXISTS changes_table_committed_at_idx
    ON @SCHEMA@.changes (table_name, committed_at);
CREATE INDEX IF NOT EXISTS changes_user_id_seq_idx ON @SCHEMA@.changes (user_id, seq);
CREATE INDEX IF NOT EXISTS changes_organization_id_seq_idx
    ON @SCHEMA@.changes (organization_id, seq);

-- Which user and organization a mirror row belongs to (the row as jsonb).
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_row_subjects(tbl text, r jsonb)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE tbl
        WHEN 'users' THEN ARRAY[r ->> 'id', NULL]
        WHEN 'organizations' THEN ARRAY[NULL, r ->> 'id']
        WHEN 'api_keys' THEN ARRAY[CASE WHEN r ->> 'owner_type' = 'user' THEN r ->> 'owner_id' END,
                                   CASE WHEN r ->> 'owner_type' = 'organization'
                                        THEN r ->> 'owner_id' END]
        WHEN 'invitations' THEN ARRAY[coalesce(r ->> 'accepted_user_id', r ->> 'inviter_user_id'),
                                      r ->> 'organization_id']
        ELSE ARRAY[r ->> 'user_id', r ->> 'organization_id']
    END
$$;

-- Records the changes of mirror table `tbl` from its rows after (`newr`)
-- and, for updates, before (`oldr`, same order) the statement, as jsonb.
-- synced_at and last_event_id are bookkeeping, not changes.  Returns the
-- number of change rows written.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_record_changes(tbl text, newr jsonb[], oldr jsonb[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    refs text[];
    digests bytea[];
    dds bytea[];
    rec text := nullif(current_setting('workos.reconciliation', true), '');
BEGIN
    IF coalesce(array_length(newr, 1), 0) = 0 THEN
        RETURN 0;
    END IF;
    -- The lock first: seq must be drawn in commit order.
    PERFORM @SCHEMA@.audit_lock();
    WITH r AS (
        SELECT u.i, u.n, u.o, u.n - 'synced_at' - 'last_event_id' AS nj,
               coalesce(u.o, '{}') - 'synced_at' - 'last_event_id' AS oj
          FROM unnest(newr, coalesce(oldr, '{}'::jsonb[])) WITH ORDINALITY AS u(n, o, i)
    ), d AS (
        SELECT r.i, r.n, r.o,
               (SELECT jsonb_object_agg(k, jsonb_build_object('old', r.oj -> k, 'new', v))
                  FROM jsonb_each(r.nj) AS e(k, v)
                 WHERE (r.oj -> k) IS DISTINCT FROM v
                   AND NOT (r.o IS NULL AND v = 'null'::jsonb)) AS diff
          FROM r
    ), c AS (
        INSERT INTO @SCHEMA@.changes (seq, table_name, object_id, operation, changes, event_id,
                                      reconciliation, user_id, organization_id, committed_at)
        SELECT nextval('@SCHEMA@.changes_seq'), tbl, d.n ->> 'id',
               CASE WHEN d.n ->> 'deleted_at' IS NOT NULL
                         AND (d.o IS NULL OR d.o ->> 'deleted_at' IS NULL) THEN 'tombstone'
                    WHEN d.o IS NULL THEN 'insert'
                    ELSE 'update' END,
               d.diff, d.n ->> 'last_event_id',
               CASE WHEN d.n ->> 'last_event_id' IS NULL THEN rec END,
               s[1], s[2], clock_timestamp()
          FROM d, LATERAL (SELECT @SCHEMA@.audit_row_subjects(tbl, d.n) AS s) x
         WHERE d.diff IS NOT NULL
         ORDER BY d.i
        RETURNING seq, table_name, object_id, operation, changes, event_id, reconciliation,
                  committed_at
    ), h AS (
        SELECT c.*, @SCHEMA@.audit_change_data_digest(c.changes) AS dd FROM c
    )
    SELECT array_agg(seq::text ORDER BY seq),
           array_agg(@SCHEMA@.audit_change_digest(seq, table_name, object_id, operation,
                                                  event_id, reconciliation, committed_at, dd)
                     ORDER BY seq),
           array_agg(dd ORDER BY seq)
      INTO refs, digests, dds FROM h;
    PERFORM @SCHEMA@.audit_append('change', refs, digests, dds);
    RETURN coalesce(array_length(refs, 1), 0);
END
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_changes_insert()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM @SCHEMA@.audit_record_changes(TG_TABLE_NAME, array_agg(to_jsonb(n) ORDER BY n.id), NULL)
       FROM new_rows n;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_changes_update()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only rows whose values differ reach the diff; the apply's guard
    -- already keeps stale rows out of the statement.
    PERFORM @SCHEMA@.audit_record_changes(TG_TABLE_NAME, array_agg(to_jsonb(n) ORDER BY n.id),
                                          array_agg(to_jsonb(o) ORDER BY n.id))
       FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE (to_jsonb(n) - 'synced_at' - 'last_event_id')
            IS DISTINCT FROM (to_jsonb(o) - 'synced_at' - 'last_event_id');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'organization_memberships', 'invitations', 'sessions',
                             'api_keys', 'organizations'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_changes_insert ON @SCHEMA@.%I', t);
        EXECUTE format('CREATE TRIGGER audit_changes_insert AFTER INSERT ON @SCHEMA@.%I '
                       'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION @SCHEMA@.audit_changes_insert()', t);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_changes_update ON @SCHEMA@.%I', t);
        EXECUTE format('CREATE TRIGGER audit_changes_update AFTER UPDATE ON @SCHEMA@.%I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION @SCHEMA@.audit_changes_update()', t);
    END LOOP;
END
$$;

-- Rows mirrored before the change feed existed enter it once, as inserts
-- by the reconciliation "migration 004", so history starts complete.
DO $$
DECLARE
    t text;
    last_id text;
    chunk jsonb[];
BEGIN
    IF EXISTS (SELECT 1 FROM @SCHEMA@.changes) THEN
        RETURN;
    END IF;
    PERFORM set_config('workos.reconciliation', 'migration 004', true);
    FOREACH t IN ARRAY ARRAY['organizations', 'users', 'organization_memberships', 'invitations',
                             'sessions', 'api_keys'] LOOP
        last_id := '';
        LOOP
            EXECUTE format('SELECT array_agg(to_jsonb(x) - ''last_event_id'' ORDER BY x.id) '
                           'FROM (SELECT * FROM @SCHEMA@.%I WHERE id > $1 ORDER BY id '
                           'LIMIT 10000) x', t)
               INTO chunk USING last_id;
            EXIT WHEN chunk IS NULL;
            PERFORM @SCHEMA@.audit_record_changes(t, chunk, NULL);
            last_id := chunk[array_length(chunk, 1)] ->> 'id';
        END LOOP;
    END LOOP;
    PERFORM set_config('workos.reconciliation', '', true);
END
$$;

-- One notification a transaction, at commit, carrying the highest change
-- seq committed: it fires for every head update, and PostgreSQL folds
-- identical payloads of one transaction into one.  A transaction that set
-- workos.notify (a JSON object) gets that object with "seq" added.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_notify()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    extra jsonb := coalesce(nullif(current_setting('workos.notify', true), '')::jsonb, '{}');
BEGIN
    PERFORM pg_notify('workos_changes', (extra || jsonb_build_object('seq',
        coalesce((SELECT max(seq) FROM @SCHEMA@.changes), 0)))::text);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS audit_notify ON @SCHEMA@.audit_head;
CREATE CONSTRAINT TRIGGER audit_notify AFTER UPDATE ON @SCHEMA@.audit_head
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION @SCHEMA@.audit_notify();

-- ---- append-only ---------------------------------------------------------

-- Refuses UPDATE and DELETE of a row, except through the path named by
-- the transaction's workos.audit_path, and then only the change that path
-- makes.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_guard()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    path text := coalesce(current_setting('workos.audit_path', true), '');
    o jsonb;
    n jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF path = 'retention' AND TG_TABLE_NAME = 'events' THEN
            RETURN OLD;
        END IF;
    ELSE
        o := to_jsonb(OLD);
        n := to_jsonb(NEW);
        IF path = 'subjects' AND TG_TABLE_NAME = 'events'
           AND o - '{object_type,object_id,user_id,organization_id}'::text[]
             = n - '{object_type,object_id,user_id,organization_id}'::text[] THEN
            RETURN NEW;
        ELSIF path = 'erasure' AND TG_TABLE_NAME IN ('events', 'changes')
              AND n ->> 'redacted_at' IS NOT NULL
              AND o - '{data,context,changes,redacted_at}'::text[]
                = n - '{data,context,changes,redacted_at}'::text[] THEN
            RETURN NEW;
        ELSIF path = 'retention' AND TG_TABLE_NAME = 'audit_chain'
              AND o - 'pruned_at' = n - 'pruned_at' THEN
            RETURN NEW;
        ELSIF path = 'chain' AND TG_TABLE_NAME = 'audit_head' THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'rows leave the audit trail only through audit_prune() and forget';
END
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_guard_truncate()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: TRUNCATE refused', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'changes', 'audit_chain', 'audit_links', 'audit_head',
                             'audit_checkpoints', 'audit_erasures'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_guard ON @SCHEMA@.%I', t);
        EXECUTE format('CREATE TRIGGER audit_guard BEFORE UPDATE OR DELETE ON @SCHEMA@.%I '
                       'FOR EACH ROW EXECUTE FUNCTION @SCHEMA@.audit_guard()', t);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_guard_truncate ON @SCHEMA@.%I', t);
        EXECUTE format('CREATE TRIGGER audit_guard_truncate BEFORE TRUNCATE ON @SCHEMA@.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION @SCHEMA@.audit_guard_truncate()', t);
    END LOOP;
END
$$;

-- The rows written before this migration enter the chain once, in
-- received order, as one link per 10,000 events.
DO $$
DECLARE
    last_key text := '';
    refs text[];
    digests bytea[];
    dds bytea[];
BEGIN
    IF EXISTS (SELECT 1 FROM @SCHEMA@.audit_chain WHERE kind = 'event') THEN
        RETURN;
    END IF;
    LOOP
        SELECT array_agg(id ORDER BY id),
               array_agg(@SCHEMA@.audit_event_digest(id, event, created_at, source, dd) ORDER BY id),
               array_agg(dd ORDER BY id)
          INTO refs, digests, dds
          FROM (SELECT e.id, e.event, e.created_at, e.source,
                       @SCHEMA@.audit_event_data_digest(e.data, e.context) AS dd
                  FROM @SCHEMA@.events e WHERE e.id > last_key ORDER BY e.id LIMIT 10000) x;
        EXIT WHEN refs IS NULL;
        PERFORM @SCHEMA@.audit_append('event', refs, digests, dds);
        last_key := refs[array_length(refs, 1)];
    END LOOP;
END
$$;

-- ---- subject fill ----------------------------------------------------------

-- Fills the subject columns of up to `batch` rows that lack them, oldest
-- first, skipping rows another filler holds; returns how many.  Call it in
-- a loop, each call its own transaction, until it returns 0.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_fill_subjects(batch integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM set_config('workos.audit_path', 'subjects', true);
    WITH todo AS (
        SELECT id FROM @SCHEMA@.events WHERE object_type IS NULL
         ORDER BY created_at LIMIT batch FOR UPDATE SKIP LOCKED
    )
    UPDATE @SCHEMA@.events e
       SET object_type = (@SCHEMA@.audit_subjects(e.event, e.data))[1],
           object_id = (@SCHEMA@.audit_subjects(e.event, e.data))[2],
           user_id = (@SCHEMA@.audit_subjects(e.event, e.data))[3],
           organization_id = (@SCHEMA@.audit_subjects(e.event, e.data))[4]
      FROM todo
     WHERE e.id = todo.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('workos.audit_path', '', true);
    RETURN n;
END
$$;

-- ---- history ---------------------------------------------------------------

-- The state of the objects of mirror table `tbl` (one object when `oid` is
-- given) as of `at`, each as the jsonb of its row, folded from the change
-- feed: per column, the newest value at or before `at`.  Tombstoned objects
-- are absent; so are objects the feed first saw after `at`.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_state_as_of(tbl text, p_at timestamptz, oid text DEFAULT NULL)
RETURNS SETOF jsonb LANGUAGE sql STABLE AS $$
    WITH v AS (
        SELECT DISTINCT ON (c.object_id, e.key) c.object_id, e.key, e.value -> 'new' AS val
          FROM @SCHEMA@.changes c, jsonb_each(c.changes) e
         WHERE c.table_name = tbl AND c.committed_at <= p_at AND (oid IS NULL OR c.object_id = oid)
         ORDER BY c.object_id, e.key, c.seq DESC
    ), l AS (
        SELECT DISTINCT ON (c.object_id) c.object_id, c.event_id, c.committed_at
          FROM @SCHEMA@.changes c
         WHERE c.table_name = tbl AND c.committed_at <= p_at AND (oid IS NULL OR c.object_id = oid)
         ORDER BY c.object_id, c.seq DESC
    )
    SELECT s.j || jsonb_build_object('last_event_id', l.event_id, 'synced_at', l.committed_at)
      FROM (SELECT object_id, jsonb_object_agg(key, val) AS j FROM v GROUP BY object_id) s
      JOIN l USING (object_id)
     WHERE s.j ->> 'deleted_at' IS NULL
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'organization_memberships', 'invitations', 'sessions',
                             'api_keys', 'organizations'] LOOP
        EXECUTE format(
            'CREATE OR REPLACE FUNCTION @SCHEMA@.%I(p_at timestamptz, p_object_id text DEFAULT NULL) '
            'RETURNS SETOF @SCHEMA@.%I LANGUAGE sql STABLE AS $f$ '
            'SELECT (jsonb_populate_record(NULL::@SCHEMA@.%I, s)).* '
            'FROM @SCHEMA@.audit_state_as_of(%L, p_at, p_object_id) s $f$',
            t || '_as_of', t, t, t);
    END LOOP;
END
$$;

-- One object's versions, oldest first: each change with the state it left.
CREATE OR REPLACE FUNCTION @SCHEMA@.history(p_object_id text)
RETURNS TABLE (seq bigint, table_name text, operation text, changes jsonb, event_id text,
               reconciliation text, committed_at timestamptz, state jsonb)
LANGUAGE sql STABLE AS $$
    SELECT c.seq, c.table_name, c.operation, c.changes, c.event_id, c.reconciliation,
           c.committed_at,
           (SELECT jsonb_object_agg(key, val) FROM (
                SELECT DISTINCT ON (e.key) e.key, e.value -> 'new' AS val
                  FROM @SCHEMA@.changes p, jsonb_each(p.changes) e
                 WHERE p.object_id = c.object_id AND p.table_name = c.table_name
                   AND p.seq <= c.seq
                 ORDER BY e.key, p.seq DESC) f)
      FROM @SCHEMA@.changes c
     WHERE c.object_id = p_object_id
     ORDER BY c.seq
$$;

-- ---- retention -------------------------------------------------------------

-- Deletes up to `batch` of the oldest events created before `older_than`
-- (authentication.* before `auth_older_than`; NULL: keep), marks their
-- chain items pruned (the digests stay, so the chain still verifies) and
-- records a checkpoint: how many, and the last pruned item's link hash.
-- Returns how many events it deleted.  Takes no lock the apply takes.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_prune(older_than timestamptz,
                                                auth_older_than timestamptz, batch integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    lp bigint;
    lh bytea;
BEGIN
    IF older_than IS NULL AND auth_older_than IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM set_config('workos.audit_path', 'retention', true);
    WITH victims AS (
        SELECT id FROM (
            SELECT id, created_at FROM @SCHEMA@.events
             WHERE older_than IS NOT NULL AND created_at < older_than
            UNION
            SELECT id, created_at FROM @SCHEMA@.events
             WHERE auth_older_than IS NOT NULL AND created_at < auth_older_than
               AND event LIKE 'authentication.%'
        ) v ORDER BY created_at LIMIT batch
    ), del AS (
        DELETE FROM @SCHEMA@.events e USING victims v WHERE e.id = v.id RETURNING e.id
    ), mark AS (
        UPDATE @SCHEMA@.audit_chain a SET pruned_at = now()
          FROM del WHERE a.kind = 'event' AND a.ref = del.id
        RETURNING a.pos
    )
    SELECT count(*), max(pos) INTO n, lp FROM mark;
    IF n > 0 THEN
        SELECT l.hash INTO lh FROM @SCHEMA@.audit_links l
         WHERE l.last_pos >= lp ORDER BY l.last_pos LIMIT 1;
        INSERT INTO @SCHEMA@.audit_checkpoints (older_than, auth_older_than, pruned, total,
                                                last_pos, last_hash)
        SELECT older_than, auth_older_than, n,
               n + coalesce((SELECT total FROM @SCHEMA@.audit_checkpoints
                              ORDER BY id DESC LIMIT 1), 0),
               greatest(lp, coalesce((SELECT max(last_pos) FROM @SCHEMA@.audit_checkpoints), 0)),
               lh;
    END IF;
    PERFORM set_config('workos.audit_path', '', true);
    RETURN n;
END
$$;

-- ---- erasure ---------------------------------------------------------------

-- `j` with the personal fields blanked (to JSON null), at any depth:
-- email, names, IP address, user agent, picture and free-form metadata.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_redact(j jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    personal constant text[] := ARRAY['email', 'first_name', 'last_name', 'name', 'ip_address',
                                      'user_agent', 'profile_picture_url', 'metadata',
                                      'custom_attributes', 'external_id', 'reason'];
BEGIN
    IF j IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(j) = 'object' THEN
        RETURN coalesce((SELECT jsonb_object_agg(k, CASE WHEN k = ANY (personal)
                                                          AND v <> 'null'::jsonb
                                                         THEN 'null'::jsonb
                                                         ELSE @SCHEMA@.audit_redact(v) END)
                           FROM jsonb_each(j) AS e(k, v)), '{}'::jsonb);
    ELSIF jsonb_typeof(j) = 'array' THEN
        RETURN coalesce((SELECT jsonb_agg(@SCHEMA@.audit_redact(v) ORDER BY i)
                           FROM jsonb_array_elements(j) WITH ORDINALITY AS e(v, i)), '[]'::jsonb);
    END IF;
    RETURN j;
END
$$;

-- Blanks the personal data of user `uid` in the event log and the change
-- feed, records the run in audit_erasures (and in the chain), and returns
-- (events, changes) redacted.  Refuses a user still live in the mirror
-- unless `force`.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_forget(uid text, force boolean,
                                                 OUT events integer, OUT changes integer)
LANGUAGE plpgsql AS $$
DECLARE
    eid bigint;
    ts timestamptz;
BEGIN
    IF NOT force AND EXISTS (SELECT 1 FROM @SCHEMA@.users u
                              WHERE u.id = uid AND u.deleted_at IS NULL) THEN
        RAISE EXCEPTION 'user % is still live in the mirror', uid
            USING ERRCODE = 'object_in_use', HINT = 'forget a user deleted in WorkOS, or force';
    END IF;
    PERFORM set_config('workos.audit_path', 'erasure', true);
    UPDATE @SCHEMA@.events e
       SET data = @SCHEMA@.audit_redact(e.data), context = @SCHEMA@.audit_redact(e.context),
           redacted_at = now()
     WHERE e.user_id = uid
        OR (e.object_type IS NULL AND (@SCHEMA@.audit_subjects(e.event, e.data))[3] = uid);
    GET DIAGNOSTICS events = ROW_COUNT;
    UPDATE @SCHEMA@.changes c
       SET changes = @SCHEMA@.audit_redact(c.changes), redacted_at = now()
     WHERE c.user_id = uid;
    GET DIAGNOSTICS changes = ROW_COUNT;
    PERFORM set_config('workos.audit_path', '', true);
    INSERT INTO @SCHEMA@.audit_erasures (user_id, forced, events, changes)
    VALUES (uid, force, events, changes) RETURNING id, ran_at INTO eid, ts;
    PERFORM @SCHEMA@.audit_append('erasure', ARRAY[eid::text],
        ARRAY[@SCHEMA@.audit_erasure_digest(eid, uid, force, events, changes, ts)],
        ARRAY['\x'::bytea]);
END
$$;

-- ---- verify ------------------------------------------------------------------

-- The chain in pos order with each item's digest recomputed from the row it
-- names (NULL: the row is missing), for `workos-syncd verify`, which folds
-- the link hashes.  A redacted row's data is trusted through its stored
-- data_digest only when an erasure of its user is on record.
CREATE OR REPLACE VIEW @SCHEMA@.audit_verify_items AS
SELECT a.pos, a.kind, a.ref, a.digest, a.pruned_at IS NOT NULL AS pruned,
       CASE a.kind
       WHEN 'event' THEN (
           SELECT @SCHEMA@.audit_event_digest(e.id, e.event, e.created_at, e.source,
                      CASE WHEN e.redacted_at IS NOT NULL AND EXISTS (
                               SELECT 1 FROM @SCHEMA@.audit_erasures x WHERE x.user_id = e.user_id)
                           THEN a.data_digest
                           ELSE @SCHEMA@.audit_event_data_digest(e.data, e.context) END)
             FROM @SCHEMA@.events e WHERE e.id = a.ref)
       WHEN 'change' THEN (
           SELECT @SCHEMA@.audit_change_digest(c.seq, c.table_name, c.object_id, c.operation,
                      c.event_id, c.reconciliation, c.committed_at,
                      CASE WHEN c.redacted_at IS NOT NULL AND EXISTS (
                               SELECT 1 FROM @SCHEMA@.audit_erasures x WHERE x.user_id = c.user_id)
                           THEN a.data_digest
                           ELSE @SCHEMA@.audit_change_data_digest(c.changes) END)
             FROM @SCHEMA@.changes c WHERE c.seq = a.ref::bigint)
       WHEN 'erasure' THEN (
           SELECT @SCHEMA@.audit_erasure_digest(x.id, x.user_id, x.forced, x.events, x.changes,
                                                x.ran_at)
             FROM @SCHEMA@.audit_erasures x WHERE x.id = a.ref::bigint)
       END AS recomputed,
       l.hash AS link_hash, l.first_pos AS link_first
  FROM @SCHEMA@.audit_chain a
  LEFT JOIN @SCHEMA@.audit_links l ON l.last_pos = a.pos;
