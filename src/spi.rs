//! Small helpers over pgrx's SPI for the catalog code.

use crate::error::SpiOk;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// Runs `sql` once (prepared, not kept) read-write: every statement of pg_trickle's sees what
/// committed before it started (a fresh snapshot per statement in READ COMMITTED), and none makes
/// the transaction take a transaction id before it writes. (pgrx's `Spi::run` and
/// `SpiClient::update` assign one first, and its `select` of a query string runs read-only,
/// in the calling statement's snapshot, while the transaction has none.)
fn run_once<R>(
    sql: &str,
    args: &[DatumWithOid],
    f: impl FnOnce(pgrx::spi::SpiTupleTable) -> R,
) -> R {
    Spi::connect_mut(|client| {
        let oids: Vec<pgrx::PgOid> = args.iter().map(|a| pgrx::PgOid::from(a.oid())).collect();
        let stmt = client.prepare_mut(sql, &oids).spi_ok();
        let t = client.select(&stmt, None, args).spi_ok();
        f(t)
    })
}

/// Runs a statement.
pub fn exec(sql: &str, args: &[DatumWithOid]) {
    run_once(sql, args, |_| ())
}

/// The first column of the first row, `None` for no row or NULL.
pub fn one<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    run_once(sql, args, |t| {
        if t.is_empty() {
            None
        } else {
            t.first().get_one::<T>().spi_ok()
        }
    })
}

/// All rows, each mapped by `f`.
pub fn rows<R>(
    sql: &str,
    args: &[DatumWithOid],
    mut f: impl FnMut(&pgrx::spi::SpiHeapTupleData) -> R,
) -> Vec<R> {
    run_once(sql, args, |t| t.map(|row| f(&row)).collect())
}

/// The non-NULL OIDs in the first column of every row.
pub fn oids(sql: &str, args: &[DatumWithOid]) -> Vec<pgrx::pg_sys::Oid> {
    rows(sql, args, |r| r.get::<pgrx::pg_sys::Oid>(1).spi_ok())
        .into_iter()
        .flatten()
        .collect()
}

/// Runs each statement of `stmts` (generated DDL).
pub fn exec_all(stmts: &[String]) {
    for s in stmts {
        exec(s, &[]);
    }
}

thread_local! {
    /// Statements prepared once per backend and kept (SPI_keepplan), keyed by SQL text and
    /// argument types. PostgreSQL's plan cache re-validates them after DDL on what they read.
    static PLANS: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<pgrx::spi::OwnedPreparedStatement>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// A kept statement's cache key: its SQL and argument types.
fn plan_key(sql: &str, args: &[DatumWithOid]) -> String {
    let mut key = sql.to_string();
    for a in args {
        key.push_str(&format!("\u{1}{}", a.oid().to_u32()));
    }
    key
}

/// The most statements kept per backend before the cache is emptied.
const MAX_PLANS: usize = 512;

/// Runs `sql` as a kept prepared statement (prepared on first use in this backend) and hands its
/// result to `f`. For the refresh path, where planning would otherwise cost more than executing.
pub fn with_prepared<R>(
    sql: &str,
    args: &[DatumWithOid],
    f: impl FnOnce(pgrx::spi::SpiTupleTable) -> R,
) -> R {
    let key = plan_key(sql, args);
    Spi::connect_mut(|client| {
        let cached = PLANS.with(|p| p.borrow().get(&key).cloned());
        let stmt = match cached {
            Some(s) => s,
            None => {
                let oids: Vec<pgrx::PgOid> =
                    args.iter().map(|a| pgrx::PgOid::from(a.oid())).collect();
                let s = std::rc::Rc::new(client.prepare_mut(sql, &oids).spi_ok().keep());
                PLANS.with(|p| {
                    let mut p = p.borrow_mut();
                    if p.len() >= MAX_PLANS {
                        p.clear();
                    }
                    p.insert(key, s.clone());
                });
                s
            }
        };
        // Prepared as mutating, the statement runs read-write (a fresh snapshot per statement in
        // READ COMMITTED) either way; `select` does not make pgrx assign a transaction id first
        // (`update` does): a transaction gets one only when it writes, so a transaction of
        // pg_trickle's that reads and writes nothing leaves no commit record in the WAL (see
        // pg_trickle_core::gap, which treats every commit of a transaction older than its
        // position as one to decode).
        let t = client.select(&*stmt, None, args).spi_ok();
        f(t)
    })
}

thread_local! {
    /// Plans for [`with_prepared_in`], kept (SPI_keepplan) like [`PLANS`].
    static RAW_PLANS: std::cell::RefCell<std::collections::HashMap<String, usize>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Like [`with_prepared`], but runs the statement in `snapshot` (advanced to the transaction's
/// current command, so it sees this transaction's earlier writes) instead of a new one, and
/// hands `f` the first row.
pub fn with_prepared_in<R>(
    snapshot: pgrx::pg_sys::Snapshot,
    sql: &str,
    args: &[DatumWithOid],
    f: impl FnOnce(Option<pgrx::spi::SpiHeapTupleData>) -> R,
) -> R {
    use pgrx::pg_sys;
    let key = plan_key(sql, args);
    Spi::connect_mut(|_client| {
        let plan = match RAW_PLANS.with(|p| p.borrow().get(&key).copied()) {
            Some(p) => p as pg_sys::SPIPlanPtr,
            None => {
                let text = std::ffi::CString::new(sql).expect("SQL has no NUL");
                let mut oids: Vec<pg_sys::Oid> = args.iter().map(|a| a.oid()).collect();
                // SAFETY: inside an SPI connection; SPI_prepare raises an ERROR for bad SQL and
                // SPI_keepplan moves the plan out of the connection's memory.
                let plan = unsafe {
                    let plan =
                        pg_sys::SPI_prepare(text.as_ptr(), oids.len() as i32, oids.as_mut_ptr());
                    if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                        pgrx::error!("pg_trickle: could not prepare a refresh statement");
                    }
                    plan
                };
                RAW_PLANS.with(|p| {
                    let mut p = p.borrow_mut();
                    if p.len() >= MAX_PLANS {
                        for (_, old) in p.drain() {
                            // SAFETY: plans in this map were kept by SPI_keepplan and are not
                            // in use (statements run one at a time).
                            unsafe { pg_sys::SPI_freeplan(old as pg_sys::SPIPlanPtr) };
                        }
                    }
                    p.insert(key, plan as usize);
                });
                plan
            }
        };
        let (mut values, mut nulls): (Vec<pg_sys::Datum>, Vec<std::ffi::c_char>) = args
            .iter()
            .map(|a| match a.datum() {
                Some(d) => (d.sans_lifetime(), b' ' as std::ffi::c_char),
                None => (pg_sys::Datum::from(0usize), b'n' as std::ffi::c_char),
            })
            .unzip();
        // SAFETY: the plan was prepared with these argument types; SPI_execute_snapshot with
        // read_only = false runs it in a copy of `snapshot` whose command id is advanced first,
        // and raises an ERROR on failure; the first row is read while the connection is open.
        unsafe {
            pg_sys::SPI_tuptable = std::ptr::null_mut();
            let rc = pg_sys::SPI_execute_snapshot(
                plan,
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
                snapshot,
                std::ptr::null_mut(),
                false,
                true,
                0,
            );
            if rc < 0 {
                pgrx::error!("pg_trickle: SPI_execute_snapshot failed ({rc})");
            }
            let table = pg_sys::SPI_tuptable;
            let row = if table.is_null() || (*table).numvals == 0 {
                None
            } else {
                pgrx::spi::SpiHeapTupleData::new((*table).tupdesc, *(*table).vals)
                    .ok()
                    .flatten()
            };
            f(row)
        }
    })
}

/// [`exec`] through a kept prepared statement.
pub fn exec_p(sql: &str, args: &[DatumWithOid]) {
    with_prepared(sql, args, |_| ())
}

/// [`one`] through a kept prepared statement.
pub fn one_p<T: FromDatum + IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    with_prepared(sql, args, |t| {
        if t.is_empty() {
            None
        } else {
            t.first().get_one::<T>().spi_ok()
        }
    })
}

/// [`rows`] through a kept prepared statement.
pub fn rows_p<R>(
    sql: &str,
    args: &[DatumWithOid],
    mut f: impl FnMut(&pgrx::spi::SpiHeapTupleData) -> R,
) -> Vec<R> {
    with_prepared(sql, args, |t| t.map(|row| f(&row)).collect())
}

/// Runs `f` with configuration parameters set for the current transaction only, restoring their
/// previous values afterwards (an error aborts the transaction, which restores them anyway).
pub fn with_settings<R>(settings: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let set = |name: &std::ffi::CStr, value: &std::ffi::CStr| {
        // SAFETY: both are NUL-terminated; set_config_option raises an ERROR for a bad name or
        // value, and GUC_ACTION_LOCAL confines the change to the current transaction.
        unsafe {
            pgrx::pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pgrx::pg_sys::GucContext::PGC_USERSET,
                pgrx::pg_sys::GucSource::PGC_S_SESSION,
                pgrx::pg_sys::GucAction::GUC_ACTION_LOCAL,
                true,
                0,
                false,
            );
        }
    };
    let saved: Vec<(std::ffi::CString, std::ffi::CString)> = settings
        .iter()
        .map(|(name, value)| {
            let name = std::ffi::CString::new(*name).expect("setting names have no NUL");
            // SAFETY: GetConfigOption returns the current value of a known setting as a string
            // owned by the GUC machinery; we copy it before changing the setting.
            let old = unsafe {
                std::ffi::CStr::from_ptr(pgrx::pg_sys::GetConfigOption(name.as_ptr(), false, false))
                    .to_owned()
            };
            set(
                &name,
                &std::ffi::CString::new(*value).expect("setting values have no NUL"),
            );
            (name, old)
        })
        .collect();
    let out = f();
    for (name, old) in saved {
        set(&name, &old);
    }
    out
}

/// Runs `f` in a subtransaction: when it returns `Err`, or raises an ERROR (caught here, its
/// message returned), everything it did is rolled back; when it returns `Ok`, kept. Must not be
/// called inside an open SPI connection.
pub fn in_subtransaction<R>(f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    use pgrx::pg_sys;
    // SAFETY: starts a subtransaction of the current transaction (the pattern PL/pgSQL uses for
    // EXCEPTION blocks); every path below ends it and restores the memory context and resource
    // owner it started in.
    let (context, owner) = unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        (context, owner)
    };
    let f = std::panic::AssertUnwindSafe(f);
    let result = pgrx::PgTryBuilder::new(move || {
        let f = f;
        (f.0)().map_err(Failed::Message)
    })
    .catch_others(|e| {
        let report = match &e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r) => r,
            pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport,
        };
        // A cancel, a timeout, a deadlock, a serialization failure or an out-of-resources error
        // is not about the attempt: raised again once the subtransaction is rolled back.
        let code = report.sql_error_code() as i32;
        let class = [
            (code & 0x3F) as u8 + b'0',
            ((code >> 6) & 0x3F) as u8 + b'0',
        ];
        if matches!(&class, b"57" | b"53" | b"40") {
            Err(Failed::Raise(Box::new(e)))
        } else {
            Err(Failed::Message(report.message().to_string()))
        }
    })
    .execute();
    // SAFETY: ends the subtransaction begun above (kept on success, rolled back otherwise).
    unsafe {
        if result.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    }
    result.map_err(|f| match f {
        Failed::Message(m) => m,
        Failed::Raise(e) => e.rethrow(),
    })
}

/// How [`in_subtransaction`]'s attempt failed.
enum Failed {
    Message(String),
    Raise(Box<pgrx::pg_sys::panic::CaughtError>),
}
