//! Harness for tier-3 integration tests: a real PostgreSQL 18 cluster (the dev cluster that
//! `scripts/setup.sh` starts, or any cluster named by `PGT_PORT`/`PGHOST`), driven over a client
//! connection. Each test gets a database of its own, created fresh and dropped afterwards.

pub mod oracle_shapes;
pub mod tpch;

use postgres::{Client, NoTls};

/// Connection string for `dbname` on the test cluster.
pub fn conninfo(dbname: &str) -> String {
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "localhost".into());
    let port = std::env::var("PGT_PORT").unwrap_or_else(|_| "28818".into());
    let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
    format!("host={host} port={port} user={user} dbname={dbname}")
}

/// Connects to `dbname`, retrying briefly (the server may be restarting).
pub fn connect(dbname: &str) -> Client {
    let mut last = None;
    for _ in 0..100 {
        match Client::connect(&conninfo(dbname), NoTls) {
            Ok(c) => return c,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "cannot connect to the test cluster ({}): {:?}",
        conninfo(dbname),
        last
    )
}

/// A fresh database with the extension created; dropped when this value is dropped.
pub struct TestDb {
    pub name: String,
    pub client: Client,
}

impl TestDb {
    /// A database whose stream tables refresh only when the test asks (the background scheduler
    /// is off for it, `pg_trickle.enabled = off`), so refresh counts and histories are the
    /// test's own.
    pub fn new(test: &str) -> TestDb {
        TestDb::create(test, false)
    }

    /// A database where the background scheduler runs, as on a user's server.
    pub fn with_scheduler(test: &str) -> TestDb {
        TestDb::create(test, true)
    }

    fn create(test: &str, scheduler: bool) -> TestDb {
        let name = format!("pgt_it_{test}");
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        if !scheduler {
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{name}\" SET pg_trickle.enabled = off"
                ))
                .unwrap();
        }
        let mut client = connect(&name);
        client
            .batch_execute("SET client_min_messages = warning; CREATE EXTENSION pg_trickle")
            .unwrap();
        TestDb { name, client }
    }

    /// Another connection to the same database.
    pub fn connect(&self) -> Client {
        let mut c = connect(&self.name);
        c.batch_execute("SET client_min_messages = warning")
            .unwrap();
        c
    }

    /// Runs SQL, panicking with the SQL and the error on failure.
    pub fn exec(&mut self, sql: &str) {
        if let Err(e) = self.client.batch_execute(sql) {
            panic!("{sql}\n  failed: {}", describe(&e));
        }
    }

    /// The single value of a one-row, one-column query.
    pub fn value<T>(&mut self, sql: &str) -> T
    where
        T: for<'a> postgres::types::FromSql<'a>,
    {
        match self.client.query_one(sql, &[]) {
            Ok(row) => row.get(0),
            Err(e) => panic!("{sql}\n  failed: {}", describe(&e)),
        }
    }

    /// Runs SQL that must fail; returns its message.
    pub fn error_message(&mut self, sql: &str) -> String {
        match self.client.batch_execute(sql) {
            Ok(()) => panic!("expected an error from: {sql}"),
            Err(e) => describe(&e),
        }
    }

    /// Runs SQL that must fail; returns its SQLSTATE.
    pub fn error_code(&mut self, sql: &str) -> String {
        match self.client.batch_execute(sql) {
            Ok(()) => panic!("expected an error from: {sql}"),
            Err(e) => e
                .code()
                .map(|c| c.code().to_string())
                .unwrap_or_else(|| panic!("not a server error: {e}")),
        }
    }

    /// The oracle: rows of stream table `st` (its user columns) against `query` re-run, as
    /// multisets of their text forms. Returns (missing from st, extra in st).
    pub fn oracle(&mut self, st: &str, query: &str) -> (i64, i64) {
        let cols: Vec<String> = self
            .client
            .query(
                "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = $1::text::regclass \
                 AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\\_\\_pgt\\_%' ORDER BY attnum",
                &[&st],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        // Whole-row references under aliases no user column is called.
        let st_rows = format!(
            "SELECT __oracle_st::text AS r FROM (SELECT {} FROM {st}) __oracle_st",
            cols.join(", ")
        );
        let q_rows = format!("SELECT __oracle_q::text AS r FROM ({query}) __oracle_q");
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM ({q_rows} EXCEPT ALL {st_rows}) a), \
                            (SELECT count(*) FROM ({st_rows} EXCEPT ALL {q_rows}) b)"
                ),
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// How `table` (as `cdc_status()` prints it: `public.items`) is captured: `TRIGGER`, `WAL`, or
    /// `none` when it is not a source.
    pub fn capture_mode(&mut self, table: &str) -> String {
        self.value(&format!(
            "SELECT coalesce((SELECT capture_mode FROM pgtrickle.cdc_status() WHERE source_table = '{table}'), 'none')"
        ))
    }

    /// Waits (at most 30 s) until `table` is captured by `mode` (the WAL consumer moves sources
    /// within its poll interval).
    pub fn wait_for_capture(&mut self, table: &str, mode: &str) {
        let start = std::time::Instant::now();
        loop {
            let now = self.capture_mode(table);
            if now == mode {
                return;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "{table} is still captured by {now}, expected {mode}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Polls the oracle of every (stream table, query) pair until all are exact, for at most
    /// `within` (for stream tables the background scheduler refreshes); panics with `what`.
    pub fn until_exact(&mut self, pairs: &[(&str, &str)], within: std::time::Duration, what: &str) {
        let start = std::time::Instant::now();
        while !pairs.iter().all(|(st, q)| self.oracle(st, q) == (0, 0)) {
            assert!(
                start.elapsed() < within,
                "{what}: not exact after {within:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Asserts that nothing of pg_trickle's is left: no catalog rows, buffers, capture functions
    /// or capture triggers, and no relation named in `relations`.
    pub fn assert_no_leftovers(&mut self, relations: &[&str]) {
        let checks = [
            ("stream tables", "SELECT count(*) FROM pgtrickle.pgt_stream_tables"),
            ("dependencies", "SELECT count(*) FROM pgtrickle.pgt_dependencies"),
            ("sources", "SELECT count(*) FROM pgtrickle.pgt_sources"),
            ("history", "SELECT count(*) FROM pgtrickle.pgt_refresh_history"),
            (
                "change buffers",
                "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace",
            ),
            (
                "capture functions",
                "SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgtrickle_changes'::regnamespace",
            ),
            ("capture triggers", "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtrickle%'"),
        ];
        for (what, sql) in checks {
            let n: i64 = self.value(sql);
            assert_eq!(n, 0, "{what} left behind");
        }
        for r in relations {
            let n: i64 = self.value(&format!(
                "SELECT count(*) FROM pg_class WHERE relname = '{r}'"
            ));
            assert_eq!(n, 0, "relation {r} left behind");
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // keep the database for inspection
        }
        let mut admin = connect("postgres");
        let _ = admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ));
    }
}

/// The SQLSTATE, message, detail and hint of an error, for assertion messages.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} {} (detail: {:?}, hint: {:?})",
            db.code().code(),
            db.message(),
            db.detail(),
            db.hint()
        ),
        None => e.to_string(),
    }
}

/// The psql binary of the cluster under test (`PGT_PSQL`, else `psql` from `PG_CONFIG`'s bindir).
pub fn psql_binary() -> String {
    if let Ok(p) = std::env::var("PGT_PSQL") {
        return p;
    }
    let pg_config =
        std::env::var("PG_CONFIG").unwrap_or_else(|_| "/opt/pg_trickle/pg18/bin/pg_config".into());
    let out = std::process::Command::new(pg_config)
        .arg("--bindir")
        .output()
        .expect("pg_config");
    format!("{}/psql", String::from_utf8_lossy(&out.stdout).trim())
}
