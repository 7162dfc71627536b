//! Tier 3: TopK stream tables (`ORDER BY ... LIMIT n [OFFSET m]`): what a refresh writes, the
//! internal table's lifecycle, refused and fallen-back forms, and TopK next to the rest of the
//! product (a stream table reading one, IMMEDIATE, rename, redefinition). Exactness over random
//! DML is in the oracle (`oracle.rs`, its TopK shapes) and TPC-H (`tpch.rs`).

use pg_trickle_tests::TestDb;

const TOP: &str = "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY total DESC, region LIMIT 3";

fn setup(db: &mut TestDb) {
    db.exec(
        "CREATE TABLE sales (id int PRIMARY KEY, region text, amount int);
         INSERT INTO sales SELECT g, 'r' || (g % 20), g % 97 FROM generate_series(1, 2000) g;",
    );
}

fn internal_tables(db: &mut TestDb) -> i64 {
    db.value(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace \
          AND relname LIKE 'topk\\_%' AND relkind = 'r'",
    )
}

/// The last refresh of `st`: action and rows inserted/updated/deleted.
fn last_refresh(db: &mut TestDb, st: &str) -> String {
    db.value(&format!(
        "SELECT h.action || ' ' || h.rows_inserted || '/' || h.rows_updated || '/' || h.rows_deleted \
           FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) \
          WHERE s.pgt_relid = '{st}'::regclass ORDER BY h.refresh_id DESC LIMIT 1"
    ))
}

#[test]
fn a_refresh_writes_only_rows_that_enter_or_leave_the_top() {
    let mut db = TestDb::new("topk_writes");
    setup(&mut db);
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('top', $q${TOP}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    assert_eq!(db.value::<i64>("SELECT count(*) FROM top"), 3);
    assert_eq!(internal_tables(&mut db), 1);
    let explain: String = db.value("SELECT pgtrickle.explain_stream_table('top')");
    assert!(
        explain.contains("TopK: ORDER BY \"total\" DESC, \"region\" LIMIT 3"),
        "{explain}"
    );
    assert!(
        explain.contains("refresh strategy: DIFFERENTIAL"),
        "{explain}"
    );

    // A change below the boundary: the internal table changes, the stored rows do not.
    db.exec("UPDATE sales SET amount = amount + 1 WHERE id = 5");
    db.exec("SELECT pgtrickle.refresh_stream_table('top')");
    assert_eq!(last_refresh(&mut db, "top"), "DIFFERENTIAL 0/0/0");
    assert_eq!(db.oracle("top", TOP), (0, 0));

    // A group jumps to first place: one row enters, the old third leaves.
    db.exec("UPDATE sales SET amount = 5000 WHERE id = 7");
    db.exec("SELECT pgtrickle.refresh_stream_table('top')");
    assert_eq!(last_refresh(&mut db, "top"), "DIFFERENTIAL 1/0/1");
    assert_eq!(db.oracle("top", TOP), (0, 0));

    // The first group's value changes but it stays first: one row updated in place.
    db.exec("UPDATE sales SET amount = 6000 WHERE id = 7");
    db.exec("SELECT pgtrickle.refresh_stream_table('top')");
    assert_eq!(db.oracle("top", TOP), (0, 0));
    assert_eq!(
        db.value::<i64>("SELECT total FROM top WHERE region = 'r7'"),
        db.value::<i64>("SELECT sum(amount) FROM sales WHERE region = 'r7'")
    );

    // Every row leaves the top at once, then a filtered-out change: nothing to write.
    db.exec("UPDATE sales SET amount = 0 WHERE region IN ('r7', 'r0', 'r19', 'r18')");
    db.exec("SELECT pgtrickle.refresh_stream_table('top')");
    assert_eq!(db.oracle("top", TOP), (0, 0));
    db.exec("INSERT INTO sales VALUES (5000, 'r0', 0); DELETE FROM sales WHERE id = 5000");
    db.exec("SELECT pgtrickle.refresh_stream_table('top')");
    assert_eq!(db.oracle("top", TOP), (0, 0));

    // Fewer groups than the limit, then none, then back.
    db.exec("DELETE FROM sales WHERE region <> 'r1'");
    db.exec("SELECT pgtrickle.refresh_stream_table('top')");
    assert_eq!(db.value::<i64>("SELECT count(*) FROM top"), 1);
    db.exec("DELETE FROM sales");
    db.exec("SELECT pgtrickle.refresh_stream_table('top')");
    assert_eq!(db.value::<i64>("SELECT count(*) FROM top"), 0);
    db.exec("INSERT INTO sales SELECT g, 'r' || (g % 5), g FROM generate_series(1, 50) g");
    db.exec("SELECT pgtrickle.refresh_stream_table('top')");
    assert_eq!(db.oracle("top", TOP), (0, 0));
    let actions: String = db.value(
        "SELECT string_agg(DISTINCT h.action, ',') FROM pgtrickle.pgt_refresh_history h \
          WHERE h.initiated_by = 'MANUAL'",
    );
    assert_eq!(actions, "DIFFERENTIAL");
}

#[test]
fn internal_table_lives_and_dies_with_the_stream_table() {
    let mut db = TestDb::new("topk_lifecycle");
    setup(&mut db);
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('top', $q${TOP}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    let internal: String = db.value(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace AND relname LIKE 'topk\\_%' AND relkind = 'r'",
    );
    // Dropping it alone is refused (it belongs to the stream table).
    let e = db.error_message(&format!("DROP TABLE pgtrickle_changes.{internal}"));
    assert!(e.contains("requires it"), "{e}");

    // Renamed (table and schema): refreshes still find both tables.
    db.exec(
        "CREATE SCHEMA other; ALTER TABLE top RENAME TO best; ALTER TABLE best SET SCHEMA other",
    );
    db.exec("UPDATE sales SET amount = 9000 WHERE id = 11");
    db.exec("SELECT pgtrickle.refresh_stream_table('other.best')");
    assert_eq!(db.oracle("other.best", TOP), (0, 0));

    // To FULL and back: the internal table goes and comes back.
    db.exec("SELECT pgtrickle.alter_stream_table('other.best', refresh_mode => 'FULL')");
    assert_eq!(internal_tables(&mut db), 0);
    db.exec("UPDATE sales SET amount = 1 WHERE id = 11");
    db.exec("SELECT pgtrickle.refresh_stream_table('other.best')");
    assert_eq!(db.oracle("other.best", TOP), (0, 0));
    db.exec("SELECT pgtrickle.alter_stream_table('other.best', refresh_mode => 'DIFFERENTIAL')");
    assert_eq!(internal_tables(&mut db), 1);
    assert_eq!(db.oracle("other.best", TOP), (0, 0));

    // A new query with other keys: a new internal table, the old one gone.
    let q2 = "SELECT id, amount FROM sales ORDER BY amount * 2 DESC, id LIMIT 4 OFFSET 1";
    db.exec(&format!(
        "SELECT pgtrickle.create_or_replace_stream_table('other.best', $q${q2}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    assert_eq!(internal_tables(&mut db), 1);
    db.exec("UPDATE sales SET amount = 500 WHERE id IN (3, 4)");
    db.exec("SELECT pgtrickle.refresh_stream_table('other.best')");
    assert_eq!(db.oracle("other.best", q2), (0, 0));

    // DROP TABLE of the stream table takes the internal table along; so does drop_stream_table.
    db.exec("DROP TABLE other.best");
    assert_eq!(internal_tables(&mut db), 0);
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('top', $q${TOP}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    db.exec("SELECT pgtrickle.drop_stream_table('top')");
    db.assert_no_leftovers(&["top", "best"]);
}

#[test]
fn refused_forms_name_the_construct_and_auto_falls_back() {
    let mut db = TestDb::new("topk_refused");
    setup(&mut db);
    for (q, why) in [
        (
            "SELECT id FROM sales LIMIT 3",
            "LIMIT/OFFSET without ORDER BY",
        ),
        (
            "SELECT id FROM sales ORDER BY id LIMIT (SELECT 2)",
            "a count that is not a constant",
        ),
    ] {
        let create = format!(
            "SELECT pgtrickle.create_stream_table('r', $q${q}$q$, refresh_mode => 'DIFFERENTIAL')"
        );
        assert_eq!(db.error_code(&create), "0A000", "{q}");
        let e = db.error_message(&create);
        assert!(e.contains(why), "{q}: {e}");
        assert_eq!(internal_tables(&mut db), 0);
        assert_eq!(
            db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_stream_tables"),
            0
        );
    }
    // AUTO: FULL, the reason recorded, exact.
    let q = "SELECT id FROM sales ORDER BY id LIMIT (SELECT 2)";
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('r', $q${q}$q$)"
    ));
    let reason: String = db.value(
        "SELECT plan_reason FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = 'r'::regclass",
    );
    assert!(reason.contains("not a constant"), "{reason}");
    db.exec("DELETE FROM sales WHERE id = 1; SELECT pgtrickle.refresh_stream_table('r')");
    assert_eq!(db.oracle("r", q), (0, 0));
    // ORDER BY without LIMIT is accepted (the order is not stored; a NOTICE says so).
    db.exec("SELECT pgtrickle.create_stream_table('o', 'SELECT id FROM sales ORDER BY id', refresh_mode => 'DIFFERENTIAL')");
    assert_eq!(internal_tables(&mut db), 0);
}

#[test]
fn topk_feeds_a_stream_table_and_runs_immediate() {
    let mut db = TestDb::new("topk_chain");
    setup(&mut db);
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('top', $q${TOP}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    let down = "SELECT count(*) AS n, sum(total) AS s FROM top";
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('down', $q${down}$q$, refresh_mode => 'DIFFERENTIAL')"
    ));
    let imm =
        "SELECT id, amount FROM sales WHERE amount > 90 ORDER BY amount DESC, id DESC LIMIT 4";
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('imm', $q${imm}$q$, refresh_mode => 'IMMEDIATE')"
    ));
    for (i, dml) in [
        "UPDATE sales SET amount = 4000 WHERE id = 13",
        "DELETE FROM sales WHERE region = 'r13'",
        "INSERT INTO sales VALUES (9001, 'r2', 700), (9002, 'new', 800)",
        "UPDATE sales SET amount = 96 WHERE id BETWEEN 100 AND 110",
        "BEGIN; UPDATE sales SET region = 'r3' WHERE id = 9002; DELETE FROM sales WHERE id = 9001; COMMIT",
    ]
    .iter()
    .enumerate()
    {
        db.exec(dml);
        // IMMEDIATE: exact right after the statement, no refresh call.
        assert_eq!(db.oracle("imm", imm), (0, 0), "step {i}: {dml}");
        db.exec("SELECT pgtrickle.refresh_stream_table('top'); SELECT pgtrickle.refresh_stream_table('down')");
        assert_eq!(db.oracle("top", TOP), (0, 0), "step {i}: {dml}");
        assert_eq!(db.oracle("down", down), (0, 0), "step {i}: {dml}");
    }
    let modes: String = db.value(
        "SELECT string_agg(name || '=' || refresh_mode, ' ' ORDER BY name) FROM pgtrickle.pgt_status()",
    );
    assert_eq!(
        modes,
        "public.down=DIFFERENTIAL public.imm=IMMEDIATE public.top=DIFFERENTIAL"
    );
}

/// A stream table planned by 0.4.0, which refreshed TopK (and joins in a subquery in FROM) FULL:
/// when it is renamed, its refresh SQL is re-rendered, now into a differential plan; the
/// stream table is then redefined (storage migrated, internal table created) and recomputed.
#[test]
fn a_stream_table_planned_full_by_an_older_version_is_migrated_when_renamed() {
    let mut db = TestDb::new("topk_upgrade");
    setup(&mut db);
    let grouped = "SELECT region, count(*) AS n FROM (SELECT s.region, t.id FROM sales s, sales t WHERE t.id = s.id) x GROUP BY region";
    for (name, q) in [("top", TOP), ("grp", grouped)] {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => 'FULL')"
        ));
        // What 0.4.0 stored for it under AUTO: a FULL plan, no internal table, no hidden columns.
        db.exec(&format!(
            "UPDATE pgtrickle.pgt_stream_tables SET refresh_mode = 'AUTO' WHERE pgt_relid = '{name}'::regclass"
        ));
    }
    assert_eq!(internal_tables(&mut db), 0);
    db.exec("ALTER TABLE top RENAME TO top2; ALTER TABLE grp RENAME TO grp2");
    db.exec("UPDATE sales SET amount = 7000 WHERE id = 3; DELETE FROM sales WHERE id = 4");
    for (name, q) in [("top2", TOP), ("grp2", grouped)] {
        db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
        assert_eq!(db.oracle(name, q), (0, 0), "{name}");
        let kind: String = db.value(&format!(
            "SELECT plan_kind FROM pgtrickle.pgt_stream_tables WHERE pgt_relid = '{name}'::regclass"
        ));
        assert_eq!(kind, "GROUPS", "{name}");
    }
    assert_eq!(internal_tables(&mut db), 1);
    db.exec("UPDATE sales SET amount = 1 WHERE id = 3; INSERT INTO sales VALUES (9999, 'zz', 50)");
    for (name, q) in [("top2", TOP), ("grp2", grouped)] {
        db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
        assert_eq!(db.oracle(name, q), (0, 0), "{name}");
        assert!(
            last_refresh(&mut db, name).starts_with("DIFFERENTIAL"),
            "{name}"
        );
    }
}
