//! The typed plan: the relational nodes and expressions pg_trickle's refresh statements are made
//! of, and one renderer ([`sql`]) that turns them into SQL. The renderer owns identifier
//! quoting, literal quoting, parentheses and operator precedence; the code that builds a plan
//! never writes SQL text. (Operators not moved onto it yet hand over their SQL as
//! [`Expr::Sql`] and [`From::Sql`] leaves: the remaining migration, counted by
//! `ir::tests::sql_leaves`.)
//!
//! Names come in two kinds: [`Name::quoted`] for anything that may come from a user or the
//! catalog (always quoted), and [`Name::internal`] for the plan's own aliases and hidden columns
//! (`__pgt_w`: lower-case ASCII, checked at construction, rendered bare).

pub mod sql;
pub mod tree;

use crate::ident::quote_ident;

/// An identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    text: String,
    bare: bool,
}

impl Name {
    /// A name rendered quoted (`"Order Items"`).
    pub fn quoted(text: impl Into<String>) -> Name {
        Name {
            text: text.into(),
            bare: false,
        }
    }

    /// One of the plan's own names, rendered bare. Panics unless it is lower-case ASCII letters,
    /// digits and `_`, not starting with a digit: a name that needs no quoting.
    pub fn internal(text: impl Into<String>) -> Name {
        let text = text.into();
        assert!(
            text.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && text
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "internal name {text:?} would need quoting"
        );
        Name { text, bare: true }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn render(&self) -> String {
        if self.bare {
            self.text.clone()
        } else {
            quote_ident(&self.text)
        }
    }
}

/// A relation: `"schema"."table"`, or one of the plan's own (a WITH query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelName {
    Qualified(Name, Name),
    /// A relation name the catalog rendered already (`SourceTable::quoted`, `::buffer`): kept
    /// as text until sources carry schema and name apart.
    Catalog(String),
    Local(Name),
}

/// A binary operator, with PostgreSQL's precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Mul,
    Div,
    Add,
    Sub,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    IsDistinctFrom,
    IsNotDistinctFrom,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Int(i64),
    Str(String),
    Bool(bool),
    Null,
}

/// One `WHEN cond THEN value` of a CASE.
pub type When = (Expr, Expr);

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `rel.column`, or `column` alone.
    Col(Option<Name>, Name),
    /// `rel.*`, or `*`.
    Star(Option<Name>),
    /// A statement parameter `$n`, cast to a type when given.
    Param(usize, Option<&'static str>),
    Lit(Lit),
    /// A call of a function named by pg_trickle (schema-qualified where it matters), with an
    /// optional `FILTER (WHERE ...)` and `OVER (PARTITION BY ...)`.
    Call {
        func: &'static str,
        args: Vec<Expr>,
        filter: Option<Box<Expr>>,
        partition_by: Option<Vec<Expr>>,
    },
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    /// Conjunction and disjunction, flattened.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    IsNull(Box<Expr>, bool),
    /// `e [NOT] IN (list)`.
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `e::type` (a type name as `format_type` prints it, or one pg_trickle names).
    Cast(Box<Expr>, String),
    /// `(a, b, ...)`: the left side of a row-wise IN (`()`: the empty grouping set).
    Tuple(Vec<Expr>),
    /// `(e)[n]`: an array element.
    Element(Box<Expr>, i64),
    /// `e IN (query)`.
    InQuery(Box<Expr>, Box<Query>),
    Case(Vec<When>, Option<Box<Expr>>),
    /// `ROW(a, b, ...)`.
    Row(Vec<Expr>),
    /// A scalar subquery.
    Subquery(Box<Query>),
    /// `EXISTS (query)`.
    Exists(Box<Query>),
    /// An expression of the user's query, as parsed.
    User(Box<sqlparser::ast::Expr>),
    /// SQL text from an operator not moved onto the plan yet; rendered in parentheses wherever
    /// precedence could matter.
    Sql(String),
}

impl Expr {
    /// A hidden column of one of the plan's relations: `rel.__pgt_w`.
    pub fn hidden(rel: Option<&str>, column: &str) -> Expr {
        Expr::Col(rel.map(Name::internal), Name::internal(column))
    }

    pub fn int(v: i64) -> Expr {
        Expr::Lit(Lit::Int(v))
    }

    pub fn str(v: &str) -> Expr {
        Expr::Lit(Lit::Str(v.to_string()))
    }

    pub fn call(func: &'static str, args: Vec<Expr>) -> Expr {
        Expr::Call {
            func,
            args,
            filter: None,
            partition_by: None,
        }
    }

    pub fn bin(op: Op, l: Expr, r: Expr) -> Expr {
        Expr::Bin(op, Box::new(l), Box::new(r))
    }

    pub fn cast(e: Expr, ty: impl Into<String>) -> Expr {
        Expr::Cast(Box::new(e), ty.into())
    }

    pub fn user(e: &sqlparser::ast::Expr) -> Expr {
        Expr::User(Box::new(e.clone()))
    }

    pub fn bool(v: bool) -> Expr {
        Expr::Lit(Lit::Bool(v))
    }

    pub fn null() -> Expr {
        Expr::Lit(Lit::Null)
    }

    /// An aggregate call with an optional `FILTER (WHERE ...)`.
    pub fn agg(func: &'static str, args: Vec<Expr>, filter: Option<Expr>) -> Expr {
        Expr::Call {
            func,
            args,
            filter: filter.map(Box::new),
            partition_by: None,
        }
    }

    pub fn negated(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    pub fn subquery(q: Query) -> Expr {
        Expr::Subquery(Box::new(q))
    }

    pub fn exists(q: Query) -> Expr {
        Expr::Exists(Box::new(q))
    }

    /// The product of `factors` (none: `1`).
    pub fn product(factors: &[Expr]) -> Expr {
        let mut it = factors.iter().cloned();
        match it.next() {
            None => Expr::int(1),
            Some(first) => it.fold(first, |acc, f| Expr::bin(Op::Mul, acc, f)),
        }
    }

    /// `items AND ...`, flattening nested conjunctions (one item: itself; none: `true`).
    pub fn and(items: Vec<Expr>) -> Expr {
        let mut flat = Vec::new();
        for e in items {
            match e {
                Expr::And(inner) => flat.extend(inner),
                e => flat.push(e),
            }
        }
        match flat.len() {
            0 => Expr::Lit(Lit::Bool(true)),
            1 => flat.pop().expect("one item"),
            _ => Expr::And(flat),
        }
    }

    /// `items OR ...`, flattening nested disjunctions (one item: itself; none: `false`).
    pub fn or(items: Vec<Expr>) -> Expr {
        let mut flat = Vec::new();
        for e in items {
            match e {
                Expr::Or(inner) => flat.extend(inner),
                e => flat.push(e),
            }
        }
        match flat.len() {
            0 => Expr::Lit(Lit::Bool(false)),
            1 => flat.pop().expect("one item"),
            _ => Expr::Or(flat),
        }
    }
}

/// A select-list item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub expr: Expr,
    pub alias: Option<Name>,
}

impl Item {
    pub fn new(expr: Expr, alias: Name) -> Item {
        Item {
            expr,
            alias: Some(alias),
        }
    }

    pub fn bare(expr: Expr) -> Item {
        Item { expr, alias: None }
    }
}

/// The kind of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
    Cross,
}

/// A FROM item.
#[derive(Debug, Clone, PartialEq)]
pub enum From {
    Table(RelName, Option<Name>),
    Subquery {
        query: Box<Statement>,
        alias: Name,
        lateral: bool,
    },
    /// `[LATERAL] (VALUES (...), (...)) AS alias(columns)`.
    Values {
        rows: Vec<Vec<Expr>>,
        alias: Name,
        columns: Vec<Name>,
        lateral: bool,
    },
    /// A set-returning function call: `LATERAL f(...) AS alias`.
    Function {
        call: Expr,
        alias: Name,
        lateral: bool,
    },
    Join {
        left: Box<From>,
        kind: JoinKind,
        right: Box<From>,
        on: Option<Expr>,
    },
    /// The change window of a source: the weighted row images of its buffer's rows in the
    /// window (`rows`, built by `ivm::scan::events`).
    Window {
        source: String,
        buffer: String,
        /// The parameter carrying the last own change consumed from the buffer.
        param: usize,
        rows: Box<Query>,
        alias: Name,
    },
    /// A source as it was at the previous frontier: its rows now (+1) and the window's images
    /// undone (their weights negated).
    OldState {
        source: String,
        rows: Box<Query>,
        alias: Name,
    },
    /// FROM-clause SQL text from an operator not moved onto the plan yet.
    Sql(String),
}

impl From {
    pub fn table(rel: RelName, alias: &str) -> From {
        From::Table(rel, Some(Name::internal(alias)))
    }

    pub fn subquery(query: Statement, alias: Name) -> From {
        From::Subquery {
            query: Box::new(query),
            alias,
            lateral: false,
        }
    }

    /// `self kind right ON on` (no condition: a cross join).
    pub fn join(self, kind: JoinKind, right: From, on: Option<Expr>) -> From {
        From::Join {
            left: Box::new(self),
            kind,
            right: Box::new(right),
            on,
        }
    }
}

/// One SELECT.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Select {
    /// `DISTINCT`.
    pub distinct: bool,
    /// `DISTINCT ON (...)`.
    pub distinct_on: Option<Vec<Expr>>,
    pub items: Vec<Item>,
    /// Comma-separated FROM items.
    pub from: Vec<From>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
}

/// A multiset operation of two queries other than UNION ALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    IntersectAll,
    ExceptAll,
}

/// A SELECT, a UNION ALL of SELECTs, or INTERSECT ALL / EXCEPT ALL of two.
#[derive(Debug, Clone, PartialEq)]
pub enum SetExpr {
    Select(Box<Select>),
    UnionAll(Vec<SetExpr>),
    Combine(SetOp, Box<SetExpr>, Box<SetExpr>),
}

/// A WITH query.
#[derive(Debug, Clone, PartialEq)]
pub struct Cte {
    pub name: Name,
    pub materialized: bool,
    /// Named columns (`name(a, b) AS ...`), empty for the body's own.
    pub columns: Vec<Name>,
    /// Reads itself (`WITH RECURSIVE`).
    pub recursive: bool,
    pub body: Statement,
}

impl Cte {
    pub fn new(name: &str, materialized: bool, body: Statement) -> Cte {
        Cte {
            name: Name::internal(name),
            materialized,
            columns: Vec::new(),
            recursive: false,
            body,
        }
    }
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub expr: Expr,
    pub descending: bool,
    /// `NULLS FIRST` (true), `NULLS LAST` (false), or the direction's default.
    pub nulls_first: Option<bool>,
}

impl Sort {
    pub fn asc(expr: Expr) -> Sort {
        Sort {
            expr,
            descending: false,
            nulls_first: None,
        }
    }

    pub fn desc(expr: Expr) -> Sort {
        Sort {
            expr,
            descending: true,
            nulls_first: None,
        }
    }
}

/// How many of a query's ordered rows it returns: `LIMIT count OFFSET offset`, or with
/// `with_ties`, `OFFSET offset ROWS FETCH FIRST count ROWS WITH TIES`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// `None`: all rows (after `offset`).
    pub count: Option<Expr>,
    pub offset: Option<Expr>,
    pub with_ties: bool,
}

impl Limit {
    pub fn count(count: Expr) -> Limit {
        Limit {
            count: Some(count),
            offset: None,
            with_ties: false,
        }
    }
}

/// A query: WITH queries, a body, its order.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub with: Vec<Cte>,
    pub body: SetExpr,
    pub order_by: Vec<Sort>,
    pub limit: Option<Limit>,
}

impl Query {
    pub fn select(s: Select) -> Query {
        Query {
            with: Vec::new(),
            body: SetExpr::Select(Box::new(s)),
            order_by: Vec::new(),
            limit: None,
        }
    }

    pub fn union_all(parts: Vec<Select>) -> Query {
        Query {
            with: Vec::new(),
            body: SetExpr::UnionAll(
                parts
                    .into_iter()
                    .map(|s| SetExpr::Select(Box::new(s)))
                    .collect(),
            ),
            order_by: Vec::new(),
            limit: None,
        }
    }
}

/// What a MERGE does with a source row.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Delete,
    DoNothing,
    /// `UPDATE SET target = value, ...`.
    Update(Vec<(Name, Expr)>),
    /// `INSERT (targets) VALUES (values)`.
    Insert(Vec<Name>, Vec<Expr>),
}

/// Which rows a MERGE clause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    Matched,
    /// `NOT MATCHED` (by target).
    NotMatched,
    NotMatchedByTarget,
    NotMatchedBySource,
}

/// `WHEN [NOT] MATCHED [AND cond] THEN action`.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeClause {
    pub when: Matched,
    pub cond: Option<Expr>,
    pub action: Action,
}

/// `MERGE INTO target AS alias USING (source) AS alias ON ... RETURNING ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub target: RelName,
    pub target_alias: Name,
    pub source: Box<Statement>,
    pub source_alias: Name,
    pub on: Expr,
    pub clauses: Vec<MergeClause>,
    pub returning: Vec<Item>,
}

/// A statement: a query, or a MERGE (which a WITH query may hold).
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Query(Query),
    Merge(Merge),
    /// Statement text from an operator not moved onto the plan yet.
    Sql(String),
    /// The user's query as written (its text is followed by a line break, so that a trailing
    /// `--` comment cannot swallow what follows).
    User(String),
}

#[cfg(test)]
mod tests;
