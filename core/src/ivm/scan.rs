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
use crate::ident::quote_ident;

/// SQL for the window predicate over buffer alias `__pgt_c`, the source's own-change parameter
/// being `$own`. Its first conjunct is one range on `xid` (the buffer's index) below which
/// nothing can be in the window, so consumed rows and the dead tuples of trimmed ones are not read.
/// A row is in the window when its transaction is visible in the statement's snapshot (or is the
/// running transaction itself) and was not visible to the previous refresh. The first half is
/// stated, not left to the row's own visibility: the WAL consumer writes a transaction's rows in
/// a transaction of its own, possibly before that transaction is visible to this snapshot.
pub fn window_predicate(own: usize) -> String {
    WINDOW.replace("$3", &format!("${own}"))
}

const WINDOW: &str = "__pgt_c.xid >= LEAST(pg_catalog.pg_snapshot_xmin($1::pg_snapshot), \
                         COALESCE($2::xid8, pg_catalog.pg_snapshot_xmin($1::pg_snapshot))) \
     AND (pg_catalog.pg_visible_in_snapshot(__pgt_c.xid, (SELECT pg_catalog.pg_current_snapshot())) \
          OR __pgt_c.xid = (SELECT pg_catalog.pg_current_xact_id_if_assigned())) \
     AND ((NOT pg_catalog.pg_visible_in_snapshot(__pgt_c.xid, $1::pg_snapshot) \
           AND __pgt_c.xid IS DISTINCT FROM $2::xid8) \
          OR (__pgt_c.xid = $2::xid8 AND __pgt_c.change_id > COALESCE($3::bigint, 0)))";

/// The weighted row images of the window, shaped like the source table (same column names) plus
/// `__pgt_w`.
pub fn events_sql(src: &SourceTable) -> String {
    let image = |prefix: &str| {
        src.columns
            .iter()
            .map(|(attnum, name)| {
                format!(
                    "__pgt_c.{} AS {}",
                    quote_ident(&format!("{prefix}_{attnum}")),
                    quote_ident(name)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sep = if src.columns.is_empty() { "" } else { ", " };
    format!(
        "SELECT {old}{sep}-1 AS __pgt_w FROM {buf} AS __pgt_c WHERE __pgt_c.action IN ('U', 'D') AND {win} \
         UNION ALL \
         SELECT {new}{sep}1 AS __pgt_w FROM {buf} AS __pgt_c WHERE __pgt_c.action IN ('I', 'U') AND {win}",
        old = image("old"),
        new = image("new"),
        buf = src.buffer,
        win = window_predicate(src.own_param),
    )
}

/// The cheap probe before planning anything: how many changes the window holds, and why the
/// refresh must be FULL, if it must (NULL otherwise): a TRUNCATE (everything before it is void).
/// One index-backed scan of the buffer.
pub fn probe_sql(sources: &[&SourceTable]) -> String {
    let parts: Vec<String> = sources
        .iter()
        .map(|s| {
            format!(
                "SELECT count(*) AS n, COALESCE(bool_or(__pgt_c.action = 'T'), false) AS tr \
                   FROM {} AS __pgt_c WHERE {}",
                s.buffer,
                window_predicate(s.own_param)
            )
        })
        .collect();
    format!(
        "SELECT COALESCE(sum(n), 0)::bigint, \
                CASE WHEN bool_or(tr) THEN 'TRUNCATE of a source' END FROM ({}) AS __pgt_p",
        parts.join(" UNION ALL ")
    )
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
        };
        let sql = events_sql(&src);
        assert!(sql.contains(
            "SELECT __pgt_c.\"old_1\" AS \"id\", __pgt_c.\"old_3\" AS \"v\", -1 AS __pgt_w"
        ));
        assert!(sql.contains(
            "SELECT __pgt_c.\"new_1\" AS \"id\", __pgt_c.\"new_3\" AS \"v\", 1 AS __pgt_w"
        ));
        assert!(sql.contains("action IN ('U', 'D')") && sql.contains("action IN ('I', 'U')"));
    }
}
