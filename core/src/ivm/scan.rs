//! Scan: the rows of a source table.
//!
//! **Delta rule.** ΔScan(T) over a refresh window is the multiset of captured changes whose
//! transaction committed after the previous frontier and is visible now, each row image weighted:
//! the old image of an UPDATE or DELETE with −1, the new image of an INSERT or UPDATE with +1.
//! Summing weights over the window gives T_new − T_old as a Z-set, whatever the order of the
//! changes, so no compaction is needed for correctness (an insert and a delete of one row in the
//! window cancel; a chain of updates leaves −first_old +last_new).
//!
//! The window is `$1` (the previous frontier, a `pg_snapshot`), `$2` (the transaction that ran
//! the previous refresh, or NULL) and `$3` (the last change of that transaction it consumed):
//! rows of transactions not visible in `$1`, plus rows of `$2` written after that refresh. (The
//! refreshing transaction's own rows are decided by change id alone: whether a snapshot counts
//! its own transaction as visible depends on where its xid falls, so visibility cannot say.)

use super::SourceTable;
use crate::ir::{sql, Expr, From, Item, Lit, Name, Op, Query, RelName, Select, Statement};

/// The buffer alias every window scan reads through.
const BUF: &str = "__pgt_c";

fn buf_col(column: &str) -> Expr {
    Expr::hidden(Some(BUF), column)
}

/// Column `attnum` of a buffer row's `old` or `new` image.
fn image_col(prefix: &str, attnum: i16) -> Expr {
    Expr::Col(
        Some(Name::internal(BUF)),
        Name::quoted(format!("{prefix}_{attnum}")),
    )
}

/// The window predicate over buffer alias `__pgt_c`, the source's own-change parameter being
/// `$own`. Its first conjunct is one range on `xid` (the buffer's index) below which nothing can
/// be in the window, so consumed rows and the dead tuples of trimmed ones are not read. A row is
/// in the window when its transaction is visible in the statement's snapshot (or is the running
/// transaction itself) and was not visible to the previous refresh. The first half is stated,
/// not left to the row's own visibility: the WAL consumer writes a transaction's rows in a
/// transaction of its own, possibly before that transaction is visible to this snapshot.
pub fn window(own: usize) -> Expr {
    let frontier = || Expr::Param(1, Some("pg_snapshot"));
    let last_xid = || Expr::Param(2, Some("xid8"));
    let xid = || buf_col("xid");
    let xmin = || Expr::call("pg_catalog.pg_snapshot_xmin", vec![frontier()]);
    let scalar = |func| {
        Expr::subquery(Query::select(Select {
            items: vec![Item::bare(Expr::call(func, vec![]))],
            ..Select::default()
        }))
    };
    Expr::and(vec![
        Expr::bin(
            Op::Ge,
            xid(),
            Expr::call(
                "LEAST",
                vec![xmin(), Expr::call("COALESCE", vec![last_xid(), xmin()])],
            ),
        ),
        Expr::or(vec![
            Expr::call(
                "pg_catalog.pg_visible_in_snapshot",
                vec![xid(), scalar("pg_catalog.pg_current_snapshot")],
            ),
            Expr::bin(
                Op::Eq,
                xid(),
                scalar("pg_catalog.pg_current_xact_id_if_assigned"),
            ),
        ]),
        Expr::or(vec![
            Expr::and(vec![
                Expr::negated(Expr::call(
                    "pg_catalog.pg_visible_in_snapshot",
                    vec![xid(), frontier()],
                )),
                Expr::bin(Op::IsDistinctFrom, xid(), last_xid()),
            ]),
            Expr::and(vec![
                Expr::bin(Op::Eq, xid(), last_xid()),
                Expr::bin(
                    Op::Gt,
                    buf_col("change_id"),
                    Expr::call(
                        "COALESCE",
                        vec![Expr::Param(own, Some("bigint")), Expr::int(0)],
                    ),
                ),
            ]),
        ]),
    ])
}

/// [`window`] as SQL, for the operators that still assemble SQL text.
pub fn window_predicate(own: usize) -> String {
    sql::expr(&window(own))
}

fn buffer(src: &SourceTable) -> From {
    From::table(RelName::Catalog(src.buffer.clone()), BUF)
}

/// `__pgt_c.action IN (...)`, and the window; with the source's relevant columns known (see
/// [`super::relevant`]), not an UPDATE that left them all binary-identical.
fn changes(src: &SourceTable, actions: [&str; 2]) -> Expr {
    let mut conds = vec![
        Expr::InList(
            Box::new(buf_col("action")),
            actions.iter().map(|a| Expr::str(a)).collect(),
            false,
        ),
        window(src.own_param),
    ];
    if let Some(relevant) = &src.relevant {
        let image =
            |prefix: &str| Expr::Row(relevant.iter().map(|a| image_col(prefix, *a)).collect());
        conds.push(Expr::negated(Expr::and(vec![
            Expr::bin(Op::Eq, buf_col("action"), Expr::str("U")),
            Expr::call(
                "pg_catalog.record_image_eq",
                vec![image("old"), image("new")],
            ),
        ])));
    }
    Expr::and(conds)
}

/// The weighted row images of the window, shaped like the source table (same column names) plus
/// `__pgt_w`.
pub fn events(src: &SourceTable) -> Query {
    let image = |prefix: &str, weight: i64| {
        let mut items: Vec<Item> = src
            .columns
            .iter()
            .map(|(attnum, name)| Item::new(image_col(prefix, *attnum), Name::quoted(name.clone())))
            .collect();
        items.push(Item::new(Expr::int(weight), Name::internal("__pgt_w")));
        items
    };
    Query::union_all(vec![
        Select {
            items: image("old", -1),
            from: vec![buffer(src)],
            filter: Some(changes(src, ["U", "D"])),
            ..Select::default()
        },
        Select {
            items: image("new", 1),
            from: vec![buffer(src)],
            filter: Some(changes(src, ["I", "U"])),
            ..Select::default()
        },
    ])
}

/// [`events`] as SQL, for the operators that still assemble SQL text.
pub fn events_sql(src: &SourceTable) -> String {
    sql::query(&events(src))
}

/// The cheap probe before planning anything: how many changes the window holds, and why the
/// refresh must be FULL, if it must (NULL otherwise): a TRUNCATE (everything before it is void).
/// One index-backed scan of the buffer.
pub fn probe(sources: &[&SourceTable]) -> Query {
    let parts: Vec<Select> = sources
        .iter()
        .map(|s| Select {
            items: vec![
                Item::new(
                    Expr::call("count", vec![Expr::Star(None)]),
                    Name::internal("n"),
                ),
                Item::new(
                    Expr::call(
                        "COALESCE",
                        vec![
                            Expr::call(
                                "bool_or",
                                vec![Expr::bin(Op::Eq, buf_col("action"), Expr::str("T"))],
                            ),
                            Expr::Lit(Lit::Bool(false)),
                        ],
                    ),
                    Name::internal("tr"),
                ),
            ],
            from: vec![buffer(s)],
            filter: Some(window(s.own_param)),
            ..Select::default()
        })
        .collect();
    Query::select(Select {
        items: vec![
            Item::bare(Expr::cast(
                Expr::call(
                    "COALESCE",
                    vec![
                        Expr::call("sum", vec![Expr::hidden(None, "n")]),
                        Expr::int(0),
                    ],
                ),
                "bigint",
            )),
            Item::bare(Expr::Case(
                vec![(
                    Expr::call("bool_or", vec![Expr::hidden(None, "tr")]),
                    Expr::str("TRUNCATE of a source"),
                )],
                None,
            )),
        ],
        from: vec![From::subquery(
            Statement::Query(Query::union_all(parts)),
            Name::internal("__pgt_p"),
        )],
        ..Select::default()
    })
}

/// The sources a probe reads: each buffer once (a self-join reads one buffer twice, under one
/// parameter).
pub fn probe_sources(sources: &[SourceTable]) -> Vec<&SourceTable> {
    let mut seen = Vec::new();
    sources
        .iter()
        .filter(|s| {
            let new = !seen.contains(&s.own_param);
            seen.push(s.own_param);
            new
        })
        .collect()
}

/// [`probe`] as SQL.
pub fn probe_sql(sources: &[&SourceTable]) -> String {
    sql::query(&probe(sources))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_weight_old_and_new_images() {
        let src = SourceTable {
            quoted: "\"public\".\"t\"".into(),
            buffer: "\"pgtrickle_changes\".\"changes_1\"".into(),
            columns: vec![(1, "id".into()), (3, "v".into())],
            primary_key: Some(vec!["id".into()]),
            own_param: 3,
            relevant: None,
        };
        let sql = events_sql(&src);
        assert!(sql.contains(
            "SELECT __pgt_c.\"old_1\" AS \"id\", __pgt_c.\"old_3\" AS \"v\", -1 AS __pgt_w"
        ));
        assert!(sql.contains(
            "SELECT __pgt_c.\"new_1\" AS \"id\", __pgt_c.\"new_3\" AS \"v\", 1 AS __pgt_w"
        ));
        assert!(sql.contains("action IN ('U', 'D')") && sql.contains("action IN ('I', 'U')"));
        assert!(!sql.contains("record_image_eq"));
    }

    #[test]
    fn updates_leaving_the_relevant_columns_alone_are_not_in_the_window() {
        let src = SourceTable {
            quoted: "\"public\".\"t\"".into(),
            buffer: "\"pgtrickle_changes\".\"changes_1\"".into(),
            columns: vec![(1, "id".into()), (2, "note".into()), (3, "v".into())],
            primary_key: Some(vec!["id".into()]),
            own_param: 3,
            relevant: Some(vec![1, 3]),
        };
        let sql = events_sql(&src);
        let filter = "NOT (__pgt_c.action = 'U' AND pg_catalog.record_image_eq(ROW(__pgt_c.\"old_1\", __pgt_c.\"old_3\"), ROW(__pgt_c.\"new_1\", __pgt_c.\"new_3\")))";
        assert_eq!(sql.matches(filter).count(), 2, "{sql}");
    }
}
