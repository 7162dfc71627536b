//! pg_trickle's pure core: no PostgreSQL dependency, tested with plain `cargo test`. Laid out as
//! the pipeline a stream table goes through:
//!
//! | module | owns | may use |
//! | --- | --- | --- |
//! | [`capture`] | WAL messages decoded, assembled into transactions, compacted | `error` |
//! | [`ivm`] | planning: parse, inline, nest, the operators and their delta rules | `ir`, `render`, `ident` |
//! | [`ir`] | the typed plan and its one renderer (quoting, parentheses) and tree | `ident` |
//! | [`render`] | storage, capture and MERGE statements | `ir`, `ident` |
//! | [`scheduling`] | schedules, cron, the DAG, what a scheduler pass refreshes | `error` |
//! | [`mode`] | refresh and capture modes | `error` |
//! | [`ident`] | user names, identifier and literal quoting | `error` |
//! | [`error`] | typed errors, each with its SQLSTATE | |
//!
//! The older flat paths (`pg_trickle_core::dag`, `::wal_format`, ...) are re-exported.

#![forbid(unsafe_code)]

pub mod capture;
pub mod error;
pub mod ident;
pub mod ir;
pub mod ivm;
pub mod mode;
pub mod render;
pub mod scheduling;

pub use capture::{compact, gap, wal_batch, wal_format};
pub use scheduling::{cron, dag, schedule, tick};

pub use error::{PgtError, Result, SqlState};
