//! pg_trickle's pure core: no PostgreSQL dependency, tested with plain `cargo test`.
//!
//! - [`schedule`] / [`cron`]: parsing and validating refresh schedules.
//! - [`mode`]: refresh modes and the strategy a refresh actually runs.
//! - [`ident`]: user-supplied names, identifier and literal quoting.
//! - [`dag`]: the stream-table dependency graph (cycles refused, topological order).
//! - [`tick`]: what the scheduler refreshes on each tick; retry and auto-backoff rules.
//! - [`ivm`]: the differential engine: operators, their delta rules, and the SQL they render.
//! - [`wal_format`]: the output plugin's binary change records, decoded.
//! - [`compact`]: one transaction's changes to a table collapsed into net changes.
//! - [`wal_batch`]: decoded messages assembled into committed transactions' net changes.
//! - [`render`]: the SQL pg_trickle generates for storage, capture and applying results.
//! - [`error`]: typed errors, each with its SQLSTATE.

#![forbid(unsafe_code)]

pub mod compact;
pub mod cron;
pub mod dag;
pub mod error;
pub mod ident;
pub mod ir;
pub mod ivm;
pub mod mode;
pub mod render;
pub mod schedule;
pub mod tick;
pub mod wal_batch;
pub mod wal_format;

pub use error::{PgtError, Result, SqlState};
