//! Tier 3: WAL change capture. With `pg_trickle.cdc_mode = 'auto'` (the default) on this
//! `wal_level = logical` cluster, a keyed source moves from its row trigger to the WAL consumer
//! after its stream tables' first refresh; these tests check what that hand-over does to the
//! source, that every change reaches the buffers exactly through the output plugin and the
//! consumer, what a refresh refuses, and the fallback when the slot disappears.

use pg_trickle_tests::TestDb;
use std::time::{Duration, Instant};

const TYPED: &str = "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
     CREATE DOMAIN posint AS int CHECK (VALUE > 0);
     CREATE TABLE typed (
        id int PRIMARY KEY, g int, t text, c char(3), n numeric(12,4), f float8, a text[],
        j json, jb jsonb, b bytea, d posint, m mood, ts timestamptz, big text);
     ALTER TABLE typed ALTER COLUMN big SET STORAGE EXTERNAL;
     INSERT INTO typed VALUES
        (1, 1, 'plain', 'ab', 1.5, 0.1, '{x,y}', '{\"k\": 1}', '{\"k\": [1, 2]}', '\\x00ff', 1, 'ok', '2026-01-01 10:00+00', repeat('x', 5000)),
        (2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);";

const TYPED_QUERY: &str =
    "SELECT id, g, t, c, n, f, a, j::text AS j, jb, b, d, m, ts, md5(big) AS big FROM typed";
const TYPED_AGG: &str =
    "SELECT g, count(*) AS rows, sum(n) AS n, max(t) AS t FROM typed GROUP BY g";

#[test]
fn every_type_and_every_kind_of_change_arrives_exactly_through_the_wal() {
    let mut db = TestDb::new("wal_types");
    db.exec(TYPED);
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('typed_rows', $q${TYPED_QUERY}$q$, refresh_mode => 'DIFFERENTIAL');
         SELECT pgtrickle.create_stream_table('typed_agg', $q${TYPED_AGG}$q$, refresh_mode => 'DIFFERENTIAL');"
    ));
    db.wait_for_capture("public.typed", "WAL");
    // What the hand-over did to the source, and says it did.
    assert_eq!(
        db.value::<String>("SELECT relreplident::text FROM pg_class WHERE oid = 'typed'::regclass"),
        "f"
    );
    assert_eq!(
        db.value::<String>(
            "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'typed'::regclass AND NOT tgisinternal"
        ),
        "pgtrickle_capture_truncate"
    );
    assert_eq!(
        db.value::<String>(
            "SELECT capture || ' ' || (pending_changes = 0) FROM pgtrickle.list_sources('typed_rows')"
        ),
        "WAL true"
    );
    assert_eq!(
        db.value::<String>(
            "SELECT severity FROM pgtrickle.health_check() WHERE check_name IN ('wal_capture', 'capture_triggers') ORDER BY 1 LIMIT 1"
        ),
        "OK"
    );
    let pairs = [("typed_rows", TYPED_QUERY), ("typed_agg", TYPED_AGG)];
    let rounds = [
        // Awkward values: quotes, tabs, newlines, NULL array elements, negative scale, -infinity,
        // an empty bytea, a long (TOASTed) text.
        "INSERT INTO typed VALUES
            (3, 1, E'it''s \\t tab\\nnewline \"q\"', 'x', -0.0001, 'NaN', '{NULL,\"a,b\",\"c\\\"d\"}', '[]', 'null', '\\x', 7, 'happy', '-infinity', repeat('y', 9000)),
            (4, 3, ' lead and trail ', 'abc', 99999999.9999, -1e300, '{}', '{\"a\": \"b c\"}', '{\"z\": {\"y\": null}}', '\\xdeadbeef', 2, 'sad', 'infinity', 'short')",
        // An UPDATE that leaves the TOASTed column unchanged, one that changes the key, one
        // that moves a row between groups.
        "UPDATE typed SET g = 2, t = 'moved' WHERE id = 1;
         UPDATE typed SET id = 30 WHERE id = 3;
         UPDATE typed SET n = n / 2, m = 'ok' WHERE id = 4",
        // Insert and delete of one row in one transaction, a rolled-back savepoint, several
        // updates of one row.
        "BEGIN;
         INSERT INTO typed (id, g, t) VALUES (5, 1, 'ephemeral');
         DELETE FROM typed WHERE id = 5;
         SAVEPOINT s; UPDATE typed SET t = 'rolled back' WHERE id = 2; DELETE FROM typed WHERE id = 4; ROLLBACK TO s;
         UPDATE typed SET f = 1 WHERE id = 2; UPDATE typed SET f = 2 WHERE id = 2; UPDATE typed SET f = 3 WHERE id = 2;
         COMMIT",
        // A transaction that aborts after writing.
        "BEGIN; INSERT INTO typed (id, g) VALUES (6, 9); UPDATE typed SET g = 9; ROLLBACK",
        // Many rows in one statement, then most of them gone again.
        "INSERT INTO typed (id, g, t, n, big) SELECT i, i % 4, 't' || i, i / 7.0, repeat(md5(i::text), 200) FROM generate_series(100, 1300) i;
         DELETE FROM typed WHERE id BETWEEN 150 AND 1250 AND id % 3 <> 0;
         UPDATE typed SET big = big || 'z' WHERE id % 10 = 0",
    ];
    for (i, round) in rounds.iter().enumerate() {
        // Each statement of a round on its own (one string would be one implicit transaction).
        if round.starts_with("BEGIN") {
            db.exec(round);
        } else {
            for statement in round.split(";\n") {
                db.exec(statement);
            }
        }
        for (st, q) in pairs {
            db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{st}')"));
            assert_eq!(db.oracle(st, q), (0, 0), "round {i}: {st}");
        }
    }
    let diff: i64 = db
        .value("SELECT count(*) FROM pgtrickle.pgt_refresh_history WHERE action = 'DIFFERENTIAL'");
    assert!(diff >= 8, "differential refreshes: {diff}");
    // The consumer's monitoring.
    let (changes, mode): (i64, String) = {
        let row = db
            .client
            .query_one(
                "SELECT w.changes_total, c.capture_mode FROM pgtrickle.pgt_wal_state w, pgtrickle.cdc_status() c \
                  WHERE c.source_table = 'public.typed'",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(changes > 1000, "changes decoded: {changes}");
    assert_eq!(mode, "WAL");

    // A DIFFERENTIAL refresh cannot see uncommitted writes through the WAL: refused, named.
    let message = db.error_message(
        "BEGIN; UPDATE typed SET g = 5 WHERE id = 2; SELECT pgtrickle.refresh_stream_table('typed_agg'); COMMIT",
    );
    assert!(
        message.starts_with("0A000") && message.contains("typed"),
        "{message}"
    );
    db.exec("ROLLBACK");
    // Refreshes alone in one transaction are fine.
    db.exec("UPDATE typed SET g = 6 WHERE id = 2");
    db.exec(
        "BEGIN; SELECT pgtrickle.refresh_stream_table('typed_rows'); SELECT pgtrickle.refresh_stream_table('typed_agg'); COMMIT",
    );
    for (st, q) in pairs {
        assert_eq!(
            db.oracle(st, q),
            (0, 0),
            "{st} after refreshes in one transaction"
        );
    }

    // Dropping the last stream table gives the source its replica identity back and removes
    // capture; the consumer then drops the slot (it would hold back WAL).
    db.exec("SELECT pgtrickle.drop_stream_table('typed_agg'); SELECT pgtrickle.drop_stream_table('typed_rows')");
    assert_eq!(
        db.value::<String>("SELECT relreplident::text FROM pg_class WHERE oid = 'typed'::regclass"),
        "d"
    );
    db.assert_no_leftovers(&["typed_rows", "typed_agg"]);
    let start = Instant::now();
    while db.value::<i64>(
        "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()",
    ) > 0
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the slot outlived the last WAL-captured source"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_slot_dropped_behind_our_back_falls_back_to_triggers_and_stays_exact() {
    let mut db = TestDb::new("wal_slot_lost");
    let q = "SELECT k % 5 AS g, count(*) AS n, sum(v) AS s FROM items GROUP BY k % 5";
    db.exec(&format!(
        "CREATE TABLE items (k int PRIMARY KEY, v int);
         INSERT INTO items SELECT i, i FROM generate_series(1, 500) i;
         SELECT pgtrickle.create_stream_table('per_g', '{q}', refresh_mode => 'DIFFERENTIAL');"
    ));
    db.wait_for_capture("public.items", "WAL");
    db.exec("UPDATE items SET v = v + 1 WHERE k % 7 = 0");
    db.exec("SELECT pgtrickle.refresh_stream_table('per_g')");
    assert_eq!(db.oracle("per_g", q), (0, 0));
    // Changes the consumer may not have read yet, then the slot goes (retried while the
    // consumer happens to be reading it).
    db.exec("DELETE FROM items WHERE k > 450");
    db.exec("INSERT INTO items VALUES (1000, 1000)");
    let slot: String = db.value("SELECT slot_name::text FROM pgtrickle.pgt_wal_state");
    let start = Instant::now();
    while db
        .client
        .batch_execute(&format!("SELECT pg_drop_replication_slot('{slot}')"))
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "could not drop the slot"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    db.wait_for_capture("public.items", "TRIGGER");
    let note: String = db.value("SELECT note FROM pgtrickle.cdc_status()");
    assert!(note.starts_with("fell back from WAL capture"), "{note}");
    assert_eq!(
        db.value::<String>(
            "SELECT severity FROM pgtrickle.health_check() WHERE check_name = 'wal_capture'"
        ),
        "WARNING"
    );
    assert_eq!(
        db.value::<String>("SELECT relreplident::text FROM pg_class WHERE oid = 'items'::regclass"),
        "d"
    );
    // Continuity was broken: the next refresh recomputes, and later ones are differential again.
    db.exec("UPDATE items SET v = 0 WHERE k < 10");
    db.exec("SELECT pgtrickle.refresh_stream_table('per_g')");
    assert_eq!(db.oracle("per_g", q), (0, 0));
    assert_eq!(
        db.value::<String>(
            "SELECT action FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1"
        ),
        "FULL"
    );
    db.exec("UPDATE items SET v = 1 WHERE k < 20");
    db.exec("SELECT pgtrickle.refresh_stream_table('per_g')");
    assert_eq!(db.oracle("per_g", q), (0, 0));
    assert_eq!(
        db.value::<String>(
            "SELECT action FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1"
        ),
        "DIFFERENTIAL"
    );
}

#[test]
fn immediate_and_repeatable_read_get_what_they_need() {
    let mut db = TestDb::new("wal_immediate");
    let q = "SELECT g, count(*) AS n FROM events GROUP BY g";
    db.exec(&format!(
        "CREATE TABLE events (id int PRIMARY KEY, g int);
         INSERT INTO events SELECT i, i % 3 FROM generate_series(1, 30) i;
         SELECT pgtrickle.create_stream_table('per_g', '{q}', refresh_mode => 'DIFFERENTIAL');"
    ));
    db.wait_for_capture("public.events", "WAL");
    // A refresh in a REPEATABLE READ transaction cannot read the slot in its snapshot's terms:
    // it recomputes, and says why.
    db.exec("INSERT INTO events VALUES (100, 1)");
    db.exec(
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT pgtrickle.refresh_stream_table('per_g'); COMMIT",
    );
    assert_eq!(db.oracle("per_g", q), (0, 0));
    let reason: String = db.value(
        "SELECT action || ': ' || reason FROM pgtrickle.pgt_refresh_history ORDER BY refresh_id DESC LIMIT 1",
    );
    assert!(
        reason.starts_with("FULL: a source is captured from the WAL"),
        "{reason}"
    );
    // IMMEDIATE maintenance needs the row trigger: switching moves the source back to it in the
    // same transaction, so the very next write is maintained.
    db.exec("SELECT pgtrickle.alter_stream_table('per_g', refresh_mode => 'IMMEDIATE')");
    assert_eq!(
        db.value::<String>(
            "SELECT capture_mode || ' ' || note FROM pgtrickle.cdc_status() WHERE source_table = 'public.events'"
        ),
        "TRIGGER stays on triggers: read by an IMMEDIATE stream table"
    );
    db.exec("UPDATE events SET g = 2 WHERE id < 10");
    assert_eq!(db.oracle("per_g", q), (0, 0));
    db.exec("INSERT INTO events VALUES (200, 0)");
    assert_eq!(db.oracle("per_g", q), (0, 0));
    // And it stays there while the IMMEDIATE stream table reads it.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        db.value::<String>(
            "SELECT capture_mode FROM pgtrickle.cdc_status() WHERE source_table = 'public.events'"
        ),
        "TRIGGER"
    );
}
