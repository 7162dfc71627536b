-- pg_trickle 0.9.0 -> 0.10.0: an UPDATE that leaves every column a stream table's query can see
-- as it was is not part of that stream table's change window.
-- Upgrade script only (ALTER EXTENSION pg_trickle UPDATE); a fresh 0.10.0 install runs
-- sql/catalog.sql and sql/catalog_finalize.sql. tests/tests/upgrade.rs checks that both paths
-- end with the same catalog.

-- Each plan source's change window as the delta statement reads it (see sql/catalog.sql).
-- NULL for stream tables planned by 0.9.0: every one is planned again by its next refresh.
ALTER TABLE pgtrickle.pgt_stream_tables ADD COLUMN window_sql text[];

-- Library functions that read the catalog run last, in the newest upgrade script: the library
-- installed is this version's and expects the complete catalog (a chained upgrade runs the
-- earlier steps' scripts against an earlier catalog). Move this call to the next version's
-- upgrade script when there is one.
--
-- Stream tables made by 0.6.0 and earlier: their analyzed queries and column dependencies (those
-- made by 0.7.0 and 0.8.0 get the same again).
SELECT pgtrickle._record_query_trees();
