//! pg_trickle: stream tables for PostgreSQL. This crate is the boundary to PostgreSQL (SPI,
//! triggers, catalog); the logic that needs no database lives in `pg_trickle_core`.

use pgrx::prelude::*;

mod analyze;
mod api;
mod capture;
mod catalog;
mod cdc;
mod ddl;
mod error;
mod guc;
mod hooks;
mod nested;
mod plan;
mod refresh;
mod scheduler;
mod security;
mod spi;
mod topk;
mod wal;
mod wal_gap;
mod window;

::pgrx::pg_module_magic!(name, version);

/// Registers the configuration parameters; when loaded from `shared_preload_libraries`, also the
/// launcher of the schedulers and the DROP DATABASE hook.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::register();
    // SAFETY: called while loading the library; the prefix is a static NUL-terminated string.
    // Unknown `pg_trickle.*` settings are errors from now on (placeholders are removed).
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"pg_trickle".as_ptr()) };
    // SAFETY: reads a flag PostgreSQL sets while loading shared_preload_libraries.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        scheduler::register_launcher();
        hooks::install();
    }
}

// A fresh install: the catalog (one script, first), the functions pgrx generates, then what needs
// them (event triggers, rights). Upgrades from earlier versions run sql/pg_trickle--<old>--<new>.sql
// instead (installed beside the install script); tests/tests/upgrade.rs checks that a fresh and
// an upgraded install end with the same catalog.
extension_sql_file!("../sql/catalog.sql", name = "catalog", bootstrap);
extension_sql_file!(
    "../sql/catalog_finalize.sql",
    name = "catalog_finalize",
    finalize
);

/// Schema `pgtrickle` holds the SQL API and the catalog. It is created by `sql/catalog.sql` (so
/// that it belongs to the extension and DROP EXTENSION removes it); this declaration lets the
/// functions name it.
#[pg_schema]
mod pgtrickle {}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'pg_trickle'",
            "wal_level = logical",
            "max_worker_processes = 32",
        ]
    }
}
