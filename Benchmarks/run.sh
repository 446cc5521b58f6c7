#!/usr/bin/env bash
# Switchboard's benchmark harness: Switchboard against an nginx reverse proxy, vllm-router (a Rust
# LLM router, from PyPI) and the mock provider directly, all on 127.0.0.1, closed loop with wrk,
# alternating rounds.
#
#   Benchmarks/run.sh                 full run (release build, 10 s per cell, 3 rounds, 5000 streams)
#   Benchmarks/run.sh --smoke         a few seconds, debug build, no targets (CI runs this)
#   Benchmarks/run.sh --soak 30       RSS every minute under steady load for 30 minutes
#   Benchmarks/run.sh --soak 30 --faults [--rate N]
#                                     the same under faults (Benchmarks/soak.py): fake providers that
#                                     reset, stall, answer 429/500 and garble streams, N requests/s
#                                     (default 20) open loop, chat/stream/embeddings; every minute RSS,
#                                     fds, in-flight and reserved quota (dashboard API), errors, faults;
#                                     at the end every client error must be explained by an injected
#                                     fault and in-flight/reserved must be 0, else it exits non-zero
#   options: --duration S  --rounds N  --streams N  --stream-seconds S  --scenarios "chat stream"
#   SWITCHBOARD_BIN=path  benchmark that binary instead of building (compare two builds)
#   BENCH_PORT_BASE=N     listen on N+1..N+10 instead of 18801..18810
#   VLLM_ROUTER=0|1       leave out / include vllm-router (default: included, except with --smoke)
#
# Installs wrk and nginx from the distribution's packages when missing, and vllm-router into a
# virtual environment in the work directory (none of them with --faults). Every process it starts
# is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0 DURATION=10 ROUNDS=3 SOAK=0 FAULTS=0 RATE=20 STREAMS=5000 STREAM_SECONDS=30 SCENARIOS="chat stream embeddings"
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1; DURATION=1; ROUNDS=1; STREAMS=50; STREAM_SECONDS=2; VLLM_ROUTER=${VLLM_ROUTER:-0} ;;
        --duration) DURATION=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --soak) SOAK=$2; shift ;;
        --faults) FAULTS=1 ;;
        --rate) RATE=$2; shift ;;
        --streams) STREAMS=$2; shift ;;
        --stream-seconds) STREAM_SECONDS=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$FAULTS" = 1 ] && [ "$SOAK" -le 0 ]; then echo "--faults goes with --soak MINUTES" >&2; exit 2; fi

WORK=$(mktemp -d /tmp/switchboard-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

# --- tools ----------------------------------------------------------------------------------
need=()
if [ "$FAULTS" = 0 ]; then  # the fault soak brings its own providers and client (soak.py)
    command -v wrk >/dev/null || need+=(wrk)
    [ -x /usr/sbin/nginx ] || need+=(nginx-light)
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

if [ -n "${SWITCHBOARD_BIN:-}" ]; then
    BIN=$SWITCHBOARD_BIN
    BUILD="given ($BIN)"
elif [ "$SMOKE" = 1 ]; then
    swift build --product switchboard >&2
    BIN=$(swift build --show-bin-path)/switchboard
    BUILD=debug
else
    # As the README builds a release binary: the Swift runtime linked in statically (retain,
    # release and the concurrency runtime called directly, not through the PLT).
    swift build -c release --static-swift-stdlib --product switchboard >&2
    BIN=$(swift build -c release --static-swift-stdlib --show-bin-path)/switchboard
    BUILD=release
fi

BASE=${BENCH_PORT_BASE:-18800}  # another base lets two runs (e.g. a soak and an A/B) coexist
MOCK=$((BASE + 1)) NGINX=$((BASE + 2)) SB=$((BASE + 3)) ADMIN=$((BASE + 4)) SCALE=$((BASE + 5))
# vllm-router forwards the client's path, so it gets a second mock pair that streams on the chat path.
VR=$((BASE + 6)) VRS=$((BASE + 7)) MOCK2=$((BASE + 8)) SMOCK=$((BASE + 9)) SMOCK2=$((BASE + 10))
VLLM_ROUTER=${VLLM_ROUTER:-1}
[ "$FAULTS" = 1 ] && VLLM_ROUTER=0  # no comparison in the fault soak: Switchboard alone

# --- the mock provider and the nginx reference -----------------------------------------------
CHAT='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog."},"finish_reason":"stop"}],"usage":{"prompt_tokens":42,"completion_tokens":12,"total_tokens":54}}'
EMB='{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0093,0.0157,-0.0076,0.0211,0.0049,-0.0182,0.0133]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}'
SSE='data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

'
for i in $(seq 1 18); do
    SSE+='data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"word'$i' "},"finish_reason":null}]}

'
done
SSE+='data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":42,"completion_tokens":18,"total_tokens":60}}

data: [DONE]

'
cat > "$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    upstream mock { server 127.0.0.1:$MOCK; keepalive 512; }
    server {
        listen 127.0.0.1:$MOCK backlog=8192;
        listen 127.0.0.1:$MOCK2 backlog=8192;
        location = /health { return 200 'ok'; }
        location = /v1/chat/completions { default_type application/json; return 200 '$CHAT'; }
        location = /v1/embeddings { default_type application/json; return 200 '$EMB'; }
        location = /stream/v1/chat/completions { default_type text/event-stream; return 200 '$SSE'; }
    }
    server {
        listen 127.0.0.1:$SMOCK backlog=8192;
        listen 127.0.0.1:$SMOCK2 backlog=8192;
        location = /health { return 200 'ok'; }
        location = /v1/chat/completions { default_type text/event-stream; return 200 '$SSE'; }
    }
    server {
        listen 127.0.0.1:$NGINX backlog=8192;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
[ "$FAULTS" = 1 ] || /usr/sbin/nginx -c "$WORK/nginx.conf" -p "$WORK" -g "daemon on;"

# --- vllm-router: round robin over the two mock ports, one router for chat/embeddings, one for streams
TARGETS="direct nginx switchboard"
if [ "$VLLM_ROUTER" = 1 ]; then
    echo "== installing vllm-router from PyPI" >&2
    python3 -m venv "$WORK/vllm-venv" && "$WORK/vllm-venv/bin/pip" install -q vllm-router >&2
    start_router() {  # port, mock port, mock port (its metrics listen on port + 100)
        "$WORK/vllm-venv/bin/vllm-router" --host 127.0.0.1 --port "$1" --policy round_robin --log-level error \
            --prometheus-host 127.0.0.1 --prometheus-port "$(( $1 + 100 ))" \
            --worker-urls "http://127.0.0.1:$2" "http://127.0.0.1:$3" >"$WORK/vllm-router-$1.log" 2>&1 &
        PIDS+=($!)
        for _ in $(seq 1 300); do
            curl -sf -o /dev/null -H 'Content-Type: application/json' -d '{"model":"m","messages":[]}' \
                "http://127.0.0.1:$1/v1/chat/completions" && return
            sleep 0.1
        done
        echo "vllm-router on $1 did not start:" >&2; cat "$WORK/vllm-router-$1.log" >&2; exit 1
    }
    start_router "$VR" "$MOCK" "$MOCK2"
    VRPID=${PIDS[-1]}
    start_router "$VRS" "$SMOCK" "$SMOCK2"
    VRSPID=${PIDS[-1]}
    TARGETS="direct nginx vllm-router switchboard"
fi

# --- Switchboard, configured through its Admin API --------------------------------------------
cat > "$WORK/switchboard.yaml" <<EOF
proxy: {listen: "127.0.0.1:$SB"}
admin: {listen: "127.0.0.1:$ADMIN", keys: [{key: bench-admin-key}]}
control: {enabled: false}
prometheus: {enabled: false}
store: sqlite:$WORK/switchboard.db
access_log: {path: "off"}
EOF
"$BIN" serve --config "$WORK/switchboard.yaml" --log-level error 2>"$WORK/switchboard.err" &
SBPID=$!
PIDS+=("$SBPID")
for _ in $(seq 1 100); do
    curl -sf -o /dev/null -H "X-API-KEY: bench-admin-key" "http://127.0.0.1:$ADMIN/apisix/admin/routes" && break
    sleep 0.1
done

# --- the soak under faults: soak.py is the fake providers (on N+5..N+8, which nothing else uses
# in this mode) and the client; it configures its own route and prints its own table ----------
if [ "$FAULTS" = 1 ]; then
    python3 "$ROOT/Benchmarks/soak.py" --proxy "127.0.0.1:$SB" --admin "127.0.0.1:$ADMIN" \
        --admin-key bench-admin-key --gateway-pid "$SBPID" --minutes "$SOAK" --rate "$RATE" \
        --fake-ports "$((BASE + 5)),$((BASE + 6)),$((BASE + 7)),$((BASE + 8))" &
    SOAKPID=$!
    PIDS+=("$SOAKPID")
    status=0
    wait "$SOAKPID" || status=$?
    if [ -s "$WORK/switchboard.err" ]; then
        echo
        echo "Switchboard's stderr ($WORK/switchboard.err, $(wc -l < "$WORK/switchboard.err") lines), the last ones:"
        tail -n 5 "$WORK/switchboard.err"
    fi
    exit "$status"
fi

instances() {  # $1: endpoint
    echo '[{"name":"mock-a","provider":"openai-compatible","weight":1,"auth":{"header":{"Authorization":"Bearer a"}},"override":{"endpoint":"'"$1"'"}},
           {"name":"mock-b","provider":"openai-compatible","weight":1,"auth":{"header":{"Authorization":"Bearer b"}},"override":{"endpoint":"'"$1"'"}}]'
}
route() {  # $1 id, $2 uri, $3 endpoint
    curl -sf -o /dev/null -X PUT -H "X-API-KEY: bench-admin-key" "http://127.0.0.1:$ADMIN/apisix/admin/routes/$1" \
        -d '{"uri":"'"$2"'","plugins":{"ai-proxy-multi":{"instances":'"$(instances "$3")"'}}}'
}
route llm "/v1/*" "http://127.0.0.1:$MOCK"
route stream "/stream/*" "http://127.0.0.1:$MOCK/stream/v1/chat/completions"
route scale "/scale/*" "http://127.0.0.1:$SCALE/v1/chat/completions"

# --- wrk --------------------------------------------------------------------------------------
script() {  # $1 name, $2 body
    cat > "$WORK/$1.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer client-key"
wrk.body = [[$2]]
EOF
}
script chat '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise the plot of Hamlet in two sentences, please."}],"temperature":0.2,"max_tokens":128}'
script stream '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise the plot of Hamlet in two sentences, please."}],"max_tokens":128}'
script embeddings '{"model":"text-embedding-3-small","input":"The quick brown fox jumps over the lazy dog"}'

path_of() {  # scenario, target
    case "$1" in
        chat) echo /v1/chat/completions ;;
        stream) [ "${2:-}" = vllm-router ] && echo /v1/chat/completions || echo /stream/v1/chat/completions ;;
        *) echo /v1/embeddings ;;
    esac
}
port_of() {  # target, scenario
    case "$1" in
        direct) echo $MOCK ;;
        nginx) echo $NGINX ;;
        vllm-router) [ "${2:-}" = stream ] && echo $VRS || echo $VR ;;
        *) echo $SB ;;
    esac
}
pid_of() {  # target, scenario: the process whose CPU is counted
    case "$1" in
        switchboard) echo "$SBPID" ;;
        vllm-router) [ "${2:-}" = stream ] && echo "$VRSPID" || echo "$VRPID" ;;
        *) echo "" ;;
    esac
}
to_ms() {  # wrk latency like 1.23ms, 456.00us, 1.2s
    awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 } else print v }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/${1:-$SBPID}/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SBPID/status"; }
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$SBPID/status"; }
TICK=$(getconf CLK_TCK)

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
run_cell() {  # $1 target, $2 scenario, $3 concurrency, $4 round
    local threads=$(( $3 < 2 ? 1 : 2 ))
    local before=0 after=0 pid
    pid=$(pid_of "$1" "$2")
    [ -n "$pid" ] && before=$(cpu_ticks "$pid")
    local out
    out=$(wrk -t "$threads" -c "$3" -d "${DURATION}s" --latency -s "$WORK/$2.lua" \
        "http://127.0.0.1:$(port_of "$1" "$2")$(path_of "$2" "$1")")
    [ -n "$pid" ] && after=$(cpu_ticks "$pid")
    local rps p50 p99 requests errors
    rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
    requests=$(echo "$out" | awk '/requests in/ { print $1 }')
    errors=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ { print $5 }')
    p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
    p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
    local cpu_us=0
    if [ -n "$pid" ] && [ "${requests:-0}" -gt 0 ]; then
        cpu_us=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.1f", t * 1000000 / hz / n }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$rps" "$p50" "$p99" "$cpu_us" "${errors:-0}" >> "$RESULTS"
}

if [ "$SOAK" -gt 0 ]; then
    echo "| minute | Switchboard RSS (MB) | requests/s |"
    echo "|---|---|---|"
    for minute in $(seq 1 "$SOAK"); do
        out=$(wrk -t 2 -c 16 -d 60s -s "$WORK/chat.lua" "http://127.0.0.1:$SB/v1/chat/completions")
        printf '| %s | %s | %s |\n' "$minute" "$(rss_mb)" "$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')"
    done
    exit 0
fi

CONCURRENCY="1 16 64"
[ "$SMOKE" = 1 ] && CONCURRENCY="1 16"
RSS_IDLE=$(rss_kb)
# Warm up pooled connections everywhere.
for t in $TARGETS; do wrk -t 1 -c 16 -d 1s -s "$WORK/chat.lua" "http://127.0.0.1:$(port_of $t)/v1/chat/completions" >/dev/null; done
for round in $(seq 1 "$ROUNDS"); do
    for scenario in $SCENARIOS; do
        for c in $CONCURRENCY; do
            for target in $TARGETS; do run_cell "$target" "$scenario" "$c" "$round"; done
        done
    done
done
RSS_AFTER=$(rss_kb)

# --- the table ---------------------------------------------------------------------------------
echo
echo "Switchboard $BUILD build, $(nproc) cores, wrk ${DURATION}s per cell, $ROUNDS round(s), $(date -u +%Y-%m-%d)."
echo
echo "| scenario | conc. | target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | ratio to nginx | ratio to vllm-router | CPU µs/req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
awk -F'\t' -v targets="$TARGETS" '
    { key = $2 SUBSEP $3 SUBSEP $1; n[key]++; rps[key] += $5; p50[key] += $6; p99[key] += $7; cpu[key] += $8; err[key] += $9 }
    END {
        split("chat stream embeddings", scen, " "); nt = split(targets, tgt, " ")
        for (s = 1; s <= 3; s++) for (c = 1; c <= 64; c++) {
            d = scen[s] SUBSEP c SUBSEP "direct"; if (!(d in n)) continue
            x = scen[s] SUBSEP c SUBSEP "nginx"; v = scen[s] SUBSEP c SUBSEP "vllm-router"
            for (t = 1; t <= nt; t++) {
                k = scen[s] SUBSEP c SUBSEP tgt[t]
                r = rps[k] / n[k]; a = p50[k] / n[k]; b = p99[k] / n[k]
                routed = (tgt[t] == "switchboard" || tgt[t] == "vllm-router")
                added50 = (tgt[t] == "direct") ? "" : sprintf("%.3f", a - p50[d] / n[d])
                added99 = (tgt[t] == "direct") ? "" : sprintf("%.3f", b - p99[d] / n[d])
                ratio = routed ? sprintf("%.2f", r / (rps[x] / n[x])) : ""
                ratiov = (tgt[t] == "switchboard" && (v in n) && rps[v] > 0) ? sprintf("%.2f", r / (rps[v] / n[v])) : ""
                cpuv = routed ? sprintf("%.1f", cpu[k] / n[k]) : ""
                note = err[k] > 0 ? sprintf(" (%d non-2xx)", err[k]) : ""
                printf "| %s | %d | %s | %.0f%s | %.3f | %.3f | %s | %s | %s | %s | %s |\n", scen[s], c, tgt[t], r, note, a, b, added50, added99, ratio, ratiov, cpuv
            }
        }
    }' "$RESULTS"
echo
printf 'Switchboard RSS: %s MB idle, %s MB after the rounds.\n' "$(awk -v k="$RSS_IDLE" 'BEGIN { printf "%.1f", k / 1024 }')" "$(awk -v k="$RSS_AFTER" 'BEGIN { printf "%.1f", k / 1024 }')"
if [ "$VLLM_ROUTER" = 1 ]; then
    printf 'vllm-router RSS after the rounds: %s MB (chat/embeddings), %s MB (streams).\n' \
        "$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$VRPID/status")" \
        "$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$VRSPID/status")"
fi

# --- streaming scale -----------------------------------------------------------------------------
echo
[ "$STREAMS" -gt 0 ] || exit 0
echo "Streaming scale: $STREAMS concurrent streams, one chunk per second for ${STREAM_SECONDS}s (open files: $(ulimit -n))."
python3 "$ROOT/Benchmarks/stream_scale.py" "$SB" "$SCALE" "$SBPID" "$STREAMS" "$STREAM_SECONDS"
