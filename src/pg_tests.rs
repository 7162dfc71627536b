//! Tier 2: extension glue, inside one rolled-back transaction per test (`cargo pgrx test pg18`).
//! Capture triggers, buffer typing, the catalog and clean removal. Behaviour over a client
//! connection (guide chapters, bad input, restarts) is tested in tests/ (tier 3).

use pgrx::prelude::*;

fn count(sql: &str) -> i64 {
    Spi::get_one::<i64>(sql).unwrap().unwrap()
}

fn buffer_of(table: &str) -> String {
    format!(
        "pgtrickle_changes.changes_{}",
        Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{table}'::regclass::oid"))
            .unwrap()
            .unwrap()
            .to_u32()
    )
}

#[pg_schema]
mod tests {
    use super::*;

    #[pg_test]
    fn triggers_capture_typed_old_and_new_images() {
        Spi::run("CREATE TABLE t (id int PRIMARY KEY, flag char(1), v numeric(10,2))").unwrap();
        Spi::run("SELECT pgtrickle.create_stream_table('st', 'SELECT id, flag, v FROM t', refresh_mode => 'FULL')").unwrap();
        let buf = buffer_of("t");
        Spi::run("INSERT INTO t VALUES (1, 'a', 1.50), (2, 'b', NULL)").unwrap();
        Spi::run("UPDATE t SET flag = 'z', v = 2 WHERE id = 1").unwrap();
        Spi::run("DELETE FROM t WHERE id = 2").unwrap();
        assert_eq!(count(&format!("SELECT count(*) FROM {buf}")), 4);
        assert_eq!(
            Spi::get_one::<String>(&format!(
                "SELECT string_agg(format('%s:%s/%s:%s/%s', action, old_2, old_3, new_2, new_3), ' ' ORDER BY change_id) FROM {buf}"
            ))
            .unwrap()
            .unwrap(),
            "I:/:a/1.50 I:/:b/ U:a/1.50:z/2.00 D:b/:/"
        );
        // The buffer keeps the source's exact types, typmod included.
        assert_eq!(
            Spi::get_one::<String>(&format!(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{buf}'::regclass AND attname = 'new_2'"
            ))
            .unwrap()
            .unwrap(),
            "character(1)"
        );
        // Every buffer row carries the writing transaction's id.
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM {buf} WHERE xid = pg_current_xact_id()"
            )),
            4
        );
    }

    #[pg_test]
    fn truncate_is_recorded() {
        Spi::run("CREATE TABLE t (id int)").unwrap();
        Spi::run("SELECT pgtrickle.create_stream_table('st', 'SELECT id FROM t', refresh_mode => 'FULL')").unwrap();
        Spi::run("TRUNCATE t").unwrap();
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM {} WHERE action = 'T'",
                buffer_of("t")
            )),
            1
        );
    }

    #[pg_test]
    fn refresh_merges_only_differences() {
        Spi::run("CREATE TABLE t (id int PRIMARY KEY, g text)").unwrap();
        Spi::run("INSERT INTO t SELECT i, 'g' || (i % 3) FROM generate_series(1, 30) i").unwrap();
        Spi::run("SELECT pgtrickle.create_stream_table('st', 'SELECT g, count(*) AS n FROM t GROUP BY g', refresh_mode => 'FULL')").unwrap();
        let ids_before =
            Spi::get_one::<String>("SELECT string_agg(__pgt_row_id::text, ',' ORDER BY g) FROM st")
                .unwrap()
                .unwrap();
        Spi::run("INSERT INTO t VALUES (31, 'g1')").unwrap();
        Spi::run("SELECT pgtrickle.refresh_stream_table('st')").unwrap();
        let (ins, del) = Spi::get_two::<i64, i64>(
            "SELECT rows_inserted, rows_deleted FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1",
        )
        .unwrap();
        assert_eq!((ins, del), (Some(1), Some(1)), "only the g1 group changed");
        let ids_after =
            Spi::get_one::<String>("SELECT string_agg(__pgt_row_id::text, ',' ORDER BY g) FROM st")
                .unwrap()
                .unwrap();
        let (b, a): (Vec<&str>, Vec<&str>) = (
            ids_before.split(',').collect(),
            ids_after.split(',').collect(),
        );
        assert_eq!(
            (b[0], b[2]),
            (a[0], a[2]),
            "untouched groups keep their row identity"
        );
        assert_ne!(b[1], a[1]);
        // The refresh ran in this transaction: the frontier records it, and the change it
        // consumed (its own, by change id) is trimmed from the buffer.
        assert_eq!(
            Spi::get_one::<bool>(
                "SELECT frontier_xid = pg_current_xact_id() FROM pgtrickle.pgt_stream_tables"
            )
            .unwrap(),
            Some(true)
        );
        assert_eq!(
            count(&format!("SELECT count(*) FROM {}", buffer_of("t"))),
            0
        );
    }

    #[pg_test]
    fn drop_removes_storage_capture_and_catalog() {
        Spi::run("CREATE TABLE t (id int PRIMARY KEY)").unwrap();
        Spi::run("SELECT pgtrickle.create_stream_table('a', 'SELECT id FROM t')").unwrap();
        Spi::run("SELECT pgtrickle.create_stream_table('b', 'SELECT count(*) AS n FROM t')")
            .unwrap();
        let buf = buffer_of("t");
        Spi::run("SELECT pgtrickle.drop_stream_table('a')").unwrap();
        // Still needed by b.
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM pg_class WHERE oid = to_regclass('{buf}')"
            )),
            1
        );
        Spi::run("SELECT pgtrickle.drop_stream_table('b')").unwrap();
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM pg_class WHERE oid = to_regclass('{buf}')"
            )),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass"),
            0
        );
        assert_eq!(count("SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgtrickle_changes'::regnamespace"), 0);
        assert_eq!(count("SELECT count(*) FROM pgtrickle.pgt_stream_tables"), 0);
        assert_eq!(count("SELECT count(*) FROM pgtrickle.pgt_sources"), 0);
        assert_eq!(count("SELECT count(*) FROM pgtrickle.pgt_dependencies"), 0);
    }

    #[pg_test]
    fn dropping_a_source_table_is_refused_while_a_stream_table_reads_it() {
        Spi::run("CREATE TABLE t (id int PRIMARY KEY)").unwrap();
        Spi::run("SELECT pgtrickle.create_stream_table('st', 'SELECT id FROM t')").unwrap();
        let refused = PgTryBuilder::new(|| {
            Spi::run("DROP TABLE t").unwrap();
            false
        })
        .catch_others(|_| true)
        .execute();
        assert!(refused);
    }

    #[pg_test]
    fn drop_cascade_of_a_source_forgets_the_stream_table() {
        Spi::run("CREATE TABLE t (id int PRIMARY KEY)").unwrap();
        Spi::run("SELECT pgtrickle.create_stream_table('st', 'SELECT id FROM t')").unwrap();
        Spi::run("DROP TABLE t CASCADE").unwrap();
        assert_eq!(count("SELECT count(*) FROM pgtrickle.pgt_stream_tables"), 0);
        assert_eq!(count("SELECT count(*) FROM pgtrickle.pgt_sources"), 0);
        assert_eq!(count("SELECT count(*) FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace"), 0);
        assert_eq!(
            count("SELECT count(*) FROM pg_class WHERE relname = 'st'"),
            0
        );
    }
}
