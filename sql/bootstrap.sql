-- pg_trickle catalog, in schema pgtrickle (created here so that it belongs to the extension).
-- Relations are identified by OID; their names are read from pg_class. The rendered refresh SQL
-- names the storage table: a refresh re-renders it when the stream table was renamed.

CREATE SCHEMA pgtrickle;
COMMENT ON SCHEMA pgtrickle IS 'pg_trickle SQL API and catalog';
CREATE SCHEMA pgtrickle_changes;
COMMENT ON SCHEMA pgtrickle_changes IS 'pg_trickle change buffers and capture functions';

-- One row per stream table.
CREATE TABLE pgtrickle.pgt_stream_tables (
    pgt_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pgt_relid          oid NOT NULL UNIQUE,          -- the storage table
    defining_query     text NOT NULL,
    schedule           text,                          -- NULL: CALCULATED
    refresh_mode       text NOT NULL CHECK (refresh_mode IN ('AUTO', 'FULL', 'DIFFERENTIAL', 'IMMEDIATE')),
    effective_mode     text NOT NULL CHECK (effective_mode IN ('FULL', 'DIFFERENTIAL', 'IMMEDIATE')),
    status             text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'ERROR', 'SUSPENDED')),
    is_populated       boolean NOT NULL DEFAULT false,
    column_names       text[] NOT NULL,               -- the defining query's output columns ...
    column_types       text[] NOT NULL,               -- ... their types, format_type() with typmod
    column_collations  text[] NOT NULL,               -- ... and collations ('' = the type's default)
    plan_kind          text NOT NULL CHECK (plan_kind IN ('FULL', 'ROWS', 'BAG', 'GROUPS')),
    plan_reason        text,                          -- why AUTO refreshes FULL
    hidden_columns     text[] NOT NULL DEFAULT '{}',  -- maintained state columns of storage
    full_merge_sql     text NOT NULL,                 -- recompute and apply (one statement)
    delta_merge_sql    text,                          -- apply the window's delta ($1, $2, $3...)
    plan_sources       oid[],                         -- sources of the delta, in parameter order ($3...)
    probe_sql          text,                          -- "how many changes in the window?"
    explain_text       text NOT NULL,                 -- the operator tree
    planned_for        text NOT NULL DEFAULT '',      -- the storage name the SQL above uses
    frontier           pg_snapshot,                   -- snapshot of the last refresh
    frontier_xid       xid8,                          -- the transaction that ran it
    data_timestamp     timestamptz,                   -- the data is current as of this time
    last_refresh_at    timestamptz,
    last_error         text,
    consecutive_errors integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The relations each defining query reads (the DAG's edges).
CREATE TABLE pgtrickle.pgt_dependencies (
    pgt_id       bigint NOT NULL REFERENCES pgtrickle.pgt_stream_tables ON DELETE CASCADE,
    source_relid oid NOT NULL,
    source_type  text NOT NULL CHECK (source_type IN ('TABLE', 'STREAM_TABLE')),
    -- The last change of frontier_xid's own transaction this stream table consumed from the
    -- source's buffer (a snapshot counts its own transaction as visible, changes it makes later
    -- are not consumed yet).
    own_change_id bigint,
    PRIMARY KEY (pgt_id, source_relid)
);
CREATE INDEX ON pgtrickle.pgt_dependencies (source_relid);

-- Base tables with change capture installed: one buffer and one capture function each, shared by
-- every stream table that reads the source.
CREATE TABLE pgtrickle.pgt_sources (
    source_relid    oid PRIMARY KEY,
    buffer_table    name NOT NULL,                    -- in schema pgtrickle_changes
    capture_mode    text NOT NULL DEFAULT 'TRIGGER' CHECK (capture_mode IN ('TRIGGER')),
    has_primary_key boolean NOT NULL,
    column_attnums  smallint[] NOT NULL,              -- captured columns, buffer columns old_<n>/new_<n>
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per completed refresh.
CREATE TABLE pgtrickle.pgt_refresh_history (
    refresh_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pgt_id        bigint NOT NULL REFERENCES pgtrickle.pgt_stream_tables ON DELETE CASCADE,
    action        text NOT NULL CHECK (action IN ('FULL', 'DIFFERENTIAL')),
    initiated_by  text NOT NULL CHECK (initiated_by IN ('CREATE', 'MANUAL', 'SCHEDULER', 'ALTER')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    changes_read  bigint,                         -- buffer rows in the window (DIFFERENTIAL)
    rows_inserted bigint NOT NULL,
    rows_updated  bigint NOT NULL,
    rows_deleted  bigint NOT NULL,
    reason        text                            -- why a DIFFERENTIAL stream table refreshed FULL
);
CREATE INDEX ON pgtrickle.pgt_refresh_history (pgt_id, refresh_id);

SELECT pg_catalog.pg_extension_config_dump('pgtrickle.pgt_stream_tables', '');
SELECT pg_catalog.pg_extension_config_dump('pgtrickle.pgt_dependencies', '');
SELECT pg_catalog.pg_extension_config_dump('pgtrickle.pgt_sources', '');

-- Status of every stream table.
CREATE FUNCTION pgtrickle.pgt_status()
RETURNS TABLE (
    name               text,
    status             text,
    refresh_mode       text,
    schedule           text,
    data_timestamp     timestamptz,
    staleness          interval,
    last_refresh_at    timestamptz,
    last_error         text,
    requested_mode     text,
    is_populated       boolean,
    consecutive_errors integer
)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
           st.status, st.effective_mode, st.schedule, st.data_timestamp,
           clock_timestamp() - st.data_timestamp, st.last_refresh_at, st.last_error,
           st.refresh_mode, st.is_populated, st.consecutive_errors
      FROM pgtrickle.pgt_stream_tables st
      JOIN pg_class c ON c.oid = st.pgt_relid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     ORDER BY st.pgt_id
$$;

-- Keeps the catalog true when a stream table's storage or a source is dropped with plain DDL
-- (DROP TABLE, DROP ... CASCADE, DROP SCHEMA ... CASCADE).
CREATE FUNCTION pgtrickle._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    dropped oid[];
BEGIN
    SELECT array_agg(objid) INTO dropped
      FROM pg_event_trigger_dropped_objects()
     WHERE classid = 'pg_class'::regclass AND objsubid = 0;
    IF dropped IS NOT NULL THEN
        PERFORM pgtrickle._forget_dropped_relations(dropped);
    END IF;
END
$$;
