//! DDL on the sources of stream tables, with PostgreSQL's view semantics as the model
//! (docs/SQL_REFERENCE.md, "DDL on sources"):
//!
//! - A stream table's storage depends in `pg_depend` on what its defining query uses (recorded
//!   from the analyzed query, as a view's rule is: `crate::analyze::record_dependencies`), and
//!   on the primary key columns and constraint of each keyed source (row identities hash them):
//!   `DROP COLUMN` of one is refused (2BP01, naming the stream table, CASCADE hint) and
//!   `CASCADE` drops the stream table; so is dropping a function, type or view it uses.
//! - `ALTER COLUMN ... TYPE` of such a column is refused before PostgreSQL sees it
//!   ([`refuse_retyping`], from the ProcessUtility hook): 2BP01 naming the stream table.
//! - At `ddl_command_end` of any `ALTER TABLE` of a source ([`on_source_ddl`]), in the DDL's
//!   transaction: capture is made to fit the source's columns (`crate::capture::sync_capture`),
//!   and a stream table whose query now prints back differently (a relation or column it names
//!   was renamed or moved to another schema) is planned again from that text and recomputed.

use crate::analyze;
use crate::api;
use crate::capture;
use crate::catalog;
use crate::error::raise;
use crate::error::SpiOk;
use crate::refresh;
use crate::security;
use crate::spi;
use pg_trickle_core::mode::RefreshMode;
use pg_trickle_core::PgtError;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

/// Called by the `ddl_command_end` event trigger after `ALTER TABLE` (or `ALTER VIEW`) of
/// relations `changed` that stream tables read or capture.
#[pg_extern(schema = "pgtrickle", name = "_on_source_ddl")]
fn on_source_ddl(changed: Vec<Oid>) {
    security::internal(|| source_ddl(&changed))
}

fn source_ddl(changed: &[Oid]) {
    for &relid in changed {
        capture::sync_capture(relid);
    }
    // User stream tables (internal ones are re-planned with their parent) that depend on a
    // changed relation, each once, upstream first.
    let relids: Vec<Oid> = spi::oids(
        "SELECT st.pgt_relid FROM pgtrickle.pgt_stream_tables st \
          WHERE st.parent_pgt_id IS NULL AND st.query_tree IS NOT NULL \
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = st.pgt_relid \
                           AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = ANY($1)) \
          ORDER BY st.pgt_id",
        &[changed.to_vec().into()],
    );
    for relid in relids {
        let Some(st) = catalog::by_relid(relid) else {
            continue;
        };
        let Some(tree) = &st.query_tree else {
            continue;
        };
        // Printed as when it was planned: no name it uses changed (most DDL, including
        // pg_trickle's own, such as the WAL hand-over's REPLICA IDENTITY).
        let now = analyze::deparse(tree);
        if st.query_printed.as_deref() == Some(now.as_str()) {
            continue;
        }
        notice!(
            "stream table {} reads a relation whose names changed: planned again from \"{}\" and recomputed",
            st.display(),
            now
        );
        let mode = RefreshMode::parse(&st.refresh_mode).unwrap_or(RefreshMode::Auto);
        let populated = st.is_populated;
        refresh::with_search_path(&st, || api::redefine(&st, &now, mode, populated, false));
    }
}

/// Refuses (2BP01) an `ALTER TABLE ... ALTER COLUMN ... TYPE` of a column a stream table
/// depends on (in the table named or any table inheriting from it), before PostgreSQL runs it.
///
/// # Safety
/// `stmt` must point to a valid `AlterTableStmt`.
pub unsafe fn refuse_retyping(stmt: *mut pg_sys::AlterTableStmt) {
    // SAFETY: the statement's command list holds AlterTableCmd nodes (caller's contract).
    let columns: Vec<String> = unsafe {
        pgrx::PgList::<pg_sys::AlterTableCmd>::from_pg((*stmt).cmds)
            .iter_ptr()
            .filter(|c| {
                !c.is_null()
                    && (**c).subtype == pg_sys::AlterTableType::AT_AlterColumnType
                    && !(**c).name.is_null()
            })
            .map(|c| {
                std::ffi::CStr::from_ptr((*c).name)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    if columns.is_empty() || (*stmt).relation.is_null() {
        return;
    }
    // SAFETY: a catalog lookup by name; InvalidOid when pg_trickle is not in this database.
    if unsafe { pg_sys::get_extension_oid(c"pg_trickle".as_ptr(), true) } == pg_sys::InvalidOid {
        return;
    }
    // SAFETY: resolves the statement's relation without locking it (ALTER TABLE locks it
    // next); InvalidOid when it does not exist (ALTER TABLE IF EXISTS, or its own error).
    let relid = unsafe {
        pg_sys::RangeVarGetRelidExtended(
            (*stmt).relation,
            pg_sys::NoLock as pg_sys::LOCKMODE,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        )
    };
    if relid == pg_sys::InvalidOid {
        return;
    }
    // The catalog is not the caller's to read: looked up as the extension's owner.
    let used = spi::with_settings(&[("search_path", "pg_catalog, pg_temp")], || {
        security::as_role(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID), || {
            spi::rows(
                "WITH RECURSIVE rels AS (SELECT $1::oid AS r UNION \
                                         SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN rels ON i.inhparent = rels.r) \
                 SELECT st.pgt_relid::regclass::text, a.attname::text, a.attrelid::regclass::text \
                   FROM rels JOIN pg_catalog.pg_attribute a ON a.attrelid = rels.r AND a.attname = ANY($2) AND NOT a.attisdropped \
                   JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = a.attrelid \
                        AND d.refobjsubid = a.attnum AND d.classid = 'pg_catalog.pg_class'::regclass \
                   JOIN pgtrickle.pgt_stream_tables st ON st.pgt_relid = d.objid \
                  ORDER BY 1 LIMIT 1",
                &[relid.into(), columns.into()],
                |r| {
                    (
                        r.get::<String>(1).spi_ok().unwrap_or_default(),
                        r.get::<String>(2).spi_ok().unwrap_or_default(),
                        r.get::<String>(3).spi_ok().unwrap_or_default(),
                    )
                },
            )
        })
    });
    if let Some((stream_table, column, table)) = used.into_iter().next() {
        raise(PgtError::RetypeUsedColumn {
            stream_table,
            column,
            table,
        });
    }
}

/// Records, for every stream table a user made, its analyzed query (`query_tree`) and what it
/// depends on (the upgrade to 0.7.0: earlier versions recorded only the relations). A stream
/// table whose query no longer analyses keeps what it had, with a WARNING.
#[pg_extern(schema = "pgtrickle", name = "_record_query_trees")]
fn record_query_trees() {
    security::api(|| {
        let relids: Vec<Oid> = spi::oids(
            "SELECT pgt_relid FROM pgtrickle.pgt_stream_tables WHERE parent_pgt_id IS NULL ORDER BY pgt_id",
            &[],
        );
        for relid in relids {
            let Some(st) = catalog::by_relid(relid) else {
                continue;
            };
            let analyzed = refresh::with_search_path(&st, || {
                spi::in_subtransaction(|| Ok(analyze::analyze_internal(&st.defining_query)))
            });
            match analyzed {
                Ok(a) => {
                    spi::exec(
                        "UPDATE pgtrickle.pgt_stream_tables SET query_tree = $2, query_printed = $3 WHERE pgt_id = $1",
                        &[st.pgt_id.into(), a.tree.clone().into(), a.deparsed.clone().into()],
                    );
                    let sources = catalog::classify_sources(&a.relations);
                    capture::record_storage_dependencies(st.relid, &sources, Some(&a.tree));
                    capture::record_key_dependencies(st.relid, &sources);
                }
                Err(e) => warning!(
                    "pg_trickle: the query of stream table {} does not analyse ({e}): its column dependencies are not recorded",
                    st.display()
                ),
            }
        }
    })
}
