-- 014: the subject fill never stops on one row.
--
-- audit_fill_subjects() fills the subject columns of rows written by other
-- means (by hand, or by a daemon before migration 009), oldest first.  A
-- row whose data named a user, organization or object id too long for the
-- subject indexes failed the fill's statement on every try, and every
-- unfilled row after it stayed unfilled (trail queries and `forget` then
-- fall back to reading the payload).  Such a value is now left out
-- (NULL): the row counts as filled, with the subjects that fit.  The apply
-- itself refuses such an event to poison_events, as before.
--
-- Every statement is idempotent.

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_subject_key(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length(v) <= 2000 THEN v END
$$;

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
       SET object_type = coalesce(@SCHEMA@.audit_subject_key(
                             (@SCHEMA@.audit_subjects(e.event, e.data))[1]), ''),
           object_id = @SCHEMA@.audit_subject_key((@SCHEMA@.audit_subjects(e.event, e.data))[2]),
           user_id = @SCHEMA@.audit_subject_key((@SCHEMA@.audit_subjects(e.event, e.data))[3]),
           organization_id = @SCHEMA@.audit_subject_key(
                                 (@SCHEMA@.audit_subjects(e.event, e.data))[4])
      FROM todo
     WHERE e.id = todo.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('workos.audit_path', '', true);
    RETURN n;
END
$$;
