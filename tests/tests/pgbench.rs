//! Tier 3: a standard workload nobody here wrote. pgbench's TPC-B-like transactions run on 4
//! clients while stream tables over its tables (one without a primary key) refresh in a loop;
//! after the load and a last refresh every stream table equals its query.

use pg_trickle_tests::{psql_binary, TestDb};
use std::process::Command;

fn pgbench() -> String {
    psql_binary().trim_end_matches("psql").to_string() + "pgbench"
}

const SHAPES: &[(&str, &str)] = &[
    ("branch_totals", "SELECT bid, sum(abalance) AS balance, count(*) AS accounts FROM pgbench_accounts GROUP BY bid"),
    ("teller_flow", "SELECT tid, sum(delta) AS flow, count(*) AS n, min(delta) AS lo, max(delta) AS hi FROM pgbench_history GROUP BY tid"),
    ("rich", "SELECT aid, abalance FROM pgbench_accounts WHERE abalance > 1000"),
    ("history_big", "SELECT tid, bid, aid, delta FROM pgbench_history WHERE delta > 4000"),
];

#[test]
fn pgbench_load_with_refreshes_in_a_loop_ends_exact() {
    let mut db = TestDb::new("pgbench");
    let dbname = db.name.clone();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-h".into(),
            std::env::var("PGHOST").unwrap_or_else(|_| "localhost".into()),
            "-p".into(),
            std::env::var("PGT_PORT").unwrap_or_else(|_| "28818".into()),
            "-U".into(),
            "postgres".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a.push(dbname.clone());
        a
    };
    let init = Command::new(pgbench())
        .args(args(&["-i", "-q", "-s", "1"]))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    for (name, q) in SHAPES {
        db.exec(&format!("SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"));
    }
    let load = std::thread::spawn({
        let a = args(&["-n", "-c", "4", "-j", "2", "-T", "8"]);
        move || Command::new(pgbench()).args(a).output().unwrap()
    });
    let mut refresher = db.connect();
    let mut rounds = 0;
    while !load.is_finished() {
        for (name, _) in SHAPES {
            refresher
                .batch_execute(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"))
                .unwrap();
        }
        rounds += 1;
    }
    let out = load.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rounds > 5,
        "only {rounds} refresh rounds ran during the load"
    );
    for (name, q) in SHAPES {
        db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
        assert_eq!(db.oracle(name, q), (0, 0), "{name}");
    }
    let transactions: i64 = db.value("SELECT count(*) FROM pgbench_history");
    assert!(
        transactions > 100,
        "pgbench committed {transactions} transactions"
    );
}
