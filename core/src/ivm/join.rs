//! The FROM clause as an operator input: one table (Scan), or two tables joined (inner join with
//! ON, or a cross join whose conditions are in WHERE).
//!
//! **Delta rule (join).** Δ(L ⋈ R) = ΔL ⋈ R_old + L_new ⋈ ΔR, with weights multiplied. L_new and
//! R_new are the tables as the refresh's snapshot sees them, ΔL and ΔR the window's weighted
//! images (see [`super::scan`]), and R_old = R_new − ΔR: the current rows with weight +1 plus the
//! window's images with their weights negated, so a row inserted in the window cancels out of it
//! and a deleted one comes back. Both sides changing in one window are counted once each way,
//! never ΔL ⋈ ΔR twice; a join-key update is a −1 under the old partner and a +1 under the new
//! one; NULL keys never match, as in the query. A self-join is two inputs reading one buffer.

use super::parse::{Join, QuerySpec};
use super::SourceTable;
use crate::ident::quote_ident;

/// How the rows of a query's FROM clause reach the operator above it.
#[derive(Debug, Clone)]
pub struct Input {
    /// The FROM clause over the tables themselves (full results and group rescans).
    pub full_from: String,
    /// The delta of the FROM clause: FROM clauses whose rows, weighted by the paired
    /// expression, add up to the window's change of the FROM clause's rows.
    pub variants: Vec<(String, String)>,
    /// For each FROM table: its alias and its source.
    pub tables: Vec<(String, SourceTable)>,
}

/// A source's current rows with weight +1 plus its window's images with negated weights: the
/// table as it was at the previous frontier.
fn old_state(src: &SourceTable) -> String {
    let cols: Vec<String> = src.columns.iter().map(|(_, n)| quote_ident(n)).collect();
    let sep = if cols.is_empty() { "" } else { ", " };
    format!(
        "(SELECT {c}{sep}1 AS __pgt_w FROM {t} UNION ALL SELECT {c}{sep}-__pgt_e.__pgt_w FROM ({ev}) AS __pgt_e)",
        c = cols.join(", "),
        t = src.quoted,
        ev = super::scan::events_sql(src),
    )
}

impl Input {
    /// `sources` are the FROM tables' sources, in FROM order.
    pub fn new(spec: &QuerySpec, sources: &[SourceTable]) -> Input {
        let tables: Vec<(String, SourceTable)> = spec
            .from
            .iter()
            .zip(sources)
            .map(|(t, s)| (t.alias.clone(), s.clone()))
            .collect();
        let a: Vec<String> = tables.iter().map(|(al, _)| quote_ident(al)).collect();
        match (&spec.join, tables.as_slice()) {
            (Some(join), [(_, l), (_, r)]) => {
                let combine = |left: String, right: String| match join {
                    Join::On(cond) => {
                        format!("{left} AS {} JOIN {right} AS {} ON ({cond})", a[0], a[1])
                    }
                    Join::Cross => format!("{left} AS {}, {right} AS {}", a[0], a[1]),
                };
                let events = |s: &SourceTable| format!("({})", super::scan::events_sql(s));
                Input {
                    full_from: combine(l.quoted.clone(), r.quoted.clone()),
                    variants: vec![
                        (
                            combine(events(l), old_state(r)),
                            format!("{}.__pgt_w * {}.__pgt_w", a[0], a[1]),
                        ),
                        (
                            combine(l.quoted.clone(), events(r)),
                            format!("{}.__pgt_w", a[1]),
                        ),
                    ],
                    tables,
                }
            }
            (_, [(_, s)]) => Input {
                full_from: format!("{} AS {}", s.quoted, a[0]),
                variants: vec![(
                    format!("({}) AS {}", super::scan::events_sql(s), a[0]),
                    format!("{}.__pgt_w", a[0]),
                )],
                tables,
            },
            _ => unreachable!("the parser admits one table or two joined"),
        }
    }

    /// The delta rows: `cols` (SQL select-list items over the FROM tables' aliases) and their
    /// weight as `__pgt_w`, filtered by `filter`, from every variant.
    pub fn delta_rows(&self, cols: &str, filter: Option<&sqlparser::ast::Expr>) -> String {
        let sep = if cols.is_empty() { "" } else { ", " };
        self.variants
            .iter()
            .map(|(from, w)| {
                format!(
                    "SELECT {cols}{sep}{w} AS __pgt_w FROM {from}{}",
                    super::filter::where_clause(filter)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    /// Row identity over the FROM tables' primary keys, when every table has one.
    pub fn key_identity(&self) -> Option<String> {
        let mut cols = Vec::new();
        for (alias, src) in &self.tables {
            for c in src.primary_key.as_ref()? {
                cols.push(format!("{}.{}", quote_ident(alias), quote_ident(c)));
            }
        }
        Some(format!(
            "pg_catalog.hashtextextended(ROW({})::text, 0)",
            cols.join(", ")
        ))
    }

    pub fn describe(&self, spec: &QuerySpec) -> Vec<String> {
        let mut lines = Vec::new();
        let mut indent = "";
        if let Some(j) = &spec.join {
            lines.push(match j {
                Join::On(c) => format!("Join [{c}] (ΔL ⋈ R_old + L_new ⋈ ΔR)"),
                Join::Cross => {
                    "Join (cross; conditions in the filter) (ΔL ⋈ R_old + L_new ⋈ ΔR)".to_string()
                }
            });
            indent = "  ";
        }
        for (alias, s) in &self.tables {
            lines.push(format!(
                "{indent}Scan {} AS {alias} (changes from {})",
                s.quoted, s.buffer
            ));
        }
        lines
    }
}
