//! The differential engine for single-source queries: parse the defining query into operators
//! (Scan → Filter → Project, or Scan → Filter → Aggregate [→ HAVING], or Scan → Filter → Distinct),
//! and render, for each, the SQL that computes its full result and its delta. One file per
//! operator, its delta rule in its module doc.

pub mod aggregate;
pub mod bag;
pub mod distinct;
pub mod expr;
pub mod filter;
pub mod inline;
pub mod join;
mod model;
pub mod nest;
pub mod outer;
pub mod parse;
pub mod passes;
pub mod project;
pub mod recursive;
pub mod relevant;
pub mod scalar;
pub mod scan;
pub mod setop;
pub mod star;
pub mod topk;
pub mod unsupported;

use aggregate::GroupPlan;
use parse::QuerySpec;
pub use parse::Unsupported;
use sqlparser::ast::Expr;

/// Prefix of the delta and full-result columns that carry the stream table's visible columns, by
/// position (`__pgt_c1`, `__pgt_c2`, ...).
pub const COL_PREFIX: &str = "__pgt_c";

/// The name of visible output `i` (from 1): `__pgt_c<i>`.
pub fn output_name(i: usize) -> crate::ir::Name {
    crate::ir::Name::quoted(format!("{COL_PREFIX}{i}"))
}

/// The select list of the query's own output expressions, each as [`output_name`].
pub fn outputs(items: &[Expr]) -> Vec<crate::ir::Item> {
    items
        .iter()
        .enumerate()
        .map(|(i, e)| crate::ir::Item::new(crate::ir::Expr::user(e), output_name(i + 1)))
        .collect()
}

/// A source table as the engine needs it.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// `"schema"."table"`.
    pub quoted: String,
    /// `"pgtrickle_changes"."changes_<oid>"`.
    pub buffer: String,
    /// Captured columns: attnum and name, in order.
    pub columns: Vec<(i16, String)>,
    pub primary_key: Option<Vec<String>>,
    /// The refresh parameter (`$n`) carrying the last own change consumed from this buffer.
    pub own_param: usize,
    /// The attnums of the columns the query can see, when it cannot see them all (see
    /// [`relevant`]): an UPDATE leaving them all as they were is not part of the window.
    pub relevant: Option<Vec<i16>>,
}

/// How a stream table is maintained.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Filter/Project rows identified by the source's primary key.
    Rows {
        spec: Box<QuerySpec>,
        input: Box<join::Input>,
        /// The row identity expression, over the FROM tables' primary keys.
        identity: crate::ir::Expr,
    },
    /// Filter/Project over a source without a primary key: a multiset of numbered copies.
    Bag {
        spec: Box<QuerySpec>,
        input: Box<join::Input>,
    },
    /// Aggregate or DISTINCT: rows identified by their group key.
    Groups(Box<GroupPlan>),
    /// WITH RECURSIVE: a multiset maintained semi-naively for insert-only windows.
    Recursive {
        rec: Box<recursive::Recursive>,
        sources: Vec<SourceTable>,
    },
}

/// Asks PostgreSQL for the result types of a SELECT list (`format_type` names).
pub type TypeProbe<'a> = dyn FnMut(&str) -> Result<Vec<String>, String> + 'a;

impl Plan {
    /// Plans the differential maintenance of `sql` over `src`, or says why it cannot.
    /// `sources` are the sources of the FROM tables, in FROM order (see [`parse::from_tables`]).
    pub fn new(
        sql: &str,
        sources: &[SourceTable],
        probe: &mut TypeProbe,
    ) -> Result<Plan, Unsupported> {
        let columns: Vec<Vec<String>> = sources
            .iter()
            .map(|s| s.columns.iter().map(|(_, n)| n.clone()).collect())
            .collect();
        if let Some(rec) = recursive::Recursive::parse(sql) {
            return Ok(Plan::Recursive {
                rec: Box::new(rec?),
                sources: sources.to_vec(),
            });
        }
        let spec = parse::parse(sql, &columns)?;
        let input = join::Input::new(&spec, sources)?;
        if spec.distinct {
            return Ok(Plan::Groups(Box::new(distinct::plan(&spec, input)?)));
        }
        if !spec.aggregates {
            return Ok(match input.key_identity() {
                Some(identity) => Plan::Rows {
                    spec: Box::new(spec),
                    input: Box::new(input),
                    identity,
                },
                None => Plan::Bag {
                    spec: Box::new(spec),
                    input: Box::new(input),
                },
            });
        }
        let calls = aggregate_calls(&spec);
        // PostgreSQL's types of `exprs` over the FROM clause.
        let mut types_of = |exprs: &[&Expr]| -> Result<Vec<String>, Unsupported> {
            if exprs.is_empty() {
                return Ok(Vec::new());
            }
            Ok(probe(&crate::ir::sql::query(&crate::ir::Query::select(
                crate::ir::Select {
                    items: exprs
                        .iter()
                        .map(|e| crate::ir::Item::bare(crate::ir::Expr::user(e)))
                        .collect(),
                    from: vec![input.full_from.clone()],
                    ..crate::ir::Select::default()
                },
            )))?)
        };
        let agg_types = types_of(&calls.iter().collect::<Vec<_>>())?;
        let args: Vec<Option<Expr>> = calls
            .iter()
            .map(|c| match c {
                Expr::Function(f) => expr::agg_call(f).arg.cloned(),
                _ => None,
            })
            .collect();
        let present: Vec<&Expr> = args.iter().flatten().collect();
        let mut arg_types_iter = types_of(&present)?.into_iter();
        let arg_types: Vec<Option<String>> = args
            .iter()
            .map(|a| a.as_ref().and_then(|_| arg_types_iter.next()))
            .collect();
        Ok(Plan::Groups(Box::new(GroupPlan::new(
            &spec, input, &calls, &agg_types, &arg_types,
        )?)))
    }

    /// Hidden storage columns (name, type) this plan maintains.
    pub fn hidden_columns(&self) -> Vec<(String, String)> {
        match self {
            Plan::Rows { .. } => Vec::new(),
            Plan::Bag { .. } | Plan::Recursive { .. } => {
                vec![(bag::DUP.to_string(), "bigint".to_string())]
            }
            Plan::Groups(g) => g.hidden_columns(),
        }
    }

    /// The full result: `__pgt_c<i>`, `__pgt_row_id`, hidden columns.
    pub fn full_rows_sql(&self) -> String {
        crate::ir::sql::query(&self.full_rows())
    }

    /// [`Self::full_rows_sql`] as a plan.
    pub fn full_rows(&self) -> crate::ir::Query {
        match self {
            Plan::Rows {
                spec,
                input,
                identity,
            } => project::full_rows(input, identity, &spec.items, spec.filter.as_ref()),
            Plan::Bag { spec, input } => bag::full_rows(input, &spec.items, spec.filter.as_ref()),
            Plan::Groups(g) => g.full_rows(),
            Plan::Recursive { rec, sources } => {
                bag::full_rows(&rec.input(sources, ""), &rec.items(), None)
            }
        }
    }

    /// The delta over the window (`$1`, `$2`, and each source's own-change parameter; see
    /// [`scan`]).
    pub fn delta_sql(&self, storage: &str) -> String {
        crate::ir::sql::query(&self.delta(storage))
    }

    /// The delta as a plan.
    pub fn delta(&self, storage: &str) -> crate::ir::Query {
        match self {
            Plan::Rows {
                spec,
                input,
                identity,
            } => project::delta(input, identity, &spec.items, spec.filter.as_ref()),
            Plan::Bag { spec, input } => {
                bag::delta(input, storage, &spec.items, spec.filter.as_ref())
            }
            Plan::Groups(g) => g.delta(storage),
            Plan::Recursive { rec, sources } => {
                bag::delta(&rec.input(sources, storage), storage, &rec.items(), None)
            }
        }
    }

    /// How the delta is applied.
    pub fn merge_kind(&self) -> crate::render::MergeKind {
        match self {
            Plan::Rows { .. } | Plan::Bag { .. } | Plan::Recursive { .. } => {
                crate::render::MergeKind::DeltaRows
            }
            Plan::Groups(_) => crate::render::MergeKind::DeltaGroups,
        }
    }

    /// The operator tree and, below it, the delta statement's plan as a tree
    /// ([`crate::ir::tree`]): what it reads and where it looks rows up.
    pub fn explain_with_delta(&self, storage: &str) -> String {
        let mut out = self.explain();
        out.push_str("\nDelta plan (the delta statement's relations and lookups):");
        for l in crate::ir::tree::query(&self.delta(storage)) {
            out.push_str("\n  ");
            out.push_str(&l);
        }
        out
    }

    /// The operator tree, one operator a line, top first.
    pub fn explain(&self) -> String {
        let (mut lines, spec_filter, input, spec_input) = match self {
            Plan::Recursive { rec, .. } => return rec.explain(),
            Plan::Rows { spec, input, .. } => (
                vec![format!(
                    "Project [{}] (row identity: the primary keys)",
                    list(&spec.items)
                )],
                spec.filter.clone(),
                input.as_ref(),
                spec.as_ref(),
            ),
            Plan::Bag { spec, input } => (
                vec![format!(
                    "Project [{}] (no primary key: a multiset, copies counted by content)",
                    list(&spec.items)
                )],
                spec.filter.clone(),
                input.as_ref(),
                spec.as_ref(),
            ),
            Plan::Groups(g) => {
                let mut lines = Vec::new();
                if let Some(h) = &g.having {
                    lines.push(format!("Having [{h}] (a group whose visibility flips is inserted or deleted whole)"));
                }
                if g.aggs.is_empty() && !g.keys.is_empty() {
                    lines.push(format!("Distinct [{}] (multiplicity count)", list(&g.keys)));
                } else {
                    lines.push(format!(
                        "Aggregate group by [{}]{}",
                        list(&g.keys),
                        if g.scalar { " (scalar)" } else { "" }
                    ));
                    for a in &g.aggs {
                        let how = match &a.kind {
                            aggregate::AggKind::CountStar | aggregate::AggKind::Count => {
                                "algebraic: running count"
                            }
                            aggregate::AggKind::Sum { .. } | aggregate::AggKind::Avg { .. } => {
                                "algebraic: running sum and non-NULL count"
                            }
                            aggregate::AggKind::Min { .. } | aggregate::AggKind::Max { .. } => {
                                "semi-algebraic: rescan the group when its extremum leaves"
                            }
                            aggregate::AggKind::Rescan { .. } => "group rescan",
                        };
                        lines.push(format!("  {} ({how})", a.call));
                    }
                }
                (lines, g.filter.clone(), &g.input, &g.spec)
            }
        };
        if let Some(f) = spec_filter {
            lines.push(format!("  Filter [{f}]"));
        }
        lines.extend(
            input
                .describe(spec_input)
                .into_iter()
                .map(|l| format!("    {l}")),
        );
        lines.join("\n")
    }
}

/// Expressions as a comma-separated list.
fn list(exprs: &[Expr]) -> String {
    exprs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Distinct aggregate calls in the select list and HAVING, in first-seen order.
fn aggregate_calls(spec: &QuerySpec) -> Vec<Expr> {
    let mut calls: Vec<Expr> = Vec::new();
    let mut visit = |e: &Expr| {
        let _ = sqlparser::ast::visit_expressions(e, |x| {
            if let Expr::Function(f) = x {
                if expr::is_aggregate(f) && !calls.iter().any(|c| c.to_string() == x.to_string()) {
                    calls.push(x.clone());
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    };
    for e in &spec.items {
        visit(e);
    }
    if let Some(h) = &spec.having {
        visit(h);
    }
    calls
}

/// An identifier as PostgreSQL resolves it: a quoted one as written, an unquoted one with its
/// ASCII letters folded to lower case (PostgreSQL's `downcase_identifier` in a multibyte
/// database such as UTF-8 leaves every other character as it is). The one folding rule of the
/// engine.
pub fn fold(i: &sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_fold_ascii_only_as_postgresql_does() {
        let unquoted = sqlparser::ast::Ident::new("ÉCOLE_Ünï");
        assert_eq!(super::fold(&unquoted), "École_Ünï");
        let quoted = sqlparser::ast::Ident::with_quote('"', "ÉCOLE");
        assert_eq!(super::fold(&quoted), "ÉCOLE");
    }

    use super::aggregate::AggKind;
    use super::*;

    fn src(pk: bool) -> SourceTable {
        SourceTable {
            quoted: "\"public\".\"products\"".into(),
            buffer: "\"pgtrickle_changes\".\"changes_1\"".into(),
            columns: vec![
                (1, "id".into()),
                (2, "category".into()),
                (3, "price".into()),
                (4, "score".into()),
            ],
            primary_key: pk.then(|| vec!["id".into()]),
            own_param: 3,
            relevant: None,
        }
    }

    /// Types as PostgreSQL would report them for the probes below.
    fn probe(sql: &str) -> Result<Vec<String>, String> {
        let list = sql
            .trim_start_matches("SELECT ")
            .split(" FROM ")
            .next()
            .unwrap();
        Ok(list
            .split(", ")
            .map(|e| {
                let e = e.to_ascii_lowercase();
                if e.starts_with("count") {
                    "bigint".to_string()
                } else if e.contains("score") {
                    "double precision".to_string()
                } else {
                    "numeric".to_string()
                }
            })
            .collect())
    }

    #[test]
    fn the_guides_aggregate_is_algebraic_and_semi_algebraic() {
        let q = "SELECT category, COUNT(*) AS n, ROUND(AVG(price), 2) AS a, MIN(price) AS lo, COUNT(*) FILTER (WHERE price > 1) AS f FROM products GROUP BY category";
        let Plan::Groups(g) = Plan::new(q, &[src(true)], &mut probe).unwrap() else {
            panic!("groups")
        };
        let kinds: Vec<&AggKind> = g.aggs.iter().map(|a| &a.kind).collect();
        assert!(matches!(
            kinds[..],
            [
                AggKind::CountStar,
                AggKind::Avg { .. },
                AggKind::Min { .. },
                AggKind::CountStar
            ]
        ));
        assert!(!g.always_rescan);
        assert_eq!(g.visible[0].to_string(), "\"__pgt_k1\"");
        assert!(g.visible[2]
            .to_string()
            .starts_with("ROUND((CASE WHEN \"__pgt_a2_n\" = 0"));
        let hidden: Vec<String> = g.hidden_columns().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            hidden,
            [
                "__pgt_count",
                "__pgt_a1",
                "__pgt_a2",
                "__pgt_a2_n",
                "__pgt_a3",
                "__pgt_a4"
            ]
        );
        let delta = Plan::Groups(g).delta_sql("\"public\".\"st\"");
        assert!(delta.contains("LEFT JOIN \"public\".\"st\" AS __pgt_t"));
    }

    #[test]
    fn float_sums_and_ordered_aggregates_rescan() {
        let q = "SELECT category, sum(score) AS s, string_agg(category, ',' ORDER BY id) AS l FROM products GROUP BY category";
        let Plan::Groups(g) = Plan::new(q, &[src(true)], &mut probe).unwrap() else {
            panic!("groups")
        };
        assert!(g
            .aggs
            .iter()
            .all(|a| matches!(a.kind, AggKind::Rescan { .. })));
        assert!(g.always_rescan);
    }

    #[test]
    fn projections_need_a_key_and_grouped_outputs_need_grouping() {
        assert!(matches!(
            Plan::new(
                "SELECT id, price FROM products WHERE price > 1",
                &[src(true)],
                &mut probe
            ),
            Ok(Plan::Rows { .. })
        ));
        assert!(matches!(
            Plan::new("SELECT id, price FROM products", &[src(false)], &mut probe),
            Ok(Plan::Bag { .. })
        ));
        assert!(matches!(
            Plan::new(
                "SELECT category, count(*) FROM products GROUP BY 1",
                &[src(false)],
                &mut probe
            ),
            Ok(Plan::Groups(_))
        ));
        let err = Plan::new(
            "SELECT id, price, count(*) FROM products GROUP BY id",
            &[src(true)],
            &mut probe,
        )
        .unwrap_err();
        assert!(err.contains("neither grouped nor aggregated"), "{err}");
        assert!(matches!(
            Plan::new(
                "SELECT DISTINCT category FROM products",
                &[src(false)],
                &mut probe
            ),
            Ok(Plan::Groups(_))
        ));
    }
}
