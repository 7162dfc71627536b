//! Tier 3: one named test per invariant of `../shared/DESIGN.md`, "Invariants that keep results
//! exact" (the fifth, "every shape is checked against the oracle", is `oracle.rs`).

use pg_trickle_tests::TestDb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn join_tables(db: &mut TestDb) {
    db.exec(
        "CREATE TABLE cust (id int PRIMARY KEY, region text);
         CREATE TABLE ord (id int PRIMARY KEY, cust_id int, amount numeric(10,2));
         CREATE INDEX ON ord (cust_id);
         INSERT INTO cust SELECT i, 'r' || (i % 5) FROM generate_series(1, 50) i;
         INSERT INTO ord SELECT i, 1 + i % 60, i % 97 FROM generate_series(1, 500) i;",
    );
}

/// One snapshot per refresh: while writers commit to both tables, each refresh runs in a
/// REPEATABLE READ transaction and is compared with the query re-run in that same snapshot.
#[test]
fn one_snapshot_per_refresh() {
    let mut db = TestDb::new("inv_snapshot");
    join_tables(&mut db);
    let shapes = [
        ("snap_join", "SELECT o.id, o.amount, c.region FROM ord o JOIN cust c ON c.id = o.cust_id"),
        (
            "snap_agg",
            "SELECT c.region, count(o.id) AS n, sum(o.amount) AS s FROM cust c LEFT JOIN ord o ON o.cust_id = c.id GROUP BY c.region",
        ),
    ];
    for (name, q) in shapes {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut c = db.connect();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i: i64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = 1000 + w * 100_000 + i;
                    let sql = match i % 4 {
                        0 => format!("INSERT INTO ord VALUES ({id}, {}, {})", 1 + i % 60, i % 50),
                        1 => format!(
                            "UPDATE ord SET cust_id = {}, amount = amount + 1 WHERE id = {}",
                            1 + (i * 7) % 60,
                            1 + (i * 13 + w) % 500
                        ),
                        2 => format!(
                            "UPDATE cust SET region = 'r' || ({} % 7) WHERE id = {}",
                            i,
                            1 + (i + w) % 50
                        ),
                        _ => format!("DELETE FROM ord WHERE id = {}", 1000 + w * 100_000 + i - 3),
                    };
                    c.batch_execute(&sql).unwrap();
                }
            })
        })
        .collect();
    for round in 0..12 {
        std::thread::sleep(Duration::from_millis(150));
        db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
        for (name, q) in shapes {
            db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
            assert_eq!(db.oracle(name, q), (0, 0), "round {round}: {q}");
        }
        db.exec("COMMIT");
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
}

/// The delta of a join uses the pre-change state of the other side: in one transaction a row
/// moves to a new partner while its old partner is deleted, a new partner arrives for another
/// row, and a row is inserted and deleted again; both sides change in one window.
#[test]
fn join_delta_uses_the_pre_change_state_of_the_other_side() {
    let mut db = TestDb::new("inv_join_old");
    join_tables(&mut db);
    let q = "SELECT o.id, o.amount, c.region FROM ord o JOIN cust c ON c.id = o.cust_id";
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('j', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    db.exec(
        "BEGIN;
         UPDATE ord SET cust_id = 7 WHERE id = 2;
         DELETE FROM cust WHERE id = 3;
         INSERT INTO cust VALUES (55, 'new');
         UPDATE ord SET cust_id = 55 WHERE id = 4;
         UPDATE cust SET region = 'moved' WHERE id = 7;
         INSERT INTO ord VALUES (9999, 7, 1);
         DELETE FROM ord WHERE id = 9999;
         UPDATE ord SET cust_id = NULL WHERE id = 5;
         COMMIT;",
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('j')");
    assert_eq!(db.oracle("j", q), (0, 0));
    let action: String = db.value(
        "SELECT h.action FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
          WHERE st.pgt_relid = 'j'::regclass ORDER BY h.refresh_id DESC LIMIT 1",
    );
    assert_eq!(action, "DIFFERENTIAL");
}

/// Row identity is deterministic and identical in the full and delta paths: a stream table
/// maintained through changes equals, hidden columns and row identities included, one created
/// from scratch over the same data; duplicate rows without a key are counted.
#[test]
fn row_identity_is_the_same_in_full_and_delta_paths() {
    let mut db = TestDb::new("inv_identity");
    join_tables(&mut db);
    db.exec(
        "CREATE TABLE dup (g text, v int);
         INSERT INTO dup VALUES ('a', 1), ('a', 1), ('a', 1), (NULL, 2), (NULL, 2), ('b', NULL);",
    );
    let shapes = [
        "SELECT o.id, o.amount, c.region FROM ord o JOIN cust c ON c.id = o.cust_id",
        "SELECT g, v FROM dup",
        "SELECT c.region, count(*) AS n, sum(o.amount) AS s, max(o.amount) AS m FROM ord o JOIN cust c ON c.id = o.cust_id GROUP BY c.region",
        "SELECT g, v FROM dup INTERSECT ALL SELECT region, 1 FROM cust",
    ];
    for (i, q) in shapes.iter().enumerate() {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('old{i}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        ));
    }
    db.exec(
        "UPDATE ord SET amount = amount + 1 WHERE id % 7 = 0;
         DELETE FROM ord WHERE id % 11 = 0;
         INSERT INTO dup VALUES ('a', 1), ('r1', 1), ('r1', 1), (NULL, 2);
         DELETE FROM dup WHERE ctid = (SELECT min(ctid) FROM dup WHERE g = 'a');
         UPDATE cust SET region = 'r9' WHERE id % 9 = 0;",
    );
    for (i, q) in shapes.iter().enumerate() {
        db.exec(&format!("SELECT pgtrickle.refresh_stream_table('old{i}')"));
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('new{i}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        ));
        let differ: i64 = db.value(&format!(
            "SELECT (SELECT count(*) FROM (SELECT * FROM old{i} EXCEPT ALL SELECT * FROM new{i}) x) \
                  + (SELECT count(*) FROM (SELECT * FROM new{i} EXCEPT ALL SELECT * FROM old{i}) y)"
        ));
        assert_eq!(differ, 0, "{q}: maintained and fresh storage differ");
        assert_eq!(db.oracle(&format!("old{i}"), q), (0, 0), "{q}");
    }
}

/// Aggregates keep what they need to be exact: a SUM over rows that all lost their partner is
/// NULL (COALESCE prints 0), AVG prints as the query prints it, a MIN whose row leaves is
/// rescanned, and a group whose HAVING flips appears and disappears whole.
#[test]
fn aggregates_keep_what_they_need() {
    let mut db = TestDb::new("inv_aggregates");
    join_tables(&mut db);
    let shapes = [
        (
            "agg_left",
            "SELECT c.id, sum(o.amount) AS s, COALESCE(sum(o.amount), 0) AS s0, avg(o.amount) AS a, min(o.amount) AS lo FROM cust c LEFT JOIN ord o ON o.cust_id = c.id GROUP BY c.id",
        ),
        (
            "agg_having",
            "SELECT cust_id, count(*) AS n FROM ord GROUP BY cust_id HAVING count(*) > 8",
        ),
    ];
    for (name, q) in shapes {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        ));
    }
    // Customer 1 loses every order; customer 2 loses its smallest; customer 3's count flips.
    db.exec(
        "DELETE FROM ord WHERE cust_id = 1;
         DELETE FROM ord WHERE id = (SELECT id FROM ord WHERE cust_id = 2 ORDER BY amount, id LIMIT 1);
         INSERT INTO ord SELECT 5000 + i, 3, i FROM generate_series(1, 5) i;",
    );
    for (name, q) in shapes {
        db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
        assert_eq!(db.oracle(name, q), (0, 0), "{q}");
    }
    let (s, s0): (Option<String>, String) = {
        let r = db
            .client
            .query_one("SELECT s::text, s0::text FROM agg_left WHERE id = 1", &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((s, s0.as_str()), (None, "0"));
    let avg_matches: bool = db.value(
        "SELECT (SELECT a::text FROM agg_left WHERE id = 2) = \
                (SELECT avg(amount)::text FROM ord WHERE cust_id = 2)",
    );
    assert!(avg_matches, "AVG prints as the query prints it");
    let flipped: i64 = db.value("SELECT count(*) FROM agg_having WHERE cust_id = 3");
    assert_eq!(flipped, 1, "the group whose HAVING now holds appears");
}
