//! The one renderer: a plan ([`super`]) as SQL text. Identifiers are quoted here (or checked
//! bare, see [`Name`]), literals quoted here, and an operand is put in parentheses exactly when
//! PostgreSQL's precedence would otherwise bind it differently, plus two rules for readers: a
//! conjunction inside a disjunction, and any SQL text not built from nodes, are parenthesized.

use super::*;
use crate::ident::quote_literal;

/// Binding strength, PostgreSQL's order (higher binds tighter).
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const IS: u8 = 4;
const CMP: u8 = 5;
const IN: u8 = 6;
const ADD: u8 = 7;
const MUL: u8 = 8;
const NEG: u8 = 9;
const CAST: u8 = 10;
const ATOM: u8 = 11;

fn op_text(op: Op) -> (&'static str, u8) {
    match op {
        Op::Mul => ("*", MUL),
        Op::Div => ("/", MUL),
        Op::Add => ("+", ADD),
        Op::Sub => ("-", ADD),
        Op::Eq => ("=", CMP),
        Op::Ne => ("<>", CMP),
        Op::Lt => ("<", CMP),
        Op::Le => ("<=", CMP),
        Op::Gt => (">", CMP),
        Op::Ge => (">=", CMP),
        Op::IsDistinctFrom => ("IS DISTINCT FROM", IS),
        Op::IsNotDistinctFrom => ("IS NOT DISTINCT FROM", IS),
    }
}

/// How tightly `e` binds as rendered.
fn level(e: &Expr) -> u8 {
    use sqlparser::ast::Expr as U;
    match e {
        Expr::Lit(Lit::Int(v)) if *v < 0 => NEG,
        // An aggregate with FILTER or a window call: parenthesized under a cast for the reader.
        Expr::Call {
            filter,
            partition_by,
            ..
        } if filter.is_some() || partition_by.is_some() => NEG,
        Expr::Col(..)
        | Expr::Star(_)
        | Expr::Param(..)
        | Expr::Lit(_)
        | Expr::Call { .. }
        | Expr::Row(_)
        | Expr::Subquery(_) => ATOM,
        Expr::Cast(..) => CAST,
        // Both are plain operands to PostgreSQL; parenthesized under a cast for the reader.
        Expr::Case(..) | Expr::Exists(_) => NEG,
        Expr::Neg(_) => NEG,
        Expr::Bin(op, ..) => op_text(*op).1,
        Expr::InList(..) | Expr::InQuery(..) => IN,
        Expr::Tuple(_) | Expr::Element(..) => ATOM,
        Expr::IsNull(..) => IS,
        Expr::Not(_) => NOT,
        Expr::And(_) => AND,
        Expr::Or(_) => OR,
        Expr::User(u) => match u.as_ref() {
            U::Identifier(_)
            | U::CompoundIdentifier(_)
            | U::Function(_)
            | U::Value(_)
            | U::Nested(_)
            | U::Case { .. } => ATOM,
            _ => 0,
        },
        Expr::Sql(_) => 0,
    }
}

/// `e` as an operand that must bind at least as tightly as `min`.
fn operand(e: &Expr, min: u8) -> String {
    if level(e) >= min {
        expr(e)
    } else {
        format!("({})", expr(e))
    }
}

fn list(items: &[Expr]) -> String {
    items.iter().map(expr).collect::<Vec<_>>().join(", ")
}

fn lit(l: &Lit) -> String {
    match l {
        Lit::Int(v) => v.to_string(),
        Lit::Str(s) => quote_literal(s),
        Lit::Bool(b) => b.to_string(),
        Lit::Null => "NULL".to_string(),
    }
}

fn qualified(rel: &Option<Name>, rest: &str) -> String {
    match rel {
        Some(r) => format!("{}.{rest}", r.render()),
        None => rest.to_string(),
    }
}

/// An expression.
pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Col(rel, c) => qualified(rel, &c.render()),
        Expr::Star(rel) => qualified(rel, "*"),
        Expr::Param(n, ty) => match ty {
            Some(t) => format!("${n}::{t}"),
            None => format!("${n}"),
        },
        Expr::Lit(l) => lit(l),
        Expr::Call {
            func,
            args,
            filter,
            partition_by,
        } => {
            let mut out = format!("{func}({})", list(args));
            if let Some(f) = filter {
                out.push_str(&format!(" FILTER (WHERE {})", expr(f)));
            }
            if let Some(p) = partition_by {
                out.push_str(&format!(" OVER (PARTITION BY {})", list(p)));
            }
            out
        }
        Expr::Neg(x) => format!("-{}", operand(x, CAST)),
        // PostgreSQL binds NOT looser than IS and comparisons; they are parenthesized anyway.
        Expr::Not(x) => format!("NOT {}", operand(x, ADD)),
        Expr::Bin(op, l, r) => {
            let (text, lv) = op_text(*op);
            // Arithmetic is left-associative; comparisons do not chain; a comparison under IS
            // [NOT] DISTINCT FROM is parenthesized for the reader.
            let (left_min, right_min) = match lv {
                IS => (ADD, ADD),
                l if l >= ADD => (l, l + 1),
                l => (l + 1, l + 1),
            };
            format!("{} {text} {}", operand(l, left_min), operand(r, right_min))
        }
        Expr::And(items) => items
            .iter()
            .map(|i| operand(i, NOT))
            .collect::<Vec<_>>()
            .join(" AND "),
        // A conjunction inside a disjunction is parenthesized for the reader.
        Expr::Or(items) => items
            .iter()
            .map(|i| operand(i, NOT))
            .collect::<Vec<_>>()
            .join(" OR "),
        Expr::IsNull(x, negated) => format!(
            "{} IS {}NULL",
            operand(x, IS + 1),
            if *negated { "NOT " } else { "" }
        ),
        Expr::InList(x, items, negated) => format!(
            "{} {}IN ({})",
            operand(x, IN + 1),
            if *negated { "NOT " } else { "" },
            list(items)
        ),
        Expr::Cast(x, ty) => format!("{}::{ty}", operand(x, ATOM)),
        Expr::Case(whens, otherwise) => {
            let mut out = String::from("CASE");
            for (c, v) in whens {
                out.push_str(&format!(" WHEN {} THEN {}", expr(c), expr(v)));
            }
            if let Some(o) = otherwise {
                out.push_str(&format!(" ELSE {}", expr(o)));
            }
            out.push_str(" END");
            out
        }
        Expr::Row(items) => format!("ROW({})", list(items)),
        Expr::Subquery(q) => format!("({})", query(q)),
        Expr::Tuple(items) => format!("({})", list(items)),
        Expr::Element(x, n) => format!("({})[{n}]", expr(x)),
        Expr::InQuery(x, q) => format!("{} IN ({})", operand(x, IN + 1), query(q)),
        Expr::Exists(q) => format!("EXISTS ({})", query(q)),
        Expr::User(u) => u.to_string(),
        Expr::Sql(s) => s.clone(),
    }
}

fn item(i: &Item) -> String {
    match &i.alias {
        Some(a) => format!("{} AS {}", expr(&i.expr), a.render()),
        None => expr(&i.expr),
    }
}

fn rel_name(r: &RelName) -> String {
    match r {
        RelName::Qualified(s, n) => format!("{}.{}", s.render(), n.render()),
        RelName::Catalog(text) => text.clone(),
        RelName::Local(n) => n.render(),
    }
}

/// A FROM item.
pub fn from(f: &From) -> String {
    let lateral = |l: &bool| if *l { "LATERAL " } else { "" };
    match f {
        From::Table(r, alias) => match alias {
            Some(a) => format!("{} AS {}", rel_name(r), a.render()),
            None => rel_name(r),
        },
        From::Subquery {
            query,
            alias,
            lateral: l,
        } => format!("{}({}) AS {}", lateral(l), statement(query), alias.render()),
        From::Function {
            call,
            alias,
            lateral: l,
        } => format!("{}{} AS {}", lateral(l), expr(call), alias.render()),
        From::Values {
            rows,
            alias,
            columns,
            lateral: l,
        } => format!(
            "{}(VALUES {}) AS {}({})",
            lateral(l),
            rows.iter()
                .map(|r| format!("({})", list(r)))
                .collect::<Vec<_>>()
                .join(", "),
            alias.render(),
            columns
                .iter()
                .map(Name::render)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        From::Join {
            left,
            kind,
            right,
            on,
        } => {
            let k = match kind {
                JoinKind::Inner => "JOIN",
                JoinKind::Left => "LEFT JOIN",
                JoinKind::Right => "RIGHT JOIN",
                JoinKind::Full => "FULL JOIN",
                JoinKind::Cross => "CROSS JOIN",
            };
            let on = on
                .as_ref()
                .map(|c| format!(" ON {}", operand(c, ATOM)))
                .unwrap_or_default();
            format!("{} {k} {}{on}", from(left), from(right))
        }
        From::Window { rows, alias, .. } | From::OldState { rows, alias, .. } => {
            format!("({}) AS {}", query(rows), alias.render())
        }
        From::Sql(s) => s.clone(),
    }
}

fn select(s: &Select) -> String {
    let mut out = String::from("SELECT ");
    if s.distinct {
        out.push_str("DISTINCT ");
    }
    if let Some(on) = &s.distinct_on {
        out.push_str(&format!("DISTINCT ON ({}) ", list(on)));
    }
    out.push_str(&s.items.iter().map(item).collect::<Vec<_>>().join(", "));
    if !s.from.is_empty() {
        out.push_str(" FROM ");
        out.push_str(&s.from.iter().map(from).collect::<Vec<_>>().join(", "));
    }
    if let Some(w) = &s.filter {
        out.push_str(&format!(" WHERE {}", expr(w)));
    }
    if !s.group_by.is_empty() {
        out.push_str(&format!(" GROUP BY {}", list(&s.group_by)));
    }
    if let Some(h) = &s.having {
        out.push_str(&format!(" HAVING {}", expr(h)));
    }
    out
}

fn set_expr(s: &SetExpr) -> String {
    match s {
        SetExpr::Select(sel) => select(sel),
        SetExpr::Combine(op, l, r) => format!(
            "{} {} {}",
            set_expr(l),
            match op {
                SetOp::IntersectAll => "INTERSECT ALL",
                SetOp::ExceptAll => "EXCEPT ALL",
            },
            set_expr(r)
        ),
        SetExpr::UnionAll(parts) => parts
            .iter()
            .map(set_expr)
            .collect::<Vec<_>>()
            .join(" UNION ALL "),
    }
}

/// A query.
pub fn query(q: &Query) -> String {
    let mut out = String::new();
    if !q.with.is_empty() {
        let ctes: Vec<String> = q
            .with
            .iter()
            .map(|c| {
                let columns = if c.columns.is_empty() {
                    String::new()
                } else {
                    format!(
                        "({})",
                        c.columns
                            .iter()
                            .map(Name::render)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                format!(
                    "{}{columns} AS {}({})",
                    c.name.render(),
                    if c.materialized { "MATERIALIZED " } else { "" },
                    statement(&c.body)
                )
            })
            .collect();
        let recursive = if q.with.iter().any(|c| c.recursive) {
            "RECURSIVE "
        } else {
            ""
        };
        out.push_str(&format!("WITH {recursive}{} ", ctes.join(", ")));
    }
    out.push_str(&set_expr(&q.body));
    if !q.order_by.is_empty() {
        let keys: Vec<String> = q
            .order_by
            .iter()
            .map(|s| {
                format!(
                    "{}{}{}",
                    expr(&s.expr),
                    if s.descending { " DESC" } else { "" },
                    match s.nulls_first {
                        Some(true) => " NULLS FIRST",
                        Some(false) => " NULLS LAST",
                        None => "",
                    }
                )
            })
            .collect();
        out.push_str(&format!(" ORDER BY {}", keys.join(", ")));
    }
    if let Some(l) = &q.limit {
        out.push_str(&limit(l));
    }
    out
}

/// ` LIMIT n OFFSET m`, or ` OFFSET m ROWS FETCH FIRST n ROWS WITH TIES`.
pub fn limit(l: &Limit) -> String {
    let mut out = String::new();
    if l.with_ties {
        if let Some(o) = &l.offset {
            out.push_str(&format!(" OFFSET {} ROWS", expr(o)));
        }
        let count = l.count.as_ref().map(expr).unwrap_or_else(|| "1".into());
        out.push_str(&format!(" FETCH FIRST {count} ROWS WITH TIES"));
        return out;
    }
    if let Some(c) = &l.count {
        out.push_str(&format!(" LIMIT {}", expr(c)));
    }
    if let Some(o) = &l.offset {
        out.push_str(&format!(" OFFSET {}", expr(o)));
    }
    out
}

fn action(a: &Action) -> String {
    match a {
        Action::Delete => "DELETE".to_string(),
        Action::DoNothing => "DO NOTHING".to_string(),
        Action::Update(set) => format!(
            "UPDATE SET {}",
            set.iter()
                .map(|(t, v)| format!("{} = {}", t.render(), expr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::Insert(targets, values) => format!(
            "INSERT ({}) VALUES ({})",
            targets
                .iter()
                .map(Name::render)
                .collect::<Vec<_>>()
                .join(", "),
            list(values)
        ),
    }
}

fn merge(m: &Merge) -> String {
    let clauses: Vec<String> = m
        .clauses
        .iter()
        .map(|c| {
            let when = match c.when {
                Matched::Matched => "WHEN MATCHED",
                Matched::NotMatched => "WHEN NOT MATCHED",
                Matched::NotMatchedByTarget => "WHEN NOT MATCHED BY TARGET",
                Matched::NotMatchedBySource => "WHEN NOT MATCHED BY SOURCE",
            };
            let cond = c
                .cond
                .as_ref()
                .map(|e| format!(" AND {}", operand(e, NOT)))
                .unwrap_or_default();
            format!("{when}{cond} THEN {}", action(&c.action))
        })
        .collect();
    let mut out = format!(
        "MERGE INTO {} AS {} USING ({}) AS {} ON {} {}",
        rel_name(&m.target),
        m.target_alias.render(),
        statement(&m.source),
        m.source_alias.render(),
        expr(&m.on),
        clauses.join(" ")
    );
    if !m.returning.is_empty() {
        out.push_str(" RETURNING ");
        out.push_str(&m.returning.iter().map(item).collect::<Vec<_>>().join(", "));
    }
    out
}

/// A statement.
pub fn statement(s: &Statement) -> String {
    match s {
        Statement::Query(q) => query(q),
        Statement::Merge(m) => merge(m),
        Statement::Sql(text) => text.clone(),
        Statement::User(text) => format!("{text}\n"),
    }
}
