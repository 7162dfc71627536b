//! Tier 3: IMMEDIATE stream tables, maintained by a statement trigger in the writer's transaction.

use pg_trickle_tests::TestDb;

#[test]
fn immediate_stream_tables_are_current_inside_the_writing_transaction() {
    let mut db = TestDb::new("immediate");
    db.exec(
        "CREATE TABLE emp (id int PRIMARY KEY, dept int, salary numeric);
         INSERT INTO emp SELECT i, i % 3, i * 10 FROM generate_series(1, 30) i;
         SELECT pgtrickle.create_stream_table('live_headcount',
           'SELECT dept, count(*) AS headcount, sum(salary) AS total FROM emp GROUP BY dept',
           refresh_mode => 'IMMEDIATE');
         SELECT pgtrickle.create_stream_table('big_depts',
           'SELECT dept, headcount FROM live_headcount WHERE headcount > 10', refresh_mode => 'IMMEDIATE');",
    );
    let q = "SELECT dept, count(*) AS headcount, sum(salary) AS total FROM emp GROUP BY dept";
    let q2 = "SELECT dept, headcount FROM live_headcount WHERE headcount > 10";
    assert_eq!(
        db.value::<String>("SELECT string_agg(name || '=' || refresh_mode, ' ' ORDER BY name) FROM pgtrickle.pgt_status()"),
        "public.big_depts=IMMEDIATE public.live_headcount=IMMEDIATE"
    );
    // Visible in the same transaction, statement by statement, through two levels.
    db.exec("BEGIN; INSERT INTO emp VALUES (100, 0, 5), (101, 0, 6);");
    assert_eq!(db.oracle("live_headcount", q), (0, 0));
    assert_eq!(db.oracle("big_depts", q2), (0, 0));
    db.exec("UPDATE emp SET dept = 2 WHERE id <= 5; DELETE FROM emp WHERE id = 6;");
    assert_eq!(db.oracle("live_headcount", q), (0, 0));
    assert_eq!(db.oracle("big_depts", q2), (0, 0));
    db.exec("ROLLBACK");
    assert_eq!(db.oracle("live_headcount", q), (0, 0));
    assert_eq!(db.oracle("big_depts", q2), (0, 0));
    // Committed changes, TRUNCATE, and another session's writes.
    db.exec("INSERT INTO emp VALUES (200, 7, 1)");
    let mut other = db.connect();
    other
        .batch_execute(
            "UPDATE emp SET salary = salary + 1 WHERE dept = 1; DELETE FROM emp WHERE id = 200",
        )
        .unwrap();
    assert_eq!(db.oracle("live_headcount", q), (0, 0));
    db.exec("TRUNCATE emp; INSERT INTO emp VALUES (1, 1, 1)");
    assert_eq!(db.oracle("live_headcount", q), (0, 0));
    assert_eq!(db.oracle("big_depts", q2), (0, 0));
    // No history row per statement; the counters count.
    let (history, count): (i64, i64) = {
        let r = db
            .client
            .query_one(
                "SELECT (SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) \
                          WHERE s.pgt_relid = 'live_headcount'::regclass AND h.initiated_by <> 'CREATE'), \
                        (SELECT successful_refreshes FROM pgtrickle.pg_stat_stream_tables WHERE pgt_name = 'public.live_headcount')",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(history, 0);
    assert!(count >= 4, "{count}");
    // Switching mode removes the triggers; switching back reinstalls them.
    let triggers = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtrickle\\_immediate\\_%'";
    assert_eq!(db.value::<i64>(triggers), 2);
    db.exec("SELECT pgtrickle.alter_stream_table('big_depts', refresh_mode => 'DIFFERENTIAL', schedule => '1s')");
    assert_eq!(db.value::<i64>(triggers), 1);
    db.exec("INSERT INTO emp SELECT i, 1, 1 FROM generate_series(10, 30) i");
    assert_eq!(db.oracle("live_headcount", q), (0, 0));
    db.exec("SELECT pgtrickle.refresh_stream_table('big_depts')");
    assert_eq!(db.oracle("big_depts", q2), (0, 0));
    db.exec("SELECT pgtrickle.alter_stream_table('big_depts', refresh_mode => 'IMMEDIATE')");
    assert_eq!(db.value::<i64>(triggers), 2);
    db.exec("DELETE FROM emp WHERE id BETWEEN 10 AND 20");
    assert_eq!(db.oracle("big_depts", q2), (0, 0));
    db.exec("SELECT pgtrickle.drop_stream_table('big_depts'); SELECT pgtrickle.drop_stream_table('live_headcount')");
    db.assert_no_leftovers(&["big_depts", "live_headcount"]);
}

/// Concurrent writers: each statement's refresh waits for the stream table's refresh lock, so the
/// writers are serialised on it and the result stays exact.
#[test]
fn immediate_under_concurrent_writers() {
    let mut db = TestDb::new("immediate_concurrent");
    db.exec(
        "CREATE TABLE acc (id int PRIMARY KEY, branch int, balance int);
         INSERT INTO acc SELECT i, i % 5, 100 FROM generate_series(1, 200) i;
         SELECT pgtrickle.create_stream_table('branch_totals',
           'SELECT branch, count(*) AS n, sum(balance) AS total FROM acc GROUP BY branch', refresh_mode => 'IMMEDIATE');",
    );
    let name = db.name.clone();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let name = name.clone();
            std::thread::spawn(move || {
                let mut c = pg_trickle_tests::connect(&name);
                for i in 0..50u64 {
                    let id = 1 + (w * 50 + i * 7) % 200;
                    let sql = match i % 3 {
                        0 => format!("UPDATE acc SET balance = balance + 1 WHERE id = {id}"),
                        1 => format!("UPDATE acc SET branch = (branch + 1) % 5 WHERE id = {id}"),
                        _ => format!(
                            "BEGIN; DELETE FROM acc WHERE id = {id}; INSERT INTO acc VALUES ({id}, {}, 50); COMMIT",
                            w
                        ),
                    };
                    c.batch_execute(&sql).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(
        db.oracle(
            "branch_totals",
            "SELECT branch, count(*) AS n, sum(balance) AS total FROM acc GROUP BY branch"
        ),
        (0, 0)
    );
}
