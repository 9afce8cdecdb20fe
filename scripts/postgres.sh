#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the status store tests (Debian's postgresql package).
#
#   scripts/postgres.sh start    initdb in $RK_POSTGRES_DATA if new, start, wait until it answers; prints the DSN
#   scripts/postgres.sh stop     stop the cluster this script started (fast shutdown)
#   scripts/postgres.sh status   say whether it runs and where
#   scripts/postgres.sh dsn      print the DSN (postgresql://rueckkanal@127.0.0.1:<port>/rueckkanal)
#
# The server runs as the `postgres` system user when started by root (initdb refuses root), with trust
# authentication on 127.0.0.1 only, fsync off (a test cluster: speed over durability) and its socket in the data
# directory. scripts/tools.sh ensure installs the package.
#
# Environment:
#   RK_POSTGRES_PORT  port on 127.0.0.1 (default 15432)
#   RK_POSTGRES_DATA  data directory (default ~/.cache/rueckkanal/run/postgres-<port>, or under /tmp when run as root:
#                     the `postgres` user cannot reach root's home); scripts/test.sh uses a temp dir
set -euo pipefail

port="${RK_POSTGRES_PORT:-15432}"
if [[ "$(id -u)" == 0 ]]; then
    data="${RK_POSTGRES_DATA:-${TMPDIR:-/tmp}/rueckkanal-postgres-$port}"
else
    data="${RK_POSTGRES_DATA:-$HOME/.cache/rueckkanal/run/postgres-$port}"
fi
user=rueckkanal
database=rueckkanal

say() { echo "postgres.sh: $*" >&2; }

bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" ]]; then latest="$dir"; fi
    done
    [[ -n "${latest:-}" ]] || { say "PostgreSQL is not installed (scripts/tools.sh ensure installs Debian's postgresql)"; exit 1; }
    echo "$latest"
}

# Run a PostgreSQL binary as the owner of the cluster: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

dsn() { echo "postgresql://$user@127.0.0.1:$port/$database"; }

running() { [[ -f "$data/pgdata/postmaster.pid" ]] && as_owner "$(bindir)/pg_ctl" -D "$data/pgdata" status >/dev/null 2>&1; }

start() {
    local bin
    bin="$(bindir)"
    if running; then say "already running on 127.0.0.1:$port"; dsn; return 0; fi
    mkdir -p "$data"
    if [[ "$(id -u)" == 0 ]]; then chown postgres: "$data"; chmod 700 "$data"; fi
    if [[ ! -f "$data/pgdata/PG_VERSION" ]]; then
        as_owner "$bin/initdb" -D "$data/pgdata" -U "$user" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$data/initdb.log" 2>&1 ||
            { say "initdb failed:"; tail -n 20 "$data/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$data/pgdata" -l "$data/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { say "the server did not start:"; tail -n 20 "$data/server.log" >&2; exit 1; }
    if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$database"
    fi
    say "running on 127.0.0.1:$port (data $data)"
    dsn
}

stop() {
    if ! running; then say "not running"; return 0; fi
    as_owner "$(bindir)/pg_ctl" -D "$data/pgdata" -m fast -w stop >/dev/null
    say "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if running; then say "running on 127.0.0.1:$port"; dsn; else say "not running"; exit 1; fi ;;
    dsn) dsn ;;
    *) echo "usage: $0 start|stop|status|dsn" >&2; exit 2 ;;
esac
