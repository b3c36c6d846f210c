#!/usr/bin/env bash
# Entrypoint of the postgres stand-in. As root it prepares PGDATA and restarts itself as postgres.
# On an empty PGDATA it runs initdb (superuser POSTGRES_USER, password POSTGRES_PASSWORD),
# accepts password connections from anywhere, creates POSTGRES_DB, and runs the *.sh, *.sql and
# *.sql.gz files of /docker-entrypoint-initdb.d in order on a server that listens on its socket
# only. Then it runs the command, `postgres` listening on every address.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi

export POSTGRES_USER="${POSTGRES_USER:-postgres}"
export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-}"

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

sql() {
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ]; then
    echo "error: the database is not initialised and POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of initdb options
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") ${POSTGRES_INITDB_ARGS:-}
  printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
  if [ "$POSTGRES_DB" != postgres ]; then
    sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        echo "$0: running $f"
        if [ -x "$f" ]; then
          "$f"
        else
          # shellcheck disable=SC1090 # a script that is not executable is sourced
          . "$f"
        fi
        ;;
      *.sql) echo "$0: running $f"; sql --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | sql --dbname "$POSTGRES_DB" ;;
      *) echo "$0: ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "PostgreSQL init process complete; ready for start up."
else
  echo "PostgreSQL database directory appears to contain a database; skipping initialization"
fi
exec "$@"
