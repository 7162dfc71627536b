//! Tier 3: recursive CTEs and the stream tables that read them, under random tree edits,
//! refreshed by the scheduler alone. The guide-shaped tree is DIFFERENTIAL (semi-naive with
//! signed weights: inserts, deletes, renames and re-parenting); the ancestor count (an aggregate
//! over the recursion) is FULL, skipped when nothing changed; the reader of the tree is
//! DIFFERENTIAL over the tree's captured changes. Every layer must equal its query.

use pg_trickle_tests::TestDb;
use std::time::Duration;

const TREE: &str = "WITH RECURSIVE tree AS ( \
     SELECT id, name, parent_id, name AS path, 0 AS depth FROM nodes WHERE parent_id IS NULL \
     UNION ALL \
     SELECT n.id, n.name, n.parent_id, tree.path || ' > ' || n.name, tree.depth + 1 \
     FROM nodes n JOIN tree ON n.parent_id = tree.id) \
   SELECT id, name, parent_id, path, depth FROM tree";
const ANCESTORS: &str = "WITH RECURSIVE anc(id, a) AS ( \
     SELECT id, parent_id FROM nodes WHERE parent_id IS NOT NULL \
     UNION ALL \
     SELECT anc.id, n.parent_id FROM anc JOIN nodes n ON n.id = anc.a WHERE n.parent_id IS NOT NULL) \
   SELECT id, count(*) AS ancestors FROM anc GROUP BY id";
const STATS: &str = "SELECT t.id, t.path, count(i.id) AS items, COALESCE(sum(i.qty), 0) AS qty \
   FROM tree_st t LEFT JOIN items i ON i.node_id = t.id GROUP BY t.id, t.path";

fn wait_exact(db: &mut TestDb, round: usize) {
    db.until_exact(
        &[
            ("tree_st", TREE),
            ("anc_st", ANCESTORS),
            ("stats_st", STATS),
        ],
        Duration::from_secs(4),
        &format!("round {round}"),
    );
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn recursive_ctes_and_their_readers_stay_exact_under_tree_edits() {
    let mut db = TestDb::with_scheduler("oracle_recursive");
    db.exec(&format!(
        "CREATE TABLE nodes (id int PRIMARY KEY, name text NOT NULL, parent_id int);
         CREATE TABLE items (id int PRIMARY KEY, node_id int NOT NULL, qty int NOT NULL);
         INSERT INTO nodes VALUES (1, 'root', NULL);
         INSERT INTO nodes SELECT i, 'n' || i, i / 3 FROM generate_series(2, 40) i;
         INSERT INTO items SELECT i, 1 + i % 40, i % 7 FROM generate_series(1, 120) i;
         SELECT pgtrickle.create_stream_table('tree_st', $q${TREE}$q$, schedule => '1s');
         SELECT pgtrickle.create_stream_table('anc_st', $q${ANCESTORS}$q$, schedule => '1s');
         SELECT pgtrickle.create_stream_table('stats_st', $q${STATS}$q$, schedule => '1s');"
    ));
    let modes: String = db.value(
        "SELECT string_agg(name || '=' || refresh_mode, ' ' ORDER BY name) FROM pgtrickle.pgt_status()",
    );
    assert_eq!(
        modes,
        "public.anc_st=FULL public.stats_st=DIFFERENTIAL public.tree_st=DIFFERENTIAL"
    );
    let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
    let mut next = 41;
    for round in 0..8 {
        let mut sql = Vec::new();
        for _ in 0..3 {
            // New node under an existing one.
            sql.push(format!(
                "INSERT INTO nodes VALUES ({next}, 'n{next}', {})",
                1 + rng.below(next as u64 - 1)
            ));
            next += 1;
        }
        if round % 2 == 0 {
            // Insert-only rounds exercise the semi-naive delta.
            for s in sql.drain(..) {
                db.exec(&s);
            }
            wait_exact(&mut db, round);
            continue;
        }
        // Re-parent a node under a smaller id (no cycles), rename one, delete a leaf or an
        // inner node (its subtree becomes unreachable), move items.
        let a = 2 + rng.below(next as u64 - 2);
        sql.push(format!(
            "UPDATE nodes SET parent_id = {} WHERE id = {a}",
            1 + rng.below(a - 1)
        ));
        sql.push(format!(
            "UPDATE nodes SET name = 'r{round}' WHERE id = {}",
            1 + rng.below(next as u64 - 1)
        ));
        if round % 3 == 2 {
            sql.push(format!(
                "DELETE FROM nodes WHERE id = {}",
                2 + rng.below(next as u64 - 2)
            ));
        }
        sql.push(format!(
            "UPDATE items SET node_id = {} WHERE id = {}",
            1 + rng.below(next as u64 - 1),
            1 + rng.below(120)
        ));
        for s in sql {
            db.exec(&s);
        }
        wait_exact(&mut db, round);
    }
    // Insert-only windows of the tree ran the semi-naive delta.
    let tree_diff: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) \
          WHERE s.pgt_relid = 'tree_st'::regclass AND h.action = 'DIFFERENTIAL'",
    );
    assert!(
        tree_diff >= 8,
        "tree_st: {tree_diff} differential refreshes"
    );
    // Updates, deletes and re-parenting too: the tree never needed a FULL refresh after create.
    let tree_full: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) \
          WHERE s.pgt_relid = 'tree_st'::regclass AND h.action = 'FULL' AND h.initiated_by <> 'CREATE'",
    );
    assert_eq!(tree_full, 0);
    // The reader of the recursive stream table refreshed DIFFERENTIAL, by the scheduler.
    let diff: i64 = db.value(
        "SELECT count(*) FROM pgtrickle.pgt_refresh_history h JOIN pgtrickle.pgt_stream_tables s USING (pgt_id) \
          WHERE s.pgt_relid = 'stats_st'::regclass AND h.action = 'DIFFERENTIAL' AND h.initiated_by = 'SCHEDULER'",
    );
    assert!(
        diff >= 8,
        "stats_st: {diff} scheduled differential refreshes"
    );
}
