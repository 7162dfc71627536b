-- pg_trickle catalog, the end of a fresh install: what needs the functions pgrx generated
-- (event triggers, rights on those functions). Runs after everything else in the install script.
-- An upgrade runs sql/pg_trickle--<old>--<new>.sql instead; tests/tests/upgrade.rs checks that
-- both paths end with the same catalog.

-- Keeps the catalog true when a stream table's storage or a source is dropped with plain DDL.
CREATE EVENT TRIGGER pgtrickle_sql_drop ON sql_drop EXECUTE FUNCTION pgtrickle._on_sql_drop();
-- CREATE OR REPLACE VIEW / ALTER of a view a plan inlined re-plans its stream tables; ALTER TABLE
-- of a source fits capture and follows renames (pgtrickle._on_ddl_command_end).
CREATE EVENT TRIGGER pgtrickle_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE VIEW', 'ALTER VIEW', 'ALTER TABLE')
    EXECUTE FUNCTION pgtrickle._on_ddl_command_end();

-- Ordinary roles use the API through membership in pgtrickle_user (USAGE on schema pgtrickle,
-- SELECT on the catalog); they write neither the catalog nor change buffers.
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

-- Internal functions: called by pg_trickle's own triggers and event triggers only.
REVOKE EXECUTE ON FUNCTION pgtrickle._immediate_refresh() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._on_sql_drop() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._on_ddl_command_end() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._forget_dropped_relations(oid[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._replan_for_views(oid[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._on_source_ddl(oid[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgtrickle._record_query_trees() FROM PUBLIC;
