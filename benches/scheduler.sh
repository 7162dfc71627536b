#!/usr/bin/env bash
# Scheduler benchmark (tier 4, on demand): commit-to-visible latency through a three-level chain
# with a 1 s schedule (p50/p99), and the scheduler's CPU with 100 idle stream tables. Needs the dev
# cluster (scripts/setup.sh). Prints Markdown rows.
#
#   benches/scheduler.sh [SAMPLES] [IDLE_SECONDS]      defaults: 100 30
set -euo pipefail
cd "$(dirname "$0")/.."
echo "### Scheduler ($(nproc) cores, $(date -u +%Y-%m-%d))"
echo
PGT_BENCH_SAMPLES=${1:-100} PGT_BENCH_SECONDS=${2:-30} \
  cargo test -q -p pg_trickle_tests --test bench_scheduler -- --ignored --nocapture --test-threads 1 2>/dev/null | grep -o '| .*|$'
