-- pg_trickle 0.6.0 -> 0.7.0: who runs what (docs/SQL_REFERENCE.md, "Security") and DDL on
-- sources (docs/SQL_REFERENCE.md, "DDL on sources"). This file is
-- both the upgrade script (ALTER EXTENSION pg_trickle UPDATE) and part of the 0.7.0 install
-- script, where it runs after pgrx created the functions it alters.
--
-- - Writers of a source need no rights on pg_trickle's schemas: capture functions and the
--   IMMEDIATE trigger function run as the extension's owner (SECURITY DEFINER, pinned
--   search_path), and only pg_trickle's own triggers may call them.
-- - Ordinary roles use the API through membership in pgtrickle_user (USAGE on schema
--   pgtrickle, SELECT on the catalog); they write neither the catalog nor change buffers.
-- - The event trigger functions run as the extension's owner, so any role's DDL keeps the
--   catalog true.

-- The analyzed defining query (nodeToString, as a view's rule keeps it): what the storage
-- depends on in pg_depend, and what the query prints back as after a rename.
ALTER TABLE pgtrickle.pgt_stream_tables ADD COLUMN query_tree text;
-- ... and how PostgreSQL printed it then: when it prints differently after DDL, a name changed.
ALTER TABLE pgtrickle.pgt_stream_tables ADD COLUMN query_printed text;
-- Moves on whenever DDL changes what a source's buffer holds (the WAL consumer's cache key).
ALTER TABLE pgtrickle.pgt_sources ADD COLUMN capture_version integer NOT NULL DEFAULT 0;

-- ALTER TABLE / ALTER VIEW of a relation a stream table reads or captures: capture fits the
-- new columns and renamed names are followed, in the DDL's transaction (pgtrickle._on_source_ddl).
CREATE OR REPLACE FUNCTION pgtrickle._on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
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

DO $pgt$
BEGIN
    -- A role is cluster-wide: another database's install may have made it (or be making it).
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgtrickle_user') THEN
        BEGIN
            CREATE ROLE pgtrickle_user NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$pgt$;

REVOKE ALL ON SCHEMA pgtrickle FROM PUBLIC;
REVOKE ALL ON SCHEMA pgtrickle_changes FROM PUBLIC;
GRANT USAGE ON SCHEMA pgtrickle TO pgtrickle_user;
-- Refreshes run as the stream table's owner and read change buffers (each owner is granted
-- SELECT on the buffers its stream tables read): USAGE only, no table rights.
GRANT USAGE ON SCHEMA pgtrickle_changes TO PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA pgtrickle FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA pgtrickle TO pgtrickle_user;

ALTER FUNCTION pgtrickle._immediate_refresh() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION pgtrickle._on_sql_drop() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION pgtrickle._on_ddl_command_end() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION pgtrickle._immediate_refresh() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._on_sql_drop() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._on_ddl_command_end() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._forget_dropped_relations(oid[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._replan_for_views(oid[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._on_source_ddl(oid[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._record_query_trees() FROM PUBLIC;

-- Capture functions made by 0.6.0 and earlier.
DO $pgt$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'pgtrickle_changes'::regnamespace AND p.proname ~ '^capture_[0-9]+$' LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER', f);
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$pgt$;

-- changes_per_sec decays towards 0 when the source is idle: printed rounded.
CREATE OR REPLACE FUNCTION pgtrickle.cdc_status()
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

-- An IMMEDIATE stream table is refreshed by its writers, not on its schedule: never stale.
CREATE OR REPLACE FUNCTION pgtrickle.health_check()
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

-- repair_stream_table also rebuilds capture that no longer fits its source's columns.
CREATE OR REPLACE FUNCTION pgtrickle.repair_stream_table(name text) RETURNS text
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

-- Stream tables made by earlier versions: their analyzed queries and column dependencies.
SELECT pgtrickle._record_query_trees();
