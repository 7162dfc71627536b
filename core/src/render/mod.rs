//! The statements pg_trickle generates outside the delta plans: a stream table's storage
//! ([`storage`]), change capture on a source ([`capture`]: buffers, capture functions, triggers,
//! the WAL consumer's insert), and applying a result to the storage ([`merge`]: the FULL rows
//! and the MERGE, built as plan nodes). Every identifier is quoted; no user value is spliced in
//! except the defining query itself, which PostgreSQL has already parsed and analysed.

pub mod capture;
pub mod merge;
pub mod storage;

pub use capture::*;
pub use merge::*;
pub use storage::*;

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

#[cfg(test)]
mod tests {
    use super::capture::dollar_quote;
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
