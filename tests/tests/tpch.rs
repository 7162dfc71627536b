//! Tier 3: TPC-H at scale factor 0.01 as stream tables. The 22 queries (Q15 over its view), with
//! their ORDER BY and LIMIT, created DIFFERENTIAL where the engine maintains them and AUTO
//! (that is FULL, with the reason) otherwise, then several rounds of churn (RF1,
//! RF2 and updates, 1% of the orders each): after every round each stream table is refreshed and
//! must equal its query re-run (the oracle). The refresh mode each one gets and the action of
//! its refreshes are printed (`--nocapture`).
//!
//! Another scale factor, by one command (SF 0.1: about 30 s):
//! `PGT_TPCH_SF=0.1 cargo test -p pg_trickle_tests --test tpch -- --nocapture`

use pg_trickle_tests::tpch::{self, Q15_VIEW, QUERIES};
use pg_trickle_tests::TestDb;

const ROUNDS: i64 = 3;

#[test]
fn tpch_sf_0_01_the_22_queries_stay_exact_under_churn() {
    let sf: f64 = std::env::var("PGT_TPCH_SF")
        .ok()
        .map(|v| v.parse().expect("PGT_TPCH_SF is a number"))
        .unwrap_or(0.01);
    let mut db = TestDb::new("tpch");
    tpch::load(&mut db.client, sf);
    db.exec(Q15_VIEW);
    // DIFFERENTIAL where the engine maintains the query, else AUTO (FULL, the reason recorded).
    let mut differential = Vec::new();
    for (name, q) in QUERIES {
        let create = |mode: &str| {
            format!("SELECT pgtrickle.create_stream_table('{name}', $q${q}$q$, refresh_mode => '{mode}')")
        };
        if db.client.batch_execute(&create("DIFFERENTIAL")).is_ok() {
            differential.push(name);
        } else {
            db.exec(&create("AUTO"));
        }
    }
    for (name, q) in QUERIES {
        assert_eq!(db.oracle(name, q), (0, 0), "{name} after create");
    }
    let mut wrong = Vec::new();
    for round in 1..=ROUNDS {
        tpch::churn(&mut db.client, round, 10);
        for (name, q) in QUERIES {
            db.exec(&format!("SELECT pgtrickle.refresh_stream_table('{name}')"));
            let (missing, extra) = db.oracle(name, q);
            if (missing, extra) != (0, 0) {
                wrong.push(format!(
                    "{name} round {round}: {missing} missing, {extra} extra"
                ));
            }
        }
    }
    let report: Vec<String> = QUERIES
        .iter()
        .map(|(name, _)| {
            db.value::<String>(&format!(
                "SELECT '{name} ' || s.refresh_mode || ' ' || coalesce((SELECT string_agg(h.action, ',' ORDER BY h.refresh_id) \
                   FROM pgtrickle.pgt_refresh_history h WHERE h.pgt_id = st.pgt_id AND h.initiated_by = 'MANUAL'), '') \
                   || coalesce(' (' || st.plan_reason || ')', '') \
                   || coalesce(' [last: ' || (SELECT h.reason FROM pgtrickle.pgt_refresh_history h \
                        WHERE h.pgt_id = st.pgt_id AND h.initiated_by = 'MANUAL' ORDER BY h.refresh_id DESC LIMIT 1) || ']', '') \
                   FROM pgtrickle.pgt_status() s JOIN pgtrickle.pgt_stream_tables st ON st.pgt_relid = '{name}'::regclass \
                  WHERE s.name = 'public.{name}'"
            ))
        })
        .collect();
    eprintln!("{}", report.join("\n"));
    assert!(wrong.is_empty(), "not exact:\n{}", wrong.join("\n"));
    // What DIFFERENTIAL maintains today (a query leaving this list is a regression; one joining
    // it, progress to record here).
    assert_eq!(
        differential,
        [
            "q01", "q02", "q03", "q04", "q05", "q06", "q07", "q08", "q09", "q10", "q11", "q12",
            "q13", "q14", "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22"
        ]
    );
}
