//! The FROM clause as an operator input: one table (Scan), or tables joined by inner joins (ON,
//! or cross joins whose conditions are in WHERE), up to `parse::MAX_JOIN_TABLES`; outer joins and
//! semi-joins of two (see [`super::outer`]); the branches of a UNION ALL.
//!
//! **Delta rule (inner join).** Δ(L ⋈ R) = ΔL ⋈ R_old + L_new ⋈ ΔR, with weights multiplied,
//! and for n tables Σi T1..T(i−1) new ⋈ ΔTi ⋈ T(i+1)..Tn old. L_new and
//! R_new are the tables as the refresh's snapshot sees them, ΔL and ΔR the window's weighted
//! images (see [`super::scan`]), and R_old = R_new − ΔR: the current rows with weight +1 plus the
//! window's images with their weights negated, so a row inserted in the window cancels out of it
//! and a deleted one comes back. Both sides changing in one window are counted once each way,
//! never ΔL ⋈ ΔR twice; a join-key update is a −1 under the old partner and a +1 under the new
//! one; NULL keys never match, as in the query. A self-join is two inputs reading one buffer.

use super::outer::{self, Side};
use super::parse::{Join, QuerySpec, Unsupported};
use super::scalar;
use super::SourceTable;
use crate::ir::{self, Expr, From, Item, JoinKind, Name, Query, RelName, Select, Statement};

/// How the rows of a query's FROM clause reach the operator above it.
#[derive(Debug, Clone)]
pub struct Input {
    /// The FROM clause over the tables themselves (group rescans: scalar subqueries as LATERAL
    /// lookups, so a few groups read only their rows).
    pub full_from: From,
    /// The same rows for a complete result (scalar subqueries decorrelated: each table grouped
    /// once by its correlation key and joined by it).
    pub bulk_from: From,
    /// The delta of the FROM clause: FROM clauses whose rows, weighted, add up to the window's
    /// change of the FROM clause's rows.
    pub variants: Vec<Variant>,
    /// For each FROM table: its alias and its source.
    pub tables: Vec<(String, SourceTable)>,
    /// How many of `tables` (from the first) make up a row: all but a semi-joined one.
    pub identity_tables: usize,
}

/// One part of a delta: the rows of `from` that pass every `cond`, each weighted by the product
/// of `weight` (no factor: 1).
#[derive(Debug, Clone)]
pub struct Variant {
    pub from: From,
    pub weight: Vec<Expr>,
    pub cond: Vec<Expr>,
}

/// `pg_catalog.hashtextextended(ROW(values)::text, 0)`: a 64-bit hash of the values' text form.
pub fn content_hash(values: Vec<Expr>) -> Expr {
    Expr::call(
        "pg_catalog.hashtextextended",
        vec![Expr::cast(Expr::Row(values), "text"), Expr::int(0)],
    )
}

/// The weight column of the relation `alias`.
pub fn weight_of(alias: &str) -> Expr {
    Expr::Col(Some(Name::quoted(alias)), Name::internal("__pgt_w"))
}

/// A table's rows as the plan reads them now: `"schema"."table" AS "alias"`.
pub fn table(src: &SourceTable, alias: &str) -> From {
    From::Table(
        RelName::Catalog(src.quoted.clone()),
        Some(Name::quoted(alias)),
    )
}

impl Variant {
    /// The window's weighted images of one table under `alias`.
    pub fn scan(alias: &str, src: &SourceTable) -> Variant {
        Variant {
            from: From::Window {
                source: src.quoted.clone(),
                buffer: src.buffer.clone(),
                param: src.own_param,
                rows: Box::new(super::scan::events(src)),
                alias: Name::quoted(alias),
            },
            weight: vec![weight_of(alias)],
            cond: Vec::new(),
        }
    }

    /// `SELECT items, <weight> AS __pgt_w FROM <from> WHERE <cond> AND <extra>`.
    pub fn select(&self, mut items: Vec<Item>, extra: &[Expr]) -> Select {
        items.push(Item::new(
            Expr::product(&self.weight),
            Name::internal("__pgt_w"),
        ));
        let conds: Vec<Expr> = self.cond.iter().chain(extra).cloned().collect();
        Select {
            items,
            from: vec![self.from.clone()],
            filter: (!conds.is_empty()).then(|| Expr::and(conds)),
            ..Select::default()
        }
    }
}

/// A source's current rows with weight +1 plus its window's images with negated weights: the
/// table as it was at the previous frontier.
fn old_state(src: &SourceTable, alias: &str) -> From {
    let cols = || -> Vec<Item> {
        src.columns
            .iter()
            .map(|(_, n)| Item::bare(Expr::Col(None, Name::quoted(n.clone()))))
            .collect()
    };
    let mut now = cols();
    now.push(Item::new(Expr::int(1), Name::internal("__pgt_w")));
    let mut undone = cols();
    undone.push(Item::bare(Expr::Neg(Box::new(Expr::hidden(
        Some("__pgt_e"),
        "__pgt_w",
    )))));
    From::OldState {
        source: src.quoted.clone(),
        rows: Box::new(Query::union_all(vec![
            Select {
                items: now,
                from: vec![From::Table(RelName::Catalog(src.quoted.clone()), None)],
                ..Select::default()
            },
            Select {
                items: undone,
                from: vec![From::subquery(
                    Statement::Query(super::scan::events(src)),
                    Name::internal("__pgt_e"),
                )],
                ..Select::default()
            },
        ])),
        alias: Name::quoted(alias),
    }
}

/// The join of `factors` (each aliased) by `joins`, left to right.
fn join_tree(factors: Vec<From>, joins: &[Join]) -> From {
    let mut it = factors.into_iter();
    let mut out = it.next().expect("a FROM clause has a first item");
    for (j, f) in joins.iter().zip(it) {
        let on = |c: &sqlparser::ast::Expr| Some(Expr::User(Box::new(c.clone())));
        out = match j {
            Join::On(c) => out.join(JoinKind::Inner, f, on(c)),
            Join::Cross => out.join(JoinKind::Cross, f, None),
            Join::Outer(kind, c) => out.join(kind.join_kind(), f, on(c)),
            Join::Semi(..) => unreachable!("a semi-join is planned by Input::semi"),
        };
    }
    out
}

/// The ON condition of step `k` of a left-deep join, split between the tables before it (side
/// 0) and table `k + 1` (side 1).
fn step_condition(
    c: &sqlparser::ast::Expr,
    tables: &[(String, SourceTable)],
    k: usize,
) -> Result<outer::Condition, Unsupported> {
    let p_aliases: Vec<&str> = tables[..=k].iter().map(|(al, _)| al.as_str()).collect();
    let p_columns: Vec<String> = tables[..=k]
        .iter()
        .flat_map(|(_, s)| s.columns.iter().map(|(_, c)| c.clone()))
        .collect();
    let (alias, src) = &tables[k + 1];
    let n_columns: Vec<String> = src.columns.iter().map(|(_, c)| c.clone()).collect();
    outer::analyze_sides(c, [&p_aliases, &[alias.as_str()]], [&p_columns, &n_columns])
}

/// Side 0: the join so far (its rows now and its delta); side 1: the table joined.
fn step_sides(full: &From, variants: &[Variant], alias: &str, src: &SourceTable) -> [Side; 2] {
    [
        Side {
            new_from: full.clone(),
            delta: variants.to_vec(),
        },
        Side::table(alias, src),
    ]
}

/// The variants of `from` (the FROM tables in one state, weighted by `weight`) joined with every
/// scalar subquery's factor in its state: one variant per combination of their parts.
fn with_scalars(
    from: From,
    weight: Vec<Expr>,
    scalars: &[scalar::Scalar],
    states: &[scalar::State],
    srcs: &[SourceTable],
    outer: &[SourceTable],
) -> Vec<Variant> {
    let mut combos = vec![Variant {
        from,
        weight,
        cond: Vec::new(),
    }];
    for (k, (sc, st)) in scalars.iter().zip(states).enumerate() {
        let parts = sc.parts(&srcs[k], *st, outer);
        combos = combos
            .into_iter()
            .flat_map(|v| {
                parts.iter().map(move |p| Variant {
                    from: v.from.clone().join(p.kind, p.right.clone(), p.on.clone()),
                    weight: v.weight.iter().cloned().chain(p.weight.clone()).collect(),
                    cond: v.cond.iter().cloned().chain(p.cond.clone()).collect(),
                })
            })
            .collect();
    }
    combos
}

impl Input {
    /// `sources` are the FROM tables' sources, in FROM order.
    pub fn new(spec: &QuerySpec, sources: &[SourceTable]) -> Result<Input, Unsupported> {
        let tables: Vec<(String, SourceTable)> = spec
            .from
            .iter()
            .zip(sources)
            .map(|(t, s)| (t.alias.clone(), s.clone()))
            .collect();
        let aliases: Vec<&str> = tables.iter().map(|(al, _)| al.as_str()).collect();
        // Scalar subqueries' tables come last; `n` is the FROM tables.
        let m = spec.scalars.len();
        let n = tables.len() - m;
        let scalar_srcs: Vec<SourceTable> = tables[n..].iter().map(|(_, s)| s.clone()).collect();
        let from_srcs: Vec<SourceTable> = tables[..n].iter().map(|(_, s)| s.clone()).collect();
        if let Some(op) = spec.set_all {
            return super::setop::input(op, spec, sources, tables);
        }
        if !spec.branches.is_empty() {
            return Input::union(spec, sources, tables);
        }
        if let [Join::Semi(keep, c)] = spec.joins.as_slice() {
            return Input::semi(*keep, c, tables);
        }
        if spec.joins.len() > 1
            && spec
                .joins
                .iter()
                .any(|j| matches!(j, Join::Outer(..) | Join::Semi(..)))
        {
            return Input::left_deep(spec, tables);
        }
        // The inner part of an outer join is the inner join on the same condition.
        let inner_joins: Vec<Join> = spec
            .joins
            .iter()
            .map(|j| match j {
                Join::Outer(_, c) => Join::On(c.clone()),
                other => other.clone(),
            })
            .collect();
        let now = || -> Vec<From> { tables[..n].iter().map(|(al, s)| table(s, al)).collect() };
        // Δ(T1 ⋈ ... ⋈ Tn) = Σi T1..T(i-1) new ⋈ ΔTi ⋈ T(i+1)..Tn old, weights multiplied.
        let mut variants = Vec::new();
        for i in 0..n {
            let factors: Vec<From> = tables[..n]
                .iter()
                .enumerate()
                .map(|(j, (al, s))| match j.cmp(&i) {
                    std::cmp::Ordering::Less => table(s, al),
                    std::cmp::Ordering::Equal => Variant::scan(al, s).from,
                    std::cmp::Ordering::Greater => old_state(s, al),
                })
                .collect();
            let weight: Vec<Expr> = (i..n).map(|j| weight_of(aliases[j])).collect();
            let states = vec![scalar::State::Old; m];
            variants.extend(with_scalars(
                join_tree(factors, &inner_joins),
                weight,
                &spec.scalars,
                &states,
                &scalar_srcs,
                &from_srcs,
            ));
        }
        // ΔF of each scalar subquery, the FROM tables new.
        for j in 0..m {
            let states: Vec<scalar::State> = (0..m)
                .map(|k| match k.cmp(&j) {
                    std::cmp::Ordering::Less => scalar::State::New,
                    std::cmp::Ordering::Equal => scalar::State::Delta,
                    std::cmp::Ordering::Greater => scalar::State::Old,
                })
                .collect();
            variants.extend(with_scalars(
                join_tree(now(), &spec.joins),
                Vec::new(),
                &spec.scalars,
                &states,
                &scalar_srcs,
                &from_srcs,
            ));
        }
        if let [Join::Outer(kind, c)] = spec.joins.as_slice() {
            let aliases = [tables[0].0.as_str(), tables[1].0.as_str()];
            let columns: Vec<Vec<String>> = tables
                .iter()
                .map(|(_, s)| s.columns.iter().map(|(_, c)| c.clone()).collect())
                .collect();
            let cond = outer::analyze(c, aliases, [&columns[0], &columns[1]])?;
            variants.extend(outer::null_extension_variants(
                *kind,
                &cond,
                aliases,
                [&tables[0].1, &tables[1].1],
            ));
        }
        let mut full = join_tree(now(), &spec.joins);
        let mut bulk = full.clone();
        for (k, sc) in spec.scalars.iter().enumerate() {
            for p in sc.parts(&scalar_srcs[k], scalar::State::New, &from_srcs) {
                full = full.join(p.kind, p.right, p.on);
            }
            for (kind, right, on) in sc.bulk(&scalar_srcs[k]) {
                bulk = bulk.join(kind, right, on);
            }
        }
        Ok(Input {
            full_from: full,
            bulk_from: bulk,
            variants,
            identity_tables: n,
            tables,
        })
    }

    /// A join of more than two tables with outer joins, built left to right: each step joins the
    /// join so far, P (its rows now and its delta), with one more table T.
    /// Δ(P ⋈ T) = ΔP ⋈ T_old + P_new ⋈ ΔT; for `P LEFT JOIN T` also P's NULL-extended rows by
    /// [`outer::existence_of`] with P as the preserved side and T as the other; for RIGHT JOIN
    /// T's with P as the other side (whose partner test, key counts and changed keys are over
    /// the join P); for FULL JOIN both.
    fn left_deep(
        spec: &QuerySpec,
        tables: Vec<(String, SourceTable)>,
    ) -> Result<Input, Unsupported> {
        let mut variants = vec![Variant::scan(&tables[0].0, &tables[0].1)];
        let mut full = table(&tables[0].1, &tables[0].0);
        let mut identity_tables = tables.len();
        for (k, j) in spec.joins.iter().enumerate() {
            let (alias, src) = &tables[k + 1];
            if let Join::Semi(keep, c) = j {
                // `P WHERE [NOT] EXISTS (... N ...)`, the last step: P's rows with (without) a
                // partner; N's columns are not part of the rows.
                let p_aliases: Vec<&str> = tables[..=k].iter().map(|(al, _)| al.as_str()).collect();
                let p_columns: Vec<Vec<String>> = tables[..=k]
                    .iter()
                    .map(|(_, s)| s.columns.iter().map(|(_, c)| c.clone()).collect())
                    .collect();
                let n_columns: Vec<String> = src.columns.iter().map(|(_, c)| c.clone()).collect();
                // Inside the subquery a bare column is N's when N has it, else the one outer
                // table's that has it.
                let qualified = super::expr::substitute(c, &|x| match x {
                    sqlparser::ast::Expr::Identifier(i) => {
                        let name = super::fold(i);
                        let owner = if n_columns.contains(&name) {
                            alias.as_str()
                        } else {
                            let owners: Vec<usize> = (0..p_columns.len())
                                .filter(|&t| p_columns[t].contains(&name))
                                .collect();
                            match owners.as_slice() {
                                [t] => p_aliases[*t],
                                _ => return None,
                            }
                        };
                        Some(sqlparser::ast::Expr::CompoundIdentifier(vec![
                            sqlparser::ast::Ident::with_quote('"', owner),
                            sqlparser::ast::Ident::with_quote('"', &name),
                        ]))
                    }
                    _ => None,
                });
                let condition = step_condition(&qualified, &tables, k)?;
                let sides = step_sides(&full, &variants, alias, src);
                variants =
                    outer::existence_of(0, &condition, &sides[0], &sides[1], alias, *keep, &[]);
                let exists = Expr::exists(Query::select(Select {
                    items: vec![Item::bare(Expr::int(1))],
                    from: vec![table(src, alias)],
                    filter: Some(Expr::User(Box::new(qualified))),
                    ..Select::default()
                }));
                let test = match keep {
                    outer::Keep::WithPartner => exists,
                    outer::Keep::WithoutPartner => Expr::negated(exists),
                };
                full = full.join(
                    JoinKind::Inner,
                    From::Subquery {
                        query: Box::new(Statement::Query(Query::select(Select {
                            items: vec![Item::new(Expr::int(1), Name::internal("__pgt_one"))],
                            filter: Some(test),
                            ..Select::default()
                        }))),
                        alias: Name::quoted(format!("__pgt_semi_{alias}")),
                        lateral: true,
                    },
                    Some(Expr::Lit(ir::Lit::Bool(true))),
                );
                identity_tables = k + 1;
                continue;
            }
            let (kind, cond, outer_join) = match j {
                Join::On(c) => (JoinKind::Inner, Some(c), None),
                Join::Cross => (JoinKind::Cross, None, None),
                Join::Outer(kind, c) => (JoinKind::Inner, Some(c), Some((*kind, c))),
                Join::Semi(..) => unreachable!("handled above"),
            };
            let on = cond.map(|c| {
                let c: &sqlparser::ast::Expr = c;
                Expr::User(Box::new(c.clone()))
            });
            // Δ(P ⋈ T) = ΔP ⋈ T_old + P_new ⋈ ΔT.
            let mut next: Vec<Variant> = variants
                .iter()
                .map(|v| Variant {
                    from: v.from.clone().join(kind, old_state(src, alias), on.clone()),
                    weight: v.weight.iter().cloned().chain([weight_of(alias)]).collect(),
                    cond: v.cond.clone(),
                })
                .collect();
            next.push(Variant {
                from: full
                    .clone()
                    .join(kind, Variant::scan(alias, src).from, on.clone()),
                weight: vec![weight_of(alias)],
                cond: Vec::new(),
            });
            if let Some((okind, c)) = outer_join {
                let condition = step_condition(c, &tables, k)?;
                let sides = step_sides(&full, &variants, alias, src);
                // The NULLs standing in for the other side's columns.
                let nulls: [Vec<From>; 2] = [
                    vec![table(src, alias)],
                    tables[..=k].iter().map(|(al, s)| table(s, al)).collect(),
                ];
                for &p in okind.preserved() {
                    next.extend(outer::existence_of(
                        p,
                        &condition,
                        &sides[p],
                        &sides[1 - p],
                        alias,
                        outer::Keep::WithoutPartner,
                        &nulls[p],
                    ));
                }
                full = full.join(okind.join_kind(), table(src, alias), on);
            } else {
                full = full.join(kind, table(src, alias), on);
            }
            variants = next;
        }
        Ok(Input {
            bulk_from: full.clone(),
            full_from: full,
            variants,
            identity_tables,
            tables,
        })
    }

    /// The delta rows as a plan: `items` over the FROM tables' aliases, and their weight as
    /// `__pgt_w`, filtered by `filter`, from every variant.
    pub fn delta_query(&self, items: &[Item], filter: Option<&sqlparser::ast::Expr>) -> Query {
        let extra: Vec<Expr> = filter
            .map(|f| Expr::User(Box::new(f.clone())))
            .into_iter()
            .collect();
        Query::union_all(
            self.variants
                .iter()
                .map(|v| v.select(items.to_vec(), &extra))
                .collect(),
        )
    }

    /// `b1 UNION ALL b2 ...`: each branch's rows (and delta) projected to the union's columns
    /// `__pgt_u<i>` under the alias `__pgt_u`. **Delta rule:** Δ(A ⊎ B) = ΔA ⊎ ΔB. Rows have no
    /// key (a UNION ALL is a multiset), so the operator above counts copies by content.
    fn union(
        spec: &QuerySpec,
        sources: &[SourceTable],
        tables: Vec<(String, SourceTable)>,
    ) -> Result<Input, Unsupported> {
        let mut fulls = Vec::new();
        let mut variants = Vec::new();
        let mut offset = 0;
        for b in &spec.branches {
            let n = b.from.len();
            let bi = Input::new(b, &sources[offset..offset + n])?;
            offset += n;
            let cols: Vec<Item> = b
                .items
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    Item::new(
                        Expr::user(e),
                        Name::quoted(format!("{}{}", super::parse::UNION_ALIAS, i + 1)),
                    )
                })
                .collect();
            fulls.push(Select {
                items: cols.clone(),
                from: vec![bi.full_from.clone()],
                filter: b.filter.as_ref().map(Expr::user),
                ..Select::default()
            });
            for v in &bi.variants {
                let extra: Vec<Expr> = b
                    .filter
                    .as_ref()
                    .map(|f| Expr::User(Box::new(f.clone())))
                    .into_iter()
                    .collect();
                let rows = v.select(cols.clone(), &extra);
                variants.push(Variant {
                    from: From::subquery(
                        Statement::Query(Query::select(rows)),
                        Name::quoted(super::parse::UNION_ALIAS),
                    ),
                    weight: vec![weight_of(super::parse::UNION_ALIAS)],
                    cond: Vec::new(),
                });
            }
        }
        let full_from = From::subquery(
            Statement::Query(Query::union_all(fulls)),
            Name::quoted(super::parse::UNION_ALIAS),
        );
        Ok(Input {
            bulk_from: full_from.clone(),
            full_from,
            variants,
            tables,
            identity_tables: 0,
        })
    }

    /// `P WHERE [NOT] EXISTS (SELECT 1 FROM N WHERE c)`: only existence variants (see
    /// [`outer::existence_variants`]); the rows are P's.
    fn semi(
        keep: outer::Keep,
        c: &sqlparser::ast::Expr,
        tables: Vec<(String, SourceTable)>,
    ) -> Result<Input, Unsupported> {
        let aliases = [tables[0].0.as_str(), tables[1].0.as_str()];
        let columns: Vec<Vec<String>> = tables
            .iter()
            .map(|(_, s)| s.columns.iter().map(|(_, c)| c.clone()).collect())
            .collect();
        // Inside the subquery an unqualified column is the subquery table's when it has one.
        let (a0, a1) = (aliases[0].to_string(), aliases[1].to_string());
        let (c0, c1) = (columns[0].clone(), columns[1].clone());
        let qualified = super::expr::substitute(c, &move |x| match x {
            sqlparser::ast::Expr::Identifier(i) => {
                let name = super::fold(i);
                let alias = if c1.contains(&name) {
                    &a1
                } else if c0.contains(&name) {
                    &a0
                } else {
                    return None;
                };
                Some(sqlparser::ast::Expr::CompoundIdentifier(vec![
                    sqlparser::ast::Ident::with_quote('"', alias),
                    sqlparser::ast::Ident::with_quote('"', &name),
                ]))
            }
            _ => None,
        });
        let cond = outer::analyze(&qualified, aliases, [&columns[0], &columns[1]])?;
        let variants =
            outer::existence_variants(0, &cond, aliases, [&tables[0].1, &tables[1].1], keep, &[]);
        let exists = Expr::exists(Query::select(Select {
            items: vec![Item::bare(Expr::int(1))],
            from: vec![table(&tables[1].1, aliases[1])],
            filter: Some(Expr::user(c)),
            ..Select::default()
        }));
        let full_from = From::subquery(
            Statement::Query(Query::select(Select {
                items: vec![Item::bare(Expr::Star(None))],
                from: vec![table(&tables[0].1, aliases[0])],
                filter: Some(match keep {
                    outer::Keep::WithPartner => exists,
                    outer::Keep::WithoutPartner => Expr::negated(exists),
                }),
                ..Select::default()
            })),
            Name::quoted(aliases[0]),
        );
        Ok(Input {
            bulk_from: full_from.clone(),
            full_from,
            variants,
            identity_tables: 1,
            tables,
        })
    }

    /// Row identity over the FROM tables' primary keys, when every table has one.
    pub fn key_identity(&self) -> Option<Expr> {
        if self.identity_tables == 0 {
            return None;
        }
        let mut cols = Vec::new();
        for (alias, src) in self.tables.iter().take(self.identity_tables) {
            for c in src.primary_key.as_ref()? {
                cols.push(Expr::Col(
                    Some(Name::quoted(alias.clone())),
                    Name::quoted(c.clone()),
                ));
            }
        }
        Some(content_hash(cols))
    }

    pub fn describe(&self, spec: &QuerySpec) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(op) = spec.set_all {
            lines.push(format!(
                "{} (per changed row content: Δcopies = f(c1, c2) − f(c1 − Δc1, c2 − Δc2), \
                 the counts c1, c2 looked up by content in each branch)",
                match op {
                    super::setop::SetAll::Intersect => "Intersect all, f = min",
                    super::setop::SetAll::Except => "Except all, f = max(c1 − c2, 0)",
                }
            ));
        } else if !spec.branches.is_empty() {
            lines.push(format!(
                "Union all of {} branches (Δ = the branches' deltas added)",
                spec.branches.len()
            ));
        }
        let indent = if spec.joins.is_empty() { "" } else { "  " };
        for j in &spec.joins {
            lines.push(match j {
                Join::On(c) => format!("Join [{c}] (Σi T1..Ti-1 new ⋈ ΔTi ⋈ Ti+1..Tn old)"),
                Join::Cross => {
                    "Join (cross; conditions in the filter) (Σi T1..Ti-1 new ⋈ ΔTi ⋈ Ti+1..Tn old)"
                        .to_string()
                }
                Join::Semi(keep, c) => format!(
                    "{} [{c}] (ΔP ⋉ N new, plus the P rows whose key gained its first or lost its last partner, by index lookups on the key)",
                    match keep {
                        outer::Keep::WithPartner => "Semi-join (EXISTS/IN)",
                        outer::Keep::WithoutPartner => "Anti-join (NOT EXISTS)",
                    }
                ),
                Join::Outer(kind, c) => format!(
                    "{} [{c}] (inner part: ΔL ⋈ R old + L new ⋈ ΔR; NULL-extended rows: ΔP ▷ N new, \
                     plus the P rows whose join key gained its first or lost its last partner, \
                     by index lookups on the join key)",
                    kind.sql()
                ),
            });
        }
        let n = self.tables.len() - spec.scalars.len();
        for (alias, s) in &self.tables[..n] {
            lines.push(format!(
                "{indent}Scan {} AS {alias} (changes from {})",
                s.quoted, s.buffer
            ));
        }
        for (sc, (_, s)) in spec.scalars.iter().zip(&self.tables[n..]) {
            lines.push(format!("{indent}{}", sc.describe(s)));
        }
        lines
    }
}
