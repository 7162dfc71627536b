#!/usr/bin/env bash
# Re-records the golden plans (tests/golden): PostgreSQL's answers to planning's questions are
# asked of the dev cluster again, every corpus query is planned, and the files are rewritten.
# Review the result with `git diff tests/golden`. The check itself (tier 1, in scripts/test.sh)
# needs no PostgreSQL.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
cd "$PGT_ROOT"
bash "$here/cluster.sh" start
PGT_GOLDEN=update cargo test -p pg_trickle_tests --test golden -- --quiet
git status --short tests/golden | head -20
