//! Non-recursive CTEs and subqueries in FROM, inlined: a `WITH x AS (SELECT ... FROM t WHERE p)`
//! or `(SELECT ... FROM t WHERE p) AS x` whose body is a projection and filter of one table
//! becomes `t AS x` in the outer query, its output columns replaced by their expressions and its
//! filter moved to the outer WHERE (or, when x is the NULL-extended side of an outer join, to
//! that join's ON condition, which is where it filters the same rows).
//!
//! **Delta rule.** None of its own: inlining is an equivalence (the query after it returns the
//! same rows), so the inlined query is maintained by the other operators' rules. A CTE referenced
//! twice is inlined twice, under its two aliases; a CTE may read an earlier one. A body that
//! aggregates is not inlined: it stays a subquery in FROM (a CTE's body is put where the CTE is
//! read) for [`super::scalar`]'s grouped factor. Bodies with DISTINCT, joins, set operations,
//! LIMIT or ORDER BY are refused with the construct named.

use super::fold;
use super::parse::Unsupported;
use sqlparser::ast::{
    Expr, Ident, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, Query, SelectItem,
    SetExpr, TableAlias, TableFactor, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;

/// A body that can be inlined: `SELECT outputs FROM table [AS inner] [WHERE filter]`.
#[derive(Debug, Clone)]
struct Simple {
    table: ObjectName,
    /// The name the body's columns are qualified with (its alias or table name).
    inner: String,
    /// Output names and expressions; `None` for `SELECT *` (the table's own columns).
    outputs: Option<Vec<(String, Expr)>>,
    filter: Option<Expr>,
}

/// The name a FROM table's columns are qualified with: its alias, else its (last) name.
fn table_name(name: &ObjectName, alias: Option<&TableAlias>) -> String {
    match alias {
        Some(a) => fold(&a.name),
        None => name
            .0
            .last()
            .and_then(ObjectNamePart::as_ident)
            .map(fold)
            .unwrap_or_default(),
    }
}

fn not_simple(what: &str) -> Unsupported {
    format!(
        "a subquery in FROM or a WITH query with {what} (only SELECT ... FROM one table [WHERE ...] is inlined; others are supported in a later version)"
    ).into()
}

impl Simple {
    fn from_query(q: &Query, column_aliases: &[String]) -> Result<Simple, Unsupported> {
        if q.with.is_some() {
            return Err(not_simple("its own WITH"));
        }
        if q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
            return Err(not_simple("ORDER BY/LIMIT"));
        }
        let SetExpr::Select(s) = q.body.as_ref() else {
            return Err(not_simple("a set operation or VALUES"));
        };
        if s.distinct.is_some() {
            return Err(not_simple("DISTINCT"));
        }
        let grouped = match &s.group_by {
            sqlparser::ast::GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
            _ => true,
        };
        if grouped
            || s.having.is_some()
            || s.projection.iter().any(|i| match i {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    super::expr::contains_aggregate(e)
                }
                _ => false,
            })
        {
            return Err(not_simple("aggregation"));
        }
        let twj = match s.from.as_slice() {
            [] => return Err(not_simple("no FROM")),
            [twj] => twj,
            _ => return Err(not_simple("several tables")),
        };
        if !twj.joins.is_empty() {
            return Err(not_simple("a join"));
        }
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = &twj.relation
        else {
            return Err(not_simple("a FROM item that is not a table"));
        };
        if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
            return Err(not_simple("a table alias with column names"));
        }
        let inner = table_name(name, alias.as_ref());
        let outputs = match s.projection.as_slice() {
            [SelectItem::Wildcard(o)] if o.opt_exclude.is_none() && o.opt_except.is_none() => {
                if !column_aliases.is_empty() {
                    return Err(not_simple("SELECT * and column aliases"));
                }
                None
            }
            items => Some(named_outputs(
                items,
                column_aliases,
                "`*` next to other columns",
            )?),
        };
        // A subquery inside the body would be renamed by the inlining as if its names were
        // the body table's.
        let has_subquery = |e: &Expr| {
            sqlparser::ast::visit_expressions(e, |x| match x {
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            })
            .is_break()
        };
        if s.selection.as_ref().is_some_and(has_subquery)
            || outputs.iter().flatten().any(|(_, e)| has_subquery(e))
        {
            return Err(not_simple("a subquery inside it"));
        }
        Ok(Simple {
            table: name.clone(),
            inner,
            outputs,
            filter: s.selection.clone(),
        })
    }

    /// The body's expressions with its columns qualified by `alias` instead.
    fn rename(&self, e: &Expr, alias: &str) -> Expr {
        let inner = self.inner.clone();
        let alias = alias.to_string();
        super::expr::substitute(e, &move |x| match x {
            Expr::Identifier(i) => Some(qualified(&alias, &fold(i))),
            Expr::CompoundIdentifier(p) if p.len() >= 2 && fold(&p[p.len() - 2]) == inner => {
                Some(qualified(&alias, &fold(&p[p.len() - 1])))
            }
            _ => None,
        })
    }

    /// Output name → expression over `alias`; `None` for `SELECT *`.
    fn outputs_as(&self, alias: &str) -> Option<Vec<(String, Expr)>> {
        self.outputs.as_ref().map(|o| {
            o.iter()
                .map(|(n, e)| (n.clone(), self.rename(e, alias)))
                .collect()
        })
    }
}

/// A body's output columns (name, expression): named by `aliases` (the alias's column list),
/// else by their own alias or column name. `star` names a `*` among them (refused).
fn named_outputs(
    items: &[SelectItem],
    aliases: &[String],
    star: &str,
) -> Result<Vec<(String, Expr)>, Unsupported> {
    let mut out = Vec::new();
    for (k, item) in items.iter().enumerate() {
        let (e, name) = match item {
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(fold(alias))),
            SelectItem::UnnamedExpr(e) => {
                let n = match e {
                    Expr::Identifier(i) => Some(fold(i)),
                    Expr::CompoundIdentifier(p) => p.last().map(fold),
                    _ => None,
                };
                (e, n)
            }
            _ => return Err(not_simple(star)),
        };
        let name = aliases
            .get(k)
            .cloned()
            .or(name)
            .ok_or_else(|| not_simple("an output column without a name (give it an alias)"))?;
        out.push((name, e.clone()));
    }
    Ok(out)
}

fn qualified(alias: &str, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![
        Ident::with_quote('"', alias),
        Ident::with_quote('"', column),
    ])
}

/// One inlined FROM item.
struct Inlined {
    alias: String,
    outputs: Option<Vec<(String, Expr)>>,
}

/// Replaces references to inlined items' output columns by their expressions.
struct Substitute<'a> {
    items: &'a [Inlined],
    /// Unqualified names resolve to the only FROM item when there is one.
    sole: bool,
    error: Option<Unsupported>,
}

impl VisitorMut for Substitute<'_> {
    type Break = ();
    // After the children: a replacement is not visited again (it may contain the same column).
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let found = |alias: Option<&str>, col: &str| -> Option<Option<Expr>> {
            for it in self.items {
                if alias.is_some_and(|a| a != it.alias) {
                    continue;
                }
                match &it.outputs {
                    Some(o) => {
                        if let Some((_, e)) = o.iter().find(|(n, _)| n == col) {
                            return Some(Some(Expr::Nested(Box::new(e.clone()))));
                        }
                    }
                    None if alias.is_some() => return Some(None),
                    None => {}
                }
            }
            None
        };
        match expr {
            Expr::CompoundIdentifier(p) if p.len() == 2 => {
                if let Some(Some(e)) = found(Some(&fold(&p[0])), &fold(&p[1])) {
                    *expr = e;
                }
            }
            Expr::Identifier(i) if !i.value.starts_with("__pgt_") => {
                if let Some(Some(e)) = found(None, &fold(i)) {
                    if self.sole {
                        *expr = e;
                    } else {
                        self.error = Some(format!(
                            "the unqualified column {i} of a subquery or WITH query joined to another table (qualify it)"
                        ).into());
                        return ControlFlow::Break(());
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `name AS alias`, a FROM table.
pub(super) fn plain_table(name: ObjectName, alias: Ident) -> TableFactor {
    TableFactor::Table {
        name,
        alias: Some(TableAlias {
            name: alias,
            columns: Vec::new(),
        }),
        args: None,
        with_hints: Vec::new(),
        version: None,
        with_ordinality: false,
        partitions: Vec::new(),
        json_path: None,
        sample: None,
        index_hints: Vec::new(),
    }
}

fn and(a: Option<Expr>, b: Expr) -> Expr {
    match a {
        None => b,
        Some(a) => Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(a))),
            op: sqlparser::ast::BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(b))),
        },
    }
}

/// `x IN (SELECT k FROM t [WHERE p] GROUP BY k [HAVING h])`, a top-level `AND` term of the
/// WHERE of a query whose FROM is a comma list: the subquery has one row per k, so the IN is a
/// join with it, `FROM ..., (SELECT k FROM t WHERE p GROUP BY k HAVING h) AS __pgt_in<n> WHERE
/// __pgt_in<n>.k = x` (a NULL x matches no k either way, and no row is duplicated): a grouped
/// subquery in FROM (see [`super::scalar`]). Without HAVING the GROUP BY only removes duplicates,
/// which IN ignores: the subquery loses it (and a DISTINCT) and stays a semi-join. A subquery
/// that names a table of the outer query (correlated) is left as it is.
fn grouped_in_to_factors(select: &mut sqlparser::ast::Select) {
    use sqlparser::ast::{BinaryOperator, GroupByExpr, TableWithJoins};
    let Some(w) = select.selection.clone() else {
        return;
    };
    if select.from.iter().any(|t| !t.joins.is_empty()) {
        return;
    }
    let outer_names: Vec<String> = select
        .from
        .iter()
        .filter_map(|t| match &t.relation {
            TableFactor::Table { name, alias, .. } => Some(table_name(name, alias.as_ref())),
            TableFactor::Derived { alias: Some(a), .. } => Some(fold(&a.name)),
            _ => None,
        })
        .collect();
    let mut parts = Vec::new();
    super::parse::top_conjuncts(&w, &mut parts);
    let mut changed = false;
    let mut n = 0;
    for part in parts.iter_mut() {
        let Expr::InSubquery {
            expr,
            subquery,
            negated: false,
        } = part
        else {
            continue;
        };
        let SetExpr::Select(body) = subquery.body.as_ref() else {
            continue;
        };
        if subquery.with.is_some()
            || subquery.order_by.is_some()
            || subquery.limit_clause.is_some()
            || subquery.fetch.is_some()
        {
            continue;
        }
        let [SelectItem::UnnamedExpr(k) | SelectItem::ExprWithAlias { expr: k, .. }] =
            body.projection.as_slice()
        else {
            continue;
        };
        let GroupByExpr::Expressions(keys, mods) = &body.group_by else {
            continue;
        };
        let grouped_by_k = mods.is_empty() && matches!(keys.as_slice(), [g] if g == k);
        let distinct_only = keys.is_empty() && body.distinct.is_some() && body.having.is_none();
        if !(grouped_by_k || distinct_only) {
            continue;
        }
        // Correlated: a column qualified by an outer FROM item's name.
        let inner: Vec<String> = body
            .from
            .iter()
            .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
            .filter_map(|r| match r {
                TableFactor::Table { name, alias, .. } => Some(table_name(name, alias.as_ref())),
                _ => None,
            })
            .collect();
        let correlated = sqlparser::ast::visit_expressions(body.as_ref(), |x| match x {
            Expr::CompoundIdentifier(p)
                if p.len() >= 2
                    && !inner.contains(&fold(&p[p.len() - 2]))
                    && outer_names.contains(&fold(&p[p.len() - 2])) =>
            {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .is_break();
        if correlated || super::expr::contains_aggregate(k) {
            continue;
        }
        if body.having.is_none() {
            // Duplicates do not matter to IN: a plain semi-join.
            let mut b = body.as_ref().clone();
            b.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
            b.distinct = None;
            *subquery.body = SetExpr::Select(Box::new(b));
            changed = true;
            continue;
        }
        // The grouped subquery is joined by its GROUP BY column, under a name no outer column
        // has (a bare outer name must not become ambiguous).
        if !matches!(k, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            continue;
        }
        let key = format!("__pgt_ink{}", n + 1);
        n += 1;
        let alias = format!("__pgt_in{n}");
        let mut b = body.as_ref().clone();
        b.projection = vec![SelectItem::ExprWithAlias {
            expr: k.clone(),
            alias: Ident::with_quote('"', &key),
        }];
        let mut q = subquery.as_ref().clone();
        q.body = Box::new(SetExpr::Select(Box::new(b)));
        select.from.push(TableWithJoins {
            relation: TableFactor::Derived {
                lateral: false,
                subquery: Box::new(q),
                alias: Some(TableAlias {
                    name: Ident::with_quote('"', &alias),
                    columns: Vec::new(),
                }),
            },
            joins: Vec::new(),
        });
        *part = Expr::BinaryOp {
            left: Box::new(qualified(&alias, &key)),
            op: BinaryOperator::Eq,
            right: Box::new(Expr::Nested(expr.clone())),
        };
        changed = true;
    }
    if changed {
        select.selection = parts.into_iter().reduce(|a, b| and(Some(a), b));
    }
}

/// A subquery in FROM that is its query's only FROM item and is not [`Simple`] (it joins
/// tables, or has subqueries inside) but is a plain projection and filter of its own FROM:
/// `SELECT f(x) FROM (SELECT e AS x FROM t1, t2 WHERE p) s WHERE q` becomes
/// `SELECT f(e) FROM t1, t2 WHERE p AND q(e)`. Nothing else is in the outer FROM, so the
/// body's FROM, names and WHERE keep their meaning unchanged; only the outer query's references
/// to the subquery's columns are replaced by their expressions. Returns whether it did that.
fn hoist_sole(
    select: &mut sqlparser::ast::Select,
    scope: &[(String, Scoped)],
) -> Result<bool, Unsupported> {
    let [twj] = select.from.as_slice() else {
        return Ok(false);
    };
    let TableFactor::Derived {
        lateral: false,
        subquery,
        alias,
        ..
    } = &twj.relation
    else {
        return Ok(false);
    };
    if !twj.joins.is_empty() {
        return Ok(false);
    }
    let mut body = (**subquery).clone();
    inline_scoped(&mut body, scope)?;
    let cols: Vec<String> = alias
        .as_ref()
        .map(|a| a.columns.iter().map(|c| fold(&c.name)).collect())
        .unwrap_or_default();
    let alias = alias
        .as_ref()
        .map(|a| fold(&a.name))
        .unwrap_or_else(|| "__pgt_sub".to_string());
    if is_grouped(&body) || Simple::from_query(&body, &cols).is_ok() {
        return Ok(false);
    }
    if body.order_by.is_some() || body.limit_clause.is_some() || body.fetch.is_some() {
        return Err(not_simple("ORDER BY/LIMIT"));
    }
    let SetExpr::Select(inner) = *body.body else {
        return Err(not_simple("a set operation or VALUES"));
    };
    if inner.distinct.is_some() {
        return Err(not_simple("DISTINCT"));
    }
    let outputs = named_outputs(&inner.projection, &cols, "`*` and several tables")?;
    // The outer query's own subqueries would have their names rewritten too; `*` would expand
    // to every hoisted table's columns. (Checked and substituted with the FROM set aside: the
    // body's own expressions are not the outer query's.)
    select.from.clear();
    let outer_subquery = sqlparser::ast::visit_expressions(&*select, |x| match x {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break();
    if outer_subquery {
        return Err(
            "a subquery in a query that reads a subquery in FROM (supported in a later version)"
                .into(),
        );
    }
    if select.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return Err(not_simple("several tables, read with `*`"));
    }
    // A bare column keeps its name once replaced by an expression.
    for item in select.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_))) =
            item
        {
            let name = match e {
                Expr::Identifier(i) => fold(i),
                Expr::CompoundIdentifier(p) => p.last().map(fold).unwrap_or_default(),
                _ => unreachable!(),
            };
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::with_quote('"', &name),
            };
        }
    }
    let items = [Inlined {
        alias,
        outputs: Some(outputs),
    }];
    let mut sub = Substitute {
        items: &items,
        sole: true,
        error: None,
    };
    let _ = select.visit(&mut sub);
    if let Some(e) = sub.error {
        return Err(e);
    }
    select.from = inner.from;
    if let Some(p) = inner.selection {
        select.selection = Some(match select.selection.take() {
            Some(outer) => and(Some(p), outer),
            None => p,
        });
    }
    Ok(true)
}

/// Inlines the non-recursive CTEs and the subqueries in FROM of `q` that
/// [`Simple::from_query`] accepts. A query without either is left as it is.
pub fn inline(q: &mut Query) -> Result<(), Unsupported> {
    inline_scoped(q, &[])
}

/// Whether a body aggregates (it is then kept as a grouped subquery in FROM for
/// [`super::scalar`], not inlined).
fn is_grouped(q: &Query) -> bool {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    let grouped = match &s.group_by {
        sqlparser::ast::GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
        _ => true,
    };
    q.with.is_none()
        && s.distinct.is_none()
        && (grouped
            || s.having.is_some()
            || s.projection.iter().any(|i| match i {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    super::expr::contains_aggregate(e)
                }
                _ => false,
            }))
}

/// A WITH query in scope: inlined, or kept whole (an aggregating body).
#[derive(Debug, Clone)]
enum Scoped {
    Simple(Box<Simple>),
    Grouped(Box<Query>, Vec<String>),
}

fn inline_scoped(q: &mut Query, outer: &[(String, Scoped)]) -> Result<(), Unsupported> {
    let mut scope: Vec<(String, Scoped)> = outer.to_vec();
    if let Some(with) = q.with.take() {
        if with.recursive {
            return Err("WITH RECURSIVE (supported in a later version)".into());
        }
        for cte in with.cte_tables {
            let mut body = (*cte.query).clone();
            inline_scoped(&mut body, &scope)?;
            let cols: Vec<String> = cte.alias.columns.iter().map(|c| fold(&c.name)).collect();
            let entry = if is_grouped(&body) {
                Scoped::Grouped(Box::new(body), cols)
            } else {
                Scoped::Simple(Box::new(Simple::from_query(&body, &cols)?))
            };
            scope.push((fold(&cte.alias.name), entry));
        }
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return Ok(());
    };
    grouped_in_to_factors(select);
    if hoist_sole(select, &scope)? {
        return Ok(());
    }
    let mut inlined: Vec<Inlined> = Vec::new();
    // Filters of inlined items: for the outer WHERE, or for a join's ON (by join position).
    let mut where_extra: Vec<Expr> = Vec::new();
    let n_items: usize = select.from.iter().map(|t| 1 + t.joins.len()).sum();
    let mut counter = 0;
    for twj in select.from.iter_mut() {
        let mut factors: Vec<&mut TableFactor> = vec![&mut twj.relation];
        let mut ops: Vec<Option<&mut JoinOperator>> = vec![None];
        for j in twj.joins.iter_mut() {
            factors.push(&mut j.relation);
            ops.push(Some(&mut j.join_operator));
        }
        // Which positions are NULL-extended by an outer join (their filter belongs in its ON).
        let kinds: Vec<&'static str> = ops
            .iter()
            .map(|o| match o {
                Some(JoinOperator::Left(_) | JoinOperator::LeftOuter(_)) => "left",
                Some(JoinOperator::Right(_) | JoinOperator::RightOuter(_)) => "right",
                Some(JoinOperator::FullOuter(_)) => "full",
                _ => "inner",
            })
            .collect();
        let mut on_extra: Vec<(usize, Expr)> = Vec::new();
        for (pos, f) in factors.into_iter().enumerate() {
            let (simple, alias) = match f {
                TableFactor::Table { name, alias, .. } if name.0.len() == 1 => {
                    let n = name.0[0].as_ident().map(fold).unwrap_or_default();
                    match scope.iter().rev().find(|(c, _)| *c == n) {
                        Some((_, scoped)) => {
                            if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                                return Err(not_simple("column aliases where it is used"));
                            }
                            let a = alias.as_ref().map(|a| fold(&a.name)).unwrap_or(n);
                            match scoped {
                                Scoped::Simple(s) => ((**s).clone(), a),
                                Scoped::Grouped(body, cols) => {
                                    // Kept as a grouped subquery in FROM under the name used.
                                    *f = TableFactor::Derived {
                                        lateral: false,
                                        subquery: body.clone(),
                                        alias: Some(TableAlias {
                                            name: Ident::with_quote('"', &a),
                                            columns: cols
                                                .iter()
                                                .map(|c| sqlparser::ast::TableAliasColumnDef {
                                                    name: Ident::with_quote('"', c),
                                                    data_type: None,
                                                })
                                                .collect(),
                                        }),
                                    };
                                    continue;
                                }
                            }
                        }
                        None => continue,
                    }
                }
                TableFactor::Derived {
                    lateral,
                    subquery,
                    alias,
                    ..
                } => {
                    if *lateral {
                        return Err("LATERAL (supported in a later version)".into());
                    }
                    let mut body = (**subquery).clone();
                    inline_scoped(&mut body, &scope)?;
                    if is_grouped(&body) {
                        // Kept for the grouped-subquery factor (see super::scalar).
                        **subquery = body;
                        continue;
                    }
                    let cols: Vec<String> = alias
                        .as_ref()
                        .map(|a| a.columns.iter().map(|c| fold(&c.name)).collect())
                        .unwrap_or_default();
                    counter += 1;
                    let a = alias
                        .as_ref()
                        .map(|a| fold(&a.name))
                        .unwrap_or_else(|| format!("__pgt_sub{counter}"));
                    (Simple::from_query(&body, &cols)?, a)
                }
                _ => continue,
            };
            // NULL-extended: the right side of LEFT, the left side of RIGHT, both sides of FULL.
            let nullable_right = kinds[pos] == "left";
            let nullable_left = kinds.get(pos + 1) == Some(&"right");
            let nullable = nullable_right
                || nullable_left
                || kinds[pos] == "full"
                || kinds.get(pos + 1) == Some(&"full");
            // On a NULL-extended side an output must be NULL when there is no partner: only
            // bare columns are (a constant or COALESCE would not be).
            if nullable
                && simple
                    .outputs
                    .iter()
                    .flatten()
                    .any(|(_, e)| !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)))
            {
                return Err(not_simple(
                    "computed columns on the NULL-extended side of an outer join",
                ));
            }
            if let Some(filter) = &simple.filter {
                let renamed = simple.rename(filter, &alias);
                if kinds[pos] == "full" || kinds.get(pos + 1) == Some(&"full") {
                    return Err(not_simple("a WHERE clause on a side of a FULL JOIN"));
                } else if nullable_right {
                    on_extra.push((pos, renamed));
                } else if nullable_left {
                    on_extra.push((pos + 1, renamed));
                } else {
                    where_extra.push(renamed);
                }
            }
            *f = plain_table(simple.table.clone(), Ident::with_quote('"', &alias));
            inlined.push(Inlined {
                outputs: simple.outputs_as(&alias),
                alias,
            });
        }
        for (pos, cond) in on_extra {
            let op = ops[pos].as_deref_mut().expect("a joined position");
            let c = match op {
                JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c) => c,
                _ => unreachable!("only outer joins collect ON filters"),
            };
            if let JoinConstraint::On(e) = c {
                *e = and(Some(e.clone()), cond);
            } else {
                return Err(not_simple("an outer join without ON"));
            }
        }
    }
    // A WITH query read inside a subquery expression (scalar, EXISTS, IN) would be taken for a
    // table of that name once the WITH clause is gone.
    let names: Vec<&String> = scope.iter().map(|(n, _)| n).collect();
    let mut hidden = None;
    let _ = sqlparser::ast::visit_expressions(&*select, |x| {
        if let Expr::Subquery(q)
        | Expr::Exists { subquery: q, .. }
        | Expr::InSubquery { subquery: q, .. } = x
        {
            let _ = sqlparser::ast::visit_relations(q.as_ref(), |r| {
                if let [part] = r.0.as_slice() {
                    if let Some(i) = part.as_ident() {
                        if names.contains(&&fold(i)) {
                            hidden = Some(fold(i));
                        }
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        }
        ControlFlow::<()>::Continue(())
    });
    if let Some(name) = hidden {
        return Err(format!(
            "the WITH query {name} read inside a subquery expression (supported in a later version)"
        )
        .into());
    }
    if inlined.is_empty() {
        return Ok(());
    }
    // `*` and `alias.*` over inlined items become their output columns.
    let mut projection = Vec::new();
    for item in select.projection.drain(..) {
        match &item {
            SelectItem::Wildcard(_) => {
                for twj in &select.from {
                    let mut rels = vec![&twj.relation];
                    rels.extend(twj.joins.iter().map(|j| &j.relation));
                    for r in rels {
                        let TableFactor::Table { name, alias, .. } = r else {
                            return Err("`*` over this kind of FROM item".into());
                        };
                        let a = table_name(name, alias.as_ref());
                        match inlined.iter().find(|i| i.alias == a) {
                            Some(Inlined {
                                outputs: Some(o), ..
                            }) => projection.extend(o.iter().map(|(n, _)| {
                                SelectItem::ExprWithAlias {
                                    expr: qualified(&a, n),
                                    alias: Ident::with_quote('"', n),
                                }
                            })),
                            _ => projection.push(SelectItem::QualifiedWildcard(
                                sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(
                                    ObjectName(vec![ObjectNamePart::Identifier(
                                        Ident::with_quote('"', &a),
                                    )]),
                                ),
                                Default::default(),
                            )),
                        }
                    }
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let a = kind
                    .to_string()
                    .trim_end_matches(".*")
                    .trim_matches('"')
                    .to_ascii_lowercase();
                match inlined.iter().find(|i| i.alias == a) {
                    Some(Inlined {
                        outputs: Some(o), ..
                    }) => projection.extend(o.iter().map(|(n, _)| SelectItem::ExprWithAlias {
                        expr: qualified(&a, n),
                        alias: Ident::with_quote('"', n),
                    })),
                    _ => projection.push(item),
                }
            }
            // A bare column keeps its name once replaced by an expression.
            SelectItem::UnnamedExpr(e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_))) => {
                let name = match e {
                    Expr::Identifier(i) => fold(i),
                    Expr::CompoundIdentifier(p) => p.last().map(fold).unwrap_or_default(),
                    _ => unreachable!(),
                };
                projection.push(SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', &name),
                });
            }
            _ => projection.push(item),
        }
    }
    select.projection = projection;
    // Names inside a subquery of the outer query resolve in the subquery first; rewriting them
    // as the inlined items' columns would change their meaning.
    let subquery = sqlparser::ast::visit_expressions(&*select, |x| match x {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break();
    if subquery {
        return Err(
            "a subquery in a query that reads a WITH query or a subquery in FROM (supported in a later version)"
                .into(),
        );
    }
    for f in where_extra {
        select.selection = Some(and(select.selection.take(), f));
    }
    let mut sub = Substitute {
        items: &inlined,
        sole: n_items == 1,
        error: None,
    };
    let _ = select.visit(&mut sub);
    if let Some(e) = sub.error {
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::Statement;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn inlined(sql: &str) -> Result<String, Unsupported> {
        let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        let Statement::Query(q) = &mut stmts[0] else {
            panic!()
        };
        inline(q)?;
        Ok(q.to_string())
    }

    #[test]
    fn in_a_grouped_subquery_becomes_a_join() {
        assert_eq!(
            inlined(
                "SELECT o.id FROM orders o, cust c WHERE c.id = o.cid AND o.id IN (SELECT l.oid FROM line l WHERE l.q > 0 GROUP BY l.oid HAVING sum(l.q) > 300)"
            )
            .unwrap(),
            "SELECT o.id FROM orders AS o, cust AS c, (SELECT l.oid AS \"__pgt_ink1\" FROM line AS l WHERE l.q > 0 GROUP BY l.oid HAVING sum(l.q) > 300) AS \"__pgt_in1\" \
             WHERE (c.id = o.cid) AND (\"__pgt_in1\".\"__pgt_ink1\" = (o.id))"
        );
        // Without HAVING: the GROUP BY (or DISTINCT) goes, the IN stays.
        assert_eq!(
            inlined("SELECT id FROM orders WHERE id IN (SELECT DISTINCT oid FROM line)").unwrap(),
            "SELECT id FROM orders WHERE id IN (SELECT oid FROM line)"
        );
        // Left alone: correlated, grouped by more than the output, under OR, NOT IN.
        for sql in [
            "SELECT o.id FROM orders o WHERE o.id IN (SELECT l.oid FROM line l WHERE l.c = o.cid GROUP BY l.oid HAVING count(*) > 1)",
            "SELECT id FROM orders WHERE id IN (SELECT oid FROM line GROUP BY oid, q HAVING count(*) > 1)",
            "SELECT id FROM orders WHERE id > 3 OR id IN (SELECT oid FROM line GROUP BY oid HAVING count(*) > 1)",
            "SELECT id FROM orders WHERE id NOT IN (SELECT oid FROM line GROUP BY oid HAVING count(*) > 1)",
        ] {
            assert!(inlined(sql).unwrap().contains("GROUP BY"), "{sql}");
        }
    }

    #[test]
    fn a_sole_subquery_joining_tables_is_hoisted() {
        assert_eq!(
            inlined(
                "SELECT nation, sum(amount) AS profit FROM (SELECT n.name AS nation, l.price - l.cost AS amount \
                 FROM line l, nation n WHERE l.nk = n.nk AND n.name = amount) AS p WHERE p.amount > 0 GROUP BY nation"
            )
            .unwrap(),
            "SELECT (n.name) AS \"nation\", sum((l.price - l.cost)) AS profit FROM line AS l, nation AS n \
             WHERE (l.nk = n.nk AND n.name = amount) AND ((l.price - l.cost) > 0) GROUP BY (n.name)"
        );
        // A one-table body with a subquery inside.
        assert!(inlined(
            "SELECT code, count(*) FROM (SELECT substr(c, 1, 2) AS code FROM cust WHERE NOT EXISTS (SELECT 1 FROM ord WHERE ord.ck = cust.ck)) s GROUP BY code"
        )
        .unwrap()
        .contains("FROM cust WHERE NOT EXISTS"));
        for (sql, why) in [
            ("SELECT * FROM (SELECT a.x, b.y FROM a, b) s", "`*`"),
            (
                "SELECT s.x FROM (SELECT a.x FROM a, b) s WHERE s.x > (SELECT 1)",
                "a subquery in a query",
            ),
            (
                "SELECT s.x FROM (SELECT a.x + 1 FROM a, b) s",
                "without a name",
            ),
        ] {
            let e = inlined(sql).unwrap_err();
            assert!(e.contains(why), "{sql}: {e}");
        }
    }

    #[test]
    fn a_cte_becomes_its_table_with_its_filter() {
        assert_eq!(
            inlined("WITH big AS (SELECT id, grp AS g, val * 2 AS v2 FROM items WHERE val > 50) SELECT g, sum(v2) FROM big GROUP BY g").unwrap(),
            "SELECT (\"big\".\"grp\") AS \"g\", sum((\"big\".\"val\" * 2)) FROM items AS \"big\" WHERE \"big\".\"val\" > 50 GROUP BY (\"big\".\"grp\")"
        );
    }

    #[test]
    fn derived_tables_joins_and_outer_join_filters() {
        let sql = inlined(
            "SELECT c.code, s.id FROM cat c LEFT JOIN (SELECT i.id, i.grp FROM items i WHERE i.flag) s ON s.grp = c.code",
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT c.code AS \"code\", (\"s\".\"id\") AS \"id\" FROM cat AS c LEFT JOIN items AS \"s\" ON ((\"s\".\"grp\") = c.code) AND (\"s\".\"flag\")"
        );
        // A CTE used twice, one reading another.
        let sql = inlined(
            "WITH a AS (SELECT * FROM items WHERE val > 1), b AS (SELECT id, grp FROM a WHERE qty > 2) \
             SELECT x.id, y.id FROM b x JOIN b y ON x.grp = y.grp",
        )
        .unwrap();
        assert!(
            sql.contains("FROM items AS \"x\" JOIN items AS \"y\""),
            "{sql}"
        );
        assert!(
            sql.contains("\"x\".\"val\" > 1") && sql.contains("\"y\".\"qty\" > 2"),
            "{sql}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_inline() {
        for (sql, what) in [
            (
                "WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r",
                "RECURSIVE",
            ),
            (
                "SELECT * FROM (SELECT DISTINCT grp FROM items) d",
                "DISTINCT",
            ),
            (
                "SELECT * FROM (SELECT i.id FROM items i JOIN cat c ON true) d",
                "read with `*`",
            ),
            (
                "SELECT d.id, c.code FROM (SELECT i.id FROM items i JOIN cat c ON true) d, cat c",
                "a join",
            ),
            ("SELECT * FROM (SELECT id FROM items LIMIT 3) d", "LIMIT"),
            (
                "SELECT id FROM (SELECT id FROM items) d JOIN cat c ON true",
                "unqualified",
            ),
            (
                "SELECT c.code, s.h FROM cat c LEFT JOIN (SELECT grp, true AS h FROM items) s ON s.grp = c.code",
                "NULL-extended",
            ),
            (
                "WITH a AS (SELECT * FROM orders WHERE customer_id IN (SELECT id FROM vip)) SELECT * FROM a",
                "a subquery inside it",
            ),
            (
                "WITH a AS (SELECT id, grp FROM items) SELECT id FROM a WHERE EXISTS (SELECT 1 FROM cat WHERE code = grp)",
                "a subquery in a query",
            ),
        ] {
            let err = inlined(sql).unwrap_err();
            assert!(err.contains(what), "{sql}: {err}");
        }
    }
}
