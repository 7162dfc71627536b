//! `WITH RECURSIVE r AS (base UNION ALL step) SELECT <r's columns> FROM r`, where the base is a
//! projection and filter of one table and the step joins one table with `r`.
//!
//! **Delta rule (semi-naive with signed weights).** R is a multiset (Z-set) of derivation paths,
//! R = Σk T^k·B for the base rows B and the step relation T (linear recursion). With
//! B_new = B_old + ΔB and T_new = T_old + ΔT (the window's weighted images: +1 for new rows,
//! −1 for old ones), telescoping T_new^k·B_new − T_old^k·B_old gives
//! ΔR = closure under T_new of ( base(ΔB) ⊎ ΔT ⋈ R_old ),
//! with each path carrying the product of its weights; R_old is the stream table's storage. A
//! path through a deleted row is subtracted exactly once, a new one added once, an update is
//! both, so inserts, deletes, updates and re-parenting are all maintained without recomputing
//! (for insert-only windows this is plain semi-naive evaluation). A TRUNCATE refreshes FULL. The
//! stream table is a multiset of rows (copies counted by content, as in [`super::bag`]), so
//! duplicate paths are kept exactly. Like the query itself, the delta terminates when the new
//! data has no cycle reachable from the changes.

use super::fold;
use super::join;
use super::join::{Input, Variant};
use super::parse::Unsupported;
use super::SourceTable;
use crate::ir::{self, From, Item, JoinKind, Name, RelName, Select};
use sqlparser::ast::{
    Expr, JoinConstraint, JoinOperator, Query, SelectItem, SetExpr, SetOperator, SetQuantifier,
    Statement, TableFactor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// The alias of the recursive relation's rows in the plan's SQL.
pub const ALIAS: &str = "__pgt_r";

/// One SELECT of the recursive CTE.
#[derive(Debug, Clone)]
struct Part {
    table: String,
    alias: String,
    items: Vec<Expr>,
    filter: Option<Expr>,
}

/// A recursive query this module maintains.
#[derive(Debug, Clone)]
pub struct Recursive {
    /// The whole defining query (the full result).
    query: String,
    /// The recursive relation's column names (the query's output names).
    pub columns: Vec<String>,
    base: Part,
    step: Part,
    /// The name the step gives the recursive relation, and its join condition.
    step_r_alias: String,
    step_cond: Expr,
    /// The tables, base then step (names as written).
    pub tables: Vec<String>,
}

fn name_of(t: &TableFactor) -> Option<(String, String)> {
    match t {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let own = name.0.last()?.as_ident().map(fold)?;
            let a = alias.as_ref().map(|a| fold(&a.name)).unwrap_or(own);
            Some((name.to_string(), a))
        }
        _ => None,
    }
}

fn items_of(items: &[SelectItem]) -> Option<(Vec<Expr>, Vec<Option<String>>)> {
    let mut exprs = Vec::new();
    let mut names = Vec::new();
    for i in items {
        match i {
            SelectItem::UnnamedExpr(e) => {
                exprs.push(e.clone());
                names.push(match e {
                    Expr::Identifier(i) => Some(fold(i)),
                    Expr::CompoundIdentifier(p) => p.last().map(fold),
                    _ => None,
                });
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                exprs.push(expr.clone());
                names.push(Some(fold(alias)));
            }
            _ => return None,
        }
    }
    Some((exprs, names))
}

impl Recursive {
    /// Recognises the shape, or says why not (`None` when the query has no WITH RECURSIVE).
    pub fn parse(sql: &str) -> Option<Result<Recursive, Unsupported>> {
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
        let [Statement::Query(q)] = stmts.as_slice() else {
            return None;
        };
        let with = q.with.as_ref()?;
        if !with.recursive {
            return None;
        }
        Some(Recursive::from_query(sql, q))
    }

    fn from_query(sql: &str, q: &Query) -> Result<Recursive, Unsupported> {
        let bad = |what: &str| -> Unsupported {
            Unsupported::new(format!("WITH RECURSIVE {what} (only base UNION ALL one-table step, read whole, is maintained; others are supported in a later version)"))
                .hint("Maintained: WITH RECURSIVE r AS (SELECT ... FROM t [WHERE ...] UNION ALL SELECT ... FROM u JOIN r ON ...) SELECT <every column of r> FROM r.")
        };
        let with = q.with.as_ref().expect("checked");
        let [cte] = with.cte_tables.as_slice() else {
            return Err(bad("with more than one query"));
        };
        if q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
            return Err(bad("with ORDER BY/LIMIT"));
        }
        let r_name = fold(&cte.alias.name);
        let SetExpr::SetOperation {
            op: SetOperator::Union,
            set_quantifier: SetQuantifier::All,
            left,
            right,
        } = cte.query.body.as_ref()
        else {
            return Err(bad("whose body is not base UNION ALL step"));
        };
        let (SetExpr::Select(b), SetExpr::Select(s)) = (left.as_ref(), right.as_ref()) else {
            return Err(bad("whose branches are not plain SELECTs"));
        };
        for sel in [b, s] {
            let grouped = match &sel.group_by {
                sqlparser::ast::GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
                _ => true,
            };
            if sel.distinct.is_some() || grouped || sel.having.is_some() {
                return Err(bad("with DISTINCT, GROUP BY or HAVING in the recursion"));
            }
            let has_sub = sqlparser::ast::visit_expressions(&**sel, |x| match x {
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    std::ops::ControlFlow::Break(())
                }
                _ => std::ops::ControlFlow::Continue(()),
            })
            .is_break();
            if has_sub {
                return Err(bad("with a subquery in the recursion"));
            }
        }
        // Base: one table, not the recursive relation.
        let [bt] = b.from.as_slice() else {
            return Err(bad("whose base reads several tables"));
        };
        if !bt.joins.is_empty() {
            return Err(bad("whose base joins"));
        }
        let (base_table, base_alias) = name_of(&bt.relation)
            .ok_or_else(|| bad("whose base reads something else than a table"))?;
        if base_table.to_ascii_lowercase() == r_name {
            return Err(bad("whose base reads itself"));
        }
        let (base_items, base_names) =
            items_of(&b.projection).ok_or_else(|| bad("with `*` in the base"))?;
        // Step: `t JOIN r ON c` or `r JOIN t ON c`.
        let [st] = s.from.as_slice() else {
            return Err(bad("whose step reads other than one table and itself"));
        };
        let [j] = st.joins.as_slice() else {
            return Err(bad("whose step is not one join with itself"));
        };
        let cond = match &j.join_operator {
            JoinOperator::Inner(JoinConstraint::On(c))
            | JoinOperator::Join(JoinConstraint::On(c)) => c.clone(),
            _ => return Err(bad("whose step is not an inner JOIN ... ON")),
        };
        let (n1, a1) = name_of(&st.relation)
            .ok_or_else(|| bad("whose step reads something else than a table"))?;
        let (n2, a2) = name_of(&j.relation)
            .ok_or_else(|| bad("whose step reads something else than a table"))?;
        let ((step_table, step_alias), step_r_alias) = if n1.to_ascii_lowercase() == r_name {
            ((n2, a2), a1)
        } else if n2.to_ascii_lowercase() == r_name {
            ((n1, a1), a2)
        } else {
            return Err(bad("whose step does not join the recursive query"));
        };
        let (step_items, _) = items_of(&s.projection).ok_or_else(|| bad("with `*` in the step"))?;
        // The recursive relation's columns, and an outer query that returns exactly them.
        let columns: Vec<String> = if cte.alias.columns.is_empty() {
            base_names
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("with an unnamed base column"))?
        } else {
            cte.alias.columns.iter().map(|c| fold(&c.name)).collect()
        };
        let SetExpr::Select(outer) = q.body.as_ref() else {
            return Err(bad("read by a set operation"));
        };
        let whole = outer.selection.is_none()
            && outer.distinct.is_none()
            && matches!(&outer.group_by, sqlparser::ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
            && outer.having.is_none()
            && matches!(outer.from.as_slice(), [t] if t.joins.is_empty()
                && name_of(&t.relation).is_some_and(|(n, _)| n.to_ascii_lowercase() == r_name));
        let outer_names: Option<Vec<String>> = match outer.projection.as_slice() {
            [SelectItem::Wildcard(_)] => Some(columns.clone()),
            items => items
                .iter()
                .map(|i| match i {
                    SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(fold(id)),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => p.last().map(fold),
                    _ => None,
                })
                .collect(),
        };
        if !whole || outer_names.as_ref() != Some(&columns) {
            return Err(bad(
                "read other than as SELECT <all its columns, in order> FROM it",
            ));
        }
        Ok(Recursive {
            query: sql.to_string(),
            columns,
            base: Part {
                table: base_table.clone(),
                alias: base_alias,
                items: base_items,
                filter: b.selection.clone(),
            },
            step: Part {
                table: step_table.clone(),
                alias: step_alias,
                items: step_items,
                filter: s.selection.clone(),
            },
            step_r_alias,
            step_cond: cond,
            tables: vec![base_table, step_table],
        })
    }

    /// The rows as the operator above ([`super::bag`]) reads them: the full query, and the
    /// semi-naive delta (`storage` is R_old). `sources` are the base's and the step's.
    pub fn input(&self, sources: &[SourceTable], storage: &str) -> Input {
        let whole = From::subquery(ir::Statement::User(self.query.clone()), Name::quoted(ALIAS));
        let (b, s) = (&self.base, &self.step);
        let user = |e: &Expr| ir::Expr::User(Box::new(e.clone()));
        let items = |p: &Part, weight_of: &str| -> Vec<Item> {
            p.items
                .iter()
                .map(|e| Item::bare(user(e)))
                .chain([Item::bare(join::weight_of(weight_of))])
                .collect()
        };
        let on = || Some(user(&self.step_cond));
        let scan = |src: &SourceTable, alias: &str| join::Variant::scan(alias, src).from;
        let local = |n: &str, alias: &str| {
            From::Table(RelName::Local(Name::internal(n)), Some(Name::quoted(alias)))
        };
        let part = |p: &Part, weight: &str, from: From| Select {
            items: items(p, weight),
            from: vec![from],
            filter: p.filter.as_ref().map(user),
            ..Select::default()
        };
        let recursion = ir::Query::union_all(vec![
            part(b, &b.alias, scan(&sources[0], &b.alias)),
            part(
                s,
                &s.alias,
                scan(&sources[1], &s.alias).join(
                    JoinKind::Inner,
                    From::Table(
                        RelName::Catalog(storage.to_string()),
                        Some(Name::quoted(&self.step_r_alias)),
                    ),
                    on(),
                ),
            ),
            part(
                s,
                &self.step_r_alias,
                join::table(&sources[1], &s.alias).join(
                    JoinKind::Inner,
                    local("__pgt_d", &self.step_r_alias),
                    on(),
                ),
            ),
        ]);
        let columns: Vec<Name> = self
            .columns
            .iter()
            .map(|c| Name::quoted(c.clone()))
            .chain([Name::internal("__pgt_w")])
            .collect();
        let delta = ir::Query {
            with: vec![ir::Cte {
                columns: columns.clone(),
                recursive: true,
                ..ir::Cte::new("__pgt_d", false, ir::Statement::Query(recursion))
            }],
            body: ir::SetExpr::Select(Box::new(Select {
                items: columns
                    .into_iter()
                    .map(|c| Item::bare(ir::Expr::Col(None, c)))
                    .collect(),
                from: vec![From::Table(RelName::Local(Name::internal("__pgt_d")), None)],
                ..Select::default()
            })),
            order_by: Vec::new(),
            limit: None,
        };
        Input {
            full_from: whole.clone(),
            bulk_from: whole,
            variants: vec![Variant {
                from: From::subquery(ir::Statement::Query(delta), Name::quoted(ALIAS)),
                weight: vec![super::join::weight_of(ALIAS)],
                cond: Vec::new(),
            }],
            tables: Vec::new(),
            identity_tables: 0,
        }
    }

    /// The output items over [`ALIAS`].
    pub fn items(&self) -> Vec<Expr> {
        self.columns
            .iter()
            .map(|c| {
                Expr::CompoundIdentifier(vec![
                    sqlparser::ast::Ident::with_quote('"', ALIAS),
                    sqlparser::ast::Ident::with_quote('"', c),
                ])
            })
            .collect()
    }

    pub fn explain(&self) -> String {
        format!(
            "Recursive union all (semi-naive with signed weights: ΔR = closure under {st} new of base(Δ{bt}) ⊎ Δ{st} ⋈ R_old; a TRUNCATE refreshes FULL)\n  \
             base: {bt} AS {ba}\n  step: {st} AS {sa} JOIN {r} ON ({c})\n  rows without a key: a multiset, copies counted by content",
            bt = self.base.table,
            ba = self.base.alias,
            st = self.step.table,
            sa = self.step.alias,
            r = self.step_r_alias,
            c = self.step_cond,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = "WITH RECURSIVE tree AS (
        SELECT id, name, parent_id, name AS path, 0 AS depth FROM departments WHERE parent_id IS NULL
        UNION ALL
        SELECT d.id, d.name, d.parent_id, tree.path || ' > ' || d.name AS path, tree.depth + 1
        FROM departments d JOIN tree ON d.parent_id = tree.id)
      SELECT id, name, parent_id, path, depth FROM tree";

    #[test]
    fn the_guides_tree_is_recognised() {
        let r = Recursive::parse(GUIDE).unwrap().unwrap();
        assert_eq!(r.columns, ["id", "name", "parent_id", "path", "depth"]);
        assert_eq!(r.tables, ["departments", "departments"]);
        assert_eq!(r.step_r_alias, "tree");
        assert!(Recursive::parse("SELECT 1 FROM t").is_none());
    }

    #[test]
    fn other_shapes_are_refused_with_a_reason() {
        for (sql, what) in [
            ("WITH RECURSIVE t AS (SELECT 1 AS n FROM a UNION SELECT n + 1 FROM t JOIN a ON true) SELECT n FROM t", "UNION ALL"),
            ("WITH RECURSIVE t AS (SELECT id FROM a UNION ALL SELECT b.id FROM b JOIN t ON b.p = t.id) SELECT id FROM t WHERE id > 1", "read other than"),
            ("WITH RECURSIVE t AS (SELECT id FROM a UNION ALL SELECT b.id FROM b JOIN c ON true JOIN t ON b.p = t.id) SELECT id FROM t", "one join"),
            ("WITH RECURSIVE t AS (SELECT id, count(*) AS n FROM a GROUP BY id UNION ALL SELECT b.id, 1 FROM b JOIN t ON b.p = t.id) SELECT id, n FROM t", "GROUP BY"),
        ] {
            let err = Recursive::parse(sql).unwrap().unwrap_err();
            assert!(err.contains(what), "{sql}: {err}");
        }
    }
}
