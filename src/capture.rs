//! Trigger-based change capture: one change buffer and one capture function per source table,
//! shared by every stream table that reads it, installed when the first stream table needs it and
//! removed in the same transaction as the last one that did.
//!
//! Dependencies recorded in `pg_depend` keep PostgreSQL's own DROP rules true: a stream table's
//! storage depends (normal) on each relation its query reads, so `DROP TABLE source` is refused
//! while a stream table reads it (and `CASCADE` drops the stream table too); a buffer and its
//! capture function depend (auto) on their source, so they go with it.

use crate::catalog::{self, Source, SourceKind};
use crate::error::SpiOk;
use crate::spi;
use pg_trickle_core::render::{self, SourceColumn};
use pgrx::pg_sys::{self, Oid};

/// Records that object (`class_id`, `obj`) depends on relation `referenced_rel`.
pub(crate) fn record_dependency(
    class_id: Oid,
    obj: Oid,
    referenced_rel: Oid,
    deptype: pg_sys::DependencyType::Type,
) {
    depend(
        (class_id, obj, 0),
        (pg_sys::RelationRelationId, referenced_rel, 0),
        deptype,
    );
}

/// Records a `pg_depend` row: `depender` and `referenced` as (class, object, sub-object).
fn depend(
    depender: (Oid, Oid, i32),
    referenced: (Oid, Oid, i32),
    deptype: pg_sys::DependencyType::Type,
) {
    let address = |(class, object, sub): (Oid, Oid, i32)| pg_sys::ObjectAddress {
        classId: class,
        objectId: object,
        objectSubId: sub,
    };
    // SAFETY: both addresses name existing catalog objects; recordDependencyOn only inserts a
    // pg_depend row and raises an ERROR on failure.
    unsafe { pg_sys::recordDependencyOn(&address(depender), &address(referenced), deptype) };
}

/// `pg_constraint`'s OID (`ConstraintRelationId`, fixed in PostgreSQL's catalog headers).
const CONSTRAINT_RELATION_ID: Oid = Oid::from_u32(2606);

/// Makes storage table `storage` depend (normal) on the primary key of each keyed base table
/// among `sources`, its constraint and its columns: row identities hash the key, so dropping
/// or retyping a key column, or dropping the key, is refused while the stream table exists.
pub fn record_key_dependencies(storage: Oid, sources: &[Source]) {
    for s in sources.iter().filter(|s| s.kind == SourceKind::Table) {
        let keys: Vec<(Oid, Vec<i16>)> = spi::rows(
            "SELECT c.oid, c.conkey FROM pg_catalog.pg_constraint c WHERE c.conrelid = $1 AND c.contype = 'p'",
            &[s.relid.into()],
            |r| {
                (
                    r.get::<Oid>(1).spi_ok().unwrap_or(pg_sys::InvalidOid),
                    r.get::<Vec<i16>>(2).spi_ok().unwrap_or_default(),
                )
            },
        );
        for (constraint, columns) in keys {
            let normal = pg_sys::DependencyType::DEPENDENCY_NORMAL;
            let storage = (pg_sys::RelationRelationId, storage, 0);
            depend(storage, (CONSTRAINT_RELATION_ID, constraint, 0), normal);
            for attnum in columns {
                let column = (pg_sys::RelationRelationId, s.relid, attnum.into());
                depend(storage, column, normal);
            }
        }
    }
}

/// Deletes the `deptype` dependencies of relation `rel` on other relations, which pg_trickle
/// alone records (a storage table's on its sources, a TopK internal table's on its storage),
/// and makes the deletion visible.
pub(crate) fn forget_relation_dependencies(rel: Oid, deptype: pg_sys::DependencyType::Type) {
    // SAFETY: deletes only pg_class-to-pg_class rows of `rel` of that type; the command counter
    // increment makes later catalog reads in this transaction see it.
    unsafe {
        pg_sys::deleteDependencyRecordsForClass(
            pg_sys::RelationRelationId,
            rel,
            pg_sys::RelationRelationId,
            deptype as std::ffi::c_char,
        );
        pg_sys::CommandCounterIncrement();
    }
}

/// Makes the storage table of a stream table depend on exactly `sources` (tables, views, stream
/// tables) in `pg_depend`, replacing what was recorded before; with `tree` (the analyzed
/// defining query of a stream table a user made), also on everything the query uses, as a
/// view does (see [`crate::analyze::record_dependencies`]).
pub fn record_storage_dependencies(storage: Oid, sources: &[Source], tree: Option<&str>) {
    crate::analyze::forget_dependencies(storage);
    for s in sources {
        record_dependency(
            pg_sys::RelationRelationId,
            storage,
            s.relid,
            pg_sys::DependencyType::DEPENDENCY_NORMAL,
        );
    }
    if let Some(tree) = tree {
        crate::analyze::record_dependencies(storage, tree);
    }
}

pub fn source_columns(relid: Oid) -> Vec<SourceColumn> {
    let raw = spi::rows(
        "SELECT attnum, attname::text, atttypid, atttypmod FROM pg_catalog.pg_attribute \
          WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        &[relid.into()],
        |r| {
            (
                r.get::<i16>(1).spi_ok().unwrap_or(0),
                r.get::<String>(2).spi_ok().unwrap_or_default(),
                r.get::<Oid>(3).spi_ok().unwrap_or(pg_sys::InvalidOid),
                r.get::<i32>(4).spi_ok().unwrap_or(-1),
            )
        },
    );
    raw.into_iter()
        .map(|(attnum, name, typid, typmod)| {
            // SAFETY: typid comes from pg_attribute of an existing relation; both functions
            // return palloc'd C strings or raise an ERROR.
            let type_sql = unsafe {
                let mut base_typmod = typmod;
                let base = pg_sys::getBaseTypeAndTypmod(typid, &mut base_typmod);
                std::ffi::CStr::from_ptr(pg_sys::format_type_with_typemod(base, base_typmod))
                    .to_string_lossy()
                    .into_owned()
            };
            SourceColumn {
                attnum,
                name,
                type_sql,
            }
        })
        .collect()
}

/// Installs capture on a base table (or a stream table's storage) if it has none. Returns
/// whether the table has a primary key.
pub fn ensure_capture(source: &Source) -> bool {
    debug_assert!(matches!(
        source.kind,
        SourceKind::Table | SourceKind::StreamTable
    ));
    let quoted = catalog::relation_quoted(source.relid).unwrap_or_default();
    // Serialises concurrent installs on the same source (CREATE TRIGGER takes this lock anyway).
    spi::exec(
        &format!("LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE"),
        &[],
    );
    if let Some(has_pk) = spi::one::<bool>(
        "SELECT has_primary_key FROM pgtrickle.pgt_sources WHERE source_relid = $1",
        &[source.relid.into()],
    ) {
        // Captured already: every column it has now, whatever DDL happened before.
        sync_capture(source.relid);
        return has_pk;
    }
    let has_pk = spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = $1 AND indisprimary)",
        &[source.relid.into()],
    )
    .unwrap_or(false);
    let cols = source_columns(source.relid);
    let oid = source.relid.to_u32();
    spi::exec_all(&render::buffer_ddl(oid, &cols));
    spi::exec_all(&render::capture_ddl(oid, &quoted, &cols));
    let buffer = format!("{}.{}", render::CHANGES_SCHEMA, render::buffer_table(oid));
    let buffer_oid = spi::one::<Oid>("SELECT $1::regclass::oid", &[buffer.into()])
        .expect("change buffer just created");
    let func = format!(
        "{}.{}()",
        render::CHANGES_SCHEMA,
        render::capture_function(oid)
    );
    let func_oid = spi::one::<Oid>("SELECT $1::regprocedure::oid", &[func.into()])
        .expect("capture function just created");
    record_dependency(
        pg_sys::RelationRelationId,
        buffer_oid,
        source.relid,
        pg_sys::DependencyType::DEPENDENCY_AUTO,
    );
    record_dependency(
        pg_sys::ProcedureRelationId,
        func_oid,
        source.relid,
        pg_sys::DependencyType::DEPENDENCY_AUTO,
    );
    let attnums: Vec<i16> = cols.iter().map(|c| c.attnum).collect();
    spi::exec(
        "INSERT INTO pgtrickle.pgt_sources (source_relid, buffer_table, has_primary_key, column_attnums) \
         VALUES ($1, $2, $3, $4)",
        &[source.relid.into(), render::buffer_table(oid).into(), has_pk.into(), attnums.into()],
    );
    has_pk
}

/// Makes the capture of source `relid` fit the columns it has now, in the transaction of the
/// DDL that changed them (called at `ddl_command_end` of `ALTER TABLE` on a source): buffer
/// columns for added attributes, re-created empty for retyped ones (no stream table reads a
/// column whose type can change: see `crate::hooks`), removed for dropped ones; the capture
/// function rewritten with the current column names (renames); the captured columns recorded
/// and `capture_version` moved on, so the WAL consumer reads the new shape. Nothing happens
/// when capture already fits.
pub fn sync_capture(relid: Oid) {
    let Some(buffer) = spi::one::<String>(
        "SELECT buffer_table::text FROM pgtrickle.pgt_sources WHERE source_relid = $1",
        &[relid.into()],
    ) else {
        return;
    };
    let cols = source_columns(relid);
    let buffer = pg_trickle_core::ident::quote_qualified(render::CHANGES_SCHEMA, &buffer);
    let have: Vec<(String, String)> = spi::rows(
        "SELECT attname::text, pg_catalog.format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute \
          WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname ~ '^(old|new)_[0-9]+$'",
        &[buffer.clone().into()],
        |r| {
            (
                r.get::<String>(1).spi_ok().unwrap_or_default(),
                r.get::<String>(2).spi_ok().unwrap_or_default(),
            )
        },
    );
    let actions = render::buffer_sync_actions(&cols, &have);
    let body = render::capture_body(relid.to_u32(), &cols);
    let same_function = spi::one::<bool>(
        "SELECT prosrc = $2 FROM pg_catalog.pg_proc WHERE oid = pg_catalog.to_regprocedure($1)",
        &[
            format!(
                "{}.{}()",
                render::CHANGES_SCHEMA,
                render::capture_function(relid.to_u32())
            )
            .into(),
            body.into(),
        ],
    )
    .unwrap_or(false);
    if actions.is_empty() && same_function {
        return;
    }
    if !actions.is_empty() {
        spi::exec(&format!("ALTER TABLE {buffer} {}", actions.join(", ")), &[]);
    }
    spi::exec(
        &render::capture_function_ddl(relid.to_u32(), &cols, true),
        &[],
    );
    let attnums: Vec<i16> = cols.iter().map(|c| c.attnum).collect();
    spi::exec(
        "UPDATE pgtrickle.pgt_sources SET column_attnums = $2, capture_version = capture_version + 1 \
          WHERE source_relid = $1",
        &[relid.into(), attnums.into()],
    );
    // The refresh SQL of every stream table reading it names the buffer's columns: rendered
    // again at their next refresh (as after a rename of their storage).
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET planned_for = '' \
          WHERE pgt_id IN (SELECT pgt_id FROM pgtrickle.pgt_dependencies WHERE source_relid = $1)",
        &[relid.into()],
    );
}

/// Removes capture from every source no stream table reads any more (and forgets sources that
/// no longer exist).
pub fn drop_unused_captures() {
    let unused = spi::rows(
        "SELECT s.source_relid, c.oid IS NOT NULL FROM pgtrickle.pgt_sources s \
           LEFT JOIN pg_catalog.pg_class c ON c.oid = s.source_relid \
          WHERE NOT EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies d WHERE d.source_relid = s.source_relid) \
             OR c.oid IS NULL",
        &[],
        |r| {
            (
                r.get::<Oid>(1).spi_ok().unwrap_or(pg_sys::InvalidOid),
                r.get::<bool>(2).spi_ok().unwrap_or(false),
            )
        },
    );
    for (relid, exists) in unused {
        if exists {
            if let Some(quoted) = catalog::relation_quoted(relid) {
                crate::cdc::restore_replica_identity(relid, &quoted);
            }
        }
        // Forget the source first: the DROPs below fire the sql_drop event trigger, which
        // comes back here and must find nothing left to do.
        spi::exec(
            "DELETE FROM pgtrickle.pgt_sources WHERE source_relid = $1",
            &[relid.into()],
        );
        let quoted = if exists {
            catalog::relation_quoted(relid)
        } else {
            None
        };
        // A source on WAL capture has no row trigger: no "does not exist, skipping" NOTICE.
        spi::with_settings(&[("client_min_messages", "warning")], || {
            spi::exec_all(&render::drop_capture_ddl(relid.to_u32(), quoted.as_deref()))
        });
    }
}

/// Deletes the buffer rows that every stream table reading `source` has consumed: rows whose
/// transaction is visible in the consumer's frontier; for the refreshing transaction's own rows,
/// those up to the last change id it consumed. FULL consumers with a change window count too:
/// their scheduler skips a recompute when no change arrived since their frontier, which it tells
/// from these rows; FULL consumers without one (views, changing values) hold nothing back. With
/// no consumer left, every committed row goes.
/// Nothing is trimmed while a consumer has no frontier yet (its first refresh is FULL anyway).
/// Only rows below the smallest frontier `xmax`, or of a refreshing transaction, can qualify,
/// which bounds the scan to the buffer's xid index.
pub fn trim_buffer(source: Oid) {
    let buf = pg_trickle_core::ident::quote_qualified(
        render::CHANGES_SCHEMA,
        &render::buffer_table(source.to_u32()),
    );
    let consumers =
        "SELECT st.frontier, st.frontier_xid, d.own_change_id FROM pgtrickle.pgt_dependencies d \
                     JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
                     WHERE d.source_relid = $1 \
                       AND (st.delta_merge_sql IS NOT NULL OR st.probe_sql IS NOT NULL)";
    let any = spi::one_p::<bool>(&format!("SELECT EXISTS ({consumers})"), &[source.into()])
        .unwrap_or(true);
    if !any {
        // Deletes what this snapshot sees: rows of transactions still in flight stay until the
        // next refresh.
        spi::exec_p(&format!("DELETE FROM {buf}"), &[]);
        return;
    }
    spi::exec_p(
        &format!(
            "WITH f AS ({consumers}) \
             DELETE FROM {buf} b \
              WHERE (b.xid < (SELECT CASE WHEN bool_and(frontier IS NOT NULL) \
                                     THEN min(pg_catalog.pg_snapshot_xmax(frontier)) END FROM f) \
                     OR b.xid IN (SELECT frontier_xid FROM f)) \
                AND NOT EXISTS (SELECT 1 FROM f WHERE CASE WHEN b.xid = f.frontier_xid \
                                     THEN b.change_id > COALESCE(f.own_change_id, 0) \
                                     ELSE NOT pg_catalog.pg_visible_in_snapshot(b.xid, f.frontier) END)"
        ),
        &[source.into()],
    );
}

/// Makes the statement triggers of IMMEDIATE stream tables exactly what the catalog asks for:
/// on every table (or stream table storage) an IMMEDIATE stream table reads,
/// `pgtrickle_immediate_<pgt_id>`, AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE FOR EACH
/// STATEMENT, which refreshes it in the writer's transaction once the statement's changes are
/// captured (row triggers fire before statement triggers). Stale ones are dropped. Sources such
/// a stream table (or one with cdc_mode 'trigger') reads go back to their row triggers first;
/// `clean`: the calling transaction wrote nothing before the API call.
pub fn sync_immediate_triggers(clean: bool) {
    crate::cdc::hand_back_pinned_sources(clean);
    let expected: Vec<(Oid, i64, Oid)> = spi::rows(
        "SELECT d.source_relid, st.pgt_id, st.pgt_relid FROM pgtrickle.pgt_dependencies d \
           JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
           JOIN pg_catalog.pg_class c ON c.oid = d.source_relid \
          WHERE st.effective_mode = 'IMMEDIATE' AND c.relkind IN ('r', 'p')",
        &[],
        |r| {
            (
                r.get::<Oid>(1).spi_ok().unwrap_or(pg_sys::InvalidOid),
                r.get::<i64>(2).spi_ok().unwrap_or(0),
                r.get::<Oid>(3).spi_ok().unwrap_or(pg_sys::InvalidOid),
            )
        },
    );
    let name = |pgt_id: i64| format!("{}{pgt_id}", render::IMMEDIATE_TRIGGER_PREFIX);
    let existing: Vec<(Oid, String)> = spi::rows(
        "SELECT tgrelid, tgname::text FROM pg_catalog.pg_trigger WHERE starts_with(tgname, $1) AND NOT tgisinternal",
        &[render::IMMEDIATE_TRIGGER_PREFIX.into()],
        |r| {
            (
                r.get::<Oid>(1).spi_ok().unwrap_or(pg_sys::InvalidOid),
                r.get::<String>(2).spi_ok().unwrap_or_default(),
            )
        },
    );
    for (rel, tg) in &existing {
        if !expected
            .iter()
            .any(|(s, id, _)| s == rel && name(*id) == *tg)
        {
            if let Some(q) = catalog::relation_quoted(*rel) {
                spi::exec(
                    &format!(
                        "DROP TRIGGER IF EXISTS {} ON {q}",
                        pg_trickle_core::ident::quote_ident(tg)
                    ),
                    &[],
                );
            }
        }
    }
    for (src, id, storage) in &expected {
        if existing.iter().any(|(r, tg)| r == src && *tg == name(*id)) {
            continue;
        }
        let Some(q) = catalog::relation_quoted(*src) else {
            continue;
        };
        spi::exec(
            &format!(
                "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {q} \
                 FOR EACH STATEMENT EXECUTE FUNCTION pgtrickle._immediate_refresh('{}')",
                pg_trickle_core::ident::quote_ident(&name(*id)),
                storage.to_u32()
            ),
            &[],
        );
    }
}

/// Runs `f` with the row capture trigger of `relid` disabled: what `f` writes to it is not
/// captured. Only for writes no reader needs as changes (the first population of an internal
/// stream table, whose readers are populated FULL in the same transaction).
pub fn without_capture<R>(relid: Oid, f: impl FnOnce() -> R) -> R {
    let Some(quoted) = catalog::relation_quoted(relid) else {
        return f();
    };
    let trigger = pg_trickle_core::ident::quote_ident(render::ROW_TRIGGER);
    spi::exec(
        &format!("ALTER TABLE {quoted} DISABLE TRIGGER {trigger}"),
        &[],
    );
    let r = f();
    spi::exec(
        &format!("ALTER TABLE {quoted} ENABLE TRIGGER {trigger}"),
        &[],
    );
    r
}
