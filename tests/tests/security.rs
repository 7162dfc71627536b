//! Tier 3: who runs what (docs/SQL_REFERENCE.md, "Security"). Writers of a source need no
//! rights on pg_trickle's schemas; refreshes (manual, scheduled, IMMEDIATE) evaluate the query
//! as the stream table's owner; ordinary roles use the API for their own stream tables only and
//! can write neither the catalog nor change buffers; unknown `pg_trickle.*` settings are errors.
//!
//! Roles are cluster-wide: each test makes its own (`pgt_sec_<test>_<who>`), member of
//! `pgtrickle_user` where it uses the API, and switches to them with SET ROLE.

use pg_trickle_tests::TestDb;
use std::time::{Duration, Instant};

/// Creates role `name` if it does not exist (tests of other binaries may run at once).
fn role(db: &mut TestDb, name: &str, member_of_pgtrickle_user: bool) {
    db.exec(&format!(
        "DO $$ BEGIN
             CREATE ROLE {name} NOLOGIN;
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
         END $$;"
    ));
    if member_of_pgtrickle_user {
        db.exec(&format!("GRANT pgtrickle_user TO {name}"));
    }
}

/// A source table, a function that reports who evaluates it, and three roles: `owner` (may use
/// pg_trickle, reads `src`, creates in schema `app`), `other` (may use pg_trickle, reads `src`)
/// and `writer` (writes `src`, nothing else).
struct Roles {
    owner: String,
    other: String,
    writer: String,
}

fn setup(db: &mut TestDb, test: &str) -> Roles {
    let r = Roles {
        owner: format!("pgt_sec_{test}_owner"),
        other: format!("pgt_sec_{test}_other"),
        writer: format!("pgt_sec_{test}_writer"),
    };
    role(db, &r.owner, true);
    role(db, &r.other, true);
    role(db, &r.writer, false);
    db.exec(&format!(
        "CREATE SCHEMA app;
         GRANT USAGE, CREATE ON SCHEMA app TO {owner};
         GRANT USAGE ON SCHEMA app TO {other}, {writer};
         CREATE TABLE app.src (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL);
         INSERT INTO app.src SELECT g, g % 3, g FROM generate_series(1, 30) g;
         GRANT SELECT ON app.src TO {owner}, {other};
         GRANT SELECT, INSERT, UPDATE, DELETE ON app.src TO {writer};
         -- STABLE and plpgsql: not inlined, evaluated by whoever runs the statement.
         CREATE FUNCTION app.whoami() RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN current_user; END $$;
         ALTER FUNCTION app.whoami() OWNER TO {owner};",
        owner = r.owner,
        other = r.other,
        writer = r.writer
    ));
    r
}

fn as_role(db: &mut TestDb, role: &str, sql: &str) {
    db.exec(&format!("SET ROLE {role}; {sql}; RESET ROLE"));
}

fn error_as(db: &mut TestDb, role: &str, sql: &str) -> String {
    db.exec(&format!("SET ROLE {role}"));
    let code = db.error_code(sql);
    db.exec("RESET ROLE");
    code
}

/// The oracle, run as `role` (the queries report who evaluates them).
fn oracle_as(db: &mut TestDb, role: &str, st: &str, q: &str) -> (i64, i64) {
    db.exec(&format!("SET ROLE {role}"));
    let r = db.oracle(st, q);
    db.exec("RESET ROLE");
    r
}

/// Who evaluated the query for the rows stored now.
fn evaluated_by(db: &mut TestDb, st: &str) -> Vec<String> {
    db.client
        .query(&format!("SELECT DISTINCT who FROM {st} ORDER BY 1"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const GROUPED: &str =
    "SELECT grp, app.whoami() AS who, count(*) AS n, sum(v) AS s FROM app.src GROUP BY grp";
const ROWS: &str = "SELECT id, v, app.whoami() AS who FROM app.src WHERE v % 2 = 0";

#[test]
fn writers_need_no_rights_on_pg_trickle() {
    let mut db = TestDb::new("sec_writer");
    let r = setup(&mut db, "writer");
    // Created by a superuser: trigger capture, WAL capture once moved, and IMMEDIATE.
    db.exec(&format!(
        "SELECT pgtrickle.create_stream_table('app.grouped', $q${GROUPED}$q$, cdc_mode => 'trigger');
         SELECT pgtrickle.create_stream_table('app.immediate', $q${ROWS}$q$, refresh_mode => 'IMMEDIATE')"
    ));
    for i in 0..3 {
        as_role(
            &mut db,
            &r.writer,
            &format!(
                "INSERT INTO app.src VALUES ({id}, 1, {id}); UPDATE app.src SET v = v + 1 WHERE id = {i} + 1; \
                 DELETE FROM app.src WHERE id = {i} + 10",
                id = 100 + i
            ),
        );
    }
    // The writer changed both in one transaction too.
    as_role(
        &mut db,
        &r.writer,
        "BEGIN; INSERT INTO app.src VALUES (200, 2, 200); UPDATE app.src SET grp = 0 WHERE id = 200; COMMIT",
    );
    assert_eq!(db.oracle("app.immediate", ROWS), (0, 0), "IMMEDIATE");
    db.exec("SELECT pgtrickle.refresh_stream_table('app.grouped')");
    assert_eq!(db.oracle("app.grouped", GROUPED), (0, 0), "trigger capture");
    // The writer still cannot read or write the buffers, call the capture function, or read
    // the catalog.
    let buffer: String = db.value(
        "SELECT 'pgtrickle_changes.' || buffer_table FROM pgtrickle.pgt_sources WHERE source_relid = 'app.src'::regclass",
    );
    assert_eq!(
        error_as(&mut db, &r.writer, &format!("SELECT * FROM {buffer}")),
        "42501"
    );
    assert_eq!(
        error_as(
            &mut db,
            &r.writer,
            &format!("INSERT INTO {buffer} (action) VALUES ('T')")
        ),
        "42501"
    );
    assert_eq!(
        error_as(
            &mut db,
            &r.writer,
            "SELECT * FROM pgtrickle.pgt_stream_tables"
        ),
        "42501"
    );
}

#[test]
fn refreshes_evaluate_the_query_as_the_owner() {
    let mut db = TestDb::with_scheduler("sec_owner_rights");
    let r = setup(&mut db, "owner_rights");
    as_role(
        &mut db,
        &r.owner,
        &format!(
            "SELECT pgtrickle.create_stream_table('app.grouped', $q${GROUPED}$q$, schedule => '1s');
             SELECT pgtrickle.create_stream_table('app.rows', $q${ROWS}$q$, schedule => '1h');
             SELECT pgtrickle.create_stream_table('app.immediate', $q${ROWS}$q$, refresh_mode => 'IMMEDIATE')"
        ),
    );
    for st in ["app.grouped", "app.rows", "app.immediate"] {
        assert_eq!(
            evaluated_by(&mut db, st),
            vec![r.owner.clone()],
            "{st} at create"
        );
    }
    // A manual refresh by a superuser.
    db.exec("UPDATE app.src SET v = v + 1 WHERE id <= 6");
    db.exec("SELECT pgtrickle.refresh_stream_table('app.rows')");
    assert_eq!(
        evaluated_by(&mut db, "app.rows"),
        vec![r.owner.clone()],
        "manual"
    );
    assert_eq!(oracle_as(&mut db, &r.owner, "app.rows", ROWS), (0, 0));
    // IMMEDIATE, written by another role.
    as_role(
        &mut db,
        &r.writer,
        "INSERT INTO app.src VALUES (500, 2, 500)",
    );
    assert_eq!(
        evaluated_by(&mut db, "app.immediate"),
        vec![r.owner.clone()],
        "IMMEDIATE"
    );
    // Scheduled: new groups' rows are evaluated by the scheduler's refresh.
    db.exec("INSERT INTO app.src VALUES (501, 7, 1), (502, 8, 2)");
    let start = Instant::now();
    while db.value::<i64>("SELECT count(*) FROM app.grouped WHERE grp IN (7, 8)") < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the scheduler did not refresh"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        evaluated_by(&mut db, "app.grouped"),
        vec![r.owner.clone()],
        "scheduled"
    );
    // The owner's rights bound what a refresh reads: a source the owner may no longer read
    // fails the refresh instead of being read with pg_trickle's rights.
    // (An IMMEDIATE stream table is maintained in its writers' transactions: without the
    // right to read the source, its writes would fail; docs/SQL_REFERENCE.md, "Security".)
    db.exec("SELECT pgtrickle.drop_stream_table('app.immediate')");
    db.exec(&format!("REVOKE SELECT ON app.src FROM {}", r.owner));
    db.exec("UPDATE app.src SET v = v + 1 WHERE id = 2");
    assert_eq!(
        db.error_code("SELECT pgtrickle.refresh_stream_table('app.rows')"),
        "42501"
    );
}

#[test]
fn a_stream_table_cannot_read_what_its_creator_cannot() {
    let mut db = TestDb::new("sec_no_read");
    let r = setup(&mut db, "no_read");
    db.exec("CREATE TABLE app.secret (id int PRIMARY KEY, pin int)");
    db.exec("INSERT INTO app.secret VALUES (1, 1234)");
    for initialize in ["true", "false"] {
        assert_eq!(
            error_as(
                &mut db,
                &r.owner,
                &format!(
                    "SELECT pgtrickle.create_stream_table('app.leak', 'SELECT id, pin FROM app.secret', initialize => {initialize})"
                )
            ),
            "42501",
            "initialize => {initialize}"
        );
    }
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_stream_tables"),
        0
    );
    db.assert_no_leftovers(&["leak"]);
}

#[test]
fn ordinary_roles_manage_their_own_stream_tables_only() {
    let mut db = TestDb::new("sec_lifecycle");
    let r = setup(&mut db, "lifecycle");
    as_role(
        &mut db,
        &r.owner,
        &format!("SELECT pgtrickle.create_stream_table('app.grouped', $q${GROUPED}$q$)"),
    );
    let owner: String = db
        .value("SELECT relowner::regrole::text FROM pg_class WHERE oid = 'app.grouped'::regclass");
    assert_eq!(owner, r.owner);
    // Another member of pgtrickle_user: may not refresh, alter, replace or drop it, nor read it
    // without a grant.
    for call in [
        "SELECT pgtrickle.refresh_stream_table('app.grouped')",
        "SELECT pgtrickle.alter_stream_table('app.grouped', schedule => '5m')",
        "SELECT pgtrickle.drop_stream_table('app.grouped')",
        "SELECT pgtrickle.create_or_replace_stream_table('app.grouped', 'SELECT grp FROM app.src GROUP BY grp')",
        "SELECT * FROM app.grouped",
        "DROP TABLE app.grouped",
    ] {
        assert_eq!(error_as(&mut db, &r.other, call), "42501", "{call}");
    }
    // ... nor create in a schema it may not create in.
    assert_eq!(
        error_as(
            &mut db,
            &r.other,
            "SELECT pgtrickle.create_stream_table('app.mine', 'SELECT id FROM app.src')"
        ),
        "42501"
    );
    as_role(
        &mut db,
        &r.owner,
        &format!("GRANT SELECT ON app.grouped TO {}", r.other),
    );
    as_role(&mut db, &r.other, "SELECT count(*) FROM app.grouped");
    // The owner: the whole lifecycle.
    db.exec("UPDATE app.src SET grp = 2 WHERE id = 3");
    as_role(
        &mut db,
        &r.owner,
        "SELECT pgtrickle.refresh_stream_table('app.grouped')",
    );
    assert_eq!(oracle_as(&mut db, &r.owner, "app.grouped", GROUPED), (0, 0));
    as_role(
        &mut db,
        &r.owner,
        "SELECT pgtrickle.alter_stream_table('app.grouped', schedule => '5m', refresh_mode => 'FULL')",
    );
    let q2 = "SELECT s.grp, count(*) AS n, app.whoami() AS who FROM app.src s JOIN app.src t ON t.id = s.id + 1 GROUP BY s.grp";
    as_role(
        &mut db,
        &r.owner,
        &format!("SELECT pgtrickle.create_or_replace_stream_table('app.grouped', $q${q2}$q$)"),
    );
    assert_eq!(oracle_as(&mut db, &r.owner, "app.grouped", q2), (0, 0));
    assert_eq!(evaluated_by(&mut db, "app.grouped"), vec![r.owner.clone()]);
    // Reading what pg_trickle says about it.
    as_role(&mut db, &r.owner, "SELECT * FROM pgtrickle.pgt_status(); SELECT pgtrickle.explain_stream_table('app.grouped')");
    as_role(
        &mut db,
        &r.owner,
        "SELECT * FROM pgtrickle.verify_stream_table('app.grouped')",
    );
    // A nested plan: its internal tables belong to the owner too.
    let nested = "SELECT grp, sum(v) AS total FROM app.src GROUP BY grp HAVING sum(v) > \
                  (SELECT avg(a.v) * 8 FROM app.src a JOIN app.src b ON b.id = a.id WHERE b.grp <> 1)";
    as_role(
        &mut db,
        &r.owner,
        &format!("SELECT pgtrickle.create_stream_table('app.nested', $q${nested}$q$, refresh_mode => 'DIFFERENTIAL')"),
    );
    let internal: i64 = db
        .value("SELECT count(*) FROM pgtrickle.pgt_stream_tables WHERE parent_pgt_id IS NOT NULL");
    assert!(
        internal > 0,
        "the nested shape made no internal stream table"
    );
    let foreign: i64 = db.value(&format!(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgtrickle_changes'::regnamespace \
          AND relkind = 'r' AND relname LIKE 'sub\\_%' AND relowner <> '{}'::regrole",
        r.owner
    ));
    assert_eq!(foreign, 0, "internal tables owned by someone else");
    db.exec("UPDATE app.src SET v = v * 3 WHERE id % 4 = 0");
    as_role(
        &mut db,
        &r.owner,
        "SELECT pgtrickle.refresh_stream_table('app.nested')",
    );
    assert_eq!(oracle_as(&mut db, &r.owner, "app.nested", nested), (0, 0));
    // Dropping: through the API and with DROP TABLE (the event trigger keeps the catalog true).
    as_role(
        &mut db,
        &r.owner,
        "SELECT pgtrickle.drop_stream_table('app.grouped')",
    );
    as_role(&mut db, &r.owner, "DROP TABLE app.nested");
    db.assert_no_leftovers(&["grouped", "nested"]);
}

#[test]
fn catalog_buffers_and_internal_functions_are_not_for_ordinary_roles() {
    let mut db = TestDb::new("sec_catalog");
    let r = setup(&mut db, "catalog");
    as_role(
        &mut db,
        &r.owner,
        &format!("SELECT pgtrickle.create_stream_table('app.grouped', $q${GROUPED}$q$)"),
    );
    let buffer: String = db.value(
        "SELECT 'pgtrickle_changes.' || buffer_table FROM pgtrickle.pgt_sources WHERE source_relid = 'app.src'::regclass",
    );
    let st_oid: i64 = db.value("SELECT 'app.grouped'::regclass::oid::int8");
    for role in [&r.owner, &r.other] {
        for call in [
            "UPDATE pgtrickle.pgt_stream_tables SET status = 'SUSPENDED'".to_string(),
            "DELETE FROM pgtrickle.pgt_dependencies".to_string(),
            "INSERT INTO pgtrickle.pgt_sources (source_relid, buffer_table, has_primary_key, column_attnums) VALUES (1, 'x', true, '{}')".to_string(),
            "DELETE FROM pgtrickle.pgt_refresh_history".to_string(),
            format!("INSERT INTO {buffer} (action) VALUES ('T')"),
            format!("DELETE FROM {buffer}"),
            format!("SELECT pgtrickle._forget_dropped_relations(ARRAY[{st_oid}]::oid[])"),
        ] {
            assert_eq!(error_as(&mut db, role, &call), "42501", "{role}: {call}");
        }
    }
    // The other role reads the catalog (pgtrickle_user), but not the owner's buffer.
    as_role(
        &mut db,
        &r.other,
        "SELECT count(*) FROM pgtrickle.pgt_stream_tables",
    );
    assert_eq!(
        error_as(&mut db, &r.other, &format!("SELECT * FROM {buffer}")),
        "42501"
    );
    // A role outside pgtrickle_user cannot reach the API at all.
    assert_eq!(
        error_as(&mut db, &r.writer, "SELECT * FROM pgtrickle.pgt_status()"),
        "42501"
    );
    assert_eq!(
        db.value::<i64>("SELECT count(*) FROM pgtrickle.pgt_stream_tables"),
        1
    );
}

#[test]
fn a_search_path_cannot_put_functions_in_place_of_pg_catalog() {
    let mut db = TestDb::new("sec_search_path");
    let r = setup(&mut db, "search_path");
    // An ordinary role shadows pg_catalog functions that pg_trickle's statements call, and asks
    // for its schema before pg_catalog.
    db.exec(&format!(
        "CREATE SCHEMA evil AUTHORIZATION {owner};
         CREATE TABLE app.log (who text);
         GRANT INSERT ON app.log TO PUBLIC;",
        owner = r.owner
    ));
    as_role(
        &mut db,
        &r.owner,
        "CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN INSERT INTO app.log VALUES (current_user); RETURN 1; END $$;
         CREATE FUNCTION evil.hashtextextended(text, bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN INSERT INTO app.log VALUES (current_user); RETURN 1; END $$",
    );
    as_role(
        &mut db,
        &r.owner,
        &format!(
            "SET search_path = evil, pg_catalog, app;
             SELECT pgtrickle.create_stream_table('app.grouped', $q${GROUPED}$q$);
             SELECT pgtrickle.create_stream_table('app.rows', 'SELECT id, v FROM src');
             SELECT pgtrickle.refresh_stream_table('app.grouped');
             RESET search_path"
        ),
    );
    db.exec("UPDATE app.src SET v = v + 1 WHERE id < 5");
    db.exec("SELECT pgtrickle.refresh_stream_table('app.grouped'); SELECT pgtrickle.refresh_stream_table('app.rows')");
    let n: i64 = db.value("SELECT count(*) FROM app.log");
    assert_eq!(
        n, 0,
        "a function of the caller's schema ran in place of pg_catalog's"
    );
    assert_eq!(oracle_as(&mut db, &r.owner, "app.grouped", GROUPED), (0, 0));
    assert_eq!(db.oracle("app.rows", "SELECT id, v FROM app.src"), (0, 0));
}

#[test]
fn unknown_pg_trickle_settings_are_errors() {
    let mut db = TestDb::new("sec_guc_prefix");
    for sql in [
        "SET pg_trickle.enabeld = off",
        "SET pg_trickle.anything = 1",
        "SELECT set_config('pg_trickle.cdc_mod', 'wal', false)",
    ] {
        let e = db.error_message(sql);
        assert!(e.starts_with("42602"), "{sql}: {e}");
        assert!(e.contains("reserved prefix"), "{sql}: {e}");
    }
    // Known ones still work.
    db.exec("SET pg_trickle.cdc_mode = 'trigger'; RESET pg_trickle.cdc_mode");
}

#[test]
fn small_defects_of_the_first_try() {
    let mut db = TestDb::new("sec_small");
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v int);
         INSERT INTO t SELECT g, g FROM generate_series(1, 10) g;
         SELECT pgtrickle.create_stream_table('imm', 'SELECT id, v FROM t', refresh_mode => 'IMMEDIATE', schedule => '1s');
         SELECT pgtrickle.create_stream_table('sched', 'SELECT id, v FROM t', schedule => '1s');
         -- Both last refreshed an hour ago.
         UPDATE pgtrickle.pgt_stream_tables SET data_timestamp = now() - interval '1 hour'",
    );
    let detail: String =
        db.value("SELECT detail FROM pgtrickle.health_check() WHERE check_name = 'stale_tables'");
    assert!(detail.contains("sched"), "{detail}");
    assert!(
        !detail.contains("imm"),
        "an IMMEDIATE stream table reported stale: {detail}"
    );
    // The hint of a bad refresh mode names every mode.
    let e = db.error_message(
        "SELECT pgtrickle.create_stream_table('x', 'SELECT id FROM t', refresh_mode => 'fast')",
    );
    assert!(e.contains("IMMEDIATE"), "{e}");
    // changes_per_sec is a plain rate: 0, or at least 0.01.
    let odd: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.cdc_status() WHERE changes_per_sec > 0 AND changes_per_sec < 0.01",
    );
    assert_eq!(odd, 0);
}
