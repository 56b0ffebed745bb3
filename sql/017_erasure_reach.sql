-- 017: forget reaches everything that was the person's, and verify takes a
-- redacted row only when the erasure names it in the chain.
--
-- Three gaps closed together:
--
-- * Failed sign-ins without a user.  WorkOS sends authentication.*_failed
--   without a user id for an address it does not know (typed before the
--   account existed, or after it was deleted), with the address, the IP
--   address and the user agent.  forget found the user's events by
--   user_id, so an erasure left all three.  It now attributes each
--   authentication.* event without a user whose email is one of the
--   addresses it collects (ignoring case) to the user -- user_id set, the
--   other subject columns filled, on the subjects path -- before it
--   redacts.
-- * Invitations.  An invitation's events and change rows name its inviter
--   until someone accepts it, and carry the invitee's address, so the
--   address survived in the invitation.created (and .resent) events of
--   every invitation the user accepted, and in all of those of one sent to
--   its address that no one accepted.  forget now blanks those
--   invitations' mirror rows and redacts their events and change rows too.
--   An invitation someone else accepted is theirs.
-- * Laundering.  verify took a redacted row's kept digest -- its payload
--   unchecked -- for any row whose user an erasure names, and the subject
--   columns are outside the digest: whoever could write the log with its
--   triggers off could mark any row redacted, keep its original digest,
--   name an erased user and rewrite its payload, and neither verify nor a
--   head recorded outside the database would show it.  Now events and
--   changes carry erased_by (the erasure that redacted the row; the
--   guard's erasure path may set it), an erasure records refs, every row
--   it redacted ('event:ID', 'change:SEQ', sorted), which its chained
--   digest covers, and verify (audit_row_digest and audit_verify_walk,
--   which must agree) takes a kept digest only when an erasure's refs name
--   the row, and requires every erasure to be named by a link
--   (audit_verify_counts gains erasures and erasure_refs).  An erasure
--   recorded before this migration (refs NULL) is taken as before, by its
--   user.
--
-- audit_forget() is 016's otherwise.  Every statement is idempotent.

ALTER TABLE @SCHEMA@.events ADD COLUMN IF NOT EXISTS erased_by bigint;
ALTER TABLE @SCHEMA@.changes ADD COLUMN IF NOT EXISTS erased_by bigint;
ALTER TABLE @SCHEMA@.audit_erasures ADD COLUMN IF NOT EXISTS refs text[];
CREATE INDEX IF NOT EXISTS audit_erasures_refs_idx ON @SCHEMA@.audit_erasures USING gin (refs);

-- The digest of an erasure that names its rows: 005's, then the rows'.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_erasure_digest(id bigint, user_id text, forced boolean,
                                                         events integer, changes integer,
                                                         ran_at timestamptz, refs text[])
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN refs IS NULL
                THEN @SCHEMA@.audit_erasure_digest(id, user_id, forced, events, changes, ran_at)
                ELSE sha256(@SCHEMA@.audit_erasure_digest(id, user_id, forced, events, changes,
                                                          ran_at)
                            || sha256(convert_to(array_to_string(refs, E'\n'), 'UTF8'))) END
$$;

-- Verify's digest of one row (005's): a redacted row's kept digest is taken
-- when an erasure names the row, or, for an erasure made before this
-- migration (no refs), when an erasure names its user.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_row_digest(p_kind text, p_ref text)
RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT CASE p_kind
    WHEN 'event' THEN coalesce((
        SELECT @SCHEMA@.audit_event_digest(e.id, e.event, e.created_at, e.source,
                   CASE WHEN e.redacted_at IS NOT NULL
                             AND (EXISTS (SELECT 1 FROM @SCHEMA@.audit_erasures x
                                           WHERE x.refs @> ARRAY['event:' || e.id])
                                  OR EXISTS (SELECT 1 FROM @SCHEMA@.audit_erasures x
                                              WHERE x.refs IS NULL
                                                AND x.user_id = e.user_id))
                        THEN e.redacted_digest
                        ELSE @SCHEMA@.audit_event_data_digest(e.data, e.context) END)
          FROM @SCHEMA@.events e WHERE e.id = p_ref),
        (SELECT p.digest FROM @SCHEMA@.audit_pruned p WHERE p.ref = p_ref))
    WHEN 'change' THEN (
        SELECT @SCHEMA@.audit_change_digest(c.seq, c.table_name, c.object_id, c.operation,
                   c.event_id, c.reconciliation, c.committed_at,
                   CASE WHEN c.redacted_at IS NOT NULL
                             AND (EXISTS (SELECT 1 FROM @SCHEMA@.audit_erasures x
                                           WHERE x.refs @> ARRAY['change:' || c.seq])
                                  OR EXISTS (SELECT 1 FROM @SCHEMA@.audit_erasures x
                                              WHERE x.refs IS NULL
                                                AND x.user_id = c.user_id))
                        THEN c.redacted_digest
                        ELSE @SCHEMA@.audit_change_data_digest(c.changes) END)
          FROM @SCHEMA@.changes c WHERE c.seq = p_ref::bigint)
    WHEN 'erasure' THEN (
        SELECT @SCHEMA@.audit_erasure_digest(x.id, x.user_id, x.forced, x.events, x.changes,
                                             x.ran_at, x.refs)
          FROM @SCHEMA@.audit_erasures x WHERE x.id = p_ref::bigint)
    END
$$;

-- Verify's walk (010's), with the same digest as audit_row_digest above.
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
                                  CASE WHEN e.redacted_at IS NOT NULL
                                            AND (EXISTS (SELECT 1 FROM @SCHEMA@.audit_erasures x
                                                          WHERE x.refs @> ARRAY['event:' || e.id])
                                                 OR EXISTS (SELECT 1 FROM @SCHEMA@.audit_erasures x
                                                             WHERE x.refs IS NULL
                                                               AND x.user_id = e.user_id))
                                       THEN e.redacted_digest
                                       ELSE @SCHEMA@.audit_event_data_digest(e.data, e.context) END)
                         FROM @SCHEMA@.events e WHERE e.id = r.ref),
                       (SELECT p.digest FROM @SCHEMA@.audit_pruned p WHERE p.ref = r.ref))
                   WHEN 'change' THEN (
                       SELECT @SCHEMA@.audit_change_digest(c.seq, c.table_name, c.object_id,
                                  c.operation, c.event_id, c.reconciliation, c.committed_at,
                                  CASE WHEN c.redacted_at IS NOT NULL
                                            AND (EXISTS (SELECT 1 FROM @SCHEMA@.audit_erasures x
                                                          WHERE x.refs @> ARRAY['change:' || c.seq])
                                                 OR EXISTS (SELECT 1 FROM @SCHEMA@.audit_erasures x
                                                             WHERE x.refs IS NULL
                                                               AND x.user_id = c.user_id))
                                       THEN c.redacted_digest
                                       ELSE @SCHEMA@.audit_change_data_digest(c.changes) END)
                         FROM @SCHEMA@.changes c WHERE c.seq = r.ref::bigint)
                   WHEN 'erasure' THEN (
                       SELECT @SCHEMA@.audit_erasure_digest(x.id, x.user_id, x.forced, x.events,
                                                            x.changes, x.ran_at, x.refs)
                         FROM @SCHEMA@.audit_erasures x WHERE x.id = r.ref::bigint)
                   END AS digest
                 FROM unnest(l.refs) WITH ORDINALITY AS r(ref, i)
               OFFSET 0) x) d;


-- Every row of the log, the feed and the erasures against how many the
-- chain names (005's, with the erasures last).
CREATE OR REPLACE VIEW @SCHEMA@.audit_verify_counts AS
SELECT (SELECT count(*) FROM @SCHEMA@.events) + (SELECT count(*) FROM @SCHEMA@.audit_pruned)
           AS events,
       (SELECT coalesce(sum(cardinality(refs)), 0) FROM @SCHEMA@.audit_links WHERE kind = 'event')
           AS event_refs,
       (SELECT count(*) FROM @SCHEMA@.changes) AS changes,
       (SELECT coalesce(sum(cardinality(refs)), 0) FROM @SCHEMA@.audit_links WHERE kind = 'change')
           AS change_refs,
       (SELECT count(*) FROM @SCHEMA@.audit_pruned) AS pruned,
       (SELECT count(*) FROM @SCHEMA@.audit_erasures) AS erasures,
       (SELECT coalesce(sum(cardinality(refs)), 0) FROM @SCHEMA@.audit_links WHERE kind = 'erasure')
           AS erasure_refs;

-- The append-only guard (005's), the erasure path also setting erased_by.
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
              AND o - '{data,context,changes,redacted_at,redacted_digest,erased_by}'::text[]
                = n - '{data,context,changes,redacted_at,redacted_digest,erased_by}'::text[] THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'rows leave the audit trail only through audit_prune() and forget';
END
$$;


CREATE OR REPLACE FUNCTION @SCHEMA@.audit_forget(uid text, force boolean,
                                                 OUT events integer, OUT changes integer)
LANGUAGE plpgsql AS $$
DECLARE
    eid bigint;
    ts timestamptz;
    emails text[];
    invs text[];
    refs text[];
BEGIN
    IF coalesce(uid, '') = '' THEN
        RAISE EXCEPTION 'no user id given' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT force AND EXISTS (SELECT 1 FROM @SCHEMA@.users u
                              WHERE u.id = uid AND u.deleted_at IS NULL) THEN
        RAISE EXCEPTION 'user % is still live in the mirror', uid
            USING ERRCODE = 'object_in_use', HINT = 'forget a user deleted in WorkOS, or force';
    END IF;

    -- The user's events whose subject columns are not filled yet (written
    -- by hand, or before migration 009) get them first, as the fill would:
    -- the addresses below are found through them, and the rows to redact
    -- by their user_id.
    PERFORM set_config('workos.audit_path', 'subjects', true);
    UPDATE @SCHEMA@.events e
       SET object_type = s.s[1], object_id = s.s[2], user_id = s.s[3], organization_id = s.s[4]
      FROM (SELECT x.id, @SCHEMA@.audit_subjects(x.event, x.data) AS s
              FROM @SCHEMA@.events x WHERE x.object_type IS NULL) s
     WHERE e.id = s.id AND s.s[3] = uid;
    PERFORM set_config('workos.audit_path', '', true);

    -- The addresses the user had, while they can still be read: the keys
    -- of the failure rollups.  An invitation names its inviter when no one
    -- accepted it, and its address is the invitee's, not the user's.
    SELECT coalesce(array_agg(DISTINCT a.email), '{}') INTO emails
      FROM (SELECT u.email FROM @SCHEMA@.users u WHERE u.id = uid
            UNION ALL
            SELECT e.data ->> 'email' FROM @SCHEMA@.events e
             WHERE e.user_id = uid
               AND (e.object_type IS DISTINCT FROM 'invitation'
                    OR e.data ->> 'accepted_user_id' = uid)
            UNION ALL
            SELECT v FROM @SCHEMA@.changes c,
                   LATERAL (VALUES (c.changes -> 'email' ->> 'old'),
                                   (c.changes -> 'email' ->> 'new')) AS x(v)
             WHERE c.user_id = uid AND c.table_name = 'users') a
     WHERE a.email <> '';

    -- Failed sign-ins with one of those addresses and no user (WorkOS
    -- sends them for an address it does not know: typed before the
    -- account existed, or after it was deleted) are the person's too:
    -- attributed to the user, subject columns filled, so the redaction
    -- below reaches them (and the user's trail shows them).
    PERFORM set_config('workos.audit_path', 'subjects', true);
    UPDATE @SCHEMA@.events e
       SET object_type = s.s[1], object_id = s.s[2], user_id = uid, organization_id = s.s[4]
      FROM (SELECT x.id, @SCHEMA@.audit_subjects(x.event, x.data) AS s
              FROM @SCHEMA@.events x
             WHERE x.user_id IS NULL AND x.event LIKE 'authentication.%'
               AND lower(x.data ->> 'email') IN (SELECT lower(m) FROM unnest(emails) m)) s
     WHERE e.id = s.id;
    PERFORM set_config('workos.audit_path', '', true);

    -- The invitations that were the user's: those it accepted, and those to
    -- one of its addresses that no one accepted.  Their events and change
    -- rows before the acceptance, or all of them when none came, name the
    -- inviter, and carry the address.
    SELECT coalesce(array_agg(i.id), '{}') INTO invs
      FROM @SCHEMA@.invitations i
     WHERE i.accepted_user_id = uid
        OR (i.accepted_user_id IS NULL
            AND lower(i.email) IN (SELECT lower(m) FROM unnest(emails) m));
    -- The erasure's id, which every row it redacts points to (erased_by).
    eid := nextval(pg_get_serial_sequence('@SCHEMA@.audit_erasures', 'id'));

    -- The mirror.  Each UPDATE's change rows name the user (see
    -- audit_row_subjects), so the feed's redaction below covers them.
    PERFORM set_config('workos.reconciliation', 'erasure', true);
    UPDATE @SCHEMA@.users t
       SET email = NULL, first_name = NULL, last_name = NULL, name = NULL,
           profile_picture_url = NULL, external_id = NULL, metadata = NULL,
           raw = @SCHEMA@.audit_redact(t.raw, emails), last_event_id = NULL
     WHERE t.id = uid;
    UPDATE @SCHEMA@.organization_memberships t
       SET custom_attributes = NULL, external_id = NULL, metadata = NULL,
           raw = @SCHEMA@.audit_redact(t.raw, emails), last_event_id = NULL
     WHERE t.user_id = uid;
    UPDATE @SCHEMA@.sessions t
       SET ip_address = NULL, user_agent = NULL,
           impersonator = @SCHEMA@.audit_redact(t.impersonator, emails),
           raw = @SCHEMA@.audit_redact(t.raw, emails), last_event_id = NULL
     WHERE t.user_id = uid;
    UPDATE @SCHEMA@.invitations t
       SET email = NULL, raw = @SCHEMA@.audit_redact(t.raw, emails), last_event_id = NULL
     WHERE t.id = ANY (invs);
    UPDATE @SCHEMA@.api_keys t
       SET name = NULL, raw = @SCHEMA@.audit_redact(t.raw, emails), last_event_id = NULL
     WHERE t.owner_type = 'user' AND t.owner_id = uid;
    PERFORM set_config('workos.reconciliation', '', true);

    -- An unparsed one is matched on the id or an address as a JSON string.
    UPDATE @SCHEMA@.poison_events p
       SET data = @SCHEMA@.audit_redact(p.data, emails),
           context = @SCHEMA@.audit_redact(p.context, emails),
           raw = CASE WHEN q.quoted THEN NULL ELSE p.raw END
      FROM (SELECT x.id, x.raw IS NOT NULL
                         AND EXISTS (SELECT 1 FROM unnest(uid || emails) m
                                      WHERE strpos(x.raw, '"' || m || '"') > 0) AS quoted
              FROM @SCHEMA@.poison_events x) q
     WHERE q.id = p.id
       AND ((p.data IS NOT NULL AND (@SCHEMA@.audit_subjects(p.event, p.data))[3] = uid)
            OR q.quoted);

    DELETE FROM @SCHEMA@.rollup_fail_account f
     WHERE f.account IN (SELECT @SCHEMA@.rollup_key(m) FROM unnest(emails) m);
    DELETE FROM @SCHEMA@.rollup_fail_pairs f
     WHERE f.account IN (SELECT @SCHEMA@.rollup_key(m) FROM unnest(emails) m);

    -- The log and the feed, as in 005, and the invitations' rows that name
    -- someone else, each marked with the erasure, which names them all in
    -- the chain.
    PERFORM set_config('workos.audit_path', 'erasure', true);
    WITH u AS (
        UPDATE @SCHEMA@.events e
           SET redacted_digest = coalesce(e.redacted_digest,
                                          @SCHEMA@.audit_event_data_digest(e.data, e.context)),
               data = @SCHEMA@.audit_redact(e.data, emails),
               context = @SCHEMA@.audit_redact(e.context, emails),
               redacted_at = now(), erased_by = eid
         WHERE e.user_id = uid OR (e.object_id = ANY (invs) AND e.object_type = 'invitation')
        RETURNING 'event:' || e.id AS ref)
    SELECT count(*), coalesce(array_agg(u.ref), '{}') INTO events, refs FROM u;
    WITH u AS (
        UPDATE @SCHEMA@.changes c
           SET redacted_digest = coalesce(c.redacted_digest,
                                          @SCHEMA@.audit_change_data_digest(c.changes)),
               changes = @SCHEMA@.audit_redact(c.changes, emails), redacted_at = now(),
               erased_by = eid
         WHERE c.user_id = uid OR (c.object_id = ANY (invs) AND c.table_name = 'invitations')
        RETURNING 'change:' || c.seq AS ref)
    SELECT count(*), refs || coalesce(array_agg(u.ref), '{}') INTO changes, refs FROM u;
    PERFORM set_config('workos.audit_path', '', true);
    refs := ARRAY(SELECT r FROM unnest(refs) AS r ORDER BY r);
    INSERT INTO @SCHEMA@.audit_erasures (id, user_id, forced, events, changes, refs)
    VALUES (eid, uid, force, events, changes, refs) RETURNING ran_at INTO ts;
    PERFORM @SCHEMA@.audit_append('erasure', ARRAY[eid::text],
        @SCHEMA@.audit_erasure_digest(eid, uid, force, events, changes, ts, refs));
END
$$;
