-- 005: the audit trail: subject columns on the event log, the change feed,
-- history, append-only protection, a hash chain and retention.
--
-- Design (the README's "Audit trail" section is the user's view):
--
-- * events gains object_type, object_id, user_id and organization_id,
--   derived from (event, data) by audit_subjects().  Rows the apply writes
--   without them (today: all; the apply statement can compute them) and
--   rows written before this migration are filled in bounded batches by
--   audit_fill_subjects(); object_type is never NULL once filled, so NULL
--   means "not yet".
-- * changes: one row per real change of a mirror row, appended by
--   statement-level AFTER INSERT / AFTER UPDATE triggers with transition
--   tables on each mirror table.  A no-op (nothing but synced_at or
--   last_event_id differs) appends nothing.
-- * The chain: one link per writing statement (the apply's event insert,
--   each mirror table's upsert, an erasure), in audit_links: link number,
--   kind, the refs of its rows in order (event ids, change seqs) and
--   hash = sha256(previous link's hash || digest of each row in order).
--   A row's digest is sha256 of its fixed part (ids, type, times) followed
--   by the digest of its redactable part (an event's data and context, a
--   change's changes).  Links are written under a transaction-level
--   advisory lock held until commit, so link order is commit order even
--   with two writers.  Row digests are not stored: verify recomputes them
--   from the rows.  forget keeps a redacted row's original data digest in
--   redacted_digest before blanking it, so the fixed part is still checked
--   and the chain still verifies; a redacted row is trusted only for a user
--   named in audit_erasures, which is chained too.  audit_prune keeps each
--   pruned row's digest in audit_pruned.  audit_head names the last link,
--   so a truncated tail is a head the chain does not reach.
-- * Append-only: row triggers refuse UPDATE and DELETE on events, changes
--   and the chain tables, and statement triggers refuse TRUNCATE, unless
--   the transaction set workos.audit_path to the one path that may make
--   that change (subjects, erasure, retention, chain).  This guards against
--   mistakes and against roles that do not know the path; the owner of the
--   tables and any superuser can still disable triggers.  The off-host copy
--   of the head (verify prints it) is what catches them.

-- ---- subject columns -----------------------------------------------------

ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS object_type text;
ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS object_id text;
ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS user_id text;
ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS organization_id text;
ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS redacted_at timestamptz;
CREATE INDEX IF NOT EXISTS events_object_id_created_at_idx
    ON @SCHEMA@.events (object_id, created_at) WHERE object_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_user_id_created_at_idx
    ON @SCHEMA@.events (user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_organization_id_created_at_idx
    ON @SCHEMA@.events (organization_id, created_at) WHERE organization_id IS NOT NULL;
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

ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS redacted_digest bytea;

CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_links (
    link      bigint      PRIMARY KEY,
    kind      text        NOT NULL CHECK (kind IN ('event', 'change', 'erasure')),
    refs      text[]      NOT NULL,
    hash      bytea       NOT NULL,
    linked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- A link's refs (1,000 random event ids a batch) do not compress: storing
-- them out of line without trying saves pglz's attempt, 0.14 ms a link.
ALTER TABLE @SCHEMA@.audit_links ALTER COLUMN refs SET STORAGE EXTERNAL;

CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    link bigint  NOT NULL,
    hash bytea   NOT NULL
);
INSERT INTO @SCHEMA@.audit_head (link, hash) VALUES (0, '\x') ON CONFLICT DO NOTHING;

-- Digests of pruned events, so the links that name them still verify.
CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_pruned (
    ref    text  PRIMARY KEY,
    digest bytea NOT NULL
);

CREATE TABLE IF NOT EXISTS @SCHEMA@.audit_checkpoints (
    id              bigserial   PRIMARY KEY,
    pruned_at       timestamptz NOT NULL DEFAULT now(),
    older_than      timestamptz,
    auth_older_than timestamptz,
    pruned          bigint      NOT NULL,
    total           bigint      NOT NULL,
    last_link       bigint      NOT NULL,
    last_hash       bytea       NOT NULL
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

-- Digests.  Times enter as their 8-byte binary form, so the settings of
-- the session that verifies do not matter; jsonb's text form is canonical.
-- STABLE, as convert_to() is, so that they are inlined into the queries
-- that call them.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_event_data_digest(data jsonb, context jsonb)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(data::text || E'\n' || coalesce(context::text, ''), 'UTF8'))
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_event_digest(id text, event text, created_at timestamptz,
                                                       source text, data_digest bytea)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to('event' || E'\n' || id || E'\n' || event || E'\n' || source || E'\n',
                             'UTF8') || timestamptz_send(created_at) || data_digest)
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_change_data_digest(changes jsonb)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(changes::text, 'UTF8'))
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_change_digest(seq bigint, table_name text,
                                                        object_id text, operation text,
                                                        event_id text, reconciliation text,
                                                        committed_at timestamptz,
                                                        data_digest bytea)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to('change' || E'\n' || seq::text || E'\n' || table_name || E'\n'
                             || object_id || E'\n' || operation || E'\n'
                             || coalesce(event_id, '') || E'\n' || coalesce(reconciliation, '')
                             || E'\n', 'UTF8') || timestamptz_send(committed_at) || data_digest)
$$;

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_erasure_digest(id bigint, user_id text, forced boolean,
                                                         events integer, changes integer,
                                                         ran_at timestamptz)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(concat_ws(E'\n', 'erasure', id::text, user_id, forced::text,
                                       events::text, changes::text, ''), 'UTF8')
                  || timestamptz_send(ran_at))
$$;

-- The chain's lock: one per schema, held until commit.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_lock()
RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(1465077315, hashtext('workos-syncd audit @SCHEMA@'))
$$;

-- Appends one link after the head, under the chain's lock: rows `refs` of
-- one kind whose digests, concatenated in the same order, are `digests`.
-- Returns the link's number (NULL for no rows).
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_append(p_kind text, p_refs text[], p_digests bytea)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    h_link bigint;
    h_hash bytea;
BEGIN
    IF coalesce(array_length(p_refs, 1), 0) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM @SCHEMA@.audit_lock();
    SELECT link, hash INTO h_link, h_hash FROM @SCHEMA@.audit_head WHERE one;
    h_link := h_link + 1;
    h_hash := sha256(h_hash || p_digests);
    INSERT INTO @SCHEMA@.audit_links (link, kind, refs, hash) VALUES (h_link, p_kind, p_refs, h_hash);
    PERFORM set_config('workos.audit_path', 'chain', true);
    UPDATE @SCHEMA@.audit_head SET link = h_link, hash = h_hash WHERE one;
    PERFORM set_config('workos.audit_path', '', true);
    RETURN h_link;
END
$$;

-- Events: one link per inserting statement (the apply's `ins`).
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_events_chain()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM @SCHEMA@.audit_append('event', array_agg(n.id ORDER BY n.id),
                string_agg(@SCHEMA@.audit_event_digest(n.id, n.event, n.created_at, n.source,
                               @SCHEMA@.audit_event_data_digest(n.data, n.context)),
                           ''::bytea ORDER BY n.id))
       FROM new_rows n;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS audit_events_chain ON @SCHEMA@.events;
CREATE TRIGGER audit_events_chain AFTER INSERT ON @SCHEMA@.events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION @SCHEMA@.audit_events_chain();

-- The rows written before this migration enter the chain once, in id
-- order, one link per 10,000 events.
DO $$
DECLARE
    last_key text := '';
    refs text[];
    digests bytea;
BEGIN
    IF EXISTS (SELECT 1 FROM @SCHEMA@.audit_links WHERE kind = 'event') THEN
        RETURN;
    END IF;
    LOOP
        SELECT array_agg(id ORDER BY id),
               string_agg(@SCHEMA@.audit_event_digest(id, event, created_at, source,
                              @SCHEMA@.audit_event_data_digest(data, context)), ''::bytea ORDER BY id)
          INTO refs, digests
          FROM (SELECT * FROM @SCHEMA@.events e WHERE e.id > last_key ORDER BY e.id LIMIT 10000) x;
        EXIT WHEN refs IS NULL;
        PERFORM @SCHEMA@.audit_append('event', refs, digests);
        last_key := refs[array_length(refs, 1)];
    END LOOP;
END
$$;

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
    redacted_at     timestamptz,
    redacted_digest bytea
);
CREATE INDEX IF NOT EXISTS changes_object_id_seq_idx ON @SCHEMA@.changes (object_id, seq);
CREATE INDEX IF NOT EXISTS changes_user_id_seq_idx ON @SCHEMA@.changes (user_id, seq)
    WHERE user_id IS NOT NULL;

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

-- {column: {old, new}} for the columns that differ between two row images
-- (jsonb; `o` NULL for an insert, whose NULL columns are left out).
-- synced_at and last_event_id are bookkeeping, not changes.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_diff(o jsonb, n jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_object_agg(k, jsonb_build_object('old', o -> k, 'new', v))
      FROM jsonb_each(n) AS e(k, v)
     WHERE k NOT IN ('synced_at', 'last_event_id', 'raw', 'reconcile_run')
       AND CASE WHEN o IS NULL THEN v <> 'null'::jsonb ELSE (o -> k) IS DISTINCT FROM v END
$$;

-- Appends change rows for mirror table `tbl` (used once, to enter the rows
-- mirrored before this migration; the triggers below are the fast path),
-- given
-- as a jsonb array of {n: new image, o: old image (absent for an insert)},
-- and their link.  The
-- lock comes first: seq must be drawn in commit order.  Returns how many.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_record_changes(tbl text, imgs jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    refs text[];
    digests bytea;
    rec text := nullif(current_setting('workos.reconciliation', true), '');
    ts timestamptz;
BEGIN
    IF imgs IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM @SCHEMA@.audit_lock();
    ts := clock_timestamp();
    WITH d AS MATERIALIZED (
        SELECT x.n, x.o, @SCHEMA@.audit_diff(x.o, x.n) AS diff
          FROM jsonb_to_recordset(imgs) AS x(n jsonb, o jsonb)
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
               (@SCHEMA@.audit_row_subjects(tbl, d.n))[1],
               (@SCHEMA@.audit_row_subjects(tbl, d.n))[2], ts
          FROM d
         WHERE d.diff IS NOT NULL
        RETURNING seq, table_name, object_id, operation, changes, event_id, reconciliation,
                  committed_at
    )
    SELECT array_agg(c.seq::text ORDER BY c.seq),
           string_agg(@SCHEMA@.audit_change_digest(c.seq, c.table_name, c.object_id, c.operation,
                          c.event_id, c.reconciliation, c.committed_at,
                          @SCHEMA@.audit_change_data_digest(c.changes)), ''::bytea ORDER BY c.seq)
      INTO refs, digests FROM c;
    PERFORM @SCHEMA@.audit_append('change', refs, digests);
    RETURN coalesce(array_length(refs, 1), 0);
END
$$;

-- The triggers: per mirror table, generated from its columns, so the diff
-- is plain column comparisons (no jsonb walk of the whole row).  One pair
-- of statement-level functions per table:
--   <table>_audit_ins  AFTER INSERT: every non-NULL column, old NULL;
--   <table>_audit_upd  AFTER UPDATE: rows whose values differ, only the
--                      columns that differ.
-- Each draws seq under the chain's lock, appends the rows, then one link.
DO $gen$
DECLARE
    t text;
    cols text[];
    c text;
    ins_diff text;
    upd_diff text;
    differs text;
    subj text;
    body constant text := $b$
CREATE OR REPLACE FUNCTION @SCHEMA@.%1$I() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    refs text[];
    digests bytea;
    rec text;
    ts timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    PERFORM @SCHEMA@.audit_lock();
    rec := nullif(current_setting('workos.reconciliation', true), '');
    ts := clock_timestamp();
    WITH c AS (
        INSERT INTO @SCHEMA@.changes (seq, table_name, object_id, operation, changes, event_id,
                                      reconciliation, user_id, organization_id, committed_at)
        SELECT nextval('@SCHEMA@.changes_seq'), %3$L, n.id, %4$s, %5$s, n.last_event_id,
               CASE WHEN n.last_event_id IS NULL THEN rec END, %6$s, ts
          FROM new_rows n %2$s
         ORDER BY n.id
        RETURNING seq, table_name, object_id, operation, changes, event_id, reconciliation,
                  committed_at
    )
    SELECT array_agg(c.seq::text ORDER BY c.seq),
           string_agg(@SCHEMA@.audit_change_digest(c.seq, c.table_name, c.object_id, c.operation,
                          c.event_id, c.reconciliation, c.committed_at,
                          @SCHEMA@.audit_change_data_digest(c.changes)), ''::bytea ORDER BY c.seq)
      INTO refs, digests FROM c;
    PERFORM @SCHEMA@.audit_append('change', refs, digests);
    RETURN NULL;
END
$f$;
$b$;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'organization_memberships', 'invitations', 'sessions',
                             'api_keys', 'organizations'] LOOP
        SELECT array_agg(attname::text ORDER BY attnum) INTO cols
          FROM pg_attribute
         WHERE attrelid = format('@SCHEMA@.%I', t)::regclass AND attnum > 0
           AND NOT attisdropped AND attname NOT IN ('synced_at', 'last_event_id', 'raw', 'reconcile_run');
        -- The diff is built as JSON text, one member per column that
        -- counts (concat_ws skips the NULLs), and parsed once: half the
        -- CPU of nested jsonb_build_object calls joined with ||, and the
        -- same jsonb.  Column names need no JSON escaping.
        ins_diff := '';
        upd_diff := '';
        differs := '';
        FOREACH c IN ARRAY cols LOOP
            ins_diff := ins_diff || format(
                '%s CASE WHEN n.%I IS NOT NULL THEN %L || to_json(n.%2$I)::text || ''}'' END',
                CASE WHEN ins_diff = '' THEN '' ELSE ',' END, c,
                format('"%s":{"old":null,"new":', c));
            upd_diff := upd_diff || format(
                '%s CASE WHEN n.%I IS DISTINCT FROM o.%2$I THEN %L'
                ' || coalesce(to_json(o.%2$I)::text, ''null'') || '',"new":'''
                ' || coalesce(to_json(n.%2$I)::text, ''null'') || ''}'' END',
                CASE WHEN upd_diff = '' THEN '' ELSE ',' END, c, format('"%s":{"old":', c));
            differs := differs || format('%s%%1$s.%I', CASE WHEN differs = '' THEN '' ELSE ', ' END, c);
        END LOOP;
        subj := CASE t
            WHEN 'users' THEN 'n.id, NULL'
            WHEN 'organizations' THEN 'NULL, n.id'
            WHEN 'api_keys' THEN 'CASE WHEN n.owner_type = ''user'' THEN n.owner_id END, '
                                 'CASE WHEN n.owner_type = ''organization'' THEN n.owner_id END'
            WHEN 'invitations' THEN 'coalesce(n.accepted_user_id, n.inviter_user_id), '
                                    'n.organization_id'
            ELSE 'n.user_id, n.organization_id' END;
        EXECUTE format(body, t || '_audit_ins', '', t,
                       'CASE WHEN n.deleted_at IS NOT NULL THEN ''tombstone'' ELSE ''insert'' END',
                       format('(''{'' || concat_ws('','', %s) || ''}'')::jsonb', ins_diff), subj);
        EXECUTE format(body, t || '_audit_upd',
                       format('JOIN old_rows o ON o.id = n.id WHERE (%s) IS DISTINCT FROM (%s)',
                              format(differs, 'n'), format(differs, 'o')),
                       t,
                       'CASE WHEN n.deleted_at IS NOT NULL AND o.deleted_at IS NULL '
                       'THEN ''tombstone'' ELSE ''update'' END',
                       format('(''{'' || concat_ws('','', %s) || ''}'')::jsonb', upd_diff), subj);
        EXECUTE format('DROP TRIGGER IF EXISTS audit_changes_insert ON @SCHEMA@.%I', t);
        EXECUTE format('CREATE TRIGGER audit_changes_insert AFTER INSERT ON @SCHEMA@.%I '
                       'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION @SCHEMA@.%I()', t, t || '_audit_ins');
        EXECUTE format('DROP TRIGGER IF EXISTS audit_changes_update ON @SCHEMA@.%I', t);
        EXECUTE format('CREATE TRIGGER audit_changes_update AFTER UPDATE ON @SCHEMA@.%I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION @SCHEMA@.%I()', t, t || '_audit_upd');
    END LOOP;
END
$gen$;

-- Rows mirrored before the change feed existed enter it once, as inserts
-- by the reconciliation "migration 005", so history starts complete.
DO $$
DECLARE
    t text;
    last_id text;
    chunk jsonb;
BEGIN
    IF EXISTS (SELECT 1 FROM @SCHEMA@.changes) THEN
        RETURN;
    END IF;
    PERFORM set_config('workos.reconciliation', 'migration 005', true);
    FOREACH t IN ARRAY ARRAY['organizations', 'users', 'organization_memberships', 'invitations',
                             'sessions', 'api_keys'] LOOP
        last_id := '';
        LOOP
            EXECUTE format('SELECT jsonb_agg(jsonb_build_object(''n'', to_jsonb(x) - '
                           '''last_event_id'') ORDER BY x.id) FROM (SELECT * FROM @SCHEMA@.%I '
                           'WHERE id > $1 ORDER BY id LIMIT 10000) x', t)
               INTO chunk USING last_id;
            EXIT WHEN chunk IS NULL;
            PERFORM @SCHEMA@.audit_record_changes(t, chunk);
            last_id := chunk -> -1 -> 'n' ->> 'id';
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
    ELSIF path = 'chain' AND TG_TABLE_NAME = 'audit_head' THEN
        RETURN NEW;
    ELSE
        o := to_jsonb(OLD);
        n := to_jsonb(NEW);
        IF path = 'subjects' AND TG_TABLE_NAME = 'events'
           AND o - '{object_type,object_id,user_id,organization_id}'::text[]
             = n - '{object_type,object_id,user_id,organization_id}'::text[] THEN
            RETURN NEW;
        ELSIF path = 'erasure' AND TG_TABLE_NAME IN ('events', 'changes')
              AND n ->> 'redacted_at' IS NOT NULL AND n ->> 'redacted_digest' IS NOT NULL
              AND o - '{data,context,changes,redacted_at,redacted_digest}'::text[]
                = n - '{data,context,changes,redacted_at,redacted_digest}'::text[] THEN
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
    FOREACH t IN ARRAY ARRAY['events', 'changes', 'audit_links', 'audit_head', 'audit_pruned',
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
-- are absent; so are objects the feed first saw after `at`.  last_event_id
-- is the event of the last change (an event that changed nothing is not in
-- the feed) and synced_at that change's commit time.
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
-- (authentication.* before `auth_older_than`; NULL: keep), keeps each one's
-- digest in audit_pruned (so the links naming them still verify) and
-- records a checkpoint: how many, the running total, and the head link
-- and hash the pruned rows lie under.  Returns how many it deleted.  It
-- takes no lock the apply takes: the chain's lock is not needed, and the
-- rows it deletes are old ones no apply writes.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_prune(older_than timestamptz,
                                                auth_older_than timestamptz, batch integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
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

-- ---- erasure ---------------------------------------------------------------

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
-- feed (keeping each row's original data digest first), records the run in
-- audit_erasures and in the chain, and returns (events, changes)
-- redacted.  Refuses a user still live in the mirror unless `force`.
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
       SET redacted_digest = coalesce(e.redacted_digest,
                                      @SCHEMA@.audit_event_data_digest(e.data, e.context)),
           data = @SCHEMA@.audit_redact(e.data), context = @SCHEMA@.audit_redact(e.context),
           redacted_at = now()
     WHERE e.user_id = uid
        OR (e.object_type IS NULL AND (@SCHEMA@.audit_subjects(e.event, e.data))[3] = uid);
    GET DIAGNOSTICS events = ROW_COUNT;
    UPDATE @SCHEMA@.changes c
       SET redacted_digest = coalesce(c.redacted_digest,
                                      @SCHEMA@.audit_change_data_digest(c.changes)),
           changes = @SCHEMA@.audit_redact(c.changes), redacted_at = now()
     WHERE c.user_id = uid;
    GET DIAGNOSTICS changes = ROW_COUNT;
    PERFORM set_config('workos.audit_path', '', true);
    INSERT INTO @SCHEMA@.audit_erasures (user_id, forced, events, changes)
    VALUES (uid, force, events, changes) RETURNING id, ran_at INTO eid, ts;
    PERFORM @SCHEMA@.audit_append('erasure', ARRAY[eid::text],
        @SCHEMA@.audit_erasure_digest(eid, uid, force, events, changes, ts));
END
$$;

-- ---- verify ------------------------------------------------------------------

-- A row's digest as verify recomputes it (NULL: no such row).  A redacted
-- row's data is taken from its kept digest only when an erasure of its
-- user is on record; a pruned event's digest is the one kept at pruning.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_row_digest(p_kind text, p_ref text)
RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT CASE p_kind
    WHEN 'event' THEN coalesce((
        SELECT @SCHEMA@.audit_event_digest(e.id, e.event, e.created_at, e.source,
                   CASE WHEN e.redacted_at IS NOT NULL AND EXISTS (
                            SELECT 1 FROM @SCHEMA@.audit_erasures x WHERE x.user_id = e.user_id)
                        THEN e.redacted_digest
                        ELSE @SCHEMA@.audit_event_data_digest(e.data, e.context) END)
          FROM @SCHEMA@.events e WHERE e.id = p_ref),
        (SELECT p.digest FROM @SCHEMA@.audit_pruned p WHERE p.ref = p_ref))
    WHEN 'change' THEN (
        SELECT @SCHEMA@.audit_change_digest(c.seq, c.table_name, c.object_id, c.operation,
                   c.event_id, c.reconciliation, c.committed_at,
                   CASE WHEN c.redacted_at IS NOT NULL AND EXISTS (
                            SELECT 1 FROM @SCHEMA@.audit_erasures x WHERE x.user_id = c.user_id)
                        THEN c.redacted_digest
                        ELSE @SCHEMA@.audit_change_data_digest(c.changes) END)
          FROM @SCHEMA@.changes c WHERE c.seq = p_ref::bigint)
    WHEN 'erasure' THEN (
        SELECT @SCHEMA@.audit_erasure_digest(x.id, x.user_id, x.forced, x.events, x.changes,
                                             x.ran_at)
          FROM @SCHEMA@.audit_erasures x WHERE x.id = p_ref::bigint)
    END
$$;

-- The chain link by link for `workos-syncd verify`, which folds the
-- hashes: each link's stored hash, its rows' recomputed digests
-- concatenated in order, and the first of its rows that is missing.
CREATE OR REPLACE VIEW @SCHEMA@.audit_verify_links AS
SELECT l.link, l.kind, l.hash, cardinality(l.refs) AS n, l.refs[1] AS first_ref,
       (SELECT string_agg(d.digest, ''::bytea ORDER BY d.i) FROM (
            SELECT r.i, @SCHEMA@.audit_row_digest(l.kind, r.ref) AS digest
              FROM unnest(l.refs) WITH ORDINALITY AS r(ref, i)) d) AS digests,
       (SELECT r.ref FROM unnest(l.refs) WITH ORDINALITY AS r(ref, i)
         WHERE @SCHEMA@.audit_row_digest(l.kind, r.ref) IS NULL ORDER BY r.i LIMIT 1) AS missing
  FROM @SCHEMA@.audit_links l;

-- How many rows of the log and the feed the chain names, against how many
-- there are: a row slipped in with the triggers off is not named.
CREATE OR REPLACE VIEW @SCHEMA@.audit_verify_counts AS
SELECT (SELECT count(*) FROM @SCHEMA@.events) + (SELECT count(*) FROM @SCHEMA@.audit_pruned)
           AS events,
       (SELECT coalesce(sum(cardinality(refs)), 0) FROM @SCHEMA@.audit_links WHERE kind = 'event')
           AS event_refs,
       (SELECT count(*) FROM @SCHEMA@.changes) AS changes,
       (SELECT coalesce(sum(cardinality(refs)), 0) FROM @SCHEMA@.audit_links WHERE kind = 'change')
           AS change_refs,
       (SELECT count(*) FROM @SCHEMA@.audit_pruned) AS pruned;
