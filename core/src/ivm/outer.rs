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
use super::{SourceTable, Unsupported};
use crate::ir::{
    self, From, Item, JoinKind, Limit, Lit, Name, Op, Query, RelName, Select, Statement,
};
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

    pub fn join_kind(self) -> JoinKind {
        match self {
            OuterKind::Left => JoinKind::Left,
            OuterKind::Right => JoinKind::Right,
            OuterKind::Full => JoinKind::Full,
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
) -> Result<Condition, Unsupported> {
    analyze_sides(cond, [&[aliases[0]], &[aliases[1]]], columns)
}

/// [`analyze`] with side 0 made of several tables (the join before a LEFT JOIN).
pub fn analyze_sides(
    cond: &Expr,
    aliases: [&[&str]; 2],
    columns: [&[String]; 2],
) -> Result<Condition, Unsupported> {
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
                    None => return Err(Unsupported::new(format!(
                        "an outer join condition other than equalities between the two sides \
                             plus conditions on one side ({part})"
                    ))
                    .hint(
                        "Write the ON condition as equalities between a column (or expression) \
                             of each side, plus conditions that read one side only.",
                    )),
                }
            }
        }
    }
    Ok(c)
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
        let null_side = [From::Table(
            RelName::Catalog(sources[1 - p].quoted.clone()),
            Some(Name::quoted(aliases[1 - p])),
        )];
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
/// item, to which joins are added) and its delta (weighted variants).
pub struct Side {
    pub new_from: From,
    pub delta: Vec<Variant>,
}

/// The delta variants of the rows of side `p` filtered by having (or not having) a partner on
/// the other side under `cond`: ΔP·[test_new] + P_old·([test_new] − [test_old]), the second term
/// over the P rows whose join key is among the window's N images and flipped (see the module
/// doc). Each of `null_side` is left-joined on `false` to every variant (the NULLs that stand
/// for the other side's columns in an outer join's NULL-extended rows).
pub fn existence_variants(
    p: usize,
    cond: &Condition,
    aliases: [&str; 2],
    sources: [&SourceTable; 2],
    keep: Keep,
    null_side: &[From],
) -> Vec<Variant> {
    existence_of(
        p,
        cond,
        &Side::table(aliases[p], sources[p]),
        &Side::table(aliases[1 - p], sources[1 - p]),
        aliases[1 - p],
        keep,
        null_side,
    )
}

impl Side {
    /// One table under `alias`.
    pub fn table(alias: &str, src: &SourceTable) -> Side {
        Side {
            new_from: From::Table(
                RelName::Catalog(src.quoted.clone()),
                Some(Name::quoted(alias)),
            ),
            delta: vec![Variant::scan(alias, src)],
        }
    }
}

fn user(e: &Expr) -> ir::Expr {
    ir::Expr::User(Box::new(e.clone()))
}

fn select_one(from: &From, filter: Vec<ir::Expr>) -> Select {
    Select {
        items: vec![Item::bare(ir::Expr::int(1))],
        from: vec![from.clone()],
        filter: (!filter.is_empty()).then(|| ir::Expr::and(filter)),
        ..Select::default()
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
    null_side: &[From],
) -> Vec<Variant> {
    use ir::Expr as E;
    let mut out = Vec::new();
    let n = 1 - p;
    // One per outer join of a chain, so their names differ.
    let fl = format!("__pgt_fl_{name}_{p}");
    let fl_col = |c: &str| E::Col(Some(Name::quoted(&fl)), Name::internal(c));
    let g_col = |c: &str| E::hidden(Some("__pgt_g"), c);
    let k = |i: usize| format!("__pgt_k{}", i + 1);
    let key_of = |side: usize| -> Vec<ir::Expr> {
        cond.keys
            .iter()
            .map(|(l, r)| user(if side == 0 { l } else { r }))
            .collect()
    };
    let (pkey, nkey) = (key_of(p), key_of(n));
    let pp: Vec<ir::Expr> = cond.only[p].iter().chain(&cond.neither).map(user).collect();
    let np: Vec<ir::Expr> = cond.only[n].iter().map(user).collect();
    let n_from = &other.new_from;
    let with_nulls = |f: From| {
        null_side.iter().fold(f, |f, t| {
            f.join(JoinKind::Left, t.clone(), Some(E::Lit(Lit::Bool(false))))
        })
    };
    let coalesced = |e: ir::Expr| E::call("COALESCE", vec![e, E::Lit(Lit::Bool(false))]);

    // ΔP·[¬ex_new]
    let mut exists_where: Vec<ir::Expr> = pkey
        .iter()
        .zip(&nkey)
        .map(|(pk, nk)| E::bin(Op::Eq, nk.clone(), pk.clone()))
        .collect();
    exists_where.extend(np.iter().cloned());
    let exists = E::exists(Query::select(select_one(n_from, exists_where)));
    let partner = coalesced(E::and(pp.iter().cloned().chain([exists]).collect()));
    let test = match keep {
        Keep::WithoutPartner => E::negated(partner),
        Keep::WithPartner => partner,
    };
    for v in &side.delta {
        out.push(Variant {
            from: with_nulls(v.from.clone()),
            weight: v.weight.clone(),
            cond: v.cond.iter().cloned().chain([test.clone()]).collect(),
        });
    }

    // P_old·([test_new] − [test_old]) over the keys of the window's N images: for the rows
    // without a partner before − after, for the rows with one after − before.
    let grouped: Vec<Item> = nkey
        .iter()
        .enumerate()
        .map(|(i, e)| Item::new(e.clone(), Name::internal(k(i))))
        .collect();
    let mut lookup: Vec<ir::Expr> = nkey
        .iter()
        .enumerate()
        .map(|(i, e)| E::bin(Op::Eq, e.clone(), g_col(&k(i))))
        .collect();
    lookup.extend(np.iter().cloned());
    let sw = || g_col("__pgt_sw");
    let sum_w = || {
        E::call(
            "COALESCE",
            vec![E::call("sum", vec![E::hidden(None, "__pgt_w")]), E::int(0)],
        )
    };
    // before(K) = count_new(K) − Σw > 0. A key whose images net to zero cannot flip (dropped
    // by HAVING); with Σw < 0 rows left, so before is true; with Σw > 0 it is enough to count
    // up to Σw + 1 rows, so a key with many rows costs one short index range, not a count.
    let mut limited = Query::select(select_one(n_from, lookup.clone()));
    limited.limit = Some(Limit::count(E::bin(Op::Add, sw(), E::int(1))));
    let counted = E::subquery(Query::select(Select {
        items: vec![Item::bare(E::call("count", vec![E::Star(None)]))],
        from: vec![From::subquery(
            Statement::Query(limited),
            Name::internal("__pgt_lim"),
        )],
        ..Select::default()
    }));
    let before = E::Case(
        vec![(E::bin(Op::Lt, sw(), E::int(0)), E::Lit(Lit::Bool(true)))],
        Some(Box::new(E::bin(Op::Gt, counted, sw()))),
    );
    let after = E::exists(Query::select(select_one(n_from, lookup)));
    let n_events = Query::union_all(
        other
            .delta
            .iter()
            .map(|v| v.select(grouped.clone(), &np))
            .collect(),
    );
    let m = nkey.len();
    let keys_by_change = Select {
        items: (0..m)
            .map(|i| Item::bare(E::hidden(None, &k(i))))
            .chain([Item::new(sum_w(), Name::internal("__pgt_sw"))])
            .collect(),
        from: vec![From::subquery(
            Statement::Query(n_events),
            Name::internal("__pgt_ne"),
        )],
        group_by: (1..=m).map(|i| E::int(i as i64)).collect(),
        having: Some(E::bin(Op::Ne, sum_w(), E::int(0))),
        ..Select::default()
    };
    let flips = From::subquery(
        Statement::Query(Query::select(Select {
            items: (0..m)
                .map(|i| Item::bare(g_col(&k(i))))
                .chain([Item::new(
                    E::bin(Op::Sub, E::cast(before, "int"), E::cast(after, "int")),
                    Name::internal("__pgt_f"),
                )])
                .collect(),
            from: vec![From::subquery(
                Statement::Query(Query::select(keys_by_change)),
                Name::internal("__pgt_g"),
            )],
            ..Select::default()
        })),
        Name::quoted(&fl),
    );
    let on = E::and(
        pkey.iter()
            .enumerate()
            .map(|(i, e)| E::bin(Op::Eq, e.clone(), fl_col(&k(i))))
            .chain([E::bin(Op::Ne, fl_col("__pgt_f"), E::int(0))])
            .collect(),
    );
    let pp_cond: Vec<ir::Expr> = if pp.is_empty() {
        Vec::new()
    } else {
        vec![coalesced(E::and(pp.clone()))]
    };
    let flipped = |f: &From| {
        with_nulls(
            f.clone()
                .join(JoinKind::Inner, flips.clone(), Some(on.clone())),
        )
    };
    out.push(Variant {
        from: flipped(&side.new_from),
        weight: vec![match keep {
            Keep::WithoutPartner => fl_col("__pgt_f"),
            Keep::WithPartner => E::Neg(Box::new(fl_col("__pgt_f"))),
        }],
        cond: pp_cond.clone(),
    });
    for v in &side.delta {
        out.push(Variant {
            from: flipped(&v.from),
            weight: match keep {
                Keep::WithoutPartner => {
                    vec![E::Neg(Box::new(E::product(&v.weight))), fl_col("__pgt_f")]
                }
                Keep::WithPartner => v
                    .weight
                    .iter()
                    .cloned()
                    .chain([fl_col("__pgt_f")])
                    .collect(),
            },
            cond: v.cond.iter().cloned().chain(pp_cond.clone()).collect(),
        });
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
