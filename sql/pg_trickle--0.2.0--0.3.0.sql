-- pg_trickle 0.2.0 -> 0.3.0: WAL change capture. Upgrade script only (ALTER EXTENSION pg_trickle UPDATE); a
-- fresh install runs sql/catalog.sql.

-- How each source's changes reach its buffer: TRIGGER (row triggers in the writer's
-- transaction) or WAL (the WAL consumer, from the database's logical replication slot).
ALTER TABLE pgtrickle.pgt_sources DROP CONSTRAINT pgt_sources_capture_mode_check;
ALTER TABLE pgtrickle.pgt_sources
    ADD CONSTRAINT pgt_sources_capture_mode_check CHECK (capture_mode IN ('TRIGGER', 'WAL')),
    -- WAL mode: the cut-over. Transactions that committed after this LSN reach the buffer from the
    -- slot; those before it were captured by the row trigger (dropped in the transaction that
    -- recorded it).
    ADD COLUMN wal_from_lsn pg_lsn,
    ADD COLUMN capture_since timestamptz NOT NULL DEFAULT now(),
    -- The REPLICA IDENTITY the source had before pg_trickle set FULL ('d', 'n' or 'i'; the index
    -- for 'i'); restored when capture is removed. NULL: pg_trickle did not change it.
    ADD COLUMN replica_identity_before "char",
    ADD COLUMN replica_identity_index oid,
    -- Why the source is where it is, when it is not what cdc_mode asks for (a fallback, or why it
    -- cannot move to WAL capture).
    ADD COLUMN capture_note text;

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
    batches          bigint NOT NULL DEFAULT 0
);

-- Capture of every source: how, since when, and for WAL capture the consumer's lag.
CREATE FUNCTION pgtrickle.cdc_status()
RETURNS TABLE (source_table text, capture_mode text, capture_since timestamptz, slot_name name,
               lag_bytes numeric, lag_seconds double precision, changes_per_sec double precision,
               queue_peak integer, note text)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT s.source_relid::regclass::text, s.capture_mode, s.capture_since,
           w.slot_name,
           CASE WHEN s.capture_mode = 'WAL' THEN greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), w.consumed_lsn), 0) END,
           CASE WHEN s.capture_mode = 'WAL' THEN
               CASE WHEN pg_wal_lsn_diff(pg_current_wal_lsn(), w.consumed_lsn) <= 0 THEN 0
                    ELSE extract(epoch FROM clock_timestamp() - coalesce(w.consumed_at, s.capture_since))::float8 END END,
           CASE WHEN s.capture_mode = 'WAL' THEN w.changes_per_sec END,
           CASE WHEN s.capture_mode = 'WAL' THEN w.queue_peak END,
           s.capture_note
      FROM pgtrickle.pgt_sources s
      LEFT JOIN pgtrickle.pgt_wal_state w ON true
     ORDER BY 1
$$;

-- Every capture trigger pg_trickle expects (the row trigger only for sources captured by
-- triggers), and whether it is installed and enabled.
CREATE OR REPLACE FUNCTION pgtrickle.trigger_inventory()
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

CREATE OR REPLACE FUNCTION pgtrickle.list_sources(name text)
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

CREATE OR REPLACE FUNCTION pgtrickle.health_check()
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

-- The change window now states that a buffer row's transaction is visible to the refresh (a
-- row written by the WAL consumer can be visible before its transaction is). Every stream table
-- re-renders its SQL at its next refresh.
UPDATE pgtrickle.pgt_stream_tables SET planned_for = '';
