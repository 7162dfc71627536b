//! Tier 3: one transaction larger than the WAL consumer may hold in memory
//! (`pg_trickle.wal_transaction_memory`, small here) on a WAL-captured source: the consumer
//! does not hold it; the source falls back to triggers with the reason recorded, and the
//! stream tables reading it are exact again at their next refresh.

use pg_trickle_tests::TestDb;
use std::time::{Duration, Instant};

const Q: &str = "SELECT grp, count(*) AS n, sum(v) AS s FROM big GROUP BY grp";

#[test]
fn a_transaction_larger_than_the_limit_falls_back_to_triggers() {
    let mut db = TestDb::new("wal_large");
    // Read by the database's WAL consumer when it starts (the first stream table starts it).
    db.exec(&format!(
        "ALTER DATABASE \"{}\" SET pg_trickle.wal_transaction_memory = '64kB'",
        db.name
    ));
    db.exec(&format!(
        "CREATE TABLE big (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL);
         INSERT INTO big SELECT g, g % 10, g FROM generate_series(1, 5000) g;
         SELECT pgtrickle.create_stream_table('totals', '{Q}', cdc_mode => 'auto');"
    ));
    db.wait_for_capture("public.big", "WAL");
    // Small transactions stay under the limit.
    db.exec("UPDATE big SET v = v + 1 WHERE id <= 10");
    db.exec("SELECT pgtrickle.refresh_stream_table('totals')");
    assert_eq!(db.oracle("totals", Q), (0, 0));
    assert_eq!(db.capture_mode("public.big"), "WAL");
    // One transaction of 5,000 updates (two images each): far more than 64 kB.
    db.exec("UPDATE big SET v = v + 1");
    let start = Instant::now();
    while db.capture_mode("public.big") != "TRIGGER" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the consumer did not fall back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let note: String =
        db.value("SELECT note FROM pgtrickle.cdc_status() WHERE source_table = 'public.big'");
    assert!(note.contains("wal_transaction_memory"), "{note}");
    db.exec("SELECT pgtrickle.refresh_stream_table('totals')");
    assert_eq!(db.oracle("totals", Q), (0, 0));
    // Writes go on, captured by triggers.
    db.exec("UPDATE big SET grp = 3 WHERE id <= 100; DELETE FROM big WHERE id > 4900");
    db.exec("SELECT pgtrickle.refresh_stream_table('totals')");
    assert_eq!(db.oracle("totals", Q), (0, 0));
}
