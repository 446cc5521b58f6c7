#!/usr/bin/env bash
# The whole test suite: format lint, build (debug, tests included), then every test.
# Needs the Swift toolchain and python3; the package sources come from the configured mirrors.
# The `openai` Python package (for the test that drives the gateway with the official client)
# is installed from PyPI when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import openai" 2>/dev/null; then
    echo "== installing the openai Python package"
    python3 -m pip install --quiet --disable-pip-version-check openai
fi

echo "== swift format lint"
swift format lint --strict -r Sources Tests

echo "== swift build --build-tests"
swift build --build-tests

echo "== swift test"
swift test --skip-build
