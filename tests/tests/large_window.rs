//! Tier 3: refreshes of large windows (more than 1,000 changes) of joins of three or more
//! sources, which copy each source's window into an indexed, analyzed temporary table and plan
//! the delta over them (`src/window.rs`), stay exact: aggregates, outer joins, a keyless source,
//! TopK, both sides of a join changing in one window; no temporary table is left behind.

use pg_trickle_tests::TestDb;

const SHAPES: &[(&str, &str)] = &[
    (
        "agg3",
        "SELECT c.label, count(*) AS n, sum(b.w) AS s FROM a JOIN b ON b.a_id = a.id JOIN c ON c.code = a.g GROUP BY c.label",
    ),
    (
        "outer3",
        "SELECT a.id, b.id AS bid, c.label FROM a JOIN b ON b.a_id = a.id LEFT JOIN c ON c.code = a.g",
    ),
    (
        "bag3",
        "SELECT a.g, d.x, count(*) AS n FROM a JOIN d ON d.g = a.g JOIN c ON c.code = a.g WHERE a.v > 10 GROUP BY a.g, d.x",
    ),
    (
        "top3",
        "SELECT a.id, sum(b.w) AS s FROM a JOIN b ON b.a_id = a.id JOIN c ON c.code = a.g GROUP BY a.id ORDER BY s DESC, a.id LIMIT 10",
    ),
    (
        "rows3",
        "SELECT x.id, y.v, c.label FROM a x JOIN a y ON y.id = x.id + 1 JOIN c ON c.code = x.g WHERE x.v < 50",
    ),
];

#[test]
fn large_windows_of_many_way_joins_stay_exact() {
    let mut db = TestDb::new("large_window");
    db.exec(
        "CREATE TABLE c (code int PRIMARY KEY, label text);
         CREATE TABLE a (id int PRIMARY KEY, g int, v int);
         CREATE TABLE b (id int PRIMARY KEY, a_id int, w int);
         CREATE INDEX ON b (a_id);
         CREATE TABLE d (g int, x int);
         INSERT INTO c SELECT i, 'L' || (i % 7) FROM generate_series(0, 49) i;
         INSERT INTO a SELECT i, i % 60, i % 100 FROM generate_series(1, 20000) i;
         INSERT INTO b SELECT i, (i * 7) % 20000 + 1, i % 13 FROM generate_series(1, 40000) i;
         INSERT INTO d SELECT i % 60, i % 5 FROM generate_series(1, 3000) i;",
    );
    for (name, q) in SHAPES {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        ));
    }
    let rounds = [
        // One table, thousands of rows moving between groups and join partners.
        "UPDATE a SET g = (g + 7) % 60, v = v + 1 WHERE id % 5 = 0",
        // Both sides of a join at once, inserts and deletes.
        "BEGIN; INSERT INTO b SELECT 40000 + i, i % 20000 + 1, 5 FROM generate_series(1, 2500) i; \
         DELETE FROM b WHERE id % 17 = 0; UPDATE a SET v = 99 - v WHERE id % 9 = 0; COMMIT",
        // Keyless duplicates in and out, the lookup table re-labelled.
        "BEGIN; INSERT INTO d SELECT i % 60, i % 5 FROM generate_series(1, 2000) i; \
         DELETE FROM d WHERE x = 3; UPDATE c SET label = label || '!' WHERE code % 3 = 0; COMMIT",
        // Insert and delete of the same rows in one window, key updates.
        "BEGIN; INSERT INTO a SELECT 30000 + i, i % 60, 1 FROM generate_series(1, 1500) i; \
         DELETE FROM a WHERE id > 30000; UPDATE b SET a_id = a_id % 1000 + 1 WHERE id % 11 = 0; COMMIT",
    ];
    for (r, dml) in rounds.iter().enumerate() {
        db.exec(dml);
        for (name, q) in SHAPES {
            db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
            assert_eq!(db.oracle(name, q), (0, 0), "round {r}: {name}");
        }
    }
    // Every refresh was DIFFERENTIAL, and each stream table had large windows.
    let full: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE initiated_by = 'MANUAL' AND action <> 'DIFFERENTIAL'",
    );
    assert_eq!(full, 0, "a refresh was not DIFFERENTIAL");
    let large: i64 = db.value(
        "SELECT min(n) FROM (SELECT count(*) FILTER (WHERE h.changes_read > 1000) AS n \
           FROM pgtrickle.pgt_stream_tables st LEFT JOIN pgtrickle.pgt_refresh_history h \
             ON h.pgt_id = st.pgt_id AND h.initiated_by = 'MANUAL' GROUP BY st.pgt_id) s",
    );
    assert!(large >= 2, "a stream table had only {large} large windows");
    let left: i64 = db.value("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_\\_pgt\\_win%'");
    assert_eq!(left, 0, "temporary window tables left behind");
}
