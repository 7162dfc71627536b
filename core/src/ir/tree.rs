//! A plan as an indented tree, one node a line, for `explain_stream_table` and the golden
//! files: which relations a statement reads (tables now, change windows, previous states), how
//! they are joined, and where a condition looks rows up (EXISTS, IN, scalar subqueries: each an
//! index lookup per row when the columns it compares are indexed).

use super::sql;
use super::*;

/// `q` as tree lines.
pub fn query(q: &Query) -> Vec<String> {
    let mut out = Vec::new();
    push_query(q, 0, &mut out);
    out
}

fn line(out: &mut Vec<String>, depth: usize, text: String) {
    out.push(format!("{}{text}", "  ".repeat(depth)));
}

fn push_statement(s: &Statement, depth: usize, out: &mut Vec<String>) {
    match s {
        Statement::Query(q) => push_query(q, depth, out),
        Statement::Merge(m) => {
            line(
                out,
                depth,
                format!(
                    "Merge into {}",
                    sql::from(&From::Table(m.target.clone(), None))
                ),
            );
            push_statement(&m.source, depth + 1, out);
        }
        Statement::Sql(_) => line(
            out,
            depth,
            "SQL text (an operator not built from plan nodes yet)".into(),
        ),
        Statement::User(_) => line(out, depth, "The defining query".into()),
    }
}

fn push_query(q: &Query, depth: usize, out: &mut Vec<String>) {
    for c in &q.with {
        line(
            out,
            depth,
            format!(
                "With {}{}",
                c.name.as_str(),
                if c.materialized {
                    " (materialized: computed once)"
                } else {
                    ""
                }
            ),
        );
        push_statement(&c.body, depth + 1, out);
    }
    push_set(&q.body, depth, out);
}

fn push_set(s: &SetExpr, depth: usize, out: &mut Vec<String>) {
    match s {
        SetExpr::Select(sel) => push_select(sel, depth, out),
        SetExpr::Combine(op, l, r) => {
            line(out, depth, format!("{op:?}"));
            push_set(l, depth + 1, out);
            push_set(r, depth + 1, out);
        }
        SetExpr::UnionAll(parts) => {
            line(out, depth, format!("Union all ({} parts)", parts.len()));
            for p in parts {
                push_set(p, depth + 1, out);
            }
        }
    }
}

fn push_select(s: &Select, depth: usize, out: &mut Vec<String>) {
    let mut what = String::from("Select");
    if s.distinct_on.is_some() {
        what.push_str(" distinct on");
    }
    if !s.group_by.is_empty() {
        what.push_str(&format!(" group by {} key(s)", s.group_by.len()));
    }
    if s.having.is_some() {
        what.push_str(" having");
    }
    line(out, depth, what);
    for f in &s.from {
        push_from(f, depth + 1, out);
    }
    let mut lookups = Vec::new();
    for i in &s.items {
        lookups_in(&i.expr, &mut lookups);
    }
    for e in s.filter.iter().chain(&s.having) {
        lookups_in(e, &mut lookups);
    }
    for (kind, q) in lookups {
        let by = match &q.body {
            SetExpr::Select(s) => s
                .filter
                .as_ref()
                .map(|f| format!(" by {}", sql::expr(f)))
                .unwrap_or_default(),
            SetExpr::UnionAll(_) | SetExpr::Combine(..) => String::new(),
        };
        line(out, depth + 1, format!("Lookup ({kind}){by}"));
        push_query(q, depth + 2, out);
    }
}

fn push_from(f: &From, depth: usize, out: &mut Vec<String>) {
    let alias = |a: &Option<Name>| {
        a.as_ref()
            .map(|a| format!(" AS {}", a.render()))
            .unwrap_or_default()
    };
    match f {
        From::Table(r, a) => line(
            out,
            depth,
            format!(
                "Table {}{}",
                sql::from(&From::Table(r.clone(), None)),
                alias(a)
            ),
        ),
        From::Window {
            source,
            buffer,
            param,
            alias,
            ..
        } => line(
            out,
            depth,
            format!(
                "Change window of {source} AS {} (reads {buffer}; own changes after ${param})",
                alias.render()
            ),
        ),
        From::OldState { source, alias, .. } => line(
            out,
            depth,
            format!(
                "Previous state of {source} AS {} (its rows now, the window's changes undone)",
                alias.render()
            ),
        ),
        From::Subquery {
            query,
            alias,
            lateral,
        } => {
            line(
                out,
                depth,
                format!(
                    "{}Subquery AS {}",
                    if *lateral { "Lateral " } else { "" },
                    alias.render()
                ),
            );
            push_statement(query, depth + 1, out);
        }
        From::Function { call, alias, .. } => line(
            out,
            depth,
            format!("Function {} AS {}", function_name(call), alias.render()),
        ),
        From::Values { rows, alias, .. } => line(
            out,
            depth,
            format!("Values ({} rows) AS {}", rows.len(), alias.render()),
        ),
        From::Join {
            left,
            kind,
            right,
            on,
        } => {
            let k = match kind {
                JoinKind::Inner => "Join",
                JoinKind::Left => "Left join",
                JoinKind::Right => "Right join",
                JoinKind::Full => "Full join",
                JoinKind::Cross => "Cross join",
            };
            line(
                out,
                depth,
                match on {
                    Some(Expr::Lit(Lit::Bool(false))) => {
                        format!("{k} on false (NULLs for the other side)")
                    }
                    Some(c) => format!("{k} on {}", sql::expr(c)),
                    None => k.to_string(),
                },
            );
            push_from(left, depth + 1, out);
            push_from(right, depth + 1, out);
        }
        From::Sql(_) => line(
            out,
            depth,
            "SQL text (an operator not built from plan nodes yet)".into(),
        ),
    }
}

fn function_name(e: &Expr) -> String {
    match e {
        Expr::Call { func, .. } => func.to_string(),
        _ => "call".to_string(),
    }
}

/// The subqueries an expression evaluates per row.
fn lookups_in<'a>(e: &'a Expr, out: &mut Vec<(&'static str, &'a Query)>) {
    match e {
        Expr::Exists(q) => out.push(("exists", q)),
        Expr::Subquery(q) => out.push(("scalar subquery", q)),
        Expr::InQuery(x, q) => {
            lookups_in(x, out);
            out.push(("in", q));
        }
        Expr::Call {
            args,
            filter,
            partition_by,
            ..
        } => {
            for a in args
                .iter()
                .chain(filter.as_deref())
                .chain(partition_by.iter().flatten())
            {
                lookups_in(a, out);
            }
        }
        Expr::Neg(x)
        | Expr::Not(x)
        | Expr::IsNull(x, _)
        | Expr::Cast(x, _)
        | Expr::Element(x, _) => lookups_in(x, out),
        Expr::Bin(_, l, r) => {
            lookups_in(l, out);
            lookups_in(r, out);
        }
        Expr::And(items) | Expr::Or(items) | Expr::Row(items) | Expr::Tuple(items) => {
            for i in items {
                lookups_in(i, out);
            }
        }
        Expr::InList(x, items, _) => {
            lookups_in(x, out);
            for i in items {
                lookups_in(i, out);
            }
        }
        Expr::Case(whens, otherwise) => {
            for (c, v) in whens {
                lookups_in(c, out);
                lookups_in(v, out);
            }
            if let Some(o) = otherwise {
                lookups_in(o, out);
            }
        }
        Expr::Col(..)
        | Expr::Star(_)
        | Expr::Param(..)
        | Expr::Lit(_)
        | Expr::User(_)
        | Expr::Sql(_) => {}
    }
}
