//! Change capture's pure half. The trigger path writes change buffers directly (its SQL is
//! [`crate::render::capture`]); the WAL path runs through three stages: [`wal_format`] (the
//! output plugin's binary messages, written by `output_plugin/` and read by the consumer),
//! [`wal_batch`] (decoded messages assembled into committed transactions, bounded in memory)
//! and [`compact`] (one transaction's changes to a row collapsed into net changes). [`gap`]
//! decides, from raw WAL records, whether a stretch of WAL holds anything to decode at all.

pub mod compact;
pub mod gap;
pub mod wal_batch;
pub mod wal_format;
