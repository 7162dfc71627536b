#!/usr/bin/env bash
# Write overhead of change capture (tier 4, on demand): pgbench single-row UPDATE and INSERT
# workloads on a 1M-row source, 4 and 8 clients, with no capture (no stream table), with trigger
# capture, and with WAL capture (steady state after the hand-over), one aggregate stream table
# refreshed every second by the scheduler. Then what the WAL consumer sustained, and the
# commit-to-buffer latency of WAL capture (p50/p99) measured by a probe under the 8-client
# UPDATE load. Prints Markdown. Changes pg_trickle.cdc_mode with ALTER SYSTEM and resets it.
#
#   pgbench/capture.sh [SECONDS_PER_RUN]        default 20
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
secs=${1:-20}
DB=pgtrickle_cdc_bench
PSQL=("$(pg_bin psql)" -X -q -At -v ON_ERROR_STOP=1 -d "$DB")
q() { "${PSQL[@]}" -c "$1"; }
admin() { "$(pg_bin psql)" -X -q -At -v ON_ERROR_STOP=1 -d postgres -c "$1" >/dev/null; }
trap 'admin "ALTER SYSTEM RESET pg_trickle.cdc_mode"; admin "SELECT pg_reload_conf()"' EXIT
dir=$(mktemp -d)
cat >"$dir/update.sql" <<'EOF'
\set id random(1, 1000000)
UPDATE src SET v = v + 1 WHERE id = :id;
EOF
cat >"$dir/insert.sql" <<'EOF'
\set g random(0, 999)
INSERT INTO src (g, v, pad) VALUES (:g, :g, 'inserted by pgbench');
EOF
ST="SELECT g, count(*) AS n, sum(v) AS total FROM src GROUP BY g"

setup() {
  admin "SET client_min_messages = warning"
  admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  admin "CREATE DATABASE $DB"
  q "SET client_min_messages = warning; CREATE EXTENSION pg_trickle"
  q "CREATE SEQUENCE src_id START 1000001"
  q "CREATE TABLE src (id bigint PRIMARY KEY DEFAULT nextval('src_id'), g int NOT NULL, v int NOT NULL, pad text)"
  q "INSERT INTO src SELECT i, i % 1000, i % 97, 'row ' || i FROM generate_series(1, 1000000) i"
  q "VACUUM ANALYZE src"
}

wait_mode() {
  for _ in $(seq 300); do
    [ "$(q "SELECT capture_mode FROM pgtrickle.cdc_status() WHERE source_table = 'public.src'")" = "$1" ] && return
    sleep 0.1
  done
  echo "src never reached $1 capture" >&2; exit 1
}

tps() { # workload clients
  "$(pg_bin pgbench)" -n -c "$2" -j 2 -T "$secs" -f "$dir/$1.sql" "$DB" 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

declare -A R
run_mode() { # mode
  for w in update insert; do
    for c in 4 8; do
      q "CHECKPOINT" >/dev/null
      R[$1,$w,$c]=$(tps "$w" "$c")
      log "$1 capture, $w, $c clients: ${R[$1,$w,$c]} TPS"
    done
  done
}

setup
run_mode none
admin "ALTER SYSTEM SET pg_trickle.cdc_mode = 'trigger'"
admin "SELECT pg_reload_conf()"
sleep 1
q "SELECT pgtrickle.create_stream_table('per_g', '$ST', schedule => '1s', refresh_mode => 'DIFFERENTIAL')" >/dev/null
wait_mode TRIGGER
run_mode trigger
q "SELECT pgtrickle.drop_stream_table('per_g')" >/dev/null
admin "ALTER SYSTEM RESET pg_trickle.cdc_mode"
admin "SELECT pg_reload_conf()"
sleep 1
q "SELECT pgtrickle.create_stream_table('per_g', '$ST', schedule => '1s', refresh_mode => 'DIFFERENTIAL')" >/dev/null
wait_mode WAL
before=$(q "SELECT changes_total FROM pgtrickle.pgt_wal_state")
t0=$(date +%s.%N)
run_mode wal
t1=$(date +%s.%N)
after=$(q "SELECT changes_total FROM pgtrickle.pgt_wal_state")
sleep 2
lag=$(q "SELECT lag_bytes FROM pgtrickle.cdc_status() WHERE source_table = 'public.src'")
q "SELECT pgtrickle.refresh_stream_table('per_g')" >/dev/null
exact=$(q "SELECT count(*) = 0 FROM ((SELECT g, n, total FROM per_g EXCEPT ALL $ST) UNION ALL ($ST EXCEPT ALL SELECT g, n, total FROM per_g)) x")

# Commit-to-buffer latency: a second WAL-captured table whose stream table never refreshes
# (its buffer keeps every row); a procedure commits one marker row at a time and waits until the
# consumer has written it to the buffer, under the 8-client UPDATE load.
q "CREATE TABLE probe (id int PRIMARY KEY, at timestamptz NOT NULL)"
q "CREATE TABLE probe_latency (ms float8)"
q "SELECT pgtrickle.create_stream_table('probe_count', 'SELECT count(*) AS n FROM probe', schedule => '1h')" >/dev/null
for _ in $(seq 300); do
  [ "$(q "SELECT capture_mode FROM pgtrickle.cdc_status() WHERE source_table = 'public.probe'")" = WAL ] && break
  sleep 0.1
done
buf=$(q "SELECT 'pgtrickle_changes.' || buffer_table FROM pgtrickle.pgt_sources WHERE source_relid = 'probe'::regclass")
q "CREATE PROCEDURE run_probe(n int) LANGUAGE plpgsql AS \$\$
   DECLARE t timestamptz; seen boolean;
   BEGIN
     FOR i IN 1..n LOOP
       INSERT INTO probe VALUES (i, clock_timestamp()); COMMIT;
       t := clock_timestamp();
       LOOP
         EXECUTE 'SELECT EXISTS (SELECT 1 FROM $buf WHERE new_1 = \$1)' INTO seen USING i;
         EXIT WHEN seen OR clock_timestamp() - t > interval '5 s';
         PERFORM pg_sleep(0.0005);
       END LOOP;
       INSERT INTO probe_latency SELECT extract(epoch FROM clock_timestamp() - at) * 1000 FROM probe WHERE id = i;
       COMMIT;
       PERFORM pg_sleep(0.02);
     END LOOP;
   END \$\$"
"$(pg_bin pgbench)" -n -c 8 -j 2 -T 15 -f "$dir/update.sql" "$DB" >/dev/null 2>&1 &
load=$!
sleep 1
q "CALL run_probe(300)"
wait $load
lat=$(q "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ms / ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ms (' || count(*) || ' probes, max ' || round(max(ms)::numeric, 1) || ' ms)' FROM probe_latency")

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
interval=$("${PSQL[@]}" -c "SHOW pg_trickle.wal_consumer_interval_ms")
echo "| workload | clients | no capture (TPS) | trigger capture | WAL capture |"
echo "|---|---|---|---|---|"
for w in update insert; do
  for c in 4 8; do
    n=${R[none,$w,$c]}; t=${R[trigger,$w,$c]}; x=${R[wal,$w,$c]}
    echo "| single-row $w | $c | $n | $t ($(pct "$t" "$n")) | $x ($(pct "$x" "$n")) |"
  done
done
echo
echo "- WAL consumer: $((after - before)) changes decoded during the WAL runs, $(awk -v n=$((after - before)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }') changes/s sustained; lag 2 s after the load: $lag bytes; stream table exact after the runs: $exact"
echo "- commit-to-buffer latency (WAL capture, 8-client UPDATE load, consumer interval $interval): p50 / p99 $lat"
rm -rf "$dir"
