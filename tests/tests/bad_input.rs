//! Tier 3: bad input gets a clear error with the right SQLSTATE and leaves nothing behind.

use pg_trickle_tests::TestDb;

fn db(name: &str) -> TestDb {
    let mut db = TestDb::new(name);
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t VALUES (1, 'a'), (2, 'b');
         CREATE VIEW plain_view AS SELECT 1 AS x;",
    );
    db
}

/// Each case: the call, the SQLSTATE it must raise.
const CASES: &[(&str, &str)] = &[
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT * FROM nosuch')", "42P01"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT nosuch FROM t')", "42703"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELEC id FROM t')", "42601"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t; SELECT 1')", "42809"),
    ("SELECT pgtrickle.create_stream_table('s', 'DELETE FROM t')", "42809"),
    ("SELECT pgtrickle.create_stream_table('s', 'INSERT INTO t VALUES (3, ''c'')')", "42809"),
    ("SELECT pgtrickle.create_stream_table('s', 'CREATE TABLE u (a int)')", "42809"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT * INTO u FROM t')", "42809"),
    ("SELECT pgtrickle.create_stream_table('s', 'WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d')", "42809"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t FOR UPDATE')", "42809"),
    ("SELECT pgtrickle.create_stream_table('s', '')", "42809"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t WHERE id = $1')", "42P02"),
    ("SELECT pgtrickle.create_stream_table('t', 'SELECT id FROM t')", "42P07"),
    ("SELECT pgtrickle.create_stream_table('plain_view', 'SELECT id FROM t')", "42P07"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', schedule => '0s')", "22023"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', schedule => '-1m')", "22023"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', schedule => 'abc')", "22023"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', schedule => '61 * * * *')", "22023"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', schedule => '* * * 13 *')", "22023"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', schedule => '* * *')", "22023"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', schedule => NULL)", "22004"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t', refresh_mode => 'fast')", "22023"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id, random() AS r FROM t', refresh_mode => 'DIFFERENTIAL')", "0A000"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT a.id FROM t a JOIN t b USING (id)', refresh_mode => 'DIFFERENTIAL')", "0A000"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id, now() AS ts FROM t', refresh_mode => 'DIFFERENTIAL')", "0A000"),
    // A set-returning function in a subquery's select list multiplies its rows (even unread).
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT x.id FROM (SELECT a.id, generate_series(1, 3) AS g FROM t a, t b WHERE b.id = a.id) x', refresh_mode => 'DIFFERENTIAL')", "0A000"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT x.id FROM (SELECT id, unnest(ARRAY[1, 2]) AS g FROM t) x', refresh_mode => 'DIFFERENTIAL')", "0A000"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t ORDER BY (id, v) LIMIT 2', refresh_mode => 'DIFFERENTIAL')", "0A000"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id, random() AS r FROM t', refresh_mode => 'IMMEDIATE')", "0A000"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id, id FROM t')", "42P17"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT id AS __pgt_row_id FROM t')", "42P17"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT ROW(id, v) AS r FROM t')", "42P17"),
    ("SELECT pgtrickle.create_stream_table('nosuchschema.s', 'SELECT id FROM t')", "3F000"),
    ("SELECT pgtrickle.create_stream_table('a.b.c', 'SELECT id FROM t')", "42602"),
    ("SELECT pgtrickle.create_stream_table(NULL, 'SELECT id FROM t')", "22004"),
    ("SELECT pgtrickle.create_stream_table('s', NULL)", "22004"),
    ("SELECT pgtrickle.create_stream_table('s', 'SELECT relname FROM pg_class')", "0A000"),
    ("SELECT pgtrickle.refresh_stream_table('t')", "42809"),
    ("SELECT pgtrickle.refresh_stream_table('nosuch')", "42P01"),
    ("SELECT pgtrickle.drop_stream_table('t')", "42809"),
    ("SELECT pgtrickle.drop_stream_table('nosuch')", "42P01"),
    ("SELECT pgtrickle.alter_stream_table('t', schedule => '5m')", "42809"),
];

#[test]
fn every_bad_input_is_refused_with_its_sqlstate_and_leaves_nothing() {
    let mut db = db("bad_input");
    for (sql, code) in CASES {
        assert_eq!(&db.error_code(sql), code, "{sql}");
        db.assert_no_leftovers(&["s", "u"]);
    }
    // The source table is untouched.
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass"),
        0
    );
    assert_eq!(db.value::<i64>("SELECT count(*) FROM t"), 2);
}

/// A construct DIFFERENTIAL refuses is named in the message, and where something specific can be
/// said, the HINT says what to write instead.
#[test]
fn a_refused_construct_comes_with_its_hint() {
    let mut db = db("bad_hints");
    db.exec("CREATE TABLE d (id int PRIMARY KEY, t_id int)");
    for (sql, construct, hint) in [
        (
            "SELECT id, random() AS r FROM t",
            "uses a volatile function",
            "compute it when reading the stream table",
        ),
        (
            "SELECT DISTINCT ON (v) id, v FROM t",
            "uses DISTINCT ON",
            "GROUP BY the DISTINCT ON columns",
        ),
        (
            "SELECT t.id, d.id AS d FROM t LEFT JOIN d ON d.t_id > t.id",
            "an outer join condition other than equalities",
            "Write the ON condition as equalities",
        ),
    ] {
        for mode in ["DIFFERENTIAL", "IMMEDIATE"] {
            let msg = db.error_message(&format!(
                "SELECT pgtrickle.create_stream_table('s', $q${sql}$q$, refresh_mode => '{mode}')"
            ));
            assert!(msg.starts_with("0A000"), "{mode} {sql}: {msg}");
            assert!(
                msg.contains(construct) && msg.contains(hint),
                "{mode} {sql}: {msg}"
            );
            db.assert_no_leftovers(&["s"]);
        }
    }
    // A construct without a specific hint keeps the general one.
    let msg = db.error_message(
        "SELECT pgtrickle.create_stream_table('s', 'SELECT id, row_number() OVER () AS n FROM t', refresh_mode => 'DIFFERENTIAL')",
    );
    assert!(msg.contains("see docs/SQL_REFERENCE.md"), "{msg}");
}

#[test]
fn a_temp_table_source_is_refused() {
    let mut db = db("bad_temp");
    // A temp table lives in this session, so it must be made on the same connection.
    db.exec("CREATE TEMP TABLE tmp (a int)");
    assert_eq!(
        db.error_code("SELECT pgtrickle.create_stream_table('s', 'SELECT a FROM tmp')"),
        "0A000"
    );
    assert_eq!(
        db.error_code("SELECT pgtrickle.create_stream_table('s', 'SELECT t.id FROM t JOIN tmp ON tmp.a = t.id')"),
        "0A000"
    );
    db.assert_no_leftovers(&["s"]);
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass"),
        0
    );
}

#[test]
fn a_materialized_view_source_is_refused() {
    let mut db = db("bad_matview");
    db.exec("CREATE MATERIALIZED VIEW mv AS SELECT id FROM t");
    assert_eq!(
        db.error_code("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM mv')"),
        "0A000"
    );
    db.assert_no_leftovers(&["s"]);
}

#[test]
fn bad_alter_and_replace_change_nothing() {
    let mut db = db("bad_alter");
    db.exec("SELECT pgtrickle.create_stream_table('s', 'SELECT id, v FROM t', schedule => '5m', refresh_mode => 'FULL')");
    db.exec("CREATE TABLE nopk (a int)");
    for (sql, code) in [
        ("SELECT pgtrickle.create_or_replace_stream_table('s', 'SELECT a, random() AS r FROM nopk', schedule => '5m', refresh_mode => 'DIFFERENTIAL')", "0A000"),
        (
            "SELECT pgtrickle.alter_stream_table('s', schedule => '0s')",
            "22023",
        ),
        (
            "SELECT pgtrickle.alter_stream_table('s', refresh_mode => 'bogus')",
            "22023",
        ),
        (
            "SELECT pgtrickle.create_or_replace_stream_table('s', 'SELECT a, random() AS r FROM nopk', schedule => '5m', refresh_mode => 'IMMEDIATE')",
            "0A000",
        ),
        (
            "SELECT pgtrickle.create_or_replace_stream_table('s', 'SELECT nosuch FROM t')",
            "42703",
        ),
        (
            "SELECT pgtrickle.create_or_replace_stream_table('t', 'SELECT id FROM t')",
            "42P07",
        ),
    ] {
        assert_eq!(db.error_code(sql), code, "{sql}");
        let (q, sched, mode): (String, String, String) = {
            let r = db
                .client
                .query_one("SELECT defining_query, schedule, refresh_mode FROM pgtrickle.pgt_stream_tables", &[])
                .unwrap();
            (r.get(0), r.get(1), r.get(2))
        };
        assert_eq!(
            (q.as_str(), sched.as_str(), mode.as_str()),
            ("SELECT id, v FROM t", "5m", "FULL"),
            "{sql}"
        );
    }
    // A cycle through create_or_replace is refused with its path.
    db.exec("SELECT pgtrickle.create_stream_table('s2', 'SELECT count(*) AS n FROM s', refresh_mode => 'FULL')");
    let err = db
        .client
        .batch_execute("SELECT pgtrickle.create_or_replace_stream_table('s', 'SELECT n AS id, ''x'' AS v FROM s2', refresh_mode => 'FULL')")
        .unwrap_err();
    let db_err = err.as_db_error().unwrap();
    assert_eq!(db_err.code().code(), "42P17");
    assert!(
        db_err
            .message()
            .contains("public.s -> public.s2 -> public.s"),
        "{}",
        db_err.message()
    );
    // Dropping a stream table that another reads is refused.
    assert_eq!(
        db.error_code("SELECT pgtrickle.drop_stream_table('s')"),
        "2BP01"
    );
    db.exec("SELECT pgtrickle.drop_stream_table('s2'); SELECT pgtrickle.drop_stream_table('s')");
    db.assert_no_leftovers(&["s", "s2"]);
}

/// `pg_trickle.cdc_mode`: a real setting (the guide's `ALTER SYSTEM SET pg_trickle.cdc_mode =
/// 'auto'` names it); 'wal' is refused at create (WAL capture is not built) and leaves nothing;
/// 'trigger' and 'auto' capture with triggers; a bad value is refused by PostgreSQL.
#[test]
fn cdc_mode_is_a_real_setting() {
    let mut db = db("bad_cdc_mode");
    assert_eq!(db.value::<String>("SHOW pg_trickle.cdc_mode"), "auto");
    assert_eq!(
        db.error_code("SET pg_trickle.cdc_mode = 'sometimes'"),
        "22023"
    );
    // 'wal' refuses a source that cannot be captured from the WAL (here: no primary key), naming
    // it, and leaves nothing behind.
    db.exec("CREATE TABLE keyless (id int, v text); SET pg_trickle.cdc_mode = 'wal'");
    assert_eq!(
        db.error_code("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM keyless')"),
        "0A000"
    );
    let message =
        db.error_message("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM keyless')");
    assert!(
        message.contains("keyless") && message.contains("primary key"),
        "{message}"
    );
    db.assert_no_leftovers(&["s"]);
    db.exec("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t')");
    db.exec("SELECT pgtrickle.drop_stream_table('s')");
    // Every source starts on triggers (the move to WAL capture comes after the first refresh).
    for mode in ["trigger", "auto"] {
        db.exec(&format!("SET pg_trickle.cdc_mode = '{mode}'"));
        db.exec("SELECT pgtrickle.create_stream_table('s', 'SELECT id FROM t')");
        let triggers: i64 = db.value(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass AND NOT tgisinternal",
        );
        assert!(triggers > 0, "{mode}: capture by triggers");
        db.exec("SELECT pgtrickle.drop_stream_table('s')");
    }
}
