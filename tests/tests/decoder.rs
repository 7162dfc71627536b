//! Tier 3: the logical decoding output plugin (`output_plugin/`, library `pg_trickle_decoder`)
//! against the trigger path. One table with a column of every kind the WAL path must carry
//! exactly (NULLs, arrays, numerics, text with spaces, quotes and newlines, bytea, json, jsonb,
//! a domain, an enum, timestamps, a TOASTed value left unchanged by an UPDATE) is captured both
//! ways: by a stream table's triggers into its change buffer, and by a logical slot using the
//! plugin. Every change must decode to the same action and the same values, as text, in the
//! same order; an aborted transaction and other tables' changes must not appear.

use pg_trickle_core::wal_format::{decode, Message, Value};
use pg_trickle_tests::TestDb;

const COLUMNS: &[&str] = &["id", "t", "n", "arr", "j", "jb", "b", "d", "e", "ts", "big"];

#[test]
fn every_type_decodes_as_the_trigger_path_captures_it() {
    let mut db = TestDb::new("decoder_types");
    db.exec(
        "CREATE DOMAIN positive AS int CHECK (VALUE > 0);
         CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE typed (id int PRIMARY KEY, t text, n numeric(12,4), arr text[], j json,
                             jb jsonb, b bytea, d positive, e mood, ts timestamptz, big text);
         ALTER TABLE typed REPLICA IDENTITY FULL;
         ALTER TABLE typed ALTER COLUMN big SET STORAGE EXTERNAL; -- out of line, uncompressed
         CREATE TABLE other (id int PRIMARY KEY);
         SELECT pgtrickle.create_stream_table('typed_st', 'SELECT * FROM typed', refresh_mode => 'DIFFERENTIAL', cdc_mode => 'trigger');",
    );
    let relid: u32 = db.value::<i64>("SELECT 'typed'::regclass::oid::bigint") as u32;
    db.exec(
        "SELECT 1 FROM pg_create_logical_replication_slot('decoder_types', 'pg_trickle_decoder')",
    );
    // One statement per exec: a multi-statement string is one implicit transaction, which the
    // ROLLBACK below would undo whole.
    for sql in [
        "INSERT INTO typed VALUES
           (1, E'two words, a ''quote'', a \"dq\"\\nand a newline\\ttab', 1.5000, ARRAY['a b', NULL, 'c,d', '\"q\"'],
            '{\"k\": [1, 2.50, null], \"s\": \"x y\"}', '{\"z\": {\"a\": 1}}', '\\x00ff10', 7, 'happy',
            '2024-02-29 23:59:59.123456+00', repeat('toast me ', 5000)),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           (3, '', -0.0001, '{}', '[]', '[]', '\\x', 1, 'sad', '-infinity', 'short')",
        "INSERT INTO other VALUES (1)",
        "BEGIN",
        "INSERT INTO typed (id, t) VALUES (99, 'rolled back')",
        "ROLLBACK",
        "UPDATE typed SET t = 'changed', n = 12345678.9 WHERE id = 1",
        "UPDATE typed SET big = repeat('new toast ', 4000), e = 'ok' WHERE id = 1",
        "UPDATE typed SET id = 4 WHERE id = 3",
        "DELETE FROM typed WHERE id = 2",
    ] {
        db.exec(sql);
    }
    // The trigger path: the buffer's images as text, in capture order.
    let cols = COLUMNS.len();
    let img = |prefix: &str| {
        (1..=cols)
            .map(|a| format!("{prefix}_{a}::text"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let buffer: String = db.value("SELECT 'pgtrickle_changes.' || buffer_table FROM pgtrickle.pgt_sources WHERE source_relid = 'typed'::regclass");
    let rows = db
        .client
        .query(
            &format!(
                "SELECT action::text, {}, {} FROM {buffer} ORDER BY change_id",
                img("old"),
                img("new")
            ),
            &[],
        )
        .unwrap();
    type Image = Vec<Option<String>>;
    let triggers: Vec<(String, Option<Image>, Option<Image>)> = rows
        .iter()
        .map(|r| {
            let action: String = r.get(0);
            let old: Image = (0..cols).map(|i| r.get(1 + i)).collect();
            let new: Image = (0..cols).map(|i| r.get(1 + cols + i)).collect();
            let has_old = action != "I";
            let has_new = action != "D";
            (action, has_old.then_some(old), has_new.then_some(new))
        })
        .collect();
    // The WAL path, only this table's changes.
    let messages = db
        .client
        .query(
            &format!(
                "SELECT data FROM pg_logical_slot_get_binary_changes('decoder_types', NULL, NULL, 'relations', '{relid}')"
            ),
            &[],
        )
        .unwrap();
    db.exec("SELECT pg_drop_replication_slot('decoder_types')");
    let mut decoded = Vec::new();
    let mut commits = 0;
    for m in &messages {
        let bytes: Vec<u8> = m.get(0);
        match decode(&bytes).expect("a well-formed message") {
            Message::Change {
                action,
                relid: r,
                old,
                new,
                ..
            } => {
                assert_eq!(r, relid, "only the listed relation is decoded");
                let text = |img: &Option<Vec<(u16, Value)>>, fill: Option<&Vec<(u16, Value)>>| {
                    img.as_ref().map(|cols| {
                        assert_eq!(
                            cols.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
                            (1..=COLUMNS.len() as u16).collect::<Vec<_>>()
                        );
                        cols.iter()
                            .map(|(a, v)| match v {
                                Value::Null => None,
                                Value::Text(s) => Some(s.clone()),
                                // Not in the WAL: the old image (REPLICA IDENTITY FULL) has it.
                                Value::Unchanged => {
                                    match &fill.expect("an old image")[*a as usize - 1].1 {
                                        Value::Text(s) => Some(s.clone()),
                                        other => {
                                            panic!("old image lacks the unchanged value: {other:?}")
                                        }
                                    }
                                }
                            })
                            .collect::<Vec<Option<String>>>()
                    })
                };
                let old_text = text(&old, None);
                let new_text = text(&new, old.as_ref());
                decoded.push(((action as char).to_string(), old_text, new_text));
            }
            Message::Commit { .. } => commits += 1,
        }
    }
    assert_eq!(
        decoded.len(),
        7,
        "three inserts, three updates and a delete; not the rolled-back insert"
    );
    assert_eq!(
        decoded, triggers,
        "the WAL path decodes exactly what the triggers captured"
    );
    assert!(commits >= 5, "one commit message per committed transaction");
    // The unchanged TOASTed value really was left out of the WAL's new image.
    let unchanged = messages.iter().any(|m| {
        let bytes: Vec<u8> = m.get(0);
        matches!(decode(&bytes), Ok(Message::Change { new: Some(cols), .. })
            if cols.iter().any(|(_, v)| *v == Value::Unchanged))
    });
    assert!(
        unchanged,
        "the UPDATE of t and n left the TOASTed big column unchanged"
    );
}
