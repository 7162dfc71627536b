//! The oracle's corpus: the query shapes the tier-3 oracle maintains and checks, and the schema
//! they read. The golden plan tests (tier 1) plan the same shapes.

/// Shapes over `items` (primary key) and `bag` (no key, duplicates).
pub const SHAPES: &[&str] = &[
    "SELECT * FROM items",
    "SELECT id, val FROM items WHERE val > 50",
    "SELECT id, grp, val * qty AS total FROM items WHERE flag",
    "SELECT id, COALESCE(grp, 'none') AS g, CASE WHEN val > 50 THEN 'hi' ELSE 'lo' END AS band FROM items",
    "SELECT i.id, i.val::int AS v, upper(i.note) AS n FROM items i WHERE i.note IS NOT NULL",
    "SELECT id, grp FROM items WHERE grp IS NULL",
    "SELECT grp, count(*) AS n FROM items GROUP BY grp",
    "SELECT grp, count(val) AS n, sum(val) AS s, avg(val) AS a FROM items GROUP BY grp",
    "SELECT grp, min(val) AS lo, max(val) AS hi FROM items GROUP BY grp",
    "SELECT grp, sub, count(*) AS n, sum(qty) AS q, avg(qty) AS aq FROM items GROUP BY grp, sub",
    "SELECT count(*) AS n, sum(val) AS s, min(val) AS lo, max(val) AS hi, avg(qty) AS a FROM items",
    "SELECT grp, count(*) FILTER (WHERE flag) AS f, sum(val) FILTER (WHERE qty > 5) AS s FROM items GROUP BY grp",
    "SELECT grp, count(*) AS n FROM items GROUP BY grp HAVING count(*) > 3",
    "SELECT grp, sum(val) AS s FROM items GROUP BY grp HAVING sum(val) > 200",
    "SELECT grp, string_agg(note, ',' ORDER BY note, id) AS notes FROM items GROUP BY grp",
    "SELECT grp, array_agg(id ORDER BY id) AS ids FROM items GROUP BY grp",
    "SELECT grp, count(DISTINCT sub) AS subs FROM items GROUP BY grp",
    "SELECT grp, bool_and(flag) AS all_f, bool_or(flag) AS any_f FROM items GROUP BY grp",
    "SELECT grp, stddev(qty) AS sd, var_pop(qty) AS vp FROM items GROUP BY grp",
    // (regr_slope over small integers lands exactly on rounding boundaries, where the order of
    // float accumulation decides the last digit: the query itself is not deterministic there.)
    "SELECT grp, round(corr(qty, val)::numeric, 8) AS c, round(stddev_samp(val), 8) AS s FROM items GROUP BY grp",
    "SELECT lower(grp) AS g, count(*) AS n, max(note) AS m FROM items GROUP BY lower(grp)",
    "SELECT DISTINCT grp FROM items",
    "SELECT DISTINCT grp, flag FROM items",
    "SELECT grp, ROUND(AVG(val), 2) AS a, COALESCE(SUM(val), 0) AS s FROM items WHERE val IS NOT NULL GROUP BY grp",
    "SELECT sub, count(*) AS n, min(note) AS first_note FROM items WHERE grp IN ('a', 'b') GROUP BY sub",
    "SELECT grp, sum(f) AS sf, avg(f) AS af, min(f) AS mf FROM items GROUP BY grp",
    "SELECT grp, count(*) AS n FROM items WHERE note LIKE '%x%' GROUP BY grp HAVING max(val) > 10",
    "SELECT grp, count(*) AS n, sum(val) AS s FROM bag GROUP BY grp",
    "SELECT DISTINCT grp, val FROM bag",
    "SELECT count(*) AS n, sum(val) AS s, max(note) AS m FROM bag",
    "SELECT grp, count(*) AS n FROM bag WHERE val IS NULL OR val < 5 GROUP BY 1",
    // No primary key, no aggregation: a multiset whose duplicates are counted.
    "SELECT * FROM bag",
    "SELECT grp, val + 1 AS v1 FROM bag WHERE val IS NULL OR val > 2",
    "SELECT note FROM bag",
    // Two-table inner joins (both sides change in every round).
    "SELECT i.id, i.val, c.label FROM items i JOIN cat c ON c.code = i.grp",
    "SELECT i.id, c.code FROM items i, cat c WHERE c.code = i.grp AND c.weight > 2",
    "SELECT c.label, count(*) AS n, sum(i.val) AS s, avg(i.qty) AS q FROM items i JOIN cat c ON c.code = i.grp GROUP BY c.label",
    "SELECT c.code, min(i.val) AS lo, max(i.val) AS hi FROM items i JOIN cat c ON i.grp = c.code GROUP BY c.code HAVING count(*) > 1",
    "SELECT DISTINCT c.label FROM items i JOIN cat c ON c.code = i.grp",
    "SELECT b.val, c.label FROM bag b JOIN cat c ON c.code = b.grp",
    "SELECT i.id, j.id AS other FROM items i JOIN items j ON j.sub = i.sub AND j.id < i.id WHERE i.grp = 'a'",
    "SELECT count(*) AS n, sum(c.weight) AS w FROM items i JOIN cat c ON c.code = i.grp",
    "SELECT i.grp, count(*) AS n FROM items i JOIN cat c ON c.weight > i.qty GROUP BY i.grp",
    "SELECT * FROM cat c JOIN items i ON i.grp = c.code WHERE i.flag",
    // Outer joins: NULL-extended rows come and go with their partners.
    "SELECT c.code, c.label, i.id, i.val FROM cat c LEFT JOIN items i ON i.grp = c.code",
    "SELECT i.id, i.grp, c.label FROM items i LEFT JOIN cat c ON c.code = i.grp",
    "SELECT c.code, count(i.id) AS n, COALESCE(sum(i.val), 0) AS s, sum(i.val) AS raw, avg(i.val) AS a FROM cat c LEFT JOIN items i ON i.grp = c.code GROUP BY c.code",
    "SELECT i.id, c.code FROM cat c RIGHT JOIN items i ON c.code = i.grp AND c.weight > 3",
    "SELECT c.code, i.id FROM cat c FULL JOIN items i ON i.grp = c.code AND i.flag",
    "SELECT b.grp, b.val, c.label FROM bag b LEFT JOIN cat c ON c.code = b.grp",
    "SELECT c.code FROM cat c LEFT JOIN items i ON i.grp = c.code WHERE i.id IS NULL",
    "SELECT COALESCE(c.label, 'none') AS l, count(*) AS n, min(i.val) AS lo, max(c.weight) AS w FROM items i LEFT JOIN cat c ON c.code = i.grp AND i.flag GROUP BY 1",
    "SELECT DISTINCT c.label, i.grp FROM cat c FULL OUTER JOIN items i ON c.code = i.grp",
    "SELECT i.id, j.id AS peer FROM items i LEFT JOIN items j ON j.sub = i.qty AND j.grp = i.grp",
    "SELECT c.label, count(b.val) AS n, sum(b.val) AS s FROM cat c LEFT JOIN bag b ON b.grp = c.code GROUP BY c.label",
    // Non-recursive CTEs and subqueries in FROM, inlined.
    "WITH big AS (SELECT id, grp, val FROM items WHERE val > 50) SELECT grp, count(*) AS n, sum(val) AS s FROM big GROUP BY grp",
    "SELECT s.id, s.v2 FROM (SELECT id, val * 2 AS v2 FROM items WHERE flag) s WHERE s.v2 > 20",
    "WITH a AS (SELECT * FROM items WHERE qty > 2) SELECT a.id, c.label FROM a JOIN cat c ON c.code = a.grp",
    "WITH a AS (SELECT id, grp, sub FROM items WHERE val IS NOT NULL) SELECT x.id, y.id AS other FROM a x JOIN a y ON x.sub = y.sub AND x.id < y.id",
    "SELECT c.code, count(f.id) AS n FROM cat c LEFT JOIN (SELECT id, grp FROM items WHERE flag) f ON f.grp = c.code GROUP BY c.code",
    "SELECT * FROM (SELECT grp, val FROM bag WHERE val > 3) b",
    "WITH t AS (SELECT id, upper(grp) AS g FROM items), u AS (SELECT id, g FROM t WHERE g <> 'B') SELECT DISTINCT g FROM u",
    // EXISTS / NOT EXISTS / IN subqueries: semi- and anti-joins.
    "SELECT i.id, i.val FROM items i WHERE EXISTS (SELECT 1 FROM cat c WHERE c.code = i.grp AND c.weight > 2)",
    "SELECT i.id FROM items i WHERE NOT EXISTS (SELECT 1 FROM cat c WHERE c.code = i.grp)",
    "SELECT grp, count(*) AS n FROM items WHERE grp IN (SELECT code FROM cat WHERE weight < 6) GROUP BY grp",
    "SELECT c.code, c.label FROM cat c WHERE EXISTS (SELECT 1 FROM items i WHERE i.grp = c.code AND i.flag)",
    "SELECT c.code FROM cat c WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.grp = c.code AND i.val > 50)",
    "SELECT b.grp, b.val FROM bag b WHERE b.grp IN (SELECT code FROM cat)",
    "SELECT id FROM items i WHERE (grp, sub) IN (SELECT code, weight % 3 FROM cat)",
    "SELECT i.id FROM items i WHERE i.val > 10 AND EXISTS (SELECT 1 FROM items j WHERE j.grp = i.grp AND j.qty > 7)",
    // EXISTS / NOT EXISTS / IN next to joins.
    "SELECT i.id, c.label FROM items i JOIN cat c ON c.code = i.grp WHERE EXISTS (SELECT 1 FROM bag b WHERE b.grp = i.grp AND b.val > 1)",
    "SELECT i.id, c.code FROM items i LEFT JOIN cat c ON c.code = i.grp WHERE NOT EXISTS (SELECT 1 FROM bag b WHERE b.grp = c.code)",
    "SELECT c.weight, count(*) AS n FROM items i JOIN cat c ON c.code = i.grp WHERE i.sub IN (SELECT val FROM bag) GROUP BY c.weight",
    // NOT IN (subquery), with SQL's NULL semantics (NULLs on both sides).
    "SELECT i.id, i.grp FROM items i WHERE i.grp NOT IN (SELECT b.grp FROM bag b WHERE b.val > 1)",
    // Bare columns on the left of [NOT] IN in a join: the one joined table with that column.
    "SELECT id, label FROM items i JOIN cat c ON c.code = i.grp WHERE sub IN (SELECT val FROM bag)",
    "SELECT id, weight FROM items i JOIN cat c ON c.code = i.grp WHERE weight NOT IN (SELECT val FROM bag WHERE val > 1)",
    "SELECT c.code FROM cat c WHERE c.code NOT IN (SELECT grp FROM items WHERE flag)",
    "SELECT i.id FROM items i WHERE i.sub NOT IN (SELECT weight FROM cat WHERE weight > 4)",
    "SELECT id FROM items WHERE sub NOT IN (SELECT qty FROM items WHERE flag)",
    "SELECT c.code FROM cat c WHERE COALESCE(c.weight NOT IN (SELECT b.val FROM bag b), true)",
    "SELECT c.code, (SELECT json_agg(i.id ORDER BY i.id) FROM items i WHERE i.grp = c.code) AS ids FROM cat c",
    // Joins of three and four tables.
    "SELECT i.id, c.label, b.note FROM items i JOIN cat c ON c.code = i.grp JOIN bag b ON b.grp = i.grp",
    "SELECT c.label, count(*) AS n, sum(i.val) AS s FROM items i JOIN cat c ON c.code = i.grp JOIN items j ON j.sub = i.sub AND j.id < i.id GROUP BY c.label",
    "SELECT i.id, c.code, k.code AS k2 FROM items i, cat c, cat k WHERE c.code = i.grp AND k.weight = c.weight",
    "SELECT c.code, count(*) AS n FROM cat c JOIN items i ON i.grp = c.code JOIN bag b ON b.val = i.qty JOIN cat k ON k.code = b.grp GROUP BY c.code",
    // LEFT JOINs in joins of three and four tables.
    "SELECT i.id, c.label, b.note FROM items i JOIN cat c ON c.code = i.grp LEFT JOIN bag b ON b.grp = c.code AND b.val > 1",
    "SELECT i.id, c.label, k.label AS l2 FROM items i LEFT JOIN cat c ON c.code = i.grp LEFT JOIN cat k ON k.weight = c.weight + 2",
    "SELECT c.code, count(b.val) AS n, sum(i.val) AS s FROM cat c LEFT JOIN items i ON i.grp = c.code LEFT JOIN bag b ON b.grp = i.grp GROUP BY c.code",
    "SELECT i.id, c.code, j.id AS j FROM items i LEFT JOIN cat c ON c.code = i.grp JOIN items j ON j.sub = i.sub AND j.id <> i.id",
    "SELECT i.id, c.label, b.val FROM items i LEFT JOIN cat c ON c.code = i.grp JOIN bag b ON b.grp = c.code",
    "SELECT i.id, c.label, k.code AS k2, b.val FROM items i LEFT JOIN cat c ON c.code = i.grp AND i.flag LEFT JOIN cat k ON k.code = i.grp AND k.weight > 2 LEFT JOIN bag b ON b.grp = k.code",
    "SELECT i.id, c.code, b.val FROM items i JOIN cat c ON c.code = i.grp RIGHT JOIN bag b ON b.grp = c.code",
    "SELECT i.id, c.label, k.code AS k2 FROM items i LEFT JOIN cat c ON c.code = i.grp FULL JOIN cat k ON k.code = i.grp AND k.weight > 2",
    "SELECT c.code, count(i.id) AS n, count(b.val) AS nb FROM items i JOIN bag b ON b.grp = i.grp RIGHT JOIN cat c ON c.code = i.grp GROUP BY c.code",
    "SELECT b.val, i.id, c.code FROM bag b FULL JOIN items i ON i.grp = b.grp AND i.flag FULL JOIN cat c ON c.code = i.grp",
    // UNION ALL (a multiset) and UNION.
    "SELECT id, grp FROM items WHERE val > 50 UNION ALL SELECT id, grp FROM items WHERE qty < 3",
    "SELECT grp FROM items UNION SELECT code FROM cat",
    "SELECT i.id, c.label FROM items i JOIN cat c ON c.code = i.grp UNION ALL SELECT b.val, b.note FROM bag b",
    "SELECT grp, val FROM bag UNION ALL SELECT grp, val::int FROM items WHERE flag",
    "SELECT code AS k FROM cat WHERE weight > 3 UNION SELECT grp FROM items WHERE NOT flag",
    // INTERSECT / EXCEPT: hidden side counts, plain SELECT shows only the query's rows.
    "SELECT grp FROM items WHERE flag INTERSECT SELECT code FROM cat WHERE weight > 2",
    "SELECT code FROM cat EXCEPT SELECT grp FROM items WHERE val > 40",
    "SELECT grp, val FROM bag INTERSECT SELECT grp, qty FROM items",
    // INTERSECT ALL / EXCEPT ALL: multisets, NULLs equal.
    "SELECT grp, val FROM bag INTERSECT ALL SELECT grp, qty FROM items",
    "SELECT grp FROM items EXCEPT ALL SELECT grp FROM bag",
    "SELECT grp FROM bag EXCEPT ALL SELECT code FROM cat WHERE weight > 3",
    "SELECT i.grp, c.weight FROM items i JOIN cat c ON c.code = i.grp INTERSECT ALL SELECT grp, qty FROM items WHERE flag",
    // Scalar subqueries, correlated or not, in WHERE and in the select list.
    "SELECT i.id, i.val FROM items i WHERE i.val > (SELECT avg(val) FROM items WHERE flag)",
    "SELECT i.id, i.val FROM items i WHERE i.val >= (SELECT max(j.val) FROM items j WHERE j.grp = i.grp)",
    "SELECT c.code, c.label, (SELECT count(*) FROM items i WHERE i.grp = c.code) AS n, (SELECT sum(val) FROM items WHERE grp = c.code AND flag) AS s FROM cat c",
    "SELECT c.code FROM cat c WHERE (SELECT count(*) FROM items i WHERE i.grp = c.code AND i.qty > 3) = 0",
    "SELECT grp, count(*) AS n, sum(val) AS s FROM items i WHERE i.qty < (SELECT 0.8 * avg(qty) FROM items j WHERE j.sub = i.sub) GROUP BY grp",
    "SELECT b.grp, b.val FROM bag b WHERE b.val <= (SELECT min(weight) FROM cat WHERE code = b.grp)",
    "SELECT i.id, c.label FROM items i JOIN cat c ON c.code = i.grp WHERE i.val > (SELECT avg(j.val) FROM items j WHERE j.grp = c.code)",
    "SELECT c.code, (SELECT string_agg(note, ',' ORDER BY note) FROM bag WHERE bag.grp = c.code) AS notes FROM cat c",
    "SELECT i.id FROM items i WHERE i.val > (SELECT avg(j.val) FROM items j WHERE j.grp = i.grp AND j.sub = i.sub)",
    // The outer WHERE's own conditions on the key's table scope the keys a refresh recomputes
    // (rows moving in and out of that scope while the subquery's table changes).
    "SELECT i.id, i.val FROM items i WHERE i.flag AND i.qty > 2 AND i.val >= (SELECT max(j.val) FROM items j WHERE j.grp = i.grp)",
    "SELECT sum(i.val) AS s, count(*) AS n FROM items i JOIN cat c ON c.code = i.grp WHERE c.weight < 5 AND i.qty < (SELECT 0.8 * avg(j.qty) FROM items j WHERE j.grp = c.code)",
    "SELECT c.code, t.n FROM cat c JOIN (SELECT grp, count(*) AS n FROM items GROUP BY grp) t ON t.grp = c.code WHERE c.weight > 3",
    "SELECT c.code, t.tq FROM cat c JOIN (SELECT grp, sum(qty) AS tq FROM items GROUP BY grp) t ON t.grp = c.code WHERE c.weight > 3 AND tq > 10",
    // Subqueries in FROM and WITH queries that aggregate, joined by their GROUP BY columns.
    "SELECT c.code, c.label, t.n, t.s FROM cat c JOIN (SELECT grp, count(*) AS n, sum(val) AS s FROM items WHERE flag GROUP BY grp) t ON t.grp = c.code",
    "WITH g AS (SELECT grp, max(val) AS mx FROM items GROUP BY grp HAVING count(*) > 2) SELECT i.id, i.val FROM items i JOIN g ON g.grp = i.grp WHERE i.val = g.mx",
    "SELECT c.weight, count(*) AS n, sum(t.total) AS s FROM cat c, (SELECT grp, sum(qty) AS total FROM items GROUP BY grp) t WHERE t.grp = c.code GROUP BY c.weight",
    "SELECT b.val, t.cnt FROM bag b JOIN (SELECT grp, count(*) AS cnt FROM bag GROUP BY grp) t ON t.grp = b.grp",
    "SELECT i.id, t.n FROM items i JOIN (SELECT grp, sub, count(*) AS n FROM items GROUP BY grp, sub) t ON t.grp = i.grp AND t.sub = i.sub",
    "SELECT i.id FROM items i, (SELECT avg(val) AS a FROM items) m WHERE i.val > m.a",
    // A subquery in FROM that joins tables (or has a subquery inside), the outer query's only
    // FROM item: hoisted into the outer query.
    "SELECT g, sum(v) AS s, count(*) AS n FROM (SELECT c.label AS g, i.val * i.qty AS v FROM items i JOIN cat c ON c.code = i.grp WHERE i.flag) AS x GROUP BY g",
    "SELECT w, count(*) AS n FROM (SELECT c.weight AS w, i.id FROM items i, cat c WHERE c.code = i.grp) s WHERE w > 2 GROUP BY w",
    "SELECT s.id, s.label FROM (SELECT i.id, c.label FROM items i LEFT JOIN cat c ON c.code = i.grp) s WHERE s.id > 5",
    "SELECT code, count(*) AS n FROM (SELECT c.code FROM cat c WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.grp = c.code AND i.flag)) s GROUP BY code",
    // IN over a subquery grouped by its one output: a join with it (HAVING), or a semi-join.
    "SELECT i.id, i.val FROM items i WHERE i.grp IN (SELECT b.grp FROM bag b GROUP BY b.grp HAVING count(*) > 2)",
    "SELECT c.code, count(*) AS n FROM cat c, items i WHERE c.code = i.grp AND i.id IN (SELECT j.id FROM items j GROUP BY j.id HAVING max(j.qty) > 3) GROUP BY c.code",
    "SELECT id FROM items WHERE grp IN (SELECT DISTINCT grp FROM bag)",
    // TopK (keys that order the rows totally, or ties of identical rows: the query's answer is
    // then one set of rows). Rows that enter and leave the top, the boundary row deleted, groups
    // whose rank changes, NULL keys first and last.
    "SELECT id, val FROM items ORDER BY val DESC NULLS LAST, id LIMIT 5",
    "SELECT id, grp FROM items WHERE flag ORDER BY qty, id DESC LIMIT 3 OFFSET 2",
    "SELECT grp, sum(val) AS s, count(*) AS n FROM items GROUP BY grp ORDER BY s DESC NULLS FIRST, grp NULLS FIRST LIMIT 2",
    "SELECT grp, count(*) AS n FROM items GROUP BY grp ORDER BY max(val) DESC NULLS LAST, grp LIMIT 2",
    "SELECT grp, count(*) AS n FROM items GROUP BY grp ORDER BY n DESC FETCH FIRST 2 ROWS WITH TIES",
    "SELECT b.grp, b.val FROM bag b ORDER BY b.val NULLS FIRST, b.grp LIMIT 4",
    "SELECT i.id, c.label FROM items i JOIN cat c ON c.code = i.grp ORDER BY c.weight DESC, i.id LIMIT 3",
    "SELECT DISTINCT grp FROM items ORDER BY 1 DESC NULLS LAST LIMIT 2 OFFSET 1",
    // Internal stream tables (`nest`): an aggregate over an aggregating outer join, a correlated
    // scalar subquery over a join, a subquery in HAVING, EXISTS/NOT EXISTS correlated by `<>`
    // (on a column with NULLs too), IN with a scalar subquery inside next to a scalar
    // subquery, a view read twice, duplicates grouped twice, IN next to EXISTS.
    "SELECT n, count(*) AS c FROM (SELECT c.code, count(i.id) AS n FROM cat c LEFT JOIN items i ON i.grp = c.code GROUP BY c.code) x GROUP BY n",
    "SELECT i.id, i.val FROM items i WHERE i.val = (SELECT max(j.val) FROM items j JOIN cat c ON c.code = j.grp WHERE c.weight > 2 AND j.grp = i.grp)",
    "SELECT grp, sum(qty) AS s FROM items GROUP BY grp HAVING sum(qty) > (SELECT avg(j.qty) * 3 FROM items j JOIN cat c ON c.code = j.grp)",
    "SELECT i.id FROM items i WHERE EXISTS (SELECT 1 FROM items j WHERE j.grp = i.grp AND j.sub <> i.sub) AND NOT EXISTS (SELECT 1 FROM items k WHERE k.grp = i.grp AND k.sub <> i.sub AND k.flag)",
    "SELECT i.id, i.grp FROM items i WHERE NOT EXISTS (SELECT 1 FROM items j WHERE j.grp = i.grp AND j.val <> i.val AND j.qty > 3)",
    "SELECT c.code FROM cat c WHERE c.code IN (SELECT grp FROM items WHERE qty > (SELECT avg(qty) FROM items)) AND c.weight < (SELECT count(*) FROM bag)",
    "SELECT c.label, g.tq FROM cat c, grp_totals g WHERE g.grp = c.code AND g.tq >= (SELECT max(tq) - 5 FROM grp_totals)",
    "SELECT val, count(*) AS n FROM (SELECT b.grp, sum(b.val) AS val FROM bag b JOIN cat c ON c.code = b.grp GROUP BY b.grp) s GROUP BY val",
    "SELECT i.id FROM items i WHERE i.grp IN (SELECT b.grp FROM bag b) AND EXISTS (SELECT 1 FROM bag b2 WHERE b2.grp = i.grp AND b2.val > 1)",
    // An OR term next to a subquery test or a grouped subquery keeps its parentheses.
    "SELECT i.id FROM items i WHERE (i.qty > 5 OR i.flag) AND i.val > 1 AND EXISTS (SELECT 1 FROM bag b WHERE b.grp = i.grp)",
    "SELECT c.code, t.n FROM cat c, (SELECT grp, count(*) AS n FROM items GROUP BY grp) t WHERE t.grp = c.code AND (c.weight > 4 OR t.n > 3) AND c.weight > 2",
];

/// The tables (and the view) the shapes read, with the categories the joins look up.
pub const SCHEMA: &str = "CREATE TABLE items (id int PRIMARY KEY, grp text, sub int, val numeric(10,2), qty int, flag boolean, note text, f float8);
         CREATE TABLE bag (grp text, val int, note text);
         CREATE TABLE cat (code text PRIMARY KEY, label text, weight int);
         INSERT INTO cat VALUES ('a', 'Alpha', 1), ('b', 'Beta', 3), ('c', 'Gamma', 5), ('d', 'Delta', 7);
         CREATE VIEW grp_totals AS SELECT grp, sum(qty) AS tq, count(*) AS n FROM items GROUP BY grp;";
