//! TPC-H data for the benchmark script (`benches/tpch.sh`), on the test cluster:
//!
//!   tpch load  DATABASE SCALE_FACTOR          schema, data (tpchgen, COPY), indexes
//!   tpch churn DATABASE ROUND PER_MILLE       RF1, RF2 and updates of PER_MILLE ‰ of the orders
//!   tpch queries                              the 22 queries, one per line: name, tab, SQL
//!   tpch view                                 Q15's view (CREATE VIEW revenue0 ...)

use pg_trickle_tests::{connect, tpch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tpch load DATABASE SCALE_FACTOR | tpch churn DATABASE ROUND PER_MILLE | tpch queries | tpch view";
    match args.get(1).map(String::as_str) {
        Some("load") if args.len() == 4 => {
            let sf: f64 = args[3].parse().expect("SCALE_FACTOR is a number");
            let mut client = connect(&args[2]);
            tpch::load(&mut client, sf);
        }
        Some("churn") if args.len() == 5 => {
            let round: i64 = args[3].parse().expect("ROUND is an integer");
            let per_mille: i64 = args[4].parse().expect("PER_MILLE is an integer");
            let mut client = connect(&args[2]);
            tpch::churn(&mut client, round, per_mille);
        }
        Some("queries") => {
            for (name, sql) in tpch::QUERIES {
                println!(
                    "{name}\t{}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
        }
        Some("view") => println!("{}", tpch::Q15_VIEW),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
