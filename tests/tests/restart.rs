//! Tier 3: the catalog, capture and change buffers survive a server restart. This binary restarts
//! the cluster under test, so it holds a single test (cargo runs test binaries one at a time).

use pg_trickle_tests::TestDb;
use std::process::Command;

#[test]
fn the_catalog_and_pending_changes_survive_a_restart() {
    let mut db = TestDb::new("restart");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src VALUES (1, 'a');
         SELECT pgtrickle.create_stream_table('s', 'SELECT id, v FROM src', schedule => '@hourly', refresh_mode => 'FULL');
         INSERT INTO src VALUES (2, 'b');",
    );
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
