//! Outer joins of two tables: `L LEFT JOIN R ON c`, `RIGHT JOIN`, `FULL JOIN`.
//!
//! **Delta rule.** An outer join is the inner join plus, for each preserved side P (L for LEFT,
//! R for RIGHT, both for FULL) with the other side N, the anti-join A = P ▷ N (the P rows with no
//! N partner) extended with NULLs. The inner part is maintained by [`super::join`]'s rule. For A,
//! with ex(p) = "p has a partner in N":
//!
//! ΔA = A_new − A_old = ΔP·[¬ex_new] + P_old·([¬ex_new] − [¬ex_old])
//!
//! The first term is the window's P images whose partner test fails in N as it is now: one index
//! lookup into N per changed P row. The second term is non-zero only for P rows whose partner
//! test flipped, and the test can only flip for a P row when an N row with its join key changed.
//! The condition `c` must be the equalities `p_expr = n_expr` (the join key), plus conjuncts on P
//! alone or N alone; then ex(p) = pp(p) ∧ ∃ n ∈ N: key(n) = key(p) ∧ np(n), a property of p's key.
//! Per key K among the window's N images: after(K) = ∃ n ∈ N_new with that key (an index
//! lookup), before(K) = count of N_new rows with K − Σ weights of the window's N images with K
//! (N_old = N_new − ΔN) > 0 (counting at most Σ + 1 rows), and the P rows of flipped keys, as they were (P_new with weight
//! +1 plus the window's P images with negated weights), contribute before(K) − after(K).
//! So a NULL-extended row appears when a P row's last partner leaves, disappears when one comes,
//! both sides may change in one window, and a NULL key never has a partner, as in the query.
//! Cost: changed rows times index lookups on the join keys of the other side.

use super::fold;
use super::join::Variant;
use super::scan::events_sql;
use super::SourceTable;
use crate::ident::quote_ident;
use sqlparser::ast::{BinaryOperator, Expr};
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// Which sides of a two-table join keep their unmatched rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuterKind {
    Left,
    Right,
    Full,
}

impl OuterKind {
    pub fn sql(self) -> &'static str {
        match self {
            OuterKind::Left => "LEFT JOIN",
            OuterKind::Right => "RIGHT JOIN",
            OuterKind::Full => "FULL JOIN",
        }
    }

    /// Indexes (0 = left, 1 = right) of the preserved sides.
    pub fn preserved(self) -> &'static [usize] {
        match self {
            OuterKind::Left => &[0],
            OuterKind::Right => &[1],
            OuterKind::Full => &[0, 1],
        }
    }
}

/// An outer join condition split into the join key and one-sided conjuncts.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Pairs of (left-side expression, right-side expression) compared with `=`.
    pub keys: Vec<(Expr, Expr)>,
    /// Conjuncts on one side alone, per side.
    pub only: [Vec<Expr>; 2],
    /// Conjuncts on no column at all.
    pub neither: Vec<Expr>,
}

fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        _ => out.push(e.clone()),
    }
}

/// The sides (0, 1) whose columns `e` reads (a side is one or more tables, by alias);
/// unqualified columns belong to the side that has a column of that name.
fn sides(
    e: &Expr,
    aliases: [&[&str]; 2],
    columns: [&[String]; 2],
) -> Result<BTreeSet<usize>, String> {
    let mut out = BTreeSet::new();
    let r = sqlparser::ast::visit_expressions(e, |x| {
        match x {
            Expr::Identifier(i) => {
                let name = fold(i);
                for (s, cols) in columns.iter().enumerate() {
                    if cols.contains(&name) {
                        out.insert(s);
                    }
                }
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let table = fold(&parts[parts.len() - 2]);
                match aliases.iter().position(|a| a.contains(&table.as_str())) {
                    Some(s) => {
                        out.insert(s);
                    }
                    None => return ControlFlow::Break(x.to_string()),
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    if let ControlFlow::Break(what) = r {
        return Err(format!(
            "the column reference {what} in an outer join condition"
        ));
    }
    Ok(out)
}

/// Splits an outer join's ON condition, or says why its partner test is not a key lookup.
pub fn analyze(
    cond: &Expr,
    aliases: [&str; 2],
    columns: [&[String]; 2],
) -> Result<Condition, String> {
    analyze_sides(cond, [&[aliases[0]], &[aliases[1]]], columns)
}

/// [`analyze`] with side 0 made of several tables (the join before a LEFT JOIN).
pub fn analyze_sides(
    cond: &Expr,
    aliases: [&[&str]; 2],
    columns: [&[String]; 2],
) -> Result<Condition, String> {
    let mut parts = Vec::new();
    conjuncts(cond, &mut parts);
    let mut c = Condition {
        keys: Vec::new(),
        only: [Vec::new(), Vec::new()],
        neither: Vec::new(),
    };
    for part in parts {
        let s = sides(&part, aliases, columns)?;
        match s.len() {
            0 => c.neither.push(part),
            1 => c.only[*s.iter().next().unwrap()].push(part),
            _ => {
                let key = match &part {
                    Expr::BinaryOp {
                        left,
                        op: BinaryOperator::Eq,
                        right,
                    } => {
                        let (ls, rs) = (
                            sides(left, aliases, columns)?,
                            sides(right, aliases, columns)?,
                        );
                        if ls == BTreeSet::from([0]) && rs == BTreeSet::from([1]) {
                            Some(((**left).clone(), (**right).clone()))
                        } else if ls == BTreeSet::from([1]) && rs == BTreeSet::from([0]) {
                            Some(((**right).clone(), (**left).clone()))
                        } else {
                            None
                        }
                    }
                    _ => None,
                };
                match key {
                    Some(k) => c.keys.push(k),
                    None => {
                        return Err(format!(
                            "an outer join condition other than equalities between the two sides \
                             plus conditions on one side ({part})"
                        ))
                    }
                }
            }
        }
    }
    Ok(c)
}

fn and_all(parts: &[&Expr]) -> Option<String> {
    (!parts.is_empty()).then(|| {
        parts
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" AND ")
    })
}

/// The delta variants of the NULL-extended rows of every preserved side.
pub fn null_extension_variants(
    kind: OuterKind,
    cond: &Condition,
    aliases: [&str; 2],
    sources: [&SourceTable; 2],
) -> Vec<Variant> {
    let mut out = Vec::new();
    for &p in kind.preserved() {
        let null_side = format!(
            "LEFT JOIN {} AS {} ON false",
            sources[1 - p].quoted,
            quote_ident(aliases[1 - p])
        );
        out.extend(existence_variants(
            p,
            cond,
            aliases,
            sources,
            Keep::WithoutPartner,
            &null_side,
        ));
    }
    out
}

/// Which rows of side P an existence filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// `EXISTS` / `IN`: the rows with a partner (a semi-join).
    WithPartner,
    /// `NOT EXISTS` and the NULL-extended rows of an outer join: the rows without one.
    WithoutPartner,
}

/// A side of an existence test (one table, or the join of several): its rows now (a FROM
/// clause, to which joins are appended) and its delta (weighted variants).
pub struct Side {
    pub new_from: String,
    pub delta: Vec<Variant>,
}

/// The delta variants of the rows of side `p` filtered by having (or not having) a partner on
/// the other side under `cond`: ΔP·[test_new] + P_old·([test_new] − [test_old]), the second term
/// over the P rows whose join key is among the window's N images and flipped (see the module
/// doc). `extra_from` is appended to each variant's FROM (the NULL-extended side of an outer
/// join, or nothing).
pub fn existence_variants(
    p: usize,
    cond: &Condition,
    aliases: [&str; 2],
    sources: [&SourceTable; 2],
    keep: Keep,
    extra_from: &str,
) -> Vec<Variant> {
    existence_of(
        p,
        cond,
        &Side::table(aliases[p], sources[p]),
        &Side::table(aliases[1 - p], sources[1 - p]),
        aliases[1 - p],
        keep,
        extra_from,
    )
}

impl Side {
    /// One table under `alias`.
    pub fn table(alias: &str, src: &SourceTable) -> Side {
        let a = quote_ident(alias);
        Side {
            new_from: format!("{} AS {a}", src.quoted),
            delta: vec![Variant {
                from: format!("({}) AS {a}", events_sql(src)),
                weight: format!("{a}.__pgt_w"),
                cond: None,
            }],
        }
    }
}

/// [`existence_variants`] for a preserved side `p` and the other side, each given by its rows
/// and delta (one table, or the join of several); `name` makes this test's names unique in a
/// chain of outer joins.
pub fn existence_of(
    p: usize,
    cond: &Condition,
    side: &Side,
    other: &Side,
    name: &str,
    keep: Keep,
    extra_from: &str,
) -> Vec<Variant> {
    let mut out = Vec::new();
    {
        let n = 1 - p;
        // One per outer join of a chain, so their names differ.
        let fl = quote_ident(&format!("__pgt_fl_{name}_{p}"));
        let key_of = |side: usize| -> Vec<&Expr> {
            cond.keys
                .iter()
                .map(|(l, r)| if side == 0 { l } else { r })
                .collect()
        };
        let (pkey, nkey) = (key_of(p), key_of(n));
        let pp: Vec<&Expr> = cond.only[p].iter().chain(&cond.neither).collect();
        let np: Vec<&Expr> = cond.only[n].iter().collect();
        let np_and_list: Vec<String> = and_all(&np).into_iter().collect();
        let n_from = &other.new_from;
        let null_side = extra_from;
        let with_cond = |c: &Option<String>, extra: Option<String>| -> Option<String> {
            let parts: Vec<String> = c.iter().cloned().chain(extra).collect();
            (!parts.is_empty()).then(|| parts.join(" AND "))
        };

        // ΔP·[¬ex_new]
        let key_eq: Vec<String> = pkey
            .iter()
            .zip(&nkey)
            .map(|(pk, nk)| format!("({nk}) = ({pk})"))
            .collect();
        let mut exists_where = key_eq.clone();
        exists_where.extend(np.iter().map(|e| format!("({e})")));
        let exists = format!(
            "EXISTS (SELECT 1 FROM {n_from}{})",
            if exists_where.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", exists_where.join(" AND "))
            }
        );
        let partner = match and_all(&pp) {
            Some(pp) => format!("{pp} AND {exists}"),
            None => exists,
        };
        let test = match keep {
            Keep::WithoutPartner => format!("NOT COALESCE({partner}, false)"),
            Keep::WithPartner => format!("COALESCE({partner}, false)"),
        };
        for v in &side.delta {
            out.push(Variant {
                from: format!("{} {null_side}", v.from),
                weight: v.weight.clone(),
                cond: with_cond(&v.cond, Some(test.clone())),
            });
        }

        // P_old·([test_new] − [test_old]) over the keys of the window's N images: for the rows
        // without a partner before − after, for the rows with one after − before.
        let m = nkey.len();
        let k = |i: usize| format!("__pgt_k{}", i + 1);
        let grouped_cols: Vec<String> = nkey
            .iter()
            .enumerate()
            .map(|(i, e)| format!("({e}) AS {}", k(i)))
            .collect();
        let group_by = if m == 0 {
            String::new()
        } else {
            format!(
                " GROUP BY {}",
                (1..=m)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let lookup: Vec<String> = nkey
            .iter()
            .enumerate()
            .map(|(i, e)| format!("({e}) = __pgt_g.{}", k(i)))
            .collect();
        let lookup_where = {
            let mut w = lookup.clone();
            w.extend(np.iter().map(|e| format!("({e})")));
            if w.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", w.join(" AND "))
            }
        };
        let sep = if m == 0 { "" } else { ", " };
        // before(K) = count_new(K) − Σw > 0. A key whose images net to zero cannot flip (dropped
        // by HAVING); with Σw < 0 rows left, so before is true; with Σw > 0 it is enough to count
        // up to Σw + 1 rows, so a key with many rows costs one short index range, not a count.
        let flips = format!(
            "(SELECT {keys}{sep}((CASE WHEN __pgt_g.__pgt_sw < 0 THEN true \
                                     ELSE (SELECT count(*) FROM (SELECT 1 FROM {n_from}{lookup_where} \
                                                                LIMIT __pgt_g.__pgt_sw + 1) AS __pgt_lim) > __pgt_g.__pgt_sw END)::int \
               - (EXISTS (SELECT 1 FROM {n_from}{lookup_where}))::int) AS __pgt_f \
             FROM (SELECT {kcols}{sep}COALESCE(sum(__pgt_w), 0) AS __pgt_sw \
                   FROM ({n_events}) AS __pgt_ne{group_by} \
                   HAVING COALESCE(sum(__pgt_w), 0) <> 0) AS __pgt_g)",
            keys = (0..m)
                .map(|i| format!("__pgt_g.{}", k(i)))
                .collect::<Vec<_>>()
                .join(", "),
            kcols = (0..m).map(k).collect::<Vec<_>>().join(", "),
            n_events = other
                .delta
                .iter()
                .map(|v| {
                    let conds: Vec<String> =
                        v.cond.iter().cloned().chain(np_and_list.clone()).collect();
                    format!(
                        "SELECT {gcols}{sep}{w} AS __pgt_w FROM {f}{wh}",
                        gcols = grouped_cols.join(", "),
                        w = v.weight,
                        f = v.from,
                        wh = if conds.is_empty() {
                            String::new()
                        } else {
                            format!(" WHERE {}", conds.join(" AND "))
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL "),
        );
        let on: Vec<String> = pkey
            .iter()
            .enumerate()
            .map(|(i, e)| format!("({e}) = {fl}.{}", k(i)))
            .chain(std::iter::once(format!("{fl}.__pgt_f <> 0")))
            .collect();
        let on = on.join(" AND ");
        let pp_cond = and_all(&pp).map(|s| format!("COALESCE({s}, false)"));
        let sign = match keep {
            Keep::WithoutPartner => "",
            Keep::WithPartner => "-",
        };
        out.push(Variant {
            from: format!("{} JOIN {flips} AS {fl} ON {on} {null_side}", side.new_from),
            weight: format!("{sign}{fl}.__pgt_f"),
            cond: pp_cond.clone(),
        });
        for v in &side.delta {
            out.push(Variant {
                from: format!("{} JOIN {flips} AS {fl} ON {on} {null_side}", v.from),
                weight: match keep {
                    Keep::WithoutPartner => format!("-({}) * {fl}.__pgt_f", v.weight),
                    Keep::WithPartner => format!("({}) * {fl}.__pgt_f", v.weight),
                },
                cond: with_cond(&v.cond, pp_cond.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn expr(s: &str) -> Expr {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(s)
            .unwrap()
            .parse_expr()
            .unwrap()
    }

    #[test]
    fn splits_keys_and_one_sided_conditions() {
        let cols_t = vec!["id".to_string(), "name".to_string()];
        let cols_e = vec!["department_id".to_string(), "salary".to_string()];
        let c = analyze(
            &expr("e.department_id = t.id AND (salary > 10 AND t.name <> 'x') AND 1 = 1"),
            ["t", "e"],
            [&cols_t, &cols_e],
        )
        .unwrap();
        assert_eq!(c.keys.len(), 1);
        assert_eq!(c.keys[0].0.to_string(), "t.id");
        assert_eq!(c.keys[0].1.to_string(), "e.department_id");
        assert_eq!(c.only[1][0].to_string(), "salary > 10");
        assert_eq!(c.only[0][0].to_string(), "t.name <> 'x'");
        assert_eq!(c.neither.len(), 1);
        let err = analyze(&expr("e.salary > t.id"), ["t", "e"], [&cols_t, &cols_e]).unwrap_err();
        assert!(err.contains("other than equalities"), "{err}");
        let err = analyze(
            &expr("e.department_id = t.id OR t.id IS NULL"),
            ["t", "e"],
            [&cols_t, &cols_e],
        )
        .unwrap_err();
        assert!(err.contains("other than equalities"), "{err}");
    }
}
