//! The refresh executor. A FULL refresh is one statement, so it reads every source in one
//! snapshot: a MERGE of the defining query's rows into storage by row identity (only rows that
//! appeared or disappeared are written), returning that snapshot as the new frontier. Concurrent
//! refreshes of one stream table are serialised by an EXCLUSIVE lock on its storage, which readers
//! do not conflict with.

use crate::capture;
use crate::catalog::StreamTable;
use crate::spi;
use pg_trickle_core::render;
use pgrx::prelude::*;

/// Who asked for a refresh (recorded in the history).
#[derive(Debug, Clone, Copy)]
pub enum Initiator {
    Create,
    Manual,
    Alter,
}

impl Initiator {
    fn as_str(self) -> &'static str {
        match self {
            Initiator::Create => "CREATE",
            Initiator::Manual => "MANUAL",
            Initiator::Alter => "ALTER",
        }
    }
}

/// Recomputes `st` from its defining query and records the refresh.
pub fn full_refresh(st: &StreamTable, initiator: Initiator) {
    spi::exec(
        &format!("LOCK TABLE {} IN EXCLUSIVE MODE", st.quoted()),
        &[],
    );
    let started = spi::one::<TimestampWithTimeZone>("SELECT clock_timestamp()", &[])
        .expect("clock_timestamp() is never NULL");
    let sql = render::full_refresh_sql(&st.schema, &st.name, &st.defining_query, &st.columns);
    let (frontier, inserted, deleted) = Spi::connect_mut(|client| {
        let t = client.update(&sql, None, &[]).map(|t| t.first());
        let t = crate::error::SpiOk::spi_ok(t);
        (
            crate::error::SpiOk::spi_ok(t.get::<String>(1)),
            crate::error::SpiOk::spi_ok(t.get::<i64>(2)).unwrap_or(0),
            crate::error::SpiOk::spi_ok(t.get::<i64>(3)).unwrap_or(0),
        )
    });
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET frontier = $2::pg_snapshot, data_timestamp = $3, \
             last_refresh_at = clock_timestamp(), is_populated = true, status = 'ACTIVE', \
             last_error = NULL, consecutive_errors = 0, updated_at = now() WHERE pgt_id = $1",
        &[st.pgt_id.into(), frontier.into(), started.into()],
    );
    spi::exec(
        "INSERT INTO pgtrickle.pgt_refresh_history \
             (pgt_id, action, initiated_by, started_at, finished_at, rows_inserted, rows_deleted) \
         VALUES ($1, 'FULL', $2, $3, clock_timestamp(), $4, $5)",
        &[
            st.pgt_id.into(),
            initiator.as_str().into(),
            started.into(),
            inserted.into(),
            deleted.into(),
        ],
    );
    let sources = spi::rows(
        "SELECT source_relid FROM pgtrickle.pgt_dependencies WHERE pgt_id = $1 AND source_type = 'TABLE'",
        &[st.pgt_id.into()],
        |r| r.get::<pgrx::pg_sys::Oid>(1).ok().flatten(),
    );
    for s in sources.into_iter().flatten() {
        capture::trim_buffer(s);
    }
}
