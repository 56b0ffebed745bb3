-- 007: poison events -- events the database refused, kept instead of dropped.
--
-- When the apply statement is refused for a reason about the data (a value
-- too long for an index, one a column's type or an operator's CHECK or
-- trigger refuses), the daemon splits the batch until it finds the events
-- that cause it.  Each such event is stored in the event log with its
-- mirror effect skipped (in_log true: its payload is in events, same id),
-- or, when even the log refuses it, here alone: `data` and `context` as
-- jsonb when the server takes them, else the payload as text in `raw`.
-- Secrets are scrubbed before anything is written, as for the log.  One row
-- per event id; a repeat of the same event updates it.

CREATE TABLE IF NOT EXISTS @SCHEMA@.poison_events (
    id              text        PRIMARY KEY,
    event           text        NOT NULL,
    created_at      text,
    source          text        NOT NULL,
    error           text        NOT NULL,
    sqlstate        text,
    in_log          boolean     NOT NULL,
    data            jsonb,
    context         jsonb,
    raw             text,
    failures        integer     NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS poison_events_first_failed_at_idx
    ON @SCHEMA@.poison_events (first_failed_at);

-- The payload as jsonb, or NULL when the server refuses it as jsonb.
CREATE OR REPLACE FUNCTION @SCHEMA@.poison_jsonb(t text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN t::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
