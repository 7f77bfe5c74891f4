#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for tests, benchmarks and CI.
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
# on 127.0.0.1 only, with its socket in DIR; the superuser's password is random
# (scram-sha-256), kept in DIR/entrada-password (0600) and part of the printed URL,
# so another local user cannot connect. `start` makes DIR itself and refuses an
# existing DIR that is not a cluster (it never chowns a directory it did not make).
# A test cluster: never point it at real data.
#
# Typical use:  export ENTRADA_TEST_PG=$(scripts/pg.sh start)   (the PG conformance tests read it)
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=${1:-start}
dir=${2:-${ENTRADA_PG_DIR:-/tmp/entrada-pg}}
port=${3:-${ENTRADA_PG_PORT:-55432}}
# The newest installed major version (Debian 12 ships 15, 13 ships 17).
newest_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
bin=${PG_BIN:-$(newest_bin)}
db=entrada

log() { echo "pg.sh: $*" >&2; }

install_pg() {
  [[ -n "$bin" && -x "$bin/pg_ctl" ]] && return 0
  log "installing postgresql (the distribution's package)"
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends postgresql postgresql-client >/dev/null
  bin=$(newest_bin)
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

password() { cat "$dir/entrada-password"; }
url() { echo "postgres://postgres:$(password)@127.0.0.1:${port}/${db}"; }

running() { [[ -f "$dir/postmaster.pid" ]] && as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; }

case "$cmd" in
  start)
    install_pg
    if [[ ! -f "$dir/PG_VERSION" ]]; then
      [[ -e "$dir" ]] && { log "$dir exists and is not a cluster made by this script: refusing"; exit 1; }
      mkdir -m 700 "$dir"
      [[ $(id -u) == 0 ]] && chown postgres:postgres "$dir"
      pwfile=$(mktemp)
      trap 'rm -f "$pwfile"' EXIT
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pwfile"
      [[ $(id -u) == 0 ]] && chown postgres:postgres "$pwfile"
      out=$(as_owner "$bin/initdb" -D "$dir" -A scram-sha-256 --pwfile="$pwfile" -U postgres -E UTF8 --locale=C.UTF-8 2>&1) \
        || { echo "$out" >&2; exit 1; }
      install -m 600 "$pwfile" "$dir/entrada-password"
      rm -f "$pwfile"
    fi
    export PGPASSWORD; PGPASSWORD=$(password)
    if ! running; then
      # fsync stays on: the numbers and the failover test are about durable commits.
      as_owner "$bin/pg_ctl" -D "$dir" -w -t 60 -l "$dir/log" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
        || { tail -20 "$dir/log" >&2; exit 1; }
    fi
    if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
      "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE $db" >/dev/null
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
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|url|stop|destroy [DIR] [PORT]" >&2
    exit 2
    ;;
esac
