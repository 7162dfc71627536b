//! A ProcessUtility hook so that `DROP DATABASE` is not blocked by the database's scheduler and
//! WAL consumer: they are asked to exit (SIGTERM) before PostgreSQL checks for other sessions, which it
//! waits up to five seconds to end; and so that `ALTER COLUMN ... TYPE` of a column a stream
//! table uses is refused with a clear error (see `crate::ddl`).

use crate::cdc::WAL_CONSUMER_TYPE;
use crate::error::SpiOk;
use crate::scheduler::SCHEDULER_TYPE;
use crate::spi;
use pgrx::pg_sys;
use pgrx::prelude::*;

static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

unsafe extern "C-unwind" {
    /// PostgreSQL's `standard_ProcessUtility` itself (the hook's signature), not pgrx's wrapper.
    #[link_name = "standard_ProcessUtility"]
    fn standard_process_utility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const std::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

pub fn install() {
    // SAFETY: called once from _PG_init in the postmaster (shared_preload_libraries), before any
    // backend runs; the previous hook is kept and called.
    unsafe {
        PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// Asks the scheduler and the WAL consumer of database `name` to exit, and waits (up to five
/// seconds) for both (either may be reading the slot): PostgreSQL refuses to drop a database
/// while a backend is using one of its replication slots, and drops its idle slots itself.
fn stop_workers_of(name: &str) {
    let pids = |types: &[&str]| {
        spi::exec("SELECT pg_catalog.pg_stat_clear_snapshot()", &[]);
        spi::rows(
            "SELECT pid FROM pg_catalog.pg_stat_activity WHERE backend_type = ANY($1) AND datname = $2",
            &[
                types.iter().map(|t| t.to_string()).collect::<Vec<_>>().into(),
                name.to_string().into(),
            ],
            |r| r.get::<i32>(1).spi_ok().unwrap_or(0),
        )
    };
    // A worker registered just before (a scheduler starting the WAL consumer, the launcher's
    // scan) may start after the first signal: every one seen is signalled, and the database
    // counts as quiet only after 250 ms with no worker and no active slot.
    let mut quiet = 0;
    for _ in 0..500 {
        let running = pids(&[SCHEDULER_TYPE, WAL_CONSUMER_TYPE]);
        for &pid in running.iter().filter(|p| **p > 0) {
            // SAFETY: signalling a PostgreSQL background worker of this server (same OS
            // user); a SIGTERM makes it leave its loop and exit.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let slot_active = spi::one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE database = $1 AND active)",
            &[name.to_string().into()],
        )
        .unwrap_or(false);
        quiet = if !slot_active && running.is_empty() {
            quiet + 1
        } else {
            0
        };
        if quiet >= 25 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether a DROP EXTENSION statement names pg_trickle.
///
/// # Safety
/// `drop` points to a valid DropStmt of extensions (its objects are String nodes).
unsafe fn drops_pg_trickle(drop: *mut pg_sys::DropStmt) -> bool {
    // SAFETY: for OBJECT_EXTENSION the parser makes `objects` a list of String nodes.
    unsafe {
        pgrx::PgList::<pg_sys::String>::from_pg((*drop).objects)
            .iter_ptr()
            .any(|s| {
                !s.is_null() && std::ffi::CStr::from_ptr((*s).sval).to_bytes() == b"pg_trickle"
            })
    }
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: pstmt is the statement PostgreSQL is about to run; its utilityStmt is a Node.
    unsafe {
        let stmt = (*pstmt).utilityStmt;
        if !stmt.is_null() && (*stmt).type_ == pg_sys::NodeTag::T_DropdbStmt {
            let drop = stmt as *mut pg_sys::DropdbStmt;
            if !(*drop).dbname.is_null() {
                let name = std::ffi::CStr::from_ptr((*drop).dbname)
                    .to_string_lossy()
                    .into_owned();
                stop_workers_of(&name);
            }
        }
        if !stmt.is_null() && (*stmt).type_ == pg_sys::NodeTag::T_AlterTableStmt {
            crate::ddl::refuse_retyping(stmt as *mut pg_sys::AlterTableStmt);
        }
        let mut dropping_extension = false;
        if !stmt.is_null() && (*stmt).type_ == pg_sys::NodeTag::T_DropStmt {
            let drop = stmt as *mut pg_sys::DropStmt;
            if (*drop).removeType == pg_sys::ObjectType::OBJECT_EXTENSION && drops_pg_trickle(drop)
            {
                // The workers read pg_trickle's catalog all the time; DROP EXTENSION takes its
                // tables one by one and would deadlock with them.
                let name =
                    std::ffi::CStr::from_ptr(pg_sys::get_database_name(pg_sys::MyDatabaseId))
                        .to_string_lossy()
                        .into_owned();
                stop_workers_of(&name);
                dropping_extension = true;
            }
        }
        let next = PREV_PROCESS_UTILITY.unwrap_or(standard_process_utility);
        next(
            pstmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        );
        if dropping_extension {
            // The slot is not part of the extension: drop it with it (it would hold back WAL).
            // Not transactional: if this transaction rolls back, the consumer falls back to
            // triggers for the lost slot.
            spi::exec(
                "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots \
                  WHERE slot_name = $1 AND NOT active",
                &[crate::wal::slot_name().into()],
            );
        }
    }
}
