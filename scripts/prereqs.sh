#!/usr/bin/env bash
# Installs what building pg_trickle needs and the machine lacks: Debian build deps, PostgreSQL 18
# (built from Debian's source package into $PGT_PG_PREFIX unless PG_CONFIG names a PG 18 pg_config),
# cargo-pgrx 0.18.0, and `cargo pgrx init` (only when its config is missing or different).
# Idempotent: on a ready machine it checks and returns in about a second.
# Sourced by scripts/setup.sh; exports PG_CONFIG.
set -euo pipefail

PGT_PG_PREFIX=${PGT_PG_PREFIX:-/opt/pg_trickle/pg18}
PGRX_VERSION=0.18.0
log() { printf '[setup] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_debian_deps() {
  local pkgs=(build-essential bison flex libreadline-dev zlib1g-dev libssl-dev libicu-dev pkg-config
              libclang-dev clang sudo ca-certificates curl xz-utils postgresql-client dpkg-dev)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

pg_major() { "$1" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/'; }

build_pg18() {
  local work; work=$(mktemp -d /tmp/pgt-pg18-src.XXXXXX)
  log "building PostgreSQL 18 from Debian's source package into $PGT_PG_PREFIX (about 4 minutes)"
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
  echo "deb-src http://deb.debian.org/debian sid main" > "$work/apt/sources.list"
  local aptopts=(-o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                 -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache")
  apt-get "${aptopts[@]}" update -qq
  ( cd "$work" && apt-get "${aptopts[@]}" source --download-only postgresql-18 >/dev/null )
  local orig; orig=$(ls "$work"/postgresql-18_*.orig.tar.* | head -n1)
  mkdir -p "$work/src"
  tar -xf "$orig" -C "$work/src" --strip-components=1
  ( cd "$work/src" \
    && ./configure --prefix="$PGT_PG_PREFIX" --enable-debug --with-icu --with-openssl >/dev/null \
    && make -j"$(nproc)" -s >/dev/null \
    && make -s install >/dev/null \
    && make -s -C contrib -j"$(nproc)" >/dev/null && make -s -C contrib install >/dev/null )
  rm -rf "$work"
}

ensure_pg18() {
  if [ -n "${PG_CONFIG:-}" ]; then
    [ "$(pg_major "$PG_CONFIG")" = 18 ] || { log "PG_CONFIG=$PG_CONFIG is not PostgreSQL 18"; exit 1; }
  else
    PG_CONFIG="$PGT_PG_PREFIX/bin/pg_config"
    [ -x "$PG_CONFIG" ] || build_pg18
  fi
  local v; v=$("$PG_CONFIG" --version)
  # output_plugin_libraries exists from 18.6 on; older minors refuse to start with it set.
  local minor; minor=$(echo "$v" | sed -E 's/^PostgreSQL 18\.([0-9]+).*/\1/')
  if [ "$minor" -lt 6 ] 2>/dev/null; then log "$v is older than 18.6 (needs output_plugin_libraries)"; exit 1; fi
  export PG_CONFIG
}

ensure_cargo_pgrx() {
  if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
    log "installing cargo-pgrx $PGRX_VERSION (a few minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
  fi
  local cfg="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
  if ! grep -q "pg18 = \"$PG_CONFIG\"" "$cfg" 2>/dev/null; then
    log "cargo pgrx init --pg18 $PG_CONFIG"
    cargo pgrx init --pg18 "$PG_CONFIG" >/dev/null
  fi
}

install_debian_deps
ensure_pg18
ensure_cargo_pgrx
