//! `*` in a defining query. PostgreSQL expands `SELECT *` (and `t.*`) into the columns the
//! tables have when a view is created, so a column added later is not part of the view. A
//! stream table does the same: a query with a `*` in a select list that makes its output is
//! stored and planned as PostgreSQL prints it back (every column named).

use sqlparser::ast::{Query, SelectItem, SetExpr, Statement, TableFactor, TableWithJoins};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Whether a select list that makes the query's output has a `*`: the query's own, a set
/// operation's branches, WITH queries and subqueries in FROM (their columns can reach the
/// output), but not subqueries in expressions (`EXISTS (SELECT * ...)` returns no columns).
fn query_selects_star(q: &Query) -> bool {
    q.with
        .as_ref()
        .is_some_and(|w| w.cte_tables.iter().any(|c| query_selects_star(&c.query)))
        || body_selects_star(&q.body)
}

fn body_selects_star(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(s) => {
            s.projection.iter().any(|i| {
                matches!(
                    i,
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                )
            }) || s.from.iter().any(from_selects_star)
        }
        SetExpr::SetOperation { left, right, .. } => {
            body_selects_star(left) || body_selects_star(right)
        }
        SetExpr::Query(q) => query_selects_star(q),
        _ => false,
    }
}

fn from_selects_star(t: &TableWithJoins) -> bool {
    factor_selects_star(&t.relation) || t.joins.iter().any(|j| factor_selects_star(&j.relation))
}

fn factor_selects_star(f: &TableFactor) -> bool {
    match f {
        TableFactor::Derived { subquery, .. } => query_selects_star(subquery),
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => from_selects_star(table_with_joins),
        _ => false,
    }
}

/// Whether `sql` selects `*` or `t.*` in a select list that makes its output (its own, a set
/// operation's branches, WITH queries, subqueries in FROM). A query this parser cannot read
/// counts as selecting `*` when it has a `*` that is not `count(*)`: expanding a query that
/// did not need it changes only how it is written.
pub fn selects_wildcard(sql: &str) -> bool {
    match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(stmts) => stmts.iter().any(|s| match s {
            Statement::Query(q) => query_selects_star(q),
            _ => false,
        }),
        Err(_) => sql.replace("(*)", "").contains('*'),
    }
}

#[cfg(test)]
mod tests {
    use super::selects_wildcard;

    #[test]
    fn finds_stars_in_every_select_list() {
        for sql in [
            "SELECT * FROM t",
            "SELECT t.* FROM t",
            "SELECT a FROM (SELECT * FROM t) s",
            "SELECT a FROM (SELECT x.a FROM (SELECT * FROM t) x JOIN u ON true) s",
            "WITH w AS (SELECT * FROM t) SELECT a FROM w",
            "SELECT a FROM t UNION ALL SELECT * FROM u",
        ] {
            assert!(selects_wildcard(sql), "{sql}");
        }
    }

    #[test]
    fn count_star_and_arithmetic_are_not_stars() {
        for sql in [
            "SELECT a, count(*) FROM t GROUP BY a",
            "SELECT a * 2 AS b FROM t",
            "SELECT a FROM t WHERE b * c > 1",
            // A subquery in an expression returns no columns to the output.
            "SELECT a FROM t WHERE EXISTS (SELECT * FROM u WHERE u.a = t.a)",
            "SELECT a FROM t WHERE NOT EXISTS (SELECT * FROM u WHERE u.a = t.a)",
        ] {
            assert!(!selects_wildcard(sql), "{sql}");
        }
    }
}
