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
use super::join::Input;
use super::{Unsupported, COL_PREFIX};
use crate::ident::quote_ident;
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
        .map_err(|e| format!("an expression pg_trickle cannot rewrite ({sql}: {e})"))
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
                ));
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

    fn filtered(agg: &str, filter: Option<&Expr>) -> String {
        match filter {
            Some(f) => format!("{agg} FILTER (WHERE {f})"),
            None => agg.to_string(),
        }
    }

    /// The group state computed from the source (initial population, FULL, rescans): keys,
    /// `__pgt_count`, and every aggregate's state.
    pub fn state_sql(&self, restrict: Option<&str>) -> String {
        self.state_sql_with(restrict, None)
    }

    /// [`Self::state_sql`] with an extra HAVING condition (for scalar rescans: a scalar aggregate
    /// returns its one row even over no input, so whether to rescan at all goes in HAVING).
    fn state_sql_with(&self, restrict: Option<&str>, extra_having: Option<&str>) -> String {
        let mut cols: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} AS {}", quote_ident(&key_col(i))))
            .collect();
        cols.push("count(*) AS \"__pgt_count\"".into());
        for (j, a) in self.aggs.iter().enumerate() {
            let f = a.filter.as_ref();
            let arg = a.arg.as_ref().map(|e| e.to_string()).unwrap_or_default();
            let (v, n) = (quote_ident(&agg_col(j)), quote_ident(&agg_n_col(j)));
            match &a.kind {
                AggKind::CountStar => {
                    cols.push(format!("{} AS {v}", Self::filtered("count(*)", f)))
                }
                AggKind::Count => cols.push(format!(
                    "{} AS {v}",
                    Self::filtered(&format!("count({arg})"), f)
                )),
                AggKind::Sum { .. } | AggKind::Avg { .. } => {
                    cols.push(format!(
                        "{} AS {v}",
                        Self::filtered(&format!("sum(({arg})::numeric)"), f)
                    ));
                    cols.push(format!(
                        "{} AS {n}",
                        Self::filtered(&format!("count({arg})"), f)
                    ));
                }
                AggKind::Min { .. } => cols.push(format!(
                    "{} AS {v}",
                    Self::filtered(&format!("min({arg})"), f)
                )),
                AggKind::Max { .. } => cols.push(format!(
                    "{} AS {v}",
                    Self::filtered(&format!("max({arg})"), f)
                )),
                AggKind::Rescan { .. } => cols.push(format!("{} AS {v}", a.call)),
            }
        }
        let mut where_parts: Vec<String> = Vec::new();
        if let Some(p) = &self.filter {
            where_parts.push(format!("({p})"));
        }
        if let Some(r) = restrict {
            where_parts.push(r.to_string());
        }
        let where_sql = if where_parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", where_parts.join(" AND "))
        };
        let group = if self.keys.is_empty() {
            String::new()
        } else {
            format!(
                " GROUP BY {}",
                self.keys
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let having_parts: Vec<String> = self
            .having
            .iter()
            .map(|h| format!("({h})"))
            .chain(extra_having.map(str::to_string))
            .collect();
        let having = if having_parts.is_empty() {
            String::new()
        } else {
            format!(" HAVING {}", having_parts.join(" AND "))
        };
        format!(
            "SELECT {} FROM {}{where_sql}{group}{having}",
            cols.join(", "),
            // A complete result reads the decorrelated FROM; a rescan of a few groups the lookups.
            if restrict.is_none() {
                &self.input.bulk_from
            } else {
                &self.input.full_from
            },
        )
    }

    /// The row identity over group keys, optionally qualified by `rel`.
    fn row_identity_of(&self, rel: Option<&str>) -> String {
        let q = rel.map(|r| format!("{r}.")).unwrap_or_default();
        let keys: Vec<String> = (0..self.keys.len())
            .map(|i| format!("{q}{}", quote_ident(&key_col(i))))
            .collect();
        format!(
            "pg_catalog.hashtextextended(ROW({})::text, 0)",
            keys.join(", ")
        )
    }

    /// Output columns over a relation of group states aliased `__pgt_g`: `__pgt_c<i>`, the row
    /// identity, and the stored hidden state.
    fn output_columns(&self) -> String {
        let mut cols: Vec<String> = self
            .visible
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS {}", quote_ident(&format!("{COL_PREFIX}{}", i + 1))))
            .collect();
        cols.push(format!(
            "{} AS {}",
            self.row_identity_of(None),
            quote_ident(ROW_ID)
        ));
        for (h, _) in self.hidden_columns() {
            cols.push(quote_ident(&h));
        }
        cols.join(", ")
    }

    /// The full result (visible columns, identity, hidden state) from the source.
    pub fn full_rows_sql(&self) -> String {
        format!(
            "SELECT {} FROM ({}) AS __pgt_g",
            self.output_columns(),
            self.state_sql(None)
        )
    }

    /// The delta: one row per changed group with its new visible columns, identity, hidden state
    /// and `__pgt_keep` (false: delete the group's row).
    pub fn delta_sql(&self, storage: &str) -> String {
        let nk = self.keys.len();
        let keys: Vec<String> = (0..nk).map(|i| quote_ident(&key_col(i))).collect();
        let key_list = keys.join(", ");
        let ksep = if nk == 0 { "" } else { ", " };
        // 1. The window's images: keys, weight, aggregate inputs and filters.
        let mut d_cols: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} AS {}", keys[i]))
            .collect();
        for (j, a) in self.aggs.iter().enumerate() {
            if let Some(arg) = &a.arg {
                d_cols.push(format!("{arg} AS __pgt_x{}", j + 1));
            }
            d_cols.push(format!(
                "{} AS __pgt_f{}",
                a.filter
                    .as_ref()
                    .map(|f| format!("COALESCE(({f}), false)"))
                    .unwrap_or_else(|| "true".into()),
                j + 1
            ));
        }
        // 2. Grouped deltas.
        let mut dg_cols = vec!["sum(__pgt_w) AS __pgt_dc".to_string()];
        for (j, a) in self.aggs.iter().enumerate() {
            let (x, f) = (format!("__pgt_x{}", j + 1), format!("__pgt_f{}", j + 1));
            let d = format!("__pgt_d{}", j + 1);
            match &a.kind {
                AggKind::CountStar => dg_cols.push(format!(
                    "COALESCE(sum(__pgt_w) FILTER (WHERE {f}), 0) AS {d}"
                )),
                AggKind::Count => dg_cols.push(format!(
                    "COALESCE(sum(__pgt_w) FILTER (WHERE {x} IS NOT NULL AND {f}), 0) AS {d}"
                )),
                AggKind::Sum { .. } | AggKind::Avg { .. } => {
                    dg_cols.push(format!(
                        "COALESCE(sum(__pgt_w * ({x})::numeric) FILTER (WHERE {x} IS NOT NULL AND {f}), 0) AS {d}"
                    ));
                    dg_cols.push(format!(
                        "COALESCE(sum(__pgt_w) FILTER (WHERE {x} IS NOT NULL AND {f}), 0) AS {d}_n"
                    ));
                }
                AggKind::Min { .. } | AggKind::Max { .. } => {
                    let m = if matches!(a.kind, AggKind::Min { .. }) {
                        "min"
                    } else {
                        "max"
                    };
                    dg_cols.push(format!(
                        "{m}({x}) FILTER (WHERE __pgt_w > 0 AND {f}) AS {d}_ins"
                    ));
                    dg_cols.push(format!(
                        "{m}({x}) FILTER (WHERE __pgt_w < 0 AND {f}) AS {d}_del"
                    ));
                }
                AggKind::Rescan { .. } => {}
            }
        }
        let group_by = if nk == 0 {
            String::new()
        } else {
            format!(" GROUP BY {key_list}")
        };
        // 3. New state per changed group, from the stored state.
        let mut nw_cols: Vec<String> = keys.iter().map(|k| format!("__pgt_dg.{k}")).collect();
        nw_cols.push(format!("__pgt_dg.{rid}", rid = quote_ident(ROW_ID)));
        nw_cols.push(
            "COALESCE(__pgt_t.\"__pgt_count\", 0) + __pgt_dg.__pgt_dc AS \"__pgt_count\"".into(),
        );
        let mut rescan = vec![if self.always_rescan { "true" } else { "false" }.to_string()];
        if self.having.is_some() {
            rescan.push(format!("__pgt_t.{} IS NULL", quote_ident(ROW_ID)));
        }
        for (j, a) in self.aggs.iter().enumerate() {
            let (v, n) = (quote_ident(&agg_col(j)), quote_ident(&agg_n_col(j)));
            let d = format!("__pgt_dg.__pgt_d{}", j + 1);
            match &a.kind {
                AggKind::CountStar | AggKind::Count => {
                    nw_cols.push(format!("COALESCE(__pgt_t.{v}, 0) + {d} AS {v}"))
                }
                AggKind::Sum { .. } | AggKind::Avg { .. } => {
                    nw_cols.push(format!("COALESCE(__pgt_t.{v}, 0) + {d} AS {v}"));
                    nw_cols.push(format!("COALESCE(__pgt_t.{n}, 0) + {d}_n AS {n}"));
                }
                AggKind::Min { .. } | AggKind::Max { .. } => {
                    let (lg, cmp) = if matches!(a.kind, AggKind::Min { .. }) {
                        ("LEAST", "<=")
                    } else {
                        ("GREATEST", ">=")
                    };
                    nw_cols.push(format!("{lg}(__pgt_t.{v}, {d}_ins) AS {v}"));
                    rescan.push(format!("({d}_del IS NOT NULL AND (__pgt_t.{v} IS NULL OR {d}_del {cmp} __pgt_t.{v}))"));
                }
                // Never read: every changed group is rescanned. Typed so the branch compiles.
                AggKind::Rescan { ty } => nw_cols.push(format!("NULL::{ty} AS {v}")),
            }
        }
        nw_cols.push(format!("({}) AS __pgt_rescan", rescan.join(" OR ")));
        // 4. Rescanned groups, recomputed from the source. Each branch is gated by a one-time
        //    filter, so the source is not touched when no group needs a rescan; groups whose keys
        //    are all non-NULL are matched with IN (index-friendly), the others NULL-safely.
        let rescan_sql = if nk == 0 {
            self.state_sql_with(None, Some("(SELECT bool_or(__pgt_rescan) FROM __pgt_nw)"))
        } else {
            let tuple: Vec<String> = self.keys.iter().map(|k| format!("({k})")).collect();
            let all_set = keys
                .iter()
                .map(|k| format!("{k} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let any_null_r = keys
                .iter()
                .map(|k| format!("__pgt_r.{k} IS NULL"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let any_null_src = tuple
                .iter()
                .map(|k| format!("{k} IS NULL"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let matches: Vec<String> = self
                .keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("__pgt_r.{} IS NOT DISTINCT FROM ({k})", keys[i]))
                .collect();
            let plain = format!(
                "(SELECT bool_or(__pgt_rescan AND {all_set}) FROM __pgt_nw) \
                 AND ({tuple}) IN (SELECT {key_list} FROM __pgt_nw WHERE __pgt_rescan AND {all_set})",
                tuple = tuple.join(", "),
            );
            let nulls = format!(
                "(SELECT bool_or(__pgt_rescan AND NOT ({all_set})) FROM __pgt_nw) AND ({any_null_src}) \
                 AND EXISTS (SELECT 1 FROM __pgt_nw AS __pgt_r WHERE __pgt_r.__pgt_rescan AND ({any_null_r}) AND {m})",
                m = matches.join(" AND "),
            );
            format!(
                "{} UNION ALL {}",
                self.state_sql(Some(&plain)),
                self.state_sql(Some(&nulls))
            )
        };
        let keep = {
            let mut k = if self.scalar {
                "true".to_string()
            } else {
                "\"__pgt_count\" > 0".to_string()
            };
            if let Some(h) = &self.having_state {
                k = format!("{k} AND COALESCE(({h}), false)");
            }
            k
        };
        let hidden: Vec<String> = self
            .hidden_columns()
            .into_iter()
            .map(|(h, _)| quote_ident(&h))
            .collect();
        let nulls: Vec<String> = (0..self.visible.len())
            .map(|i| format!("NULL AS {}", quote_ident(&format!("{COL_PREFIX}{}", i + 1))))
            .collect();
        let hidden_nulls: Vec<String> = hidden.iter().map(|h| format!("NULL AS {h}")).collect();
        let rid = quote_ident(ROW_ID);
        let vsep = if nulls.is_empty() { "" } else { ", " };
        format!(
            "WITH __pgt_d AS ({rows}), \
             __pgt_dg AS (SELECT {key_list}{ksep}{dg_cols}, {identity} AS {rid} FROM __pgt_d{group_by}), \
             __pgt_nw AS MATERIALIZED (SELECT {nw_cols} FROM __pgt_dg LEFT JOIN {storage} AS __pgt_t ON __pgt_t.{rid} = __pgt_dg.{rid}), \
             __pgt_rs AS MATERIALIZED ({rescan_state}) \
             SELECT {out}, {keep} AS __pgt_keep FROM __pgt_nw AS __pgt_g WHERE NOT __pgt_rescan \
             UNION ALL SELECT {out}, true FROM __pgt_rs AS __pgt_g \
             UNION ALL SELECT {nulls}{vsep}__pgt_nw.{rid}, {hidden_nulls}, false FROM __pgt_nw \
               WHERE __pgt_rescan AND NOT EXISTS (SELECT 1 FROM __pgt_rs AS __pgt_g WHERE {identity_g} = __pgt_nw.{rid})",
            rows = self.input.delta_rows(&d_cols.join(", "), self.filter.as_ref()),
            dg_cols = dg_cols.join(", "),
            identity = self.row_identity_of(None),
            nw_cols = nw_cols.join(", "),
            rescan_state = rescan_sql,
            out = self.output_columns(),
            nulls = nulls.join(", "),
            hidden_nulls = hidden_nulls.join(", "),
            identity_g = self.row_identity_of(Some("__pgt_g")),
        )
    }
}
