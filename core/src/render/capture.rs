//! Change capture on a source: its change buffer, the capture function its row trigger runs, the
//! triggers, what the WAL consumer inserts, and what is dropped with them.

use super::{
    buffer_table, capture_function, SourceColumn, CHANGES_SCHEMA, ROW_TRIGGER, TRUNCATE_TRIGGER,
};
use crate::ident::{quote_ident, quote_qualified};

fn old_col(c: &SourceColumn) -> String {
    quote_ident(&format!("old_{}", c.attnum))
}

fn new_col(c: &SourceColumn) -> String {
    quote_ident(&format!("new_{}", c.attnum))
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
pub(super) fn dollar_quote(body: &str) -> String {
    let mut tag = "$pgt$".to_string();
    let mut i = 0;
    while body.contains(&tag) {
        i += 1;
        tag = format!("$pgt{i}$");
    }
    format!("{tag}{body}{tag}")
}
