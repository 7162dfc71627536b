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

use super::join::Input;
use super::COL_PREFIX;
use crate::ident::quote_ident;
use crate::render::ROW_ID;
use sqlparser::ast::Expr;

/// The hidden column holding a row's content hash.
pub const DUP: &str = "__pgt_dup";

fn projected(items: &[Expr]) -> (String, String) {
    let cols: Vec<String> = (1..=items.len())
        .map(|i| quote_ident(&format!("{COL_PREFIX}{i}")))
        .collect();
    let proj = items
        .iter()
        .zip(&cols)
        .map(|(e, c)| format!("{e} AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    (proj, cols.join(", "))
}

fn identity(h: &str, n: &str) -> String {
    format!("CASE WHEN {n} = 1 THEN {h} ELSE pg_catalog.hashint8extended({h}, {n}) END")
}

/// The full result: projected columns, copy identities, content hash.
pub fn full_rows_sql(input: &Input, items: &[Expr], filter: Option<&Expr>) -> String {
    let (proj, cols) = projected(items);
    let sep = if items.is_empty() { "" } else { ", " };
    format!(
        "SELECT {cols}{sep}{id} AS {rid}, __pgt_h AS {dup} FROM (\
           SELECT {cols}{sep}__pgt_h, row_number() OVER (PARTITION BY __pgt_h) AS __pgt_n FROM (\
             SELECT {cols}{sep}pg_catalog.hashtextextended(ROW({cols})::text, 0) AS __pgt_h FROM (\
               SELECT {proj} FROM {from}{w}) AS __pgt_p) AS __pgt_h1) AS __pgt_h2",
        id = identity("__pgt_h", "__pgt_n"),
        rid = quote_ident(ROW_ID),
        dup = quote_ident(DUP),
        from = input.bulk_from,
        w = super::filter::where_clause(filter),
    )
}

/// The delta: one row per copy gained (`__pgt_net` > 0) or lost (< 0).
pub fn delta_sql(input: &Input, storage: &str, items: &[Expr], filter: Option<&Expr>) -> String {
    let (proj, cols) = projected(items);
    let sep = if items.is_empty() { "" } else { ", " };
    format!(
        "WITH __pgt_d AS (SELECT {cols}{sep}pg_catalog.hashtextextended(ROW({cols})::text, 0) AS __pgt_h, __pgt_w \
                          FROM ({rows}) AS __pgt_p), \
              __pgt_n AS (SELECT DISTINCT ON (__pgt_h) {cols}{sep}__pgt_h, \
                                 (sum(__pgt_w) OVER (PARTITION BY __pgt_h))::bigint AS __pgt_net FROM __pgt_d ORDER BY __pgt_h), \
              __pgt_cur AS (SELECT __pgt_n.*, (SELECT count(*) FROM {storage} AS __pgt_t WHERE __pgt_t.{dup} = __pgt_n.__pgt_h) AS __pgt_c \
                            FROM __pgt_n WHERE __pgt_net <> 0) \
         SELECT {cols}{sep}{id} AS {rid}, __pgt_h AS {dup}, __pgt_net \
           FROM __pgt_cur, LATERAL pg_catalog.generate_series( \
                CASE WHEN __pgt_net > 0 THEN __pgt_c + 1 ELSE __pgt_c + __pgt_net + 1 END, \
                CASE WHEN __pgt_net > 0 THEN __pgt_c + __pgt_net ELSE __pgt_c END) AS __pgt_copy",
        rows = input.delta_rows(&proj, filter),
        dup = quote_ident(DUP),
        id = identity("__pgt_h", "__pgt_copy"),
        rid = quote_ident(ROW_ID),
    )
}
