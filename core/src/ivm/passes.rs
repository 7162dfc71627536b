//! The rewrites planning applies to a defining query before the delta rules, as named passes,
//! each checked when it is done.
//!
//! | pass | what it does | module |
//! |---|---|---|
//! | [`Pass::Inline`] | WITH queries read in FROM and subqueries in FROM merged into their readers | [`super::inline`] |
//! | [`Pass::Nest`] | subqueries the engine cannot maintain in place moved into internal stream tables | [`super::nest`] |
//!
//! Every pass maps a query to an equivalent query. [`checked`] runs one and validates its
//! result before the next pass or the delta rules read it:
//! - it is one SELECT statement that reads back (rendered, parsed, rendered again) to the same
//!   text: a rewrite that built a tree the SQL grammar cannot express fails here, not as a
//!   syntax error in a refresh;
//! - its output columns are the query's: the same count, and the same name wherever both
//!   versions name the column (an expression without alias is left to PostgreSQL's naming).
//!
//! A failed check is reported as the construct the query uses ([`Unsupported`]), naming the
//! pass, so AUTO refreshes the query FULL (exact) and DIFFERENTIAL refuses it: a defect in a
//! rewrite can cost speed, never a wrong row.

use super::parse::Unsupported;
use crate::ivm::fold;
use sqlparser::ast::{Expr, Query, SelectItem, SetExpr, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// A rewrite of the defining query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// [`super::inline::inline`].
    Inline,
    /// [`super::nest::nest`].
    Nest,
}

impl Pass {
    pub fn name(self) -> &'static str {
        match self {
            Pass::Inline => "inline",
            Pass::Nest => "nest",
        }
    }
}

/// What a query's output column is called, when its text says (`None`: an expression without
/// alias, or `*`, which the check leaves alone).
fn output_names(q: &Query) -> Option<Vec<Option<String>>> {
    let mut body = q.body.as_ref();
    // A set operation is named by its first branch.
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            _ => break,
        }
    }
    let SetExpr::Select(s) = body else {
        return None;
    };
    let mut names = Vec::new();
    for item in &s.projection {
        names.push(match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(fold(alias)),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(fold(i)),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(fold),
            SelectItem::UnnamedExpr(_) => None,
            // `*` expands to columns the text does not name: no check of this list.
            _ => return None,
        });
    }
    Some(names)
}

/// Checks `after`, the result of `pass` over `before`, as the module doc says.
pub fn validate(pass: Pass, before: &Query, after: &Query) -> Result<(), Unsupported> {
    let fail = |what: String| -> Result<(), Unsupported> {
        Err(Unsupported::new(format!(
            "a form the {} rewrite cannot keep exact ({what})",
            pass.name()
        ))
        .hint(
            "This is a defect in pg_trickle's planner; please report the query. \
             refresh_mode => 'AUTO' or 'FULL' maintains it exactly meanwhile.",
        ))
    };
    let text = after.to_string();
    let again = match Parser::parse_sql(&PostgreSqlDialect {}, &text) {
        Ok(mut stmts) if stmts.len() == 1 => match stmts.pop() {
            Some(Statement::Query(q)) => q.to_string(),
            _ => return fail("not a query".into()),
        },
        Ok(_) => return fail("not one statement".into()),
        Err(e) => return fail(format!("does not read back: {e}")),
    };
    if again != text {
        return fail("reads back as another query".into());
    }
    if let (Some(b), Some(a)) = (output_names(before), output_names(after)) {
        if a.len() != b.len() {
            return fail(format!("{} output columns instead of {}", a.len(), b.len()));
        }
        for (x, y) in b.iter().zip(&a) {
            if let (Some(x), Some(y)) = (x, y) {
                if x != y {
                    return fail(format!("output column \"{x}\" renamed \"{y}\""));
                }
            }
        }
    }
    Ok(())
}

/// Runs `pass` (`rewrite`) over `q` and validates its result.
pub fn checked(
    pass: Pass,
    q: &mut Query,
    rewrite: impl FnOnce(&mut Query) -> Result<(), Unsupported>,
) -> Result<(), Unsupported> {
    let before = q.clone();
    rewrite(q)?;
    validate(pass, &before, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sql: &str) -> Query {
        match Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().pop() {
            Some(Statement::Query(q)) => *q,
            _ => panic!("{sql}"),
        }
    }

    #[test]
    fn an_equivalent_rewrite_passes() {
        let before = query("WITH w AS (SELECT a, b FROM t) SELECT a, b AS bee, a + 1 FROM w");
        let after = query("SELECT w.a, w.b AS bee, w.a + 1 AS x FROM (SELECT a, b FROM t) AS w");
        assert_eq!(validate(Pass::Inline, &before, &after), Ok(()));
    }

    #[test]
    fn a_renamed_or_lost_column_fails_naming_the_pass() {
        let before = query("SELECT a, b FROM t");
        let e = validate(Pass::Nest, &before, &query("SELECT a AS c, b FROM t")).unwrap_err();
        assert!(e.contains("nest rewrite"), "{e}");
        assert!(e.contains("\"a\" renamed \"c\""), "{e}");
        let e = validate(Pass::Inline, &before, &query("SELECT a FROM t")).unwrap_err();
        assert!(e.contains("1 output columns instead of 2"), "{e}");
    }

    #[test]
    fn names_fold_as_postgresql_folds_them() {
        let before = query("SELECT A, \"B\" FROM t");
        assert_eq!(
            validate(
                Pass::Inline,
                &before,
                &query("SELECT x.a, x.\"B\" FROM t AS x")
            ),
            Ok(())
        );
        assert!(validate(Pass::Inline, &before, &query("SELECT x.a, x.b FROM t AS x")).is_err());
    }

    #[test]
    fn a_tree_the_grammar_cannot_express_fails() {
        let before = query("SELECT a FROM t");
        let mut after = before.clone();
        // An empty select list renders as `SELECT FROM t`, which reads back as something else.
        if let SetExpr::Select(s) = after.body.as_mut() {
            s.projection.clear();
        }
        assert!(validate(Pass::Inline, &before, &after).is_err());
    }

    #[test]
    fn checked_runs_the_pass_then_the_check() {
        let mut q = query("SELECT a FROM t");
        let r = checked(Pass::Inline, &mut q, |q| {
            if let SetExpr::Select(s) = q.body.as_mut() {
                s.projection
                    .push(SelectItem::UnnamedExpr(Expr::Identifier("b".into())));
            }
            Ok(())
        });
        assert!(r.is_err());
        let mut q = query("SELECT a FROM t");
        assert_eq!(checked(Pass::Inline, &mut q, |_| Ok(())), Ok(()));
    }
}
