#!/usr/bin/env bash
# The whole test suite: format lint, build (debug, tests included), then every test.
# Needs only the Swift toolchain; the package sources come from the configured mirrors.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== swift format lint"
swift format lint --strict -r Sources Tests

echo "== swift build --build-tests"
swift build --build-tests

echo "== swift test"
swift test --skip-build
