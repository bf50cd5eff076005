#!/usr/bin/env bash
# Stand-in for the official postgres image's docker-entrypoint.sh (Debian variant), the entrypoint
# of the locally built image (node/images.sh), which holds Debian's PostgreSQL. It does what the image's
# entrypoint is documented to do when started as a non-root user with "postgres" as its command:
#   * POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE, likewise for USER/DB/INITDB_ARGS) is required
#     unless POSTGRES_HOST_AUTH_METHOD=trust;
#   * on an empty $PGDATA: initdb with POSTGRES_USER as superuser and the password, listen on all
#     addresses (the image's postgresql.conf.sample says listen_addresses='*'), a pg_hba.conf line
#     "host all all all scram-sha-256", start a socket-only server, CREATE DATABASE $POSTGRES_DB
#     unless it is "postgres", run /docker-entrypoint-initdb.d/*.sh|*.sql, stop that server;
#   * then exec postgres with the given arguments.
set -Eeuo pipefail

say() { echo "$(date '+%Y-%m-%d %H:%M:%S') entrypoint: $*"; }

file_env() { # VAR [default]: VAR or the contents of VAR_FILE
  local var=$1 file_var="${1}_FILE" def="${2:-}"
  if [ "${!var:-}" ] && [ "${!file_var:-}" ]; then
    echo >&2 "error: both $var and $file_var are set (but are exclusive)"; exit 1
  fi
  local val="$def"
  if [ "${!var:-}" ]; then val="${!var}"; elif [ "${!file_var:-}" ]; then val="$(< "${!file_var}")"; fi
  export "$var"="$val"
  unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
if [ "$1" != 'postgres' ]; then exec "$@"; fi

if [ "$(id -u)" = '0' ]; then
  echo >&2 "e2e stand-in: running the postgres image as root is not emulated (the image would chown and drop to uid 999)"; exit 1
fi

: "${PGDATA:?PGDATA is not set}"
mkdir -p "$PGDATA"
chmod 00700 "$PGDATA" || :
mkdir -p /var/run/postgresql || :
chmod 03775 /var/run/postgresql || :

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'EOM'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
EOM
    exit 1
  fi
  if [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then
    echo >&2 "initdb: error: directory \"$PGDATA\" exists but is not empty"; exit 1
  fi
  say "initializing $PGDATA"
  # shellcheck disable=SC2086
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

  export PGPASSWORD="$POSTGRES_PASSWORD"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
  psql_base=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  if [ "$POSTGRES_DB" != 'postgres' ]; then
    exists="$("${psql_base[@]}" --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<'EOSQL'
SELECT 1 FROM pg_database WHERE datname = :'db' ;
EOSQL
)"
    if [ -z "$(echo "$exists" | tr -d '[:space:]')" ]; then
      "${psql_base[@]}" --dbname postgres --set db="$POSTGRES_DB" <<'EOSQL'
CREATE DATABASE :"db" ;
EOSQL
    fi
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) [ -x "$f" ] && "$f" || . "$f" ;;
      *.sql) "${psql_base[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  say "PostgreSQL init process complete; ready for start up."
else
  say "PostgreSQL Database directory appears to contain a database; Skipping initialization"
fi

exec "$@"
