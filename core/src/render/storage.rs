//! A stream table's storage: its table, the unique row-identity index, hidden columns, and the
//! migration of a storage to a new set of columns.

use super::{OutputColumn, ROW_ID};
use crate::ident::{quote_ident, quote_qualified};

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
