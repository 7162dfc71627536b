//! Project (with Filter and Scan below it) over a source with a primary key: one stream-table row
//! per qualifying source row, identified by the source row's primary key.
//!
//! **Delta rule.** Δπ(T) = π(ΔT): each weighted image is projected, and its row identity is the
//! hash of its primary-key values. Per identity, the images' weights are summed by content: what
//! remains with +1 is the row's new content (insert or update), a lone −1 means the row left (it
//! was deleted, or no longer passes the filter), and nothing remains when the window's changes
//! cancel. One MERGE applies it: update or insert the +1 rows, delete the −1-only ones. A change
//! of the primary key itself is a −1 under the old identity and a +1 under the new one.

use super::join::Input;
use super::COL_PREFIX;
use crate::ident::quote_ident;
use crate::render::ROW_ID;
use sqlparser::ast::Expr;

fn projected(items: &[Expr]) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS {}", quote_ident(&format!("{COL_PREFIX}{}", i + 1))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The full result: projected columns and row identity (`id`, over the FROM tables' keys).
pub fn full_rows_sql(input: &Input, id: &str, items: &[Expr], filter: Option<&Expr>) -> String {
    let sep = if items.is_empty() { "" } else { ", " };
    format!(
        "SELECT {cols}{sep}{id} AS {rid} FROM {from}{w}",
        cols = projected(items),
        rid = quote_ident(ROW_ID),
        from = input.bulk_from,
        w = super::filter::where_clause(filter),
    )
}

/// The delta: one row per changed identity with its new columns and `__pgt_net` (> 0: the row's
/// new content; < 0: delete the row).
pub fn delta_sql(input: &Input, id: &str, items: &[Expr], filter: Option<&Expr>) -> String {
    let n = items.len();
    let cols: Vec<String> = (1..=n)
        .map(|i| quote_ident(&format!("{COL_PREFIX}{i}")))
        .collect();
    let sep = if n == 0 { "" } else { ", " };
    let rid = quote_ident(ROW_ID);
    format!(
        "WITH __pgt_d AS ({rows}), \
         __pgt_n AS (SELECT *, sum(__pgt_w) OVER (PARTITION BY {rid}, pg_catalog.hashtextextended(ROW({cols})::text, 0)) AS __pgt_net FROM __pgt_d) \
         SELECT DISTINCT ON ({rid}) {cols}{sep}{rid}, __pgt_net FROM __pgt_n WHERE __pgt_net <> 0 ORDER BY {rid}, __pgt_net DESC",
        rows = input.delta_rows(&format!("{}{sep}{id} AS {rid}", projected(items)), filter),
        cols = cols.join(", "),
    )
}
