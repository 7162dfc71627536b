#!/usr/bin/env bash
# Refresh benchmark (tier 4, on demand): DIFFERENTIAL vs FULL vs REFRESH MATERIALIZED VIEW on a
# source of N rows, for a GROUP BY aggregate (~1,000 groups) and a filter keeping about half the
# rows, after 1, 100, 10,000 and 1% changed rows; the no-op refresh; and the write-path cost of
# capture measured with pgbench. Times are server-side (clock_timestamp() around the call).
#
#   benches/refresh.sh [ROWS...]      default: 100000 1000000
#
# Uses the dev cluster (scripts/setup.sh) and a scratch database pgtrickle_bench (its scheduler off:
# only the benchmark's refreshes run; the WAL consumer still does). Prints Markdown.
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
PSQL=("$(pg_bin psql)" -X -q -At -v ON_ERROR_STOP=1 -d pgtrickle_bench)
PGBENCH=$(pg_bin pgbench)
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)
q() { "${PSQL[@]}" -c "$1"; }
# Statements whose output is not wanted.
run() { "${PSQL[@]}" -c "$1" >/dev/null; }
# The oracle: both DIFFERENTIAL stream tables equal their queries (stops on a mismatch).
verify() {
  for st in agg_diff flt_diff; do
    v=$(q "SELECT missing || '/' || extra FROM pgtrickle.verify_stream_table('$st')")
    [ "$v" = "0/0" ] || { echo "ORACLE MISMATCH $st after $1 changes: $v" >&2; exit 1; }
  done
}

"$(pg_bin psql)" -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS pgtrickle_bench" -c "CREATE DATABASE pgtrickle_bench" \
  -c "ALTER DATABASE pgtrickle_bench SET pg_trickle.enabled = off"
run "SET client_min_messages = warning; CREATE EXTENSION pg_trickle"
run "CREATE FUNCTION ms(sql text, reps int DEFAULT 1) RETURNS numeric LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz; BEGIN t0 := clock_timestamp();
     FOR i IN 1..reps LOOP EXECUTE sql; END LOOP;
     RETURN round((extract(epoch FROM clock_timestamp() - t0) * 1000 / reps)::numeric, 3); END \$\$"

AGG='SELECT grp, count(*) AS n, sum(val) AS total, avg(val) AS mean FROM src GROUP BY grp'
FILTER='SELECT id, grp, val FROM src WHERE val >= 500'

echo "### Machine"
echo
echo "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $("$PG_CONFIG" --version), $(date -u +%Y-%m-%d)"

for n in "${sizes[@]}"; do
  run "SET client_min_messages = warning; DROP TABLE IF EXISTS src CASCADE"
  run "CREATE TABLE src (id int PRIMARY KEY, grp int NOT NULL, val numeric(10,2) NOT NULL, pad text)"
  run "INSERT INTO src SELECT i, i % 1000, (i::bigint * 7919 % 100000) / 100.0, repeat('x', 40) FROM generate_series(1, $n) i"
  run "VACUUM ANALYZE src"
  run "SET client_min_messages = warning;
     SELECT pgtrickle.create_stream_table('agg_diff', \$q\$$AGG\$q\$, refresh_mode => 'DIFFERENTIAL');
     SELECT pgtrickle.create_stream_table('agg_full', \$q\$$AGG\$q\$, refresh_mode => 'FULL');
     SELECT pgtrickle.create_stream_table('flt_diff', \$q\$$FILTER\$q\$, refresh_mode => 'DIFFERENTIAL');
     SELECT pgtrickle.create_stream_table('flt_full', \$q\$$FILTER\$q\$, refresh_mode => 'FULL');
     CREATE MATERIALIZED VIEW agg_mv AS $AGG; CREATE MATERIALIZED VIEW flt_mv AS $FILTER;"
  run "VACUUM ANALYZE"
  echo
  echo "### $n source rows"
  echo
  echo "| changed rows | aggregate: DIFFERENTIAL | FULL | REFRESH MATERIALIZED VIEW | speedup vs MV | filter: DIFFERENTIAL | FULL | REFRESH MATERIALIZED VIEW | speedup vs MV |"
  echo "|---|---|---|---|---|---|---|---|---|"
  declare -A mv_agg mv_flt
  for k in 1 100 10000 "1%"; do
    label=$k; [ "$k" = "1%" ] && { k=$((n / 100)); label="$k (1%)"; }
    # Each run changes k random rows: value changes that also move rows between groups and
    # across the filter boundary.
    change="UPDATE src SET val = (val + 313.37)::numeric % 1000, grp = (grp + 7) % 1000 WHERE id IN (SELECT (random() * ($n - 1))::int + 1 FROM generate_series(1, $k))"
    # Steady state, as in the scheduler's long-lived session: the refresh statements are
    # prepared by two warm-up refreshes in the same session before the measured one.
    # Each -c is its own transaction, all in one session.
    warm=(-c "UPDATE src SET val = val + 1 WHERE id = 1"
          -c "SELECT pgtrickle.refresh_stream_table('agg_diff'), pgtrickle.refresh_stream_table('flt_diff')")
    read -r ad fd < <("${PSQL[@]}" "${warm[@]}" "${warm[@]}" -c "$change" \
      -c "SELECT ms('SELECT pgtrickle.refresh_stream_table(''agg_diff'')') || ' ' || ms('SELECT pgtrickle.refresh_stream_table(''flt_diff'')')" | tail -n 1)
    af=$(q "SELECT ms('SELECT pgtrickle.refresh_stream_table(''agg_full'')')")
    ff=$(q "SELECT ms('SELECT pgtrickle.refresh_stream_table(''flt_full'')')")
    am=$(q "SELECT ms('REFRESH MATERIALIZED VIEW agg_mv')")
    fm=$(q "SELECT ms('REFRESH MATERIALIZED VIEW flt_mv')")
    verify "$k"
    sa=$(q "SELECT round($am / greatest($ad, 0.001), 1)")
    sf=$(q "SELECT round($fm / greatest($fd, 0.001), 1)")
    echo "| $label | $ad ms | $af ms | $am ms | ${sa}× | $fd ms | $ff ms | $fm ms | ${sf}× |"
    mv_agg[$label]=$am; mv_flt[$label]=$fm
  done
  # With WAL capture the refresh above also decodes the change (it runs right after the write).
  # A scheduled refresh usually finds the WAL consumer (every wal_consumer_interval_ms) already
  # done: the same changes, refreshed once the consumer has consumed past the write.
  caught_up="DO \$\$ DECLARE l pg_lsn := pg_catalog.pg_current_wal_insert_lsn(); t timestamptz := clock_timestamp(); BEGIN
      WHILE EXISTS (SELECT 1 FROM pgtrickle.pgt_sources WHERE capture_mode = 'WAL')
            AND coalesce((SELECT consumed_lsn < l FROM pgtrickle.pgt_wal_state), false)
            AND clock_timestamp() < t + interval '30 s' LOOP
        PERFORM pg_catalog.pg_sleep(0.005);
      END LOOP; END \$\$"
  echo
  echo "Refreshed once the WAL consumer has captured the changes (as a scheduled refresh finds them; $(q "SELECT string_agg(DISTINCT capture_mode, ', ') FROM pgtrickle.pgt_sources") capture):"
  echo
  echo "| changed rows | aggregate: DIFFERENTIAL | speedup vs MV | filter: DIFFERENTIAL | speedup vs MV |"
  echo "|---|---|---|---|---|"
  for k in 1 100 10000 "1%"; do
    label=$k; [ "$k" = "1%" ] && { k=$((n / 100)); label="$k (1%)"; }
    change="UPDATE src SET val = (val + 313.37)::numeric % 1000, grp = (grp + 7) % 1000 WHERE id IN (SELECT (random() * ($n - 1))::int + 1 FROM generate_series(1, $k))"
    warm=(-c "UPDATE src SET val = val + 1 WHERE id = 1" -c "$caught_up"
          -c "SELECT pgtrickle.refresh_stream_table('agg_diff'), pgtrickle.refresh_stream_table('flt_diff')")
    read -r ad fd < <("${PSQL[@]}" "${warm[@]}" "${warm[@]}" -c "$change" -c "$caught_up" \
      -c "SELECT ms('SELECT pgtrickle.refresh_stream_table(''agg_diff'')') || ' ' || ms('SELECT pgtrickle.refresh_stream_table(''flt_diff'')')" | tail -n 1)
    verify "$k"
    sa=$(q "SELECT round(${mv_agg[$label]} / greatest($ad, 0.001), 1)")
    sf=$(q "SELECT round(${mv_flt[$label]} / greatest($fd, 0.001), 1)")
    echo "| $label | $ad ms | ${sa}× | $fd ms | ${sf}× |"
  done
  noop=$(q "SELECT ms('SELECT pgtrickle.refresh_stream_table(''agg_diff'')', 200)")
  # The same, each refresh a transaction of its own (as the scheduler runs them): pgbench's mean
  # latency, which includes the commit and the round trip.
  one=$(mktemp)
  printf 'SELECT pgtrickle.refresh_stream_table(%s);\n' "'agg_diff'" > "$one"
  noop_tx=$("$PGBENCH" -n -c 1 -t 200 -f "$one" pgtrickle_bench 2>/dev/null | awk '/^latency average/ {print $4}')
  rm -f "$one"
  echo
  echo "No-op refresh (nothing changed), mean of 200 in one transaction: $noop ms; each in its own transaction (pgbench, 200): $noop_tx ms."
  # Sustained: one single-row UPDATE, then both DIFFERENTIAL refreshes, repeated for 15 s in one
  # session (pgbench -r: mean latency per statement, as the client sees it over loopback).
  loop=$(mktemp)
  printf '\\set id random(1, %s)\nUPDATE src SET val = (val + 313.37)::numeric %% 1000, grp = (grp + 7) %% 1000 WHERE id = :id;\nSELECT pgtrickle.refresh_stream_table(%s);\nSELECT pgtrickle.refresh_stream_table(%s);\n' \
    "$n" "'agg_diff'" "'flt_diff'" > "$loop"
  lat=$("$PGBENCH" -n -c 1 -T 15 -r -f "$loop" pgtrickle_bench 2>/dev/null | awk '/refresh_stream_table\(.agg_diff/ {a=$1} /refresh_stream_table\(.flt_diff/ {f=$1} END {print a " " f}')
  rm -f "$loop"
  read -r la lf <<< "$lat"
  echo
  echo "Sustained (UPDATE one row, refresh both, repeated for 15 s): aggregate $la ms, filter $lf ms per refresh."
  run "DROP MATERIALIZED VIEW agg_mv, flt_mv; SELECT pgtrickle.drop_stream_table(s) FROM unnest(ARRAY['agg_diff','agg_full','flt_diff','flt_full']) s"
done

# Write path: single-row UPDATEs with pgbench, 2 clients, 15 s each, without and with capture.
n=${sizes[0]}
run "SET client_min_messages = warning; DROP TABLE IF EXISTS src CASCADE"
run "CREATE TABLE src (id int PRIMARY KEY, grp int NOT NULL, val numeric(10,2) NOT NULL, pad text)"
run "INSERT INTO src SELECT i, i % 1000, i % 1000, repeat('x', 40) FROM generate_series(1, $n) i"
run "VACUUM ANALYZE src"
script=$(mktemp)
printf '\\set id random(1, %s)\nUPDATE src SET val = val + 1 WHERE id = :id;\n' "$n" > "$script"
tps() { "$PGBENCH" -n -c 2 -j 2 -T 15 -f "$script" pgtrickle_bench 2>/dev/null | awk '/^tps/ {print int($3)}'; }
base=$(tps)
run "SET client_min_messages = warning; SELECT pgtrickle.create_stream_table('agg_diff', \$q\$$AGG\$q\$, refresh_mode => 'DIFFERENTIAL')"
with=$(tps)
rm -f "$script"
echo
echo "### Write path (pgbench, $n rows, single-row UPDATE, 2 clients, 15 s)"
echo
echo "| capture | TPS | relative |"
echo "|---|---|---|"
echo "| none | $base | 100% |"
echo "| trigger (one stream table) | $with | $(( with * 100 / base ))% |"
"$(pg_bin psql)" -X -q -d postgres -c "DROP DATABASE pgtrickle_bench"
