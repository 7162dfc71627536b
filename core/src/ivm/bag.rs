//! Project (with Filter and Scan below it) over a source without a primary key: the stream table
//! is a multiset of rows that only their content identifies. Copies of one content are numbered
//! 1..c; copy n has identity `h` for n = 1 and `hashint8extended(h, n)` after, where `h` hashes the
//! content, and every copy keeps `h` in the hidden, indexed column `__pgt_dup`.
//!
//! **Delta rule.** Δπ(T) = π(ΔT) as a Z-set over contents: the window's projected images are
//! summed by content. A content with net weight +k gains copies c+1..c+k, one with −k loses its
//! copies c−k+1..c, where c (its current count) is read through `__pgt_dup`; numbering stays
//! contiguous, so full and delta paths always agree on the identities. Duplicates are counted,
//! never collapsed.

use super::join::{content_hash, Input};
use super::{output_name as out, outputs as projected};
use crate::ir::{
    Cte, Expr, From, Item, Name, Op, Query, RelName, Select, SetExpr, Sort, Statement,
};
use crate::render::ROW_ID;

/// The hidden column holding a row's content hash.
pub const DUP: &str = "__pgt_dup";

fn columns(n: usize) -> Vec<Expr> {
    (1..=n).map(|i| Expr::Col(None, out(i))).collect()
}

fn hidden(c: &str) -> Expr {
    Expr::hidden(None, c)
}

/// Copy `n` of the content hashed `h`: `h` for the first, re-hashed with `n` after.
fn identity(h: Expr, n: Expr) -> Expr {
    Expr::Case(
        vec![(Expr::bin(Op::Eq, n.clone(), Expr::int(1)), h.clone())],
        Some(Box::new(Expr::call(
            "pg_catalog.hashint8extended",
            vec![h, n],
        ))),
    )
}

fn with_items(cols: &[Expr], more: Vec<Item>) -> Vec<Item> {
    cols.iter().cloned().map(Item::bare).chain(more).collect()
}

fn stage(items: Vec<Item>, source: Statement, alias: &str) -> Select {
    Select {
        items,
        from: vec![From::subquery(source, Name::internal(alias))],
        ..Select::default()
    }
}

/// The full result: projected columns, copy identities, content hash.
pub fn full_rows(
    input: &Input,
    items: &[sqlparser::ast::Expr],
    filter: Option<&sqlparser::ast::Expr>,
) -> Query {
    let cols = columns(items.len());
    let rows = Query::select(Select {
        items: projected(items),
        from: vec![input.bulk_from.clone()],
        filter: filter.map(|f| Expr::User(Box::new(f.clone()))),
        ..Select::default()
    });
    let hashed = stage(
        with_items(
            &cols,
            vec![Item::new(
                content_hash(cols.clone()),
                Name::internal("__pgt_h"),
            )],
        ),
        Statement::Query(rows),
        "__pgt_p",
    );
    let numbered = stage(
        with_items(
            &cols,
            vec![
                Item::bare(hidden("__pgt_h")),
                Item::new(
                    Expr::Call {
                        func: "row_number",
                        args: Vec::new(),
                        filter: None,
                        partition_by: Some(vec![hidden("__pgt_h")]),
                    },
                    Name::internal("__pgt_n"),
                ),
            ],
        ),
        Statement::Query(Query::select(hashed)),
        "__pgt_h1",
    );
    Query::select(stage(
        with_items(
            &cols,
            vec![
                Item::new(
                    identity(hidden("__pgt_h"), hidden("__pgt_n")),
                    Name::quoted(ROW_ID),
                ),
                Item::new(hidden("__pgt_h"), Name::quoted(DUP)),
            ],
        ),
        Statement::Query(Query::select(numbered)),
        "__pgt_h2",
    ))
}

/// The delta: one row per copy gained (`__pgt_net` > 0) or lost (< 0).
pub fn delta(
    input: &Input,
    storage: &str,
    items: &[sqlparser::ast::Expr],
    filter: Option<&sqlparser::ast::Expr>,
) -> Query {
    let cols = columns(items.len());
    let local = |n: &str| vec![From::Table(RelName::Local(Name::internal(n)), None)];
    let cte =
        |name: &str, body: Select| Cte::new(name, false, Statement::Query(Query::select(body)));
    let net = || hidden("__pgt_net");
    let weighed = stage(
        with_items(
            &cols,
            vec![
                Item::new(content_hash(cols.clone()), Name::internal("__pgt_h")),
                Item::bare(hidden("__pgt_w")),
            ],
        ),
        Statement::Query(input.delta_query(&projected(items), filter)),
        "__pgt_p",
    );
    let netted = Select {
        distinct_on: Some(vec![hidden("__pgt_h")]),
        items: with_items(
            &cols,
            vec![
                Item::bare(hidden("__pgt_h")),
                Item::new(
                    Expr::cast(
                        Expr::Call {
                            func: "sum",
                            args: vec![hidden("__pgt_w")],
                            filter: None,
                            partition_by: Some(vec![hidden("__pgt_h")]),
                        },
                        "bigint",
                    ),
                    Name::internal("__pgt_net"),
                ),
            ],
        ),
        from: local("__pgt_d"),
        ..Select::default()
    };
    let mut netted = Query::select(netted);
    netted.order_by = vec![Sort::asc(hidden("__pgt_h"))];
    // The copies the storage holds of each changed content, found by the indexed hash.
    let current = Select {
        items: vec![
            Item::bare(Expr::Star(Some(Name::internal("__pgt_n")))),
            Item::new(
                Expr::subquery(Query::select(Select {
                    items: vec![Item::bare(Expr::call("count", vec![Expr::Star(None)]))],
                    from: vec![From::Table(
                        RelName::Catalog(storage.to_string()),
                        Some(Name::internal("__pgt_t")),
                    )],
                    filter: Some(Expr::bin(
                        Op::Eq,
                        Expr::Col(Some(Name::internal("__pgt_t")), Name::quoted(DUP)),
                        Expr::hidden(Some("__pgt_n"), "__pgt_h"),
                    )),
                    ..Select::default()
                })),
                Name::internal("__pgt_c"),
            ),
        ],
        from: local("__pgt_n"),
        filter: Some(Expr::bin(Op::Ne, net(), Expr::int(0))),
        ..Select::default()
    };
    let c = || hidden("__pgt_c");
    let gaining = || Expr::bin(Op::Gt, net(), Expr::int(0));
    let add = |a: Expr, b: Expr| Expr::bin(Op::Add, a, b);
    let copies = Expr::call(
        "pg_catalog.generate_series",
        vec![
            Expr::Case(
                vec![(gaining(), add(c(), Expr::int(1)))],
                Some(Box::new(add(add(c(), net()), Expr::int(1)))),
            ),
            Expr::Case(vec![(gaining(), add(c(), net()))], Some(Box::new(c()))),
        ],
    );
    Query {
        with: vec![
            cte("__pgt_d", weighed),
            Cte::new("__pgt_n", false, Statement::Query(netted)),
            cte("__pgt_cur", current),
        ],
        body: SetExpr::Select(Box::new(Select {
            items: with_items(
                &cols,
                vec![
                    Item::new(
                        identity(hidden("__pgt_h"), hidden("__pgt_copy")),
                        Name::quoted(ROW_ID),
                    ),
                    Item::new(hidden("__pgt_h"), Name::quoted(DUP)),
                    Item::bare(net()),
                ],
            ),
            from: vec![
                local("__pgt_cur").remove(0),
                From::Function {
                    call: copies,
                    alias: Name::internal("__pgt_copy"),
                    lateral: true,
                },
            ],
            ..Select::default()
        })),
        order_by: Vec::new(),
        limit: None,
    }
}
