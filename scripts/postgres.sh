# Sourced by scripts/test.sh: starts a throw-away PostgreSQL server for the cluster tests on a
# free loopback port in a temporary directory, exports SWITCHBOARD_TEST_POSTGRES (a DSN of a
# superuser, trust authentication, loopback only) and stops the server by its PID on exit.
# PostgreSQL comes from Debian's packages (installed with apt-get when missing and run as root);
# it refuses to run as root, so as root the server runs as the `postgres` user.

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pg_bin" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "== installing PostgreSQL with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    else
        echo "scripts/test.sh: PostgreSQL is not installed (apt-get install postgresql) and this user cannot install it" >&2
        exit 1
    fi
fi

pg_dir=$(mktemp -d /tmp/switchboard-pg.XXXXXX)
as_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$pg_dir"
    as_pg() { runuser -u postgres -- "$@"; }
fi
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "== starting PostgreSQL ($pg_bin) on 127.0.0.1:$pg_port in $pg_dir"
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres -E UTF8 --no-sync >"$pg_dir/initdb.log" 2>&1 ||
    { cat "$pg_dir/initdb.log" >&2; exit 1; }
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c max_connections=300" start >/dev/null ||
    { cat "$pg_dir/server.log" >&2; exit 1; }
pg_pid=$(head -1 "$pg_dir/data/postmaster.pid")

stop_postgres() {
    # SIGINT is PostgreSQL's fast shutdown; wait for the process to go, then remove its files.
    if [ -n "${pg_pid:-}" ] && kill -INT "$pg_pid" 2>/dev/null; then
        for _ in $(seq 1 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$pg_dir"
}
trap stop_postgres EXIT

export SWITCHBOARD_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres"
