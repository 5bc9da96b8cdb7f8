#!/usr/bin/env bash
# testenv.sh CMD [ARGS...]
#
# Sets up everything the test suite needs on a fresh Debian machine, runs CMD
# with the environment pointing at it, and tears it down afterwards:
#   - Debian packages: postgresql (server), python3-torch, python3-onnx,
#     python3-scipy, python3-sklearn (oracles for /usr/bin/python3), libopenblas-dev;
#   - npm packages of tools/interop (onnxruntime-node, @duckdb/node-api, s3rver:
#     the out-of-process S3 server of the s3:// tests);
#   - a throwaway PostgreSQL cluster on a free local port (run as the postgres
#     user when we are root: initdb refuses root), exported as MODAX_TEST_PG_DSN;
#   - TimescaleDB (built from ../shared/vendor/timescaledb when that is beside
#     the repository and the extension is missing) and a second cluster that
#     preloads it, exported as MODAX_TEST_TSDB_DSN.
# The NASA C-MAPSS files come from MODAX_CMAPSS_DIR (default
# ../shared/datasets/cmapss when it exists).
# Under CI (or MODAX_TEST_STRICT=1) tests that need one of these fail instead
# of skipping; otherwise a missing optional one (TimescaleDB, C-MAPSS) skips.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

log() { printf 'testenv: %s\n' "$*" >&2; }

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 && sudo_cmd=(sudo)
fi

# --- Debian packages -------------------------------------------------------
pkgs=(postgresql python3-torch python3-onnx python3-scipy python3-sklearn libopenblas-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt)"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- npm packages for interop tests ----------------------------------------
if [ -f "$root/tools/interop/package.json" ] && { [ ! -d "$root/tools/interop/node_modules" ] || [ ! -e "$root/tools/interop/node_modules/.bin/s3rver" ]; }; then
  log "installing tools/interop npm packages"
  (cd "$root/tools/interop" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

strict=
if [ "${MODAX_TEST_STRICT:-}" = 1 ] || { [ -n "${CI:-}" ] && [ "${CI}" != false ] && [ "${CI}" != 0 ]; }; then
  strict=1
fi

# --- TimescaleDB ------------------------------------------------------------
# Debian has no package: ../shared/vendor/timescaledb/build.sh builds it into
# PostgreSQL 15 when it is missing (4-7 min, once). A clone without ../shared
# runs without it (the TimescaleDB variants of the database tests skip).
tsdb_build="$root/../shared/vendor/timescaledb/build.sh"
tsdb_installed() {
  local pgc=/usr/lib/postgresql/15/bin/pg_config
  [ -x "$pgc" ] && ls "$("$pgc" --sharedir)"/extension/timescaledb--*.sql >/dev/null 2>&1
}
if ! tsdb_installed && [ -x "$tsdb_build" ]; then
  log "building TimescaleDB into PostgreSQL 15 ($tsdb_build, once: 4-7 min)"
  "${sudo_cmd[@]}" "$tsdb_build" >&2 || { log "TimescaleDB build failed"; [ -z "$strict" ] || exit 1; }
fi

# --- PostgreSQL ------------------------------------------------------------
# Two throwaway clusters: plain PostgreSQL (MODAX_TEST_PG_DSN; with TimescaleDB
# installed but not preloaded, as on a server where nobody enabled it) and,
# when TimescaleDB is installed, one that preloads it (MODAX_TEST_TSDB_DSN).
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pgbin" ] || { log "no PostgreSQL server binaries under /usr/lib/postgresql"; exit 1; }
pgdir=$(mktemp -d /tmp/modax-pg.XXXXXX)
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$pgdir"
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
clusters=()
stop_pg() {
  for c in "${clusters[@]}"; do
    as_pg "$pgbin/pg_ctl" -D "$pgdir/$c" -m immediate stop >/dev/null 2>&1 || true
  done
  rm -rf "$pgdir"
}
trap stop_pg EXIT
chmod 755 "$pgdir"
# start_cluster NAME PORT [-c setting=value...]
start_cluster() {
  local name=$1 port=$2; shift 2
  clusters+=("$name")
  as_pg "$pgbin/initdb" -D "$pgdir/$name" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  as_pg "$pgbin/pg_ctl" -D "$pgdir/$name" -l "$pgdir/$name.log" -w -t 60 \
    -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $*" \
    start >/dev/null || { cat "$pgdir/$name.log" >&2; exit 1; }
}
port=$(free_port)
start_cluster data "$port"
export MODAX_TEST_PG_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export MODAX_TEST_PG_BIN="$pgbin"
log "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
if [ "$(basename "$(dirname "$pgbin")")" = 15 ] && tsdb_installed; then
  tport=$(free_port)
  start_cluster tsdb "$tport" -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off \
    -c max_worker_processes=64 -c timescaledb.max_background_workers=48
  export MODAX_TEST_TSDB_DSN="postgres://postgres@127.0.0.1:$tport/postgres?sslmode=disable"
  log "TimescaleDB on 127.0.0.1:$tport"
else
  log "TimescaleDB not installed: its test variants skip"
fi
# CI (.ci/run exports CI) runs strictly: a test whose component is missing
# fails instead of skipping. MODAX_TEST_STRICT=1 does the same outside CI.
[ -z "$strict" ] || export MODAX_TEST_STRICT=1

"$@"
