-- 012: the listed objects PostgreSQL refused, so that one of them does not
-- stop a reconciliation.
--
-- A page the database refuses for a reason about its data (a field that is
-- not a time, a value too long for an index, ...) is applied again one
-- object at a time; each object refused alone gets a row here and keeps
-- its mirror row, which counts as listed by the run (the sweep must not
-- tombstone an object WorkOS still lists).  The error is the server's
-- message without its DETAIL, which can quote the row; the object itself
-- is not kept (fetch it from WorkOS by its id).

CREATE TABLE IF NOT EXISTS @SCHEMA@.reconcile_refused (
    run_id     bigint      NOT NULL REFERENCES @SCHEMA@.reconcile_runs (id) ON DELETE CASCADE,
    kind       text        NOT NULL,
    scope      text        NOT NULL,
    object_id  text        NOT NULL,
    sqlstate   text,
    error      text        NOT NULL,
    refused_at timestamptz NOT NULL DEFAULT now()
);
-- One row per object and run.  The ids are hashed for the key: an id too
-- long for an index is one reason an object is refused.
CREATE UNIQUE INDEX IF NOT EXISTS reconcile_refused_object_idx
    ON @SCHEMA@.reconcile_refused (run_id, kind, md5(scope), md5(object_id));
