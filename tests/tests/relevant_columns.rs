//! Tier 3: an UPDATE that leaves every column a stream table's query reads as it was is not part
//! of that stream table's change window (`pg_trickle_core::ivm::relevant`), and everything else
//! still is: stream tables stay exact (oracle) on both capture paths, an update of an unread
//! column applies nothing, and a value that is equal but not identical (`1.0` -> `1.00`) reaches
//! the stream table. A whole-row reference is refused in DIFFERENTIAL (the window's rows are not
//! the table's) and refreshed FULL under AUTO.

use pg_trickle_tests::TestDb;

const SHAPES: &[(&str, &str)] = &[
    (
        "agg",
        "SELECT grp, sum(val) AS s, count(*) AS n FROM t GROUP BY grp",
    ),
    ("rows", "SELECT id, val FROM t WHERE grp < 5"),
    ("counted", "SELECT count(*) AS n FROM t"),
    (
        "joined",
        "SELECT t.id, u.label, k.val AS kval FROM t JOIN u ON u.grp = t.grp JOIN k ON k.grp = t.grp WHERE t.id <= 40",
    ),
    ("bag", "SELECT grp, val FROM k WHERE val > 0"),
];

/// The rows the last manual refresh of `st` inserted, updated and deleted.
fn applied(db: &mut TestDb, st: &str) -> (i64, i64, i64) {
    let row: String = db.value(&format!(
        "SELECT format('%s/%s/%s', rows_inserted, rows_updated, rows_deleted) FROM pgtrickle.refresh_timeline() \
          WHERE stream_table = 'public.{st}' ORDER BY started_at DESC LIMIT 1"
    ));
    let n: Vec<i64> = row.split('/').map(|x| x.parse().unwrap_or(-1)).collect();
    (n[0], n[1], n[2])
}

/// How many row images the window of `st`'s (first) source holds now, read through the window
/// SQL stored with its plan.
fn window_rows(db: &mut TestDb, st: &str) -> i64 {
    let sql: String = db.value(&format!(
        "SELECT window_sql[1] FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = '{st}'::regclass"
    ));
    let args: String = db.value(&format!(
        "SELECT format('%L, %s', frontier::text, coalesce(quote_literal(frontier_xid::text), 'NULL')) \
           FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = '{st}'::regclass"
    ));
    db.exec(&format!(
        "PREPARE w_{st}(pg_snapshot, xid8, bigint) AS SELECT count(*) FROM ({sql}) w"
    ));
    let n: i64 = db.value(&format!("EXECUTE w_{st}({args}, NULL)"));
    db.exec(&format!("DEALLOCATE w_{st}"));
    n
}

fn run(db: &mut TestDb, cdc: &str) {
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, grp int, val numeric, note text);
         CREATE TABLE u (grp int PRIMARY KEY, label text, memo text);
         CREATE TABLE k (grp int, val int, note text);
         INSERT INTO t SELECT i, i % 10, i % 7, 'n' FROM generate_series(1, 3000) i;
         INSERT INTO u SELECT g, 'g' || g, 'm' FROM generate_series(0, 9) g;
         INSERT INTO k SELECT i % 10, i % 3, 'n' FROM generate_series(1, 60) i;",
    );
    for (name, q) in SHAPES {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL', cdc_mode => '{cdc}')"
        ));
    }
    let whole = "SELECT id, row_to_json(t)::text AS j FROM t";
    assert_eq!(
        db.error_code(&format!(
            "SELECT pgtrickle.create_stream_table('whole', $q${whole}$q$, refresh_mode => 'DIFFERENTIAL')"
        )),
        "0A000"
    );
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('whole', $q${whole}$q$, refresh_mode => 'AUTO', cdc_mode => '{cdc}')"
    ));
    let mode = if cdc == "trigger" { "TRIGGER" } else { "WAL" };
    for t in ["public.t", "public.u"] {
        db.wait_for_capture(t, mode);
    }
    let refresh_all = |db: &mut TestDb, round: &str| {
        for (name, q) in SHAPES {
            db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
            assert_eq!(db.oracle(name, q), (0, 0), "{round}: {name}");
        }
    };
    // Unread columns only (and a no-op update of a read one): nothing to apply, except where a
    // whole row is read.
    db.exec(
        "UPDATE t SET note = note || 'x' WHERE id % 3 = 0;
         UPDATE t SET val = val WHERE id % 5 = 0;
         UPDATE u SET memo = 'changed';
         UPDATE k SET note = 'changed' WHERE val = 1",
    );
    if cdc == "trigger" {
        // In the buffer, not in the window.
        let buffered: i64 = db.value(
            "SELECT sum(pending_changes)::bigint FROM pgtrickle.change_buffer_sizes() WHERE source_table = 'public.t'",
        );
        assert!(buffered >= 1600, "{buffered} changes of t buffered");
        assert_eq!(window_rows(db, "rows"), 0);
        assert_eq!(window_rows(db, "agg"), 0);
    }
    refresh_all(db, "unread columns");
    // (A query without GROUP BY rewrites its one row on every refresh.)
    for st in ["agg", "rows", "joined", "bag"] {
        assert_eq!(applied(db, st), (0, 0, 0), "{st} applied an unread change");
    }
    db.exec("SELECT pgtrickle.refresh_stream_table('whole')");
    assert_eq!(db.oracle("whole", whole), (0, 0), "whole");
    // Read and unread columns in one window, rows moving between groups and join partners,
    // one row updated twice (its second update touching only an unread column), an insert and
    // delete of one row, a keyless duplicate changed.
    db.exec(
        "BEGIN;
         UPDATE t SET grp = (grp + 3) % 10 WHERE id % 4 = 0;
         UPDATE t SET val = val + 1, note = 'y' WHERE id = 7;
         UPDATE t SET note = 'z' WHERE id = 7;
         INSERT INTO t VALUES (5000, 1, 1, 'new');
         DELETE FROM t WHERE id = 5000;
         UPDATE u SET label = label || '!' WHERE grp = 2;
         UPDATE k SET val = val + 1, note = 'k' WHERE grp = 3 AND val = 2;
         COMMIT",
    );
    if cdc == "trigger" {
        // Two images each: 750 rows moved between groups, row 7's first update, the insert and
        // the delete of row 5000; not row 7's second update (its note only).
        assert_eq!(window_rows(db, "rows"), 2 * 750 + 2 + 2);
    }
    refresh_all(db, "mixed");
    // Equal but not identical: the stream table shows the new text.
    db.exec("UPDATE t SET val = 1.00 WHERE id = 1");
    refresh_all(db, "scale");
    let shown: String = db.value("SELECT val::text FROM rows WHERE id = 1");
    assert_eq!(shown, "1.00");
    let shown: String = db.value("SELECT s::text FROM agg WHERE grp = 1");
    let expected: String = db.value("SELECT sum(val)::text FROM t WHERE grp = 1");
    assert_eq!(shown, expected);
}

#[test]
fn unread_columns_stay_out_of_the_window_with_triggers() {
    run(&mut TestDb::new("relevant_trigger"), "trigger");
}

#[test]
fn unread_columns_stay_out_of_the_window_from_the_wal() {
    run(&mut TestDb::new("relevant_wal"), "auto");
}
