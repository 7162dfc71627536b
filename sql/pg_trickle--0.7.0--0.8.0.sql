-- pg_trickle 0.7.0 -> 0.8.0: plans as data. Upgrade script only (ALTER EXTENSION pg_trickle
-- UPDATE); a fresh 0.8.0 install runs sql/catalog.sql and sql/catalog_finalize.sql.
-- tests/tests/upgrade.rs checks that both paths end with the same catalog.

-- The pg_trickle version that planned each stream table. '' for every stream table made before:
-- its next refresh plans it again from its defining query with this version (and recomputes
-- it), so it runs SQL this version rendered, and one that 0.7.0 or earlier refreshed FULL
-- becomes DIFFERENTIAL when this version can maintain it.
ALTER TABLE pgtrickle.pgt_stream_tables ADD COLUMN planned_by text NOT NULL DEFAULT '';

-- Stream tables made by 0.6.0 and earlier get their analyzed queries and column dependencies
-- from pgtrickle._record_query_trees(), called by the newest upgrade script (0.8.0 -> 0.9.0):
-- library functions read the catalog as the installed library expects it.
