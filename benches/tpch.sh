#!/usr/bin/env bash
# TPC-H benchmark (tier 4, on demand): the 22 queries as stream tables at scale factor SF (data
# from the tpchgen generator, the library behind tpchgen-cli, loaded with COPY; primary keys and
# the usual indexes). Each query is a stream table created DIFFERENTIAL where the engine
# maintains it, AUTO otherwise; a copy with refresh_mode FULL and a materialized view beside it.
# Then ROUNDS rounds of churn of PER_MILLE ‰ of the orders (RF1 new orders with their lineitems,
# RF2 as many old ones deleted, updates of prices, discounts, dates, statuses, balances, supply
# costs), one second for the WAL consumer, and per query: the refresh of the stream table, the
# FULL refresh of its copy, REFRESH MATERIALIZED VIEW; server-side times, median of the rounds
# ("refreshes run": D or F per round, what the stream table's refreshes did).
# Every stream table is checked against its query (multiset) after the last round. Prints
# Markdown.
#
#   benches/tpch.sh [SF] [ROUNDS] [PER_MILLE] [MODE]      defaults: 1 3 1 DIFFERENTIAL
#
# MODE AUTO creates every stream table with refresh_mode AUTO instead (each refresh then picks
# DIFFERENTIAL or FULL by AUTO's rules; the table's "mode" column is still what the query gets).
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
sf=${1:-1}
rounds=${2:-3}
per_mille=${3:-1}
prefer=${4:-DIFFERENTIAL}
DB=pgtrickle_tpch
export PGT_PORT
PSQL=("$(pg_bin psql)" -X -q -At -v ON_ERROR_STOP=1 -d "$DB")
q() { "${PSQL[@]}" -c "$1"; }
run() { "${PSQL[@]}" -c "$1" >/dev/null; }
cd "$PGT_ROOT"
cargo build --quiet --release -p pg_trickle_tests --bin tpch
tpch="${CARGO_TARGET_DIR:-$PGT_ROOT/target}/release/tpch"
"$(pg_bin psql)" -X -q -d postgres -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" \
  -c "ALTER DATABASE $DB SET pg_trickle.enabled = off"
run "SET client_min_messages = warning; CREATE EXTENSION pg_trickle"
t0=$(date +%s.%N)
"$tpch" load "$DB" "$sf"
log "SF $sf loaded in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s"
run "CREATE FUNCTION ms(sql text) RETURNS numeric LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz; BEGIN t0 := clock_timestamp(); EXECUTE sql;
     RETURN round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1); END \$\$"
run "CREATE TABLE bench (query text, what text, round int, ms numeric)"
run "CREATE TABLE queries (name text PRIMARY KEY, sql text, mode text)"
# The queries and Q15's view, from the harness (tests/src/tpch.rs).
run "$("$tpch" view)"
tsv="${CARGO_TARGET_DIR:-$PGT_ROOT/target}/tpch_queries.tsv"
"$tpch" queries > "$tsv"
"${PSQL[@]}" -c "\\copy queries (name, sql) FROM '$tsv'"
[ "$(q "SELECT count(*) FROM queries")" = 22 ] || { echo "expected 22 queries" >&2; exit 1; }

for name in $(q "SELECT name FROM queries ORDER BY name"); do
  sql=$(q "SELECT sql FROM queries WHERE name = '$name'")
  mode=DIFFERENTIAL
  if ! ms=$(q "SELECT ms(format('SELECT pgtrickle.create_stream_table(%L, %L, refresh_mode => %L)', '$name', sql, '$prefer')) FROM queries WHERE name = '$name'" 2>/dev/null); then
    mode=FULL
    ms=$(q "SET client_min_messages = warning; SELECT ms(format('SELECT pgtrickle.create_stream_table(%L, %L, refresh_mode => %L)', '$name', sql, 'AUTO')) FROM queries WHERE name = '$name'")
  fi
  [ "$prefer" = AUTO ] && mode=$(q "SELECT refresh_mode FROM pgtrickle.pgt_status() WHERE name = 'public.$name'")
  run "UPDATE queries SET mode = '$mode' WHERE name = '$name'"
  run "INSERT INTO bench VALUES ('$name', 'create', 0, $ms)"
  run "SET client_min_messages = warning; SELECT pgtrickle.create_stream_table('${name}_full', sql, refresh_mode => 'FULL') FROM queries WHERE name = '$name'"
  run "INSERT INTO bench SELECT '$name', 'create mv', 0, ms(format('CREATE MATERIALIZED VIEW %I AS %s', '${name}_mv', sql)) FROM queries WHERE name = '$name'"
  log "$name: $mode, created in $ms ms"
done

for r in $(seq "$rounds"); do
  "$tpch" churn "$DB" "$r" "$per_mille"
  sleep 1
  for name in $(q "SELECT name FROM queries ORDER BY name"); do
    run "INSERT INTO bench VALUES ('$name', 'refresh', $r, ms('SELECT pgtrickle.refresh_stream_table(''$name'')'))"
    run "INSERT INTO bench VALUES ('$name', 'full', $r, ms('SELECT pgtrickle.refresh_stream_table(''${name}_full'')'))"
    run "INSERT INTO bench VALUES ('$name', 'mv', $r, ms('REFRESH MATERIALIZED VIEW ${name}_mv'))"
  done
  log "round $r done"
done

# Exact after the last round: each stream table against its query, both ways, as multisets.
bad=""
for name in $(q "SELECT name FROM queries ORDER BY name"); do
  cols=$(q "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '$name'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE '\\_\\_pgt\\_%'")
  sql=$(q "SELECT sql FROM queries WHERE name = '$name'")
  diff=$(q "SELECT count(*) FROM ((SELECT x::text FROM (SELECT $cols FROM $name) x EXCEPT ALL SELECT y::text FROM ($sql) y)
            UNION ALL (SELECT y::text FROM ($sql) y EXCEPT ALL SELECT x::text FROM (SELECT $cols FROM $name) x)) d")
  [ "$diff" = 0 ] || bad="$bad $name($diff)"
done

med() { echo "(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM bench b WHERE b.query = q.name AND b.what = '$1')"; }
ran="(SELECT string_agg(left(h.action, 1), '' ORDER BY h.refresh_id) FROM pgtrickle.pgt_refresh_history h
        JOIN pgtrickle.pgt_stream_tables st USING (pgt_id) WHERE st.pgt_relid = q.name::regclass AND h.initiated_by = 'MANUAL')"
echo "| query | mode | refreshes run | create (ms) | MV create (ms) | refresh after churn (ms) | FULL refresh (ms) | REFRESH MATERIALIZED VIEW (ms) | speedup vs FULL |"
echo "|---|---|---|---|---|---|---|---|---|"
q "SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s× |', q.name, q.mode, $ran, $(med create), $(med 'create mv'),
          round($(med refresh)::numeric, 1), round($(med full)::numeric, 1), round($(med mv)::numeric, 1),
          round(($(med full) / greatest($(med refresh), 0.1))::numeric, 1))
     FROM queries q ORDER BY q.name"
echo
q "SELECT format('- median speedup vs FULL: %s× over all 22; %s of 22 faster than FULL (refresh < 0.9 × FULL)',
          round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s)::numeric, 1), count(*) FILTER (WHERE s > 1.0 / 0.9))
     FROM (SELECT $(med full) / greatest($(med refresh), 0.1) AS s FROM queries q) x"
echo "- SF $sf, $rounds rounds of $per_mille ‰ churn; exact after the last round: ${bad:-all 22}"
