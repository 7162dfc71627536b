-- pg_trickle 0.5.0 -> 0.6.0: internal stream tables (subqueries maintained as stream tables of
-- their own) and views inlined into defining queries. Upgrade script only (ALTER EXTENSION pg_trickle UPDATE); a
-- fresh install runs sql/catalog.sql.

-- An internal stream table (pgtrickle_changes.sub_<pgt_id>) belongs to the stream table whose
-- plan reads it: refreshed by that stream table's refreshes (first, in the same transaction and
-- snapshot), never on its own; dropped with it. NULL for every stream table a user created.
ALTER TABLE pgtrickle.pgt_stream_tables
    ADD COLUMN parent_pgt_id bigint REFERENCES pgtrickle.pgt_stream_tables ON DELETE CASCADE;
CREATE INDEX ON pgtrickle.pgt_stream_tables (parent_pgt_id);

-- The views whose definitions the plan inlined: CREATE OR REPLACE VIEW (or ALTER VIEW) of one
-- re-plans the stream table, in the same transaction.
ALTER TABLE pgtrickle.pgt_stream_tables ADD COLUMN inlined_views oid[];

CREATE FUNCTION pgtrickle._on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    changed oid[];
BEGIN
    SELECT array_agg(objid) INTO changed
      FROM pg_event_trigger_ddl_commands()
     WHERE classid = 'pg_class'::regclass;
    IF changed IS NOT NULL AND EXISTS (
        SELECT 1 FROM pgtrickle.pgt_stream_tables WHERE inlined_views && changed) THEN
        PERFORM pgtrickle._replan_for_views(changed);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION pgtrickle._replan_for_views("changed" oid[])
RETURNS void STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'replan_for_views_wrapper';

CREATE EVENT TRIGGER pgtrickle_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE VIEW', 'ALTER VIEW', 'ALTER TABLE')
    EXECUTE FUNCTION pgtrickle._on_ddl_command_end();
