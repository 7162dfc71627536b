-- pg_trickle 0.4.0 -> 0.5.0: TopK stream tables (ORDER BY ... LIMIT). Upgrade script only (ALTER EXTENSION pg_trickle UPDATE); a
-- fresh install runs sql/catalog.sql.

-- For a TopK stream table maintained differentially: the statement that re-derives its rows from
-- its internal table (pgtrickle_changes.topk_<pgt_id>, which full_merge_sql and delta_merge_sql
-- maintain). NULL for every other stream table. A stream table created with LIMIT before 0.5.0
-- keeps refreshing FULL until it is redefined (alter_stream_table with a new refresh_mode, or
-- create_or_replace_stream_table).
ALTER TABLE pgtrickle.pgt_stream_tables ADD COLUMN topk_sql text;
