//! pg_trickle's catalog tables (`pgtrickle.pgt_*`): reading and writing stream-table records,
//! resolving user-supplied names, and classifying the relations a defining query reads.

use crate::error::raise;
use crate::error::SpiOk;
use crate::spi;
use pg_trickle_core::ident::QualifiedName;
use pg_trickle_core::render::OutputColumn;
use pg_trickle_core::PgtError;
use pgrx::pg_sys::Oid;

/// A stream table as recorded in `pgtrickle.pgt_stream_tables`.
#[derive(Debug, Clone)]
pub struct StreamTable {
    pub pgt_id: i64,
    pub relid: Oid,
    pub schema: String,
    pub name: String,
    pub defining_query: String,
    pub schedule: Option<String>,
    pub refresh_mode: String,
    pub columns: Vec<OutputColumn>,
    /// `FULL`, `ROWS`, `BAG` or `GROUPS`.
    pub plan_kind: String,
    pub hidden_columns: Vec<String>,
    pub full_merge_sql: String,
    pub delta_merge_sql: Option<String>,
    /// TopK: the statement that re-derives the stored rows from the internal table that
    /// `full_merge_sql` and `delta_merge_sql` maintain (see `pg_trickle_core::ivm::topk`).
    pub topk_sql: Option<String>,
    pub explain_text: String,
    /// The quoted storage name the rendered SQL uses.
    pub planned_for: String,
    /// Sources of the delta statement, in parameter order, and the window probe.
    pub plan_sources: Vec<Oid>,
    pub probe_sql: Option<String>,
    /// Each plan source's window as the delta reads it, in parameter order (empty: FULL).
    pub window_sql: Vec<String>,
    pub plan_reason: Option<String>,
    pub is_populated: bool,
    /// The last refresh's snapshot (text form) and transaction id (text form).
    pub frontier: Option<String>,
    pub frontier_xid: Option<String>,
    /// Failed scheduled refreshes in a row.
    pub consecutive_errors: i32,
    /// The search_path the query was planned with (refreshes run with it).
    pub search_path: Option<String>,
    /// An internal stream table (see `crate::nested`): its parent's pgt_id and storage.
    pub parent: Option<(i64, Oid)>,
    /// The role that owns the storage table: refreshes evaluate the query as this role.
    pub owner: Oid,
    /// The analyzed defining query (`nodeToString`): what its storage depends on, and what it
    /// prints back as after a rename (`crate::ddl`). NULL for a stream table whose query no
    /// longer analyses.
    pub query_tree: Option<String>,
    /// How PostgreSQL printed `query_tree` when it was recorded.
    pub query_printed: Option<String>,
    /// The pg_trickle version that planned it (see [`PLANNER`]).
    pub planned_by: String,
}

impl StreamTable {
    /// Whether its stored statements are this version's, for the storage's current name.
    pub fn planned_here(&self) -> bool {
        self.planned_for == self.quoted() && self.planned_by == PLANNER
    }

    /// `"schema"."name"`, quoted for SQL.
    pub fn quoted(&self) -> String {
        pg_trickle_core::ident::quote_qualified(&self.schema, &self.name)
    }

    /// `schema.name` as PostgreSQL would print it in messages.
    pub fn display(&self) -> String {
        relation_display(self.relid)
    }
}

/// `schema.name` with identifiers quoted only where needed.
pub fn relation_display(relid: Oid) -> String {
    spi::one::<String>(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
        &[relid.into()],
    )
    .unwrap_or_else(|| format!("relation {}", relid.to_u32()))
}

/// `"schema"."name"` quoted for SQL, from the live catalog.
pub fn relation_quoted(relid: Oid) -> Option<String> {
    spi::one::<String>(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
        &[relid.into()],
    )
}

const SELECT_ST: &str = "SELECT st.pgt_id, st.pgt_relid, n.nspname::text AS schema, c.relname::text AS name, \
    st.defining_query, st.schedule, st.refresh_mode, st.column_names, st.column_types, st.column_collations, \
    st.plan_kind, st.hidden_columns, st.full_merge_sql, st.delta_merge_sql, st.explain_text, st.plan_reason, \
    st.is_populated, st.frontier::text AS frontier, st.frontier_xid::text AS frontier_xid, st.planned_for, \
    st.plan_sources, st.probe_sql, st.window_sql, st.consecutive_errors, st.search_path, st.topk_sql, st.parent_pgt_id, \
    (SELECT p.pgt_relid FROM pgtrickle.pgt_stream_tables p WHERE p.pgt_id = st.parent_pgt_id) AS parent_relid, \
    c.relowner AS owner, st.query_tree, st.query_printed, st.planned_by \
    FROM pgtrickle.pgt_stream_tables st \
    JOIN pg_catalog.pg_class c ON c.oid = st.pgt_relid \
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace";

/// Column `name` of a catalog row: NULL as `None`; a column that is missing or of another type
/// is an internal error, never a default.
fn col<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
    r: &pgrx::spi::SpiHeapTupleData,
    name: &str,
) -> Option<T> {
    r.get_by_name::<T, _>(name)
        .unwrap_or_else(|e| pgrx::error!("pg_trickle: catalog column {name}: {e}"))
}

/// Column `name` of a catalog row, which the catalog declares NOT NULL (or the query always
/// fills): NULL is an internal error.
fn req<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
    r: &pgrx::spi::SpiHeapTupleData,
    name: &str,
) -> T {
    col(r, name).unwrap_or_else(|| pgrx::error!("pg_trickle: catalog column {name} is NULL"))
}

fn load_where(cond: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<StreamTable> {
    spi::rows_p(
        &format!("{SELECT_ST} WHERE {cond} ORDER BY st.pgt_id"),
        args,
        |r| {
            let names: Vec<String> = req(r, "column_names");
            let types: Vec<String> = req(r, "column_types");
            let colls: Vec<String> = req(r, "column_collations");
            let columns = names
                .into_iter()
                .zip(types)
                .zip(colls)
                .map(|((name, type_sql), coll)| OutputColumn {
                    name,
                    type_sql,
                    collation: (!coll.is_empty()).then_some(coll),
                })
                .collect();
            StreamTable {
                pgt_id: req(r, "pgt_id"),
                relid: req(r, "pgt_relid"),
                schema: req(r, "schema"),
                name: req(r, "name"),
                defining_query: req(r, "defining_query"),
                schedule: col(r, "schedule"),
                refresh_mode: req(r, "refresh_mode"),
                columns,
                plan_kind: req(r, "plan_kind"),
                hidden_columns: req(r, "hidden_columns"),
                full_merge_sql: req(r, "full_merge_sql"),
                delta_merge_sql: col(r, "delta_merge_sql"),
                explain_text: req(r, "explain_text"),
                plan_reason: col(r, "plan_reason"),
                is_populated: req(r, "is_populated"),
                frontier: col(r, "frontier"),
                frontier_xid: col(r, "frontier_xid"),
                planned_for: req(r, "planned_for"),
                plan_sources: col(r, "plan_sources").unwrap_or_default(),
                probe_sql: col(r, "probe_sql"),
                window_sql: col(r, "window_sql").unwrap_or_default(),
                consecutive_errors: req(r, "consecutive_errors"),
                search_path: col(r, "search_path"),
                topk_sql: col(r, "topk_sql"),
                parent: col::<i64>(r, "parent_pgt_id").zip(col::<Oid>(r, "parent_relid")),
                owner: req(r, "owner"),
                query_tree: col(r, "query_tree"),
                query_printed: col(r, "query_printed"),
                planned_by: req(r, "planned_by"),
            }
        },
    )
}

/// The stream table whose storage is `relid`, if any.
pub fn by_relid(relid: Oid) -> Option<StreamTable> {
    load_where("st.pgt_relid = $1", &[relid.into()]).pop()
}

/// Resolves a user-supplied name (schema-qualified, or found through `search_path`) to the OID of
/// an existing relation.
pub fn resolve_relation(name: &str) -> Option<Oid> {
    let qn = match QualifiedName::parse(name) {
        Ok(q) => q,
        Err(e) => raise(e),
    };
    let text = match &qn.schema {
        Some(s) => pg_trickle_core::ident::quote_qualified(s, &qn.name),
        None => pg_trickle_core::ident::quote_ident(&qn.name),
    };
    spi::one_p::<Oid>("SELECT pg_catalog.to_regclass($1)::oid", &[text.into()])
}

/// Resolves `name` to a stream table: `undefined_table` when nothing has that name,
/// `wrong_object_type` when the relation is not a stream table.
pub fn resolve(name: &str) -> StreamTable {
    by_relid(resolve_relid(name)).expect("resolve_relid checked the catalog")
}

/// [`resolve`] without loading the catalog row: the storage table's OID.
pub fn resolve_relid(name: &str) -> Oid {
    let relid = resolve_relation(name)
        .unwrap_or_else(|| raise(PgtError::StreamTableNotFound(name.to_string())));
    let known = spi::one_p::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = $1)",
        &[relid.into()],
    )
    .unwrap_or(false);
    if !known {
        raise(PgtError::NotAStreamTable(name.to_string()));
    }
    relid
}

/// Column arrays as stored in the catalog.
pub fn column_arrays(cols: &[OutputColumn]) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        cols.iter().map(|c| c.name.clone()).collect(),
        cols.iter().map(|c| c.type_sql.clone()).collect(),
        cols.iter()
            .map(|c| c.collation.clone().unwrap_or_default())
            .collect(),
    )
}

/// Kind of a relation read by a defining query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A table whose changes we capture.
    Table,
    /// Another stream table.
    StreamTable,
    /// A view: its own sources appear among the query's relations as well.
    View,
}

/// A relation read by a defining query.
#[derive(Debug, Clone)]
pub struct Source {
    pub relid: Oid,
    pub kind: SourceKind,
    pub display: String,
}

/// Classifies the relations a defining query reads, refusing those whose changes cannot be
/// captured (temporary tables, materialized views, foreign tables, system catalogs).
pub fn classify_sources(relations: &[Oid]) -> Vec<Source> {
    let rows = spi::rows(
        "SELECT c.oid, c.relkind::text, c.relpersistence::text, \
                quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
                n.nspname IN ('pg_catalog', 'information_schema', 'pg_toast'), \
                EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables st WHERE st.pgt_relid = c.oid) \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE c.oid = ANY($1)",
        &[relations.to_vec().into()],
        |r| {
            (
                r.get::<Oid>(1).spi_ok().unwrap_or(pgrx::pg_sys::InvalidOid),
                r.get::<String>(2).spi_ok().unwrap_or_default(),
                r.get::<String>(3).spi_ok().unwrap_or_default(),
                r.get::<String>(4).spi_ok().unwrap_or_default(),
                r.get::<bool>(5).spi_ok().unwrap_or(false),
                r.get::<bool>(6).spi_ok().unwrap_or(false),
            )
        },
    );
    let mut out = Vec::new();
    for &relid in relations {
        let Some((_, relkind, persistence, display, system, is_st)) =
            rows.iter().find(|r| r.0 == relid).cloned()
        else {
            continue;
        };
        if persistence == "t" {
            raise(PgtError::TempSource(display));
        }
        let unsupported = |kind: &str| -> ! {
            raise(PgtError::UnsupportedSource {
                name: display.clone(),
                kind: kind.to_string(),
            })
        };
        if system {
            unsupported("system catalog");
        }
        let kind = match relkind.as_str() {
            _ if is_st => SourceKind::StreamTable,
            "r" | "p" => SourceKind::Table,
            "v" => SourceKind::View,
            "m" => unsupported("materialized view"),
            "f" => unsupported("foreign table"),
            "S" => unsupported("sequence"),
            other => unsupported(&format!("relation of kind '{other}'")),
        };
        out.push(Source {
            relid,
            kind,
            display,
        });
    }
    out
}

/// Whether a relation named `schema.name` exists, and if so whether it is a stream table.
pub fn existing(schema: &str, name: &str) -> Option<(Oid, bool)> {
    spi::rows(
        "SELECT c.oid, EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables st WHERE st.pgt_relid = c.oid) \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = $1 AND c.relname = $2",
        &[schema.into(), name.into()],
        |r| {
            (
                r.get::<Oid>(1).spi_ok().unwrap_or(pgrx::pg_sys::InvalidOid),
                r.get::<bool>(2).spi_ok().unwrap_or(false),
            )
        },
    )
    .pop()
}

/// Whether schema `schema` exists.
pub fn schema_exists(schema: &str) -> bool {
    spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
        &[schema.into()],
    )
    .unwrap_or(false)
}

/// All DAG edges `(source relid, stream table relid)`. An internal stream table is part of the
/// stream table it belongs to (refreshed by it, first): the edges of its sources are that
/// stream table's (its root's), and the edge from it to its parent is left out.
pub fn all_edges() -> Vec<(u32, u32)> {
    spi::rows(
        "WITH RECURSIVE root(pgt_id, root_id) AS ( \
             SELECT pgt_id, pgt_id FROM pgtrickle.pgt_stream_tables WHERE parent_pgt_id IS NULL \
             UNION ALL \
             SELECT c.pgt_id, r.root_id FROM pgtrickle.pgt_stream_tables c JOIN root r ON c.parent_pgt_id = r.pgt_id) \
         SELECT DISTINCT d.source_relid, st.pgt_relid FROM pgtrickle.pgt_dependencies d \
           JOIN root r USING (pgt_id) \
           JOIN pgtrickle.pgt_stream_tables st ON st.pgt_id = r.root_id \
          WHERE NOT EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables i \
                             WHERE i.pgt_relid = d.source_relid AND i.parent_pgt_id IS NOT NULL)",
        &[],
        |r| {
            (
                r.get::<Oid>(1)
                    .spi_ok()
                    .map(|o| o.to_u32())
                    .unwrap_or(0),
                r.get::<Oid>(2)
                    .spi_ok()
                    .map(|o| o.to_u32())
                    .unwrap_or(0),
            )
        },
    )
}

/// Records the views whose definitions stream table `pgt_id`'s plan inlined.
pub fn store_views(pgt_id: i64, views: &[Oid]) {
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET inlined_views = $2 WHERE pgt_id = $1",
        &[
            pgt_id.into(),
            (!views.is_empty()).then(|| views.to_vec()).into(),
        ],
    );
}

/// The storage tables of the internal stream tables of stream table `pgt_id`, in creation order.
pub fn children(pgt_id: i64) -> Vec<Oid> {
    spi::rows_p(
        "SELECT pgt_relid FROM pgtrickle.pgt_stream_tables WHERE parent_pgt_id = $1 ORDER BY pgt_id",
        &[pgt_id.into()],
        |r| r.get::<Oid>(1).spi_ok(),
    )
    .into_iter()
    .flatten()
    .collect()
}

/// [`children`] of the stream table stored in `relid` (one statement, for the scheduler's probe).
pub fn children_of_storage(relid: Oid) -> Vec<Oid> {
    spi::rows_p(
        "SELECT c.pgt_relid FROM pgtrickle.pgt_stream_tables c \
           JOIN pgtrickle.pgt_stream_tables p ON p.pgt_id = c.parent_pgt_id \
          WHERE p.pgt_relid = $1 ORDER BY c.pgt_id",
        &[relid.into()],
        |r| r.get::<Oid>(1).spi_ok(),
    )
    .into_iter()
    .flatten()
    .collect()
}

/// Replaces the recorded sources of a stream table.
pub fn set_dependencies(pgt_id: i64, sources: &[Source]) {
    spi::exec(
        "DELETE FROM pgtrickle.pgt_dependencies WHERE pgt_id = $1",
        &[pgt_id.into()],
    );
    for s in sources.iter().filter(|s| s.kind != SourceKind::View) {
        let ty = match s.kind {
            SourceKind::StreamTable => "STREAM_TABLE",
            _ => "TABLE",
        };
        spi::exec(
            "INSERT INTO pgtrickle.pgt_dependencies (pgt_id, source_relid, source_type) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[pgt_id.into(), s.relid.into(), ty.into()],
        );
    }
}

/// The base tables (OID, display name) a stream table reads.
pub fn table_sources(pgt_id: i64) -> Vec<(Oid, String)> {
    spi::rows(
        "SELECT source_relid FROM pgtrickle.pgt_dependencies WHERE pgt_id = $1 AND source_type = 'TABLE' ORDER BY 1",
        &[pgt_id.into()],
        |r| r.get::<Oid>(1).spi_ok(),
    )
    .into_iter()
    .flatten()
    .map(|relid| (relid, relation_display(relid)))
    .collect()
}

/// Stream tables (display names) that read `relid`.
pub fn dependents(relid: Oid) -> Vec<String> {
    spi::rows(
        "SELECT st.pgt_relid FROM pgtrickle.pgt_dependencies d \
           JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) WHERE d.source_relid = $1 ORDER BY st.pgt_id",
        &[relid.into()],
        |r| r.get::<Oid>(1).spi_ok(),
    )
    .into_iter()
    .flatten()
    .map(relation_display)
    .collect()
}

/// The version of pg_trickle whose planner and renderer made a stream table's stored statements
/// (`pgt_stream_tables.planned_by`). A refresh by another version plans the stream table again
/// from its defining query first ([`StreamTable::planned_here`]).
pub const PLANNER: &str = env!("CARGO_PKG_VERSION");

/// Records a rendered plan for the stream table stored in `storage` (quoted name).
pub fn store_plan(pgt_id: i64, storage: &str, built: &crate::plan::Built) {
    let hidden: Vec<String> = built.hidden.iter().map(|(n, _)| n.clone()).collect();
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET plan_kind = $2, plan_reason = $3, hidden_columns = $4, \
             full_merge_sql = $5, delta_merge_sql = $6, explain_text = $7, effective_mode = $8, planned_for = $9, \
             plan_sources = $10, probe_sql = $11, topk_sql = $12, \
             search_path = pg_catalog.current_setting('search_path'), planned_by = $13, window_sql = $14, \
             updated_at = now() \
         WHERE pgt_id = $1",
        &[
            pgt_id.into(),
            built.kind.into(),
            built.reason.clone().into(),
            hidden.into(),
            built.full_merge_sql.clone().into(),
            built.delta_merge_sql.clone().into(),
            built.explain.clone().into(),
            built.effective_mode().into(),
            storage.into(),
            built.window.as_ref().map(|w| w.sources.clone()).into(),
            built.window.as_ref().map(|w| w.probe_sql.clone()).into(),
            built.topk.as_ref().map(|t| t.merge_sql.clone()).into(),
            PLANNER.into(),
            built
                .window
                .as_ref()
                .filter(|w| !w.events.is_empty())
                .map(|w| w.events.clone())
                .into(),
        ],
    );
}
