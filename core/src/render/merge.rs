//! Applying a result to a stream table's storage: the FULL refresh's rows with content-hash
//! identities, and the one MERGE statement that applies a full result or a delta and reports
//! the snapshot it ran in and the rows it changed. Built as plan nodes ([`crate::ir`]).

use super::{OutputColumn, ROW_ID};
use crate::ir::{
    sql, Action, Cte, Expr, From, Item, Matched, Merge, MergeClause, Name, Op, Query, RelName,
    Select, SetExpr, Statement,
};

/// The defining query's rows with a content-based row identity (used when the query is refreshed
/// FULL): a 64-bit hash of the row's text form, re-hashed with the occurrence number for the 2nd,
/// 3rd, ... copy of a duplicate row, so that duplicates are counted, not collapsed, and identical
/// contents always get identical ids. Columns: `__pgt_c<i>`, `__pgt_row_id`.
pub fn full_rows(query: &str, cols: &[OutputColumn]) -> Query {
    full_rows_of(Statement::User(query.to_string()), cols)
}

/// [`full_rows`] of a query given as a plan (its output columns named as `cols`).
pub fn full_rows_of(query: Statement, cols: &[OutputColumn]) -> Query {
    let out = |i: usize| Name::quoted(format!("__pgt_c{i}"));
    let plain = || -> Vec<Item> {
        (1..=cols.len())
            .map(|i| Item::bare(Expr::Col(None, out(i))))
            .collect()
    };
    let h = || Expr::hidden(None, "__pgt_h");
    let n = || Expr::hidden(None, "__pgt_n");
    let mut hashed: Vec<Item> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Item::new(
                Expr::Col(
                    Some(Name::internal("__pgt_q")),
                    Name::quoted(c.name.clone()),
                ),
                out(i + 1),
            )
        })
        .collect();
    hashed.push(Item::new(
        Expr::call(
            "hashtextextended",
            vec![
                Expr::cast(Expr::hidden(None, "__pgt_q"), "text"),
                Expr::int(0),
            ],
        ),
        Name::internal("__pgt_h"),
    ));
    let mut numbered = plain();
    numbered.push(Item::bare(h()));
    numbered.push(Item::new(
        Expr::Call {
            func: "row_number",
            args: Vec::new(),
            filter: None,
            partition_by: Some(vec![h()]),
        },
        Name::internal("__pgt_n"),
    ));
    let mut top = plain();
    top.push(Item::new(
        Expr::Case(
            vec![(Expr::bin(Op::Eq, n(), Expr::int(1)), h())],
            Some(Box::new(Expr::call("hashint8extended", vec![h(), n()]))),
        ),
        Name::quoted(ROW_ID),
    ));
    let from = |query: Statement, alias: &str| vec![From::subquery(query, Name::internal(alias))];
    let stage = |items: Vec<Item>, source: Statement, alias: &str| {
        Statement::Query(Query::select(Select {
            items,
            from: from(source, alias),
            ..Select::default()
        }))
    };
    let q = stage(hashed, query, "__pgt_q");
    let q = stage(numbered, q, "__pgt_q1");
    Query::select(Select {
        items: top,
        from: from(q, "__pgt_q2"),
        ..Select::default()
    })
}

/// [`full_rows`] as SQL.
pub fn full_rows_sql(query: &str, cols: &[OutputColumn]) -> String {
    sql::query(&full_rows(query, cols))
}

/// How a MERGE source's rows are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// The complete result: insert new identities, update changed rows, delete the rest.
    Full,
    /// Row deltas with `__pgt_net`: > 0 upsert, < 0 delete.
    DeltaRows,
    /// Group deltas with `__pgt_keep`: true upsert, false delete.
    DeltaGroups,
}

/// One statement (so one snapshot) that applies `source` (columns `__pgt_c<i>`, `__pgt_row_id`,
/// `hidden`...) to the storage table and returns the snapshot it ran in, the writing transaction
/// (if it has an id) and the rows inserted, updated and deleted.
pub fn merge(
    schema: &str,
    name: &str,
    visible: &[String],
    hidden: &[String],
    source: Statement,
    kind: MergeKind,
) -> Query {
    let (t, s) = ("__pgt_t", "__pgt_s");
    let col = |rel: &str, c: &Name| Expr::Col(Some(Name::internal(rel)), c.clone());
    let rid = Name::quoted(ROW_ID);
    let mut targets: Vec<Name> = visible.iter().map(|c| Name::quoted(c.clone())).collect();
    targets.extend(hidden.iter().map(|h| Name::quoted(h.clone())));
    let mut sources: Vec<Name> = (1..=visible.len())
        .map(|i| Name::quoted(format!("__pgt_c{i}")))
        .collect();
    sources.extend(hidden.iter().map(|h| Name::quoted(h.clone())));
    let source_values: Vec<Expr> = sources.iter().map(|c| col(s, c)).collect();
    let update = if targets.is_empty() {
        Action::DoNothing
    } else {
        Action::Update(targets.iter().cloned().zip(source_values.clone()).collect())
    };
    let mut ins_cols = targets.clone();
    ins_cols.push(rid.clone());
    let mut ins_vals = source_values.clone();
    ins_vals.push(col(s, &rid));
    let insert = Action::Insert(ins_cols, ins_vals);
    let clause = |when, cond, action| MergeClause { when, cond, action };
    let flag = |c: &str| Expr::hidden(Some(s), c);
    let clauses = match kind {
        MergeKind::Full => vec![
            clause(
                Matched::Matched,
                Some(Expr::bin(
                    Op::IsDistinctFrom,
                    Expr::cast(
                        Expr::Row(targets.iter().map(|c| col(t, c)).collect()),
                        "text",
                    ),
                    Expr::cast(Expr::Row(source_values), "text"),
                )),
                update,
            ),
            clause(Matched::NotMatchedByTarget, None, insert),
            clause(Matched::NotMatchedBySource, None, Action::Delete),
        ],
        MergeKind::DeltaRows => vec![
            clause(
                Matched::Matched,
                Some(Expr::bin(Op::Lt, flag("__pgt_net"), Expr::int(0))),
                Action::Delete,
            ),
            clause(Matched::Matched, None, update),
            clause(
                Matched::NotMatched,
                Some(Expr::bin(Op::Gt, flag("__pgt_net"), Expr::int(0))),
                insert,
            ),
        ],
        MergeKind::DeltaGroups => vec![
            clause(
                Matched::Matched,
                Some(Expr::negated(flag("__pgt_keep"))),
                Action::Delete,
            ),
            clause(Matched::Matched, None, update),
            clause(Matched::NotMatched, Some(flag("__pgt_keep")), insert),
        ],
    };
    let action = Expr::hidden(None, "__pgt_action");
    let count = |what: &str, alias: &str| {
        Item::new(
            Expr::Call {
                func: "count",
                args: vec![Expr::Star(None)],
                filter: Some(Box::new(Expr::bin(Op::Eq, action.clone(), Expr::str(what)))),
                partition_by: None,
            },
            Name::internal(alias),
        )
    };
    let m = Merge {
        target: RelName::Qualified(Name::quoted(schema), Name::quoted(name)),
        target_alias: Name::internal(t),
        source: Box::new(source),
        source_alias: Name::internal(s),
        on: Expr::bin(Op::Eq, col(t, &rid), col(s, &rid)),
        clauses,
        returning: vec![Item::new(
            Expr::call("merge_action", vec![]),
            Name::internal("__pgt_action"),
        )],
    };
    Query {
        with: vec![Cte::new("__pgt_m", false, Statement::Merge(m))],
        body: SetExpr::Select(Box::new(Select {
            items: vec![
                Item::new(
                    Expr::cast(Expr::call("pg_catalog.pg_current_snapshot", vec![]), "text"),
                    Name::internal("frontier"),
                ),
                Item::new(
                    Expr::cast(
                        Expr::call("pg_catalog.pg_current_xact_id_if_assigned", vec![]),
                        "text",
                    ),
                    Name::internal("xid"),
                ),
                count("INSERT", "inserted"),
                count("UPDATE", "updated"),
                count("DELETE", "deleted"),
            ],
            from: vec![From::Table(RelName::Local(Name::internal("__pgt_m")), None)],
            ..Select::default()
        })),
        order_by: Vec::new(),
        limit: None,
    }
}

/// [`merge`] of a source given as SQL text, as SQL.
pub fn merge_sql(
    schema: &str,
    name: &str,
    visible: &[String],
    hidden: &[String],
    source: &str,
    kind: MergeKind,
) -> String {
    sql::query(&merge(
        schema,
        name,
        visible,
        hidden,
        Statement::Sql(source.to_string()),
        kind,
    ))
}
