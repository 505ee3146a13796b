#!/usr/bin/env bash
# Start PostgreSQL and MariaDB on 127.0.0.1 for the storage tests; print the URLs as env exports.
# usage: eval "$(bash scripts/servers.sh start)"   |   bash scripts/servers.sh stop
# Only servers this script started are stopped (state in .ci/.servers-started). One line per server
# on stderr; the servers' own output goes to .ci/.servers.log.
set -uo pipefail
cd "$(dirname "$0")/.."
state=.ci/.servers-started
log=.ci/.servers.log
pg_url="postgresql+psycopg2://rl:rl@127.0.0.1:5432/optuna"
my_url="mysql+pymysql://rl:rl@127.0.0.1:3306/optuna"

start_postgres() {
  command -v pg_ctlcluster >/dev/null || { echo "servers: no PostgreSQL installed" >&2; return 1; }
  ver=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
  how="already running"
  if ! pg_lsclusters 2>/dev/null | grep -q "^$ver *main .* online"; then
    pg_ctlcluster "$ver" main start >>"$log" 2>&1 || { echo "servers: PostgreSQL $ver did not start (see $log)" >&2; return 1; }
    echo "postgres $ver" >> "$state"
    how="started"
  fi
  {
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='rl'\"" | grep -q 1 ||
      su postgres -c "psql -q -c \"CREATE USER rl WITH PASSWORD 'rl'\""
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='optuna'\"" | grep -q 1 ||
      su postgres -c "psql -q -c \"CREATE DATABASE optuna OWNER rl\""
    # A role whose password holds '@' and ':' (the secrets test checks it never shows anywhere).
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='rlsecret'\"" | grep -q 1 ||
      su postgres -c "psql -q -c \"CREATE USER rlsecret WITH PASSWORD 'Sentinel@Pass:7'\""
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='optuna_secret'\"" | grep -q 1 ||
      su postgres -c "psql -q -c \"CREATE DATABASE optuna_secret OWNER rlsecret\""
  } >>"$log" 2>&1
  echo "servers: PostgreSQL $ver $how on 127.0.0.1:5432" >&2
  echo "export RLSWEEP_TEST_POSTGRES='$pg_url'"
  echo "export RLSWEEP_TEST_POSTGRES_SECRET='postgresql://rlsecret:Sentinel%40Pass:7@127.0.0.1:5432/optuna_secret'"
}

start_mariadb() {
  command -v mariadbd >/dev/null || { echo "servers: no MariaDB installed (scripts/system-deps.sh installs it)" >&2; return 1; }
  how="already running"
  if ! mariadb -e "SELECT 1" >/dev/null 2>&1; then
    service mariadb start >>"$log" 2>&1 || { echo "servers: MariaDB did not start (see $log)" >&2; return 1; }
    echo "mariadb" >> "$state"
    how="started"
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS optuna;
    CREATE USER IF NOT EXISTS 'rl'@'localhost' IDENTIFIED BY 'rl';
    CREATE USER IF NOT EXISTS 'rl'@'127.0.0.1' IDENTIFIED BY 'rl';
    GRANT ALL ON optuna.* TO 'rl'@'localhost'; GRANT ALL ON optuna.* TO 'rl'@'127.0.0.1';" >>"$log" 2>&1 ||
    { echo "servers: MariaDB has no 'rl' user or 'optuna' database (see $log)" >&2; return 1; }
  echo "servers: MariaDB $how on 127.0.0.1:3306" >&2
  echo "export RLSWEEP_TEST_MYSQL='$my_url'"
}

case "${1:-start}" in
  start)
    start_postgres || echo "servers: PostgreSQL not started; its tests will be skipped unless required" >&2
    start_mariadb || echo "servers: MariaDB not started; its tests will be skipped unless required" >&2
    ;;
  stop)
    [ -f "$state" ] || exit 0
    while read -r name ver; do
      case "$name" in
        postgres) pg_ctlcluster "$ver" main stop >>"$log" 2>&1 && echo "servers: PostgreSQL $ver stopped" >&2 ;;
        mariadb) service mariadb stop >>"$log" 2>&1 && echo "servers: MariaDB stopped" >&2 ;;
      esac
    done < "$state"
    rm -f "$state"
    ;;
esac
