-- 009: less audit work in the apply transaction.
--
-- * The subject columns of events (object_type, object_id, user_id,
--   organization_id) are written by the apply statement itself, from
--   audit_subjects(event, data), so the background fill no longer rewrites
--   every row a second after it was inserted (that UPDATE made a new
--   version of the whole row, touched every index and ran the append-only
--   guard, which compares two jsonb images of the row: about 24 us an
--   event, on the same backend as the applies).  audit_fill_subjects()
--   stays for rows written by other means (by hand, or before this
--   migration); object_type IS NULL still marks them.
-- * The notification: the deferred trigger fires once for every update of
--   the chain's head, up to seven times a batch; only the first of them at
--   commit does the work (the highest seq is final by then), the others
--   see the transaction-local mark it leaves.
--
-- Every statement is idempotent.

CREATE OR REPLACE FUNCTION @SCHEMA@.audit_notify()
RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    extra jsonb;
BEGIN
    IF current_setting('workos.notified', true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('workos.notified', 'yes', true);
    extra := coalesce(nullif(current_setting('workos.notify', true), '')::jsonb, '{}');
    PERFORM pg_notify('workos_changes', (extra || jsonb_build_object('seq',
        coalesce((SELECT max(seq) FROM @SCHEMA@.changes), 0)))::text);
    RETURN NULL;
END
$$;
