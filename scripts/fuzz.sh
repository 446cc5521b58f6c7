#!/usr/bin/env bash
# libFuzzer over every parser that reads bytes from outside (the package in Fuzz/, see its
# Package.swift and the `///` comment of each target for what it checks).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...] [--merge] [--no-build]
#
# Builds Fuzz/ with the fuzzer and AddressSanitizer runtimes into .build-fuzz (debug: Swift's
# bounds and overflow checks stay on, and @testable reaches the in-place readers), then runs
# each target (default: all) for SECONDS_PER_TARGET (default 30), one after the other. Each run
# reads the committed seeds in Fuzz/Corpus/<Target> and grows a working corpus in
# .build-fuzz/corpus/<Target>; the committed corpus is written only with --merge (which adds
# the working corpus's new coverage to it, minimised by libFuzzer's merge). Prints per target
# the executions, libFuzzer's final `cov:`, `ft:` and `corp:` (inputs/bytes) and the rate; a
# crash, a timeout or an out-of-memory leaves its input in .build-fuzz/crashes/ and the script
# exits non-zero.
# Replay an input with `SWIFT_BACKTRACE=enable=no .build-fuzz/debug/<Target> FILE`.
#
# SWIFT_BUILD_LOCK=FILE serialises the build step (not the fuzzing) with other Swift builds on
# the machine through flock(1).
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(FuzzJSON FuzzSSE FuzzVars FuzzCostExpr FuzzConfig FuzzEventStream FuzzStreamInspector FuzzResponseSummary)
seconds=30
merge=no
build=yes
targets=()
for arg in "$@"; do
    case "$arg" in
        --merge) merge=yes ;;
        --no-build) build=no ;;
        -h | --help)
            sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *[!0-9]*)
            if [[ " ${all_targets[*]} " != *" $arg "* ]]; then
                echo "scripts/fuzz.sh: unknown target '$arg' (targets: ${all_targets[*]})" >&2
                exit 2
            fi
            targets+=("$arg")
            ;;
        *) seconds="$arg" ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# The longest input per target: enough for a few realistic events or documents (and for
# nesting past the JSON parser's 256 levels), small enough to keep the executions fast.
max_len() {
    case "$1" in
        FuzzCostExpr | FuzzVars) echo 2048 ;;
        *) echo 8192 ;;
    esac
}

out=.build-fuzz
mkdir -p "$out/crashes" "$out/logs"

if [ "$build" = yes ]; then
    echo "== building Fuzz/ (-sanitize=fuzzer,address) into $out"
    lock=()
    [ -z "${SWIFT_BUILD_LOCK:-}" ] || lock=(flock "$SWIFT_BUILD_LOCK")
    start=$SECONDS
    set +e
    "${lock[@]}" swift build --package-path Fuzz --scratch-path "$out" -c debug \
        -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address >"$out/logs/build.log" 2>&1
    status=$?
    set -e
    # gold's "Cannot export local symbol '__asan_...'" warnings are noise: show the rest.
    grep -v "Cannot export local symbol" "$out/logs/build.log" | grep -E "error|warning:|Compiling|Build complete" |
        grep -v "^\[[0-9]*/[0-9]*\] Compiling" | tail -20 || true
    if [ $status -ne 0 ]; then
        echo "scripts/fuzz.sh: the build failed (log: $out/logs/build.log)" >&2
        exit $status
    fi
    echo "== built in $((SECONDS - start)) s"
fi
bin="$out/debug"

# The Swift runtime's backtracer would spend seconds symbolicating every crash; libFuzzer's own
# report (and the saved input) is what matters here. Leak checks would only see the runtime's
# caches.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1}"

failed=()
printf '\n%-20s %12s %8s %8s %12s %8s  %s\n' target executions cov ft corpus exec/s result
summary=()
for target in "${targets[@]}"; do
    corpus="$out/corpus/$target"
    mkdir -p "$corpus"
    log="$out/logs/$target.log"
    dict=()
    [ ! -f "Fuzz/Dictionaries/$target.dict" ] || dict=("-dict=Fuzz/Dictionaries/$target.dict")
    echo "== $target: ${seconds} s"
    set +e
    "$bin/$target" "$corpus" "Fuzz/Corpus/$target" "${dict[@]}" \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -rss_limit_mb=2048 -timeout=25 \
        -print_final_stats=1 -artifact_prefix="$out/crashes/$target-" >"$log" 2>&1
    status=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    stats=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$stats")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$stats")
    corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$stats")
    if [ $status -eq 0 ]; then
        result=ok
    else
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        result="FAILED (exit $status): ${artifact:-see $log}"
        failed+=("$target")
        grep -a -E "Fatal error|ERROR: |SUMMARY: " "$log" | head -5 | sed 's/^/    /'
    fi
    line=$(printf '%-20s %12s %8s %8s %12s %8s  %s' "$target" "${runs:-?}" "${cov:-?}" "${ft:-?}" \
        "${corp:-?}" "${rate:-?}" "$result")
    echo "$line"
    summary+=("$line")
    if [ "$merge" = yes ] && [ $status -eq 0 ]; then
        "$bin/$target" -merge=1 "Fuzz/Corpus/$target" "$corpus" -max_len="$(max_len "$target")" \
            >"$out/logs/$target.merge.log" 2>&1
        echo "   merged into Fuzz/Corpus/$target: $(find "Fuzz/Corpus/$target" -type f | wc -l) files"
    fi
done

echo
printf '%-20s %12s %8s %8s %12s %8s  %s\n' target executions cov ft corpus exec/s result
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "scripts/fuzz.sh: ${failed[*]} failed; inputs in $out/crashes/, logs in $out/logs/" >&2
    exit 1
fi
