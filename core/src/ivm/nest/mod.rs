//! Nesting: a subquery the engine cannot maintain inside its query is maintained as a stream
//! table of its own (an *internal* stream table, refreshed with the query, first), which the
//! query then reads as a source.
//!
//! Rewrites, applied to a query the engine refused (so a query it maintains keeps its plan):
//! - **Views and WITH queries** read in FROM are replaced by their definitions (a subquery in
//!   FROM under the same name), views over views too.
//! - **A subquery in HAVING**: the grouped query becomes an internal table G (its select list,
//!   plus each aggregate call of HAVING as a hidden output `__pgt_h<i>`), and the query becomes
//!   `SELECT outputs FROM G WHERE having'`, HAVING's aggregate calls replaced by G's columns.
//! - **A subquery in FROM** (not LATERAL) that is not a plain table: its body becomes an internal
//!   table D, read under the subquery's alias (column aliases become the body's output names).
//! - **A scalar subquery whose FROM is not one table**, `(SELECT e FROM from WHERE local AND
//!   i1 = o1 AND ...)` with `e` an aggregate expression, correlated (if at all) by equalities
//!   between an expression of its own tables `i` and one of the outer query `o`: its body grouped
//!   by the inner sides becomes an internal table S (`__pgt_k<j>` = i_j, `__pgt_v` = e), and the
//!   subquery becomes `(SELECT min(s.__pgt_v) FROM S s WHERE s.__pgt_k1 = o1 AND ...)`, a lookup
//!   of one table (see [`super::scalar`]).
//!
//! **Delta rule.** None of its own: each rewrite is an equivalence. D and G are the subquery and
//! the grouped query themselves. S has exactly one row per key with rows, so `min` over the
//! lookup returns that row's value, and NULL for a key without rows, which is the subquery's
//! value over no rows when `e` over no rows is NULL ([`Child::empty_check`] asks PostgreSQL;
//! `count` is not, and refuses). An uncorrelated S has no GROUP BY: always exactly one row.
//! Each internal table is maintained by the rules of its own plan; the query's delta reads their
//! changes like any stream table source's. The refresh of the query refreshes them first, in the
//! same transaction and snapshot, so the query reads them as of the same data.

use super::expr::{contains_aggregate, is_aggregate};
use crate::ident::quote_ident;
use crate::ivm::fold;
use sqlparser::ast::{
    BinaryOperator, Distinct, Expr, GroupByExpr, Ident, ObjectName, ObjectNamePart, OrderByKind,
    Query, Select, SelectItem, SetExpr, Statement, TableAlias, TableFactor, TableWithJoins, Visit,
    VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;

mod scope;
use scope::{reads_outside, scope_of, sides, strip_subqueries};
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// What the rewrite needs to know of the database.
pub trait Catalog {
    /// The definition (a SELECT) of the view `name` resolves to, when it names a view.
    fn view(&self, name: &str) -> Option<String>;
    /// The column names of the table (or view) `name` resolves to.
    fn columns(&self, name: &str) -> Option<Vec<String>>;
    /// Whether column `column` of table `table` is NOT NULL.
    fn not_null(&self, table: &str, column: &str) -> bool;
}

/// An internal stream table to create before the query is planned.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    /// Its storage, quoted (as given by the caller's namer).
    pub table: String,
    /// Its defining query.
    pub sql: String,
    /// For a correlated scalar subquery: a statement returning whether its expression over no
    /// rows is NULL (the rewrite is exact only then).
    pub empty_check: Option<String>,
    /// Output columns the query looks its rows up by (to index, in this order).
    pub index: Vec<String>,
}

/// The query rewritten over its internal tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Nested {
    pub query: String,
    /// In creation order (a child may read an earlier one).
    pub children: Vec<Child>,
    /// The views whose definitions were inlined (as named in the query).
    pub views: Vec<String>,
}

/// How deep views over views are inlined.
const MAX_VIEW_DEPTH: usize = 16;

fn parse_query(sql: &str) -> Option<Query> {
    match Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?.pop()? {
        Statement::Query(q) => Some(*q),
        _ => None,
    }
}

fn table_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .map(fold)
        .unwrap_or_default()
}

/// Replaces, in every FROM of `q` (subqueries included), a table named like a WITH query in
/// `ctes` or a view of `cat` by its definition. Returns the views inlined.
fn inline_relations(
    q: &mut Query,
    ctes: &[(String, Query)],
    cat: &dyn Catalog,
    views: &mut Vec<String>,
    depth: usize,
) -> bool {
    struct V<'a> {
        ctes: &'a [(String, Query)],
        cat: &'a dyn Catalog,
        views: &'a mut Vec<String>,
        depth: usize,
        ok: bool,
    }
    impl VisitorMut for V<'_> {
        type Break = ();
        // After the factor's children: an inlined body (already inlined in its own scope) is not
        // visited again, so its tables are never matched against these WITH queries.
        fn post_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name, alias, args, ..
            } = f
            else {
                return ControlFlow::Continue(());
            };
            if args.is_some() {
                return ControlFlow::Continue(());
            }
            let text = name.to_string();
            let short = table_name(name);
            let body = if name.0.len() == 1 {
                self.ctes
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == short)
                    .map(|(_, b)| b.clone())
            } else {
                None
            };
            let body = match body {
                Some(b) => b,
                None => match self.cat.view(&text) {
                    Some(def) => {
                        if self.depth >= MAX_VIEW_DEPTH {
                            self.ok = false;
                            return ControlFlow::Break(());
                        }
                        let Some(mut b) = parse_query(&def) else {
                            self.ok = false;
                            return ControlFlow::Break(());
                        };
                        if !inline_relations(&mut b, &[], self.cat, self.views, self.depth + 1) {
                            self.ok = false;
                            return ControlFlow::Break(());
                        }
                        if !self.views.contains(&text) {
                            self.views.push(text.clone());
                        }
                        b
                    }
                    None => return ControlFlow::Continue(()),
                },
            };
            let alias = alias.clone().unwrap_or(TableAlias {
                name: Ident::with_quote('"', &short),
                columns: Vec::new(),
            });
            *f = TableFactor::Derived {
                lateral: false,
                subquery: Box::new(body),
                alias: Some(alias),
            };
            ControlFlow::Continue(())
        }
    }
    let mut v = V {
        ctes,
        cat,
        views,
        depth,
        ok: true,
    };
    let _ = q.visit(&mut v);
    v.ok
}

/// The output name of a select item, as PostgreSQL names the column.
fn item_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(fold(alias)),
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(fold(i)),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => p.last().map(fold),
        _ => None,
    }
}

fn item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => Some(expr),
        _ => None,
    }
}

fn has_subquery(e: &Expr) -> bool {
    sqlparser::ast::visit_expressions(e, |x| match x {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn aliased(e: Expr, name: &str) -> SelectItem {
    SelectItem::ExprWithAlias {
        expr: e,
        alias: Ident::with_quote('"', name),
    }
}

fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                } | Expr::Nested(_)
            ) =>
        {
            conjuncts(inner, out)
        }
        other => out.push(other.clone()),
    }
}

/// The conjunction of `terms`, each an operand of AND as printed (an OR keeps its parentheses:
/// the AST prints operators without them).
fn and_all(terms: Vec<Expr>) -> Option<Expr> {
    terms
        .into_iter()
        .map(|t| match t {
            Expr::BinaryOp {
                op: BinaryOperator::Or,
                ..
            } => Expr::Nested(Box::new(t)),
            t => t,
        })
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        })
}

/// A subquery body `SELECT e FROM ... [WHERE ...]` of one output and no WITH, ORDER BY or LIMIT.
fn single_output(q: &Query) -> Option<(&Select, &Expr)> {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    if sel.projection.len() != 1 || sel.from.is_empty() {
        return None;
    }
    Some((sel, item_expr(&sel.projection[0])?))
}

/// Whether every key `(inner, outer)` of an EXISTS over `table` pairs a column of it with the
/// same column, NOT NULL, of one FROM item of the outer query (`outer_from`) that is `table`
/// too (`alias.column` on both sides, or a bare column inside).
fn self_correlated(
    table: &ObjectName,
    keys: &[(Expr, Expr)],
    outer_from: &[TableWithJoins],
    cat: &dyn Catalog,
) -> bool {
    let column = |e: &Expr| -> Option<(Option<String>, String)> {
        match e {
            Expr::Identifier(i) => Some((None, fold(i))),
            Expr::CompoundIdentifier(p) if p.len() == 2 => Some((Some(fold(&p[0])), fold(&p[1]))),
            _ => None,
        }
    };
    let mut outer_alias: Option<String> = None;
    for (i, o) in keys {
        let (Some((_, ic)), Some((Some(oa), oc))) = (column(i), column(o)) else {
            return false;
        };
        if ic != oc || outer_alias.as_ref().is_some_and(|a| *a != oa) {
            return false;
        }
        outer_alias = Some(oa);
    }
    let Some(alias) = outer_alias else {
        return false;
    };
    // A plain FROM item (not a side of an explicit join, which may be NULL-extended).
    let same = outer_from
        .iter()
        .filter(|t| t.joins.is_empty())
        .map(|t| &t.relation)
        .any(|f| match f {
            TableFactor::Table { name, alias: a, .. } => {
                let n = a
                    .as_ref()
                    .map(|a| fold(&a.name))
                    .unwrap_or_else(|| table_name(name));
                n == alias && name.to_string() == table.to_string()
            }
            _ => false,
        });
    same && keys
        .iter()
        .all(|(i, _)| column(i).is_some_and(|(_, c)| cat.not_null(&table.to_string(), &c)))
}

/// The inner sides of `keys` as outputs `__pgt_k1`, ..., `__pgt_k<n>`.
fn key_items(keys: &[(Expr, Expr)]) -> Vec<SelectItem> {
    keys.iter()
        .enumerate()
        .map(|(i, (inner, _))| aliased(inner.clone(), &format!("__pgt_k{}", i + 1)))
        .collect()
}

/// `__pgt_k1`, ..., `__pgt_k<n>`.
fn key_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("__pgt_k{i}")).collect()
}

/// The output names of a grouped body's GROUP BY columns (each a column it outputs as is),
/// which a query joining it most likely joins by; empty when any is not.
fn group_key_outputs(body: &Query) -> Vec<String> {
    let SetExpr::Select(sel) = body.body.as_ref() else {
        return Vec::new();
    };
    let GroupByExpr::Expressions(keys, _) = &sel.group_by else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for k in keys {
        let found =
            sel.projection
                .iter()
                .find_map(|item| match (item_expr(item), item_name(item)) {
                    (Some(e), Some(n)) if e == k => Some(n),
                    _ => None,
                });
        match found {
            Some(n) => out.push(n),
            None => return Vec::new(),
        }
    }
    out
}

fn no_group_by(sel: &Select) -> bool {
    matches!(&sel.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty())
}

/// An EXISTS subquery rewritten (see [`Rewriter::exists`]).
enum Exists {
    /// Join `table AS alias` in FROM, with these conditions.
    Joined {
        table: String,
        alias: String,
        conds: Vec<Expr>,
    },
    /// Replace it by this condition.
    Test(Box<Expr>),
}

struct Rewriter<'a> {
    cat: &'a dyn Catalog,
    namer: &'a mut dyn FnMut(&str) -> (String, bool),
    children: Vec<Child>,
    /// Subqueries rewritten (some may read a table made before).
    rewrites: usize,
}

impl Rewriter<'_> {
    fn child(&mut self, sql: String, empty_check: Option<String>, index: Vec<String>) -> String {
        let (table, new) = (self.namer)(&sql);
        self.rewrites += 1;
        if new && !self.children.iter().any(|c| c.table == table) {
            self.children.push(Child {
                table: table.clone(),
                sql,
                empty_check,
                index,
            });
        }
        table
    }

    /// A grouped query whose HAVING has a subquery: the grouped part becomes an internal table.
    fn split_having(&mut self, q: &mut Query) -> Option<()> {
        let SetExpr::Select(sel) = q.body.as_mut() else {
            return None;
        };
        let having = sel.having.clone()?;
        if !has_subquery(&having) || sel.distinct.is_some() {
            return None;
        }
        // Without GROUP BY, HAVING makes the query one group (at most one row): G must be an
        // aggregate query too.
        let top_level_aggregate = |e: &Expr| contains_aggregate(&strip_subqueries(e).0);
        if no_group_by(sel)
            && !sel
                .projection
                .iter()
                .filter_map(item_expr)
                .any(top_level_aggregate)
            && !top_level_aggregate(&having)
        {
            return None;
        }
        // HAVING's subqueries move to a query over G's columns (the outputs): only ones that
        // read nothing of the grouped query keep their meaning.
        for sq in strip_subqueries(&having).1 {
            if reads_outside(&sq, self.cat, &mut Vec::new()) != Some(false) {
                return None;
            }
        }
        let mut names = Vec::new();
        // Outputs that are a column under its own name: HAVING reads input columns, so only
        // those may stand for a column HAVING reads.
        let mut plain = Vec::new();
        for item in &sel.projection {
            let n = item_name(item)?;
            if names.contains(&n) || n.starts_with("__pgt_") {
                return None;
            }
            if matches!(item_expr(item), Some(Expr::Identifier(i)) if fold(i) == n) {
                plain.push(n.clone());
            }
            names.push(n);
        }
        // HAVING's aggregate calls become hidden outputs; any other column it reads must be an
        // output of the query that is that column.
        let mut calls: Vec<Expr> = Vec::new();
        // Not inside HAVING's subqueries: their aggregates are theirs.
        struct Calls<'a>(&'a mut Vec<Expr>, usize);
        impl VisitorMut for Calls<'_> {
            type Break = ();
            fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
                self.1 += 1;
                ControlFlow::Continue(())
            }
            fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
                self.1 -= 1;
                ControlFlow::Continue(())
            }
            fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                if self.1 > 0 {
                    return ControlFlow::Continue(());
                }
                if let Expr::Function(f) = e {
                    if is_aggregate(f) {
                        let i = match self.0.iter().position(|c| c == e) {
                            Some(i) => i,
                            None => {
                                self.0.push(e.clone());
                                self.0.len() - 1
                            }
                        };
                        *e = Expr::Identifier(Ident::with_quote('"', format!("__pgt_h{}", i + 1)));
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut outer_having = having;
        let _ = VisitMut::visit(&mut outer_having, &mut Calls(&mut calls, 0));
        // Subqueries are looked into by the scalar rewrite, not here.
        let outside = super::expr::substitute(&outer_having, &|x: &Expr| match x {
            Expr::Subquery(_) | Expr::Exists { .. } => {
                Some(Expr::Value(sqlparser::ast::Value::Null.with_empty_span()))
            }
            Expr::InSubquery { expr, .. } => Some((**expr).clone()),
            _ => None,
        });
        let mut names_ok = true;
        let _ = sqlparser::ast::visit_expressions(&outside, |x: &Expr| {
            match x {
                Expr::Identifier(i)
                    if !i.value.starts_with("__pgt_h") && !plain.contains(&fold(i)) =>
                {
                    names_ok = false;
                }
                Expr::CompoundIdentifier(_) => names_ok = false,
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        // Column references inside HAVING's subqueries are theirs (or correlated to the grouped
        // query, which the rewrite cannot keep): only uncorrelated ones are accepted below.
        if !names_ok {
            return None;
        }
        let mut inner = (**sel).clone();
        inner.having = None;
        for (i, c) in calls.iter().enumerate() {
            inner
                .projection
                .push(aliased(c.clone(), &format!("__pgt_h{}", i + 1)));
        }
        let inner_q = Query {
            with: q.with.clone(),
            body: Box::new(SetExpr::Select(Box::new(inner))),
            order_by: None,
            limit_clause: None,
            fetch: None,
            locks: Vec::new(),
            for_clause: None,
            settings: None,
            format_clause: None,
            pipe_operators: Vec::new(),
        };
        // ORDER BY must name outputs (or positions) to be kept over the internal table.
        if let Some(ob) = &q.order_by {
            if let OrderByKind::Expressions(items) = &ob.kind {
                for o in items {
                    match &o.expr {
                        Expr::Identifier(i) if names.contains(&fold(i)) => {}
                        Expr::Value(_) => {}
                        _ => return None,
                    }
                }
            }
        }
        let table = self.child(inner_q.to_string(), None, Vec::new());
        let list: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
        let outer = format!(
            "SELECT {} FROM {table} AS __pgt_g WHERE {outer_having}",
            list.join(", ")
        );
        let mut new_q = parse_query(&outer)?;
        new_q.order_by = q.order_by.clone();
        new_q.limit_clause = q.limit_clause.clone();
        new_q.fetch = q.fetch.clone();
        *q = new_q;
        Some(())
    }

    /// Subqueries in FROM (not LATERAL) become internal tables.
    fn derived_tables(&mut self, q: &mut Query) -> bool {
        let SetExpr::Select(sel) = q.body.as_mut() else {
            return true;
        };
        let mut n = 0;
        for twj in sel.from.iter_mut() {
            let mut factors: Vec<&mut TableFactor> = vec![&mut twj.relation];
            factors.extend(twj.joins.iter_mut().map(|j| &mut j.relation));
            for f in factors {
                let TableFactor::Derived {
                    lateral,
                    subquery,
                    alias,
                } = f
                else {
                    continue;
                };
                if *lateral {
                    return false;
                }
                n += 1;
                let mut body = (**subquery).clone();
                let alias_name = alias
                    .as_ref()
                    .map(|a| a.name.clone())
                    .unwrap_or_else(|| Ident::with_quote('"', format!("__pgt_d{n}")));
                if let Some(a) = alias.as_ref().filter(|a| !a.columns.is_empty()) {
                    // Renamed outputs would change what its ORDER BY names.
                    if body.order_by.is_some() {
                        return false;
                    }
                    let SetExpr::Select(bs) = body.body.as_mut() else {
                        return false;
                    };
                    if a.columns.len() > bs.projection.len() {
                        return false;
                    }
                    for (item, col) in bs.projection.iter_mut().zip(&a.columns) {
                        let Some(e) = item_expr(item).cloned() else {
                            return false;
                        };
                        *item = aliased(e, &fold(&col.name));
                    }
                }
                let index = group_key_outputs(&body);
                let table = self.child(body.to_string(), None, index);
                let Some(name) = parse_object_name(&table) else {
                    return false;
                };
                *f = super::inline::plain_table(name, alias_name);
            }
        }
        true
    }

    /// In the query's own WHERE: a conjunct `x IN (SELECT c FROM ...)` whose subquery reads
    /// nothing of the query becomes `x = i.__pgt_i`, with `i` the internal table `SELECT
    /// DISTINCT c AS __pgt_i FROM ...` joined in FROM (one row per value, so no row is
    /// duplicated; NULLs match nothing either way). An uncorrelated scalar subquery that
    /// aggregates without GROUP BY or HAVING (anywhere in WHERE, outside other subqueries)
    /// becomes `x.__pgt_v`, with `x` its internal table, which has exactly one row, joined in FROM.
    fn where_subqueries(&mut self, q: &mut Query) {
        let SetExpr::Select(sel) = q.body.as_mut() else {
            return;
        };
        let Some(w) = sel.selection.take() else {
            return;
        };
        let mut terms = Vec::new();
        conjuncts(&w, &mut terms);
        let mut joined: Vec<(String, String)> = Vec::new();
        let mut out = Vec::new();
        let tests = terms
            .iter()
            .filter(|t| matches!(t, Expr::Exists { .. } | Expr::InSubquery { .. }))
            .count();
        let outer_from = sel.from.clone();
        for t in terms {
            if let Expr::Exists { subquery, negated } = &t {
                match self.exists(subquery, *negated, tests > 1, &outer_from) {
                    Some(Exists::Joined {
                        table,
                        alias,
                        conds,
                    }) => {
                        out.extend(conds);
                        joined.push((table, alias));
                        continue;
                    }
                    Some(Exists::Test(e)) => {
                        out.push(*e);
                        continue;
                    }
                    None => {}
                }
            }
            if let Expr::InSubquery {
                expr,
                subquery,
                negated: false,
            } = &t
            {
                if let Some(table) = self.in_table(subquery) {
                    let alias = format!("__pgt_i{}", self.rewrites);
                    out.push(Expr::BinaryOp {
                        left: expr.clone(),
                        op: BinaryOperator::Eq,
                        right: Box::new(Expr::CompoundIdentifier(vec![
                            Ident::new(&alias),
                            Ident::with_quote('"', "__pgt_i"),
                        ])),
                    });
                    joined.push((table, alias));
                    continue;
                }
            }
            out.push(t);
        }
        struct S<'a, 'b> {
            rw: &'a mut Rewriter<'b>,
            joined: &'a mut Vec<(String, String)>,
            depth: usize,
        }
        impl VisitorMut for S<'_, '_> {
            type Break = ();
            fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
                self.depth += 1;
                ControlFlow::Continue(())
            }
            fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
                self.depth -= 1;
                ControlFlow::Continue(())
            }
            fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                if self.depth > 0 {
                    return ControlFlow::Continue(());
                }
                if let Expr::Subquery(sq) = e {
                    if let Some(table) = self.rw.one_row_table(sq) {
                        let alias = format!("__pgt_x{}", self.rw.rewrites);
                        *e = Expr::CompoundIdentifier(vec![
                            Ident::new(&alias),
                            Ident::with_quote('"', "__pgt_v"),
                        ]);
                        self.joined.push((table, alias));
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut w = and_all(out);
        if let Some(w) = w.as_mut() {
            let _ = VisitMut::visit(
                w,
                &mut S {
                    rw: self,
                    joined: &mut joined,
                    depth: 0,
                },
            );
        }
        let SetExpr::Select(sel) = q.body.as_mut() else {
            return;
        };
        sel.selection = w;
        for (table, alias) in joined {
            if let Some(name) = parse_object_name(&table) {
                sel.from.push(TableWithJoins {
                    relation: super::inline::plain_table(name, Ident::new(alias)),
                    joins: Vec::new(),
                });
            }
        }
    }

    /// `[NOT] EXISTS (SELECT ... FROM t WHERE local AND i1 = o1 AND ... [AND a <> x])`, one table
    /// correlated by equalities (and at most one `<>` between a column of t and an outer
    /// expression), when the query has several EXISTS/IN subqueries or this one has the `<>`:
    /// its internal table E groups t's rows that pass `local` by the inner sides (`__pgt_k<j>`),
    /// with `min(a)`, `max(a)` (`__pgt_mn`, `__pgt_mx`). Some row has `a <> x` exactly when
    /// `mn <> x OR mx <> x` (NULLs of a, and a NULL x, match nothing). EXISTS joins E (one row per
    /// key) in FROM with that condition; NOT EXISTS becomes `coalesce(lookup(mn) = x AND
    /// lookup(mx) = x, true)` (without `<>`: `lookup(count(*)) = 0`), lookups of one table.
    fn exists(
        &mut self,
        sq: &Query,
        negated: bool,
        several: bool,
        outer_from: &[TableWithJoins],
    ) -> Option<Exists> {
        if sq.with.is_some() || sq.order_by.is_some() || sq.limit_clause.is_some() {
            return None;
        }
        let SetExpr::Select(sel) = sq.body.as_ref() else {
            return None;
        };
        if sel.from.len() != 1
            || !sel.from[0].joins.is_empty()
            || !matches!(sel.from[0].relation, TableFactor::Table { .. })
            || !no_group_by(sel)
            || sel.having.is_some()
        {
            return None;
        }
        // A select list with a function call (an aggregate makes one row whatever WHERE
        // keeps; a set-returning function none or several) is not a test of WHERE's rows.
        let calls = |e: &Expr| {
            sqlparser::ast::visit_expressions(e, |x| match x {
                Expr::Function(_) | Expr::Subquery(_) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .is_break()
        };
        if sel.projection.iter().filter_map(item_expr).any(calls) {
            return None;
        }
        let scope = scope_of(&sel.from, self.cat)?;
        let mut local = Vec::new();
        let mut keys: Vec<(Expr, Expr)> = Vec::new();
        let mut differs: Option<(Expr, Expr)> = None;
        let mut terms = Vec::new();
        if let Some(w) = &sel.selection {
            conjuncts(w, &mut terms);
        }
        for t in terms {
            let (_, outer) = sides(&t, &scope)?;
            if !outer {
                local.push(t);
                continue;
            }
            let Expr::BinaryOp { left, op, right } = &t else {
                return None;
            };
            let pair = match (sides(left, &scope)?, sides(right, &scope)?) {
                ((true, false), (false, true)) => (*left.clone(), *right.clone()),
                ((false, true), (true, false)) => (*right.clone(), *left.clone()),
                _ => return None,
            };
            match op {
                BinaryOperator::Eq => keys.push(pair),
                BinaryOperator::NotEq if differs.is_none() => differs = Some(pair),
                _ => return None,
            }
        }
        if keys.is_empty() || (differs.is_none() && !several) {
            return None;
        }
        // NOT EXISTS over the query's own table, correlated by the same NOT NULL columns: every
        // outer row is a row of that table, so its key has a group when E groups all the
        // table's rows (`local` moved into FILTER): E can be joined, as for EXISTS.
        let TableFactor::Table {
            name: inner_table, ..
        } = &sel.from[0].relation
        else {
            return None;
        };
        let total = negated && self_correlated(inner_table, &keys, outer_from, self.cat);
        let mut body = (**sel).clone();
        let mut items = key_items(&keys);
        let filter = match and_all(local.clone()) {
            Some(l) if total => format!(" FILTER (WHERE {l})"),
            _ => String::new(),
        };
        let calls: Vec<(String, &str)> = match &differs {
            Some((a, _)) => vec![
                (format!("min({a}){filter}"), "__pgt_mn"),
                (format!("max({a}){filter}"), "__pgt_mx"),
            ],
            None if total => vec![(format!("count(*){filter}"), "__pgt_n")],
            None => Vec::new(),
        };
        for (call, n) in calls {
            let call = parse_query(&format!("SELECT {call}"))?;
            let SetExpr::Select(c) = *call.body else {
                return None;
            };
            items.push(aliased(item_expr(&c.projection[0])?.clone(), n));
        }
        body.projection = items;
        body.selection = if total { None } else { and_all(local) };
        body.distinct = None;
        body.group_by =
            GroupByExpr::Expressions(keys.iter().map(|(i, _)| i.clone()).collect(), Vec::new());
        let child = Query {
            body: Box::new(SetExpr::Select(Box::new(body))),
            ..sq.clone()
        };
        let table = self.child(child.to_string(), None, key_names(keys.len()));
        let alias = format!("__pgt_e{}", self.rewrites);
        let on = |alias: &str| -> String {
            keys.iter()
                .enumerate()
                .map(|(i, (_, o))| format!("{alias}.\"__pgt_k{}\" = {o}", i + 1))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let text = match (negated, &differs) {
            (true, Some((_, x))) if total => format!(
                "{} AND coalesce({alias}.\"__pgt_mn\" = {x} AND {alias}.\"__pgt_mx\" = {x}, true)",
                on(&alias)
            ),
            (true, None) if total => format!("{} AND {alias}.\"__pgt_n\" = 0", on(&alias)),
            (false, Some((_, x))) => format!(
                "{} AND ({alias}.\"__pgt_mn\" <> {x} OR {alias}.\"__pgt_mx\" <> {x})",
                on(&alias)
            ),
            (false, None) => on(&alias),
            (true, Some((_, x))) => format!(
                "coalesce((SELECT min({alias}.\"__pgt_mn\") FROM {table} AS {alias} WHERE {}) = {x} \
                 AND (SELECT min({alias}b.\"__pgt_mx\") FROM {table} AS {alias}b WHERE {}) = {x}, true)",
                on(&alias),
                on(&format!("{alias}b"))
            ),
            (true, None) => format!(
                "(SELECT count(*) FROM {table} AS {alias} WHERE {}) = 0",
                on(&alias)
            ),
        };
        let q = parse_query(&format!("SELECT {text}"))?;
        let SetExpr::Select(c) = *q.body else {
            return None;
        };
        let e = item_expr(&c.projection[0])?.clone();
        Some(if negated && !total {
            Exists::Test(Box::new(e))
        } else {
            let mut conds = Vec::new();
            conjuncts(&e, &mut conds);
            Exists::Joined {
                table,
                alias,
                conds,
            }
        })
    }

    /// The internal table of an uncorrelated `IN` subquery's distinct values (`__pgt_i`).
    fn in_table(&mut self, sq: &Query) -> Option<String> {
        let (sel, e) = single_output(sq)?;
        if reads_outside(sq, self.cat, &mut Vec::new())? {
            return None;
        }
        let mut body = sel.clone();
        body.projection = vec![aliased(e.clone(), "__pgt_i")];
        body.distinct = Some(Distinct::Distinct);
        let child = Query {
            body: Box::new(SetExpr::Select(Box::new(body))),
            ..sq.clone()
        };
        Some(self.child(child.to_string(), None, vec!["__pgt_i".into()]))
    }

    /// The one-row internal table (`__pgt_v`) of an uncorrelated scalar subquery that aggregates
    /// without GROUP BY or HAVING.
    fn one_row_table(&mut self, sq: &Query) -> Option<String> {
        let (sel, e) = single_output(sq)?;
        if !contains_aggregate(&strip_subqueries(e).0)
            || !no_group_by(sel)
            || sel.having.is_some()
            || sel.distinct.is_some()
            || reads_outside(sq, self.cat, &mut Vec::new())?
        {
            return None;
        }
        let mut body = sel.clone();
        body.projection = vec![aliased(e.clone(), "__pgt_v")];
        let child = Query {
            body: Box::new(SetExpr::Select(Box::new(body))),
            ..sq.clone()
        };
        Some(self.child(child.to_string(), None, Vec::new()))
    }

    /// Scalar subqueries whose FROM is not one table become lookups of internal tables.
    fn scalars(&mut self, q: &mut Query) {
        struct S<'a, 'b>(&'a mut Rewriter<'b>);
        impl VisitorMut for S<'_, '_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                if let Expr::Subquery(sq) = e {
                    if let Some(r) = self.0.scalar(sq) {
                        *e = r;
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let _ = q.visit(&mut S(self));
    }

    fn scalar(&mut self, sq: &Query) -> Option<Expr> {
        if sq.with.is_some()
            || sq.order_by.is_some()
            || sq.limit_clause.is_some()
            || sq.fetch.is_some()
        {
            return None;
        }
        let SetExpr::Select(sel) = sq.body.as_ref() else {
            return None;
        };
        let one_table = sel.from.len() == 1
            && sel.from[0].joins.is_empty()
            && matches!(sel.from[0].relation, TableFactor::Table { .. });
        if one_table
            || sel.from.is_empty()
            || sel.distinct.is_some()
            || sel.having.is_some()
            || sel.projection.len() != 1
            || !matches!(&sel.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty())
        {
            return None;
        }
        let value = item_expr(&sel.projection[0])?.clone();
        if !contains_aggregate(&strip_subqueries(&value).0) {
            return None;
        }
        let scope = scope_of(&sel.from, self.cat)?;
        let sides = |e: &Expr| sides(e, &scope);
        if sides(&value)?.1 {
            return None;
        }
        let mut local = Vec::new();
        let mut keys: Vec<(Expr, Expr)> = Vec::new();
        if let Some(w) = &sel.selection {
            let mut terms = Vec::new();
            conjuncts(w, &mut terms);
            for t in terms {
                let (_, outer) = match sides(&t) {
                    Some(s) => s,
                    // A subquery inside: kept in the body when it reads no outer name.
                    None if has_subquery(&t) => {
                        local.push(t);
                        continue;
                    }
                    None => return None,
                };
                if !outer {
                    local.push(t);
                    continue;
                }
                let Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } = &t
                else {
                    return None;
                };
                match (sides(left)?, sides(right)?) {
                    ((true, false), (false, true)) => keys.push((*left.clone(), *right.clone())),
                    ((false, true), (true, false)) => keys.push((*right.clone(), *left.clone())),
                    _ => return None,
                }
            }
        }
        let mut body = (**sel).clone();
        let mut items = key_items(&keys);
        items.push(aliased(value.clone(), "__pgt_v"));
        body.projection = items;
        body.selection = and_all(local);
        if !keys.is_empty() {
            body.group_by =
                GroupByExpr::Expressions(keys.iter().map(|(i, _)| i.clone()).collect(), Vec::new());
        }
        let from: Vec<String> = sel.from.iter().map(|t| t.to_string()).collect();
        let empty_check = (!keys.is_empty()).then(|| {
            format!(
                "SELECT ({value}) IS NULL FROM {} WHERE false",
                from.join(", ")
            )
        });
        let child_q = Query {
            body: Box::new(SetExpr::Select(Box::new(body))),
            ..sq.clone()
        };
        let table = self.child(child_q.to_string(), empty_check, key_names(keys.len()));
        let alias = format!("__pgt_n{}", self.rewrites);
        let conds: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, (_, o))| format!("{alias}.\"__pgt_k{}\" = {o}", i + 1))
            .collect();
        let sql = format!(
            "SELECT (SELECT min({alias}.\"__pgt_v\") FROM {table} AS {alias}{})",
            if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            }
        );
        let q = parse_query(&sql)?;
        let SetExpr::Select(s) = *q.body else {
            return None;
        };
        item_expr(&s.projection[0]).cloned()
    }
}

fn parse_object_name(quoted: &str) -> Option<ObjectName> {
    let q = parse_query(&format!("SELECT 1 FROM {quoted}"))?;
    let SetExpr::Select(s) = *q.body else {
        return None;
    };
    match s.from.into_iter().next()?.relation {
        TableFactor::Table { name, .. } => Some(name),
        _ => None,
    }
}

/// Rewrites `sql` over internal tables named by `namer` (given a child's defining query: its
/// quoted name, and whether it is a new one; a query met before may be answered with the table
/// already made for it, which is then read twice and made once), or `None` when no rewrite
/// applies (or one that would is not exact: a LATERAL subquery, a correlated subquery in HAVING,
/// a WITH clause below the top level, a recursive WITH).
pub fn nest(
    sql: &str,
    cat: &dyn Catalog,
    namer: &mut dyn FnMut(&str) -> (String, bool),
) -> Option<Nested> {
    let mut q = parse_query(sql)?;
    if !matches!(q.body.as_ref(), SetExpr::Select(_)) {
        return None;
    }
    let original = q.clone();
    // A WITH clause below the top level would shadow names in its own scope: not modelled.
    struct NestedWith(usize, bool);
    impl Visitor for NestedWith {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if self.0 > 0 && q.with.is_some() {
                self.1 = true;
            }
            self.0 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.0 -= 1;
            ControlFlow::Continue(())
        }
    }
    let mut nested_with = NestedWith(0, false);
    let _ = q.visit(&mut nested_with);
    if nested_with.1 {
        return None;
    }
    let mut views = Vec::new();
    if let Some(with) = q.with.take() {
        if with.recursive {
            return None;
        }
        let mut ctes: Vec<(String, Query)> = Vec::new();
        for cte in with.cte_tables {
            if !cte.alias.columns.is_empty() || cte.materialized.is_some() {
                return None;
            }
            let mut body = (*cte.query).clone();
            if !inline_relations(&mut body, &ctes, cat, &mut views, 0) {
                return None;
            }
            ctes.push((fold(&cte.alias.name), body));
        }
        if !inline_relations(&mut q, &ctes, cat, &mut views, 0) {
            return None;
        }
    } else if !inline_relations(&mut q, &[], cat, &mut views, 0) {
        return None;
    }
    let mut rw = Rewriter {
        cat,
        namer,
        children: Vec::new(),
        rewrites: 0,
    };
    let _ = rw.split_having(&mut q);
    if !rw.derived_tables(&mut q) {
        return None;
    }
    rw.where_subqueries(&mut q);
    rw.scalars(&mut q);
    if rw.rewrites == 0 && views.is_empty() {
        return None;
    }
    // A subquery left reading the outer query (a correlated one nothing rewrote) is for the
    // planner to refuse; the rewrite itself never leaves a view or WITH query behind.
    struct Left(bool);
    impl Visitor for Left {
        type Break = ();
        fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
            if matches!(f, TableFactor::Derived { lateral: true, .. }) {
                self.0 = true;
            }
            ControlFlow::Continue(())
        }
    }
    let mut left = Left(false);
    let _ = q.visit(&mut left);
    if left.0 {
        return None;
    }
    // Checked like every pass (see super::passes): a rewrite that fails its check is not used
    // (the query is then planned as written: FULL, or refused in DIFFERENTIAL).
    if super::passes::validate(super::passes::Pass::Nest, &original, &q).is_err() {
        return None;
    }
    Some(Nested {
        query: q.to_string(),
        children: rw.children,
        views,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cat;
    impl Catalog for Cat {
        fn view(&self, name: &str) -> Option<String> {
            match name {
                "rev" => Some(
                    "SELECT l_suppkey AS supplier_no, sum(l_price) AS total FROM lineitem GROUP BY l_suppkey"
                        .into(),
                ),
                "v2" => Some("SELECT * FROM rev WHERE total > 0".into()),
                _ => None,
            }
        }
        fn not_null(&self, _table: &str, column: &str) -> bool {
            column.ends_with("suppkey")
        }
        fn columns(&self, name: &str) -> Option<Vec<String>> {
            let cols: &[&str] = match name {
                "partsupp" => &["ps_partkey", "ps_suppkey", "ps_supplycost"],
                "supplier" => &["s_suppkey", "s_nationkey"],
                "nation" => &["n_nationkey", "n_name"],
                "lineitem" => &["l_suppkey", "l_price"],
                _ => return None,
            };
            Some(cols.iter().map(|c| c.to_string()).collect())
        }
    }

    fn run(sql: &str) -> Option<Nested> {
        let mut made: Vec<String> = Vec::new();
        nest(sql, &Cat, &mut |q: &str| {
            if let Some(i) = made.iter().position(|m| m == q) {
                return (format!("pgtrickle_changes.sub_{}", i + 1), false);
            }
            made.push(q.to_string());
            (format!("pgtrickle_changes.sub_{}", made.len()), true)
        })
    }

    #[test]
    fn a_subquery_in_from_becomes_an_internal_table() {
        let r = run(
            "SELECT c_count, count(*) FROM (SELECT c_custkey, count(o_orderkey) FROM customer LEFT JOIN orders \
             ON c_custkey = o_custkey GROUP BY c_custkey) AS c_orders (c_custkey, c_count) GROUP BY c_count",
        )
        .unwrap();
        assert_eq!(
            r.query,
            "SELECT c_count, count(*) FROM pgtrickle_changes.sub_1 AS c_orders GROUP BY c_count"
        );
        assert_eq!(r.children.len(), 1);
        assert_eq!(
            r.children[0].sql,
            "SELECT c_custkey AS \"c_custkey\", count(o_orderkey) AS \"c_count\" FROM customer LEFT JOIN orders \
             ON c_custkey = o_custkey GROUP BY c_custkey"
        );
        assert_eq!(r.children[0].empty_check, None);
    }

    #[test]
    fn a_correlated_scalar_over_a_join_becomes_a_keyed_lookup() {
        let r = run(
            "SELECT p_partkey FROM part, partsupp WHERE p_partkey = ps_partkey AND ps_supplycost = \
             (SELECT min(ps_supplycost) FROM partsupp, supplier WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey)",
        )
        .unwrap();
        assert_eq!(r.children.len(), 1);
        assert_eq!(
            r.children[0].sql,
            "SELECT ps_partkey AS \"__pgt_k1\", min(ps_supplycost) AS \"__pgt_v\" FROM partsupp, supplier \
             WHERE s_suppkey = ps_suppkey GROUP BY ps_partkey"
        );
        assert_eq!(r.children[0].index, vec!["__pgt_k1".to_string()]);
        assert_eq!(
            r.children[0].empty_check.as_deref(),
            Some("SELECT (min(ps_supplycost)) IS NULL FROM partsupp, supplier WHERE false")
        );
        assert!(r.query.ends_with(
            "ps_supplycost = (SELECT min(__pgt_n1.\"__pgt_v\") FROM pgtrickle_changes.sub_1 AS __pgt_n1 \
             WHERE __pgt_n1.\"__pgt_k1\" = p_partkey)"
        ));
    }

    #[test]
    fn a_subquery_in_having_moves_the_grouped_query_into_an_internal_table() {
        let r = run(
            "SELECT ps_partkey, sum(ps_supplycost) AS value FROM partsupp, supplier WHERE ps_suppkey = s_suppkey \
             GROUP BY ps_partkey HAVING sum(ps_supplycost) > (SELECT sum(ps_supplycost) * 0.5 FROM partsupp, supplier \
             WHERE ps_suppkey = s_suppkey) ORDER BY value DESC",
        )
        .unwrap();
        assert_eq!(r.children.len(), 2);
        assert!(r.children[0]
            .sql
            .contains("sum(ps_supplycost) AS \"__pgt_h1\""));
        assert!(!r.children[0].sql.contains("HAVING"));
        assert_eq!(
            r.children[1].sql,
            "SELECT sum(ps_supplycost) * 0.5 AS \"__pgt_v\" FROM partsupp, supplier WHERE ps_suppkey = s_suppkey"
        );
        assert_eq!(r.children[1].empty_check, None);
        assert_eq!(
            r.query,
            "SELECT \"ps_partkey\", \"value\" FROM pgtrickle_changes.sub_1 AS __pgt_g, pgtrickle_changes.sub_2 AS __pgt_x2 \
             WHERE \"__pgt_h1\" > __pgt_x2.\"__pgt_v\" ORDER BY value DESC"
        );
    }

    #[test]
    fn views_over_views_and_with_queries_are_inlined() {
        let r = run("SELECT s_suppkey FROM supplier, v2 WHERE s_suppkey = supplier_no").unwrap();
        assert_eq!(r.views, vec!["rev".to_string(), "v2".to_string()]);
        assert_eq!(r.children.len(), 1);
        assert!(r.children[0]
            .sql
            .starts_with("SELECT * FROM (SELECT l_suppkey"));
        let r = run(
            "WITH r AS (SELECT l_suppkey, sum(l_price) AS t FROM lineitem GROUP BY l_suppkey) \
             SELECT s_suppkey FROM supplier, r WHERE s_suppkey = l_suppkey AND t = (SELECT max(t) FROM r)",
        )
        .unwrap();
        assert!(r.views.is_empty());
        assert_eq!(r.children.len(), 2);
        assert!(r.children[1]
            .sql
            .starts_with("SELECT max(t) AS \"__pgt_v\" FROM (SELECT"));
        // The same subquery read twice is one internal table.
        let r = run(
            "SELECT a.l_suppkey FROM (SELECT l_suppkey, sum(l_price) AS t FROM lineitem GROUP BY l_suppkey) a, \
             (SELECT l_suppkey, sum(l_price) AS t FROM lineitem GROUP BY l_suppkey) b WHERE a.l_suppkey = b.l_suppkey",
        )
        .unwrap();
        assert_eq!(r.children.len(), 1);
        assert_eq!(
            r.query,
            "SELECT a.l_suppkey FROM pgtrickle_changes.sub_1 AS a, pgtrickle_changes.sub_1 AS b WHERE a.l_suppkey = b.l_suppkey"
        );
    }

    #[test]
    fn uncorrelated_in_and_scalar_subqueries_in_where_become_joined_internal_tables() {
        let r = run(
            "SELECT s_suppkey FROM supplier WHERE s_suppkey IN (SELECT ps_suppkey FROM partsupp WHERE ps_partkey IN \
             (SELECT l_suppkey FROM lineitem) AND ps_supplycost > (SELECT avg(l_price) FROM lineitem WHERE l_suppkey = ps_suppkey)) \
             AND s_nationkey > (SELECT avg(n_nationkey) FROM nation)",
        )
        .unwrap();
        assert_eq!(
            r.query,
            "SELECT s_suppkey FROM supplier, pgtrickle_changes.sub_1 AS __pgt_i1, pgtrickle_changes.sub_2 AS __pgt_x2 \
             WHERE s_suppkey = __pgt_i1.\"__pgt_i\" AND s_nationkey > __pgt_x2.\"__pgt_v\""
        );
        // The IN subquery is correlated inside (its scalar reads its own table): moved whole.
        assert!(r.children[0]
            .sql
            .starts_with("SELECT DISTINCT ps_suppkey AS \"__pgt_i\" FROM partsupp WHERE"));
        assert_eq!(
            r.children[1].sql,
            "SELECT avg(n_nationkey) AS \"__pgt_v\" FROM nation"
        );
        // Correlated to the outer query: left in place.
        let r = run(
            "SELECT s_suppkey FROM supplier, nation WHERE s_nationkey = n_nationkey AND s_suppkey IN \
             (SELECT ps_suppkey FROM partsupp WHERE ps_partkey = n_nationkey) AND s_suppkey > (SELECT avg(l_price) \
             FROM lineitem WHERE l_suppkey = n_nationkey)",
        );
        assert_eq!(r, None);
    }

    #[test]
    fn exists_with_a_not_equal_correlation_becomes_a_join_and_not_exists_lookups() {
        // Over the query's own table by a NOT NULL column: both joined (NOT EXISTS's E groups
        // every row, its local condition in FILTER).
        let q = |col: &str| {
            format!(
                "SELECT s_suppkey, count(*) FROM supplier, lineitem l1 WHERE s_suppkey = l1.l_suppkey \
                 AND EXISTS (SELECT * FROM lineitem l2 WHERE l2.{col} = l1.{col} AND l2.l_price <> l1.l_price) \
                 AND NOT EXISTS (SELECT * FROM lineitem l3 WHERE l3.{col} = l1.{col} AND l3.l_price <> l1.l_price \
                 AND l3.l_price > 0) GROUP BY s_suppkey"
            )
        };
        let r = run(&q("l_suppkey")).unwrap();
        assert_eq!(
            r.children[0].sql,
            "SELECT l2.l_suppkey AS \"__pgt_k1\", min(l2.l_price) AS \"__pgt_mn\", max(l2.l_price) AS \"__pgt_mx\" \
             FROM lineitem AS l2 GROUP BY l2.l_suppkey"
        );
        assert_eq!(
            r.children[1].sql,
            "SELECT l3.l_suppkey AS \"__pgt_k1\", min(l3.l_price) FILTER (WHERE l3.l_price > 0) AS \"__pgt_mn\", \
             max(l3.l_price) FILTER (WHERE l3.l_price > 0) AS \"__pgt_mx\" FROM lineitem AS l3 GROUP BY l3.l_suppkey"
        );
        assert_eq!(
            r.query,
            "SELECT s_suppkey, count(*) FROM supplier, lineitem AS l1, pgtrickle_changes.sub_1 AS __pgt_e1, \
             pgtrickle_changes.sub_2 AS __pgt_e2 WHERE s_suppkey = l1.l_suppkey AND __pgt_e1.\"__pgt_k1\" = l1.l_suppkey \
             AND (__pgt_e1.\"__pgt_mn\" <> l1.l_price OR __pgt_e1.\"__pgt_mx\" <> l1.l_price) AND \
             __pgt_e2.\"__pgt_k1\" = l1.l_suppkey AND coalesce(__pgt_e2.\"__pgt_mn\" = l1.l_price AND \
             __pgt_e2.\"__pgt_mx\" = l1.l_price, true) GROUP BY s_suppkey"
        );
        // By a column that may be NULL: NOT EXISTS becomes lookups.
        let r = run(&q("l_price")).unwrap();
        assert_eq!(
            r.children[1].sql,
            "SELECT l3.l_price AS \"__pgt_k1\", min(l3.l_price) AS \"__pgt_mn\", max(l3.l_price) AS \"__pgt_mx\" \
             FROM lineitem AS l3 WHERE l3.l_price > 0 GROUP BY l3.l_price"
        );
        assert!(r.query.ends_with(
            "coalesce((SELECT min(__pgt_e2.\"__pgt_mn\") FROM pgtrickle_changes.sub_2 AS __pgt_e2 WHERE \
             __pgt_e2.\"__pgt_k1\" = l1.l_price) = l1.l_price AND (SELECT min(__pgt_e2b.\"__pgt_mx\") FROM \
             pgtrickle_changes.sub_2 AS __pgt_e2b WHERE __pgt_e2b.\"__pgt_k1\" = l1.l_price) = l1.l_price, true) \
             GROUP BY s_suppkey"
        ), "{}", r.query);
    }

    #[test]
    fn what_is_left_alone() {
        // Nothing to rewrite.
        assert_eq!(
            run("SELECT a FROM t WHERE b = (SELECT max(c) FROM u)"),
            None
        );
        // HAVING reads an input column that an output alias shadows.
        let r = run("SELECT ps_suppkey AS ps_partkey, sum(ps_supplycost) AS s FROM partsupp GROUP BY ps_suppkey, ps_partkey \
                 HAVING ps_partkey > (SELECT max(s_suppkey) FROM supplier, nation)")
        .unwrap();
        assert!(
            r.query.contains(" HAVING ps_partkey > (SELECT min("),
            "{}",
            r.query
        );
        // WITH bodies are inlined once, in their own scope: `t` inside is the table.
        let r = run("WITH t AS (SELECT * FROM lineitem WHERE l_price > 0) SELECT l_suppkey, total FROM t, rev \
                     WHERE t.l_suppkey = rev.supplier_no")
        .unwrap();
        assert_eq!(
            r.children[0].sql,
            "SELECT * FROM lineitem WHERE l_price > 0"
        );
        // A WITH clause inside a subquery: not rewritten.
        assert_eq!(
            run("SELECT * FROM rev WHERE total > (SELECT max(x) FROM (WITH w AS (SELECT 1 AS x) SELECT x FROM w) z)"),
            None
        );
        // EXISTS whose select list aggregates is always true: not a row test.
        let r = run("SELECT s_suppkey FROM supplier, lineitem l1 WHERE EXISTS (SELECT max(l2.l_price) FROM lineitem l2 \
                     WHERE l2.l_suppkey = l1.l_suppkey AND l2.l_price <> l1.l_price)");
        assert!(r.is_none_or(|r| r.query.contains("EXISTS")));
        // HAVING over no GROUP BY and no aggregate: one group, not one row per input row.
        let r = run("SELECT 'y' AS flag FROM partsupp HAVING (SELECT max(s_suppkey) FROM supplier, nation) > 0");
        assert!(r.is_none_or(|r| r.query.contains("HAVING")));
        // A subquery in HAVING reading a grouped column: not moved over the outputs.
        let r = run("SELECT ps_partkey, sum(ps_supplycost) AS s FROM partsupp GROUP BY ps_partkey \
                     HAVING sum(ps_supplycost) > (SELECT max(l_price) FROM lineitem, supplier WHERE l_suppkey = ps_partkey)");
        assert!(r.is_none_or(|r| r.query.contains("HAVING")));
        // Correlated by other than equality.
        assert_eq!(
            run("SELECT a FROM t WHERE b = (SELECT max(ps_supplycost) FROM partsupp, supplier WHERE ps_partkey < t.a)"),
            None
        );
        // LATERAL.
        assert_eq!(
            run("SELECT * FROM t, LATERAL (SELECT count(*) FROM u WHERE u.x = t.x) s"),
            None
        );
        // Recursive WITH.
        assert_eq!(
            run("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r"),
            None
        );
    }
}
