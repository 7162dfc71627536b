//! `*` in a defining query. PostgreSQL expands `SELECT *` (and `t.*`) into the columns the
//! tables have when a view is created, so a column added later is not part of the view. A
//! stream table does the same: a query with a `*` in any select list is stored and planned as
//! PostgreSQL prints it back (every column named).

use sqlparser::ast::{Query, SelectItem, SetExpr, Statement, Visit, Visitor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

struct Star;

impl Visitor for Star {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if selects_star(&q.body) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

fn selects_star(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(s) => s.projection.iter().any(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        }),
        SetExpr::SetOperation { left, right, .. } => selects_star(left) || selects_star(right),
        SetExpr::Query(q) => selects_star(&q.body),
        _ => false,
    }
}

/// Whether `sql` selects `*` or `t.*` anywhere (subqueries, WITH queries and set operations
/// included). A query this parser cannot read counts as selecting `*` when it has a `*` that is
/// not `count(*)`: expanding a query that did not need it changes only how it is written.
pub fn selects_wildcard(sql: &str) -> bool {
    match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(stmts) => stmts
            .iter()
            .any(|s: &Statement| s.visit(&mut Star).is_break()),
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
            "SELECT a FROM t WHERE EXISTS (SELECT * FROM u WHERE u.a = t.a)",
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
        ] {
            assert!(!selects_wildcard(sql), "{sql}");
        }
    }
}
