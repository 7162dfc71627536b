//! Tier 3: change capture and the refresh frontier under concurrent transactions.

use pg_trickle_tests::TestDb;

fn buffer_rows(db: &mut TestDb) -> i64 {
    let buf: String = db.value(
        "SELECT 'pgtrickle_changes.' || buffer_table FROM pgtrickle.pgt_sources WHERE source_relid = 'src'::regclass",
    );
    db.value(&format!("SELECT count(*) FROM {buf}"))
}

/// Four writers commit inserts, group-moving updates and deletes on `src (id, g, v)` (never
/// touching id 1) while `refresh` runs in a loop on another connection; returns how many
/// refresh rounds ran.
fn write_while_refreshing(db: &TestDb, refresh: &str) -> usize {
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut c = db.connect();
            std::thread::spawn(move || {
                for i in 0..150 {
                    let id = 1000 + w * 1000 + i;
                    c.batch_execute(&format!(
                        "BEGIN; INSERT INTO src VALUES ({id}, {i} % 7, {i}); UPDATE src SET g = (g + 1) % 7, v = v + 1 WHERE id = {}; \
                         DELETE FROM src WHERE id = {}; COMMIT;",
                        2 + (i * 7 + w) % 190,
                        1000 + w * 1000 + i / 2
                    ))
                    .unwrap();
                }
            })
        })
        .collect();
    let mut refresher = db.connect();
    let mut rounds = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        refresher.batch_execute(refresh).unwrap();
        rounds += 1;
    }
    for w in writers {
        w.join().unwrap();
    }
    rounds
}

#[test]
fn a_transaction_in_flight_across_a_refresh_is_not_trimmed_away() {
    let mut db = TestDb::new("in_flight");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, v int);
         SELECT pgtrickle.create_stream_table('s', 'SELECT id, v FROM src', refresh_mode => 'FULL');",
    );
    let mut writer = db.connect();
    writer
        .batch_execute("BEGIN; INSERT INTO src VALUES (1, 1);")
        .unwrap();
    db.exec("INSERT INTO src VALUES (2, 2)");
    db.exec("SELECT pgtrickle.refresh_stream_table('s')");
    // The committed change was consumed and trimmed; the in-flight one is still buffered.
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(
        buffer_rows(&mut db),
        1,
        "the change of the transaction in flight must survive the refresh"
    );
    assert_eq!(
        db.oracle("s", "SELECT id, v FROM src"),
        (1, 0),
        "not visible to the last refresh yet"
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('s')");
    assert_eq!(db.oracle("s", "SELECT id, v FROM src"), (0, 0));
    assert_eq!(buffer_rows(&mut db), 0);
}

#[test]
fn buffers_are_shared_and_trimmed_only_past_every_consumer() {
    let mut db = TestDb::new("shared_buffer");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, v int);
         SELECT pgtrickle.create_stream_table('a', 'SELECT id FROM src', refresh_mode => 'DIFFERENTIAL');
         SELECT pgtrickle.create_stream_table('b', 'SELECT count(*) AS n FROM src', refresh_mode => 'DIFFERENTIAL');
         SELECT pgtrickle.create_stream_table('c', 'SELECT v FROM src', refresh_mode => 'FULL');
         INSERT INTO src SELECT i, i FROM generate_series(1, 5) i;",
    );
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_sources"),
        1
    );
    assert_eq!(buffer_rows(&mut db), 5);
    db.exec("SELECT pgtrickle.refresh_stream_table('a')");
    assert_eq!(buffer_rows(&mut db), 5, "b has not consumed them yet");
    // A FULL stream table reads no buffer: it neither needs nor holds back its rows.
    db.exec("SELECT pgtrickle.refresh_stream_table('c')");
    assert_eq!(buffer_rows(&mut db), 5);
    db.exec("SELECT pgtrickle.refresh_stream_table('b')");
    assert_eq!(buffer_rows(&mut db), 0);
    for st in ["a", "b", "c"] {
        assert_eq!(
            db.value::<String>(&format!(
                "SELECT missing || '/' || extra FROM pgtrickle.verify_stream_table('{st}')"
            )),
            "0/0"
        );
    }
    // With only FULL stream tables left, every refresh empties the buffer.
    db.exec("SELECT pgtrickle.drop_stream_table('a'); SELECT pgtrickle.drop_stream_table('b'); INSERT INTO src VALUES (6, 6)");
    assert_eq!(buffer_rows(&mut db), 1);
    db.exec("SELECT pgtrickle.refresh_stream_table('c')");
    assert_eq!(buffer_rows(&mut db), 0);
}

#[test]
fn capture_is_exact_for_awkward_types() {
    let mut db = TestDb::new("types");
    db.exec(
        "CREATE DOMAIN posint AS int NOT NULL CHECK (VALUE > 0);
         CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE src (id posint PRIMARY KEY, c char(1), vc varchar(3), n numeric(6,3), ts timestamptz,
                           j jsonb, js json, b bytea, arr int[], m mood, t text, f float8);
         SELECT pgtrickle.create_stream_table('s', 'SELECT * FROM src', refresh_mode => 'FULL');
         INSERT INTO src VALUES (1, 'x', 'abc', 1.5, '2026-01-01 00:00+00', '{\"a\": [1, 2]}', '{\"b\" : 1}', '\\x00ff',
                                 '{1,NULL,3}', 'ok', E'line\\nwith \"quotes\" and ''ticks''', 'NaN'),
                                (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
         UPDATE src SET c = 'y', vc = 'xyz', n = -0.001 WHERE id = 1;
         DELETE FROM src WHERE id = 2;",
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('s')");
    assert_eq!(db.oracle("s", "SELECT * FROM src"), (0, 0));
    let buf_types: String = db.value(
        "SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute
          WHERE attrelid = (SELECT ('pgtrickle_changes.' || buffer_table)::regclass FROM pgtrickle.pgt_sources)
            AND attname LIKE 'new_%'",
    );
    assert_eq!(
        buf_types,
        "integer,character(1),character varying(3),numeric(6,3),timestamp with time zone,jsonb,json,bytea,integer[],mood,text,double precision"
    );
}

#[test]
fn concurrent_writers_and_refreshes_end_exact() {
    let mut db = TestDb::new("concurrent");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int, v int);
         INSERT INTO src SELECT i, i % 7, i FROM generate_series(1, 200) i;
         SELECT pgtrickle.create_stream_table('agg', 'SELECT g, count(*) AS n, sum(v) AS s FROM src GROUP BY g', refresh_mode => 'FULL');",
    );
    write_while_refreshing(&db, "SELECT pgtrickle.refresh_stream_table('agg')");
    db.exec("SELECT pgtrickle.refresh_stream_table('agg')");
    assert_eq!(
        db.oracle(
            "agg",
            "SELECT g, count(*) AS n, sum(v) AS s FROM src GROUP BY g"
        ),
        (0, 0)
    );
    // The buffer empties. (Once `src` is captured from the WAL, the consumer may still write
    // changes of writers' transactions that committed before this FULL refresh, which reads no
    // buffer and so does not wait for them: the next refresh trims those.)
    let start = std::time::Instant::now();
    while buffer_rows(&mut db) != 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "buffer not trimmed: {} rows",
            buffer_rows(&mut db)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        db.exec("SELECT pgtrickle.refresh_stream_table('agg')");
    }
}

#[test]
fn differential_refreshes_under_concurrent_writers_end_exact() {
    let mut db = TestDb::new("concurrent_diff");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int, v int);
         INSERT INTO src SELECT i, i % 7, i FROM generate_series(1, 200) i;
         SELECT pgtrickle.create_stream_table('agg', 'SELECT g, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi FROM src GROUP BY g', refresh_mode => 'DIFFERENTIAL');
         SELECT pgtrickle.create_stream_table('rows_st', 'SELECT id, g, v * 2 AS v2 FROM src WHERE v % 3 <> 0', refresh_mode => 'DIFFERENTIAL');",
    );
    // A transaction that starts before the refreshes and commits after them.
    let mut early = db.connect();
    early
        .batch_execute(
            "BEGIN; INSERT INTO src VALUES (99999, 1, 1); UPDATE src SET g = 6 WHERE id = 1;",
        )
        .unwrap();
    let refreshes = write_while_refreshing(
        &db,
        "SELECT pgtrickle.refresh_stream_table('agg'); SELECT pgtrickle.refresh_stream_table('rows_st')",
    );
    early.batch_execute("COMMIT").unwrap();
    db.exec("SELECT pgtrickle.refresh_stream_table('agg'); SELECT pgtrickle.refresh_stream_table('rows_st')");
    assert!(refreshes > 3, "the refresh loop ran {refreshes} times");
    assert_eq!(
        db.oracle(
            "agg",
            "SELECT g, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi FROM src GROUP BY g"
        ),
        (0, 0)
    );
    assert_eq!(
        db.oracle(
            "rows_st",
            "SELECT id, g, v * 2 AS v2 FROM src WHERE v % 3 <> 0"
        ),
        (0, 0)
    );
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE action = 'FULL' AND initiated_by = 'MANUAL'"),
        0,
        "every refresh after the first was differential"
    );
    assert_eq!(buffer_rows(&mut db), 0);
}

#[test]
fn changes_made_after_a_refresh_in_the_same_transaction_are_not_lost() {
    let mut db = TestDb::new("same_xact");
    db.exec(
        "CREATE TABLE src (id int PRIMARY KEY, g int);
         INSERT INTO src VALUES (1, 1), (2, 2);
         SELECT pgtrickle.create_stream_table('agg', 'SELECT g, count(*) AS n FROM src GROUP BY g', refresh_mode => 'DIFFERENTIAL');",
    );
    db.exec(
        "BEGIN;
         INSERT INTO src VALUES (3, 1);
         SELECT pgtrickle.refresh_stream_table('agg');
         INSERT INTO src VALUES (4, 1);
         UPDATE src SET g = 2 WHERE id = 1;
         COMMIT;",
    );
    // Group 2 gained id 1 after the refresh: stale until the next one.
    assert_eq!(
        db.oracle("agg", "SELECT g, count(*) AS n FROM src GROUP BY g"),
        (1, 1),
        "not refreshed since the last writes"
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('agg')");
    assert_eq!(
        db.oracle("agg", "SELECT g, count(*) AS n FROM src GROUP BY g"),
        (0, 0)
    );
    db.exec("SELECT pgtrickle.refresh_stream_table('agg')");
    assert_eq!(
        db.oracle("agg", "SELECT g, count(*) AS n FROM src GROUP BY g"),
        (0, 0),
        "nothing applied twice"
    );
}
