//! WAL change capture, the consuming half: from the database's logical replication slot (our
//! output plugin, `output_plugin/`) to the same change-buffer rows the capture trigger writes.
//!
//! **Progress.** `pgtrickle.pgt_wal_state.consumed_lsn` says "every transaction whose commit
//! record starts before this LSN is in the buffers" (it is a WAL insert position, the end of a
//! record: a commit record starting exactly there was inserted after it was read). It is updated in the same transaction as the buffer
//! rows it covers, so it is exactly as durable as they are. The slot is only *peeked*; it is
//! advanced to `consumed_lsn` by the worker once that is committed ([`advance_slot`]), so a
//! consuming transaction that rolls back loses nothing: its changes are decoded again.
//!
//! **Cut-over.** A source captured from the WAL has `wal_from_lsn`: its changes in transactions
//! that committed after that LSN come from the slot, earlier ones were captured by its row
//! trigger (see [`crate::cdc`] for why that split is exact).
//!
//! **One snapshot per refresh.** A transaction is visible in a snapshot only after its commit
//! record is in the WAL. So a refresh takes its snapshot `S`, then the WAL insert position `L`,
//! flushes the WAL to `L` and consumes up to `L` *in its own transaction* ([`refresh_snapshot`]):
//! every transaction visible in `S` is then in the buffers, visible to the refresh's own later
//! commands, and the delta runs in `S` (advanced past those writes). All consumers (the worker,
//! refreshes, the scheduler's probe) serialise on one transaction-level advisory lock taken
//! before the snapshot, so no other consumer's rows can be committed but invisible to `S`.
//!
//! **Stages.** Decoded messages are assembled per transaction until its commit
//! ([`pg_trickle_core::wal_batch`], which also fills unchanged TOASTed values and compacts each
//! transaction's changes per table); committed changes are routed into one bounded
//! crossbeam channel per source, and a full queue is written out as one INSERT of arrays (every
//! value as its type's text, read back by the type's input function into the buffer column's
//! exact type). All stages run in the consuming backend: SPI is not usable from other threads.

use crate::capture;
use crate::error::SpiOk;
use crate::guc;
use crate::spi;
use crate::wal_gap::{readable_end, SourceStorage};
use crossbeam_channel::{bounded, Receiver, Sender};
use pg_trickle_core::compact::Change;
use pg_trickle_core::render::{self, SourceColumn};
use pg_trickle_core::wal_batch::{full_xid, AssembleError, Assembler, Image};
use pg_trickle_core::wal_format::{self, Value};
use pgrx::pg_sys::{self, Oid};
use std::collections::HashMap;

/// Advisory lock (classid, objid) every consumer of the slot holds for its transaction.
const WAL_LOCK: (i32, i32) = (0x7067_7472, 2);
/// Changes a source's queue holds before they are written out.
const QUEUE_CAPACITY: usize = 4096;

/// The slot of the current database (slots are per cluster, so the name carries the database).
pub fn slot_name() -> String {
    // SAFETY: reads the backend's own database OID.
    format!("pgtrickle_{}", unsafe { pg_sys::MyDatabaseId }.to_u32())
}

/// A source captured from the WAL.
struct WalSource {
    relid: u32,
    from_lsn: u64,
    cols: Vec<SourceColumn>,
    key: Vec<u16>,
}

/// A source's captured columns and its primary key's attribute numbers.
type Shape = (Vec<SourceColumn>, Vec<u16>);

thread_local! {
    /// Per source (OID, cut-over LSN, capture version): its shape, read once per backend (DDL
    /// that changes a source's buffer moves its capture version on; a new cut-over makes a new
    /// entry).
    static SOURCES: std::cell::RefCell<HashMap<(u32, u64, i32), Shape>> =
        std::cell::RefCell::new(HashMap::new());
}

fn wal_sources() -> Vec<WalSource> {
    let rows = spi::rows_p(
        "SELECT s.source_relid, pg_catalog.pg_wal_lsn_diff(s.wal_from_lsn, '0/0')::int8, s.capture_version \
           FROM pgtrickle.pgt_sources s WHERE s.capture_mode = 'WAL' ORDER BY 1",
        &[],
        |r| {
            (
                r.get::<Oid>(1).spi_ok().unwrap_or(pg_sys::InvalidOid),
                r.get::<i64>(2).spi_ok().unwrap_or(0) as u64,
                r.get::<i32>(3).spi_ok().unwrap_or(0),
            )
        },
    );
    rows.into_iter()
        .map(|(relid, from, version)| {
            let key = (relid.to_u32(), from, version);
            let (cols, pk) = SOURCES
                .with(|c| c.borrow().get(&key).cloned())
                .unwrap_or_else(|| {
                    let found = source_shape(relid);
                    SOURCES.with(|c| c.borrow_mut().insert(key, found.clone()));
                    found
                });
            WalSource {
                relid: relid.to_u32(),
                from_lsn: from,
                cols,
                key: pk,
            }
        })
        .collect()
}

/// A source's captured columns (those its buffer has) and its primary key's attribute numbers.
fn source_shape(relid: Oid) -> Shape {
    let (attnums, key) = spi::rows(
        "SELECT s.column_attnums, \
                (SELECT array_agg(k) FROM pg_catalog.pg_index i, unnest(i.indkey::int2[]) k \
                  WHERE i.indrelid = s.source_relid AND i.indisprimary) \
           FROM pgtrickle.pgt_sources s WHERE s.source_relid = $1",
        &[relid.into()],
        |r| {
            (
                r.get::<Vec<i16>>(1).spi_ok().unwrap_or_default(),
                r.get::<Vec<i16>>(2).spi_ok().unwrap_or_default(),
            )
        },
    )
    .pop()
    .unwrap_or_default();
    (
        capture::source_columns(relid)
            .into_iter()
            .filter(|c| attnums.contains(&c.attnum))
            .collect(),
        key.into_iter().map(|k| k as u16).collect(),
    )
}

/// Whether any source of this database is captured from the WAL.
pub fn any_wal_source() -> bool {
    spi::one_p::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_sources WHERE capture_mode = 'WAL')",
        &[],
    )
    .unwrap_or(false)
}

/// Whether the slot and the consumer's state exist (else consuming fails; the WAL consumer
/// falls back to triggers).
pub fn slot_ready() -> bool {
    spi::one_p::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_wal_state w JOIN pg_catalog.pg_replication_slots r USING (slot_name) \
          WHERE w.slot_name = $1)",
        &[slot_name().into()],
    )
    .unwrap_or(false)
}

/// Takes the consumers' lock for the rest of the transaction.
pub fn lock() {
    spi::exec_p(
        "SELECT pg_catalog.pg_advisory_xact_lock($1, $2)",
        &[WAL_LOCK.0.into(), WAL_LOCK.1.into()],
    );
}

/// The WAL insert position now.
pub fn insert_lsn() -> u64 {
    // SAFETY: reads the shared insert position under its spinlock.
    unsafe { pg_sys::GetXLogInsertRecPtr() }
}

/// What one consuming pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Consumed {
    pub changes: i64,
    pub transactions: i64,
}

/// Runs `f` as the bootstrap superuser (reading a slot needs the REPLICATION privilege, and a
/// refresh may be run by the stream table's owner).
fn as_superuser<R>(f: impl FnOnce() -> R) -> R {
    crate::security::as_role(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID), f)
}

/// How a consuming pass treats a stretch of WAL with nothing to decode in it
/// ([`crate::wal_gap::is_clean`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// A refresh, the scheduler, a hand-back: record the new position in the caller's
    /// transaction (one more row it writes) and decode only what is not clean.
    Caller,
    /// The worker: decode only what is not clean, and record a clean stretch only when it is long
    /// or the last record is old (an idle database then writes nothing most steps). `decode`:
    /// decode even a clean stretch (so the slot's restart point moves on), logging a
    /// running-transactions record first.
    Worker { decode: bool },
}

/// The consumer's progress: the consumed position, when it was recorded, and its horizon (the
/// next transaction id read after that position was fixed; NULL until a pass records one).
struct Progress {
    consumed: u64,
    horizon: Option<u64>,
    own: Option<u64>,
    recorded_ms_ago: f64,
}

fn progress(slot: &str) -> Option<Progress> {
    spi::rows_p(
        "SELECT pg_catalog.pg_wal_lsn_diff(consumed_lsn, '0/0')::int8, consumed_next_xid::text::int8, \
                consumed_own_xid::text::int8, \
                coalesce(extract(epoch FROM clock_timestamp() - consumed_at) * 1000, 1e9)::float8 \
           FROM pgtrickle.pgt_wal_state WHERE slot_name = $1",
        &[slot.into()],
        |r| Progress {
            consumed: r.get::<i64>(1).spi_ok().unwrap_or(0) as u64,
            horizon: r.get::<i64>(2).spi_ok().map(|h| h as u64),
            own: r.get::<i64>(3).spi_ok().map(|h| h as u64),
            recorded_ms_ago: r.get::<f64>(4).spi_ok().unwrap_or(1e9),
        },
    )
    .pop()
}

/// A clean stretch the worker still records: this long, or this long after the last record.
const RECORD_CLEAN_BYTES: u64 = 1 << 20;
const RECORD_CLEAN_MS: f64 = 1000.0;

/// Consumes every transaction that committed at or before `upto` and is not in the buffers
/// yet. The caller holds [`lock`] and read `storage` before fixing `upto`. Errors (no slot, a
/// decoding failure, a transaction larger than the consumer may hold: `54000`, the worker then
/// falls back) are raised.
fn consume_to(upto: u64, storage: &SourceStorage) -> Consumed {
    try_consume_to(upto, storage, Pass::Caller).unwrap_or_else(|TooLarge(reason)| {
        crate::error::raise(pg_trickle_core::PgtError::WalTransactionTooLarge(reason))
    })
}

/// [`consume_to`], with a transaction too large to hold returned rather than raised.
fn try_consume_to(upto: u64, storage: &SourceStorage, pass: Pass) -> Result<Consumed, TooLarge> {
    // As superuser, with a search_path nobody else controls (the caller's may be a stream
    // table owner's).
    spi::with_settings(&[("search_path", "pg_catalog, pg_temp")], || {
        as_superuser(|| consume_to_inner(upto, storage, pass))
    })
}

fn consume_to_inner(upto: u64, storage: &SourceStorage, pass: Pass) -> Result<Consumed, TooLarge> {
    let slot = slot_name();
    let own = own_xid_without_wal();
    let Some(Progress {
        consumed,
        horizon,
        own: recorder,
        recorded_ms_ago,
    }) = progress(&slot)
    else {
        pgrx::error!("pg_trickle: the WAL consumer's slot \"{slot}\" is not set up");
    };
    if upto <= consumed {
        return Ok(Consumed::default());
    }
    let sources = wal_sources();
    if sources.is_empty() {
        // Nothing is captured from the WAL: there is nothing to decode up to here.
        record_clean(upto, own);
        return Ok(Consumed::default());
    }
    let decode_anyway = matches!(pass, Pass::Worker { decode: true });
    if !decode_anyway && crate::wal_gap::is_clean(consumed, upto, horizon, recorder, storage) {
        let record = match pass {
            Pass::Caller => true,
            Pass::Worker { .. } => {
                upto - consumed >= RECORD_CLEAN_BYTES || recorded_ms_ago >= RECORD_CLEAN_MS
            }
        };
        if record {
            record_clean(upto, own);
        }
        return Ok(Consumed::default());
    }
    let upto = if decode_anyway
        || matches!(pass, Pass::Worker { .. })
            && insert_lsn().saturating_sub(consumed) > SNAPSHOT_AFTER_BYTES
    {
        // A running-transactions record inside what this pass reads: decoding it gives the slot
        // a new restart point, which confirming this pass's position (advance_slot) applies, so
        // the next read starts about here instead of at an older record (re-decoding everything
        // since). The bgwriter logs one every 15 s only.
        // SAFETY: logs the running transactions, as pg_log_standby_snapshot() does (the
        // consumer runs on a primary with wal_level = logical).
        unsafe { pg_sys::LogStandbySnapshot() };
        upto.max(insert_lsn().min(consumed + MAX_STEP_BYTES))
    } else {
        upto
    };
    // Logical decoding reads only flushed WAL, and with synchronous_commit off a visible commit
    // may not be flushed yet.
    // SAFETY: flushes the WAL up to a position already inserted.
    unsafe { pg_sys::XLogFlush(readable_end(upto)) };
    let relations: Vec<String> = sources.iter().map(|s| s.relid.to_string()).collect();
    let by_relid: HashMap<u32, &WalSource> = sources.iter().map(|s| (s.relid, s)).collect();
    let limit = u64::try_from(guc::WAL_TRANSACTION_MEMORY_KB.get()).unwrap_or(0) << 10;
    let mut assembler = Assembler::new(sources.iter().map(|s| (s.relid, s.key.clone())).collect())
        .with_limit(limit);
    // SAFETY: reads the next full transaction id from shared memory.
    let next_full = unsafe { pg_sys::ReadNextFullTransactionId() }.value;
    let mut queues: HashMap<u32, (Sender<QueuedChange>, Receiver<QueuedChange>)> = sources
        .iter()
        .map(|s| (s.relid, bounded(QUEUE_CAPACITY)))
        .collect();
    let mut out = Consumed::default();
    let mut peak = 0usize;
    let mut last_commit: Option<i64> = None;
    // Read through a cursor, FETCH_MESSAGES at a time: the decoded messages wait in the
    // function's tuplestore (on disk past work_mem), not in this process's memory; one
    // transaction's changes are held until its commit, up to the limit.
    let mut messages = Messages::open(slot, upto as i64, relations.join(","));
    while let Some(bytes) = messages.next() {
        let message = wal_format::decode(&bytes)
            .unwrap_or_else(|e| pgrx::error!("pg_trickle: undecodable WAL message: {e}"));
        let committed = match assembler.push(message) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e @ AssembleError::TransactionTooLarge { .. }) => {
                messages.close();
                return Err(TooLarge(e.to_string()));
            }
            Err(e) => pgrx::error!("pg_trickle: {e}"),
        };
        // `upto` and `consumed` are WAL insert positions: ends of records, so a commit record
        // starting exactly there was inserted after they were read and belongs to the next pass.
        if committed.commit_lsn < consumed || committed.commit_lsn >= upto {
            continue;
        }
        let xid = full_xid(committed.xid, next_full);
        let mut used = false;
        for (relid, changes) in committed.changes {
            let Some(source) = by_relid.get(&relid) else {
                continue;
            };
            // Committed before the cut-over: the row trigger captured it.
            if committed.commit_lsn <= source.from_lsn {
                continue;
            }
            let (tx, rx) = queues.get_mut(&relid).expect("a queue per source");
            for change in changes {
                if tx.is_full() {
                    out.changes += write(source, rx);
                }
                tx.send(QueuedChange { xid, change })
                    .expect("the receiver lives as long as the sender");
                peak = peak.max(tx.len());
            }
            used = true;
        }
        if used {
            out.transactions += 1;
            last_commit = Some(committed.commit_time);
        }
    }
    for source in &sources {
        if let Some((_, rx)) = queues.get(&source.relid) {
            out.changes += write(source, rx);
        }
    }
    spi::exec_p(
        "UPDATE pgtrickle.pgt_wal_state SET consumed_lsn = '0/0'::pg_lsn + $2::int8::numeric, \
             consumed_next_xid = $6::text::xid8, consumed_own_xid = $7::text::xid8, consumed_at = clock_timestamp(), \
             last_commit_time = coalesce('2000-01-01 00:00:00+00'::timestamptz + $3::int8 * interval '1 microsecond', last_commit_time), \
             changes_total = changes_total + $4, queue_peak = CASE WHEN $4 > 0 THEN $5 ELSE queue_peak END, batches = batches + 1, \
             changes_per_sec = CASE WHEN consumed_at IS NULL THEN 0 \
                 ELSE (SELECT CASE WHEN r < 0.01 THEN 0 ELSE r END FROM (SELECT 0.7 * changes_per_sec + 0.3 * $4 \
                     / greatest(extract(epoch FROM clock_timestamp() - consumed_at)::float8, 0.001) AS r) AS rate) END \
         WHERE slot_name = $1",
        &[
            slot_name().into(),
            (upto as i64).into(),
            last_commit.into(),
            out.changes.into(),
            (peak as i32).into(),
            next_full.to_string().into(),
            own.map(|o| o.to_string()).into(),
        ],
    );
    Ok(out)
}

/// This transaction's id when it has one and has written no WAL yet (checked before anything
/// here writes): all its records will follow the position it records.
fn own_xid_without_wal() -> Option<u64> {
    // SAFETY: reads this backend's end of WAL written in the current transaction (0 until it
    // writes) and its top-level transaction id, if assigned.
    let (written, xid) = unsafe {
        (
            pg_sys::XactLastRecEnd,
            pg_sys::GetTopFullTransactionIdIfAny().value,
        )
    };
    (written == 0 && xid != 0).then_some(xid)
}

/// Records `upto` as consumed with nothing decoded: nothing to capture committed before it since
/// the last position. Its horizon is read now, after `upto` was fixed.
/// `own`: [`own_xid_without_wal`], read before anything was written.
fn record_clean(upto: u64, own: Option<u64>) {
    // SAFETY: reads the next full transaction id from shared memory.
    let next_full = unsafe { pg_sys::ReadNextFullTransactionId() }.value;
    spi::exec_p(
        "UPDATE pgtrickle.pgt_wal_state SET consumed_lsn = '0/0'::pg_lsn + $2::int8::numeric, \
             consumed_next_xid = $3::text::xid8, consumed_own_xid = $4::text::xid8, \
             consumed_at = clock_timestamp() WHERE slot_name = $1",
        &[
            slot_name().into(),
            (upto as i64).into(),
            next_full.to_string().into(),
            own.map(|o| o.to_string()).into(),
        ],
    );
}

/// Messages fetched from the slot per round trip (see [`Messages`]).
const FETCH_MESSAGES: i64 = 1000;

/// The messages of one read of the slot, fetched [`FETCH_MESSAGES`] at a time through a cursor
/// that lives for the transaction (between fetches the consumer writes buffers through SPI).
struct Messages {
    name: Option<String>,
    batch: std::vec::IntoIter<Vec<u8>>,
}

impl Messages {
    fn open(slot: String, upto: i64, relations: String) -> Messages {
        let name = pgrx::spi::Spi::connect(|client| {
            client
                .open_cursor(
                    "SELECT data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, '0/0'::pg_lsn + $2::int8::numeric, \
                     NULL, 'relations', $3)",
                    &[slot.into(), upto.into(), relations.into()],
                )
                .detach_into_name()
        });
        Messages {
            name: Some(name),
            batch: Vec::new().into_iter(),
        }
    }

    fn next(&mut self) -> Option<Vec<u8>> {
        if let Some(m) = self.batch.next() {
            return Some(m);
        }
        let name = self.name.take()?;
        let (rows, name) = pgrx::spi::Spi::connect(|client| {
            let mut cursor = client
                .find_cursor(&name)
                .unwrap_or_else(|e| pgrx::error!("pg_trickle: {e}"));
            let rows: Vec<Vec<u8>> = cursor
                .fetch(FETCH_MESSAGES as libc::c_long)
                .unwrap_or_else(|e| pgrx::error!("pg_trickle: {e}"))
                .map(|r| r.get::<Vec<u8>>(1).spi_ok().unwrap_or_default())
                .collect();
            if rows.is_empty() {
                (rows, None) // dropping the cursor closes it
            } else {
                (rows, Some(cursor.detach_into_name()))
            }
        });
        self.name = name;
        self.batch = rows.into_iter();
        self.batch.next()
    }

    /// Closes the cursor before its end.
    fn close(&mut self) {
        if let Some(name) = self.name.take() {
            pgrx::spi::Spi::connect(|client| {
                drop(client.find_cursor(&name));
            });
        }
        self.batch = Vec::new().into_iter();
    }
}

/// One transaction holds more of a WAL source's changes than the consumer may hold in memory
/// (`pg_trickle.wal_transaction_memory`): the sources fall back to triggers (see `crate::cdc`).
pub struct TooLarge(pub String);

/// A change waiting in its source's queue.
struct QueuedChange {
    xid: u64,
    change: Change<Image>,
}

/// Writes out what `queue` holds as buffer rows of `source`; returns how many.
fn write(source: &WalSource, queue: &Receiver<QueuedChange>) -> i64 {
    let batch: Vec<QueuedChange> = queue.try_iter().collect();
    if batch.is_empty() {
        return 0;
    }
    let n = source.cols.len();
    let mut xids = Vec::with_capacity(batch.len());
    let mut actions = Vec::with_capacity(batch.len());
    let mut olds: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(batch.len()); n];
    let mut news: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(batch.len()); n];
    let value_of = |img: &Option<Image>, attnum: i16| -> Option<String> {
        img.as_ref().and_then(|img| {
            img.iter()
                .find(|(a, _)| i32::from(*a) == i32::from(attnum))
                .and_then(|(_, v)| match v {
                    Value::Text(t) => Some(t.clone()),
                    Value::Null | Value::Unchanged => None,
                })
        })
    };
    for QueuedChange { xid, change } in &batch {
        xids.push(Some(xid.to_string()));
        actions.push(Some(
            match (&change.old, &change.new) {
                (None, _) => "I",
                (Some(_), Some(_)) => "U",
                (Some(_), None) => "D",
            }
            .to_string(),
        ));
        for (i, c) in source.cols.iter().enumerate() {
            olds[i].push(value_of(&change.old, c.attnum));
            news[i].push(value_of(&change.new, c.attnum));
        }
    }
    let mut args: Vec<pgrx::datum::DatumWithOid> = vec![xids.into(), actions.into()];
    args.extend(olds.into_iter().map(|v| v.into()));
    args.extend(news.into_iter().map(|v| v.into()));
    spi::exec_p(&render::wal_insert_sql(source.relid, &source.cols), &args);
    batch.len() as i64
}

/// A snapshot registered for one refresh (see the module doc); [`RefreshSnapshot::release`]
/// unregisters it (a transaction abort does too).
pub struct RefreshSnapshot(pub pg_sys::Snapshot);

impl RefreshSnapshot {
    pub fn release(self) {
        // SAFETY: the snapshot was registered by `refresh_snapshot` in this transaction.
        unsafe { pg_sys::UnregisterSnapshot(self.0) };
    }
}

/// For a DIFFERENTIAL refresh that reads a source captured from the WAL: takes the consumers'
/// lock, then the refresh's snapshot, then consumes up to the WAL insert position taken after
/// it. The delta must run in the returned snapshot.
pub fn refresh_snapshot() -> RefreshSnapshot {
    lock();
    let storage = SourceStorage::read();
    // SAFETY: takes a fresh MVCC snapshot and registers it with the transaction's resource
    // owner (a copy: GetLatestSnapshot's own storage is reused by the next call).
    let snapshot = unsafe { pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot()) };
    consume_to(insert_lsn(), &storage);
    RefreshSnapshot(snapshot)
}

/// Consumes everything committed so far (the scheduler, before it probes; a source handed back
/// to its trigger).
pub fn catch_up_now() -> Consumed {
    lock();
    let storage = SourceStorage::read();
    consume_to(insert_lsn(), &storage)
}

/// WAL one step of the worker consumes at most: bounds the decoded changes it holds in memory
/// (all but those of one transaction larger than this).
const MAX_STEP_BYTES: u64 = 64 << 20;

/// WAL written since what is consumed past which a decoding pass of the worker logs a
/// running-transactions record (below it, an idle database would log one per step for nothing).
const SNAPSHOT_AFTER_BYTES: u64 = 4096;

/// WAL past the slot's restart point after which the worker decodes even a stretch with nothing
/// to capture in it: only decoding moves the restart point, and the slot holds the WAL after it.
const RESTART_LAG_BYTES: u64 = 16 << 20;

/// What one step of the worker found.
pub enum Step {
    /// Consumed up to the insert position or [`MAX_STEP_BYTES`] past what was consumed;
    /// `more`: WAL written before the step is still to be consumed.
    Consumed { more: bool },
    /// More than `max_lag` bytes of WAL are waiting (nothing was consumed).
    Behind { lag: u64 },
    /// A transaction holds more of the sources' changes than the consumer may hold in memory
    /// (nothing was consumed).
    TooLarge { reason: String },
    /// The database's pg_trickle catalog is older than this library (new binaries, ALTER
    /// EXTENSION pg_trickle UPDATE not run yet): nothing was consumed; the changes wait in the
    /// slot.
    OlderCatalog,
}

/// The worker's step: consumes what committed so far, at most [`MAX_STEP_BYTES`] of WAL past
/// what is consumed, unless more than `max_lag` bytes (0: no limit) are waiting.
pub fn catch_up_step(max_lag: u64) -> Step {
    // This library's statements read the catalog as this version made it.
    if crate::security::older_catalog().is_some() {
        return Step::OlderCatalog;
    }
    lock();
    // Where the WAL that matters starts: what is consumed, or the earliest cut-over when that is
    // later (while no source was on the WAL nothing moved `consumed_lsn`, and that WAL is not
    // lag).
    let Some((consumed, start, restart)) = spi::rows_p(
        "SELECT pg_catalog.pg_wal_lsn_diff(w.consumed_lsn, '0/0')::int8, \
                pg_catalog.pg_wal_lsn_diff(greatest(w.consumed_lsn, \
                    (SELECT min(s.wal_from_lsn) FROM pgtrickle.pgt_sources s WHERE s.capture_mode = 'WAL')), '0/0')::int8, \
                pg_catalog.pg_wal_lsn_diff(r.restart_lsn, '0/0')::int8 \
           FROM pgtrickle.pgt_wal_state w LEFT JOIN pg_catalog.pg_replication_slots r USING (slot_name) \
          WHERE w.slot_name = $1",
        &[slot_name().into()],
        |r| {
            (
                r.get::<i64>(1).spi_ok().unwrap_or(0) as u64,
                r.get::<i64>(2).spi_ok().unwrap_or(0) as u64,
                r.get::<i64>(3).spi_ok().map(|l| l as u64),
            )
        },
    )
    .pop() else {
        pgrx::error!("pg_trickle: the WAL consumer's slot \"{}\" is not set up", slot_name());
    };
    let storage = SourceStorage::read();
    let upto = insert_lsn();
    let lag = upto.saturating_sub(start);
    if max_lag > 0 && lag > max_lag {
        // WAL with nothing to capture in it is not lag (the worker records such a stretch only
        // every RECORD_CLEAN_BYTES or RECORD_CLEAN_MS); the pass below records it.
        let clean = progress(&slot_name()).is_some_and(|p| {
            crate::wal_gap::is_clean(p.consumed, upto, p.horizon, p.own, &storage)
        });
        if !clean {
            return Step::Behind { lag };
        }
    }
    let more = upto.saturating_sub(consumed) > MAX_STEP_BYTES;
    let decode = restart.is_some_and(|r| upto.saturating_sub(r) > RESTART_LAG_BYTES);
    match try_consume_to(
        if more {
            consumed + MAX_STEP_BYTES
        } else {
            upto
        },
        &storage,
        Pass::Worker { decode },
    ) {
        Ok(_) => Step::Consumed { more },
        Err(TooLarge(reason)) => Step::TooLarge { reason },
    }
}

/// Moves the slot to what is durably consumed, so PostgreSQL can recycle the WAL before it.
/// Run in a transaction after the consuming one committed. No decoding: the restart point and
/// catalog horizon the reads found (running-transactions records past the old position) are
/// applied by confirming the position, as a walsender does when its client acknowledges.
pub fn advance_slot() {
    lock();
    let Some(consumed) = spi::one_p::<i64>(
        "SELECT pg_catalog.pg_wal_lsn_diff(w.consumed_lsn, '0/0')::int8 \
           FROM pgtrickle.pgt_wal_state w JOIN pg_catalog.pg_replication_slots r USING (slot_name) \
          WHERE r.confirmed_flush_lsn < w.consumed_lsn",
        &[],
    ) else {
        return;
    };
    let name = std::ffi::CString::new(slot_name()).expect("a slot name has no NUL");
    // SAFETY: acquires the slot for this backend (erroring if another process has it: every
    // reader of it holds the consumers' lock, taken above); released below, also on error.
    unsafe { pg_sys::ReplicationSlotAcquire(name.as_ptr(), true, true) };
    pgrx::PgTryBuilder::new(|| {
        // SAFETY: the slot is acquired by this backend (MyReplicationSlot is it); confirming a
        // position whose transactions are all in the buffers, durably (committed before).
        unsafe { pg_sys::LogicalConfirmReceivedLocation(consumed as u64) }
    })
    .finally(|| {
        // SAFETY: releases the slot acquired above.
        unsafe { pg_sys::ReplicationSlotRelease() }
    })
    .execute();
}
