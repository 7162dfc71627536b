//! Tier 3: the fallback to triggers when the WAL consumer falls further behind than
//! `pg_trickle.wal_max_lag`. Its own test binary: the lag is WAL of the whole cluster, so no
//! other test may write while it runs.

use pg_trickle_tests::TestDb;

/// The consumers' advisory lock (classid 0x70677472 'pgtr', objid 2): holding it stalls the
/// WAL consumer before it reads the slot.
const CONSUMERS_LOCK: &str = "SELECT pg_advisory_xact_lock(1886876786, 2)";

const QA: &str = "SELECT k % 5 AS g, count(*) AS n, sum(v) AS s FROM items GROUP BY k % 5";

fn last_action(db: &mut TestDb) -> String {
    db.value("SELECT action FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1")
}

#[test]
fn a_consumer_too_far_behind_falls_back_to_triggers() {
    let mut db = TestDb::new("wal_max_lag");
    let name = db.name.clone();
    // Read by the consumer when it starts (with the first stream table).
    db.exec(&format!(
        "ALTER DATABASE \"{name}\" SET pg_trickle.wal_max_lag = '4MB'"
    ));
    db.exec(&format!(
        "CREATE TABLE items (k int PRIMARY KEY, v int);
         INSERT INTO items SELECT i, i FROM generate_series(1, 300) i;
         SELECT pgtrickle.create_stream_table('a', '{QA}', refresh_mode => 'DIFFERENTIAL');"
    ));
    db.wait_for_capture("public.items", "WAL");
    // Stall the consumer, write a few MB of WAL (committed changes of the source among it).
    let mut staller = db.connect();
    staller
        .batch_execute(&format!("BEGIN; {CONSUMERS_LOCK}"))
        .unwrap();
    db.exec("INSERT INTO items SELECT i, i FROM generate_series(1001, 200000) i");
    db.exec("UPDATE items SET v = v + 1 WHERE k % 10 = 0");
    staller.batch_execute("COMMIT").unwrap();
    db.wait_for_capture("public.items", "TRIGGER");
    let note: String = db.value("SELECT note FROM pgtrickle.cdc_status()");
    assert!(
        note.starts_with("fell back from WAL capture")
            && note.contains("MB behind (pg_trickle.wal_max_lag is 4 MB)"),
        "{note}"
    );
    assert_eq!(
        db.value::<String>(
            "SELECT severity FROM pgtrickle.health_check() WHERE check_name = 'wal_capture'"
        ),
        "WARNING"
    );
    // The slot (and the WAL it held) is gone; the changes it held are recomputed.
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgtrickle_%' AND database = current_database()"),
        0
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('a')");
    assert_eq!(db.oracle("a", QA), (0, 0));
    assert_eq!(last_action(&mut db), "FULL");
    db.exec("DELETE FROM items WHERE k % 3 = 0");
    db.exec("SELECT pgtrickle.refresh_stream_table('a')");
    assert_eq!(db.oracle("a", QA), (0, 0));
    assert_eq!(last_action(&mut db), "DIFFERENTIAL");
}
