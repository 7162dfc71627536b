//! Lookup factors: scalar subqueries `(SELECT agg(...) FROM t [WHERE local AND t.k = outer.x
//! ...])` in WHERE or in the select list, correlated by equalities with columns of `t` or not
//! correlated at all; and subqueries in FROM (or WITH queries) whose body aggregates, `(SELECT
//! k, agg(...) FROM t [WHERE local] GROUP BY k [HAVING h]) d`, joined by `d.k = outer.x` on all
//! their GROUP BY columns.
//!
//! **Model.** Such a subquery is a function F of its key k: the aggregate over t's rows with
//! key k. For a scalar subquery F is total (over no rows it is the aggregate's empty value: NULL
//! for sum, 0 for count); for a grouped subquery a key without rows (or whose group fails HAVING)
//! has no row. The query reads F as one more factor of its join, `⋈ F` on k = the outer
//! expression, which never duplicates a row since F has at most one row per key. An
//! uncorrelated subquery is F with the empty key: one row.
//!
//! **Delta rule.** As for any join factor (see [`super::join`]): Δ(Q ⋈ F) = ΔQ ⋈ F_old +
//! Q_new ⋈ ΔF, where
//! - A, the affected keys, are the keys of t's window images that pass the local filter;
//! - F_old(k) = F_new(k) for k ∉ A (an index lookup of t by k, LATERAL), and for k ∈ A the
//!   aggregate over t's old rows with key k: t's rows with key in A plus the window's images with
//!   negated weights, netted per row and expanded back to copies (so any aggregate works);
//! - ΔF = for k ∈ A whose old and new rows differ (or one is missing): −(k, F_old(k)) and
//!   +(k, F_new(k)).
//!
//! So a refresh costs the window's changes times index lookups on k, plus a scan of the affected
//! keys' rows of t; an uncorrelated subquery reads all of t (its value depends on all of it). A
//! complete result groups t once by k and joins it (decorrelated), where PostgreSQL would run a
//! correlated scalar subquery once per outer row.

use super::fold;
use super::parse::{FromTable, Unsupported};
use super::SourceTable;

use sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, Query, SelectItem, SetExpr, TableFactor,
};
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// The name of a scalar subquery's value in the outer query: `"__pgt_s<n>"."__pgt_v"`.
pub const VALUE: &str = "__pgt_v";

/// The most scalar subqueries one query may have (each doubles the delta's old-state variants).
pub const MAX_SCALARS: usize = 3;

/// A scalar subquery, rewritten as a factor of the outer query's join.
#[derive(Debug, Clone)]
pub struct Scalar {
    /// Its alias in the outer query.
    pub alias: String,
    /// The alias of its table inside (every column reference of the body is qualified with it).
    pub inner: String,
    /// Named outputs (a scalar subquery has one, [`VALUE`]).
    pub outputs: Vec<(String, Expr)>,
    /// A grouped subquery in FROM (`GROUP BY`): a key without rows, or whose group fails
    /// HAVING, has no row. Otherwise a scalar subquery: a key without rows reads the aggregate
    /// over no rows.
    pub grouped: bool,
    pub having: Option<Expr>,
    /// The body's conditions that do not mention the outer query.
    pub filter: Option<Expr>,
    /// The key: (column of the subquery's table, outer expression it equals).
    pub keys: Vec<(String, Expr)>,
    /// The outer rows that can read it, when the key reads one FROM table that the outer WHERE
    /// filters on its own: the keys a refresh recomputes are limited to theirs.
    pub scope: Option<Scope>,
}

/// The outer query's own conditions on the one FROM table a keyed subquery's key reads
/// (`table`: its position in FROM, `alias` its name there). Only keys of that table's rows
/// that pass them, now or before the window, can reach the result: any other outer row fails
/// the query's WHERE whatever the subquery's value.
#[derive(Debug, Clone)]
pub struct Scope {
    pub table: usize,
    pub alias: String,
    pub conds: Vec<Expr>,
}

/// The [`Scope`] of `sc` among the outer WHERE's top-level conjuncts `terms`, or `None` when
/// its key reads other than one FROM table, or the WHERE has no condition on that table alone.
pub fn scope_of(
    sc: &Scalar,
    terms: &[Expr],
    owner: &super::parse::ColumnOwner,
    from: &[FromTable],
) -> Option<Scope> {
    if sc.keys.is_empty() {
        return None;
    }
    // The FROM tables an expression's columns belong to (None: one that is not a FROM table's,
    // or a subquery).
    let tables_of = |e: &Expr| -> Option<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let r = sqlparser::ast::visit_expressions(e, |x| {
            match x {
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    return ControlFlow::Break(())
                }
                Expr::CompoundIdentifier(p) if p.len() >= 2 => {
                    let t = fold(&p[p.len() - 2]);
                    if !from.iter().any(|f| f.alias == t) {
                        return ControlFlow::Break(());
                    }
                    out.insert(t);
                }
                // A bare name must be a known column of that table: one table's only alias is
                // also what `of` answers for names it lacks (a grouped subquery's output).
                Expr::Identifier(i) => match owner.of(&fold(i)) {
                    Some(t) if owner.has(t, &fold(i)) => {
                        out.insert(t.to_string());
                    }
                    _ => return ControlFlow::Break(()),
                },
                _ => {}
            }
            ControlFlow::Continue(())
        });
        (!r.is_break()).then_some(out)
    };
    let mut key_tables = BTreeSet::new();
    for (_, e) in &sc.keys {
        key_tables.extend(tables_of(e)?);
    }
    let [alias]: [String; 1] = key_tables.into_iter().collect::<Vec<_>>().try_into().ok()?;
    let table = from.iter().position(|f| f.alias == alias)?;
    let conds: Vec<Expr> = terms
        .iter()
        .filter(|t| tables_of(t).is_some_and(|ts| ts.len() == 1 && ts.contains(&alias)))
        .cloned()
        .collect();
    (!conds.is_empty()).then_some(Scope {
        table,
        alias,
        conds,
    })
}

fn qualified(alias: &str, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![
        Ident::with_quote('"', alias),
        Ident::with_quote('"', column),
    ])
}

fn bad(what: &str) -> Unsupported {
    format!("a scalar subquery with {what} (supported in a later version)").into()
}

/// Whether `e` references the inner alias, and whether it references anything else.
fn references(e: &Expr, inner: &str) -> (bool, bool) {
    let (mut i, mut o) = (false, false);
    let _ = sqlparser::ast::visit_expressions(e, |x| {
        if let Expr::CompoundIdentifier(p) = x {
            if p.len() >= 2 && p[p.len() - 2].value == inner {
                i = true;
            } else {
                o = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    (i, o)
}

/// The outer query's FROM tables, for resolving the subquery's references.
pub struct Outer<'a> {
    pub from: &'a [FromTable],
    /// Their columns, when known (empty while only the table names are being looked up).
    pub columns: &'a [Vec<String>],
}

/// Rewrites every scalar subquery in `e` into a reference to a new factor, appended to `out`
/// (its table to `tables`). `n` numbers the factors.
pub fn extract(
    e: &Expr,
    outer: &Outer,
    body_columns: &dyn Fn(usize) -> Option<Vec<String>>,
    out: &mut Vec<(Scalar, FromTable)>,
) -> Result<Expr, Unsupported> {
    let err = std::cell::RefCell::new(None::<Unsupported>);
    let found = std::cell::RefCell::new(Vec::new());
    let base = out.len();
    let rewritten = super::expr::substitute(e, &|x| {
        let Expr::Subquery(q) = x else { return None };
        if err.borrow().is_some() {
            return None;
        }
        let n = base + found.borrow().len() + 1;
        match parse_body(q, n, outer, body_columns(n - 1).as_deref()) {
            Ok(s) => {
                let alias = s.0.alias.clone();
                found.borrow_mut().push(s);
                Some(qualified(&alias, VALUE))
            }
            Err(e) => {
                *err.borrow_mut() = Some(e);
                None
            }
        }
    });
    if let Some(e) = err.into_inner() {
        return Err(e);
    }
    out.extend(found.into_inner());
    if out.len() > MAX_SCALARS {
        return Err(format!(
            "more than {MAX_SCALARS} scalar subqueries (supported in a later version)"
        )
        .into());
    }
    Ok(rewritten)
}

fn parse_body(
    q: &Query,
    n: usize,
    outer: &Outer,
    inner_columns: Option<&[String]>,
) -> Result<(Scalar, FromTable), Unsupported> {
    if q.order_by.is_some() {
        return Err(bad("ORDER BY"));
    }
    let (s, mut table) = super::parse::one_table_body(q, &bad)?;
    let value = match s.projection.as_slice() {
        [SelectItem::UnnamedExpr(e)] | [SelectItem::ExprWithAlias { expr: e, .. }] => e,
        _ => return Err(bad("other than one output column")),
    };
    if !super::expr::contains_aggregate(value) {
        return Err(bad("no aggregate (its row count would not be known)"));
    }
    let user_alias = table.alias.clone();
    let inner = format!("__pgt_si{n}");
    let alias = format!("__pgt_s{n}");
    let failed = std::cell::RefCell::new(None::<Unsupported>);
    let outer_alias = |name: &str| outer.from.iter().position(|t| t.alias == name);
    let resolve = |x: &Expr| -> Option<Expr> {
        match x {
            Expr::CompoundIdentifier(p) if p.len() >= 2 => {
                let (t, c) = (fold(&p[p.len() - 2]), fold(&p[p.len() - 1]));
                if p[p.len() - 2].value == inner {
                    None
                } else if t == user_alias {
                    Some(qualified(&inner, &c))
                } else if p[p.len() - 2].value.starts_with("__pgt_") {
                    None
                } else if let Some(i) = outer_alias(&t) {
                    Some(qualified(&outer.from[i].alias, &c))
                } else {
                    *failed.borrow_mut() = Some(
                        format!("{x} in a scalar subquery, which pg_trickle cannot resolve").into(),
                    );
                    None
                }
            }
            Expr::Identifier(i) => {
                let c = fold(i);
                let Some(cols) = inner_columns else {
                    return Some(qualified(&inner, &c));
                };
                if cols.contains(&c) {
                    return Some(qualified(&inner, &c));
                }
                let owners: Vec<usize> = (0..outer.from.len())
                    .filter(|&k| outer.columns.get(k).is_some_and(|cs| cs.contains(&c)))
                    .collect();
                match owners.as_slice() {
                    [k] => Some(qualified(&outer.from[*k].alias, &c)),
                    _ => {
                        *failed.borrow_mut() = Some(
                            format!(
                                "column {c} in a scalar subquery, which pg_trickle cannot resolve"
                            )
                            .into(),
                        );
                        None
                    }
                }
            }
            _ => None,
        }
    };
    let value = super::expr::substitute(value, &resolve);
    let selection = s
        .selection
        .as_ref()
        .map(|w| super::expr::substitute(w, &resolve));
    if let Some(f) = failed.into_inner() {
        return Err(f);
    }
    if let Some(what) = super::expr::unsupported_construct(&value) {
        return Err(what.into());
    }
    if references(&value, &inner).1 {
        return Err(bad("an outer column in its select list"));
    }
    let mut terms = Vec::new();
    if let Some(w) = &selection {
        if let Some(what) = super::expr::unsupported_construct(w) {
            return Err(what.into());
        }
        if super::expr::contains_aggregate(w) {
            return Err(bad("an aggregate in WHERE"));
        }
        super::parse::top_conjuncts(w, &mut terms);
    }
    let mut keys = Vec::new();
    let mut local = Vec::new();
    for t in terms {
        if !references(&t, &inner).1 {
            local.push(t);
            continue;
        }
        let key = match &t {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => [(left, right), (right, left)]
                .into_iter()
                .find_map(|(a, b)| {
                    let mut a = a.as_ref();
                    while let Expr::Nested(x) = a {
                        a = x;
                    }
                    match a {
                        Expr::CompoundIdentifier(p) if p[0].value == inner => {
                            let (i, _) = references(b, &inner);
                            (!i).then(|| (p[1].value.clone(), b.as_ref().clone()))
                        }
                        _ => None,
                    }
                }),
            _ => None,
        };
        match key {
            Some(k) => keys.push(k),
            None => {
                return Err(bad(
                    "a correlation other than `its column = outer expression`",
                ))
            }
        }
    }
    let filter = local.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(a))),
        op: BinaryOperator::And,
        right: Box::new(Expr::Nested(Box::new(b))),
    });
    table.alias = alias.clone();
    Ok((
        Scalar {
            alias,
            inner,
            outputs: vec![(VALUE.to_string(), value)],
            grouped: false,
            having: None,
            filter,
            keys,
            scope: None,
        },
        table,
    ))
}

/// `x NOT IN (SELECT y FROM t [WHERE c])` with SQL's three-valued semantics, as scalar
/// subqueries over counts: `CASE WHEN count(c) = 0 THEN true WHEN x IS NULL THEN NULL WHEN
/// count(c AND y = x) > 0 THEN false WHEN count(c AND y IS NULL) > 0 THEN NULL ELSE true END`
/// (exact in any context, also under NOT or COALESCE). `owner` names the FROM table of each of
/// x's bare columns (see [`super::parse::ColumnOwner`]).
pub fn rewrite_not_in(e: &Expr, owner: &super::parse::ColumnOwner) -> Result<Expr, Unsupported> {
    let failed = std::cell::RefCell::new(None::<Unsupported>);
    let out = super::expr::substitute(e, &|x| {
        let Expr::InSubquery {
            expr,
            subquery,
            negated: true,
        } = x
        else {
            return None;
        };
        match not_in(expr, subquery, owner) {
            Ok(r) => Some(r),
            Err(e) => {
                *failed.borrow_mut() = Some(e);
                None
            }
        }
    });
    match failed.into_inner() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn not_in(x: &Expr, q: &Query, owner: &super::parse::ColumnOwner) -> Result<Expr, Unsupported> {
    let bad = |what: &str| -> Unsupported {
        format!("NOT IN (subquery) with {what} (supported in a later version)").into()
    };
    if matches!(x, Expr::Tuple(_)) {
        return Err(bad("several columns"));
    }
    let (s, table) = super::parse::one_table_body(q, &bad)?;
    let y = match s.projection.as_slice() {
        [SelectItem::UnnamedExpr(e)] | [SelectItem::ExprWithAlias { expr: e, .. }] => e,
        _ => return Err(bad("other than one output column")),
    };
    if !matches!(y, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
        return Err(bad("an output that is not a column"));
    }
    let x = super::expr::substitute(x, &|e| match e {
        Expr::Identifier(i) => owner.of(&fold(i)).map(|a| qualified(a, &fold(i))),
        _ => None,
    });
    if sqlparser::ast::visit_expressions(&x, |e| match e {
        Expr::Identifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
    {
        return Err(bad(
            "an unqualified column on its left in a join that is not one table's (qualify it)",
        ));
    }
    // The subquery's table gets a name of its own, so x (qualified with an outer name that may
    // be the same) stays the outer query's.
    const INNER: &str = "__pgt_ni";
    let rename = |e: &Expr| {
        super::expr::substitute(e, &|v| match v {
            Expr::CompoundIdentifier(p) if p.len() >= 2 && fold(&p[p.len() - 2]) == table.alias => {
                Some(qualified(INNER, &fold(&p[p.len() - 1])))
            }
            _ => None,
        })
    };
    let y = rename(y);
    let c = s.selection.as_ref().map(&rename);
    let count = |extra: Option<String>| {
        let conds: Vec<String> = c.iter().map(|c| format!("({c})")).chain(extra).collect();
        let w = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        format!("(SELECT count(*) FROM {} AS {INNER}{w})", table.name)
    };
    // SQL's three-valued NOT IN: true over no rows; NULL for a NULL x; false when a row
    // matches; NULL when some y is NULL; true otherwise.
    let sql = format!(
        "(CASE WHEN {} = 0 THEN true WHEN ({x}) IS NULL THEN NULL \
               WHEN {} > 0 THEN false WHEN {} > 0 THEN NULL ELSE true END)",
        count(None),
        count(Some(format!("{y} = ({x})"))),
        count(Some(format!("({y}) IS NULL"))),
    );
    sqlparser::parser::Parser::new(&sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("internal: {e}").into())
}

/// A subquery in FROM whose body aggregates, `(SELECT ... FROM t [WHERE f] [GROUP BY columns]
/// [HAVING h]) [AS] d [(names)]`, as a factor: its keys (the GROUP BY columns) are bound by
/// [`bind_keys`] to the outer expressions they are joined to. `None` when `f` is not one.
pub fn grouped_factor(
    f: &TableFactor,
    n: usize,
) -> Option<Result<(Scalar, FromTable), Unsupported>> {
    let TableFactor::Derived {
        lateral: false,
        subquery,
        alias,
    } = f
    else {
        return None;
    };
    Some(parse_grouped(subquery, alias.as_ref(), n))
}

fn grouped_bad(what: &str) -> Unsupported {
    format!("a subquery in FROM with {what} (supported in a later version)").into()
}

fn parse_grouped(
    q: &Query,
    alias: Option<&sqlparser::ast::TableAlias>,
    n: usize,
) -> Result<(Scalar, FromTable), Unsupported> {
    if q.with.is_some() || q.limit_clause.is_some() || q.fetch.is_some() || q.order_by.is_some() {
        return Err(grouped_bad("WITH, ORDER BY or LIMIT"));
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return Err(grouped_bad("a set operation"));
    };
    if s.distinct.is_some() {
        return Err(grouped_bad("DISTINCT and GROUP BY"));
    }
    let twj = match s.from.as_slice() {
        [twj] if twj.joins.is_empty() => twj,
        _ => return Err(grouped_bad("aggregation over other than one table")),
    };
    let mut table = super::parse::from_table(&twj.relation)?;
    let user_inner = table.alias.clone();
    let inner = format!("__pgt_si{n}");
    let outer_alias = alias
        .map(|a| fold(&a.name))
        .unwrap_or_else(|| format!("__pgt_s{n}"));
    let names: Vec<String> = alias
        .map(|a| a.columns.iter().map(|c| fold(&c.name)).collect())
        .unwrap_or_default();
    let failed = std::cell::RefCell::new(None::<Unsupported>);
    let rename = |e: &Expr| {
        super::expr::substitute(e, &|x| match x {
            Expr::Identifier(i) => Some(qualified(&inner, &fold(i))),
            Expr::CompoundIdentifier(p) if p.len() >= 2 => {
                if p[p.len() - 2].value == inner {
                    None
                } else if fold(&p[p.len() - 2]) == user_inner {
                    Some(qualified(&inner, &fold(&p[p.len() - 1])))
                } else {
                    *failed.borrow_mut() = Some(
                        format!("{x} in a subquery in FROM, which pg_trickle cannot resolve")
                            .into(),
                    );
                    None
                }
            }
            _ => None,
        })
    };
    let mut outputs = Vec::new();
    for (k, item) in s.projection.iter().enumerate() {
        let (e, name) = match item {
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(fold(alias))),
            SelectItem::UnnamedExpr(e) => (
                e,
                match e {
                    Expr::Identifier(i) => Some(fold(i)),
                    Expr::CompoundIdentifier(p) => p.last().map(fold),
                    _ => None,
                },
            ),
            _ => return Err(grouped_bad("`*` and aggregation")),
        };
        let name = names
            .get(k)
            .cloned()
            .or(name)
            .ok_or_else(|| grouped_bad("an output column without a name (give it an alias)"))?;
        if outputs.iter().any(|(o, _): &(String, Expr)| *o == name) {
            return Err(grouped_bad("two output columns of one name"));
        }
        if let Some(what) = super::expr::unsupported_construct(e) {
            return Err(what.into());
        }
        outputs.push((name, rename(e)));
    }
    let filter = s.selection.as_ref().map(&rename);
    if let Some(w) = &filter {
        if let Some(what) = super::expr::unsupported_construct(w) {
            return Err(what.into());
        }
        if super::expr::contains_aggregate(w) {
            return Err(grouped_bad("an aggregate in WHERE"));
        }
    }
    let having = s.having.as_ref().map(&rename);
    if let Some(h) = &having {
        if let Some(what) = super::expr::unsupported_construct(h) {
            return Err(what.into());
        }
    }
    let group_exprs = match &s.group_by {
        GroupByExpr::Expressions(e, m) if m.is_empty() => e.clone(),
        _ => return Err(grouped_bad("GROUP BY ALL or a GROUP BY modifier")),
    };
    let mut keys = Vec::new();
    for g in &group_exprs {
        // `GROUP BY 1` is the first output.
        let g = match g {
            Expr::Value(v) => match &v.value {
                sqlparser::ast::Value::Number(num, _) => num
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| outputs.get(i.wrapping_sub(1)))
                    .map(|(_, e)| e.clone())
                    .ok_or_else(|| grouped_bad("a GROUP BY position out of range"))?,
                _ => return Err(grouped_bad("a GROUP BY constant")),
            },
            other => rename(other),
        };
        let mut e = &g;
        while let Expr::Nested(x) = e {
            e = x;
        }
        match e {
            Expr::CompoundIdentifier(p) if p.len() == 2 && p[0].value == inner => {
                // Placeholder outer expression: bound by `bind_keys`.
                keys.push((
                    p[1].value.clone(),
                    Expr::Value(sqlparser::ast::Value::Null.into()),
                ));
            }
            _ => return Err(grouped_bad("GROUP BY other than columns of its table")),
        }
    }
    if let Some(f) = failed.into_inner() {
        return Err(f);
    }
    if keys.is_empty()
        && !outputs
            .iter()
            .any(|(_, e)| super::expr::contains_aggregate(e))
    {
        return Err(grouped_bad("no aggregate"));
    }
    if keys.is_empty() && having.is_some() {
        return Err(grouped_bad("HAVING without GROUP BY"));
    }
    // An output outside any aggregate may read only GROUP BY columns (PostgreSQL would also
    // accept columns the primary key determines; the old-row recomputation has no key to
    // determine them by).
    for (name, e) in &outputs {
        if super::expr::contains_aggregate(e) {
            continue;
        }
        let stray = sqlparser::ast::visit_expressions(e, |x| match x {
            Expr::CompoundIdentifier(p)
                if p.len() == 2 && !keys.iter().any(|(k, _)| *k == p[1].value) =>
            {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .is_break();
        if stray {
            return Err(grouped_bad(&format!(
                "output {name} reading a column that is neither grouped nor aggregated"
            )));
        }
    }
    table.alias = outer_alias.clone();
    Ok((
        Scalar {
            alias: outer_alias,
            inner,
            grouped: !keys.is_empty(),
            outputs,
            having,
            filter,
            keys,
            scope: None,
        },
        table,
    ))
}

/// Binds each key of a grouped factor to the outer expression a WHERE term equates its output
/// column with (`d.col = outer` or `outer = d.col`, `outer` reading none of `factors`), and
/// removes those terms. Fails when a key stays unbound.
pub fn bind_keys(
    sc: &mut Scalar,
    terms: &mut Vec<Expr>,
    factors: &[String],
) -> Result<(), Unsupported> {
    let inner = sc.inner.clone();
    for k in 0..sc.keys.len() {
        let col = sc.keys[k].0.clone();
        let names: Vec<String> = sc
            .outputs
            .iter()
            .filter(|(_, e)| {
                matches!(e, Expr::CompoundIdentifier(p) if p.len() == 2 && p[0].value == inner && p[1].value == col)
            })
            .map(|(n, _)| n.clone())
            .collect();
        let is_key_ref = |e: &Expr| {
            let mut e = e;
            while let Expr::Nested(x) = e {
                e = x;
            }
            matches!(e, Expr::CompoundIdentifier(p) if p.len() == 2 && fold(&p[0]) == sc.alias && names.contains(&fold(&p[1])))
        };
        let reads_factor = |e: &Expr| {
            sqlparser::ast::visit_expressions(e, |x| match x {
                Expr::CompoundIdentifier(p)
                    if p.len() >= 2 && factors.contains(&fold(&p[p.len() - 2])) =>
                {
                    ControlFlow::Break(())
                }
                Expr::Identifier(_) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .is_break()
        };
        let found = terms.iter().position(|t| match t {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                (is_key_ref(left) && !reads_factor(right))
                    || (is_key_ref(right) && !reads_factor(left))
            }
            _ => false,
        });
        let Some(pos) = found else {
            return Err(grouped_bad(&format!(
                "GROUP BY {col} not joined by `{}.<column> = <expression over the other tables>` (qualified)",
                sc.alias
            )));
        };
        let Expr::BinaryOp { left, right, .. } = terms.remove(pos) else {
            unreachable!()
        };
        let key = if is_key_ref(&left) { *right } else { *left };
        if let Some(what) = super::expr::unsupported_construct(&key) {
            return Err(what.into());
        }
        sc.keys[k].1 = key;
    }
    Ok(())
}

mod factor;
pub use factor::{Part, State};

#[cfg(test)]
mod tests {
    use super::super::parse::parse;

    fn cols() -> Vec<Vec<String>> {
        let part = vec!["id".to_string(), "name".to_string()];
        let line = vec!["id".to_string(), "part_id".to_string(), "qty".to_string()];
        vec![part, line.clone(), line]
    }

    #[test]
    fn correlated_subquery_becomes_a_keyed_factor() {
        let q = parse(
            "SELECT p.id FROM part p WHERE 10 < (SELECT sum(qty) FROM line WHERE part_id = p.id AND qty > 1)",
            &cols(),
        )
        .unwrap();
        assert_eq!(q.from.len(), 2);
        assert_eq!(q.from[1].name, "line");
        let sc = &q.scalars[0];
        assert_eq!(sc.keys.len(), 1);
        assert_eq!(sc.keys[0].0, "part_id");
        assert_eq!(sc.keys[0].1.to_string(), "\"p\".\"id\"");
        assert_eq!(
            sc.filter.as_ref().unwrap().to_string(),
            "\"__pgt_si1\".\"qty\" > 1"
        );
        assert_eq!(
            q.filter.unwrap().to_string(),
            "10 < \"__pgt_s1\".\"__pgt_v\""
        );
    }

    #[test]
    fn the_inner_table_shadows_an_outer_one_of_the_same_name() {
        let q = parse(
            "SELECT line.id FROM line, part WHERE line.qty < (SELECT avg(line.qty) FROM line WHERE line.part_id = part.id)",
            &[cols()[1].clone(), cols()[0].clone(), cols()[1].clone()],
        )
        .unwrap();
        assert_eq!(q.scalars[0].keys[0].0, "part_id");
        assert_eq!(q.scalars[0].keys[0].1.to_string(), "\"part\".\"id\"");
        assert_eq!(
            q.scalars[0].outputs[0].1.to_string(),
            "avg(\"__pgt_si1\".\"qty\")"
        );
    }

    #[test]
    fn refused_shapes_name_the_construct() {
        let c = cols();
        let err = |sql: &str| parse(sql, &c).unwrap_err();
        assert!(err(
            "SELECT id FROM part p WHERE 1 < (SELECT count(*) FROM line l WHERE l.part_id > p.id)"
        )
        .contains("correlation other than"));
        assert!(
            err("SELECT id FROM part p WHERE 1 < (SELECT count(*) + p.id FROM line l)")
                .contains("outer column in its select list")
        );
        assert!(
            err("SELECT id FROM part p WHERE 1 < (SELECT qty FROM line l WHERE l.id = p.id)")
                .contains("no aggregate")
        );
        assert!(err(
            "SELECT p.name, count(*), (SELECT max(qty) FROM line) FROM part p GROUP BY p.name"
        )
        .contains("aggregating query"));
        assert!(err(
            "SELECT id FROM part p WHERE 1 < (SELECT count(*) FROM line l GROUP BY l.qty)"
        )
        .contains("GROUP BY"));
        assert!(err("SELECT id FROM part p WHERE 1 < (SELECT count(*) FROM line) AND 2 < (SELECT count(*) FROM line) AND 3 < (SELECT count(*) FROM line) AND 4 < (SELECT count(*) FROM line)")
            .contains("more than 3 scalar subqueries"));
    }
}

#[cfg(test)]
mod grouped_tests {
    use super::super::parse::parse;

    fn cols() -> Vec<Vec<String>> {
        let part = vec!["id".to_string(), "name".to_string()];
        let line = vec!["id".to_string(), "part_id".to_string(), "qty".to_string()];
        vec![part, line]
    }

    #[test]
    fn a_grouped_subquery_is_bound_by_its_join_condition() {
        let q = parse(
            "SELECT p.name, t.total FROM (SELECT part_id, sum(qty) AS total FROM line GROUP BY part_id) t JOIN part p ON p.id = t.part_id AND p.id > 3",
            &cols(),
        )
        .unwrap();
        assert_eq!(q.from.len(), 2);
        assert_eq!(
            (q.from[0].alias.as_str(), q.from[1].alias.as_str()),
            ("p", "t")
        );
        let g = &q.scalars[0];
        assert!(g.grouped);
        assert_eq!(g.keys[0].0, "part_id");
        assert_eq!(g.keys[0].1.to_string(), "p.id");
        // The key term is the factor's join; the other ON term stays a filter.
        assert_eq!(q.filter.unwrap().to_string(), "p.id > 3");
    }

    #[test]
    fn refused_grouped_shapes_name_the_construct() {
        let c = cols();
        let err = |sql: &str| parse(sql, &c).unwrap_err();
        assert!(err("SELECT p.name FROM part p JOIN (SELECT part_id, sum(qty) AS s FROM line GROUP BY part_id) t ON t.s > p.id")
            .contains("GROUP BY part_id not joined"));
        assert!(err(
            "SELECT t.s FROM (SELECT part_id, sum(qty) AS s FROM line GROUP BY part_id) t"
        )
        .contains("only a subquery"));
        assert!(err("SELECT p.name FROM part p LEFT JOIN (SELECT part_id, sum(qty) AS s FROM line GROUP BY part_id) t ON t.part_id = p.id")
            .contains("outer join"));
        assert!(err("SELECT * FROM part p JOIN (SELECT part_id, sum(qty) AS s FROM line GROUP BY part_id) t ON t.part_id = p.id")
            .contains("list the columns"));
        assert!(err("SELECT p.name FROM part p JOIN (SELECT part_id, sum(qty) AS s FROM line GROUP BY part_id + 1) t ON t.part_id = p.id")
            .contains("GROUP BY other than columns"));
        assert!(err(
            "SELECT p.name FROM part p, (SELECT sum(qty) AS s FROM line HAVING sum(qty) > 3) t"
        )
        .contains("HAVING without GROUP BY"));
        assert!(err("SELECT p.name, t.q FROM part p JOIN (SELECT id, qty AS q, count(*) AS n FROM line GROUP BY id) t ON t.id = p.id")
            .contains("neither grouped nor aggregated"));
        assert!(err("SELECT p.name FROM part p, (SELECT part_id, sum(qty) AS s FROM line GROUP BY part_id) t WHERE t.part_id = extract(day FROM now())")
            .contains("now()"));
        assert!(err("SELECT p.id FROM part p WHERE p.id NOT IN (SELECT part_id FROM line GROUP BY part_id HAVING count(*) > 2)")
            .contains("GROUP BY, HAVING"));
    }
}
