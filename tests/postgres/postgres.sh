#!/usr/bin/env bash
# PostgreSQL from Debian's packages as seed 000's sink, for the tests and the testbed.
#   postgres.sh up DIR PORT [LISTEN_ADDRESS]   initdb into DIR/data, start, create the
#                                              database; writes DIR/postgres.env (URL=...)
#   postgres.sh down DIR                       stop it (the files stay in DIR)
# As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).
# Password authentication over TCP, as a real ingestion consumer meets it.
set -euo pipefail

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pg_bin" ] || { echo "PostgreSQL is not installed; run tests/setup.sh (Debian package postgresql)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

up() {
    local dir=$1 port=$2 listen=${3:-127.0.0.1}
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    local data="$dir/data"
    local pwfile="$dir/password"
    as_owner bash -c "umask 077; echo plateau > '$pwfile'"
    as_owner "$pg_bin/initdb" -D "$data" -U plateau --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    # Consumers on other hosts of the same network (the testbed's namespaces) log in with
    # the password too.
    as_owner bash -c "echo 'host all all samenet scram-sha-256' >> '$data/pg_hba.conf'"
    # Sized for a 2-core machine shared with three brokers; durability stays on (fsync,
    # synchronous commit): a sink's commit waits on its disk, as it does in production.
    as_owner "$pg_bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start \
        -o "-c listen_addresses=$listen -p $port -k $data -c shared_buffers=64MB -c max_connections=100" >/dev/null ||
        { cat "$dir/postgres.log" >&2; exit 1; }
    as_owner "$pg_bin/psql" -h "$data" -p "$port" -U plateau -d postgres -qc "CREATE DATABASE plateau" >/dev/null
    echo "URL=postgres://plateau:plateau@$listen:$port/plateau" >"$dir/postgres.env"
    echo "PID=$(head -1 "$data/postmaster.pid")" >>"$dir/postgres.env"
}

down() {
    local data="$1/data"
    [ -f "$data/postmaster.pid" ] || return 0
    as_owner "$pg_bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) shift; down "$@" ;;
    *) echo "usage: $0 up DIR PORT [LISTEN_ADDRESS] | down DIR" >&2; exit 2 ;;
esac
