# Sourced by scripts/test.sh: starts a throw-away PostgreSQL server for the cluster tests on a
# free loopback port in a temporary directory, exports SWITCHBOARD_TEST_POSTGRES (a DSN of a
# superuser, trust authentication, loopback only) and SWITCHBOARD_TEST_PG_CTL/_DATA/_USER (to
# restart it), and stops the server by its PID on exit.
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
# Settings in the data directory, so that a test can restart the server with plain pg_ctl.
cat >>"$pg_dir/data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pg_dir'
fsync = off
max_connections = 300
CONF
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 start >/dev/null ||
    { cat "$pg_dir/server.log" >&2; exit 1; }

stop_postgres() {
    # SIGINT is PostgreSQL's fast shutdown. The PID is read now: a test may have restarted the
    # server. Wait for the process to go, then remove its files.
    local pid
    pid=$(head -1 "$pg_dir/data/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null; then
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$pg_dir"
}
trap stop_postgres EXIT

export SWITCHBOARD_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres"
# For the outage tests: `pg_ctl` of this server, run as the user that owns it.
export SWITCHBOARD_TEST_PG_CTL="$pg_bin/pg_ctl"
export SWITCHBOARD_TEST_PG_DATA="$pg_dir/data"
export SWITCHBOARD_TEST_PG_USER="$( [ "$(id -u)" -eq 0 ] && echo postgres || true )"
