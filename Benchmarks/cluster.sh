#!/usr/bin/env bash
# Cluster measurements on this machine: starts a throw-away PostgreSQL (scripts/postgres.sh) and
# two gateway nodes on it, then times configuration propagation (A's Admin API → B's proxy).
# SWITCHBOARD_BIN picks the binary (default: a release build, made if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SWITCHBOARD_BIN:-.build/release/switchboard}
[ -x "$bin" ] || swift build -c release --product switchboard
source scripts/postgres.sh
work=$(mktemp -d /tmp/switchboard-cluster.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
    stop_postgres
}
trap cleanup EXIT
start_node() {  # name proxy_port admin_port
    cat >"$work/$1.yaml" <<YAML
store: $SWITCHBOARD_TEST_POSTGRES
proxy: {listen: "127.0.0.1:$2"}
admin: {listen: "127.0.0.1:$3", keys: [{key: bench-key}]}
control: {enabled: false}
prometheus: {enabled: false}
access_log: {path: "off"}
YAML
    "$bin" serve --config "$work/$1.yaml" --log-level warning 2>"$work/$1.log" &
    pids+=($!)
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null -H "X-API-KEY: bench-key" "http://127.0.0.1:$3/apisix/admin/routes" && return
        sleep 0.1
    done
    echo "node $1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1
}
a_proxy=$(port); a_admin=$(port); b_proxy=$(port); b_admin=$(port)
start_node a "$a_proxy" "$a_admin"
start_node b "$b_proxy" "$b_admin"
echo "== configuration propagation, node A's Admin API → node B's proxy"
python3 Benchmarks/cluster_propagation.py "$a_admin" "$b_proxy" bench-key "${WRITES:-100}"
