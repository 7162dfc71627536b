//! Choosing and rendering how a stream table is maintained: the differential plan from
//! `pg_trickle_core::ivm` when the query allows it, a FULL recompute otherwise. The rendered SQL
//! is stored in the catalog, so a refresh only executes it.

use crate::analyze::{result_types, Analyzed};
use crate::catalog::{self, Source, SourceKind};
use crate::error::raise;
use crate::error::SpiOk;
use crate::spi;
use pg_trickle_core::ident::quote_qualified;
use pg_trickle_core::ir::{sql, Name, RelName, Statement};
use pg_trickle_core::ivm::topk::{self, TopK};
use pg_trickle_core::ivm::{Plan, SourceTable, Unsupported};
use pg_trickle_core::mode::RefreshMode;
use pg_trickle_core::render::{self, MergeKind, OutputColumn, CHANGES_SCHEMA};
use pg_trickle_core::PgtError;
use pgrx::pg_sys::Oid;
use pgrx::prelude::*;

/// A rendered maintenance plan.
pub struct Built {
    /// `FULL`, `ROWS` or `GROUPS`.
    pub kind: &'static str,
    /// Why a stream table that asked for AUTO refreshes FULL.
    pub reason: Option<String>,
    pub hidden: Vec<(String, String)>,
    /// Indexes the plan's hidden columns need (DDL, run after they are added).
    pub indexes: Vec<String>,
    pub full_merge_sql: String,
    pub delta_merge_sql: Option<String>,
    pub explain: String,
    /// For a differential plan: its sources in parameter order and its probe.
    pub window: Option<Window>,
    /// IMMEDIATE: the differential plan runs at the end of every statement that changes a
    /// source, in the writer's transaction.
    pub immediate: bool,
    /// TopK: the internal table the plan maintains and how the stream table is derived from it.
    pub topk: Option<TopKBuilt>,
}

impl Built {
    pub fn effective_mode(&self) -> &'static str {
        if self.kind == "FULL" {
            "FULL"
        } else if self.immediate {
            "IMMEDIATE"
        } else {
            "DIFFERENTIAL"
        }
    }
}

/// The source as the engine sees it: its buffer and the columns the buffer holds.
pub fn source_table(relid: Oid) -> Result<SourceTable, String> {
    let quoted = catalog::relation_quoted(relid).unwrap_or_default();
    let current: Vec<(i16, String)> = spi::rows(
        "SELECT attnum, attname::text FROM pg_catalog.pg_attribute \
          WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        &[relid.into()],
        |r| {
            (
                r.get::<i16>(1).spi_ok().unwrap_or(0),
                r.get::<String>(2).spi_ok().unwrap_or_default(),
            )
        },
    );
    if let Some(captured) = spi::one::<Vec<i16>>(
        "SELECT column_attnums FROM pgtrickle.pgt_sources WHERE source_relid = $1",
        &[relid.into()],
    ) {
        let now: Vec<i16> = current.iter().map(|c| c.0).collect();
        if captured != now {
            return Err(format!(
                "source table {quoted} whose columns changed after change capture was installed"
            ));
        }
    }
    let pk: Vec<String> = spi::rows(
        "SELECT a.attname::text FROM pg_catalog.pg_index i \
           JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true \
           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
          WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.n",
        &[relid.into()],
        |r| r.get::<String>(1).spi_ok().unwrap_or_default(),
    );
    Ok(SourceTable {
        quoted,
        buffer: quote_qualified(CHANGES_SCHEMA, &render::buffer_table(relid.to_u32())),
        columns: current,
        // A stream table's storage has no primary key; its row identity plays the part.
        primary_key: if !pk.is_empty() {
            Some(pk)
        } else if catalog::by_relid(relid).is_some() {
            Some(vec!["__pgt_row_id".to_string()])
        } else {
            None
        },
        own_param: 3,
        relevant: None,
    })
}

/// The distinct sources of a differential plan, in parameter order, and its probe.
pub struct Window {
    pub sources: Vec<Oid>,
    pub probe_sql: String,
    /// Each source's window as the delta reads it (`scan::events`), in parameter order; empty
    /// for a FULL plan's window.
    pub events: Vec<String>,
}

fn differential(
    query: &str,
    analyzed: &Analyzed,
    sources: &[Source],
) -> Result<(Plan, Window), Unsupported> {
    if analyzed.volatile {
        return Err(Unsupported::new(
            "a volatile function (random(), nextval(), clock_timestamp(), ...)",
        )
        .hint(
            "A volatile function returns another value on every call, so no change can be \
                     computed from the last result: compute it when reading the stream table.",
        ));
    }
    if analyzed.srf_below {
        return Err(
            "a set-returning function in the select list of a subquery, WITH query or set operation branch"
                .into(),
        );
    }
    if let Some(v) = sources.iter().find(|s| s.kind == SourceKind::View) {
        return Err(format!("view {} (supported in a later version)", v.display).into());
    }
    let from = pg_trickle_core::ivm::parse::from_tables(query)?;
    // Each FROM table resolved as PostgreSQL resolved it (same text, same search_path).
    let mut distinct: Vec<Oid> = Vec::new();
    let mut from_sources = Vec::new();
    for t in &from {
        let oid = spi::one::<Oid>(
            "SELECT pg_catalog.to_regclass($1)::oid",
            &[t.name.clone().into()],
        )
        .ok_or_else(|| format!("table {} that pg_trickle cannot resolve", t.name))?;
        if !sources.iter().any(|s| {
            s.relid == oid && matches!(s.kind, SourceKind::Table | SourceKind::StreamTable)
        }) {
            return Err(format!("relation {} that is not a table", t.name).into());
        }
        let param = match distinct.iter().position(|&o| o == oid) {
            Some(i) => i,
            None => {
                distinct.push(oid);
                distinct.len() - 1
            }
        };
        let mut src = source_table(oid)?;
        src.own_param = 3 + param;
        let read = analyzed.columns_read.iter().find(|(r, _)| *r == oid);
        if let Some((_, None)) = read {
            // The window's rows carry a weight column: a whole row of one is not the table's.
            return Err(Unsupported::new(format!(
                "a whole-row or system-column reference to table {} ({}.* or the table's name as a value, ctid, xmin, ...)",
                t.name, t.alias
            ))
            .hint("Name the columns instead: row_to_json(t) as json_build_object('a', t.a, ...), t.* as t.a, t.b, ..."));
        }
        src.relevant =
            pg_trickle_core::ivm::relevant::attnums(&src, read.and_then(|(_, c)| c.as_deref()));
        from_sources.push(src);
    }
    let tables = sources
        .iter()
        .filter(|s| matches!(s.kind, SourceKind::Table | SourceKind::StreamTable))
        .count();
    if tables != distinct.len() {
        return Err(format!(
            "{tables} tables where the FROM clause names {}",
            distinct.len()
        )
        .into());
    }
    let plan = Plan::new(query, &from_sources, &mut |sql| Ok(result_types(sql)))?;
    let probe_sources = pg_trickle_core::ivm::scan::probe_sources(&from_sources);
    Ok((
        plan,
        Window {
            probe_sql: pg_trickle_core::ivm::scan::probe_sql(&probe_sources),
            events: probe_sources
                .iter()
                .map(|s| pg_trickle_core::ivm::scan::events_sql(s))
                .collect(),
            sources: distinct,
        },
    ))
}

/// For a FULL plan: its sources' change window, when every input of the query is captured, so
/// the scheduler can tell that nothing changed: every source is a base table or a stream table,
/// none has inheritance children (their rows are read but not captured), and the query calls
/// no function defined outside the system schemas (one could read other tables).
fn change_window(query: &str, sources: &[Source]) -> Option<Window> {
    if sources.is_empty()
        || sources
            .iter()
            .any(|s| !matches!(s.kind, SourceKind::Table | SourceKind::StreamTable))
    {
        return None;
    }
    let relids: Vec<Oid> = sources.iter().map(|s| s.relid).collect();
    let names = pg_trickle_core::ivm::expr::query_function_names(query)?;
    let uncaptured = spi::one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits WHERE inhparent = ANY($1)) \
             OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
                         WHERE p.proname = ANY($2) AND n.nspname NOT IN ('pg_catalog', 'information_schema'))",
        &[relids.into(), names.into()],
    )
    .unwrap_or(true);
    if uncaptured {
        return None;
    }
    let mut tables = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let mut t = source_table(s.relid).ok()?;
        t.own_param = 3 + i;
        tables.push(t);
    }
    let refs: Vec<&SourceTable> = tables.iter().collect();
    Some(Window {
        probe_sql: pg_trickle_core::ivm::scan::probe_sql(&refs),
        sources: sources.iter().map(|s| s.relid).collect(),
        events: Vec::new(),
    })
}

/// A TopK stream table's internal table (see `pg_trickle_core::ivm::topk`): the DDL that creates
/// it and the statement that re-derives the stream table's rows from it.
pub struct TopKBuilt {
    /// `CREATE TABLE`, its hidden columns and indexes, the key index.
    pub ddl: Vec<String>,
    pub merge_sql: String,
}

/// The internal table of the TopK stream table `pgt_id`: `pgtrickle_changes.topk_<pgt_id>`.
pub fn topk_table(pgt_id: i64) -> (String, String) {
    (CHANGES_SCHEMA.to_string(), format!("topk_{pgt_id}"))
}

/// Renders a differential `plan` that maintains the table `schema.name` whose visible columns
/// are `visible`.
fn render_differential(
    plan: &Plan,
    window: Window,
    schema: &str,
    name: &str,
    visible: &[String],
    mode: RefreshMode,
) -> Built {
    let storage = quote_qualified(schema, name);
    let hidden = plan.hidden_columns();
    let hidden_names: Vec<String> = hidden.iter().map(|(n, _)| n.clone()).collect();
    let kind = match plan {
        Plan::Rows { .. } => "ROWS",
        Plan::Bag { .. } | Plan::Recursive { .. } => "BAG",
        Plan::Groups(_) => "GROUPS",
    };
    Built {
        kind,
        reason: None,
        full_merge_sql: sql::query(&render::merge(
            schema,
            name,
            visible,
            &hidden_names,
            Statement::Query(plan.full_rows()),
            MergeKind::Full,
        )),
        delta_merge_sql: Some(sql::query(&render::merge(
            schema,
            name,
            visible,
            &hidden_names,
            Statement::Query(plan.delta(&storage)),
            plan.merge_kind(),
        ))),
        explain: plan.explain_with_delta(&storage),
        window: Some(window),
        immediate: mode == RefreshMode::Immediate,
        indexes: if matches!(plan, Plan::Bag { .. } | Plan::Recursive { .. }) {
            vec![format!(
                "CREATE INDEX ON {storage} ({})",
                pg_trickle_core::ident::quote_ident(pg_trickle_core::ivm::bag::DUP)
            )]
        } else {
            Vec::new()
        },
        hidden,
        topk: None,
    }
}

/// A TopK query maintained differentially: the inner query's plan renders into the internal
/// table, and the stream table is re-derived from it (`columns` are the stream table's).
/// The stream table a plan is for.
struct Target<'a> {
    pgt_id: i64,
    schema: &'a str,
    name: &'a str,
    columns: &'a [OutputColumn],
}

fn topk_differential(
    target: &Target,
    topk: &TopK,
    analyzed: &Analyzed,
    sources: &[Source],
    mode: RefreshMode,
) -> Result<Built, Unsupported> {
    let Target {
        pgt_id,
        schema,
        name,
        columns,
    } = *target;
    let (plan, window) = differential(&topk.inner, analyzed, sources)?;
    let inner_columns = crate::analyze::analyze_internal(&topk.inner).columns;
    let inner_visible: Vec<String> = inner_columns.iter().map(|c| c.name.clone()).collect();
    let visible: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let (ischema, iname) = topk_table(pgt_id);
    let internal = quote_qualified(&ischema, &iname);
    let inner = render_differential(&plan, window, &ischema, &iname, &inner_visible, mode);
    let mut ddl = render::storage_ddl_with_hidden(&ischema, &iname, &inner_columns, &inner.hidden);
    ddl.extend(inner.indexes.iter().cloned());
    ddl.push(topk.index_sql(&internal, &visible));
    let merge_sql = sql::query(&render::merge(
        schema,
        name,
        &visible,
        &[],
        Statement::Query(render::full_rows_of(
            Statement::Query(topk.top(
                RelName::Qualified(Name::quoted(ischema.clone()), Name::quoted(iname.clone())),
                &visible,
            )),
            columns,
        )),
        MergeKind::Full,
    ));
    Ok(Built {
        explain: format!(
            "{}\nInternal table {internal}:\n{}",
            topk.explain(&visible),
            inner
                .explain
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        hidden: Vec::new(),
        indexes: Vec::new(),
        topk: Some(TopKBuilt { ddl, merge_sql }),
        ..inner
    })
}

/// Plans stream table `pgt_id`, stored in `schema.name`, with output `columns`, for `mode`. AUTO
/// falls back to FULL with a NOTICE naming the reason; DIFFERENTIAL errors instead.
#[allow(clippy::too_many_arguments)]
pub fn build(
    pgt_id: i64,
    schema: &str,
    name: &str,
    query: &str,
    columns: &[OutputColumn],
    analyzed: &Analyzed,
    sources: &[Source],
    mode: RefreshMode,
) -> Built {
    attempt(
        pgt_id, schema, name, query, columns, analyzed, sources, mode,
    )
    .unwrap_or_else(|reason| {
        full(
            schema, name, query, columns, analyzed, sources, mode, reason,
        )
    })
}

/// The differential plan of `query` (TopK included), or why there is none (empty when FULL was
/// asked for).
#[allow(clippy::too_many_arguments)]
pub fn attempt(
    pgt_id: i64,
    schema: &str,
    name: &str,
    query: &str,
    columns: &[OutputColumn],
    analyzed: &Analyzed,
    sources: &[Source],
    mode: RefreshMode,
) -> Result<Built, Unsupported> {
    let visible: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    match mode {
        RefreshMode::Full => Err(Unsupported::none()),
        _ => match topk::split(query, &visible) {
            Some(Ok(topk)) => topk_differential(
                &Target {
                    pgt_id,
                    schema,
                    name,
                    columns,
                },
                &topk,
                analyzed,
                sources,
                mode,
            ),
            Some(Err(reason)) => Err(reason),
            None => differential(query, analyzed, sources).map(|(plan, window)| {
                render_differential(&plan, window, schema, name, &visible, mode)
            }),
        },
    }
}

/// The FULL plan of `query`, refreshed FULL because of `reason` (empty: FULL was asked for).
/// DIFFERENTIAL and IMMEDIATE raise the reason instead; AUTO says it in a NOTICE.
#[allow(clippy::too_many_arguments)]
pub fn full(
    schema: &str,
    name: &str,
    query: &str,
    columns: &[OutputColumn],
    analyzed: &Analyzed,
    sources: &[Source],
    mode: RefreshMode,
    reason: Unsupported,
) -> Built {
    let visible: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let hint = reason.hint.clone();
    let reason = (!reason.is_none()).then_some(reason.construct);
    let window =
        if analyzed.volatile || pg_trickle_core::ivm::expr::query_reads_changing_values(query) {
            None
        } else {
            change_window(query, sources)
        };
    if let Some(r) = &reason {
        if mode == RefreshMode::Differential {
            raise(PgtError::NotDifferentiable(r.clone(), hint));
        }
        if mode == RefreshMode::Immediate {
            raise(PgtError::NotImmediate(r.clone(), hint));
        }
        notice!("stream table {schema}.{name} will refresh FULL: DIFFERENTIAL cannot maintain a query that uses {r}");
    }
    Built {
        kind: "FULL",
        full_merge_sql: sql::query(&render::merge(
            schema,
            name,
            &visible,
            &[],
            Statement::Query(render::full_rows(query, columns)),
            MergeKind::Full,
        )),
        delta_merge_sql: None,
        explain: format!(
            "Full recompute of the defining query (row identity: content hash){}",
            reason
                .as_ref()
                .map(|r| format!("; not differential: uses {r}"))
                .unwrap_or_default()
        ),
        reason,
        hidden: Vec::new(),
        indexes: Vec::new(),
        window,
        immediate: false,
        topk: None,
    }
}

/// Renders the refresh SQL again for a stream table whose storage was renamed (the SQL names
/// it), or plans it again when another version of pg_trickle planned it (after an upgrade).
pub fn rerender(st: &catalog::StreamTable) {
    let mode = RefreshMode::parse(&st.refresh_mode).unwrap_or(RefreshMode::Auto);
    if st.planned_by != catalog::PLANNER {
        let by = if st.planned_by.is_empty() {
            "an earlier version of pg_trickle".to_string()
        } else {
            format!("pg_trickle {}", st.planned_by)
        };
        pgrx::notice!(
            "stream table {} was planned by {by}: planned again by {} and recomputed",
            st.display(),
            catalog::PLANNER
        );
    }
    // Planned over internal stream tables: planned again (new internal tables, the old ones
    // dropped), as the rewritten query is not stored. Planned by another version (an upgrade):
    // planned again in full, as create_stream_table plans (a query the old version refreshed
    // FULL may be maintained differentially now, over internal stream tables or as a TopK).
    if st.planned_by != catalog::PLANNER || !catalog::children(st.pgt_id).is_empty() {
        crate::api::redefine(
            st,
            &st.defining_query,
            mode,
            false,
            crate::refresh::entered_clean(),
        );
        return;
    }
    let analyzed = crate::analyze::analyze(&st.defining_query);
    let sources = catalog::classify_sources(&analyzed.relations);
    let built = build(
        st.pgt_id,
        &st.schema,
        &st.name,
        &st.defining_query,
        &st.columns,
        &analyzed,
        &sources,
        mode,
    );
    // Planned by an earlier version into another shape (a query 0.4.0 refreshed FULL that this
    // version maintains differentially, or a TopK): the storage's hidden columns, the internal
    // table and the row identities belong to the old plan, so the stream table is redefined
    // (emptied, migrated) and the next refresh is FULL.
    let hidden: Vec<String> = built.hidden.iter().map(|(n, _)| n.clone()).collect();
    if built.kind != st.plan_kind
        || hidden != st.hidden_columns
        || built.topk.is_some() != st.topk_sql.is_some()
    {
        crate::api::redefine(
            st,
            &st.defining_query,
            mode,
            false,
            crate::refresh::entered_clean(),
        );
        return;
    }
    catalog::store_plan(st.pgt_id, &st.quoted(), &built);
}
