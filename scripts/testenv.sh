#!/usr/bin/env bash
# testenv.sh CMD [ARGS...]
#
# Sets up everything the test suite needs on a fresh Debian machine, runs CMD
# with the environment pointing at it, and tears it down afterwards:
#   - Debian packages: postgresql (server), python3-torch, python3-onnx,
#     python3-scipy, python3-sklearn (oracles for /usr/bin/python3), libopenblas-dev;
#   - npm packages of tools/interop (onnxruntime-node, @duckdb/node-api);
#   - a throwaway PostgreSQL cluster on a free local port (run as the postgres
#     user when we are root: initdb refuses root), exported as MODAX_TEST_PG_DSN.
# MODAX_TEST_STRICT=1 makes tests that need one of these fail instead of skip.
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
if [ -f "$root/tools/interop/package.json" ] && [ ! -d "$root/tools/interop/node_modules" ]; then
  log "installing tools/interop npm packages"
  (cd "$root/tools/interop" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# --- PostgreSQL ------------------------------------------------------------
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
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop_pg() {
  as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pgdir"
}
trap stop_pg EXIT
chmod 755 "$pgdir"
as_pg "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
  -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { cat "$pgdir/server.log" >&2; exit 1; }
export MODAX_TEST_PG_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export MODAX_TEST_PG_BIN="$pgbin"
export MODAX_TEST_STRICT=1
log "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"

"$@"
