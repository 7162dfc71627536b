//! Tier 3: who decides how a source is captured. A stream table's own `cdc_mode` ('auto',
//! 'wal', 'trigger') next to the other stream tables reading the same source, the checks at
//! create/alter time, the hand-back inside the altering transaction.

use pg_trickle_tests::TestDb;
use std::time::{Duration, Instant};

fn note_of(db: &mut TestDb, table: &str) -> String {
    db.value(&format!(
        "SELECT coalesce(note, '') FROM pgtrickle.cdc_status() WHERE source_table = '{table}'"
    ))
}

fn last_action(db: &mut TestDb, st: &str) -> String {
    db.value(&format!(
        "SELECT h.action FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) \
          WHERE s.pgt_relid = '{st}'::regclass ORDER BY h.refresh_id DESC LIMIT 1"
    ))
}

const QA: &str = "SELECT k % 5 AS g, count(*) AS n, sum(v) AS s FROM items GROUP BY k % 5";
const QB: &str = "SELECT k % 3 AS g, max(v) AS m FROM items GROUP BY k % 3";
const QC: &str = "SELECT k, v FROM items WHERE v % 2 = 0";

fn all_exact(db: &mut TestDb, sts: &[(&str, &str)]) {
    for (st, q) in sts {
        db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{st}')"));
        assert_eq!(db.oracle(st, q), (0, 0), "{st}");
    }
}

#[test]
fn a_stream_table_cdc_mode_is_weighed_with_the_other_readers() {
    let mut db = TestDb::new("wal_cdc_mode");
    db.exec(&format!(
        "CREATE TABLE items (k int PRIMARY KEY, v int);
         INSERT INTO items SELECT i, i FROM generate_series(1, 300) i;
         SELECT pgtrickle.create_stream_table('a', '{QA}', refresh_mode => 'DIFFERENTIAL');
         SELECT pgtrickle.create_stream_table('b', '{QB}', refresh_mode => 'DIFFERENTIAL', cdc_mode => 'trigger');"
    ));
    // 'trigger' on one reader keeps the source on its trigger, and the consumer says who.
    let start = Instant::now();
    while note_of(&mut db, "public.items")
        != "stays on triggers: cdc_mode is trigger for stream table b"
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            note_of(&mut db, "public.items")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(db.capture_mode("public.items"), "TRIGGER");
    assert_eq!(
        db.value::<String>(
            "SELECT string_agg(name || '=' || cdc_mode, ' ' ORDER BY name) FROM pgtrickle.pgt_status()"
        ),
        "public.a=auto public.b=trigger"
    );
    // 'wal' cannot be had there: refused, nothing created.
    assert_eq!(
        db.error_code(&format!(
            "SELECT pgtrickle.create_stream_table('c', '{QC}', cdc_mode => 'wal')"
        )),
        "0A000"
    );
    assert!(db.value::<bool>(
        "SELECT to_regclass('c') IS NULL AND (SELECT count(*) FROM pgtrickle.pgt_stream_tables) = 2"
    ));
    // Bad values.
    assert_eq!(
        db.error_code(&format!(
            "SELECT pgtrickle.create_stream_table('c', '{QC}', cdc_mode => 'logical')"
        )),
        "22023"
    );
    assert_eq!(
        db.error_code(&format!(
            "SELECT pgtrickle.create_stream_table('c', '{QC}', cdc_mode => NULL)"
        )),
        "22004"
    );
    assert_eq!(
        db.error_code("SELECT pgtrickle.alter_stream_table('a', cdc_mode => 'sometimes')"),
        "22023"
    );
    // Releasing it: the source moves to the WAL.
    db.exec("SELECT pgtrickle.alter_stream_table('b', cdc_mode => 'AUTO')");
    db.wait_for_capture("public.items", "WAL");
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('c', '{QC}', refresh_mode => 'DIFFERENTIAL', cdc_mode => 'wal')"
    ));
    // Now 'trigger' for a new reader conflicts with c's 'wal': refused, nothing created.
    assert_eq!(
        db.error_code(
            "SELECT pgtrickle.create_stream_table('d', 'SELECT count(*) AS n FROM items', cdc_mode => 'trigger')"
        ),
        "0A000"
    );
    assert!(db
        .error_message(
            "SELECT pgtrickle.create_stream_table('d', 'SELECT count(*) AS n FROM items', cdc_mode => 'trigger')"
        )
        .contains("with cdc_mode 'wal'"));
    assert!(db.value::<bool>("SELECT to_regclass('d') IS NULL"));
    assert_eq!(
        db.error_code("SELECT pgtrickle.alter_stream_table('a', cdc_mode => 'trigger')"),
        "0A000"
    );
    // IMMEDIATE maintenance needs the row trigger: the same conflict.
    assert!(db
        .error_message(
            "SELECT pgtrickle.create_stream_table('d', 'SELECT count(*) AS n FROM items', refresh_mode => 'IMMEDIATE')"
        )
        .contains("refresh_mode IMMEDIATE (maintained from row triggers): public.items is also read by stream table(s) c with cdc_mode 'wal'"));
    assert!(db.value::<bool>("SELECT to_regclass('d') IS NULL"));
    assert_eq!(
        db.value::<String>("SELECT cdc_mode FROM pgtrickle.pgt_status() WHERE name = 'public.a'"),
        "auto"
    );
    let sts = [("a", QA), ("b", QB), ("c", QC)];
    db.exec("UPDATE items SET v = v + 1 WHERE k % 4 = 0");
    all_exact(&mut db, &sts);

    // 'trigger' set in a transaction that already wrote the source: the source is back on its
    // trigger before the call returns, and the write it made while on the WAL (never consumed
    // now) is not lost: the readers recompute once.
    db.exec("SELECT pgtrickle.alter_stream_table('c', cdc_mode => 'auto')");
    let mut other = db.connect();
    other
        .batch_execute(
            "BEGIN;
             UPDATE items SET v = v * 2 WHERE k < 40;
             SELECT pgtrickle.alter_stream_table('a', cdc_mode => 'trigger');",
        )
        .unwrap();
    let inside: String = other
        .query_one(
            "SELECT capture_mode FROM pgtrickle.cdc_status() WHERE source_table = 'public.items'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(inside, "TRIGGER");
    other.batch_execute("COMMIT").unwrap();
    db.exec("INSERT INTO items VALUES (1000, 1000)");
    all_exact(&mut db, &sts);
    for (st, _) in &sts {
        assert_eq!(last_action(&mut db, st), "FULL", "{st}");
    }
    db.exec("DELETE FROM items WHERE k BETWEEN 100 AND 120");
    all_exact(&mut db, &sts);
    for (st, _) in &sts {
        assert_eq!(last_action(&mut db, st), "DIFFERENTIAL", "{st}");
    }

    // The same from a transaction that wrote nothing: no recompute.
    db.exec("SELECT pgtrickle.alter_stream_table('a', cdc_mode => 'auto')");
    db.wait_for_capture("public.items", "WAL");
    db.exec("UPDATE items SET v = v - 3 WHERE k % 9 = 0");
    db.exec("SELECT pgtrickle.alter_stream_table('a', cdc_mode => 'trigger')");
    assert_eq!(db.capture_mode("public.items"), "TRIGGER");
    db.exec("UPDATE items SET v = v + 5 WHERE k % 11 = 0");
    all_exact(&mut db, &sts);
    for (st, _) in &sts {
        assert_eq!(last_action(&mut db, st), "DIFFERENTIAL", "{st}");
    }
    // create_or_replace with the same definition and another cdc_mode changes only that.
    db.exec(&format!(
        "SELECT pgtrickle.create_or_replace_stream_table('a', '{QA}', refresh_mode => 'DIFFERENTIAL', cdc_mode => 'auto')"
    ));
    db.wait_for_capture("public.items", "WAL");
    db.exec("UPDATE items SET v = 7 WHERE k < 5");
    all_exact(&mut db, &sts);
    assert_eq!(last_action(&mut db, "a"), "DIFFERENTIAL");
}
