//! Which capture each source uses, the moves between triggers and the WAL, and the WAL-consumer
//! worker that makes them and consumes the slot.
//!
//! **Trigger → WAL (hand-over), exact.** With the database's slot created earlier (consistent
//! point C), one transaction D takes the consumers' lock, then ACCESS EXCLUSIVE on the source,
//! reads the WAL insert position L, sets REPLICA IDENTITY FULL (old row images complete), drops
//! the row trigger and records `wal_from_lsn = L`. The lock waits for every transaction holding
//! ROW EXCLUSIVE on the source: those fired the trigger and committed before D got the lock,
//! so their commit records precede L. Every later writer waits for D, so it commits after D's
//! commit record, after L, and without the trigger. Hence "captured by the trigger" ⟺ "commit
//! LSN ≤ L": the consumer takes a transaction's changes of that source only when it committed
//! after L (all of those are after C, so the slot has them). No gap, no duplicate.
//!
//! **WAL → trigger (hand-back), exact.** Under the same two locks: consume everything committed
//! so far (every writer of the source has committed), create the row trigger, restore the
//! replica identity. Later writers fire the trigger; the consumer ignores the source from then on.
//!
//! **Fallback.** When continuity is lost (the slot dropped behind our back, `wal_level` no longer
//! logical), every WAL source goes back to its trigger and every stream table reading one is
//! recomputed in full at its next refresh (its frontier is cleared), with a WARNING and a
//! `health_check` entry.

use crate::error::raise;
use crate::error::SpiOk;
use crate::guc::{self, CdcMode};
use crate::scheduler::in_transaction;
use crate::spi;
use crate::wal;
use pg_trickle_core::ident::quote_ident;
use pg_trickle_core::mode::CaptureMode;
use pg_trickle_core::render;
use pg_trickle_core::PgtError;
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// `backend_type` of the WAL consumers in pg_stat_activity.
pub const WAL_CONSUMER_TYPE: &str = "pg_trickle wal consumer";
/// Advisory lock (classid, objid) a WAL consumer holds in its database (one per database).
const CONSUMER_LOCK: (i32, i32) = (0x7067_7472, 3);
/// How often the consumer looks at the catalog (hand-overs, hand-backs, fallbacks, the slot)
/// while it is consuming; a configuration reload makes it look at once.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// Consecutive failed reads of the slot after which the consumer falls back to triggers.
const MAX_CONSUME_FAILURES: u32 = 20;
/// How long after a fallback a source waits before it is moved to the WAL again.
const RETRY_AFTER_FALLBACK: &str = "1 minute";

pub fn wal_level_logical() -> bool {
    spi::one::<bool>(
        "SELECT pg_catalog.current_setting('wal_level') = 'logical'",
        &[],
    )
    .unwrap_or(false)
}

fn slot_exists() -> bool {
    spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)",
        &[wal::slot_name().into()],
    )
    .unwrap_or(false)
}

fn state_exists() -> bool {
    spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_wal_state WHERE slot_name = $1)",
        &[wal::slot_name().into()],
    )
    .unwrap_or(false)
}

/// Why a source cannot be captured from the WAL for now (a SQL `CASE` over `s.source_relid` and
/// its `pg_class` row `c`; NULL when nothing stands in the way): the server's or a reading stream
/// table's cdc_mode, or what the source is or who reads it.
macro_rules! blockers {
    () => {
        "CASE \
      WHEN pg_catalog.current_setting('pg_trickle.cdc_mode') = 'trigger' \
           THEN 'stays on triggers: pg_trickle.cdc_mode is trigger' \
      WHEN EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
                    WHERE d.source_relid = s.source_relid AND st.cdc_mode = 'trigger') \
           THEN 'stays on triggers: cdc_mode is trigger for stream table ' || \
                (SELECT string_agg(st.pgt_relid::regclass::text, ', ' ORDER BY st.pgt_id) \
                   FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
                  WHERE d.source_relid = s.source_relid AND st.cdc_mode = 'trigger') \
      WHEN c.relkind <> 'r' THEN 'stays on triggers: not a plain table' \
      WHEN c.relpersistence <> 'p' THEN 'stays on triggers: unlogged or temporary (not in the WAL)' \
      WHEN EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables x WHERE x.pgt_relid = s.source_relid) \
           THEN 'stays on triggers: a stream table' \
      WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = s.source_relid AND i.indisprimary) \
           THEN 'stays on triggers: no primary key' \
      WHEN EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
                    WHERE d.source_relid = s.source_relid AND st.effective_mode = 'IMMEDIATE') \
           THEN 'stays on triggers: read by an IMMEDIATE stream table' \
      END"
    };
}

/// Why a source cannot be captured from the WAL *now*, or NULL when it can: a blocker, or a
/// stream table reading it that is not populated yet.
const CANDIDATE_NOTE: &str = concat!(
    "coalesce(",
    blockers!(),
    ", CASE WHEN EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
                    WHERE d.source_relid = s.source_relid AND NOT st.is_populated) \
           THEN 'waits for the first refresh' END)"
);

/// Why a table (a source or about to be one) cannot be captured from the WAL, for cdc_mode
/// 'wal'; `None` when it can (perhaps after its stream tables' first refresh).
pub fn wal_unavailable(relid: Oid) -> Option<String> {
    if !wal_level_logical() {
        return Some("wal_level is not logical".into());
    }
    // The same rules as for sources already captured, asked of a table that may not be one yet.
    spi::one::<String>(
        concat!(
            "SELECT ",
            blockers!(),
            " FROM (SELECT $1::oid AS source_relid) s JOIN pg_catalog.pg_class c ON c.oid = s.source_relid"
        ),
        &[relid.into()],
    )
    // Said as a reason, not as what happens to a source ("stays on triggers: no primary key").
    .map(|why| {
        why.strip_prefix("stays on triggers: ")
            .map(str::to_string)
            .unwrap_or(why)
    })
}

/// Checks that a stream table's `cdc_mode` can hold for the base tables it reads (`tables`: OID
/// and display name), given the server's setting and the other stream tables reading them (the
/// stream table itself, if already in the catalog, with its new mode). `immediate`: it is
/// IMMEDIATE (maintained from its triggers' statements, so never from the WAL).
pub fn check_capture_mode(mode: CaptureMode, immediate: bool, tables: &[(Oid, String)]) {
    let wants_wal = mode == CaptureMode::Wal
        || (mode == CaptureMode::Auto && guc::CDC_MODE.get() == CdcMode::Wal);
    for (relid, display) in tables {
        if wants_wal {
            let reason = if immediate {
                Some("IMMEDIATE stream tables capture with triggers".to_string())
            } else {
                wal_unavailable(*relid)
            };
            if let Some(reason) = reason {
                raise(PgtError::WalCaptureUnavailable {
                    table: display.clone(),
                    reason,
                });
            }
        }
        // Row triggers asked for, or needed by IMMEDIATE maintenance.
        if mode == CaptureMode::Trigger || immediate {
            let others = spi::one::<String>(
                "SELECT string_agg(st.pgt_relid::regclass::text, ', ' ORDER BY st.pgt_id) \
                   FROM pgtrickle.pgt_dependencies d JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
                  WHERE d.source_relid = $1 AND st.cdc_mode = 'wal'",
                &[(*relid).into()],
            );
            if let Some(others) = others {
                raise(PgtError::CdcModeConflict {
                    wants: if immediate {
                        "refresh_mode IMMEDIATE (maintained from row triggers)".into()
                    } else {
                        "cdc_mode 'trigger'".into()
                    },
                    table: display.clone(),
                    others,
                });
            }
        }
    }
}

/// Sources on triggers that can move to the WAL now.
fn candidates() -> Vec<Oid> {
    spi::rows(
        &format!(
            "SELECT s.source_relid FROM pgtrickle.pgt_sources s JOIN pg_catalog.pg_class c ON c.oid = s.source_relid \
              WHERE s.capture_mode = 'TRIGGER' AND ({CANDIDATE_NOTE}) IS NULL \
                AND NOT (coalesce(s.capture_note, '') LIKE 'fell back%' \
                         AND s.capture_since > now() - interval '{RETRY_AFTER_FALLBACK}') \
              ORDER BY 1"
        ),
        &[],
        |r| r.get::<Oid>(1).spi_ok(),
    )
    .into_iter()
    .flatten()
    .collect()
}

/// Sources on the WAL that must go back to triggers: those that no longer qualify (cdc_mode now
/// trigger for the server or a stream table reading it, primary key dropped, now read by an
/// IMMEDIATE stream table).
fn to_hand_back() -> Vec<(Oid, String)> {
    spi::rows(
        concat!(
            "SELECT s.source_relid, ",
            blockers!(),
            " FROM pgtrickle.pgt_sources s JOIN pg_catalog.pg_class c ON c.oid = s.source_relid \
              WHERE s.capture_mode = 'WAL' AND (",
            blockers!(),
            ") IS NOT NULL ORDER BY 1"
        ),
        &[],
        |r| {
            (
                r.get::<Oid>(1).spi_ok(),
                r.get::<String>(2).spi_ok().unwrap_or_default(),
            )
        },
    )
    .into_iter()
    .filter_map(|(o, n)| o.map(|o| (o, n)))
    .collect()
}

/// Records on the sources that stay on triggers under auto why they do (nothing silent).
fn note_trigger_sources(wal_possible: Option<&str>) {
    spi::exec(
        &format!(
            "UPDATE pgtrickle.pgt_sources s SET capture_note = coalesce($1, {CANDIDATE_NOTE}) \
               FROM pg_catalog.pg_class c WHERE c.oid = s.source_relid AND s.capture_mode = 'TRIGGER' \
                AND NOT (coalesce(s.capture_note, '') LIKE 'fell back%') \
                AND s.capture_note IS DISTINCT FROM coalesce($1, {CANDIDATE_NOTE})"
        ),
        &[wal_possible.map(str::to_string).into()],
    );
}

/// Creates the database's slot and the consumer state (the slot's consistent point is where
/// consumption starts). Its own transaction, the slot creation first: a slot cannot be created
/// by a transaction that has an xid.
fn create_slot() {
    let slot = wal::slot_name();
    // A read-only SPI call: pgrx assigns a transaction id before statements it runs as updates.
    let lsn = spi::rows(
        "SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, 'pg_trickle_decoder')",
        &[slot.clone().into()],
        |r| r.get::<String>(1).spi_ok(),
    )
    .pop()
    .flatten()
    .expect("a new slot has a consistent point");
    spi::exec(
        "INSERT INTO pgtrickle.pgt_wal_state (slot_name, consumed_lsn) VALUES ($1, $2::pg_lsn) \
         ON CONFLICT (slot_name) DO UPDATE SET consumed_lsn = EXCLUDED.consumed_lsn, consumed_next_xid = NULL, \
             consumed_own_xid = NULL, consumed_at = NULL, changes_per_sec = 0, queue_peak = 0",
        &[slot.into(), lsn.into()],
    );
}

fn drop_slot() {
    // After any refresh reading the slot (they hold this lock while they consume): dropping
    // acquires the slot, and a refresh finding it acquired fails.
    wal::lock();
    spi::exec(
        "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
        &[wal::slot_name().into()],
    );
    if crate::scheduler::extension_installed() {
        spi::exec("DELETE FROM pgtrickle.pgt_wal_state", &[]);
    }
}

fn lock_source(relid: Oid) -> Option<String> {
    let quoted = crate::catalog::relation_quoted(relid)?;
    spi::exec(
        &format!("LOCK TABLE {quoted} IN ACCESS EXCLUSIVE MODE"),
        &[],
    );
    Some(quoted)
}

/// Waits for the refreshes in progress of every stream table reading `relid` (the refresh lock on
/// their storage): a refresh decides how its sources are captured when it starts, so none may
/// run across a change of capture.
fn lock_readers(relid: Oid) {
    let storages: Vec<Oid> = spi::rows(
        "SELECT DISTINCT st.pgt_relid FROM pgtrickle.pgt_dependencies d \
           JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) WHERE d.source_relid = $1 ORDER BY 1",
        &[relid.into()],
        |r| r.get::<Oid>(1).spi_ok(),
    )
    .into_iter()
    .flatten()
    .collect();
    for storage in storages {
        // SAFETY: the OID names a stream table's storage; this is the lock every refresh of it
        // takes first (released at the end of the transaction).
        unsafe { pg_sys::LockRelationOid(storage, pg_sys::ExclusiveLock as pg_sys::LOCKMODE) };
    }
}

/// How long a capture switch waits for a lock before it gives up (the next pass tries again):
/// a quarter of `deadlock_timeout`, at most 2 s. An idle transaction holding the source must not
/// stall everything that queues behind the ACCESS EXCLUSIVE request, and when a user's
/// statement and a switch wait for each other, the switch gives up before the user's session
/// runs the deadlock check, so the user's statement is never the one cancelled.
fn yield_locks() {
    spi::exec(
        "SELECT pg_catalog.set_config('lock_timeout', \
                least(2000, greatest(10, setting::int / 4))::text || 'ms', true) \
           FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout'",
        &[],
    );
}

/// Moves one source from its row trigger to the WAL (see the module doc), giving up on a lock
/// wait as [`yield_locks`] says.
fn hand_over(relid: Oid) {
    yield_locks();
    // The refresh locks first, as a refresh takes them (its storage, then the consumers' lock).
    lock_readers(relid);
    wal::lock();
    let Some(quoted) = lock_source(relid) else {
        return;
    };
    // Still a candidate now that nobody writes it?
    if !candidates().contains(&relid) {
        return;
    }
    let (identity, index) = spi::rows(
        "SELECT c.relreplident::text, (SELECT i.indexrelid FROM pg_catalog.pg_index i \
                                        WHERE i.indrelid = c.oid AND i.indisreplident) \
           FROM pg_catalog.pg_class c WHERE c.oid = $1",
        &[relid.into()],
        |r| {
            (
                r.get::<String>(1).spi_ok().unwrap_or_default(),
                r.get::<Oid>(2).spi_ok(),
            )
        },
    )
    .pop()
    .unwrap_or_default();
    let before = (identity != "f").then_some(identity);
    if before.is_some() {
        spi::exec(&format!("ALTER TABLE {quoted} REPLICA IDENTITY FULL"), &[]);
    }
    let cut = wal::insert_lsn();
    spi::exec(
        &format!(
            "DROP TRIGGER IF EXISTS {} ON {quoted}",
            quote_ident(render::ROW_TRIGGER)
        ),
        &[],
    );
    spi::exec(
        "UPDATE pgtrickle.pgt_sources SET capture_mode = 'WAL', \
             wal_from_lsn = '0/0'::pg_lsn + $2::int8::numeric, capture_since = now(), capture_note = NULL, \
             replica_identity_before = $3::\"char\", replica_identity_index = $4 \
         WHERE source_relid = $1",
        &[
            relid.into(),
            (cut as i64).into(),
            before.into(),
            index.into(),
        ],
    );
}

/// Puts the row trigger back on `relid` and restores the replica identity pg_trickle changed.
fn restore_trigger_capture(relid: Oid, quoted: &str, note: &str) {
    // The function and the TRUNCATE trigger stayed.
    spi::exec(&render::row_trigger_ddl(relid.to_u32(), quoted), &[]);
    restore_replica_identity(relid, quoted);
    spi::exec(
        "UPDATE pgtrickle.pgt_sources SET capture_mode = 'TRIGGER', wal_from_lsn = NULL, \
             capture_since = now(), capture_note = $2, replica_identity_before = NULL, replica_identity_index = NULL \
         WHERE source_relid = $1",
        &[relid.into(), note.to_string().into()],
    );
}

/// Restores the REPLICA IDENTITY a source had before pg_trickle set FULL (if it did).
pub fn restore_replica_identity(relid: Oid, quoted: &str) {
    let saved = spi::rows(
        "SELECT replica_identity_before::text, replica_identity_index::regclass::text \
           FROM pgtrickle.pgt_sources WHERE source_relid = $1 AND replica_identity_before IS NOT NULL",
        &[relid.into()],
        |r| {
            (
                r.get::<String>(1).spi_ok().unwrap_or_default(),
                r.get::<String>(2).spi_ok(),
            )
        },
    )
    .pop();
    let Some((before, index)) = saved else {
        return;
    };
    let clause = match (before.as_str(), index) {
        ("n", _) => "NOTHING".to_string(),
        ("i", Some(index)) => {
            // The index name without its schema (it is in the table's schema).
            let bare = spi::one::<String>(
                "SELECT relname::text FROM pg_catalog.pg_class WHERE oid = $1::regclass",
                &[index.into()],
            )
            .unwrap_or_default();
            format!("USING INDEX {}", quote_ident(&bare))
        }
        _ => "DEFAULT".to_string(),
    };
    spi::exec(
        &format!("ALTER TABLE {quoted} REPLICA IDENTITY {clause}"),
        &[],
    );
}

/// Moves one source back to its row trigger, exactly (see the module doc).
fn hand_back(relid: Oid, note: &str) {
    // The refresh locks first, as a refresh takes them (its storage, then the consumers' lock).
    lock_readers(relid);
    wal::lock();
    let Some(quoted) = lock_source(relid) else {
        return;
    };
    if wal::slot_ready() {
        wal::catch_up_now();
    }
    restore_trigger_capture(relid, &quoted, note);
}

/// Moves back to its row trigger, in the calling transaction, every WAL source a stream table
/// now pins to triggers: an IMMEDIATE one (maintained from its statements' captured rows) or one
/// with cdc_mode 'trigger'. `clean`: the calling transaction wrote nothing before the API call.
pub fn hand_back_pinned_sources(clean: bool) {
    let sources: Vec<(Oid, String)> = spi::rows(
        "SELECT s.source_relid, CASE WHEN bool_or(st.effective_mode = 'IMMEDIATE') \
                    THEN 'stays on triggers: read by an IMMEDIATE stream table' \
                    ELSE 'stays on triggers: cdc_mode is trigger for stream table ' || \
                         string_agg(st.pgt_relid::regclass::text, ', ' ORDER BY st.pgt_id) END \
           FROM pgtrickle.pgt_sources s \
           JOIN pgtrickle.pgt_dependencies d USING (source_relid) \
           JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
          WHERE s.capture_mode = 'WAL' AND (st.effective_mode = 'IMMEDIATE' OR st.cdc_mode = 'trigger') \
          GROUP BY 1 ORDER BY 1",
        &[],
        |r| {
            (
                r.get::<Oid>(1).spi_ok(),
                r.get::<String>(2).spi_ok().unwrap_or_default(),
            )
        },
    )
    .into_iter()
    .filter_map(|(o, n)| o.map(|o| (o, n)))
    .collect();
    for (relid, note) in &sources {
        hand_back(*relid, note);
    }
    // A transaction that wrote those sources before this call wrote changes that are not in the
    // WAL stream yet and will not be consumed now that the sources are back on their triggers:
    // the stream tables reading them recompute at their next refresh.
    if !sources.is_empty() && !clean {
        let relids: Vec<Oid> = sources.iter().map(|(r, _)| *r).collect();
        spi::exec(
            "UPDATE pgtrickle.pgt_stream_tables SET frontier = NULL, frontier_xid = NULL \
              WHERE effective_mode <> 'IMMEDIATE' \
                AND pgt_id IN (SELECT pgt_id FROM pgtrickle.pgt_dependencies WHERE source_relid = ANY($1))",
            &[relids.into()],
        );
    }
}

/// Continuity is lost: every WAL source goes back to triggers and every stream table reading
/// one is recomputed at its next refresh.
fn fall_back(reason: &str) {
    wal::lock();
    let sources: Vec<Oid> = spi::rows(
        "SELECT source_relid FROM pgtrickle.pgt_sources WHERE capture_mode = 'WAL' ORDER BY 1",
        &[],
        |r| r.get::<Oid>(1).spi_ok(),
    )
    .into_iter()
    .flatten()
    .collect();
    let note = format!(
        "fell back from WAL capture at {}: {reason}",
        spi::one::<String>("SELECT now()::text", &[]).unwrap_or_default()
    );
    for relid in &sources {
        if let Some(quoted) = lock_source(*relid) {
            restore_trigger_capture(*relid, &quoted, &note);
        }
    }
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET frontier = NULL, frontier_xid = NULL \
          WHERE pgt_id IN (SELECT pgt_id FROM pgtrickle.pgt_dependencies WHERE source_relid = ANY($1))",
        &[sources.clone().into()],
    );
    spi::exec("DELETE FROM pgtrickle.pgt_wal_state", &[]);
    pgrx::warning!(
        "pg_trickle: {} source(s) fell back from WAL to trigger capture ({reason}); the stream tables reading them are recomputed at their next refresh",
        sources.len()
    );
}

/// What the consumer found at the start of a pass.
struct Survey {
    installed: bool,
    sources: i64,
    wal_sources: i64,
    logical: bool,
    slot: bool,
    state: bool,
}

fn survey() -> Survey {
    if !crate::scheduler::extension_installed() {
        return Survey {
            installed: false,
            sources: 0,
            wal_sources: 0,
            logical: wal_level_logical(),
            slot: slot_exists(),
            state: false,
        };
    }
    let counts = spi::rows(
        "SELECT count(*), count(*) FILTER (WHERE capture_mode = 'WAL') FROM pgtrickle.pgt_sources",
        &[],
        |r| {
            (
                r.get::<i64>(1).spi_ok().unwrap_or(0),
                r.get::<i64>(2).spi_ok().unwrap_or(0),
            )
        },
    )
    .pop()
    .unwrap_or((0, 0));
    Survey {
        installed: true,
        sources: counts.0,
        wal_sources: counts.1,
        logical: wal_level_logical(),
        slot: slot_exists(),
        state: state_exists(),
    }
}

/// Whether this database needs a WAL consumer running (checked by its scheduler).
fn consumer_needed() -> bool {
    // A catalog from before 0.3.0 (extension not updated yet) has no WAL capture.
    if !spi::one::<bool>(
        "SELECT to_regclass('pgtrickle.pgt_wal_state') IS NOT NULL",
        &[],
    )
    .unwrap_or(false)
    {
        return false;
    }
    if !wal_level_logical() {
        return wal::any_wal_source();
    }
    let any_source = spi::one::<bool>("SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_sources)", &[])
        .unwrap_or(false);
    any_source && (guc::CDC_MODE.get() != CdcMode::Trigger || wal::any_wal_source())
}

/// Starts database `db`'s WAL consumer if it needs one and none runs.
/// `from_transaction`: called from a user transaction (see [`crate::scheduler::worker_db`]).
pub fn ensure_consumer_if_needed(db: Oid, from_transaction: bool) {
    if consumer_needed() {
        ensure_consumer(db, from_transaction);
    }
}

/// Starts the WAL consumer of the current database unless one runs.
fn ensure_consumer(db: Oid, from_transaction: bool) {
    let running = spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE datid = $1 AND backend_type = $2)",
        &[db.into(), WAL_CONSUMER_TYPE.into()],
    )
    .unwrap_or(true);
    if !running {
        let _ = crate::scheduler::worker(WAL_CONSUMER_TYPE, "pg_trickle_wal_consumer_main")
            .set_argument(Some(crate::scheduler::worker_arg(db, from_transaction)))
            .load_dynamic();
    }
}

/// Logs a failed step of the consumer (it retries on its next pass).
fn logged<R>(step: &str, r: Result<R, String>) -> Option<R> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            pgrx::log!("pg_trickle wal consumer: {step} failed: {e}");
            None
        }
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_trickle_wal_consumer_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    crate::scheduler::use_die_for_sigterm();
    if crate::scheduler::worker_db(arg).is_none() {
        return;
    }
    let ready = in_transaction(|| {
        spi::one::<bool>(
            "SELECT pg_catalog.pg_try_advisory_lock($1, $2)",
            &[CONSUMER_LOCK.0.into(), CONSUMER_LOCK.1.into()],
        )
        .unwrap_or(false)
    });
    if ready != Ok(true) {
        return;
    }
    // Its statements are few and simple: plan them once.
    let _ = logged(
        "setting plan_cache_mode",
        in_transaction(|| spi::exec("SET plan_cache_mode = force_generic_plan", &[])),
    );
    let mut idle_since: Option<Instant> = None;
    let mut failures = 0u32;
    let mut sleep_ms: u64 = 0;
    // When the last pass that went all the way to consuming looked at the catalog.
    let mut housekept: Option<Instant> = None;
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(sleep_ms))) {
        let reload = BackgroundWorker::sighup_received();
        if reload {
            // SAFETY: reloading the configuration file in the worker's main loop.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        let poll = guc::WAL_CONSUMER_INTERVAL_MS.get().max(1) as u64;
        sleep_ms = poll;
        if reload || housekept.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
            if !housekeeping(&mut sleep_ms, &mut idle_since, poll) {
                // An early end of the pass (nothing to consume, a fallback, a new slot): look
                // at the catalog again next time.
                housekept = None;
                if BackgroundWorker::sigterm_received() || sleep_ms == u64::MAX {
                    break;
                }
                continue;
            }
            housekept = Some(Instant::now());
        }
        let max_lag = u64::try_from(guc::WAL_MAX_LAG_MB.get()).unwrap_or(0) << 20;
        match in_transaction(|| wal::catch_up_step(max_lag)) {
            Ok(wal::Step::Consumed { more }) => {
                failures = 0;
                if more {
                    // A backlog: the next step right after this one (and the slot advanced).
                    sleep_ms = 0;
                }
            }
            Ok(wal::Step::OlderCatalog) => {
                // The scheduler warns about it; look again in a second.
                failures = 0;
                sleep_ms = sleep_ms.max(1000);
                continue;
            }
            Ok(wal::Step::TooLarge { reason }) => {
                let _ = logged("fallback", in_transaction(|| fall_back(&reason)));
                let _ = logged("dropping the slot", in_transaction(drop_slot));
                housekept = None;
                continue;
            }
            Ok(wal::Step::Behind { lag }) => {
                let reason = format!(
                    "the WAL consumer fell {} MB behind (pg_trickle.wal_max_lag is {} MB)",
                    lag >> 20,
                    max_lag >> 20
                );
                let _ = logged("fallback", in_transaction(|| fall_back(&reason)));
                let _ = logged("dropping the slot", in_transaction(drop_slot));
                housekept = None;
                continue;
            }
            Err(e) => {
                failures += 1;
                housekept = None;
                pgrx::log!("pg_trickle wal consumer: consuming failed ({failures} in a row): {e}");
                // The slot cannot be read (a decoding error that repeats): continuity is lost.
                if failures >= MAX_CONSUME_FAILURES {
                    failures = 0;
                    let reason = format!(
                        "reading the slot failed {MAX_CONSUME_FAILURES} times in a row: {e}"
                    );
                    let _ = logged("fallback", in_transaction(|| fall_back(&reason)));
                    let _ = logged("dropping the slot", in_transaction(drop_slot));
                    continue;
                }
            }
        }
        let _ = logged("advancing the slot", in_transaction(wal::advance_slot));
        if BackgroundWorker::sigterm_received() {
            break;
        }
    }
}

/// One look at the catalog: falls back, hands sources back and over, creates or drops the slot.
/// Returns whether the pass goes on to consume; when not, `sleep_ms` is how long to wait
/// (`u64::MAX`: the worker is not needed any more and exits).
fn housekeeping(sleep_ms: &mut u64, idle_since: &mut Option<Instant>, poll: u64) -> bool {
    let Some(s) = logged("survey", in_transaction(survey)) else {
        return false;
    };
    if !s.installed {
        if s.slot {
            let _ = logged("dropping the slot", in_transaction(drop_slot));
        }
        *sleep_ms = u64::MAX;
        return false;
    }
    let mode = guc::CDC_MODE.get();
    if s.wal_sources > 0 && !s.logical {
        let _ = logged(
            "fallback",
            in_transaction(|| fall_back("wal_level is no longer logical")),
        );
        return false;
    }
    if s.wal_sources > 0 && (!s.slot || !s.state) {
        let _ = logged(
            "fallback",
            in_transaction(|| fall_back(&format!("the slot {} was dropped", wal::slot_name()))),
        );
        return false;
    }
    if let Some(back) = logged("survey", in_transaction(to_hand_back)) {
        for (relid, note) in back {
            let _ = logged(
                "hand-back",
                in_transaction(|| {
                    yield_locks();
                    hand_back(relid, &note)
                }),
            );
        }
    }
    let wal_allowed = mode != CdcMode::Trigger && s.logical;
    let _ = logged(
        "notes",
        in_transaction(|| {
            note_trigger_sources(
                (!s.logical).then_some("stays on triggers: wal_level is not logical"),
            )
        }),
    );
    let moving = if wal_allowed {
        logged("survey", in_transaction(candidates)).unwrap_or_default()
    } else {
        Vec::new()
    };
    let ready = s.slot && s.state;
    if !moving.is_empty() && !ready {
        // A slot without state was left by an interrupted creation: start afresh.
        let made = if s.slot {
            in_transaction(drop_slot)
        } else {
            in_transaction(create_slot)
        };
        match made {
            // Hand over on the next pass, with the slot's state committed.
            Ok(()) => *sleep_ms = (*sleep_ms).min(10),
            Err(e) => {
                pgrx::log!("pg_trickle wal consumer: creating the slot failed: {e}");
                let note = format!("stays on triggers: the slot cannot be created: {e}");
                let _ = logged(
                    "notes",
                    in_transaction(|| note_trigger_sources(Some(&note))),
                );
                *sleep_ms = 5_000;
            }
        }
        return false;
    }
    for relid in moving {
        let _ = logged("hand-over", in_transaction(|| hand_over(relid)));
    }
    let Some(s) = logged("survey", in_transaction(survey)) else {
        return false;
    };
    if s.wal_sources == 0 {
        // Nothing to consume and nothing about to move: drop the slot (it would hold back
        // WAL), and exit after a while of this; the scheduler starts a consumer again when
        // needed.
        let moving_soon = wal_allowed
            && !logged("survey", in_transaction(candidates))
                .unwrap_or_default()
                .is_empty();
        if s.slot && !moving_soon {
            let _ = logged("dropping the slot", in_transaction(drop_slot));
        } else if s.slot && s.state {
            // Kept for a hand-over to come: nothing in the WAL so far is anyone's, so the
            // consumed position and the slot follow the insert position (else the first read
            // after the hand-over would decode all of it).
            let _ = logged("consuming", in_transaction(wal::catch_up_now));
            let _ = logged("advancing the slot", in_transaction(wal::advance_slot));
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if !consumer_needed_now(&s, wal_allowed) && since.elapsed() > Duration::from_secs(10) {
            *sleep_ms = u64::MAX;
            return false;
        }
        *sleep_ms = poll.max(1000);
        return false;
    }
    *idle_since = None;
    true
}

fn consumer_needed_now(s: &Survey, wal_allowed: bool) -> bool {
    s.wal_sources > 0 || (wal_allowed && s.sources > 0)
}
