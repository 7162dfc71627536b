//! Large change windows, materialized. A delta statement reads each source's window (its change
//! buffer's rows in the window, as weighted images: `scan::events_sql`) inline, where the planner
//! can only guess how many rows it holds and cannot look them up by a join key: for a join of
//! big tables the delta then reads them whole (TPC-H q03 at SF 1, ~21,000 changes: 1.6 s, where
//! FULL takes 0.7 s). For a large window the refresh first copies each source's window into a
//! temporary table, indexed on the leading column of each of the source's indexes and analyzed,
//! and runs the delta over those tables (q03: 0.26 s): both statements in one snapshot, so the
//! delta reads exactly the rows it would have read inline.

use crate::error::SpiOk;
use crate::spi;
use pg_trickle_core::ident::quote_ident;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::{self, Oid};

/// Temporary tables holding a refresh's windows (dropped by [`Materialized::drop_tables`]).
pub struct Materialized {
    tables: Vec<String>,
}

impl Materialized {
    pub fn drop_tables(self) {
        for t in self.tables {
            spi::exec(&format!("DROP TABLE pg_temp.{t}"), &[]);
        }
    }
}

/// Copies the window of each of `sources` (the plan's sources, in parameter order; `windows`:
/// each one's window SQL as the plan renders it) that `delta` reads into a temporary table, in
/// `snapshot`, and returns `delta` reading those tables instead. `None` (run `delta` as it is)
/// when a source's columns changed since it was planned.
pub fn materialize(
    sources: &[Oid],
    windows: &[String],
    delta: &str,
    args: &[DatumWithOid],
    snapshot: pg_sys::Snapshot,
) -> Option<(String, Materialized)> {
    let mut rewritten = delta.to_string();
    let mut done = Materialized { tables: Vec::new() };
    for (i, oid) in sources.iter().enumerate() {
        let Ok(mut src) = crate::plan::source_table(*oid) else {
            done.drop_tables();
            return None;
        };
        src.own_param = 3 + i;
        let events = format!(
            "({})",
            windows
                .get(i)
                .cloned()
                .unwrap_or_else(|| pg_trickle_core::ivm::scan::events_sql(&src))
        );
        if !rewritten.contains(&events) {
            continue;
        }
        // (Dropped after the delta; after an error, with the rolled-back transaction.)
        let table = format!("__pgt_win_{i}");
        // The source's columns without its constraints (an old image may hold a NULL a later
        // NOT NULL forbids).
        spi::exec(
            &format!(
                "CREATE TEMP TABLE {table} AS SELECT * FROM ONLY {} WITH NO DATA",
                src.quoted
            ),
            &[],
        );
        spi::exec(
            &format!("ALTER TABLE pg_temp.{table} ADD COLUMN __pgt_w int"),
            &[],
        );
        done.tables.push(table.clone());
        spi::with_prepared_in(
            snapshot,
            &format!("INSERT INTO pg_temp.{table} SELECT * FROM {events} AS __pgt_e"),
            args,
            |_| (),
        );
        let keys: Vec<String> = spi::rows(
            "SELECT DISTINCT a.attname::text FROM pg_catalog.pg_index i \
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
              WHERE i.indrelid = $1 AND i.indkey[0] > 0",
            &[(*oid).into()],
            |r| r.get::<String>(1).spi_ok().unwrap_or_default(),
        );
        for k in keys {
            spi::exec(
                &format!("CREATE INDEX ON pg_temp.{table} ({})", quote_ident(&k)),
                &[],
            );
        }
        spi::exec(&format!("ANALYZE pg_temp.{table}"), &[]);
        rewritten = rewritten.replace(&events, &format!("(SELECT * FROM pg_temp.{table})"));
    }
    Some((rewritten, done))
}
