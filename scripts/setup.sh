#!/usr/bin/env bash
# One-command set-up: prerequisites, the extension (release build), and a running dev cluster with
# the extension created in database $PGT_DB. Idempotent; seconds on a ready machine.
# Settings (all overridable): see scripts/env.sh.
set -euo pipefail
here=$(dirname "$0")
bash "$here/prereqs.sh"
source "$here/env.sh"
bash "$here/cluster.sh" install
bash "$here/cluster.sh" start
psql_() { "$(pg_bin psql)" -X -q -v ON_ERROR_STOP=1 "$@"; }
if [ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PGT_DB'")" != 1 ]; then
  psql_ -d postgres -c "CREATE DATABASE \"$PGT_DB\""
fi
PGOPTIONS="-c client_min_messages=warning" psql_ -d "$PGT_DB" -c "CREATE EXTENSION IF NOT EXISTS pg_trickle"
cat <<MSG
pg_trickle is ready: PostgreSQL $("$PG_CONFIG" --version | cut -d' ' -f2) on port $PGT_PORT, data in $PGT_DATA.
  connect:  $(pg_bin psql) -h localhost -p $PGT_PORT -U postgres $PGT_DB
            (or: scripts/cluster.sh psql)
  stop:     scripts/cluster.sh stop
MSG
