//! The refresh executor. Both strategies apply their result with ONE statement (a MERGE inside a
//! WITH that returns the snapshot it ran in), so every source, change buffer and the storage are
//! read in one snapshot, and that snapshot becomes the new frontier.
//!
//! - FULL: MERGE the defining query's complete result by row identity (only rows that appeared,
//!   changed or disappeared are written).
//! - DIFFERENTIAL: first one cheap probe ("any change in the window?"), then MERGE the delta of
//!   exactly the buffer rows whose transactions were not visible to the previous refresh.
//!
//! Concurrent refreshes of one stream table are serialised by an EXCLUSIVE lock on its storage,
//! which readers do not conflict with.

use crate::capture;
use crate::catalog::{self, StreamTable};
use crate::error::SpiOk;
use crate::security;
use crate::spi;
use crate::wal;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

/// Who asked for a refresh (recorded in the history).
#[derive(Debug, Clone, Copy)]
pub enum Initiator {
    Create,
    Manual,
    Alter,
    Scheduler,
    /// The statement trigger of an IMMEDIATE stream table (no history row: one per statement).
    Immediate,
}

impl Initiator {
    fn as_str(self) -> &'static str {
        match self {
            Initiator::Create => "CREATE",
            Initiator::Manual => "MANUAL",
            Initiator::Alter => "ALTER",
            Initiator::Scheduler => "SCHEDULER",
            Initiator::Immediate => "IMMEDIATE",
        }
    }
}

struct Applied {
    frontier: String,
    xid: Option<String>,
    inserted: i64,
    updated: i64,
    deleted: i64,
}

/// Runs a MERGE statement of the plan. It is prepared once per backend with a generic plan: its
/// parameters only bound the change-buffer window, and planning would otherwise cost more than
/// applying a small delta. With `snapshot`, it runs in that snapshot (WAL-captured sources, see
/// [`wal::refresh_snapshot`]).
fn apply(
    st: &StreamTable,
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
    snapshot: Option<pg_sys::Snapshot>,
) -> Applied {
    spi::with_settings(&[("plan_cache_mode", "force_generic_plan")], || {
        apply_now(st, sql, args, snapshot)
    })
}

/// Windows with more changes than this are applied over materialized windows, or with a plan
/// made without nested loops; see [`apply_delta`].
const LARGE_WINDOW: i64 = 1000;

/// Whether a large window may be copied to temporary tables: not in the writer's transaction
/// (IMMEDIATE) nor in any explicit transaction block (either may be prepared for two-phase
/// commit, which refuses a transaction that used temporary tables), not where the transaction
/// reads in one snapshot (REPEATABLE READ, SERIALIZABLE: the delta must read that snapshot),
/// and only with the TEMP privilege.
fn materialize_allowed(initiator: Initiator) -> bool {
    // SAFETY: reads the transaction state and isolation level.
    let (block, xact_snapshot) = unsafe {
        (
            pg_sys::IsTransactionBlock(),
            pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32,
        )
    };
    !matches!(initiator, Initiator::Immediate)
        && !block
        && !xact_snapshot
        && spi::one_p::<bool>(
            "SELECT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMP')",
            &[],
        )
        .unwrap_or(false)
}

/// Runs a delta statement. A generic plan does not know the window's size; it is right for the
/// usual small window (each change looked up through indexes). A large window of a plan over
/// two sources or more is copied into analyzed, indexed temporary tables first (see
/// [`crate::window`]) and the delta planned over them; one-source plans, and refreshes that
/// must not touch temporary tables ([`materialize_allowed`]), use a second prepared plan made
/// with nested loops off (hash joins: linear in the window).
///
/// Measured at TPC-H SF 1 with ~20,000 changes: the generic plan over inline windows is
/// unstable (q12, two sources: 0.7 s in one run, 57 s in the next; q05, six: 11 min), hash joins
/// read the big tables whole (q03 1.9 s, FULL 0.7 s; q12 0.72 s), materialized windows are
/// planned from their real sizes (q03 0.62 s, q12 0.31 s).
fn apply_delta(
    st: &StreamTable,
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
    changes: i64,
    snapshot: Option<pg_sys::Snapshot>,
    initiator: Initiator,
) -> Applied {
    if changes <= LARGE_WINDOW {
        return apply(st, sql, args, snapshot);
    }
    // One source: the delta scans the window without joining it to anything (copying it would
    // cost more: TPC-H q01 88 -> 277 ms, q06 37 -> 228 ms).
    if st.plan_sources.len() >= 2 && security::as_owner(st, || materialize_allowed(initiator)) {
        // SAFETY: a fresh MVCC snapshot registered with the transaction's resource owner,
        // unregistered below (or at the end of the transaction on an error).
        let own = snapshot
            .is_none()
            .then(|| unsafe { pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot()) });
        let snap = snapshot.or(own).expect("a snapshot");
        let done = security::as_owner(st, || {
            crate::window::materialize(&st.plan_sources, &st.window_sql, sql, args, snap).map(
                |(rewritten, tables)| {
                    let applied = apply_now(st, &rewritten, args, Some(snap));
                    tables.drop_tables();
                    applied
                },
            )
        });
        if let Some(s) = own {
            // SAFETY: registered above in this transaction.
            unsafe { pg_sys::UnregisterSnapshot(s) };
        }
        if let Some(applied) = done {
            return applied;
        }
    }
    let large = format!("{sql}\n/* pg_trickle: large window */");
    spi::with_settings(
        &[
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_nestloop", "off"),
        ],
        || apply_now(st, &large, args, snapshot),
    )
}

fn applied_of(t: &pgrx::spi::SpiHeapTupleData) -> Applied {
    Applied {
        frontier: t.get::<String>(1).spi_ok().unwrap_or_default(),
        xid: t.get::<String>(2).spi_ok(),
        inserted: t.get::<i64>(3).spi_ok().unwrap_or(0),
        updated: t.get::<i64>(4).spi_ok().unwrap_or(0),
        deleted: t.get::<i64>(5).spi_ok().unwrap_or(0),
    }
}

/// Runs a refresh statement as the stream table's owner (it evaluates the defining query).
fn apply_now(
    st: &StreamTable,
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
    snapshot: Option<pg_sys::Snapshot>,
) -> Applied {
    security::as_owner(st, || match snapshot {
        Some(snapshot) => spi::with_prepared_in(snapshot, sql, args, |row| {
            applied_of(&row.expect("a refresh statement returns one row"))
        }),
        None => spi::with_prepared(sql, args, |t| {
            applied_of(
                &t.first()
                    .get_heap_tuple()
                    .spi_ok()
                    .expect("a refresh statement returns one row"),
            )
        }),
    })
}

/// The sources of `st` that have change capture (a buffer to record consumption in and trim).
fn table_sources(st: &StreamTable) -> Vec<Oid> {
    spi::rows_p(
        "SELECT d.source_relid FROM pgtrickle.pgt_dependencies d \
           JOIN pgtrickle.pgt_sources s USING (source_relid) WHERE d.pgt_id = $1",
        &[st.pgt_id.into()],
        |r| r.get::<Oid>(1).spi_ok(),
    )
    .into_iter()
    .flatten()
    .collect()
}

fn buffer_of(source: Oid) -> String {
    pg_trickle_core::ident::quote_qualified(
        pg_trickle_core::render::CHANGES_SCHEMA,
        &pg_trickle_core::render::buffer_table(source.to_u32()),
    )
}

/// Records a finished refresh: the new frontier (and, per source, the last change of the
/// refreshing transaction itself that it consumed), the history row, then trims the buffers.
fn record(
    st: &StreamTable,
    started: TimestampWithTimeZone,
    action: &str,
    initiator: Initiator,
    applied: &Applied,
    changes_read: Option<i64>,
    reason: Option<&str>,
) {
    let sources = table_sources(st);
    // One statement: the new frontier, the history row, and per source the last change of the
    // refreshing transaction itself that this refresh consumed.
    let own_updates: String = sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                ", __pgt_d{i} AS (UPDATE pgtrickle.pgt_dependencies SET own_change_id = \
                 (SELECT max(change_id) FROM {buf} WHERE xid = $3::xid8) \
                 WHERE pgt_id = $1 AND source_relid = {oid}::oid)",
                buf = buffer_of(*s),
                oid = s.to_u32()
            )
        })
        .collect();
    // An IMMEDIATE refresh runs once per statement: counted, not written to the history.
    let history = match initiator {
        Initiator::Immediate => "SELECT 1",
        _ => "INSERT INTO pgtrickle.pgt_refresh_history (pgt_id, action, initiated_by, started_at, finished_at, \
                 changes_read, rows_inserted, rows_updated, rows_deleted, reason) \
             VALUES ($1, $5, $6, $4, clock_timestamp(), $7, $8, $9, $10, $11)",
    };
    spi::exec_p(
        &format!(
            "WITH __pgt_st AS (UPDATE pgtrickle.pgt_stream_tables SET frontier = $2::pg_snapshot, \
                 frontier_xid = $3::xid8, data_timestamp = $4, last_refresh_at = clock_timestamp(), \
                 is_populated = true, status = 'ACTIVE', last_error = NULL, consecutive_errors = 0, \
                 refresh_count = refresh_count + 1, \
                 refresh_ms_total = refresh_ms_total + extract(epoch FROM clock_timestamp() - $4) * 1000, \
                 refresh_ms_max = greatest(refresh_ms_max, extract(epoch FROM clock_timestamp() - $4) * 1000), \
                 updated_at = now() WHERE pgt_id = $1){own_updates} \
             {history}"
        ),
        &[
            st.pgt_id.into(),
            applied.frontier.clone().into(),
            applied.xid.clone().into(),
            started.into(),
            action.into(),
            initiator.as_str().into(),
            changes_read.into(),
            applied.inserted.into(),
            applied.updated.into(),
            applied.deleted.into(),
            reason.map(str::to_string).into(),
        ],
    );
    for source in sources {
        capture::trim_buffer(source);
    }
}

/// Takes the refresh lock on the storage table (EXCLUSIVE: concurrent refreshes wait, readers
/// do not), then loads the stream table under it (a concurrent refresh may have moved the
/// frontier) and plans it again if the storage was renamed or another version of pg_trickle
/// planned it ([`crate::plan::rerender`]). Returns the refresh's start time.
fn lock_and_load(relid: Oid, differential: bool) -> (TimestampWithTimeZone, StreamTable) {
    // Lock order: the WAL consumers' lock (which a refresh reading a WAL-captured source takes
    // to catch up, until its transaction ends) before the storage's. Taken the other way round,
    // a transaction refreshing two such stream tables (holding the consumers' lock from the
    // first) and the scheduler refreshing the second (holding its storage, waiting for the
    // consumers' lock) deadlocked.
    // SAFETY: reads the transaction's isolation level.
    let read_committed = unsafe { pg_sys::XactIsoLevel } < pg_sys::XACT_REPEATABLE_READ as i32;
    if read_committed && reads_wal_below(relid, differential) {
        crate::wal::lock();
    }
    // SAFETY: the OID names a stream table's storage (checked by the caller); the lock is
    // released at the end of the transaction like any table lock.
    unsafe { pg_sys::LockRelationOid(relid, pg_sys::ExclusiveLock as pg_sys::LOCKMODE) };
    let started = spi::one_p::<TimestampWithTimeZone>("SELECT clock_timestamp()", &[])
        .expect("clock_timestamp() is never NULL");
    let mut st = catalog::by_relid(relid).expect("stream table in catalog");
    if !st.planned_here() {
        with_search_path(&st, || crate::plan::rerender(&st));
        st = catalog::by_relid(relid).expect("stream table in catalog");
    }
    security::require_source_privileges(&st);
    (started, st)
}

/// Recomputes the stream table stored in `relid` from its defining query.
pub fn full_refresh(relid: Oid, initiator: Initiator, reason: Option<&str>) {
    let (started, st) = lock_and_load(relid, false);
    with_internal(&st, initiator, true, || {
        with_search_path(&st, || full_refresh_locked(&st, started, initiator, reason))
    });
}

thread_local! {
    /// The snapshot every statement of the refresh of a stream table with internal stream
    /// tables runs in (theirs too), while one is in progress.
    static TREE: std::cell::Cell<Option<pg_sys::Snapshot>> = const { std::cell::Cell::new(None) };
    /// Internal stream tables refreshed in the refresh in progress recompute (FULL).
    static FULL_BELOW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The snapshot of the refresh in progress of a stream table with internal stream tables.
fn tree_snapshot() -> Option<pg_sys::Snapshot> {
    TREE.get()
}

/// Whether the refresh of the stream table stored in `relid` will consume the WAL: when a
/// source of it or of one of its internal stream tables (at any depth) is captured from the
/// WAL, and it has internal stream tables (their refresh catches up first) or, for a
/// `differential` refresh, it is not refreshed FULL.
fn reads_wal_below(relid: Oid, differential: bool) -> bool {
    spi::one_p::<bool>(
        "WITH RECURSIVE t(pgt_id) AS (SELECT pgt_id FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = $1 UNION ALL \
             SELECT c.pgt_id FROM pgtrickle.pgt_stream_tables c JOIN t ON c.parent_pgt_id = t.pgt_id) \
         SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_sources s USING (source_relid) \
                         WHERE d.pgt_id IN (SELECT pgt_id FROM t) AND s.capture_mode = 'WAL') \
            AND EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables st \
                         WHERE st.pgt_relid = $1 AND ($2 AND st.effective_mode <> 'FULL' OR EXISTS ( \
                               SELECT 1 FROM pgtrickle.pgt_stream_tables c WHERE c.parent_pgt_id = st.pgt_id)))",
        &[relid.into(), differential.into()],
    )
    .unwrap_or(false)
}

/// Whether `st` or one of its internal stream tables (at any depth) reads a source captured
/// from the WAL.
fn tree_reads_wal(st: &StreamTable) -> bool {
    spi::one_p::<bool>(
        "WITH RECURSIVE t(pgt_id) AS (SELECT $1::bigint UNION ALL \
             SELECT c.pgt_id FROM pgtrickle.pgt_stream_tables c JOIN t ON c.parent_pgt_id = t.pgt_id) \
         SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_sources s USING (source_relid) \
                         WHERE d.pgt_id IN (SELECT pgt_id FROM t) AND s.capture_mode = 'WAL')",
        &[st.pgt_id.into()],
    )
    .unwrap_or(false)
}

/// Runs `f`, the refresh of `st`, after refreshing its internal stream tables (each after its
/// own), all in one snapshot: taken here when this is the outermost such refresh (after
/// consuming the WAL up to it when a source anywhere below is captured from the WAL, unless the
/// stream table is being created or redefined: then every refresh of the tree is FULL), except
/// under REPEATABLE READ or SERIALIZABLE, where every statement reads the transaction's.
fn with_internal<R>(
    st: &StreamTable,
    initiator: Initiator,
    clean: bool,
    f: impl FnOnce() -> R,
) -> R {
    let children = catalog::children(st.pgt_id);
    if children.is_empty() {
        return f();
    }
    // SAFETY: reads the transaction's isolation level.
    let read_committed = unsafe { pg_sys::XactIsoLevel } < pg_sys::XACT_REPEATABLE_READ as i32;
    struct Outermost(Option<pg_sys::Snapshot>);
    impl Drop for Outermost {
        fn drop(&mut self) {
            if let Some(s) = self.0 {
                TREE.set(None);
                // SAFETY: registered below in this transaction; on an ERROR the transaction's
                // resource owner releases it instead (this runs only on normal return or a
                // Rust unwind, both before the transaction ends).
                unsafe { pg_sys::UnregisterSnapshot(s) };
            }
        }
    }
    // Creating or redefining a stream table recomputes its whole tree (FULL). A FULL refresh
    // needs no WAL consumed first: a transaction its snapshot sees is outside every later window
    // whenever its changes reach the buffers. And that transaction created relations: reading the
    // slot in it rebuilds their cache entries under the decoder's historic snapshot, which does
    // not see them (a create failed once in tests with "pg_attribute catalog is missing 7
    // attribute(s)" for such a relation).
    let recompute = matches!(initiator, Initiator::Create | Initiator::Alter);
    let _outermost = if TREE.get().is_none() && read_committed {
        let snap = if tree_reads_wal(st) && !recompute {
            crate::wal::refresh_snapshot().0
        } else {
            // SAFETY: a fresh MVCC snapshot registered with the transaction's resource owner.
            unsafe { pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot()) }
        };
        TREE.set(Some(snap));
        Outermost(Some(snap))
    } else {
        Outermost(None)
    };
    // After a failed refresh the stream table recomputes, and so does every internal stream
    // table below it (the failing statement may have been one of theirs).
    struct Full(bool);
    impl Drop for Full {
        fn drop(&mut self) {
            FULL_BELOW.set(self.0);
        }
    }
    let retry = FULL_BELOW.get() || st.consecutive_errors > 0;
    let full = recompute || retry;
    let _restore = Full(FULL_BELOW.replace(full));
    for child in children {
        let refresh_child = || {
            if full {
                full_refresh(
                    child,
                    initiator,
                    (retry && !recompute).then_some("retry after a failed refresh"),
                );
            } else {
                refresh_as(child, initiator, clean);
            }
        };
        // At create every reader of an internal stream table is populated FULL in this
        // transaction: its first population need not be captured.
        if matches!(initiator, Initiator::Create) {
            capture::without_capture(child, refresh_child);
        } else {
            refresh_child();
        }
    }
    f()
}

/// Runs `f` with the search_path the stream table's query was planned with.
pub(crate) fn with_search_path<R>(st: &StreamTable, f: impl FnOnce() -> R) -> R {
    match &st.search_path {
        // Pinned (pg_catalog first, pg_temp last) for stream tables created before 0.7.0 too:
        // pg_trickle's own statements run in it, some as the extension's owner.
        Some(path) => spi::with_settings(
            &[(
                "search_path",
                &pg_trickle_core::ident::pinned_search_path(path),
            )],
            f,
        ),
        None => f(),
    }
}

fn full_refresh_locked(
    st: &StreamTable,
    started: TimestampWithTimeZone,
    initiator: Initiator,
    reason: Option<&str>,
) {
    let applied = apply(st, &st.full_merge_sql, &[], tree_snapshot());
    let applied = derive_top(st, applied, true);
    record(st, started, "FULL", initiator, &applied, None, reason);
}

/// A TopK stream table: its plan maintained the internal table; re-derive the stored rows from
/// it when that changed anything (or `always`), and report the stored rows' changes. Any other
/// stream table: `applied` as it is.
fn derive_top(st: &StreamTable, applied: Applied, always: bool) -> Applied {
    let Some(top) = &st.topk_sql else {
        return applied;
    };
    if !always && applied.inserted + applied.updated + applied.deleted == 0 {
        return Applied {
            inserted: 0,
            updated: 0,
            deleted: 0,
            ..applied
        };
    }
    let derived = apply(st, top, &[], None);
    Applied {
        frontier: applied.frontier,
        xid: applied.xid.or(derived.xid),
        ..derived
    }
}

/// What the cheap probe found in a stream table's change window.
struct Probed {
    /// Per source, in parameter order: the last own change consumed, and the source's size.
    per_source: Vec<(Option<i64>, f64)>,
    changes: i64,
    /// Why the window needs a FULL refresh (a TRUNCATE, ...), if it does.
    full_reason: Option<String>,
}

fn window_args(
    st: &StreamTable,
    frontier: &str,
    per_source: &[(Option<i64>, f64)],
) -> Vec<pgrx::datum::DatumWithOid<'static>> {
    let mut args: Vec<pgrx::datum::DatumWithOid<'static>> =
        vec![frontier.to_string().into(), st.frontier_xid.clone().into()];
    args.extend(per_source.iter().map(|(own, _)| (*own).into()));
    args
}

/// The probe's second column: why the window needs a FULL refresh (text), or, from a probe
/// rendered by 0.1.0 and still in the catalog of an upgraded database, whether it holds a
/// TRUNCATE (boolean).
fn full_reason_of(t: &pgrx::spi::SpiTupleTable) -> Option<String> {
    if t.column_type_oid(2).ok() == Some(pgrx::PgOid::BuiltIn(pgrx::PgBuiltInOids::BOOLOID)) {
        return t
            .get::<bool>(2)
            .spi_ok()
            .unwrap_or(false)
            .then(|| "TRUNCATE of a source".to_string());
    }
    t.get::<String>(2).spi_ok()
}

fn probe_window(st: &StreamTable, frontier: &str, probe: &str) -> Probed {
    let per_source: Vec<(Option<i64>, f64)> = st
        .plan_sources
        .iter()
        .map(|source| {
            spi::with_prepared(
                "SELECT d.own_change_id, c.reltuples::float8 FROM pgtrickle.pgt_dependencies d \
                   JOIN pg_catalog.pg_class c ON c.oid = d.source_relid WHERE d.pgt_id = $1 AND d.source_relid = $2",
                &[st.pgt_id.into(), (*source).into()],
                |t| {
                    if t.is_empty() {
                        return (None, -1.0);
                    }
                    let t = t.first();
                    (t.get::<i64>(1).spi_ok(), t.get::<f64>(2).spi_ok().unwrap_or(-1.0))
                },
            )
        })
        .collect();
    let (changes, full_reason) =
        spi::with_prepared(probe, &window_args(st, frontier, &per_source), |t| {
            let t = t.first();
            (t.get::<i64>(1).spi_ok().unwrap_or(0), full_reason_of(&t))
        });
    Probed {
        per_source,
        changes,
        full_reason,
    }
}

/// Whether a scheduled refresh of `relid` has anything to do: false only for a healthy stream
/// table with a change window whose sources hold no change since its frontier. Takes no lock;
/// three statements (its internal stream tables, what the probe needs, then the probe), and
/// those of its internal stream tables.
pub fn needs_refresh(relid: Oid) -> bool {
    // Its internal stream tables' sources are its sources too.
    if catalog::children_of_storage(relid)
        .into_iter()
        .any(needs_refresh)
    {
        return true;
    }
    type Info = (
        Option<String>,
        Option<String>,
        Option<String>,
        i32,
        bool,
        Vec<Option<i64>>,
    );
    let info: Option<Info> = spi::with_prepared(
        "SELECT st.frontier::text, st.frontier_xid::text, st.probe_sql, st.consecutive_errors, \
                st.planned_for = chr(34) || replace(n.nspname, chr(34), repeat(chr(34), 2)) || chr(34) || '.' \
                    || chr(34) || replace(c.relname, chr(34), repeat(chr(34), 2)) || chr(34), \
                ARRAY(SELECT d.own_change_id FROM unnest(st.plan_sources) WITH ORDINALITY AS p(src, i) \
                        LEFT JOIN pgtrickle.pgt_dependencies d ON d.pgt_id = st.pgt_id AND d.source_relid = p.src \
                       ORDER BY p.i) \
           FROM pgtrickle.pgt_stream_tables st \
           JOIN pg_catalog.pg_class c ON c.oid = st.pgt_relid \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE st.pgt_relid = $1",
        &[relid.into()],
        |t| {
            if t.is_empty() {
                return None;
            }
            let t = t.first();
            Some((
                t.get::<String>(1).spi_ok(),
                t.get::<String>(2).spi_ok(),
                t.get::<String>(3).spi_ok(),
                t.get::<i32>(4).spi_ok().unwrap_or(0),
                t.get::<bool>(5).spi_ok().unwrap_or(false),
                t.get::<Vec<Option<i64>>>(6).spi_ok().unwrap_or_default(),
            ))
        },
    );
    let Some((frontier, xid, probe, errors, same_name, own)) = info else {
        return false;
    };
    let (Some(frontier), Some(probe)) = (frontier, probe) else {
        return true;
    };
    if errors > 0 || !same_name {
        return true;
    }
    let mut args: Vec<pgrx::datum::DatumWithOid<'static>> = vec![frontier.into(), xid.into()];
    args.extend(own.into_iter().map(|o| o.into()));
    spi::with_prepared(&probe, &args, |t| {
        let t = t.first();
        t.get::<i64>(1).spi_ok().unwrap_or(0) > 0 || full_reason_of(&t).is_some()
    })
}

/// Records that stream tables whose probe found nothing are current as of this transaction's
/// start (every change committed before it was visible to the probe).
pub fn mark_current(relids: &[Oid]) {
    if relids.is_empty() {
        return;
    }
    spi::exec_p(
        "UPDATE pgtrickle.pgt_stream_tables SET data_timestamp = greatest(data_timestamp, now()), \
             last_refresh_at = clock_timestamp() \
          WHERE pgt_relid = ANY($1) AND consecutive_errors = 0",
        &[relids.to_vec().into()],
    );
}

/// AUTO refreshes FULL when the window holds more changes than this fraction of the sources'
/// rows: past it, recomputing costs less than applying the delta.
const AUTO_FULL_FRACTION: f64 = 0.25;
/// The same for joins of three tables or more, whose delta has one variant per table, each
/// joining the window's changes of one table with the state of all the others (measured with
/// `benches/join.sh`-style tables: a 4-way join aggregate over 1M rows ran its delta in half the
/// FULL time at 1% of the rows changing and in 2.4× the FULL time at 4%).
const AUTO_FULL_FRACTION_MULTIWAY: f64 = 0.02;

/// AUTO after this many FULL refreshes in a row chosen by [`measured_full_is_cheaper`] runs
/// DIFFERENTIAL once more, to measure it again.
const AUTO_REMEASURE_AFTER: i64 = 10;

/// A differential refresh that took less than this (ms) is never a reason to recompute: below
/// it the difference does not matter, and small stream tables keep a stable mode.
const AUTO_MEASURED_FLOOR_MS: f64 = 500.0;

/// For AUTO: why a FULL refresh is cheaper than the delta of `changes` changes, judged by this
/// stream table's own history: its last DIFFERENTIAL refresh took longer than its last FULL
/// refresh (and [`AUTO_MEASURED_FLOOR_MS`]), and this window is at least half that one's size.
/// `None` (run the delta) otherwise, and after [`AUTO_REMEASURE_AFTER`] refreshes since the
/// last DIFFERENTIAL one (measure it again).
fn measured_full_is_cheaper(st: &StreamTable, changes: i64) -> Option<String> {
    let (diff_ms, diff_changes, full_ms, since) = spi::rows_p(
        "SELECT d.ms, d.changes_read, \
                (SELECT extract(epoch FROM h.finished_at - h.started_at) * 1000 \
                   FROM pgtrickle.pgt_refresh_history h \
                  WHERE h.pgt_id = $1 AND h.action = 'FULL' ORDER BY h.refresh_id DESC LIMIT 1)::float8, \
                (SELECT count(*) FROM pgtrickle.pgt_refresh_history h \
                  WHERE h.pgt_id = $1 AND h.refresh_id > d.refresh_id) \
           FROM (SELECT h.refresh_id, h.changes_read, \
                        (extract(epoch FROM h.finished_at - h.started_at) * 1000)::float8 AS ms \
                   FROM pgtrickle.pgt_refresh_history h \
                  WHERE h.pgt_id = $1 AND h.action = 'DIFFERENTIAL' AND h.changes_read > 0 \
                  ORDER BY h.refresh_id DESC LIMIT 1) d",
        &[st.pgt_id.into()],
        |r| {
            (
                r.get::<f64>(1).spi_ok(),
                r.get::<i64>(2).spi_ok(),
                r.get::<f64>(3).spi_ok(),
                r.get::<i64>(4).spi_ok().unwrap_or(0),
            )
        },
    )
    .pop()?;
    let (diff_ms, diff_changes, full_ms) = (diff_ms?, diff_changes?, full_ms?);
    let slower = diff_ms > full_ms.max(AUTO_MEASURED_FLOOR_MS);
    (slower && changes * 2 >= diff_changes && since < AUTO_REMEASURE_AFTER).then(|| {
        format!(
            "the last differential refresh took {diff_ms:.0} ms for {diff_changes} changes, the last full refresh \
             {full_ms:.0} ms; this window has {changes} changes"
        )
    })
}

thread_local! {
    /// (top transaction id, command id) right after the last refresh_stream_table() call that
    /// entered a transaction with no writes of its own: a call that finds the transaction at the
    /// same position knows nothing else wrote in between.
    static CLEAN_END: std::cell::Cell<Option<(u32, u32)>> = const { std::cell::Cell::new(None) };
}

fn xact_position() -> (u32, u32) {
    // SAFETY: reads the current transaction's id (if any) and command counter.
    unsafe {
        (
            pg_sys::GetTopTransactionIdIfAny().into_inner(),
            pg_sys::GetCurrentCommandId(false),
        )
    }
}

/// Whether the calling transaction has written nothing but earlier refreshes (called by
/// refresh_stream_table before it does anything that writes).
pub fn entered_clean() -> bool {
    let (xid, cid) = xact_position();
    xid == 0 || CLEAN_END.get() == Some((xid, cid))
}

/// refresh_stream_table(): [`refresh`], knowing whether the caller's transaction wrote anything
/// before (a DIFFERENTIAL refresh from WAL-captured sources cannot see those writes' changes).
pub fn refresh_manual(relid: Oid, initiator: Initiator, clean: bool) {
    refresh_as(relid, initiator, clean);
    if clean {
        // SAFETY: makes this call's writes visible and starts a new command, so the position
        // recorded is the one the next call sees unless a statement in between writes.
        unsafe { pg_sys::CommandCounterIncrement() };
        CLEAN_END.set(Some(xact_position()));
    }
}

/// Refreshes `st` the way its plan says: DIFFERENTIAL when it has a delta plan and a frontier to
/// start from (FULL when a TRUNCATE is in the window, for AUTO past [`AUTO_FULL_FRACTION`], and
/// after a failed refresh), FULL otherwise.
pub fn refresh(relid: Oid, initiator: Initiator) {
    refresh_as(relid, initiator, true);
}

/// `clean`: the calling transaction wrote nothing before this refresh (see
/// [`refuse_own_writes`]).
fn refresh_as(relid: Oid, initiator: Initiator, clean: bool) {
    let (started, st) = lock_and_load(relid, true);
    with_internal(&st, initiator, clean, || {
        with_search_path(&st, || refresh_loaded(&st, started, initiator, clean))
    });
}

/// Whether a source of `st` is captured from the WAL.
fn reads_wal_source(st: &StreamTable) -> bool {
    spi::one_p::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_sources s USING (source_relid) \
          WHERE d.pgt_id = $1 AND s.capture_mode = 'WAL')",
        &[st.pgt_id.into()],
    )
    .unwrap_or(false)
}

/// A transaction that wrote before asking for this refresh may have written a source captured
/// from the WAL: those uncommitted changes are in the tables the delta reads but cannot be in a
/// change buffer yet, so the refresh is refused (SQLSTATE 0A000) rather than made inexact.
fn refuse_own_writes(st: &StreamTable, clean: bool) {
    if clean {
        return;
    }
    let tables = spi::one_p::<String>(
        "SELECT string_agg(s.source_relid::regclass::text, ', ') FROM pgtrickle.pgt_dependencies d \
           JOIN pgtrickle.pgt_sources s USING (source_relid) \
          WHERE d.pgt_id = $1 AND s.capture_mode = 'WAL'",
        &[st.pgt_id.into()],
    )
    .unwrap_or_default();
    crate::error::raise(pg_trickle_core::PgtError::WalSourceWrittenInTransaction {
        stream_table: st.quoted(),
        tables,
    });
}

fn refresh_loaded(
    st: &StreamTable,
    started: TimestampWithTimeZone,
    initiator: Initiator,
    clean: bool,
) {
    let Some(frontier) = &st.frontier else {
        return full_refresh_locked(st, started, initiator, None);
    };
    // After a failure, recompute: the failing window may hold a row image the query cannot
    // evaluate (a division by zero in a value already corrected), and a delta re-reads it.
    if st.consecutive_errors > 0 {
        return full_refresh_locked(st, started, initiator, Some("retry after a failed refresh"));
    }
    // A FULL plan has a probe when its sources are captured and its query deterministic: the
    // scheduler skips the recompute when nothing changed; asked by hand, it always recomputes.
    let probe = match (&st.probe_sql, &st.delta_merge_sql, initiator) {
        (Some(p), Some(_), _) | (Some(p), None, Initiator::Scheduler) => p,
        _ => return full_refresh_locked(st, started, initiator, None),
    };
    // Sources captured from the WAL: their changes reach the buffers by consuming the slot, in
    // this transaction, up to a WAL position taken after the delta's snapshot.
    let tree = tree_snapshot();
    let snapshot = if reads_wal_source(st) {
        // SAFETY: reads the transaction's isolation level.
        if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
            return full_refresh_locked(
                st,
                started,
                initiator,
                Some("a source is captured from the WAL and the transaction is not READ COMMITTED"),
            );
        }
        refuse_own_writes(st, clean);
        // Inside the refresh of a parent: its snapshot, taken after consuming the WAL.
        tree.is_none().then(wal::refresh_snapshot)
    } else {
        None
    };
    refresh_window(
        st,
        started,
        initiator,
        frontier,
        probe,
        snapshot.as_ref().map(|s| s.0).or(tree),
    );
    if let Some(s) = snapshot {
        s.release();
    }
}

/// The DIFFERENTIAL path once the window's changes are all in the buffers: probe, then FULL or
/// the delta (in `snapshot` when given).
fn refresh_window(
    st: &StreamTable,
    started: TimestampWithTimeZone,
    initiator: Initiator,
    frontier: &str,
    probe: &str,
    snapshot: Option<pg_sys::Snapshot>,
) {
    let Probed {
        per_source,
        changes,
        full_reason,
    } = probe_window(st, frontier, probe);
    let source_rows: f64 = per_source.iter().map(|(_, r)| r.max(0.0)).sum();
    let window_args = || window_args(st, frontier, &per_source);
    if changes == 0 {
        // Nothing committed since the frontier: the data is current as of now. The frontier
        // stays, so transactions still in flight are picked up by a later refresh.
        spi::exec_p(
            "UPDATE pgtrickle.pgt_stream_tables SET data_timestamp = $2, last_refresh_at = clock_timestamp(), \
                 status = 'ACTIVE', last_error = NULL, consecutive_errors = 0 WHERE pgt_id = $1",
            &[st.pgt_id.into(), started.into()],
        );
        return;
    }
    let Some(delta) = &st.delta_merge_sql else {
        return full_refresh_locked(st, started, initiator, None);
    };
    if let Some(reason) = &full_reason {
        return full_refresh_locked(st, started, initiator, Some(reason));
    }
    let fraction = if st.plan_sources.len() > 2 {
        AUTO_FULL_FRACTION_MULTIWAY
    } else {
        AUTO_FULL_FRACTION
    };
    if st.refresh_mode == "AUTO" && source_rows > 0.0 && changes as f64 > fraction * source_rows {
        let reason = format!(
            "{changes} changes exceed {}% of the sources' ~{} rows",
            fraction * 100.0,
            source_rows as i64
        );
        return full_refresh_locked(st, started, initiator, Some(&reason));
    }
    if st.refresh_mode == "AUTO" {
        if let Some(reason) = measured_full_is_cheaper(st, changes) {
            return full_refresh_locked(st, started, initiator, Some(&reason));
        }
    }
    let applied = derive_top(
        st,
        apply_delta(st, delta, &window_args(), changes, snapshot, initiator),
        false,
    );
    record(
        st,
        started,
        "DIFFERENTIAL",
        initiator,
        &applied,
        Some(changes),
        None,
    );
}
