#!/usr/bin/env bash
# The dev cluster: scripts/cluster.sh start | stop | restart | status | install | psql [args]
#   install  builds the extension (release) and installs it into PostgreSQL 18; restarts the
#            cluster when the installed library changed (a running server must not keep a replaced .so).
set -euo pipefail
source "$(dirname "$0")/env.sh"

pgctl() { as_pg "$(pg_bin pg_ctl)" -D "$PGT_DATA" "$@"; }
running() { [ -f "$PGT_DATA/postmaster.pid" ] && pgctl status >/dev/null 2>&1; }

init_cluster() {
  if [ "$(id -u)" = 0 ] && ! id "$PGT_OS_USER" >/dev/null 2>&1; then
    useradd --system --create-home --home-dir /var/lib/postgresql --shell /bin/bash "$PGT_OS_USER"
  fi
  if [ ! -f "$PGT_DATA/PG_VERSION" ]; then
    log "initdb $PGT_DATA"
    mkdir -p "$PGT_DATA"
    [ "$(id -u)" = 0 ] && chown "$PGT_OS_USER" "$PGT_DATA" && chmod 700 "$PGT_DATA"
    as_pg "$(pg_bin initdb)" -D "$PGT_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  grep -q "^include_if_exists 'pg_trickle_dev.conf'" "$PGT_DATA/postgresql.conf" \
    || echo "include_if_exists 'pg_trickle_dev.conf'" >> "$PGT_DATA/postgresql.conf"
  local conf; conf=$(mktemp)
  cat > "$conf" <<CONF
# Written by scripts/cluster.sh on every start; edit PGT_* variables instead.
port = $PGT_PORT
listen_addresses = 'localhost'
unix_socket_directories = '/tmp'
shared_preload_libraries = 'pg_trickle'
wal_level = logical
max_worker_processes = 64
max_replication_slots = 32
max_wal_senders = 16
output_plugin_libraries = 'pgoutput, test_decoding, pg_trickle_decoder'
max_connections = 200
fsync = on
logging_collector = off
log_min_messages = warning
CONF
  install -m 600 "$conf" "$PGT_DATA/pg_trickle_dev.conf"; rm -f "$conf"
  [ "$(id -u)" = 0 ] && chown "$PGT_OS_USER" "$PGT_DATA/pg_trickle_dev.conf"
  return 0
}

start() {
  init_cluster
  if running; then return 0; fi
  log "starting PostgreSQL 18 on port $PGT_PORT ($PGT_DATA)"
  # A server started from a developer's shell must not inherit RUST_BACKTRACE: pgrx would append
  # backtraces to every error's DETAIL.
  as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$(pg_bin pg_ctl)" -D "$PGT_DATA" -l "$PGT_DATA/server.log" -w -t 60 start >/dev/null \
    || { tail -n 30 "$PGT_DATA/server.log" >&2; exit 1; }
}

stop() { if running; then log "stopping the dev cluster"; pgctl -m fast -w stop >/dev/null; fi; }

install_decoder() {
  # The logical decoding output plugin (output_plugin/): a library of its own, loaded by name.
  ( cd "$PGT_ROOT" && cargo build --quiet --lib --package pg_trickle_decoder --release )
  local built="${CARGO_TARGET_DIR:-$PGT_ROOT/target}/release/libpg_trickle_decoder.so"
  local lib; lib="$("$PG_CONFIG" --pkglibdir)/pg_trickle_decoder.so"
  # install(1) replaces the file (new inode), so processes that loaded the old one keep it.
  cmp -s "$built" "$lib" 2>/dev/null || install -m 755 "$built" "$lib"
}

install_ext() {
  local lib; lib="$("$PG_CONFIG" --pkglibdir)/pg_trickle.so"
  log "building the extension and its output plugin (release)"
  install_decoder
  ( cd "$PGT_ROOT" && cargo build --quiet --lib --package pg_trickle --release --features pg18 --no-default-features )
  local built="${CARGO_TARGET_DIR:-$PGT_ROOT/target}/release/libpg_trickle.so"
  if [ -f "$lib" ] && cmp -s "$built" "$lib" \
     && [ -f "$("$PG_CONFIG" --sharedir)/extension/pg_trickle.control" ]; then
    return 0
  fi
  # A running server that preloads the library must not see it replaced under it.
  local was_running=0; if running; then was_running=1; stop; fi
  log "installing the extension into $("$PG_CONFIG" --pkglibdir)"
  ( cd "$PGT_ROOT" && cargo pgrx install --package pg_trickle --release --pg-config "$PG_CONFIG" >/dev/null )
  if [ $was_running = 1 ]; then start; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if running; then echo "running on port $PGT_PORT ($PGT_DATA)"; else echo "stopped"; exit 3; fi ;;
  install) install_ext ;;
  psql) shift; exec "$(pg_bin psql)" -X -d "$PGT_DB" "$@" ;;
  *) echo "usage: $0 start|stop|restart|status|install|psql [args]" >&2; exit 2 ;;
esac
