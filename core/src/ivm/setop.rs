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
use crate::ir::{Expr, From, Item, JoinKind, Name, Op, Query, Select, SetExpr, SetOp, Statement};

/// Which multiset operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SetAll {
    Intersect,
    Except,
}

impl SetAll {
    fn ir(self) -> SetOp {
        match self {
            SetAll::Intersect => SetOp::IntersectAll,
            SetAll::Except => SetOp::ExceptAll,
        }
    }

    /// The copies of a row counted `a` and `b` times in the branches.
    fn copies(self, a: Expr, b: Expr) -> Expr {
        match self {
            SetAll::Intersect => Expr::call("LEAST", vec![a, b]),
            SetAll::Except => Expr::call("GREATEST", vec![Expr::bin(Op::Sub, a, b), Expr::int(0)]),
        }
    }
}

fn select_from(items: Vec<Item>, from: From, filter: Vec<Expr>) -> Select {
    Select {
        items,
        from: vec![from],
        filter: (!filter.is_empty()).then(|| Expr::and(filter)),
        ..Select::default()
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
    let width = spec.items.len();
    let names: Vec<Name> = (1..=width)
        .map(|i| Name::quoted(format!("{UNION_ALIAS}{i}")))
        .collect();
    let d = |c: &str| Expr::hidden(Some("__pgt_d"), c);
    let d_cols: Vec<Expr> = names
        .iter()
        .map(|n| Expr::Col(Some(Name::internal("__pgt_d")), n.clone()))
        .collect();
    let mut fulls = Vec::new();
    let mut deltas = Vec::new();
    let mut counts = Vec::new();
    let mut offset = 0;
    for (side, b) in spec.branches.iter().enumerate() {
        let n = b.from.len();
        let bi = Input::new(b, &sources[offset..offset + n])?;
        offset += n;
        let cols: Vec<Item> = b
            .items
            .iter()
            .zip(&names)
            .map(|(e, n)| Item::new(Expr::user(e), n.clone()))
            .collect();
        let filter: Vec<Expr> = b.filter.iter().map(Expr::user).collect();
        fulls.push(SetExpr::Select(Box::new(select_from(
            cols.clone(),
            bi.bulk_from.clone(),
            filter.clone(),
        ))));
        deltas.push(select_from(
            vec![
                Item::bare(Expr::Star(Some(Name::internal("__pgt_b")))),
                Item::new(Expr::int(side as i64), Name::internal("__pgt_side")),
            ],
            From::subquery(
                Statement::Query(bi.delta_query(&cols, b.filter.as_ref())),
                Name::internal("__pgt_b"),
            ),
            Vec::new(),
        ));
        // A content without NULLs is found by equality (index-friendly); one with a NULL by
        // IS NOT DISTINCT FROM. Which branch runs is decided per content (a one-time filter).
        let items: Vec<Expr> = b.items.iter().map(Expr::user).collect();
        let one = || vec![Item::bare(Expr::int(1))];
        let by_equality = std::iter::once(Expr::negated(d("__pgt_nulls")))
            .chain(
                items
                    .iter()
                    .zip(&d_cols)
                    .map(|(e, c)| Expr::bin(Op::Eq, e.clone(), c.clone())),
            )
            .chain(filter.clone())
            .collect();
        let null_safe = vec![
            d("__pgt_nulls"),
            Expr::bin(
                Op::IsNotDistinctFrom,
                Expr::Row(items.clone()),
                Expr::Row(d_cols.clone()),
            ),
        ]
        .into_iter()
        .chain(filter)
        .collect();
        let full = || bi.full_from.clone();
        counts.push(Expr::subquery(Query::select(select_from(
            vec![Item::bare(Expr::call("count", vec![Expr::Star(None)]))],
            From::subquery(
                Statement::Query(Query::union_all(vec![
                    select_from(one(), full(), by_equality),
                    select_from(one(), full(), null_safe),
                ])),
                Name::internal("__pgt_x"),
            ),
            Vec::new(),
        ))));
    }
    let side_sum = |side: i64, alias: &str| {
        Item::new(
            Expr::cast(
                Expr::call(
                    "COALESCE",
                    vec![
                        Expr::agg(
                            "sum",
                            vec![Expr::hidden(None, "__pgt_w")],
                            Some(Expr::bin(
                                Op::Eq,
                                Expr::hidden(None, "__pgt_side"),
                                Expr::int(side),
                            )),
                        ),
                        Expr::int(0),
                    ],
                ),
                "bigint",
            ),
            Name::internal(alias),
        )
    };
    let plain: Vec<Expr> = names.iter().map(|n| Expr::Col(None, n.clone())).collect();
    let mut changed_items: Vec<Item> = plain.iter().cloned().map(Item::bare).collect();
    changed_items.push(Item::new(
        Expr::or(
            plain
                .iter()
                .map(|c| Expr::IsNull(Box::new(c.clone()), false))
                .collect(),
        ),
        Name::internal("__pgt_nulls"),
    ));
    changed_items.push(side_sum(0, "__pgt_d1"));
    changed_items.push(side_sum(1, "__pgt_d2"));
    let mut changed = select_from(
        changed_items,
        From::subquery(
            Statement::Query(Query::union_all(deltas)),
            Name::internal("__pgt_e"),
        ),
        Vec::new(),
    );
    changed.group_by = plain;
    let c = |n: &str| Expr::hidden(Some("__pgt_c"), n);
    let weight = Expr::bin(
        Op::Sub,
        op.copies(c("__pgt_n1"), c("__pgt_n2")),
        op.copies(
            Expr::bin(Op::Sub, c("__pgt_n1"), d("__pgt_d1")),
            Expr::bin(Op::Sub, c("__pgt_n2"), d("__pgt_d2")),
        ),
    );
    let mut counted = counts.into_iter();
    let lookups = Select {
        items: vec![
            Item::new(
                counted.next().expect("two branches"),
                Name::internal("__pgt_n1"),
            ),
            Item::new(
                counted.next().expect("two branches"),
                Name::internal("__pgt_n2"),
            ),
        ],
        ..Select::default()
    };
    let rows = select_from(
        d_cols
            .into_iter()
            .map(Item::bare)
            .chain([Item::new(weight, Name::internal("__pgt_w"))])
            .collect(),
        From::subquery(
            Statement::Query(Query::select(changed)),
            Name::internal("__pgt_d"),
        )
        .join(
            JoinKind::Cross,
            From::Subquery {
                query: Box::new(Statement::Query(Query::select(lookups))),
                alias: Name::internal("__pgt_c"),
                lateral: true,
            },
            None,
        ),
        Vec::new(),
    );
    let mut fulls = fulls.into_iter();
    let (left, right) = (
        fulls.next().expect("two branches"),
        fulls.next().expect("two branches"),
    );
    let full_from = From::subquery(
        Statement::Query(Query {
            with: Vec::new(),
            body: SetExpr::Combine(op.ir(), Box::new(left), Box::new(right)),
            order_by: Vec::new(),
            limit: None,
        }),
        Name::quoted(UNION_ALIAS),
    );
    Ok(Input {
        bulk_from: full_from.clone(),
        full_from,
        variants: vec![Variant {
            from: From::subquery(
                Statement::Query(Query::select(rows)),
                Name::quoted(UNION_ALIAS),
            ),
            weight: vec![weight_of(UNION_ALIAS)],
            cond: vec![Expr::bin(Op::Ne, weight_of(UNION_ALIAS), Expr::int(0))],
        }],
        tables,
        identity_tables: 0,
    })
}
