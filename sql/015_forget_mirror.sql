-- 015: forget reaches the mirror, poison_events and the failure rollups.
--
-- audit_forget() blanked a person's data in the event log and the change
-- feed only.  The mirror kept it (the user's tombstone with its raw object,
-- its sessions' addresses and user agents, ...), as did the payloads of
-- poison_events and the rollups that count failed sign-ins by e-mail, so
-- an erasure request took a by-hand UPDATE and a second forget.  Now,
-- before the log and the feed are redacted:
--
-- * the user's mirror rows (its users row, its memberships and sessions,
--   the invitations it accepted, the API keys it owns) have their personal
--   columns set NULL and their raw object redacted, one UPDATE per table
--   with workos.reconciliation = 'erasure' and last_event_id NULL, so the
--   change feed records each as an update made by the erasure; those
--   change rows name the user and are redacted with the rest of its feed,
--   so the old values they hold do not outlive the call;
-- * poison_events naming the user have data and context redacted (and the
--   raw text of one that could not be parsed, when it holds the user's id
--   or one of its addresses as a JSON string, is dropped);
-- * rollup_fail_account and rollup_fail_pairs rows keyed by one of the
--   user's addresses are deleted; rollup_fail_ip keeps its counts.
--
-- Invitations sent to the address and not accepted by the user name their
-- inviter, as their events and change rows do, and are left as before.
-- A second forget of the same user finds nothing left to blank.
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

    -- The mirror.  Each UPDATE's change rows name the user (see
    -- audit_row_subjects), so the feed's redaction below covers them.
    PERFORM set_config('workos.reconciliation', 'erasure', true);
    UPDATE @SCHEMA@.users t
       SET email = NULL, first_name = NULL, last_name = NULL, name = NULL,
           profile_picture_url = NULL, external_id = NULL, metadata = NULL,
           raw = @SCHEMA@.audit_redact(t.raw), last_event_id = NULL
     WHERE t.id = uid;
    UPDATE @SCHEMA@.organization_memberships t
       SET custom_attributes = NULL, external_id = NULL, metadata = NULL,
           raw = @SCHEMA@.audit_redact(t.raw), last_event_id = NULL
     WHERE t.user_id = uid;
    UPDATE @SCHEMA@.sessions t
       SET ip_address = NULL, user_agent = NULL,
           impersonator = @SCHEMA@.audit_redact(t.impersonator),
           raw = @SCHEMA@.audit_redact(t.raw), last_event_id = NULL
     WHERE t.user_id = uid;
    UPDATE @SCHEMA@.invitations t
       SET email = NULL, raw = @SCHEMA@.audit_redact(t.raw), last_event_id = NULL
     WHERE t.accepted_user_id = uid;
    UPDATE @SCHEMA@.api_keys t
       SET name = NULL, raw = @SCHEMA@.audit_redact(t.raw), last_event_id = NULL
     WHERE t.owner_type = 'user' AND t.owner_id = uid;
    PERFORM set_config('workos.reconciliation', '', true);

    -- An unparsed one is matched on the id or an address as a JSON string.
    UPDATE @SCHEMA@.poison_events p
       SET data = @SCHEMA@.audit_redact(p.data), context = @SCHEMA@.audit_redact(p.context),
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
