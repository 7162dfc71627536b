//! Tier 3: chapter 1 of the getting-started guide, run as written through psql, must print what
//! the guide shows (tests/expected/guide_ch1.out holds psql's output for tests/sql/guide_ch1.sql).

use pg_trickle_tests::{conninfo, psql_binary, TestDb};
use std::process::Command;

fn run_script(db: &TestDb, script: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(psql_binary())
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &conninfo(&db.name),
            "-f",
        ])
        .arg(format!("{root}/sql/{script}.sql"))
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn chapter_1_prints_what_the_guide_shows() {
    let db = TestDb::new("guide_ch1");
    let got = run_script(&db, "guide_ch1");
    let expected = std::fs::read_to_string(format!(
        "{}/expected/guide_ch1.out",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(got, expected, "got:\n{got}");
}
