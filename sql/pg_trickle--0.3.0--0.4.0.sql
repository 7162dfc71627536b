-- pg_trickle 0.3.0 -> 0.4.0: per-stream-table cdc_mode. Upgrade script only (ALTER EXTENSION pg_trickle UPDATE); a
-- fresh install runs sql/catalog.sql.

-- How this stream table wants its sources captured: 'auto' (WAL where possible), 'wal' (WAL
-- required, checked when set) or 'trigger' (row triggers only). A source is captured from the
-- WAL only while no stream table reading it says 'trigger' (and pg_trickle.cdc_mode is not
-- 'trigger').
ALTER TABLE pgtrickle.pgt_stream_tables
    ADD COLUMN cdc_mode text NOT NULL DEFAULT 'auto' CHECK (cdc_mode IN ('trigger', 'wal', 'auto'));

-- The API functions gain a cdc_mode argument (a new signature: the old function goes).
DROP FUNCTION IF EXISTS pgtrickle.create_stream_table(text, text, text, text, boolean);
CREATE OR REPLACE FUNCTION pgtrickle.create_stream_table(
    "name" text, "query" text, "schedule" text DEFAULT '1m', "refresh_mode" text DEFAULT 'AUTO',
    "initialize" boolean DEFAULT true, "cdc_mode" text DEFAULT 'auto')
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'create_stream_table_wrapper';

DROP FUNCTION IF EXISTS pgtrickle.create_or_replace_stream_table(text, text, text, text, boolean);
CREATE OR REPLACE FUNCTION pgtrickle.create_or_replace_stream_table(
    "name" text, "query" text, "schedule" text DEFAULT '1m', "refresh_mode" text DEFAULT 'AUTO',
    "initialize" boolean DEFAULT true, "cdc_mode" text DEFAULT 'auto')
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'create_or_replace_stream_table_wrapper';

DROP FUNCTION IF EXISTS pgtrickle.alter_stream_table(text, text, text);
CREATE OR REPLACE FUNCTION pgtrickle.alter_stream_table(
    "name" text, "schedule" text DEFAULT NULL, "refresh_mode" text DEFAULT NULL,
    "cdc_mode" text DEFAULT NULL)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'alter_stream_table_wrapper';

-- Status of every stream table, now with its cdc_mode.
DROP FUNCTION pgtrickle.pgt_status();
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
    consecutive_errors integer,
    cdc_mode           text
)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
           st.status, st.effective_mode, st.schedule, st.data_timestamp,
           clock_timestamp() - st.data_timestamp, st.last_refresh_at, st.last_error,
           st.refresh_mode, st.is_populated, st.consecutive_errors, st.cdc_mode
      FROM pgtrickle.pgt_stream_tables st
      JOIN pg_class c ON c.oid = st.pgt_relid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     ORDER BY st.pgt_id
$$;
