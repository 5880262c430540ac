#!/usr/bin/env bash
# PostgreSQL for tests and benchmarks on this machine: installs Debian's `postgresql` package when
# it is missing, makes sure a cluster exists, trusts loopback connections, starts it on
# 127.0.0.1:5432 and creates the `test` database that QGATE_TEST_DATABASE_URL names.
#
#   scripts/postgres.sh start    install if needed, start, create database test (idempotent)
#   scripts/postgres.sh stop     stop the cluster this script manages
#   scripts/postgres.sh status   say whether 127.0.0.1:5432 answers
#
# Trust auth is for loopback only and only for a test machine: never run this on a server that
# holds real data.
set -euo pipefail

PORT="${QGATE_PG_PORT:-5432}"
DB="${QGATE_PG_DATABASE:-test}"

say() { echo "postgres.sh: $*"; }

reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

install() {
  if command -v pg_ctlcluster >/dev/null && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    return
  fi
  [ "$(id -u)" = 0 ] || { say "PostgreSQL is not installed and this is not root: install Debian's postgresql package"; exit 1; }
  say "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
}

cluster_version() { ls /usr/lib/postgresql | sort -V | tail -1; }

ensure_cluster() {
  local v="$1"
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$v main"; then
    say "creating cluster $v/main"
    pg_createcluster "$v" main --port "$PORT" >/dev/null
  fi
  local hba="/etc/postgresql/$v/main/pg_hba.conf"
  # Trust loopback (TCP and the local socket) so the tests' URL needs no password.
  if ! grep -q '^# qgate: trust loopback' "$hba"; then
    say "trusting loopback connections in $hba"
    local tmp
    tmp="$(mktemp)"
    {
      echo '# qgate: trust loopback (test machine only)'
      echo 'local   all   all                 trust'
      echo 'host    all   all   127.0.0.1/32  trust'
      echo 'host    all   all   ::1/128       trust'
      cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba"
    rm -f "$tmp"
  fi
  local conf="/etc/postgresql/$v/main/conf.d/qgate.conf"
  if [ ! -f "$conf" ]; then
    mkdir -p "$(dirname "$conf")"
    # Enough connections for the store suite, two-node tests and benchmarks; listen on loopback only.
    printf "listen_addresses = '127.0.0.1'\nport = %s\nmax_connections = 300\n" "$PORT" >"$conf"
  fi
}

start() {
  if reachable; then
    say "127.0.0.1:$PORT already answers"
  else
    install
    local v
    v="$(cluster_version)"
    ensure_cluster "$v"
    # Debian's package may have started the new cluster on install: restart it then, so that the
    # settings above apply.
    if pg_lsclusters -h | awk -v v="$v" '$1==v && $2=="main" {print $4}' | grep -q online; then
      say "restarting cluster $v/main"
      pg_ctlcluster --skip-systemctl-redirect "$v" main restart
    else
      say "starting cluster $v/main"
      pg_ctlcluster --skip-systemctl-redirect "$v" main start
    fi
    for _ in $(seq 1 60); do reachable && break; sleep 0.5; done
    reachable || { say "PostgreSQL did not come up on 127.0.0.1:$PORT"; tail -20 "/var/log/postgresql/postgresql-$v-main.log" || true; exit 1; }
  fi
  if ! psql -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
    say "creating database $DB"
    psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE \"$DB\""
  fi
  say "ready: postgres://postgres@127.0.0.1:$PORT/$DB?sslmode=disable"
}

stop() {
  local v
  v="$(cluster_version)"
  pg_ctlcluster --skip-systemctl-redirect "$v" main stop || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if reachable; then say "up on 127.0.0.1:$PORT"; else say "down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
