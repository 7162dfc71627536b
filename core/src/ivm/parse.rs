//! From SQL text to the shape the single-source operators maintain:
//! `SELECT [DISTINCT] items FROM table [alias] [WHERE p] [GROUP BY keys] [HAVING h]`.
//! Anything else is refused with the construct named, so AUTO can fall back to FULL saying why
//! and DIFFERENTIAL can fail saying what is missing.

use super::expr::{contains_aggregate, unsupported_construct};
use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, SelectItem, SetExpr,
    Statement, TableFactor, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// A defining query the differential engine can maintain.
#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub distinct: bool,
    /// Output expressions, one per output column (`*` expanded).
    pub items: Vec<Expr>,
    /// The tables in FROM, in order: name as written and the alias column references may be
    /// qualified with (the alias, or the table's own name).
    pub from: Vec<FromTable>,
    /// How each table after the first is joined to the ones before it (empty for one table).
    pub joins: Vec<Join>,
    pub filter: Option<Expr>,
    /// GROUP BY expressions (ordinals and output-name references resolved).
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    /// Whether the query aggregates (GROUP BY, HAVING or an aggregate call).
    pub aggregates: bool,
    /// For `UNION [ALL]`: its branches (`from` is then all their tables, in order, and `items`
    /// the union's columns).
    pub branches: Vec<QuerySpec>,
    /// Scalar subqueries, rewritten as factors of the join: the last `scalars.len()` entries of
    /// `from` are their tables (see [`super::scalar`]).
    pub scalars: Vec<super::scalar::Scalar>,
    /// `INTERSECT ALL` / `EXCEPT ALL` of the two `branches`.
    pub set_all: Option<super::setop::SetAll>,
}

/// A table of the FROM clause.
#[derive(Debug, Clone)]
pub struct FromTable {
    /// The table's name as written (possibly schema-qualified).
    pub name: String,
    pub alias: String,
}

/// How a table is joined to the tables before it.
#[derive(Debug, Clone)]
pub enum Join {
    /// `[INNER] JOIN b ON cond`.
    On(Box<Expr>),
    /// `, b` or `CROSS JOIN b` (conditions, if any, are in WHERE).
    Cross,
    /// `LEFT|RIGHT|FULL [OUTER] JOIN b ON cond` (two tables).
    Outer(super::outer::OuterKind, Box<Expr>),
    /// `WHERE [NOT] EXISTS (SELECT ... FROM b WHERE cond)` or `WHERE x IN (SELECT y FROM b ...)`
    /// (as `EXISTS (... WHERE cond AND y = x)`): the first table's rows with (or without) a
    /// partner in b. b's columns are not part of the output.
    Semi(super::outer::Keep, Box<Expr>),
}

/// The most tables a differential inner join reads (one delta variant per table; outer joins
/// are two tables).
pub const MAX_JOIN_TABLES: usize = 8;

pub use super::unsupported::Unsupported;

const SET_RETURNING: &[&str] = &[
    "unnest",
    "generate_series",
    "generate_subscripts",
    "regexp_matches",
    "regexp_split_to_table",
    "string_to_table",
    "json_array_elements",
    "jsonb_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements_text",
    "json_each",
    "jsonb_each",
    "json_each_text",
    "jsonb_each_text",
    "json_object_keys",
    "jsonb_object_keys",
    "jsonb_path_query",
];

fn check_expr(e: &Expr) -> Result<(), Unsupported> {
    if let Some(what) = unsupported_construct(e) {
        return Err(what.into());
    }
    let srf = sqlparser::ast::visit_expressions(e, |x| match x {
        Expr::Function(f) if SET_RETURNING.contains(&super::expr::function_name(f).as_str()) => {
            std::ops::ControlFlow::Break(super::expr::function_name(f))
        }
        _ => std::ops::ControlFlow::Continue(()),
    });
    if let std::ops::ControlFlow::Break(name) = srf {
        return Err(format!("set-returning function {name}() in the select list").into());
    }
    Ok(())
}

fn qualified(alias: &str, column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![
        Ident::with_quote('"', alias),
        Ident::with_quote('"', column),
    ])
}

pub(super) fn from_table(f: &TableFactor) -> Result<FromTable, Unsupported> {
    match f {
        TableFactor::Table {
            name,
            alias,
            args: None,
            sample: None,
            ..
        } => {
            let own = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| {
                    if i.quote_style.is_some() {
                        i.value.clone()
                    } else {
                        i.value.to_ascii_lowercase()
                    }
                })
                .unwrap_or_default();
            let alias = match alias {
                Some(a) if !a.columns.is_empty() => {
                    return Err("a table alias with column names".into())
                }
                Some(a) => {
                    if a.name.quote_style.is_some() {
                        a.name.value.clone()
                    } else {
                        a.name.value.to_ascii_lowercase()
                    }
                }
                None => own,
            };
            Ok(FromTable {
                name: name.to_string(),
                alias,
            })
        }
        TableFactor::Derived { .. } => {
            Err("a subquery in FROM (supported in a later version)".into())
        }
        TableFactor::Table { args: Some(_), .. } | TableFactor::Function { .. } => {
            Err("a function in FROM".into())
        }
        _ => Err("this kind of FROM item".into()),
    }
}

/// The columns a differential refresh looks rows up by: for every equality of a join, outer
/// join or EXISTS/IN condition whose side is a bare column, (index of its table in FROM order,
/// column name). An index whose first column is one of these keeps the delta O(changes).
/// `source_columns` are the FROM tables' columns (as for [`parse`]; empty when unknown, in which
/// case bare names inside a scalar subquery are taken as its own table's).
pub fn lookup_columns(sql: &str, source_columns: &[Vec<String>]) -> Vec<(usize, String)> {
    let Ok(spec) = parse(sql, source_columns) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_lookups(&spec, 0, &mut out);
    out
}

fn collect_lookups(spec: &QuerySpec, offset: usize, out: &mut Vec<(usize, String)>) {
    if !spec.branches.is_empty() {
        let mut o = offset;
        for b in &spec.branches {
            collect_lookups(b, o, out);
            o += b.from.len();
        }
        return;
    }
    let fold = |i: &Ident| {
        if i.quote_style.is_some() {
            i.value.clone()
        } else {
            i.value.to_ascii_lowercase()
        }
    };
    // A scalar subquery's table is looked up by its correlation columns.
    let n_real = spec.from.len() - spec.scalars.len();
    for (k, sc) in spec.scalars.iter().enumerate() {
        for (col, _) in &sc.keys {
            let entry = (offset + n_real + k, col.clone());
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
    }
    for (k, j) in spec.joins.iter().enumerate() {
        let (cond, semi) = match j {
            Join::On(c) | Join::Outer(_, c) => (c, false),
            Join::Semi(_, c) => (c, true),
            Join::Cross => continue,
        };
        let mut parts = Vec::new();
        top_conjuncts(cond, &mut parts);
        for p in parts {
            let Expr::BinaryOp {
                left,
                op: sqlparser::ast::BinaryOperator::Eq,
                right,
            } = p
            else {
                continue;
            };
            for side in [left.as_ref(), right.as_ref()] {
                let mut e = side;
                while let Expr::Nested(inner) = e {
                    e = inner;
                }
                let found = match e {
                    Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                        let table = fold(&parts[parts.len() - 2]);
                        spec.from
                            .iter()
                            .position(|t| t.alias == table)
                            .map(|i| (i, fold(&parts[parts.len() - 1])))
                    }
                    // Unqualified inside an EXISTS/IN subquery: the subquery's table.
                    Expr::Identifier(i) if semi => Some((k + 1, fold(i))),
                    _ => None,
                };
                if let Some((i, col)) = found {
                    let entry = (offset + i, col);
                    if !out.contains(&entry) {
                        out.push(entry);
                    }
                }
            }
        }
    }
}

/// Whether the query's outermost level has ORDER BY without LIMIT/OFFSET/FETCH: a table keeps no
/// row order, so such an ORDER BY has no effect on a stream table.
pub fn orders_without_limit(sql: &str) -> bool {
    match Parser::parse_sql(&PostgreSqlDialect {}, sql).as_deref() {
        Ok([Statement::Query(q)]) => {
            q.order_by.is_some() && q.limit_clause.is_none() && q.fetch.is_none()
        }
        _ => false,
    }
}

/// The tables a query's FROM clause names, in order (to look up their columns before [`parse`]).
pub fn from_tables(sql: &str) -> Result<Vec<FromTable>, Unsupported> {
    if let Some(rec) = super::recursive::Recursive::parse(sql) {
        return Ok(rec?
            .tables
            .into_iter()
            .map(|name| FromTable {
                alias: name.clone(),
                name,
            })
            .collect());
    }
    parse(sql, &[]).map(|q| q.from)
}

/// Parses `sql`. `source_columns` are the columns of each FROM table, in FROM order (to expand
/// `*`); the tables themselves are found with [`from_tables`] first.
pub fn parse(sql: &str, source_columns: &[Vec<String>]) -> Result<QuerySpec, Unsupported> {
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| format!("syntax pg_trickle's parser does not understand ({e})"))?;
    let mut stmts = stmts;
    let [Statement::Query(q)] = stmts.as_mut_slice() else {
        return Err("more than one statement".into());
    };
    super::passes::checked(super::passes::Pass::Inline, q, super::inline::inline)?;
    let q: &sqlparser::ast::Query = q;
    if q.limit_clause.is_some() || q.fetch.is_some() {
        return Err("LIMIT/OFFSET/FETCH (top-k, supported in a later version)".into());
    }
    if !q.locks.is_empty() {
        return Err("FOR UPDATE/SHARE".into());
    }
    let select = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { .. } => return parse_union(q.body.as_ref(), source_columns),
        SetExpr::Values(_) => return Err("VALUES without a source table".into()),
        _ => return Err("a query that is not a plain SELECT".into()),
    };
    parse_select(select, source_columns)
}

/// The branches of `a UNION [ALL] b UNION [ALL] ...` and whether duplicates are removed.
fn union_branches<'a>(
    body: &'a SetExpr,
    out: &mut Vec<&'a sqlparser::ast::Select>,
    distinct: &mut Option<bool>,
) -> Result<(), Unsupported> {
    use sqlparser::ast::{SetOperator, SetQuantifier};
    match body {
        SetExpr::Select(s) => {
            out.push(s);
            Ok(())
        }
        SetExpr::Query(q)
            if q.with.is_none()
                && q.order_by.is_none()
                && q.limit_clause.is_none()
                && q.fetch.is_none() =>
        {
            union_branches(&q.body, out, distinct)
        }
        SetExpr::SetOperation {
            op: SetOperator::Union,
            set_quantifier,
            left,
            right,
        } => {
            let d = match set_quantifier {
                SetQuantifier::All => false,
                SetQuantifier::None | SetQuantifier::Distinct => true,
                _ => return Err("UNION BY NAME".into()),
            };
            if distinct.is_some_and(|x| x != d) {
                return Err("UNION mixed with UNION ALL (supported in a later version)".into());
            }
            *distinct = Some(d);
            union_branches(left, out, distinct)?;
            union_branches(right, out, distinct)
        }
        SetExpr::SetOperation { op, .. } => {
            Err(format!("{op} (supported in a later version)").into())
        }
        _ => Err("a UNION branch that is not a plain SELECT".into()),
    }
}

/// `q1 UNION ALL q2 ...` (a multiset) or `q1 UNION q2 ...` (DISTINCT over it): branches without
/// aggregation, each any shape [`parse_select`] takes; the union's columns are `__pgt_u.__pgt_u<i>`.
fn parse_union(body: &SetExpr, source_columns: &[Vec<String>]) -> Result<QuerySpec, Unsupported> {
    use sqlparser::ast::{SetOperator, SetQuantifier};
    if let SetExpr::SetOperation {
        op: op @ (SetOperator::Intersect | SetOperator::Except),
        set_quantifier,
        left,
        right,
    } = body
    {
        let all = match set_quantifier {
            SetQuantifier::None | SetQuantifier::Distinct => false,
            SetQuantifier::All => true,
            _ => {
                return Err(format!("{op} {set_quantifier} (supported in a later version)").into())
            }
        };
        let intersect = *op == SetOperator::Intersect;
        return parse_intersect_except(intersect, all, left, right, source_columns);
    }
    let mut selects = Vec::new();
    let mut distinct = None;
    union_branches(body, &mut selects, &mut distinct)?;
    let mut branches = Vec::new();
    let mut offset = 0;
    for s in selects {
        let n = parse_select(s, &[])?.from.len();
        let cols = source_columns.get(offset..offset + n).unwrap_or(&[]);
        let b = parse_select(s, cols)?;
        if !b.scalars.is_empty() {
            return Err(
                "a scalar subquery inside a UNION branch (supported in a later version)".into(),
            );
        }
        if b.aggregates || b.distinct {
            return Err(
                "aggregation or DISTINCT inside a UNION branch (supported in a later version)"
                    .into(),
            );
        }
        offset += n;
        branches.push(b);
    }
    let width = branches[0].items.len();
    if !source_columns.is_empty() && branches.iter().any(|b| b.items.len() != width) {
        return Err("UNION branches with different numbers of columns".into());
    }
    Ok(set_spec(branches, width, distinct.unwrap_or(true), None))
}

/// The query over set-operation branches: the union's columns `__pgt_u.__pgt_u<i>` and every
/// branch's tables.
fn set_spec(
    branches: Vec<QuerySpec>,
    width: usize,
    distinct: bool,
    set_all: Option<super::setop::SetAll>,
) -> QuerySpec {
    QuerySpec {
        distinct,
        items: (1..=width)
            .map(|i| qualified(UNION_ALIAS, &format!("{UNION_ALIAS}{i}")))
            .collect(),
        from: branches.iter().flat_map(|b| b.from.clone()).collect(),
        joins: Vec::new(),
        filter: None,
        group_by: Vec::new(),
        having: None,
        aggregates: false,
        branches,
        scalars: Vec::new(),
        set_all,
    }
}

/// `a INTERSECT b` / `a EXCEPT b` (without ALL): the union of both branches, each row tagged
/// with its side, grouped by all columns, kept while both sides have it (INTERSECT) or only the
/// first does (EXCEPT): `HAVING count(*) FILTER (WHERE tag = 1) > 0 AND count(*) FILTER (WHERE tag
/// = 2) > 0 | = 0`. The Aggregate rule maintains the two counts as hidden columns; the visible
/// columns are exactly the query's.
fn parse_intersect_except(
    intersect: bool,
    all: bool,
    left: &SetExpr,
    right: &SetExpr,
    source_columns: &[Vec<String>],
) -> Result<QuerySpec, Unsupported> {
    let mut selects = Vec::new();
    for side in [left, right] {
        let mut one = Vec::new();
        let mut d = None;
        union_branches(side, &mut one, &mut d)?;
        if one.len() != 1 {
            return Err("INTERSECT/EXCEPT over a UNION (supported in a later version)".into());
        }
        selects.push(one[0]);
    }
    let mut branches = Vec::new();
    let mut offset = 0;
    for (tag, s) in selects.into_iter().enumerate() {
        let n = parse_select(s, &[])?.from.len();
        let cols = source_columns.get(offset..offset + n).unwrap_or(&[]);
        let mut b = parse_select(s, cols)?;
        if !b.scalars.is_empty() {
            return Err(
                "a scalar subquery inside an INTERSECT/EXCEPT branch (supported in a later version)"
                    .into(),
            );
        }
        if b.aggregates || b.distinct {
            return Err(
                "aggregation or DISTINCT inside an INTERSECT/EXCEPT branch (supported in a later version)"
                    .into(),
            );
        }
        if !all {
            b.items.push(Expr::Value(
                Value::Number((tag + 1).to_string(), false).into(),
            ));
        }
        offset += n;
        branches.push(b);
    }
    if all {
        // INTERSECT ALL / EXCEPT ALL: a multiset maintained by super::setop.
        let width = branches[0].items.len();
        if !source_columns.is_empty() && branches[1].items.len() != width {
            return Err("INTERSECT/EXCEPT branches with different numbers of columns".into());
        }
        let op = if intersect {
            super::setop::SetAll::Intersect
        } else {
            super::setop::SetAll::Except
        };
        return Ok(set_spec(branches, width, false, Some(op)));
    }
    let width = branches[0].items.len() - 1;
    let col = |i: usize| qualified(UNION_ALIAS, &format!("{UNION_ALIAS}{i}"));
    let items: Vec<Expr> = (1..=width).map(col).collect();
    let tag = col(width + 1);
    let having = format!(
        "count(*) FILTER (WHERE {tag} = 1) > 0 AND count(*) FILTER (WHERE {tag} = 2) {}",
        if intersect { "> 0" } else { "= 0" }
    );
    let having = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&having)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("internal: {e}"))?;
    Ok(QuerySpec {
        distinct: false,
        group_by: items.clone(),
        items,
        from: branches.iter().flat_map(|b| b.from.clone()).collect(),
        joins: Vec::new(),
        filter: None,
        having: Some(having),
        aggregates: true,
        branches,
        scalars: Vec::new(),
        set_all: None,
    })
}

/// An identifier as PostgreSQL folds it (unquoted: lower case).
fn fold_ident(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

/// The alias of a union's rows, and the prefix of its columns.
pub const UNION_ALIAS: &str = "__pgt_u";

/// One SELECT (a query, or a branch of a UNION).
fn parse_select(
    select: &sqlparser::ast::Select,
    source_columns: &[Vec<String>],
) -> Result<QuerySpec, Unsupported> {
    let distinct =
        match &select.distinct {
            None => false,
            Some(Distinct::Distinct) => true,
            Some(Distinct::On(_)) => return Err(Unsupported::new("DISTINCT ON").hint(
                "GROUP BY the DISTINCT ON columns with an aggregate (min, max, ...) of each other \
                 column, when that is the row wanted.",
            )),
        };
    if select.into.is_some() || select.top.is_some() {
        return Err("SELECT INTO/TOP".into());
    }
    if !select.named_window.is_empty() || select.qualify.is_some() {
        return Err("a WINDOW clause".into());
    }
    // Subqueries in FROM with an aggregating body become factors after the tables (their ON
    // conditions join the WHERE terms their keys are bound from).
    let mut grouped: Vec<(super::scalar::Scalar, FromTable)> = Vec::new();
    let mut grouped_at: Vec<usize> = Vec::new();
    let mut position = 0;
    let mut factor = |f: &TableFactor| -> Result<FromTable, Unsupported> {
        position += 1;
        match super::scalar::grouped_factor(f, grouped.len() + 1) {
            Some(g) => {
                let g = g?;
                let placeholder = g.1.clone();
                grouped.push(g);
                grouped_at.push(position - 1);
                Ok(placeholder)
            }
            None => from_table(f),
        }
    };
    let (from, joins) = match select.from.as_slice() {
        [] => return Err("a query without FROM".into()),
        [twj] => {
            let mut from = vec![factor(&twj.relation)?];
            let mut joins = Vec::new();
            for j in &twj.joins {
                use super::outer::OuterKind;
                let (cond, outer) = match &j.join_operator {
                    JoinOperator::Inner(c) | JoinOperator::Join(c) | JoinOperator::CrossJoin(c) => {
                        (c, None)
                    }
                    JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => {
                        (c, Some(OuterKind::Left))
                    }
                    JoinOperator::Right(c) | JoinOperator::RightOuter(c) => {
                        (c, Some(OuterKind::Right))
                    }
                    JoinOperator::FullOuter(c) => (c, Some(OuterKind::Full)),
                    _ => return Err("this kind of join".into()),
                };
                joins.push(match cond {
                    JoinConstraint::On(e) => {
                        check_expr(e)?;
                        match outer {
                            Some(kind) => Join::Outer(kind, Box::new(e.clone())),
                            None => Join::On(Box::new(e.clone())),
                        }
                    }
                    JoinConstraint::None if outer.is_some() => {
                        return Err("an outer join without ON".into())
                    }
                    JoinConstraint::None => Join::Cross,
                    JoinConstraint::Using(_) => {
                        return Err("JOIN ... USING (write the condition with ON)".into())
                    }
                    JoinConstraint::Natural => return Err("NATURAL JOIN".into()),
                });
                from.push(factor(&j.relation)?);
            }
            (from, joins)
        }
        items => {
            let mut from = Vec::new();
            for twj in items {
                if !twj.joins.is_empty() {
                    return Err("JOIN mixed with a comma-separated FROM list".into());
                }
                from.push(factor(&twj.relation)?);
            }
            let joins = vec![Join::Cross; from.len() - 1];
            (from, joins)
        }
    };
    let mut where_extra: Vec<Expr> = Vec::new();
    let (from, joins) = if grouped.is_empty() {
        (from, joins)
    } else {
        if joins.iter().any(|j| matches!(j, Join::Outer(..))) {
            return Err(
                "a subquery in FROM with aggregation next to an outer join (supported in a later version)"
                    .into(),
            );
        }
        for j in &joins {
            if let Join::On(c) = j {
                where_extra.push((**c).clone());
            }
        }
        let real: Vec<FromTable> = from
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !grouped_at.contains(i))
            .map(|(_, t)| t)
            .collect();
        if real.is_empty() {
            return Err(
                "a query whose FROM is only a subquery with aggregation (supported in a later version)"
                    .into(),
            );
        }
        let joins = vec![Join::Cross; real.len() - 1];
        (real, joins)
    };
    if from.len() > MAX_JOIN_TABLES {
        return Err(Unsupported::new(format!(
            "a join of more than {MAX_JOIN_TABLES} tables (supported in a later version)"
        ))
        .hint("Split the join: a stream table over part of it, read by another stream table."));
    }
    let (mut from, mut joins) = (from, joins);
    let mut selection = select.selection.clone();
    for e in where_extra {
        selection = Some(match selection {
            Some(w) => Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(w))),
                op: sqlparser::ast::BinaryOperator::And,
                right: Box::new(Expr::Nested(Box::new(e))),
            },
            None => e,
        });
    }
    // The FROM table of a bare column on the left of [NOT] IN (evaluated in the outer query).
    let owner = ColumnOwner {
        aliases: from.iter().map(|t| t.alias.clone()).collect(),
        columns: source_columns.get(..from.len()).unwrap_or(&[]).to_vec(),
    };
    // NOT IN (subquery) becomes scalar subqueries (its NULL semantics need the counts).
    if let Some(w) = &selection {
        selection = Some(super::scalar::rewrite_not_in(w, &owner)?);
    }
    if let Some(w) = &selection.clone() {
        let mut parts = Vec::new();
        top_conjuncts(w, &mut parts);
        let (subs, rest): (Vec<Expr>, Vec<Expr>) = parts.into_iter().partition(is_subquery_test);
        if !subs.is_empty() {
            if subs.len() > 1 {
                return Err(
                    "more than one EXISTS/IN subquery (supported in a later version)".into(),
                );
            }
            let (table, keep, cond) = semi_join(&subs[0], &owner)?;
            if from.iter().any(|t| t.alias == table.alias) {
                return Err(
                    "an EXISTS/IN subquery whose table has an outer table's name (give it an alias)"
                        .into(),
                );
            }
            from.push(table);
            joins.push(Join::Semi(keep, Box::new(cond)));
            // Each term parenthesized: the AST prints operators without parentheses (an OR
            // term would otherwise bind its neighbours).
            selection = rest.into_iter().reduce(|a, b| Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(a))),
                op: sqlparser::ast::BinaryOperator::And,
                right: Box::new(Expr::Nested(Box::new(b))),
            });
        }
    }
    // A semi-joined table's columns are not part of `*`.
    let visible_tables = if matches!(joins.last(), Some(Join::Semi(..))) {
        from.len() - 1
    } else {
        from.len()
    };
    // Grouped subqueries' keys are bound to the expressions WHERE equates them with.
    if !grouped.is_empty() {
        if matches!(joins.last(), Some(Join::Semi(..))) {
            return Err(
                "a subquery in FROM with aggregation next to an EXISTS/IN subquery (supported in a later version)"
                    .into(),
            );
        }
        let mut terms = Vec::new();
        if let Some(w) = &selection {
            top_conjuncts(w, &mut terms);
        }
        let aliases: Vec<String> = grouped.iter().map(|(s, _)| s.alias.clone()).collect();
        // `d.k = x` with x a bare column of one FROM table (as PostgreSQL resolves it: no
        // grouped subquery has an output of that name): qualified, so it binds d's key.
        let outputs: Vec<String> = grouped
            .iter()
            .flat_map(|(s, _)| s.outputs.iter().map(|(n, _)| n.clone()))
            .collect();
        for t in terms.iter_mut() {
            let Expr::BinaryOp {
                left,
                op: sqlparser::ast::BinaryOperator::Eq,
                right,
            } = t
            else {
                continue;
            };
            let is_grouped_ref = |e: &Expr| matches!(e, Expr::CompoundIdentifier(p) if p.len() == 2 && aliases.contains(&fold_ident(&p[0])));
            let bare = if is_grouped_ref(left) {
                right
            } else if is_grouped_ref(right) {
                left
            } else {
                continue;
            };
            let mut e: &mut Expr = bare;
            while let Expr::Nested(inner) = e {
                e = inner;
            }
            if let Expr::Identifier(i) = e {
                let col = fold_ident(i);
                // (Without the tables' columns, only the FROM list is being read: any owner.)
                let known = |a: &&str| owner.columns.is_empty() || owner.has(a, &col);
                if let Some(alias) = owner.of(&col).filter(known) {
                    if !outputs.contains(&col) {
                        *e = Expr::CompoundIdentifier(vec![
                            Ident::with_quote('"', alias),
                            Ident::with_quote('"', &col),
                        ]);
                    }
                }
            }
        }
        for (sc, _) in grouped.iter_mut() {
            super::scalar::bind_keys(sc, &mut terms, &aliases)?;
        }
        selection = terms.into_iter().reduce(|a, b| Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(a))),
            op: sqlparser::ast::BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(b))),
        });
    }
    // Scalar subqueries become factors of the join, after the FROM tables.
    let mut found = grouped;
    let mut projection = select.projection.clone();
    let mut scalar_in_items = false;
    {
        let n_from = from.len();
        let outer = super::scalar::Outer {
            from: &from,
            columns: source_columns.get(..n_from).unwrap_or(&[]),
        };
        let body_columns = |k: usize| source_columns.get(n_from + k).cloned();
        if let Some(w) = &selection {
            selection = Some(super::scalar::extract(
                w,
                &outer,
                &body_columns,
                &mut found,
            )?);
        }
        for item in projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                let before = found.len();
                *e = super::scalar::extract(e, &outer, &body_columns, &mut found)?;
                scalar_in_items |= found.len() > before;
            }
        }
    }
    if !found.is_empty()
        && joins
            .iter()
            .any(|j| matches!(j, Join::Semi(..) | Join::Outer(..)))
    {
        return Err(
            "a scalar subquery next to an outer join or an EXISTS/IN subquery (supported in a later version)"
                .into(),
        );
    }
    let n_real = from.len();
    let mut scalars = Vec::new();
    for (sc, table) in found {
        from.push(table);
        scalars.push(sc);
    }
    for (i, t) in from.iter().enumerate() {
        if from[..i].iter().any(|o| o.alias == t.alias) {
            return Err("two FROM items with the same name (give one an alias)".into());
        }
    }
    let mut items = Vec::new();
    for item in &projection {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                check_expr(e)?;
                items.push(e.clone());
            }
            SelectItem::Wildcard(opts) | SelectItem::QualifiedWildcard(_, opts)
                if opts.opt_exclude.is_some()
                    || opts.opt_except.is_some()
                    || opts.opt_replace.is_some()
                    || opts.opt_rename.is_some() =>
            {
                return Err("this kind of select-list item".into());
            }
            SelectItem::Wildcard(_) if n_real < from.len() => {
                return Err("`*` in a query with a subquery (list the columns)".into());
            }
            SelectItem::Wildcard(_) => {
                for (t, cols) in from.iter().take(visible_tables).zip(source_columns) {
                    items.extend(cols.iter().map(|c| qualified(&t.alias, c)));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let name = kind.to_string();
                let name = name.trim_end_matches(".*");
                let Some(i) = from.iter().position(|t| {
                    t.alias == name.trim_matches('"') || t.alias.eq_ignore_ascii_case(name)
                }) else {
                    return Err(format!("{name}.* that pg_trickle cannot resolve").into());
                };
                if i >= n_real {
                    return Err(format!("{name}.* over a subquery (list the columns)").into());
                }
                items.extend(
                    source_columns
                        .get(i)
                        .into_iter()
                        .flatten()
                        .map(|c| qualified(&from[i].alias, c)),
                );
            }
        }
    }
    let output_names: Vec<Option<String>> = projection
        .iter()
        .map(|i| match i {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            _ => None,
        })
        .collect();
    let group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
            let mut keys = Vec::new();
            for e in exprs {
                if matches!(e, Expr::GroupingSets(_) | Expr::Rollup(_) | Expr::Cube(_)) {
                    return Err("GROUPING SETS/ROLLUP/CUBE (supported in a later version)".into());
                }
                check_expr(e)?;
                keys.push(resolve_group_key(
                    e,
                    &items,
                    &output_names,
                    &source_columns
                        .get(..n_real)
                        .unwrap_or(source_columns)
                        .concat(),
                )?);
            }
            keys
        }
        _ => return Err("GROUP BY ALL or a GROUP BY modifier".into()),
    };
    if let Some(w) = &selection {
        check_expr(w)?;
        if contains_aggregate(w) {
            return Err("an aggregate in WHERE".into());
        }
    }
    if let Some(h) = &select.having {
        let subquery = sqlparser::ast::visit_expressions(h, |x| match x {
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                std::ops::ControlFlow::Break(())
            }
            _ => std::ops::ControlFlow::Continue(()),
        })
        .is_break();
        if subquery {
            return Err("a subquery in HAVING (supported in a later version)".into());
        }
        check_expr(h)?;
    }
    let aggregates =
        !group_by.is_empty() || select.having.is_some() || items.iter().any(contains_aggregate);
    if aggregates && scalar_in_items {
        return Err(
            "a scalar subquery in the select list of an aggregating query (supported in a later version)"
                .into(),
        );
    }
    // Each keyed subquery's scope: the outer WHERE's own conditions on the table its key reads.
    if let Some(w) = &selection {
        let mut terms = Vec::new();
        top_conjuncts(w, &mut terms);
        for sc in scalars.iter_mut() {
            sc.scope = super::scalar::scope_of(sc, &terms, &owner, &from[..n_real]);
        }
    }
    Ok(QuerySpec {
        distinct,
        items,
        from,
        joins,
        filter: selection,
        group_by,
        having: select.having.clone(),
        aggregates,
        branches: Vec::new(),
        scalars,
        set_all: None,
    })
}

pub(super) fn top_conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: sqlparser::ast::BinaryOperator::And,
            right,
        } => {
            top_conjuncts(left, out);
            top_conjuncts(right, out);
        }
        Expr::Nested(inner) => top_conjuncts(inner, out),
        _ => out.push(e.clone()),
    }
}

fn is_subquery_test(e: &Expr) -> bool {
    match e {
        Expr::Exists { .. } | Expr::InSubquery { .. } => true,
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Not,
            expr,
        } => is_subquery_test(expr),
        Expr::Nested(inner) => is_subquery_test(inner),
        _ => false,
    }
}

/// `[NOT] EXISTS (SELECT ... FROM t [WHERE c])` or `x IN (SELECT y FROM t [WHERE c])`: the
/// table, which rows it keeps, and the partner condition (`c AND y = x` for IN).
/// Which FROM table (by alias) a bare column of the outer query belongs to: the only one, or in
/// a join the only one with a column of that name (`columns`: each table's, in FROM order).
/// Without columns ([`from_tables`], which only wants the tables) a join's bare column is
/// given the first table: the conditions built from it are not used.
pub struct ColumnOwner {
    pub aliases: Vec<String>,
    pub columns: Vec<Vec<String>>,
}

impl ColumnOwner {
    pub fn of(&self, column: &str) -> Option<&str> {
        if let [only] = self.aliases.as_slice() {
            return Some(only);
        }
        if self.columns.is_empty() {
            return self.aliases.first().map(String::as_str);
        }
        let mut owners = self
            .columns
            .iter()
            .zip(&self.aliases)
            .filter(|(cols, _)| cols.iter().any(|c| c == column));
        match (owners.next(), owners.next()) {
            (Some((_, alias)), None) => Some(alias),
            _ => None,
        }
    }

    /// Whether table `alias` is known to have `column` (false when the columns are unknown).
    pub fn has(&self, alias: &str, column: &str) -> bool {
        self.aliases
            .iter()
            .zip(&self.columns)
            .any(|(a, cols)| a == alias && cols.iter().any(|c| c == column))
    }
}

fn semi_join(
    e: &Expr,
    owner: &ColumnOwner,
) -> Result<(FromTable, super::outer::Keep, Expr), Unsupported> {
    use super::outer::Keep;
    let (sub, keep, lhs) = match e {
        Expr::Exists { subquery, negated } => (
            subquery,
            if *negated {
                Keep::WithoutPartner
            } else {
                Keep::WithPartner
            },
            None,
        ),
        Expr::InSubquery {
            expr,
            subquery,
            negated: false,
        } => (subquery, Keep::WithPartner, Some(expr.as_ref())),
        Expr::InSubquery { negated: true, .. } => {
            unreachable!("NOT IN is rewritten as scalar subqueries first")
        }
        Expr::UnaryOp { expr, .. } => {
            return match expr.as_ref() {
                Expr::Exists {
                    subquery,
                    negated: false,
                } => semi_join(
                    &Expr::Exists {
                        subquery: subquery.clone(),
                        negated: true,
                    },
                    owner,
                ),
                _ => Err("NOT applied to an IN subquery (write NOT EXISTS)".into()),
            };
        }
        Expr::Nested(inner) => return semi_join(inner, owner),
        _ => unreachable!("is_subquery_test"),
    };
    let bad = |what: &str| -> Unsupported {
        format!("an EXISTS/IN subquery with {what} (supported in a later version)").into()
    };
    let (s, table) = one_table_body(sub, &bad)?;
    let mut conds: Vec<Expr> = s.selection.iter().cloned().collect();
    if let Some(lhs) = lhs {
        let outputs: Vec<&Expr> = s
            .projection
            .iter()
            .map(|i| match i {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Ok(e),
                _ => Err(bad("`*` in its select list")),
            })
            .collect::<Result<_, _>>()?;
        let lefts: Vec<&Expr> = match lhs {
            Expr::Tuple(items) => items.iter().collect(),
            other => vec![other],
        };
        if lefts.len() != outputs.len() {
            return Err(bad("a column count that does not match"));
        }
        for (l, r) in lefts.into_iter().zip(outputs) {
            if contains_aggregate(r) {
                return Err(bad("an aggregate"));
            }
            // The left side of IN is evaluated in the outer query: its bare columns are the
            // outer tables', even where the subquery's table has a column of the same name (in
            // a join, the one outer table with a column of that name).
            let bare = std::cell::Cell::new(false);
            let l = &super::expr::substitute(l, &|x| match x {
                Expr::Identifier(i) => {
                    let name = if i.quote_style.is_some() {
                        i.value.clone()
                    } else {
                        i.value.to_ascii_lowercase()
                    };
                    let Some(alias) = owner.of(&name) else {
                        bare.set(true);
                        return None;
                    };
                    Some(qualified(alias, &name))
                }
                _ => None,
            });
            if bare.get() {
                return Err(bad(
                    "an unqualified column on the left of IN in a join that is not one table's (qualify it)",
                ));
            }
            conds.push(Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(r.clone()))),
                op: sqlparser::ast::BinaryOperator::Eq,
                right: Box::new(Expr::Nested(Box::new(l.clone()))),
            });
        }
    }
    let cond = conds
        .into_iter()
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(a))),
            op: sqlparser::ast::BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(b))),
        })
        .unwrap_or(Expr::Value(Value::Boolean(true).into()));
    check_expr(&cond)?;
    if contains_aggregate(&cond) {
        return Err(bad("an aggregate"));
    }
    Ok((table, keep, cond))
}

/// The body of a subquery that reads one table without grouping, `SELECT ... FROM t [WHERE
/// ...]`: its SELECT and its table. WITH, LIMIT, a set operation, GROUP BY, HAVING, DISTINCT and
/// more than one FROM item are refused through `bad`, which names the construct.
pub(super) fn one_table_body<'a>(
    q: &'a sqlparser::ast::Query,
    bad: &dyn Fn(&str) -> Unsupported,
) -> Result<(&'a sqlparser::ast::Select, FromTable), Unsupported> {
    if q.with.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return Err(bad("WITH or LIMIT"));
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return Err(bad("a set operation"));
    };
    let grouped = match &s.group_by {
        GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
        _ => true,
    };
    if grouped || s.having.is_some() || s.distinct.is_some() {
        return Err(bad("GROUP BY, HAVING or DISTINCT"));
    }
    match s.from.as_slice() {
        [twj] if twj.joins.is_empty() => Ok((s, from_table(&twj.relation)?)),
        _ => Err(bad("other than one table in FROM")),
    }
}

/// `GROUP BY 1` and `GROUP BY output_name` refer to select-list items (an input column of that
/// name wins, as in PostgreSQL).
fn resolve_group_key(
    e: &Expr,
    items: &[Expr],
    output_names: &[Option<String>],
    source_columns: &[String],
) -> Result<Expr, Unsupported> {
    match e {
        Expr::Value(v) => {
            if let Value::Number(n, _) = &v.value {
                let i: usize = n.parse().map_err(|_| "a GROUP BY position".to_string())?;
                return items
                    .get(i.wrapping_sub(1))
                    .cloned()
                    .ok_or_else(|| "a GROUP BY position out of range".into());
            }
            Ok(e.clone())
        }
        Expr::Identifier(id) => {
            let folded = if id.quote_style.is_some() {
                id.value.clone()
            } else {
                id.value.to_ascii_lowercase()
            };
            if source_columns.contains(&folded) {
                return Ok(e.clone());
            }
            match output_names.iter().position(|n| {
                n.as_deref().map(str::to_ascii_lowercase) == Some(id.value.to_ascii_lowercase())
            }) {
                Some(i) => Ok(items[i].clone()),
                None => Ok(e.clone()),
            }
        }
        _ => Ok(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Vec<String>> {
        vec![vec!["id".into(), "category".into(), "price".into()]]
    }

    #[test]
    fn an_or_next_to_a_subquery_test_keeps_its_parentheses() {
        let q = parse(
            "SELECT id FROM products p WHERE (p.price > 5 OR p.category = 'a') AND p.id > 1 \
             AND EXISTS (SELECT 1 FROM products q WHERE q.id = p.id)",
            &[cols()[0].clone(), cols()[0].clone()],
        )
        .unwrap();
        let f = q.filter.unwrap().to_string();
        assert_eq!(f, "(p.price > 5 OR p.category = 'a') AND (p.id > 1)");
    }

    #[test]
    fn parses_the_single_source_shape() {
        let q = parse(
            "SELECT category, count(*) AS n FROM products p WHERE price > 1 GROUP BY 1 HAVING count(*) > 1",
            &cols(),
        )
        .unwrap();
        assert_eq!(q.from[0].alias, "p");
        assert!(q.aggregates && !q.distinct);
        assert_eq!(q.group_by[0].to_string(), "category");
        assert_eq!(q.items.len(), 2);
        let star = parse("SELECT * FROM products", &cols()).unwrap();
        assert_eq!(star.items.len(), 3);
        assert_eq!(star.from[0].alias, "products");
        assert!(!star.aggregates);
    }

    #[test]
    fn order_by_without_limit() {
        assert!(orders_without_limit("SELECT a FROM t ORDER BY a"));
        assert!(!orders_without_limit("SELECT a FROM t ORDER BY a LIMIT 3"));
        assert!(!orders_without_limit(
            "SELECT a FROM (SELECT a FROM t ORDER BY a) s"
        ));
    }

    #[test]
    fn lookup_columns_are_the_join_keys() {
        assert_eq!(
            lookup_columns(
                "SELECT * FROM fact f JOIN dim d ON d.id = f.dim_id AND d.x > 1",
                &[]
            ),
            vec![(1, "id".to_string()), (0, "dim_id".to_string())]
        );
        assert_eq!(
            lookup_columns(
                "SELECT id FROM items i WHERE grp IN (SELECT code FROM cat)",
                &[]
            ),
            vec![(1, "code".to_string()), (0, "grp".to_string())]
        );
        assert_eq!(
            lookup_columns(
                "SELECT a FROM t UNION ALL SELECT x.a FROM t x LEFT JOIN u ON u.k = x.a",
                &[]
            ),
            vec![(2, "k".to_string()), (1, "a".to_string())]
        );
        // A scalar subquery's bare correlation resolves with the tables' columns.
        let cols = vec![
            vec!["id".to_string(), "name".to_string()],
            vec!["part_id".to_string(), "qty".to_string()],
        ];
        assert_eq!(
            lookup_columns(
                "SELECT p.name FROM part p WHERE 1 < (SELECT count(*) FROM line WHERE part_id = id)",
                &cols
            ),
            vec![(1, "part_id".to_string())]
        );
    }

    #[test]
    fn the_left_side_of_in_belongs_to_the_outer_table() {
        let cols = vec![
            vec!["id".to_string(), "name".to_string()],
            vec!["id".to_string(), "customer_id".to_string()],
        ];
        let q = parse(
            "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders)",
            &cols,
        )
        .unwrap();
        let Join::Semi(_, cond) = &q.joins[0] else {
            panic!("a semi-join")
        };
        assert_eq!(cond.to_string(), "(customer_id) = (\"customers\".\"id\")");
        assert_eq!(q.items.len(), 1);
        assert!(q.filter.is_none());
    }

    #[test]
    fn a_bare_column_left_of_in_belongs_to_the_one_joined_table_that_has_it() {
        let cols = vec![
            vec!["s_suppkey".to_string(), "s_nationkey".to_string()],
            vec!["n_nationkey".to_string(), "n_name".to_string()],
            vec!["ps_suppkey".to_string(), "ps_partkey".to_string()],
        ];
        let q = parse(
            "SELECT n_name FROM supplier, nation WHERE s_nationkey = n_nationkey \
               AND s_suppkey IN (SELECT ps_suppkey FROM partsupp)",
            &cols,
        )
        .unwrap();
        let Join::Semi(_, cond) = q.joins.last().unwrap() else {
            panic!("a semi-join")
        };
        assert_eq!(
            cond.to_string(),
            "(ps_suppkey) = (\"supplier\".\"s_suppkey\")"
        );
        // NOT IN the same way (rewritten as scalar subqueries over counts).
        let q = parse(
            "SELECT n_name FROM supplier, nation WHERE s_nationkey = n_nationkey \
               AND s_suppkey NOT IN (SELECT ps_suppkey FROM partsupp)",
            &cols,
        );
        assert!(q.is_ok(), "{q:?}");
        // A name two tables have, or one no table has, stays refused.
        let both = vec![
            vec!["id".to_string()],
            vec!["id".to_string()],
            vec!["id".to_string()],
        ];
        for sql in [
            "SELECT 1 FROM a, b WHERE id IN (SELECT id FROM c)",
            "SELECT 1 FROM a, b WHERE nowhere IN (SELECT id FROM c)",
        ] {
            let err = parse(sql, &both).unwrap_err();
            assert!(err.contains("not one table's"), "{sql}: {err}");
        }
    }

    #[test]
    fn a_keyed_subquery_is_scoped_by_the_outer_conditions_on_its_key_table() {
        let cols = vec![
            vec!["l_partkey".to_string(), "l_quantity".to_string()],
            vec!["p_partkey".to_string(), "p_brand".to_string()],
            vec!["l_partkey".to_string(), "l_quantity".to_string()],
        ];
        let q = parse(
            "SELECT sum(l_quantity) FROM lineitem, part WHERE p_partkey = l_partkey AND p_brand = 'B' \
               AND l_quantity > 1 AND l_quantity < (SELECT avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)",
            &cols,
        )
        .unwrap();
        let scope = q.scalars[0].scope.as_ref().expect("scoped");
        assert_eq!((scope.table, scope.alias.as_str()), (1, "part"));
        let conds: Vec<String> = scope.conds.iter().map(|c| c.to_string()).collect();
        assert_eq!(conds, ["p_brand = 'B'"]);
        // A bare name the key's table does not have (a grouped subquery's output) is not a
        // condition on it.
        let grouped_cols = vec![
            vec!["code".to_string(), "weight".to_string()],
            vec!["grp".to_string(), "qty".to_string()],
        ];
        let q = parse(
            "SELECT c.code, t.tq FROM cat c JOIN (SELECT grp, sum(qty) AS tq FROM items GROUP BY grp) t \
               ON t.grp = c.code WHERE c.weight > 3 AND tq > 10",
            &grouped_cols,
        )
        .unwrap();
        let conds: Vec<String> = q.scalars[0]
            .scope
            .as_ref()
            .expect("scoped")
            .conds
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(conds, ["c.weight > 3"]);
        // No condition on the key's table alone: no scope.
        let q = parse(
            "SELECT sum(l_quantity) FROM lineitem, part WHERE p_partkey = l_partkey \
               AND l_quantity < (SELECT avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)",
            &cols,
        )
        .unwrap();
        assert!(q.scalars[0].scope.is_none());
    }

    #[test]
    fn names_what_it_refuses() {
        for (sql, what) in [
            (
                "SELECT * FROM a LEFT JOIN (b JOIN c ON true) ON a.id = b.id",
                "FROM item",
            ),
            ("SELECT * FROM a JOIN b USING (id)", "USING"),
            (
                "SELECT * FROM a, b, c, d, e, f, g, h, i",
                "more than 8 tables",
            ),
            ("SELECT * FROM a, b JOIN c ON true", "mixed"),
            (
                "SELECT id FROM a INTERSECT ALL SELECT id FROM b INTERSECT ALL SELECT id FROM c",
                "INTERSECT",
            ),
            (
                "SELECT id FROM a UNION SELECT id FROM b UNION ALL SELECT id FROM c",
                "mixed",
            ),
            (
                "SELECT count(*) FROM a UNION ALL SELECT 1 FROM b",
                "inside a UNION branch",
            ),
            ("WITH x AS (SELECT 1) SELECT * FROM x", "no FROM"),
            ("SELECT id FROM a ORDER BY id LIMIT 3", "LIMIT"),
            ("SELECT id, random() FROM a", "random()"),
            ("SELECT id, now() FROM a", "now()"),
            (
                "SELECT id FROM a WHERE (id, id) NOT IN (SELECT id, id FROM b)",
                "NOT IN (subquery) with several columns",
            ),
            (
                "SELECT id FROM a WHERE id IN (SELECT id FROM b) OR id > 3",
                "subquery",
            ),
            (
                "SELECT id FROM a WHERE EXISTS (SELECT 1 FROM a WHERE id > 1)",
                "give it an alias",
            ),
            ("SELECT id, row_number() OVER () FROM a", "window function"),
            ("SELECT DISTINCT ON (id) id FROM a", "DISTINCT ON"),
            ("SELECT unnest(ARRAY[1, 2]) FROM a", "set-returning"),
            (
                "SELECT category, count(*) FROM a GROUP BY ROLLUP (category)",
                "ROLLUP",
            ),
            ("SELECT * FROM (SELECT 1) s", "subquery in FROM"),
            (
                "WITH RECURSIVE x AS (SELECT 1) SELECT * FROM x",
                "WITH RECURSIVE",
            ),
            ("SELECT 1", "without FROM"),
        ] {
            let err = parse(sql, &cols()).unwrap_err();
            assert!(err.contains(what), "{sql}: {err}");
        }
    }
}
