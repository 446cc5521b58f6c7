#!/usr/bin/env bash
# The whole test suite: format lint, build (debug, tests included), then every test.
# Needs the Swift toolchain and python3; the package sources come from the configured mirrors.
# The `openai` and `anthropic` Python packages (for the tests that drive the gateway with the
# official clients), `playwright` (for the dashboard's browser tests) and `schemathesis` (for the
# Admin API's OpenAPI conformance test, Tests/Clients/admin_schemathesis.py) are installed from PyPI
# into a virtual environment in .build/venv when missing there; that environment's bin
# directory goes first on PATH, so the tests' `python3` is the venv's. Debian's chromium (for
# the browser tests), sqlite3 and systemd (systemd-analyze) are installed with apt-get when missing.
# PostgreSQL (for the cluster tests) is started by scripts/postgres.sh, see there. curl with
# HTTP/2 (for the TLS tests) is installed with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.build/venv
make_venv() {
    rm -rf "$venv" && mkdir -p .build && python3 -m venv "$venv"
}
if ! "$venv/bin/python3" -m pip --version >/dev/null 2>&1; then
    echo "== creating the Python virtual environment $venv"
    if ! make_venv; then
        # Debian and Ubuntu ship venv's ensurepip in a separate package.
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
            echo "== 'python3 -m venv' failed; installing python3-venv with apt-get"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            if ! make_venv; then
                echo "scripts/test.sh: 'python3 -m venv $venv' still fails after installing python3-venv" >&2
                echo "  ($(command -v python3) may not be Debian's python3)" >&2
                exit 1
            fi
        else
            echo "scripts/test.sh: 'python3 -m venv $venv' failed: python3's venv module (with ensurepip)" >&2
            echo "  is missing; on Debian/Ubuntu install it with 'apt-get install python3-venv', then run this again" >&2
            exit 1
        fi
    fi
fi
if ! "$venv/bin/python3" -c "import openai, anthropic, playwright, schemathesis" 2>/dev/null; then
    echo "== installing the openai, anthropic, playwright and schemathesis Python packages into $venv"
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check openai anthropic playwright schemathesis
fi
PATH="$PWD/$venv/bin:$PATH"
export PATH

# Installs Debian package $1 with apt-get (as root) for the tests named by $2, or says how.
apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "== installing $1 with apt-get (for $2)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1"
    else
        echo "scripts/test.sh: $2 need Debian's $1 ('apt-get install $1')" >&2
        exit 1
    fi
}
# The dashboard's browser tests drive Debian's chromium with Playwright (no browser download);
# the TLS tests drive the gateway with curl over HTTP/2 (curl with nghttp2, Debian's build).
[ -x /usr/bin/chromium ] || apt_install chromium "the dashboard's browser tests"
curl --version 2>/dev/null | grep -q HTTP2 || apt_install curl "the TLS tests (curl with HTTP/2)"
# The online backup test copies the live store with the sqlite3 CLI; the systemd unit's test
# checks contrib/switchboard.service with systemd-analyze.
command -v sqlite3 >/dev/null || apt_install sqlite3 "the online backup test"
command -v systemd-analyze >/dev/null || apt_install systemd "the systemd unit's test"

echo "== swift format lint"
swift format lint --strict -r Sources Tests

echo "== swift build --build-tests"
swift build --build-tests

# The cluster tests need a PostgreSQL server: a throw-away one, stopped when this script ends.
source scripts/postgres.sh

echo "== swift test"
# The schemathesis run keeps a core busy for about 45 s: it runs on its own afterwards, so the
# tests that bound upstream timeouts to a few hundred milliseconds are not run beside it.
swift test --skip-build --skip schemathesisFindsNothingAndTheStoreSurvives
echo "== swift test: schemathesis against the Admin API"
swift test --skip-build --filter schemathesisFindsNothingAndTheStoreSurvives
