//! Project (with Filter and Scan below it) over a source with a primary key: one stream-table row
//! per qualifying source row, identified by the source row's primary key.
//!
//! **Delta rule.** Δπ(T) = π(ΔT): each weighted image is projected, and its row identity is the
//! hash of its primary-key values. Per identity, the images' weights are summed by content: what
//! remains with +1 is the row's new content (insert or update), a lone −1 means the row left (it
//! was deleted, or no longer passes the filter), and nothing remains when the window's changes
//! cancel. One MERGE applies it: update or insert the +1 rows, delete the −1-only ones. A change
//! of the primary key itself is a −1 under the old identity and a +1 under the new one.

use super::join::{content_hash, Input};
use super::{output_name as out, outputs};
use crate::ir::{
    Cte, Expr, From, Item, Name, Op, Query, RelName, Select, SetExpr, Sort, Statement,
};
use crate::render::ROW_ID;

/// The select list: each item as `__pgt_c<i>`, then the row identity.
fn projected(items: &[sqlparser::ast::Expr], id: &Expr) -> Vec<Item> {
    let mut cols = outputs(items);
    cols.push(Item::new(id.clone(), Name::quoted(ROW_ID)));
    cols
}

/// The full result: projected columns and row identity (`id`, over the FROM tables' keys).
pub fn full_rows(
    input: &Input,
    id: &Expr,
    items: &[sqlparser::ast::Expr],
    filter: Option<&sqlparser::ast::Expr>,
) -> Query {
    Query::select(Select {
        items: projected(items, id),
        from: vec![input.bulk_from.clone()],
        filter: filter.map(|f| Expr::User(Box::new(f.clone()))),
        ..Select::default()
    })
}

/// The delta: one row per changed identity with its new columns and `__pgt_net` (> 0: the row's
/// new content; < 0: delete the row).
pub fn delta(
    input: &Input,
    id: &Expr,
    items: &[sqlparser::ast::Expr],
    filter: Option<&sqlparser::ast::Expr>,
) -> Query {
    let cols: Vec<Expr> = (1..=items.len()).map(|i| Expr::Col(None, out(i))).collect();
    let rid = || Expr::Col(None, Name::quoted(ROW_ID));
    let net = || Expr::hidden(None, "__pgt_net");
    let local = |n: &str| vec![From::Table(RelName::Local(Name::internal(n)), None)];
    let cte = |name: &str, body: Query| Cte::new(name, false, Statement::Query(body));
    let rows = input.delta_query(&projected(items, id), filter);
    let netted = Select {
        items: vec![
            Item::bare(Expr::Star(None)),
            Item::new(
                Expr::Call {
                    func: "sum",
                    args: vec![Expr::hidden(None, "__pgt_w")],
                    filter: None,
                    partition_by: Some(vec![rid(), content_hash(cols.clone())]),
                },
                Name::internal("__pgt_net"),
            ),
        ],
        from: local("__pgt_d"),
        ..Select::default()
    };
    let mut last = cols.iter().cloned().map(Item::bare).collect::<Vec<_>>();
    last.push(Item::bare(rid()));
    last.push(Item::bare(net()));
    Query {
        with: vec![cte("__pgt_d", rows), cte("__pgt_n", Query::select(netted))],
        body: SetExpr::Select(Box::new(Select {
            distinct_on: Some(vec![rid()]),
            items: last,
            from: local("__pgt_n"),
            filter: Some(Expr::bin(Op::Ne, net(), Expr::int(0))),
            ..Select::default()
        })),
        order_by: vec![Sort::asc(rid()), Sort::desc(net())],
        limit: None,
    }
}
