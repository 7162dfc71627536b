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

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
// The 0.1.0 -> 0.2.0 upgrade script is also part of a fresh 0.2.0 install (see its header).
extension_sql_file!(
    "../sql/pg_trickle--0.1.0--0.2.0.sql",
    name = "v0_2_0",
    requires = ["bootstrap"]
);

// 0.2.0 -> 0.3.0 (WAL capture), likewise part of a fresh install.
extension_sql_file!(
    "../sql/pg_trickle--0.2.0--0.3.0.sql",
    name = "v0_3_0",
    requires = ["v0_2_0"]
);

// 0.3.0 -> 0.4.0 (per-stream-table cdc_mode): it replaces API functions, so in a fresh install it
// runs after pgrx created them (there it re-creates the same ones).
extension_sql_file!(
    "../sql/pg_trickle--0.3.0--0.4.0.sql",
    name = "v0_4_0",
    requires = [
        "v0_3_0",
        api::create_stream_table,
        api::create_or_replace_stream_table,
        api::alter_stream_table
    ]
);

// 0.4.0 -> 0.5.0 (TopK), likewise part of a fresh install.
extension_sql_file!(
    "../sql/pg_trickle--0.4.0--0.5.0.sql",
    name = "v0_5_0",
    requires = ["v0_4_0"]
);

// 0.5.0 -> 0.6.0 (internal stream tables, inlined views), likewise part of a fresh install, after
// pgrx created the function its event trigger calls (it re-creates the same one).
extension_sql_file!(
    "../sql/pg_trickle--0.5.0--0.6.0.sql",
    name = "v0_6_0",
    requires = ["v0_5_0", api::replan_for_views]
);

// 0.6.0 -> 0.7.0 (who runs what), likewise part of a fresh install, after pgrx created the
// functions it alters.
extension_sql_file!(
    "../sql/pg_trickle--0.6.0--0.7.0.sql",
    name = "v0_7_0",
    requires = [
        "v0_6_0",
        api::forget_dropped_relations,
        api::replan_for_views,
        api::refresh_stream_table,
        ddl::on_source_ddl,
        ddl::record_query_trees
    ]
);

/// Schema `pgtrickle` holds the SQL API and the catalog. It is created by the bootstrap script
/// (so that it belongs to the extension and DROP EXTENSION removes it); this declaration lets the
/// functions name it.
#[pg_schema]
mod pgtrickle {}

extension_sql!(
    "CREATE EVENT TRIGGER pgtrickle_sql_drop ON sql_drop EXECUTE FUNCTION pgtrickle._on_sql_drop();",
    name = "event_triggers",
    finalize
);

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
