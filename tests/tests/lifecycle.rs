//! Tier 3: the stream table lifecycle over a client connection: create, refresh, alter,
//! create_or_replace, drop, pgt_status, and the catalog records behind them.

use pg_trickle_tests::TestDb;

#[test]
fn create_populates_and_records_everything() {
    let mut db = TestDb::new("create");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g text, v numeric(10,2));
         INSERT INTO src SELECT i, 'g' || (i % 4), i * 1.5 FROM generate_series(1, 100) i;
         SELECT pgtrickle.create_stream_table(name => 'agg', query => 'SELECT g, count(*) AS n, sum(v) AS s FROM src GROUP BY g', schedule => '30s');",
    );
    assert_eq!(
        db.oracle(
            "agg",
            "SELECT g, count(*) AS n, sum(v) AS s FROM src GROUP BY g"
        ),
        (0, 0)
    );
    // The storage is a real heap table with the query's columns, types and a row identity.
    let cols: String = db.value(
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
           FROM pg_attribute WHERE attrelid = 'public.agg'::regclass AND attnum > 0 AND NOT attisdropped",
    );
    // Visible columns, the row identity, then the aggregate state DIFFERENTIAL maintains.
    assert_eq!(
        cols,
        "g text, n bigint, s numeric, __pgt_row_id bigint, __pgt_count bigint, __pgt_a1 bigint, __pgt_a2 numeric, __pgt_a2_n bigint"
    );
    assert_eq!(
        db.value::<String>("SELECT relkind::text FROM pg_class WHERE oid = 'agg'::regclass"),
        "r"
    );
    // Catalog, capture, dependency, history.
    assert_eq!(
        db.value::<String>("SELECT status || '/' || refresh_mode || '/' || schedule || '/' || name FROM pgtrickle.pgt_status()"),
        "ACTIVE/DIFFERENTIAL/30s/public.agg"
    );
    assert_eq!(
        db.value::<i64>(
            "SELECT count(*) FROM pgtrickle.pgt_sources WHERE source_relid = 'src'::regclass"
        ),
        1
    );
    assert_eq!(db.value::<i64>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'src'::regclass AND tgname LIKE 'pgtrickle%'"), 2);
    assert_eq!(
        db.value::<String>("SELECT initiated_by || ':' || action || ':' || rows_inserted FROM pgtrickle.pgt_refresh_history"),
        "CREATE:FULL:4"
    );
    assert!(db.value::<bool>(
        "SELECT data_timestamp IS NOT NULL AND staleness >= '0' FROM pgtrickle.pgt_status()"
    ));
}

#[test]
fn refresh_is_exact_after_every_kind_of_change() {
    let mut db = TestDb::new("refresh_exact");
    // No primary key, duplicates, NULLs in keys and values.
    db.exec(
        "CREATE TABLE r (k int, v text);
         INSERT INTO r VALUES (1, 'a'), (1, 'a'), (NULL, 'n'), (2, NULL), (2, NULL);
         SELECT pgtrickle.create_stream_table('rows_st', 'SELECT k, v FROM r', refresh_mode => 'FULL');
         SELECT pgtrickle.create_stream_table('agg_st', 'SELECT k, count(*) AS c, max(v) AS m FROM r GROUP BY k', refresh_mode => 'FULL');",
    );
    let rounds = [
        "INSERT INTO r VALUES (1, 'a'), (NULL, NULL)",
        "DELETE FROM r WHERE ctid IN (SELECT ctid FROM r WHERE k = 1 LIMIT 1)",
        "UPDATE r SET k = 3 WHERE k IS NULL",
        "BEGIN; INSERT INTO r VALUES (9, 'tmp'); DELETE FROM r WHERE k = 9; COMMIT",
        "UPDATE r SET v = 'z' WHERE k = 2",
        "TRUNCATE r",
        "INSERT INTO r SELECT i % 5, (i % 3)::text FROM generate_series(1, 50) i",
        "DELETE FROM r",
    ];
    for sql in rounds {
        db.exec(sql);
        db.exec("SELECT pgtrickle.refresh_stream_table('rows_st'); SELECT pgtrickle.refresh_stream_table('agg_st')");
        assert_eq!(
            db.oracle("rows_st", "SELECT k, v FROM r"),
            (0, 0),
            "after {sql}"
        );
        assert_eq!(
            db.oracle(
                "agg_st",
                "SELECT k, count(*) AS c, max(v) AS m FROM r GROUP BY k"
            ),
            (0, 0),
            "after {sql}"
        );
    }
}

#[test]
fn refresh_writes_only_what_changed() {
    let mut db = TestDb::new("refresh_minimal");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int);
         INSERT INTO src SELECT i, i % 10 FROM generate_series(1, 1000) i;
         SELECT pgtrickle.create_stream_table('agg', 'SELECT g, count(*) AS n FROM src GROUP BY g', refresh_mode => 'FULL');
         UPDATE src SET g = 3 WHERE id = 1;
         SELECT pgtrickle.refresh_stream_table('agg');",
    );
    // id 1 moved from group 1 to group 3: two groups changed, eight untouched.
    assert_eq!(
        db.value::<String>("SELECT rows_inserted || '/' || rows_deleted FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1"),
        "2/2"
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('agg')");
    assert_eq!(
        db.value::<String>("SELECT rows_inserted || '/' || rows_deleted FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1"),
        "0/0"
    );
}

#[test]
fn schema_qualified_and_quoted_names() {
    let mut db = TestDb::new("names");
    db.exec(
        "CREATE SCHEMA rep; CREATE TABLE \"Src Table\" (\"Id\" int PRIMARY KEY, \"Val ue\" text);
         INSERT INTO \"Src Table\" VALUES (1, 'x');
         SELECT pgtrickle.create_stream_table('rep.\"My ST\"', 'SELECT \"Id\", \"Val ue\" FROM \"Src Table\"', refresh_mode => 'FULL');",
    );
    assert_eq!(
        db.value::<String>("SELECT name FROM pgtrickle.pgt_status()"),
        "rep.\"My ST\""
    );
    assert_eq!(
        db.value::<String>("SELECT \"Val ue\" FROM rep.\"My ST\""),
        "x"
    );
    db.exec("SET search_path = rep, public; SELECT pgtrickle.refresh_stream_table('\"My ST\"'); RESET search_path;");
    db.exec("SELECT pgtrickle.drop_stream_table('rep.\"My ST\"')");
    db.assert_no_leftovers(&["My ST"]);
}

#[test]
fn initialize_false_leaves_the_table_empty_until_refreshed() {
    let mut db = TestDb::new("no_init");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY); INSERT INTO src VALUES (1), (2);
         SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM src', refresh_mode => 'FULL', initialize => false);",
    );
    assert_eq!(db.value::<i64>("SELECT count(*) FROM s"), 0);
    assert!(!db.value::<bool>("SELECT is_populated FROM pgtrickle.pgt_status()"));
    assert!(db.value::<bool>("SELECT data_timestamp IS NULL FROM pgtrickle.pgt_status()"));
    db.exec("SELECT pgtrickle.refresh_stream_table('s')");
    assert_eq!(db.value::<i64>("SELECT count(*) FROM s"), 2);
    assert!(db.value::<bool>("SELECT is_populated FROM pgtrickle.pgt_status()"));
}

#[test]
fn schedules_are_stored_as_given() {
    let mut db = TestDb::new("schedules");
    db.exec("CREATE TABLE src (id int PRIMARY KEY)");
    for (i, (given, stored)) in [
        ("1s", Some("1s")),
        ("1H30M", Some("1h30m")),
        ("1w", Some("1w")),
        ("*/5 * * * *", Some("*/5 * * * *")),
        ("0 */5 * * * *", Some("0 */5 * * * *")),
        ("@hourly", Some("@hourly")),
        ("calculated", None),
    ]
    .into_iter()
    .enumerate()
    {
        db.exec(&format!(
            "SELECT pgtrickle.create_stream_table('s{i}', 'SELECT id FROM src', schedule => '{given}', refresh_mode => 'FULL')"
        ));
        let s: Option<String> = db.value(&format!(
            "SELECT schedule FROM pgtrickle.pgt_status() WHERE name = 'public.s{i}'"
        ));
        assert_eq!(s.as_deref(), stored, "{given}");
    }
}

#[test]
fn alter_changes_schedule_and_mode() {
    let mut db = TestDb::new("alter");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY);
         SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM src', schedule => '1m', refresh_mode => 'FULL');
         SELECT pgtrickle.alter_stream_table('s', schedule => '10s');",
    );
    assert_eq!(
        db.value::<String>("SELECT schedule || '/' || requested_mode FROM pgtrickle.pgt_status()"),
        "10s/FULL"
    );
    db.exec("SELECT pgtrickle.alter_stream_table('s', refresh_mode => 'auto')");
    assert_eq!(
        db.value::<String>("SELECT schedule || '/' || requested_mode FROM pgtrickle.pgt_status()"),
        "10s/AUTO"
    );
    db.exec("SELECT pgtrickle.alter_stream_table('s', schedule => 'calculated')");
    assert!(db.value::<bool>("SELECT schedule IS NULL FROM pgtrickle.pgt_status()"));
}

#[test]
fn create_or_replace_creates_keeps_and_migrates_in_place() {
    let mut db = TestDb::new("replace");
    db.exec(
        "CREATE TABLE a (id int PRIMARY KEY, v int); INSERT INTO a SELECT i, i FROM generate_series(1, 10) i;
         CREATE TABLE b (id int PRIMARY KEY, w text); INSERT INTO b VALUES (1, 'one');",
    );
    let q1 = "SELECT id, v FROM a";
    db.exec(&format!("SELECT pgtrickle.create_or_replace_stream_table('s', '{q1}', schedule => '1m', refresh_mode => 'FULL')"));
    let oid: u32 = db.value("SELECT 's'::regclass::oid");
    db.exec("GRANT SELECT ON s TO PUBLIC");
    // Identical: a no-op (no refresh recorded).
    db.exec(&format!("SELECT pgtrickle.create_or_replace_stream_table('s', '{q1}', schedule => '1m', refresh_mode => 'FULL')"));
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_refresh_history"),
        1
    );
    // Schedule only.
    db.exec(&format!("SELECT pgtrickle.create_or_replace_stream_table('s', '{q1}', schedule => '5m', refresh_mode => 'FULL')"));
    assert_eq!(
        db.value::<String>("SELECT schedule FROM pgtrickle.pgt_status()"),
        "5m"
    );
    // New query, new columns, new source: same table, same OID, grants kept, contents exact.
    let q2 = "SELECT a.id, a.v * 2 AS v2, b.w FROM a LEFT JOIN b USING (id)";
    db.exec(&format!("SELECT pgtrickle.create_or_replace_stream_table('s', '{q2}', schedule => '5m', refresh_mode => 'FULL')"));
    assert_eq!(db.value::<u32>("SELECT 's'::regclass::oid"), oid);
    assert!(db.value::<bool>("SELECT has_table_privilege('public', 's', 'SELECT')"));
    assert_eq!(db.oracle("s", q2), (0, 0));
    let cols: String = db.value(
        "SELECT string_agg(attname::text, ',' ORDER BY attnum) FROM pg_attribute
          WHERE attrelid = 's'::regclass AND attnum > 0 AND NOT attisdropped",
    );
    assert_eq!(cols, "id,v2,w,__pgt_row_id");
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_sources"),
        2
    );
    // Back to one source: capture on b goes.
    db.exec(&format!("SELECT pgtrickle.create_or_replace_stream_table('s', '{q1}', schedule => '5m', refresh_mode => 'FULL')"));
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_sources"),
        1
    );
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'b'::regclass"),
        0
    );
    assert_eq!(db.oracle("s", q1), (0, 0));
    db.exec("SELECT pgtrickle.drop_stream_table('s')");
    db.assert_no_leftovers(&["s"]);
}

#[test]
fn stream_tables_can_read_stream_tables() {
    let mut db = TestDb::new("chain");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int); INSERT INTO src SELECT i, i % 3 FROM generate_series(1, 30) i;
         SELECT pgtrickle.create_stream_table('l1', 'SELECT g, count(*) AS n FROM src GROUP BY g', refresh_mode => 'FULL');
         SELECT pgtrickle.create_stream_table('l2', 'SELECT sum(n) AS total, count(*) AS groups FROM l1', schedule => 'calculated');
         SELECT pgtrickle.create_stream_table('l3', 'SELECT g, n FROM l1 WHERE n > 5', schedule => 'calculated');",
    );
    assert_eq!(db.value::<String>("SELECT string_agg(DISTINCT source_type, ',' ORDER BY source_type) FROM pgtrickle.pgt_dependencies"), "STREAM_TABLE,TABLE");
    // The stream table source has capture of its own: its refreshes write its changes to its
    // buffer, and the stream tables reading it refresh DIFFERENTIAL over them.
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_sources"),
        2
    );
    assert_eq!(
        db.value::<String>("SELECT string_agg(name || '=' || refresh_mode, ' ' ORDER BY name) FROM pgtrickle.pgt_status()"),
        "public.l1=FULL public.l2=DIFFERENTIAL public.l3=DIFFERENTIAL"
    );
    for round in 0..3 {
        db.exec(&format!(
            "INSERT INTO src VALUES ({}, {round}); DELETE FROM src WHERE id = {}; UPDATE src SET g = 7 WHERE id = {};
             SELECT pgtrickle.refresh_stream_table('l1'); SELECT pgtrickle.refresh_stream_table('l2'); SELECT pgtrickle.refresh_stream_table('l3');",
            100 + round,
            round + 1,
            round + 10
        ));
        assert_eq!(
            db.oracle("l2", "SELECT sum(n) AS total, count(*) AS groups FROM l1"),
            (0, 0)
        );
        assert_eq!(db.oracle("l3", "SELECT g, n FROM l1 WHERE n > 5"), (0, 0));
    }
    assert_eq!(db.value::<String>("SELECT total::text FROM l2"), "30");
    let diffs: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) \
          WHERE st.pgt_relid IN ('l2'::regclass, 'l3'::regclass) AND h.action = 'DIFFERENTIAL'",
    );
    assert_eq!(diffs, 6);
    db.exec("SELECT pgtrickle.drop_stream_table('l3'); SELECT pgtrickle.drop_stream_table('l2'); SELECT pgtrickle.drop_stream_table('l1');");
    db.assert_no_leftovers(&["l1", "l2", "l3"]);
}

#[test]
fn views_are_read_through() {
    let mut db = TestDb::new("views");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, v int); INSERT INTO src VALUES (1, 10), (2, 20);
         CREATE VIEW big AS SELECT id, v FROM src WHERE v > 15;
         SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM big', refresh_mode => 'FULL');",
    );
    // Capture goes on the table under the view.
    assert_eq!(
        db.value::<i64>(
            "SELECT count(*) FROM pgtrickle.pgt_sources WHERE source_relid = 'src'::regclass"
        ),
        1
    );
    db.exec("INSERT INTO src VALUES (3, 30); SELECT pgtrickle.refresh_stream_table('s')");
    assert_eq!(db.oracle("s", "SELECT id FROM big"), (0, 0));
}

#[test]
fn dropping_a_source_is_guarded_and_cascade_cleans_up() {
    let mut db = TestDb::new("drop_source");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY);
         SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM src', refresh_mode => 'FULL');",
    );
    assert_eq!(db.error_code("DROP TABLE src"), "2BP01");
    db.exec("DROP TABLE src CASCADE");
    db.assert_no_leftovers(&["s", "src"]);
}

#[test]
fn dropping_storage_with_plain_ddl_forgets_the_stream_table() {
    let mut db = TestDb::new("drop_storage");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY);
         SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM src', refresh_mode => 'FULL');
         DROP TABLE s;",
    );
    db.assert_no_leftovers(&["s"]);
    // The name can be used again at once, and a later source with the same name starts clean.
    db.exec(
        "DROP TABLE src; CREATE TABLE src (id int PRIMARY KEY, extra text); INSERT INTO src VALUES (1, 'e');
         SELECT pgtrickle.create_stream_table('s', 'SELECT id, extra FROM src', refresh_mode => 'FULL');",
    );
    assert_eq!(db.oracle("s", "SELECT id, extra FROM src"), (0, 0));
}

#[test]
fn drop_extension_removes_everything() {
    let mut db = TestDb::new("drop_extension");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY);
         SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM src', refresh_mode => 'FULL');
         DROP EXTENSION pg_trickle CASCADE;",
    );
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgtrickle%'"),
        0
    );
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'src'::regclass"),
        0
    );
    db.exec("INSERT INTO src VALUES (1)");
}

#[test]
fn auto_picks_differential_where_it_can_and_says_why_not_elsewhere() {
    let mut db = TestDb::new("auto_mode");
    db.exec(
        "CREATE TABLE a (id int PRIMARY KEY, g int, v int); CREATE TABLE b (id int PRIMARY KEY, w int);
         INSERT INTO a SELECT i, i % 5, i FROM generate_series(1, 100) i; INSERT INTO b VALUES (1, 1);
         ANALYZE a;
         SELECT pgtrickle.create_stream_table('agg', 'SELECT g, sum(v) AS s FROM a GROUP BY g');
         SELECT pgtrickle.create_stream_table('joined', 'SELECT a.id, b.w FROM a RIGHT JOIN b ON b.id > a.id');",
    );
    assert_eq!(
        db.value::<String>("SELECT string_agg(name || '=' || refresh_mode, ' ' ORDER BY name) FROM pgtrickle.pgt_status()"),
        "public.agg=DIFFERENTIAL public.joined=FULL"
    );
    let explain: String = db.value("SELECT pgtrickle.explain_stream_table('joined')");
    assert!(
        explain.contains(
            "not differential because the query uses an outer join condition other than equalities"
        ),
        "{explain}"
    );
    let explain: String = db.value("SELECT pgtrickle.explain_stream_table('agg')");
    assert!(
        explain.contains("sum(v) (algebraic: running sum and non-NULL count)"),
        "{explain}"
    );
    // The delta statement's plan as a tree: the change window it reads, the stored groups it
    // joins, the rescans' lookups.
    for part in [
        "Delta plan (the delta statement's relations and lookups):",
        "Change window of public.a AS \"a\"",
        "Left join on __pgt_t.\"__pgt_row_id\" = __pgt_dg.\"__pgt_row_id\"",
        "Lookup (in) by __pgt_rescan AND \"__pgt_k1\" IS NOT NULL",
    ] {
        assert!(explain.contains(part), "{part} in {explain}");
    }
    // A small change set is applied differentially; one touching most rows is recomputed.
    db.exec("UPDATE a SET v = v + 1 WHERE id <= 3; SELECT pgtrickle.refresh_stream_table('agg')");
    db.exec("UPDATE a SET v = v + 1 WHERE id <= 80; SELECT pgtrickle.refresh_stream_table('agg')");
    let history: String = db.value(
        "SELECT string_agg(action || ':' || coalesce(reason, '-'), ' | ' ORDER BY refresh_id) FROM pgtrickle.pgt_refresh_history h \
           JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) WHERE st.pgt_relid = 'agg'::regclass",
    );
    assert_eq!(
        history,
        "FULL:- | DIFFERENTIAL:- | FULL:80 changes exceed 25% of the sources' ~100 rows"
    );
    assert_eq!(
        db.oracle("agg", "SELECT g, sum(v) AS s FROM a GROUP BY g"),
        (0, 0)
    );
    // TRUNCATE in the window makes the next refresh FULL.
    db.exec(
        "TRUNCATE a; INSERT INTO a VALUES (1, 1, 1); SELECT pgtrickle.refresh_stream_table('agg')",
    );
    assert_eq!(
        db.value::<String>("SELECT action || ':' || reason FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1"),
        "FULL:TRUNCATE of a source"
    );
    assert_eq!(
        db.oracle("agg", "SELECT g, sum(v) AS s FROM a GROUP BY g"),
        (0, 0)
    );
    // Switching modes re-plans in place.
    db.exec("SELECT pgtrickle.alter_stream_table('agg', refresh_mode => 'FULL')");
    assert_eq!(
        db.value::<String>(
            "SELECT refresh_mode FROM pgtrickle.pgt_status() WHERE name = 'public.agg'"
        ),
        "FULL"
    );
    db.exec("SELECT pgtrickle.alter_stream_table('agg', refresh_mode => 'DIFFERENTIAL'); INSERT INTO a VALUES (2, 2, 2); SELECT pgtrickle.refresh_stream_table('agg')");
    assert_eq!(
        db.oracle("agg", "SELECT g, sum(v) AS s FROM a GROUP BY g"),
        (0, 0)
    );
    assert_eq!(
        db.error_code(
            "SELECT pgtrickle.alter_stream_table('joined', refresh_mode => 'DIFFERENTIAL')"
        ),
        "0A000"
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('joined')");
    let (missing, extra): (i64, i64) = {
        let r = db
            .client
            .query_one("SELECT * FROM pgtrickle.verify_stream_table('joined')", &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((missing, extra), (0, 0));
}

/// AUTO also goes by the stream table's own history: when its last differential refresh took
/// longer than its last full refresh (and 500 ms) and the window is at least half that one's
/// size, it recomputes, saying why; after 10 such refreshes it measures a differential one
/// again. (The slow refresh is written into the history: the test asserts the rule, not a
/// timing.)
#[test]
fn auto_recomputes_when_its_own_history_says_the_delta_costs_more() {
    let mut db = TestDb::new("auto_measured");
    let q = "SELECT g, sum(v) AS s FROM t GROUP BY g";
    db.exec(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, g int, v int);
         INSERT INTO t SELECT i, i % 7, i FROM generate_series(1, 1000) i;
         SELECT pgtrickle.create_stream_table('s', '{q}')"
    ));
    let last = "SELECT action || ':' || coalesce(reason, '-') FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1";
    db.exec("UPDATE t SET v = v + 1 WHERE id = 1");
    db.exec("SELECT pgtrickle.refresh_stream_table('s')");
    assert_eq!(db.value::<String>(last), "DIFFERENTIAL:-");
    // That differential refresh "took" 10 s for its one change.
    db.exec(
        "UPDATE pgtrickle.pgt_refresh_history SET finished_at = started_at + interval '10 s' \
          WHERE refresh_id = (SELECT max(refresh_id) FROM pgtrickle.pgt_refresh_history WHERE action = 'DIFFERENTIAL')",
    );
    for round in 1..=10 {
        db.exec(&format!(
            "UPDATE t SET v = v + {round} WHERE id = {round} + 1"
        ));
        db.exec("SELECT pgtrickle.refresh_stream_table('s')");
        let got: String = db.value(last);
        assert!(
            got.starts_with("FULL:the last differential refresh took 10000 ms for 1 changes, the last full refresh ")
                && got.ends_with(" ms; this window has 1 changes"),
            "round {round}: {got}"
        );
        assert_eq!(db.oracle("s", q), (0, 0));
    }
    // The 11th measures the delta again (a real, fast one), and the next goes by that.
    for _ in 0..2 {
        db.exec("DELETE FROM t WHERE id = (SELECT max(id) FROM t)");
        db.exec("SELECT pgtrickle.refresh_stream_table('s')");
        assert_eq!(db.value::<String>(last), "DIFFERENTIAL:-");
        assert_eq!(db.oracle("s", q), (0, 0));
    }
}

#[test]
fn a_renamed_stream_table_keeps_refreshing() {
    let mut db = TestDb::new("rename");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int); INSERT INTO src VALUES (1, 1), (2, 1);
         SELECT pgtrickle.create_stream_table('agg', 'SELECT g, count(*) AS n FROM src GROUP BY g');
         SELECT pgtrickle.create_stream_table('flat', 'SELECT id, g FROM src', refresh_mode => 'FULL');
         ALTER TABLE agg RENAME TO agg2; CREATE SCHEMA other; ALTER TABLE flat SET SCHEMA other;
         INSERT INTO src VALUES (3, 2);
         SELECT pgtrickle.refresh_stream_table('agg2'); SELECT pgtrickle.refresh_stream_table('other.flat');",
    );
    assert_eq!(
        db.oracle("agg2", "SELECT g, count(*) AS n FROM src GROUP BY g"),
        (0, 0)
    );
    assert_eq!(db.oracle("other.flat", "SELECT id, g FROM src"), (0, 0));
    assert_eq!(
        db.value::<String>(
            "SELECT string_agg(name, ',' ORDER BY name) FROM pgtrickle.pgt_status()"
        ),
        "other.flat,public.agg2"
    );
}

#[test]
fn explain_recommends_indexes_on_join_keys() {
    let mut db = TestDb::new("index_advice");
    db.exec(
        "CREATE TABLE a (id int PRIMARY KEY, g int); CREATE TABLE b (id int PRIMARY KEY, a_id int);
         SELECT pgtrickle.create_stream_table('ab', 'SELECT a.id, b.id AS bid FROM a LEFT JOIN b ON b.a_id = a.id', refresh_mode => 'DIFFERENTIAL');",
    );
    let explain: String = db.value("SELECT pgtrickle.explain_stream_table('ab')");
    assert!(
        explain.contains("public.b (\"a_id\"): NO INDEX")
            && explain.contains("CREATE INDEX ON public.b (\"a_id\")")
            && explain.contains("public.a (\"id\"): indexed"),
        "{explain}"
    );
    db.exec("CREATE INDEX ON b (a_id)");
    let explain: String = db.value("SELECT pgtrickle.explain_stream_table('ab')");
    assert!(
        explain.contains("public.b (\"a_id\"): indexed"),
        "{explain}"
    );
}
