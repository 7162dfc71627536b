-- pg_trickle 0.8.0 -> 0.9.0: refreshes that find nothing to decode in the WAL skip decoding.
-- Upgrade script only (ALTER EXTENSION pg_trickle UPDATE); a fresh 0.9.0 install runs
-- sql/catalog.sql and sql/catalog_finalize.sql. tests/tests/upgrade.rs checks that both paths
-- end with the same catalog.

-- The next transaction id read after consumed_lsn was fixed (see sql/catalog.sql). NULL until
-- the WAL consumer's next decoding pass records one: until then every pass decodes, as 0.8.0 did.
ALTER TABLE pgtrickle.pgt_wal_state ADD COLUMN consumed_next_xid xid8;
-- The transaction that recorded consumed_lsn, when it had written no WAL before it.
ALTER TABLE pgtrickle.pgt_wal_state ADD COLUMN consumed_own_xid xid8;
