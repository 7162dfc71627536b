//! Tier 1 (no PostgreSQL): golden plans. Every query of the corpus (the oracle's shapes and the
//! 22 TPC-H queries) is planned by the pure core as the extension plans it: the query as
//! written, or rewritten over internal stream tables (`nest`), or FULL with the reason. The plan
//! tree and every statement rendered from it (FULL and differential MERGE, the change probe, the
//! internal tables' own) are written to `tests/golden/<corpus>/<name>.txt`; the test fails on any
//! difference and names the first one.
//!
//! Planning asks PostgreSQL a few things (output column names and types, which relations a query
//! reads, a table's columns and primary key, a view's definition). Those answers are recorded
//! from a real PostgreSQL 18 in `tests/golden/answers.txt`, so this test runs without one.
//!
//! Update both after a deliberate change: `scripts/golden.sh` (the dev cluster answers the
//! questions again; review the diff with `git diff tests/golden`).

use pg_trickle_core::ident::{quote_ident, quote_qualified};
use pg_trickle_core::ir::{Name, RelName};
use pg_trickle_core::ivm::{nest, scan, star, topk, Plan, SourceTable};
use pg_trickle_core::render::{self, MergeKind, OutputColumn, CHANGES_SCHEMA};
use pg_trickle_tests::{oracle_shapes, tpch};
use postgres::Client;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\t', "\\t")
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// PostgreSQL's answers: recorded, or asked of the dev cluster (update mode) and recorded.
struct Pg {
    recorded: BTreeMap<String, String>,
    asked: BTreeMap<String, String>,
    live: Option<Client>,
}

impl Pg {
    fn new(live: bool) -> Pg {
        let path = golden_dir().join("answers.txt");
        let mut recorded = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                let mut parts = line.splitn(4, '\t');
                let (Some(e), Some(k), Some(a), Some(v)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                recorded.insert(format!("{e}\t{k}\t{a}"), unescape(v));
            }
        }
        let live = live.then(|| {
            let mut admin = pg_trickle_tests::connect("postgres");
            for sql in [
                "DROP DATABASE IF EXISTS pgt_golden WITH (FORCE)",
                "CREATE DATABASE pgt_golden",
            ] {
                admin.batch_execute(sql).expect("scratch database");
            }
            let mut c = pg_trickle_tests::connect("pgt_golden");
            c.batch_execute(oracle_shapes::SCHEMA)
                .expect("oracle schema");
            c.batch_execute(tpch::SCHEMA).expect("TPC-H schema");
            c.batch_execute(tpch::Q15_VIEW).expect("TPC-H view");
            c
        });
        Pg {
            recorded,
            asked: BTreeMap::new(),
            live,
        }
    }

    fn ask(&mut self, entry: &str, kind: &str, arg: &str) -> String {
        let key = format!("{entry}\t{kind}\t{}", escape(arg));
        let answer = match &mut self.live {
            Some(c) => live_answer(c, kind, arg),
            None => self.recorded.get(&key).cloned().unwrap_or_else(|| {
                panic!("no recorded answer to {kind} {arg:?} for {entry}: run scripts/golden.sh")
            }),
        };
        self.asked.insert(key, answer.clone());
        answer
    }

    /// Starts an entry: its internal tables are its own.
    fn begin(&mut self) {
        if let Some(c) = &mut self.live {
            c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {CHANGES_SCHEMA} CASCADE; CREATE SCHEMA {CHANGES_SCHEMA}"
            ))
            .expect("internal schema");
        }
    }

    fn run(&mut self, ddl: &[String]) {
        if let Some(c) = &mut self.live {
            for d in ddl {
                c.batch_execute(d).unwrap_or_else(|e| panic!("{d}: {e}"));
            }
        }
    }

    fn save(&self) {
        let mut out = String::new();
        for (k, v) in &self.asked {
            let _ = writeln!(out, "{k}\t{}", escape(v));
        }
        std::fs::write(golden_dir().join("answers.txt"), out).expect("answers written");
    }
}

fn rows(c: &mut Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let msgs = c
        .simple_query(sql)
        .map_err(|e| pg_trickle_tests::describe(&e))?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One question to the dev cluster. Errors are answers too (`ERROR: ...`).
fn live_answer(c: &mut Client, kind: &str, arg: &str) -> String {
    if kind == "output" {
        // Names as the statement describes them (duplicates allowed), types with their typmod
        // from a view over it whose columns are renamed.
        let described = match c.prepare(arg) {
            Ok(st) => st
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect::<Vec<_>>(),
            Err(e) => return format!("ERROR: {}", pg_trickle_tests::describe(&e)),
        };
        let renamed: Vec<String> = (1..=described.len()).map(|i| format!("c{i}")).collect();
        let sql = format!(
            "BEGIN; CREATE TEMP VIEW pgt_golden_v ({}) AS {arg}\n; \
             SELECT pg_catalog.format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute \
              WHERE attrelid = 'pgt_golden_v'::regclass AND attnum > 0 ORDER BY attnum; ROLLBACK",
            renamed.join(", ")
        );
        return match rows(c, &sql) {
            Ok(types) => described
                .iter()
                .zip(types)
                .map(|(n, t)| format!("{n}\t{}", t.join("")))
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK");
                format!("ERROR: {e}")
            }
        };
    }
    let view = |body: &str| {
        format!(
            "BEGIN; CREATE TEMP VIEW pgt_golden_v AS {arg}\n; {body}; ROLLBACK",
            body = body.replace("$v", "'pgt_golden_v'::regclass")
        )
    };
    let sql = match kind {
        // The relations a query reads (its rule's dependencies, as a view's).
        "relations" => view(
            "SELECT DISTINCT c.relkind::text, pg_catalog.format('%I.%I', n.nspname, c.relname) \
               FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid \
               JOIN pg_catalog.pg_class c ON c.oid = d.refobjid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.ev_class = $v \
                AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> $v ORDER BY 2",
        ),
        "deparse" => view("SET LOCAL search_path = pg_catalog; SELECT pg_catalog.pg_get_viewdef($v, true)"),
        "relation" => format!(
            "SELECT 'kind', c.relkind::text, pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass({a}) \
             UNION ALL SELECT 'col', attnum::text, attname FROM pg_catalog.pg_attribute \
              WHERE attrelid = pg_catalog.to_regclass({a}) AND attnum > 0 AND NOT attisdropped \
             UNION ALL (SELECT 'pk', k.n::text, a.attname FROM pg_catalog.pg_index i \
                JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true \
                JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
               WHERE i.indrelid = pg_catalog.to_regclass({a}) AND i.indisprimary ORDER BY k.n)",
            a = literal(arg)
        ),
        "viewdef" => format!(
            "SELECT pg_catalog.pg_get_viewdef(c.oid, true) FROM pg_catalog.pg_class c \
              WHERE c.oid = pg_catalog.to_regclass({}) AND c.relkind = 'v'",
            literal(arg)
        ),
        "notnull" => {
            let (t, col) = arg.split_once('\t').expect("table\\tcolumn");
            format!(
                "SELECT attnotnull::text FROM pg_catalog.pg_attribute \
                  WHERE attrelid = pg_catalog.to_regclass({}) AND attname = {} AND NOT attisdropped",
                literal(t),
                literal(col)
            )
        }
        "bool" => format!("SELECT ({arg})::text"),
        other => panic!("unknown question {other}"),
    };
    match rows(c, &sql) {
        Ok(r) => r
            .iter()
            .map(|row| row.join("\t"))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK");
            format!("ERROR: {e}")
        }
    }
}

/// A relation as planning sees it.
struct Relation {
    kind: String,
    qualified: String,
    columns: Vec<(i16, String)>,
    pk: Vec<String>,
}

/// The planning of one corpus entry (its internal tables numbered from 1).
struct Entry<'a> {
    name: String,
    pg: &'a RefCell<Pg>,
    /// Internal tables made: defining query, quoted name.
    made: Vec<(String, String)>,
    next: usize,
}

/// A planned stream table, rendered.
struct Built {
    text: String,
    /// The storage's hidden columns.
    hidden: Vec<(String, String)>,
}

impl Entry<'_> {
    fn ask(&self, kind: &str, arg: &str) -> String {
        self.pg.borrow_mut().ask(&self.name, kind, arg)
    }

    fn output(&self, sql: &str) -> Result<Vec<OutputColumn>, String> {
        let a = self.ask("output", sql);
        if let Some(e) = a.strip_prefix("ERROR: ") {
            return Err(e.to_string());
        }
        Ok(a.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, t) = l.split_once('\t').expect("name\\ttype");
                OutputColumn {
                    name: n.to_string(),
                    type_sql: t.to_string(),
                    collation: None,
                }
            })
            .collect())
    }

    fn relation(&self, name: &str) -> Option<Relation> {
        let a = self.ask("relation", name);
        let mut r = Relation {
            kind: String::new(),
            qualified: String::new(),
            columns: Vec::new(),
            pk: Vec::new(),
        };
        for l in a.lines() {
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            match f.as_slice() {
                ["kind", k, q] => {
                    r.kind = k.to_string();
                    r.qualified = q.to_string();
                }
                ["col", n, c] => r.columns.push((n.parse().expect("attnum"), c.to_string())),
                ["pk", _, c] => r.pk.push(c.to_string()),
                _ => {}
            }
        }
        (!r.kind.is_empty()).then_some(r)
    }

    fn internal(&self, qualified: &str) -> bool {
        self.made
            .iter()
            .any(|(_, t)| t.replace('"', "") == qualified.replace('"', ""))
    }

    /// The source as the engine sees it (`src/plan.rs` `source_table`); the buffer is numbered
    /// by name, not OID, so that the files do not change with OIDs.
    fn source_table(&self, r: &Relation, own_param: usize) -> SourceTable {
        let id = r.qualified.bytes().fold(2_166_136_261u32, |h, b| {
            (h ^ b as u32).wrapping_mul(16_777_619)
        }) % 90_000
            + 10_000;
        SourceTable {
            quoted: r.qualified.clone(),
            buffer: quote_qualified(CHANGES_SCHEMA, &render::buffer_table(id)),
            columns: r.columns.clone(),
            primary_key: if !r.pk.is_empty() {
                Some(r.pk.clone())
            } else if self.internal(&r.qualified) {
                Some(vec![render::ROW_ID.to_string()])
            } else {
                None
            },
            own_param,
            relevant: None,
        }
    }

    /// `src/plan.rs` `differential`: the query's FROM tables resolved, the plan, the probe.
    fn differential(&self, query: &str) -> Result<(Plan, String), String> {
        let relations = self.ask("relations", query);
        let relations: Vec<(&str, &str)> = relations
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .collect();
        if let Some((_, v)) = relations.iter().find(|(k, _)| *k == "v") {
            return Err(format!("view {v} (supported in a later version)"));
        }
        let from = pg_trickle_core::ivm::parse::from_tables(query)?;
        let mut distinct: Vec<String> = Vec::new();
        let mut sources = Vec::new();
        for t in &from {
            let r = self
                .relation(&t.name)
                .ok_or_else(|| format!("table {} that pg_trickle cannot resolve", t.name))?;
            if r.kind != "r" {
                return Err(format!("relation {} that is not a table", t.name));
            }
            let param = match distinct.iter().position(|q| *q == r.qualified) {
                Some(i) => i,
                None => {
                    distinct.push(r.qualified.clone());
                    distinct.len() - 1
                }
            };
            sources.push(self.source_table(&r, 3 + param));
        }
        let tables = relations.iter().filter(|(k, _)| *k == "r").count();
        if tables != distinct.len() {
            return Err(format!(
                "{tables} tables where the FROM clause names {}",
                distinct.len()
            ));
        }
        let plan = Plan::new(query, &sources, &mut |sql| {
            Ok(self.output(sql)?.into_iter().map(|c| c.type_sql).collect())
        })?;
        Ok((plan, scan::probe_sql(&scan::probe_sources(&sources))))
    }

    /// `src/plan.rs` `render_differential`.
    fn render(plan: &Plan, probe: &str, schema: &str, name: &str, visible: &[String]) -> String {
        let storage = quote_qualified(schema, name);
        let hidden: Vec<String> = plan.hidden_columns().into_iter().map(|(n, _)| n).collect();
        let kind = match plan {
            Plan::Rows { .. } => "ROWS",
            Plan::Bag { .. } | Plan::Recursive { .. } => "BAG",
            Plan::Groups(_) => "GROUPS",
        };
        format!(
            "== plan: DIFFERENTIAL, {kind}\n{}\n\n== full refresh\n{}\n\n== delta refresh\n{}\n\n== change probe\n{}\n",
            plan.explain_with_delta(&storage),
            layout(&render::merge_sql(schema, name, visible, &hidden, &plan.full_rows_sql(), MergeKind::Full)),
            layout(&render::merge_sql(schema, name, visible, &hidden, &plan.delta_sql(&storage), plan.merge_kind())),
            layout(probe),
        )
    }

    /// `src/plan.rs` `attempt`: TopK, or the query as written.
    fn attempt(&mut self, schema: &str, name: &str, query: &str) -> Result<Built, String> {
        let columns = self.output(query)?;
        let visible: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        match topk::split(query, &visible) {
            Some(Err(reason)) => Err(reason.into()),
            Some(Ok(topk)) => {
                let (plan, probe) = self.differential(&topk.inner)?;
                let inner_columns = self.output(&topk.inner)?;
                let inner_visible: Vec<String> =
                    inner_columns.iter().map(|c| c.name.clone()).collect();
                let iname = "topk_1";
                let internal = quote_qualified(CHANGES_SCHEMA, iname);
                let mut ddl = render::storage_ddl_with_hidden(
                    CHANGES_SCHEMA,
                    iname,
                    &inner_columns,
                    &plan.hidden_columns(),
                );
                ddl.push(topk.index_sql(&internal, &visible));
                let merge = render::merge_sql(
                    schema,
                    name,
                    &visible,
                    &[],
                    &render::full_rows_sql(
                        &topk.top_sql(
                            RelName::Qualified(Name::quoted(CHANGES_SCHEMA), Name::quoted(iname)),
                            &visible,
                        ),
                        &columns,
                    ),
                    MergeKind::Full,
                );
                Ok(Built {
                    hidden: Vec::new(),
                    text: format!(
                        "== TopK\n{}\n\n== internal table {internal}\n{}\n{}\n== top rows refresh\n{}\n",
                        topk.explain(&visible),
                        ddl.join("\n"),
                        Self::render(&plan, &probe, CHANGES_SCHEMA, iname, &inner_visible),
                        layout(&merge)
                    ),
                })
            }
            None => {
                let (plan, probe) = self.differential(query)?;
                Ok(Built {
                    text: Self::render(&plan, &probe, schema, name, &visible),
                    hidden: plan.hidden_columns(),
                })
            }
        }
    }

    /// `src/nested.rs` `differential`: as written, or over internal stream tables.
    fn plan(&mut self, schema: &str, name: &str, query: &str) -> Result<Built, String> {
        let reason = match self.attempt(schema, name, query) {
            Ok(b) => return Ok(b),
            Err(r) => r,
        };
        let made_before = self.made.len();
        let next_before = self.next;
        match self.nested(schema, name, query) {
            Ok(b) => Ok(b),
            Err(_) => {
                self.made.truncate(made_before);
                self.next = next_before;
                Err(reason)
            }
        }
    }

    fn nested(&mut self, schema: &str, name: &str, query: &str) -> Result<Built, String> {
        let made = self.made.clone();
        let mut pending: Vec<(String, String)> = Vec::new();
        let mut next = self.next;
        let cat = Cat(self);
        let rewritten = nest::nest(query, &cat, &mut |sql: &str| {
            if let Some((_, t)) = made.iter().chain(&pending).find(|(q, _)| q == sql) {
                return (t.clone(), false);
            }
            next += 1;
            let table = quote_qualified(CHANGES_SCHEMA, &format!("sub_{next}"));
            pending.push((sql.to_string(), table.clone()));
            (table, true)
        })
        .ok_or_else(String::new)?;
        self.next = next;
        let mut text = String::new();
        for child in &rewritten.children {
            if let Some(check) = &child.empty_check {
                if self.ask("bool", check) != "true" {
                    return Err(
                        "a correlated scalar subquery whose value over no rows is not NULL".into(),
                    );
                }
            }
            let cname = child
                .table
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string();
            let built = self
                .plan(CHANGES_SCHEMA, &cname, &child.sql)
                .map_err(|r| format!("internal stream table {cname}: {r}"))?;
            // Its storage, as the extension creates it, for the plans that read it.
            let columns = self.output(&child.sql)?;
            let hidden = built.hidden.clone();
            let mut ddl =
                render::storage_ddl_with_hidden(CHANGES_SCHEMA, &cname, &columns, &hidden);
            if !child.index.is_empty() {
                let cols: Vec<String> = child.index.iter().map(|c| quote_ident(c)).collect();
                ddl.push(format!(
                    "CREATE INDEX ON {} ({})",
                    child.table,
                    cols.join(", ")
                ));
            }
            self.pg.borrow_mut().run(&ddl);
            self.made.push((child.sql.clone(), child.table.clone()));
            let _ = writeln!(
                text,
                "== internal stream table {}\n{}\n{}\n{}",
                child.table,
                child.sql,
                ddl.join("\n"),
                indent(&built.text)
            );
        }
        let columns = self.output(query)?;
        let rewritten_columns = self.output(&rewritten.query)?;
        if columns != rewritten_columns {
            return Err(format!(
                "the rewritten query {} returns other columns",
                rewritten.query
            ));
        }
        let built = self
            .attempt(schema, name, &rewritten.query)
            .map_err(|r| format!("the rewritten query {}: {r}", rewritten.query))?;
        Ok(Built {
            hidden: built.hidden,
            text: format!(
                "== rewritten over internal stream tables\n{}\n{}\n{text}{}",
                rewritten.query,
                if rewritten.views.is_empty() {
                    String::new()
                } else {
                    format!("(views inlined: {})\n", rewritten.views.join(", "))
                },
                built.text
            ),
        })
    }
}

/// The entry's answers as `nest` asks for them.
struct Cat<'a, 'b>(&'a Entry<'b>);

impl nest::Catalog for Cat<'_, '_> {
    fn view(&self, name: &str) -> Option<String> {
        let a = self.0.ask("viewdef", name);
        (!a.is_empty()).then_some(a)
    }

    fn columns(&self, name: &str) -> Option<Vec<String>> {
        let r = self.0.relation(name)?;
        Some(r.columns.into_iter().map(|(_, n)| n).collect())
    }

    fn not_null(&self, table: &str, column: &str) -> bool {
        self.0.ask("notnull", &format!("{table}\t{column}")) == "true"
    }
}

/// Keywords a statement is broken before, so that a change shows as the lines it touches.
const BREAKS: &[&str] = &[
    "SELECT ",
    "FROM ",
    "WHERE ",
    "GROUP BY ",
    "HAVING ",
    "UNION ALL ",
    "UNION ",
    "EXCEPT ",
    "INTERSECT ",
    "LEFT JOIN ",
    "RIGHT JOIN ",
    "FULL JOIN ",
    "CROSS JOIN ",
    "JOIN ",
    "WITH ",
    "MERGE ",
    "USING ",
    "WHEN ",
    "RETURNING ",
    "ORDER BY ",
    "LIMIT ",
];

/// `sql` one clause a line, indented by parenthesis depth (quoted text left as it is).
fn layout(sql: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in sql.char_indices() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => {
                if matches!(prev, ' ' | '(')
                    && i > 0
                    && BREAKS.iter().any(|k| sql[i..].starts_with(k))
                    && !(sql[i..].starts_with("FROM ") && out.ends_with("DISTINCT "))
                    && !(sql[i..].starts_with("JOIN ")
                        && ["LEFT ", "RIGHT ", "FULL ", "CROSS "]
                            .iter()
                            .any(|k| out.ends_with(k)))
                {
                    while out.ends_with(' ') {
                        out.pop();
                    }
                    out.push('\n');
                    out.push_str(&"  ".repeat(depth));
                }
                match c {
                    '\'' | '"' => quote = Some(c),
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        prev = c;
        if c == '\n' && quote.is_none() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            prev = ' ';
            continue;
        }
        out.push(c);
    }
    out.trim_start().to_string()
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The golden text of one corpus query, planned as `create_stream_table` plans it in AUTO mode.
fn golden(pg: &RefCell<Pg>, name: &str, query: &str) -> String {
    pg.borrow_mut().begin();
    let mut e = Entry {
        name: name.to_string(),
        pg,
        made: Vec::new(),
        next: 0,
    };
    // `*` is stored and planned as PostgreSQL prints the query back (every column named).
    let query = if star::selects_wildcard(query) {
        e.ask("deparse", query)
    } else {
        query.to_string()
    };
    let mut out = format!("-- {name}\n{query}\n\n");
    match e.plan("public", name, &query) {
        Ok(b) => out.push_str(&b.text),
        Err(reason) => {
            let columns = e.output(&query).unwrap_or_default();
            let visible: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
            let _ = write!(
                out,
                "== plan: FULL ({})\n\n== full refresh\n{}\n",
                if reason.is_empty() {
                    "no differential plan".to_string()
                } else {
                    format!("uses {reason}")
                },
                layout(&render::merge_sql(
                    "public",
                    name,
                    &visible,
                    &[],
                    &render::full_rows_sql(&query, &columns),
                    MergeKind::Full
                ))
            );
        }
    }
    out
}

/// Plans every entry of `corpus` and compares (or, updating, writes) its golden file.
fn check(
    pg: &RefCell<Pg>,
    corpus: &str,
    entries: &[(String, String)],
    update: bool,
) -> Vec<String> {
    let dir = golden_dir().join(corpus);
    if update {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("golden directory");
    }
    let mut failures = Vec::new();
    for (name, query) in entries {
        let text = golden(pg, name, query);
        let path = dir.join(format!("{name}.txt"));
        if update {
            std::fs::write(&path, &text).expect("golden file written");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != text {
            let line = want
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| want.lines().count().min(text.lines().count()));
            failures.push(format!(
                "{}: differs from line {}:\n  golden: {}\n  now:    {}",
                path.display(),
                line + 1,
                want.lines().nth(line).unwrap_or("<end>"),
                text.lines().nth(line).unwrap_or("<end>")
            ));
        }
    }
    failures
}

#[test]
fn golden_plans() {
    let update = std::env::var("PGT_GOLDEN").as_deref() == Ok("update");
    let pg = RefCell::new(Pg::new(update));
    let shapes: Vec<(String, String)> = oracle_shapes::SHAPES
        .iter()
        .enumerate()
        .map(|(i, q)| (format!("s{i:03}"), q.to_string()))
        .collect();
    let queries: Vec<(String, String)> = tpch::QUERIES
        .iter()
        .map(|(n, q)| (n.to_string(), q.to_string()))
        .collect();
    let mut failures = check(&pg, "oracle", &shapes, update);
    failures.extend(check(&pg, "tpch", &queries, update));
    if update {
        pg.borrow().save();
        return;
    }
    assert!(
        failures.is_empty(),
        "{} golden plan(s) changed (after a deliberate change: scripts/golden.sh, then review git diff tests/golden):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
