//! Tier 3: the getting-started guide's chapters, run as written through psql, must print what the
//! guide shows (tests/expected/<chapter>.out holds the guide's output for tests/sql/<chapter>.sql).

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

fn check_chapter(script: &str) {
    let db = TestDb::new(script);
    let got = run_script(&db, script);
    let expected = std::fs::read_to_string(format!(
        "{}/expected/{script}.out",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(got, expected, "got:\n{got}");
}

#[test]
fn chapter_1_prints_what_the_guide_shows() {
    check_chapter("guide_ch1");
}

/// Chapter 2 with the explicit refreshes the guide gives, in topological order (tests/scheduler.rs
/// runs the same chain with the background scheduler alone).
#[test]
fn chapter_2_prints_what_the_guide_shows() {
    check_chapter("guide_ch2");
}

/// Chapter 1 under the default AUTO mode refreshes DIFFERENTIALLY (the guide's "read exactly 1
/// row from the change buffer, adjusted only the Books group").
#[test]
fn chapter_1_refreshes_are_differential() {
    let mut db = TestDb::new("guide_ch1_history");
    let script =
        std::fs::read_to_string(format!("{}/sql/guide_ch1.sql", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let before_cleanup = script
        .split("SELECT pgtrickle.drop_stream_table")
        .next()
        .unwrap();
    db.exec(before_cleanup);
    let history: String = db.value(
        "SELECT string_agg(action || ':' || coalesce(changes_read::text, '-') || ':' || rows_inserted || '/' || rows_updated || '/' || rows_deleted, ' ' ORDER BY refresh_id) \
           FROM pgtrickle.pgt_refresh_history",
    );
    // Creation (FULL, 2 groups), the INSERT (1 change, Books updated), the UPDATE (1 change,
    // Electronics updated): the other group is never written.
    assert_eq!(
        history,
        "FULL:-:2/0/0 DIFFERENTIAL:1:0/1/0 DIFFERENTIAL:1:0/1/0"
    );
    assert_eq!(
        db.value::<String>("SELECT refresh_mode FROM pgtrickle.pgt_status()"),
        "DIFFERENTIAL"
    );
}
