//! TopK: a defining query `Q ORDER BY keys LIMIT n [OFFSET m]` (or `OFFSET m ROWS FETCH FIRST n
//! ROWS {ONLY | WITH TIES}`), whose stream table holds exactly the rows the query returns.
//!
//! Delta rule. Let `Q` be the query without its ORDER BY/LIMIT/OFFSET/FETCH and `top(R)` the
//! first `n` rows of `R` after `m`, in key order. `Q` is maintained differentially, like any
//! stream table, in an internal table `I` (every row of `Q`, plus one column per ORDER BY
//! expression that is not an output column) with a B-tree index on the keys, in the keys'
//! directions. Then
//!
//! ```text
//!   top(Q + ΔQ) = SELECT outputs FROM I' ORDER BY keys LIMIT n OFFSET m      (I' = I + ΔQ)
//! ```
//!
//! read through the index: `n + m` index entries, never a recompute of `Q`. The stream table is
//! merged with that result by content, so only rows that entered or left the top (or changed in
//! it) are written. A window with no net change to `Q` (every change filtered out, or cancelled
//! within the window) leaves `I` unchanged, and then the top is not read at all: only a change to
//! a row of `Q` can move the boundary.
//!
//! Ties at the boundary are broken by the index's order, as PostgreSQL breaks them by its plan's:
//! a query whose keys do not order its rows totally may keep a different one of the tied rows
//! than a re-run of the query (both are correct answers to the query).

use super::parse::Unsupported;
use crate::ident::quote_ident;
use crate::ir::{self, sql, From, Item, Limit, Name, RelName, Select, Sort};
use sqlparser::ast::{
    Expr, Ident, LimitClause, OrderByKind, Query, SelectItem, SetExpr, Statement, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Prefix of the internal table's columns that hold ORDER BY expressions which are not output
/// columns (`__pgt_k1`, `__pgt_k2`, ...).
pub const KEY_PREFIX: &str = "__pgt_k";

/// Which column of the internal table an ORDER BY key reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyColumn {
    /// The i-th output column (0-based).
    Output(usize),
    /// The i-th hidden key column (1-based name suffix).
    Hidden(usize),
}

#[derive(Debug, Clone)]
struct Key {
    column: KeyColumn,
    asc: Option<bool>,
    nulls_first: Option<bool>,
}

/// A TopK query split into the query it limits and how it limits it.
#[derive(Debug, Clone)]
pub struct TopK {
    /// `Q`: the query without ORDER BY/LIMIT/OFFSET/FETCH, its output columns followed by one
    /// column `__pgt_k<i>` per ORDER BY expression that is not an output column.
    pub inner: String,
    /// How many `__pgt_k<i>` columns `inner` has after the output columns.
    pub hidden_keys: usize,
    order: Vec<Key>,
    /// `LIMIT n OFFSET m`, or `OFFSET m ROWS FETCH FIRST n ROWS ...`: the constants as written.
    limit: Limit,
}

fn is_count(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, Value::Number(..) | Value::Null))
}

fn position(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(s, _) => s.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn names_output(i: &Ident, outputs: &[String]) -> Option<usize> {
    outputs.iter().position(|o| {
        if i.quote_style.is_some() {
            *o == i.value
        } else {
            *o == i.value.to_ascii_lowercase()
        }
    })
}

/// Splits `sql` when its top level has LIMIT, OFFSET or FETCH; `None` when it has none (or does
/// not parse: the caller's own parse reports that). `outputs` are the query's output column
/// names as PostgreSQL resolved them.
pub fn split(sql: &str, outputs: &[String]) -> Option<Result<TopK, Unsupported>> {
    let Ok(mut stmts) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return None;
    };
    let [Statement::Query(q)] = stmts.as_mut_slice() else {
        return None;
    };
    if q.limit_clause.is_none() && q.fetch.is_none() {
        return None;
    }
    Some(split_query(q, outputs))
}

fn split_query(q: &mut Query, outputs: &[String]) -> Result<TopK, Unsupported> {
    let mut limit = Limit {
        count: None,
        offset: None,
        with_ties: false,
    };
    match &q.limit_clause {
        Some(LimitClause::LimitOffset {
            limit: limit_count,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err("LIMIT BY".into());
            }
            if limit_count.as_ref().is_some_and(|l| !is_count(l))
                || offset.as_ref().is_some_and(|o| !is_count(&o.value))
            {
                return Err("LIMIT or OFFSET with a count that is not a constant".into());
            }
            limit.count = limit_count.clone().map(|c| ir::Expr::User(Box::new(c)));
            limit.offset = offset
                .as_ref()
                .map(|o| ir::Expr::User(Box::new(o.value.clone())));
        }
        Some(LimitClause::OffsetCommaLimit { .. }) => return Err("LIMIT m, n".into()),
        None => {}
    }
    if let Some(f) = &q.fetch {
        if f.percent {
            return Err("FETCH ... PERCENT".into());
        }
        if f.quantity.as_ref().is_some_and(|c| !is_count(c)) {
            return Err("FETCH with a count that is not a constant".into());
        }
        // FETCH FIRST ROW ONLY: one row.
        limit.count =
            Some(ir::Expr::User(Box::new(f.quantity.clone().unwrap_or_else(
                || Expr::value(Value::Number("1".into(), false)),
            ))));
        limit.with_ties = f.with_ties;
    }
    let exprs = match q.order_by.as_ref().map(|o| &o.kind) {
        None => {
            return Err("LIMIT/OFFSET without ORDER BY (which rows it keeps is not defined)".into())
        }
        Some(OrderByKind::All(_)) => return Err("ORDER BY ALL".into()),
        Some(OrderByKind::Expressions(e)) => e.clone(),
    };
    let mut hidden: Vec<Expr> = Vec::new();
    let mut order = Vec::new();
    for o in &exprs {
        if o.with_fill.is_some() {
            return Err("ORDER BY ... WITH FILL".into());
        }
        if matches!(&o.expr, Expr::Tuple(_))
            || matches!(&o.expr, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("row"))
        {
            return Err("ORDER BY a row value".into());
        }
        let column = match &o.expr {
            e if position(e).is_some() => {
                let p = position(e).unwrap_or(0);
                if p == 0 || p > outputs.len() {
                    return Err(format!("ORDER BY position {p}, not an output column").into());
                }
                KeyColumn::Output(p - 1)
            }
            Expr::Identifier(i) if names_output(i, outputs).is_some() => {
                KeyColumn::Output(names_output(i, outputs).unwrap_or(0))
            }
            e => {
                let i = match hidden.iter().position(|h| h == e) {
                    Some(i) => i,
                    None => {
                        hidden.push(e.clone());
                        hidden.len() - 1
                    }
                };
                KeyColumn::Hidden(i + 1)
            }
        };
        order.push(Key {
            column,
            asc: o.options.asc,
            nulls_first: o.options.nulls_first,
        });
    }
    q.order_by = None;
    q.limit_clause = None;
    q.fetch = None;
    if !hidden.is_empty() {
        let SetExpr::Select(select) = q.body.as_mut() else {
            return Err("ORDER BY an expression over a set operation".into());
        };
        if select.distinct.is_some() {
            return Err(
                "SELECT DISTINCT ordered by an expression that is not an output column".into(),
            );
        }
        for (i, e) in hidden.iter().enumerate() {
            select.projection.push(SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::new(format!("{KEY_PREFIX}{}", i + 1)),
            });
        }
    }
    Ok(TopK {
        inner: q.to_string(),
        hidden_keys: hidden.len(),
        order,
        limit,
    })
}

impl TopK {
    fn key_column(&self, k: &Key, outputs: &[String]) -> String {
        match k.column {
            KeyColumn::Output(i) => quote_ident(&outputs[i]),
            KeyColumn::Hidden(i) => quote_ident(&format!("{KEY_PREFIX}{i}")),
        }
    }

    fn keys(&self, outputs: &[String]) -> String {
        self.order
            .iter()
            .map(|k| {
                let mut s = self.key_column(k, outputs);
                match k.asc {
                    Some(true) => s.push_str(" ASC"),
                    Some(false) => s.push_str(" DESC"),
                    None => {}
                }
                match k.nulls_first {
                    Some(true) => s.push_str(" NULLS FIRST"),
                    Some(false) => s.push_str(" NULLS LAST"),
                    None => {}
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The stream table's rows (columns named as `outputs`) read from the internal table
    /// `internal` through its key index.
    pub fn top(&self, internal: RelName, outputs: &[String]) -> ir::Query {
        let name = |k: &Key| match k.column {
            KeyColumn::Output(i) => Name::quoted(outputs[i].clone()),
            KeyColumn::Hidden(i) => Name::quoted(format!("{KEY_PREFIX}{i}")),
        };
        let mut q = ir::Query::select(Select {
            items: outputs
                .iter()
                .map(|o| Item::bare(ir::Expr::Col(None, Name::quoted(o.clone()))))
                .collect(),
            from: vec![From::Table(internal, None)],
            ..Select::default()
        });
        q.order_by = self
            .order
            .iter()
            .map(|k| Sort {
                expr: ir::Expr::Col(None, name(k)),
                descending: k.asc == Some(false),
                nulls_first: k.nulls_first,
            })
            .collect();
        q.limit = Some(self.limit.clone());
        q
    }

    /// [`TopK::top`] as SQL.
    pub fn top_sql(&self, internal: RelName, outputs: &[String]) -> String {
        sql::query(&self.top(internal, outputs))
    }

    /// The index that makes [`TopK::top_sql`] read only the rows it returns.
    pub fn index_sql(&self, internal: &str, outputs: &[String]) -> String {
        format!("CREATE INDEX ON {internal} ({})", self.keys(outputs))
    }

    /// The TopK line of the operator tree.
    pub fn explain(&self, outputs: &[String]) -> String {
        format!(
            "TopK: ORDER BY {}{} (read through an index of the internal table below)",
            self.keys(outputs),
            sql::limit(&self.limit)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i() -> RelName {
        RelName::Local(Name::internal("i"))
    }

    fn outs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ok(sql: &str, o: &[&str]) -> TopK {
        split(sql, &outs(o))
            .expect("a TopK query")
            .expect("supported")
    }

    #[test]
    fn no_limit_is_not_topk() {
        assert!(split("SELECT a FROM t ORDER BY a", &outs(&["a"])).is_none());
        assert!(split("SELECT a FROM (SELECT a FROM t LIMIT 3) s", &outs(&["a"])).is_none());
    }

    #[test]
    fn output_columns_by_name_and_position() {
        let t = ok(
            "SELECT g, sum(v) AS total FROM t GROUP BY g ORDER BY total DESC, 1 LIMIT 10 OFFSET 2",
            &["g", "total"],
        );
        assert_eq!(t.inner, "SELECT g, sum(v) AS total FROM t GROUP BY g");
        assert_eq!(t.hidden_keys, 0);
        assert_eq!(
            t.top_sql(i(), &outs(&["g", "total"])),
            "SELECT \"g\", \"total\" FROM i ORDER BY \"total\" DESC, \"g\" LIMIT 10 OFFSET 2"
        );
        assert_eq!(
            t.index_sql("i", &outs(&["g", "total"])),
            "CREATE INDEX ON i (\"total\" DESC, \"g\")"
        );
    }

    #[test]
    fn expressions_become_hidden_key_columns() {
        let t = ok(
            "SELECT a FROM t ORDER BY b NULLS FIRST, lower(c) DESC, b FETCH FIRST 3 ROWS WITH TIES",
            &["a"],
        );
        assert_eq!(
            t.inner,
            "SELECT a, b AS __pgt_k1, lower(c) AS __pgt_k2 FROM t"
        );
        assert_eq!(t.hidden_keys, 2);
        assert_eq!(
            t.top_sql(i(), &outs(&["a"])),
            "SELECT \"a\" FROM i ORDER BY \"__pgt_k1\" NULLS FIRST, \"__pgt_k2\" DESC, \"__pgt_k1\" FETCH FIRST 3 ROWS WITH TIES"
        );
    }

    #[test]
    fn quoted_and_unquoted_names() {
        let t = ok(
            "SELECT x AS \"Big\" FROM t ORDER BY \"Big\" LIMIT 1",
            &["Big"],
        );
        assert_eq!(t.hidden_keys, 0);
        // Unquoted folds to lower case: `Big` is not the output "Big", it is an input column.
        let t = ok(
            "SELECT x AS \"Big\", big FROM t ORDER BY Big LIMIT 1",
            &["Big", "big"],
        );
        assert_eq!(
            t.top_sql(i(), &outs(&["Big", "big"])),
            "SELECT \"Big\", \"big\" FROM i ORDER BY \"big\" LIMIT 1"
        );
    }

    #[test]
    fn refused() {
        for (sql, why) in [
            ("SELECT a FROM t LIMIT 3", "without ORDER BY"),
            (
                "SELECT a FROM t ORDER BY a LIMIT (SELECT 1)",
                "not a constant",
            ),
            ("SELECT a FROM t ORDER BY a OFFSET $1", "not a constant"),
            ("SELECT a FROM t ORDER BY 2 LIMIT 1", "position 2"),
            (
                "SELECT a FROM t UNION SELECT b FROM u ORDER BY lower(a) LIMIT 1",
                "set operation",
            ),
            (
                "SELECT DISTINCT a FROM t ORDER BY a + 1 LIMIT 1",
                "DISTINCT",
            ),
            ("SELECT a FROM t ORDER BY (a, b) LIMIT 1", "row value"),
            ("SELECT a FROM t ORDER BY ROW(a, b) LIMIT 1", "row value"),
        ] {
            let e = split(sql, &outs(&["a"])).expect("TopK").expect_err(sql);
            assert!(e.contains(why), "{sql}: {e}");
        }
    }

    #[test]
    fn offset_only_and_limit_all() {
        let t = ok("SELECT a FROM t ORDER BY a OFFSET 5", &["a"]);
        assert_eq!(
            t.top_sql(i(), &outs(&["a"])),
            "SELECT \"a\" FROM i ORDER BY \"a\" OFFSET 5"
        );
        let t = ok("SELECT a FROM t ORDER BY a LIMIT NULL", &["a"]);
        assert_eq!(
            t.top_sql(i(), &outs(&["a"])),
            "SELECT \"a\" FROM i ORDER BY \"a\" LIMIT NULL"
        );
    }
}
