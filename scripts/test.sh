#!/usr/bin/env bash
# Runs every test tier (after scripts/setup.sh):
#   lint    cargo fmt --check, cargo clippy -D warnings
#   tier 1  the pure core crate: unit and property tests, and the golden plans; no PostgreSQL
#   tier 2  pgrx tests: extension glue inside a throwaway PostgreSQL 18 that cargo-pgrx starts
#   tier 3  integration tests against the dev cluster over a client connection
# Tier 4 (soak, benchmarks) is run on demand by its own scripts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
cd "$PGT_ROOT"
export PGT_PSQL; PGT_PSQL=$(pg_bin psql)
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

echo "== lint"
cargo fmt --all -- --check
cargo clippy --quiet -p pg_trickle_core -p pg_trickle_tests --all-targets -- -D warnings
cargo clippy --quiet -p pg_trickle_decoder --lib -- -D warnings
cargo clippy --quiet -p pg_trickle --features "pg18 pg_test" --no-default-features --all-targets -- -D warnings

echo "== tier 1: core, and the golden plans (no PostgreSQL; update them with scripts/golden.sh)"
cargo test -p pg_trickle_core
cargo test -p pg_trickle_tests --test golden

echo "== tier 2: pgrx tests (PostgreSQL 18)"
# cargo pgrx test installs a debug build into the same PostgreSQL prefix: the dev cluster must not
# be running on the library that gets replaced.
bash "$here/cluster.sh" stop
runas=()
if [ "$(id -u)" = 0 ]; then runas=(--runas postgres --pgdata /tmp/pg_trickle-pgrx-test-data); fi
cargo pgrx test pg18 --package pg_trickle "${runas[@]}"

echo "== tier 3: integration (dev cluster on port $PGT_PORT)"
bash "$here/cluster.sh" install
bash "$here/cluster.sh" start
cargo test -p pg_trickle_tests
