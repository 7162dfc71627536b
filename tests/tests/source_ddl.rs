//! Tier 3: DDL on a source, with PostgreSQL's view semantics as the model, on each capture path
//! (triggers, WAL, IMMEDIATE), while writers commit during the DDL. After each DDL the next
//! writes succeed and the stream tables are exact; DDL that would break a stream table is
//! refused (2BP01) and `CASCADE` drops the stream table cleanly.

use pg_trickle_tests::{connect, TestDb};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Uses `grp` and `v`.
const GROUPED: &str = "SELECT grp, count(*) AS n, sum(v) AS s FROM src GROUP BY grp";
/// Uses `id` and `note`.
const NOTES: &str = "SELECT id, note FROM src WHERE grp <> 2";

/// Writers on their own connections, inserting, updating and deleting rows of `src` by `id`
/// and `grp` only (no column the DDL renames or drops), each in its own id range, until
/// stopped. `table` is the source's current name (a rename changes it; a statement that ran
/// into the rename itself fails with 42P01, which is the rename's doing, not pg_trickle's).
struct Writers {
    stop: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<(u64, Vec<String>)>>,
}

fn start_writers(db: &str, table: Arc<Mutex<String>>, round: i32) -> Writers {
    let stop = Arc::new(AtomicBool::new(false));
    let handles = (0..2)
        .map(|w| {
            let stop = stop.clone();
            let table = table.clone();
            let db = db.to_string();
            thread::spawn(move || {
                let mut c = connect(&db);
                let (mut commits, mut errors) = (0u64, Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = table.lock().unwrap().clone();
                    let id = 100_000 + round * 10_000 + w * 5_000 + i;
                    let sql = format!(
                        "BEGIN; INSERT INTO {t} (id, grp) VALUES ({id}, {g}); \
                         UPDATE {t} SET grp = grp + 1 WHERE id = {u}; \
                         DELETE FROM {t} WHERE id = {d}; COMMIT",
                        g = i % 4,
                        u = 1 + (i * 7 + w) % 60,
                        d = id - 3,
                    );
                    match c.batch_execute(&sql) {
                        Ok(()) => commits += 1,
                        Err(e) => {
                            let _ = c.batch_execute("ROLLBACK");
                            let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
                            if code != "42P01" {
                                errors.push(pg_trickle_tests::describe(&e));
                            }
                        }
                    }
                    i += 1;
                }
                (commits, errors)
            })
        })
        .collect();
    Writers { stop, handles }
}

impl Writers {
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        for h in self.handles {
            let (commits, errors) = h.join().unwrap();
            assert!(errors.is_empty(), "writes failed: {errors:?}");
            total += commits;
        }
        total
    }
}

/// How the stream tables of a scenario are maintained.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    Trigger,
    Wal,
    Immediate,
}

struct Scenario {
    db: TestDb,
    path: Path,
    table: Arc<Mutex<String>>,
    round: i32,
}

impl Scenario {
    fn new(name: &str, path: Path) -> Scenario {
        let mut db = TestDb::new(name);
        db.exec(
            "CREATE TABLE src (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL DEFAULT 5, note text DEFAULT 'n', extra int);
             INSERT INTO src SELECT g, g % 4, g, 'note ' || g, g FROM generate_series(1, 60) g;",
        );
        let args = match path {
            Path::Trigger => ", cdc_mode => 'trigger'",
            Path::Wal => ", cdc_mode => 'wal'",
            Path::Immediate => ", refresh_mode => 'IMMEDIATE'",
        };
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('grouped', $q${GROUPED}$q${args});
             SELECT pgtrickle.create_stream_table('notes', $q${NOTES}$q${args});"
        ));
        if path == Path::Wal {
            db.wait_for_capture("public.src", "WAL");
        }
        Scenario {
            db,
            path,
            table: Arc::new(Mutex::new("src".into())),
            round: 0,
        }
    }

    /// Runs `ddl` while writers commit; returns the error code of the DDL, if it failed.
    fn ddl(&mut self, ddl: &str) -> Option<String> {
        self.round += 1;
        let writers = start_writers(&self.db.name, self.table.clone(), self.round);
        thread::sleep(Duration::from_millis(300));
        let result = self.db.client.batch_execute(ddl);
        thread::sleep(Duration::from_millis(300));
        let commits = writers.finish();
        assert!(commits > 0, "no writer committed around {ddl}");
        result.err().map(|e| {
            e.code()
                .map(|c| c.code().to_string())
                .unwrap_or_else(|| e.to_string())
        })
    }

    /// Refreshes (unless IMMEDIATE) and checks each stream table against its query.
    fn exact(&mut self, pairs: &[(&str, &str)], after: &str) {
        for (st, q) in pairs {
            if self.path != Path::Immediate {
                self.db
                    .exec(&format!("SELECT pgtrickle.refresh_stream_table('{st}')"));
            }
            assert_eq!(self.db.oracle(st, q), (0, 0), "{st} after {after}");
        }
        // pg_trickle says nothing is wrong, and is right.
        let bad: i64 = self.db.value(
            "SELECT count(*) FROM pgtrickle.health_check() WHERE check_name = 'capture_columns' AND severity <> 'OK'",
        );
        assert_eq!(bad, 0, "capture reported broken after {after}");
    }
}

fn every_kind_of_ddl(name: &str, path: Path) {
    let mut s = Scenario::new(name, path);
    let both = |t: &str| {
        [
            ("grouped", GROUPED.replace("src", t)),
            ("notes", NOTES.replace("src", t)),
        ]
    };
    let check = |s: &mut Scenario, t: &str, after: &str| {
        let pairs = both(t);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (*a, b.as_str())).collect();
        s.exact(&pairs, after);
    };
    check(&mut s, "src", "create");

    // Added and dropped columns no stream table uses; an unused column retyped.
    assert_eq!(
        s.ddl("ALTER TABLE src ADD COLUMN added int DEFAULT 7"),
        None
    );
    check(&mut s, "src", "ADD COLUMN");
    assert_eq!(s.ddl("ALTER TABLE src DROP COLUMN extra"), None);
    check(&mut s, "src", "DROP COLUMN (unused)");
    assert_eq!(
        s.ddl("ALTER TABLE src ALTER COLUMN added TYPE bigint"),
        None
    );
    check(&mut s, "src", "ALTER COLUMN TYPE (unused)");

    // Other DDL.
    assert_eq!(
        s.ddl("CREATE INDEX ON src (grp); ALTER TABLE src ADD CONSTRAINT grp_ok CHECK (grp >= 0); \
               ALTER TABLE src SET (fillfactor = 90); ALTER TABLE src ALTER COLUMN note SET DEFAULT 'm'"),
        None
    );
    check(&mut s, "src", "other DDL");

    // Used columns, the key and its constraint: refused, nothing changes.
    assert_eq!(
        s.ddl("ALTER TABLE src DROP COLUMN v").as_deref(),
        Some("2BP01")
    );
    assert_eq!(
        s.ddl("ALTER TABLE src ALTER COLUMN note TYPE varchar(200)")
            .as_deref(),
        Some("2BP01")
    );
    assert_eq!(
        s.ddl("ALTER TABLE src ALTER COLUMN id TYPE bigint")
            .as_deref(),
        Some("2BP01")
    );
    assert_eq!(
        s.ddl("ALTER TABLE src DROP CONSTRAINT src_pkey").as_deref(),
        Some("2BP01")
    );
    let e = s.db.error_message("ALTER TABLE src DROP COLUMN v");
    assert!(
        e.contains("grouped"),
        "the error names the stream table: {e}"
    );
    assert!(e.contains("CASCADE"), "the hint says CASCADE: {e}");
    let e =
        s.db.error_message("ALTER TABLE src ALTER COLUMN v TYPE bigint");
    assert!(
        e.contains("grouped"),
        "the error names the stream table: {e}"
    );
    check(&mut s, "src", "refused DDL");

    // Renames of a used column and of the table are followed.
    assert_eq!(s.ddl("ALTER TABLE src RENAME COLUMN v TO val"), None);
    let renamed = GROUPED.replace("sum(v)", "sum(val)");
    s.exact(
        &[("grouped", renamed.as_str()), ("notes", NOTES)],
        "RENAME COLUMN",
    );
    // The writers pick up the new name right after it commits (statements that ran into the
    // rename itself fail with 42P01, as they would without pg_trickle).
    let result = {
        s.round += 1;
        let writers = start_writers(&s.db.name, s.table.clone(), s.round);
        thread::sleep(Duration::from_millis(300));
        let r =
            s.db.client
                .batch_execute("ALTER TABLE src RENAME TO source_two");
        *s.table.lock().unwrap() = "source_two".into();
        thread::sleep(Duration::from_millis(300));
        writers.finish();
        r
    };
    assert!(result.is_ok(), "RENAME TO: {result:?}");
    let grouped2 = renamed.replace("src", "source_two");
    let notes2 = NOTES.replace("src", "source_two");
    s.exact(
        &[("grouped", grouped2.as_str()), ("notes", notes2.as_str())],
        "RENAME TO",
    );

    // CASCADE drops the stream table that used the column, and only it.
    assert_eq!(
        s.ddl("ALTER TABLE source_two DROP COLUMN val CASCADE"),
        None
    );
    let left: i64 = s.db.value(
        "SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = to_regclass('grouped')",
    );
    assert_eq!(left, 0);
    assert_eq!(
        s.db.value::<i64>("SELECT count(*) FROM pg_class WHERE relname = 'grouped'"),
        0
    );
    s.exact(&[("notes", notes2.as_str())], "DROP COLUMN CASCADE");
    // And the last stream table gone, nothing is left.
    s.db.exec("SELECT pgtrickle.drop_stream_table('notes')");
    s.db.assert_no_leftovers(&["grouped", "notes"]);
    s.db.exec("INSERT INTO source_two (id, grp) VALUES (-1, 1)");
}

#[test]
fn ddl_on_a_trigger_captured_source() {
    every_kind_of_ddl("ddl_trigger", Path::Trigger);
}

#[test]
fn ddl_on_a_wal_captured_source() {
    every_kind_of_ddl("ddl_wal", Path::Wal);
}

#[test]
fn ddl_on_a_source_of_immediate_stream_tables() {
    every_kind_of_ddl("ddl_immediate", Path::Immediate);
}

#[test]
fn select_star_is_expanded_at_create() {
    let mut db = TestDb::new("ddl_star");
    db.exec(
        "CREATE TABLE items (id int PRIMARY KEY, a int, b text);
         INSERT INTO items SELECT g, g, 'b' || g FROM generate_series(1, 20) g;
         SELECT pgtrickle.create_stream_table('all_items', 'SELECT * FROM items WHERE a > 2');
         SELECT pgtrickle.create_stream_table('joined', 'SELECT i.*, j.a AS ja FROM items i JOIN items j ON j.id = i.a')",
    );
    let q: String = db.value("SELECT defining_query FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = 'all_items'::regclass");
    assert!(!q.contains('*'), "stored as written: {q}");
    db.exec("ALTER TABLE items ADD COLUMN c int DEFAULT 1; INSERT INTO items (id, a, b) VALUES (100, 5, 'x')");
    db.exec("SELECT pgtrickle.refresh_stream_table('all_items'); SELECT pgtrickle.refresh_stream_table('joined')");
    for st in ["all_items", "joined"] {
        let (missing, extra): (i64, i64) = {
            let row = db
                .client
                .query_one(
                    &format!("SELECT * FROM pgtrickle.verify_stream_table('{st}')"),
                    &[],
                )
                .unwrap();
            (row.get(0), row.get(1))
        };
        assert_eq!((missing, extra), (0, 0), "{st}");
    }
    let cols: i64 = db.value("SELECT count(*) FROM pg_attribute WHERE attrelid = 'all_items'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\\_\\_pgt%'");
    assert_eq!(
        cols, 3,
        "the stream table keeps the columns of its creation"
    );
    // Every column is used now: dropping one is refused.
    assert_eq!(db.error_code("ALTER TABLE items DROP COLUMN b"), "2BP01");
    db.exec("ALTER TABLE items DROP COLUMN c; UPDATE items SET b = 'y' WHERE id < 5");
    db.exec("SELECT pgtrickle.refresh_stream_table('all_items')");
    assert_eq!(
        db.oracle("all_items", "SELECT * FROM items WHERE a > 2"),
        (0, 0)
    );
}

#[test]
fn health_check_reports_capture_that_does_not_fit() {
    let mut db = TestDb::new("ddl_health");
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int);
         INSERT INTO t SELECT g, g, g FROM generate_series(1, 10) g;
         SELECT pgtrickle.create_stream_table('s', 'SELECT id, a FROM t', cdc_mode => 'trigger');",
    );
    let severity = |db: &mut TestDb| -> String {
        db.value(
            "SELECT severity FROM pgtrickle.health_check() WHERE check_name = 'capture_columns'",
        )
    };
    assert_eq!(severity(&mut db), "OK");
    // Event triggers do not fire in replica mode: the DDL happens behind pg_trickle's back.
    db.exec("SET session_replication_role = replica; ALTER TABLE t DROP COLUMN b; RESET session_replication_role");
    assert_eq!(severity(&mut db), "CRITICAL");
    assert_eq!(db.error_code("INSERT INTO t VALUES (11, 11)"), "42703");
    let said: String = db.value("SELECT pgtrickle.repair_stream_table('s')");
    assert!(said.contains("recomputed"), "{said}");
    assert_eq!(severity(&mut db), "OK");
    db.exec("INSERT INTO t VALUES (11, 11); UPDATE t SET a = 0 WHERE id = 1");
    db.exec("SELECT pgtrickle.refresh_stream_table('s')");
    assert_eq!(db.oracle("s", "SELECT id, a FROM t"), (0, 0));
}
