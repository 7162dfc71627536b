//! Internal stream tables (see `pg_trickle_core::ivm::nest`): when the engine refuses a
//! defining query, the subqueries it cannot maintain inside it (and the views it reads) are
//! rewritten; each such subquery becomes a stream table of its own, stored in
//! `pgtrickle_changes.sub_<pgt_id>`, and the query is planned over them.
//!
//! An internal stream table belongs to its parent (`parent_pgt_id`): the parent's refreshes
//! refresh it first, in the same transaction and snapshot ([`crate::refresh`]); the scheduler
//! never refreshes it on its own (it is part of its parent in the DAG); its storage has an
//! *internal* `pg_depend` dependency on the parent's, so it is dropped with the parent (also by
//! plain `DROP TABLE`) and cannot be dropped alone; the API refuses to alter, refresh or drop it.
//! The whole attempt runs in a subtransaction: if the rewritten query (or an internal table)
//! cannot be maintained differentially, nothing of it is left and the query's own reason stands.

use crate::api::{self, Definition};
use crate::capture::{forget_relation_dependencies, record_dependency};
use crate::catalog::Source;
use crate::plan::{self, Built};
use crate::spi;
use pg_trickle_core::ident::{quote_ident, quote_qualified};
use pg_trickle_core::ivm::nest::{self, Catalog};
use pg_trickle_core::ivm::Unsupported;
use pg_trickle_core::mode::{CaptureMode, RefreshMode};
use pg_trickle_core::render::CHANGES_SCHEMA;
use pgrx::pg_sys::{self, Oid};

/// A planned stream table.
pub struct Planned {
    pub built: Built,
    /// The sources of the query the plan reads (the defining query's, or those of the query
    /// rewritten over internal tables).
    pub plan_sources: Vec<Source>,
    /// Internal stream tables created for it (storage OIDs), not adopted yet.
    pub children: Vec<Oid>,
    /// Views whose definitions the plan inlined.
    pub views: Vec<Oid>,
}

/// The storage name of internal stream table `pgt_id`.
pub fn child_name(pgt_id: i64) -> String {
    format!("sub_{pgt_id}")
}

thread_local! {
    /// The internal tables made by the planning in progress (defining query, quoted name).
    static MADE: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// How deep that planning is in internal tables of internal tables.
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

struct PgCatalog;

impl Catalog for PgCatalog {
    fn view(&self, name: &str) -> Option<String> {
        spi::one::<String>(
            "SELECT pg_catalog.pg_get_viewdef(c.oid, true) FROM pg_catalog.pg_class c \
              WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind = 'v'",
            &[name.into()],
        )
    }

    fn not_null(&self, table: &str, column: &str) -> bool {
        spi::one::<bool>(
            "SELECT attnotnull FROM pg_catalog.pg_attribute \
              WHERE attrelid = pg_catalog.to_regclass($1) AND attname = $2 AND NOT attisdropped",
            &[table.into(), column.into()],
        )
        .unwrap_or(false)
    }

    fn columns(&self, name: &str) -> Option<Vec<String>> {
        spi::one::<Vec<String>>(
            "SELECT array_agg(attname::text ORDER BY attnum) FROM pg_catalog.pg_attribute \
              WHERE attrelid = pg_catalog.to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[name.into()],
        )
    }
}

/// Plans stream table `pgt_id` (`schema.name`, defined by `query`): differentially if the engine
/// maintains the query as written or rewritten over internal tables (created here), FULL
/// otherwise (DIFFERENTIAL and IMMEDIATE raise the reason; AUTO says it in a NOTICE).
#[allow(clippy::too_many_arguments)]
pub fn plan(
    pgt_id: i64,
    schema: &str,
    name: &str,
    query: &str,
    def: &Definition,
    mode: RefreshMode,
    capture: CaptureMode,
) -> Planned {
    differential(pgt_id, schema, name, query, def, mode, capture).unwrap_or_else(|reason| Planned {
        built: plan::full(
            schema,
            name,
            query,
            &def.analyzed.columns,
            &def.analyzed,
            &def.sources,
            mode,
            reason,
        ),
        plan_sources: def.sources.clone(),
        children: Vec::new(),
        views: Vec::new(),
    })
}

/// The differential plan, or why there is none (the reason the query as written has none).
fn differential(
    pgt_id: i64,
    schema: &str,
    name: &str,
    query: &str,
    def: &Definition,
    mode: RefreshMode,
    capture: CaptureMode,
) -> Result<Planned, Unsupported> {
    let reason = match plan::attempt(
        pgt_id,
        schema,
        name,
        query,
        &def.analyzed.columns,
        &def.analyzed,
        &def.sources,
        mode,
    ) {
        Ok(built) => {
            return Ok(Planned {
                built,
                plan_sources: def.sources.clone(),
                children: Vec::new(),
                views: Vec::new(),
            })
        }
        Err(reason) => reason,
    };
    if reason.is_none()
        || !matches!(mode, RefreshMode::Auto | RefreshMode::Differential)
        || def.analyzed.volatile
    {
        return Err(reason);
    }
    // The outermost attempt owns the list of internal tables made (all rolled back with it);
    // reset on the way out, also when an ERROR unwinds through here.
    struct Depth(bool);
    impl Drop for Depth {
        fn drop(&mut self) {
            DEPTH.set(DEPTH.get() - 1);
            if self.0 {
                MADE.with(|m| m.borrow_mut().clear());
            }
        }
    }
    let outermost = DEPTH.get() == 0;
    if outermost {
        MADE.with(|m| m.borrow_mut().clear());
    }
    DEPTH.set(DEPTH.get() + 1);
    let depth = Depth(outermost);
    let attempt = spi::in_subtransaction(|| {
        nested(pgt_id, schema, name, query, def, mode, capture).map_err(|u| u.construct)
    });
    drop(depth);
    match attempt {
        Ok(p) => Ok(p),
        Err(why) => {
            if !why.is_empty() {
                pgrx::debug1!("pg_trickle: {schema}.{name} over internal stream tables: {why}");
            }
            Err(reason)
        }
    }
}

/// The query rewritten over internal stream tables (created, not populated), planned; why not
/// (empty when no rewrite applies).
fn nested(
    pgt_id: i64,
    schema: &str,
    name: &str,
    query: &str,
    def: &Definition,
    mode: RefreshMode,
    capture: CaptureMode,
) -> Result<Planned, Unsupported> {
    let mut ids = Vec::new();
    let mut pending: Vec<(String, String)> = Vec::new();
    let rewritten = nest::nest(query, &PgCatalog, &mut |sql: &str| {
        // A subquery met before in this stream table reads the same table: one made already
        // (at any depth), or one this rewrite names (made below, before anything reads it).
        let known = MADE.with(|m| {
            m.borrow()
                .iter()
                .find(|(q, _)| q == sql)
                .map(|(_, t)| t.clone())
        });
        if let Some(table) = known {
            return (table, false);
        }
        if let Some((_, table)) = pending.iter().find(|(q, _)| q == sql) {
            return (table.clone(), false);
        }
        let id = api::next_id();
        ids.push(id);
        let table = quote_qualified(CHANGES_SCHEMA, &child_name(id));
        pending.push((sql.to_string(), table.clone()));
        (table, true)
    })
    .ok_or_else(Unsupported::none)?;
    let mut children = Vec::new();
    for (child, &id) in rewritten.children.iter().zip(&ids) {
        if let Some(check) = &child.empty_check {
            // It evaluates part of the caller's query: as the caller, not as pg_trickle.
            if !crate::security::as_caller(|| spi::one::<bool>(check, &[])).unwrap_or(false) {
                return Err(
                    "a correlated scalar subquery whose value over no rows is not NULL".into(),
                );
            }
        }
        let cdef = api::define_quiet(&child.sql);
        let name = child_name(id);
        let cplan = differential(
            id,
            CHANGES_SCHEMA,
            &name,
            &child.sql,
            &cdef,
            RefreshMode::Differential,
            capture,
        )
        .map_err(|r| format!("internal stream table {name} ({}): {r}", child.sql))?;
        let relid = api::install(
            &api::Install {
                pgt_id: id,
                schema: CHANGES_SCHEMA,
                name: &name,
                query: &child.sql,
                schedule: None,
                mode: RefreshMode::Differential,
                capture,
                internal: true,
            },
            &cdef,
            &cplan,
        );
        // The query looks its rows up by these columns (a join or a lookup per changed row).
        if !child.index.is_empty() {
            let cols: Vec<String> = child.index.iter().map(|c| quote_ident(c)).collect();
            spi::exec(
                &format!("CREATE INDEX ON {} ({})", child.table, cols.join(", ")),
                &[],
            );
        }
        MADE.with(|m| {
            m.borrow_mut()
                .push((child.sql.clone(), child.table.clone()))
        });
        children.push(relid);
    }
    let pdef = api::define_quiet(&rewritten.query);
    // The rewritten query returns the same columns (names and types).
    let same = pdef.analyzed.columns.len() == def.analyzed.columns.len()
        && pdef
            .analyzed
            .columns
            .iter()
            .zip(&def.analyzed.columns)
            .all(|(a, b)| a.name == b.name && a.type_sql == b.type_sql);
    if !same {
        return Err(format!(
            "the rewritten query {} returns other columns",
            rewritten.query
        )
        .into());
    }
    let built = plan::attempt(
        pgt_id,
        schema,
        name,
        &rewritten.query,
        &def.analyzed.columns,
        &pdef.analyzed,
        &pdef.sources,
        mode,
    )
    .map_err(|r| format!("the rewritten query {}: {r}", rewritten.query))?;
    let mut views = Vec::new();
    for v in &rewritten.views {
        views.push(
            spi::one::<Oid>(
                "SELECT pg_catalog.to_regclass($1)::oid",
                &[v.clone().into()],
            )
            .ok_or_else(|| format!("view {v} not found"))?,
        );
    }
    Ok(Planned {
        built,
        plan_sources: pdef.sources,
        children,
        views,
    })
}

/// Makes the internal stream tables `children` belong to stream table `pgt_id` (stored in
/// `storage`).
pub fn adopt(pgt_id: i64, storage: Oid, children: &[Oid]) {
    if children.is_empty() {
        return;
    }
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET parent_pgt_id = $1 WHERE pgt_relid = ANY($2)",
        &[pgt_id.into(), children.to_vec().into()],
    );
    for &c in children {
        record_dependency(
            pg_sys::RelationRelationId,
            c,
            storage,
            pg_sys::DependencyType::DEPENDENCY_INTERNAL,
        );
    }
}

/// Drops internal stream tables (and theirs) that their parent no longer reads.
pub fn discard(children: &[Oid]) {
    for &c in children {
        let Some(quoted) = crate::catalog::relation_quoted(c) else {
            continue;
        };
        // The internal dependency on the parent would refuse the DROP.
        forget_relation_dependencies(c, pg_sys::DependencyType::DEPENDENCY_INTERNAL);
        spi::exec(&format!("DROP TABLE {quoted}"), &[]);
    }
}
