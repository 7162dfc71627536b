//! Background workers: one launcher per server (registered from `shared_preload_libraries`), one
//! scheduler per database where pg_trickle is installed.
//!
//! - The launcher connects to no database; every few seconds it reads the shared catalog
//!   `pg_database` and starts a scheduler for each database that accepts connections and has none
//!   (a database without the extension gets a scheduler that exits at once, retried every 30 s).
//!   `create_stream_table` also starts its database's scheduler if none runs, so the first stream
//!   table of a new database is refreshed without waiting for the launcher.
//! - A scheduler holds an advisory lock, so there is never more than one per database. Each tick
//!   it reads the catalog, asks [`pg_trickle_core::tick::due`] what to refresh, and refreshes those
//!   stream tables upstream first, each in its own transaction: a failing refresh is rolled back
//!   and recorded (status ERROR, last_error), retried with backoff, and SUSPENDED after
//!   `pg_trickle.max_consecutive_errors` failures in a row; the others go on.
//! - It exits when the extension is dropped, on SIGTERM (DROP DATABASE terminates it first, see
//!   [`crate::hooks`]), and restarts after a crash (the launcher starts a new one).

use crate::catalog;
use crate::error::SpiOk;
use crate::guc;
use crate::refresh::{self, Initiator};
use crate::spi;
use pg_trickle_core::dag::Dag;
use pg_trickle_core::schedule::Schedule;
use pg_trickle_core::tick::{self, Entry};
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `backend_type` of the schedulers in pg_stat_activity.
pub const SCHEDULER_TYPE: &str = "pg_trickle scheduler";
const LAUNCHER_TYPE: &str = "pg_trickle launcher";
/// Advisory lock key (classid, objid) a scheduler holds in its database.
const LOCK_KEY: (i32, i32) = (0x7067_7472, 1);
/// How long a database waits after a scheduler start before the launcher tries again.
const RESPAWN_COOLDOWN: Duration = Duration::from_secs(30);

/// A worker of this library of type `kind` running `function`, with SPI, started once recovery
/// has finished, not restarted by the postmaster.
pub(crate) fn worker(kind: &str, function: &str) -> BackgroundWorkerBuilder {
    BackgroundWorkerBuilder::new(kind)
        .set_type(kind)
        .set_library("pg_trickle")
        .set_function(function)
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
}

pub fn register_launcher() {
    worker(LAUNCHER_TYPE, "pg_trickle_launcher_main")
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

/// A database worker's argument: the database, and whether a user transaction (that may still
/// be creating the extension) started it.
pub(crate) fn worker_arg(db: Oid, from_transaction: bool) -> pg_sys::Datum {
    pg_sys::Datum::from(u64::from(db.to_u32()) | (u64::from(from_transaction) << 32))
}

/// The database of a worker's argument, after waiting (when a user transaction started the
/// worker) for that transaction to have committed the extension; `None`: exit.
pub(crate) fn worker_db(arg: pg_sys::Datum) -> Option<Oid> {
    let raw = arg.value() as u64;
    let db = Oid::from(raw as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(db), None);
    if raw >> 32 != 0 && !extension_installed_soon() {
        return None;
    }
    Some(db)
}

fn scheduler_worker(db: Oid, from_transaction: bool) -> BackgroundWorkerBuilder {
    worker(SCHEDULER_TYPE, "pg_trickle_scheduler_main")
        .set_argument(Some(worker_arg(db, from_transaction)))
}

/// Starts the current database's scheduler unless one runs or scheduling is off.
pub fn ensure_scheduler() {
    if !guc::ENABLED.get() {
        return;
    }
    let running = spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity \
          WHERE datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) \
            AND backend_type = $1)",
        &[SCHEDULER_TYPE.into()],
    )
    .unwrap_or(false);
    // SAFETY: reading the backend's own database OID.
    let db = unsafe { pg_sys::MyDatabaseId };
    if !running && scheduler_worker(db, true).load_dynamic().is_err() {
        pgrx::warning!(
            "pg_trickle could not start a scheduler for this database: no free background worker slot (raise max_worker_processes)"
        );
    }
}

/// SIGTERM ends the worker through PostgreSQL's own `die()`: a running refresh is interrupted at
/// its next CHECK_FOR_INTERRUPTS (so DROP DATABASE and shutdown do not wait for it to finish)
/// and the worker exits; the launcher starts a new scheduler when needed.
pub(crate) fn use_die_for_sigterm() {
    unsafe extern "C-unwind" {
        /// PostgreSQL's `die()` (postgres.c), the signal handler itself, not pgrx's wrapper.
        #[link_name = "die"]
        fn postgres_die(signal: std::ffi::c_int);
    }
    // SAFETY: installs PostgreSQL's standard backend SIGTERM handler, as contrib's worker_spi
    // does; signals are unblocked by attach_signal_handlers.
    unsafe { pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(postgres_die)) };
}

/// Databases that accept connections, read from the shared catalog without a database
/// connection.
fn databases() -> Vec<Oid> {
    let mut out = Vec::new();
    // SAFETY: a plain heap scan of the shared catalog pg_database inside a transaction, as
    // PostgreSQL's own autovacuum launcher does; tuples are read while the scan holds them.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as i32);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tup = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tup.is_null() {
                break;
            }
            let form = pg_sys::GETSTRUCT(tup) as *const pg_sys::FormData_pg_database;
            if (*form).datallowconn && !(*form).datistemplate {
                out.push((*form).oid);
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
        pg_sys::CommitTransactionCommand();
    }
    out
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_trickle_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    use_die_for_sigterm();
    BackgroundWorker::connect_worker_to_spi(None, None);
    let mut started: HashMap<u32, (Instant, pgrx::bgworkers::DynamicBackgroundWorker)> =
        HashMap::new();
    loop {
        if BackgroundWorker::sighup_received() {
            // SAFETY: reloading the configuration file in the worker's main loop.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if guc::ENABLED.get() {
            for db in databases() {
                let alive = started
                    .get(&db.to_u32())
                    .is_some_and(|(at, h)| at.elapsed() < RESPAWN_COOLDOWN || !finished(h));
                if alive {
                    continue;
                }
                match scheduler_worker(db, false).load_dynamic() {
                    Ok(h) => {
                        started.insert(db.to_u32(), (Instant::now(), h));
                    }
                    Err(_) => {
                        pgrx::log!("pg_trickle launcher: no free background worker slot for a scheduler (raise max_worker_processes)");
                        break;
                    }
                }
            }
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(5))) {
            break;
        }
    }
}

/// What the scheduler keeps between ticks for one stream table.
#[derive(Default)]
struct Memory {
    backoff: u32,
    last_attempt_ms: Option<i64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `f` in a transaction of its own; an ERROR inside is caught, the transaction rolled back,
/// and the message returned.
pub(crate) fn in_transaction<R>(
    f: impl FnOnce() -> R + std::panic::UnwindSafe,
) -> Result<R, String> {
    // SAFETY: the scheduler's main loop runs outside any transaction; this starts one, and every
    // path below ends it (commit on success, abort on error).
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(|| Ok(f()))
        .catch_others(|e| {
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r) => r.message().to_string(),
                pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
                    ereport.message().to_string()
                }
            })
        })
        .execute();
    // SAFETY: ends the transaction started above; after the abort this backend holds no
    // LWLock, so releasing its replication slot is allowed.
    unsafe {
        match result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => {
                pg_sys::AbortCurrentTransaction();
                // As PostgresMain's error recovery does (a background worker has none): a
                // replication slot that the failed statement acquired (a logical decoding call
                // that raised) is released, or the next reader of the slot in any backend
                // fails with "replication slot ... is active for PID" of this worker.
                if !pg_sys::MyReplicationSlot.is_null() {
                    pg_sys::ReplicationSlotRelease();
                }
            }
        }
    }
    result
}

pub(crate) fn extension_installed() -> bool {
    spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_trickle')",
        &[],
    )
    .unwrap_or(false)
}

/// For a worker a user transaction started: whether the extension is installed, waiting up to
/// 5 s for it. create_stream_table starts the database's workers from its transaction, which
/// may also have created the extension and not have committed yet; exiting then would leave
/// the database without them until the launcher's next scan.
fn extension_installed_soon() -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if in_transaction(extension_installed) == Ok(true) {
            return true;
        }
        if Instant::now() >= until
            || !BackgroundWorker::wait_latch(Some(Duration::from_millis(100)))
        {
            return false;
        }
    }
}

/// The catalog as the tick planner needs it.
fn load_entries() -> (Vec<Entry>, Dag) {
    let rows = spi::rows(
        "SELECT st.pgt_relid, st.schedule, st.status, st.consecutive_errors, \
                (extract(epoch FROM st.data_timestamp) * 1000)::int8 \
           FROM pgtrickle.pgt_stream_tables st WHERE st.effective_mode <> 'IMMEDIATE' AND st.parent_pgt_id IS NULL",
        &[],
        |r| {
            (
                r.get::<Oid>(1).spi_ok().unwrap_or(pg_sys::InvalidOid),
                r.get::<String>(2).spi_ok(),
                r.get::<String>(3).spi_ok().unwrap_or_default(),
                r.get::<i32>(4).spi_ok().unwrap_or(0),
                r.get::<i64>(5).spi_ok(),
            )
        },
    );
    let mut entries = Vec::new();
    for (relid, schedule, status, errors, data_ms) in rows {
        let schedule = match schedule {
            None => Schedule::Calculated,
            Some(s) => match Schedule::parse(Some(&s)) {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        entries.push(Entry {
            relid: relid.to_u32(),
            schedule,
            last_attempt_ms: None,
            data_ms,
            consecutive_errors: errors.max(0) as u32,
            schedulable: status != "SUSPENDED",
        });
    }
    let dag = Dag::from_edges(catalog::all_edges());
    (entries, dag)
}

/// Records a failed scheduled refresh that started at `started` (ms since the epoch): ERROR, or
/// SUSPENDED after too many in a row, and a history row with the message.
fn record_failure(relid: Oid, message: &str, started_ms: i64) {
    let max = guc::MAX_CONSECUTIVE_ERRORS.get();
    let status = spi::one::<String>(
        "WITH st AS (UPDATE pgtrickle.pgt_stream_tables \
            SET consecutive_errors = consecutive_errors + 1, failure_count = failure_count + 1, \
                last_error = $2, \
                status = CASE WHEN consecutive_errors + 1 >= $3 THEN 'SUSPENDED' ELSE 'ERROR' END, \
                updated_at = now() \
          WHERE pgt_relid = $1 RETURNING pgt_id, status), \
         h AS (INSERT INTO pgtrickle.pgt_refresh_history (pgt_id, action, initiated_by, started_at, finished_at, \
                   rows_inserted, rows_updated, rows_deleted, reason) \
               SELECT pgt_id, 'ERROR', 'SCHEDULER', to_timestamp($4 / 1000.0), clock_timestamp(), 0, 0, 0, $2 FROM st) \
         SELECT status FROM st",
        &[
            relid.into(),
            message.to_string().into(),
            max.into(),
            (started_ms as f64).into(),
        ],
    );
    if status.as_deref() == Some("SUSPENDED") {
        pgrx::warning!(
            "pg_trickle: stream table {} SUSPENDED after {max} failed refreshes in a row: {message} \
             (fix the cause, then call pgtrickle.refresh_stream_table() to resume)",
            catalog::relation_display(relid)
        );
    }
}

/// Keeps the newest `pg_trickle.history_retention` history rows of each stream table.
fn prune_history() {
    spi::exec(
        "DELETE FROM pgtrickle.pgt_refresh_history h \
          USING (SELECT st.pgt_id, (SELECT x.refresh_id FROM pgtrickle.pgt_refresh_history x \
                                     WHERE x.pgt_id = st.pgt_id ORDER BY x.refresh_id DESC OFFSET $1 LIMIT 1) AS cut \
                   FROM pgtrickle.pgt_stream_tables st) c \
          WHERE h.pgt_id = c.pgt_id AND h.refresh_id <= c.cut",
        &[(guc::HISTORY_RETENTION.get() as i64).into()],
    );
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_trickle_scheduler_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    use_die_for_sigterm();
    let Some(db) = worker_db(arg) else {
        return;
    };
    let ready = in_transaction(|| {
        if !extension_installed() {
            return false;
        }
        // Change capture is not refreshing: the WAL consumer runs even with scheduling off.
        crate::cdc::ensure_consumer_if_needed(db, false);
        if !guc::ENABLED.get() {
            return false;
        }
        spi::one::<bool>(
            "SELECT pg_catalog.pg_try_advisory_lock($1, $2)",
            &[LOCK_KEY.0.into(), LOCK_KEY.1.into()],
        )
        .unwrap_or(false)
    });
    if ready != Ok(true) {
        return;
    }
    // SAFETY: a NUL-terminated constant.
    unsafe { pg_sys::pgstat_report_appname(c"pg_trickle scheduler".as_ptr()) };
    let mut memory: HashMap<u32, Memory> = HashMap::new();
    let mut pruned = Instant::now();
    let mut consumer_checked = Instant::now() - Duration::from_secs(10);
    let mut sleep_ms: u64 = 0;
    let mut catalog_warned = false;
    loop {
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(sleep_ms))) {
            break;
        }
        let max_sleep = guc::SCHEDULER_INTERVAL_MS.get().max(10) as u64;
        sleep_ms = max_sleep;
        if BackgroundWorker::sighup_received() {
            // SAFETY: reloading the configuration file in the worker's main loop.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if !guc::ENABLED.get() {
            continue;
        }
        if pruned.elapsed() > Duration::from_secs(60) {
            pruned = Instant::now();
            let _ = in_transaction(prune_history);
        }
        let check_consumer = consumer_checked.elapsed() > Duration::from_secs(2);
        if check_consumer {
            consumer_checked = Instant::now();
        }
        let loaded = in_transaction(|| {
            if !extension_installed() {
                return None;
            }
            if let Some(catalog) = crate::security::older_catalog() {
                // New binaries, ALTER EXTENSION pg_trickle UPDATE not run yet: nothing is
                // refreshed on a catalog this library does not know.
                if !catalog_warned {
                    pgrx::warning!(
                        "pg_trickle: the library is version {}, but this database's pg_trickle catalog is version {catalog}: no stream table is refreshed until ALTER EXTENSION pg_trickle UPDATE runs",
                        crate::catalog::PLANNER
                    );
                }
                return Some(None);
            }
            if check_consumer {
                crate::cdc::ensure_consumer_if_needed(db, false);
            }
            Some(Some(load_entries()))
        });
        let (mut entries, dag) = match loaded {
            Ok(Some(Some(loaded))) => loaded,
            Ok(Some(None)) => {
                catalog_warned = true;
                continue;
            }
            // Extension dropped, or its catalog unreadable: stop; the launcher starts a new
            // scheduler if the extension comes back.
            Ok(None) | Err(_) => break,
        };
        memory.retain(|id, _| entries.iter().any(|e| e.relid == *id));
        for e in entries.iter_mut() {
            e.last_attempt_ms = memory.get(&e.relid).and_then(|m| m.last_attempt_ms);
        }
        let backoff: HashMap<u32, u32> = memory
            .iter()
            .filter(|(_, m)| m.backoff > 1)
            .map(|(id, m)| (*id, m.backoff))
            .collect();
        let now = now_ms();
        let due = tick::due(&entries, &dag, now, &backoff);
        if due.is_empty() {
            // Sleep until the next stream table falls due (at most max_sleep, to notice new
            // ones), at least 1 ms.
            if let Some(next) = tick::next_due_ms(&entries, &backoff) {
                sleep_ms = (next - now).clamp(1, max_sleep as i64) as u64;
            }
            continue;
        }
        // Look again right after this pass.
        sleep_ms = 0;
        // One transaction probes every due stream table, upstream first: one whose sources hold
        // no change and whose upstreams are not refreshed in this pass is only marked current.
        let work = in_transaction(|| {
            // Changes of WAL-captured sources reach the buffers through the slot: consume what
            // is committed so far, so the probes below see it.
            if crate::wal::slot_ready() {
                crate::wal::catch_up_now();
            }
            let mut refreshing: Vec<u32> = Vec::new();
            let mut idle: Vec<Oid> = Vec::new();
            for &id in &due {
                let upstream = dag.sources(id).iter().any(|s| refreshing.contains(s));
                if upstream || refresh::needs_refresh(Oid::from(id)) {
                    refreshing.push(id);
                } else {
                    idle.push(Oid::from(id));
                }
            }
            refresh::mark_current(&idle);
            refreshing
        })
        .unwrap_or(due);
        if guc::MAX_CONCURRENT_REFRESHES.get() > 1 {
            run_parallel(db, &work, &dag, &entries, &mut memory);
            continue;
        }
        for relid in work {
            refresh_here(&mut memory, &entries, relid);
            if BackgroundWorker::sigterm_received() {
                break;
            }
        }
    }
}

/// Refreshes one stream table in a transaction of its own; a failure is rolled back and
/// recorded. Returns its name when it was refreshed.
fn refresh_one(oid: Oid) -> Option<String> {
    let attempt = now_ms();
    let outcome = in_transaction(|| {
        // Dropped since the catalog was read: nothing to do.
        catalog::by_relid(oid)?;
        refresh::refresh(oid, Initiator::Scheduler);
        Some(catalog::relation_display(oid))
    });
    match outcome {
        Ok(d) => d,
        Err(message) => {
            let _ = in_transaction(|| record_failure(oid, &message, attempt));
            None
        }
    }
}

/// Refreshes `relid` in this process, then applies auto-backoff.
fn refresh_here(memory: &mut HashMap<u32, Memory>, entries: &[Entry], relid: u32) {
    memory.entry(relid).or_default().last_attempt_ms = Some(now_ms());
    let started = Instant::now();
    if let Some(display) = refresh_one(Oid::from(relid)) {
        after_refresh(memory, entries, relid, &display, started.elapsed());
    }
}

/// Auto-backoff after a successful refresh that took `took`.
fn after_refresh(
    memory: &mut HashMap<u32, Memory>,
    entries: &[Entry],
    relid: u32,
    display: &str,
    took: Duration,
) {
    let interval_ms = entries
        .iter()
        .find(|e| e.relid == relid)
        .and_then(|e| e.schedule.interval_secs())
        .map(|s| s as i64 * 1000);
    let (Some(interval_ms), true) = (interval_ms, guc::AUTO_BACKOFF.get()) else {
        return;
    };
    let took = took.as_millis() as i64;
    let mem = memory.entry(relid).or_default();
    let before = mem.backoff.max(1);
    mem.backoff = tick::next_backoff(before, took, interval_ms);
    if mem.backoff > before {
        pgrx::warning!(
            "pg_trickle: refreshing {display} took {took} ms of its {interval_ms} ms schedule; \
             refreshing it every {} ms until refreshes fit again (auto_backoff)",
            interval_ms * i64::from(mem.backoff)
        );
    }
}

/// `pg_trickle.max_concurrent_refreshes` > 1: the pass's refreshes run in refresh workers, at
/// most that many at once, each started once every stream table it reads that is also in the
/// pass has finished (so upstream still precedes downstream). Without a free worker slot, a
/// refresh runs here instead.
fn run_parallel(
    db: Oid,
    work: &[u32],
    dag: &Dag,
    entries: &[Entry],
    memory: &mut HashMap<u32, Memory>,
) {
    let max = guc::MAX_CONCURRENT_REFRESHES.get().max(1) as usize;
    let mut pending: Vec<u32> = work.to_vec();
    let mut running: Vec<(u32, pgrx::bgworkers::DynamicBackgroundWorker, Instant)> = Vec::new();
    let mut done: Vec<u32> = Vec::new();
    while !pending.is_empty() || !running.is_empty() {
        let mut k = 0;
        while k < pending.len() && running.len() < max {
            let id = pending[k];
            let ready = dag
                .sources(id)
                .iter()
                .all(|s| !work.contains(s) || done.contains(s));
            if !ready {
                k += 1;
                continue;
            }
            pending.remove(k);
            memory.entry(id).or_default().last_attempt_ms = Some(now_ms());
            let started = Instant::now();
            let started_worker = worker(REFRESH_WORKER_TYPE, "pg_trickle_refresh_worker_main")
                .set_argument(Some(pg_sys::Datum::from(id)))
                .set_extra(&db.to_u32().to_string())
                .load_dynamic();
            match started_worker {
                Ok(h) => running.push((id, h, started)),
                Err(_) => {
                    refresh_here(memory, entries, id);
                    done.push(id);
                }
            }
        }
        if running.is_empty() && !pending.is_empty() {
            // Nothing can start (cannot happen in a DAG); run the rest here, in order.
            for id in std::mem::take(&mut pending) {
                refresh_here(memory, entries, id);
            }
            break;
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(5))) {
            return;
        }
        let mut i = 0;
        while i < running.len() {
            if finished(&running[i].1) {
                let (id, _, started) = running.remove(i);
                let took = started.elapsed();
                done.push(id);
                // The worker recorded a failure itself; back off only after a success.
                let ok = in_transaction(|| {
                    spi::one::<bool>(
                        "SELECT consecutive_errors = 0 FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = $1",
                        &[Oid::from(id).into()],
                    )
                    .unwrap_or(false)
                        .then(|| catalog::relation_display(Oid::from(id)))
                });
                if let Ok(Some(display)) = ok {
                    after_refresh(memory, entries, id, &display, took);
                }
            } else {
                i += 1;
            }
        }
    }
}

/// Whether a dynamic worker has exited (not merely not started yet).
fn finished(h: &pgrx::bgworkers::DynamicBackgroundWorker) -> bool {
    matches!(
        h.pid(),
        Err(pgrx::bgworkers::BackgroundWorkerStatus::Stopped
            | pgrx::bgworkers::BackgroundWorkerStatus::PostmasterDied)
    )
}

/// `backend_type` of the workers that run one refresh each when refreshes run in parallel.
const REFRESH_WORKER_TYPE: &str = "pg_trickle refresh";

/// A refresh worker: refreshes the stream table `arg` (storage OID) of database `bgw_extra`
/// (OID), recording a failure like the scheduler does, and exits.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_trickle_refresh_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    use_die_for_sigterm();
    let relid = Oid::from(arg.value() as u32);
    let Ok(db) = BackgroundWorker::get_extra().parse::<u32>() else {
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(Oid::from(db)), None);
    // SAFETY: a NUL-terminated constant.
    unsafe { pg_sys::pgstat_report_appname(c"pg_trickle refresh".as_ptr()) };
    refresh_one(relid);
}
