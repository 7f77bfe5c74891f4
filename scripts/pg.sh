#!/usr/bin/env bash
# A private, throwaway PostgreSQL 15 cluster for tests, benchmarks and CI.
#
#   scripts/pg.sh start [DIR] [PORT]   init (once) + start; prints the postgres:// URL on stdout
#   scripts/pg.sh url   [DIR] [PORT]   prints the URL of a running cluster (exit 1 if not running)
#   scripts/pg.sh stop  [DIR]          stops it (pg_ctl stop -m fast; never by process name)
#   scripts/pg.sh destroy [DIR]        stops it and removes DIR
#
# DIR defaults to $ENTRADA_PG_DIR or /tmp/entrada-pg, PORT to $ENTRADA_PG_PORT or 55432.
# Idempotent: `start` on a running cluster only prints its URL. PostgreSQL refuses
# to run as root, so as root the cluster belongs to the `postgres` user (made by
# Debian's package) and every pg_ctl runs through `su postgres`. The server listens
# on 127.0.0.1 only, with its socket in DIR, and trusts local connections (a test
# cluster: never point it at real data).
#
# Typical use:  export ENTRADA_TEST_PG=$(scripts/pg.sh start)   (the PG conformance tests read it)
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-start}
dir=${2:-${ENTRADA_PG_DIR:-/tmp/entrada-pg}}
port=${3:-${ENTRADA_PG_PORT:-55432}}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
db=entrada

log() { echo "pg.sh: $*" >&2; }

install_pg() {
  [[ -x "$bin/pg_ctl" ]] && return 0
  log "installing postgresql (Debian's package, 15)"
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null
  # Debian's package starts its own cluster on 5432; ours is separate and on its own port.
}

# Runs a PostgreSQL binary as the cluster's owner.
as_owner() {
  if [[ $(id -u) == 0 ]]; then
    local q; q=$(printf '%q ' "$@")
    su postgres -s /bin/bash -c "$q"
  else
    "$@"
  fi
}

url() { echo "postgres://postgres@127.0.0.1:${port}/${db}"; }

running() { [[ -f "$dir/postmaster.pid" ]] && as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; }

case "$cmd" in
  start)
    install_pg
    if [[ ! -f "$dir/PG_VERSION" ]]; then
      mkdir -p "$dir"
      [[ $(id -u) == 0 ]] && chown postgres:postgres "$dir"
      chmod 700 "$dir"
      as_owner "$bin/initdb" -D "$dir" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir.initdb.log" 2>&1 \
        || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    if ! running; then
      # fsync stays on: the numbers and the failover test are about durable commits.
      as_owner "$bin/pg_ctl" -D "$dir" -w -t 60 -l "$dir/log" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
        || { tail -20 "$dir/log" >&2; exit 1; }
    fi
    if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
      as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE $db" >/dev/null
    fi
    url
    ;;
  url)
    running || { log "no cluster running in $dir"; exit 1; }
    url
    ;;
  stop)
    if running; then as_owner "$bin/pg_ctl" -D "$dir" -w -m fast stop >/dev/null; fi
    ;;
  destroy)
    if running; then as_owner "$bin/pg_ctl" -D "$dir" -w -m fast stop >/dev/null; fi
    rm -rf "$dir" "$dir.initdb.log"
    ;;
  *)
    echo "usage: $0 start|url|stop|destroy [DIR] [PORT]" >&2
    exit 2
    ;;
esac
