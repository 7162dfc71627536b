//! Tier 3: skipping logical decoding when the WAL since the consumed position holds nothing to
//! capture (`pg_trickle_core::gap`, `src/wal_gap.rs`). Every case where the skip would be wrong
//! if its rule were: a transaction that wrote a source before the consumed position and commits
//! after it, changes made in committed subtransactions, a rolled-back subtransaction, a bulk
//! COPY, INSERT ... ON CONFLICT, TRUNCATE, a rewrite of the source. Each is checked with the
//! oracle after a manual refresh; and a refresh after writes to other tables only decodes
//! nothing.

use pg_trickle_tests::TestDb;

const AGG: &str = "SELECT g, count(*) AS n, sum(v) AS total FROM src GROUP BY g";
const ROWS: &str = "SELECT id, g, v FROM src WHERE v % 2 = 0";

fn setup(test: &str) -> TestDb {
    let mut db = TestDb::new(test);
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int, v int);
         INSERT INTO src SELECT i, i % 5, i FROM generate_series(1, 200) i;
         CREATE TABLE other (id int PRIMARY KEY, v int);
         INSERT INTO other VALUES (1, 0);",
    );
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('agg', $q${AGG}$q$, refresh_mode => 'DIFFERENTIAL');
         SELECT pgtrickle.create_stream_table('rows_st', $q${ROWS}$q$, refresh_mode => 'DIFFERENTIAL');"
    ));
    db.wait_for_capture("public.src", "WAL");
    refresh(&mut db);
    db
}

/// Each refresh in a transaction of its own: a transaction that refreshed once and wrote has
/// WAL before the position its second refresh records, so the stretch after holds the commit
/// of a transaction older than that position, and the next refresh decodes whatever else the
/// stretch holds (which would hide what these tests look for).
fn refresh(db: &mut TestDb) {
    db.exec("SELECT pgtrickle.refresh_stream_table('agg')");
    db.exec("SELECT pgtrickle.refresh_stream_table('rows_st')");
}

fn assert_exact(db: &mut TestDb, what: &str) {
    assert_eq!(db.oracle("agg", AGG), (0, 0), "agg after {what}");
    assert_eq!(db.oracle("rows_st", ROWS), (0, 0), "rows_st after {what}");
}

#[test]
fn a_transaction_that_wrote_before_the_consumed_position_is_decoded_when_it_commits() {
    let mut db = setup("wal_gap_older");
    let mut writer = db.connect();
    writer
        .batch_execute("BEGIN; UPDATE src SET v = v + 1001, g = g + 1 WHERE id <= 20")
        .unwrap();
    // While it is open, refreshes consume past its records: they find nothing committed to
    // decode and record positions after them.
    for _ in 0..3 {
        db.exec("UPDATE other SET v = v + 1");
        refresh(&mut db);
    }
    writer.batch_execute("COMMIT").unwrap();
    refresh(&mut db);
    assert_exact(&mut db, "a long transaction committed");
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM agg WHERE g = 5"),
        1,
        "the moved rows reached the stream table"
    );
}

#[test]
fn changes_in_subtransactions_bulk_loads_upserts_and_truncates_are_decoded() {
    let mut db = setup("wal_gap_kinds");
    let rounds = [
        // Committed subtransactions (their records carry their own ids), and one rolled back.
        "BEGIN;
         SAVEPOINT a; UPDATE src SET v = v + 1 WHERE id = 20; RELEASE a;
         SAVEPOINT b; UPDATE src SET g = 4 WHERE id = 21; SAVEPOINT c; DELETE FROM src WHERE id = 22; RELEASE c; RELEASE b;
         SAVEPOINT d; DELETE FROM src WHERE id = 23; ROLLBACK TO d;
         UPDATE other SET v = v + 1;
         COMMIT",
        // Only a rolled-back subtransaction touched the source.
        "BEGIN; SAVEPOINT a; UPDATE src SET v = 0; ROLLBACK TO a; UPDATE other SET v = v + 1; COMMIT",
        // INSERT ... ON CONFLICT: a speculative insert confirmed, and an update.
        "INSERT INTO src VALUES (500, 1, 2), (1, 3, 4) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, g = EXCLUDED.g",
    ];
    for (i, sql) in rounds.iter().enumerate() {
        db.exec(sql);
        refresh(&mut db);
        assert_exact(&mut db, &format!("round {i}"));
    }
    // A bulk load: COPY writes multi-insert records.
    let mut writer = db.connect();
    let mut copy = writer.copy_in("COPY src (id, g, v) FROM STDIN").unwrap();
    use std::io::Write;
    for i in 1000..1400 {
        writeln!(copy, "{i}\t{}\t{}", i % 7, i * 2).unwrap();
    }
    copy.finish().unwrap();
    refresh(&mut db);
    assert_exact(&mut db, "COPY");
    // Deletes in a committed subtransaction.
    writer
        .batch_execute(
            "BEGIN; SAVEPOINT s; DELETE FROM src WHERE id BETWEEN 1000 AND 1100; RELEASE s; COMMIT",
        )
        .unwrap();
    refresh(&mut db);
    assert_exact(&mut db, "a delete in a subtransaction");
    db.exec("TRUNCATE src");
    refresh(&mut db);
    assert_exact(&mut db, "TRUNCATE");
    db.exec("INSERT INTO src SELECT i, i % 3, i FROM generate_series(1, 50) i");
    refresh(&mut db);
    assert_exact(&mut db, "inserts after TRUNCATE");
}

#[test]
fn a_rewrite_of_the_source_in_the_stretch_is_decoded() {
    let mut db = setup("wal_gap_rewrite");
    // VACUUM FULL gives the source new storage; the writes after it name the new storage.
    db.exec("VACUUM FULL src");
    db.exec("UPDATE src SET v = v * 3 WHERE id % 4 = 0");
    refresh(&mut db);
    assert_exact(&mut db, "VACUUM FULL and updates");
    // And the writes before a rewrite, in the same stretch.
    db.exec("UPDATE src SET v = v + 7 WHERE id % 5 = 0");
    db.exec("CLUSTER src USING src_pkey");
    refresh(&mut db);
    assert_exact(&mut db, "updates, then CLUSTER");
}

/// The consumers' lock (src/wal.rs): held by the test's transaction, no other consumer (the
/// WAL consumer) reads the slot until it ends, so what the refresh did is the refresh's own.
const WAL_LOCK: &str = "SELECT pg_advisory_xact_lock(1886877810, 2)";

#[test]
fn a_refresh_after_writes_to_other_tables_decodes_nothing() {
    let mut db = setup("wal_gap_quiet");
    // Decoding passes count in pgt_wal_state.batches. A catalog change in the database
    // (autovacuum's ANALYZE of the new tables) makes a stretch one to decode: try a few times.
    let mut clean = 0;
    for _ in 0..5 {
        db.exec("UPDATE other SET v = v + 1");
        let mut c = db.connect();
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(WAL_LOCK).unwrap();
        let before: i64 = tx
            .query_one("SELECT batches FROM pgtrickle.pgt_wal_state", &[])
            .unwrap()
            .get(0);
        tx.batch_execute("SELECT pgtrickle.refresh_stream_table('agg')")
            .unwrap();
        let after: i64 = tx
            .query_one("SELECT batches FROM pgtrickle.pgt_wal_state", &[])
            .unwrap()
            .get(0);
        tx.commit().unwrap();
        if after == before {
            clean += 1;
        }
    }
    assert!(clean > 0, "every refresh decoded the slot");
    // And a change to the source is still decoded and applied.
    db.exec("UPDATE src SET v = v + 1 WHERE id = 3");
    refresh(&mut db);
    assert_exact(&mut db, "a change after quiet refreshes");
}
