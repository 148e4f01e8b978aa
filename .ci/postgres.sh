#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 for the gallery and server tests, installing
# Debian's postgresql package when it is missing, and prints its URL on standard output.
# Idempotent: a server already running from an earlier call is reused.
set -euo pipefail
port="${VISAGE_PG_PORT:-54329}"
data="${VISAGE_PG_DIR:-${TMPDIR:-/tmp}/visage-ci-postgres}"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null; then
    echo "PostgreSQL is not installed and apt-get is missing: install postgresql" >&2
    exit 1
  fi
  as_root=""
  [ "$(id -u)" -ne 0 ] && as_root="sudo"
  $as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends postgresql >&2
fi
bin="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"

# initdb and postgres refuse to run as root: run them as the postgres user then.
run() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
    run "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  run "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off" start >/dev/null ||
    { echo "PostgreSQL did not start; its log:" >&2; tail -20 "$data/server.log" >&2; exit 1; }
fi
"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" ||
  { echo "PostgreSQL on 127.0.0.1:$port does not answer" >&2; exit 1; }
echo "postgres://postgres@127.0.0.1:$port/postgres"
