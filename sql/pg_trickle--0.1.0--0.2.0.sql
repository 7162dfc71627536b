-- pg_trickle 0.1.0 -> 0.2.0: refresh counters, failed refreshes in the history, and the
-- monitoring functions. Upgrade script only (ALTER EXTENSION pg_trickle UPDATE); a
-- fresh install runs sql/catalog.sql.

ALTER TABLE pgtrickle.pgt_stream_tables
    ADD COLUMN refresh_count     bigint NOT NULL DEFAULT 0,            -- successful refreshes
    ADD COLUMN failure_count     bigint NOT NULL DEFAULT 0,            -- failed scheduled refreshes
    ADD COLUMN refresh_ms_total  double precision NOT NULL DEFAULT 0,  -- time in successful refreshes
    ADD COLUMN refresh_ms_max    double precision NOT NULL DEFAULT 0,
    -- The search_path the defining query was planned with; every refresh runs with it, so the
    -- scheduler and IMMEDIATE triggers resolve the query's names as its creator did.
    ADD COLUMN search_path       text;

-- Failed scheduled refreshes are recorded too (action ERROR, the message in reason).
ALTER TABLE pgtrickle.pgt_refresh_history DROP CONSTRAINT pgt_refresh_history_action_check;
ALTER TABLE pgtrickle.pgt_refresh_history
    ADD CONSTRAINT pgt_refresh_history_action_check CHECK (action IN ('FULL', 'DIFFERENTIAL', 'ERROR'));

-- The statement trigger of IMMEDIATE stream tables (pgtrickle_immediate_<pgt_id> on each
-- source, argument: the storage OID): refreshes the stream table in the writer's transaction,
-- after the statement's row changes were captured. It runs with the writer's search_path (the
-- stream table's SQL names what it reads as the query did).
CREATE FUNCTION pgtrickle._immediate_refresh() RETURNS trigger
LANGUAGE plpgsql
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
    FOR d IN SELECT dep.source_relid, dep.source_type, src.buffer_table AS buf, src.has_primary_key AS pk
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
            capture := 'TRIGGER';
            buffer_table := 'pgtrickle_changes.' || quote_ident(d.buf);
            EXECUTE format('SELECT count(*) FROM pgtrickle_changes.%I', d.buf) INTO pending_changes;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Every capture trigger pg_trickle expects, and whether it is installed and enabled.
CREATE FUNCTION pgtrickle.trigger_inventory()
RETURNS TABLE (source_table text, trigger_name text, installed boolean, enabled boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT s.source_relid::regclass::text, e.name, t.oid IS NOT NULL, coalesce(t.tgenabled <> 'D', false)
      FROM pgtrickle.pgt_sources s
     CROSS JOIN (VALUES ('pgtrickle_capture'), ('pgtrickle_capture_truncate')) AS e(name)
      LEFT JOIN pg_trigger t ON t.tgrelid = s.source_relid AND t.tgname = e.name
     ORDER BY 1, 2
$$;

-- Reinstalls missing capture triggers of a stream table's sources, then recomputes it in full
-- (changes made while a trigger was missing were not captured). The name is resolved with the
-- caller's search_path.
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
    FOR s IN SELECT src.source_relid
               FROM pgtrickle.pgt_dependencies dep
               JOIN pgtrickle.pgt_stream_tables st USING (pgt_id)
               JOIN pgtrickle.pgt_sources src ON src.source_relid = dep.source_relid
              WHERE st.pgt_relid = rel LOOP
        IF to_regproc(format('pgtrickle_changes.capture_%s', s.source_relid)) IS NULL
           OR to_regclass(format('pgtrickle_changes.changes_%s', s.source_relid)) IS NULL THEN
            RAISE EXCEPTION 'the change buffer or capture function of % is missing', s.source_relid::regclass
                USING HINT = 'Drop and recreate the stream table.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = s.source_relid AND tgname = 'pgtrickle_capture') THEN
            EXECUTE format('CREATE TRIGGER pgtrickle_capture AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION pgtrickle_changes.capture_%s()',
                           s.source_relid::regclass, s.source_relid);
            repaired := repaired || (s.source_relid::regclass::text || '.pgtrickle_capture');
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = s.source_relid AND tgname = 'pgtrickle_capture_truncate') THEN
            EXECUTE format('CREATE TRIGGER pgtrickle_capture_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION pgtrickle_changes.capture_%s()',
                           s.source_relid::regclass, s.source_relid);
            repaired := repaired || (s.source_relid::regclass::text || '.pgtrickle_capture_truncate');
        END IF;
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER pgtrickle_capture', s.source_relid::regclass);
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

-- Quick triage: one row per check, severity OK, WARNING or CRITICAL.
CREATE FUNCTION pgtrickle.health_check()
RETURNS TABLE (check_name text, severity text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
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
     WHERE status = 'ACTIVE' AND pgtrickle._schedule_interval(schedule) IS NOT NULL
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

    SELECT count(*), string_agg(i.source_table || '.' || i.trigger_name, ', ')
      INTO n, names FROM pgtrickle.trigger_inventory() i WHERE NOT i.installed OR NOT i.enabled;
    check_name := 'capture_triggers';
    severity := CASE WHEN n = 0 THEN 'OK' ELSE 'CRITICAL' END;
    detail := CASE WHEN n = 0 THEN 'every capture trigger is installed and enabled'
                   ELSE 'missing or disabled: ' || names || ' (repair_stream_table() reinstalls them)' END;
    RETURN NEXT;
END
$$;
