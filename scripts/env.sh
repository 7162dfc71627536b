# Shared settings for pg_trickle's scripts. Every value can be overridden from the environment.
#   PGT_PG_PREFIX  where PostgreSQL 18 is built when PG_CONFIG is not given   (/opt/pg_trickle/pg18)
#   PG_CONFIG      a PostgreSQL 18 (>= 18.6) pg_config to use instead
#   PGT_PORT       the dev cluster's port                                      (28818)
#   PGT_DATA       the dev cluster's data directory        (/var/lib/pg_trickle/data18 as root,
#                                                           ~/.local/share/pg_trickle/data18 otherwise)
#   PGT_DB         the database setup creates the extension in                 (pgtrickle_dev)
PGT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PGT_PG_PREFIX=${PGT_PG_PREFIX:-/opt/pg_trickle/pg18}
export PGT_PORT=${PGT_PORT:-28818}
export PGT_DB=${PGT_DB:-pgtrickle_dev}
if [ "$(id -u)" = 0 ]; then
  export PGT_DATA=${PGT_DATA:-/var/lib/pg_trickle/data18}
  PGT_OS_USER=postgres      # initdb refuses to run as root
else
  export PGT_DATA=${PGT_DATA:-$HOME/.local/share/pg_trickle/data18}
  PGT_OS_USER=$(id -un)
fi
if [ -z "${PG_CONFIG:-}" ] && [ -x "$PGT_PG_PREFIX/bin/pg_config" ]; then
  export PG_CONFIG="$PGT_PG_PREFIX/bin/pg_config"
fi
export PGHOST=${PGHOST:-localhost} PGPORT=$PGT_PORT PGUSER=${PGUSER:-postgres}
log() { printf '[pg_trickle] %s\n' "$*" >&2; }
# Runs a server command as the cluster's OS user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$PGT_OS_USER" -- "$@"; else "$@"; fi
}
pg_bin() { echo "$("$PG_CONFIG" --bindir)/$1"; }
