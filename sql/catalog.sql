-- pg_trickle catalog: the part of a fresh install that pgrx does not generate, in one script
-- (schemas, catalog tables, SQL and PL/pgSQL functions). What needs pgrx's functions to exist
-- first (event triggers, privileges on them) is in sql/catalog_finalize.sql. An upgrade from
-- an earlier version runs sql/pg_trickle--<old>--<new>.sql instead; tests/tests/upgrade.rs
-- checks that both paths end with the same catalog.
--
-- Relations are identified by OID; their names are read from pg_class.

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
    -- The statements below are rendered from the plan of defining_query and kept as a cache:
    -- rendered again when planned_for (the storage name they use) or planned_by (the version
    -- that made them) is not current.
    full_merge_sql     text NOT NULL,                 -- recompute and apply (one statement)
    delta_merge_sql    text,                          -- apply the window's delta ($1, $2, $3...)
    plan_sources       oid[],                         -- sources of the delta, in parameter order ($3...)
    probe_sql          text,                          -- "how many changes in the window?"
    explain_text       text NOT NULL,                 -- the operator tree and the delta plan's tree
    planned_for        text NOT NULL DEFAULT '',      -- the storage name the SQL above uses
    frontier           pg_snapshot,                   -- snapshot of the last refresh
    frontier_xid       xid8,                          -- the transaction that ran it
    data_timestamp     timestamptz,                   -- the data is current as of this time
    last_refresh_at    timestamptz,
    last_error         text,
    consecutive_errors integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    refresh_count      bigint NOT NULL DEFAULT 0,            -- successful refreshes
    failure_count      bigint NOT NULL DEFAULT 0,            -- failed scheduled refreshes
    refresh_ms_total   double precision NOT NULL DEFAULT 0,  -- time in successful refreshes
    refresh_ms_max     double precision NOT NULL DEFAULT 0,
    -- The search_path the defining query was planned with; every refresh runs with it, so the
    -- scheduler and IMMEDIATE triggers resolve the query's names as its creator did.
    search_path        text,
    -- How this stream table wants its sources captured: 'auto' (WAL where possible), 'wal' (WAL
    -- required, checked when set) or 'trigger' (row triggers only). A source is captured from
    -- the WAL only while no stream table reading it says 'trigger' (and pg_trickle.cdc_mode is
    -- not 'trigger').
    cdc_mode           text NOT NULL DEFAULT 'auto' CHECK (cdc_mode IN ('trigger', 'wal', 'auto')),
    -- For a TopK stream table maintained differentially: the statement that re-derives its rows
    -- from its internal table (pgtrickle_changes.topk_<pgt_id>, which full_merge_sql and
    -- delta_merge_sql maintain). NULL for every other stream table.
    topk_sql           text,
    -- An internal stream table (pgtrickle_changes.sub_<pgt_id>) belongs to the stream table
    -- whose plan reads it: refreshed by that stream table's refreshes (first, in the same
    -- transaction and snapshot), never on its own; dropped with it. NULL for every stream table
    -- a user created.
    parent_pgt_id      bigint REFERENCES pgtrickle.pgt_stream_tables ON DELETE CASCADE,
    -- The views whose definitions the plan inlined: CREATE OR REPLACE VIEW (or ALTER VIEW) of
    -- one re-plans the stream table, in the same transaction.
    inlined_views      oid[],
    -- The analyzed defining query (nodeToString, as a view's rule keeps it): what the storage
    -- depends on in pg_depend, and what the query prints back as after a rename ...
    query_tree         text,
    -- ... and how PostgreSQL printed it then: when it prints differently after DDL, a name
    -- changed.
    query_printed      text,
    -- The pg_trickle version that planned this stream table. A refresh by another version plans
    -- it again from defining_query (and recomputes it) first: after an upgrade, every stream
    -- table runs SQL this version rendered, and one an earlier version refreshed FULL becomes
    -- DIFFERENTIAL when this version can maintain it.
    planned_by         text NOT NULL DEFAULT '',
    -- Each plan source's change window (its buffer's rows in the window as weighted row images,
    -- UPDATEs that left every column the query can see as it was left out), as the delta reads
    -- it, in parameter order: a large window is copied to a temporary table and the delta reads
    -- that instead. NULL for FULL plans.
    window_sql         text[]
);
CREATE INDEX ON pgtrickle.pgt_stream_tables (parent_pgt_id);

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
    -- How the source's changes reach its buffer: TRIGGER (row triggers in the writer's
    -- transaction) or WAL (the WAL consumer, from the database's logical replication slot).
    capture_mode    text NOT NULL DEFAULT 'TRIGGER' CHECK (capture_mode IN ('TRIGGER', 'WAL')),
    has_primary_key boolean NOT NULL,
    column_attnums  smallint[] NOT NULL,              -- captured columns, buffer columns old_<n>/new_<n>
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- WAL mode: the cut-over. Transactions that committed after this LSN reach the buffer from
    -- the slot; those before it were captured by the row trigger (dropped in the transaction
    -- that recorded it).
    wal_from_lsn    pg_lsn,
    capture_since   timestamptz NOT NULL DEFAULT now(),
    -- The REPLICA IDENTITY the source had before pg_trickle set FULL ('d', 'n' or 'i'; the index
    -- for 'i'); restored when capture is removed. NULL: pg_trickle did not change it.
    replica_identity_before "char",
    replica_identity_index oid,
    -- Why the source is where it is, when it is not what cdc_mode asks for (a fallback, or why
    -- it cannot move to WAL capture).
    capture_note    text,
    -- Moves on whenever DDL changes what the buffer holds (the WAL consumer's cache key).
    capture_version integer NOT NULL DEFAULT 0
);

-- One row per completed refresh, and per failed scheduled refresh (action ERROR, the message in
-- reason).
CREATE TABLE pgtrickle.pgt_refresh_history (
    refresh_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pgt_id        bigint NOT NULL REFERENCES pgtrickle.pgt_stream_tables ON DELETE CASCADE,
    action        text NOT NULL CONSTRAINT pgt_refresh_history_action_check CHECK (action IN ('FULL', 'DIFFERENTIAL', 'ERROR')),
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

-- The WAL consumer's state in this database (at most one row: one slot per database).
CREATE TABLE pgtrickle.pgt_wal_state (
    slot_name        name PRIMARY KEY,
    -- Every transaction that committed at or before this LSN is in the change buffers. Written in
    -- the same transaction as the buffer rows; the slot is advanced to it only once committed.
    consumed_lsn     pg_lsn NOT NULL,
    consumed_at      timestamptz,
    -- Commit time of the newest transaction the consumer wrote changes of.
    last_commit_time timestamptz,
    changes_total    bigint NOT NULL DEFAULT 0,
    changes_per_sec  double precision NOT NULL DEFAULT 0,
    -- The most changes one source's queue held in the last batch.
    queue_peak       integer NOT NULL DEFAULT 0,
    batches          bigint NOT NULL DEFAULT 0,
    -- The next transaction id read after consumed_lsn was fixed: a transaction with this id or a
    -- later one wrote all its WAL after consumed_lsn. With it, a stretch of WAL whose commits are
    -- all of such transactions and touch no source needs no decoding (NULL: decode).
    consumed_next_xid xid8,
    -- The transaction that recorded consumed_lsn, when it had written no WAL before it: its own
    -- commit, after consumed_lsn, is not that of an older transaction.
    consumed_own_xid  xid8
);

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

-- Keeps the catalog true when a stream table's storage or a source is dropped with plain DDL
-- (DROP TABLE, DROP ... CASCADE, DROP SCHEMA ... CASCADE).
CREATE FUNCTION pgtrickle._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
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

-- The statement trigger of IMMEDIATE stream tables (pgtrickle_immediate_<pgt_id> on each
-- source, argument: the storage OID): refreshes the stream table in the writer's transaction,
-- after the statement's row changes were captured. It runs as the extension's owner with a
-- pinned search_path (the refresh itself runs as the stream table's owner, with the search_path
-- the stream table was planned with), so a writer needs no rights on pg_trickle's schemas.
CREATE FUNCTION pgtrickle._immediate_refresh() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.set_config('pg_trickle.immediate_refresh', 'on', true);
    PERFORM pgtrickle.refresh_stream_table(pgtrickle._qualified_name(TG_ARGV[0]::oid));
    PERFORM pg_catalog.set_config('pg_trickle.immediate_refresh', 'off', true);
    RETURN NULL;
END
$$;

-- A relation's schema-qualified, quoted name (whatever the caller's search_path).
CREATE FUNCTION pgtrickle._qualified_name(rel oid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel
$$;

-- The schedule as an interval ('1s', '1h30m'); NULL for cron and CALCULATED.
-- (A duration is one word like '90s' or '1h30m'; cron expressions have several fields or start
-- with '@'.)
CREATE FUNCTION pgtrickle._schedule_interval(schedule text) RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT CASE WHEN schedule !~ '\s' AND schedule !~ '^@' THEN schedule::interval END
$$;

-- Per stream table counters.
CREATE VIEW pgtrickle.pg_stat_stream_tables AS
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS pgt_name,
       st.status,
       st.effective_mode AS refresh_mode,
       st.schedule,
       st.refresh_count + st.failure_count AS total_refreshes,
       st.refresh_count AS successful_refreshes,
       st.failure_count AS failed_refreshes,
       round((st.refresh_ms_total / nullif(st.refresh_count, 0))::numeric, 3) AS avg_duration_ms,
       round(st.refresh_ms_max::numeric, 3) AS max_duration_ms,
       st.consecutive_errors,
       st.last_refresh_at,
       st.data_timestamp,
       clock_timestamp() - st.data_timestamp AS staleness,
       st.last_error
  FROM pgtrickle.pgt_stream_tables st
  JOIN pg_catalog.pg_class c ON c.oid = st.pgt_relid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace;

-- The pending changes of every captured source.
CREATE FUNCTION pgtrickle.change_buffer_sizes()
RETURNS TABLE (source_table text, buffer_table text, pending_changes bigint, size_bytes bigint, consumers integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT src.source_relid, src.buffer_table AS buf FROM pgtrickle.pgt_sources src ORDER BY src.source_relid LOOP
        source_table := s.source_relid::regclass::text;
        buffer_table := 'pgtrickle_changes.' || quote_ident(s.buf);
        EXECUTE format('SELECT count(*) FROM pgtrickle_changes.%I', s.buf) INTO pending_changes;
        size_bytes := pg_total_relation_size(format('pgtrickle_changes.%I', s.buf)::regclass);
        SELECT count(*) INTO consumers FROM pgtrickle.pgt_dependencies d WHERE d.source_relid = s.source_relid;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The sources of one stream table and how their changes are captured. (No fixed search_path:
-- the name is resolved as the caller would.)
CREATE FUNCTION pgtrickle.list_sources(name text)
RETURNS TABLE (source text, source_type text, capture text, buffer_table text, has_primary_key boolean, pending_changes bigint)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel oid := to_regclass(name);
    d record;
BEGIN
    IF rel IS NULL OR NOT EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = rel) THEN
        RAISE EXCEPTION 'stream table "%" does not exist', name USING ERRCODE = '42P01';
    END IF;
    FOR d IN SELECT dep.source_relid, dep.source_type, src.buffer_table AS buf, src.has_primary_key AS pk, src.capture_mode AS mode
               FROM pgtrickle.pgt_dependencies dep
               JOIN pgtrickle.pgt_stream_tables st USING (pgt_id)
               LEFT JOIN pgtrickle.pgt_sources src ON src.source_relid = dep.source_relid
              WHERE st.pgt_relid = rel ORDER BY dep.source_relid LOOP
        source := pgtrickle._qualified_name(d.source_relid);
        source_type := d.source_type;
        has_primary_key := d.pk;
        IF d.buf IS NULL THEN
            capture := 'NONE';
            buffer_table := NULL;
            pending_changes := NULL;
        ELSE
            capture := d.mode;
            buffer_table := 'pgtrickle_changes.' || quote_ident(d.buf);
            EXECUTE format('SELECT count(*) FROM pgtrickle_changes.%I', d.buf) INTO pending_changes;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Every capture trigger pg_trickle expects (the row trigger only for sources captured by
-- triggers), and whether it is installed and enabled.
CREATE FUNCTION pgtrickle.trigger_inventory()
RETURNS TABLE (source_table text, trigger_name text, installed boolean, enabled boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT s.source_relid::regclass::text, e.name, t.oid IS NOT NULL, coalesce(t.tgenabled <> 'D', false)
      FROM pgtrickle.pgt_sources s
     CROSS JOIN (VALUES ('pgtrickle_capture'), ('pgtrickle_capture_truncate')) AS e(name)
      LEFT JOIN pg_trigger t ON t.tgrelid = s.source_relid AND t.tgname = e.name
     WHERE s.capture_mode = 'TRIGGER' OR e.name = 'pgtrickle_capture_truncate'
     ORDER BY 1, 2
$$;

-- Reinstalls missing capture triggers of a stream table's sources, rebuilds capture that no
-- longer fits its source's columns, then recomputes the stream table in full (changes made
-- meanwhile were not captured). The name is resolved with the caller's search_path.
CREATE FUNCTION pgtrickle.repair_stream_table(name text) RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    rel oid := to_regclass(name);
    s record;
    repaired text[] := '{}';
BEGIN
    IF rel IS NULL OR NOT EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = rel) THEN
        RAISE EXCEPTION 'stream table "%" does not exist', name USING ERRCODE = '42P01';
    END IF;
    FOR s IN SELECT src.source_relid, src.capture_mode
               FROM pgtrickle.pgt_dependencies dep
               JOIN pgtrickle.pgt_stream_tables st USING (pgt_id)
               JOIN pgtrickle.pgt_sources src ON src.source_relid = dep.source_relid
              WHERE st.pgt_relid = rel LOOP
        -- DDL made while event triggers did not fire (session_replication_role = replica):
        -- capture made to fit the source's columns again.
        PERFORM pgtrickle._on_source_ddl(ARRAY[s.source_relid]);
        IF to_regproc(format('pgtrickle_changes.capture_%s', s.source_relid)) IS NULL
           OR to_regclass(format('pgtrickle_changes.changes_%s', s.source_relid)) IS NULL THEN
            RAISE EXCEPTION 'the change buffer or capture function of % is missing', s.source_relid::regclass
                USING HINT = 'Drop and recreate the stream table.';
        END IF;
        -- A source captured from the WAL has no row trigger (only the TRUNCATE one).
        IF s.capture_mode = 'TRIGGER' AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = s.source_relid AND tgname = 'pgtrickle_capture') THEN
            EXECUTE format('CREATE TRIGGER pgtrickle_capture AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION pgtrickle_changes.capture_%s()',
                           s.source_relid::regclass, s.source_relid);
            repaired := repaired || (s.source_relid::regclass::text || '.pgtrickle_capture');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = s.source_relid AND tgname = 'pgtrickle_capture_truncate') THEN
            EXECUTE format('CREATE TRIGGER pgtrickle_capture_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION pgtrickle_changes.capture_%s()',
                           s.source_relid::regclass, s.source_relid);
            repaired := repaired || (s.source_relid::regclass::text || '.pgtrickle_capture_truncate');
        END IF;
        IF s.capture_mode = 'TRIGGER' THEN
            EXECUTE format('ALTER TABLE %s ENABLE TRIGGER pgtrickle_capture', s.source_relid::regclass);
        END IF;
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER pgtrickle_capture_truncate', s.source_relid::regclass);
    END LOOP;
    -- Without a frontier the next refresh recomputes everything. Every stream table reading a
    -- source whose trigger was missing missed the same changes.
    UPDATE pgtrickle.pgt_stream_tables SET frontier = NULL, frontier_xid = NULL,
           status = 'ACTIVE', consecutive_errors = 0
     WHERE pgt_relid = rel
        OR (cardinality(repaired) > 0 AND pgt_id IN (
              SELECT dep.pgt_id FROM pgtrickle.pgt_dependencies dep
               WHERE dep.source_relid IN (SELECT d2.source_relid FROM pgtrickle.pgt_dependencies d2
                                            JOIN pgtrickle.pgt_stream_tables s2 USING (pgt_id)
                                           WHERE s2.pgt_relid = rel)));
    PERFORM pgtrickle.refresh_stream_table(name);
    RETURN CASE WHEN cardinality(repaired) = 0 THEN 'no trigger was missing; recomputed'
                ELSE 'reinstalled ' || array_to_string(repaired, ', ') || '; recomputed' END;
END
$$;

-- Recent refreshes (and failures) across all stream tables, newest first.
CREATE FUNCTION pgtrickle.refresh_timeline(max_rows integer DEFAULT 20)
RETURNS TABLE (started_at timestamptz, stream_table text, action text, initiated_by text,
               duration_ms numeric, changes_read bigint, rows_inserted bigint, rows_updated bigint,
               rows_deleted bigint, reason text)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT h.started_at, st.pgt_relid::regclass::text, h.action, h.initiated_by,
           round((extract(epoch FROM h.finished_at - h.started_at) * 1000)::numeric, 3),
           h.changes_read, h.rows_inserted, h.rows_updated, h.rows_deleted, h.reason
      FROM pgtrickle.pgt_refresh_history h
      JOIN pgtrickle.pgt_stream_tables st USING (pgt_id)
     ORDER BY h.refresh_id DESC
     LIMIT greatest(max_rows, 0)
$$;

-- The dependency graph, one row per stream table and source, upstream first.
CREATE FUNCTION pgtrickle.dependency_tree()
RETURNS TABLE (stream_table text, depth integer, source text, source_type text, refresh_mode text, schedule text)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    WITH RECURSIVE lvl AS (
        SELECT st.pgt_id, st.pgt_relid, 1 AS depth
          FROM pgtrickle.pgt_stream_tables st
         WHERE NOT EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies d
                            WHERE d.pgt_id = st.pgt_id AND d.source_type = 'STREAM_TABLE')
        UNION ALL
        SELECT st.pgt_id, st.pgt_relid, lvl.depth + 1
          FROM lvl
          JOIN pgtrickle.pgt_dependencies d ON d.source_relid = lvl.pgt_relid
          JOIN pgtrickle.pgt_stream_tables st ON st.pgt_id = d.pgt_id
    ), depths AS (
        SELECT pgt_id, max(depth) AS depth FROM lvl GROUP BY pgt_id
    )
    SELECT st.pgt_relid::regclass::text, dp.depth, d.source_relid::regclass::text, d.source_type,
           st.effective_mode, coalesce(st.schedule, 'calculated')
      FROM pgtrickle.pgt_stream_tables st
      JOIN depths dp USING (pgt_id)
      JOIN pgtrickle.pgt_dependencies d USING (pgt_id)
     ORDER BY dp.depth, 1, 3
$$;

-- The dependency graph as Mermaid text.
CREATE FUNCTION pgtrickle.explain_dag() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT 'graph TD' || E'\n' || coalesce(string_agg(line, E'\n' ORDER BY ord, line), '')
      FROM (
        SELECT 0 AS ord, format('  r%s["%s<br/>%s, %s%s"]', st.pgt_relid, replace(st.pgt_relid::regclass::text, '"', '#quot;'),
                                st.effective_mode, coalesce(st.schedule, 'calculated'),
                                CASE WHEN st.status <> 'ACTIVE' THEN ', ' || st.status ELSE '' END) AS line
          FROM pgtrickle.pgt_stream_tables st
        UNION ALL
        SELECT DISTINCT 1, format('  r%s[("%s")]', d.source_relid, replace(d.source_relid::regclass::text, '"', '#quot;'))
          FROM pgtrickle.pgt_dependencies d WHERE d.source_type = 'TABLE'
        UNION ALL
        SELECT 2, format('  r%s --> r%s', d.source_relid, st.pgt_relid)
          FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables st USING (pgt_id)
      ) AS lines
$$;

-- Capture of every source: how, since when, and for WAL capture the consumer's lag and rate
-- (changes_per_sec decays towards 0 while the source is idle; printed rounded).
CREATE FUNCTION pgtrickle.cdc_status()
RETURNS TABLE (source_table text, capture_mode text, capture_since timestamptz, slot_name name,
               lag_bytes numeric, lag_seconds double precision, changes_per_sec double precision,
               queue_peak integer, note text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.source_relid::regclass::text, s.capture_mode, s.capture_since,
           w.slot_name,
           CASE WHEN s.capture_mode = 'WAL' THEN greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), w.consumed_lsn), 0) END,
           CASE WHEN s.capture_mode = 'WAL' THEN
               CASE WHEN pg_wal_lsn_diff(pg_current_wal_lsn(), w.consumed_lsn) <= 0 THEN 0
                    ELSE extract(epoch FROM clock_timestamp() - coalesce(w.consumed_at, s.capture_since))::float8 END END,
           CASE WHEN s.capture_mode = 'WAL' THEN round(w.changes_per_sec::numeric, 2)::float8 END,
           CASE WHEN s.capture_mode = 'WAL' THEN w.queue_peak END,
           s.capture_note
      FROM pgtrickle.pgt_sources s
      LEFT JOIN pgtrickle.pgt_wal_state w ON true
     ORDER BY 1
$$;

-- Quick triage: one row per check, severity OK, WARNING or CRITICAL. (An IMMEDIATE stream table
-- is refreshed by its writers, not on its schedule: never stale.)
CREATE FUNCTION pgtrickle.health_check()
RETURNS TABLE (check_name text, severity text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    names text;
    scheduled bigint;
BEGIN
    SELECT count(*) INTO scheduled FROM pgtrickle.pgt_stream_tables;
    check_name := 'scheduler_running';
    IF coalesce(current_setting('pg_trickle.enabled', true), 'on') = 'off' THEN
        severity := 'WARNING';
        detail := 'pg_trickle.enabled is off: stream tables refresh only when refresh_stream_table() is called';
    ELSIF EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = current_database()) THEN
        severity := 'OK';
        detail := 'a scheduler is running for this database';
    ELSIF scheduled = 0 THEN
        severity := 'OK';
        detail := 'no stream tables to schedule';
    ELSE
        severity := 'CRITICAL';
        detail := 'no scheduler is running for this database: check that shared_preload_libraries includes pg_trickle and that max_worker_processes has free slots';
    END IF;
    RETURN NEXT;

    SELECT count(*), string_agg(pgt_relid::regclass::text || ': ' || coalesce(last_error, ''), '; ')
      INTO n, names FROM pgtrickle.pgt_stream_tables WHERE status = 'ERROR';
    check_name := 'error_tables';
    severity := CASE WHEN n = 0 THEN 'OK' ELSE 'WARNING' END;
    detail := CASE WHEN n = 0 THEN 'no stream table in ERROR' ELSE n || ' in ERROR (retrying): ' || names END;
    RETURN NEXT;

    SELECT count(*), string_agg(pgt_relid::regclass::text || ': ' || coalesce(last_error, ''), '; ')
      INTO n, names FROM pgtrickle.pgt_stream_tables WHERE status = 'SUSPENDED';
    check_name := 'suspended_tables';
    severity := CASE WHEN n = 0 THEN 'OK' ELSE 'CRITICAL' END;
    detail := CASE WHEN n = 0 THEN 'no stream table SUSPENDED'
                   ELSE n || ' SUSPENDED (fix the cause, then refresh_stream_table() resumes): ' || names END;
    RETURN NEXT;

    SELECT count(*), string_agg(pgt_relid::regclass::text || ' (' || (clock_timestamp() - data_timestamp)::text || ' old, schedule ' || schedule || ')', '; ')
      INTO n, names FROM pgtrickle.pgt_stream_tables
     WHERE status = 'ACTIVE' AND effective_mode <> 'IMMEDIATE' AND pgtrickle._schedule_interval(schedule) IS NOT NULL
       AND clock_timestamp() - data_timestamp > greatest(3 * pgtrickle._schedule_interval(schedule), interval '10 seconds');
    check_name := 'stale_tables';
    severity := CASE WHEN n = 0 THEN 'OK' ELSE 'WARNING' END;
    detail := CASE WHEN n = 0 THEN 'every scheduled stream table is within 3x its schedule'
                   ELSE n || ' behind their schedule: ' || names END;
    RETURN NEXT;

    SELECT count(*), string_agg(b.source_table || ' (' || b.pending_changes || ' changes)', '; ')
      INTO n, names FROM pgtrickle.change_buffer_sizes() b WHERE b.pending_changes > 100000;
    check_name := 'buffer_growth';
    severity := CASE WHEN n = 0 THEN 'OK' ELSE 'WARNING' END;
    detail := CASE WHEN n = 0 THEN 'no change buffer holds more than 100000 pending changes'
                   ELSE n || ' change buffers hold more than 100000 pending changes: ' || names END;
    RETURN NEXT;

    SELECT count(*), string_agg(s.source_relid::regclass::text, ', ')
      INTO n, names FROM pgtrickle.pgt_sources s
     WHERE s.column_attnums IS DISTINCT FROM (
               SELECT array_agg(a.attnum ORDER BY a.attnum) FROM pg_attribute a
                WHERE a.attrelid = s.source_relid AND a.attnum > 0 AND NOT a.attisdropped)
        OR pg_catalog.to_regprocedure(format('pgtrickle_changes.capture_%s()', s.source_relid)) IS NULL
        OR pg_catalog.to_regclass(format('pgtrickle_changes.%I', s.buffer_table)) IS NULL;
    check_name := 'capture_columns';
    severity := CASE WHEN n = 0 THEN 'OK' ELSE 'CRITICAL' END;
    detail := CASE WHEN n = 0 THEN 'every source''s capture has the columns the source has'
                   ELSE 'capture does not match the columns of: ' || names || ' (writes or refreshes may fail or be wrong; repair_stream_table() of a stream table reading it rebuilds it)' END;
    RETURN NEXT;

    SELECT count(*), string_agg(i.source_table || '.' || i.trigger_name, ', ')
      INTO n, names FROM pgtrickle.trigger_inventory() i WHERE NOT i.installed OR NOT i.enabled;
    check_name := 'capture_triggers';
    severity := CASE WHEN n = 0 THEN 'OK' ELSE 'CRITICAL' END;
    detail := CASE WHEN n = 0 THEN 'every capture trigger is installed and enabled'
                   ELSE 'missing or disabled: ' || names || ' (repair_stream_table() reinstalls them)' END;
    RETURN NEXT;

    -- WAL capture: sources that fell back to triggers, and a consumer far behind.
    SELECT count(*), string_agg(s.source_relid::regclass::text || ': ' || s.capture_note, '; ')
      INTO n, names FROM pgtrickle.pgt_sources s WHERE s.capture_note LIKE 'fell back%';
    check_name := 'wal_capture';
    IF n > 0 THEN
        severity := 'WARNING';
        detail := n || ' source(s) fell back from WAL to trigger capture: ' || names;
    ELSIF EXISTS (SELECT 1 FROM pgtrickle.cdc_status() c WHERE c.lag_bytes > 256 * 1024 * 1024) THEN
        severity := 'WARNING';
        detail := 'the WAL consumer is more than 256 MB behind (see pgtrickle.cdc_status())';
    ELSE
        severity := 'OK';
        detail := (SELECT count(*) FROM pgtrickle.pgt_sources WHERE capture_mode = 'WAL') || ' source(s) captured from the WAL, '
                  || (SELECT count(*) FROM pgtrickle.pgt_sources WHERE capture_mode = 'TRIGGER') || ' by triggers';
    END IF;
    RETURN NEXT;
END
$$;

-- ALTER TABLE / ALTER VIEW of a relation a stream table reads or captures: capture fits the
-- new columns and renamed names are followed, in the DDL's transaction (pgtrickle._on_source_ddl).
CREATE FUNCTION pgtrickle._on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    changed oid[];
BEGIN
    SELECT array_agg(DISTINCT objid) INTO changed
      FROM pg_event_trigger_ddl_commands()
     WHERE classid = 'pg_class'::regclass;
    IF changed IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables WHERE inlined_views && changed) THEN
        PERFORM pgtrickle._replan_for_views(changed);
    END IF;
    IF EXISTS (SELECT 1 FROM pgtrickle.pgt_sources WHERE source_relid = ANY(changed))
       OR EXISTS (SELECT 1 FROM pg_depend d JOIN pgtrickle.pgt_stream_tables st ON st.pgt_relid = d.objid
                   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                     AND d.refobjid = ANY(changed)) THEN
        PERFORM pgtrickle._on_source_ddl(changed);
    END IF;
END
$$;
