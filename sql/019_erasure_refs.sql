-- 019: an erasure names, in the chain, every row it redacted.
--
-- verify took a redacted row's kept digest -- its payload unchecked --
-- for any row whose user an erasure names (or, since 018, whose erased_by
-- does).  The subject columns are outside the digest, so whoever could
-- write the log with its triggers off (the owner, a superuser) could mark
-- any row redacted, keep its original digest, name an erased user, and
-- rewrite its payload: verify still passed, and a head recorded outside the
-- database did not help, since the chain did not change.
--
-- * audit_erasures gains refs, the rows the erasure redacted ('event:ID',
--   'change:SEQ', sorted), and its chained digest covers them
--   (audit_erasure_digest with refs; NULL refs give 005's digest).
-- * verify takes a redacted row's kept digest only when an erasure's refs
--   name it; an erasure recorded before this migration (refs NULL) is
--   taken as before, by its user and erased_by.  Every erasure must be
--   named by a link, as every event and change row is
--   (audit_verify_counts gains erasures and erasure_refs).
-- * audit_forget() marks every row it redacts with its erasure
--   (erased_by) and records their refs.  Otherwise it is 018's.
--
-- Every statement is idempotent.

ALTER TABLE @SCHEMA@.audit_erasures ADD COLUMN IF NOT EXISTS refs text[];
CREATE INDEX IF NOT EXISTS audit_erasures_refs_idx ON @SCHEMA@.audit_erasures USING gin (refs);

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

-- Verify's digest of one row (018's): a redacted row's kept digest is taken
-- when an erasure names the row, or, for an erasure made before this
-- migration (no refs), as 018 took it.
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
                                                AND (x.user_id = e.user_id OR x.id = e.erased_by)))
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
                                                AND (x.user_id = c.user_id OR x.id = c.erased_by)))
                        THEN c.redacted_digest
                        ELSE @SCHEMA@.audit_change_data_digest(c.changes) END)
          FROM @SCHEMA@.changes c WHERE c.seq = p_ref::bigint)
    WHEN 'erasure' THEN (
        SELECT @SCHEMA@.audit_erasure_digest(x.id, x.user_id, x.forced, x.events, x.changes,
                                             x.ran_at, x.refs)
          FROM @SCHEMA@.audit_erasures x WHERE x.id = p_ref::bigint)
    END
$$;

-- Verify's walk (018's), with the same digest as audit_row_digest above.
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
                                                               AND (x.user_id = e.user_id OR x.id = e.erased_by)))
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
                                                               AND (x.user_id = c.user_id OR x.id = c.erased_by)))
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
    -- the addresses below are found through them, and verify takes a
    -- redacted row's kept digest only for a user an erasure names.
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
    -- below reaches them and verify accepts it.
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
    -- The erasure's id, which the rows of others it redacts point to.
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
