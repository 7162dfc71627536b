//! A lookup factor in the delta plan: how it joins in each state (new, delta, old), its
//! affected keys, old rows and values, its −old/+new change, and the decorrelated join of a
//! complete result (see the module doc of [`super`] for the rule).

use super::{Scalar, SourceTable};
use crate::ident::quote_ident;
use crate::ir::{
    Cte, Expr as E, From, Item, JoinKind, Name, Op, Query as IrQuery, RelName, Select, Statement,
};
use sqlparser::ast::Expr;
use std::ops::ControlFlow;

fn local(name: &str, alias: Option<&str>) -> From {
    From::Table(
        RelName::Local(Name::internal(name)),
        alias.map(Name::internal),
    )
}

/// One factor of a delta variant: how it is joined, its weight (if any) and a condition on the
/// variant's rows (if any).
#[derive(Debug, Clone)]
pub struct Part {
    pub kind: JoinKind,
    pub right: From,
    pub on: Option<E>,
    pub weight: Option<E>,
    pub cond: Option<E>,
}

/// The state of a factor in one delta variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    New,
    Delta,
    Old,
}

impl Scalar {
    fn alias(&self) -> Name {
        Name::quoted(&self.alias)
    }

    fn inner(&self) -> Name {
        Name::quoted(&self.inner)
    }

    /// The table under the inner alias.
    fn table(&self, src: &SourceTable) -> From {
        From::Table(RelName::Catalog(src.quoted.clone()), Some(self.inner()))
    }

    /// The window's images of the table under the inner alias.
    fn window(&self, src: &SourceTable) -> From {
        From::Window {
            source: src.quoted.clone(),
            buffer: src.buffer.clone(),
            param: src.own_param,
            rows: Box::new(crate::ivm::scan::events(src)),
            alias: self.inner(),
        }
    }

    /// The local filter and `extra`, or nothing.
    fn conds(&self, extra: Vec<E>) -> Option<E> {
        let c: Vec<E> = self.filter.iter().map(E::user).chain(extra).collect();
        (!c.is_empty()).then(|| E::and(c))
    }

    /// `inner.k_i = (outer_i)` for every bound key.
    fn key_match(&self) -> Vec<E> {
        self.keys
            .iter()
            .map(|(c, o)| {
                E::bin(
                    Op::Eq,
                    E::Col(Some(self.inner()), Name::quoted(c)),
                    E::user(o),
                )
            })
            .collect()
    }

    fn key_names(&self) -> Vec<String> {
        (1..=self.keys.len())
            .map(|k| format!("__pgt_k{k}"))
            .collect()
    }

    /// `a.__pgt_k<i> = b.__pgt_k<i>` for every key.
    fn same_keys(&self, a: &str, b: &str) -> E {
        E::and(
            self.keys_of(a)
                .into_iter()
                .zip(self.keys_of(b))
                .map(|(x, y)| E::bin(Op::Eq, x, y))
                .collect(),
        )
    }

    fn keys_of(&self, rel: &str) -> Vec<E> {
        self.key_names()
            .iter()
            .map(|k| E::hidden(Some(rel), k))
            .collect()
    }

    /// `inner.k1, inner.k2, ...`.
    fn inner_keys(&self) -> Vec<E> {
        self.keys
            .iter()
            .map(|(c, _)| E::Col(Some(self.inner()), Name::quoted(c)))
            .collect()
    }

    /// `inner.k_i AS __pgt_k<i>`.
    fn keyed(&self) -> Vec<Item> {
        self.inner_keys()
            .into_iter()
            .zip(self.key_names())
            .map(|(c, k)| Item::new(c, Name::internal(k)))
            .collect()
    }

    fn output_items(&self) -> Vec<Item> {
        self.outputs
            .iter()
            .map(|(n, e)| Item::new(E::user(e), Name::quoted(n)))
            .collect()
    }

    /// GROUP BY the keys [HAVING h].
    fn grouped_by_key(&self, s: Select) -> Select {
        Select {
            group_by: self.inner_keys(),
            having: self.having.as_ref().map(E::user),
            ..s
        }
    }

    /// The new outputs for the outer row (a LATERAL lookup by key; one row for a scalar
    /// subquery, at most one for a grouped subquery).
    pub fn lookup(&self, src: &SourceTable) -> From {
        let s = Select {
            items: self.output_items(),
            from: vec![self.table(src)],
            filter: self.conds(self.key_match()),
            ..Select::default()
        };
        From::Subquery {
            query: Box::new(Statement::Query(IrQuery::select(if self.grouped {
                self.grouped_by_key(s)
            } else {
                s
            }))),
            alias: self.alias(),
            lateral: !self.keys.is_empty(),
        }
    }

    /// The window's images of the table that pass the local filter, aliased as the inner table.
    fn events(&self, src: &SourceTable, extra: Vec<E>) -> IrQuery {
        IrQuery::select(Select {
            items: vec![Item::bare(E::int(1))],
            from: vec![self.window(src)],
            filter: self.conds(extra),
            ..Select::default()
        })
    }

    /// The affected keys `__pgt_k<i>` (non-NULL: a NULL key matches no outer row), within the
    /// [`Scope`] when there is one: keys of the scope table's rows passing its conditions now,
    /// or of its window's images (which hold every row it had before that is not there now).
    /// `outer`: the FROM tables, in FROM order.
    fn affected(&self, src: &SourceTable, outer: &[SourceTable]) -> IrQuery {
        let mut not_null: Vec<E> = self
            .inner_keys()
            .into_iter()
            .map(|k| E::IsNull(Box::new(k), true))
            .collect();
        if let Some((scope, os)) = self
            .scope
            .as_ref()
            .and_then(|sc| outer.get(sc.table).map(|os| (sc, os)))
        {
            let outer_keys = || -> Vec<Item> {
                self.keys
                    .iter()
                    .map(|(_, e)| Item::bare(E::user(e)))
                    .collect()
            };
            let a = Name::quoted(&scope.alias);
            not_null.push(E::InQuery(
                Box::new(E::Tuple(self.inner_keys())),
                Box::new(IrQuery::union_all(vec![
                    Select {
                        items: outer_keys(),
                        from: vec![From::Table(
                            RelName::Catalog(os.quoted.clone()),
                            Some(a.clone()),
                        )],
                        filter: Some(E::and(scope.conds.iter().map(E::user).collect())),
                        ..Select::default()
                    },
                    Select {
                        items: outer_keys(),
                        from: vec![From::Window {
                            source: os.quoted.clone(),
                            buffer: os.buffer.clone(),
                            param: os.own_param,
                            rows: Box::new(crate::ivm::scan::events(os)),
                            alias: a,
                        }],
                        ..Select::default()
                    },
                ])),
            ));
        }
        IrQuery::select(Select {
            distinct: true,
            items: self.keyed(),
            from: vec![self.window(src)],
            filter: self.conds(not_null),
            ..Select::default()
        })
    }

    /// The columns of the table the factor reads.
    fn read_columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = self.keys.iter().map(|(c, _)| c.clone()).collect();
        let exprs = self
            .outputs
            .iter()
            .map(|(_, e)| e)
            .chain(self.filter.iter())
            .chain(self.having.iter());
        for e in exprs {
            let _ = sqlparser::ast::visit_expressions(e, |x| {
                if let Expr::CompoundIdentifier(p) = x {
                    if p.len() == 2 && p[0].value == self.inner && !cols.contains(&p[1].value) {
                        cols.push(p[1].value.clone());
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        }
        cols
    }

    /// `(inner keys) IN (SELECT keys FROM __pgt_a)`, or nothing when there are no keys.
    fn in_affected(&self) -> Vec<E> {
        if self.keys.is_empty() {
            return Vec::new();
        }
        vec![E::InQuery(
            Box::new(E::Tuple(self.inner_keys())),
            Box::new(IrQuery::select(Select {
                items: self.keys_of_bare(),
                from: vec![local("__pgt_a", None)],
                ..Select::default()
            })),
        )]
    }

    fn keys_of_bare(&self) -> Vec<Item> {
        self.key_names()
            .iter()
            .map(|k| Item::bare(E::hidden(None, k)))
            .collect()
    }

    /// The table's rows before the window (restricted to the affected keys `__pgt_a` when
    /// keyed), as copies: current rows plus the window's images with negated weights, netted
    /// per row.
    fn old_rows(&self, src: &SourceTable) -> IrQuery {
        let cols: Vec<Name> = self.read_columns().iter().map(Name::quoted).collect();
        let qual = |w: E| -> Vec<Item> {
            cols.iter()
                .map(|c| Item::bare(E::Col(Some(self.inner()), c.clone())))
                .chain([Item::new(w, Name::internal("__pgt_w"))])
                .collect()
        };
        let union = IrQuery::union_all(vec![
            Select {
                items: qual(E::int(1)),
                from: vec![self.table(src)],
                filter: self.conds(self.in_affected()),
                ..Select::default()
            },
            Select {
                items: qual(E::Neg(Box::new(E::Col(
                    Some(self.inner()),
                    Name::internal("__pgt_w"),
                )))),
                from: vec![self.window(src)],
                filter: self.conds(self.in_affected()),
                ..Select::default()
            },
        ]);
        // Netted by the row's text (every type has one; json has no equality operator).
        let group = if cols.is_empty() {
            E::Tuple(Vec::new())
        } else {
            E::cast(
                E::Row(cols.iter().map(|c| E::Col(None, c.clone())).collect()),
                "text",
            )
        };
        let sum_w = || E::call("sum", vec![E::hidden(None, "__pgt_w")]);
        let netted = Select {
            items: cols
                .iter()
                .map(|c| {
                    Item::new(
                        E::Element(
                            Box::new(E::call("array_agg", vec![E::Col(None, c.clone())])),
                            1,
                        ),
                        c.clone(),
                    )
                })
                .chain([Item::new(sum_w(), Name::internal("__pgt_n"))])
                .collect(),
            from: vec![From::subquery(
                Statement::Query(union),
                Name::internal("__pgt_u"),
            )],
            group_by: vec![group],
            having: Some(E::bin(Op::Gt, sum_w(), E::int(0))),
            ..Select::default()
        };
        IrQuery::select(Select {
            items: cols
                .iter()
                .map(|c| Item::bare(E::Col(Some(Name::internal("__pgt_r")), c.clone())))
                .collect(),
            from: vec![From::subquery(
                Statement::Query(IrQuery::select(netted)),
                Name::internal("__pgt_r"),
            )
            .join(
                JoinKind::Cross,
                From::Function {
                    call: E::call(
                        "pg_catalog.generate_series",
                        vec![E::int(1), E::hidden(Some("__pgt_r"), "__pgt_n")],
                    ),
                    alias: Name::internal("__pgt_copy"),
                    lateral: true,
                },
                None,
            )],
            ..Select::default()
        })
    }

    /// The outputs for the affected keys (`__pgt_a`), from `rows` (a FROM item, aliased as the
    /// inner table; `filtered`: apply the local filter and the key restriction): `__pgt_k<i>`
    /// and the outputs; one row per affected key for a scalar subquery, one per affected key
    /// that has a group for a grouped subquery.
    fn values(&self, src: &SourceTable, rows: From, filtered: bool) -> IrQuery {
        let grouped_rows = Select {
            items: self
                .keyed()
                .into_iter()
                .chain(self.output_items())
                .collect(),
            from: vec![rows],
            filter: if filtered {
                self.conds(self.in_affected())
            } else {
                None
            },
            group_by: self.inner_keys(),
            having: self.having.as_ref().map(E::user),
            ..Select::default()
        };
        if self.grouped {
            return IrQuery::select(grouped_rows);
        }
        let on = self.same_keys("__pgt_g", "__pgt_a");
        let outs: Vec<Item> = self
            .outputs
            .iter()
            .map(|(n, _)| {
                let col = |rel: &str| E::Col(Some(Name::internal(rel)), Name::quoted(n));
                Item::new(
                    E::Case(
                        vec![(
                            E::IsNull(Box::new(E::hidden(Some("__pgt_g"), "__pgt_k1")), false),
                            col("__pgt_e"),
                        )],
                        Some(Box::new(col("__pgt_g"))),
                    ),
                    Name::quoted(n),
                )
            })
            .collect();
        // The outputs over no rows, typed as the query types them.
        let empty = Select {
            items: self.output_items(),
            from: vec![self.table(src)],
            filter: Some(E::bool(false)),
            ..Select::default()
        };
        IrQuery::select(Select {
            items: self
                .keys_of("__pgt_a")
                .into_iter()
                .map(Item::bare)
                .chain(outs)
                .collect(),
            from: vec![local("__pgt_a", None)
                .join(
                    JoinKind::Left,
                    From::subquery(
                        Statement::Query(IrQuery::select(grouped_rows)),
                        Name::internal("__pgt_g"),
                    ),
                    Some(on),
                )
                .join(
                    JoinKind::Cross,
                    From::subquery(
                        Statement::Query(IrQuery::select(empty)),
                        Name::internal("__pgt_e"),
                    ),
                    None,
                )],
            ..Select::default()
        })
    }

    /// The table's rows before the window under the inner alias.
    fn old_from(&self, src: &SourceTable) -> From {
        From::subquery(Statement::Query(self.old_rows(src)), self.inner())
    }

    /// The outputs before the window, for the affected keys, or the one row when unkeyed.
    fn old_values(&self, src: &SourceTable, outer: &[SourceTable]) -> IrQuery {
        if self.keys.is_empty() {
            return IrQuery::select(Select {
                items: self.output_items(),
                from: vec![self.old_from(src)],
                ..Select::default()
            });
        }
        IrQuery {
            with: vec![Cte::new(
                "__pgt_a",
                false,
                Statement::Query(self.affected(src, outer)),
            )],
            ..self.values(src, self.old_from(src), false)
        }
    }

    /// ΔF: `__pgt_k<i>`, the outputs, `__pgt_w`: −old +new for the keys whose outputs changed
    /// (or whose group appeared or went).
    fn delta(&self, src: &SourceTable, outer: &[SourceTable]) -> IrQuery {
        let outs: Vec<Name> = self.outputs.iter().map(|(n, _)| Name::quoted(n)).collect();
        let side = |s: &str| -> Vec<E> {
            outs.iter()
                .map(|n| E::Col(Some(Name::internal(s)), n.clone()))
                .collect()
        };
        // As text: every type has one (json has no equality), and a numeric's scale counts.
        let differ = E::bin(
            Op::IsDistinctFrom,
            E::cast(E::Row(side("__pgt_o")), "text"),
            E::cast(E::Row(side("__pgt_n")), "text"),
        );
        let x = |keys: Vec<E>, rel: &str, w: i64| -> Vec<E> {
            keys.into_iter()
                .chain(side(rel))
                .chain([E::int(w)])
                .collect()
        };
        let sub =
            |q: IrQuery, alias: &str| From::subquery(Statement::Query(q), Name::internal(alias));
        let names: Vec<Name> = self.key_names().into_iter().map(Name::internal).collect();
        let changes = |keys: bool| From::Values {
            rows: vec![
                x(
                    if keys {
                        self.keys_of("__pgt_o")
                    } else {
                        Vec::new()
                    },
                    "__pgt_o",
                    -1,
                ),
                x(
                    if keys {
                        self.keys_of("__pgt_n")
                    } else {
                        Vec::new()
                    },
                    "__pgt_n",
                    1,
                ),
            ],
            alias: Name::internal("__pgt_x"),
            columns: if keys { names.clone() } else { Vec::new() }
                .into_iter()
                .chain(outs.clone())
                .chain([Name::internal("__pgt_w")])
                .collect(),
            lateral: true,
        };
        let all = vec![Item::bare(E::Star(Some(Name::internal("__pgt_x"))))];
        if self.keys.is_empty() {
            let new = Select {
                items: self.output_items(),
                from: vec![self.table(src)],
                filter: self.conds(Vec::new()),
                ..Select::default()
            };
            return IrQuery::select(Select {
                items: all,
                from: vec![sub(self.old_values(src, outer), "__pgt_o")
                    .join(JoinKind::Cross, sub(IrQuery::select(new), "__pgt_n"), None)
                    .join(JoinKind::Cross, changes(false), None)],
                filter: Some(E::and(vec![
                    differ,
                    E::exists(self.events(src, Vec::new())),
                ])),
                ..Select::default()
            });
        }
        let k1 = |rel: &str| E::hidden(Some(rel), "__pgt_k1");
        let on = self.same_keys("__pgt_o", "__pgt_n");
        IrQuery {
            with: vec![Cte::new(
                "__pgt_a",
                false,
                Statement::Query(self.affected(src, outer)),
            )],
            ..IrQuery::select(Select {
                items: all,
                from: vec![sub(self.values(src, self.old_from(src), false), "__pgt_o")
                    .join(
                        JoinKind::Full,
                        sub(self.values(src, self.table(src), true), "__pgt_n"),
                        Some(on),
                    )
                    .join(JoinKind::Cross, changes(true), None)],
                filter: Some(E::and(vec![
                    E::IsNull(Box::new(k1("__pgt_x")), true),
                    E::or(vec![
                        E::IsNull(Box::new(k1("__pgt_o")), false),
                        E::IsNull(Box::new(k1("__pgt_n")), false),
                        differ,
                    ]),
                ])),
                ..Select::default()
            })
        }
    }

    /// `alias.__pgt_k<i> = (outer_i) AND ...` (TRUE when unkeyed).
    fn on(&self) -> E {
        let parts: Vec<E> = self
            .keys
            .iter()
            .zip(self.key_names())
            .map(|((_, o), k)| {
                E::bin(
                    Op::Eq,
                    E::Col(Some(self.alias()), Name::internal(k)),
                    E::user(o),
                )
            })
            .collect();
        E::and(parts)
    }

    /// The factor for a complete result, as joins onto the FROM clause: the table grouped once
    /// by the key and joined by it (a scalar subquery's key without rows reads the aggregate
    /// over no rows).
    pub fn bulk(&self, src: &SourceTable) -> Vec<(JoinKind, From, Option<E>)> {
        if self.keys.is_empty() {
            return vec![(JoinKind::Cross, self.lookup(src), None)];
        }
        let grouped = IrQuery::select(
            self.grouped_by_key(Select {
                items: self
                    .keyed()
                    .into_iter()
                    .chain(self.output_items())
                    .collect(),
                from: vec![self.table(src)],
                filter: self.conds(Vec::new()),
                ..Select::default()
            }),
        );
        if self.grouped {
            return vec![(
                JoinKind::Inner,
                From::subquery(Statement::Query(grouped), self.alias()),
                Some(self.on()),
            )];
        }
        let g = format!("{}_g", self.alias);
        let on = E::and(
            self.keys
                .iter()
                .zip(self.key_names())
                .map(|((_, o), k)| {
                    E::bin(
                        Op::Eq,
                        E::Col(Some(Name::quoted(&g)), Name::internal(k)),
                        E::user(o),
                    )
                })
                .collect(),
        );
        let outs: Vec<Item> = self
            .outputs
            .iter()
            .map(|(n, e)| {
                let over_no_rows = E::subquery(IrQuery::select(Select {
                    items: vec![Item::bare(E::user(e))],
                    from: vec![self.table(src)],
                    filter: Some(E::bool(false)),
                    ..Select::default()
                }));
                Item::new(
                    E::Case(
                        vec![(
                            E::IsNull(
                                Box::new(E::Col(
                                    Some(Name::quoted(&g)),
                                    Name::internal("__pgt_k1"),
                                )),
                                false,
                            ),
                            over_no_rows,
                        )],
                        Some(Box::new(E::Col(Some(Name::quoted(&g)), Name::quoted(n)))),
                    ),
                    Name::quoted(n),
                )
            })
            .collect();
        vec![
            (
                JoinKind::Left,
                From::subquery(Statement::Query(grouped), Name::quoted(&g)),
                Some(on),
            ),
            (
                JoinKind::Cross,
                From::Subquery {
                    query: Box::new(Statement::Query(IrQuery::select(Select {
                        items: outs,
                        ..Select::default()
                    }))),
                    alias: self.alias(),
                    lateral: true,
                },
                None,
            ),
        ]
    }

    /// The factor in one state: one part, or for `Old` two (keys the window left alone read the
    /// new outputs; affected keys the old ones).
    /// `outer`: the FROM tables' sources, in FROM order.
    pub fn parts(&self, src: &SourceTable, state: State, outer: &[SourceTable]) -> Vec<Part> {
        let lookup = || Part {
            kind: JoinKind::Cross,
            right: self.lookup(src),
            on: None,
            weight: None,
            cond: None,
        };
        let joined = |rows: IrQuery| Part {
            kind: JoinKind::Inner,
            right: From::subquery(Statement::Query(rows), self.alias()),
            on: Some(self.on()),
            weight: None,
            cond: None,
        };
        match state {
            State::New => vec![lookup()],
            State::Delta => vec![Part {
                weight: Some(E::Col(Some(self.alias()), Name::internal("__pgt_w"))),
                ..joined(self.delta(src, outer))
            }],
            State::Old => vec![
                Part {
                    cond: Some(E::negated(E::exists(self.events(src, self.key_match())))),
                    ..lookup()
                },
                Part {
                    cond: self
                        .keys
                        .is_empty()
                        .then(|| E::exists(self.events(src, Vec::new()))),
                    ..joined(self.old_values(src, outer))
                },
            ],
        }
    }

    pub fn describe(&self, src: &SourceTable) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|(c, o)| format!("{} = {o}", quote_ident(c)))
            .collect();
        let outs: Vec<String> = self.outputs.iter().map(|(_, e)| e.to_string()).collect();
        format!(
            "{} {} = ({}) over {} {} (keys the window left alone: index lookup; \
             affected keys: old and new outputs recomputed from the key's rows, Δ = −old +new where they differ)",
            if self.grouped {
                "Grouped subquery"
            } else {
                "Scalar subquery"
            },
            self.alias,
            outs.join(", "),
            src.quoted,
            if keys.is_empty() {
                "(uncorrelated: reads the whole table)".to_string()
            } else {
                format!("by [{}]", keys.join(", "))
            }
        )
    }
}
