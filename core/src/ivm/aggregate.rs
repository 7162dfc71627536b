//! Aggregate: `GROUP BY keys` with aggregates (and HAVING), or a scalar aggregate without GROUP BY.
//! One stream-table row per visible group, identified by the hash of its key values; hidden
//! columns keep what the maintenance needs: `__pgt_count` (rows in the group) and per aggregate
//! `__pgt_a<j>` (plus `__pgt_a<j>_n`, the count of non-NULL inputs, for SUM and AVG).
//!
//! **Delta rule.** The window's weighted images (Scan, Filter) are grouped by key and summed:
//! - COUNT(*), COUNT(x): state += Σw (over non-NULL x);
//! - SUM(x), AVG(x) over exact types: sum += Σw·x and n += Σw over non-NULL x, in numeric; SUM is
//!   NULL when n = 0; AVG = sum / n, PostgreSQL's own definition, so it prints identically;
//! - MIN(x)/MAX(x): state = LEAST/GREATEST(state, inserted values), unless a removed value reaches
//!   the current extremum: then the group is rescanned;
//! - any other aggregate (DISTINCT or ordered calls, string_agg, array_agg, bool_and, stddev,
//!   corr, regr_*, SUM/AVG of floats, ...): the group is rescanned, i.e. recomputed from the
//!   source with the query's own expressions, which is exact by construction.
//!
//! FILTER (WHERE c) restricts the inputs of its aggregate the same way. A group whose count drops
//! to 0 is deleted (a scalar aggregate keeps its one row). With HAVING, the group's visibility is
//! re-evaluated on its new state and the whole row is inserted or deleted when it flips; a changed
//! group that is not stored (hidden by HAVING, so its state is unknown) is rescanned.

use super::expr::{agg_call, ident, is_aggregate, substitute};
use super::join::{content_hash, Input};
use super::{output_name, Unsupported};
use crate::ident::quote_ident;
use crate::ir::{
    Cte, Expr as E, From, Item, JoinKind, Name, Op, Query, RelName, Select, SetExpr, Statement,
};
use crate::render::ROW_ID;
use sqlparser::ast::Expr;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

#[derive(Debug, Clone, PartialEq)]
pub enum AggKind {
    CountStar,
    Count,
    Sum { result_type: String },
    Avg { result_type: String },
    Min { ty: String },
    Max { ty: String },
    Rescan { ty: String },
}

#[derive(Debug, Clone)]
pub struct Agg {
    /// The call as written (used for rescans).
    pub call: Expr,
    pub kind: AggKind,
    pub arg: Option<Expr>,
    pub filter: Option<Expr>,
}

/// A maintained aggregate (or DISTINCT, which is an aggregate with no aggregate calls).
#[derive(Debug, Clone)]
pub struct GroupPlan {
    /// Where the rows come from (the FROM clause and its delta).
    pub input: Input,
    /// The query this plan maintains.
    pub spec: super::parse::QuerySpec,
    pub keys: Vec<Expr>,
    pub aggs: Vec<Agg>,
    /// Output expressions over the group state (`__pgt_k<i>`, `__pgt_a<j>`...).
    pub visible: Vec<Expr>,
    /// HAVING as written (over the source) and over the group state.
    pub having: Option<Expr>,
    pub having_state: Option<Expr>,
    pub filter: Option<Expr>,
    /// No GROUP BY: exactly one row, even over no input.
    pub scalar: bool,
    /// Some aggregate can only be recomputed: every changed group is rescanned.
    pub always_rescan: bool,
}

fn key_col(i: usize) -> String {
    format!("__pgt_k{}", i + 1)
}

fn agg_col(j: usize) -> String {
    format!("__pgt_a{}", j + 1)
}

fn agg_n_col(j: usize) -> String {
    format!("__pgt_a{}_n", j + 1)
}

fn parse_expr(sql: &str) -> Result<Expr, Unsupported> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("an expression pg_trickle cannot rewrite ({sql}: {e})").into())
}

/// Whether SUM/AVG over `ty` can be maintained exactly by running totals.
fn exact_numeric(ty: &str) -> bool {
    matches!(ty, "smallint" | "integer" | "bigint") || ty == "numeric" || ty.starts_with("numeric(")
}

impl GroupPlan {
    /// Builds the plan. `agg_types` are the result types of `calls` and `arg_types` the types of
    /// their single arguments (None where there is none), both from PostgreSQL.
    pub fn new(
        spec: &super::parse::QuerySpec,
        input: Input,
        calls: &[Expr],
        agg_types: &[String],
        arg_types: &[Option<String>],
    ) -> Result<GroupPlan, Unsupported> {
        let keys: Vec<Expr> = if spec.distinct {
            if spec.aggregates {
                return Err("DISTINCT together with aggregation".into());
            }
            spec.items.clone()
        } else {
            spec.group_by.clone()
        };
        let mut aggs = Vec::new();
        for (j, call) in calls.iter().enumerate() {
            let Expr::Function(f) = call else {
                unreachable!("calls are function calls")
            };
            let c = agg_call(f);
            let arg_ty = arg_types.get(j).cloned().flatten().unwrap_or_default();
            let ty = agg_types[j].clone();
            let kind = if c.complex {
                AggKind::Rescan { ty: ty.clone() }
            } else {
                match (c.name.as_str(), c.star, c.arg.is_some()) {
                    ("count", true, _) => AggKind::CountStar,
                    ("count", false, true) => AggKind::Count,
                    ("sum", false, true) if exact_numeric(&arg_ty) => {
                        AggKind::Sum { result_type: ty }
                    }
                    ("avg", false, true) if exact_numeric(&arg_ty) => {
                        AggKind::Avg { result_type: ty }
                    }
                    ("min", false, true) => AggKind::Min { ty },
                    ("max", false, true) => AggKind::Max { ty },
                    _ => AggKind::Rescan { ty },
                }
            };
            aggs.push(Agg {
                call: call.clone(),
                kind,
                arg: c.arg.cloned(),
                filter: c.filter.cloned(),
            });
        }
        let always_rescan = aggs
            .iter()
            .any(|a| matches!(a.kind, AggKind::Rescan { .. }));
        let mut values = Vec::new();
        for (j, a) in aggs.iter().enumerate() {
            let (v, n) = (quote_ident(&agg_col(j)), quote_ident(&agg_n_col(j)));
            values.push(match &a.kind {
                AggKind::Sum { result_type } => parse_expr(&format!(
                    "(CASE WHEN {n} = 0 THEN NULL ELSE {v} END)::{result_type}"
                ))?,
                AggKind::Avg { result_type } => parse_expr(&format!(
                    "(CASE WHEN {n} = 0 THEN NULL ELSE {v} / {n} END)::{result_type}"
                ))?,
                _ => ident(&agg_col(j)),
            });
        }
        let key_text: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let call_text: Vec<String> = calls.iter().map(|c| c.to_string()).collect();
        let over_state = |e: &Expr| -> Result<Expr, Unsupported> {
            let out = substitute(e, &|x| {
                let t = x.to_string();
                if let Some(i) = key_text.iter().position(|k| *k == t) {
                    return Some(ident(&key_col(i)));
                }
                if let Expr::Function(f) = x {
                    if is_aggregate(f) {
                        return call_text
                            .iter()
                            .position(|c| *c == t)
                            .map(|j| values[j].clone());
                    }
                }
                None
            });
            if super::expr::has_column_reference(&out) {
                return Err(format!(
                    "output expression {e} uses a column that is neither grouped nor aggregated"
                )
                .into());
            }
            Ok(out)
        };
        let visible = spec
            .items
            .iter()
            .map(&over_state)
            .collect::<Result<Vec<_>, _>>()?;
        let having_state = spec.having.as_ref().map(&over_state).transpose()?;
        Ok(GroupPlan {
            input,
            spec: spec.clone(),
            scalar: keys.is_empty(),
            keys,
            aggs,
            visible,
            having: spec.having.clone(),
            having_state,
            filter: spec.filter.clone(),
            always_rescan,
        })
    }

    /// Hidden storage columns: name and type.
    pub fn hidden_columns(&self) -> Vec<(String, String)> {
        let mut v = vec![("__pgt_count".to_string(), "bigint".to_string())];
        for (j, a) in self.aggs.iter().enumerate() {
            match &a.kind {
                AggKind::CountStar | AggKind::Count => v.push((agg_col(j), "bigint".into())),
                AggKind::Sum { .. } | AggKind::Avg { .. } => {
                    v.push((agg_col(j), "numeric".into()));
                    v.push((agg_n_col(j), "bigint".into()));
                }
                AggKind::Min { ty } | AggKind::Max { ty } => v.push((agg_col(j), ty.clone())),
                AggKind::Rescan { .. } => {}
            }
        }
        v
    }

    /// The group state computed from the source (initial population, FULL, rescans): keys,
    /// `__pgt_count`, and every aggregate's state; `restrict` limits it to some groups.
    pub fn state(&self, restrict: Option<E>) -> Select {
        self.state_with(restrict, None)
    }

    /// [`Self::state`] with an extra HAVING condition (for scalar rescans: a scalar aggregate
    /// returns its one row even over no input, so whether to rescan at all goes in HAVING).
    fn state_with(&self, restrict: Option<E>, extra_having: Option<E>) -> Select {
        let mut cols: Vec<Item> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| Item::new(E::user(k), Name::quoted(key_col(i))))
            .collect();
        cols.push(Item::new(
            E::call("count", vec![E::Star(None)]),
            Name::quoted("__pgt_count"),
        ));
        for (j, a) in self.aggs.iter().enumerate() {
            let f = || a.filter.as_ref().map(E::user);
            let arg = || a.arg.as_ref().map(E::user).unwrap_or_else(E::null);
            let (v, n) = (Name::quoted(agg_col(j)), Name::quoted(agg_n_col(j)));
            match &a.kind {
                AggKind::CountStar => {
                    cols.push(Item::new(E::agg("count", vec![E::Star(None)], f()), v))
                }
                AggKind::Count => cols.push(Item::new(E::agg("count", vec![arg()], f()), v)),
                AggKind::Sum { .. } | AggKind::Avg { .. } => {
                    cols.push(Item::new(
                        E::agg("sum", vec![E::cast(arg(), "numeric")], f()),
                        v,
                    ));
                    cols.push(Item::new(E::agg("count", vec![arg()], f()), n));
                }
                AggKind::Min { .. } => cols.push(Item::new(E::agg("min", vec![arg()], f()), v)),
                AggKind::Max { .. } => cols.push(Item::new(E::agg("max", vec![arg()], f()), v)),
                AggKind::Rescan { .. } => cols.push(Item::new(E::user(&a.call), v)),
            }
        }
        // A complete result reads the decorrelated FROM; a rescan of a few groups the lookups.
        let from = if restrict.is_some() {
            &self.input.full_from
        } else {
            &self.input.bulk_from
        };
        let filter: Vec<E> = self.filter.iter().map(E::user).chain(restrict).collect();
        let having: Vec<E> = self
            .having
            .iter()
            .map(E::user)
            .chain(extra_having)
            .collect();
        Select {
            items: cols,
            from: vec![from.clone()],
            filter: (!filter.is_empty()).then(|| E::and(filter)),
            group_by: self.keys.iter().map(E::user).collect(),
            having: (!having.is_empty()).then(|| E::and(having)),
            ..Select::default()
        }
    }

    /// The row identity over group keys, optionally qualified by `rel`.
    fn row_identity_of(&self, rel: Option<&str>) -> E {
        content_hash(
            (0..self.keys.len())
                .map(|i| E::Col(rel.map(Name::internal), Name::quoted(key_col(i))))
                .collect(),
        )
    }

    /// Output columns over a relation of group states aliased `__pgt_g`: `__pgt_c<i>`, the row
    /// identity, and the stored hidden state.
    fn output_columns(&self) -> Vec<Item> {
        let mut cols = super::outputs(&self.visible);
        cols.push(Item::new(self.row_identity_of(None), Name::quoted(ROW_ID)));
        for (h, _) in self.hidden_columns() {
            cols.push(Item::bare(E::Col(None, Name::quoted(h))));
        }
        cols
    }

    /// The full result (visible columns, identity, hidden state) from the source.
    pub fn full_rows(&self) -> Query {
        Query::select(Select {
            items: self.output_columns(),
            from: vec![From::subquery(
                Statement::Query(Query::select(self.state(None))),
                Name::internal("__pgt_g"),
            )],
            ..Select::default()
        })
    }

    /// The delta: one row per changed group with its new visible columns, identity, hidden state
    /// and `__pgt_keep` (false: delete the group's row).
    pub fn delta(&self, storage: &str) -> Query {
        let nk = self.keys.len();
        let key = |i: usize| Name::quoted(key_col(i));
        let keys = |rel: Option<&str>| -> Vec<E> {
            (0..nk)
                .map(|i| E::Col(rel.map(Name::internal), key(i)))
                .collect()
        };
        let h = |c: &str| E::hidden(None, c);
        let t = |c: &str| E::Col(Some(Name::internal("__pgt_t")), Name::quoted(c));
        let dg = |c: &str| E::hidden(Some("__pgt_dg"), c);
        let w = || h("__pgt_w");
        let zero_if_null = |e: E| E::call("COALESCE", vec![e, E::int(0)]);
        let local = |n: &str, alias: Option<&str>| {
            From::Table(RelName::Local(Name::internal(n)), alias.map(Name::internal))
        };
        // 1. The window's images: keys, weight, aggregate inputs and filters.
        let mut d_cols: Vec<Item> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| Item::new(E::user(k), key(i)))
            .collect();
        for (j, a) in self.aggs.iter().enumerate() {
            if let Some(arg) = &a.arg {
                d_cols.push(Item::new(
                    E::user(arg),
                    Name::internal(format!("__pgt_x{}", j + 1)),
                ));
            }
            d_cols.push(Item::new(
                a.filter
                    .as_ref()
                    .map(|f| E::call("COALESCE", vec![E::user(f), E::bool(false)]))
                    .unwrap_or_else(|| E::bool(true)),
                Name::internal(format!("__pgt_f{}", j + 1)),
            ));
        }
        // 2. Grouped deltas.
        let mut dg_cols: Vec<Item> = keys(None).into_iter().map(Item::bare).collect();
        dg_cols.push(Item::new(
            E::call("sum", vec![w()]),
            Name::internal("__pgt_dc"),
        ));
        for (j, a) in self.aggs.iter().enumerate() {
            let x = || h(&format!("__pgt_x{}", j + 1));
            let f = || h(&format!("__pgt_f{}", j + 1));
            let d = |suffix: &str| Name::internal(format!("__pgt_d{}{suffix}", j + 1));
            let counted = |e: E| E::and(vec![E::IsNull(Box::new(e), true), f()]);
            match &a.kind {
                AggKind::CountStar => dg_cols.push(Item::new(
                    zero_if_null(E::agg("sum", vec![w()], Some(f()))),
                    d(""),
                )),
                AggKind::Count => dg_cols.push(Item::new(
                    zero_if_null(E::agg("sum", vec![w()], Some(counted(x())))),
                    d(""),
                )),
                AggKind::Sum { .. } | AggKind::Avg { .. } => {
                    dg_cols.push(Item::new(
                        zero_if_null(E::agg(
                            "sum",
                            vec![E::bin(Op::Mul, w(), E::cast(x(), "numeric"))],
                            Some(counted(x())),
                        )),
                        d(""),
                    ));
                    dg_cols.push(Item::new(
                        zero_if_null(E::agg("sum", vec![w()], Some(counted(x())))),
                        d("_n"),
                    ));
                }
                AggKind::Min { .. } | AggKind::Max { .. } => {
                    let m = if matches!(a.kind, AggKind::Min { .. }) {
                        "min"
                    } else {
                        "max"
                    };
                    let signed = |op| E::and(vec![E::bin(op, w(), E::int(0)), f()]);
                    dg_cols.push(Item::new(
                        E::agg(m, vec![x()], Some(signed(Op::Gt))),
                        d("_ins"),
                    ));
                    dg_cols.push(Item::new(
                        E::agg(m, vec![x()], Some(signed(Op::Lt))),
                        d("_del"),
                    ));
                }
                AggKind::Rescan { .. } => {}
            }
        }
        dg_cols.push(Item::new(self.row_identity_of(None), Name::quoted(ROW_ID)));
        // 3. New state per changed group, from the stored state.
        let mut nw_cols: Vec<Item> = keys(Some("__pgt_dg")).into_iter().map(Item::bare).collect();
        nw_cols.push(Item::bare(E::Col(
            Some(Name::internal("__pgt_dg")),
            Name::quoted(ROW_ID),
        )));
        nw_cols.push(Item::new(
            E::bin(Op::Add, zero_if_null(t("__pgt_count")), dg("__pgt_dc")),
            Name::quoted("__pgt_count"),
        ));
        let mut rescan = vec![E::bool(self.always_rescan)];
        if self.having.is_some() {
            rescan.push(E::IsNull(Box::new(t(ROW_ID)), false));
        }
        for (j, a) in self.aggs.iter().enumerate() {
            let (v, n) = (agg_col(j), agg_n_col(j));
            let d = |suffix: &str| dg(&format!("__pgt_d{}{suffix}", j + 1));
            let added = |state: &str, delta: E| {
                Item::new(
                    E::bin(Op::Add, zero_if_null(t(state)), delta),
                    Name::quoted(state),
                )
            };
            match &a.kind {
                AggKind::CountStar | AggKind::Count => nw_cols.push(added(&v, d(""))),
                AggKind::Sum { .. } | AggKind::Avg { .. } => {
                    nw_cols.push(added(&v, d("")));
                    nw_cols.push(added(&n, d("_n")));
                }
                AggKind::Min { .. } | AggKind::Max { .. } => {
                    let (lg, cmp) = if matches!(a.kind, AggKind::Min { .. }) {
                        ("LEAST", Op::Le)
                    } else {
                        ("GREATEST", Op::Ge)
                    };
                    nw_cols.push(Item::new(
                        E::call(lg, vec![t(&v), d("_ins")]),
                        Name::quoted(&v),
                    ));
                    rescan.push(E::and(vec![
                        E::IsNull(Box::new(d("_del")), true),
                        E::or(vec![
                            E::IsNull(Box::new(t(&v)), false),
                            E::bin(cmp, d("_del"), t(&v)),
                        ]),
                    ]));
                }
                // Never read: every changed group is rescanned. Typed so the branch compiles.
                AggKind::Rescan { ty } => {
                    nw_cols.push(Item::new(E::cast(E::null(), ty.clone()), Name::quoted(&v)))
                }
            }
        }
        nw_cols.push(Item::new(E::or(rescan), Name::internal("__pgt_rescan")));
        // 4. Rescanned groups, recomputed from the source. Each branch is gated by a one-time
        //    filter, so the source is not touched when no group needs a rescan; groups whose keys
        //    are all non-NULL are matched with IN (index-friendly), the others NULL-safely.
        let flag = || h("__pgt_rescan");
        let any_rescan = |also: Option<E>| {
            E::subquery(Query::select(Select {
                items: vec![Item::bare(E::call(
                    "bool_or",
                    vec![E::and(std::iter::once(flag()).chain(also).collect())],
                ))],
                from: vec![local("__pgt_nw", None)],
                ..Select::default()
            }))
        };
        let rescan_state = if nk == 0 {
            Query::select(self.state_with(None, Some(any_rescan(None))))
        } else {
            let all_set = || {
                E::and(
                    keys(None)
                        .into_iter()
                        .map(|k| E::IsNull(Box::new(k), true))
                        .collect(),
                )
            };
            let tuple: Vec<E> = self.keys.iter().map(E::user).collect();
            let plain = E::and(vec![
                any_rescan(Some(all_set())),
                E::InQuery(
                    Box::new(E::Tuple(tuple.clone())),
                    Box::new(Query::select(Select {
                        items: keys(None).into_iter().map(Item::bare).collect(),
                        from: vec![local("__pgt_nw", None)],
                        filter: Some(E::and(vec![flag(), all_set()])),
                        ..Select::default()
                    })),
                ),
            ]);
            let nulls = E::and(vec![
                any_rescan(Some(E::negated(all_set()))),
                E::or(
                    tuple
                        .iter()
                        .map(|k| E::IsNull(Box::new(k.clone()), false))
                        .collect(),
                ),
                E::exists(Query::select(Select {
                    items: vec![Item::bare(E::int(1))],
                    from: vec![local("__pgt_nw", Some("__pgt_r"))],
                    filter: Some(E::and(
                        [
                            E::hidden(Some("__pgt_r"), "__pgt_rescan"),
                            E::or(
                                keys(Some("__pgt_r"))
                                    .into_iter()
                                    .map(|k| E::IsNull(Box::new(k), false))
                                    .collect(),
                            ),
                        ]
                        .into_iter()
                        .chain(
                            keys(Some("__pgt_r"))
                                .into_iter()
                                .zip(&tuple)
                                .map(|(r, k)| E::bin(Op::IsNotDistinctFrom, r, k.clone())),
                        )
                        .collect(),
                    )),
                    ..Select::default()
                })),
            ]);
            Query::union_all(vec![self.state(Some(plain)), self.state(Some(nulls))])
        };
        let mut keep = vec![if self.scalar {
            E::bool(true)
        } else {
            E::bin(Op::Gt, E::Col(None, Name::quoted("__pgt_count")), E::int(0))
        }];
        if let Some(hs) = &self.having_state {
            keep.push(E::call("COALESCE", vec![E::user(hs), E::bool(false)]));
        }
        let keep = E::and(keep);
        let cte = |name: &str, materialized: bool, body: Query| {
            Cte::new(name, materialized, Statement::Query(body))
        };
        let outputs = |flag: E| {
            let mut items = self.output_columns();
            items.push(Item::new(flag, Name::internal("__pgt_keep")));
            items
        };
        let mut gone: Vec<Item> = (0..self.visible.len())
            .map(|i| Item::new(E::null(), output_name(i + 1)))
            .collect();
        gone.push(Item::bare(E::Col(
            Some(Name::internal("__pgt_nw")),
            Name::quoted(ROW_ID),
        )));
        gone.extend(
            self.hidden_columns()
                .into_iter()
                .map(|(hc, _)| Item::new(E::null(), Name::quoted(hc))),
        );
        gone.push(Item::bare(E::bool(false)));
        let group_by = keys(None);
        let mut grouped = Select {
            items: dg_cols,
            from: vec![local("__pgt_d", None)],
            ..Select::default()
        };
        grouped.group_by = group_by;
        let delta = Query {
            with: vec![
                cte(
                    "__pgt_d",
                    false,
                    self.input.delta_query(&d_cols, self.filter.as_ref()),
                ),
                cte("__pgt_dg", false, Query::select(grouped)),
                cte(
                    "__pgt_nw",
                    true,
                    Query::select(Select {
                        items: nw_cols,
                        from: vec![local("__pgt_dg", None).join(
                            JoinKind::Left,
                            From::Table(
                                RelName::Catalog(storage.to_string()),
                                Some(Name::internal("__pgt_t")),
                            ),
                            Some(E::bin(
                                Op::Eq,
                                t(ROW_ID),
                                E::Col(Some(Name::internal("__pgt_dg")), Name::quoted(ROW_ID)),
                            )),
                        )],
                        ..Select::default()
                    }),
                ),
                cte("__pgt_rs", true, rescan_state),
            ],
            body: SetExpr::UnionAll(vec![
                SetExpr::Select(Box::new(Select {
                    items: outputs(keep),
                    from: vec![local("__pgt_nw", Some("__pgt_g"))],
                    filter: Some(E::negated(flag())),
                    ..Select::default()
                })),
                SetExpr::Select(Box::new(Select {
                    items: {
                        let mut items = self.output_columns();
                        items.push(Item::bare(E::bool(true)));
                        items
                    },
                    from: vec![local("__pgt_rs", Some("__pgt_g"))],
                    ..Select::default()
                })),
                SetExpr::Select(Box::new(Select {
                    items: gone,
                    from: vec![local("__pgt_nw", None)],
                    filter: Some(E::and(vec![
                        flag(),
                        E::negated(E::exists(Query::select(Select {
                            items: vec![Item::bare(E::int(1))],
                            from: vec![local("__pgt_rs", Some("__pgt_g"))],
                            filter: Some(E::bin(
                                Op::Eq,
                                self.row_identity_of(Some("__pgt_g")),
                                E::Col(Some(Name::internal("__pgt_nw")), Name::quoted(ROW_ID)),
                            )),
                            ..Select::default()
                        }))),
                    ])),
                    ..Select::default()
                })),
            ]),
            order_by: Vec::new(),
            limit: None,
        };
        delta
    }
}
