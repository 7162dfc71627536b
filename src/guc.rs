//! Configuration parameters (documented in docs/CONFIGURATION.md).

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// `pg_trickle.enabled`: whether the scheduler refreshes stream tables in the background.
pub static ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
/// `pg_trickle.scheduler_interval_ms`: the longest the scheduler sleeps before reading the
/// catalog again (it wakes earlier when a stream table falls due).
pub static SCHEDULER_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// `pg_trickle.max_consecutive_errors`: failed scheduled refreshes in a row before a stream
/// table is SUSPENDED.
pub static MAX_CONSECUTIVE_ERRORS: GucSetting<i32> = GucSetting::<i32>::new(5);
/// `pg_trickle.auto_backoff`: stretch a schedule (up to 8×) while refreshes overrun it.
pub static AUTO_BACKOFF: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `pg_trickle.max_concurrent_refreshes`: refreshes of one database's scheduler pass that run at
/// once (in refresh workers when more than 1).
pub static MAX_CONCURRENT_REFRESHES: GucSetting<i32> = GucSetting::<i32>::new(1);

/// `pg_trickle.history_retention`: refresh history rows kept per stream table.
pub static HISTORY_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// `pg_trickle.cdc_mode`: how sources' changes are captured, server- or database-wide (a
/// stream table's own cdc_mode can keep its sources on triggers, not override `trigger` here).
#[derive(pgrx::PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum CdcMode {
    /// Row-level triggers writing the change buffers.
    #[name = c"trigger"]
    Trigger,
    /// Logical decoding for every base-table source (creating a stream table whose source cannot
    /// be captured from the WAL fails, saying why).
    #[name = c"wal"]
    Wal,
    /// WAL where possible (wal_level = logical, a primary key), triggers otherwise.
    #[name = c"auto"]
    Auto,
}
pub static CDC_MODE: GucSetting<CdcMode> = GucSetting::<CdcMode>::new(CdcMode::Auto);

/// `pg_trickle.wal_consumer_interval_ms`: how often the WAL consumer reads the slot.
pub static WAL_CONSUMER_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(100);

/// `pg_trickle.wal_max_lag` (MB): WAL the consumer may fall behind by before its sources fall
/// back to triggers (0: never).
pub static WAL_MAX_LAG_MB: GucSetting<i32> = GucSetting::<i32>::new(1024);

/// `pg_trickle.wal_transaction_memory` (kB): the most of one transaction's changes the WAL
/// consumer holds in memory before its sources fall back to triggers (0: no limit).
pub static WAL_TRANSACTION_MEMORY_KB: GucSetting<i32> = GucSetting::<i32>::new(262_144);

/// `pg_trickle.immediate_refresh`: set (transaction-locally) by the IMMEDIATE statement trigger
/// around its call of refresh_stream_table, so the refresh is recorded as IMMEDIATE. Internal.
pub static IMMEDIATE_REFRESH: GucSetting<bool> = GucSetting::<bool>::new(false);

pub fn register() {
    GucRegistry::define_enum_guc(
        c"pg_trickle.cdc_mode",
        c"How stream tables capture their sources' changes: trigger, wal or auto.",
        c"auto (default): every source starts on triggers and moves to WAL-based capture once wal_level = logical, it has a primary key and its stream tables are populated. wal: the same, and creating a stream table whose base tables cannot be captured from the WAL fails. trigger: triggers only (WAL sources move back), whatever the stream tables' own cdc_mode says. A source also stays on triggers while a stream table reading it has cdc_mode 'trigger'.",
        &CDC_MODE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_trickle.wal_consumer_interval_ms",
        c"How often the WAL consumer reads the replication slot, in milliseconds.",
        c"Refreshes consume the slot themselves before they read a change buffer, so this bounds the consumer's lag, not staleness.",
        &WAL_CONSUMER_INTERVAL_MS,
        1,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_trickle.wal_max_lag",
        c"WAL the consumer may fall behind by before every WAL-captured source falls back to triggers (0: never).",
        c"Measured at each consumer pass from what is consumed to the WAL insert position. A fallback recomputes the stream tables reading those sources once and drops the slot (freeing the WAL it holds); the sources move to the WAL again after a minute.",
        &WAL_MAX_LAG_MB,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    GucRegistry::define_int_guc(
        c"pg_trickle.wal_transaction_memory",
        c"The most of one transaction's captured changes the WAL consumer holds in memory (0: no limit).",
        c"A transaction is written to the change buffers at its commit, compacted; one whose changes to WAL-captured sources need more memory than this (a rough measure of their text) is not held: the sources fall back to triggers and the stream tables reading them recompute once.",
        &WAL_TRANSACTION_MEMORY_KB,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_bool_guc(
        c"pg_trickle.immediate_refresh",
        c"Internal: set by the IMMEDIATE refresh trigger.",
        c"",
        &IMMEDIATE_REFRESH,
        GucContext::Userset,
        GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_bool_guc(
        c"pg_trickle.enabled",
        c"Whether the pg_trickle scheduler refreshes stream tables in the background.",
        c"Off: stream tables refresh only when refresh_stream_table() is called. Can be set per database (ALTER DATABASE ... SET, read when the database's scheduler starts) or in the configuration file (read on reload).",
        &ENABLED,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_trickle.scheduler_interval_ms",
        c"The longest the scheduler sleeps before reading the catalog again (milliseconds).",
        c"The scheduler wakes when the next stream table falls due; this bounds how long a new stream table or a changed schedule waits to be noticed.",
        &SCHEDULER_INTERVAL_MS,
        10,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_trickle.max_consecutive_errors",
        c"Failed scheduled refreshes in a row after which a stream table is SUSPENDED.",
        c"A SUSPENDED stream table is skipped by the scheduler until refresh_stream_table() or alter_stream_table() resumes it.",
        &MAX_CONSECUTIVE_ERRORS,
        1,
        1_000_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_trickle.max_concurrent_refreshes",
        c"Refreshes of one scheduler pass that may run at the same time (1: one after another, in the scheduler).",
        c"More than 1: each refresh runs in a dynamic background worker, started once the stream tables it reads that are in the same pass have finished; each worker takes a slot of max_worker_processes.",
        &MAX_CONCURRENT_REFRESHES,
        1,
        64,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_trickle.history_retention",
        c"Refresh history rows kept per stream table (older ones are pruned by the scheduler every minute).",
        c"",
        &HISTORY_RETENTION,
        0,
        100_000_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pg_trickle.auto_backoff",
        c"Stretch a stream table's schedule (up to 8x) while its refreshes take more than 95% of it.",
        c"",
        &AUTO_BACKOFF,
        GucContext::Sighup,
        GucFlags::default(),
    );
}
