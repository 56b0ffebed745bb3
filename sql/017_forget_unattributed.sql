-- 017: forget reaches failed sign-ins that name the user's address only.
--
-- WorkOS sends authentication.*_failed events without a user id for an
-- address it does not know -- typed before the account existed, or after
-- it was deleted -- and they carry the address, the IP address and the
-- user agent.  audit_forget() found the user's events by user_id, so they
-- kept all three through an erasure.  It now attributes each such event
-- whose email is one of the addresses it collects (ignoring case) to the
-- user -- user_id set, the other subject columns filled -- before it
-- redacts, so they are redacted with the rest, and verify, which takes a
-- redacted row's kept digest only for a user named in audit_erasures,
-- accepts them.  The subject columns are outside the chained digest.
-- Otherwise it is 016's.
--
-- Every statement is idempotent.

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_forget(uid text, force boolean,
                                                 OUT events integer, OUT changes integer)
LANGUAGE plpgsql AS $$
DECLARE
    eid bigint;
    ts timestamptz;
    emails text[];
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
     WHERE t.accepted_user_id = uid;
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

    -- The log and the feed, as in 005.
    PERFORM set_config('workos.audit_path', 'erasure', true);
    UPDATE @SCHEMA@.events e
       SET redacted_digest = coalesce(e.redacted_digest,
                                      @SCHEMA@.audit_event_data_digest(e.data, e.context)),
           data = @SCHEMA@.audit_redact(e.data, emails),
           context = @SCHEMA@.audit_redact(e.context, emails),
           redacted_at = now()
     WHERE e.user_id = uid;
    GET DIAGNOSTICS events = ROW_COUNT;
    UPDATE @SCHEMA@.changes c
       SET redacted_digest = coalesce(c.redacted_digest,
                                      @SCHEMA@.audit_change_data_digest(c.changes)),
           changes = @SCHEMA@.audit_redact(c.changes, emails), redacted_at = now()
     WHERE c.user_id = uid;
    GET DIAGNOSTICS changes = ROW_COUNT;
    PERFORM set_config('workos.audit_path', '', true);
    INSERT INTO @SCHEMA@.audit_erasures (user_id, forced, events, changes)
    VALUES (uid, force, events, changes) RETURNING id, ran_at INTO eid, ts;
    PERFORM @SCHEMA@.audit_append('erasure', ARRAY[eid::text],
        @SCHEMA@.audit_erasure_digest(eid, uid, force, events, changes, ts));
END
$$;
