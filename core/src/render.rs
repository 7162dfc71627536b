//! SQL that pg_trickle generates for a stream table's storage, for change capture on a source, and
//! for a FULL refresh. Every identifier is quoted; no user value is spliced in except the defining
//! query itself, which PostgreSQL has already parsed and analysed.

use crate::ident::{quote_ident, quote_qualified};
use crate::ir::{
    sql, Action, Cte, Expr, From, Item, Matched, Merge, MergeClause, Name, Op, Query, RelName,
    Select, SetExpr, Statement,
};

/// Name of the row-identity column of every storage table.
pub const ROW_ID: &str = "__pgt_row_id";
/// Prefix reserved for pg_trickle's hidden columns and aliases.
pub const RESERVED_PREFIX: &str = "__pgt_";
/// Schema of the change buffers and capture functions.
pub const CHANGES_SCHEMA: &str = "pgtrickle_changes";
/// Names of the capture triggers installed on a source table.
pub const ROW_TRIGGER: &str = "pgtrickle_capture";
pub const TRUNCATE_TRIGGER: &str = "pgtrickle_capture_truncate";
/// Prefix of the statement triggers that refresh an IMMEDIATE stream table (`<prefix><pgt_id>`).
pub const IMMEDIATE_TRIGGER_PREFIX: &str = "pgtrickle_immediate_";

/// One output column of a defining query, as PostgreSQL describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    pub name: String,
    /// `format_type(typid, typmod)`, e.g. `numeric(10,2)`.
    pub type_sql: String,
    /// A quoted, qualified collation when it differs from the type's default.
    pub collation: Option<String>,
}

/// One column of a source table, captured into its change buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceColumn {
    pub attnum: i16,
    pub name: String,
    /// The exact stored type with its typmod (domains resolved to their base type, so that a
    /// buffer row with only a new or only an old image never violates a domain constraint).
    pub type_sql: String,
}

/// Change-buffer table name for a source table OID.
pub fn buffer_table(source_oid: u32) -> String {
    format!("changes_{source_oid}")
}

/// Capture trigger function name for a source table OID.
pub fn capture_function(source_oid: u32) -> String {
    format!("capture_{source_oid}")
}

fn old_col(c: &SourceColumn) -> String {
    quote_ident(&format!("old_{}", c.attnum))
}

fn new_col(c: &SourceColumn) -> String {
    quote_ident(&format!("new_{}", c.attnum))
}

/// `CREATE TABLE` for a stream table's storage plus its unique row-identity index.
pub fn storage_ddl(schema: &str, name: &str, cols: &[OutputColumn]) -> Vec<String> {
    let table = quote_qualified(schema, name);
    let mut defs: Vec<String> = cols.iter().map(column_def).collect();
    defs.push(format!("{} bigint NOT NULL", quote_ident(ROW_ID)));
    vec![
        format!("CREATE TABLE {table} ({})", defs.join(", ")),
        format!("CREATE UNIQUE INDEX ON {table} ({})", quote_ident(ROW_ID)),
    ]
}

fn column_def(c: &OutputColumn) -> String {
    let mut s = format!("{} {}", quote_ident(&c.name), c.type_sql);
    if let Some(coll) = &c.collation {
        s.push_str(" COLLATE ");
        s.push_str(coll);
    }
    s
}

/// `ALTER TABLE` statements that turn storage with `old` user columns into storage with `new`
/// ones, keeping the table (its OID, grants and user indexes on kept columns). The table must be
/// empty (the caller deletes its rows first, since row identities hash whole rows). Empty when
/// the columns are equal.
pub fn migrate_storage_ddl(
    schema: &str,
    name: &str,
    old: &[OutputColumn],
    new: &[OutputColumn],
) -> Vec<String> {
    if old == new {
        return Vec::new();
    }
    let table = quote_qualified(schema, name);
    // Columns kept as they are: the longest common prefix, so the stored order always matches
    // the query's. Everything after it is rebuilt, with the row identity last again.
    let keep = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let mut actions: Vec<String> = old[keep..]
        .iter()
        .map(|c| format!("DROP COLUMN {}", quote_ident(&c.name)))
        .collect();
    actions.push(format!("DROP COLUMN {}", quote_ident(ROW_ID)));
    actions.extend(
        new[keep..]
            .iter()
            .map(|c| format!("ADD COLUMN {}", column_def(c))),
    );
    actions.push(format!(
        "ADD COLUMN {} bigint NOT NULL",
        quote_ident(ROW_ID)
    ));
    vec![
        format!("ALTER TABLE {table} {}", actions.join(", ")),
        format!("CREATE UNIQUE INDEX ON {table} ({})", quote_ident(ROW_ID)),
    ]
}

/// The change buffer of a source: one row per captured change, in the writer's transaction.
/// `action` is `I`, `U`, `D` or `T` (TRUNCATE: everything before it is void).
pub fn buffer_ddl(source_oid: u32, cols: &[SourceColumn]) -> Vec<String> {
    let table = quote_qualified(CHANGES_SCHEMA, &buffer_table(source_oid));
    let mut defs = vec![
        "change_id bigint GENERATED ALWAYS AS IDENTITY (CACHE 64) PRIMARY KEY".to_string(),
        "xid xid8 NOT NULL DEFAULT pg_current_xact_id()".to_string(),
        "action \"char\" NOT NULL".to_string(),
    ];
    for c in cols {
        defs.push(format!("{} {}", old_col(c), c.type_sql));
    }
    for c in cols {
        defs.push(format!("{} {}", new_col(c), c.type_sql));
    }
    vec![
        format!("CREATE TABLE {table} ({})", defs.join(", ")),
        format!("CREATE INDEX ON {table} (xid)"),
    ]
}

/// The body of the capture function of a source with columns `cols`: it copies the written
/// row images into the change buffer.
pub fn capture_body(source_oid: u32, cols: &[SourceColumn]) -> String {
    let buffer = quote_qualified(CHANGES_SCHEMA, &buffer_table(source_oid));
    let list = |f: fn(&SourceColumn) -> String| cols.iter().map(f).collect::<Vec<_>>().join(", ");
    let vals = |rec: &str| {
        cols.iter()
            .map(|c| format!("{rec}.{}", quote_ident(&c.name)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (olds, news) = (list(old_col), list(new_col));
    let sep = if cols.is_empty() { "" } else { ", " };
    format!(
        "BEGIN\n\
         IF TG_OP = 'INSERT' THEN\n  INSERT INTO {buffer} (action{sep}{news}) VALUES ('I'{sep}{nv});\n\
         ELSIF TG_OP = 'UPDATE' THEN\n  INSERT INTO {buffer} (action{sep}{olds}{sep}{news}) VALUES ('U'{sep}{ov}{sep}{nv});\n\
         ELSIF TG_OP = 'DELETE' THEN\n  INSERT INTO {buffer} (action{sep}{olds}) VALUES ('D'{sep}{ov});\n\
         ELSE\n  INSERT INTO {buffer} (action) VALUES ('T');\n\
         END IF;\n\
         RETURN NULL;\n\
         END",
        nv = vals("NEW"),
        ov = vals("OLD"),
    )
}

/// `CREATE [OR REPLACE] FUNCTION` of the capture function of a source with columns `cols`.
pub fn capture_function_ddl(source_oid: u32, cols: &[SourceColumn], or_replace: bool) -> String {
    format!(
        "CREATE {}FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER \
         SET search_path = pg_catalog, pg_temp AS {}",
        if or_replace { "OR REPLACE " } else { "" },
        quote_qualified(CHANGES_SCHEMA, &capture_function(source_oid)),
        dollar_quote(&capture_body(source_oid, cols))
    )
}

/// `ALTER TABLE` actions that make a change buffer with columns `have` (name, type) hold the
/// images of a source with columns `cols`: columns of new attributes added, of retyped ones
/// re-created empty (`USING NULL`: no stream table reads a column whose type can change), of
/// dropped ones removed. Empty when the buffer fits.
pub fn buffer_sync_actions(cols: &[SourceColumn], have: &[(String, String)]) -> Vec<String> {
    let mut actions = Vec::new();
    let mut wanted = Vec::new();
    for c in cols {
        for name in [format!("old_{}", c.attnum), format!("new_{}", c.attnum)] {
            match have.iter().find(|(n, _)| *n == name) {
                None => actions.push(format!("ADD COLUMN {} {}", quote_ident(&name), c.type_sql)),
                Some((_, t)) if *t != c.type_sql => actions.push(format!(
                    "ALTER COLUMN {} TYPE {} USING NULL",
                    quote_ident(&name),
                    c.type_sql
                )),
                Some(_) => {}
            }
            wanted.push(name);
        }
    }
    for (n, _) in have {
        if !wanted.contains(n) {
            actions.push(format!("DROP COLUMN {}", quote_ident(n)));
        }
    }
    actions
}

/// The capture function and its triggers on the source table `source` (already quoted).
pub fn capture_ddl(source_oid: u32, source: &str, cols: &[SourceColumn]) -> Vec<String> {
    let func = quote_qualified(CHANGES_SCHEMA, &capture_function(source_oid));
    vec![
        capture_function_ddl(source_oid, cols, false),
        // Writers need no rights on pg_trickle's schemas: it runs as the extension's owner, and
        // only its triggers call it.
        format!("REVOKE EXECUTE ON FUNCTION {func}() FROM PUBLIC"),
        row_trigger_ddl(source_oid, source),
        format!(
            "CREATE TRIGGER {} AFTER TRUNCATE ON {source} FOR EACH STATEMENT EXECUTE FUNCTION {func}()",
            quote_ident(TRUNCATE_TRIGGER)
        ),
    ]
}

/// The row capture trigger on the source table `source` (already quoted).
pub fn row_trigger_ddl(source_oid: u32, source: &str) -> String {
    format!(
        "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {source} FOR EACH ROW EXECUTE FUNCTION {}()",
        quote_ident(ROW_TRIGGER),
        quote_qualified(CHANGES_SCHEMA, &capture_function(source_oid))
    )
}

/// The statement the WAL consumer writes a batch of one source's changes with (the same buffer
/// rows the capture trigger writes). Parameters, all `text[]` of one element per change: `$1` the
/// writing transaction's id (xid8), `$2` the action, then per column its old values, then per
/// column its new values, each in its type's text form (NULL for none). Each value is read back
/// with its type's input function, casting to the buffer column's exact type and typmod.
pub fn wal_insert_sql(source_oid: u32, cols: &[SourceColumn]) -> String {
    let buffer = quote_qualified(CHANGES_SCHEMA, &buffer_table(source_oid));
    let mut targets = vec!["xid".to_string(), "action".to_string()];
    let mut exprs = vec!["u.x::xid8".to_string(), "u.a::\"char\"".to_string()];
    let mut names = vec!["x".to_string(), "a".to_string()];
    for (side, col) in [
        ("o", old_col as fn(&SourceColumn) -> String),
        ("n", new_col),
    ] {
        for c in cols {
            targets.push(col(c));
            let name = format!("{side}{}", c.attnum);
            exprs.push(format!("u.{name}::{}", c.type_sql));
            names.push(name);
        }
    }
    let params: Vec<String> = (1..=names.len()).map(|i| format!("${i}::text[]")).collect();
    format!(
        "INSERT INTO {buffer} ({}) SELECT {} FROM unnest({}) AS u({})",
        targets.join(", "),
        exprs.join(", "),
        params.join(", "),
        names.join(", ")
    )
}

/// Removes capture from a source: its triggers, function and buffer.
pub fn drop_capture_ddl(source_oid: u32, source: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(source) = source {
        v.push(format!(
            "DROP TRIGGER IF EXISTS {} ON {source}",
            quote_ident(ROW_TRIGGER)
        ));
        v.push(format!(
            "DROP TRIGGER IF EXISTS {} ON {source}",
            quote_ident(TRUNCATE_TRIGGER)
        ));
    }
    v.push(format!(
        "DROP FUNCTION IF EXISTS {}() CASCADE",
        quote_qualified(CHANGES_SCHEMA, &capture_function(source_oid))
    ));
    v.push(format!(
        "DROP TABLE IF EXISTS {}",
        quote_qualified(CHANGES_SCHEMA, &buffer_table(source_oid))
    ));
    v
}

/// Dollar-quotes `body` with a tag that does not occur in it.
fn dollar_quote(body: &str) -> String {
    let mut tag = "$pgt$".to_string();
    let mut i = 0;
    while body.contains(&tag) {
        i += 1;
        tag = format!("$pgt{i}$");
    }
    format!("{tag}{body}{tag}")
}

/// The defining query's rows with a content-based row identity (used when the query is refreshed
/// FULL): a 64-bit hash of the row's text form, re-hashed with the occurrence number for the 2nd,
/// 3rd, ... copy of a duplicate row, so that duplicates are counted, not collapsed, and identical
/// contents always get identical ids. Columns: `__pgt_c<i>`, `__pgt_row_id`.
pub fn full_rows(query: &str, cols: &[OutputColumn]) -> Query {
    let out = |i: usize| Name::quoted(format!("__pgt_c{i}"));
    let plain = || -> Vec<Item> {
        (1..=cols.len())
            .map(|i| Item::bare(Expr::Col(None, out(i))))
            .collect()
    };
    let h = || Expr::hidden(None, "__pgt_h");
    let n = || Expr::hidden(None, "__pgt_n");
    let mut hashed: Vec<Item> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Item::new(
                Expr::Col(
                    Some(Name::internal("__pgt_q")),
                    Name::quoted(c.name.clone()),
                ),
                out(i + 1),
            )
        })
        .collect();
    hashed.push(Item::new(
        Expr::call(
            "hashtextextended",
            vec![
                Expr::cast(Expr::hidden(None, "__pgt_q"), "text"),
                Expr::int(0),
            ],
        ),
        Name::internal("__pgt_h"),
    ));
    let mut numbered = plain();
    numbered.push(Item::bare(h()));
    numbered.push(Item::new(
        Expr::Call {
            func: "row_number",
            args: Vec::new(),
            filter: None,
            partition_by: Some(vec![h()]),
        },
        Name::internal("__pgt_n"),
    ));
    let mut top = plain();
    top.push(Item::new(
        Expr::Case(
            vec![(Expr::bin(Op::Eq, n(), Expr::int(1)), h())],
            Some(Box::new(Expr::call("hashint8extended", vec![h(), n()]))),
        ),
        Name::quoted(ROW_ID),
    ));
    let from = |query: Statement, alias: &str| vec![From::subquery(query, Name::internal(alias))];
    let stage = |items: Vec<Item>, source: Statement, alias: &str| {
        Statement::Query(Query::select(Select {
            items,
            from: from(source, alias),
            ..Select::default()
        }))
    };
    let q = stage(hashed, Statement::User(query.to_string()), "__pgt_q");
    let q = stage(numbered, q, "__pgt_q1");
    Query::select(Select {
        items: top,
        from: from(q, "__pgt_q2"),
        ..Select::default()
    })
}

/// [`full_rows`] as SQL.
pub fn full_rows_sql(query: &str, cols: &[OutputColumn]) -> String {
    sql::query(&full_rows(query, cols))
}

/// How a MERGE source's rows are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// The complete result: insert new identities, update changed rows, delete the rest.
    Full,
    /// Row deltas with `__pgt_net`: > 0 upsert, < 0 delete.
    DeltaRows,
    /// Group deltas with `__pgt_keep`: true upsert, false delete.
    DeltaGroups,
}

/// One statement (so one snapshot) that applies `source` (columns `__pgt_c<i>`, `__pgt_row_id`,
/// `hidden`...) to the storage table and returns the snapshot it ran in, the writing transaction
/// (if it has an id) and the rows inserted, updated and deleted.
pub fn merge(
    schema: &str,
    name: &str,
    visible: &[String],
    hidden: &[String],
    source: Statement,
    kind: MergeKind,
) -> Query {
    let (t, s) = ("__pgt_t", "__pgt_s");
    let col = |rel: &str, c: &Name| Expr::Col(Some(Name::internal(rel)), c.clone());
    let rid = Name::quoted(ROW_ID);
    let mut targets: Vec<Name> = visible.iter().map(|c| Name::quoted(c.clone())).collect();
    targets.extend(hidden.iter().map(|h| Name::quoted(h.clone())));
    let mut sources: Vec<Name> = (1..=visible.len())
        .map(|i| Name::quoted(format!("__pgt_c{i}")))
        .collect();
    sources.extend(hidden.iter().map(|h| Name::quoted(h.clone())));
    let source_values: Vec<Expr> = sources.iter().map(|c| col(s, c)).collect();
    let update = if targets.is_empty() {
        Action::DoNothing
    } else {
        Action::Update(targets.iter().cloned().zip(source_values.clone()).collect())
    };
    let mut ins_cols = targets.clone();
    ins_cols.push(rid.clone());
    let mut ins_vals = source_values.clone();
    ins_vals.push(col(s, &rid));
    let insert = Action::Insert(ins_cols, ins_vals);
    let clause = |when, cond, action| MergeClause { when, cond, action };
    let flag = |c: &str| Expr::hidden(Some(s), c);
    let clauses = match kind {
        MergeKind::Full => vec![
            clause(
                Matched::Matched,
                Some(Expr::bin(
                    Op::IsDistinctFrom,
                    Expr::cast(
                        Expr::Row(targets.iter().map(|c| col(t, c)).collect()),
                        "text",
                    ),
                    Expr::cast(Expr::Row(source_values), "text"),
                )),
                update,
            ),
            clause(Matched::NotMatchedByTarget, None, insert),
            clause(Matched::NotMatchedBySource, None, Action::Delete),
        ],
        MergeKind::DeltaRows => vec![
            clause(
                Matched::Matched,
                Some(Expr::bin(Op::Lt, flag("__pgt_net"), Expr::int(0))),
                Action::Delete,
            ),
            clause(Matched::Matched, None, update),
            clause(
                Matched::NotMatched,
                Some(Expr::bin(Op::Gt, flag("__pgt_net"), Expr::int(0))),
                insert,
            ),
        ],
        MergeKind::DeltaGroups => vec![
            clause(
                Matched::Matched,
                Some(Expr::negated(flag("__pgt_keep"))),
                Action::Delete,
            ),
            clause(Matched::Matched, None, update),
            clause(Matched::NotMatched, Some(flag("__pgt_keep")), insert),
        ],
    };
    let action = Expr::hidden(None, "__pgt_action");
    let count = |what: &str, alias: &str| {
        Item::new(
            Expr::Call {
                func: "count",
                args: vec![Expr::Star(None)],
                filter: Some(Box::new(Expr::bin(Op::Eq, action.clone(), Expr::str(what)))),
                partition_by: None,
            },
            Name::internal(alias),
        )
    };
    let m = Merge {
        target: RelName::Qualified(Name::quoted(schema), Name::quoted(name)),
        target_alias: Name::internal(t),
        source: Box::new(source),
        source_alias: Name::internal(s),
        on: Expr::bin(Op::Eq, col(t, &rid), col(s, &rid)),
        clauses,
        returning: vec![Item::new(
            Expr::call("merge_action", vec![]),
            Name::internal("__pgt_action"),
        )],
    };
    Query {
        with: vec![Cte {
            name: Name::internal("__pgt_m"),
            materialized: false,
            body: Statement::Merge(m),
        }],
        body: SetExpr::Select(Box::new(Select {
            items: vec![
                Item::new(
                    Expr::cast(Expr::call("pg_catalog.pg_current_snapshot", vec![]), "text"),
                    Name::internal("frontier"),
                ),
                Item::new(
                    Expr::cast(
                        Expr::call("pg_catalog.pg_current_xact_id_if_assigned", vec![]),
                        "text",
                    ),
                    Name::internal("xid"),
                ),
                count("INSERT", "inserted"),
                count("UPDATE", "updated"),
                count("DELETE", "deleted"),
            ],
            from: vec![From::Table(RelName::Local(Name::internal("__pgt_m")), None)],
            ..Select::default()
        })),
        order_by: Vec::new(),
        limit: None,
    }
}

/// [`merge`] of a source given as SQL text, as SQL.
pub fn merge_sql(
    schema: &str,
    name: &str,
    visible: &[String],
    hidden: &[String],
    source: &str,
    kind: MergeKind,
) -> String {
    sql::query(&merge(
        schema,
        name,
        visible,
        hidden,
        Statement::Sql(source.to_string()),
        kind,
    ))
}

/// `CREATE TABLE` for storage with hidden columns after the row identity.
pub fn storage_ddl_with_hidden(
    schema: &str,
    name: &str,
    cols: &[OutputColumn],
    hidden: &[(String, String)],
) -> Vec<String> {
    let mut ddl = storage_ddl(schema, name, cols);
    if !hidden.is_empty() {
        let adds: Vec<String> = hidden
            .iter()
            .map(|(n, t)| format!("ADD COLUMN {} {t}", quote_ident(n)))
            .collect();
        ddl.insert(
            1,
            format!(
                "ALTER TABLE {} {}",
                quote_qualified(schema, name),
                adds.join(", ")
            ),
        );
    }
    ddl
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oc(name: &str, ty: &str) -> OutputColumn {
        OutputColumn {
            name: name.into(),
            type_sql: ty.into(),
            collation: None,
        }
    }

    #[test]
    fn storage_quotes_everything() {
        let ddl = storage_ddl(
            "public",
            "My ST",
            &[oc("a\"b", "integer"), oc("c", "numeric(10,2)")],
        );
        assert_eq!(
            ddl[0],
            "CREATE TABLE \"public\".\"My ST\" (\"a\"\"b\" integer, \"c\" numeric(10,2), \"__pgt_row_id\" bigint NOT NULL)"
        );
        assert_eq!(
            ddl[1],
            "CREATE UNIQUE INDEX ON \"public\".\"My ST\" (\"__pgt_row_id\")"
        );
    }

    #[test]
    fn migration_keeps_matching_columns() {
        let old = [oc("a", "integer"), oc("b", "text")];
        assert!(migrate_storage_ddl("s", "t", &old, &old).is_empty());
        let new = [oc("a", "integer"), oc("b", "bigint"), oc("c", "text")];
        assert_eq!(
            migrate_storage_ddl("s", "t", &old, &new)[0],
            "ALTER TABLE \"s\".\"t\" DROP COLUMN \"b\", DROP COLUMN \"__pgt_row_id\", ADD COLUMN \"b\" bigint, \
             ADD COLUMN \"c\" text, ADD COLUMN \"__pgt_row_id\" bigint NOT NULL"
        );
        let swapped = [oc("b", "text"), oc("a", "integer")];
        let ddl = migrate_storage_ddl("s", "t", &old, &swapped);
        assert!(ddl[0].starts_with("ALTER TABLE \"s\".\"t\" DROP COLUMN \"a\", DROP COLUMN \"b\""));
        assert_eq!(
            ddl[1],
            "CREATE UNIQUE INDEX ON \"s\".\"t\" (\"__pgt_row_id\")"
        );
    }

    #[test]
    fn capture_writes_typed_old_and_new_images() {
        let cols = [
            SourceColumn {
                attnum: 1,
                name: "id".into(),
                type_sql: "integer".into(),
            },
            SourceColumn {
                attnum: 3,
                name: "flag".into(),
                type_sql: "character(1)".into(),
            },
        ];
        let buf = buffer_ddl(42, &cols);
        assert!(buf[0].contains(
            "\"old_1\" integer, \"old_3\" character(1), \"new_1\" integer, \"new_3\" character(1)"
        ));
        let cap = capture_ddl(42, "\"public\".\"t\"", &cols);
        assert!(cap[0].contains("VALUES ('U', OLD.\"id\", OLD.\"flag\", NEW.\"id\", NEW.\"flag\")"));
        assert!(cap[0]
            .contains("INSERT INTO \"pgtrickle_changes\".\"changes_42\" (action) VALUES ('T')"));
        assert!(cap[0].contains("SECURITY DEFINER SET search_path = pg_catalog, pg_temp"));
        assert!(cap[1].starts_with("REVOKE EXECUTE ON FUNCTION"));
        assert!(
            cap[2].contains("FOR EACH ROW EXECUTE FUNCTION \"pgtrickle_changes\".\"capture_42\"()")
        );
        assert!(cap[3].contains("AFTER TRUNCATE"));
    }

    #[test]
    fn dollar_quote_avoids_collisions() {
        assert_eq!(dollar_quote("x"), "$pgt$x$pgt$");
        assert_eq!(dollar_quote("a $pgt$ b"), "$pgt1$a $pgt$ b$pgt1$");
    }

    #[test]
    fn merges_return_the_frontier_and_counts() {
        let full = merge_sql(
            "public",
            "s",
            &["a".into()],
            &[],
            &full_rows_sql("SELECT 1 AS a", &[oc("a", "integer")]),
            MergeKind::Full,
        );
        assert!(full.starts_with("WITH __pgt_m AS (MERGE INTO \"public\".\"s\""));
        assert!(full.contains("WHEN NOT MATCHED BY SOURCE THEN DELETE"));
        assert!(full.contains("pg_current_snapshot()::text AS frontier"));
        assert!(full.contains("FROM (SELECT 1 AS a\n) AS __pgt_q"));
        let rows = merge_sql(
            "public",
            "s",
            &["a".into()],
            &[],
            "SELECT 1",
            MergeKind::DeltaRows,
        );
        assert!(rows.contains("WHEN MATCHED AND __pgt_s.__pgt_net < 0 THEN DELETE"));
        let groups = merge_sql(
            "public",
            "s",
            &["a".into()],
            &["__pgt_count".into()],
            "SELECT 1",
            MergeKind::DeltaGroups,
        );
        assert!(groups.contains("\"__pgt_count\" = __pgt_s.\"__pgt_count\""));
        assert!(groups.contains("WHEN NOT MATCHED AND __pgt_s.__pgt_keep THEN INSERT"));
    }

    #[test]
    fn buffer_sync_adds_retypes_and_drops() {
        let cols = [
            SourceColumn {
                attnum: 1,
                name: "id".into(),
                type_sql: "integer".into(),
            },
            SourceColumn {
                attnum: 3,
                name: "c".into(),
                type_sql: "bigint".into(),
            },
        ];
        let have: Vec<(String, String)> = [
            ("old_1", "integer"),
            ("new_1", "integer"),
            ("old_2", "text"),
            ("new_2", "text"),
            ("old_3", "integer"),
            ("new_3", "integer"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(
            buffer_sync_actions(&cols, &have),
            vec![
                "ALTER COLUMN \"old_3\" TYPE bigint USING NULL",
                "ALTER COLUMN \"new_3\" TYPE bigint USING NULL",
                "DROP COLUMN \"old_2\"",
                "DROP COLUMN \"new_2\"",
            ]
        );
        assert!(buffer_sync_actions(&cols[..1], &have[..2]).is_empty());
        assert_eq!(
            buffer_sync_actions(&cols, &have[..2]),
            vec!["ADD COLUMN \"old_3\" bigint", "ADD COLUMN \"new_3\" bigint"]
        );
        assert!(capture_body(7, &cols).contains("VALUES ('I', NEW.\"id\", NEW.\"c\")"));
        assert!(capture_function_ddl(7, &cols, true).starts_with("CREATE OR REPLACE FUNCTION"));
    }
}
