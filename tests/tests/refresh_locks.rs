//! Tier 3: the locks refreshes take, and in which order.
//!
//! A refresh that reads a WAL-captured source takes the WAL consumers' lock (to catch up in its
//! own transaction) and the storage's lock. They are taken in that order in every refresh: a
//! transaction that refreshes two such stream tables holds the consumers' lock from the first
//! while it waits for the second's storage, so another session's refresh of the second must
//! not hold that storage while it waits for the consumers' lock (found as a deadlock between
//! `benches/join.sh`, which refreshes two stream tables in one statement, and the scheduler).

use pg_trickle_tests::{describe, TestDb};
use std::time::Duration;

#[test]
fn two_refreshes_in_one_transaction_and_another_session_do_not_deadlock() {
    let mut db = TestDb::new("refresh_locks");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int, v int);
         INSERT INTO src SELECT i, i % 7, i FROM generate_series(1, 500) i;
         SELECT pgtrickle.create_stream_table('one', 'SELECT g, sum(v) AS s FROM src GROUP BY g',
                                              refresh_mode => 'DIFFERENTIAL');
         SELECT pgtrickle.create_stream_table('two', 'SELECT id, v FROM src WHERE v % 3 = 0',
                                              refresh_mode => 'DIFFERENTIAL');",
    );
    db.wait_for_capture("public.src", "WAL");
    for round in 0..3 {
        db.exec(&format!(
            "UPDATE src SET v = v + {round} + 1 WHERE id % 5 = {round}; DELETE FROM src WHERE id = {}",
            100 + round
        ));
        // This session: the consumers' lock and `one`'s storage, held to COMMIT.
        db.exec("BEGIN; SELECT pgtrickle.refresh_stream_table('one')");
        // Another session refreshes `two`: it must wait for the consumers' lock before it
        // locks `two`'s storage.
        let mut other = db.connect();
        let t = std::thread::spawn(move || {
            other
                .batch_execute("SELECT pgtrickle.refresh_stream_table('two')")
                .map_err(|e| describe(&e))
        });
        std::thread::sleep(Duration::from_millis(300));
        // Now this session refreshes `two` too (waiting for the other session, if it held
        // `two`'s storage, would be a deadlock: one of the two would fail 40P01).
        db.exec("SELECT pgtrickle.refresh_stream_table('two'); COMMIT");
        let other = t.join().expect("the other session's thread");
        assert_eq!(other, Ok(()), "round {round}: the other session's refresh");
        assert_eq!(
            db.oracle("one", "SELECT g, sum(v) AS s FROM src GROUP BY g"),
            (0, 0),
            "one"
        );
        assert_eq!(
            db.oracle("two", "SELECT id, v FROM src WHERE v % 3 = 0"),
            (0, 0),
            "two"
        );
    }
}
