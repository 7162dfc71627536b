#!/usr/bin/env bash
# Join benchmark (tier 4, on demand): a join and a join+aggregate over a fact table of N rows and
# a 10,000-row dimension; DIFFERENTIAL vs FULL vs REFRESH MATERIALIZED VIEW after 1, 100, 0.1% and
# 1% changed fact rows (plus one changed dimension row each time). Server-side times, steady-state
# session (two warm-up refreshes first; the database's scheduler off, so only these refreshes run).
# Prints Markdown.
#
#   benches/join.sh [FACT_ROWS] [inner|outer|multiway|scalar]      defaults: 1000000 inner
#
# "outer" measures a semi-join (dimension rows with an EXISTS partner in the fact table) in place
# of the join, and a LEFT JOIN aggregate (every dimension row with its fact count and total) in
# place of the join+aggregate. "multiway" joins the fact table with the dimension twice (by its
# dimension key and by its id), a 3-way join and a 3-way join aggregate. "scalar" measures fact
# rows above 1.5× their dimension key's average (a correlated scalar subquery over the fact table
# itself) and, TPC-H q17's shape, a join aggregate of the rows below half their key's average.
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
n=${1:-1000000}
kind=${2:-inner}
PSQL=("$(pg_bin psql)" -X -q -At -v ON_ERROR_STOP=1 -d pgtrickle_bench)
q() { "${PSQL[@]}" -c "$1"; }
run() { "${PSQL[@]}" -c "$1" >/dev/null; }
"$(pg_bin psql)" -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS pgtrickle_bench" -c "CREATE DATABASE pgtrickle_bench" \
  -c "ALTER DATABASE pgtrickle_bench SET pg_trickle.enabled = off"
run "SET client_min_messages = warning; CREATE EXTENSION pg_trickle"
run "CREATE FUNCTION ms(sql text) RETURNS numeric LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz; BEGIN t0 := clock_timestamp(); EXECUTE sql;
     RETURN round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 3); END \$\$"
run "CREATE TABLE dim (id int PRIMARY KEY, region text NOT NULL, rate numeric(6,2) NOT NULL)"
run "INSERT INTO dim SELECT i, 'r' || (i % 50), (i % 97) / 10.0 FROM generate_series(1, 10000) i"
run "CREATE TABLE fact (id int PRIMARY KEY, dim_id int NOT NULL, amount numeric(10,2) NOT NULL)"
run "INSERT INTO fact SELECT i, 1 + (i::bigint * 7919 % 10000), (i % 1000) / 10.0 FROM generate_series(1, $n) i"
run "CREATE INDEX ON fact (dim_id)"
run "VACUUM ANALYZE"
JOIN='SELECT f.id, f.amount, d.region FROM fact f JOIN dim d ON d.id = f.dim_id'
AGG='SELECT d.region, count(*) AS n, sum(f.amount * d.rate) AS revenue FROM fact f JOIN dim d ON d.id = f.dim_id GROUP BY d.region'
J_LABEL=join; A_LABEL=join+aggregate
if [ "$kind" = multiway ]; then
  JOIN='SELECT f.id, d.region, e.region AS region2 FROM fact f JOIN dim d ON d.id = f.dim_id JOIN dim e ON e.id = f.id % 10000 + 1'
  AGG='SELECT d.region, e.region AS region2, count(*) AS n, sum(f.amount) AS total FROM fact f JOIN dim d ON d.id = f.dim_id JOIN dim e ON e.id = f.id % 10000 + 1 GROUP BY 1, 2'
  J_LABEL="3-way join"; A_LABEL="3-way join aggregate"
fi
if [ "$kind" = scalar ]; then
  JOIN='SELECT f.id, f.amount FROM fact f WHERE f.amount > (SELECT 1.5 * avg(g.amount) FROM fact g WHERE g.dim_id = f.dim_id)'
  AGG='SELECT d.region, count(*) AS n, sum(f.amount) AS total FROM fact f JOIN dim d ON d.id = f.dim_id WHERE f.amount < (SELECT 0.5 * avg(g.amount) FROM fact g WHERE g.dim_id = d.id) GROUP BY d.region'
  J_LABEL="correlated scalar subquery"; A_LABEL="join + scalar subquery aggregate (TPC-H q17 shape)"
fi
if [ "$kind" = outer ]; then
  JOIN='SELECT d.id, d.region FROM dim d WHERE EXISTS (SELECT 1 FROM fact f WHERE f.dim_id = d.id AND f.amount > 99)'
  AGG='SELECT d.id, count(f.id) AS n, COALESCE(sum(f.amount), 0) AS total FROM dim d LEFT JOIN fact f ON f.dim_id = d.id GROUP BY d.id'
  J_LABEL="semi-join (EXISTS)"; A_LABEL="LEFT JOIN aggregate"
fi
run "SET client_min_messages = warning;
     SELECT pgtrickle.create_stream_table('j_diff', \$q\$$JOIN\$q\$, refresh_mode => 'DIFFERENTIAL');
     SELECT pgtrickle.create_stream_table('j_full', \$q\$$JOIN\$q\$, refresh_mode => 'FULL');
     SELECT pgtrickle.create_stream_table('a_diff', \$q\$$AGG\$q\$, refresh_mode => 'DIFFERENTIAL');
     SELECT pgtrickle.create_stream_table('a_full', \$q\$$AGG\$q\$, refresh_mode => 'FULL');
     CREATE MATERIALIZED VIEW j_mv AS $JOIN; CREATE MATERIALIZED VIEW a_mv AS $AGG;"
run "VACUUM ANALYZE"
echo "### Join benchmark ($kind): $n fact rows ⋈ 10,000 dimension rows ($(nproc) cores, $("$PG_CONFIG" --version), $(date -u +%Y-%m-%d))"
echo
echo "| changed fact rows (+1 dimension row) | $J_LABEL: DIFFERENTIAL | FULL | REFRESH MATERIALIZED VIEW | vs FULL | $A_LABEL: DIFFERENTIAL | FULL | REFRESH MATERIALIZED VIEW | vs FULL |"
echo "|---|---|---|---|---|---|---|---|---|"
for k in 1 100 "0.1%" "1%"; do
  label=$k
  case "$k" in "0.1%") k=$((n / 1000)); label="$k (0.1%)";; "1%") k=$((n / 100)); label="$k (1%)";; esac
  change="UPDATE fact SET amount = amount + 1, dim_id = 1 + (dim_id + 13) % 10000 WHERE id IN (SELECT (random() * ($n - 1))::int + 1 FROM generate_series(1, $k));
          UPDATE dim SET rate = rate + 0.01 WHERE id = (random() * 9999)::int + 1"
  warm=(-c "UPDATE fact SET amount = amount + 1 WHERE id = 1"
        -c "SELECT pgtrickle.refresh_stream_table('j_diff'), pgtrickle.refresh_stream_table('a_diff')")
  read -r jd ad < <("${PSQL[@]}" "${warm[@]}" "${warm[@]}" -c "$change" \
    -c "SELECT ms('SELECT pgtrickle.refresh_stream_table(''j_diff'')') || ' ' || ms('SELECT pgtrickle.refresh_stream_table(''a_diff'')')" | tail -n 1)
  jf=$(q "SELECT ms('SELECT pgtrickle.refresh_stream_table(''j_full'')')")
  af=$(q "SELECT ms('SELECT pgtrickle.refresh_stream_table(''a_full'')')")
  jm=$(q "SELECT ms('REFRESH MATERIALIZED VIEW j_mv')")
  am=$(q "SELECT ms('REFRESH MATERIALIZED VIEW a_mv')")
  for st in j_diff a_diff; do
    v=$(q "SELECT missing || '/' || extra FROM pgtrickle.verify_stream_table('$st')")
    [ "$v" = "0/0" ] || { echo "ORACLE MISMATCH $st after $k changes: $v" >&2; exit 1; }
  done
  echo "| $label | $jd ms | $jf ms | $jm ms | $(q "SELECT round($jf / greatest($jd, 0.001), 1)")× | $ad ms | $af ms | $am ms | $(q "SELECT round($af / greatest($ad, 0.001), 1)")× |"
done
"$(pg_bin psql)" -X -q -d postgres -c "DROP DATABASE pgtrickle_bench"
