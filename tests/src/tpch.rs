//! TPC-H for the integration tests and benchmarks: the schema (primary keys and the usual
//! indexes), data from the `tpchgen` generator (the library behind `tpchgen-cli`) loaded with
//! COPY, the 22 queries with the specification's validation parameters, and churn: RF1 (new
//! orders with their lineitems), RF2 (old orders and their lineitems deleted) and updates of
//! prices, discounts, balances and statuses.

use postgres::Client;
use std::io::Write;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};

/// The tables, their primary keys and the indexes the queries' joins use.
pub const SCHEMA: &str = "
CREATE TABLE region (r_regionkey int PRIMARY KEY, r_name char(25) NOT NULL, r_comment varchar(152));
CREATE TABLE nation (n_nationkey int PRIMARY KEY, n_name char(25) NOT NULL, n_regionkey int NOT NULL,
    n_comment varchar(152));
CREATE TABLE part (p_partkey int PRIMARY KEY, p_name varchar(55) NOT NULL, p_mfgr char(25) NOT NULL,
    p_brand char(10) NOT NULL, p_type varchar(25) NOT NULL, p_size int NOT NULL, p_container char(10) NOT NULL,
    p_retailprice numeric(15,2) NOT NULL, p_comment varchar(23) NOT NULL);
CREATE TABLE supplier (s_suppkey int PRIMARY KEY, s_name char(25) NOT NULL, s_address varchar(40) NOT NULL,
    s_nationkey int NOT NULL, s_phone char(15) NOT NULL, s_acctbal numeric(15,2) NOT NULL,
    s_comment varchar(101) NOT NULL);
CREATE TABLE partsupp (ps_partkey int NOT NULL, ps_suppkey int NOT NULL, ps_availqty int NOT NULL,
    ps_supplycost numeric(15,2) NOT NULL, ps_comment varchar(199) NOT NULL, PRIMARY KEY (ps_partkey, ps_suppkey));
CREATE TABLE customer (c_custkey int PRIMARY KEY, c_name varchar(25) NOT NULL, c_address varchar(40) NOT NULL,
    c_nationkey int NOT NULL, c_phone char(15) NOT NULL, c_acctbal numeric(15,2) NOT NULL,
    c_mktsegment char(10) NOT NULL, c_comment varchar(117) NOT NULL);
CREATE TABLE orders (o_orderkey bigint PRIMARY KEY, o_custkey int NOT NULL, o_orderstatus char(1) NOT NULL,
    o_totalprice numeric(15,2) NOT NULL, o_orderdate date NOT NULL, o_orderpriority char(15) NOT NULL,
    o_clerk char(15) NOT NULL, o_shippriority int NOT NULL, o_comment varchar(79) NOT NULL);
CREATE TABLE lineitem (l_orderkey bigint NOT NULL, l_partkey int NOT NULL, l_suppkey int NOT NULL,
    l_linenumber int NOT NULL, l_quantity numeric(15,2) NOT NULL, l_extendedprice numeric(15,2) NOT NULL,
    l_discount numeric(15,2) NOT NULL, l_tax numeric(15,2) NOT NULL, l_returnflag char(1) NOT NULL,
    l_linestatus char(1) NOT NULL, l_shipdate date NOT NULL, l_commitdate date NOT NULL,
    l_receiptdate date NOT NULL, l_shipinstruct char(25) NOT NULL, l_shipmode char(10) NOT NULL,
    l_comment varchar(44) NOT NULL, PRIMARY KEY (l_orderkey, l_linenumber));
";

/// Secondary indexes (after the load).
pub const INDEXES: &str = "
CREATE INDEX ON nation (n_regionkey);
CREATE INDEX ON supplier (s_nationkey);
CREATE INDEX ON customer (c_nationkey);
CREATE INDEX ON partsupp (ps_suppkey);
CREATE INDEX ON orders (o_custkey);
CREATE INDEX ON orders (o_orderdate);
CREATE INDEX ON lineitem (l_partkey, l_suppkey);
CREATE INDEX ON lineitem (l_suppkey);
CREATE INDEX ON lineitem (l_shipdate);
ANALYZE;
";

fn copy_rows<T: std::fmt::Display>(
    client: &mut Client,
    table: &str,
    rows: impl Iterator<Item = T>,
) {
    let mut w = client
        .copy_in(&format!("COPY {table} FROM STDIN (DELIMITER '|')"))
        .expect("COPY starts");
    for row in rows {
        // TBL lines end with the delimiter.
        let line = row.to_string();
        let line = line.strip_suffix('|').unwrap_or(&line);
        w.write_all(line.as_bytes()).expect("COPY data");
        w.write_all(b"\n").expect("COPY data");
    }
    w.finish().expect("COPY ends");
}

/// Creates the schema and loads the data of scale factor `sf`.
pub fn load(client: &mut Client, sf: f64) {
    client.batch_execute(SCHEMA).expect("TPC-H schema");
    copy_rows(client, "region", RegionGenerator::new(sf, 1, 1).iter());
    copy_rows(client, "nation", NationGenerator::new(sf, 1, 1).iter());
    copy_rows(client, "part", PartGenerator::new(sf, 1, 1).iter());
    copy_rows(client, "supplier", SupplierGenerator::new(sf, 1, 1).iter());
    copy_rows(client, "partsupp", PartSuppGenerator::new(sf, 1, 1).iter());
    copy_rows(client, "customer", CustomerGenerator::new(sf, 1, 1).iter());
    copy_rows(client, "orders", OrderGenerator::new(sf, 1, 1).iter());
    copy_rows(client, "lineitem", LineItemGenerator::new(sf, 1, 1).iter());
    client.batch_execute(INDEXES).expect("TPC-H indexes");
}

/// Q15's view (the specification creates it with the query).
pub const Q15_VIEW: &str = "CREATE VIEW revenue0 (supplier_no, total_revenue) AS
    SELECT l_suppkey, sum(l_extendedprice * (1 - l_discount)) FROM lineitem
     WHERE l_shipdate >= date '1996-01-01' AND l_shipdate < date '1996-01-01' + interval '3' month
     GROUP BY l_suppkey";

/// The 22 queries (validation parameters), as written in the specification, ORDER BY and LIMIT
/// kept.
pub const QUERIES: [(&str, &str); 22] = [
    ("q01", "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
        sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
        avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc, count(*) AS count_order
   FROM lineitem WHERE l_shipdate <= date '1998-12-01' - interval '90' day
  GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"),
    ("q02", "SELECT s_acctbal, s_name, n_name, p_partkey, p_mfgr, s_address, s_phone, s_comment
   FROM part, supplier, partsupp, nation, region
  WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey AND p_size = 15 AND p_type LIKE '%BRASS'
    AND s_nationkey = n_nationkey AND n_regionkey = r_regionkey AND r_name = 'EUROPE'
    AND ps_supplycost = (SELECT min(ps_supplycost) FROM partsupp, supplier, nation, region
                          WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey AND s_nationkey = n_nationkey
                            AND n_regionkey = r_regionkey AND r_name = 'EUROPE')
  ORDER BY s_acctbal DESC, n_name, s_name, p_partkey LIMIT 100"),
    ("q03", "SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate, o_shippriority
   FROM customer, orders, lineitem
  WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey
    AND o_orderdate < date '1995-03-15' AND l_shipdate > date '1995-03-15'
  GROUP BY l_orderkey, o_orderdate, o_shippriority ORDER BY revenue DESC, o_orderdate LIMIT 10"),
    ("q04", "SELECT o_orderpriority, count(*) AS order_count FROM orders
  WHERE o_orderdate >= date '1993-07-01' AND o_orderdate < date '1993-07-01' + interval '3' month
    AND EXISTS (SELECT * FROM lineitem WHERE l_orderkey = o_orderkey AND l_commitdate < l_receiptdate)
  GROUP BY o_orderpriority ORDER BY o_orderpriority"),
    ("q05", "SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue
   FROM customer, orders, lineitem, supplier, nation, region
  WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND l_suppkey = s_suppkey AND c_nationkey = s_nationkey
    AND s_nationkey = n_nationkey AND n_regionkey = r_regionkey AND r_name = 'ASIA'
    AND o_orderdate >= date '1994-01-01' AND o_orderdate < date '1994-01-01' + interval '1' year
  GROUP BY n_name ORDER BY revenue DESC"),
    ("q06", "SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
  WHERE l_shipdate >= date '1994-01-01' AND l_shipdate < date '1994-01-01' + interval '1' year
    AND l_discount BETWEEN 0.06 - 0.01 AND 0.06 + 0.01 AND l_quantity < 24"),
    ("q07", "SELECT supp_nation, cust_nation, l_year, sum(volume) AS revenue
   FROM (SELECT n1.n_name AS supp_nation, n2.n_name AS cust_nation, extract(year FROM l_shipdate) AS l_year,
                l_extendedprice * (1 - l_discount) AS volume
           FROM supplier, lineitem, orders, customer, nation n1, nation n2
          WHERE s_suppkey = l_suppkey AND o_orderkey = l_orderkey AND c_custkey = o_custkey
            AND s_nationkey = n1.n_nationkey AND c_nationkey = n2.n_nationkey
            AND ((n1.n_name = 'FRANCE' AND n2.n_name = 'GERMANY') OR (n1.n_name = 'GERMANY' AND n2.n_name = 'FRANCE'))
            AND l_shipdate BETWEEN date '1995-01-01' AND date '1996-12-31') AS shipping
  GROUP BY supp_nation, cust_nation, l_year ORDER BY supp_nation, cust_nation, l_year"),
    ("q08", "SELECT o_year, sum(CASE WHEN nation = 'BRAZIL' THEN volume ELSE 0 END) / sum(volume) AS mkt_share
   FROM (SELECT extract(year FROM o_orderdate) AS o_year, l_extendedprice * (1 - l_discount) AS volume, n2.n_name AS nation
           FROM part, supplier, lineitem, orders, customer, nation n1, nation n2, region
          WHERE p_partkey = l_partkey AND s_suppkey = l_suppkey AND l_orderkey = o_orderkey AND o_custkey = c_custkey
            AND c_nationkey = n1.n_nationkey AND n1.n_regionkey = r_regionkey AND r_name = 'AMERICA'
            AND s_nationkey = n2.n_nationkey AND o_orderdate BETWEEN date '1995-01-01' AND date '1996-12-31'
            AND p_type = 'ECONOMY ANODIZED STEEL') AS all_nations
  GROUP BY o_year ORDER BY o_year"),
    ("q09", "SELECT nation, o_year, sum(amount) AS sum_profit
   FROM (SELECT n_name AS nation, extract(year FROM o_orderdate) AS o_year,
                l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity AS amount
           FROM part, supplier, lineitem, partsupp, orders, nation
          WHERE s_suppkey = l_suppkey AND ps_suppkey = l_suppkey AND ps_partkey = l_partkey AND p_partkey = l_partkey
            AND o_orderkey = l_orderkey AND s_nationkey = n_nationkey AND p_name LIKE '%green%') AS profit
  GROUP BY nation, o_year ORDER BY nation, o_year DESC"),
    ("q10", "SELECT c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) AS revenue, c_acctbal, n_name, c_address, c_phone, c_comment
   FROM customer, orders, lineitem, nation
  WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND o_orderdate >= date '1993-10-01'
    AND o_orderdate < date '1993-10-01' + interval '3' month AND l_returnflag = 'R' AND c_nationkey = n_nationkey
  GROUP BY c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment ORDER BY revenue DESC LIMIT 20"),
    ("q11", "SELECT ps_partkey, sum(ps_supplycost * ps_availqty) AS value
   FROM partsupp, supplier, nation
  WHERE ps_suppkey = s_suppkey AND s_nationkey = n_nationkey AND n_name = 'GERMANY'
  GROUP BY ps_partkey
 HAVING sum(ps_supplycost * ps_availqty) > (SELECT sum(ps_supplycost * ps_availqty) * 0.0001
                                              FROM partsupp, supplier, nation
                                             WHERE ps_suppkey = s_suppkey AND s_nationkey = n_nationkey AND n_name = 'GERMANY')
  ORDER BY value DESC"),
    ("q12", "SELECT l_shipmode,
        sum(CASE WHEN o_orderpriority = '1-URGENT' OR o_orderpriority = '2-HIGH' THEN 1 ELSE 0 END) AS high_line_count,
        sum(CASE WHEN o_orderpriority <> '1-URGENT' AND o_orderpriority <> '2-HIGH' THEN 1 ELSE 0 END) AS low_line_count
   FROM orders, lineitem
  WHERE o_orderkey = l_orderkey AND l_shipmode IN ('MAIL', 'SHIP') AND l_commitdate < l_receiptdate
    AND l_shipdate < l_commitdate AND l_receiptdate >= date '1994-01-01' AND l_receiptdate < date '1994-01-01' + interval '1' year
  GROUP BY l_shipmode ORDER BY l_shipmode"),
    ("q13", "SELECT c_count, count(*) AS custdist
   FROM (SELECT c_custkey, count(o_orderkey)
           FROM customer LEFT OUTER JOIN orders ON c_custkey = o_custkey AND o_comment NOT LIKE '%special%requests%'
          GROUP BY c_custkey) AS c_orders (c_custkey, c_count)
  GROUP BY c_count ORDER BY custdist DESC, c_count DESC"),
    ("q14", "SELECT 100.00 * sum(CASE WHEN p_type LIKE 'PROMO%' THEN l_extendedprice * (1 - l_discount) ELSE 0 END)
        / sum(l_extendedprice * (1 - l_discount)) AS promo_revenue
   FROM lineitem, part
  WHERE l_partkey = p_partkey AND l_shipdate >= date '1995-09-01' AND l_shipdate < date '1995-09-01' + interval '1' month"),
    ("q15", "SELECT s_suppkey, s_name, s_address, s_phone, total_revenue FROM supplier, revenue0
  WHERE s_suppkey = supplier_no AND total_revenue = (SELECT max(total_revenue) FROM revenue0)
  ORDER BY s_suppkey"),
    ("q16", "SELECT p_brand, p_type, p_size, count(DISTINCT ps_suppkey) AS supplier_cnt
   FROM partsupp, part
  WHERE p_partkey = ps_partkey AND p_brand <> 'Brand#45' AND p_type NOT LIKE 'MEDIUM POLISHED%'
    AND p_size IN (49, 14, 23, 45, 19, 3, 36, 9)
    AND ps_suppkey NOT IN (SELECT s_suppkey FROM supplier WHERE s_comment LIKE '%Customer%Complaints%')
  GROUP BY p_brand, p_type, p_size ORDER BY supplier_cnt DESC, p_brand, p_type, p_size"),
    ("q17", "SELECT sum(l_extendedprice) / 7.0 AS avg_yearly FROM lineitem, part
  WHERE p_partkey = l_partkey AND p_brand = 'Brand#23' AND p_container = 'MED BOX'
    AND l_quantity < (SELECT 0.2 * avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)"),
    ("q18", "SELECT c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity) AS sum_qty
   FROM customer, orders, lineitem
  WHERE o_orderkey IN (SELECT l_orderkey FROM lineitem GROUP BY l_orderkey HAVING sum(l_quantity) > 300)
    AND c_custkey = o_custkey AND o_orderkey = l_orderkey
  GROUP BY c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice
  ORDER BY o_totalprice DESC, o_orderdate LIMIT 100"),
    ("q19", "SELECT sum(l_extendedprice * (1 - l_discount)) AS revenue FROM lineitem, part
  WHERE (p_partkey = l_partkey AND p_brand = 'Brand#12' AND p_container IN ('SM CASE', 'SM BOX', 'SM PACK', 'SM PKG')
         AND l_quantity >= 1 AND l_quantity <= 1 + 10 AND p_size BETWEEN 1 AND 5
         AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')
     OR (p_partkey = l_partkey AND p_brand = 'Brand#23' AND p_container IN ('MED BAG', 'MED BOX', 'MED PKG', 'MED PACK')
         AND l_quantity >= 10 AND l_quantity <= 10 + 10 AND p_size BETWEEN 1 AND 10
         AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')
     OR (p_partkey = l_partkey AND p_brand = 'Brand#34' AND p_container IN ('LG CASE', 'LG BOX', 'LG PACK', 'LG PKG')
         AND l_quantity >= 20 AND l_quantity <= 20 + 10 AND p_size BETWEEN 1 AND 15
         AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')"),
    ("q20", "SELECT s_name, s_address FROM supplier, nation
  WHERE s_suppkey IN (SELECT ps_suppkey FROM partsupp
                       WHERE ps_partkey IN (SELECT p_partkey FROM part WHERE p_name LIKE 'forest%')
                         AND ps_availqty > (SELECT 0.5 * sum(l_quantity) FROM lineitem
                                             WHERE l_partkey = ps_partkey AND l_suppkey = ps_suppkey
                                               AND l_shipdate >= date '1994-01-01' AND l_shipdate < date '1994-01-01' + interval '1' year))
    AND s_nationkey = n_nationkey AND n_name = 'CANADA'
  ORDER BY s_name"),
    ("q21", "SELECT s_name, count(*) AS numwait FROM supplier, lineitem l1, orders, nation
  WHERE s_suppkey = l1.l_suppkey AND o_orderkey = l1.l_orderkey AND o_orderstatus = 'F'
    AND l1.l_receiptdate > l1.l_commitdate
    AND EXISTS (SELECT * FROM lineitem l2 WHERE l2.l_orderkey = l1.l_orderkey AND l2.l_suppkey <> l1.l_suppkey)
    AND NOT EXISTS (SELECT * FROM lineitem l3 WHERE l3.l_orderkey = l1.l_orderkey AND l3.l_suppkey <> l1.l_suppkey
                       AND l3.l_receiptdate > l3.l_commitdate)
    AND s_nationkey = n_nationkey AND n_name = 'SAUDI ARABIA'
  GROUP BY s_name ORDER BY numwait DESC, s_name LIMIT 100"),
    ("q22", "SELECT cntrycode, count(*) AS numcust, sum(c_acctbal) AS totacctbal
   FROM (SELECT substring(c_phone FROM 1 FOR 2) AS cntrycode, c_acctbal FROM customer
          WHERE substring(c_phone FROM 1 FOR 2) IN ('13', '31', '23', '29', '30', '18', '17')
            AND c_acctbal > (SELECT avg(c_acctbal) FROM customer WHERE c_acctbal > 0.00
                               AND substring(c_phone FROM 1 FOR 2) IN ('13', '31', '23', '29', '30', '18', '17'))
            AND NOT EXISTS (SELECT * FROM orders WHERE o_custkey = c_custkey)) AS custsale
  GROUP BY cntrycode ORDER BY cntrycode"),
];

/// One round of churn, about `per_mille` ‰ of the orders (at least one), deterministic in
/// `round`: RF1 inserts new orders (copies of existing ones under new keys, with their
/// lineitems), RF2 deletes as many old orders with their lineitems, and updates change prices,
/// discounts, quantities, dates and statuses of lineitems and orders, balances of customers and
/// suppliers, supply costs and part prices (rows moving in and out of the queries' filters,
/// groups and join partners).
pub fn churn(client: &mut Client, round: i64, per_mille: i64) {
    let orders: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .unwrap()
        .get(0);
    let n = (orders * per_mille / 1000).max(1);
    let sql = format!(
        "BEGIN;
         -- RF1: new orders, copies of n existing ones under keys above every key so far.
         CREATE TEMP TABLE rf1 ON COMMIT DROP AS
           SELECT o_orderkey AS old_key, (SELECT max(o_orderkey) FROM orders) + row_number() OVER (ORDER BY o_orderkey) AS new_key
             FROM orders WHERE (o_orderkey * 7919 + {round}) % {orders} < {n} ORDER BY o_orderkey LIMIT {n};
         INSERT INTO orders SELECT r.new_key, o_custkey, o_orderstatus, o_totalprice, o_orderdate + ({round} % 30),
                o_orderpriority, o_clerk, o_shippriority, o_comment
           FROM orders JOIN rf1 r ON r.old_key = o_orderkey;
         INSERT INTO lineitem SELECT r.new_key, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount,
                l_tax, l_returnflag, l_linestatus, l_shipdate + ({round} % 30), l_commitdate, l_receiptdate + ({round} % 30),
                l_shipinstruct, l_shipmode, l_comment
           FROM lineitem JOIN rf1 r ON r.old_key = l_orderkey;
         -- RF2: n old orders go, with their lineitems.
         CREATE TEMP TABLE rf2 ON COMMIT DROP AS
           SELECT o_orderkey FROM orders WHERE (o_orderkey * 104729 + {round}) % {orders} < {n}
              AND o_orderkey NOT IN (SELECT new_key FROM rf1) ORDER BY o_orderkey LIMIT {n};
         DELETE FROM lineitem WHERE l_orderkey IN (SELECT o_orderkey FROM rf2);
         DELETE FROM orders WHERE o_orderkey IN (SELECT o_orderkey FROM rf2);
         COMMIT;
         -- Updates, each its own transaction.
         UPDATE lineitem SET l_extendedprice = l_extendedprice * 1.01, l_discount = (l_discount + 0.01) % 0.11,
                l_quantity = l_quantity % 50 + 1
          WHERE (l_orderkey * 31 + l_linenumber + {round}) % 1000 < {per_mille};
         UPDATE lineitem SET l_shipdate = l_shipdate + 40, l_receiptdate = l_receiptdate - 3, l_returnflag = 'R'
          WHERE (l_orderkey * 17 + l_linenumber + {round}) % 1000 < {per_mille};
         UPDATE orders SET o_orderstatus = CASE o_orderstatus WHEN 'F' THEN 'O' ELSE 'F' END,
                o_orderdate = o_orderdate - 100, o_totalprice = o_totalprice + 1
          WHERE (o_orderkey * 13 + {round}) % 1000 < {per_mille};
         UPDATE customer SET c_acctbal = c_acctbal + 500 - ({round} % 3) * 400, c_mktsegment = 'BUILDING'
          WHERE (c_custkey * 7 + {round}) % 1000 < {per_mille} * 3;
         UPDATE supplier SET s_acctbal = s_acctbal - 100 WHERE (s_suppkey + {round}) % 50 = 0;
         UPDATE partsupp SET ps_supplycost = ps_supplycost * 0.9, ps_availqty = ps_availqty + 1000
          WHERE (ps_partkey * 3 + ps_suppkey + {round}) % 1000 < {per_mille} * 3;
         UPDATE part SET p_retailprice = p_retailprice + 1, p_size = (p_size % 50) + 1
          WHERE (p_partkey + {round}) % 1000 < {per_mille} * 3;"
    );
    client.batch_execute(&sql).expect("TPC-H churn");
}
