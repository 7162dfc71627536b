//! Reads the raw WAL records of a stretch `[from, to)` and runs the core's gap check over them
//! ([`pg_trickle_core::gap`]): whether the stretch holds anything for the WAL consumer to decode.
//! No decoding context, no historic snapshot and no catalog access: decoding in a backend resets
//! its catalog caches and cached plans afterwards, reading records does not.

use crate::error::SpiOk;
use crate::spi;
use pg_trickle_core::gap::{GapCheck, Record};
use pg_trickle_core::wal_batch::full_xid;
use pgrx::pg_sys;
use std::collections::HashSet;

// The WAL reader calls these back: their C symbols (pgrx's `pg_sys` wrappers are Rust functions).
unsafe extern "C-unwind" {
    fn read_local_xlog_page_no_wait(
        state: *mut pg_sys::XLogReaderState,
        target_page: pg_sys::XLogRecPtr,
        req_len: std::ffi::c_int,
        target_rec: pg_sys::XLogRecPtr,
        cur_page: *mut std::ffi::c_char,
    ) -> std::ffi::c_int;
    fn wal_segment_open(
        state: *mut pg_sys::XLogReaderState,
        next_seg: pg_sys::XLogSegNo,
        tli: *mut pg_sys::TimeLineID,
    );
    fn wal_segment_close(state: *mut pg_sys::XLogReaderState);
}

/// A stretch longer than this is not read: it is decoded (reading it would cost about as much).
const MAX_SCAN_BYTES: u64 = 16 << 20;

/// The storage (tablespace, relfilenode) of every source captured from the WAL, as the catalog
/// says now. Read it *before* fixing the end of the stretch to check; [`is_clean`] adds what the
/// catalog says once the end is fixed. A rewrite that gives a source new storage and commits
/// after the end leaves the stretch's records naming the storage read first; one that commits
/// inside the stretch is a catalog change, which the check refuses anyway; one whose commit
/// record precedes the stretch but became visible only later (a commit waiting for a
/// synchronous standby) is visible to the second read before any writer could use its storage.
pub struct SourceStorage(HashSet<(u32, u32)>);

impl SourceStorage {
    pub fn read() -> SourceStorage {
        // SAFETY: reads the backend's database default tablespace, set at connection.
        let default_space = unsafe { pg_sys::MyDatabaseTableSpace }.to_u32();
        SourceStorage(
            spi::rows_p(
                "SELECT c.reltablespace, c.relfilenode FROM pg_catalog.pg_class c \
                   JOIN pgtrickle.pgt_sources s ON s.source_relid = c.oid WHERE s.capture_mode = 'WAL'",
                &[],
                |r| {
                    let space = r.get::<pg_sys::Oid>(1).spi_ok().map(|o| o.to_u32());
                    let node = r.get::<pg_sys::Oid>(2).spi_ok().map(|o| o.to_u32());
                    match (space, node) {
                        (Some(0), Some(n)) => Some((default_space, n)),
                        (Some(s), Some(n)) => Some((s, n)),
                        _ => None,
                    }
                },
            )
            .into_iter()
            .flatten()
            .collect(),
        )
    }
}

/// Where WAL is readable up to for a stretch ending at the insert position `upto`: an insert
/// position just past a page header (the previous record ended on the page boundary) is beyond
/// anything written, so the page boundary.
pub fn readable_end(upto: u64) -> u64 {
    let in_page = upto % u64::from(pg_sys::XLOG_BLCKSZ);
    // SAFETY: reads the server's WAL segment size, set at startup.
    let segment = u64::try_from(unsafe { pg_sys::wal_segment_size }).unwrap_or(u64::MAX);
    let header = if upto % segment == in_page { 40 } else { 24 };
    if in_page == header {
        upto - in_page
    } else {
        upto
    }
}

/// Whether `[from, to)` is clean (see [`pg_trickle_core::gap`]) for a consumer position whose
/// horizon is `horizon` (a full transaction id) and that transaction `own` recorded having
/// written no WAL before it, with `storage` the sources' storage. `false`
/// when it is not, and whenever that cannot be told (no horizon, a long stretch, a record that
/// cannot be read). Flushes the WAL to `to` (as decoding would).
pub fn is_clean(
    from: u64,
    to: u64,
    horizon: Option<u64>,
    own: Option<u64>,
    storage: &SourceStorage,
) -> bool {
    let Some(horizon) = horizon else {
        return false;
    };
    let to = readable_end(to);
    if to <= from {
        return true;
    }
    if to - from > MAX_SCAN_BYTES {
        return false;
    }
    let mut storage_now = SourceStorage::read();
    storage_now.0.extend(storage.0.iter().copied());
    let storage = &storage_now;
    // SAFETY: flushes the WAL up to a position already inserted (the reader reads flushed WAL).
    unsafe { pg_sys::XLogFlush(to) };
    let mut routine = pg_sys::XLogReaderRoutine {
        page_read: Some(read_local_xlog_page_no_wait),
        segment_open: Some(wal_segment_open),
        segment_close: Some(wal_segment_close),
    };
    // The no-wait page reader marks the end of flushed WAL here instead of waiting for more.
    let mut end_of_wal = Box::new(pg_sys::ReadLocalXLogPageNoWaitPrivate { end_of_wal: false });
    // SAFETY: allocates a WAL reader in the current memory context (the routine is copied into
    // it; `end_of_wal` outlives it); freed below, also on an error.
    let reader = unsafe {
        pg_sys::XLogReaderAllocate(
            pg_sys::wal_segment_size,
            std::ptr::null(),
            &mut routine,
            std::ptr::addr_of_mut!(*end_of_wal).cast(),
        )
    };
    if reader.is_null() {
        return false;
    }
    let clean =
        pgrx::PgTryBuilder::new(|| scan(reader, from, to, GapCheck::new(horizon, own), storage))
            .finally(|| {
                // SAFETY: allocated above and used by nothing else.
                unsafe { pg_sys::XLogReaderFree(reader) }
            })
            .execute();
    drop(end_of_wal);
    clean
}

fn scan(
    reader: *mut pg_sys::XLogReaderState,
    from: u64,
    to: u64,
    mut check: GapCheck,
    storage: &SourceStorage,
) -> bool {
    // SAFETY: reads the next full transaction id from shared memory. Every record of the stretch
    // was inserted before this, so its transaction ids are below it.
    let next_full = unsafe { pg_sys::ReadNextFullTransactionId() }.value;
    // SAFETY: the database this backend is connected to.
    let database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    // SAFETY: positions the reader at the first record starting at or after `from` (reading
    // flushed WAL only: at its end the no-wait page reader sets the private end_of_wal flag and
    // fails instead of waiting, and the read returns no record).
    let first = unsafe { pg_sys::XLogFindNextRecord(reader, from) };
    if first == 0 {
        pgrx::debug1!("pg_trickle: WAL from {from:X} to {to:X} is decoded: no record found");
        return false;
    }
    let mut at = first;
    while at < to {
        let mut error: *mut std::ffi::c_char = std::ptr::null_mut();
        // SAFETY: reads the record the reader is positioned at; the records of the stretch are
        // flushed (is_clean flushed to `to`, and a record that starts before `to` ends by it).
        let record = unsafe { pg_sys::XLogReadRecord(reader, &mut error) };
        if record.is_null() {
            pgrx::debug1!("pg_trickle: WAL from {from:X} to {to:X} is decoded: a record could not be read at {at:X}");
            return false;
        }
        // SAFETY: `record` was just read: the reader's decoded record is valid until the next read.
        let (classified, end) = unsafe {
            (
                classify(reader, next_full, database, storage),
                (*reader).EndRecPtr,
            )
        };
        if let Err(why) = check.push(classified) {
            pgrx::debug1!(
                "pg_trickle: WAL from {from:X} to {to:X} is decoded: {why:?} at {:X}",
                // SAFETY: the record just read.
                unsafe { (*reader).ReadRecPtr }
            );
            return false;
        }
        at = end;
    }
    true
}

/// What the record the reader just read says (see [`Record`]).
///
/// # Safety
/// `reader` has just read a record successfully.
unsafe fn classify(
    reader: *mut pg_sys::XLogReaderState,
    next_full: u64,
    database: u32,
    storage: &SourceStorage,
) -> Record {
    // SAFETY: the caller read a record; `record` is its decoded form.
    let decoded = unsafe { &*(*reader).record };
    let header = &decoded.header;
    let info = header.xl_info & !(pg_sys::XLR_INFO_MASK as u8);
    if header.xl_rmid == pg_sys::RmgrIds::RM_XACT_ID as u8 {
        let op = u32::from(info) & pg_sys::XLOG_XACT_OPMASK;
        if op != pg_sys::XLOG_XACT_COMMIT && op != pg_sys::XLOG_XACT_COMMIT_PREPARED {
            return Record::Other;
        }
        let mut parsed = pg_sys::xl_xact_parsed_commit::default();
        // SAFETY: a commit record's main data is an xl_xact_commit followed by what its xinfo
        // says; ParseCommitRecord only reads it.
        unsafe {
            pg_sys::ParseCommitRecord(info, decoded.main_data.cast(), &mut parsed);
        }
        let xid = if op == pg_sys::XLOG_XACT_COMMIT_PREPARED {
            parsed.twophase_xid
        } else {
            header.xl_xid
        };
        let subxacts = if parsed.nsubxacts > 0 && !parsed.subxacts.is_null() {
            // SAFETY: ParseCommitRecord points `subxacts` at `nsubxacts` ids inside the record.
            unsafe { std::slice::from_raw_parts(parsed.subxacts, parsed.nsubxacts as usize) }
                .iter()
                .map(|s| full_xid(s.into_inner(), next_full))
                .collect()
        } else {
            Vec::new()
        };
        // The commit names the transaction's database (always with wal_level = logical; else
        // when it carries invalidation messages or drops relations, and dbId is 0 otherwise).
        let named = parsed.dbId.to_u32();
        return Record::Commit {
            xid: full_xid(xid.into_inner(), next_full),
            subxacts,
            // Invalidation messages of this database: its catalog changed (DDL, a rewrite, ...).
            catalog_change: parsed.nmsgs > 0 && named == database,
            other_database: named != 0 && named != database,
        };
    }
    if header.xl_xid.into_inner() == 0 {
        return Record::Other;
    }
    // Only these records become changes when decoded (pruning, locking, freezing, ... do not).
    let op = u32::from(info) & pg_sys::XLOG_HEAP_OPMASK;
    let (changes_rows, truncate) = match u32::from(header.xl_rmid) {
        r if r == pg_sys::RmgrIds::RM_HEAP_ID => (
            matches!(
                op,
                pg_sys::XLOG_HEAP_INSERT
                    | pg_sys::XLOG_HEAP_DELETE
                    | pg_sys::XLOG_HEAP_UPDATE
                    | pg_sys::XLOG_HEAP_HOT_UPDATE
                    | pg_sys::XLOG_HEAP_CONFIRM
            ),
            op == pg_sys::XLOG_HEAP_TRUNCATE,
        ),
        r if r == pg_sys::RmgrIds::RM_HEAP2_ID => (op == pg_sys::XLOG_HEAP2_MULTI_INSERT, false),
        _ => (false, false),
    };
    let mut touches_source = truncate;
    let mut other_database = false;
    for block in 0..=decoded.max_block_id {
        let mut locator = pg_sys::RelFileLocator::default();
        let mut fork: pg_sys::ForkNumber::Type = 0;
        let mut blkno: pg_sys::BlockNumber = 0;
        // SAFETY: block ids up to max_block_id of the record just read; unused ones return false.
        let used = unsafe {
            pg_sys::XLogRecGetBlockTagExtended(
                reader,
                block as u8,
                &mut locator,
                &mut fork,
                &mut blkno,
                std::ptr::null_mut(),
            )
        };
        if !used {
            continue;
        }
        let db = locator.dbOid.to_u32();
        if db == database {
            touches_source |= changes_rows
                && storage
                    .0
                    .contains(&(locator.spcOid.to_u32(), locator.relNumber.to_u32()));
        } else if db != 0 {
            // Shared catalogs have database 0; anything else is another database's.
            other_database = true;
        }
    }
    Record::Data {
        xid: full_xid(header.xl_xid.into_inner(), next_full),
        touches_source,
        other_database,
    }
}
