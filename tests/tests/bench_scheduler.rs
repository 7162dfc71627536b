//! Tier 4 (on demand, `benches/scheduler.sh`): the scheduler's commit-to-visible latency through
//! a three-level chain with a 1 s schedule, and its CPU use with 100 idle stream tables. Prints
//! Markdown; asserts nothing about timings.

use pg_trickle_tests::TestDb;
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
#[ignore]
fn chain_latency() {
    let samples: usize = std::env::var("PGT_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let mut db = TestDb::with_scheduler("bench_latency");
    db.exec(
        "CREATE TABLE src (id bigserial PRIMARY KEY, g int NOT NULL, v int NOT NULL);
         INSERT INTO src (g, v) SELECT i % 100, i FROM generate_series(1, 100000) i;
         CREATE INDEX ON src (g);
         SELECT pgtrickle.create_stream_table('l1', 'SELECT g, count(*) AS n, sum(v) AS s FROM src GROUP BY g', schedule => 'calculated');
         SELECT pgtrickle.create_stream_table('l2', 'SELECT g % 10 AS g10, sum(n) AS n, sum(s) AS s FROM l1 GROUP BY 1', schedule => 'calculated');
         SELECT pgtrickle.create_stream_table('l3', 'SELECT sum(n) AS n, max(s) AS top FROM l2', schedule => '1s');",
    );
    std::thread::sleep(Duration::from_secs(2));
    let mut lat = Vec::new();
    let mut expected: i64 = db.value("SELECT n::bigint FROM l3");
    for i in 0..samples {
        // Spread commits over the schedule's phase.
        std::thread::sleep(Duration::from_millis(137 * (i as u64 % 7)));
        db.exec(&format!("INSERT INTO src (g, v) VALUES ({}, 1)", i % 100));
        let committed = Instant::now();
        expected += 1;
        loop {
            let n: i64 = db.value("SELECT n::bigint FROM l3");
            if n == expected {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(30),
                "change never arrived"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        lat.push(committed.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "| commit-to-visible, 3-level chain, 1 s schedule ({samples} commits) | p50 {:.0} ms | p99 {:.0} ms | max {:.0} ms |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
}

#[test]
#[ignore]
fn idle_cpu() {
    let seconds: u64 = std::env::var("PGT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut db = TestDb::with_scheduler("bench_idle");
    db.exec("CREATE TABLE src (id int PRIMARY KEY, g int, v int); INSERT INTO src SELECT i, i % 10, i FROM generate_series(1, 1000) i;");
    for i in 0..100 {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('st{i}', 'SELECT g, count(*) AS n, sum(v) AS s FROM src WHERE v % 100 <> {i} GROUP BY g', schedule => '1s')"
        ));
    }
    std::thread::sleep(Duration::from_secs(3));
    let pid: i32 = db.value(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_trickle scheduler' AND datname = current_database()",
    );
    let t0 = cpu_ticks(pid);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let used = (cpu_ticks(pid) - t0) as f64 / 100.0;
    let wall = start.elapsed().as_secs_f64();
    println!(
        "| scheduler CPU, 100 idle stream tables (1 s schedules), {wall:.0} s | {:.2}% of one core |",
        used / wall * 100.0
    );
}
