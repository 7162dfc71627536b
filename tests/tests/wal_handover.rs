//! Tier 3: the trigger → WAL hand-over and the WAL → trigger hand-back happen while writers
//! commit continuously and refreshes run in a loop; afterwards every stream table equals its
//! query (no change lost or applied twice across either switch). This binary changes
//! `pg_trickle.cdc_mode` with ALTER SYSTEM, so it holds a single test (cargo runs test binaries
//! one at a time) and resets the setting however it ends.

use pg_trickle_tests::{connect, TestDb};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHAPES: &[(&str, &str)] = &[
    ("per_customer", "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer"),
    ("per_region", "SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM orders o JOIN customers c ON c.id = o.customer GROUP BY c.region"),
    ("big_orders", "SELECT o.id, o.amount, c.region FROM orders o JOIN customers c ON c.id = o.customer WHERE o.amount > 900"),
    ("notes_by_tag", "SELECT tag, count(*) AS n FROM notes GROUP BY tag"),
];

/// Resets `pg_trickle.cdc_mode` when dropped (also when the test panics).
struct ResetCdcMode;

impl Drop for ResetCdcMode {
    fn drop(&mut self) {
        let mut c = connect("postgres");
        let _ = c.batch_execute("ALTER SYSTEM RESET pg_trickle.cdc_mode");
        let _ = c.batch_execute("SELECT pg_reload_conf()");
    }
}

fn modes(db: &mut TestDb) -> String {
    db.value(
        "SELECT string_agg(source_table || '=' || capture_mode, ' ' ORDER BY source_table) FROM pgtrickle.cdc_status()",
    )
}

fn wait_for(db: &mut TestDb, expected: &str) {
    let start = Instant::now();
    loop {
        let now = modes(db);
        if now == expected {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "capture is {now}, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hand_over_and_back_under_load_lose_and_double_nothing() {
    let _reset = ResetCdcMode;
    let mut db = TestDb::new("wal_handover");
    db.exec(
        "CREATE TABLE customers (id int PRIMARY KEY, region text NOT NULL);
         CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL, amount int NOT NULL);
         CREATE TABLE notes (tag text, body text);
         INSERT INTO customers SELECT i, 'r' || (i % 4) FROM generate_series(1, 50) i;
         INSERT INTO orders SELECT i, 1 + i % 50, i % 1000 FROM generate_series(1, 2000) i;
         INSERT INTO notes SELECT 't' || (i % 3), 'n' FROM generate_series(1, 30) i;",
    );
    let stop = Arc::new(AtomicBool::new(false));
    // Writers start before the stream tables exist, so the first hand-over happens under load.
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let name = db.name.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = connect(&name);
                let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ (w + 1);
                let mut commits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let id = 1 + x % 2500;
                    let sql = match x % 6 {
                        0 => format!("INSERT INTO orders VALUES ({id}, {}, {}) ON CONFLICT (id) DO UPDATE SET amount = orders.amount + 7", 1 + x % 50, x % 1000),
                        1 => format!("UPDATE orders SET customer = {} WHERE id = {id}", 1 + (x >> 8) % 50),
                        2 => format!("DELETE FROM orders WHERE id = {id}"),
                        3 => format!("BEGIN; UPDATE orders SET amount = amount + 1 WHERE id = {id}; UPDATE customers SET region = 'r{}' WHERE id = {}; INSERT INTO notes VALUES ('t{}', 'w'); COMMIT", x % 5, 1 + x % 50, x % 4),
                        4 => format!("BEGIN; INSERT INTO orders VALUES ({}, 1, 5) ON CONFLICT DO NOTHING; DELETE FROM orders WHERE id = {}; ROLLBACK", 3000 + id, id),
                        _ => format!("DELETE FROM notes WHERE ctid = (SELECT ctid FROM notes WHERE tag = 't{}' LIMIT 1)", x % 4),
                    };
                    c.batch_execute(&sql).unwrap();
                    commits += 1;
                }
                commits
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for (name, q) in SHAPES {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        ));
    }
    let refresher = {
        let name = db.name.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = connect(&name);
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (st, _) in SHAPES {
                    // A refresh may fail while the consumer falls back (the test then checks
                    // that the fallback is reported and the result exact).
                    if let Err(e) =
                        c.batch_execute(&format!("SELECT pgtrickle.refresh_stream_table('{st}')"))
                    {
                        eprintln!("refresh of {st} failed: {e:?}");
                    }
                }
                rounds += 1;
            }
            rounds
        })
    };
    // Keyed tables move to the WAL; the keyless one stays on triggers.
    let all_wal = "public.customers=WAL public.notes=TRIGGER public.orders=WAL";
    let all_trigger = "public.customers=TRIGGER public.notes=TRIGGER public.orders=TRIGGER";
    wait_for(&mut db, all_wal);
    std::thread::sleep(Duration::from_millis(1500));
    db.exec("ALTER SYSTEM SET pg_trickle.cdc_mode = 'trigger'");
    db.exec("SELECT pg_reload_conf()");
    wait_for(&mut db, all_trigger);
    std::thread::sleep(Duration::from_millis(1500));
    db.exec("ALTER SYSTEM RESET pg_trickle.cdc_mode");
    db.exec("SELECT pg_reload_conf()");
    wait_for(&mut db, all_wal);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let commits: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let rounds = refresher.join().unwrap();
    assert!(commits > 1000, "writers committed {commits} transactions");
    assert!(rounds > 10, "{rounds} refresh rounds ran during the load");
    for (st, q) in SHAPES {
        db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{st}')"));
        assert_eq!(db.oracle(st, q), (0, 0), "{st}");
    }
    // Every refresh after the first was differential, unless the consumer fell back (which it
    // must then report).
    let full: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE action <> 'DIFFERENTIAL' AND initiated_by <> 'CREATE'",
    );
    let fell_back: i64 =
        db.value("SELECT count(*) FROM pgtrickle.pgt_sources WHERE capture_note LIKE 'fell back%'");
    assert!(
        full == 0 || fell_back > 0,
        "{full} FULL refreshes without a fallback"
    );
    eprintln!("hand-over test: {commits} commits, {rounds} refresh rounds, exact");
}
