#!/usr/bin/env bash
# Cluster measurements on this machine: starts a throw-away PostgreSQL (scripts/postgres.sh) and
# two gateway nodes on it, then times configuration propagation (A's Admin API → B's proxy).
# SWITCHBOARD_BIN picks the binary (default: a release build, made if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SWITCHBOARD_BIN:-.build/release/switchboard}
[ -x "$bin" ] || swift build -c release --static-swift-stdlib --product switchboard
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

# --- shared quotas -----------------------------------------------------------------------------
# The counter statements alone (pgbench against the functions the gateway calls), then the latency
# a `policy: cluster` request adds over `local` through a node, against an nginx mock provider.
pg_url=$SWITCHBOARD_TEST_POSTGRES
pgbench=$(command -v pgbench || echo "$(dirname "$SWITCHBOARD_TEST_PG_CTL")/pgbench")
cat >"$work/reserve_hot.sql" <<'SQL'
SELECT * FROM switchboard_quota_reserve('bench:hot', 60, 1000000000000, 11);
SQL
cat >"$work/reserve_spread.sql" <<'SQL'
\set k random(1, 1000)
SELECT * FROM switchboard_quota_reserve('bench:' || :k, 60, 1000000000000, 11);
SQL
cat >"$work/request_spread.sql" <<'SQL'
\set k random(1, 1000)
SELECT * FROM switchboard_quota_reserve('bench:' || :k, 60, 1000000000000, 11);
SELECT * FROM switchboard_quota_apply(ARRAY['bench:' || :k], ARRAY[(floor(extract(epoch FROM now()) / 60) * 60)::BIGINT], ARRAY[-11::BIGINT], ARRAY[10::BIGINT]);
SQL
echo
echo "== counter statements, pgbench ${PGBENCH_SECONDS:-10} s per cell (transactions/s)"
echo "| workload | 16 connections | 64 connections |"
echo "|---|---|---|"
for workload in reserve_hot reserve_spread request_spread; do
    row="| $workload |"
    for clients in 16 64; do
        tps=$("$pgbench" -n -c "$clients" -j 2 -T "${PGBENCH_SECONDS:-10}" -f "$work/$workload.sql" "$pg_url" 2>/dev/null \
            | awk '/^tps/ { printf "%.0f", $3 }')
        row="$row $tps |"
    done
    echo "$row"
done

mock=$(port)
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/body;
    server {
        listen 127.0.0.1:$mock;
        location / { default_type application/json; return 200 '{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":42,"completion_tokens":12,"total_tokens":54}}'; }
    }
}
NGINX
/usr/sbin/nginx -c "$work/nginx.conf" -p "$work" -g "daemon on;"
stop_nginx() { [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; }
trap 'stop_nginx; cleanup' EXIT
quota_route() {  # id, ai-rate-limiting config
    curl -sf -o /dev/null -X PUT -H "X-API-KEY: bench-key" "http://127.0.0.1:$a_admin/apisix/admin/routes/$1" \
        -d '{"uri":"/'"$1"'/*","plugins":{"ai-proxy":{"provider":"openai-compatible","auth":{},"override":{"endpoint":"http://127.0.0.1:'"$mock"'/v1/chat/completions"}},"ai-rate-limiting":'"$2"'}}'
}
quota_route local '{"limit":1000000000000,"time_window":60}'
quota_route cluster '{"policy":"cluster","limit":1000000000000,"time_window":60}'
quota_route batched '{"policy":"cluster","limit":1000000000000,"time_window":60,"sync_interval":100}'
cat >"$work/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"model":"m","messages":[{"role":"user","content":"Summarise the plot of Hamlet in two sentences."}],"max_tokens":128}]]
LUA
to_us() {  # wrk latency like 1.23ms, 456.00us
    awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 } }'
}
echo
echo "== one node (A), ai-rate-limiting policy local / cluster / cluster with sync_interval 100 ms, wrk ${QUOTA_SECONDS:-5} s"
echo "| policy | conc. | req/s | p50 µs | p99 µs |"
echo "|---|---|---|---|---|"
for c in 1 16; do
    for policy in local cluster batched; do
        wrk -t 1 -c "$c" -d 1s -s "$work/chat.lua" "http://127.0.0.1:$a_proxy/$policy/v1/chat/completions" >/dev/null
        out=$(wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d "${QUOTA_SECONDS:-5}s" --latency -s "$work/chat.lua" \
            "http://127.0.0.1:$a_proxy/$policy/v1/chat/completions")
        rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
        p50=$(to_us "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
        p99=$(to_us "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
        non2xx=$(echo "$out" | awk '/Non-2xx/ { print " (" $5 " non-2xx)" }')
        echo "| $policy | $c | $rps$non2xx | $p50 | $p99 |"
    done
done
