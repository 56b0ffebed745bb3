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
-- * The chain's and the change feed's trigger functions sort less: the
--   events of a link are sorted once (by id, with their digests) instead
--   of once per aggregate, and the change rows not at all (below).
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

-- Events: one link per inserting statement, as in 005; the rows are sorted
-- by id once, digests computed, and both aggregates read that order.
CREATE OR REPLACE FUNCTION @SCHEMA@.audit_events_chain()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM @SCHEMA@.audit_append('event', array_agg(n.id), string_agg(n.digest, ''::bytea))
       FROM (SELECT e.id, @SCHEMA@.audit_event_digest(e.id, e.event, e.created_at, e.source,
                              @SCHEMA@.audit_event_data_digest(e.data, e.context)) AS digest
               FROM new_rows e ORDER BY e.id) n;
    RETURN NULL;
END
$$;

-- The change feed's trigger functions, generated as in 005 but with two
-- sorts fewer: the new rows are not sorted by id before seq is drawn (the
-- apply writes each table in id order anyway), and the link's refs and
-- digests are aggregated in the order the rows were inserted, which is seq
-- order.  Both aggregates read the same rows in the same order, so a link's
-- refs and digests correspond, which is what verify checks.  The triggers
-- themselves stay as 005 made them.
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
        RETURNING seq, table_name, object_id, operation, changes, event_id, reconciliation,
                  committed_at
    )
    SELECT array_agg(c.seq::text),
           string_agg(@SCHEMA@.audit_change_digest(c.seq, c.table_name, c.object_id, c.operation,
                          c.event_id, c.reconciliation, c.committed_at,
                          @SCHEMA@.audit_change_data_digest(c.changes)), ''::bytea)
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
    END LOOP;
END
$gen$;

