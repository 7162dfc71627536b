//! Tier 3: the background scheduler on a real server. Databases here are created with the
//! scheduler on (`TestDb::with_scheduler`); assertions poll for the expected state with a
//! deadline and never rely on a fixed sleep.

use pg_trickle_tests::{connect, TestDb};
use std::time::{Duration, Instant};

/// Polls `sql` (one text value) until it equals `expected`, for at most `within`.
fn eventually(db: &mut TestDb, sql: &str, expected: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got: Option<String> = db
            .client
            .query_opt(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .and_then(|r| r.get(0));
        if got.as_deref() == Some(expected) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{sql}\n  still {got:?} after {within:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const WITHIN: Duration = Duration::from_secs(2);

fn guide_setup(db: &mut TestDb) {
    db.exec(
        "CREATE TABLE departments (id SERIAL PRIMARY KEY, name TEXT NOT NULL, parent_id INT REFERENCES departments(id));
         CREATE TABLE employees (id SERIAL PRIMARY KEY, name TEXT NOT NULL, department_id INT NOT NULL REFERENCES departments(id), salary NUMERIC(10,2) NOT NULL);
         INSERT INTO departments (id, name, parent_id) VALUES (1, 'Company', NULL);
         INSERT INTO departments (id, name, parent_id) VALUES (2, 'Engineering', 1), (3, 'Sales', 1), (4, 'Operations', 1);
         INSERT INTO departments (id, name, parent_id) VALUES (5, 'Backend', 2), (6, 'Frontend', 2), (7, 'Platform', 2);
         INSERT INTO employees (name, department_id, salary) VALUES
           ('Alice', 5, 120000), ('Bob', 5, 115000), ('Charlie', 6, 110000), ('Diana', 7, 130000),
           ('Eve', 3, 95000), ('Frank', 3, 90000), ('Grace', 4, 100000);
         SELECT pgtrickle.create_stream_table(name => 'department_tree', query => $$
           WITH RECURSIVE tree AS (
             SELECT id, name, parent_id, name AS path, 0 AS depth FROM departments WHERE parent_id IS NULL
             UNION ALL
             SELECT d.id, d.name, d.parent_id, tree.path || ' > ' || d.name AS path, tree.depth + 1
             FROM departments d JOIN tree ON d.parent_id = tree.id)
           SELECT id, name, parent_id, path, depth FROM tree $$, schedule => '1s');
         SELECT pgtrickle.create_stream_table(name => 'department_stats', query => $$
           SELECT t.id AS department_id, t.name AS department_name, t.path AS full_path, t.depth,
                  COUNT(e.id) AS headcount, COALESCE(SUM(e.salary), 0) AS total_salary, COALESCE(AVG(e.salary), 0) AS avg_salary
           FROM department_tree t LEFT JOIN employees e ON e.department_id = t.id
           GROUP BY t.id, t.name, t.path, t.depth $$, schedule => 'calculated');
         SELECT pgtrickle.create_stream_table(name => 'department_report', query => $$
           SELECT split_part(full_path, ' > ', 2) AS division, SUM(headcount) AS total_headcount, SUM(total_salary) AS total_payroll
           FROM department_stats WHERE depth >= 1 GROUP BY 1 $$, schedule => '1s');",
    );
}

/// Chapters 2 and 3 of the guide with no manual refresh: every change reaches all three layers
/// by the scheduler alone, within 2 s of the write.
#[test]
fn guide_chain_refreshes_itself() {
    let mut db = TestDb::with_scheduler("sched_guide");
    guide_setup(&mut db);
    let report = "SELECT string_agg(division || '|' || total_headcount || '|' || total_payroll, ', ' ORDER BY division) FROM department_report";
    let stats = |name: &str| {
        format!("SELECT headcount || '|' || total_salary || '|' || avg_salary FROM department_stats WHERE department_name = '{name}'")
    };
    // 2.4a: an INSERT ripples to department_stats and department_report.
    db.exec("INSERT INTO employees (name, department_id, salary) VALUES ('Heidi', 6, 105000)");
    eventually(
        &mut db,
        &stats("Frontend"),
        "2|215000.00|107500.000000000000",
        WITHIN,
    );
    eventually(
        &mut db,
        report,
        "Engineering|5|580000.00, Operations|1|100000.00, Sales|2|185000.00",
        WITHIN,
    );
    // 2.4b: a new department cascades through all three layers.
    db.exec("INSERT INTO departments (id, name, parent_id) VALUES (8, 'DevOps', 2)");
    eventually(
        &mut db,
        "SELECT id || '|' || depth || '|' || path FROM department_tree WHERE name = 'DevOps'",
        "8|2|Company > Engineering > DevOps",
        WITHIN,
    );
    eventually(&mut db, &stats("DevOps"), "0|0|0", WITHIN);
    // 2.4c: a rename rewrites five paths and the report's division.
    db.exec("UPDATE departments SET name = 'R&D' WHERE id = 2");
    eventually(
        &mut db,
        "SELECT string_agg(name || '=' || path, ', ' ORDER BY depth, name) FROM department_tree WHERE path LIKE '%R&D%'",
        "R&D=Company > R&D, Backend=Company > R&D > Backend, DevOps=Company > R&D > DevOps, Frontend=Company > R&D > Frontend, Platform=Company > R&D > Platform",
        WITHIN,
    );
    eventually(
        &mut db,
        report,
        "Operations|1|100000.00, R&D|5|580000.00, Sales|2|185000.00",
        WITHIN,
    );
    // 2.4d: a DELETE.
    db.exec("DELETE FROM employees WHERE name = 'Bob'");
    eventually(
        &mut db,
        &stats("Backend"),
        "1|120000.00|120000.000000000000",
        WITHIN,
    );
    eventually(
        &mut db,
        report,
        "Operations|1|100000.00, R&D|4|465000.00, Sales|2|185000.00",
        WITHIN,
    );
    // The layers reading stream tables refreshed DIFFERENTIAL, by the scheduler.
    let modes: String = db.value(
        "SELECT string_agg(name || '=' || status || '/' || refresh_mode || '/' || coalesce(schedule, 'calculated'), ' ' ORDER BY name) FROM pgtrickle.pgt_status()",
    );
    assert_eq!(
        modes,
        "public.department_report=ACTIVE/DIFFERENTIAL/1s public.department_stats=ACTIVE/DIFFERENTIAL/calculated public.department_tree=ACTIVE/DIFFERENTIAL/1s"
    );
    for st in ["department_stats", "department_report"] {
        let n: i64 = db.value(&format!(
            "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) \
              WHERE s.pgt_relid = '{st}'::regclass AND h.initiated_by = 'SCHEDULER' AND h.action = 'DIFFERENTIAL'"
        ));
        assert!(n >= 4, "{st}: {n} scheduled differential refreshes");
    }
    // Monitoring returns what happened.
    let stat: String = db.value(
        "SELECT string_agg(pgt_name || ':' || (total_refreshes >= 3) || ':' || (successful_refreshes = total_refreshes) || ':' || (avg_duration_ms > 0), ' ' ORDER BY pgt_name) FROM pgtrickle.pg_stat_stream_tables",
    );
    assert_eq!(stat, "public.department_report:true:true:true public.department_stats:true:true:true public.department_tree:true:true:true");
    let health: String = db.value(
        "SELECT string_agg(check_name || '=' || severity, ' ' ORDER BY check_name) FROM pgtrickle.health_check()",
    );
    assert_eq!(health, "buffer_growth=OK capture_columns=OK capture_triggers=OK error_tables=OK scheduler_running=OK stale_tables=OK suspended_tables=OK wal_capture=OK");
    let tree: String = db.value(
        "SELECT string_agg(stream_table || '<-' || source || '@' || depth, ' ' ORDER BY depth, stream_table, source) FROM pgtrickle.dependency_tree()",
    );
    assert_eq!(tree, "public.department_tree<-public.departments@1 public.department_stats<-public.department_tree@2 public.department_stats<-public.employees@2 public.department_report<-public.department_stats@3");
    let timeline: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.refresh_timeline(10) WHERE initiated_by = 'SCHEDULER'",
    );
    assert!(timeline >= 5, "refresh_timeline: {timeline}");
    let buffers: String = db.value(
        "SELECT string_agg(source_table, ' ' ORDER BY source_table) FROM pgtrickle.change_buffer_sizes()",
    );
    assert_eq!(
        buffers,
        "public.department_stats public.department_tree public.departments public.employees"
    );
    let sources: String = db.value(
        "SELECT string_agg(source || ':' || source_type || ':' || capture, ' ' ORDER BY source) FROM pgtrickle.list_sources('department_stats')",
    );
    assert_eq!(
        sources,
        // cdc_mode = 'auto' on a wal_level = logical cluster: the keyed base table moved to WAL
        // capture after the first refresh; a stream table's storage stays on triggers.
        "public.department_tree:STREAM_TABLE:TRIGGER public.employees:TABLE:WAL"
    );
    let dag: String = db.value("SELECT pgtrickle.explain_dag()");
    assert!(
        dag.starts_with("graph TD\n") && dag.contains(" --> "),
        "{dag}"
    );
    // Chapter 5: IMMEDIATE and back, as the guide writes it.
    db.exec("SELECT pgtrickle.alter_stream_table('department_stats', refresh_mode => 'IMMEDIATE')");
    db.exec("INSERT INTO employees (name, department_id, salary) VALUES ('Ivan', 4, 1000)");
    let ops: String = db.value(&stats("Operations"));
    assert_eq!(
        ops, "2|101000.00|50500.000000000000",
        "IMMEDIATE: current right after the INSERT"
    );
    db.exec("SELECT pgtrickle.alter_stream_table('department_stats', refresh_mode => 'DIFFERENTIAL', schedule => '1s')");
    db.exec("DELETE FROM employees WHERE name = 'Ivan'");
    eventually(
        &mut db,
        &stats("Operations"),
        "1|100000.00|100000.000000000000",
        WITHIN,
    );
    // Every layer equals its query.
    assert_eq!(
        db.oracle(
            "department_report",
            "SELECT split_part(full_path, ' > ', 2) AS division, SUM(headcount) AS total_headcount, SUM(total_salary) AS total_payroll FROM department_stats WHERE depth >= 1 GROUP BY 1"
        ),
        (0, 0)
    );
}

/// The scheduler resolves a defining query's names with the search_path it was created under.
#[test]
fn scheduled_refreshes_use_the_creators_search_path() {
    let mut db = TestDb::with_scheduler("sched_search_path");
    db.exec(
        "CREATE SCHEMA app; CREATE TABLE app.orders (id int PRIMARY KEY, amount int);
         CREATE FUNCTION app.doubled(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
         SET search_path = app;
         SELECT pgtrickle.create_stream_table('app.totals', 'SELECT count(*) AS n, sum(doubled(amount)) AS s FROM orders', schedule => '1s');
         RESET search_path;
         INSERT INTO app.orders VALUES (1, 5), (2, 7);",
    );
    eventually(
        &mut db,
        "SELECT n || '/' || s FROM app.totals",
        "2/24",
        Duration::from_secs(3),
    );
    let status: String = db.value("SELECT status FROM pgtrickle.pgt_status()");
    assert_eq!(status, "ACTIVE");
}

/// A refresh that fails sets ERROR with the message, does not hold back other stream tables,
/// is SUSPENDED after `pg_trickle.max_consecutive_errors` failures, and resumes once the data is
/// fixed and the stream table refreshed by hand.
#[test]
fn failing_refreshes_error_suspend_and_recover() {
    let mut db = TestDb::with_scheduler("sched_errors");
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO t VALUES (1, 5), (2, 10);
         SELECT pgtrickle.create_stream_table('ratio', 'SELECT id, 100 / v AS q FROM t', schedule => '1s');
         SELECT pgtrickle.create_stream_table('total', 'SELECT sum(v) AS s FROM t', schedule => '1s');",
    );
    db.exec("UPDATE t SET v = 0 WHERE id = 1");
    eventually(
        &mut db,
        "SELECT status || ': ' || last_error FROM pgtrickle.pgt_status() WHERE name = 'public.ratio'",
        "ERROR: division by zero",
        Duration::from_secs(3),
    );
    // The other stream table keeps refreshing.
    db.exec("INSERT INTO t VALUES (3, 7)");
    eventually(
        &mut db,
        "SELECT s::text FROM total",
        "17",
        Duration::from_secs(3),
    );
    let health: String =
        db.value("SELECT severity FROM pgtrickle.health_check() WHERE check_name = 'error_tables'");
    assert_eq!(health, "WARNING");
    // Failures are in the history and the counters.
    eventually(
        &mut db,
        "SELECT (failed_refreshes >= 1)::text FROM pgtrickle.pg_stat_stream_tables WHERE pgt_name = 'public.ratio'",
        "true",
        WITHIN,
    );
    let logged: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.refresh_timeline(100) WHERE action = 'ERROR' AND reason = 'division by zero'",
    );
    assert!(logged >= 1);
    // Fixing the data lets the retry succeed.
    db.exec("UPDATE t SET v = 4 WHERE id = 1");
    eventually(
        &mut db,
        "SELECT status || '/' || consecutive_errors FROM pgtrickle.pgt_status() WHERE name = 'public.ratio'",
        "ACTIVE/0",
        Duration::from_secs(12),
    );
    assert_eq!(db.oracle("ratio", "SELECT id, 100 / v AS q FROM t"), (0, 0));
    // With pg_trickle.max_consecutive_errors = 2 the scheduler gives up after two failures in a
    // row; the stream table stays SUSPENDED until refreshed by hand.
    db.exec("ALTER SYSTEM SET pg_trickle.max_consecutive_errors = 2");
    db.exec("SELECT pg_reload_conf()");
    db.exec("UPDATE t SET v = 0 WHERE id = 2");
    let suspended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(
            &mut db,
            "SELECT status || '/' || consecutive_errors FROM pgtrickle.pgt_status() WHERE name = 'public.ratio'",
            "SUSPENDED/2",
            Duration::from_secs(6),
        )
    }));
    db.exec("ALTER SYSTEM RESET pg_trickle.max_consecutive_errors");
    db.exec("SELECT pg_reload_conf()");
    suspended.unwrap();
    let health: String = db.value(
        "SELECT severity FROM pgtrickle.health_check() WHERE check_name = 'suspended_tables'",
    );
    assert_eq!(health, "CRITICAL");
    db.exec("UPDATE t SET v = 2 WHERE id = 2");
    std::thread::sleep(Duration::from_millis(1500));
    let still: String =
        db.value("SELECT status FROM pgtrickle.pgt_status() WHERE name = 'public.ratio'");
    assert_eq!(
        still, "SUSPENDED",
        "the scheduler leaves a SUSPENDED stream table alone"
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('ratio')");
    let resumed: String =
        db.value("SELECT status FROM pgtrickle.pgt_status() WHERE name = 'public.ratio'");
    assert_eq!(resumed, "ACTIVE");
    assert_eq!(db.oracle("ratio", "SELECT id, 100 / v AS q FROM t"), (0, 0));
}

/// Changes keep flowing through a diamond (two paths from one source to one sink) while writers
/// commit; once writes stop, every stream table equals its query.
#[test]
fn diamond_stays_exact_under_writes() {
    let mut db = TestDb::with_scheduler("sched_diamond");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int, v int);
         INSERT INTO src SELECT i, i % 7, i FROM generate_series(1, 200) i;
         SELECT pgtrickle.create_stream_table('left_side', 'SELECT g, sum(v) AS s, count(*) AS n FROM src GROUP BY g', schedule => 'calculated');
         SELECT pgtrickle.create_stream_table('right_side', 'SELECT id, g, v FROM src WHERE v % 3 = 0', schedule => 'calculated');
         SELECT pgtrickle.create_stream_table('sink', 'SELECT l.g, l.s, count(r.id) AS hits FROM left_side l LEFT JOIN right_side r ON r.g = l.g GROUP BY l.g, l.s', schedule => '1s');",
    );
    let name = db.name.clone();
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let name = name.clone();
            std::thread::spawn(move || {
                let mut c = connect(&name);
                let mut x: u64 = 0x9E37_79B9 + w;
                for i in 0..300u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let id = 1 + x % 260;
                    let sql = match i % 3 {
                        0 => format!("INSERT INTO src VALUES ({id}, {}, {}) ON CONFLICT (id) DO UPDATE SET v = src.v + 1", x % 9, x % 100),
                        1 => format!("UPDATE src SET g = {} WHERE id = {id}", x % 9),
                        _ => format!("DELETE FROM src WHERE id = {id}"),
                    };
                    c.batch_execute(&sql).unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // Quiescent: the sink catches up within its schedule, and so does everything upstream.
    let q = "SELECT l.g, l.s, count(r.id) AS hits FROM left_side l LEFT JOIN right_side r ON r.g = l.g GROUP BY l.g, l.s";
    db.until_exact(
        &[
            (
                "left_side",
                "SELECT g, sum(v) AS s, count(*) AS n FROM src GROUP BY g",
            ),
            ("right_side", "SELECT id, g, v FROM src WHERE v % 3 = 0"),
            ("sink", q),
        ],
        Duration::from_secs(5),
        "diamond, after the writes stopped",
    );
    let diff: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE initiated_by = 'SCHEDULER' AND action = 'DIFFERENTIAL'",
    );
    assert!(diff >= 6, "scheduled differential refreshes: {diff}");
}

/// DROP EXTENSION stops the database's scheduler; DROP DATABASE (without FORCE) is not blocked
/// by it.
#[test]
fn scheduler_stops_for_drop_extension_and_drop_database() {
    let running = "SELECT count(*)::text FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = current_database()";
    let mut db = TestDb::with_scheduler("sched_drop_ext");
    db.exec("CREATE TABLE t (id int PRIMARY KEY); SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', schedule => '1s')");
    eventually(&mut db, running, "1", WITHIN);
    db.exec("DROP EXTENSION pg_trickle CASCADE");
    eventually(&mut db, running, "0", WITHIN);

    let name = "pgt_it_sched_drop_db";
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    {
        let mut c = connect(name);
        c.batch_execute("SET client_min_messages = warning; CREATE EXTENSION pg_trickle; CREATE TABLE u (id int PRIMARY KEY); SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM u', schedule => '1s')")
            .unwrap();
        let start = Instant::now();
        loop {
            let n: String = c.query_one(running, &[]).unwrap().get(0);
            if n == "1" {
                break;
            }
            assert!(start.elapsed() < WITHIN, "no scheduler started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    admin
        .batch_execute(&format!("DROP DATABASE {name}"))
        .expect("DROP DATABASE is not blocked by the scheduler");
}

/// With `pg_trickle.max_concurrent_refreshes` above 1, a pass's independent refreshes run at the
/// same time, in refresh workers.
#[test]
fn parallel_refreshes_overlap() {
    let mut db = TestDb::with_scheduler("sched_parallel");
    db.exec("ALTER SYSTEM SET pg_trickle.max_concurrent_refreshes = 4");
    db.exec("SELECT pg_reload_conf()");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        db.exec("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)");
        for i in 0..4 {
            db.exec(&format!(
                "SELECT pgtrickle.create_stream_table('slow{i}', \
                   'SELECT id, v + {i} AS v FROM t WHERE (SELECT count(*) FROM pg_sleep(0.3)) = 1', schedule => '1s')"
            ));
        }
        eventually(
            &mut db,
            "SELECT EXISTS (SELECT 1 FROM pgtrickle.pgt_refresh_history a JOIN pgtrickle.pgt_refresh_history b \
               ON a.pgt_id < b.pgt_id AND a.started_at < b.finished_at AND b.started_at < a.finished_at \
              WHERE a.initiated_by = 'SCHEDULER' AND b.initiated_by = 'SCHEDULER')::text",
            "true",
            Duration::from_secs(6),
        );
        let failed: i64 =
            db.value("SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE action = 'ERROR'");
        assert_eq!(failed, 0);
    }));
    db.exec("ALTER SYSTEM RESET pg_trickle.max_concurrent_refreshes");
    db.exec("SELECT pg_reload_conf()");
    outcome.unwrap();
}
