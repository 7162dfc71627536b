//! The SQL API in schema `pgtrickle`: the stream table lifecycle. Every function runs in the
//! caller's transaction, so an error anywhere leaves nothing behind.

use crate::analyze::{analyze, analyze_internal, Analyzed};
use crate::capture;
use crate::catalog::{self, SourceKind, StreamTable};
use crate::error::{raise, OrRaise, SpiOk};
use crate::nested::Planned;
use crate::refresh::{self, Initiator};
use crate::security;
use crate::spi;
use pg_trickle_core::dag::Dag;
use pg_trickle_core::ident::{quote_qualified, QualifiedName};
use pg_trickle_core::mode::{CaptureMode, RefreshMode};
use pg_trickle_core::render;
use pg_trickle_core::schedule::Schedule;
use pg_trickle_core::PgtError;
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;

const DEFAULT_SCHEMA: &str = "public";

fn required<'a>(value: Option<&'a str>, what: &'static str) -> &'a str {
    value.unwrap_or_else(|| raise(PgtError::NullArgument(what)))
}

fn parse_mode(mode: Option<&str>) -> RefreshMode {
    RefreshMode::parse(required(mode, "refresh_mode")).or_raise()
}

fn parse_capture(mode: Option<&str>) -> CaptureMode {
    CaptureMode::parse(required(mode, "cdc_mode")).or_raise()
}

/// The base tables among `def`'s sources (the ones whose capture cdc_mode is about).
fn base_tables(sources: &[catalog::Source]) -> Vec<(Oid, String)> {
    sources
        .iter()
        .filter(|s| s.kind == SourceKind::Table)
        .map(|s| (s.relid, s.display.clone()))
        .collect()
}

/// Everything derived from a defining query.
pub(crate) struct Definition {
    pub analyzed: Analyzed,
    pub sources: Vec<catalog::Source>,
}

fn define(query: &str) -> Definition {
    if pg_trickle_core::ivm::parse::orders_without_limit(query) {
        notice!(
            "the defining query's ORDER BY is not kept: a stream table, like any table, has no row order (add ORDER BY when reading it)"
        );
    }
    let analyzed = analyze(query);
    let sources = catalog::classify_sources(&analyzed.relations);
    for s in sources.iter().filter(|s| s.kind == SourceKind::StreamTable) {
        if let Some((_, parent)) = catalog::by_relid(s.relid).and_then(|st| st.parent) {
            raise(PgtError::InternalStreamTable {
                name: s.display.clone(),
                parent: catalog::relation_display(parent),
            });
        }
    }
    Definition { analyzed, sources }
}

/// The query a stream table stores and plans: as written, or, when it selects `*`, as
/// PostgreSQL prints it back with every column named (a column added to a source later is not
/// part of it, as with a view).
fn expanded(query: &str, def: &Definition) -> String {
    if pg_trickle_core::ivm::star::selects_wildcard(query) {
        def.analyzed.deparsed.clone()
    } else {
        query.to_string()
    }
}

/// Whether `query` defines the same stream table as `st`'s stored query: the same text, or
/// the same query as PostgreSQL analyses it now (`*` expanded, renames followed).
fn same_definition(st: &StreamTable, query: &str) -> bool {
    if st.defining_query == query {
        return true;
    }
    let Some(tree) = &st.query_tree else {
        return false;
    };
    crate::analyze::deparse(tree) == analyze(query).deparsed
}

/// [`define`] without its NOTICE and checks, reserved output names allowed (for queries
/// pg_trickle writes itself).
pub(crate) fn define_quiet(query: &str) -> Definition {
    let analyzed = analyze_internal(query);
    let sources = catalog::classify_sources(&analyzed.relations);
    Definition { analyzed, sources }
}

/// The stream table named `name`, refusing an internal one (its parent manages it).
fn resolve_user(name: &str) -> StreamTable {
    let st = catalog::resolve(name);
    refuse_internal(&st);
    st
}

fn refuse_internal(st: &StreamTable) {
    if let Some((_, parent)) = st.parent {
        raise(PgtError::InternalStreamTable {
            name: st.display(),
            parent: catalog::relation_display(parent),
        });
    }
}

/// A new stream table id.
pub(crate) fn next_id() -> i64 {
    spi::one::<i64>(
        "SELECT nextval(pg_catalog.pg_get_serial_sequence('pgtrickle.pgt_stream_tables', 'pgt_id'))",
        &[],
    )
    .expect("nextval returns a value")
}

/// Installs capture on the base tables and stream tables the plan reads (`planned`; a stream
/// table's refreshes write its changes to its own buffer, so its dependents refresh
/// incrementally too) and records the stream table's dependencies: in the catalog, what the plan
/// reads; in `pg_depend`, what the defining query reads (`def`; the internal stream tables of a
/// nested plan depend on the storage instead).
fn wire_sources(
    pgt_id: i64,
    storage: Oid,
    display: &str,
    def: &Definition,
    planned: &Planned,
    internal: bool,
) {
    for s in planned
        .plan_sources
        .iter()
        .filter(|s| matches!(s.kind, SourceKind::Table | SourceKind::StreamTable))
    {
        if !capture::ensure_capture(s) && s.kind == SourceKind::Table {
            warning!(
                "source table {} of stream table {display} has no primary key: change detection matches rows by their \
                 content, which is slower for wide tables and cannot tell identical duplicate rows apart",
                s.display
            );
        }
    }
    catalog::set_dependencies(pgt_id, &planned.plan_sources);
    // An internal stream table's query is a rewrite of part of its parent's, whose storage
    // depends on what the query uses.
    capture::record_storage_dependencies(
        storage,
        &def.sources,
        (!internal).then_some(def.analyzed.tree.as_str()),
    );
    if !internal {
        capture::record_key_dependencies(storage, &def.sources);
    }
    capture::drop_unused_captures();
}

fn target_name(name: &str) -> (String, String) {
    let qn = QualifiedName::parse(name).or_raise();
    let schema = qn.schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
    (schema, qn.name)
}

/// What `create` is asked to make.
struct NewStreamTable<'a> {
    schema: &'a str,
    name: &'a str,
    query: &'a str,
    schedule: &'a Schedule,
    mode: RefreshMode,
    initialize: bool,
    capture: CaptureMode,
}

/// `clean`: the calling transaction wrote nothing before the API call.
fn create(new: NewStreamTable<'_>, clean: bool) {
    let NewStreamTable {
        schema,
        name,
        query,
        schedule,
        mode,
        initialize,
        capture,
    } = new;
    let display = format!("{schema}.{name}");
    if !catalog::schema_exists(schema) {
        raise(PgtError::SchemaNotFound(schema.to_string()));
    }
    security::require_create_in(schema);
    if let Some((_, is_st)) = catalog::existing(schema, name) {
        raise(if is_st {
            PgtError::StreamTableExists(display)
        } else {
            PgtError::RelationExists(display)
        });
    }
    let def = define(query);
    let query = expanded(query, &def);
    crate::cdc::check_capture_mode(
        capture,
        mode == RefreshMode::Immediate,
        &base_tables(&def.sources),
    );
    // The id first: a TopK plan names its internal table by it.
    let pgt_id = next_id();
    let planned = crate::nested::plan(pgt_id, schema, name, &query, &def, mode, capture);
    if !initialize {
        // Not populated now, so not evaluated: the privilege checks of a query that is (as the
        // caller, who will own it; nothing is read).
        security::as_caller(|| {
            spi::exec(&format!("SELECT FROM ({query}\n) AS __pgt_q LIMIT 0"), &[])
        });
    }
    let storage = install(
        &Install {
            pgt_id,
            schema,
            name,
            query: &query,
            schedule: schedule.catalog_text(),
            mode,
            capture,
            internal: false,
        },
        &def,
        &planned,
    );
    security::settle(storage, security::caller());
    if initialize {
        refresh::full_refresh(storage, Initiator::Create, None);
    }
    capture::sync_immediate_triggers(clean);
    crate::scheduler::ensure_scheduler();
    // SAFETY: reading the backend's own database OID.
    crate::cdc::ensure_consumer_if_needed(unsafe { pg_sys::MyDatabaseId }, true);
}

/// What [`install`] records.
pub(crate) struct Install<'a> {
    pub pgt_id: i64,
    pub schema: &'a str,
    pub name: &'a str,
    pub query: &'a str,
    pub schedule: Option<String>,
    pub mode: RefreshMode,
    pub capture: CaptureMode,
    /// An internal stream table (its parent's query is what its storage depends on).
    pub internal: bool,
}

/// Creates the storage table and the catalog records of a planned stream table, and wires its
/// sources; returns the storage's OID. Does not populate it.
pub(crate) fn install(new: &Install<'_>, def: &Definition, planned: &Planned) -> Oid {
    let Install {
        pgt_id,
        schema,
        name,
        query,
        ..
    } = *new;
    let built = &planned.built;
    spi::exec_all(&render::storage_ddl_with_hidden(
        schema,
        name,
        &def.analyzed.columns,
        &built.hidden,
    ));
    spi::exec_all(&built.indexes);
    let storage = spi::one::<Oid>(
        "SELECT $1::regclass::oid",
        &[quote_qualified(schema, name).into()],
    )
    .expect("storage table just created");
    let (names, types, colls) = catalog::column_arrays(&def.analyzed.columns);
    spi::exec(
        "INSERT INTO pgtrickle.pgt_stream_tables (pgt_id, pgt_relid, defining_query, schedule, refresh_mode, \
             effective_mode, column_names, column_types, column_collations, plan_kind, full_merge_sql, explain_text, cdc_mode, \
             query_tree, query_printed) \
         OVERRIDING SYSTEM VALUE VALUES ($9, $1, $2, $3, $4, 'FULL', $5, $6, $7, 'FULL', '', '', $8, $10, $11)",
        &[
            storage.into(),
            query.into(),
            new.schedule.clone().into(),
            new.mode.as_str().into(),
            names.into(),
            types.into(),
            colls.into(),
            new.capture.as_str().into(),
            pgt_id.into(),
            def.analyzed.tree.clone().into(),
            def.analyzed.deparsed.clone().into(),
        ],
    );
    catalog::store_plan(pgt_id, &quote_qualified(schema, name), built);
    crate::topk::install(pgt_id, storage, built);
    wire_sources(
        pgt_id,
        storage,
        &catalog::relation_display(storage),
        def,
        planned,
        new.internal,
    );
    crate::nested::adopt(pgt_id, storage, &planned.children);
    catalog::store_views(pgt_id, &planned.views);
    storage
}

/// Creates a stream table: its storage table, change capture on every table the query reads,
/// its catalog records and (unless `initialize => false`) its first full refresh.
#[pg_extern(schema = "pgtrickle")]
fn create_stream_table(
    name: Option<&str>,
    query: Option<&str>,
    schedule: default!(Option<&str>, "'1m'"),
    refresh_mode: default!(Option<&str>, "'AUTO'"),
    initialize: default!(Option<bool>, true),
    cdc_mode: default!(Option<&str>, "'auto'"),
) {
    let clean = refresh::entered_clean();
    security::api(|| {
        let (schema, st_name) = target_name(required(name, "name"));
        let query = required(query, "query");
        let schedule = Schedule::parse(schedule).or_raise();
        let mode = parse_mode(refresh_mode);
        let capture = parse_capture(cdc_mode);
        create(
            NewStreamTable {
                schema: &schema,
                name: &st_name,
                query,
                schedule: &schedule,
                mode,
                initialize: initialize.unwrap_or(true),
                capture,
            },
            clean,
        );
    })
}

/// Creates the stream table if it does not exist; does nothing if it exists with the same
/// definition; otherwise changes it in place (same table, same OID) to the new definition.
#[pg_extern(schema = "pgtrickle")]
fn create_or_replace_stream_table(
    name: Option<&str>,
    query: Option<&str>,
    schedule: default!(Option<&str>, "'1m'"),
    refresh_mode: default!(Option<&str>, "'AUTO'"),
    initialize: default!(Option<bool>, true),
    cdc_mode: default!(Option<&str>, "'auto'"),
) {
    let clean = refresh::entered_clean();
    security::api(|| {
        let name = required(name, "name");
        let (schema, st_name) = target_name(name);
        let query = required(query, "query");
        let schedule = Schedule::parse(schedule).or_raise();
        let mode = parse_mode(refresh_mode);
        let capture = parse_capture(cdc_mode);
        let initialize = initialize.unwrap_or(true);
        let st = match catalog::existing(&schema, &st_name) {
            None => {
                return create(
                    NewStreamTable {
                        schema: &schema,
                        name: &st_name,
                        query,
                        schedule: &schedule,
                        mode,
                        initialize,
                        capture,
                    },
                    clean,
                )
            }
            Some((_, false)) => raise(PgtError::RelationExists(format!("{schema}.{st_name}"))),
            Some((relid, true)) => catalog::by_relid(relid).expect("stream table in catalog"),
        };
        refuse_internal(&st);
        security::require_owner(&st);
        let same_query = same_definition(&st, query);
        let same_schedule = st.schedule == schedule.catalog_text();
        let same_mode = st.refresh_mode == mode.as_str();
        let same_capture = cdc_mode_of(&st) == capture;
        if same_query && same_schedule && same_mode && same_capture {
            notice!("stream table {} is unchanged", st.display());
            return;
        }
        if !same_schedule {
            set_schedule(&st, &schedule);
        }
        if !same_query || !same_mode {
            // The new cdc_mode first: the new sources are checked against it.
            if !same_capture {
                record_cdc_mode(&st, capture);
            }
            redefine(&st, query, mode, initialize, clean);
        }
        if !same_capture {
            set_cdc_mode(&st, capture, mode == RefreshMode::Immediate, clean);
        }
    })
}

fn cdc_mode_of(st: &StreamTable) -> CaptureMode {
    let stored = spi::one::<String>(
        "SELECT cdc_mode FROM pgtrickle.pgt_stream_tables WHERE pgt_id = $1",
        &[st.pgt_id.into()],
    )
    .unwrap_or_default();
    CaptureMode::parse(&stored).unwrap_or(CaptureMode::Auto)
}

fn record_cdc_mode(st: &StreamTable, capture: CaptureMode) {
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET cdc_mode = $2, updated_at = now() WHERE pgt_id = $1",
        &[st.pgt_id.into(), capture.as_str().into()],
    );
}

/// Gives a stream table a new cdc_mode: checked against its base tables and the other stream
/// tables reading them; sources it now pins to triggers go back to them in this transaction,
/// sources it releases move to the WAL at the consumer's next pass.
fn set_cdc_mode(st: &StreamTable, capture: CaptureMode, immediate: bool, clean: bool) {
    record_cdc_mode(st, capture);
    let mut tables: Vec<(Oid, String)> = catalog::table_sources(st.pgt_id);
    // Its internal stream tables capture what they read the same way.
    let mut pending = catalog::children(st.pgt_id);
    while let Some(c) = pending.pop() {
        if let Some(child) = catalog::by_relid(c) {
            record_cdc_mode(&child, capture);
            tables.extend(catalog::table_sources(child.pgt_id));
            pending.extend(catalog::children(child.pgt_id));
        }
    }
    crate::cdc::check_capture_mode(capture, immediate, &tables);
    crate::cdc::hand_back_pinned_sources(clean);
    // SAFETY: reading the backend's own database OID.
    crate::cdc::ensure_consumer_if_needed(unsafe { pg_sys::MyDatabaseId }, true);
}

/// Gives a stream table a new query and/or refresh mode in place: same storage table (OID,
/// grants, user indexes on kept columns), columns and hidden state migrated, capture adjusted,
/// contents recomputed.
pub(crate) fn redefine(
    st: &StreamTable,
    query: &str,
    mode: RefreshMode,
    initialize: bool,
    clean: bool,
) {
    let def = define(query);
    let query = &expanded(query, &def);
    crate::cdc::check_capture_mode(
        cdc_mode_of(st),
        mode == RefreshMode::Immediate,
        &base_tables(&def.sources),
    );
    let mut dag = Dag::from_edges(catalog::all_edges());
    let source_ids: Vec<u32> = def
        .sources
        .iter()
        .filter(|s| s.kind != SourceKind::View)
        .map(|s| s.relid.to_u32())
        .collect();
    dag.set_sources(st.relid.to_u32(), &source_ids, |r| {
        catalog::relation_display(Oid::from(r))
    })
    .or_raise();
    let old_children = catalog::children(st.pgt_id);
    // Whatever planning evaluates of the query, it evaluates as the stream table's owner.
    let planned = security::with_caller(st.owner, || {
        crate::nested::plan(
            st.pgt_id,
            &st.schema,
            &st.name,
            query,
            &def,
            mode,
            cdc_mode_of(st),
        )
    });
    let built = &planned.built;
    spi::exec(
        &format!("LOCK TABLE {} IN EXCLUSIVE MODE", st.quoted()),
        &[],
    );
    // Row identities and hidden state belong to the old plan: start from an empty table.
    spi::exec(&format!("DELETE FROM {}", st.quoted()), &[]);
    if !st.hidden_columns.is_empty() {
        let drops: Vec<String> = st
            .hidden_columns
            .iter()
            .map(|h| {
                format!(
                    "DROP COLUMN IF EXISTS {}",
                    pg_trickle_core::ident::quote_ident(h)
                )
            })
            .collect();
        spi::exec(
            &format!("ALTER TABLE {} {}", st.quoted(), drops.join(", ")),
            &[],
        );
    }
    spi::exec_all(&render::migrate_storage_ddl(
        &st.schema,
        &st.name,
        &st.columns,
        &def.analyzed.columns,
    ));
    if !built.hidden.is_empty() {
        let adds: Vec<String> = built
            .hidden
            .iter()
            .map(|(n, t)| format!("ADD COLUMN {} {t}", pg_trickle_core::ident::quote_ident(n)))
            .collect();
        spi::exec(
            &format!("ALTER TABLE {} {}", st.quoted(), adds.join(", ")),
            &[],
        );
    }
    spi::exec_all(&built.indexes);
    let (names, types, colls) = catalog::column_arrays(&def.analyzed.columns);
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET defining_query = $2, column_names = $3, column_types = $4, \
             column_collations = $5, refresh_mode = $6, is_populated = false, frontier = NULL, frontier_xid = NULL, \
             data_timestamp = NULL, updated_at = now(), query_tree = $7, query_printed = $8 WHERE pgt_id = $1",
        &[
            st.pgt_id.into(),
            query.into(),
            names.into(),
            types.into(),
            colls.into(),
            mode.as_str().into(),
            def.analyzed.tree.clone().into(),
            def.analyzed.deparsed.clone().into(),
        ],
    );
    catalog::store_plan(st.pgt_id, &st.quoted(), built);
    crate::topk::remove(st.pgt_id);
    crate::topk::install(st.pgt_id, st.relid, built);
    wire_sources(st.pgt_id, st.relid, &st.display(), &def, &planned, false);
    crate::nested::adopt(st.pgt_id, st.relid, &planned.children);
    crate::nested::discard(&old_children);
    catalog::store_views(st.pgt_id, &planned.views);
    capture::sync_immediate_triggers(clean);
    security::settle(st.relid, st.owner);
    if initialize {
        refresh::full_refresh(st.relid, Initiator::Alter, None);
    }
}

fn set_schedule(st: &StreamTable, schedule: &Schedule) {
    spi::exec(
        "UPDATE pgtrickle.pgt_stream_tables SET schedule = $2, updated_at = now() WHERE pgt_id = $1",
        &[st.pgt_id.into(), schedule.catalog_text().into()],
    );
}

/// Changes a stream table's schedule, refresh mode and/or cdc_mode; an argument left NULL is
/// unchanged.
#[pg_extern(schema = "pgtrickle")]
fn alter_stream_table(
    name: Option<&str>,
    schedule: default!(Option<&str>, "NULL"),
    refresh_mode: default!(Option<&str>, "NULL"),
    cdc_mode: default!(Option<&str>, "NULL"),
) {
    let clean = refresh::entered_clean();
    security::api(|| {
        let st = resolve_user(required(name, "name"));
        security::require_owner(&st);
        let schedule = schedule.map(|s| Schedule::parse(Some(s)).or_raise());
        let mode = refresh_mode.map(|m| parse_mode(Some(m)));
        let capture = cdc_mode.map(|m| parse_capture(Some(m)));
        if let Some(s) = &schedule {
            set_schedule(&st, s);
        }
        // Altering a stream table resumes it if the scheduler had given up on it.
        spi::exec(
            "UPDATE pgtrickle.pgt_stream_tables SET status = 'ACTIVE', consecutive_errors = 0 \
              WHERE pgt_id = $1 AND status = 'SUSPENDED'",
            &[st.pgt_id.into()],
        );
        let new_mode = mode.filter(|m| m.as_str() != st.refresh_mode);
        let new_capture = capture.filter(|c| *c != cdc_mode_of(&st));
        if let Some(c) = new_capture {
            // Before a re-plan, so it is checked against the new cdc_mode.
            record_cdc_mode(&st, c);
        }
        if let Some(m) = new_mode {
            redefine(&st, &st.defining_query.clone(), m, true, clean);
        }
        if let Some(c) = new_capture {
            let immediate = new_mode.map_or(st.refresh_mode == "IMMEDIATE", |m| {
                m == RefreshMode::Immediate
            });
            set_cdc_mode(&st, c, immediate, clean);
        }
    })
}

/// Refreshes a stream table now, in the caller's transaction. Does not refresh upstream stream
/// tables: refresh those first, in topological order.
#[pg_extern(schema = "pgtrickle")]
fn refresh_stream_table(name: Option<&str>) {
    let initiator = if crate::guc::IMMEDIATE_REFRESH.get() {
        Initiator::Immediate
    } else {
        Initiator::Manual
    };
    // Before anything here writes: whether the caller's transaction wrote before this call.
    let clean = refresh::entered_clean();
    security::api(|| {
        let relid = catalog::resolve_relid(required(name, "name"));
        if let Some(st) = catalog::by_relid(relid) {
            refuse_internal(&st);
            security::require_owner(&st);
        }
        refresh::refresh_manual(relid, initiator, clean);
    })
}

/// Drops a stream table: its storage, its catalog records, and the change capture (buffers,
/// triggers, functions) that no other stream table needs, all in the caller's transaction.
#[pg_extern(schema = "pgtrickle")]
fn drop_stream_table(name: Option<&str>) {
    security::api(|| drop_api(name))
}

fn drop_api(name: Option<&str>) {
    let st = resolve_user(required(name, "name"));
    security::require_owner(&st);
    let dependents = catalog::dependents(st.relid);
    if !dependents.is_empty() {
        raise(PgtError::HasDependents {
            name: st.display(),
            dependents: dependents.join(", "),
        });
    }
    spi::exec(&format!("DROP TABLE {}", st.quoted()), &[]);
    // The sql_drop event trigger has done this already unless event triggers are disabled.
    forget_relations(&[st.relid]);
}

fn forget_relations(dropped: &[Oid]) {
    spi::exec(
        "DELETE FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = ANY($1)",
        &[dropped.to_vec().into()],
    );
    spi::exec(
        "DELETE FROM pgtrickle.pgt_dependencies WHERE source_relid = ANY($1)",
        &[dropped.to_vec().into()],
    );
    capture::drop_unused_captures();
    // Dropping pins no source to triggers; `false`: were one handed back, recompute its readers.
    capture::sync_immediate_triggers(false);
}

/// Called by the `sql_drop` event trigger: forgets stream tables whose storage was dropped and
/// sources that were dropped, and removes capture nobody needs any more.
#[pg_extern(schema = "pgtrickle", name = "_forget_dropped_relations")]
fn forget_dropped_relations(dropped: Vec<Oid>) {
    security::internal(|| forget_dropped_api(dropped))
}

fn forget_dropped_api(dropped: Vec<Oid>) {
    // Only relations that are gone: the function is not for forgetting live stream tables.
    let dropped: Vec<Oid> = spi::oids(
        "SELECT d FROM pg_catalog.unnest($1::oid[]) AS d \
          WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = d)",
        &[dropped.into()],
    );
    if dropped.is_empty() {
        return;
    }
    // Drops of anything else (a TopK stream table's internal table when it is redefined, user
    // tables nothing reads) leave the catalog and capture as they are.
    let relevant = spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = ANY($1)) \
             OR EXISTS (SELECT 1 FROM pgtrickle.pgt_dependencies WHERE source_relid = ANY($1)) \
             OR EXISTS (SELECT 1 FROM pgtrickle.pgt_sources WHERE source_relid = ANY($1))",
        &[dropped.clone().into()],
    )
    .unwrap_or(true);
    if relevant {
        forget_relations(&dropped);
    }
}

/// Called by the `ddl_command_end` event trigger after `CREATE OR REPLACE VIEW`, `ALTER VIEW` or
/// `ALTER TABLE` of relations `changed`: a stream table whose plan inlined one of those views is
/// planned again from its defining query (and recomputed), in the same transaction.
#[pg_extern(schema = "pgtrickle", name = "_replan_for_views")]
fn replan_for_views(changed: Vec<Oid>) {
    security::internal(|| replan_for_views_api(changed))
}

fn replan_for_views_api(changed: Vec<Oid>) {
    let relids: Vec<Oid> = spi::oids(
        "SELECT pgt_relid FROM pgtrickle.pgt_stream_tables WHERE inlined_views && $1 AND parent_pgt_id IS NULL \
          ORDER BY pgt_id",
        &[changed.into()],
    );
    for relid in relids {
        let Some(st) = catalog::by_relid(relid) else {
            continue;
        };
        notice!(
            "stream table {} inlines a view that changed: planned again and recomputed",
            st.display()
        );
        let mode = RefreshMode::parse(&st.refresh_mode).unwrap_or(RefreshMode::Auto);
        let populated = st.is_populated;
        refresh::with_search_path(&st, || {
            redefine(&st, &st.defining_query, mode, populated, false)
        });
    }
}

/// How a stream table is maintained: modes, the operator tree, and the SQL a refresh runs.
#[pg_extern(schema = "pgtrickle")]
fn explain_stream_table(name: Option<&str>) -> String {
    let st = catalog::resolve(required(name, "name"));
    let mut out = vec![
        format!("stream table: {}", st.display()),
        format!("requested mode: {}", st.refresh_mode),
        format!(
            "refresh strategy: {}",
            if st.plan_kind == "FULL" {
                "FULL"
            } else {
                "DIFFERENTIAL"
            }
        ),
    ];
    if let Some(r) = &st.plan_reason {
        out.push(format!("not differential because the query uses {r}"));
    }
    out.push(format!("populated: {}", st.is_populated));
    if let Some((_, parent)) = st.parent {
        out.push(format!(
            "internal stream table of {} (refreshed by its refreshes)",
            catalog::relation_display(parent)
        ));
    }
    let children = catalog::children(st.pgt_id);
    if !children.is_empty() {
        out.push("internal stream tables (refreshed first; explain each for its plan):".into());
        for c in children {
            if let Some(child) = catalog::by_relid(c) {
                out.push(format!("  {}: {}", child.display(), child.defining_query));
            }
        }
    }
    out.push("operator tree:".into());
    out.extend(st.explain_text.lines().map(|l| format!("  {l}")));
    if st.plan_kind != "FULL" {
        let outputs: Vec<String> = st.columns.iter().map(|c| c.name.clone()).collect();
        match pg_trickle_core::ivm::topk::split(&st.defining_query, &outputs) {
            Some(Ok(topk)) => out.extend(index_advice(&topk.inner)),
            _ => out.extend(index_advice(&st.defining_query)),
        }
    }
    if let Some(d) = &st.delta_merge_sql {
        out.push("delta (one statement; $1 = previous frontier, $2 = its transaction, $3 = the last of that transaction's own changes consumed):".into());
        out.push(format!("  {d}"));
    }
    out.push("full refresh (one statement):".into());
    out.push(format!("  {}", st.full_merge_sql));
    if let Some(t) = &st.topk_sql {
        out.push("then, when the internal table changed, the stored rows (one statement):".into());
        out.push(format!("  {t}"));
    }
    out.join("\n")
}

/// For each column a differential refresh looks rows up by (join keys), whether an index leads
/// with it, and the statement that would create one.
fn index_advice(query: &str) -> Vec<String> {
    let Ok(from) = pg_trickle_core::ivm::parse::from_tables(query) else {
        return Vec::new();
    };
    // Each FROM table's columns, so bare names in subqueries resolve as PostgreSQL resolves them.
    let columns: Vec<Vec<String>> = from
        .iter()
        .map(|t| {
            spi::rows(
                "SELECT attname::text FROM pg_catalog.pg_attribute \
                  WHERE attrelid = pg_catalog.to_regclass($1) AND attnum > 0 AND NOT attisdropped \
                  ORDER BY attnum",
                &[t.name.clone().into()],
                |r| r.get::<String>(1).spi_ok().unwrap_or_default(),
            )
        })
        .collect();
    let lookups = pg_trickle_core::ivm::parse::lookup_columns(query, &columns);
    if lookups.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        "join key lookups (an index leading with each keeps a refresh O(changes)):".to_string(),
    ];
    for (i, col) in lookups {
        let Some(t) = from.get(i) else { continue };
        let Some(rel) = spi::one::<Oid>(
            "SELECT pg_catalog.to_regclass($1)::oid",
            &[t.name.clone().into()],
        ) else {
            continue;
        };
        let display = catalog::relation_display(rel);
        let indexed = spi::one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                WHERE i.indrelid = $1 AND a.attname = $2)",
            &[rel.into(), col.clone().into()],
        )
        .unwrap_or(false);
        let column = pg_trickle_core::ident::quote_ident(&col);
        out.push(if indexed {
            format!("  {display} ({column}): indexed")
        } else {
            format!("  {display} ({column}): NO INDEX, each changed row scans the table; recommended: CREATE INDEX ON {display} ({column})")
        });
    }
    out
}

/// The oracle: re-runs the defining query and compares it with the stream table as multisets of
/// rows (text form). `missing`: rows the query returns that the stream table lacks; `extra`: rows
/// the stream table has that the query does not return. Both 0 when the stream table is exact.
#[pg_extern(schema = "pgtrickle")]
fn verify_stream_table(
    name: Option<&str>,
) -> TableIterator<'static, (name!(missing, i64), name!(extra, i64))> {
    let st = catalog::resolve(required(name, "name"));
    let cols: Vec<String> = st
        .columns
        .iter()
        .map(|c| pg_trickle_core::ident::quote_ident(&c.name))
        .collect();
    let sql = format!(
        "WITH __pgt_st AS (SELECT ROW({cols})::text AS r FROM {table}), \
              __pgt_q AS (SELECT __pgt_q::text AS r FROM ({query}\n) AS __pgt_q) \
         SELECT (SELECT count(*) FROM (SELECT r FROM __pgt_q EXCEPT ALL SELECT r FROM __pgt_st) a), \
                (SELECT count(*) FROM (SELECT r FROM __pgt_st EXCEPT ALL SELECT r FROM __pgt_q) b)",
        cols = cols.join(", "),
        table = st.quoted(),
        query = st.defining_query,
    );
    let (missing, extra) = Spi::connect(|client| {
        let t = client.select(&sql, Some(1), &[]).map(|t| t.first());
        let t = t.spi_ok();
        (
            t.get::<i64>(1).spi_ok().unwrap_or(0),
            t.get::<i64>(2).spi_ok().unwrap_or(0),
        )
    });
    TableIterator::once((missing, extra))
}
