//! Name scopes for [`super`]: which FROM clause a column reference belongs to, and whether a
//! subquery reads a column of an enclosing query (is correlated).

use super::{fold, item_expr, item_name, table_name, Catalog};
use sqlparser::ast::{
    Expr, GroupByExpr, JoinConstraint, Query, SelectItem, SetExpr, TableFactor, TableWithJoins,
};
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// The names one FROM clause provides: its aliases (or table names) and its column names.
#[derive(Debug, Default, Clone)]
pub(super) struct Scope {
    pub(super) aliases: BTreeSet<String>,
    pub(super) columns: BTreeSet<String>,
}

pub(super) fn factors(twj: &TableWithJoins) -> Vec<&TableFactor> {
    let mut out = vec![&twj.relation];
    out.extend(twj.joins.iter().map(|j| &j.relation));
    out
}

/// The [`Scope`] of `from`; `None` when a table's columns are unknown or a subquery's outputs
/// are not all named.
pub(super) fn scope_of(from: &[TableWithJoins], cat: &dyn Catalog) -> Option<Scope> {
    let mut scope = Scope::default();
    for f in from.iter().flat_map(factors) {
        match f {
            TableFactor::Table { name, alias, .. } => {
                scope.aliases.insert(match alias {
                    Some(a) => fold(&a.name),
                    None => table_name(name),
                });
                scope.columns.extend(cat.columns(&name.to_string())?);
            }
            TableFactor::Derived {
                subquery,
                alias: Some(a),
                lateral: false,
            } => {
                scope.aliases.insert(fold(&a.name));
                if !a.columns.is_empty() {
                    scope
                        .columns
                        .extend(a.columns.iter().map(|c| fold(&c.name)));
                } else {
                    let SetExpr::Select(b) = subquery.body.as_ref() else {
                        return None;
                    };
                    for item in &b.projection {
                        match item {
                            // `*`: exactly the columns its own FROM provides.
                            SelectItem::Wildcard(_) => {
                                scope.columns.extend(scope_of(&b.from, cat)?.columns)
                            }
                            _ => {
                                scope.columns.insert(item_name(item)?);
                            }
                        }
                    }
                }
            }
            _ => return None,
        }
    }
    Some(scope)
}

/// Whether an expression reads names of `scope` (inner) and names outside it (outer); `None`
/// when it has a subquery.
pub(super) fn sides(e: &Expr, scope: &Scope) -> Option<(bool, bool)> {
    let (mut inner, mut outer) = (false, false);
    let r = sqlparser::ast::visit_expressions(e, |x| {
        match x {
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                return ControlFlow::Break(())
            }
            Expr::Identifier(i) => {
                if scope.columns.contains(&fold(i)) {
                    inner = true;
                } else {
                    outer = true;
                }
            }
            Expr::CompoundIdentifier(p) if p.len() >= 2 => {
                if scope.aliases.contains(&fold(&p[p.len() - 2])) {
                    inner = true;
                } else {
                    outer = true;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    (!r.is_break()).then_some((inner, outer))
}

/// `e` with its subqueries taken out (each replaced by NULL; `x IN (...)` by `x`), and them.
pub(super) fn strip_subqueries(e: &Expr) -> (Expr, Vec<Query>) {
    let found = std::cell::RefCell::new(Vec::new());
    let stripped = crate::ivm::expr::substitute(e, &|x: &Expr| match x {
        Expr::Subquery(q) | Expr::Exists { subquery: q, .. } => {
            found.borrow_mut().push((**q).clone());
            Some(Expr::Value(sqlparser::ast::Value::Null.with_empty_span()))
        }
        Expr::InSubquery { expr, subquery, .. } => {
            found.borrow_mut().push((**subquery).clone());
            Some((**expr).clone())
        }
        _ => None,
    });
    (stripped, found.into_inner())
}

/// Whether query `q` reads a column that none of the FROM clauses inside it (nor `stack`, the
/// enclosing ones inside the subquery being checked) provides: a reference to an outer query.
/// `None` when that cannot be told.
pub(super) fn reads_outside(q: &Query, cat: &dyn Catalog, stack: &mut Vec<Scope>) -> Option<bool> {
    if q.with.is_some() {
        return None;
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let mut outside = false;
    for f in sel.from.iter().flat_map(factors) {
        match f {
            TableFactor::Derived {
                subquery,
                lateral: false,
                ..
            } => outside |= reads_outside(subquery, cat, stack)?,
            TableFactor::Table { args: None, .. } => {}
            _ => return None,
        }
    }
    stack.push(scope_of(&sel.from, cat)?);
    let mut exprs: Vec<Expr> = sel
        .projection
        .iter()
        .filter_map(item_expr)
        .cloned()
        .collect();
    exprs.extend(sel.selection.clone());
    exprs.extend(sel.having.clone());
    if let GroupByExpr::Expressions(g, _) = &sel.group_by {
        exprs.extend(g.iter().cloned());
    }
    for twj in &sel.from {
        for j in &twj.joins {
            if let Some(JoinConstraint::On(e)) = join_constraint(&j.join_operator) {
                exprs.push(e.clone());
            }
        }
    }
    let mut result = Some(outside);
    'exprs: for e in exprs {
        let (stripped, subs) = strip_subqueries(&e);
        let unresolved = sqlparser::ast::visit_expressions(&stripped, |x: &Expr| {
            let known = match x {
                Expr::Identifier(i) => stack.iter().any(|s| s.columns.contains(&fold(i))),
                Expr::CompoundIdentifier(p) if p.len() >= 2 => {
                    let a = fold(&p[p.len() - 2]);
                    stack.iter().any(|s| s.aliases.contains(&a))
                }
                _ => true,
            };
            if known {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        })
        .is_break();
        if unresolved {
            result = Some(true);
        }
        for sq in subs {
            match reads_outside(&sq, cat, stack) {
                Some(r) => result = result.map(|o| o || r),
                None => {
                    result = None;
                    break 'exprs;
                }
            }
        }
    }
    stack.pop();
    result
}

pub(super) fn join_constraint(op: &sqlparser::ast::JoinOperator) -> Option<&JoinConstraint> {
    use sqlparser::ast::JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c) => Some(c),
        _ => None,
    }
}
