//! Tier 3: the catalog, capture and change buffers survive a server restart. This binary restarts
//! the cluster under test, so it holds a single test (cargo runs test binaries one at a time).

use pg_trickle_tests::TestDb;
use std::process::Command;
use std::time::Duration;

#[test]
fn the_catalog_and_pending_changes_survive_a_restart() {
    let mut db = TestDb::new("restart");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src VALUES (1, 'a');
         SELECT pgtrickle.create_stream_table('s', 'SELECT id, v FROM src', schedule => '@hourly', refresh_mode => 'FULL');
         INSERT INTO src VALUES (2, 'b');",
    );
    // A database with the scheduler on: changes committed just before the restart are refreshed
    // by the scheduler that starts with the server again.
    let mut sched = TestDb::with_scheduler("restart_sched");
    sched.exec(
        "CREATE TABLE t (id int PRIMARY KEY, g int, v int); INSERT INTO t SELECT i, i % 5, i FROM generate_series(1, 100) i;
         SELECT pgtrickle.create_stream_table('agg', 'SELECT g, count(*) AS n, sum(v) AS s FROM t GROUP BY g', schedule => '1s', refresh_mode => 'DIFFERENTIAL');",
    );
    // The source is captured from the WAL (cdc_mode = 'auto'); the changes are committed, and
    // possibly not yet consumed, when the server goes down.
    let start = std::time::Instant::now();
    while sched.value::<String>("SELECT capture_mode FROM pgtrickle.cdc_status()") != "WAL" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "t never moved to WAL capture"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sched.exec("UPDATE t SET g = 7 WHERE id <= 10");
    sched.exec("DELETE FROM t WHERE id > 95");
    sched.exec("INSERT INTO t VALUES (500, 9, 9)");
    let script = format!("{}/../scripts/cluster.sh", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(script)
        .arg("restart")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db.client = db.connect();
    sched.client = sched.connect();
    sched.until_exact(
        &[(
            "agg",
            "SELECT g, count(*) AS n, sum(v) AS s FROM t GROUP BY g",
        )],
        Duration::from_secs(10),
        "the scheduler after the restart",
    );
    assert_eq!(
        sched.value::<String>("SELECT capture_mode FROM pgtrickle.cdc_status()"),
        "WAL",
        "still captured from the WAL after the restart"
    );
    sched.exec("UPDATE t SET v = v * 2 WHERE id % 3 = 0");
    sched.until_exact(
        &[(
            "agg",
            "SELECT g, count(*) AS n, sum(v) AS s FROM t GROUP BY g",
        )],
        Duration::from_secs(10),
        "changes after the restart",
    );
    let scheduled: i64 = sched.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE initiated_by = 'SCHEDULER' AND action = 'DIFFERENTIAL'",
    );
    assert!(scheduled >= 1);
    assert_eq!(
        db.value::<String>(
            "SELECT name || ' ' || status || ' ' || schedule FROM pgtrickle.pgt_status()"
        ),
        "public.s ACTIVE @hourly"
    );
    assert_eq!(db.oracle("s", "SELECT id, v FROM src"), (1, 0));
    db.exec("INSERT INTO src VALUES (3, 'c'); SELECT pgtrickle.refresh_stream_table('s')");
    assert_eq!(db.oracle("s", "SELECT id, v FROM src"), (0, 0));
    db.exec("SELECT pgtrickle.drop_stream_table('s')");
    db.assert_no_leftovers(&["s"]);
}
