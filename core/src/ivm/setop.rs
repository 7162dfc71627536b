//! `q1 INTERSECT ALL q2` and `q1 EXCEPT ALL q2`: multisets. A row that is c1 times in q1 and c2
//! times in q2 is min(c1, c2) times in the INTERSECT ALL and max(c1 − c2, 0) times in the EXCEPT
//! ALL. The stream table is a multiset of copies (hidden `__pgt_dup`, see [`super::bag`]).
//!
//! **Delta rule.** For each row content r that the window changed in either branch (Δc1(r),
//! Δc2(r): the branches' deltas summed by content, NULLs equal as the set operations compare
//! them), with c1, c2 its counts in the branches now (a lookup by content in each branch):
//! Δcopies(r) = f(c1, c2) − f(c1 − Δc1, c2 − Δc2), f = min or max(· − ·, 0). Contents the window
//! did not touch keep their counts, so their copies do not change. The copies are added or
//! removed by content as for a keyless projection.
//!
//! Cost: the window's changes, plus one count per changed content in each branch (an index on
//! the branch's first output column makes it a lookup; a content with a NULL is counted by a
//! scan, `IS NOT DISTINCT FROM` having no index support).

use super::join::{weight_of, Input, Variant};
use super::parse::{QuerySpec, Unsupported, UNION_ALIAS};
use super::SourceTable;
use crate::ident::quote_ident;
use crate::ir::{self, From, Op};

/// Which multiset operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SetAll {
    Intersect,
    Except,
}

impl SetAll {
    fn sql(self) -> &'static str {
        match self {
            SetAll::Intersect => "INTERSECT ALL",
            SetAll::Except => "EXCEPT ALL",
        }
    }

    /// The copies of a row counted `a` and `b` times in the branches.
    fn copies(self, a: &str, b: &str) -> String {
        match self {
            SetAll::Intersect => format!("LEAST({a}, {b})"),
            SetAll::Except => format!("GREATEST({a} - {b}, 0)"),
        }
    }
}

/// The input of `left op right`: its rows under `__pgt_u` (columns `__pgt_u<i>`), and one
/// delta variant carrying each changed content's change of copies as its weight.
pub fn input(
    op: SetAll,
    spec: &QuerySpec,
    sources: &[SourceTable],
    tables: Vec<(String, SourceTable)>,
) -> Result<Input, Unsupported> {
    let u = quote_ident(UNION_ALIAS);
    let width = spec.items.len();
    let names: Vec<String> = (1..=width)
        .map(|i| quote_ident(&format!("{UNION_ALIAS}{i}")))
        .collect();
    let mut fulls = Vec::new();
    let mut deltas = Vec::new();
    let mut counts = Vec::new();
    let mut offset = 0;
    for (side, b) in spec.branches.iter().enumerate() {
        let n = b.from.len();
        let bi = Input::new(b, &sources[offset..offset + n])?;
        offset += n;
        let cols: Vec<String> = b
            .items
            .iter()
            .zip(&names)
            .map(|(e, n)| format!("{e} AS {n}"))
            .collect();
        fulls.push(format!(
            "SELECT {} FROM {}{}",
            cols.join(", "),
            bi.bulk_from,
            super::filter::where_clause(b.filter.as_ref())
        ));
        deltas.push(format!(
            "SELECT __pgt_b.*, {side} AS __pgt_side FROM ({}) AS __pgt_b",
            bi.delta_rows(&cols.join(", "), b.filter.as_ref())
        ));
        let f = b
            .filter
            .as_ref()
            .map(|f| format!(" AND ({f})"))
            .unwrap_or_default();
        let eq: Vec<String> = b
            .items
            .iter()
            .zip(&names)
            .map(|(e, n)| format!("({e}) = __pgt_d.{n}"))
            .collect();
        let items: Vec<String> = b.items.iter().map(|e| format!("({e})")).collect();
        let d_cols: Vec<String> = names.iter().map(|n| format!("__pgt_d.{n}")).collect();
        // A content without NULLs is found by equality (index-friendly); one with a NULL by
        // IS NOT DISTINCT FROM. Which branch runs is decided per content (a one-time filter).
        counts.push(format!(
            "(SELECT count(*) FROM (\
               SELECT 1 FROM {from} WHERE NOT __pgt_d.__pgt_nulls AND {eq}{f} \
               UNION ALL \
               SELECT 1 FROM {from} WHERE __pgt_d.__pgt_nulls AND ROW({items}) IS NOT DISTINCT FROM ROW({dc}){f}\
             ) AS __pgt_x)",
            from = bi.full_from,
            eq = eq.join(" AND "),
            items = items.join(", "),
            dc = d_cols.join(", "),
        ));
    }
    let nulls: Vec<String> = names.iter().map(|n| format!("{n} IS NULL")).collect();
    let changed = format!(
        "SELECT {cols}, ({nulls}) AS __pgt_nulls, \
                COALESCE(sum(__pgt_w) FILTER (WHERE __pgt_side = 0), 0)::bigint AS __pgt_d1, \
                COALESCE(sum(__pgt_w) FILTER (WHERE __pgt_side = 1), 0)::bigint AS __pgt_d2 \
           FROM ({deltas}) AS __pgt_e GROUP BY {cols}",
        cols = names.join(", "),
        nulls = nulls.join(" OR "),
        deltas = deltas.join(" UNION ALL "),
    );
    let d_cols: Vec<String> = names.iter().map(|n| format!("__pgt_d.{n}")).collect();
    let weight = format!(
        "{} - {}",
        op.copies("__pgt_c.__pgt_n1", "__pgt_c.__pgt_n2"),
        op.copies(
            "(__pgt_c.__pgt_n1 - __pgt_d.__pgt_d1)",
            "(__pgt_c.__pgt_n2 - __pgt_d.__pgt_d2)"
        )
    );
    let from = format!(
        "(SELECT {dc}, {weight} AS __pgt_w FROM ({changed}) AS __pgt_d \
          CROSS JOIN LATERAL (SELECT {c1} AS __pgt_n1, {c2} AS __pgt_n2) AS __pgt_c) AS {u}",
        dc = d_cols.join(", "),
        c1 = counts[0],
        c2 = counts[1],
    );
    let full_from = format!("({} {} {}) AS {u}", fulls[0], op.sql(), fulls[1]);
    Ok(Input {
        bulk_from: full_from.clone(),
        full_from,
        variants: vec![Variant {
            from: From::Sql(from),
            weight: vec![weight_of(UNION_ALIAS)],
            cond: vec![ir::Expr::bin(
                Op::Ne,
                weight_of(UNION_ALIAS),
                ir::Expr::int(0),
            )],
        }],
        tables,
        identity_tables: 0,
    })
}
