//! Tier 3: internal stream tables (`pg_trickle_core::ivm::nest`, `src/nested.rs`): queries the
//! engine maintains only once their subqueries (and views) are stream tables of their own. Their
//! exactness under the nasty changes (NULL keys, duplicates without a key, insert+delete in one
//! window, rows moving between groups and partners, both sides at once, WAL capture), their
//! lifecycle (refused API calls, redefinition, DROP TABLE, rename, changed views), the fallback
//! that leaves nothing behind, and the scheduler. More shapes over random data are in the oracle
//! (`oracle.rs`), the 22 TPC-H queries in `tpch.rs`.

use pg_trickle_tests::TestDb;
use std::time::Duration;

fn setup(db: &mut TestDb) {
    db.exec(
        "CREATE TABLE customers (id int PRIMARY KEY, region text);
         CREATE TABLE orders (id int PRIMARY KEY, cust int, amount int);
         CREATE TABLE events (cust int, v int);
         INSERT INTO customers SELECT g, 'r' || (g % 4) FROM generate_series(1, 40) g;
         INSERT INTO orders SELECT g, CASE WHEN g % 17 = 0 THEN NULL ELSE g % 37 + 1 END, g % 23 FROM generate_series(1, 400) g;
         INSERT INTO events SELECT g % 30, g % 5 FROM generate_series(1, 300) g;
         INSERT INTO events SELECT g % 30, g % 5 FROM generate_series(1, 100) g;
         CREATE VIEW cust_totals AS SELECT cust, sum(amount) AS total FROM orders GROUP BY cust;
         CREATE VIEW big_totals AS SELECT * FROM cust_totals WHERE total > 50;",
    );
}

/// Shapes the engine refuses as written and maintains over internal stream tables.
const SHAPES: &[(&str, &str)] = &[
    // An aggregate over an aggregating outer join (TPC-H q13).
    (
        "agg_over_agg",
        "SELECT n, count(*) AS c FROM (SELECT c.id, count(o.id) AS n FROM customers c LEFT JOIN orders o \
         ON o.cust = c.id GROUP BY c.id) AS x GROUP BY n",
    ),
    // A correlated scalar subquery over a join (q02, q17 over a join).
    (
        "scalar_join",
        "SELECT o.id, o.cust, o.amount FROM orders o WHERE o.amount = (SELECT max(o2.amount) FROM orders o2 \
         JOIN customers c2 ON c2.id = o2.cust WHERE c2.region <> 'r0' AND o2.cust = o.cust)",
    ),
    // A subquery in HAVING over a join (q11).
    (
        "having_sub",
        "SELECT cust, sum(amount) AS total FROM orders GROUP BY cust HAVING sum(amount) > \
         (SELECT avg(o.amount) * 8 FROM orders o JOIN customers c ON c.id = o.cust WHERE c.region <> 'r1')",
    ),
    // EXISTS and NOT EXISTS correlated by <> (q21).
    (
        "exists_ne",
        "SELECT o.id, o.cust FROM orders o WHERE EXISTS (SELECT 1 FROM orders o2 WHERE o2.cust = o.cust \
         AND o2.amount <> o.amount) AND NOT EXISTS (SELECT 1 FROM orders o3 WHERE o3.cust = o.cust \
         AND o3.amount <> o.amount AND o3.amount > 15)",
    ),
    // IN over a subquery with its own scalar subquery, next to a scalar subquery (q20, q22).
    (
        "in_scalar",
        "SELECT c.id, c.region FROM customers c WHERE c.id IN (SELECT cust FROM orders \
         WHERE amount > (SELECT avg(amount) FROM orders)) AND c.id > (SELECT min(cust) + 2 FROM orders)",
    ),
    // A view over a view, read twice, once in a scalar subquery (q15).
    (
        "views",
        "SELECT c.region, b.cust, b.total FROM customers c, big_totals b WHERE b.cust = c.id \
         AND b.total >= (SELECT max(total) - 30 FROM big_totals)",
    ),
    // Duplicates without a key, grouped twice.
    (
        "keyless",
        "SELECT v, count(*) AS n FROM (SELECT e.cust, sum(e.v) AS v FROM events e JOIN customers c ON c.id = e.cust \
         GROUP BY e.cust) s GROUP BY v",
    ),
];

fn internal(db: &mut TestDb) -> i64 {
    db.value("SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE parent_pgt_id IS NOT NULL")
}

fn check_all(db: &mut TestDb, round: &str) {
    for (name, q) in SHAPES {
        db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
        assert_eq!(db.oracle(name, q), (0, 0), "{name} after {round}");
    }
}

fn create_all(db: &mut TestDb) {
    for (name, q) in SHAPES {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        ));
        assert_eq!(db.oracle(name, q), (0, 0), "{name} after create");
        let explain: String = db.value(&format!("SELECT pgtrickle.explain_stream_table('{name}')"));
        assert!(
            explain.contains("refresh strategy: DIFFERENTIAL"),
            "{name}: {explain}"
        );
    }
}

#[test]
fn nested_shapes_stay_exact_under_the_nasty_changes() {
    let mut db = TestDb::new("nested_exact");
    setup(&mut db);
    create_all(&mut db);
    assert!(internal(&mut db) >= SHAPES.len() as i64);
    let rounds = [
        ("NULL keys", "UPDATE orders SET cust = NULL WHERE id % 11 = 0; INSERT INTO orders VALUES (1001, NULL, 5)"),
        ("a row moving between groups", "UPDATE orders SET cust = 3, amount = amount + 40 WHERE id IN (10, 20, 30)"),
        (
            "insert+delete in one window",
            "INSERT INTO orders VALUES (1002, 5, 99); DELETE FROM orders WHERE id = 1002; \
             INSERT INTO events VALUES (4, 4); DELETE FROM events WHERE cust = 4 AND v = 4",
        ),
        (
            "both sides at once",
            "UPDATE customers SET region = 'r0' WHERE id % 3 = 0; UPDATE orders SET amount = amount * 2 WHERE cust % 3 = 0; \
             DELETE FROM customers WHERE id = 7; INSERT INTO customers VALUES (77, 'r2'); \
             INSERT INTO orders VALUES (1003, 77, 60), (1004, 77, 60)",
        ),
        (
            "duplicates without a key",
            "INSERT INTO events SELECT cust, v FROM events WHERE cust < 5; DELETE FROM events WHERE cust = 6",
        ),
        ("a group emptying", "DELETE FROM orders WHERE cust = 3; DELETE FROM customers WHERE id = 12"),
    ];
    for (what, dml) in rounds {
        db.exec(dml);
        check_all(&mut db, what);
    }
    // Several changes of one subquery's value between refreshes, then a refresh with none.
    db.exec(
        "UPDATE orders SET amount = 0 WHERE id < 50; UPDATE orders SET amount = 22 WHERE id < 25",
    );
    check_all(&mut db, "two updates of one row");
    check_all(&mut db, "an empty window");
}

#[test]
fn nested_shapes_stay_exact_with_sources_on_the_wal() {
    let mut db = TestDb::new("nested_wal");
    setup(&mut db);
    db.exec("ALTER TABLE events ADD COLUMN id serial PRIMARY KEY");
    create_all(&mut db);
    for t in ["public.orders", "public.customers", "public.events"] {
        db.wait_for_capture(t, "WAL");
    }
    let mut other = db.connect();
    for round in 0..3 {
        other
            .batch_execute(&format!(
                "UPDATE orders SET amount = amount + {round} + 1 WHERE id % 7 = {round}; \
                 UPDATE orders SET cust = (cust % 37) + 1 WHERE id % 13 = {round}; \
                 INSERT INTO orders SELECT 2000 + 10 * {round} + g, g, g FROM generate_series(1, 5) g; \
                 UPDATE customers SET region = 'r' || ((id + {round}) % 4) WHERE id % 5 = {round}; \
                 INSERT INTO events (cust, v) VALUES ({round}, 1), ({round}, 1)"
            ))
            .unwrap();
        check_all(&mut db, &format!("WAL round {round}"));
    }
}

#[test]
fn internal_stream_tables_belong_to_their_stream_table() {
    let mut db = TestDb::new("nested_lifecycle");
    setup(&mut db);
    let (name, q) = SHAPES[0];
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    assert_eq!(internal(&mut db), 1);
    let child: String = db.value(
        "SELECT pgt_relid::regclass::text FROM pgtrickle.pgt_stream_tables WHERE parent_pgt_id IS NOT NULL",
    );
    assert!(child.starts_with("pgtrickle_changes.sub_"), "{child}");
    // The API refuses to touch it on its own, naming its stream table.
    for call in [
        format!("SELECT pgtrickle.refresh_stream_table('{child}')"),
        format!("SELECT pgtrickle.alter_stream_table('{child}', schedule => '5s')"),
        format!("SELECT pgtrickle.drop_stream_table('{child}')"),
        format!("SELECT pgtrickle.create_stream_table('reads_child', 'SELECT n FROM {child}')"),
    ] {
        assert_eq!(db.error_code(&call), "42809", "{call}");
    }
    assert!(db
        .error_message(&format!("SELECT pgtrickle.refresh_stream_table('{child}')"))
        .contains("internal stream table of stream table public.agg_over_agg"));
    // Dropping it alone is refused by PostgreSQL (it belongs to the storage).
    assert_eq!(db.error_code(&format!("DROP TABLE {child}")), "2BP01");

    // Renamed: still maintained exactly.
    db.exec(&format!("ALTER TABLE {name} RENAME TO renamed"));
    db.exec("UPDATE orders SET cust = 2 WHERE id < 30");
    db.exec("SELECT pgtrickle.refresh_stream_table('renamed')");
    assert_eq!(db.oracle("renamed", q), (0, 0));
    assert_eq!(internal(&mut db), 1);

    // FULL needs none; back to DIFFERENTIAL makes them again.
    db.exec("SELECT pgtrickle.alter_stream_table('renamed', refresh_mode => 'FULL')");
    assert_eq!(internal(&mut db), 0);
    db.exec("SELECT pgtrickle.alter_stream_table('renamed', refresh_mode => 'DIFFERENTIAL')");
    assert_eq!(internal(&mut db), 1);
    db.exec("DELETE FROM orders WHERE id < 10");
    db.exec("SELECT pgtrickle.refresh_stream_table('renamed')");
    assert_eq!(db.oracle("renamed", q), (0, 0));

    // A new query that needs other internal tables replaces them; one that needs none drops them.
    let (_, q2) = SHAPES[3];
    db.exec(&format!(
        "SELECT pgtrickle.create_or_replace_stream_table('renamed', $q${q2}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    assert_eq!(internal(&mut db), 2);
    db.exec("UPDATE orders SET amount = 1 WHERE id % 9 = 0");
    db.exec("SELECT pgtrickle.refresh_stream_table('renamed')");
    assert_eq!(db.oracle("renamed", q2), (0, 0));
    db.exec("SELECT pgtrickle.create_or_replace_stream_table('renamed', 'SELECT cust, count(*) AS n FROM orders GROUP BY cust')");
    assert_eq!(internal(&mut db), 0);

    // DROP TABLE of a stream table with internal tables takes them along.
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('again', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    assert_eq!(internal(&mut db), 1);
    db.exec("DROP TABLE again; DROP TABLE renamed");
    db.assert_no_leftovers(&["again", "renamed"]);
}

#[test]
fn a_rewrite_that_would_not_be_exact_falls_back_and_leaves_nothing() {
    let mut db = TestDb::new("nested_fallback");
    setup(&mut db);
    // count(*) over no rows is 0, not NULL: a lookup of the grouped internal table would read
    // NULL for a customer without orders, so the rewrite is refused.
    let q =
        "SELECT c.id FROM customers c WHERE 3 > (SELECT count(*) FROM orders o JOIN customers c2 \
             ON c2.id = o.cust WHERE o.cust = c.id)";
    let code = db.error_code(&format!(
        "SELECT pgtrickle.create_stream_table('counted', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    assert_eq!(code, "0A000");
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_stream_tables"),
        0
    );
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('counted', $q${q}$q$)"
    ));
    assert_eq!(internal(&mut db), 0);
    let mode: String = db.value("SELECT effective_mode FROM pgtrickle.pgt_stream_tables");
    assert_eq!(mode, "FULL");
    assert_eq!(db.oracle("counted", q), (0, 0));
    assert_eq!(
        db.value::<i64>(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace AND relname LIKE 'sub\\_%'"
        ),
        0
    );
}

#[test]
fn a_changed_view_plans_its_stream_tables_again() {
    let mut db = TestDb::new("nested_views");
    setup(&mut db);
    let (name, q) = SHAPES[5];
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    let views: i64 = db.value(
        "SELECT cardinality(inlined_views)::int8 FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = 'views'::regclass",
    );
    assert_eq!(views, 2);
    db.exec("CREATE OR REPLACE VIEW cust_totals AS SELECT cust, sum(amount) + 100 AS total FROM orders GROUP BY cust");
    assert_eq!(db.oracle(name, q), (0, 0), "right after the view changed");
    db.exec("UPDATE orders SET amount = 50 WHERE id % 4 = 0");
    db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
    assert_eq!(db.oracle(name, q), (0, 0));
    db.exec("CREATE OR REPLACE VIEW big_totals AS SELECT * FROM cust_totals WHERE total > 300");
    db.exec("DELETE FROM orders WHERE id % 5 = 0");
    db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
    assert_eq!(db.oracle(name, q), (0, 0));
    // A view it does not read changes nothing.
    db.exec("CREATE VIEW unrelated AS SELECT 1 AS one");
    db.exec("CREATE OR REPLACE VIEW unrelated AS SELECT 2 AS one");
}

#[test]
fn the_scheduler_refreshes_internal_stream_tables_with_their_stream_table() {
    let mut db = TestDb::with_scheduler("nested_scheduler");
    setup(&mut db);
    for (name, q) in SHAPES.iter().take(3) {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, schedule => '1s', refresh_mode => 'DIFFERENTIAL')"
        ));
    }
    db.exec("UPDATE orders SET cust = cust % 5 + 1, amount = amount + 3 WHERE id % 3 = 0");
    let pairs: Vec<(&str, &str)> = SHAPES.iter().take(3).map(|(n, q)| (*n, *q)).collect();
    db.until_exact(&pairs, Duration::from_secs(30), "scheduled refreshes");
    // Internal stream tables are refreshed by their parents only.
    let own: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) \
          WHERE s.parent_pgt_id IS NOT NULL AND h.initiated_by NOT IN ('SCHEDULER', 'CREATE')",
    );
    assert_eq!(own, 0);
}

#[test]
fn drop_extension_takes_internal_stream_tables_along() {
    let mut db = TestDb::new("nested_drop_extension");
    setup(&mut db);
    for (name, q) in SHAPES.iter().take(2) {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        ));
    }
    db.exec("DROP EXTENSION pg_trickle CASCADE");
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgtrickle%'"),
        0
    );
    assert_eq!(
        db.value::<i64>(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('orders'::regclass, 'customers'::regclass)"
        ),
        0
    );
    db.exec("INSERT INTO orders VALUES (5000, 1, 1)");
}
